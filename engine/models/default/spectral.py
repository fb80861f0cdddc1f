"""The default model's audio representation: a log-mel spectrogram, and its inverse.

The model works on ``[mels, frames]`` log-mel images of fixed size (``N_MELS`` x ``FRAMES``) covering
``NATIVE_SAMPLES`` samples at ``SAMPLE_RATE``. Values are decibels of the mean STFT magnitude in each
band, scaled so that -80 dB maps to -1 and 0 dB (a full-scale sine) to +1.

The inverse (:func:`invert`) moves band magnitudes back onto the linear STFT bins (interpolation,
sharpened by a few Richardson-Lucy updates), starts a phase by Phase Gradient Heap Integration
(:mod:`.pghi`) and refines it with a few iterations of fast Griffin-Lim (Perraudin et al., 2013:
Griffin-Lim with momentum). Shapes:
audio ``[batch, samples]`` float32, spectrograms ``[batch, N_MELS, frames]``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

SAMPLE_RATE = 44100
N_FFT = 2048
HOP = 512
N_MELS = 80
FRAMES = 88
#: samples covered by one native spectrogram (88 hops = 1.0217 s)
NATIVE_SAMPLES = FRAMES * HOP
F_MIN_HZ = 20.0
F_MAX_HZ = SAMPLE_RATE / 2
DB_FLOOR = -80.0
DB_CEIL = 10.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * np.expm1(m / 1127.0)


@functools.lru_cache(maxsize=4)
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular mel filters ``[n_mels, n_fft // 2 + 1]``, each row summing to 1 (a band's mean).

    Narrow low bands that fall between two FFT bins still get weight from their neighbours, so no
    band is empty.
    """
    n_bins = n_fft // 2 + 1
    bin_hz = np.arange(n_bins) * sample_rate / n_fft
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(np.array(F_MIN_HZ)), _hz_to_mel(np.array(F_MAX_HZ)), n_mels + 2))
    filters = np.zeros((n_mels, n_bins))
    min_width_hz = 1.5 * sample_rate / n_fft
    for band in range(n_mels):
        low, centre, high = edges_hz[band], edges_hz[band + 1], edges_hz[band + 2]
        # widen bands narrower than an FFT bin so each covers at least one bin centre
        low = min(low, centre - min_width_hz)
        high = max(high, centre + min_width_hz)
        rising = (bin_hz - low) / (centre - low)
        falling = (high - bin_hz) / (high - centre)
        filters[band] = np.clip(np.minimum(rising, falling), 0.0, None)
    filters /= filters.sum(axis=1, keepdims=True)
    return filters.astype(np.float32)


@functools.lru_cache(maxsize=4)
def _inverse_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``[n_bins, n_mels]``: each linear bin as a weighted mix of the bands that cover it."""
    filters = mel_filters(n_mels, n_fft, sample_rate)
    weights = filters.T.copy()  # [bins, mels]
    # interpolate between band centres; bins that no band covers (above F_MAX) take the nearest band
    total = weights.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    weights[~empty] /= total[~empty]
    if empty.any():
        weights[empty, -1 if np.argmax(~empty) == 0 else 0] = 1.0
    return weights.astype(np.float32)


def _window(device: torch.device) -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, device=device)


def stft(audio: torch.Tensor) -> torch.Tensor:
    """Complex STFT ``[batch, bins, frames]`` scaled so a full-scale sine peaks near 1."""
    spec = torch.stft(audio, N_FFT, HOP, window=_window(audio.device), center=True, return_complex=True)
    return spec / (N_FFT / 4)


def istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    return torch.istft(spec * (N_FFT / 4), N_FFT, HOP, window=_window(spec.device), center=True, length=length)


def log_mel(audio: np.ndarray | torch.Tensor, frames: int | None = FRAMES) -> torch.Tensor:
    """Scaled log-mel ``[batch, N_MELS, frames]`` of audio ``[batch, samples]`` (or ``[samples]``).

    ``frames=None`` keeps every frame the audio gives (``samples // HOP``).
    """
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32) if isinstance(audio, np.ndarray) else audio)
    if x.ndim == 1:
        x = x[None]
    x = x.float()
    n_frames = x.shape[-1] // HOP if frames is None else frames
    need = n_frames * HOP
    if x.shape[-1] < need:
        x = torch.nn.functional.pad(x, (0, need - x.shape[-1]))
    magnitude = stft(x[..., :need]).abs()[..., :n_frames]
    bands = torch.einsum("mf,bft->bmt", torch.from_numpy(mel_filters()).to(x.device), magnitude)
    return db_to_unit(20.0 * torch.log10(bands.clamp_min(1e-6)))


def db_to_unit(db: torch.Tensor) -> torch.Tensor:
    db = db.clamp(DB_FLOOR, DB_CEIL)
    return (db - DB_FLOOR / 2) / (-DB_FLOOR / 2)


def unit_to_db(unit: torch.Tensor) -> torch.Tensor:
    return unit * (-DB_FLOOR / 2) + DB_FLOOR / 2


def mel_to_linear(spec: torch.Tensor) -> torch.Tensor:
    """Linear STFT magnitude ``[batch, bins, frames]`` from a scaled log-mel ``[batch, mels, frames]``."""
    magnitude = 10.0 ** (unit_to_db(spec.float()) / 20.0)
    floor = 10.0 ** (DB_FLOOR / 20.0)
    magnitude = torch.where(magnitude <= floor * 1.001, torch.zeros_like(magnitude), magnitude)
    inverse = torch.from_numpy(_inverse_filters()).to(spec.device)
    return torch.einsum("fm,bmt->bft", inverse, magnitude)


def sharpen_linear(spec: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """Linear STFT magnitude ``[batch, bins, frames]`` from a scaled log-mel, sharper across frequency
    than :func:`mel_to_linear`'s interpolation: starting from it, ``iterations`` multiplicative updates
    (Richardson-Lucy, as for non-negative deconvolution) move the bins' energy towards the bins
    that explain the bands, so a low partial stays in its own bins instead of spreading over its band
    and beating with its neighbours. The bands of the result still average to the given log-mel.
    """
    linear = mel_to_linear(spec)
    if iterations <= 0:
        return linear
    filters = torch.from_numpy(mel_filters()).to(spec.device)  # [mels, bins]
    bands = 10.0 ** (unit_to_db(spec.float()) / 20.0)
    floor = 10.0 ** (DB_FLOOR / 20.0)
    bands = torch.where(bands <= floor * 1.001, torch.zeros_like(bands), bands)
    norm = filters.sum(dim=0)[None, :, None].clamp_min(1e-12)
    for _ in range(iterations):
        estimate = torch.einsum("mf,bft->bmt", filters, linear).clamp_min(1e-12)
        linear = linear * torch.einsum("mf,bmt->bft", filters, bands / estimate) / norm
    return linear


def griffin_lim(
    magnitude: torch.Tensor, length: int, iterations: int = 32, momentum: float = 0.99,
    generator: torch.Generator | None = None, phase: torch.Tensor | None = None,
) -> torch.Tensor:
    """Audio ``[batch, length]`` whose STFT magnitude approaches ``magnitude`` ``[batch, bins, frames]``.

    ``magnitude`` must have ``length // HOP + 1`` frames (a centred STFT). The start phase is
    ``phase`` (same shape, radians) when given, else drawn from ``generator``, so the result is
    repeatable.
    """
    if phase is None:
        phase = torch.rand(magnitude.shape, generator=generator, device=magnitude.device) * (2 * math.pi)
    angles = torch.polar(torch.ones_like(magnitude), phase.to(magnitude.dtype))
    previous = torch.zeros_like(angles)
    audio = istft(magnitude * angles, length)
    for _ in range(iterations):
        rebuilt = stft(audio)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        previous = rebuilt
        angles = accelerated / accelerated.abs().clamp_min(1e-8)
        audio = istft(magnitude * angles, length)
    return audio


def _centred_magnitude(spec: torch.Tensor, sharpen: int = 0) -> torch.Tensor:
    """Linear magnitude ``[batch, bins, frames + 1]`` for the centred STFT of ``frames * HOP`` samples
    (``sharpen``: iterations of :func:`sharpen_linear`)."""
    magnitude = sharpen_linear(spec, sharpen)
    # a centred STFT of frames * HOP samples has one frame more; repeat the last at a lower level
    return torch.cat([magnitude, magnitude[..., -1:] * 0.5], dim=-1)


#: how :func:`invert` starts its phase: Phase Gradient Heap Integration, or a random phase (Griffin-Lim
#: as the shipped weights were first heard through)
PHASE_STARTS = ("pghi", "random")
#: :func:`sharpen_linear` iterations in :func:`invert` (the bands' energy moved onto the bins that explain them)
SHARPEN_ITERATIONS = 10
#: fast Griffin-Lim iterations after the start phase in :func:`invert`
REFINE_ITERATIONS = 16


def invert(
    spec: torch.Tensor, iterations: int = REFINE_ITERATIONS, generator: torch.Generator | None = None, *,
    start: str = "pghi", sharpen: int = SHARPEN_ITERATIONS, momentum: float = 0.99,
) -> torch.Tensor:
    """Audio ``[batch, frames * HOP]`` from a scaled log-mel ``[batch, N_MELS, frames]``.

    The bands become linear STFT magnitudes (:func:`sharpen_linear`, ``sharpen`` iterations; 0 is
    plain interpolation), a start phase comes from Phase Gradient Heap Integration (``start="pghi"``,
    :mod:`.pghi`: no randomness, ``generator`` is not used) or is drawn from ``generator``
    (``start="random"``), and ``iterations`` of fast Griffin-Lim refine it. ``iterations=32,
    start="random", sharpen=0`` is the decoder the default model first shipped with;
    ``bench/bench_decoder.py`` measures the two on recorded one-shots (MODEL.md).
    """
    if start not in PHASE_STARTS:
        raise ValueError(f"start={start!r} is not a phase start: expected one of {', '.join(PHASE_STARTS)}")
    if iterations < 0 or sharpen < 0:
        raise ValueError(f"iterations={iterations}, sharpen={sharpen}: both must be 0 or more")
    frames = spec.shape[-1]
    magnitude = _centred_magnitude(spec, sharpen)
    phase = None
    if start == "pghi":
        from .pghi import pghi

        phase = pghi(magnitude, N_FFT, HOP)
    return griffin_lim(magnitude, frames * HOP, iterations=iterations, momentum=momentum, generator=generator,
                       phase=phase)
