"""Dance Diffusion (Harmonai): unconditional diffusion on raw stereo waveforms.

A checkpoint is a diffusers folder: ``model_index.json`` (``DanceDiffusionPipeline``),
``unet/`` (``UNet1DModel``) and ``scheduler/`` (``IPNDMScheduler``). The model is trained with the
v-objective on continuous time, where a noisy sample is ``alpha_t * audio + beta_t * noise`` with
``alpha = cos(t·π/2)``, ``beta = sin(t·π/2)``: that is what makes audio-prompt variations work
by starting the reverse process part way, from the prompt noised to that level.

Variations come from seeds; audio-prompt variations from partial noising with a strength 0–1
(0 returns the prompt, 1 ignores it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import fit_length, match_channels, resample
from ..errors import ModelLoadError, RequestError
from ..request import GenerateRequest, Kind
from .base import (
    Capabilities,
    GeneratedAudio,
    LoadOptions,
    ModelBackend,
    ProgressCallback,
    batch_noise,
    read_json,
)
from .diffusers_support import check_pipeline_folder, group_requests, load_component, resolve_dtype

#: how far beyond its training length a checkpoint is allowed to generate (it is fully convolutional)
_MAX_LENGTH_FACTOR = 4
_SUPPORTED_SCHEDULERS = ("IPNDMScheduler",)


class DanceDiffusionBackend(ModelBackend):
    """A loaded Dance Diffusion checkpoint."""

    family = "dance-diffusion"

    def __init__(
        self,
        path: Path,
        device: torch.device,
        dtype: torch.dtype,
        unet: torch.nn.Module,
        unet_config: dict[str, Any],
        scheduler_config: dict[str, Any],
    ) -> None:
        super().__init__(path, device, dtype)
        self.unet = unet
        self._caps = _capabilities(unet_config)
        self._scheduler_config = scheduler_config
        # the factor generated lengths are padded to: 2 ** number of up blocks
        self._length_multiple = 2 ** len(unet_config.get("up_block_types", ()))

    # ---- loading --------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: Path,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        options: LoadOptions | None = None,
    ) -> DanceDiffusionBackend:
        from diffusers import UNet1DModel

        options = options or LoadOptions()
        folder = Path(path)
        check_pipeline_folder(folder, expected_classes=("DanceDiffusionPipeline",))
        unet_config = read_json(folder / "unet" / "config.json")
        scheduler_config = read_json(folder / "scheduler" / "scheduler_config.json")
        scheduler_name = scheduler_config.get("_class_name")
        if scheduler_name not in _SUPPORTED_SCHEDULERS:
            raise ModelLoadError(
                f"scheduler {scheduler_name!r} in {str(folder / 'scheduler')!r} is not supported: "
                f"expected one of {', '.join(_SUPPORTED_SCHEDULERS)}"
            )
        if options.scheduler is not None and options.scheduler.strip().lower() != "ipndm":
            # the checkpoints are v-objective models on continuous time; other schedulers need
            # a different noise parameterisation and would produce noise, not audio
            raise RequestError("scheduler", options.scheduler, "ipndm (the only one Dance Diffusion runs)")
        _capabilities(unet_config)  # fail early on a config without a sample rate
        device = torch.device(device)
        dtype = resolve_dtype(dtype, device)
        unet = load_component(UNet1DModel, folder, "unet", dtype, **_config_overrides(unet_config))
        unet = unet.to(device).eval()
        backend = cls(folder, device, dtype, unet, unet_config, scheduler_config)
        if options.compile:
            backend.unet = torch.compile(unet)  # type: ignore[assignment]
        return backend

    @classmethod
    def inspect(cls, path: Path) -> Capabilities:
        return _capabilities(read_json(Path(path) / "unet" / "config.json"))

    @classmethod
    def render_settings(cls, device: torch.device, dtype: torch.dtype, options: LoadOptions) -> dict[str, str]:
        settings = super().render_settings(device, dtype, options)
        if settings.get("scheduler") == "ipndm":
            del settings["scheduler"]  # the checkpoint's own: the same audio as naming none
        return settings

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def modules(self) -> list[torch.nn.Module]:
        return [self.unet]

    # ---- generation -----------------------------------------------------------------------

    def _new_scheduler(self) -> Any:
        # a fresh scheduler per batch: schedulers keep step state, and a shared one would race
        from diffusers import IPNDMScheduler

        return IPNDMScheduler.from_config(self._scheduler_config)

    def _generate(self, requests: list[GenerateRequest], progress: ProgressCallback | None) -> list[GeneratedAudio]:
        caps = self._caps
        groups = group_requests(requests, self._plan)
        total_steps = sum(steps - start for (_, steps, start), _ in groups) or 1
        done = 0
        outputs: list[GeneratedAudio | None] = [None] * len(requests)
        for (frames, steps, start), members in groups:
            group = [requests[i] for i in members]

            def step_progress(n: int, base: int = done) -> None:
                if progress is not None:
                    progress((base + n) / total_steps)

            audio = self._sample(group, frames, steps, start, step_progress)
            done += steps - start
            for i, row in zip(members, audio, strict=True):
                request = requests[i]
                out = row[:, : _frames_for(request, caps.sample_rate)]
                outputs[i] = GeneratedAudio(
                    audio=np.ascontiguousarray(out, dtype=np.float32),
                    sample_rate=caps.sample_rate,
                    info={"steps": steps, "strength": request.audio_prompt_strength if request.audio_prompt else None},
                )
        return [o for o in outputs if o is not None]

    def _plan(self, request: GenerateRequest) -> tuple[int, int, int]:
        """(padded frames, steps, first step index) for a request."""
        frames = _frames_for(request, self._caps.sample_rate)
        multiple = self._length_multiple
        padded = max(3 * multiple, math.ceil(frames / multiple) * multiple)
        steps = request.steps or self._caps.default_steps
        start = 0
        if request.audio_prompt is not None:
            start = min(steps, int(round(steps * (1.0 - request.audio_prompt_strength))))
        return padded, steps, start

    @torch.inference_mode()
    def _sample(
        self,
        group: list[GenerateRequest],
        frames: int,
        steps: int,
        start: int,
        step_progress: Any,
    ) -> np.ndarray:
        channels = self._caps.channels
        scheduler = self._new_scheduler()
        scheduler.set_timesteps(steps, device=self.device)
        noise = batch_noise(group, (channels, frames), self.device, self.dtype)
        if start > 0:
            prompts = torch.stack([self._prompt_tensor(r, frames) for r in group]).to(self.device, self.dtype)
            alpha, beta = scheduler.alphas[start].item(), scheduler.betas[start].item()
            sample = alpha * prompts + beta * noise
            if start >= steps:
                return sample.clamp(-1, 1).float().cpu().numpy()
            scheduler.set_begin_index(start)
        else:
            sample = noise
        timesteps = scheduler.timesteps[start:].to(self.dtype)
        for n, t in enumerate(timesteps, start=1):
            model_output = self.unet(sample, t).sample
            sample = scheduler.step(model_output, t, sample).prev_sample
            step_progress(n)
        return sample.clamp(-1, 1).float().cpu().numpy()

    def _prompt_tensor(self, request: GenerateRequest, frames: int) -> torch.Tensor:
        prompt = request.audio_prompt
        assert prompt is not None  # only called for requests with one (checked by the caller)
        audio = resample(prompt.audio, prompt.sample_rate, self._caps.sample_rate)
        audio = match_channels(audio, self._caps.channels)
        return torch.from_numpy(np.array(fit_length(audio, frames)))


def _config_overrides(unet_config: dict[str, Any]) -> dict[str, Any]:
    """Settings that Harmonai's published configs leave implicit.

    Their configs predate ``time_embedding_dim``: the Fourier time features are concatenated to the
    input as its ``extra_in_channels``, so their width is exactly that. Newer diffusers would
    otherwise default the width to twice the first block's channels and fail to load the weights.
    """
    if (
        unet_config.get("time_embedding_dim") is None
        and unet_config.get("time_embedding_type", "fourier") == "fourier"
        and not unet_config.get("use_timestep_embedding", False)
        and unet_config.get("extra_in_channels", 0) > 0
    ):
        return {"time_embedding_dim": int(unet_config["extra_in_channels"])}
    return {}


def _frames_for(request: GenerateRequest, sample_rate: int) -> int:
    return max(1, int(round(request.render_duration_s * sample_rate)))


def _capabilities(unet_config: dict[str, Any]) -> Capabilities:
    sample_rate = unet_config.get("sample_rate")
    sample_size = unet_config.get("sample_size")
    if not isinstance(sample_rate, int) or not isinstance(sample_size, int) or sample_rate <= 0 or sample_size <= 0:
        raise ModelLoadError(
            f"UNet config has sample_rate={sample_rate!r}, sample_size={sample_size!r}: expected positive integers"
        )
    multiple = 2 ** len(unet_config.get("up_block_types", ()))
    return Capabilities(
        family=DanceDiffusionBackend.family,
        sample_rate=sample_rate,
        channels=int(unet_config.get("in_channels", 2)),
        max_duration_s=round(_MAX_LENGTH_FACTOR * sample_size / sample_rate, 3),
        min_duration_s=round(3 * multiple / sample_rate, 4),
        text_prompt=False,
        audio_prompt=True,
        kinds=frozenset({Kind.ONE_SHOT, Kind.LOOP, Kind.TEXTURE}),
        default_steps=100,
        default_guidance=None,
        max_batch=8,
    )
