"""The loopbridge wire protocol: the one source of names, version, limits, message types, the OSC
address table and error codes. Servers, the Python client, the VST3 plugin (C++) and the Max for
Live device (JavaScript) all follow this module; ``bridge/PROTOCOL.md`` says the same for people,
and tests keep the C++ and JavaScript copies of these constants in line with it.

Layers, as in the codec's tests: pure encode/decode of a header frame here; message building only
in the client and server modules; dispatch in the servers.

ZeroMQ messages (DEALER client ↔ ROUTER engine) are multipart: frame 0 is a UTF-8 JSON object,
the *header*, with at least ``v`` (protocol version), ``type`` and, for requests, ``id`` (a string
the client chooses, echoed in every message about that request); frames 1… are binary (WAV bytes).
The engine also publishes events on a PUB socket as ``[topic, header]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

PROTOCOL_VERSION = 1
#: oldest client protocol version the engine still serves
PROTOCOL_MIN_VERSION = 1

# ---- endpoints and timing (the only place these numbers live) ---------------------------------

DEFAULT_ZMQ_HOST = "127.0.0.1"
DEFAULT_ZMQ_PORT = 5555
DEFAULT_EVENTS_PORT = 5556
DEFAULT_ZMQ_ENDPOINT = f"tcp://{DEFAULT_ZMQ_HOST}:{DEFAULT_ZMQ_PORT}"
DEFAULT_EVENTS_ENDPOINT = f"tcp://{DEFAULT_ZMQ_HOST}:{DEFAULT_EVENTS_PORT}"
DEFAULT_OSC_HOST = "127.0.0.1"
#: the engine listens for OSC here (AbletonOSC uses 11000/11001: avoided)
DEFAULT_OSC_PORT = 9000
#: the port controllers conventionally listen on and register (/loopbridge/controller/register); the
#: engine replies to a registered port, else to the sender's source port
DEFAULT_OSC_REPLY_PORT = 9001

HEARTBEAT_INTERVAL_S = 1.0
#: heartbeats missed before a peer counts as gone
HEARTBEAT_LIVENESS = 3
RECONNECT_INITIAL_S = 1.0
RECONNECT_MAX_S = 30.0
#: how long a client waits for a reply to a quick request (not a render) before retrying
REQUEST_TIMEOUT_S = 5.0

# ---- sizes -------------------------------------------------------------------------------------
# From what the engine accepts (engine/request.py; tests/bridge/test_protocol.py keeps them in line):
# a request's only binary frame is an audio prompt's file, a reply's are conformed WAV files.

MAX_HEADER_BYTES = 64 * 1024
#: the largest binary frame of a request: the file of the largest audio prompt the engine takes
#: (AUDIO_PROMPT_MAX_SAMPLES: ten minutes of stereo at 48 kHz) as 32-bit samples, and 1 MiB for its
#: header and metadata chunks; ZMQ_MAXMSGSIZE on the engine's sockets, so libzmq drops a larger frame
#: (with its connection) before reading it
MAX_BINARY_FRAME_BYTES = 600 * 48000 * 2 * 4 + 1024 * 1024
#: a header and at most 64 binary frames (a reply's 64 variations)
MAX_FRAMES = 1 + 64
#: the most one request may hold, all its frames together: a header and one audio prompt. libzmq
#: bounds frames only, so this is checked as a message arrives, before anything in it is decoded
MAX_MESSAGE_BYTES = MAX_HEADER_BYTES + MAX_BINARY_FRAME_BYTES
#: the largest binary frame of a reply: the 24-bit WAV file of the largest conformed sample
#: (CONFORMED_MAX_SAMPLES: 600 s of stereo at 192 kHz) and 1 MiB for its chunks; ZMQ_MAXMSGSIZE on clients
MAX_REPLY_FRAME_BYTES = 600 * 192000 * 2 * 3 + 1024 * 1024
MAX_ID_CHARS = 64
MAX_OSC_PACKET_BYTES = 64 * 1024
#: the most one OSC packet draws back to a sender that did not register (/loopbridge/controller/register):
#: a bundle's replies and the messages of the jobs it starts, together, so that a small packet from a
#: forged source address draws little more than itself
MAX_OSC_UNREGISTERED_REPLY_BYTES = 1024
#: the same for a registered controller
MAX_OSC_REPLY_BYTES = 64 * 1024
#: the longest JSON text one OSC reply carries (status, models, history): lists lose their tail
MAX_OSC_JSON_BYTES = 8 * 1024
#: registered OSC controllers one host may hold (a new one replaces the host's oldest)
MAX_OSC_CONTROLLERS_PER_HOST = 8
#: registered OSC controllers the engine holds (beyond them, a new host's registration is refused)
MAX_OSC_CONTROLLERS = 64


class MessageType(StrEnum):
    """Request types a client sends (``header["type"]``)."""

    HELLO = "hello"  # version handshake; reply carries server version, models, limits
    MODELS = "models"  # list models with where each comes from and its capabilities
    CAPABILITIES = "capabilities"  # one model's capabilities: {"model": id}
    GENERATE = "generate"  # render + conform; variations as one batch
    VARIATION = "variation"  # select variation k of a request: served from the store when pre-rendered
    MORPH = "morph"  # a position between prompt A and B (models that can morph)
    CONFORM = "conform"  # re-conform a stored render to a new tempo / rate / bars / pitch, no model run
    CONFORM_FILE = "conform_file"  # fit the client's own audio (bytes in a binary frame, or an allowed path)
    CANCEL = "cancel"  # {"target": id} cancels a queued or running job
    HISTORY = "history"  # past renders, newest first
    RECALL = "recall"  # a past render by key, conformed
    STATUS = "status"  # queue, resident models, device, store
    PING = "ping"  # round trip; reply "pong"
    HEARTBEAT = "heartbeat"  # liveness, both ways, no reply expected


class ReplyType(StrEnum):
    """Message types the engine sends to a client."""

    REPLY = "reply"  # the answer to request ``id`` (``re`` names the request type)
    ACCEPTED = "accepted"  # a job was queued (``position`` in the queue)
    PROGRESS = "progress"  # ``fraction`` 0–1 of job ``id``
    ERROR = "error"  # request ``id`` failed: ``code``, ``message``, maybe ``field``/``value``/``accepted``
    PONG = "pong"
    HEARTBEAT = "heartbeat"


class EventTopic(StrEnum):
    """Topics on the PUB socket (frame 0 of each event)."""

    PROGRESS = "progress"
    READY = "ready"
    ERROR = "error"
    STATE = "state"
    MODEL = "model"  # loaded / evicted
    PRERENDER = "prerender"
    MOTION = "motion"  # a live motion stream's tempo; the session tempo when it follows the dancer


#: request types that run as jobs on the scheduler (get accepted/progress messages)
JOB_TYPES = frozenset({MessageType.GENERATE, MessageType.VARIATION, MessageType.MORPH, MessageType.CONFORM,
                       MessageType.CONFORM_FILE, MessageType.RECALL})


class ErrorCode(StrEnum):
    """Stable error codes on the wire (engine error classes map onto these by their ``code``)."""

    BAD_REQUEST = "bad_request"  # a field's value is outside what is accepted
    UNKNOWN_MODEL = "unknown_model"
    UNSUPPORTED = "unsupported"  # the model cannot do that (audio prompt, morph, kind, length)
    MODEL_LOAD_FAILED = "model_load_failed"
    BAD_AUDIO = "bad_audio"  # an audio prompt or frame is not readable audio
    OUT_OF_MEMORY = "out_of_memory"
    CANCELLED = "cancelled"
    STORE_FAILED = "store_failed"
    NOT_FOUND = "not_found"  # no render / job with that key or id
    MALFORMED = "malformed"  # not JSON, not an object, wrong frame layout, bad OSC
    TOO_LARGE = "too_large"  # a frame or packet over its limit
    UNKNOWN_TYPE = "unknown_type"
    VERSION_MISMATCH = "version_mismatch"
    BUSY = "busy"  # queue full
    INTERNAL = "internal"


#: HTTP-like numbers for hosts that prefer integers (the plugin's status line, OSC controllers)
ERROR_NUMBERS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.MALFORMED: 401,
    ErrorCode.UNKNOWN_TYPE: 402,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNKNOWN_MODEL: 405,
    ErrorCode.UNSUPPORTED: 406,
    ErrorCode.BAD_AUDIO: 407,
    ErrorCode.CANCELLED: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.VERSION_MISMATCH: 426,
    ErrorCode.BUSY: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.MODEL_LOAD_FAILED: 502,
    ErrorCode.STORE_FAILED: 503,
    ErrorCode.OUT_OF_MEMORY: 507,
}


# ---- request fields ------------------------------------------------------------------------------
# The header of a generate / variation / morph request carries GenerateRequest fields by these
# names, plus the conform and delivery fields below. Unknown fields are an error (a typo must not be
# silently ignored).

REQUEST_FIELDS: dict[str, str] = {
    "prompt": "str",
    "model": "str",
    "kind": "str",  # one-shot | loop | texture | kit
    "seed": "int",
    "variation": "int",
    "duration_s": "float",
    "bars": "float",
    "tempo_bpm": "float",
    "beats_per_bar": "int",
    "steps": "int",
    "guidance": "float",
    "negative_prompt": "str",
    "audio_prompt_strength": "float",
    "morph_prompt": "str",
    "morph_amount": "float",
    "morph_seed": "int",
    "start_s": "float",
    "task": "str",  # generate | continue | replace | transform | extract | add (on the audio prompt)
    "continue_bars": "float",  # continue: bars to add after the audio prompt
    "replace_from_bar": "float",  # replace: the bars to make anew, positions from 0 at the prompt's start
    "replace_to_bar": "float",
    "track": "str",  # extract / add: the part (drums, bass, ...)
}

#: the host's time signature as it shows it; with these, ``bars`` counts bars of that meter and the engine
#: works out its own bar (``beats_per_bar`` is then not sent: engine/host.py holds the rule)
HOST_FIELDS: dict[str, str] = {
    "meter_numerator": "int",
    "meter_denominator": "int",
}

CONFORM_FIELDS: dict[str, str] = {
    "sample_rate": "int",
    "pitch_semitones": "float",
    "root_note": "int",
    "conform_bars": "float",  # bars of the conformed file when it differs from the render's
    "loudness_lufs": "float",  # integrated loudness of loops and textures (default -14 LUFS or serve --loudness)
    "key": "str",  # the song's key pitched material is moved to: "Am", "F#", "Bbm", "A minor"...; "off" or "": none
}

DELIVERY_FIELDS: dict[str, str] = {
    "variations": "int",  # how many variations, rendered as one batch (default 1)
    "audio": "bool",  # attach WAV bytes as binary frames (default true over ZeroMQ)
    "prerender": "bool",  # queue neighbouring variations afterwards (default true)
    "audio_prompt_frame": "int",  # index of the binary frame holding the audio prompt (WAV/FLAC/AIFF bytes)
    "audio_prompt_path": "str",  # or a file on the engine's machine, inside a folder it allows (the inbox...)
    "audio_prompt_key": "str",  # or a stored render, by key
    "priority": "str",  # "interactive" (default) | "background"
}

#: fields of other request types
CONFORM_REQUEST_FIELDS: dict[str, str] = {"render_key": "str", "tempo_bpm": "float", "bars": "float",
                                           "beats_per_bar": "int", **HOST_FIELDS, **CONFORM_FIELDS, "audio": "bool"}
#: a client's own audio to fit to the song: the audio (one of the two), what the client knows of it (each
#: optional: the source's tempo, first downbeat and bars override the engine's estimates), the host's facts
CONFORM_FILE_FIELDS: dict[str, str] = {
    "audio_frame": "int",  # index of the binary frame holding the file (WAV/FLAC/AIFF/OGG/MP3 bytes)
    "audio_path": "str",  # or a file on the engine's machine, inside a folder it allows (the inbox...)
    "name": "str",  # what to call it (the file's name: history, the conformed file's name)
    "kind": "str",  # loop | one-shot | texture (default: a loop, or a one-shot for a short hit)
    "source_tempo_bpm": "float",  # the file's own tempo: not estimated
    "source_downbeat_s": "float",  # where its first downbeat is, seconds from its start
    "source_bars": "float",  # how many bars it holds (a prior for the tempo estimate)
    "tempo_bpm": "float", "bars": "float", "beats_per_bar": "int", **HOST_FIELDS,
    "sample_rate": "int", "pitch_semitones": "float", "root_note": "int", "loudness_lufs": "float", "key": "str",
    "warp": "str",  # how a loop is stretched: complex (default) | beats | auto (beats with no pitch heard)
    "audio": "bool", "priority": "str",
}
HISTORY_FIELDS: dict[str, str] = {"limit": "int", "offset": "int", "model": "str"}
#: a recall names its render by ``render_key``; ``key`` is the song's key as in every other request (a ``key``
#: of 6+ hex digits with no ``render_key`` is taken for the render's key, as clients before the song's key sent it)
RECALL_FIELDS: dict[str, str] = {**CONFORM_REQUEST_FIELDS}
CANCEL_FIELDS: dict[str, str] = {"target": "str"}
CAPABILITIES_FIELDS: dict[str, str] = {"model": "str"}
HELLO_FIELDS: dict[str, str] = {"client": "str", "client_version": "str"}

FIELDS_BY_TYPE: dict[MessageType, dict[str, str]] = {
    MessageType.HELLO: HELLO_FIELDS,
    MessageType.MODELS: {},
    MessageType.CAPABILITIES: CAPABILITIES_FIELDS,
    MessageType.GENERATE: {**REQUEST_FIELDS, **HOST_FIELDS, **CONFORM_FIELDS, **DELIVERY_FIELDS},
    MessageType.VARIATION: {**REQUEST_FIELDS, **HOST_FIELDS, **CONFORM_FIELDS, **DELIVERY_FIELDS},
    MessageType.MORPH: {**REQUEST_FIELDS, **HOST_FIELDS, **CONFORM_FIELDS, **DELIVERY_FIELDS},
    MessageType.CONFORM: CONFORM_REQUEST_FIELDS,
    MessageType.CONFORM_FILE: CONFORM_FILE_FIELDS,
    MessageType.CANCEL: CANCEL_FIELDS,
    MessageType.HISTORY: HISTORY_FIELDS,
    MessageType.RECALL: RECALL_FIELDS,
    MessageType.STATUS: {},
    MessageType.PING: {"token": "str"},
    MessageType.HEARTBEAT: {},
}

#: fields every header may carry whatever its type
COMMON_FIELDS = ("v", "type", "id")

#: what a sample in a reply's ``samples`` list holds (the order of the binary frames follows the list)
#: (``key``: the sample's musical key, canonical ("Am", "F#") or null when it has none; ``key_confidence`` 0–1 or
#: null; ``sample_key``: the conformed file's key in the store)
SAMPLE_FIELDS = ("sample_key", "render_key", "filename", "path", "kind", "tempo_bpm", "beats", "root_note", "key",
                 "key_confidence", "loop_start", "loop_end", "sample_rate", "channels", "frames", "variation", "part",
                 "cached", "frame")


class ProtocolError(Exception):
    """A message that breaks the protocol; ``code`` is its :class:`ErrorCode`."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# ---- header codec ----------------------------------------------------------------------------------


def encode_header(header: Mapping[str, Any]) -> bytes:
    """A header as compact UTF-8 JSON (``v`` added when missing). Raises ProtocolError when too large."""
    data = dict(header)
    data.setdefault("v", PROTOCOL_VERSION)
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"header of {len(raw)} bytes: at most {MAX_HEADER_BYTES} bytes")
    return raw


def decode_header(frame: bytes) -> dict[str, Any]:
    """Parse and check a header frame: JSON object, known version, a type, a bounded string id.

    Raises :class:`ProtocolError` (malformed, too_large, version_mismatch) naming what is wrong.
    The type is returned as sent; :func:`request_type` checks it against the request types.
    """
    if len(frame) > MAX_HEADER_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"header of {len(frame)} bytes: at most {MAX_HEADER_BYTES} bytes")
    try:
        text = bytes(frame).decode("utf-8")
        header = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"header is not UTF-8 JSON: {exc}") from exc
    except RecursionError:
        raise ProtocolError(ErrorCode.MALFORMED, "header nests lists or objects too deeply: expected a flat "
                                                 "JSON object of fields") from None
    if not isinstance(header, dict):
        raise ProtocolError(ErrorCode.MALFORMED, f"header is a JSON {type(header).__name__}: expected an object")
    version = header.get("v")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProtocolError(ErrorCode.MALFORMED, f"v={version!r}: expected the protocol version, an integer", "v")
    if not PROTOCOL_MIN_VERSION <= version <= PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.VERSION_MISMATCH,
            f"v={version}: this engine speaks protocol {PROTOCOL_MIN_VERSION}–{PROTOCOL_VERSION}",
            "v",
        )
    kind = header.get("type")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError(ErrorCode.MALFORMED, f"type={kind!r}: expected a message type string", "type")
    ident = header.get("id")
    if ident is not None and (not isinstance(ident, str) or not 0 < len(ident) <= MAX_ID_CHARS):
        raise ProtocolError(ErrorCode.MALFORMED, f"id={ident!r}: expected a string of 1–{MAX_ID_CHARS} characters",
                            "id")
    return header


def check_message_size(frame_bytes: Sequence[int], max_frame_bytes: int | None = None,
                       max_message_bytes: int | None = None) -> None:
    """Refuse a request of frames this long (the header's first): ProtocolError(too_large) naming
    the limit, for a binary frame over ``max_frame_bytes`` (default MAX_BINARY_FRAME_BYTES) or a
    message over ``max_message_bytes`` (default MAX_MESSAGE_BYTES). The client checks before it
    sends, the engine as a message arrives."""
    max_frame_bytes = MAX_BINARY_FRAME_BYTES if max_frame_bytes is None else max_frame_bytes
    max_message_bytes = MAX_MESSAGE_BYTES if max_message_bytes is None else max_message_bytes
    total = sum(frame_bytes)
    if total > max_message_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"a message of {total} bytes in {len(frame_bytes)} frames: at most "
                                                 f"{max_message_bytes} bytes (MAX_MESSAGE_BYTES: a header and one "
                                                 "audio prompt)")
    for index, size in enumerate(frame_bytes[1:], start=1):
        if size > max_frame_bytes:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"frame {index} holds {size} bytes: at most {max_frame_bytes} "
                                                     "(MAX_BINARY_FRAME_BYTES)")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def peek_id(frame: bytes) -> str | None:
    """The ``id`` of a header :func:`decode_header` refused (too large, not a version it speaks...), when it
    can still be read, so the error reply finds its request; None otherwise.

    Only the first ``MAX_HEADER_BYTES`` are read, one top-level member at a time up to the first that is
    cut off or not JSON: an id ahead of an oversized field is found, one behind it is not.
    """
    prefix = bytes(frame[:MAX_HEADER_BYTES])
    try:
        text = prefix.decode("utf-8")
    except UnicodeDecodeError as exc:  # cut inside a character, or not UTF-8 from there on
        text = prefix[:exc.start].decode("utf-8")
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    pos = _skip_space(text, 0)
    if not text.startswith("{", pos):
        return None
    found: Any = None
    pos += 1
    while True:
        pos = _skip_space(text, pos)
        if not text.startswith('"', pos):
            break
        try:
            name, pos = decoder.raw_decode(text, pos)  # a string: it starts with a quote
            pos = _skip_space(text, pos)
            if not text.startswith(":", pos):
                break
            pos = _skip_space(text, pos + 1)
            value, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            break
        if name == "id":
            found = value  # the last one, as json.loads takes it
        pos = _skip_space(text, pos)
        if not text.startswith(",", pos):
            break
        pos += 1
    return found if isinstance(found, str) and 0 < len(found) <= MAX_ID_CHARS else None


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def request_type(header: Mapping[str, Any]) -> MessageType:
    """The header's request type; raises ProtocolError(unknown_type) listing the known ones."""
    try:
        return MessageType(header["type"])
    except (KeyError, ValueError):
        known = ", ".join(t.value for t in MessageType)
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"type={header.get('type')!r}: expected one of {known}",
                            "type") from None


def check_fields(kind: MessageType, header: Mapping[str, Any]) -> dict[str, Any]:
    """The header's fields for ``kind``, each checked against its declared type.

    ints are accepted for float fields and integral floats for int fields (controllers and JSON
    encoders send either). Raises ProtocolError(bad_request) naming the field, the value and the
    accepted type, or the unknown field and the fields accepted.
    """
    spec = FIELDS_BY_TYPE[kind]
    out: dict[str, Any] = {}
    for name, value in header.items():
        if name in COMMON_FIELDS:
            continue
        expected = spec.get(name)
        if expected is None:
            accepted = ", ".join(sorted(spec)) or "no fields"
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{name} is not a field of {kind.value}: expected {accepted}",
                                name)
        if value is None:
            continue
        out[name] = coerce(name, value, expected)
    return out


def coerce(name: str, value: Any, expected: str) -> Any:
    """``value`` as the declared type (``str``, ``int``, ``float``, ``bool``) or ProtocolError."""
    if expected == "str":
        if isinstance(value, str):
            return value
    elif expected == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
    elif expected == "int":
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            return value
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
    elif expected == "float":
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value)):
            return float(value)
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise ProtocolError(ErrorCode.BAD_REQUEST, f"{name}={shown} is not accepted: expected {_TYPE_WORDS[expected]}",
                        name)


_TYPE_WORDS = {"str": "text", "int": "a whole number", "float": "a finite number", "bool": "true or false"}


def lenient(name: str, value: Any, expected: str) -> Any:
    """An OSC argument as ``expected`` the way controllers mean it, then checked by :func:`coerce`.

    Controllers send floats for ints and the other way round: a float for an int is rounded; an
    int for a float is widened; a number for text becomes text only for ids; booleans from
    True/False, 0/1. Raises ProtocolError naming the argument.
    """
    kind = expected.rstrip("?")
    if kind == "int" and isinstance(value, float) and value == value and abs(value) < 2**63:
        value = int(round(value))
    elif kind == "float" and isinstance(value, bool):
        value = float(value)
    elif kind == "str" and name == "id" and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(int(value)) if float(value).is_integer() else str(value)
    return coerce(name, value, kind)


def error_header(request_id: str | None, code: ErrorCode | str, message: str, re: str | None = None,
                 **details: Any) -> dict[str, Any]:
    """The header of an error reply."""
    code = ErrorCode(code) if code in ErrorCode._value2member_map_ else ErrorCode.INTERNAL
    header: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": ReplyType.ERROR.value, "id": request_id,
                              "code": code.value, "number": ERROR_NUMBERS[code], "message": message}
    if re is not None:
        header["re"] = re
    header.update({k: v for k, v in details.items() if v is not None})
    return header


# ---- OSC address table ------------------------------------------------------------------------------
# AbletonOSC-style: /loopbridge/<object>/<verb>[/<property>]. Replies go to the sender's host, at
# the port the sender registered (``/loopbridge/controller/register PORT``) or else the sender's
# own UDP source port. Ints are accepted where floats are expected and the other way round.

OSC_ROOT = "/loopbridge"
OSC_ERROR = f"{OSC_ROOT}/error"  # args: id (or ""), code, message


@dataclass(frozen=True)
class OscAddress:
    """One row of the OSC table: address, argument names with types, the reply address."""

    address: str
    args: tuple[tuple[str, str], ...]
    reply: str | None
    summary: str
    #: the address takes trailing key/value pairs (names from FIELDS_BY_TYPE[op])
    keyvalues: MessageType | None = None


#: session parameters a controller can set and get, with their types (also the feedback addresses); the
#: names are the request fields' own, so OSC and ZeroMQ speak one vocabulary
SESSION_PARAMS: dict[str, str] = {
    "prompt": "str",
    "morph_prompt": "str",
    "model": "str",
    "kind": "str",
    "seed": "int",
    "variation": "int",
    "morph_amount": "float",  # 0–1
    "steps": "int",  # diffusion steps; 0 = the model's default
    "bars": "float",  # bars of the session's meter
    "tempo_bpm": "float",
    "meter_numerator": "int",  # the song's time signature (4/4 until a controller says otherwise)
    "meter_denominator": "int",
    "beats_per_bar": "int",  # sets the meter to beats_per_bar/4; reads back the engine's bar in quarter notes
    "pitch_semitones": "float",
    "loudness_lufs": "float",  # integrated loudness of loops and textures (LUFS)
    "audio_prompt_strength": "float",  # 0–1
    "sample_rate": "int",
    "audio_prompt_path": "str",  # a file in a folder the engine allows (its inbox...) to vary ("" for none)
    "key": "str",  # the song's key pitched samples are moved to ("Am", "F#"...; "off": none), fed back canonical
}

#: the session's first names for some parameters, still accepted, answered and fed back under that
#: name too, so controllers laid out for them keep working
SESSION_ALIASES: dict[str, str] = {
    "tempo": "tempo_bpm",
    "pitch": "pitch_semitones",
    "quality": "steps",
    "morph": "morph_amount",
    "strength": "audio_prompt_strength",
    "audio_prompt": "audio_prompt_path",
}

#: session parameters that, when set, serve the matching sample at once (from the store when pre-rendered)
SESSION_SELECTING_PARAMS = frozenset({"variation", "morph_amount"})
#: session parameters that, when set, re-conform the current sample (no model run)
SESSION_CONFORMING_PARAMS = frozenset({"tempo_bpm", "pitch_semitones", "loudness_lufs", "sample_rate",
                                       "meter_numerator", "meter_denominator", "beats_per_bar", "key"})

OSC_ADDRESSES: tuple[OscAddress, ...] = (
    OscAddress(f"{OSC_ROOT}/engine/ping", (("token", "str?"),), f"{OSC_ROOT}/engine/pong", "round trip"),
    OscAddress(f"{OSC_ROOT}/engine/hello", (), f"{OSC_ROOT}/engine/hello",
               "reply: protocol version, engine version, the inbox folder"),
    OscAddress(f"{OSC_ROOT}/engine/status", (), f"{OSC_ROOT}/engine/status", "reply: status as one JSON string"),
    OscAddress(f"{OSC_ROOT}/models/list", (), f"{OSC_ROOT}/models/list", "reply: models as one JSON string"),
    OscAddress(f"{OSC_ROOT}/models/capabilities", (("model", "str"),), f"{OSC_ROOT}/models/capabilities",
               "reply: model id, capabilities as a JSON string"),
    OscAddress(f"{OSC_ROOT}/job/generate", (("id", "str"),), f"{OSC_ROOT}/job/sample",
               "generate; then key/value pairs of generate fields", MessageType.GENERATE),
    OscAddress(f"{OSC_ROOT}/job/variation", (("id", "str"),), f"{OSC_ROOT}/job/sample",
               "select a variation; key/value pairs as generate", MessageType.VARIATION),
    OscAddress(f"{OSC_ROOT}/job/morph", (("id", "str"),), f"{OSC_ROOT}/job/sample",
               "a morph position; key/value pairs as generate", MessageType.MORPH),
    OscAddress(f"{OSC_ROOT}/job/conform", (("id", "str"),), f"{OSC_ROOT}/job/sample",
               "re-conform a stored render; key/value pairs: render_key, tempo_bpm, bars, ...", MessageType.CONFORM),
    OscAddress(f"{OSC_ROOT}/job/conform_file", (("id", "str"), ("path", "str")), f"{OSC_ROOT}/job/sample",
               "fit a file in a folder the engine allows (its inbox...) to the song; key/value pairs: tempo_bpm, "
               "bars, kind, source_tempo_bpm, source_downbeat_s, ...", MessageType.CONFORM_FILE),
    OscAddress(f"{OSC_ROOT}/job/cancel", (("id", "str"),), f"{OSC_ROOT}/job/cancelled", "cancel a job"),
    OscAddress(f"{OSC_ROOT}/history/list", (("limit", "int?"), ("offset", "int?")), f"{OSC_ROOT}/history/list",
               "reply: history as one JSON string"),
    OscAddress(f"{OSC_ROOT}/history/recall", (("id", "str"), ("render_key", "str")), f"{OSC_ROOT}/job/sample",
               "recall a render by key (then key/value conform fields)", MessageType.RECALL),
    OscAddress(f"{OSC_ROOT}/controller/register", (("port", "int?"),), f"{OSC_ROOT}/controller/registered",
               "send this sender's replies, and feedback, to PORT on its host (default: its source port)"),
    OscAddress(f"{OSC_ROOT}/controller/unregister", (("port", "int?"),), f"{OSC_ROOT}/controller/unregistered",
               "forget this sender's registration and PORT's on its host"),
    OscAddress(f"{OSC_ROOT}/motion/joints", (("values", "float*"),), f"{OSC_ROOT}/motion/tempo",
               "one frame of joint positions: x y z per joint, after an optional time in seconds"),
    OscAddress(f"{OSC_ROOT}/motion/accel", (("values", "float*"),), f"{OSC_ROOT}/motion/tempo",
               "one accelerometer frame: x y z, after an optional time in seconds"),
    OscAddress(f"{OSC_ROOT}/motion/reset", (), f"{OSC_ROOT}/motion/tempo", "forget the motion received so far"),
    OscAddress(f"{OSC_ROOT}/motion/get/tempo", (), f"{OSC_ROOT}/motion/tempo", "reply: the motion's tempo now"),
    OscAddress(f"{OSC_ROOT}/motion/set/follow", (("value", "int"),), f"{OSC_ROOT}/motion/follow",
               "1: the session tempo follows the dancer (the default); 0: it does not"),
    OscAddress(f"{OSC_ROOT}/session/generate", (), f"{OSC_ROOT}/session/sample",
               "generate from the session's parameters"),
    OscAddress(f"{OSC_ROOT}/session/state", (), f"{OSC_ROOT}/session/state",
               "reply: every session parameter, one message each, then the current sample"),
    *(
        OscAddress(f"{OSC_ROOT}/session/set/{name}", (("value", kind),), f"{OSC_ROOT}/session/{name}",
                   f"set the session's {name}; feedback to every registered controller")
        for name, kind in SESSION_PARAMS.items()
    ),
    *(
        OscAddress(f"{OSC_ROOT}/session/get/{name}", (), f"{OSC_ROOT}/session/{name}",
                   f"reply: the session's {name}")
        for name in SESSION_PARAMS
    ),
    *(
        OscAddress(f"{OSC_ROOT}/session/set/{alias}", (("value", SESSION_PARAMS[name]),),
                   f"{OSC_ROOT}/session/{alias}", f"as /session/set/{name} (its first name)")
        for alias, name in SESSION_ALIASES.items()
    ),
    *(
        OscAddress(f"{OSC_ROOT}/session/get/{alias}", (), f"{OSC_ROOT}/session/{alias}",
                   f"as /session/get/{name} (its first name)")
        for alias, name in SESSION_ALIASES.items()
    ),
)

#: messages the engine sends over OSC (replies, job progress, feedback), with their arguments
OSC_OUTGOING: dict[str, tuple[str, ...]] = {
    f"{OSC_ROOT}/engine/pong": ("token",),
    f"{OSC_ROOT}/engine/hello": ("protocol_version", "engine_version", "inbox"),
    f"{OSC_ROOT}/engine/status": ("json",),
    f"{OSC_ROOT}/models/list": ("json",),
    f"{OSC_ROOT}/models/capabilities": ("model", "json"),
    f"{OSC_ROOT}/job/accepted": ("id", "position"),
    f"{OSC_ROOT}/job/progress": ("id", "fraction"),
    # one per sample: id, index, path, kind, tempo_bpm, beats, root_note (-1: none), variation, render_key, key
    # ("Am", "F#"; "" for none), key_confidence (0–1; -1 with no key)
    f"{OSC_ROOT}/job/sample": ("id", "index", "path", "kind", "tempo_bpm", "beats", "root_note", "variation",
                               "render_key", "key", "key_confidence"),
    # what could not be made exactly as asked (a meter's length out of range, a prompt a model does not take)
    f"{OSC_ROOT}/job/note": ("id", "text"),
    f"{OSC_ROOT}/job/done": ("id", "count"),
    f"{OSC_ROOT}/job/cancelled": ("id",),
    f"{OSC_ROOT}/history/list": ("json",),
    f"{OSC_ROOT}/controller/registered": ("host", "port"),
    f"{OSC_ROOT}/controller/unregistered": ("host", "port"),
    f"{OSC_ROOT}/session/sample": ("path", "kind", "tempo_bpm", "beats", "root_note", "variation", "render_key",
                                   "key", "key_confidence"),
    f"{OSC_ROOT}/session/progress": ("fraction",),
    f"{OSC_ROOT}/session/status": ("text",),
    f"{OSC_ROOT}/session/state": (),  # ends the reply to /session/state: every parameter and the sample were sent
    # the motion's tempo (0 while unknown), its confidence 0–1, the beat phase now 0–1, 1 when the session follows it
    f"{OSC_ROOT}/motion/tempo": ("bpm", "confidence", "phase", "following"),
    f"{OSC_ROOT}/motion/follow": ("value",),
    **{f"{OSC_ROOT}/session/{name}": ("value",) for name in [*SESSION_PARAMS, *SESSION_ALIASES]},
    OSC_ERROR: ("id", "code", "message"),
}


def osc_table() -> dict[str, OscAddress]:
    """The incoming OSC addresses, by address."""
    return {entry.address: entry for entry in OSC_ADDRESSES}


def osc_keyvalues(op: MessageType, args: list[Any]) -> dict[str, Any]:
    """Trailing OSC ``key value key value ...`` arguments as checked fields of ``op``.

    Raises ProtocolError for an odd count, a non-text key, an unknown key or a bad value.
    """
    if len(args) % 2:
        raise ProtocolError(ErrorCode.MALFORMED, f"{len(args)} key/value arguments: expected pairs")
    header: dict[str, Any] = {}
    for key, value in zip(args[::2], args[1::2], strict=True):
        if not isinstance(key, str):
            raise ProtocolError(ErrorCode.MALFORMED, f"key {key!r}: expected a field name")
        header[key] = value
    return check_fields(op, header)
