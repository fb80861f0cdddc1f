"""One-shot tidying: remove DC, trim leading silence and the silent tail, fade the tail, normalise.

A one-shot is triggered by a sampler note, so it must start at its attack (no dead air before the
hit), start and end at zero (no click at note-on or at the end of the buffer) and peak at a known
level. It is never time-stretched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RequestError
from .seams import fade_edges

#: the loudest sample after tidying, in dBFS (a little headroom for inter-sample peaks)
PEAK_TARGET_DBFS = -1.0
#: leading samples quieter than this (relative to the peak) are silence
LEAD_THRESHOLD_DB = -50.0
#: trailing samples quieter than this (relative to the peak) are silence
TAIL_THRESHOLD_DB = -60.0
#: kept before the first sample above the lead threshold, faded in (the very start of the attack)
LEAD_MARGIN_S = 0.001
#: kept after the last sample above the tail threshold
TAIL_MARGIN_S = 0.01
#: shortest fade-in, even when the sound starts at its first sample (avoids a click at note-on)
MIN_FADE_IN_S = 0.00025
#: the tail fade: this long, or a fifth of the sound when that is shorter
TAIL_FADE_S = 0.05
#: a peak below this is silence (-120 dBFS)
SILENCE_PEAK = 1e-6


@dataclass(frozen=True)
class TidyReport:
    """What :func:`tidy_one_shot` did: samples cut at the start and end, gain applied (dB), DC removed."""

    trimmed_start: int
    trimmed_end: int
    gain_db: float
    dc_offset: tuple[float, ...]


def tidy_one_shot(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, TidyReport]:
    """Tidy float32 ``[channels, samples]`` audio into a one-shot.

    Raises :class:`RequestError` when the audio is silent (peak below -120 dBFS).
    """
    # float64 throughout, as the arithmetic has always been, but changed in place: a long one-shot at
    # a high rate is hundreds of megabytes of float64
    data = audio.astype(np.float64)
    dc = data.mean(axis=1, keepdims=True)
    data -= dc
    peak = max(float(data.max()), -float(data.min()))
    if peak < SILENCE_PEAK:
        raise RequestError("audio", f"silence (peak {peak:.2g})", "a sound louder than -120 dBFS to make a one-shot of")
    envelope = np.abs(data[0])
    for channel in data[1:]:
        np.maximum(envelope, np.abs(channel), out=envelope)
    first = int(np.argmax(envelope > peak * 10 ** (LEAD_THRESHOLD_DB / 20)))
    last = len(envelope) - 1 - int(np.argmax(envelope[::-1] > peak * 10 ** (TAIL_THRESHOLD_DB / 20)))
    start = max(0, first - int(round(LEAD_MARGIN_S * sample_rate)))
    stop = min(len(envelope), last + 1 + int(round(TAIL_MARGIN_S * sample_rate)))
    del envelope
    total = data.shape[1]
    body = data[:, start:stop]
    # the DC of what is kept (a decaying sound's mean differs from the whole buffer's)
    body -= body.mean(axis=1, keepdims=True)
    frames = body.shape[1]
    fade_in = max(first - start, int(round(MIN_FADE_IN_S * sample_rate)))
    fade_out = int(round(min(TAIL_FADE_S * sample_rate, frames / 5)))
    out = fade_edges(body, min(fade_in, frames // 2), fade_out)  # float32
    del data, body
    body_peak = max(float(out.max()), -float(out.min()))
    gain = 10 ** (PEAK_TARGET_DBFS / 20) / body_peak if body_peak > 0 else 1.0
    # the gain in float64, rounded to float32 once
    np.multiply(out, gain, out=out, dtype=np.float64, casting="same_kind")
    report = TidyReport(
        trimmed_start=start,
        trimmed_end=total - stop,
        gain_db=float(20 * np.log10(gain)),
        dc_offset=tuple(float(v) for v in dc[:, 0]),
    )
    return out, report
