"""``loopbridge dance2music``: a keypoint file in, a track as long as the motion out, the beat report."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopbridge.bridge.cli import main

from tests.engine.motion_signals import dancing_body


@pytest.fixture(scope="module")
def aistpp_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AIST++-style keypoints pickle at 60 fps: a dancer at 96 then 120 BPM, dropped frames as NaN rows."""
    motion, _ = dancing_body([(10.0, 96.0), (10.0, 120.0)], jitter_cm=1.0, drop_fraction=0.05, seed=21)
    full = np.full((1200, 17, 3), np.nan)
    full[np.round(motion.times_s * 60).astype(int)] = motion.values
    path = tmp_path_factory.mktemp("motion") / "gBR_sBM_c01_d04_mBR0_ch01.pkl"
    with open(path, "wb") as f:
        pickle.dump({"keypoints3d": full, "keypoints3d_optim": full}, f)
    return path


def test_a_user_renders_a_track_with_its_report(aistpp_file: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LOOPBRIDGE_HOME": str(tmp_path / "home")}
    out = tmp_path / "tracks" / "track.wav"
    result = subprocess.run(
        [sys.executable, "-m", "loopbridge.bridge.cli", "dance2music", str(aistpp_file), "--out", str(out),
         "--prompt", "house", "--seed", "9", "--report", "--beats", str(tmp_path / "beats.txt")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert Path(lines[0]) == out.resolve()
    info = sf.info(str(out))
    assert info.subtype == "PCM_24" and info.samplerate == 48000
    assert info.duration == pytest.approx(1199 / 60, abs=0.02)  # as long as the motion
    report = dict(line.split("  ", 1) for line in lines[1:])
    assert float(report["beat hit (±70 ms)"]) >= 0.8
    assert float(report["beat coverage"]) == pytest.approx(1.0, abs=0.15)
    beats = np.loadtxt(tmp_path / "beats.txt")
    assert 30 <= len(beats) <= 40  # 16 beats at 96 BPM and 20 at 120 in twenty seconds
    assert "kit material" in result.stderr


def test_json_report_and_a_csv_motion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    motion, _ = dancing_body([(12.0, 110.0)], jitter_cm=0.5, seed=22)
    rows = ["t," + ",".join(f"j{j}{a}" for j in range(17) for a in "xyz")]
    rows += [",".join([f"{t:.4f}", *(f"{v:.3f}" for v in frame.ravel())])
             for t, frame in zip(motion.times_s, motion.values, strict=True)]
    csv = tmp_path / "phone.csv"
    csv.write_text("\n".join(rows))
    out = tmp_path / "t.wav"
    code = main(["dance2music", str(csv), "--out", str(out), "--seed", "2", "--json", "--quiet", "--sample-rate",
                 "44100", "--store", str(tmp_path / "store")])
    stdout = capsys.readouterr().out.splitlines()
    assert code == 0
    report = json.loads(stdout[1])
    assert report["path"] == str(out.resolve()) and report["material"] == "kit"
    assert report["motion_bpm"] == pytest.approx(110.0, rel=0.02)
    assert report["beat_hit"] >= 0.8
    assert sf.info(str(out)).samplerate == 44100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{tmp}/x.mp3"], "ending in .wav"),
        (["--out", "{tmp}"], "it is a folder"),
        (["--fps", "0"], "fps=0.0"),
        (["--material", "orchestra"], "material='orchestra'"),
        (["--model", "nope"], "model='nope' is not available"),
        (["--sample-rate", "100"], "sample_rate=100"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(aistpp_file: Path, tmp_path: Path, args: list[str],
                                                          message: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["dance2music", str(aistpp_file), "--store", str(tmp_path / "store"), "--quiet",
            *[a.replace("{tmp}", str(tmp_path)) for a in args]]
    if "--out" not in args:
        argv += ["--out", str(tmp_path / "track.wav")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not list(tmp_path.glob("*.wav"))


def test_a_missing_motion_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dance2music", str(tmp_path / "none.pkl"), "--out", str(tmp_path / "t.wav")]) == 2
    assert "none.pkl" in capsys.readouterr().err
