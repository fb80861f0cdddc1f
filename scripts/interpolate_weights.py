"""Mix two default-model folders' weights: (1 - ALPHA) * START + ALPHA * END, written as a model folder.

    .venv/bin/python scripts/interpolate_weights.py START END --alpha A --out DIR

The code and its checks are :mod:`loopbridge.engine.models.default.interpolate`; this is its command.
"""

from __future__ import annotations

import sys

from loopbridge.engine.models.default.interpolate import main

if __name__ == "__main__":
    sys.exit(main())
