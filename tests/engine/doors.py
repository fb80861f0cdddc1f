"""A front door around a test's engine, and fitting one of its renders to a song."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor, HostFacts, Order, Sample
from loopbridge.engine.request import Render


@contextmanager
def opened(engine: Engine) -> Iterator[FrontDoor]:
    """The front door every client goes through, started (no pre-rendering), stopped afterwards."""
    door = FrontDoor(engine, prerender_depth=0, conform_workers=1).start()
    try:
        yield door
    finally:
        door.stop()


def fit(door: FrontDoor, render: Render, **host: Any) -> Sample:
    """``render`` conformed to the song ``host`` describes (HostFacts fields), through the front door."""
    (sample,) = door.generate(Order(render_key=render.key, host=HostFacts(**host)), timeout=300)
    return sample
