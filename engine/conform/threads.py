"""A step of the conform split over two threads, where the machine has a second core for it.

The stage's heavy steps are numpy and scipy work on large arrays (pocketfft's transforms, ufunc loops,
IIR filters) that releases the GIL while it runs, so a second thread doing another part of the same step
takes it off the wall time. Every split here gives the same result, to the bit, as doing the parts one
after the other: each part writes arrays, or stretches of one, that no other part reads or writes, and
nothing is summed across parts in an order that could change. With :data:`TWO_THREADS` off (or one
core) the parts run one after the other in the calling thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


#: split the steps that can be split over two threads (off on a machine with one core)
TWO_THREADS = _cores() > 1

_T = TypeVar("_T")
_U = TypeVar("_U")


#: the worker threads, started once and kept: a thread that has slept wakes to a core at once where a new one
#: queues behind what the machine is running already. Two, so that conforms running together (and a split
#: inside a part of another) find one free most of the time; a part no worker has taken yet when the caller
#: is done with its own is taken back and done by the caller, so a caller never waits on a queue.
_WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="conform-split")


def both(first: Callable[[], _T], second: Callable[[], _U]) -> tuple[_T, _U]:
    """``(first(), second())``, ``second`` run in a worker thread while ``first`` runs in this one (one after
    the other when :data:`TWO_THREADS` is off, or when no worker has taken ``second`` by the time ``first`` is
    done). An exception of either is raised here once both have ended."""
    if not TWO_THREADS:
        return first(), second()
    later = _WORKERS.submit(second)
    try:
        done = first()
    except BaseException:
        if not later.cancel():
            wait([later])
        raise
    if later.cancel():
        return done, second()
    return done, later.result()


def each(tasks: Sequence[Callable[[], _T]]) -> list[_T]:
    """The results of ``tasks``, in their order; this thread and a worker each take the next task not yet
    taken, so the two stay busy however unequal the tasks are (all in this thread, in order, when
    :data:`TWO_THREADS` is off or there is one task). An exception of any is raised here once both threads
    have ended (the tasks not yet taken are then left undone)."""
    if not TWO_THREADS or len(tasks) < 2:
        return [task() for task in tasks]
    results: list[_T | None] = [None] * len(tasks)
    lock = threading.Lock()
    taken = iter(range(len(tasks)))
    failed = threading.Event()

    def work() -> None:
        while not failed.is_set():
            with lock:
                index = next(taken, None)
            if index is None:
                return
            try:
                results[index] = tasks[index]()
            except BaseException:
                failed.set()
                raise

    both(work, work)
    return results  # type: ignore[return-value]
