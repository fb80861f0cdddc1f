"""Security: CURVE keys on ZeroMQ (a client without the server's key gets nothing at all), loopback-only
binds by default, and the OSC allow-list."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from loopbridge.bridge import protocol as p
from loopbridge.bridge.cli import main
from loopbridge.bridge.client import Client, Events
from loopbridge.bridge.osc_server import OscServer
from loopbridge.bridge.security import (
    CONNECTION_PROPERTY,
    AllowList,
    CurveKeys,
    SecurityError,
    ZapHandler,
    check_osc_bind,
    check_zmq_binds,
    generate_keys,
    is_loopback_endpoint,
    is_loopback_host,
    load_client_keys,
    load_public_key,
    load_server_keys,
    parse_host_port,
)
from loopbridge.bridge.zmq_server import ZmqServer
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from tests.bridge.conftest import Served, start_served, stop_served


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    generate_keys(folder)
    return folder


@pytest.fixture(scope="module")
def curve_served(tiny_dd_root: Path, tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Iterator[Served]:
    served = start_served(tiny_dd_root, tmp_path_factory.mktemp("curve"))
    served.zmq.stop()
    served.zmq = ZmqServer(served.service, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                           keys=load_server_keys(keys)).start()
    yield served
    stop_served(served)


def _silent(endpoint: str, **socket_options: bytes) -> bool:
    """Whether a DEALER with these CURVE options hears nothing at all, heartbeats included."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    for name, value in socket_options.items():
        setattr(sock, name, value)
    sock.connect(endpoint)
    try:
        for _ in range(3):
            sock.send(p.encode_header({"type": "ping", "id": "sneak"}))
        return not sock.poll(int(2.5 * p.HEARTBEAT_INTERVAL_S * 1000))  # a beat would come within one interval
    finally:
        sock.close(0)
        ctx.term()


def test_only_a_client_with_the_servers_key_and_an_authorized_key_is_answered(curve_served: Served,
                                                                             keys: Path) -> None:
    endpoint = curve_served.zmq.endpoint
    with Client(endpoint, server_key=keys, client_keys=load_client_keys(keys)) as trusted:
        assert trusted.ping("in")["token"] == "in"
    assert _silent(endpoint), "no server key: no reply at all"
    public, secret = load_client_keys(keys)
    wrong_public, _ = zmq.curve_keypair()
    assert _silent(endpoint, curve_serverkey=wrong_public, curve_publickey=public, curve_secretkey=secret)
    stranger_public, stranger_secret = zmq.curve_keypair()
    server_key = load_public_key(keys)
    assert _silent(endpoint, curve_serverkey=server_key, curve_publickey=stranger_public,
                   curve_secretkey=stranger_secret), "a key that is not authorized gets nothing either"
    with Client(endpoint, request_timeout_s=0.5) as plain, pytest.raises(TimeoutError):
        plain.ping(timeout=2)


def test_events_are_encrypted_too(curve_served: Served, keys: Path) -> None:
    with Events(curve_served.zmq.events_endpoint, server_key=keys, client_keys=load_client_keys(keys)) as events, \
            Events(curve_served.zmq.events_endpoint) as eavesdropper:
        time.sleep(0.5)
        curve_served.service.publish("state", {"queued": {"interactive": 0, "background": 0}})
        topic, header = events.next(timeout=10) or ("", {})
        assert topic == "state" and header["type"] == "state"
        assert eavesdropper.next(timeout=1) is None


def test_without_an_authorized_folder_any_client_knowing_the_server_key_gets_in(tiny_dd_root: Path,
                                                                                tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    generate_keys(folder)
    shutil.rmtree(folder / "authorized")
    served = start_served(tiny_dd_root, tmp_path / "engine")
    served.zmq.stop()
    served.zmq = ZmqServer(served.service, "tcp://127.0.0.1:*", None, keys=load_server_keys(folder)).start()
    try:
        with Client(served.zmq.endpoint, server_key=load_public_key(folder)) as client:  # a fresh client key pair
            assert client.ping("any")["token"] == "any"
        assert _silent(served.zmq.endpoint)
    finally:
        stop_served(served)


def test_keys_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    server_key = out.strip().rsplit(" ", 1)[1]
    assert len(server_key) == 40 and load_public_key(server_key) == load_public_key(tmp_path / "k")
    for secret in ("server.key_secret", "client.key_secret"):
        assert stat.S_IMODE(os.stat(tmp_path / "k" / secret).st_mode) == 0o600
    assert (tmp_path / "k" / "authorized" / "client.key").is_file()
    assert main(["keys", str(tmp_path / "k")]) == 1  # never overwrites keys
    assert "already exist" in capsys.readouterr().err
    with pytest.raises(SecurityError, match="loopbridge keys"):
        load_server_keys(tmp_path / "nothing")
    with pytest.raises(SecurityError, match="40 z85"):
        load_public_key(tmp_path / "nothing" / "server.key")


def test_key_files_are_private_from_the_moment_they_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets are created 0600 and the folders 0700, not written under the umask and narrowed after: with
    the widest umask and no chmod at all, nothing is ever readable by others."""
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    old_umask = os.umask(0)
    try:
        paths = generate_keys(tmp_path / "fresh" / "keys")
    finally:
        os.umask(old_umask)
    for secret in ("server_secret", "client_secret"):
        assert stat.S_IMODE(os.stat(paths[secret]).st_mode) == 0o600, secret
    for folder in (tmp_path / "fresh" / "keys", tmp_path / "fresh" / "keys" / "authorized"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
    public, secret = load_client_keys(paths["client_secret"])
    assert load_public_key(paths["authorized"]) == public == load_public_key(paths["client_public"])
    assert len(secret) == 40 and load_server_keys(tmp_path / "fresh" / "keys").authorized_dir is not None


def test_keys_never_write_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "server.key_secret").symlink_to(target)  # dangling: exists() alone would miss it
    with pytest.raises(SecurityError, match="already exist"):
        generate_keys(folder)
    assert not target.exists()


def _zap(mechanism: bytes, *credentials: bytes) -> list[bytes]:
    return [b"1.0", b"req-1", b"loopbridge", b"127.0.0.1", b"", mechanism, *credentials]


def test_the_zap_handler_admits_by_mechanism_and_key_and_names_each_connection(keys: Path) -> None:
    from zmq.utils import z85

    plain = ZapHandler(None)
    first, second = plain.answer(_zap(b"NULL")), plain.answer(_zap(b"NULL"))
    assert first[:4] == [b"1.0", b"req-1", b"200", b"OK"] and first[4] == b""
    assert first[5] != second[5] and CONNECTION_PROPERTY.encode() in first[5], "a fresh id per connection"
    assert plain.answer(_zap(b"CURVE", b"k" * 32))[2] == b"400", "no keys: no CURVE"
    assert plain.answer(_zap(b"PLAIN", b"user", b"password"))[2] == b"400"
    assert plain.answer([b"0.9", b"x"])[:3] == [b"1.0", b"x", b"500"]
    assert plain.answer([])[2] == b"500"

    server_keys = load_server_keys(keys)
    authorized_public, _ = load_client_keys(keys)
    curve = ZapHandler(server_keys)
    admitted = curve.answer(_zap(b"CURVE", z85.decode(authorized_public)))
    assert admitted[2] == b"200" and admitted[4] == authorized_public, "the client's key is its User-Id"
    stranger, _ = zmq.curve_keypair()
    assert curve.answer(_zap(b"CURVE", z85.decode(stranger)))[2] == b"400"
    assert curve.answer(_zap(b"NULL"))[2] == b"400", "keys: NULL connections are not admitted"
    assert curve.answer(_zap(b"CURVE", b"short"))[2] == b"400"
    anyone = ZapHandler(CurveKeys(server_keys.public, server_keys.secret, None))
    assert anyone.answer(_zap(b"CURVE", z85.decode(stranger)))[4] == stranger


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [("tcp://127.0.0.1:5555", True), ("tcp://localhost:5555", True), ("tcp://[::1]:5555", True),
     ("tcp://127.3.2.1:1", True), ("ipc:///tmp/lb", True), ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False),
     ("tcp://192.168.1.20:5555", False), ("tcp://[::]:5555", False), ("tcp://eth0:5555", False)],
)
def test_which_binds_stay_on_this_machine(endpoint: str, loopback: bool) -> None:
    assert is_loopback_endpoint(endpoint) is loopback


def test_binds_beyond_loopback_need_keys_or_an_explicit_insecure(keys: Path) -> None:
    assert check_zmq_binds(["tcp://127.0.0.1:5555"], None, False) == []
    with pytest.raises(SecurityError, match="--keys DIR"):
        check_zmq_binds(["tcp://0.0.0.0:5555"], None, False)
    assert check_zmq_binds(["tcp://0.0.0.0:5555"], load_server_keys(keys), False) == []
    (warning,) = check_zmq_binds(["tcp://0.0.0.0:5555"], None, True)
    assert "unencrypted" in warning
    check_osc_bind("127.0.0.1", AllowList())
    with pytest.raises(SecurityError, match="--osc-allow"):
        check_osc_bind("0.0.0.0", AllowList())
    check_osc_bind("0.0.0.0", AllowList.parse("10.0.0.0/8"))
    assert parse_host_port("[::1]:9000", 1) == ("::1", 9000) and parse_host_port(":7000", 1) == ("127.0.0.1", 7000)
    with pytest.raises(ValueError, match="1 to 65535"):
        parse_host_port("host:0", 1)


def test_allow_list() -> None:
    allow = AllowList.parse("192.168.1.20, 10.0.0.0/24,localhost")
    assert allow.allows("192.168.1.20") and allow.allows("10.0.0.77") and allow.allows("127.0.0.1")
    assert allow.allows("::1") and allow.allows("::ffff:10.0.0.5")
    # a dual-stack socket ([::]) sees IPv4 loopback as ::ffff:127.0.0.1: still loopback
    assert AllowList().allows("::ffff:127.0.0.1") and not AllowList().allows("::ffff:192.168.1.20")
    assert is_loopback_host("::ffff:127.0.0.1") and not is_loopback_host("::ffff:192.168.1.20")
    assert not allow.allows("10.0.1.1") and not allow.allows("8.8.8.8") and not allow.allows("not an address")
    assert AllowList().allows("127.0.0.1") and not AllowList().allows("192.168.1.20")
    with pytest.raises(SecurityError, match="allow-list entry"):
        AllowList.parse("no.such.host.invalid")


def _outward_address() -> str | None:
    """An address of this machine that is not loopback (None when there is none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_osc_from_outside_the_allow_list_is_dropped(tiny_dd_root: Path, tmp_path: Path) -> None:
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no network address besides loopback to send from")
    served = start_served(tiny_dd_root, tmp_path)
    try:
        results = {}
        for allow in (AllowList(), AllowList.parse(outward)):
            server = OscServer(served.service, "0.0.0.0", 0, allow=allow).start()
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as controller:
                    controller.bind((outward, 0))  # the packet comes from the network address, not loopback
                    controller.settimeout(2)
                    builder = OscMessageBuilder(f"{p.OSC_ROOT}/engine/ping")
                    builder.add_arg("knock")
                    controller.sendto(builder.build().dgram, (outward, server.address[1]))
                    try:
                        controller.recvfrom(65536)
                        results[bool(allow)] = True
                    except TimeoutError:
                        results[bool(allow)] = False
                assert server.counters["dropped"] == (0 if allow else 1)
            finally:
                server.stop()
        assert results == {False: False, True: True}, "dropped without the allow-list, answered with it"
    finally:
        stop_served(served)


def test_ipv4_loopback_reaches_a_dual_stack_osc_bind(tiny_dd_root: Path, tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            probe.bind(("::", 0))
    except OSError as exc:
        pytest.skip(f"this machine cannot bind a dual-stack IPv6 socket: {exc}")
    served = start_served(tiny_dd_root, tmp_path)
    server = OscServer(served.service, "::", 0).start()  # no allow-list: loopback only
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as controller:
            controller.bind(("127.0.0.1", 0))
            controller.settimeout(10)
            builder = OscMessageBuilder(f"{p.OSC_ROOT}/engine/ping")
            builder.add_arg("v4 to [::]")
            controller.sendto(builder.build().dgram, ("127.0.0.1", server.address[1]))
            message = OscPacket(controller.recvfrom(65536)[0]).messages[0].message
        assert (message.address, list(message.params)) == (f"{p.OSC_ROOT}/engine/pong", ["v4 to [::]"])
        assert server.counters["dropped"] == 0
    finally:
        server.stop()
        stop_served(served)


def test_hello_reports_limits_a_client_can_rely_on(curve_served: Served, keys: Path) -> None:
    with Client(curve_served.zmq.endpoint, server_key=keys, client_keys=load_client_keys(keys)) as client:
        limits = client.hello()["limits"]
    assert json.dumps(limits) and limits["max_frames"] == p.MAX_FRAMES
