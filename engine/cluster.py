"""Renders on model workers of a Ray cluster, behind the same front door (``loopbridge serve --cluster``).

The gateway keeps everything but the model runs: the front door, the scheduler (priorities,
batching, pre-rendering), the store (its one writer) and the conform stage. A
:class:`ClusterEngine` is an :class:`~.core.Engine` whose :meth:`~ClusterEngine.generate` sends a
batch to a Ray Serve deployment of the model's family (:mod:`.replica`); what comes back is stored
as in process, once the replica's slot is free (the scheduler's, :mod:`.scheduler`): the replica may
take its next batch while the last one is written. Its own weights are never loaded: it reads model
configs (capabilities) and fingerprints (render keys) from the same folders the workers load.

- One deployment per model family (``loopbridge-<family>``), deployed when the family is first
  used; replicas take a GPU each where the cluster has GPUs (``num_gpus``), and several checkpoints
  of a family share a replica (Serve's model multiplexing).
- Serve queues requests first come first served per replica and does not stop a running call. So
  the gateway keeps at most one batch in flight per replica (the scheduler has one slot per
  replica: :meth:`ClusterEngine.pools`, and each replica takes one request at a time): everything
  else waits in the scheduler, where an interactive request overtakes queued pre-renders. When
  every replica is busy with pre-renders, one of them stops at its next step (the default model: at
  its next stop point, :func:`.models.base.stop_point`, between its network's blocks) and its
  pre-renders queue again (the scheduler's pre-emption), so an interactive request waits for a
  step or less, not a render.
- Cancel: a queued job never leaves the scheduler; a running batch's call is cancelled and the
  replica's model stops at its next progress step or stop point. When the scheduler says a running batch changed
  (:meth:`ClusterEngine.batches_changed`: a cancel, a pre-emption, a stop), one thread asks each
  batch in flight whether it is still wanted, so the cancel reaches the replica at once, not with its
  next progress event; nothing polls in between.
- Interactive work first on a shared device: each batch says whether it is only pre-renders; while
  an interactive batch runs, pre-render batches on other replicas of its device pause within a few
  milliseconds, at their model's next stop point or step (:mod:`.replica`): on a CPU node the
  interactive render has the cores to itself, as in process. Replicas on separate GPUs do not pause
  each other: they share no compute, and pausing would only cost the pre-renders' throughput. An
  interactive job that joins a running batch of pre-renders makes it interactive: the gateway notes
  its id in Ray's key-value store, where its replica looks while it would pause, and from then on it
  pauses for nothing and others pause for it.
- A replica that dies mid-render fails its call; the batch is sent again (at most
  :data:`MAX_ATTEMPTS` times in all) to a live replica, so the client sees one answer.
- Progress streams from the replica to the scheduler's progress callback (the existing events).
- The call, its events and the audio travel by value over the gRPC server Serve runs in each
  replica (:data:`TRANSPORTS`: ``"grpc"``, the default), not as Ray actor calls through the object
  store: Serve's own round trip is about a millisecond shorter that way (its messages may be as
  large as a render: :data:`.replica.GRPC_MAX_MESSAGE_BYTES`; where Serve was imported before that
  setting, calls go as actor calls, :attr:`Cluster.transport`). Serve starts that server in
  every replica whichever transport is used, bound on every interface, behind Ray's token check and
  Ray's TLS where the cluster has them: the rules of Ray's other ports (``loopbridge worker``).
- A replica's server takes calls up to its node's limit (``RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH``:
  loopbridge's nodes 2 GiB, a node started with plain ``ray start`` Serve's 4 MiB), and the router
  picks the replica after the gateway has chosen how to send: a batch larger than Serve's default, or
  than the least limit a replica of its family reported (:meth:`ClusterEngine.message_limit`), goes as
  an actor call, chosen call by call; one that a replica still refuses as too large is sent again that
  way. The answers (audio) come back within the gateway's own limit, whatever the replica's node says.

Ray is an optional extra (``pip install 'loopbridge[cluster]'``): importing this module needs it
only when a cluster is started or joined.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import errors as engine_errors
from .core import Background, Engine
from .errors import CancelledError, LoopbridgeError, ModelLoadError
from .models.base import GeneratedAudio, LoadOptions, ProgressCallback
from .models.registry import ModelRegistry
from .request import GenerateRequest

log = logging.getLogger(__name__)

#: sends of one batch in all, when replicas die under it
MAX_ATTEMPTS = 3
#: Ray's namespace for loopbridge's actors and applications
NAMESPACE = "loopbridge"
#: the install hint when Ray is missing
INSTALL_HINT = "pip install 'loopbridge[cluster]'"
#: a replica's start (torch import, model load) may take this long before a deploy is given up
DEPLOY_TIMEOUT_S = 300.0
#: how often a deploy asks whether its replicas are up (Serve's own ``serve.run`` asks each second)
DEPLOY_POLL_S = 0.05
#: the gateway asks whether the batches in flight are still wanted (cancel, pre-emption) when the
#: scheduler says something changed (:meth:`ClusterEngine.batches_changed`); this often besides, to be safe
WATCH_FALLBACK_S = 1.0
#: Ray's key-value store (namespace): batches of pre-renders an interactive job joined while they ran
PROMOTED_NAMESPACE = "loopbridge-promoted"

#: how a batch and its events travel between the gateway and a replica: ``"grpc"``, by value over the
#: replica's own gRPC server (Serve's ``_by_reference=False``: pickled into the call, no object in
#: Ray's object store), ``"actor"``, as Ray actor calls whose results go through the object store
#: (Serve's default). Both reach a replica under the cluster's token and TLS settings.
TRANSPORTS = ("grpc", "actor")

ClusterEvent = Callable[[str, dict[str, Any]], None]


def import_ray() -> Any:
    """``ray`` (with Serve), or a :class:`LoopbridgeError` saying how to install it."""
    from .replica import ray_settings

    ray_settings()
    try:
        import ray
        from ray import serve  # noqa: F401
    except ImportError as exc:
        raise LoopbridgeError(f"the cluster backend needs Ray Serve, which is not installed: {INSTALL_HINT} "
                              f"({exc})") from None
    return ray


@dataclass(frozen=True)
class ClusterOptions:
    """Where the workers are and how each family's replicas are started.

    ``address``: ``"local"`` starts a cluster in this process (stopped with it) on ``num_cpus``
    logical CPUs (None: this machine's count, at least two per replica), else a running cluster's
    address (``HOST:PORT`` of its head, as ``loopbridge worker`` prints it). ``replicas`` per family
    (None: one per GPU of the cluster, else one). ``device``, ``dtype``, ``load_options``,
    ``memory_budget_bytes`` and ``threads`` are each replica's, as ``serve`` takes them.
    ``transport``: how a batch and its events travel between the gateway and a replica (see
    :data:`TRANSPORTS`).
    """

    address: str = "local"
    replicas: int | None = None
    num_cpus: int | None = None
    device: str = "auto"
    dtype: str = "fp32"
    load_options: LoadOptions | None = None
    memory_budget_bytes: int | None = None
    threads: int | None = None
    temp_dir: Path | None = None
    transport: str = "grpc"

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport={self.transport!r} is not accepted: expected one of {', '.join(TRANSPORTS)}")


class Cluster:
    """A connection to a Ray cluster with Serve running on it (no HTTP proxy: the gateway is the door).

    ``close()`` disconnects; a cluster this process started (``address="local"``) stops with it,
    replicas and all. A joined cluster keeps its deployments, warm for the next gateway.
    """

    def __init__(self, options: ClusterOptions) -> None:
        ray = import_ray()
        from ray import serve

        self.options = options
        self.local = options.address == "local"
        if ray.is_initialized():
            raise LoopbridgeError("this process is already connected to a Ray cluster: one gateway per process")
        kwargs: dict[str, Any] = {"namespace": NAMESPACE, "configure_logging": False, "log_to_driver": False}
        if self.local:
            cpus = options.num_cpus or max(os.cpu_count() or 1, 2 * (options.replicas or 1))
            temp_dir = options.temp_dir or default_temp_dir()
            temp_dir.mkdir(parents=True, exist_ok=True)
            kwargs.update(num_cpus=cpus, include_dashboard=False, _temp_dir=str(temp_dir), _node_ip_address="127.0.0.1")
        else:
            kwargs["address"] = options.address
            host = options.address.rsplit(":", 1)[0].strip("[]")
            if host in ("127.0.0.1", "localhost", "::1"):
                kwargs["_node_ip_address"] = "127.0.0.1"  # the node `loopbridge worker` started here, on loopback
        _read_settings(ray)
        started = time.monotonic()
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise LoopbridgeError(f"cluster={options.address!r} cannot be reached: {exc} (start one with "
                                  "`loopbridge worker --head`, or use --cluster local)") from None
        try:
            serve.start(proxy_location="Disabled")  # no HTTP or gRPC proxy: the gateway is the only way in
        except BaseException:
            ray.shutdown()
            raise
        #: how calls go to replicas: ``options.transport``, unless Serve cannot carry a long render by value
        self.transport = options.transport
        if self.transport == "grpc":
            from .replica import GRPC_MAX_MESSAGE_BYTES, grpc_message_limit

            limit = grpc_message_limit()  # what Serve takes in this process: the largest answer from a replica
            if limit < GRPC_MAX_MESSAGE_BYTES:
                log.warning("Serve's gRPC messages are limited to %s bytes here (Serve was imported before "
                            "loopbridge's settings): calls go to replicas as actor calls", limit)
                self.transport = "actor"
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        log.info("cluster %s: %d CPUs, %d GPUs, connected in %.1f s", "local" if self.local else options.address,
                 int(resources.get("CPU", 0)), self.gpus, time.monotonic() - started)

    @property
    def replicas(self) -> int:
        return self.options.replicas or max(1, self.gpus)

    def close(self) -> None:
        ray = import_ray()
        if ray.is_initialized():
            # a local cluster goes down with this driver, Serve and replicas included: no separate
            # Serve shutdown, which waits 30 s for a controller that Ctrl-C in a terminal has already
            # stopped (the signal reaches Ray's processes too)
            ray.shutdown()


#: room for what Serve sends with a call's pickled arguments (its metadata: about 600 bytes measured)
CALL_FRAMING_BYTES = 64 * 1024


#: the most a request without audio or motion pickles to (its three prompts of 500 characters at 4
#: bytes each, the rest well under 1 KiB; a one-shot's pickles to 0.5 KiB)
TEXT_REQUEST_MAX_BYTES = 8 * 1024


def call_bytes(batch: Sequence[GenerateRequest]) -> int:
    """The size of ``batch`` pickled, as Serve sends it to a replica (audio prompts counted without
    copying them); a batch of text and numbers alone is not pickled (60-180 us a batch on a busy
    2-core machine) but counted at :data:`TEXT_REQUEST_MAX_BYTES` a request."""
    if all(request.audio_prompt is None and request.motion_prompt is None for request in batch):
        return len(batch) * TEXT_REQUEST_MAX_BYTES
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(list(batch), protocol=5, buffer_callback=buffers.append)
    return len(data) + sum(memoryview(buffer).nbytes for buffer in buffers)


def _too_large(exc: BaseException) -> int | None:
    """For a gRPC call refused as too large (RESOURCE_EXHAUSTED), the limit it names (0 if none), else None.
    Serve raises the refusal as gRPC's error, or, when it comes while Serve asks the replica whether it
    takes the call, as a RuntimeError that names the status in its message."""
    code = getattr(exc, "code", None)
    name = ""
    if callable(code):
        try:
            name = getattr(code(), "name", "")
        except Exception:
            name = ""
    if name != "RESOURCE_EXHAUSTED" and "StatusCode.RESOURCE_EXHAUSTED" not in str(exc):
        return None
    found = re.search(r"larger than max \(\d+ vs\. (\d+)\)", str(exc))
    return int(found.group(1)) if found else 0


def _read_settings(ray: Any) -> None:
    """Have Ray read its settings (token authentication) from the environment as it is now: they were
    read when Ray was imported, maybe before the gateway set them."""
    try:
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")
    except (ImportError, AttributeError):  # another Ray version: it reads them at import only
        log.debug("Ray %s reads its settings at import only", getattr(ray, "__version__", "?"))


def default_temp_dir() -> Path:
    """Ray's own temp folder for loopbridge (sessions, logs, sockets), not the shared ``/tmp/ray``."""
    from .models.registry import default_data_dir

    return default_data_dir() / "ray"


class ClusterEngine(Engine):
    """An :class:`Engine` whose models run on the cluster's replicas (see the module docstring).

    ``on_cluster_event(name, fields)`` hears ``"deployed"`` (a family's replicas are up),
    ``"started"`` (a batch reached a replica: its ``pid``, ``replica`` and whether it was sent as
    ``background``), ``"done"`` (its audio is back, with the same ``pid`` and ``background``; ``model_s``,
    the seconds the model ran there, ``paused_s`` of them paused for interactive work, ``promoted``
    when an interactive job joined it; times on :func:`time.monotonic`'s clock, which the processes of
    one machine share: ``sent_at`` the call, ``arrived_at`` at the replica, ``received_at`` the event
    here, ``model_at`` and ``ended_at`` the model's run), ``"stopped"`` (a batch's call was cancelled or
    pre-empted and has ended: ``told_at``, when its replica was told, ``freed_at``, when it was free),
    ``"promoted"`` (an interactive job joined a running batch of pre-renders, and its replica was
    told), ``"retry"`` (a replica died under a batch, which is sent again) and ``"too_large"`` (a replica
    refused a call by value as larger than its node takes: ``bytes``, ``limit``; it is sent again as an
    actor call). ``"started"`` says too whether the call went ``by_value`` and the replica's ``grpc_limit``.
    """

    def __init__(self, cluster: Cluster, store_dir: str | Path | None = None,
                 registry: ModelRegistry | None = None, warm: Sequence[str] = (),
                 on_cluster_event: ClusterEvent | None = None) -> None:
        # the gateway's engine loads no weights: it plans, keys, stores and conforms on its CPU
        super().__init__(store_dir=store_dir, registry=registry, device="cpu")
        self.cluster = cluster
        self.on_cluster_event = on_cluster_event
        self._warm = tuple(warm)
        self._handles: dict[str, Any] = {}
        self._streams: dict[tuple[str, bool], Any] = {}  # (model id, by value): its streaming handle
        self._limits: dict[str, int] = {}
        self._pools: dict[str, str] = {}
        self._settings: dict[str, dict[str, str]] = {}
        self._checked: set[str] = set()
        self._deploy_lock = threading.Lock()
        self._flights: set[_Flight] = set()
        self._ending: set[threading.Event] = set()
        self._watch_cond = threading.Condition()
        self._watcher: threading.Thread | None = None
        self._changed = False
        self._closing = False

    # ---- where batches run -----------------------------------------------------------------------

    @property
    def accelerated(self) -> bool:
        return self.cluster.gpus > 0

    @property
    def preempts_background(self) -> bool:
        # every replica may be busy with pre-renders: one stops at its next step for an interactive request
        return True

    def pools(self) -> dict[str, int]:
        families = {spec.family for spec in self.models()} | {self.pool(model) for model in self._warm}
        return dict.fromkeys(sorted(families), self.cluster.replicas)

    def pool(self, model_id: str) -> str:
        # asked for each queued task as the scheduler looks for a free slot: resolving an id scans the
        # model folders, so each id's family is looked up once (as its fingerprint is)
        family = self._pools.get(model_id)
        if family is None:
            family = self._pools[model_id] = self.resolve(model_id).family
        return family

    def render_settings(self, model_id: str) -> dict[str, str]:
        """The replicas' load settings that change what ``model_id`` makes (their precision, sampler)."""
        settings = self._settings.get(model_id)
        if settings is None:
            settings = self._settings[model_id] = self._render_settings(model_id)
        return settings

    def _render_settings(self, model_id: str) -> dict[str, str]:
        import torch

        from .models.diffusers_support import resolve_dtype
        from .models.registry import backend_class
        from .weights import resolve_device

        options = self.cluster.options
        device = torch.device("cuda") if options.device == "auto" and self.cluster.gpus else \
            resolve_device("cpu" if options.device == "auto" else options.device)
        return backend_class(self.resolve(model_id).family).render_settings(
            device, resolve_dtype(options.dtype, device), options.load_options or LoadOptions())

    # ---- deployments ------------------------------------------------------------------------------

    def deploy(self, family: str) -> Any:
        """The Serve handle of ``family``'s deployment, deployed (and its replicas started) if needed."""
        with self._deploy_lock:
            handle = self._handles.get(family)
            if handle is not None:
                return handle
            ray = import_ray()
            from ray import serve

            from .replica import MAX_MODELS_PER_REPLICA

            name, deployment, config, fingerprint = self.deployment(family)
            handle = self._running(name, fingerprint)
            if handle is None:
                started = time.monotonic()
                try:
                    handle = _run_application(serve, deployment.bind(config, fingerprint), name)
                except ray.exceptions.RayError as exc:
                    raise ModelLoadError(f"the model workers of family {family!r} did not start: {exc}") from None
                log.info("family %r: %d replica(s) ready in %.1f s (max %d checkpoints each)", family,
                         self.cluster.replicas, time.monotonic() - started, MAX_MODELS_PER_REPLICA)
            else:
                log.info("family %r: %d replica(s) already running with these settings", family,
                         self.cluster.replicas)
            self._handles[family] = handle
            self._cluster_event("deployed", family=family, replicas=self.cluster.replicas)
            return handle

    def deployment(self, family: str) -> tuple[str, Any, Any, str]:
        """``family``'s Serve application as this gateway deploys it: its name, the Serve deployment
        (to be bound to the config and fingerprint), the replicas' :class:`.replica.ReplicaConfig` and
        the fingerprint of those settings (a running application with the same one is used as it is)."""
        import_ray()
        from ray import serve

        from .replica import ModelReplica, ReplicaConfig

        options = self.cluster.options
        models = tuple(spec for spec in self.models() if spec.family == family)
        if not models:
            raise LoopbridgeError(f"no model of family {family!r} is installed")
        config = ReplicaConfig(family=family, models=models, device=options.device, dtype=options.dtype,
                               load_options=options.load_options, memory_budget_bytes=options.memory_budget_bytes,
                               warm=tuple(m for m in self._warm if self.resolve(m).family == family),
                               threads=options.threads)
        gpus = 1 if self.cluster.gpus and options.device in ("auto", "cuda") else 0
        name = f"loopbridge-{family}"
        fingerprint = hashlib.sha256(repr((config, gpus, self.cluster.replicas)).encode()).hexdigest()
        deployment = serve.deployment(
            ModelReplica, name=name, num_replicas=self.cluster.replicas,
            max_ongoing_requests=1, ray_actor_options={"num_cpus": 1, "num_gpus": gpus},
            health_check_period_s=2, graceful_shutdown_timeout_s=5)
        return name, deployment, config, fingerprint

    @staticmethod
    def _running(name: str, fingerprint: str) -> Any:
        """The handle of application ``name`` when its replicas run with the settings ``fingerprint``
        names (a gateway started again, or another one: its replicas and their loaded models are
        kept), else None (it is deployed, or deployed again with these settings)."""
        ray = import_ray()
        from ray import serve
        from ray.serve.exceptions import RayServeException

        try:
            handle = serve.get_app_handle(name)
            theirs = handle.fingerprint.remote().result(timeout_s=60)
        except (RayServeException, ray.exceptions.RayError, TimeoutError) as exc:
            log.debug("application %r is not running as wanted: %s", name, exc)
            return None
        return handle if theirs == fingerprint else None

    def warm(self, model_id: str = "default") -> None:
        """Deploy ``model_id``'s family and load it on a replica (each replica loads the models it was
        started with at start); checks the replicas render it under this gateway's fingerprint."""
        handle = self.deploy(self.pool(model_id))
        self._check_digest(handle, model_id)

    def _check_digest(self, handle: Any, model_id: str) -> None:
        if model_id in self._checked:
            return
        theirs = handle.options(multiplexed_model_id=model_id).digest.remote(model_id).result()
        self._check_same(model_id, theirs)

    def _check_same(self, model_id: str, theirs: str) -> None:
        ours = self.model_digest(model_id)
        if theirs != ours:
            raise ModelLoadError(f"model {model_id!r} differs on the model workers (fingerprint {theirs[:12]}) from "
                                 f"this gateway's ({ours[:12]}): install the same checkpoint and settings on both")
        self._checked.add(model_id)

    # ---- rendering ---------------------------------------------------------------------------------

    def generate(self, model_id: str, requests: Sequence[GenerateRequest],
                 progress: ProgressCallback | None = None, *, background: Background = False) -> list[GeneratedAudio]:
        """One batch on a replica of ``model_id``'s family; sent again when the replica dies under it.
        A batch of pre-renders (``background``) pauses there while interactive work has its device,
        until ``background`` (asked again after :meth:`batches_changed`) says an interactive job joined it."""
        ray = import_ray()
        batch = list(requests)
        family = self.pool(model_id)
        size = call_bytes(batch) + CALL_FRAMING_BYTES
        by_value = self.cluster.transport == "grpc" and size <= self.message_limit(family)
        attempt = 1
        while True:
            try:
                return self._send(self._stream_handle(model_id, by_value), model_id, batch, progress, background,
                                  by_value)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
                if attempt == MAX_ATTEMPTS:
                    raise LoopbridgeError(f"model workers of {model_id!r} died under this batch {attempt} times: "
                                          f"{type(exc).__name__}") from None
                attempt += 1
                log.warning("a model worker died under a batch of %d for %r (%s): sending it again (%d of %d)",
                            len(batch), model_id, type(exc).__name__, attempt, MAX_ATTEMPTS)
                self._cluster_event("retry", model=model_id, attempt=attempt)
            except Exception as exc:
                limit = _too_large(exc) if by_value else None
                if limit is None:
                    raise
                # the replica's node takes less than the gateway thought (the call never ran): sent again
                # as an actor call, as every batch of this size will be
                self._lower_limit(family, limit or size - 1)
                log.warning("a model worker of %r refused a call of %d bytes by value (its node's "
                            "RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH: %s bytes): sent again as an actor call, "
                            "as calls over %d bytes will be", model_id, size, limit or "fewer",
                            self.message_limit(family))
                self._cluster_event("too_large", model=model_id, bytes=size, limit=limit)
                by_value = False
        raise AssertionError("unreachable")

    def message_limit(self, family: str) -> int:
        """The largest call sent by value to a replica of ``family`` (its pickled batch and Serve's
        framing): Serve's default limit (a node started without loopbridge's settings), or less where a
        replica of the family said its node takes less; larger batches go as actor calls. Serve's
        router chooses the replica after the gateway chose how to send, so a replica that takes more
        does not raise it."""
        from .replica import SERVE_DEFAULT_GRPC_MESSAGE_BYTES

        return self._limits.get(family, SERVE_DEFAULT_GRPC_MESSAGE_BYTES)

    def _lower_limit(self, family: str, limit: int) -> None:
        if 0 < limit < self.message_limit(family):
            self._limits[family] = limit

    def _stream_handle(self, model_id: str, by_value: bool) -> Any:
        """The streaming handle of ``model_id``'s deployment, calling by value or as actor calls."""
        handle = self._streams.get((model_id, by_value))
        if handle is None:
            handle = self._streams[model_id, by_value] = self.deploy(self.pool(model_id)).options(
                stream=True, multiplexed_model_id=model_id, _by_reference=not by_value)
        return handle

    def _send(self, handle: Any, model_id: str, batch: list[GenerateRequest],
              progress: ProgressCallback | None, background: Background, by_value: bool) -> list[GeneratedAudio]:
        self._ended()
        still_background = background if callable(background) else (lambda: bool(background))
        sent_background = still_background()
        batch_id = uuid.uuid4().hex if sent_background else ""
        sent_at = time.monotonic()
        stream = handle.render.remote(batch, sent_background, batch_id)
        flight = _Flight(stream, progress, still_background if sent_background else None, batch_id)
        self._watch(flight)
        started_pid = None
        try:
            for kind, payload in stream:
                if kind == "progress":
                    if progress is not None:
                        with flight.lock:
                            flight.fraction = min(float(payload), 0.999)  # 1.0 is said once the audio is here
                            progress(flight.fraction)
                elif kind == "started":
                    started_pid = payload.get("pid")
                    if isinstance(payload.get("grpc_limit"), int):
                        self._lower_limit(self.pool(model_id), payload["grpc_limit"])
                    self._cluster_event("started", **{"model": model_id, "background": sent_background, **payload,
                                                      "by_value": by_value, "sent_at": sent_at,
                                                      "received_at": time.monotonic()})
                elif kind == "error":
                    raise _engine_error(payload)
                elif kind == "done":
                    received_at = time.monotonic()
                    if model_id not in self._checked:
                        self._check_same(model_id, payload["digest"])
                    self._cluster_event("done", model=model_id, batch=len(batch), pid=started_pid,
                                        background=sent_background,
                                        model_s=float(payload.get("model_s", 0.0)),
                                        paused_s=float(payload.get("paused_s", 0.0)),
                                        promoted=bool(payload.get("promoted", False)),
                                        model_at=payload.get("model_at"), ended_at=payload.get("ended_at"),
                                        received_at=received_at)
                    outputs = [GeneratedAudio(audio=np.asarray(audio), sample_rate=int(rate), info=info)
                               for audio, rate, info in payload["outputs"]]
                    # the call's end follows at once: until Serve has seen it, the replica counts as busy
                    # and the next batch sent there would wait out the router's back-off; the audio goes
                    # on to the store meanwhile, and the next call waits for the end (:meth:`_ended`)
                    self._end_later(stream)
                    return outputs
        except CancelledError:
            stream.cancel()  # the replica's model stops at its next step
            _drain(stream)
            self._cluster_event("stopped", model=model_id, pid=started_pid, background=sent_background,
                                freed_at=time.monotonic())
            raise
        except BaseException:
            if flight.stop is not None:  # the watcher cancelled the call: the scheduler's reason, not Ray's
                _drain(stream)
                self._cluster_event("stopped", model=model_id, pid=started_pid, background=sent_background,
                                    told_at=flight.told_at, freed_at=time.monotonic())
                raise flight.stop from None
            raise
        finally:
            self._unwatch(flight)
            if flight.promoted:
                _forget_promotion(flight.batch_id)
        raise LoopbridgeError(f"the model worker's stream for {model_id!r} ended without audio")

    def _end_later(self, stream: Any) -> None:
        ended = threading.Event()
        with self._watch_cond:
            self._ending.add(ended)

        def drain() -> None:
            try:
                _drain(stream)
            finally:
                with self._watch_cond:
                    self._ending.discard(ended)
                ended.set()

        threading.Thread(target=drain, name="loopbridge-cluster-end", daemon=True).start()

    def _ended(self, timeout_s: float = 1.0) -> None:
        """Wait (a moment at most) until the calls whose audio came back have ended: their replicas
        are free then, and Serve sends the next call to one at once."""
        with self._watch_cond:
            ending = list(self._ending)
        deadline = time.monotonic() + timeout_s
        for ended in ending:
            ended.wait(max(0.0, deadline - time.monotonic()))

    # ---- the watcher: cancel and pre-emption reach a replica at once ------------------------------------

    def batches_changed(self) -> None:
        with self._watch_cond:
            self._changed = True
            self._watch_cond.notify()

    def _watch(self, flight: _Flight) -> None:
        if flight.progress is None and flight.background is None:
            return
        with self._watch_cond:
            self._flights.add(flight)
            # asked once as it is sent: a change the scheduler made just before is not missed
            self._changed = True
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch_loop, name="loopbridge-cluster-watch",
                                                 daemon=True)
                self._watcher.start()
            self._watch_cond.notify()

    def _unwatch(self, flight: _Flight) -> None:
        with self._watch_cond:
            self._flights.discard(flight)

    def _watch_loop(self) -> None:
        """When the scheduler says a running batch changed, ask each batch in flight's progress
        callback (the scheduler's) whether it is still wanted: one that raises :class:`CancelledError`
        (cancelled, or pre-empted for an interactive request) has its call cancelled now, and its
        sender raises that error once the stream ends. A batch of pre-renders an interactive job
        joined is promoted (its replica stops pausing for other interactive work)."""
        while True:
            with self._watch_cond:
                while not self._changed and not self._closing:
                    self._watch_cond.wait(WATCH_FALLBACK_S if self._flights else None)
                    if self._flights:
                        break
                if self._closing or self._watcher is not threading.current_thread():
                    return
                self._changed = False
                flights = list(self._flights)
            for flight in flights:
                if flight.background is not None and not flight.promoted and not flight.background():
                    flight.promoted = _promote(flight.batch_id)
                    if flight.promoted:
                        self._cluster_event("promoted", batch_id=flight.batch_id)
                if flight.stop is not None or flight.progress is None or not flight.lock.acquire(blocking=False):
                    continue  # (its sender is reporting progress right now: it hears the same answer)
                try:
                    flight.progress(flight.fraction)
                except CancelledError as exc:
                    flight.stop = exc
                    flight.told_at = time.monotonic()
                    flight.stream.cancel()
                except Exception:
                    log.exception("progress callback failed")
                finally:
                    flight.lock.release()

    def _cluster_event(self, name: str, **fields: Any) -> None:
        if self.on_cluster_event is not None:
            try:
                self.on_cluster_event(name, fields)
            except Exception:
                log.exception("cluster event callback failed on %s", name)

    def close(self) -> None:
        """End the watcher thread (the next batch sent starts another: a front door stopped does not
        end the engine, which another may use) and close the store's connection."""
        with self._watch_cond:
            watcher, self._watcher = self._watcher, None
            self._closing = True
            self._watch_cond.notify_all()
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=5.0)
        with self._watch_cond:
            self._closing = False
        super().close()


class _Flight:
    """A batch's call in flight: its stream, the scheduler's progress callback and the fraction last
    reported; ``stop``: the error the callback raised when the watcher asked (the call is cancelled).
    A batch sent as pre-renders has ``background`` (still only pre-renders?) and its ``batch_id``;
    ``promoted`` once an interactive job joined it and its replica was told."""

    __slots__ = ("background", "batch_id", "fraction", "lock", "progress", "promoted", "stop", "stream", "told_at")

    def __init__(self, stream: Any, progress: ProgressCallback | None,
                 background: Callable[[], bool] | None = None, batch_id: str = "") -> None:
        self.stream = stream
        self.progress = progress
        self.background = background
        self.batch_id = batch_id
        self.promoted = False
        self.fraction = 0.0
        self.stop: CancelledError | None = None
        self.told_at = 0.0
        self.lock = threading.Lock()


def _promote(batch_id: str) -> bool:
    """Note in Ray's key-value store that batch ``batch_id`` is interactive now (its replica looks there)."""
    from ray.experimental import internal_kv

    try:
        internal_kv._internal_kv_put(batch_id, b"1", namespace=PROMOTED_NAMESPACE)
    except Exception as exc:  # the cluster is going away: the batch ends anyway
        log.debug("promoting batch %s failed: %s", batch_id, exc)
        return False
    return True


def _forget_promotion(batch_id: str) -> None:
    from ray.experimental import internal_kv

    try:
        internal_kv._internal_kv_del(batch_id, namespace=PROMOTED_NAMESPACE)
    except Exception as exc:
        log.debug("forgetting batch %s failed: %s", batch_id, exc)


def _run_application(serve: Any, application: Any, name: str) -> Any:
    """Deploy ``application`` as ``name`` and return its handle once its replicas run (asked each
    :data:`DEPLOY_POLL_S`: a gateway is ready as soon as they are, not up to a second later)."""
    [handle] = serve.run_many([serve.RunTarget(application, name=name, route_prefix=None)],
                              wait_for_applications_running=False)
    deadline = time.monotonic() + DEPLOY_TIMEOUT_S
    while True:
        status = serve.status().applications.get(name)
        state = str(getattr(status.status, "value", status.status)) if status is not None else "NOT_STARTED"
        if state == "RUNNING":
            return handle
        if state == "DEPLOY_FAILED":
            raise ModelLoadError(f"the model workers of {name!r} did not start: {status.message}")
        if time.monotonic() > deadline:
            raise ModelLoadError(f"the model workers of {name!r} did not start in {DEPLOY_TIMEOUT_S:.0f} s "
                                 f"(their application is {state})")
        time.sleep(DEPLOY_POLL_S)


def _drain(stream: Any) -> None:
    """Wait for the end of a call's stream (its replica is free then), whatever ends it."""
    try:
        for _ in stream:
            pass
    except Exception as exc:  # cancelled, or its replica died: the call has ended either way
        log.debug("stream ended with %s", type(exc).__name__)


def _engine_error(payload: dict[str, str]) -> LoopbridgeError:
    """A replica's engine error as the same class here (one that needs more than a message: its base)."""
    message = str(payload.get("message", "the model worker failed"))
    cls = getattr(engine_errors, str(payload.get("type", "")), None)
    if isinstance(cls, type) and issubclass(cls, LoopbridgeError):
        try:
            return cls(message)
        except TypeError:
            pass
    return LoopbridgeError(message)


__all__ = ["MAX_ATTEMPTS", "Cluster", "ClusterEngine", "ClusterOptions", "import_ray"]
