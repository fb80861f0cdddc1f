"""Per model family, measured side by side in one run (ratios, not absolute times). Two modes:

**Engine overhead** (the default, on the CPU): for each of AudioLDM, AudioLDM 2, Stable Audio Open
and Riffusion, one render through ``Engine.render`` (validation, render key, backend batching, store
write) vs. calling the same tiny model's diffusers pipeline directly with the same prompt, steps,
guidance and length. Target ≤ 1.05×. Riffusion's direct call is ``StableDiffusionPipeline`` for the
image plus the project's codec to turn it into audio (the pipeline alone makes no audio). The models
are the tiny random-weight pipelines of the tests (speed does not depend on the weights' values, only
on their sizes), saved and loaded as real checkpoints are. Each pair of calls alternates which goes
first; the ratio reported is the median of the pairs' ratios, with the spread of the middle half, so
a reading can be told from noise (at 5 repeats one run gave 1.061× for AudioLDM 2 and the next
1.022×; 15 is the default).

    python bench/bench_families.py [--repeats 15] [--steps 10] [--families audioldm,stable-audio]

**Speed on a GPU** (``--device cuda``): real-size configurations of each family with random weights
(:mod:`real_size_pipelines`: the published checkpoints' classes and shapes), through the engine at
each family's default steps, reported as seconds of compute per second of audio generated, in fp32,
bf16, and bf16 with the denoiser under ``torch.compile`` (its first, compiling call is reported
apart). Needs a CUDA GPU with room for the largest model (about 5 GB in fp32) and about 15 GB of
disk for the saved folders (``--models-dir`` keeps them for the next run).

    python bench/bench_families.py --device cuda [--repeats 3] [--modes fp32,bf16,compile] [--models-dir DIR]

``--device cpu --real-size`` runs the speed mode on the CPU (slow: give it ``--steps 1 --seconds 1``
to check that the real-size configurations load and run).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopbridge.engine import GenerateRequest
from loopbridge.engine.core import Engine
from loopbridge.engine.models.base import LoadOptions
from loopbridge.engine.models.registry import ModelRegistry

from tests.engine.models.tiny_pipelines import (
    RIFFUSION_FOLDER,
    build_audioldm,
    build_audioldm2,
    build_riffusion,
    build_stable_audio,
    mark_riffusion,
)

# one-shots: a texture is rendered a little longer than asked (its loop seam), which the direct call is not
FAMILIES = {
    "audioldm": ("tiny-audioldm", "one-shot", 1.0),
    "audioldm2": ("tiny-audioldm2", "one-shot", 1.0),
    "stable-audio": ("tiny-stable-audio", "one-shot", 1.0),
    "riffusion": (RIFFUSION_FOLDER, "one-shot", 0.64),
}

#: seconds of audio per render in the speed mode: each family's usual clip (Riffusion: one 512-column image)
REAL_SECONDS = {"audioldm": 10.24, "audioldm2": 10.24, "stable-audio": 10.0, "riffusion": 5.12}
#: speed-mode settings: (engine dtype, compile the denoiser)
MODES = {"fp32": (torch.float32, False), "bf16": (torch.bfloat16, False), "compile": (torch.bfloat16, True)}
MODE_LABELS = {"fp32": "fp32", "bf16": "bf16", "compile": "bf16+compile"}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu: engine overhead on tiny models; cuda: real-size speed in fp32, bf16, compiled")
    parser.add_argument("--real-size", action="store_true", help="the speed mode on the CPU (slow)")
    parser.add_argument("--repeats", type=int, default=None, help="timed renders per figure (default 15; 3 for speed)")
    parser.add_argument("--steps", type=int, default=None,
                        help="diffusion steps (default 10 for overhead; each family's default for speed)")
    parser.add_argument("--seconds", type=float, default=None, help="speed mode: seconds of audio per render")
    parser.add_argument("--modes", default=",".join(MODES), help=f"speed mode: some of {', '.join(MODES)}")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="speed mode: where the real-size folders are built (kept; reused when present)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown:
        print(f"families={','.join(unknown)!r} is not accepted: expected some of {', '.join(FAMILIES)}",
              file=sys.stderr)
        return 2
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("--device cuda needs a CUDA GPU and a CUDA build of torch: torch.cuda.is_available() is False "
                  f"here (torch {torch.__version__}); run it on a GPU machine, or without --device for the "
                  "engine-overhead figures on the CPU", file=sys.stderr)
            return 2
        return speed(args, chosen, torch.device("cuda"))
    if args.real_size:
        return speed(args, chosen, torch.device("cpu"))
    return overhead(args, chosen)


def overhead(args: argparse.Namespace, chosen: list[str]) -> int:
    repeats = args.repeats or 15
    steps = args.steps or 10
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
        print(f"device: cpu ({args.threads} threads), {repeats} pairs per family, {steps} steps; "
              "real-size GPU figures: --device cuda")
        print(f"{'family':14s} {'engine s':>9s} {'direct s':>9s} {'ratio':>7s} {'middle half':>15s}")
        seed = 1000
        for family in chosen:
            model_id, kind, duration_s = FAMILIES[family]
            direct = direct_call(engine, family, model_id, duration_s, steps)

            def through_engine(seed: int, model_id: str = model_id, kind: str = kind,
                               duration_s: float = duration_s) -> None:
                prompt = "jazz piano" if model_id == RIFFUSION_FOLDER else "rain on a tin roof"
                request = GenerateRequest(prompt=prompt, model=model_id, kind=kind, duration_s=duration_s,
                                          steps=steps, seed=seed)
                engine.render([(engine.render_key(request), request)])

            through_engine(seed)  # warm both paths once
            direct(seed)
            engine_times, direct_times = [], []
            for index in range(repeats):
                seed += 1
                # alternate which goes first, so a slow drift of the machine favours neither
                order = [(through_engine, engine_times), (direct, direct_times)]
                for run, times in order if index % 2 == 0 else order[::-1]:
                    start = time.perf_counter()
                    run(seed)
                    times.append(time.perf_counter() - start)
            ratios = sorted(e / d for e, d in zip(engine_times, direct_times, strict=True))
            quartiles = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
            engine_s, direct_s = statistics.median(engine_times), statistics.median(direct_times)
            print(f"{family:14s} {engine_s:9.3f} {direct_s:9.3f} {statistics.median(ratios):6.3f}x "
                  f"{quartiles[0]:6.3f}–{quartiles[2]:.3f}x")
    return 0


def speed(args: argparse.Namespace, chosen: list[str], device: torch.device) -> int:
    """Seconds of compute per second of audio, real-size models through the engine, per dtype / compile."""
    import real_size_pipelines as real

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        print(f"modes={','.join(unknown)!r} is not accepted: expected some of {', '.join(MODES)}", file=sys.stderr)
        return 2
    repeats = args.repeats or 3
    with tempfile.TemporaryDirectory() as tmp:
        root = args.models_dir or Path(tmp) / "models"
        root.mkdir(parents=True, exist_ok=True)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({args.threads} threads)"
        print(f"device: {name}; real-size configurations with random weights; {repeats} timed renders per figure; "
              "s/s = seconds of compute per second of audio (below 1: faster than real time)")
        for family in chosen:
            folder = root / real.FOLDERS[family]
            if not (folder / "model_index.json").is_file():
                started = time.perf_counter()
                real.BUILDERS[family](root)
                print(f"  built {folder.name} in {time.perf_counter() - started:.0f} s", flush=True)
        registry = ModelRegistry(search_paths=[root], hf_cache=Path(tmp) / "no-cache", include_embedded=False)
        header = "".join(f" {MODE_LABELS[m] + ' s/s':>17s}" for m in modes)
        print(f"{'family':14s} {'audio s':>8s} {'steps':>6s}{header}   first call, parameters")
        for family in chosen:
            model_id = real.FOLDERS[family]
            seconds = args.seconds or REAL_SECONDS[family]
            figures: dict[str, float] = {}
            notes: list[str] = []
            steps = args.steps
            for mode in modes:
                dtype, compiled = MODES[mode]
                engine = Engine(store_dir=Path(tmp) / f"store-{family}-{mode}", registry=registry, device=device,
                                dtype=dtype, load_options=LoadOptions(compile=compiled))
                steps = args.steps or engine.capabilities(model_id).default_steps
                try:
                    if mode == modes[0]:
                        with engine.weights.use(model_id) as backend:
                            counts = real.parameter_counts(backend.pipeline)
                        denoiser = counts.get("unet") or counts.get("transformer") or 0
                        published = real.PUBLISHED_DENOISER_PARAMS[family]
                        notes.append(f"denoiser {denoiser / 1e6:.0f} M (published {published}), "
                                     f"all {sum(counts.values()) / 1e6:.0f} M")
                    seed = 10_000
                    first = _timed_render(engine, device, model_id, seconds, steps, seed)
                    if compiled:
                        notes.append(f"compiling call {first:.1f} s")
                    times = []
                    for _ in range(repeats):
                        seed += 1
                        times.append(_timed_render(engine, device, model_id, seconds, steps, seed))
                    figures[mode] = statistics.median(times) / seconds
                except Exception as exc:  # one mode failing (an op without bf16 here) must not lose the others
                    notes.append(f"{MODE_LABELS[mode]} failed: {type(exc).__name__}: {str(exc)[:120]}")
                finally:
                    engine.weights.evict(model_id)
                    del engine
                    gc.collect()
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
            base = figures.get(modes[0])
            cells = []
            for mode in modes:
                value = figures.get(mode)
                if value is None:
                    cells.append(f" {'—':>17s}")
                elif base is None or mode == modes[0]:
                    cells.append(f" {value:17.3f}")
                else:
                    cells.append(f" {value:8.3f} ({base / value:4.2f}×)")
            print(f"{family:14s} {seconds:8.2f} {steps!s:>6s}{''.join(cells)}   {'; '.join(notes)}", flush=True)
    return 0


def _timed_render(engine: Engine, device: torch.device, model_id: str, seconds: float, steps: int | None,
                  seed: int) -> float:
    """Seconds one render of a fresh seed takes (the store never answers: each seed is new)."""
    prompt = "jazz piano" if "riffusion" in model_id else "rain on a tin roof"
    request = GenerateRequest(prompt=prompt, model=model_id, kind="one-shot", duration_s=seconds, steps=steps,
                              seed=seed)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    engine.render([(engine.render_key(request), request)])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started




if __name__ == "__main__":
    sys.exit(main())
