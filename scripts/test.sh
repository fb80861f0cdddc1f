#!/usr/bin/env bash
# Installs everything the tests need, then runs every check: ruff, mypy, the Python tests (engine, bridge,
# the plugin in a real host, the Max for Live device against the real engine) and the device's Node
# tests. Safe to run again: each step skips what is already in place. This is the README's test
# command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: libsndfile's sndfile-info reads WAV chunks independently; liblo's
# oscsend/oscdump are an independent OSC peer; PortAudio (sounddevice) plays and records; the
# VST3 plugin's build (JUCE 7 with CMake support, ZeroMQ, the X11/font headers JUCE compiles against)
# and its editor screenshot (Xvfb); the plugin's Windows cross-build (MinGW-w64) and Wine, which
# runs the Windows build's checks. plugin/install-deps.sh lists the plugin's share with reasons.
# sonic-pi-samples (recorded loops) and hydrogen-drumkits (recorded drum one-shots) are the real
# recordings the conform stage's tempo, downbeat and timing are tested on (tests/data/real_loops.json),
# and that `loopbridge conform` fits. Ardour 7 (Debian 12: 7.3, which tests/plugin/test_ardour.py
# checks for) hosts the VST3 in a real DAW session, headless through ardour7-lua. fluidsynth with the
# FluidR3 General MIDI sound font (fluid-soundfont-gm) plays the MIDI the key tests write: real sampled
# instruments in known keys, and recorded drum kits (tests/engine/conform/instruments.py). The default
# model's real-recordings corpus (engine/models/default/real_corpus.py) is built from those four and
# from freepats played by timidity (tests/engine/models/test_real_corpus.py builds a subset).
APT_PACKAGES=(sndfile-programs liblo-tools libportaudio2 sonic-pi-samples hydrogen-drumkits fluidsynth fluid-soundfont-gm
  freepats timidity
  cmake g++ pkg-config ccache juce-modules-source libzmq3-dev cppzmq-dev
  libx11-dev libxrandr-dev libxinerama-dev libxcursor-dev libxext-dev libxcomposite-dev
  libfreetype-dev libfontconfig1-dev libpng-dev libjpeg-dev libasound2-dev xvfb
  g++-mingw-w64-x86-64-posix wine ardour)

# Node.js runs the Max for Live device's JavaScript tests (the machine's own Node if it has one)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first, pinned: an unpinned torch requirement would pull several GB of CUDA packages
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[test,cluster]'

.venv/bin/ruff check .
scripts/typecheck.sh
# Upstream sources no registry here carries (JUCE 7.0.5, libzmq 4.3.5 and the VST3 SDK for the
# validator and the Windows build): ../shared/vendor beside this checkout or, for a clone of a
# local repository, beside the repository it was cloned from; without one the builds fetch them.
if [ -z "${LOOPBRIDGE_VENDOR_DIR:-}" ]; then
  origin=$(git config --get remote.origin.url 2>/dev/null || true)
  for candidate in "../shared/vendor" ${origin:+"$origin/../shared/vendor"}; do
    if [ -d "$candidate" ]; then
      LOOPBRIDGE_VENDOR_DIR=$(cd "$candidate" && pwd)
      export LOOPBRIDGE_VENDOR_DIR
      break
    fi
  done
fi
# The VST3, its C++ tests and benchmark, Steinberg's validator (incremental; tests/plugin runs the
# same script again), and the Windows build (plugin/build-windows.sh; its checks run under Wine in
# tests/plugin/test_windows_build.py)
plugin/build.sh
plugin/build-windows.sh
.venv/bin/python -m pytest "$@"
# the Max for Live device: its JavaScript against a fake Live API and the real engine over OSC
(cd ableton && npm ci --no-audit --no-fund --loglevel=error && LOOPBRIDGE_PYTHON="$PWD/../.venv/bin/python" npm test)
