"""A Ray cluster for the tests: ``loopbridge worker --head`` on loopback, started once per test session.

The cluster tests (tests/cluster) deploy two CPU replicas of the default model on it; the plugin's
and the device's tests point a ``loopbridge serve --cluster`` at it (``LOOPBRIDGE_TEST_CLUSTER``).
Skipped, with the reason, where Ray is not installed (``pip install -e '.[test,cluster]'``, as
scripts/test.sh does).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

READY = re.compile(r"loopbridge worker: ready: head (\S+), temp \S+, token (\S+),")
#: CPUs the head offers: two replicas of the default model and one of a plugin test's model, with room
HEAD_CPUS = 4


@dataclass(frozen=True)
class Head:
    address: str
    token_file: Path
    temp_dir: Path

    def serve_args(self, replicas: int = 1) -> list[str]:
        """What ``loopbridge serve`` needs to render on this cluster."""
        return ["--cluster", self.address, "--cluster-token", str(self.token_file), "--replicas", str(replicas)]

    def environment(self) -> dict[str, str]:
        """Ray's settings for a process of this test session that joins the cluster."""
        from loopbridge.bridge.security import ClusterSecurity

        return ClusterSecurity.load(self.token_file, None).environment()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_head(timeout_s: float = 120.0, cpus: int = HEAD_CPUS, args: Sequence[str] = ()) -> Iterator[Head]:
    """Start the head (``loopbridge worker --head`` with ``args`` besides), yield it, stop it (its Ray
    processes with it)."""
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed: pip install -e '.[test,cluster]'")
    # a short folder: Ray's unix sockets live under it and their paths are limited to ~100 characters
    temp_dir = Path(tempfile.mkdtemp(prefix="lbray-", dir="/tmp"))
    log_path = temp_dir / "worker.log"
    command = [sys.executable, "-m", "loopbridge.bridge.cli", "worker", "--head", "--port", str(_free_port()),
               "--num-cpus", str(cpus), "--num-gpus", "0", "--temp-dir", str(temp_dir), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            found = READY.search(log_path.read_text(errors="replace"))
            if found:
                break
            if process.poll() is not None:
                pytest.fail(f"loopbridge worker --head exited with {process.returncode}:\n"
                            f"{log_path.read_text(errors='replace')[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"loopbridge worker --head was not ready in {timeout_s:.0f} s:\n"
                            f"{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.1)
        yield Head(found.group(1), Path(found.group(2)), temp_dir)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)
