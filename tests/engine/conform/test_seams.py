"""Seams made without copies of the song's length: the same samples as the copies gave."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine.conform import seams


@pytest.mark.parametrize(("start", "length"), [(0, 10), (-3, 25), (7, 3), (-17, 40), (23, 1)])
def test_wrapped_is_the_audio_indexed_modulo_its_length(start: int, length: int) -> None:
    audio = np.arange(14, dtype=np.float32).reshape(2, 7)
    expected = audio[:, (start + np.arange(length)) % 7]
    assert np.array_equal(seams.wrapped(audio, start, length), expected)


@pytest.mark.parametrize(("cycle_frames", "length", "fade"), [(1000, 3500, 100), (1000, 999, 100), (40, 1000, 100),
                                                              (500, 600, 1)])
def test_repeat_loop_is_cut_loop_of_the_cycle_tiled(cycle_frames: int, length: int, fade: int) -> None:
    rng = np.random.default_rng(cycle_frames)
    cycle = rng.standard_normal((2, cycle_frames)).astype(np.float32)
    repeats = (length + 2 * cycle_frames - 1) // cycle_frames + 1
    expected = seams.cut_loop(np.tile(cycle, (1, repeats)), cycle_frames, length, fade)
    assert np.array_equal(seams.repeat_loop(cycle, length, fade), expected)
