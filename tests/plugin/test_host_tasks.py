"""The plugin's task buttons (Continue, Replace, Transform, Extract, Add a part) against a real
``loopbridge serve`` with the tiny task models the engine's tests build (tests/engine/models/
tiny_new_families.py: real ``AceStepPipeline`` and ``StableAudio3Pipeline`` classes in diffusers layout).

The C++ side (plugin/tests/RealEngineTests.cpp, category ``loopbridge-real-engine-tasks``) drives the
processor; here the built VST3 runs in pedalboard, a real host, which sets the task's parameters and
presses Run task as automation would (the task parameters are not automatable, but a host still sets
them), and the sample the plugin then holds is the engine's file of that task, byte for byte.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import load_vst3
from .engine_process import RunningEngine, start_engine
from .plugin_state import read_state, write_state
from .test_host_engine import HOST_RATE, engine_file, press_generate, render, wait_for_sample

pedalboard = pytest.importorskip("pedalboard", reason="pedalboard hosts the VST3 in these tests")

ACE, SA3 = "tiny-ace-step", "tiny-stable-audio-3"


@pytest.fixture(scope="module")
def task_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.engine.models.tiny_new_families import build_ace_step, build_stable_audio_3

    root = tmp_path_factory.mktemp("task-models")
    build_ace_step(root)
    build_stable_audio_3(root)
    return root


@pytest.fixture()
def task_engine(tmp_path: Path, task_models: Path) -> Iterator[RunningEngine]:
    running = start_engine(tmp_path, task_models, ["--model", ACE, "--prerender", "0"])
    try:
        yield running
    finally:
        running.stop()


def test_the_task_buttons_through_the_real_engine(task_engine: RunningEngine, unit_test_binary: Path) -> None:
    env = {**os.environ, "LOOPBRIDGE_TEST_ENGINE": task_engine.endpoint}
    result = subprocess.run([str(unit_test_binary), "loopbridge-real-engine-tasks"], capture_output=True, text=True,
                            timeout=900, env=env)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    failures = [line for line in result.stdout.splitlines() if line.startswith("!!!")]
    assert result.returncode == 0, f"{summary}\n" + "\n".join(failures) + f"\n{task_engine.log()}"
    assert summary.endswith(" 0 failed") and not summary.startswith("0 passed"), summary
    log = task_engine.log_all()
    # each task went as a generate of its own; the plugin refused the one the model lacks before sending
    assert re.search(r" generate id=continue-\d+ ok 1 sample", log), log[-3000:]
    assert re.search(r" generate id=extract-\d+ ok 1 sample", log), log[-3000:]
    assert not re.search(r"id=extract-\d+ error", log), log[-3000:]
    assert re.search(r" conform id=conform-\d+ ok 1 sample", log), log[-3000:]


def test_a_host_sets_the_task_and_presses_run_task(vst3_path: Path, task_engine: RunningEngine,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPBRIDGE_ENDPOINT", task_engine.endpoint)
    monkeypatch.delenv("DISPLAY", raising=False)
    plugin = load_vst3(vst3_path)
    for name in ("run_task", "task", "continue_bars", "replace_from_bar", "replace_to_bar", "track"):
        assert name in plugin.parameters, sorted(plugin.parameters)
    state = read_state(plugin)
    state.set_session(prompt="rolling bass", model=ACE, endpoint=task_engine.endpoint)
    write_state(plugin, state)
    plugin.quality_steps = 2
    plugin.kind = "Loop"
    plugin.length = "1 bar"
    press_generate(plugin)
    source = wait_for_sample(plugin, task_engine, None)

    plugin.task = "Replace"
    plugin.replace_from_bar = 0.5
    plugin.replace_to_bar = 1.0
    plugin.run_task = True
    render(plugin, [], 0.02)
    plugin.run_task = False
    replaced = wait_for_sample(plugin, task_engine, source.get("key"))
    assert replaced["render_key"] != source["render_key"]
    audio, rate, data = engine_file(task_engine, replaced)
    assert rate == HOST_RATE
    assert audio.shape[1] == pytest.approx(2.0 * HOST_RATE, abs=2), "the source's bar at the host's 120 BPM"
    assert read_state(plugin).sample_wav == data, "the plugin holds the engine's file of the task, byte for byte"
    assert re.search(r" generate id=replace-\d+ ok 1 sample", task_engine.log_all()), task_engine.log()
