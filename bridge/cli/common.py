"""What every ``loopbridge`` command shares: bad-input errors and exit codes, argument types, the engine
options, the front door a command works through, output folders and progress bars."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from loopbridge.engine.request import DEFAULT_LOUDNESS_LUFS, DEFAULT_SAMPLE_RATE, LOUDNESS_RANGE_LUFS, SAMPLE_RATE_RANGE

if TYPE_CHECKING:
    from loopbridge.engine.frontdoor import FrontDoor
    from loopbridge.engine.models.base import LoadOptions

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

#: engine error codes that mean the user asked for something impossible (exit 2, not 1)
BAD_INPUT_CODES = frozenset({"bad_request", "unsupported", "bad_audio", "unknown_model", "not_found"})


class InputError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line, not argparse's usage block: a script or a plugin shows it as it is
        raise InputError(message)


def fail(message: str) -> None:
    print(f"loopbridge: error: {message}", file=sys.stderr)


def positive_int(name: str, low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name}={text!r} is not accepted: expected a whole number {low}–{high}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name}={value} is not accepted: expected {low}–{high}")
        return value

    return parse


def sample_rate(text: str) -> int:
    """A whole number of Hz; its range is checked with the request (so the message names it once)."""
    try:
        return int(text)
    except ValueError:
        low, high = SAMPLE_RATE_RANGE
        raise argparse.ArgumentTypeError(
            f"sample-rate={text!r} is not accepted: expected a whole number of Hz, {low}–{high}"
        ) from None


def number(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not accepted: expected a number") from None

    return parse


def musical_key(text: str) -> str:
    """``--key``: a key in any spelling the engine takes, as its canonical name ("off" for none)."""
    from loopbridge.engine.conform.key import key_name
    from loopbridge.engine.errors import RequestError

    try:
        return key_name(text) or "off"
    except RequestError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_key(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--key", type=musical_key, default=None, metavar="KEY",
                        help=f"{help_text}: C, F#, Bb ... (major), Am, C#m, Bbm ... (minor), or words such as "
                             "'A minor'; off (the default) leaves every sound in its own key. Drums and noise "
                             "are never shifted")


def add_loudness(parser: argparse.ArgumentParser, help_text: str) -> None:
    low, high = LOUDNESS_RANGE_LUFS
    parser.add_argument("--loudness", type=number("loudness"), default=None, metavar="LUFS",
                        help=f"{help_text} ({low:g} to {high:g} LUFS, default {DEFAULT_LOUDNESS_LUFS:g}; one-shots "
                             "are brought to a -1 dBTP peak instead)")


def check_loudness(value: float | None) -> None:
    """``--loudness`` in range (for a command that checks it before it starts an engine)."""
    low, high = LOUDNESS_RANGE_LUFS
    if value is not None and not (math.isfinite(value) and low <= value <= high):
        raise InputError(f"loudness={value:g} is not accepted: expected an integrated loudness from {low:g} to "
                         f"{high:g} LUFS")


def add_sample_rate(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--sample-rate", type=sample_rate, default=DEFAULT_SAMPLE_RATE,
                        help=f"{help_text} (8000–192000 Hz, default {DEFAULT_SAMPLE_RATE})")


# ---- the engine ------------------------------------------------------------------------------------------

#: the speed and memory options and their defaults (``generate --server`` warns when one is changed)
SPEED_DEFAULTS: dict[str, Any] = {"dtype": "fp32", "attention": None, "scheduler": None, "compile": False,
                                  "cpu_offload": False}


def engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA, else Apple's MPS, else the CPU), cpu, cuda or mps")
    parser.add_argument("--store", type=Path, default=None, help="the render store folder (default: the data folder)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    speed_options(parser)


def speed_options(parser: argparse.ArgumentParser) -> None:
    speed = parser.add_argument_group("speed and memory (each model family uses those that apply to it)")
    speed.add_argument("--dtype", default="fp32",
                       help="fp32, bf16, or fp16 (fp16 needs CUDA or MPS; bf16 on MPS needs macOS 14)")
    speed.add_argument("--attention", default=None, help="attention implementation: sdpa or eager")
    speed.add_argument("--scheduler", default=None,
                       help="a faster sampler at fewer steps, e.g. dpm++, dpm++-karras, unipc, ddim, euler; "
                            "renders made with each are kept apart in the store")
    speed.add_argument("--compile", action="store_true", help="torch.compile the denoiser (slow first run)")
    speed.add_argument("--cpu-offload", action="store_true",
                       help="keep weights in RAM, move each part to the GPU only while it runs (switched on by "
                            "itself for a model that would not fit the memory budget)")


def load_options(args: argparse.Namespace) -> LoadOptions:
    """The ``LoadOptions`` the speed options ask for; a value no family takes is bad input (exit 2)."""
    from loopbridge.engine.models.base import LoadOptions
    from loopbridge.engine.models.diffusers_support import ATTENTION_CHOICES

    attention = args.attention.strip().lower() if args.attention is not None else None
    if attention is not None and attention not in ATTENTION_CHOICES:
        accepted = ", ".join(ATTENTION_CHOICES)
        raise InputError(f"attention={args.attention!r} is not accepted: expected one of {accepted}")
    if args.scheduler is not None and not args.scheduler.strip():
        raise InputError("scheduler='' is not accepted: expected a scheduler name, e.g. dpm++, unipc, ddim, euler")
    return LoadOptions(attention=attention, compile=args.compile, scheduler=args.scheduler,
                       cpu_offload=args.cpu_offload)


@contextmanager
def open_door(args: argparse.Namespace, start: bool = True) -> Iterator[FrontDoor]:
    """The engine's front door as the command's options set it up (no pre-rendering: nobody turns a
    knob here); started when the command renders, stopped at the end."""
    from loopbridge.engine.core import Engine
    from loopbridge.engine.frontdoor import FrontDoor
    from loopbridge.engine.models.diffusers_support import resolve_dtype
    from loopbridge.engine.weights import resolve_device

    store = getattr(args, "store", None)
    if hasattr(args, "dtype"):
        device = resolve_device(args.device)
        engine = Engine(store_dir=store, device=device, dtype=resolve_dtype(args.dtype, device),
                        load_options=load_options(args))
    else:
        engine = Engine(store_dir=store, device="cpu")
    door = FrontDoor(engine, prerender_depth=0)
    if start:
        door.start()
    try:
        yield door
    finally:
        door.stop()


# ---- files and progress ------------------------------------------------------------------------------------


def check_out_dir(out: Path) -> None:
    """Refuse an output folder that cannot be made or written, before any work (nothing is created)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"out={str(out)!r} is not accepted: expected a folder (it is a file)")
    existing = out.absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(str(existing))
        # a probe folder made and removed at once: permission bits alone do not tell (root, /proc, read-only mounts)
        os.rmdir(tempfile.mkdtemp(prefix=".loopbridge-probe-", dir=existing))
    except OSError as exc:
        raise InputError(f"out={str(out)!r} is not accepted: expected a folder this user can write "
                         f"({str(existing)!r}: {exc.strerror or exc})") from None


def write_atomically(path: Path, data: bytes) -> Path:
    """``data`` to ``path`` so it appears whole or not at all; returns the absolute path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.part"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.resolve()


def write_sample(data: bytes, out_dir: Path, filename: str) -> Path:
    """A sample's bytes into ``out_dir`` as ``filename`` (a plain file name), atomically."""
    name = Path(filename).name
    if not name or name.startswith("."):
        raise InputError(f"filename={filename!r} is not accepted: expected a plain file name")
    return write_atomically(out_dir / name, data)


def progress_bar(args: argparse.Namespace, description: str) -> tuple[Callable[[float], None] | None,
                                                                      Callable[[], None]]:
    """``(update(fraction), close())`` for a bar on stderr (nothing with ``--quiet`` or without a terminal)."""
    if args.quiet:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=100, desc=description, file=sys.stderr, unit="%", leave=False, disable=None,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
    state = {"shown": 0}

    def update(fraction: float) -> None:
        target = int(round(100 * min(max(fraction, 0.0), 1.0)))
        if target > state["shown"]:
            bar.update(target - state["shown"])
            state["shown"] = target

    return update, bar.close
