"""Synthetic test material for the conform tests and the benchmark: click tracks, a drum pattern,
tones, and measurements of where onsets are and what pitch a tone has."""

from __future__ import annotations

import numpy as np
from scipy.signal import hilbert, resample_poly


def metronome_click(
    sample_rate: int, freq_hz: float = 1000.0, decay_s: float = 0.008, length_s: float = 0.025
) -> np.ndarray:
    """A metronome beep: a decaying sine that starts at its first sample."""
    t = np.arange(int(length_s * sample_rate)) / sample_rate
    return np.exp(-t / decay_s) * np.sin(2 * np.pi * freq_hz * t)


def click_track(
    sample_rate: int,
    tempo_bpm: float,
    beats: int,
    *,
    click: np.ndarray | None = None,
    offset_s: float = 0.0,
    channels: int = 2,
) -> np.ndarray:
    """``beats`` clicks on the beat, exactly ``beats`` beats long, float32 ``[channels, samples]``."""
    click = metronome_click(sample_rate) if click is None else click
    frames = int(round(beats * 60.0 / tempo_bpm * sample_rate))
    mono = np.zeros(frames)
    for beat in range(beats):
        start = int(round(offset_s * sample_rate + beat * 60.0 / tempo_bpm * sample_rate))
        stop = min(frames, start + len(click))
        if start < frames:
            mono[start:stop] += click[: stop - start]
    return (0.8 * np.tile(mono, (channels, 1))).astype(np.float32)


def kick(sample_rate: int) -> np.ndarray:
    """A synthetic kick: a sine sweeping down to 50 Hz, decaying, starting at zero."""
    t = np.arange(int(0.3 * sample_rate)) / sample_rate
    return np.sin(2 * np.pi * (50 * t + 300 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 12)


def pad_with_kicks(sample_rate: int, tempo_bpm: float, beats: int) -> np.ndarray:
    """A sustained chord (221.3, 277.7, 331.1 Hz; its periods divide no bar length used here) and a kick on
    every beat: cut anywhere, its wrap jumps from one phase of the chord to another."""
    frames = int(round(beats * 60.0 / tempo_bpm * sample_rate))
    t = np.arange(frames) / sample_rate
    mono = 0.2 * (
        np.sin(2 * np.pi * 221.3 * t + 0.3) + np.sin(2 * np.pi * 277.7 * t) + np.sin(2 * np.pi * 331.1 * t + 1.0)
    )
    hit = 0.5 * kick(sample_rate)
    for beat in range(beats):
        start = int(round(beat * 60.0 / tempo_bpm * sample_rate))
        stop = min(frames, start + len(hit))
        mono[start:stop] += hit[: stop - start]
    return np.stack([mono, 0.95 * mono]).astype(np.float32)


def drum_pattern(sample_rate: int, tempo_bpm: float, bars: int, *, seed: int = 0, bed: float = 0.0) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4, hats on every eighth; optionally a sine bed (110 Hz)."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / tempo_bpm * sample_rate
    frames = int(round(bars * 4 * beat))
    mono = np.zeros(frames)
    kick_hit = kick(sample_rate)
    snare_len = int(0.15 * sample_rate)
    snare = rng.standard_normal(snare_len) * np.exp(-np.arange(snare_len) / sample_rate * 30) * 0.5
    hat_len = int(0.04 * sample_rate)
    hat = rng.standard_normal(hat_len) * np.exp(-np.arange(hat_len) / sample_rate * 150) * 0.25

    def put(sound: np.ndarray, position: float) -> None:
        start = int(round(position))
        stop = min(frames, start + len(sound))
        mono[start:stop] += sound[: stop - start]

    for bar in range(bars):
        for b in range(4):
            position = (bar * 4 + b) * beat
            put(kick_hit if b in (0, 2) else snare, position)
            put(hat, position)
            put(0.6 * hat, position + beat / 2)
    if bed:
        mono += bed * np.sin(2 * np.pi * 110.0 * np.arange(frames) / sample_rate)
    return np.stack([mono, 0.9 * mono]).astype(np.float32)


def tone(sample_rate: int, freq_hz: float, duration_s: float, amplitude: float = 0.5, channels: int = 1) -> np.ndarray:
    t = np.arange(int(duration_s * sample_rate)) / sample_rate
    return np.tile(amplitude * np.sin(2 * np.pi * freq_hz * t), (channels, 1)).astype(np.float32)


def onset_errors_ms(
    audio: np.ndarray, sample_rate: int, tempo_bpm: float, beats: int, window_s: float = 0.03
) -> np.ndarray:
    """For each beat of the grid, how far (ms) the nearest onset is from it.

    The onset is where the Hilbert envelope first reaches half of its largest value within
    ``±window_s`` of the beat: a faint pre-echo does not count, a flam half as loud as the hit does.
    """
    envelope = np.abs(hilbert(audio.astype(np.float64).mean(axis=0)))
    beat = 60.0 / tempo_bpm * sample_rate
    half = int(window_s * sample_rate)
    errors = []
    for k in range(beats):
        center = int(round(k * beat))
        lo = max(0, center - half)
        segment = envelope[lo : center + half]
        errors.append((lo + int(np.argmax(segment >= 0.5 * segment.max())) - center) / sample_rate * 1000.0)
    return np.array(errors)


def dominant_frequency(audio: np.ndarray, sample_rate: int) -> float:
    """Frequency (Hz) of the strongest spectral peak, refined by a parabola on log magnitudes."""
    mono = audio.astype(np.float64).mean(axis=0)
    mono = mono[len(mono) // 8 : -len(mono) // 8] if len(mono) > 64 else mono
    n = 1 << int(np.ceil(np.log2(len(mono) * 4)))
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono)), n))
    i = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[i - 1 : i + 2] + 1e-30)
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return (i + offset) * sample_rate / n


def true_peak_dbtp(audio: np.ndarray, *, looped: bool = False) -> float:
    """True peak of ``[channels, frames]`` audio in dBTP, measured on its own: 4x oversampled with
    scipy's polyphase resampler (ITU-R BS.1770-4 Annex 2), the whole file at once; a loop with a
    copy of its start after its end, so the wrap is measured as it plays."""
    data = np.asarray(audio, dtype=np.float64)
    if looped:
        data = np.concatenate([data[:, -64:], data, data[:, :64]], axis=1)
    return float(20 * np.log10(np.abs(resample_poly(data, 4, 1, axis=1)).max()))
