"""Loops of a pitched class from the shipped default model: a bass line or a pluck arpeggio, on the grid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor
from loopbridge.engine.patterns import MELODIC_PATTERNS, beat_to_sample
from loopbridge.engine.request import GenerateRequest, Kind

from tests.engine.doors import opened


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    with opened(Engine(store_dir=tmp_path_factory.mktemp("store"), device="cpu")) as door:
        yield door


@pytest.mark.parametrize(("prompt", "part"), [("deep bass loop", "bass"), ("pluck arp", "pluck")])
def test_a_loop_named_by_a_pitched_class_plays_that_class_only(door: FrontDoor, prompt: str, part: str) -> None:
    request = GenerateRequest(prompt=prompt, kind=Kind.LOOP, bars=1.0, tempo_bpm=120.0, seed=3)
    (render,) = door.render([request])
    assert render.info["parts"] == [part]
    assert render.info["class"] == f"{part} loop"
    assert render.info["pattern"] == MELODIC_PATTERNS[part].name
    rate = render.sample_rate
    assert render.audio.shape[1] == beat_to_sample(4, 120.0, rate)
    # something sounds at each note of the pattern
    for hit in MELODIC_PATTERNS[part].hits:
        start = beat_to_sample(hit.beat, 120.0, rate)
        window = render.audio[:, start:start + int(0.03 * rate)]
        assert float(np.sqrt(np.mean(window ** 2))) > 1e-3, hit


def test_a_drum_loop_is_still_a_drum_loop(door: FrontDoor, tmp_path: Path) -> None:
    (render,) = door.render([GenerateRequest(prompt="house", kind=Kind.LOOP, bars=1.0, seed=3)])
    assert render.info["class"] == "drum loop" and "kick" in render.info["parts"]
