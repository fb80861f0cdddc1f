"""The Max for Live device's end-to-end test, unchanged, against ``loopbridge serve --cluster local``.

ableton/test/e2e.test.js drives the device's JavaScript over OSC against a real engine it starts
itself (ableton/test/support/engine.js); with ``LOOPBRIDGE_TEST_CLUSTER=local`` that engine starts a
Ray cluster of its own, renders on a replica there and stops it when the test stops the engine. (The
plugin's tests run against both engines, ``serve --cluster`` joining the session's head: their own
fixture, tests/plugin/test_host_engine.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ABLETON = Path(__file__).resolve().parents[2] / "ableton"

pytestmark = pytest.mark.slow


#: what the command line of each of a local cluster's Ray processes names: the engine's data folder,
#: which ableton/test/support/engine.js makes under this prefix
E2E_HOME = "loopbridge-e2e-home-"


def _ray_processes_of_e2e_engines() -> set[int]:
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if E2E_HOME in command and "ray" in command:
            found.add(int(proc.name))
    return found


def test_the_device_end_to_end_against_serve_cluster_local() -> None:
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed: pip install -e '.[test,cluster]'")
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the device's JavaScript cannot run")
    before = _ray_processes_of_e2e_engines()
    env = {**os.environ, "LOOPBRIDGE_TEST_CLUSTER": "local", "LOOPBRIDGE_PYTHON": sys.executable}
    env.pop("LOOPBRIDGE_TEST_CLUSTER_TOKEN", None)
    result = subprocess.run([node, "--test", "--test-concurrency=1", "--test-reporter=tap", "test/e2e.test.js"],
                            cwd=ABLETON, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    counts = {name: int(n) for name, n in re.findall(r"^# (pass|fail|skipped|skip) (\d+)$", result.stdout, re.M)}
    assert counts.get("pass", 0) > 0 and counts.get("fail", 1) == 0, output[-6000:]
    assert counts.get("skipped", counts.get("skip", 0)) == 0, output[-6000:]  # it ran: an engine was there
    # the engine, stopped as a user stops it, took its cluster down with it
    assert not _ray_processes_of_e2e_engines() - before, output[-6000:]
