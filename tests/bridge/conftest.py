"""A real engine behind real sockets on loopback, shared by a test module (the tiny model, tiny renders)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from loopbridge.bridge.osc_server import OscServer
from loopbridge.bridge.service import Service
from loopbridge.bridge.zmq_server import ZmqServer
from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor
from loopbridge.engine.models.registry import ModelRegistry

#: a request the tiny model renders in a fraction of a second
TINY: dict[str, Any] = {"model": "tiny-dd", "duration_s": 0.05, "steps": 2}


@dataclass
class Served:
    engine: Engine
    service: Service
    zmq: ZmqServer
    osc: OscServer
    root: Path
    lines: list[str]


def start_served(models_root: Path, root: Path, default_model: str = "tiny-dd", prerender_depth: int = 0,
                 osc_options: dict[str, Any] | None = None, **zmq_options: Any) -> Served:
    torch.set_num_threads(1)  # the machine is shared; one thread is also the fastest for the tiny model
    registry = ModelRegistry(search_paths=[models_root], hf_cache=root / "no-hub", include_embedded=False)
    engine = Engine(store_dir=root / "store", registry=registry, device="cpu")
    door = FrontDoor(engine, prerender_depth=prerender_depth, conform_workers=1)
    service = Service(door, default_model=default_model, export_dir=root / "exports").start()
    lines: list[str] = []
    zmq_server = ZmqServer(service, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", request_log=lines.append,
                           **zmq_options).start()
    osc_server = OscServer(service, "127.0.0.1", 0, request_log=lines.append, **(osc_options or {})).start()
    return Served(engine, service, zmq_server, osc_server, root, lines)


def stop_served(served: Served) -> None:
    served.service.stop(timeout=30)
    served.osc.stop()
    served.zmq.stop()


@pytest.fixture(scope="module")
def served(tiny_dd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    instance = start_served(tiny_dd_root, tmp_path_factory.mktemp("engine"))
    yield instance
    stop_served(instance)


# ---- an engine in its own process --------------------------------------------------------------------------

READY = re.compile(r"loopbridge serve: ready: zmq (\S+), events (\S+), osc (\S+),")


@dataclass
class EngineProcess:
    process: subprocess.Popen[str]
    zmq: str
    events: str
    osc: str
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def engine_env(models_root: Path, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"LOOPBRIDGE_MODELS": str(models_root), "LOOPBRIDGE_HOME": str(home), "HF_HUB_OFFLINE": "1",
                "HF_HUB_CACHE": str(home / "hf"), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    return env


def spawn_engine(models_root: Path, home: Path, *args: str, log_name: str = "engine.log",
                 timeout_s: float = 180.0) -> EngineProcess:
    """``loopbridge serve`` in a child process; returns once it printed its ready line."""
    log = home / log_name
    handle = open(log, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "loopbridge.bridge.cli", "serve", "--threads", "1", "--device", "cpu", *args],
        stdout=handle, stderr=subprocess.STDOUT, text=True, env=engine_env(models_root, home),
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = READY.search(log.read_text(errors="replace"))
        if match:
            return EngineProcess(process, match.group(1), match.group(2), match.group(3), log)
        if process.poll() is not None:
            raise AssertionError(f"the engine exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the engine did not get ready in {timeout_s} s:\n{log.read_text()}")

