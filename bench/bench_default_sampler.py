"""The default model's sampler settings against held-out real recordings, in one run.

For each setting (guidance scale, per-class guidance, the noise levels guided, steps, sampler, DDIM eta,
guidance rescale) the same weights generate ``--per-class`` one-shots of every class (the evaluation's
seeds), and the evaluation's measures are taken against the corpus's held-out kits with the evaluation's judge
(:class:`~loopbridge.engine.models.default.evaluate.Judge`, fitted once to the held-out recordings):
class accuracy, log-mel Fréchet distance, diversity and memorization (share above 0.9 normalized
cross-correlation with a training recording), each setting's per-class accuracy, and the confusion
(rows: the class asked for, columns: the judge's label) of the settings named by ``--confusion``,
of the training recordings (the floor) and of the judge's own leave-one-kit-out labelling.

A setting is ``key=value`` pairs joined by ``;``: ``guidance=3``, ``steps=24``, ``sampler=ddim``,
``eta=0.5``, ``rescale=0.7``, ``interval=0.3,5.5`` (guidance only at steps whose sigma lies above 0.3 and
at most 5.5; ``interval=all``: every step), ``outside=2`` (the scale at the steps outside the interval;
default 1, the conditional prediction alone), ``class=pluck:4/clap:3`` (per-class guidance). An empty
setting is the model's own. Not a test: nothing here passes or fails.

    python bench/bench_default_sampler.py --corpus DIR [--model DIR] [--per-class 16]
        [--setting "guidance=3" --setting "sampler=ddim;eta=0.5" ...] [--confusion 0,2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from loopbridge.engine.models.default import DefaultModel
from loopbridge.engine.models.default.evaluate import (
    GENERATED_SEED_BASE,
    EvalSettings,
    Judge,
    generate_class_set,
    judge_features,
    leave_one_kit_out,
    load_recordings,
    measure_set,
)
from loopbridge.engine.models.default.model import ModelConfig
from loopbridge.engine.models.default.real_corpus import load_manifest
from loopbridge.engine.models.registry import EMBEDDED_DEFAULT_DIR

DEFAULT_SETTINGS = (
    "",
    "guidance=1.5", "guidance=3", "guidance=4", "guidance=5",
    "steps=8", "steps=32",
    "sampler=ddim", "sampler=ddim;eta=0.5", "sampler=ddim;eta=1",
    "guidance=4;rescale=0.7", "guidance=5;rescale=0.7",
)


def configured(config: ModelConfig, setting: str) -> tuple[ModelConfig, int | None]:
    """``config`` with ``setting`` applied, and the steps it asks for (None: the model's)."""
    steps = None
    changes: dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in setting.split(";"))):
        key, _, value = pair.partition("=")
        if key == "guidance":
            changes["default_guidance"] = float(value)
        elif key == "steps":
            steps = int(value)
        elif key == "sampler":
            changes["sampler"] = value
        elif key == "eta":
            changes["ddim_eta"] = float(value)
        elif key == "rescale":
            changes["guidance_rescale"] = float(value)
        elif key == "interval":
            low, _, high = value.partition(",")
            changes["guidance_interval"] = (float(low), float(high)) if value != "all" else None
        elif key == "outside":
            changes["guidance_outside"] = float(value)
        elif key == "class":
            changes["class_guidance"] = {name.strip(): float(scale) for name, _, scale in
                                         (item.partition(":") for item in value.split("/"))}
        else:
            raise SystemExit(f"setting {setting!r}: unknown key {key!r} "
                             "(guidance, steps, sampler, eta, rescale, interval, outside, class)")
    new = dataclasses.replace(config, **changes)
    ModelConfig.from_json(new.to_json())  # the same checks a config.json gets
    return new, steps


def confusion(predicted: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=int)
    for truth, guess in zip(labels, predicted, strict=True):
        matrix[truth, guess] += 1
    return matrix


def format_confusion(title: str, matrix: np.ndarray, classes: tuple[str, ...]) -> str:
    short = [c.replace("closed hat", "c.hat").replace("open hat", "o.hat")[:6] for c in classes]
    corner = "asked / judged"
    lines = [title, f"{corner:14s}" + "".join(f"{s:>7s}" for s in short)]
    for name, row in zip(short, matrix, strict=True):
        lines.append(f"{name:14s}" + "".join(f"{v:7d}" for v in row))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="real-recordings corpus (build-corpus)")
    parser.add_argument("--model", type=Path, default=EMBEDDED_DEFAULT_DIR)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--training-per-class", type=int, default=None,
                        help="training recordings per class for memorization (default: all)")
    parser.add_argument("--setting", action="append", default=None)
    parser.add_argument("--confusion", default="0", help="indices of the settings whose confusion is printed")
    parser.add_argument("--seed-base", type=int, default=GENERATED_SEED_BASE,
                        help="first seed of each class's one-shots (default: the evaluation's); other seeds "
                             "check a setting chosen on the evaluation's")
    parser.add_argument("--no-floor", action="store_true",
                        help="leave out the training recordings' figures and the judge's leave-one-kit-out")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    base = DefaultModel.load(args.model)
    classes = base.config.classes
    n = len(classes)
    settings = args.setting if args.setting is not None else list(DEFAULT_SETTINGS)
    prepared = [configured(base.config, s) for s in settings]  # bad settings fail before any work
    manifest = load_manifest(args.corpus)
    judge_set = load_recordings(args.corpus, manifest, "held-out", classes)
    reference = load_recordings(args.corpus, manifest, "held-out", classes, 48)
    training = load_recordings(args.corpus, manifest, "train", classes, args.training_per_class)
    floor = load_recordings(args.corpus, manifest, "train", classes, args.per_class)
    judge_rows = judge_features(judge_set.audio)
    judge = Judge(judge_rows, judge_set.labels, n)
    print(f"model {args.model}; corpus {args.corpus}: judge fitted to {len(judge_set.labels)} held-out recordings; "
          f"{args.per_class} one-shots per class per setting (seeds from {args.seed_base}); "
          f"memorization against {len(training.labels)} "
          f"training recordings; load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    head = (f"{'setting':34s}{'acc':>6s}{'FD':>7s}{'div':>6s}{'div min':>8s}{'memo':>7s}{'s/shot':>8s}"
            "  per class accuracy")
    print(head + "\n" + " " * 76 + " ".join(c[:5] for c in classes), flush=True)
    confusions: list[tuple[str, np.ndarray]] = []
    wanted = {int(i) for i in args.confusion.split(",") if i.strip()}
    for index, (setting, (config, steps)) in enumerate(zip(settings, prepared, strict=True)):
        model = DefaultModel(base.path, base.device, base.dtype, config, base.network)
        begun = time.perf_counter()
        audio, labels = generate_class_set(model, args.per_class, EvalSettings(steps=steps), args.seed_base)
        per_shot = (time.perf_counter() - begun) / len(labels)
        figures = measure_set(audio, labels, classes, judge, reference, training)
        per = " ".join(f"{figures['accuracy']['per_class'][c]:5.2f}" for c in classes)
        name = setting or "(model: its own settings)"
        if len(name) > 34:  # a long setting on its own line, its figures below it
            print(name)
            name = ""
        print(f"{name:34s}{figures['accuracy']['mean']:6.3f}"
              f"{figures['frechet_distance']:7.3f}{figures['diversity']['mean']:6.2f}{figures['diversity']['min']:8.2f}"
              f"{figures['memorization']['share']:7.3f}{per_shot:8.2f}  {per}", flush=True)
        if index in wanted:
            confusions.append((f"generated, {setting or 'its own settings'}",
                               confusion(judge.predict(judge_features(audio)), labels, n)))
    print(f"div = diversity (1 = the held-out recordings'); memo = share above 0.9 NCC with a training recording; "
          f"s/shot = wall time per generated one-shot in batches of {args.per_class} (with guidance, decoding)")
    for title, matrix in confusions:
        print("\n" + format_confusion(title, matrix, classes))
    if args.no_floor:
        return 0
    print()
    # how varied real kits are: held-out recordings as many per class as each setting's one-shots,
    # measured like them (their accuracy is the judge's on what it was fitted to, so no guide)
    held = load_recordings(args.corpus, manifest, "held-out", classes, args.per_class)
    figures = measure_set(held.audio, held.labels, classes, judge, reference, training)
    print(f"{'held-out recordings (own judge)':34s}{figures['accuracy']['mean']:6.3f}{figures['frechet_distance']:7.3f}"
          f"{figures['diversity']['mean']:6.2f}{figures['diversity']['min']:8.2f}"
          f"{figures['memorization']['share']:7.3f}")
    figures = measure_set(floor.audio, floor.labels, classes, judge, reference, training)
    per = " ".join(f"{figures['accuracy']['per_class'][c]:5.2f}" for c in classes)
    print(f"{'floor (training recordings)':34s}{figures['accuracy']['mean']:6.3f}{figures['frechet_distance']:7.3f}"
          f"{figures['diversity']['mean']:6.2f}{figures['diversity']['min']:8.2f}{'':7s}{'':8s}  {per}")
    loko, _ = leave_one_kit_out(judge_rows, judge_set.labels, judge_set.groups, n)
    loko_matrix = confusion(loko, judge_set.labels, n)
    per_class = np.diag(loko_matrix) / loko_matrix.sum(axis=1).clip(1)
    print(f"{'judge, leave-one-kit-out':34s}{per_class.mean():6.3f}{'':34s}  "
          + " ".join(f"{v:5.2f}" for v in per_class))
    print()
    print(format_confusion("floor: training recordings", confusion(judge.predict(judge_features(floor.audio)),
                                                                   floor.labels, n), classes) + "\n")
    print(format_confusion("judge, leave-one-kit-out on the held-out recordings", loko_matrix, classes) + "\n")
    print(f"took {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.2f} at the end",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
