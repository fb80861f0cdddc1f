"""Serving benchmarks, measured side by side in one run on loopback (ratios, not absolute times).

1. A cache-hit variation over ZeroMQ, through the Python client: a 4 s stereo 48 kHz 24-bit WAV
   comes back in the reply. p50 / p99 latency, and the ratio to a bare pyzmq DEALER/ROUTER echo
   of the same bytes (targets: ≤ 1.5×, p99 ≤ 10 ms). A bare one-way reply of the same bytes (a
   small request, the WAV back) is printed too, as the stricter floor.
2. OSC command → reply (``/loopbridge/engine/ping`` → ``pong``) and a session knob
   (``/session/set/pitch`` → its feedback), against a bare UDP echo (target: p50 ≤ 2 ms).
3. Pre-rendering: a scripted session of 50 Variation-knob turns (mostly forward, sometimes back
   or skipping one) with a pause between turns, against an engine that pre-renders the next
   variations; the share of turns served from the store (target ≥ 90 %).
4. A cache-hit variation while the engine renders: knob clients turning over stored variations
   (0.1 s between turns) while other clients ask for fresh renders back to back (a new seed each
   time, so the model has to run). Cache-hit p50 / p99 on the idle engine just before and under
   that load, their ratio (target: p99 ≤ 20 ms under load), and how many renders finished in the
   window and how long they took. Every client runs in a process of its own, so no figure
   includes the benchmark's own interpreter lock.

    python bench/bench_serve.py [--only zmq|osc|prerender|load] [--requests 500] [--turns 50] [--pause 0.5]
        [--load-s 30] [--idle-s 10] [--hit-clients 10] [--miss-clients 10] [--knob-pause 0.1] [--load-prerender]
        [--threads 1] [--device cpu]

The engine runs as ``loopbridge serve`` in its own process, as it does for a plugin; the bare
baselines run in their own processes too, so every figure includes the same process boundary.
The model is a small randomly initialised Dance Diffusion checkpoint built here (speed does not
depend on the weights' values), saved and loaded exactly as a real one is.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopbridge.bridge import protocol as p
from loopbridge.bridge.client import Client
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from tests.engine.models.tiny_dance_diffusion import build_tiny_dance_diffusion


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[index]


def timed(n: int, fn: Callable[[], Any], warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def describe(name: str, ms: list[float]) -> str:
    return f"{name:44s} p50 {percentile(ms, 50):7.3f} ms   p99 {percentile(ms, 99):7.3f} ms"


# ---- baselines, each in a process of its own ---------------------------------------------------------------

BARE_ROUTER = """
import sys, zmq
ctx = zmq.Context(); sock = ctx.socket(zmq.ROUTER); sock.linger = 0
port = sock.bind_to_random_port("tcp://127.0.0.1")
reply = open(sys.argv[1], "rb").read() if len(sys.argv) > 1 else None
print(port, flush=True)
while True:
    frames = sock.recv_multipart(copy=False)
    if reply is None:
        sock.send_multipart(frames, copy=False)  # echo: the same bytes straight back
    else:
        sock.send_multipart([frames[0], b'{"v":1,"type":"reply"}', reply], copy=False)
"""

BARE_OSC_ECHO = """
import socket
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
while True:
    data, sender = sock.recvfrom(65536)
    message = OscPacket(data).messages[0].message  # parse and rebuild, as any server has to
    builder = OscMessageBuilder(message.address)
    for arg in message.params:
        builder.add_arg(arg)
    sock.sendto(builder.build().dgram, sender)
"""


def child(code: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, int(process.stdout.readline())


class Dealer:
    """A bare pyzmq DEALER: sends the same frames, waits for one answer."""

    def __init__(self, endpoint: str, frames: list[bytes]) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.frames = frames

    def once(self) -> None:
        self.sock.send_multipart(self.frames, copy=False)
        self.sock.recv_multipart(copy=False)

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


def interleaved(fns: list[Callable[[], Any]], n: int, rounds: int = 50) -> list[list[float]]:
    """Latencies (ms) of each of ``fns``, ``n`` each, measured in alternating rounds."""
    out: list[list[float]] = [[] for _ in fns]
    per_round = max(1, n // rounds)
    for fn in fns:
        for _ in range(20):
            fn()
    while len(out[0]) < n:
        for fn, times in zip(fns, out, strict=True):
            times += timed(min(per_round, n - len(times)), fn, warmup=0)
    return out


class OscPeer:
    """A UDP socket that sends one OSC message and waits for the answer at ``expect``."""

    def __init__(self, target: tuple[str, int], address: str, args: list[Any], expect: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(arg)
        self.dgram = builder.build().dgram
        self.target = target
        self.expect = expect

    def once(self) -> None:
        self.sock.sendto(self.dgram, self.target)
        while True:
            data, _ = self.sock.recvfrom(65536)
            if OscPacket(data).messages[0].message.address == self.expect:
                return


# ---- the engine ----------------------------------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_engine(root: Path, threads: int, device: str) -> tuple[subprocess.Popen[str], str, tuple[str, int]]:
    """``loopbridge serve`` in a child process; returns it once it is ready."""
    zmq_endpoint, osc = f"tcp://127.0.0.1:{free_port()}", ("127.0.0.1", free_port(socket.SOCK_DGRAM))
    env = {**os.environ, "LOOPBRIDGE_MODELS": str(root / "models"), "LOOPBRIDGE_HOME": str(root / "home"),
           "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "loopbridge.bridge.cli", "serve", "--zmq", zmq_endpoint, "--events", "off",
         "--osc", f"{osc[0]}:{osc[1]}", "--model", "bench-dd", "--threads", str(threads), "--device", device,
         "--prerender", "4", "--quiet"],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("loopbridge serve: ready"):
            threading.Thread(target=lambda: [None for _ in process.stderr or []], daemon=True).start()
            return process, zmq_endpoint, osc
    raise SystemExit(f"the engine did not start (exit {process.wait()})")


# ---- the sections ------------------------------------------------------------------------------------------


def zmq_hit(args: argparse.Namespace, root: Path, endpoint: str, processes: list[subprocess.Popen[str]]) -> None:
    # a texture's seam crossfade (0.25 s) is folded into its loop: 4.25 s rendered, 4 s in the WAV
    request = {"kind": "texture", "duration_s": 4.25, "steps": 2, "seed": 11, "sample_rate": 48000,
               "prerender": False}
    with Client(endpoint) as client:
        first = client.generate(timeout=600, **request)
        sample = first.samples[0]
        wav = bytes(sample.wav or b"")
        print(f"sample: {sample.channels} ch, {sample.sample_rate} Hz, "
              f"{sample.frames / sample.sample_rate:.2f} s, {len(wav)} bytes of WAV")
        wav_file = root / "sample.wav"
        wav_file.write_bytes(wav)
        echo, echo_port = child(BARE_ROUTER)
        oneway, oneway_port = child(BARE_ROUTER, str(wav_file))
        processes += [echo, oneway]
        header = b'{"v":1,"type":"variation","id":"x"}'
        echo_dealer = Dealer(f"tcp://127.0.0.1:{echo_port}", [header, wav])
        oneway_dealer = Dealer(f"tcp://127.0.0.1:{oneway_port}", [header])

        def hit() -> None:
            reply = client.request(p.MessageType.VARIATION, request, timeout=30)
            assert reply.samples[0].cached and len(reply.frames[0]) == len(wav)

        # interleaved in rounds, so a change in the machine's load touches every figure alike
        ours, bare_echo, bare_oneway = interleaved([hit, echo_dealer.once, oneway_dealer.once], args.requests)
        echo_dealer.close()
        oneway_dealer.close()
    print()
    print("1. cache-hit variation over ZeroMQ")
    print(describe("   loopbridge client → engine → WAV back", ours))
    print(describe("   bare pyzmq DEALER/ROUTER echo, same bytes", bare_echo))
    print(describe("   bare pyzmq one-way reply, same bytes", bare_oneway))
    print(f"   ratio to the echo: p50 {percentile(ours, 50) / percentile(bare_echo, 50):.2f}×, "
          f"p99 {percentile(ours, 99) / percentile(bare_echo, 99):.2f}×   (target ≤ 1.5×, p99 ≤ 10 ms)")
    print(f"   ratio to the one-way reply: p50 {percentile(ours, 50) / percentile(bare_oneway, 50):.2f}×")


def osc_round_trip(args: argparse.Namespace, osc: tuple[str, int], processes: list[subprocess.Popen[str]]) -> None:
    osc_echo, osc_echo_port = child(BARE_OSC_ECHO)
    processes.append(osc_echo)
    ping = OscPeer(osc, f"{p.OSC_ROOT}/engine/ping", ["t"], f"{p.OSC_ROOT}/engine/pong")
    knob_peer = OscPeer(osc, f"{p.OSC_ROOT}/session/set/beats_per_bar", [4], f"{p.OSC_ROOT}/session/beats_per_bar")
    echo_peer = OscPeer(("127.0.0.1", osc_echo_port), f"{p.OSC_ROOT}/engine/ping", ["t"], f"{p.OSC_ROOT}/engine/ping")
    engine_osc, knob, bare = interleaved([ping.once, knob_peer.once, echo_peer.once], args.requests)
    print()
    print("2. OSC command → reply")
    print(describe("   /engine/ping → /engine/pong", engine_osc))
    print(describe("   /session/set/beats_per_bar → feedback", knob))
    print(describe("   bare python-osc UDP echo", bare))
    print(f"   ratio to the echo: p50 {percentile(engine_osc, 50) / percentile(bare, 50):.2f}×   "
          f"(target p50 ≤ 2 ms)")


def prerender_rate(args: argparse.Namespace, endpoint: str) -> None:
    rng = random.Random(args.seed)
    session = {"kind": "one-shot", "duration_s": 0.1, "steps": 2, "seed": 500, "tempo_bpm": 124.0}
    hits, hit_ms, miss_ms = 0, [], []
    with Client(endpoint) as client:
        client.generate(timeout=600, **session)  # the user presses Generate: variation 0
        variation = 0
        for _ in range(args.turns):
            time.sleep(args.pause)
            variation = max(0, variation + rng.choices([1, 2, -1], weights=[8, 1, 1])[0])
            started = time.perf_counter()
            reply = client.variation(timeout=600, variation=variation, **session)
            elapsed = (time.perf_counter() - started) * 1000
            if reply.samples[0].cached:
                hits += 1
                hit_ms.append(elapsed)
            else:
                miss_ms.append(elapsed)
        status = client.status()["prerender"]
    print()
    print(f"3. pre-rendering: {args.turns} variation turns, {args.pause:g} s apart, depth 4")
    print(f"   served from the store: {hits}/{args.turns} = {100 * hits / args.turns:.0f} %   (target ≥ 90 %)")
    if hit_ms:
        print(f"   latency from the store: median {statistics.median(hit_ms):.2f} ms")
    if miss_ms:
        print(f"   latency when rendered: median {statistics.median(miss_ms):.1f} ms ({len(miss_ms)} turns)")
    print(f"   pre-renders queued {status['queued']}, stored {status['stored']}, skipped {status['skipped']}")


# ---- 4. a cache hit while the engine renders -----------------------------------------------------------------

#: what the render clients ask for, each time with a seed never asked before: one render alone takes a few
#: tenths of a second on one CPU core (measured and printed), so with several clients waiting the worker is
#: never idle; no pre-renders, so the load is exactly what the clients ask for and the idle engine stays idle
LOAD_REQUEST: dict[str, Any] = {"kind": "one-shot", "duration_s": 0.5, "steps": 2, "prerender": False}
#: the knob's sample: the same request with a seed of its own, its variations rendered before any timing
KNOB_REQUEST: dict[str, Any] = {**LOAD_REQUEST, "seed": 21}
#: render client i asks for seeds (i + 1) × this, + 1, ... (never the knob's, never another client's)
MISS_SEED_STRIDE = 1_000_000
#: the render clients start this long before the knob's timed window, so the window opens on a busy engine
SETTLE_S = 1.0
LOAD_CLIENT = Path(__file__).resolve().parent / "serve_load_client.py"


class LoadClient:
    """``serve_load_client.py`` in a process of its own (its own interpreter and ZeroMQ context)."""

    def __init__(self, endpoint: str, role: str, request: dict[str, Any], *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(LOAD_CLIENT), endpoint, role, json.dumps(request), *options],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"a load client ended early (exit {self.process.wait()})")
        return line

    def ready(self) -> None:
        self._line()

    def window(self, start: float, end: float) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{start!r} {end!r}\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        return dict(json.loads(self._line()))


def idle_counters(client: Client, timeout_s: float = 600) -> dict[str, int]:
    """The scheduler's counters once nothing is queued, rendering, being stored or conforming (earlier
    sections' pre-renders may still be on their way). Raises SystemExit when the engine stays busy for
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        queue = client.status()["queue"]
        if not queue["rendering"] and not queue.get("storing") and not any(queue["queued"].values()) \
                and not queue["conform_queue"]:
            return dict(queue["counters"])
        if time.monotonic() > deadline:
            raise SystemExit(f"the engine is still busy after {timeout_s:g} s: {queue}")
        time.sleep(0.2)


def hit_under_load(args: argparse.Namespace, endpoint: str, processes: list[subprocess.Popen[str]]) -> None:
    with Client(endpoint) as client:
        prepared = client.generate(timeout=600, variations=args.knob_variations, **KNOB_REQUEST)
        sample = prepared.samples[0]
        wav_bytes = len(sample.wav or b"")
        started = time.perf_counter()
        client.generate(timeout=600, **{**LOAD_REQUEST, "seed": MISS_SEED_STRIDE - 1})
        alone_s = time.perf_counter() - started
        before = idle_counters(client)

    hitters = [LoadClient(endpoint, "hit", KNOB_REQUEST, "--variations", str(args.knob_variations),
                          "--pause", str(args.knob_pause), "--offset", str(i)) for i in range(args.hit_clients)]
    miss_request = {**LOAD_REQUEST, "prerender": args.load_prerender}
    renderers = [LoadClient(endpoint, "miss", miss_request, "--first-seed", str(MISS_SEED_STRIDE * (i + 1)))
                 for i in range(args.miss_clients)]
    processes += [c.process for c in hitters + renderers]
    for c in hitters + renderers:
        c.ready()

    # the same knob clients on the idle engine, just before: the ratio is the renders' doing alone
    start = time.time() + 0.2
    for c in hitters:
        c.window(start, start + args.idle_s)
    idle = [c.result() for c in hitters]
    load_before = os.getloadavg()[0]
    start = time.time() + SETTLE_S
    end = start + args.load_s
    for c in renderers:
        c.window(start - SETTLE_S, end)  # they start at once: the knob's window opens on a busy engine
    for c in hitters:
        c.window(start, end)
    loaded = [c.result() for c in hitters]
    rendered = [c.result() for c in renderers]
    load_after = os.getloadavg()[0]
    with Client(endpoint) as client:
        after = client.status()["queue"]["counters"]
    for c in hitters + renderers:
        assert c.process.stdin is not None
        c.process.stdin.close()
        c.process.wait(30)

    idle_ms = [ms for r in idle for ms in r["latencies_ms"]]
    loaded_ms = [ms for r in loaded for ms in r["latencies_ms"]]
    miss_ms = [ms for r in rendered for ms in r["latencies_ms"]]
    uncached = sum(r["uncached"] for r in idle + loaded)
    if uncached:
        raise SystemExit(f"{uncached} knob turns were rendered, not served from the store: the figures mean nothing")
    if not idle_ms or not loaded_ms:
        raise SystemExit("no knob turn was timed: at least one knob client and a window longer than a turn are needed")
    reconnects = sum(r["reconnects"] for r in idle + loaded + rendered)
    batches = after["batches"] - before["batches"]
    print()
    print(f"4. cache-hit variation over ZeroMQ while the engine renders (load average {load_before:.2f} → "
          f"{load_after:.2f})")
    print(f"   {args.hit_clients} knob clients: variation turns over {args.knob_variations} stored "
          f"{KNOB_REQUEST['kind']}s ({sample.frames / sample.sample_rate:.2f} s, {wav_bytes} bytes of WAV), "
          f"{args.knob_pause:g} s apart")
    print(f"   {args.miss_clients} render clients: a {LOAD_REQUEST['kind']} of {LOAD_REQUEST['duration_s']:g} s, "
          f"{LOAD_REQUEST['steps']} steps, a fresh seed each time, back to back (one render alone: {alone_s:.2f} s)")
    prerendering = "render clients' neighbours pre-rendered" if args.load_prerender else "pre-rendering off"
    print(f"   every client in a process of its own, {prerendering}; idle over {args.idle_s:g} s just before, "
          f"under load over {args.load_s:g} s")
    print(describe(f"   cache hit, idle engine ({len(idle_ms)} turns)", idle_ms))
    print(describe(f"   cache hit, under load ({len(loaded_ms)} turns)", loaded_ms))
    print(f"   ratio under load / idle: p50 {percentile(loaded_ms, 50) / percentile(idle_ms, 50):.1f}×, "
          f"p99 {percentile(loaded_ms, 99) / percentile(idle_ms, 99):.1f}×   "
          f"(target: cache-hit p99 ≤ 20 ms under load)")
    if miss_ms:
        print(f"   rendered during the window: {len(miss_ms)} misses in {batches} batches, median latency "
              f"{statistics.median(miss_ms):.0f} ms; {sum(r['cancelled'] for r in rendered)} cancelled at its end")
    else:
        print(f"   rendered during the window: none ({batches} batches started)")
    if reconnects:
        print(f"   client reconnects: {reconnects} (the engine was silent for longer than the heartbeat liveness)")


SECTIONS = ("zmq", "osc", "prerender", "load")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=SECTIONS,
                        help="run only this section (repeatable): zmq 1, osc 2, prerender 3, load 4")
    parser.add_argument("--requests", type=int, default=500, help="1, 2: timed requests per latency figure")
    parser.add_argument("--turns", type=int, default=50, help="3: variation turns in the scripted session")
    parser.add_argument("--pause", type=float, default=0.5, help="3: seconds between knob turns")
    parser.add_argument("--load-s", type=float, default=30.0, help="4: seconds the knob is timed under load")
    parser.add_argument("--idle-s", type=float, default=10.0, help="4: seconds the knob is timed on the idle engine")
    parser.add_argument("--hit-clients", type=int, default=10, help="4: clients turning a knob over stored samples")
    parser.add_argument("--miss-clients", type=int, default=10, help="4: clients asking for fresh renders")
    parser.add_argument("--knob-pause", type=float, default=0.1, help="4: seconds between a knob client's turns")
    parser.add_argument("--knob-variations", type=int, default=4, help="4: stored variations the knob turns over")
    parser.add_argument("--load-prerender", action="store_true",
                        help="4: the render clients' requests queue their neighbours too (as a plugin's do)")
    parser.add_argument("--threads", type=int, default=1, help="the engine's torch threads (on a shared CPU, "
                                                                "one is fastest for the small model)")
    parser.add_argument("--device", default="cpu", help="the engine's device: cpu or cuda")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sections = set(args.only or SECTIONS)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_tiny_dance_diffusion(root / "models" / "bench-dd", sample_size=20480)  # up to 5.1 s at 16 kHz
        engine, endpoint, osc = start_engine(root, args.threads, args.device)
        processes = [engine]
        try:
            print(f"loopbridge serve benchmark: {args.requests} requests per figure, engine on {args.device} "
                  f"with {args.threads} torch threads, each server in its own process")
            if "zmq" in sections:
                zmq_hit(args, root, endpoint, processes)
            if "osc" in sections:
                osc_round_trip(args, osc, processes)
            if "prerender" in sections:
                prerender_rate(args, endpoint)
            if "load" in sections:
                hit_under_load(args, endpoint, processes)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                process.wait(60)


if __name__ == "__main__":
    main()
