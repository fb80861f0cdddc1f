"""Engine benchmarks, measured side by side in one run (ratios, not absolute times).

1. Engine overhead: one render through the front door (``FrontDoor.render``: validation, render
   key, the store lookup, the scheduler's queue and worker thread, batching, the store write) vs.
   calling the same Dance Diffusion model directly through diffusers' ``DanceDiffusionPipeline``.
   Target ≤ 1.05×.
2. Batching: 8 variations as one request vs. 8 single requests, through the front door.

    python bench/bench_engine.py [--repeats 7] [--seconds 0.25] [--steps 8] [--threads 2]

The model is a small randomly initialised Dance Diffusion checkpoint built here (speed does not
depend on the weights' values), saved and loaded exactly as a real one is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopbridge.engine import GenerateRequest
from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor
from loopbridge.engine.models.registry import ModelRegistry

from tests.engine.models.tiny_dance_diffusion import build_tiny_dance_diffusion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.25, help="audio length per render")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from diffusers import DanceDiffusionPipeline, IPNDMScheduler, UNet1DModel

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = build_tiny_dance_diffusion(root / "models" / "bench-dd", sample_size=16384)
        engine = Engine(
            store_dir=root / "store",
            registry=ModelRegistry(search_paths=[root / "models"], hf_cache=root / "none", include_embedded=False),
            device="cpu",
        )
        door = FrontDoor(engine, prerender_depth=0).start()
        door.warm("bench-dd")
        unet = UNet1DModel.from_pretrained(folder / "unet", time_embedding_dim=16).eval()
        pipe = DanceDiffusionPipeline(unet=unet, scheduler=IPNDMScheduler.from_pretrained(folder / "scheduler"))
        pipe.set_progress_bar_config(disable=True)

        seed = [1000]

        def next_request() -> GenerateRequest:
            # a fresh seed each time, past every variation of the last one (variation k of seed s
            # samples with seed s + k): no store hits, the model always runs
            seed[0] += 100
            return GenerateRequest(model="bench-dd", seed=seed[0], duration_s=args.seconds, steps=args.steps)

        def direct() -> None:
            with torch.inference_mode():
                pipe(batch_size=1, num_inference_steps=args.steps, audio_length_in_s=args.seconds,
                     generator=torch.Generator().manual_seed(seed[0]))

        def through_engine() -> None:
            door.render([next_request()])

        def batched() -> None:
            request = next_request()
            door.render([request.with_variation(v) for v in range(8)])

        def singles() -> None:
            for _ in range(8):
                door.render([next_request()])

        for warmup in (direct, through_engine):
            warmup()
        overhead = _interleaved(direct, through_engine, args.repeats)
        batching = _interleaved(singles, batched, max(3, args.repeats // 2))
        door.stop()

    print(f"renders of {args.seconds:g} s at 16 kHz stereo, {args.steps} steps, {args.threads} threads, CPU")
    print(f"{'measure':44s} {'A median s':>11s} {'B median s':>11s} {'ratio':>7s}")
    d, e = overhead
    print(f"{'engine overhead: A direct, B engine':44s} {d:11.4f} {e:11.4f} {e / d:7.3f}x  (target <= 1.05x)")
    s, b = batching
    print(f"{'batching: A 8 single, B 8 as one batch':44s} {s:11.4f} {b:11.4f} {s / b:7.3f}x throughput")


def _interleaved(a, b, repeats: int) -> tuple[float, float]:
    """Median seconds of ``a`` and ``b``, run alternately so machine noise hits both alike."""
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


if __name__ == "__main__":
    main()
