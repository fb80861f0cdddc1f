"""Bad input, property-based: malformed, truncated and oversized ZeroMQ frames and OSC packets.

Each case is sent over a real socket; the engine must answer it with well-formed messages (an
error, or the reply a valid request deserves) or drop it, and then still answer a ping. The
engine's default model does not exist here, so a fuzzed request that happens to be valid never
starts a render: the point is the transport, and 1,400 cases take seconds.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopbridge.bridge import protocol as p
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from tests.bridge.conftest import Served, start_served, stop_served

ZMQ_CASES = 700
OSC_CASES = 700
OSC_LIMIT = 4096  # this engine's OSC packet limit, so oversized packets can be sent over UDP at all
REPLY_TYPES = {t.value for t in p.ReplyType}


@pytest.fixture(scope="module")
def fuzzed(tiny_dd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_served(tiny_dd_root, tmp_path_factory.mktemp("fuzz"), default_model="no-such-model",
                          osc_options={"max_packet_bytes": OSC_LIMIT})
    yield served
    assert served.service.door.queue()["counters"]["rendered"] == 0
    stop_served(served)


# ---- ZeroMQ -------------------------------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
known_fields = [*sorted({f for fields in p.FIELDS_BY_TYPE.values() for f in fields}), "junk"]
header_like = st.builds(
    lambda base, extra: {**extra, **base},
    st.fixed_dictionaries({
        "v": st.sampled_from([1, 1, 1, 0, 2, "1", None, 1.5, True]),
        "type": st.sampled_from([t.value for t in p.MessageType] + ["", "GENERATE", "reply", "error", "x" * 80]),
        "id": st.one_of(st.text(min_size=1, max_size=70), st.integers(), st.none()),
    }),
    st.dictionaries(st.sampled_from(known_fields), scalars | json_values, max_size=4),
)


@st.composite
def zmq_messages(draw: st.DrawFn) -> list[bytes]:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        header = draw(st.binary(max_size=300))
    elif choice == 1:
        header = json.dumps(draw(json_values)).encode()
    elif choice in (2, 3):
        header = json.dumps(draw(header_like), allow_nan=False).encode()
    elif choice == 4:  # a valid header cut short
        full = json.dumps(draw(header_like)).encode()
        header = full[: draw(st.integers(0, max(0, len(full) - 1)))]
    else:  # oversized header
        header = json.dumps({"v": 1, "type": "ping", "id": "big", "token": "x" * (p.MAX_HEADER_BYTES + 10)}).encode()
    frames = draw(st.lists(st.binary(max_size=64), max_size=draw(st.sampled_from([0, 2, 70]))))
    return [header, *frames]


@pytest.fixture(scope="module")
def dealer(fuzzed: Served) -> Iterator[zmq.Socket]:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(fuzzed.zmq.endpoint)
    yield sock
    sock.close(0)
    ctx.term()


def _ping_through_zmq(sock: zmq.Socket, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Send a ping; return every other message that came before its pong (all must be valid headers)."""
    token = uuid.uuid4().hex
    sock.send(p.encode_header({"type": "ping", "id": "probe", "token": token}))
    others = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not sock.poll(int(max(0.0, deadline - time.monotonic()) * 1000)):
            break
        frames = sock.recv_multipart()
        if len(frames) > 1 and frames[0] == b"":
            frames = frames[1:]  # the engine mirrors an empty first frame (a REQ delimiter) it was sent
        header = p.decode_header(frames[0])  # whatever the engine sends is a valid header
        if header["type"] == "pong" and header.get("token") == token:
            return others
        others.append(header)
    raise AssertionError(f"the engine stopped answering; last messages: {others[-3:]}")


@settings(max_examples=ZMQ_CASES, deadline=None, suppress_health_check=list(HealthCheck))
@given(message=zmq_messages())
def test_malformed_zmq_messages_get_an_error_or_are_dropped(dealer: zmq.Socket, message: list[bytes]) -> None:
    dealer.send_multipart(message)
    for header in _ping_through_zmq(dealer):
        assert header["type"] in REPLY_TYPES, header
        if header["type"] == "error":
            assert header["code"] in {c.value for c in p.ErrorCode} and header["message"], header
            assert header["code"] != "internal", header  # bad input is never an internal fault


def test_frames_over_the_size_limit_are_dropped_and_the_engine_keeps_serving(tiny_dd_root: Path,
                                                                             tmp_path: Path) -> None:
    served = start_served(tiny_dd_root, tmp_path, default_model="no-such-model", max_message_bytes=64 * 1024)
    ctx = zmq.Context()
    try:
        for size in (64 * 1024 + 1, 200_000, 1_000_000):
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(served.zmq.endpoint)
            sock.send_multipart([p.encode_header({"type": "ping", "id": "huge"}), b"\0" * size])
            assert not sock.poll(500), "an oversized frame gets no reply: libzmq drops it with the connection"
            sock.close(0)
            fresh = ctx.socket(zmq.DEALER)
            fresh.linger = 0
            fresh.connect(served.zmq.endpoint)
            assert _ping_through_zmq(fresh) == []
            fresh.close(0)
    finally:
        ctx.term()
        stop_served(served)


# ---- OSC ----------------------------------------------------------------------------------------------------

# OSC strings end at the first NUL and are UTF-8 (python-osc cannot send lone surrogates at all)
osc_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20)
osc_args = st.lists(
    st.one_of(st.integers(-(2**31), 2**31 - 1), st.floats(width=32, allow_nan=False), osc_text,
              st.binary(min_size=1, max_size=16), st.booleans(), st.sampled_from(["seed", "tempo_bpm", "model", "kind",
                                                                      "variations", "prompt", "render_key"])),
    max_size=8,
)
osc_addresses = st.one_of(
    st.sampled_from(sorted(p.osc_table())),
    st.sampled_from([f"{p.OSC_ROOT}/*", f"{p.OSC_ROOT}/session/get/*", f"{p.OSC_ROOT}/job/{{generate,morph}}",
                     f"{p.OSC_ROOT}/[", f"{p.OSC_ROOT}/{{", f"{p.OSC_ROOT}/engine/p?ng", f"{p.OSC_ROOT}/nope",
                     "/other/address"]),
    st.text(alphabet="/abcloopbridge*?[]{},!", min_size=1, max_size=40).map(lambda t: "/" + t.lstrip("/")),
)


def _message(address: str, args: list[Any]) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


@st.composite
def osc_packets(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.binary(max_size=200))
    if choice in (1, 2):
        return _message(draw(osc_addresses), draw(osc_args))
    if choice == 3:  # a valid message cut short
        full = _message(draw(osc_addresses), draw(osc_args))
        return full[: draw(st.integers(0, len(full) - 1))]
    if choice == 4:  # a bundle, sometimes nested
        bundle = OscBundleBuilder(IMMEDIATELY)
        for _ in range(draw(st.integers(0, 3))):
            builder = OscMessageBuilder(draw(osc_addresses))
            for arg in draw(osc_args):
                builder.add_arg(arg)
            bundle.add_content(builder.build())  # type: ignore[arg-type]
        built = bundle.build().dgram
        return built if draw(st.booleans()) else built[: draw(st.integers(0, len(built)))]
    return _message(f"{p.OSC_ROOT}/engine/ping", ["x" * draw(st.integers(OSC_LIMIT, 2 * OSC_LIMIT))])  # oversized


@pytest.fixture(scope="module")
def udp(fuzzed: Served) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def _ping_through_osc(sock: socket.socket, engine: tuple[str, int], timeout_s: float = 10.0) -> list[str]:
    # a fuzzed /controller/register may have moved this socket's replies elsewhere: undo that first
    sock.sendto(_message(f"{p.OSC_ROOT}/controller/unregister", []), engine)
    token = uuid.uuid4().hex
    sock.sendto(_message(f"{p.OSC_ROOT}/engine/ping", [token]), engine)
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, _ = sock.recvfrom(65536)
        except TimeoutError:
            break
        message = OscPacket(data).messages[0].message  # whatever the engine sends is valid OSC
        if message.address == f"{p.OSC_ROOT}/engine/pong" and list(message.params) == [token]:
            return seen
        seen.append(message.address)
        if message.address == p.OSC_ERROR:
            assert message.params[1] in {c.value for c in p.ErrorCode} and message.params[1] != "internal", \
                message.params
    raise AssertionError(f"the engine stopped answering OSC; last messages: {seen[-3:]}")


@settings(max_examples=OSC_CASES, deadline=None, suppress_health_check=list(HealthCheck))
@given(packet=osc_packets())
def test_malformed_osc_packets_get_an_error_or_are_dropped(fuzzed: Served, udp: socket.socket, packet: bytes) -> None:
    udp.sendto(packet, fuzzed.osc.address)
    for address in _ping_through_osc(udp, fuzzed.osc.address):
        assert address in p.OSC_OUTGOING, address


def test_an_oversized_osc_packet_is_refused_by_size(fuzzed: Served, udp: socket.socket) -> None:
    udp.sendto(_message(f"{p.OSC_ROOT}/engine/ping", ["x" * OSC_LIMIT]), fuzzed.osc.address)
    udp.settimeout(10)
    message = OscPacket(udp.recvfrom(65536)[0]).messages[0].message
    assert message.address == p.OSC_ERROR and message.params[1] == "too_large"
    assert _ping_through_osc(udp, fuzzed.osc.address) == [f"{p.OSC_ROOT}/controller/unregistered"]
