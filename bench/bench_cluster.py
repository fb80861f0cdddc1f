"""Cluster benchmark: the front door over Ray Serve model workers (``serve --cluster``), on this machine.

Prints, measured in one run on local clusters (``--cluster local``: started here, stopped at the end):

1. Throughput, ``--callers`` callers each asking for default-model one-shots one after another: two
   replicas vs one, in renders per second (target: at least 1.6x on a 2-core machine). A shared
   machine's load comes and goes: ``--rounds`` rounds, each a one-replica cluster then a two-replica
   one (each started for it), and the median of the rounds' ratios. Each round prints how busy each
   replica was (the share of the time its model ran), its batches, and its turns between batches (its
   model's end to its next model's start).
2. Per-render overhead of the cluster vs the in-process engine: one caller, renders taking turns
   between a one-replica cluster and an in-process engine with the same torch thread count (median
   of each), and, less exposed to other work on the machine, what the cluster adds to the model's
   own time on the replica (the gateway's wall time less the seconds the replica's model ran),
   beside the same share in process (wall time less the model's): the front door, the scheduler and
   the store's write, which both pay; the difference is the cluster's overhead (target: at most 5 ms).
   Beside it, taking turns with the same renders, Serve's own round trip on the same cluster: a
   deployment that runs nothing, called as a replica is and streaming back a render's audio
   (:class:`EmptyReplica`); the overhead beyond it is the gateway's and the replica's own. And
   Serve's unary round trip on the same deployment (one call, the audio as its result), to compare.
   Both are timed each way, by value over Serve's gRPC transport (``grpc``) and by reference as
   Ray actor calls (``actor``), in turns; the cluster's renders go the way ``--transport`` says
   (default: the engine's, ``grpc``).
3. An interactive request's latency while 20 pre-renders are queued on two replicas (asked for
   0.2 s after both replicas started pre-renders), against one render alone just before it (pairs;
   medians of each and of the differences) (target: at most one render + 20 ms), with its hops on
   the monotonic clock that the gateway and the replicas share: the pre-render it stops told and its
   call ended, its own call sent and at the replica, its model's start and end, its audio back at
   the gateway, and its answer. Part 2 prints the same hops of a render sent to an idle replica.
4. How soon a running pre-render pauses for interactive work on its device (the CPUs of this machine):
   a pre-render on one of two replicas, an interactive render sent to the other 0.1-0.4 s into it,
   and the interactive batch's mark on the device (from its call's arrival to its model's end) less
   the seconds the pre-render paused (median and range; a pause also ends up to a poll, 5 ms, late).

Every render is of a new seed (nothing comes from the store). The load average is printed: on a
shared machine every figure scales with it.

    python bench/bench_cluster.py [--callers 8] [--renders 3] [--rounds 3] [--repeats 9] [--steps 50]
                                  [--parts throughput,overhead,latency,pause] [--transport grpc|actor]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a cluster on loopback that lives for this run only

import torch
from loopbridge.engine.cluster import TRANSPORTS, Cluster, ClusterEngine, ClusterOptions
from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor, Order
from loopbridge.engine.request import GenerateRequest, Kind
from loopbridge.engine.scheduler import Priority

_seeds = itertools.count(10_000_000 + int(time.time()) % 1_000_000 * 64)


def one_shot(steps: int) -> GenerateRequest:
    return GenerateRequest("kick", kind=Kind.ONE_SHOT, duration_s=0.5, seed=next(_seeds), steps=steps)


class TimedEngine(Engine):
    """The in-process engine, noting how long each model run took (as a replica says its ``model_s``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_s: list[float] = []

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().generate(*args, **kwargs)
        finally:
            self.model_s.append(time.perf_counter() - started)


class Events:
    """The cluster engine's events, with the time each came."""

    def __init__(self) -> None:
        self.items: list[tuple[float, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self.items.append((time.perf_counter(), name, fields))

    def since(self, t: float, name: str) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return [(when, fields) for when, n, fields in self.items if when >= t and n == name]


EVENTS = Events()


class EmptyReplica:
    """Serve's own round trip: a deployment that runs no model and keeps no engine, streaming back what a
    replica streams for one render (its ``started`` event, then a render's audio of ``shape``)."""

    def __init__(self, shape: tuple[int, ...], sample_rate: int) -> None:
        import numpy as np

        self.audio = np.zeros(shape, dtype=np.float32)
        self.sample_rate = sample_rate

    async def render(self, requests: list[GenerateRequest]) -> Any:
        yield ("started", {"pid": os.getpid(), "arrived_at": time.monotonic()})
        yield ("done", {"outputs": [(self.audio, self.sample_rate, {}) for _ in requests]})

    async def render_unary(self, requests: list[GenerateRequest]) -> Any:
        return ("done", {"outputs": [(self.audio, self.sample_rate, {}) for _ in requests]})


def empty_handle(shape: tuple[int, ...], sample_rate: int) -> Any:
    """A handle of :class:`EmptyReplica` on the cluster this process is connected to (no CPU of its own:
    it runs beside the replica): unary, :meth:`options` ``stream=True`` for :meth:`EmptyReplica.render`."""
    from ray import serve

    deployment: Any = serve.deployment(EmptyReplica, name="loopbridge-bench-empty", max_ongoing_requests=1,
                                       ray_actor_options={"num_cpus": 0})
    return serve.run(deployment.bind(shape, sample_rate), name="loopbridge-bench-empty", route_prefix=None)


def empty_round_trip(handle: Any, steps: int, by_reference: bool = False) -> float:
    """Seconds from the call to the audio of an :class:`EmptyReplica`, as :meth:`ClusterEngine.generate`
    calls a replica (a request out, its events and the audio back; the call's end waited for after),
    by value (gRPC, ``--transport grpc``) or by reference (actor calls, ``--transport actor``)."""
    started = time.perf_counter()
    stream = handle.options(stream=True, _by_reference=by_reference).render.remote([one_shot(steps)])
    for kind, _ in stream:
        if kind == "done":
            break
    elapsed = time.perf_counter() - started
    for _ in stream:
        pass
    return elapsed


def empty_unary_round_trip(handle: Any, steps: int, by_reference: bool = False) -> float:
    """Seconds from a unary call of :meth:`EmptyReplica.render_unary` to its result (a render's audio)."""
    started = time.perf_counter()
    handle.options(_by_reference=by_reference).render_unary.remote([one_shot(steps)]).result()
    return time.perf_counter() - started


@contextmanager
def cluster_door(replicas: int, folder: Path, transport: str) -> Iterator[FrontDoor]:
    started = time.perf_counter()
    options = ClusterOptions(address="local", replicas=replicas, threads=1, temp_dir=folder / "ray",
                             transport=transport)
    try:
        cluster = Cluster(options)
    except Exception as exc:  # Ray's node sometimes times out starting again in the same process: once more
        print(f"  (the local cluster did not start: {exc}; starting it again)", flush=True)
        cluster = Cluster(options)
    try:
        engine = ClusterEngine(cluster, store_dir=folder / f"store-{replicas}", warm=["default"],
                               on_cluster_event=EVENTS)
        engine.warm("default")
        print(f"  (a local cluster with {replicas} replica(s) ready in {time.perf_counter() - started:.1f} s)",
              flush=True)
        door = FrontDoor(engine, prerender_depth=0).start()
        try:
            yield door
        finally:
            door.stop()
    finally:
        cluster.close()


def render_once(door: FrontDoor, steps: int) -> float:
    started = time.perf_counter()
    door.render([one_shot(steps)])
    return time.perf_counter() - started


def throughput(door: FrontDoor, callers: int, renders: int, steps: int) -> tuple[float, str]:
    """Renders per second with ``callers`` threads each asking for ``renders`` one-shots in turn, and
    how busy each replica was (the share of the time its model ran, and its batches' sizes)."""
    render_once(door, steps)  # warm: the model is loaded, torch's first call is behind us
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            for _ in range(renders):
                door.render([one_shot(steps)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    replicas: dict[int, tuple[float, list[int]]] = {}
    runs: dict[int, list[tuple[float, float]]] = {}
    for _, done in EVENTS.since(started, "done"):
        busy, sizes = replicas.get(done["pid"], (0.0, []))
        replicas[done["pid"]] = (busy + done["model_s"], [*sizes, done["batch"]])
        if done.get("model_at") is not None and done.get("ended_at") is not None:
            runs.setdefault(done["pid"], []).append((done["model_at"], done["ended_at"]))
    report = "; ".join(f"{share / elapsed:.0%} busy, batches of {sorted(sizes)}, {share / sum(sizes):.2f} s a render"
                       f"{turns(runs.get(pid, []))}" for pid, (share, sizes) in replicas.items())
    return callers * renders / elapsed, report


def turns(runs: list[tuple[float, float]]) -> str:
    """A replica's turns between batches: from its model's end to its next batch's model start, on the
    monotonic clock the replicas share with the gateway (the audio back, the gateway's answers and the
    callers' next requests, the next call)."""
    runs = sorted(runs)
    gaps = [later[0] - earlier[1] for earlier, later in itertools.pairwise(runs)]
    if not gaps:
        return ""
    return (f", turns between batches {statistics.median(gaps) * 1e3:.1f} ms "
            f"({min(gaps) * 1e3:.1f}-{max(gaps) * 1e3:.1f})")


def overhead(cluster: FrontDoor, local: FrontDoor, local_engine: TimedEngine, repeats: int,
             steps: int) -> tuple[float, float, float, float, dict[str, float], dict[str, float], dict[str, float]]:
    """Median render time on the cluster and in process, taking turns, the medians of what each
    added to its model's time (seconds), where the cluster's share went: the medians of the
    hops of a render on the cluster (:func:`render_hops`), and the medians of Serve's own round trip
    (:func:`empty_round_trip`, taking turns with them) and of its unary one (:func:`empty_unary_round_trip`),
    each by value (``"grpc"``) and by reference (``"actor"``)."""
    render_once(cluster, steps)
    [render] = local.render([one_shot(steps)])
    empty = empty_handle(render.audio.shape, render.sample_rate)
    for by_reference in (False, True):
        empty_round_trip(empty, steps, by_reference)
        empty_unary_round_trip(empty, steps, by_reference)
    remote, here, added, added_here = [], [], [], []
    floor: dict[str, list[float]] = {"grpc": [], "actor": []}
    unary: dict[str, list[float]] = {"grpc": [], "actor": []}
    hops: dict[str, list[float]] = {}
    for turn in range(repeats):
        started = time.perf_counter()
        asked = time.monotonic()
        remote.append(render_once(cluster, steps))
        answered = time.monotonic()
        [(_, sent)] = EVENTS.since(started, "started")
        [(_, done)] = EVENTS.since(started, "done")
        for name, value in render_hops(asked, sent, done, answered).items():
            hops.setdefault(name, []).append(value)
        added.append(remote[-1] - done["model_s"])
        here.append(render_once(local, steps))
        added_here.append(here[-1] - local_engine.model_s[-1])
        # in turns, first one then the other: neither always follows the renders
        transports = ("grpc", "actor") if turn % 2 else ("actor", "grpc")
        for transport in transports if turn % 4 < 2 else transports[::-1]:
            if turn % 2:
                unary[transport].append(empty_unary_round_trip(empty, steps, transport == "actor"))
                floor[transport].append(empty_round_trip(empty, steps, transport == "actor"))
            else:
                floor[transport].append(empty_round_trip(empty, steps, transport == "actor"))
                unary[transport].append(empty_unary_round_trip(empty, steps, transport == "actor"))
    return (statistics.median(remote), statistics.median(here), statistics.median(added),
            statistics.median(added_here), {name: statistics.median(values) for name, values in hops.items()},
            {name: statistics.median(values) for name, values in floor.items()},
            {name: statistics.median(values) for name, values in unary.items()})


def render_hops(asked: float, sent: dict[str, Any], done: dict[str, Any], answered: float) -> dict[str, float]:
    """The parts of a render on the cluster that are not the model's (seconds): the gateway until the
    call is sent, the call until it reaches the replica, the replica until the model starts, the
    model's end until its audio is at the gateway, and the gateway until the caller has it."""
    return {"gateway to the call": sent["sent_at"] - asked, "call to the replica": sent["arrived_at"] - sent["sent_at"],
            "replica to the model": done["model_at"] - sent["arrived_at"],
            "audio back": done["received_at"] - done["ended_at"], "store and reply": answered - done["received_at"]}


#: an interactive request's hops, in order: (name, the event and field that ends it)
HOPS = (("pre-render told to stop", "stopped", "told_at"), ("its replica free", "stopped", "freed_at"),
        ("interactive call sent", "started", "sent_at"), ("call at the replica", "started", "arrived_at"),
        ("model started", "done", "model_at"), ("model ended", "done", "ended_at"),
        ("audio at the gateway", "done", "received_at"))


def interactive_latency(door: FrontDoor, repeats: int, steps: int) -> tuple[float, float, float, dict[str, float]]:
    """Medians: the latency of an interactive one-shot with 20 pre-renders queued, of one render alone
    (just before each) and of their differences (seconds), and the time from the request to each of
    its hops (:data:`HOPS`; the last, ``answered``: the caller has its render)."""
    render_once(door, steps)
    alone, latencies = [], []
    hops: dict[str, list[float]] = {}
    for _ in range(max(3, repeats // 2)):
        alone.append(render_once(door, steps))
        queued = time.perf_counter()
        background = [door.submit(Order(one_shot(steps), priority=Priority.BACKGROUND, prerender=False))
                      for _ in range(20)]
        wait_until(lambda t=queued: len(EVENTS.since(t, "started")) >= 2)  # both replicas busy with pre-renders
        time.sleep(0.2)  # somewhere into their renders
        started = time.perf_counter()
        asked = time.monotonic()
        door.render([one_shot(steps)])
        answered = time.monotonic()
        latencies.append(time.perf_counter() - started)
        fields = {"stopped": [f for _, f in EVENTS.since(started, "stopped") if f["background"]][:1],
                  "started": [f for _, f in EVENTS.since(started, "started") if not f["background"]][:1],
                  "done": [f for _, f in EVENTS.since(started, "done") if not f["background"]][:1]}
        for name, event, field in HOPS:
            if fields[event] and fields[event][0].get(field):
                hops.setdefault(name, []).append(fields[event][0][field] - asked)
        hops.setdefault("answered", []).append(answered - asked)
        for job in background:
            job.wait(600)
    added = [latency - one for latency, one in zip(latencies, alone, strict=True)]
    return (statistics.median(latencies), statistics.median(alone), statistics.median(added),
            {name: statistics.median(times) for name, times in hops.items()})


def pause_delay(door: FrontDoor, repeats: int, steps: int) -> list[float]:
    """Seconds from an interactive call's arrival at one replica until the pre-render running on the
    other paused (its mark's lifetime less the pre-render's paused time), ``max(3, repeats // 2)`` times."""
    render_once(door, steps)
    delays = []
    for _ in range(max(3, repeats // 2)):
        queued = time.perf_counter()
        prerender = door.submit(Order(one_shot(steps), priority=Priority.BACKGROUND, prerender=False))
        wait_until(lambda t=queued: len(EVENTS.since(t, "started")) >= 1)
        time.sleep(random.uniform(0.1, 0.4))  # somewhere into its model's run
        asked = time.perf_counter()
        door.render([one_shot(max(1, steps // 5))])
        prerender.wait(600)
        [sent] = [f for _, f in EVENTS.since(asked, "started") if not f["background"]]
        [done] = [f for _, f in EVENTS.since(asked, "done") if not f["background"]]
        [paused] = [f for _, f in EVENTS.since(queued, "done") if f["background"]]
        delays.append(done["ended_at"] - sent["arrived_at"] - paused["paused_s"])
    return delays


def wait_until(condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the cluster did not start the pre-renders")
        time.sleep(0.005)


def load_average() -> str:
    return f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"


def print_overhead(transport: str, remote_s: float, local_s: float, added_s: float, added_here_s: float,
                   hops: dict[str, float], floor_s: dict[str, float], unary_s: dict[str, float]) -> None:
    print(f"2. one render ({transport}): cluster {remote_s * 1e3:.1f} ms, in process {local_s * 1e3:.1f} ms: "
          f"{(remote_s - local_s) * 1e3:+.1f} ms, {remote_s / local_s:.3f}x; wall time less the model's time: "
          f"cluster {added_s * 1e3:.1f} ms, in process {added_here_s * 1e3:.1f} ms: the cluster's overhead "
          f"{(added_s - added_here_s) * 1e3:+.1f} ms (target <= 5 ms) {load_average()}", flush=True)
    shares = ", ".join(f"{name} {value * 1e3:.1f}" for name, value in hops.items())
    print(f"   the cluster's share, ms (medians): {shares}", flush=True)
    floors = "; ".join(f"{name} {floor_s[name] * 1e3:.1f} ms (unary {unary_s[name] * 1e3:.1f} ms)" for name in floor_s)
    print(f"   Serve's own round trip (a deployment running nothing, streaming back a render's audio): {floors}; "
          f"the overhead beyond {transport}'s: {(added_s - added_here_s - floor_s[transport]) * 1e3:+.1f} ms "
          f"(wall times: {(remote_s - local_s - floor_s[transport]) * 1e3:+.1f} ms)", flush=True)


def print_latency(latency_s: float, alone_s: float, more_s: float, hops: dict[str, float]) -> None:
    print(f"3. interactive with 20 pre-renders queued: {latency_s * 1e3:.0f} ms vs one render alone "
          f"{alone_s * 1e3:.0f} ms: one render {more_s * 1e3:+.0f} ms (median of pairs), {latency_s / alone_s:.2f}x "
          f"(target <= one render + 20 ms) {load_average()}", flush=True)
    print("   its hops, ms after it was asked for (medians): " +
          ", ".join(f"{name} {at * 1e3:.1f}" for name, at in hops.items()), flush=True)


def print_pause(delays: list[float]) -> None:
    print(f"4. a running pre-render paused {statistics.median(delays) * 1e3:.1f} ms (median; "
          f"{min(delays) * 1e3:.1f} to {max(delays) * 1e3:.1f}) after an interactive call reached the other "
          f"replica {load_average()}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--renders", type=int, default=3, help="renders per caller in the throughput test")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds, each one replica then two")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=50, help="diffusion steps per render (the model's default: 50)")
    parser.add_argument("--transport", choices=TRANSPORTS, default=ClusterOptions.transport,
                        help="how batches travel between the gateway and its replicas (default: %(default)s)")
    parser.add_argument("--parts", default="throughput,overhead,latency,pause",
                        help="which figures to measure (comma-separated; without throughput: one round)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if parts - {"throughput", "overhead", "latency", "pause"}:
        parser.error(f"--parts {args.parts!r}: expected some of throughput, overhead, latency, pause")
    rounds = args.rounds if "throughput" in parts else 1
    torch.set_num_threads(1)  # as each replica runs (one CPU each): the in-process engine makes the same audio
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; default model, 0.5 s one-shots, "
          f"{args.steps} steps; transport {args.transport}", flush=True)
    with tempfile.TemporaryDirectory(prefix="lbbench-", dir="/tmp") as tmp:
        folder = Path(tmp)
        local_engine = TimedEngine(store_dir=folder / "local", device="cpu")
        local = FrontDoor(local_engine, prerender_depth=0).start()
        rates: dict[int, list[float]] = {1: [], 2: []}
        busy: dict[int, str] = {}
        # one replica also measures the overhead, two the interactive latency and the pause (each in the
        # first round)
        side_parts = {1: ("overhead",), 2: ("latency", "pause")}
        try:
            for round_ in range(rounds):
                for replicas, sides in side_parts.items():
                    now = {side for side in sides if round_ == 0 and side in parts}
                    if "throughput" not in parts and not now:
                        continue
                    with cluster_door(replicas, folder, args.transport) as door:
                        if "throughput" in parts:
                            rate, busy[replicas] = throughput(door, args.callers, args.renders, args.steps)
                            rates[replicas].append(rate)
                        if "overhead" in now:
                            print_overhead(args.transport,
                                           *overhead(door, local, local_engine, args.repeats, args.steps))
                        if "latency" in now:
                            print_latency(*interactive_latency(door, args.repeats, args.steps))
                        if "pause" in now:
                            print_pause(pause_delay(door, args.repeats, args.steps))
                if "throughput" in parts:
                    one, two = rates[1][-1], rates[2][-1]
                    print(f"  round {round_ + 1}: 1 replica {one:.2f} renders/s, 2 replicas {two:.2f} "
                          f"renders/s: {two / one:.2f}x {load_average()}; the replica {busy[1]}; "
                          f"the two: {busy[2]}", flush=True)
        finally:
            local.stop()
    if "throughput" not in parts:
        return 0
    ones, twos = rates[1], rates[2]
    ratios = [two / one for one, two in zip(ones, twos, strict=True)]
    print(f"1. throughput, {args.callers} callers: 1 replica {statistics.median(ones):.2f} renders/s, 2 replicas "
          f"{statistics.median(twos):.2f} renders/s (medians of {args.rounds} rounds): "
          f"{statistics.median(ratios):.2f}x, the median of the rounds' ratios ({min(ratios):.2f}-{max(ratios):.2f}x) "
          f"(target >= 1.6x) {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
