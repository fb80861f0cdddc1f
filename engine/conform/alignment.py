"""Where stretched beats landed, and putting them back on the grid.

Rubber Band keeps a stretched signal's total length, not each beat's place. Measured on click
tracks and drum loops: its faster engine (R2) shifts everything by up to tens of milliseconds (a
constant that grows with its FFT size and with the stretch) and moves single hits by a further few
milliseconds, up to about 10 ms at 96 kHz, where it resets phase at one transient and not another;
its finer engine (R3) drifts by about a millisecond per beat (``bench/bench_conform.py`` shows the
grid error with and without this module). So after stretching:

1. The onsets of the input, mapped through the ideal time map (``t / factor``), are compared with
   the onsets of the stretched audio, segment by segment. A segment runs from a quiet point before
   one beat to a quiet point before the next, so each beat's attack and what rings after it stay in
   one piece. Only segments with a hit are measured; the others take a neighbour's lag, and when
   no segment has a hit (held notes, pads) the stretcher's own offset, measured on a click probe,
   is used throughout.
2. Each segment is taken from the stretched audio at its own measured lag, and neighbouring
   segments are crossfaded over a few milliseconds at the quiet point between them (the two sides
   are the same music, a few milliseconds apart).
3. The pre-echo the stretch smears ahead of each hit or note is lowered (:func:`limit_pre_echo`): in
   half-octave bands, each held to the same band of the source at the same point of the music (a new
   note's partials smeared ahead of it under the ringing of the note before show in their band, not in
   the whole signal's level).

Onset curves are :func:`~.onsets.transient_flux` (1 ms frames). All positions are in samples at
one rate; audio is float32 ``[channels, samples]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.fft

from . import onsets, threads
from .seams import crossfade

#: a segment whose onsets agree less than this with the expected ones keeps its neighbour's lag
MIN_SEGMENT_STRENGTH = 0.3
#: a segment holds a hit (something to align) when its strongest onset is this many times the
#: loop's median onset strength: held notes and chords stay below (their spectra are steady), hits
#: stand far above
HIT_RATIO = 4.0
#: segment boundaries are searched for between these fractions of a beat before each beat
SPLIT_WINDOW_BEATS = (0.45, 0.08)
#: crossfade between segments taken at different lags
SPLICE_S = 0.004
#: a local correlation peak at least this share of the highest counts as a hit's (earlier) attack
EARLY_PEAK_RATIO = 0.85
#: a segment's lag is drawn towards the median of all segments': candidates lose this much of the
#: best correlation per PRIOR_WIDTH_S squared away from it
PRIOR_PENALTY = 0.05
PRIOR_WIDTH_S = 0.004


@dataclass(frozen=True)
class Retiming:
    """How :func:`retime` placed the segments: the lag of each (samples), the overall lag and how
    well the onsets matched overall (0–1), the segment boundaries (samples from the loop start),
    and how many segments held a hit to time by."""

    lags: tuple[float, ...]
    global_lag: float
    strength: float
    boundaries: tuple[int, ...]
    hits: int = 0


def onset_curves(
    source: np.ndarray | tuple[np.ndarray, int], stretched: np.ndarray, sample_rate: int, factor: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(expected, actual, hop)``: the source's onset curve mapped to stretched time, and the
    stretched audio's own, on the same 1 ms frames. ``source``: the source's audio, or its curve already
    measured (:func:`~.onsets.transient_flux` of it at ``sample_rate``). Each curve is measured over two
    threads (``split``)."""
    reference, hop = source if isinstance(source, tuple) else onsets.transient_flux(source, sample_rate, split=True)
    actual, _ = onsets.transient_flux(stretched, sample_rate, split=True)
    expected = onsets.interpolate(reference, np.arange(len(actual)) * factor)
    return expected, actual, hop


def _best_lag(scores: np.ndarray, norm: float, max_lag: int) -> tuple[float, float]:
    """The lag (frames, parabola-refined) of the best score, and that score over ``norm``.

    The best is the earliest local maximum within :data:`EARLY_PEAK_RATIO` of the highest: when
    the stretcher splits a hit into two attacks a few milliseconds apart, the first is where the
    hit is heard, even if the second matches the original's shape a little better.
    """
    top = float(scores.max())
    best = int(np.argmax(scores))
    if top > 0 and len(scores) >= 3:
        inner = scores[1:-1]
        peaks = np.flatnonzero((inner >= scores[:-2]) & (inner > scores[2:]) & (inner >= EARLY_PEAK_RATIO * top)) + 1
        if len(peaks):
            best = int(peaks[0])
    strength = float(scores[best] / norm) if norm > 0 else 0.0
    lag = float(best)
    if 0 < best < len(scores) - 1:
        a, b, c = scores[best - 1], scores[best], scores[best + 1]
        denominator = a - 2 * b + c
        if denominator < 0:
            lag += float(np.clip(0.5 * (a - c) / denominator, -0.5, 0.5))
    return lag - max_lag, strength


def window_lag(
    expected: np.ndarray,
    actual: np.ndarray,
    start: int,
    stop: int,
    max_lag: int,
    prior: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Lag (frames) at which ``actual`` best matches ``expected[start:stop]``, searched within
    ``±max_lag``, and the normalised correlation there (0–1).

    ``prior``: ``(lag, width)`` in frames. Each candidate's score (relative to the best) then
    loses :data:`PRIOR_PENALTY` per ``width`` squared away from ``lag``, so a flat correlation (a
    smeared hit matches about as well over several milliseconds) settles near the prior while a
    clear peak elsewhere still wins.
    """
    start, stop = max(0, start), min(len(expected), stop)
    if stop - start < 2 or max_lag < 1:
        return 0.0, 0.0
    template = expected[start:stop]
    padded = np.pad(actual, (max_lag, max_lag))
    # padded[start : stop + 2 * max_lag] holds actual[start - max_lag : stop + max_lag]
    region = padded[start : stop + 2 * max_lag]
    scores = np.correlate(region, template, mode="valid")
    norm = float(np.linalg.norm(template) * np.linalg.norm(region))
    if prior is None or scores.max() <= 0:
        return _best_lag(scores, norm, max_lag)
    lags = np.arange(len(scores)) - max_lag
    ranked = scores / scores.max() - PRIOR_PENALTY * ((lags - prior[0]) / prior[1]) ** 2
    lag, _ = _best_lag(ranked, 1.0, max_lag)
    index = int(round(lag)) + max_lag
    return lag, float(scores[index] / norm) if norm > 0 else 0.0


def measure_offset(
    source: np.ndarray, stretched: np.ndarray, sample_rate: int, factor: float, max_offset_s: float
) -> tuple[float, float]:
    """How many samples later than ``position / factor`` the onsets of ``source`` sit in ``stretched``,
    overall. Returns ``(offset_samples, strength)`` (strength 0–1)."""
    expected, actual, hop = onset_curves(source, stretched, sample_rate, factor)
    max_lag = max(1, int(round(max_offset_s * sample_rate / hop)))
    # every signal "starts" at its first sample and the stretcher ramps in and out at the ends,
    # which says nothing about the timing in between
    edge = 2 * max_lag
    if len(expected) > 4 * edge:
        expected = expected.copy()
        expected[:edge] = 0.0
        expected[-edge:] = 0.0
    lag, strength = window_lag(expected, actual, 0, len(expected), max_lag)
    return lag * hop, strength


def _quiet_point(expected: np.ndarray, hop: int, loop_start: float, beat: float, event: float) -> int:
    """The quietest point (least expected onset strength) shortly before ``event`` (samples from the
    loop start), so that a boundary there cuts between hits rather than through one."""
    lo = (loop_start + event - SPLIT_WINDOW_BEATS[0] * beat) / hop
    hi = (loop_start + event - SPLIT_WINDOW_BEATS[1] * beat) / hop
    a, b = int(np.floor(lo)), int(np.ceil(hi)) + 1
    if not 0 <= a < b <= len(expected):
        return int(round(event - 0.25 * beat))
    # smoothed, so the point falls in the middle of a quiet stretch, not at its edge
    quiet = onsets.smooth(expected[a:b], 4.0)
    return int(round((a + int(np.argmin(quiet))) * hop - loop_start))


def retime(
    stretched: np.ndarray,
    expected: np.ndarray,
    actual: np.ndarray,
    hop: int,
    *,
    loop_start: float,
    beat: float,
    loop_frames: int,
    pre_frames: int,
    max_lag: int,
    fallback_lag: float | None,
    sample_rate: int,
) -> tuple[np.ndarray, Retiming]:
    """Cut ``pre_frames + loop_frames`` samples from ``stretched`` with every beat on the grid.

    ``loop_start`` is where the loop would start in ``stretched`` if the stretch were ideal,
    ``beat`` the beat length, both in samples; ``expected``/``actual`` come from
    :func:`onset_curves`. Lags are searched within ``±max_lag`` samples; segments without onsets to
    measure take their neighbour's lag, or the overall one; ``fallback_lag`` when no segment has a
    hit or the onsets match too weakly overall. Returns the stream (the loop preceded by ``pre_frames`` of pre-roll)
    and how it was placed.
    """
    max_lag_frames = max(1, int(round(max_lag / hop)))
    edge = 2 * max_lag_frames
    trimmed = expected.copy()
    if len(trimmed) > 4 * edge:
        trimmed[:edge] = 0.0
        trimmed[-edge:] = 0.0
    global_lag, strength = window_lag(trimmed, actual, 0, len(trimmed), max_lag_frames)
    global_lag *= hop
    if strength < MIN_SEGMENT_STRENGTH and fallback_lag is not None:
        global_lag = fallback_lag

    # beats inside the loop (not those within a few hundredths of a beat of its end)
    beats_inside = [
        k * beat
        for k in range(1, int(np.ceil(loop_frames / beat)))
        if k * beat < loop_frames - SPLIT_WINDOW_BEATS[1] * beat
    ]
    splits = [_quiet_point(expected, hop, loop_start, beat, event) for event in beats_inside]
    bounds = [-pre_frames, *splits, loop_frames]
    # each lag is measured from the quiet point before the segment's first beat to the one before
    # the next segment's: the loop's own first beat and the next loop's downbeat count as beats
    windows = [
        _quiet_point(expected, hop, loop_start, beat, 0.0),
        *splits,
        _quiet_point(expected, hop, loop_start, beat, float(loop_frames)),
    ]
    peaks, lags = [], []
    for j in range(len(bounds) - 1):
        a = int(np.floor((loop_start + windows[j]) / hop))
        b = int(np.ceil((loop_start + windows[j + 1]) / hop))
        peaks.append(float(np.max(expected[max(0, a) : max(1, b)], initial=0.0)))
        lag, segment_strength = window_lag(expected, actual, a, b, max_lag_frames)
        lags.append(lag * hop if segment_strength >= MIN_SEGMENT_STRENGTH else np.nan)
    # second pass: the same measurement drawn towards the median lag, which settles segments whose
    # hits the stretcher smeared (a flat correlation) without moving ones with a clear peak
    measured = np.array(lags)
    if np.any(~np.isnan(measured)):
        median = float(np.nanmedian(measured)) / hop
        width = PRIOR_WIDTH_S * sample_rate / hop
        for j in range(len(bounds) - 1):
            if np.isnan(measured[j]):
                continue
            a = int(np.floor((loop_start + windows[j]) / hop))
            b = int(np.ceil((loop_start + windows[j + 1]) / hop))
            lag, _ = window_lag(expected, actual, a, b, max_lag_frames, prior=(median, width))
            lags[j] = lag * hop
    floor = float(np.median(expected)) + 1e-12
    lag_array = np.array([lag if peak > HIT_RATIO * floor else np.nan for lag, peak in zip(lags, peaks, strict=True)])
    valid = np.flatnonzero(~np.isnan(lag_array))
    if len(valid) == 0 and fallback_lag is not None:
        # no hit anywhere: the onset curves hold nothing to time by
        global_lag = fallback_lag
    if strength < MIN_SEGMENT_STRENGTH or len(valid) == 0:
        lag_array[:] = global_lag
    else:
        for missing in np.flatnonzero(np.isnan(lag_array)):
            lag_array[missing] = lag_array[valid[np.argmin(np.abs(valid - missing))]]

    channels = stretched.shape[0]
    total = pre_frames + loop_frames
    out = np.zeros((channels, total), dtype=np.float32)
    splice = max(2, int(round(SPLICE_S * sample_rate)))

    def take(lo: int, hi: int, lag: float) -> np.ndarray:
        """stretched at loop-relative positions [lo, hi) shifted by lag, silence outside."""
        first = int(round(loop_start + lag)) + lo
        block = np.zeros((channels, hi - lo), dtype=np.float32)
        s0, s1 = max(0, first), min(stretched.shape[1], first + hi - lo)
        if s1 > s0:
            block[:, s0 - first : s1 - first] = stretched[:, s0:s1]
        return block

    for j in range(len(bounds) - 1):
        lo, hi = bounds[j], bounds[j + 1]
        out[:, lo + pre_frames : hi + pre_frames] = take(lo, hi, lag_array[j])
        if j > 0 and abs(lag_array[j] - lag_array[j - 1]) >= 0.5:
            # end the previous segment with a crossfade into this one, just before the boundary
            f0 = max(bounds[j - 1], lo - splice)
            out[:, f0 + pre_frames : lo + pre_frames] = crossfade(
                take(f0, lo, lag_array[j - 1]), take(f0, lo, lag_array[j])
            )
    report = Retiming(
        lags=tuple(float(v) for v in lag_array),
        global_lag=float(global_lag),
        strength=float(strength),
        boundaries=tuple(int(v) for v in splits),
        hits=len(valid),
    )
    return out, report


#: the stretched audio may rise at most this far (dB) above the source's own level at the same point
#: of the music, band by band; more is the stretcher's pre-echo, smeared up to about 25 ms ahead of a
#: hit (Rubber Band's R3 at its short window: measured on recorded breaks, -60 dB in the source, -35 dB
#: in the stretch 5 ms before the hit), which an onset detector hears as the hit arriving early. Under
#: the ringing of a held or earlier note the smear of a new note's partials is hidden in the whole
#: signal's level but not in its own band: measured by ``bench/bench_key.py`` on staccato renders
#: (marimba, xylophone, harpsichord...), a broadband limit left their onsets about 6 ms early, half-octave
#: bands at 0 dB about 4 ms
PRE_ECHO_MARGIN_DB = 0.0
#: envelopes are compared in blocks of this length, each against the source's loudest within one
#: block either way (the retiming leaves a hit a millisecond or so off its ideal place)
PRE_ECHO_BLOCK_S = 0.001
#: below this share of a band's loudest block, nothing is limited in it (noise floors, reverb tails)
PRE_ECHO_FLOOR = 1e-3
#: the bands the pre-echo is limited in: one below the first edge, then PRE_ECHO_BANDS_PER_OCTAVE to an
#: octave up to the last edge under a quarter of the sample rate, and one above it
PRE_ECHO_FIRST_EDGE_HZ = 150.0
PRE_ECHO_BANDS_PER_OCTAVE = 2
PRE_ECHO_LAST_EDGE_HZ = 9600.0
#: the bands are split a stretch of this long at a time, with this much more read either side (the bands'
#: filters ring for a few tens of milliseconds at the lowest edge), so what they hold does not grow with the audio
PRE_ECHO_CHUNK_S = 2.0
PRE_ECHO_CHUNK_MARGIN_S = 0.1
#: neighbouring bands cross over (raised cosine in log frequency, summing to one) within this share of an octave
PRE_ECHO_CROSSOVER_OCTAVES = 1.0 / 3.0


def level_blocks(audio: np.ndarray, block: int, chunk_blocks: int = 4096) -> np.ndarray:
    """The loudest sample (any channel) of each ``block`` samples of ``[channels, samples]`` audio
    (the last block may be shorter), read a few thousand blocks at a time: no copy of the audio is made.
    The channels' magnitudes are folded into one first, so the blocks are reduced once."""
    count = -(-audio.shape[1] // block)
    levels = np.empty(count, np.float32)
    for first in range(0, count, chunk_blocks):
        last = min(count, first + chunk_blocks)
        stop = min(audio.shape[1], last * block)
        whole = (stop - first * block) // block
        if whole:
            end = first * block + whole * block
            loudest = np.abs(audio[0, first * block : end])
            for channel in audio[1:]:
                np.maximum(loudest, np.abs(channel[first * block : end]), out=loudest)
            levels[first : first + whole] = loudest.reshape(whole, block).max(axis=1)
        if first + whole < last:
            levels[first + whole] = np.abs(audio[:, (first + whole) * block : stop]).max()
    return levels


def band_edges(sample_rate: int) -> np.ndarray:
    """The crossover frequencies (Hz) of the bands the pre-echo is limited in (see :data:`PRE_ECHO_FIRST_EDGE_HZ`)."""
    count = int(math.floor(math.log2(PRE_ECHO_LAST_EDGE_HZ / PRE_ECHO_FIRST_EDGE_HZ) * PRE_ECHO_BANDS_PER_OCTAVE)) + 1
    edges = PRE_ECHO_FIRST_EDGE_HZ * 2.0 ** (np.arange(count) / PRE_ECHO_BANDS_PER_OCTAVE)
    return edges[edges < sample_rate / 4.0]


#: a band's level is measured on every D-th sample of it (D = 2, 4, 8 or 16, dividing the block) where the
#: band's highest frequency is at most 1/PRE_ECHO_MEASURE_OVERSAMPLING of that lower rate: the loudest of the
#: samples kept then falls short of the band's loudest by at most 1 - cos(pi / PRE_ECHO_MEASURE_OVERSAMPLING)
#: (0.8 %, 0.07 dB). The low bands, whose waves are longest, are measured at a fraction of the cost
PRE_ECHO_MEASURE_OVERSAMPLING = 24
PRE_ECHO_DECIMATIONS = (16, 8, 4, 2)

#: the bands' inverse FFTs are made this many rows (bands times channels) at a time: pocketfft computes four or
#: more transforms of one length together with SIMD instructions, about twice as fast per transform as one or two
#: (the same values to the bit)
PRE_ECHO_FFT_ROWS = 4
#: a crossover's bins ``[a, b)`` and the band's gain over them
_Ramp = tuple[int, int, np.ndarray]


def _band_plan(bins: int, sample_rate: int, size: int, scale: float) -> list[tuple[int, int, list[_Ramp]]]:
    """For each band (see :func:`bands`), lowest first, over the ``bins`` bins of an FFT of ``size``:
    ``(lo, hi, ramps)``, the bins ``[lo, hi)`` it takes from the spectrum and the ``(a, b, gain)`` by which
    its bins ``[a, b)`` are then multiplied, in order (the crossover below it, then the one above)."""
    frequency = np.arange(bins, dtype=np.float32) * np.float32(sample_rate / size * scale)
    half = PRE_ECHO_CROSSOVER_OCTAVES / 2.0
    edges = band_edges(sample_rate)
    # each edge's crossover: its bins, and the gain there of the band above it
    crossovers = []
    for edge in edges:
        lo, hi = np.searchsorted(frequency, [edge * 2.0 ** -half, edge * 2.0 ** half])
        x = (np.log2(frequency[lo:hi] / np.float32(edge)) + half) / PRE_ECHO_CROSSOVER_OCTAVES
        crossovers.append((int(lo), int(hi), (0.5 - 0.5 * np.cos(np.pi * x)).astype(np.float32)))
    plan = []
    for k in range(len(edges) + 1):
        lo = crossovers[k - 1][0] if k > 0 else 0
        hi = crossovers[k][1] if k < len(edges) else bins
        ramps = []
        if k > 0:
            ramps.append(crossovers[k - 1])
        if k < len(edges):
            a, b, rise = crossovers[k]
            ramps.append((a, b, 1.0 - rise))
        plan.append((lo, hi, ramps))
    return plan


def _spectrum(audio: np.ndarray) -> tuple[np.ndarray, int]:
    """The rfft of float32 ``[channels, samples]`` audio and its length, zero-padded to a length the FFT is
    fast at (an awkward length can cost tens of times more)."""
    size = scipy.fft.next_fast_len(audio.shape[1], real=True)
    return scipy.fft.rfft(np.asarray(audio, dtype=np.float32), n=size, axis=1), size


def _weigh(spectrum: np.ndarray, lo: int, hi: int, ramps: list[_Ramp], out: np.ndarray) -> None:
    """Write the band ``(lo, hi, ramps)`` of ``spectrum`` into ``out`` (left as it is outside ``[lo, hi)``)."""
    out[:, lo:hi] = spectrum[:, lo:hi]
    for a, b, gain in ramps:
        out[:, a:b] *= gain[None, :]


def _band_spectra(audio: np.ndarray, sample_rate: int, scale: float) -> Iterator[tuple[np.ndarray, int, int]]:
    """``(weighted, top, size)`` for each band of ``audio``, lowest first: the audio's spectrum (FFT length
    ``size``) weighted by the band's gain (see :func:`bands`), and the bin above the band's highest nonzero
    one. ``weighted`` is one buffer, reused: read it before asking for the next band."""
    spectrum, size = _spectrum(audio)
    work = np.zeros_like(spectrum)
    for lo, hi, ramps in _band_plan(spectrum.shape[1], sample_rate, size, scale):
        _weigh(spectrum, lo, hi, ramps, work)
        yield work, hi, size
        work[:, lo:hi] = 0.0


def bands(audio: np.ndarray, sample_rate: int, scale: float = 1.0) -> Iterator[np.ndarray]:
    """The bands of float32 ``[channels, samples]`` audio, one at a time (float32, same shape), lowest
    first: they sum to the audio. Each is the audio's spectrum weighted by the band's gain: one inside
    it, a raised cosine over :data:`PRE_ECHO_CROSSOVER_OCTAVES` around each edge (in log frequency, so
    neighbours sum to one), zero elsewhere. ``scale``: the bands of audio whose frequencies are moved by
    this ratio afterwards (a pitch shift): its frequencies are multiplied by it before the edges are
    applied. Held at once beside the audio: its spectrum, a weighted copy and one band."""
    frames = audio.shape[1]
    for weighted, _, size in _band_spectra(audio, sample_rate, scale):
        yield scipy.fft.irfft(weighted, n=size, axis=1)[:, :frames]


def _grouped_bands(audio: np.ndarray, sample_rate: int, scale: float = 1.0,
                   step_of: Callable[[int, int], int] | None = None) -> Iterator[tuple[int, np.ndarray, int]]:
    """``(k, band, step)`` for each band ``k`` of ``audio``, lowest first: the band as :func:`bands` makes it
    (the same values, but as long as the FFT: read its first ``audio.shape[1]`` samples), or every
    ``step``-th sample of it where ``step_of(top, size)`` (the bin above the band's highest nonzero one, the
    FFT's length) says more than 1. Neighbouring bands of one step are transformed together,
    :data:`PRE_ECHO_FFT_ROWS` rows at a time; a band is a view into its group's result."""
    spectrum, size = _spectrum(audio)
    channels = spectrum.shape[0]
    group = max(1, -(-PRE_ECHO_FFT_ROWS // channels))
    plan = _band_plan(spectrum.shape[1], sample_rate, size, scale)
    steps = [1 if step_of is None else step_of(hi, size) for _, hi, _ in plan]
    k = 0
    while k < len(plan):
        members = [k]
        while len(members) < group and members[-1] + 1 < len(plan) and steps[members[-1] + 1] == steps[k]:
            members.append(members[-1] + 1)
        length = size // steps[k]
        work = np.zeros((len(members), channels, length // 2 + 1), spectrum.dtype)
        for row, j in enumerate(members):
            lo, hi, ramps = plan[j]
            _weigh(spectrum, lo, hi, ramps, work[row])
        out = scipy.fft.irfft(work.reshape(-1, work.shape[2]), n=length, axis=1)
        del work
        for row, j in enumerate(members):
            yield j, out[row * channels : (row + 1) * channels], steps[j]
        k = members[-1] + 1


def _decimation(top: int, size: int, block: int, offset: int) -> int:
    """The largest of :data:`PRE_ECHO_DECIMATIONS` a band whose spectrum ends below bin ``top`` of an FFT of
    ``size`` can be measured at (see :data:`PRE_ECHO_MEASURE_OVERSAMPLING`), dividing ``block``, ``size``
    and ``offset`` (where the measured stretch starts); 1 if none."""
    for step in PRE_ECHO_DECIMATIONS:
        if block % step == 0 and size % step == 0 and offset % step == 0 \
                and top * step * PRE_ECHO_MEASURE_OVERSAMPLING <= size:
            return step
    return 1


def _chunks(frames: int, block: int, sample_rate: int) -> Iterator[tuple[int, int, int, int]]:
    """``(lo, a, b, hi)``: the stretches ``[a, b)`` the bands are split in, whole blocks each, and the
    audio ``[lo, hi)`` read for them (:data:`PRE_ECHO_CHUNK_MARGIN_S` more either side)."""
    step = block * max(1, int(round(PRE_ECHO_CHUNK_S * sample_rate / block)))
    margin = int(round(PRE_ECHO_CHUNK_MARGIN_S * sample_rate)) + 2 * block
    for a in range(0, frames, step):
        b = min(frames, a + step)
        yield max(0, a - margin), a, b, min(frames, b + margin)


def band_count(sample_rate: int) -> int:
    return len(band_edges(sample_rate)) + 1


def band_levels(audio: np.ndarray, sample_rate: int, block: int, scale: float = 1.0) -> np.ndarray:
    """:func:`level_blocks` of each of the :func:`bands` of ``audio`` (``[bands, blocks]``), low bands on
    every D-th sample (:data:`PRE_ECHO_MEASURE_OVERSAMPLING`); ``scale``: the pitch ratio the audio is shifted
    by in the stretch. Split a stretch at a time (:data:`PRE_ECHO_CHUNK_S`)."""
    levels = np.zeros((band_count(sample_rate), -(-audio.shape[1] // block)), np.float32)
    for lo, a, b, hi in _chunks(audio.shape[1], block, sample_rate):
        first, last = a // block, -(-b // block)

        def step_of(top: int, size: int, offset: int = a - lo) -> int:
            return _decimation(top, size, block, offset)

        for k, band, step in _grouped_bands(audio[:, lo:hi], sample_rate, scale, step_of):
            if step == 1:
                levels[k, first:last] = level_blocks(band[:, a - lo : b - lo], block)
            else:
                levels[k, first:last] = _decimated_level_blocks(band, a - lo, b - lo, block, step) / np.float32(step)
    return levels


def _decimated_level_blocks(band: np.ndarray, start: int, stop: int, block: int, step: int) -> np.ndarray:
    """:func:`level_blocks` of samples ``[start, stop)`` of a band of which ``band`` holds every ``step``-th
    sample (``start`` and ``block`` multiples of ``step``): the loudest kept sample of each block, or the
    block's last sample where it is louder (a slow wave's loudest in a block is often at its edge), that one
    found between its kept neighbours by linear interpolation."""
    kept = level_blocks(band[:, start // step : -(-stop // step)], block // step)
    last = np.minimum(start + block * np.arange(1, len(kept) + 1), stop) - 1
    below, offset = np.divmod(last, step)
    weight = (offset / step).astype(np.float32)
    edge = band[:, below] * (1.0 - weight) + band[:, (below + 1) % band.shape[1]] * weight
    return np.maximum(kept, np.abs(edge).max(axis=0))


def limit_pre_echo(
    stream: np.ndarray, source_levels: np.ndarray, block: int, *, loop_start: float, factor: float, pre_frames: int,
    sample_rate: int,
) -> float:
    """Lower the stretched ``stream`` (changed in place), band by band, wherever a band is louder than the
    same band of the source at the same point of the music by more than :data:`PRE_ECHO_MARGIN_DB`: the
    pre-echo ahead of each hit or note.

    ``source_levels``: :func:`band_levels` of the material that was stretched (at the stream's rate, its
    bands moved by the pitch ratio); ``loop_start``: where the loop starts in it (samples); sample ``j``
    of the stream is the material's sample ``loop_start + (j - pre_frames) * factor``. The stream is
    split a stretch at a time (:data:`PRE_ECHO_CHUNK_S`, from the stream as it came in; the stretches in two
    halves of about one length, each in a thread of its own: :mod:`.threads`) and only what is lowered is taken
    off it, so a band left alone leaves it as it was (and a stretch of it where no gain is
    below one). Returns the share of the stream's blocks (over all bands) that were lowered.
    """
    frames = stream.shape[1]
    if frames == 0 or not source_levels.size:
        return 0.0
    count = -(-frames // block)
    centres = (np.arange(count) + 0.5) * block
    caps, floors = block_caps(source_levels, block, centres, loop_start=loop_start, factor=factor,
                              pre_frames=pre_frames)
    chunks = list(_chunks(frames, block, sample_rate))

    def lower(part: range, given: dict[int, np.ndarray]) -> int:
        """Lower the stretches ``chunks[part]``; the number of blocks lowered in them."""
        lowered = 0
        for lo, a, b, piece in _pieces(stream, [chunks[i] for i in part], given):
            # the band's blocks over the stretch and two either side (its gains reach one block beyond)
            e0, e1 = max(0, a - 2 * block), min(frames, b + 2 * block)
            index = np.arange(e0 // block, e0 // block + -(-(e1 - e0) // block))
            inside = (index >= a // block) & (index < -(-b // block))
            for k, band, _ in _grouped_bands(piece, sample_rate):
                out_levels = level_blocks(band[:, e0 - lo : e1 - lo], block)
                gain = _block_gains(out_levels, caps[k][index], floors[k])
                below = gain < 1.0
                if not np.any(below[inside]):
                    continue
                lowered += int(np.count_nonzero(below[inside]))
                _apply_gains(stream, band, lo, a, b, gain, below, index, centres, block)
        return lowered

    split = _halfway(chunks) if threads.TWO_THREADS else len(chunks)
    if split == len(chunks):
        lowered = lower(range(len(chunks)), {})
    else:
        # the two halves in two threads: each changes only its own stretches, and the two stretches either
        # side of the split (whose margins reach into the other half) are read as they came in, before either
        # half starts
        before = {i: stream[:, chunks[i][0] : chunks[i][3]].copy() for i in (split - 1, split)}
        first, second = threads.both(lambda: lower(range(split), {split - 1: before[split - 1]}),
                                     lambda: lower(range(split, len(chunks)), {0: before[split]}))
        lowered = first + second
    return lowered / (count * len(source_levels))


def _halfway(chunks: list[tuple[int, int, int, int]]) -> int:
    """Where to split ``chunks`` (:func:`_chunks`) into two runs of stretches of about the same length (their
    count when there is a single one)."""
    if len(chunks) < 2:
        return len(chunks)
    ends = np.array([b for _, _, b, _ in chunks])
    return int(np.clip(np.argmin(np.abs(2 * ends - ends[-1])) + 1, 1, len(chunks) - 1))


def stream_pieces(stream: np.ndarray, block: int, sample_rate: int) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """``(lo, a, b, piece)`` for each stretch ``[a, b)`` of ``stream`` (:func:`_chunks`): ``piece``, a copy of
    ``stream[:, lo:hi]`` as it came in, even where the caller has already changed the stretch before (its
    margin reads the stream as it was). Taken before the caller changes ``stream[:, a:b]``."""
    return _pieces(stream, list(_chunks(stream.shape[1], block, sample_rate)), {})


def _pieces(stream: np.ndarray, chunks: list[tuple[int, int, int, int]],
            given: dict[int, np.ndarray]) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """:func:`stream_pieces` over consecutive ``chunks`` (:func:`_chunks`); ``given[i]``: the piece of
    ``chunks[i]``, taken already. A stretch's margin reaches at most into its neighbours' stretches, which are
    longer than it."""
    frames = stream.shape[1]
    before: np.ndarray | None = None  # the stream as it came in over the current stretch
    for i, (lo, a, b, hi) in enumerate(chunks):
        if i in given:
            piece = given[i]
        else:
            piece = stream[:, lo:hi].copy()
            if before is not None and a > lo:
                piece[:, : a - lo] = before[:, before.shape[1] - (a - lo) :]
        before = stream[:, a:b].copy() if b < frames else None
        yield lo, a, b, piece


def block_caps(source_levels: np.ndarray, block: int, centres: np.ndarray, *, loop_start: float, factor: float,
               pre_frames: int) -> tuple[list[np.ndarray], list[float]]:
    """Per band, what :func:`limit_pre_echo` holds each block of the stream (centred on ``centres``) to: the
    source's loudest within a block either way of the point of the music it maps to (and of the block's span),
    :data:`PRE_ECHO_MARGIN_DB` over; and the band's floor (:data:`PRE_ECHO_FLOOR` of its loudest)."""
    positions = (loop_start + (centres - pre_frames) * factor) / block - 0.5
    caps, floors = [], []
    for levels in source_levels:
        reach = np.maximum.reduce([np.roll(levels, shift) for shift in (-1, 0, 1)])
        reach = np.maximum(reach, np.roll(reach, -int(math.ceil(factor))))
        caps.append(np.interp(positions, np.arange(len(reach)), reach) * 10 ** (PRE_ECHO_MARGIN_DB / 20.0))
        floors.append(PRE_ECHO_FLOOR * float(levels.max()))
    return caps, floors


def _block_gains(out_levels: np.ndarray, cap: np.ndarray, floor: float) -> np.ndarray:
    """The gain of each block of a band whose loudest samples are ``out_levels``, held to ``cap`` (not below
    ``floor``): per block the lower of its own and its neighbours' (smoothed over a block when applied, no
    step to click)."""
    gain = np.minimum(1.0, np.maximum(cap, floor) / np.maximum(out_levels, 1e-12))
    return np.minimum(gain, np.minimum(np.concatenate([gain[:1], gain[:-1]]), np.concatenate([gain[1:], gain[-1:]])))


def _apply_gains(stream: np.ndarray, band: np.ndarray, lo: int, a: int, b: int, gain: np.ndarray, below: np.ndarray,
                 index: np.ndarray, centres: np.ndarray, block: int) -> None:
    """Take off ``stream[:, a:b]`` what the block gains ``gain`` (of blocks ``index``, ``below``: those under
    one) lower of ``band`` (read from ``lo``): per sample the gains interpolated between block centres, from
    the first sample a lowered block's gain reaches to the last (outside, the gain is one)."""
    # from the centre of the block before the first lowered one to that of the block after the last
    lowered = np.flatnonzero(below)
    # (before the first block's centre and after the last's, the gain is that block's own)
    s0 = a if lowered[0] == 0 else max(a, int(math.ceil(centres[index[lowered[0] - 1]])))
    s1 = b if lowered[-1] == len(index) - 1 else min(b, int(math.floor(centres[index[lowered[-1] + 1]])) + 1)
    if s1 <= s0:
        return
    taken = band[:, s0 - lo : s1 - lo]  # the band is not used again: lowered in place
    taken *= _interpolated(gain, centres[index[0]], block, s0, s1) - np.float32(1.0)
    stream[:, s0:s1] += taken


def _interpolated(gain: np.ndarray, first_centre: float, block: int, s0: int, s1: int) -> np.ndarray:
    """float32 samples ``[s0, s1)`` of the block gains ``gain`` interpolated linearly between the blocks'
    centres (``first_centre`` and every ``block`` samples on), each end's gain held beyond it (as
    ``np.interp``)."""
    start = int(math.ceil(first_centre))
    ramp = ((np.arange(block) + (start - first_centre)) / block).astype(np.float32)
    gain = gain.astype(np.float32)
    # samples [start, start + (len(gain) - 1) * block): between two centres
    inner = (gain[:-1, None] + (gain[1:] - gain[:-1])[:, None] * ramp[None, :]).ravel()
    out = np.empty(s1 - s0, np.float32)
    head = min(max(start - s0, 0), s1 - s0)
    out[:head] = gain[0]
    i0, i1 = s0 + head - start, min(len(inner), s1 - start)
    out[head : head + max(0, i1 - i0)] = inner[i0:i1]
    out[head + max(0, i1 - i0) :] = gain[-1]
    return out
