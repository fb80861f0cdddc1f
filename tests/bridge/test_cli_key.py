"""``--key`` on ``loopbridge conform`` and ``recall``: a piano in E minor (FluidR3 General MIDI through
fluidsynth, MIDI written by ``tests/engine/conform/instruments.py``) fitted to the song's key, tagged and
named by it; a drum loop is written as it is; a bad key is one line naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopbridge.bridge.cli import main
from loopbridge.engine.conform import read_wav_tags
from loopbridge.engine.conform.key import detect_key, parse_key

from tests.engine.conform import instruments

pytestmark = pytest.mark.skipif(instruments.available() is not None, reason=str(instruments.available()))


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out.split(), err


def test_conform_and_recall_with_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = parse_key("Em")
    assert key is not None
    audio, rate = instruments.tonal_loop(key, "strings", tmp_path)
    source = tmp_path / "strings.wav"
    sf.write(str(source), audio.T, rate)
    store = ["--store", str(tmp_path / "store")]
    common = ["--bpm", "120", "--bars", "4", "--source-bpm", "120", "--sample-rate", "44100", *store]
    code, out, err = _run(["conform", str(source), *common, "--key", "G minor", "--out", str(tmp_path / "a")],
                          capsys)
    assert code == 0, err
    (path,) = map(Path, out)
    assert path.name.endswith("_Gm.wav"), path.name
    written, written_rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert written.shape[0] == audio.shape[1] and detect_key(np.ascontiguousarray(written.T), written_rate).name == "Gm"
    tags = read_wav_tags(path)
    assert tags.acid is not None and tags.acid.root_note_set and tags.acid.root_note % 12 == 7
    assert tags.smpl is not None and tags.smpl.unity_note == tags.acid.root_note
    # the history lists the file; recall fits it to another key without it
    render_key = path.stem.rsplit("_", 2)[-2]
    code, out, err = _run(["recall", render_key, "--bpm", "120", "--bars", "4", "--sample-rate", "44100",
                           "--key", "C", "--out", str(tmp_path / "b"), *store], capsys)
    assert code == 0, err
    assert Path(out[0]).name.endswith("_Am.wav"), "A minor, C major's relative, is E minor's nearest"


def test_drums_are_written_as_they_are_with_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    audio, rate = instruments.drum_loop("four on the floor", 0, tmp_path)
    source = tmp_path / "drums.wav"
    sf.write(str(source), audio.T, rate)
    common = ["--bpm", "124", "--bars", "4", "--source-bpm", "120", "--store", str(tmp_path / "store")]
    outputs = []
    for extra in ([], ["--key", "F#m"]):
        code, out, err = _run(["conform", str(source), *common, *extra, "--out", str(tmp_path / f"o{len(extra)}")],
                              capsys)
        assert code == 0, err
        outputs.append(Path(out[0]))
    assert outputs[0].read_bytes() == outputs[1].read_bytes(), "bit-exact with and without --key"


def test_a_bad_key_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["conform", str(tmp_path / "x.wav"), "--bpm", "120", "--key", "Q#"], capsys)
    assert code == 2 and out == []
    assert err.count("\n") == 1 and "key='Q#' is not accepted" in err and "A minor" in err
