"""Live Dance2Music over real UDP: a motion stream in, the dancer's tempo out as state, the session's
loop re-conformed to it (the embedded default model makes the loop)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loopbridge.bridge import protocol as p
from loopbridge.bridge.osc_server import OscServer
from loopbridge.bridge.service import Service
from loopbridge.engine.conform import read_wav_tags
from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor
from loopbridge.engine.models.registry import ModelRegistry

from tests.bridge.conftest import Served
from tests.bridge.test_osc import Peer
from tests.engine.motion_signals import dancing_body, phone_accelerometer

R = p.OSC_ROOT


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("motion-engine")
    registry = ModelRegistry(search_paths=[], hf_cache=root / "no-hub", include_embedded=True)
    engine = Engine(store_dir=root / "store", registry=registry, device="cpu")
    service = Service(FrontDoor(engine, prerender_depth=0, conform_workers=1), export_dir=root / "exports").start()
    lines: list[str] = []
    osc = OscServer(service, "127.0.0.1", 0, request_log=lines.append).start()
    yield Served(engine, service, None, osc, root, lines)  # type: ignore[arg-type]
    service.stop(timeout=30)
    osc.stop()


@pytest.fixture()
def peer(served: Served) -> Iterator[Peer]:
    controller = Peer(served)
    controller.ask(f"{R}/controller/register", controller.port)
    controller.ask(f"{R}/motion/reset")
    yield controller
    controller.ask(f"{R}/motion/set/follow", 1)
    controller.ask(f"{R}/controller/unregister", controller.port)
    controller.close()


def _stream(peer: Peer, motion: Any, address: str = f"{R}/motion/joints", start_s: float = 0.0) -> None:
    """Send every frame with its own time, a little faster than it was danced (the times keep it in order)."""
    for t, frame in zip(motion.times_s, motion.values, strict=True):
        peer.send(address, float(start_s + t), *(float(v) for v in np.nan_to_num(frame, nan=0.0).ravel()))
        time.sleep(0.0005)


def _collect(peer: Peer, seconds: float) -> list[tuple[str, list[Any]]]:
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = peer.receive(0.2)
        if message is not None:
            got.append(message)
    return got


def test_the_session_tempo_follows_the_dancer_and_the_loop_is_reconformed(served: Served, peer: Peer) -> None:
    events: list[dict[str, Any]] = []
    served.service.add_listener(lambda topic, fields: events.append(fields) if topic == "motion" else None)
    peer.ask(f"{R}/session/set/kind", "loop")
    peer.ask(f"{R}/session/set/prompt", "house")
    peer.ask(f"{R}/session/set/tempo", 120.0)
    first = peer.ask(f"{R}/session/generate", reply=f"{R}/session/sample")
    assert first[1] == "loop" and first[2] == pytest.approx(120.0)

    motion, _ = dancing_body([(10.0, 100.0), (12.0, 128.0)], jitter_cm=1.0, drop_fraction=0.05, seed=31)
    _stream(peer, motion)
    messages = _collect(peer, 8.0)
    tempos = [args[0] for address, args in messages if address == f"{R}/session/tempo"]
    readings = [args for address, args in messages if address == f"{R}/motion/tempo"]
    samples = [args for address, args in messages if address == f"{R}/session/sample"]
    assert readings, "no motion tempo was pushed"
    assert any(args[0] == pytest.approx(100.0, rel=0.02) for args in readings)  # the first section was heard
    assert tempos and tempos[-1] == pytest.approx(128.0, rel=0.02)
    assert served.osc.session.params["tempo_bpm"] == pytest.approx(tempos[-1])
    # the loop the session holds now is conformed to the dancer's tempo, without a new model run
    last = samples[-1]
    assert last[2] == pytest.approx(tempos[-1]) and last[6] == first[6]
    tags = read_wav_tags(Path(last[0]))
    assert tags.acid is not None and tags.acid.tempo_bpm == pytest.approx(tempos[-1], abs=1e-3)
    assert tags.frames == round(4 * 60 / tags.acid.tempo_bpm * 48000)
    # the same state on the PUB side
    assert events and events[-1]["session_tempo_bpm"] == pytest.approx(tempos[-1])
    assert events[-1]["bpm"] == pytest.approx(128.0, rel=0.02) and events[-1]["following"] is True
    # frames are not logged one line each; the rest is
    assert not any("motion/joints" in line for line in served.lines)


def test_with_following_off_the_tempo_is_reported_but_the_session_keeps_its_own(served: Served, peer: Peer) -> None:
    peer.ask(f"{R}/session/set/tempo", 90.0)
    assert peer.ask(f"{R}/motion/set/follow", 0) == [0]
    motion, _ = phone_accelerometer([(10.0, 116.0)], noise=0.2, seed=32)
    _stream(peer, motion, address=f"{R}/motion/accel", start_s=1000.0)
    time.sleep(1.0)
    reading = peer.ask(f"{R}/motion/get/tempo")
    assert reading[0] == pytest.approx(116.0, rel=0.02) and reading[1] > 0.3 and reading[3] == 0
    assert served.osc.session.params["tempo_bpm"] == 90.0
    # back on: the tempo heard is taken at once
    peer.send(f"{R}/motion/set/follow", 1)
    assert peer.until(f"{R}/session/tempo")[0][0] == pytest.approx(116.0, rel=0.02)
    assert peer.until(f"{R}/motion/follow")[0] == [1]


def test_bad_frames_are_answered_and_the_stream_goes_on(served: Served, peer: Peer) -> None:
    peer.send(f"{R}/motion/joints", 1.0, 2.0)
    error = peer.until(p.OSC_ERROR)[0]
    assert error[1] == "bad_request" and "x y z per joint" in error[2]
    peer.send(f"{R}/motion/accel", "x", 1.0, 2.0)
    assert peer.until(p.OSC_ERROR)[0][1] == "bad_request"
    peer.send(f"{R}/motion/set/follow", 3)
    assert "0 (the session keeps its tempo) or 1" in peer.until(p.OSC_ERROR)[0][2]
    assert peer.ask(f"{R}/motion/reset") == [0.0, 0.0, 0.0, 1]
    assert peer.ask(f"{R}/engine/ping", "still here") == ["still here"]
