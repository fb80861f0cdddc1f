"""``loopbridge dance2music``: a whole track whose beats follow a dancer's motion.

    loopbridge dance2music MOTION --out track.wav [--fps 60] [--prompt "house"] [--model default]
                           [--seed N] [--material auto|kit|loop] [--sample-rate 48000] [--report] [--json]
                           [--beats FILE]

MOTION is a keypoint file (``.npy``/``.npz``/``.pkl`` frames × joints × 3, AIST++'s ``.pkl``
layouts, or ``.csv`` with x, y, z per joint and an optional time column). The written path goes to
stdout; ``--report`` adds the Dance2Music beat scores (the music's beats detected from the rendered
audio against the motion's), ``--json`` the same as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loopbridge.engine.request import SEED_MAX

from .common import (
    EXIT_OK,
    InputError,
    add_sample_rate,
    check_out_dir,
    engine_options,
    number,
    open_door,
    positive_int,
    progress_bar,
    write_atomically,
)


def add_parsers(sub: Any) -> None:
    from loopbridge.engine.dance2music import MATERIALS

    dance = sub.add_parser("dance2music", help="render a track whose beats follow a dancer's motion (keypoint file)")
    dance.add_argument("motion", type=Path, help="keypoint file: .npy, .npz, .pkl (AIST++) or .csv")
    dance.add_argument("--out", type=Path, default=Path("track.wav"), help="the WAV file to write (default track.wav)")
    dance.add_argument("--fps", type=number("fps"), default=None,
                       help="frames per second of the motion when the file does not say (default 60, as AIST++)")
    dance.add_argument("--prompt", default="", help="words for the model; a pattern word (house, breakbeat, trap, "
                                                    "boom bap, hats) picks the drum pattern")
    dance.add_argument("--model", default="default", help="model id (see `loopbridge models`)")
    dance.add_argument("--seed", type=positive_int("seed", 0, SEED_MAX), default=None,
                       help="seed (default: a random one, printed on stderr)")
    dance.add_argument("--material", default="auto", help=f"{', '.join(MATERIALS)}: one-shots on the motion's "
                                                          "beats, a loop conformed bar by bar, or a model "
                                                          "conditioned on the motion (auto: what the model does)")
    add_sample_rate(dance, "of the written track")
    dance.add_argument("--beats-per-bar", type=positive_int("beats-per-bar", 1, 16), default=4)
    dance.add_argument("--steps", type=positive_int("steps", 1, 1000), default=None, help="diffusion steps")
    dance.add_argument("--report", action="store_true", help="print the beat scores (coverage, hit) and tempi")
    dance.add_argument("--json", action="store_true", help="print the report as JSON")
    dance.add_argument("--beats", type=Path, default=None, metavar="FILE",
                       help="also write the motion's beat times (seconds, one per line)")
    engine_options(dance)
    dance.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from loopbridge.engine.dance2music import Dance2Music, DanceRequest, encode_track, music_report
    from loopbridge.engine.motion import kinematic_beats, read_motion
    from loopbridge.engine.request import random_seed

    out: Path = args.out
    if out.exists() and out.is_dir():
        raise InputError(f"out={str(out)!r} is not accepted: expected a WAV file path (it is a folder)")
    if out.suffix.lower() not in (".wav", ".wave"):
        raise InputError(f"out={str(out)!r} is not accepted: expected a file name ending in .wav")
    check_out_dir(out.parent)
    seed = args.seed if args.seed is not None else random_seed()
    request = DanceRequest(prompt=args.prompt, model=args.model, seed=seed, sample_rate=args.sample_rate,
                           beats_per_bar=args.beats_per_bar, material=args.material, steps=args.steps)
    motion = read_motion(args.motion, fps=args.fps)
    beats = kinematic_beats(motion)
    with open_door(args) as door:
        dance = Dance2Music(door)
        material = dance.material_for(request)  # every check before any work: bad input writes nothing
        if args.seed is None:
            print(f"loopbridge: seed {seed}", file=sys.stderr)
        print(f"loopbridge: motion {motion.duration_s:.1f} s, {len(beats.beats_s)} beats at {beats.bpm:.1f} BPM "
              f"(confidence {beats.confidence:.2f}); {material} material", file=sys.stderr)
        progress, close = progress_bar(args, "rendering the track")
        try:
            track = dance.render(beats, request, progress, motion=motion)
        finally:
            close()
    write_atomically(out, encode_track(track))
    if args.beats is not None:
        write_atomically(args.beats, "".join(f"{t:.4f}\n" for t in track.motion_beats_s).encode())
    print(out.resolve())
    if args.report or args.json:
        report = music_report(track)
        if args.json:
            print(json.dumps({**report.to_dict(), "path": str(out.resolve()), "material": track.material,
                              "duration_s": track.duration_s, "seed": seed}))
        else:
            print(report.table())
    return EXIT_OK
