"""Which models exist on this machine, and which backend class loads each.

Models are found, never downloaded, in three places:

1. the embedded default model, shipped inside the package (id ``default``);
2. model folders under each directory of ``$LOOPBRIDGE_MODELS`` (``os.pathsep``-separated) and
   under ``<data dir>/models``: each sub-folder is a model whose id is the folder name;
3. the Hugging Face hub cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``):
   ``models--harmonai--maestro-150k`` becomes id ``harmonai/maestro-150k``. Each revision cached there
   (each ``snapshots/<commit>`` folder) is a model of its own: the one ``refs/main`` names is
   ``OWNER/NAME``, another is ``OWNER/NAME@REF`` after the branch or tag that names it (``refs/REF``),
   else ``OWNER/NAME@<commit's first 12 digits>``. ``OWNER/NAME@REV`` also resolves by any ref naming
   a cached revision (``@main`` included) or by a unique commit prefix of 7 digits or more; plain
   ``OWNER/NAME`` with ``main`` not cached resolves to the one revision cached, and is refused, naming
   them, when there are several.

A model id may also be a path to a folder, or ``family:path`` to name the family outright (the
command line's choice; :meth:`ModelRegistry.pin` lists such a model under an id of its own, which
is how the engine serves one to network clients, who name models by id only).
A folder's family comes from a ``loopbridge.json`` (``{"family": "..."}``) if present, else from
the pipeline class in diffusers' ``model_index.json``.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import LoopbridgeError, ModelLoadError, RequestError, UnknownModelError
from .base import ModelBackend

#: family name -> "module:Class" (imported on first use, so listing models stays light)
FAMILIES: dict[str, str] = {
    "default": "loopbridge.engine.models.default:DefaultModel",
    "dance-diffusion": "loopbridge.engine.models.dance_diffusion:DanceDiffusionBackend",
    "riffusion": "loopbridge.engine.models.riffusion:RiffusionBackend",
    "audioldm": "loopbridge.engine.models.audioldm:AudioLDMBackend",
    "audioldm2": "loopbridge.engine.models.audioldm:AudioLDM2Backend",
    "stable-audio": "loopbridge.engine.models.stable_audio:StableAudioBackend",
    "stable-audio-3": "loopbridge.engine.models.stable_audio_3:StableAudio3Backend",
    "ace-step": "loopbridge.engine.models.ace_step:AceStepBackend",
    "dance2music": "loopbridge.engine.models.dance2music:Dance2MusicBackend",
}

#: diffusers pipeline class (model_index.json ``_class_name``) -> family
PIPELINE_FAMILIES: dict[str, str] = {
    "DanceDiffusionPipeline": "dance-diffusion",
    "AudioLDMPipeline": "audioldm",
    "AudioLDM2Pipeline": "audioldm2",
    "StableAudioPipeline": "stable-audio",
    "StableAudio3Pipeline": "stable-audio-3",
    "StableAudio3InpaintPipeline": "stable-audio-3",
    "StableAudio3AudioToAudioPipeline": "stable-audio-3",
    "AceStepPipeline": "ace-step",
    "Dance2MusicPipeline": "dance2music",
}

#: Stable Diffusion folders are Riffusion only when their name or marker says so
_RIFFUSION_PIPELINES = {"StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline"}

EMBEDDED_DEFAULT_DIR = Path(__file__).resolve().parent / "default" / "weights"

#: between a hub model's id and a revision: ``OWNER/NAME@REV``
REVISION_SEPARATOR = "@"
#: how many digits of a commit name a revision no branch or tag names
COMMIT_LABEL_DIGITS = 12
_COMMIT_PREFIX = re.compile(r"[0-9a-f]{7,40}")


@dataclass(frozen=True)
class ModelSpec:
    """A model that can be loaded: its id, family, folder and where it was found.

    For a model from the hub cache, ``revision`` is what the id names after ``@`` ("" for the
    revision ``main`` names) and ``commit`` the snapshot's commit; both are "" for other models.
    """

    id: str
    family: str
    path: Path
    source: str  # "embedded", "folder", "huggingface cache", "path"
    revision: str = ""
    commit: str = ""

    @property
    def repo_id(self) -> str:
        """The id without its revision: ``OWNER/NAME`` for every revision of a hub model."""
        if self.source != "huggingface cache":
            return self.id
        return self.id.partition(REVISION_SEPARATOR)[0]

    def to_dict(self) -> dict[str, str]:
        row = {"id": self.id, "family": self.family, "path": str(self.path), "source": self.source}
        if self.source == "huggingface cache":
            row.update(revision=self.revision or "main", commit=self.commit)
        return row


@dataclass(frozen=True)
class CachedRevision:
    """One revision of a hub cache entry: its snapshot folder, its commit and the refs naming it."""

    commit: str
    refs: tuple[str, ...]
    path: Path

    @property
    def label(self) -> str:
        """What a model id names it by after ``@``: "" for ``main``'s, else its first ref, else the commit's
        first :data:`COMMIT_LABEL_DIGITS` digits."""
        if "main" in self.refs:
            return ""
        return self.refs[0] if self.refs else self.commit[:COMMIT_LABEL_DIGITS]

    def named(self, revision: str) -> bool:
        """Whether ``revision`` (a branch, a tag, a commit or a prefix of 7 digits or more) names this one."""
        return revision in self.refs or (
            _COMMIT_PREFIX.fullmatch(revision) is not None and self.commit.startswith(revision))


def revision_name(repo_id: str, label: str) -> str:
    """The model id of a hub cache revision labelled ``label`` ("" for ``main``'s)."""
    return f"{repo_id}{REVISION_SEPARATOR}{label}" if label else repo_id


def cached_revisions(repo_dir: Path) -> list[CachedRevision]:
    """The revisions a hub cache entry holds (its ``snapshots/`` folders), ``main``'s first, then by label.

    The refs come from ``refs/`` (``refs/main``, ``refs/v2``, ``refs/refs/pr/1``...), each file naming a commit.
    """
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return []
    refs: dict[str, list[str]] = {}
    ref_root = repo_dir / "refs"
    if ref_root.is_dir():
        for ref in sorted(p for p in ref_root.rglob("*") if p.is_file()):
            try:
                commit = ref.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                continue
            refs.setdefault(commit, []).append(ref.relative_to(ref_root).as_posix())
    found = [CachedRevision(folder.name, tuple(sorted(refs.get(folder.name, []), key=lambda r: (r != "main", r))),
                            folder)
             for folder in snapshots.iterdir() if folder.is_dir()]
    return sorted(found, key=lambda r: (r.label != "", r.label))


def match_revision(revisions: Sequence[CachedRevision], revision: str) -> CachedRevision | None:
    """The one of ``revisions`` that ``revision`` names; None when none or several do."""
    named = [r for r in revisions if r.named(revision)]
    return named[0] if len(named) == 1 else None


def backend_class(family: str) -> type[ModelBackend]:
    """The backend class for ``family``; raises UnknownModelError for an unknown family."""
    target = FAMILIES.get(family)
    if target is None:
        raise UnknownModelError(f"{family}:", [f"{name}:PATH" for name in FAMILIES])
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, ModelBackend)):
        raise TypeError(f"{target} is not a ModelBackend")
    return cls


def detect_family(folder: Path, name_hint: str = "") -> str | None:
    """The family of a model folder, or None when it is not one we can load."""
    marker = folder / "loopbridge.json"
    if marker.is_file():
        try:
            family = json.loads(marker.read_text(encoding="utf-8")).get("family")
        except (OSError, ValueError, AttributeError):
            return None
        return family if family in FAMILIES else None
    index = folder / "model_index.json"
    if not index.is_file():
        return None
    try:
        class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
    except (OSError, ValueError, AttributeError):
        return None
    if class_name in PIPELINE_FAMILIES:
        return PIPELINE_FAMILIES[class_name]
    if class_name in _RIFFUSION_PIPELINES and "riffusion" in (name_hint or folder.name).lower():
        return "riffusion"
    return None


def default_data_dir() -> Path:
    """Where loopbridge keeps its data: ``$LOOPBRIDGE_HOME`` or the platform's user data folder."""
    override = os.environ.get("LOOPBRIDGE_HOME")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("loopbridge", appauthor=False))


def default_search_paths() -> list[Path]:
    paths = [Path(p).expanduser() for p in os.environ.get("LOOPBRIDGE_MODELS", "").split(os.pathsep) if p]
    paths.append(default_data_dir() / "models")
    return paths


def default_hf_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


class RevisionNotCachedError(UnknownModelError):
    """A hub model named with a revision the cache does not hold (or plain, where several and no ``main`` are)."""

    def __init__(self, model_id: str, why: str, cached: list[str]) -> None:
        self.model_id = model_id
        self.available = cached
        LoopbridgeError.__init__(self, f"model={model_id!r} is not available: {why}; expected one of the revisions "
                                 f"cached: {', '.join(cached)}")


class ModelRegistry:
    """Finds models in the embedded folder, the search paths and the hub cache.

    ``search_paths`` and ``hf_cache`` default to the environment's; pass them to isolate tests.
    """

    def __init__(
        self,
        search_paths: Sequence[Path] | None = None,
        hf_cache: Path | None = None,
        include_embedded: bool = True,
    ) -> None:
        self.search_paths = [Path(p) for p in (search_paths if search_paths is not None else default_search_paths())]
        self.hf_cache = Path(hf_cache) if hf_cache is not None else default_hf_cache()
        self.include_embedded = include_embedded
        self._pinned: list[ModelSpec] = []

    def specs(self) -> list[ModelSpec]:
        """Every model found now, embedded first; ids are unique (first found wins)."""
        found: dict[str, ModelSpec] = {}
        for spec in self._scan():
            found.setdefault(spec.id, spec)
        return list(found.values())

    def _scan(self) -> Iterable[ModelSpec]:
        if self.include_embedded and (EMBEDDED_DEFAULT_DIR / "config.json").is_file():
            yield ModelSpec("default", "default", EMBEDDED_DEFAULT_DIR, "embedded")
        yield from self._pinned
        for root in self.search_paths:
            if not root.is_dir():
                continue
            for folder in sorted(p for p in root.iterdir() if p.is_dir()):
                family = detect_family(folder)
                if family:
                    yield ModelSpec(folder.name, family, folder, "folder")
        if self.hf_cache.is_dir():
            for repo_dir in sorted(self.hf_cache.glob("models--*")):
                repo_id = repo_dir.name[len("models--") :].replace("--", "/")
                for revision in cached_revisions(repo_dir):
                    family = detect_family(revision.path, name_hint=repo_id)
                    if family:
                        yield ModelSpec(revision_name(repo_id, revision.label), family, revision.path,
                                        "huggingface cache", revision.label, revision.commit)

    def pin(self, model: str) -> str:
        """List ``model`` (an id, a folder path or ``family:path``, as the user named it) among
        :meth:`specs` and return its id: a folder keeps the id it is found under, else it is listed
        under its folder's name (``-2``, ``-3``... added when another model has that id).

        Raises what :meth:`resolve` raises for a model that cannot be found.
        """
        spec = self.resolve(model)
        if spec.source != "path":
            return spec.id
        folder = spec.path.expanduser().resolve()
        specs = self.specs()
        for known in specs:
            if known.family == spec.family and known.path.expanduser().resolve() == folder:
                return known.id
        taken = {known.id for known in specs}
        name = folder.name or spec.family
        model_id, n = name, 2
        while model_id in taken:
            model_id, n = f"{name}-{n}", n + 1
        self._pinned.append(ModelSpec(model_id, spec.family, folder, "path"))
        return model_id

    def resolve(self, model_id: str) -> ModelSpec:
        """The spec for ``model_id`` (an id, a folder path, or ``family:path``).

        Raises :class:`UnknownModelError` listing what is available.
        """
        specs = self.specs()
        for spec in specs:
            if spec.id == model_id:
                return spec
        cached = self._hub_revision(model_id, specs)
        if cached is not None:
            return cached
        family, sep, rest = model_id.partition(":")
        if sep and family in FAMILIES and rest:
            path = Path(rest).expanduser()
            if not path.exists():
                raise RequestError("model", model_id,
                                   f"FAMILY:PATH naming an existing folder ({rest!r} does not exist)")
            return ModelSpec(model_id, family, path, "path")
        path = Path(model_id).expanduser()
        if path.is_dir():
            family_found = detect_family(path)
            if family_found is None:
                raise ModelLoadError(
                    f"model folder {model_id!r} has no model_index.json or loopbridge.json naming a known "
                    f"family: expected one of {', '.join(FAMILIES)} (or name it as FAMILY:PATH)"
                )
            return ModelSpec(model_id, family_found, path, "path")
        raise UnknownModelError(model_id, [s.id for s in specs])

    def _hub_revision(self, model_id: str, specs: list[ModelSpec]) -> ModelSpec | None:
        """The hub cache revision ``model_id`` names other than by its listed id (``OWNER/NAME@REV`` by
        another ref or a commit prefix; plain ``OWNER/NAME`` with ``main`` not cached); None for an id
        that names no hub model in the cache. Raises RevisionNotCachedError naming the revisions cached."""
        repo_id, sep, revision = model_id.partition(REVISION_SEPARATOR)
        listed = [s for s in specs if s.source == "huggingface cache" and s.repo_id == repo_id]
        if not listed:
            return None
        names = [s.id for s in listed]
        if not sep:
            if len(listed) == 1:
                return listed[0]
            raise RevisionNotCachedError(model_id, f"main is not in the Hugging Face cache and {len(listed)} other "
                                                   "revisions are: name one", names)
        if not revision:
            raise RevisionNotCachedError(model_id, "nothing follows '@': expected a branch, tag or commit", names)
        repo_dir = listed[0].path.parents[1]  # models--OWNER--NAME/snapshots/<commit>
        match = match_revision(cached_revisions(repo_dir), revision)
        if match is not None:
            for spec in listed:
                if spec.path == match.path:
                    return spec
        ambiguous = len([r for r in cached_revisions(repo_dir) if r.named(revision)]) > 1
        why = (f"the revision {revision!r} names more than one cached commit of {repo_id}" if ambiguous else
               f"the revision {revision!r} of {repo_id} is not in the Hugging Face cache (`loopbridge models pull "
               f"{repo_id} --revision {revision}` fetches it)")
        raise RevisionNotCachedError(model_id, why, names)
