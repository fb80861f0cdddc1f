"""ACE-Step: music at 48 kHz stereo conditioned on tempo, key and meter, and every task on a user's
audio, through diffusers' ``AceStepPipeline``.

The model takes the song's facts as values of their own (``bpm``, ``keyscale``, ``timesignature``),
so they go to it as such, never into the prompt: the host's tempo (rounded to a whole BPM, as the
model was trained), the request's key when its type has one, the engine's bar (beats a bar). Tasks map
onto the pipeline's ``task_type``:

- ``generate`` → ``text2music``;
- ``continue`` → ``repaint`` of the new bars after the source padded with silence (the pipeline's
  ``complete`` adds tracks over the whole clip, it does not go on past its end), then the source is
  put back to the sample (:mod:`.source_tasks`);
- ``replace`` → ``repaint`` of the bars asked for, the rest put back to the sample;
- ``transform`` → ``cover`` of the source: ``audio_cover_strength`` = 1 − the request's strength
  (the pipeline's strength is how much of the source is kept);
- ``extract`` → ``extract`` of the request's ``track``;
- ``add`` → ``lego``: a new ``track`` that fits the source, alone (conformed on the source's grid).

The autoencoder draws its latents from torch's global generator when it encodes a source; that draw is
seeded from the source's digest (inside a forked generator state), so a task renders the same every
time, and each variation the same alone or in a batch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import fit_length
from ..request import DURATION_MAX_S, GenerateRequest, Kind, Task
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
from .source_tasks import key_name, meter_name, new_span_s, output_frames, settings_key, source_audio, splice, task_info

#: the pipeline computes its own shifted sigmas and hands them to this scheduler: no other fits
SCHEDULERS: dict[str, SchedulerChoice] = {"euler": SchedulerChoice("FlowMatchEulerDiscreteScheduler")}

#: the pipeline's task for each of ours
TASK_TYPES: dict[Task, str] = {
    Task.GENERATE: "text2music",
    Task.CONTINUE: "repaint",
    Task.REPLACE: "repaint",
    Task.TRANSFORM: "cover",
    Task.EXTRACT: "extract",
    Task.ADD: "lego",
}


class AceStepBackend(DiffusersPipelineBackend):
    """ACE-Step 1.5 (``ACE-Step/acestep-v15-*-diffusers`` and their layout)."""

    family = "ace-step"
    schedulers = SCHEDULERS
    denoiser = "transformer"

    @classmethod
    def _load_pipeline(cls, path: Path, dtype: torch.dtype) -> Any:
        from diffusers import AceStepPipeline

        return load_pipeline(AceStepPipeline, path, dtype)

    @classmethod
    def inspect(cls, path: Path) -> Capabilities:
        """Rate, channels and hop from the autoencoder's config; steps and guidance from whether the
        transformer is the distilled ("turbo") one; covers only with the audio tokenizer present."""
        path = Path(path)
        index = check_pipeline_folder(path, expected_classes=("AceStepPipeline",))
        vae = read_json(path / "vae" / "config.json")
        transformer = read_json(path / "transformer" / "config.json")
        sample_rate = int(vae.get("sampling_rate", 48000))
        hop = math.prod(int(r) for r in vae.get("downsampling_ratios", [1920]))
        turbo = bool(transformer.get("is_turbo")) or transformer.get("model_version") == "turbo"
        tasks = set(TASK_TYPES)
        has_tokenizer = all(isinstance(index.get(name), list) and index[name][0] is not None
                            for name in ("audio_tokenizer", "audio_token_detokenizer"))
        if not has_tokenizer:
            tasks.discard(Task.TRANSFORM)
        return Capabilities(
            family=cls.family,
            sample_rate=sample_rate,
            channels=int(vae.get("audio_channels", 2)),
            max_duration_s=DURATION_MAX_S,  # ACE-Step 1.5 makes up to ten minutes
            min_duration_s=max(0.05, hop / sample_rate),
            text_prompt=True,
            audio_prompt=False,
            negative_prompt=False,
            kinds=frozenset({Kind.ONE_SHOT, Kind.LOOP, Kind.TEXTURE}),
            default_steps=8 if turbo else 50,
            default_guidance=1.0 if turbo else 7.0,
            max_batch=4,
            tasks=frozenset(tasks),
            musical_conditioning=True,
        )

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
        hop = round(rate / pipe.latents_per_second)
        acoustic = int(pipe.transformer.config.audio_acoustic_hidden_dim)
        with self._lock, oom_guard("generating with ace-step"):
            for (steps, guidance, _), rows in groups:
                group = [requests[i] for i in rows]
                first = group[0]
                frames = output_frames(first, rate)
                latent_length = math.ceil(frames / hop)
                kwargs: dict[str, Any] = dict(
                    # one lyrics entry a row: a single string is taken for the first row only
                    prompt=[r.prompt for r in group], lyrics=[""] * len(group),
                    audio_duration=latent_length * hop / rate,
                    num_inference_steps=steps, guidance_scale=guidance,
                    latents=batch_noise(group, (latent_length, acoustic), device, pipe.transformer.dtype),
                    generator=seeded_generators([r.effective_seed for r in group], device),
                    callback_on_step_end=tracker.on_step_end, output_type="np",
                    bpm=int(round(first.tempo_bpm)), keyscale=key_name(first), timesignature=meter_name(first),
                    task_type=TASK_TYPES[first.task],
                )
                source = None
                if first.task is not Task.GENERATE:
                    source = source_audio(first, rate, caps.channels)
                    # whole latent frames: the source's latents then line up with the noise
                    kwargs["src_audio"] = torch.from_numpy(fit_length(source, latent_length * hop))
                    if first.task in (Task.CONTINUE, Task.REPLACE):
                        kwargs["repainting_start"], kwargs["repainting_end"] = new_span_s(first)
                    elif first.task is Task.TRANSFORM:
                        kwargs["audio_cover_strength"] = 1.0 - float(first.audio_prompt_strength)
                    elif first.track:
                        kwargs["track_name"] = first.track
                    forked = [device.index or 0] if device.type == "cuda" else []
                    with torch.random.fork_rng(devices=forked):
                        # drawn from the source alone: a variation sounds the same rendered alone or in a batch
                        torch.manual_seed(int(first.audio_prompt.digest[:8], 16) if first.audio_prompt else 0)
                        result = pipe(**kwargs)
                else:
                    result = pipe(**kwargs)
                audios = np.asarray(result.audios, dtype=np.float32)
                for row, audio_out in zip(rows, audios, strict=True):
                    request = requests[row]
                    info: dict[str, Any] = {"steps": steps, "guidance": guidance, "bpm": kwargs["bpm"],
                                            "timesignature": kwargs["timesignature"]}
                    if kwargs["keyscale"]:
                        info["keyscale"] = kwargs["keyscale"]
                    if source is not None:
                        audio_out = splice(request, audio_out, source, rate)
                        info.update(task_info(request))
                    outputs[row] = GeneratedAudio(
                        np.ascontiguousarray(fit_length(audio_out, frames), dtype=np.float32), rate, info)
        tracker.finish()
        return [out for out in outputs if out is not None]
