"""Human, safe file names for conformed samples.

``punchy-kick_one-shot_128bpm_s42v0.wav``, ``house-groove_loop_128bpm_4bars_s7v2.wav``,
``waltz_loop_90bpm_2bars_3-4_s1v0.wav``, ``bass_one-shot_120bpm_up2st_44.1kHz_s3v0_A1.wav``: the
prompt (and kit part) as a lowercase ASCII slug, the kind, the tempo, for loops the length in bars
and a meter other than 4/4 (the engine's bar in quarter notes, as the ``acid`` chunk records it:
``3-4``, ``7-4``), then what else makes the sound differ (a pitch shift, a sample rate other than
48 kHz, a loudness other than the default: ``-10LUFS``), seed and variation, and the key as a
suffix when known, as sample libraries name it: a loop's or texture's key (``_Am``, ``_F#``), or a
one-shot's root note (``_Bb4``).

Only letters, digits, ``_``, ``-``, ``#`` and a decimal point inside a number (``127.5bpm``,
``44.1kHz``: a tempo read from the name must read as the number it is), at most
:data:`FILENAME_MAX_CHARS` characters (a long prompt is cut, never the fields after it), never a
leading dot: DAWs that find no tempo tag read the BPM from the name, and no prompt can steer the path.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import TYPE_CHECKING

import numpy as np

from ..errors import RequestError
from ..request import DEFAULT_LOUDNESS_LUFS, DEFAULT_SAMPLE_RATE, SEED_MAX, VARIATION_MAX, Kind

if TYPE_CHECKING:
    from .pipeline import ConformedAudio

FILENAME_MAX_CHARS = 120
SLUG_MAX_CHARS = 48
NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_SAFE = re.compile(r"[^A-Za-z0-9._#-]")
#: a dot that is no decimal point (not between two digits)
_STRAY_DOT = re.compile(r"(?<![0-9])\.|\.(?![0-9])")


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
    fields = [conformed.kind.value, f"{_number(conformed.tempo_bpm)}bpm"]
    is_loop = conformed.loop_start is not None
    if is_loop and (conformed.kind is Kind.LOOP or conformed.info.get("fitted_to_bars", False)):
        bars = conformed.beats / conformed.beats_per_bar
        if math.isfinite(bars):
            fields.append(f"{_number(bars)}{'bar' if bars == 1 else 'bars'}")
        if conformed.beats_per_bar != 4:  # the same bars of another meter are another length
            fields.append(f"{conformed.beats_per_bar}-4")
    # conform settings that change the sound but not the fields above: two files must never share a name
    semitones = float(conformed.info.get("pitch_semitones", 0.0))
    if semitones:
        fields.append(f"{'up' if semitones > 0 else 'down'}{_number(abs(semitones))}st")
    if conformed.sample_rate != DEFAULT_SAMPLE_RATE:  # the default rate is not named; any other is: ``_44.1kHz``
        fields.append(f"{_number(conformed.sample_rate / 1000)}kHz")
    loudness = conformed.info.get("loudness_target_lufs")
    if loudness is not None and float(loudness) != DEFAULT_LOUDNESS_LUFS:  # loops and textures only
        fields.append(f"{_number(float(loudness))}LUFS")
    fields.append(f"s{seed}v{variation}")
    key = conformed.info.get("key")
    if key:  # a sound in a key is named by it ("_Am", "_F#"), a pitched one-shot by its root note ("_F1")
        fields.append(str(key))
    elif conformed.root_note is not None:
        fields.append(note_name(conformed.root_note))
    tail = _clean("_".join(fields))
    stem_max = FILENAME_MAX_CHARS - len(".wav")
    # the prompt gives way when the name is too long: the fields after it are what a DAW reads
    head = _clean(words)[: max(0, stem_max - len(tail) - 1)].rstrip(".-_#")
    name = f"{head}_{tail}" if head else f"sample_{tail}"
    return name[:stem_max] + ".wav"


def _clean(text: str) -> str:
    """Only the characters a name may hold; a dot only as a decimal point; no leading dot or dash."""
    name = _STRAY_DOT.sub("-", _SAFE.sub("-", text))
    return name.lstrip(".-_")
