"""A real ``loopbridge serve`` in its own process, for the tests that host the built VST3."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster_head import Head

READY = re.compile(r"loopbridge serve: ready: zmq (\S+), events (\S+), osc (\S+),")
JOB_ERROR = re.compile(r" (?:generate|variation|morph|conform) id=\S+ error .*")


@dataclass
class RunningEngine:
    process: subprocess.Popen
    endpoint: str
    store_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_all()[-4000:]

    def log_all(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Wait until the ready line names the ZeroMQ endpoint; fails the test (the engine stopped) if
        it exits or stays silent for ``timeout_s``."""
        try:
            deadline = time.monotonic() + timeout_s
            while not self.endpoint:
                found = READY.search(self.log_all())
                if found:
                    self.endpoint = found.group(1)
                elif self.process.poll() is not None:
                    pytest.fail(f"loopbridge serve exited with {self.process.returncode}:\n{self.log()}")
                elif time.monotonic() > deadline:
                    pytest.fail(f"loopbridge serve was not ready within {timeout_s:.0f} s:\n{self.log()}")
                else:
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (running jobs finish or are cancelled), SIGKILL after 30 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def serve_command() -> list[str]:
    # LOOPBRIDGE_SERVE_PYTHON runs the engine from another checkout's environment (its own install).
    return [os.environ.get("LOOPBRIDGE_SERVE_PYTHON", sys.executable), "-m", "loopbridge.bridge.cli", "serve"]


def start_engine(folder: Path, models_root: Path | None, extra_args: list[str],
                 ready_timeout_s: float = 180.0, cluster: Head | None = None) -> RunningEngine:
    """``loopbridge serve`` on free loopback ports with its own home and store in ``folder`` (OSC off);
    with ``cluster``, rendering on one replica of the model's family there (``serve --cluster``).

    Returns once its ready line names the ZeroMQ endpoint; fails the test if it exits or stays
    silent for ``ready_timeout_s``. Stop it with :meth:`RunningEngine.stop`.
    """
    running = launch_engine(folder, models_root, extra_args, cluster)
    running.wait_ready(ready_timeout_s)
    return running


def launch_engine(folder: Path, models_root: Path | None, extra_args: list[str],
                  cluster: Head | None = None, niceness: int = 0) -> RunningEngine:
    """:func:`start_engine` without waiting: the engine starts while the caller does something else
    (``niceness``: below it, taking the cores it leaves); :meth:`RunningEngine.wait_ready` waits for it."""
    home = folder / "home"
    home.mkdir(parents=True)
    store_dir = folder / "store"
    log_path = folder / "serve.log"
    env = {**os.environ, "LOOPBRIDGE_MODELS": str(models_root or ""), "LOOPBRIDGE_HOME": str(home),
           "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(home / "hf"), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    command = [*serve_command(), "--zmq", "tcp://127.0.0.1:*", "--events", "tcp://127.0.0.1:*", "--osc", "off",
               "--store", str(store_dir), "--device", "cpu", "--threads", "1", *extra_args]
    if cluster is not None:
        command += cluster.serve_args(replicas=1)
    if niceness:
        command = ["nice", "-n", str(niceness), *command]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    return RunningEngine(process, "", store_dir, log_path)
