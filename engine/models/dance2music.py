"""The slot for a learned Dance2Music model: a motion encoder and a latent diffusion model.

No trained motion-to-music model is public, so ``loopbridge dance2music`` places the engine's other
models on the motion's beats (:mod:`loopbridge.engine.dance2music`). A learned model takes the motion
itself as its condition, the way the Dance2Music line of work does (a motion encoder whose output
conditions an audio diffusion model), and loads through this backend like any other model folder:

```
model_index.json        {"_class_name": "Dance2MusicPipeline", "motion_encoder": ["loopbridge", "MotionEncoder"],
                         "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                         "vocoder": ["transformers", "SpeechT5HifiGan"], "scheduler": ["diffusers", "DDIMScheduler"]}
motion_encoder/         config.json (MotionEncoderConfig) + model.safetensors
unet/ vae/ vocoder/     AudioLDM's latent layout: a mel-spectrogram VAE, a UNet conditioned through its class
scheduler/              embedding (``class_embed_type="simple_projection"``), a HiFi-GAN vocoder
```

1. The motion (``request.motion_prompt``: joint positions on a regular grid) is resampled to the
   encoder's frame rate, turned into joint velocities and encoded into one embedding per request;
   an all-zero embedding is the unconditional one (classifier-free guidance, and requests with no motion).
2. The UNet denoises mel latents conditioned on that embedding (any diffusers scheduler).
3. The VAE decodes mels, the vocoder turns them into audio at its native rate.

What loading a published model would take: its motion encoder ported to :class:`MotionEncoder`'s
interface (velocities of ``joints`` joints at ``frame_rate_hz`` in, an ``embedding_dim`` vector out)
or a subclass registered here, its denoiser and decoder saved in the diffusers layout above, and a
``model_index.json`` naming ``Dance2MusicPipeline``. Training one needs paired dance and music
(AIST++: 1,408 sequences, 60 fps keypoints with their music); the engine's loader, scheduler,
batching, store and the beat-measuring report then serve it unchanged. A model whose beats are not
learned to follow the motion still gets them measured by ``loopbridge dance2music --report``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..audio import fit_length
from ..errors import ModelLoadError
from ..request import GenerateRequest, Kind, MotionPrompt
from .base import Capabilities, GeneratedAudio, LoadOptions, ModelBackend, ProgressCallback, batch_noise, read_json
from .diffusers_support import (
    DISCRETE_SCHEDULERS,
    StepProgress,
    check_pipeline_folder,
    group_requests,
    load_component,
    make_scheduler,
    oom_guard,
    resolve_dtype,
)

PIPELINE_CLASS = "Dance2MusicPipeline"
#: the longest a call renders (AudioLDM-shaped latents lose structure beyond about twice 10 s)
MAX_DURATION_S = 20.48
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 2.5


@dataclass(frozen=True)
class MotionEncoderConfig:
    """The motion encoder's shape: joints in, frame rate, convolution widths, embedding size out."""

    joints: int = 17
    frame_rate_hz: float = 30.0
    channels: tuple[int, ...] = (64, 128)
    kernel_size: int = 5
    embedding_dim: int = 512

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MotionEncoderConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "channels" in known:
            known["channels"] = tuple(int(c) for c in known["channels"])
        config = cls(**known)
        if config.joints < 1 or config.embedding_dim < 1 or not config.channels or config.kernel_size < 1:
            raise ValueError(f"motion encoder config {data!r} has a size below 1")
        return config

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data


class MotionEncoder(torch.nn.Module):
    """Joint velocities ``[batch, frames, joints, 3]`` → one embedding ``[batch, embedding_dim]``.

    Strided 1-D convolutions over time, then the mean over time and a projection. Velocities (not
    positions) go in, so where the dancer stands does not matter.
    """

    def __init__(self, config: MotionEncoderConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[torch.nn.Module] = []
        width = config.joints * 3
        for channels in config.channels:
            layers += [torch.nn.Conv1d(width, channels, config.kernel_size, stride=2, padding=config.kernel_size // 2),
                       torch.nn.SiLU()]
            width = channels
        self.convolutions = torch.nn.Sequential(*layers)
        self.projection = torch.nn.Linear(width, config.embedding_dim)

    def forward(self, velocities: torch.Tensor) -> torch.Tensor:
        batch, frames = velocities.shape[:2]
        x = velocities.reshape(batch, frames, -1).transpose(1, 2)
        return self.projection(self.convolutions(x).mean(dim=2))

    def features(self, motion: MotionPrompt) -> torch.Tensor:
        """A motion prompt as this encoder's input: velocities ``[frames, joints, 3]`` at its frame rate,
        scaled to unit standard deviation. Raises :class:`UnsupportedError` for another joint count."""
        from ..errors import UnsupportedError

        if motion.positions.shape[1] != self.config.joints:
            raise UnsupportedError(f"motion with {motion.positions.shape[1]} joints: this model's motion encoder "
                                   f"expects {self.config.joints}")
        positions = motion.positions.astype(np.float64)
        source = np.arange(len(positions)) / motion.frame_rate_hz
        target = np.arange(0.0, source[-1] + 1e-9, 1.0 / self.config.frame_rate_hz)
        flat = positions.reshape(len(positions), -1)
        resampled = np.stack([np.interp(target, source, flat[:, c]) for c in range(flat.shape[1])], axis=1)
        velocity = np.diff(resampled, axis=0, prepend=resampled[:1]) * self.config.frame_rate_hz
        scale = float(velocity.std()) or 1.0
        return torch.from_numpy((velocity / scale).reshape(len(target), -1, 3).astype(np.float32))


def save_motion_encoder(encoder: MotionEncoder, folder: Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` for ``encoder`` into ``folder``."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"_class_name": "MotionEncoder", **encoder.config.to_json()}))
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(folder / "model.safetensors"))


def _load_motion_encoder(folder: Path, device: torch.device, dtype: torch.dtype) -> MotionEncoder:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        config = MotionEncoderConfig.from_json(read_json(folder / "config.json"))
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{str(folder / 'config.json')!r}: {exc}") from exc
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelLoadError(f"{str(weights)!r} is missing: the motion encoder has no weights")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{str(weights)!r} cannot be read as safetensors: {exc}") from exc
    encoder = MotionEncoder(config)
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{str(weights)!r} does not fit the motion encoder in config.json: {exc}") from exc
    return encoder.eval().requires_grad_(False).to(device=device, dtype=dtype)


class Dance2MusicBackend(ModelBackend):
    """A learned motion-conditioned model in the layout of the module docstring."""

    family: ClassVar[str] = "dance2music"

    def __init__(self, path: Path, device: torch.device, dtype: torch.dtype, encoder: MotionEncoder,
                 unet: Any, vae: Any, vocoder: Any, scheduler: Any, capabilities: Capabilities) -> None:
        super().__init__(path, device, dtype)
        self.encoder, self.unet, self.vae, self.vocoder = encoder, unet, vae, vocoder
        self.scheduler_config = dict(scheduler.config)
        self._scheduler_class = type(scheduler)
        self._capabilities = capabilities

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
             options: LoadOptions | None = None) -> Dance2MusicBackend:
        """Load the folder (checked first: a missing or corrupt component raises :class:`ModelLoadError`)."""
        import diffusers
        from transformers import SpeechT5HifiGan

        path = Path(path)
        options = options or LoadOptions()
        device = torch.device(device)
        dtype = resolve_dtype(dtype, device)
        capabilities = cls.inspect(path)
        index = read_json(path / "model_index.json")
        with oom_guard(f"loading {cls.family} from {path}"):
            encoder = _load_motion_encoder(path / "motion_encoder", device, dtype)
            unet = load_component(diffusers.UNet2DConditionModel, path, "unet", dtype).to(device).eval()
            vae = load_component(diffusers.AutoencoderKL, path, "vae", dtype).to(device).eval()
            try:
                vocoder = SpeechT5HifiGan.from_pretrained(str(path / "vocoder"), local_files_only=True)
            except (OSError, ValueError, RuntimeError) as exc:
                raise ModelLoadError(f"cannot load the vocoder in {str(path / 'vocoder')!r}: {exc}") from exc
            vocoder = vocoder.to(device=device, dtype=dtype).eval()  # type: ignore[call-arg]
        scheduler_class = getattr(diffusers, str(index["scheduler"][1]), None)
        if scheduler_class is None:
            raise ModelLoadError(f"{str(path / 'model_index.json')!r} names scheduler {index['scheduler'][1]!r}, "
                                 "which this diffusers does not have")
        scheduler = load_component(scheduler_class, path, "scheduler")
        if options.scheduler is not None:
            scheduler = make_scheduler(scheduler, options.scheduler, DISCRETE_SCHEDULERS)
        if options.compile:
            unet = torch.compile(unet)
        return cls(path, device, dtype, encoder, unet, vae, vocoder, scheduler, capabilities)

    @classmethod
    def inspect(cls, path: Path) -> Capabilities:
        """Capabilities from the configs alone (the motion encoder's and the vocoder's)."""
        path = Path(path)
        index = check_pipeline_folder(path, expected_classes=(PIPELINE_CLASS,), skip=("motion_encoder",))
        if "motion_encoder" not in index:
            raise ModelLoadError(f"{str(path / 'model_index.json')!r} names no motion_encoder component")
        try:
            MotionEncoderConfig.from_json(read_json(path / "motion_encoder" / "config.json"))
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(f"{str(path / 'motion_encoder' / 'config.json')!r}: {exc}") from exc
        if not (path / "motion_encoder" / "model.safetensors").is_file():
            raise ModelLoadError(f"{str(path / 'motion_encoder' / 'model.safetensors')!r} is missing: "
                                 "the motion encoder has no weights")
        vocoder = read_json(path / "vocoder" / "config.json")
        return Capabilities(
            family=cls.family,
            sample_rate=int(vocoder.get("sampling_rate", 16000)),
            channels=1,
            max_duration_s=MAX_DURATION_S,
            min_duration_s=0.1,
            text_prompt=False,
            audio_prompt=False,
            motion_prompt=True,
            kinds=frozenset({Kind.LOOP, Kind.TEXTURE}),
            default_steps=DEFAULT_STEPS,
            default_guidance=DEFAULT_GUIDANCE,
            max_batch=4,
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def modules(self) -> list[torch.nn.Module]:
        return [self.encoder, self.unet, self.vae, self.vocoder]

    # ---- generation -----------------------------------------------------------------------------

    def _latent_shape(self, duration_s: float) -> tuple[int, int, int]:
        vocoder = self.vocoder.config
        hop_s = float(np.prod(vocoder.upsample_rates)) / vocoder.sampling_rate
        scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        height = int(np.ceil(duration_s / hop_s / scale)) * scale
        return (self.unet.config.in_channels, height // scale, int(vocoder.model_in_dim) // scale)

    def _embeddings(self, requests: list[GenerateRequest]) -> torch.Tensor:
        rows = []
        for request in requests:
            if request.motion_prompt is None:
                rows.append(torch.zeros(self.encoder.config.embedding_dim, device=self.device, dtype=self.dtype))
                continue
            features = self.encoder.features(request.motion_prompt).to(self.device, self.dtype)
            rows.append(self.encoder(features[None])[0])
        return torch.stack(rows)

    def _generate(self, requests: list[GenerateRequest], progress: ProgressCallback | None) -> list[GeneratedAudio]:
        caps = self.capabilities

        def settings(request: GenerateRequest) -> tuple[int, float, float]:
            steps = request.steps or caps.default_steps
            guidance = request.guidance if request.guidance is not None else DEFAULT_GUIDANCE
            return steps, guidance, round(request.render_duration_s, 6)

        groups = group_requests(requests, settings)
        tracker = StepProgress(progress, sum(key[0] for key, _ in groups))
        outputs: list[GeneratedAudio | None] = [None] * len(requests)
        with oom_guard(f"generating with {self.family}"):
            for (steps, guidance, duration_s), rows in groups:
                group = [requests[i] for i in rows]
                audio = self._denoise(group, steps, guidance, duration_s, tracker)
                samples = int(round(duration_s * caps.sample_rate))
                for row, wave in zip(rows, audio, strict=True):
                    outputs[row] = GeneratedAudio(fit_length(wave.reshape(1, -1), samples), caps.sample_rate,
                                                  {"steps": steps, "guidance": guidance})
        tracker.finish()
        return [out for out in outputs if out is not None]

    def _denoise(self, group: list[GenerateRequest], steps: int, guidance: float, duration_s: float,
                 tracker: StepProgress) -> np.ndarray:
        # a scheduler per call: its step state must not be shared between concurrent calls
        scheduler = self._scheduler_class.from_config(self.scheduler_config)
        scheduler.set_timesteps(steps, device=self.device)
        embeddings = self._embeddings(group)
        guided = guidance > 1.0
        condition = torch.cat([torch.zeros_like(embeddings), embeddings]) if guided else embeddings
        latents = batch_noise(group, self._latent_shape(duration_s), self.device, self.dtype)
        latents = latents * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            model_in = torch.cat([latents] * 2) if guided else latents
            model_in = scheduler.scale_model_input(model_in, t)
            noise = self.unet(model_in, t, encoder_hidden_states=None, class_labels=condition).sample
            if guided:
                unconditional, conditional = noise.chunk(2)
                noise = unconditional + guidance * (conditional - unconditional)
            latents = scheduler.step(noise, t, latents).prev_sample
            tracker.step(0, t, latents)
        mel = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        waves = self.vocoder(mel.squeeze(1))
        return np.asarray(waves.float().cpu().numpy(), dtype=np.float32)
