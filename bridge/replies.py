"""What goes back to a client, whatever transport it came by: errors, samples, a job's messages.

The transports (``zmq_server``, ``osc_server``, the OSC session) implement :class:`JobSink`; the
service hands every job's messages to one, kept in order by :class:`OrderedSink`. Samples are the
front door's :class:`~loopbridge.engine.frontdoor.Sample`; :func:`sample_fields` is how a reply
describes one (``protocol.SAMPLE_FIELDS``), and :func:`export` links one under its readable name for
clients that take paths.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from loopbridge.engine.errors import LoopbridgeError, RequestError
from loopbridge.engine.frontdoor import Sample

from .protocol import ErrorCode, ProtocolError

log = logging.getLogger(__name__)


@dataclass
class WireError(Exception):
    """An error as it goes on the wire: a protocol error code, a message, maybe the bad field."""

    code: ErrorCode
    message: str
    field: str | None = None
    value: Any = None
    accepted: str | None = None

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_exception(cls, exc: BaseException) -> WireError:
        if isinstance(exc, WireError):
            return exc
        if isinstance(exc, ProtocolError):
            return cls(exc.code, exc.message, exc.field)
        if isinstance(exc, RequestError):
            value = exc.value
            if not (value is None or isinstance(value, str | int | float | bool)):
                value = str(value)
            # bad_request, or too_large for a request over a size or memory limit (TooLargeError)
            wire = ErrorCode(exc.code) if exc.code in ErrorCode._value2member_map_ else ErrorCode.BAD_REQUEST
            return cls(wire, str(exc), exc.field, value, exc.accepted)
        if isinstance(exc, LoopbridgeError):
            code = exc.code if exc.code in ErrorCode._value2member_map_ else ErrorCode.INTERNAL
            return cls(ErrorCode(code), str(exc))
        return cls(ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")

    def details(self) -> dict[str, Any]:
        """Extra header fields: the bad field, its value (short), what is accepted."""
        out: dict[str, Any] = {}
        if self.field is not None:
            out["field"] = self.field
        if self.value is not None:
            value = self.value
            if isinstance(value, str) and len(value) > 80:
                value = value[:77] + "..."
            out["value"] = value
        if self.accepted is not None:
            out["accepted"] = self.accepted
        return out


def sample_fields(sample: Sample) -> dict[str, Any]:
    """A sample as a reply describes it (``protocol.SAMPLE_FIELDS`` but the frame index)."""
    return {
        "sample_key": sample.key, "render_key": sample.render_key, "filename": sample.filename,
        "path": str(sample.path), "kind": sample.kind.value, "tempo_bpm": sample.tempo_bpm, "beats": sample.beats,
        "root_note": sample.root_note, "key": sample.music_key, "key_confidence": sample.key_confidence,
        "loop_start": sample.loop_start, "loop_end": sample.loop_end,
        "sample_rate": sample.sample_rate, "channels": sample.channels, "frames": sample.frames,
        "variation": sample.variation, "part": sample.part, "cached": sample.cached,
    }


class JobSink(Protocol):
    """Where a job's messages go; transports implement it. Methods may be called from any thread.

    ``extra`` holds the reply's other fields: ``seed`` (generate), ``render_key`` (conform,
    recall) and ``notes`` (what could not be made exactly as asked), each when it applies.
    """

    def accepted(self, position: int) -> None: ...

    def progress(self, fraction: float) -> None: ...

    def done(self, samples: list[Sample], extra: dict[str, Any]) -> None: ...

    def failed(self, error: WireError) -> None: ...


class OrderedSink:
    """Keeps a job's messages in order: nothing after its reply or error, and that sent only once.

    The reply can be ready (on a conform thread) before the transport thread has said "accepted".
    """

    def __init__(self, sink: JobSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._closed = False

    def accepted(self, position: int) -> None:
        with self._lock:
            if not self._closed:
                self._sink.accepted(position)

    def progress(self, fraction: float) -> None:
        with self._lock:
            if not self._closed:
                self._sink.progress(fraction)

    def done(self, samples: list[Sample], extra: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._sink.done(samples, extra)

    def failed(self, error: WireError) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._sink.failed(error)


def export(sample: Sample, export_dir: Path) -> Path:
    """A readable-named link (or copy) of the sample's file under ``export_dir``, for clients that take
    paths (OSC); the store's own path when that cannot be made."""
    folder = export_dir / sample.key[:12]
    final = folder / sample.filename
    if final.is_file():
        return final
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{uuid.uuid4().hex}.part"
        try:
            os.link(sample.path, tmp)
        except OSError:
            shutil.copyfile(sample.path, tmp)
        os.replace(tmp, final)
    except OSError as exc:
        log.warning("cannot export %s to %s (%s): handing out the store's path", sample.key, folder, exc)
        return sample.path
    return final
