"""The plugin's C++ unit tests (plugin/tests: codec, lock-free hand-over, processor, state, no
allocation in processBlock, headless editor), built by plugin/build.sh and run here so one pytest
run covers them."""

from __future__ import annotations

import subprocess
from pathlib import Path


def test_cpp_unit_tests_pass(unit_test_binary: Path) -> None:
    result = subprocess.run([str(unit_test_binary)], capture_output=True, text=True, timeout=600)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    failures = [line for line in result.stdout.splitlines() if line.startswith("!!!")]
    assert result.returncode == 0, f"{summary}\n" + "\n".join(failures[:40]) + result.stderr[-2000:]
    assert summary.endswith(" 0 failed") and not summary.startswith("0 passed"), summary
