"""Load: 20 concurrent clients × 50 requests each, pipelined; every reply matches its request, none is lost."""

from __future__ import annotations

import threading
from typing import Any

from loopbridge.bridge.client import Client, Pending

from tests.bridge.conftest import TINY, Served

CLIENTS = 20
REQUESTS = 50


def _run_clients(served: Served, work: Any) -> list[BaseException]:
    """``work(client_index, client)`` in one thread per client, all started together."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(CLIENTS)

    def run(index: int) -> None:
        try:
            with Client(served.zmq.endpoint) as client:
                barrier.wait(60)
                work(index, client)
        except BaseException as exc:  # collected and asserted by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return errors


def test_quick_requests_from_twenty_clients(served: Served) -> None:
    answered = []

    def work(index: int, client: Client) -> None:
        sent: list[tuple[Pending, str]] = []
        for n in range(REQUESTS):
            token = f"c{index}-r{n}"
            kind = "history" if n % 10 == 9 else "ping"
            fields = {"limit": 1 + n % 5} if kind == "history" else {"token": token}
            sent.append((client.submit(kind, fields), token))
        for pending, token in sent:
            reply = pending.result(timeout=120)
            assert reply["id"] == pending.id
            if pending.kind.value == "ping":
                assert reply["type"] == "pong" and reply["token"] == token
            else:
                assert reply["re"] == "history" and isinstance(reply["entries"], list)
            answered.append(pending.id)

    assert _run_clients(served, work) == []
    assert len(answered) == len(set(answered)) == CLIENTS * REQUESTS


def test_cache_hits_with_audio_from_twenty_clients(served: Served) -> None:
    base = {**TINY, "prompt": "load", "seed": 5150, "prerender": False}
    with Client(served.zmq.endpoint) as client:
        reference = client.generate(variations=5, timeout=300, **base)
    wav_by_variation = {s.variation: s.wav for s in reference.samples}
    assert len(wav_by_variation) == 5 and all(wav_by_variation.values())
    answered = []

    def work(index: int, client: Client) -> None:
        sent = [(client.submit("variation", {**base, "variation": (index + n) % 5}), (index + n) % 5)
                for n in range(REQUESTS)]
        for pending, variation in sent:
            reply = pending.result(timeout=300)
            (sample,) = reply.samples
            assert reply["id"] == pending.id and sample.variation == variation and sample.cached
            assert sample.wav == wav_by_variation[variation]
            answered.append(pending.id)

    assert _run_clients(served, work) == []
    assert len(answered) == len(set(answered)) == CLIENTS * REQUESTS
