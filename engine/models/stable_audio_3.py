"""Stable Audio 3: text → 44.1 kHz stereo, and work on a user's audio, through diffusers'
``StableAudio3Pipeline``, ``StableAudio3InpaintPipeline`` and ``StableAudio3AudioToAudioPipeline``.

One checkpoint folder (``model_index.json`` naming any of the three) serves every task: the three
pipelines share the same components, so the two for a user's audio are made over the loaded ones.

- ``generate``: a distilled rectified flow in about 8 steps (guidance baked in, so off by default),
  ``duration`` in seconds. The model was trained on captions that name tempo and key: a loop's prompt
  gains the host's tempo (``"…, 128 BPM"``), the song's key when the request has one and the meter
  when it is not four beats a bar, unless the prompt already names a tempo. Conformed as usual.
- ``continue`` / ``replace``: inpainting (``mask_start_seconds`` / ``mask_end_seconds``) over the
  source padded by the new bars, or over the bars to replace; the source is then put back to the
  sample (:mod:`.source_tasks`).
- ``transform``: audio-to-audio, ``init_noise_level`` = the request's strength.

``extract`` and ``add`` are ACE-Step's: this model is not trained for them.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import fit_length
from ..request import GenerateRequest, Kind, Task
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
from .source_tasks import key_name, new_span_s, output_frames, settings_key, source_audio, splice, task_info

PIPELINES = ("StableAudio3Pipeline", "StableAudio3InpaintPipeline", "StableAudio3AudioToAudioPipeline")

#: rectified-flow samplers: the distilled checkpoint's re-noising ("ping-pong") one, or plain Euler (the base's)
SCHEDULERS: dict[str, SchedulerChoice] = {
    "ping-pong": SchedulerChoice("FlowMatchEulerDiscreteScheduler", {"stochastic_sampling": True}),
    "euler": SchedulerChoice("FlowMatchEulerDiscreteScheduler", {"stochastic_sampling": False}),
}

TASKS = frozenset({Task.GENERATE, Task.CONTINUE, Task.REPLACE, Task.TRANSFORM})

_TEMPO_IN_PROMPT = re.compile(r"\d+(?:\.\d+)?\s*bpm\b", re.IGNORECASE)


def caption(request: GenerateRequest) -> str:
    """The prompt sent to the model: a loop's (and a task's) prompt gains the tempo, the key when the
    request has one and a meter other than four beats, unless it names a tempo itself."""
    prompt = request.prompt.strip()
    if (request.kind is not Kind.LOOP and request.task is Task.GENERATE) or _TEMPO_IN_PROMPT.search(prompt):
        return prompt
    words = [f"{request.tempo_bpm:.2f}".rstrip("0").rstrip(".") + " BPM"]
    key = key_name(request)
    if key:
        words.append(key)
    if request.beats_per_bar != 4:
        words.append(f"{request.beats_per_bar}/4")
    return ", ".join([prompt, *words] if prompt else words)


class StableAudio3Backend(DiffusersPipelineBackend):
    """Stable Audio 3 (``stabilityai/stable-audio-3-*`` and their layout)."""

    family = "stable-audio-3"
    schedulers = SCHEDULERS
    denoiser = "transformer"

    @classmethod
    def _load_pipeline(cls, path: Path, dtype: torch.dtype) -> Any:
        from diffusers import StableAudio3Pipeline

        return load_pipeline(StableAudio3Pipeline, path, dtype)

    @classmethod
    def inspect(cls, path: Path) -> Capabilities:
        """Rate, channels, hop and longest duration from the autoencoder's, the duration embedder's and
        the scheduler's configs."""
        path = Path(path)
        check_pipeline_folder(path, expected_classes=PIPELINES)
        vae = read_json(path / "vae" / "config.json")
        durations = read_json(path / "duration_embedder" / "config.json")
        scheduler = read_json(path / "scheduler" / "scheduler_config.json")
        sample_rate = int(vae.get("sampling_rate", 44100))
        hop = int(vae.get("patch_size", 256)) * math.prod(int(s) for s in vae.get("encoder_strides", [16]))
        distilled = bool(scheduler.get("stochastic_sampling", True))
        return Capabilities(
            family=cls.family,
            sample_rate=sample_rate,
            channels=int(vae.get("audio_channels", 2)),
            # the duration conditioning saturates at max_val: longer asks are all heard as that long
            max_duration_s=float(durations.get("max_val", 384.0)),
            min_duration_s=max(0.05, hop / sample_rate),
            text_prompt=True,
            audio_prompt=False,
            negative_prompt=False,
            kinds=frozenset({Kind.ONE_SHOT, Kind.LOOP, Kind.TEXTURE}),
            default_steps=8 if distilled else 100,
            default_guidance=1.0,
            max_batch=4,
            tasks=TASKS,
        )

    def _task_pipeline(self, class_name: str) -> Any:
        """The inpainting or audio-to-audio pipeline over the loaded components (made once)."""
        cache: dict[str, Any] = self.__dict__.setdefault("_task_pipelines", {})
        if class_name not in cache:
            import diffusers

            pipeline = getattr(diffusers, class_name)(**self.pipeline.components)
            pipeline.set_progress_bar_config(disable=True)
            cache[class_name] = pipeline
        return cache[class_name]

    def _generate(self, requests: list[GenerateRequest], progress: ProgressCallback | None) -> list[GeneratedAudio]:
        caps = self.capabilities
        pipe = self.pipeline

        def settings(request: GenerateRequest) -> tuple[Any, ...]:
            steps = request.steps or caps.default_steps
            guidance = request.guidance if request.guidance is not None else float(caps.default_guidance or 1.0)
            return steps, guidance, settings_key(request)

        groups = group_requests(requests, settings)
        tracker = StepProgress(progress, sum(key[0] for key, _ in groups))
        outputs: list[GeneratedAudio | None] = [None] * len(requests)
        device = self.execution_device
        rate = caps.sample_rate
        hop = int(pipe.vae.downsampling_ratio)
        with self._lock, oom_guard("generating with stable-audio-3"):
            for (steps, guidance, _), rows in groups:
                group = [requests[i] for i in rows]
                first = group[0]
                duration_s = first.render_duration_s
                latents = batch_noise(group, (pipe.vae.config.latent_dim, math.ceil(duration_s * rate / hop)), device,
                                      pipe.transformer.dtype)
                prompts = [caption(r) for r in group]
                common: dict[str, Any] = dict(
                    prompt=prompts, duration=duration_s, num_inference_steps=steps, latents=latents,
                    generator=seeded_generators([r.effective_seed for r in group], device),
                    callback_on_step_end=tracker.on_step_end, output_type="np",
                )
                source = None
                if first.task is Task.GENERATE:
                    result = pipe(guidance_scale=guidance, **common)
                else:
                    source = source_audio(first, rate, caps.channels)
                    if first.task is Task.TRANSFORM:
                        audio = torch.from_numpy(source)[None]
                        result = self._task_pipeline("StableAudio3AudioToAudioPipeline")(
                            audio=audio, init_noise_level=float(first.audio_prompt_strength), **common)
                    else:  # continue or replace: inpaint the new span of the source (padded by the new bars)
                        start_s, end_s = new_span_s(first)
                        audio = torch.from_numpy(fit_length(source, output_frames(first, rate)))[None]
                        result = self._task_pipeline("StableAudio3InpaintPipeline")(
                            audio=audio, mask_start_seconds=start_s, mask_end_seconds=end_s, **common)
                audios = np.asarray(result.audios, dtype=np.float32)
                samples = output_frames(first, rate)
                for row, audio_out, prompt in zip(rows, audios, prompts, strict=True):
                    request = requests[row]
                    info: dict[str, Any] = {"steps": steps, "guidance": guidance, "prompt_sent": prompt}
                    if source is not None:
                        audio_out = splice(request, audio_out, source, rate)
                        info.update(task_info(request))
                    outputs[row] = GeneratedAudio(
                        np.ascontiguousarray(fit_length(audio_out, samples), dtype=np.float32), rate, info)
        tracker.finish()
        return [out for out in outputs if out is not None]
