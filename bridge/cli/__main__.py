"""``python -m loopbridge.bridge.cli``: the ``loopbridge`` command."""

import sys

from . import main

sys.exit(main())
