"""Errors raised by the engine.

Every error that comes from bad input names the offending value and what is accepted, so that a
front end can show it to a musician as it is.
"""

from __future__ import annotations

from typing import Any


class LoopbridgeError(Exception):
    """Base of every error the engine raises on purpose."""

    #: stable machine-readable code; bridge/protocol.py maps these to wire error codes
    code = "internal"


class RequestError(LoopbridgeError, ValueError):
    """A request field holds a value outside what is accepted.

    ``field`` is the request field's name, ``value`` the rejected value and ``accepted`` a short
    human description of the accepted values ("20–999 BPM", "one of: kick, snare").
    """

    code = "bad_request"

    def __init__(self, field: str, value: Any, accepted: str, reason: str | None = None) -> None:
        self.field = field
        self.value = value
        self.accepted = accepted
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        why = f" ({reason})" if reason else ""
        super().__init__(f"{field}={shown} is not accepted{why}: expected {accepted}")


class TooLargeError(RequestError):
    """A request whose values are each in range asks for more audio, or more memory, than the
    engine takes at once (a conformed file over its size limit, a conform over the conform memory).

    ``field`` names what to change, ``accepted`` states the limit.
    """

    code = "too_large"


class UnknownModelError(LoopbridgeError, LookupError):
    """No model with this id is registered or installed."""

    code = "unknown_model"

    def __init__(self, model_id: str, available: list[str]) -> None:
        self.model_id = model_id
        self.available = available
        listed = ", ".join(available) if available else "none installed"
        super().__init__(f"model={model_id!r} is not available: expected one of {listed}")


class UnsupportedError(LoopbridgeError):
    """The request asks a model for something it cannot do (audio prompt, kind, duration)."""

    code = "unsupported"


class ModelLoadError(LoopbridgeError):
    """A model folder or checkpoint is missing, unreadable or corrupt."""

    code = "model_load_failed"


class AudioReadError(LoopbridgeError):
    """An audio file (an audio prompt, a sample to conform) cannot be read."""

    code = "bad_audio"


class OutOfMemoryError(LoopbridgeError):
    """The accelerator or the memory budget ran out; the engine stays up."""

    code = "out_of_memory"


class CancelledError(LoopbridgeError):
    """A job was cancelled before it finished; nothing of it was stored."""

    code = "cancelled"


class StoreError(LoopbridgeError):
    """The render store could not read or write (disk full, permissions, corrupt index)."""

    code = "store_failed"


class BusyError(LoopbridgeError):
    """The queue is full or the engine is shutting down; try again later."""

    code = "busy"


class NotFoundError(LoopbridgeError, LookupError):
    """No stored render or job with this key or id."""

    code = "not_found"
