"""A model folder whose weights lie between two others': ``(1 - alpha) * start + alpha * end``.

    python -m loopbridge.engine.models.default.interpolate START END --alpha A --out DIR
    (or scripts/interpolate_weights.py, the same arguments)

START and END are default-model folders (``config.json`` + ``model.safetensors``) of the same
network: typically the package's weights and a fine-tune of them, where weights in between can keep
most of what the fine-tune gained while keeping more of the start's behaviour on data neither saw
(MODEL.md, "The package and a fine-tune, interpolated"). No training: every tensor is mixed in
float32 and written in the start's dtype (float16 for the package), so ``--alpha 0`` gives START's
weights and ``--alpha 1`` END's, bit for bit.

The two folders must agree in ``config.json`` (every key but ``training``, the record of how each
was made) and in every tensor's name, shape and dtype; otherwise nothing is written and the command
names what differs. DIR gets START's ``config.json`` with ``training`` replaced by a record of the
mix (``alpha``, both folders and both training records). Exit status 0 on success, 2 on bad
arguments or folders that cannot be mixed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .model import MelUNet, ModelConfig
from .train import export_weights

#: how a config key one folder lacks is named in the error
ABSENT = "(absent)"


def read_folder(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A model folder's ``config.json`` (as written) and ``model.safetensors`` tensors.

    Raises ValueError naming the folder when either file is missing or unreadable.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise ValueError(f"{str(folder)!r} is not accepted: expected a model folder holding config.json and "
                         f"model.safetensors")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        tensors = load_file(str(weights_path), device="cpu")
    except (OSError, ValueError, SafetensorError) as exc:
        raise ValueError(f"{str(folder)!r} cannot be read: {exc}") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{str(config_path)!r} is not accepted: expected a JSON object")
    return config, tensors


def check_same_network(start: tuple[dict[str, Any], dict[str, torch.Tensor]],
                       end: tuple[dict[str, Any], dict[str, torch.Tensor]]) -> None:
    """Raise ValueError naming every difference (config keys but ``training``, tensor names, shapes, dtypes)."""
    (start_config, start_tensors), (end_config, end_tensors) = start, end
    keys = sorted((set(start_config) | set(end_config)) - {"training"})
    problems = [f"config.json's {key!r}: {start_config.get(key, ABSENT)!r} against {end_config.get(key, ABSENT)!r}"
                for key in keys if start_config.get(key, ABSENT) != end_config.get(key, ABSENT)]
    only_start, only_end = sorted(set(start_tensors) - set(end_tensors)), sorted(set(end_tensors) - set(start_tensors))
    if only_start:
        problems.append(f"tensors only in the first: {', '.join(only_start)}")
    if only_end:
        problems.append(f"tensors only in the second: {', '.join(only_end)}")
    for name in sorted(set(start_tensors) & set(end_tensors)):
        a, b = start_tensors[name], end_tensors[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append(f"tensor {name!r}: {tuple(a.shape)} {a.dtype} against {tuple(b.shape)} {b.dtype}")
    if problems:
        raise ValueError("the two folders are not the same network: " + "; ".join(problems))


def interpolate_tensors(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor],
                        alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * start + alpha * end`` for every float tensor, in float32; other tensors must be equal."""
    mixed = {}
    for name, a in start.items():
        b = end[name]
        if a.is_floating_point():
            # lerp is exact at both ends: a + 0 * (b - a) and b - (b - a) * 0
            mixed[name] = torch.lerp(a.float(), b.float(), alpha)
        elif torch.equal(a, b):
            mixed[name] = a
        else:
            raise ValueError(f"tensor {name!r} ({a.dtype}) differs between the folders and cannot be interpolated")
    return mixed


def interpolate_folders(start: Path, end: Path, alpha: float, out: Path) -> None:
    """Write the mix of ``start`` and ``end`` at ``alpha`` (0: start, 1: end) to the model folder ``out``.

    Raises ValueError naming the bad value for ``alpha`` outside [0, 1], an unreadable folder or two
    folders that are not the same network; nothing is written then.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha!r} is not accepted: expected a number from 0 (the first folder) to 1 "
                         f"(the second)")
    first, second = read_folder(start), read_folder(end)
    check_same_network(first, second)
    config_data, tensors = first
    config = ModelConfig.from_json(config_data)
    network = MelUNet(config)
    try:
        network.load_state_dict(interpolate_tensors(tensors, second[1], alpha), strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{str(start)!r}'s weights do not fit the network in its config.json: {exc}") from exc
    dtype = next(iter(tensors.values())).dtype
    if any(t.is_floating_point() and t.dtype != dtype for t in tensors.values()):
        raise ValueError(f"{str(start)!r} mixes float dtypes; expected one, as train-default writes")
    record = {"alpha": alpha, "start": str(start), "end": str(end),
              "start_training": json.dumps(first[0].get("training", {}), sort_keys=True),
              "end_training": json.dumps(second[0].get("training", {}), sort_keys=True)}
    export_weights(network, config, Path(out), record, config_data=config_data, dtype=dtype)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loopbridge.engine.models.default.interpolate",
        description="Write a default-model folder whose weights are (1 - ALPHA) * START + ALPHA * END.",
    )
    parser.add_argument("start", type=Path, help="a model folder (ALPHA 0 gives its weights)")
    parser.add_argument("end", type=Path, help="a model folder of the same network (ALPHA 1 gives its weights)")
    parser.add_argument("--alpha", type=float, required=True, help="from 0 (START) to 1 (END)")
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        interpolate_folders(args.start, args.end, args.alpha, args.out)
    except ValueError as exc:
        print(f"interpolate: {exc}", file=sys.stderr)
        return 2
    print(f"interpolate: {args.out}: {1 - args.alpha:g} x {args.start} + {args.alpha:g} x {args.end}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
