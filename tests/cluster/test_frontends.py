"""The front ends over a cluster, unchanged: the Max for Live device's end-to-end test against
``loopbridge serve --cluster`` joined to the session's head, and ``serve --cluster local`` starting a
cluster of its own and taking it down when it stops. ``serve --cluster local`` starts with the session
(tests/cluster/conftest.py); the device's test runs in the background from the module's start, beside
the test of ``--cluster local`` and the TLS cluster's tests (tests/cluster/test_tls.py: each is mostly
processes starting, on clusters of their own), its two top-level tests (each with an engine of its
own) at once, and its test, moved after the TLS cluster's (tests/cluster/conftest.py), collects their
outcome.

ableton/test/e2e.test.js drives the device's JavaScript over OSC against a real engine it starts
itself (ableton/test/support/engine.js); with ``LOOPBRIDGE_TEST_CLUSTER`` (and the head's token) that
engine renders on a replica there. (The plugin's tests run against both engines, ``serve --cluster``
joining the session's head too: their own fixture, tests/plugin/test_host_engine.py.)
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from loopbridge.bridge.client import Client

from tests.cluster_head import Head, running_processes
from tests.engine.models.tiny_dance_diffusion import build_tiny_dance_diffusion
from tests.engine.models.tiny_new_families import build_ace_step
from tests.plugin.engine_process import RunningEngine

ABLETON = Path(__file__).resolve().parents[2] / "ableton"

pytestmark = pytest.mark.slow

DEVICE_TEST = "test_the_device_end_to_end_against_serve_cluster"
#: the device's test runs for about a minute on two busy cores
DEVICE_TIMEOUT_S = 900
#: the top-level tests of ableton/test/e2e.test.js, each run by a Node.js process of its own, at once:
#: each starts an engine of its own (another model family on the head) and waits on it
DEVICE_TESTS = ("the device against a real loopbridge serve",
                "Run Task against a real loopbridge serve with a tiny ACE-Step model")
#: why Node.js skips a test that the name pattern left out
NOT_SELECTED = "test name does not match pattern"


def _js_escape(text: str) -> str:
    """``text`` as a JavaScript regular expression that matches it alone."""
    return re.sub(r"[\\^$.*+?()[\]{}|/]", lambda m: "\\" + m.group(0), text)


@dataclass
class DeviceRun:
    """ableton/test/e2e.test.js under Node.js: one process per top-level test (``--test-name-pattern``),
    each writing its TAP output to a file of its own."""

    processes: list[subprocess.Popen[bytes]]
    outputs: list[Path]

    def results(self, timeout_s: float = DEVICE_TIMEOUT_S) -> list[tuple[int, str]]:
        """Each process's exit status and output (TAP), once all have ended."""
        try:
            codes = [process.wait(timeout=timeout_s) for process in self.processes]
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the device's end-to-end test did not end in {timeout_s} s:\n"
                        + "\n".join(text[-3000:] for text in self.texts()))
        return list(zip(codes, self.texts(), strict=True))

    def texts(self) -> list[str]:
        return [output.read_text(errors="replace") for output in self.outputs]

    def kill(self) -> None:
        """End them and the engines they started (each its process group)."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="session")
def device_run(ray_head: Head, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeviceRun]:
    """The device's end-to-end test started against ``serve --cluster`` joined to the session's head
    (``LOOPBRIDGE_TEST_CLUSTER`` and the head's token: ableton/test/support/engine.js), not waited for."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the device's JavaScript cannot run")
    # the test's two tiny models, built here where torch is loaded already rather than each in a
    # Python process of its own (ableton/test/support/engine.js copies them)
    models = tmp_path_factory.mktemp("device-e2e-models")
    build_tiny_dance_diffusion(models / "tiny-dd")
    build_ace_step(models, name="tiny-ace-step")
    env = {**os.environ, "LOOPBRIDGE_TEST_CLUSTER": ray_head.address,
           "LOOPBRIDGE_TEST_CLUSTER_TOKEN": str(ray_head.token_file), "LOOPBRIDGE_PYTHON": sys.executable,
           "LOOPBRIDGE_TEST_MODELS_DIR": str(models)}
    folder = tmp_path_factory.mktemp("device-e2e")
    run = DeviceRun([], [])
    for index, name in enumerate(DEVICE_TESTS):
        output = folder / f"tap-{index}.txt"
        with output.open("wb") as sink:
            command = [node, "--test", "--test-concurrency=1", "--test-reporter=tap",
                       f"--test-name-pattern=^{_js_escape(name)}$", "test/e2e.test.js"]
            run.processes.append(subprocess.Popen(command, cwd=ABLETON, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                                  start_new_session=True))
        run.outputs.append(output)
    yield run
    run.kill()


@pytest.fixture(scope="module", autouse=True)
def _device_test_started(request: pytest.FixtureRequest) -> None:
    """Start the device's test with the module when it was collected (and can run: Node.js and Ray
    are there; else its own test skips, saying why)."""
    wanted = any(item.name == DEVICE_TEST for item in request.session.items)
    if wanted and shutil.which("node") and importlib.util.find_spec("ray"):
        request.getfixturevalue("device_run")


def _ray_processes_naming(text: str) -> set[int]:
    """The Ray processes whose command line names ``text`` (a cluster's temp folder is under its
    engine's data folder)."""
    return {pid for pid, (_, command) in running_processes().items() if text in command and "ray" in command}


def test_serve_cluster_local_renders_there_and_takes_its_cluster_down(
        local_cluster_engine: tuple[RunningEngine, Path]) -> None:
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed: pip install -e '.[test,cluster]'")
    engine, tmp_path = local_cluster_engine  # started with the session (tests/cluster/conftest.py)
    try:
        engine.wait_ready()
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


def test_the_device_end_to_end_against_serve_cluster(device_run: DeviceRun) -> None:
    ran: list[str] = []
    for code, output in device_run.results():
        assert code == 0, output[-6000:]
        counts = {name: int(n) for name, n in re.findall(r"^# (pass|fail|skipped|skip) (\d+)$", output, re.M)}
        assert counts.get("pass", 0) > 0 and counts.get("fail", 1) == 0, output[-6000:]
        # it ran: an engine was there (the one skip each run has is the other run's test)
        skipped = re.findall(r"^ok \d+ - (.*) # SKIP(.*)$", output, re.M)
        assert all(reason.strip() == NOT_SELECTED for _name, reason in skipped), output[-6000:]
        assert counts.get("skipped", counts.get("skip", 0)) == len(skipped), output[-6000:]
        ran += [name for name in re.findall(r"^ok \d+ - (.*)$", output, re.M) if " # SKIP" not in name]
        every = {name.partition(" # SKIP")[0] for name in re.findall(r"^(?:not )?ok \d+ - (.*)$", output, re.M)}
        assert every == set(DEVICE_TESTS), f"e2e.test.js's top-level tests are {sorted(every)}: DEVICE_TESTS names them"
    assert sorted(ran) == sorted(DEVICE_TESTS)  # each ran once, in one of the runs
