"""Engine overhead per model family, measured side by side in one run (ratios, not absolute times).

For each of AudioLDM, AudioLDM 2, Stable Audio Open and Riffusion: one render through
``Engine.render`` (validation, render key, backend batching, store write) vs. calling the same
tiny model's diffusers pipeline directly with the same prompt, steps, guidance and length. Target
≤ 1.05×. Riffusion's direct call is ``StableDiffusionPipeline`` for the image plus the project's
codec to turn it into audio (the pipeline alone makes no audio).

    python bench/bench_families.py [--repeats 5] [--steps 10] [--families audioldm,stable-audio]

The models are the tiny random-weight pipelines of the tests (speed does not depend on the weights'
values, only on their sizes), saved and loaded as real checkpoints are. Each engine render uses a
fresh seed so the store never answers in place of the model. Timings alternate engine and direct
calls and report medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopbridge.engine import GenerateRequest
from loopbridge.engine.core import Engine
from loopbridge.engine.models.registry import ModelRegistry

from tests.engine.models.tiny_pipelines import (
    RIFFUSION_FOLDER,
    build_audioldm,
    build_audioldm2,
    build_riffusion,
    build_stable_audio,
    mark_riffusion,
)

FAMILIES = {
    "audioldm": ("tiny-audioldm", "texture", 1.0),
    "audioldm2": ("tiny-audioldm2", "texture", 1.0),
    "stable-audio": ("tiny-stable-audio", "texture", 1.0),
    "riffusion": (RIFFUSION_FOLDER, "texture", 0.64),
}


def direct_call(engine: Engine, family: str, model_id: str, duration_s: float, steps: int) -> Callable[[int], None]:
    """A function that runs the model's own diffusers pipeline once for ``seed``."""
    with engine.weights.use(model_id) as backend:
        pipeline = backend.pipeline
        caps = backend.capabilities
    guidance = float(caps.default_guidance or 1.0)

    if family == "riffusion":
        from diffusers import StableDiffusionPipeline
        from loopbridge.engine.models.riffusion.codec import SpectrogramImage

        sd = StableDiffusionPipeline(**pipeline.components)
        sd.set_progress_bar_config(disable=True)
        codec = backend.codec
        width = backend.image_width

        def run_riffusion(seed: int) -> None:
            images = sd(
                "jazz piano", height=512, width=width, num_inference_steps=steps, guidance_scale=guidance,
                generator=torch.Generator().manual_seed(seed), output_type="np",
            ).images
            pixels = (images[0].mean(axis=-1) * 255).round().clip(0, 255).astype("uint8")
            codec.decode(SpectrogramImage(pixels), seed=seed)

        return run_riffusion

    def run_pipeline(seed: int) -> None:
        kwargs = {"audio_end_in_s": duration_s} if family == "stable-audio" else {"audio_length_in_s": duration_s}
        pipeline(
            prompt="rain on a tin roof", num_inference_steps=steps, guidance_scale=guidance,
            generator=torch.Generator().manual_seed(seed), output_type="np", **kwargs,
        )

    return run_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen = [f.strip() for f in args.families.split(",") if f.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        builders = {
            "audioldm": lambda: build_audioldm(root),
            "audioldm2": lambda: build_audioldm2(root),
            "stable-audio": lambda: build_stable_audio(root),
            "riffusion": lambda: mark_riffusion(build_riffusion(root)),
        }
        for family in chosen:
            builders[family]()
        registry = ModelRegistry(search_paths=[root], hf_cache=Path(tmp) / "no-cache", include_embedded=False)
        engine = Engine(store_dir=Path(tmp) / "store", registry=registry, device="cpu")
        print(f"device: cpu ({args.threads} threads); no accelerator here: real-size GPU figures are not measured")
        print(f"{'family':14s} {'engine s':>9s} {'direct s':>9s} {'ratio':>7s}")
        seed = 1000
        for family in chosen:
            model_id, kind, duration_s = FAMILIES[family]
            direct = direct_call(engine, family, model_id, duration_s, args.steps)

            def through_engine(seed: int, model_id: str = model_id, kind: str = kind,
                               duration_s: float = duration_s) -> None:
                prompt = "jazz piano" if model_id == RIFFUSION_FOLDER else "rain on a tin roof"
                engine.render([GenerateRequest(prompt=prompt, model=model_id, kind=kind, duration_s=duration_s,
                                               steps=args.steps, seed=seed)])

            through_engine(seed)  # warm both paths once
            direct(seed)
            engine_times, direct_times = [], []
            for _ in range(args.repeats):
                seed += 1
                start = time.perf_counter()
                through_engine(seed)
                engine_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                direct(seed)
                direct_times.append(time.perf_counter() - start)
            engine_s, direct_s = statistics.median(engine_times), statistics.median(direct_times)
            print(f"{family:14s} {engine_s:9.3f} {direct_s:9.3f} {engine_s / direct_s:6.3f}x")


if __name__ == "__main__":
    main()
