"""The main job from the command line: tempo-matched files from the embedded default model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from loopbridge.bridge.cli import main
from loopbridge.engine.conform import read_wav_tags


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_main_job_as_a_user_runs_it(tmp_path: Path) -> None:
    """The README's command, in a real process, offline."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LOOPBRIDGE_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-m", "loopbridge.bridge.cli", "generate", "house groove", "--kind", "loop", "--bpm", "124",
         "--bars", "2", "--seed", "7", "--out", str(tmp_path / "samples")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    path = Path(line)
    assert path.parent == (tmp_path / "samples").resolve()
    assert path.name == "house-groove_loop_124bpm_2bars_s7v0.wav"
    info = sf.info(str(path))
    assert (info.samplerate, info.subtype) == (48000, "PCM_24")
    assert info.frames == round(2 * 4 * 60 / 124 * 48000)  # exactly two bars to the sample
    tags = read_wav_tags(path)
    assert tags.acid is not None and tags.acid.tempo_bpm == pytest.approx(124.0) and tags.acid.beats == 8


def test_variations_one_shots_and_kits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, stdout, _ = _run(["generate", "punchy kick", "--bpm", "128", "--variations", "2", "--seed", "1",
                            "--out", str(out), "--quiet"], capsys)
    assert code == 0
    paths = [Path(p) for p in stdout.split()]
    assert [p.name for p in paths] == ["punchy-kick_one-shot_128bpm_s1v0.wav", "punchy-kick_one-shot_128bpm_s1v1.wav"]
    first, second = (sf.read(str(p))[0] for p in paths)
    assert first.shape != second.shape or abs(first - second).max() > 1e-3, "variations differ"
    tags = read_wav_tags(paths[0])
    assert tags.acid is not None and tags.acid.one_shot

    code, stdout, _ = _run(["generate", "dark", "--kind", "kit", "--seed", "3", "--out", str(out), "--quiet"], capsys)
    assert code == 0
    names = [Path(p).name for p in stdout.split()]
    assert [n.split("_")[0] for n in names] == ["kick-dark", "snare-dark", "clap-dark", "closed-hat-dark",
                                                 "open-hat-dark", "tom-dark", "perc-dark"]


def test_history_and_recall_at_a_new_tempo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = _run(["generate", "groove", "--kind", "loop", "--bpm", "120", "--bars", "1", "--seed", "5",
                            "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 0
    code, stdout, _ = _run(["history", "--json"], capsys)
    entries = json.loads(stdout)
    assert entries[0]["prompt"] == "groove" and entries[0]["kind"] == "loop"
    code, stdout, _ = _run(["recall", entries[0]["key"][:10], "--bpm", "100", "--out", str(tmp_path / "re"),
                            "--quiet"], capsys)
    assert code == 0
    recalled = Path(stdout.strip())
    assert "100bpm" in recalled.name
    assert sf.info(str(recalled)).frames == round(4 * 60 / 100 * 48000)


def test_the_songs_meter_decides_the_loops_length(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # two bars of 7/8 at 120 BPM: seven quarter notes, 3.5 s (the engine's rule; the plugin and device use it too)
    code, stdout, _ = _run(["generate", "groove", "--kind", "loop", "--bpm", "120", "--bars", "2", "--meter", "7/8",
                            "--seed", "6", "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 0
    path = Path(stdout.strip())
    assert sf.info(str(path)).frames == 7 * 24000
    tags = read_wav_tags(path)
    assert tags.acid is not None and tags.acid.beats == 7


def test_models_lists_the_embedded_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = _run(["models", "--json"], capsys)
    assert code == 0
    (default,) = [m for m in json.loads(stdout) if m["id"] == "default"]
    assert default["source"] == "embedded"
    assert default["capabilities"]["sample_rate"] == 44100
    assert "kick" in default["capabilities"]["classes"]


BAD_INPUT = [
    (["--bpm", "5"], r"tempo_bpm=5\.0 is not accepted.*20–999 BPM"),
    (["--bpm", "fast"], r"bpm='fast'.*a number"),
    (["--bars", "0", "--kind", "loop"], r"bars=0\.0.*0\.25–64 bars"),
    (["--seconds", "-2"], r"duration_s=-2\.0.*0\.05–600 s"),
    (["--seconds", "31"], r"duration_s=31\.0.*for model 'default'"),
    (["--bars", "1", "--seconds", "2"], r"not allowed with argument"),
    (["--variations", "0"], r"variations=0.*1–64"),
    (["--variations", "100"], r"variations=100.*1–64"),
    (["--seed", "-1"], r"seed=-1.*0–4294967295"),
    (["--pitch", "30"], r"pitch_semitones=30\.0.*semitones"),
    (["--sample-rate", "1000"], r"sample_rate=1000.*8000–192000 Hz"),
    (["--loudness", "-3", "--kind", "loop"], r"loudness_lufs=-3\.0.*integrated loudness from -40 to -6 LUFS"),
    (["--loudness", "loud"], r"loudness='loud'.*a number"),
    (["--kind", "drone"], r"kind='drone'.*one-shot, loop, texture, kit"),
    (["--model", "nope"], r"model='nope' is not available.*default"),
    (["--steps", "0"], r"steps=0.*1–1000"),
    (["--guidance", "99"], r"guidance=99\.0.*0–30"),
    (["--strength", "2"], r"audio_prompt_strength=2\.0.*0–1"),
    (["--audio-prompt", "missing.wav"], r"missing\.wav.*not a readable file"),
    (["--negative", "hiss"], r"does not take a negative prompt"),
    (["--model", "dance-diffusion:/nonexistent"], r"'/nonexistent' does not exist"),
    (["--sample-rate", "44100.5"], r"sample-rate='44100\.5'.*whole number of Hz, 8000–192000"),
    (["--morph-to", "snare", "--morph", "0.5"], r"cannot morph"),
    (["--meter", "7/3", "--kind", "loop"], r"meter_denominator=3.*one of 1, 2, 4, 8, 16, 32"),
    (["--meter", "seven"], r"meter='seven'.*time signature such as 4/4"),
    (["--meter", "4/4", "--beats-per-bar", "3"], r"not allowed with argument"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUT)
def test_bad_input_one_line_exit_2_nothing_written(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = _run(["generate", "kick", "--out", str(out), *extra], capsys)
    assert code == 2
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("loopbridge: error: ")
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not out.exists(), "nothing written"
    assert not (Path(os.environ["LOOPBRIDGE_HOME"]) / "store").exists(), "not even the store"


def test_a_texture_in_seconds_is_exactly_that_long_and_pitch_is_in_the_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, _ = _run(["generate", "", "--kind", "texture", "--seconds", "3", "--seed", "2", "--out",
                            str(tmp_path), "--quiet"], capsys)
    assert code == 0
    texture = Path(stdout.strip())
    assert sf.info(str(texture)).frames == 3 * 48000
    tags = read_wav_tags(texture)
    assert tags.acid is not None and tags.acid.beats == 6  # 3 s at 120 BPM
    assert tags.smpl is not None and (tags.smpl.loops[0].start, tags.smpl.loops[0].end) == (0, 3 * 48000 - 1)
    names = set()
    for pitch in ("0", "5"):
        code, stdout, _ = _run(["generate", "808 bass", "--seed", "5", "--pitch", pitch, "--out", str(tmp_path),
                                "--quiet"], capsys)
        assert code == 0
        names.add(Path(stdout.strip()).name)
    assert len(names) == 2, names  # the shifted file did not overwrite the plain one


def test_out_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, stderr = _run(["generate", "kick", "--out", str(blocker)], capsys)
    assert code == 2 and "expected a folder" in stderr
    # a folder that cannot be made is refused before anything runs, on one line
    code, stdout, stderr = _run(["generate", "kick", "--out", str(blocker / "samples")], capsys)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "expected a folder this user can write" in stderr
    assert not (Path(os.environ["LOOPBRIDGE_HOME"]) / "store").exists()
