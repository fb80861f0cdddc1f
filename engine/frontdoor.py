"""One front door into the engine: every client's way from a request to stored, conformed samples.

    door = FrontDoor(Engine()).start()
    order = Order(GenerateRequest("house groove", kind="loop"),
                  HostFacts(tempo_bpm=124, meter_numerator=4, meter_denominator=4, bars=2), variations=4)
    samples = door.generate(order)          # list[Sample]: tagged WAVs in the store, with their bytes
    door.stop()

The command line, the ZeroMQ server and the OSC server all come in here; nothing outside the engine
touches its store or its weight cache. One order goes down one path:

1. **Plan.** The host's facts go into the request (its tempo, bar and bars: :mod:`.host`), the
   request becomes its variations (a kit its parts), each checked against its model, and the conform
   spec is made from the same facts. Render keys and conform keys are computed once, here.
2. **Ask the store once.** Recently served files are answered from memory; for the rest one store
   lookup says which conformed files exist and which renders do. An order whose every sample is
   there is finished at once and never enters the queue, so a knob turn served from the store does
   not wait behind a render.
3. **Render what is missing** on the scheduler (priority, batching, one worker that owns the
   accelerator); conform on its pool of threads what is rendered or stored but not yet fitted to the
   song; store it; finish the job. The conform memory bounds what conforms hold at once: an order
   whose files and conform could never fit in it is refused when it is planned (``too_large``), and
   each conform waits until the memory it needs, beside its job's files so far, is free.
4. **Pre-render.** After an interactive order the neighbouring variations and morph positions are
   queued in the background (:mod:`.prerender`), so the next knob turn is in the store.

A :class:`Job` (from :meth:`FrontDoor.submit`) reports progress and completion through callbacks;
its result is the conformed :class:`Sample` list.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .conform import ConformMemory, SourceInfo, conform_size
from .conform.memory import Lease
from .conform.warp import DEFAULT_WARP, check_warp
from .core import Engine
from .errors import LoopbridgeError, NotFoundError, RequestError, TooLargeError
from .host import HostFacts, conform_spec
from .models.base import Capabilities, ProgressCallback
from .models.registry import ModelSpec
from .prerender import DEFAULT_DEPTH, Prerenderer
from .request import TEXTURE_PREROLL_S, ConformSpec, GenerateRequest, Kind, Render, check_loudness
from .scheduler import Job, Priority, Scheduler
from .store import HistoryEntry, StoredSample
from .user_audio import UserAudio, is_user_render
from .user_audio import source_info as user_source_info

log = logging.getLogger(__name__)

#: recently served files kept in memory (a knob turned back and forth is served without disk reads)
SAMPLE_CACHE_BYTES = 256 * 1024 * 1024

EventHook = Callable[[str, dict[str, Any]], None]
ProgressHook = Callable[[Job, float], None]
DoneHook = Callable[[Job], None]


@dataclass(frozen=True)
class Order:
    """What a client asks the front door for.

    One of ``request`` (what to make; the host's facts are applied to it), ``render_key`` (a stored
    render, or a unique prefix of 6+ hex digits, fitted again: recall, a tempo change; no model
    runs) and ``audio`` (a user's own file to fit to the song, stored as a render of its own:
    :mod:`.user_audio`; no model runs). ``host`` is what the host says about the song;
    ``conform_bars`` (bars of the host's meter) makes the conformed file a different length from the
    render; ``pitch_semitones``,
    ``root_note`` and ``loudness_lufs`` (loops and textures; None: the engine's default) are the
    user's; so is ``warp``, how a user's loop is stretched (``conform/warp.py``; files only: a render's
    conform takes the default, ``"complex"``). ``variations`` of a request are
    rendered as one batch.
    ``prerender``: queue the neighbours afterwards (interactive orders only).
    """

    request: GenerateRequest | None = None
    host: HostFacts = field(default_factory=HostFacts)
    render_key: str | None = None
    audio: UserAudio | None = None
    conform_bars: float | None = None
    pitch_semitones: float = 0.0
    root_note: int | None = None
    loudness_lufs: float | None = None
    warp: str = DEFAULT_WARP
    variations: int = 1
    priority: Priority = Priority.INTERACTIVE
    prerender: bool = True

    def __post_init__(self) -> None:
        if sum(given is not None for given in (self.request, self.render_key, self.audio)) != 1:
            raise RequestError("render_key", self.render_key,
                               "one of a request, the key of a stored render or a user's audio")
        if self.request is None and self.variations != 1:
            raise RequestError("variations", self.variations, "1 when fitting a stored render or a file")
        if self.audio is not None and not isinstance(self.audio, UserAudio):
            raise RequestError("audio", type(self.audio).__name__, "UserAudio")
        if not isinstance(self.host, HostFacts):
            raise RequestError("host", type(self.host).__name__, "HostFacts")
        if self.loudness_lufs is not None:
            check_loudness(self.loudness_lufs)
        check_warp(self.warp)
        if self.audio is None and self.warp != DEFAULT_WARP:
            raise RequestError("warp", self.warp,
                               f"{DEFAULT_WARP} for a render (a warp mode is chosen for a user's file only)")


@dataclass(frozen=True)
class Sample(StoredSample):
    """One conformed file as the front door hands it out: the stored file, which item of the order it
    answers (``variation``, ``part``), whether a model ran for it (``cached``: no), its shape, and its
    bytes (``data``: the tagged WAV the store holds and the wire carries; :attr:`audio` decodes them)."""

    channels: int = 0
    frames: int = 0
    variation: int = 0
    part: str = ""
    cached: bool = True
    data: bytes = field(default=b"", repr=False, compare=False)

    @functools.cached_property
    def audio(self) -> np.ndarray:
        """The samples, float32 ``[channels, frames]`` (decoded from :attr:`data` on first use)."""
        import soundfile as sf

        audio, _ = sf.read(io.BytesIO(self.data), dtype="float32", always_2d=True)
        return np.ascontiguousarray(audio.T)

    @property
    def notes(self) -> list[str]:
        """What the model or the conform stage could not do as asked ("model takes no text"...)."""
        return [str(n) for n in self.info.get("notes", ())]

    @classmethod
    def from_stored(cls, stored: StoredSample, data: bytes, cached: bool = True) -> Sample:
        """``stored`` with its file's bytes (its shape read from their header)."""
        from .conform.wavfile import read_wav_tags

        tags = read_wav_tags(data)
        described = {f.name: getattr(stored, f.name) for f in dataclasses.fields(StoredSample)}
        described["filename"] = _leaf(stored.filename, stored.path)
        return cls(**described, channels=tags.channels, frames=tags.frames, part=str(stored.info.get("part", "")),
                   cached=cached, data=data)

    def answering(self, variation: int, part: str, cached: bool) -> Sample:
        """This file as the answer to one item of an order."""
        if (self.variation, self.part, self.cached) == (variation, part, cached):
            return self
        return dataclasses.replace(self, variation=variation, part=part, cached=cached)


def _held_bytes(job: Job) -> int:
    """What a job holds in memory: its renders and the files it answers with so far."""
    renders = sum(int(render.audio.nbytes) for render in job.renders if render is not None)
    return renders + sum(len(sample.data) for sample in job.samples if sample is not None)


def _leaf(name: Any, path: Path) -> str:
    leaf = Path(str(name)).name if name else ""
    if not leaf or leaf.startswith(".") or any(ord(c) < 32 for c in leaf):
        leaf = Path(path).name
    return leaf


class _SampleCache:
    """Recently served files by conform key, within a byte budget (least recently used go first).

    Files in the store never change under their key, so a copy here is never stale.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Sample] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Sample | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, sample: Sample) -> None:
        size = len(sample.data)
        if size == 0 or size > self.max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(sample.key, None)
            if old is not None:
                self._bytes -= len(old.data)
            self._items[sample.key] = sample
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.data)


class _KeyLocks:
    """One lock per key while someone holds it: two jobs that need the same file conform it once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._lock:
            lock, users = self._held.get(key, (threading.Lock(), 0))
            self._held[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._held[key]
                if users == 1:
                    del self._held[key]
                else:
                    self._held[key] = (lock, users - 1)


class FrontDoor:
    """The engine behind one entrance (see the module docstring).

    ``prerender_depth`` variations are pre-rendered after each interactive order (0: none).
    ``conform_workers`` threads conform (default: up to 2), within ``conform_memory_bytes`` of memory
    together (None: no bound; ``loopbridge serve`` gives a quarter of the memory available when it
    starts: :func:`~loopbridge.engine.conform.default_conform_memory_bytes`). ``on_event(topic, fields)`` hears
    ``"model"`` (loaded / evicted), ``"state"`` (queue sizes changed), ``"job"`` and
    ``"prerender"`` (a neighbour was stored); it is called from engine threads and must be quick.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        prerender_depth: int = DEFAULT_DEPTH,
        conform_workers: int | None = None,
        conform_memory_bytes: int | None = None,
        cache_bytes: int = SAMPLE_CACHE_BYTES,
        on_event: EventHook | None = None,
    ) -> None:
        self._engine = engine
        self._memory = ConformMemory(conform_memory_bytes)
        self.on_event = on_event
        engine.weights.on_event = self._model_event  # the front door is the engine's one user
        self._scheduler = Scheduler(engine, finish=self._finish, conform_workers=conform_workers,
                                    on_event=self._event)
        self._prerenderer = Prerenderer(self, depth=prerender_depth, on_event=self._event)
        self._cache = _SampleCache(cache_bytes)
        self._conforming = _KeyLocks()
        self._ids = itertools.count(1)
        # queuing neighbours costs a plan and a store lookup each: kept off the caller's thread
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopbridge-prerender")
        self._recent_prerender: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._recent_lock = threading.Lock()

    # ---- life cycle -------------------------------------------------------------------------------------

    def start(self) -> FrontDoor:
        self._scheduler.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse new orders, cancel queued jobs, stop the running batch, finish conforming.

        Nothing half-written is left: a cancelled batch stores nothing, and store writes are atomic.
        """
        self._background.shutdown(wait=False, cancel_futures=True)
        self._scheduler.stop(timeout)
        self._engine.close()

    def warm(self, model_id: str) -> None:
        """Load ``model_id`` now rather than on its first order. Raises if it cannot load."""
        self._engine.warm(model_id)

    # ---- orders ---------------------------------------------------------------------------------------

    def submit(self, order: Order, job_id: str | None = None, on_progress: ProgressHook | None = None,
               on_done: DoneHook | None = None) -> Job:
        """Start ``order``; returns its job. An order the store answers whole comes back finished
        (``on_done`` has then been called already) without entering the queue.

        Raises what the order's request, facts or model refuse (:class:`RequestError`,
        :class:`UnsupportedError`, :class:`UnknownModelError`, :class:`NotFoundError` for an unknown
        render key; :class:`TooLargeError` for files or a conform that could never fit the conform
        memory) before any work, :class:`BusyError` when the queue is full, and ValueError for a
        ``job_id`` that is still running.
        """
        job_id = job_id or f"job-{next(self._ids)}"
        plan, keys, spec, notes, infos, imported = self._plan(order)
        self._check_memory(plan, infos, spec)
        group = self._level_group(plan, infos, imported)
        if group is not None:
            crest = self._engine.store.request_level(group)
            if crest is not None:
                spec = spec.replace(level_crest_db=crest)
        # until its request's level is set, a loop has no file in the store to answer with (a file levelled
        # on its own, kept from before, is another file)
        unset = group is not None and spec.level_crest_db is None
        conform_keys = [spec.conform_key(key) for key in keys]
        found: list[Sample | None] = [None if unset else self._cache.get(key) for key in conform_keys]
        to_render: list[int] = []
        missing = [i for i, sample in enumerate(found) if sample is None]
        if missing:
            stored, have = self._engine.store.lookup([] if unset else [conform_keys[i] for i in missing],
                                                     [keys[i] for i in missing])
            for i in missing:
                hit = stored.get(conform_keys[i])
                if hit is not None:
                    found[i] = self._read(hit)
                elif keys[i] not in have and imported is None:
                    if is_user_render(infos[i]):  # no model can make a user's file again
                        raise NotFoundError(f"render_key={keys[i][:12]!r} is not accepted: the file it was made "
                                            "from is no longer in the store; conform the file again")
                    to_render.append(i)  # (a stored render that has vanished is made again: same key, same audio)
        job = Job(job_id, plan, keys, spec, order.priority, to_render=to_render, renders=imported,
                  on_progress=on_progress, on_done=functools.partial(self._done, order=order, on_done=on_done))
        job.conform_keys = conform_keys
        job.level_group = group if unset else None
        job.notes = notes
        job.samples = [None if sample is None else sample.answering(request.variation, part, True)
                       for sample, (part, request) in zip(found, plan, strict=True)]
        if all(sample is not None for sample in job.samples):
            self._scheduler.finish_now(job)
        else:
            self._scheduler.submit(job)
        return job

    def generate(self, order: Order, progress: ProgressCallback | None = None,
                 timeout: float | None = None) -> list[Sample]:
        """:meth:`submit`, then wait: the order's samples (raises the job's error)."""
        report = (lambda _job, fraction: progress(fraction)) if progress is not None else None
        return self.submit(order, on_progress=report).result(timeout)

    def render(self, requests: Sequence[GenerateRequest], progress: ProgressCallback | None = None) -> list[Render]:
        """Renders of ``requests`` (no conforming), from the store where it has them. Each request is
        checked against its model first; kits are refused (their parts are requests of their own)."""
        plan = []
        for request in requests:
            if request.kind is Kind.KIT:
                raise RequestError("kind", "kit", "one-shot, loop or texture here: a kit's parts render apart")
            plan += self._engine.expand(request)
        keys = [self._engine.render_key(request) for _, request in plan]
        _, have = self._engine.store.lookup([], keys)
        report = (lambda _job, fraction: progress(fraction)) if progress is not None else None
        job = Job(f"render-{next(self._ids)}", plan, keys, to_render=[i for i, k in enumerate(keys) if k not in have],
                  on_progress=report)
        self._scheduler.submit(job)
        return [render for render in job.result() if render is not None]

    def job(self, job_id: str) -> Job | None:
        """An unfinished job by id (None once it has finished: its caller holds it and its samples)."""
        return self._scheduler.get(job_id)

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when no unfinished job has that id."""
        return self._scheduler.cancel(job_id)

    def _plan(self, order: Order) -> tuple[list[tuple[str, GenerateRequest]], list[str], ConformSpec, list[str],
                                           list[dict[str, Any]], list[Render] | None]:
        """The order's items (``(part, request)``), their render keys, its conform spec, its notes, what
        each item's render says of itself (a stored render's model info; empty before rendering) and,
        for a file order, its one render: the user's audio (stored when it is conformed)."""
        host = order.host
        spec_host = host if order.conform_bars is None else host.replace(bars=order.conform_bars)
        if order.render_key is not None:
            entry = self._engine.stored_request(order.render_key)
            if entry is None:
                raise NotFoundError(f"render_key={order.render_key!r} is not accepted: no stored render has that key")
            key, request, info = entry
            spec = conform_spec(request, spec_host, pitch_semitones=order.pitch_semitones, root_note=order.root_note,
                                loudness_lufs=order.loudness_lufs)
            return [(str(info.get("part", "")), request)], [key], spec, spec_host.notes, [info], None
        if order.audio is not None:
            beats_per_bar, _, _ = host.length()
            tempo_bpm = host.tempo_bpm if host.tempo_bpm is not None else GenerateRequest().tempo_bpm
            render = order.audio.render(tempo_bpm, beats_per_bar if beats_per_bar is not None else 4)
            spec = conform_spec(render.request, spec_host, pitch_semitones=order.pitch_semitones,
                                root_note=order.root_note,
                                loudness_lufs=order.loudness_lufs, warp=order.warp)
            return [("", render.request)], [render.key], spec, spec_host.notes, [dict(render.info)], [render]
        assert order.request is not None  # Order checks that one of the three is given
        fields = host.request_fields()
        if host.key is not None and self._takes_free_text(order.request.model):
            fields["key"] = host.key  # a text model is asked for the song's key in words, then matched to it
        request = order.request.replace(**fields) if fields else order.request
        plan = self._engine.plan(request, order.variations)
        spec = conform_spec(request, spec_host, pitch_semitones=order.pitch_semitones, root_note=order.root_note,
                                loudness_lufs=order.loudness_lufs)
        return plan, [self._engine.render_key(r) for _, r in plan], spec, spec_host.notes, [{} for _ in plan], None

    @staticmethod
    def _level_group(plan: Sequence[tuple[str, GenerateRequest]], infos: Sequence[dict[str, Any]],
                     imported: list[Render] | None) -> str | None:
        """The request whose variations the order's loops share a level with
        (:meth:`~.request.GenerateRequest.level_group`); None where each file is levelled on its own:
        one-shots, textures, kits, a user's file."""
        if not plan or imported is not None or any(is_user_render(info) for info in infos):
            return None
        groups = {request.level_group() for _, request in plan}
        return groups.pop() if len(groups) == 1 else None

    def _takes_free_text(self, model_id: str) -> bool:
        """Whether ``model_id`` is led by free text (not the default model's class words); False when it is
        not known (the plan then says why)."""
        try:
            caps = self._engine.capabilities(model_id)
        except LoopbridgeError:
            return False
        return caps.text_prompt and not caps.classes

    def _check_memory(self, plan: Sequence[tuple[str, GenerateRequest]], infos: Sequence[dict[str, Any]],
                      spec: ConformSpec) -> None:
        """Refuse an order whose conformed files could never be made within the conform memory:
        its renders and files (all held until the reply takes them) beside its largest conform.

        Sizes come from the model's capabilities (its rate and channels) and the request's length,
        before anything is rendered or read; an item whose model is gone (a stored render of a model
        since removed) is left to the conform stage, which checks the render itself. Raises
        :class:`TooLargeError` naming ``variations`` when one item fits but not all of them.
        """
        peaks, kept = [], []
        for (_, request), info in zip(plan, infos, strict=True):
            if is_user_render(info):  # a user's file: its own shape, what its user said of it
                channels, frames, rate = int(info["channels"]), int(info["frames"]), int(info["sample_rate"])
                source = user_source_info(info)
            else:
                try:
                    caps = self._engine.capabilities(request.model)
                except LoopbridgeError:
                    continue
                duration_s = request.render_duration_s
                if request.kind is Kind.TEXTURE and duration_s + TEXTURE_PREROLL_S <= caps.max_duration_s:
                    duration_s += TEXTURE_PREROLL_S
                channels, rate = caps.channels, caps.sample_rate
                frames = max(1, int(round(duration_s * rate)))
                source = SourceInfo.for_request(request, info)
            kind = Kind.ONE_SHOT if request.kind is Kind.KIT else request.kind
            size = conform_size(kind, channels, frames, rate, spec, source)
            peaks.append(size.peak_bytes)
            kept.append(size.wav_bytes + channels * frames * 4)
        if not peaks:
            return
        total = sum(kept) + max(peaks)
        budget = self._memory.budget_bytes
        if budget is None or total <= budget:
            return
        if len(peaks) > 1 and max(peaks) + max(kept) <= budget:
            fits = max(1, (budget - max(peaks)) // max(kept))
            raise TooLargeError("variations", len(plan), f"at most {fits} at this length and rate: the order's files "
                                f"take {total / 1e9:.2f} GB, this engine's conform memory is {budget / 1e9:.2f} GB "
                                "(loopbridge serve --conform-memory)")
        self._memory.check(total, "the conform and its files")

    def _read(self, stored: StoredSample) -> Sample:
        """A stored file with its bytes (read once: they go on the wire as they are), kept in memory."""
        try:
            data = stored.path.read_bytes()
        except OSError as exc:
            raise LoopbridgeError(f"sample {stored.key} cannot be read from the store: {exc}") from exc
        sample = Sample.from_stored(stored, data)
        self._cache.put(sample)
        return sample

    # ---- finishing (on the scheduler's conform pool) --------------------------------------------------------

    def _finish(self, job: Job) -> None:
        """Fit every item not answered yet: the render from the job or the store, conformed once. The
        first loop of a request sets the level its variations share first (:meth:`_set_level`)."""
        if job.spec is not None and job.level_group is not None and not job.finished:
            self._set_level(job)
        for index, ((part, request), key) in enumerate(zip(job.plan, job.render_keys, strict=True)):
            if job.finished:
                return
            if job.spec is None:
                if job.renders[index] is None:
                    job.renders[index] = self._stored_render(key)
                continue
            if job.samples[index] is not None:
                continue
            conform_key = job.conform_keys[index]
            with self._conforming.hold(conform_key):
                sample = self._cache.get(conform_key)  # another job may just have made it
                if sample is None:
                    sample = self._conform_item(job, index)
            job.samples[index] = sample.answering(request.variation, part, job.cached)

    def _set_level(self, job: Job) -> None:
        """Set the level of ``job``'s request: kept in the store by an earlier job, or measured on the
        job's first item as it is conformed (no other variation is rendered for it); the job's spec
        and conform keys then carry it."""
        group, spec = job.level_group, job.spec
        assert group is not None and spec is not None
        with self._conforming.hold(f"level:{group}"):  # two jobs of one request set it once
            crest = self._engine.store.request_level(group)
            index = next((i for i, sample in enumerate(job.samples) if sample is None), None)
            if crest is None and index is not None:
                sample = self._conform_item(job, index, sets_level=True)
                part, request = job.plan[index]
                job.samples[index] = sample.answering(request.variation, part, job.cached)
                crest = self._engine.store.request_level(group)
            if crest is not None:  # (None: the loop was silent, and each file is levelled on its own)
                job.spec = spec.replace(level_crest_db=crest)
                job.conform_keys = [job.spec.conform_key(key) for key in job.render_keys]
            job.level_group = None

    def _conform_item(self, job: Job, index: int, *, sets_level: bool = False) -> Sample:
        """Item ``index`` of ``job`` conformed to its spec and stored (its render from the job or the store)."""
        (part, _), key = job.plan[index], job.render_keys[index]
        assert job.spec is not None
        render = job.renders[index] or self._stored_render(key)
        if job.renders[index] is not None and is_user_render(render.info):
            # a user's file is stored here, off the caller's thread, before what is made from it
            self._engine.store.put_render(render)
        if part and render.info.get("part") != part:
            render = dataclasses.replace(render, info={**dict(render.info), "part": part})
        # the conform's own peak beside the job's renders and files so far; the memory is
        # given back once it is stored (held between conforms, it could wait on a key
        # another job holds while waiting for memory)
        with self._memory.lease() as lease:

            def reserve(peak: int, held: int = _held_bytes(job), lease: Lease = lease) -> None:
                lease.need(held + peak)

            stored, data = self._engine.conform(render, job.spec, job.conform_keys[index], reserve=reserve,
                                                sets_level=sets_level)
        sample = Sample.from_stored(stored, data, cached=False)
        self._cache.put(sample)
        return sample

    def _stored_render(self, key: str) -> Render:
        render = self._engine.store.get_render(key)
        if render is None:  # removed between the lookup and now (a store repair)
            raise LoopbridgeError(f"render {key} vanished from the store: ask again")
        return render

    def _done(self, job: Job, order: Order, on_done: DoneHook | None) -> None:
        if on_done is not None:
            try:
                on_done(job)
            except Exception:
                log.exception("completion callback of job %r failed", job.id)
        if job.error is None and order.prerender and order.request is not None \
                and order.priority is Priority.INTERACTIVE and self._prerenderer.depth > 0:
            self._after(job, order)

    def _after(self, job: Job, order: Order) -> None:
        """Queue the neighbours of the order's last variation, unless that sample was just asked for."""
        _, last = job.plan[-1]
        recent = (job.conform_keys[-1], last.variation)
        with self._recent_lock:
            if recent in self._recent_prerender:  # a client polling, a knob resting: already on their way
                self._recent_prerender.move_to_end(recent)
                return
            self._recent_prerender[recent] = None
            if len(self._recent_prerender) > 1024:
                self._recent_prerender.popitem(last=False)
        neighbour_order = dataclasses.replace(order, request=last, variations=1, priority=Priority.BACKGROUND,
                                              prerender=False)
        try:
            self._background.submit(self._prerender, neighbour_order)
        except RuntimeError:  # shutting down
            pass

    def _prerender(self, order: Order) -> None:
        try:
            self._prerenderer.after(order)
        except Exception:
            log.exception("queuing pre-renders failed")

    # ---- events ---------------------------------------------------------------------------------------------

    def _event(self, topic: str, fields: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(topic, fields)
            except Exception:
                log.exception("event callback failed on %s", topic)

    def _model_event(self, name: str, fields: dict[str, Any]) -> None:
        self._event("model", {"event": name.removeprefix("model_"), **fields})

    # ---- what the engine has and does ------------------------------------------------------------------------

    @property
    def device(self) -> str:
        return str(self._engine.device)

    @property
    def store_root(self) -> Path:
        return self._engine.store.root

    def models(self) -> list[ModelSpec]:
        """Every model available now (embedded, folders, hub cache)."""
        return self._engine.models()

    def capabilities(self, model_id: str) -> Capabilities:
        """What ``model_id`` can do (from its config files when it is not loaded; no weights load)."""
        return self._engine.capabilities(model_id)

    def resident(self) -> list[dict[str, Any]]:
        """The models in memory now, most recently used last."""
        return self._engine.weights.resident()

    def history(self, limit: int = 50, offset: int = 0, model: str | None = None) -> list[HistoryEntry]:
        return self._engine.history(limit=limit, offset=offset, model=model)

    def recall(self, key: str) -> Render | None:
        """A stored render by key (or a unique prefix of 6+ hex digits), or None."""
        return self._engine.recall(key)

    def latest_samples(self, limit: int = 1) -> list[StoredSample]:
        """The most recently conformed files, newest first."""
        return self._engine.store.latest_samples(limit)

    def queue(self) -> dict[str, Any]:
        """Queue sizes and counters (the scheduler's)."""
        return self._scheduler.status()

    def status(self) -> dict[str, Any]:
        weights = self._engine.weights
        store = self._engine.store
        return {
            "device": self.device,
            "queue": self._scheduler.status(),
            "resident": weights.resident(),
            "resident_bytes": weights.resident_bytes(),
            "budget_bytes": weights.budget_bytes,
            "conform_memory": self._memory.status(),
            "store": {"root": str(store.root), **store.stats()},
            "prerender": self._prerenderer.status(),
        }


__all__ = ["FrontDoor", "HostFacts", "Job", "Order", "Priority", "Sample", "UserAudio"]
