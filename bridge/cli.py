"""The ``loopbridge`` command.

    loopbridge generate "PROMPT" [--model ID] [--kind one-shot|loop|texture|kit] [--bpm 128]
                        [--bars 1 | --seconds 2] [--variations 4] [--seed N] [--pitch 0]
                        [--sample-rate 48000] [--out DIR]
    loopbridge models [--json]
    loopbridge history [--limit N] [--json]
    loopbridge recall KEY [--bpm 128] [--out DIR]
    loopbridge serve [--zmq tcp://127.0.0.1:5555] [--events tcp://127.0.0.1:5556] [--osc 127.0.0.1:9000]
                     [--device cuda|cpu] [--memory-budget GB] [--keys DIR | --insecure] [--osc-allow LIST]
                     [--dtype bf16] [--attention sdpa|eager] [--scheduler dpm++] [--compile] [--cpu-offload]
    loopbridge generate ... --server tcp://HOST:5555 [--server-key KEY] [--timeout 30]   (through a running engine)
    loopbridge keys DIR
    loopbridge audition PATH|last
    loopbridge record SECONDS [--out FILE]
    loopbridge dance2music MOTION [--out track.wav] [--prompt WORDS] [--report]

Paths of written files go to stdout, one per line; progress and messages go to stderr. Bad input
gets a one-line error naming the value and the accepted range, exit status 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from loopbridge.engine.errors import LoopbridgeError, RequestError, UnknownModelError
from loopbridge.engine.request import (
    MAX_VARIATIONS,
    SAMPLE_RATE_RANGE,
    SEED_MAX,
    AudioPrompt,
    ConformSpec,
    GenerateRequest,
    Kind,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

#: subcommands implemented elsewhere, handed their own argv: name -> ("module:function", help)
DELEGATED: dict[str, tuple[str, str]] = {
    "train-default": ("loopbridge.engine.models.default.train:main", "train the embedded default model"),
    "eval-default": ("loopbridge.engine.models.default.evaluate:main", "measure the default model's quality"),
}


#: engine error codes that mean the user asked for something impossible (exit 2, not 1)
_BAD_INPUT_CODES = frozenset({"bad_request", "unsupported", "bad_audio", "unknown_model"})


class InputError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line, not argparse's usage block: a script or a plugin shows it as it is
        raise InputError(message)


def _positive_int(name: str, low: int, high: int) -> Callable[[str], int]:
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


def _sample_rate(text: str) -> int:
    """A whole number of Hz; its range is checked with the request (so the message names it once)."""
    try:
        return int(text)
    except ValueError:
        low, high = SAMPLE_RATE_RANGE
        raise argparse.ArgumentTypeError(
            f"sample-rate={text!r} is not accepted: expected a whole number of Hz, {low}–{high}"
        ) from None


def _number(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not accepted: expected a number") from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="loopbridge", description="AI-generated samples, conformed to your song's tempo.")
    parser.add_argument("--version", action="version", version=f"loopbridge {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    gen = sub.add_parser("generate", help="generate tempo-matched samples into a folder")
    gen.add_argument("prompt", nargs="?", default="", help="what to make, e.g. 'punchy kick' or 'house groove'")
    gen.add_argument("--model", default="default", help="model id (see `loopbridge models`), default: default")
    gen.add_argument("--kind", default=None, help="one-shot, loop, texture or kit (default: one-shot)")
    gen.add_argument("--bpm", type=_number("bpm"), default=120.0, help="the song's tempo (20–999 BPM)")
    length = gen.add_mutually_exclusive_group()
    length.add_argument("--bars", type=_number("bars"), default=None, help="length in bars (loops, textures)")
    length.add_argument("--seconds", type=_number("seconds"), default=None, help="length in seconds")
    gen.add_argument("--beats-per-bar", type=_positive_int("beats-per-bar", 1, 16), default=4)
    gen.add_argument("--variations", type=_positive_int("variations", 1, MAX_VARIATIONS), default=1,
                     help=f"how many variations, rendered as one batch (1–{MAX_VARIATIONS})")
    gen.add_argument("--seed", type=_positive_int("seed", 0, SEED_MAX), default=None,
                     help="first seed (default: a random one, printed on stderr)")
    gen.add_argument("--pitch", type=_number("pitch"), default=0.0, help="pitch shift in semitones (−24–24)")
    gen.add_argument("--sample-rate", type=_sample_rate, default=48000,
                     help="sample rate of the written files (8000–192000 Hz)")
    gen.add_argument("--steps", type=_positive_int("steps", 1, 1000), default=None, help="diffusion steps")
    gen.add_argument("--guidance", type=_number("guidance"), default=None, help="guidance scale")
    gen.add_argument("--negative", default="", help="negative prompt (models that take one)")
    gen.add_argument("--audio-prompt", type=Path, default=None, help="an audio file to make variations of")
    gen.add_argument("--strength", type=_number("strength"), default=0.5,
                     help="how far variations of the audio prompt may stray (0–1)")
    gen.add_argument("--morph-to", default=None, help="a second prompt to morph towards (models that morph)")
    gen.add_argument("--morph", type=_number("morph"), default=0.0, help="morph position 0 (prompt) – 1 (morph-to)")
    gen.add_argument("--start", type=_number("start"), default=0.0,
                     help="seconds into the piece the model imagines (Stable Audio's start; end = start + length)")
    gen.add_argument("--out", type=Path, default=Path("."), help="folder for the files (default: here)")
    _engine_options(gen)
    _server_options(gen)
    gen.set_defaults(handler=_cmd_generate)

    models = sub.add_parser("models", help="list the models available and where each comes from")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(handler=_cmd_models)

    hist = sub.add_parser("history", help="list past renders, newest first")
    hist.add_argument("--limit", type=_positive_int("limit", 1, 10000), default=20)
    hist.add_argument("--json", action="store_true")
    hist.add_argument("--store", type=Path, default=None, help="the render store folder")
    hist.set_defaults(handler=_cmd_history)

    recall = sub.add_parser("recall", help="write a past render again, conformed to a tempo")
    recall.add_argument("key", help="render key (or its first 6+ characters, from `loopbridge history`)")
    recall.add_argument("--bpm", type=_number("bpm"), default=None)
    recall.add_argument("--bars", type=_number("bars"), default=None)
    recall.add_argument("--pitch", type=_number("pitch"), default=0.0)
    recall.add_argument("--sample-rate", type=_sample_rate, default=48000)
    recall.add_argument("--out", type=Path, default=Path("."))
    _engine_options(recall)
    recall.set_defaults(handler=_cmd_recall)

    _add_serve_commands(sub)
    from loopbridge.bridge import dance_cli

    dance_cli.add_parser(sub, _engine_options, _number, _positive_int)
    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--store", type=Path, default=None, help="the render store folder (default: the data folder)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _speed_options(parser)


#: the speed and memory options and their defaults (``generate --server`` warns when one is changed)
SPEED_DEFAULTS: dict[str, Any] = {"dtype": "fp32", "attention": None, "scheduler": None, "compile": False,
                                  "cpu_offload": False}


def _speed_options(parser: argparse.ArgumentParser) -> None:
    speed = parser.add_argument_group("speed and memory (each model family uses those that apply to it)")
    speed.add_argument("--dtype", default="fp32", help="fp32, bf16, or fp16 (fp16 needs a GPU)")
    speed.add_argument("--attention", default=None, help="attention implementation: sdpa or eager")
    speed.add_argument("--scheduler", default=None,
                       help="a faster sampler at fewer steps, e.g. dpm++, dpm++-karras, unipc, ddim, euler; "
                            "renders made with each are kept apart in the store")
    speed.add_argument("--compile", action="store_true", help="torch.compile the denoiser (slow first run)")
    speed.add_argument("--cpu-offload", action="store_true",
                       help="keep weights in RAM, move each part to the GPU only while it runs (switched on by "
                            "itself for a model that would not fit the memory budget)")


def _load_options(args: argparse.Namespace) -> Any:
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loopbridge")
    except PackageNotFoundError:
        return "unknown"


def _fail(message: str) -> None:
    print(f"loopbridge: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in DELEGATED:
        target, _ = DELEGATED[args_list[0]]
        module_name, _, func = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            _fail(f"{args_list[0]} is not available in this installation: {exc}")
            return EXIT_FAILED
        return int(getattr(module, func)(args_list[1:]) or 0)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
        if getattr(args, "handler", None) is None:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        return int(args.handler(args))
    except InputError as exc:
        _fail(str(exc))
        return EXIT_BAD_INPUT
    except (RequestError, UnknownModelError) as exc:
        _fail(str(exc))
        return EXIT_BAD_INPUT
    except LoopbridgeError as exc:
        _fail(str(exc))
        return EXIT_BAD_INPUT if exc.code in _BAD_INPUT_CODES else EXIT_FAILED
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (`| head`): not an error of ours; silence the final flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # a disk full or a folder gone mid-way: one line, not a traceback
        where = f": {exc.filename!r}" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}")
        return EXIT_FAILED


# ---- generate ---------------------------------------------------------------------------------------


def _make_engine(args: argparse.Namespace) -> Any:
    from loopbridge.engine.core import Engine
    from loopbridge.engine.models.diffusers_support import resolve_dtype
    from loopbridge.engine.weights import resolve_device

    options = _load_options(args)
    device = resolve_device(args.device)
    return Engine(store_dir=args.store, device=device, dtype=resolve_dtype(args.dtype, device), load_options=options)


def build_request(args: argparse.Namespace) -> tuple[GenerateRequest, ConformSpec]:
    """The engine request and conform settings the arguments ask for (checked; raises RequestError)."""
    kind = Kind.parse(args.kind) if args.kind else Kind.ONE_SHOT
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little") % (SEED_MAX + 1)
    audio_prompt = AudioPrompt.from_file(args.audio_prompt) if args.audio_prompt is not None else None
    request = GenerateRequest(
        prompt=args.prompt,
        model=args.model,
        kind=kind,
        seed=seed,
        duration_s=args.seconds,
        bars=args.bars,
        tempo_bpm=args.bpm,
        beats_per_bar=args.beats_per_bar,
        steps=args.steps,
        guidance=args.guidance,
        negative_prompt=args.negative,
        audio_prompt=audio_prompt,
        audio_prompt_strength=args.strength,
        morph_prompt=args.morph_to,
        morph_amount=args.morph,
        start_s=args.start,
    )
    spec = ConformSpec(
        tempo_bpm=args.bpm,
        bars=args.bars if kind in (Kind.LOOP, Kind.TEXTURE) else None,
        beats_per_bar=args.beats_per_bar,
        pitch_semitones=args.pitch,
        sample_rate=args.sample_rate,
    )
    return request, spec


def _check_out_dir(out: Path) -> None:
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


def _progress_bar(
    args: argparse.Namespace, description: str
) -> tuple[Callable[[float], None] | None, Callable[[], None]]:
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


def _cmd_generate(args: argparse.Namespace) -> int:
    if args.server:
        return _generate_remote(args)
    request, spec = build_request(args)
    _check_out_dir(args.out)
    engine = _make_engine(args)
    # every check before any work, so bad input writes nothing
    planned = [part for variant in engine.variations(request, args.variations) for part in engine.expand(variant)]
    if args.seed is None:
        print(f"loopbridge: seed {request.seed}", file=sys.stderr)
    progress, close = _progress_bar(args, f"generating {len(planned)} sample{'s' * (len(planned) != 1)}")
    try:
        samples = engine.generate(request, spec, variations=args.variations, progress=progress)
    finally:
        close()
    for note in {n for s in samples for n in _notes(engine, s.render_key)}:
        print(f"loopbridge: {note}", file=sys.stderr)
    for sample in samples:
        print(export_sample(sample.path, args.out, sample.info.get("filename") or sample.path.name))
    return EXIT_OK


def _notes(engine: Any, render_key: str) -> list[str]:
    render = engine.store.get_render(render_key)
    return list(render.info.get("notes", [])) if render is not None else []


def export_sample(stored: Path, out_dir: Path, filename: str) -> Path:
    """Copy a stored file into ``out_dir`` as ``filename``, atomically; returns the new path."""
    name = Path(filename).name
    if not name or name.startswith("."):
        raise InputError(f"filename={filename!r} is not accepted: expected a plain file name")
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / name
    tmp = out_dir / f".{name}.{uuid.uuid4().hex[:8]}.part"
    try:
        shutil.copyfile(stored, tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final.resolve()


# ---- models, history, recall -----------------------------------------------------------------------------


def _cmd_models(args: argparse.Namespace) -> int:
    from loopbridge.engine.models.registry import ModelRegistry, backend_class

    rows = []
    for spec in ModelRegistry().specs():
        row: dict[str, Any] = spec.to_dict()
        try:
            row["capabilities"] = backend_class(spec.family).inspect(spec.path).to_dict()
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


def _cmd_history(args: argparse.Namespace) -> int:
    from loopbridge.engine.core import default_store_dir
    from loopbridge.engine.store import RenderStore

    store = RenderStore(args.store or default_store_dir())
    entries = store.history(limit=args.limit)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return EXIT_OK
    for e in entries:
        print(f"{e.key[:12]}  {e.model}  {e.kind:8s}  seed {e.seed:<10d} v{e.variation:<3d} {e.duration_s:6.2f} s  "
              f"{e.prompt!r}")
    return EXIT_OK


def _cmd_recall(args: argparse.Namespace) -> int:
    engine = _make_engine(args)
    render = engine.recall(args.key)
    if render is None:
        raise InputError(f"key={args.key!r} is not accepted: expected a render key from `loopbridge history`")
    request = render.request
    spec = ConformSpec(
        tempo_bpm=args.bpm if args.bpm is not None else request.tempo_bpm,
        bars=args.bars if args.bars is not None else (request.bars if request.kind is not Kind.ONE_SHOT else None),
        beats_per_bar=request.beats_per_bar,
        pitch_semitones=args.pitch,
        sample_rate=args.sample_rate,
    )
    _check_out_dir(args.out)
    sample = engine.conform(render, spec)
    print(export_sample(sample.path, args.out, sample.info.get("filename") or sample.path.name))
    return EXIT_OK


# ---- serve, keys, audition, record, generate --server ---------------------------------------------------------


def _add_serve_commands(sub: Any) -> None:
    from loopbridge.bridge import protocol as p
    from loopbridge.engine.prerender import DEFAULT_DEPTH

    serve = sub.add_parser("serve", help="run the resident engine for plugins and controllers (ZeroMQ and OSC)")
    serve.add_argument("--zmq", default=p.DEFAULT_ZMQ_ENDPOINT, metavar="ENDPOINT",
                       help=f"where requests come in (default {p.DEFAULT_ZMQ_ENDPOINT})")
    serve.add_argument("--events", default=p.DEFAULT_EVENTS_ENDPOINT, metavar="ENDPOINT",
                       help=f"where events are published, or 'off' (default {p.DEFAULT_EVENTS_ENDPOINT})")
    serve.add_argument("--osc", default=f"{p.DEFAULT_OSC_HOST}:{p.DEFAULT_OSC_PORT}", metavar="HOST:PORT",
                       help=f"where OSC comes in, or 'off' (default {p.DEFAULT_OSC_HOST}:{p.DEFAULT_OSC_PORT})")
    serve.add_argument("--osc-allow", default=None, metavar="LIST",
                       help="controllers allowed to send OSC beyond loopback: addresses or networks, comma-separated")
    serve.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    serve.add_argument("--memory-budget", type=_number("memory-budget"), default=None, metavar="GB",
                       help="memory for resident models, in GB (default: 80%% of the GPU's, or of free RAM)")
    serve.add_argument("--keys", type=Path, default=None, metavar="DIR",
                       help="CURVE keys from `loopbridge keys DIR`: required to listen beyond this machine")
    serve.add_argument("--insecure", action="store_true",
                       help="listen beyond this machine without keys: anyone who can reach the port may use it, "
                            "and nothing is encrypted")
    serve.add_argument("--store", type=Path, default=None, help="the render store folder (default: the data folder)")
    serve.add_argument("--model", default=None, help="the model to warm and to use when a request names none "
                                                     "(default: the embedded default model)")
    serve.add_argument("--prerender", type=_positive_int("prerender", 0, 64), default=DEFAULT_DEPTH,
                       help=f"variations pre-rendered after each request (0 turns it off; default {DEFAULT_DEPTH})")
    serve.add_argument("--threads", type=_positive_int("threads", 1, 1024), default=None,
                       help="CPU threads for the models (default: torch's choice)")
    serve.add_argument("--export", type=Path, default=None, metavar="DIR",
                       help="where files handed out over OSC are linked under readable names")
    serve.add_argument("--quiet", action="store_true", help="no line per request")
    _speed_options(serve)
    serve.set_defaults(handler=_cmd_serve)

    keys = sub.add_parser("keys", help="make CURVE key pairs for a server reachable beyond this machine")
    keys.add_argument("dir", type=Path, help="folder for server.key(_secret), client.key(_secret), authorized/")
    keys.set_defaults(handler=_cmd_keys)

    audition = sub.add_parser("audition", help="play a sample on this machine's audio output")
    audition.add_argument("path", help="a WAV file, or 'last' for the most recent sample in the store")
    audition.add_argument("--store", type=Path, default=None, help="the render store folder (for 'last')")
    audition.add_argument("--device", default=None, help="output device name or number (default: the system's)")
    audition.set_defaults(handler=_cmd_audition)

    record = sub.add_parser("record", help="record an audio prompt from this machine's input")
    record.add_argument("seconds", type=_number("seconds"), help="how long to record")
    record.add_argument("--out", type=Path, default=Path("prompt.wav"), help="the WAV file to write")
    record.add_argument("--sample-rate", type=_sample_rate, default=48000)
    record.add_argument("--channels", type=_positive_int("channels", 1, 8), default=2)
    record.add_argument("--device", default=None, help="input device name or number (default: the system's)")
    record.set_defaults(handler=_cmd_record)


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default=None, metavar="ENDPOINT",
                        help="go through a running engine (`loopbridge serve`), e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--server-key", default=None, metavar="KEY",
                        help="the engine's public CURVE key: 40 characters, a server.key file or its folder")
    parser.add_argument("--client-key", type=Path, default=None, metavar="FILE",
                        help="this client's secret key file (client.key_secret) when the engine lists its clients")
    parser.add_argument("--timeout", type=_number("timeout"), default=DEFAULT_SILENCE_S, metavar="SECONDS",
                        help="give up when the engine has shown no sign of life for this long (default "
                             f"{DEFAULT_SILENCE_S:g} s); a long render is waited for while the engine is alive")


def _configure_logging(quiet_requests: bool) -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("diffusers", "transformers", "urllib3", "PIL"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if quiet_requests:
        logging.getLogger("loopbridge.requests").setLevel(logging.WARNING)


def _cmd_serve(args: argparse.Namespace) -> int:
    import zmq
    from loopbridge.bridge.security import SecurityError, parse_host_port
    from loopbridge.bridge.server import ServeOptions, serve

    osc = None
    if args.osc != "off":
        try:
            osc = parse_host_port(args.osc, 9000)
        except ValueError as exc:
            raise InputError(f"osc={args.osc!r} is not accepted: {exc}") from None
    if args.memory_budget is not None and args.memory_budget <= 0:
        raise InputError(f"memory-budget={args.memory_budget:g} is not accepted: expected more than 0 GB")
    for name in ("zmq", "events"):
        value = getattr(args, name)
        if not (value == "off" and name == "events") and not value.startswith(("tcp://", "ipc://")):
            raise InputError(f"{name}={value!r} is not accepted: expected tcp://HOST:PORT or ipc://PATH")
    options = ServeOptions(
        zmq=args.zmq, events=None if args.events == "off" else args.events, osc=osc, osc_allow=args.osc_allow,
        device=args.device, memory_budget_gb=args.memory_budget, keys_dir=args.keys, insecure=args.insecure,
        store=args.store, model=args.model, prerender=args.prerender, threads=args.threads, export_dir=args.export,
        log_requests=not args.quiet, dtype=args.dtype, load_options=_load_options(args),
    )
    _configure_logging(args.quiet)
    try:
        return serve(options)
    except SecurityError as exc:
        _fail(str(exc))
        return EXIT_BAD_INPUT
    except zmq.ZMQError as exc:
        _fail(f"cannot listen on {args.zmq} / {args.events}: {exc} (is another engine running? choose other "
              "endpoints with --zmq and --events)")
        return EXIT_FAILED
    except OSError as exc:
        _fail(f"cannot listen for OSC on {args.osc}: {exc} (choose another with --osc HOST:PORT, or --osc off)")
        return EXIT_FAILED


def _cmd_keys(args: argparse.Namespace) -> int:
    from loopbridge.bridge.security import SecurityError, generate_keys

    try:
        paths = generate_keys(args.dir)
    except SecurityError as exc:
        _fail(str(exc))
        return EXIT_FAILED
    public = paths["server_public"].read_text(encoding="ascii")
    server_key = next(line.split("=", 1)[1].strip().strip('"') for line in public.splitlines()
                      if line.strip().startswith("public-key"))
    print(f"server keys: {paths['server_secret']} (keep it on the engine's machine), {paths['server_public']}")
    print(f"client keys: {paths['client_secret']}, authorized by {paths['authorized']}")
    print(f"serve with:  loopbridge serve --zmq tcp://0.0.0.0:5555 --keys {args.dir}")
    print(f"server public key (give it to clients): {server_key}")
    return EXIT_OK


def _cmd_audition(args: argparse.Namespace) -> int:
    from loopbridge.bridge.audio_io import AudioDeviceError, play

    if args.path == "last":
        from loopbridge.engine.core import default_store_dir
        from loopbridge.engine.store import RenderStore

        latest = RenderStore(args.store or default_store_dir()).latest_samples(1)
        if not latest:
            _fail("there is no sample in the store yet: generate one first")
            return EXIT_FAILED
        path = latest[0].path
    else:
        path = Path(args.path)
        if not path.is_file():
            raise InputError(f"path={args.path!r} is not accepted: expected an audio file or 'last'")
    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    try:
        seconds = play(path, device=device)
    except AudioDeviceError as exc:
        _fail(str(exc))
        return EXIT_FAILED
    print(f"played {path} ({seconds:.2f} s)", file=sys.stderr)
    return EXIT_OK


def _cmd_record(args: argparse.Namespace) -> int:
    from loopbridge.bridge.audio_io import AudioDeviceError, record

    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    try:
        path = record(args.seconds, args.out, sample_rate=args.sample_rate, channels=args.channels, device=device)
    except AudioDeviceError as exc:
        _fail(str(exc))
        return EXIT_FAILED
    print(path.resolve())
    return EXIT_OK


#: ``generate --server`` gives up after this many seconds without a sign of life from the engine
DEFAULT_SILENCE_S = 30.0
#: how long without any sign of life before saying that the engine is being waited for
_WAITING_NOTICE_S = 1.0


def _engine_side_options(args: argparse.Namespace) -> list[str]:
    """The options given that only an engine in this process would use (``--server`` ignores them)."""
    given = [f"--{name.replace('_', '-')}" for name, default in SPEED_DEFAULTS.items()
             if getattr(args, name) != default]
    if args.device != "auto":
        given.insert(0, "--device")
    if args.store is not None:
        given.append("--store")
    return given


def _generate_remote(args: argparse.Namespace) -> int:
    """``generate --server``: the same request through a running engine; the WAVs come in the reply."""
    from loopbridge.bridge.client import Client, RemoteError
    from loopbridge.bridge.security import SecurityError, load_client_keys

    _check_out_dir(args.out)
    if args.timeout <= 0:
        raise InputError(f"timeout={args.timeout:g} is not accepted: expected more than 0 seconds")
    ignored = _engine_side_options(args)
    if ignored:
        print(f"loopbridge: warning: {', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect with "
              "--server: the engine uses the settings it was started with (give them to `loopbridge serve`)",
              file=sys.stderr)
    fields: dict[str, Any] = {
        "prompt": args.prompt, "model": args.model, "kind": args.kind, "seed": args.seed, "duration_s": args.seconds,
        "bars": args.bars, "tempo_bpm": args.bpm, "beats_per_bar": args.beats_per_bar, "steps": args.steps,
        "guidance": args.guidance, "negative_prompt": args.negative or None, "variations": args.variations,
        "pitch_semitones": args.pitch, "sample_rate": args.sample_rate,
        "morph_prompt": args.morph_to, "morph_amount": args.morph if args.morph_to else None,
        "start_s": args.start or None,
    }
    frames: list[bytes] = []
    if args.audio_prompt is not None:
        try:
            frames.append(args.audio_prompt.read_bytes())
        except OSError as exc:
            raise InputError(f"audio-prompt={str(args.audio_prompt)!r} is not accepted: {exc}") from None
        fields["audio_prompt_frame"] = 1
        fields["audio_prompt_strength"] = args.strength
    try:
        client_keys = load_client_keys(args.client_key) if args.client_key is not None else None
        client = Client(args.server, server_key=args.server_key, client_keys=client_keys)
    except SecurityError as exc:
        _fail(str(exc))
        return EXIT_BAD_INPUT
    progress, close = _progress_bar(args, "generating")
    try:
        pending = client.submit("generate", fields, frames, progress)
        reply = _await_reply(client, pending, args.server, args.timeout, close)
    except RemoteError as exc:
        close()
        _fail(exc.message)
        return EXIT_BAD_INPUT if exc.code in _BAD_INPUT_CODES else EXIT_FAILED
    except TimeoutError as exc:
        close()
        _fail(str(exc))
        return EXIT_FAILED
    finally:
        client.close()
    close()
    if args.seed is None:
        print(f"loopbridge: seed {reply.get('seed')}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for sample in reply.samples:
        if sample.wav is None:
            _fail(f"the engine sent no audio for {sample.filename}")
            return EXIT_FAILED
        name = Path(str(sample.filename)).name
        if not name or name.startswith("."):
            name = f"{sample.key}.wav"
        final = args.out / name
        tmp = args.out / f".{name}.{uuid.uuid4().hex[:8]}.part"
        try:
            tmp.write_bytes(sample.wav)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        print(final.resolve())
    return EXIT_OK


def _await_reply(client: Any, pending: Any, endpoint: str, silence_s: float, clear_line: Callable[[], None]) -> Any:
    """``pending``'s reply, waiting as long as the engine shows signs of life (heartbeats, progress).

    Says on stderr that it is waiting when nothing has come for a moment; raises TimeoutError with a
    one-line reason after ``silence_s`` seconds without a sign of life (none at all: no engine there,
    or one with CURVE keys that this client lacks, which answers nothing).
    """
    import time

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
            if not said_waiting and now - started >= _WAITING_NOTICE_S:
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


if __name__ == "__main__":
    sys.exit(main())
