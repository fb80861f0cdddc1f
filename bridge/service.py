"""What the engine does for a message, whatever transport it came by.

The transports (``zmq_server``, ``osc_server``) decode frames or packets into a request type and
checked fields (:func:`loopbridge.bridge.protocol.check_fields`), call the :class:`Service`, and
encode what comes back. The service turns fields into engine requests, answers what is in the
store at once, queues the rest on the scheduler, and pre-renders the neighbours afterwards. It
builds no frames and knows no sockets.

A job's progress and result reach the transport through a :class:`JobSink`; every event that
observers may care about (progress, ready, error, state, model loads and evictions, pre-renders)
goes to the listeners added with :meth:`Service.add_listener` (the PUB socket, OSC feedback).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import secrets
import shutil
import struct
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from loopbridge.engine.core import Engine
from loopbridge.engine.errors import (
    AudioReadError,
    LoopbridgeError,
    NotFoundError,
    RequestError,
)
from loopbridge.engine.host import HostFacts, conform_spec
from loopbridge.engine.prerender import DEFAULT_DEPTH, Prerenderer
from loopbridge.engine.request import (
    MAX_VARIATIONS,
    AudioPrompt,
    ConformedSample,
    ConformSpec,
    GenerateRequest,
    Render,
)
from loopbridge.engine.scheduler import Job, Priority, Scheduler
from loopbridge.engine.store import StoredSample

from . import protocol as p
from .protocol import ErrorCode, MessageType, ProtocolError

log = logging.getLogger(__name__)

#: most entries one history reply carries
MAX_HISTORY_LIMIT = 1000
#: seeds the engine draws for a generate without one stay below 2**31 (OSC ints are 32-bit)
RANDOM_SEED_LIMIT = 2**31 - 1
#: state events are coalesced to at most one per this many seconds
STATE_EVENT_INTERVAL_S = 0.1
#: recently served files kept in memory (a knob turned back and forth is served without disk reads)
SAMPLE_CACHE_BYTES = 256 * 1024 * 1024

Listener = Callable[[str, dict[str, Any]], None]


def engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loopbridge")
    except PackageNotFoundError:
        return "unknown"


# ---- errors on the wire ------------------------------------------------------------------------------


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
            return cls(ErrorCode.BAD_REQUEST, str(exc), exc.field, value, exc.accepted)
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


# ---- samples as served -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedSample:
    """A conformed file as a reply describes it (``SAMPLE_FIELDS`` but the frame index)."""

    key: str
    render_key: str
    filename: str
    path: Path
    kind: str
    tempo_bpm: float
    beats: float
    root_note: int | None
    loop_start: int | None
    loop_end: int | None
    sample_rate: int
    channels: int
    frames: int
    variation: int
    part: str
    cached: bool
    #: the file's bytes when already read (a reply from the store carries them)
    data: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_conformed(cls, sample: ConformedSample, variation: int, part: str, cached: bool) -> ServedSample:
        return cls(
            key=sample.key, render_key=sample.render_key, filename=_safe_name(sample.info.get("filename"), sample.path),
            path=Path(sample.path), kind=sample.kind.value, tempo_bpm=float(sample.tempo_bpm),
            beats=float(sample.beats), root_note=sample.root_note, loop_start=sample.loop_start,
            loop_end=sample.loop_end, sample_rate=int(sample.sample_rate), channels=int(sample.audio.shape[0]),
            frames=int(sample.audio.shape[1]), variation=variation, part=part, cached=cached,
        )

    @classmethod
    def from_stored(cls, stored: StoredSample, variation: int, part: str) -> ServedSample:
        """From the store's index and the file's bytes (read once: they go on the wire as they are)."""
        try:
            data = stored.path.read_bytes()
        except OSError as exc:
            raise WireError(ErrorCode.STORE_FAILED, f"sample {stored.key} cannot be read from the store: {exc}"
                            ) from exc
        sample_rate, channels, frames = wav_shape(data)
        return cls(
            key=stored.key, render_key=stored.render_key, filename=_safe_name(stored.filename, stored.path),
            path=stored.path, kind=stored.kind.value, tempo_bpm=float(stored.tempo_bpm), beats=float(stored.beats),
            root_note=stored.root_note, loop_start=stored.loop_start, loop_end=stored.loop_end,
            sample_rate=sample_rate, channels=channels, frames=frames, variation=variation, part=part, cached=True,
            data=data,
        )

    def fields(self) -> dict[str, Any]:
        return {
            "key": self.key, "render_key": self.render_key, "filename": self.filename, "path": str(self.path),
            "kind": self.kind, "tempo_bpm": self.tempo_bpm, "beats": self.beats, "root_note": self.root_note,
            "loop_start": self.loop_start, "loop_end": self.loop_end, "sample_rate": self.sample_rate,
            "channels": self.channels, "frames": self.frames, "variation": self.variation, "part": self.part,
            "cached": self.cached,
        }

    def wav_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise WireError(ErrorCode.STORE_FAILED, f"sample {self.key} cannot be read from the store: {exc}") from exc


def wav_shape(data: bytes) -> tuple[int, int, int]:
    """``(sample_rate, channels, frames)`` of WAV bytes, from the RIFF header (libsndfile when unusual)."""
    try:
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            offset, fmt = 12, None
            while offset + 8 <= len(data):
                chunk, size = data[offset:offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
                if chunk == b"fmt ":
                    channels, rate = struct.unpack_from("<HI", data, offset + 10)
                    block_align = struct.unpack_from("<H", data, offset + 20)[0]
                    fmt = (rate, channels, block_align)
                elif chunk == b"data" and fmt is not None and fmt[2] > 0:
                    available = min(size, len(data) - offset - 8)
                    return fmt[0], fmt[1], available // fmt[2]
                offset += 8 + size + (size & 1)
    except struct.error:
        pass
    import soundfile as sf

    info = sf.info(io.BytesIO(data))
    return int(info.samplerate), int(info.channels), int(info.frames)


class _SampleCache:
    """Recently served files, by conform key, within a byte budget (least recently used go first).

    Files in the store never change under their key, so a cached copy is never stale; this saves
    the index lookup and the disk read on a knob turn that comes back to a sample.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, ServedSample] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> ServedSample | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, sample: ServedSample) -> None:
        size = len(sample.data or b"")
        if size == 0 or size > self.max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(sample.key, None)
            if old is not None:
                self._bytes -= len(old.data or b"")
            self._items[sample.key] = sample
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.data or b"")


def _safe_name(name: Any, path: Path) -> str:
    leaf = Path(str(name)).name if name else ""
    if not leaf or leaf.startswith(".") or any(ord(c) < 32 for c in leaf):
        leaf = Path(path).name
    return leaf


class JobSink(Protocol):
    """Where a job's messages go; transports implement it. Methods may be called from any thread."""

    def accepted(self, position: int) -> None: ...

    def progress(self, fraction: float) -> None: ...

    def done(self, samples: list[ServedSample], extra: dict[str, Any]) -> None: ...

    def failed(self, error: WireError) -> None: ...


@dataclass(frozen=True)
class JobInputs:
    """A job request resolved into engine terms."""

    plan: list[tuple[str, GenerateRequest]]
    spec: ConformSpec
    renders: list[Render | None] | None
    base: GenerateRequest | None  # what to pre-render around (None: no pre-rendering)
    priority: Priority
    extra: dict[str, Any]


# ---- the service -----------------------------------------------------------------------------------------


class Service:
    """The engine, its scheduler and pre-renderer, behind the protocol's operations.

    ``default_model`` is used when a request names none. ``export_dir`` is where files handed out
    as paths (OSC) are linked under their readable names (default ``<store>/../exports``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        default_model: str = "default",
        prerender_depth: int = DEFAULT_DEPTH,
        export_dir: str | Path | None = None,
        conform_workers: int | None = None,
    ) -> None:
        self.engine = engine
        self.default_model = default_model
        self.scheduler = Scheduler(engine, conform_workers=conform_workers, on_event=self._scheduler_event)
        self.prerenderer = Prerenderer(engine, self.scheduler, depth=prerender_depth, on_event=self.publish)
        self.export_dir = Path(export_dir) if export_dir is not None else engine.store.root.parent / "exports"
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopbridge-prerender")
        self._samples = _SampleCache(SAMPLE_CACHE_BYTES)
        self._recent_prerender: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._state_lock = threading.Lock()
        self._state_due: threading.Timer | None = None
        self._last_state = 0.0
        self.started_at = time.time()
        engine.weights.on_event = self._model_event

    # ---- life cycle -------------------------------------------------------------------------------

    def start(self) -> Service:
        self.scheduler.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel queued jobs, stop the running batch, finish conforming; nothing half-written remains."""
        self.scheduler.stop(timeout)
        self._background.shutdown(wait=False, cancel_futures=True)
        with self._state_lock:
            if self._state_due is not None:
                self._state_due.cancel()

    def warm(self, model_id: str | None = None) -> str:
        """Load ``model_id`` (default: the default model) now. Returns the id; raises if it cannot load."""
        model = model_id or self.default_model
        self.engine.warm(model)
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

    def _model_event(self, name: str, fields: dict[str, Any]) -> None:
        event = name.removeprefix("model_")
        self.publish(p.EventTopic.MODEL.value, {"event": event, **fields})

    def _scheduler_event(self, topic: str, fields: dict[str, Any]) -> None:
        if topic != "state":
            return
        # queue changes come in bursts (a batch of eight is sixteen changes): coalesce them
        with self._state_lock:
            now = time.monotonic()
            if now - self._last_state >= STATE_EVENT_INTERVAL_S and self._state_due is None:
                self._last_state = now
                emit_now = True
            else:
                emit_now = False
                if self._state_due is None:
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
        status = self.scheduler.status()
        return {"queued": status["queued"], "rendering": status["rendering"], "active_jobs": status["active_jobs"],
                "resident": [m["model"] for m in self.engine.weights.resident()]}

    # ---- quick operations ----------------------------------------------------------------------------

    def quick(self, kind: MessageType, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Answer a request that is not a job; returns the reply's fields. Raises WireError."""
        try:
            if kind is MessageType.HELLO:
                return self.hello()
            if kind is MessageType.MODELS:
                return {"models": self.models()}
            if kind is MessageType.CAPABILITIES:
                model = fields.get("model") or self.default_model
                return {"model": model, "capabilities": self.engine.capabilities(model).to_dict()}
            if kind is MessageType.HISTORY:
                return {"entries": self.history(fields)}
            if kind is MessageType.STATUS:
                return self.status()
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
            "device": str(self.engine.device),
            "default_model": self.default_model,
            "models": [spec.id for spec in self.engine.models()],
            "limits": {
                "max_header_bytes": p.MAX_HEADER_BYTES,
                "max_binary_frame_bytes": p.MAX_BINARY_FRAME_BYTES,
                "max_frames": p.MAX_FRAMES,
                "max_id_chars": p.MAX_ID_CHARS,
                "max_osc_packet_bytes": p.MAX_OSC_PACKET_BYTES,
                "max_variations": MAX_VARIATIONS,
                "heartbeat_interval_s": p.HEARTBEAT_INTERVAL_S,
                "heartbeat_liveness": p.HEARTBEAT_LIVENESS,
            },
        }

    def models(self) -> list[dict[str, Any]]:
        resident = {m["model"] for m in self.engine.weights.resident()}
        rows = []
        for spec in self.engine.models():
            row: dict[str, Any] = {**spec.to_dict(), "resident": spec.id in resident,
                                   "default": spec.id == self.default_model}
            try:
                row["capabilities"] = self.engine.capabilities(spec.id).to_dict()
            except (LoopbridgeError, ImportError) as exc:
                row["error"] = str(exc)
            rows.append(row)
        return rows

    def history(self, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        limit = fields.get("limit", 50)
        offset = fields.get("offset", 0)
        if not 1 <= limit <= MAX_HISTORY_LIMIT:
            raise RequestError("limit", limit, f"1–{MAX_HISTORY_LIMIT}")
        if offset < 0:
            raise RequestError("offset", offset, "0 or more")
        return [e.to_dict() for e in self.engine.history(limit=limit, offset=offset, model=fields.get("model"))]

    def status(self) -> dict[str, Any]:
        weights = self.engine.weights
        return {
            "device": str(self.engine.device),
            "default_model": self.default_model,
            "uptime_s": round(time.time() - self.started_at, 3),
            "queue": self.scheduler.status(),
            "resident": weights.resident(),
            "resident_bytes": weights.resident_bytes(),
            "budget_bytes": weights.budget_bytes,
            "store": {"root": str(self.engine.store.root), **self.engine.store.stats()},
            "prerender": self.prerenderer.status(),
        }

    def cancel(self, namespace: str, target: str) -> dict[str, Any]:
        if not self.scheduler.cancel(_job_key(namespace, target)):
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
        """Start a job; its messages go to ``sink``. Returns the queued job, or None when the answer
        was in the store (``sink.done`` has then already been called) or the request failed
        (``sink.failed`` has been called). Never raises for bad input.
        """
        try:
            inputs = self.job_inputs(kind, fields, frames)
        except Exception as exc:
            error = WireError.from_exception(exc)
            if error.code is ErrorCode.INTERNAL:
                log.exception("%s %s failed", kind.value, client_id)
            sink.failed(error)
            return None
        return self.run(namespace, kind, client_id, inputs, sink)

    def run(self, namespace: str, kind: MessageType, client_id: str, inputs: JobInputs, sink: JobSink) -> Job | None:
        """:meth:`start_job` from inputs already resolved (:meth:`job_inputs`, :meth:`inputs_for`)."""
        sink = _OrderedSink(sink)
        try:
            existing = self.scheduler.get(_job_key(namespace, client_id))
            if existing is not None and not existing.finished:
                # the same request again (a client resending after a reconnect): it is on its way
                sink.accepted(existing.position)
                return existing
            served = self._from_store(inputs)
            if served is not None:
                sink.done(served, inputs.extra)
                self._after(inputs, served)
                return None
            job = Job(_job_key(namespace, client_id), inputs.plan, inputs.spec, inputs.priority,
                      renders=inputs.renders,
                      on_progress=lambda j, fraction: self._job_progress(j, client_id, fraction, sink),
                      on_done=lambda j: self._job_done(j, kind, client_id, inputs, sink))
            self.scheduler.submit(job)
            if not job.finished:
                sink.accepted(job.position)
            return job
        except Exception as exc:
            error = WireError.from_exception(exc)
            if error.code is ErrorCode.INTERNAL:
                log.exception("%s %s failed", kind.value, client_id)
            sink.failed(error)
            return None

    def cancel_job(self, namespace: str, client_id: str) -> bool:
        """Cancel a job started by :meth:`run` without an error reply when there is none."""
        return self.scheduler.cancel(_job_key(namespace, client_id))

    def _job_progress(self, job: Job, client_id: str, fraction: float, sink: JobSink) -> None:
        sink.progress(fraction)
        self.publish(p.EventTopic.PROGRESS.value, {"id": client_id, "fraction": round(fraction, 4)})

    def _job_done(self, job: Job, kind: MessageType, client_id: str, inputs: JobInputs, sink: JobSink) -> None:
        if job.error is not None:
            error = WireError.from_exception(job.error)
            sink.failed(error)
            self.publish(p.EventTopic.ERROR.value, {"id": client_id, "re": kind.value, "code": error.code.value,
                                                     "message": error.message})
            return
        try:
            served = [ServedSample.from_conformed(sample, request.variation, part, job.cached)
                      for sample, (part, request) in zip(job.samples, inputs.plan, strict=True)]
        except Exception as exc:
            sink.failed(WireError.from_exception(exc))
            return
        sink.done(served, inputs.extra)
        self.publish(p.EventTopic.READY.value, {"id": client_id, "re": kind.value,
                                                 "samples": [s.fields() for s in served]})
        self._after(inputs, served)

    def _from_store(self, inputs: JobInputs) -> list[ServedSample] | None:
        """Every sample of the job from the store, or None when any is missing."""
        served = []
        for index, (part, request) in enumerate(inputs.plan):
            render = inputs.renders[index] if inputs.renders is not None else None
            render_key = render.key if render is not None else self.engine.render_key(request)
            key = inputs.spec.conform_key(render_key)
            cached = self._samples.get(key)
            if cached is None:
                stored = self.engine.store.stored_sample(key)
                if stored is None:
                    return None
                cached = ServedSample.from_stored(stored, request.variation, part)
                self._samples.put(cached)
            if cached.variation != request.variation or cached.part != part:
                cached = dataclasses.replace(cached, variation=request.variation, part=part)
            served.append(cached)
        return served

    def _after(self, inputs: JobInputs, served: list[ServedSample]) -> None:
        if inputs.base is None or self.prerenderer.depth == 0:
            return
        base, spec = inputs.base, inputs.spec
        # the same sample asked again (a client polling, a knob resting): its neighbours are on their way
        recent = (served[-1].key if served else "", str(base.variation))
        with self._state_lock:
            if recent in self._recent_prerender:
                self._recent_prerender.move_to_end(recent)
                return
            self._recent_prerender[recent] = None
            if len(self._recent_prerender) > 1024:
                self._recent_prerender.popitem(last=False)
        try:
            self._background.submit(self._prerender, base, spec)
        except RuntimeError:  # shutting down
            pass

    def _prerender(self, base: GenerateRequest, spec: ConformSpec) -> None:
        try:
            self.prerenderer.after(base, spec)
        except Exception:
            log.exception("queuing pre-renders failed")

    # ---- from fields to engine requests ---------------------------------------------------------------

    def job_inputs(self, kind: MessageType, fields: Mapping[str, Any],
                   frames: Sequence[bytes | memoryview] = ()) -> JobInputs:
        """The plan, conform spec and options of a job request. Raises RequestError, WireError, ..."""
        if kind in (MessageType.GENERATE, MessageType.VARIATION, MessageType.MORPH):
            return self._generate_inputs(kind, fields, frames)
        if kind in (MessageType.CONFORM, MessageType.RECALL):
            return self._conform_inputs(kind, fields)
        raise WireError(ErrorCode.UNKNOWN_TYPE, f"type={kind.value!r} is not a job")

    def _generate_inputs(self, kind: MessageType, fields: Mapping[str, Any],
                         frames: Sequence[bytes | memoryview]) -> JobInputs:
        values = {name: fields[name] for name in p.REQUEST_FIELDS if name in fields}
        values.setdefault("model", self.default_model)
        extra: dict[str, Any] = {}
        if "seed" not in values and kind is MessageType.GENERATE:
            values["seed"] = secrets.randbelow(RANDOM_SEED_LIMIT + 1)
        if kind is MessageType.MORPH and not values.get("morph_prompt"):
            raise RequestError("morph_prompt", values.get("morph_prompt"), "the prompt to morph towards (text)")
        host = _host_facts(fields)
        values.update(host.request_fields())
        if host.notes:
            extra["notes"] = host.notes
        audio_prompt = self._audio_prompt(fields, frames)
        request = GenerateRequest(**values, audio_prompt=audio_prompt)
        extra["seed"] = request.seed
        variations = fields.get("variations", 1)
        plan = self.engine.plan(request, variations)
        spec = conform_spec(request, host.replace(bars=fields.get("conform_bars", host.bars)),
                            pitch_semitones=fields.get("pitch_semitones", 0.0), root_note=fields.get("root_note"))
        priority = self._priority(fields)
        base = None
        if fields.get("prerender", True) and priority is Priority.INTERACTIVE:
            base = request.with_variation(request.variation + variations - 1)
        return JobInputs(plan=plan, spec=spec, renders=None, base=base, priority=priority, extra=extra)

    def inputs_for(self, request: GenerateRequest, spec: ConformSpec, variations: int = 1,
                   prerender: bool = True) -> JobInputs:
        """Interactive job inputs for an engine request built elsewhere (the OSC session)."""
        plan = self.engine.plan(request, variations)
        base = request.with_variation(request.variation + variations - 1) if prerender else None
        return JobInputs(plan=plan, spec=spec, renders=None, base=base, priority=Priority.INTERACTIVE,
                         extra={"seed": request.seed})

    def inputs_for_render(self, render_key: str, spec: ConformSpec) -> JobInputs:
        """Job inputs that re-conform a stored render (no model runs). Raises NotFoundError."""
        render = self.engine.recall(render_key)
        if render is None:
            raise NotFoundError(f"render_key={render_key!r} is not accepted: no stored render has that key")
        part = str(render.info.get("part", ""))
        return JobInputs(plan=[(part, render.request)], spec=spec, renders=[render], base=None,
                         priority=Priority.INTERACTIVE, extra={"render_key": render.key})

    def _conform_inputs(self, kind: MessageType, fields: Mapping[str, Any]) -> JobInputs:
        name = "key" if kind is MessageType.RECALL else "render_key"
        key = fields.get(name) or fields.get("render_key") or fields.get("key")
        if not key:
            raise RequestError(name, key, "a render key (from a reply's render_key, or history)")
        render = self.engine.recall(key) if len(key) >= 6 and all(c in "0123456789abcdef" for c in key) else None
        if render is None:
            raise NotFoundError(f"{name}={key!r} is not accepted: no stored render has that key")
        request = render.request
        host = _host_facts(fields)
        host = host.replace(bars=fields.get("conform_bars", host.bars))
        spec = conform_spec(request, host, pitch_semitones=fields.get("pitch_semitones", 0.0),
                            root_note=fields.get("root_note"))
        part = str(render.info.get("part", ""))
        extra: dict[str, Any] = {"render_key": render.key}
        if host.notes:
            extra["notes"] = host.notes
        return JobInputs(plan=[(part, request)], spec=spec, renders=[render], base=None,
                         priority=Priority.INTERACTIVE, extra=extra)

    @staticmethod
    def _priority(fields: Mapping[str, Any]) -> Priority:
        value = fields.get("priority", "interactive")
        if value == "interactive":
            return Priority.INTERACTIVE
        if value == "background":
            return Priority.BACKGROUND
        raise RequestError("priority", value, "interactive or background")

    def _audio_prompt(self, fields: Mapping[str, Any], frames: Sequence[bytes | memoryview]) -> AudioPrompt | None:
        given = [name for name in ("audio_prompt_frame", "audio_prompt_path", "audio_prompt_key") if name in fields]
        if len(given) > 1:
            raise RequestError(given[1], fields[given[1]], f"one audio prompt only (also given: {given[0]})")
        if not given:
            return None
        name = given[0]
        if name == "audio_prompt_frame":
            index = fields[name]
            if not 1 <= index <= len(frames):
                raise RequestError(name, index, f"the index of a binary frame: 1–{len(frames)}" if frames
                                   else "no binary frame was sent")
            return _decode_audio(frames[index - 1], f"frame {index}")
        if name == "audio_prompt_path":
            return AudioPrompt.from_file(Path(fields[name]).expanduser())
        render = self.engine.recall(fields[name])
        if render is None:
            raise NotFoundError(f"audio_prompt_key={fields[name]!r} is not accepted: no stored render has that key")
        return AudioPrompt(render.audio, render.sample_rate)

    # ---- paths for same-machine clients -------------------------------------------------------------

    def export(self, sample: ServedSample) -> Path:
        """A readable-named link (or copy) of the sample's file, for clients that take paths (OSC)."""
        folder = self.export_dir / sample.key[:12]
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


def _host_facts(fields: Mapping[str, Any]) -> HostFacts:
    return HostFacts(tempo_bpm=fields.get("tempo_bpm"), meter_numerator=fields.get("meter_numerator"),
                     meter_denominator=fields.get("meter_denominator"), beats_per_bar=fields.get("beats_per_bar"),
                     bars=fields.get("bars"), sample_rate=fields.get("sample_rate"))


def _job_key(namespace: str, client_id: str) -> str:
    return f"{namespace}|{client_id}"


def _decode_audio(data: bytes | memoryview, where: str) -> AudioPrompt:
    import numpy as np
    import soundfile as sf

    try:
        audio, rate = sf.read(io.BytesIO(bytes(data)), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises its own error types for anything unreadable
        raise AudioReadError(f"audio prompt in {where} is not readable audio (WAV, FLAC, AIFF or OGG): {exc}") from exc
    return AudioPrompt(np.ascontiguousarray(audio.T), int(rate))


class _OrderedSink:
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

    def done(self, samples: list[ServedSample], extra: dict[str, Any]) -> None:
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
