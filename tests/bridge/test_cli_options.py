"""Speed and memory options on the command line (generate, serve), ``generate --server`` fields and
waiting, and ``loopbridge models``' features: bad values are one-line errors with exit status 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import loopbridge.bridge.server as server_module
import loopbridge.engine.core as core_module
import pytest
from loopbridge.bridge import cli
from loopbridge.bridge.cli import main
from loopbridge.bridge.security import generate_keys, load_server_keys
from loopbridge.bridge.server import ServeOptions, serve
from loopbridge.bridge.zmq_server import ZmqServer
from loopbridge.engine.models.base import LoadOptions

from tests.bridge.conftest import Served, start_served, stop_served
from tests.engine.models.tiny_pipelines import tiny_models_root


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def families() -> Path:
    return tiny_models_root()


# ---- generate and models ---------------------------------------------------------------------------------


def test_another_scheduler_on_the_same_store_is_another_render(families: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPBRIDGE_MODELS", str(families))
    store = str(tmp_path / "store")
    base = ["generate", "rain", "--model", "tiny-audioldm", "--kind", "texture", "--seconds", "0.2", "--steps", "2",
            "--seed", "5", "--store", store, "--quiet", "--out", str(tmp_path / "out")]
    assert _run(base, capsys)[0] == 0
    assert _run([*base, "--scheduler", "euler"], capsys)[0] == 0
    assert _run([*base, "--scheduler", "euler"], capsys)[0] == 0  # this one from the store
    code, out, _ = _run(["history", "--json", "--store", store], capsys)
    renders = json.loads(out)
    assert code == 0 and len(renders) == 2, "the default scheduler's render is not served for euler"
    assert sorted(str(r["info"].get("load_settings")) for r in renders) == ["None", "{'scheduler': 'euler'}"]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--attention", "eager"], ["attention='eager'", "sdpa"]),  # Stable Audio's transformer has only sdpa
        (["--attention", "flash"], ["attention='flash'", "sdpa, eager"]),
        (["--scheduler", "warp-drive"], ["scheduler='warp-drive'", "dpm++"]),
        (["--dtype", "fp16"], ["dtype='fp16'", "GPU"]),
        (["--dtype", "fp64"], ["dtype='fp64'", "fp32, fp16, bf16"]),
    ],
)
def test_bad_option_values_are_bad_input(families: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch, options: list[str], says: list[str]) -> None:
    monkeypatch.setenv("LOOPBRIDGE_MODELS", str(families))
    code, out, err = _run(["generate", "pad", "--model", "tiny-stable-audio", "--seconds", "0.2", "--steps", "2",
                           "--device", "cpu", "--out", str(tmp_path / "out"), "--quiet", *options], capsys)
    assert code == 2 and out == "" and "Traceback" not in err
    (error,) = [line for line in err.splitlines() if "error" in line]
    assert error.startswith("loopbridge: error:") and "model_load_failed" not in error
    for words in says:
        assert words in error
    assert not (tmp_path / "out").exists(), "nothing written"


def test_models_lists_the_start_offset(families: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPBRIDGE_MODELS", str(families))
    code, out, _ = _run(["models"], capsys)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if not line.startswith(" ")}
    assert "start offset (--start)" in lines["tiny-stable-audio"]
    assert "start offset" not in lines["tiny-audioldm"] and "morph" in lines["tiny-riffusion"]


# ---- serve -----------------------------------------------------------------------------------------------------


def test_serve_takes_the_speed_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ServeOptions] = []
    monkeypatch.setattr(server_module, "serve", lambda options: seen.append(options) or 0)
    assert main(["serve", "--osc", "off", "--dtype", "bf16", "--attention", "SDPA", "--scheduler", "dpm++",
                 "--compile", "--cpu-offload", "--quiet"]) == 0
    (options,) = seen
    assert options.dtype == "bf16"
    assert options.load_options == LoadOptions(attention="sdpa", compile=True, scheduler="dpm++", cpu_offload=True)


def test_serve_builds_its_engine_with_them(tiny_dd_root: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[dict[str, Any]] = []

    class Recording(core_module.Engine):
        def __init__(self, **kwargs: Any) -> None:
            built.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(core_module, "Engine", Recording)
    monkeypatch.setenv("LOOPBRIDGE_MODELS", str(tiny_dd_root))
    stop, ready = threading.Event(), threading.Event()
    where: dict[str, str] = {}

    def on_ready(fields: dict[str, str]) -> None:
        where.update(fields)
        ready.set()
        stop.set()

    options = ServeOptions(zmq="tcp://127.0.0.1:*", events=None, osc=None, device="cpu", store=tmp_path / "store",
                           model="tiny-dd", prerender=0, log_requests=False, dtype="bf16",
                           load_options=LoadOptions(scheduler="ipndm", attention="sdpa"))
    status: list[int] = []
    runner = threading.Thread(target=lambda: status.append(serve(options, stop=stop, on_ready=on_ready)))
    runner.start()
    runner.join(180)
    assert ready.is_set() and status == [0]
    (kwargs,) = built
    assert str(kwargs["dtype"]) == "torch.bfloat16" and where["dtype"] == "bf16"
    assert kwargs["load_options"] == LoadOptions(scheduler="ipndm", attention="sdpa")


def test_serve_takes_a_default_loudness_and_refuses_one_out_of_range(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[ServeOptions] = []
    monkeypatch.setattr(server_module, "serve", lambda options: seen.append(options) or 0)
    assert main(["serve", "--osc", "off", "--loudness", "-18", "--quiet"]) == 0
    assert seen[0].loudness_lufs == -18.0
    assert main(["serve", "--osc", "off", "--quiet"]) == 0
    assert seen[1].loudness_lufs is None  # the engine's default, -14 LUFS
    capsys.readouterr()
    assert main(["serve", "--osc", "off", "--loudness", "-60", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "loudness=-60 is not accepted: expected an integrated loudness from -40 to -6 LUFS" in err
    assert len(seen) == 2  # refused before anything started


def test_serve_gives_the_front_door_its_conform_memory_and_the_weights_the_rest(
        tiny_dd_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--conform-memory goes to the front door; on a CPU the weights' default budget (80 % of the RAM
    available) leaves it out, as both live in the same RAM."""
    from loopbridge.engine import frontdoor as frontdoor_module
    from loopbridge.engine import weights as weights_module

    seen: list[ServeOptions] = []
    monkeypatch.setattr(server_module, "serve", lambda options: seen.append(options) or 0)
    assert main(["serve", "--osc", "off", "--conform-memory", "1.5", "--quiet"]) == 0
    assert seen[0].conform_memory_gb == 1.5
    monkeypatch.undo()
    engines: list[dict[str, Any]] = []
    doors: list[dict[str, Any]] = []

    class Recording(core_module.Engine):
        def __init__(self, **kwargs: Any) -> None:
            engines.append(kwargs)
            super().__init__(**kwargs)

    class RecordingDoor(frontdoor_module.FrontDoor):
        def __init__(self, engine: Any, **kwargs: Any) -> None:
            doors.append(kwargs)
            super().__init__(engine, **kwargs)

    monkeypatch.setattr(core_module, "Engine", Recording)
    monkeypatch.setattr(frontdoor_module, "FrontDoor", RecordingDoor)
    monkeypatch.setattr(weights_module, "default_budget_bytes", lambda device: 8_000_000_000)  # 80 % of 10 GB
    monkeypatch.setenv("LOOPBRIDGE_MODELS", str(tiny_dd_root))
    stop, ready = threading.Event(), threading.Event()
    where: dict[str, str] = {}

    def on_ready(fields: dict[str, str]) -> None:
        where.update(fields)
        ready.set()
        stop.set()

    options = ServeOptions(zmq="tcp://127.0.0.1:*", events=None, osc=None, device="cpu", store=tmp_path / "store",
                           model="tiny-dd", prerender=0, log_requests=False, conform_memory_gb=1.5)
    status: list[int] = []
    runner = threading.Thread(target=lambda: status.append(serve(options, stop=stop, on_ready=on_ready)))
    runner.start()
    runner.join(180)
    assert ready.is_set() and status == [0]
    assert doors[0]["conform_memory_bytes"] == 1_500_000_000 and where["conform_memory"] == "1.5 GB"
    assert engines[0]["memory_budget_bytes"] == 8_000_000_000 - 1_500_000_000


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--dtype", "fp16"], "dtype='fp16'"),
        (["--attention", "fast"], "attention='fast'"),
        (["--model", "tiny-dd", "--scheduler", "euler"], "scheduler='euler'"),
        (["--scheduler", "euler"], "scheduler='euler'"),  # the default model, warmed at start
    ],
)
def test_serve_refuses_option_values_before_it_listens(tiny_dd_root: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, options: list[str],
                                                       says: str) -> None:
    monkeypatch.setenv("LOOPBRIDGE_MODELS", str(tiny_dd_root))
    code, _, err = _run(["serve", "--zmq", f"tcp://127.0.0.1:{_free_port()}", "--events", "off", "--osc", "off",
                         "--device", "cpu", "--prerender", "0", "--quiet", *options], capsys)
    assert code == 2 and says in err and "Traceback" not in err
    assert "expected" in err.splitlines()[-1] and err.splitlines()[-1].startswith("loopbridge: error:")


# ---- generate --server -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tiny_dd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    instance = start_served(tiny_dd_root, tmp_path_factory.mktemp("engine"))
    yield instance
    stop_served(instance)


def test_start_reaches_the_engine_and_engine_side_options_are_said_to_do_nothing(
        served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # tiny-dd cannot start at an offset: the engine's refusal shows that --start went out
    code, out, err = _run(["generate", "--server", served.zmq.endpoint, "--model", "tiny-dd", "--seconds", "0.05",
                           "--steps", "2", "--start", "1.5", "--scheduler", "euler", "--dtype", "bf16", "--quiet",
                           "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and out == "" and "start_s must be 0" in err
    (warning,) = [line for line in err.splitlines() if "warning" in line]
    assert "--dtype, --scheduler have no effect with --server" in warning and "loopbridge serve" in warning


def test_no_engine_there_says_it_waits_then_gives_up(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    code, _, err = _run(["generate", "--server", endpoint, "--timeout", "1.5", "--quiet"], capsys)
    assert code == 1 and "Traceback" not in err
    waiting, error = err.splitlines()
    assert waiting.startswith(f"loopbridge: waiting for the engine at {endpoint}")
    assert error.startswith("loopbridge: error: no answer from the engine") and "within 1.5 s" in error


def test_a_curve_engine_without_its_key_is_not_waited_for_forever(
        served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate_keys(tmp_path / "keys")
    curve = ZmqServer(served.service, "tcp://127.0.0.1:*", None, keys=load_server_keys(tmp_path / "keys")).start()
    try:
        code, _, err = _run(["generate", "--server", curve.endpoint, "--timeout", "1.5", "--quiet", "--model",
                             "tiny-dd"], capsys)
    finally:
        curve.stop()
    assert code == 1 and "no answer from the engine" in err and "--server-key" in err


def test_a_bad_timeout_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["generate", "--server", "tcp://127.0.0.1:1", "--timeout", "0"], capsys)
    assert code == 2 and "timeout=0 is not accepted" in err


class _AliveClient:
    """An engine that keeps sending heartbeats (it was heard just now, every time it is asked)."""

    @property
    def last_heard(self) -> float:
        return time.monotonic()


class _SlowPending:
    """A reply that comes only after ``polls`` waits of 0.05 s each."""

    def __init__(self, polls: int) -> None:
        self.polls = polls

    def result(self, timeout: float | None = None) -> str:
        if self.polls == 0:
            return "the reply"
        self.polls -= 1
        time.sleep(0.05)
        raise TimeoutError


def test_a_render_longer_than_the_timeout_is_waited_for_while_the_engine_lives() -> None:
    pending = _SlowPending(polls=12)  # at least 0.6 s, twice the silence allowed
    assert cli.generate.await_reply(_AliveClient(), pending, "tcp://x:1", 0.3, lambda: None) == "the reply"


def test_an_engine_that_falls_silent_is_given_up_on() -> None:
    class Fallen:
        last_heard = time.monotonic()

    with pytest.raises(TimeoutError, match=r"silent for 0\.3 s"):
        cli.generate.await_reply(Fallen(), _SlowPending(polls=10**6), "tcp://x:1", 0.3, lambda: None)


def test_the_command_line_is_parsed_without_importing_torch() -> None:
    # every command builds the whole parser first: what it imports, each command pays for (--help alone too)
    probe = ("import sys, contextlib, io\n"
             "from loopbridge.bridge.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
             "    main(['--help'])\n"
             "assert 'dance2music' in out.getvalue(), out.getvalue()\n"
             "print(sorted(m for m in ('torch', 'diffusers', 'loopbridge.engine.core') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
