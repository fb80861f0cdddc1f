"""The front door on a real (tiny) Dance Diffusion checkpoint: one path from an order to stored, conformed
samples; the store asked once a job; batching, caching, cancelling and faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyloudnorm
import pytest
import torch
from loopbridge.engine import (
    CancelledError,
    GenerateRequest,
    NotFoundError,
    OutOfMemoryError,
    RequestError,
    TooLargeError,
    UnknownModelError,
    UnsupportedError,
)
from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor, HostFacts, Order
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.request import DEFAULT_SAMPLE_RATE, ConformSpec, Kind


@pytest.fixture()
def engine(tiny_dd_root: Path, tmp_path: Path) -> Engine:
    torch.set_num_threads(1)
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=tmp_path / "no-cache", include_embedded=False)
    return Engine(store_dir=tmp_path / "store", registry=registry, device="cpu")


@pytest.fixture()
def door(engine: Engine) -> Iterator[FrontDoor]:
    door = FrontDoor(engine, prerender_depth=0, conform_workers=1).start()
    yield door
    door.stop()


def _request(**fields: Any) -> GenerateRequest:
    return GenerateRequest(**{"model": "tiny-dd", "duration_s": 0.05, "steps": 2, "seed": 9, **fields})


def _count_backend_calls(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    with engine.weights.use("tiny-dd") as backend:
        original = backend._generate

        def counting(requests: Any, progress: Any) -> Any:
            calls.append(len(requests))
            return original(requests, progress)

        monkeypatch.setattr(backend, "_generate", counting)
    return calls


def _count_store_questions(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"lookup": 0, "get_render": 0, "has_render": 0, "render_request": 0}
    store = engine.store
    for name in counts:
        original = getattr(store, name)

        def counted(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            counts[_name] += 1
            return _original(*args, **kw)

        monkeypatch.setattr(store, name, counted)
    return counts


def test_variations_render_as_one_batch_conform_and_come_back_from_the_store(
        door: FrontDoor, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_backend_calls(engine, monkeypatch)
    order = Order(_request(), HostFacts(tempo_bpm=128), variations=4)
    samples = door.generate(order, timeout=120)
    assert calls == [4], "four variations must be one backend call"
    assert [s.variation for s in samples] == [0, 1, 2, 3] and not any(s.cached for s in samples)
    assert all(s.path.is_file() and s.path.read_bytes() == s.data for s in samples)
    assert {s.sample_rate for s in samples} == {DEFAULT_SAMPLE_RATE} and {s.tempo_bpm for s in samples} == {128}
    assert engine.store.stats() == {"renders": 4, "conformed": 4, "prompts": 0}

    # the same order again: answered from the store, finished as it is submitted, no model, no queue
    jobs_before = door.queue()["counters"]["jobs"]
    again = door.submit(order)
    assert again.answered and again.finished and again.cached
    assert door.queue()["counters"]["jobs"] == jobs_before
    for first, second in zip(samples, again.result(), strict=True):
        assert second.cached and second.key == first.key and second.data == first.data
        np.testing.assert_array_equal(first.audio, second.audio)
    assert calls == [4]


def test_the_store_is_asked_once_a_job(door: FrontDoor, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = _count_store_questions(engine, monkeypatch)
    order = Order(_request(seed=20), HostFacts(tempo_bpm=100), variations=2)
    door.generate(order, timeout=120)
    assert counts == {"lookup": 1, "get_render": 0, "has_render": 2, "render_request": 0}, counts  # 2: the writes

    # answered from memory: the store is not asked at all
    counts.update(dict.fromkeys(counts, 0))
    assert door.submit(order).answered
    assert counts == {"lookup": 0, "get_render": 0, "has_render": 0, "render_request": 0}

    # a fresh front door on the same store: one lookup answers the whole job
    fresh = FrontDoor(engine, prerender_depth=0, conform_workers=1).start()
    try:
        counts.update(dict.fromkeys(counts, 0))
        job = fresh.submit(order)
        assert job.answered and [s.variation for s in job.result()] == [0, 1]
        assert counts == {"lookup": 1, "get_render": 0, "has_render": 0, "render_request": 0}
    finally:
        fresh.stop()

    # a new tempo: the renders are stored, so the model does not run; each is read once to conform it
    counts.update(dict.fromkeys(counts, 0))
    calls = _count_backend_calls(engine, monkeypatch)
    retempo = door.submit(Order(_request(seed=20), HostFacts(tempo_bpm=140), variations=2))
    samples = retempo.result(timeout=120)
    assert calls == [] and retempo.cached and not retempo.answered and {s.tempo_bpm for s in samples} == {140}
    assert counts == {"lookup": 1, "get_render": 2, "has_render": 0, "render_request": 0}


def test_a_stored_render_fitted_again_by_key_or_prefix(door: FrontDoor, engine: Engine,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (first,) = door.generate(Order(_request(seed=100)), timeout=120)
    calls = _count_backend_calls(engine, monkeypatch)
    (again,) = door.generate(Order(render_key=first.render_key[:10], host=HostFacts(tempo_bpm=90),
                                   pitch_semitones=-2), timeout=120)
    assert calls == [] and again.render_key == first.render_key and again.key != first.key
    assert again.tempo_bpm == 90 and "down2st" in again.filename
    recalled = door.recall(first.render_key[:10])
    assert recalled is not None and recalled.key == first.render_key
    assert door.history()[0].key == first.render_key
    with pytest.raises(NotFoundError, match="render_key='abcdef12'"):
        door.submit(Order(render_key="abcdef12"))
    with pytest.raises(RequestError, match="one of a request, the key of a stored render or a user's audio"):
        Order()


def test_another_loudness_is_another_file_and_is_not_answered_with_the_old_one(
        door: FrontDoor, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # a loop of 0.75 s (two bars of 3/4 at 480 BPM: the tiny model renders at most 1 s)
    host = HostFacts(tempo_bpm=480, meter_numerator=3, meter_denominator=4, bars=2, sample_rate=16000)
    (first,) = door.generate(Order(_request(kind="loop", duration_s=None), host), timeout=120)
    calls = _count_backend_calls(engine, monkeypatch)
    (quiet,) = door.generate(Order(render_key=first.render_key, host=host, loudness_lufs=-24.0), timeout=120)
    (again,) = door.generate(Order(render_key=first.render_key, host=host, loudness_lufs=-24.0), timeout=120)
    assert calls == []  # no model ran: the render was fitted again
    assert quiet.key != first.key and again.key == quiet.key and again.cached
    assert "_3-4_" in first.filename and "-24LUFS" in quiet.filename and "LUFS" not in first.filename
    assert first.frames == quiet.frames == 12000
    meter = pyloudnorm.Meter(16000)
    loud, soft = (meter.integrated_loudness(s.audio.T.astype(np.float64)) for s in (first, quiet))
    assert soft == pytest.approx(-24.0, abs=0.5)
    assert loud - soft > 5.0


def test_the_hosts_meter_decides_the_loop(door: FrontDoor) -> None:
    # two bars of 7/8 at 600 BPM (the tiny model renders at most 1 s): one bar of 7 quarter notes, 0.7 s
    job = door.submit(Order(_request(kind="loop", duration_s=None), HostFacts(
        tempo_bpm=600, meter_numerator=7, meter_denominator=8, bars=2, sample_rate=16000)))
    (sample,) = job.result(timeout=120)
    assert sample.kind is Kind.LOOP and sample.beats == 7 and sample.frames == 7 * 1600
    assert job.notes == []
    with pytest.raises(RequestError, match="meter_denominator"):
        door.submit(Order(_request(kind="loop", duration_s=None), HostFacts(meter_numerator=7, meter_denominator=3,
                                                                             bars=2)))


def test_two_jobs_that_need_one_file_render_and_conform_it_once(engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    door = FrontDoor(engine, prerender_depth=0, conform_workers=2)
    calls = _count_backend_calls(engine, monkeypatch)
    conforms: list[str] = []
    original = engine.conform

    def counting(render: Any, spec: Any, key: Any = None, **options: Any) -> Any:
        conforms.append(key)
        return original(render, spec, key, **options)

    monkeypatch.setattr(engine, "conform", counting)
    order = Order(_request(seed=300), HostFacts(tempo_bpm=128))
    jobs = [door.submit(order, job_id=name) for name in ("knob", "prerender", "twin")]
    door.start()
    try:
        results = [job.result(timeout=120) for job in jobs]
        assert calls == [1] and len(conforms) == 1
        assert len({r[0].key for r in results}) == 1
    finally:
        door.stop()


def test_progress_reaches_one(door: FrontDoor) -> None:
    seen: list[float] = []
    door.generate(Order(_request(seed=200, steps=3), variations=2), progress=seen.append, timeout=120)
    assert seen and seen[-1] == 1.0
    assert seen == sorted(seen)


def test_cancel_mid_render_stores_nothing(door: FrontDoor, engine: Engine) -> None:
    started = threading.Event()
    job = door.submit(Order(_request(seed=300, steps=500)), job_id="slow",
                      on_progress=lambda _job, fraction: started.set())
    assert started.wait(120), "the render never reported progress"
    assert door.cancel("slow") and not door.cancel("slow")
    with pytest.raises(CancelledError):
        job.result(timeout=30)
    assert engine.store.stats()["renders"] == 0
    assert door.generate(Order(_request(seed=301)), timeout=120)  # and the engine goes on


def test_out_of_memory_is_reported_and_the_engine_keeps_serving(door: FrontDoor, engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with engine.weights.use("tiny-dd") as backend:
        unet = backend.unet
    real_forward = unet.forward

    def exhausted(*args: Any, **kwargs: Any) -> Any:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(unet, "forward", exhausted)
    with pytest.raises(OutOfMemoryError, match=r"ran out of memory.*fewer variations"):
        door.generate(Order(_request(seed=400)), timeout=120)
    monkeypatch.setattr(unet, "forward", real_forward)
    assert door.render([_request(seed=400)])[0].audio.shape == (2, 800)


def test_orders_are_checked_before_any_work(door: FrontDoor, engine: Engine) -> None:
    with pytest.raises(UnknownModelError, match=r"model='nope'.*tiny-dd"):
        door.submit(Order(_request(model="nope")))
    with pytest.raises(RequestError, match=r"duration_s=30\.0"):
        door.submit(Order(_request(duration_s=30.0)))
    with pytest.raises(UnsupportedError, match="kind='kit'"):
        door.submit(Order(_request(kind="kit")))
    with pytest.raises(RequestError, match="variations=65"):
        door.submit(Order(_request(), variations=65))
    assert engine.store.stats()["renders"] == 0 and door.queue()["counters"]["jobs"] == 0


def test_capabilities_without_loading(door: FrontDoor, engine: Engine) -> None:
    caps = door.capabilities("tiny-dd")
    assert caps.sample_rate == 16000
    assert not engine.weights.is_resident("tiny-dd")
    assert [m.id for m in door.models()] == ["tiny-dd"]


def test_unconditional_model_notes_an_unused_prompt(door: FrontDoor) -> None:
    (sample,) = door.generate(Order(_request(prompt="a kick", seed=500)), timeout=120)
    assert "takes no text" in sample.notes[0]
    (render,) = door.render([_request(prompt="a kick", seed=500)])
    assert "takes no text" in render.info["notes"][0]


def test_checking_a_request_writes_nothing(tiny_dd_root: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=tmp_path / "no-cache", include_embedded=False)
    lazy = Engine(store_dir=tmp_path / "lazy-store", registry=registry, device="cpu")
    lazy.check(_request())
    with pytest.raises(RequestError):
        FrontDoor(lazy).submit(Order(_request(duration_s=30.0)))
    assert not (tmp_path / "lazy-store").exists()


# ---- the conform memory ---------------------------------------------------------------------------------------


def test_an_order_that_could_never_fit_the_conform_memory_is_refused_before_any_work(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its files (each held until the reply takes them) and its largest conform, from the model's rate and
    channels and the request's length: refused as it is submitted, nothing rendered, asked of the store or
    conformed; the error says which field to change and the limit."""
    from loopbridge.engine.conform import conform_size

    caps = engine.capabilities("tiny-dd")  # 16 kHz stereo, renders of at most 1.024 s
    request = _request(kind="loop", duration_s=None, bars=0.5, tempo_bpm=120.0)
    spec = ConformSpec(tempo_bpm=120.0, bars=16, beats_per_bar=4, sample_rate=192000)
    one = conform_size(Kind.LOOP, caps.channels, caps.sample_rate, caps.sample_rate, spec)
    kept = one.wav_bytes + caps.channels * caps.sample_rate * 4
    budget = one.peak_bytes + 3 * kept
    door = FrontDoor(engine, prerender_depth=0, conform_workers=1, conform_memory_bytes=budget).start()
    try:
        (render,) = door.render([request])
        monkeypatch.setattr(engine.store, "lookup", lambda *_: pytest.fail("the store was asked"))
        monkeypatch.setattr(engine, "conform", lambda *_a, **_k: pytest.fail("a conform started"))
        # the report's conform: 8 bars of 16 beats at 20 BPM at 192 kHz
        long_loop = Order(render_key=render.key, host=HostFacts(tempo_bpm=20, beats_per_bar=16, bars=8,
                                                                 sample_rate=192000))
        with pytest.raises(TooLargeError, match=r"^conform_memory=.*--conform-memory") as caught:
            door.submit(long_loop)
        assert caught.value.code == "too_large" and caught.value.field == "conform_memory"
        # one of these fits, sixty-four do not: the field to change is the variations
        many = Order(request, HostFacts(tempo_bpm=120.0, bars=0.5, sample_rate=192000), conform_bars=16,
                     variations=64)
        with pytest.raises(TooLargeError, match=r"^variations=64.*at most [34] at this length and rate") as caught:
            door.submit(many)
        assert caught.value.field == "variations"
        assert door.status()["conform_memory"] == {"budget_bytes": budget, "held_bytes": 0}
    finally:
        door.stop()


def test_conforms_running_together_stay_within_the_conform_memory(engine: Engine,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Two conform workers and a conform memory that holds one conform at a time: the conforms take turns,
    and what they hold together never passes the budget."""
    from loopbridge.engine.conform import ConformMemory, conform_size

    caps = engine.capabilities("tiny-dd")
    spec = ConformSpec(tempo_bpm=120, bars=0.5, beats_per_bar=4, sample_rate=48000)
    request = _request(kind="loop", duration_s=None, bars=0.5, tempo_bpm=120)
    frames = int(round(request.render_duration_s * caps.sample_rate))
    one = conform_size(Kind.LOOP, caps.channels, frames, caps.sample_rate, spec).peak_bytes
    budget = int(1.5 * one)
    door = FrontDoor(engine, prerender_depth=0, conform_workers=2, conform_memory_bytes=budget)
    held: list[int] = []
    taking = ConformMemory._take

    def watched(self: ConformMemory, nbytes: int) -> None:
        taking(self, nbytes)
        held.append(self.held_bytes)

    monkeypatch.setattr(ConformMemory, "_take", watched)
    running, most = [0], [0]
    lock = threading.Lock()
    original = engine.conform

    def counting(*args: Any, **options: Any) -> Any:
        reserve, started = options["reserve"], []

        def reserving(nbytes: int) -> None:  # called again once a loop's tempo is estimated
            reserve(nbytes)
            with lock:
                if not started:
                    started.append(True)
                    running[0] += 1
                    most[0] = max(most[0], running[0])

        try:
            return original(*args, **{**options, "reserve": reserving})
        finally:
            with lock:
                running[0] -= len(started)

    monkeypatch.setattr(engine, "conform", counting)
    door.start()
    try:
        jobs = [door.submit(Order(request.replace(seed=400 + n), HostFacts(tempo_bpm=120, bars=0.5)))
                for n in range(4)]
        for job in jobs:
            assert len(job.result(timeout=300)) == 1
    finally:
        door.stop()
    assert len(held) == 4 and max(held) <= budget and most[0] == 1
    assert door.status()["conform_memory"]["held_bytes"] == 0


def test_the_variations_of_a_loop_request_share_the_level_its_first_answer_sets(
        door: FrontDoor, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first order renders only what it asks for and sets the request's level from that loop; later
    variations and a recall at a new tempo are brought to it without the model, also where the level
    kept in the store has gone (the recalled render sets it again)."""
    host = HostFacts(tempo_bpm=480, meter_numerator=3, meter_denominator=4, bars=2, sample_rate=16000)
    request = _request(kind="loop", duration_s=None, seed=31)
    calls = _count_backend_calls(engine, monkeypatch)
    (first,) = door.generate(Order(request, host), timeout=120)
    assert calls == [1]  # the first answer: one render, one conform
    entry = engine.stored_request(first.render_key)
    assert entry is not None  # the request as rendered: the host's tempo and meter in it
    group = entry[1].level_group()
    assert group is not None and entry[1].with_variation(5).level_group() == group
    crest = engine.store.request_level(group)
    assert crest == pytest.approx(first.info["levels"]["crest_db"], abs=0.01)
    level = first.info["levels"]["level_lufs"]
    assert first.key == ConformSpec(tempo_bpm=480, bars=2, beats_per_bar=3, sample_rate=16000,
                                    level_crest_db=crest).conform_key(first.render_key)
    later = door.generate(Order(request.with_variation(1), host, variations=3), timeout=120)
    assert calls == [1, 3]
    assert {s.info["levels"]["level_lufs"] for s in later} == {level}
    meter = pyloudnorm.Meter(16000)
    loudness = [meter.integrated_loudness(np.tile(s.audio, (1, 2)).T.astype(np.float64)) for s in [first, *later]]
    assert max(loudness) - min(loudness) <= 1.0, loudness
    # a recall at a new tempo: the level kept, no model
    (recalled,) = door.generate(Order(render_key=later[1].render_key, host=HostFacts(tempo_bpm=400, bars=1,
                                                                                  sample_rate=16000)), timeout=120)
    assert calls == [1, 3] and recalled.info["levels"]["level_lufs"] == level
    # the level gone from the store: the recalled render sets it again, still without the model
    with engine.store._transaction() as db:
        db.execute("DELETE FROM request_levels")
    (again,) = door.generate(Order(render_key=later[2].render_key, host=HostFacts(tempo_bpm=360, bars=1,
                                                                               sample_rate=16000)), timeout=120)
    assert calls == [1, 3]
    assert engine.store.request_level(group) == pytest.approx(again.info["levels"]["crest_db"], abs=0.01)
