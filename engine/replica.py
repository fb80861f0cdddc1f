"""A model worker of the cluster: one Ray Serve replica of one model family (:mod:`.cluster` deploys it).

A replica renders and returns audio and metadata; it keeps no store (the gateway is the store's one
writer) and holds no per-client state. Several checkpoints of its family share a replica: the
request names one (Serve's multiplexed model id), Serve routes it to a replica that has it loaded
where it can, and the replica's weight cache keeps the most recently used within its budget.

:meth:`ModelReplica.render` streams what happens to the gateway, one tuple per event:

- ``("started", {"pid": ..., "replica": ..., "stopped": ..., "arrived_at": ..., "grpc_limit": ...})`` as
  the batch starts (a gateway names the replica in its logs; ``stopped``: batches this replica has
  stopped on a cancel so far; ``arrived_at``: when the call reached the replica, on
  :func:`time.monotonic`'s clock, which the processes of one machine share; ``grpc_limit``: the largest
  call this replica takes by value, as Serve read it here: :func:`grpc_message_limit`);
- ``("progress", fraction)`` while the model runs (at most one each :data:`PROGRESS_INTERVAL_S`: each
  event is a message through Ray, and the gateway stops a batch without waiting for one; none for
  the model's end, which its audio follows at once);
- ``("error", {"type": ..., "message": ...})`` for an engine error (the gateway raises it again);
- ``("done", {"outputs": [(audio, sample_rate, info)], "digest": ..., "model_s": ..., "paused_s": ...})``
  with the audio (``model_s``: the seconds the model ran, the same work as in process, from
  ``model_at`` to ``ended_at`` on the monotonic clock; ``paused_s``: of them, the seconds it paused
  for interactive work, ``promoted``: an interactive job joined it).

Cancelling the call on the gateway cancels the replica's task: the flag it sets is read by the
model's progress callback at its next step, as in process, and where the model has them at its stop
points inside a step (:func:`.models.base.stop_point`: the default model's, between its network's
blocks and its decoder's stages), so a cancelled batch stops within a block, not a step.

Interactive work first on a shared device: while an interactive batch (``background=False``) runs on
a replica, batches of pre-renders on other replicas of the same device of the same node (the CPUs of
a machine, one GPU shared by fractional replicas) pause at their model's next stop point or progress
step (a stop point looks at the device's marks once every :data:`PAUSE_CHECK_S` at most) and go on
when it is done, as in process an interactive request never shares the accelerator with pre-renders. Replicas
on separate GPUs share nothing worth pausing for and never pause each other (:class:`DeviceShare`).
A batch of pre-renders that an interactive job joins while it runs is promoted by the gateway (its
``batch_id`` in Ray's key-value store, looked at every :data:`PROMOTION_CHECK_S` and before each
pause): from then on it is interactive work, which pauses for nothing and which others pause for.

Imports Ray only where it runs: this module is importable without the ``cluster`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CancelledError, LoopbridgeError
from .models.base import LoadOptions, stop_check
from .models.registry import ModelRegistry, ModelSpec
from .request import GenerateRequest

log = logging.getLogger(__name__)

#: smallest change in progress worth sending to the gateway
PROGRESS_STEP = 0.02
#: least time between two progress events sent to the gateway (a progress bar needs no more)
PROGRESS_INTERVAL_S = 0.1
#: how often a paused batch of pre-renders looks whether the interactive work on its device is done
PAUSE_POLL_S = 0.005
#: how often at most a running batch of pre-renders looks at its device's marks from its model's stop
#: points (a look lists a folder, some 10 us; between looks a stop point costs a clock reading)
PAUSE_CHECK_S = 0.005
#: how often a batch of pre-renders looks whether an interactive job joined it (the gateway's promotion)
PROMOTION_CHECK_S = 0.1
#: checkpoints of one family a replica keeps loaded (its weight cache's budget bounds them too)
MAX_MODELS_PER_REPLICA = 4


@dataclass(frozen=True)
class ReplicaConfig:
    """What every replica of one family is started with (the gateway's settings, so that renders
    and render keys agree): the family's models as the gateway lists them, the device (``"auto"``:
    CUDA where the replica has a GPU), the precision name, load options, a weight budget, the
    models to load at start, and torch's thread count (None: Ray's, one per CPU asked for)."""

    family: str
    models: tuple[ModelSpec, ...]
    device: str = "auto"
    dtype: str = "fp32"
    load_options: LoadOptions | None = None
    memory_budget_bytes: int | None = None
    warm: tuple[str, ...] = ()
    threads: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


class _Registry(ModelRegistry):
    """The gateway's models of one family; embedded ones found in this machine's own install."""

    def __init__(self, models: Sequence[ModelSpec]) -> None:
        super().__init__(search_paths=[], hf_cache=Path(tempfile.gettempdir()) / "loopbridge-no-hf-cache")
        embedded = {spec.id: spec for spec in super().specs() if spec.source == "embedded"}
        self._models = [embedded.get(spec.id, spec) if spec.source == "embedded" else spec for spec in models]

    def specs(self) -> list[ModelSpec]:
        return list(self._models)


class DeviceShare:
    """The interactive batches running on one device of one node, as files in ``folder`` (one per
    batch, named by the replica's pid): a replica's batch of pre-renders looks at it at each step and,
    at most every :data:`PAUSE_CHECK_S`, at its model's stop points.

    A file is removed when its batch ends; one left by a replica that was killed is removed by the
    first replica that sees its pid gone, so a pre-render never waits for a dead replica.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._names = itertools.count()

    @contextlib.contextmanager
    def interactive(self) -> Iterator[None]:
        """Mark an interactive batch of this process as running on the device while in the block."""
        path = self.folder / f"{os.getpid()}-{next(self._names)}"
        path.touch()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    def busy(self) -> bool:
        """Whether another live replica runs an interactive batch on this device now."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return False
        own = os.getpid()
        for name in names:
            pid = int(name.partition("-")[0]) if name.partition("-")[0].isdigit() else 0
            if pid == own or pid <= 0:
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:  # its replica died mid-batch
                (self.folder / name).unlink(missing_ok=True)
                continue
            except PermissionError:  # alive, another user's process
                pass
            return True
        return False


def device_share(device: Any) -> DeviceShare:
    """The :class:`DeviceShare` of this replica's device (``device``: its torch device) on its node:
    the CPUs of the node, or the GPUs Ray gave this replica (replicas on separate GPUs never meet)."""
    try:
        import ray

        node = ray.get_runtime_context().get_node_id()
        gpus = ",".join(str(g) for g in ray.get_gpu_ids())
    except Exception:  # outside Ray (a replica object built directly): this process alone
        node, gpus = f"pid-{os.getpid()}", ""
    name = "cpu" if getattr(device, "type", "cpu") == "cpu" else f"gpu-{gpus or getattr(device, 'index', 0)}"
    return DeviceShare(_node_folder(node) / f"interactive-{name}")


def _node_folder(node_id: str) -> Path:
    """This node's folder for loopbridge's replicas: in Ray's session folder (removed with it), else
    in the temp folder under the node's id (unique to each start of a cluster)."""
    try:
        from ray._private import worker as ray_worker

        node: Any = ray_worker._global_node
        return Path(node.get_session_dir_path()) / "loopbridge"
    except Exception:  # another Ray version
        return Path(tempfile.gettempdir()) / f"loopbridge-node-{node_id}"


class ModelReplica:
    """One replica: an engine without a store, rendering the batches the gateway sends."""

    def __init__(self, config: ReplicaConfig, fingerprint: str = "") -> None:
        import torch

        from .core import Engine
        from .models.diffusers_support import resolve_dtype
        from .weights import resolve_device

        if config.threads is not None:
            torch.set_num_threads(config.threads)
        device = resolve_device(config.device)
        self.config = config
        self._fingerprint = fingerprint
        # a store folder that is never opened: the engine's store is the gateway's alone
        self.engine = Engine(store_dir=Path(tempfile.gettempdir()) / "loopbridge-replica-no-store",
                             registry=_Registry(config.models), device=device,
                             dtype=resolve_dtype(config.dtype, device),
                             memory_budget_bytes=config.memory_budget_bytes, load_options=config.load_options)
        for model_id in config.warm:
            self.engine.warm(model_id)
        self._replica = _replica_name()
        self._share = device_share(device)
        #: the largest call this replica's gRPC server takes (its node's setting): the gateway sends larger
        #: ones as actor calls
        self.grpc_limit = grpc_message_limit()
        #: batches whose model stopped at a progress step because the gateway cancelled them
        self.stopped = 0
        self._last: asyncio.Future[None] | None = None

    async def _resident(self, model_id: str) -> str:
        await asyncio.to_thread(self.engine.warm, model_id)
        return model_id

    def fingerprint(self) -> str:
        """The gateway's fingerprint of the settings this replica was started with."""
        return self._fingerprint

    def digest(self, model_id: str) -> str:
        """The fingerprint this replica renders ``model_id`` under (the gateway checks it is its own)."""
        return self.engine.model_digest(model_id)

    async def warm(self) -> str:
        """Load the request's model (its multiplexed id) now."""
        return await self._resident(_model_id())

    async def render(self, requests: list[GenerateRequest], background: bool = False,
                     batch_id: str = "") -> AsyncIterator[tuple[str, Any]]:
        """Render one batch of the request's model (events: see the module docstring); a batch of
        pre-renders (``background``) pauses while an interactive batch runs on its device, until the
        gateway promotes ``batch_id``."""
        arrived = time.monotonic()
        model_id = _model_id()
        share = self._share
        marks = contextlib.ExitStack()  # the batch's mark as interactive work on the device
        if not background:
            # from its arrival: pre-renders on this device pause at their next stop point while it is sent
            # to its model, not after its model started
            marks.enter_context(share.interactive())
        try:
            async for event in self._render(requests, background, batch_id, arrived, model_id, marks):
                yield event
        finally:
            marks.close()

    async def _render(self, requests: list[GenerateRequest], background: bool, batch_id: str, arrived: float,
                      model_id: str, marks: contextlib.ExitStack) -> AsyncIterator[tuple[str, Any]]:
        if self._last is not None:  # a cancelled batch's model stops at its next step: this one starts after
            await _finished(self._last)
        yield ("started", {"pid": os.getpid(), "replica": self._replica, "model": model_id, "stopped": self.stopped,
                           "arrived_at": arrived, "grpc_limit": self.grpc_limit})
        try:
            await self._resident(model_id)
        except LoopbridgeError as exc:
            yield ("error", _error(exc))
            return
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancelled = threading.Event()
        reported = [0.0, time.monotonic()]  # the fraction last sent, and when
        share = self._share
        pending = _Promotion(batch_id) if background else None
        paused = [0.0]
        looked = [time.monotonic()]  # when this batch last looked at its device's marks

        def still_background(now: bool = False) -> bool:
            nonlocal pending
            if pending is not None and pending.promoted(now):
                pending = None
                marks.enter_context(share.interactive())  # pre-renders on this device pause for it now
            return pending is not None

        def not_cancelled() -> None:
            if cancelled.is_set():
                raise CancelledError("the gateway cancelled this batch")

        def pause() -> None:  # while interactive work has the device, unless this batch was promoted
            if pending is not None and still_background() and share.busy() and still_background(now=True):
                began = time.monotonic()
                # interactive work has the device: go on when it is done (or when this batch is promoted)
                while share.busy() and still_background():
                    cancelled.wait(PAUSE_POLL_S)
                    not_cancelled()
                paused[0] += time.monotonic() - began

        def stop() -> None:  # inside a step, between the network's blocks (models.base.stop_point)
            not_cancelled()
            # some 570 stop points a render: the device's marks are looked at once a PAUSE_CHECK_S at most
            if pending is not None and (now := time.monotonic()) >= looked[0] + PAUSE_CHECK_S:
                looked[0] = now
                pause()

        def progress(fraction: float) -> None:
            not_cancelled()
            if fraction < 1.0:
                looked[0] = time.monotonic()
                pause()
            now = time.monotonic()
            # the model's end is not sent as progress: its audio follows at once, and the gateway
            # says 1.0 when it has it (an event more would be one more message through Ray before it)
            if fraction < 1.0 and fraction - reported[0] >= PROGRESS_STEP and now - reported[1] >= PROGRESS_INTERVAL_S:
                reported[:] = [fraction, now]
                loop.call_soon_threadsafe(events.put_nowait, ("progress", fraction))

        def run() -> None:
            try:
                started = time.monotonic()
                with marks, stop_check(stop):  # an interactive batch's mark (or a promoted one's) ends with its model
                    outputs = self.engine.generate(model_id, requests, progress)
                ended = time.monotonic()
                done = {"outputs": [(o.audio, o.sample_rate, dict(o.info)) for o in outputs],
                        "digest": self.engine.model_digest(model_id), "model_s": ended - started,
                        "paused_s": paused[0], "promoted": background and pending is None,
                        "model_at": started, "ended_at": ended}
                loop.call_soon_threadsafe(events.put_nowait, ("done", done))
            except CancelledError as exc:
                self.stopped += 1
                loop.call_soon_threadsafe(events.put_nowait, ("error", _error(exc)))
            except LoopbridgeError as exc:
                loop.call_soon_threadsafe(events.put_nowait, ("error", _error(exc)))
            except Exception as exc:  # a library failure: said to the gateway, the replica keeps serving
                log.exception("batch of %d for model %r failed", len(requests), model_id)
                loop.call_soon_threadsafe(events.put_nowait, ("error", {
                    "type": "LoopbridgeError", "message": f"rendering failed: {type(exc).__name__}: {exc}"}))

        worker = self._last = loop.run_in_executor(None, run)
        try:
            while True:
                kind, payload = await events.get()
                yield (kind, payload)
                if kind in ("done", "error"):
                    break
        finally:
            # cancelled (or the gateway went away): the model stops at its next step, and the replica
            # takes no other batch before it has (Serve may cancel this task more than once)
            cancelled.set()
            await _finished(worker)


#: Serve's first back-off when every replica a call may go to is busy (it doubles each time; Serve's
#: own, 25 ms, is longer than a diffusion step): a batch sent as its replica frees tries again soon
ROUTER_RETRY_S = 0.002
#: ... and its longest (Serve's own: 0.5 s): a replica that takes a while to free (a pre-empted batch
#: stops at its next step) is tried again within this of its freeing, not up to a doubled back-off later
ROUTER_RETRY_MAX_S = 0.01


#: the largest message of Serve's gRPC transport, a batch's audio back or its requests out (gRPC's own
#: limit; Serve's default, 4 MiB, is less than one 30 s render of 44.1 kHz audio, or an audio prompt)
GRPC_MAX_MESSAGE_BYTES = 2**31 - 1
#: Serve's own default for ``RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH``: the limit of a replica on a
#: node started without loopbridge's settings (plain ``ray start``)
SERVE_DEFAULT_GRPC_MESSAGE_BYTES = 4 * 2**20


def grpc_message_limit() -> int:
    """The largest gRPC message Serve takes in this process, read where Serve reads it (its constants,
    from ``RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH`` as it was when Serve was imported): in a
    replica, the largest call its server takes; in the gateway, the largest answer it takes. Serve's
    default when this Ray version does not say."""
    try:
        from ray.serve._private import constants

        return int(constants.RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH)
    except (ImportError, AttributeError, TypeError, ValueError):
        return SERVE_DEFAULT_GRPC_MESSAGE_BYTES


def ray_settings() -> None:
    """Settings Ray and Serve read from the environment as they are imported or as a node starts (the
    Ray processes this process starts inherit them): set before the first import."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never report usage from a studio's machines
    # Ray runs its workers 15 nice levels below the node: a replica's model would yield the CPU to the
    # gateway, Ray's own daemons and anything else on the machine (a render took 2.6 times as long as
    # in process on a busy 2-core machine); the model workers are the work, at the node's own priority
    os.environ.setdefault("RAY_worker_niceness", "0")
    os.environ.setdefault("RAY_SERVE_ROUTER_RETRY_INITIAL_BACKOFF_S", str(ROUTER_RETRY_S))
    os.environ.setdefault("RAY_SERVE_ROUTER_RETRY_MAX_BACKOFF_S", str(ROUTER_RETRY_MAX_S))
    # read by the gateway's channel to a replica (what it receives) and by the replica's server
    os.environ.setdefault("RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH", str(GRPC_MAX_MESSAGE_BYTES))


ray_settings()

try:  # Serve knows which replica holds which checkpoint, and routes requests for it there
    from ray import serve as _serve
except ImportError:  # without the cluster extra: the class is there, nothing deploys it
    pass
else:
    ModelReplica._resident = _serve.multiplexed(  # type: ignore[method-assign]
        max_num_models_per_replica=MAX_MODELS_PER_REPLICA)(ModelReplica._resident)


class _Promotion:
    """Whether the gateway promoted batch ``batch_id`` (an interactive job joined it), asked of Ray's
    key-value store at most every :data:`PROMOTION_CHECK_S`."""

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self._asked = time.monotonic()

    def promoted(self, now: bool = False) -> bool:
        """Asked of the store when ``now``, else only when the last answer is old enough."""
        when = time.monotonic()
        if not self.batch_id or (not now and when - self._asked < PROMOTION_CHECK_S):
            return False
        self._asked = when
        try:
            from ray.experimental import internal_kv

            from .cluster import PROMOTED_NAMESPACE

            return internal_kv._internal_kv_exists(self.batch_id, namespace=PROMOTED_NAMESPACE)
        except Exception as exc:  # outside Ray (a replica object built directly), or the cluster going away
            log.debug("cannot ask whether batch %s was promoted: %s", self.batch_id, exc)
            return False


async def _finished(worker: asyncio.Future[None]) -> None:
    """Wait until ``worker`` has finished, whatever cancels the waiting task meanwhile."""
    while not worker.done():
        try:
            await asyncio.shield(worker)
        except asyncio.CancelledError:
            continue


def _model_id() -> str:
    from ray import serve

    model_id = serve.get_multiplexed_model_id()
    if not model_id:
        raise LoopbridgeError("a render reached a model worker without a model id")
    return model_id


def _replica_name() -> str:
    try:
        from ray import serve

        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # outside Serve (a replica object built directly)
        return f"pid-{os.getpid()}"


def _error(exc: LoopbridgeError) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}


__all__ = ["GRPC_MAX_MESSAGE_BYTES", "MAX_MODELS_PER_REPLICA", "PROGRESS_INTERVAL_S", "PROGRESS_STEP",
           "ROUTER_RETRY_MAX_S", "ROUTER_RETRY_S", "SERVE_DEFAULT_GRPC_MESSAGE_BYTES", "DeviceShare", "ModelReplica",
           "ReplicaConfig", "device_share", "grpc_message_limit", "ray_settings"]
