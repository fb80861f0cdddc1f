"""Small audio helpers shared by backends and the conform stage. Audio is float32 ``[channels, samples]``."""

from __future__ import annotations

import numpy as np

from .errors import RequestError


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample with pedalboard's windowed-sinc stream resampler, time-aligned.

    The result has exactly ``round(samples * to_rate / from_rate)`` frames.
    """
    from pedalboard.io import StreamResampler

    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if from_rate == to_rate:
        return audio
    if from_rate <= 0 or to_rate <= 0:
        raise RequestError("sample_rate", (from_rate, to_rate), "positive rates in Hz")
    expected = int(round(audio.shape[1] * to_rate / from_rate))
    resampler = StreamResampler(float(from_rate), float(to_rate), int(audio.shape[0]))
    out = np.concatenate([resampler.process(audio), resampler.process()], axis=1)
    return fit_length(out, expected)


def fit_length(audio: np.ndarray, frames: int) -> np.ndarray:
    """Cut or zero-pad to exactly ``frames`` frames."""
    if audio.shape[1] >= frames:
        return np.ascontiguousarray(audio[:, :frames])
    pad = np.zeros((audio.shape[0], frames - audio.shape[1]), dtype=audio.dtype)
    return np.concatenate([audio, pad], axis=1)


def match_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Mix down to mono, or copy mono out to ``channels``; other counts are cut or repeated."""
    have = audio.shape[0]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    reps = -(-channels // have)
    return np.tile(audio, (reps, 1))[:channels]
