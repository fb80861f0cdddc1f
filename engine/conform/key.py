"""Musical keys: their names, the shift that matches one to another, and detecting one in audio.

Names
    :func:`parse_key` takes what a user or a host sends: ``"C"``, ``"F#"``, ``"Bb"`` (major),
    ``"Am"``, ``"C#m"``, ``"Bbm"`` (minor), any enharmonic spelling (``"Gb"``, ``"A#m"``, ``"Cb"``),
    words (``"A minor"``, ``"C major"``, ``"F# min"``, ``"Eb maj"``) and ``"off"`` / ``""`` (no key
    matching: ``None``). :attr:`MusicalKey.name` is the one canonical spelling the engine writes,
    sample-library style: majors C, C#, D, Eb, E, F, F#, G, Ab, A, Bb, B; minors Cm, C#m, Dm, Ebm, Em,
    Fm, F#m, Gm, G#m, Am, Bbm, Bm.

Matching
    :func:`key_shift` is the smallest transposition (−6…+5 semitones) that moves a detected key onto
    the requested one, a relative major or minor counting as a match (A minor asked for C major is
    moved by 0).

Detection (:func:`detect_key`)
    A pitch-class profile of the sound's stable spectral peaks (each peak's pitch folded into one
    octave after the recording's tuning is taken out, weighted by its level; every frame counts
    alike), correlated with the 24 rotations of a published key profile (:data:`PROFILES`; the
    default is the ``edma`` profile of Faraldo et al., "Key estimation in electronic dance music",
    ECIR 2016, which essentia's ``KeyExtractor`` uses). Material with too little stable, pitched
    energy (drums, noise) is called "no key" instead of guessed: see :data:`MIN_TONALNESS`.
    ``bench/bench_key.py`` measures it on rendered instruments against librosa's chroma with the
    Krumhansl–Kessler profiles.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import RequestError

MAJOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_NAMES = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")
#: words that mean "no key matching"
NO_KEY_WORDS = ("", "off", "none")
#: what :func:`parse_key` accepts, for its errors
KEY_FORMS = ("a key: C, C#, Db, D ... B (major) or Cm, C#m, Dbm ... Bm (minor), any enharmonic spelling, "
             "or words such as 'A minor', 'C major'; 'off' or '' for none")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_TEXT = re.compile(r"^\s*([A-Ga-g])\s*([#♯b♭]?)\s*(.*?)\s*$")
_MINOR_WORDS = {"m", "min", "minor", "moll", "aeolian"}
_MAJOR_WORDS = {"", "maj", "major", "dur", "ionian"}


@dataclass(frozen=True, order=True)
class MusicalKey:
    """A key: ``tonic`` pitch class (0 = C … 11 = B) and mode (``minor`` or major)."""

    tonic: int
    minor: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.tonic, bool) or not isinstance(self.tonic, int) or not 0 <= self.tonic <= 11:
            raise RequestError("tonic", self.tonic, "a pitch class from 0 (C) to 11 (B)")

    @property
    def name(self) -> str:
        """The canonical spelling (``"Am"``, ``"F#"``, ``"Bbm"``)."""
        return (MINOR_NAMES if self.minor else MAJOR_NAMES)[self.tonic]

    @property
    def mode(self) -> str:
        return "minor" if self.minor else "major"

    @property
    def index(self) -> int:
        """0–11 for the majors from C, 12–23 for the minors from C."""
        return self.tonic + (12 if self.minor else 0)

    def relative(self) -> MusicalKey:
        """The relative minor of a major key, the relative major of a minor one."""
        return MusicalKey((self.tonic + 3) % 12, False) if self.minor else MusicalKey((self.tonic + 9) % 12, True)

    def transposed(self, semitones: int) -> MusicalKey:
        return MusicalKey((self.tonic + int(semitones)) % 12, self.minor)

    def tonic_note(self, octave_c: int = 48) -> int:
        """The tonic as a MIDI note from ``octave_c`` (the C it counts from) up to a B."""
        return octave_c + self.tonic

    def __str__(self) -> str:
        return self.name


def all_keys() -> list[MusicalKey]:
    """The 24 keys: C … B major, then C … B minor."""
    return [MusicalKey(t, False) for t in range(12)] + [MusicalKey(t, True) for t in range(12)]


def parse_key(value: object, field: str = "key") -> MusicalKey | None:
    """The key ``value`` names, or None for no key (``None``, ``""``, ``"off"``, ``"none"``).

    Raises :class:`RequestError` naming ``field``, the value and the accepted forms.
    """
    if value is None:
        return None
    if isinstance(value, MusicalKey):
        return value
    if not isinstance(value, str):
        raise RequestError(field, value, KEY_FORMS)
    if value.strip().lower() in NO_KEY_WORDS:
        return None
    found = _KEY_TEXT.match(value)
    if found is None or len(value) > 24:
        raise RequestError(field, value, KEY_FORMS)
    letter, accidental, rest = found.groups()
    words = rest.replace("-", " ").split()
    word = " ".join(words)
    if word == "M":  # a capital M alone is "major" in some notations
        minor = False
    elif word.lower() in _MINOR_WORDS:
        minor = True
    elif word.lower() in _MAJOR_WORDS:
        minor = False
    else:
        raise RequestError(field, value, KEY_FORMS)
    tonic = _LETTERS[letter.upper()] + {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1}[accidental]
    return MusicalKey(tonic % 12, minor)


def key_name(value: object) -> str | None:
    """The canonical spelling of the key ``value`` names (None for no key); RequestError when it names none."""
    key = parse_key(value)
    return None if key is None else key.name


#: the shifts :func:`key_shift` gives, lowest and highest
KEY_SHIFT_RANGE = (-6, 5)


def key_shift(detected: MusicalKey, target: MusicalKey) -> int:
    """Semitones (−6…+5) that move ``detected`` onto ``target`` or its relative, whichever has
    ``detected``'s mode (a relative major or minor is a match: no shift)."""
    goal = target if target.minor == detected.minor else target.relative()
    shift = (goal.tonic - detected.tonic) % 12
    return shift - 12 if shift >= 6 else shift


def mirex_score(estimated: MusicalKey | None, truth: MusicalKey) -> float:
    """The MIREX key-detection score of one estimate: 1 exact, 0.5 a fifth away (same mode, either
    way), 0.3 relative, 0.2 parallel, else 0 (no key counts 0)."""
    if estimated is None:
        return 0.0
    if estimated == truth:
        return 1.0
    if estimated.minor == truth.minor and (estimated.tonic - truth.tonic) % 12 in (5, 7):
        return 0.5
    if estimated == truth.relative():
        return 0.3
    if estimated.tonic == truth.tonic:
        return 0.2
    return 0.0


# ---- detection --------------------------------------------------------------------------------------------

#: key profiles: weight of each scale degree from the tonic, major then minor
PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # Faraldo, Gómez, Jordà, Herrera (ECIR 2016), as in essentia's KeyExtractor(profileType="edma")
    "edma": ((1.0000, 0.2875, 0.5020, 0.4048, 0.6050, 0.5614, 0.3205, 0.7966, 0.3159, 0.4506, 0.4202, 0.3889),
             (1.0000, 0.3096, 0.4415, 0.5827, 0.3262, 0.4948, 0.2889, 0.7804, 0.4328, 0.2903, 0.5331, 0.3217)),
    # Krumhansl & Kessler (1982), probe-tone ratings
    "krumhansl": ((6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
                  (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)),
    # Temperley (1999), from the Kostka-Payne corpus
    "temperley": ((5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0),
                  (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0)),
}
DEFAULT_PROFILE = "edma"

#: the rate the sound is analysed at, and its analysis frame and hop (0.37 s frames: 2.7 Hz bins)
ANALYSIS_RATE = 11025
FRAME = 4096
HOP = 2048
#: the pitch range whose partials count (A1 to about A7)
LOW_HZ, HIGH_HZ = 50.0, 3600.0
#: the longest stretch analysed (from the start): a loop repeats
ANALYSIS_MAX_S = 30.0
#: a spectral peak counts when it is within this many dB of its frame's loudest
PEAK_RANGE_DB = 50.0
#: how far a peak stands over the spectrum's median around it to count as a partial, and that median's width
PROMINENCE_DB = 15.0
MEDIAN_BINS = 25
#: below this share of stable, peaked energy the sound has no key (drums, noise): see :func:`tonalness`
MIN_TONALNESS = 0.3
#: below this correlation with the best key's profile the sound has no key either
MIN_CORRELATION = 0.5


@dataclass(frozen=True)
class KeyEstimate:
    """What :func:`detect_key` found: ``key`` (None: no key), ``confidence`` 0–1 (None with no key:
    how far the chosen key's profile correlation leads the next key's that is not its relative, times
    that correlation), ``correlation`` of the chosen key's profile, ``tonalness`` 0–1 (the share of
    the sound's energy in stable spectral peaks) and ``chroma`` (the 12 pitch-class weights, C first)."""

    key: MusicalKey | None
    confidence: float | None
    correlation: float
    tonalness: float
    chroma: tuple[float, ...]

    @property
    def name(self) -> str | None:
        return None if self.key is None else self.key.name


def _mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    from ..audio import resample

    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[None, :]
    data = data[:, : int(ANALYSIS_MAX_S * sample_rate)]
    mono = data.mean(axis=0, keepdims=True)
    return resample(mono, int(sample_rate), ANALYSIS_RATE)[0]


def _frames(mono: np.ndarray) -> np.ndarray:
    """Magnitude spectra ``[frames, bins]`` of Hann-windowed frames (a short sound gives one, padded)."""
    if mono.shape[0] < FRAME:
        mono = np.pad(mono, (0, FRAME - mono.shape[0]))
    count = 1 + (mono.shape[0] - FRAME) // HOP
    index = np.arange(FRAME)[None, :] + HOP * np.arange(count)[:, None]
    window = np.hanning(FRAME).astype(np.float32)
    return np.abs(np.fft.rfft(mono[index] * window, axis=1)).astype(np.float32)


def _peaks(spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local spectral peaks in the pitch range: ``(frame index, frequency Hz, magnitude)`` each,
    frequency refined by a parabola through the log magnitudes."""
    bin_hz = ANALYSIS_RATE / FRAME
    low, high = int(LOW_HZ / bin_hz), min(spectra.shape[1] - 2, int(HIGH_HZ / bin_hz))
    mag = spectra[:, low - 1 : high + 2]
    centre = mag[:, 1:-1]
    floor = spectra.max(axis=1, keepdims=True) * 10 ** (-PEAK_RANGE_DB / 20) + 1e-9
    is_peak = (centre > mag[:, :-2]) & (centre >= mag[:, 2:]) & (centre > floor)
    frames, bins = np.nonzero(is_peak)
    log = np.log(mag + 1e-9)
    a, b, c = log[frames, bins], log[frames, bins + 1], log[frames, bins + 2]
    denominator = a - 2 * b + c
    offset = np.where(np.abs(denominator) > 1e-9, 0.5 * (a - c) / np.where(denominator == 0, 1, denominator), 0.0)
    frequency = (bins + low + np.clip(offset, -0.5, 0.5)) * bin_hz
    return frames, frequency, centre[frames, bins]


def tonalness(spectra: np.ndarray) -> float:
    """The share (0–1) of the sound's energy in the pitch range that sits in prominent spectral peaks
    which hold from one frame to the next: a peak stands :data:`PROMINENCE_DB` over the median level of
    the spectrum around it (a third of an octave at 200 Hz) and has a peak within one bin of it in a
    neighbouring frame. Partials of notes do; the broadband hits of drums, cymbals and noise do not.
    One frame (a very short sound) has nothing to hold: its prominent peaks' share is taken."""
    bin_hz = ANALYSIS_RATE / FRAME
    low, high = int(LOW_HZ / bin_hz), min(spectra.shape[1] - 2, int(HIGH_HZ / bin_hz))
    power = spectra[:, low:high].astype(np.float64) ** 2
    total = float(power.sum())
    if total <= 0.0:
        return 0.0
    level = 20 * np.log10(spectra[:, low - 1 : high + 1] + 1e-9)
    centre = level[:, 1:-1]
    peak = (centre > level[:, :-2]) & (centre >= level[:, 2:])
    # the median around each local maximum only (a few in ten bins): what a median filter over the whole
    # spectrum gives there, its ends extended by their edge values
    frames, bins = np.nonzero(peak)
    floor = _running_median(level, frames, bins + 1, MEDIAN_BINS)
    peak[frames, bins] = centre[frames, bins] > floor + PROMINENCE_DB
    return held_peaks_share(peak, power)


def held_peaks_share(peak: np.ndarray, power: np.ndarray) -> float:
    """The share of ``power`` (frames x bins) in the main lobes of the prominent peaks ``peak`` (a mask
    of the same shape) that have a peak within one bin of them in a neighbouring frame (all of them when
    there is one frame): :func:`tonalness` once its peaks are found."""
    if peak.shape[0] > 1:
        near = peak.copy()
        near[:, 1:] |= peak[:, :-1]
        near[:, :-1] |= peak[:, 1:]
        held = np.zeros_like(peak)
        held[1:] |= peak[1:] & near[:-1]
        held[:-1] |= peak[:-1] & near[1:]
        peak = held
    # a peak's energy is its bin and its two neighbours (a Hann window's main lobe)
    lobe = peak.copy()
    lobe[:, 1:] |= peak[:, :-1]
    lobe[:, :-1] |= peak[:, 1:]
    return float(power[lobe].sum() / power.sum())


def _running_median(values: np.ndarray, rows: np.ndarray, columns: np.ndarray, size: int) -> np.ndarray:
    """The median of the ``size`` values (odd) of each row of ``values`` centred on ``(rows, columns)``, the
    rows extended past their ends by their edge values (``scipy.ndimage.median_filter(values, size=(1, size),
    mode="nearest")`` at those points)."""
    half = size // 2
    padded = np.pad(values, ((0, 0), (half, half)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=1)[rows, columns]
    return np.partition(windows, half, axis=1)[:, half]


def pitch_class_profile(spectra: np.ndarray) -> np.ndarray:
    """The 12 pitch-class weights (C first) of the spectra's peaks, the recording's tuning taken out,
    each frame normalized so loud and soft passages count alike; summed and scaled to a maximum of 1."""
    frames, frequency, magnitude = _peaks(spectra)
    out = np.zeros(12)
    if frequency.size == 0:
        return out
    semitone = 12.0 * np.log2(frequency / 440.0) + 9.0  # 0 = C
    weight = magnitude.astype(np.float64) ** 2
    # tuning: the level-weighted circular mean of the peaks' distance from equal temperament
    angle = 2 * np.pi * (semitone - np.round(semitone))
    tuning = math.atan2(float((weight * np.sin(angle)).sum()), float((weight * np.cos(angle)).sum())) / (2 * np.pi)
    semitone = semitone - tuning
    nearest = np.round(semitone)
    distance = np.abs(semitone - nearest)
    weight = weight * np.cos(np.pi * distance) ** 2
    classes = nearest.astype(np.int64) % 12
    per_frame = np.zeros((int(frames.max()) + 1, 12))
    np.add.at(per_frame, (frames, classes), np.sqrt(weight))
    peak = per_frame.max(axis=1, keepdims=True)
    per_frame = np.divide(per_frame, peak, out=np.zeros_like(per_frame), where=peak > 0)
    out = per_frame.sum(axis=0)
    top = out.max()
    return out / top if top > 0 else out


def key_correlations(chroma: np.ndarray, profile: str = DEFAULT_PROFILE) -> np.ndarray:
    """Pearson correlation of ``chroma`` with each of the 24 keys' profiles (:func:`all_keys` order)."""
    if profile not in PROFILES:
        raise RequestError("profile", profile, "one of " + ", ".join(PROFILES))
    major, minor = (np.asarray(p, dtype=np.float64) for p in PROFILES[profile])
    scores = np.zeros(24)
    x = np.asarray(chroma, dtype=np.float64) - np.mean(chroma)
    norm = float(np.sqrt((x * x).sum()))
    if norm == 0.0:
        return scores
    for mode, base in enumerate((major, minor)):
        for tonic in range(12):
            y = np.roll(base, tonic)
            y = y - y.mean()
            scores[12 * mode + tonic] = float((x * y).sum() / (norm * np.sqrt((y * y).sum())))
    return scores


def best_key(scores: np.ndarray) -> tuple[MusicalKey, float, float]:
    """The best-scoring key, its correlation and a confidence: the lead of its correlation over the
    next key's that is not its relative (relatives share their notes), relative to its own, 0–1."""
    keys = all_keys()
    order = np.argsort(scores)[::-1]
    key = keys[int(order[0])]
    relative = key.relative().index
    runner = next(float(scores[i]) for i in order[1:] if int(i) != relative)
    top = float(scores[order[0]])
    confidence = 0.0 if top <= 0 else float(np.clip((top - runner) / max(top, 1e-9) * 4.0, 0.0, 1.0) * min(1.0, top))
    return key, top, confidence


def detect_key(audio: np.ndarray, sample_rate: int, profile: str = DEFAULT_PROFILE) -> KeyEstimate:
    """The key of float ``[channels, samples]`` (or ``[samples]``) audio at ``sample_rate``.

    "No key" (``key`` None) for material with too little stable pitched energy (:data:`MIN_TONALNESS`)
    or no key profile it follows (:data:`MIN_CORRELATION`). Raises :class:`RequestError` for an
    unknown ``profile`` or a rate that is no positive whole number.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise RequestError("sample_rate", sample_rate, "a whole number of Hz above 0")
    if profile not in PROFILES:
        raise RequestError("profile", profile, "one of " + ", ".join(PROFILES))
    spectra = _frames(_mono(audio, int(sample_rate)))
    tonal = tonalness(spectra)
    chroma = pitch_class_profile(spectra)
    scores = key_correlations(chroma, profile)
    key, correlation, confidence = best_key(scores)
    shape = tuple(round(float(c), 4) for c in chroma)
    if tonal < MIN_TONALNESS or correlation < MIN_CORRELATION:
        return KeyEstimate(None, None, round(correlation, 4), round(tonal, 4), shape)
    return KeyEstimate(key, round(confidence, 3), round(correlation, 4), round(tonal, 4), shape)
