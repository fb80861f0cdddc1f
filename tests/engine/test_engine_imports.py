"""The engine stays socket-free: nothing under engine/ imports bridge/, ZeroMQ or OSC."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FORBIDDEN = ("zmq", "pythonosc", "loopbridge.bridge", "sounddevice")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # a relative import reaching out of engine/ into bridge/
                depth = len(path.relative_to(ENGINE).parts) - 1
                if node.level > depth + 1 or (node.level == depth + 1 and module.startswith("bridge")):
                    names.append("loopbridge.bridge" if module.startswith("bridge") else f"..{module}")
            else:
                names.append(module)
    return names


def test_no_engine_module_imports_the_wire() -> None:
    offenders = {}
    for path in sorted(ENGINE.rglob("*.py")):
        bad = [n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
        if bad:
            offenders[str(path.relative_to(ENGINE))] = bad
    assert offenders == {}


def test_importing_the_whole_engine_loads_no_wire_module() -> None:
    code = (
        "import sys, pkgutil, importlib, loopbridge.engine as e\n"
        "for m in pkgutil.walk_packages(e.__path__, 'loopbridge.engine.'):\n"
        "    if '.models.' in m.name and m.name.count('.') > 3: continue\n"
        "    try: importlib.import_module(m.name)\n"
        "    except ImportError: pass\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('zmq', 'pythonosc', 'sounddevice')"
        " or n.startswith('loopbridge.bridge')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
