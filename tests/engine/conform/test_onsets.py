"""Onset curves: the transient curve is the same however it is computed (kept spectrum or two passes)."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine.conform import onsets

from .signals import drum_pattern


@pytest.mark.parametrize(("sample_rate", "channels"), [(44100, 1), (48000, 2), (96000, 3)])
def test_a_spectrum_too_large_to_keep_gives_the_same_curve(monkeypatch: pytest.MonkeyPatch, sample_rate: int,
                                                           channels: int) -> None:
    """Past TRANSIENT_SPECTRUM_KEPT_BYTES the spectrum is computed twice, block by block: the curve is
    the same to the last bit (many blocks, the last one short)."""
    drums = drum_pattern(sample_rate, 123.0, 4, seed=3)[0]
    audio = np.stack([drums * (0.9**k) for k in range(channels)]).astype(np.float32)
    kept, hop = onsets.transient_flux(audio, sample_rate)
    assert len(kept) > 3 * 2048
    monkeypatch.setattr(onsets, "TRANSIENT_SPECTRUM_KEPT_BYTES", 0)
    twice, hop_twice = onsets.transient_flux(audio, sample_rate)
    assert hop_twice == hop and np.array_equal(twice, kept)


def test_the_curve_of_silence_and_of_a_few_samples() -> None:
    assert not onsets.transient_flux(np.zeros((2, 48000), np.float32), 48000)[0].any()
    curve, _ = onsets.transient_flux(np.ones((1, 10), np.float32), 48000)
    assert len(curve) == 1 and curve[0] > 0


def test_mixing_to_mono_a_block_at_a_time_matches_the_mean() -> None:
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((3, 1001)).astype(np.float32)
    out = np.empty(1001, np.float32)
    onsets.mix_to_mono(audio, out, block=64)
    assert np.array_equal(out, onsets.to_mono(audio).astype(np.float32))
