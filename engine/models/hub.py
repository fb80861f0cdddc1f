"""Checkpoints from the Hugging Face hub: pulled only when asked, measured on disk, removed.

This is the one module of the engine that talks to a network, and only :func:`pull` does: everything
else (the registry, every backend's loader) reads the hub cache offline. A pull goes through
``huggingface_hub`` itself, so the download lands in the standard cache layout that every other
tool shares (``models--OWNER--NAME/blobs``, ``snapshots/<commit>``, ``refs/<branch>``), a token is
found the usual way (``HF_TOKEN``, ``hf auth login``) unless one is passed, and ``HF_ENDPOINT``
points it at another server. A connection dropped mid-file is picked up where it stopped with a
``Range`` request (the client's own retries); an interrupted pull keeps the files it finished, and
the same command run again fetches only the rest.

Only the files a loader reads are fetched: a diffusers pipeline's ``model_index.json`` and the
folders of the components it names, one weight format per component (safetensors before the
others, no precision variants), never the single-file checkpoints published beside them for other
tools. A repository loopbridge has no backend for is refused before any weights are fetched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import LoopbridgeError, ModelLoadError, RequestError, UnknownModelError
from .registry import (
    FAMILIES,
    PIPELINE_FAMILIES,
    REVISION_SEPARATOR,
    ModelRegistry,
    ModelSpec,
    backend_class,
    cached_revisions,
    default_hf_cache,
    detect_family,
    match_revision,
    revision_name,
)

#: a model id on the hub: OWNER/NAME, each letters, digits, '-', '_' and '.', not starting with '.' or '-'
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx", ".gguf", ".onnx_data")
#: the weight formats of other frameworks, never loaded here
_FOREIGN_WEIGHTS = (".msgpack", ".h5", ".onnx", ".onnx_data", ".gguf", ".mlpackage", ".tflite")
#: ``name.fp16.safetensors``: a precision variant of ``name.safetensors``
_VARIANT = re.compile(r"^(?P<stem>[^.]+)\.(?P<variant>[A-Za-z0-9_-]+)\.(?P<ext>safetensors|bin)$")
_DOCS = re.compile(r"^(README|LICEN[CS]E|NOTICE|USE_POLICY)[^/]*$", re.IGNORECASE)


class HubError(LoopbridgeError):
    """The hub refused or failed a pull (a server error, a dropped connection out of retries)."""

    code = "hub_failed"


class GatedModelError(HubError):
    """The checkpoint is gated: its licence must be accepted on the hub and a token given."""

    code = "gated"


class NotOnHubError(HubError):
    """No repository with this id on the hub (or a private one the token given cannot see)."""

    code = "unknown_model"


class NotInCacheError(UnknownModelError):
    """``models remove`` of an id (or ``ID@REV``) that has no hub cache entry."""

    def __init__(self, model_id: str, cache: Path, cached: list[str]) -> None:
        self.model_id = model_id
        self.available = cached
        listed = ", ".join(cached) if cached else "none: nothing was pulled"
        LoopbridgeError.__init__(self, f"model={model_id!r} has no entry in the Hugging Face cache {str(cache)!r}: "
                                       f"expected one of the ids there ({listed})")


class HubUnreachableError(HubError):
    """The hub cannot be reached (no network, a wrong ``HF_ENDPOINT``) or the hub is switched off."""

    code = "offline"


@dataclass(frozen=True)
class PullPlan:
    """What a pull fetches, known before any weights move."""

    repo_id: str
    revision: str
    family: str
    files: tuple[str, ...]
    size_bytes: int  # the selected files together, as the hub lists them


@dataclass(frozen=True)
class PullResult:
    """A finished pull: the snapshot folder the registry finds it in, the name that loads it
    (``OWNER/NAME`` for ``main``'s revision, else ``OWNER/NAME@REV``), and the cache entry's size."""

    repo_id: str
    revision: str
    commit: str
    family: str
    path: Path
    files: int
    size_on_disk: int
    name: str


@dataclass(frozen=True)
class Removed:
    """What ``models remove`` deleted: the names of the revisions gone, whether the whole cache entry
    went, and the bytes freed."""

    names: tuple[str, ...]
    whole_entry: bool
    freed: int


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` when it has the hub's ``OWNER/NAME`` form; raises RequestError otherwise."""
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise RequestError("model", repo_id, "a model id as the Hugging Face hub shows it, OWNER/NAME "
                                             "(letters, digits, '-', '_', '.'), e.g. stabilityai/stable-audio-open-1.0")
    return repo_id


def entry_folder(repo_id: str, cache: Path | None = None) -> Path:
    """The hub cache folder of ``repo_id`` (``models--OWNER--NAME``), whether or not it exists."""
    owner, name = check_repo_id(repo_id).split("/")
    return Path(cache if cache is not None else default_hf_cache()) / f"models--{owner}--{name}"


def folder_size(folder: Path) -> int:
    """Bytes the files under ``folder`` take, each file counted once.

    Links are followed to the file they name (a hub snapshot is links into ``blobs/``) and a file
    reached twice (two links, a hard link) counts once. 0 for a folder that does not exist.
    """
    seen: set[tuple[int, int]] = set()
    total = 0
    if not folder.exists():
        return 0
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            try:
                stat = (Path(root) / name).stat()
            except OSError:
                continue  # a dangling link: nothing on disk
            key = (stat.st_dev, stat.st_ino)
            if key not in seen:
                seen.add(key)
                total += stat.st_size
    return total


def size_on_disk(spec: ModelSpec) -> int:
    """Bytes ``spec`` takes: its folder's files (for a revision from the hub cache, the files its
    snapshot links to, some of which other revisions may share)."""
    return folder_size(Path(spec.path))


def entry_size_on_disk(spec: ModelSpec) -> int:
    """Bytes the whole hub cache entry of ``spec`` takes (every revision, partial files included);
    :func:`size_on_disk` for a model not from the hub cache."""
    if spec.source == "huggingface cache":
        return folder_size(Path(spec.path).parents[1])  # models--OWNER--NAME/snapshots/<commit>
    return folder_size(Path(spec.path))


def missing_files(spec: ModelSpec) -> list[str]:
    """Files a pull of ``spec`` would fetch that its snapshot lacks (a pull that stopped part way).

    Told offline from the file listing the hub client keeps beside a snapshot; without one (a pull
    that stopped before its listing, a cache laid out by other means) the component folders the
    pipeline's index names and the snapshot lacks, as ``NAME/``. Empty for a model that is not from
    the hub cache.
    """
    if spec.source != "huggingface cache":
        return []
    from huggingface_hub import get_cached_repo_tree
    from huggingface_hub.errors import CachedRepoTreeNotFoundError

    snapshot = Path(spec.path)
    model_index: dict[str, Any] | None = None
    if not (snapshot / "loopbridge.json").is_file() and (snapshot / "model_index.json").is_file():
        try:
            loaded = json.loads((snapshot / "model_index.json").read_text(encoding="utf-8"))
            model_index = loaded if isinstance(loaded, dict) else None
        except (OSError, ValueError):
            model_index = None
    skipped = skipped_components(spec.family) if spec.family in FAMILIES else ()
    try:
        tree = get_cached_repo_tree(spec.repo_id, revision=snapshot.name, cache_dir=snapshot.parents[2])
    except (CachedRepoTreeNotFoundError, OSError, ValueError):
        # no listing (a pull that stopped before it began, or a cache laid out by other means): a
        # component folder the index names and the snapshot lacks is what can still be told
        components = _components(model_index) if model_index is not None else []
        return [f"{name}/" for name in components if name not in skipped and not (snapshot / name).is_dir()]
    names = [entry.path for entry in tree]
    return [name for name in select_files(names, model_index, skipped) if not (snapshot / name).is_file()]


def cached_repo_ids(cache: Path | None = None) -> list[str]:
    """Ids of every model repository in the hub cache, pulled whole or in part."""
    root = Path(cache if cache is not None else default_hf_cache())
    if not root.is_dir():
        return []
    ids = []
    for folder in sorted(root.glob("models--*")):
        parts = folder.name[len("models--"):].split("--")
        if len(parts) == 2 and folder.is_dir():
            ids.append("/".join(parts))
    return ids


def cached_names(cache: Path | None = None) -> list[str]:
    """The name of every revision in the hub cache (``OWNER/NAME``, ``OWNER/NAME@REV``), and the plain id
    of an entry holding no revision yet (a pull that stopped before its first file)."""
    root = Path(cache if cache is not None else default_hf_cache())
    names = []
    for repo_id in cached_repo_ids(root):
        revisions = cached_revisions(entry_folder(repo_id, root))
        names.extend([revision_name(repo_id, r.label) for r in revisions] or [repo_id])
    return names


def pulled_name(repo_id: str, commit: str, cache: Path | None = None) -> str:
    """The name that loads ``repo_id``'s revision at ``commit`` from the cache (what ``models`` lists)."""
    for revision in cached_revisions(entry_folder(repo_id, cache)):
        if revision.commit == commit:
            return revision_name(repo_id, revision.label)
    return revision_name(repo_id, commit)


def _linked_blobs(snapshot: Path) -> set[Path]:
    """The files under ``blobs/`` that a snapshot's links name."""
    blobs = (snapshot.parents[1] / "blobs").resolve()
    linked = set()
    for path in snapshot.rglob("*"):
        if path.is_symlink():
            target = path.resolve()
            if target.parent == blobs:
                linked.add(target)
    return linked


def remove(name: str, registry: ModelRegistry) -> Removed:
    """Delete a model pulled into the hub cache: ``OWNER/NAME`` frees its whole cache entry (every revision
    and partial download) and its lock files; ``OWNER/NAME@REV`` one revision: its snapshot, the refs
    naming it and the files no other revision shares (the whole entry when it was the last).

    Only hub cache entries are removed. Raises RequestError for a model that lives elsewhere (a
    folder of the user's, the embedded model) and NotInCacheError (an UnknownModelError) naming the
    cached names for a name with no cache entry.
    """
    for spec in registry.specs():
        if spec.id == name and spec.source != "huggingface cache":
            where = "ships inside loopbridge" if spec.source == "embedded" else f"is the folder {str(spec.path)!r}"
            raise RequestError("model", name, "a model pulled into the Hugging Face cache (see `loopbridge models`)",
                               reason=f"it {where}; remove a folder of yours yourself")
    cache = registry.hf_cache
    repo_id, sep, wanted = name.partition(REVISION_SEPARATOR)
    try:
        folder = entry_folder(repo_id, cache)
    except RequestError:
        raise NotInCacheError(name, cache, cached_names(cache)) from None
    if not folder.is_dir():
        raise NotInCacheError(name, cache, cached_names(cache))
    revisions = cached_revisions(folder)
    every = tuple(revision_name(repo_id, r.label) for r in revisions) or (repo_id,)
    if not sep:
        return Removed(every, True, _remove_entry(folder, cache))
    revision = match_revision(revisions, wanted) if wanted else None
    if revision is None:
        raise NotInCacheError(name, cache, cached_names(cache))
    gone = (revision_name(repo_id, revision.label),)
    others = [r for r in revisions if r.commit != revision.commit]
    if not others:
        return Removed(gone, True, _remove_entry(folder, cache))
    before = folder_size(folder)
    kept: set[Path] = set()
    for other in others:
        kept |= _linked_blobs(other.path)
    own = _linked_blobs(revision.path) - kept
    shutil.rmtree(revision.path)
    for ref in revision.refs:
        (folder / "refs" / ref).unlink(missing_ok=True)
    for blob in own:
        blob.unlink(missing_ok=True)
    # the hub client's bookkeeping for that commit: files known absent, the file listing
    shutil.rmtree(folder / ".no_exist" / revision.commit, ignore_errors=True)
    (folder / "trees" / f"{revision.commit}.json").unlink(missing_ok=True)
    return Removed(gone, False, before - folder_size(folder))


def _remove_entry(folder: Path, cache: Path) -> int:
    freed = folder_size(folder)
    shutil.rmtree(folder)
    shutil.rmtree(cache / ".locks" / folder.name, ignore_errors=True)
    return freed


# ---- choosing the files -------------------------------------------------------------------------


def _components(model_index: dict[str, Any]) -> list[str]:
    """The component folders a diffusers ``model_index.json`` names (``unet``, ``vae``, ...)."""
    return [name for name, entry in model_index.items()
            if not name.startswith("_") and isinstance(entry, list) and len(entry) == 2 and entry[0] is not None]


def select_files(files: list[str], model_index: dict[str, Any] | None, skipped: tuple[str, ...] = ()) -> list[str]:
    """The files of a repository a loader reads, in the repository's order.

    With a diffusers ``model_index``: the index, the model card and licence, and the folders of the
    components it names but ``skipped`` (those the family never loads); in each folder one weight
    format (safetensors when there is one) and no precision variants (``*.fp16.safetensors``) beside
    a plain file. Without one (a loopbridge layout): every file but other frameworks' weights.
    """
    def foreign(path: str) -> bool:
        return path.lower().endswith(_FOREIGN_WEIGHTS)

    if model_index is None:
        return [f for f in files if not foreign(f)]
    components = set(_components(model_index)) - set(skipped)
    chosen: list[str] = []
    by_folder: dict[str, list[str]] = {}
    for path in files:
        parts = PurePosixPath(path).parts
        if len(parts) == 1:
            if path == "model_index.json" or _DOCS.match(path):
                chosen.append(path)
            continue  # root-level single-file checkpoints and configs of other tools
        if parts[0] in components and not foreign(path):
            by_folder.setdefault(str(PurePosixPath(path).parent), []).append(path)
    keep: set[str] = set()
    for folder_files in by_folder.values():
        names = {PurePosixPath(f).name for f in folder_files}
        has_safetensors = any(n.endswith(".safetensors") and not _VARIANT.match(n) for n in names)
        for path in folder_files:
            name = PurePosixPath(path).name
            variant = _VARIANT.match(name)
            if variant and f"{variant['stem']}.{variant['ext']}" in names:
                continue  # a precision variant beside the plain file
            if has_safetensors and name.endswith(_WEIGHT_SUFFIXES) and not name.endswith(".safetensors"):
                continue  # the same weights in an older format
            keep.add(path)
    return [f for f in files if f in keep or f in chosen]


# ---- pulling ------------------------------------------------------------------------------------


def skipped_components(family: str) -> tuple[str, ...]:
    """The published components ``family``'s backend never loads."""
    return tuple(getattr(backend_class(family), "skipped_components", ()))


def _endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or constants.ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """Whether the hub client is switched off in this process (``HF_HUB_OFFLINE``)."""
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


@contextmanager
def _hub_errors(repo_id: str, revision: str, endpoint: str, token_given: bool) -> Iterator[None]:
    """The hub client's errors as the engine's, each saying what to do next."""
    import httpx2
    from huggingface_hub import errors

    page = f"{endpoint}/{repo_id}"
    kept = "files already pulled are kept: run the same command again to fetch the rest"
    try:
        yield
    except errors.GatedRepoError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if token_given or status == 403:
            why = "the token given has not been granted access to it yet"
        else:
            why = "no token was given"
        raise GatedModelError(
            f"{repo_id} is gated and {why}: open {page} while signed in and accept its licence, then give a read "
            f"token from {endpoint}/settings/tokens in one of three ways: `hf auth login`, the HF_TOKEN environment "
            f"variable, or --token-file FILE"
        ) from None
    except errors.RevisionNotFoundError:
        raise RequestError("revision", revision, f"a branch, tag or commit of {repo_id} (see {page}/tree/main)",
                           reason="the hub has no such revision") from None
    except errors.RepositoryNotFoundError:
        raise NotOnHubError(
            f"model={repo_id!r} is not on {endpoint} (or it is private and the token given cannot see it): expected "
            "a model id as the hub shows it; `loopbridge models --available` lists checkpoints known to work"
        ) from None
    except errors.OfflineModeIsEnabled:
        raise HubUnreachableError(_offline_message(repo_id)) from None
    except (errors.LocalEntryNotFoundError, httpx2.ConnectError, httpx2.TimeoutException) as exc:
        raise HubUnreachableError(
            f"cannot reach {endpoint} to pull {repo_id} ({_reason(exc)}): check the network connection "
            f"(and HF_ENDPOINT if set); {kept}"
        ) from None
    except errors.FileMetadataError as exc:
        raise HubError(f"{endpoint} does not answer like a Hugging Face hub while pulling {repo_id} "
                       f"({_reason(exc)}): check HF_ENDPOINT; {kept}") from None
    except httpx2.RemoteProtocolError as exc:
        raise HubError(f"the connection to {endpoint} kept dropping while pulling {repo_id} ({exc}); {kept}") from None
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "an error"
        raise HubError(f"{endpoint} answered {status} while pulling {repo_id}; {kept}") from None


def _reason(exc: BaseException) -> str:
    while exc.__cause__ is not None and not str(exc).strip():
        exc = exc.__cause__
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


def _has_token(token: str | None) -> bool:
    """Whether a request will carry a token: the one given, else the client's (HF_TOKEN, a stored login)."""
    from huggingface_hub import get_token

    return token is not None or get_token() is not None


def _offline_message(repo_id: str) -> str:
    return (f"cannot pull {repo_id}: the Hugging Face client is switched off here (HF_HUB_OFFLINE or "
            "TRANSFORMERS_OFFLINE is set); run the pull with HF_HUB_OFFLINE=0")


def _not_loadable(repo_id: str, what: str) -> RequestError:
    return RequestError("model", repo_id, "a diffusers pipeline of a family loopbridge loads: "
                        + ", ".join(sorted(PIPELINE_FAMILIES)), reason=what)


def plan_pull(repo_id: str, revision: str | None = None, *, token: str | None = None, cache: Path | None = None,
              endpoint: str | None = None) -> PullPlan:
    """What :func:`pull` would fetch; fetches only the small index files (into the cache).

    Raises RequestError for a repository no backend loads (nothing else is fetched; the index file
    fetched to tell is removed again when the repository was not cached before).
    """
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.hf_api import RepoFile

    check_repo_id(repo_id)
    revision = revision or "main"
    endpoint = _endpoint(endpoint)
    if hub_offline():
        raise HubUnreachableError(_offline_message(repo_id))
    cache = Path(cache) if cache is not None else default_hf_cache()
    existed = entry_folder(repo_id, cache).exists()
    api = HfApi(endpoint=endpoint, token=token)
    with _hub_errors(repo_id, revision, endpoint, _has_token(token)):
        tree = [entry for entry in api.list_repo_tree(repo_id, revision=revision, recursive=True)
                if isinstance(entry, RepoFile)]
        names = [entry.path for entry in tree]
        sizes = {entry.path: int(entry.size or 0) for entry in tree}
        marker = "loopbridge.json" if "loopbridge.json" in names else "model_index.json"
        if marker not in names:
            raise _not_loadable(repo_id, "it has neither a model_index.json nor a loopbridge.json")
        local = Path(hf_hub_download(repo_id, marker, revision=revision, token=token, endpoint=endpoint,
                                     cache_dir=cache))
    model_index: dict[str, Any] | None = None
    if marker == "model_index.json":
        try:
            model_index = json.loads(local.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{repo_id}'s model_index.json does not parse: {exc}") from exc
        if not isinstance(model_index, dict):
            raise ModelLoadError(f"{repo_id}'s model_index.json is not a JSON object")
    family = detect_family(local.parent, name_hint=repo_id)
    if family is None:
        if not existed:  # only the index file came: leave no trace of a repository nothing here loads
            shutil.rmtree(entry_folder(repo_id, cache), ignore_errors=True)
        class_name = (model_index or {}).get("_class_name", "?")
        raise _not_loadable(repo_id, f"it is a {class_name}" if marker == "model_index.json"
                            else "its loopbridge.json names no family of this installation")
    files = select_files(names, model_index if marker == "model_index.json" else None, skipped_components(family))
    return PullPlan(repo_id, revision, family, tuple(files), sum(sizes[f] for f in files))


def pull(repo_id: str, revision: str | None = None, *, token: str | None = None, cache: Path | None = None,
         endpoint: str | None = None, progress: bool = True,
         on_plan: Callable[[PullPlan], None] | None = None) -> PullResult:
    """Fetch ``repo_id`` at ``revision`` (a branch, tag or commit; default ``main``) into the hub cache.

    ``token``: a hub token, else the client's own (``HF_TOKEN``, ``hf auth login``). ``cache``: the
    hub cache folder (default: where the registry looks). ``endpoint``: the hub (default
    ``HF_ENDPOINT``). ``progress``: the client's progress bars on stderr. ``on_plan`` hears what will
    be fetched before the weights are.

    The client downloads in threads it waits for: a KeyboardInterrupt reaches the caller only once
    the files being fetched are done (a command stops at once with :func:`discard_partial_files`).

    Raises RequestError (a malformed id, a repository no backend loads, an unknown revision),
    UnknownModelError (no such repository), GatedModelError (a licence to accept, a token to give),
    HubUnreachableError (no network, or the client switched off) and HubError (the server failed).
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    cache = Path(cache) if cache is not None else default_hf_cache()
    plan = plan_pull(repo_id, revision, token=token, cache=cache, endpoint=endpoint)
    if on_plan is not None:
        on_plan(plan)
    endpoint = _endpoint(endpoint)
    if not progress:
        disable_progress_bars()
    try:
        with _hub_errors(repo_id, plan.revision, endpoint, _has_token(token)):
            snapshot = Path(snapshot_download(repo_id, revision=plan.revision, cache_dir=cache, token=token,
                                              endpoint=endpoint, allow_patterns=list(plan.files)))
    finally:
        if not progress:
            enable_progress_bars()
    missing = [f for f in plan.files if not (snapshot / f).is_file()]
    if missing:
        raise HubError(f"the pull of {repo_id} ended without {', '.join(missing[:3])}: run the same command again")
    return PullResult(repo_id, plan.revision, snapshot.name, plan.family, snapshot, len(plan.files),
                      folder_size(entry_folder(repo_id, cache)), pulled_name(repo_id, snapshot.name, cache))


def discard_partial_files(repo_id: str, cache: Path | None = None) -> None:
    """Delete the files a pull of ``repo_id`` was still writing (named for that pull alone, so no
    later pull resumes them); the files it finished stay."""
    for partial in (entry_folder(repo_id, cache) / "blobs").glob("*.incomplete"):
        partial.unlink(missing_ok=True)


def family_loadable(family: str) -> bool:
    """Whether this installation has a backend for ``family``."""
    return family in FAMILIES
