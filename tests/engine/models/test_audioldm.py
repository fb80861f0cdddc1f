"""AudioLDM and AudioLDM 2 on tiny real pipelines: loading, capabilities, generation, the engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from loopbridge.engine import CancelledError, ConformSpec, GenerateRequest, RequestError, UnsupportedError
from loopbridge.engine.core import Engine
from loopbridge.engine.errors import ModelLoadError
from loopbridge.engine.models.audioldm import MAX_DURATION_S, AudioLDM2Backend, AudioLDMBackend
from loopbridge.engine.models.base import LoadOptions
from loopbridge.engine.models.registry import ModelRegistry, detect_family
from loopbridge.engine.request import AudioPrompt

from tests.engine.models.tiny_pipelines import tiny_models_root

torch.set_num_threads(2)

FAMILIES = [("tiny-audioldm", AudioLDMBackend), ("tiny-audioldm2", AudioLDM2Backend)]


@pytest.fixture(scope="module")
def root() -> Path:
    return tiny_models_root()


@pytest.fixture(scope="module", params=FAMILIES, ids=["audioldm", "audioldm2"])
def loaded(request: pytest.FixtureRequest, root: Path) -> tuple[str, AudioLDMBackend]:
    name, cls = request.param
    return name, cls.load(root / name)


def _request(name: str, **fields) -> GenerateRequest:
    return GenerateRequest(**{"model": name, "prompt": "rain on a tin roof", "kind": "texture",
                              "duration_s": 0.5, "steps": 2, **fields})


def test_capabilities_come_from_the_configs(root: Path) -> None:
    for name, cls in FAMILIES:
        assert detect_family(root / name) == cls.family
        caps = cls.inspect(root / name)
        assert (caps.family, caps.sample_rate, caps.channels) == (cls.family, 16000, 1)
        assert caps.max_duration_s == MAX_DURATION_S
        assert caps.negative_prompt and not caps.audio_prompt and not caps.morph
        assert caps.to_dict()["default_steps"] == cls.default_steps


def test_generates_native_rate_audio_one_row_per_seed(loaded: tuple[str, AudioLDMBackend]) -> None:
    name, backend = loaded
    requests = [_request(name, seed=1), _request(name, seed=2), _request(name, seed=2, negative_prompt="thunder")]
    outputs = backend.generate(requests)
    for out in outputs:
        assert out.sample_rate == 16000
        assert out.audio.shape == (1, 8000) and out.audio.dtype == np.float32
        assert np.all(np.isfinite(out.audio)) and np.std(out.audio) > 0
    # the tiny random vocoder speaks very quietly: compare relative to each output's level
    def differs(a: np.ndarray, b: np.ndarray) -> bool:
        return float(np.abs(a - b).max()) > 1e-3 * float(np.abs(a).max())

    assert differs(outputs[0].audio, outputs[1].audio), "another seed must give other audio"
    assert differs(outputs[1].audio, outputs[2].audio), "a negative prompt must change the audio"
    # a variation sounds the same alone as in the batch
    (alone,) = backend.generate([requests[1]])
    np.testing.assert_allclose(alone.audio, outputs[1].audio, rtol=1e-4, atol=1e-6 * np.abs(alone.audio).max())


def test_impossible_requests_are_refused(loaded: tuple[str, AudioLDMBackend]) -> None:
    name, backend = loaded
    prompt = AudioPrompt(np.zeros((1, 1600), dtype=np.float32) + 0.1, 16000)
    with pytest.raises(UnsupportedError, match="does not take an audio prompt"):
        backend.generate([_request(name, audio_prompt=prompt)])
    with pytest.raises(UnsupportedError, match="cannot morph"):
        backend.generate([_request(name, morph_prompt="wind")])
    with pytest.raises(RequestError, match=r"duration_s=30.*20\.48 s"):
        backend.generate([_request(name, duration_s=30.0)])
    with pytest.raises(UnsupportedError, match="start_s must be 0"):
        backend.generate([_request(name, start_s=1.0)])


def test_progress_reports_each_step_and_cancels(loaded: tuple[str, AudioLDMBackend]) -> None:
    name, backend = loaded
    seen: list[float] = []
    backend.generate([_request(name, steps=3, duration_s=0.2)], progress=seen.append)
    assert seen[-1] == 1.0 and len(seen) >= 3 and seen == sorted(seen)

    def cancel(fraction: float) -> None:
        raise CancelledError("stopped by the user")

    with pytest.raises(CancelledError):
        backend.generate([_request(name, duration_s=0.2)], progress=cancel)


def test_faster_scheduler_and_eager_attention(root: Path) -> None:
    backend = AudioLDMBackend.load(root / "tiny-audioldm", options=LoadOptions(scheduler="dpm++", attention="eager"))
    assert type(backend.pipeline.scheduler).__name__ == "DPMSolverMultistepScheduler"
    (out,) = backend.generate([_request("tiny-audioldm", duration_s=0.2)])
    assert out.audio.shape == (1, 3200) and np.all(np.isfinite(out.audio))


def test_corrupt_checkpoint_is_named(root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "broken-audioldm"
    shutil.copytree(root / "tiny-audioldm", folder)
    (folder / "vocoder" / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match=r"vocoder/model\.safetensors.* is corrupt"):
        AudioLDMBackend.load(folder)


@pytest.mark.parametrize("name", ["tiny-audioldm", "tiny-audioldm2"], ids=["audioldm", "audioldm2"])
def test_through_the_engine_render_and_conform(root: Path, tmp_path: Path, name: str) -> None:
    registry = ModelRegistry(search_paths=[root], hf_cache=tmp_path / "no-cache", include_embedded=False)
    engine = Engine(store_dir=tmp_path / "store", registry=registry, device="cpu")
    assert engine.capabilities(name).sample_rate == 16000
    request = GenerateRequest(model=name, prompt="drum loop", kind="loop", bars=1, tempo_bpm=240, steps=2, seed=4)
    (render,) = engine.render([request])
    assert render.sample_rate == 16000 and render.audio.shape == (1, 16000)
    sample = engine.conform(render, ConformSpec(tempo_bpm=120, bars=1, sample_rate=48000))
    assert sample.sample_rate == 48000
    assert sample.audio.shape[1] == 2 * 48000, "one 4/4 bar at 120 BPM is two seconds"
