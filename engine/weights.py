"""Resident models under a memory budget, least recently used evicted first.

A model in use (inside :meth:`WeightCache.use`) is pinned and never evicted mid-job. Loads and
evictions are reported to an optional event callback, so a server can publish them.

On a GPU, a model that would not fit in what the budget leaves beside the models in use is loaded
with CPU offload by itself (:func:`offload_needed`): its weights stay in RAM and each component
moves to the GPU only while it runs, slower but it runs, where loading it whole would run out of
memory. The same happens when loading it whole runs out of memory after every idle model has gone.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .errors import LoopbridgeError, ModelLoadError, OutOfMemoryError
from .models.base import LoadOptions, ModelBackend
from .models.registry import ModelRegistry, ModelSpec, backend_class

log = logging.getLogger(__name__)

EventCallback = Callable[[str, dict[str, Any]], None]

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


def mps_available() -> bool:
    """Whether Apple's Metal (MPS) backend can run here: a Mac with Apple silicon or a Metal GPU,
    and a torch built with it."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None → CUDA when present, else Apple's MPS when present, else the CPU; ``"cpu"``,
    ``"cuda"``/``"cuda:N"`` or ``"mps"`` as given, checked.

    Raises :class:`RequestError` for a device this machine lacks or a name torch does not know.
    """
    from .errors import RequestError

    accepted = "auto, cpu, cuda (a CUDA GPU) or mps (Apple's Metal on a Mac)"
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise RequestError("device", str(device), accepted) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RequestError("device", str(device), "cpu, or cuda on a machine with a CUDA GPU")
    if dev.type == "mps" and not mps_available():
        raise RequestError("device", str(device), "cpu, or mps on a Mac whose torch has Metal (MPS)")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise RequestError("device", str(device), accepted)
    return dev


def default_budget_bytes(device: torch.device, fraction: float = 0.8) -> int | None:
    """A memory budget for resident weights when none is given: ``fraction`` of the GPU's memory on
    CUDA, of the memory Metal recommends for the GPU on MPS, of the memory available now on a CPU
    (None when that cannot be read).
    """
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return int(torch.cuda.get_device_properties(index).total_memory * fraction)
    if device.type == "mps":
        # The GPU shares the Mac's memory: Metal says how much of it the GPU should use.
        return int(torch.mps.recommended_max_memory() * fraction)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * fraction)
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") * fraction)
    except (ValueError, OSError, AttributeError):
        return None


def estimate_bytes(path: Path) -> int:
    """Bytes a model folder's weights will take once loaded (sum of weight files on disk)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)


def offload_needed(device: torch.device, model_bytes: int, budget_bytes: int | None, held_bytes: int) -> bool:
    """Whether a model of ``model_bytes`` must be loaded with CPU offload to stay within the budget.

    Only on a GPU (on the CPU the weights live in RAM anyway), and only when the model is larger
    than what ``budget_bytes`` leaves beside ``held_bytes`` (models in use, which are never evicted).
    No budget means no limit.
    """
    if device.type != "cuda" or budget_bytes is None:
        return False
    return model_bytes > budget_bytes - held_bytes


@dataclass
class _Entry:
    spec: ModelSpec
    backend: ModelBackend
    bytes: int
    offloaded: bool = False
    users: int = 0
    loaded_at: float = field(default_factory=time.monotonic)


class WeightCache:
    """Loads models on first use and keeps them resident within ``budget_bytes``.

    ``budget_bytes`` of None means no limit. A single model larger than the budget is still
    loaded (alone), since refusing would make it unusable; everything unpinned is evicted first.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        device: str | torch.device | None = "auto",
        dtype: torch.dtype = torch.float32,
        budget_bytes: int | None = None,
        options: LoadOptions | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        self.registry = registry
        self.device = resolve_device(device)
        self.dtype = dtype
        self.budget_bytes = budget_bytes
        self.options = options or LoadOptions()
        self.on_event = on_event
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.RLock()
        self._loading: dict[str, threading.Lock] = {}

    def _emit(self, event: str, **fields: Any) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event, fields)
            except Exception:  # a listener's failure must not fail a load or an eviction
                log.exception("weight cache event callback failed")

    @contextmanager
    def use(self, model_id: str) -> Iterator[ModelBackend]:
        """The loaded backend for ``model_id``, pinned for the duration of the ``with`` block."""
        entry = self._acquire(model_id)
        try:
            yield entry.backend
        finally:
            with self._lock:
                entry.users -= 1

    def _acquire(self, model_id: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is not None:
                entry.users += 1
                self._entries.move_to_end(model_id)
                return entry
            load_lock = self._loading.setdefault(model_id, threading.Lock())
        with load_lock:  # one load per model, even when two threads ask at once
            with self._lock:
                entry = self._entries.get(model_id)
                if entry is not None:
                    entry.users += 1
                    self._entries.move_to_end(model_id)
                    return entry
            spec = self.registry.resolve(model_id)
            needed = estimate_bytes(spec.path)
            self._make_room(needed)
            options = self.options
            if not options.cpu_offload and offload_needed(self.device, needed, self.budget_bytes,
                                                          self._held_bytes()):
                options = self._offloading(model_id, needed, "it does not fit the memory budget")
            try:
                backend = self._load(spec, options)
            except OutOfMemoryError:
                # other models may still hold the accelerator: evict every unpinned one, try once more,
                # and on a GPU with offload when every idle model is already gone
                evicted = self._evict_unpinned("out of memory loading " + model_id)
                if not evicted:
                    if options.cpu_offload or self.device.type != "cuda":
                        raise
                    options = self._offloading(model_id, needed, "loading it whole ran out of GPU memory")
                backend = self._load(spec, options)
            offloaded = options.cpu_offload and self.device.type == "cuda"  # on the CPU it has nothing to do
            size = backend.memory_bytes() or needed
            if offloaded:
                # only one component is on the GPU at a time: that is what the budget must hold
                size = _largest_module_bytes(backend) or size
            with self._lock:
                entry = _Entry(spec=spec, backend=backend, bytes=size, offloaded=offloaded, users=1)
                self._entries[model_id] = entry
                self._emit("model_loaded", model=model_id, family=spec.family, bytes=size, device=str(self.device),
                           cpu_offload=offloaded)
                self._make_room(0)
            return entry

    def _held_bytes(self) -> int:
        with self._lock:
            return sum(e.bytes for e in self._entries.values() if e.users > 0)

    def _offloading(self, model_id: str, needed: int, why: str) -> LoadOptions:
        budget = "no" if self.budget_bytes is None else f"{self.budget_bytes / 1e9:.1f} GB"
        log.info("model %r (%.1f GB) loads with CPU offload: %s (budget %s)", model_id, needed / 1e9, why, budget)
        self._emit("model_offloaded", model=model_id, bytes=needed, reason=why)
        return replace(self.options, cpu_offload=True)

    def render_settings(self, family: str) -> dict[str, str]:
        """This cache's load settings that change what ``family`` makes (see ``ModelBackend.render_settings``)."""
        return backend_class(family).render_settings(self.device, self.dtype, self.options)

    def _load(self, spec: ModelSpec, options: LoadOptions | None = None) -> ModelBackend:
        cls = backend_class(spec.family)
        started = time.perf_counter()
        try:
            backend = cls.load(spec.path, device=self.device, dtype=self.dtype, options=options or self.options)
        except torch.cuda.OutOfMemoryError as exc:
            raise OutOfMemoryError(f"loading model {spec.id!r} ran out of accelerator memory") from exc
        except LoopbridgeError as exc:
            # a bad option value (RequestError) stays what it is: the user's input, not a broken model
            self._emit("model_load_failed", model=spec.id, error=str(exc))
            raise
        except Exception as exc:  # a corrupt checkpoint raises anything from safetensors/torch/json
            self._emit("model_load_failed", model=spec.id, error=str(exc))
            raise ModelLoadError(f"model {spec.id!r} at {str(spec.path)!r} cannot be loaded: {exc}") from exc
        self._emit("model_load_time", model=spec.id, seconds=round(time.perf_counter() - started, 3))
        return backend

    def _make_room(self, incoming: int) -> None:
        if self.budget_bytes is None:
            return
        with self._lock:
            while self._entries and self.resident_bytes() + incoming > self.budget_bytes:
                victim = next((k for k, e in self._entries.items() if e.users == 0), None)
                if victim is None:
                    return  # everything left is in use: never evict mid-job
                self._evict_locked(victim, reason="memory budget")

    def _evict_locked(self, model_id: str, reason: str) -> None:
        entry = self._entries.pop(model_id)
        entry.backend.unload()
        self._emit("model_evicted", model=model_id, bytes=entry.bytes, reason=reason)
        del entry
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _evict_unpinned(self, reason: str) -> int:
        with self._lock:
            victims = [k for k, e in self._entries.items() if e.users == 0]
            for victim in victims:
                self._evict_locked(victim, reason=reason)
            return len(victims)

    def set_budget(self, budget_bytes: int | None) -> None:
        """Change the budget; unpinned models beyond it are evicted now (least recently used first)."""
        with self._lock:
            self.budget_bytes = budget_bytes
            self._make_room(0)

    def evict(self, model_id: str) -> bool:
        """Evict ``model_id`` now unless it is in use; returns whether it was evicted."""
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is None or entry.users > 0:
                return False
            self._evict_locked(model_id, reason="asked")
            return True

    def resident_bytes(self) -> int:
        with self._lock:
            return sum(e.bytes for e in self._entries.values())

    def resident(self) -> list[dict[str, Any]]:
        """Loaded models, least recently used first."""
        with self._lock:
            return [
                {"model": k, "family": e.spec.family, "bytes": e.bytes, "in_use": e.users > 0,
                 "cpu_offload": e.offloaded}
                for k, e in self._entries.items()
            ]

    def is_resident(self, model_id: str) -> bool:
        with self._lock:
            return model_id in self._entries

    def is_offloaded(self, model_id: str) -> bool:
        """Whether ``model_id`` is resident with CPU offload (asked for, or switched on by the budget)."""
        with self._lock:
            entry = self._entries.get(model_id)
            return entry is not None and entry.offloaded

    def get_loaded(self, model_id: str) -> ModelBackend | None:
        with self._lock:
            entry = self._entries.get(model_id)
            return entry.backend if entry else None


def _largest_module_bytes(backend: ModelBackend) -> int:
    sizes = [sum(t.numel() * t.element_size() for t in list(m.parameters()) + list(m.buffers()))
             for m in backend.modules()]
    return max(sizes, default=0)
