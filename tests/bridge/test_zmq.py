"""Every message type over real ZeroMQ sockets on loopback, through the Python client and raw sockets."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import zmq
from loopbridge.bridge import protocol as p
from loopbridge.bridge.client import Client, Events, RemoteError

from tests.bridge.conftest import TINY, Served, start_served, stop_served


@pytest.fixture(scope="module")
def client(served: Served) -> Any:
    with Client(served.zmq.endpoint) as c:
        yield c


class Raw:
    """A bare DEALER (or REQ) socket, to send what the client never would."""

    def __init__(self, endpoint: str, kind: int = zmq.DEALER) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(kind)
        self.sock.linger = 0
        self.sock.connect(endpoint)

    def send(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def recv(self, timeout_s: float = 10.0) -> list[bytes] | None:
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        return self.sock.recv_multipart()

    def recv_header(self, timeout_s: float = 10.0, skip: tuple[str, ...] = ("heartbeat",)) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            frames = self.recv(max(0.0, deadline - time.monotonic()))
            if frames is None:
                return None
            header = json.loads(frames[0])
            if header.get("type") not in skip:
                return header
        return None

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


def _header(**fields: Any) -> bytes:
    return json.dumps({"v": p.PROTOCOL_VERSION, **fields}).encode()


def _wav(sample_rate: int = 16000, seconds: float = 0.05) -> bytes:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1) * 0.3, sample_rate, format="WAV")
    return buffer.getvalue()


# ---- quick requests ----------------------------------------------------------------------------------------


def test_hello_models_capabilities_status_ping(client: Client, served: Served) -> None:
    hello = client.hello()
    assert hello["re"] == "hello" and hello["protocol_version"] == p.PROTOCOL_VERSION
    assert hello["default_model"] == "tiny-dd" and "tiny-dd" in hello["models"]
    assert hello["limits"]["max_header_bytes"] == p.MAX_HEADER_BYTES
    models = client.models()
    assert [m["id"] for m in models] == ["tiny-dd"] and models[0]["capabilities"]["family"] == "dance-diffusion"
    assert client.capabilities("tiny-dd")["sample_rate"] == 16000
    with pytest.raises(RemoteError) as caught:
        client.capabilities("no-such-model")
    assert caught.value.code == "unknown_model" and "tiny-dd" in caught.value.message
    status = client.status()
    assert status["device"] == "cpu" and "queued" in status["queue"] and status["store"]["root"]
    pong = client.ping("tok-1")
    assert pong["type"] == "pong" and pong["token"] == "tok-1"
    deadline = time.monotonic() + 5  # the line is written just after the reply has gone
    while not any(f"id={pong['id']} ok" in line for line in served.lines) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any(f" ping id={pong['id']} ok" in line for line in served.lines), "one log line per request"


def test_history_and_its_bounds(client: Client) -> None:
    assert isinstance(client.history(limit=5), list)
    with pytest.raises(RemoteError) as caught:
        client.history(limit=0)
    assert caught.value.code == "bad_request" and caught.value.field == "limit"
    assert client.history(offset=2**63 - 1) == []  # SQLite's largest integer
    for offset in (2**63, 10**30, -1):
        with pytest.raises(RemoteError) as caught:
            client.history(offset=offset)
        assert caught.value.code == "bad_request" and caught.value.field == "offset", caught.value.header


def test_cancel_of_nothing_is_not_found(client: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        client.cancel("never-sent")
    assert caught.value.code == "not_found" and caught.value.field == "target"


# ---- jobs ------------------------------------------------------------------------------------------------


def test_generate_variation_conform_recall_history(client: Client, served: Served) -> None:
    fractions: list[float] = []
    reply = client.generate(prompt="kick", seed=7, tempo_bpm=128, sample_rate=44100, progress=fractions.append,
                            timeout=120, **TINY)
    assert reply["re"] == "generate" and reply["count"] == 1 and reply["seed"] == 7
    (sample,) = reply.samples
    assert sample.wav is not None and sample.frame == 1 and not sample.cached
    audio, rate = sf.read(io.BytesIO(sample.wav), always_2d=True)
    assert rate == 44100 == sample.sample_rate and audio.shape == (sample.frames, sample.channels)
    assert sample.path.endswith(".wav") and sample.tempo_bpm == 128 and sample.variation == 0
    assert fractions and fractions[-1] == pytest.approx(1.0)

    again = client.variation(prompt="kick", seed=7, tempo_bpm=128, sample_rate=44100, timeout=30, **TINY)
    assert again.samples[0].cached and again.samples[0].key == sample.key and again.samples[0].wav == sample.wav

    conformed = client.conform(sample.render_key, tempo_bpm=90, sample_rate=22050, timeout=60)
    assert conformed.samples[0].sample_rate == 22050 and conformed.samples[0].render_key == sample.render_key
    assert sf.info(io.BytesIO(conformed.samples[0].wav)).samplerate == 22050

    recalled = client.recall(sample.render_key[:10], tempo_bpm=90, sample_rate=22050, timeout=30)
    assert recalled.samples[0].key == conformed.samples[0].key

    assert sample.render_key in [e["key"] for e in client.history(limit=50)]
    no_audio = client.variation(prompt="kick", seed=7, tempo_bpm=128, sample_rate=44100, audio=False, timeout=30,
                                **TINY)
    assert no_audio.frames == [] and no_audio.samples[0].wav is None and "frame" not in no_audio.samples[0].fields


def test_several_variations_come_as_one_batch_with_one_frame_each(client: Client) -> None:
    reply = client.generate(seed=100, variations=3, timeout=120, **TINY)
    assert [s.variation for s in reply.samples] == [0, 1, 2]
    assert [s.frame for s in reply.samples] == [1, 2, 3] and len(reply.frames) == 3
    assert len({s.render_key for s in reply.samples}) == 3


def test_an_audio_prompt_travels_as_a_binary_frame(client: Client) -> None:
    reply = client.generate(seed=3, audio_prompt_frame=1, audio_prompt_strength=0.3, frames=[_wav()], timeout=120,
                            **TINY)
    assert reply.samples[0].wav is not None


def test_bad_audio_prompts_are_refused_with_the_reason(client: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        client.generate(seed=3, audio_prompt_frame=1, frames=[b"RIFF not really a wav"], timeout=30, **TINY)
    assert caught.value.code == "bad_audio" and "frame 1" in caught.value.message
    with pytest.raises(RemoteError) as caught:
        client.generate(seed=3, audio_prompt_frame=2, frames=[_wav()], timeout=30, **TINY)
    assert caught.value.code == "bad_request" and caught.value.field == "audio_prompt_frame"


def test_an_audio_prompt_over_its_samples_is_too_large_before_it_is_decoded(client: Client,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from loopbridge.engine import request

    monkeypatch.setattr(request, "AUDIO_PROMPT_MAX_SAMPLES", 1000)
    monkeypatch.setattr(sf.SoundFile, "read", lambda *_, **__: pytest.fail("decoded before the check"))
    with pytest.raises(RemoteError) as caught:
        client.generate(seed=3, audio_prompt_frame=1, frames=[_wav()], timeout=30, **TINY)
    assert caught.value.code == "too_large" and caught.value.field == "audio_prompt"
    assert "at most 1000 samples" in caught.value.message


def test_morph_on_a_model_that_cannot_morph_and_without_a_target(client: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        client.morph(morph_prompt="snare", morph_amount=0.5, timeout=30, **TINY)
    assert caught.value.code == "unsupported" and "morph" in caught.value.message
    with pytest.raises(RemoteError) as caught:
        client.morph(morph_amount=0.5, timeout=30, **TINY)
    assert caught.value.code == "bad_request" and caught.value.field == "morph_prompt"


def test_bad_values_name_the_field_and_the_accepted_range(client: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        client.generate(tempo_bpm=5000, timeout=30, **TINY)
    assert caught.value.code == "bad_request" and caught.value.field == "tempo_bpm"
    assert "20–999" in caught.value.message
    with pytest.raises(RemoteError) as caught:
        client.generate(prompt="x", model="nope", timeout=30)
    assert caught.value.code == "unknown_model" and "tiny-dd" in caught.value.message
    with pytest.raises(RemoteError) as caught:
        client.conform("ab" * 32, timeout=30)
    assert caught.value.code == "not_found"


def test_cancel_a_running_render(client: Client, served: Served) -> None:
    started = threading.Event()
    pending = client.submit("generate", {**TINY, "seed": 999, "steps": 400, "prerender": False},
                            progress=lambda f: started.set())
    assert started.wait(60), "the render never started"
    reply = client.cancel(pending.id)
    assert reply["cancelled"] is True and reply["target"] == pending.id
    with pytest.raises(RemoteError) as caught:
        pending.result(timeout=30)
    assert caught.value.code == "cancelled"
    assert client.ping("after").get("token") == "after"


# ---- the wire itself ------------------------------------------------------------------------------------------


def test_a_message_over_its_total_is_too_large_before_anything_in_it_is_decoded(tiny_dd_root: Path,
                                                                               tmp_path: Path) -> None:
    """libzmq bounds each frame (ZMQ_MAXMSGSIZE); the engine bounds the whole message as it arrives, before
    the header is decoded or a prompt read, and answers naming the limit; the connection goes on."""
    served = start_served(tiny_dd_root, tmp_path, max_message_bytes=1_000_000, max_frame_bytes=600_000)
    raw = Raw(served.zmq.endpoint)
    try:
        raw.send(_header(type="generate", id="big", audio_prompt_frame=1, **TINY), *[b"\0" * 400_000] * 4)
        error = raw.recv_header()
        assert error is not None and error["type"] == "error" and error["id"] == "big", error
        assert error["code"] == "too_large" and "at most 1000000 bytes (MAX_MESSAGE_BYTES" in error["message"]
        raw.send(_header(type="ping", id="after"))
        pong = raw.recv_header()
        assert pong is not None and pong["type"] == "pong"
    finally:
        raw.close()
        stop_served(served)


@pytest.mark.slow
def test_the_reported_message_of_four_200_mb_frames_is_refused(served: Served) -> None:
    """The report's message, four frames of 200 MB (RSS went from 0.6 to 1.37 GB): each frame is under
    MAX_BINARY_FRAME_BYTES, their sum over MAX_MESSAGE_BYTES; refused as it arrives, naming the limit."""
    assert 200_000_000 < p.MAX_BINARY_FRAME_BYTES < 2 * 200_000_000
    raw = Raw(served.zmq.endpoint)
    try:
        frame = b"\0" * 200_000_000
        raw.send(_header(type="generate", id="four", audio_prompt_frame=1, **TINY), frame, frame, frame, frame)
        del frame
        error = raw.recv_header(timeout_s=60)
        assert error is not None and error["code"] == "too_large" and error["id"] == "four", error
        assert f"at most {p.MAX_MESSAGE_BYTES} bytes" in error["message"]
    finally:
        raw.close()


def test_the_client_refuses_to_send_what_the_engine_would_drop(client: Client,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(p, "MAX_MESSAGE_BYTES", 10_000)
    with pytest.raises(p.ProtocolError, match="MAX_MESSAGE_BYTES") as caught:
        client.submit("generate", {"audio_prompt_frame": 1, **TINY}, [b"\0" * 20_000])
    assert caught.value.code is p.ErrorCode.TOO_LARGE
    monkeypatch.undo()
    assert client.ping("still").get("token") == "still"


@pytest.mark.parametrize(
    ("frames", "code", "echoed_id"),
    [
        ([b"not json"], "malformed", None),
        ([b"[1, 2]"], "malformed", None),
        ([json.dumps({"type": "ping", "id": "a"}).encode()], "malformed", "a"),  # no version
        ([_header(type="ping", id="b") [:-3]], "malformed", None),  # truncated
        ([json.dumps({"v": 99, "type": "ping", "id": "c"}).encode()], "version_mismatch", "c"),
        ([_header(type="dance", id="d")], "unknown_type", "d"),
        ([_header(type="status")], "malformed", None),  # no id
        ([_header(type="history", id="e", limit="ten")], "bad_request", "e"),
        ([_header(type="history", id="f", colour="red")], "bad_request", "f"),
        ([_header(type="ping", id="g", token="x" * (p.MAX_HEADER_BYTES + 1))], "too_large", "g"),
        ([_header(type="ping", id="g2", token="x" * 10_000_000)], "too_large", "g2"),  # the id is read back
        ([_header(type="ping", token="x" * (p.MAX_HEADER_BYTES + 1), id="g3")], "too_large", None),  # too far in
        ([b'{"v":1,"type":"ping","id":"deep","token":' + b"[" * 20000 + b"]" * 20000 + b"}"], "malformed", "deep"),
        ([_header(type="ping", id="h"), *[b"x"] * p.MAX_FRAMES], "too_large", "h"),
        ([b""], "malformed", None),
        ([_header(type="ping", id="i", token=float("nan"))], "malformed", "i"),  # NaN is not JSON
    ],
)
def test_malformed_messages_get_an_error_that_names_the_problem(served: Served, frames: list[bytes], code: str,
                                                               echoed_id: str | None) -> None:
    raw = Raw(served.zmq.endpoint)
    try:
        raw.send(*frames)
        error = raw.recv_header()
        assert error is not None and error["type"] == "error" and error["code"] == code, error
        assert error["id"] == echoed_id and error["number"] == p.ERROR_NUMBERS[p.ErrorCode(code)]
        raw.send(_header(type="ping", id="ok", token="still here"))
        assert raw.recv_header()["token"] == "still here"
    finally:
        raw.close()


def test_a_req_socket_with_its_empty_delimiter_frame_is_served(served: Served) -> None:
    raw = Raw(served.zmq.endpoint, zmq.REQ)
    try:
        raw.send(_header(type="ping", id="req", token="r"))
        frames = raw.recv()
        assert frames is not None and json.loads(frames[0])["token"] == "r"
    finally:
        raw.close()


def test_heartbeats_flow_both_ways(served: Served) -> None:
    raw = Raw(served.zmq.endpoint)
    try:
        raw.send(_header(type="heartbeat"))  # no reply to a heartbeat itself...
        header = raw.recv_header(timeout_s=3 * p.HEARTBEAT_INTERVAL_S, skip=())
        assert header is not None and header["type"] == "heartbeat"  # ...but the engine's own beat comes
    finally:
        raw.close()


def test_events_are_published(served: Served, client: Client) -> None:
    with Events(served.zmq.events_endpoint) as events:
        time.sleep(0.3)  # a subscription takes a moment to reach the publisher
        request_id = f"ev-{uuid.uuid4().hex[:6]}"
        client.submit("generate", {**TINY, "seed": 31337, "prerender": False}, request_id=request_id).result(120)
        seen: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not {"state", "ready", "progress"} <= seen.keys():
            item = events.next(timeout=0.5)
            if item is not None and item[1].get("id") in (None, request_id):
                seen.setdefault(item[0], item[1])
    assert seen["ready"]["samples"][0]["render_key"] and seen["ready"]["re"] == "generate"
    assert 0 < seen["progress"]["fraction"] <= 1 and "queued" in seen["state"]


def test_the_client_reconnects_to_an_engine_that_came_back(tiny_dd_root: Any, tmp_path: Any) -> None:
    from tests.bridge.conftest import start_served, stop_served

    first = start_served(tiny_dd_root, tmp_path / "a")
    endpoint = first.zmq.endpoint
    client = Client(endpoint, heartbeat_interval_s=0.2, liveness=3, reconnect_initial_s=0.1)
    try:
        assert client.ping("one").get("token") == "one"
        stop_served(first)
        pending = client.submit("ping", {"token": "two"})
        time.sleep(1.0)  # the client notices the silence and starts reconnecting
        second = start_served(tiny_dd_root, tmp_path / "b")
        second.zmq.stop()
        from loopbridge.bridge.zmq_server import ZmqServer

        again = ZmqServer(second.service, endpoint, None).start()  # the same port as before
        try:
            assert pending.result(timeout=30)["token"] == "two"
            assert client.reconnects >= 1
        finally:
            again.stop()
            second.service.stop()
            second.osc.stop()
    finally:
        client.close()


def test_the_hosts_meter_goes_in_as_it_is_and_the_engine_decides_the_loop(client: Client) -> None:
    """What the plugin and the device send: the time signature and bars of it; the engine's bar comes back."""
    loop = {"model": "tiny-dd", "kind": "loop", "steps": 2, "seed": 71, "sample_rate": 16000, "prerender": False}
    reply = client.generate(timeout=120, tempo_bpm=600.0, meter_numerator=7, meter_denominator=8, bars=2, **loop)
    (sample,) = reply.samples
    # two bars of 7/8 at 600 BPM: one bar of 7 quarter notes, 0.7 s
    assert sample.beats == 7 and sample.frames == 7 * 1600 and "notes" not in reply.header
    wav, rate = sf.read(io.BytesIO(sample.wav))
    assert rate == 16000 and len(wav) == 7 * 1600
    # a length the engine cannot hold is made as near as it can, and the reply says so
    reply = client.generate(timeout=120, tempo_bpm=240.0, meter_numerator=1, meter_denominator=32, bars=1, **loop)
    assert reply.samples[0].beats == 0.25
    assert reply["notes"] == ["1 bar of 1/32 cannot be made exactly: 0.25 quarter notes instead of 0.125 "
                              "(0.25 bars of 1 beat)"]
    with pytest.raises(RemoteError) as caught:
        client.generate(timeout=30, tempo_bpm=600.0, meter_numerator=7, beats_per_bar=3, bars=2, **loop)
    assert caught.value.code == "bad_request" and caught.value.header["field"] == "meter_denominator"


def test_a_model_folder_still_arriving_holds_up_the_request_that_reads_it_alone(tiny_dd_root: Path,
                                                                                  tmp_path: Path) -> None:
    """A model folder whose config is still arriving (a named pipe nobody has written yet, as a file
    on a slow share reads): the ``models`` request that reads it waits, and the socket loop goes on
    meanwhile: the asking client hears the engine's heartbeats, and another client's ping, status and
    render are answered. Once the config arrives, the reply lists the new model with what it can do."""
    models = tmp_path / "models"
    shutil.copytree(tiny_dd_root, models)
    served = start_served(models, tmp_path / "engine")
    config = models / "slow-dd" / "unet" / "config.json"
    shutil.copytree(models / "tiny-dd", models / "slow-dd")
    text = config.read_text()
    config.unlink()
    os.mkfifo(config)
    asking, other = Raw(served.zmq.endpoint), Client(served.zmq.endpoint)
    try:
        asking.send(_header(type="models", id="slow-models"))
        beat = asking.recv_header(timeout_s=3 * p.HEARTBEAT_INTERVAL_S, skip=())
        assert beat is not None and beat["type"] == "heartbeat", beat
        assert other.ping("meanwhile")["token"] == "meanwhile"
        assert other.status().get("queue") is not None
        [sample] = other.submit("generate", {**TINY, "seed": 4242, "prerender": False}).result(120).samples
        assert sample.render_key and sample.wav
        with open(config, "w", encoding="utf-8") as pipe:  # the reader is waiting on it: opens at once
            pipe.write(text)
        reply = asking.recv_header(timeout_s=30)
        assert reply is not None and reply["re"] == "models" and reply["id"] == "slow-models", reply
        rows = {row["id"]: row for row in reply["models"]}
        assert set(rows) == {"tiny-dd", "slow-dd"}
        assert rows["slow-dd"]["capabilities"] == rows["tiny-dd"]["capabilities"]
    finally:
        try:  # a reader still waiting on the pipe (the assertions above failed): given its config
            fd = os.open(config, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            pass
        else:
            os.write(fd, text.encode())
            os.close(fd)
        other.close()
        asking.close()
        stop_served(served)
