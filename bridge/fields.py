"""Wire fields into the engine's terms: the one constructor of every client's order.

A ZeroMQ header, the key/value pairs of an OSC ``/loopbridge/job/...`` message, the OSC controller
session and the command line all speak the protocol's field names (``bridge/protocol.py``:
``REQUEST_FIELDS``, ``HOST_FIELDS``, ``CONFORM_FIELDS``, ``DELIVERY_FIELDS``). :class:`OrderBuilder`
turns checked fields into a front-door :class:`~loopbridge.engine.frontdoor.Order`: the request
(what to make), the host's facts (the song: tempo, meter, bars, rate), the user's conform choices
(pitch, root note) and the delivery options (variations, priority, pre-rendering). The engine
draws every musical conclusion from them (``engine/host.py``).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loopbridge.engine.errors import AudioReadError, NotFoundError, RequestError
from loopbridge.engine.frontdoor import FrontDoor, Order
from loopbridge.engine.host import HostFacts
from loopbridge.engine.request import AudioPrompt, GenerateRequest, check_audio_prompt_size, random_seed
from loopbridge.engine.scheduler import Priority

from . import protocol as p
from .protocol import MessageType

#: request fields that are the host's facts about the song (with the meter: protocol.HOST_FIELDS)
HOST_FACTS = frozenset({"tempo_bpm", "beats_per_bar", "bars"})
#: where an audio prompt may come from, one at a time
AUDIO_PROMPT_SOURCES = ("audio_prompt_frame", "audio_prompt_path", "audio_prompt_key")


def host_facts(fields: Mapping[str, Any]) -> HostFacts:
    """What the client says about the song (each fact optional). Raises RequestError for a bad one."""
    return HostFacts(tempo_bpm=fields.get("tempo_bpm"), meter_numerator=fields.get("meter_numerator"),
                     meter_denominator=fields.get("meter_denominator"), beats_per_bar=fields.get("beats_per_bar"),
                     bars=fields.get("bars"), sample_rate=fields.get("sample_rate"))


def priority(fields: Mapping[str, Any]) -> Priority:
    value = fields.get("priority", "interactive")
    if value == "interactive":
        return Priority.INTERACTIVE
    if value == "background":
        return Priority.BACKGROUND
    raise RequestError("priority", value, "interactive or background")


class OrderBuilder:
    """Orders from wire fields for one front door. ``default_model`` serves requests that name none.

    Audio prompts come from a binary frame, a stored render's key, or a file on the engine's machine
    (the last file read is kept while it is unchanged, so a controller's knob turns do not read it
    again).
    """

    def __init__(self, door: FrontDoor, default_model: str = "default") -> None:
        self.door = door
        self.default_model = default_model
        self._lock = threading.Lock()
        self._last_file: tuple[tuple[str, float, int], AudioPrompt] | None = None

    def order(self, kind: MessageType, fields: Mapping[str, Any], frames: Sequence[bytes | memoryview] = ()) -> Order:
        """The order that a ``kind`` message with checked ``fields`` asks for.

        Raises RequestError (a value out of range, a missing field), AudioReadError (an unreadable
        audio prompt) and NotFoundError (an unknown render key), each naming the field.
        """
        if kind in (MessageType.GENERATE, MessageType.VARIATION, MessageType.MORPH):
            return self._request_order(kind, fields, frames)
        if kind in (MessageType.CONFORM, MessageType.RECALL):
            name = "key" if kind is MessageType.RECALL else "render_key"
            key = fields.get(name) or fields.get("render_key") or fields.get("key")
            if not key:
                raise RequestError(name, key, "a render key (from a reply's render_key, or history)")
            if len(key) < 6 or any(c not in "0123456789abcdef" for c in key):
                raise NotFoundError(f"{name}={key!r} is not accepted: no stored render has that key")
            return Order(render_key=key, host=host_facts(fields), conform_bars=fields.get("conform_bars"),
                         pitch_semitones=fields.get("pitch_semitones", 0.0), root_note=fields.get("root_note"))
        raise RequestError("type", kind.value, "generate, variation, morph, conform or recall")

    def _request_order(self, kind: MessageType, fields: Mapping[str, Any],
                       frames: Sequence[bytes | memoryview]) -> Order:
        # the host's facts (tempo, meter, bars) go to the front door, which puts them in the request
        values = {name: fields[name] for name in p.REQUEST_FIELDS if name in fields and name not in HOST_FACTS}
        values.setdefault("model", self.default_model)
        if "seed" not in values and kind is MessageType.GENERATE:
            values["seed"] = random_seed()
        if kind is MessageType.MORPH and not values.get("morph_prompt"):
            raise RequestError("morph_prompt", values.get("morph_prompt"), "the prompt to morph towards (text)")
        request = GenerateRequest(**values, audio_prompt=self.audio_prompt(fields, frames))
        return Order(request, host_facts(fields), conform_bars=fields.get("conform_bars"),
                     pitch_semitones=fields.get("pitch_semitones", 0.0), root_note=fields.get("root_note"),
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
            return self._file_prompt(Path(value).expanduser())
        render = self.door.recall(value)
        if render is None:
            raise NotFoundError(f"audio_prompt_key={value!r} is not accepted: no stored render has that key")
        return AudioPrompt(render.audio, render.sample_rate)

    def _file_prompt(self, path: Path) -> AudioPrompt:
        try:
            status = path.stat()
        except OSError as exc:
            raise AudioReadError(f"audio prompt {str(path)!r} is not a readable file") from exc
        stamp = (str(path), status.st_mtime, status.st_size)
        with self._lock:
            if self._last_file is not None and self._last_file[0] == stamp:
                return self._last_file[1]
        prompt = AudioPrompt.from_file(path)
        with self._lock:
            self._last_file = (stamp, prompt)
        return prompt


def decode_audio(data: bytes | memoryview, where: str) -> AudioPrompt:
    """An audio prompt sent as file bytes (WAV, FLAC, AIFF or OGG). Raises AudioReadError."""
    import numpy as np
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(bytes(data))) as f:
            # the header first: a small compressed frame can decode to gigabytes
            check_audio_prompt_size(f.frames, f.channels, f.samplerate)
            audio = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
    except RequestError:
        raise
    except Exception as exc:  # libsndfile raises its own error types for anything unreadable
        raise AudioReadError(f"audio prompt in {where} is not readable audio (WAV, FLAC, AIFF or OGG): {exc}") from exc
    return AudioPrompt(np.ascontiguousarray(audio.T), int(rate))
