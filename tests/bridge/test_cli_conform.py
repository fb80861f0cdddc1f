"""``loopbridge conform``: the user's own files (real recordings and files the tests write) fitted to a tempo,
stored, listed in the history and fitted again to a new tempo without the original file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopbridge.bridge.cli import main
from loopbridge.engine.conform import read_wav_tags
from loopbridge.engine.request import Kind
from loopbridge.engine.user_audio import default_kind

from tests.engine.conform.signals import click_track, drum_pattern, kick, onset_errors_ms

SONIC_PI = Path("/usr/share/sonic-pi/samples")
AMEN = SONIC_PI / "loop_amen.flac"
#: loop_amen holds one bar of four beats: its tempo from its length (1.753 s)
AMEN_BPM = 4 * 60.0 / sf.info(str(AMEN)).duration if AMEN.is_file() else 0.0

needs_sonic_pi = pytest.mark.skipif(not AMEN.is_file(),
                                    reason="Debian's sonic-pi-samples is not installed (scripts/test.sh installs it)")


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out.split(), err


def _write(path: Path, audio: np.ndarray, rate: int, **options: str) -> Path:
    sf.write(str(path), audio.T, rate, **options)
    return path


@needs_sonic_pi
def test_a_real_loop_fitted_to_two_bars_with_its_tempo_known(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["conform", str(AMEN), "--bpm", "120", "--bars", "2", "--beats-per-bar", "4",
                           "--sample-rate", "44100", "--source-bpm", f"{AMEN_BPM:.4f}", "--downbeat", "0",
                           "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    (path,) = map(Path, out)
    assert path.name.startswith("loop-amen_loop_120bpm_2bars_44.1kHz_")
    info = sf.info(str(path))
    assert (info.samplerate, info.subtype) == (44100, "PCM_24")
    assert info.frames == round(2 * 4 * 60 / 120 * 44100)  # two bars to the sample
    tags = read_wav_tags(path)
    assert tags.acid is not None and not tags.acid.one_shot
    assert tags.acid.tempo_bpm == pytest.approx(120.0) and tags.acid.beats == 8
    assert "warning" not in err  # a tempo given is not doubted


@needs_sonic_pi
def test_real_recordings_in_one_call_each_its_own_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Loops and a one-shot from Sonic Pi's recordings: the kind is found for each (a kick is a one-shot)."""
    files = [AMEN, SONIC_PI / "loop_garzul.flac", SONIC_PI / "drum_heavy_kick.flac"]
    code, out, err = _run(["conform", *map(str, files), "--bpm", "100", "--bars", "1", "--out",
                           str(tmp_path / "out")], capsys)
    assert code == 0, err
    names = [Path(p).name for p in out]
    assert [n.split("_")[:2] for n in names] == [["loop-amen", "loop"], ["loop-garzul", "loop"],
                                                 ["drum-heavy-kick", "one-shot"]]
    for path in map(Path, out[:2]):
        assert sf.info(str(path)).frames == round(4 * 60 / 100 * 48000)
    kick_tags = read_wav_tags(Path(out[2]))
    assert kick_tags.acid is not None and kick_tags.acid.one_shot


def test_a_written_loop_at_its_own_tempo_lands_on_the_new_grid(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A drum loop at 100 BPM, two bars, as FLAC: with its bars given, its tempo is found exactly and each
    beat lands on the 125 BPM grid."""
    source = _write(tmp_path / "groove.flac", drum_pattern(48000, 100.0, 2, seed=3), 48000)
    code, out, err = _run(["conform", str(source), "--bpm", "125", "--beats", "8", "--source-bars", "2",
                           "--out", str(tmp_path / "out"), "--store", str(tmp_path / "store")], capsys)
    assert code == 0, err
    (path,) = map(Path, out)
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert audio.shape[0] == round(8 * 60 / 125 * 48000)
    errors = onset_errors_ms(audio.T, rate, 125.0, 8)
    assert np.abs(errors).max() <= 5.0, errors
    code, out, err = _run(["history", "--json", "--store", str(tmp_path / "store")], capsys)
    (entry,) = json.loads(" ".join(out))
    assert entry["model"] == "file" and entry["prompt"] == "groove" and entry["kind"] == "loop"
    assert entry["info"]["beats"] == 8.0  # two bars of four: the tempo estimate's prior


def test_history_lists_it_and_recall_fits_it_again_without_the_file(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(tmp_path / "clicks.wav", click_track(44100, 90.0, 8), 44100)
    store = str(tmp_path / "store")
    code, out, err = _run(["conform", str(source), "--bpm", "120", "--bars", "2", "--source-bpm", "90",
                           "--out", str(tmp_path / "a"), "--store", store], capsys)
    assert code == 0, err
    first = Path(out[0])
    code, out, err = _run(["history", "--store", store], capsys)
    assert code == 0
    key_prefix = out[0]
    assert out[1:3] == ["file", "loop"] and "'clicks'" in out
    assert first.stem.endswith(key_prefix[:8])  # the name says what recall takes
    source.unlink()  # the original is gone: the store has what it needs
    code, out, err = _run(["recall", key_prefix, "--bpm", "100", "--bars", "2", "--out", str(tmp_path / "b"),
                           "--store", store], capsys)
    assert code == 0, err
    (again,) = map(Path, out)
    assert "_100bpm_2bars_" in again.name
    audio, rate = sf.read(str(again), dtype="float32", always_2d=True)
    assert audio.shape[0] == round(2 * 4 * 60 / 100 * 48000)
    assert np.abs(onset_errors_ms(audio.T, rate, 100.0, 8)).max() <= 5.0
    tags = read_wav_tags(again)
    assert tags.acid is not None and tags.acid.tempo_bpm == pytest.approx(100.0)


def test_several_files_one_bad_the_others_done(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path / "hit.aiff", kick(48000)[None, :].astype(np.float32), 48000)
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    missing = tmp_path / "missing.flac"
    code, out, err = _run(["conform", str(not_audio), str(good), str(missing), "--bpm", "128",
                           "--out", str(tmp_path / "out")], capsys)
    assert code == 2  # bad input, and said so per file
    assert [Path(p).name.split("_")[:2] for p in out] == [["hit", "one-shot"]]
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"loopbridge: error: {not_audio}: ") and "cannot be read as audio" in lines[0]
    assert lines[1].startswith(f"loopbridge: error: {missing}: ") and "not a readable file" in lines[1]


def test_bad_options_one_line_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(tmp_path / "loop.wav", click_track(48000, 120.0, 4), 48000)
    out_dir = tmp_path / "out"
    for args, named in ((["--source-bpm", "5"], "source_tempo_bpm=5.0"), (["--downbeat", "9"], "source_downbeat_s=9.0"),
                        (["--kind", "kit"], "kind='kit'"), (["--source-bars", "0"], "source_bars=0.0"),
                        (["--warp", "fast"], "warp='fast'")):
        code, out, err = _run(["conform", str(source), "--bpm", "120", *args, "--out", str(out_dir)], capsys)
        assert code == 2 and out == [], err
        assert named in err and "expected" in err
    code, out, err = _run(["conform", str(source), "--out", str(out_dir)], capsys)
    assert code == 2 and "--bpm" in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


@needs_sonic_pi
def test_the_warp_mode_of_a_loop_chosen_for_it_or_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A drum break takes the beats mode under auto; the default (complex) is another file (and
    ``--warp`` with a bad mode names it and the modes)."""
    from loopbridge.engine.store import RenderStore

    store = tmp_path / "store"
    files = {}
    for warp in ("auto", "complex"):
        code, out, err = _run(["conform", str(AMEN), "--bpm", "150", "--bars", "1", "--sample-rate", "44100",
                               "--warp", warp, "--out", str(tmp_path / warp), "--store", str(store)], capsys)
        assert code == 0, err
        (files[warp],) = map(Path, out)
    assert files["auto"].read_bytes() != files["complex"].read_bytes()
    opened = RenderStore(store)
    try:
        made = {sample.info["warp"]: sample.info["warp_rule"] for sample in opened.latest_samples(limit=10)}
    finally:
        opened.close()
    assert made == {"beats": "no pitch heard", "complex": "the default"}
    code, out, err = _run(["conform", str(AMEN), "--bpm", "150", "--warp", "Beats", "--out", str(tmp_path / "x")],
                          capsys)
    assert code == 2 and out == []
    assert "warp='Beats'" in err and "auto, beats, complex" in err


def test_a_loop_without_a_pulse_gets_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noise = np.random.default_rng(5).standard_normal((1, 4 * 48000)).astype(np.float32) * 0.2
    source = _write(tmp_path / "noise.ogg", noise, 48000, format="OGG", subtype="VORBIS")
    code, out, err = _run(["conform", str(source), "--kind", "loop", "--bpm", "120", "--bars", "1",
                           "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and len(out) == 1
    (warning,) = [line for line in err.splitlines() if "warning" in line]
    assert str(source) in warning and "low confidence" in warning
    assert "--source-bpm" in warning and "--downbeat" in warning


def test_the_default_kind_tells_a_hit_from_a_loop() -> None:
    rate = 48000
    hit = kick(rate)[None, :]
    assert default_kind(hit, rate) is Kind.ONE_SHOT  # short
    long_hit = np.concatenate([hit, np.zeros((1, rate))], axis=1)  # 1.3 s dying away
    assert default_kind(long_hit, rate) is Kind.ONE_SHOT
    loop = drum_pattern(rate, 120.0, 1)  # 2 s of running drums
    assert default_kind(loop, rate) is Kind.LOOP
    held = np.tile(np.sin(np.arange(rate * 2) * 2 * np.pi * 110 / rate), (1, 1)).astype(np.float32)
    assert default_kind(held, rate) is Kind.LOOP  # a held note does not die away: say --kind one-shot
    assert default_kind(drum_pattern(rate, 120.0, 4), rate) is Kind.LOOP  # longer than any one-shot
