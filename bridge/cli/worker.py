"""``loopbridge worker``: a Ray node for model workers, the head of a cluster or one joining it.

    loopbridge worker --head                      # this machine, loopback only
    loopbridge worker --head --host 192.168.1.20 --cluster-token token --cluster-tls tls/
    loopbridge worker --join 192.168.1.20:6379 --host 192.168.1.21 --cluster-token token --cluster-tls tls/

Runs ``ray start --block`` with safe settings until Ctrl-C or SIGTERM, then stops the node (its Ray
processes go with it): loopback unless told otherwise, and beyond it only with token authentication
and TLS (refused without them, as ``serve`` refuses a LAN port without CURVE keys); no dashboard; no
usage statistics; a temp folder of its own. Ray binds its ports on every interface whatever address
the node is given, so a head always runs with token authentication: without ``--cluster-token`` it
makes a token in its temp folder (``auth_token``, readable by this user only), which gateways and
joining nodes name with ``--cluster-token``. ``loopbridge serve --cluster HOST:PORT`` then deploys the
model workers on the cluster.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from .common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, InputError, fail, positive_int

#: printed on stderr once the node runs (scripts and tests wait for it)
READY_LINE = "loopbridge worker: ready"
#: said when the node had to be killed (it did not stop within :data:`STOP_GRACE_S` of its interrupt)
KILLED_LINE = "loopbridge worker: the Ray node did not stop when interrupted"
#: what ``ray start`` prints once its node runs
_RAY_STARTED = "Ray runtime started"
#: how long the node has to stop after Ctrl-C or SIGTERM before its processes are killed (on a busy
#: machine ``ray start --block`` took over a minute, and whoever sent SIGTERM killed this command
#: first, leaving the node running)
STOP_GRACE_S = 20.0


def add_parsers(sub: Any) -> None:
    from ..security import DEFAULT_CLUSTER_PORT

    worker = sub.add_parser("worker", help="run a Ray node for model workers (the cluster's head, or joining it); "
                                           "needs loopbridge[cluster]")
    role = worker.add_mutually_exclusive_group(required=True)
    role.add_argument("--head", action="store_true", help="start a cluster: `serve --cluster HOST:PORT` joins it")
    role.add_argument("--join", default=None, metavar="HOST:PORT", help="join the cluster whose head listens there")
    worker.add_argument("--host", default="127.0.0.1",
                        help="this node's address for the cluster (default 127.0.0.1: this machine only)")
    worker.add_argument("--port", type=positive_int("port", 1, 65535), default=DEFAULT_CLUSTER_PORT,
                        help=f"the head's port (default {DEFAULT_CLUSTER_PORT})")
    worker.add_argument("--num-cpus", type=positive_int("num-cpus", 0, 4096), default=None,
                        help="CPUs this node offers (default: all); each CPU model worker takes one, so 0 keeps "
                             "them off a node that only runs the gateway")
    worker.add_argument("--num-gpus", type=positive_int("num-gpus", 0, 256), default=None,
                        help="GPUs this node offers (default: those it has); each GPU model worker takes one")
    worker.add_argument("--cluster-token", type=Path, default=None, metavar="FILE",
                        help="the cluster's shared token (Ray token authentication): required beyond loopback")
    worker.add_argument("--cluster-tls", type=Path, default=None, metavar="DIR",
                        help="ca.crt, node.crt and node.key for TLS between nodes: required beyond loopback")
    worker.add_argument("--temp-dir", type=Path, default=None, metavar="DIR",
                        help="Ray's sessions, logs and sockets (default: <data dir>/ray)")
    worker.set_defaults(handler=worker_command)


def ray_start_command(args: argparse.Namespace, temp_dir: Path) -> list[str]:
    """The ``ray start`` command line for ``args`` (checked already)."""
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
               "--node-ip-address", args.host]
    if args.head:
        command += ["--head", "--port", str(args.port), "--include-dashboard=false", "--temp-dir", str(temp_dir)]
    else:
        command += ["--address", args.join]
    if args.num_cpus is not None:
        command += ["--num-cpus", str(args.num_cpus)]
    if args.num_gpus is not None:
        command += ["--num-gpus", str(args.num_gpus)]
    return command


def worker_command(args: argparse.Namespace) -> int:
    from loopbridge.engine.cluster import default_temp_dir, import_ray
    from loopbridge.engine.errors import LoopbridgeError

    from ..security import ClusterSecurity, SecurityError, check_cluster_host, cluster_host, default_cluster_token

    temp_dir = (args.temp_dir or default_temp_dir()).expanduser().resolve()
    try:
        # a head without a token given makes one (Ray listens on every interface, loopback or not)
        token = args.cluster_token or (default_cluster_token(temp_dir) if args.head else None)
        security = ClusterSecurity.load(token, args.cluster_tls)
        check_cluster_host(args.host, security, "host")
        if args.join is not None:
            check_cluster_host(cluster_host(args.join), security, "join")
    except (SecurityError, ValueError) as exc:
        raise InputError(str(exc)) from None
    try:
        import_ray()
    except LoopbridgeError as exc:
        fail(str(exc))
        return EXIT_FAILED
    temp_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **security.environment()}
    stop = threading.Event()
    node: list[subprocess.Popen[str]] = []
    # the handlers go in before the node starts: a signal this process ignores (a background job of a
    # shell without job control ignores SIGINT) would stay ignored in `ray start`, which then could
    # not be interrupted; one that is handled starts there as the default
    previous = _install_signals(stop, node)
    try:
        process = subprocess.Popen(ray_start_command(args, temp_dir), env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    except BaseException:
        _restore_signals(previous)
        raise
    node.append(process)
    if stop.is_set():  # asked to stop while it started
        _interrupt(process)
    where = f"{args.host}:{args.port}" if args.head else args.join
    try:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stderr.write(line)
            if _RAY_STARTED in line:
                role = "head" if args.head else "joined"
                print(f"{READY_LINE}: {role} {where}, temp {temp_dir}, token {security.token_file or 'off'}, "
                      f"tls {'on' if security.tls_dir else 'off'} (serve --cluster {where})",
                      file=sys.stderr, flush=True)
        code = process.wait()
    finally:
        _stop(process)
        _restore_signals(previous)
    if stop.is_set():
        return EXIT_OK
    fail(f"the Ray node exited with status {code}")
    return EXIT_BAD_INPUT if code == 2 else EXIT_FAILED


def _install_signals(stop: threading.Event, node: list[subprocess.Popen[str]]) -> dict[int, object]:
    """Ctrl-C and SIGTERM set ``stop`` and interrupt the node (``node``: empty until it has started),
    killing it if it has not stopped :data:`STOP_GRACE_S` later."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, object] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            return
        stop.set()
        for process in node:
            _interrupt(process)
            deadline = threading.Timer(STOP_GRACE_S, _kill, (process,))
            deadline.daemon = True
            deadline.start()

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore_signals(previous: dict[int, object]) -> None:
    for signum, old in previous.items():
        signal.signal(signum, old)  # type: ignore[arg-type]


def _interrupt(process: subprocess.Popen[str]) -> None:
    # `ray start --block` stops its node's processes when interrupted
    if process.poll() is None:
        process.send_signal(signal.SIGINT)


def _stop(process: subprocess.Popen[str], timeout_s: float = STOP_GRACE_S) -> None:
    _interrupt(process)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(process)
        process.wait()


def _kill(process: subprocess.Popen[str]) -> None:
    """Kill the node's processes: ``ray start``'s own session, nobody else's."""
    if process.poll() is None:
        print(f"{KILLED_LINE} ({STOP_GRACE_S:.0f} s): its processes are killed", file=sys.stderr, flush=True)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
