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
from loopbridge.bridge.cli.worker import KILLED_LINE

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


def running_processes() -> dict[int, tuple[int, str]]:
    """Each running process's id -> its parent's id and its command line (arguments joined by spaces),
    from ``/proc``; those that end while it is read are left out."""
    table = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        table[int(proc.name)] = (int(stat.rpartition(")")[2].split()[1]), command)
    return table


class HeadProcess:
    """``loopbridge worker --head`` (with ``args`` besides) on loopback, started without waiting for it:
    :meth:`ready` waits for its ready line, :meth:`stop` stops it (its Ray processes with it). A
    head's start and stop are seconds of other processes' work, which the tests overlap with
    their own (:meth:`begin_stop` sends the signal, :meth:`stop` waits); ``niceness`` runs it (and
    its Ray processes) below the tests' other work."""

    def __init__(self, cpus: int = HEAD_CPUS, args: Sequence[str] = (), niceness: int = 0,
                 sigint_ignored: bool = False) -> None:
        from loopbridge.engine.replica import ray_settings

        ray_settings()  # before Serve is imported, as a gateway sets them: it reads them at import
        pytest.importorskip("ray.serve", reason="Ray Serve is not installed: pip install -e '.[test,cluster]'")
        # a short folder: Ray's unix sockets live under it and their paths are limited to ~100 characters
        self.temp_dir = Path(tempfile.mkdtemp(prefix="lbray-", dir="/tmp"))
        self.log_path = self.temp_dir / "worker.log"
        command = [sys.executable, "-m", "loopbridge.bridge.cli", "worker", "--head", "--port", str(_free_port()),
                   "--num-cpus", str(cpus), "--num-gpus", "0", "--temp-dir", str(self.temp_dir), *args]
        if niceness:  # a head the tests need later: it takes the cores the work they wait on leaves
            command = ["nice", "-n", str(niceness), *command]
        if sigint_ignored:  # as a background job of a shell without job control starts it
            command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._head: Head | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def ready(self, timeout_s: float = 120.0) -> Head:
        """The head once it has said it is ready; fails the test if it exits or stays silent for ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self._head is None:
            found = READY.search(self.log_path.read_text(errors="replace"))
            if found:
                self._head = Head(found.group(1), Path(found.group(2)), self.temp_dir)
            elif self.process.poll() is not None:
                pytest.fail(f"loopbridge worker --head exited with {self.process.returncode}:\n{self.log()}")
            elif time.monotonic() > deadline:
                pytest.fail(f"loopbridge worker --head was not ready in {timeout_s:.0f} s:\n{self.log()}")
            else:
                time.sleep(0.05)
        return self._head

    def processes(self) -> set[int]:
        """The head's process and every process under it (Ray's, and the workers its node started),
        with those naming its temp folder."""
        table = running_processes()
        ours = {self.process.pid} | {pid for pid, (_, command) in table.items() if str(self.temp_dir) in command}
        while True:
            more = {pid for pid, (parent, _) in table.items() if parent in ours} - ours
            if not more:
                return ours
            ours |= more

    def raise_priority(self) -> bool:
        """Run the head (and the processes it starts from now on) at normal priority, when it was started
        below it: a head started early takes the cores the work before it leaves, until its own tests
        come. Raising a priority needs the privilege to (root, or CAP_SYS_NICE): False where it is not
        there (the head stays below, and its tests take longer)."""
        raised = True
        for pid in self.processes():
            try:
                if os.getpriority(os.PRIO_PROCESS, pid) > 0:
                    os.setpriority(os.PRIO_PROCESS, pid, 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                raised = False
        return raised

    def begin_stop(self) -> None:
        """Ask the head to stop (SIGTERM: it stops its Ray processes) without waiting for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Stop the head and wait for it (killed after a minute), then remove its folder."""
        self.begin_stop()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log = self.log()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        if KILLED_LINE in log:
            pytest.fail(f"loopbridge worker --head did not stop its Ray node when asked:\n{log}")


def start_head(timeout_s: float = 120.0, cpus: int = HEAD_CPUS, args: Sequence[str] = ()) -> Iterator[Head]:
    """Start the head (``loopbridge worker --head`` with ``args`` besides), yield it, stop it (its Ray
    processes with it)."""
    head = HeadProcess(cpus, args)
    try:
        yield head.ready(timeout_s)
    finally:
        head.stop()
