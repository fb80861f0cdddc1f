"""``loopbridge serve``: the resident engine behind ZeroMQ and OSC, until Ctrl-C or SIGTERM.

Start-up checks every bind first (loopback, or keys / an allow-list beyond it), then builds the
engine, warms the default model and opens the transports. Shutdown refuses new work, cancels
what is queued and stops the running batch at its next step (a cancelled batch stores nothing;
every store write is atomic), lets the error replies go out, then closes every socket.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from loopbridge.engine.prerender import DEFAULT_DEPTH

from . import protocol as p
from .security import AllowList, CurveKeys, check_osc_bind, check_zmq_binds, load_server_keys

if TYPE_CHECKING:
    import torch
    from loopbridge.engine.core import Engine
    from loopbridge.engine.models.base import LoadOptions

log = logging.getLogger(__name__)
requests_log = logging.getLogger("loopbridge.requests")

#: printed on stderr once every socket is open (scripts and tests wait for it)
READY_LINE = "loopbridge serve: ready"


@dataclass
class ServeOptions:
    zmq: str = p.DEFAULT_ZMQ_ENDPOINT
    events: str | None = p.DEFAULT_EVENTS_ENDPOINT
    osc: tuple[str, int] | None = (p.DEFAULT_OSC_HOST, p.DEFAULT_OSC_PORT)
    osc_allow: str | None = None
    device: str = "auto"
    memory_budget_gb: float | None = None
    #: RAM for conforms running together (None: a quarter of the RAM available at start)
    conform_memory_gb: float | None = None
    keys_dir: Path | None = None
    insecure: bool = False
    store: Path | None = None
    model: str | None = None
    prerender: int = DEFAULT_DEPTH
    threads: int | None = None
    export_dir: Path | None = None
    log_requests: bool = True
    #: ``"fp32"``, ``"bf16"``, ``"fp16"`` (a GPU only): the precision every model is loaded in
    dtype: str = "fp32"
    #: attention, ``torch.compile``, scheduler and CPU offload for every model (None: the defaults)
    load_options: LoadOptions | None = None
    #: folders whose files clients may name by path, besides the store and the inbox (``--allow-path``)
    allow_paths: tuple[Path, ...] = ()
    #: integrated loudness of loops and textures for requests that name none (``--loudness``; None: -14 LUFS)
    loudness_lufs: float | None = None
    #: render on a Ray cluster's model workers: ``"local"`` (started here) or a head's HOST:PORT; None: in process
    cluster: str | None = None
    #: replicas per model family on the cluster (None: one per GPU, else one)
    replicas: int | None = None


def serve(options: ServeOptions, stop: threading.Event | None = None,
          on_ready: Callable[[dict[str, str]], None] | None = None) -> int:
    """Run the engine until ``stop`` is set or a signal arrives. Returns an exit status.

    Raises SecurityError for an unsafe bind and the engine's errors for an unusable set-up; the
    CLI turns them into one-line messages.
    """
    stop = stop or threading.Event()
    keys: CurveKeys | None = load_server_keys(options.keys_dir) if options.keys_dir is not None else None
    endpoints = [options.zmq] + ([options.events] if options.events else [])
    for warning in check_zmq_binds(endpoints, keys, options.insecure):
        log.warning("%s", warning)
    allow = AllowList.parse(options.osc_allow)
    if options.osc is not None:
        check_osc_bind(options.osc[0], allow)

    import torch

    if options.threads is not None:
        torch.set_num_threads(options.threads)
    from loopbridge.engine.conform import default_conform_memory_bytes
    from loopbridge.engine.core import Engine
    from loopbridge.engine.models.diffusers_support import resolve_dtype
    from loopbridge.engine.models.registry import ModelRegistry
    from loopbridge.engine.weights import default_budget_bytes, resolve_device

    # with a cluster, --device is the model workers' (a GPU there, none here)
    device = resolve_device(options.device if options.cluster is None else "cpu")
    conform_memory = (int(options.conform_memory_gb * 1e9) if options.conform_memory_gb is not None
                      else default_conform_memory_bytes())
    budget = (int(options.memory_budget_gb * 1e9) if options.memory_budget_gb is not None
              else default_budget_bytes(device))
    if options.memory_budget_gb is None and budget is not None and device.type == "cpu" and conform_memory:
        # on a CPU the weights live in the same RAM as the conforms: the default leaves that room to them
        budget = max(1, budget - conform_memory)
    registry = ModelRegistry()
    # a folder or FAMILY:PATH named here is listed under an id: clients name models by id only
    default_model = registry.pin(options.model) if options.model else "default"
    if options.model and default_model != options.model:
        log.info("model %s is listed as %r", options.model, default_model)
    cluster = None
    if options.cluster is None:
        dtype = resolve_dtype(options.dtype, device)
        engine = Engine(store_dir=options.store, registry=registry, device=device, dtype=dtype,
                        memory_budget_bytes=budget, load_options=options.load_options)
    else:
        from loopbridge.engine.cluster import Cluster, ClusterEngine, ClusterOptions

        cluster = Cluster(ClusterOptions(
            address=options.cluster, replicas=options.replicas, device=options.device, dtype=options.dtype,
            load_options=options.load_options, threads=options.threads,
            memory_budget_bytes=int(options.memory_budget_gb * 1e9) if options.memory_budget_gb is not None else None))
        try:
            engine = ClusterEngine(cluster, store_dir=options.store, registry=registry,
                                   warm=[default_model] if default_model in {s.id for s in registry.specs()} else [])
        except BaseException:
            cluster.close()
            raise
    try:
        return _serve(options, engine, stop, on_ready, keys, allow, default_model, device, conform_memory)
    finally:
        if cluster is not None:
            cluster.close()


def _serve(options: ServeOptions, engine: Engine, stop: threading.Event,
           on_ready: Callable[[dict[str, str]], None] | None, keys: CurveKeys | None, allow: AllowList,
           default_model: str, device: torch.device, conform_memory: int | None) -> int:
    from loopbridge.engine.frontdoor import FrontDoor

    from .osc_server import OscServer
    from .service import Service
    from .zmq_server import ZmqServer

    door = FrontDoor(engine, prerender_depth=options.prerender, conform_memory_bytes=conform_memory)
    service = Service(door, default_model=default_model, export_dir=options.export_dir,
                      allowed_paths=options.allow_paths, default_loudness_lufs=options.loudness_lufs)
    log.info("clients may name files inside: %s", ", ".join(str(folder) for folder in service.allowed.folders))
    ids = _list_models(service)
    _warm(service, default_model, ids, explicit=options.model is not None)
    service.start()
    log_line = requests_log.info if options.log_requests else None
    zmq_server = ZmqServer(service, options.zmq, options.events, keys=keys, request_log=log_line)
    osc_server: OscServer | None = None
    previous = _install_signals(stop)
    try:
        zmq_server.start()
        if options.osc is not None:
            osc_server = OscServer(service, options.osc[0], options.osc[1], allow=allow, request_log=log_line)
            osc_server.start()
        where = {"zmq": zmq_server.endpoint, "events": zmq_server.events_endpoint or "off",
                 "osc": f"{osc_server.address[0]}:{osc_server.address[1]}" if osc_server else "off",
                 "device": str(device) if options.cluster is None else options.device, "dtype": options.dtype,
                 "default_model": default_model,
                 "store": str(door.store_root), "curve": "on" if keys else "off", "inbox": str(service.inbox),
                 "conform_memory": f"{conform_memory / 1e9:.1f} GB" if conform_memory else "unbounded"}
        if options.cluster is not None:
            where["cluster"] = options.cluster
        print(f"{READY_LINE}: " + ", ".join(f"{k} {v}" for k, v in where.items()), file=sys.stderr, flush=True)
        if on_ready is not None:
            on_ready(where)
        while not stop.wait(0.2):
            pass
        log.info("stopping: cancelling queued jobs and the running batch")
    finally:
        started = time.monotonic()
        service.stop(timeout=30)
        time.sleep(0.2)  # let the cancellation replies leave the sockets
        zmq_server.stop()
        if osc_server is not None:
            osc_server.stop()
        _restore_signals(previous)
        log.info("stopped cleanly in %.1f s", time.monotonic() - started)
    return 0


def _warm(service: object, model: str, ids: list[str], explicit: bool) -> None:
    from loopbridge.engine.errors import LoopbridgeError, RequestError

    from .service import Service

    assert isinstance(service, Service)  # typed loosely to keep the heavy import lazy
    if model not in ids and not explicit:
        available = ", ".join(ids) if ids else "none"
        log.warning("no default model is installed (the embedded weights are missing): requests must name a "
                    "model; models available: %s", available)
        return
    started = time.monotonic()
    try:
        service.warm(model)
    except LoopbridgeError as exc:
        if explicit or isinstance(exc, RequestError):
            raise  # a bad option value (a scheduler the model lacks): said at once, not on every request
        log.warning("default model %r cannot be loaded: %s", model, exc)
        return
    log.info("model %r warm in %.1f s", model, time.monotonic() - started)


def _list_models(service: object) -> list[str]:
    """Answer ``models`` once before the sockets open, and return the models' ids. Listing reads each
    model's capabilities, which imports its family's code: seconds of imports on a busy machine (the
    default model's took 3.3-4.8 s at load average 8-10 on 2 cores) that a client's first ``models``,
    ``capabilities`` or ``history`` request would otherwise wait for (they are answered one after
    another, off the socket loop). A gateway of ``--cluster`` warms no model in process, so there it
    is the first request that would pay."""
    from .service import Service

    assert isinstance(service, Service)  # typed loosely to keep the heavy import lazy
    started = time.monotonic()
    listed = service.models()
    log.info("%d model(s) listed in %.1f s", len(listed), time.monotonic() - started)
    return [row["id"] for row in listed]


def _install_signals(stop: threading.Event) -> dict[int, object]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, object] = {}
    count = {"n": 0}

    def handler(signum: int, frame: FrameType | None) -> None:
        count["n"] += 1
        if count["n"] > 1:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting for the clean shutdown
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore_signals(previous: dict[int, object]) -> None:
    for signum, old in previous.items():
        signal.signal(signum, old)  # type: ignore[arg-type]
