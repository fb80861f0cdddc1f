"""Engine overhead of Stable Audio 3 and ACE-Step, each task, measured side by side in one run.

For every task a family takes (text to audio; continue, replace, transform on the user's audio; ACE-Step's
extract and add), one render through ``Engine.render`` (request checks, render key, the source resampled
and spliced back, the store write) vs. the same tiny model's diffusers pipeline called directly with the
same prompt, steps, length, source and span. Target ≤ 1.05×. The models are the tiny random-weight
pipelines of the tests (speed depends on the weights' sizes, not their values), saved and loaded as real
checkpoints are. The source is a loop at the model's own rate (no resampling on either side). Each pair
alternates which goes first; the ratio reported is the median of the pairs' ratios, with the middle half.
On a shared machine those pairs are noisy (other work lands on one call of a pair and not the other), so a
second figure is taken inside each engine render: its whole time over the time spent in the pipeline's own
call within it (same arguments as the direct call), which other work slows alike; and the fastest engine
render over the fastest direct call ("best/best", the two least disturbed runs).

    python bench/bench_new_families.py [--repeats 9] [--steps 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopbridge.engine import GenerateRequest
from loopbridge.engine.core import Engine
from loopbridge.engine.models.ace_step import TASK_TYPES
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.models.source_tasks import key_name, meter_name, new_span_s, source_audio
from loopbridge.engine.models.stable_audio_3 import caption
from loopbridge.engine.request import Task

from tests.engine.models.test_new_families import TEMPO, loop_source
from tests.engine.models.tiny_new_families import build_ace_step, build_stable_audio_3

SA3, ACE = "tiny-stable-audio-3", "tiny-ace-step"
CASES: list[tuple[str, str, dict[str, Any]]] = [
    (SA3, "generate", {}),
    (SA3, "continue", {"continue_bars": 1.0}),
    (SA3, "replace", {"replace_from_bar": 0.5, "replace_to_bar": 1.0}),
    (SA3, "transform", {"audio_prompt_strength": 0.6}),
    (ACE, "generate", {}),
    (ACE, "continue", {"continue_bars": 1.0}),
    (ACE, "replace", {"replace_from_bar": 0.5, "replace_to_bar": 1.0}),
    (ACE, "transform", {"audio_prompt_strength": 0.6}),
    (ACE, "extract", {"track": "drums"}),
    (ACE, "add", {"track": "bass"}),
]


#: seconds spent inside the pipelines' ``__call__`` since last reset (the engine's own call of the model)
_inside = [0.0]


def _time_calls(cls: type) -> None:
    """Add the time each call of ``cls`` takes to ``_inside``."""
    original = cls.__call__

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            _inside[0] += time.perf_counter() - started

    cls.__call__ = timed  # type: ignore[method-assign]


def request_for(model: str, task: str, fields: dict[str, Any], steps: int, seed: int, rate: int) -> GenerateRequest:
    source = None if task == "generate" else loop_source(rate)
    return GenerateRequest(model=model, prompt="deep bass", kind="loop", tempo_bpm=TEMPO, bars=1.0, steps=steps,
                           seed=seed, task=task, audio_prompt=source, **fields)


def direct_call(engine: Engine, model: str, task: str, fields: dict[str, Any], steps: int) -> Callable[[int], None]:
    """The model's own diffusers pipeline, called as the backend calls it, once for ``seed``."""
    with engine.weights.use(model) as backend:
        pipe = backend.pipeline
        caps = backend.capabilities
    rate = caps.sample_rate
    template = request_for(model, task, fields, steps, 0, rate)
    source = None if task == "generate" else torch.from_numpy(source_audio(template, rate, caps.channels))
    if model == SA3:
        import diffusers

        kind = {"transform": "StableAudio3AudioToAudioPipeline", "continue": "StableAudio3InpaintPipeline",
                "replace": "StableAudio3InpaintPipeline"}.get(task)
        call = pipe if kind is None else getattr(diffusers, kind)(**pipe.components)
        call.set_progress_bar_config(disable=True)
        kwargs: dict[str, Any] = {"prompt": [caption(template)], "duration": template.render_duration_s,
                                  "num_inference_steps": steps, "output_type": "np"}
        if task == "generate":
            kwargs["guidance_scale"] = 1.0
        elif task == "transform":
            kwargs.update(audio=source[None], init_noise_level=0.6)  # type: ignore[index]
        else:
            start_s, end_s = new_span_s(template)
            frames = int(round(template.render_duration_s * rate))
            padded = torch.nn.functional.pad(source, (0, frames - source.shape[1]))  # type: ignore[union-attr]
            kwargs.update(audio=padded[None], mask_start_seconds=start_s, mask_end_seconds=end_s)
    else:
        call = pipe
        hop = round(rate / pipe.latents_per_second)
        frames = int(round(template.render_duration_s * rate))
        latent_frames = -(-frames // hop)
        kwargs = {"prompt": ["deep bass"], "lyrics": "", "audio_duration": latent_frames * hop / rate,
                  "num_inference_steps": steps, "guidance_scale": 1.0, "output_type": "np",
                  "bpm": int(round(TEMPO)), "keyscale": key_name(template), "timesignature": meter_name(template),
                  "task_type": TASK_TYPES[Task(task)]}
        if source is not None:
            kwargs["src_audio"] = torch.nn.functional.pad(source, (0, latent_frames * hop - source.shape[1]))
            if task in ("continue", "replace"):
                kwargs["repainting_start"], kwargs["repainting_end"] = new_span_s(template)
            elif task == "transform":
                kwargs["audio_cover_strength"] = 0.4
            elif template.track:
                kwargs["track_name"] = template.track

    def run(seed: int) -> None:
        with torch.inference_mode():
            call(generator=[torch.Generator().manual_seed(seed)], **kwargs)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9, help="timed pairs per task (default 9)")
    parser.add_argument("--steps", type=int, default=4, help="diffusion steps (default 4)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import diffusers

    for name in ("StableAudio3Pipeline", "StableAudio3InpaintPipeline", "StableAudio3AudioToAudioPipeline",
                 "AceStepPipeline"):
        _time_calls(getattr(diffusers, name))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        build_stable_audio_3(root)
        build_ace_step(root)
        registry = ModelRegistry(search_paths=[root], hf_cache=Path(tmp) / "no-cache", include_embedded=False)
        engine = Engine(store_dir=Path(tmp) / "store", registry=registry, device="cpu")
        print(f"device: cpu ({args.threads} threads), {args.repeats} pairs per task, {args.steps} steps, "
              f"one bar at {TEMPO:g} BPM (continue: two)")
        print(f"{'family':16s} {'task':10s} {'engine s':>9s} {'direct s':>9s} {'ratio':>7s} {'middle half':>15s} "
              f"{'best/best':>10s} {'engine/own call':>16s}")
        seed = 1000
        own: list[float] = []  # each engine render's time over its own pipeline call's, for the case at hand
        for model, task, fields in CASES:
            rate = engine.capabilities(model).sample_rate
            direct = direct_call(engine, model, task, fields, args.steps)

            def through_engine(seed: int, model: str = model, task: str = task, fields: dict[str, Any] = fields,
                               rate: int = rate) -> None:
                request = request_for(model, task, fields, args.steps, seed, rate)
                engine.check(request)  # as the front door plans it
                _inside[0] = 0.0
                started = time.perf_counter()
                engine.render([(engine.render_key(request), request)])
                own.append((time.perf_counter() - started) / _inside[0])

            through_engine(seed)  # warm both paths once
            direct(seed)
            own.clear()
            engine_times: list[float] = []
            direct_times: list[float] = []
            for index in range(args.repeats):
                seed += 1
                order = [(through_engine, engine_times), (direct, direct_times)]
                for run, times in order if index % 2 == 0 else order[::-1]:
                    started = time.perf_counter()
                    run(seed)
                    times.append(time.perf_counter() - started)
            ratios = sorted(e / d for e, d in zip(engine_times, direct_times, strict=True))
            quartiles = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
            family = engine.resolve(model).family
            print(f"{family:16s} {task:10s} {statistics.median(engine_times):9.3f} "
                  f"{statistics.median(direct_times):9.3f} {statistics.median(ratios):6.3f}x "
                  f"{quartiles[0]:6.3f}–{quartiles[2]:.3f}x {min(engine_times) / min(direct_times):9.3f}x "
                  f"{statistics.median(own):15.3f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
