"""The gateway's side of the session's cluster: two CPU replicas of the default model, deployed once."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_head import Head


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
