"""Stable Audio Open: text → 44.1 kHz stereo, up to about 47 s, through diffusers' ``StableAudioPipeline``.

The model is conditioned on where its output sits in a longer piece (``start_s``) and on the total
length, both in seconds; the request's ``start_s`` and length go straight to it. It was trained with
tempos written in its captions, so when a loop is asked for, the host tempo is added to the prompt
(``"…, 128 BPM"``) unless the prompt already names one; the conform stage then fits the result to
the bar.

Audio prompts are not taken: the pipeline's ``initial_audio_waveforms`` is added under full-strength
noise (there is no strength to choose), which is not the partial noising a variation needs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import fit_length
from ..errors import RequestError
from ..request import GenerateRequest, Kind
from .base import Capabilities, GeneratedAudio, ProgressCallback, batch_noise, read_json
from .diffusers_support import (
    DiffusersPipelineBackend,
    SchedulerChoice,
    StepProgress,
    check_pipeline_folder,
    group_requests,
    load_pipeline,
    oom_guard,
    seeded_generators,
)

#: Stable Audio is a continuous-time (EDM-style, v-prediction) model: only sigma-based schedulers fit
SCHEDULERS: dict[str, SchedulerChoice] = {
    # the checkpoint's own: stochastic DPM-Solver++ on a cosine schedule
    "dpm++-sde": SchedulerChoice("CosineDPMSolverMultistepScheduler"),
    # deterministic DPM-Solver++: good results in fewer steps
    "dpm++": SchedulerChoice("EDMDPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "euler": SchedulerChoice("EDMEulerScheduler"),
}

_TEMPO_IN_PROMPT = re.compile(r"\d+(?:\.\d+)?\s*bpm\b", re.IGNORECASE)


def prompt_with_tempo(request: GenerateRequest) -> str:
    """The prompt sent to the model: a loop's prompt gains ``", <tempo> BPM"`` unless it names a tempo (and
    the song's key in words, when one is asked: :attr:`~loopbridge.engine.request.GenerateRequest.model_prompt`)."""
    prompt = request.model_prompt
    if request.kind is not Kind.LOOP or _TEMPO_IN_PROMPT.search(prompt):
        return prompt
    tempo = f"{request.tempo_bpm:.2f}".rstrip("0").rstrip(".")
    return f"{prompt}, {tempo} BPM" if prompt else f"{tempo} BPM"


class StableAudioBackend(DiffusersPipelineBackend):
    """Stable Audio Open (``stabilityai/stable-audio-open-1.0`` and its layout)."""

    family = "stable-audio"
    schedulers = SCHEDULERS
    denoiser = "transformer"

    @classmethod
    def _load_pipeline(cls, path: Path, dtype: torch.dtype) -> Any:
        from diffusers import StableAudioPipeline

        return load_pipeline(StableAudioPipeline, path, dtype)

    @classmethod
    def inspect(cls, path: Path) -> Capabilities:
        """Rate, channels and maximum length from the VAE's and the transformer's configs."""
        path = Path(path)
        check_pipeline_folder(path, expected_classes=("StableAudioPipeline",))
        vae = read_json(path / "vae" / "config.json")
        transformer = read_json(path / "transformer" / "config.json")
        sample_rate = int(vae.get("sampling_rate", 44100))
        hop = int(np.prod(vae.get("downsampling_ratios", [2, 4, 4, 8, 8])))
        max_duration_s = int(transformer.get("sample_size", 1024)) * hop / sample_rate
        return Capabilities(
            family=cls.family,
            sample_rate=sample_rate,
            channels=int(vae.get("audio_channels", 2)),
            max_duration_s=max_duration_s,
            start_offset=True,
            min_duration_s=max(0.05, hop / sample_rate),
            text_prompt=True,
            audio_prompt=False,
            negative_prompt=True,
            morph=False,
            kinds=frozenset({Kind.ONE_SHOT, Kind.LOOP, Kind.TEXTURE}),
            default_steps=100,
            default_guidance=7.0,
            max_batch=4,
        )

    def check(self, request: GenerateRequest) -> None:
        super().check(request)
        caps = self.capabilities
        end_s = request.start_s + request.render_duration_s
        if end_s > caps.max_duration_s + 1e-6:
            raise RequestError(
                "start_s",
                request.start_s,
                f"start_s + duration ≤ {caps.max_duration_s:.2f} s for model {request.model!r} "
                f"(asked for {request.render_duration_s:.2f} s from {request.start_s:g} s)",
            )

    def _generate(self, requests: list[GenerateRequest], progress: ProgressCallback | None) -> list[GeneratedAudio]:
        caps = self.capabilities
        pipe = self.pipeline

        def settings(request: GenerateRequest) -> tuple[Any, ...]:
            steps = request.steps or caps.default_steps
            guidance = request.guidance if request.guidance is not None else float(caps.default_guidance or 1.0)
            start_s = float(request.start_s)
            # a missing negative prompt means "unconditioned" (zeros) to this pipeline, which an empty
            # one does not: rows with and without one go in separate calls
            end_s = round(start_s + request.render_duration_s, 6)
            return steps, guidance, start_s, end_s, bool(request.negative_prompt)

        groups = group_requests(requests, settings)
        tracker = StepProgress(progress, sum(key[0] for key, _ in groups))
        outputs: list[GeneratedAudio | None] = [None] * len(requests)
        device = self.execution_device
        shape = (pipe.transformer.config.in_channels, pipe.transformer.config.sample_size)
        with self._lock, oom_guard("generating with stable-audio"):
            for (steps, guidance, start_s, end_s, has_negative), rows in groups:
                group = [requests[i] for i in rows]
                prompts = [prompt_with_tempo(r) for r in group]
                result = pipe(
                    prompt=prompts,
                    negative_prompt=[r.negative_prompt for r in group] if has_negative else None,
                    audio_start_in_s=start_s,
                    audio_end_in_s=end_s,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    latents=batch_noise(group, shape, device, pipe.transformer.dtype),
                    generator=seeded_generators([r.effective_seed for r in group], device),
                    callback=tracker.step,
                    callback_steps=1,
                    output_type="np",
                )
                audios = np.asarray(result.audios, dtype=np.float32)
                # the pipeline cuts at int(seconds · rate); the engine wants round(duration · rate)
                samples = round((end_s - start_s) * caps.sample_rate)
                for row, audio, prompt in zip(rows, audios, prompts, strict=True):
                    outputs[row] = GeneratedAudio(
                        np.ascontiguousarray(fit_length(audio, samples), dtype=np.float32),
                        caps.sample_rate,
                        {"steps": steps, "guidance": guidance, "prompt_sent": prompt, "start_s": start_s},
                    )
        tracker.finish()
        return [out for out in outputs if out is not None]
