"""A user's own files on Debian's sonic-pi-samples: the default kind against the file's family, and each
recorded loop conformed at 120 BPM with its tempo estimated (beside the tempo its length in whole beats
implies), the confidence reported and whether `loopbridge conform` would warn.

    .venv/bin/python bench/bench_user_audio.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from loopbridge.engine.core import Engine
from loopbridge.engine.frontdoor import FrontDoor, HostFacts, Order
from loopbridge.engine.request import Kind
from loopbridge.engine.user_audio import UserAudio, confidence

SAMPLES = Path("/usr/share/sonic-pi/samples")
#: file name prefixes and the kind each family is
FAMILIES = {"loop_": Kind.LOOP, "drum_": Kind.ONE_SHOT, "bd_": Kind.ONE_SHOT, "sn_": Kind.ONE_SHOT,
            "elec_": Kind.ONE_SHOT, "perc_": Kind.ONE_SHOT, "tabla_": Kind.ONE_SHOT}


def main() -> None:
    if not SAMPLES.is_dir():
        raise SystemExit(f"{SAMPLES} is missing: apt-get install sonic-pi-samples")
    print("default kind by family")
    for prefix, kind in FAMILIES.items():
        files = sorted(SAMPLES.glob(f"{prefix}*.flac"))
        found = [UserAudio.from_file(f).resolved_kind for f in files]
        print(f"  {prefix:7s} {sum(k is kind for k in found):3d}/{len(files):<3d} taken for {kind.value}")
    print("\nloops at 120 BPM, tempo estimated (truth: the whole beats nearest the estimate in the file's length)")
    door = FrontDoor(Engine(store_dir=tempfile.mkdtemp(), device="cpu"), prerender_depth=0).start()
    try:
        for path in sorted(SAMPLES.glob("loop_*.flac")):
            audio = UserAudio.from_file(path, kind="loop")
            (sample,) = door.generate(Order(audio=audio, host=HostFacts(tempo_bpm=120.0, bars=2)))
            info = sample.info
            source = float(info.get("source_tempo_bpm", 0.0))
            beats = max(1, round(audio.duration_s * source / 60.0))
            whole = beats * 60.0 / audio.duration_s
            sure = confidence(info)
            print(f"  {path.stem:18s} {audio.duration_s:6.2f} s  source {source:7.2f} BPM  "
                  f"whole beats {whole:7.2f} BPM "
                  f"({100 * (source / whole - 1):+6.2f} %)  confidence {sure.get('tempo_confidence', 0):.2f}"
                  f"{'  warned' if sure.get('low_confidence') else ''}")
    finally:
        door.stop()


if __name__ == "__main__":
    main()
