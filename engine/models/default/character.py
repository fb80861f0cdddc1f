"""Style words ("dark", "punchy", "dirty", ...) and the light processing they stand for.

A kit has one character because every part is rendered from the same seed and the same style words
(:meth:`DefaultModel.kit_requests` adds one chosen by the seed when the prompt names none). The
processing is deliberately light: it colours the model's output, it does not replace it.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .classes import prompt_words

#: style word -> effect name
STYLE_WORDS: dict[str, str] = {
    "dark": "dark", "warm": "dark", "muffled": "dark", "mellow": "dark", "soft": "dark",
    "bright": "bright", "crisp": "bright", "airy": "bright", "sharp": "bright", "shiny": "bright",
    "dirty": "dirty", "distorted": "dirty", "saturated": "dirty", "gritty": "dirty", "crunchy": "dirty",
    "lofi": "lofi", "lo-fi": "lofi", "vintage": "lofi", "dusty": "lofi",
    "punchy": "punchy", "hard": "punchy", "snappy": "punchy", "tight": "tight", "short": "tight",
    "clean": "clean",
}
#: the effects a kit may be given by its seed when the prompt names none ("clean" adds nothing)
KIT_STYLES: tuple[str, ...] = ("clean", "punchy", "dark", "bright", "dirty", "tight", "lofi")


def styles_in(prompt: str) -> list[str]:
    """The effects named in a prompt, in order, without repeats."""
    found: list[str] = []
    for word in prompt_words(prompt):
        effect = STYLE_WORDS.get(word)
        if effect and effect not in found:
            found.append(effect)
    return found


def apply_styles(audio: np.ndarray, sample_rate: int, styles: list[str]) -> np.ndarray:
    """``audio`` ``[channels, samples]`` coloured by each effect in ``styles`` (unknown names ignored)."""
    x = np.asarray(audio, dtype=np.float64)
    if not styles or x.shape[-1] == 0:
        return np.asarray(audio, dtype=np.float32)
    peak_in = float(np.max(np.abs(x))) or 1.0
    t = np.arange(x.shape[-1]) / sample_rate
    for style in styles:
        if style == "dark":
            x = signal.sosfilt(signal.butter(2, 3500, "lowpass", fs=sample_rate, output="sos"), x, axis=-1)
        elif style == "bright":
            x = x + 0.7 * signal.sosfilt(signal.butter(2, 5000, "highpass", fs=sample_rate, output="sos"), x, axis=-1)
        elif style == "dirty":
            peak = float(np.max(np.abs(x))) or 1.0
            x = np.tanh(4.0 * x / peak) * peak
        elif style == "lofi":
            x = signal.sosfilt(signal.butter(2, 6000, "lowpass", fs=sample_rate, output="sos"), x, axis=-1)
            peak = float(np.max(np.abs(x))) or 1.0
            x = np.round(x / peak * 63) / 63 * peak  # about 7-bit
        elif style == "punchy":
            x = x * (1.0 + 1.5 * np.exp(-t / 0.03))
            peak = float(np.max(np.abs(x))) or 1.0
            x = np.tanh(1.5 * x / peak) * peak
        elif style == "tight":
            x = x * np.exp(-t / 0.12)
    peak_out = float(np.max(np.abs(x))) or 1.0
    return (x * (peak_in / peak_out)).astype(np.float32)
