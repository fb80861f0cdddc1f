"""The default model's audio representation: a log-mel spectrogram, and its inverse.

The model works on ``[mels, frames]`` log-mel images of fixed size (``N_MELS`` x ``FRAMES``) covering
``NATIVE_SAMPLES`` samples at ``SAMPLE_RATE``. Values are decibels of the mean STFT magnitude in each
band, scaled so that -80 dB maps to -1 and 0 dB (a full-scale sine) to +1.

The inverse (:func:`invert`) moves band magnitudes back onto the linear STFT bins (interpolation,
sharpened by a few Richardson-Lucy updates), starts a phase by Phase Gradient Heap Integration
(:mod:`.pghi`), refines it with a few iterations of fast Griffin-Lim (Perraudin et al., 2013:
Griffin-Lim with momentum) and brings each frame's loudness back to the spectrogram's
(:func:`match_loudness`). Shapes:
audio ``[batch, samples]`` float32, spectrograms ``[batch, N_MELS, frames]``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..base import stop_point

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
    return db_to_unit(_band_db(stft(x[..., :need]).abs()[..., :n_frames]))


def _band_db(magnitude: torch.Tensor) -> torch.Tensor:
    """The mel bands' level (dB, from :data:`DB_FLOOR` to :data:`DB_CEIL`) ``[batch, N_MELS, frames]`` of
    STFT magnitudes ``[batch, bins, frames]``."""
    bands = torch.einsum("mf,bft->bmt", torch.from_numpy(mel_filters()).to(magnitude.device), magnitude)
    return (20.0 * torch.log10(bands.clamp_min(1e-6))).clamp(DB_FLOOR, DB_CEIL)


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


def sharpen_linear(spec: torch.Tensor, iterations: int = 10, below_hz: float = math.inf) -> torch.Tensor:
    """Linear STFT magnitude ``[batch, bins, frames]`` from a scaled log-mel, sharper across frequency
    than :func:`mel_to_linear`'s interpolation: starting from it, ``iterations`` multiplicative updates
    (Richardson-Lucy, as for non-negative deconvolution) move the bins' energy towards the bins
    that explain the bands, so a low partial stays in its own bins instead of spreading over its band
    and beating with its neighbours. The bands of the result still average to the given log-mel.
    Only the bins below ``below_hz`` are sharpened (crossfading to the interpolation over the octave
    above it).
    """
    linear = mel_to_linear(spec)
    if iterations <= 0:
        return linear
    filters = torch.from_numpy(mel_filters()).to(spec.device)  # [mels, bins]
    bands = 10.0 ** (unit_to_db(spec.float()) / 20.0)
    floor = 10.0 ** (DB_FLOOR / 20.0)
    bands = torch.where(bands <= floor * 1.001, torch.zeros_like(bands), bands)
    norm = filters.sum(dim=0)[None, :, None].clamp_min(1e-12)
    interpolated = linear
    for _ in range(iterations):
        estimate = torch.einsum("mf,bft->bmt", filters, linear).clamp_min(1e-12)
        linear = linear * torch.einsum("mf,bmt->bft", filters, bands / estimate) / norm
    if math.isinf(below_hz):
        return linear
    # sharpened below below_hz, interpolated above, crossfaded over an octave
    hz = torch.arange(linear.shape[1], device=spec.device, dtype=linear.dtype) * SAMPLE_RATE / N_FFT
    weight = (torch.log2(hz.clamp_min(1.0) / below_hz)).clamp(0.0, 1.0)[None, :, None]
    return linear * (1 - weight) + interpolated * weight


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
        stop_point()  # a stopped batch stops here, not at the decoder's end
        rebuilt = stft(audio)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        previous = rebuilt
        angles = accelerated / accelerated.abs().clamp_min(1e-8)
        audio = istft(magnitude * angles, length)
    return audio


def _centred_magnitude(spec: torch.Tensor, sharpen: int = 0, below_hz: float = math.inf) -> torch.Tensor:
    """Linear magnitude ``[batch, bins, frames + 1]`` for the centred STFT of ``frames * HOP`` samples
    (``sharpen``, ``below_hz``: :func:`sharpen_linear`'s)."""
    magnitude = sharpen_linear(spec, sharpen, below_hz)
    # a centred STFT of frames * HOP samples has one frame more; repeat the last at a lower level
    return torch.cat([magnitude, magnitude[..., -1:] * 0.5], dim=-1)


#: how :func:`invert` can start its phase: Phase Gradient Heap Integration, or a random phase drawn
#: from the caller's generator
PHASE_STARTS = ("pghi", "random")
#: the start :func:`invert` uses unless told
PHASE_START = "pghi"
#: :func:`sharpen_linear` iterations in :func:`invert` (the bands' energy moved onto the bins that explain them)
SHARPEN_ITERATIONS = 10
#: :func:`invert` sharpens only below this frequency (kicks, toms, basses: where mel bands are a few
#: bins wide and an interpolated partial beats with its neighbours). Sharpened everywhere, the
#: decoder is closer still to recorded drums but moves the shipped network's noisier bands into
#: spiky spectra (MODEL.md: its log-mel Fréchet distance rose from 1.20 to 1.76)
SHARPEN_BELOW_HZ = 500.0
#: fast Griffin-Lim iterations after the start phase in :func:`invert`
REFINE_ITERATIONS = 16
#: rounds of :func:`match_loudness` unless told (:func:`invert` runs none unless asked: the default
#: model asks for them per class, ``ModelConfig.decoder_loudness_rounds``)
LOUDNESS_ROUNDS = 4
#: the most :func:`match_loudness` moves a frame (dB)
LOUDNESS_MOST_DB = 12.0
#: frames of the spectrogram quieter than this over the silent floor's loudness are not matched
LOUDNESS_ABOVE_SILENCE_DB = 12.0


def match_loudness(audio: torch.Tensor, spec: torch.Tensor, rounds: int = LOUDNESS_ROUNDS,
                   most_db: float = LOUDNESS_MOST_DB) -> torch.Tensor:
    """Audio ``[batch, samples]`` whose frame loudness is brought back to that of the scaled log-mel
    ``spec`` ``[batch, N_MELS, frames]`` it was decoded from.

    Griffin-Lim cannot reach a spectrogram that no signal has (a sampled one seldom is consistent):
    what it returns differs from the spectrogram frame by frame, and the frame loudness wobbles
    (a flicker the spectrogram did not have) and a hit's first frames come out softer than asked
    for. Each round measures the audio's frame loudness as :func:`log_mel` reads it, scales each STFT
    frame by the difference to the spectrogram's (at most ``most_db``; frames near silence are left
    alone) and resynthesizes; the overlap-add spreads each frame's gain over its neighbours', so a
    second round takes up what the first left.
    """
    if rounds <= 0:
        return audio
    frames = spec.shape[-1]
    target = frame_loudness_db(unit_to_db(spec.float()))  # [batch, frames]
    silence = DB_FLOOR + 10.0 * math.log10(spec.shape[1])
    for _ in range(rounds):
        stop_point()
        complex_spec = stft(audio)
        got = frame_loudness_db(_band_db(complex_spec.abs()[..., :frames]))
        gain = (target - got).clamp(-most_db, most_db)
        gain = torch.where(target > silence + LOUDNESS_ABOVE_SILENCE_DB, gain, torch.zeros_like(gain))
        # the centred STFT has one frame more than the spectrogram: it takes the last frame's gain
        gain = torch.cat([gain, gain[..., -1:]], dim=-1)
        scale = (10.0 ** (gain / 20.0)).to(complex_spec.real.dtype)[:, None, :]
        audio = istft(complex_spec * scale, audio.shape[-1])
    return audio


def invert(
    spec: torch.Tensor, iterations: int | None = None, generator: torch.Generator | None = None, *,
    start: str | None = None, sharpen: int | None = None, sharpen_below_hz: float | None = None,
    momentum: float = 0.99, loudness_rounds: int = 0,
) -> torch.Tensor:
    """Audio ``[batch, frames * HOP]`` from a scaled log-mel ``[batch, N_MELS, frames]``.

    The bands become linear STFT magnitudes (:func:`sharpen_linear`: ``sharpen`` iterations below
    ``sharpen_below_hz``, ``math.inf`` for everywhere; 0 iterations is plain interpolation), a start
    phase comes from Phase Gradient Heap Integration (``start="pghi"``, :mod:`.pghi`: no randomness,
    ``generator`` is not used) or is drawn from ``generator`` (``start="random"``), and
    ``iterations`` of fast Griffin-Lim refine it; ``loudness_rounds`` of :func:`match_loudness` bring
    the frame loudness back to the spectrogram's. Left out, each setting is the module's default
    (PGHI, 16 iterations, 10 sharpening iterations below 500 Hz, no loudness rounds). ``iterations=32,
    start="random", sharpen=0`` is the decoder the default model first shipped with;
    ``bench/bench_decoder.py`` measures them on recorded one-shots (MODEL.md).
    """
    iterations = REFINE_ITERATIONS if iterations is None else iterations
    start = PHASE_START if start is None else start
    sharpen = SHARPEN_ITERATIONS if sharpen is None else sharpen
    below_hz = SHARPEN_BELOW_HZ if sharpen_below_hz is None else sharpen_below_hz
    if start not in PHASE_STARTS:
        raise ValueError(f"start={start!r} is not a phase start: expected one of {', '.join(PHASE_STARTS)}")
    if iterations < 0 or sharpen < 0 or loudness_rounds < 0:
        raise ValueError(f"iterations={iterations}, sharpen={sharpen}, loudness_rounds={loudness_rounds}: "
                         "each must be 0 or more")
    frames = spec.shape[-1]
    magnitude = _centred_magnitude(spec, sharpen, below_hz)
    phase = None
    if start == "pghi":
        from .pghi import pghi

        phase = pghi(magnitude, N_FFT, HOP)
    audio = griffin_lim(magnitude, frames * HOP, iterations=iterations, momentum=momentum, generator=generator,
                        phase=phase)
    return match_loudness(audio, spec, loudness_rounds)


#: a rise of the frame loudness by at least this much (dB) from one frame to the next is an onset
ONSET_RISE_DB = 3.0
#: frames from an onset (itself included) that :func:`steady_loudness` leaves as they are: the attack
ATTACK_FRAMES = 3
#: frames either side of a frame whose loudness :func:`steady_loudness` averages
STEADY_HALF_FRAMES = 3
#: frames quieter than this over the silent floor's loudness are left alone (a tail's noise)
STEADY_ABOVE_SILENCE_DB = 12.0
#: the local course a steadied frame is brought to: ``mean``, the weighted mean of its neighbours'
#: (exact for a straight course in dB, biased where the course bends), or ``quadratic``, the value at
#: the frame of a weighted least-squares parabola through them (exact for a bending course too: a
#: kick's fast-then-slow decay keeps its level, so its attack against its body stays as it was)
STEADY_TRENDS = ("mean", "quadratic")


def cap_first_frame(spec: torch.Tensor, most_db: torch.Tensor | float) -> torch.Tensor:
    """Scaled log-mel ``[batch, mels, frames]`` whose first frame has no band more than ``most_db`` (a
    number, or one per row ``[batch]``; ``inf``: as it is) louder than the same band in the second.

    A recording starts at its onset, and its first frame is seldom louder than the second (in the
    real corpus's training kits the frame's loudness at most 4.9 dB, 3.2 dB at the 99th percentile):
    the onset falls within both. Each band over the bound comes down to it; the others, and the
    later frames, stay as they are.
    """
    if spec.shape[-1] < 2:
        return spec
    db = unit_to_db(spec.float())
    most = torch.as_tensor(most_db, dtype=db.dtype, device=db.device).expand(db.shape[0])[:, None]
    first, bound = db[:, :, 0], db[:, :, 1] + most
    db[:, :, 0] = torch.where(first > bound, bound.clamp_min(DB_FLOOR), first)
    # rows without a bound come back as they were, to the bit (not through dB and back)
    return torch.where(torch.isfinite(most)[:, :, None], db_to_unit(db).to(spec.dtype), spec)


def frame_loudness_db(db: torch.Tensor) -> torch.Tensor:
    """Loudness per frame ``[batch, frames]`` in dB (float64): the power sum over the bands of ``db``
    ``[batch, mels, frames]``."""
    return 10.0 * torch.log10(torch.sum(10.0 ** (db.double() / 10.0), dim=1))


def steady_loudness(spec: torch.Tensor, most_db: float, onset_rise_db: float = ONSET_RISE_DB,
                    half_frames: int = STEADY_HALF_FRAMES, trend: str = "mean") -> torch.Tensor:
    """Scaled log-mel ``[batch, mels, frames]`` whose loudness no longer flickers from frame to frame.

    A sampled spectrogram's frame loudness wobbles by a dB or so around the course a recording's
    takes (a bass note's or a pad's steady decay heard as a tremolo). Each frame's loudness is
    brought to a weighted mean of its neighbours' (weights ½, 1, ..., 1, ½ over up to ``half_frames``
    frames either side, :data:`STEADY_HALF_FRAMES` unless told: a wobble from one frame to the next
    averages out; a wider mean also takes out a wobble over a few frames),
    counting only frames between the same two onsets (a rise of ``onset_rise_db`` or more) and
    past the attack, as many on each side, so a straight course in dB is kept as it is and a hit's
    rise and peak stay where and as loud as they were. Every band of a frame moves by the same
    amount, at most ``most_db`` (0: the spectrogram as it is); bands at the floor and frames near
    silence stay where they are. A sampled tom's, bass's or pad's loudness can rise by 3 dB from one
    frame to the next in its decay: a higher ``onset_rise_db`` takes those rises as flicker to smooth
    rather than as onsets to keep. ``trend`` (one of :data:`STEADY_TRENDS`) picks the local course:
    ``quadratic`` fits a parabola by the same weights instead of taking the mean, so a course that
    bends in dB is kept as it is too (it needs 2 frames either side: with 1 a frame stays as it is).
    """
    if half_frames < 1:
        raise ValueError(f"half_frames={half_frames}: the mean needs at least 1 frame either side")
    _check_trend(trend)
    if most_db <= 0 or spec.shape[-1] < 3:
        return spec
    db = unit_to_db(spec.float())
    loud = frame_loudness_db(db).numpy().astype(np.float64)  # [batch, frames]
    silence = DB_FLOOR + 10.0 * math.log10(spec.shape[1])
    change = _steady_change(loud, silence, onset_rise_db, half_frames, trend)
    moved = torch.from_numpy(np.clip(change, -most_db, most_db)).float()[:, None, :]
    return db_to_unit(torch.where(db > DB_FLOOR + 0.5, db + moved, db)).to(spec.dtype)


def _check_trend(trend: str) -> None:
    if trend not in STEADY_TRENDS:
        raise ValueError(f"trend={trend!r} is not a local course: expected one of {', '.join(STEADY_TRENDS)}")


def local_trend(course: np.ndarray, trend: str) -> float:
    """The local course at the middle of ``course`` (an odd number of frames' loudness, dB) by ``trend``:
    the weighted mean (weights ½, 1, ..., 1, ½) or the middle of the parabola that fits ``course`` best
    by the same weights (least squares). A straight course is its own mean; any parabola its own fit."""
    _check_trend(trend)
    reach = course.size // 2
    weights = np.ones(course.size)
    weights[[0, -1]] = 0.5
    if trend == "mean":
        return float(weights @ course) / float(weights.sum())
    # symmetric weights: the slope's term drops out of the fit's middle value, leaving two unknowns
    k2 = np.arange(-reach, reach + 1, dtype=np.float64) ** 2
    s0, s2, s4 = float(weights.sum()), float(weights @ k2), float(weights @ (k2 * k2))
    y0, y2 = float(weights @ course), float((weights * k2) @ course)
    return (s4 * y0 - s2 * y2) / (s0 * s4 - s2 * s2)


def _steady_change(loud: np.ndarray, silence: float, onset_rise_db: float, half_frames: int,
                   trend: str = "mean") -> np.ndarray:
    """``[batch, frames]``: how far (dB) :func:`steady_loudness`'s local course (``trend``) moves each
    frame of the frame loudness ``loud`` ``[batch, frames]`` (0 for an attack's frames, frames near
    ``silence`` and frames with no neighbour in their stretch)."""
    change = np.zeros_like(loud)
    for row, course in enumerate(loud):
        rises = np.concatenate([[True], np.diff(course) >= onset_rise_db])
        since = np.zeros(course.size, dtype=np.int64)  # frames since the last onset
        for t in range(1, course.size):
            since[t] = 0 if rises[t] else since[t - 1] + 1
        steady = (since >= ATTACK_FRAMES) & (course > silence + STEADY_ABOVE_SILENCE_DB)
        segment = np.cumsum(rises)
        for t in np.flatnonzero(steady).tolist():
            reach = 0  # the frames either side that share the frame's stretch, as many on each side
            while (reach < half_frames and t - reach - 1 >= 0 and t + reach + 1 < course.size
                   and steady[t - reach - 1] and steady[t + reach + 1]
                   and segment[t - reach - 1] == segment[t] == segment[t + reach + 1]):
                reach += 1
            if reach >= (2 if trend == "quadratic" else 1):
                change[row, t] = local_trend(course[t - reach : t + reach + 1], trend) - course[t]
    return change


def steady_decoded(audio: torch.Tensor, rounds: int, most_db: float, onset_rise_db: float = ONSET_RISE_DB,
                   half_frames: int = STEADY_HALF_FRAMES, trend: str = "mean") -> torch.Tensor:
    """Audio ``[batch, samples]`` whose frame loudness (as :func:`log_mel` reads it) no longer wobbles
    around its own course: :func:`steady_loudness`'s mean, taken on the decoded audio's frame loudness.

    Griffin-Lim cannot reach a spectrogram that no signal has, and what it returns wobbles from frame
    to frame where the spectrogram it was given did not (a sampled one seldom is consistent). Each
    round measures the audio's frame loudness, brings each frame past an attack to the weighted mean
    of its neighbours' between the same two onsets (at most ``most_db``), scales the STFT frames by
    the difference and resynthesizes; the overlap-add spreads each frame's gain over its neighbours',
    so further rounds take up what the first left. The course itself, a hit's rise and its first
    frames stay as decoded: nothing is matched to a level from elsewhere. ``trend`` picks the local
    course as in :func:`steady_loudness`.
    """
    if rounds < 0 or half_frames < 1:
        raise ValueError(f"rounds={rounds}, half_frames={half_frames}: rounds must be 0 or more, half_frames 1 or more")
    _check_trend(trend)
    if rounds == 0 or most_db <= 0:
        return audio
    frames = audio.shape[-1] // HOP
    silence = DB_FLOOR + 10.0 * math.log10(N_MELS)
    for _ in range(rounds):
        stop_point()
        complex_spec = stft(audio)
        got = frame_loudness_db(_band_db(complex_spec.abs()[..., :frames])).numpy()
        change = np.clip(_steady_change(got, silence, onset_rise_db, half_frames, trend), -most_db, most_db)
        # the centred STFT has one frame more (or two): they take the last frame's change
        pad = complex_spec.shape[-1] - frames
        change = np.concatenate([change, np.repeat(change[:, -1:], pad, axis=1)], axis=1)
        scale = torch.from_numpy(10.0 ** (change / 20.0)).to(complex_spec.real.dtype)[:, None, :]
        audio = istft(complex_spec * scale, audio.shape[-1])
    return audio
