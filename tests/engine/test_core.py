"""The engine facade on a real (tiny) Dance Diffusion checkpoint: batching, caching, faults."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from loopbridge.engine import (
    CancelledError,
    GenerateRequest,
    OutOfMemoryError,
    RequestError,
    UnknownModelError,
    UnsupportedError,
)
from loopbridge.engine.core import Engine
from loopbridge.engine.models.registry import ModelRegistry


@pytest.fixture()
def engine(tiny_dd_root: Path, tmp_path: Path) -> Engine:
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=tmp_path / "no-cache", include_embedded=False)
    return Engine(store_dir=tmp_path / "store", registry=registry, device="cpu")


def _request(**fields) -> GenerateRequest:
    return GenerateRequest(**{"model": "tiny-dd", "duration_s": 0.05, "steps": 2, "seed": 9, **fields})


def test_variations_render_as_one_batch_and_are_stored(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    backend_calls: list[int] = []
    with engine.weights.use("tiny-dd") as backend:
        original = backend._generate

        def counting(requests, progress):
            backend_calls.append(len(requests))
            return original(requests, progress)

        monkeypatch.setattr(backend, "_generate", counting)
    requests = engine.variations(_request(), 4)
    renders = engine.render(requests)
    assert backend_calls == [4], "four variations must be one backend call"
    assert [r.request.variation for r in renders] == [0, 1, 2, 3]
    assert len({r.key for r in renders}) == 4
    assert engine.store.stats()["renders"] == 4
    # asking again is served from the store: the model does not run
    again = engine.render(requests)
    assert backend_calls == [4]
    for first, second in zip(renders, again, strict=True):
        np.testing.assert_array_equal(first.audio, second.audio)


def test_cached_render_and_recall(engine: Engine) -> None:
    request = _request(seed=100)
    assert engine.cached_render(request) is None
    (render,) = engine.render([request])
    assert engine.cached_render(request) is not None
    recalled = engine.recall(render.key[:10])
    assert recalled is not None and recalled.key == render.key
    assert engine.history()[0].key == render.key


def test_progress_reaches_one(engine: Engine) -> None:
    seen: list[float] = []
    engine.render(engine.variations(_request(seed=200, steps=3), 2), progress=seen.append)
    assert seen and seen[-1] == 1.0
    assert seen == sorted(seen)


def test_cancel_mid_render_stores_nothing(engine: Engine) -> None:
    def cancel(fraction: float) -> None:
        if fraction > 0:
            raise CancelledError("cancelled by the test")

    with pytest.raises(CancelledError):
        engine.render([_request(seed=300, steps=4)], progress=cancel)
    assert engine.store.stats()["renders"] == 0
    assert engine.render([_request(seed=300, steps=4)])  # and the engine goes on


def test_out_of_memory_is_reported_and_the_engine_keeps_serving(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with engine.weights.use("tiny-dd") as backend:
        unet = backend.unet
    real_forward = unet.forward

    def exhausted(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(unet, "forward", exhausted)
    with pytest.raises(OutOfMemoryError, match=r"ran out of memory.*fewer variations"):
        engine.render([_request(seed=400)])
    monkeypatch.setattr(unet, "forward", real_forward)
    assert engine.render([_request(seed=400)])[0].audio.shape == (2, 800)


def test_requests_are_checked_before_any_work(engine: Engine) -> None:
    with pytest.raises(UnknownModelError, match=r"model='nope'.*tiny-dd"):
        engine.render([_request(model="nope")])
    with pytest.raises(RequestError, match=r"duration_s=30\.0"):
        engine.render([_request(duration_s=30.0)])
    with pytest.raises(UnsupportedError, match="kind='kit'"):
        engine.expand(_request(kind="kit"))
    assert engine.store.stats()["renders"] == 0


def test_capabilities_without_loading(engine: Engine) -> None:
    caps = engine.capabilities("tiny-dd")
    assert caps.sample_rate == 16000
    assert not engine.weights.is_resident("tiny-dd")
    assert [m.id for m in engine.models()] == ["tiny-dd"]


def test_unconditional_model_notes_an_unused_prompt(engine: Engine) -> None:
    (render,) = engine.render([_request(prompt="a kick", seed=500)])
    assert "takes no text" in render.info["notes"][0]


def test_checking_a_request_writes_nothing(tiny_dd_root: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=tmp_path / "no-cache", include_embedded=False)
    lazy = Engine(store_dir=tmp_path / "lazy-store", registry=registry, device="cpu")
    lazy.check(_request())
    assert not (tmp_path / "lazy-store").exists()
