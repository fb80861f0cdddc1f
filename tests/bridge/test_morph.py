"""Morph over the wire with a model that can morph (a tiny Riffusion): a round trip over ZeroMQ and
over OSC, and the nearby morph positions pre-rendered so that turning the Morph knob is served from
the store."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from loopbridge.bridge import protocol as p
from loopbridge.bridge.client import Client, Events
from loopbridge.engine.prerender import MORPH_STEP

from tests.bridge.conftest import Served, start_served, stop_served
from tests.bridge.test_osc import Peer, _pairs
from tests.engine.models.tiny_pipelines import RIFFUSION_FOLDER, build_riffusion, mark_riffusion

R = p.OSC_ROOT
#: a quarter-second texture from two steps of the tiny Riffusion (one 0.64 s image)
MORPH: dict[str, Any] = {"model": RIFFUSION_FOLDER, "prompt": "jazz piano", "morph_prompt": "techno",
                         "kind": "texture", "duration_s": 0.25, "steps": 2, "guidance": 3.0}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    models = tmp_path_factory.mktemp("riffusion-models")
    mark_riffusion(build_riffusion(models))
    # depth 1: the next variation and, around a morph position, two grid steps on each side
    instance = start_served(models, tmp_path_factory.mktemp("engine"), default_model=RIFFUSION_FOLDER,
                            prerender_depth=1)
    yield instance
    stop_served(instance)


def _morph_prerenders(served: Served) -> tuple[list[dict[str, Any]], Any]:
    """Morph pre-render events as the service publishes them (and the listener, to remove it)."""
    seen: list[dict[str, Any]] = []

    def listener(topic: str, fields: dict[str, Any]) -> None:
        if topic == "prerender" and fields.get("morph_amount") is not None:
            seen.append(fields)

    served.service.add_listener(listener)
    return seen, listener


def _wait_for_amount(seen: list[dict[str, Any]], amount: float, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(abs(f["morph_amount"] - amount) < 1e-9 for f in seen):
            return
        time.sleep(0.05)
    raise AssertionError(f"morph position {amount} was not pre-rendered in {timeout_s} s; got {seen}")


def test_morph_round_trip_and_prerendered_positions_over_zeromq(served: Served) -> None:
    with Client(served.zmq.endpoint) as client, Events(served.zmq.events_endpoint, topics=["prerender"]) as events:
        time.sleep(0.3)  # the subscription reaches the publisher before anything is published
        capabilities = client.capabilities(RIFFUSION_FOLDER)
        assert capabilities["morph"] and capabilities["family"] == "riffusion"
        reply = client.morph(seed=3, morph_seed=8, morph_amount=0.25, timeout=180, **MORPH)
        assert reply["re"] == "morph"
        (sample,) = reply.samples
        audio, rate = sf.read(io.BytesIO(sample.wav), always_2d=True)
        assert rate == 48000 and audio.shape[0] == sample.frames and abs(audio).max() > 0
        assert not sample.cached
        # another knob position is another render
        other = client.morph(seed=3, morph_seed=8, morph_amount=0.75, prerender=False, timeout=180, **MORPH)
        assert other.samples[0].render_key != sample.render_key

        # the positions a grid step either side were rendered in the background and announced
        wanted = {round(0.25 + MORPH_STEP, 6), round(0.25 - MORPH_STEP, 6)}
        announced: set[float] = set()
        deadline = time.monotonic() + 180
        while not wanted <= announced and time.monotonic() < deadline:
            event = events.next(timeout=max(0.0, deadline - time.monotonic()))
            if event is not None and event[1].get("morph_amount") is not None:
                announced.add(round(float(event[1]["morph_amount"]), 6))
        assert wanted <= announced, f"pre-rendered morph positions: {sorted(announced)}"
        turned = client.morph(seed=3, morph_seed=8, morph_amount=0.25 + MORPH_STEP, timeout=60, **MORPH)
        assert turned.samples[0].cached, "a morph knob turn to a neighbouring position is served from the store"
        assert turned.samples[0].render_key not in (sample.render_key, other.samples[0].render_key)


def test_morph_round_trip_and_prerendered_positions_over_osc(served: Served) -> None:
    peer = Peer(served)
    seen, listener = _morph_prerenders(served)
    try:
        # a job: the same operation as over ZeroMQ, the file's path in the reply
        peer.send(f"{R}/job/morph", "m1", "seed", 5, "morph_amount", 0.5, "prerender", 0, *_pairs(MORPH))
        args, before = peer.until(f"{R}/job/done", 180)
        assert args == ["m1", 1]
        (job_sample,) = [a for address, a in before if address == f"{R}/job/sample"]
        assert job_sample[0] == "m1" and Path(job_sample[2]).is_file()

        # the session: a morph target, generate, then the Morph knob
        assert peer.ask(f"{R}/controller/register") == ["127.0.0.1", peer.port]
        # the knob first: with no morph target yet it selects nothing, so nothing renders before generate
        for name, value in (("morph", 0.5), ("prompt", "jazz piano"), ("morph_prompt", "techno"),
                            ("kind", "texture"), ("bars", 0.25), ("tempo", 240.0), ("quality", 2)):
            peer.send(f"{R}/session/set/{name}", value)
            peer.until(f"{R}/session/{name}")
        peer.send(f"{R}/session/generate")
        first = peer.until(f"{R}/session/sample", 180)[0]
        assert Path(first[0]).is_file() and first[1] == "texture"
        _wait_for_amount(seen, round(0.5 + MORPH_STEP, 6))
        peer.send(f"{R}/session/set/morph", 0.5 + MORPH_STEP)
        assert peer.until(f"{R}/session/morph")[0] == [pytest.approx(0.5 + MORPH_STEP)]
        turned = peer.until(f"{R}/session/sample", 60)[0]
        assert turned[6] != first[6], "another morph position, another render"
        assert peer.until(f"{R}/session/status", 30)[0] == ["ready (from the store)"]
        peer.ask(f"{R}/controller/unregister")
    finally:
        served.service.remove_listener(listener)
        peer.close()
