"""Resampler benchmark: the candidates for the engine's one resampler, side by side in one run.

For every pair of the rates the engine meets (16 kHz: AudioLDM; 44.1 kHz: Riffusion, Stable Audio,
most files; 48 kHz: the default output rate; 96 kHz: hosts that run at it), both directions, it
prints for each candidate:

time
    seconds to resample stereo audio, as a ratio of the audio's own duration (lower is faster),
    the best of ``--repeats`` runs, the candidates taking turns within each round.
flat 0.8, flat 0.9
    the level (dB) of a tone at 0.8 and 0.9 of the lower rate's Nyquist frequency (0.4 and 0.45
    of that rate): how far up the passband stays flat.
spurious
    the worst level (dB, relative to the tone) of everything that is not the tone, for tones at
    0.1, 0.5 and 0.8 of the lower Nyquist frequency: images when upsampling, aliases and noise.
alias
    downsampling only: the worst output level (dB, relative to the input) of tones between 1.1 and
    1.9 times the output's Nyquist frequency, which should not come out at all (they would fold
    into the passband).
len
    the candidate's own output length minus ``round(samples * target / source)`` (the engine cuts
    or pads to that length exactly).
delay, edge
    where a short pulse comes out, minus where it went in (output samples), and how much of its
    energy is lost or gained (percent); the worst of a pulse 2 ms from the start, one in the middle
    and one 2 ms before the end, so a resampler that loses its start or its tail shows here.

The last row of each block is the engine's :func:`loopbridge.engine.audio.resample` itself.

    python bench/bench_resample.py [--repeats 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pedalboard
import soxr
from pedalboard.io import StreamResampler
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loopbridge.engine.audio import resample as engine_resample

RATES = (16000, 44100, 48000, 96000)
TONE_AMPLITUDE = 0.5
TONE_S = 0.5
PULSE_SIGMA_S = 0.0003

Resampler = Callable[[np.ndarray, int, int], np.ndarray]


def _pedalboard(quality: str) -> Resampler:
    def run(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
        resampler = StreamResampler(
            float(source_rate), float(target_rate), audio.shape[0], getattr(pedalboard.Resample.Quality, quality)
        )
        return np.concatenate([resampler.process(audio), resampler.process(None)], axis=1)

    return run


def _soxr(quality: str) -> Resampler:
    def run(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
        return np.ascontiguousarray(soxr.resample(np.ascontiguousarray(audio.T), source_rate, target_rate, quality).T)

    return run


def _scipy_poly(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    divisor = math.gcd(source_rate, target_rate)
    out = resample_poly(audio, target_rate // divisor, source_rate // divisor, axis=1)
    return np.asarray(out, dtype=np.float32)


#: what the engine used before it had one resampler: engine/audio.py (pedalboard's default quality),
#: the conform stage (soxr VHQ by default, the others selectable), Riffusion and the default model (scipy)
CANDIDATES: dict[str, Resampler] = {
    "soxr VHQ": _soxr("VHQ"),
    "soxr HQ": _soxr("HQ"),
    "pedalboard WindowedSinc32": _pedalboard("WindowedSinc32"),
    "pedalboard WindowedSinc16": _pedalboard("WindowedSinc16"),
    "scipy resample_poly": _scipy_poly,
    "engine: audio.resample": engine_resample,
}


def _expected(frames: int, source_rate: int, target_rate: int) -> int:
    return int(round(frames * target_rate / source_rate))


def _tone(rate: int, freq: float) -> np.ndarray:
    t = np.arange(int(TONE_S * rate)) / rate
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * freq * t + 0.3))[None].astype(np.float32)


def _fit(signal: np.ndarray, rate: int, freq: float) -> tuple[float, float]:
    """Amplitude of the ``freq`` component of the middle half of ``signal`` and the RMS of the rest."""
    middle = signal[len(signal) // 4 : 3 * len(signal) // 4].astype(np.float64)
    if freq >= rate / 2:
        return 0.0, float(np.sqrt(np.mean(middle**2)))
    t = np.arange(len(middle)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, middle, rcond=None)
    rest = middle - basis @ coef
    return float(np.hypot(*coef)), float(np.sqrt(np.mean(rest**2)))


def _db(ratio: float) -> float:
    return 20 * math.log10(max(ratio, 1e-12))


def quality_row(run: Resampler, source_rate: int, target_rate: int) -> dict[str, float | None]:
    nyquist_low = min(source_rate, target_rate) / 2
    flat = {}
    spurious = -math.inf
    for fraction in (0.1, 0.5, 0.8, 0.9):
        freq = fraction * nyquist_low
        out = run(_tone(source_rate, freq), source_rate, target_rate)[0]
        level, rest = _fit(out, target_rate, freq)
        flat[fraction] = _db(level / TONE_AMPLITUDE)
        if fraction <= 0.8:
            spurious = max(spurious, _db(rest / max(level, 1e-12)))
    alias: float | None = None
    if target_rate < source_rate:
        nyquist_out = target_rate / 2
        freqs = [f for f in np.linspace(1.1, 1.9, 9) * nyquist_out if f < 0.95 * source_rate / 2]
        for freq in freqs:
            out = run(_tone(source_rate, float(freq)), source_rate, target_rate)[0]
            _, rest = _fit(out, target_rate, target_rate)  # nothing is wanted: all of it is alias
            level_db = _db(rest * math.sqrt(2) / TONE_AMPLITUDE)
            alias = level_db if alias is None else max(alias, level_db)
    frames = int(0.5 * source_rate)
    length = run(np.zeros((1, frames), np.float32), source_rate, target_rate).shape[1]
    delay, edge = pulse_errors(run, source_rate, target_rate)
    return {"flat 0.8": flat[0.8], "flat 0.9": flat[0.9], "spurious": spurious, "alias": alias,
            "len": float(length - _expected(frames, source_rate, target_rate)), "delay": delay, "edge": edge}


def pulse_errors(run: Resampler, source_rate: int, target_rate: int) -> tuple[float, float]:
    """Where Gaussian pulses come out and how much of them: the largest offset of a pulse's centre
    (output samples) and the largest energy lost or gained (percent), over pulses near the start, in
    the middle and near the end of 0.5 s of audio."""
    frames = int(0.5 * source_rate)
    t = np.arange(frames) / source_rate
    duration_s = frames / source_rate
    worst_offset = worst_energy = 0.0
    for centre_s in (0.002, duration_s / 2, duration_s - 0.002):
        pulse = np.exp(-0.5 * ((t - centre_s) / PULSE_SIGMA_S) ** 2)[None].astype(np.float32)
        out = run(pulse, source_rate, target_rate)[0].astype(np.float64)
        expected = centre_s * target_rate
        lo = max(0, int(expected - 0.002 * target_rate))
        window = out[lo : int(expected + 0.002 * target_rate)]
        energy = window**2
        if not energy.sum() > 0:
            return math.inf, 100.0
        found = float((np.arange(lo, lo + len(window)) * energy).sum() / energy.sum())
        worst_offset = max(worst_offset, abs(found - expected))
        worst_energy = max(worst_energy, 100 * abs(energy.sum() / _pulse_energy(target_rate) - 1))
    return worst_offset, worst_energy


def _pulse_energy(rate: int) -> float:
    t = np.arange(-0.002 * rate, 0.002 * rate) / rate
    return float((np.exp(-0.5 * (t / PULSE_SIGMA_S) ** 2) ** 2).sum())


def timings(seconds: float, repeats: int) -> dict[tuple[int, int, str], float]:
    rng = np.random.default_rng(3)
    best: dict[tuple[int, int, str], float] = {}
    sources = {rate: (0.3 * rng.standard_normal((2, int(seconds * rate)))).astype(np.float32) for rate in RATES}
    for _ in range(repeats):
        for source_rate, target_rate in itertools.permutations(RATES, 2):
            for name, run in CANDIDATES.items():
                start = time.perf_counter()
                run(sources[source_rate], source_rate, target_rate)
                elapsed = (time.perf_counter() - start) / seconds
                key = (source_rate, target_rate, name)
                best[key] = min(best.get(key, math.inf), elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (the best is kept)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the timed stereo audio")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"times: stereo, {args.seconds:g} s, best of {args.repeats}, as a ratio of the audio's duration")
    print("flat: dB at 0.8/0.9 of the lower Nyquist; spurious, alias: dB (lower is better); "
          "len, delay: output samples; edge: percent\n")
    times = timings(args.seconds, args.repeats)
    header = f"  {'candidate':26s} {'time':>8s} {'flat 0.8':>9s} {'flat 0.9':>9s} {'spurious':>9s} {'alias':>8s} " \
             f"{'len':>5s} {'delay':>7s} {'edge':>6s}"
    for source_rate, target_rate in itertools.permutations(RATES, 2):
        print(f"{source_rate} -> {target_rate} Hz")
        print(header)
        for name, run in CANDIDATES.items():
            row = quality_row(run, source_rate, target_rate)
            alias = "n/a" if row["alias"] is None else f"{row['alias']:+8.1f}"
            print(f"  {name:26s} {times[(source_rate, target_rate, name)]:8.4f} {row['flat 0.8']:+9.3f} "
                  f"{row['flat 0.9']:+9.3f} {row['spurious']:+9.1f} {alias:>8s} {row['len']:+5.0f} "
                  f"{row['delay']:7.3f} {row['edge']:6.2f}")
        print()


if __name__ == "__main__":
    main()
