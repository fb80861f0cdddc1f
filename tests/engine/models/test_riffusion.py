"""Riffusion on a tiny real Stable Diffusion pipeline: morph, seed images, long renders, the engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from loopbridge.engine import CancelledError, ConformSpec, GenerateRequest, RequestError, UnsupportedError
from loopbridge.engine.core import Engine
from loopbridge.engine.models.registry import ModelRegistry, detect_family
from loopbridge.engine.models.riffusion import RiffusionBackend
from loopbridge.engine.models.riffusion.backend import clip_plan, join_clips, slerp
from loopbridge.engine.request import AudioPrompt

from tests.engine.models.tiny_pipelines import RIFFUSION_FOLDER, tiny_models_root

torch.set_num_threads(2)
CLIP_S = 0.64  # the tiny checkpoint's 64-column images


@pytest.fixture(scope="module")
def root() -> Path:
    return tiny_models_root()


@pytest.fixture(scope="module")
def backend(root: Path) -> RiffusionBackend:
    return RiffusionBackend.load(root / RIFFUSION_FOLDER)


def _request(**fields) -> GenerateRequest:
    return GenerateRequest(**{"model": RIFFUSION_FOLDER, "prompt": "jazz piano", "kind": "loop",
                              "duration_s": 0.5, "steps": 2, "guidance": 3.0, **fields})


def test_family_is_found_by_marker_or_name(root: Path, tmp_path: Path) -> None:
    assert detect_family(root / RIFFUSION_FOLDER) == "riffusion"
    plain = tmp_path / "some-sd-model"
    shutil.copytree(root / RIFFUSION_FOLDER, plain)
    (plain / "loopbridge.json").unlink()
    assert detect_family(plain) is None, "an ordinary Stable Diffusion folder is not audio"
    named = tmp_path / "riffusion-model-v1"
    plain.rename(named)
    assert detect_family(named) == "riffusion"
    assert RiffusionBackend._folder_settings(named) == (512, 32)  # the published width and iterations


def test_capabilities(root: Path) -> None:
    caps = RiffusionBackend.inspect(root / RIFFUSION_FOLDER)
    assert (caps.family, caps.sample_rate, caps.channels) == ("riffusion", 44100, 1)
    assert caps.morph and caps.audio_prompt and caps.negative_prompt
    assert caps.max_duration_s == 60.0


def test_bad_marker_is_named(root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "odd-riffusion"
    shutil.copytree(root / RIFFUSION_FOLDER, folder)
    (folder / "loopbridge.json").write_text(json.dumps({"family": "riffusion", "image_width": 100}))
    from loopbridge.engine.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="image_width=100"):
        RiffusionBackend.inspect(folder)


def test_slerp_keeps_the_ends_and_the_norm() -> None:
    a = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(0))
    b = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    middle = slerp(a, b, 0.5)
    low, high = sorted([float(a.norm()), float(b.norm())])
    assert 0.98 * low <= float(middle.norm()) <= 1.02 * high
    assert float(middle.norm()) > 1.2 * float(((a + b) / 2).norm())  # a linear mix loses about 30 %


def test_long_renders_walk_the_morph_path() -> None:
    plan = clip_plan(_request(duration_s=2.0, morph_prompt="techno", morph_amount=0.6), CLIP_S)
    assert len(plan) == 4  # (2.0 − 0.1) / (0.64 − 0.1) → 4 clips
    assert [c.noise_amount for c in plan] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert [c.text_amount for c in plan] == pytest.approx([0, 0.2, 0.4, 0.6])
    assert len({c.decode_seed for c in plan}) == 4
    (single,) = clip_plan(_request(morph_prompt="techno", morph_amount=0.6), CLIP_S)
    assert (single.text_amount, single.noise_amount) == (0.6, 0.6)
    ones, zeros = np.ones((1, 100), np.float32), np.zeros((1, 100), np.float32)
    outgoing = join_clips([ones, zeros, zeros], overlap=20, total=250)
    incoming = join_clips([zeros, ones, zeros], overlap=20, total=250)
    assert outgoing.shape == (1, 250)
    # equal-power crossfade: the squared gains of the two clips add up to 1 through the seam
    np.testing.assert_allclose(outgoing[0, 80:100] ** 2 + incoming[0, 80:100] ** 2, 1.0, atol=1e-5)
    np.testing.assert_allclose(incoming[0, 100:160], 1.0)


def test_morph_ends_are_the_prompts_themselves(backend: RiffusionBackend) -> None:
    requests = [
        _request(seed=1),
        _request(seed=1, morph_prompt="techno", morph_amount=0.0, morph_seed=5),
        _request(seed=1, morph_prompt="techno", morph_amount=1.0, morph_seed=5),
        _request(seed=5, prompt="techno"),
        _request(seed=1, morph_prompt="techno", morph_amount=0.5, morph_seed=5),
    ]
    outputs = backend.generate(requests)
    for out in outputs:
        assert out.sample_rate == 44100 and out.audio.shape == (1, 22050)
        assert np.all(np.isfinite(out.audio)) and np.abs(out.audio).max() == pytest.approx(0.9, abs=1e-4)
    np.testing.assert_allclose(outputs[0].audio, outputs[1].audio, atol=2e-3)
    np.testing.assert_allclose(outputs[2].audio, outputs[3].audio, atol=2e-3)
    assert not np.allclose(outputs[4].audio, outputs[0].audio, atol=2e-2)
    assert not np.allclose(outputs[4].audio, outputs[3].audio, atol=2e-2)


def _mel(backend: RiffusionBackend, audio: np.ndarray) -> np.ndarray:
    mel = backend.codec.mel_spectrogram(audio)
    return np.log1p(mel / (mel.max() + 1e-12) * 1000).ravel()


def test_seed_image_fixes_the_result(backend: RiffusionBackend) -> None:
    t = np.arange(int(0.64 * 44100)) / 44100
    beat = (np.sin(2 * np.pi * 330 * t) * ((t % 0.16) < 0.04)).astype(np.float32)
    seed_audio = AudioPrompt(np.stack([beat, beat]), 44100)
    image = backend.seed_image(seed_audio)
    assert image.pixels.shape == (512, 64)
    seeded = backend.generate([_request(seed=s, steps=10, audio_prompt=seed_audio, audio_prompt_strength=0.3)
                               for s in (11, 12)])
    free = backend.generate([_request(seed=s, steps=10) for s in (11, 12)])
    seeded_corr = np.corrcoef(_mel(backend, seeded[0].audio), _mel(backend, seeded[1].audio))[0, 1]
    free_corr = np.corrcoef(_mel(backend, free[0].audio), _mel(backend, free[1].audio))[0, 1]
    assert seeded_corr > free_corr, "two seeds from one seed image must resemble each other more"
    with pytest.raises(RequestError, match="audio_prompt='silence'"):
        backend.seed_image(AudioPrompt(np.zeros((1, 4410), np.float32), 44100))


def test_a_variation_sounds_the_same_alone_or_batched(backend: RiffusionBackend) -> None:
    requests = [_request(seed=21), _request(seed=22, duration_s=1.5)]
    batch = backend.generate(requests)
    assert batch[1].audio.shape == (1, 66150) and batch[1].info["clips"] == 3
    (alone,) = backend.generate([requests[0]])
    np.testing.assert_allclose(alone.audio, batch[0].audio, atol=2e-3)


def test_refusals_progress_and_cancel(backend: RiffusionBackend) -> None:
    with pytest.raises(RequestError, match="duration_s=61"):
        backend.generate([_request(duration_s=61.0)])
    with pytest.raises(UnsupportedError, match="start_s must be 0"):
        backend.generate([_request(start_s=0.5)])
    seen: list[float] = []
    backend.generate([_request(steps=3)], progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3

    def cancel(fraction: float) -> None:
        raise CancelledError("stopped")

    with pytest.raises(CancelledError):
        backend.generate([_request()], progress=cancel)


def test_through_the_engine_render_and_conform(root: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(search_paths=[root], hf_cache=tmp_path / "no-cache", include_embedded=False)
    engine = Engine(store_dir=tmp_path / "store", registry=registry, device="cpu")
    assert engine.capabilities(RIFFUSION_FOLDER).morph
    request = _request(duration_s=None, bars=1, tempo_bpm=480, seed=3, morph_prompt="techno", morph_amount=0.25)
    (render,) = engine.render([request])
    assert render.sample_rate == 44100 and render.audio.shape == (1, 22050)
    sample = engine.conform(render, ConformSpec(tempo_bpm=240, bars=1, sample_rate=48000))
    assert sample.sample_rate == 48000 and sample.audio.shape[1] == 48000
