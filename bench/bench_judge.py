"""How far ``eval-default``'s judge can be trusted: its leave-one-kit-out accuracy on the held-out
recordings, and the training recordings (other kits again) labelled by the judge fitted to every
held-out one, for judge settings given on the command line.

Each ``--setting`` is ``key=value;...`` over :class:`~loopbridge.engine.models.default.evaluate.Judge`'s
settings (``l2``, ``mlp_members``, ``hidden``, ``mlp_l2``, ``iterations``, ``mlp_iterations``); ``""``
is the defaults. ``--features old`` keeps only the first 357 features (the judge's features before the
onset, pitch, low-band, course and fine-segment blocks were added). ``--nested KEY=V1,V2,...`` also
picks that setting (the first ``--setting`` otherwise) by nested leave-one-kit-out: for each kit left
out, the value with the best leave-one-kit-out accuracy on the other kits labels it, so the figure
printed is not flattered by the choice. On a corpus built with ``--extra-held-out`` it also prints the
leave-one-kit-out accuracy of the held-out recordings that are not of the extra groups (labelled by
judges fitted on every other kit, the extra ones included).
Not a test: nothing here passes or fails.

    python bench/bench_judge.py --corpus DIR [--setting "l2=0.01;mlp_members=0" ...] [--nested mlp_l2=0.01,0.1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from loopbridge.engine.models.default.classes import CLASSES
from loopbridge.engine.models.default.evaluate import (
    Judge,
    class_accuracy,
    judge_features,
    kit_of,
    leave_one_kit_out,
    load_recordings,
)
from loopbridge.engine.models.default.real_corpus import load_manifest

#: the judge's features before this bench's additions: the first 357 columns
OLD_FEATURES = 357


def parse_setting(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, _, value = part.partition("=")
        out[key] = int(value) if key in ("mlp_members", "hidden", "iterations", "mlp_iterations") else float(value)
    return out


def row(label: str, loko: dict[str, Any], floor: dict[str, Any] | None) -> str:
    return (f"{label:40s} {loko['mean']:6.3f} {'' if floor is None else format(floor['mean'], '6.3f'):>6s}  "
            + " ".join(f"{v:5.2f}" for v in loko["per_class"].values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--setting", action="append", default=None)
    parser.add_argument("--features", choices=("all", "old"), default="all")
    parser.add_argument("--nested", default=None, help="KEY=V1,V2,...: pick KEY by nested leave-one-kit-out")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as eval-default runs it
    manifest = load_manifest(args.corpus)
    started = time.perf_counter()
    held = load_recordings(args.corpus, manifest, "held-out", CLASSES)
    train = load_recordings(args.corpus, manifest, "train", CLASSES)
    x_held, x_train = judge_features(held.audio), judge_features(train.audio)
    if args.features == "old":
        x_held, x_train = x_held[:, :OLD_FEATURES], x_train[:, :OLD_FEATURES]
    print(f"{len(held.labels)} held-out and {len(train.labels)} training recordings, {x_held.shape[1]} features "
          f"({time.perf_counter() - started:.0f} s)")
    n = len(CLASSES)
    extra_groups = manifest.get("extra_held_out_groups") or []
    assert isinstance(extra_groups, list)
    extra = np.isin(np.array(held.groups), extra_groups)
    if extra.any():
        print(f"{int(extra.sum())} of the held-out recordings are of the extra evaluation-only groups")
    print(f"{'setting':40s} {'LOKO':>6s} {'train':>6s}  " + " ".join(f"{c[:5]:>5s}" for c in CLASSES))
    for text in args.setting or [""]:
        settings = parse_setting(text)
        loko, _ = leave_one_kit_out(x_held, held.labels, held.groups, n, **settings)
        floor = Judge(x_held, held.labels, n, **settings).predict(x_train)
        print(row(text or "(defaults)", class_accuracy(loko, held.labels, CLASSES),
                  class_accuracy(floor, train.labels, CLASSES)), flush=True)
        if extra.any():  # the same leave-one-kit-out labels, on the other held-out kits alone
            print(row("  of which the kits before the extra ones", class_accuracy(
                loko[~extra], held.labels[~extra], CLASSES), None), flush=True)
    if args.nested:
        key, _, values = args.nested.partition("=")
        base = parse_setting(args.setting[0]) if args.setting else {}  # the first --setting, KEY varied
        choices = [base | parse_setting(f"{key}={v}") for v in values.split(",")]
        kits = np.array([kit_of(g) for g in held.groups])
        predicted = np.zeros(len(held.labels), dtype=int)
        for kit in sorted(set(kits.tolist())):
            out = kits == kit
            inner_groups = [g for g, o in zip(held.groups, out, strict=True) if not o]
            scores = []
            for choice in choices:
                inner, _ = leave_one_kit_out(x_held[~out], held.labels[~out], inner_groups, n, **choice)
                scores.append(class_accuracy(inner, held.labels[~out], CLASSES)["mean"])
            best = choices[int(np.argmax(scores))]
            print(f"  {kit}: {key} = {best[key]} (inner " + ", ".join(f"{s:.3f}" for s in scores) + ")", flush=True)
            predicted[out] = Judge(x_held[~out], held.labels[~out], n, **best).predict(x_held[out])
        print(row(f"nested over {args.nested}", class_accuracy(predicted, held.labels, CLASSES), None))
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
