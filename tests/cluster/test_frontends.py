"""The front ends over a cluster, unchanged: the Max for Live device's end-to-end test against
``loopbridge serve --cluster`` joined to the session's head, and ``serve --cluster local`` starting a
cluster of its own and taking it down when it stops.

ableton/test/e2e.test.js drives the device's JavaScript over OSC against a real engine it starts
itself (ableton/test/support/engine.js); with ``LOOPBRIDGE_TEST_CLUSTER`` (and the head's token) that
engine renders on a replica there. (The plugin's tests run against both engines, ``serve --cluster``
joining the session's head too: their own fixture, tests/plugin/test_host_engine.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopbridge.bridge.client import Client

from tests.cluster_head import Head
from tests.plugin.engine_process import start_engine

ABLETON = Path(__file__).resolve().parents[2] / "ableton"

pytestmark = pytest.mark.slow


def _ray_processes_naming(text: str) -> set[int]:
    """The Ray processes whose command line names ``text`` (a cluster's temp folder is under its
    engine's data folder)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command and "ray" in command:
            found.add(int(proc.name))
    return found


def test_the_device_end_to_end_against_serve_cluster(ray_head: Head) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the device's JavaScript cannot run")
    env = {**os.environ, "LOOPBRIDGE_TEST_CLUSTER": ray_head.address,
           "LOOPBRIDGE_TEST_CLUSTER_TOKEN": str(ray_head.token_file), "LOOPBRIDGE_PYTHON": sys.executable}
    result = subprocess.run([node, "--test", "--test-concurrency=1", "--test-reporter=tap", "test/e2e.test.js"],
                            cwd=ABLETON, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    counts = {name: int(n) for name, n in re.findall(r"^# (pass|fail|skipped|skip) (\d+)$", result.stdout, re.M)}
    assert counts.get("pass", 0) > 0 and counts.get("fail", 1) == 0, output[-6000:]
    assert counts.get("skipped", counts.get("skip", 0)) == 0, output[-6000:]  # it ran: an engine was there


@pytest.fixture()
def short_folder() -> Iterator[Path]:
    """A folder with a short path: Ray's unix sockets live under the engine's data folder there, and
    their paths are limited to ~100 characters."""
    folder = Path(tempfile.mkdtemp(prefix="lbsc-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_serve_cluster_local_renders_there_and_takes_its_cluster_down(short_folder: Path, tiny_dd_root: Path) -> None:
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed: pip install -e '.[test,cluster]'")
    tmp_path = short_folder
    engine = start_engine(tmp_path, tiny_dd_root, ["--model", "tiny-dd", "--cluster", "local", "--replicas", "1"])
    try:
        ours = _ray_processes_naming(str(tmp_path / "home"))
        assert ours, "serve --cluster local started no Ray process under its data folder"
        with Client(engine.endpoint) as client:
            reply = client.generate(prompt="kick", model="tiny-dd", kind="one-shot", duration_s=0.5, steps=2,
                                    seed=7, tempo_bpm=120, timeout=180)
        assert len(reply.samples) == 1 and bytes(reply.samples[0].wav[:4]) == b"RIFF"
    finally:
        engine.stop()
    assert engine.process.returncode == 0, engine.log()
    # the engine, stopped as a user stops it, took its cluster down with it
    assert not _ray_processes_naming(str(tmp_path / "home")), engine.log()
