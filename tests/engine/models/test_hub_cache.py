"""Every diffusers family loads from the Hugging Face cache as the hub client leaves it, offline.

The cache keeps each file once under ``blobs/`` (named by its hash), and each revision as a folder
under ``snapshots/<commit>/`` of relative symbolic links into the blobs; ``refs/main`` names the
commit. The test lays a tiny checkpoint out that way under the real repository's id, then finds,
loads and runs it through the registry and the engine, as a checkpoint downloaded earlier by any
diffusers program would be.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch
from loopbridge.engine import GenerateRequest
from loopbridge.engine.core import Engine
from loopbridge.engine.models.registry import ModelRegistry

from tests.engine.doors import opened
from tests.engine.models.tiny_pipelines import RIFFUSION_FOLDER, tiny_models_root

torch.set_num_threads(2)

COMMIT = "5d2e7a1c9b3f4e6a8d0c2b4a6f8e0d2c4b6a8f0e"


def hub_cache_layout(folder: Path, cache: Path, repo_id: str, commit: str = COMMIT) -> Path:
    """Lay ``folder`` out in ``cache`` as the hub client stores ``repo_id`` at ``commit``; returns the snapshot."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    blobs = repo / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        if file.name == "loopbridge.json":
            continue  # a checkpoint from the hub carries no marker of ours
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        blob = blobs / digest
        if not blob.exists():
            shutil.copyfile(file, blob)
        link = snapshot / file.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


# (tiny folder, the real repository id, the family, native rate, channels, a request's fields)
CASES = [
    ("tiny-audioldm", "cvssp/audioldm-s-full-v2", "audioldm", 16000, 1, {"kind": "one-shot", "duration_s": 0.2}),
    ("tiny-audioldm2", "cvssp/audioldm2-music", "audioldm2", 16000, 1, {"kind": "one-shot", "duration_s": 0.2}),
    ("tiny-stable-audio", "stabilityai/stable-audio-open-1.0", "stable-audio", 44100, 2, {"kind": "one-shot",
                                                                                           "duration_s": 0.2}),
    # no marker in the hub: the family comes from the repository's name, at the published 512-column width
    (RIFFUSION_FOLDER, "riffusion/riffusion-model-v1", "riffusion", 44100, 1, {"kind": "one-shot", "duration_s": 0.2}),
]


@pytest.mark.parametrize(("folder", "repo_id", "family", "rate", "channels", "fields"), CASES,
                         ids=[case[2] for case in CASES])
def test_found_loaded_and_run_from_the_hub_cache(tmp_path: Path, folder: str, repo_id: str, family: str, rate: int,
                                                 channels: int, fields: dict[str, object]) -> None:
    cache = tmp_path / "hub"
    snapshot = hub_cache_layout(tiny_models_root() / folder, cache, repo_id)
    assert all(p.is_symlink() for p in snapshot.rglob("*") if not p.is_dir()), "every file a link into blobs/"
    # a revision left behind by an update must not be picked: refs/main names the current one
    hub_cache_layout(tiny_models_root() / folder, cache, repo_id, commit="0" * 40)
    (cache / ("models--" + repo_id.replace("/", "--")) / "refs" / "main").write_text(COMMIT)

    registry = ModelRegistry(search_paths=[], hf_cache=cache, include_embedded=False)
    spec = registry.resolve(repo_id)
    assert (spec.id, spec.family, spec.source, spec.path) == (repo_id, family, "huggingface cache", snapshot)
    # the one left behind stays loadable by its own name, the first 12 digits of its commit
    assert [s.id for s in registry.specs()] == [repo_id, f"{repo_id}@{'0' * 12}"]
    engine = Engine(store_dir=tmp_path / "store", registry=registry, device="cpu")
    with opened(engine) as door:
        caps = door.capabilities(repo_id)
        assert (caps.family, caps.sample_rate, caps.channels) == (family, rate, channels)
        request = GenerateRequest(model=repo_id, prompt="rain on a tin roof", seed=2, steps=2, **fields)  # type: ignore[arg-type]
        (render,) = door.render([request])
    assert render.sample_rate == rate and render.audio.shape == (channels, round(0.2 * rate))
    assert torch.isfinite(torch.from_numpy(render.audio)).all()
