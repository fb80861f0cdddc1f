"""The front door over a Ray cluster: two CPU replicas of the default model (tests/cluster/conftest.py).

Each test asks for renders no other test asks for (its own seeds): the session's gateway keeps one
store, and a render already in it would never reach a replica.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from loopbridge.engine.cluster import ClusterOptions
from loopbridge.engine.core import Engine
from loopbridge.engine.errors import CancelledError
from loopbridge.engine.frontdoor import FrontDoor, HostFacts, Order
from loopbridge.engine.request import AudioPrompt, GenerateRequest, Kind
from loopbridge.engine.scheduler import JobState, Priority

from .conftest import Events

pytestmark = pytest.mark.slow

TIMEOUT_S = 180.0


def one_shot(seed: int, steps: int | None = None, duration_s: float = 0.5, prompt: str = "kick") -> GenerateRequest:
    extra = {"steps": steps} if steps is not None else {}
    return GenerateRequest(prompt, kind=Kind.ONE_SHOT, duration_s=duration_s, seed=seed, **extra)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    """The in-process engine the cluster's audio is compared with (its model loaded once)."""
    # one thread, as each replica (conftest's ClusterOptions): the same audio to the bit needs the same
    # thread count, and a test module collected in the same run may have set another at import
    torch.set_num_threads(1)
    front = FrontDoor(Engine(store_dir=tmp_path_factory.mktemp("in-process"), device="cpu"), prerender_depth=0).start()
    yield front
    front.stop()


@pytest.fixture()
def door(cluster_engine: Any) -> Iterator[FrontDoor]:
    front = FrontDoor(cluster_engine, prerender_depth=0).start()
    yield front
    front.stop()


def test_the_same_request_gives_the_same_audio_as_in_process(door: FrontDoor, in_process: FrontDoor) -> None:
    # one request: a request batched with others differs from it alone by ~1e-5 (torch's batched
    # kernels), in process as on the cluster, and the cluster shares a batch out between free replicas
    order = Order(one_shot(1001, prompt="snare"), HostFacts(tempo_bpm=120))
    fractions: list[float] = []
    remote = door.submit(order, on_progress=lambda _job, fraction: fractions.append(fraction)).result(TIMEOUT_S)
    renders = door.render([one_shot(1001, prompt="snare")])

    expected = in_process.generate(order, timeout=TIMEOUT_S)
    expected_renders = in_process.render([one_shot(1001, prompt="snare")])
    assert [s.data for s in remote] == [s.data for s in expected]  # the tagged WAVs, byte for byte
    assert renders[0].key == expected_renders[0].key
    assert np.array_equal(renders[0].audio, expected_renders[0].audio)
    # progress came from the replicas while the model ran, not only at the end
    assert any(0.0 < fraction < 1.0 for fraction in fractions), fractions
    assert fractions[-1] == 1.0


def test_an_interactive_request_overtakes_queued_prerenders(door: FrontDoor, cluster_events: Events) -> None:
    mark = cluster_events.mark()
    # few steps and a dozen: pre-renders take a while on two CPU replicas
    background = [door.submit(Order(one_shot(2000 + i, steps=20), priority=Priority.BACKGROUND, prerender=False))
                  for i in range(12)]
    cluster_events.wait(mark, "started", count=2)  # both replicas busy with pre-renders
    states: dict[str, JobState] = {}
    interactive = door.submit(Order(one_shot(2100, steps=20, prompt="clap")),
                              on_done=lambda _job: states.update({job.id: job.state for job in background}))
    interactive.result(TIMEOUT_S)
    unfinished = [job_id for job_id, state in states.items() if state not in (JobState.DONE, JobState.FAILED)]
    # first come first served would have answered it after all twelve
    assert len(unfinished) >= 6, states
    for job in background:
        assert len(job.result(TIMEOUT_S)) == 1  # pre-renders stopped for it were queued again and made
    assert door.queue()["counters"]["preempted"] >= 1


def test_cancel_a_queued_job(door: FrontDoor, cluster_events: Events) -> None:
    mark = cluster_events.mark()
    busy = [door.submit(Order(one_shot(3000 + i, steps=40, duration_s=0.5 + 0.1 * i))) for i in range(2)]
    cluster_events.wait(mark, "started", count=2)
    queued = door.submit(Order(one_shot(3010)))
    assert queued.state is JobState.QUEUED
    assert door.cancel(queued.id)
    with pytest.raises(CancelledError):
        queued.result(TIMEOUT_S)
    for job in busy:
        assert len(job.result(TIMEOUT_S)) == 1
    assert len(cluster_events.since(mark, "started")) == 2  # the cancelled job never reached a replica


def test_cancel_a_running_job_stops_the_replicas_model(door: FrontDoor, cluster_events: Events) -> None:
    mark = cluster_events.mark()
    long_job = door.submit(Order(one_shot(4000, steps=400, duration_s=2.0)))
    [started] = cluster_events.wait(mark, "started")
    assert door.cancel(long_job.id)
    with pytest.raises(CancelledError):
        long_job.result(TIMEOUT_S)
    # the next batches on that replica say it stopped the model at a step (two batches at once, of two
    # lengths so that they do not batch together: one lands there)
    mark = cluster_events.mark()
    after = [door.submit(Order(one_shot(4010 + i, steps=20, duration_s=0.5 + 0.1 * i))) for i in range(2)]
    for job in after:
        job.result(TIMEOUT_S)
    there = [fields for fields in cluster_events.since(mark, "started") if fields["pid"] == started["pid"]]
    assert there, "no later batch reached the replica the cancelled job ran on"
    assert there[0]["stopped"] > started["stopped"]


def wait_for_replicas(count: int, timeout_s: float = TIMEOUT_S) -> None:
    """Wait until ``count`` replicas of the default model's deployment are running."""
    import time

    from ray import serve

    deadline = time.monotonic() + timeout_s
    while True:
        application = serve.status().applications.get("loopbridge-default")
        states = application.deployments["loopbridge-default"].replica_states if application else {}
        if states.get("RUNNING", 0) >= count:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{count} replicas were not running in {timeout_s:.0f} s: {states}")
        time.sleep(0.2)


def test_an_interactive_job_joining_running_prerenders_makes_them_interactive(door: FrontDoor,
                                                                              cluster_events: Events) -> None:
    def prerender_done(mark: int, pid: int) -> dict[str, Any]:
        done = cluster_events.wait(mark, "done", count=2)
        [prerender] = [fields for fields in done if fields["background"]]
        assert prerender["pid"] == pid and len({fields["pid"] for fields in done}) == 2, done  # one on each replica
        return prerender

    # both replicas serve (the replica test kills comes after this one): the interactive batch runs
    # beside the pre-render, not after it
    wait_for_replicas(2)
    # pre-renders pause at their next step while an interactive batch runs on the other replica
    mark = cluster_events.mark()
    prerender = door.submit(Order(one_shot(6000, steps=60), priority=Priority.BACKGROUND, prerender=False))
    [started] = cluster_events.wait(mark, "started")
    assert started["background"]
    door.submit(Order(one_shot(6001, steps=15, prompt="clap"))).result(TIMEOUT_S)
    prerender.result(TIMEOUT_S)
    paused = prerender_done(mark, started["pid"])
    assert paused["paused_s"] > 0 and not paused["promoted"], paused

    # the same, but a client asked for the pre-render while it ran: it pauses for nobody now
    mark = cluster_events.mark()
    prerender = door.submit(Order(one_shot(6010, steps=60), priority=Priority.BACKGROUND, prerender=False))
    [started] = cluster_events.wait(mark, "started")
    joined = door.submit(Order(one_shot(6010, steps=60)))
    cluster_events.wait(mark, "promoted")
    door.submit(Order(one_shot(6011, steps=15, prompt="clap"))).result(TIMEOUT_S)
    assert [s.key for s in joined.result(TIMEOUT_S)] == [s.key for s in prerender.result(TIMEOUT_S)]
    promoted = prerender_done(mark, started["pid"])
    assert promoted["promoted"] and promoted["paused_s"] == 0, promoted
    assert len(cluster_events.since(mark, "started")) == 2  # the joined job never ran a batch of its own


def test_a_replicas_grpc_server_takes_no_call_without_the_clusters_token(door: FrontDoor, cluster_engine: Any) -> None:
    """Batches go to a replica by value (the default transport) over the gRPC server Serve starts in
    every replica, bound on every interface: a call without the cluster's token is refused, on
    loopback and on this machine's other address alike."""
    import grpc
    import ray
    import ray.util
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE
    from ray.serve.generated.serve_pb2 import ASGIRequest
    from ray.serve.generated.serve_pb2_grpc import ASGIServiceStub

    assert cluster_engine.cluster.transport == "grpc"
    controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    replicas = [info for deployment, infos in ray.get(controller._all_running_replicas.remote()).items()
                if deployment.name == "loopbridge-default" for info in infos]
    assert len(replicas) == 2 and all(info.port for info in replicas), replicas
    hosts = sorted({"127.0.0.1", ray.util.get_node_ip_address()})
    for info in replicas:
        for host in hosts:
            with grpc.insecure_channel(f"{host}:{info.port}") as channel:
                with pytest.raises(grpc.RpcError) as refused:
                    ASGIServiceStub(channel).HandleRequest(ASGIRequest(), timeout=30)
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED, (host, info.port, refused.value)


def test_audio_above_grpcs_default_message_size_comes_back_by_value(door: FrontDoor) -> None:
    """30 s of 44.1 kHz audio (5.3 MB) is more than the 4 MiB gRPC takes by default: the gateway and
    its replicas take messages as large as a render (``replica.GRPC_MAX_MESSAGE_BYTES``)."""
    [sample] = door.render([one_shot(7000, steps=2, duration_s=30.0)])
    assert sample.audio.nbytes > 4 * 2**20, sample.audio.shape


#: a gateway's door and its :class:`ClusterEngine`
Gateway = tuple[FrontDoor, Any]


@dataclasses.dataclass
class TinyReplica:
    """A replica of the tiny model (:func:`tiny_replica`): ``gateway()`` makes a gateway to it (each a
    new :class:`ClusterEngine` and its door, which knows no replica's limit yet); ``expect(batch)``
    renders ``batch`` on the in-process engine the replica's audio is compared with, beside what the
    test does meanwhile (its future's ``result()`` is the audio of each render: one core renders in
    process while the replica renders on the other)."""

    gateway: Callable[[], Gateway]
    expect: Callable[[list[GenerateRequest]], Future[list[np.ndarray]]]


@contextlib.contextmanager
def tiny_replica(cluster_engine: Any, events: Events, models: Path, local: FrontDoor, folder: Path,
                 limit: int) -> Iterator[TinyReplica]:
    """One replica of the tiny model on the session's head whose node takes calls of ``limit`` bytes at
    most, deployed as a gateway finds it running (any earlier deployment of the family deleted first).
    Serve reads the limit in the replica's own process, from its environment as Serve is imported there
    (``RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH``, the ``grpc.max_receive_message_length`` of the
    replica's gRPC server): it is given to the replica's actor, as a node started with it gives it to
    the processes it starts."""
    from loopbridge.engine.cluster import ClusterEngine, _run_application
    from loopbridge.engine.models.registry import ModelRegistry
    from ray import serve

    def registry() -> ModelRegistry:
        return ModelRegistry(search_paths=[models], hf_cache=folder / "no-cache", include_embedded=False)

    cluster = copy.copy(cluster_engine.cluster)
    cluster.options = dataclasses.replace(cluster.options, replicas=1)
    doors: list[FrontDoor] = []

    def gateway() -> Gateway:
        engine = ClusterEngine(cluster, store_dir=folder / f"cluster-store-{len(doors)}", registry=registry(),
                               on_cluster_event=events)
        doors.append(FrontDoor(engine, prerender_depth=0).start())
        return doors[-1], engine

    _, engine = gateway()
    name, deployment, config, fingerprint = engine.deployment(engine.pool("tiny-dd"))
    serve.delete(name)  # a replica of the family with another limit: gone before this one is deployed
    environment = {"RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH": str(limit)}
    beside = ThreadPoolExecutor(1, thread_name_prefix="in-process")

    def expect(batch: list[GenerateRequest]) -> Future[list[np.ndarray]]:
        return beside.submit(lambda: [render.audio for render in local.render(batch)])

    try:
        _run_application(serve, deployment.options(ray_actor_options={
            **deployment.ray_actor_options, "runtime_env": {"env_vars": environment}}).bind(config, fingerprint),
            name)
        yield TinyReplica(gateway, expect)
    finally:
        beside.shutdown(wait=True)
        for door in doors:
            door.stop()
        # the replica stops beside the next tests (the next tiny replica's deployment waits for it to be gone)
        serve.delete(name, _blocking=False)


@pytest.fixture(scope="module")
def serve_default_replica(cluster_engine: Any, cluster_events: Events, tiny_dd_root: Path, tiny_in_process: FrontDoor,
                          tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyReplica]:
    """A replica of the tiny model on a node with Serve's default limit on a replica's calls (4 MiB),
    as a node started with plain ``ray start`` has it."""
    from loopbridge.engine.replica import SERVE_DEFAULT_GRPC_MESSAGE_BYTES

    assert SERVE_DEFAULT_GRPC_MESSAGE_BYTES == 4 * 2**20
    with tiny_replica(cluster_engine, cluster_events, tiny_dd_root, tiny_in_process,
                      tmp_path_factory.mktemp("serve-default"), SERVE_DEFAULT_GRPC_MESSAGE_BYTES) as replica:
        yield replica


def prompted(seed: int, prompt_s: float) -> GenerateRequest:
    """A request of the tiny model with ``prompt_s`` of stereo 48 kHz noise as its audio prompt (32-bit:
    384 kB a second)."""
    rng = np.random.default_rng(seed)
    prompt = AudioPrompt(audio=rng.uniform(-0.5, 0.5, (2, round(prompt_s * 48000))).astype(np.float32),
                         sample_rate=48000)
    return GenerateRequest("", model="tiny-dd", kind=Kind.ONE_SHOT, duration_s=0.5, seed=seed, steps=4,
                           audio_prompt=prompt)


def short(seed: int) -> GenerateRequest:
    """A request of the tiny model: 0.5 s, stereo, 16 kHz (64 kB of audio), 2 steps."""
    return GenerateRequest("", model="tiny-dd", kind=Kind.ONE_SHOT, duration_s=0.5, seed=seed, steps=2)


def test_a_replica_on_a_node_with_serves_default_limit_renders_calls_above_it(
        serve_default_replica: TinyReplica, cluster_events: Events, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node started with plain ``ray start`` keeps Serve's default limit on a replica's calls (4 MiB).
    A batch with a 4.6 MB audio prompt goes as an actor call, and its audio is the in-process engine's,
    bit for bit; a gateway that took the replica for one of its own nodes (2 GiB) has the call
    refused, and sends it again as an actor call."""
    from loopbridge.engine import replica as replica_module

    default_limit = replica_module.SERVE_DEFAULT_GRPC_MESSAGE_BYTES
    door, _ = serve_default_replica.gateway()
    small = short(8003)
    expected = [serve_default_replica.expect(batch) for batch in ([prompted(8001, 12.0)], [prompted(8002, 12.0)],
                                                                   [small])]
    assert prompted(8001, 12.0).audio_prompt.audio.nbytes > default_limit  # type: ignore[union-attr]

    # the gateway takes the replica's node for one of its own: the call by value is refused, then sent again
    monkeypatch.setattr(replica_module, "SERVE_DEFAULT_GRPC_MESSAGE_BYTES", replica_module.GRPC_MAX_MESSAGE_BYTES)
    mark = cluster_events.mark()
    [first] = door.render([prompted(8001, 12.0)])
    [refused] = cluster_events.since(mark, "too_large")
    assert refused["limit"] == default_limit and refused["bytes"] > default_limit, refused
    [started] = cluster_events.since(mark, "started")
    assert not started["by_value"] and started["grpc_limit"] == default_limit, started
    assert np.array_equal(first.audio, expected[0].result()[0])
    monkeypatch.undo()

    # as it is: over Serve's default limit, an actor call from the start; a small call by value
    mark = cluster_events.mark()
    [second] = door.render([prompted(8002, 12.0)])
    [third] = door.render([small])
    assert not cluster_events.since(mark, "too_large")
    assert [fields["by_value"] for fields in cluster_events.since(mark, "started")] == [False, True]
    assert np.array_equal(second.audio, expected[1].result()[0])
    assert np.array_equal(third.audio, expected[2].result()[0])


def test_a_replica_whose_node_takes_less_than_serves_default_gets_larger_calls_as_actor_calls(
        cluster_engine: Any, cluster_events: Events, tiny_dd_root: Path, tiny_in_process: FrontDoor,
        tmp_path: Path) -> None:
    """A replica whose node takes calls of 128 KiB at most (below Serve's default, which the gateway
    assumes of a replica it has not heard from): the gateway learns the limit from the replica's
    ``started`` event, then sends a 384 kB batch as an actor call from the start, and small ones by
    value. The first small batch answers with 192 kB of audio and its metadata, more than the
    replica would take in, by value all the same: the limit is on what a replica receives, and what
    it sends back is bounded by the gateway's own limit. A gateway that has not heard from the
    replica sends the 384 kB batch by value: refused, sent again as an actor call, answered. Every
    answer is the in-process engine's audio, bit for bit. (The tiny model's renders are short: its
    attention's cost grows with the square of a render's length.)"""
    limit = 2**17
    with tiny_replica(cluster_engine, cluster_events, tiny_dd_root, tiny_in_process, tmp_path, limit) as replica:
        door, engine = replica.gateway()
        family = engine.pool("tiny-dd")
        small = [short(8100 + i) for i in range(3)]  # 3 x 64 kB of audio: more than the replica's limit
        between = prompted(8110, 1.0)  # 384 kB: above the replica's limit, below Serve's default
        expected = [replica.expect(batch) for batch in (small, [between], [short(8112)], [prompted(8111, 1.0)])]
        mark = cluster_events.mark()
        renders = door.render(small)
        [started] = cluster_events.since(mark, "started")
        [done] = cluster_events.since(mark, "done")
        assert started["by_value"] and started["grpc_limit"] == limit and done["batch"] == 3, (started, done)
        assert engine.message_limit(family) == limit
        assert sum(render.audio.nbytes for render in renders) >= limit
        assert all(np.array_equal(r.audio, e) for r, e in zip(renders, expected[0].result(), strict=True))

        assert limit < between.audio_prompt.audio.nbytes < 4 * 2**20  # type: ignore[union-attr]
        mark = cluster_events.mark()
        [render] = door.render([between])
        [again] = door.render([short(8112)])
        assert not cluster_events.since(mark, "too_large")
        assert [fields["by_value"] for fields in cluster_events.since(mark, "started")] == [False, True]
        assert np.array_equal(render.audio, expected[1].result()[0])
        assert np.array_equal(again.audio, expected[2].result()[0])

        # a gateway that has not heard from the replica yet: refused, sent again, answered
        door, engine = replica.gateway()
        mark = cluster_events.mark()
        [render] = door.render([prompted(8111, 1.0)])
        [refused] = cluster_events.since(mark, "too_large")
        assert refused["limit"] == limit and refused["bytes"] > limit, refused
        assert [fields["by_value"] for fields in cluster_events.since(mark, "started")] == [False]
        assert engine.message_limit(family) == limit
        assert np.array_equal(render.audio, expected[3].result()[0])


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport='zmq' is not accepted: expected one of grpc, actor"):
        ClusterOptions(transport="zmq")


def test_a_replica_killed_mid_render_is_retried_and_the_job_answered(door: FrontDoor, cluster_events: Events,
                                                                     in_process: FrontDoor) -> None:
    # the last test of the module: the replica Serve starts again in place of the killed one is
    # waited for by no other test
    request = one_shot(5000, steps=60)  # killed as it starts: a short render still runs for most of a second
    mark = cluster_events.mark()
    job = door.submit(Order(request))
    [started] = cluster_events.wait(mark, "started")
    os.kill(started["pid"], signal.SIGKILL)
    samples = job.result(TIMEOUT_S)
    retried = cluster_events.since(mark, "retry")
    assert len(retried) == 1
    restarted = cluster_events.since(mark, "started")
    assert len(restarted) == 2 and restarted[1]["pid"] != started["pid"]
    expected = in_process.generate(Order(request), timeout=TIMEOUT_S)
    assert [s.data for s in samples] == [s.data for s in expected]
