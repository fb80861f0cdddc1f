"""Cost of the pre-echo band limiter (engine/conform/alignment.py), the engine's against the straightforward
one it must match (``tests/engine/conform/pre_echo_reference.py``: every band split off by a full-rate inverse
FFT and measured at the full rate), side by side in one run, the two alternated, best of ``--repeats``:

1. the limiter alone on one input: loop_amen_full (4 bars, stereo) resampled to 48 kHz, stretched 140 -> 128
   BPM by the engine's stretcher; the source's band levels, then the limiting of the stretch;
2. a whole conform of the same loop, 140 -> 128 BPM at 48 kHz (as ``bench_real_loops.py`` section 4, the
   tempo estimated, warp "complex"), with the engine's limiter and with the reference one put in its place;
   and how far the two outputs are apart.

Figures are ratios of the loop's duration (target for the whole conform: at most 0.05x).

    python bench/bench_pre_echo.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loopbridge.engine import ConformSpec, Kind
from loopbridge.engine.conform import SourceInfo, alignment, conform_audio, pipeline
from loopbridge.engine.conform.stretcher import stretch

from tests.engine.conform import pre_echo_reference as reference
from tests.engine.conform.real_audio import real_loops, real_loops_available

WAYS = {"reference": reference, "engine": alignment}


def _best(repeats: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not real_loops_available():
        sys.exit("Debian's sonic-pi-samples are not installed (apt-get install sonic-pi-samples)")
    warnings.filterwarnings("ignore", category=UserWarning)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    amen = next(loop for loop in real_loops() if loop.name == "loop_amen_full")
    duration_s = amen.audio.shape[1] / amen.sample_rate
    rate, factor = 48000, 128.0 / amen.tempo_bpm
    source = resample_poly(amen.audio, 160, 147, axis=1).astype(np.float32)
    stretched = stretch(source, rate, factor)
    block = int(round(alignment.PRE_ECHO_BLOCK_S * rate))

    def limiter(way: object) -> Callable[[], object]:
        def run() -> object:
            levels = way.band_levels(source, rate, block)  # type: ignore[attr-defined]
            return way.limit_pre_echo(stretched.copy(), levels, block, loop_start=0.0,  # type: ignore[attr-defined]
                                      factor=factor, pre_frames=0, sample_rate=rate)
        return run

    print(f"\n1. the limiter alone (loop_amen_full, {duration_s:.2f} s, at 48 kHz, stretched x{factor:.4f}), "
          f"best of {args.repeats}")
    for name, seconds in _best(args.repeats, {name: limiter(way) for name, way in WAYS.items()}).items():
        print(f"   {name:10s}: {seconds * 1000:7.1f} ms = {seconds / duration_s:.4f}x the loop's duration")

    spec = ConformSpec(tempo_bpm=128.0, bars=4, sample_rate=rate, warp="complex")
    outputs: dict[str, np.ndarray] = {}

    def conform(way: object, name: str) -> Callable[[], object]:
        def run() -> object:
            pipeline.band_levels = way.band_levels  # type: ignore[attr-defined]
            pipeline.limit_pre_echo = way.limit_pre_echo  # type: ignore[attr-defined]
            try:
                outputs[name] = conform_audio(amen.audio, amen.sample_rate, Kind.LOOP, spec, SourceInfo()).audio
            finally:
                pipeline.band_levels, pipeline.limit_pre_echo = alignment.band_levels, alignment.limit_pre_echo
            return outputs[name]
        return run

    print(f"\n2. a whole conform (loop_amen_full 140 -> 128 BPM at 48 kHz, tempo estimated, warp 'complex'), "
          f"best of {args.repeats}")
    for name, seconds in _best(args.repeats, {name: conform(way, name) for name, way in WAYS.items()}).items():
        print(f"   {name:10s} limiter: {seconds * 1000:7.1f} ms = {seconds / duration_s:.4f}x the loop's "
              f"{duration_s:.2f} s (target <= 0.05x)")
    difference = outputs["engine"] - outputs["reference"]
    print(f"   outputs apart: at most {np.abs(difference).max():.2e} (peak {np.abs(outputs['reference']).max():.3f}), "
          f"difference {10 * np.log10(np.sum(outputs['reference'] ** 2) / max(np.sum(difference ** 2), 1e-30)):.1f} dB "
          "under the output")
    load = os.getloadavg()
    print(f"   load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
