"""The Windows x64 build of the plugin, cross-built here with MinGW-w64 (plugin/build-windows.sh),
checked under Wine: it links no MinGW runtime DLLs, Steinberg's validator (also built for Windows)
passes it plain and extensive, and, hosted by the Windows build of loopbridge-test-host, it reaches a
``loopbridge serve`` on this machine over TCP and receives the engine's sample.

Why the test host and not a hook inside the plugin: the host loads the real bundle the way a DAW
does (the module's factory, its state, the Generate parameter, processBlock on a playing
transport), so the plugin under test is byte for byte what a user installs, with no test code in it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO
from .plugin_state import PluginState, plugin_blob_from_raw_state, read_wav
from .test_host_engine import JOB_ERROR, RunningEngine, engine, engine_file, plugin  # noqa: F401 (fixtures)
from .validator import run_validator

BUILD_SCRIPT = REPO / "plugin" / "build-windows.sh"
BUILD_DIR = REPO / "plugin" / "build-windows"
VST3_BUNDLE = BUILD_DIR / "LoopBridge_artefacts" / "Release" / "VST3" / "loopbridge.vst3"
VST3_BINARY = VST3_BUNDLE / "Contents" / "x86_64-win" / "loopbridge.vst3"
TEST_HOST = BUILD_DIR / "loopbridge-test-host.exe"
VALIDATOR = REPO / "plugin" / "build-validator-windows" / "bin" / "validator.exe"
MINGW_CXX = "x86_64-w64-mingw32-g++-posix"
OBJDUMP = "x86_64-w64-mingw32-objdump"
#: the MinGW runtime DLLs a dynamically linked build would need beside it
MINGW_RUNTIME = {"libstdc++-6.dll", "libgcc_s_seh-1.dll", "libwinpthread-1.dll"}


def windows_path(path: Path) -> str:
    """``path`` as Wine's programs see it (drive Z: is the root of this machine)."""
    return "Z:" + str(path.resolve()).replace("/", "\\")


@pytest.fixture(scope="session")
def windows_build() -> Path:
    """Builds the Windows bundle, test host and validator once per session (incremental)."""
    for tool in (MINGW_CXX, "wine", "cmake"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/test.sh installs it): the Windows build cannot be checked")
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"plugin/build-windows.sh failed ({result.returncode}):\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    for built in (VST3_BINARY, TEST_HOST, VALIDATOR):
        if not built.is_file():
            pytest.fail(f"plugin/build-windows.sh succeeded but {built} is missing")
    return VST3_BUNDLE


@pytest.fixture(scope="session")
def wine_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh Wine prefix of the session's own, without Mono/Gecko prompts or Wine's debug chatter."""
    prefix = tmp_path_factory.mktemp("wineprefix")
    env = {**os.environ, "WINEPREFIX": str(prefix), "WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml=",
           "WINEARCH": "win64"}
    env.pop("DISPLAY", None)
    subprocess.run(["wineboot", "--init"], env=env, capture_output=True, timeout=300, check=False)
    yield env
    subprocess.run(["wineserver", "-k"], env=env, capture_output=True, timeout=60, check=False)


def imported_dlls(binary: Path) -> set[str]:
    dump = subprocess.run([OBJDUMP, "-p", str(binary)], capture_output=True, text=True, check=True).stdout
    return {line.split("DLL Name:")[1].strip().lower() for line in dump.splitlines() if "DLL Name:" in line}


def test_the_windows_binaries_need_no_mingw_runtime_dlls(windows_build: Path) -> None:
    for binary in (VST3_BINARY, TEST_HOST, VALIDATOR):
        dlls = imported_dlls(binary)
        assert dlls, f"{binary} imports nothing?"
        assert not dlls & MINGW_RUNTIME, f"{binary.name} needs {sorted(dlls & MINGW_RUNTIME)} beside it"
        assert all(not name.startswith("lib") for name in dlls), sorted(dlls)


@pytest.mark.parametrize("extensive", [False, True], ids=["plain", "extensive"])
def test_steinbergs_validator_passes_the_windows_build_under_wine(windows_build: Path, wine_env: dict[str, str],
                                                                  extensive: bool) -> None:
    report = run_validator(["wine", str(VALIDATOR), windows_path(windows_build)], extensive=extensive,
                           env=wine_env)
    assert report.returncode == 0, "\n".join(report.errors()) or report.output[-4000:]
    assert report.failed == 0 and report.passed > 0, report.summary()
    assert set(report.parameter_counts) == {19}, report.parameter_counts  # 12 + the Task group's 6 + Bypass


def test_the_windows_plugin_receives_a_sample_from_the_linux_engine_over_tcp(
        windows_build: Path, wine_env: dict[str, str], plugin, engine: RunningEngine,  # noqa: F811
        tmp_path: Path) -> None:
    """The Windows bundle, in the Windows test host under Wine, asks the engine on this machine
    (tcp on loopback) for a one-beat loop at 100 BPM and holds the engine's file, byte for byte."""
    plugin.kind = "Loop"
    plugin.length = "1 beat"
    state_in, state_out = tmp_path / "before.state", tmp_path / "after.state"
    state_in.write_bytes(plugin.raw_state)  # the session: prompt, tiny model, the engine's endpoint

    started = time.monotonic()
    # JUCE 7.0.5's VST3 hosting on Windows opens the module file inside the bundle (its scan of a
    # VST3 folder finds that file), not the bundle folder.
    host = subprocess.Popen(
        ["wine", str(TEST_HOST), windows_path(VST3_BINARY), windows_path(state_in), windows_path(state_out),
         "--tempo", "100", "--meter", "4/4", "--rate", "48000", "--timeout-s", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace", env=wine_env)
    try:
        while host.poll() is None:
            failed = JOB_ERROR.search(engine.log())
            if failed:
                pytest.fail(f"the engine refused the Windows plugin's request:{failed.group(0)}\n{engine.log()}")
            time.sleep(0.2)
    finally:
        if host.poll() is None:
            host.kill()
        stdout, stderr = host.communicate(timeout=60)
    assert host.returncode == 0, f"{stdout}\n{stderr[-3000:]}\n{engine.log()}"
    print(f"Windows plugin under Wine: a sample in {time.monotonic() - started:.1f} s; host said {stdout.strip()}")

    state = PluginState.from_plugin_blob(plugin_blob_from_raw_state(state_out.read_bytes()))
    attributes, wav = state.sample_attributes, state.sample_wav
    assert wav is not None, attributes
    audio, rate = read_wav(wav)
    assert audio.shape[1] > 0
    assert rate == 48000, "conformed to the Windows host's sample rate"
    assert float(attributes["tempo_bpm"]) == pytest.approx(100.0), "at the Windows host's tempo"
    _, _, engine_bytes = engine_file(engine, attributes)
    assert engine_bytes == wav, "the Windows plugin holds the engine's file, byte for byte"
