"""A model worker of the cluster: one Ray Serve replica of one model family (:mod:`.cluster` deploys it).

A replica renders and returns audio and metadata; it keeps no store (the gateway is the store's one
writer) and holds no per-client state. Several checkpoints of its family share a replica: the
request names one (Serve's multiplexed model id), Serve routes it to a replica that has it loaded
where it can, and the replica's weight cache keeps the most recently used within its budget.

:meth:`ModelReplica.render` streams what happens to the gateway, one tuple per event:

- ``("started", {"pid": ..., "replica": ..., "stopped": ...})`` as the batch starts (a gateway
  names the replica in its logs; ``stopped``: batches this replica has stopped on a cancel so far);
- ``("progress", fraction)`` while the model runs (throttled to :data:`PROGRESS_STEP`);
- ``("error", {"type": ..., "message": ...})`` for an engine error (the gateway raises it again);
- ``("done", {"outputs": [(audio, sample_rate, info)], "digest": ..., "model_s": ...})`` with the
  audio (``model_s``: the seconds the model ran, the same work as in process).

Cancelling the call on the gateway cancels the replica's task: the flag it sets is read by the
model's progress callback at its next step, as in process, so a cancelled batch stops there.

Imports Ray only where it runs: this module is importable without the ``cluster`` extra.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CancelledError, LoopbridgeError
from .models.base import LoadOptions
from .models.registry import ModelRegistry, ModelSpec
from .request import GenerateRequest

log = logging.getLogger(__name__)

#: smallest change in progress worth sending to the gateway
PROGRESS_STEP = 0.02
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

    async def render(self, requests: list[GenerateRequest]) -> AsyncIterator[tuple[str, Any]]:
        """Render one batch of the request's model (events: see the module docstring)."""
        model_id = _model_id()
        if self._last is not None:  # a cancelled batch's model stops at its next step: this one starts after
            await _finished(self._last)
        yield ("started", {"pid": os.getpid(), "replica": self._replica, "model": model_id, "stopped": self.stopped})
        try:
            await self._resident(model_id)
        except LoopbridgeError as exc:
            yield ("error", _error(exc))
            return
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancelled = threading.Event()
        reported = [0.0]

        def progress(fraction: float) -> None:
            if cancelled.is_set():
                raise CancelledError("the gateway cancelled this batch")
            if fraction - reported[0] >= PROGRESS_STEP or (fraction >= 1.0 > reported[0]):
                reported[0] = fraction
                loop.call_soon_threadsafe(events.put_nowait, ("progress", fraction))

        def run() -> None:
            try:
                started = time.perf_counter()
                outputs = self.engine.generate(model_id, requests, progress)
                done = {"outputs": [(o.audio, o.sample_rate, dict(o.info)) for o in outputs],
                        "digest": self.engine.model_digest(model_id), "model_s": time.perf_counter() - started}
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


try:  # Serve knows which replica holds which checkpoint, and routes requests for it there
    from ray import serve as _serve
except ImportError:  # without the cluster extra: the class is there, nothing deploys it
    pass
else:
    ModelReplica._resident = _serve.multiplexed(  # type: ignore[method-assign]
        max_num_models_per_replica=MAX_MODELS_PER_REPLICA)(ModelReplica._resident)


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


__all__ = ["MAX_MODELS_PER_REPLICA", "PROGRESS_STEP", "ModelReplica", "ReplicaConfig"]
