"""Is the evaluation's envelope measure one of flicker? Read on recordings only (no model, no decoder).

Per class, over the corpus's training and held-out recordings (``--per-class`` of each split, spread
over the kits): the median jitter (``evaluate.envelope_measures``: the frame-to-frame loudness
change, which counts a decay's slope) and flicker (``evaluate.flicker_measures``: the loudness's
wobble around its own course), and the training kits' figure over the held-out kits' (a measure that
does not punish one kit's decay rate scores them near 1 where the kits do not differ in wobble).
Then the held-out recordings altered in a known way, each figure over the unaltered one's:

- ``decay +0.3``: a steeper decay, 0.3 dB more a frame (26 dB a second), no wobble added: a flicker
  measure should stay near 1, a slope-counting one rises;
- ``wobble +-1 dB``: the waveform's gain alternating between +1 and -1 dB every two hops (23 ms; a
  gain flipping every hop is averaged away by the 2048-sample STFT window before any measure reads it);
- ``frames +-1 dB``: each STFT frame's gain alternating between +1 and -1 dB, resynthesized (what a
  decoder's frame-by-frame flicker is; the overlap-add spreads it over the neighbouring frames).

Not a test: nothing here passes or fails.

    python bench/bench_flicker_measure.py --corpus DIR [--per-class 48]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from loopbridge.engine.models.default import spectral
from loopbridge.engine.models.default.classes import CLASSES
from loopbridge.engine.models.default.evaluate import (
    FLICKER_FLOOR_DB,
    JITTER_FLOOR_DB,
    envelope_measures,
    flicker_measures,
    load_recordings,
)
from loopbridge.engine.models.default.real_corpus import load_manifest


def steeper(audio: np.ndarray, db_per_frame: float = 0.3) -> np.ndarray:
    frames = np.arange(audio.shape[1]) / spectral.HOP
    return (audio * 10.0 ** (-db_per_frame * frames / 20.0)).astype(np.float32)


def wobble(audio: np.ndarray, db: float = 1.0, hops: int = 2) -> np.ndarray:
    sign = np.where((np.arange(audio.shape[1]) // (hops * spectral.HOP)) % 2 == 1, -1.0, 1.0)
    return (audio * 10.0 ** (sign * db / 20.0)).astype(np.float32)


def frame_wobble(audio: np.ndarray, db: float = 1.0) -> np.ndarray:
    spec = spectral.stft(torch.from_numpy(audio))
    sign = np.where(np.arange(spec.shape[-1]) % 2 == 1, -1.0, 1.0)
    gain = torch.from_numpy(10.0 ** (sign * db / 20.0)).to(spec.real.dtype)
    return spectral.istft(spec * gain[None, None, :], audio.shape[1]).numpy()


ALTERED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "decay +0.3": steeper, "wobble +-1 dB": wobble, "frames +-1 dB": frame_wobble}


def medians(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    for c in range(n):
        v = values[(labels == c) & ~np.isnan(values)]
        out[c] = np.median(v) if v.size else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=48)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    classes = list(CLASSES)
    manifest = load_manifest(args.corpus)
    train = load_recordings(args.corpus, manifest, "train", classes, args.per_class)
    held = load_recordings(args.corpus, manifest, "held-out", classes, args.per_class)
    n = len(classes)

    def both(audio: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return medians(envelope_measures(audio)[0], labels, n), medians(flicker_measures(audio), labels, n)

    rows: list[tuple[str, np.ndarray]] = []
    train_jitter, train_flicker = both(train.audio, train.labels)
    held_jitter, held_flicker = both(held.audio, held.labels)
    rows += [("jitter dB, training kits", train_jitter), ("jitter dB, held-out kits", held_jitter),
             (f"jitter, training / held-out (>= {JITTER_FLOOR_DB})", train_jitter / np.maximum(held_jitter,
                                                                                              JITTER_FLOOR_DB)),
             ("flicker dB, training kits", train_flicker), ("flicker dB, held-out kits", held_flicker),
             ("flicker, training / held-out", train_flicker / np.maximum(held_flicker, 1e-9)),
             (f"flicker, training / held-out (both >= {FLICKER_FLOOR_DB})",
              np.maximum(train_flicker, FLICKER_FLOOR_DB) / np.maximum(held_flicker, FLICKER_FLOOR_DB))]
    for name, alter in ALTERED.items():
        jitter, flicker = both(alter(held.audio), held.labels)
        rows += [(f"held-out {name}: jitter / unaltered", jitter / np.maximum(held_jitter, 1e-9)),
                 (f"held-out {name}: flicker / unaltered", flicker / np.maximum(held_flicker, 1e-9)),
                 (f"held-out {name}: flicker dB", flicker)]
    counts = [int(np.sum(~np.isnan(flicker_measures(held.audio[held.labels == c])))) for c in range(n)]
    print(f"{len(train.labels)} training and {len(held.labels)} held-out recordings in {args.corpus}")
    print(f"{'':44s}" + "".join(f"{c[:6]:>7s}" for c in classes))
    for label, values in rows:
        print(f"{label:44s}" + "".join(f"{v:7.2f}" for v in values))
    print(f"{'held-out one-shots with a flicker figure':44s}" + "".join(f"{v:7d}" for v in counts))
    print(f"took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
