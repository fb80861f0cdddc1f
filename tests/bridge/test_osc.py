"""Every OSC address over real UDP on loopback: python-osc as one peer, liblo's oscsend/oscdump as another."""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from loopbridge.bridge import protocol as p
from loopbridge.bridge.osc_session import SESSION_DEFAULTS
from loopbridge.bridge.protocol import lenient
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from tests.bridge.conftest import TINY, Served

R = p.OSC_ROOT


class Peer:
    """A controller: one UDP socket that sends to the engine and hears its replies and feedback."""

    def __init__(self, served: Served) -> None:
        self.engine = served.osc.address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def send(self, address: str, *args: Any) -> None:
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(arg)
        self.sock.sendto(builder.build().dgram, self.engine)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.engine)

    def receive(self, timeout_s: float = 10.0) -> tuple[str, list[Any]] | None:
        self.sock.settimeout(timeout_s)
        try:
            data, _ = self.sock.recvfrom(65536)
        except TimeoutError:
            return None
        message = OscPacket(data).messages[0].message
        return message.address, list(message.params)

    def until(self, address: str, timeout_s: float = 30.0) -> tuple[list[Any], list[tuple[str, list[Any]]]]:
        """Messages until one at ``address``: (its arguments, everything before it)."""
        before = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.receive(max(0.01, deadline - time.monotonic()))
            if got is None:
                break
            if got[0] == address:
                return got[1], before
            before.append(got)
        raise AssertionError(f"no {address} within {timeout_s} s; got {before}")

    def collect(self, count: int, skip: str, timeout_s: float = 30.0) -> list[tuple[str, list[Any]]]:
        """The next ``count`` messages not at ``skip`` (progress, say)."""
        got: list[tuple[str, list[Any]]] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count:
            message = self.receive(max(0.01, deadline - time.monotonic()))
            assert message is not None, f"{len(got)} of {count} messages within {timeout_s} s: {got}"
            if message[0] != skip:
                got.append(message)
        return got

    def ask(self, address: str, *args: Any, reply: str | None = None) -> list[Any]:
        self.send(address, *args)
        return self.until(reply or p.osc_table()[address].reply or address)[0]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def peer(served: Served) -> Any:
    controller = Peer(served)
    yield controller
    controller.close()


def _pairs(fields: dict[str, Any]) -> list[Any]:
    return [x for item in fields.items() for x in item]


# ---- engine, models, history -------------------------------------------------------------------------------


def test_engine_and_models_addresses(peer: Peer) -> None:
    assert peer.ask(f"{R}/engine/ping", "t1") == ["t1"]
    assert peer.ask(f"{R}/engine/ping") == [""]
    version, engine_version, inbox = peer.ask(f"{R}/engine/hello")
    assert version == p.PROTOCOL_VERSION and engine_version and Path(inbox).is_dir()
    status = json.loads(peer.ask(f"{R}/engine/status")[0])
    assert status["device"] == "cpu" and status["default_model"] == "tiny-dd"
    models = json.loads(peer.ask(f"{R}/models/list")[0])
    assert [m["id"] for m in models] == ["tiny-dd"]
    model, caps = peer.ask(f"{R}/models/capabilities", "tiny-dd")
    assert model == "tiny-dd" and json.loads(caps)["family"] == "dance-diffusion"
    assert isinstance(json.loads(peer.ask(f"{R}/history/list", 5)[0]), list)
    assert isinstance(json.loads(peer.ask(f"{R}/history/list")[0]), list)


def test_errors_come_back_on_the_error_address(peer: Peer) -> None:
    rid, code, message = peer.ask(f"{R}/engine/nonsense", reply=p.OSC_ERROR)
    assert (rid, code) == ("", "unknown_type") and "nonsense" in message
    rid, code, message = peer.ask(f"{R}/models/capabilities", reply=p.OSC_ERROR)  # argument missing
    assert code == "bad_request" and "model" in message
    rid, code, message = peer.ask(f"{R}/models/capabilities", "no-such-model", reply=p.OSC_ERROR)
    assert code == "unknown_model" and "tiny-dd" in message
    rid, code, message = peer.ask(f"{R}/job/generate", "j1", "tempo_bpm", 5000.0, *_pairs(TINY), reply=p.OSC_ERROR)
    assert (rid, code) == ("j1", "bad_request") and "20–999" in message
    rid, code, _ = peer.ask(f"{R}/job/generate", "j2", "tempo_bpm", reply=p.OSC_ERROR)  # odd key/value count
    assert (rid, code) == ("j2", "malformed")
    rid, code, _ = peer.ask(f"{R}/job/generate", "j3", "colour", "red", reply=p.OSC_ERROR)
    assert (rid, code) == ("j3", "bad_request")
    rid, code, _ = peer.ask(f"{R}/job/cancel", "nothing-running", reply=p.OSC_ERROR)
    assert code == "not_found"
    rid, code, _ = peer.ask(f"{R}/job/morph", "m1", "morph_prompt", "snare", *_pairs(TINY), reply=p.OSC_ERROR)
    assert (rid, code) == ("m1", "unsupported")
    _, code, _ = peer.ask(f"{R}/history/recall", "r1", "abcdef0123", reply=p.OSC_ERROR)
    assert code == "not_found"
    _, code, _ = peer.ask(f"{R}/job/conform", "c1", "render_key", "ab" * 32, reply=p.OSC_ERROR)
    assert code == "not_found"
    peer.send_raw(b"\x00garbage that is not OSC")
    assert peer.until(p.OSC_ERROR)[0][1] == "malformed"
    peer.send("/1/fader1", 0.5)  # a controller's own address: ignored, not answered
    assert peer.ask(f"{R}/engine/ping", "after") == ["after"]


def test_wildcards_and_bundles(peer: Peer) -> None:
    peer.send(f"{R}/session/get/{{tempo,bars}}")
    got = {peer.receive()[0], peer.receive()[0]}  # type: ignore[index]
    assert got == {f"{R}/session/tempo", f"{R}/session/bars"}
    bundle = OscBundleBuilder(IMMEDIATELY)
    for token in ("b1", "b2"):
        builder = OscMessageBuilder(f"{R}/engine/ping")
        builder.add_arg(token)
        bundle.add_content(builder.build())  # type: ignore[arg-type]
    peer.send_raw(bundle.build().dgram)
    assert [peer.until(f"{R}/engine/pong")[0][0] for _ in range(2)] == ["b1", "b2"]


def test_wildcard_patterns_that_would_backtrack_are_answered(peer: Peer) -> None:
    # a run of stars, more stars, and words that may match nothing: a regular expression tries every way
    # to share the address between them (hours for these); the linear matcher answers at once
    letters = "{," + ",".join(sorted(set("audio_prompt_strength"))) + "}"
    for pattern in (f"{R}/session/set/" + letters * 40 + "Z", f"{R}/session/set/" + "*" * 18 + "Z", f"{R}/*/*a*a*Z"):
        _, code, message = peer.ask(pattern, 1, reply=p.OSC_ERROR)
        assert code == "unknown_type" and "not an address" in message
    _, code, message = peer.ask(f"{R}/session/get/{{tempo,bars", reply=p.OSC_ERROR)
    assert code == "malformed" and "never closed" in message
    assert peer.ask(f"{R}/engine/p*ng", "still", reply=f"{R}/engine/pong") == ["still"]
    assert len(peer.ask(f"{R}/*/*/*tempo_b?m", reply=f"{R}/session/tempo_bpm")) == 1  # get matched, set refused


def test_ints_and_floats_are_taken_either_way() -> None:
    assert lenient("tempo", 128, "float") == 128.0
    assert lenient("variation", 2.0, "int") == 2 and lenient("variation", 2.6, "int") == 3
    assert lenient("id", 17, "str") == "17" and lenient("audio", 1, "bool") is True
    with pytest.raises(p.ProtocolError):
        lenient("prompt", 3, "str")
    with pytest.raises(p.ProtocolError):
        lenient("tempo", float("nan"), "float")


# ---- the session and feedback ------------------------------------------------------------------------------


def test_session_parameters_set_get_and_feedback_to_registered_controllers(served: Served, peer: Peer) -> None:
    listener = Peer(served)  # a second controller that only listens
    try:
        feedback_port = listener.port
        assert listener.ask(f"{R}/controller/register", feedback_port) == ["127.0.0.1", feedback_port]
        # two controllers on one host: each registers, so each gets its own replies
        assert peer.ask(f"{R}/controller/register") == ["127.0.0.1", peer.port]
        values: dict[str, Any] = {"prompt": "dusty", "morph_prompt": "", "model": "tiny-dd", "kind": "loop",
                                  "seed": 12, "variation": 0, "morph_amount": 0.25, "steps": 2, "bars": 2,
                                  "tempo_bpm": 128, "meter_numerator": 6, "meter_denominator": 8, "beats_per_bar": 3,
                                  "pitch_semitones": -2, "loudness_lufs": -18, "audio_prompt_strength": 0.4,
                                  "sample_rate": 44100.0,
                                  "audio_prompt_path": "", "key": "Am"}
        assert set(values) == set(p.SESSION_PARAMS)
        for name, value in values.items():
            if name in p.SESSION_SELECTING_PARAMS | p.SESSION_CONFORMING_PARAMS:
                continue  # these select or re-conform a sample: covered below
            peer.send(f"{R}/session/set/{name}", value)
            expected = lenient(name, value, p.SESSION_PARAMS[name])
            assert peer.until(f"{R}/session/{name}")[0] == [pytest.approx(expected)] if isinstance(expected, float) \
                else [expected]
            assert listener.until(f"{R}/session/{name}")[0][0] == pytest.approx(expected)
            assert peer.ask(f"{R}/session/get/{name}")[0] == pytest.approx(expected)
        # a controller laid out for the first names: set by one name, fed back under both, read by either
        peer.send(f"{R}/session/set/quality", 3.0)
        assert peer.until(f"{R}/session/steps")[0] == [3] and listener.until(f"{R}/session/quality")[0] == [3]
        assert peer.ask(f"{R}/session/get/quality") == [3] == peer.ask(f"{R}/session/get/steps")
        peer.send(f"{R}/session/set/tempo", 5000)  # out of range: an error, and the fader snaps back
        (value,), _ = peer.until(f"{R}/session/tempo")
        assert value == pytest.approx(120.0)
        assert peer.until(p.OSC_ERROR)[0][1] == "bad_request"
        peer.send(f"{R}/session/state")
        names = set()
        for _ in [*p.SESSION_PARAMS, *p.SESSION_ALIASES]:
            address, _args = peer.receive()  # type: ignore[misc]
            names.add(address.rsplit("/", 1)[1])
        assert names == set(p.SESSION_PARAMS) | set(p.SESSION_ALIASES)
        assert peer.receive()[0] == f"{R}/session/state"  # type: ignore[index]
        assert listener.ask(f"{R}/controller/unregister", feedback_port) == ["127.0.0.1", feedback_port]
        assert peer.ask(f"{R}/controller/unregister") == ["127.0.0.1", peer.port]
    finally:
        listener.close()
        for name, value in SESSION_DEFAULTS.items():  # leave the shared session as it was
            served.osc.session.params[name] = value if name != "model" else "tiny-dd"


def test_the_session_meter_is_the_hosts_and_beats_per_bar_sets_it(served: Served, peer: Peer) -> None:
    assert peer.ask(f"{R}/controller/register") == ["127.0.0.1", peer.port]
    try:
        peer.send(f"{R}/session/set/meter_numerator", 7)
        assert peer.until(f"{R}/session/meter_numerator")[0] == [7]
        peer.send(f"{R}/session/set/meter_denominator", 8)
        assert peer.until(f"{R}/session/meter_denominator")[0] == [8]
        # the engine's bar follows from the meter: 7/8 has no whole number of quarter notes, so 7
        assert peer.ask(f"{R}/session/get/beats_per_bar") == [7]
        peer.send(f"{R}/session/set/beats_per_bar", 3)  # the older knob: the meter becomes 3/4
        assert peer.until(f"{R}/session/meter_numerator")[0] == [3]
        assert peer.ask(f"{R}/session/get/meter_denominator") == [4]
        peer.send(f"{R}/session/set/meter_denominator", 3)  # no such time signature: refused, snaps back
        assert peer.until(f"{R}/session/meter_denominator")[0] == [4]
        _, code, message = peer.until(p.OSC_ERROR)[0]
        assert code == "bad_request" and "meter_denominator" in message
    finally:
        peer.ask(f"{R}/controller/unregister")
        served.osc.session.params.update({"meter_numerator": 4, "meter_denominator": 4, "beats_per_bar": 4})


def test_session_generate_then_variation_and_tempo_follow(served: Served, peer: Peer) -> None:
    assert peer.ask(f"{R}/controller/register") == ["127.0.0.1", peer.port]
    served.osc.session.params["tempo_bpm"] = 240.0
    # a quarter bar of texture at 240 BPM: a quarter of a second, quick for the tiny model
    for name, value in (("steps", 2), ("kind", "texture"), ("bars", 0.25), ("model", "tiny-dd")):
        peer.send(f"{R}/session/set/{name}", value)
        peer.until(f"{R}/session/{name}")
    peer.send(f"{R}/session/generate")
    seed = peer.until(f"{R}/session/seed")[0][0]
    path, kind, tempo, _beats, root, variation, render_key, key, key_confidence = peer.until(
        f"{R}/session/sample", 120)[0]
    # a sound's key and how sure the engine is of it, or "" and -1 when it has none
    assert isinstance(key, str) and (key == "") == (key_confidence == -1.0)
    assert Path(path).is_file() and kind == "texture" and variation == 0 and tempo == pytest.approx(240)
    assert root == -1 and len(render_key) == 64 and isinstance(seed, int)
    peer.send(f"{R}/session/set/variation", 1.0)  # a float where an int is expected
    assert peer.until(f"{R}/session/variation")[0] == [1]
    sample = peer.until(f"{R}/session/sample", 120)[0]
    assert sample[5] == 1 and sample[6] != render_key
    peer.send(f"{R}/session/set/tempo", 90)  # an int where a float is expected: re-conformed, not re-rendered
    assert peer.until(f"{R}/session/tempo")[0] == [pytest.approx(90.0)]
    sample = peer.until(f"{R}/session/sample", 60)[0]
    assert sample[2] == pytest.approx(90.0) and sample[5] == 1
    assert "LUFS" not in Path(sample[0]).name
    peer.send(f"{R}/session/set/loudness_lufs", -20)  # another loudness: re-conformed, another file
    assert peer.until(f"{R}/session/loudness_lufs")[0] == [pytest.approx(-20.0)]
    quieter = peer.until(f"{R}/session/sample", 60)[0]
    assert quieter[5] == 1 and quieter[6] == sample[6] and "_-20LUFS_" in Path(quieter[0]).name
    peer.send(f"{R}/session/set/loudness_lufs", -3)  # out of range: refused, snaps back
    assert peer.until(f"{R}/session/loudness_lufs")[0] == [pytest.approx(-20.0)]
    assert "loudness_lufs" in peer.until(p.OSC_ERROR)[0][2]
    peer.ask(f"{R}/controller/unregister")
    served.osc.session.params.update({"kind": "one-shot", "bars": 1.0, "tempo_bpm": 120.0, "steps": 0,
                                      "loudness_lufs": -14.0})


def test_jobs_over_osc_give_paths_on_this_machine(peer: Peer) -> None:
    peer.send(f"{R}/job/generate", "g1", "seed", 5.0, "variations", 2, "tempo_bpm", 100, *_pairs(TINY))
    args, before = peer.until(f"{R}/job/done", 120)
    assert args == ["g1", 2]
    samples = [a for address, a in before if address == f"{R}/job/sample"]
    assert [s[1] for s in samples] == [0, 1] and all(Path(s[2]).is_file() for s in samples)
    assert all(s[0] == "g1" and s[4] == pytest.approx(100) for s in samples)
    assert Path(samples[0][2]).name.endswith(".wav") and not Path(samples[0][2]).name.startswith(".")
    render_key = samples[1][8]
    peer.send(f"{R}/job/variation", "v1", "seed", 5, "variation", 1, "tempo_bpm", 100.0, *_pairs(TINY))
    (_, index, path, *_rest), _ = peer.until(f"{R}/job/sample", 60)
    assert index == 0 and Path(path) == Path(samples[1][2])
    peer.until(f"{R}/job/done")
    peer.send(f"{R}/job/conform", "c1", "render_key", render_key, "tempo_bpm", 140, "sample_rate", 22050)
    args, _ = peer.until(f"{R}/job/sample", 60)
    assert args[4] == pytest.approx(140)
    peer.until(f"{R}/job/done")
    peer.send(f"{R}/history/recall", "h1", render_key[:12], "tempo_bpm", 140, "sample_rate", 22050)
    assert peer.until(f"{R}/job/sample", 60)[0][2] == args[2]
    peer.until(f"{R}/job/done")


def test_cancel_over_osc(peer: Peer) -> None:
    assert peer.ask(f"{R}/controller/register") == ["127.0.0.1", peer.port]  # progress goes to registered senders
    peer.send(f"{R}/job/generate", "long", "seed", 4242, "prerender", 0, *_pairs({**TINY, "steps": 400}))
    peer.until(f"{R}/job/progress", 60)
    peer.send(f"{R}/job/cancel", "long")
    got = peer.collect(2, skip=f"{R}/job/progress")
    assert (f"{R}/job/cancelled", ["long"]) in got  # with the job's own error, in either order
    assert any(address == p.OSC_ERROR and args[:2] == ["long", "cancelled"] for address, args in got)
    peer.ask(f"{R}/controller/unregister")


def test_a_job_belongs_to_its_sender(served: Served, peer: Peer) -> None:
    other = Peer(served)  # a second controller on the same host
    assert peer.ask(f"{R}/controller/register") == ["127.0.0.1", peer.port]  # to hear its job's progress
    try:
        # the same id from two senders is two jobs, and each sender gets its own reply
        for controller, seed in ((peer, 11), (other, 12)):
            controller.send(f"{R}/job/generate", "same-id", "seed", seed, "prerender", 0,
                            *_pairs({**TINY, "steps": 30}))
        mine, theirs = [c.until(f"{R}/job/sample", 60)[0] for c in (peer, other)]
        assert mine[0] == theirs[0] == "same-id" and mine[8] != theirs[8]  # two renders, one per seed
        assert peer.until(f"{R}/job/done")[0] == other.until(f"{R}/job/done")[0] == ["same-id", 1]
        # a sender may cancel only the jobs it started
        peer.send(f"{R}/job/generate", "mine", "seed", 4343, "prerender", 0, *_pairs({**TINY, "steps": 400}))
        peer.until(f"{R}/job/progress", 60)
        # status names a sender's own running jobs, and no one else's
        assert json.loads(peer.ask(f"{R}/engine/status")[0])["queue"]["running_jobs"] == ["mine"]
        assert json.loads(other.ask(f"{R}/engine/status")[0])["queue"]["running_jobs"] == []
        _, code, _ = other.ask(f"{R}/job/cancel", "mine", reply=p.OSC_ERROR)
        assert code == "not_found"
        peer.send(f"{R}/job/cancel", "mine")  # still running, so its own sender finds it
        got = peer.collect(2, skip=f"{R}/job/progress")  # the cancel's reply and the job's error, either order
        assert (f"{R}/job/cancelled", ["mine"]) in got
        assert any(address == p.OSC_ERROR and args[:2] == ["mine", "cancelled"] for address, args in got)
    finally:
        other.close()
        peer.ask(f"{R}/controller/unregister")


# ---- who gets what: replies to their sender only, and no more of them than a packet may draw ----------------


def _message(address: str, *args: Any) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return bytes(builder.build().dgram)


def _bundle(message: bytes, size: int) -> bytes:
    """A bundle of ``message`` repeated to about ``size`` bytes."""
    bundle = OscBundleBuilder(IMMEDIATELY)
    for _ in range(size // (len(message) + 4)):
        bundle.add_content(OscPacket(message).messages[0].message)  # type: ignore[arg-type]
    return bytes(bundle.build().dgram)


def _drawn(sock: socket.socket, quiet_s: float = 1.0) -> list[bytes]:
    """Every datagram ``sock`` receives until ``quiet_s`` pass without one."""
    got = []
    sock.settimeout(quiet_s)
    while True:
        try:
            got.append(sock.recvfrom(70000)[0])
        except TimeoutError:
            return got


def _drawn_by(served: Served, packet: bytes, quiet_s: float = 1.0) -> list[bytes]:
    """What one packet from a fresh, unregistered socket draws back to it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.sendto(packet, served.osc.address)
        return _drawn(sock, quiet_s)


def _said(dgrams: list[bytes]) -> list[tuple[str, list[Any]]]:
    return [(m.message.address, list(m.message.params)) for d in dgrams for m in OscPacket(d).messages]


def test_a_small_packet_from_an_unregistered_sender_draws_little(served: Served) -> None:
    bound = p.MAX_OSC_UNREGISTERED_REPLY_BYTES
    status = _message(f"{R}/*/status")  # 28 bytes
    assert len(status) == 28
    for packet in (status, _message(f"{R}/*/*/*"), _message("/*/*/*/*"), _message(f"{R}/session/state"),
                   _bundle(status, 18_000), _bundle(_message(f"{R}/session/get/*"), 18_000)):
        dgrams = _drawn_by(served, packet)
        assert dgrams and sum(len(d) for d in dgrams) <= bound, (packet[:40], sum(len(d) for d in dgrams))
    # what did not fit is said, once, last; what fitted is whole
    said = _said(_drawn_by(served, _message(f"{R}/session/state")))
    assert [a for a, _ in said[:-1]] == [f"{R}/session/{name}" for name in [*p.SESSION_PARAMS, *p.SESSION_ALIASES]
                                         ][:len(said) - 1]
    assert said[-1][0] == p.OSC_ERROR and said[-1][1][1] == "too_large" and "register" in said[-1][1][2]
    (address, (text,)), = _said(_drawn_by(served, status))
    assert address == f"{R}/engine/status" and json.loads(text)["default_model"] == "tiny-dd"


def test_an_unregistered_senders_job_is_answered_within_the_bound(served: Served) -> None:
    request = _message(f"{R}/job/generate", "many", "seed", 77, "variations", 8, "prerender", 0, *_pairs(TINY))
    dgrams = _drawn_by(served, request, quiet_s=20)
    said = _said(dgrams)
    assert sum(len(d) for d in dgrams) <= p.MAX_OSC_UNREGISTERED_REPLY_BYTES
    assert said[0][0] == f"{R}/job/sample" or said[0] == (f"{R}/job/accepted", ["many", 0])
    assert all(address != f"{R}/job/progress" for address, _ in said)  # progress: registered senders only
    samples = [args for address, args in said if address == f"{R}/job/sample"]
    assert 0 < len(samples) < 8 and [s[1] for s in samples] == list(range(len(samples)))
    assert said[-1][0] == p.OSC_ERROR and said[-1][1][:2] == ["many", "too_large"]


def test_a_registered_controller_gets_more_but_still_a_bounded_amount(served: Served, peer: Peer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert peer.ask(f"{R}/controller/register") == ["127.0.0.1", peer.port]
    try:
        peer.send(f"{R}/session/state")
        _, before = peer.until(f"{R}/session/state")  # the whole state: more than an unregistered sender gets
        names = [address.rsplit("/", 1)[1] for address, _ in before if address != f"{R}/session/sample"]
        assert names == [*p.SESSION_PARAMS, *p.SESSION_ALIASES]
        # a status of any size comes as JSON of at most MAX_OSC_JSON_BYTES, its longest list cut
        huge = {**served.service.status(), "queue": {"running_jobs": [f"job-{i:060d}" for i in range(5000)]}}
        monkeypatch.setattr(served.service, "status", lambda *_args, **_kw: huge)
        (text,) = peer.ask(f"{R}/engine/status")
        assert len(text.encode()) <= p.MAX_OSC_JSON_BYTES
        status = json.loads(text)
        assert status["truncated"] is True and 0 < len(status["queue"]["running_jobs"]) < 5000
        # a bundle's replies together stop at MAX_OSC_REPLY_BYTES
        peer.send_raw(_bundle(_message(f"{R}/engine/status"), 18_000))  # 500 of them
        dgrams = _drawn(peer.sock)
        assert sum(len(d) for d in dgrams) <= p.MAX_OSC_REPLY_BYTES
        assert _said(dgrams)[-1][1][1] == "too_large"
    finally:
        peer.ask(f"{R}/controller/unregister")


def test_replies_go_to_their_sender_only(served: Served, peer: Peer) -> None:
    listener = Peer(served)  # a controller that registered a port on this host
    try:
        assert listener.ask(f"{R}/controller/register") == ["127.0.0.1", listener.port]
        # another sender of the same host, unregistered, is answered at its own port, not the registered one
        assert peer.ask(f"{R}/engine/ping", "mine") == ["mine"]
        peer.send(f"{R}/job/generate", "g-own", "seed", 9, *_pairs(TINY))
        assert peer.until(f"{R}/job/done", 60)[0] == ["g-own", 1]
        # feedback is what registered controllers share
        peer.send(f"{R}/session/set/prompt", "shared")
        assert peer.until(f"{R}/session/prompt")[0] == ["shared"] == listener.until(f"{R}/session/prompt")[0]
        assert listener.receive(0.5) is None  # the ping's pong and the job's messages went to peer alone
    finally:
        listener.ask(f"{R}/controller/unregister")
        listener.close()
        served.osc.session.params["prompt"] = ""


def test_registrations_are_bounded_per_host(served: Served) -> None:
    peers = [Peer(served) for _ in range(p.MAX_OSC_CONTROLLERS_PER_HOST + 2)]
    try:
        for controller in peers:
            assert controller.ask(f"{R}/controller/register") == ["127.0.0.1", controller.port]
        kept = [port for _, port in served.osc.registrations.targets()]
        assert kept == sorted(c.port for c in peers[2:])  # the host's oldest made room
        assert peers[0].ask(f"{R}/engine/ping", "still") == ["still"]  # and it is answered all the same
    finally:
        for controller in peers:
            controller.ask(f"{R}/controller/unregister")
            controller.close()


def test_an_id_is_at_most_max_id_chars(peer: Peer) -> None:
    rid, code, message = peer.ask(f"{R}/job/generate", "x" * (p.MAX_ID_CHARS + 1), *_pairs(TINY), reply=p.OSC_ERROR)
    assert (rid, code) == ("", "bad_request") and f"1–{p.MAX_ID_CHARS}" in message


# ---- an independent peer: liblo's command-line tools ------------------------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_liblo_oscsend_and_oscdump(served: Served, tmp_path: Path) -> None:
    missing = [tool for tool in ("oscsend", "oscsendfile", "oscdump") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"liblo-tools ({', '.join(missing)}) are not installed: apt-get install liblo-tools")
    host, port = served.osc.address
    dump_port = _free_udp_port()
    dump = subprocess.Popen(["oscdump", "-L", str(dump_port)], stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in dump.stdout or ()], daemon=True).start()
    seen: list[str] = []

    def dumped(text: str) -> str:
        """oscdump's lines until one holding ``text``; all of them."""
        deadline = time.monotonic() + 20
        while not any(text in line for line in seen):
            assert time.monotonic() < deadline, f"oscdump printed no {text!r}: {seen}"
            try:
                seen.append(lines.get(timeout=0.2))
            except queue.Empty:
                pass
        return "\n".join(seen)

    def oscsend(address: str, types: str = "", *values: str) -> None:
        subprocess.run(["oscsend", host, str(port), address, types, *values], check=True, timeout=10)

    try:
        time.sleep(0.3)
        # oscsendfile sends a file's messages from one socket (as one bundle): that socket registers
        # oscdump's port, so the replies to its later messages go there
        messages = tmp_path / "messages.txt"
        messages.write_text(f"{R}/controller/register i {dump_port}\n{R}/engine/ping s \"from-liblo\"\n"
                            f"{R}/session/set/bars i 4\n{R}/models/capabilities s \"tiny-dd\"\n")
        subprocess.run(["oscsendfile", host, str(port), str(messages)], check=True, timeout=10)
        text = dumped("capabilities")
        assert f'{R}/controller/registered si "127.0.0.1" {dump_port}' in text
        assert f'{R}/engine/pong s "from-liblo"' in text
        assert f"{R}/session/bars f 4.0" in text  # an int for a float parameter
        assert f'{R}/models/capabilities ss "tiny-dd"' in text
        # oscsend sends each message from a new port, which no registration follows: its replies go to
        # that port (closed by then), never to another sender's; the session's feedback still reaches
        # every registered controller, oscdump among them
        oscsend(f"{R}/engine/ping", "s", "from-oscsend")
        oscsend(f"{R}/session/set/bars", "f", "2.0")
        text = dumped(f"{R}/session/bars f 2.0")  # served in order: the ping was answered before this
        assert "from-oscsend" not in text
        oscsend(f"{R}/controller/unregister", "i", str(dump_port))  # names the port: it has no other way
        assert f'{R}/controller/unregistered si "127.0.0.1" {dump_port}' in dumped("unregistered")
        assert served.osc.registrations.targets() == []
    finally:
        dump.kill()
        dump.wait(10)
        served.osc.session.params["bars"] = 1.0
