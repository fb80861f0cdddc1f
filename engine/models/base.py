"""The interface every model family implements.

A backend is loaded once (``load``), then called many times (``generate``) with batches of
immutable requests. Generation settings travel with each request, never on the backend object, so
one loaded model serves concurrent requests with different settings.

A batch is cancelled through its progress callback, which raises at the model's next step. Where a
step is long, a model may also call :func:`stop_point` inside it (between its network's blocks, say):
that runs the check the caller put in place for this thread (:func:`stop_check`), which raises the
same error the progress callback would, so a cancelled or pre-empted batch frees its device within a
block rather than a step. Nothing is computed differently: a batch that is not stopped makes the same
output to the bit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import RequestError, UnsupportedError
from ..request import TRACKS, GenerateRequest, Kind, Task

#: called with the fraction done (0–1); may raise :class:`~loopbridge.engine.errors.CancelledError`
ProgressCallback = Callable[[float], None]

_stop_checks = threading.local()


@contextlib.contextmanager
def stop_check(check: Callable[[], None]) -> Iterator[None]:
    """While in the block, :func:`stop_point` on this thread calls ``check``, which raises (the
    :class:`~loopbridge.engine.errors.CancelledError` its batch's progress callback would raise) when
    the batch running on this thread is to stop, and must be quick (it runs many times a step)."""
    previous = getattr(_stop_checks, "check", None)
    _stop_checks.check = check
    try:
        yield
    finally:
        _stop_checks.check = previous


def stop_point() -> None:
    """A point inside a model's step where its batch may stop: runs this thread's :func:`stop_check`
    (nothing where none is in place, as in training)."""
    check = getattr(_stop_checks, "check", None)
    if check is not None:
        check()

#: the parts of a kit, in order; a kit request becomes one one-shot request per part
KIT_PARTS: tuple[str, ...] = ("kick", "snare", "clap", "closed hat", "open hat", "tom", "perc")


@dataclass(frozen=True)
class LoadOptions:
    """Speed and memory options for loading a model; each backend uses those that apply to it.

    ``attention``: ``None`` (the library default), ``"sdpa"`` or ``"eager"``. ``compile``: wrap the
    denoiser in ``torch.compile``. ``scheduler``: ``None`` keeps the checkpoint's scheduler, or a
    name from the backend's ``schedulers`` (``"dpm++"``, ``"ddim"``, ...). ``cpu_offload``: keep
    weights in RAM and move each component to the accelerator only while it runs.
    """

    attention: str | None = None
    compile: bool = False
    scheduler: str | None = None
    cpu_offload: bool = False


@dataclass(frozen=True)
class Capabilities:
    """What a loaded model can do. Reported by ``loopbridge models`` and the protocol."""

    family: str
    sample_rate: int
    channels: int
    max_duration_s: float
    min_duration_s: float = 0.05
    text_prompt: bool = True
    audio_prompt: bool = False
    negative_prompt: bool = False
    morph: bool = False
    #: conditioned on where its output sits in a longer piece (``request.start_s``)
    start_offset: bool = False
    #: conditioned on a dancer's motion (``request.motion_prompt``): a learned Dance2Music model
    motion_prompt: bool = False
    kinds: frozenset[Kind] = frozenset({Kind.ONE_SHOT, Kind.LOOP, Kind.TEXTURE})
    default_steps: int = 50
    default_guidance: float | None = None
    #: class names for class-conditional models (the default model); empty for free text
    classes: tuple[str, ...] = ()
    #: how many requests one call of ``generate`` handles at once before memory runs short
    max_batch: int = 8
    #: what the model does with a user's audio besides generating (:class:`~loopbridge.engine.request.Task`)
    tasks: frozenset[Task] = frozenset({Task.GENERATE})
    #: conditioned on the song's tempo, key and meter as values of their own (not only through the prompt)
    musical_conditioning: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "max_duration_s": self.max_duration_s,
            "min_duration_s": self.min_duration_s,
            "text_prompt": self.text_prompt,
            "audio_prompt": self.audio_prompt,
            "negative_prompt": self.negative_prompt,
            "morph": self.morph,
            "start_offset": self.start_offset,
            "motion_prompt": self.motion_prompt,
            "kinds": sorted(k.value for k in self.all_kinds),
            "default_steps": self.default_steps,
            "default_guidance": self.default_guidance,
            "classes": list(self.classes),
            "max_batch": self.max_batch,
            "tasks": [t.value for t in Task if t in self.tasks],
            "musical_conditioning": self.musical_conditioning,
            "tracks": list(self.tracks),
        }

    @property
    def tracks(self) -> tuple[str, ...]:
        """The parts ``extract`` and ``add`` name (``request.track``), when the model does either; else none."""
        return TRACKS if self.tasks & {Task.EXTRACT, Task.ADD} else ()

    @property
    def all_kinds(self) -> frozenset[Kind]:
        """The kinds a request may ask for, kits included where the engine can assemble one.

        A kit is assembled by the engine from one-shots, which needs text to name each part.
        """
        if Kind.ONE_SHOT in self.kinds and self.text_prompt:
            return self.kinds | {Kind.KIT}
        return self.kinds


@dataclass(frozen=True, eq=False)
class GeneratedAudio:
    """One backend output: ``audio`` float32 ``[channels, samples]`` at ``sample_rate``.

    ``info`` follows :class:`~loopbridge.engine.request.Render.info`.
    """

    audio: np.ndarray
    sample_rate: int
    info: Mapping[str, Any] = field(default_factory=dict)


class ModelBackend(ABC):
    """A loaded model of one family.

    Subclasses set ``family`` and implement :meth:`load`, :attr:`capabilities` and
    :meth:`_generate`. :meth:`generate` checks every request against the capabilities first.
    """

    family: ClassVar[str]

    def __init__(self, path: Path | None, device: torch.device, dtype: torch.dtype) -> None:
        self.path = path
        self.device = device
        self.dtype = dtype
        self._digest: str | None = None

    # ---- loading --------------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def load(
        cls,
        path: Path,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        options: LoadOptions | None = None,
    ) -> ModelBackend:
        """Load from a local folder (diffusers layout or the family's own). Never downloads.

        Raises :class:`~loopbridge.engine.errors.ModelLoadError` for a missing or corrupt folder.
        """

    @classmethod
    def inspect(cls, path: Path) -> Capabilities:
        """Capabilities of the model in ``path`` from its config files alone, without loading weights.

        ``loopbridge models`` and the protocol's capabilities use this. The fallback loads the model;
        families override it to read their configs only.
        """
        return cls.load(path).capabilities

    @classmethod
    def render_settings(cls, device: torch.device, dtype: torch.dtype, options: LoadOptions) -> dict[str, str]:
        """The load settings beyond the weights that change what this family generates, for render keys.

        Empty under the defaults (float32, the checkpoint's own scheduler), so renders made with them
        keep the keys they always had. ``compile``, ``attention`` and ``cpu_offload`` are left out:
        they change how fast or where a model runs, not what it makes (beyond float rounding).
        Families override this where an option does not apply to them or names their default.
        """
        settings: dict[str, str] = {}
        if options.scheduler is not None:
            settings["scheduler"] = options.scheduler.strip().lower()
        if dtype != torch.float32:
            settings["dtype"] = dtype_name(dtype)
        return settings

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @property
    def weights_digest(self) -> str:
        """A fingerprint of the weights, part of every render key."""
        if self._digest is None:
            self._digest = folder_fingerprint(self.path) if self.path is not None else self.family
        return self._digest

    def memory_bytes(self) -> int:
        """Bytes the loaded weights take (for the memory budget)."""
        total = 0
        for module in self.modules():
            for tensor in list(module.parameters()) + list(module.buffers()):
                total += tensor.numel() * tensor.element_size()
        return total

    def modules(self) -> list[torch.nn.Module]:
        """The torch modules this backend holds (for memory accounting and moving devices)."""
        return []

    # ---- generation -----------------------------------------------------------------------

    def check(self, request: GenerateRequest) -> None:
        """Raise if this model cannot serve ``request``; names the value and what is accepted."""
        check_request(self.capabilities, request)

    def generate(
        self, requests: Sequence[GenerateRequest], progress: ProgressCallback | None = None
    ) -> list[GeneratedAudio]:
        """Generate one output per request, as one batch where the model allows.

        Outputs are in request order. Raises what :meth:`check` raises before any work is done.
        """
        if not requests:
            return []
        for request in requests:
            if request.kind is Kind.KIT:
                raise UnsupportedError("a kit is split into one-shots by the engine (Engine.expand) before generating")
            self.check(request)
        outputs = self._generate(list(requests), progress)
        if len(outputs) != len(requests):
            raise RuntimeError(f"{type(self).__name__} returned {len(outputs)} outputs for {len(requests)} requests")
        return outputs

    @abstractmethod
    def _generate(self, requests: list[GenerateRequest], progress: ProgressCallback | None) -> list[GeneratedAudio]:
        """Generate; requests are already checked."""

    @classmethod
    def kit_requests(cls, request: GenerateRequest) -> list[tuple[str, GenerateRequest]]:
        """Split a kit request into one one-shot request per part, named by part.

        Every part shares the request's seed and prompt words, so a kit has one character.
        Backends that know better (the default model) override this.
        """
        parts = []
        for part in KIT_PARTS:
            prompt = f"{part} {request.prompt}".strip()
            parts.append((part, request.replace(kind=Kind.ONE_SHOT, prompt=prompt, bars=None,
                                                duration_s=request.duration_s)))
        return parts

    def unload(self) -> None:
        """Free the weights (called by the weight cache on eviction)."""
        for module in self.modules():
            module.to("meta")


def check_request(caps: Capabilities, request: GenerateRequest) -> None:
    """Raise if a model with ``caps`` cannot serve ``request``; names the value and what is accepted.

    Used before queuing (from capabilities read off the config) and again before generating.
    """
    if request.kind not in caps.all_kinds:
        accepted = ", ".join(sorted(k.value for k in caps.all_kinds))
        raise UnsupportedError(
            f"kind={request.kind.value!r} is not supported by model {request.model!r}: expected {accepted}"
        )
    if request.kind is Kind.KIT:
        return  # checked part by part once the engine has split it
    duration = request.render_duration_s
    if not caps.min_duration_s <= duration <= caps.max_duration_s:
        raise RequestError(
            "duration_s",
            round(duration, 3),
            f"{caps.min_duration_s:g}–{caps.max_duration_s:g} s for model {request.model!r}",
        )
    if request.task not in caps.tasks:
        accepted = ", ".join(t.value for t in Task if t in caps.tasks)
        raise UnsupportedError(f"task={request.task.value!r} is not supported by model {request.model!r}: "
                               f"expected {accepted}")
    if request.task is Task.GENERATE and request.audio_prompt is not None and not caps.audio_prompt:
        raise UnsupportedError(f"model {request.model!r} does not take an audio prompt: expected no audio prompt")
    if request.morph_prompt is not None and not caps.morph:
        raise UnsupportedError(f"model {request.model!r} cannot morph between prompts: expected no morph prompt")
    if request.start_s and not caps.start_offset:
        raise UnsupportedError(f"model {request.model!r} cannot start at an offset: start_s must be 0")
    if request.motion_prompt is not None and not caps.motion_prompt:
        raise UnsupportedError(f"model {request.model!r} does not take a motion prompt: expected none "
                               "(only learned Dance2Music models are conditioned on motion)")
    if request.negative_prompt and not caps.negative_prompt:
        raise UnsupportedError(f"model {request.model!r} does not take a negative prompt: expected none")


def dtype_name(dtype: torch.dtype) -> str:
    """``"fp32"``, ``"fp16"``, ``"bf16"`` (the names the options take), else torch's own name."""
    names = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    return names.get(dtype, str(dtype).removeprefix("torch."))


def settings_digest(weights_digest: str, settings: Mapping[str, str]) -> str:
    """``weights_digest`` with the audio-changing load ``settings`` folded in (unchanged when there are none)."""
    if not settings:
        return weights_digest
    payload = json.dumps({"weights": weights_digest, **settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """A torch generator for ``seed`` on ``device`` (CPU generator for MPS, as diffusers does)."""
    gen_device = device if device.type == "cuda" else torch.device("cpu")
    generator = torch.Generator(device=gen_device)
    generator.manual_seed(seed)
    return generator


def batch_noise(
    requests: Sequence[GenerateRequest], shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Initial noise for a batch, each row drawn from its own request's seed.

    A variation therefore sounds the same whether it was rendered alone or in a batch.
    """
    rows = []
    for request in requests:
        generator = seeded_generator(request.effective_seed, device)
        rows.append(torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32))
    return torch.stack(rows).to(device=device, dtype=dtype)


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".onnx", ".gguf")
_FINGERPRINT_EDGE_BYTES = 1 << 20


def folder_fingerprint(path: Path) -> str:
    """A cheap, stable fingerprint of a model folder or file.

    Configs are hashed whole; weight files by size plus their first and last MiB (hashing several GB
    on every load would cost seconds; a changed checkpoint changes its header or its tail).
    """
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        rel = file.name if path.is_file() else file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        size = file.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        with open(file, "rb") as f:
            if file.suffix in _WEIGHT_SUFFIXES and size > 2 * _FINGERPRINT_EDGE_BYTES:
                h.update(f.read(_FINGERPRINT_EDGE_BYTES))
                f.seek(-_FINGERPRINT_EDGE_BYTES, 2)
                h.update(f.read(_FINGERPRINT_EDGE_BYTES))
            elif size <= 64 * _FINGERPRINT_EDGE_BYTES:
                h.update(f.read())
    return h.hexdigest()[:32]


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON config, raising ModelLoadError naming the file when it is missing or corrupt."""
    from ..errors import ModelLoadError

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{str(path)!r} is missing: the model folder is incomplete") from exc
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{str(path)!r} does not hold a JSON object")
    return data
