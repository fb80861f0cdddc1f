#!/usr/bin/env bash
# Debian 12 packages the plugin's build, tests and screenshot need (run as root, e.g. from .ci/run).
set -euo pipefail
packages=(
    cmake g++ pkg-config ccache
    juce-modules-source                       # JUCE 7.0.5 with CMake support (JUCEConfig.cmake, juceaide)
    libzmq3-dev cppzmq-dev                    # ZeroMQ and its C++ binding
    libx11-dev libxrandr-dev libxinerama-dev libxcursor-dev libxext-dev libxcomposite-dev
    libfreetype-dev libfontconfig1-dev libpng-dev libjpeg-dev libasound2-dev
    xvfb                                      # the editor screenshot
    g++-mingw-w64-x86-64-posix                # the Windows x64 cross-build (plugin/build-windows.sh)
    wine                                      # runs the Windows build's validator and test host
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "plugin: Debian packages already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "plugin: missing Debian packages (run as root): ${missing[*]}" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
