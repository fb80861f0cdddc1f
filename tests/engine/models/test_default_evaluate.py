"""The evaluation's envelope measures, on sounds whose envelopes are known."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine.models.default import evaluate, spectral

SR = spectral.SAMPLE_RATE


def _tone(envelope: np.ndarray, freq_hz: float = 60.0) -> np.ndarray:
    t = np.arange(spectral.NATIVE_SAMPLES) / SR
    return (0.9 * np.sin(2 * np.pi * freq_hz * t) * envelope).astype(np.float32)


def test_a_smooth_decay_has_little_jitter_and_its_decay_in_db() -> None:
    t = np.arange(spectral.NATIVE_SAMPLES) / SR
    # 40 dB per second: 20 dB between 0.1 s and 0.6 s
    jitter, decay, level = evaluate.envelope_measures(_tone(10 ** (-2.0 * t))[None])
    assert jitter[0] < 0.6
    assert decay[0] == pytest.approx(20.0, abs=1.5)
    assert level[0] > evaluate.SILENCE_DB + evaluate.SOUNDING_DB


def test_a_level_that_flickers_every_frame_is_seen_as_jitter() -> None:
    t = np.arange(spectral.NATIVE_SAMPLES) / SR
    # the same 20 dB decay, 20 dB quieter every other pair of frames (a 2048-sample STFT window
    # smooths a flicker at every single frame): block averages hide it, jitter does not
    pair = (np.arange(spectral.NATIVE_SAMPLES) // (2 * spectral.HOP)) % 2
    flicker = 10 ** (-2.0 * t) * np.where(pair == 1, 0.1, 1.0)
    jitter, decay, _ = evaluate.envelope_measures(_tone(flicker)[None])
    assert jitter[0] > 3.0
    assert decay[0] == pytest.approx(20.0, abs=4.0)
    smooth = evaluate.envelope_features(_tone(10 ** (-2.0 * t))[None])
    flickering = evaluate.envelope_features(_tone(flicker)[None])
    assert smooth.shape == flickering.shape == (1, 44 + 22)
    assert flickering[0, 44:].mean() > 3 * smooth[0, 44:].mean()


def test_flicker_reads_the_wobble_around_a_decay_not_its_slope() -> None:
    t = np.arange(spectral.NATIVE_SAMPLES) / SR
    # two steady decays, 40 and 120 dB a second: the jitter counts the slope, flicker does not
    slow, fast = _tone(10 ** (-2.0 * t)), _tone(10 ** (-6.0 * t))
    jitter, _, _ = evaluate.envelope_measures(np.stack([slow, fast]))
    assert jitter[1] > jitter[0] + 0.6
    flicker = evaluate.flicker_measures(np.stack([slow, fast]))
    assert np.all(flicker < 0.05), flicker
    # the slow decay, 6 dB quieter every other pair of frames: flicker sees it
    pair = (np.arange(spectral.NATIVE_SAMPLES) // (2 * spectral.HOP)) % 2
    wobbling = _tone(10 ** (-2.0 * t) * np.where(pair == 1, 0.5, 1.0))
    assert evaluate.flicker_measures(wobbling[None])[0] > 0.5


def test_a_one_shot_gone_by_58_ms_has_no_flicker_figure_and_its_class_reads_0() -> None:
    t = np.arange(spectral.NATIVE_SAMPLES) / SR
    click = _tone(np.where(t < 0.02, 1.0, 0.0))
    held = _tone(np.ones(spectral.NATIVE_SAMPLES))
    flicker = evaluate.flicker_measures(np.stack([click, held]))
    assert np.isnan(flicker[0]) and flicker[1] < 0.05
    per_class = evaluate.per_class_flicker(flicker, np.array([0, 1]), ["click", "held", "absent"])
    assert per_class["click"] == 0.0 and set(per_class) == {"click", "held"}


def test_silence_is_the_floor_and_a_held_level_does_not_decay() -> None:
    silent = evaluate.loudness_envelope(np.zeros((1, spectral.NATIVE_SAMPLES), np.float32))
    np.testing.assert_allclose(silent, evaluate.SILENCE_DB, atol=1e-6)
    _, decay, _ = evaluate.envelope_measures(_tone(np.ones(spectral.NATIVE_SAMPLES))[None])
    assert abs(decay[0]) < 1.0


def test_per_class_medians_skip_absent_classes() -> None:
    values = np.array([1.0, 3.0, 2.0, 10.0])
    labels = np.array([0, 0, 0, 2])
    assert evaluate.per_class_medians(values, labels, ["a", "b", "c"]) == {"a": 2.0, "c": 10.0}


def test_a_struck_sound_has_an_attack_and_a_swell_has_none() -> None:
    t = np.arange(spectral.NATIVE_SAMPLES) / SR
    struck = _tone(np.exp(-t / 0.08))  # loudest at its start: about 10 dB down by 0.15 s
    swell = _tone(np.minimum(t / 0.15, 1.0) * np.exp(-np.maximum(t - 0.15, 0.0) / 0.3))  # peaks at 0.15 s
    attack = evaluate.attack_measures(np.stack([struck, swell]))
    assert attack[0] > 6.0
    assert attack[1] < -3.0


@pytest.mark.filterwarnings("error")
def test_the_frechet_distance_of_two_gaussians_is_their_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    # the same spread moved by (1, 2, 2): the distance is the squared shift, 9
    assert evaluate.frechet_distance(a, a + np.array([1.0, 2.0, 2.0])) == pytest.approx(9.0, abs=1e-6)
    # twice the spread on every axis: trace(I + 4I - 2 * 2I) = 3 (sampled covariances: near it)
    assert evaluate.frechet_distance(a, 2.0 * a) == pytest.approx(3.0, rel=0.05)
