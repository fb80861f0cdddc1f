"""A procedural drum and instrument synthesizer: the default model's training corpus.

Every one-shot is rendered from random parameters drawn from ``numpy.random.default_rng((seed,
class, index))``, so a corpus is the same on every machine, and item ``i`` of a class does not
depend on how many items were asked for. Nothing is downloaded.

Each class is a family of recipes rather than one preset: pitch, envelopes, noise colour,
saturation, body resonances and layering are all drawn at random. Audio is mono float32 at
:data:`~.spectral.SAMPLE_RATE`, :data:`~.spectral.NATIVE_SAMPLES` long, peak-normalized to 0.9.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import signal

from .classes import CLASSES
from .spectral import NATIVE_SAMPLES, SAMPLE_RATE

SR = SAMPLE_RATE
PEAK = 0.9


@dataclass(frozen=True)
class Corpus:
    """Rendered one-shots: ``audio`` ``[n, samples]`` float32, ``labels`` ``[n]`` class indices,
    ``root_notes`` ``[n]`` MIDI notes (-1 where the sound has no pitch)."""

    audio: np.ndarray
    labels: np.ndarray
    root_notes: np.ndarray


# ---- building blocks ------------------------------------------------------------------------


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SR


def _noise(rng: np.random.Generator, n: int, tilt_db_per_oct: float = 0.0) -> np.ndarray:
    """Noise with a spectral tilt: 0 white, -3 pink, -6 brown, +3 blue (dB per octave)."""
    white = rng.standard_normal(n)
    if tilt_db_per_oct == 0.0:
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    freqs[0] = freqs[1]
    spectrum *= (freqs / 1000.0) ** (tilt_db_per_oct / 6.02)
    out = np.fft.irfft(spectrum, n)
    return out / (np.std(out) + 1e-12)


def _env(n: int, decay_s: float, attack_s: float = 0.0005, curve: float = 1.0) -> np.ndarray:
    """Attack ramp, then exponential decay with time constant ``decay_s`` (``curve`` bends it)."""
    t = _t(n)
    env = np.exp(-((t / decay_s) ** curve))
    if attack_s > 0:
        env *= np.clip(t / attack_s, 0.0, 1.0)
    return env


def _sweep_phase(freq_hz: np.ndarray) -> np.ndarray:
    return 2 * np.pi * np.cumsum(freq_hz) / SR


def _filter(x: np.ndarray, kind: str, cutoff_hz: float | tuple[float, float], order: int = 2) -> np.ndarray:
    nyq = SR / 2
    if isinstance(cutoff_hz, tuple):
        low, high = max(cutoff_hz[0], 20.0), min(cutoff_hz[1], nyq * 0.95)
        if high <= low * 1.05:
            high = min(low * 1.5, nyq * 0.97)
        sos = signal.butter(order, [low, high], btype="bandpass", fs=SR, output="sos")
    else:
        sos = signal.butter(order, min(max(cutoff_hz, 20.0), nyq * 0.95), btype=kind, fs=SR, output="sos")
    return signal.sosfilt(sos, x)


def _resonator(x: np.ndarray, freq_hz: float, q: float, gain_db: float) -> np.ndarray:
    """A peaking-EQ biquad: a body resonance."""
    w0 = 2 * np.pi * min(freq_hz, SR * 0.45) / SR
    a_lin = 10 ** (gain_db / 40)
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * a_lin, -2 * np.cos(w0), 1 - alpha * a_lin]
    a = [1 + alpha / a_lin, -2 * np.cos(w0), 1 - alpha / a_lin]
    return signal.lfilter(b, a, x)


def _saturate(x: np.ndarray, drive: float) -> np.ndarray:
    if drive <= 1.0:
        return x
    peak = np.max(np.abs(x)) + 1e-12
    return np.tanh(drive * x / peak) / np.tanh(drive) * peak


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _metal(rng: np.random.Generator, n: int, base_hz: float) -> np.ndarray:
    """Six detuned square waves at inharmonic ratios (the classic analogue hat and cymbal source)."""
    ratios = np.array([1.0, 1.4471, 1.6170, 1.9265, 2.5028, 2.6637]) * rng.uniform(0.9, 1.1, 6)
    t = _t(n)
    return sum(np.sign(np.sin(2 * np.pi * base_hz * r * t + rng.uniform(0, 2 * np.pi))) for r in ratios) / 6


# ---- one recipe family per class -------------------------------------------------------------


def _kick(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    t = _t(n)
    f_end = rng.uniform(38, 72)
    f_start = f_end * rng.uniform(2.5, 7.0)
    pitch_decay_s = rng.uniform(0.008, 0.07)
    freq = f_end + (f_start - f_end) * np.exp(-t / pitch_decay_s)
    body = np.sin(_sweep_phase(freq)) * _env(n, rng.uniform(0.12, 0.55), curve=rng.uniform(0.8, 1.8))
    click = _filter(_noise(rng, n, rng.uniform(-3, 3)), "highpass", rng.uniform(1500, 6000))
    click *= _env(n, rng.uniform(0.002, 0.012)) * rng.uniform(0.05, 0.6)
    x = body + click
    if rng.random() < 0.35:  # a second, higher layer for punch
        layer_f = f_end * rng.uniform(1.8, 3.2)
        x += 0.3 * np.sin(_sweep_phase(layer_f + (f_start - f_end) * np.exp(-t / pitch_decay_s)))\
            * _env(n, rng.uniform(0.03, 0.1))
    x = _saturate(x, rng.choice([1.0, rng.uniform(1.5, 6.0)]))
    if rng.random() < 0.4:
        x = _filter(x, "lowpass", rng.uniform(800, 5000))
    return x, -1


def _snare(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    t = _t(n)
    f0 = rng.uniform(150, 280)
    body_env = _env(n, rng.uniform(0.04, 0.16))
    body = np.sin(_sweep_phase(f0 * (1 + 0.5 * np.exp(-t / 0.01)))) * body_env
    if rng.random() < 0.6:
        body += 0.5 * np.sin(_sweep_phase(f0 * rng.uniform(1.5, 1.9) * np.ones(n))) * body_env
    wires = _noise(rng, n, rng.uniform(-3, 2))
    wires = _filter(wires, "bandpass", (rng.uniform(800, 3000), rng.uniform(6000, 16000)))
    wires *= _env(n, rng.uniform(0.08, 0.3), curve=rng.uniform(0.8, 1.5))
    mix = rng.uniform(0.35, 0.85)
    x = (1 - mix) * body / (np.max(np.abs(body)) + 1e-9) + mix * wires / (np.max(np.abs(wires)) + 1e-9)
    if rng.random() < 0.5:
        x = _resonator(x, rng.uniform(180, 900), rng.uniform(1, 6), rng.uniform(3, 10))
    return _saturate(x, rng.choice([1.0, rng.uniform(1.5, 5.0)])), -1


def _clap(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    t = _t(n)
    src = _filter(_noise(rng, n, rng.uniform(-2, 2)), "bandpass", (rng.uniform(600, 1400), rng.uniform(2500, 7000)))
    bursts = int(rng.integers(3, 6))
    spacing_s = rng.uniform(0.006, 0.016)
    env = np.zeros(n)
    for b in range(bursts):
        start = b * spacing_s * rng.uniform(0.8, 1.2)
        shift = np.clip(t - start, 0, None)
        env = np.maximum(env, np.where(t >= start, np.exp(-shift / rng.uniform(0.004, 0.01)), 0.0))
    tail_start = bursts * spacing_s
    tail = np.where(t >= tail_start, np.exp(-np.clip(t - tail_start, 0, None) / rng.uniform(0.06, 0.3)), 0.0)
    x = src * np.maximum(env, tail * rng.uniform(0.4, 0.9))
    if rng.random() < 0.5:
        x = _resonator(x, rng.uniform(900, 2000), rng.uniform(1, 4), rng.uniform(2, 8))
    return _saturate(x, rng.choice([1.0, rng.uniform(1.5, 3.0)])), -1


def _hat(rng: np.random.Generator, n: int, open_hat: bool) -> tuple[np.ndarray, int]:
    metal = _metal(rng, n, rng.uniform(280, 560))
    noise = _noise(rng, n, rng.uniform(-1, 3))
    mix = rng.uniform(0.0, 1.0)
    src = mix * metal + (1 - mix) * noise
    src = _filter(src, "highpass", rng.uniform(5000, 10000), order=int(rng.integers(2, 5)))
    if rng.random() < 0.5:
        src = _resonator(src, rng.uniform(7000, 14000), rng.uniform(1, 5), rng.uniform(3, 9))
    if open_hat:
        decay = rng.uniform(0.18, 0.6)
        env = _env(n, decay, attack_s=rng.uniform(0.0005, 0.004), curve=rng.uniform(0.7, 1.2))
    else:
        env = _env(n, rng.uniform(0.012, 0.06), curve=rng.uniform(0.8, 1.6))
    return src * env, -1


def _tom(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    t = _t(n)
    note = rng.uniform(40, 57)
    f0 = _midi_hz(note)
    freq = f0 * (1 + rng.uniform(0.1, 0.6) * np.exp(-t / rng.uniform(0.02, 0.12)))
    env = _env(n, rng.uniform(0.12, 0.45))
    x = np.sin(_sweep_phase(freq)) * env
    x += rng.uniform(0.1, 0.4) * np.sin(_sweep_phase(freq * rng.uniform(1.45, 1.65))) * env ** 1.5
    stick = _filter(_noise(rng, n), "bandpass", (rng.uniform(500, 1500), rng.uniform(3000, 8000)))
    x += stick * _env(n, rng.uniform(0.005, 0.03)) * rng.uniform(0.1, 0.5)
    return _saturate(x, rng.choice([1.0, rng.uniform(1.2, 3.0)])), int(round(note))


def _perc(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    t = _t(n)
    kind = rng.integers(0, 4)
    if kind == 0:  # rim shot: a click and a high, fast ring
        f0 = rng.uniform(400, 1800)
        x = np.sin(2 * np.pi * f0 * t) * _env(n, rng.uniform(0.01, 0.04))
        x += _filter(_noise(rng, n), "bandpass", (1500, 9000)) * _env(n, 0.004) * rng.uniform(0.3, 1.0)
    elif kind == 1:  # cowbell: two square waves through a band-pass
        f0 = rng.uniform(500, 900)
        sq = np.sign(np.sin(2 * np.pi * f0 * t)) + np.sign(np.sin(2 * np.pi * f0 * rng.uniform(1.4, 1.55) * t))
        x = _filter(sq, "bandpass", (f0 * 0.8, f0 * 4)) * _env(n, rng.uniform(0.05, 0.25), curve=0.8)
    elif kind == 2:  # wood block / clave: a strongly damped resonance
        f0 = rng.uniform(700, 2500)
        x = np.sin(2 * np.pi * f0 * t) * _env(n, rng.uniform(0.015, 0.06))
        x += 0.3 * np.sin(2 * np.pi * f0 * rng.uniform(2.5, 3.2) * t) * _env(n, 0.01)
    else:  # shaker: a short band-passed noise swell
        attack = rng.uniform(0.01, 0.04)
        env = _env(n, rng.uniform(0.03, 0.1), attack_s=attack)
        x = _filter(_noise(rng, n, rng.uniform(0, 3)), "bandpass", (rng.uniform(3000, 6000), 16000)) * env
    return _saturate(x, rng.choice([1.0, rng.uniform(1.2, 3.0)])), -1


def _bass(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    t = _t(n)
    note = int(rng.integers(28, 48))
    f0 = _midi_hz(note)
    if rng.random() < 0.5:  # 808-style: a long sine with a small glide into pitch, driven
        freq = f0 * (1 + rng.uniform(0.0, 0.5) * np.exp(-t / rng.uniform(0.01, 0.05)))
        env = _env(n, rng.uniform(0.5, 1.6), attack_s=rng.uniform(0.001, 0.01), curve=rng.uniform(1.0, 2.5))
        x = np.sin(_sweep_phase(freq)) * env
        x = _saturate(x, rng.uniform(1.0, 5.0))
    else:  # plucked: a saw or square through a closing low-pass
        phase = _sweep_phase(np.full(n, f0)) / (2 * np.pi)
        saw = 2 * (phase % 1.0) - 1
        square = np.sign(np.sin(2 * np.pi * phase))
        mix = rng.uniform(0, 1)
        raw = mix * saw + (1 - mix) * square
        cutoff_env = _env(n, rng.uniform(0.05, 0.3))
        # a time-varying low-pass by blending a bright and a dark copy
        bright = _filter(raw, "lowpass", rng.uniform(1500, 4000))
        dark = _filter(raw, "lowpass", f0 * rng.uniform(1.5, 3))
        x = (cutoff_env * bright + (1 - cutoff_env) * dark) * _env(n, rng.uniform(0.25, 0.9), curve=1.3)
        x = _saturate(x, rng.choice([1.0, rng.uniform(1.5, 3.0)]))
    return x, note


def _pluck(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    t = _t(n)
    note = int(rng.integers(50, 86))
    f0 = _midi_hz(note)
    kind = rng.integers(0, 3)
    notes = [0]
    if rng.random() < 0.3:  # a chord stab
        notes = [0, int(rng.choice([3, 4])), 7] + ([int(rng.choice([10, 11, 12]))] if rng.random() < 0.5 else [])
    x = np.zeros(n)
    for offset in notes:
        f = f0 * 2 ** (offset / 12)
        if kind == 0:  # additive pluck: harmonics that die faster the higher they are
            decay = rng.uniform(0.15, 0.8)
            for h in range(1, 12):
                if f * h > SR * 0.45:
                    break
                x += (rng.uniform(0.3, 1.0) / h) * np.sin(2 * np.pi * f * h * t) * _env(n, decay / h ** 0.7)
        elif kind == 1:  # two-operator FM keys / bell
            ratio = rng.choice([1.0, 2.0, 3.5, 1.41])
            index_env = _env(n, rng.uniform(0.05, 0.4)) * rng.uniform(1, 6)
            x += np.sin(2 * np.pi * f * t + index_env * np.sin(2 * np.pi * f * ratio * t)) * _env(
                n, rng.uniform(0.2, 0.9), curve=1.1)
        else:  # Karplus–Strong string
            period = max(2, int(round(SR / f)))
            burst = rng.uniform(-1, 1, period)
            damping = rng.uniform(0.985, 0.999)
            reps = n // period + 1
            out = np.empty(reps * period)
            out[:period] = burst
            buf = burst
            for r in range(1, reps):
                buf = damping * 0.5 * (buf + np.roll(buf, 1))
                out[r * period : (r + 1) * period] = buf
            x += out[:n]
    x = _filter(x, "lowpass", rng.uniform(2500, 14000))
    return _saturate(x, rng.choice([1.0, rng.uniform(1.2, 2.5)])), note


def _texture(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    t = _t(n)
    duration = n / SR
    kind = rng.integers(0, 3)
    noise = _noise(rng, n, rng.uniform(-4, 2))
    # a band-pass whose centre moves: done on STFT frames, which is cheap for a moving filter
    f_a, f_b = np.exp(rng.uniform(np.log(200), np.log(12000), 2))
    if kind == 0:  # riser: upward sweep, swelling
        f_a, f_b = sorted((f_a, f_b))
        amp = (t / duration) ** rng.uniform(0.5, 2.5)
    elif kind == 1:  # downlifter: downward sweep, fading
        f_b, f_a = sorted((f_a, f_b))
        amp = (1 - t / duration) ** rng.uniform(0.5, 2.5)
    else:  # a swell: fades in and out, the filter wanders
        amp = np.sin(np.pi * t / duration) ** rng.uniform(0.5, 2.0)
    freqs, frames, spec = signal.stft(noise, SR, nperseg=1024)
    progress = np.clip(frames / duration, 0, 1)
    centre = f_a * (f_b / f_a) ** progress
    width_oct = rng.uniform(0.3, 2.0)
    mask = np.exp(-0.5 * (np.log2((freqs[:, None] + 1) / centre[None, :]) / width_oct) ** 2)
    _, swept = signal.istft(spec * mask, SR, nperseg=1024)
    x = np.zeros(n)
    x[: min(n, swept.size)] = swept[:n]
    x /= np.max(np.abs(x)) + 1e-9
    if rng.random() < 0.5:  # a pitched layer: a sine or saw glide that follows the sweep
        start_hz, end_hz = np.exp(rng.uniform(np.log(80), np.log(2000), 2))
        glide = start_hz * (end_hz / start_hz) ** (t / duration)
        tone = np.sin(_sweep_phase(glide))
        x += rng.uniform(0.1, 0.5) * tone
    return x * amp, -1


_RECIPES: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, int]]] = {
    "kick": _kick,
    "snare": _snare,
    "clap": _clap,
    "closed hat": lambda rng, n: _hat(rng, n, open_hat=False),
    "open hat": lambda rng, n: _hat(rng, n, open_hat=True),
    "tom": _tom,
    "perc": _perc,
    "bass": _bass,
    "pluck": _pluck,
    "texture": _texture,
}


def render_one(class_name: str, seed: int, index: int, samples: int = NATIVE_SAMPLES) -> tuple[np.ndarray, int]:
    """One one-shot of ``class_name`` (float32 ``[samples]``, peak 0.9) and its MIDI root (-1: none).

    Raises ValueError for an unknown class name.
    """
    if class_name not in _RECIPES:
        raise ValueError(f"class {class_name!r} is not one of: {', '.join(CLASSES)}")
    rng = np.random.default_rng((seed, CLASSES.index(class_name), index))
    x, root = _RECIPES[class_name](rng, samples)
    # a short fade at the very end so every one-shot stops cleanly
    fade = min(samples, 256)
    x[-fade:] *= np.linspace(1.0, 0.0, fade)
    peak = np.max(np.abs(x))
    if not np.isfinite(peak) or peak <= 0:
        raise RuntimeError(f"recipe for {class_name!r} produced silence or NaN (seed {seed}, index {index})")
    return (x * (PEAK / peak)).astype(np.float32), root


def render_corpus(
    seed: int, per_class: int, classes: tuple[str, ...] = CLASSES, samples: int = NATIVE_SAMPLES,
    progress: Callable[[int, int], None] | None = None,
) -> Corpus:
    """``per_class`` one-shots of every class in ``classes``, labelled by their index in :data:`CLASSES`."""
    if per_class < 1:
        raise ValueError(f"per_class={per_class} is not accepted: expected at least 1")
    total = per_class * len(classes)
    audio = np.empty((total, samples), dtype=np.float32)
    labels = np.empty(total, dtype=np.int64)
    roots = np.empty(total, dtype=np.int64)
    k = 0
    for name in classes:
        for i in range(per_class):
            audio[k], roots[k] = render_one(name, seed, i, samples)
            labels[k] = CLASSES.index(name)
            k += 1
            if progress is not None and k % 200 == 0:
                progress(k, total)
    return Corpus(audio=audio, labels=labels, root_notes=roots)
