"""Augmentation of recorded one-shots: pitch, EQ, saturation, envelope and room.

Stretches a few hundred recordings per class into a training set. Every variant is drawn from
``numpy.random.default_rng((seed, item, variant))``, so the same folder, seed and count give the
same audio on every machine, and variant 0 is the recording itself. Audio is mono float32
``[samples]`` at :data:`~.spectral.SAMPLE_RATE`; results are :data:`~.spectral.NATIVE_SAMPLES`
long and peak-normalized to :data:`~.folder.PEAK`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import signal

from ...audio import resample
from .corpus import _resonator
from .folder import PEAK
from .spectral import NATIVE_SAMPLES, SAMPLE_RATE

SR = SAMPLE_RATE


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges the variants are drawn from (each effect applies with its probability)."""

    pitch_semitones: float = 2.0
    eq_gain_db: float = 6.0
    saturation_p: float = 0.35
    envelope_p: float = 0.4
    room_p: float = 0.35


def pitch_shift(x: np.ndarray, semitones: float) -> np.ndarray:
    """Resample ``x`` so it plays ``semitones`` higher (and shorter), as a sampler's pitch knob does."""
    if abs(semitones) < 1e-3:
        return x
    # the audio played at rate SR * ratio and heard at SR
    ratio = 2 ** (semitones / 12)
    source_rate = int(round(SR * ratio))
    return resample(x[None, :].astype(np.float32), source_rate, SR)[0]


def equalize(x: np.ndarray, rng: np.random.Generator, max_gain_db: float) -> np.ndarray:
    """One or two peaking bands (60 Hz-12 kHz, up to ``max_gain_db`` either way) and a gentle tilt."""
    for _ in range(int(rng.integers(1, 3))):
        freq = float(np.exp(rng.uniform(np.log(60.0), np.log(12000.0))))
        x = _resonator(x, freq, rng.uniform(0.7, 3.0), rng.uniform(-max_gain_db, max_gain_db))
    tilt = rng.uniform(-1.0, 1.0)
    if abs(tilt) > 0.2:
        # a first-order shelf: lift or cut above about 2 kHz by up to 4 dB
        sos = signal.butter(1, 2000.0, btype="highpass", fs=SR, output="sos")
        x = x + (10 ** (4 * tilt / 20) - 1) * signal.sosfilt(sos, x)
    return x


def saturate(x: np.ndarray, drive: float) -> np.ndarray:
    peak = float(np.max(np.abs(x))) + 1e-12
    return np.tanh(drive * x / peak) / np.tanh(drive) * peak


def shape_envelope(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shorten the tail (an exponential fade, time constant 0.08-0.8 s, after a 20-60 ms hold):
    the decay knob of a sampler. The attack is left as recorded."""
    t = np.arange(x.size) / SR
    hold_s = rng.uniform(0.02, 0.06)
    tau_s = float(np.exp(rng.uniform(np.log(0.08), np.log(0.8))))
    return x * np.exp(-np.clip(t - hold_s, 0.0, None) / tau_s)


def add_room(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small room: convolution with decaying, darkened noise (RT60 0.15-0.7 s), mixed 5-25 % wet."""
    rt60_s = rng.uniform(0.15, 0.7)
    n = int(rt60_s * SR)
    t = np.arange(n) / SR
    ir = rng.standard_normal(n) * np.exp(-6.91 * t / rt60_s)
    ir = signal.sosfilt(signal.butter(1, rng.uniform(2000, 8000), btype="lowpass", fs=SR, output="sos"), ir)
    ir[: int(0.003 * SR)] = 0.0  # the first reflection arrives a few ms after the direct sound
    wet = signal.fftconvolve(x, ir)[: x.size]
    wet *= np.std(x) / (np.std(wet) + 1e-12)
    mix = rng.uniform(0.05, 0.25)
    return (1 - mix) * x + mix * wet


def augment(x: np.ndarray, rng: np.random.Generator, settings: AugmentSettings = AugmentSettings()) -> np.ndarray:
    """One variant of the one-shot ``x`` ``[samples]``: NATIVE_SAMPLES float32, peak PEAK."""
    y = pitch_shift(x.astype(np.float64), rng.uniform(-settings.pitch_semitones, settings.pitch_semitones))
    y = equalize(y.astype(np.float64), rng, settings.eq_gain_db)
    if rng.random() < settings.saturation_p:
        y = saturate(y, rng.uniform(1.2, 4.0))
    if rng.random() < settings.envelope_p:
        y = shape_envelope(y, rng)
    if rng.random() < settings.room_p:
        y = add_room(y, rng)
    return _fit(y)


def _fit(y: np.ndarray) -> np.ndarray:
    out = np.zeros(NATIVE_SAMPLES, dtype=np.float32)
    kept = min(NATIVE_SAMPLES, y.size)
    out[:kept] = y[:kept]
    peak = float(np.max(np.abs(out)))
    return out if peak <= 0 else (out * (PEAK / peak)).astype(np.float32)


#: at most this many augmented variants of one recording: a class of a handful of recordings stays
#: small rather than becoming hundreds of near-copies of them (which the model would learn by heart)
MAX_VARIANTS = 24


def variants(audio: np.ndarray, labels: np.ndarray, per_class: int, seed: int,
             settings: AugmentSettings = AugmentSettings(),
             max_variants: int = MAX_VARIANTS,
             class_counts: Mapping[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stretch recordings ``audio`` ``[n, NATIVE_SAMPLES]`` with class ``labels`` ``[n]`` towards
    ``per_class`` one-shots per class present (``class_counts[label]`` instead where given): every
    recording once as it is, then augmented variants of each recording in turn, at most
    ``max_variants`` of each. Classes with that many or more recordings (so any class whose count
    is 0) are kept as they are.

    A class's variants do not depend on the other classes' counts. Returns
    ``(audio [m, NATIVE_SAMPLES], labels [m])``, recordings first.
    """
    counts = class_counts or {}
    out_audio = [audio.astype(np.float32)]
    out_labels = [labels]
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        needed = min(counts.get(int(label), per_class) - members.size, max_variants * members.size)
        for k in range(max(0, needed)):
            item = int(members[k % members.size])
            variant = 1 + k // members.size
            rng = np.random.default_rng((seed, item, variant))
            out_audio.append(augment(audio[item], rng, settings)[None, :])
            out_labels.append(np.array([label], dtype=labels.dtype))
    return np.concatenate(out_audio), np.concatenate(out_labels)
