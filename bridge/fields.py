"""Wire fields into the engine's terms: the one constructor of every client's order.

A ZeroMQ header, the key/value pairs of an OSC ``/loopbridge/job/...`` message, the OSC controller
session and the command line all speak the protocol's field names (``bridge/protocol.py``:
``REQUEST_FIELDS``, ``HOST_FIELDS``, ``CONFORM_FIELDS``, ``DELIVERY_FIELDS``). :class:`OrderBuilder`
turns checked fields into a front-door :class:`~loopbridge.engine.frontdoor.Order`: the request
(what to make), the host's facts (the song: tempo, meter, bars, rate), the user's conform choices
(pitch, root note, loudness) and the delivery options (variations, priority, pre-rendering). The engine
draws every musical conclusion from them (``engine/host.py``).

A builder for network clients (``allowed`` given) takes a model by an id that ``models`` lists and
an audio prompt file only inside the allowed folders (:mod:`.paths`); the command line's builder
(``allowed=None``) takes what its user names: a model folder, ``FAMILY:PATH``, any file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loopbridge.engine.conform.warp import DEFAULT_WARP
from loopbridge.engine.errors import NotFoundError, RequestError, UnknownModelError
from loopbridge.engine.frontdoor import FrontDoor, Order
from loopbridge.engine.host import HostFacts
from loopbridge.engine.request import AudioPrompt, GenerateRequest, random_seed
from loopbridge.engine.scheduler import Priority
from loopbridge.engine.user_audio import UserAudio

from . import protocol as p
from .paths import AllowedFolders
from .protocol import MessageType

#: request fields that are the host's facts about the song (with the meter: protocol.HOST_FIELDS)
HOST_FACTS = frozenset({"tempo_bpm", "beats_per_bar", "bars"})
#: where an audio prompt may come from, one at a time
AUDIO_PROMPT_SOURCES = ("audio_prompt_frame", "audio_prompt_path", "audio_prompt_key")
#: where a client's own audio to fit to the song comes from, one of them
USER_AUDIO_SOURCES = ("audio_frame", "audio_path")
#: a conform_file request's fields of what the client knows of its audio -> UserAudio's fields
USER_AUDIO_FIELDS = {"kind": "kind", "source_tempo_bpm": "tempo_bpm", "source_downbeat_s": "downbeat_s",
                     "source_bars": "bars"}

#: what tells a file read before from a changed one: (path, inode, mtime in ns, size)
FileStamp = tuple[str, int, int, int]


def host_facts(fields: Mapping[str, Any]) -> HostFacts:
    """What the client says about the song (each fact optional; ``key`` "off" or "" is no key). Raises
    RequestError for a bad one."""
    return HostFacts(tempo_bpm=fields.get("tempo_bpm"), meter_numerator=fields.get("meter_numerator"),
                     meter_denominator=fields.get("meter_denominator"), beats_per_bar=fields.get("beats_per_bar"),
                     bars=fields.get("bars"), sample_rate=fields.get("sample_rate"), key=fields.get("key"))


def is_render_key(value: Any) -> bool:
    """Whether ``value`` reads as a render key or a prefix of one: 6+ lowercase hex digits (no musical key
    does: "Bbm", "A minor")."""
    return isinstance(value, str) and len(value) >= 6 and all(c in "0123456789abcdef" for c in value)


def priority(fields: Mapping[str, Any]) -> Priority:
    value = fields.get("priority", "interactive")
    if value == "interactive":
        return Priority.INTERACTIVE
    if value == "background":
        return Priority.BACKGROUND
    raise RequestError("priority", value, "interactive or background")


class OrderBuilder:
    """Orders from wire fields for one front door. ``default_model`` serves requests that name none,
    ``default_loudness_lufs`` those that name no loudness (None: the engine's default).

    ``allowed``: the folders whose files network clients may name, and models by listed id only;
    None for the command line, whose user may name any file and any model folder.

    Audio prompts come from a binary frame, a stored render's key, or a file on the engine's machine
    (the last file read is kept while it is unchanged, so a controller's knob turns do not read it
    again).
    """

    def __init__(self, door: FrontDoor, default_model: str = "default", *, allowed: AllowedFolders | None,
                 default_loudness_lufs: float | None = None) -> None:
        self.door = door
        self.default_model = default_model
        self.default_loudness_lufs = default_loudness_lufs
        self.allowed = allowed
        self._lock = threading.Lock()
        self._last_file: tuple[FileStamp, AudioPrompt] | None = None
        self._model_ids: frozenset[str] = frozenset()

    def model(self, value: str) -> str:
        """``value`` when a client may ask for that model: for network clients an id that ``models``
        lists (never a folder path or ``FAMILY:PATH``). Raises UnknownModelError listing the ids."""
        if self.allowed is None or not value or value in self._model_ids:
            return value  # "" is the request's own error
        ids = [spec.id for spec in self.door.models()]  # a scan of the model folders: only for an id not seen
        with self._lock:
            self._model_ids = frozenset(ids)
        if value not in ids:
            raise UnknownModelError(value, ids)
        return value

    def order(self, kind: MessageType, fields: Mapping[str, Any], frames: Sequence[bytes | memoryview] = ()) -> Order:
        """The order that a ``kind`` message with checked ``fields`` asks for.

        Raises RequestError (a value out of range, a missing field), AudioReadError (an unreadable
        audio prompt) and NotFoundError (an unknown render key), each naming the field.
        """
        if kind in (MessageType.GENERATE, MessageType.VARIATION, MessageType.MORPH):
            return self._request_order(kind, fields, frames)
        if kind is MessageType.CONFORM_FILE:
            return Order(audio=self.user_audio(fields, frames), host=host_facts(fields),
                         pitch_semitones=fields.get("pitch_semitones", 0.0), root_note=fields.get("root_note"),
                         loudness_lufs=fields.get("loudness_lufs", self.default_loudness_lufs),
                         warp=fields.get("warp", DEFAULT_WARP), priority=priority(fields), prerender=False)
        if kind in (MessageType.CONFORM, MessageType.RECALL):
            name, key = "render_key", fields.get("render_key")
            if not key and kind is MessageType.RECALL and is_render_key(fields.get("key")):
                # a recall that names its render by "key", as clients did before the song's key was a field
                name, key = "key", fields["key"]
                fields = {n: v for n, v in fields.items() if n != "key"}
            if not key:
                raise RequestError(name, key, "a render key (from a reply's render_key, or history)")
            if not is_render_key(key):
                raise NotFoundError(f"{name}={key!r} is not accepted: no stored render has that key")
            return Order(render_key=key, host=host_facts(fields), conform_bars=fields.get("conform_bars"),
                         pitch_semitones=fields.get("pitch_semitones", 0.0), root_note=fields.get("root_note"),
                         loudness_lufs=fields.get("loudness_lufs", self.default_loudness_lufs))
        raise RequestError("type", kind.value, "generate, variation, morph, conform, conform_file or recall")

    def _request_order(self, kind: MessageType, fields: Mapping[str, Any],
                       frames: Sequence[bytes | memoryview]) -> Order:
        # the host's facts (tempo, meter, bars) go to the front door, which puts them in the request
        values = {name: fields[name] for name in p.REQUEST_FIELDS if name in fields and name not in HOST_FACTS}
        values["model"] = self.model(values.get("model", self.default_model))
        if "seed" not in values and kind is MessageType.GENERATE:
            values["seed"] = random_seed()
        if kind is MessageType.MORPH and not values.get("morph_prompt"):
            raise RequestError("morph_prompt", values.get("morph_prompt"), "the prompt to morph towards (text)")
        host = host_facts(fields)
        if values.get("task", "generate") != "generate":
            # a task's bars are counted in its source at the song's tempo and bar: they are checked with them
            values.update(host.request_fields())
        request = GenerateRequest(**values, audio_prompt=self.audio_prompt(fields, frames))
        return Order(request, host, conform_bars=fields.get("conform_bars"),
                     pitch_semitones=fields.get("pitch_semitones", 0.0), root_note=fields.get("root_note"),
                     loudness_lufs=fields.get("loudness_lufs", self.default_loudness_lufs),
                     variations=fields.get("variations", 1), priority=priority(fields),
                     prerender=fields.get("prerender", True))

    def audio_prompt(self, fields: Mapping[str, Any], frames: Sequence[bytes | memoryview]) -> AudioPrompt | None:
        given = [name for name in AUDIO_PROMPT_SOURCES if fields.get(name) not in (None, "")]
        if len(given) > 1:
            raise RequestError(given[1], fields[given[1]], f"one audio prompt only (also given: {given[0]})")
        if not given:
            return None
        name = given[0]
        value = fields[name]
        if name == "audio_prompt_frame":
            if not 1 <= value <= len(frames):
                raise RequestError(name, value, f"the index of a binary frame: 1–{len(frames)}" if frames
                                   else "no binary frame was sent")
            return decode_audio(frames[value - 1], f"frame {value}")
        if name == "audio_prompt_path":
            return self._file_prompt(value)
        render = self.door.recall(value)
        if render is None:
            raise NotFoundError(f"audio_prompt_key={value!r} is not accepted: no stored render has that key")
        return AudioPrompt(render.audio, render.sample_rate)

    def _file_prompt(self, value: str) -> AudioPrompt:
        if self.allowed is None:  # the command line: its user's own files, wherever they are
            path = Path(value).expanduser()
            try:
                status = path.stat()
            except OSError:
                status = None  # read anyway: the reader's "is not a readable file" names the path
            stamp = None if status is None else (str(path), status.st_ino, status.st_mtime_ns, status.st_size)
            return self._recall(stamp) or self._keep(stamp, AudioPrompt.from_file(path))
        fd, real = self.allowed.open("audio_prompt_path", value)
        with os.fdopen(fd, "rb") as f:
            status = os.fstat(f.fileno())
            stamp = (str(real), status.st_ino, status.st_mtime_ns, status.st_size)
            known = self._recall(stamp)
            if known is not None:
                return known
            if status.st_size > p.MAX_BINARY_FRAME_BYTES:
                raise RequestError("audio_prompt_path", value,
                                   f"a file of at most {p.MAX_BINARY_FRAME_BYTES} bytes (as a binary frame)")
            data = f.read(p.MAX_BINARY_FRAME_BYTES)
        return self._keep(stamp, AudioPrompt.from_bytes(data, f"audio prompt {str(real)!r}"))

    def user_audio(self, fields: Mapping[str, Any], frames: Sequence[bytes | memoryview]) -> UserAudio:
        """The audio a ``conform_file`` request brings, with what its client knows of it: from a binary
        frame (``audio_frame``) or a file (``audio_path``: for network clients inside the allowed folders).

        Raises RequestError naming the field, AudioReadError for what is not readable audio.
        """
        given = [name for name in USER_AUDIO_SOURCES if fields.get(name) not in (None, "")]
        if len(given) != 1:
            name = given[1] if given else USER_AUDIO_SOURCES[0]
            raise RequestError(name, fields.get(name), "the audio to fit, one of: audio_frame (the index of a binary "
                                                       "frame holding the file) or audio_path (a file)")
        what: dict[str, Any] = {field: fields[name] for name, field in USER_AUDIO_FIELDS.items()
                                if fields.get(name) not in (None, "")}
        if fields.get("name"):
            what["name"] = fields["name"]
        name = given[0]
        value = fields[name]
        if name == "audio_frame":
            if not 1 <= value <= len(frames):
                raise RequestError(name, value, f"the index of a binary frame: 1–{len(frames)}" if frames
                                   else "no binary frame was sent")
            return UserAudio.from_bytes(frames[value - 1], f"audio in frame {value}", **what)
        if self.allowed is None:  # the command line: its user's own files, wherever they are
            return UserAudio.from_file(Path(value).expanduser(), **what)
        fd, real = self.allowed.open(name, value, "audio file")
        with os.fdopen(fd, "rb") as f:
            if os.fstat(f.fileno()).st_size > p.MAX_BINARY_FRAME_BYTES:
                raise RequestError(name, value,
                                   f"a file of at most {p.MAX_BINARY_FRAME_BYTES} bytes (as a binary frame)")
            data = f.read(p.MAX_BINARY_FRAME_BYTES)
        what.setdefault("name", real.stem)
        return UserAudio.from_bytes(data, f"audio file {str(real)!r}", **what)

    def _recall(self, stamp: FileStamp | None) -> AudioPrompt | None:
        with self._lock:
            if stamp is not None and self._last_file is not None and self._last_file[0] == stamp:
                return self._last_file[1]
        return None

    def _keep(self, stamp: FileStamp | None, prompt: AudioPrompt) -> AudioPrompt:
        if stamp is not None:
            with self._lock:
                self._last_file = (stamp, prompt)
        return prompt


def decode_audio(data: bytes | memoryview, where: str) -> AudioPrompt:
    """An audio prompt sent as bytes: an audio file's (WAV, FLAC, AIFF, OGG, MP3) or a spectrogram
    image's (a Riffusion seed image: PNG, JPEG, WebP, BMP). Raises AudioReadError or RequestError."""
    return AudioPrompt.from_bytes(data, f"audio prompt in {where}")
