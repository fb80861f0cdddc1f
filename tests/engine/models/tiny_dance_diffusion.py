"""Builds a tiny Dance Diffusion checkpoint in the published folder layout, for tests and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def build_tiny_dance_diffusion(folder: Path, sample_rate: int = 16000, sample_size: int = 4096, seed: int = 0,
                               legacy_config: bool = True,
                               block_out_channels: tuple[int, int, int] = (32, 32, 64)) -> Path:
    """Save a randomly initialised DanceDiffusionPipeline (UNet1DModel + IPNDMScheduler) to ``folder``.

    With ``legacy_config`` the UNet config is written the way Harmonai's published checkpoints are,
    without ``time_embedding_dim``, so the loader's handling of that is exercised too. Wider
    ``block_out_channels`` make a larger weight file ((64, 96, 128): 13 MiB).
    """
    from diffusers import DanceDiffusionPipeline, IPNDMScheduler, UNet1DModel

    torch.manual_seed(seed)
    unet = UNet1DModel(
        block_out_channels=block_out_channels,
        extra_in_channels=16,
        time_embedding_dim=16,
        sample_size=sample_size,
        sample_rate=sample_rate,
        in_channels=2,
        out_channels=2,
        flip_sin_to_cos=True,
        use_timestep_embedding=False,
        time_embedding_type="fourier",
        mid_block_type="UNetMidBlock1D",
        down_block_types=("DownBlock1DNoSkip", "DownBlock1D", "AttnDownBlock1D"),
        up_block_types=("AttnUpBlock1D", "UpBlock1D", "UpBlock1DNoSkip"),
    )
    DanceDiffusionPipeline(unet=unet, scheduler=IPNDMScheduler()).save_pretrained(folder)
    if legacy_config:
        config_path = Path(folder) / "unet" / "config.json"
        config = json.loads(config_path.read_text())
        config.pop("time_embedding_dim", None)
        config_path.write_text(json.dumps(config, indent=2))
    return Path(folder)
