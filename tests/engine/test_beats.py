"""The beat tracker (any novelty curve, changing tempo), its audio front end and the beat scores."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine.beats import audio_beats, beat_scores, span_tempo, track_beats
from loopbridge.engine.errors import RequestError

RATE = 100.0


def _impulses(times_s: np.ndarray, duration_s: float, rate: float = RATE, heights: np.ndarray | None = None
              ) -> np.ndarray:
    curve = np.zeros(int(duration_s * rate))
    heights = np.ones(len(times_s)) if heights is None else heights
    for t, h in zip(times_s, heights, strict=True):
        i = int(round(t * rate))
        if i < len(curve):
            curve[i] += h
    return np.convolve(curve, np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2), mode="same")


def _beat_times(sections: list[tuple[float, float]]) -> np.ndarray:
    times, t = [], 0.0
    for duration, bpm in sections:
        end = t + duration
        while t < end - 1e-9:
            times.append(t)
            t += 60.0 / bpm
    return np.array(times)


def test_steady_pulse_with_weak_noise() -> None:
    truth = _beat_times([(20.0, 117.0)]) + 0.3
    rng = np.random.default_rng(0)
    curve = _impulses(truth, 20.5) + 0.05 * rng.random(int(20.5 * RATE))
    track = track_beats(curve, RATE)
    assert track.bpm == pytest.approx(117.0, rel=0.01)
    assert beat_scores(truth, track.beats_s, tolerance_s=0.02).hit >= 0.95
    assert track.confidence > 0.5


def test_the_tempo_path_follows_a_change() -> None:
    truth = _beat_times([(15.0, 90.0), (15.0, 140.0)])
    track = track_beats(_impulses(truth, 30.0), RATE)
    assert beat_scores(truth, track.beats_s, tolerance_s=0.03).hit >= 0.95
    assert track.bpm_at(6.0) == pytest.approx(90.0, rel=0.02)
    assert track.bpm_at(25.0) == pytest.approx(140.0, rel=0.02)
    assert np.median(track.tempo_bpm[track.tempo_times_s > 22]) == pytest.approx(140.0, rel=0.03)


def test_a_pulse_whose_every_other_beat_is_weak_is_beaten_at_half_its_rate() -> None:
    eighths = _beat_times([(20.0, 200.0)])
    heights = np.where(np.arange(len(eighths)) % 2 == 0, 1.0, 0.3)
    track = track_beats(_impulses(eighths, 20.0, heights=heights), RATE)
    assert track.bpm == pytest.approx(100.0, rel=0.02)
    assert beat_scores(eighths[::2], track.beats_s, tolerance_s=0.03).hit >= 0.95


def test_no_pulse_no_beats_and_bad_curves_are_refused() -> None:
    assert len(track_beats(np.zeros(500), RATE).beats_s) == 0
    with pytest.raises(RequestError, match="at least 2 s"):
        track_beats(np.ones(50), RATE)
    with pytest.raises(RequestError, match="1-D curve"):
        track_beats(np.ones((10, 10)), RATE)
    with pytest.raises(RequestError, match="finite"):
        track_beats(np.full(500, np.nan), RATE)
    with pytest.raises(RequestError, match="frames per second"):
        track_beats(np.ones(500), 3.0)
    with pytest.raises(RequestError, match="tempo_range_bpm"):
        track_beats(np.ones(500), RATE, tempo_range_bpm=(200.0, 100.0))


def test_audio_beats_of_a_click_track_land_on_the_clicks() -> None:
    rate = 44100
    clicks = _beat_times([(12.0, 108.0)]) + 0.05
    audio = np.zeros(int(12.2 * rate), dtype=np.float32)
    t = np.arange(int(0.02 * rate)) / rate
    click = (np.exp(-t / 0.003) * np.sin(2 * np.pi * 2000 * t)).astype(np.float32)
    for c in clicks:
        i = int(round(c * rate))
        audio[i:i + len(click)] += click
    track = audio_beats(audio[None], rate)
    scores = beat_scores(clicks, track.beats_s, tolerance_s=0.01)
    assert scores.hit >= 0.95 and scores.mean_offset_ms < 5.0
    assert track.bpm == pytest.approx(108.0, rel=0.01)


def test_beat_scores_match_one_to_one_within_the_tolerance() -> None:
    reference = [1.0, 2.0, 3.0, 4.0]
    detected = [1.01, 1.02, 2.2, 3.05, 5.0]  # two near beat 1: only one may hit it
    scores = beat_scores(reference, detected, tolerance_s=0.07)
    assert scores.hits == 3 - 1  # 1.01 hits 1.0, 3.05 hits 3.0; 2.2 is too far; 1.02 finds no free beat
    assert scores.hit == pytest.approx(0.5)
    assert scores.coverage == pytest.approx(5 / 4)
    assert scores.mean_offset_ms == pytest.approx(30.0, abs=0.01)
    assert beat_scores([], [1.0]).hit == 0.0
    with pytest.raises(RequestError, match=r"0\.001–0\.5 s"):
        beat_scores(reference, detected, tolerance_s=2.0)
    with pytest.raises(RequestError, match="finite"):
        beat_scores([np.nan], detected)


def test_span_tempo_averages_out_each_beats_error() -> None:
    rng = np.random.default_rng(1)
    beats = np.arange(40) * 0.5 + rng.normal(0, 0.005, 40)
    assert span_tempo(beats) == pytest.approx(120.0, rel=0.005)
    assert span_tempo(np.array([1.0])) == 0.0
