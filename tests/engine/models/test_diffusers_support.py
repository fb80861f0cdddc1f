"""Offline loading, folder checks and LoadOptions for the diffusers-based backends, on tiny real pipelines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from loopbridge.engine.errors import ModelLoadError, OutOfMemoryError, RequestError
from loopbridge.engine.models.base import LoadOptions
from loopbridge.engine.models.diffusers_support import (
    DISCRETE_SCHEDULERS,
    StepProgress,
    apply_load_options,
    check_pipeline_folder,
    load_component,
    load_pipeline,
    make_scheduler,
    mps_supports_bf16,
    oom_guard,
    resolve_dtype,
    set_attention,
)

from tests.engine.models.tiny_pipelines import tiny_models_root

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def root() -> Path:
    return tiny_models_root()


def _copy(root: Path, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(root / name, target)
    return target


def test_dtype_names_and_half_precision_needs_a_gpu() -> None:
    assert resolve_dtype("bf16", "cpu") is torch.bfloat16
    assert resolve_dtype(torch.float32, "cpu") is torch.float32
    assert resolve_dtype("fp16", "cuda") is torch.float16
    with pytest.raises(RequestError, match="fp16 needs a GPU"):
        resolve_dtype("fp16", "cpu")
    with pytest.raises(RequestError, match="fp32, fp16, bf16"):
        resolve_dtype("int8", "cpu")


def test_dtypes_on_apples_mps_are_those_metal_computes() -> None:
    """float32 and float16 on MPS; bfloat16 only where Metal has it (macOS 14 and later)."""
    assert resolve_dtype("fp32", "mps") is torch.float32
    assert resolve_dtype("fp16", "mps") is torch.float16
    if mps_supports_bf16():
        assert resolve_dtype("bf16", "mps") is torch.bfloat16
    else:
        with pytest.raises(RequestError, match="fp32 or fp16 on Apple's MPS before macOS 14") as caught:
            resolve_dtype("bf16", "mps")
        assert caught.value.value == "bf16"


def test_a_complete_folder_passes_its_check(root: Path) -> None:
    index = check_pipeline_folder(root / "tiny-audioldm", expected_classes=("AudioLDMPipeline",))
    assert index["_class_name"] == "AudioLDMPipeline"


def test_missing_weights_name_the_file(root: Path, tmp_path: Path) -> None:
    folder = _copy(root, "tiny-audioldm", tmp_path)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"unet/diffusion_pytorch_model\.safetensors.* is missing"):
        check_pipeline_folder(folder)


def test_corrupt_weights_name_the_file(root: Path, tmp_path: Path) -> None:
    folder = _copy(root, "tiny-stable-audio", tmp_path)
    weights = folder / "text_encoder" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match=r"text_encoder/model\.safetensors.* is corrupt"):
        load_pipeline(__import__("diffusers").StableAudioPipeline, folder, torch.float32)


def test_corrupt_index_and_wrong_pipeline_are_named(root: Path, tmp_path: Path) -> None:
    folder = _copy(root, "tiny-audioldm2", tmp_path)
    with pytest.raises(ModelLoadError, match="names pipeline 'AudioLDM2Pipeline': expected AudioLDMPipeline"):
        check_pipeline_folder(folder, expected_classes=("AudioLDMPipeline",))
    (folder / "model_index.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"model_index\.json.* is not valid JSON"):
        check_pipeline_folder(folder)
    with pytest.raises(ModelLoadError, match="does not exist"):
        check_pipeline_folder(tmp_path / "nowhere")


def test_single_components_load_offline(root: Path) -> None:
    from diffusers import DDIMScheduler, UNet2DConditionModel

    unet = load_component(UNet2DConditionModel, root / "tiny-audioldm", "unet", torch.float32)
    scheduler = load_component(DDIMScheduler, root / "tiny-audioldm", "scheduler")
    assert unet.config.in_channels == 4
    assert scheduler.config.num_train_timesteps == 1000
    with pytest.raises(ModelLoadError, match="missing"):
        load_component(UNet2DConditionModel, root / "tiny-audioldm", "no-such-part")


def test_scheduler_swap_by_name(root: Path) -> None:
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    current = DDIMScheduler.from_pretrained(str(root / "tiny-audioldm"), subfolder="scheduler")
    swapped = make_scheduler(current, "dpm++", DISCRETE_SCHEDULERS)
    assert isinstance(swapped, DPMSolverMultistepScheduler)
    assert swapped.config.algorithm_type == "dpmsolver++"
    # the noise schedule the checkpoint was trained with carries over
    assert swapped.config.beta_end == current.config.beta_end
    with pytest.raises(RequestError, match=r"scheduler='warp'.*dpm\+\+, .*ddim"):
        make_scheduler(current, "warp", DISCRETE_SCHEDULERS)


def test_eager_and_fused_attention_agree(root: Path) -> None:
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    unet = UNet2DConditionModel.from_pretrained(str(root / "tiny-riffusion"), subfolder="unet")
    sample = torch.randn(1, 4, 64, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(1, 77, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        set_attention(unet, "sdpa")
        assert all(isinstance(p, AttnProcessor2_0) for p in unet.attn_processors.values())
        fused = unet(sample, 10, context).sample
        set_attention(unet, "eager")
        assert all(isinstance(p, AttnProcessor) for p in unet.attn_processors.values())
        eager = unet(sample, 10, context).sample
    torch.testing.assert_close(fused, eager, rtol=1e-4, atol=1e-5)
    with pytest.raises(RequestError, match=r"attention='flash'"):
        set_attention(unet, "flash")


def test_custom_attention_only_takes_sdpa(root: Path) -> None:
    from diffusers import StableAudioDiTModel

    transformer = StableAudioDiTModel.from_pretrained(str(root / "tiny-stable-audio"), subfolder="transformer")
    set_attention(transformer, "sdpa")  # its own processors already use it
    with pytest.raises(RequestError, match="sdpa or the default for StableAudioDiTModel"):
        set_attention(transformer, "eager")


def test_load_options_are_applied(root: Path) -> None:
    from diffusers import AudioLDMPipeline, EulerDiscreteScheduler
    from diffusers.models.attention_processor import AttnProcessor

    pipeline = load_pipeline(AudioLDMPipeline, root / "tiny-audioldm", torch.float32)
    options = LoadOptions(attention="eager", compile=True, scheduler="euler", cpu_offload=True)
    apply_load_options(pipeline, torch.device("cpu"), options, denoiser="unet", schedulers=DISCRETE_SCHEDULERS)
    assert isinstance(pipeline.scheduler, EulerDiscreteScheduler)
    assert all(isinstance(p, AttnProcessor) for p in pipeline.unet.attn_processors.values())
    # compiled in place: same class, a compiled call installed
    assert type(pipeline.unet).__name__ == "UNet2DConditionModel"
    assert pipeline.unet._compiled_call_impl is not None
    assert pipeline.vae._compiled_call_impl is None


def test_out_of_memory_becomes_an_engine_error() -> None:
    with pytest.raises(OutOfMemoryError, match="out of accelerator memory while generating"):
        with oom_guard("generating"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_step_progress_spans_several_runs() -> None:
    seen: list[float] = []
    tracker = StepProgress(seen.append, total_steps=4)
    for _ in range(4):
        tracker.step(0, 1, None)
    tracker.finish()
    assert seen == [0.25, 0.5, 0.75, 1.0]
    assert tracker.on_step_end(None, 0, 0, {"latents": 1}) == {"latents": 1}


def test_model_index_components_marked_none_are_skipped(root: Path, tmp_path: Path) -> None:
    folder = _copy(root, "tiny-riffusion", tmp_path)
    index = json.loads((folder / "model_index.json").read_text())
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match="safety_checker"):
        check_pipeline_folder(folder)
    check_pipeline_folder(folder, skip=("safety_checker",))
