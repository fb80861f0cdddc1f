#!/usr/bin/env bash
# Builds the VST3, the unit tests, the benchmark and Steinberg's VST3 validator: exactly what CI and
# tests/plugin run.
#   plugin/build.sh            -> plugin/build/LoopBridge_artefacts/Release/VST3/loopbridge.vst3
#                                 plugin/build-validator/bin/Release/validator
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S plugin -B plugin/build -DCMAKE_BUILD_TYPE=Release
cmake --build plugin/build -j2
# The VST3 SDK's validator, from the upstream SDK (plugin/validator/CMakeLists.txt says where from)
vendor=()
[ -n "${LOOPBRIDGE_VENDOR_DIR:-}" ] && vendor=("-DLOOPBRIDGE_VENDOR_DIR=$LOOPBRIDGE_VENDOR_DIR")
cmake -S plugin/validator -B plugin/build-validator -DCMAKE_BUILD_TYPE=Release "${vendor[@]}"
cmake --build plugin/build-validator -j2 --target validator
