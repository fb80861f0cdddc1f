"""One client of ``bench_serve.py``'s section 4, in a process of its own, so that its timings share
no interpreter lock with the benchmark or with the other clients.

    python bench/serve_load_client.py ENDPOINT hit  REQUEST_JSON --variations 4 --pause 0.1 --offset 2
    python bench/serve_load_client.py ENDPOINT miss REQUEST_JSON --first-seed 1000000

``hit`` turns a knob: one ``variation`` request after another over the stored variations
``0 … variations - 1`` of REQUEST_JSON, ``pause`` seconds apart; every reply must come from the
store. ``miss`` asks for a fresh render back to back: a ``generate`` of REQUEST_JSON with a seed
nobody asked for before, the next one as soon as the last is in.

The process prints ``ready`` once the engine has answered it, then reads one line per window from
stdin: ``START END`` (``time.time()`` seconds). It works until END, keeps the latencies of the
requests sent at or after START, and prints them as one JSON line. A miss client cancels the render
it still waits for at END. End of input ends the process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopbridge.bridge import protocol as p
from loopbridge.bridge.client import Client, RemoteError


def knob(client: Client, request: dict[str, Any], variations: int, pause_s: float, offset: int,
         start: float, end: float) -> dict[str, Any]:
    """Variation turns until ``end``; latencies (ms) of those sent from ``start`` on."""
    latencies_ms: list[float] = []
    uncached = 0
    turn = offset
    while True:
        sent_at = time.time()
        if sent_at >= end:
            break
        started = time.perf_counter()
        reply = client.request(p.MessageType.VARIATION, {**request, "variation": turn % variations}, timeout=60)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if sent_at >= start:
            latencies_ms.append(elapsed_ms)
            uncached += not reply.samples[0].cached
        turn += 1
        time.sleep(pause_s)
    return {"latencies_ms": latencies_ms, "uncached": uncached, "reconnects": client.reconnects}


def renders(client: Client, request: dict[str, Any], seed: int, end: float) -> dict[str, Any]:
    """Fresh renders, back to back, until ``end``; latencies (ms) of those finished by then."""
    latencies_ms: list[float] = []
    cancelled = 0
    while time.time() < end:
        started = time.perf_counter()
        pending = client.submit(p.MessageType.GENERATE, {**request, "seed": seed})
        seed += 1
        try:
            reply = pending.result(max(0.0, end - time.time()))
        except TimeoutError:
            cancelled += 1
            try:
                client.cancel(pending.id, timeout=10)
            except RemoteError:  # it finished between the deadline and the cancel
                pass
            break
        latencies_ms.append((time.perf_counter() - started) * 1000)
        if reply.samples[0].cached:
            raise SystemExit(f"seed {seed - 1} was already in the store: the miss clients' seeds must be fresh")
    return {"latencies_ms": latencies_ms, "cancelled": cancelled, "next_seed": seed,
            "reconnects": client.reconnects}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("endpoint")
    parser.add_argument("role", choices=["hit", "miss"])
    parser.add_argument("request", help="the request's fields, as JSON")
    parser.add_argument("--variations", type=int, default=4, help="hit: stored variations to turn through")
    parser.add_argument("--pause", type=float, default=0.1, help="hit: seconds between turns")
    parser.add_argument("--offset", type=int, default=0, help="hit: the variation of the first turn")
    parser.add_argument("--first-seed", type=int, default=1_000_000, help="miss: the seed of the first render")
    args = parser.parse_args()
    request = json.loads(args.request)
    seed = args.first_seed
    with Client(args.endpoint) as client:
        client.ping(timeout=30)
        print("ready", flush=True)
        for line in sys.stdin:
            start, end = (float(x) for x in line.split())
            if args.role == "hit":
                result = knob(client, request, args.variations, args.pause, args.offset, start, end)
            else:
                result = renders(client, request, seed, end)
                seed = result["next_seed"]
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
