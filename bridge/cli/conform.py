"""``loopbridge conform``: the user's own loops and one-shots, fitted to the song, into a folder.

Each file becomes a ``conform_file`` order (the fields a ZeroMQ client sends, built by
:func:`file_fields` and turned into an order by :class:`~loopbridge.bridge.fields.OrderBuilder`), goes
through the engine's front door and is stored like a render: ``loopbridge history`` lists it and
``loopbridge recall KEY --bpm ...`` fits it to another tempo without the original file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from loopbridge.engine.errors import LoopbridgeError

from ..protocol import MessageType
from .common import (
    BAD_INPUT_CODES,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    InputError,
    add_key,
    add_loudness,
    add_sample_rate,
    check_out_dir,
    fail,
    number,
    open_door,
    positive_int,
    write_sample,
)
from .generate import meter_fields


def add_parsers(sub: Any) -> None:
    conform = sub.add_parser("conform", help="fit your own loops and one-shots to a tempo, into a folder")
    conform.add_argument("files", nargs="+", metavar="FILE",
                         help="audio files (WAV, FLAC, AIFF, OGG, MP3): one conformed file each")
    conform.add_argument("--bpm", type=number("bpm"), required=True, help="the song's tempo (20–999 BPM)")
    length = conform.add_mutually_exclusive_group()
    length.add_argument("--bars", type=number("bars"), default=None,
                        help="length of a loop in bars (default: its own length, in whole bars at the song tempo)")
    length.add_argument("--beats", type=number("beats"), default=None, help="length of a loop in beats")
    meter = conform.add_mutually_exclusive_group()
    meter.add_argument("--beats-per-bar", type=positive_int("beats-per-bar", 1, 16), default=None,
                       help="quarter notes a bar (default 4)")
    meter.add_argument("--meter", default=None, metavar="N/D",
                       help="the song's time signature, e.g. 6/8: --bars then counts its bars")
    add_sample_rate(conform, "sample rate of the written files")
    conform.add_argument("--kind", default=None,
                         help="loop, one-shot or texture (default: a loop, or a one-shot for a short hit "
                              "that dies away)")
    conform.add_argument("--source-bpm", type=number("source-bpm"), default=None,
                         help="the file's own tempo, when known (otherwise it is estimated)")
    conform.add_argument("--downbeat", type=number("downbeat"), default=None, metavar="SECONDS",
                         help="where the file's first downbeat is, in seconds from its start (otherwise estimated)")
    conform.add_argument("--source-bars", type=number("source-bars"), default=None,
                         help="how many bars the file holds (helps the tempo estimate)")
    conform.add_argument("--pitch", type=number("pitch"), default=0.0, help="pitch shift in semitones (−24–24)")
    add_loudness(conform, "integrated loudness of loops and textures")
    add_key(conform, "the song's key: a pitched file is moved to it by the smallest shift")
    conform.add_argument("--warp", default=None, metavar="MODE",
                         help="how a loop is stretched: complex (the default: notes kept in tune, hits on the grid), "
                              "beats (drums: Rubber Band's R2, cheaper) or auto (beats for a loop with no pitch "
                              "heard, complex for the rest)")
    conform.add_argument("--out", type=Path, default=Path("."), help="folder for the files (default: here)")
    conform.add_argument("--store", type=Path, default=None, help="the render store folder (default: the data folder)")
    conform.set_defaults(handler=conform_files)


def file_fields(args: argparse.Namespace, path: str) -> dict[str, Any]:
    """The ``conform_file`` fields for one file (None where an option is not given)."""
    bars = args.bars
    if args.beats is not None:
        if args.meter is not None:
            raise InputError("beats is not accepted with --meter: give --bars (bars of the meter) or "
                             "--beats-per-bar with --beats")
        bars = args.beats / (args.beats_per_bar or 4)
    fields: dict[str, Any] = {
        "audio_path": path, "kind": args.kind, "tempo_bpm": args.bpm, "bars": bars,
        "beats_per_bar": args.beats_per_bar, "sample_rate": args.sample_rate, "pitch_semitones": args.pitch,
        "loudness_lufs": args.loudness, "key": args.key, "warp": args.warp,
        "source_tempo_bpm": args.source_bpm, "source_downbeat_s": args.downbeat, "source_bars": args.source_bars,
        **meter_fields(args.meter),
    }
    return {name: value for name, value in fields.items() if value is not None}


def conform_files(args: argparse.Namespace) -> int:
    """Each file on its own: one that fails is named with its error on stderr, the others are still done.
    Exit status: 0 when every file was written, 2 when every failure was bad input, 1 otherwise."""
    from loopbridge.bridge.fields import OrderBuilder
    from loopbridge.engine.user_audio import confidence

    check_out_dir(args.out)
    file_fields(args, "")  # the options' own errors before any file is read
    failures: list[str] = []
    with open_door(args) as door:
        builder = OrderBuilder(door, allowed=None)
        for path in args.files:
            try:
                order = builder.order(MessageType.CONFORM_FILE, file_fields(args, path))
                job = door.submit(order)
                (sample,) = job.result()
            except LoopbridgeError as exc:
                fail(f"{path}: {exc}")
                failures.append(exc.code)
                continue
            for note in [*job.notes, *sample.notes]:
                print(f"loopbridge: {path}: {note}", file=sys.stderr)
            sure = confidence(sample.info)
            if sure.get("low_confidence"):
                print(f"loopbridge: warning: {path}: {_low_confidence_words(sure)}; if it does not sit in time, "
                      "give its tempo (--source-bpm) or its first downbeat (--downbeat SECONDS)", file=sys.stderr)
            print(write_sample(sample.data, args.out, sample.filename))
    if not failures:
        return EXIT_OK
    return EXIT_BAD_INPUT if all(code in BAD_INPUT_CODES for code in failures) else EXIT_FAILED


def _low_confidence_words(sure: dict[str, Any]) -> str:
    found = [f"{name.split('_')[0]} confidence {sure[name]:.2f}"
             for name in ("tempo_confidence", "downbeat_confidence") if name in sure]
    return f"its tempo and downbeat were found with low confidence ({', '.join(found) or 'no pulse'})"
