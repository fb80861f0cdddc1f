"""Faults: the engine killed with SIGKILL in the middle of a render, then started again."""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path

from loopbridge.bridge.client import Client
from loopbridge.engine.store import RenderStore

from tests.bridge.conftest import TINY, spawn_engine
from tests.store_files import unreadable_store_files


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kill_9_mid_render_then_restart(tiny_dd_root: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    args = ("--zmq", endpoint, "--events", "off", "--osc", "off", "--store", str(store_dir), "--model", "tiny-dd",
            "--prerender", "0")
    engine = spawn_engine(tiny_dd_root, tmp_path, *args, log_name="first.log")
    # the client's liveness timing is shortened so the test notices the dead engine in about a second
    client = Client(endpoint, heartbeat_interval_s=0.25, liveness=4, reconnect_initial_s=0.25, reconnect_max_s=2)
    try:
        kept = client.generate(seed=1, timeout=120, **TINY).samples[0]
        rendering = threading.Event()
        pending = client.submit("generate", {**TINY, "seed": 2, "steps": 30}, progress=lambda f: rendering.set())
        assert rendering.wait(120), "the render never started"
        engine.process.send_signal(signal.SIGKILL)
        assert engine.process.wait(30) == -signal.SIGKILL

        store = RenderStore(store_dir)  # what a new engine sees: the dead process's temp files are swept
        assert unreadable_store_files(store_dir) == [], "every indexed file is readable"
        assert list((store_dir / "tmp").iterdir()) == []
        assert [e.key for e in store.history()] == [kept.render_key], "nothing half-written was indexed"
        store.close()

        restarted = spawn_engine(tiny_dd_root, tmp_path, *args, log_name="second.log")
        try:
            reply = pending.result(timeout=240)  # the client reconnects by itself and asks again
            assert client.reconnects >= 1
            (sample,) = reply.samples
            assert sample.wav and sample.variation == 0 and not sample.cached
            again = RenderStore(store_dir)
            assert unreadable_store_files(store_dir) == [] and again.stats()["renders"] == 2
            assert client.variation(seed=1, timeout=60, **TINY).samples[0].wav == kept.wav
        finally:
            restarted.process.send_signal(signal.SIGTERM)
            assert restarted.process.wait(60) == 0, restarted.text()
    finally:
        client.close()
        if engine.process.poll() is None:
            engine.process.kill()
