"""Stable Audio Open on a tiny real pipeline: seconds conditioning, tempo in the prompt, the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from loopbridge.engine import ConformSpec, GenerateRequest, RequestError, UnsupportedError
from loopbridge.engine.core import Engine
from loopbridge.engine.models.base import LoadOptions
from loopbridge.engine.models.registry import ModelRegistry, detect_family
from loopbridge.engine.models.stable_audio import StableAudioBackend, prompt_with_tempo
from loopbridge.engine.request import AudioPrompt

from tests.engine.models.tiny_pipelines import tiny_models_root

torch.set_num_threads(2)
MAX_S = 32 * 2048 / 44100  # the tiny transformer's 32 latents at a 2048-sample hop


@pytest.fixture(scope="module")
def root() -> Path:
    return tiny_models_root()


@pytest.fixture(scope="module")
def backend(root: Path) -> StableAudioBackend:
    return StableAudioBackend.load(root / "tiny-stable-audio")


def _request(**fields) -> GenerateRequest:
    return GenerateRequest(**{"model": "tiny-stable-audio", "prompt": "warm pad", "kind": "texture",
                              "duration_s": 0.5, "steps": 2, **fields})


def test_capabilities_come_from_the_configs(root: Path) -> None:
    assert detect_family(root / "tiny-stable-audio") == "stable-audio"
    caps = StableAudioBackend.inspect(root / "tiny-stable-audio")
    assert (caps.sample_rate, caps.channels) == (44100, 2)
    assert caps.max_duration_s == pytest.approx(MAX_S)
    assert caps.negative_prompt and not caps.audio_prompt and not caps.morph


def test_loops_carry_the_host_tempo_in_the_prompt() -> None:
    assert prompt_with_tempo(_request(kind="loop", duration_s=None, bars=1, tempo_bpm=128)) == "warm pad, 128 BPM"
    assert prompt_with_tempo(_request(kind="loop", duration_s=None, bars=1, tempo_bpm=92.5)) == "warm pad, 92.5 BPM"
    assert prompt_with_tempo(_request(prompt="house beat 124 BPM", kind="loop")) == "house beat 124 BPM"
    assert prompt_with_tempo(_request(kind="one-shot")) == "warm pad"


def test_generates_stereo_at_44k_with_start_and_end(backend: StableAudioBackend) -> None:
    requests = [
        _request(seed=1),
        _request(seed=2, kind="loop", duration_s=None, bars=0.25, tempo_bpm=120),
        _request(seed=2, negative_prompt="noise"),
        _request(seed=3, start_s=0.4, duration_s=0.3),
    ]
    outputs = backend.generate(requests)
    assert [o.audio.shape for o in outputs] == [(2, 22050), (2, 22050), (2, 22050), (2, 13230)]
    assert all(o.sample_rate == 44100 and np.all(np.isfinite(o.audio)) for o in outputs)
    assert outputs[1].info["prompt_sent"] == "warm pad, 120 BPM"
    assert outputs[3].info["start_s"] == 0.4
    # rows with and without a negative prompt run apart, and each sounds as it would alone
    (alone,) = backend.generate([requests[2]])
    np.testing.assert_allclose(alone.audio, outputs[2].audio, atol=1e-4 * np.abs(alone.audio).max())


def test_length_and_offset_beyond_the_model_are_refused(backend: StableAudioBackend) -> None:
    with pytest.raises(RequestError, match=r"duration_s=2\.0 .*1\.486.* s"):
        backend.generate([_request(duration_s=2.0)])
    with pytest.raises(RequestError, match=r"start_s=1\.2 .*start_s \+ duration ≤ 1\.49 s"):
        backend.generate([_request(start_s=1.2)])
    prompt = AudioPrompt(np.full((2, 4410), 0.1, dtype=np.float32), 44100)
    with pytest.raises(UnsupportedError, match="does not take an audio prompt"):
        backend.generate([_request(audio_prompt=prompt)])


def test_deterministic_scheduler_swap(root: Path) -> None:
    backend = StableAudioBackend.load(root / "tiny-stable-audio", options=LoadOptions(scheduler="dpm++"))
    assert type(backend.pipeline.scheduler).__name__ == "EDMDPMSolverMultistepScheduler"
    first = backend.generate([_request(seed=5)])[0].audio
    second = backend.generate([_request(seed=5)])[0].audio
    np.testing.assert_array_equal(first, second)
    with pytest.raises(RequestError, match="attention='eager'"):
        StableAudioBackend.load(root / "tiny-stable-audio", options=LoadOptions(attention="eager"))


def test_through_the_engine_render_and_conform(root: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(search_paths=[root], hf_cache=tmp_path / "no-cache", include_embedded=False)
    engine = Engine(store_dir=tmp_path / "store", registry=registry, device="cpu")
    request = _request(kind="loop", duration_s=None, bars=0.5, tempo_bpm=240, seed=8)
    (render,) = engine.render([request])
    assert render.audio.shape == (2, 22050) and render.info["prompt_sent"] == "warm pad, 240 BPM"
    sample = engine.conform(render, ConformSpec(tempo_bpm=120, bars=0.5, sample_rate=48000))
    assert sample.sample_rate == 48000 and sample.audio.shape == (2, 48000)
