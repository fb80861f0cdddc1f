"""Real-size pipelines of each diffusers family, with random weights, for speed figures on a GPU.

The component classes are those of the published checkpoints and their sizes follow the published
configs (``cvssp/audioldm-s-full-v2``, ``cvssp/audioldm2``, ``stabilityai/stable-audio-open-1.0``,
``riffusion/riffusion-model-v1`` = Stable Diffusion 1.5): the time a step takes depends on the
shapes, not on the values of the weights. Tokenizers are the tests' small ones (text encoding is a
negligible share of a render; the embedding tables keep their published vocabulary sizes). Each
``build_*`` saves a complete diffusers folder and returns its path, loaded by the engine as a
downloaded checkpoint would be. :func:`parameter_counts` gives the sizes to compare with the
published ones (printed by ``bench_families.py --device cuda``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.engine.models.tiny_pipelines import RIFFUSION_FOLDER, clip_tokenizer, roberta_tokenizer, t5_tokenizer

#: folder names the engine finds them under (Riffusion's says so; its marker keeps the 512-column width)
FOLDERS = {"audioldm": "real-audioldm", "audioldm2": "real-audioldm2", "stable-audio": "real-stable-audio",
           "riffusion": "real-" + RIFFUSION_FOLDER}


def _save(pipeline, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    pipeline.save_pretrained(str(folder), safe_serialization=True)
    return folder


def _audioldm_vae_vocoder_scheduler():  # type: ignore[no-untyped-def]
    """AudioLDM's mel VAE (64 mel bins, 8 latent channels, 4× smaller), 16 kHz HiFi-GAN (160-sample hop), DDIM."""
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    vae = AutoencoderKL(
        in_channels=1, out_channels=1, block_out_channels=(128, 256, 512),
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=8, layers_per_block=2, sample_size=512,
    )
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=64, sampling_rate=16000, upsample_initial_channel=1024, upsample_rates=[5, 4, 2, 2, 2],
        upsample_kernel_sizes=[16, 16, 8, 4, 4], resblock_kernel_sizes=[3, 7, 11],
        resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]], normalize_before=False,
    ))
    scheduler = DDIMScheduler(beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    return vae, vocoder, scheduler


#: AudioLDM's UNet: 128 channels × (1, 2, 3, 5), two layers per block, 32 channels per attention head
_LDM_CHANNELS = (128, 256, 384, 640)
_LDM_HEADS = tuple(c // 32 for c in _LDM_CHANNELS)
_LDM_DOWN = ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D")
_LDM_UP = ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")


def build_audioldm(parent: Path, seed: int = 0) -> Path:
    """``AudioLDMPipeline`` at the size of ``audioldm-s-full-v2``: CLAP (RoBERTa-base) text, a FiLM-conditioned UNet."""
    from diffusers import AudioLDMPipeline, UNet2DConditionModel
    from transformers import ClapTextConfig, ClapTextModelWithProjection

    torch.manual_seed(seed)
    tokenizer = roberta_tokenizer()
    text_encoder = ClapTextModelWithProjection(ClapTextConfig(projection_dim=512))  # defaults: RoBERTa-base
    unet = UNet2DConditionModel(
        sample_size=128, in_channels=8, out_channels=8, block_out_channels=_LDM_CHANNELS, layers_per_block=2,
        down_block_types=_LDM_DOWN, up_block_types=_LDM_UP, attention_head_dim=_LDM_HEADS,
        cross_attention_dim=_LDM_CHANNELS,  # no text cross-attention: the text enters as a class embedding
        class_embed_type="simple_projection", projection_class_embeddings_input_dim=512, class_embeddings_concat=True,
    )
    vae, vocoder, scheduler = _audioldm_vae_vocoder_scheduler()
    pipeline = AudioLDMPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                scheduler=scheduler, vocoder=vocoder)
    return _save(pipeline, parent / FOLDERS["audioldm"])


def build_audioldm2(parent: Path, seed: int = 0) -> Path:
    """``AudioLDM2Pipeline`` at the size of ``cvssp/audioldm2``: CLAP (HTSAT + RoBERTa), Flan-T5-large,
    GPT-2, a UNet attending to both (768 and 1024 wide)."""
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
        ClapTextConfig,
        GPT2Config,
        GPT2LMHeadModel,
        T5Config,
        T5EncoderModel,
    )

    torch.manual_seed(seed)
    # defaults: laion/clap-htsat-unfused (HTSAT audio tower, RoBERTa-base text tower)
    text_encoder = ClapModel(ClapConfig(text_config=ClapTextConfig().to_dict(),
                                        audio_config=ClapAudioConfig().to_dict(), projection_dim=512))
    text_encoder_2 = T5EncoderModel(T5Config(  # google/flan-t5-large
        vocab_size=32128, d_model=1024, d_kv=64, d_ff=2816, num_layers=24, num_heads=16,
        feed_forward_proj="gated-gelu", decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    ))
    language_model = GPT2LMHeadModel(GPT2Config(n_embd=768, n_layer=12, n_head=12, max_new_tokens=8))
    projection_model = AudioLDM2ProjectionModel(text_encoder_dim=512, text_encoder_1_dim=1024, langauge_model_dim=768)
    unet = AudioLDM2UNet2DConditionModel(
        sample_size=128, in_channels=8, out_channels=8, block_out_channels=_LDM_CHANNELS, layers_per_block=2,
        down_block_types=_LDM_DOWN, up_block_types=_LDM_UP, attention_head_dim=_LDM_HEADS,
        # per block, as the published context_dim [None, 768, 1024]: self-attention, then GPT-2's eight
        # vectors (768 wide), then Flan-T5's (1024 wide)
        cross_attention_dim=((None, 768, 1024),) * len(_LDM_CHANNELS),
    )
    vae, vocoder, scheduler = _audioldm_vae_vocoder_scheduler()
    pipeline = AudioLDM2Pipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, projection_model=projection_model,
        language_model=language_model, tokenizer=roberta_tokenizer(), tokenizer_2=t5_tokenizer(),
        feature_extractor=ClapFeatureExtractor(), unet=unet, scheduler=scheduler, vocoder=vocoder,
    )
    return _save(pipeline, parent / FOLDERS["audioldm2"])


def build_stable_audio(parent: Path, seed: int = 0) -> Path:
    """``StableAudioPipeline`` at the size of Stable Audio Open 1.0 (the DiT's and Oobleck's defaults are
    that checkpoint's), with a T5-base text encoder."""
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
    )
    from diffusers.pipelines.stable_audio.modeling_stable_audio import StableAudioProjectionModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12,
                                           num_heads=12, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))
    scheduler = CosineDPMSolverMultistepScheduler(sigma_min=0.3, sigma_max=500, solver_order=2,
                                                  prediction_type="v_prediction", sigma_data=1.0,
                                                  sigma_schedule="exponential")
    pipeline = StableAudioPipeline(
        vae=AutoencoderOobleck(), text_encoder=text_encoder, tokenizer=t5_tokenizer(),
        projection_model=StableAudioProjectionModel(text_encoder_dim=768, conditioning_dim=768, min_value=0,
                                                    max_value=512),
        transformer=StableAudioDiTModel(), scheduler=scheduler,
    )
    return _save(pipeline, parent / FOLDERS["stable-audio"])


def build_riffusion(parent: Path, seed: int = 0) -> Path:
    """Stable Diffusion 1.5's shapes (Riffusion's): the 860 M-parameter UNet, its VAE, CLIP ViT-L/14 text."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # the other defaults are SD 1.x's
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4,
        layers_per_block=2, sample_size=512,
    )
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              steps_offset=1, set_alpha_to_one=False)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    folder = _save(pipeline, parent / FOLDERS["riffusion"])
    (folder / "loopbridge.json").write_text(json.dumps({"family": "riffusion", "image_width": 512}))
    return folder


BUILDERS = {"audioldm": build_audioldm, "audioldm2": build_audioldm2, "stable-audio": build_stable_audio,
            "riffusion": build_riffusion}

#: the published sizes of the part run at every step, for comparison with :func:`parameter_counts`
PUBLISHED_DENOISER_PARAMS = {"audioldm": "about 180 M (AudioLDM-S)", "audioldm2": "about 350 M",
                             "stable-audio": "about 1.06 B", "riffusion": "about 860 M"}


def parameter_counts(pipeline) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Parameters per torch component of a loaded pipeline."""
    return {name: sum(p.numel() for p in module.parameters())
            for name, module in pipeline.components.items() if isinstance(module, torch.nn.Module)}
