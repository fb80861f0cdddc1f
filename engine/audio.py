"""Audio arrays, audio files, the engine's one resampler, and reshaping.

Audio is always float32 ``[channels, samples]`` with its sample rate in Hz beside it. The request
types, the model backends, the Riffusion codec and the conform stage all check, read, resample and
reshape audio through here; this module depends on nothing else in the engine but its errors, so
any of them can import it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from .errors import AudioReadError, RequestError

#: libsoxr's quality for :func:`resample` (``bench/bench_resample.py`` measures it against the others)
RESAMPLE_QUALITY = "VHQ"


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


def read_audio_file(path: str | Path, name: str = "audio file",
                    check: Callable[[int, int, int], None] | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file (WAV, FLAC, AIFF, MP3, OGG: whatever pedalboard reads).

    Returns ``(audio, sample_rate)``: float32 ``[channels, samples]`` and the file's rate in Hz.
    ``check(frames, channels, sample_rate)`` sees the file's header before anything is decoded (and
    may raise to refuse it). Raises :class:`AudioReadError` starting with ``name`` and the path when
    the path is not a readable file or the file is not audio.
    """
    from pedalboard.io import AudioFile

    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{name} {str(path)!r} is not a readable file")
    try:
        with AudioFile(str(path)) as f:
            rate = round(f.samplerate)
            if check is not None:
                check(int(f.frames), int(f.num_channels), int(rate))
            audio = f.read(f.frames)
    except RequestError:
        raise
    except Exception as exc:  # pedalboard raises plain RuntimeError/ValueError for bad files
        raise AudioReadError(f"{name} {str(path)!r} cannot be read as audio: {exc}") from exc
    return np.ascontiguousarray(audio, dtype=np.float32), int(rate)


def read_audio_bytes(data: bytes | memoryview, name: str = "audio",
                     check: Callable[[int, int, int], None] | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file's bytes (WAV, FLAC, AIFF, OGG, MP3: whatever libsndfile reads), as a client
    sends them in a message.

    Returns ``(audio, sample_rate)`` like :func:`read_audio_file`; ``check(frames, channels,
    sample_rate)`` sees the header before the samples are decoded (a few megabytes of FLAC can hold
    gigabytes of samples) and may raise to refuse it. Raises :class:`AudioReadError` starting with
    ``name`` for bytes that are not audio.
    """
    import io

    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(bytes(data))) as f:
            rate = int(f.samplerate)
            if check is not None:
                check(int(f.frames), int(f.channels), rate)
            audio = f.read(dtype="float32", always_2d=True)
    except RequestError:
        raise
    except Exception as exc:  # libsndfile raises its own error types for anything unreadable
        raise AudioReadError(f"{name} is not readable audio (WAV, FLAC, AIFF, OGG or MP3): {exc}") from exc
    return np.ascontiguousarray(audio.T), rate


def resample(audio: np.ndarray, source_rate: int, target_rate: int,
             run: Callable[[list[Callable[[], None]]], object] | None = None) -> np.ndarray:
    """Resample float32 ``[channels, samples]`` audio from ``source_rate`` to ``target_rate`` (Hz).

    libsoxr at its very high quality: within 0.01 dB up to 0.45 of the lower rate, images and
    aliases more than 150 dB down, in one or two thousandths of the audio's duration for stereo
    (``bench/bench_resample.py``: pedalboard's and scipy's resamplers were slower, leakier or both).
    The result holds exactly ``round(samples * target_rate / source_rate)`` frames, time-aligned with
    the input: output frame ``k`` is input time ``k / target_rate`` (no latency, nothing lost at
    either end). The same rate returns the audio as it is (as float32, C-contiguous). ``run``: runs the
    channels' tasks, each writing its own channel of the result (the conform stage shares them out over
    two threads with ``conform/threads.py``'s ``each``: libsoxr releases the GIL; the same samples, two
    channels' results held at once); by default one after the other, here. Raises
    :class:`RequestError` for a rate that is not a positive whole number of Hz.
    """
    for field_name, rate in (("source_rate", source_rate), ("target_rate", target_rate)):
        if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
            raise RequestError(field_name, rate, "a positive whole number of Hz")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if source_rate == target_rate:
        return audio
    frames = int(round(audio.shape[1] * target_rate / source_rate))
    out = np.empty((audio.shape[0], frames), dtype=np.float32)
    # one channel at a time, into the result: the same samples as soxr's interleaved call, without
    # interleaved copies of the input and the output (long audio at a high rate is gigabytes); its
    # one-shot mode removes the filter's delay and flushes the tail

    def one(channel: int) -> None:
        resampled = soxr.resample(audio[channel], int(source_rate), int(target_rate), quality=RESAMPLE_QUALITY)
        kept = min(frames, len(resampled))
        out[channel, :kept] = resampled[:kept]
        out[channel, kept:] = 0.0

    tasks: list[Callable[[], None]] = [functools.partial(one, channel) for channel in range(audio.shape[0])]
    if run is not None:
        run(tasks)
    else:
        for task in tasks:
            task()
    return out


def resample_by(audio: np.ndarray, ratio: float) -> np.ndarray:
    """Play float32 ``[channels, samples]`` audio ``ratio`` times as fast: pitch up by ``ratio`` (down
    below 1), ``round(samples / ratio)`` frames long, time-aligned like :func:`resample` (output frame
    ``k`` is input frame ``k * ratio``), by the same libsoxr settings. Raises :class:`RequestError` for a
    ratio that is no finite number from 1/4 to 4."""
    if isinstance(ratio, bool) or not isinstance(ratio, int | float | np.floating) or not 0.25 <= ratio <= 4.0:
        raise RequestError("ratio", ratio, "a number from 0.25 to 4")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if ratio == 1.0:
        return audio
    frames = int(round(audio.shape[1] / ratio))
    out = np.empty((audio.shape[0], frames), dtype=np.float32)
    for channel, samples in enumerate(audio):
        # the rates are only their ratio: the input as if recorded at ratio times the output's rate
        resampled = soxr.resample(samples, 48000.0 * float(ratio), 48000.0, quality=RESAMPLE_QUALITY)
        kept = min(frames, len(resampled))
        out[channel, :kept] = resampled[:kept]
        out[channel, kept:] = 0.0
    return out


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
