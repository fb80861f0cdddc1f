"""Levels benchmark: the default model's renders conformed and written, measured as a producer's meter would.

Prints, in one run:

1. Over default-model renders (loops, textures and one-shots, several variations of each request,
   conformed the way the front door conforms them and written as 24-bit WAV files): the share of
   files whose true peak is at most -1 dBTP (target: 100 %), their DC, and per request the
   loudness of its variations and their spread (target: at most 1 LU for loops and textures; one-shots
   are brought to a peak, not a loudness, and their spread is shown for reference). The true peak is
   measured on the written file by scipy's 4x polyphase resampler and the loudness by pyloudnorm,
   not by the engine's own code.
2. The conform time of a 4-bar stereo 44.1 kHz loop (``bench_conform.py``'s, stretched to 128 BPM at
   48 kHz) as a ratio of the loop's duration, before the level stage (the stages up to it) and after
   it (the whole conform), best of ``--repeats`` (target: at most 0.05x). The load average is
   printed: on a shared machine every time scales with it.

    python bench/bench_levels.py [--variations 4] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loopbridge.engine.conform import SourceInfo, conform_audio, encode_wav
from loopbridge.engine.host import conform_spec
from loopbridge.engine.models.default import DefaultModel
from loopbridge.engine.models.registry import EMBEDDED_DEFAULT_DIR
from loopbridge.engine.request import ConformSpec, GenerateRequest, Kind

from bench.bench_conform import BARS, SOURCE_BPM, SOURCE_RATE, TARGET_BPM, TARGET_RATE, bench_loop

CEILING_DBTP = -1.0
#: requests whose variations are rendered (prompt, kind, bars); tempo 128 BPM, seed 7
REQUESTS: tuple[tuple[str, Kind, float | None], ...] = (
    ("house", Kind.LOOP, 2.0),
    ("trap hats", Kind.LOOP, 1.0),
    ("breakbeat", Kind.LOOP, 2.0),
    ("bass line", Kind.LOOP, 2.0),
    ("pluck arp", Kind.LOOP, 2.0),
    ("dark texture", Kind.TEXTURE, 4.0),
    ("kick", Kind.ONE_SHOT, None),
    ("snare", Kind.ONE_SHOT, None),
    ("bass", Kind.ONE_SHOT, None),
    ("pluck", Kind.ONE_SHOT, None),
)


def true_peak_dbtp(audio: np.ndarray, looped: bool) -> float:
    """4x oversampled peak of ``[channels, frames]``, a loop's wrap included."""
    if looped:
        audio = np.concatenate([audio[:, -64:], audio, audio[:, :64]], axis=1)
    return float(20 * np.log10(np.abs(resample_poly(audio, 4, 1, axis=1)).max()))


def loudness_lufs(audio: np.ndarray, rate: int) -> float:
    """pyloudnorm's integrated loudness; a file shorter than a gating block is measured repeated."""
    if audio.shape[1] < 0.4 * rate:
        audio = np.tile(audio, (1, int(np.ceil(0.4 * rate / audio.shape[1])) + 1))
    return float(pyloudnorm.Meter(rate).integrated_loudness(audio.T))


def render_files(model: DefaultModel, variations: int) -> list[tuple[str, Kind, list[np.ndarray], int]]:
    """Each request's variations conformed and written as WAV files, read back: (name, kind, files, rate)."""
    out = []
    for prompt, kind, bars in REQUESTS:
        base = GenerateRequest(prompt=prompt, kind=kind, tempo_bpm=128.0, seed=7,
                               **({"bars": bars} if bars is not None else {}))
        requests = [base.with_variation(v) for v in range(variations)]
        spec = conform_spec(base)
        files = []
        for request, generated in zip(requests, model.generate(requests), strict=True):
            source = SourceInfo.for_request(request, generated.info)
            conformed = conform_audio(generated.audio, generated.sample_rate, kind, spec, source)
            data, _ = sf.read(io.BytesIO(encode_wav(conformed)), dtype="float64", always_2d=True)
            files.append(data.T)
        out.append((f"{prompt} ({kind.value})", kind, files, spec.sample_rate))
    return out


def timed_level_stage(repeats: int) -> tuple[float, float, float]:
    """Best-of-``repeats`` seconds of the whole conform and of the stages before the level stage, and
    the loop's duration at the song tempo."""
    audio = bench_loop()
    spec = ConformSpec(tempo_bpm=TARGET_BPM, bars=BARS, sample_rate=TARGET_RATE)
    source = SourceInfo(tempo_bpm=SOURCE_BPM)
    best_total, best_before = float("inf"), float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        conformed = conform_audio(audio, SOURCE_RATE, Kind.LOOP, spec, source)
        total = time.perf_counter() - started
        best_total = min(best_total, total)
        best_before = min(best_before, total - conformed.info["timings_s"]["levels"])
    return best_total, best_before, BARS * 4 * 60.0 / TARGET_BPM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variations", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 variations, 2 repeats")
    args = parser.parse_args()
    variations, repeats = (2, 2) if args.quick else (args.variations, args.repeats)

    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    model = DefaultModel.load(EMBEDDED_DEFAULT_DIR)
    requests = render_files(model, variations)

    print(f"\n1. default-model renders: {len(REQUESTS)} requests x {variations} variations, conformed and written")
    print(f"{'request':28s} {'true peak dBTP (max)':>21s} {'|DC| (max)':>11s} {'loudness LUFS':>28s} "
          f"{'spread LU':>10s}")
    under = total = 0
    spreads: list[float] = []
    for name, kind, files, rate in requests:
        peaks = [true_peak_dbtp(f, looped=kind is not Kind.ONE_SHOT) for f in files]
        dc = max(float(np.abs(f.mean(axis=1)).max()) for f in files)
        loudness = [loudness_lufs(f, rate) for f in files]
        spread = max(loudness) - min(loudness)
        if kind is not Kind.ONE_SHOT:
            spreads.append(spread)
        under += sum(p <= CEILING_DBTP for p in peaks)
        total += len(peaks)
        note = "" if kind is not Kind.ONE_SHOT else "  (peak-normalized)"
        print(f"{name:28s} {max(peaks):21.3f} {dc:11.2e} {' '.join(f'{v:6.2f}' for v in loudness):>28s} "
              f"{spread:10.2f}{note}")
    print(f"files at or under {CEILING_DBTP:g} dBTP: {under}/{total} = {100.0 * under / total:.1f} % (target 100 %)")
    print(f"loudness spread across variations, loops and textures: largest {max(spreads):.2f} LU "
          f"(target <= 1 LU)")

    whole, before, duration = timed_level_stage(repeats)
    print(f"\n2. conform of a {BARS}-bar stereo {SOURCE_RATE / 1000:g} kHz loop ({SOURCE_BPM:g} -> {TARGET_BPM:g} BPM, "
          f"{TARGET_RATE / 1000:g} kHz; {duration:.2f} s), best of {repeats}")
    print(f"before the level stage: {before:.3f} s = {before / duration:.4f}x the loop's duration")
    print(f"after the level stage:  {whole:.3f} s = {whole / duration:.4f}x (target <= 0.05x); the level stage "
          f"{whole - before:.3f} s = {(whole - before) / duration:.4f}x")


if __name__ == "__main__":
    main()
