"""The band limiter of the pre-echo (:func:`~loopbridge.engine.conform.alignment.limit_pre_echo`) written the
straightforward way: each band split off by a full-rate inverse FFT of the whole stretch, measured and lowered at
the full rate. The engine's version must give the same output within a tight tolerance
(``test_pre_echo_fast.py``); ``bench/bench_pre_echo.py`` times the two on the same input."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import scipy.fft
from loopbridge.engine.conform.alignment import (
    PRE_ECHO_CHUNK_MARGIN_S,
    PRE_ECHO_CHUNK_S,
    PRE_ECHO_CROSSOVER_OCTAVES,
    PRE_ECHO_FLOOR,
    PRE_ECHO_MARGIN_DB,
    band_edges,
    level_blocks,
)


def bands(audio: np.ndarray, sample_rate: int, scale: float = 1.0) -> Iterator[np.ndarray]:
    """The bands of float32 ``[channels, samples]`` audio, one at a time (float32, same shape), lowest
    first: they sum to the audio. Each is the audio's spectrum weighted by the band's gain: one inside
    it, a raised cosine over :data:`PRE_ECHO_CROSSOVER_OCTAVES` around each edge (in log frequency, so
    neighbours sum to one), zero elsewhere. ``scale``: the bands of audio whose frequencies are moved by
    this ratio afterwards (a pitch shift): its frequencies are multiplied by it before the edges are
    applied. Held at once beside the audio: its spectrum, a weighted copy and one band."""
    frames = audio.shape[1]
    # zero-padded to a length the FFT is fast at (an awkward length can cost tens of times more)
    size = scipy.fft.next_fast_len(frames, real=True)
    spectrum = scipy.fft.rfft(np.asarray(audio, dtype=np.float32), n=size, axis=1)
    frequency = np.arange(spectrum.shape[1], dtype=np.float32) * np.float32(sample_rate / size * scale)
    half = PRE_ECHO_CROSSOVER_OCTAVES / 2.0
    edges = band_edges(sample_rate)
    # each edge's crossover: its bins, and the gain there of the band above it
    crossovers = []
    for edge in edges:
        lo, hi = np.searchsorted(frequency, [edge * 2.0 ** -half, edge * 2.0 ** half])
        x = (np.log2(frequency[lo:hi] / np.float32(edge)) + half) / PRE_ECHO_CROSSOVER_OCTAVES
        crossovers.append((int(lo), int(hi), (0.5 - 0.5 * np.cos(np.pi * x)).astype(np.float32)))
    work = np.zeros_like(spectrum)
    for k in range(len(edges) + 1):
        lo = crossovers[k - 1][0] if k > 0 else 0
        hi = crossovers[k][1] if k < len(edges) else spectrum.shape[1]
        work[:, lo:hi] = spectrum[:, lo:hi]
        if k > 0:
            a, b, rise = crossovers[k - 1]
            work[:, a:b] *= rise[None, :]
        if k < len(edges):
            a, b, rise = crossovers[k]
            work[:, a:b] *= 1.0 - rise[None, :]
        yield scipy.fft.irfft(work, n=size, axis=1)[:, :frames]
        work[:, lo:hi] = 0.0


def _chunks(frames: int, block: int, sample_rate: int) -> Iterator[tuple[int, int, int, int]]:
    """``(lo, a, b, hi)``: the stretches ``[a, b)`` the bands are split in, whole blocks each, and the
    audio ``[lo, hi)`` read for them (:data:`PRE_ECHO_CHUNK_MARGIN_S` more either side)."""
    step = block * max(1, int(round(PRE_ECHO_CHUNK_S * sample_rate / block)))
    margin = int(round(PRE_ECHO_CHUNK_MARGIN_S * sample_rate)) + 2 * block
    for a in range(0, frames, step):
        b = min(frames, a + step)
        yield max(0, a - margin), a, b, min(frames, b + margin)


def band_count(sample_rate: int) -> int:
    return len(band_edges(sample_rate)) + 1


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
    positions = (loop_start + (centres - pre_frames) * factor) / block - 0.5
    caps, floors = [], []
    for levels in source_levels:
        # the source's loudest within a block either way of the mapped point (and of the block's span)
        reach = np.maximum.reduce([np.roll(levels, shift) for shift in (-1, 0, 1)])
        reach = np.maximum(reach, np.roll(reach, -int(math.ceil(factor))))
        caps.append(np.interp(positions, np.arange(len(reach)), reach) * 10 ** (PRE_ECHO_MARGIN_DB / 20.0))
        floors.append(PRE_ECHO_FLOOR * float(levels.max()))
    lowered = 0
    before: np.ndarray | None = None  # the stream as it came in, up to the current stretch
    for lo, a, b, hi in _chunks(frames, block, sample_rate):
        piece = stream[:, lo:hi].copy()
        if before is not None and a > lo:
            piece[:, : a - lo] = before[:, before.shape[1] - (a - lo) :]
        before = stream[:, lo:b].copy() if b < frames else None
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
