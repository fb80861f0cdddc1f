"""A cluster beyond loopback runs with TLS between every Ray process (``loopbridge worker --cluster-tls``):
a head started with certificates the tests make (tests/cluster/conftest.py), a driver that joins it
with them and runs a task there, and a client without them that the head's port refuses. (The
refusals to start without a token and TLS are tests/bridge/test_cluster_security.py's.)"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_head import Head, HeadProcess

pytestmark = pytest.mark.slow

#: a driver that joins the cluster at argv[1], runs one task on the head's node and prints its answer
JOIN = """
import sys, ray
ray.init(address=sys.argv[1], configure_logging=False, log_to_driver=False, _node_ip_address="127.0.0.1")
print("answer", ray.get(ray.remote(num_cpus=1)(lambda: 6 * 7).remote(), timeout=120))
"""


@pytest.fixture(scope="module")
def tls_head(tls_head_process: tuple[HeadProcess, Path]) -> Iterator[tuple[Head, Path]]:
    """The head with TLS, started beside the session's other work (tests/cluster/conftest.py); it
    begins to stop after this module, beside what comes after (its fixture waits for it)."""
    process, tls = tls_head_process
    yield process.ready(), tls
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
