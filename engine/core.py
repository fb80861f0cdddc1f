"""The engine's working parts behind the front door: resident models, the render store, the conform stage.

Clients do not call this directly: they go through :class:`loopbridge.engine.frontdoor.FrontDoor`,
which plans a job, asks the store once, and calls :meth:`Engine.render` for what is missing and
:meth:`Engine.conform` for what is not yet fitted to the song. The scheduler renders without storing
(``store=False``) and writes each render with :meth:`Engine.store_renders` once its slot is free, so the
next batch's model need not wait for the store. Renders are keyed by what
determines their audio, conformed files by (render, tempo, bars, pitch, rate), so a tempo change
never re-runs a model. The engine holds no per-client state: anything a second engine needs is in
the request or the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import CancelledError, OutOfMemoryError, RequestError
from .models.base import (
    Capabilities,
    GeneratedAudio,
    LoadOptions,
    ProgressCallback,
    check_request,
    folder_fingerprint,
    settings_digest,
)
from .models.registry import ModelRegistry, ModelSpec, backend_class, default_data_dir
from .request import (
    MAX_VARIATIONS,
    TEXTURE_PREROLL_S,
    ConformSpec,
    GenerateRequest,
    Kind,
    Render,
)
from .store import HistoryEntry, RenderStore, StoredSample
from .weights import EventCallback, WeightCache

#: whether only pre-renders wait on a batch: fixed, or asked again while it runs (a job may join it)
Background = bool | Callable[[], bool]


def default_store_dir() -> Path:
    return default_data_dir() / "store"


class Engine:
    """Resident models, a render store and the conform stage behind one API.

    ``store_dir`` defaults to ``<data dir>/store`` (``$LOOPBRIDGE_HOME`` overrides the data dir).
    ``device`` is ``"auto"`` (CUDA, else Apple's MPS, else the CPU), ``"cpu"``, ``"cuda"`` or
    ``"mps"``. ``memory_budget_bytes`` bounds resident weights (None: no bound).
    ``on_event(name, fields)`` hears model loads and evictions. Thread-safe; generation is
    serialised per engine (one accelerator, one worker).
    """

    def __init__(
        self,
        store_dir: str | Path | None = None,
        registry: ModelRegistry | None = None,
        device: str | torch.device | None = "auto",
        dtype: torch.dtype = torch.float32,
        memory_budget_bytes: int | None = None,
        load_options: LoadOptions | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        self.registry = registry or ModelRegistry()
        self._store_dir = Path(store_dir) if store_dir is not None else default_store_dir()
        self._store: RenderStore | None = None
        self.weights = WeightCache(
            self.registry,
            device=device,
            dtype=dtype,
            budget_bytes=memory_budget_bytes,
            options=load_options,
            on_event=on_event,
        )
        self._generate_lock = threading.Lock()
        self._meta_lock = threading.Lock()
        self._digests: dict[Path, str] = {}
        self._digest_by_id: dict[str, str] = {}
        self._capabilities: dict[tuple[str, str], Capabilities] = {}

    @property
    def store(self) -> RenderStore:
        """The render store, opened on first use (checking a request writes nothing)."""
        with self._meta_lock:
            if self._store is None:
                self._store = RenderStore(self._store_dir)
            return self._store

    def close(self) -> None:
        """Close this thread's store connection, if the store was ever opened."""
        with self._meta_lock:
            store = self._store
        if store is not None:
            store.close()

    @property
    def device(self) -> torch.device:
        return self.weights.device

    # ---- models ---------------------------------------------------------------------------------

    def models(self) -> list[ModelSpec]:
        """Every model available now (embedded, folders, hub cache)."""
        return self.registry.specs()

    def resolve(self, model_id: str) -> ModelSpec:
        return self.registry.resolve(model_id)

    def model_digest(self, model_id: str) -> str:
        """Fingerprint of a model as this engine runs it (computed once per model per process).

        The weights' fingerprint, with the engine's load settings that change the audio folded in
        (a scheduler, a dtype: :meth:`ModelBackend.render_settings`), so a render made under one
        sampler is never served for a request under another; under the defaults it is the weights'
        fingerprint alone, as render keys have always used. Cached by id as well as by folder: a
        request's render key needs it, and resolving an id scans the model folders, too slow for a
        request served from the store.
        """
        with self._meta_lock:
            digest = self._digest_by_id.get(model_id)
        if digest is not None:
            return digest
        spec = self.resolve(model_id)
        with self._meta_lock:
            weights = self._digests.get(spec.path)
        if weights is None:
            loaded = self.weights.get_loaded(model_id)
            weights = loaded.weights_digest if loaded is not None else folder_fingerprint(spec.path)
        digest = settings_digest(weights, self.render_settings(model_id))
        with self._meta_lock:
            self._digests[spec.path] = weights
            self._digest_by_id[model_id] = digest
        return digest

    def render_settings(self, model_id: str) -> dict[str, str]:
        """The load settings of this engine that change what ``model_id`` makes (empty: the defaults)."""
        return self.weights.render_settings(self.resolve(model_id).family)

    def capabilities(self, model_id: str) -> Capabilities:
        """What ``model_id`` can do, from the loaded model or its config files (no weights loaded)."""
        loaded = self.weights.get_loaded(model_id)
        if loaded is not None:
            return loaded.capabilities
        cache_key = (model_id, self.model_digest(model_id))
        with self._meta_lock:
            caps = self._capabilities.get(cache_key)
        if caps is None:
            spec = self.resolve(model_id)
            caps = backend_class(spec.family).inspect(spec.path)
            with self._meta_lock:
                self._capabilities[cache_key] = caps
        return caps

    def warm(self, model_id: str = "default") -> None:
        """Load ``model_id`` now rather than on its first request."""
        with self.weights.use(model_id):
            pass

    # ---- requests -------------------------------------------------------------------------------

    def check(self, request: GenerateRequest) -> None:
        """Raise if ``request`` cannot be served (unknown model, unsupported kind or length...)."""
        check_request(self.capabilities(request.model), request)

    def expand(self, request: GenerateRequest) -> list[tuple[str, GenerateRequest]]:
        """``[(part, request)]``: a kit becomes one one-shot request per part; anything else stays whole."""
        self.check(request)
        if request.kind is not Kind.KIT:
            return [("", request)]
        parts = backend_class(self.resolve(request.model).family).kit_requests(request)
        for _, part in parts:
            self.check(part)
        return parts

    def render_key(self, request: GenerateRequest) -> str:
        return request.render_key(self.model_digest(request.model))

    def render(self, items: Sequence[tuple[str, GenerateRequest]],
               progress: ProgressCallback | None = None, *, background: Background = False,
               store: bool = True) -> list[Render]:
        """Run the models for ``items`` (``(render_key, request)`` pairs planned and checked by
        :meth:`plan`) and store each render; returns them in order. Nothing is looked up first: the
        front door has asked the store already. ``background``: only pre-renders wait on them (a
        cluster's replicas let interactive work on their device go first); a callable is asked
        again while the batch runs, after :meth:`batches_changed` (an interactive job may join it).
        ``store=False``: nothing is written; the caller stores the renders (:meth:`store_renders`)
        before anyone is answered with them (the scheduler does, once the model's slot is free).

        Requests of one model run as batches of up to the model's ``max_batch``. Raises
        :class:`CancelledError` when ``progress`` cancels (nothing of the batch is stored),
        :class:`OutOfMemoryError` when the accelerator runs out (the engine stays usable),
        :class:`StoreError` when a render cannot be written (those before it are stored).
        """
        results: dict[str, Render] = {}
        batches = self._batches(dict(items))
        for index, batch in enumerate(batches):
            batch_progress = _scaled(progress, index, len(batches))
            renders = self._run_batch(batch, batch_progress, background)
            if store:
                self.store_renders(renders)
            for render in renders:
                results[render.key] = render
        if progress is not None:
            progress(1.0)
        return [results[key] for key, _ in items]

    def store_renders(self, renders: Sequence[Render]) -> None:
        """Write ``renders`` to the store, in order (one already stored is left as it is). Raises
        :class:`StoreError` at the first that cannot be written (those before it are stored)."""
        for render in renders:
            self.store.put_render(render)

    def _batches(self, missing: dict[str, GenerateRequest]) -> list[list[tuple[str, GenerateRequest]]]:
        by_model: dict[str, list[tuple[str, GenerateRequest]]] = {}
        for key, request in missing.items():
            by_model.setdefault(request.model, []).append((key, request))
        batches = []
        for model_id, items in by_model.items():
            size = max(1, self.capabilities(model_id).max_batch)
            batches += [items[i : i + size] for i in range(0, len(items), size)]
        return batches

    def _run_batch(self, batch: list[tuple[str, GenerateRequest]], progress: ProgressCallback | None,
                   background: Background = False) -> list[Render]:
        model_id = batch[0][1].model
        requests = [request for _, request in batch]
        outputs = self.generate(model_id, requests, progress, background=background)
        digest = self.model_digest(model_id)
        caps = self.capabilities(model_id)
        settings = self.render_settings(model_id)
        renders = []
        for (key, request), output in zip(batch, outputs, strict=True):
            info: dict[str, Any] = dict(output.info)
            if settings:  # history and recall say which sampler and precision made it
                info.setdefault("load_settings", settings)
            if request.prompt and not caps.text_prompt:
                info.setdefault("notes", []).append(f"model {model_id!r} takes no text: the prompt was not used")
            render = Render(
                key=key,
                audio=output.audio,
                sample_rate=output.sample_rate,
                request=request,
                model_digest=digest,
                info=info,
            )
            renders.append(render)
        return renders

    def generate(self, model_id: str, requests: Sequence[GenerateRequest],
                 progress: ProgressCallback | None = None, *, background: Background = False) -> list[GeneratedAudio]:
        """Run ``model_id`` on ``requests`` (one batch, checked already); nothing is stored.
        ``background`` (only pre-renders: see :meth:`render`) changes nothing here: one accelerator
        runs one batch at a time.

        What a cluster's model worker calls (:mod:`.replica`); :meth:`render` makes renders of what it
        returns (and stores them unless told not to).
        Raises :class:`CancelledError` when ``progress`` cancels, :class:`OutOfMemoryError` when the
        accelerator runs out (the engine stays usable).
        """
        with self._generate_lock, self.weights.use(model_id) as backend:
            try:
                with torch.inference_mode():
                    return backend.generate([_with_preroll(r, backend.capabilities) for r in requests], progress)
            except CancelledError:
                raise
            except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                raise OutOfMemoryError(
                    f"model {model_id!r} ran out of memory on {self.device} for a batch of {len(requests)}: "
                    "try fewer variations, a shorter duration or a smaller memory budget for other models"
                ) from exc

    # ---- where batches run (the scheduler's workers) ----------------------------------------------

    @property
    def accelerated(self) -> bool:
        """Models run on a CUDA device (background renders may then ride along with interactive ones)."""
        return self.device.type == "cuda"

    @property
    def preempts_background(self) -> bool:
        """An interactive request stops a running batch of pre-renders when no slot is free (see
        :mod:`.scheduler`). Not here: with one accelerator the interactive batch runs next anyway, and
        what a pre-render did so far would be lost."""
        return False

    def batches_changed(self) -> None:
        """The scheduler changed what a running batch is for: nobody wants it any more (cancelled,
        stopping), it is pre-empted, or an interactive job joined a batch of pre-renders. Nothing to
        do here: the model asks its progress callback at each step. An engine whose batches run
        elsewhere (:mod:`.cluster`) asks their callbacks and ``background`` now, rather than polling."""

    def pools(self) -> dict[str, int]:
        """Where batches run, by name, and how many may run at once in each: here, one accelerator."""
        return {"": 1}

    def pool(self, model_id: str) -> str:
        """The pool ``model_id``'s batches run in (one of :meth:`pools`)."""
        return ""

    # ---- conforming -----------------------------------------------------------------------------------

    def conform(self, render: Render, spec: ConformSpec, key: str | None = None,
                reserve: Callable[[int], None] | None = None, *,
                sets_level: bool = False) -> tuple[StoredSample, bytes]:
        """``render`` fitted to ``spec``, written to the store as a tagged WAV under ``key`` (its conform
        key, computed when not given); returns the stored sample and the file's bytes.

        A kit part's name (``render.info["part"]``) goes into the file name. Nothing is looked up
        first: the front door conforms only what the store does not hold. ``reserve(nbytes)`` hears
        the most memory the conform and its WAV file will hold, before the work (it may wait or
        refuse: :func:`loopbridge.engine.conform.conform_audio`).

        ``sets_level``: ``render`` is the first loop of its request to be conformed, and sets the level
        the request's variations share (:meth:`~.request.GenerateRequest.level_group`): what it measures
        is kept in the store (:meth:`~.store.RenderStore.keep_request_level`), and the file is stored
        under the key of ``spec`` with that level (``key`` is then not used).
        """
        from .conform import SourceInfo, conform_audio, encode_wav, sample_filename
        from .user_audio import is_user_render, user_filename
        from .user_audio import source_info as user_source_info

        request = render.request
        user_file = is_user_render(render.info)
        # a user's file was asked to hold no length: the conform stage hears only what its user said
        source = user_source_info(render.info) if user_file else SourceInfo.for_render(render)
        conformed = conform_audio(render.audio, render.sample_rate, request.kind, spec, source, reserve=reserve,
                                  sets_level=sets_level)
        group = request.level_group() if sets_level else None
        crest = conformed.info.get("levels", {}).get("crest_db") if group is not None else None
        if group is not None and crest is not None:
            kept = self.store.keep_request_level(group, float(crest), render.key)
            spec = spec.replace(level_crest_db=kept)
            key = spec.conform_key(render.key)
            if kept != crest:  # another engine on this store set the level first: the file follows it
                conformed = conform_audio(render.audio, render.sample_rate, request.kind, spec, source,
                                          reserve=reserve)
        part = str(render.info.get("part", ""))
        words = request.prompt
        if part and words.lower().startswith(part.lower()):
            words = words[len(part) :].strip()  # a kit part's prompt leads with the part's name
        filename = sample_filename(words, conformed, seed=request.seed, variation=request.variation, part=part)
        if user_file:
            filename = user_filename(filename, render.key)
        notes = {"notes": list(render.info["notes"])} if render.info.get("notes") else {}
        sample = StoredSample(
            key=key or spec.conform_key(render.key), path=Path(filename), render_key=render.key, kind=conformed.kind,
            tempo_bpm=conformed.tempo_bpm, beats=conformed.beats, root_note=conformed.root_note,
            loop_start=conformed.loop_start, loop_end=conformed.loop_end, sample_rate=conformed.sample_rate,
            filename=filename, info={**dict(conformed.info), "model": request.model, "part": part, **notes},
            created_at=0.0,
        )
        data = encode_wav(conformed)
        return self.store.put_conformed(sample, data, spec.key_fields()), data

    def plan(self, request: GenerateRequest, variations: int = 1) -> list[tuple[str, GenerateRequest]]:
        """``[(part, request)]`` to render for ``variations`` of ``request``: kits split into parts.

        Checks every request first (raises what :meth:`check` raises).
        """
        planned: list[tuple[str, GenerateRequest]] = []
        for variant in self.variations(request, variations):
            planned += self.expand(variant)
        return planned

    def variations(self, request: GenerateRequest, count: int) -> list[GenerateRequest]:
        """``count`` variations starting at ``request.variation``."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_VARIATIONS:
            raise RequestError("variations", count, f"1–{MAX_VARIATIONS}")
        return [request if i == 0 else request.with_variation(request.variation + i) for i in range(count)]

    # ---- history --------------------------------------------------------------------------------

    def history(self, limit: int = 50, offset: int = 0, model: str | None = None) -> list[HistoryEntry]:
        return self.store.history(limit=limit, offset=offset, model=model)

    def stored_request(self, key: str) -> tuple[str, GenerateRequest, dict[str, Any]] | None:
        """``(full key, request, model info)`` of a stored render, by key or a unique prefix of 6+ hex
        digits, from the index (its audio is not read); None when there is no such render."""
        full = key if len(key) == 64 else self.store.find_render(key)
        entry = self.store.render_request(full) if full else None
        return (full, *entry) if full and entry else None

    def recall(self, key: str) -> Render | None:
        """A stored render by key (or a unique prefix of at least 6 hex digits)."""
        full = key if len(key) == 64 else self.store.find_render(key)
        return self.store.get_render(full) if full else None


def _with_preroll(request: GenerateRequest, caps: Capabilities) -> GenerateRequest:
    """What the model is asked for: a texture :data:`TEXTURE_PREROLL_S` longer (when the model can go
    that long), so its conformed loop keeps the length asked for; anything else as it is. The render
    is stored under the request as asked."""
    if request.kind is not Kind.TEXTURE:
        return request
    longer = round(request.render_duration_s + TEXTURE_PREROLL_S, 6)
    if longer > caps.max_duration_s:
        return request
    return request.replace(duration_s=longer, bars=None)


def _scaled(progress: ProgressCallback | None, index: int, count: int) -> Callable[[float], None] | None:
    if progress is None:
        return None

    def report(fraction: float) -> None:
        progress((index + min(max(fraction, 0.0), 1.0)) / count)

    return report
