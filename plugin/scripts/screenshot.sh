#!/usr/bin/env bash
# The plugin's editor painted under Xvfb (Debian: xvfb) into docs/plugin-editor.png.
#   plugin/scripts/screenshot.sh [docs/plugin-editor.png] [--endpoint tcp://127.0.0.1:5555]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
display=":$((90 + RANDOM % 100))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill "$xvfb_pid" 2>/dev/null || true' EXIT
sleep 1
DISPLAY="$display" python3 "$here/screenshot.py" "$@"
