"""AudioLDM and AudioLDM 2: text → 16 kHz mono sound effects, ambiences and textures.

Both run diffusers' own pipelines (``AudioLDMPipeline``, ``AudioLDM2Pipeline``) loaded offline from
a local folder. The backend adds what the engine needs around them: each row's starting noise drawn
from its own request's seed (a variation sounds the same alone or batched), requests grouped into
one pipeline call where their steps, guidance and length agree, per-step progress, and the audio
returned at the model's native rate (the engine's conform stage resamples it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..audio import fit_length
from ..request import GenerateRequest, Kind
from .base import Capabilities, GeneratedAudio, ProgressCallback, batch_noise, read_json
from .diffusers_support import (
    DiffusersPipelineBackend,
    StepProgress,
    check_pipeline_folder,
    group_requests,
    load_pipeline,
    oom_guard,
    seeded_generators,
)

#: AudioLDM and AudioLDM 2 were trained on 10.24 s clips. Their UNets are convolutional in time and
#: run longer, but past about twice the training length the result loses its structure.
MAX_DURATION_S = 20.48


class _AudioLDMFamily(DiffusersPipelineBackend):
    """What AudioLDM and AudioLDM 2 share; subclasses name the pipeline and its defaults."""

    pipeline_class_name: ClassVar[str]
    default_steps: ClassVar[int]
    default_guidance: ClassVar[float]

    @classmethod
    def _load_pipeline(cls, path: Path, dtype: torch.dtype) -> Any:
        import diffusers

        return load_pipeline(getattr(diffusers, cls.pipeline_class_name), path, dtype)

    @classmethod
    def inspect(cls, path: Path) -> Capabilities:
        """Capabilities from ``model_index.json`` and the vocoder's config (no weights are read)."""
        path = Path(path)
        check_pipeline_folder(path, expected_classes=(cls.pipeline_class_name,))
        vocoder = read_json(path / "vocoder" / "config.json")
        sample_rate = int(vocoder.get("sampling_rate", 16000))
        return Capabilities(
            family=cls.family,
            sample_rate=sample_rate,
            channels=1,
            max_duration_s=MAX_DURATION_S,
            min_duration_s=cls._min_duration_s(path, vocoder),
            text_prompt=True,
            audio_prompt=False,
            negative_prompt=True,
            morph=False,
            kinds=frozenset({Kind.ONE_SHOT, Kind.LOOP, Kind.TEXTURE}),
            default_steps=cls.default_steps,
            default_guidance=cls.default_guidance,
        )

    @staticmethod
    def _min_duration_s(path: Path, vocoder: dict[str, Any]) -> float:
        """One latent frame: the shortest length the pipeline can make."""
        vae = read_json(path / "vae" / "config.json")
        scale = 2 ** (len(vae.get("block_out_channels", [0])) - 1)
        hop = float(np.prod(vocoder.get("upsample_rates", [160])))
        return max(0.05, scale * hop / float(vocoder.get("sampling_rate", 16000)))

    # ---- generation -------------------------------------------------------------------------

    def _latent_shape(self, duration_s: float) -> tuple[int, int, int]:
        """The pipeline's latent shape for ``duration_s`` (the same arithmetic as its own prepare step)."""
        pipe = self.pipeline
        vocoder = pipe.vocoder.config
        upsample = float(np.prod(vocoder.upsample_rates)) / vocoder.sampling_rate
        scale = pipe.vae_scale_factor
        height = int(duration_s / upsample)
        if height % scale:
            height = int(np.ceil(height / scale)) * scale
        return (pipe.unet.config.in_channels, height // scale, int(vocoder.model_in_dim) // scale)

    def _call_kwargs(self, requests: list[GenerateRequest]) -> dict[str, Any]:
        """Extra per-family arguments for one pipeline call."""
        return {}

    def _generate(self, requests: list[GenerateRequest], progress: ProgressCallback | None) -> list[GeneratedAudio]:
        caps = self.capabilities

        def settings(request: GenerateRequest) -> tuple[int, float, float]:
            steps = request.steps or caps.default_steps
            guidance = request.guidance if request.guidance is not None else float(caps.default_guidance or 1.0)
            return steps, guidance, round(request.render_duration_s, 6)

        groups = group_requests(requests, settings)
        tracker = StepProgress(progress, sum(key[0] for key, _ in groups))
        outputs: list[GeneratedAudio | None] = [None] * len(requests)
        device = self.execution_device
        with self._lock, oom_guard(f"generating with {self.family}"):
            for (steps, guidance, duration_s), rows in groups:
                group = [requests[i] for i in rows]
                latents = batch_noise(group, self._latent_shape(duration_s), device, self.pipeline.unet.dtype)
                negative = [r.negative_prompt for r in group] if any(r.negative_prompt for r in group) else None
                result = self.pipeline(
                    prompt=[r.model_prompt for r in group],  # the song's key in words, when asked
                    negative_prompt=negative,
                    audio_length_in_s=duration_s,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    latents=latents,
                    generator=seeded_generators([r.effective_seed for r in group], device),
                    callback=tracker.step,
                    callback_steps=1,
                    output_type="np",
                    **self._call_kwargs(group),
                )
                audios = np.asarray(result.audios, dtype=np.float32)
                samples = int(round(duration_s * caps.sample_rate))
                for row, audio in zip(rows, audios, strict=True):
                    mono = fit_length(audio.reshape(1, -1), samples)
                    outputs[row] = GeneratedAudio(
                        np.ascontiguousarray(mono, dtype=np.float32),
                        caps.sample_rate,
                        {"steps": steps, "guidance": guidance},
                    )
        tracker.finish()
        return [out for out in outputs if out is not None]


class AudioLDMBackend(_AudioLDMFamily):
    """AudioLDM (``cvssp/audioldm-s-full-v2`` and kin) through diffusers' ``AudioLDMPipeline``."""

    family = "audioldm"
    pipeline_class_name = "AudioLDMPipeline"
    default_steps = 10
    default_guidance = 2.5


class AudioLDM2Backend(_AudioLDMFamily):
    """AudioLDM 2 (``cvssp/audioldm2``, ``audioldm2-music``) through diffusers' ``AudioLDM2Pipeline``."""

    family = "audioldm2"
    pipeline_class_name = "AudioLDM2Pipeline"
    default_steps = 200
    default_guidance = 3.5

    def _call_kwargs(self, requests: list[GenerateRequest]) -> dict[str, Any]:
        # one waveform per prompt: more would make the pipeline rank candidates with CLAP and keep
        # the best, which breaks "one row per request, from its own seed"
        return {"num_waveforms_per_prompt": 1}
