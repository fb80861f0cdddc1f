"""Pre-rendering: the neighbours of an order end up conformed in the store, once each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from loopbridge.engine import GenerateRequest
from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor, HostFacts, Order
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.prerender import Prerenderer, snap_morph
from loopbridge.engine.scheduler import Priority


@pytest.fixture()
def door(tiny_dd_root: Path, tmp_path: Path) -> Iterator[FrontDoor]:
    torch.set_num_threads(1)
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=tmp_path / "no-hub", include_embedded=False)
    door = FrontDoor(Engine(store_dir=tmp_path / "store", registry=registry, device="cpu"), prerender_depth=0,
                     conform_workers=1)
    yield door
    door.stop()


def _request(variation: int = 0) -> GenerateRequest:
    return GenerateRequest(model="tiny-dd", duration_s=0.05, steps=2, seed=40, variation=variation)


def _order(variation: int = 0) -> Order:
    return Order(_request(variation), HostFacts(tempo_bpm=128, sample_rate=22050), priority=Priority.BACKGROUND,
                 prerender=False)


def test_neighbours_are_the_next_variations_and_the_previous_one(door: FrontDoor) -> None:
    pre = Prerenderer(door, depth=3)
    assert [r.variation for r in pre.neighbours(_request(0))] == [1, 2, 3]
    assert [r.variation for r in pre.neighbours(_request(5))] == [6, 4, 7, 8]
    assert Prerenderer(door, depth=0).neighbours(_request(5)) == []
    # tiny-dd cannot morph: a morph prompt adds no morph positions
    assert len(pre.neighbours(_request(0).replace(morph_prompt="b", morph_amount=0.5))) == 3


def test_morph_positions_snap_to_the_grid() -> None:
    assert snap_morph(0.52) == 0.5 and snap_morph(0.53) == 0.55 and snap_morph(-1) == 0.0 and snap_morph(7) == 1.0


def test_neighbours_are_stored_conformed_and_not_queued_twice(door: FrontDoor) -> None:
    pre = Prerenderer(door, depth=3)
    jobs = pre.after(_order(0))  # queued before the worker starts: they wait
    assert [job.priority for job in jobs] == [Priority.BACKGROUND] * 3
    more = pre.after(_order(1))
    assert [job.plan[0][1].variation for job in more] == [0, 4], "1–3 are on their way: only 0 and 4 are new"
    jobs += more
    door.start()
    for job in jobs:
        job.result(timeout=120)
    for variation in (0, 1, 2, 3, 4):
        job = door.submit(_order(variation))
        assert job.answered, f"variation {variation} was not stored"
        (sample,) = job.result()
        assert sample.sample_rate == 22050 and sample.path.is_file() and sample.variation == variation
    assert pre.after(_order(0)) == [], "everything near variation 0 is stored already"
    status = pre.status()
    assert status["stored"] == 5 and status["queued"] == 5 and status["inflight"] == 0
