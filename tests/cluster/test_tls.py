"""A cluster beyond loopback runs with TLS between every Ray process (``loopbridge worker --cluster-tls``):
a head started with certificates this test makes, a driver that joins it with them and runs a task
there, and a client without them that the head's port refuses. (The refusals to start without a
token and TLS are tests/bridge/test_cluster_security.py's.)"""

from __future__ import annotations

import datetime
import ipaddress
import os
import queue
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_head import Head, start_head

pytestmark = pytest.mark.slow

#: a driver that joins the cluster at argv[1], runs one task on the head's node and prints its answer
JOIN = """
import sys, ray
ray.init(address=sys.argv[1], configure_logging=False, log_to_driver=False, _node_ip_address="127.0.0.1")
print("answer", ray.get(ray.remote(num_cpus=1)(lambda: 6 * 7).remote(), timeout=120))
"""


def make_tls_folder(folder: Path) -> Path:
    """``ca.crt``, ``node.crt`` (signed by the CA, for 127.0.0.1, localhost and the address Ray gives
    this machine's node: ``ray start`` takes it even with ``--node-ip-address 127.0.0.1``) and
    ``node.key`` in ``folder``."""
    import ray.util
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    addresses = sorted({"127.0.0.1", ray.util.get_node_ip_address()})

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
                    issuer_key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
                + [x509.DNSName("localhost")]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, node_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("loopbridge-test-ca", ca_key, "loopbridge-test-ca", ca_key, ca=True)
    node = certificate("127.0.0.1", node_key, "loopbridge-test-ca", ca_key, ca=False)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "node.crt").write_bytes(node.public_bytes(serialization.Encoding.PEM))
    (folder / "node.key").write_bytes(node_key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    return folder


@pytest.fixture(scope="module")
def tls_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Head, Path]]:
    pytest.importorskip("cryptography", reason="the test's certificates are made with cryptography")
    tls = make_tls_folder(tmp_path_factory.mktemp("tls") / "tls-127.0.0.1")
    yield from ((head, tls) for head in start_head(cpus=1, args=["--cluster-tls", str(tls)]))


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
