"""Kinematic beats for Dance2Music: a dancer's tempo and beat phase from motion.

Motion comes as joint positions (AIST++-style ``frames × joints × 3``) or accelerometer values
(``frames × 3``, a phone in a pocket or on a wrist), with a time for every frame, from a file
(:func:`read_motion`) or a live stream (:class:`MotionStream`).

1. **Regular frames.** Dropped frames (missing rows, NaN joints, gaps in the time stamps) are
   bridged by linear interpolation onto a regular :data:`ANALYSIS_RATE_HZ` grid; a straight line
   has no acceleration, so a gap adds no beat.
2. **Velocity, smoothed.** Positions are smoothed with a Gaussian (:data:`SMOOTH_S`, well below a
   sixteenth note at any dance tempo) before differentiating, so tracker jitter does not read as motion.
3. **Kinematic beat candidates.** Local minima of the body's mean joint speed (a dancer's moves stop
   on the beat), each weighted by how sharply the motion turns there: the mean acceleration times
   ``(1 − cos θ)/2`` of the angle θ between the velocity just before and just after. The bottom of a
   bounce (a quick reversal) weighs far more than its slow, rounded top. Accelerometer input has
   no positions: its candidates are the impacts, peaks of the acceleration with gravity removed.
4. **Tempo and phase.** The candidates, smoothed into a curve, go to the beat tracker
   (:func:`loopbridge.engine.beats.track_beats`), which follows tempo changes.

Units: seconds, BPM; positions in any unit (the analysis is scale-free).
"""

from __future__ import annotations

import csv
import io
import math
import pickle
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d
from scipy.signal import argrelextrema

from .beats import BeatTrack, track_beats
from .errors import RequestError

#: the regular frame rate the analysis runs at (Hz)
ANALYSIS_RATE_HZ = 100.0
#: Gaussian smoothing of positions before differentiating (seconds, one standard deviation)
SMOOTH_S = 0.03
#: span over which the velocity before and after a candidate is compared (seconds)
TURN_SPAN_S = 0.06
#: width of each candidate's bump in the novelty curve (seconds, one standard deviation)
CANDIDATE_WIDTH_S = 0.015
#: the frame rate assumed for a keypoint file that says none (AIST++ is 60 fps)
DEFAULT_FPS = 60.0
FPS_RANGE = (5.0, 1000.0)
#: motion shorter than this holds too few beats to measure
MIN_DURATION_S = 3.0
MAX_DURATION_S = 3600.0
MAX_JOINTS = 256
#: a gap in the time stamps longer than this is not a dropped frame but a pause (still bridged)
MAX_GAP_S = 2.0
#: accelerometer input: gravity and slow drift are removed by subtracting a running mean this long (s)
GRAVITY_WINDOW_S = 0.5


class MotionKind(StrEnum):
    JOINTS = "joints"  # positions [frames, joints, 3]
    ACCEL = "accel"  # accelerometer [frames, 1, 3]


@dataclass(frozen=True, eq=False)
class Motion:
    """Motion frames with their times.

    ``values`` is float64 ``[frames, joints, 3]`` (accelerometer input: one "joint"); NaN marks a
    value that was not captured. ``times_s`` is ascending, one time per frame.
    """

    values: np.ndarray
    times_s: np.ndarray
    kind: MotionKind = MotionKind.JOINTS

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim == 2 and values.shape[1] % 3 == 0:
            values = values.reshape(values.shape[0], -1, 3)
        if values.ndim != 3 or values.shape[2] != 3 or not 1 <= values.shape[1] <= MAX_JOINTS:
            raise RequestError("motion", f"an array of shape {values.shape}",
                               f"frames × joints × 3 values (1–{MAX_JOINTS} joints)")
        times = np.asarray(self.times_s, dtype=np.float64).ravel()
        if len(times) != len(values):
            raise RequestError("motion.times_s", f"{len(times)} times for {len(values)} frames", "one time per frame")
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
            raise RequestError("motion.times_s", "times that are not finite and strictly increasing",
                               "strictly increasing times in seconds")
        if np.any(np.isinf(values)):
            raise RequestError("motion", "infinite values", "finite values (NaN marks a dropped value)")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "kind", MotionKind(self.kind))

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1] - self.times_s[0]) if len(self.times_s) else 0.0

    @property
    def joints(self) -> int:
        return int(self.values.shape[1])

    @classmethod
    def at_rate(cls, values: np.ndarray, fps: float, kind: MotionKind = MotionKind.JOINTS) -> Motion:
        """Frames sampled at ``fps`` from time 0."""
        _check_fps(fps)
        return cls(values, np.arange(len(values)) / float(fps), kind)


def _check_fps(fps: object) -> float:
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(float(fps)):
        raise RequestError("fps", fps, f"a frame rate of {FPS_RANGE[0]:g}–{FPS_RANGE[1]:g} frames per second")
    if not FPS_RANGE[0] <= float(fps) <= FPS_RANGE[1]:
        raise RequestError("fps", fps, f"{FPS_RANGE[0]:g}–{FPS_RANGE[1]:g} frames per second")
    return float(fps)


# ---- files --------------------------------------------------------------------------------------------

#: keys of a pickled dict that hold joint positions, in order of preference (AIST++ first)
_POSITION_KEYS = ("keypoints3d_optim", "keypoints3d", "joints3d", "joints", "positions", "keypoints")


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, numbers and numpy arrays only: a motion file cannot run code."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"), ("collections", "OrderedDict"), ("builtins", "slice"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a motion file (arrays and dicts only)")


def _from_pickled(data: Any, where: str) -> tuple[np.ndarray, float | None]:
    """(values, fps or None) from an unpickled object: an array, or a dict in AIST++'s layouts."""
    if isinstance(data, dict):
        fps = data.get("fps") or data.get("frame_rate") or data.get("mocap_framerate")
        fps = float(fps) if isinstance(fps, int | float | np.number) else None
        for key in _POSITION_KEYS:
            if key in data:
                return np.asarray(data[key], dtype=np.float64), fps
        if "smpl_poses" in data:
            # AIST++'s SMPL motion: joint rotations (axis-angle) and the root's path; without the
            # SMPL body model these are not positions, but their changes stop and turn on the beat too
            poses = np.asarray(data["smpl_poses"], dtype=np.float64).reshape(len(data["smpl_poses"]), -1, 3)
            parts = [poses]
            if "smpl_trans" in data:
                trans = np.asarray(data["smpl_trans"], dtype=np.float64).reshape(len(poses), 1, 3)
                scale = float(np.nanstd(trans)) or 1.0
                parts.append(trans / scale)
            return np.concatenate(parts, axis=1), fps
        raise RequestError("motion", where, "a pickled array or a dict with one of: "
                           + ", ".join((*_POSITION_KEYS, "smpl_poses")))
    return np.asarray(data, dtype=np.float64), None


def _read_csv(text: str, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(values [frames, columns], times or None) from CSV: a header row is optional; a first column
    named ``t``, ``time`` or ``time_s`` holds each frame's time in seconds."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        raise RequestError("motion", where, "a CSV file with one row per frame")
    header = None
    try:
        [float(c) for c in rows[0] if c.strip()]
    except ValueError:
        header, rows = [c.strip().lower() for c in rows[0]], rows[1:]
    try:
        table = np.array([[float(c) if c.strip() else np.nan for c in r] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise RequestError("motion", where, "numbers in every row after the header", str(exc)) from None
    if table.ndim != 2 or len(table) == 0:
        raise RequestError("motion", where, "rows with the same number of columns")
    times = None
    if header is not None and header[0] in ("t", "time", "time_s", "timestamp", "seconds"):
        times, table = table[:, 0], table[:, 1:]
        keep = np.isfinite(times)
        times, table = times[keep], table[keep]
    if table.shape[1] % 3:
        raise RequestError("motion", f"{where}: {table.shape[1]} value columns",
                           "x, y, z columns for each joint (a multiple of 3), after an optional time column")
    return table, times


def read_motion(path: str | Path, fps: float | None = None) -> Motion:
    """Motion from a keypoint file.

    ``.npy`` / ``.npz``: ``frames × joints × 3`` (or ``frames × 3·joints``); ``.pkl``: such an array
    or a dict in AIST++'s layouts (``keypoints3d_optim``, ``keypoints3d``, or SMPL ``smpl_poses`` +
    ``smpl_trans``); ``.csv``: one row per frame, ``x, y, z`` per joint, an optional first column
    ``time`` in seconds (else ``fps``). ``fps`` defaults to the file's own, else 60 (AIST++). Rows
    that are all NaN are dropped frames. Raises :class:`RequestError` naming the file and what is
    accepted.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise RequestError("motion", where, "a readable keypoint file (.npy, .npz, .pkl or .csv)")
    if fps is not None:
        _check_fps(fps)
    suffix = path.suffix.lower()
    times: np.ndarray | None = None
    file_fps: float | None = None
    try:
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                key = next((k for k in (*_POSITION_KEYS, "arr_0") if k in archive.files), None)
                if key is None:
                    raise RequestError("motion", where, "an .npz holding one of: " + ", ".join(_POSITION_KEYS))
                values = archive[key]
                if "fps" in archive.files:
                    file_fps = float(archive["fps"])
        elif suffix in (".pkl", ".pickle"):
            with path.open("rb") as f:
                values, file_fps = _from_pickled(_ArraysOnly(f).load(), where)
        elif suffix == ".csv":
            values, times = _read_csv(path.read_text(encoding="utf-8"), where)
        else:
            raise RequestError("motion", where, "a .npy, .npz, .pkl or .csv keypoint file")
    except RequestError:
        raise
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise RequestError("motion", where, "a readable keypoint file (.npy, .npz, .pkl or .csv)",
                           f"{type(exc).__name__}: {str(exc)[:120]}") from None
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] % 3 == 0:
        values = values.reshape(len(values), -1, 3)
    if values.ndim != 3 or values.shape[-1] != 3:
        raise RequestError("motion", f"{where}: an array of shape {values.shape}",
                           "frames × joints × 3 (or frames × 3·joints)")
    if times is None:
        times = np.arange(len(values)) / (fps or file_fps or DEFAULT_FPS)
    present = ~np.all(np.isnan(values), axis=(1, 2))
    motion = Motion(values[present], times[present])
    if motion.duration_s < MIN_DURATION_S:
        raise RequestError("motion", f"{where}: {motion.duration_s:.2f} s of motion",
                           f"at least {MIN_DURATION_S:g} s of frames")
    if motion.duration_s > MAX_DURATION_S:
        raise RequestError("motion", f"{where}: {motion.duration_s:.0f} s of motion", f"at most {MAX_DURATION_S:g} s")
    return motion


# ---- analysis -----------------------------------------------------------------------------------------


def regular_frames(motion: Motion, rate_hz: float = ANALYSIS_RATE_HZ) -> tuple[np.ndarray, np.ndarray]:
    """``(values [frames, joints, 3], times)`` on a regular grid, every gap and NaN bridged linearly.

    A joint never seen is left out. Raises :class:`RequestError` when no joint has two frames.
    """
    start, end = motion.times_s[0], motion.times_s[-1]
    grid = start + np.arange(int(math.floor((end - start) * rate_hz)) + 1) / rate_hz
    columns = []
    flat = motion.values.reshape(len(motion.values), -1)
    for c in range(flat.shape[1]):
        seen = np.isfinite(flat[:, c])
        if seen.sum() >= 2:
            columns.append(np.interp(grid, motion.times_s[seen], flat[seen, c]))
        else:
            columns.append(None)
    joints = [j for j in range(motion.joints) if all(columns[3 * j + a] is not None for a in range(3))]
    if not joints:
        raise RequestError("motion", "no joint seen in two frames", "at least one joint tracked over time")
    values = np.stack([np.stack([columns[3 * j + a] for a in range(3)], axis=-1) for j in joints], axis=1)
    return values, grid


@dataclass(frozen=True)
class KinematicBeats:
    """What :func:`kinematic_beats` found in a motion.

    ``track``: the tracked beats and local tempo (times from the motion's first frame, the same
    clock as ``motion.times_s`` minus its start). ``candidate_times_s`` / ``candidate_weights``:
    the kinematic beat candidates (speed minima or impacts) and their sharpness. ``novelty``: the
    curve the tracker ran on, at ``rate_hz``. ``start_s``: the motion's first frame time.
    """

    track: BeatTrack
    candidate_times_s: np.ndarray
    candidate_weights: np.ndarray
    novelty: np.ndarray
    rate_hz: float
    start_s: float
    duration_s: float

    @property
    def beats_s(self) -> np.ndarray:
        return self.track.beats_s

    @property
    def bpm(self) -> float:
        return self.track.bpm

    @property
    def confidence(self) -> float:
        return self.track.confidence


def _bumps(times: np.ndarray, weights: np.ndarray, n: int, rate_hz: float) -> np.ndarray:
    curve = np.zeros(n + 1)
    # each candidate shared between its two nearest frames, so its peak keeps its sub-frame time
    position = np.clip(times * rate_hz, 0, n - 1)
    index = np.floor(position).astype(np.int64)
    fraction = position - index
    np.add.at(curve, index, weights * (1.0 - fraction))
    np.add.at(curve, index + 1, weights * fraction)
    curve = curve[:n]
    return gaussian_filter1d(curve, CANDIDATE_WIDTH_S * rate_hz, mode="constant")


def joint_candidates(values: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Kinematic beat candidates of regular joint positions ``[frames, joints, 3]``: frames (float)
    of the local minima of mean joint speed, and their sharpness.

    Sharpness is the change of velocity across the minimum, ``|v̄ after − v̄ before|`` over
    :data:`TURN_SPAN_S` on each side, averaged over the joints: large for a quick reversal (the
    bottom of a bounce), small for a slow, rounded turn or a mere pause, and averaged over enough
    frames that tracker jitter barely moves it. Joints share one scale, so a still joint's jitter
    counts for no more than it is.
    """
    smoothed = gaussian_filter1d(values, SMOOTH_S * rate_hz, axis=0, mode="nearest")
    velocity = np.gradient(smoothed, 1.0 / rate_hz, axis=0)
    speed = np.linalg.norm(velocity, axis=2)
    scale = max(float(np.median(speed)), 1e-12)
    mean_speed = speed.mean(axis=1) / scale
    minima = argrelextrema(mean_speed, np.less_equal, order=max(1, int(0.05 * rate_hz)))[0]
    span = max(1, int(round(TURN_SPAN_S * rate_hz)))
    minima = minima[(minima >= span) & (minima < len(mean_speed) - span)]
    # running means of the velocity over the span before and after every frame
    cumulative = np.concatenate([np.zeros((1, *velocity.shape[1:])), np.cumsum(velocity, axis=0)])
    before = (cumulative[minima] - cumulative[minima - span]) / span
    after = (cumulative[minima + 1 + span] - cumulative[minima + 1]) / span
    weights = np.linalg.norm(after - before, axis=2).mean(axis=1) / scale
    return _parabolic(mean_speed, minima), weights


def _parabolic(curve: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Extremum positions refined to a fraction of a frame by a parabola through each and its neighbours."""
    i = index[(index > 0) & (index < len(curve) - 1)]
    a, b, c = curve[i - 1], curve[i], curve[i + 1]
    denominator = a - 2 * b + c
    offset = np.where(np.abs(denominator) > 1e-12, 0.5 * (a - c) / np.where(denominator == 0, 1, denominator), 0.0)
    refined = index.astype(np.float64)
    refined[(index > 0) & (index < len(curve) - 1)] = i + np.clip(offset, -0.5, 0.5)
    return refined


def accel_candidates(values: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Impacts in regular accelerometer values ``[frames, 1, 3]``: frames of the peaks of the
    acceleration's magnitude with gravity (its running mean) removed, and their heights."""
    raw = values[:, 0, :]
    gravity = uniform_filter1d(raw, size=max(3, int(GRAVITY_WINDOW_S * rate_hz)), axis=0, mode="nearest")
    dynamic = gaussian_filter1d(raw - gravity, SMOOTH_S * rate_hz / 2, axis=0, mode="nearest")
    magnitude = np.linalg.norm(dynamic, axis=1)
    peaks = argrelextrema(magnitude, np.greater_equal, order=max(1, int(0.05 * rate_hz)))[0]
    peaks = peaks[(peaks > 0) & (peaks < len(magnitude) - 1)]
    return _parabolic(magnitude, peaks), magnitude[peaks]


def kinematic_beats(motion: Motion, tempo_range_bpm: tuple[float, float] = (60.0, 200.0)) -> KinematicBeats:
    """The motion's kinematic beats, tempo and phase (see the module docstring).

    Raises :class:`RequestError` for motion shorter than :data:`MIN_DURATION_S`.
    """
    if motion.duration_s < MIN_DURATION_S:
        raise RequestError("motion", f"{motion.duration_s:.2f} s of motion", f"at least {MIN_DURATION_S:g} s")
    rate = ANALYSIS_RATE_HZ
    values, grid = regular_frames(motion, rate)
    if motion.kind is MotionKind.ACCEL:
        frames, weights = accel_candidates(values, rate)
    else:
        frames, weights = joint_candidates(values, rate)
    novelty = _bumps(frames / rate, weights, len(grid), rate)
    track = track_beats(novelty, rate, tempo_range_bpm)
    return KinematicBeats(track, frames / rate, weights, novelty, rate, float(grid[0]), float(grid[-1] - grid[0]))


# ---- live ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TempoReading:
    """One estimate from a live stream: tempo, confidence, the latest beat and the phase now."""

    bpm: float
    confidence: float
    last_beat_s: float | None
    phase: float
    time_s: float
    frames: int

    def to_dict(self) -> dict[str, Any]:
        return {"bpm": self.bpm, "confidence": self.confidence, "last_beat_s": self.last_beat_s,
                "phase": self.phase, "time_s": self.time_s, "frames": self.frames}


class MotionStream:
    """A rolling window of live motion frames, analysed on demand.

    Frames arrive with a time (the sender's clock when it sends one, else the arrival time);
    frames out of order or repeated are dropped, a change in joint count starts afresh. Only the
    last ``window_s`` seconds are kept. Thread-safe.
    """

    def __init__(self, window_s: float = 12.0, max_frames: int = 20000) -> None:
        if not MIN_DURATION_S < window_s <= 120.0:
            raise RequestError("window_s", window_s, f"more than {MIN_DURATION_S:g} s and at most 120 s")
        self.window_s = float(window_s)
        self._frames: deque[tuple[float, np.ndarray]] = deque(maxlen=max_frames)
        self._kind: MotionKind | None = None
        self._shape: tuple[int, ...] | None = None
        self._lock = threading.Lock()
        self.received = 0
        self.dropped = 0

    def push(self, kind: MotionKind | str, values: Sequence[float] | np.ndarray, time_s: float) -> bool:
        """Add one frame: joint positions (3 values per joint) or one accelerometer x, y, z.

        Returns False when the frame was dropped (out of order). Raises :class:`RequestError` for a
        value count that is not a multiple of 3 (or not 3 for an accelerometer) or non-finite time.
        """
        kind = MotionKind(kind)
        frame = np.asarray(values, dtype=np.float64).ravel()
        if kind is MotionKind.ACCEL and frame.size != 3:
            raise RequestError("accel", f"{frame.size} values", "x, y, z (3 values)")
        if frame.size == 0 or frame.size % 3 or frame.size > 3 * MAX_JOINTS:
            raise RequestError("joints", f"{frame.size} values", f"x, y, z per joint (3–{3 * MAX_JOINTS} values)")
        if not math.isfinite(time_s):
            raise RequestError("time_s", time_s, "a finite time in seconds")
        joints = np.where(np.isfinite(frame), frame, np.nan).reshape(-1, 3)
        if kind is MotionKind.JOINTS:
            # pose trackers send a lost joint as 0 0 0 (or NaN): either way it was not seen
            joints[np.all(joints == 0.0, axis=1)] = np.nan
        with self._lock:
            self.received += 1
            if self._kind is not kind or self._shape != joints.shape:
                self._frames.clear()
                self._kind, self._shape = kind, joints.shape
            if self._frames and time_s <= self._frames[-1][0]:
                self.dropped += 1
                return False
            self._frames.append((float(time_s), joints))
            while self._frames and self._frames[0][0] < time_s - self.window_s:
                self._frames.popleft()
        return True

    def reset(self) -> None:
        with self._lock:
            self._frames.clear()
            self._kind = self._shape = None

    @property
    def span_s(self) -> float:
        with self._lock:
            return self._frames[-1][0] - self._frames[0][0] if len(self._frames) >= 2 else 0.0

    def snapshot(self) -> Motion | None:
        """The window as a :class:`Motion`, or None while it holds less than :data:`MIN_DURATION_S`."""
        with self._lock:
            if len(self._frames) < 2 or self._frames[-1][0] - self._frames[0][0] < MIN_DURATION_S:
                return None
            times = np.array([t for t, _ in self._frames])
            values = np.stack([v for _, v in self._frames])
            kind = self._kind or MotionKind.JOINTS
        return Motion(values, times, kind)

    def estimate(self) -> TempoReading | None:
        """The tempo of the window now (None while too short or without a pulse)."""
        motion = self.snapshot()
        if motion is None:
            return None
        beats = kinematic_beats(motion)
        if len(beats.beats_s) < 4:
            return None
        now = motion.times_s[-1]
        last = float(beats.beats_s[-1] + beats.start_s)
        # the tempo now: the recent beats count, not the whole window's median
        recent = beats.beats_s[-5:]
        bpm = float(60.0 / np.median(np.diff(recent)))
        phase = float(((now - last) * bpm / 60.0) % 1.0)
        return TempoReading(bpm, beats.confidence, last, phase, float(now), len(motion.times_s))
