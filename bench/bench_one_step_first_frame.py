"""The default network's one-step clean estimate of recorded one-shots: is its first frame too loud?

The network is asked, once per noise level ``t``, to denoise the log-mels of the corpus's training
recordings (``--split``; ``--per-class`` a class, spread over its kits) noised at ``t`` (one noise
draw per recording, the same for every model and level), conditioned on the recording's class, no
guidance. Its clean estimate ``sqrt(a) x - sqrt(1 - a) v`` is clipped as the sampler clips it. Per
class, medians over the recordings, in dB:

- ``first``: the estimate's first frame loudness minus the recording's (the frame the sampler's
  one-shots overshoot, MODEL.md "The first frame");
- ``second``: the same for the second frame;
- ``rest``: the mean over frames 2-87 of the same difference;
- ``rise``: the estimate's first frame over its second minus the recording's own (the excess).

``--model`` may be given several times (default: the package's weights), to compare a fine-tune
with the weights it started from. Not a test: nothing here passes or fails.

    python bench/bench_one_step_first_frame.py --corpus DIR [--model DIR ...] [--t 100 --t 300 ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from loopbridge.engine.models.default import DefaultModel, spectral
from loopbridge.engine.models.default.evaluate import load_recordings
from loopbridge.engine.models.default.model import CLIP_UNIT, from_network, to_network, training_scheduler
from loopbridge.engine.models.default.real_corpus import load_manifest
from loopbridge.engine.models.registry import EMBEDDED_DEFAULT_DIR


def loudness(mel: torch.Tensor) -> np.ndarray:
    """``[n, frames]``: each frame's loudness (dB) of scaled log-mels."""
    return spectral.frame_loudness_db(spectral.unit_to_db(mel.float())).numpy()


@torch.no_grad()
def one_step(model: DefaultModel, clean: torch.Tensor, labels: np.ndarray, t: int, noise: torch.Tensor) -> torch.Tensor:
    """The network's clean estimate (scaled log-mels) of ``clean`` noised at ``t`` with ``noise``."""
    config = model.config
    alpha = training_scheduler(config).alphas_cumprod[t].float()
    x0 = to_network(clean, config)
    noisy = alpha.sqrt() * x0 + (1 - alpha).sqrt() * noise
    parts = []
    for i in range(0, len(labels), 32):
        v = model.network(noisy[i:i + 32], torch.full((len(labels[i:i + 32]),), t),
                          torch.as_tensor(labels[i:i + 32]))
        parts.append(alpha.sqrt() * noisy[i:i + 32] - (1 - alpha).sqrt() * v)
    low, high = (to_network(torch.tensor(b), config).item() for b in CLIP_UNIT)
    return from_network(torch.cat(parts).clamp(low, high), config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--model", type=Path, action="append", default=None)
    parser.add_argument("--split", choices=("train", "held-out"), default="train")
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--t", type=int, action="append", default=None, help="noise levels (default 20 100 300 600)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    levels = args.t or [20, 100, 300, 600]
    models = args.model or [EMBEDDED_DEFAULT_DIR]
    first = DefaultModel.load(models[0])
    classes = list(first.config.classes)
    recs = load_recordings(args.corpus, load_manifest(args.corpus), args.split, classes, args.per_class)
    clean = spectral.log_mel(recs.audio)
    truth = loudness(clean)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    short = [c[:6] for c in classes]
    print(f"{len(recs.labels)} {args.split} recordings; medians per class, dB (estimate minus recording)")
    print(f"{'':34s}" + "".join(f"{s:>7s}" for s in short))
    for path in models:
        model = first if path == models[0] else DefaultModel.load(path)
        model.network.eval()
        for t in levels:
            est = loudness(one_step(model, clean, recs.labels, t, noise))
            rows = {
                "first": est[:, 0] - truth[:, 0],
                "second": est[:, 1] - truth[:, 1],
                "rest": (est[:, 2:] - truth[:, 2:]).mean(axis=1),
                "rise": (est[:, 0] - est[:, 1]) - (truth[:, 0] - truth[:, 1]),
            }
            for name, values in rows.items():
                medians = [float(np.median(values[recs.labels == c])) for c in range(len(classes))]
                label = f"{path.name[:16]} t={t} {name}"
                print(f"{label:34s}" + "".join(f"{v:7.2f}" for v in medians))
        print()
    print(f"took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
