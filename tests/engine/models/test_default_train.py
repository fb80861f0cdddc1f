"""The training command: reproducible from a seed, resumable, exports a loadable model folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from loopbridge.engine.models.default import DefaultModel
from loopbridge.engine.models.default.train import (
    TRAIN_CORPUS_SEED,
    body_level_error,
    class_weights,
    corpus_mels,
    frame_weights,
    main,
    onset_rise_excess,
    per_class_counts,
    training_error,
)
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


def test_per_class_numbers_are_read_by_class_name_and_bad_ones_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert per_class_counts([]) == (400, {})
    assert per_class_counts(["1200", "pluck=0", "closed-hat=30", "open_hat=5"]) == (
        1200, {"pluck": 0, "closed hat": 30, "open hat": 5})
    # the last number for every class counts, wherever the classes' own numbers stand
    assert per_class_counts(["kick=7", "300", "600"]) == (600, {"kick": 7})
    for bad in ("0", "-3", "x", "1.5", "pluck=-1", "pluck=x", "pluck=", "flute=3", "=3"):
        with pytest.raises(ValueError, match="--per-class"):
            per_class_counts([bad])
        assert main(["--out", str(tmp_path), *TINY, "--per-class", bad]) == 2
        err = capsys.readouterr().err
        assert repr(bad) in err and "whole number" in err
        if "=" in bad:
            assert "kick" in err and "0: the class's recordings as they are" in err
    # a class's own number is for a folder's recordings: the synthesized corpus renders every class alike
    assert main(["--out", str(tmp_path), *TINY, "--per-class", "pluck=0"]) == 2
    assert "--per-class CLASS=N is not accepted without --data" in capsys.readouterr().err


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


def test_the_onset_weight_weights_the_first_frames_loss_as_stated() -> None:
    weights = frame_weights(88, 2, 8.0)
    assert weights.shape == (88,)
    assert weights.mean().item() == pytest.approx(1.0)
    assert weights[0].item() == pytest.approx(8.0 * weights[2].item())
    assert torch.equal(weights[0], weights[1]) and torch.equal(weights[2], weights[87])
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(3, 80, 88, generator=generator)
    noisy, clean = torch.randn(3, 80, 88, generator=generator), torch.randn(3, 80, 88, generator=generator)
    alpha = torch.tensor([0.9, 0.5, 0.1])
    plain_weights = frame_weights(88, 2, 1.0)
    # the same error everywhere: the weighted loss is that error
    even = target + 0.5
    assert torch.allclose(training_error(even, target, noisy, clean, alpha, weights), torch.full((3,), 0.25))
    # an error in the first frame alone counts 8 times what the same error in frame 40 counts
    at_onset, later = target.clone(), target.clone()
    at_onset[..., 0] += 1.0
    later[..., 40] += 1.0
    onset_loss = training_error(at_onset, target, noisy, clean, alpha, weights)
    later_loss = training_error(later, target, noisy, clean, alpha, weights)
    assert torch.allclose(onset_loss, 8.0 * later_loss)
    assert torch.allclose(training_error(at_onset, target, noisy, clean, alpha, plain_weights),
                          training_error(at_onset, target, noisy, clean, alpha, None))
    # weight 1 on frames past the first K is the plain loss there
    assert torch.allclose(training_error(later, target, noisy, clean, alpha, plain_weights),
                          (later - target).pow(2).mean(dim=(1, 2)))


def test_the_onset_rise_term_counts_only_a_rise_beyond_the_data() -> None:
    clean = torch.zeros(2, 80, 88)
    clean[0, :, 0] = 0.2  # the first one-shot's first frame rises 0.2 over its second
    estimate = clean.clone()
    assert torch.equal(onset_rise_excess(estimate, clean), torch.zeros(2))
    estimate[:, :, 0] -= 0.3  # rising less than the data: no penalty
    assert torch.equal(onset_rise_excess(estimate, clean), torch.zeros(2))
    estimate = clean.clone()
    estimate[:, :40, 0] += 0.5  # half the bands rise 0.5 beyond the data
    assert torch.allclose(onset_rise_excess(estimate, clean), torch.full((2,), 0.125))
    # through the v-prediction: the term reads the clean estimate sqrt(a) x - sqrt(1 - a) v
    alpha = torch.tensor([0.64, 0.64])
    noise = torch.randn(2, 80, 88, generator=torch.Generator().manual_seed(1))
    noisy = 0.8 * clean + 0.6 * noise
    target = 0.8 * noise - 0.6 * clean
    exact = training_error(target, target, noisy, clean, alpha, None, rise_weight=10.0)
    assert torch.allclose(exact, torch.zeros(2), atol=1e-10)
    overshoot = target.clone()
    overshoot[:, :40, 0] -= 0.5 / 0.6  # the clean estimate's first frame 0.5 louder in half the bands
    plain = training_error(overshoot, target, noisy, clean, alpha, None)
    assert torch.allclose(training_error(overshoot, target, noisy, clean, alpha, None, rise_weight=10.0),
                          plain + 10.0 * 0.125, atol=1e-5)


def test_an_onset_weighted_run_trains_otherwise_and_records_its_settings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for flag, bad in (("--onset-weight", "0"), ("--onset-weight", "-2"), ("--onset-weight", "nan"),
                      ("--onset-frames", "0"), ("--onset-frames", "89"), ("--onset-rise-weight", "-1"),
                      ("--onset-rise-weight", "inf")):
        assert main(["--out", str(tmp_path / "bad"), *TINY, flag, bad]) == 2
        assert f"{flag}={float(bad) if 'frames' not in flag else int(bad)}" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "plain"), *TINY]) == 0
    assert main(["--out", str(tmp_path / "onset"), *TINY, "--onset-weight", "8", "--onset-frames", "3",
                 "--onset-rise-weight", "2"]) == 0
    plain = load_file(str(tmp_path / "plain" / "weights" / "model.safetensors"))
    onset = load_file(str(tmp_path / "onset" / "weights" / "model.safetensors"))
    assert any(not tensor.equal(onset[name]) for name, tensor in plain.items())
    training = json.loads((tmp_path / "onset" / "weights" / "config.json").read_text(encoding="utf-8"))["training"]
    assert (training["onset_weight"], training["onset_frames"], training["onset_rise_weight"]) == (8.0, 3, 2.0)
    plain_training = json.loads(
        (tmp_path / "plain" / "weights" / "config.json").read_text(encoding="utf-8"))["training"]
    assert (plain_training["onset_weight"], plain_training["onset_rise_weight"]) == (1.0, 0.0)
    # a checkpoint keeps the onset settings it was trained with: resumed without them, it is refused
    assert main(["--out", str(tmp_path / "part"), *TINY, "--onset-weight", "8", "--stop-after", "2"]) == 0
    assert main(["--out", str(tmp_path / "part"), *TINY, "--resume"]) == 2
    assert "trained with" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "part"), *TINY, "--onset-weight", "8", "--resume"]) == 0


def test_the_time_padding_travels_from_the_command_to_the_exported_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["--out", str(tmp_path / "bad"), *TINY, "--time-padding", "mirror"])
    assert refused.value.code == 2
    assert "--time-padding: invalid choice: 'mirror'" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "rep"), *TINY, "--time-padding", "replicate"]) == 0
    data = json.loads((tmp_path / "rep" / "weights" / "config.json").read_text(encoding="utf-8"))
    assert data["time_padding"] == "replicate" and data["training"]["time_padding"] == "replicate"
    model = DefaultModel.load(tmp_path / "rep" / "weights")
    assert model.config.time_padding == "replicate"
    assert model.network.conv_in.padding_mode == "replicate"
    # a fine-tune without the flag keeps its initial model's padding
    assert main(["--out", str(tmp_path / "again"), *TINY, "--init", str(tmp_path / "rep" / "weights")]) == 0
    again = json.loads((tmp_path / "again" / "weights" / "config.json").read_text(encoding="utf-8"))
    assert again["time_padding"] == "replicate" and "time_padding" not in again["training"]


def _one_shots() -> torch.Tensor:
    """Two real one-shots' scaled log-mels (a rendered kick and perc) ``[2, 80, 88]``."""
    mels, labels = corpus_mels(TRAIN_CORPUS_SEED, 1)
    assert labels[[0, 6]].tolist() == [0, 6]
    return torch.from_numpy(mels[[0, 6]].astype(np.float32))


def test_the_body_term_counts_the_loudness_per_frame_past_the_onset() -> None:
    clean = _one_shots()
    assert torch.equal(body_level_error(clean.clone(), clean, 3), torch.zeros(2))
    quiet = clean.clone()
    quiet[..., 3:] -= 0.4  # the body 16 dB quieter in every band (a unit is 40 dB)
    assert torch.allclose(body_level_error(quiet, clean, 3), torch.full((2,), 0.16), atol=1e-6)
    # half the body's frames: half the mean
    half = clean.clone()
    half[..., 3 + 85 // 2 + 1:] -= 0.4
    assert torch.allclose(body_level_error(half, clean, 3), torch.full((2,), 0.16 * 42 / 85), atol=1e-6)
    # the onset frames before the start do not count, at any level
    onset = clean.clone()
    onset[..., :3] += 1.0
    assert torch.equal(body_level_error(onset, clean, 3), torch.zeros(2))
    assert torch.allclose(body_level_error(onset, clean, 0), torch.full((2,), 3 / 88), atol=1e-6)
    # a spectrum tilted about the right loudness is the plain loss's, not this term's
    tilted = clean.clone()
    tilted[:, :40, 3:] += 0.3
    tilted[:, 40:, 3:] -= 0.3
    assert torch.allclose(body_level_error(tilted, clean, 3), torch.zeros(2), atol=1e-10)


def test_the_body_term_reads_the_clean_estimate_at_the_noise_levels_asked() -> None:
    clean = _one_shots()
    alpha = torch.tensor([0.64, 0.64])  # noise share 0.36
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
    noisy = 0.8 * clean + 0.6 * noise
    target = 0.8 * noise - 0.6 * clean
    exact = training_error(target, target, noisy, clean, alpha, None, body_weight=5.0)
    assert torch.allclose(exact, torch.zeros(2), atol=1e-10)
    quiet = target.clone()
    quiet[..., 3:] += 0.4 / 0.6  # the clean estimate's body 0.4 quieter in every band
    plain = training_error(quiet, target, noisy, clean, alpha, None)
    assert torch.allclose(training_error(quiet, target, noisy, clean, alpha, None, body_weight=5.0),
                          plain + 5.0 * 0.16, atol=1e-5)
    # the first one-shot's noise share 0.36 is within 0.5, the second's 0.84 is not
    mixed = torch.tensor([0.64, 0.16])
    gated = training_error(quiet, target, noisy, clean, mixed, None, body_weight=5.0, body_max_noise=0.5)
    ungated = training_error(quiet, target, noisy, clean, mixed, None)
    assert gated[0] > ungated[0] + 0.1 and torch.equal(gated[1], ungated[1])
    # off: the plain loss to the bit
    assert torch.equal(training_error(quiet, target, noisy, clean, alpha, None, body_weight=0.0), plain)


def test_a_body_weighted_run_trains_otherwise_and_records_its_settings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for flag, bad in (("--body-weight", "-1"), ("--body-weight", "nan"), ("--body-from", "88"),
                      ("--body-from", "-1"), ("--body-max-noise", "0"), ("--body-max-noise", "1.5")):
        assert main(["--out", str(tmp_path / "bad"), *TINY, flag, bad]) == 2
        assert f"{flag}={float(bad) if 'from' not in flag else int(bad)}" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "plain"), *TINY]) == 0
    assert main(["--out", str(tmp_path / "off"), *TINY, "--body-weight", "0", "--body-from", "5"]) == 0
    assert main(["--out", str(tmp_path / "body"), *TINY, "--body-weight", "20", "--body-from", "4",
                 "--body-max-noise", "0.9"]) == 0
    plain = load_file(str(tmp_path / "plain" / "weights" / "model.safetensors"))
    off = load_file(str(tmp_path / "off" / "weights" / "model.safetensors"))
    body = load_file(str(tmp_path / "body" / "weights" / "model.safetensors"))
    assert all(tensor.equal(off[name]) for name, tensor in plain.items())
    assert any(not tensor.equal(body[name]) for name, tensor in plain.items())
    training = json.loads((tmp_path / "body" / "weights" / "config.json").read_text(encoding="utf-8"))["training"]
    assert (training["body_weight"], training["body_from"], training["body_max_noise"]) == (20.0, 4, 0.9)
    # a checkpoint keeps the body settings it was trained with: resumed without them, it is refused
    assert main(["--out", str(tmp_path / "part"), *TINY, "--body-weight", "20", "--stop-after", "2"]) == 0
    assert main(["--out", str(tmp_path / "part"), *TINY, "--resume"]) == 2
    assert "trained with" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "part"), *TINY, "--body-weight", "20", "--resume"]) == 0
