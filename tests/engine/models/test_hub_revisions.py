"""Several revisions of one hub model in the cache: each listed, resolved and loaded by its own name, offline.

Two tiny Dance Diffusion checkpoints of different weights are laid out as the hub client stores two
revisions of one repository (``refs/main`` naming one commit, ``refs/v2`` the other); the render
through the engine under each name must be the render of that revision's own weights. ``remove``
of one revision keeps the other loadable and its files in place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from loopbridge.engine import GenerateRequest
from loopbridge.engine.core import Engine
from loopbridge.engine.models.hub import NotInCacheError, cached_names, entry_folder, folder_size, remove, size_on_disk
from loopbridge.engine.models.registry import ModelRegistry, RevisionNotCachedError

from tests.engine.doors import opened
from tests.engine.models.test_hub_cache import hub_cache_layout
from tests.engine.models.tiny_dance_diffusion import build_tiny_dance_diffusion

torch.set_num_threads(2)

REPO = "someone/model"
MAIN = "a" * 40
V2 = "b" * 40
OLD = "c" * 40


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("revisions")
    return build_tiny_dance_diffusion(root / "main", seed=0), build_tiny_dance_diffusion(root / "v2", seed=1)


def lay_out(cache: Path, checkpoints: tuple[Path, Path], *, main: bool = True) -> Path:
    """``checkpoints`` as the cache holds revisions ``main`` (unless ``main`` is False) and ``v2`` of REPO."""
    first, second = checkpoints
    if main:
        hub_cache_layout(first, cache, REPO, commit=MAIN)
    hub_cache_layout(second, cache, REPO, commit=V2)
    entry = entry_folder(REPO, cache)
    (entry / "refs" / "main").unlink()
    if main:
        (entry / "refs" / "main").write_text(MAIN)
    (entry / "refs" / "v2").write_text(V2)
    return entry


def render(registry: ModelRegistry, store: Path, model: str) -> np.ndarray:
    engine = Engine(store_dir=store, registry=registry, device="cpu")
    with opened(engine) as door:
        (made,) = door.render([GenerateRequest(model=model, prompt="", duration_s=0.1, steps=2, seed=5)])
    return made.audio


def test_each_revision_is_listed_resolved_and_loaded_by_its_own_name(tmp_path: Path,
                                                                     checkpoints: tuple[Path, Path]) -> None:
    cache = tmp_path / "hub"
    entry = lay_out(cache, checkpoints)
    hub_cache_layout(checkpoints[0], cache, REPO, commit=OLD)  # a revision no ref names any more
    (entry / "refs" / "main").write_text(MAIN)
    registry = ModelRegistry(search_paths=[], hf_cache=cache, include_embedded=False)
    specs = {spec.id: spec for spec in registry.specs()}
    assert list(specs) == [REPO, f"{REPO}@{OLD[:12]}", f"{REPO}@v2"]
    assert [(s.revision, s.commit) for s in specs.values()] == [("", MAIN), (OLD[:12], OLD), ("v2", V2)]
    assert specs[f"{REPO}@v2"].to_dict()["revision"] == "v2" and specs[REPO].to_dict()["revision"] == "main"
    assert cached_names(cache) == list(specs)
    # every name of a revision reaches it: its ref, @main, a commit prefix
    assert registry.resolve(f"{REPO}@main").id == REPO
    assert registry.resolve(f"{REPO}@{V2[:7]}").id == f"{REPO}@v2"
    assert registry.resolve(f"{REPO}@{OLD}").id == f"{REPO}@{OLD[:12]}"
    assert registry.pin(f"{REPO}@{V2[:9]}") == f"{REPO}@v2"
    # the weights differ, and each name renders its revision's: the same as that checkpoint's own folder
    main_audio = render(registry, tmp_path / "store", REPO)
    v2_audio = render(registry, tmp_path / "store", f"{REPO}@v2")
    assert not np.allclose(main_audio, v2_audio)
    folders = ModelRegistry(search_paths=[checkpoints[0].parent], hf_cache=tmp_path / "none", include_embedded=False)
    np.testing.assert_array_equal(render(folders, tmp_path / "store-2", "v2"), v2_audio)
    np.testing.assert_array_equal(render(folders, tmp_path / "store-2", "main"), main_audio)


def test_names_that_no_cached_revision_answers_are_refused_naming_those_cached(
        tmp_path: Path, checkpoints: tuple[Path, Path]) -> None:
    cache = tmp_path / "hub"
    lay_out(cache, checkpoints)
    registry = ModelRegistry(search_paths=[], hf_cache=cache, include_embedded=False)
    with pytest.raises(RevisionNotCachedError, match=rf"model='{REPO}@v3' is not available: the revision 'v3' of "
                       rf"{REPO} is not in the Hugging Face cache \(`loopbridge models pull {REPO} --revision v3` "
                       rf"fetches it\); expected one of the revisions cached: {REPO}, {REPO}@v2"):
        registry.resolve(f"{REPO}@v3")
    with pytest.raises(RevisionNotCachedError, match="nothing follows '@'"):
        registry.resolve(f"{REPO}@")
    with pytest.raises(RevisionNotCachedError, match=f"the revision 'aaaa' of {REPO} is not in"):
        registry.resolve(f"{REPO}@aaaa")  # too short a prefix to name a commit
    with pytest.raises(Exception, match=rf"model='other/model@v2' is not available: expected one of {REPO}, "):
        registry.resolve("other/model@v2")


def test_without_main_the_plain_id_loads_the_one_revision_and_refuses_a_choice_among_several(
        tmp_path: Path, checkpoints: tuple[Path, Path]) -> None:
    cache = tmp_path / "hub"
    lay_out(cache, checkpoints, main=False)
    registry = ModelRegistry(search_paths=[], hf_cache=cache, include_embedded=False)
    assert [spec.id for spec in registry.specs()] == [f"{REPO}@v2"]
    assert registry.resolve(REPO).id == f"{REPO}@v2"
    hub_cache_layout(checkpoints[0], cache, REPO, commit=OLD)
    (entry_folder(REPO, cache) / "refs" / "main").unlink()
    with pytest.raises(RevisionNotCachedError, match=rf"main is not in the Hugging Face cache and 2 other revisions "
                       rf"are: name one; expected one of the revisions cached: {REPO}@{OLD[:12]}, {REPO}@v2"):
        registry.resolve(REPO)


def test_removing_one_revision_frees_its_own_files_and_keeps_the_other(tmp_path: Path,
                                                                      checkpoints: tuple[Path, Path]) -> None:
    cache = tmp_path / "hub"
    entry = lay_out(cache, checkpoints)
    registry = ModelRegistry(search_paths=[], hf_cache=cache, include_embedded=False)
    main_spec = registry.resolve(REPO)
    main_files = {p.relative_to(main_spec.path): p.read_bytes() for p in main_spec.path.rglob("*") if p.is_file()}
    before = folder_size(entry)
    with pytest.raises(NotInCacheError, match=rf"expected one of the ids there \({REPO}, {REPO}@v2\)"):
        remove(f"{REPO}@v3", registry)

    removed = remove(f"{REPO}@v2", registry)
    assert removed.names == (f"{REPO}@v2",) and not removed.whole_entry
    assert not (entry / "snapshots" / V2).exists() and not (entry / "refs" / "v2").exists()
    assert removed.freed == before - folder_size(entry) > 0
    # the files both revisions share stay (the scheduler's config is the same in each)
    assert {p.relative_to(main_spec.path): p.read_bytes() for p in main_spec.path.rglob("*") if p.is_file()} \
        == main_files
    assert folder_size(entry) == size_on_disk(main_spec) + len(MAIN)  # main's files and refs/main, nothing else
    assert [spec.id for spec in registry.specs()] == [REPO]

    last = remove(f"{REPO}@main", registry)
    assert last.names == (REPO,) and last.whole_entry and not entry.exists()
