"use strict";
// Finds the Python that has the loopbridge package (the engine and bridge/protocol.py):
// $LOOPBRIDGE_PYTHON, else the repository's .venv, else python3 on the PATH.

const {execFileSync} = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const REPO = path.join(__dirname, "..", "..", "..");
const DUMP_SCRIPT = path.join(REPO, "ableton", "tools", "dump_protocol.py");

function pythonExecutable() {
    if (process.env.LOOPBRIDGE_PYTHON) {
        return process.env.LOOPBRIDGE_PYTHON;
    }
    for (const candidate of [path.join(REPO, ".venv", "bin", "python"), path.join(REPO, ".venv", "Scripts", "python.exe")]) {
        if (fs.existsSync(candidate)) {
            return candidate;
        }
    }
    return "python3";
}

let cached = null;

/** bridge/protocol.py and the engine's limits as ableton/tools/dump_protocol.py prints them. */
function pythonProtocol() {
    if (cached) {
        return cached;
    }
    const python = pythonExecutable();
    let out;
    try {
        out = execFileSync(python, [DUMP_SCRIPT], {encoding: "utf8", stdio: ["ignore", "pipe", "pipe"]});
    } catch (err) {
        throw new Error(`${python} ${DUMP_SCRIPT} failed (${err.stderr || err.message}). ` +
            "Install the package (pip install -e '.[test]') or point LOOPBRIDGE_PYTHON at a Python that has it.");
    }
    cached = JSON.parse(out);
    return cached;
}

module.exports = {REPO, pythonExecutable, pythonProtocol};
