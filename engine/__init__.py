"""loopbridge.engine: makes audio. Knows nothing of sockets, OSC or JSON on the wire."""

from .errors import (
    AudioReadError,
    CancelledError,
    LoopbridgeError,
    ModelLoadError,
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
    "CancelledError",
    "ConformSpec",
    "ConformedSample",
    "GenerateRequest",
    "Kind",
    "LoopbridgeError",
    "ModelLoadError",
    "OutOfMemoryError",
    "Render",
    "RequestError",
    "StoreError",
    "UnknownModelError",
    "UnsupportedError",
]
