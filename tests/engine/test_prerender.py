"""Pre-rendering: the neighbours of a request end up conformed in the store, once each."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from loopbridge.engine import ConformSpec, GenerateRequest
from loopbridge.engine.core import Engine
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.prerender import Prerenderer, snap_morph
from loopbridge.engine.scheduler import Priority, Scheduler


@pytest.fixture()
def engine(tiny_dd_root: Path, tmp_path: Path) -> Engine:
    torch.set_num_threads(1)
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=tmp_path / "no-hub", include_embedded=False)
    return Engine(store_dir=tmp_path / "store", registry=registry, device="cpu")


def _request(variation: int = 0) -> GenerateRequest:
    return GenerateRequest(model="tiny-dd", duration_s=0.05, steps=2, seed=40, variation=variation)


def test_neighbours_are_the_next_variations_and_the_previous_one(engine: Engine) -> None:
    pre = Prerenderer(engine, Scheduler(engine), depth=3)
    assert [r.variation for r in pre.neighbours(_request(0))] == [1, 2, 3]
    assert [r.variation for r in pre.neighbours(_request(5))] == [6, 4, 7, 8]
    assert Prerenderer(engine, Scheduler(engine), depth=0).neighbours(_request(5)) == []
    # tiny-dd cannot morph: a morph prompt adds no morph positions
    assert len(pre.neighbours(_request(0).replace(morph_prompt="b", morph_amount=0.5))) == 3


def test_morph_positions_snap_to_the_grid() -> None:
    assert snap_morph(0.52) == 0.5 and snap_morph(0.53) == 0.55 and snap_morph(-1) == 0.0 and snap_morph(7) == 1.0


def test_neighbours_are_stored_conformed_and_not_queued_twice(engine: Engine) -> None:
    spec = ConformSpec(tempo_bpm=128, sample_rate=22050)
    scheduler = Scheduler(engine)
    pre = Prerenderer(engine, scheduler, depth=3)
    jobs = pre.after(_request(0), spec)
    assert [job.priority for job in jobs] == [Priority.BACKGROUND] * 3
    more = pre.after(_request(1), spec)
    assert [job.plan[0][1].variation for job in more] == [0, 4], "1–3 are on their way: only 0 and 4 are new"
    jobs += more
    scheduler.start()
    try:
        for job in jobs:
            job.result(timeout=120)
        for variation in (1, 2, 3):
            stored = engine.stored_sample(_request(variation), spec)
            assert stored is not None and stored.sample_rate == 22050 and stored.path.is_file()
        assert engine.stored_sample(_request(0), spec) is not None  # the previous variation of 1
        assert pre.after(_request(0), spec) == [], "everything near variation 0 is stored already"
        assert pre.status()["stored"] == 5
    finally:
        scheduler.stop()
