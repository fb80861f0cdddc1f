"""Levels of conformed samples: DC removed, loudness (ITU-R BS.1770) normalized, true peak limited.

Every file the conform stage writes ends here (:func:`level_audio`):

Loops and textures
    1. DC removed: each channel's mean over the loop (what a loop played over and over sits on).
    2. Loudness normalized: the integrated loudness (BS.1770-4: K-weighting, 400 ms blocks, 75 %
       overlap, absolute and relative gates) is brought to the target (:data:`DEFAULT_LOUDNESS_LUFS`
       unless the request names another), so variations of one request sit at one loudness.
    3. True peak limited to :data:`TRUE_PEAK_CEILING_DBTP`: a look-ahead limiter whose gain follows
       the peaks of the 4x oversampled signal (BS.1770 Annex 2), read around the loop's wrap, so
       the gain at the seam is the same on both sides of it; the length is never changed. When
       limiting took the loudness down, the gain is raised and the loop limited again (up to
       :data:`LIMIT_PASSES` passes).
       The limiter never takes more than :data:`MAX_LIMIT_DB` off a texture's loudest peak, and
       nothing off a loop's (:data:`LOOP_MAX_LIMIT_DB`: limiting moves where a drum hit is heard):
       material that would need more stays quieter than the target, its transients intact.
    A loop levelled with its request (``grouped``: the front door's loops; :func:`request_level`)
    instead goes to the level the request's first levelled variation set: that loop's reach under
    the ceiling less :data:`LEVEL_MARGIN_DB`, never above the target. A static gain brings it there;
    where its peaks then stand over the ceiling, :func:`soft_clip` (4x oversampled, memoryless, no
    look-ahead) takes up to :data:`CLIP_MAX_DB` off them, and a loop that would need more stays
    quieter by the rest.
One-shots
    Brought to the true-peak ceiling (a static gain, no limiter: a drum hit keeps its attack). A
    hi-hat and a kick at one loudness would make the hat stand out; sample packs peak-normalize
    one-shots, and a sampler's velocity then starts from full level.

The measurements work a block of frames at a time, so a long loop at a high rate holds one more
mono float32 array (the gain each frame needs) beside its audio, not oversampled copies of it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.fft
from pyloudnorm.iirfilter import IIRfilter
from scipy.ndimage import minimum_filter1d
from scipy.signal import firwin, resample_poly, sosfilt

from ..request import DEFAULT_LOUDNESS_LUFS, LOUDNESS_RANGE_LUFS, Kind, check_loudness
from . import threads

__all__ = [
    "DEFAULT_LOUDNESS_LUFS",
    "LOUDNESS_RANGE_LUFS",
    "TRUE_PEAK_CEILING_DBTP",
    "LevelReport",
    "integrated_loudness",
    "level_audio",
    "true_peak",
]

#: the highest true peak a written file may have (dBTP): the usual delivery ceiling
TRUE_PEAK_CEILING_DBTP = -1.0
#: the stage aims this far under the ceiling, for 24-bit rounding and other meters' filters
TRUE_PEAK_MARGIN_DB = 0.02
#: oversampling of the true-peak meter (BS.1770-4 Annex 2)
OVERSAMPLING = 4  # frame_peaks takes the four phases apart
#: frames read either side of a block by the oversampling filter (resample_poly's reaches 10 at 4x)
_FILTER_PAD = 32
#: frames measured or gained at a time
BLOCK_FRAMES = 1 << 16
#: the oversampling filter: resample_poly's own for 4x (Kaiser-windowed sinc, beta 5, reaching 10 input
#: frames either side), designed once here instead of at every call (float32, as resample_poly makes it
#: for float32 audio)
_OVERSAMPLING_FILTER = firwin(20 * OVERSAMPLING + 1, 1.0 / OVERSAMPLING, window=("kaiser", 5.0)).astype(np.float32)
#: the limiter's gain falls over this long before a peak and holds it as long after, then recovers
#: over as long again (its look-ahead; a 5 ms ramp keeps the gain's movement below the audio's pitch)
LIMITER_RAMP_S = 0.005
#: the most gain loudness normalization applies (a near-silent render is not raised into noise)
MAX_GAIN_DB = 40.0
#: the deepest the limiter may cut the loudest peak to reach the loudness target: sparse hits (a
#: click a bar) stay short of the target rather than be flattened. The default model's drum loops
#: and plucks have 16-24 dB between their true peak and their loudness: reaching -14 LUFS under
#: -1 dBTP takes up to 10 dB off their loudest transients
MAX_LIMIT_DB = 12.0
#: the same for a loop: none. Limiting a drum loop's hits to raise its loudness moves where they
#: are heard: the stretch leaves a smear ahead of each hit that limiting lifts against the hit, and
#: an onset detector (librosa's, a DAW's transient marker) then finds played drums up to 12 ms
#: early at 12 dB of limiting, 10 ms at 2 dB (tests/engine/conform/test_real_loops.py). A loop is
#: brought to its loudness or as near as its true peak allows; the limiter only catches overshoots
LOOP_MAX_LIMIT_DB = 0.0
#: a loop levelled with its request (:func:`level_audio` with ``grouped``) is brought to the request's
#: level: the reach of the request's first levelled variation (the loudness its true peak allows under
#: the ceiling) less this margin, so that the variations whose peaks stand this much higher above their
#: loudness reach the same level with a static gain alone
LEVEL_MARGIN_DB = 2.0
#: the most the soft clipper (:func:`soft_clip`) takes off a grouped loop's loudest true peak to reach
#: its request's level; a variation that would need more stays quieter by what it needs beyond
CLIP_MAX_DB = 4.0
#: the soft clipper leaves samples (4x oversampled) up to this far under its ceiling as they are and
#: bends those above towards the ceiling (a tanh knee): no look-ahead, nothing moves ahead of a hit
CLIP_KNEE_DB = 3.0
#: the clipper aims this far under the ceiling: the 4x -> 1x filter lets the clipped peaks ring back up
CLIP_HEADROOM_DB = 0.3
#: passes of limiting and raising the gain again at most (the gain's next step is scaled by how much
#: the loudness rose for the last one, as the limiter takes back part of each raise)
LIMIT_PASSES = 6
#: a peak this share over the ceiling or less is float32 rounding of the gain that put it there: the level
#: stage trims it with a static gain instead of running the limiter for it
GAIN_ROUNDING = 1e-6
#: limiting again when the loudness fell this far under the target
RETARGET_LU = 0.15
#: BS.1770 gating: block length, step, absolute gate, relative gate
GATE_BLOCK_S = 0.4
GATE_STEP_S = 0.1
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
#: BS.1770 channel weights (L, R, C, Ls, Rs); channels beyond five weigh 1
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)


@dataclass(frozen=True)
class LevelReport:
    """What :func:`level_audio` did: DC removed per channel, loudness before and after (LUFS; None for
    a one-shot or silence), the gain applied (dB), how far the limiter took the loudest peak down (dB,
    0 when it did nothing) and the true peak written (dBTP)."""

    dc_offset: tuple[float, ...]
    loudness_in_lufs: float | None
    loudness_lufs: float | None
    gain_db: float
    limited_db: float
    true_peak_dbtp: float
    #: a loop's true peak above its loudness before levelling (dB; None for a one-shot or silence)
    crest_db: float | None = None
    #: the level of the loop's request it was brought to (LUFS; None: levelled on its own)
    level_lufs: float | None = None
    #: how far the soft clipper took the loudest true peak down (dB)
    clipped_db: float = 0.0

    def info(self) -> dict[str, object]:
        """The report as ``ConformedAudio.info`` keeps it."""
        out: dict[str, object] = {"gain_db": round(self.gain_db, 3), "true_peak_dbtp": round(self.true_peak_dbtp, 3),
                                  "dc_offset": [round(v, 6) for v in self.dc_offset]}
        if self.loudness_lufs is not None:
            out["loudness_lufs"] = round(self.loudness_lufs, 3)
        if self.loudness_in_lufs is not None:
            out["loudness_in_lufs"] = round(self.loudness_in_lufs, 3)
        if self.limited_db:
            out["limited_db"] = round(self.limited_db, 3)
        if self.crest_db is not None:
            out["crest_db"] = round(self.crest_db, 3)
        if self.level_lufs is not None:
            out["level_lufs"] = round(self.level_lufs, 3)
        if self.clipped_db:
            out["clipped_db"] = round(self.clipped_db, 3)
        return out


def _db(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def _frames(audio: np.ndarray, start: int, stop: int, circular: bool) -> np.ndarray:
    """Frames ``start``..``stop`` of ``audio`` (float32): wrapped around for a loop, zeros past the
    ends otherwise."""
    frames = audio.shape[1]
    if circular:
        if 0 <= start and stop <= frames:
            return audio[:, start:stop].astype(np.float32)
        return audio[:, np.arange(start, stop) % frames].astype(np.float32)
    out = np.zeros((audio.shape[0], stop - start), dtype=np.float32)
    low, high = max(start, 0), min(stop, frames)
    if high > low:
        out[:, low - start : high - start] = audio[:, low:high]
    return out


def frame_peaks(audio: np.ndarray, circular: bool) -> np.ndarray:
    """float32 ``[frames]``: for each frame, the largest magnitude of the 4x oversampled signal from
    it to the next frame, over all channels (a loop's last frame looks at its first). Measured a block of
    frames at a time, the blocks shared out over two threads (:mod:`.threads`)."""
    return _peaks_and_loudness(audio, 0, circular, loudness=False)[0]


def _peaks_and_loudness(audio: np.ndarray, sample_rate: int, circular: bool,
                        loudness: bool = True) -> tuple[np.ndarray, float]:
    """:func:`frame_peaks` and, with ``loudness``, :func:`integrated_loudness` of ``audio`` (else -inf),
    measured together: the loudness and the peaks' blocks are shared out over two threads (each block
    writes its own frames' peaks), the same values as measured one after the other."""
    frames = audio.shape[1]
    peaks = np.empty(frames, dtype=np.float32)

    def measure(first: int) -> None:
        last = min(frames, first + BLOCK_FRAMES)
        block = _frames(audio, first - _FILTER_PAD, last + _FILTER_PAD, circular)
        inner = np.abs(_oversampled(block, _FILTER_PAD, last - first))
        per_frame = inner.max(axis=(0, 1))  # over the four phases and the channels
        np.maximum(per_frame, np.abs(block[:, _FILTER_PAD : _FILTER_PAD + last - first]).max(axis=0), out=per_frame)
        peaks[first:last] = per_frame

    tasks: list[Callable[[], object]] = []
    if loudness:
        # each channel's loudness filter first (the longest tasks), the blocks filling in beside them
        measured, bounds = _loudness_audio(audio, sample_rate, circular)
        tasks += [functools.partial(_step_energy, measured[c : c + 1], sample_rate, bounds)
                  for c in range(len(measured))]
    tasks += [functools.partial(measure, first) for first in range(0, frames, BLOCK_FRAMES)]
    results = threads.each(tasks)
    if not loudness:
        return peaks, -math.inf
    return peaks, _gated_loudness([np.asarray(energy) for energy in results[: len(measured)]], sample_rate)


#: the oversampling filter's taps for each of the four phases (phase p: taps p, p + 4, ...; zero-padded), as
#: resample_poly applies them: scaled by the oversampling, output phase p of frame n reads frames n + 10 - m
_PHASE_TAPS = np.zeros((OVERSAMPLING, len(_OVERSAMPLING_FILTER) // OVERSAMPLING + 1), np.float64)
for _phase in range(OVERSAMPLING):
    _taps = _OVERSAMPLING_FILTER[_phase::OVERSAMPLING].astype(np.float64) * OVERSAMPLING
    _PHASE_TAPS[_phase, : len(_taps)] = _taps
_PHASE_REACH = (len(_OVERSAMPLING_FILTER) - 1) // (2 * OVERSAMPLING)  # 10 frames


@functools.lru_cache(maxsize=8)
def _phase_spectra(size: int) -> np.ndarray:
    """The four phases' filters' rfft (complex64 ``[4, size // 2 + 1]``) for FFTs of ``size``."""
    return scipy.fft.rfft(_PHASE_TAPS, n=size, axis=1).astype(np.complex64)


def _oversampled(block: np.ndarray, start: int, count: int) -> np.ndarray:
    """float32 ``[4, channels, count]``: the 4x oversampled ``[channels, frames]`` float32 ``block`` at its
    frames ``start`` to ``start + count`` (phase p of frame n: the signal p/4 of a frame after it), as
    ``resample_poly(block, 4, 1, window=_OVERSAMPLING_FILTER)`` makes it (the same filter, by FFT
    convolution: equal within float32 rounding). ``start`` and the frames after ``start + count`` must be
    at least 10 (the filter's reach)."""
    channels, frames = block.shape
    size = scipy.fft.next_fast_len(frames + 2 * _PHASE_REACH, real=True)
    spectrum = scipy.fft.rfft(block, n=size, axis=1)
    products = _phase_spectra(size)[:, None, :] * spectrum[None, :, :]
    phases = scipy.fft.irfft(products.reshape(OVERSAMPLING * channels, -1), n=size, axis=1)
    # the convolution's sample j holds sum_m taps[m] * block[j - m]: frame n's is at n + 10
    first = start + _PHASE_REACH
    return phases.reshape(OVERSAMPLING, channels, size)[:, :, first : first + count]


def true_peak(audio: np.ndarray, circular: bool = False) -> float:
    """The true peak of float ``[channels, frames]`` audio, linear (4x oversampled, BS.1770-4 Annex 2)."""
    if audio.size == 0:
        return 0.0
    return float(frame_peaks(audio, circular).max())


def integrated_loudness(audio: np.ndarray, sample_rate: int, circular: bool = False) -> float:
    """Integrated loudness of float ``[channels, frames]`` audio in LUFS (BS.1770-4; -inf for silence).

    A loop shorter than one 400 ms gating block is measured as it plays: repeated to fill one.
    Raises :class:`ValueError` for audio shorter than one gating block that is no loop.
    """
    measured, bounds = _loudness_audio(audio, sample_rate, circular)
    return _gated_loudness([_step_energy(measured[c : c + 1], sample_rate, bounds) for c in range(len(measured))],
                           sample_rate)


def _loudness_audio(audio: np.ndarray, sample_rate: int, circular: bool) -> tuple[np.ndarray, np.ndarray]:
    """The audio :func:`integrated_loudness` measures (a short loop repeated to fill a gating block) and the
    frames its 100 ms steps end at."""
    frames = audio.shape[1]
    block = int(round(GATE_BLOCK_S * sample_rate))
    if frames < block:
        if not circular or frames == 0:
            raise ValueError(f"{frames} frames is shorter than one {GATE_BLOCK_S:g} s gating block")
        audio = np.tile(audio, (1, -(-block // frames)))
        frames = audio.shape[1]
    # energy per 100 ms step, per channel: the gating blocks are sums of four of them
    step_bounds = np.array([int(GATE_STEP_S * k * sample_rate)
                            for k in range(int(frames / (GATE_STEP_S * sample_rate)) + 2)])
    return audio, step_bounds[step_bounds <= frames]


def _step_energy(audio: np.ndarray, sample_rate: int, step_bounds: np.ndarray) -> np.ndarray:
    """The K-weighted energy of each channel of ``audio`` in each step (``[channels, steps]``); each channel's
    the same whether it is measured alone or with others."""
    channels, frames = audio.shape
    stages = [IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, sample_rate, "high_shelf"),
              IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass")]
    # the K-weighting's two stages as one cascade of second-order sections
    sos = np.array([np.concatenate([stage.b, stage.a]) / stage.a[0] for stage in stages])
    gain = math.prod(stage.passband_gain for stage in stages)
    state = np.zeros((len(stages), channels, 2))
    cumulative = np.zeros((channels, len(step_bounds)))
    total = np.zeros((channels, 1))
    for first in range(0, frames, BLOCK_FRAMES):
        last = min(frames, first + BLOCK_FRAMES)
        x, state = sosfilt(sos, audio[:, first:last].astype(np.float64), axis=1, zi=state)
        if gain != 1.0:
            x *= gain
        running = np.cumsum(np.square(x), axis=1) + total
        inside = (step_bounds > first) & (step_bounds <= last)
        cumulative[:, inside] = running[:, step_bounds[inside] - first - 1]
        total = running[:, -1:].copy()
    return np.diff(cumulative, axis=1)


def _gated_loudness(energies: list[np.ndarray], sample_rate: int) -> float:
    """The gated loudness (LUFS) of the channels whose step energies are ``energies`` (:func:`_step_energy`,
    in channel order)."""
    energy = np.concatenate(energies)
    channels, steps = energy.shape
    block = int(round(GATE_BLOCK_S * sample_rate))
    per_block = int(round(GATE_BLOCK_S / GATE_STEP_S))
    blocks = steps - per_block + 1
    if blocks < 1:
        return -math.inf
    sums = np.cumsum(np.concatenate([np.zeros((channels, 1)), energy], axis=1), axis=1)
    z = (sums[:, per_block:] - sums[:, :blocks]) / block  # mean square per block and channel
    weights = np.array([CHANNEL_WEIGHTS[c] if c < len(CHANNEL_WEIGHTS) else 1.0 for c in range(channels)])
    weighted = weights @ z
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10.0 * np.log10(weighted)
    gated = loudness >= ABSOLUTE_GATE_LUFS
    if not gated.any():
        return -math.inf
    relative = -0.691 + 10.0 * math.log10(float(weighted[gated].mean())) + RELATIVE_GATE_LU
    kept = gated & (loudness > relative)
    return -0.691 + 10.0 * math.log10(float(weighted[kept].mean()))


def _moving_mean(values: np.ndarray, half: int) -> np.ndarray:
    """The mean of ``values`` over ``2 * half + 1`` frames around each, where the window fits
    (``len(values) - 2 * half`` values), from a running sum in float64."""
    sums = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    return (sums[2 * half + 1 :] - sums[: len(sums) - 2 * half - 1]) / (2 * half + 1)


def limit(audio: np.ndarray, sample_rate: int, ceiling: float, circular: bool,
          peaks: np.ndarray | None = None) -> float:
    """Limit float32 ``[channels, frames]`` audio in place so its true peak stays under ``ceiling``
    (linear), one gain for all channels; returns the deepest gain reduction in dB (0 when none).
    ``peaks``: the audio's :func:`frame_peaks` when they are known already.

    The gain each frame needs is taken as the least over ``±ramp`` frames around it, then smoothed
    with a triangular window of the same reach (two moving means), so it is never above what any
    frame needs and it moves over :data:`LIMITER_RAMP_S`. A loop's gain is worked out around its wrap.
    """
    frames = audio.shape[1]
    if peaks is None:
        peaks = frame_peaks(audio, circular)
    need = np.ones(frames, dtype=np.float32)
    over = peaks > ceiling
    if not over.any():
        return 0.0
    need[over] = ceiling / peaks[over]
    del peaks, over
    half = max(1, int(round(LIMITER_RAMP_S * sample_rate / 2)))
    ramp = 2 * half
    deepest = 1.0
    pad = 2 * ramp
    for first in range(0, frames, BLOCK_FRAMES):
        last = min(frames, first + BLOCK_FRAMES)
        index = np.arange(first - pad, last + pad)
        if circular:
            segment = need[index % frames]
        else:
            segment = np.ones(len(index), dtype=np.float32)
            inside = (index >= 0) & (index < frames)
            segment[inside] = need[index[inside]]
        held = minimum_filter1d(segment, 2 * ramp + 1, mode="nearest")
        # frames first - ramp .. last + ramp of `held` are exact; their smoothing gives first .. last
        gain = _moving_mean(_moving_mean(held[ramp : len(held) - ramp], half), half)
        deepest = min(deepest, float(gain.min()))
        audio[:, first:last] *= gain.astype(np.float32)
    return -_db(deepest)


def _clip_curve(up: np.ndarray, knee: float, top: float) -> np.ndarray:
    """What the clipper takes off each sample of ``up`` (``curve(x) - x``): 0 up to ``knee`` in magnitude,
    above it a tanh bend towards ``top`` (continuous in value and slope at the knee)."""
    magnitude = np.abs(up)
    over = magnitude > knee
    out = np.zeros_like(up)
    if over.any():
        width = top - knee
        bent = knee + width * np.tanh((magnitude[over] - knee) / width)
        out[over] = np.sign(up[over]) * (bent - magnitude[over])
    return out


def soft_clip(audio: np.ndarray, ceiling: float, circular: bool, peaks: np.ndarray | None = None) -> float:
    """Bring float32 ``[channels, frames]`` audio's true peak under ``ceiling`` (linear) in place with a
    4x oversampled, memoryless soft clipper; returns how far the loudest true peak came down (dB).

    Each channel is oversampled 4x (around a loop's wrap), every oversampled value above
    ``ceiling`` less :data:`CLIP_KNEE_DB` is bent towards ``ceiling`` less :data:`CLIP_HEADROOM_DB`
    (:func:`_clip_curve`), and only what the curve took off is filtered back to the audio's rate and
    added: frames whose neighbourhood stays under the knee are left exactly as they were, and since
    the curve has no memory and no look-ahead, nothing ahead of a hit changes but the few frames the
    band-limiting filter reaches (10 frames). A remaining overshoot (the filter's ringing) is clipped
    again, up to two more passes; the caller trims what is left with a static gain.
    """
    frames = audio.shape[1]
    if peaks is None:
        peaks = frame_peaks(audio, circular)
    peak_in = float(peaks.max())
    if peak_in <= ceiling:
        return 0.0
    top = ceiling * 10 ** (-CLIP_HEADROOM_DB / 20)
    knee = top * 10 ** (-CLIP_KNEE_DB / 20)
    for _ in range(3):
        hot = peaks > knee
        if not hot.any():
            break
        for first in range(0, frames, BLOCK_FRAMES):
            last = min(frames, first + BLOCK_FRAMES)
            reach = np.arange(first - 2 * _FILTER_PAD, last + 2 * _FILTER_PAD)
            if circular:
                reach %= frames
            else:
                reach = reach[(reach >= 0) & (reach < frames)]
            if not hot[reach].any():
                continue
            block = _frames(audio, first - 2 * _FILTER_PAD, last + 2 * _FILTER_PAD, circular)
            up = resample_poly(block, OVERSAMPLING, 1, axis=1, window=_OVERSAMPLING_FILTER)
            taken = _clip_curve(up, knee, top)
            if not taken.any():
                continue
            back = resample_poly(taken, 1, OVERSAMPLING, axis=1)
            audio[:, first:last] += back[:, 2 * _FILTER_PAD : 2 * _FILTER_PAD + last - first].astype(np.float32)
        peaks = frame_peaks(audio, circular)
        if float(peaks.max()) <= ceiling:
            break
    return _db(peak_in) - _db(float(peaks.max()))


def _remove_dc(audio: np.ndarray) -> tuple[float, ...]:
    dc = audio.mean(axis=1, dtype=np.float64)
    audio -= dc[:, None].astype(np.float32)
    return tuple(float(v) for v in dc)


def request_level(loudness_lufs: float, crest_db: float) -> float:
    """The loudness (LUFS) the loops of a request are brought to: ``loudness_lufs``, or the reach of a loop
    whose true peak stands ``crest_db`` above its loudness (under the ceiling) less :data:`LEVEL_MARGIN_DB`
    where that is lower."""
    return min(float(loudness_lufs), TRUE_PEAK_CEILING_DBTP - TRUE_PEAK_MARGIN_DB - crest_db - LEVEL_MARGIN_DB)


def crest_of(audio: np.ndarray, sample_rate: int) -> float | None:
    """A loop's true peak above its integrated loudness (dB, rounded to 0.01 dB), its DC removed first
    (on a copy); None for silence."""
    copy = audio.astype(np.float32, copy=True)
    _remove_dc(copy)
    loudness = integrated_loudness(copy, sample_rate, True)
    peak = true_peak(copy, True)
    if not math.isfinite(loudness) or peak <= 0:
        return None
    return round(_db(peak) - loudness, 2)


def _level_grouped(audio: np.ndarray, sample_rate: int, loudness_lufs: float, crest_db: float | None,
                   wrap: bool, ceiling: float) -> LevelReport | None:
    """A loop brought to its request's level (see :func:`level_audio`); None for silence (levelled alone)."""
    dc = _remove_dc(audio)
    peaks, before = _peaks_and_loudness(audio, sample_rate, wrap)
    peak_in = float(peaks.max())
    if not math.isfinite(before) or peak_in <= 0:
        audio += np.array(dc, dtype=np.float32)[:, None]  # as it came: the plain stage takes it
        return None
    own = round(_db(peak_in) - before, 2)
    level = request_level(loudness_lufs, own if crest_db is None else crest_db)
    gain_db = min(MAX_GAIN_DB, level - before, CLIP_MAX_DB + _db(ceiling / peak_in))
    audio *= np.float32(10 ** (gain_db / 20))
    peaks *= np.float32(10 ** (gain_db / 20))
    clipped = soft_clip(audio, ceiling, wrap, peaks) if float(peaks.max()) > ceiling else 0.0
    if clipped:
        residual = _remove_dc(audio)  # a clipped lopsided hit leaves a little DC
        dc = tuple(a + b for a, b in zip(dc, residual, strict=True))
    peak = true_peak(audio, wrap)
    if peak > ceiling:
        audio *= np.float32(ceiling / peak)
        gain_db += _db(ceiling / peak)
        peak = ceiling
    after = integrated_loudness(audio, sample_rate, wrap) if clipped else before + gain_db
    return LevelReport(dc, before, after, gain_db, 0.0, _db(peak), crest_db=own, level_lufs=level,
                       clipped_db=clipped)


def level_audio(audio: np.ndarray, sample_rate: int, kind: Kind, loudness_lufs: float = DEFAULT_LOUDNESS_LUFS,
                *, circular: bool | None = None, grouped: bool = False,
                crest_db: float | None = None) -> tuple[np.ndarray, LevelReport]:
    """Level float32 ``[channels, frames]`` audio in place (see the module doc) and say what was done.

    ``kind``: a LOOP or TEXTURE is loudness-normalized to ``loudness_lufs`` and limited, its wrap
    counted (``circular`` says otherwise); anything else is brought to the true-peak ceiling.
    Raises :class:`RequestError` for a loudness outside :data:`LOUDNESS_RANGE_LUFS`.
    """
    check_loudness(loudness_lufs)
    ceiling = 10 ** ((TRUE_PEAK_CEILING_DBTP - TRUE_PEAK_MARGIN_DB) / 20)
    looped = kind in (Kind.LOOP, Kind.TEXTURE)
    wrap = looped if circular is None else circular
    if audio.size == 0:
        return audio, LevelReport((), None, None, 0.0, 0.0, -math.inf)
    if grouped and kind is Kind.LOOP:
        report = _level_grouped(audio, sample_rate, loudness_lufs, crest_db, wrap, ceiling)
        if report is not None:
            return audio, report
    if not looped:
        # a one-shot: its DC went when it was tidied; a static gain to the ceiling
        peak = true_peak(audio, wrap)
        gain = ceiling / peak if peak > 0 else 1.0
        audio *= np.float32(gain)
        return audio, LevelReport((0.0,) * audio.shape[0], None, None, _db(gain), 0.0, _db(peak * gain))
    dc = _remove_dc(audio)
    measurable = wrap or audio.shape[1] >= GATE_BLOCK_S * sample_rate
    peaks, before = _peaks_and_loudness(audio, sample_rate, wrap, loudness=measurable)
    peak_in = float(peaks.max())
    total_db = 0.0
    most_db = 0.0
    if math.isfinite(before):
        # the most gain that leaves the limiter at most MAX_LIMIT_DB to take off the loudest peak
        most_db = min(MAX_GAIN_DB, (LOOP_MAX_LIMIT_DB if kind is Kind.LOOP else MAX_LIMIT_DB) + _db(ceiling / peak_in))
        total_db = min(most_db, loudness_lufs - before)
        audio *= np.float32(10 ** (total_db / 20))
        peaks *= np.float32(10 ** (total_db / 20))
    limited = False
    after = before + total_db  # a static gain moves the loudness by as much
    known: np.ndarray | None = peaks  # the frame peaks while they are those of the audio as it is
    raised: tuple[float, float] | None = None  # the last raise (dB) and the loudness before it
    for attempt in range(LIMIT_PASSES):
        if known is not None and float(known.max()) <= ceiling * (1.0 + GAIN_ROUNDING):
            # a gain that brought the loudest peak to the ceiling leaves it there or a rounding above (a coin
            # toss): the static trim below takes that, the limiter is not run for it
            break
        reduction_db = limit(audio, sample_rate, ceiling, wrap, known)
        if not reduction_db:
            break
        limited = True
        known = None
        if not math.isfinite(before):
            break
        after = integrated_loudness(audio, sample_rate, wrap)
        short = loudness_lufs - after
        if attempt == LIMIT_PASSES - 1 or short <= RETARGET_LU or most_db - total_db <= RETARGET_LU:
            break
        step = short
        if raised is not None and after - raised[1] > 0.05:
            # the limiter kept part of the last raise: ask for as much more as that took
            step = short * min(4.0, max(1.0, raised[0] / (after - raised[1])))
        step = min(step, most_db - total_db)
        raised = (step, after)
        audio *= np.float32(10 ** (step / 20))
        total_db += step
        known = frame_peaks(audio, wrap)
    if limited:
        # a gain that moves with the signal leaves a little DC of its own on lopsided hits: gone again
        residual = _remove_dc(audio)
        dc = tuple(a + b for a, b in zip(dc, residual, strict=True))
    peak = float(known.max()) if known is not None else true_peak(audio, wrap)
    if peak > ceiling:
        # the limiter's gain moved a little between frames: what is left over goes with a static gain
        audio *= np.float32(ceiling / peak)
        total_db += _db(ceiling / peak)
        after += _db(ceiling / peak)
        peak = ceiling
    finite = math.isfinite(before)
    # how far the limiter took the loudest peak down, all passes together
    deepest_db = max(0.0, total_db + _db(peak_in) - _db(peak)) if limited and peak_in > 0 else 0.0
    crest = round(_db(peak_in) - before, 2) if finite and peak_in > 0 else None
    return audio, LevelReport(dc, before if finite else None, after if finite else None, total_db, deepest_db,
                              _db(peak), crest_db=crest)
