"""The Max for Live device's end-to-end test, unchanged, against ``loopbridge serve --cluster``.

ableton/test/e2e.test.js drives the device's JavaScript over OSC against a real engine it starts
itself (ableton/test/support/engine.js); with ``LOOPBRIDGE_TEST_CLUSTER`` that engine renders on
a replica of the session's cluster. (The plugin's tests run against both engines by their own
fixture: tests/plugin/test_host_engine.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster_head import Head

ABLETON = Path(__file__).resolve().parents[2] / "ableton"

pytestmark = pytest.mark.slow


def test_the_device_end_to_end_against_serve_cluster(ray_head: Head) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the device's JavaScript cannot run")
    env = {**os.environ, **ray_head.environment(), "LOOPBRIDGE_TEST_CLUSTER": ray_head.address,
           "LOOPBRIDGE_TEST_CLUSTER_TOKEN": str(ray_head.token_file), "LOOPBRIDGE_PYTHON": sys.executable}
    result = subprocess.run([node, "--test", "--test-concurrency=1", "--test-reporter=tap", "test/e2e.test.js"],
                            cwd=ABLETON, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    counts = {name: int(n) for name, n in re.findall(r"^# (pass|fail|skipped|skip) (\d+)$", result.stdout, re.M)}
    assert counts.get("pass", 0) > 0 and counts.get("fail", 1) == 0, output[-6000:]
    assert counts.get("skipped", counts.get("skip", 0)) == 0, output[-6000:]  # it ran: an engine was there
