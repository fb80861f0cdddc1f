"""loopbridge.engine: makes audio. Knows nothing of sockets, OSC or JSON on the wire."""

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
    UnknownModelError,
    UnsupportedError,
)
from .request import AudioPrompt, ConformedSample, ConformSpec, GenerateRequest, Kind, Render

__all__ = [
    "AudioPrompt",
    "AudioReadError",
    "BusyError",
    "CancelledError",
    "ConformSpec",
    "ConformedSample",
    "GenerateRequest",
    "Kind",
    "LoopbridgeError",
    "ModelLoadError",
    "NotFoundError",
    "OutOfMemoryError",
    "Render",
    "RequestError",
    "StoreError",
    "UnknownModelError",
    "UnsupportedError",
]
