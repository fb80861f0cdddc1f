"""Time-stretch and pitch shift.

Rubber Band (``pedalboard.time_stretch``) does the stretching; where the stretched beats land is
measured and corrected in :mod:`.alignment`. Resampling is the engine's one resampler,
:func:`loopbridge.engine.audio.resample` (:func:`~loopbridge.engine.audio.resample_by` for a ratio).

A loop's pitch moves in the same pass as its tempo, one of two ways (:attr:`StretchOptions.pitch`):
Rubber Band stretches by the tempo ratio times the pitch ratio with its short window and the result is
resampled by the pitch ratio (``"resample"``, a loop's default: the shift costs a resampling, about
0.002x the audio's duration, and a stretch the tempo needed anyway; the hits keep the short window's
timing), or Rubber Band moves the pitch itself (``"rubberband"``: with its standard window, as the
short one smears hits ahead of the beat when it shifts, at about three times the short window's cost).
Either way the pitch is not formant-corrected (Rubber Band's own shift resamples too). One-shots and
textures, never stretched, are shifted by Rubber Band (their held notes keep the standard window).

A loop at its own tempo whose pitch alone moves (a key change with no tempo change) makes Rubber Band
run for the shift only. :attr:`StretchOptions.shift_alone` ``"faster"`` has its faster engine (R2, mixed
transients, standard window) make that stretch instead of the finer one. Measured by
``bench/bench_key.py`` (sections 4 and 5) against fluidsynth rendering the same MIDI in the new key, its
spectral error is the finer engine's (6.0 against 6.2 dB; 10.6 dB left in the wrong key) and the key is
heard as well (6 of 6 both), but it smears staccato attacks more (librosa's onsets: median -4.4 against
-2.9 ms, 95th percentile 19.9 against 10.7 ms), for detection + shift at 0.053x of the loop's duration
against 0.065x (load average about 10; 0.05x was aimed at): the default stays the finer one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pedalboard

from ..audio import resample_by
from ..errors import RequestError
from .alignment import measure_offset

TRANSIENT_MODES = ("crisp", "mixed", "smooth")
WINDOWS = ("auto", "short", "standard", "long")
PITCH_METHODS = ("auto", "resample", "rubberband")
SHIFT_ALONE_ENGINES = ("faster", "same")


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
    grid (otherwise trust the ideal time map). ``pitch``: how a pitch shift is made (see the module
    doc): ``"resample"`` (Rubber Band only stretches, resampling moves the pitch), ``"rubberband"``
    (Rubber Band moves it) or ``"auto"`` (the default: resample for a loop's :func:`stretch`, Rubber
    Band for :func:`pitch_shift`). ``shift_alone``: the engine that runs when a loop's pitch moves
    at its own tempo (a key change alone makes Rubber Band run): ``"same"`` (the default: the engine
    ``high_quality`` names) or ``"faster"`` (R2 with mixed transients and its standard window, its
    stretch by the pitch ratio resampled as above: cheaper, as close in spectrum, attacks smeared more;
    see the module doc).
    ``bench/bench_conform.py`` and ``bench/bench_key.py`` measure these choices.
    """

    high_quality: bool = True
    transient_mode: str = "crisp"
    window: str = "auto"
    phase_continuity: bool = True
    align: bool = True
    pitch: str = "auto"
    shift_alone: str = "same"

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
        if self.pitch not in PITCH_METHODS:
            raise RequestError("pitch", self.pitch, "one of: " + ", ".join(PITCH_METHODS))
        if self.shift_alone not in SHIFT_ALONE_ENGINES:
            raise RequestError("shift_alone", self.shift_alone, "one of: " + ", ".join(SHIFT_ALONE_ENGINES))


DEFAULT_STRETCH = StretchOptions()


def stretch(
    audio: np.ndarray,
    sample_rate: int,
    factor: float,
    semitones: float = 0.0,
    options: StretchOptions = DEFAULT_STRETCH,
) -> np.ndarray:
    """Rubber Band time-stretch (``factor`` > 1 shortens: the new tempo over the old) and pitch shift,
    made as ``options.pitch`` says (``"auto"``: resampled, see the module doc).

    Returns float32 ``[channels, about samples / factor]``.
    """
    return _stretch(audio, sample_rate, factor, semitones, options, pitch_method(options.pitch, looped=True))


def pitch_method(pitch: str, looped: bool) -> str:
    """How a shift is made for the ``pitch`` choice: ``"resample"`` or ``"rubberband"`` (``"auto"``:
    resample when ``looped`` (a loop's stretch), Rubber Band for a one-shot or texture)."""
    if pitch == "auto":
        return "resample" if looped else "rubberband"
    return pitch


def rubberband_semitones(semitones: float, method: str) -> float:
    """The shift Rubber Band itself makes: none when resampling moves the pitch."""
    return float(semitones) if method == "rubberband" else 0.0


def engine_for(options: StretchOptions, factor: float, semitones: float, method: str) -> tuple[bool, str, str]:
    """``(high_quality, transient_mode, window)`` Rubber Band runs with: ``options``' own, except for a
    loop whose pitch alone moves (``factor`` 1, shifted by resampling) with ``shift_alone="faster"``: R2
    then, its transients ``"mixed"`` (in its crisp mode R2 resets the phase of held low notes too and
    detunes them, a 220 Hz tone by about 20 cents) and its standard window (its short one smears
    chords: measured by ``bench/bench_key.py``, about 1 dB more spectral error)."""
    if factor == 1.0 and semitones != 0.0 and method == "resample" and options.shift_alone == "faster":
        return False, "mixed", "standard"
    return options.high_quality, options.transient_mode, options.window


def _stretch(
    audio: np.ndarray, sample_rate: int, factor: float, semitones: float, options: StretchOptions, method: str
) -> np.ndarray:
    ratio = 2.0 ** (float(semitones) / 12.0) if method == "resample" else 1.0
    shift = rubberband_semitones(semitones, method)
    high_quality, transient_mode, window = engine_for(options, factor, semitones, method)
    out = pedalboard.time_stretch(
        np.ascontiguousarray(audio, dtype=np.float32),
        float(sample_rate),
        # resampling by the pitch ratio shortens by it too: Rubber Band stretches that much longer
        stretch_factor=float(factor) / ratio,
        pitch_shift_in_semitones=shift,
        high_quality=high_quality,
        transient_mode=transient_mode,
        use_long_fft_window=window_flag(window, shift),
        retain_phase_continuity=options.phase_continuity,
    )
    out = np.ascontiguousarray(out, dtype=np.float32)
    return resample_by(out, ratio) if ratio != 1.0 else out


def window_flag(window: str, semitones: float) -> bool | None:
    """pedalboard's ``use_long_fft_window`` for a window choice and the shift Rubber Band itself makes
    (:func:`rubberband_semitones`): False short, None standard, True long."""
    if window == "auto":
        window = "short" if semitones == 0 else "standard"
    return {"short": False, "standard": None, "long": True}[window]


def pitch_shift(
    audio: np.ndarray, sample_rate: int, semitones: float, options: StretchOptions = DEFAULT_STRETCH
) -> np.ndarray:
    """Shift pitch by ``semitones`` without changing the length (exactly as many samples); made as
    ``options.pitch`` says (``"auto"``: by Rubber Band, see the module doc)."""
    if semitones == 0:
        return audio
    out = _stretch(audio, sample_rate, 1.0, semitones, options, pitch_method(options.pitch, looped=False))
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
