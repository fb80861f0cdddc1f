"""Running Steinberg's VST3 validator (the VST3 SDK's ``validator``) and reading what it says.

Shared by the Linux check (tests/plugin/test_vst3_validator.py) and the Windows build's check under
Wine (tests/plugin/test_windows_build.py).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_RESULT = re.compile(r"Result: (\d+) tests passed, (\d+) tests failed")
_PARAMETERS = re.compile(r"This component exports (\d+) parameter")
_PROGRAM_NAME = re.compile(r"Programlist (\d+)->Program (\d+): \[.*?\] ?Name = '?\"?([^'\"\n]*)")


@dataclass
class ValidatorReport:
    returncode: int
    output: str

    @property
    def passed(self) -> int:
        return sum(int(m.group(1)) for m in _RESULT.finditer(self.output))

    @property
    def failed(self) -> int:
        return sum(int(m.group(2)) for m in _RESULT.finditer(self.output))

    @property
    def parameter_counts(self) -> list[int]:
        return [int(m.group(1)) for m in _PARAMETERS.finditer(self.output)]

    def errors(self) -> list[str]:
        return [line for line in self.output.splitlines() if "ERROR" in line or "FAILED" in line]

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed (exit {self.returncode})"


def run_validator(command: list[str], *, extensive: bool, timeout_s: float = 900,
                  env: dict[str, str] | None = None) -> ValidatorReport:
    """``command`` is the validator (with Wine in front, for the Windows build) and the bundle last;
    ``-e`` is put before the bundle for the extensive run."""
    args = [*command[:-1], *(["-e"] if extensive else []), command[-1]]
    result = subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=timeout_s, env=env)
    return ValidatorReport(result.returncode, result.stdout + result.stderr)
