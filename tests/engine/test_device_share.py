"""How a cluster's replicas on one device let interactive work go first (engine/replica.py's
DeviceShare): real processes, a real folder; no Ray needed."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

from loopbridge.engine.replica import DeviceShare


def _hold_interactive(folder: str, entered: multiprocessing.synchronize.Event,
                      release: multiprocessing.synchronize.Event) -> None:
    with DeviceShare(Path(folder)).interactive():
        entered.set()
        release.wait(60)


def _other_replica(folder: Path) -> tuple[multiprocessing.process.BaseProcess, multiprocessing.synchronize.Event]:
    context = multiprocessing.get_context("fork")
    entered, release = context.Event(), context.Event()
    process = context.Process(target=_hold_interactive, args=(str(folder), entered, release))
    process.start()
    assert entered.wait(60), "the other replica never started its interactive batch"
    return process, release


def test_a_replica_sees_another_replicas_interactive_batch_until_it_ends(tmp_path: Path) -> None:
    share = DeviceShare(tmp_path / "interactive-cpu")
    assert not share.busy()
    process, release = _other_replica(share.folder)
    try:
        assert share.busy()
    finally:
        release.set()
        process.join(60)
    assert process.exitcode == 0
    assert not share.busy()
    assert not os.listdir(share.folder)  # its batch's mark went with it


def test_a_replicas_own_interactive_batch_does_not_pause_it(tmp_path: Path) -> None:
    share = DeviceShare(tmp_path / "interactive-cpu")
    with share.interactive():
        assert not share.busy()


def test_a_killed_replicas_mark_pauses_nobody_and_is_removed(tmp_path: Path) -> None:
    share = DeviceShare(tmp_path / "interactive-cpu")
    process, _release = _other_replica(share.folder)
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)  # killed mid-batch: its mark stays behind
    process.join(60)
    assert len(os.listdir(share.folder)) == 1
    assert not share.busy()
    assert not os.listdir(share.folder)

