"""The scheduler behind the front door: priority, batching, dedupe, cancel, per-job errors, shutdown, on the
tiny real model. (What the store already holds is the front door's question: tests/engine/test_frontdoor.py.)"""

from __future__ import annotations

import queue
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from loopbridge.engine import BusyError, CancelledError, GenerateRequest, ModelLoadError
from loopbridge.engine.core import Engine
from loopbridge.engine.errors import StoreError
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.request import Render
from loopbridge.engine.scheduler import Job, JobState, Priority, Scheduler
from loopbridge.engine.store import RenderStore


@pytest.fixture()
def engine(tiny_dd_root: Path, tmp_path: Path) -> Engine:
    torch.set_num_threads(1)  # the machine is shared; one thread is also the fastest for a tiny model
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=tmp_path / "no-hub", include_embedded=False)
    return Engine(store_dir=tmp_path / "store", registry=registry, device="cpu")


def _request(seed: int = 1, **fields) -> GenerateRequest:
    return GenerateRequest(**{"model": "tiny-dd", "duration_s": 0.05, "steps": 2, "seed": seed, **fields})


def _job(engine: Engine, job_id: str, *requests: GenerateRequest, priority: Priority = Priority.INTERACTIVE,
         **kw) -> Job:
    """A job whose every render is to be made (the front door decides that from the store)."""
    return Job(job_id, [("", r) for r in requests], [engine.render_key(r) for r in requests], priority=priority,
               to_render=range(len(requests)), **kw)


def test_interactive_goes_before_background_and_same_model_requests_are_batched(engine: Engine) -> None:
    order: list[str] = []
    scheduler = Scheduler(engine, on_event=lambda topic, f: order.append(f["id"])
                          if topic == "job" and f["state"] == "running" else None)
    background = scheduler.submit(_job(engine, "bg", _request(1), _request(2), priority=Priority.BACKGROUND))
    interactive = [scheduler.submit(_job(engine, f"i{n}", _request(10 + n))) for n in range(3)]
    assert background.position == 0 and interactive[0].position == 0 and interactive[2].position == 2
    scheduler.start()
    try:
        for job in [background, *interactive]:
            assert len(job.result(timeout=120)) == len(job.plan)
        assert order == ["i0", "i1", "i2", "bg"]
        # three interactive requests of one model and shape: one batch; the background pair: another
        assert scheduler.counters["batches"] == 2 and scheduler.counters["rendered"] == 5
        assert not background.cached and all(engine.store.has_render(k) for k in background.render_keys)
        assert [r.key for r in background.result()] == background.render_keys
    finally:
        scheduler.stop()


def test_different_shapes_go_in_different_batches(engine: Engine) -> None:
    scheduler = Scheduler(engine)
    jobs = [scheduler.submit(_job(engine, "a", _request(1))),
            scheduler.submit(_job(engine, "b", _request(2, duration_s=0.06))),
            scheduler.submit(_job(engine, "c", _request(3)))]
    scheduler.start()
    try:
        for job in jobs:
            job.result(timeout=120)
        assert scheduler.counters["batches"] == 2  # a+c together, b alone
    finally:
        scheduler.stop()


def test_the_same_render_asked_twice_runs_once_and_a_pre_render_is_promoted(engine: Engine) -> None:
    order: list[str] = []
    scheduler = Scheduler(engine, on_event=lambda topic, f: order.append(f["id"])
                          if topic == "job" and f["state"] == "running" else None)
    first_bg = scheduler.submit(_job(engine, "bg-1", _request(5), priority=Priority.BACKGROUND))
    wanted_bg = scheduler.submit(_job(engine, "bg-2", _request(6), priority=Priority.BACKGROUND))
    user = scheduler.submit(_job(engine, "user", _request(6)))  # the knob reached what was only pre-rendered
    twin = scheduler.submit(_job(engine, "twin", _request(6)))
    assert user.position == 0
    scheduler.start()
    try:
        renders = [job.result(timeout=120)[0] for job in (user, twin, wanted_bg, first_bg)]
        assert renders[0].key == renders[1].key == renders[2].key
        assert order[0] in ("bg-2", "user", "twin") and order[-1] == "bg-1"
        assert scheduler.counters["rendered"] == 2
    finally:
        scheduler.stop()


def test_cancel_a_queued_job(engine: Engine) -> None:
    scheduler = Scheduler(engine)
    doomed = scheduler.submit(_job(engine, "doomed", _request(7)))
    kept = scheduler.submit(_job(engine, "kept", _request(8)))
    assert scheduler.cancel("doomed") and not scheduler.cancel("doomed") and not scheduler.cancel("nope")
    assert doomed.state is JobState.CANCELLED
    with pytest.raises(CancelledError):
        doomed.result(timeout=1)
    scheduler.start()
    try:
        kept.result(timeout=120)
        assert not engine.store.has_render(doomed.render_keys[0])
        assert scheduler.counters["rendered"] == 1
    finally:
        scheduler.stop()


def test_cancel_a_running_job_stores_nothing_and_the_worker_goes_on(engine: Engine) -> None:
    started = threading.Event()
    scheduler = Scheduler(engine).start()
    try:
        slow = scheduler.submit(_job(engine, "slow", _request(9, steps=500),
                                     on_progress=lambda job, fraction: started.set()))
        assert started.wait(120), "the render never reported progress"
        assert slow.state is JobState.RUNNING
        assert scheduler.cancel("slow")
        with pytest.raises(CancelledError):
            slow.result(timeout=5)
        after = scheduler.submit(_job(engine, "after", _request(10)))
        after.result(timeout=120)
        assert not engine.store.has_render(slow.render_keys[0]), "a cancelled batch stores nothing"
        assert scheduler.status()["rendering"] == 0
    finally:
        scheduler.stop()


def test_a_failing_model_fails_its_job_and_the_engine_keeps_serving(engine: Engine, tiny_dd_root: Path,
                                                                    tmp_path: Path) -> None:
    models = tmp_path / "models"
    broken = models / "broken-dd"
    shutil.copytree(tiny_dd_root / "tiny-dd", broken)
    for weights in broken.rglob("*.safetensors"):
        weights.write_bytes(weights.read_bytes()[:100])  # a truncated download
    engine.registry.search_paths.append(models)
    scheduler = Scheduler(engine).start()
    try:
        bad = scheduler.submit(_job(engine, "bad", _request(1, model="broken-dd")))
        with pytest.raises(ModelLoadError, match="broken-dd"):
            bad.result(timeout=60)
        assert bad.state is JobState.FAILED
        good = scheduler.submit(_job(engine, "good", _request(1)))
        assert good.result(timeout=120)[0].request.model == "tiny-dd"
        assert scheduler.counters["failed_batches"] == 1
    finally:
        scheduler.stop()


def test_a_full_queue_says_busy_and_stop_cancels_what_is_queued(engine: Engine) -> None:
    scheduler = Scheduler(engine, max_queued_interactive=2)
    queued = scheduler.submit(_job(engine, "two", _request(1), _request(2)))
    with pytest.raises(BusyError, match="at most 2"):
        scheduler.submit(_job(engine, "three", _request(3)))
    scheduler.submit(_job(engine, "background", _request(4), priority=Priority.BACKGROUND))  # the bound is interactive
    with pytest.raises(ValueError, match="already running"):
        scheduler.submit(_job(engine, "two", _request(5)))
    scheduler.stop()
    assert queued.state is JobState.CANCELLED
    with pytest.raises(BusyError, match="shutting down"):
        scheduler.submit(_job(engine, "late", _request(6)))


def test_a_finished_job_is_forgotten_with_its_renders(engine: Engine) -> None:
    """The scheduler keeps unfinished jobs only: a finished one (and the renders and files it holds) is its
    caller's, whatever the outcome."""
    scheduler = Scheduler(engine)
    done = scheduler.submit(_job(engine, "done", _request(41)))
    cancelled = scheduler.submit(_job(engine, "cancelled", _request(42, duration_s=0.06)))
    assert scheduler.get("done") is done and scheduler.status()["active_jobs"] == 2
    assert scheduler.cancel("cancelled") and scheduler.get("cancelled") is None and cancelled.finished
    scheduler.start()
    try:
        assert len(done.result(timeout=120)) == 1
        assert scheduler.get("done") is None and scheduler.status()["active_jobs"] == 0
        assert not scheduler.cancel("done")
        assert done.renders[0] is not None  # the caller still has what it asked for
        again = scheduler.submit(_job(engine, "done", _request(41)))  # an id is free again once finished
        assert len(again.result(timeout=120)) == 1
    finally:
        scheduler.stop()


class _SlotsEngine(Engine):
    """The real engine with the scheduler's view of a cluster: ``slots`` batches at once in one pool, and
    pre-renders stopped for interactive requests (engine/cluster.py's ClusterEngine answers the same)."""

    def __init__(self, *args, slots: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.slots = slots

    @property
    def preempts_background(self) -> bool:
        return True

    def pools(self) -> dict[str, int]:
        return {"": self.slots}


def _slots_engine(engine: Engine, slots: int) -> _SlotsEngine:
    return _SlotsEngine(store_dir=engine.store.root, registry=engine.registry, device="cpu", slots=slots)


def test_free_slots_share_out_what_would_be_one_batch(engine: Engine) -> None:
    two = _slots_engine(engine, 2)
    scheduler = Scheduler(two)
    job = scheduler.submit(_job(two, "four", *[_request(40 + n) for n in range(4)]))
    scheduler.start()
    try:
        assert len(job.result(timeout=120)) == 4
        assert scheduler.counters["batches"] == 2 and scheduler.counters["rendered"] == 4
    finally:
        scheduler.stop()


class _SizesEngine(_SlotsEngine):
    """The real engine on two slots, keeping the size of each batch it was given."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sizes: list[int] = []
        self.second = threading.Event()

    def render(self, items, progress=None, *, background=False, store=True):
        self.sizes.append(len(items))
        if len(self.sizes) == 2:
            self.second.set()
        return super().render(items, progress, background=background, store=store)


def test_a_slot_freeing_while_another_runs_takes_its_share_of_the_queue_on_a_cpu(engine: Engine) -> None:
    sizes = _SizesEngine(store_dir=engine.store.root, registry=engine.registry, device="cpu", slots=2)
    running = threading.Event()
    scheduler = Scheduler(sizes).start()
    try:
        long_job = scheduler.submit(_job(sizes, "long", _request(70, steps=1000),
                                         on_progress=lambda _job, _fraction: running.set()))
        assert running.wait(120)
        four = scheduler.submit(_job(sizes, "four", *[_request(71 + n) for n in range(4)]))
        # the free slot took its share of the five (the four and the long one), not all four in one batch
        assert sizes.second.wait(120)
        assert sizes.sizes == [1, 3], sizes.sizes
        # (the in-process engine runs one batch at a time: the long one stops, and the rest goes on)
        assert scheduler.cancel("long")
        with pytest.raises(CancelledError):
            long_job.result(timeout=120)
        assert len(four.result(timeout=120)) == 4
        assert sizes.sizes == [1, 3, 1], sizes.sizes  # what it left went to the first slot to free
    finally:
        scheduler.stop()


class _TwoReplicasEngine(_SlotsEngine):
    """Two slots, each a real engine of its own (batches run side by side, as on a cluster's replicas);
    a batch holding a seed of ``holds`` waits at its first step until that seed's event is set.
    :attr:`sizes`: the size of each batch run, in order."""

    def __init__(self, engine: Engine, holds: dict[int, threading.Event]) -> None:
        super().__init__(store_dir=engine.store.root, registry=engine.registry, device="cpu", slots=2)
        self.holds = holds
        self.reached = {seed: threading.Event() for seed in holds}
        self.sizes: list[int] = []
        self._free: queue.Queue[Engine] = queue.Queue()
        for n in range(2):
            self._free.put(Engine(store_dir=engine.store.root.parent / f"replica-{n}", registry=engine.registry,
                                  device="cpu"))

    def generate(self, model_id, requests, progress=None, *, background=False):
        self.sizes.append(len(requests))
        held = [seed for seed in (r.seed for r in requests) if seed in self.holds]
        replica = self._free.get(timeout=HOLD_TIMEOUT_S)
        try:
            for seed in held:
                self.reached[seed].set()
                if not self.holds[seed].wait(HOLD_TIMEOUT_S):
                    raise RuntimeError(f"seed {seed} was held past {HOLD_TIMEOUT_S:.0f} s")
            return replica.generate(model_id, requests, progress, background=background)
        finally:
            self._free.put(replica)


def test_a_slot_whose_batch_ended_takes_its_callers_next_request_with_what_was_queued(engine: Engine) -> None:
    release, go_on = threading.Event(), threading.Event()
    two = _TwoReplicasEngine(engine, {80: release, 81: go_on})
    scheduler = Scheduler(two)
    # a window no busy machine's thread switch can outlast: the slot's wait ends as soon as the caller
    # has asked again, so the test is no slower for it (with the window at 0 its batches were [1, 1, 1, 1])
    scheduler.next_ask_window_s = 60.0
    scheduler.start()
    try:
        long_job = scheduler.submit(_job(two, "long", _request(80)))  # holds one slot until released
        assert two.reached[80].wait(HOLD_TIMEOUT_S)
        first = scheduler.submit(_job(two, "first", _request(81)))
        assert two.reached[81].wait(HOLD_TIMEOUT_S)
        queued = scheduler.submit(_job(two, "queued", _request(82)))  # both slots busy: it waits
        go_on.set()
        assert len(first.result(timeout=120)) == 1
        # its caller asks again at once: the slot that answered it waits for that, and takes both
        again = scheduler.submit(_job(two, "again", _request(83)))
        assert len(queued.result(timeout=120)) == 1 and len(again.result(timeout=120)) == 1
        assert two.sizes == [1, 1, 2], two.sizes
        release.set()
        assert len(long_job.result(timeout=120)) == 1
    finally:
        release.set()
        go_on.set()
        scheduler.stop()


def test_prerenders_that_may_be_stopped_run_one_to_a_batch_on_a_cpu(engine: Engine) -> None:
    sizes = _SizesEngine(store_dir=engine.store.root, registry=engine.registry, device="cpu", slots=2)
    scheduler = Scheduler(sizes)
    prerenders = scheduler.submit(_job(sizes, "bg", *[_request(100 + n) for n in range(5)],
                                       priority=Priority.BACKGROUND))
    scheduler.start()
    try:
        assert len(prerenders.result(timeout=120)) == 5
        # an interactive request that stops one waits for its next step: a step of one render, not of five
        assert sizes.sizes == [1] * 5, sizes.sizes
    finally:
        scheduler.stop()


def test_an_interactive_job_stops_running_prerenders_which_queue_again(engine: Engine) -> None:
    one = _slots_engine(engine, 1)
    finished: list[str] = []
    running = threading.Event()
    scheduler = Scheduler(one, on_event=lambda topic, f: finished.append(f["id"])
                          if topic == "job" and f["state"] == "done" else None).start()
    try:
        background = scheduler.submit(_job(one, "bg", _request(50, steps=400), priority=Priority.BACKGROUND,
                                           on_progress=lambda _job, _fraction: running.set()))
        assert running.wait(120)
        interactive = scheduler.submit(_job(one, "now", _request(51)))
        interactive.result(timeout=120)
        assert len(background.result(timeout=120)) == 1  # queued again, then made whole
        assert finished == ["now", "bg"]
        assert scheduler.counters["preempted"] == 1 and scheduler.counters["rendered"] == 2
    finally:
        scheduler.stop()


class _HeardEngine(_SlotsEngine):
    """The real engine on two slots, keeping what the scheduler tells it of its batches: the
    ``background`` each render was given, and whether :meth:`batches_changed` was called."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backgrounds: list[object] = []
        self.changed = threading.Event()

    def render(self, items, progress=None, *, background=False, store=True):
        self.backgrounds.append(background)
        return super().render(items, progress, background=background, store=store)

    def batches_changed(self) -> None:
        self.changed.set()


def test_an_interactive_job_joining_running_prerenders_makes_their_batch_interactive(engine: Engine) -> None:
    heard = _HeardEngine(store_dir=engine.store.root, registry=engine.registry, device="cpu", slots=2)
    running = threading.Event()
    scheduler = Scheduler(heard).start()
    try:
        request = _request(60, steps=400)
        prerender = scheduler.submit(_job(heard, "bg", request, priority=Priority.BACKGROUND,
                                          on_progress=lambda _job, _fraction: running.set()))
        assert running.wait(120)
        [background] = heard.backgrounds
        assert callable(background) and background()  # only pre-renders wait on it
        assert not heard.changed.is_set()
        joined = scheduler.submit(_job(heard, "now", request))
        assert heard.changed.is_set()  # the engine heard it at once, not at the batch's next step
        assert not background()  # an interactive job waits on it now: it must not pause for others
        assert [r.key for r in joined.result(timeout=120)] == [r.key for r in prerender.result(timeout=120)]
        assert len(heard.backgrounds) == 1  # one batch made it for both
    finally:
        scheduler.stop()


#: the longest a step of the pre-emption test waits for a render to reach its mark or to end (a
#: loaded machine is slow, never stuck: waiting longer than this fails the test)
HOLD_TIMEOUT_S = 120.0


class _HeldReplicasEngine(_SlotsEngine):
    """Three slots, each a real engine of its own (as a cluster's replicas: batches run side by side),
    the first run of each request seed in ``marks`` held at the first progress step at or past its
    mark until :attr:`release` is set; :attr:`runs` lists the seed of each batch run, in order."""

    def __init__(self, engine: Engine, marks: dict[int, float]) -> None:
        super().__init__(store_dir=engine.store.root, registry=engine.registry, device="cpu", slots=3)
        self.marks = dict(marks)
        self.reached = {seed: threading.Event() for seed in marks}
        self.release = threading.Event()
        self.runs: list[int] = []
        self._free: queue.Queue[Engine] = queue.Queue()
        for n in range(3):
            self._free.put(Engine(store_dir=engine.store.root.parent / f"replica-{n}", registry=engine.registry,
                                  device="cpu"))

    def generate(self, model_id, requests, progress=None, *, background=False):
        [request] = requests
        self.runs.append(request.seed)
        mark = self.marks.pop(request.seed, None)  # held on its first run only

        def held(fraction: float) -> None:
            nonlocal mark
            if progress is not None:
                progress(fraction)  # the scheduler notes how far the batch has come
            if mark is not None and fraction >= mark:
                mark = None
                self.reached[request.seed].set()
                if not self.release.wait(HOLD_TIMEOUT_S):
                    raise RuntimeError(f"seed {request.seed} was held past {HOLD_TIMEOUT_S:.0f} s")

        replica = self._free.get(timeout=HOLD_TIMEOUT_S)
        try:
            return replica.generate(model_id, requests, held, background=background)
        finally:
            self._free.put(replica)


def test_an_interactive_job_stops_the_prerender_that_has_done_least(engine: Engine) -> None:
    # three pre-renders held at a quarter, half and three quarters of their steps, started in the order
    # half, quarter, three quarters: the one done least is neither the first started nor the most done
    marks = {80: 0.5, 81: 0.25, 82: 0.75}
    held = _HeldReplicasEngine(engine, marks)
    scheduler = Scheduler(held).start()
    try:
        prerenders = {}
        for seed in marks:
            prerenders[seed] = scheduler.submit(_job(held, f"bg-{seed}", _request(seed, steps=8),
                                                     priority=Priority.BACKGROUND))
            assert held.reached[seed].wait(HOLD_TIMEOUT_S), f"pre-render {seed} never reached its mark"
        interactive = scheduler.submit(_job(held, "now", _request(83, steps=8)))
        assert scheduler.counters["preempted"] == 1  # chosen as the job was submitted, while all three hold
        held.release.set()
        assert len(interactive.result(timeout=HOLD_TIMEOUT_S)) == 1
        for job in prerenders.values():
            assert len(job.result(timeout=HOLD_TIMEOUT_S)) == 1
        # the stopped one (and only it) ran again
        assert sorted(held.runs) == [80, 81, 81, 82, 83], held.runs
        assert scheduler.counters["preempted"] == 1 and scheduler.counters["rendered"] == 4
    finally:
        held.release.set()  # nothing stays held when an assertion failed
        scheduler.stop()


# ---- a render's slot is free while it is stored ------------------------------------------------------------

class _HeldStore(RenderStore):
    """The real store, each render's write held (before anything is written) until :attr:`release` is set,
    and that of a seed in ``failing`` refused with a StoreError; :attr:`writing` lists the seeds whose
    write began, :attr:`written` those whose write ended, in order."""

    def __init__(self, root: Path, failing: frozenset[int] = frozenset()) -> None:
        super().__init__(root)
        self.failing = failing
        self.release = threading.Event()
        self.began = threading.Event()
        self.writing: list[int] = []
        self.written: list[int] = []

    def put_render(self, render: Render) -> None:
        self.writing.append(render.request.seed)
        self.began.set()
        if not self.release.wait(HOLD_TIMEOUT_S):
            raise RuntimeError(f"the write of seed {render.request.seed} was held past {HOLD_TIMEOUT_S:.0f} s")
        if render.request.seed in self.failing:
            raise StoreError(f"cannot write render {render.key}: the disk is full (seed {render.request.seed})")
        super().put_render(render)
        self.written.append(render.request.seed)


class _HeldStoreEngine(Engine):
    """The real in-process engine (one slot) on a :class:`_HeldStore`; :attr:`generated` lists the seeds
    of each model run that has ended, in order."""

    def __init__(self, engine: Engine, store: _HeldStore) -> None:
        super().__init__(store_dir=store.root, registry=engine.registry, device="cpu")
        self.held = store
        self.generated: list[int] = []
        self.ran = threading.Condition()

    @property
    def store(self) -> RenderStore:
        return self.held

    def generate(self, model_id, requests, progress=None, *, background=False):
        outputs = super().generate(model_id, requests, progress, background=background)
        with self.ran:
            self.generated += [r.seed for r in requests]
            self.ran.notify_all()
        return outputs

    def wait_generated(self, seed: int) -> bool:
        with self.ran:
            return self.ran.wait_for(lambda: seed in self.generated, HOLD_TIMEOUT_S)


def _until(condition, timeout_s: float = HOLD_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the scheduler never got there"
        time.sleep(0.005)


def test_the_next_batch_renders_while_the_last_is_written_and_jobs_hear_only_once_stored(
        engine: Engine, tmp_path: Path) -> None:
    held = _HeldStoreEngine(engine, _HeldStore(tmp_path / "held"))
    assert held.pools() == {"": 1}  # in process: one slot, one worker
    scheduler = Scheduler(held).start()
    try:
        first = scheduler.submit(_job(held, "first", _request(90)))
        assert held.held.began.wait(HOLD_TIMEOUT_S)
        assert held.held.writing == [90] and held.held.written == []
        second = scheduler.submit(_job(held, "second", _request(91)))
        # the one slot took the next batch while the first is still being written
        assert held.wait_generated(91), held.generated
        assert held.held.written == [] and held.generated == [90, 91]
        assert not first.finished and not second.finished  # nobody hears of a render before it is stored
        _until(lambda: scheduler.status()["storing"] == 2)  # (the worker moves it on as the model returns)
        assert scheduler.status()["rendering"] == 0 and held.held.written == []
        assert not first.finished and not second.finished
        assert sorted(scheduler.status()["running_jobs"]) == ["first", "second"]
        held.held.release.set()
        [made] = first.result(timeout=HOLD_TIMEOUT_S)
        assert len(second.result(timeout=HOLD_TIMEOUT_S)) == 1
        assert held.held.written == [90, 91] and held.store.has_render(made.key)
        assert scheduler.counters["rendered"] == 2 and scheduler.status()["storing"] == 0
    finally:
        held.held.release.set()
        scheduler.stop()


def test_a_request_for_a_render_being_stored_waits_for_that_write_rather_than_rendering_it_again(
        engine: Engine, tmp_path: Path) -> None:
    held = _HeldStoreEngine(engine, _HeldStore(tmp_path / "held"))
    scheduler = Scheduler(held).start()
    try:
        prerender = scheduler.submit(_job(held, "pre", _request(92), priority=Priority.BACKGROUND))
        assert held.held.began.wait(HOLD_TIMEOUT_S)
        user = scheduler.submit(_job(held, "user", _request(92)))  # the knob reached it as it is written
        cancelled = scheduler.submit(_job(held, "gone", _request(92)))
        assert user.position == 0 and user.state is JobState.QUEUED
        assert scheduler.cancel("gone")  # one who no longer wants it: the others still get it
        held.held.release.set()
        [mine] = user.result(timeout=HOLD_TIMEOUT_S)
        [theirs] = prerender.result(timeout=HOLD_TIMEOUT_S)
        assert mine.key == theirs.key and held.store.has_render(mine.key)
        assert held.generated == [92] and held.held.writing == [92]  # one model run, one write
        assert scheduler.counters["rendered"] == 1 and cancelled.state is JobState.CANCELLED
    finally:
        held.held.release.set()
        scheduler.stop()


def test_a_render_that_cannot_be_stored_fails_its_jobs_only(engine: Engine, tmp_path: Path) -> None:
    held = _HeldStoreEngine(engine, _HeldStore(tmp_path / "held", failing=frozenset({94})))
    held.held.release.set()
    scheduler = Scheduler(held)
    kept = scheduler.submit(_job(held, "kept", _request(93)))
    lost = scheduler.submit(_job(held, "lost", _request(94)))
    both = scheduler.submit(_job(held, "both", _request(95), _request(94)))
    scheduler.start()
    try:
        with pytest.raises(StoreError, match="seed 94"):
            lost.result(timeout=HOLD_TIMEOUT_S)
        with pytest.raises(StoreError, match="seed 94"):
            both.result(timeout=HOLD_TIMEOUT_S)
        assert lost.state is both.state is JobState.FAILED
        [made] = kept.result(timeout=HOLD_TIMEOUT_S)
        assert held.store.has_render(made.key) and not held.store.has_render(lost.render_keys[0])
        assert held.generated == [93, 94, 95]  # one batch (same model and shape)
        after = scheduler.submit(_job(held, "after", _request(96)))  # the engine keeps serving
        assert len(after.result(timeout=HOLD_TIMEOUT_S)) == 1
        # (written in turn, before the later job's) the failed job's other render is stored all the same
        assert held.held.written == [93, 95, 96] and held.store.has_render(both.render_keys[0])
        assert scheduler.counters["failed_stores"] == 1 and scheduler.counters["failed_batches"] == 0
    finally:
        scheduler.stop()


def test_engine_render_stores_what_it_makes_unless_told_not_to(engine: Engine) -> None:
    items = [(engine.render_key(r), r) for r in (_request(97), _request(98))]
    kept = engine.render(items[:1])
    assert engine.store.has_render(kept[0].key)
    [loose] = engine.render(items[1:], store=False)
    assert not engine.store.has_render(loose.key)
    engine.store_renders([loose])
    assert engine.store.get_render(loose.key) is not None


def test_stop_writes_the_renders_already_made(engine: Engine, tmp_path: Path) -> None:
    held = _HeldStoreEngine(engine, _HeldStore(tmp_path / "held"))
    scheduler = Scheduler(held).start()
    try:
        job = scheduler.submit(_job(held, "made", _request(99)))
        assert held.held.began.wait(HOLD_TIMEOUT_S)
        stopping = threading.Thread(target=scheduler.stop, kwargs={"timeout": HOLD_TIMEOUT_S})
        stopping.start()
        _until(lambda: scheduler.stopping)
        held.held.release.set()
        stopping.join(HOLD_TIMEOUT_S)
        assert not stopping.is_alive()
        assert job.state is JobState.CANCELLED  # its caller hears the engine stopped ...
        assert held.held.written == [99] and held.store.has_render(job.render_keys[0])  # ... and nothing made is lost
    finally:
        held.held.release.set()
        scheduler.stop()


class _HeardStepsEngine(Engine):
    """The real engine, noting each fraction its model reports (a progress step) before the scheduler hears it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.heard: list[float] = []
        self.ended = threading.Event()  # a model run has ended (rendered or stopped)

    def generate(self, model_id, requests, progress=None, *, background=False):
        def heard(fraction: float) -> None:
            self.heard.append(fraction)
            if progress is not None:
                progress(fraction)

        try:
            return super().generate(model_id, requests, heard, background=background)
        finally:
            self.ended.set()


def test_cancel_stops_a_running_default_model_batch_inside_its_step(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    engine = _HeardStepsEngine(store_dir=tmp_path / "store", device="cpu")  # the embedded default model
    scheduler = Scheduler(engine).start()
    at_cancel: list[int] = []

    def cancel_once(job: Job, fraction: float) -> None:
        if not at_cancel:
            at_cancel.append(len(engine.heard))
            assert scheduler.cancel(job.id)

    try:
        doomed = scheduler.submit(_job(engine, "doomed", GenerateRequest("kick", seed=5, steps=50),
                                       on_progress=cancel_once))
        with pytest.raises(CancelledError):
            doomed.result(timeout=120)
        assert engine.ended.wait(120), "the cancelled batch's model never stopped"
        # the model stopped at a stop point of its next step: it never reported that step's end
        assert at_cancel and len(engine.heard) == at_cancel[0] < 50
        assert not engine.store.has_render(doomed.render_keys[0]), "a cancelled batch stores nothing"
        after = scheduler.submit(_job(engine, "after", GenerateRequest("kick", seed=6, steps=2)))
        assert len(after.result(timeout=120)) == 1
    finally:
        scheduler.stop()
