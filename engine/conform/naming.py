"""Human, safe file names for conformed samples.

``punchy-kick_one-shot_128bpm_s42v0.wav``, ``house-groove_loop_128bpm_4bars_s7v2.wav``,
``bass_one-shot_A1_120bpm_up2st_44.1kHz_s3v0.wav``: the prompt (and kit part) as a lowercase ASCII
slug, the kind, the key when known, the tempo, the length in bars for loops, a pitch shift and a
sample rate other than 48 kHz when there is one, seed and variation. Only ``[A-Za-z0-9._-]``, at most
:data:`FILENAME_MAX_CHARS` characters, never a leading dot, never ``..``, whatever the prompt holds:
DAWs that find no tempo tag read the BPM from the name, and no prompt can steer the path.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import TYPE_CHECKING

import numpy as np

from ..errors import RequestError
from ..request import DEFAULT_SAMPLE_RATE, SEED_MAX, VARIATION_MAX, Kind

if TYPE_CHECKING:
    from .pipeline import ConformedAudio

FILENAME_MAX_CHARS = 120
SLUG_MAX_CHARS = 48
NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def note_name(midi_note: int) -> str:
    """Scientific pitch name of a MIDI note with flats (60 → ``C4``, 24 → ``C1``, 70 → ``Bb4``)."""
    return f"{NOTE_NAMES[midi_note % 12]}{midi_note // 12 - 1}"


def slug(text: str, max_chars: int = SLUG_MAX_CHARS) -> str:
    """Lowercase ASCII words joined by ``-`` (accents folded, everything else dropped), cut at a word."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    words = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")
    if len(words) > max_chars:
        cut = words[: max_chars + 1]
        words = cut[: cut.rfind("-")] if "-" in cut[1:] else words[:max_chars]
    return words.strip("-")


def _number(value: float) -> str:
    """128 → ``128``, 127.5 → ``127.5``, 127.456 → ``127.46``."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def _check_count(name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value <= high:
        raise RequestError(name, value, f"a whole number from 0 to {high}")
    return int(value)


def sample_filename(prompt: str, conformed: ConformedAudio, seed: int, variation: int, part: str = "") -> str:
    """The file name of a conformed sample (see the module docstring for its shape).

    Raises :class:`RequestError` when ``prompt`` or ``part`` is not text or ``seed``/``variation``
    is not a whole number in range.
    """
    if not isinstance(prompt, str):
        raise RequestError("prompt", prompt, "text")
    if not isinstance(part, str):
        raise RequestError("part", part, "text")
    seed = _check_count("seed", seed, SEED_MAX)
    variation = _check_count("variation", variation, VARIATION_MAX)
    words = "-".join(w for w in (slug(part, 16), slug(prompt)) if w) or "sample"
    fields = [words, conformed.kind.value]
    if conformed.root_note is not None:
        fields.append(note_name(conformed.root_note))
    fields.append(f"{_number(conformed.tempo_bpm)}bpm")
    is_loop = conformed.loop_start is not None
    if is_loop and (conformed.kind is Kind.LOOP or conformed.info.get("fitted_to_bars", False)):
        bars = conformed.beats / conformed.beats_per_bar
        if math.isfinite(bars):
            fields.append(f"{_number(bars)}{'bar' if bars == 1 else 'bars'}")
    # conform settings that change the sound but not the fields above: two files must never share a name
    semitones = float(conformed.info.get("pitch_semitones", 0.0))
    if semitones:
        fields.append(f"{'up' if semitones > 0 else 'down'}{_number(abs(semitones))}st")
    if conformed.sample_rate != DEFAULT_SAMPLE_RATE:  # the default rate is not named; any other is: ``_44.1kHz``
        fields.append(f"{_number(conformed.sample_rate / 1000)}kHz")
    fields.append(f"s{seed}v{variation}")
    name = _SAFE.sub("-", "_".join(fields))
    # belt and braces: nothing above can make these, but a name must never climb or hide
    name = re.sub(r"\.{2,}", ".", name).lstrip(".-_")
    stem_max = FILENAME_MAX_CHARS - len(".wav")
    if len(name) > stem_max:
        name = name[:stem_max].rstrip(".-_")
    return (name or "sample") + ".wav"
