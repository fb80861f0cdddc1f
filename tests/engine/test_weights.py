"""The weight cache: several models resident, least recently used evicted under a budget, never mid-job."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, ClassVar

import loopbridge.engine.weights as weights_module
import pytest
import torch
from loopbridge.engine import ModelLoadError
from loopbridge.engine.errors import RequestError
from loopbridge.engine.models.base import Capabilities, LoadOptions, ModelBackend
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.weights import (
    WeightCache,
    default_budget_bytes,
    estimate_bytes,
    mps_available,
    offload_needed,
    resolve_device,
)


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


def test_offload_is_needed_only_on_a_gpu_when_the_model_does_not_fit_beside_those_in_use() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert offload_needed(cuda, model_bytes=6, budget_bytes=10, held_bytes=0) is False
    assert offload_needed(cuda, model_bytes=11, budget_bytes=10, held_bytes=0) is True
    assert offload_needed(cuda, model_bytes=6, budget_bytes=10, held_bytes=5) is True, "models in use stay"
    assert offload_needed(cuda, model_bytes=10**12, budget_bytes=None, held_bytes=0) is False, "no budget, no limit"
    assert offload_needed(cpu, model_bytes=11, budget_bytes=10, held_bytes=0) is False, "RAM is where it lives"


class _Recording(ModelBackend):
    """Stands in for a family on a GPU: records the options each load was given."""

    family = "recording"
    loads: ClassVar[list[tuple[str, LoadOptions]]] = []

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
             options: LoadOptions | None = None) -> _Recording:
        cls.loads.append((Path(path).name, options or LoadOptions()))
        backend = cls(Path(path), torch.device(device), dtype)
        backend.parts = [torch.nn.Linear(32, 32), torch.nn.Linear(8, 8)]
        return backend

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(family=self.family, sample_rate=16000, channels=1, max_duration_s=1.0)

    def modules(self) -> list[torch.nn.Module]:
        return self.parts

    def memory_bytes(self) -> int:
        return estimate_bytes(self.path)  # as a real model: loaded, it takes what its files hold

    def _generate(self, requests: list[Any], progress: Any) -> list[Any]:
        raise NotImplementedError


def test_a_model_that_would_not_fit_the_gpu_budget_loads_with_cpu_offload(
        three_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights_module, "backend_class", lambda family: _Recording)
    _Recording.loads.clear()
    events: list[tuple[str, dict[str, Any]]] = []
    registry = ModelRegistry(search_paths=[three_models], hf_cache=three_models / "no-hub", include_embedded=False)
    size = estimate_bytes(three_models / "a")
    cache = WeightCache(registry, device="cpu", budget_bytes=int(size * 1.5),
                        on_event=lambda name, fields: events.append((name, fields)))
    cache.device = torch.device("cuda")  # the decision as it is taken on a GPU; nothing here touches one
    with cache.use("a"):
        with cache.use("b"):  # "a" is in use: what is left of the budget cannot hold "b"
            pass
    assert [(name, options.cpu_offload) for name, options in _Recording.loads] == [("a", False), ("b", True)]
    assert not cache.is_offloaded("a") and cache.is_offloaded("b")
    offloaded = [fields for name, fields in events if name == "model_offloaded"]
    assert [f["model"] for f in offloaded] == ["b"] and "budget" in offloaded[0]["reason"]
    loaded = {fields["model"]: fields for name, fields in events if name == "model_loaded"}
    assert loaded["b"]["cpu_offload"] is True
    assert loaded["b"]["bytes"] == 32 * 33 * 4, "an offloaded model holds its largest part on the GPU at a time"
    # with nothing else in use, a model that fits loads whole again
    assert cache.evict("a") and cache.evict("b")
    with cache.use("c"):
        pass
    assert _Recording.loads[-1] == ("c", LoadOptions())


def test_auto_device_is_cuda_then_apples_mps_then_the_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else ("mps" if mps_available() else "cpu")
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["mps", "cuda", "cuda:0"])
def test_an_explicit_device_this_machine_lacks_is_refused_by_name(name: str) -> None:
    present = mps_available() if name == "mps" else torch.cuda.is_available()
    if present:
        assert resolve_device(name).type == name.split(":")[0]
    else:
        with pytest.raises(RequestError) as caught:
            resolve_device(name)
        assert caught.value.field == "device" and caught.value.value == name
        assert name.split(":")[0] in caught.value.accepted


@pytest.mark.parametrize("name", ["banana", "xpu", "meta"])
def test_a_device_the_engine_does_not_run_on_is_refused(name: str) -> None:
    with pytest.raises(RequestError, match=r"auto, cpu, cuda .* or mps") as caught:
        resolve_device(name)
    assert caught.value.value == name


@pytest.mark.skipif(not mps_available(), reason="Apple's MPS is not available on this machine")
def test_the_default_budget_on_mps_is_a_share_of_what_metal_recommends() -> None:
    assert default_budget_bytes(torch.device("mps"), 0.5) == int(torch.mps.recommended_max_memory() * 0.5)
