"""Tempo and downbeat estimation (numpy/scipy only).

1. Spectral flux (:func:`~.onsets.spectral_flux`) and its unbiased autocorrelation.
2. Each candidate period is scored by the mean autocorrelation at its multiples (a comb), times
   ``sqrt(1/period)`` (of two periods that explain the pulse equally well, the shorter one explains
   more onsets), times a tempo prior: log-normal around 120 BPM, an octave wide, or, with a
   ``beats_hint``, around the tempo at which the audio holds exactly that many beats, a quarter
   octave wide (this is what settles double against half tempo).
3. The beat grid is fitted to the transient onsets (:func:`~.onsets.transient_flux`, 1 ms frames) by
   weighted least squares over every beat, which pins the period to a few hundredths of a percent
   and the phase to a fraction of a millisecond.
4. With a hint, a tempo within :data:`SNAP_TOLERANCE` of the hinted one is taken as exactly the
   hinted one: the render was asked to hold that many beats, and its length is known to the sample.
5. The downbeat is the first beat unless another beat of the bar has clearly more low-frequency
   attack (kick drums), a render usually starting on its downbeat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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
PRIOR_WIDTH_OCTAVES = 1.0
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
#: a beat of the bar must have this much more low-frequency attack than the first to be the downbeat
DOWNBEAT_ACCENT_RATIO = 1.5


@dataclass(frozen=True)
class TempoEstimate:
    """What :func:`estimate_tempo` found.

    ``bpm``: beats per minute. ``downbeat_s``: time of the first downbeat in seconds from the start
    (≥ 0). ``confidence``: 0 (no pulse found; ``bpm`` is a fallback) to 1 (a perfectly periodic
    onset pattern). ``beats``: beats held from the downbeat to the end. ``snapped``: the tempo was
    set exactly to the one implied by ``beats_hint``. ``hinted_bpm``: that tempo (``None`` without
    a hint).
    """

    bpm: float
    downbeat_s: float
    confidence: float
    beats: float = 0.0
    snapped: bool = False
    hinted_bpm: float | None = None


def _validate(audio: object, sample_rate: object, beats_hint: object, beats_per_bar: object) -> np.ndarray:
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
    return as_audio_array(audio)


def _autocorrelation(curve: np.ndarray) -> np.ndarray:
    """Unbiased autocorrelation normalised to 1 at lag 0 (lags up to half the length)."""
    centered = curve - curve.mean()
    n = len(centered)
    spectrum = np.fft.rfft(centered, 2 * n)
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[:n]
    if acf[0] <= 0:
        return np.zeros(n)
    half = max(2, n // 2)
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


def _pick_downbeat(
    low_flux: np.ndarray, frames_per_s: float, first_beat_s: float, period_s: float, beats_per_bar: int
) -> float:
    if beats_per_bar < 2:
        return first_beat_s
    duration_s = len(low_flux) / frames_per_s
    accents = np.zeros(beats_per_bar)
    counts = np.zeros(beats_per_bar)
    k = 0
    while first_beat_s + k * period_s < duration_s:
        center = (first_beat_s + k * period_s) * frames_per_s
        _, height = onsets.peak_near(low_flux, center, 0.02 * frames_per_s)
        accents[k % beats_per_bar] += height
        counts[k % beats_per_bar] += 1
        k += 1
    # a floor of a tenth of the strongest accent keeps noise-level differences (no kick at all)
    # from moving the downbeat
    mean_accent = accents / np.maximum(counts, 1)
    mean_accent = mean_accent + 0.1 * mean_accent.max() + 1e-12
    # of beats accented about equally (kicks on 1 and 3), the earliest: renders start near a bar
    best = int(np.flatnonzero(mean_accent >= 0.9 * mean_accent.max())[0])
    if best != 0 and mean_accent[best] > DOWNBEAT_ACCENT_RATIO * mean_accent[0]:
        return first_beat_s + best * period_s
    return first_beat_s


def estimate_tempo(
    audio: np.ndarray, sample_rate: int, beats_hint: float | None = None, *, beats_per_bar: int = 4
) -> TempoEstimate:
    """Estimate the tempo and the first downbeat of ``audio`` (float32 ``[channels, samples]``).

    ``beats_hint``: how many beats the audio was made to hold (a render asked for 4 bars of 4/4
    holds 16); it settles double/half tempo and, when the pulse agrees within
    :data:`SNAP_TOLERANCE`, fixes the tempo exactly. ``beats_per_bar`` is used to find the downbeat.

    Raises :class:`RequestError` for audio that is empty, not finite or of the wrong shape, a sample
    rate outside 8–192 kHz or a hint that is not a positive number of beats. Audio without a pulse
    (silence, a drone) gives ``confidence`` 0 and the hinted tempo, or 120 BPM.
    """
    data = _validate(audio, sample_rate, beats_hint, beats_per_bar)
    duration_s = data.shape[1] / sample_rate
    hinted_bpm = None if beats_hint is None else 60.0 * float(beats_hint) / duration_s
    fallback = TempoEstimate(
        bpm=float(np.clip(hinted_bpm if hinted_bpm is not None else PRIOR_CENTER_BPM, 20.0, 999.0)),
        downbeat_s=0.0,
        confidence=0.0,
        beats=float(beats_hint) if beats_hint is not None else duration_s * PRIOR_CENTER_BPM / 60.0,
        snapped=False,
        hinted_bpm=hinted_bpm,
    )
    if duration_s < ANALYSIS_MIN_S:
        return fallback
    analysed = data[:, : int(ANALYSIS_MAX_S * sample_rate)]
    flux, low_flux, flux_hop = onsets.spectral_flux(analysed, sample_rate)
    if not np.any(flux > 0):
        return fallback
    flux_rate = sample_rate / flux_hop
    acf = _autocorrelation(flux)

    low_bpm, high_bpm = SEARCH_RANGE_BPM
    if hinted_bpm is not None:
        low_bpm, high_bpm = min(low_bpm, hinted_bpm / 1.5), max(high_bpm, hinted_bpm * 1.5)
    min_period = max(2.0, 60.0 * flux_rate / min(high_bpm, 999.0))
    max_period = min(len(acf) - 1.0, 60.0 * flux_rate / max(low_bpm, 20.0))
    if max_period <= min_period:
        return fallback
    # candidate periods spaced 0.25 % apart (a log grid keeps the relative resolution even)
    periods = np.exp(np.arange(np.log(min_period), np.log(max_period), 0.0025))
    bpms = 60.0 * flux_rate / periods
    scores = _comb_means(acf, periods) * periods**-PERIOD_BIAS
    if hinted_bpm is not None:
        scores = scores * _log_gaussian(bpms, hinted_bpm, HINT_PRIOR_WIDTH_OCTAVES)
    else:
        scores = scores * _log_gaussian(bpms, PRIOR_CENTER_BPM, PRIOR_WIDTH_OCTAVES)
    if not np.any(scores > 0):
        return fallback
    best = int(np.argmax(scores))
    period_frames = float(periods[best])
    # the autocorrelation's own peak near the chosen period is sharper than the comb score
    lag, _ = onsets.peak_near(acf, period_frames, max(1.0, 0.03 * period_frames))
    if 0.97 * period_frames <= lag <= 1.03 * period_frames:
        period_frames = lag
    confidence = float(np.clip(onsets.interpolate(acf, np.array([period_frames]))[0], 0.0, 1.0))
    period_s = period_frames / flux_rate

    energy, energy_hop = onsets.transient_flux(analysed, sample_rate)
    energy_rate = sample_rate / energy_hop
    fit = _fit_grid(energy, period_s * energy_rate, len(energy))
    if fit is not None:
        phase_frames, fitted_period, _ = fit
        period_s = fitted_period / energy_rate
        phase_s = phase_frames / energy_rate
    else:
        flux_fit = _fit_grid(flux, period_frames, len(flux))
        phase_s = flux_fit[0] / flux_rate if flux_fit is not None else 0.0
        if flux_fit is not None:
            period_s = flux_fit[1] / flux_rate

    bpm = 60.0 / period_s
    snapped = False
    if hinted_bpm is not None and abs(bpm / hinted_bpm - 1.0) <= SNAP_TOLERANCE:
        bpm, period_s, snapped = hinted_bpm, 60.0 / hinted_bpm, True
    # the first beat at or after the start (a beat a hair before 0 is the one at 0)
    first_beat_s = phase_s - math.floor((phase_s + 0.005) / period_s) * period_s
    first_beat_s = max(0.0, first_beat_s)
    downbeat_s = _pick_downbeat(low_flux, flux_rate, first_beat_s, period_s, beats_per_bar)
    return TempoEstimate(
        bpm=float(np.clip(bpm, 20.0, 999.0)),
        downbeat_s=float(downbeat_s),
        confidence=confidence,
        beats=float((duration_s - downbeat_s) / period_s),
        snapped=snapped,
        hinted_bpm=hinted_bpm,
    )
