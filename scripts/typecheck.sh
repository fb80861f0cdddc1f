#!/usr/bin/env bash
# mypy over engine/ and bridge/ as the installed package names them, loopbridge.engine and
# loopbridge.bridge, so bridge/ is checked against the engine's real types. (engine/ and bridge/ map
# onto those names through setuptools' package-dir; mypy cannot follow an editable install's import
# hook, and checking the folders by their own names would see every loopbridge.engine name as Any.)
# A folder of links gives mypy the installed layout. Extra arguments go to mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
layout=build/typecheck
mkdir -p "$layout/loopbridge"
ln -sfn ../../../engine "$layout/loopbridge/engine"
ln -sfn ../../../bridge "$layout/loopbridge/bridge"
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
cd "$layout"
exec "$PYTHON" -m mypy --config-file ../../pyproject.toml -p loopbridge.engine -p loopbridge.bridge "$@"
