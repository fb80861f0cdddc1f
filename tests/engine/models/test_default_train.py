"""The training command: reproducible from a seed, resumable, exports a loadable model folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from loopbridge.engine.models.default import DefaultModel
from loopbridge.engine.models.default.train import TRAIN_CORPUS_SEED, class_weights, corpus_mels, main
from loopbridge.engine.request import GenerateRequest
from safetensors.torch import load_file

TINY = ["--per-class", "1", "--batch-size", "4", "--steps", "4", "--checkpoint-every", "2",
        "--render-workers", "1", "--threads", "1", "--device", "cpu", "--data-norm", "corpus", "--min-snr", "5"]


def test_a_resumed_run_ends_where_an_unbroken_run_ends(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path / "straight"), *TINY]) == 0
    assert main(["--out", str(tmp_path / "broken"), *TINY, "--stop-after", "2"]) == 0
    assert not (tmp_path / "broken" / "weights" / "model.safetensors").exists()
    assert main(["--out", str(tmp_path / "broken"), *TINY, "--resume"]) == 0
    straight = load_file(str(tmp_path / "straight" / "weights" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "broken" / "weights" / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    for name, tensor in straight.items():
        assert tensor.equal(resumed[name]), name
    model = DefaultModel.load(tmp_path / "straight" / "weights")
    out = model.generate([GenerateRequest(prompt="clap", steps=2)])[0]
    assert out.audio.shape == (1, 44100)
    # the network was trained on the corpus's log-mels normalized by their own mean and spread
    mels, _ = corpus_mels(TRAIN_CORPUS_SEED, 1, cache_dir=tmp_path / "straight")
    assert model.config.data_mean == pytest.approx(float(mels.astype(np.float64).mean()), abs=1e-4)
    assert model.config.data_std == pytest.approx(float(mels.astype(np.float64).std()), abs=1e-4)
    training = json.loads((tmp_path / "straight" / "weights" / "config.json").read_text(encoding="utf-8"))["training"]
    assert training["steps"] == 4 and training["wall_s"] > 0 and training["cpu_s"] > 0
    assert json.loads((tmp_path / "broken" / "weights" / "config.json").read_text(encoding="utf-8"))[
        "training"]["wall_s"] > 0


def test_bad_arguments_exit_with_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--steps", "0"]) == 2
    assert "--steps=0" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "fresh"), "--resume"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--out", str(tmp_path), *TINY, "--stop-after", "1"]) == 0
    assert main(["--out", str(tmp_path), *TINY[:-6], "--steps", "9", "--resume"]) == 2
    assert "trained with" in capsys.readouterr().err


def test_class_weights_are_read_by_class_name_and_bad_ones_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert class_weights(["pluck=2", "closed-hat=1.5", "open_hat=0.5"]) == {
        "pluck": 2.0, "closed hat": 1.5, "open hat": 0.5}
    assert class_weights([]) == {}
    for bad in ("pluck", "flute=2", "pluck=0", "pluck=-1", "pluck=x", "pluck=inf"):
        with pytest.raises(ValueError, match="--class-weight"):
            class_weights([bad])
        assert main(["--out", str(tmp_path), *TINY, "--class-weight", bad]) == 2
        err = capsys.readouterr().err
        assert repr(bad) in err and "kick" in err


def test_a_class_weighted_run_draws_other_batches_and_records_its_weights(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path / "plain"), *TINY]) == 0
    assert main(["--out", str(tmp_path / "weighted"), *TINY, "--class-weight", "kick=50"]) == 0
    plain = load_file(str(tmp_path / "plain" / "weights" / "model.safetensors"))
    weighted = load_file(str(tmp_path / "weighted" / "weights" / "model.safetensors"))
    assert any(not tensor.equal(weighted[name]) for name, tensor in plain.items())
    config = json.loads((tmp_path / "weighted" / "weights" / "config.json").read_text(encoding="utf-8"))
    assert config["training"]["class_weight"] == ["kick=50"]
    assert "class_weight" not in json.loads(
        (tmp_path / "plain" / "weights" / "config.json").read_text(encoding="utf-8"))["training"]
