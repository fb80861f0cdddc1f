"""Training the default model on a folder of one-shots: labels, augmentation, and the whole command on
real recordings (the hydrogen-drumkits package's kits, as a producer's sample folder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopbridge.engine.models.default import DefaultModel
from loopbridge.engine.models.default.augment import augment, variants
from loopbridge.engine.models.default.classes import CLASSES
from loopbridge.engine.models.default.folder import (
    UnlabelledFilesError,
    class_for_name,
    label_folder,
    prepare_one_shot,
)
from loopbridge.engine.models.default.spectral import NATIVE_SAMPLES
from loopbridge.engine.models.default.train import main
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.request import GenerateRequest
from safetensors.torch import load_file

HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
needs_hydrogen = pytest.mark.skipif(not HYDROGEN.is_dir(), reason="hydrogen-drumkits is not installed "
                                    "(scripts/test.sh installs it)")
TINY = ["--steps", "2", "--batch-size", "4", "--per-class", "3", "--replay", "1", "--threads", "1",
        "--device", "cpu", "--checkpoint-every", "1"]


@pytest.mark.parametrize(("name", "label"), [
    ("Kick-Soft", "kick"), ("BD_01", "kick"), ("bassdrum-4mics-br-stereo-soft", "kick"), ("PearlKick-Hard", "kick"),
    ("SN3_02", "snare"), ("sd", "snare"), ("EE_Snare_Low", "snare"), ("Kicks", "kick"),
    ("HH2_03", "closed hat"), ("hihat-closed", "closed hat"), ("closed-hat", "closed hat"), ("CHH", "closed hat"),
    ("HiHatOpen", "open hat"), ("hihat-open", "open hat"), ("hhopen", "open hat"), ("open_hat", "open hat"),
    ("EE_Hat_Op_Dirty", "open hat"), ("Crash18", "open hat"), ("RD2_01", "open hat"),
    ("TomHigh", "tom"), ("floortom", "tom"), ("HandClap-Med", "clap"), ("Amp_Clap", "clap"),
    ("Djembe1 Bass", "perc"), ("Cowbell-Soft", "perc"), ("RimClick", "perc"), ("CB_02", "perc"),
    ("808 bass long", "bass"), ("Pluck_C3", "pluck"), ("Rhodes chord", "pluck"), ("riser 8 bars", "texture"),
    ("99930__menegass__noise-tom0", "tom"), ("Maraca-Hard", "perc"), ("drum-cymbal-closed", "closed hat"),
])
def test_file_and_folder_names_name_their_class(name: str, label: str) -> None:
    assert class_for_name(name) == label


@pytest.mark.parametrize("name", ["29800__stomachache__3", "beats_01", "emptySample", "Take 12"])
def test_names_without_a_class_word_give_none(name: str) -> None:
    assert class_for_name(name) is None


def _tone(path: Path, seconds: float = 0.3, rate: int = 48000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.5 * np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.1)).astype(np.float32), rate)


def test_sub_folders_label_their_files_and_unlabelled_files_are_listed(tmp_path: Path) -> None:
    for folder in ("Kicks", "closed-hat", "hats", "misc"):
        (tmp_path / folder).mkdir()
    _tone(tmp_path / "Kicks" / "take 1.wav")
    _tone(tmp_path / "closed-hat" / "a.flac")
    _tone(tmp_path / "hats" / "open 1.wav")  # an open hat in a hats folder
    _tone(tmp_path / "closed-hat" / "drum-cymbal-pedal.wav")  # a closed hat, though a cymbal
    _tone(tmp_path / "misc" / "snare 2.aiff")
    _tone(tmp_path / "misc" / "take 7.wav")
    _tone(tmp_path / "misc" / "weird.ogg")
    (tmp_path / "misc" / "notes.txt").write_text("not audio")
    with pytest.raises(UnlabelledFilesError) as caught:
        label_folder(tmp_path)
    message = str(caught.value)
    assert "misc/take 7.wav" in message and "misc/weird.ogg" in message and "notes.txt" not in message
    assert "kick: kick, bd" in message and "--skip-unlabelled" in message
    labelled, unlabelled = label_folder(tmp_path, skip_unlabelled=True)
    assert {str(i.path.relative_to(tmp_path)): i.label for i in labelled} == {
        "Kicks/take 1.wav": "kick", "closed-hat/a.flac": "closed hat",
        "closed-hat/drum-cymbal-pedal.wav": "closed hat", "hats/open 1.wav": "open hat",
        "misc/snare 2.aiff": "snare"}
    assert len(unlabelled) == 2
    with pytest.raises(ValueError, match="is not a folder"):
        label_folder(tmp_path / "nope")


def test_a_recording_is_started_at_its_onset_resampled_and_normalized() -> None:
    rate = 48000
    audio = np.zeros((2, rate), dtype=np.float32)
    audio[:, 4800:] = 0.2 * np.sin(np.arange(rate - 4800) / 5.0)
    prepared = prepare_one_shot(audio, rate)
    assert prepared is not None and prepared.shape == (NATIVE_SAMPLES,)
    assert np.max(np.abs(prepared)) == pytest.approx(0.9, abs=1e-4)
    assert np.argmax(np.abs(prepared) > 0.05) < 100  # the 100 ms of silence before the onset is gone
    assert prepare_one_shot(np.zeros((1, 1000), dtype=np.float32), rate) is None


def test_augmentation_is_deterministic_from_the_seed_and_varies() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(NATIVE_SAMPLES) / 44100
    kick = (np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.2) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    first = augment(kick, np.random.default_rng((0, 1, 1)))
    again = augment(kick, np.random.default_rng((0, 1, 1)))
    other = augment(kick, np.random.default_rng((0, 1, 2)))
    assert first.shape == (NATIVE_SAMPLES,) and np.array_equal(first, again)
    assert not np.allclose(first, other, atol=1e-3)
    assert np.max(np.abs(first)) == pytest.approx(0.9, abs=1e-4)
    audio, labels = variants(np.stack([kick, kick[::-1].copy()]), np.array([0, 3]), per_class=4, seed=0)
    assert audio.shape == (8, NATIVE_SAMPLES) and sorted(labels.tolist()) == [0, 0, 0, 0, 3, 3, 3, 3]
    assert np.array_equal(audio[0], kick)  # the recordings themselves come first
    # a class of few recordings gets at most max_variants variants of each, not per_class near-copies
    few, few_labels = variants(kick[None], np.array([0]), per_class=400, seed=0, max_variants=2)
    assert few.shape == (3, NATIVE_SAMPLES) and few_labels.tolist() == [0, 0, 0]


def test_a_class_of_its_own_number_is_stretched_to_it_and_the_others_are_unchanged() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(NATIVE_SAMPLES) / 44100
    recordings = np.stack([(np.sin(2 * np.pi * f * t) * np.exp(-t / 0.2) + 0.05 * rng.standard_normal(t.size))
                           for f in (55.0, 60.0, 200.0, 210.0, 220.0)]).astype(np.float32)
    labels = np.array([0, 0, 8, 8, 8])  # kick, pluck
    plain, plain_labels = variants(recordings, labels, per_class=6, seed=0)
    assert np.bincount(plain_labels).tolist()[::8] == [6, 6]
    # 0 (or any number up to the class's recordings) keeps them as they are
    for kept in (0, 2):
        audio, out_labels = variants(recordings, labels, per_class=6, seed=0, class_counts={8: kept})
        assert np.bincount(out_labels).tolist()[::8] == [6, 3]
        assert np.array_equal(audio[:5], recordings)
        # the kicks' variants are the very ones drawn without the plucks' own number
        assert np.array_equal(audio[out_labels == 0], plain[plain_labels == 0])
    audio, out_labels = variants(recordings, labels, per_class=6, seed=0, class_counts={0: 4, 8: 9})
    assert np.bincount(out_labels).tolist()[::8] == [4, 9]
    assert np.array_equal(audio[out_labels == 0], plain[plain_labels == 0][:4])


def test_the_command_prepares_each_class_to_its_own_number(tmp_path: Path) -> None:
    for folder, count in (("Kicks", 2), ("Snares", 3)):
        (tmp_path / "samples" / folder).mkdir(parents=True)
        for i in range(count):
            _tone(tmp_path / "samples" / folder / f"take {i}.wav", seconds=0.2 + 0.1 * i)
    out = tmp_path / "model"
    assert main(["--data", str(tmp_path / "samples"), *TINY[:4], "--per-class", "5", "--per-class", "snare=0",
                 "--threads", "1", "--device", "cpu", "--out", str(out)]) == 0
    (cache,) = (out / "training").glob("data-*.npz")
    with np.load(cache) as data:
        assert data["mels"].shape[0] == 8
        assert {name: int((data["labels"] == CLASSES.index(name)).sum()) for name in ("kick", "snare")} == {
            "kick": 5, "snare": 3}
    training = json.loads((out / "config.json").read_text(encoding="utf-8"))["training"]
    assert training["per_class"] == 5 and training["class_per_class"] == {"snare": 0}
    assert json.loads(training["data_summary"])["training_items"] == 8
    # the same folder and --out with every class at 5: not the cached data, the snares stretched too
    assert main(["--data", str(tmp_path / "samples"), *TINY[:4], "--per-class", "5", "--threads", "1",
                 "--device", "cpu", "--out", str(out)]) == 0
    assert len(list((out / "training").glob("data-*.npz"))) == 2
    training = json.loads((out / "config.json").read_text(encoding="utf-8"))["training"]
    assert json.loads(training["data_summary"])["training_items"] == 10 and "class_per_class" not in training


@needs_hydrogen
def test_the_hydrogen_kits_label_except_the_files_named_without_a_class() -> None:
    with pytest.raises(UnlabelledFilesError) as caught:
        label_folder(HYDROGEN)
    assert "Audiophob/29800__stomachache__3.wav" in str(caught.value)
    labelled, unlabelled = label_folder(HYDROGEN, skip_unlabelled=True)
    labels = {item.label for item in labelled}
    assert {"kick", "snare", "clap", "closed hat", "open hat", "tom", "perc"} <= labels
    # the unlabelled are mostly one kit's numbered slices (rumpf_kit_z01_h2/beats_01-10.flac...)
    assert len(labelled) > 3 * len(unlabelled)
    assert sum("rumpf_kit" not in str(p) for p in unlabelled) < 40


def _kick_folder(root: Path) -> Path:
    """A producer's kick folder: the hydrogen kits' kicks, copied as they are."""
    kicks = root / "My Kicks"
    kicks.mkdir(parents=True)
    for path in sorted(HYDROGEN.glob("*/*")):
        if path.suffix.lower() in (".wav", ".flac", ".aiff") and class_for_name(path.stem) == "kick":
            shutil.copy(path, kicks / f"{path.parent.name}-{path.name}")
        if len(list(kicks.iterdir())) >= 6:
            break
    return kicks


@needs_hydrogen
def test_train_it_on_my_kick_folder_in_one_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from loopbridge.bridge.client import Client

    from tests.bridge.conftest import start_served, stop_served

    home = tmp_path / "home"
    monkeypatch.setenv("LOOPBRIDGE_HOME", str(home))
    kicks = _kick_folder(tmp_path / "samples")
    models = home / "models"
    models.mkdir(parents=True)
    served = start_served(models, tmp_path / "engine", default_model="none")
    try:
        with Client(served.zmq.endpoint) as client:
            assert "My Kicks" not in [m["id"] for m in client.models()]
        # interrupted after one step, then resumed: the default output is where the engine finds models
        assert main(["--data", str(kicks), "--init", "default", *TINY, "--stop-after", "1"]) == 0
        model_dir = models / "My Kicks"
        assert (model_dir / "training" / "checkpoint.pt").is_file()
        assert not (model_dir / "loopbridge.json").exists()  # not listed before it is trained
        assert main(["--data", str(kicks), "--init", "default", *TINY, "--resume"]) == 0
        assert json.loads((model_dir / "loopbridge.json").read_text(encoding="utf-8")) == {"family": "default"}
        with Client(served.zmq.endpoint) as client:
            listed = {m["id"]: m for m in client.models()}
        assert listed["My Kicks"]["capabilities"]["family"] == "default"
    finally:
        stop_served(served)
    # and `loopbridge models` lists it
    from loopbridge.bridge.cli import main as cli_main

    capsys.readouterr()
    assert cli_main(["models", "--json"]) == 0
    (row,) = [m for m in json.loads(capsys.readouterr().out) if m["id"] == "My Kicks"]
    assert row["source"] == "folder" and row["family"] == "default"
    spec = ModelRegistry(hf_cache=tmp_path / "no-hub").resolve("My Kicks")
    assert spec.family == "default" and spec.path == model_dir
    model = DefaultModel.load(model_dir)
    out = model.generate([GenerateRequest(prompt="kick", steps=2, seed=3)])[0]
    assert out.audio.shape == (1, 44100) and np.isfinite(out.audio).all() and np.abs(out.audio).max() > 0
    training = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["training"]
    assert training["init"] == "default" and training["steps"] == 2
    assert json.loads(training["data_summary"])["recordings"] == {"kick": 6}
    # fine-tuned: the weights moved from the shipped ones, but not far in two steps
    from loopbridge.engine.models.registry import EMBEDDED_DEFAULT_DIR

    shipped = load_file(str(EMBEDDED_DEFAULT_DIR / "model.safetensors"))
    tuned = load_file(str(model_dir / "model.safetensors"))
    assert shipped.keys() == tuned.keys()
    assert any(not shipped[k].equal(tuned[k]) for k in shipped)


@needs_hydrogen
def test_a_resumed_fine_tune_ends_where_an_unbroken_one_ends(tmp_path: Path) -> None:
    kicks = _kick_folder(tmp_path / "samples")
    assert main(["--data", str(kicks), "--init", "default", *TINY, "--out", str(tmp_path / "a")]) == 0
    assert main(["--data", str(kicks), "--init", "default", *TINY, "--out", str(tmp_path / "b"),
                 "--stop-after", "1"]) == 0
    assert main(["--data", str(kicks), "--init", "default", *TINY, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    for name, tensor in a.items():
        assert tensor.equal(b[name]), name


def test_folder_errors_exit_with_2_and_say_what_is_accepted(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "loose").mkdir()
    _tone(tmp_path / "loose" / "take 3.wav")
    assert main(["--data", str(tmp_path / "loose"), *TINY, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "take 3.wav" in err and "accepted" in err
    assert main(["--data", str(tmp_path / "missing"), *TINY, "--out", str(tmp_path / "m")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "loose"), "--init", str(tmp_path), *TINY, "--out", str(tmp_path / "m")]) == 2
    assert "--init=" in capsys.readouterr().err
    assert main(["--name", "x", *TINY, "--out", str(tmp_path / "m")]) == 2
    assert "without --data" in capsys.readouterr().err
