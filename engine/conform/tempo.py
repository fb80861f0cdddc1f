"""Tempo and downbeat estimation (numpy/scipy only), the way a DAW's warp reads a loop.

A loop file starts on its downbeat (the sample-library convention, and what DAWs assume when they
warp a loop) and holds whole bars; what is left to find is how many beats it holds. So:

1. **Downbeat.** The file's first sample, unless the audio has a lead-in: silence before the first
   attack (the downbeat is where that attack starts, to the sample), or an opening attack with
   next to no low-frequency weight where the loop has kicks (a pickup: the downbeat is the first beat
   with a strong low-frequency attack). A given downbeat is taken as it is.
2. **Pulse.** Spectral flux (:func:`~.onsets.spectral_flux`) and its unbiased autocorrelation; each
   candidate period is scored by the mean autocorrelation at its multiples (a comb), times
   ``period ** -PERIOD_BIAS`` (of two periods that explain the pulse equally well, the shorter one
   explains more onsets).
3. **Readings.** The best few periods of the comb, each also read double, half, 3:2 and 2:3, and
   the tempi at which the audio from the downbeat holds a whole number of bars (1, 2, 4, 8... bars
   of ``beats_per_bar`` beats; a short file also one or two beats) are the candidates. Each is
   scored by the comb, by how close the audio comes to whole bars at it (a Gaussian, 1 % wide, with a
   floor: a file trimmed loosely still gets its pulse), and by a prior: a log-normal around 120 BPM an
   octave wide, or with a ``beats_hint`` (the beats a render was asked to hold), around the tempo at
   which the audio holds exactly that many beats, a quarter octave wide. The comb alone cannot tell a
   pulse from its double, half or dotted reading; the length and the prior can, together.
4. **Fit.** The chosen tempo is fitted to the transient onsets (:func:`~.onsets.transient_flux`, 1 ms
   frames) by weighted least squares over every beat, which pins the period to a few hundredths of a
   percent. With a hint, a tempo within :data:`SNAP_TOLERANCE` of the hinted one is taken as exactly
   the hinted one: the render was asked to hold that many beats, and its length is known to the sample.
5. **Confidence.** ``tempo_confidence`` is how far the winning reading leads the best reading of
   another tempo (``2 * share - 1``, its share of the two scores: 0 for a tie, 1 for no rival), times
   the pulse's strength up to :data:`PULSE_CLEAR`; ``downbeat_confidence`` is how strong the attack at
   the downbeat is against the loop's strong attacks. Below :data:`LOW_CONFIDENCE` either is low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from ..audio import as_audio_array
from ..errors import RequestError
from ..request import BEATS_PER_BAR_RANGE, SAMPLE_RATE_RANGE
from . import onsets

#: the tempo range searched without a hint (BPM)
SEARCH_RANGE_BPM = (30.0, 300.0)
#: of two periods that explain the pulse equally well, prefer the shorter: scores scale as period**-bias
PERIOD_BIAS = 0.1
#: the prior without a hint: centre (BPM) and width (octaves)
PRIOR_CENTER_BPM = 120.0
PRIOR_WIDTH_OCTAVES = 0.5
#: the width of the prior around a hinted tempo (octaves)
HINT_PRIOR_WIDTH_OCTAVES = 0.25
#: a fitted tempo this close to the hinted one (relative) is taken as the hinted one
SNAP_TOLERANCE = 0.0075
#: only the first minute is analysed; a loop's tempo is taken as steady
ANALYSIS_MAX_S = 60.0
#: below this much audio there is too little to measure a pulse
ANALYSIS_MIN_S = 0.5
#: largest beats_hint accepted
BEATS_HINT_MAX = 4096.0
#: how far (relative) the audio may be from whole bars at a tempo and still count as whole bars: a
#: library loop is trimmed to a few milliseconds, a few milliseconds of a 2 s bar is a few tenths of
#: a percent
WHOLE_BARS_TOLERANCE = 0.01
#: what a tempo at which the audio holds no whole number of bars keeps of its score: a user's file
#: need not be trimmed to bars, and then the pulse and the prior decide alone
WHOLE_BARS_FLOOR = 0.35
#: the most bars (a power of two) a loop is read as holding
WHOLE_BARS_MAX = 64
#: the readings of a pulse tried besides itself: double, half, and the dotted confusions
READING_RATIOS = (2.0, 0.5, 1.5, 2.0 / 3.0)
#: a reading's pulse is the comb's best within this (relative) of its period: the comb is sharp, and a
#: tempo read from the length is off by as much as the trimming
PULSE_TOLERANCE = 0.015
#: the comb's weight in a reading's score (its power): whole bars and the prior settle between
#: readings the onsets support alike, never for a tempo the onsets do not support
PULSE_WEIGHT = 1.5
#: how many of the comb's best periods are read (each with READING_RATIOS)
PULSE_CANDIDATES = 4
#: two candidates closer than this (relative) are the same reading
SAME_TEMPO = 0.03
#: silence, relative to the file's peak (dB): what is below it before the first attack is a lead-in
LEAD_IN_SILENCE_DB = -40.0
#: a lead-in of silence shorter than this counts as none: the file starts on its first attack
LEAD_IN_MIN_S = 0.001
#: silence before the first attack longer than this share of a beat is a rest on the downbeat, not a
#: lead-in (a sixteenth note is a quarter of a beat)
LEAD_IN_MAX_BEATS = 0.2
#: an opening attack with less low-frequency attack than this share of the loop's strong ones, in a
#: loop that has strong ones, is a pickup: the downbeat is the first beat with a strong one
PICKUP_LOW_RATIO = 0.35
#: the band whose attacks are kicks (Hz): below a snare's body, whose noise reaches down to 200 Hz
DOWNBEAT_LOW_HZ = 120.0
#: a beat's low-frequency attack at least this share of the loop's strong ones counts as a kick
KICK_RATIO = 0.5
#: how far after the downbeat its attack is looked for (s)
OPENING_WINDOW_S = 0.03
#: a pulse this strong (the autocorrelation at the beat) is a clear one: drum loops measure 0.2–0.7,
#: drones and noise under 0.1
PULSE_CLEAR = 0.2
#: either confidence below this is reported as low (``low_confidence``): see :func:`is_low_confidence`
LOW_CONFIDENCE = 0.3


@dataclass(frozen=True)
class TempoEstimate:
    """What :func:`estimate_tempo` found.

    ``bpm``: beats per minute. ``downbeat_s``: time of the first downbeat in seconds from the start
    (≥ 0). ``confidence``: the pulse's strength, 0 (no pulse found; ``bpm`` is a fallback) to 1 (a
    perfectly periodic onset pattern). ``beats``: beats held from the downbeat to the end.
    ``snapped``: the tempo was set exactly to the one implied by ``beats_hint``. ``hinted_bpm``: that
    tempo (``None`` without a hint). ``tempo_confidence``: how sure the tempo is, octave and dotted
    readings included (0–1: the pulse's strength times the winning reading's share against the best
    other tempo's). ``downbeat_confidence``: how sure the downbeat is (0–1; 1 when it was given).
    ``downbeat_rule``: how it was found: ``"given"``, ``"start"`` (the file's first sample),
    ``"lead-in"`` (the first attack after silence) or ``"pickup"`` (the first kick after a pickup).
    ``whole_bars``: the tempo was set to the one at which the audio from its downbeat (after a
    lead-in, or from its first sample, whichever the fit is nearer) holds exactly a whole number of
    bars, the fit agreeing within :data:`WHOLE_BARS_TOLERANCE`.
    """

    bpm: float
    downbeat_s: float
    confidence: float
    beats: float = 0.0
    snapped: bool = False
    hinted_bpm: float | None = None
    tempo_confidence: float = 0.0
    downbeat_confidence: float = 0.0
    downbeat_rule: str = "start"
    whole_bars: bool = False

    @property
    def low_confidence(self) -> bool:
        """Either confidence is below :data:`LOW_CONFIDENCE`."""
        return is_low_confidence(self.tempo_confidence, self.downbeat_confidence)


def is_low_confidence(tempo_confidence: float, downbeat_confidence: float) -> bool:
    """Whether a conform should warn that its tempo or downbeat may be wrong.

    :data:`LOW_CONFIDENCE` is 0.3. A tempo confidence of 0.3 means the winning reading scored less than
    twice its best rival (a share under 0.65), or the pulse is weak (a drone, noise): the other reading,
    most often the tempo's double or half, is then about as likely, and a person should listen. On the
    real loops of ``tests/data/real_loops.json`` the readings that are right score 0.3–0.75 without a
    prior, the loop that is as much 90 as 180 BPM (a tabla groove in sixteenths) under 0.1. A downbeat
    confidence under 0.3 means the attack at the downbeat is under a third of the loop's strong attacks:
    the loop opens on something soft, and its downbeat may be elsewhere.
    """
    return min(tempo_confidence, downbeat_confidence) < LOW_CONFIDENCE


def _validate(
    audio: object, sample_rate: object, beats_hint: object, beats_per_bar: object, downbeat_s: object
) -> np.ndarray:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise RequestError(
            "sample_rate", sample_rate, f"a whole number of Hz from {SAMPLE_RATE_RANGE[0]} to {SAMPLE_RATE_RANGE[1]}"
        )
    if not SAMPLE_RATE_RANGE[0] <= sample_rate <= SAMPLE_RATE_RANGE[1]:
        raise RequestError("sample_rate", sample_rate, f"{SAMPLE_RATE_RANGE[0]}–{SAMPLE_RATE_RANGE[1]} Hz")
    if beats_hint is not None:
        if (
            isinstance(beats_hint, bool)
            or not isinstance(beats_hint, int | float | np.number)
            or not math.isfinite(float(beats_hint))
            or not 0 < float(beats_hint) <= BEATS_HINT_MAX
        ):
            raise RequestError("beats_hint", beats_hint, f"a number of beats above 0 and up to {BEATS_HINT_MAX:g}")
    if isinstance(beats_per_bar, bool) or not isinstance(beats_per_bar, int | np.integer):
        raise RequestError("beats_per_bar", beats_per_bar, "a whole number of beats")
    if not BEATS_PER_BAR_RANGE[0] <= beats_per_bar <= BEATS_PER_BAR_RANGE[1]:
        raise RequestError("beats_per_bar", beats_per_bar, f"{BEATS_PER_BAR_RANGE[0]}–{BEATS_PER_BAR_RANGE[1]}")
    data = as_audio_array(audio)
    if downbeat_s is not None:
        duration_s = data.shape[1] / sample_rate
        if (
            isinstance(downbeat_s, bool)
            or not isinstance(downbeat_s, int | float | np.number)
            or not math.isfinite(float(downbeat_s))
            or not 0.0 <= float(downbeat_s) < duration_s
        ):
            raise RequestError("downbeat_s", downbeat_s, f"from 0 s to under the audio's length, {duration_s:g} s")
    return data


def _autocorrelation(curve: np.ndarray) -> np.ndarray:
    """Unbiased autocorrelation normalised to 1 at lag 0 (lags up to three quarters of the length: a
    two-beat loop's beat is half its length)."""
    centered = curve - curve.mean()
    n = len(centered)
    spectrum = np.fft.rfft(centered, 2 * n)
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[:n]
    if acf[0] <= 0:
        return np.zeros(n)
    half = max(2, (3 * n) // 4)
    acf = acf[:half] * n / (n - np.arange(half))
    return acf / acf[0]


def _log_gaussian(bpm: np.ndarray, center_bpm: float, width_octaves: float) -> np.ndarray:
    return np.exp(-0.5 * (np.log2(bpm / center_bpm) / width_octaves) ** 2)


def _comb_means(acf: np.ndarray, periods: np.ndarray, multiples: int = 8) -> np.ndarray:
    """Mean autocorrelation over each period's first ``multiples`` multiples (those that fit)."""
    grid = periods[:, None] * np.arange(1, multiples + 1)[None, :]
    inside = grid <= len(acf) - 1
    values = onsets.interpolate(acf, grid.ravel()).reshape(grid.shape) * inside
    counts = inside.sum(axis=1)
    means = np.where(counts > 0, values.sum(axis=1) / np.maximum(counts, 1), 0.0)
    return np.maximum(means, 0.0)


def _fit_grid(curve: np.ndarray, period: float, span: int) -> tuple[float, float, int] | None:
    """Fit ``onset_k = phase + k * period`` to the curve's peaks near each beat (frames).

    Returns ``(phase, period, beats_used)`` or ``None`` when too few beats carry an onset.
    """
    n_beats = int(span / period) + 1
    if n_beats < 2:
        return None
    # coarse phase: the grid offset that collects the most onset strength, on a curve smoothed
    # enough (4% of a beat) to tolerate the small period error that accumulates over many beats
    coarse = onsets.smooth(curve, 0.04 * period)
    phases = np.arange(0.0, period, 1.0)
    beats = np.arange(n_beats) * period
    grid = phases[:, None] + beats[None, :]
    phase = float(phases[int(np.argmax(onsets.interpolate(coarse, grid.ravel()).reshape(grid.shape).sum(axis=1)))])
    radius = 0.12 * period
    used = 0
    for _ in range(3):
        ks, times, weights = [], [], []
        for k in range(n_beats):
            center = phase + k * period
            if center - radius < 0 or center + radius >= len(curve):
                continue
            position, height = onsets.peak_near(curve, center, radius)
            ks.append(k)
            times.append(position)
            weights.append(height)
        if len(ks) < 2:
            return None
        k_arr, t_arr, w_arr = np.array(ks, float), np.array(times), np.array(weights)
        strong = w_arr >= 0.25 * w_arr.max() if w_arr.max() > 0 else np.zeros(len(w_arr), bool)
        if strong.sum() < 3 or np.ptp(k_arr[strong]) < 2:
            return None
        k_arr, t_arr, w_arr = k_arr[strong], t_arr[strong], w_arr[strong]
        for _ in range(2):  # fit, drop beats far off the line (a flam, a pushed note), fit again
            design = np.stack([np.ones_like(k_arr), k_arr], axis=1) * np.sqrt(w_arr)[:, None]
            (new_phase, new_period), *_ = np.linalg.lstsq(design, t_arr * np.sqrt(w_arr), rcond=None)
            residual = np.abs(t_arr - new_phase - new_period * k_arr)
            keep = residual <= 0.04 * period
            if keep.all() or keep.sum() < 3:
                break
            k_arr, t_arr, w_arr = k_arr[keep], t_arr[keep], w_arr[keep]
        if not 0.97 * period <= new_period <= 1.03 * period:
            return None
        phase, period, used = float(new_phase), float(new_period), len(k_arr)
    return phase, period, used




@dataclass(frozen=True)
class _Curves:
    """The onset curves of the analysed audio and what the downbeat rules read from them."""

    flux: np.ndarray
    low_flux: np.ndarray
    flux_rate: float
    energy: np.ndarray
    energy_rate: float
    first_sound_s: float
    strong_low: float
    strong_energy: float


def _strong_level(curve: np.ndarray, rate: float) -> float:
    """The level of a curve's strong peaks: the median of the top quarter of its local maxima at
    least 50 ms apart (0 for a flat curve)."""
    peaks, props = find_peaks(curve, height=1e-12, distance=max(1, int(round(0.05 * rate))))
    if not len(peaks):
        return 0.0
    heights = np.sort(props["peak_heights"])[::-1]
    return float(np.median(heights[: max(1, len(heights) // 4)]))


def _first_sound_s(data: np.ndarray, sample_rate: int) -> float:
    """Where the audio first rises above :data:`LEAD_IN_SILENCE_DB` of its peak (s)."""
    level = np.abs(data[0])  # the loudest channel's magnitude per frame
    for channel in data[1:]:
        np.maximum(level, np.abs(channel), out=level)
    peak = float(level.max()) if level.size else 0.0
    if peak <= 0.0:
        return 0.0
    above = level > peak * 10 ** (LEAD_IN_SILENCE_DB / 20.0)
    first = int(np.argmax(above))
    return float(first) / sample_rate if above[first] else 0.0


def _curves(analysed: np.ndarray, sample_rate: int, transients: bool = True) -> _Curves:
    """The onset curves; without ``transients`` the 1 ms transient curve is left empty (it is the
    costlier one, and a known tempo's downbeat needs it only after a pickup)."""
    flux, low_flux, flux_hop = onsets.spectral_flux(analysed, sample_rate, DOWNBEAT_LOW_HZ)
    if transients:
        energy, energy_hop = onsets.transient_flux(analysed, sample_rate, split=True)
    else:
        energy, energy_hop = np.zeros(0), max(1, int(round(sample_rate / onsets.TRANSIENT_FRAME_RATE_HZ)))
    flux_rate, energy_rate = sample_rate / flux_hop, sample_rate / energy_hop
    return _Curves(
        flux=flux,
        low_flux=low_flux,
        flux_rate=flux_rate,
        energy=energy,
        energy_rate=energy_rate,
        first_sound_s=_first_sound_s(analysed, sample_rate),
        strong_low=_strong_level(low_flux, flux_rate),
        strong_energy=_strong_level(energy, energy_rate),
    )


def _peak_after(curve: np.ndarray, rate: float, start_s: float, window_s: float = OPENING_WINDOW_S) -> float:
    """The largest value of ``curve`` from a frame before ``start_s`` to ``window_s`` after it."""
    lo = max(0, int(math.floor(start_s * rate)) - 1)
    hi = min(len(curve), int(math.ceil((start_s + window_s) * rate)) + 1)
    return float(curve[lo:hi].max()) if hi > lo else 0.0


def _attack_strength(curves: _Curves, time_s: float) -> float:
    """How strong the attack at ``time_s`` is against the loop's strong attacks (0–1), in the band
    where it is strongest (a kick's attack is mostly low, a hat's all high)."""
    ratios = []
    if curves.strong_energy > 0:
        ratios.append(_peak_after(curves.energy, curves.energy_rate, time_s) / curves.strong_energy)
    if curves.strong_low > 0:
        ratios.append(_peak_after(curves.low_flux, curves.flux_rate, time_s) / curves.strong_low)
    return float(np.clip(max(ratios, default=0.0), 0.0, 1.0))


def _whole_bars_fit(beats: float, counts: np.ndarray) -> float:
    """How close ``beats`` is to one of ``counts`` (1 on it, :data:`WHOLE_BARS_FLOOR` far from all)."""
    if beats <= 0:
        return WHOLE_BARS_FLOOR
    distance = np.min(np.abs(np.log(beats / counts)))
    return WHOLE_BARS_FLOOR + (1.0 - WHOLE_BARS_FLOOR) * math.exp(-0.5 * (distance / WHOLE_BARS_TOLERANCE) ** 2)


def _beat_counts(beats_per_bar: int, beats_hint: float | None) -> np.ndarray:
    """Beats a loop may hold: one or two beats, 1, 2, 4... bars, and the hinted count."""
    counts = {1.0, 2.0, *(float(beats_per_bar * 2**k) for k in range(int(math.log2(WHOLE_BARS_MAX)) + 1))}
    if beats_hint is not None:
        counts.add(float(beats_hint))
    return np.array(sorted(counts))


def _downbeat(
    curves: _Curves,
    duration_s: float,
    period_s: float,
    phase_s: float | None,
    beats_per_bar: int,
    counts: np.ndarray,
) -> tuple[float, float, str]:
    """``(downbeat_s, confidence, rule)`` for a loop at a beat of ``period_s``; ``phase_s`` is where
    the fitted beat grid has a beat (``None`` without a fit)."""
    first = curves.first_sound_s
    start = 0.0
    rule = "start"
    if first > LEAD_IN_MIN_S:
        # silence, then the first attack: a lead-in, unless the audio from its first sample holds
        # whole bars and from the attack does not (then it is a rest on the downbeat)
        from_zero = _whole_bars_fit(duration_s / period_s, counts)
        from_attack = _whole_bars_fit((duration_s - first) / period_s, counts)
        is_rest = first > LEAD_IN_MAX_BEATS * period_s and from_zero > 0.5 and from_attack <= 0.5
        if not is_rest:
            start, rule = first, "lead-in"
    opening_low = _peak_after(curves.low_flux, curves.flux_rate, start)
    if beats_per_bar >= 2 and curves.strong_low > 0 and opening_low < PICKUP_LOW_RATIO * curves.strong_low:
        # the loop opens on something without a kick, and has kicks: a pickup before the first kick
        grid_phase = start if phase_s is None else phase_s
        first_beat = grid_phase + math.ceil((start - grid_phase - 0.005) / period_s) * period_s
        for k in range(1, beats_per_bar):
            beat_s = first_beat + k * period_s
            if beat_s >= duration_s:
                break
            low = _peak_after(curves.low_flux, curves.flux_rate, beat_s - 0.01, 0.02)
            if low >= KICK_RATIO * curves.strong_low:
                confidence = float(np.clip(1.0 - opening_low / low, 0.0, 1.0) * min(1.0, low / curves.strong_low))
                return beat_s, confidence, "pickup"
    return start, _attack_strength(curves, start), rule


def _period_fit(curves: _Curves, period_s: float) -> tuple[float, float | None]:
    """The beat period (s) fitted near ``period_s`` and the fitted grid's phase (s; ``None`` when
    no grid could be fitted)."""
    fit = _fit_grid(curves.energy, period_s * curves.energy_rate, len(curves.energy))
    if fit is not None:
        return fit[1] / curves.energy_rate, fit[0] / curves.energy_rate
    flux_fit = _fit_grid(curves.flux, period_s * curves.flux_rate, len(curves.flux))
    if flux_fit is not None:
        return flux_fit[1] / curves.flux_rate, flux_fit[0] / curves.flux_rate
    return period_s, None


def find_downbeat(
    audio: np.ndarray, sample_rate: int, tempo_bpm: float, *, beats_per_bar: int = 4
) -> tuple[float, float, str]:
    """The downbeat of a loop whose tempo is known: ``(downbeat_s, confidence, rule)``, by the rules
    of :func:`estimate_tempo` (the file's first sample unless a lead-in or a pickup precedes it).

    Raises :class:`RequestError` for bad audio, sample rate or ``beats_per_bar``, and a tempo that is
    not a positive number of BPM.
    """
    data = _validate(audio, sample_rate, None, beats_per_bar, None)
    if (
        isinstance(tempo_bpm, bool)
        or not isinstance(tempo_bpm, int | float | np.number)
        or not math.isfinite(float(tempo_bpm))
        or not 0 < float(tempo_bpm) <= 999.0
    ):
        raise RequestError("tempo_bpm", tempo_bpm, "a tempo above 0 and up to 999 BPM")
    duration_s = data.shape[1] / sample_rate
    analysed = data[:, : int(ANALYSIS_MAX_S * sample_rate)]
    curves = _curves(analysed, sample_rate, transients=False)
    if not np.any(curves.flux > 0):
        return 0.0, 0.0, "start"
    period_s = 60.0 / float(tempo_bpm)
    counts = _beat_counts(beats_per_bar, None)
    found = _downbeat(curves, duration_s, period_s, None, beats_per_bar, counts)
    opening_low = _peak_after(curves.low_flux, curves.flux_rate, found[0] if found[2] == "lead-in" else 0.0)
    if found[2] != "pickup" and not opening_low < PICKUP_LOW_RATIO * curves.strong_low:
        return found
    # maybe a pickup: its kick is looked for on the beat grid the transients give
    curves = _curves(analysed, sample_rate)
    fitted = _fit_grid(curves.energy, period_s * curves.energy_rate, len(curves.energy))
    phase_s = None if fitted is None else fitted[0] / curves.energy_rate
    return _downbeat(curves, duration_s, period_s, phase_s, beats_per_bar, counts)


def estimate_tempo(
    audio: np.ndarray,
    sample_rate: int,
    beats_hint: float | None = None,
    *,
    beats_per_bar: int = 4,
    downbeat_s: float | None = None,
) -> TempoEstimate:
    """Estimate the tempo and the first downbeat of ``audio`` (float32 ``[channels, samples]``).

    ``beats_hint``: how many beats the audio was made to hold (a render asked for 4 bars of 4/4
    holds 16); it settles double/half and dotted readings and, when the pulse agrees within
    :data:`SNAP_TOLERANCE`, fixes the tempo exactly. ``beats_per_bar`` sets the whole bars a loop is
    read as holding and the downbeat rules. ``downbeat_s``: the downbeat when it is known (the tempo is
    still estimated, whole bars counted from it).

    Raises :class:`RequestError` for audio that is empty, not finite or of the wrong shape, a sample
    rate outside 8–192 kHz, a hint that is not a positive number of beats or a downbeat outside the
    audio. Audio without a pulse (silence, a drone) gives ``confidence`` 0 and the hinted tempo, or
    120 BPM.
    """
    data = _validate(audio, sample_rate, beats_hint, beats_per_bar, downbeat_s)
    duration_s = data.shape[1] / sample_rate
    hinted_bpm = None if beats_hint is None else 60.0 * float(beats_hint) / duration_s
    given = None if downbeat_s is None else float(downbeat_s)
    fallback = TempoEstimate(
        bpm=float(np.clip(hinted_bpm if hinted_bpm is not None else PRIOR_CENTER_BPM, 20.0, 999.0)),
        downbeat_s=given if given is not None else 0.0,
        confidence=0.0,
        beats=float(beats_hint) if beats_hint is not None else duration_s * PRIOR_CENTER_BPM / 60.0,
        snapped=False,
        hinted_bpm=hinted_bpm,
        tempo_confidence=0.0,
        downbeat_confidence=1.0 if given is not None else 0.0,
        downbeat_rule="given" if given is not None else "start",
    )
    if duration_s < ANALYSIS_MIN_S:
        return fallback
    analysed = data[:, : int(ANALYSIS_MAX_S * sample_rate)]
    curves = _curves(analysed, sample_rate)
    flux, flux_rate = curves.flux, curves.flux_rate
    if not np.any(flux > 0):
        return fallback
    acf = _autocorrelation(flux)

    low_bpm, high_bpm = SEARCH_RANGE_BPM
    if hinted_bpm is not None:
        low_bpm, high_bpm = min(low_bpm, hinted_bpm / 1.5), max(high_bpm, hinted_bpm * 1.5)
    low_bpm, high_bpm = max(low_bpm, 20.0), min(high_bpm, 999.0)
    min_period = max(2.0, 60.0 * flux_rate / high_bpm)
    max_period = min(len(acf) - 1.0, 60.0 * flux_rate / low_bpm)
    if max_period <= min_period:
        return fallback
    # candidate periods spaced 0.25 % apart (a log grid keeps the relative resolution even)
    periods = np.exp(np.arange(np.log(min_period), np.log(max_period), 0.0025))
    comb = _comb_means(acf, periods) * periods**-PERIOD_BIAS
    if not np.any(comb > 0):
        return fallback
    comb = comb / comb.max()

    def prior(bpm: float) -> float:
        if hinted_bpm is not None:
            return float(_log_gaussian(np.array(bpm), hinted_bpm, HINT_PRIOR_WIDTH_OCTAVES))
        return float(_log_gaussian(np.array(bpm), PRIOR_CENTER_BPM, PRIOR_WIDTH_OCTAVES))

    # the lengths whole bars are counted in: from the given downbeat, else from the first sample and
    # from the first attack (a lead-in's length is not known before the tempo is)
    counts = _beat_counts(beats_per_bar, beats_hint)
    if given is not None:
        lengths = [duration_s - given]
    else:
        lengths = [duration_s, duration_s - curves.first_sound_s]

    def score(bpm: float) -> float:
        period = 60.0 * flux_rate / bpm
        if not min_period <= period <= max_period:
            return 0.0
        near = (periods >= period / (1.0 + PULSE_TOLERANCE)) & (periods <= period * (1.0 + PULSE_TOLERANCE))
        pulse = float(comb[near].max()) if near.any() else float(np.interp(period, periods, comb))
        bars = max(_whole_bars_fit(length * bpm / 60.0, counts) for length in lengths)
        return pulse**PULSE_WEIGHT * bars * prior(bpm)

    # the readings: the comb's best peaks (under the prior), each read double, half and dotted, and
    # the tempi of whole bars
    ranked = comb * _log_gaussian(60.0 * flux_rate / periods, PRIOR_CENTER_BPM if hinted_bpm is None else hinted_bpm,
                                  PRIOR_WIDTH_OCTAVES if hinted_bpm is None else HINT_PRIOR_WIDTH_OCTAVES)
    inner = ranked[1:-1]
    peaks = np.flatnonzero((inner >= ranked[:-2]) & (inner >= ranked[2:])) + 1
    peaks = peaks[np.argsort(ranked[peaks])[::-1][:PULSE_CANDIDATES]]
    candidates: list[float] = []
    for index in peaks:
        bpm = float(60.0 * flux_rate / periods[index])
        candidates.extend([bpm, *(bpm * ratio for ratio in READING_RATIOS)])
    for length in lengths:
        candidates.extend(60.0 * float(count) / length for count in counts if length > 0)
    if hinted_bpm is not None:
        candidates.append(hinted_bpm)
    scored = sorted(((score(bpm), bpm) for bpm in candidates), reverse=True)
    best_score, best_bpm = scored[0]
    rival = max((s for s, bpm in scored if abs(math.log(bpm / best_bpm)) > math.log1p(SAME_TEMPO)), default=0.0)
    share = best_score / (best_score + rival)

    period_frames = 60.0 * flux_rate / best_bpm
    # the autocorrelation's own peak near the chosen period is sharper than the comb score
    lag, _ = onsets.peak_near(acf, period_frames, max(1.0, 0.03 * period_frames))
    if 0.97 * period_frames <= lag <= 1.03 * period_frames:
        period_frames = lag
    confidence = float(np.clip(onsets.interpolate(acf, np.array([period_frames]))[0], 0.0, 1.0))
    period_s, phase_s = _period_fit(curves, period_frames / flux_rate)

    bpm = 60.0 / period_s
    snapped = False
    if hinted_bpm is not None and abs(bpm / hinted_bpm - 1.0) <= SNAP_TOLERANCE:
        bpm, period_s, snapped = hinted_bpm, 60.0 / hinted_bpm, True
    if given is not None:
        downbeat, downbeat_confidence, rule = given, 1.0, "given"
    else:
        downbeat, downbeat_confidence, rule = _downbeat(curves, duration_s, period_s, phase_s, beats_per_bar, counts)
    whole_bars = False
    if not snapped and rule != "pickup":
        # a loop that starts on its downbeat and holds whole bars within the tolerance holds them
        # exactly: its length is known to the sample, a fit over a few swung beats is not. After a
        # lead-in, the file's end may be trimmed as its start was, or not: of the lengths from the
        # downbeat and from the first sample, the one whose whole bars come nearest the fit
        spans = [duration_s - downbeat] if rule != "lead-in" else [duration_s - downbeat, duration_s]
        best: tuple[float, float] | None = None
        for span in spans:
            held = span / period_s
            count = float(counts[np.argmin(np.abs(np.log(held / counts)))])
            distance = abs(math.log(held / count))
            if distance <= WHOLE_BARS_TOLERANCE and (best is None or distance < best[0]):
                best = (distance, span / count)
        if best is not None:
            period_s, whole_bars = best[1], True
            bpm = 60.0 / period_s
    return TempoEstimate(
        bpm=float(np.clip(bpm, 20.0, 999.0)),
        downbeat_s=float(downbeat),
        confidence=confidence,
        beats=float((duration_s - downbeat) / period_s),
        snapped=snapped,
        hinted_bpm=hinted_bpm,
        tempo_confidence=float(min(1.0, confidence / PULSE_CLEAR) * (2.0 * share - 1.0)),
        whole_bars=whole_bars,
        downbeat_confidence=float(downbeat_confidence),
        downbeat_rule=rule,
    )
