"""What the families that work on a user's audio share: the source at the model's rate, the spans a
task covers, the key and meter in each model's terms, and the splice that keeps the source's samples.

A model regenerates the whole clip, even where it was asked to keep the source (its autoencoder
decodes every frame again), so the engine puts the source back itself: a replacement keeps every
sample outside the replaced bars, a continuation every sample of the source, bit for bit at the
model's rate. The new audio comes in over a short crossfade inside the new span only:

- at the start of a replaced span and at its end, from the source to the new audio and back;
- after a continuation's join, from the loop's own start (a loop's seam is seamless: its first
  samples follow its last ones) to the new audio, so the step across the join is the loop's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..audio import fit_length, match_channels, resample
from ..errors import LoopbridgeError
from ..request import GenerateRequest, Task

#: the crossfade that brings new audio in and out of a kept source
SPLICE_FADE_S = 0.01

def key_name(request: GenerateRequest) -> str | None:
    """The song's key as a model's caption and metadata write it (``"A minor"``, ``"F# major"``), from
    the request's ``key`` when its type has one (``"Am"``, ``"A minor"``, ``"F#"``...); None without one
    or for a value that names no key."""
    from ..conform.key import parse_key

    try:
        key = parse_key(getattr(request, "key", None))
    except LoopbridgeError:
        return None
    return None if key is None else f"{key.name.removesuffix('m')} {key.mode}"


def meter_name(request: GenerateRequest) -> str:
    """The bar as ACE-Step's metadata writes it: beats a bar (``"4"`` for 4/4, ``"3"`` for 3/4)."""
    return str(request.beats_per_bar)


def source_audio(request: GenerateRequest, sample_rate: int, channels: int) -> np.ndarray:
    """The task's source (the request's audio prompt) at ``sample_rate`` with ``channels``: float32
    ``[channels, frames]``. The number of frames is the source's length at that rate."""
    prompt = request.audio_prompt
    if prompt is None:
        raise ValueError(f"task {request.task.value!r} has no source audio")
    audio = resample(np.asarray(prompt.audio, dtype=np.float32), prompt.sample_rate, sample_rate)
    return np.array(match_channels(audio, channels), dtype=np.float32, order="C")  # writable: torch takes it as it is


def output_frames(request: GenerateRequest, sample_rate: int) -> int:
    """Frames of a task's result at ``sample_rate``: the source's, plus the new bars of ``continue``."""
    if request.task is Task.CONTINUE and request.audio_prompt is not None:
        prompt = request.audio_prompt
        source = int(round(prompt.audio.shape[1] * sample_rate / prompt.sample_rate))
        return source + int(round((request.continue_bars or 0.0) * request.bar_s * sample_rate))
    return int(round(request.render_duration_s * sample_rate))


def new_span_s(request: GenerateRequest) -> tuple[float, float]:
    """``(start_s, end_s)`` the model makes anew in a continuation or a replacement."""
    if request.task is Task.CONTINUE and request.audio_prompt is not None:
        return request.audio_prompt.duration_s, request.render_duration_s
    if request.task is Task.REPLACE:
        return (float(request.replace_from_bar or 0.0) * request.bar_s,
                float(request.replace_to_bar or 0.0) * request.bar_s)
    return 0.0, request.render_duration_s


def replace_frames(request: GenerateRequest, sample_rate: int, frames: int) -> tuple[int, int]:
    """The replaced span in frames at ``sample_rate``, within ``frames``."""
    start_s, end_s = new_span_s(request)
    start = min(max(int(round(start_s * sample_rate)), 0), frames)
    return start, min(max(int(round(end_s * sample_rate)), start), frames)


def _ramp(length: int) -> np.ndarray:
    """An equal-power fade-in of ``length`` samples, from exactly 0."""
    if length <= 0:
        return np.zeros(0, dtype=np.float32)
    return np.sin(0.5 * np.pi * np.arange(length, dtype=np.float64) / length).astype(np.float32)


def splice(request: GenerateRequest, generated: np.ndarray, source: np.ndarray, sample_rate: int) -> np.ndarray:
    """The result of a ``continue`` or ``replace`` task: ``source`` kept to the sample, ``generated``
    (the model's whole clip, float32 ``[channels, frames]`` at ``sample_rate``) in the new span only.

    Other tasks return ``generated`` cut or padded to the task's length.
    """
    frames = output_frames(request, sample_rate)
    generated = fit_length(np.asarray(generated, dtype=np.float32), frames)
    fade = max(1, int(round(SPLICE_FADE_S * sample_rate)))
    if request.task is Task.CONTINUE:
        kept = source.shape[1]
        out = generated.copy()
        out[:, :kept] = source
        length = min(fade, frames - kept, kept)
        if length > 0:
            ramp = _ramp(length)
            # the loop's own start is what follows its end: fade from it into the new bars
            out[:, kept:kept + length] = source[:, :length] * (1.0 - ramp) + generated[:, kept:kept + length] * ramp
        return out
    if request.task is Task.REPLACE:
        out = fit_length(source, frames).copy()
        start, end = replace_frames(request, sample_rate, frames)
        out[:, start:end] = generated[:, start:end]
        length = min(fade, (end - start) // 2)
        if length > 0:
            ramp = _ramp(length)
            out[:, start:start + length] = (source[:, start:start + length] * (1.0 - ramp)
                                            + generated[:, start:start + length] * ramp)
            out[:, end - length:end] = (generated[:, end - length:end] * ramp[::-1]
                                        + source[:, end - length:end] * (1.0 - ramp[::-1]))
        return out
    return generated


def task_info(request: GenerateRequest) -> dict[str, Any]:
    """What a task's render says of itself: it sits on the source's grid (the request's tempo, its first
    downbeat at 0), so the conform stage fits it without estimating a tempo."""
    info: dict[str, Any] = {"task": request.task.value, "tempo_bpm": float(request.tempo_bpm), "downbeat_s": 0.0,
                            "beats": request.render_duration_s * request.tempo_bpm / 60.0}
    if request.track:
        info["track"] = request.track
    return info


def settings_key(request: GenerateRequest, extra: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
    """Rows one pipeline call can share: the same task, source, span, track, length and strength."""
    prompt = request.audio_prompt
    return (request.task, prompt.digest if prompt is not None else None, request.continue_bars,
            request.replace_from_bar, request.replace_to_bar, request.track, round(request.render_duration_s, 6),
            request.audio_prompt_strength if request.task is Task.TRANSFORM else None,
            request.tempo_bpm, request.beats_per_bar, key_name(request),
            *(tuple(sorted(extra.items())) if extra else ()))
