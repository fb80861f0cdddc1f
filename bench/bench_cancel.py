"""How soon a running batch of the default model stops when it is cancelled, in process, on one thread.

Prints, for default-model one-shots (0.5 s, ``--steps`` steps):

1. The stretches between the model's chances to stop (its progress steps and its stop points,
   :func:`loopbridge.engine.models.base.stop_point`) over whole renders: their median and the longest
   of each render, and where in the render it lay (the decoder runs after the last step).
2. The scheduler's cancel of a running render, ``--cancels`` times at random moments 50-550 ms into
   its render: the time from :meth:`Scheduler.cancel` to the model's run ending (its worker free for
   the next batch). Before the stop points this was the rest of the step under way (or of the decoder).

Run on code before the stop points, part 1 times the progress steps alone.

The load average is printed: on a shared machine every figure scales with it.

    python bench/bench_cancel.py [--steps 50] [--renders 5] [--cancels 16]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
from loopbridge.engine.core import Engine
from loopbridge.engine.request import GenerateRequest, Kind
from loopbridge.engine.scheduler import Job, Priority, Scheduler

_seeds = itertools.count(20_000_000 + int(time.time()) % 1_000_000 * 64)


def one_shot(steps: int, prompt: str = "kick") -> GenerateRequest:
    return GenerateRequest(prompt, kind=Kind.ONE_SHOT, duration_s=0.5, seed=next(_seeds), steps=steps)


class TimedEngine(Engine):
    """The in-process engine, noting when each model run ended."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ended = threading.Event()
        self.ended_at = 0.0

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().generate(*args, **kwargs)
        finally:
            self.ended_at = time.perf_counter()
            self.ended.set()


def checked(check: Callable[[], None]) -> contextlib.AbstractContextManager[Any]:
    """``check`` run at each stop point of this thread's model; nothing in code before the stop points
    (this script then times the progress steps alone, as the code was)."""
    try:
        from loopbridge.engine.models.base import stop_check
    except ImportError:
        return contextlib.nullcontext()
    return stop_check(check)


def stretches(engine: Engine, renders: int, steps: int) -> None:
    for prompt in itertools.islice(itertools.cycle(["kick", "snare", "bass", "texture", "open hat"]), renders):
        marks: list[float] = []

        def mark(_fraction: float = 0.0, marks: list[float] = marks) -> None:
            marks.append(time.perf_counter())

        began = time.perf_counter()
        with checked(mark):
            engine.generate("default", [one_shot(steps, prompt)], mark)
        ended = time.perf_counter()
        times = [began, *marks, ended]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        longest = max(range(len(gaps)), key=gaps.__getitem__)
        print(f"  {prompt}: {(ended - began) * 1e3:.0f} ms, {len(marks)} chances to stop, median "
              f"{statistics.median(gaps) * 1e3:.2f} ms apart, the longest {gaps[longest] * 1e3:.1f} ms "
              f"at {(times[longest] - began) * 1e3:.0f} ms", flush=True)


def cancels(engine: TimedEngine, count: int, steps: int) -> list[float]:
    scheduler = Scheduler(engine).start()
    chance = random.Random(1)
    waits = []
    try:
        for i in range(count):
            request = one_shot(steps)
            started = threading.Event()
            job = Job(f"cancelled-{i}", [("", request)], [engine.render_key(request)], priority=Priority.INTERACTIVE,
                      to_render=range(1), on_progress=lambda _job, _fraction, s=started: s.set())
            engine.ended.clear()
            scheduler.submit(job)
            if not started.wait(120):
                raise TimeoutError("the render never started")
            time.sleep(chance.uniform(0.05, 0.55))
            asked = time.perf_counter()
            scheduler.cancel(job.id)
            if not engine.ended.wait(120):
                raise TimeoutError("the cancelled render never stopped")
            waits.append(engine.ended_at - asked)
    finally:
        scheduler.stop()
    return waits


def load_average() -> str:
    return f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--renders", type=int, default=5)
    parser.add_argument("--cancels", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a CPU replica of the cluster runs
    with tempfile.TemporaryDirectory(prefix="lbbench-", dir="/tmp") as folder:
        engine = TimedEngine(store_dir=folder, device="cpu")
        engine.generate("default", [one_shot(2)])  # the model loaded, torch warm
        print(f"1. chances to stop in a render, {args.steps} steps {load_average()}", flush=True)
        stretches(engine, args.renders, args.steps)
        waits = cancels(engine, args.cancels, args.steps)
        print(f"2. cancel of a running render to its model's end: median {statistics.median(waits) * 1e3:.1f} ms, "
              f"mean {statistics.mean(waits) * 1e3:.1f} ms, longest {max(waits) * 1e3:.1f} ms ({len(waits)} cancels) "
              f"{load_average()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
