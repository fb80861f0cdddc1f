"""The two-box studio of README.md on one machine: a head (``loopbridge worker --head``), a second node
joining it (``loopbridge worker --join``), ``loopbridge serve --cluster`` rendering on replicas that
Ray placed on the cluster, and a client's render answered.

    .venv/bin/python scripts/two_box_check.py [--head-cpus N] [--node-cpus N] [--replicas N] [--tls [--host ADDRESS]]

Without ``--tls`` every node is on loopback, with the token the head makes. With ``--tls`` the steps
are README's for two machines, both on this machine's address beyond loopback (``--host``; default:
the address Ray gives this machine): a token and a certificate authority made as README's step 1
makes them (``openssl``), the head and the joined node started with ``--host``, ``--cluster-token``
and ``--cluster-tls``, and ``serve --cluster`` with the same token and certificates.

Prints each step with its time, where each replica runs (the head's node or the joined one) and
``two-box: ok`` when the render answered from replicas where they belong: on the joined node alone,
or, when it offers no CPU (``--node-cpus 0``, README's laptop), on the head alone; exits 1 otherwise.
Every process it started is stopped, and its folder (under /tmp) removed, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER_READY = re.compile(r"loopbridge worker: ready: (head|joined) (\S+), temp \S+, token (\S+),")
SERVE_READY = re.compile(r"loopbridge serve: ready: zmq (\S+),")

#: a driver that joins the cluster at argv[1] (from this machine's address argv[2]) and prints, as JSON,
#: each replica's node and whether it is the head
PLACEMENT = """
import json, sys, ray
from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE
ray.init(address=sys.argv[1], configure_logging=False, log_to_driver=False, _node_ip_address=sys.argv[2])
heads = {node["NodeID"] for node in ray.nodes() if node["Alive"] and "node:__internal_head__" in node["Resources"]}
controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
running = ray.get(controller._all_running_replicas.remote())
print(json.dumps([{"replica": info.actor_name, "node": info.node_id, "head": info.node_id in heads}
                  for infos in running.values() for info in infos]))
"""


#: README's step 1 (a two-box studio) for the addresses that follow it: the token, a certificate
#: authority, and a certificate for each address signed by it (run by bash in the folder it makes them in)
MAKE_CERTIFICATES = r"""
python3 -c 'import secrets; print(secrets.token_hex(32))' > token
openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj /CN=studio-ca -keyout ca.key -out ca.crt
for host in "$@"; do
  mkdir -p tls-$host && cp ca.crt tls-$host/
  openssl req -newkey rsa:3072 -nodes -subj /CN=$host -keyout tls-$host/node.key -out tls-$host/node.csr
  openssl x509 -req -in tls-$host/node.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile <(printf "subjectAltName=IP:$host,IP:127.0.0.1") -out tls-$host/node.crt
done
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def beyond_loopback() -> str:
    """The address Ray gives this machine's nodes (not loopback), or exit saying there is none."""
    import ray.util

    address = ray.util.get_node_ip_address()
    if address.startswith("127.") or address == "::1":
        raise SystemExit(f"this machine has no address beyond loopback (Ray gives it {address}): give --host")
    return address


def make_certificates(folder: Path, hosts: list[str]) -> None:
    """The token and certificates of README's step 1 in ``folder``, for ``hosts``."""
    made = subprocess.run(["bash", "-euc", MAKE_CERTIFICATES, "make-certificates", *hosts], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    if made.returncode != 0:
        raise SystemExit(f"README's step 1 failed (exit {made.returncode}):\n{made.stderr[-3000:]}")


def cli() -> list[str]:
    return [sys.executable, "-m", "loopbridge.bridge.cli"]


def wait_for(pattern: re.Pattern[str], log: Path, process: subprocess.Popen[bytes], what: str,
             timeout_s: float = 300.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = pattern.search(log.read_text(errors="replace"))
        if found:
            return found
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{what} did not start (exit {process.poll()}):\n{tail}")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--head-cpus", type=int, default=1, help="CPUs the head offers (default 1)")
    parser.add_argument("--node-cpus", type=int, default=2, help="CPUs the joined node offers (default 2)")
    parser.add_argument("--replicas", type=int, default=1, help="model workers of the default model (default 1)")
    parser.add_argument("--tls", action="store_true",
                        help="README's steps beyond loopback: token and TLS made as its step 1, nodes on --host")
    parser.add_argument("--host", default=None,
                        help="with --tls, this machine's address for both nodes (default: the one Ray gives it)")
    args = parser.parse_args()
    if args.host is not None and not args.tls:
        parser.error("--host is accepted with --tls only (without it every node is on loopback)")

    folder = Path(tempfile.mkdtemp(prefix="lb2box-", dir="/tmp"))  # short: Ray's socket paths are limited
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LOOPBRIDGE_HOME": str(folder / "home"), "PYTHONUNBUFFERED": "1"}
    processes: list[subprocess.Popen[bytes]] = []
    began = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {text}", flush=True)

    def start(name: str, command: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = folder / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        processes.append(process)
        return process, log

    ok = False
    try:
        host, secure, tls = "127.0.0.1", [], None
        if args.tls:
            host = args.host or beyond_loopback()
            make_certificates(folder, [host])
            tls = folder / f"tls-{host}"
            secure = ["--cluster-token", str(folder / "token"), "--cluster-tls", str(tls)]
            say(f"token and certificates for {host} made as README's step 1 says")
        head, head_log = start("head", [*cli(), "worker", "--head", "--host", host, "--port", str(free_port()),
                                        "--num-cpus", str(args.head_cpus), "--num-gpus", "0",
                                        "--temp-dir", str(folder / "ray"), *secure])
        found = wait_for(WORKER_READY, head_log, head, "the head")
        address, token = found.group(2), found.group(3)
        say(f"head ready at {address}, token {token}, tls {'on' if tls else 'off'}")
        secure = secure or ["--cluster-token", token]
        node, node_log = start("node", [*cli(), "worker", "--join", address, "--host", host,
                                        "--num-cpus", str(args.node_cpus), "--num-gpus", "0", *secure])
        wait_for(WORKER_READY, node_log, node, "the joined node")
        say("second node joined")
        serve, serve_log = start("serve", [*cli(), "serve", "--zmq", "tcp://127.0.0.1:*", "--events",
                                           "tcp://127.0.0.1:*", "--osc", "off", "--store", str(folder / "store"),
                                           "--device", "cpu", "--threads", "1", "--cluster", address,
                                           *secure, "--replicas", str(args.replicas)])
        endpoint = wait_for(SERVE_READY, serve_log, serve, "serve --cluster").group(1)
        say(f"serve --cluster {address} ready at {endpoint}")

        from loopbridge.bridge.client import Client
        from loopbridge.bridge.security import ClusterSecurity

        with Client(endpoint) as client:
            reply = client.generate(prompt="kick", kind="one-shot", duration_s=0.5, steps=4, seed=7, tempo_bpm=120,
                                    timeout=300)
        wav = bytes(reply.samples[0].wav)
        say(f"render answered: {len(reply.samples)} sample, {len(wav)} bytes of WAV ({wav[:4]!r})")
        placed = subprocess.run([sys.executable, "-c", PLACEMENT, address, host], capture_output=True, text=True,
                                env={**env, **ClusterSecurity.load(Path(token), tls).environment()}, timeout=120)
        if placed.returncode != 0:
            raise SystemExit(f"cannot list the replicas:\n{placed.stderr[-3000:]}")
        replicas = json.loads(placed.stdout.strip().splitlines()[-1])
        for replica in replicas:
            say(f"replica {replica['replica']} on the "
                f"{'head' if replica['head'] else 'joined node'} ({replica['node'][:12]})")
        on_head = args.node_cpus == 0  # README's laptop joins without CPUs for model workers
        ok = wav[:4] == b"RIFF" and len(replicas) == args.replicas and all(r["head"] is on_head for r in replicas)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        say("stopped")
        if not ok:
            for log in sorted(folder.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}")
        shutil.rmtree(folder, ignore_errors=True)
    print("two-box: ok" if ok else "two-box: FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
