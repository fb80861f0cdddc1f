"""How loud the default model's clean estimate makes a one-shot's body, on training recordings.

For recordings of a few classes (``--corpus``'s ``train`` split, as ``train-default --data``
labels them), noised to a few timesteps as in training, the network's clean estimate
``sqrt(a) x - sqrt(1 - a) v`` is read three ways: with the class (conditional), with "no class"
(unconditional) and guided (``uncond + g (cond - uncond)``, the sampler's combination at the
model's guidance ``g``). Printed per class and timestep: the mean over the body's frames (58 ms to
0.2 s) and bands of estimate minus recording, in dB, and the mean of the body term
``train.body_level_error`` (frames from 3 on) of the conditional estimate, beside the plain
v-prediction loss. A body the network makes too quiet where it is trained shows as a negative
conditional figure; one that only guidance makes too quiet, as a negative guided figure alone.

With ``--path N``: N one-shots a class sampled as the package samples them (its steps, the class's
guidance, its sampler), and at every step the guided clean estimate the sampler reads (clipped as
it is) printed as its body's level (58-200 ms, the bands' mean power, dB full scale) and its body under
its loudest frame, beside the same figures for the class's training recordings: where along the
sampler's path a body's level is lost.

Not a test: nothing here passes or fails.

    python bench/bench_body_level.py --corpus DIR [--model DIR] [--per-class 32] [--classes perc,pluck,kick]
        [--path 16]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from loopbridge.engine.models.default import DefaultModel, spectral
from loopbridge.engine.models.default.folder import label_folder, read_one_shots
from loopbridge.engine.models.default.model import CLIP_UNIT, from_network, sample, training_scheduler
from loopbridge.engine.models.default.train import body_level_error
from loopbridge.engine.models.registry import EMBEDDED_DEFAULT_DIR

#: frames of the body: 58 ms to 0.2 s (hop 512 at 44.1 kHz), as bench_first_frame_fd's
_BODY_FRAMES = slice(5, 17)
#: dB per scaled log-mel unit (DB_FLOOR -80: a unit is 40 dB)
_DB_PER_UNIT = -spectral.DB_FLOOR / 2
_TIMESTEPS = (50, 200, 400, 600, 800, 950)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=EMBEDDED_DEFAULT_DIR)
    parser.add_argument("--per-class", type=int, default=32)
    parser.add_argument("--classes", default="perc,pluck,kick")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--path", type=int, default=0,
                        help="sample this many one-shots a class and read the clean estimate at every step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = DefaultModel.load(args.model)
    network, config = model.network, model.config
    network.eval()
    alphas = training_scheduler(config).alphas_cumprod
    classes = list(config.classes)
    labelled, _ = label_folder(args.corpus / "train", skip_unlabelled=True)
    generator = torch.Generator().manual_seed(0)
    if args.path:
        for name in args.classes.split(","):
            if name not in classes:
                parser.error(f"--classes: {name!r} is not one of {', '.join(classes)}")
            items = [item for item in labelled if item.label == name][:args.per_class]
            audio, _, _ = read_one_shots(items)
            print(f"{name:8s} training recordings     " + _levels(spectral.log_mel(audio)))
            for t, estimate in _path(model, name, args.path, generator):
                print(f"{name:8s} step t {t:4d} estimate " + _levels(estimate))
        print(f"\ntook {time.perf_counter() - started:.0f} s")
        return
    print(f"body (58-200 ms) estimate - recording, dB, mean over {args.per_class} recordings a class; "
          f"guidance {config.default_guidance:g}; body term (frames 3-87, conditional) and v loss")
    for name in args.classes.split(","):
        if name not in classes:
            parser.error(f"--classes: {name!r} is not one of {', '.join(classes)}")
        items = [item for item in labelled if item.label == name][:args.per_class]
        audio, labels, _ = read_one_shots(items)
        clean = spectral.log_mel(audio)
        y = torch.as_tensor(labels)
        null = torch.full_like(y, config.null_class)
        for t in _TIMESTEPS:
            a = alphas[t]
            noise = torch.randn(clean.shape, generator=generator)
            noisy = a.sqrt() * clean + (1 - a).sqrt() * noise
            steps = torch.full((len(y),), t)
            with torch.no_grad():
                cond = a.sqrt() * noisy - (1 - a).sqrt() * network(noisy, steps, y)
                uncond = a.sqrt() * noisy - (1 - a).sqrt() * network(noisy, steps, null)
            guided = uncond + config.default_guidance * (cond - uncond)
            v_loss = ((a.sqrt() * noisy - cond) / (1 - a).sqrt() - (a.sqrt() * noise - (1 - a).sqrt() * clean))
            figures = {label: _DB_PER_UNIT * float((est - clean)[..., _BODY_FRAMES].mean())
                       for label, est in (("cond", cond), ("uncond", uncond), ("guided", guided))}
            print(f"{name:8s} t {t:4d} noise {1 - float(a):.3f}  "
                  + "  ".join(f"{k} {v:+6.2f}" for k, v in figures.items())
                  + f"  body term {float(body_level_error(cond, clean, 3).mean()):.4f}"
                  + f"  v loss {float(v_loss.pow(2).mean()):.4f}")
    print(f"\ntook {time.perf_counter() - started:.0f} s")


def _levels(unit: torch.Tensor) -> str:
    """Body level (dB full scale) and body under the loudest frame (dB), medians over rows, of scaled
    log-mels ``[B, n_mels, frames]``."""
    db = (unit + 1) * _DB_PER_UNIT + spectral.DB_FLOOR  # [B, n_mels, frames], dB full scale
    loudness = 10 * torch.log10(torch.pow(10.0, db / 10).mean(dim=1))  # the bands' mean power, dB
    body = loudness[:, _BODY_FRAMES].mean(dim=1)
    under = body - loudness.max(dim=1).values
    return (f"body {float(body.median()):+7.2f} dB  body - loudest {float(under.median()):+7.2f} dB"
            f"  first frame {float(loudness[:, 0].median()):+7.2f} dB")


def _path(model: DefaultModel, name: str, count: int, generator: torch.Generator) -> list[tuple[int, torch.Tensor]]:
    """``count`` one-shots of class ``name`` sampled with the model's settings, and the guided, clipped
    clean estimate (scaled log-mels) the sampler read at each step, with its timestep."""
    network, config = model.network, model.config
    alphas = training_scheduler(config).alphas_cumprod
    scale = config.guidance_for(name)
    seen: list[tuple[int, torch.Tensor]] = []

    def record(_module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        x, steps = inputs[0], inputs[1]
        v = output
        if len(x) == 2 * count:  # the guided pass: the conditional half, then the unconditional
            cond, uncond = output.chunk(2)
            v, x, steps = uncond + scale * (cond - uncond), x[:count], steps[:count]
        a = alphas[int(steps[0])]
        low, high = CLIP_UNIT
        estimate = from_network(a.sqrt() * x - (1 - a).sqrt() * v, config).clamp(low, high)
        seen.append((int(steps[0]), estimate))

    noise = torch.randn((count, config.n_mels, config.frames), generator=generator)
    hook = network.register_forward_hook(record)
    try:
        sample(network, config, [config.classes.index(name)] * count, noise, config.default_steps, scale)
    finally:
        hook.remove()
    return seen


if __name__ == "__main__":
    main()
