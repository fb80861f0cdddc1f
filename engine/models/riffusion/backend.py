"""Riffusion: Stable Diffusion draws a spectrogram image, the codec turns it into audio.

A Riffusion checkpoint is an ordinary diffusers Stable Diffusion folder fine-tuned on spectrogram
images in the format of :mod:`.codec` (512×512 images, 5.12 s each). The backend loads the
pipeline's components and runs its own denoising loop over them, because three things it needs are
not in the stock pipelines at once:

- **Morph** between prompt A and prompt B as a knob (``morph_amount`` 0–1): the text embeddings
  are mixed linearly and the starting noise spherically, each end with its own seed (``seed`` and
  ``morph_seed``), so every point on the knob is repeatable. Without a morph prompt the same knob
  moves between the two seeds of one prompt.
- **Seed images**: an audio prompt becomes a spectrogram image, and generation starts from it
  partly noised (``audio_prompt_strength`` is the denoising strength, 0 keeps the image, 1 ignores
  it), so a loop keeps the seed's rhythm.
- **Long audio**: a render longer than one image is a walk of clips along the morph path,
  overlap-added with equal-power crossfades (see :func:`clip_plan`).

The folder may carry a ``loopbridge.json`` (``{"family": "riffusion", "image_width": 512,
"griffin_lim_iters": 32}``) for checkpoints trained at another image width (the height is always the
codec's 512 mel bands) or to trade phase quality for speed on a CPU.
"""

from __future__ import annotations

import inspect as pyinspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

from ...audio import match_channels, resample
from ...errors import ModelLoadError, RequestError
from ...request import AudioPrompt, GenerateRequest, Kind
from ..base import Capabilities, GeneratedAudio, ProgressCallback, read_json, seeded_generator
from ..diffusers_support import (
    DiffusersPipelineBackend,
    StepProgress,
    check_pipeline_folder,
    group_requests,
    load_pipeline,
    oom_guard,
)
from .codec import SpectrogramImage, SpectrogramImageCodec, SpectrogramParams

#: longest render: a walk of clips (each one Stable Diffusion run) along the morph path
MAX_DURATION_S = 60.0
#: crossfade between consecutive clips of a long render
CROSSFADE_S = 0.1
#: generated images carry no absolute level; decoded audio is scaled to this peak
OUTPUT_PEAK = 0.9
DEFAULT_IMAGE_WIDTH = 512
PIPELINE_CLASSES = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline")


def slerp(start: torch.Tensor, end: torch.Tensor, amount: float) -> torch.Tensor:
    """Spherical interpolation between two noise tensors of one shape (linear when nearly parallel).

    Keeps the result's norm where Gaussian noise lives, which a linear mix of two noises would shrink.
    """
    a, b = start.flatten().double(), end.flatten().double()
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    if abs(float(cos)) > 0.9995:
        mixed = (1.0 - amount) * a + amount * b
    else:
        theta = torch.arccos(cos.clamp(-1.0, 1.0))
        mixed = (torch.sin((1.0 - amount) * theta) * a + torch.sin(amount * theta) * b) / torch.sin(theta)
    return mixed.reshape(start.shape).to(start.dtype)


@dataclass(frozen=True)
class Clip:
    """One image of a render: where it sits on the morph path (text and noise) and its decode seed."""

    text_amount: float
    noise_amount: float
    decode_seed: int


def clip_plan(request: GenerateRequest, clip_s: float) -> list[Clip]:
    """The clips a request is made of.

    One clip when the render fits in one image: it sits at ``morph_amount`` for both text and
    noise. A longer render is ``N`` clips overlapping by :data:`CROSSFADE_S`; clip ``i`` takes its
    noise at ``i/(N−1)`` of the way from the first seed to the second (so the audio keeps evolving)
    and its text at ``morph_amount · i/(N−1)`` (so the render starts at prompt A and arrives at the
    knob's position).
    """
    duration_s = request.render_duration_s
    if duration_s <= clip_s + 1e-9:
        count = 1
    else:
        count = math.ceil((duration_s - CROSSFADE_S) / (clip_s - CROSSFADE_S) - 1e-9)
    base = request.effective_seed
    if count == 1:
        # Griffin-Lim's starting phases come from the nearer end's seed, so each end of the knob
        # sounds exactly like that prompt rendered on its own
        nearer = base if request.morph_amount < 0.5 else request.effective_morph_seed
        return [Clip(request.morph_amount, request.morph_amount, nearer)]
    return [
        Clip(request.morph_amount * i / (count - 1), i / (count - 1), (base + 7919 * i) % 2**32)
        for i in range(count)
    ]


def join_clips(clips: list[np.ndarray], overlap: int, total: int) -> np.ndarray:
    """Overlap-add mono clips ``[1, n]`` with equal-power crossfades of ``overlap`` samples; cut to ``total``."""
    if len(clips) == 1:
        return clips[0][:, :total]
    length = clips[0].shape[1]
    hop = length - overlap
    out = np.zeros((1, hop * (len(clips) - 1) + length), dtype=np.float32)
    ramp = np.sin(0.5 * np.pi * (np.arange(overlap, dtype=np.float32) + 0.5) / overlap)
    fade_in, fade_out = ramp, ramp[::-1]
    for index, clip in enumerate(clips):
        piece = clip.copy()
        if index > 0:
            piece[:, :overlap] *= fade_in
        if index < len(clips) - 1:
            piece[:, -overlap:] *= fade_out
        out[:, index * hop : index * hop + length] += piece
    return out[:, :total]


class RiffusionBackend(DiffusersPipelineBackend):
    """Riffusion (``riffusion/riffusion-model-v1`` and other spectrogram fine-tunes of Stable Diffusion)."""

    family = "riffusion"

    def __init__(
        self,
        path: Path | None,
        device: torch.device,
        dtype: torch.dtype,
        capabilities: Capabilities,
        image_width: int = DEFAULT_IMAGE_WIDTH,
        griffin_lim_iters: int = SpectrogramParams().griffin_lim_iters,
    ) -> None:
        super().__init__(path, device, dtype, capabilities)
        self.image_width = image_width
        self.codec = SpectrogramImageCodec(SpectrogramParams(griffin_lim_iters=griffin_lim_iters), device=device)

    # ---- loading ----------------------------------------------------------------------------

    @staticmethod
    def _folder_settings(path: Path) -> tuple[int, int]:
        """``image_width`` and ``griffin_lim_iters`` from the folder's ``loopbridge.json``, if any."""
        marker = Path(path) / "loopbridge.json"
        settings = read_json(marker) if marker.is_file() else {}
        width = settings.get("image_width", DEFAULT_IMAGE_WIDTH)
        if isinstance(width, bool) or not isinstance(width, int) or width < 64 or width % 64:
            raise ModelLoadError(f"{str(marker)!r}: image_width={width!r} is not accepted: expected a multiple of 64")
        iters = settings.get("griffin_lim_iters", SpectrogramParams().griffin_lim_iters)
        if isinstance(iters, bool) or not isinstance(iters, int) or not 1 <= iters <= 1000:
            raise ModelLoadError(f"{str(marker)!r}: griffin_lim_iters={iters!r} is not accepted: expected 1–1000")
        return width, iters

    @classmethod
    def _load_pipeline(cls, path: Path, dtype: torch.dtype) -> Any:
        from diffusers import StableDiffusionPipeline

        # the safety checker judges photographs; on spectrograms it only blanks random clips
        return load_pipeline(StableDiffusionPipeline, path, dtype, safety_checker=None, feature_extractor=None,
                             requires_safety_checker=False)

    @classmethod
    def _create(cls, path: Path, device: torch.device, dtype: torch.dtype, capabilities: Capabilities) -> Self:
        return cls(path, device, dtype, capabilities, *cls._folder_settings(path))

    @classmethod
    def inspect(cls, path: Path) -> Capabilities:
        path = Path(path)
        check_pipeline_folder(path, expected_classes=PIPELINE_CLASSES, skip=("safety_checker", "feature_extractor"))
        cls._folder_settings(path)
        return Capabilities(
            family=cls.family,
            sample_rate=SpectrogramParams().sample_rate,
            channels=1,
            max_duration_s=MAX_DURATION_S,
            min_duration_s=0.05,
            text_prompt=True,
            audio_prompt=True,
            negative_prompt=True,
            morph=True,
            kinds=frozenset({Kind.ONE_SHOT, Kind.LOOP, Kind.TEXTURE}),
            default_steps=50,
            default_guidance=7.0,
            max_batch=4,
        )

    @property
    def clip_s(self) -> float:
        """Seconds of audio in one generated image."""
        params = self.codec.params
        return params.samples_for(self.image_width) / params.sample_rate

    # ---- pieces of generation ---------------------------------------------------------------

    def seed_image(self, prompt: AudioPrompt) -> SpectrogramImage:
        """The spectrogram image of an audio prompt's first clip (padded with silence if shorter)."""
        params = self.codec.params
        audio = resample(match_channels(prompt.audio, 1), prompt.sample_rate, params.sample_rate)
        samples = params.samples_for(self.image_width)
        clip = np.zeros((1, samples), dtype=np.float32)
        clip[:, : min(samples, audio.shape[1])] = audio[:, :samples]
        if not np.any(clip):
            raise RequestError("audio_prompt", "silence", "audio with some sound in its first clip")
        return self.codec.encode(clip)

    def _image_tensor(self, image: SpectrogramImage) -> torch.Tensor:
        """Grayscale pixels → the pipeline's image input ``[3, H, W]`` in −1…1."""
        pixels = torch.from_numpy(image.pixels.astype(np.float32)) / 127.5 - 1.0
        return pixels[None].expand(3, -1, -1)

    def _encode_texts(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """CLIP embeddings ``[77, dim]`` for each distinct text."""
        unique = sorted(set(texts))
        embeds, _ = self.pipeline.encode_prompt(unique, self.execution_device, 1, False)
        return dict(zip(unique, embeds, strict=True))

    def _denoise(
        self,
        cond: torch.Tensor,
        uncond: torch.Tensor,
        noise: torch.Tensor,
        init_latents: torch.Tensor | None,
        steps: int,
        guidance: float,
        strength: float,
        generators: list[torch.Generator],
        tracker: StepProgress,
    ) -> torch.Tensor:
        """Run the sampler over a batch of rows; returns the final latents."""
        pipe = self.pipeline
        scheduler = pipe.scheduler
        device = self.execution_device
        scheduler.set_timesteps(steps, device=device)
        timesteps = scheduler.timesteps
        order = getattr(scheduler, "order", 1)
        if init_latents is None:
            latents = noise * scheduler.init_noise_sigma
        else:
            # img2img: skip the first (1 − strength) of the schedule and noise the seed to that level
            kept = min(int(steps * strength), steps)
            start = max(steps - kept, 0)
            timesteps = timesteps[start * order :]
            if hasattr(scheduler, "set_begin_index"):
                scheduler.set_begin_index(start * order)
            if len(timesteps) == 0:
                return init_latents
            latents = scheduler.add_noise(init_latents, noise, timesteps[:1].repeat(init_latents.shape[0]))
        guided = guidance > 1.0
        context = torch.cat([uncond, cond]) if guided else cond
        step_kwargs: dict[str, Any] = {}
        if "generator" in pyinspect.signature(scheduler.step).parameters:
            step_kwargs["generator"] = generators
        for index, timestep in enumerate(timesteps):
            model_input = torch.cat([latents] * 2) if guided else latents
            model_input = scheduler.scale_model_input(model_input, timestep)
            prediction = pipe.unet(model_input, timestep, encoder_hidden_states=context, return_dict=False)[0]
            if guided:
                unconditioned, conditioned = prediction.chunk(2)
                prediction = unconditioned + guidance * (conditioned - unconditioned)
            latents = scheduler.step(prediction, timestep, latents, **step_kwargs, return_dict=False)[0]
            if (index + 1) % order == 0 or index == len(timesteps) - 1:
                tracker.step()
        return latents

    def _decode_images(self, latents: torch.Tensor) -> list[SpectrogramImage]:
        vae = self.pipeline.vae
        images = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
        gray = ((images.float().clamp(-1, 1) + 1.0) * 127.5).mean(dim=1)
        pixels = gray.round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        return [SpectrogramImage(np.ascontiguousarray(p)) for p in pixels]

    def _encode_seed(self, image: SpectrogramImage) -> torch.Tensor:
        vae = self.pipeline.vae
        tensor = self._image_tensor(image)[None].to(self.execution_device, vae.dtype)
        # the latent distribution's mean, not a sample: the seed image enters the same way every time
        return vae.encode(tensor).latent_dist.mode() * vae.config.scaling_factor

    # ---- generation -------------------------------------------------------------------------

    def _generate(self, requests: list[GenerateRequest], progress: ProgressCallback | None) -> list[GeneratedAudio]:
        caps = self.capabilities
        pipe = self.pipeline
        params = self.codec.params
        device = self.execution_device
        dtype = pipe.unet.dtype
        scale = pipe.vae_scale_factor
        latent_shape = (pipe.unet.config.in_channels, params.n_mels // scale, self.image_width // scale)

        def settings(request: GenerateRequest) -> tuple[int, float, float | None]:
            steps = request.steps or caps.default_steps
            guidance = request.guidance if request.guidance is not None else float(caps.default_guidance or 1.0)
            strength = request.audio_prompt_strength if request.audio_prompt is not None else None
            return steps, guidance, strength

        # every clip of every request is one row; rows sharing settings denoise together
        plans = [clip_plan(request, self.clip_s) for request in requests]
        rows = [(r, c) for r, plan in enumerate(plans) for c in range(len(plan))]
        groups = group_requests(rows, lambda row: settings(requests[row[0]]))
        batches = [
            (key, [rows[i] for i in members[start : start + caps.max_batch]])
            for key, members in groups
            for start in range(0, len(members), caps.max_batch)
        ]

        def run_steps(steps: int, strength: float | None) -> int:
            return steps if strength is None else min(int(steps * strength), steps)

        tracker = StepProgress(progress, sum(run_steps(key[0], key[2]) for key, _ in batches))
        images: dict[tuple[int, int], SpectrogramImage] = {}
        with self._lock, oom_guard("generating with riffusion"), torch.no_grad():
            # the song's key in words, when asked (GenerateRequest.model_prompt)
            texts = [r.model_prompt for r in requests] + [r.morph_prompt or r.model_prompt for r in requests]
            texts += [r.negative_prompt for r in requests]
            embeddings = self._encode_texts(texts)
            seeds: dict[int, torch.Tensor] = {}
            for index, request in enumerate(requests):
                if request.audio_prompt is not None:
                    seeds[index] = self._encode_seed(self.seed_image(request.audio_prompt))
            for (steps, guidance, strength), members in batches:
                cond, uncond, noise, init = [], [], [], []
                for r, c in members:
                    request, clip = requests[r], plans[r][c]
                    start = embeddings[request.model_prompt]
                    end = embeddings[request.morph_prompt or request.model_prompt]
                    cond.append(torch.lerp(start, end, clip.text_amount))
                    uncond.append(embeddings[request.negative_prompt])
                    noise.append(slerp(self._noise(request.effective_seed, latent_shape),
                                       self._noise(request.effective_morph_seed, latent_shape), clip.noise_amount))
                    if strength is not None:
                        init.append(seeds[r][0])
                generators = [seeded_generator(requests[r].effective_seed + c, device) for r, c in members]
                latents = self._denoise(
                    torch.stack(cond).to(dtype),
                    torch.stack(uncond).to(dtype),
                    torch.stack(noise).to(device=device, dtype=dtype),
                    torch.stack(init).to(dtype) if init else None,
                    steps,
                    guidance,
                    1.0 if strength is None else strength,
                    generators,
                    tracker,
                )
                for member, image in zip(members, self._decode_images(latents), strict=True):
                    images[member] = image
            outputs = []
            for r, request in enumerate(requests):
                plan = plans[r]
                decoded = self.codec.decode_batch([images[(r, c)] for c in range(len(plan))],
                                                  [clip.decode_seed for clip in plan])
                total = max(1, round(request.render_duration_s * params.sample_rate))
                overlap = round(CROSSFADE_S * params.sample_rate)
                audio = join_clips([clip_audio for clip_audio in decoded], overlap, total)
                peak = float(np.max(np.abs(audio)))
                if peak > 0:
                    audio = audio * (OUTPUT_PEAK / peak)
                info = {"clips": len(plan), "image_width": self.image_width, "steps": settings(request)[0]}
                outputs.append(GeneratedAudio(np.ascontiguousarray(audio, dtype=np.float32), params.sample_rate, info))
        tracker.finish()
        return outputs

    @staticmethod
    def _noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
        """The starting noise of one end of the morph, drawn on the CPU so every device agrees."""
        generator = torch.Generator(device="cpu").manual_seed(seed)
        return torch.randn(shape, generator=generator, dtype=torch.float32)
