"""Conform benchmark: a 4-bar stereo 44.1 kHz loop stretched to 128 BPM at 48 kHz and tagged.

Prints, measured side by side in one run:

1. The default settings' time as a ratio of the loop's own duration (target: at most 0.05x), with
   the share of each stage (tempo estimation, resampling, stretch, beat alignment, seams, tagging),
   once with the tempo given by the model and once estimated.
2. The stretch settings one could choose instead: time ratio, how far beats land from the grid
   (click track and drum loop, stretched up and down), how clean a held bass note stays (energy
   outside the note, dB, lower is better) and how far a 5-semitone pitch shift is off (cents).

The resampler is measured on its own, against the alternatives, by ``bench/bench_resample.py``.

Times are the best of ``--repeats`` runs, the settings compared taking turns within each round
(the least disturbed by other work on the machine); the load average is printed because on a
shared machine every figure scales with it.

    python bench/bench_conform.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.signal import stft

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loopbridge.engine import ConformSpec, Kind
from loopbridge.engine.conform import (
    SourceInfo,
    StretchOptions,
    conform_audio,
    encode_wav,
    sample_filename,
)

from tests.engine.conform.signals import (
    click_track,
    dominant_frequency,
    drum_pattern,
    onset_errors_ms,
    tone,
)

SOURCE_RATE = 44100
TARGET_RATE = 48000
SOURCE_BPM = 120.0
TARGET_BPM = 128.0
BARS = 4


def bench_loop() -> np.ndarray:
    """4 bars at 120 BPM, stereo, 44.1 kHz: drums, a bass line on the beat, a held pad."""
    drums = drum_pattern(SOURCE_RATE, SOURCE_BPM, BARS, seed=11)
    frames = drums.shape[1]
    t = np.arange(frames) / SOURCE_RATE
    beat = 60.0 / SOURCE_BPM * SOURCE_RATE
    bass = np.zeros(frames)
    notes = [55.0, 55.0, 65.4, 49.0] * BARS
    for k, freq in enumerate(notes):
        start, stop = int(round(k * beat)), int(round((k + 1) * beat))
        local = np.arange(stop - start) / SOURCE_RATE
        bass[start:stop] = np.sin(2 * np.pi * freq * local) * np.minimum(1.0, local / 0.005) * np.exp(-local * 2)
    pad = 0.08 * (np.sin(2 * np.pi * 261.6 * t) + np.sin(2 * np.pi * 329.6 * t) + np.sin(2 * np.pi * 392.0 * t))
    mix = 0.6 * drums + 0.35 * bass + pad
    return np.stack([mix[0], mix[1] * 0.97]).astype(np.float32)


def timed_conforms(
    audio: np.ndarray, cases: dict[str, tuple[SourceInfo, StretchOptions]], repeats: int
) -> dict[str, tuple[float, dict]]:
    """Best-of-``repeats`` seconds for conform + tagging of each case, with the stage timings of
    that run. The cases take turns within each round, so a burst of other work on the machine
    slows all of them alike instead of one."""
    spec = ConformSpec(tempo_bpm=TARGET_BPM, bars=BARS, sample_rate=TARGET_RATE)
    best: dict[str, tuple[float, dict]] = {name: (float("inf"), {}) for name in cases}
    for _ in range(repeats):
        for name, (source, options) in cases.items():
            start = time.perf_counter()
            conformed = conform_audio(audio, SOURCE_RATE, Kind.LOOP, spec, source, options=options)
            tagged = time.perf_counter()
            encode_wav(conformed)
            sample_filename("bench loop", conformed, seed=1, variation=0)
            done = time.perf_counter()
            if done - start < best[name][0]:
                stages = dict(conformed.info["timings_s"])
                stages["tagging"] = done - tagged
                best[name] = (done - start, stages)
    return best


def grid_error_ms(options: StretchOptions) -> float:
    """Largest distance (ms) of a beat from the grid over a click track and a drum loop, each
    stretched up (100 to 128 BPM) and down (140 to 96 BPM), 44.1 kHz to 48 kHz."""
    worst = 0.0
    for source_bpm, target_bpm in ((100.0, 128.0), (140.0, 96.0)):
        for audio in (click_track(SOURCE_RATE, source_bpm, 8), drum_pattern(SOURCE_RATE, source_bpm, 2, bed=0.1)):
            spec = ConformSpec(tempo_bpm=target_bpm, bars=2, sample_rate=TARGET_RATE)
            out = conform_audio(audio, SOURCE_RATE, Kind.LOOP, spec, SourceInfo(tempo_bpm=source_bpm), options=options)
            worst = max(worst, float(np.abs(onset_errors_ms(out.audio, TARGET_RATE, target_bpm, 8)).max()))
    return worst


def held_junk_db(options: StretchOptions) -> float:
    """A held 55 Hz + 110 Hz note stretched 120 to 128 BPM: energy outside ±3 % of the two partials
    over the energy inside them (dB, the middle half of the loop; lower is cleaner)."""
    frames = int(round(2 * 4 * 60.0 / SOURCE_BPM * SOURCE_RATE))
    t = np.arange(frames) / SOURCE_RATE
    note = (0.4 * np.sin(2 * np.pi * 55.0 * t) + 0.2 * np.sin(2 * np.pi * 110.0 * t)).astype(np.float32)
    out = conform_audio(
        np.stack([note, note]),
        SOURCE_RATE,
        Kind.LOOP,
        ConformSpec(tempo_bpm=TARGET_BPM, bars=2, sample_rate=TARGET_RATE),
        SourceInfo(tempo_bpm=SOURCE_BPM),
        options=options,
    ).audio.mean(axis=0)
    middle = out[len(out) // 4 : 3 * len(out) // 4].astype(np.float64)
    power = np.abs(np.fft.rfft(middle * np.hanning(len(middle)))) ** 2
    freqs = np.fft.rfftfreq(len(middle), 1.0 / TARGET_RATE)
    inside = (np.abs(freqs - 55.0) < 1.65) | (np.abs(freqs - 110.0) < 3.3)
    return float(10 * np.log10(power[~inside].sum() / power[inside].sum()))


def _bass_line(rate: int, tempo_bpm: float) -> np.ndarray:
    """Four bars of a plucked bass line (a note and its octave on every beat)."""
    beat = 60.0 / tempo_bpm * rate
    mono = np.zeros(int(round(16 * beat)))
    for k, freq in enumerate([55.0, 55.0, 65.4, 49.0] * 4):
        start, stop = int(round(k * beat)), int(round((k + 1) * beat))
        t = np.arange(stop - start) / rate
        attack = np.minimum(1.0, t / 0.005)
        mono[start:stop] = attack * (0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-t * 2))
        mono[start:stop] += attack * 0.25 * np.sin(4 * np.pi * freq * t) * np.exp(-t * 3)
    return np.stack([mono, mono]).astype(np.float32)


def _pad(rate: int, tempo_bpm: float) -> np.ndarray:
    """Four bars of a held C major chord over C3."""
    t = np.arange(int(round(16 * 60.0 / tempo_bpm * rate))) / rate
    mono = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (130.8, 164.8, 196.0, 261.6))
    return np.stack([mono, mono]).astype(np.float32)


def distance_to_ideal_db(options: StretchOptions, make) -> float:  # type: ignore[no-untyped-def]
    """Mean log-spectral distance (dB, below 2 kHz, where the ideal has energy) between material
    stretched 120 to 128 BPM and the same material made at 128 BPM: lower is closer."""
    spec = ConformSpec(tempo_bpm=TARGET_BPM, bars=4, sample_rate=TARGET_RATE)
    source = make(SOURCE_RATE, SOURCE_BPM)
    out = conform_audio(source, SOURCE_RATE, Kind.LOOP, spec, SourceInfo(tempo_bpm=SOURCE_BPM), options=options)
    ideal = make(TARGET_RATE, TARGET_BPM)
    frames = min(out.audio.shape[1], ideal.shape[1])
    _, _, got = stft(out.audio.mean(axis=0)[:frames], TARGET_RATE, nperseg=4096, noverlap=3072)
    _, _, want = stft(ideal.mean(axis=0)[:frames], TARGET_RATE, nperseg=4096, noverlap=3072)
    band = np.fft.rfftfreq(4096, 1.0 / TARGET_RATE) < 2000
    got, want = np.abs(got[band]), np.abs(want[band])
    used = want > 1e-3
    return float(np.mean(np.abs(20 * np.log10(got + 1e-4) - 20 * np.log10(want + 1e-4))[used]))


def pitch_error_cents(options: StretchOptions) -> float:
    """A 440 Hz loop stretched 120 to 128 BPM and shifted down 5 semitones: the error, in cents."""
    spec = ConformSpec(tempo_bpm=TARGET_BPM, bars=1, pitch_semitones=-5.0, sample_rate=TARGET_RATE)
    audio = tone(SOURCE_RATE, 440.0, 2.0, channels=2)
    out = conform_audio(audio, SOURCE_RATE, Kind.LOOP, spec, SourceInfo(tempo_bpm=SOURCE_BPM), options=options)
    return float(1200 * np.log2(dominant_frequency(out.audio, TARGET_RATE) / (440.0 * 2 ** (-5 / 12))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (the best is kept)")
    parser.add_argument("--quick", action="store_true", help="skip the table of alternatives")
    args = parser.parse_args()

    audio = bench_loop()
    duration_s = audio.shape[1] / SOURCE_RATE
    load = os.getloadavg()
    print(
        f"loop: {BARS} bars, {SOURCE_BPM:g} -> {TARGET_BPM:g} BPM, "
        f"{SOURCE_RATE} -> {TARGET_RATE} Hz, stereo, {duration_s:.2f} s"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"times: best of {args.repeats}; target: at most 0.05x the loop's duration\n")

    defaults = StretchOptions()
    print(f"default settings: {defaults}")
    stages = ("tempo", "resample", "stretch", "align", "seams", "tagging")
    print(f"  {'source tempo':18s} {'total':>8s}  " + "  ".join(f"{s:>8s}" for s in stages))
    sources = {"given by model": SourceInfo(tempo_bpm=SOURCE_BPM), "estimated (beats)": SourceInfo(beats=16)}
    timed = timed_conforms(audio, {label: (source, defaults) for label, source in sources.items()}, args.repeats)
    for label, (total, timings) in timed.items():
        shares = "  ".join(f"{100 * timings.get(s, 0.0) / total:7.1f}%" for s in stages)
        print(f"  {label:18s} {total / duration_s:7.4f}x  {shares}")

    if args.quick:
        return
    print(
        "\nstretch settings: time (the 4-bar loop, tempo given); grid (worst beat, ms); held (junk around a"
        "\nheld bass note, dB); bass, pad (distance to the same part made at the new tempo, dB); pitch (cents)"
    )
    candidates = {
        "R3 auto (default)": StretchOptions(),
        "R3 standard": StretchOptions(window="standard"),
        "R3 auto, no align": StretchOptions(align=False),
        "R2 crisp standard": StretchOptions(high_quality=False, window="standard"),
        "R2 crisp short": StretchOptions(high_quality=False, window="short"),
        "R2 smooth standard": StretchOptions(high_quality=False, transient_mode="smooth", window="standard"),
    }
    given = SourceInfo(tempo_bpm=SOURCE_BPM)
    timed = timed_conforms(audio, {name: (given, options) for name, options in candidates.items()}, args.repeats)
    print(f"  {'setting':20s} {'time':>8s} {'grid':>6s} {'held':>6s} {'bass':>6s} {'pad':>6s} {'pitch':>6s}")
    for name, options in candidates.items():
        total = timed[name][0]
        grid = grid_error_ms(options)
        held = held_junk_db(options)
        bass = distance_to_ideal_db(options, _bass_line)
        pad = distance_to_ideal_db(options, _pad)
        cents = pitch_error_cents(options)
        print(f"  {name:20s} {total / duration_s:7.4f}x {grid:6.1f} {held:+6.1f} {bass:6.2f} {pad:6.2f} {cents:+6.1f}")


if __name__ == "__main__":
    main()
