"""The gateway's side of the session's cluster: two CPU replicas of the default model, deployed once;
the head with TLS that tests/cluster/test_tls.py joins and the ``serve --cluster local`` that
tests/cluster/test_frontends.py asks, both started with the session, beside the session's own head.

Nearly all of these tests' time is processes starting (Ray heads, replicas importing torch and
loading a model, engines): what does not depend on another start is started beside it, so that a
start waiting on one core does not leave the other idle.
"""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loopbridge.engine.frontdoor import FrontDoor

from tests.cluster_head import Head, HeadProcess
from tests.plugin.engine_process import RunningEngine, launch_engine

#: niceness of the TLS head, started with the session and needed last: it takes the cores that the
#: rest leaves (``serve --cluster local``, needed after the session's deployment's tests, starved at
#: load average 5-7 when niced: its test waited for it), until its tests raise it to normal
#: (tests/cluster/test_tls.py: they run beside the device's, whose replicas run at normal priority)
SIDE_NICENESS = 10


class Events:
    """What the cluster engine reports (``deployed``, ``started``, ``retry``), kept in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()

    def __call__(self, name: str, fields: dict[str, Any]) -> None:
        with self._cond:
            self.items.append((name, dict(fields)))
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.items)

    def since(self, mark: int, name: str) -> list[dict[str, Any]]:
        with self._cond:
            return [fields for n, fields in self.items[mark:] if n == name]

    def wait(self, mark: int, name: str, count: int = 1, timeout_s: float = 120.0) -> list[dict[str, Any]]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.since(mark, name)) >= count, timeout_s):
                pytest.fail(f"no {count} {name!r} events from the cluster in {timeout_s:.0f} s: {self.items[mark:]}")
            return self.since(mark, name)


@pytest.fixture(scope="session")
def cluster_events() -> Events:
    return Events()


@pytest.fixture(scope="module")
def cluster_engine(ray_head: Head, tmp_path_factory: pytest.TempPathFactory, cluster_events: Events) -> Iterator[Any]:
    """A :class:`ClusterEngine` joined to the session's head, the default model on two CPU replicas;
    their deployment is deleted after the module's tests (the replica Serve starts in place of the
    one the last test kills would otherwise load the model while the next tests' engines start)."""
    from loopbridge.engine.cluster import Cluster, ClusterEngine, ClusterOptions

    environment = ray_head.environment()
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    cluster = Cluster(ClusterOptions(address=ray_head.address, replicas=2, threads=1))
    try:
        store: Path = tmp_path_factory.mktemp("cluster-store")
        engine = ClusterEngine(cluster, store_dir=store, warm=["default"], on_cluster_event=cluster_events)
        engine.warm("default")
        yield engine
        from ray import serve

        serve.delete(f"loopbridge-{engine.pool('default')}", _blocking=False)
    finally:
        cluster.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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


@pytest.fixture(scope="session")
def tls_head_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HeadProcess, Path]]:
    """A head on one CPU with TLS (certificates made here), started and not waited for; stopped
    (and waited for) at the end of the session."""
    pytest.importorskip("cryptography", reason="the test's certificates are made with cryptography")
    tls = make_tls_folder(tmp_path_factory.mktemp("tls") / "tls-127.0.0.1")
    head = HeadProcess(cpus=1, args=["--cluster-tls", str(tls)], niceness=SIDE_NICENESS)
    yield head, tls
    head.stop()


@pytest.fixture(scope="session")
def tiny_in_process(tiny_dd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    """The in-process engine the tiny model's replicas' audio is compared with (its model loaded once
    for the session), on one thread as each replica: the same audio to the bit needs the same thread count."""
    import torch
    from loopbridge.engine.core import Engine
    from loopbridge.engine.models.registry import ModelRegistry

    folder = tmp_path_factory.mktemp("tiny-in-process")
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=folder / "no-cache", include_embedded=False)
    torch.set_num_threads(1)
    front = FrontDoor(Engine(store_dir=folder / "store", registry=registry, device="cpu"), prerender_depth=0).start()
    yield front
    front.stop()


@pytest.fixture(scope="session")
def local_cluster_engine(tiny_dd_root: Path) -> Iterator[tuple[RunningEngine, Path]]:
    """``loopbridge serve --cluster local`` with one replica of ``tiny-dd``, started and not waited for
    (its test waits), in a folder with a short path (Ray's unix sockets live under the engine's data
    folder, and their paths are limited to ~100 characters); stopped at the end of the session if its
    test has not stopped it."""
    folder = Path(tempfile.mkdtemp(prefix="lbsc-", dir="/tmp"))
    engine = launch_engine(folder, tiny_dd_root, ["--model", "tiny-dd", "--cluster", "local", "--replicas", "1"])
    yield engine, folder
    engine.stop()
    shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The device's end-to-end test (tests/cluster/test_frontends.py), which waits for the device's
    own tests running in the background from its module's start, goes after the last of this folder's
    tests: those that come after its module run beside it rather than after it."""
    here = Path(__file__).parent
    ours = [index for index, item in enumerate(items) if here in Path(item.path).parents]
    device = [index for index in ours if items[index].name == "test_the_device_end_to_end_against_serve_cluster"]
    if device and device[0] != ours[-1]:
        items.insert(ours[-1], items.pop(device[0]))


@pytest.fixture(scope="session", autouse=True)
def _start_early(request: pytest.FixtureRequest) -> None:
    """Start the session's head, then the TLS head (below the rest: it is needed last) and ``serve
    --cluster local``, with the session, when a collected test uses them (and Ray, and cryptography
    for the TLS head, are there: else their tests skip, saying why)."""
    fixtures = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    if importlib.util.find_spec("ray") is None:
        return
    if "ray_head" in fixtures:
        request.getfixturevalue("ray_head_process")
    if "tls_head" in fixtures and importlib.util.find_spec("cryptography"):
        request.getfixturevalue("tls_head_process")
    if "local_cluster_engine" in fixtures:
        request.getfixturevalue("local_cluster_engine")
