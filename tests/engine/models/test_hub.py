"""The hub module's offline parts: which files a pull takes, sizes on disk, and what ``remove`` refuses.

The network parts (pull, gating, resuming, offline) run against a local hub server in
``tests/bridge/test_cli_models_hub.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from loopbridge.engine.errors import RequestError
from loopbridge.engine.models.catalogue import CATALOGUE
from loopbridge.engine.models.hub import (
    NotInCacheError,
    check_repo_id,
    entry_folder,
    entry_size_on_disk,
    folder_size,
    missing_files,
    remove,
    select_files,
    size_on_disk,
    skipped_components,
)
from loopbridge.engine.models.registry import FAMILIES, PIPELINE_FAMILIES, ModelRegistry

from tests.engine.models.test_hub_cache import hub_cache_layout

INDEX = {"_class_name": "StableAudioPipeline", "_diffusers_version": "0.42.1",
         "transformer": ["diffusers", "StableAudioDiTModel"], "vae": ["diffusers", "AutoencoderOobleck"],
         "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5TokenizerFast"],
         "scheduler": ["diffusers", "CosineDPMSolverMultistepScheduler"], "feature_extractor": [None, None]}

PUBLISHED = [
    ".gitattributes", "LICENSE.md", "README.md", "model.ckpt", "model.safetensors", "model_config.json",
    "model_index.json", "stable_audio_open.png",
    "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors",
    "transformer/diffusion_pytorch_model.bin", "transformer/diffusion_pytorch_model.fp16.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.msgpack",
    "text_encoder/config.json", "text_encoder/model.safetensors.index.json",
    "text_encoder/model-00001-of-00002.safetensors", "text_encoder/model-00002-of-00002.safetensors",
    "text_encoder/flax_model.msgpack", "text_encoder/tf_model.h5",
    "tokenizer/special_tokens_map.json", "tokenizer/spiece.model", "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
    "scheduler/scheduler_config.json",
    "samples/loop.wav", "onnx/unet/model.onnx",
]


def test_a_pull_takes_what_the_loader_reads() -> None:
    assert select_files(PUBLISHED, INDEX) == [
        "LICENSE.md", "README.md", "model_index.json",
        "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/config.json", "text_encoder/model.safetensors.index.json",
        "text_encoder/model-00001-of-00002.safetensors", "text_encoder/model-00002-of-00002.safetensors",
        "tokenizer/special_tokens_map.json", "tokenizer/spiece.model", "tokenizer/tokenizer.json",
        "tokenizer/tokenizer_config.json",
        "scheduler/scheduler_config.json",
    ]


def test_components_a_family_never_loads_are_left_out() -> None:
    files = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
             "safety_checker/config.json", "safety_checker/model.safetensors",
             "feature_extractor/preprocessor_config.json", "riffusion-model-v1.ckpt"]
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
             "feature_extractor": ["transformers", "CLIPImageProcessor"]}
    assert skipped_components("riffusion") == ("safety_checker", "feature_extractor")
    assert select_files(files, index, skipped_components("riffusion")) == files[:3]
    assert skipped_components("stable-audio") == ()


def test_a_pull_that_stopped_before_its_listing_names_the_missing_components(tmp_path: Path,
                                                                            tiny_dd_root: Path) -> None:
    cache = tmp_path / "hub"
    snapshot = hub_cache_layout(tiny_dd_root / "tiny-dd", cache, "someone/model")
    registry = ModelRegistry(search_paths=[], hf_cache=cache, include_embedded=False)
    assert missing_files(registry.resolve("someone/model")) == []
    for link in (snapshot / "unet").iterdir():
        link.unlink()
    (snapshot / "unet").rmdir()
    assert missing_files(registry.resolve("someone/model")) == ["unet/"]
    assert missing_files(ModelRegistry(search_paths=[tiny_dd_root], hf_cache=cache).resolve("tiny-dd")) == []


def test_a_component_published_only_in_an_older_format_or_a_variant_is_still_taken() -> None:
    files = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin",
             "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors"]
    index = {"_class_name": "DanceDiffusionPipeline", "unet": ["diffusers", "UNet1DModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    assert select_files(files, index) == files


def test_a_loopbridge_layout_takes_everything_but_other_frameworks_weights() -> None:
    files = ["loopbridge.json", "config.json", "model.safetensors", "tf_model.h5", "flax_model.msgpack"]
    assert select_files(files, None) == ["loopbridge.json", "config.json", "model.safetensors"]


@pytest.mark.parametrize("bad", ["", "maestro-150k", "a/b/c", "../models--x", "a/..", "-x/y", "a b/c", "x/y\n"])
def test_ids_are_checked(bad: str) -> None:
    with pytest.raises(RequestError, match=r"expected a model id as the Hugging Face hub shows it, OWNER/NAME"):
        check_repo_id(bad)


def test_sizes_count_each_file_once(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "weights.bin").write_bytes(b"\1" * 5000)
    (folder / "config.json").write_bytes(b"{}")
    os.link(folder / "config.json", folder / "again.json")
    (folder / "unet" / "alias.bin").symlink_to("weights.bin")
    (folder / "dangling").symlink_to("nowhere")
    assert folder_size(folder) == 5002
    index = b'{"_class_name": "DanceDiffusionPipeline"}'
    (folder / "model_index.json").write_bytes(index)
    assert folder_size(tmp_path / "absent") == 0

    cache = tmp_path / "hub"
    snapshot = hub_cache_layout(folder, cache, "someone/model")
    hub_cache_layout(folder, cache, "someone/model", commit="0" * 40)  # an old revision shares every blob
    (snapshot.parents[1] / "blobs" / "abc.incomplete").write_bytes(b"\0" * 100)
    registry = ModelRegistry(search_paths=[tmp_path / "none"], hf_cache=cache, include_embedded=True)
    spec = registry.resolve("someone/model")
    assert spec.source == "huggingface cache"
    # the revision's own files; the entry adds the partial file and refs/main (the old revision shares every blob)
    assert size_on_disk(spec) == 5002 + len(index)
    assert entry_size_on_disk(spec) == folder_size(entry_folder("someone/model", cache)) == 5002 + len(index) + 100 + 40
    embedded = registry.resolve("default")
    assert size_on_disk(embedded) == sum(p.stat().st_size for p in Path(embedded.path).iterdir())


def test_remove_refuses_what_a_pull_did_not_make(tmp_path: Path, tiny_dd_root: Path) -> None:
    cache = tmp_path / "hub"
    registry = ModelRegistry(search_paths=[tiny_dd_root], hf_cache=cache, include_embedded=True)
    with pytest.raises(RequestError, match=r"model='default' is not accepted \(it ships inside loopbridge"):
        remove("default", registry)
    with pytest.raises(RequestError, match=rf"it is the folder '{tiny_dd_root / 'tiny-dd'}'; remove a folder of yours"):
        remove("tiny-dd", registry)
    assert (tiny_dd_root / "tiny-dd" / "model_index.json").is_file()
    with pytest.raises(NotInCacheError, match=r"expected one of the ids there \(none: nothing was pulled\)"):
        remove("someone/model", registry)


def test_the_catalogue_names_each_family_by_its_pipeline() -> None:
    ids = [entry.id for entry in CATALOGUE]
    assert len(ids) == len(set(ids))
    for entry in CATALOGUE:
        check_repo_id(entry.id)
        assert entry.size and entry.licence and entry.good_for
        if entry.family in FAMILIES and entry.family != "riffusion":
            assert PIPELINE_FAMILIES[entry.pipeline] == entry.family, entry.id
    # the two families whose backends land separately; once they do, their pipelines must map as listed here
    assert {e.family for e in CATALOGUE} - set(FAMILIES) <= {"stable-audio-3", "ace-step"}
    assert {e.family for e in CATALOGUE} >= set(FAMILIES) - {"default", "dance2music"}
