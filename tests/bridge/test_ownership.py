"""Jobs belong to the connection that asked for them: attacks over ZeroMQ from another client on this
machine (and, under CURVE, from another authorized client) that must not reach someone else's job.

Each test plays the attack with bare DEALER sockets: a victim with a known routing id starts a long
render, and an attacker presents that routing id (while the victim is connected, after it went away,
after it came back), cancels, or asks for the status. A routing id is only an address: what the
attacker may hear is its own answers and heartbeats, never a message about the victim's job. And the
Python client, which connects again on a new socket when the engine falls silent, is still answered.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from loopbridge.bridge import protocol as p
from loopbridge.bridge.client import Client
from loopbridge.bridge.security import generate_keys, load_client_keys, load_public_key, load_server_keys
from loopbridge.bridge.zmq_server import ZmqServer

from tests.bridge.conftest import TINY, Served, start_served, stop_served

#: a render long enough to attack while it runs (the victim cancels it when the test is done)
LONG = {**TINY, "steps": 1000, "prerender": False}
#: a render that finishes within the test, after the attack
MEDIUM = {**TINY, "steps": 600, "prerender": False}

Curve = tuple[bytes, tuple[bytes, bytes]]  # the server's public key, the client's (public, secret)


class Peer:
    """A bare DEALER that keeps every message it hears (heartbeats aside), to show what reached whom. While
    it listens it sends heartbeats, as the protocol asks of a client."""

    def __init__(self, endpoint: str, identity: bytes | None = None, curve: Curve | None = None) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if identity is not None:
            self.sock.routing_id = identity
        if curve is not None:
            server_key, (public, secret) = curve
            self.sock.curve_serverkey = server_key
            self.sock.curve_publickey, self.sock.curve_secretkey = public, secret
        self.sock.connect(endpoint)
        self.heard: list[dict[str, Any]] = []
        self.next_beat = 0.0

    def send(self, **header: Any) -> None:
        self.sock.send(p.encode_header(header))

    def pump(self, seconds: float) -> None:
        """Listen for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self._beat()
            if self.sock.poll(int(min(remaining, 0.2) * 1000)):
                self._take()

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout_s: float = 30.0) -> dict[str, Any]:
        """The first message heard (before or now) that ``match`` accepts; AssertionError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while True:
            for header in self.heard[seen:]:
                if match(header):
                    return header
            seen = len(self.heard)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"nothing matching came in {timeout_s} s; heard: {self.heard[-5:]}")
            self._beat()
            if self.sock.poll(int(min(remaining, 0.2) * 1000)):
                self._take()

    def request(self, timeout_s: float = 30.0, **header: Any) -> dict[str, Any]:
        self.send(**header)
        return self.wait_for(lambda h: h.get("id") == header["id"] and h["type"] in ("reply", "error", "pong"),
                             timeout_s)

    def about(self, request_id: str) -> list[dict[str, Any]]:
        return [h for h in self.heard if h.get("id") == request_id]

    def _beat(self) -> None:
        if time.monotonic() >= self.next_beat:
            self.next_beat = time.monotonic() + p.HEARTBEAT_INTERVAL_S
            self.send(type="heartbeat")

    def _take(self) -> None:
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            header = p.decode_header(frames[0])
            if header["type"] != "heartbeat":
                self.heard.append(header)

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


@pytest.fixture(scope="module")
def owned(tiny_dd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_served(tiny_dd_root, tmp_path_factory.mktemp("owned"))
    yield served
    stop_served(served)


def _job(request_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "generate", "id": request_id, "seed": secrets.randbelow(2**31), **fields}


def _rendering(peer: Peer, request_id: str) -> None:
    peer.wait_for(lambda h: h.get("id") == request_id and h["type"] == "progress", 60)


def _cancelled_by_its_owner(victim: Peer, request_id: str) -> None:
    """The victim cancels its job: it was still running (nobody else had cancelled it), and the final
    message reaches the victim."""
    reply = victim.request(type="cancel", id=f"cancel-{request_id}", target=request_id)
    assert reply["type"] == "reply" and reply["cancelled"] is True, reply
    final = victim.wait_for(lambda h: h.get("id") == request_id and h["type"] in ("reply", "error"))
    assert final["type"] == "error" and final["code"] == "cancelled", final


def _holds(served: Served, peer: Peer, identity: bytes, attempts: int = 20) -> None:
    """Ping until the engine has answered ``peer`` under ``identity`` (its request log names the routing id
    of each request): a routing id still held by a connection that went away is refused for a moment."""
    for attempt in range(attempts):
        token = f"hold-{attempt}"
        peer.send(type="ping", id=token)
        peer.pump(0.3)
        if any(line.startswith(f"zmq {identity.hex()[:10]} ping id={token} ok") for line in served.lines):
            return
    raise AssertionError(f"the engine never answered a ping under {identity.hex()[:10]}")


def _nothing_about(attacker: Peer, request_id: str) -> None:
    assert attacker.about(request_id) == [], f"the attacker heard the victim's job: {attacker.about(request_id)}"
    cancels = [h for h in attacker.heard if h.get("re") == "cancel" and h.get("cancelled")]
    assert cancels == [], f"the attacker cancelled the victim's job: {cancels}"


# ---- on loopback ------------------------------------------------------------------------------------------


def test_a_second_socket_presenting_a_live_routing_id_gets_none_of_its_replies(owned: Served) -> None:
    identity = secrets.token_bytes(12)
    victim = Peer(owned.zmq.endpoint, identity)
    victim.send(**_job("vict0", LONG))
    _rendering(victim, "vict0")
    attacker = Peer(owned.zmq.endpoint, identity)
    try:
        for n in range(3):
            attacker.send(type="ping", id=f"take-{n}")
            attacker.send(type="cancel", id=f"cancel-{n}", target="vict0")
            attacker.pump(0.3)
        heard_before = len(victim.about("vict0"))
        victim.pump(0.5)
        assert len(victim.about("vict0")) > heard_before, "the victim still hears its job's progress"
        _cancelled_by_its_owner(victim, "vict0")
        attacker.pump(0.5)
        _nothing_about(attacker, "vict0")
    finally:
        victim.close()
        attacker.close()


def test_another_client_cannot_cancel_a_job(owned: Served) -> None:
    identity = secrets.token_bytes(12)
    victim = Peer(owned.zmq.endpoint, identity)
    victim.send(**_job("vict1", LONG))
    _rendering(victim, "vict1")
    stranger = Peer(owned.zmq.endpoint)
    impostor = Peer(owned.zmq.endpoint, identity)
    try:
        refused = stranger.request(type="cancel", id="c1", target="vict1")
        assert refused["type"] == "error" and refused["code"] == "not_found", refused
        for n in range(3):
            impostor.send(type="cancel", id=f"c2-{n}", target="vict1")
            impostor.pump(0.3)
        _cancelled_by_its_owner(victim, "vict1")
        _nothing_about(impostor, "vict1")
        _nothing_about(stranger, "vict1")
    finally:
        for peer in (victim, stranger, impostor):
            peer.close()


def test_status_shows_a_client_its_own_jobs_and_only_totals_of_the_rest(owned: Served) -> None:
    identity = secrets.token_bytes(12)
    victim = Peer(owned.zmq.endpoint, identity)
    other = Peer(owned.zmq.endpoint)
    try:
        victim.send(**_job("vict2", LONG))
        _rendering(victim, "vict2")
        seen = other.request(type="status", id="st-other")
        text = json.dumps(seen)
        assert seen["queue"]["running_jobs"] == [], seen["queue"]
        assert "vict2" not in text and identity.hex()[:10] not in text, "nothing names the other client or its job"
        assert seen["queue"]["rendering"] >= 1 and seen["queue"]["active_jobs"] >= 1, "the totals are everyone's"
        own = victim.request(type="status", id="st-own")
        assert own["queue"]["running_jobs"] == ["vict2"], own["queue"]
        _cancelled_by_its_owner(victim, "vict2")
    finally:
        victim.close()
        other.close()


def test_a_socket_taking_the_routing_id_of_one_that_went_away_gets_none_of_its_replies(owned: Served) -> None:
    identity = secrets.token_bytes(12)
    first = Peer(owned.zmq.endpoint, identity)
    job = _job("vict3", MEDIUM)
    try:
        first.send(**job)
        first.wait_for(lambda h: h.get("id") == "vict3" and h["type"] == "accepted")
    finally:
        first.close()
    attacker = Peer(owned.zmq.endpoint, identity)
    again = Peer(owned.zmq.endpoint)  # the victim connecting again (the Python client's way: a new routing id)
    try:
        _holds(owned, attacker, identity)
        refused = attacker.request(type="cancel", id="c3", target="vict3")
        assert refused["type"] == "error" and refused["code"] == "not_found", refused
        again.send(**job)  # asked again: joins the render on its way
        again.wait_for(lambda h: h.get("id") == "vict3" and h["type"] == "accepted")
        final = again.wait_for(lambda h: h.get("id") == "vict3" and h["type"] in ("reply", "error"), 120)
        assert final["type"] == "reply" and final["count"] == 1, final
        attacker.pump(0.5)
        _nothing_about(attacker, "vict3")
        assert owned.zmq.counters["orphaned"] >= 1, "the first connection's reply was dropped, not sent"
    finally:
        attacker.close()
        again.close()


def test_a_client_back_under_its_own_routing_id_keeps_it_and_gets_its_reply(owned: Served) -> None:
    identity = secrets.token_bytes(12)
    job = _job("vict4", MEDIUM)
    first = Peer(owned.zmq.endpoint, identity)
    try:
        first.send(**job)
        first.wait_for(lambda h: h.get("id") == "vict4" and h["type"] == "accepted")
    finally:
        first.close()
    back = Peer(owned.zmq.endpoint, identity)
    attacker: Peer | None = None
    try:
        _holds(owned, back, identity)
        back.send(**job)
        back.wait_for(lambda h: h.get("id") == "vict4" and h["type"] == "accepted")
        attacker = Peer(owned.zmq.endpoint, identity)
        for n in range(3):
            attacker.send(type="cancel", id=f"c4-{n}", target="vict4")
            attacker.pump(0.3)
        final = back.wait_for(lambda h: h.get("id") == "vict4" and h["type"] in ("reply", "error"), 120)
        assert final["type"] == "reply" and final["count"] == 1, final
        attacker.pump(0.5)
        _nothing_about(attacker, "vict4")
    finally:
        back.close()
        if attacker is not None:
            attacker.close()


def test_the_python_client_that_loses_the_engine_mid_render_asks_again_and_is_answered(owned: Served) -> None:
    """Reconnect and resend: the new connection's request joins the render on its way (one render for both)."""
    counters = owned.service.door.queue()["counters"]
    with Client(owned.zmq.endpoint, reconnect_initial_s=0.1) as client:
        rendering = threading.Event()
        pending = client.submit("generate", {**MEDIUM, "seed": secrets.randbelow(2**31)},
                                progress=lambda fraction: rendering.set())
        assert rendering.wait(60), "the render never started"
        deadline = time.monotonic() + 30
        while client.reconnects == 0 and time.monotonic() < deadline:
            client._last_heard = 0.0  # its liveness counter runs out, as when the engine falls silent
            time.sleep(0.05)
        assert client.reconnects >= 1
        reply = pending.result(timeout=120)
    assert reply["count"] == 1 and reply.samples[0].wav
    after = owned.service.door.queue()["counters"]
    assert after["rendered"] == counters["rendered"] + 1, "the request sent again joined the render"


#: an engine alone in a fresh process (a ping never reaches its service), as ``loopbridge serve`` starts
#: one; ``ping(routing_id)`` pings it from a new socket and returns the routing id it was heard under
FRESH_ENGINE = """
import time, zmq
from loopbridge.bridge.zmq_server import ZmqServer

class Service:
    def add_listener(self, listener): pass
    def remove_listener(self, listener): pass

lines = []
server = ZmqServer(Service(), "tcp://127.0.0.1:*", None, request_log=lines.append).start()
ctx = zmq.Context()

def ping(routing_id=None):
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    if routing_id is not None:
        sock.routing_id = routing_id
    sock.connect(server.endpoint)
    heard = len(lines)
    sock.send(b'{"v":1,"type":"ping","id":"p"}')
    assert sock.poll(30000), "no pong"
    deadline = time.monotonic() + 10
    while len(lines) == heard and time.monotonic() < deadline:
        time.sleep(0.01)
    return lines[heard].split()[1]
"""

#: the first automatic routing id libzmq gives when nobody seeds ``rand()`` (glibc's first ``rand()``)
UNSEEDED_FIRST_ID = "006b8b4567"


def _in_a_fresh_engine(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", FRESH_ENGINE + body], capture_output=True, text=True, timeout=120)


def test_automatic_routing_ids_differ_from_run_to_run() -> None:
    """libzmq counts automatic routing ids up from an unseeded ``rand()``: the same in every process unless
    the engine seeds it. Two engines in two processes give their first client different ids."""
    runs = [_in_a_fresh_engine("print(ping())") for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), [run.stderr[-2000:] for run in runs]
    firsts = [run.stdout.strip() for run in runs]
    assert all(len(first) == 10 and first.startswith("00") for first in firsts), firsts
    assert firsts[0] != firsts[1] and UNSEEDED_FIRST_ID not in firsts, firsts


def test_a_socket_squatting_the_next_automatic_routing_id_does_not_bring_the_engine_down() -> None:
    """libzmq aborts the process when it gives a new peer an automatic id that a peer chose for itself; with
    the count's start predictable, one socket presenting it killed the engine at the next plain connect."""
    run = _in_a_fresh_engine(f"print(ping(bytes.fromhex('{UNSEEDED_FIRST_ID}')), ping())")
    assert run.returncode == 0, run.stderr[-2000:]
    squatter, plain = run.stdout.split()
    assert squatter == UNSEEDED_FIRST_ID and plain != squatter


# ---- under CURVE --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[bytes, bytes], tuple[bytes, bytes]]:
    """A keys folder authorizing two clients: the one ``loopbridge keys`` makes, and a second pair."""
    folder = tmp_path_factory.mktemp("two-keys")
    generate_keys(folder)
    second = tmp_path_factory.mktemp("second-client")
    import zmq.auth

    public_file, secret_file = zmq.auth.create_certificates(str(second), "second")
    (folder / "authorized" / "second.key").write_bytes(Path(public_file).read_bytes())
    return folder, load_client_keys(folder), load_client_keys(secret_file)


@pytest.fixture(scope="module")
def curve_owned(tiny_dd_root: Path, tmp_path_factory: pytest.TempPathFactory,
                two_keys: tuple[Path, tuple[bytes, bytes], tuple[bytes, bytes]]) -> Iterator[Served]:
    served = start_served(tiny_dd_root, tmp_path_factory.mktemp("curve-owned"))
    served.zmq.stop()
    served.zmq = ZmqServer(served.service, "tcp://127.0.0.1:*", None, keys=load_server_keys(two_keys[0]),
                           request_log=served.lines.append).start()
    yield served
    stop_served(served)


def test_two_authorized_clients_cannot_reach_each_others_jobs(
        curve_owned: Served, two_keys: tuple[Path, tuple[bytes, bytes], tuple[bytes, bytes]]) -> None:
    folder, first_pair, second_pair = two_keys
    server_key = load_public_key(folder)
    identity = secrets.token_bytes(12)
    victim = Peer(curve_owned.zmq.endpoint, identity, (server_key, first_pair))
    victim.send(**_job("vict5", LONG))
    _rendering(victim, "vict5")
    other = Peer(curve_owned.zmq.endpoint, None, (server_key, second_pair))
    impostor = Peer(curve_owned.zmq.endpoint, identity, (server_key, second_pair))
    try:
        assert other.request(type="ping", id="in")["type"] == "pong", "the second key is authorized"
        seen = other.request(type="status", id="st")
        assert seen["queue"]["running_jobs"] == [] and "vict5" not in json.dumps(seen)
        refused = other.request(type="cancel", id="c5", target="vict5")
        assert refused["type"] == "error" and refused["code"] == "not_found", refused
        for n in range(3):
            impostor.send(type="cancel", id=f"c6-{n}", target="vict5")
            impostor.pump(0.3)
        heard_before = len(victim.about("vict5"))
        victim.pump(0.5)
        assert len(victim.about("vict5")) > heard_before, "the victim still hears its job's progress"
        _cancelled_by_its_owner(victim, "vict5")
        impostor.pump(0.5)
        for attacker in (other, impostor):
            _nothing_about(attacker, "vict5")
    finally:
        for peer in (victim, other, impostor):
            peer.close()
