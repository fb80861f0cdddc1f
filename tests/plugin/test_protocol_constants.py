"""The plugin's C++ copy of the protocol constants (plugin/source/Protocol.h) matches bridge/protocol.py
(and, for the engine's defaults and limits it quotes, engine/request.py).

The header is parsed as text (no compiler needed): ``inline constexpr <type> kName = <value>;`` lines
inside named namespaces, and the ``{"code", number},`` rows of the error table.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from loopbridge.bridge import protocol

HEADER = Path(__file__).resolve().parents[2] / "plugin" / "source" / "Protocol.h"

_CONSTANT = re.compile(r"inline\s+constexpr\s+[\w:\s\*]+?\s+(k\w+)\s*=\s*(.+?);")
_NAMESPACE = re.compile(r"^namespace\s+(\w+)\s*$")
_ERROR_ROW = re.compile(r'\{\s*"(\w+)"\s*,\s*(\d+)\s*\}')


def _evaluate(expression: str) -> object:
    expression = expression.strip()
    if expression.startswith('"'):
        return expression.strip('"')
    if not re.fullmatch(r"[\d\s\.\*\+\-\(\)]+", expression):
        raise ValueError(f"cannot read the C++ value {expression!r}")
    return eval(expression, {"__builtins__": {}})  # arithmetic on literals only, checked above


def _parse() -> tuple[dict[str, dict[str, object]], dict[str, int]]:
    text = HEADER.read_text(encoding="utf-8")
    constants: dict[str, dict[str, object]] = {}
    namespace = ""
    for line in text.splitlines():
        stripped = line.split("//", 1)[0].strip()
        opened = _NAMESPACE.match(stripped)
        if opened and opened.group(1) != "loopbridge":
            namespace = opened.group(1)
            continue
        if stripped.startswith("} // namespace") or line.startswith("} // namespace"):
            namespace = ""
        found = _CONSTANT.search(stripped)
        if found:
            constants.setdefault(namespace, {})[found.group(1)] = _evaluate(found.group(2))
    table_start = text.index("kErrorCodes[]")
    table = text[table_start : text.index("};", table_start)]
    errors = {code: int(number) for code, number in _ERROR_ROW.findall(table)}
    return constants, errors


CONSTANTS, ERRORS = _parse()


def test_header_was_read() -> None:
    assert {"", "type", "reply", "field", "sample_field", "kind"} <= set(CONSTANTS), sorted(CONSTANTS)
    assert len(ERRORS) >= 10


@pytest.mark.parametrize(
    ("cpp_name", "python_value"),
    [
        ("kProtocolVersion", protocol.PROTOCOL_VERSION),
        ("kProtocolMinVersion", protocol.PROTOCOL_MIN_VERSION),
        ("kDefaultZmqHost", protocol.DEFAULT_ZMQ_HOST),
        ("kDefaultZmqPort", protocol.DEFAULT_ZMQ_PORT),
        ("kDefaultEventsPort", protocol.DEFAULT_EVENTS_PORT),
        ("kHeartbeatIntervalS", protocol.HEARTBEAT_INTERVAL_S),
        ("kHeartbeatLiveness", protocol.HEARTBEAT_LIVENESS),
        ("kReconnectInitialS", protocol.RECONNECT_INITIAL_S),
        ("kReconnectMaxS", protocol.RECONNECT_MAX_S),
        ("kRequestTimeoutS", protocol.REQUEST_TIMEOUT_S),
        ("kMaxHeaderBytes", protocol.MAX_HEADER_BYTES),
        ("kMaxBinaryFrameBytes", protocol.MAX_BINARY_FRAME_BYTES),
        ("kMaxFrames", protocol.MAX_FRAMES),
        ("kMaxMessageBytes", protocol.MAX_MESSAGE_BYTES),
        ("kMaxReplyFrameBytes", protocol.MAX_REPLY_FRAME_BYTES),
        ("kMaxIdChars", protocol.MAX_ID_CHARS),
    ],
)
def test_scalar_constants_match(cpp_name: str, python_value: object) -> None:
    assert cpp_name in CONSTANTS[""], f"{cpp_name} missing from {HEADER.name}"
    cpp_value = CONSTANTS[""][cpp_name]
    assert cpp_value == python_value, f"{cpp_name}: C++ {cpp_value!r}, Python {python_value!r}"


@pytest.mark.parametrize(
    ("cpp_name", "python_name"),
    [
        ("kDefaultSampleRate", "DEFAULT_SAMPLE_RATE"),
        ("kRandomSeedMax", "RANDOM_SEED_MAX"),
        ("kDefaultLoudnessLufs", "DEFAULT_LOUDNESS_LUFS"),
    ],
)
def test_engine_defaults_and_limits_match(cpp_name: str, python_name: str) -> None:
    from loopbridge.engine import request

    assert cpp_name in CONSTANTS[""], f"{cpp_name} missing from {HEADER.name}"
    cpp_value, python_value = CONSTANTS[""][cpp_name], getattr(request, python_name)
    assert cpp_value == python_value, f"{cpp_name}: C++ {cpp_value!r}, engine/request.py {python_name} {python_value!r}"


def test_loudness_range_matches() -> None:
    from loopbridge.engine import request

    cpp_range = (CONSTANTS[""]["kLoudnessMinLufs"], CONSTANTS[""]["kLoudnessMaxLufs"])
    assert cpp_range == request.LOUDNESS_RANGE_LUFS, f"C++ {cpp_range}, engine/request.py {request.LOUDNESS_RANGE_LUFS}"


def test_message_types_match() -> None:
    assert set(CONSTANTS["type"].values()) == {t.value for t in protocol.MessageType}


def test_reply_types_match() -> None:
    assert set(CONSTANTS["reply"].values()) == {t.value for t in protocol.ReplyType}


def test_error_codes_and_numbers_match() -> None:
    expected = {code.value: number for code, number in protocol.ERROR_NUMBERS.items()}
    assert ERRORS == expected
    assert set(ERRORS) == {code.value for code in protocol.ErrorCode}


def test_request_field_names_are_protocol_fields() -> None:
    """Every field name the plugin writes is a field of the protocol (of some message type)."""
    known: set[str] = set(protocol.COMMON_FIELDS)
    for fields in protocol.FIELDS_BY_TYPE.values():
        known |= set(fields)
    request_side = CONSTANTS["field"]
    # bridge/protocol.py has no table of reply fields; these are the ones the plugin reads
    reply_only = {"re", "samples", "code", "number", "message", "fraction", "position", "field", "notes",
                  "tempo_confidence", "low_confidence"}
    unknown = {name: value for name, value in request_side.items() if value not in known and value not in reply_only}
    assert not unknown, f"fields in Protocol.h that bridge/protocol.py does not define: {unknown}"


@pytest.mark.parametrize("message_type", [protocol.MessageType.GENERATE, protocol.MessageType.VARIATION,
                                          protocol.MessageType.MORPH])
def test_fields_the_plugin_sends_fit_their_message_types(message_type: protocol.MessageType) -> None:
    fields = CONSTANTS["field"]
    accepted = protocol.FIELDS_BY_TYPE[message_type]
    for name in ("kPrompt", "kModel", "kKind", "kSeed", "kVariation", "kBars", "kTempoBpm", "kMeterNumerator",
                 "kMeterDenominator", "kSteps", "kAudioPromptStrength", "kMorphPrompt", "kMorphAmount", "kSampleRate",
                 "kPitchSemitones", "kLoudnessLufs", "kKey", "kVariations", "kAudio", "kAudioPromptFrame", "kPriority"):
        assert fields[name] in accepted, f"{name}={fields[name]!r} is not a {message_type.value} field"


def test_fields_of_the_other_requests_the_plugin_sends() -> None:
    fields = CONSTANTS["field"]
    conform = protocol.FIELDS_BY_TYPE[protocol.MessageType.CONFORM]
    for name in ("kRenderKey", "kTempoBpm", "kBars", "kMeterNumerator", "kMeterDenominator", "kSampleRate",
                 "kPitchSemitones", "kLoudnessLufs", "kKey", "kAudio"):
        assert fields[name] in conform, f"{name}={fields[name]!r} is not a conform field"
    conform_file = protocol.FIELDS_BY_TYPE[protocol.MessageType.CONFORM_FILE]
    for name in ("kAudioFrame", "kName", "kTempoBpm", "kBars", "kMeterNumerator", "kMeterDenominator", "kSampleRate",
                 "kKind", "kLoudnessLufs", "kKey", "kAudio"):
        assert fields[name] in conform_file, f"{name}={fields[name]!r} is not a conform_file field"
    assert fields["kTarget"] in protocol.FIELDS_BY_TYPE[protocol.MessageType.CANCEL]
    assert {fields["kClient"], fields["kClientVersion"]} <= set(protocol.FIELDS_BY_TYPE[protocol.MessageType.HELLO])
    assert fields["kToken"] in protocol.FIELDS_BY_TYPE[protocol.MessageType.PING]
    assert (fields["kVersion"], fields["kType"], fields["kId"]) == protocol.COMMON_FIELDS


def test_the_host_meter_fields_are_the_protocols() -> None:
    """The plugin sends the host's time signature by the protocol's names, and never beats_per_bar
    (the engine works that out from the meter and refuses both together)."""
    fields = CONSTANTS["field"]
    assert (fields["kMeterNumerator"], fields["kMeterDenominator"]) == tuple(protocol.HOST_FIELDS)
    assert "beats_per_bar" not in fields.values()


def test_sample_fields_match() -> None:
    sample_fields = set(CONSTANTS["sample_field"].values())
    assert sample_fields <= set(protocol.SAMPLE_FIELDS), sample_fields - set(protocol.SAMPLE_FIELDS)


def test_key_names_are_the_engines() -> None:
    """The plugin's Key choices name keys as the engine spells them: its major keys from C, then its minor keys."""
    from loopbridge.engine.conform import key

    text = HEADER.read_text(encoding="utf-8")
    table = re.search(r"kNames\[\]\s*=\s*\{([^}]*)\}", text)
    assert table is not None, "no key::kNames in Protocol.h"
    names = re.findall(r'"([^"]+)"', table.group(1))
    assert names == list(key.MAJOR_NAMES) + list(key.MINOR_NAMES)
    assert CONSTANTS["key"]["kOff"] in key.NO_KEY_WORDS
    for name in names:
        assert key.key_name(name) == name, f"{name} is not the engine's own spelling"


def test_priority_values_are_the_documented_ones() -> None:
    # protocol.py documents the values beside the field: "interactive" (default) | "background"
    source = Path(protocol.__file__).read_text(encoding="utf-8")
    documented = re.search(r'"priority": "str",\s*#(.*)', source)
    assert documented is not None
    for value in CONSTANTS["priority"].values():
        assert f'"{value}"' in documented.group(1), value


def test_kind_values_are_engine_kinds() -> None:
    from loopbridge.engine.request import Kind

    assert set(CONSTANTS["kind"].values()) <= {k.value for k in Kind}
