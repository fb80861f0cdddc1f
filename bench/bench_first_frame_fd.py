"""What the first-frame bound does to the default model's one-shots beyond their first frame.

``ModelConfig.first_frame_most_db`` bounds the first frame of the clean estimate at every sampler
step (MODEL.md, "The first frame"). This compares, for the classes the config bounds, the model's
one-shots (``eval-default``'s seeds) sampled three ways:

- ``none``: without the bound (the network's own first frame);
- ``every step``: as the package samples them (the bound at every step and on the result);
- ``result only``: the bound applied to the sampled result alone (the steps sample as without it).

against the recordings of the corpus's training kits and, to understand only, its held-out kits:

- log-mel Fréchet distance (``evaluate.realism_features``) of all classes together (the bounded
  classes from the variant, the others as sampled), and with one bounded class swapped at a time;
- per class: that class's one-shots against its own recordings, and the distance's mean term
  split into the 40 band means (spectrum) and the 22 frame-block means (course over time);
- per class: attack, first frame over second, level at 0.1 s and the body (58-200 ms) against the
  loudest frame, decay from 0.1 s to 0.6 s, the share of frames from 58 ms to 0.7 s above silence;
- per class: what a judge fitted to all held-out recordings (``evaluate.Judge``) calls them.

Not a test: nothing here passes or fails.

    python bench/bench_first_frame_fd.py --corpus DIR [--model DIR] [--per-class 16] [--reference 48]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from loopbridge.engine.models.default import DefaultModel
from loopbridge.engine.models.default import model as model_module
from loopbridge.engine.models.default.evaluate import (
    ATTACK_FLOOR_DB,
    GENERATED_SEED_BASE,
    SILENCE_DB,
    EvalSettings,
    Judge,
    attack_measures,
    envelope_measures,
    frechet_distance,
    generate_class_set,
    judge_features,
    load_recordings,
    loudness_envelope,
    realism_features,
)
from loopbridge.engine.models.default.real_corpus import load_manifest
from loopbridge.engine.models.registry import EMBEDDED_DEFAULT_DIR

#: frames of the body: 58 ms to 0.2 s (hop 512 at 44.1 kHz)
_BODY_FRAMES = slice(5, 17)
#: frames read for the share above silence: 58 ms to 0.7 s, as the evaluation's jitter
_TAIL_FRAMES = slice(5, 60)
#: a frame counts as sounding this far above silence (dB)
_ABOVE_SILENCE_DB = 3.0


def sample(model: DefaultModel, names: list[str], per_class: int) -> dict[str, np.ndarray]:
    """``per_class`` one-shots of each class in ``names`` (the evaluation's seeds), one batch a class."""
    audio, labels = generate_class_set(model, per_class, EvalSettings(), GENERATED_SEED_BASE, names)
    return {name: audio[labels == model.config.classes.index(name)] for name in names}


def sample_result_only(model: DefaultModel, names: list[str], per_class: int) -> dict[str, np.ndarray]:
    """As :func:`sample`, with the steps' clean estimates left unbounded (the result still bounded)."""
    stepwise = model_module._clipped

    def unbounded(v: torch.Tensor, x: torch.Tensor, alpha_bar: torch.Tensor, config: model_module.ModelConfig,
                  first_most: torch.Tensor | None = None) -> torch.Tensor:
        return stepwise(v, x, alpha_bar, config, None)

    model_module._clipped = unbounded
    try:
        return sample(model, names, per_class)
    finally:
        model_module._clipped = stepwise


def body_figures(audio: np.ndarray) -> dict[str, float]:
    """Medians over ``audio`` ``[n, samples]`` of the envelope figures in dB (``above``: a share)."""
    envelope = loudness_envelope(audio)
    _, decay, level = envelope_measures(audio)
    return {
        "attack": float(np.median(attack_measures(audio, ATTACK_FLOOR_DB))),
        "frame0-1": float(np.median(envelope[:, 0] - envelope[:, 1])),
        "level 0.1s": float(np.median(level)),
        "body-peak": float(np.median(envelope[:, _BODY_FRAMES].mean(axis=1) - envelope.max(axis=1))),
        "decay": float(np.median(decay)),
        "above": float(np.median(np.mean(envelope[:, _TAIL_FRAMES] > SILENCE_DB + _ABOVE_SILENCE_DB, axis=1))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=EMBEDDED_DEFAULT_DIR)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--reference", type=int, default=48, help="recordings per class and split")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bound", default=None, metavar="CLASS=DB,...",
                        help="bound these classes instead of the model's config (e.g. clap=3,tom=3,perc=3,pluck=3, "
                             "the four-class bound MODEL.md measured; the shipped config bounds tom alone)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = DefaultModel.load(args.model)
    shipped = model.config
    if args.bound:
        try:
            pairs = dict(item.split("=") for item in args.bound.split(","))
            bounds = {c.strip(): float(db) for c, db in pairs.items()}
            shipped = type(shipped).from_json(shipped.to_json() | {"first_frame_most_db": bounds})
        except ValueError as exc:
            parser.error(f"--bound {args.bound!r}: {exc} (CLASS=DB pairs, comma-separated, classes of the model)")
        model.config = shipped
    classes = list(shipped.classes)
    bounded = [c for c in classes if np.isfinite(shipped.first_frame_most(c))]
    if not bounded:
        parser.error(f"the model in {args.model} bounds no class's first frame (first_frame_most_db is empty)")

    manifest = load_manifest(args.corpus)
    refs = {split: load_recordings(args.corpus, manifest, split, classes, args.reference)
            for split in ("train", "held-out")}
    ref_features = {split: realism_features(r.audio) for split, r in refs.items()}
    judge_set = load_recordings(args.corpus, manifest, "held-out", classes)
    judge = Judge(judge_features(judge_set.audio), judge_set.labels, len(classes))

    model.config = dataclasses.replace(shipped, first_frame_most_db={})
    unbounded = sample(model, classes, args.per_class)
    model.config = shipped
    variants = {"none": {c: unbounded[c] for c in bounded},
                "every step": sample(model, bounded, args.per_class),
                "result only": sample_result_only(model, bounded, args.per_class)}

    def pooled(sets: dict[str, np.ndarray]) -> np.ndarray:
        return realism_features(np.concatenate([sets.get(c, unbounded[c]) for c in classes]))

    print(f"log-mel Fréchet distance, all {len(classes)} classes ({args.per_class} one-shots each; "
          f"{', '.join(bounded)} from the variant) to {args.reference} recordings a class")
    print(f"{'':14s} {'train':>7s} {'held':>7s}")
    for name, sets in variants.items():
        features = pooled(sets)
        print(f"{name:14s} {frechet_distance(features, ref_features['train']):7.3f} "
              f"{frechet_distance(features, ref_features['held-out']):7.3f}")
    print("\nthe same, only one class from the variant (the others without the bound): train / held")
    for name in list(variants)[1:]:
        cells = []
        for c in bounded:
            features = pooled({c: variants[name][c]})
            cells.append(f"{c} {frechet_distance(features, ref_features['train']):.3f}/"
                         f"{frechet_distance(features, ref_features['held-out']):.3f}")
        print(f"{name:14s} " + "  ".join(cells))

    print("\nper class, against the class's own recordings: Fréchet distance "
          "(mean term: spectrum + course), train | held")
    for c in bounded:
        ci = classes.index(c)
        for name, sets in variants.items():
            features = realism_features(sets[c])
            cells = []
            for split in ("train", "held-out"):
                ref = ref_features[split][refs[split].labels == ci]
                gap = features.mean(axis=0) - ref.mean(axis=0)
                cells.append(f"{frechet_distance(features, ref):5.2f} "
                             f"({np.sum(gap[:40] ** 2):.2f} + {np.sum(gap[40:] ** 2):.2f})")
            print(f"{c:8s} {name:12s} " + " | ".join(cells))

    print("\nper class, medians in dB: attack (first 30 ms - 0.1..0.2 s), first frame - second, level at 0.1 s, "
          f"body (58-200 ms) - loudest frame, decay 0.1-0.6 s; share of frames 58 ms-0.7 s {_ABOVE_SILENCE_DB:g} dB "
          "above silence")
    for c in bounded:
        ci = classes.index(c)
        rows = [(f"{split} rec", r.audio[r.labels == ci]) for split, r in refs.items()]
        rows += [(name, sets[c]) for name, sets in variants.items()]
        for label, audio in rows:
            figures = body_figures(audio)
            print(f"{c:8s} {label:12s} " + "  ".join(f"{k} {v:6.2f}" if k == "above" else f"{k} {v:6.1f}"
                                                      for k, v in figures.items()))

    print("\nper class, what the judge (fitted to all held-out recordings) calls them")
    for c in bounded:
        for name, sets in variants.items():
            counts = np.bincount(judge.predict(judge_features(sets[c])), minlength=len(classes))
            print(f"{c:8s} {name:12s} " + " ".join(f"{classes[i]} {n}" for i, n in enumerate(counts) if n))
    print(f"\ntook {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
