"""Time-stretch and pitch shift.

Rubber Band (``pedalboard.time_stretch``) does the stretching; where the stretched beats land is
measured and corrected in :mod:`.alignment`. Resampling is the engine's one resampler,
:func:`loopbridge.engine.audio.resample`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pedalboard

from ..errors import RequestError
from .alignment import measure_offset

TRANSIENT_MODES = ("crisp", "mixed", "smooth")
WINDOWS = ("auto", "short", "standard", "long")


@dataclass(frozen=True)
class StretchOptions:
    """How audio is stretched; passed with each call, never kept globally.

    ``high_quality``: Rubber Band's finer engine (R3); false takes the faster one (R2), which in
    its crisp mode smears held bass notes and chords and detunes pitch shifts by about 5 cents.
    ``transient_mode``: ``"crisp"``, ``"mixed"`` or ``"smooth"`` (Rubber Band's handling of drum
    hits). ``window``: Rubber Band's FFT window: ``"short"`` (R3's cheaper single-window mode;
    tight hits, but held bass notes warble and pads turn phasier), ``"standard"`` (the cleanest,
    about three times the cost with R3), ``"long"``, or ``"auto"`` (the default): short for a
    time-stretch, standard when the pitch moves too (the short window then smears hits ahead of
    the beat). ``phase_continuity``: keep the phase relations of neighbouring frequency bins
    (Rubber Band's default). ``align``: measure where each stretched beat landed and put it on the
    grid (otherwise trust the ideal time map). ``bench/bench_conform.py`` measures these choices.
    """

    high_quality: bool = True
    transient_mode: str = "crisp"
    window: str = "auto"
    phase_continuity: bool = True
    align: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.high_quality, bool):
            raise RequestError("high_quality", self.high_quality, "true or false")
        if self.transient_mode not in TRANSIENT_MODES:
            raise RequestError("transient_mode", self.transient_mode, "one of: " + ", ".join(TRANSIENT_MODES))
        if not isinstance(self.phase_continuity, bool):
            raise RequestError("phase_continuity", self.phase_continuity, "true or false")
        if self.window not in WINDOWS:
            raise RequestError("window", self.window, "one of: " + ", ".join(WINDOWS))
        if not isinstance(self.align, bool):
            raise RequestError("align", self.align, "true or false")


DEFAULT_STRETCH = StretchOptions()


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
        use_long_fft_window=window_flag(options.window, semitones),
        retain_phase_continuity=options.phase_continuity,
    )
    return np.ascontiguousarray(out, dtype=np.float32)


def window_flag(window: str, semitones: float) -> bool | None:
    """pedalboard's ``use_long_fft_window`` for a window choice: False short, None standard, True long."""
    if window == "auto":
        window = "short" if semitones == 0 else "standard"
    return {"short": False, "standard": None, "long": True}[window]


def pitch_shift(
    audio: np.ndarray, sample_rate: int, semitones: float, options: StretchOptions = DEFAULT_STRETCH
) -> np.ndarray:
    """Shift pitch by ``semitones`` without changing the length (exactly as many samples)."""
    if semitones == 0:
        return audio
    out = stretch(audio, sample_rate, 1.0, semitones, options)
    frames = audio.shape[1]
    if out.shape[1] < frames:
        out = np.pad(out, ((0, 0), (0, frames - out.shape[1])))
    return np.ascontiguousarray(out[:, :frames])


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
