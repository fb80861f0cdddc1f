"""Dance Diffusion through the real loader, on a tiny checkpoint the test builds itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from loopbridge.engine import AudioPrompt, GenerateRequest, ModelLoadError, RequestError, UnsupportedError
from loopbridge.engine.models.base import LoadOptions
from loopbridge.engine.models.dance_diffusion import DanceDiffusionBackend
from loopbridge.engine.models.registry import ModelRegistry, backend_class


@pytest.fixture(scope="module")
def backend(tiny_dd_root: Path) -> DanceDiffusionBackend:
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=tiny_dd_root / "no-cache", include_embedded=False)
    spec = registry.resolve("tiny-dd")
    assert spec.family == "dance-diffusion"
    loaded = backend_class(spec.family).load(spec.path, device="cpu")
    assert isinstance(loaded, DanceDiffusionBackend)
    return loaded


def _request(**fields) -> GenerateRequest:
    return GenerateRequest(**{"model": "tiny-dd", "duration_s": 0.1, "steps": 3, **fields})


def test_two_variations_in_one_batch(backend: DanceDiffusionBackend) -> None:
    first = _request(seed=11)
    outputs = backend.generate([first, first.with_variation(1)])
    assert [o.audio.shape for o in outputs] == [(2, 1600), (2, 1600)]
    assert all(o.sample_rate == 16000 and o.audio.dtype == np.float32 for o in outputs)
    assert not np.allclose(outputs[0].audio, outputs[1].audio), "variations must differ"
    assert np.all(np.abs(outputs[0].audio) <= 1.0)
    # a variation sounds the same whether rendered alone or inside a batch
    alone = backend.generate([first.with_variation(1)])[0]
    np.testing.assert_allclose(alone.audio, outputs[1].audio, atol=1e-4)
    # and the same seed gives the same audio again
    again = backend.generate([first])[0]
    np.testing.assert_allclose(again.audio, outputs[0].audio, atol=1e-5)


def test_matches_the_reference_pipeline(backend: DanceDiffusionBackend, tiny_dd_root: Path) -> None:
    from diffusers import DanceDiffusionPipeline, IPNDMScheduler, UNet1DModel

    folder = tiny_dd_root / "tiny-dd"
    # the published config layout needs the time width spelled out for plain diffusers (see the loader)
    unet = UNet1DModel.from_pretrained(folder / "unet", time_embedding_dim=16)
    pipe = DanceDiffusionPipeline(unet=unet, scheduler=IPNDMScheduler.from_pretrained(folder / "scheduler"))
    pipe.set_progress_bar_config(disable=True)
    frames = 1024  # a multiple of the model's 2**3 so the pipeline does not pad
    reference = pipe(
        batch_size=1,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(5),
        audio_length_in_s=frames / 16000,
    ).audios[0]
    ours = backend.generate([_request(seed=5, steps=4, duration_s=frames / 16000)])[0].audio
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_audio_prompt_variations(backend: DanceDiffusionBackend) -> None:
    t = np.arange(1600) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    prompt = AudioPrompt(np.stack([tone, tone]), 16000)
    unchanged = backend.generate([_request(audio_prompt=prompt, audio_prompt_strength=0.0)])[0].audio
    np.testing.assert_allclose(unchanged, prompt.audio, atol=1e-6)

    def closeness(strength: float) -> float:
        out = backend.generate([_request(audio_prompt=prompt, audio_prompt_strength=strength, steps=10)])[0].audio
        return float(np.corrcoef(out[0], tone)[0, 1])

    assert closeness(0.2) > closeness(1.0) + 0.3, "a light touch must stay near the prompt"


def test_audio_prompt_at_another_rate_and_channel_count(backend: DanceDiffusionBackend) -> None:
    mono_44k = AudioPrompt(np.random.default_rng(0).uniform(-0.3, 0.3, 4410).astype(np.float32), 44100)
    out = backend.generate([_request(audio_prompt=mono_44k, audio_prompt_strength=0.5)])[0]
    assert out.audio.shape == (2, 1600)


def test_inspect_matches_loaded_capabilities(backend: DanceDiffusionBackend, tiny_dd_root: Path) -> None:
    caps = DanceDiffusionBackend.inspect(tiny_dd_root / "tiny-dd")
    assert caps == backend.capabilities
    assert caps.sample_rate == 16000 and caps.channels == 2
    assert caps.audio_prompt and not caps.text_prompt
    assert caps.max_duration_s == pytest.approx(4 * 4096 / 16000, abs=1e-3)


def test_too_long_request_is_refused_naming_the_limit(backend: DanceDiffusionBackend) -> None:
    with pytest.raises(Exception, match=r"duration_s=5\.0.*0\.\d+–1\.024 s"):
        backend.generate([_request(duration_s=5.0)])


def test_found_in_the_hub_cache_layout(tiny_dd_root: Path, tmp_path: Path) -> None:
    repo = tmp_path / "hub" / "models--harmonai--tiny-test"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(tiny_dd_root / "tiny-dd", snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    registry = ModelRegistry(search_paths=[], hf_cache=tmp_path / "hub", include_embedded=False)
    spec = registry.resolve("harmonai/tiny-test")
    assert (spec.family, spec.source, spec.path) == ("dance-diffusion", "huggingface cache", snapshot)
    loaded = DanceDiffusionBackend.load(spec.path)
    assert loaded.capabilities.sample_rate == 16000


def test_corrupt_checkpoint_is_a_clear_load_error(tiny_dd_root: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-dd"
    shutil.copytree(tiny_dd_root / "tiny-dd", broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="broken-dd"):
        DanceDiffusionBackend.load(broken)
    (broken / "unet" / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        DanceDiffusionBackend.load(broken)


def test_other_schedulers_are_refused(tiny_dd_root: Path) -> None:
    with pytest.raises(RequestError, match=r"scheduler=.dpm\+\+.*ipndm"):
        DanceDiffusionBackend.load(tiny_dd_root / "tiny-dd", options=LoadOptions(scheduler="dpm++"))


def test_kit_and_text_features_it_lacks_are_refused(backend: DanceDiffusionBackend) -> None:
    with pytest.raises(UnsupportedError, match="kit"):
        backend.generate([_request(kind="kit")])
    with pytest.raises(UnsupportedError, match="negative prompt"):
        backend.generate([_request(negative_prompt="hiss")])
