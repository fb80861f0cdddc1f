"""Fixtures for the plugin's host tests: the built VST3 (built here when missing) and its state.

The VST3 is built by ``plugin/build.sh`` (``cmake -S plugin -B plugin/build && cmake --build
plugin/build -j2``). ``LOOPBRIDGE_VST3`` points the tests at another build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "plugin" / "build.sh"
BUILD_DIR = REPO / "plugin" / "build"
VST3_RELATIVE = Path("LoopBridge_artefacts") / "Release" / "VST3" / "loopbridge.vst3"


def _juce_available() -> bool:
    if os.environ.get("LOOPBRIDGE_FETCH_DEPS"):
        return True
    if Path("/usr/share/juce/modules").exists():
        return True
    return any(Path("/usr/lib").glob("*/cmake/JUCE-*"))


@pytest.fixture(scope="session")
def vst3_path() -> Path:
    """The built ``loopbridge.vst3`` bundle; builds it once per session when it is missing or stale."""
    override = os.environ.get("LOOPBRIDGE_VST3")
    if override:
        path = Path(override)
        if not path.exists():
            pytest.fail(f"LOOPBRIDGE_VST3={override!r} does not exist")
        return path
    path = BUILD_DIR / VST3_RELATIVE
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed: the VST3 cannot be built here")
    if not _juce_available():
        pytest.skip("JUCE 7 is not installed (Debian: juce-modules-source) and LOOPBRIDGE_FETCH_DEPS is not set")
    # cmake --build is incremental: a fresh build takes minutes, an up-to-date one a second.
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"plugin/build.sh failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    if not path.exists():
        pytest.fail(f"plugin/build.sh succeeded but {path} is missing")
    return path


def _built(name: str) -> Path:
    """A program plugin/build.sh makes beside the VST3 (a failure, not a skip, when it is missing)."""
    binary = BUILD_DIR / name
    if not binary.exists():
        pytest.fail(f"{binary} was not built by plugin/build.sh")
    return binary


@pytest.fixture(scope="session")
def unit_test_binary(vst3_path: Path) -> Path:
    return _built("loopbridge-tests")


@pytest.fixture(scope="session")
def test_host_binary(vst3_path: Path) -> Path:
    """``loopbridge-test-host``: a VST3 host whose play head the test sets (any tempo and meter)."""
    return _built("loopbridge-test-host")


@pytest.fixture(scope="session")
def validator_binary(vst3_path: Path) -> Path:
    """Steinberg's VST3 validator, built from the VST3 SDK by plugin/build.sh."""
    binary = REPO / "plugin" / "build-validator" / "bin" / "Release" / "validator"
    if not binary.exists():
        pytest.fail(f"{binary} was not built by plugin/build.sh")
    return binary


def load_vst3(path: Path):
    """``pedalboard.load_plugin`` without its wait for sound: by default it renders silence for up to
    ``initialization_timeout`` (10 s) until the plugin makes a sound, which an instrument with no
    sample yet never does, so every load took 10 s."""
    import pedalboard

    return pedalboard.load_plugin(str(path), initialization_timeout=0)
