"""A cluster beyond loopback runs with TLS between every Ray process (``loopbridge worker --cluster-tls``):
a head started with certificates the tests make (tests/cluster/conftest.py), a driver that joins it
with them and runs a task there, a client without them that the head's port refuses, and a gateway
that renders there on a replica whose gRPC server (the calls' way in) takes TLS with the cluster's
certificates alone. (The refusals to start without a token and TLS are
tests/bridge/test_cluster_security.py's.)"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loopbridge.engine.frontdoor import FrontDoor

from tests.cluster_head import Head, HeadProcess

from .conftest import make_tls_folder

pytestmark = pytest.mark.slow

#: a driver that joins the cluster at argv[1], runs one task on the head's node and prints its answer
JOIN = """
import sys, ray
ray.init(address=sys.argv[1], configure_logging=False, log_to_driver=False, _node_ip_address="127.0.0.1")
print("answer", ray.get(ray.remote(num_cpus=1)(lambda: 6 * 7).remote(), timeout=120))
"""

#: a gateway that joins the cluster at argv[1] (token and TLS from the environment), renders one request
#: of the tiny model in the folder argv[2] on a replica there (deployed and left running), and prints
#: the audio's digest and where the replicas' gRPC servers listen
RENDER = """
import hashlib, json, sys
from pathlib import Path
import numpy as np
from loopbridge.engine.replica import ray_settings
ray_settings()
import ray
from loopbridge.engine.cluster import Cluster, ClusterEngine, ClusterOptions
from loopbridge.engine.models.registry import ModelRegistry
from loopbridge.engine.request import GenerateRequest, Kind
from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE
cluster = Cluster(ClusterOptions(address=sys.argv[1], replicas=1, threads=1))
registry = ModelRegistry(search_paths=[sys.argv[2]], hf_cache=Path(sys.argv[3]) / "no-cache", include_embedded=False)
engine = ClusterEngine(cluster, store_dir=sys.argv[3], registry=registry)
print("transport", cluster.transport)
request = GenerateRequest("", model="tiny-dd", kind=Kind.ONE_SHOT, duration_s=0.5, seed=9000, steps=4)
[output] = engine.generate("tiny-dd", [request])
print("audio", hashlib.sha256(np.ascontiguousarray(output.audio).tobytes()).hexdigest())
controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
running = ray.get(controller._all_running_replicas.remote())
print("replicas", json.dumps([[info.node_ip, info.port] for infos in running.values() for info in infos]))
engine.close()
cluster.close()
"""


@pytest.fixture(scope="module")
def tls_head(tls_head_process: tuple[HeadProcess, Path]) -> Iterator[tuple[Head, Path]]:
    """The head with TLS, started beside the session's other work (tests/cluster/conftest.py) and below
    it, at normal priority from here (where the tests may raise it: they run beside the device's test);
    it begins to stop after this module, beside what comes after (its fixture waits for it)."""
    process, tls = tls_head_process
    head = process.ready()
    process.raise_priority()
    yield head, tls
    process.begin_stop()


def test_a_driver_with_the_certificates_joins_and_runs_a_task(tls_head: tuple[Head, Path]) -> None:
    from loopbridge.bridge.security import ClusterSecurity

    head, tls = tls_head
    assert "tls on" in (head.temp_dir / "worker.log").read_text()
    env = {**os.environ, **ClusterSecurity.load(head.token_file, tls).environment()}
    assert env["RAY_USE_TLS"] == "1"
    joined = subprocess.run([sys.executable, "-c", JOIN, head.address], env=env, capture_output=True, text=True,
                            timeout=180)
    assert joined.returncode == 0 and "answer 42" in joined.stdout, joined.stderr[-4000:]


def first_outcome(channel: Any, timeout_s: float = 60.0) -> Any:
    """How ``channel``'s first connection ends: READY (it opened) or TRANSIENT_FAILURE (the head
    refused or broke off the handshake), as gRPC reports it."""
    import grpc

    outcomes: queue.Queue[grpc.ChannelConnectivity] = queue.Queue()

    def watch(state: grpc.ChannelConnectivity) -> None:
        if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            outcomes.put(state)

    channel.subscribe(watch, try_to_connect=True)
    try:
        return outcomes.get(timeout=timeout_s)
    finally:
        channel.unsubscribe(watch)


def test_the_head_refuses_a_plain_connection(tls_head: tuple[Head, Path]) -> None:
    import grpc

    head, tls = tls_head
    ready, failed = grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE
    # the same port over TLS with the node's certificate (Ray asks clients for one) answers...
    credentials = grpc.ssl_channel_credentials(root_certificates=(tls / "ca.crt").read_bytes(),
                                               private_key=(tls / "node.key").read_bytes(),
                                               certificate_chain=(tls / "node.crt").read_bytes())
    with grpc.secure_channel(head.address, credentials) as channel:
        assert first_outcome(channel) is ready
    # ...and without TLS it never opens
    with grpc.insecure_channel(head.address) as channel:
        assert first_outcome(channel) is failed
    # nor over TLS without a certificate of the cluster's authority
    with grpc.secure_channel(head.address, grpc.ssl_channel_credentials(
            root_certificates=(tls / "ca.crt").read_bytes())) as channel:
        assert first_outcome(channel) is failed


def test_a_render_through_the_tls_cluster_and_its_replicas_grpc_port_takes_tls_alone(
        tls_head: tuple[Head, Path], tiny_dd_root: Path, tiny_in_process: FrontDoor, tmp_path: Path) -> None:
    """Batches reach a replica by value over the gRPC server Serve starts in it, bound on every
    interface: on a cluster with TLS, a gateway with the cluster's certificates renders there (the
    in-process engine's audio, bit for bit), and that server refuses a plain connection, a TLS client
    without a certificate and one whose certificate another authority signed."""
    import grpc
    import ray.util
    from loopbridge.bridge.security import ClusterSecurity
    from loopbridge.engine.request import GenerateRequest, Kind
    from ray.serve.generated.serve_pb2 import ASGIRequest
    from ray.serve.generated.serve_pb2_grpc import ASGIServiceStub

    head, tls = tls_head
    env = {**os.environ, **ClusterSecurity.load(head.token_file, tls).environment(), "OMP_NUM_THREADS": "1"}
    gateway = subprocess.Popen([sys.executable, "-c", RENDER, head.address, str(tiny_dd_root), str(tmp_path / "store")],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the in-process render, while the gateway starts and renders
        [expected] = tiny_in_process.render([GenerateRequest("", model="tiny-dd", kind=Kind.ONE_SHOT, duration_s=0.5,
                                                             seed=9000, steps=4)])
        stdout, stderr = gateway.communicate(timeout=300)
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.communicate()
    assert gateway.returncode == 0, stderr[-4000:]
    lines = dict(line.split(" ", 1) for line in stdout.splitlines() if " " in line)
    assert lines.get("transport") == "grpc", stdout
    assert lines["audio"] == hashlib.sha256(np.ascontiguousarray(expected.audio).tobytes()).hexdigest()

    replicas = json.loads(lines["replicas"])
    assert len(replicas) == 1 and replicas[0][1], replicas
    port = replicas[0][1]
    ready, failed = grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE
    stranger = make_tls_folder(tmp_path / "another-authority")
    for host in sorted({"127.0.0.1", ray.util.get_node_ip_address()}):
        target = f"{host}:{port}"
        # with the cluster's certificates the connection opens, and a call without the token is refused...
        with grpc.secure_channel(target, grpc.ssl_channel_credentials(
                root_certificates=(tls / "ca.crt").read_bytes(), private_key=(tls / "node.key").read_bytes(),
                certificate_chain=(tls / "node.crt").read_bytes())) as channel:
            assert first_outcome(channel) is ready, target
            with pytest.raises(grpc.RpcError) as refused:
                ASGIServiceStub(channel).HandleRequest(ASGIRequest(), timeout=30)
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED, (target, refused.value)
        # ...without TLS it never opens...
        with grpc.insecure_channel(target) as channel:
            assert first_outcome(channel) is failed, target
        # ...nor over TLS without a client certificate, or with one of another authority
        with grpc.secure_channel(target, grpc.ssl_channel_credentials(
                root_certificates=(tls / "ca.crt").read_bytes())) as channel:
            assert first_outcome(channel) is failed, target
        with grpc.secure_channel(target, grpc.ssl_channel_credentials(
                root_certificates=(tls / "ca.crt").read_bytes(), private_key=(stranger / "node.key").read_bytes(),
                certificate_chain=(stranger / "node.crt").read_bytes())) as channel:
            assert first_outcome(channel) is failed, target
