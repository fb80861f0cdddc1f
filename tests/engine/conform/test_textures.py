"""Textures: never stretched, fitted to bars when asked, loopable."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine import ConformSpec, Kind
from loopbridge.engine.conform import SourceInfo, conform_audio

from .signals import dominant_frequency

RATE = 44100


def _texture(seconds: float, seed: int = 3) -> np.ndarray:
    """Filtered noise swelling under a 523 Hz tone: no pulse, and its end is unlike its start."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * RATE)
    t = np.arange(frames) / RATE
    noise = np.convolve(rng.standard_normal(frames), np.ones(40) / 40, mode="same")
    swell = 0.5 + 0.5 * t / seconds
    mono = swell * (0.4 * np.sin(2 * np.pi * 523.25 * t) + 0.6 * noise) + 0.05
    return np.stack([mono, mono[::-1].copy()]).astype(np.float32)


def _wrap_jump(audio: np.ndarray) -> float:
    steps = np.abs(np.diff(audio.astype(np.float64), axis=1))
    return float(np.max(np.abs(audio[:, -1].astype(np.float64) - audio[:, 0])) / np.median(steps))


def test_texture_without_bars_keeps_its_length_and_loops() -> None:
    render = _texture(3.0)
    assert _wrap_jump(render) > 20.0
    conformed = conform_audio(render, RATE, Kind.TEXTURE, ConformSpec(tempo_bpm=100.0, sample_rate=RATE))
    assert conformed.kind is Kind.TEXTURE
    fade = int(round(conformed.info["seam_fade_s"] * RATE))
    assert conformed.audio.shape[1] == render.shape[1] - fade
    assert (conformed.loop_start, conformed.loop_end) == (0, conformed.audio.shape[1])
    assert conformed.info["fitted_to_bars"] is False
    assert _wrap_jump(conformed.audio) < 2.0
    assert abs(float(conformed.audio.mean())) < 0.01  # DC removed
    assert conformed.beats == pytest.approx(conformed.duration_s * 100.0 / 60.0)


def test_texture_rendered_with_a_preroll_keeps_exactly_the_length_asked_for() -> None:
    render = _texture(3.25)  # 3 s asked for, rendered with the engine's pre-roll in front
    spec = ConformSpec(tempo_bpm=100.0, sample_rate=48000)
    conformed = conform_audio(render, RATE, Kind.TEXTURE, spec, SourceInfo(duration_s=3.0))
    assert conformed.audio.shape[1] == 3 * 48000
    assert (conformed.loop_start, conformed.loop_end) == (0, 3 * 48000)
    assert _wrap_jump(conformed.audio) < 2.0
    assert conformed.beats == pytest.approx(5.0)


@pytest.mark.parametrize("seconds", [9.0, 2.0])
def test_texture_fitted_to_bars_is_exact_and_loops(seconds: float) -> None:
    # 2 bars at 60 BPM are 8 s: the long render is cut, the short one repeated
    render = _texture(seconds)
    spec = ConformSpec(tempo_bpm=60.0, bars=2, sample_rate=48000)
    conformed = conform_audio(render, RATE, Kind.TEXTURE, spec)
    assert conformed.audio.shape[1] == 8 * 48000
    assert conformed.beats == pytest.approx(8.0)
    assert conformed.info["fitted_to_bars"] is True
    assert _wrap_jump(conformed.audio) < 2.0
    # never stretched: the tone keeps its pitch (and the rate change did not move it)
    assert dominant_frequency(conformed.audio, 48000) == pytest.approx(523.25, rel=1e-3)


def test_texture_does_not_follow_tempo_without_bars() -> None:
    render = _texture(2.0)
    slow = conform_audio(render, RATE, Kind.TEXTURE, ConformSpec(tempo_bpm=70.0, sample_rate=RATE))
    fast = conform_audio(render, RATE, Kind.TEXTURE, ConformSpec(tempo_bpm=170.0, sample_rate=RATE))
    np.testing.assert_array_equal(slow.audio, fast.audio)
