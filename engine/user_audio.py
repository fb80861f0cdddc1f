"""A user's own audio file, fitted to the song like any render: :class:`UserAudio`.

A loop or one-shot the user brings (``loopbridge conform FILE``, bytes over ZeroMQ, a path over OSC)
goes through the front door as an order of its own (``Order(audio=UserAudio(...))``). It becomes a
render of the model :data:`FILE_MODEL`: stored in the render store, listed in the history, keyed
by its samples and what the user said about them (source tempo, downbeat, bars, kind), so a tempo
change re-conforms it from the store (``recall KEY --bpm ...``) without the original file. No
model runs.

What the user knows about the file overrides the conform stage's estimates:
``tempo_bpm`` (its tempo: not estimated), ``downbeat_s`` (where its first downbeat is) and
``bars`` (how many bars of the song's meter it holds: a prior for the tempo estimate). Without them
nothing is assumed: the tempo is estimated without a length prior (a render's request tells the
estimator how many beats it was asked to hold; a user's file was asked for nothing).

The kind, when not given, is decided by :func:`default_kind`: a loop, unless the file is short and
dies away (a hit: a one-shot).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import as_audio_array, read_audio_bytes, read_audio_file
from .conform import SourceInfo
from .errors import RequestError, TooLargeError
from .request import (
    AUDIO_PROMPT_MAX_SAMPLES,
    BARS_MAX,
    BARS_MIN,
    DURATION_MAX_S,
    DURATION_MIN_S,
    SAMPLE_RATE_RANGE,
    TEMPO_MAX_BPM,
    TEMPO_MIN_BPM,
    GenerateRequest,
    Kind,
    Render,
    audio_digest,
    check_int,
    check_range,
)

#: the model id a user's file is stored under (``loopbridge history`` lists it so)
FILE_MODEL = "file"
#: ``Render.info["origin"]`` of a user's file
FILE_ORIGIN = "file"
#: the longest file taken (the longest render a model may make)
USER_AUDIO_MAX_S = DURATION_MAX_S
#: the most samples (frames × channels) a file may hold, as an audio prompt: ten minutes of stereo at 48 kHz
USER_AUDIO_MAX_SAMPLES = AUDIO_PROMPT_MAX_SAMPLES
#: kinds a file may be conformed as (a kit is several sounds)
USER_KINDS = (Kind.LOOP, Kind.ONE_SHOT, Kind.TEXTURE)
#: a name kept for the history and the file name (the rest is cut)
NAME_MAX_CHARS = 200

#: a loop whose tempo estimate is less sure than this gets a warning suggesting the source tempo
#: (``tempo_confidence`` runs 0–1; the conform stage leaves a loop unstretched below 0.1)
LOW_TEMPO_CONFIDENCE = 0.3
#: the same for the downbeat estimate, where the conform stage reports one (``downbeat_confidence``)
LOW_DOWNBEAT_CONFIDENCE = 0.3

#: a file at most this long may be a one-shot (longer: a loop, whatever its envelope)
ONE_SHOT_MAX_S = 3.0
#: a file shorter than this is a one-shot (too short to hold a bar at any tempo the engine takes)
ONE_SHOT_ALWAYS_S = 0.5
#: how far the file's last quarter must lie below its loudest moment to count as dying away (dB)
ONE_SHOT_DECAY_DB = 15.0
#: window of the loudness measure behind ONE_SHOT_DECAY_DB
_ENVELOPE_WINDOW_S = 0.02


def default_kind(audio: np.ndarray, sample_rate: int) -> Kind:
    """What a file is when its user does not say: a loop, or a one-shot for a short hit.

    A one-shot (a kick, a snare, a cymbal, a stab) is one attack that dies away; a loop is cut from
    running music, so it is about as loud at its end as in its middle. A file shorter than
    :data:`ONE_SHOT_ALWAYS_S` is a one-shot (half a second is one bar at 480 BPM); one of up to
    :data:`ONE_SHOT_MAX_S` is a one-shot when its last quarter lies :data:`ONE_SHOT_DECAY_DB` or
    more below its loudest moment; anything else is a loop. Length alone cannot tell them apart:
    Sonic Pi's recorded loops include one of 0.88 s (``loop_industrial``, half a bar) and its
    one-shots cymbals of 1.8 s and a splash of 2.6 s.
    """
    frames = audio.shape[1]
    duration_s = frames / sample_rate
    if duration_s < ONE_SHOT_ALWAYS_S:
        return Kind.ONE_SHOT
    if duration_s > ONE_SHOT_MAX_S:
        return Kind.LOOP
    return Kind.ONE_SHOT if decay_db(audio, sample_rate) >= ONE_SHOT_DECAY_DB else Kind.LOOP


def decay_db(audio: np.ndarray, sample_rate: int) -> float:
    """How far (dB) the loudest 20 ms window of the file's last quarter lies below its loudest 20 ms
    window (0 for silence)."""
    mono = np.asarray(audio, dtype=np.float64).mean(axis=0)
    window = max(1, int(round(_ENVELOPE_WINDOW_S * sample_rate)))
    usable = mono.shape[0] // window * window
    if usable < 4 * window:
        return 0.0
    energy = (mono[:usable].reshape(-1, window) ** 2).mean(axis=1)
    loudest = float(energy.max())
    if loudest <= 0.0:
        return 0.0
    tail = float(energy[int(len(energy) * 0.75):].max())
    return float(10.0 * math.log10(loudest / max(tail, loudest * 1e-12)))


def check_user_audio_size(frames: int, channels: int, sample_rate: int) -> None:
    """Refuse a file longer than :data:`USER_AUDIO_MAX_S` (RequestError) or of more than
    :data:`USER_AUDIO_MAX_SAMPLES` samples (TooLargeError), from its header, before it is decoded."""
    duration_s = frames / sample_rate if sample_rate > 0 else math.inf
    if duration_s > USER_AUDIO_MAX_S:
        raise RequestError("audio", f"{duration_s:.1f} s of audio", f"at most {USER_AUDIO_MAX_S:g} s")
    if frames * channels > USER_AUDIO_MAX_SAMPLES:
        raise TooLargeError("audio", f"{duration_s:.1f} s of {channels} channels at {sample_rate} Hz",
                            f"at most {USER_AUDIO_MAX_SAMPLES} samples (frames × channels: ten minutes of "
                            "stereo at 48 kHz)")


def _clean_name(name: str) -> str:
    if not isinstance(name, str):
        raise RequestError("name", name, "text")
    text = "".join(c for c in name if ord(c) >= 32 and c != "\x7f").strip()
    return text[:NAME_MAX_CHARS]


@dataclass(frozen=True, eq=False)
class UserAudio:
    """A user's audio to fit to the song, and what the user says about it.

    ``audio``: float32 ``[channels, samples]`` at ``sample_rate``; ``name``: what to call it (the
    file's name: it leads the conformed file's name and shows in the history). ``kind``: loop,
    one-shot or texture (None: :func:`default_kind`). ``tempo_bpm``: its own tempo (20–999 BPM),
    ``downbeat_s``: where its first downbeat lies (seconds from its start, within it), ``bars``:
    how many bars it holds (a prior for the tempo estimate); each None when not known. Checked at
    construction: :class:`RequestError` naming the field (``source_tempo_bpm``, ``source_downbeat_s``,
    ``source_bars``, ``kind``, ``audio``) and what is accepted.
    """

    audio: np.ndarray
    sample_rate: int
    name: str = ""
    kind: Kind | None = None
    tempo_bpm: float | None = None
    downbeat_s: float | None = None
    bars: float | None = None
    digest: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        check_int("sample_rate", self.sample_rate, *SAMPLE_RATE_RANGE, " Hz")
        audio = as_audio_array(self.audio, "audio")
        check_user_audio_size(audio.shape[1], audio.shape[0], self.sample_rate)
        duration_s = audio.shape[1] / self.sample_rate
        if self.kind is not None:
            kind = Kind.parse(self.kind)
            if kind not in USER_KINDS:
                raise RequestError("kind", self.kind, "loop, one-shot or texture")
            object.__setattr__(self, "kind", kind)
        if self.tempo_bpm is not None:
            check_range("source_tempo_bpm", self.tempo_bpm, TEMPO_MIN_BPM, TEMPO_MAX_BPM, " BPM")
        if self.downbeat_s is not None:
            check_range("source_downbeat_s", self.downbeat_s, 0.0, duration_s, " s (within the audio)")
        if self.bars is not None:
            check_range("source_bars", self.bars, BARS_MIN, BARS_MAX, " bars")
        audio.setflags(write=False)
        object.__setattr__(self, "audio", audio)
        object.__setattr__(self, "name", _clean_name(self.name))
        object.__setattr__(self, "digest", audio_digest(audio, self.sample_rate))

    @classmethod
    def from_file(cls, path: str | Path, **what: Any) -> UserAudio:
        """Read an audio file (WAV, FLAC, AIFF, OGG, MP3: whatever pedalboard reads); ``what`` are the
        other fields (``kind``, ``tempo_bpm``...). The name is the file's, without its suffix.

        Raises :class:`AudioReadError` naming the path when it is not readable audio, and what the
        constructor raises.
        """
        path = Path(path)
        audio, rate = read_audio_file(path, "audio file", check_user_audio_size)
        what.setdefault("name", path.stem)
        return cls(audio=audio, sample_rate=rate, **what)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, where: str = "audio", **what: Any) -> UserAudio:
        """An audio file's bytes (WAV, FLAC, AIFF, OGG, MP3), as a client sends them; ``where`` names
        them in errors. Raises :class:`AudioReadError` and what the constructor raises."""
        audio, rate = read_audio_bytes(data, where, check_user_audio_size)
        return cls(audio=audio, sample_rate=rate, **what)

    @property
    def duration_s(self) -> float:
        return self.audio.shape[1] / self.sample_rate

    @property
    def resolved_kind(self) -> Kind:
        """The kind given, else :func:`default_kind`."""
        return self.kind if self.kind is not None else default_kind(self.audio, self.sample_rate)

    def render(self, tempo_bpm: float, beats_per_bar: int) -> Render:
        """This audio as a render of :data:`FILE_MODEL`, first conformed for a song at ``tempo_bpm``
        with bars of ``beats_per_bar`` quarter notes (what ``recall`` without a tempo goes back to;
        ``bars`` counts bars of that length).

        The key covers the samples, the kind and what the user said about the audio, never the song:
        the same file conformed at another tempo is the same render.
        """
        kind = self.resolved_kind
        info: dict[str, Any] = {"origin": FILE_ORIGIN, "name": self.name, "channels": int(self.audio.shape[0]),
                                "frames": int(self.audio.shape[1]), "sample_rate": int(self.sample_rate)}
        if self.tempo_bpm is not None:
            info["tempo_bpm"] = float(self.tempo_bpm)
        if self.downbeat_s is not None:
            info["downbeat_s"] = float(self.downbeat_s)
        if self.bars is not None and kind is Kind.LOOP:
            info["beats"] = float(self.bars) * beats_per_bar
        keyed = {"origin": FILE_ORIGIN, "audio": self.digest, "kind": kind.value,
                 **{name: info.get(name) for name in ("tempo_bpm", "downbeat_s", "beats")}}
        key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()
        duration_s = min(max(round(self.duration_s, 6), DURATION_MIN_S), DURATION_MAX_S)
        request = GenerateRequest(prompt=self.name[:200], model=FILE_MODEL, kind=kind, duration_s=duration_s,
                                  tempo_bpm=tempo_bpm, beats_per_bar=beats_per_bar)
        return Render(key=key, audio=self.audio, sample_rate=self.sample_rate, request=request,
                      model_digest=FILE_MODEL, info=info)


def is_user_render(info: Mapping[str, Any]) -> bool:
    """Whether a render's info says it is a user's file (:meth:`UserAudio.render`)."""
    return info.get("origin") == FILE_ORIGIN


def source_info(info: Mapping[str, Any]) -> SourceInfo:
    """What the conform stage is told about a user's file: only what its user said (its tempo,
    downbeat, bars), never a length it was asked to hold. Raises RequestError for a bad value."""

    def number(name: str) -> float | None:
        value = info.get(name)
        return None if value is None else float(value)

    return SourceInfo(tempo_bpm=number("tempo_bpm"), beats=number("beats"), downbeat_s=number("downbeat_s"))


def user_filename(filename: str, render_key: str) -> str:
    """A conformed file name (:func:`~.conform.sample_filename`, made with seed 0, variation 0) for a
    user's file: its ``_s0v0`` becomes the render's short key, so two files of one name never share
    a conformed name, and the name says what ``recall`` takes (before the key's suffix: ``_3fa2b1c0_Am.wav``)."""
    return re.sub(r"_s0v0(?=(_[A-Za-z0-9#]+)?\.wav$)", f"_{render_key[:8]}", filename, count=1)


def confidence(info: Mapping[str, Any]) -> dict[str, Any]:
    """How sure the conform stage was of a loop's tempo and downbeat, from a conformed file's info:
    ``tempo_confidence`` and ``downbeat_confidence`` (0–1, each when reported) and ``low_confidence``
    (the stage said so, or either lies below :data:`LOW_TEMPO_CONFIDENCE` /
    :data:`LOW_DOWNBEAT_CONFIDENCE`: the user may want to give the source tempo or downbeat).
    Empty for what was not estimated (one-shots, textures)."""
    out: dict[str, Any] = {}
    for name in ("tempo_confidence", "downbeat_confidence"):
        value = info.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = round(float(value), 4)
    if not out and "low_confidence" not in info:
        return out
    low = bool(info.get("low_confidence", False))
    low = low or out.get("tempo_confidence", 1.0) < LOW_TEMPO_CONFIDENCE
    low = low or out.get("downbeat_confidence", 1.0) < LOW_DOWNBEAT_CONFIDENCE
    out["low_confidence"] = low
    return out


__all__ = ["FILE_MODEL", "LOW_DOWNBEAT_CONFIDENCE", "LOW_TEMPO_CONFIDENCE", "UserAudio", "confidence",
           "default_kind", "is_user_render", "source_info"]
