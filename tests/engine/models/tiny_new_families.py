"""Tiny Stable Audio 3 and ACE-Step pipelines of the real diffusers classes, saved in diffusers layout.

Every component is the class a real checkpoint uses (``AutoencoderSAME``, ``StableAudio3DiTModel``,
T5Gemma; ``AutoencoderOobleck``, ``AceStepTransformer1DModel``, a Qwen3 text encoder, the audio
tokenizer and detokenizer), with a tiny config and random weights. The tokenizers are built here
from a handful of pieces, so nothing is fetched. Tests load the saved folders through the real loader.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

from .tiny_pipelines import _save


def _word_level_fast_tokenizer(cls_name: str, max_length: int):  # type: ignore[no-untyped-def]
    """A fast tokenizer of class ``cls_name`` over characters, digits and a few words (word-piece free)."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(specials)}
    for char in string.ascii_letters + string.digits + ",.-:#/|_[]\n ":
        vocab.setdefault(char, len(vocab))
    model = models.WordPiece(vocab=vocab, unk_token="<unk>", continuing_subword_prefix="")
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    fast = getattr(transformers, cls_name)(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>",
        model_max_length=max_length,
    )
    return fast


def _unzero(*modules: torch.nn.Module) -> None:
    """Random values for the parameters a fresh model starts at zero (output projections a trained model
    has learned): with them at zero a tiny autoencoder's output would not depend on its latents."""
    with torch.no_grad():
        for module in modules:
            for parameter in module.parameters():
                if parameter.numel() and not parameter.abs().max() > 0:
                    parameter.normal_(0.0, 0.2)


def build_stable_audio_3(parent: Path, seed: int = 0, name: str = "tiny-stable-audio-3") -> Path:
    """A ``StableAudio3Pipeline``: T5Gemma encoder, duration embedder, a DiT with the inpainting
    input (``local_add_cond``) and a SAME autoencoder at 44.1 kHz stereo, 256 samples a latent frame."""
    from diffusers import (
        AutoencoderSAME,
        FlowMatchEulerDiscreteScheduler,
        StableAudio3DiTModel,
        StableAudio3Pipeline,
    )
    from diffusers.pipelines.stable_audio_3.modeling_stable_audio_3 import StableAudio3DurationEmbedder
    from transformers import T5GemmaConfig, T5GemmaEncoderModel, T5GemmaModuleConfig

    torch.manual_seed(seed)
    tokenizer = _word_level_fast_tokenizer("GemmaTokenizerFast", 64)
    module = dict(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=1, head_dim=8, query_pre_attn_scalar=8,
                  sliding_window=16, layer_types=["full_attention"])
    config = T5GemmaConfig(encoder=T5GemmaModuleConfig(**module), decoder=T5GemmaModuleConfig(**module),
                           vocab_size=len(tokenizer), is_encoder_decoder=False)
    text_encoder = T5GemmaEncoderModel(config)
    latent_dim = 8
    vae = AutoencoderSAME(
        audio_channels=2, patch_size=16, encoder_channels=8, encoder_c_mults=[2], encoder_strides=[16],
        encoder_transformer_depths=[1], latent_dim=latent_dim, use_differential_attention=False, dim_heads=8,
        ff_mult=2, sliding_window=1, encoder_sinusoidal_blocks=[0], decoder_sinusoidal_blocks=[0], sampling_rate=44100,
    )
    transformer = StableAudio3DiTModel(
        io_channels=latent_dim, patch_size=1, embed_dim=16, depth=1, num_heads=2, cond_token_dim=16,
        global_cond_dim=16, local_add_cond_dim=latent_dim + 1, timestep_features_dim=16, ff_mult=2.0,
        num_memory_tokens=2, use_differential_attention=False,
    )
    duration_embedder = StableAudio3DurationEmbedder(output_dim=16, fourier_dim=16, max_val=64.0)
    _unzero(vae, transformer)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, stochastic_sampling=True)
    pipeline = StableAudio3Pipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                    duration_embedder=duration_embedder, transformer=transformer, scheduler=scheduler)
    return _save(pipeline, parent / name)


def build_ace_step(parent: Path, seed: int = 0, name: str = "tiny-ace-step") -> Path:
    """An ``AceStepPipeline``: a Qwen3 text encoder, the condition encoder, the DiT, the audio tokenizer
    and detokenizer (for covers) and an Oobleck VAE at 48 kHz stereo with ACE-Step's 1920-sample hop."""
    from diffusers import (
        AceStepPipeline,
        AceStepTransformer1DModel,
        AutoencoderOobleck,
        FlowMatchEulerDiscreteScheduler,
    )
    from diffusers.pipelines.ace_step.modeling_ace_step import (
        AceStepAudioTokenDetokenizer,
        AceStepAudioTokenizer,
        AceStepConditionEncoder,
    )
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(seed)
    tokenizer = _word_level_fast_tokenizer("PreTrainedTokenizerFast", 4096)
    text_encoder = Qwen3Model(Qwen3Config(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                          num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                          head_dim=8, max_position_embeddings=4096))
    acoustic = 4
    small = dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                 sliding_window=16)
    condition_encoder = AceStepConditionEncoder(text_hidden_dim=16, timbre_hidden_dim=acoustic,
                                                num_lyric_encoder_hidden_layers=1, num_timbre_encoder_hidden_layers=1,
                                                **small)
    transformer = AceStepTransformer1DModel(num_hidden_layers=1, in_channels=3 * acoustic,
                                            audio_acoustic_hidden_dim=acoustic, patch_size=2,
                                            encoder_hidden_size=16, is_turbo=True, **small)
    audio_tokenizer = AceStepAudioTokenizer(audio_acoustic_hidden_dim=acoustic, pool_window_size=5, fsq_dim=16,
                                            fsq_input_levels=[4, 4], num_attention_pooler_hidden_layers=1, **small)
    detokenizer = AceStepAudioTokenDetokenizer(audio_acoustic_hidden_dim=acoustic, pool_window_size=5,
                                               num_attention_pooler_hidden_layers=1, **small)
    vae = AutoencoderOobleck(encoder_hidden_size=2 * acoustic, downsampling_ratios=[2, 4, 4, 6, 10],
                             channel_multiples=[1, 1, 1, 1, 1], decoder_channels=4, decoder_input_channels=acoustic,
                             audio_channels=2, sampling_rate=48000)
    _unzero(vae, transformer, condition_encoder, audio_tokenizer, detokenizer)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0)
    pipeline = AceStepPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
                               condition_encoder=condition_encoder, scheduler=scheduler,
                               audio_tokenizer=audio_tokenizer, audio_token_detokenizer=detokenizer)
    return _save(pipeline, parent / name)
