#!/usr/bin/env bash
# Builds the VST3, the unit tests and the benchmark: exactly what CI and tests/plugin run.
#   plugin/build.sh            -> plugin/build/LoopBridge_artefacts/Release/VST3/loopbridge.vst3
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S plugin -B plugin/build -DCMAKE_BUILD_TYPE=Release
cmake --build plugin/build -j2
