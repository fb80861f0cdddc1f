"""Kinematic beats: keypoint files in every accepted layout, tempo and phase from synthesized dance
(jitter, dropped frames, gaps, tempo changes), the live stream's window."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from loopbridge.engine.beats import beat_scores
from loopbridge.engine.errors import RequestError
from loopbridge.engine.motion import (
    Motion,
    MotionKind,
    MotionStream,
    kinematic_beats,
    read_motion,
    regular_frames,
)

from tests.engine.motion_signals import dancing_body, phone_accelerometer


def _section_tempo(beats_s: np.ndarray, start_s: float, end_s: float) -> float:
    inside = beats_s[(beats_s >= start_s) & (beats_s <= end_s)]
    assert len(inside) >= 4, f"only {len(inside)} beats between {start_s} and {end_s} s"
    return float(60.0 * (len(inside) - 1) / (inside[-1] - inside[0]))


# ---- tempo and phase ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [72.0, 96.0, 124.0, 150.0, 174.0])
def test_tempo_within_two_percent_and_beats_on_the_bounce(bpm: float) -> None:
    motion, truth = dancing_body([(20.0, bpm)], jitter_cm=1.0, drop_fraction=0.1, seed=int(bpm))
    beats = kinematic_beats(motion)
    assert beats.bpm == pytest.approx(bpm, rel=0.02)
    scores = beat_scores(truth, beats.beats_s + beats.start_s, tolerance_s=0.05)
    assert scores.hit >= 0.9, scores
    assert scores.coverage == pytest.approx(1.0, abs=0.1)


def test_a_tempo_change_is_followed_through_jitter_drops_and_a_gap() -> None:
    motion, truth = dancing_body([(15.0, 100.0), (15.0, 128.0)], jitter_cm=1.5, drop_fraction=0.15,
                                 gap_s=(6.0, 0.5), seed=3)
    beats = kinematic_beats(motion)
    found = beats.beats_s + beats.start_s
    assert _section_tempo(found, 2.0, 14.0) == pytest.approx(100.0, rel=0.02)
    assert _section_tempo(found, 17.0, 29.0) == pytest.approx(128.0, rel=0.02)
    assert beat_scores(truth, found).hit >= 0.9
    assert beats.track.bpm_at(8.0) == pytest.approx(100.0, rel=0.03)
    assert beats.track.bpm_at(25.0) == pytest.approx(128.0, rel=0.03)


def test_phase_is_zero_on_the_beat_and_half_between() -> None:
    motion, truth = dancing_body([(12.0, 120.0)], seed=1)
    beats = kinematic_beats(motion)
    beat = float(truth[10])
    assert min(beats.track.phase_at(beat - beats.start_s), 1 - beats.track.phase_at(beat - beats.start_s)) < 0.05
    assert beats.track.phase_at(beat + 0.25 - beats.start_s) == pytest.approx(0.5, abs=0.05)


def test_accelerometer_impacts_give_the_tempo() -> None:
    motion, truth = phone_accelerometer([(16.0, 110.0)], noise=0.3, seed=2)
    beats = kinematic_beats(motion)
    assert beats.bpm == pytest.approx(110.0, rel=0.02)
    assert beat_scores(truth, beats.beats_s + beats.start_s).hit >= 0.9


def test_a_still_body_has_no_beats() -> None:
    motion, _ = dancing_body([(10.0, 120.0)])
    still = Motion(np.repeat(motion.values[:1], len(motion.values), axis=0), motion.times_s)
    assert len(kinematic_beats(still).beats_s) == 0


def test_dropped_frames_and_joints_are_bridged_on_a_regular_grid() -> None:
    motion, _ = dancing_body([(5.0, 120.0)], drop_fraction=0.3, seed=4)
    assert np.isnan(motion.values).any()
    values, grid = regular_frames(motion, 100.0)
    assert values.shape == (len(grid), 17, 3) and np.all(np.isfinite(values))
    assert np.allclose(np.diff(grid), 0.01)


def test_too_short_motion_is_refused() -> None:
    motion, _ = dancing_body([(2.0, 120.0)])
    with pytest.raises(RequestError, match="at least 3 s"):
        kinematic_beats(motion)


# ---- files -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dance() -> tuple[Motion, np.ndarray]:
    return dancing_body([(12.0, 112.0)], jitter_cm=0.5, seed=5)


def _full_frames(motion: Motion, fps: float = 60.0) -> np.ndarray:
    """The motion at ``fps`` with every dropped frame as a row of NaN (AIST++'s way)."""
    frames = int(round(motion.times_s[-1] * fps)) + 1
    full = np.full((frames, motion.joints, 3), np.nan)
    full[np.round(motion.times_s * fps).astype(int)] = motion.values
    return full


def _check(motion: Motion, bpm: float = 112.0) -> None:
    assert kinematic_beats(motion).bpm == pytest.approx(bpm, rel=0.02)


def test_npy_npz_and_aistpp_pickles(tmp_path: Path, dance: tuple[Motion, np.ndarray]) -> None:
    full = _full_frames(dance[0])
    np.save(tmp_path / "dance.npy", full)
    np.savez(tmp_path / "dance.npz", keypoints3d=full, fps=np.array(60.0))
    with open(tmp_path / "keypoints.pkl", "wb") as f:
        pickle.dump({"keypoints3d": full, "keypoints3d_optim": full}, f)
    flat = full.reshape(len(full), -1)
    np.save(tmp_path / "flat.npy", flat)
    for name in ("dance.npy", "dance.npz", "keypoints.pkl", "flat.npy"):
        motion = read_motion(tmp_path / name)
        assert motion.joints == 17
        _check(motion)


def test_a_frame_rate_other_than_aistpp(tmp_path: Path, dance: tuple[Motion, np.ndarray]) -> None:
    full = _full_frames(dance[0], fps=60.0)[::2]  # every other frame: 30 fps
    np.save(tmp_path / "half.npy", full)
    _check(read_motion(tmp_path / "half.npy", fps=30.0))


def test_aistpp_smpl_motion_pickle(tmp_path: Path) -> None:
    motion, _ = dancing_body([(12.0, 104.0)], seed=6)
    values, grid = regular_frames(motion, 60.0)
    centre = values.mean(axis=1)
    poses = np.zeros((len(grid), 24, 3))
    poses[:, 4, 0] = (values[:, 13, 1] - values[:, 13, 1].mean()) / 20.0  # knees bend with the bounce
    poses[:, 5, 0] = poses[:, 4, 0]
    with open(tmp_path / "smpl.pkl", "wb") as f:
        pickle.dump({"smpl_poses": poses.reshape(len(grid), 72), "smpl_trans": centre, "smpl_scaling": [1.0]}, f)
    _check(read_motion(tmp_path / "smpl.pkl"), bpm=104.0)


def test_csv_with_a_time_column_and_without_one(tmp_path: Path, dance: tuple[Motion, np.ndarray]) -> None:
    motion = dance[0]
    header = "time," + ",".join(f"j{j}_{a}" for j in range(motion.joints) for a in "xyz")
    rows = [",".join([f"{t:.5f}", *("" if np.isnan(v) else f"{v:.4f}" for v in frame.ravel())])
            for t, frame in zip(motion.times_s, motion.values, strict=True)]
    (tmp_path / "timed.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    timed = read_motion(tmp_path / "timed.csv")
    assert np.allclose(timed.times_s, motion.times_s, atol=1e-5)
    _check(timed)
    full = _full_frames(motion).reshape(-1, motion.joints * 3)
    np.savetxt(tmp_path / "plain.csv", full, delimiter=",")
    _check(read_motion(tmp_path / "plain.csv"))


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.npy", None, "readable keypoint file"),
        ("bad.txt", b"1,2,3", ".npy, .npz, .pkl or .csv"),
        ("garbage.npy", b"not numpy", "readable keypoint file"),
        ("short.npy", "short", "at least 3 s"),
        ("wrong.npy", "wrong-shape", "frames × joints × 3"),
        ("columns.csv", b"1,2,3,4\n5,6,7,8\n", "multiple of 3"),
        ("words.csv", b"t,x,y,z\n0,a,b,c\n", "numbers in every row"),
        ("dict.pkl", "dict", "smpl_poses"),
    ],
)
def test_unreadable_motion_files_are_refused_by_name(tmp_path: Path, name: str, content: object,
                                                     message: str) -> None:
    path = tmp_path / name
    if content == "short":
        np.save(path, np.zeros((60, 17, 3)))
    elif content == "wrong-shape":
        np.save(path, np.zeros((600, 17, 2)))
    elif content == "dict":
        path.write_bytes(pickle.dumps({"poses2d": np.zeros((600, 17, 2))}))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(RequestError, match=message) as info:
        read_motion(path)
    assert str(path) in str(info.value)


def test_a_pickle_that_would_run_code_is_refused_and_does_not_run(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"keypoints3d": _Payload()}))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(RequestError, match="not allowed in a motion file"):
            read_motion(path)
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "pwned").exists()


# ---- the live window ---------------------------------------------------------------------------------------


def test_stream_keeps_its_window_drops_late_frames_and_estimates() -> None:
    motion, _ = dancing_body([(16.0, 118.0)], jitter_cm=0.5, seed=7)
    stream = MotionStream(window_s=8.0)
    assert stream.estimate() is None
    for t, frame in zip(motion.times_s, motion.values, strict=True):
        assert stream.push(MotionKind.JOINTS, frame.ravel(), float(t))
    assert not stream.push(MotionKind.JOINTS, motion.values[0].ravel(), 1.0)  # late: dropped
    assert stream.dropped == 1
    assert stream.span_s == pytest.approx(8.0, abs=0.05)
    reading = stream.estimate()
    assert reading is not None
    assert reading.bpm == pytest.approx(118.0, rel=0.02)
    assert reading.confidence > 0.5 and 0.0 <= reading.phase < 1.0


def test_stream_treats_zero_joints_as_lost_and_restarts_on_a_new_skeleton() -> None:
    stream = MotionStream(window_s=8.0)
    frame = np.ones((17, 3))
    frame[3] = 0.0
    stream.push(MotionKind.JOINTS, frame.ravel(), 0.0)
    stream.push(MotionKind.JOINTS, frame.ravel(), 0.1)
    stream.push(MotionKind.JOINTS, np.ones(9), 0.2)  # three joints now: starts afresh
    assert stream.span_s == 0.0
    with pytest.raises(RequestError, match="x, y, z per joint"):
        stream.push(MotionKind.JOINTS, np.ones(4), 0.3)
    with pytest.raises(RequestError, match="3 values"):
        stream.push(MotionKind.ACCEL, np.ones(6), 0.3)
