"""The ``loopbridge`` command.

    loopbridge generate "PROMPT" [--model ID[@REV]] [--kind one-shot|loop|texture|kit] [--bpm 128]
                        [--bars 1 | --seconds 2] [--meter 6/8 | --beats-per-bar 4] [--variations 4] [--seed N]
                        [--pitch 0] [--sample-rate 48000] [--loudness -14] [--out DIR]
    loopbridge models [--json] [--available]
    loopbridge models pull ID [--revision R] [--token-file FILE] [--quiet]   (the one command that uses the network)
    loopbridge models remove ID[@REV]
    loopbridge history [--limit N] [--json]
    loopbridge recall KEY [--bpm 128] [--loudness -14] [--out DIR]
    loopbridge conform FILE... --bpm 128 [--bars 2 | --beats 8] [--beats-per-bar 4] [--sample-rate 48000]
                       [--source-bpm BPM] [--downbeat SECONDS] [--source-bars N] [--kind loop|one-shot|texture]
                       [--warp complex|beats|auto] [--loudness -14] [--out DIR]
    loopbridge serve [--zmq tcp://127.0.0.1:5555] [--events tcp://127.0.0.1:5556] [--osc 127.0.0.1:9000]
                     [--device auto|cuda|mps|cpu] [--memory-budget GB] [--conform-memory GB] [--keys DIR | --insecure]
                     [--osc-allow LIST] [--loudness -14]
                     [--dtype bf16] [--attention sdpa|eager] [--scheduler dpm++] [--compile] [--cpu-offload]
    loopbridge generate ... --server tcp://HOST:5555 [--server-key KEY] [--timeout 30]   (through a running engine)
    loopbridge serve ... --cluster local|HOST:PORT [--replicas N] [--cluster-token FILE --cluster-tls DIR]
    loopbridge worker --head | --join HOST:PORT [--host 127.0.0.1] [--port 6379] [--num-cpus N] [--num-gpus N]
                      [--cluster-token FILE --cluster-tls DIR] [--temp-dir DIR]
    loopbridge keys DIR
    loopbridge audition PATH|last
    loopbridge record SECONDS [--out FILE]
    loopbridge dance2music MOTION [--out track.wav] [--prompt WORDS] [--report]

Paths of written files go to stdout, one per line; progress and messages go to stderr. Bad input
gets a one-line error naming the value and the accepted range, exit status 2, and nothing is written.
Each command goes through the engine's front door (:mod:`loopbridge.engine.frontdoor`), in this
process or, with ``--server``, in a running ``loopbridge serve``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from loopbridge.engine.errors import LoopbridgeError

from . import conform, dance, generate, library, serve, worker
from .common import BAD_INPUT_CODES, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, InputError, Parser, fail

#: subcommands implemented elsewhere, handed their own argv: name -> ("module:function", help)
DELEGATED: dict[str, tuple[str, str]] = {
    "train-default": ("loopbridge.engine.models.default.train:main", "train the embedded default model"),
    "eval-default": ("loopbridge.engine.models.default.evaluate:main", "measure the default model's quality"),
    "build-corpus": ("loopbridge.engine.models.default.real_corpus:main",
                     "build the real-recordings corpus from Debian packages"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="loopbridge", description="AI-generated samples, conformed to your song's tempo.")
    parser.add_argument("--version", action="version", version=f"loopbridge {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    generate.add_parsers(sub)
    conform.add_parsers(sub)
    library.add_parsers(sub)
    serve.add_parsers(sub)
    worker.add_parsers(sub)
    dance.add_parsers(sub)
    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loopbridge")
    except PackageNotFoundError:
        return "unknown"


def hub_offline() -> None:
    """Switch the Hugging Face client off for this process: generating, serving and listing read the
    hub cache only, and a component's loader that tried the network would fail here instead.

    Set before the client is imported (it reads the variable once); ``models pull`` alone skips it.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in DELEGATED:
        hub_offline()
        target, _ = DELEGATED[args_list[0]]
        module_name, _, func = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            fail(f"{args_list[0]} is not available in this installation: {exc}")
            return EXIT_FAILED
        return int(getattr(module, func)(args_list[1:]) or 0)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
        if not getattr(args, "network", False):
            hub_offline()
        if getattr(args, "handler", None) is None:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        return int(args.handler(args))
    except InputError as exc:
        fail(str(exc))
        return EXIT_BAD_INPUT
    except LoopbridgeError as exc:
        fail(str(exc))
        return EXIT_BAD_INPUT if exc.code in BAD_INPUT_CODES else EXIT_FAILED
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (`| head`): not an error of ours; silence the final flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # a disk full or a folder gone mid-way: one line, not a traceback
        where = f": {exc.filename!r}" if exc.filename else ""
        fail(f"{exc.strerror or exc}{where}")
        return EXIT_FAILED


__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]
