"""Dance2Music on this machine: how well tracks follow synthesized dancers, and what it costs.

Prints, in one run:

1. Quality over a set of synthesized dancers (tempi from 72 to 168 BPM, tracker jitter, dropped
   frames, a gap, tempo changes; AIST++'s 17 joints at 60 fps): the motion's detected tempo error
   against the true tempo, then the rendered track's beat coverage and beat hit, its beats detected
   from the audio alone, against the motion's beats and against the dancer's true beats.
2. Cost, as ratios to real time: analysing a minute of motion, rendering a track (kit and loop
   material; with the model running, and again from the store), measuring a track, and one live
   estimate against the 0.25 s of motion between estimates.

Not a test: nothing here passes or fails.

    python bench/bench_dance2music.py [--threads 1] [--repeats 3] [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopbridge.bridge.motion_follow import ESTIMATE_INTERVAL_S, WINDOW_S
from loopbridge.engine.beats import beat_scores
from loopbridge.engine.core import Engine
from loopbridge.engine.dance2music import Dance2Music, DanceRequest, music_report
from loopbridge.engine.frontdoor import FrontDoor
from loopbridge.engine.motion import MotionKind, MotionStream, kinematic_beats

from tests.engine.motion_signals import dancing_body

DANCERS: list[tuple[str, list[tuple[float, float]], dict[str, object]]] = [
    ("72 BPM", [(20.0, 72.0)], {"jitter_cm": 1.0}),
    ("96 BPM, 10% drops", [(20.0, 96.0)], {"jitter_cm": 1.0, "drop_fraction": 0.1}),
    ("124 BPM, 2 cm jitter", [(20.0, 124.0)], {"jitter_cm": 2.0}),
    ("168 BPM", [(20.0, 168.0)], {"jitter_cm": 1.0}),
    ("100 -> 128 BPM, gap", [(12.0, 100.0), (12.0, 128.0)], {"jitter_cm": 1.0, "drop_fraction": 0.1,
                                                              "gap_s": (5.0, 0.4)}),
    ("110 -> 90 -> 120 BPM", [(10.0, 110.0), (10.0, 90.0), (10.0, 120.0)], {"jitter_cm": 1.0}),
]


def _median_s(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _tempo_error(found: np.ndarray, sections: list[tuple[float, float]]) -> float:
    """The largest relative tempo error over the sections (their first and last second left out)."""
    worst, start = 0.0, 0.0
    for duration, bpm in sections:
        inside = found[(found > start + 1.5) & (found < start + duration - 1.0)]
        detected = 60.0 * (len(inside) - 1) / (inside[-1] - inside[0])
        worst = max(worst, abs(detected / bpm - 1.0))
        start += duration
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3, help="kits (seeds) per dancer")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    engine = Engine(store_dir=Path(tempfile.mkdtemp(prefix="bench-d2m-")) / "store", device="cpu")
    # the front door every client goes through (no pre-rendering)
    door = FrontDoor(engine, prerender_depth=0, conform_workers=1).start()
    dance = Dance2Music(door)

    print(f"quality, kit material, default model, {args.seeds} kit(s) per dancer, hit window ±70 ms")
    print(f"{'dancer':24s} {'tempo err':>9s} {'coverage':>9s} {'hit':>6s} {'hit true':>9s} {'offset':>8s}")
    hits = []
    for name, sections, options in DANCERS:
        motion, truth = dancing_body(sections, seed=7, **options)  # type: ignore[arg-type]
        beats = kinematic_beats(motion)
        error = _tempo_error(beats.beats_s + beats.start_s, sections)
        for seed in range(args.seeds):
            track = dance.render(beats, DanceRequest(prompt="house", seed=seed))
            report = music_report(track)
            true_hit = beat_scores(truth - beats.start_s, report.music_beats_s).hit
            hits.append(report.scores.hit)
            print(f"{name if seed == 0 else '':24s} {100 * error:8.2f}% {report.scores.coverage:9.3f} "
                  f"{report.scores.hit:6.3f} {true_hit:9.3f} {report.scores.mean_offset_ms:6.1f}ms")
    print(f"beat hit over all tracks: mean {np.mean(hits):.3f}, lowest {np.min(hits):.3f}")

    motion, _ = dancing_body([(60.0, 118.0)], jitter_cm=1.0, drop_fraction=0.05, seed=8)
    beats = kinematic_beats(motion)
    short, _ = dancing_body([(20.0, 118.0)], jitter_cm=1.0, seed=9)
    short_beats = kinematic_beats(short)
    kit_track = dance.render(short_beats, DanceRequest(prompt="house", seed=1))
    stream = MotionStream(window_s=WINDOW_S)
    for t, frame in zip(short.times_s, short.values, strict=True):
        stream.push(MotionKind.JOINTS, np.nan_to_num(frame).ravel(), float(t))
    fresh = iter(range(1000, 2000))  # a seed never rendered before: the model runs every time

    def _fresh(material: str) -> float:
        seeds = [next(fresh) for _ in range(args.repeats)]
        times = []
        for seed in seeds:
            started = time.perf_counter()
            dance.render(short_beats, DanceRequest(prompt="house", seed=seed, material=material))
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    rows = [
        ("analyse 60 s of motion", 60.0, _median_s(lambda: kinematic_beats(motion), args.repeats)),
        ("render a 20 s track, kit (model runs)", short_beats.duration_s, _fresh("kit")),
        ("render a 20 s track, loop (model runs)", short_beats.duration_s, _fresh("loop")),
        ("render a 20 s track, kit (cached kit)", short_beats.duration_s,
         _median_s(lambda: dance.render(short_beats, DanceRequest(prompt="house", seed=1)), args.repeats)),
        ("render a 20 s track, loop (cached loop)", short_beats.duration_s,
         _median_s(lambda: dance.render(short_beats, DanceRequest(prompt="house", seed=1, material="loop")),
                   args.repeats)),
        ("measure a 20 s track (beat tracker)", kit_track.duration_s,
         _median_s(lambda: music_report(kit_track), args.repeats)),
        (f"one live estimate ({WINDOW_S:g} s window)", ESTIMATE_INTERVAL_S,
         _median_s(stream.estimate, args.repeats)),
    ]
    print(f"\ncost, {args.threads} thread(s), median of {args.repeats} after a warm-up")
    print(f"{'what':42s} {'seconds':>8s} {'of s':>7s} {'x real time':>12s}")
    for name, span_s, seconds in rows:
        print(f"{name:42s} {seconds:8.3f} {span_s:7.2f} {span_s / seconds:12.1f}")
    print(f"a live estimate takes {rows[-1][2] / ESTIMATE_INTERVAL_S:.2f} of the motion time between estimates")


if __name__ == "__main__":
    main()
