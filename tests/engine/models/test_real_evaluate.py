"""``eval-default`` against real recordings: the memorization measure on known copies, and a reduced
run of the shipped model on a small corpus built from the installed Debian packages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from loopbridge.engine.models.default import evaluate, spectral
from loopbridge.engine.models.default import real_corpus as rc
from loopbridge.engine.models.default.classes import CLASSES

from .test_real_corpus import _missing

#: every class in both splits, from as few groups as will do
SUBSET = ["hydrogen-Audiophob", "hydrogen-HardElectro1", "hydrogen-Gimme-A-Hand-1.0", "hydrogen-VariBreaks",
          "hydrogen-BJA-Pacific", "sonic-pi-drum", "fluid-Synth-Bass-1", "sonic-pi-bass", "sonic-pi-guit",
          "fluid-Harp", "fluid-Pad-New-Age", "sonic-pi-ambi"]


def _bursts(seed: int, n: int) -> np.ndarray:
    """``n`` decaying noise bursts, each a different noise and decay."""
    rng = np.random.default_rng(seed)
    t = np.arange(spectral.NATIVE_SAMPLES) / spectral.SAMPLE_RATE
    decay = rng.uniform(0.05, 0.3, size=(n, 1))
    return (rng.standard_normal((n, spectral.NATIVE_SAMPLES)) * np.exp(-t / decay)).astype(np.float32)


def test_a_shifted_scaled_copy_is_memorized_and_other_sounds_are_not() -> None:
    training = _bursts(1, 6)
    training_labels = np.array([0, 0, 0, 1, 1, 1])
    shifted = np.roll(training[4], 300) * -0.5  # a copy of training recording 4, later, quieter, inverted
    shifted[:300] = 0
    other = _bursts(2, 1)[0]  # a sound of the same kind, not in the training set
    audio = np.stack([shifted, other, training[1]])
    best, index = evaluate.best_correlations(audio, np.array([1, 1, 1]), training, training_labels)
    assert best[0] > 0.95 and index[0] == 4
    assert best[1] < 0.5
    # class 1 is compared with class 1's recordings only: a copy of a class-0 recording is not found there
    assert best[2] < 0.5 and index[2] in (3, 4, 5)
    best, index = evaluate.best_correlations(audio[2:], np.array([0]), training, training_labels)
    assert best[0] == pytest.approx(1.0, abs=1e-4) and index[0] == 1


def _tones(seed: int, n: int) -> np.ndarray:
    """``n`` decaying sine notes between 60 and 400 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(spectral.NATIVE_SAMPLES) / spectral.SAMPLE_RATE
    pitch = rng.uniform(60.0, 400.0, size=(n, 1))
    decay = rng.uniform(0.1, 0.5, size=(n, 1))
    return (np.sin(2 * np.pi * pitch * t) * np.exp(-t / decay)).astype(np.float32)


def test_judge_features_ignore_gain_and_tell_tones_from_noise() -> None:
    audio = np.concatenate([_bursts(3, 4), _tones(3, 4)])
    features = evaluate.judge_features(audio)
    assert features.shape[0] == 8 and np.isfinite(features).all()
    assert np.allclose(evaluate.judge_features(audio * 0.05), features, atol=1e-2)
    # kits of noise bursts and of tones: a judge fitted without a kit labels that kit's sounds
    labels = np.array([0] * 4 + [1] * 4)
    groups = ["noise-a", "noise-a", "noise-b", "noise-b", "fluid-Tone", "freepats-Tone", "tone-b", "tone-b"]
    predicted, kits = evaluate.leave_one_kit_out(features, labels, groups, 2)
    assert kits == ["gm-Tone", "noise-a", "noise-b", "tone-b"]  # one instrument in two sound sets is one kit
    assert (predicted == labels).all()
    assert evaluate.class_accuracy(predicted, labels, ["noise", "tone"]) == {
        "mean": 1.0, "per_class": {"noise": 1.0, "tone": 1.0}}


def _burst(start_s: float, seed: int, decay_s: float = 0.004) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(spectral.NATIVE_SAMPLES) / spectral.SAMPLE_RATE
    after = np.clip(t - start_s, 0.0, None)
    return rng.standard_normal(spectral.NATIVE_SAMPLES) * np.exp(-after / decay_s) * (t >= start_s)


def test_the_onset_features_count_a_claps_bursts() -> None:
    single = _burst(0.0, 1)
    clap = _burst(0.0, 2) + _burst(0.012, 3) + _burst(0.024, 4)  # three slaps 12 ms apart
    onset = evaluate._onset_features(np.stack([single, clap]))
    bursts = np.expm1(onset[:, -2])
    assert round(bursts[0]) <= 1 and round(bursts[1]) == 3
    assert (onset[:, :-2] <= 0.0).all() and onset[:, 0].max() == pytest.approx(0.0, abs=0.2)


def test_the_pitch_features_hear_a_falling_tom_and_a_held_bass() -> None:
    t = np.arange(spectral.NATIVE_SAMPLES) / spectral.SAMPLE_RATE
    held = np.sin(2 * np.pi * 110.0 * t) * np.exp(-t / 0.5)
    # a tom: 200 Hz falling to 100 Hz with a time constant of 0.1 s
    frequency = 100.0 + 100.0 * np.exp(-t / 0.1)
    tom = np.sin(2 * np.pi * np.cumsum(frequency) / spectral.SAMPLE_RATE) * np.exp(-t / 0.3)
    noise = np.random.default_rng(5).standard_normal(len(t)) * np.exp(-t / 0.3)
    pitch = evaluate._pitch_features(np.stack([held, tom, noise]))
    heights, octaves, moves = pitch[:, :3], pitch[:, 3:6] * 4.0, pitch[:, 6:]  # moves in octaves
    assert (heights[0] > 0.9).all() and (heights[2] < 0.5).all()  # a tone repeats itself, a noise does not
    assert np.allclose(2.0 ** octaves[0], 110.0, rtol=0.03)
    assert abs(moves[0]).max() < 0.05 and moves[1].sum() < -0.5  # the tom falls 0.72 octave between the windows


def test_the_low_bands_place_a_fundamental() -> None:
    t = np.arange(spectral.NATIVE_SAMPLES) / spectral.SAMPLE_RATE
    low = evaluate._low_band_features(np.stack([np.sin(2 * np.pi * 50.0 * t), np.sin(2 * np.pi * 290.0 * t)]))
    shares = low[:, :-1] * 20.0  # dB of the body's power in 20-40, 40-60, ... 320-400 Hz
    assert shares[0].argmax() == 1 and shares[0, 1] > -0.5
    assert shares[1].argmax() == 8 and shares[1, 1] < -40.0


def test_the_judge_is_deterministic_and_its_members_vote() -> None:
    audio = np.concatenate([_bursts(3, 6), _tones(3, 6)])
    features = evaluate.judge_features(audio)
    labels = np.array([0] * 6 + [1] * 6)
    first = evaluate.Judge(features, labels, 2)
    again = evaluate.Judge(features, labels, 2)
    probabilities = first.probabilities(features)
    assert np.array_equal(probabilities, again.probabilities(features))
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert (first.predict(features) == labels).all()
    assert len(first.members) == evaluate.JUDGE_MLP_MEMBERS
    # without members it is the logistic regression alone
    alone = evaluate.Judge(features, labels, 2, mlp_members=0)
    assert alone.members == []
    logits = ((features - alone.mean) / alone.std) @ alone.weight.numpy() + alone.bias.numpy()
    assert np.array_equal(alone.predict(features), logits.argmax(axis=1))
    with pytest.raises(ValueError, match="got 2 members of 0"):
        evaluate.Judge(features, labels, 2, mlp_members=2, hidden=0)


def test_kit_of() -> None:
    assert evaluate.kit_of("fluid-Harp") == evaluate.kit_of("freepats-Harp") == "gm-Harp"
    assert evaluate.kit_of("fluid-kit-TR-808") == "fluid-kit-TR-808"
    assert evaluate.kit_of("hydrogen-Audiophob") == "hydrogen-Audiophob"


def test_the_judge_refuses_mismatched_labels() -> None:
    with pytest.raises(ValueError, match="got 3 and 2"):
        evaluate.Judge(np.zeros((3, 4)), np.array([0, 1]), 2)


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval-corpus")
    rc.build_corpus(root, SUBSET)
    return root


def test_the_subset_has_every_class_in_both_splits(corpus: Path) -> None:
    counts = json.loads((corpus / "manifest.json").read_text())["counts"]
    assert all(counts[name]["train"] > 0 and counts[name]["held-out"] > 0 for name in CLASSES), counts


def test_reduced_evaluation_of_the_shipped_model(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main(["--corpus", str(corpus), "--quick", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    sets = results["sets"]
    assert set(sets) == {"model", "shipped", "floor"}
    assert sets["model"] == sets["shipped"]  # --model left at the shipped weights: measured once
    assert results["classes_without_recordings"] == []
    for figures in sets.values():
        assert set(figures["accuracy"]["per_class"]) == set(CLASSES)
        assert 0.0 <= figures["memorization"]["share"] <= 1.0
        assert figures["frechet_distance"] >= 0.0 and figures["diversity"]["min"] >= 0.0
        assert set(figures["jitter_ratio"]["per_class"]) == set(CLASSES)
        assert set(figures["flicker_ratio"]["per_class"]) == set(CLASSES)
        assert all(v >= 0.0 for v in figures["flicker_db"].values())
    # the judge, trained on held-out kits, labels recordings of other kits (the training ones) above
    # chance (0.1): the yardstick works on real sounds
    assert sets["floor"]["accuracy"]["mean"] > 0.25, sets["floor"]["accuracy"]
    assert set(results["judge"]["leave_one_kit_out"]["per_class"]) == set(CLASSES)
    # a model that played back its training recordings would be seen: they are all copies of themselves
    manifest = json.loads((corpus / "manifest.json").read_text())
    training = evaluate.load_recordings(corpus, manifest, "train", CLASSES)
    reference = evaluate.load_recordings(corpus, manifest, "held-out", CLASSES, 12)
    judge = evaluate.Judge(evaluate.judge_features(reference.audio), reference.labels, len(CLASSES))
    played_back = evaluate.measure_set(training.audio, training.labels, CLASSES, judge, reference, training)
    assert played_back["memorization"]["share"] == 1.0


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main(["--per-class", "1", "--corpus", "/nonexistent"]) == 2
    assert "--per-class=1 is not accepted: expected at least 2" in capsys.readouterr().err
