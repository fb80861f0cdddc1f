"""The weight cache: several models resident, least recently used evicted under a budget, never mid-job."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import torch
from loopbridge.engine import ModelLoadError
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.weights import WeightCache, default_budget_bytes


@pytest.fixture(scope="module")
def three_models(tiny_dd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("three-models")
    for name in ("a", "b", "c"):
        shutil.copytree(tiny_dd_root / "tiny-dd", root / name)
    return root


def _cache(root: Path, budget_models: float | None, events: list[tuple[str, str]]) -> WeightCache:
    torch.set_num_threads(1)
    registry = ModelRegistry(search_paths=[root], hf_cache=root / "no-hub", include_embedded=False)
    cache = WeightCache(registry, device="cpu", on_event=lambda name, f: events.append((name, f["model"])))
    if budget_models is not None:
        with cache.use("a"):
            pass
        size = cache.resident()[0]["bytes"]
        assert size > 0
        cache.evict("a")
        cache.set_budget(int(size * budget_models))
        events.clear()
    return cache


def _loads_and_evictions(events: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [e for e in events if e[0] in ("model_loaded", "model_evicted")]


def test_least_recently_used_model_goes_first(three_models: Path) -> None:
    events: list[tuple[str, str]] = []
    cache = _cache(three_models, 2.5, events)
    for name in ("a", "b", "a", "c"):  # a is used again after b, so b is the least recently used
        with cache.use(name):
            pass
    assert [m["model"] for m in cache.resident()] == ["a", "c"]
    # room is made before c loads (by its size on disk), so the accelerator never holds all three
    assert _loads_and_evictions(events) == [("model_loaded", "a"), ("model_loaded", "b"),
                                            ("model_evicted", "b"), ("model_loaded", "c")]
    assert cache.resident_bytes() <= cache.budget_bytes


def test_a_model_in_use_is_never_evicted(three_models: Path) -> None:
    events: list[tuple[str, str]] = []
    cache = _cache(three_models, 1.5, events)
    held = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def long_job() -> None:
        try:
            with cache.use("a") as backend:
                held.set()
                assert release.wait(60)
                backend.unet(torch.zeros(1, 2, 64), torch.tensor([0.5]))  # still usable at the end
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    worker = threading.Thread(target=long_job)
    worker.start()
    assert held.wait(60)
    with cache.use("b"):
        pass  # over budget while a is pinned: a stays, b is loaded beside it
    assert cache.is_resident("a") and cache.resident()[0]["in_use"]
    assert not cache.evict("a"), "evicting a pinned model is refused"
    release.set()
    worker.join(60)
    assert errors == []
    with cache.use("c"):
        pass
    assert not cache.is_resident("a") and cache.is_resident("c")
    assert ("model_evicted", "a") in events


def test_budget_can_shrink_and_every_unpinned_model_goes(three_models: Path) -> None:
    events: list[tuple[str, str]] = []
    cache = _cache(three_models, None, events)
    for name in ("a", "b", "c"):
        with cache.use(name):
            pass
    assert len(cache.resident()) == 3  # no budget: all stay
    cache.set_budget(1)
    assert cache.resident() == []
    assert sorted(m for e, m in events if e == "model_evicted") == ["a", "b", "c"]


def test_a_corrupt_checkpoint_is_reported_and_others_still_load(three_models: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(three_models / "a", root / "broken")
    for weights in (root / "broken").rglob("*.safetensors"):
        weights.write_bytes(b"\0" * 16)
    events: list[tuple[str, str]] = []
    registry = ModelRegistry(search_paths=[root, three_models], hf_cache=root / "x", include_embedded=False)
    cache = WeightCache(registry, device="cpu", on_event=lambda name, f: events.append((name, f["model"])))
    with pytest.raises(ModelLoadError, match="broken"):
        with cache.use("broken"):
            pass
    assert ("model_load_failed", "broken") in events
    with cache.use("a"):
        pass
    assert cache.is_resident("a") and not cache.is_resident("broken")


def test_default_budget_is_a_share_of_memory() -> None:
    budget = default_budget_bytes(torch.device("cpu"))
    assert budget is None or budget > 0
