"""The built VST3 under Steinberg's VST3 validator (the SDK's own conformance tests), plain and
extensive: every test passes, the host sees the plugin's ten parameters and the Bypass every
VST3 has (no emulated MIDI CC parameters), and its one program has a name."""

from __future__ import annotations

from pathlib import Path

import pytest

from .validator import run_validator


@pytest.mark.parametrize("extensive", [False, True], ids=["plain", "extensive"])
def test_steinbergs_validator_passes(validator_binary: Path, vst3_path: Path, extensive: bool) -> None:
    report = run_validator([str(validator_binary), str(vst3_path)], extensive=extensive)
    assert report.returncode == 0, "\n".join(report.errors()) or report.output[-4000:]
    assert report.failed == 0 and report.passed > 0, report.summary()
    # 2,091 before: 16 channels x 130 emulated MIDI controllers came with them
    assert set(report.parameter_counts) == {19}, report.parameter_counts  # 12 + the Task group's 6 + Bypass
    assert "has no name" not in report.output
