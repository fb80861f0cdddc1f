"""Crossfades that make audio loop without a click.

A loop plays its last sample, then its first. For that jump to be inaudible the last samples must
flow into the first, so the end of a loop is crossfaded into whatever *led into* its start: the
audio before the start when there is some (a pre-roll), otherwise a short fade-out and fade-in
meet at zero. The start of a loop, usually a downbeat, is left as it is. All functions take and
return float32 ``[channels, samples]``.
"""

from __future__ import annotations

import numpy as np


def crossfade(fading_out: np.ndarray, fading_in: np.ndarray) -> np.ndarray:
    """Crossfade two equally long ``[channels, n]`` blocks: the first fades out, the second in.

    Alike blocks (correlation above 0.5, such as two renderings of the same loop moment) get
    raised-cosine gains that sum to one; unlike ones get equal-power gains, so the level does not
    dip in the middle.
    """
    n = fading_out.shape[1]
    if n == 0:
        return fading_out.copy()
    a = fading_out.astype(np.float64)
    b = fading_in.astype(np.float64)
    norm = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    correlation = float(np.sum(a * b) / norm) if norm > 0 else 1.0
    t = (np.arange(n) + 0.5) / n
    if correlation > 0.5:
        gain_in = 0.5 - 0.5 * np.cos(np.pi * t)
        gain_out = 1.0 - gain_in
    else:
        gain_in = np.sin(0.5 * np.pi * t)
        gain_out = np.cos(0.5 * np.pi * t)
    return (a * gain_out + b * gain_in).astype(np.float32)


def circular_cycle(audio: np.ndarray, start: int, length: int, fade: int, fade_in: int = 0) -> np.ndarray:
    """``length`` samples of ``audio`` from ``start`` (wrapping past its end), made to loop.

    ``start`` may run past the end; samples are taken modulo the audio's length. When at least
    ``fade`` samples of real audio precede ``start``, the cycle's end is crossfaded into them (so
    the end leads into the start as it did in the audio). Otherwise nothing is known about what
    leads into the start, and the end fades out over ``fade`` samples and the start fades in over
    ``fade_in``: a short dip instead of a click. The start itself (a downbeat, usually a drum hit)
    is never blended with other material. ``fade`` is at most a quarter of ``length``.
    """
    frames = audio.shape[1]
    cycle = wrapped(audio, start, length).astype(np.float32, copy=False)
    fade = int(min(fade, length // 4))
    if fade < 2:
        return cycle
    if fade <= start <= frames:
        cycle[:, -fade:] = crossfade(cycle[:, -fade:], audio[:, start - fade : start])
        return cycle
    return fade_edges(cycle, min(fade_in, length // 4), fade)


def wrapped(audio: np.ndarray, start: int, length: int) -> np.ndarray:
    """``length`` samples of ``audio`` from ``start``, taken modulo its length (``start`` may be
    negative): ``audio[:, (start + arange(length)) % samples]``, copied block by block with no
    index array (which would take twice the float32 result's memory)."""
    frames = audio.shape[1]
    out = np.empty((audio.shape[0], length), dtype=audio.dtype)
    position, filled = start % frames, 0
    while filled < length:
        count = min(frames - position, length - filled)
        out[:, filled : filled + count] = audio[:, position : position + count]
        filled += count
        position = 0
    return out


def overlap_cycle(audio: np.ndarray, fade: int) -> np.ndarray:
    """Loop audio that has no pulse by overlapping its last ``fade`` samples onto its start.

    Returns ``samples - fade`` samples whose last sample flows into its first (the crossfade at the
    start carries on from where the end left off). ``fade`` is limited to a quarter of the audio.
    """
    frames = audio.shape[1]
    fade = int(min(fade, frames // 4))
    if fade < 2:
        return audio.astype(np.float32)
    cycle = audio[:, : frames - fade].astype(np.float32)
    cycle[:, :fade] = crossfade(audio[:, frames - fade :], cycle[:, :fade])
    return cycle


def cut_loop(stream: np.ndarray, start: int, length: int, fade: int) -> np.ndarray:
    """``stream[:, start:start + length]`` with its end crossfaded into ``stream[:, start - fade:start]``.

    ``stream`` is audio that carries on naturally before ``start`` (a pre-roll), so after the
    crossfade the loop's last sample leads into its first as the pre-roll did. Missing samples past
    the stream's end are silence.
    """
    fade = int(min(fade, length // 4, start))
    loop = stream[:, start : start + length].astype(np.float32)
    if loop.shape[1] < length:
        loop = np.pad(loop, ((0, 0), (0, length - loop.shape[1])))
    if fade >= 2:
        loop[:, -fade:] = crossfade(loop[:, -fade:], stream[:, start - fade : start])
    return loop


def repeat_loop(cycle: np.ndarray, length: int, fade: int) -> np.ndarray:
    """``length`` samples of ``cycle`` repeated, its end crossfaded into the cycle's end that leads
    into it: :func:`cut_loop` of the cycle tiled, from its second repeat, made without the tiled copy."""
    fade = int(min(fade, length // 4, cycle.shape[1]))
    loop = wrapped(cycle, 0, length)
    if fade >= 2:
        loop[:, -fade:] = crossfade(loop[:, -fade:], cycle[:, cycle.shape[1] - fade :])
    return loop


def fade_edges(audio: np.ndarray, fade_in: int, fade_out: int) -> np.ndarray:
    """Raised-cosine fade-in over the first ``fade_in`` and fade-out over the last ``fade_out`` samples."""
    out = audio.astype(np.float32)
    frames = out.shape[1]
    fade_in = min(fade_in, frames)
    fade_out = min(fade_out, frames)
    if fade_in > 0:
        out[:, :fade_in] *= (0.5 - 0.5 * np.cos(np.pi * (np.arange(fade_in) + 0.5) / fade_in)).astype(np.float32)
    if fade_out > 0:
        out[:, frames - fade_out :] *= (0.5 + 0.5 * np.cos(np.pi * (np.arange(fade_out) + 0.5) / fade_out)).astype(
            np.float32
        )
    return out
