"""processBlock time while the plugin's network thread receives samples, and Variation-change
latency, measured with plugin/build/loopbridge-bench (the real processor, real ZeroMQ sockets).

    python bench/plugin_process_block.py                 # local peer, and a real engine when `loopbridge serve` exists
    python bench/plugin_process_block.py --local-only

"local peer" answers every request at once with a ready WAV from inside the benchmark process:
it measures the plugin's own share (socket, decode, hand-over, next block). "engine" runs a real
`loopbridge serve` on free ports: the measured pass asks for variations that the warm pass made,
so they come from the engine's store (pre-rendered).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "plugin" / "build" / "loopbridge-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_bench(args: list[str]) -> str:
    result = subprocess.run([str(BENCH), *args], capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"loopbridge-bench {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local-only", action="store_true")
    parser.add_argument("--blocks", type=int, default=1500)
    parser.add_argument("--variations", type=int, default=6)
    args = parser.parse_args()

    subprocess.run(["bash", str(REPO / "plugin" / "build.sh")], check=True, stdout=subprocess.DEVNULL)
    common = ["--blocks", str(args.blocks), "--variations", str(args.variations)]
    print(run_bench(["--local-peer", *common]))

    if args.local_only:
        return 0
    probe = subprocess.run([sys.executable, "-m", "loopbridge.bridge.cli", "serve", "--help"], capture_output=True)
    if probe.returncode != 0:
        print("engine: `loopbridge serve` is not available on this checkout; only the local-peer figures above")
        return 0
    with tempfile.TemporaryDirectory() as home:
        port = free_port()
        env = {**os.environ, "LOOPBRIDGE_HOME": home}
        serve = subprocess.Popen(
            [sys.executable, "-m", "loopbridge.bridge.cli", "serve", "--zmq-port", str(port), "--events-port",
             str(free_port()), "--osc-port", str(free_port()), "--store", str(Path(home) / "store"), "--device", "cpu"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(2.0)
            print(run_bench(["--endpoint", f"tcp://127.0.0.1:{port}", *common]))
        finally:
            serve.terminate()
            serve.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
