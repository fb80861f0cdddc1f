"""Train the default model: ``loopbridge train-default`` or ``python -m loopbridge.engine.models.default.train``.

1. Render the corpus (``--per-class`` one-shots of every class from ``--seed``) and turn it into
   scaled log-mels; cached in ``--out`` so a resumed run does not render it again.
2. Train ``MelUNet`` with v-prediction on the DDPM cosine schedule; one label in ``--cfg-dropout``
   is replaced by "no class" so the same network also samples unconditionally (guidance).
   Optionally (not in the shipped weights' recipe, see MODEL.md) on log-mels shifted and scaled by
   the corpus's mean and standard deviation (``--data-norm corpus``, written to ``config.json``)
   and with Min-SNR loss weighting (``--min-snr``).
3. Keep an exponential moving average of the weights; save a checkpoint every ``--checkpoint-every``
   steps (weights, EMA, optimizer, step and every random state), so ``--resume`` continues the
   very same run.
4. Export the EMA weights as ``config.json`` + ``model.safetensors`` to ``--export`` (by default
   ``OUT/weights``), the folder layout the engine loads.

The defaults are the settings that produced the weights shipped in the package. Progress goes to
stderr; the exit status is 0 on success, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import spectral
from .classes import CLASSES
from .corpus import render_corpus
from .model import MelUNet, ModelConfig, to_network, training_scheduler

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


def export_weights(network: MelUNet, config: ModelConfig, folder: Path, metadata: dict[str, Any]) -> None:
    """Write ``config.json`` and ``model.safetensors`` (float16) to ``folder`` atomically."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in network.state_dict().items()}
    tmp = folder / "model.safetensors.tmp"
    save_file(tensors, str(tmp), metadata={k: str(v) for k, v in metadata.items()})
    os.chmod(tmp, 0o644)  # a package file: readable by every user
    os.replace(tmp, folder / "model.safetensors")
    data = config.to_json()
    data["training"] = metadata
    tmp_json = folder / "config.json.tmp"
    tmp_json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_json, folder / "config.json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopbridge train-default",
        description="Train the embedded default model on the procedurally synthesized corpus.",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/default-model"),
                        help="checkpoint folder (corpus cache, checkpoint.pt, weights/)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--export", type=Path, default=None,
                        help="where to write config.json + model.safetensors (default OUT/weights)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and batch order")
    parser.add_argument("--corpus-seed", type=int, default=TRAIN_CORPUS_SEED)
    parser.add_argument("--per-class", type=int, default=400, help="training one-shots per class")
    parser.add_argument("--steps", type=int, default=1200, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-4, help="peak learning rate (AdamW)")
    parser.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    parser.add_argument("--ema", type=float, default=0.995, help="EMA decay of the exported weights")
    parser.add_argument("--cfg-dropout", type=float, default=0.15, help="share of labels dropped to 'no class'")
    parser.add_argument("--data-norm", choices=("corpus", "none"), default="none",
                        help="corpus: the network sees log-mels shifted and scaled by the training corpus's "
                             "mean and standard deviation; none: as they are")
    # Min-SNR weighting (Hang et al., 2023) spends the loss on the middle noise levels; the floor
    # keeps the noisiest levels, which set a one-shot's class and overall envelope, in training
    parser.add_argument("--min-snr", type=float, default=0.0,
                        help="loss weight min(SNR, gamma) / (SNR + 1) with this gamma; 0: plain v-prediction loss")
    parser.add_argument("--min-snr-floor", type=float, default=0.2,
                        help="the loss weight's SNR term is at least this (max(min(SNR, gamma), floor))")
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
    for name in ("per_class", "steps", "batch_size", "checkpoint_every", "threads", "render_workers"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')}={getattr(args, name)} is not accepted: expected at least 1"
    if not 0 < args.lr < 1:
        return f"--lr={args.lr} is not accepted: expected 0 < lr < 1"
    if not 0 <= args.ema < 1:
        return f"--ema={args.ema} is not accepted: expected 0 <= ema < 1"
    if not 0 <= args.cfg_dropout < 1:
        return f"--cfg-dropout={args.cfg_dropout} is not accepted: expected 0 <= p < 1"
    if args.min_snr < 0:
        return f"--min-snr={args.min_snr} is not accepted: expected 0 (off) or a positive gamma"
    if args.min_snr_floor < 0:
        return f"--min-snr-floor={args.min_snr_floor} is not accepted: expected at least 0"
    return None


def _lr_at(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / "checkpoint.pt"
    export_dir = args.export if args.export is not None else out / "weights"

    wall_start = time.perf_counter()
    cpu_start = time.process_time()
    mels_np, labels_np = corpus_mels(args.corpus_seed, args.per_class, workers=args.render_workers, cache_dir=out)
    mels = torch.from_numpy(mels_np.astype(np.float32)).to(device)
    labels = torch.from_numpy(labels_np).to(device)

    if args.data_norm == "corpus":
        # rounded so config.json states them exactly
        data_mean = round(float(mels_np.mean(dtype=np.float64)), 4)
        data_std = round(float(mels_np.std(dtype=np.float64)), 4)
    else:
        data_mean, data_std = 0.0, 1.0
    config = ModelConfig(data_mean=data_mean, data_std=data_std)
    mels = to_network(mels, config)
    torch.manual_seed(args.seed)
    network = MelUNet(config).to(device)
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
                             "render_workers")}

    if args.resume:
        if not checkpoint_path.is_file():
            _log(f"error: --resume given but {str(checkpoint_path)!r} does not exist")
            return 2
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
    network.train()
    loss_avg = None
    last_report = time.perf_counter()
    stop_at = args.steps if args.stop_after is None else min(args.steps, step + args.stop_after)
    while step < stop_at:
        index = torch.randint(0, n, (args.batch_size,), generator=generator).to(device)
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
        error = (network(noisy, t, y) - target).pow(2).mean(dim=(1, 2))
        if args.min_snr > 0:
            snr = a.view(-1) / (1 - a.view(-1))
            error = error * snr.clamp(min=min(args.min_snr_floor, args.min_snr), max=args.min_snr) / (snr + 1)
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
        if time.perf_counter() - last_report > 20 or step == args.steps:
            last_report = time.perf_counter()
            _log(f"step {step}/{args.steps} loss {loss_avg:.4f} lr {_lr_at(step - 1, args):.2e} "
                 f"wall {wall_s() / 60:.1f} min cpu {cpu_s() / 60:.1f} min")

    if step < args.steps:
        _log(f"stopped at step {step}/{args.steps}; continue with --resume")
        return 0
    metadata = {**settings, "wall_s": round(wall_s(), 1), "cpu_s": round(cpu_s(), 1), "device": device.type,
                "final_loss": round(float(loss_avg or 0.0), 5)}
    export_weights(ema, config, export_dir, metadata)
    _log(f"exported {export_dir}/model.safetensors after {step} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
