"""Conform memory benchmark: the peak memory of fitting the longest loops the engine accepts.

Each case (``tests/engine/conform/peak_memory.py`` defines them) runs in a process of its own: a
render is stored and fitted to a song through the front door, as a ``conform`` message asks, and
the process's peak resident memory above what it held before the order is read (``VmHWM``). Printed
per case, side by side: the conformed file, the engine's estimate of the conform's peak (what its
conform memory charges for it), the measured peak and their ratio (an estimate under the
measurement would let conforms running together overrun the budget).

``--before REV`` runs the same cases on the engine of git revision REV too (its ``engine/`` exported
to a temporary folder) and adds its peak and the ratio of the two. ``--conform-memory GB`` gives
the front door a conform memory (refused cases print the error).

    python bench/bench_conform_memory.py [--cases issue,limit] [--before main] [--conform-memory 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine.conform.peak_memory import CASES, estimate, output_seconds  # noqa: E402


def _run(name: str, layout: Path | None, conform_memory: int | None) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(layout) if layout else "", str(ROOT),
                                                    env.get("PYTHONPATH", "")] if p)
    command = [sys.executable, "-m", "tests.engine.conform.peak_memory", name]
    if conform_memory is not None:
        command += ["--conform-memory", str(conform_memory)]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"served": False, "failed": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _outcome(result: dict[str, Any]) -> str:
    """What became of a case that was not served."""
    if "failed" in result:
        return f"failed: {result['failed']}"
    return f"refused: {result['error']['message']}"


def _layout_of(rev: str, into: Path) -> Path:
    """The engine of git revision ``rev``, importable as loopbridge.engine from the folder returned."""
    source = into / "src"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "engine"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    layout = into / "layout" / "loopbridge"
    layout.mkdir(parents=True)
    (layout / "engine").symlink_to(source / "engine", target_is_directory=True)
    return layout.parent


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--before", default=None, metavar="REV", help="also run the cases on this git revision")
    parser.add_argument("--conform-memory", type=float, default=None, metavar="GB",
                        help="the front door's conform memory (default: none)")
    args = parser.parse_args()
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    budget = int(args.conform_memory * 1e9) if args.conform_memory is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        layout = _layout_of(args.before, Path(tmp)) if args.before else None
        header = f"{'case':<10} {'conformed file':<24} {'estimate':>10} {'peak':>10} {'est/peak':>9}"
        if layout is not None:
            header += f" {'peak at ' + args.before:>16} {'before/now':>11}"
        print(header, flush=True)
        for name in names:
            case = CASES[name]
            output = f"{case['channels']} ch, {output_seconds(case):g} s, {case['sample_rate'] // 1000} kHz"
            now = _run(name, None, budget)
            if not now["served"]:
                print(f"{name:<10} {output:<24} {_outcome(now)}", flush=True)
                continue
            guess = estimate(case)
            line = (f"{name:<10} {output:<24} {_mb(guess):>10} {_mb(now['peak_bytes']):>10} "
                    f"{guess / now['peak_bytes']:>9.2f}")
            if layout is not None:
                old = _run(name, layout, None)
                line += (f" {_mb(old['peak_bytes']):>16} {old['peak_bytes'] / now['peak_bytes']:>11.2f}"
                         if old["served"] else f" {_outcome(old)}")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
