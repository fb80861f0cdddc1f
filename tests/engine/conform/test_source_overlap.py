"""The source's bands (for the pre-echo limit) measured in a worker thread while Rubber Band stretches it: the same
conform, to the bit, as with the measuring after the stretch, and a failure on either side raised."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from loopbridge.engine import ConformSpec, Kind
from loopbridge.engine.conform import SourceInfo, conform_audio, pipeline

from .real_audio import real_loops, real_loops_available


def _conformed(overlap: bool, monkeypatch: pytest.MonkeyPatch, **spec: Any) -> tuple[np.ndarray, dict[str, Any]]:
    amen = next(loop for loop in real_loops() if loop.name == "loop_amen_full")
    monkeypatch.setattr(pipeline, "OVERLAP_SOURCE_ANALYSIS", overlap)
    out = conform_audio(amen.audio, amen.sample_rate, Kind.LOOP,
                        ConformSpec(tempo_bpm=128.0, bars=4, sample_rate=48000, warp="complex", **spec),
                        SourceInfo(tempo_bpm=amen.tempo_bpm))
    info = {name: value for name, value in out.info.items() if name != "timings_s"}
    return out.audio, info


@pytest.mark.skipif(not real_loops_available(), reason="Debian's sonic-pi-samples are not installed")
@pytest.mark.parametrize("semitones", [0.0, 3.0])
def test_a_recorded_loop_conformed_with_the_overlap_is_the_same_to_the_bit(
    semitones: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlapped, overlapped_info = _conformed(True, monkeypatch, pitch_semitones=semitones)
    serial, serial_info = _conformed(False, monkeypatch, pitch_semitones=semitones)
    assert overlapped_info["alignment"] in ("onsets", "probe")
    assert overlapped_info["pre_echo_limited"] is not None
    assert overlapped.dtype == serial.dtype and overlapped.shape == serial.shape
    assert np.array_equal(overlapped, serial)
    assert overlapped_info == serial_info


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
