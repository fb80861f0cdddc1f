"""What the conform stage costs, this checkout against another one (``--against DIR``, e.g. a worktree of
main), side by side in one run: each checkout's engine runs in a process of its own (its own ``.venv``), the
two take turns, one measurement at a time, so the shared machine's load falls on both alike.

Measured, as ratios of the loop's duration (target: at most 0.05x):

1. a whole conform of a 4-bar stereo 44.1 kHz loop: Sonic Pi's ``loop_amen_full``, 140 -> 128 BPM at 48 kHz
   (``--sample-rate``),
   warp "complex", its tempo estimated (as ``bench_pre_echo.py`` section 2 and ``bench_real_loops.py``
   section 4) and given;
2. the key moved at the loop's own tempo (``bench_key.py`` section 5): a 4-bar stereo 44.1 kHz piano cadence in
   D (FluidR3, rendered here once) at 120 BPM: the key detection alone, a conform at 120 BPM without a key and
   one moved to F; detection + shift is the detection plus what the key adds to the conform.

Each figure is the best and the median of ``--repeats`` runs, with the load average before and after. Outputs of
the two checkouts are compared too (largest difference against the output's peak).

    python bench/bench_conform_cost.py [--against /path/to/main-worktree] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent
WAYS = ("conform, estimated", "conform, given", "key detection", "own tempo, no key", "own tempo, to F")


def _worker(root: Path, piano: Path, out_rate: int) -> None:
    """Answer each line on stdin (a way's name) with the seconds one run of it took, and save its output."""
    sys.path.insert(0, str(root))
    warnings.filterwarnings("ignore")
    import soundfile as sf
    from loopbridge.engine import ConformSpec, Kind
    from loopbridge.engine.conform import SourceInfo, conform_audio
    from loopbridge.engine.conform.key import detect_key

    from tests.engine.conform.real_audio import real_loops

    amen = next(loop for loop in real_loops() if loop.name == "loop_amen_full")
    tonal, rate = sf.read(piano, dtype="float32", always_2d=True)
    tonal = np.ascontiguousarray(tonal.T)
    runs = {
        "conform, estimated": lambda: conform_audio(amen.audio, amen.sample_rate, Kind.LOOP, ConformSpec(
            tempo_bpm=128.0, bars=4, sample_rate=out_rate, warp="complex"), SourceInfo()).audio,
        "conform, given": lambda: conform_audio(amen.audio, amen.sample_rate, Kind.LOOP, ConformSpec(
            tempo_bpm=128.0, bars=4, sample_rate=out_rate, warp="complex"),
            SourceInfo(tempo_bpm=amen.tempo_bpm)).audio,
        "key detection": lambda: np.array(detect_key(tonal, rate).chroma),
        "own tempo, no key": lambda: conform_audio(tonal, rate, Kind.LOOP, ConformSpec(
            tempo_bpm=120.0, bars=4, sample_rate=rate), SourceInfo(tempo_bpm=120.0, beats=16)).audio,
        "own tempo, to F": lambda: conform_audio(tonal, rate, Kind.LOOP, ConformSpec(
            tempo_bpm=120.0, bars=4, sample_rate=rate, key="F"), SourceInfo(tempo_bpm=120.0, beats=16)).audio,
    }
    durations = {"conform": amen.audio.shape[1] / amen.sample_rate, "key": tonal.shape[1] / rate}
    print(json.dumps(durations), flush=True)
    for line in sys.stdin:
        way, out = line.rstrip("\n").split("\t")
        started = time.perf_counter()
        result = runs[way]()
        seconds = time.perf_counter() - started
        np.save(out, result)
        print(json.dumps(seconds), flush=True)


def _python(root: Path) -> str:
    own = root / ".venv" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, help="another checkout to time beside this one")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sample-rate", type=int, default=48000,
                        help="the whole conform's output rate (default 48000; the loop is 44.1 kHz)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--piano", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        _worker(args.worker, args.piano, args.sample_rate)
        return
    sys.path.insert(0, str(HERE))
    from loopbridge.engine.conform.key import MusicalKey

    from tests.engine.conform import instruments
    from tests.engine.conform.real_audio import real_loops_available

    if not real_loops_available():
        sys.exit("Debian's sonic-pi-samples are not installed (apt-get install sonic-pi-samples)")
    why = instruments.available()
    if why is not None:
        sys.exit(f"bench_conform_cost: {why}")
    import soundfile as sf

    roots = {"this": HERE}
    if args.against is not None:
        roots = {"against": args.against.resolve(), **roots}
    with tempfile.TemporaryDirectory() as folder:
        audio, rate = instruments.tonal_loop(MusicalKey(2), "piano", Path(folder))
        piano = Path(folder) / "piano.wav"
        sf.write(piano, audio.T, rate, subtype="FLOAT")
        env = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", f"{folder}/numba")}
        workers = {name: subprocess.Popen(
            [_python(root), str(Path(__file__).resolve()), "--worker", str(root), "--piano", str(piano),
             "--sample-rate", str(args.sample_rate)],
            cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            for name, root in roots.items()}
        durations = {name: json.loads(worker.stdout.readline())  # type: ignore[union-attr]
                     for name, worker in workers.items()}
        times: dict[tuple[str, str], list[float]] = {}
        before = os.getloadavg()
        for repeat in range(args.repeats + 1):  # the first round warms up (imports, caches)
            for way in WAYS:
                for name, worker in workers.items():
                    worker.stdin.write(f"{way}\t{folder}/{name}-{way}.npy\n")  # type: ignore[union-attr]
                    worker.stdin.flush()  # type: ignore[union-attr]
                    seconds = json.loads(worker.stdout.readline())  # type: ignore[union-attr]
                    if repeat:
                        times.setdefault((name, way), []).append(seconds)
        after = os.getloadavg()
        for worker in workers.values():
            worker.stdin.close()  # type: ignore[union-attr]
            worker.wait()
        print(f"machine: {os.cpu_count()} CPUs, shared; load average {before[0]:.2f} {before[1]:.2f} {before[2]:.2f} "
              f"before, {after[0]:.2f} {after[1]:.2f} {after[2]:.2f} after; {args.repeats} runs of each, alternated; "
              "best / median, as a share of the loop's duration")
        for name, root in roots.items():
            print(f"  {name}: {root}")
        duration = durations["this"]

        def share(name: str, way: str, pick: str) -> float:
            values = times[(name, way)]
            seconds = min(values) if pick == "best" else float(np.median(values))
            return seconds / duration["conform" if way.startswith("conform") else "key"]

        print(f"\n1. whole conform, loop_amen_full ({duration['conform']:.2f} s) 140 -> 128 BPM at "
              f"{args.sample_rate} Hz, warp complex")
        for way in WAYS[:2]:
            cells = [f"{name} {share(name, way, 'best'):.4f}x / {share(name, way, 'median'):.4f}x" for name in roots]
            print(f"   {way:20s} " + "   ".join(cells))
        print(f"\n2. the key at the loop's own tempo, piano cadence ({duration['key']:.2f} s) D -> F at 120 BPM")
        for way in WAYS[2:]:
            cells = [f"{name} {share(name, way, 'best'):.4f}x / {share(name, way, 'median'):.4f}x" for name in roots]
            print(f"   {way:20s} " + "   ".join(cells))
        for pick in ("best", "median"):
            total = {name: share(name, "key detection", pick) + share(name, "own tempo, to F", pick)
                     - share(name, "own tempo, no key", pick) for name in roots}
            cells = [f"{name} {value:.4f}x" for name, value in total.items()]
            print(f"   detection + shift ({pick}): " + "   ".join(cells) + "   (target <= 0.05x)")
        if len(roots) == 2:
            print("\n3. outputs, this against the other: largest difference / the output's peak")
            for way in WAYS:
                mine, theirs = (np.load(f"{folder}/{name}-{way}.npy") for name in ("this", "against"))
                apart = (np.abs(mine.astype(np.float64) - theirs).max() / max(np.abs(theirs).max(), 1e-30)
                         if mine.shape == theirs.shape else float("inf"))
                print(f"   {way:20s} {apart:.2e}")


if __name__ == "__main__":
    main()
