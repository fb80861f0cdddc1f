"""``loopbridge generate`` and ``loopbridge recall``: samples into a folder, through the engine's front door
in this process or through a running engine (``--server``).

Both paths build the same protocol fields from the options (:func:`request_fields`), so a request
made here and one made over ZeroMQ are the same order (:class:`~loopbridge.bridge.fields.OrderBuilder`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopbridge.engine.request import MAX_VARIATIONS, SEED_MAX

from ..protocol import MessageType
from .common import (
    BAD_INPUT_CODES,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    SPEED_DEFAULTS,
    InputError,
    add_key,
    add_loudness,
    add_sample_rate,
    check_out_dir,
    engine_options,
    fail,
    number,
    open_door,
    positive_int,
    progress_bar,
    write_sample,
)

#: ``generate --server`` gives up after this many seconds without a sign of life from the engine
DEFAULT_SILENCE_S = 30.0
#: how long without any sign of life before saying that the engine is being waited for
WAITING_NOTICE_S = 1.0


def add_parsers(sub: Any) -> None:
    gen = sub.add_parser("generate", help="generate tempo-matched samples into a folder")
    gen.add_argument("prompt", nargs="?", default="", help="what to make, e.g. 'punchy kick' or 'house groove'")
    gen.add_argument("--model", default="default",
                     help="model id (see `loopbridge models`; OWNER/NAME@REV for a pulled revision), default: default")
    gen.add_argument("--kind", default=None, help="one-shot, loop, texture or kit (default: one-shot)")
    gen.add_argument("--bpm", type=number("bpm"), default=120.0, help="the song's tempo (20–999 BPM)")
    length = gen.add_mutually_exclusive_group()
    length.add_argument("--bars", type=number("bars"), default=None, help="length in bars (loops, textures)")
    length.add_argument("--seconds", type=number("seconds"), default=None, help="length in seconds")
    meter = gen.add_mutually_exclusive_group()
    meter.add_argument("--beats-per-bar", type=positive_int("beats-per-bar", 1, 16), default=None,
                       help="quarter notes a bar (default 4)")
    meter.add_argument("--meter", default=None, metavar="N/D",
                       help="the song's time signature, e.g. 6/8 or 7/8: --bars then counts its bars")
    gen.add_argument("--variations", type=positive_int("variations", 1, MAX_VARIATIONS), default=1,
                     help=f"how many variations, rendered as one batch (1–{MAX_VARIATIONS})")
    gen.add_argument("--seed", type=positive_int("seed", 0, SEED_MAX), default=None,
                     help="first seed (default: a random one, printed on stderr)")
    gen.add_argument("--pitch", type=number("pitch"), default=0.0, help="pitch shift in semitones (−24–24)")
    add_sample_rate(gen, "sample rate of the written files")
    add_loudness(gen, "integrated loudness of loops and textures")
    add_key(gen, "the song's key: pitched samples are moved to it by the smallest shift")
    gen.add_argument("--steps", type=positive_int("steps", 1, 1000), default=None, help="diffusion steps")
    gen.add_argument("--guidance", type=number("guidance"), default=None, help="guidance scale")
    gen.add_argument("--negative", default="", help="negative prompt (models that take one)")
    gen.add_argument("--audio-prompt", type=Path, default=None,
                     help="an audio file to make variations of, or the user's audio a --task works on")
    gen.add_argument("--strength", type=number("strength"), default=0.5,
                     help="how far variations of the audio prompt (or a transform) may stray (0–1)")
    gen.add_argument("--task", default=None,
                     help="what to do with --audio-prompt (at --bpm, its first downbeat at its start): continue, "
                          "replace, transform, extract or add (models that list it; default: generate)")
    gen.add_argument("--continue-bars", type=number("continue-bars"), default=None,
                     help="--task continue: how many bars to add")
    gen.add_argument("--replace", default=None, metavar="FROM:TO",
                     help="--task replace: the bar positions to make anew, from 0 (1:2 is the second bar)")
    gen.add_argument("--track", default=None, help="--task extract / add: the part (drums, bass, vocals, ...)")
    gen.add_argument("--morph-to", default=None, help="a second prompt to morph towards (models that morph)")
    gen.add_argument("--morph", type=number("morph"), default=0.0, help="morph position 0 (prompt) – 1 (morph-to)")
    gen.add_argument("--start", type=number("start"), default=0.0,
                     help="seconds into the piece the model imagines (Stable Audio's start; end = start + length)")
    gen.add_argument("--out", type=Path, default=Path("."), help="folder for the files (default: here)")
    engine_options(gen)
    server_options(gen)
    gen.set_defaults(handler=generate)

    recall = sub.add_parser("recall", help="write a past render again, conformed to a tempo")
    recall.add_argument("render_key", metavar="RENDER_KEY",
                        help="render key (or its first 6+ characters, from `loopbridge history`)")
    recall.add_argument("--bpm", type=number("bpm"), default=None)
    recall.add_argument("--bars", type=number("bars"), default=None)
    recall.add_argument("--meter", default=None, metavar="N/D",
                        help="the song's time signature (--bars then counts its bars)")
    recall.add_argument("--pitch", type=number("pitch"), default=0.0)
    add_sample_rate(recall, "sample rate of the written file")
    add_loudness(recall, "integrated loudness of a loop or texture")
    add_key(recall, "the song's key: a pitched render is moved to it by the smallest shift")
    recall.add_argument("--out", type=Path, default=Path("."))
    engine_options(recall)
    recall.set_defaults(handler=recall_render)


def server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default=None, metavar="ENDPOINT",
                        help="go through a running engine (`loopbridge serve`), e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--server-key", default=None, metavar="KEY",
                        help="the engine's public CURVE key: 40 characters, a server.key file or its folder")
    parser.add_argument("--client-key", type=Path, default=None, metavar="FILE",
                        help="this client's secret key file (client.key_secret) when the engine lists its clients")
    parser.add_argument("--timeout", type=number("timeout"), default=DEFAULT_SILENCE_S, metavar="SECONDS",
                        help="give up when the engine has shown no sign of life for this long (default "
                             f"{DEFAULT_SILENCE_S:g} s); a long render is waited for while the engine is alive")


def meter_fields(text: str | None) -> dict[str, int]:
    """``--meter N/D`` as the protocol's ``meter_numerator``/``meter_denominator`` (the engine checks them)."""
    if text is None:
        return {}
    numerator, slash, denominator = text.strip().partition("/")
    if not slash or not numerator.strip().isdigit() or not denominator.strip().isdigit():
        raise InputError(f"meter={text!r} is not accepted: expected a time signature such as 4/4, 6/8 or 7/8")
    return {"meter_numerator": int(numerator), "meter_denominator": int(denominator)}


def request_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The protocol's fields for what the options ask (None where an option is not given)."""
    fields: dict[str, Any] = {
        "prompt": args.prompt, "model": args.model, "kind": args.kind, "seed": args.seed, "duration_s": args.seconds,
        "bars": args.bars, "tempo_bpm": args.bpm, "beats_per_bar": args.beats_per_bar, "steps": args.steps,
        "guidance": args.guidance, "negative_prompt": args.negative or None, "variations": args.variations,
        "pitch_semitones": args.pitch, "sample_rate": args.sample_rate, "morph_prompt": args.morph_to,
        "morph_amount": args.morph if args.morph_to else None, "start_s": args.start or None,
        "audio_prompt_strength": args.strength, "loudness_lufs": args.loudness, "key": args.key,
        **meter_fields(args.meter), **task_fields(args),
    }
    return {name: value for name, value in fields.items() if value is not None}


def task_fields(args: argparse.Namespace) -> dict[str, Any]:
    """``--task`` and its options as the protocol's fields; a task's sample is a loop unless --kind says."""
    if args.task is None and args.continue_bars is None and args.replace is None and args.track is None:
        return {}
    fields: dict[str, Any] = {"task": args.task, "continue_bars": args.continue_bars, "track": args.track}
    if args.task not in (None, "generate") and args.kind is None:
        fields["kind"] = "loop"
    if args.replace is not None:
        start, colon, end = args.replace.partition(":")
        try:
            fields["replace_from_bar"], fields["replace_to_bar"] = float(start), float(end)
        except ValueError:
            raise InputError(f"replace={args.replace!r} is not accepted: expected FROM:TO bar positions "
                             "such as 1:2") from None
        if not colon:
            raise InputError(f"replace={args.replace!r} is not accepted: expected FROM:TO bar positions such as 1:2")
    return fields


def generate(args: argparse.Namespace) -> int:
    if args.server:
        return generate_remote(args)
    from loopbridge.bridge.fields import OrderBuilder
    from loopbridge.bridge.service import reply_extra

    fields = request_fields(args)
    if args.audio_prompt is not None:
        fields["audio_prompt_path"] = str(args.audio_prompt)
    check_out_dir(args.out)
    with open_door(args) as door:
        # every check before any work, so bad input writes nothing
        order = OrderBuilder(door, args.model, allowed=None).order(MessageType.GENERATE, fields)
        assert order.request is not None
        progress, close = _lazy_bar(args)
        job = door.submit(order, on_progress=lambda job, fraction: progress(job, fraction))
        if args.seed is None:
            print(f"loopbridge: seed {order.request.seed}", file=sys.stderr)
        try:
            samples = job.result()
        finally:
            close()
    for note in reply_extra(job, order).get("notes", []):
        print(f"loopbridge: {note}", file=sys.stderr)
    for sample in samples:
        print(write_sample(sample.data, args.out, sample.filename))
    return EXIT_OK


def _lazy_bar(args: argparse.Namespace) -> tuple[Callable[[Any, float], None], Callable[[], None]]:
    """A progress bar made at the first progress report (when the job says how many samples it makes)."""
    state: dict[str, Any] = {"update": None, "close": lambda: None}

    def progress(job: Any, fraction: float) -> None:
        if state["update"] is None:
            count = len(job.plan)
            state["update"], state["close"] = progress_bar(args, f"generating {count} sample{'s' * (count != 1)}")
        if state["update"] is not None:
            state["update"](fraction)

    return progress, lambda: state["close"]()


def recall_render(args: argparse.Namespace) -> int:
    from loopbridge.bridge.fields import OrderBuilder

    fields = {"render_key": args.render_key, "key": args.key, "tempo_bpm": args.bpm, "bars": args.bars,
              "pitch_semitones": args.pitch, "sample_rate": args.sample_rate, "loudness_lufs": args.loudness,
              **meter_fields(args.meter)}
    check_out_dir(args.out)
    with open_door(args) as door:
        given = {k: v for k, v in fields.items() if v is not None}
        order = OrderBuilder(door, allowed=None).order(MessageType.RECALL, given)
        (sample,) = door.generate(order)
    print(write_sample(sample.data, args.out, sample.filename))
    return EXIT_OK


# ---- through a running engine ---------------------------------------------------------------------------------


def engine_side_options(args: argparse.Namespace) -> list[str]:
    """The options given that only an engine in this process would use (``--server`` ignores them)."""
    given = [f"--{name.replace('_', '-')}" for name, default in SPEED_DEFAULTS.items()
             if getattr(args, name) != default]
    if args.device != "auto":
        given.insert(0, "--device")
    if args.store is not None:
        given.append("--store")
    return given


def generate_remote(args: argparse.Namespace) -> int:
    """``generate --server``: the same request through a running engine; the WAVs come in the reply."""
    from loopbridge.bridge.client import Client, RemoteError
    from loopbridge.bridge.security import SecurityError, load_client_keys

    check_out_dir(args.out)
    if args.timeout <= 0:
        raise InputError(f"timeout={args.timeout:g} is not accepted: expected more than 0 seconds")
    ignored = engine_side_options(args)
    if ignored:
        print(f"loopbridge: warning: {', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect with "
              "--server: the engine uses the settings it was started with (give them to `loopbridge serve`)",
              file=sys.stderr)
    fields = request_fields(args)
    frames: list[bytes] = []
    if args.audio_prompt is not None:
        try:
            frames.append(args.audio_prompt.read_bytes())
        except OSError as exc:
            raise InputError(f"audio-prompt={str(args.audio_prompt)!r} is not accepted: {exc}") from None
        fields["audio_prompt_frame"] = 1
    try:
        client_keys = load_client_keys(args.client_key) if args.client_key is not None else None
        client = Client(args.server, server_key=args.server_key, client_keys=client_keys)
    except SecurityError as exc:
        fail(str(exc))
        return EXIT_BAD_INPUT
    progress, close = progress_bar(args, "generating")
    try:
        pending = client.submit("generate", fields, frames, progress)
        reply = await_reply(client, pending, args.server, args.timeout, close)
    except RemoteError as exc:
        close()
        fail(exc.message)
        return EXIT_BAD_INPUT if exc.code in BAD_INPUT_CODES else EXIT_FAILED
    except TimeoutError as exc:
        close()
        fail(str(exc))
        return EXIT_FAILED
    finally:
        client.close()
    close()
    if args.seed is None:
        print(f"loopbridge: seed {reply.get('seed')}", file=sys.stderr)
    for note in reply.get("notes") or []:
        print(f"loopbridge: {note}", file=sys.stderr)
    for sample in reply.samples:
        if sample.wav is None:
            fail(f"the engine sent no audio for {sample.filename}")
            return EXIT_FAILED
        name = Path(str(sample.filename)).name
        print(write_sample(sample.wav, args.out, name if name and not name.startswith(".") else f"{sample.key}.wav"))
    return EXIT_OK


def await_reply(client: Any, pending: Any, endpoint: str, silence_s: float, clear_line: Callable[[], None]) -> Any:
    """``pending``'s reply, waiting as long as the engine shows signs of life (heartbeats, progress).

    Says on stderr that it is waiting when nothing has come for a moment; raises TimeoutError with a
    one-line reason after ``silence_s`` seconds without a sign of life (none at all: no engine there,
    or one with CURVE keys that this client lacks, which answers nothing).
    """
    started = time.monotonic()
    said_waiting = False
    while True:
        try:
            return pending.result(timeout=0.1)
        except TimeoutError:
            pass
        now = time.monotonic()
        heard = client.last_heard
        if heard is None:
            if not said_waiting and now - started >= WAITING_NOTICE_S:
                clear_line()
                print(f"loopbridge: waiting for the engine at {endpoint} (giving up after {silence_s:g} s)",
                      file=sys.stderr)
                said_waiting = True
            if now - started >= silence_s:
                raise TimeoutError(
                    f"no answer from the engine at {endpoint} within {silence_s:g} s: is `loopbridge serve` running "
                    "there? (an engine with CURVE keys answers only clients given its key with --server-key)")
        elif now - heard >= silence_s:
            raise TimeoutError(f"the engine at {endpoint} has been silent for {silence_s:g} s and may have stopped: "
                               "try again once it is back (its store keeps what it rendered)")
