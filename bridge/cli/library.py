"""``loopbridge models``, ``history``, ``audition`` and ``record``: what is installed, what was made, and
listening and recording on this machine."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from loopbridge.engine.errors import LoopbridgeError

from .common import EXIT_FAILED, EXIT_OK, InputError, add_sample_rate, fail, number, open_door, positive_int


def add_parsers(sub: Any) -> None:
    models = sub.add_parser("models", help="list the models here (or --available ones), pull or remove one")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.add_argument("--available", action="store_true",
                        help="list checkpoints known to work, per family, and which are already here")
    models.set_defaults(handler=models_command)
    actions = models.add_subparsers(dest="action", metavar="ACTION", parser_class=type(models))
    pull = actions.add_parser("pull", help="download a checkpoint from the Hugging Face hub into its cache")
    pull.add_argument("id", metavar="ID", help="the model's id on the hub, OWNER/NAME")
    pull.add_argument("--revision", default=None, help="a branch, tag or commit (default: main)")
    pull.add_argument("--token-file", type=Path, default=None,
                      help="a file holding a hub token (default: HF_TOKEN, else the token `hf auth login` stored)")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")
    # the one command that may reach the network (every other leaves the hub client offline)
    pull.set_defaults(handler=pull_command, network=True)
    remove = actions.add_parser("remove", help="delete a pulled checkpoint (or one revision of it) from the Hugging "
                                               "Face cache")
    remove.add_argument("id", metavar="ID[@REV]",
                        help="OWNER/NAME: every revision of it; OWNER/NAME@REV: that revision alone, as `loopbridge "
                             "models` lists it")
    remove.set_defaults(handler=remove_command)

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


def _megabytes(size: int) -> str:
    if size >= 10**9:
        return f"{size / 10**9:.2f} GB"
    return f"{size / 10**6:.1f} MB"


def _pull_command(spec_id: str, revision: str) -> str:
    """The command that pulls the revision a listed model id names."""
    repo_id = spec_id.partition("@")[0]
    return f"loopbridge models pull {repo_id}" + (f" --revision {revision}" if revision not in ("", "main") else "")


def models_command(args: argparse.Namespace) -> int:
    from loopbridge.engine.models.hub import entry_size_on_disk, missing_files, size_on_disk

    if args.available:
        return available_command(args)
    rows = []
    with open_door(args, start=False) as door:
        for spec in door.models():
            row: dict[str, Any] = spec.to_dict()
            row["size_on_disk"] = size_on_disk(spec)
            if spec.source == "huggingface cache":
                row["entry_size_on_disk"] = entry_size_on_disk(spec)
            row["missing_files"] = missing_files(spec)
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
    revisions: dict[str, int] = {}
    for row in rows:
        if row["source"] == "huggingface cache":
            repo_id = row["id"].partition("@")[0]
            revisions[repo_id] = revisions.get(repo_id, 0) + 1
    for row in rows:
        caps = row.get("capabilities")
        if row["missing_files"]:
            print(f"{row['id']}  [{row['family']}]  a pull that stopped part way: {len(row['missing_files'])} "
                  f"files missing ({_megabytes(row['size_on_disk'])} on disk); run `"
                  f"{_pull_command(row['id'], row.get('revision', ''))}` to finish")
            continue
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
        tasks = [task for task in caps.get("tasks", ["generate"]) if task != "generate"]
        if tasks:
            conditioning = "; tempo, key and meter as conditions" if caps.get("musical_conditioning") else ""
            print(f"    tasks on your audio (--task with --audio-prompt): {', '.join(tasks)}{conditioning}")
        if row["source"] == "huggingface cache":
            repo_id = row["id"].partition("@")[0]
            shared = revisions[repo_id]
            entry = (f"; the cache entry of its {shared} revisions takes {_megabytes(row['entry_size_on_disk'])}"
                     if shared > 1 else "")
            print(f"    from the huggingface cache, revision {row['revision']} (commit {row['commit'][:12]}): "
                  f"{row['path']}  ({_megabytes(row['size_on_disk'])} on disk{entry})")
        else:
            print(f"    from {row['source']}: {row['path']}  ({_megabytes(row['size_on_disk'])} on disk)")
    return EXIT_OK


def available_command(args: argparse.Namespace) -> int:
    """The catalogue, each entry marked present (pulled whole), partial (a pull that stopped) or neither."""
    from loopbridge.engine.models.catalogue import CATALOGUE
    from loopbridge.engine.models.hub import entry_folder, family_loadable, folder_size, missing_files
    from loopbridge.engine.models.registry import ModelRegistry

    registry = ModelRegistry()
    listed = {spec.repo_id for spec in registry.specs() if not missing_files(spec)}  # any revision pulled whole
    rows = []
    for entry in CATALOGUE:
        row: dict[str, Any] = entry.to_dict()
        folder = entry_folder(entry.id, registry.hf_cache)
        row["status"] = "present" if entry.id in listed else "partial" if folder.is_dir() else "absent"
        row["size_on_disk"] = folder_size(folder)
        row["backend"] = family_loadable(entry.family)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print("checkpoints known to work, as published on the Hugging Face hub (read each licence on its page):")
    for row in rows:
        mark = {"present": "[here]", "partial": "[part]", "absent": "[    ]"}[row["status"]]
        print(f"{mark} {row['id']}  [{row['family']}]  {row['size']}  licence: {row['licence']}"
              f"{'  (gated: accept it on the hub first)' if row['gated'] else ''}")
        print(f"       {row['good_for']}")
        if row["status"] != "absent":
            note = "" if row["status"] == "present" else f": run `loopbridge models pull {row['id']}` to finish"
            print(f"       {_megabytes(row['size_on_disk'])} on disk{note}")
        if not row["backend"]:
            print(f"       needs the {row['family']} backend, which this installation does not have")
    return EXIT_OK


def _read_token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"token-file={str(path)!r} is not accepted: expected a readable file holding a hub token "
                         f"({getattr(exc, 'strerror', None) or exc})") from None
    if not token or len(token.split()) != 1:
        raise InputError(f"token-file={str(path)!r} is not accepted: expected one token on its own (the file is "
                         f"{'empty' if not token else 'more than one word'})")
    return token


def pull_command(args: argparse.Namespace) -> int:
    from loopbridge.engine.models.hub import PullPlan, check_repo_id, discard_partial_files, pull

    check_repo_id(args.id)
    token = _read_token(args.token_file)

    def announce(plan: PullPlan) -> None:
        print(f"pulling {plan.repo_id} ({plan.family}) at {plan.revision}: {len(plan.files)} files, "
              f"{_megabytes(plan.size_bytes)}", file=sys.stderr)

    def interrupted(_signum: int, _frame: object) -> None:
        # at once: a KeyboardInterrupt would wait for the hub client's download threads to finish their files
        discard_partial_files(args.id)
        fail("interrupted: the files finished are kept; run the same command again to fetch the rest")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job started ignoring it keeps to that
        signal.signal(signal.SIGINT, interrupted)
    result = pull(args.id, args.revision, token=token, progress=not args.quiet, on_plan=announce)
    print(f"{result.name} is here: revision {result.revision}, commit {result.commit[:12]}, "
          f"{_megabytes(result.size_on_disk)} on disk; use it as --model {result.name} (the name `loopbridge "
          f"models` lists, and the one to give the plugin and the device)", file=sys.stderr)
    print(result.path)
    return EXIT_OK


def remove_command(args: argparse.Namespace) -> int:
    from loopbridge.engine.models.hub import remove
    from loopbridge.engine.models.registry import ModelRegistry

    removed = remove(args.id, ModelRegistry())
    what = ", ".join(removed.names)
    where = "its whole cache entry" if removed.whole_entry else "its other revisions stay"
    print(f"removed {what} from the Hugging Face cache ({where}): {_megabytes(removed.freed)} freed",
          file=sys.stderr)
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
