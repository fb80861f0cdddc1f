"""Speed of the embedded default model on this machine's CPU.

Prints, side by side in one run: one 1-second 44.1 kHz one-shot at the default step count, a batch
of 8 variations of it, the same split into the network's share and the decoder's (Griffin-Lim)
share, and a kit and a 2-bar loop. Each figure is the median of ``--repeats`` runs after one
warm-up run. Not a test: nothing here passes or fails.

    python bench/bench_default.py [--threads 1] [--repeats 5] [--steps N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from loopbridge.engine.models.default import DefaultModel, spectral
from loopbridge.engine.models.default.model import sample
from loopbridge.engine.models.registry import EMBEDDED_DEFAULT_DIR
from loopbridge.engine.request import GenerateRequest, Kind


def _median_s(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = DefaultModel.load(EMBEDDED_DEFAULT_DIR)
    steps = args.steps or model.config.default_steps
    one = GenerateRequest(prompt="kick", seed=1, steps=steps)
    batch = [one.with_variation(v) for v in range(8)]
    kit = [r for _, r in model.kit_requests(GenerateRequest(prompt="kit", kind=Kind.KIT, seed=1, steps=steps))]
    loop = GenerateRequest(prompt="house", kind=Kind.LOOP, bars=2, tempo_bpm=124, seed=1, steps=steps)

    noise = torch.randn(1, spectral.N_MELS, spectral.FRAMES)
    mel = sample(model.network, model.config, [0], noise, steps, model.config.default_guidance)
    rows = [
        ("one one-shot (1 s)", 1.0, _median_s(lambda: model.generate([one]), args.repeats)),
        ("  network only (sampler)", 1.0,
         _median_s(lambda: sample(model.network, model.config, [0], noise, steps, model.config.default_guidance),
                   args.repeats)),
        ("  decoder only (PGHI + Griffin-Lim)", 1.0, _median_s(lambda: spectral.invert(mel), args.repeats)),
        ("8 variations, one batch", 8.0, _median_s(lambda: model.generate(batch), args.repeats)),
        ("8 variations, one at a time", 8.0,
         _median_s(lambda: [model.generate([r]) for r in batch], max(1, args.repeats // 2))),
        ("kit (7 one-shots, one batch)", 7.0, _median_s(lambda: model.generate(kit), args.repeats)),
        ("loop (2 bars at 124 BPM)", 2 * 4 * 60 / 124, _median_s(lambda: model.generate([loop]), args.repeats)),
    ]
    print(f"default model, {steps} steps, guidance {model.config.default_guidance}, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"{'what':36s} {'seconds':>8s} {'audio s':>8s} {'x real time':>12s}")
    for name, audio_s, seconds in rows:
        print(f"{name:36s} {seconds:8.3f} {audio_s:8.2f} {audio_s / seconds:12.1f}")
    one_s = rows[0][2]
    print(f"batch of 8 vs 8 x one: {rows[3][2] / (8 * one_s):.2f} of the time")


if __name__ == "__main__":
    main()
