"""Whether the conform stage is present: generate round trips need it (render-only paths do not)."""

from __future__ import annotations

import pytest


def conform_stage_available() -> bool:
    import loopbridge.engine.conform as stage

    return all(hasattr(stage, name) for name in ("conform_audio", "encode_wav", "sample_filename", "SourceInfo"))


requires_conform = pytest.mark.skipif(
    not conform_stage_available(), reason="the conform stage (engine/conform) is not in this checkout yet"
)
