"""The source's bands (for the pre-echo limit), and its onset curve where measuring that holds little, measured in a
worker thread while Rubber Band stretches it: the same conform, to the bit, as with the measuring after the stretch,
and a failure on either side raised."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from loopbridge.engine import ConformSpec, Kind
from loopbridge.engine.conform import SourceInfo, conform_audio, memory, onsets, pipeline

from .real_audio import real_loops, real_loops_available


def _conformed(overlap: bool, monkeypatch: pytest.MonkeyPatch, sample_rate: int = 48000,
               **spec: Any) -> tuple[np.ndarray, dict[str, Any], list[tuple[str, int]]]:
    """The conformed loop, its info (timings aside) and, for each onset curve measured at the song's rate (the
    source's and the stretched loop's, not the render's for its downbeat), the thread that measured it and the
    frames it read."""
    amen = next(loop for loop in real_loops() if loop.name == "loop_amen_full")
    monkeypatch.setattr(pipeline, "OVERLAP_SOURCE_ANALYSIS", overlap)
    measured: list[tuple[str, int, int]] = []
    real_flux = onsets.transient_flux

    def recorded(audio: np.ndarray, rate: int, **options: Any) -> tuple[np.ndarray, int]:
        measured.append((threading.current_thread().name, audio.shape[-1], rate))
        return real_flux(audio, rate, **options)

    monkeypatch.setattr(pipeline, "transient_flux", recorded)
    monkeypatch.setattr(onsets, "transient_flux", recorded)
    out = conform_audio(amen.audio, amen.sample_rate, Kind.LOOP,
                        ConformSpec(tempo_bpm=128.0, bars=4, sample_rate=sample_rate, warp="complex", **spec),
                        SourceInfo(tempo_bpm=amen.tempo_bpm))
    info = {name: value for name, value in out.info.items() if name != "timings_s"}
    return out.audio, info, [(thread, frames) for thread, frames, rate in measured if rate == sample_rate]


def _same(overlapped: tuple[np.ndarray, dict[str, Any], Any], serial: tuple[np.ndarray, dict[str, Any], Any]) -> None:
    assert overlapped[1]["alignment"] in ("onsets", "probe")
    assert overlapped[1]["pre_echo_limited"] is not None
    assert overlapped[0].dtype == serial[0].dtype and overlapped[0].shape == serial[0].shape
    assert np.array_equal(overlapped[0], serial[0])
    assert overlapped[1] == serial[1]


@pytest.mark.skipif(not real_loops_available(), reason="Debian's sonic-pi-samples are not installed")
@pytest.mark.parametrize("semitones", [0.0, 3.0])
def test_a_recorded_loop_conformed_with_the_overlap_is_the_same_to_the_bit(
    semitones: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 48 kHz the source's onset curve is measured beside the stretch too (its measuring holds little)."""
    overlapped = _conformed(True, monkeypatch, pitch_semitones=semitones)
    serial = _conformed(False, monkeypatch, pitch_semitones=semitones)
    _same(overlapped, serial)
    # the source's curve in the worker, the stretched loop's after (slowed from 140 to 128 BPM: the longer)
    (source_thread, source_frames), (stretched_thread, stretched_frames) = overlapped[2]
    assert source_thread.startswith("conform-source") and source_frames < stretched_frames
    assert stretched_thread == threading.current_thread().name
    assert memory.onsets_beside(source_frames, 48000)
    assert [frames for _, frames in serial[2]] == [source_frames, stretched_frames]
    assert all(thread == threading.current_thread().name for thread, _ in serial[2])


@pytest.mark.skipif(not real_loops_available(), reason="Debian's sonic-pi-samples are not installed")
def test_at_a_high_rate_the_onset_curve_is_measured_after_the_stretch(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 192 kHz one block of the onset measuring's frames holds 96 MiB: it is not held on top of the
    stretcher's peak (the memory estimate of a long conform there would pass its budget) but measured after the
    stretch, in this thread, while the bands are still measured beside it; the result is the same to the bit."""
    overlapped = _conformed(True, monkeypatch, sample_rate=192000)
    serial = _conformed(False, monkeypatch, sample_rate=192000)
    _same(overlapped, serial)
    assert [thread for thread, _ in overlapped[2]] == [threading.current_thread().name] * 2
    assert not memory.onsets_beside(overlapped[2][0][1], 192000)
    assert memory.onset_bytes(overlapped[2][0][1], 192000) > memory.ONSETS_BESIDE_MAX_BYTES


class _Failed(Exception):
    pass


def _fail() -> int:
    raise _Failed("measuring failed")


@pytest.mark.parametrize("overlap", [True, False])
def test_a_failure_beside_the_stretch_or_in_it_is_raised(overlap: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "OVERLAP_SOURCE_ANALYSIS", overlap)
    assert pipeline._beside(lambda: 1, lambda: 2) == (1, 2)
    with pytest.raises(_Failed):
        pipeline._beside(lambda: 1, _fail)
    with pytest.raises(_Failed):
        pipeline._beside(_fail, lambda: 2)
