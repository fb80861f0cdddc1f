"""Which models exist on this machine, and which backend class loads each.

Models are found, never downloaded, in three places:

1. the embedded default model, shipped inside the package (id ``default``);
2. model folders under each directory of ``$LOOPBRIDGE_MODELS`` (``os.pathsep``-separated) and
   under ``<data dir>/models``: each sub-folder is a model whose id is the folder name;
3. the Hugging Face hub cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``):
   ``models--harmonai--maestro-150k`` becomes id ``harmonai/maestro-150k``.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError, RequestError, UnknownModelError
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


@dataclass(frozen=True)
class ModelSpec:
    """A model that can be loaded: its id, family, folder and where it was found."""

    id: str
    family: str
    path: Path
    source: str  # "embedded", "folder", "huggingface cache", "path"

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "family": self.family, "path": str(self.path), "source": self.source}


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


def _hf_snapshot(repo_dir: Path) -> Path | None:
    """The snapshot folder a cached hub repo resolves to offline (refs/main, else the newest)."""
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        candidate = snapshots / ref.read_text(encoding="utf-8").strip()
        if candidate.is_dir():
            return candidate
    folders = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return folders[-1] if folders else None


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
                snapshot = _hf_snapshot(repo_dir)
                if snapshot is None:
                    continue
                family = detect_family(snapshot, name_hint=repo_id)
                if family:
                    yield ModelSpec(repo_id, family, snapshot, "huggingface cache")

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
