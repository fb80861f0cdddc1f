"""Tiny diffusers pipelines of the real classes, built from scratch and saved in diffusers layout.

Every component is the class a real checkpoint uses, with a tiny config and random weights; the
tokenizers are built here from a handful of pieces, so nothing is ever fetched. Tests load the saved
folders through the real loaders, exactly as they would load a downloaded checkpoint.

Each ``build_*`` function writes a complete pipeline folder and returns its path; the same seed
gives the same weights.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import string
import tempfile
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


def _tiny_vae_and_vocoder(mel_bins: int = 16):  # type: ignore[no-untyped-def]
    """A mel VAE (2× smaller latent) and a HiFi-GAN vocoder at 16 kHz with a 160-sample hop, as AudioLDM's."""
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    vae = AutoencoderKL(
        in_channels=1,
        out_channels=1,
        block_out_channels=(4, 8),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
    )
    vocoder = SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=mel_bins,
            sampling_rate=16000,
            upsample_initial_channel=16,
            upsample_rates=[4, 4, 10],
            upsample_kernel_sizes=[8, 8, 20],
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3]],
            normalize_before=False,
        )
    )
    return vae, vocoder


def _audioldm_scheduler():  # type: ignore[no-untyped-def]
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False
    )


def _clap_text_config(vocab_size: int, max_length: int):  # type: ignore[no-untyped-def]
    from transformers import ClapTextConfig

    return ClapTextConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=max_length + 4,
        projection_dim=8,
        pad_token_id=1,
    )


def build_audioldm(parent: Path, seed: int = 0, name: str = "tiny-audioldm") -> Path:
    """An ``AudioLDMPipeline``: CLAP text embedding as the UNet's class embedding, mel VAE, HiFi-GAN."""
    from diffusers import AudioLDMPipeline, UNet2DConditionModel
    from transformers import ClapTextModelWithProjection

    torch.manual_seed(seed)
    tokenizer = roberta_tokenizer()
    text_encoder = ClapTextModelWithProjection(_clap_text_config(len(tokenizer), tokenizer.model_max_length))
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        # AudioLDM conditions through the class embedding; its attention attends to itself
        cross_attention_dim=(8, 16),
        attention_head_dim=4,
        norm_num_groups=4,
        class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=8,
        class_embeddings_concat=True,
    )
    vae, vocoder = _tiny_vae_and_vocoder()
    pipeline = AudioLDMPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=_audioldm_scheduler(),
        vocoder=vocoder,
    )
    return _save(pipeline, parent / name)


def build_audioldm2(parent: Path, seed: int = 0, name: str = "tiny-audioldm2") -> Path:
    """An ``AudioLDM2Pipeline``: CLAP and T5 text encoders, a GPT-2 that writes eight conditioning
    vectors, a two-context UNet, mel VAE and HiFi-GAN."""
    from diffusers import AudioLDM2Pipeline
    from diffusers.pipelines.audioldm2.modeling_audioldm2 import (
        AudioLDM2ProjectionModel,
        AudioLDM2UNet2DConditionModel,
    )
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        GPT2Config,
        GPT2LMHeadModel,
        T5Config,
        T5EncoderModel,
    )

    torch.manual_seed(seed)
    tokenizer = roberta_tokenizer()
    tokenizer_2 = t5_tokenizer()
    audio_config = ClapAudioConfig(
        spec_size=64,
        window_size=4,
        num_mel_bins=64,
        intermediate_size=32,
        layer_norm_eps=1e-05,
        num_attention_heads=[2, 2],
        num_hidden_layers=2,
        hidden_size=16,
        depths=[1, 1],
        patch_stride=2,
        patch_embed_input_channels=4,
        patch_embeds_hidden_size=16,
        projection_dim=8,
    )
    text_config = _clap_text_config(len(tokenizer), tokenizer.model_max_length)
    text_encoder = ClapModel(ClapConfig(text_config=text_config.to_dict(), audio_config=audio_config.to_dict(),
                                        projection_dim=8))
    feature_extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, hop_length=480, max_length_s=2)
    text_encoder_2 = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer_2), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                 decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    )
    language_model = GPT2LMHeadModel(
        GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=64, max_new_tokens=8,
                   bos_token_id=0, eos_token_id=1)
    )
    projection_model = AudioLDM2ProjectionModel(text_encoder_dim=8, text_encoder_1_dim=16, langauge_model_dim=16)
    unet = AudioLDM2UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=(16, 16),
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae, vocoder = _tiny_vae_and_vocoder()
    pipeline = AudioLDM2Pipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        projection_model=projection_model,
        language_model=language_model,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        feature_extractor=feature_extractor,
        unet=unet,
        scheduler=_audioldm_scheduler(),
        vocoder=vocoder,
    )
    return _save(pipeline, parent / name)


def build_stable_audio(parent: Path, seed: int = 0, name: str = "tiny-stable-audio") -> Path:
    """A ``StableAudioPipeline``: T5 text encoder, seconds conditioners, a diffusion transformer and an
    Oobleck VAE at 44.1 kHz stereo with Stable Audio Open's 2048-sample hop.

    The transformer's ``sample_size`` of 32 latents gives a maximum of 32 · 2048 / 44100 ≈ 1.49 s.
    """
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
    )
    from diffusers.pipelines.stable_audio.modeling_stable_audio import StableAudioProjectionModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    tokenizer = t5_tokenizer()
    text_encoder = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                 decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    )
    projection_model = StableAudioProjectionModel(text_encoder_dim=16, conditioning_dim=16, min_value=0, max_value=512)
    transformer = StableAudioDiTModel(
        sample_size=32,
        in_channels=4,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        num_key_value_attention_heads=1,
        out_channels=4,
        cross_attention_dim=16,
        time_proj_dim=8,
        global_states_input_dim=32,
        cross_attention_input_dim=16,
    )
    vae = AutoencoderOobleck(
        encoder_hidden_size=4,
        downsampling_ratios=[2, 4, 4, 8, 8],
        channel_multiples=[1, 1, 1, 1, 1],
        decoder_channels=4,
        decoder_input_channels=4,
        audio_channels=2,
        sampling_rate=44100,
    )
    scheduler = CosineDPMSolverMultistepScheduler(
        sigma_min=0.3, sigma_max=500, solver_order=2, prediction_type="v_prediction", sigma_data=1.0,
        sigma_schedule="exponential",
    )
    pipeline = StableAudioPipeline(
        vae=vae, text_encoder=text_encoder, projection_model=projection_model, tokenizer=tokenizer,
        transformer=transformer, scheduler=scheduler,
    )
    return _save(pipeline, parent / name)


def mark_riffusion(folder: Path, image_width: int = 64, griffin_lim_iters: int = 8) -> Path:
    """Write the ``loopbridge.json`` marker: the family, the checkpoint's image width, Griffin-Lim iterations.

    The defaults keep a test's clips short (64 columns, 0.64 s) and their decoding quick.
    """
    settings = {"family": "riffusion", "image_width": image_width, "griffin_lim_iters": griffin_lim_iters}
    (folder / "loopbridge.json").write_text(json.dumps(settings))
    return folder


def build_dance2music(parent: Path, seed: int = 0, name: str = "tiny-dance2music", joints: int = 17) -> Path:
    """A learned Dance2Music folder: a motion encoder whose embedding is the UNet's class embedding,
    with AudioLDM's mel VAE and HiFi-GAN, in the layout ``Dance2MusicBackend`` loads."""
    from diffusers import UNet2DConditionModel
    from loopbridge.engine.models.dance2music import MotionEncoder, MotionEncoderConfig, save_motion_encoder

    torch.manual_seed(seed)
    folder = parent / name
    folder.mkdir(parents=True, exist_ok=True)
    encoder = MotionEncoder(MotionEncoderConfig(joints=joints, frame_rate_hz=30.0, channels=(8,), embedding_dim=8))
    save_motion_encoder(encoder, folder / "motion_encoder")
    unet = UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=(8, 16), attention_head_dim=4, norm_num_groups=4,
        class_embed_type="simple_projection", projection_class_embeddings_input_dim=8, class_embeddings_concat=True,
    )
    vae, vocoder = _tiny_vae_and_vocoder()
    for part, component in (("unet", unet), ("vae", vae), ("vocoder", vocoder), ("scheduler", _audioldm_scheduler())):
        component.save_pretrained(str(folder / part))
    index = {"_class_name": "Dance2MusicPipeline", "motion_encoder": ["loopbridge", "MotionEncoder"],
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "vocoder": ["transformers", "SpeechT5HifiGan"], "scheduler": ["diffusers", "DDIMScheduler"]}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


@functools.cache
def tiny_models_root() -> Path:
    """A models folder (built once per process, removed at exit) holding one tiny model per family.

    ``tiny-riffusion`` (with its marker), ``tiny-audioldm``, ``tiny-audioldm2``, ``tiny-stable-audio``.
    """
    root = Path(tempfile.mkdtemp(prefix="loopbridge-tiny-families-"))
    atexit.register(shutil.rmtree, root, True)
    mark_riffusion(build_riffusion(root))
    build_audioldm(root)
    build_audioldm2(root)
    build_stable_audio(root)
    return root
