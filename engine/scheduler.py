"""One worker owns the accelerator; every model run queues here. The front door
(:class:`loopbridge.engine.frontdoor.FrontDoor`) is its only user: it plans a job, asks the store
what is there, and hands the scheduler the renders that are missing.

A :class:`Job` is what a client asked for: the renders of one or more requests (a kit's parts, a
batch of variations), conformed to a :class:`ConformSpec` when one is given. Inside, each render
key still to be made is one *task*; a task wanted by several jobs (a pre-render the user then asks
for) runs once, at the most urgent priority any of them asked for. When a job's renders are all
there, its finishing step (the front door's: conform, store) runs on the conform pool.

- Priority: interactive tasks always go before background ones (pre-renders); within a priority,
  first come first served.
- Batching: a worker takes the most urgent task and adds queued tasks of the same model and the
  same shape (duration, steps, audio prompt or not) up to the model's ``max_batch``. On a CUDA
  device background tasks ride along with an interactive batch (nearly free there); on a CPU they
  do not (each row costs as much as a whole request, and the interactive reply would wait).
- Workers: one per slot of the engine's pools (:meth:`Engine.pools`). In process that is one pool
  with one slot: the accelerator. Where several slots of a pool are free, what could be one batch
  is shared out between them; on a CPU a batch takes only its share of the pool's work (its
  running batches too), so that the slots still busy find work left when they free. Behind a
  cluster (:mod:`.cluster`) each model family is a pool with a slot per replica, so at most one
  batch is in flight per replica and everything else waits here, in priority order, where an
  interactive request can still overtake it. There, a slot whose interactive batch has just ended
  waits a moment (:data:`NEXT_ASK_WINDOW_S` at most, less once they have asked) for the callers it
  answered to ask again: otherwise it takes what happens to be queued (often one request) and their
  next requests wait a whole batch for a slot, one replica idling at the end while the other runs them.
- Cancel: a queued job is dropped at once; a running batch stops at its next progress step when
  nobody wants any of its tasks any more (nothing of it is stored), or sooner where its model has
  stop points inside a step (:func:`.models.base.stop_point`: the default model's network between
  its blocks, its decoder between its stages). The engine hears each change to a
  running batch (:meth:`Engine.batches_changed`: cancelled, pre-empted, joined by an interactive job,
  stopping), so one whose batches run elsewhere asks their progress callbacks then, not on a timer.
- Pre-emption (where the engine asks for it: :attr:`Engine.preempts_background`, a cluster's
  replicas): an interactive job that finds every slot of its pool busy stops one running batch of
  pre-renders (the one that has done least) at its next progress step; those pre-renders go back to
  the queue, in their place, and the interactive request takes the slot. On a CPU such pre-renders
  run one to a batch, so that the next step comes soon (a step of a batch of 8 costs about 4.5 steps
  of one there).
- Errors: a failing batch fails the jobs waiting on it with the error; the worker keeps serving.
  A batch that runs out of memory is retried one request at a time before giving up.
- Storing: a batch's slot is free as soon as its model has run; its renders are written to the store
  (:meth:`Engine.store_renders`) on a thread of their own, one render at a time, those an interactive
  job waits on first, and a job hears of a render only once it is stored. So the next batch starts on
  the slot (the accelerator in process, a replica behind a cluster) while the last one is written. A
  task stays findable while it is written: a job asking for its key then waits for that write rather
  than rendering it again. A render that cannot be written fails the jobs waiting on it, and only
  them. The writes have a thread of their own, not the conform pool's nor the worker's: a worker that
  wrote would keep its slot's next batch waiting (in process the one slot has the one worker), and in
  the conform pool an interactive render's write could wait behind a pre-render's conform already
  running there (priorities order only what is queued); a write waits for other writes alone.
- Finishing (conforming) is CPU work: it runs on a small pool of its own threads, interactive first,
  so a tempo change never waits for a pre-render batch on the accelerator. The scheduler asks the
  store nothing; it only has renders written as they are made.

Callbacks (``on_progress``, ``on_done``, ``on_event``) run on the scheduler's threads and must be
quick; they must not call back into the scheduler while holding locks of their own.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from enum import IntEnum, StrEnum
from typing import Any

from .core import Engine
from .errors import BusyError, CancelledError, LoopbridgeError, OutOfMemoryError, StoreError
from .models.base import stop_check
from .request import ConformSpec, GenerateRequest, Render

log = logging.getLogger(__name__)

#: queued interactive tasks beyond which new interactive jobs are refused (BusyError)
MAX_QUEUED_INTERACTIVE = 512
#: queued background tasks kept; the oldest are dropped beyond this (they are speculative)
MAX_QUEUED_BACKGROUND = 256
#: smallest change in a job's progress worth reporting (progress callbacks are throttled)
PROGRESS_STEP = 0.02
#: where a pool has several slots (a cluster's replicas), how long a slot whose interactive batch
#: has just ended waits at most for that batch's answers to go out and their callers to ask again
#: before it takes its next batch (see :meth:`Scheduler._await_next_asks`)
NEXT_ASK_WINDOW_S = 0.03


class Priority(IntEnum):
    """Lower runs first."""

    INTERACTIVE = 0
    BACKGROUND = 1


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CONFORMING = "conforming"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})

JobCallback = Callable[["Job"], None]
ProgressHook = Callable[["Job", float], None]
EventHook = Callable[[str, dict[str, Any]], None]


class Job:
    """Renders for ``plan`` (``[(part, request)]``), finished (conformed) when they are all there.

    Made by the front door, which has already worked out each item's ``render_keys`` and asked the
    store: ``to_render`` lists the indices whose render is missing (queued as tasks); ``renders``
    may hold renders already at hand, index by index. ``conform_keys`` and ``samples`` are the
    front door's: the conformed file each item becomes (``samples[i]`` already filled where the
    store had it). Without ``spec`` the job's result is its renders.
    ``on_progress(job, fraction)`` and ``on_done(job)`` are called from scheduler threads.
    """

    def __init__(
        self,
        job_id: str,
        plan: Sequence[tuple[str, GenerateRequest]],
        render_keys: Sequence[str],
        spec: ConformSpec | None = None,
        priority: Priority = Priority.INTERACTIVE,
        to_render: Sequence[int] = (),
        renders: Sequence[Render | None] | None = None,
        on_progress: ProgressHook | None = None,
        on_done: JobCallback | None = None,
    ) -> None:
        if not plan:
            raise ValueError("a job needs at least one request")
        if len(render_keys) != len(plan):
            raise ValueError(f"{len(render_keys)} render keys for {len(plan)} requests")
        self.id = job_id
        self.plan = list(plan)
        self.render_keys = list(render_keys)
        self.spec = spec
        self.priority = Priority(priority)
        self.renders: list[Render | None] = list(renders) if renders is not None else [None] * len(self.plan)
        if len(self.renders) != len(self.plan):
            raise ValueError(f"{len(self.renders)} renders for {len(self.plan)} requests")
        self.to_render = sorted(set(to_render))
        self.conform_keys: list[str] = []
        self.samples: list[Any] = [None] * len(self.plan)
        #: the variations of one request whose shared level is still to be set by this job's first
        #: conform (the front door's; :meth:`~.request.GenerateRequest.level_group`)
        self.level_group: str | None = None
        #: what could not be made exactly as asked (the front door's, for the reply)
        self.notes: list[str] = []
        self.on_progress = on_progress
        self.on_done = on_done
        self.state = JobState.QUEUED
        self.error: LoopbridgeError | None = None
        #: no model ran for this job: every render came from the store
        self.cached = not self.to_render
        #: the store had every sample: the job was finished as it was submitted, never queued
        self.answered = False
        #: tasks ahead of this job when it was queued (0: it runs next)
        self.position = 0
        self.submitted_at = time.monotonic()
        self.finished_at: float | None = None
        self._pending: set[int] = set()
        self._fractions: dict[int, float] = {}
        self._reported = 0.0
        self._done = threading.Event()

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished (done, failed or cancelled); False on timeout."""
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> list[Any]:
        """The conformed samples (or the renders, without a spec); raises the job's error.

        Raises TimeoutError when the job has not finished within ``timeout`` seconds.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.id!r} is still {self.state.value} after {timeout} s")
        if self.error is not None:
            raise self.error
        return list(self.samples) if self.spec is not None else list(self.renders)

    def _progress(self) -> float:
        total = len(self.plan)
        done = total - len(self._pending)
        running = sum(self._fractions.get(i, 0.0) for i in self._pending)
        return min(1.0, (done + running) / total)

    def __repr__(self) -> str:
        return f"Job({self.id!r}, {len(self.plan)} requests, {self.state.value})"


class _Task:
    """One render key to produce, wanted by one or more jobs."""

    __slots__ = ("batch", "key", "priority", "request", "running", "seq", "waiters")

    def __init__(self, key: str, request: GenerateRequest, priority: Priority, seq: int) -> None:
        self.key = key
        self.request = request
        self.priority = priority
        self.seq = seq
        self.waiters: list[tuple[Job, int]] = []
        self.running = False
        self.batch: _Batch | None = None

    @property
    def wanted(self) -> bool:
        return any(not job.finished for job, _ in self.waiters)

    def shape(self) -> tuple[Any, ...]:
        r = self.request
        return (r.model, round(r.render_duration_s, 6), r.steps, r.audio_prompt is not None)


class _Batch:
    """Tasks running together in one slot of ``pool``."""

    __slots__ = ("asked", "fraction", "pool", "preempted", "tasks", "unstored")

    def __init__(self, pool: str, tasks: list[_Task]) -> None:
        self.pool = pool
        self.tasks = tasks
        self.preempted = False
        self.fraction = 0.0  # of its work done, as its progress last said
        self.unstored = 0  # of its renders, those still to be written and handed out
        self.asked: int | None = None  # jobs submitted so far when its first render was handed out

    @property
    def background(self) -> bool:
        """Only pre-renders: no interactive job waits on any of its tasks (one may have joined it running)."""
        return all(task.priority is Priority.BACKGROUND and all(job.priority is Priority.BACKGROUND
                                                                for job, _ in task.waiters) for task in self.tasks)


class _Preempted(CancelledError):
    """A batch of pre-renders stopped to free its slot for an interactive request (its tasks queue again)."""


class _Pool:
    """A few threads running callables by priority (lower first, then first come)."""

    def __init__(self, workers: int, name: str) -> None:
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stopping = False
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(workers)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (priority, next(self._seq), fn))
            self._cond.notify()

    def queued(self) -> int:
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._stopping:
                    self._cond.wait()
                if not self._heap:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # a finishing step reports its own errors; this only keeps the thread alive
                log.exception("conform pool task failed")

    def stop(self, timeout: float) -> None:
        """Run what is queued (each step checks its job's state), then end the threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))


class Scheduler:
    """The priority queue and the one worker thread that runs models (see the module docstring).

    ``conform_workers`` threads conform finished renders (default: 2, or 1 on a single core).
    ``on_event(topic, fields)`` hears ``"state"`` (queue sizes changed) and ``"job"`` (a job
    started, finished, failed or was cancelled). ``batch_background`` lets background tasks join an
    interactive batch (default: only on CUDA).
    """

    def __init__(
        self,
        engine: Engine,
        finish: JobCallback | None = None,
        conform_workers: int | None = None,
        on_event: EventHook | None = None,
        batch_background: bool | None = None,
        max_queued_interactive: int = MAX_QUEUED_INTERACTIVE,
        max_queued_background: int = MAX_QUEUED_BACKGROUND,
    ) -> None:
        self.engine = engine
        self.finish = finish
        self.on_event = on_event
        self.batch_background = engine.accelerated if batch_background is None else batch_background
        self.max_queued_interactive = max_queued_interactive
        self.max_queued_background = max_queued_background
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._heap: list[tuple[int, int, str]] = []
        self._queued: dict[str, _Task] = {}
        self._running: dict[str, _Task] = {}
        self._storing: dict[str, _Task] = {}  # rendered, being written: still wanted, no more run
        self._batches: list[_Batch] = []
        self.preempt = engine.preempts_background
        #: the most a slot waits for the callers it answered to ask again (:meth:`_await_next_asks`)
        self.next_ask_window_s = NEXT_ASK_WINDOW_S
        self._jobs: dict[str, Job] = {}
        self._seq = itertools.count()
        self._stopping = False
        self._asked = 0  # jobs submitted with renders to queue (a slot waiting for its callers counts them)
        self._slots = dict(engine.pools())
        self._busy = dict.fromkeys(self._slots, 0)
        names = [f"loopbridge-worker-{pool or 'local'}-{i}" for pool, n in self._slots.items() for i in range(n)]
        self._workers = [threading.Thread(target=self._work, name=name, daemon=True) for name in names]
        workers = conform_workers if conform_workers is not None else min(2, os.cpu_count() or 1)
        self._pool = _Pool(max(1, workers), "loopbridge-conform")
        self._store_pool = _Pool(1, "loopbridge-store")  # the store's writes, interactive first (module docstring)
        self._started = False
        self.counters = {"batches": 0, "rendered": 0, "failed_batches": 0, "failed_stores": 0, "jobs": 0,
                         "cancelled": 0, "answered": 0, "preempted": 0}

    # ---- life cycle -------------------------------------------------------------------------------

    def start(self) -> Scheduler:
        with self._lock:
            if not self._started:
                self._started = True
                for worker in self._workers:
                    worker.start()
                self._store_pool.start()
                self._pool.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse new jobs, cancel queued ones and the running batch, finish storing and conforming,
        join threads.

        Nothing half-written is left: a cancelled batch stores nothing, renders already made are
        written, and store writes are atomic.
        """
        with self._lock:
            self._stopping = True
            jobs = [job for job in self._jobs.values() if not job.finished]
            self._cond.notify_all()
        for job in jobs:
            self._cancel_job(job, "the engine is shutting down")
        self.engine.batches_changed()
        deadline = time.monotonic() + timeout
        if self._started:
            for worker in self._workers:
                worker.join(max(0.0, deadline - time.monotonic()))
        self._store_pool.stop(max(0.0, deadline - time.monotonic()))  # (it hands renders to the conform pool)
        self._pool.stop(max(0.0, deadline - time.monotonic()))

    @property
    def stopping(self) -> bool:
        return self._stopping

    # ---- submitting -------------------------------------------------------------------------------

    def submit(self, job: Job) -> Job:
        """Queue the renders ``job.to_render`` names (the front door asked the store). Returns ``job``.

        Raises :class:`BusyError` when the interactive queue is full or the engine is stopping,
        and ValueError when a job with the same id is still running.
        """
        keys = job.render_keys
        with self._lock:
            if self._stopping:
                raise BusyError("the engine is shutting down: no new jobs are taken")
            old = self._jobs.get(job.id)
            if old is not None and not old.finished:
                raise ValueError(f"id={job.id!r} is already running: expected a new id for each request")
            if job.priority is Priority.INTERACTIVE and job.to_render:
                fresh = {keys[i] for i in job.to_render if all(keys[i] not in tasks for tasks in
                                                               (self._queued, self._running, self._storing))}
                queued = sum(1 for t in self._queued.values() if t.priority is Priority.INTERACTIVE)
                if queued + len(fresh) > self.max_queued_interactive:
                    raise BusyError(
                        f"{queued} requests are queued: at most {self.max_queued_interactive}; try again shortly"
                    )
            self._jobs[job.id] = job
            self.counters["jobs"] += 1
            first_seq: int | None = None
            changed = False  # a running batch's purpose changed: the engine hears it (batches_changed)
            for index in job.to_render:
                key, (_, request) = keys[index], job.plan[index]
                job._pending.add(index)
                # (one being stored is running still: the job waits for its write)
                task = self._running.get(key) or self._storing.get(key) or self._queued.get(key)
                if task is None:
                    task = _Task(key, request, job.priority, next(self._seq))
                    self._queued[key] = task
                    heapq.heappush(self._heap, (task.priority, task.seq, key))
                elif not task.running and job.priority < task.priority:
                    # a client now wants what was only pre-rendered: promote it
                    task.priority = job.priority
                    task.seq = next(self._seq)
                    heapq.heappush(self._heap, (task.priority, task.seq, key))
                if task.running and task.batch is not None and job.priority is Priority.INTERACTIVE \
                        and task.batch.background:
                    changed = True  # an interactive job joins a batch of pre-renders: it is interactive now
                task.waiters.append((job, index))
                if not task.running:
                    first_seq = task.seq if first_seq is None else min(first_seq, task.seq)
            if job._pending:
                job.position = self._position(job.priority, first_seq) if first_seq is not None else 0
                self._trim_background()
                if self.preempt and job.priority is Priority.INTERACTIVE:
                    changed = self._preempt_for(job) or changed
                self._asked += 1
                # every worker hears it: one waiting for its callers' next requests among them
                self._cond.notify_all()
        if changed:
            self.engine.batches_changed()
        if not job._pending:
            self._to_pool(job)
        self._emit_state()
        return job

    def finish_now(self, job: Job) -> None:
        """Finish a job whose every item is already at hand (the store had them all): it never queues."""
        with self._lock:
            job.state = JobState.DONE
            job.answered = True
            job.finished_at = time.monotonic()
            self.counters["answered"] += 1
        self._done(job)

    def _preempt_for(self, job: Job) -> bool:
        """Stop a running batch of pre-renders in each pool where ``job``'s queued tasks find no free slot;
        True when one was marked (its progress callback raises at its next call)."""
        marked = False
        pools = {self._pool_of(task) for i in job.to_render
                 if (task := self._queued.get(job.render_keys[i])) is not None and not task.running}
        for pool in pools:
            if self._busy.get(pool, 0) < self._slots.get(pool, 1):
                continue
            waiting = sum(1 for t in self._queued.values() if t.priority is Priority.INTERACTIVE
                          and self._pool_of(t) == pool)
            stopping = sum(1 for b in self._batches if b.pool == pool and b.preempted)
            if stopping >= waiting:
                continue  # enough slots are being freed for what waits
            # the one that has done least: the least work is lost, and its model is furthest from its
            # end, where a model's longer stretches between steps lie (a decoder's, say)
            candidates = [b for b in self._batches if b.pool == pool and not b.preempted and b.background]
            if candidates:
                batch = min(candidates, key=lambda b: b.fraction)
                batch.preempted = True
                self.counters["preempted"] += 1
                marked = True
        return marked

    def _position(self, priority: Priority, seq: int) -> int:
        return sum(1 for t in self._queued.values() if (t.priority, t.seq) < (priority, seq))

    def _trim_background(self) -> None:
        background = [t for t in self._queued.values() if t.priority is Priority.BACKGROUND]
        excess = len(background) - self.max_queued_background
        if excess <= 0:
            return
        for task in sorted(background, key=lambda t: t.seq)[:excess]:
            self._queued.pop(task.key, None)
            for job, _ in task.waiters:
                if not job.finished and job.priority is Priority.BACKGROUND:
                    self._pool.submit(Priority.BACKGROUND, functools.partial(self._drop, job))

    def _drop(self, job: Job) -> None:
        self._fail(job, CancelledError("pre-render dropped: the background queue is full"))

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when no such job is unfinished."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.finished:
                return False
        return self._cancel_job(job, f"job {job_id!r} was cancelled")

    def _cancel_job(self, job: Job, why: str) -> bool:
        return self._fail(job, CancelledError(why))

    def get(self, job_id: str) -> Job | None:
        """An unfinished job by id (None once it has finished)."""
        with self._lock:
            return self._jobs.get(job_id)

    def status(self) -> dict[str, Any]:
        with self._lock:
            queued = {p.name.lower(): 0 for p in Priority}
            for task in self._queued.values():
                queued[task.priority.name.lower()] += 1
            running_jobs = sorted({job.id for tasks in (self._running, self._storing) for t in tasks.values()
                                   for job, _ in t.waiters if not job.finished})
            active = sum(1 for job in self._jobs.values() if not job.finished)
            return {
                "queued": queued,
                "rendering": len(self._running),
                "storing": len(self._storing),
                "running_jobs": running_jobs,
                "active_jobs": active,
                "conform_queue": self._pool.queued(),
                "counters": dict(self.counters),
                "stopping": self._stopping,
            }

    # ---- the workers ------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                batch = self._take_batch()
                while not batch and not self._stopping:
                    self._cond.wait()
                    batch = self._take_batch()
                if not batch:
                    return
                if self._queued:
                    self._cond.notify()  # what is left may go to another free slot now
                pool = self._pool_of(batch[0])
                self._busy[pool] += 1
                record = _Batch(pool, batch)
                self._batches.append(record)
                for task in batch:
                    task.running = True
                    task.batch = record
                    self._running[task.key] = task
            self._emit_state()
            jobs = self._jobs_of(batch)
            renders: list[Render] | None = None
            try:
                renders = self._run(batch, record)
            finally:
                with self._lock:
                    self._busy[pool] -= 1
                    self._batches.remove(record)
                    for task in batch:
                        if task.batch is record:  # (a pre-empted task queued again may be running elsewhere now)
                            task.batch = None
                            self._running.pop(task.key, None)
                            if renders is not None:  # running still, until it is written and handed out
                                self._storing[task.key] = task
                            else:
                                task.running = False
                    if renders is not None:
                        record.unstored = len(batch)
                    self._cond.notify_all()  # a slot is free: a worker waiting on this pool may go
                self._emit_state()
            if renders is not None:
                self._store_later(batch, renders, record)
                if self._slots[pool] > 1 and not record.background:
                    self._await_next_asks(jobs, record)

    def _store_later(self, batch: list[_Task], renders: list[Render], record: _Batch) -> None:
        """Have each render written (and then handed out) by the store's thread, those an interactive job
        waits on first."""
        with self._lock:
            priorities = [min([job.priority for job, _ in task.waiters], default=task.priority) for task in batch]
        for task, render, priority in zip(batch, renders, priorities, strict=True):
            if self._stopping:  # the store's thread may have ended (stop() gave up waiting for this batch);
                self._store(task, render, record)  # this worker takes no other batch now: it writes them itself
            else:
                self._store_pool.submit(priority, functools.partial(self._store, task, render, record))

    def _store(self, task: _Task, render: Render, record: _Batch) -> None:
        """Write ``task``'s render, then hand it to the jobs waiting on it (or fail them, when it cannot be
        written: its batch's other renders are not theirs)."""
        error: LoopbridgeError | None = None
        try:
            self.engine.store_renders([render])
        except LoopbridgeError as exc:
            error = exc
            log.warning("render %s for model %r could not be stored: %s", task.key[:12], task.request.model, exc)
        except Exception as exc:  # a bug or a library failure: its jobs hear it, the thread goes on
            log.exception("render %s for model %r could not be stored", task.key[:12], task.request.model)
            error = StoreError(f"storing the render failed: {type(exc).__name__}: {exc}")
        with self._lock:
            waiters: list[tuple[Job, int]] = []
            if self._storing.get(task.key) is task:
                del self._storing[task.key]
                task.running = False
                waiters = list(task.waiters)  # nobody joins it now: a job asking for its key later finds it stored
            if record.asked is None:
                record.asked = self._asked
            record.unstored -= 1
            if error is not None:
                self.counters["failed_stores"] += 1
            self._cond.notify_all()  # the slot that rendered it may be waiting for its renders to go out
        if error is not None:
            for job, _ in waiters:
                self._fail(job, error)
        else:
            for job, index in waiters:
                self._resolve(job, index, render)
        self._emit_state()

    def _await_next_asks(self, jobs: list[Job], record: _Batch) -> None:
        """Wait until the renders of ``record``, just rendered on this slot, are stored and handed out,
        then (:attr:`next_ask_window_s` at most) until ``jobs`` are answered and as many jobs have been
        submitted since the first was handed out (:attr:`_Batch.asked`): callers that ask again as soon
        as they are answered then share this slot's next batch, rather than missing it by a few
        milliseconds and waiting for a slot to free while this one runs whatever was queued. Ends early
        when enough is queued for a full batch or the scheduler stops. Its slot counts as free
        meanwhile: an idle slot takes queued work at once."""
        largest = self._largest_batch(jobs)
        with self._cond:  # the callers can ask again only once answered: the window starts then
            while not self._stopping and record.unstored > 0 and len(self._queued) < largest:
                self._cond.wait()
            if record.unstored > 0 or record.asked is None:
                return
            asked_before = record.asked
        deadline = time.monotonic() + self.next_ask_window_s
        for job in jobs:
            if not job.wait(max(0.0, deadline - time.monotonic())):
                break
        with self._cond:
            while not self._stopping and self._asked - asked_before < len(jobs) and len(self._queued) < largest:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)

    def _largest_batch(self, jobs: list[Job]) -> int:
        models = {request.model for job in jobs for _, request in job.plan}
        try:
            return max(max(1, self.engine.capabilities(model).max_batch) for model in models)
        except LoopbridgeError:
            return 1

    def _pool_of(self, task: _Task) -> str:
        try:
            pool = self.engine.pool(task.request.model)
        except LoopbridgeError:
            pool = next(iter(self._slots))  # an unknown model fails where it runs, with its own error
        if pool not in self._slots:  # a family the cluster was not started with: its calls queue there
            self._slots[pool] = 1
            self._busy[pool] = 0
        return pool

    def _take_batch(self) -> list[_Task]:
        head: _Task | None = None
        full: list[tuple[int, int, str]] = []  # the heads of pools whose every slot is busy: kept queued
        while self._heap:
            entry = heapq.heappop(self._heap)
            priority, seq, key = entry
            task = self._queued.get(key)
            if task is not None and task.priority == priority and task.seq == seq:
                if not task.wanted:
                    self._queued.pop(key)  # nobody wants it any more
                    continue
                pool = self._pool_of(task)
                if self._busy[pool] >= self._slots[pool]:
                    full.append(entry)
                    continue
                head = task
                break
        for entry in full:
            heapq.heappush(self._heap, entry)
        if head is None:
            return []
        self._queued.pop(head.key)
        try:
            max_batch = max(1, self.engine.capabilities(head.request.model).max_batch)
        except LoopbridgeError:
            max_batch = 1
        batch = [head]
        shape = head.shape()
        for task in sorted(self._queued.values(), key=lambda t: (t.priority, t.seq)):
            if len(batch) >= max_batch:
                break
            if task.priority > head.priority and not self.batch_background:
                break
            if task.shape() == shape and task.wanted:
                batch.append(task)
        pool = self._pool_of(head)
        slots = self._slots[pool]
        free = slots - self._busy[pool]
        # other slots are free: the work is shared between them rather than run as one batch. On a CPU
        # (a row costs as much as a request) a batch takes its share of the pool's work, the batches
        # running on its other slots included: a slot that frees while the others run leaves them work,
        # so none runs a long batch while the others idle (on an accelerator a bigger batch costs little
        # more: the free slots share it)
        if self.engine.accelerated:
            if free > 1:
                batch = batch[: -(-len(batch) // free)]
        elif self.preempt and head.priority is Priority.BACKGROUND:
            # pre-renders that an interactive request may have to stop go one at a time on a CPU: it waits
            # for their model's next step, and a step of a batch of n costs several steps of one there
            batch = batch[:1]
        elif slots > 1:  # the queued work and the pool's running batches, shared out between all its slots
            running = sum(len(record.tasks) for record in self._batches if record.pool == pool)
            batch = batch[: max(1, -(-(len(batch) + running) // slots))]
        for task in batch[1:]:
            self._queued.pop(task.key)
        if len(self._heap) > 4 * (len(self._queued) + 16):  # drop stale heap entries now and then
            self._heap = [(t.priority, t.seq, k) for k, t in self._queued.items()]
            heapq.heapify(self._heap)
        return batch

    def _run(self, batch: list[_Task], record: _Batch | None = None) -> list[Render] | None:
        """Render ``batch`` (nothing stored yet); returns its renders in order, or None when the batch did
        not complete (its jobs failed, or its tasks queued again)."""
        for job in self._jobs_of(batch):
            if job.state is JobState.QUEUED:
                job.state = JobState.RUNNING
                self._event("job", id=job.id, state=job.state.value)
        try:
            renders = self._render(batch, record)
        except _Preempted:
            log.info("batch of %d pre-renders for model %r stopped for an interactive request: queued again",
                     len(batch), batch[0].request.model)
            self._requeue(batch, record)
            return None
        except CancelledError as exc:
            if record is not None and record.preempted and any(task.wanted for task in batch):
                # pre-empted, and stopped by the engine's own means before its progress said so
                log.info("batch of %d pre-renders for model %r stopped for an interactive request: queued again",
                         len(batch), batch[0].request.model)
                self._requeue(batch, record)
                return None
            log.info("batch of %d for model %r stopped: %s", len(batch), batch[0].request.model, exc)
            for task in batch:
                for job, _ in list(task.waiters):
                    self._fail(job, exc)
            return None
        except LoopbridgeError as exc:
            self.counters["failed_batches"] += 1
            log.warning("batch of %d for model %r failed: %s", len(batch), batch[0].request.model, exc)
            for task in batch:
                for job, _ in list(task.waiters):
                    self._fail(job, exc)
            return None
        except Exception as exc:  # a bug or a library failure must not take the worker down
            self.counters["failed_batches"] += 1
            log.exception("batch of %d for model %r failed", len(batch), batch[0].request.model)
            error = LoopbridgeError(f"rendering failed: {type(exc).__name__}: {exc}")
            for task in batch:
                for job, _ in list(task.waiters):
                    self._fail(job, error)
            return None
        self.counters["batches"] += 1
        self.counters["rendered"] += len(batch)
        return renders

    def _requeue(self, batch: list[_Task], record: _Batch | None) -> None:
        with self._lock:
            for task in batch:
                if task.batch is not record or not task.wanted:
                    continue
                task.running = False
                task.batch = None
                self._running.pop(task.key, None)
                self._queued[task.key] = task  # in its old place: its priority and sequence are kept
                heapq.heappush(self._heap, (task.priority, task.seq, task.key))
                for job, index in task.waiters:
                    job._fractions.pop(index, None)
            self._cond.notify_all()

    def _render(self, batch: list[_Task], record: _Batch | None = None) -> list[Render]:
        def stop(fraction: float = 0.0) -> None:  # also inside a step (models.base.stop_point), where a model stops
            if self._stopping or not any(t.wanted for t in batch):
                raise CancelledError("nobody is waiting for this batch any more")
            if record is not None and record.preempted and fraction < 1.0:
                raise _Preempted("an interactive request needs this slot")

        def progress(fraction: float) -> None:
            stop(fraction)
            if record is not None:
                record.fraction = fraction
            for task in batch:
                for job, index in task.waiters:
                    job._fractions[index] = fraction
            for job in self._jobs_of(batch):
                self._report(job)

        def background() -> bool:  # asked again while it runs: an interactive job may join it
            return record is not None and record.background

        with stop_check(stop):  # a model in process runs on this thread
            try:
                return self.engine.render([(t.key, t.request) for t in batch], progress, background=background,
                                          store=False)
            except OutOfMemoryError:
                if len(batch) == 1:
                    raise
                log.warning("batch of %d ran out of memory: retrying one request at a time", len(batch))
                return [self.engine.render([(t.key, t.request)], progress, background=background, store=False)[0]
                        for t in batch]

    @staticmethod
    def _jobs_of(batch: list[_Task]) -> list[Job]:
        seen: dict[str, Job] = {}
        for task in batch:
            for job, _ in task.waiters:
                seen.setdefault(job.id, job)
        return list(seen.values())

    def _report(self, job: Job) -> None:
        if job.on_progress is None or job.finished:
            return
        fraction = job._progress()
        if fraction - job._reported >= PROGRESS_STEP or (fraction >= 1.0 > job._reported):
            job._reported = fraction
            try:
                job.on_progress(job, fraction)
            except Exception:
                log.exception("progress callback of job %r failed", job.id)

    def _resolve(self, job: Job, index: int, render: Render) -> None:
        with self._lock:
            if job.finished or index not in job._pending:
                return
            job.renders[index] = render
            job._pending.discard(index)
            complete = not job._pending
        self._report(job)
        if complete:
            self._to_pool(job)

    # ---- finishing ----------------------------------------------------------------------------------------

    def _to_pool(self, job: Job) -> None:
        self._pool.submit(job.priority, lambda: self._finish(job))

    def _finish(self, job: Job) -> None:
        if job.finished:
            return
        if job.spec is not None:
            job.state = JobState.CONFORMING
        try:
            if self.finish is not None:
                self.finish(job)
        except LoopbridgeError as exc:
            self._fail(job, exc)
            return
        except Exception as exc:
            log.exception("finishing job %r failed", job.id)
            self._fail(job, LoopbridgeError(f"conforming failed: {type(exc).__name__}: {exc}"))
            return
        with self._lock:
            if job.finished:
                return
            job.state = JobState.DONE
            job.finished_at = time.monotonic()
        self._done(job)

    def _fail(self, job: Job, error: LoopbridgeError) -> bool:
        with self._lock:
            if job.finished:
                return False
            job.error = error
            job.state = JobState.CANCELLED if isinstance(error, CancelledError) else JobState.FAILED
            job.finished_at = time.monotonic()
            if job.state is JobState.CANCELLED:
                self.counters["cancelled"] += 1
            running = False
            for key in job.render_keys:
                task = self._queued.get(key) or self._running.get(key) or self._storing.get(key)
                if task is None:
                    continue
                task.waiters = [(j, i) for j, i in task.waiters if j is not job]
                running = running or task.batch is not None  # (one being stored has no batch: it is written)
                if not task.running and not task.wanted:
                    self._queued.pop(key, None)
        if running and not self._stopping:  # its batch may be wanted by nobody now (stop() tells the engine once)
            self.engine.batches_changed()
        self._done(job)
        self._emit_state()
        return True

    def _done(self, job: Job) -> None:
        job._done.set()
        self._event("job", id=job.id, state=job.state.value)
        with self._lock:
            # a finished job is forgotten: it holds its renders and its files' bytes, which are its
            # caller's now (a table of thousands of finished jobs held gigabytes nobody asked for)
            if self._jobs.get(job.id) is job:
                del self._jobs[job.id]
        if job.on_done is not None:
            try:
                job.on_done(job)
            except Exception:
                log.exception("completion callback of job %r failed", job.id)

    # ---- events -----------------------------------------------------------------------------------------

    def _event(self, topic: str, **fields: Any) -> None:
        if self.on_event is not None:
            try:
                self.on_event(topic, fields)
            except Exception:
                log.exception("scheduler event callback failed")

    def _emit_state(self) -> None:
        if self.on_event is not None:
            self._event("state", **self.status())
