"""Prompt words pick the default model's class."""

from __future__ import annotations

import pytest
from loopbridge.engine.models.default.character import apply_styles, styles_in
from loopbridge.engine.models.default.classes import CLASSES, class_for_prompt, class_index


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("kick", "kick"), ("punchy BD", "kick"), ("808", "kick"), ("808 bass", "bass"), ("sub bass", "bass"),
        ("snare", "snare"), ("clap", "clap"), ("hat", "closed hat"), ("hihat", "closed hat"),
        ("hi-hat", "closed hat"), ("open hat", "open hat"), ("open hi hat", "open hat"), ("crash", "open hat"),
        ("tom", "tom"), ("perc", "perc"), ("rimshot", "perc"), ("cowbell", "perc"), ("bass", "bass"),
        ("reese bass", "bass"), ("pluck", "pluck"), ("keys", "pluck"), ("texture", "texture"),
        ("riser", "texture"), ("noise sweep", "texture"), ("Dark, Dirty KICK!", "kick"),
        ("a snare then a kick", "snare"),
    ],
)
def test_words_map_to_classes(prompt: str, expected: str) -> None:
    assert class_for_prompt(prompt) == expected


@pytest.mark.parametrize("prompt", ["", "   ", "something lovely", "banana 42", "dark punchy"])
def test_prompts_without_a_class_word_give_none(prompt: str) -> None:
    assert class_for_prompt(prompt) is None


def test_every_class_name_maps_to_itself() -> None:
    for name in CLASSES:
        assert class_for_prompt(name) == name
        assert CLASSES[class_index(name)] == name
    with pytest.raises(ValueError, match="kick"):
        class_index("guitar solo")


def test_style_words_colour_audio_and_keep_its_peak() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((1, 44100)) * np.exp(-np.arange(44100) / 4000)).astype(np.float32)
    assert styles_in("dark dirty kick, dark") == ["dark", "dirty"]
    assert styles_in("kick") == []
    dark = apply_styles(audio, 44100, ["dark"])
    assert dark.shape == audio.shape and dark.dtype == np.float32
    np.testing.assert_allclose(np.abs(dark).max(), np.abs(audio).max(), rtol=1e-5)
    spectrum_in = np.abs(np.fft.rfft(audio[0]))
    spectrum_out = np.abs(np.fft.rfft(dark[0]))
    high = slice(10000, None)  # above about 10 kHz
    assert spectrum_out[high].sum() / spectrum_out.sum() < 0.5 * spectrum_in[high].sum() / spectrum_in.sum()
    np.testing.assert_array_equal(apply_styles(audio, 44100, []), audio)
