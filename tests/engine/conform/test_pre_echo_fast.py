"""The engine's band limiter of the pre-echo (:mod:`~loopbridge.engine.conform.alignment`) against the
straightforward one (``pre_echo_reference``), on recorded loops stretched by the engine's own stretcher: the
source's band levels (its low bands measured on every D-th sample) and the limited output agree within a
tight tolerance."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from loopbridge.engine.conform import alignment
from loopbridge.engine.conform.stretcher import stretch
from scipy.signal import resample_poly

from . import pre_echo_reference as reference
from .real_audio import real_loops, real_loops_available

pytestmark = pytest.mark.skipif(
    not real_loops_available(), reason="Debian's sonic-pi-samples are not installed (scripts/test.sh installs them)"
)

FACTOR = 1.1
#: loops and rates: at 44.1 kHz the block is 44 samples (low bands measured on every 2nd or 4th), at 48 kHz
#: 48 (every 2nd to 8th)
CASES = [("loop_amen", 44100), ("loop_garzul", 48000), ("loop_industrial", 48000), ("loop_tabla", 44100)]


@cache
def _source(name: str, rate: int) -> np.ndarray:
    loop = next(loop for loop in real_loops() if loop.name == name)
    if rate == loop.sample_rate:
        return loop.audio
    return resample_poly(loop.audio, rate // 300, loop.sample_rate // 300, axis=1).astype(np.float32)


@pytest.mark.parametrize(("name", "rate"), CASES)
def test_band_levels_match_the_full_rate_measurement(name: str, rate: int) -> None:
    source = _source(name, rate)
    block = int(round(alignment.PRE_ECHO_BLOCK_S * rate))
    fast = alignment.band_levels(source, rate, block, 2.0 ** (1 / 12))
    full = reference.band_levels(source, rate, block, 2.0 ** (1 / 12))
    assert fast.shape == full.shape
    # at most 1 - cos(pi / oversampling) of each band's loudest short (0.85 %); over by a hair at most (a
    # block's last sample found between two kept ones, the later in the next block)
    error = (full - fast) / full.max(axis=1, keepdims=True)
    assert error.max() <= 1 - np.cos(np.pi / alignment.PRE_ECHO_MEASURE_OVERSAMPLING) + 1e-4
    assert error.min() >= -1e-3


@pytest.mark.parametrize(("name", "rate"), CASES)
def test_the_limited_stream_matches_the_straightforward_limiter(name: str, rate: int) -> None:
    source = _source(name, rate)
    stretched = stretch(source, rate, FACTOR)
    block = int(round(alignment.PRE_ECHO_BLOCK_S * rate))
    outputs = []
    for limiter in (alignment, reference):
        stream = stretched.copy()
        share = limiter.limit_pre_echo(stream, limiter.band_levels(source, rate, block), block, loop_start=0.0,
                                       factor=FACTOR, pre_frames=0, sample_rate=rate)
        outputs.append((stream, share))
    (fast, fast_share), (full, full_share) = outputs
    lowered = full - stretched
    assert np.sqrt(np.mean(lowered**2)) > 1e-3, "the stretch smeared something to lower"
    assert abs(fast_share - full_share) <= 0.01 * full_share
    difference = fast - full
    assert np.sqrt(np.mean(difference**2)) <= 0.01 * np.sqrt(np.mean(lowered**2))
    assert np.abs(difference).max() <= 0.005 * np.abs(full).max()
