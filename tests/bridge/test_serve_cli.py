"""``loopbridge serve`` as a user runs it: start-up, one log line per request, clean stops, refusals;
``loopbridge generate --server`` through it."""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path

import pytest
import soundfile as sf
import torch
from loopbridge.bridge.cli import main
from loopbridge.bridge.client import Client, RemoteError

from tests.bridge.conftest import spawn_engine
from tests.store_files import unreadable_store_files


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_generate_through_it_and_stop_on_sigterm_mid_render(tiny_dd_root: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    zmq_port, osc_port = _free_port(), _free_port(socket.SOCK_DGRAM)
    engine = spawn_engine(tiny_dd_root, tmp_path, "--zmq", f"tcp://127.0.0.1:{zmq_port}", "--events",
                          f"tcp://127.0.0.1:{_free_port()}", "--osc", f"127.0.0.1:{osc_port}", "--model", "tiny-dd",
                          "--prerender", "0")
    try:
        assert engine.zmq == f"tcp://127.0.0.1:{zmq_port}" and engine.osc == f"127.0.0.1:{osc_port}"
        assert "model 'tiny-dd' warm" in engine.text()
        server = ["--server", engine.zmq, "--model", "tiny-dd", "--seconds", "0.05", "--steps", "2", "--quiet"]
        assert main(["generate", *server, "--seed", "4", "--variations", "2", "--bpm", "100",
                     "--out", str(tmp_path / "out")]) == 0
        paths = [Path(line) for line in capsys.readouterr().out.split()]
        assert len(paths) == 2 and all(p.is_file() and p.parent == (tmp_path / "out").resolve() for p in paths)
        assert {sf.info(str(p)).samplerate for p in paths} == {48000}
        assert main(["generate", *server, "--bpm", "5000"]) == 2
        err = capsys.readouterr().err
        assert "tempo_bpm=5000" in err and "20–999" in err and "Traceback" not in err

        with Client(engine.zmq) as client:
            rendering = threading.Event()
            pending = client.submit("generate", {"model": "tiny-dd", "duration_s": 0.05, "steps": 400,
                                                 "seed": 77}, progress=lambda f: rendering.set())
            assert rendering.wait(120)
            engine.process.send_signal(signal.SIGTERM)
            with pytest.raises(RemoteError) as caught:
                pending.result(timeout=60)
            assert caught.value.code == "cancelled" and "shutting down" in caught.value.message
        assert engine.process.wait(60) == 0
        text = engine.text()
        assert "stopped cleanly" in text
        assert "zmq " in text and " generate id=" in text, "one line per request"
        assert unreadable_store_files(tmp_path / "store") == [] and list((tmp_path / "store" / "tmp").iterdir()) == []
    finally:
        if engine.process.poll() is None:
            engine.process.kill()


def test_ctrl_c_stops_it_the_default_model_is_warm_and_an_unknown_model_is_said_plainly(
        tiny_dd_root: Path, tmp_path: Path) -> None:
    engine = spawn_engine(tiny_dd_root, tmp_path, "--zmq", f"tcp://127.0.0.1:{_free_port()}", "--events", "off",
                          "--osc", "off", "--prerender", "0")
    try:
        assert "model 'default' warm" in engine.text(), "the embedded default model is warmed at start"
        with Client(engine.zmq) as client:
            assert client.ping("alive")["token"] == "alive"
            reply = client.generate(prompt="kick", kind="one-shot", seed=3, timeout=120)  # names no model
            (sample,) = reply.samples
            assert sample.kind == "one-shot" and sample.wav is not None and bytes(sample.wav[:4]) == b"RIFF"
            with pytest.raises(RemoteError) as caught:
                client.generate(model="no-such-model", timeout=30)
            assert caught.value.code == "unknown_model" and "no-such-model" in caught.value.message
            assert "tiny-dd" in caught.value.message and "default" in caught.value.message, "names what exists"
        engine.process.send_signal(signal.SIGINT)
        assert engine.process.wait(60) == 0
        assert "stopped cleanly" in engine.text()
    finally:
        if engine.process.poll() is None:
            engine.process.kill()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--zmq", "tcp://0.0.0.0:{port}"], "--keys DIR"),
        (["--events", "tcp://*:{port}"], "--insecure"),
        (["--osc", "0.0.0.0:{port}"], "--osc-allow"),
        (["--zmq", "udp://127.0.0.1:5"], "expected tcp://"),
        (["--osc", "127.0.0.1:99999"], "port from 1 to 65535"),
        (["--memory-budget", "0"], "more than 0 GB"),
        (["--conform-memory", "-1"], "conform-memory=-1 is not accepted: expected more than 0 GB"),
        (["--keys", "{home}/no-keys-here"], "loopbridge keys DIR"),
    ],
)
def test_unsafe_or_bad_settings_are_refused_before_anything_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   args: list[str], says: str) -> None:
    filled = [a.format(port=_free_port(), home=tmp_path) for a in args]
    status = main(["serve", "--osc", f"127.0.0.1:{_free_port(socket.SOCK_DGRAM)}", *filled])
    err = capsys.readouterr().err
    assert status == 2 and says in err and "Traceback" not in err
    assert err.count("\n") == 1, "one line"


def test_a_port_in_use_is_a_clear_message(tiny_dd_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPBRIDGE_MODELS", str(tiny_dd_root))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(["serve", "--zmq", f"tcp://127.0.0.1:{port}", "--osc", "off", "--events", "off",
                       "--prerender", "0", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and "Address already in use" in err and "another engine" in err
    assert "Traceback" not in err


def test_generate_through_an_engine_that_is_not_there(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["generate", "--server", f"tcp://127.0.0.1:{_free_port()}", "--timeout", "2", "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and "no answer from the engine" in err and "Traceback" not in err


@pytest.mark.parametrize("device", ["banana", "mps", "cuda"])
def test_a_device_this_machine_lacks_is_refused_by_name_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    from loopbridge.engine.weights import mps_available

    if (device == "mps" and mps_available()) or (device == "cuda" and torch.cuda.is_available()):
        pytest.skip(f"this machine has {device}")
    monkeypatch.setenv("LOOPBRIDGE_HOME", str(tmp_path))
    status = main(["serve", "--osc", "off", "--zmq", f"tcp://127.0.0.1:{_free_port()}", "--events", "off",
                   "--device", device, "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and f"device={device!r} is not accepted" in err and "Traceback" not in err
    assert "expected" in err and err.count("\n") == 1, "one line that says what is accepted"
