"""The default model's training corpus and its log-mel codec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from loopbridge.engine.models.default import spectral
from loopbridge.engine.models.default.classes import CLASSES
from loopbridge.engine.models.default.corpus import PEAK, render_corpus, render_one


def _pooled(audio: np.ndarray) -> np.ndarray:
    mel = spectral.log_mel(audio)
    return torch.nn.functional.avg_pool2d(mel[:, None], (2, 4))[:, 0].reshape(len(audio), -1).numpy()


def test_same_seed_same_audio_and_items_do_not_depend_on_corpus_size() -> None:
    a = render_corpus(7, 2)
    b = render_corpus(7, 3)
    assert a.audio.shape == (2 * len(CLASSES), spectral.NATIVE_SAMPLES)
    for c in range(len(CLASSES)):
        np.testing.assert_array_equal(a.audio[2 * c : 2 * c + 2], b.audio[3 * c : 3 * c + 2])
    np.testing.assert_array_equal(a.labels, np.repeat(np.arange(len(CLASSES)), 2))
    other_seed, _ = render_one("kick", 8, 0)
    assert not np.allclose(other_seed, a.audio[0])


@pytest.mark.parametrize("name", CLASSES)
def test_every_class_is_broad_and_well_formed(name: str) -> None:
    audio = np.stack([render_one(name, 3, i)[0] for i in range(8)])
    assert audio.dtype == np.float32 and np.all(np.isfinite(audio))
    np.testing.assert_allclose(np.abs(audio).max(axis=1), PEAK, rtol=1e-5)
    features = _pooled(audio)
    dist = np.sqrt(((features[:, None] - features[None]) ** 2).sum(-1))
    off_diagonal = dist[~np.eye(len(audio), dtype=bool)]
    # no two items are near-copies: a class is a family of recipes, not one preset
    assert off_diagonal.min() > 0.5, f"{name}: two one-shots nearly identical ({off_diagonal.min():.3f})"


def test_classes_are_told_apart_by_their_spectrograms() -> None:
    """A nearest-centroid rule on log-mels from one seed labels another seed's one-shots well."""
    train = render_corpus(11, 12)
    test = render_corpus(12, 6)
    f_train, f_test = _pooled(train.audio), _pooled(test.audio)
    centroids = np.stack([f_train[train.labels == c].mean(0) for c in range(len(CLASSES))])
    guess = np.argmin(((f_test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert np.mean(guess == test.labels) >= 0.7


def test_pitched_classes_report_their_note() -> None:
    for name in ("bass", "pluck", "tom"):
        _, root = render_one(name, 0, 0)
        assert 20 <= root <= 100
    assert render_one("kick", 0, 0)[1] == -1


def test_unknown_class_is_refused() -> None:
    with pytest.raises(ValueError, match="kick"):
        render_one("cowbell solo", 0, 0)
    with pytest.raises(ValueError, match="per_class"):
        render_corpus(0, 0)


def test_log_mel_shape_and_round_trip() -> None:
    audio = np.stack([render_one(name, 5, 0)[0] for name in ("snare", "pluck")])
    mel = spectral.log_mel(audio)
    assert mel.shape == (2, spectral.N_MELS, spectral.FRAMES)
    assert float(mel.min()) >= -1.0 and float(mel.max()) <= 1.25
    rebuilt = spectral.invert(mel, generator=torch.Generator().manual_seed(0))
    assert rebuilt.shape == (2, spectral.NATIVE_SAMPLES)
    # Griffin-Lim recovers a phase whose magnitudes match the spectrogram closely
    error = (spectral.log_mel(rebuilt) - mel).abs().mean().item()
    assert error < 0.08  # about 3 dB
    silent = spectral.invert(torch.full((1, spectral.N_MELS, 8), -1.0))
    assert float(silent.abs().max()) == 0.0
