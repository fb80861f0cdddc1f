"""processBlock time while the plugin's network thread receives samples, and Variation-change
latency, measured with plugin/build/loopbridge-bench (the real processor, real ZeroMQ sockets).

    python bench/plugin_process_block.py                # local peer; and a real engine when `loopbridge serve` exists
    python bench/plugin_process_block.py --local-only

"local peer" answers every request at once with a ready 8 s stereo WAV from inside the benchmark
process: it measures the plugin's own share (socket, decode, hand-over, next block). "engine" runs
a real `loopbridge serve` (the tiny Dance Diffusion model the tests build, 2 steps, one-beat
samples) on free ports: the measured pass asks for variations that the warm pass made, so they come
from the engine's store (pre-rendered). Each runs with variations fetched ahead by the plugin
(prefetch depth 1) and without (depth 0: every Variation turn goes to the engine).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "plugin" / "build" / "loopbridge-bench"


def run_bench(args: list[str]) -> str:
    result = subprocess.run([str(BENCH), *args], capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"loopbridge-bench {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


READY = re.compile(r"loopbridge serve: ready: zmq (\S+),")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local-only", action="store_true")
    parser.add_argument("--blocks", type=int, default=1500)
    parser.add_argument("--variations", type=int, default=6)
    args = parser.parse_args()

    subprocess.run(["bash", str(REPO / "plugin" / "build.sh")], check=True, stdout=subprocess.DEVNULL)
    common = ["--blocks", str(args.blocks), "--variations", str(args.variations)]
    for depth in ("0", "1"):
        print(run_bench(["--local-peer", "--prefetch-depth", depth, *common]))

    if args.local_only:
        return 0
    # LOOPBRIDGE_SERVE_PYTHON runs the engine from another checkout's environment
    serve = [os.environ.get("LOOPBRIDGE_SERVE_PYTHON", sys.executable), "-m", "loopbridge.bridge.cli", "serve"]
    if subprocess.run([*serve, "--help"], capture_output=True).returncode != 0:
        print("engine: `loopbridge serve` is not available on this checkout; only the local-peer figures above")
        return 0
    sys.path.insert(0, str(REPO))
    from tests.engine.models.tiny_dance_diffusion import build_tiny_dance_diffusion

    with tempfile.TemporaryDirectory() as home:
        models = Path(home) / "models"
        build_tiny_dance_diffusion(models / "tiny-dd")
        env = {**os.environ, "LOOPBRIDGE_HOME": home, "LOOPBRIDGE_MODELS": str(models), "HF_HUB_OFFLINE": "1",
               "OMP_NUM_THREADS": "1"}
        log_path = Path(home) / "serve.log"
        with log_path.open("w") as log:
            engine = subprocess.Popen([*serve, "--zmq", "tcp://127.0.0.1:*", "--events", "tcp://127.0.0.1:*",
                                       "--osc", "off", "--device", "cpu", "--threads", "1", "--model", "tiny-dd",
                                       "--store", str(Path(home) / "store")], env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
        try:
            endpoint = None
            deadline = time.monotonic() + 180
            while endpoint is None and time.monotonic() < deadline and engine.poll() is None:
                found = READY.search(log_path.read_text(errors="replace"))
                endpoint = found.group(1) if found else None
                time.sleep(0.1)
            if endpoint is None:
                raise SystemExit(f"loopbridge serve did not start:\n{log_path.read_text()}")
            for depth in ("0", "1"):
                print(run_bench(["--endpoint", endpoint, "--model", "tiny-dd", "--steps", "2", "--length-index", "0",
                                 "--prefetch-depth", depth, *common]))
        finally:
            engine.terminate()
            engine.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
