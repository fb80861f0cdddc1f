"""Synthesized dance motion with known beats, for the Dance2Music tests and benchmark.

A 17-joint body (AIST++'s COCO layout, centimetres, y up) bounces once per beat: it drops into the
beat quickly and floats over the top (a sharp bottom, a round top, as a dancer's knees do), sways
side to side over two beats and swings its arms. Tempo may change between sections (the phase runs
on, so the move does not jump). Tracker jitter, dropped frames and gaps are added on request.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from loopbridge.engine.motion import Motion, MotionKind

#: a standing body (COCO order: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles), cm
REST_POSE = np.array([
    [0, 165, 5], [-3, 168, 3], [3, 168, 3], [-7, 166, 0], [7, 166, 0],
    [-18, 145, 0], [18, 145, 0], [-25, 120, 0], [25, 120, 0], [-28, 95, 5], [28, 95, 5],
    [-10, 95, 0], [10, 95, 0], [-11, 50, 2], [11, 50, 2], [-12, 8, 0], [12, 8, 0],
], dtype=np.float64)
#: how much of the bounce each joint takes (feet stay down, the head goes furthest)
BOUNCE_SHARE = np.array([1, 1, 1, 1, 1, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.8, 0.8, 0.4, 0.4, 0.0, 0.0])
ARMS = [7, 8, 9, 10]


def phase_curve(times: np.ndarray, sections: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Beat phase (beats since the start) at ``times`` and the true beat times, for ``(duration_s, bpm)`` sections."""
    edges = np.cumsum([0.0, *[d for d, _ in sections]])
    rates = np.array([bpm / 60.0 for _, bpm in sections])
    phase_at_edges = np.concatenate([[0.0], np.cumsum(np.diff(edges) * rates)])
    index = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, len(sections) - 1)
    phase = phase_at_edges[index] + (times - edges[index]) * rates[index]
    total = phase_at_edges[-1]
    beats = []
    for k in range(int(np.floor(total)) + 1):
        s = int(np.clip(np.searchsorted(phase_at_edges, k, side="right") - 1, 0, len(sections) - 1))
        beats.append(edges[s] + (k - phase_at_edges[s]) / rates[s])
    return phase, np.array([b for b in beats if b <= edges[-1]])


def bounce(phase: np.ndarray, depth_cm: float = 8.0, sharpness: float = 2.5) -> np.ndarray:
    """Vertical offset: lowest (−depth) on each beat, a quick dip and a round top."""
    return -depth_cm * np.exp(sharpness * (np.cos(2 * np.pi * phase) - 1.0))


def dancing_body(
    sections: Sequence[tuple[float, float]],
    fps: float = 60.0,
    jitter_cm: float = 0.0,
    drop_fraction: float = 0.0,
    gap_s: tuple[float, float] | None = None,
    seed: int = 0,
) -> tuple[Motion, np.ndarray]:
    """A bouncing body over ``sections`` of ``(duration_s, bpm)``; returns the motion and its true beats.

    ``jitter_cm``: Gaussian noise on every coordinate of every frame. ``drop_fraction``: frames lost
    at random (and as many single joints set to NaN). ``gap_s``: ``(start, length)`` of frames lost in
    a row. Frame times keep their nominal values, so dropped frames leave gaps in the time stamps.
    """
    rng = np.random.default_rng(seed)
    duration = float(sum(d for d, _ in sections))
    times = np.arange(int(duration * fps)) / fps
    phase, beats = phase_curve(times, sections)
    values = np.repeat(REST_POSE[None], len(times), axis=0)
    values[:, :, 1] += bounce(phase)[:, None] * BOUNCE_SHARE[None, :]
    values[:, :, 0] += 6.0 * np.sin(np.pi * phase)[:, None]  # sway over two beats
    swing = 15.0 * np.sin(np.pi * phase + 0.6)
    values[:, ARMS, 2] += swing[:, None] * np.array([1, -1, 1.6, -1.6])[None, :]
    values += rng.normal(0.0, jitter_cm, values.shape) if jitter_cm else 0.0
    keep = rng.random(len(times)) >= drop_fraction
    if gap_s is not None:
        keep &= ~((times >= gap_s[0]) & (times < gap_s[0] + gap_s[1]))
    lost_joints = rng.random(values.shape[:2]) < drop_fraction
    values[lost_joints] = np.nan
    return Motion(values[keep], times[keep], MotionKind.JOINTS), beats


def phone_accelerometer(
    sections: Sequence[tuple[float, float]], fps: float = 100.0, noise: float = 0.0, seed: int = 0
) -> tuple[Motion, np.ndarray]:
    """A phone in the pocket of the bouncing body: x, y, z acceleration (m/s², gravity included)."""
    rng = np.random.default_rng(seed)
    duration = float(sum(d for d, _ in sections))
    times = np.arange(int(duration * fps)) / fps
    phase, beats = phase_curve(times, sections)
    height_m = bounce(phase) / 100.0
    accel_y = np.gradient(np.gradient(height_m, times), times) + 9.81
    values = np.stack([rng.normal(0, noise, len(times)), accel_y + rng.normal(0, noise, len(times)),
                       0.3 * np.sin(np.pi * phase) + rng.normal(0, noise, len(times))], axis=1)
    return Motion(values[:, None, :], times, MotionKind.ACCEL), beats
