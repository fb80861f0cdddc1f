"""Audio arrays, audio files, resampling and reshaping.

Audio is always float32 ``[channels, samples]`` with its sample rate in Hz beside it. The request
types, the model backends, the Riffusion codec and the conform stage all check, read and reshape
audio through here; this module depends on nothing else in the engine but its errors, so any of
them can import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import AudioReadError, RequestError


def as_audio_array(audio: Any, name: str = "audio") -> np.ndarray:
    """Return ``audio`` as a C-contiguous float32 ``[channels, samples]`` array.

    A 1-D array is taken as mono. Raises :class:`RequestError` naming ``name`` for anything that is
    not numbers, is not shaped ``[channels (1–8), samples]``, is empty or has non-finite samples.
    """
    try:
        array = np.asarray(audio, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise RequestError(name, type(audio).__name__, "float audio shaped [channels, samples]") from exc
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[0] > 8:
        raise RequestError(name, f"array of shape {array.shape}", "[channels (1–8), samples] audio")
    if array.shape[1] == 0:
        raise RequestError(name, "empty audio", "at least one sample")
    if not np.all(np.isfinite(array)):
        raise RequestError(name, "audio with NaN or infinite samples", "finite samples")
    return np.ascontiguousarray(array)


def read_audio_file(path: str | Path, name: str = "audio file") -> tuple[np.ndarray, int]:
    """Read an audio file (WAV, FLAC, AIFF, MP3, OGG: whatever pedalboard reads).

    Returns ``(audio, sample_rate)``: float32 ``[channels, samples]`` and the file's rate in Hz.
    Raises :class:`AudioReadError` starting with ``name`` and the path when the path is not a
    readable file or the file is not audio.
    """
    from pedalboard.io import AudioFile

    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{name} {str(path)!r} is not a readable file")
    try:
        with AudioFile(str(path)) as f:
            audio = f.read(f.frames)
            rate = round(f.samplerate)
    except Exception as exc:  # pedalboard raises plain RuntimeError/ValueError for bad files
        raise AudioReadError(f"{name} {str(path)!r} cannot be read as audio: {exc}") from exc
    return np.ascontiguousarray(audio, dtype=np.float32), int(rate)


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
    """Cut or zero-pad ``[channels, samples]`` audio at its end to exactly ``frames`` frames."""
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
