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
    # the judge, trained on held-out kits, labels recordings of other kits (the training ones) above
    # chance (0.1): the yardstick works on real sounds (3 recordings a class here: 0.4 on this
    # subset; 0.64 with 16 a class on the full corpus)
    assert sets["floor"]["accuracy"]["mean"] > 0.25, sets["floor"]["accuracy"]
    # a model that played back its training recordings would be seen: they are all copies of themselves
    manifest = json.loads((corpus / "manifest.json").read_text())
    training = evaluate.load_recordings(corpus, manifest, "train", CLASSES)
    reference = evaluate.load_recordings(corpus, manifest, "held-out", CLASSES, 12)
    judge = evaluate._balanced_classifier(evaluate.pooled_log_mel(reference.audio), reference.labels, len(CLASSES), 0)
    played_back = evaluate.measure_set(training.audio, training.labels, CLASSES, judge, reference, training)
    assert played_back["memorization"]["share"] == 1.0


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main(["--per-class", "1", "--corpus", "/nonexistent"]) == 2
    assert "--per-class=1 is not accepted: expected at least 2" in capsys.readouterr().err
