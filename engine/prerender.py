"""Speculative renders: after each interactive request, its neighbours are rendered in the background.

A musician turning a Variation knob moves to the next seed; one turning a Morph knob moves a
little along the line between two prompts. Both are predictable, so after each request the next
``depth`` variations (and the previous one), and for models that can morph the nearby morph
positions, are rendered at background priority and conformed with the same settings. When the knob
arrives there, the answer is already a file in the store.

Background jobs never delay an interactive one (the scheduler runs interactive tasks first), and
nothing is queued twice: a neighbour already stored, or already on its way, is skipped.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import BusyError, LoopbridgeError
from .request import VARIATION_MAX, GenerateRequest

if TYPE_CHECKING:  # the scheduler (and torch) only where jobs run, not where DEFAULT_DEPTH is read
    from .frontdoor import FrontDoor, Order
    from .scheduler import Job

log = logging.getLogger(__name__)

#: how many following variations are pre-rendered after each request
DEFAULT_DEPTH = 4
#: morph positions are pre-rendered on this grid (a morph knob is snapped to it to hit the store)
MORPH_STEP = 0.05
#: how many grid steps on each side of the current morph position
MORPH_DEPTH = 2


def snap_morph(amount: float, step: float = MORPH_STEP) -> float:
    """``amount`` (0–1) on the pre-render grid, so a knob position finds a pre-rendered file."""
    return round(min(1.0, max(0.0, round(amount / step) * step)), 6)


class Prerenderer:
    """Queues the neighbours of each interactive order through the front door (see the module docstring).

    ``depth`` of 0 turns pre-rendering off. ``on_event(topic, fields)`` hears ``"prerender"`` when
    a neighbour has been stored (fields: ``render_keys``, ``variation``, ``morph_amount``).
    """

    def __init__(
        self,
        door: FrontDoor,
        depth: int = DEFAULT_DEPTH,
        morph_step: float = MORPH_STEP,
        morph_depth: int = MORPH_DEPTH,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        if depth < 0 or morph_depth < 0 or not 0 < morph_step <= 1:
            raise ValueError(f"depth={depth}, morph_depth={morph_depth}, morph_step={morph_step}: out of range")
        self.door = door
        self.depth = depth
        self.morph_step = morph_step
        self.morph_depth = morph_depth
        self.on_event = on_event
        self._lock = threading.Lock()
        self._inflight: dict[Order, Job] = {}
        self._ids = itertools.count(1)
        self.counters = {"queued": 0, "stored": 0, "skipped": 0, "failed": 0}

    def neighbours(self, request: GenerateRequest) -> list[GenerateRequest]:
        """The requests worth rendering next, most likely first."""
        if self.depth == 0:
            return []
        out = [request.with_variation(v) for v in range(request.variation + 1,
                                                         min(VARIATION_MAX, request.variation + self.depth) + 1)]
        if request.variation > 0:
            out.insert(1 if out else 0, request.with_variation(request.variation - 1))
        if request.morph_prompt is not None and self.morph_depth > 0:
            try:
                can_morph = self.door.capabilities(request.model).morph
            except LoopbridgeError:
                can_morph = False
            if can_morph:
                here = snap_morph(request.morph_amount, self.morph_step)
                for k in range(1, self.morph_depth + 1):
                    for amount in (here + k * self.morph_step, here - k * self.morph_step):
                        if -1e-9 <= amount <= 1 + 1e-9:
                            out.append(request.replace(morph_amount=snap_morph(amount, self.morph_step)))
        return out

    def after(self, order: Order) -> list[Job]:
        """Queue the neighbours of ``order`` (a background order of one request, fitted as it is) that
        the store does not hold and that are not on their way already.

        Never raises for a neighbour that cannot be made (it is skipped); returns the jobs queued.
        """
        assert order.request is not None  # the front door pre-renders around requests only
        queued = []
        for neighbour in self.neighbours(order.request):
            wanted = dataclasses.replace(order, request=neighbour)
            with self._lock:
                inflight = self._inflight.get(wanted)
                if inflight is not None and not inflight.finished:
                    self.counters["skipped"] += 1
                    continue
            try:
                job = self.door.submit(wanted, job_id=f"prerender-{next(self._ids)}",
                                       on_done=functools.partial(self._finished, order=wanted))
            except BusyError:
                break
            except LoopbridgeError:
                continue
            if job.answered:  # the store had it
                with self._lock:
                    self.counters["skipped"] += 1
                continue
            with self._lock:
                if not job.finished:
                    self._inflight[wanted] = job
                self.counters["queued"] += 1
            queued.append(job)
        return queued

    def _finished(self, job: Job, order: Order) -> None:
        if job.answered:
            return  # counted as skipped by after()
        with self._lock:
            if self._inflight.get(order) is job:
                del self._inflight[order]
            if job.error is None:
                self.counters["stored"] += 1
            else:
                self.counters["failed"] += 1
        request = order.request
        assert request is not None
        if job.error is not None:
            log.debug("pre-render %s of %r not stored: %s", job.id, request.prompt, job.error)
            return
        if self.on_event is not None:
            try:
                self.on_event("prerender", {"render_keys": job.render_keys, "variation": request.variation,
                                            "morph_amount": request.morph_amount if request.morph_prompt else None,
                                            "cached": job.cached})
            except Exception:
                log.exception("pre-render event callback failed")

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"depth": self.depth, "inflight": sum(1 for j in self._inflight.values() if not j.finished),
                    **self.counters}
