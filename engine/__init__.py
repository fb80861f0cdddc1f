"""loopbridge.engine: makes audio. Knows nothing of sockets, OSC or JSON on the wire."""

if __name__ != "loopbridge.engine":
    # a checkout's root on sys.path makes engine/ importable as `engine`: a second copy of every class, whose
    # errors an `except loopbridge.engine...` would miss
    raise ImportError(f"{__name__} is loopbridge.engine: import it as loopbridge.engine (pip install -e .)")

from .errors import (
    AudioReadError,
    BusyError,
    CancelledError,
    LoopbridgeError,
    ModelLoadError,
    NotFoundError,
    OutOfMemoryError,
    RequestError,
    StoreError,
    TooLargeError,
    UnknownModelError,
    UnsupportedError,
)
from .request import AudioPrompt, ConformSpec, GenerateRequest, Kind, Render, Task

__all__ = [
    "AudioPrompt",
    "AudioReadError",
    "BusyError",
    "CancelledError",
    "ConformSpec",
    "GenerateRequest",
    "Kind",
    "LoopbridgeError",
    "ModelLoadError",
    "NotFoundError",
    "OutOfMemoryError",
    "Render",
    "RequestError",
    "StoreError",
    "Task",
    "TooLargeError",
    "UnknownModelError",
    "UnsupportedError",
]
