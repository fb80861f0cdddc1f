"""``loopbridge models``, ``history``, ``audition`` and ``record``: what is installed, what was made, and
listening and recording on this machine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loopbridge.engine.errors import LoopbridgeError

from .common import EXIT_FAILED, EXIT_OK, InputError, add_sample_rate, fail, number, open_door, positive_int


def add_parsers(sub: Any) -> None:
    models = sub.add_parser("models", help="list the models available and where each comes from")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(handler=models_command)

    hist = sub.add_parser("history", help="list past renders, newest first")
    hist.add_argument("--limit", type=positive_int("limit", 1, 10000), default=20)
    hist.add_argument("--json", action="store_true")
    hist.add_argument("--store", type=Path, default=None, help="the render store folder")
    hist.set_defaults(handler=history_command)

    audition = sub.add_parser("audition", help="play a sample on this machine's audio output")
    audition.add_argument("path", help="a WAV file, or 'last' for the most recent sample in the store")
    audition.add_argument("--store", type=Path, default=None, help="the render store folder (for 'last')")
    audition.add_argument("--device", default=None, help="output device name or number (default: the system's)")
    audition.set_defaults(handler=audition_command)

    record = sub.add_parser("record", help="record an audio prompt from this machine's input")
    record.add_argument("seconds", type=number("seconds"), help="how long to record")
    record.add_argument("--out", type=Path, default=Path("prompt.wav"), help="the WAV file to write")
    add_sample_rate(record, "of the recording")
    record.add_argument("--channels", type=positive_int("channels", 1, 8), default=2)
    record.add_argument("--device", default=None, help="input device name or number (default: the system's)")
    record.set_defaults(handler=record_command)


def models_command(args: argparse.Namespace) -> int:
    rows = []
    with open_door(args, start=False) as door:
        for spec in door.models():
            row: dict[str, Any] = spec.to_dict()
            try:
                row["capabilities"] = door.capabilities(spec.id).to_dict()
            except (LoopbridgeError, ImportError) as exc:
                row["error"] = str(exc)
            rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no models found: the embedded default model is missing from this installation", file=sys.stderr)
        return EXIT_FAILED
    for row in rows:
        caps = row.get("capabilities")
        if caps is None:
            print(f"{row['id']}  [{row['family']}]  unusable: {row['error']}")
            continue
        features = [name for name in ("text_prompt", "audio_prompt", "negative_prompt", "morph") if caps[name]]
        if caps.get("start_offset"):
            features.append("start offset (--start)")
        print(
            f"{row['id']}  [{row['family']}]  {caps['sample_rate']} Hz, {caps['channels']} ch, "
            f"up to {caps['max_duration_s']:g} s, kinds: {', '.join(caps['kinds'])}, "
            f"takes: {', '.join(f.replace('_', ' ') for f in features) or 'nothing (unconditional)'}"
        )
        if caps["classes"]:
            print(f"    classes: {', '.join(caps['classes'])}")
        print(f"    from {row['source']}: {row['path']}")
    return EXIT_OK


def history_command(args: argparse.Namespace) -> int:
    with open_door(args, start=False) as door:
        entries = door.history(limit=args.limit)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return EXIT_OK
    for e in entries:
        print(f"{e.key[:12]}  {e.model}  {e.kind:8s}  seed {e.seed:<10d} v{e.variation:<3d} {e.duration_s:6.2f} s  "
              f"{e.music_key or '-':4s}  {e.prompt!r}")
    return EXIT_OK


def _audio_device(text: str | None) -> int | str | None:
    return int(text) if text is not None and text.isdigit() else text


def audition_command(args: argparse.Namespace) -> int:
    from loopbridge.bridge.audio_io import AudioDeviceError, play

    if args.path == "last":
        with open_door(argparse.Namespace(store=args.store), start=False) as door:
            latest = door.latest_samples(1)
        if not latest:
            fail("there is no sample in the store yet: generate one first")
            return EXIT_FAILED
        path = latest[0].path
    else:
        path = Path(args.path)
        if not path.is_file():
            raise InputError(f"path={args.path!r} is not accepted: expected an audio file or 'last'")
    try:
        seconds = play(path, device=_audio_device(args.device))
    except AudioDeviceError as exc:
        fail(str(exc))
        return EXIT_FAILED
    print(f"played {path} ({seconds:.2f} s)", file=sys.stderr)
    return EXIT_OK


def record_command(args: argparse.Namespace) -> int:
    from loopbridge.bridge.audio_io import AudioDeviceError, record

    try:
        path = record(args.seconds, args.out, sample_rate=args.sample_rate, channels=args.channels,
                      device=_audio_device(args.device))
    except AudioDeviceError as exc:
        fail(str(exc))
        return EXIT_FAILED
    print(path.resolve())
    return EXIT_OK
