"""Tiny diffusers pipelines of the real classes, built from scratch and saved in diffusers layout.

Every component is the class a real checkpoint uses, with a tiny config and random weights; the
tokenizers are built here from a handful of pieces, so nothing is ever fetched. Tests load the saved
folders through the real loaders, exactly as they would load a downloaded checkpoint.

Each ``build_*`` function writes a complete pipeline folder and returns its path; the same seed
gives the same weights.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

#: Riffusion folders are Stable Diffusion pipelines; the family is told by the folder name
RIFFUSION_FOLDER = "tiny-riffusion"


def _byte_level_chars() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for the byte values 0–255."""
    printable = (
        set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), ord("ÿ") + 1))
    )
    chars, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + shifted))
            shifted += 1
    return chars


def clip_tokenizer(max_length: int = 77):  # type: ignore[no-untyped-def]
    """A byte-level BPE CLIP tokenizer: single bytes, their end-of-word forms and a few merges."""
    from transformers import CLIPTokenizer

    chars = _byte_level_chars()
    vocab: dict[str, int] = {}
    for char in chars:
        vocab[char] = len(vocab)
    for char in chars:
        vocab[char + "</w>"] = len(vocab)
    merges = [("k", "i"), ("ki", "c"), ("kic", "k</w>"), ("d", "r"), ("u", "m</w>"), ("dr", "um</w>")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def roberta_tokenizer(max_length: int = 32):  # type: ignore[no-untyped-def]
    """A byte-level BPE RoBERTa tokenizer (the CLAP text tokenizer's class)."""
    from transformers import RobertaTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in _byte_level_chars():
        vocab[char] = len(vocab)
    merges = [("Ġ", "k"), ("Ġk", "i"), ("Ġki", "c"), ("Ġkic", "k")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def t5_tokenizer(max_length: int = 32):  # type: ignore[no-untyped-def]
    """A Unigram (SentencePiece-style) T5 tokenizer over lower-case letters, digits and a few words."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    for char in string.ascii_lowercase + string.digits + ",.-":
        pieces.append((char, -3.0))
        pieces.append(("▁" + char, -3.5))
    for word in ("kick", "drum", "loop", "bpm", "bass", "rain"):
        pieces.append(("▁" + word, -2.5))
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


def _save(pipeline, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    pipeline.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_riffusion(parent: Path, seed: int = 0, name: str = RIFFUSION_FOLDER) -> Path:
    """A Stable Diffusion pipeline for 512×512 spectrogram images, as Riffusion uses.

    The VAE has four blocks (an 8× smaller latent, as in Stable Diffusion), so a 512×512 image runs
    through a 64×64 latent; channels are tiny.
    """
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(4, 4, 4, 4),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        sample_size=512,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            projection_dim=16,
        )
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1,
        set_alpha_to_one=False,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _save(pipeline, parent / name)
