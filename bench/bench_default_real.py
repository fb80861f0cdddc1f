"""Default models against held-out real recordings: a folder of one-shots none of them trained on.

Prints, side by side in one run, for each model named (``default`` is the shipped weights, else a
model folder) and for the training recordings themselves (the floor):

- accuracy: the share of generated one-shots that the judge fitted to the held-out recordings
  (:class:`~loopbridge.engine.models.default.evaluate.Judge`, the evaluation's) puts in the
  class that was asked for; the judge's own accuracy on the training recordings beside it;
- FD: Fréchet distance of the evaluation's realism features (band means, loudness envelope) to the
  held-out recordings;
- memorization: the share of generated one-shots whose best normalized cross-correlation (over
  every lag) with a training recording of the same class exceeds 0.9;
- per class, the median envelope jitter and attack (the evaluation's measures) of each model
  beside the held-out recordings'.

Classes are labelled as ``train-default --data`` labels them (sub-folder names, file words).
Not a test: nothing here passes or fails.

    python bench/bench_default_real.py --train DIR --held-out DIR [--model default --model DIR ...]
        [--per-class 16]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from loopbridge.engine.models.default import DefaultModel
from loopbridge.engine.models.default.classes import CLASSES
from loopbridge.engine.models.default.evaluate import (
    EvalSettings,
    Judge,
    attack_measures,
    envelope_measures,
    frechet_distance,
    generate_class_set,
    judge_features,
    realism_features,
)
from loopbridge.engine.models.default.folder import label_folder, read_one_shots
from loopbridge.engine.models.registry import EMBEDDED_DEFAULT_DIR


def read_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    labelled, _ = label_folder(folder, skip_unlabelled=True)
    audio, labels, _ = read_one_shots(labelled)
    return audio, labels


def best_correlation(generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``[n]``: each generated one-shot's best normalized cross-correlation, over all lags, with any
    row of ``reference``."""
    n_fft = 1 << int(np.ceil(np.log2(generated.shape[1] + reference.shape[1])))
    ref = torch.from_numpy(reference.astype(np.float32))
    ref_spec = torch.fft.rfft(ref, n_fft)
    ref_norm = ref.norm(dim=1)
    best = np.zeros(len(generated))
    for i, row in enumerate(torch.from_numpy(generated.astype(np.float32))):
        corr = torch.fft.irfft(torch.fft.rfft(row, n_fft).conj()[None] * ref_spec, n_fft)
        peak = corr.abs().amax(dim=1) / (ref_norm * row.norm() + 1e-9)
        best[i] = float(peak.max())
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--held-out", type=Path, required=True)
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train_audio, train_labels = read_folder(args.train)
    held_audio, held_labels = read_folder(args.held_out)
    present = sorted(set(held_labels.tolist()) & set(train_labels.tolist()))
    print(f"recordings: train {len(train_labels)}, held-out {len(held_labels)}; classes "
          + ", ".join(f"{CLASSES[c]} {int((train_labels == c).sum())}/{int((held_labels == c).sum())}"
                      for c in present))
    classifier = Judge(judge_features(held_audio), held_labels, len(CLASSES))
    floor_accuracy = float(np.mean(classifier.predict(judge_features(train_audio)) == train_labels))
    held_features = realism_features(held_audio)
    held_jitter, _, _ = envelope_measures(held_audio)
    held_attack = attack_measures(held_audio)
    rows: list[tuple[str, float, float, float]] = [
        ("training recordings (floor)", floor_accuracy, frechet_distance(realism_features(train_audio), held_features),
         float("nan"))]
    per_class: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
        "held-out": (held_jitter, held_attack, held_labels)}
    for name in args.model or ["default"]:
        model = DefaultModel.load(EMBEDDED_DEFAULT_DIR if name == "default" else Path(name))
        audio, labels = generate_class_set(model, args.per_class, EvalSettings(), seed_base=2_000_000)
        keep = np.isin(labels, present)
        audio, labels = audio[keep], labels[keep]
        accuracy = float(np.mean(classifier.predict(judge_features(audio)) == labels))
        fd = frechet_distance(realism_features(audio), held_features)
        memorized = np.zeros(len(labels), dtype=bool)
        for c in present:
            rows_c = labels == c
            memorized[rows_c] = best_correlation(audio[rows_c], train_audio[train_labels == c]) > 0.9
        rows.append((name, accuracy, fd, float(memorized.mean())))
        jitter, _, _ = envelope_measures(audio)
        per_class[name] = (jitter, attack_measures(audio), labels)
    print(f"\n{'':32s} accuracy     FD  memorized")
    for name, accuracy, fd, memorized in rows:
        print(f"{name[-32:]:32s} {accuracy:8.2f} {fd:6.2f} {memorized:10.3f}")
    print("\nper class: jitter dB / attack dB (medians)")
    print(f"{'class':12s}" + "".join(f"{k[-22:]:>24s}" for k in per_class))
    for c in present:
        cells = []
        for jitter, attack, labels in per_class.values():
            rows_c = labels == c
            cells.append(f"{np.median(jitter[rows_c]):10.2f} / {np.median(attack[rows_c]):6.1f}  ")
        print(f"{CLASSES[c]:12s}" + "".join(f"{cell:>24s}" for cell in cells))
    print(f"\ntook {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
