"""Steps of the conform split over two threads (:mod:`~loopbridge.engine.conform.threads`): each gives the same
result, to the bit, as the same step in one thread, and the helper runs every part once, in order where asked,
and raises what a part raises."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from loopbridge.engine import ConformSpec, Kind
from loopbridge.engine.conform import SourceInfo, alignment, conform_audio, key, levels, onsets, threads
from loopbridge.engine.conform.stretcher import stretch

from .real_audio import real_loops, real_loops_available

needs_loops = pytest.mark.skipif(not real_loops_available(), reason="Debian's sonic-pi-samples are not installed")


def _amen() -> Any:
    return next(loop for loop in real_loops() if loop.name == "loop_amen_full")


def _both_ways(monkeypatch: pytest.MonkeyPatch, work: Any) -> tuple[Any, Any]:
    """``work()`` with the splits on, then off."""
    monkeypatch.setattr(threads, "TWO_THREADS", True)
    split = work()
    monkeypatch.setattr(threads, "TWO_THREADS", False)
    return split, work()


@needs_loops
@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize("tempo_known", [True, False])
def test_a_recorded_loop_conformed_over_two_threads_is_the_same_to_the_bit(
    rate: int, tempo_known: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    amen = _amen()
    source = SourceInfo(tempo_bpm=amen.tempo_bpm) if tempo_known else SourceInfo()

    def conform() -> tuple[np.ndarray, dict[str, Any]]:
        out = conform_audio(amen.audio, amen.sample_rate, Kind.LOOP,
                            ConformSpec(tempo_bpm=128.0, bars=4, sample_rate=rate, warp="complex"), source)
        return out.audio, {name: value for name, value in out.info.items() if name != "timings_s"}

    (split, split_info), (serial, serial_info) = _both_ways(monkeypatch, conform)
    assert split_info["alignment"] == "onsets" and split_info["pre_echo_limited"] > 0
    assert split.dtype == serial.dtype and np.array_equal(split, serial)
    assert split_info == serial_info


@needs_loops
@pytest.mark.parametrize("seconds", [1.5, 3.0, 5.5, 7.5])
def test_the_pre_echo_limited_in_two_halves_is_the_same_to_the_bit(seconds: float,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """One stretch (no split), two, three (halves of one and two stretches) and four."""
    amen = _amen()
    rate = amen.sample_rate
    source = amen.audio[:, : int(seconds * rate)]
    stretched = stretch(source, rate, 1.1)
    block = int(round(alignment.PRE_ECHO_BLOCK_S * rate))
    bands = alignment.band_levels(source, rate, block)

    def limited() -> tuple[np.ndarray, float]:
        stream = stretched.copy()
        share = alignment.limit_pre_echo(stream, bands, block, loop_start=0.0, factor=1.1, pre_frames=0,
                                         sample_rate=rate)
        return stream, share

    (split, split_share), (serial, serial_share) = _both_ways(monkeypatch, limited)
    assert serial_share > 0 and not np.array_equal(serial, stretched)
    assert np.array_equal(split, serial) and split_share == serial_share


@needs_loops
@pytest.mark.parametrize("rate", [44100, 48000, 96000])
def test_the_transient_curve_and_the_levels_measured_over_two_threads_are_the_same_to_the_bit(
    rate: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio = _amen().audio  # read as if at `rate`: 6.9 s at 44.1 kHz, 3.1 s at 96 kHz
    (curve, _), (serial, _) = _both_ways(monkeypatch, lambda: onsets.transient_flux(audio, rate, split=True))
    assert np.array_equal(curve, serial) and curve.max() > 0
    # up to 48 kHz the curve is split; above, a block of its frames holds too much to hold two
    monkeypatch.setattr(threads, "TWO_THREADS", True)
    assert onsets.transient_splits(audio.shape[1], rate) == (rate <= 48000)
    monkeypatch.setattr(threads, "TWO_THREADS", False)
    assert not onsets.transient_splits(audio.shape[1], rate)
    (peaks, loudness), (serial_peaks, serial_loudness) = _both_ways(
        monkeypatch, lambda: levels._peaks_and_loudness(audio, rate, True))
    assert np.array_equal(peaks, serial_peaks) and loudness == serial_loudness
    assert np.array_equal(peaks, levels.frame_peaks(audio, True))
    assert loudness == levels.integrated_loudness(audio, rate, True)


@needs_loops
@pytest.mark.parametrize(("spec", "beside"), [
    ({}, True),  # the key neither moves the pitch nor picks the warp mode: detected beside the stretch
    ({"key": "F"}, False),  # it moves the pitch: detected first
    ({"warp": "auto"}, False),  # it picks the warp mode: detected first
])
def test_the_key_is_detected_beside_the_stretch_where_nothing_before_it_needs_it(
    spec: dict[str, Any], beside: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    amen = _amen()
    seen: list[str] = []
    real = key.detect_key

    def recorded(audio: np.ndarray, rate: int, *args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(audio, rate, *args)

    monkeypatch.setattr("loopbridge.engine.conform.pipeline.detect_key", recorded)
    out = conform_audio(amen.audio, amen.sample_rate, Kind.LOOP,
                        ConformSpec(tempo_bpm=128.0, bars=4, sample_rate=44100, **spec),
                        SourceInfo(tempo_bpm=amen.tempo_bpm))
    assert len(seen) == 1 and seen[0].startswith("conform-source") == beside
    assert "tonalness" in out.info and out.info["timings_s"]["key"] > 0


@pytest.mark.parametrize("two", [True, False])
def test_each_runs_every_task_once_and_keeps_their_order(two: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "TWO_THREADS", two)
    ran: list[int] = []

    def task(k: int) -> int:
        ran.append(k)
        return k * k

    assert threads.each([lambda k=k: task(k) for k in range(9)]) == [k * k for k in range(9)]
    assert sorted(ran) == list(range(9))
    assert threads.each([]) == [] and threads.each([lambda: 3]) == [3]


class _Failed(Exception):
    pass


def _fail() -> int:
    raise _Failed("a part failed")


@pytest.mark.parametrize("two", [True, False])
def test_a_failing_part_is_raised_and_a_split_inside_a_part_runs(two: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "TWO_THREADS", two)
    assert threads.both(lambda: 1, lambda: 2) == (1, 2)
    with pytest.raises(_Failed):
        threads.both(lambda: 1, _fail)
    with pytest.raises(_Failed):
        threads.both(_fail, lambda: 2)
    with pytest.raises(_Failed):
        threads.each([lambda: 1, _fail, lambda: 3])
    # parts that split again (more than there are workers) all run, none waits on a queue forever
    nested = threads.each([lambda k=k: threads.both(lambda: k, lambda: threads.each([lambda: k, lambda: -k]))
                           for k in range(6)])
    assert nested == [(k, [k, -k]) for k in range(6)]


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_channels_resampled_over_two_threads_are_the_same_to_the_bit(channels: int) -> None:
    from loopbridge.engine.audio import resample

    audio = np.random.default_rng(channels).standard_normal((channels, 30011)).astype(np.float32)
    shared = resample(audio, 44100, 48000, threads.each)
    assert shared.shape == (channels, 32665) and np.array_equal(shared, resample(audio, 44100, 48000))
