"""Resampling, time-stretch and pitch shift through pedalboard, and where the stretched beats land.

Rubber Band (``pedalboard.time_stretch``) keeps the total length but not every beat in place: its
faster engine (R2) maps input time ``t`` to about ``t / factor + D * (1 - 1 / factor)``, a constant
offset of up to tens of milliseconds (``D`` grows with its FFT size), with a few milliseconds of
content-dependent wobble; its finer engine (R3) drifts by about a millisecond per beat in offline
mode. :func:`measure_offset` finds the offset of a stretched signal by cross-correlating its onsets
with the onsets of the input mapped through the ideal time map, so a loop can be cut where its
downbeat really is.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pedalboard
from pedalboard.io import StreamResampler

from ..errors import RequestError
from . import onsets

TRANSIENT_MODES = ("crisp", "mixed", "smooth")
RESAMPLE_QUALITIES = tuple(name for name in pedalboard.Resample.Quality.__members__)
#: below this correlation between expected and stretched onsets, the content says too little about
#: timing and the offset is measured on a click probe stretched the same way instead
MIN_ALIGNMENT_STRENGTH = 0.3


@dataclass(frozen=True)
class StretchOptions:
    """How audio is stretched and resampled; passed with each call, never kept globally.

    ``high_quality``: Rubber Band's finer engine (R3) instead of the faster one (R2); R3 is several
    times slower and drifts off the grid by about a millisecond per beat (see ``bench/``).
    ``transient_mode``: ``"crisp"``, ``"mixed"`` or ``"smooth"`` (Rubber Band's handling of drum
    hits). ``resample_quality``: a ``pedalboard.Resample.Quality`` name. ``align``: measure where
    the stretched downbeat landed and cut there (otherwise trust the ideal time map).
    """

    high_quality: bool = False
    transient_mode: str = "crisp"
    resample_quality: str = "WindowedSinc32"
    align: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.high_quality, bool):
            raise RequestError("high_quality", self.high_quality, "true or false")
        if self.transient_mode not in TRANSIENT_MODES:
            raise RequestError("transient_mode", self.transient_mode, "one of: " + ", ".join(TRANSIENT_MODES))
        if self.resample_quality not in RESAMPLE_QUALITIES:
            raise RequestError("resample_quality", self.resample_quality, "one of: " + ", ".join(RESAMPLE_QUALITIES))
        if not isinstance(self.align, bool):
            raise RequestError("align", self.align, "true or false")


DEFAULT_STRETCH = StretchOptions()


def resample(audio: np.ndarray, source_rate: int, target_rate: int, quality: str = "WindowedSinc32") -> np.ndarray:
    """Resample float32 ``[channels, samples]`` audio with pedalboard's streaming resampler.

    The result holds exactly ``round(samples * target_rate / source_rate)`` samples, aligned with
    the input (the resampler's latency is already removed by pedalboard).
    """
    if source_rate == target_rate:
        return audio
    channels, frames = audio.shape
    resampler = StreamResampler(
        float(source_rate), float(target_rate), channels, getattr(pedalboard.Resample.Quality, quality)
    )
    head = resampler.process(np.ascontiguousarray(audio, dtype=np.float32))
    tail = resampler.process(None)
    out = np.concatenate([head, tail], axis=1) if tail.size else head
    expected = int(round(frames * target_rate / source_rate))
    if out.shape[1] < expected:
        out = np.pad(out, ((0, 0), (0, expected - out.shape[1])))
    return np.ascontiguousarray(out[:, :expected], dtype=np.float32)


def stretch(
    audio: np.ndarray,
    sample_rate: int,
    factor: float,
    semitones: float = 0.0,
    options: StretchOptions = DEFAULT_STRETCH,
) -> np.ndarray:
    """Rubber Band time-stretch (``factor`` > 1 shortens: the new tempo over the old) and pitch shift.

    Returns float32 ``[channels, about samples / factor]``.
    """
    out = pedalboard.time_stretch(
        np.ascontiguousarray(audio, dtype=np.float32),
        float(sample_rate),
        stretch_factor=float(factor),
        pitch_shift_in_semitones=float(semitones),
        high_quality=options.high_quality,
        transient_mode=options.transient_mode,
    )
    return np.ascontiguousarray(out, dtype=np.float32)


def pitch_shift(audio: np.ndarray, sample_rate: int, semitones: float, options: StretchOptions = DEFAULT_STRETCH) -> np.ndarray:
    """Shift pitch by ``semitones`` without changing the length (exactly as many samples)."""
    if semitones == 0:
        return audio
    out = stretch(audio, sample_rate, 1.0, semitones, options)
    frames = audio.shape[1]
    if out.shape[1] < frames:
        out = np.pad(out, ((0, 0), (0, frames - out.shape[1])))
    return np.ascontiguousarray(out[:, :frames])


def _correlate_onsets(
    expected: np.ndarray, actual: np.ndarray, max_lag: int
) -> tuple[float, float]:
    """Lag (frames, refined) at which ``actual`` best matches ``expected`` shifted later, and the
    normalised correlation there (0–1)."""
    norm = float(np.linalg.norm(expected) * np.linalg.norm(actual))
    if norm <= 0 or max_lag < 1:
        return 0.0, 0.0
    padded = np.pad(expected, (max_lag, max_lag))
    # scores[k] = sum_j actual[j] * expected[j - (k - max_lag)]: actual lagging by k - max_lag
    scores = np.correlate(padded, actual, mode="valid")[::-1]
    best = int(np.argmax(scores))
    strength = float(scores[best] / norm)
    lag = float(best)
    if 0 < best < len(scores) - 1:
        a, b, c = scores[best - 1], scores[best], scores[best + 1]
        denominator = a - 2 * b + c
        if denominator < 0:
            lag += float(np.clip(0.5 * (a - c) / denominator, -0.5, 0.5))
    return lag - max_lag, strength


def measure_offset(
    source: np.ndarray, stretched: np.ndarray, sample_rate: int, factor: float, max_offset_s: float
) -> tuple[float, float]:
    """How many samples later than ``position / factor`` the onsets of ``source`` sit in ``stretched``.

    Both are ``[channels, samples]`` at ``sample_rate``. Returns ``(offset_samples, strength)``;
    ``strength`` (0–1) says how well the onset patterns agree at that offset.
    """
    reference, hop = onsets.energy_onsets(source, sample_rate, smooth_ms=1.5)
    actual, _ = onsets.energy_onsets(stretched, sample_rate, smooth_ms=1.5)
    expected = onsets.interpolate(reference, np.arange(len(actual)) * factor)
    max_lag = max(1, int(round(max_offset_s * sample_rate / hop)))
    # the first and last stretch of the signal say nothing useful: every signal "starts" at its
    # first sample (an onset at the same place in both) and the stretcher ramps in and out there
    edge = 2 * max_lag
    if len(actual) > 4 * edge:
        actual = actual.copy()
        actual[:edge] = 0.0
        actual[-edge:] = 0.0
    lag, strength = _correlate_onsets(expected, actual, max_lag)
    return lag * hop, strength


@functools.lru_cache(maxsize=64)
def probe_offset(sample_rate: int, factor: float, semitones: float, options: StretchOptions) -> float:
    """The stretcher's own timing offset (samples), measured on a click train stretched the same way.

    Used when the audio has too few onsets to measure it on. Cached per settings.
    """
    spacing = int(0.25 * sample_rate)
    click_len = int(0.01 * sample_rate)
    t = np.arange(click_len) / sample_rate
    click = (np.exp(-t / 0.0015) * np.sin(2 * np.pi * 2500.0 * t)).astype(np.float32)
    probe = np.zeros((1, spacing * 10), dtype=np.float32)
    for k in range(1, 9):
        probe[0, k * spacing : k * spacing + click_len] += click
    out = stretch(probe, sample_rate, factor, semitones, options)
    offset, _ = measure_offset(probe, out, sample_rate, factor, max_offset_s=0.1)
    return offset
