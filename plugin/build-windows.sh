#!/usr/bin/env bash
# Cross-builds the plugin for Windows x64 on Linux with MinGW-w64 (Debian: g++-mingw-w64-x86-64-posix),
# with the test host and Steinberg's validator, all linked statically (no MinGW DLLs beside them):
#   plugin/build-windows.sh -> plugin/build-windows/LoopBridge_artefacts/Release/VST3/loopbridge.vst3
#                              plugin/build-windows/loopbridge-test-host.exe
#                              plugin/build-validator-windows/bin/validator.exe
# JUCE 7.0.5 and libzmq 4.3.5 come from LOOPBRIDGE_VENDOR_DIR (default ../shared/vendor) when the
# archives are there, else from GitHub (plugin/cmake/Dependencies.cmake). Wine runs what it builds
# (tests/plugin/test_windows_build.py).
set -euo pipefail
cd "$(dirname "$0")/.."
toolchain="$PWD/plugin/cmake/mingw-w64-x86_64.cmake"
# JUCE builds its juceaide tool in a CMake run of its own at configure time: these reach it too
# (through the environment), so it compiles through ccache and on both cores like the rest.
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
if command -v ccache >/dev/null 2>&1; then
  export CMAKE_C_COMPILER_LAUNCHER="${CMAKE_C_COMPILER_LAUNCHER:-ccache}" CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}"
fi
vendor=()
[ -n "${LOOPBRIDGE_VENDOR_DIR:-}" ] && vendor=("-DLOOPBRIDGE_VENDOR_DIR=$LOOPBRIDGE_VENDOR_DIR")
cmake -S plugin -B plugin/build-windows -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release "${vendor[@]}"
cmake --build plugin/build-windows -j2 --target LoopBridge_VST3 LoopBridgeTestHost
cmake -S plugin/validator -B plugin/build-validator-windows -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release "${vendor[@]}"
cmake --build plugin/build-validator-windows -j2 --target validator
