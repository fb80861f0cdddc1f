"""The protocol's operations on the front door, whatever transport a message came by.

The transports (``zmq_server``, ``osc_server``) decode frames or packets into a message type and
checked fields (:func:`loopbridge.bridge.protocol.check_fields`), call the :class:`Service`, and
encode what comes back. A job message becomes a front-door order (:mod:`.fields`) and its messages
go to the transport's :class:`~.replies.JobSink`; quick messages (hello, models, status...) are
answered at once. Every event observers may care about (progress, ready, error, state, model loads
and evictions, pre-renders) goes to the listeners added with :meth:`Service.add_listener` (the PUB
socket, OSC feedback). The service builds no frames and knows no sockets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loopbridge.engine.errors import LoopbridgeError, RequestError
from loopbridge.engine.frontdoor import FrontDoor, Job, Order
from loopbridge.engine.request import MAX_VARIATIONS
from loopbridge.engine.user_audio import FILE_MODEL, confidence

from . import protocol as p
from .fields import OrderBuilder
from .paths import INBOX_NAME, AllowedFolders
from .protocol import ErrorCode, MessageType, ProtocolError
from .replies import JobSink, OrderedSink, WireError, export, sample_fields

log = logging.getLogger(__name__)

#: most entries one history reply carries
MAX_HISTORY_LIMIT = 1000
#: the furthest a history request may skip (SQLite's largest integer)
MAX_HISTORY_OFFSET = 2**63 - 1
#: state events are coalesced to at most one per this many seconds
STATE_EVENT_INTERVAL_S = 0.1

Listener = Callable[[str, dict[str, Any]], None]


def engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loopbridge")
    except PackageNotFoundError:
        return "unknown"


class Service:
    """The front door behind the protocol's operations.

    ``default_model`` is used when a request names none, ``default_loudness_lufs`` when it names no
    loudness (None: the engine's default). ``export_dir`` is where files handed out
    as paths (OSC) are linked under their readable names (default ``<store>/../exports``). Clients
    may name files by path only inside the store, the inbox (``inbox``, default ``<store>/../inbox``,
    made here) and ``allowed_paths`` (:mod:`.paths`), and models only by the ids ``models`` lists.
    """

    def __init__(self, door: FrontDoor, *, default_model: str = "default",
                 export_dir: str | Path | None = None, inbox: str | Path | None = None,
                 allowed_paths: Iterable[str | Path] = (), default_loudness_lufs: float | None = None) -> None:
        self.door = door
        self.default_model = default_model
        self.export_dir = Path(export_dir) if export_dir is not None else door.store_root.parent / "exports"
        inbox = Path(inbox).expanduser() if inbox is not None else door.store_root.parent / INBOX_NAME
        inbox.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.inbox = inbox.resolve()  # as the front ends on this machine write to it
        self.allowed = AllowedFolders([door.store_root, self.inbox, *allowed_paths])
        self.orders = OrderBuilder(door, default_model, allowed=self.allowed,
                                   default_loudness_lufs=default_loudness_lufs)
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._state_due: threading.Timer | None = None
        self._last_state = 0.0
        self.started_at = time.time()
        door.on_event = self._door_event

    # ---- life cycle -------------------------------------------------------------------------------

    def start(self) -> Service:
        self.door.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel queued jobs, stop the running batch, finish conforming; nothing half-written remains."""
        self.door.stop(timeout)
        with self._state_lock:
            if self._state_due is not None:
                self._state_due.cancel()

    def warm(self, model_id: str | None = None) -> str:
        """Load ``model_id`` (default: the default model) now. Returns the id; raises if it cannot load."""
        model = model_id or self.default_model
        self.door.warm(model)
        return model

    # ---- events ------------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def publish(self, topic: str, fields: dict[str, Any]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(topic, fields)
            except Exception:
                log.exception("event listener failed on %s", topic)

    def _door_event(self, topic: str, fields: dict[str, Any]) -> None:
        if topic in (p.EventTopic.MODEL.value, p.EventTopic.PRERENDER.value):
            self.publish(topic, fields)
        elif topic == "state":
            self._state_changed()

    def _state_changed(self) -> None:
        # queue changes come in bursts (a batch of eight is sixteen changes): coalesce them
        with self._state_lock:
            now = time.monotonic()
            emit_now = now - self._last_state >= STATE_EVENT_INTERVAL_S and self._state_due is None
            if emit_now:
                self._last_state = now
            elif self._state_due is None:
                delay = max(0.0, STATE_EVENT_INTERVAL_S - (now - self._last_state))
                self._state_due = threading.Timer(delay, self._deferred_state)
                self._state_due.daemon = True
                self._state_due.start()
        if emit_now:
            self.publish(p.EventTopic.STATE.value, self.state_fields())

    def _deferred_state(self) -> None:
        with self._state_lock:
            self._state_due = None
            self._last_state = time.monotonic()
        self.publish(p.EventTopic.STATE.value, self.state_fields())

    def state_fields(self) -> dict[str, Any]:
        queue = self.door.queue()
        return {"queued": queue["queued"], "rendering": queue["rendering"], "active_jobs": queue["active_jobs"],
                "resident": [m["model"] for m in self.door.resident()]}

    # ---- quick operations ----------------------------------------------------------------------------

    def quick(self, kind: MessageType, fields: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Answer a request that is not a job; returns the reply's fields. ``namespace`` is the asking
        client's (its jobs are the ones ``status`` lists). Raises WireError."""
        try:
            if kind is MessageType.HELLO:
                return self.hello()
            if kind is MessageType.MODELS:
                return {"models": self.models()}
            if kind is MessageType.CAPABILITIES:
                model = self.orders.model(fields.get("model") or self.default_model)
                return {"model": model, "capabilities": self.door.capabilities(model).to_dict()}
            if kind is MessageType.HISTORY:
                return {"entries": self.history(fields)}
            if kind is MessageType.STATUS:
                return self.status(namespace)
            if kind is MessageType.PING:
                return {"token": fields.get("token", "")}
        except WireError:
            raise
        except Exception as exc:
            if not isinstance(exc, LoopbridgeError | ProtocolError):
                log.exception("%s failed", kind.value)
            raise WireError.from_exception(exc) from exc
        raise WireError(ErrorCode.UNKNOWN_TYPE, f"type={kind.value!r} is not a quick request")

    def hello(self) -> dict[str, Any]:
        return {
            "server": "loopbridge",
            "engine_version": engine_version(),
            "protocol_version": p.PROTOCOL_VERSION,
            "min_protocol_version": p.PROTOCOL_MIN_VERSION,
            "device": self.door.device,
            "default_model": self.default_model,
            "models": [spec.id for spec in self.door.models()],
            "inbox": str(self.inbox),
            "limits": {
                "max_header_bytes": p.MAX_HEADER_BYTES,
                "max_binary_frame_bytes": p.MAX_BINARY_FRAME_BYTES,
                "max_message_bytes": p.MAX_MESSAGE_BYTES,
                "max_reply_frame_bytes": p.MAX_REPLY_FRAME_BYTES,
                "max_frames": p.MAX_FRAMES,
                "max_id_chars": p.MAX_ID_CHARS,
                "max_osc_packet_bytes": p.MAX_OSC_PACKET_BYTES,
                "max_variations": MAX_VARIATIONS,
                "heartbeat_interval_s": p.HEARTBEAT_INTERVAL_S,
                "heartbeat_liveness": p.HEARTBEAT_LIVENESS,
            },
        }

    def models(self) -> list[dict[str, Any]]:
        resident = {m["model"] for m in self.door.resident()}
        rows = []
        for spec in self.door.models():
            row: dict[str, Any] = {**spec.to_dict(), "resident": spec.id in resident,
                                   "default": spec.id == self.default_model}
            try:
                row["capabilities"] = self.door.capabilities(spec.id).to_dict()
            except (LoopbridgeError, ImportError) as exc:
                row["error"] = str(exc)
            rows.append(row)
        return rows

    def history(self, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        limit = fields.get("limit", 50)
        offset = fields.get("offset", 0)
        if not 1 <= limit <= MAX_HISTORY_LIMIT:
            raise RequestError("limit", limit, f"1–{MAX_HISTORY_LIMIT}")
        if not 0 <= offset <= MAX_HISTORY_OFFSET:
            raise RequestError("offset", offset, f"0–{MAX_HISTORY_OFFSET}")
        return [e.to_dict() for e in self.door.history(limit=limit, offset=offset, model=fields.get("model"))]

    def status(self, namespace: str | None = None) -> dict[str, Any]:
        """The engine's status as the client of ``namespace`` may see it: the ids of its own running jobs
        (as it sent them) in ``queue.running_jobs``, and only totals for everyone else's (none listed
        without a namespace)."""
        status = self.door.status()
        queue = dict(status["queue"])
        prefix = _job_key(namespace, "") if namespace is not None else None
        queue["running_jobs"] = [job_id[len(prefix):] for job_id in queue.get("running_jobs", ())
                                 if prefix is not None and job_id.startswith(prefix)]
        return {"default_model": self.default_model, "uptime_s": round(time.time() - self.started_at, 3),
                **status, "queue": queue}

    def cancel(self, namespace: str, target: str) -> dict[str, Any]:
        if not self.door.cancel(_job_key(namespace, target)):
            raise WireError(ErrorCode.NOT_FOUND, f"target={target!r} is not a queued or running job of this client",
                            "target", target, "the id of one of your unfinished jobs")
        return {"target": target, "cancelled": True}

    # ---- jobs ------------------------------------------------------------------------------------------

    def start_job(
        self,
        namespace: str,
        kind: MessageType,
        client_id: str,
        fields: Mapping[str, Any],
        frames: Sequence[bytes | memoryview],
        sink: JobSink,
    ) -> Job | None:
        """Start a job; its messages go to ``sink``. Returns the job (finished already when the store
        answered it), or None when the request failed (``sink.failed`` has been called). Never raises
        for bad input.
        """
        try:
            order = self.orders.order(kind, fields, frames)
        except Exception as exc:
            self._refuse(kind, client_id, exc, sink)
            return None
        return self.run(namespace, kind, client_id, order, sink)

    def run(self, namespace: str, kind: MessageType, client_id: str, order: Order, sink: JobSink) -> Job | None:
        """:meth:`start_job` for an order already made (the OSC session's)."""
        sink = OrderedSink(sink)
        job_id = _job_key(namespace, client_id)
        try:
            existing = self.door.job(job_id)
            if existing is not None and not existing.finished:
                # the same request again (a client resending after a reconnect): it is on its way
                sink.accepted(existing.position)
                return existing
            job = self.door.submit(order, job_id=job_id,
                                   on_progress=lambda j, fraction: self._job_progress(client_id, fraction, sink),
                                   on_done=lambda j: self._job_done(j, kind, client_id, order, sink))
        except Exception as exc:
            self._refuse(kind, client_id, exc, sink)
            return None
        if not job.finished:
            sink.accepted(job.position)
        return job

    def cancel_job(self, namespace: str, client_id: str) -> bool:
        """Cancel a job started by :meth:`run` without an error reply when there is none."""
        return self.door.cancel(_job_key(namespace, client_id))

    def export(self, sample: Any) -> Path:
        """The sample's file under a readable name, for clients that take paths."""
        return export(sample, self.export_dir)

    def _refuse(self, kind: MessageType, client_id: str, exc: BaseException, sink: JobSink) -> None:
        error = WireError.from_exception(exc)
        if error.code is ErrorCode.INTERNAL:
            log.exception("%s %s failed", kind.value, client_id, exc_info=exc)
        sink.failed(error)

    def _job_progress(self, client_id: str, fraction: float, sink: JobSink) -> None:
        sink.progress(fraction)
        self.publish(p.EventTopic.PROGRESS.value, {"id": client_id, "fraction": round(fraction, 4)})

    def _job_done(self, job: Job, kind: MessageType, client_id: str, order: Order, sink: JobSink) -> None:
        if job.error is not None:
            error = WireError.from_exception(job.error)
            sink.failed(error)
            self.publish(p.EventTopic.ERROR.value, {"id": client_id, "re": kind.value, "code": error.code.value,
                                                     "message": error.message})
            return
        samples = list(job.result())
        sink.done(samples, reply_extra(job, order))
        if not job.answered:  # a stored answer is not news to the other observers
            self.publish(p.EventTopic.READY.value, {"id": client_id, "re": kind.value,
                                                     "samples": [sample_fields(s) for s in samples]})


def reply_extra(job: Job, order: Order) -> dict[str, Any]:
    """The reply's fields beside its samples: the seed used, the render fitted, what was not exact."""
    extra: dict[str, Any] = {}
    if order.request is not None:
        extra["seed"] = order.request.seed
    else:
        extra["render_key"] = job.render_keys[0]
    notes = list(job.notes)
    for sample in job.samples:
        notes += [note for note in (sample.notes if sample is not None else ()) if note not in notes]
    first = job.samples[0] if job.samples else None
    if first is not None and (order.audio is not None or first.info.get("model") == FILE_MODEL):
        # a user's file: how sure the conform stage was of its tempo and downbeat
        sure = confidence(first.info)
        extra.update(sure)
        if sure.get("low_confidence"):
            notes.append(low_confidence_note(sure))
    if notes:
        extra["notes"] = notes
    return extra


def low_confidence_note(sure: Mapping[str, Any]) -> str:
    """The note of a reply whose file's tempo or downbeat was found with low confidence."""
    found = ", ".join(f"{name.split('_')[0]} {sure[name]:.2f}" for name in ("tempo_confidence", "downbeat_confidence")
                      if name in sure)
    return (f"the file's tempo and downbeat were found with low confidence ({found or 'no pulse'}): if it does not "
            "sit in time, send its tempo (source_tempo_bpm) or its first downbeat (source_downbeat_s)")


def _job_key(namespace: str, client_id: str) -> str:
    return f"{namespace}|{client_id}"
