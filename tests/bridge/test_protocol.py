"""The protocol module: its codec on good, garbage, empty and truncated input, and PROTOCOL.md in line with it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from loopbridge.bridge import protocol as p
from loopbridge.bridge.protocol import ErrorCode, MessageType, ProtocolError

DOC = Path(p.__file__).with_name("PROTOCOL.md").read_text(encoding="utf-8")


# ---- the codec -------------------------------------------------------------------------------------------


def test_header_round_trip() -> None:
    raw = p.encode_header({"type": "ping", "id": "x", "token": "ünïcode"})
    assert p.decode_header(raw) == {"v": p.PROTOCOL_VERSION, "type": "ping", "id": "x", "token": "ünïcode"}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", ErrorCode.MALFORMED),
        (b"\xff\xfe", ErrorCode.MALFORMED),
        (b"{", ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ping","id":"x"'[:-5], ErrorCode.MALFORMED),
        (b"null", ErrorCode.MALFORMED),
        (b'"text"', ErrorCode.MALFORMED),
        (b'{"type":"ping"}', ErrorCode.MALFORMED),
        (b'{"v":true,"type":"ping"}', ErrorCode.MALFORMED),
        (b'{"v":1.0,"type":"ping"}', ErrorCode.MALFORMED),
        (b'{"v":0,"type":"ping"}', ErrorCode.VERSION_MISMATCH),
        (b'{"v":2,"type":"ping"}', ErrorCode.VERSION_MISMATCH),
        (b'{"v":1}', ErrorCode.MALFORMED),
        (b'{"v":1,"type":""}', ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ping","id":7}', ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ping","id":""}', ErrorCode.MALFORMED),
        (json.dumps({"v": 1, "type": "ping", "id": "x" * (p.MAX_ID_CHARS + 1)}).encode(), ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ping","token":NaN}', ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ping","token":Infinity}', ErrorCode.MALFORMED),
        (b" " * (p.MAX_HEADER_BYTES + 1), ErrorCode.TOO_LARGE),
        (b'{"v":1,"type":"ping","id":"x","token":' + b"[" * 20000 + b"]" * 20000 + b"}", ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ping","id":"x","token":' + b'{"a":' * 10000 + b"1" + b"}" * 10001, ErrorCode.MALFORMED),
    ],
)
def test_bad_headers(raw: bytes, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as caught:
        p.decode_header(raw)
    assert caught.value.code is code and caught.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"v":99,"type":"ping","id":"a"}', "a"),
        (b' {\n "v" : 1 , "id" : "b" ', "b"),  # cut short after the id
        (json.dumps({"v": 1, "type": "ping", "id": "c", "token": "x" * 10_000_000}).encode(), "c"),
        (json.dumps({"v": 1, "type": "ping", "token": "x" * p.MAX_HEADER_BYTES, "id": "d"}).encode(), None),
        (b'{"v":1,"id":"e","token":' + b"[" * 30000, "e"),  # deep, and cut
        (b'{"id":"f","id":"g"}', "g"),  # the last, as json.loads reads it
        ('{"id":"ü","token":"'.encode() + "ü".encode()[:1], "ü"),  # cut inside a character
        (b'{"id":7}', None),
        (b'{"id":""}', None),
        (json.dumps({"id": "x" * (p.MAX_ID_CHARS + 1)}).encode(), None),
        (b"[1, 2]", None),
        (b"", None),
        (b"\xff\xfe", None),
        (b'{"v":1,"id"', None),
    ],
)
def test_the_id_of_a_refused_header_is_read_back_when_it_can_be(raw: bytes, expected: str | None) -> None:
    assert p.peek_id(raw) == expected


def test_encoding_refuses_what_the_other_side_could_not_read() -> None:
    with pytest.raises(ProtocolError) as caught:
        p.encode_header({"type": "ping", "token": "x" * p.MAX_HEADER_BYTES})
    assert caught.value.code is ErrorCode.TOO_LARGE
    with pytest.raises(ValueError):
        p.encode_header({"type": "ping", "token": float("nan")})


def test_request_types_and_fields() -> None:
    assert p.request_type({"type": "generate"}) is MessageType.GENERATE
    with pytest.raises(ProtocolError) as caught:
        p.request_type({"type": "dance"})
    assert caught.value.code is ErrorCode.UNKNOWN_TYPE and "generate" in caught.value.message
    fields = p.check_fields(MessageType.GENERATE, {"v": 1, "type": "generate", "id": "a", "seed": 3.0,
                                                   "tempo_bpm": 120, "audio": 1, "prompt": None})
    assert fields == {"seed": 3, "tempo_bpm": 120.0, "audio": True}
    for header, field in (({"seed": 3.5}, "seed"), ({"tempo_bpm": "fast"}, "tempo_bpm"), ({"audio": 2}, "audio"),
                          ({"seed": True}, "seed"), ({"colour": "red"}, "colour"), ({"prompt": 5}, "prompt")):
        with pytest.raises(ProtocolError) as caught:
            p.check_fields(MessageType.GENERATE, header)
        assert caught.value.code is ErrorCode.BAD_REQUEST and caught.value.field == field


def test_osc_key_values() -> None:
    assert p.osc_keyvalues(MessageType.GENERATE, ["seed", 4, "prompt", "kick"]) == {"seed": 4, "prompt": "kick"}
    for args, code in ((["seed"], ErrorCode.MALFORMED), ([3, 4], ErrorCode.MALFORMED),
                       (["nope", 1], ErrorCode.BAD_REQUEST)):
        with pytest.raises(ProtocolError) as caught:
            p.osc_keyvalues(MessageType.GENERATE, args)
        assert caught.value.code is code


def test_error_header_numbers_every_code() -> None:
    assert set(p.ERROR_NUMBERS) == set(ErrorCode)
    header = p.error_header("a", ErrorCode.NOT_FOUND, "gone", re="recall", field="key")
    assert header["number"] == 404 and header["re"] == "recall" and header["field"] == "key"
    assert p.error_header(None, "made-up", "x")["code"] == "internal"


MIB = 1024 * 1024


def test_the_size_limits_follow_from_what_the_engine_accepts() -> None:
    """A request's one binary frame is an audio prompt's file, a reply's are conformed WAV files: the limits
    are the largest of each the engine takes or makes, with 1 MiB for a file's chunks, and a whole request
    is a header and one prompt (the limits allowed 64 frames of 256 MiB in one message before)."""
    import numpy as np
    from loopbridge.engine.conform.wavfile import AcidChunk, SmplChunk, SmplLoop, write_wav_bytes
    from loopbridge.engine.request import AUDIO_PROMPT_MAX_SAMPLES, CONFORMED_MAX_SAMPLES

    assert p.MAX_BINARY_FRAME_BYTES == AUDIO_PROMPT_MAX_SAMPLES * 4 + MIB  # as 32-bit samples
    assert p.MAX_MESSAGE_BYTES == p.MAX_HEADER_BYTES + p.MAX_BINARY_FRAME_BYTES < 256 * MIB
    assert p.MAX_REPLY_FRAME_BYTES == CONFORMED_MAX_SAMPLES * 3 + MIB  # 24-bit PCM
    tags = (AcidChunk(0, 60, 4, 4, 4, 120.0), SmplChunk(60, 5208, (SmplLoop(0, 0),)))
    assert len(write_wav_bytes(np.zeros((2, 1), np.float32), 192000, *tags)) - 2 * 3 < MIB


@pytest.mark.parametrize(
    ("sizes", "says"),
    [
        ([], None),
        ([100], None),
        ([100, p.MAX_BINARY_FRAME_BYTES], None),
        ([p.MAX_HEADER_BYTES, p.MAX_BINARY_FRAME_BYTES], None),
        ([100, p.MAX_BINARY_FRAME_BYTES + 1], "frame 1 holds"),
        ([100, 10, p.MAX_BINARY_FRAME_BYTES // 2, p.MAX_BINARY_FRAME_BYTES // 2 + 70_000], "MAX_MESSAGE_BYTES"),
        ([100, *[200_000_000] * 4], f"a message of {100 + 800_000_000} bytes in 5 frames: at most "
                                    f"{p.MAX_MESSAGE_BYTES} bytes"),
    ],
)
def test_message_sizes(sizes: list[int], says: str | None) -> None:
    if says is None:
        p.check_message_size(sizes)
        return
    with pytest.raises(ProtocolError, match=re.escape(says)) as caught:
        p.check_message_size(sizes)
    assert caught.value.code is ErrorCode.TOO_LARGE


# ---- PROTOCOL.md says the same ------------------------------------------------------------------------------


def _section(title: str) -> str:
    """The text under a heading (## or ###) up to the next heading."""
    match = re.search(rf"^#+ {re.escape(title)}\s*$", DOC, re.MULTILINE)
    assert match, f"PROTOCOL.md has no section {title!r}"
    rest = DOC[match.end():]
    end = re.search(r"^#+ ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def _rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append(cells)
    return rows[1:]  # the header row


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def _first(text: str) -> list[str]:
    return [_ticked(row[0])[0] for row in _rows(text)]


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def test_constants_are_documented_with_their_values() -> None:
    rows = _rows(_section("Constants"))
    documented = {_ticked(row[0])[0]: _value(row[1]) for row in rows}
    names = {n for n in dir(p) if n.isupper() and isinstance(getattr(p, n), int | float | str)
             and (n.startswith(("DEFAULT_", "MAX_", "HEARTBEAT_", "RECONNECT_", "REQUEST_", "PROTOCOL_")))}
    names -= {"DEFAULT_ZMQ_HOST", "DEFAULT_ZMQ_PORT", "DEFAULT_EVENTS_PORT"}  # parts of the endpoints
    assert set(documented) == names
    for name, value in documented.items():
        assert getattr(p, name) == value, name


def test_message_types_replies_events_and_errors_match() -> None:
    assert _first(_section("Message types")) == [t.value for t in MessageType]
    assert _first(_section("Replies")) == [t.value for t in p.ReplyType]
    assert _first(_section("Events")) == [t.value for t in p.EventTopic]
    assert _first(_section("Samples")) == list(p.SAMPLE_FIELDS)
    assert _first(_section("Fields of every header")) == list(p.COMMON_FIELDS)
    errors = {_ticked(row[0])[0]: int(row[1]) for row in _rows(_section("Error codes"))}
    assert errors == {code.value: number for code, number in p.ERROR_NUMBERS.items()}


def test_every_message_types_fields_are_documented_with_their_types() -> None:
    covered: list[str] = []
    for heading in re.findall(r"^### (Fields of .*)$", DOC, re.MULTILINE):
        if heading == "Fields of every header":
            continue
        types = _ticked(heading)
        covered += types
        rows = _rows(_section(heading))
        documented = {_ticked(row[0])[0]: row[1] for row in rows}
        for name in types:
            assert documented == p.FIELDS_BY_TYPE[MessageType(name)], f"fields of {name}"
    assert sorted(covered) == sorted(t.value for t in MessageType), "each type's fields documented once"


def _expand(address: str, names: list[str]) -> list[str]:
    return [address.replace("<name>", n) for n in names] if "<name>" in address else [address]


def test_osc_addresses_their_arguments_and_replies_match() -> None:
    params = [*p.SESSION_PARAMS, *p.SESSION_ALIASES]
    table = p.osc_table()
    seen = set()
    for row in _rows(_section("Incoming addresses")):
        address = _ticked(row[0])[0]
        args = [a for a in _ticked(row[1]) if ":" in a]
        keyvalues = re.search(r"key/value pairs of `(\w+)`", row[1])
        replies = _ticked(row[2])
        for concrete, reply in zip(_expand(address, params), _expand(replies[0], params), strict=True):
            entry = table[concrete]
            seen.add(concrete)
            assert entry.reply == reply, concrete
            if "<name>" not in address:
                assert args == [f"{n}:{k}" for n, k in entry.args], concrete
            else:
                assert len(entry.args) == (1 if "/set/" in concrete else 0), concrete
            assert (keyvalues.group(1) if keyvalues else None) == (entry.keyvalues.value if entry.keyvalues else None)
    assert seen == set(table)


def test_session_parameters_and_outgoing_messages_match() -> None:
    documented = {_ticked(row[0])[0]: row[1] for row in _rows(_section("Session parameters"))}
    assert documented == p.SESSION_PARAMS
    first_names = dict(re.findall(r"`(\w+)` \(`(\w+)`\)", _section("Session parameters")))
    assert first_names == p.SESSION_ALIASES
    outgoing = {}
    for row in _rows(_section("Messages from the engine")):
        for concrete in _expand(_ticked(row[0])[0], [*p.SESSION_PARAMS, *p.SESSION_ALIASES]):
            outgoing[concrete] = tuple(_ticked(row[1]))
    assert outgoing == p.OSC_OUTGOING


def test_every_address_named_anywhere_in_the_document_exists() -> None:
    for address in set(re.findall(r"`(/loopbridge[^`\s]*)`", DOC)):
        if "<name>" in address:
            assert all(_known(a) for a in _expand(address, [*p.SESSION_PARAMS, *p.SESSION_ALIASES])), address
        elif address not in ("/loopbridge/...", "/loopbridge/<object>/<verb>[/<property>]"):
            assert _known(address), address


def _known(address: str) -> bool:
    """Whether ``address`` is an address of this protocol, incoming or outgoing."""
    return address in p.osc_table() or address in p.OSC_OUTGOING
