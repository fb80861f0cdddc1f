"""What the conform stage holds in memory: its estimate, its limits and the budget that bounds conforms
running together; and the report's conform (384 s at 192 kHz), refused or served under a conform memory, in a
process of its own (tests/engine/conform/peak_memory.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loopbridge.engine import ConformSpec, Kind, RequestError, TooLargeError
from loopbridge.engine.conform import (
    ConformMemory,
    SourceInfo,
    conform_audio,
    conform_size,
    default_conform_memory_bytes,
    memory,
    pipeline,
)
from loopbridge.engine.request import CONFORMED_MAX_SAMPLES

from .peak_memory import CASES
from .signals import drum_pattern

ROOT = Path(__file__).resolve().parents[3]
LOOP = drum_pattern(44100, 120.0, 2, seed=5)


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any step that makes song-length audio fails the test."""
    for name in ("resample", "stretch"):
        monkeypatch.setattr(pipeline, name, lambda *_a, **_k: pytest.fail("work started"))
    monkeypatch.setattr(pipeline.seams, "wrapped", lambda *_a, **_k: pytest.fail("work started"))


def test_the_size_of_a_loop_is_its_bars_at_the_song_rate() -> None:
    spec = ConformSpec(tempo_bpm=20.0, bars=8, beats_per_bar=16, sample_rate=192000)
    size = conform_size(Kind.LOOP, 1, LOOP.shape[1], 44100, spec, SourceInfo(tempo_bpm=120.0, beats=8))
    assert size.output_frames == spec.loop_frames == 384 * 192000
    assert size.wav_bytes == 3 * 384 * 192000
    # the conform holds several song-length arrays, but nowhere near the gigabytes it once did
    assert 4 * size.output_frames < size.peak_bytes < 8 * 4 * size.output_frames
    stereo = conform_size(Kind.LOOP, 2, LOOP.shape[1], 44100, spec, SourceInfo(tempo_bpm=120.0, beats=8))
    assert stereo.peak_bytes > 1.8 * size.peak_bytes - 2 * memory.FIXED_OVERHEAD_BYTES


def test_an_unknown_tempo_is_charged_on_the_slow_side() -> None:
    """Before the tempo is estimated the stage cannot know how much source it stretches: it charges a
    slower source than the render's beats suggest (more of it), never the song's own tempo."""
    spec = ConformSpec(tempo_bpm=128.0, bars=16, beats_per_bar=4, sample_rate=96000)
    known = conform_size(Kind.LOOP, 2, LOOP.shape[1], 44100, spec, SourceInfo(tempo_bpm=120.0, beats=8))
    unknown = conform_size(Kind.LOOP, 2, LOOP.shape[1], 44100, spec, SourceInfo(beats=8))
    assert unknown.peak_bytes > known.peak_bytes and unknown.output_frames == known.output_frames


@pytest.mark.parametrize(("kind", "channels", "spec", "field"), [
    (Kind.LOOP, 3, ConformSpec(tempo_bpm=20.0, bars=12.5, beats_per_bar=16, sample_rate=192000), "bars"),
    (Kind.TEXTURE, 8, ConformSpec(tempo_bpm=60.0, bars=40, beats_per_bar=4, sample_rate=192000), "bars"),
])
def test_a_file_over_its_samples_is_too_large_before_any_work(monkeypatch: pytest.MonkeyPatch, kind: Kind,
                                                              channels: int, spec: ConformSpec, field: str) -> None:
    """CONFORMED_MAX_SAMPLES (frames × channels: 600 s of stereo at 192 kHz) bounds one file, and so the
    largest binary frame of a reply; the error names the field and the limit."""
    _no_work(monkeypatch)
    audio = np.tile(LOOP[:1], (channels, 1))
    with pytest.raises(TooLargeError, match=rf"^{field}=.*at most {CONFORMED_MAX_SAMPLES} samples") as caught:
        conform_audio(audio, 44100, kind, spec, SourceInfo(tempo_bpm=120.0, beats=8))
    assert caught.value.code == "too_large" and caught.value.field == field
    with pytest.raises(TooLargeError):
        conform_size(kind, channels, LOOP.shape[1], 44100, spec, SourceInfo(tempo_bpm=120.0, beats=8))
    # the same length in stereo is accepted
    conform_size(kind, 2, LOOP.shape[1], 44100, spec, SourceInfo(tempo_bpm=120.0, beats=8))


@pytest.mark.parametrize("kind", [Kind.LOOP, Kind.TEXTURE, Kind.ONE_SHOT])
def test_reserve_hears_the_peak_before_any_work_and_may_refuse(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    spec = ConformSpec(tempo_bpm=100.0, bars=4 if kind is not Kind.ONE_SHOT else None, sample_rate=48000)
    source = SourceInfo(tempo_bpm=120.0, beats=8) if kind is Kind.LOOP else SourceInfo()
    heard: list[int] = []
    conform_audio(LOOP, 44100, kind, spec, source, reserve=heard.append)
    expected = conform_size(kind, 2, LOOP.shape[1], 44100, spec, source).peak_bytes
    assert heard == [expected]
    _no_work(monkeypatch)

    def refuse(nbytes: int) -> None:
        raise TooLargeError("conform_memory", nbytes, "less")

    with pytest.raises(TooLargeError):
        conform_audio(LOOP, 44100, kind, spec, source, reserve=refuse)


def test_a_loop_whose_tempo_is_estimated_is_charged_before_and_after_the_estimate() -> None:
    spec = ConformSpec(tempo_bpm=128.0, bars=4, sample_rate=48000)
    heard: list[int] = []
    conformed = conform_audio(LOOP, 44100, Kind.LOOP, spec, SourceInfo(beats=8), reserve=heard.append)
    assert conformed.info["estimated"] and len(heard) == 2
    tempo = conformed.info["source_tempo_bpm"]
    assert heard[1] == conform_size(Kind.LOOP, 2, LOOP.shape[1], 44100, spec, SourceInfo(beats=8),
                                    source_tempo_bpm=tempo).peak_bytes


def test_the_conform_memory_refuses_what_could_never_fit_and_queues_the_rest() -> None:
    budget = ConformMemory(100)
    with pytest.raises(TooLargeError, match=r"conform_memory=.*at most 0\.00 GB.*--conform-memory"):
        budget.check(101, "a loop")
    order: list[str] = []
    first_in = threading.Event()
    with budget.lease() as first:
        first.need(60)
        assert budget.held_bytes == 60

        def second() -> None:
            with budget.lease() as lease:
                first_in.set()
                lease.need(60)  # waits: 60 + 60 > 100
                order.append("second")

        thread = threading.Thread(target=second)
        thread.start()
        assert first_in.wait(5)
        time.sleep(0.2)
        assert order == [] and budget.held_bytes == 60
        first.need(50)  # already held: nothing to wait for
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"] and budget.held_bytes == 0


def test_a_lease_that_needs_more_gives_back_what_it_holds_before_it_waits() -> None:
    """Two jobs each holding part of the budget and each needing more would wait on each other forever
    if a lease waited while holding."""
    budget = ConformMemory(100)
    with budget.lease() as a, budget.lease() as b:
        a.need(40)
        b.need(40)
        done = threading.Event()
        threading.Thread(target=lambda: (a.need(70), done.set())).start()
        time.sleep(0.2)
        assert not done.is_set() and budget.held_bytes == 40  # a gave its 40 back and waits for b's
        b.release()
        assert done.wait(5) and budget.held_bytes == 70
        with pytest.raises(TooLargeError):
            b.need(101)


def test_no_budget_waits_for_nothing_and_the_default_is_a_quarter_of_what_is_available() -> None:
    budget = ConformMemory(None)
    budget.check(10**15, "anything")
    with budget.lease() as a, budget.lease() as b:
        a.need(10**15)
        b.need(10**15)
    available = memory.available_memory_bytes()
    default = default_conform_memory_bytes()
    assert available is not None and default is not None
    assert abs(default - available * memory.DEFAULT_SHARE_OF_AVAILABLE) < 0.05 * available
    with pytest.raises(ValueError):
        ConformMemory(0)


# ---- the report's conform, measured ---------------------------------------------------------------------


def _measured(case: str, conform_memory_bytes: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tests.engine.conform.peak_memory", case, "--conform-memory",
                           str(conform_memory_bytes)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_reported_conform_is_refused_at_once_by_a_conform_memory_it_cannot_fit() -> None:
    """8 bars of 16 beats at 20 BPM at 192 kHz held 4.6 GB before any limit: a conform memory below what
    it needs refuses it as it is asked for, naming the limit, before anything is read or made."""
    result = _measured("issue", 500_000_000)
    assert not result["served"]
    assert result["error"]["code"] == "too_large" and result["error"]["field"] == "conform_memory"
    assert "at most 0.50 GB" in result["error"]["message"] and "--conform-memory" in result["error"]["message"]
    assert result["seconds"] < 5


@pytest.mark.slow
def test_the_reported_conform_is_served_within_the_conform_memory_it_is_given() -> None:
    """Served under a conform memory of 1.5 GB, and the process's peak over what it held before the order
    stays within it (the budget is a bound the engine enforces; it measured 4.1 GB before)."""
    assert CASES["issue"]["sample_rate"] == 192000
    budget = 1_500_000_000
    result = _measured("issue", budget)
    assert result["served"], result
    assert result["frames"] == 384 * 192000 and result["channels"] == 1
    if not result["peak_reset"]:
        pytest.skip("this kernel does not let a process reset its peak memory (/proc/self/clear_refs)")
    assert result["peak_bytes"] <= budget, result


def test_requests_that_are_in_range_raise_request_errors_still() -> None:
    """A loop past DURATION_MAX_S is still the bad_request it was (the bars are out of range)."""
    with pytest.raises(RequestError) as caught:
        conform_size(Kind.LOOP, 1, LOOP.shape[1], 44100, ConformSpec(tempo_bpm=20.0, bars=16, beats_per_bar=16),
                     SourceInfo(tempo_bpm=120.0, beats=8))
    assert caught.value.code == "bad_request"


def test_the_onset_curve_beside_the_stretch_is_charged_only_where_it_runs_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 4-bar loop at 48 kHz measures the source's onset curve beside the stretch and is charged for it there;
    the report's conform at 192 kHz measures it after, so its estimate (which fits 1.5 GB) is what it was."""
    typical = ConformSpec(tempo_bpm=128.0, bars=4, sample_rate=48000)
    issue = ConformSpec(tempo_bpm=20.0, bars=8, beats_per_bar=16, sample_rate=192000)
    source = SourceInfo(tempo_bpm=120.0, beats=8)
    beside = [conform_size(Kind.LOOP, 2, LOOP.shape[1], 44100, spec, source).peak_bytes for spec in (typical, issue)]
    monkeypatch.setattr(memory, "ONSETS_BESIDE_MAX_BYTES", 0)
    after = [conform_size(Kind.LOOP, 2, LOOP.shape[1], 44100, spec, source).peak_bytes for spec in (typical, issue)]
    assert beside[0] > after[0] and beside[1] == after[1]
    mono = conform_size(Kind.LOOP, 1, LOOP.shape[1], 44100, issue, source)
    assert mono.peak_bytes <= 1_500_000_000
