"""The peak memory of one conform through the front door, measured in a process of its own.

``python -m tests.engine.conform.peak_memory CASE [--conform-memory BYTES]`` stores a render (made
here, as the model would have made it), asks the front door to fit it to a song (an ``Order`` of its
render key, as a ``conform`` message does), and prints one JSON line: whether it was served, the
error when it was refused (its code, field and message), the peak resident memory above what the
process held before the order (``VmHWM`` in ``/proc/self/status``, reset just before the order) and
the engine's estimate of the conform's peak. ``tests/engine/conform/test_memory.py`` and
``bench/bench_conform_memory.py`` run it.

Each case is a render and a song: ``issue`` is the report's, a default-model loop (mono, 44.1 kHz,
2 bars at 120 BPM) fitted to 8 bars of 16 beats at 20 BPM at 192 kHz (384 s); ``limit`` the largest
loop accepted, a stereo render fitted to 600 s at 192 kHz.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

#: each case: the render (kind, channels, rate, tempo and beats of a loop or seconds of the rest, whether
#: the model said its tempo) and the song (tempo, bars, beats per bar, rate, pitch)
CASES: dict[str, dict[str, Any]] = {
    "issue": {"kind": "loop", "channels": 1, "source_rate": 44100, "source_bpm": 120.0, "source_beats": 8,
              "tempo_bpm": 20.0, "bars": 8.0, "beats_per_bar": 16, "sample_rate": 192000},
    "limit": {"kind": "loop", "channels": 2, "source_rate": 44100, "source_bpm": 120.0, "source_beats": 8,
              "tempo_bpm": 20.0, "bars": 12.5, "beats_per_bar": 16, "sample_rate": 192000},
    "speed-up": {"kind": "loop", "channels": 2, "source_rate": 48000, "source_bpm": 60.0, "source_beats": 8,
                 "tempo_bpm": 240.0, "bars": 64.0, "beats_per_bar": 16, "sample_rate": 96000},
    "estimated": {"kind": "loop", "channels": 2, "source_rate": 48000, "source_bpm": 100.0, "source_beats": 8,
                  "tempo_known": False, "tempo_bpm": 128.0, "bars": 32.0, "beats_per_bar": 4, "sample_rate": 96000},
    "pitched": {"kind": "loop", "channels": 2, "source_rate": 44100, "source_bpm": 120.0, "source_beats": 8,
                "pitch_semitones": 5.0, "tempo_bpm": 90.0, "bars": 32.0, "beats_per_bar": 4, "sample_rate": 96000},
    "typical": {"kind": "loop", "channels": 2, "source_rate": 44100, "source_bpm": 120.0, "source_beats": 8,
                "tempo_bpm": 128.0, "bars": 4.0, "beats_per_bar": 4, "sample_rate": 48000},
    "texture": {"kind": "texture", "channels": 2, "source_rate": 44100, "source_s": 47.0,
                "tempo_bpm": 20.0, "bars": 12.5, "beats_per_bar": 16, "sample_rate": 192000},
    "one-shot": {"kind": "one-shot", "channels": 2, "source_rate": 44100, "source_s": 60.0,
                 "tempo_bpm": 120.0, "bars": None, "beats_per_bar": 4, "sample_rate": 192000},
}


def output_seconds(case: dict[str, Any]) -> float:
    """How long the case's conformed file is (a one-shot: at most its render's length)."""
    if case["bars"] is not None:
        return float(case["bars"] * case["beats_per_bar"] * 60.0 / case["tempo_bpm"])
    return float(case["source_s"])


def _status_bytes(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} is not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the resident memory now (Linux 4.0+); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def render_of(case: dict[str, Any]) -> Any:
    """The case's render: what its model would have stored (a drum loop, a noisy tone, a decaying note)."""
    from loopbridge.engine.request import GenerateRequest, Render

    from tests.engine.conform.signals import drum_pattern, tone

    rate, channels = case["source_rate"], case["channels"]
    if case["kind"] == "loop":
        mono = drum_pattern(rate, case["source_bpm"], int(case["source_beats"] // 4), seed=1)[0]
        request = GenerateRequest(kind="loop", tempo_bpm=case["source_bpm"], bars=case["source_beats"] / 4)
        info = ({"tempo_bpm": case["source_bpm"], "beats": case["source_beats"]}
                if case.get("tempo_known", True) else {})
    else:
        if case["kind"] == "texture":
            noise = np.random.default_rng(1).standard_normal(int(case["source_s"] * rate))
            mono = tone(rate, 220.0, case["source_s"])[0] + 0.05 * noise
        else:
            t = np.arange(int(case["source_s"] * rate)) / rate
            mono = np.sin(2 * np.pi * 110.0 * t) * np.exp(-t / 8.0)
        request = GenerateRequest(kind=case["kind"], duration_s=len(mono) / rate)
        info = {}
    audio = np.tile(mono.astype(np.float32), (channels, 1))
    return Render(key=f"{sum(map(ord, json.dumps(case, sort_keys=True))):064x}", audio=audio, sample_rate=rate,
                  request=request, model_digest="peak-memory", info=info)


def estimate(case: dict[str, Any]) -> int:
    """The engine's estimate of the case's conform peak (what its conform memory charges)."""
    from loopbridge.engine.conform import SourceInfo, conform_peak_bytes

    render = render_of(case)
    return conform_peak_bytes(render.request.kind, render.channels, render.audio.shape[1], render.sample_rate,
                              _spec(case), SourceInfo.for_render(render))


def _spec(case: dict[str, Any]) -> Any:
    from loopbridge.engine.request import ConformSpec

    return ConformSpec(tempo_bpm=case["tempo_bpm"], bars=case["bars"], beats_per_bar=case["beats_per_bar"],
                       sample_rate=case["sample_rate"], pitch_semitones=case.get("pitch_semitones", 0.0))


def measure(name: str, conform_memory_bytes: int | None = None) -> dict[str, Any]:
    """Fit the case's render through a front door in this process; what happened and the peak memory."""
    from loopbridge.engine.core import Engine
    from loopbridge.engine.errors import LoopbridgeError, RequestError
    from loopbridge.engine.frontdoor import FrontDoor, HostFacts, Order

    case = CASES[name]
    render = render_of(case)
    with tempfile.TemporaryDirectory() as store:
        engine = Engine(store_dir=Path(store), device="cpu")
        engine.store.put_render(render)
        extra = {} if conform_memory_bytes is None else {"conform_memory_bytes": conform_memory_bytes}
        door = FrontDoor(engine, prerender_depth=0, conform_workers=1, **extra).start()
        host = HostFacts(tempo_bpm=case["tempo_bpm"], beats_per_bar=case["beats_per_bar"], bars=case["bars"],
                         sample_rate=case["sample_rate"])
        order = Order(render_key=render.key, host=host, pitch_semitones=case.get("pitch_semitones", 0.0))
        door.capabilities(render.request.model)  # read once before, as in a served engine (its code imported)
        del render
        before = _status_bytes("VmRSS")
        reset = _reset_peak()
        started = time.monotonic()
        result: dict[str, Any] = {"served": False}
        try:
            (sample,) = door.generate(order, timeout=1800)
            result.update(served=True, frames=sample.frames, channels=sample.channels, wav_bytes=len(sample.data))
        except LoopbridgeError as exc:
            result["error"] = {"code": exc.code, "message": str(exc),
                               "field": exc.field if isinstance(exc, RequestError) else None}
        result["seconds"] = round(time.monotonic() - started, 3)
        result["peak_bytes"] = _status_bytes("VmHWM") - (before if reset else 0)
        result["peak_reset"] = reset
        door.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--conform-memory", type=int, default=None, metavar="BYTES")
    args = parser.parse_args()
    print(json.dumps(measure(args.case, args.conform_memory)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
