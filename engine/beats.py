"""Beat tracking on any novelty curve, with a tempo that may change, and beat-alignment scores.

One tracker serves two sides of Dance2Music: the *kinematic* novelty of a dancer's motion
(:mod:`.motion`) and the onset strength of rendered audio (:func:`audio_beats`), so the music's
beats are measured the same way as the dancer's, from the signal alone.

1. **Local tempo.** Over sliding windows (:data:`WINDOW_S` long, :data:`HOP_S` apart) the
   novelty's autocorrelation scores each candidate period by its mean at the period's multiples
   (a comb: a real pulse repeats), times a slight preference for shorter periods and a log-normal
   tempo prior (:data:`PRIOR_CENTER_BPM`, an octave wide).
2. **Tempo path.** A Viterbi pass over (window, period) picks one period per window; a change of
   tempo costs in proportion to its size squared (in octaves), so jitter does not move the path
   while a real tempo change does.
3. **Beats.** Dynamic programming (Ellis, "Beat tracking by dynamic programming", 2007) with the
   local period: each frame's score is its novelty plus the best score one period back, a
   deviation from the period costing ``TIGHTNESS * log(interval / period)**2``. Backtracking from
   the strongest beat near the end gives the beat sequence; each beat is refined to a fraction of a
   frame on the novelty's peak, and weak beats at either edge are dropped.

Everything here is numpy/scipy; times are seconds, tempi BPM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

from .audio import as_audio_array
from .errors import RequestError

#: tempo range searched (BPM)
TEMPO_RANGE_BPM = (40.0, 240.0)
#: centre and width (octaves) of the tempo prior
PRIOR_CENTER_BPM = 120.0
PRIOR_WIDTH_OCTAVES = 1.0
#: of two periods that explain the pulse equally well, prefer the shorter: scores scale as period**-bias
PERIOD_BIAS = 0.1
#: local tempo analysis: window length and hop (seconds)
WINDOW_S = 6.0
HOP_S = 0.25
#: cost of a tempo change between neighbouring windows, per octave squared, relative to a window's score
TEMPO_CHANGE_COST = 40.0
#: how strictly beats keep to the local period in the dynamic programme
TIGHTNESS = 100.0
#: edge beats weaker than this fraction of the median beat strength are dropped
EDGE_STRENGTH = 0.15
#: the default window within which a detected beat counts as hitting a reference beat (seconds)
HIT_TOLERANCE_S = 0.07
#: every other beat this many times weaker (on average) marks a pulse twice the beat's rate
OFFBEAT_RATIO = 1.6
#: how far from a beat its strength is looked for
OFFBEAT_REACH_S = 0.02
#: periods evaluated per octave
PERIODS_PER_OCTAVE = 96


@dataclass(frozen=True)
class BeatTrack:
    """What :func:`track_beats` found.

    ``beats_s``: beat times (seconds, ascending). ``tempo_times_s`` / ``tempo_bpm``: the local
    tempo at the centre of each analysis window. ``confidence``: 0 (no pulse) to 1 (perfectly
    periodic), the median autocorrelation at the chosen period. ``duration_s``: the length analysed.
    """

    beats_s: np.ndarray
    tempo_times_s: np.ndarray
    tempo_bpm: np.ndarray
    confidence: float
    duration_s: float

    @property
    def bpm(self) -> float:
        """The overall tempo: the median over every run of :data:`TEMPO_SPAN_BEATS` beats of the tempo
        that run holds (a run averages out each beat's own timing error; the median ignores the
        runs that straddle a tempo change). The tempo path's median when there are too few beats."""
        return span_tempo(self.beats_s) or (float(np.median(self.tempo_bpm)) if len(self.tempo_bpm) else 0.0)

    def bpm_at(self, time_s: float) -> float:
        """The local tempo at ``time_s`` (from the beat intervals around it)."""
        beats = self.beats_s
        if len(beats) < 2:
            return self.bpm
        i = int(np.clip(np.searchsorted(beats, time_s), 1, len(beats) - 1))
        lo, hi = max(0, i - 2), min(len(beats) - 1, i + 1)
        return float(60.0 * (hi - lo) / (beats[hi] - beats[lo]))

    def phase_at(self, time_s: float) -> float:
        """How far into the current beat ``time_s`` is (0 on a beat, towards 1 just before the next)."""
        beats = self.beats_s
        if len(beats) == 0:
            return 0.0
        period = 60.0 / self.bpm_at(time_s)
        i = int(np.searchsorted(beats, time_s, side="right")) - 1
        anchor = beats[max(i, 0)]
        return float(((time_s - anchor) / period) % 1.0)


#: beats per run over which :attr:`BeatTrack.bpm` measures the tempo
TEMPO_SPAN_BEATS = 8


def span_tempo(beats_s: np.ndarray, span: int = TEMPO_SPAN_BEATS) -> float:
    """Median tempo (BPM) of the runs of ``span`` beats in ``beats_s`` (fewer beats: one run); 0 for < 2 beats."""
    beats = np.asarray(beats_s, dtype=np.float64)
    if len(beats) < 2:
        return 0.0
    span = min(span, len(beats) - 1)
    durations = beats[span:] - beats[:-span]
    return float(60.0 * span / np.median(durations))


def _check_curve(novelty: object, frame_rate_hz: object) -> np.ndarray:
    if isinstance(frame_rate_hz, bool) or not isinstance(frame_rate_hz, int | float) or not (
        math.isfinite(float(frame_rate_hz)) and 10.0 <= float(frame_rate_hz) <= 2000.0
    ):
        raise RequestError("frame_rate_hz", frame_rate_hz, "10–2000 frames per second")
    curve = np.asarray(novelty, dtype=np.float64)
    if curve.ndim != 1:
        raise RequestError("novelty", f"array of shape {curve.shape}", "a 1-D curve")
    if not np.all(np.isfinite(curve)):
        raise RequestError("novelty", "a curve with NaN or infinite values", "finite values")
    return curve


def _normalise(curve: np.ndarray, frame_rate_hz: float) -> np.ndarray:
    """Positive part above a running mean (≈1 s), scaled to unit standard deviation."""
    size = max(3, int(round(frame_rate_hz)))
    lifted = np.maximum(curve - 0.5 * uniform_filter1d(curve, size=size, mode="nearest"), 0.0)
    std = float(lifted.std())
    return lifted / std if std > 0 else lifted


def _periods(frame_rate_hz: float, tempo_range_bpm: tuple[float, float]) -> np.ndarray:
    """Candidate periods in frames, log-spaced, slowest tempo last."""
    low, high = tempo_range_bpm
    octaves = math.log2(high / low)
    count = max(2, int(round(octaves * PERIODS_PER_OCTAVE)) + 1)
    bpm = high * 2.0 ** (-np.linspace(0.0, octaves, count))
    return 60.0 * frame_rate_hz / bpm


def _window_scores(curve: np.ndarray, periods: np.ndarray, frame_rate_hz: float) -> tuple[np.ndarray, np.ndarray,
                                                                                            np.ndarray]:
    """Per analysis window: the comb score of every period, its autocorrelation there, the window centre (frames)."""
    n = len(curve)
    window = min(n, max(int(round(WINDOW_S * frame_rate_hz)), int(math.ceil(2.5 * periods.max()))))
    hop = max(1, int(round(HOP_S * frame_rate_hz)))
    starts = list(range(0, max(1, n - window + 1), hop))
    if starts[-1] + window < n:
        starts.append(n - window)
    taper = np.hanning(window)
    bpm = 60.0 * frame_rate_hz / periods
    prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_CENTER_BPM) / PRIOR_WIDTH_OCTAVES) ** 2)
    weight = prior * (periods / periods.min()) ** -PERIOD_BIAS
    multiples = np.arange(1, 5)
    lags = periods[:, None] * multiples[None, :]
    lag_axis = np.arange(window)
    scores = np.zeros((len(starts), len(periods)))
    at_period = np.zeros((len(starts), len(periods)))
    for w, start in enumerate(starts):
        segment = curve[start:start + window]
        centered = (segment - segment.mean()) * taper
        spectrum = np.fft.rfft(centered, 2 * window)
        acf = np.fft.irfft(np.abs(spectrum) ** 2)[:window]
        if acf[0] <= 0:
            continue
        # unbiased: each lag is averaged over the overlap it has
        acf = acf / acf[0] * window / np.maximum(window - lag_axis, 1)
        values = np.interp(lags.ravel(), lag_axis, acf, right=0.0).reshape(lags.shape)
        inside = lags <= window * 0.75
        comb = np.where(inside, values, 0.0).sum(axis=1) / np.maximum(inside.sum(axis=1), 1)
        at_period[w] = np.interp(periods, lag_axis, acf, right=0.0)
        scores[w] = np.maximum(comb, 0.0) * weight
    centres = np.asarray(starts, dtype=np.float64) + window / 2.0
    return scores, at_period, centres


def _tempo_path(scores: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Viterbi over the windows: indices into ``periods``, one per window."""
    n_windows, n_periods = scores.shape
    log_p = np.log2(periods)
    jump = TEMPO_CHANGE_COST * (log_p[:, None] - log_p[None, :]) ** 2  # [from, to]
    scale = np.maximum(scores.max(axis=1, keepdims=True), 1e-9)
    local = scores / scale
    total = local[0].copy()
    back = np.zeros((n_windows, n_periods), dtype=np.int64)
    for w in range(1, n_windows):
        candidates = total[:, None] - jump
        back[w] = np.argmax(candidates, axis=0)
        total = candidates[back[w], np.arange(n_periods)] + local[w]
    path = np.zeros(n_windows, dtype=np.int64)
    path[-1] = int(np.argmax(total))
    for w in range(n_windows - 1, 0, -1):
        path[w - 1] = back[w, path[w]]
    return path


def _dp_beats(curve: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Beat frames by dynamic programming with a per-frame period (frames)."""
    n = len(curve)
    score = curve.copy()
    back = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        p = period[i]
        lo, hi = int(max(0, i - round(2.0 * p))), int(i - round(0.5 * p))
        if hi <= lo:
            continue
        prev = np.arange(lo, hi)
        penalty = TIGHTNESS * np.log((i - prev) / p) ** 2
        candidates = score[lo:hi] - penalty
        best = int(np.argmax(candidates))
        if candidates[best] > 0:
            score[i] = curve[i] + candidates[best]
            back[i] = lo + best
    # end on the best-scoring local peak of the last period
    tail = int(max(0, n - round(period[-1])))
    end = tail + int(np.argmax(score[tail:]))
    beats = [end]
    while back[beats[-1]] >= 0:
        beats.append(int(back[beats[-1]]))
    return np.asarray(beats[::-1], dtype=np.int64)


def _offbeat_level(curve: np.ndarray, beats: np.ndarray, period: np.ndarray, rate: float,
                   low_bpm: float) -> np.ndarray | None:
    """Beats at half the tempo when every other tracked beat is much weaker (those are the offbeats
    of a slower pulse: eighth-note hats between the kicks), else None.

    The stronger alternate set must carry :data:`OFFBEAT_RATIO` times the weaker's novelty on
    average, and the slower tempo must stay within the searched range.
    """
    if len(beats) < 8 or 60.0 * rate / (2.0 * float(np.median(period))) < low_bpm:
        return None
    reach = max(2, int(round(OFFBEAT_REACH_S * rate)))
    strength = np.array([curve[max(0, b - reach):b + reach + 1].max() for b in beats])
    even, odd = float(strength[0::2].mean()), float(strength[1::2].mean())
    weak, strong = min(even, odd), max(even, odd)
    if strong <= 0 or weak > strong / OFFBEAT_RATIO:
        return None
    return beats[0::2] if even >= odd else beats[1::2]


def _refine(curve: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Beat frames moved to the novelty's local peak within a frame or two, to a fraction of a frame."""
    out = beats.astype(np.float64)
    for k, b in enumerate(beats):
        lo, hi = max(0, b - 2), min(len(curve), b + 3)
        i = lo + int(np.argmax(curve[lo:hi]))
        if 0 < i < len(curve) - 1:
            a, c, d = curve[i - 1], curve[i], curve[i + 1]
            denominator = a - 2 * c + d
            offset = 0.5 * (a - d) / denominator if denominator < 0 else 0.0
            out[k] = i + float(np.clip(offset, -0.5, 0.5))
        else:
            out[k] = float(i)
    return out


def _trim_edges(curve: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Drops beats at either end that carry (almost) no novelty: the programme runs past the motion."""
    if len(beats) < 3:
        return beats
    strength = np.array([curve[max(0, b - 2):b + 3].max() for b in beats])
    floor = EDGE_STRENGTH * float(np.median(strength))
    keep = np.nonzero(strength > floor)[0]
    if not len(keep):
        return beats[:0]
    return beats[keep[0]:keep[-1] + 1]


def track_beats(
    novelty: Sequence[float] | np.ndarray,
    frame_rate_hz: float,
    tempo_range_bpm: tuple[float, float] = TEMPO_RANGE_BPM,
) -> BeatTrack:
    """Beats and local tempo of a novelty curve sampled at ``frame_rate_hz``.

    ``novelty`` is any curve that rises where a beat is likely (onset strength, kinematic beat
    strength), at least two seconds long. Raises :class:`RequestError` for a curve that is not a
    finite 1-D array, too short, or a frame rate or tempo range outside what is accepted.
    """
    curve = _check_curve(novelty, frame_rate_hz)
    rate = float(frame_rate_hz)
    low, high = tempo_range_bpm
    if not (20.0 <= low < high <= 600.0):
        raise RequestError("tempo_range_bpm", tempo_range_bpm, "(low, high) with 20 ≤ low < high ≤ 600 BPM")
    duration_s = len(curve) / rate
    if duration_s < 2.0:
        raise RequestError("novelty", f"{duration_s:.2f} s", "at least 2 s of signal to find a pulse in")
    empty = np.zeros(0)
    curve = _normalise(curve, rate)
    if not np.any(curve > 0):
        return BeatTrack(empty, empty, empty, 0.0, duration_s)
    periods = _periods(rate, (low, high))
    scores, at_period, centres = _window_scores(curve, periods, rate)
    path = _tempo_path(scores, periods)
    path_periods = periods[path]
    confidence = float(np.clip(np.median(at_period[np.arange(len(path)), path]), 0.0, 1.0))
    frame_period = np.interp(np.arange(len(curve)), centres, path_periods)
    beats = _dp_beats(curve, frame_period)
    slower = _offbeat_level(curve, beats, frame_period, rate, low)
    if slower is not None:
        frame_period, path_periods = 2.0 * frame_period, 2.0 * path_periods
        beats = slower
    beats = _trim_edges(curve, beats)
    beats_s = _refine(curve, beats) / rate
    tempo_bpm = 60.0 * rate / path_periods
    return BeatTrack(beats_s, centres / rate, tempo_bpm, confidence, duration_s)


# ---- audio --------------------------------------------------------------------------------------------

#: the low band's onsets (kicks, bass notes) count this much against the transients above it
LOW_BAND_WEIGHT = 1.0
#: the low band: below this (Hz)
LOW_BAND_HZ = 200.0
#: frame rate of :func:`onset_strength` (Hz)
ONSET_FRAME_RATE_HZ = 200.0


def low_band_onsets(audio: np.ndarray, sample_rate: int, rate_hz: float = ONSET_FRAME_RATE_HZ) -> np.ndarray:
    """Where the low band (below :data:`LOW_BAND_HZ`) starts sounding, at ``rate_hz``: the rise of its
    log envelope. Filtered forwards and backwards (no delay) and smoothed over a few milliseconds,
    so a kick's onset is placed at its attack, not at the peak of its body."""
    from scipy.signal import butter, sosfiltfilt

    from .conform import onsets

    mono = onsets.to_mono(audio)
    sos = butter(4, LOW_BAND_HZ, btype="lowpass", fs=sample_rate, output="sos")
    envelope = np.abs(sosfiltfilt(sos, mono))
    block = max(1, int(round(sample_rate / 1000.0)))  # 1 ms
    frames = len(envelope) // block
    envelope = envelope[:frames * block].reshape(frames, block).max(axis=1)
    envelope = gaussian_filter1d(envelope, 3.0)
    peak = float(envelope.max()) if frames else 0.0
    if peak <= 0:
        return np.zeros(int(len(mono) / sample_rate * rate_hz))
    level = np.log1p(100.0 * envelope / peak)
    rise = np.maximum(np.diff(level, prepend=level[:1]), 0.0)
    pool = max(1, int(round(1000.0 / rate_hz)))
    out = rise[:len(rise) // pool * pool].reshape(-1, pool).max(axis=1)
    return out


def onset_strength(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """The audio's onset strength at :data:`ONSET_FRAME_RATE_HZ`: where sound starts above the bass
    (the transient flux, 1 ms frames, which marks an onset's start rather than its loudest moment,
    so a clap's later bursts do not pull its beat late) plus where the low band starts (kicks and
    bass, which mark the beat in most music), each scaled to its peak. Audio is float32
    ``[channels, samples]`` (or 1-D mono). Returns ``(curve, frame_rate_hz)``.
    """
    from .conform import onsets

    data = as_audio_array(audio)
    transient, hop = onsets.transient_flux(data, sample_rate)
    block = max(1, int(round(sample_rate / hop / ONSET_FRAME_RATE_HZ)))
    rate = sample_rate / hop / block
    frames = len(transient) // block
    curve = transient[:frames * block].reshape(frames, block).max(axis=1)
    if curve.size and curve.max() > 0:
        curve = curve / curve.max()
    low = low_band_onsets(data, sample_rate, rate)[:frames]
    if low.size and low.max() > 0:
        curve[:len(low)] += LOW_BAND_WEIGHT * low / low.max()
    return curve, rate


def audio_beats(audio: np.ndarray, sample_rate: int,
                tempo_range_bpm: tuple[float, float] = TEMPO_RANGE_BPM) -> BeatTrack:
    """The beats of rendered audio, detected from its onsets alone (nothing about how it was made)."""
    curve, rate = onset_strength(audio, sample_rate)
    return track_beats(curve, rate, tempo_range_bpm)


# ---- alignment scores ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeatScores:
    """How well detected beats follow reference beats (Dance2Music's beat scores).

    ``coverage``: detected beats over reference beats (1 when the music has as many beats as the
    motion; above 1 when it beats faster). ``hit``: the fraction of reference beats with a detected
    beat within ``tolerance_s`` (each detected beat may hit one reference beat only).
    ``mean_offset_ms``: mean absolute offset of the hits. Counts are included.
    """

    coverage: float
    hit: float
    mean_offset_ms: float
    reference_beats: int
    detected_beats: int
    hits: int
    tolerance_s: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "beat_coverage": self.coverage,
            "beat_hit": self.hit,
            "mean_offset_ms": self.mean_offset_ms,
            "reference_beats": self.reference_beats,
            "detected_beats": self.detected_beats,
            "hits": self.hits,
            "tolerance_s": self.tolerance_s,
        }


def beat_scores(reference_s: Sequence[float] | np.ndarray, detected_s: Sequence[float] | np.ndarray,
                tolerance_s: float = HIT_TOLERANCE_S) -> BeatScores:
    """Beat coverage and beat hit of ``detected_s`` against ``reference_s`` (both in seconds).

    Matching is one to one: pairs are taken closest first. Raises :class:`RequestError` for a
    tolerance outside 1–500 ms or beat times that are not finite numbers.
    """
    if isinstance(tolerance_s, bool) or not isinstance(tolerance_s, int | float) or not 0.001 <= tolerance_s <= 0.5:
        raise RequestError("tolerance_s", tolerance_s, "0.001–0.5 s")
    reference = np.sort(np.asarray(reference_s, dtype=np.float64).ravel())
    detected = np.sort(np.asarray(detected_s, dtype=np.float64).ravel())
    for name, values in (("reference_s", reference), ("detected_s", detected)):
        if not np.all(np.isfinite(values)):
            raise RequestError(name, "beat times with NaN or infinite values", "finite times in seconds")
    if not len(reference):
        return BeatScores(0.0, 0.0, 0.0, 0, len(detected), 0, float(tolerance_s))
    pairs = []
    for i, r in enumerate(reference):
        lo, hi = np.searchsorted(detected, [r - tolerance_s, r + tolerance_s])
        pairs += [(abs(detected[j] - r), i, j) for j in range(lo, hi)]
    pairs.sort()
    used_ref: set[int] = set()
    used_det: set[int] = set()
    offsets = []
    for distance, i, j in pairs:
        if i not in used_ref and j not in used_det:
            used_ref.add(i)
            used_det.add(j)
            offsets.append(distance)
    hits = len(offsets)
    return BeatScores(
        coverage=len(detected) / len(reference),
        hit=hits / len(reference),
        mean_offset_ms=float(np.mean(offsets) * 1000.0) if offsets else 0.0,
        reference_beats=len(reference),
        detected_beats=len(detected),
        hits=hits,
        tolerance_s=float(tolerance_s),
    )
