"""Levels benchmark: the default model's renders conformed and written, measured as a producer's meter would.

Prints, in one run:

1. Over default-model renders (loops, textures and one-shots, several variations of each request,
   conformed the way the front door conforms them and written as 24-bit WAV files): the share of
   files whose true peak is at most -1 dBTP (target: 100 %), their DC, and per request the
   loudness of its variations and their spread (target: at most 1 LU for loops and textures; one-shots
   are brought to a peak, not a loudness, and their spread is shown for reference). Loops are
   levelled both ways, side by side: each file on its own (the level stage before request levels)
   and with its request (variation 0 conformed first sets the level the others are brought to, as
   the front door does), with the spread of variations 0-3 and of all of them. The true peak is
   measured on the written file by scipy's 4x polyphase resampler and the loudness by pyloudnorm,
   not by the engine's own code.
2. The conform time of a 4-bar stereo 44.1 kHz loop (``bench_conform.py``'s, stretched to 128 BPM at
   48 kHz) as a ratio of the loop's duration, before the level stage (the stages up to it) and after
   it (the whole conform), best of ``--repeats`` (target: at most 0.05x). The load average is
   printed: on a shared machine every time scales with it.

3. The first answer's cost (seconds to the first file of a new loop request: its renders and conforms)
   three ways: each file levelled on its own; the request's level set by that file (as now); the
   level set by reference variations 0-3 fitted first (the rejected design: four renders).

    python bench/bench_levels.py [--variations 8] [--repeats 5] [--quick] [--only PROMPT ...]
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

from loopbridge.engine.conform import ConformedAudio, SourceInfo, conform_audio, encode_wav
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


def _written(conformed: ConformedAudio) -> np.ndarray:
    data, _ = sf.read(io.BytesIO(encode_wav(conformed)), dtype="float64", always_2d=True)
    return data.T


def render_files(model: DefaultModel, variations: int, only: list[str] | None
                 ) -> list[tuple[str, Kind, list[np.ndarray], list[np.ndarray] | None, int]]:
    """Each request's variations conformed and written as WAV files, read back: (name, kind, files levelled
    on their own, files levelled with their request (loops; None otherwise), rate)."""
    out = []
    for prompt, kind, bars in REQUESTS:
        if only and prompt not in only:
            continue
        base = GenerateRequest(prompt=prompt, kind=kind, tempo_bpm=128.0, seed=7,
                               **({"bars": bars} if bars is not None else {}))
        requests = [base.with_variation(v) for v in range(variations)]
        spec = conform_spec(base)
        files, grouped = [], []
        crest: float | None = None
        for request, generated in zip(requests, model.generate(requests), strict=True):
            source = SourceInfo.for_request(request, generated.info)
            conformed = conform_audio(generated.audio, generated.sample_rate, kind, spec, source)
            files.append(_written(conformed))
            if kind is Kind.LOOP:
                # as the front door: the first variation conformed sets the request's level
                together = conform_audio(generated.audio, generated.sample_rate, kind,
                                         spec.replace(level_crest_db=crest), source, sets_level=crest is None)
                crest = together.info["levels"]["crest_db"] if crest is None else crest
                grouped.append(_written(together))
        out.append((f"{prompt} ({kind.value})", kind, files, grouped if kind is Kind.LOOP else None, spec.sample_rate))
    return out


def first_answer_seconds(model: DefaultModel) -> tuple[float, float, float]:
    """Seconds from a new loop request to its first file (render, conform, WAV encoding): levelled on its
    own; setting its request's level (now); after variations 0-3 were rendered and fitted to set it."""
    base = GenerateRequest(prompt="house", kind=Kind.LOOP, tempo_bpm=128.0, seed=11, bars=2.0)
    spec = conform_spec(base)

    def answer(count: int, sets_level: bool) -> float:
        started = time.perf_counter()
        requests = [base.with_variation(v) for v in range(count)]
        for request, generated in zip(requests, model.generate(requests), strict=True):
            source = SourceInfo.for_request(request, generated.info)
            encode_wav(conform_audio(generated.audio, generated.sample_rate, Kind.LOOP, spec, source,
                                     sets_level=sets_level))
        return time.perf_counter() - started

    return answer(1, False), answer(1, True), answer(4, True)


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
    parser.add_argument("--variations", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="4 variations, 2 repeats")
    parser.add_argument("--only", nargs="*", help="these requests' prompts only (e.g. house 'bass line')")
    args = parser.parse_args()
    variations, repeats = (4, 2) if args.quick else (args.variations, args.repeats)

    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    model = DefaultModel.load(EMBEDDED_DEFAULT_DIR)
    requests = render_files(model, variations, args.only)

    print(f"\n1. default-model renders: {len(requests)} requests x {variations} variations, conformed and written")
    print(f"{'request':22s} {'way':9s} {'true peak dBTP (max)':>20s} {'|DC| (max)':>10s}  "
          f"{'loudness LUFS, variation 0 first':<{7 * variations}s} {'spread 0-3':>10s} {'spread all':>10s}")
    under = total = 0
    spreads: dict[str, list[tuple[float, float]]] = {"alone": [], "together": []}
    for name, kind, files, grouped, rate in requests:
        ways = [("alone", files)] + ([("together", grouped)] if grouped is not None else [])
        for way, written in ways:
            peaks = [true_peak_dbtp(f, looped=kind is not Kind.ONE_SHOT) for f in written]
            dc = max(float(np.abs(f.mean(axis=1)).max()) for f in written)
            loudness = [loudness_lufs(f, rate) for f in written]
            four, every = np.ptp(loudness[:4]), np.ptp(loudness)
            if kind is not Kind.ONE_SHOT:
                # a texture has one way: it is levelled alone both before and now
                for key in (("alone", "together") if grouped is None else (way,)):
                    spreads[key].append((float(four), float(every)))
            if kind is Kind.ONE_SHOT or way == "together" or grouped is None:
                under += sum(p <= CEILING_DBTP for p in peaks)
                total += len(peaks)
            note = "  (peak-normalized)" if kind is Kind.ONE_SHOT else ""
            print(f"{name:22s} {way:9s} {max(peaks):20.3f} {dc:10.2e}  "
                  f"{' '.join(f'{v:6.2f}' for v in loudness):<{7 * variations}s} {four:10.2f} {every:10.2f}{note}")
    print(f"files written now (loops levelled together) at or under {CEILING_DBTP:g} dBTP: {under}/{total} = "
          f"{100.0 * under / total:.1f} % (target 100 %)")
    for way, label in (("alone", "each file alone (before)"), ("together", "with its request (now)")):
        if spreads[way]:
            four, every = max(s[0] for s in spreads[way]), max(s[1] for s in spreads[way])
            print(f"largest loudness spread, loops and textures, {label}: variations 0-3 {four:.2f} LU, "
                  f"0-{variations - 1} {every:.2f} LU (target <= 1 LU)")

    whole, before, duration = timed_level_stage(repeats)
    print(f"\n2. conform of a {BARS}-bar stereo {SOURCE_RATE / 1000:g} kHz loop ({SOURCE_BPM:g} -> {TARGET_BPM:g} BPM, "
          f"{TARGET_RATE / 1000:g} kHz; {duration:.2f} s), best of {repeats}")
    print(f"before the level stage: {before:.3f} s = {before / duration:.4f}x the loop's duration")
    print(f"after the level stage:  {whole:.3f} s = {whole / duration:.4f}x (target <= 0.05x); the level stage "
          f"{whole - before:.3f} s = {(whole - before) / duration:.4f}x")

    alone, now, references = first_answer_seconds(model)
    print("\n3. first answer to a new loop request (house, 2 bars, 128 BPM: render and conform to the first file)")
    print(f"levelled on its own (before): {alone:.2f} s; setting its request's level (now): {now:.2f} s; "
          f"after rendering and fitting reference variations 0-3 (rejected): {references:.2f} s")


if __name__ == "__main__":
    main()
