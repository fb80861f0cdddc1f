"""Tempo, downbeat and timing on real recordings: Debian's sonic-pi-samples loops (their truth written
down by hand in tests/data/real_loops.json) and patterns played from hydrogen-drumkits one-shots with a
drummer's timing. Onsets are measured with librosa's detector, not the engine's."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from loopbridge.engine import ConformSpec, Kind
from loopbridge.engine.conform import ConformedAudio, SourceInfo, conform_audio, estimate_tempo
from loopbridge.engine.conform.levels import CLIP_MAX_DB, LEVEL_MARGIN_DB

from .real_audio import (
    TEMPO_RATIOS,
    GridOffsets,
    RealLoop,
    detector_error_ms,
    grid_offsets,
    hydrogen_available,
    played_pattern,
    real_loops,
    real_loops_available,
    varispeed_loop,
)

pytest.importorskip("librosa", reason="librosa measures the onsets (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(
    not (real_loops_available() and hydrogen_available()),
    reason="Debian's sonic-pi-samples and hydrogen-drumkits are not installed (scripts/test.sh installs them)",
)

TEMPO_TOLERANCE = 0.01
DOWNBEAT_TOLERANCE_S = 0.005
MEDIAN_BOUND_MS = 5.0
P95_BOUND_MS = 10.0
RATE = 44100


@cache
def _loops() -> dict[str, RealLoop]:
    return {loop.name: loop for loop in real_loops()} if real_loops_available() else {}


LOOP_NAMES = sorted(_loops())


@cache
def _conformed(name: str, ratio: float, estimated: bool) -> tuple[ConformedAudio, GridOffsets]:
    loop = _loops()[name]
    target = round(loop.tempo_bpm * ratio, 2)
    spec = ConformSpec(tempo_bpm=target, bars=loop.beats / 4, sample_rate=loop.sample_rate)
    source = SourceInfo() if estimated else SourceInfo(tempo_bpm=loop.tempo_bpm, downbeat_s=loop.downbeat_s)
    conformed = conform_audio(loop.audio, loop.sample_rate, Kind.LOOP, spec, source)
    offsets = grid_offsets(loop.audio, loop.sample_rate, loop.tempo_bpm, loop.beats, loop.downbeat_s,
                           conformed.audio, conformed.sample_rate, target)
    return conformed, offsets


def _pooled(estimated: bool) -> np.ndarray:
    return np.concatenate([_conformed(name, ratio, estimated)[1].offsets_ms
                           for name in LOOP_NAMES for ratio in TEMPO_RATIOS])


@pytest.mark.parametrize("name", LOOP_NAMES)
def test_tempo_and_downbeat_of_a_real_loop_without_a_prior(name: str) -> None:
    """A user's file: nothing known but the meter. No octave, no 2:3, the downbeat where it is."""
    loop = _loops()[name]
    estimate = estimate_tempo(loop.audio, loop.sample_rate)
    assert estimate.bpm == pytest.approx(loop.tempo_bpm, rel=TEMPO_TOLERANCE), (estimate, loop.why)
    assert estimate.downbeat_s == pytest.approx(loop.downbeat_s, abs=DOWNBEAT_TOLERANCE_S), (estimate, loop.why)


@pytest.mark.parametrize("name", LOOP_NAMES)
def test_tempo_and_downbeat_of_a_real_loop_with_the_beats_asked_for(name: str) -> None:
    """A render: the beats it was asked to hold settle the reading, and it is sure of it."""
    loop = _loops()[name]
    estimate = estimate_tempo(loop.audio, loop.sample_rate, loop.beats)
    assert estimate.bpm == pytest.approx(loop.tempo_bpm, rel=TEMPO_TOLERANCE), estimate
    assert estimate.downbeat_s == pytest.approx(loop.downbeat_s, abs=DOWNBEAT_TOLERANCE_S), estimate
    assert not estimate.low_confidence, estimate


@pytest.mark.parametrize("name", LOOP_NAMES)
@pytest.mark.parametrize("ratio", TEMPO_RATIOS)
def test_a_real_loop_conformed_on_the_estimated_path_keeps_its_tempo_and_downbeat(name: str, ratio: float) -> None:
    loop = _loops()[name]
    conformed, offsets = _conformed(name, ratio, True)
    assert conformed.info["estimated"] is True
    assert conformed.info["source_tempo_bpm"] == pytest.approx(loop.tempo_bpm, rel=TEMPO_TOLERANCE)
    assert conformed.info["downbeat_s"] == pytest.approx(loop.downbeat_s, abs=DOWNBEAT_TOLERANCE_S)
    assert conformed.audio.shape[1] == round(loop.beats * 60.0 / round(loop.tempo_bpm * ratio, 2) * RATE)
    assert {"tempo_confidence", "downbeat_confidence", "low_confidence"} <= set(conformed.info)
    # the hits of the source are found again near their places as often as on the known path
    assert offsets.missed <= _conformed(name, ratio, False)[1].missed + 1, offsets


def test_real_loops_land_on_the_grid_as_well_estimated_as_known() -> None:
    """Over the nine loops at three tempi: the median hit within ±5 ms of its place on the song's grid,
    and the estimated path's spread no wider than the known path's (its tempo and downbeat are the
    known ones)."""
    estimated, known = _pooled(True), _pooled(False)
    assert abs(float(np.median(estimated))) <= MEDIAN_BOUND_MS
    assert abs(float(np.median(known))) <= MEDIAN_BOUND_MS
    spread = float(np.percentile(np.abs(estimated), 95))
    assert spread <= float(np.percentile(np.abs(known), 95)) + 0.5, (spread, np.percentile(np.abs(known), 95))


def test_real_loops_p95_within_10_ms() -> None:
    # about 13 ms while the pre-echo was limited in the whole signal's level only; band by band 8.7 ms
    # (bench/bench_real_loops.py)
    assert float(np.percentile(np.abs(_pooled(True)), 95)) <= P95_BOUND_MS


def test_the_detector_reads_the_loops_perfectly_timed_close_to_the_grid() -> None:
    """Each loop played at the song's tempo by resampling (every hit exactly on the grid) and measured
    like a conform: what the detector itself adds to the figures above stays well inside their bounds,
    so what remains beyond it is the conform's."""
    offsets = []
    for name in LOOP_NAMES:
        loop = _loops()[name]
        for ratio in TEMPO_RATIOS:
            target = round(loop.tempo_bpm * ratio, 2)
            perfect = varispeed_loop(loop.audio, loop.sample_rate, loop.tempo_bpm, loop.beats, loop.downbeat_s, target)
            assert perfect.shape[1] == round(loop.beats * 60.0 / target * loop.sample_rate)
            offsets.append(grid_offsets(loop.audio, loop.sample_rate, loop.tempo_bpm, loop.beats, loop.downbeat_s,
                                        perfect, loop.sample_rate, target).offsets_ms)
    pooled = np.concatenate(offsets)
    assert abs(float(np.median(pooled))) <= 1.0
    assert float(np.percentile(np.abs(pooled), 95)) <= P95_BOUND_MS / 2


def test_the_detector_is_fit_to_measure_with() -> None:
    """librosa's own error on hits placed to the sample (its constant delay removed): under 10 ms for
    95 % of hits, or it could not tell the timing bounds apart."""
    errors = detector_error_ms(RATE)
    assert len(errors) >= 40
    assert float(np.percentile(np.abs(errors), 95)) < P95_BOUND_MS


@pytest.mark.parametrize("tempo_bpm", [96.0, 150.0])
@pytest.mark.parametrize("lead_in", ["none", "silence"])
def test_played_pattern_tempo_downbeat_and_timing(tempo_bpm: float, lead_in: str) -> None:
    """Real one-shots played with ±4 ms timing, starting on the downbeat or after 40 ms of silence:
    the tempo, the downbeat to the millisecond, and the hits on the grid at -15 % and +30 %."""
    pattern = played_pattern(RATE, tempo_bpm, 2, seed=int(tempo_bpm), lead_in=lead_in)
    estimate = estimate_tempo(pattern.audio, RATE)
    assert estimate.bpm == pytest.approx(tempo_bpm, rel=TEMPO_TOLERANCE), estimate
    assert estimate.downbeat_s == pytest.approx(pattern.downbeat_s, abs=0.001), estimate
    assert estimate.downbeat_rule == ("start" if lead_in == "none" else "lead-in")
    offsets = []
    for ratio in (0.85, 1.30):
        target = round(tempo_bpm * ratio, 2)
        conformed = conform_audio(pattern.audio, RATE, Kind.LOOP, ConformSpec(tempo_bpm=target, bars=2,
                                                                              sample_rate=RATE), SourceInfo())
        measured = grid_offsets(pattern.audio, RATE, tempo_bpm, pattern.beats, pattern.downbeat_s,
                                conformed.audio, RATE, target)
        assert measured.missed == 0, measured
        # the downbeat's attack at the loop's first sample, not cut to its end
        assert abs(measured.downbeat_ms) <= 2 * MEDIAN_BOUND_MS, measured
        offsets.append(measured.offsets_ms)
    pooled = np.concatenate(offsets)
    assert abs(float(np.median(pooled))) <= MEDIAN_BOUND_MS
    assert float(np.percentile(np.abs(pooled), 95)) <= P95_BOUND_MS


def test_an_ambiguous_reading_is_reported_as_low_confidence() -> None:
    """The tabla groove is as much 90 BPM in sixteenths as 180 in eighths: without a prior the
    conform says so; a loop whose reading is clear (the four-bar Amen) does not."""
    tabla = _conformed("loop_tabla", 1.10, True)[0]
    assert tabla.info["low_confidence"] is True and tabla.info["tempo_confidence"] < 0.3
    amen = _conformed("loop_amen_full", 1.10, True)[0]
    assert amen.info["low_confidence"] is False
    assert amen.info["tempo_confidence"] >= 0.3 and amen.info["downbeat_confidence"] >= 0.3


def test_a_known_tempo_without_a_downbeat_takes_the_lead_in_rule() -> None:
    safari = _loops()["loop_safari"]
    spec = ConformSpec(tempo_bpm=132.0, bars=4, sample_rate=RATE)
    conformed = conform_audio(safari.audio, RATE, Kind.LOOP, spec, SourceInfo(tempo_bpm=safari.tempo_bpm))
    assert conformed.info["estimated"] is False
    assert conformed.info["downbeat_rule"] == "lead-in"
    assert conformed.info["downbeat_s"] == pytest.approx(safari.downbeat_s, abs=DOWNBEAT_TOLERANCE_S)
    mika = _loops()["loop_mika"]
    conformed = conform_audio(mika.audio, RATE, Kind.LOOP, spec, SourceInfo(tempo_bpm=mika.tempo_bpm))
    assert conformed.info["downbeat_s"] == 0.0 and conformed.info["downbeat_rule"] == "start"


def test_a_known_downbeat_without_a_tempo_still_has_the_tempo_estimated() -> None:
    pattern = played_pattern(RATE, 128.0, 2, seed=3, lead_in="silence")
    spec = ConformSpec(tempo_bpm=140.0, bars=2, sample_rate=RATE)
    conformed = conform_audio(pattern.audio, RATE, Kind.LOOP, spec, SourceInfo(downbeat_s=pattern.downbeat_s))
    assert conformed.info["estimated"] is True
    assert conformed.info["downbeat_rule"] == "given" and conformed.info["downbeat_confidence"] == 1.0
    assert conformed.info["downbeat_s"] == pytest.approx(pattern.downbeat_s, abs=1 / RATE)
    assert conformed.info["source_tempo_bpm"] == pytest.approx(128.0, rel=TEMPO_TOLERANCE)


def test_the_soft_clipper_that_brings_a_loop_to_its_requests_level_leaves_the_hits_where_they_are() -> None:
    """Each loop at +10 % brought to a level that takes the soft clipper's full bound (about 4 dB off its
    loudest peaks): the hits librosa finds stay where they are on the loop levelled on its own (median
    within 1 ms loop by loop, the pool's 95th percentile no wider by more than 0.5 ms, none lost)."""
    pooled_alone, pooled_clipped = [], []
    for name in LOOP_NAMES:
        loop = _loops()[name]
        alone, offsets = _conformed(name, 1.10, False)
        target = round(loop.tempo_bpm * 1.10, 2)
        crest = alone.info["levels"]["crest_db"]
        spec = ConformSpec(tempo_bpm=target, bars=loop.beats / 4, sample_rate=loop.sample_rate, loudness_lufs=-6.0,
                           level_crest_db=max(0.0, crest - LEVEL_MARGIN_DB - CLIP_MAX_DB))
        clipped = conform_audio(loop.audio, loop.sample_rate, Kind.LOOP, spec,
                                SourceInfo(tempo_bpm=loop.tempo_bpm, downbeat_s=loop.downbeat_s))
        assert clipped.info["levels"]["clipped_db"] >= CLIP_MAX_DB - 0.5, (name, clipped.info["levels"])
        measured = grid_offsets(loop.audio, loop.sample_rate, loop.tempo_bpm, loop.beats, loop.downbeat_s,
                                clipped.audio, clipped.sample_rate, target)
        assert measured.missed <= offsets.missed, (name, measured, offsets)
        assert abs(float(np.median(measured.offsets_ms)) - float(np.median(offsets.offsets_ms))) <= 1.0, name
        pooled_alone.append(offsets.offsets_ms)
        pooled_clipped.append(measured.offsets_ms)
    alone_p95 = float(np.percentile(np.abs(np.concatenate(pooled_alone)), 95))
    clipped_p95 = float(np.percentile(np.abs(np.concatenate(pooled_clipped)), 95))
    assert clipped_p95 <= alone_p95 + 0.5, (clipped_p95, alone_p95)
