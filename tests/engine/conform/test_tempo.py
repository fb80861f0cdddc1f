"""Tempo and downbeat estimation on synthetic loops."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine import RequestError
from loopbridge.engine.conform import estimate_tempo
from loopbridge.engine.conform.tempo import find_downbeat

from .signals import click_track, drum_pattern

RATE = 44100


@pytest.mark.parametrize("tempo_bpm", [82.0, 100.0, 128.0, 140.0, 160.0])
def test_click_track_tempo_without_prior(tempo_bpm: float) -> None:
    estimate = estimate_tempo(click_track(RATE, tempo_bpm, 16), RATE)
    assert estimate.bpm == pytest.approx(tempo_bpm, rel=0.002)
    assert estimate.downbeat_s == pytest.approx(0.0, abs=0.002)
    assert estimate.confidence > 0.5
    assert not estimate.snapped


@pytest.mark.parametrize("tempo_bpm", [72.0, 96.0, 120.0, 128.0, 174.0])
def test_drum_pattern_tempo_with_and_without_prior(tempo_bpm: float) -> None:
    loop = drum_pattern(48000, tempo_bpm, 4, seed=int(tempo_bpm), bed=0.05)
    # without a prior, a pattern with eighth-note hats may read as double or half time, never other
    free = estimate_tempo(loop, 48000)
    ratio = free.bpm / tempo_bpm
    assert min(abs(ratio - r) for r in (0.5, 1.0, 2.0)) < 0.004 * max(ratio, 1.0), free
    # the beats the render was asked to hold settle the octave and fix the tempo exactly: 16 beats
    # in the render's length (to the sample, which rounding moved off tempo_bpm by a hair)
    hinted = estimate_tempo(loop, 48000, beats_hint=16)
    assert hinted.bpm == pytest.approx(16 * 60.0 / (loop.shape[1] / 48000), rel=1e-12)
    assert hinted.bpm == pytest.approx(tempo_bpm, rel=1e-5)
    assert hinted.snapped
    assert hinted.downbeat_s == pytest.approx(0.0, abs=0.002)
    assert hinted.beats == pytest.approx(16.0, abs=0.01)


def test_prior_settles_double_time_click_track() -> None:
    # 16 clicks at 180 BPM could as well be 90 BPM with clicks on the eighths; a render asked to
    # hold 8 beats in this length is at 90
    loop = click_track(RATE, 180.0, 16)
    assert estimate_tempo(loop, RATE, beats_hint=8).bpm == pytest.approx(90.0, rel=1e-9)
    assert estimate_tempo(loop, RATE, beats_hint=16).bpm == pytest.approx(180.0, rel=1e-9)


def test_prior_does_not_override_a_clearly_different_pulse() -> None:
    # the model was asked for 16 beats at 120 (8 s) but played 100 BPM: the pulse wins, no snap
    loop = drum_pattern(RATE, 100.0, 4)[:, : int(8.0 * RATE)]
    estimate = estimate_tempo(loop, RATE, beats_hint=16)
    assert estimate.bpm == pytest.approx(100.0, rel=0.003)
    assert not estimate.snapped
    assert estimate.hinted_bpm == pytest.approx(120.0)


def test_downbeat_after_a_pickup() -> None:
    # the render starts one beat before the bar (a snare pickup), so the kick-led downbeat is beat 2
    tempo_bpm = 120.0
    loop = drum_pattern(RATE, tempo_bpm, 4)
    beat = int(round(60.0 / tempo_bpm * RATE))
    loop = np.roll(loop, beat, axis=1)
    estimate = estimate_tempo(loop, RATE, beats_hint=16)
    assert estimate.bpm == pytest.approx(tempo_bpm, rel=1e-9)
    assert estimate.downbeat_s == pytest.approx(0.5, abs=0.003)


def test_offset_start_is_found_to_the_millisecond() -> None:
    loop = click_track(RATE, 128.0, 16, offset_s=0.0213)
    estimate = estimate_tempo(loop, RATE)
    assert estimate.bpm == pytest.approx(128.0, rel=0.002)
    assert estimate.downbeat_s == pytest.approx(0.0213, abs=0.001)


def test_silence_and_drones_report_no_pulse() -> None:
    silence = np.zeros((2, RATE * 4), np.float32)
    estimate = estimate_tempo(silence, RATE, beats_hint=8)
    assert estimate.confidence == 0.0
    assert estimate.bpm == pytest.approx(120.0)  # 8 beats in 4 s
    t = np.arange(RATE * 4) / RATE
    drone = (0.3 * np.sin(2 * np.pi * 110 * t)).astype(np.float32)[None]
    assert estimate_tempo(drone, RATE).confidence < 0.1


def test_short_audio_falls_back() -> None:
    estimate = estimate_tempo(np.ones((1, 100), np.float32) * 0.1, RATE, beats_hint=1)
    assert estimate.confidence == 0.0


@pytest.mark.parametrize(
    ("audio", "rate", "hint", "field"),
    [
        (np.zeros((2, 0), np.float32), RATE, None, "audio"),
        (np.full((1, 1000), np.nan, np.float32), RATE, None, "audio"),
        (np.zeros((2, 3, 100), np.float32), RATE, None, "audio"),
        (np.zeros((1, 1000), np.float32), 4000, None, "sample_rate"),
        (np.zeros((1, 1000), np.float32), RATE, -4, "beats_hint"),
        (np.zeros((1, 1000), np.float32), RATE, float("inf"), "beats_hint"),
    ],
)
def test_bad_input_names_the_value(audio: np.ndarray, rate: int, hint: float | None, field: str) -> None:
    with pytest.raises(RequestError) as caught:
        estimate_tempo(audio, rate, hint)
    assert caught.value.field == field


def test_a_known_tempo_takes_the_start_or_finds_the_downbeat_after_a_lead_in() -> None:
    loop = drum_pattern(RATE, 120.0, 4)
    assert find_downbeat(loop, RATE, 120.0) == (0.0, 1.0, "start")
    # silence first: the downbeat is where the first attack starts
    late = np.concatenate([np.zeros((2, int(0.03 * RATE)), np.float32), loop], axis=1)
    downbeat_s, _, rule = find_downbeat(late, RATE, 120.0)
    assert rule == "lead-in" and downbeat_s == pytest.approx(0.03, abs=0.001)
    # a beat of snare before the bar: the kick on the next beat
    downbeat_s, confidence, rule = find_downbeat(np.roll(loop, RATE // 2, axis=1), RATE, 120.0)
    assert rule == "pickup" and downbeat_s == pytest.approx(0.5, abs=0.003) and confidence > 0.5


def test_a_given_downbeat_is_kept_and_whole_bars_counted_from_it() -> None:
    loop = np.concatenate([np.zeros((2, RATE // 4), np.float32), drum_pattern(RATE, 100.0, 4)], axis=1)
    estimate = estimate_tempo(loop, RATE, downbeat_s=0.25)
    assert estimate.downbeat_s == 0.25 and estimate.downbeat_rule == "given" and estimate.downbeat_confidence == 1.0
    assert estimate.bpm == pytest.approx(100.0, rel=1e-6) and estimate.whole_bars
    with pytest.raises(RequestError) as caught:
        estimate_tempo(loop, RATE, downbeat_s=60.0)
    assert caught.value.field == "downbeat_s"
