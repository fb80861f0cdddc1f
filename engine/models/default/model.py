"""The default model's network and sampler.

``MelUNet`` is a small class-conditional 1-D U-Net over the frames of a log-mel spectrogram: the mel
bands are its input channels, time is its one axis. Every layer therefore sees the whole spectrum
(dense channel mixing), and convolutions run along time only, which keeps it cheap on a CPU. It is
built from diffusers blocks (``ResidualTemporalBlock1D``, ``Timesteps``, ``TimestepEmbedding``); the
class embedding is added to the timestep embedding, with one extra "no class" label for
classifier-free guidance.

The sampler is diffusers' ``DPMSolverMultistepScheduler`` (DPM-Solver++ 2M) over the DDPM cosine
schedule the network was trained on, with v-prediction, and classifier-free guidance at every step or
over an interval of noise levels (``ModelConfig.guidance_interval``). The network works on normalized log-mels
(``ModelConfig.data_mean`` / ``data_std``); :func:`sample` takes and returns scaled log-mels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import ResidualTemporalBlock1D
from torch import nn

from ..base import stop_point
from . import spectral
from .classes import CLASSES

#: the samplers :func:`sample` runs: DPM-Solver++ (2M) and DDIM
SAMPLERS: tuple[str, ...] = ("dpm++", "ddim")

#: how :class:`MelUNet`'s convolutions pad the time axis (``ModelConfig.time_padding``): with zeros
#: (a frame of 0 before the first and after the last: -40 dB in scaled log-mel units), or with the
#: edge frame repeated, or mirrored about it
TIME_PADDINGS: tuple[str, ...] = ("zeros", "replicate", "reflect")
#: each of :data:`TIME_PADDINGS` as torch's ``Conv1d.padding_mode``
_PADDING_MODES: dict[str, Literal["zeros", "replicate", "reflect"]] = {
    "zeros": "zeros", "replicate": "replicate", "reflect": "reflect"}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network and its sampler; saved as ``config.json``."""

    n_mels: int = spectral.N_MELS
    frames: int = spectral.FRAMES
    sample_rate: int = spectral.SAMPLE_RATE
    hop: int = spectral.HOP
    n_fft: int = spectral.N_FFT
    classes: tuple[str, ...] = CLASSES
    channels: tuple[int, ...] = (128, 192, 256)
    kernel_size: int = 3
    embed_dim: int = 256
    attention_heads: int = 4
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    default_steps: int = 16
    default_guidance: float = 2.0
    #: per class, the guidance scale a request without its own gets (classes not named: ``default_guidance``)
    class_guidance: dict[str, float] = field(default_factory=dict)
    #: the sampler (:data:`SAMPLERS`): DPM-Solver++ 2M, or DDIM (with ``ddim_eta``)
    sampler: str = "dpm++"
    #: DDIM's eta: 0 is deterministic DDIM, 1 adds DDPM's noise at every step
    ddim_eta: float = 0.0
    #: the share of the guided prediction rescaled to the conditional prediction's spread (0: plain
    #: classifier-free guidance)
    guidance_rescale: float = 0.0
    #: the noise levels ``(low, high)`` at which classifier-free guidance is applied, as the sigma of a
    #: step (``sqrt((1 - alpha_bar) / alpha_bar)``: about 20000 at the first step, 0.1 at the last of
    #: 16); at a step outside it the scale is ``guidance_outside`` (by default 1: the conditional
    #: prediction alone, one network pass). None: every step. For this network the
    #: highest noise levels' guidance sets both the class and how alike a class's one-shots come out
    #: (MODEL.md, "Guidance over an interval of noise levels")
    guidance_interval: tuple[float, float] | None = None
    #: the guidance scale at steps outside ``guidance_interval`` (1: the conditional prediction alone;
    #: a row whose own scale is lower keeps its own)
    guidance_outside: float = 1.0
    #: the network sees scaled log-mels as ``(x - data_mean) / data_std``; the defaults (no change)
    #: are what folders written before these fields existed were trained on
    data_mean: float = 0.0
    data_std: float = 1.0
    #: the most :func:`.spectral.steady_loudness` moves a frame of a sampled spectrogram (dB; 0: never)
    steady_loudness_db: float = 3.0
    #: per class, the frame-to-frame rise (dB) that :func:`.spectral.steady_loudness` takes as an onset
    #: (classes not named: :data:`.spectral.ONSET_RISE_DB`)
    steady_onset_rise_db: dict[str, float] = field(default_factory=dict)
    #: per class, the frames either side that :func:`.spectral.steady_loudness` averages over
    #: (classes not named: :data:`.spectral.STEADY_HALF_FRAMES`)
    steady_half_frames: dict[str, int] = field(default_factory=dict)
    #: per class, the most (dB) :func:`.spectral.steady_loudness` moves a frame (classes not named:
    #: ``steady_loudness_db``; with ``steady_loudness_db`` 0 the stage is off for every class)
    steady_most_db: dict[str, float] = field(default_factory=dict)
    #: per class, rounds of :func:`.spectral.match_loudness` in the decoder (classes not named: none,
    #: Griffin-Lim's frame loudness as it comes)
    decoder_loudness_rounds: dict[str, int] = field(default_factory=dict)
    #: per class, rounds of :func:`.spectral.steady_decoded` after the decoder: the decoded audio's own
    #: frame loudness brought to its local mean, as the steady-loudness stage does to the spectrogram
    #: (classes not named: none)
    decoder_steady_rounds: dict[str, int] = field(default_factory=dict)
    #: per class, the frames either side :func:`.spectral.steady_decoded` fits its course over
    #: (classes not named: :data:`.spectral.STEADY_HALF_FRAMES`)
    decoder_steady_half_frames: dict[str, int] = field(default_factory=dict)
    #: per class, the local course :func:`.spectral.steady_decoded` brings a frame to, one of
    #: :data:`.spectral.STEADY_TRENDS` (classes not named: ``mean``; the spectrogram's stage takes the mean)
    decoder_steady_trend: dict[str, str] = field(default_factory=dict)
    #: per class, the frequency (Hz) below which the decoder sharpens the band magnitudes onto the STFT
    #: bins (:func:`.spectral.sharpen_linear`; 22050, the Nyquist frequency, or more: every bin); classes
    #: not named: :data:`.spectral.SHARPEN_BELOW_HZ`
    decoder_sharpen_below_hz: dict[str, float] = field(default_factory=dict)
    #: per class, the most (dB) a sampled spectrogram's first frame may be louder than its second
    #: (each band, :func:`.spectral.cap_first_frame`, applied to the clean estimate at every step of :func:`sample`
    #: and to its result; classes not named: no bound)
    first_frame_most_db: dict[str, float] = field(default_factory=dict)
    #: per class, the factor by which each step's predicted noise is divided ("epsilon scaling", a
    #: remedy for exposure bias): the v-prediction is read as noise and clean estimate, the noise divided
    #: by the factor and the clean estimate it then implies handed to the solver, at every step but the
    #: first (whose input, pure noise, is as in training); classes not named: 1, the prediction as it is
    eps_scale: dict[str, float] = field(default_factory=dict)
    #: how the network's convolutions pad the time axis, one of :data:`TIME_PADDINGS`: weights are
    #: trained with one and sample as trained only with it (the shipped weights: ``zeros``)
    time_padding: str = "zeros"
    extra: dict[str, Any] = field(default_factory=dict)

    def first_frame_most(self, class_name: str | None) -> float:
        """The most (dB) a sampled first frame of ``class_name`` may be louder than its second (None:
        no class); ``inf``: no bound."""
        return float(self.first_frame_most_db.get(class_name or "", math.inf))

    def eps_scale_for(self, class_name: str | None) -> float:
        """The factor dividing the predicted noise of ``class_name``'s steps (None: no class); 1: none."""
        return float(self.eps_scale.get(class_name or "", 1.0))

    def guided_at(self, sigma: float) -> bool:
        """Whether classifier-free guidance applies at a step of noise level ``sigma``."""
        if self.guidance_interval is None:
            return True
        low, high = self.guidance_interval
        return low < sigma <= high

    def guidance_for(self, class_name: str | None) -> float:
        """The guidance scale for ``class_name`` when a request names none (None: no class)."""
        return float(self.class_guidance.get(class_name or "", self.default_guidance))

    def onset_rise_db(self, class_name: str | None) -> float:
        """The onset rise :func:`.spectral.steady_loudness` uses for ``class_name`` (None: no class)."""
        return float(self.steady_onset_rise_db.get(class_name or "", spectral.ONSET_RISE_DB))

    def most_db(self, class_name: str | None) -> float:
        """The most :func:`.spectral.steady_loudness` moves a frame of ``class_name`` (None: no class); 0: off."""
        if self.steady_loudness_db <= 0:
            return 0.0
        return float(self.steady_most_db.get(class_name or "", self.steady_loudness_db))

    def loudness_rounds(self, class_name: str | None) -> int:
        """Rounds of :func:`.spectral.match_loudness` the decoder runs for ``class_name`` (None: no class)."""
        return int(self.decoder_loudness_rounds.get(class_name or "", 0))

    def steady_rounds(self, class_name: str | None) -> int:
        """Rounds of :func:`.spectral.steady_decoded` after the decoder for ``class_name`` (None: no class)."""
        return int(self.decoder_steady_rounds.get(class_name or "", 0))

    def sharpen_below_hz(self, class_name: str | None) -> float | None:
        """The decoder's sharpening limit for ``class_name`` (None: :data:`.spectral.SHARPEN_BELOW_HZ`)."""
        value = self.decoder_sharpen_below_hz.get(class_name or "")
        return None if value is None else float(value)

    def decoded_trend(self, class_name: str | None) -> str:
        """The local course :func:`.spectral.steady_decoded` uses for ``class_name`` (None: no class)."""
        return str(self.decoder_steady_trend.get(class_name or "", "mean"))

    def decoded_half_frames(self, class_name: str | None) -> int:
        """The frames either side :func:`.spectral.steady_decoded` uses for ``class_name`` (None: no class)."""
        return int(self.decoder_steady_half_frames.get(class_name or "", spectral.STEADY_HALF_FRAMES))

    def half_frames(self, class_name: str | None) -> int:
        """The frames either side :func:`.spectral.steady_loudness` averages for ``class_name`` (None: no class)."""
        return int(self.steady_half_frames.get(class_name or "", spectral.STEADY_HALF_FRAMES))

    @property
    def null_class(self) -> int:
        """The label meaning "no class" (unconditional)."""
        return len(self.classes)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = list(self.classes)
        data["channels"] = list(self.channels)
        if self.guidance_interval is not None:
            data["guidance_interval"] = list(self.guidance_interval)
        data["family"] = "default"
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from ``to_json`` output; raises ValueError for a missing or malformed field."""
        # keys of older files this code no longer reads are passed over: ``griffin_lim_iterations``
        # (the decoder's iterations, ``spectral.invert``, are no weight file's to choose)
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["classes"] = tuple(str(c) for c in values.get("classes", CLASSES))
            values["channels"] = tuple(int(c) for c in values.get("channels", (128, 192, 256)))
            values["guidance_interval"] = _interval(values.get("guidance_interval"))
            config = cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config does not describe a default model: {exc}") from exc
        if config.n_mels != spectral.N_MELS or config.hop != spectral.HOP or config.n_fft != spectral.N_FFT:
            raise ValueError(
                f"config spectrogram (n_mels={config.n_mels}, hop={config.hop}, n_fft={config.n_fft}) differs "
                f"from this code's (n_mels={spectral.N_MELS}, hop={spectral.HOP}, n_fft={spectral.N_FFT})"
            )
        _check_per_class(config, "class_guidance", _positive, "each scale must be a positive number")
        _check_per_class(config, "eps_scale", lambda v: _positive(v) and 0.5 <= v <= 2.0,
                         "each factor must be a number from 0.5 to 2 (1: the predicted noise as it is)")
        if config.sampler not in SAMPLERS:
            raise ValueError(f"sampler={config.sampler!r} is not one of {list(SAMPLERS)}")
        if config.time_padding not in TIME_PADDINGS:
            raise ValueError(f"time_padding={config.time_padding!r} is not one of {list(TIME_PADDINGS)}")
        if not 0.0 <= config.ddim_eta <= 1.0:
            raise ValueError(f"ddim_eta={config.ddim_eta} must be from 0 to 1")
        if not _positive(config.guidance_outside):
            raise ValueError(f"guidance_outside={config.guidance_outside} must be a positive number")
        if not 0.0 <= config.guidance_rescale <= 1.0:
            raise ValueError(f"guidance_rescale={config.guidance_rescale} must be from 0 to 1")
        _check_per_class(config, "steady_onset_rise_db", _positive, "each rise must be a positive number of dB")
        _check_per_class(config, "steady_half_frames", _whole_in(1, config.frames // 4),
                         f"each must be a whole number of frames from 1 to {config.frames // 4}")
        _check_per_class(config, "first_frame_most_db", _non_negative,
                         "each bound must be 0 or a positive number of dB")
        _check_per_class(config, "steady_most_db", _positive, "each bound must be a positive number of dB")
        _check_per_class(config, "decoder_loudness_rounds", _whole_in(0, 16),
                         "each must be a whole number from 0 to 16")
        _check_per_class(config, "decoder_steady_rounds", _whole_in(0, 16),
                         "each must be a whole number from 0 to 16")
        _check_per_class(config, "decoder_steady_half_frames", _whole_in(1, config.frames // 4),
                         f"each must be a whole number of frames from 1 to {config.frames // 4}")
        _check_per_class(config, "decoder_sharpen_below_hz", _positive, "each must be a positive frequency in Hz")
        _check_per_class(config, "decoder_steady_trend", lambda v: v in spectral.STEADY_TRENDS,
                         f"each must be one of {', '.join(spectral.STEADY_TRENDS)}")
        if not config.steady_loudness_db >= 0:
            raise ValueError(f"steady_loudness_db={config.steady_loudness_db} must be 0 (off) or more")
        if not config.data_std > 0:
            raise ValueError(f"data_std={config.data_std} must be positive")
        if config.frames % (2 ** (len(config.channels) - 1)):
            raise ValueError(f"frames={config.frames} must divide by {2 ** (len(config.channels) - 1)}")
        return config


def _interval(value: Any) -> tuple[float, float] | None:
    """``guidance_interval`` from JSON: None, or two numbers ``low < high`` with ``low >= 0``."""
    if value is None:
        return None
    numbers = isinstance(value, list | tuple) and len(value) == 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if not numbers or not 0 <= value[0] < value[1]:
        raise ValueError(f"guidance_interval={value!r} must be null or [low, high], two noise levels (sigma) "
                         "with 0 <= low < high")
    return float(value[0]), float(value[1])


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _non_negative(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _whole_in(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_per_class(config: ModelConfig, name: str, ok: Callable[[Any], bool], accepted: str) -> None:
    """Refuse a per-class table ``config.<name>`` naming a class the model lacks or holding a bad value."""
    table: dict[str, Any] = getattr(config, name)
    unknown = sorted(set(table) - set(config.classes))
    if unknown:
        raise ValueError(f"{name} names {unknown}, which are not classes: {list(config.classes)}")
    bad = {k: v for k, v in table.items() if not ok(v)}
    if bad:
        raise ValueError(f"{name}={bad}: {accepted}")


class MelUNet(nn.Module):
    """Class-conditional 1-D U-Net: ``forward(x [B, n_mels, frames], t [B], labels [B]) -> [B, n_mels, frames]``.

    ``frames`` must be a multiple of ``2 ** (len(channels) - 1)``. Labels run from 0 to
    ``len(classes)``, the last meaning "no class". Every convolution that pads the time axis pads it
    as ``config.time_padding`` says (:data:`TIME_PADDINGS`); the padding has no weights, so the same
    weights load whatever it is. Raises ValueError for a padding not in :data:`TIME_PADDINGS`.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.time_padding not in TIME_PADDINGS:
            raise ValueError(f"time_padding={config.time_padding!r} is not one of {list(TIME_PADDINGS)}")
        ch = config.channels
        emb = config.embed_dim
        k = config.kernel_size
        self.time_proj = Timesteps(ch[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(ch[0], emb)
        self.class_embed = nn.Embedding(len(config.classes) + 1, emb)
        self.conv_in = nn.Conv1d(config.n_mels, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        skip_channels = []
        current = ch[0]
        for level, width in enumerate(ch):
            self.down_blocks.append(ResidualTemporalBlock1D(current, width, emb, k))
            current = width
            skip_channels.append(current)
            last = level == len(ch) - 1
            self.downsamplers.append(nn.Identity() if last else nn.Conv1d(current, current, 3, stride=2, padding=1))
        self.mid_block1 = ResidualTemporalBlock1D(current, current, emb, k)
        self.mid_norm = nn.GroupNorm(8, current)
        self.mid_attention = nn.MultiheadAttention(current, config.attention_heads, batch_first=True)
        self.mid_block2 = ResidualTemporalBlock1D(current, current, emb, k)
        self.up_blocks = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for level in reversed(range(len(ch))):
            width = ch[level]
            self.up_blocks.append(ResidualTemporalBlock1D(current + skip_channels.pop(), width, emb, k))
            current = width
            self.upsamplers.append(
                nn.Identity() if level == 0 else nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                                                               nn.Conv1d(current, current, 3, padding=1))
            )
        self.conv_out = nn.Sequential(
            nn.GroupNorm(8, current), nn.SiLU(), nn.Conv1d(current, config.n_mels, 3, padding=1)
        )
        if config.time_padding != "zeros":
            # torch pads a convolution's input itself (F.pad in this mode, then no padding) when
            # its padding_mode is not "zeros"; diffusers' blocks build their convolutions with zeros
            for module in self.modules():
                if isinstance(module, nn.Conv1d) and any(p > 0 for p in _as_tuple(module.padding)):
                    module.padding_mode = _PADDING_MODES[config.time_padding]

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # a batch stopped (cancelled, pre-empted) stops between blocks (1-2 ms each on one CPU thread),
        # not at the end of the step (about 14 ms): stop_point raises where the engine asks it to
        emb = self.time_embed(self.time_proj(timesteps).to(x.dtype)) + self.class_embed(labels)
        h = self.conv_in(x)
        skips = []
        for block, down in zip(self.down_blocks, self.downsamplers, strict=True):
            stop_point()
            h = block(h, emb)
            skips.append(h)
            h = down(h)
        stop_point()
        h = self.mid_block1(h, emb)
        stop_point()
        tokens = self.mid_norm(h).transpose(1, 2)
        h = h + self.mid_attention(tokens, tokens, tokens, need_weights=False)[0].transpose(1, 2)
        stop_point()
        h = self.mid_block2(h, emb)
        for block, up in zip(self.up_blocks, self.upsamplers, strict=True):
            stop_point()
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            h = up(h)
        stop_point()
        return self.conv_out(h)


def _as_tuple(padding: Any) -> tuple[int, ...]:
    """A convolution's ``padding`` as a tuple of ints (a string such as "same" counts as padding)."""
    if isinstance(padding, str):
        return (1,)
    return tuple(padding) if isinstance(padding, tuple | list) else (int(padding),)


# diffusers builds its scheduler classes' attributes at run time, which static checkers cannot see:
# the schedulers are typed as Any here
def training_scheduler(config: ModelConfig) -> Any:
    """The DDPM noise schedule the network is trained on."""
    return DDPMScheduler(
        num_train_timesteps=config.train_timesteps,
        beta_schedule=config.beta_schedule,
        prediction_type=config.prediction_type,
        clip_sample=False,
    )


def sampling_scheduler(config: ModelConfig) -> Any:
    """A fresh scheduler of ``config.sampler`` (DPM-Solver++ 2M or DDIM): one per call, since
    schedulers keep per-run state."""
    if config.sampler == "ddim":
        return DDIMScheduler(
            num_train_timesteps=config.train_timesteps,
            beta_schedule=config.beta_schedule,
            prediction_type=config.prediction_type,
            timestep_spacing="trailing",
            clip_sample=False,
            set_alpha_to_one=True,  # the last step lands on the clean (clipped) prediction
        )
    return DPMSolverMultistepScheduler(
        num_train_timesteps=config.train_timesteps,
        beta_schedule=config.beta_schedule,
        prediction_type=config.prediction_type,
        algorithm_type="dpmsolver++",
        solver_order=2,
        lower_order_final=True,
        timestep_spacing="trailing",
        # the clean prediction is clipped by sample() itself (see _clipped), in the normalized
        # space where the bounds are not symmetric about zero as diffusers' thresholding assumes
        thresholding=False,
    )


#: every predicted clean spectrogram is clipped to this range of scaled log-mels (-80 dB to 0 dB,
#: a full-scale sine): an unclipped prediction can put a few bins tens of dB above anything in the
#: corpus, which then dominate the decoded audio and, after peak normalization, leave the rest too
#: quiet
CLIP_UNIT = (-1.0, 1.0)


def to_network(unit: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Scaled log-mels -> the normalized values the network is trained on."""
    return (unit - config.data_mean) / config.data_std


def from_network(x: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """The inverse of :func:`to_network`."""
    return x * config.data_std + config.data_mean


def _clipped(v: torch.Tensor, x: torch.Tensor, alpha_bar: torch.Tensor, config: ModelConfig,
             first_most: torch.Tensor | None = None) -> torch.Tensor:
    """The v-prediction whose implied clean sample is clipped to :data:`CLIP_UNIT` (and, with
    ``first_most`` ``[B]``, its first frame bounded by :func:`.spectral.cap_first_frame`).

    With ``x = a x0 + s eps`` and ``v = a eps - s x0`` (``a**2 + s**2 = 1``), the clean sample is
    ``a x - s v``; the clipped one is turned back into a v the solver then reads as that sample.
    """
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    low, high = (to_network(torch.tensor(b), config).item() for b in CLIP_UNIT)
    x0 = (a * x - s * v).clamp(low, high)
    if first_most is not None:  # rows without a bound keep their estimate to the bit
        capped = to_network(spectral.cap_first_frame(from_network(x0, config), first_most), config).to(x0.dtype)
        x0 = torch.where(torch.isfinite(first_most).to(x0.device)[:, None, None], capped, x0)
    return (a * x - x0) / s


def _eps_scaled(v: torch.Tensor, x: torch.Tensor, alpha_bar: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The v-prediction whose noise is divided by ``scales`` ``[B, 1, 1]`` (rows of 1 keep theirs to the bit).

    With ``x = a x0 + s eps`` and ``v = a eps - s x0``, the noise is ``s x + a v``; the scaled noise
    ``eps'`` implies the clean sample ``(x - s eps') / a`` and so ``v' = (eps' - s x) / a``.
    """
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    eps = (s * x + a * v) / scales
    return torch.where(scales == 1.0, v, (eps - s * x) / a)


def _row_generators(noise: torch.Tensor) -> list[torch.Generator]:
    """One CPU generator per row of ``noise``, seeded by that row's values."""
    generators = []
    for row in noise.detach().float().cpu():
        digest = int(torch.round(row.flatten()[:64] * 1e4).to(torch.int64).abs().sum().item())
        generators.append(torch.Generator().manual_seed(digest))
    return generators


@torch.no_grad()
def sample(
    network: MelUNet,
    config: ModelConfig,
    labels: Sequence[int],
    noise: torch.Tensor,
    steps: int,
    guidance: Sequence[float] | float,
    progress: Callable[[float], None] | None = None,
    init: torch.Tensor | None = None,
    strength: float = 1.0,
) -> torch.Tensor:
    """Denoise ``noise`` ``[B, n_mels, frames]`` into scaled log-mels, one label per row.

    ``labels`` are class indices or ``config.null_class`` (any class: sampled without guidance).
    ``guidance`` is the classifier-free guidance scale per row (1 = plain conditional). With ``init``
    (scaled log-mels of the same shape), sampling starts from ``init`` noised to ``strength``
    (0 keeps it, 1 ignores it) rather than from pure noise. ``progress`` gets the fraction done after
    every step and may raise to cancel.
    """
    batch = noise.shape[0]
    device = noise.device
    label_tensor = torch.as_tensor(list(labels), dtype=torch.long, device=device)
    scales = torch.as_tensor(
        [float(guidance)] * batch if isinstance(guidance, int | float) else list(guidance),
        dtype=noise.dtype, device=device,
    ).view(batch, 1, 1)
    null = torch.full_like(label_tensor, config.null_class)
    # outside the guidance interval a row gets the lower of its own scale and ``guidance_outside``
    outside_scales = scales.clamp(max=config.guidance_outside)
    conditioned = label_tensor != config.null_class
    # the network overshoots a one-shot's first frame, more at every step (MODEL.md, "The first
    # frame"): each step's clean estimate has it bounded, in the classes the config names
    bounds = [config.first_frame_most(config.classes[label] if 0 <= label < len(config.classes) else None)
              for label in label_tensor.tolist()]
    first_most = (torch.tensor(bounds, dtype=torch.float64)
                  if any(math.isfinite(b) for b in bounds) else None)

    # epsilon scaling per class (ModelConfig.eps_scale); None where every row's factor is 1
    eps_factors = [config.eps_scale_for(config.classes[label] if 0 <= label < len(config.classes) else None)
                   for label in label_tensor.tolist()]
    eps_scales = (torch.tensor(eps_factors, dtype=noise.dtype, device=device).view(batch, 1, 1)
                  if any(f != 1.0 for f in eps_factors) else None)

    scheduler = sampling_scheduler(config)
    scheduler.set_timesteps(steps, device=device)
    timesteps = scheduler.timesteps
    alphas_cumprod = training_scheduler(config).alphas_cumprod
    # DDIM's fresh noise (eta > 0) comes, row by row, from a generator seeded by that row's initial
    # noise: a variation renders the same alone or in a batch, and every time
    eta_generators = _row_generators(noise) if config.sampler == "ddim" and config.ddim_eta > 0 else None
    x = noise * scheduler.init_noise_sigma
    if init is not None and strength < 1.0:
        start = min(len(timesteps) - 1, int(round((1.0 - strength) * len(timesteps))))
        if strength <= 0.0:
            return init.clone()
        timesteps = timesteps[start:]
        if hasattr(scheduler, "set_begin_index"):  # DDIM steps by the timestep alone
            scheduler.set_begin_index(start)
        x = training_scheduler(config).add_noise(
            to_network(init, config), noise, timesteps[:1].repeat(batch).cpu()
        ).to(device)
    for i, t in enumerate(timesteps):
        t_batch = t.repeat(batch).to(device)
        alpha_bar = alphas_cumprod[int(t)].to(device=device, dtype=x.dtype)
        sigma = float(((1 - alpha_bar) / alpha_bar).sqrt())
        step_scales = scales if config.guided_at(sigma) else outside_scales
        # rows that need no guidance pass (no class, or a scale of 1) skip the unconditional half
        if bool((conditioned & (step_scales.view(-1) != 1.0)).any()):
            both = network(torch.cat([x, x]), torch.cat([t_batch, t_batch]), torch.cat([label_tensor, null]))
            cond, uncond = both.chunk(2)
            prediction = uncond + step_scales * (cond - uncond)
            if config.guidance_rescale > 0:
                # the guided prediction's spread pulled back towards the conditional one's: a large
                # scale otherwise overshoots it and pushes the clean estimate into the clip
                ratio = cond.std(dim=(1, 2), keepdim=True) / prediction.std(dim=(1, 2), keepdim=True).clamp_min(1e-6)
                prediction = config.guidance_rescale * prediction * ratio + (1 - config.guidance_rescale) * prediction
        else:
            prediction = network(x, t_batch, label_tensor)
        if eps_scales is not None and i > 0:
            prediction = _eps_scaled(prediction, x, alpha_bar, eps_scales)
        v = _clipped(prediction, x, alpha_bar, config, first_most)
        if eta_generators is not None:
            fresh = torch.stack([torch.randn(x.shape[1:], generator=g, dtype=x.dtype) for g in eta_generators])
            x = scheduler.step(v, t, x, eta=config.ddim_eta, variance_noise=fresh.to(device)).prev_sample
        else:
            x = scheduler.step(v, t, x).prev_sample
        if progress is not None:
            progress((i + 1) / len(timesteps))
    out = from_network(x, config)
    return out if first_most is None else spectral.cap_first_frame(out, first_most.to(out.device)).to(out.dtype)
