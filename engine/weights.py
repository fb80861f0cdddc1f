"""Resident models under a memory budget, least recently used evicted first.

A model in use (inside :meth:`WeightCache.use`) is pinned and never evicted mid-job. Loads and
evictions are reported to an optional event callback, so a server can publish them.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import ModelLoadError, OutOfMemoryError
from .models.base import LoadOptions, ModelBackend
from .models.registry import ModelRegistry, ModelSpec, backend_class

EventCallback = Callable[[str, dict[str, Any]], None]

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None → CUDA when present, else CPU; anything else as given (checked)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from .errors import RequestError

        raise RequestError("device", str(device), "cpu, or cuda on a machine with a CUDA GPU")
    return dev


def estimate_bytes(path: Path) -> int:
    """Bytes a model folder's weights will take once loaded (sum of weight files on disk)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)


@dataclass
class _Entry:
    spec: ModelSpec
    backend: ModelBackend
    bytes: int
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
            self.on_event(event, fields)

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
            self._make_room(estimate_bytes(spec.path))
            backend = self._load(spec)
            size = backend.memory_bytes() or estimate_bytes(spec.path)
            with self._lock:
                entry = _Entry(spec=spec, backend=backend, bytes=size, users=1)
                self._entries[model_id] = entry
                self._emit("model_loaded", model=model_id, family=spec.family, bytes=size, device=str(self.device))
                self._make_room(0)
            return entry

    def _load(self, spec: ModelSpec) -> ModelBackend:
        cls = backend_class(spec.family)
        started = time.perf_counter()
        try:
            backend = cls.load(spec.path, device=self.device, dtype=self.dtype, options=self.options)
        except torch.cuda.OutOfMemoryError as exc:
            raise OutOfMemoryError(f"loading model {spec.id!r} ran out of accelerator memory") from exc
        except (ModelLoadError, OutOfMemoryError):
            raise
        except Exception as exc:  # a corrupt checkpoint raises anything from safetensors/torch/json
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
                {"model": k, "family": e.spec.family, "bytes": e.bytes, "in_use": e.users > 0}
                for k, e in self._entries.items()
            ]

    def is_resident(self, model_id: str) -> bool:
        with self._lock:
            return model_id in self._entries

    def get_loaded(self, model_id: str) -> ModelBackend | None:
        with self._lock:
            entry = self._entries.get(model_id)
            return entry.backend if entry else None
