"""Train the default model: ``loopbridge train-default`` or ``python -m loopbridge.engine.models.default.train``.

1. Render the corpus (``--per-class`` one-shots of every class from ``--seed``) and turn it into
   scaled log-mels; cached in ``--out`` so a resumed run does not render it again.
2. Train ``MelUNet`` with v-prediction on the DDPM cosine schedule; one label in ``--cfg-dropout``
   is replaced by "no class" so the same network also samples unconditionally (guidance).
   Optionally (not in the shipped weights' recipe, see MODEL.md) on log-mels shifted and scaled by
   the corpus's mean and standard deviation (``--data-norm corpus``, written to ``config.json``)
   and with Min-SNR loss weighting (``--min-snr``). ``--onset-weight`` / ``--onset-frames`` weight the
   first frames' loss, and ``--onset-rise-weight`` adds a penalty on the clean estimate's first frame
   rising over its second beyond the data's own rise: where the network's attack went wrong.
   ``--body-weight`` adds a penalty on the clean estimate's per-frame loudness (the mean over bands)
   against the training one-shot's over the frames from ``--body-from`` on (the body past the onset),
   at the timesteps whose noise share is at most ``--body-max-noise``.
   ``--time-padding`` sets how the network's convolutions pad the time axis (written to ``config.json``).
3. Keep an exponential moving average of the weights; save a checkpoint every ``--checkpoint-every``
   steps (weights, EMA, optimizer, step and every random state), so ``--resume`` continues the
   very same run.
4. Export the EMA weights as ``config.json`` + ``model.safetensors`` (and a ``loopbridge.json``
   naming the family) to ``--export`` (by default ``OUT/weights``), the folder layout the engine
   loads.

**Your own samples** (``--data FOLDER``): step 1 reads a folder of one-shots instead
(:mod:`.folder`: classes from sub-folder names or words in file names) and stretches each class
to ``--per-class`` (or the class's own ``--per-class CLASS=N``) with augmented variants
(:mod:`.augment`: pitch, EQ, saturation, envelope, room; deterministic from ``--seed``).
``--init default`` (or a model folder) fine-tunes those weights; the classes the folder lacks are
kept by training on one-shots the initial model samples for them (``--replay`` per class).
``--out`` is then the model folder itself, by default ``<data dir>/models/NAME`` where
``loopbridge models``, ``serve`` and the plugin's and device's menus find it; the checkpoint and
the prepared data live in ``OUT/training``.

The defaults are the settings that produced the weights shipped in the package. Progress goes to
stderr (a bar with the time left); the exit status is 0 on success, 2 on bad arguments or a
folder that cannot be used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import spectral
from .classes import CLASSES
from .corpus import render_corpus
from .model import TIME_PADDINGS, MelUNet, ModelConfig, sample, to_network, training_scheduler

#: the settings a fresh run uses when --steps / --lr / --warmup are not given: training from
#: scratch, and fine-tuning from --init (fewer steps at a lower rate: the weights already know
#: how one-shots sound)
SCRATCH_DEFAULTS = {"steps": 1200, "lr": 8e-4, "warmup": 100}
FINE_TUNE_DEFAULTS = {"steps": 400, "lr": 2e-4, "warmup": 20}
#: training one-shots per class when --per-class gives no N
PER_CLASS_DEFAULT = 400

#: corpus seeds: the training corpus and the held-out one the evaluation uses never overlap
TRAIN_CORPUS_SEED = 1
HELD_OUT_CORPUS_SEED = 1_000_003


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _render_class(args: tuple[int, int, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seed, per_class, name = args
    torch.set_num_threads(1)
    corpus = render_corpus(seed, per_class, classes=(name,))
    mels = spectral.log_mel(corpus.audio).numpy().astype(np.float16)
    return mels, corpus.labels, corpus.root_notes


def corpus_mels(
    seed: int, per_class: int, workers: int = 1, cache_dir: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled log-mels ``[n, N_MELS, FRAMES]`` (float16) and labels ``[n]`` of a rendered corpus.

    Rendered in ``workers`` processes (one class per task); cached as ``corpus-SEED-PER_CLASS.npz``
    in ``cache_dir`` when given.
    """
    cache = cache_dir / f"corpus-{seed}-{per_class}.npz" if cache_dir is not None else None
    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            return data["mels"], data["labels"]
    tasks = [(seed, per_class, name) for name in CLASSES]
    started = time.perf_counter()
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_render_class, tasks))
    else:
        parts = [_render_class(task) for task in tasks]
    mels = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    _log(f"rendered {len(labels)} one-shots in {time.perf_counter() - started:.1f} s")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, mels=mels, labels=labels)
        os.replace(tmp, cache)
    return mels, labels


def pick_device(name: str) -> torch.device:
    """``--device``: auto (CUDA, else Apple's MPS, else the CPU), cpu, cuda[:N] or mps; ValueError
    (a RequestError) for a device this machine lacks."""
    from ...weights import resolve_device

    return resolve_device(name)


def export_weights(network: MelUNet, config: ModelConfig, folder: Path, metadata: dict[str, Any],
                   config_data: dict[str, Any] | None = None, dtype: torch.dtype = torch.float16) -> None:
    """Write ``config.json`` and ``model.safetensors`` (``dtype``) to ``folder`` atomically.

    ``config.json`` is ``config`` written out, or ``config_data`` as given (a folder's own file, keys
    and all), with ``training`` set to ``metadata`` either way.
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in network.state_dict().items()}
    tmp = folder / "model.safetensors.tmp"
    save_file(tensors, str(tmp), metadata={k: str(v) for k, v in metadata.items()})
    os.chmod(tmp, 0o644)  # a package file: readable by every user
    os.replace(tmp, folder / "model.safetensors")
    data = config.to_json() if config_data is None else dict(config_data)
    data["training"] = metadata
    tmp_json = folder / "config.json.tmp"
    tmp_json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_json, folder / "config.json")
    # written last: the registry lists a folder with this file, and by now the weights are complete
    marker = folder / "loopbridge.json"
    if not marker.is_file():
        tmp_marker = folder / "loopbridge.json.tmp"
        tmp_marker.write_text(json.dumps({"family": "default"}) + "\n", encoding="utf-8")
        os.replace(tmp_marker, marker)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopbridge train-default",
        description="Train the embedded default model on the procedurally synthesized corpus, or on a folder "
                    "of your own one-shots (--data), from scratch or from existing weights (--init).",
    )
    parser.add_argument("--data", type=Path, default=None,
                        help="a folder of one-shots (WAV, FLAC, AIFF, OGG, MP3); classes from sub-folder names "
                             "(Kicks/, closed-hat/) or words in file names (Kick-Soft.wav); default: the "
                             "synthesized corpus")
    parser.add_argument("--init", default=None,
                        help="start from these weights: 'default' (the shipped model) or a model folder; "
                             "default: from scratch")
    parser.add_argument("--name", default=None,
                        help="with --data and no --out: the model's id (default: the data folder's name)")
    parser.add_argument("--skip-unlabelled", action="store_true",
                        help="with --data: train on the files that name a class, leaving the rest out")
    parser.add_argument("--no-augment", action="store_true",
                        help="with --data: no augmented variants, the recordings only")
    parser.add_argument("--replay", type=int, default=32,
                        help="with --data and --init: one-shots the initial model samples for each class the "
                             "folder lacks, trained on so that those classes stay as they were (0: none)")
    parser.add_argument("--extra-procedural", type=int, default=0,
                        help="with --data: this many synthesized one-shots per class as extra data")
    parser.add_argument("--out", type=Path, default=None,
                        help="checkpoint folder (corpus cache, checkpoint.pt, weights/); with --data the model "
                             "folder itself (default <data dir>/models/NAME, where loopbridge finds models)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT's checkpoint.pt")
    parser.add_argument("--export", type=Path, default=None,
                        help="where to write config.json + model.safetensors (default OUT/weights; with --data OUT)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation, augmentation and batch order")
    parser.add_argument("--corpus-seed", type=int, default=TRAIN_CORPUS_SEED)
    parser.add_argument("--per-class", action="append", default=None, metavar="N|CLASS=N",
                        help=f"training one-shots per class (default {PER_CLASS_DEFAULT}; with --data: augmented up "
                             "to this many); with --data, CLASS=N gives one class its own number, 0 keeping its "
                             "recordings as they are (repeatable; e.g. --per-class 1200 --per-class pluck=0)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"optimizer steps (default {SCRATCH_DEFAULTS['steps']}; {FINE_TUNE_DEFAULTS['steps']} "
                             "with --init)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate, AdamW (default {SCRATCH_DEFAULTS['lr']:g}; "
                             f"{FINE_TUNE_DEFAULTS['lr']:g} with --init)")
    parser.add_argument("--warmup", type=int, default=None,
                        help=f"linear warm-up steps (default {SCRATCH_DEFAULTS['warmup']}; "
                             f"{FINE_TUNE_DEFAULTS['warmup']} with --init)")
    parser.add_argument("--ema", type=float, default=0.995, help="EMA decay of the exported weights")
    parser.add_argument("--cfg-dropout", type=float, default=0.15, help="share of labels dropped to 'no class'")
    parser.add_argument("--class-weight", action="append", default=[], metavar="CLASS=W",
                        help="draw the one-shots of CLASS W times as often as the others' (repeatable; "
                             "e.g. --class-weight pluck=2 --class-weight clap=2)")
    parser.add_argument("--data-norm", choices=("corpus", "none"), default="none",
                        help="corpus: the network sees log-mels shifted and scaled by the training corpus's "
                             "mean and standard deviation; none: as they are (with --init: the initial model's)")
    # Min-SNR weighting (Hang et al., 2023) spends the loss on the middle noise levels; the floor
    # keeps the noisiest levels, which set a one-shot's class and overall envelope, in training
    parser.add_argument("--min-snr", type=float, default=0.0,
                        help="loss weight min(SNR, gamma) / (SNR + 1) with this gamma; 0: plain v-prediction loss")
    parser.add_argument("--min-snr-floor", type=float, default=0.2,
                        help="the loss weight's SNR term is at least this (max(min(SNR, gamma), floor))")
    # the network's first frame overshoots (MODEL.md, "A fine-tune for the first frame"): a
    # one-shot's onset is a few of the 88 frames, so the plain loss spends little on it
    parser.add_argument("--onset-weight", type=float, default=1.0,
                        help="the loss of the first --onset-frames frames counts this many times as much as "
                             "another frame's (the loss stays a weighted mean; 1: plain)")
    parser.add_argument("--onset-frames", type=int, default=2,
                        help="how many frames from the start --onset-weight weights (default 2)")
    parser.add_argument("--onset-rise-weight", type=float, default=0.0,
                        help="add this times the squared excess, per band, of the clean estimate's first "
                             "frame over its second beyond the training one-shot's own (scaled log-mel units; "
                             "0: off)")
    # generated percussion's body is far quieter than the recordings' (MODEL.md, "A loss on the
    # body's level"): a one-shot's loudness course is one number per frame of 80 bands' errors
    parser.add_argument("--body-weight", type=float, default=0.0,
                        help="add this times the squared difference, averaged over the frames from --body-from "
                             "on, between the clean estimate's loudness per frame (the mean over bands, scaled "
                             "log-mel units) and the training one-shot's (0: off)")
    parser.add_argument("--body-from", type=int, default=3,
                        help="the first frame --body-weight reads (default 3: from 35 ms, past the onset)")
    parser.add_argument("--body-max-noise", type=float, default=1.0,
                        help="--body-weight counts only at timesteps whose noise share 1 - alpha_bar is at most "
                             "this (default 1: every timestep)")
    # the convolutions' zero padding is a -40 dB frame before the first (MODEL.md, "A fine-tune for
    # the first frame"); the exported config.json carries the padding, so the model samples as trained
    parser.add_argument("--time-padding", choices=TIME_PADDINGS, default=None,
                        help="how the network's convolutions pad the time axis (default: the --init model's; "
                             "from scratch: zeros, as the shipped weights were trained)")
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--stop-after", type=int, default=None,
                        help="stop (with a checkpoint, without exporting) after this many steps in this call; "
                             "--resume continues the same run")
    parser.add_argument("--render-workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes rendering the corpus")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    # one thread: on a shared 2-core machine two OpenMP threads stall each other (several times
    # slower per step than one); on an idle machine --threads 2 is faster
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch and corpus rendering processes (default 1)")
    return parser


def _check_args(args: argparse.Namespace) -> str | None:
    # --per-class's values become the number for every class and the classes' own numbers
    try:
        args.per_class, args.class_per_class = per_class_counts(args.per_class or [])
    except ValueError as exc:
        return str(exc)
    for name in ("steps", "batch_size", "checkpoint_every", "threads", "render_workers"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')}={getattr(args, name)} is not accepted: expected at least 1"
    for name in ("replay", "extra_procedural", "warmup"):
        if getattr(args, name) < 0:
            return f"--{name.replace('_', '-')}={getattr(args, name)} is not accepted: expected at least 0"
    if not 0 < args.lr < 1:
        return f"--lr={args.lr} is not accepted: expected 0 < lr < 1"
    if not 0 <= args.ema < 1:
        return f"--ema={args.ema} is not accepted: expected 0 <= ema < 1"
    if not 0 <= args.cfg_dropout < 1:
        return f"--cfg-dropout={args.cfg_dropout} is not accepted: expected 0 <= p < 1"
    try:
        class_weights(args.class_weight)
    except ValueError as exc:
        return str(exc)
    if args.min_snr < 0:
        return f"--min-snr={args.min_snr} is not accepted: expected 0 (off) or a positive gamma"
    frames = ModelConfig().frames
    if not (math.isfinite(args.onset_weight) and args.onset_weight > 0):
        return f"--onset-weight={args.onset_weight} is not accepted: expected a finite weight > 0 (1: plain loss)"
    if not 1 <= args.onset_frames <= frames:
        return f"--onset-frames={args.onset_frames} is not accepted: expected 1 to {frames} (the frames of a one-shot)"
    if not (math.isfinite(args.onset_rise_weight) and args.onset_rise_weight >= 0):
        return f"--onset-rise-weight={args.onset_rise_weight} is not accepted: expected a finite weight >= 0 (0: off)"
    if not (math.isfinite(args.body_weight) and args.body_weight >= 0):
        return f"--body-weight={args.body_weight} is not accepted: expected a finite weight >= 0 (0: off)"
    if not 0 <= args.body_from < frames:
        return f"--body-from={args.body_from} is not accepted: expected 0 to {frames - 1} (a frame of a one-shot)"
    if not 0 < args.body_max_noise <= 1:
        return f"--body-max-noise={args.body_max_noise} is not accepted: expected 0 < share <= 1"
    if args.min_snr_floor < 0:
        return f"--min-snr-floor={args.min_snr_floor} is not accepted: expected at least 0"
    if args.data is None:
        for flag, value in (("--name", args.name), ("--skip-unlabelled", args.skip_unlabelled or None),
                            ("--no-augment", args.no_augment or None),
                            ("--extra-procedural", args.extra_procedural or None),
                            ("--per-class CLASS=N", args.class_per_class or None)):
            if value is not None:
                return f"{flag} is not accepted without --data FOLDER"
    if args.name is not None and (not args.name.strip() or any(c in args.name for c in "/\\:") or
                                  args.name.startswith(".")):
        return f"--name={args.name!r} is not accepted: expected a folder name (no '/', '\\\\', ':' or leading '.')"
    return None


def _class_name(name: str) -> str:
    """A class named on the command line (``closed-hat``, ``open_hat``) as :data:`CLASSES` spells it."""
    return name.strip().replace("-", " ").replace("_", " ")


def per_class_counts(specs: Sequence[str]) -> tuple[int, dict[str, int]]:
    """``--per-class`` values (``N`` or ``CLASS=N``) as the number for every class (the last ``N``, else
    :data:`PER_CLASS_DEFAULT`) and the classes' own numbers, class name -> N; raises ValueError naming
    a bad one."""
    count = PER_CLASS_DEFAULT
    own: dict[str, int] = {}
    for spec in specs:
        name, sep, value = spec.rpartition("=")
        try:
            number = int(value)
        except ValueError:
            number = -1
        if not sep:
            if number < 1:
                raise ValueError(f"--per-class={spec!r} is not accepted: expected a whole number N >= 1, or CLASS=N "
                                 f"(one class's own number)")
            count = number
            continue
        name = _class_name(name)
        if name not in CLASSES or number < 0:
            raise ValueError(f"--per-class={spec!r} is not accepted: expected CLASS=N with N a whole number >= 0 "
                             f"(0: the class's recordings as they are) and CLASS one of {', '.join(CLASSES)}")
        own[name] = number
    return count, own


def class_weights(specs: Sequence[str]) -> dict[str, float]:
    """``--class-weight`` values (``CLASS=W``) as class name -> weight; raises ValueError naming a bad one."""
    weights: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.rpartition("=")
        name = _class_name(name)
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or name not in CLASSES or not (weight > 0 and math.isfinite(weight)):
            raise ValueError(f"--class-weight={spec!r} is not accepted: expected CLASS=W with W > 0 and CLASS one "
                             f"of {', '.join(CLASSES)}")
        weights[name] = weight
    return weights


def frame_weights(frames: int, onset_frames: int, onset_weight: float) -> torch.Tensor:
    """``[frames]``: each frame's weight in the loss, the first ``onset_frames`` ``onset_weight``
    times another's, scaled to a mean of 1 (so a loss whose error is the same in every frame is
    that error, whatever the weights)."""
    weights = torch.ones(frames, dtype=torch.float64)
    weights[:onset_frames] = onset_weight
    return (weights / weights.mean()).float()


def onset_rise_excess(clean_estimate: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """``[B]``: the mean over bands of the squared amount by which the estimate's first frame rises
    over its second beyond the true one-shot's rise in that band (zero where it rises less).

    Both ``[B, mels, frames]`` in the same units (the network's); a one-shot starts at its onset,
    which falls in both frames, so a first frame far louder than the second is the network's error.
    """
    rise = clean_estimate[..., 0] - clean_estimate[..., 1]
    true_rise = clean[..., 0] - clean[..., 1]
    return torch.relu(rise - true_rise).pow(2).mean(dim=1)


def body_level_error(clean_estimate: torch.Tensor, clean: torch.Tensor, start: int) -> torch.Tensor:
    """``[B]``: the squared difference between the estimate's loudness and the true one-shot's,
    frame by frame from frame ``start`` on, averaged over those frames; a frame's loudness is the
    mean of its bands (both ``[B, mels, frames]`` in the same units, the network's).

    A body too quiet by the same amount in every band counts in full; band errors that cancel in
    the mean (a spectrum tilted about the right level) do not count: the plain loss has those.
    """
    difference = (clean_estimate[..., start:] - clean[..., start:]).mean(dim=1)
    return difference.pow(2).mean(dim=1)


def training_error(prediction: torch.Tensor, target: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor,
                   alpha_bar: torch.Tensor, weights: torch.Tensor | None = None,
                   rise_weight: float = 0.0, v_weight: torch.Tensor | None = None,
                   body_weight: float = 0.0, body_from: int = 3, body_max_noise: float = 1.0) -> torch.Tensor:
    """``[B]``: each one-shot's loss, the squared v-prediction error averaged over bands and frames
    (frames weighted by ``weights`` ``[frames]``, from :func:`frame_weights`; each one-shot's then by
    ``v_weight`` ``[B]``, the Min-SNR weight, when given), plus ``rise_weight``
    times :func:`onset_rise_excess` of the clean estimate ``sqrt(a) x - sqrt(1 - a) v`` implied by
    ``prediction`` (``alpha_bar`` ``[B]``), plus ``body_weight`` times :func:`body_level_error` of
    that estimate from frame ``body_from`` on, for the one-shots whose noise share ``1 - a`` is at
    most ``body_max_noise`` (zero for the others). With ``x = sqrt(a) x0 + sqrt(1 - a) eps``, the clean
    estimate's error is ``sqrt(1 - a)`` times the v error, frame by frame: weighting a frame's v
    error weights its clean estimate's error alike."""
    squared = (prediction - target).pow(2)
    if weights is not None:
        squared = squared * weights.to(squared.device, squared.dtype)
    error = squared.mean(dim=(1, 2))
    if v_weight is not None:
        error = error * v_weight
    if rise_weight <= 0 and body_weight <= 0:
        return error
    # the terms on the clean estimate, not weighted by v_weight
    a = alpha_bar.view(-1, 1, 1)
    estimate = a.sqrt() * noisy - (1 - a).sqrt() * prediction
    if rise_weight > 0:
        error = error + rise_weight * onset_rise_excess(estimate, clean)
    if body_weight > 0:
        counted = ((1 - alpha_bar.view(-1)) <= body_max_noise).to(error.dtype)
        error = error + body_weight * counted * body_level_error(estimate, clean, body_from)
    return error


def _lr_at(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def load_initial(init: str) -> tuple[MelUNet, ModelConfig, Path]:
    """``--init``: the network and config of 'default' (the shipped weights) or a model folder.

    Raises ValueError naming the value for a folder that is not a default-family model.
    """
    from ...errors import ModelLoadError
    from ..registry import EMBEDDED_DEFAULT_DIR
    from .backend import DefaultModel

    folder = EMBEDDED_DEFAULT_DIR if init == "default" else Path(init).expanduser()
    if not (folder / "config.json").is_file():
        raise ValueError(f"--init={init!r} is not accepted: expected 'default' or a folder holding a default "
                         f"model's config.json and model.safetensors")
    try:
        model = DefaultModel.load(folder)
    except ModelLoadError as exc:
        raise ValueError(f"--init={init!r} is not accepted: {exc}") from exc
    if tuple(model.config.classes) != CLASSES:
        raise ValueError(f"--init={init!r} is not accepted: its classes {list(model.config.classes)} are not "
                         f"this code's {list(CLASSES)}")
    return model.network, model.config, folder


def _folder_digest(files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]


def folder_mels(args: argparse.Namespace, cache_dir: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Scaled log-mels ``[n, N_MELS, FRAMES]`` (float16), labels ``[n]`` and a summary of ``--data``:
    its labelled recordings, each class stretched to ``--per-class`` by augmentation (unless
    ``--no-augment``), plus ``--extra-procedural`` synthesized one-shots per class.

    Cached in ``cache_dir`` under a digest of the files (paths, sizes, times) and the settings, so a
    resumed run trains on the very same data. Raises ValueError (UnlabelledFilesError) for a folder
    that cannot be used.
    """
    from .augment import variants
    from .folder import label_folder, read_one_shots

    labelled, unlabelled = label_folder(args.data, skip_unlabelled=args.skip_unlabelled)
    key_settings: list[Any] = [args.seed, args.per_class, args.no_augment, args.extra_procedural, args.corpus_seed]
    if args.class_per_class:
        # runs without classes' own numbers keep the data their caches were saved under
        key_settings.append(sorted(args.class_per_class.items()))
    key = _folder_digest([item.path for item in labelled]) + "-" + hashlib.sha256(
        json.dumps([[str(i.path), i.label] for i in labelled] + key_settings).encode()
    ).hexdigest()[:8]
    cache = cache_dir / f"data-{key}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            summary = json.loads(str(data["summary"]))
            return data["mels"], data["labels"], summary
    started = time.perf_counter()
    audio, labels, silent = read_one_shots(labelled)
    counts = {CLASSES[c]: int((labels == c).sum()) for c in np.unique(labels)}
    _log(f"read {len(labels)} recordings from {str(args.data)!r}: "
         + ", ".join(f"{name} {n}" for name, n in counts.items())
         + (f"; {len(unlabelled)} unlabelled left out" if unlabelled else "")
         + (f"; {len(silent)} silent left out" if silent else ""))
    if not args.no_augment:
        audio, labels = variants(audio, labels, args.per_class, args.seed,
                                 class_counts={CLASSES.index(name): n for name, n in args.class_per_class.items()})
    mels = np.concatenate([
        spectral.log_mel(audio[i:i + 64]).numpy().astype(np.float16) for i in range(0, len(audio), 64)
    ])
    if args.extra_procedural:
        extra_mels, extra_labels = corpus_mels(args.corpus_seed, args.extra_procedural, workers=args.render_workers,
                                               cache_dir=cache_dir)
        mels, labels = np.concatenate([mels, extra_mels]), np.concatenate([labels, extra_labels])
    summary = {"recordings": counts, "training_items": len(labels), "unlabelled": len(unlabelled),
               "silent": len(silent)}
    _log(f"prepared {len(labels)} training one-shots in {time.perf_counter() - started:.1f} s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, mels=mels, labels=labels, summary=np.array(json.dumps(summary)))
    os.replace(tmp, cache)
    return mels, labels, summary


def replay_mels(network: MelUNet, config: ModelConfig, missing: Sequence[int], per_class: int, seed: int,
                cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """One-shots (scaled log-mels, float16) the initial ``network`` samples for the ``missing``
    classes, ``per_class`` each, at 8 steps and the default guidance; cached in ``cache``."""
    if cache.is_file():
        with np.load(cache) as data:
            return data["mels"], data["labels"]
    started = time.perf_counter()
    parts = []
    labels = np.repeat(np.asarray(missing, dtype=np.int64), per_class)
    generator = torch.Generator(device="cpu").manual_seed(seed + 0x7E91A7)
    network.eval()
    for i in range(0, len(labels), 16):
        chunk = labels[i:i + 16]
        noise = torch.randn((len(chunk), config.n_mels, config.frames), generator=generator)
        parts.append(sample(network, config, chunk.tolist(), noise, 8, config.default_guidance).numpy())
    mels = np.concatenate(parts).astype(np.float16)
    _log(f"sampled {len(labels)} one-shots of the initial model's {', '.join(CLASSES[c] for c in missing)} "
         f"in {time.perf_counter() - started:.1f} s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, mels=mels, labels=labels)
    os.replace(tmp, cache)
    return mels, labels


class Progress:
    """A progress bar with the time left, on stderr: redrawn in place on a terminal, a line every
    ``interval_s`` otherwise (logs)."""

    def __init__(self, total: int, start: int, interval_s: float = 20.0) -> None:
        self.total, self.start = total, start
        self.started = time.perf_counter()
        self.interval_s = interval_s
        self.tty = sys.stderr.isatty()
        self.last = -math.inf

    def line(self, step: int, detail: str) -> str:
        done = step - self.start
        elapsed = time.perf_counter() - self.started
        left_s = elapsed / done * (self.total - step) if done > 0 else math.nan
        eta = "--:--" if math.isnan(left_s) else f"{int(left_s) // 60:d}:{int(left_s) % 60:02d}"
        width = 24
        filled = int(width * step / self.total)
        return f"[{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} {100 * step / self.total:3.0f}% " \
               f"ETA {eta} {detail}"

    def update(self, step: int, detail: str) -> None:
        now = time.perf_counter()
        final = step >= self.total
        if self.tty:
            if now - self.last >= 0.5 or final:
                self.last = now
                print("\r" + self.line(step, detail), end="\n" if final else "", file=sys.stderr, flush=True)
        elif now - self.last >= self.interval_s or final:
            self.last = now
            _log(self.line(step, detail))

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr, flush=True)


def _default_out(args: argparse.Namespace) -> Path:
    from ..registry import default_data_dir

    if args.data is None:
        return Path("runs/default-model")
    name = args.name or Path(args.data).expanduser().resolve().name or "my-samples"
    return default_data_dir() / "models" / name


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    fine_tune = args.init is not None
    for name, value in (FINE_TUNE_DEFAULTS if fine_tune else SCRATCH_DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    problem = _check_args(args)
    if problem:
        parser.print_usage(sys.stderr)
        _log(f"error: {problem}")
        return 2
    try:
        device = pick_device(args.device)
    except ValueError as exc:
        _log(f"error: {exc}")
        return 2
    torch.set_num_threads(args.threads)
    out: Path = args.out if args.out is not None else _default_out(args)
    folder_mode = args.data is not None
    # with --data, OUT is the model folder and the training state lives beside the weights
    work = out / "training" if folder_mode else out
    checkpoint_path = work / "checkpoint.pt"
    export_dir = args.export if args.export is not None else (out if folder_mode else out / "weights")
    if args.resume and not checkpoint_path.is_file():
        _log(f"error: --resume given but {str(checkpoint_path)!r} does not exist")
        return 2
    initial: tuple[MelUNet, ModelConfig, Path] | None = None
    if fine_tune:
        try:
            initial = load_initial(args.init)
        except ValueError as exc:
            _log(f"error: {exc}")
            return 2
    work.mkdir(parents=True, exist_ok=True)

    wall_start = time.perf_counter()
    cpu_start = time.process_time()
    summary: dict[str, Any] = {}
    if folder_mode:
        from ...errors import AudioReadError

        try:
            mels_np, labels_np, summary = folder_mels(args, work)
        except (ValueError, AudioReadError) as exc:
            _log(f"error: {exc}")
            return 2
    else:
        mels_np, labels_np = corpus_mels(args.corpus_seed, args.per_class, workers=args.render_workers, cache_dir=work)

    if initial is not None:
        config = initial[1]
        missing = [c for c in range(len(CLASSES)) if c not in set(labels_np.tolist())]
        if missing and args.replay:
            replay, replay_labels = replay_mels(initial[0], config, missing, args.replay, args.seed,
                                                work / f"replay-{args.replay}-{args.seed}.npz")
            mels_np = np.concatenate([mels_np, replay])
            labels_np = np.concatenate([labels_np, replay_labels])
    elif args.data_norm == "corpus":
        # rounded so config.json states them exactly
        config = ModelConfig(data_mean=round(float(mels_np.mean(dtype=np.float64)), 4),
                             data_std=round(float(mels_np.std(dtype=np.float64)), 4))
    else:
        config = ModelConfig()
    if args.time_padding is not None:
        config = replace(config, time_padding=args.time_padding)
        _log(f"time padding: {args.time_padding}")
    mels = to_network(torch.from_numpy(mels_np.astype(np.float32)).to(device), config)
    labels = torch.from_numpy(labels_np).to(device)
    torch.manual_seed(args.seed)
    network = MelUNet(config).to(device)
    if initial is not None:
        network.load_state_dict(initial[0].state_dict())
        network.requires_grad_(True)
    ema = MelUNet(config).to(device)
    ema.load_state_dict(network.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = training_scheduler(config)
    alphas = scheduler.alphas_cumprod.to(device)
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    step = 0
    # time spent by earlier calls of a resumed run, so the exported figures cover the whole run
    earlier_wall_s = earlier_cpu_s = 0.0
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                if k not in ("out", "resume", "export", "device", "threads", "checkpoint_every", "stop_after",
                             "render_workers", "name")}
    if not args.class_weight:
        # runs without class weights keep the settings their checkpoints were saved with
        settings.pop("class_weight")
    if not args.class_per_class:
        # so do runs without classes' own --per-class numbers
        settings.pop("class_per_class")
    onset_settings = {key: settings.pop(key) for key in ("onset_weight", "onset_frames", "onset_rise_weight")}
    if args.onset_weight != 1.0 or args.onset_rise_weight > 0:
        # runs with the plain loss keep the settings their checkpoints were saved with
        settings.update(onset_settings)
    body_settings = {key: settings.pop(key) for key in ("body_weight", "body_from", "body_max_noise")}
    if args.body_weight > 0:
        # runs without the body term keep the settings their checkpoints were saved with
        settings.update(body_settings)
    if args.time_padding is None:
        # runs that keep the initial model's padding keep the settings their checkpoints were saved with
        settings.pop("time_padding")
    if not folder_mode:
        # the procedural corpus's settings stay as they were, so older checkpoints still resume
        for key in ("data", "init", "skip_unlabelled", "no_augment", "replay", "extra_procedural"):
            settings.pop(key)

    if args.resume:
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        if state["settings"] != settings:
            _log(f"error: checkpoint was trained with {state['settings']}, not {settings}")
            return 2
        network.load_state_dict(state["network"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        step = int(state["step"])
        earlier_wall_s, earlier_cpu_s = float(state.get("wall_s", 0.0)), float(state.get("cpu_s", 0.0))
        _log(f"resumed at step {step}")

    def wall_s() -> float:
        return earlier_wall_s + time.perf_counter() - wall_start

    def cpu_s() -> float:
        return earlier_cpu_s + time.process_time() - cpu_start

    def save_checkpoint() -> None:
        state = {
            "network": network.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "step": step,
            "settings": settings, "wall_s": wall_s(), "cpu_s": cpu_s(),
        }
        tmp = checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, checkpoint_path)

    n = len(labels)
    # --class-weight: each one-shot drawn in proportion to its class's weight (else uniformly)
    weights_by_class = class_weights(args.class_weight)
    draw = None
    if weights_by_class:
        per_class_weight = torch.tensor([weights_by_class.get(name, 1.0) for name in CLASSES] + [1.0],
                                        dtype=torch.float64)
        draw = per_class_weight[labels.cpu().clamp(max=len(CLASSES))]
        _log("class weights: " + ", ".join(f"{k} {v:g}" for k, v in weights_by_class.items()))
    weights_by_frame = None
    if args.onset_weight != 1.0:
        weights_by_frame = frame_weights(config.frames, args.onset_frames, args.onset_weight).to(device)
        _log(f"onset weight: the first {args.onset_frames} frames' loss x{args.onset_weight:g}")
    if args.onset_rise_weight > 0:
        _log(f"onset rise: the first frame's rise over the second beyond the data's, x{args.onset_rise_weight:g}")
    if args.body_weight > 0:
        _log(f"body level: the clean estimate's loudness per frame from frame {args.body_from} on, "
             f"x{args.body_weight:g}, at noise shares up to {args.body_max_noise:g}")
    network.train()
    loss_avg = None
    stop_at = args.steps if args.stop_after is None else min(args.steps, step + args.stop_after)
    progress = Progress(args.steps, step)
    _log(f"training on {n} one-shots, {'from ' + args.init if fine_tune else 'from scratch'}, "
         f"{args.steps} steps of {args.batch_size}")
    while step < stop_at:
        if draw is None:
            index = torch.randint(0, n, (args.batch_size,), generator=generator).to(device)
        else:
            index = torch.multinomial(draw, args.batch_size, replacement=True, generator=generator).to(device)
        x0 = mels[index]
        y = labels[index].clone()
        drop = torch.rand(args.batch_size, generator=generator).to(device) < args.cfg_dropout
        y[drop] = config.null_class
        noise = torch.randn(x0.shape, generator=generator).to(device)
        t = torch.randint(0, config.train_timesteps, (args.batch_size,), generator=generator).to(device)
        a = alphas[t].view(-1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = a.sqrt() * noise - (1 - a).sqrt() * x0  # v
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, args)
        prediction = network(noisy, t, y)
        snr_weight = None
        if args.min_snr > 0:
            snr = a.view(-1) / (1 - a.view(-1))
            snr_weight = snr.clamp(min=min(args.min_snr_floor, args.min_snr), max=args.min_snr) / (snr + 1)
        error = training_error(prediction, target, noisy, x0, a.view(-1), weights_by_frame,
                               args.onset_rise_weight, snr_weight, args.body_weight, args.body_from,
                               args.body_max_noise)
        loss = error.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), network.parameters(), strict=True):
                p_ema.lerp_(p, 1 - decay)
        step += 1
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        if step % args.checkpoint_every == 0 or step == stop_at:
            save_checkpoint()
        progress.update(step, f"loss {loss_avg:.4f} lr {_lr_at(step - 1, args):.2e} "
                              f"wall {wall_s() / 60:.1f} min cpu {cpu_s() / 60:.1f} min")

    if step < args.steps:
        progress.close()
        _log(f"stopped at step {step}/{args.steps}; continue with --resume")
        return 0
    metadata = {**settings, **onset_settings, **body_settings, "wall_s": round(wall_s(), 1), "cpu_s": round(cpu_s(), 1),
                "device": device.type, "final_loss": round(float(loss_avg or 0.0), 5)}
    if summary:
        metadata["data_summary"] = json.dumps(summary)
    export_weights(ema, config, export_dir, metadata)
    _log(f"exported {export_dir}/model.safetensors after {step} steps")
    if folder_mode and args.export is None:
        _log(f"the model is {export_dir.name!r}: loopbridge models lists it when {str(export_dir.parent)!r} is "
             f"searched (<data dir>/models or $LOOPBRIDGE_MODELS)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
