"""Types cross the boundary between the packages: mypy checks bridge/ against loopbridge.engine's real types,
and engine/ or bridge/ cannot be imported a second time under their folder names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_sees_the_engines_types_from_bridge(tmp_path: Path) -> None:
    """A wrong type in bridge/ that uses an engine class is an error, as scripts/typecheck.sh runs mypy."""
    layout = tmp_path / "loopbridge"
    (layout / "bridge").mkdir(parents=True)
    (layout / "engine").symlink_to(REPO / "engine")
    for source in (REPO / "bridge").rglob("*.py"):
        target = layout / "bridge" / source.relative_to(REPO / "bridge")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)
    probe = layout / "bridge" / "type_probe.py"
    probe.write_text("from loopbridge.engine.request import GenerateRequest\n\nx: int = GenerateRequest(\"a\")\n")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "-p", "loopbridge.bridge"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    expected = (f"loopbridge{os.sep}bridge{os.sep}type_probe.py:3: error: Incompatible types in assignment "
                "(expression has type \"GenerateRequest\", variable has type \"int\")  [assignment]")
    assert errors == [expected], result.stdout


@pytest.mark.parametrize("folder", ["engine", "bridge"])
def test_the_folders_are_not_importable_under_their_own_names(folder: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {folder}"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert f"import it as loopbridge.{folder}" in result.stderr
    # as the package, it imports (the same module object every time)
    ok = subprocess.run([sys.executable, "-c", f"import loopbridge.{folder} as a, loopbridge.{folder} as b; "
                                               "assert a is b"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
