"""The band limiter of the pre-echo (:func:`~loopbridge.engine.conform.alignment.limit_pre_echo`) written the
straightforward way: each band split off by a full-rate inverse FFT of the whole stretch, measured and lowered at
the full rate (the band split, the stretches and the caps are the engine's own: what differs is how the
bands are measured and lowered). The engine's version must give the same output within a tight tolerance
(``test_pre_echo_fast.py``); ``bench/bench_pre_echo.py`` times the two on the same input."""

from __future__ import annotations

import numpy as np
from loopbridge.engine.conform.alignment import (
    _chunks,
    band_count,
    bands,
    block_caps,
    level_blocks,
    stream_pieces,
)


def band_levels(audio: np.ndarray, sample_rate: int, block: int, scale: float = 1.0) -> np.ndarray:
    """level_blocks of each of the bands of ``audio`` (``[bands, blocks]``); ``scale``: the
    pitch ratio the audio is shifted by in the stretch. Split a stretch at a time (:data:`PRE_ECHO_CHUNK_S`)."""
    levels = np.zeros((band_count(sample_rate), -(-audio.shape[1] // block)), np.float32)
    for lo, a, b, hi in _chunks(audio.shape[1], block, sample_rate):
        first, last = a // block, -(-b // block)
        for k, band in enumerate(bands(audio[:, lo:hi], sample_rate, scale)):
            levels[k, first:last] = level_blocks(band[:, a - lo : b - lo], block)
    return levels


def limit_pre_echo(
    stream: np.ndarray, source_levels: np.ndarray, block: int, *, loop_start: float, factor: float, pre_frames: int,
    sample_rate: int,
) -> float:
    """Lower the stretched ``stream`` (changed in place), band by band, wherever a band is louder than the
    same band of the source at the same point of the music by more than :data:`PRE_ECHO_MARGIN_DB`: the
    pre-echo ahead of each hit or note.

    ``source_levels``: band_levels of the material that was stretched (at the stream's rate, its
    bands moved by the pitch ratio); ``loop_start``: where the loop starts in it (samples); sample ``j``
    of the stream is the material's sample ``loop_start + (j - pre_frames) * factor``. The stream is
    split a stretch at a time (:data:`PRE_ECHO_CHUNK_S`, from the stream as it came in) and only what is
    lowered is taken off it, so a band left alone leaves it as it was. Returns the share of the stream's
    blocks (over all bands) that were lowered.
    """
    frames = stream.shape[1]
    if frames == 0 or not source_levels.size:
        return 0.0
    count = -(-frames // block)
    centres = (np.arange(count) + 0.5) * block
    caps, floors = block_caps(source_levels, block, centres, loop_start=loop_start, factor=factor,
                              pre_frames=pre_frames)
    lowered = 0
    for lo, a, b, piece in stream_pieces(stream, block, sample_rate):
        for k, band in enumerate(bands(piece, sample_rate)):
            lowered += _lower_band(stream, band, lo, a, b, block, caps[k], floors[k], centres)
    return lowered / (count * len(source_levels))


def _lower_band(stream: np.ndarray, band: np.ndarray, lo: int, a: int, b: int, block: int, cap: np.ndarray,
                floor: float, centres: np.ndarray) -> int:
    """Take off ``stream[:, a:b]`` what :func:`limit_pre_echo` lowers of one ``band`` (read from ``lo``);
    the count of blocks lowered."""
    # the band's blocks over the stretch and two either side (its gains reach one block beyond)
    e0, e1 = max(0, a - 2 * block), min(stream.shape[1], b + 2 * block)
    index = np.arange(e0 // block, e0 // block + -(-(e1 - e0) // block))
    out_levels = level_blocks(band[:, e0 - lo : e1 - lo], block)
    gain = np.minimum(1.0, np.maximum(cap[index], floor) / np.maximum(out_levels, 1e-12))
    # per sample, the lower of neighbouring blocks' gains, smoothed over a block: no step to click
    gain = np.minimum(gain, np.minimum(np.concatenate([gain[:1], gain[:-1]]), np.concatenate([gain[1:], gain[-1:]])))
    inside = (index >= a // block) & (index < -(-b // block))
    if np.all(gain[inside] >= 1.0):
        return 0
    samples = np.interp(np.arange(a, b), centres[index], gain).astype(np.float32)
    stream[:, a:b] += band[:, a - lo : b - lo] * (samples - 1.0)[None, :]
    return int(np.count_nonzero(gain[inside] < 1.0))
