"""Shared loading and running code for backends built on diffusers.

Everything here works from a local folder only: diffusers and transformers are called with
``local_files_only=True`` on a path, never on a hub id, so nothing is ever downloaded. A folder is
checked before loading (every component's config parses, every weight file's header reads), so a
missing or corrupt file becomes a :class:`ModelLoadError` that names it.

:class:`LoadOptions` are applied here in one place for every family: dtype, attention
implementation, ``torch.compile`` of the denoiser, a scheduler swap by name, CPU offload. CUDA
running out of memory becomes :class:`OutOfMemoryError` (:func:`oom_guard`).

Works on whole pipelines (``model_index.json`` folders) and on single components (a ``UNet1DModel``
in ``unet/`` plus a scheduler in ``scheduler/``), so a backend that drives its own loop can use it too.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import torch

from ..errors import ModelLoadError, OutOfMemoryError, RequestError
from .base import Capabilities, LoadOptions, ModelBackend, ProgressCallback, read_json

# ---- names accepted in LoadOptions -------------------------------------------------------------

ATTENTION_CHOICES = ("sdpa", "eager")


@dataclass(frozen=True)
class SchedulerChoice:
    """A scheduler a backend may swap in: diffusers class name and config overrides."""

    class_name: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


#: schedulers for discrete-time (DDPM-trained) denoisers: Stable Diffusion, AudioLDM, AudioLDM 2
DISCRETE_SCHEDULERS: dict[str, SchedulerChoice] = {
    "dpm++": SchedulerChoice("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpm++-karras": SchedulerChoice(
        "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}
    ),
    "unipc": SchedulerChoice("UniPCMultistepScheduler"),
    "ddim": SchedulerChoice("DDIMScheduler"),
    "pndm": SchedulerChoice("PNDMScheduler", {"skip_prk_steps": True}),
    "euler": SchedulerChoice("EulerDiscreteScheduler"),
    "euler-a": SchedulerChoice("EulerAncestralDiscreteScheduler"),
    "lms": SchedulerChoice("LMSDiscreteScheduler"),
    "ddpm": SchedulerChoice("DDPMScheduler"),
}

_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}


def resolve_dtype(dtype: torch.dtype | str, device: torch.device | str) -> torch.dtype:
    """``dtype`` as a torch dtype, checked against ``device``.

    Accepts a torch dtype or ``"fp32"``, ``"fp16"``, ``"bf16"`` (and their long names). Half
    precision needs an accelerator: float16 on the CPU raises :class:`RequestError` (most CPU
    kernels lack it; bfloat16 is accepted there). Apple's MPS computes float32 and float16;
    bfloat16 only from macOS 14 on (:func:`mps_supports_bf16`), else :class:`RequestError`.
    """
    device = torch.device(device)
    if isinstance(dtype, str):
        resolved = _DTYPES.get(dtype.strip().lower())
        if resolved is None:
            raise RequestError("dtype", dtype, "one of: fp32, fp16, bf16")
        dtype = resolved
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise RequestError("dtype", str(dtype), "one of: fp32, fp16, bf16")
    if dtype == torch.float16 and device.type == "cpu":
        raise RequestError("dtype", "fp16", "fp32 or bf16 on the CPU (fp16 needs a GPU)")
    if dtype == torch.bfloat16 and device.type == "mps" and not mps_supports_bf16():
        raise RequestError("dtype", "bf16", "fp32 or fp16 on Apple's MPS before macOS 14")
    return dtype


def mps_supports_bf16() -> bool:
    """Whether Apple's MPS backend computes bfloat16 here (macOS 14 and later)."""
    import platform

    if platform.system() != "Darwin":
        return False
    is_macos_or_newer = getattr(torch.backends.mps, "is_macos_or_newer", None)
    return bool(is_macos_or_newer is not None and is_macos_or_newer(14, 0))


# ---- checking a folder before loading -----------------------------------------------------------

_DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
_TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_SHARD_INDEXES = (
    "diffusion_pytorch_model.safetensors.index.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


def _check_safetensors(file: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            handle.keys()
    except Exception as exc:  # safetensors raises its own error types for truncated or garbled files
        raise ModelLoadError(f"{str(file)!r} is corrupt (cannot read its safetensors header): {exc}") from exc


def _check_weights(folder: Path, names: tuple[str, ...]) -> None:
    """Raise ModelLoadError unless ``folder`` holds one readable weight file (or a shard index)."""
    for index_name in _SHARD_INDEXES:
        index = folder / index_name
        if index.is_file():
            weight_map = read_json(index).get("weight_map", {})
            for shard in sorted(set(weight_map.values())):
                shard_file = folder / shard
                if not shard_file.is_file():
                    raise ModelLoadError(f"{str(shard_file)!r} is missing (listed in {str(index)!r})")
                if shard_file.suffix == ".safetensors":
                    _check_safetensors(shard_file)
            return
    for name in names:
        file = folder / name
        if file.is_file():
            if file.suffix == ".safetensors":
                _check_safetensors(file)
            elif file.stat().st_size == 0:
                raise ModelLoadError(f"{str(file)!r} is empty")
            return
    raise ModelLoadError(f"{str(folder / names[0])!r} is missing: no weights for component {folder.name!r}")


def check_component_folder(folder: Path, library: str, class_name: str) -> None:
    """Check one component folder of a diffusers layout; raise ModelLoadError naming the bad file."""
    if not folder.is_dir():
        raise ModelLoadError(f"{str(folder)!r} is missing: the model folder has no {class_name} component")
    if class_name.endswith("Scheduler") or class_name.endswith("SchedulerMultistep"):
        read_json(folder / "scheduler_config.json")
    elif "Tokenizer" in class_name:
        if not any(folder.iterdir()):
            raise ModelLoadError(f"{str(folder)!r} is empty: the {class_name} has no vocabulary files")
        for name in ("tokenizer_config.json", "tokenizer.json", "vocab.json", "special_tokens_map.json"):
            if (folder / name).is_file():
                read_json(folder / name)
    elif "FeatureExtractor" in class_name or "ImageProcessor" in class_name or "Processor" in class_name:
        read_json(folder / "preprocessor_config.json")
    elif library == "diffusers":
        read_json(folder / "config.json")
        _check_weights(folder, _DIFFUSERS_WEIGHTS)
    elif library == "transformers":
        read_json(folder / "config.json")
        _check_weights(folder, _TRANSFORMERS_WEIGHTS)


def check_pipeline_folder(
    path: Path, expected_classes: tuple[str, ...] = (), skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Check a diffusers pipeline folder and return its ``model_index.json``.

    ``expected_classes``: pipeline class names this backend loads; another one raises ModelLoadError.
    ``skip``: components the backend does not load (they may be absent).
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"model folder {str(path)!r} does not exist")
    index = read_json(path / "model_index.json")
    class_name = index.get("_class_name", "")
    if expected_classes and class_name not in expected_classes:
        raise ModelLoadError(
            f"{str(path / 'model_index.json')!r} names pipeline {class_name!r}: expected {', '.join(expected_classes)}"
        )
    for name, entry in index.items():
        if name.startswith("_") or name in skip or not isinstance(entry, list) or len(entry) != 2 or entry[0] is None:
            continue
        library, component_class = entry
        check_component_folder(path / name, str(library), str(component_class))
    return index


def _dtype_kwarg(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """``from_pretrained``'s dtype argument: ``dtype`` in newer diffusers, ``torch_dtype`` before."""
    from diffusers.utils import deprecation_utils

    newer = hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE")
    return {"dtype": dtype} if newer else {"torch_dtype": dtype}


def _wrap_load_error(path: Path, exc: Exception) -> ModelLoadError:
    return ModelLoadError(f"cannot load the model in {str(path)!r}: {type(exc).__name__}: {exc}")


def load_pipeline(pipeline_cls: Any, path: Path, dtype: torch.dtype, **kwargs: Any) -> Any:
    """Load a diffusers pipeline of ``pipeline_cls`` from a local folder (checked first), offline.

    Extra ``kwargs`` go to ``from_pretrained`` (component overrides; a component passed as ``None``
    is neither checked nor loaded). Raises ModelLoadError.
    """
    check_pipeline_folder(path, skip=tuple(name for name, value in kwargs.items() if value is None))
    try:
        pipeline = pipeline_cls.from_pretrained(str(path), local_files_only=True, **_dtype_kwarg(dtype), **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError, ImportError) as exc:
        raise _wrap_load_error(path, exc) from exc
    if hasattr(pipeline, "set_progress_bar_config"):
        pipeline.set_progress_bar_config(disable=True)
    return pipeline


def load_component(
    component_cls: Any, path: Path, subfolder: str | None, dtype: torch.dtype | None = None, **overrides: Any
) -> Any:
    """Load one diffusers model or scheduler from ``path/subfolder`` offline; raises ModelLoadError.

    ``overrides`` replace config values the saved config lacks or gets wrong.
    """
    folder = Path(path) / subfolder if subfolder else Path(path)
    library = "diffusers"
    check_component_folder(folder, library, component_cls.__name__)
    kwargs: dict[str, Any] = {"local_files_only": True, **overrides}
    if subfolder:
        kwargs["subfolder"] = subfolder
    if dtype is not None and not component_cls.__name__.endswith("Scheduler"):
        kwargs.update(_dtype_kwarg(dtype))
    try:
        return component_cls.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise _wrap_load_error(folder, exc) from exc


# ---- LoadOptions ------------------------------------------------------------------------------


def make_scheduler(current: Any, name: str, choices: Mapping[str, SchedulerChoice]) -> Any:
    """A new scheduler of the kind named ``name`` (a key of ``choices``), configured from ``current``.

    Raises RequestError naming the accepted names.
    """
    choice = choices.get(name.strip().lower())
    if choice is None:
        raise RequestError("scheduler", name, "one of: " + ", ".join(choices))
    module = importlib.import_module("diffusers")
    cls = getattr(module, choice.class_name)
    return cls.from_config(current.config, **dict(choice.overrides))


def _attention_processors() -> tuple[type, type]:
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    return AttnProcessor, AttnProcessor2_0


def set_attention(module: torch.nn.Module, name: str) -> None:
    """Switch a diffusers model's attention to ``"sdpa"`` (fused kernels) or ``"eager"`` (plain math).

    Models with their own processors (rotary embeddings, as in Stable Audio's transformer) only have
    the fused form; asking them for ``"eager"`` raises RequestError.
    """
    if name not in ATTENTION_CHOICES:
        raise RequestError("attention", name, "one of: " + ", ".join(ATTENTION_CHOICES))
    processors = getattr(module, "attn_processors", None)
    if not processors:
        return
    eager_cls, sdpa_cls = _attention_processors()
    standard = all(type(p) in (eager_cls, sdpa_cls) for p in processors.values())
    if standard:
        module.set_attn_processor(sdpa_cls() if name == "sdpa" else eager_cls())  # type: ignore[operator]
        return
    kinds = sorted({type(p).__name__ for p in processors.values()})
    if name == "sdpa" and all(kind.endswith("2_0") for kind in kinds):
        return  # its own processors already use scaled_dot_product_attention
    raise RequestError(
        "attention", name, f"sdpa or the default for {type(module).__name__} (its attention is {', '.join(kinds)})"
    )


def apply_load_options(
    pipeline: Any,
    device: torch.device,
    options: LoadOptions,
    *,
    denoiser: str,
    schedulers: Mapping[str, SchedulerChoice],
) -> None:
    """Apply ``options`` to a loaded pipeline (or any object with the named module attributes).

    ``denoiser`` is the attribute holding the network run at every step (``unet``, ``transformer``):
    it is the one compiled. The pipeline ends on ``device``, or with model CPU offload when asked on
    an accelerator (on the CPU, offload has nothing to do: the weights already live in RAM).
    """
    if options.scheduler is not None:
        pipeline.scheduler = make_scheduler(pipeline.scheduler, options.scheduler, schedulers)
    if options.attention is not None:
        set_attention(getattr(pipeline, denoiser), options.attention)
        vae = getattr(pipeline, "vae", None)
        if vae is not None:
            with contextlib.suppress(RequestError):
                set_attention(vae, options.attention)
    if options.cpu_offload and device.type != "cpu":
        try:
            pipeline.enable_model_cpu_offload(device=device)
        except (ImportError, RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"CPU offload is not available here: {exc}") from exc
    else:
        pipeline.to(device)
    if options.compile:
        # compiles in place on first call; the module keeps its class, so diffusers still sees a UNet
        getattr(pipeline, denoiser).compile()


def pipeline_modules(pipeline: Any) -> list[torch.nn.Module]:
    """The torch modules of a pipeline's components, in component order."""
    components = getattr(pipeline, "components", {})
    return [module for module in components.values() if isinstance(module, torch.nn.Module)]


def execution_device(pipeline: Any, fallback: torch.device) -> torch.device:
    """Where a pipeline's tensors must go (the accelerator even when offload keeps weights in RAM)."""
    device = getattr(pipeline, "_execution_device", None)
    return torch.device(device) if device is not None else fallback


# ---- running ----------------------------------------------------------------------------------


@contextlib.contextmanager
def oom_guard(what: str) -> Iterator[None]:
    """Turn the accelerator running out of memory into :class:`OutOfMemoryError` (the engine stays up)."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise OutOfMemoryError(
            f"out of accelerator memory while {what}: use fewer variations, a shorter duration, fp16/bf16 "
            f"or CPU offload ({exc})"
        ) from exc


class StepProgress:
    """Turns per-step callbacks of several denoising runs into one ``progress(fraction)`` stream.

    ``total_steps`` is the number of steps of every run together; each :meth:`step` call reports
    one more. ``progress`` may raise CancelledError, which propagates out of the pipeline.
    """

    def __init__(self, progress: ProgressCallback | None, total_steps: int) -> None:
        self.progress = progress
        self.total_steps = max(1, total_steps)
        self.done = 0

    def step(self, *_: Any) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(min(1.0, self.done / self.total_steps))

    def on_step_end(self, _pipeline: Any, _step: int, _timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The ``callback_on_step_end`` form of :meth:`step`."""
        self.step()
        return kwargs

    def finish(self) -> None:
        if self.progress is not None and self.done < self.total_steps:
            self.progress(1.0)


def seeded_generators(seeds: list[int], device: torch.device) -> list[torch.Generator]:
    """One generator per row, for schedulers that draw noise during steps."""
    from .base import seeded_generator

    return [seeded_generator(seed, device) for seed in seeds]


def group_requests(requests: list[Any], key: Callable[[Any], Any]) -> list[tuple[Any, list[int]]]:
    """Indices of ``requests`` grouped by ``key`` (first-seen order): rows one pipeline call can share."""
    groups: dict[Any, list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault(key(request), []).append(index)
    return list(groups.items())


class DiffusersPipelineBackend(ModelBackend):
    """Common parts of backends that hold one diffusers pipeline: how they load, what they hold.

    :meth:`load` is the same for every such family: the folder is inspected (capabilities, no
    weights), the family's pipeline is read (:meth:`_load_pipeline`), the speed options are applied
    to its :attr:`denoiser`, and the backend is made (:meth:`_create`). Generation is serialised by a
    lock: a diffusers scheduler keeps its timesteps on itself, so two calls at once on one pipeline
    would interfere. Per-request settings still travel as arguments.
    """

    #: the pipeline's denoiser attribute, which attention and compile options apply to
    denoiser: ClassVar[str] = "unet"
    #: the samplers ``LoadOptions.scheduler`` may name for this family
    schedulers: ClassVar[Mapping[str, SchedulerChoice]] = DISCRETE_SCHEDULERS
    #: components of the published pipeline this family never loads (``models pull`` leaves them out)
    skipped_components: ClassVar[tuple[str, ...]] = ()
    pipeline: Any
    _lock: threading.Lock

    def __init__(self, path: Path | None, device: torch.device, dtype: torch.dtype, capabilities: Capabilities) -> None:
        super().__init__(path, device, dtype)
        self._capabilities = capabilities

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
             options: LoadOptions | None = None) -> Self:
        device = torch.device(device)
        dtype = resolve_dtype(dtype, device)
        capabilities = cls.inspect(path)
        pipeline = cls._load_pipeline(Path(path), dtype)
        with oom_guard(f"loading {cls.family} from {path}"):
            apply_load_options(pipeline, device, options or LoadOptions(), denoiser=cls.denoiser,
                               schedulers=cls.schedulers)
        backend = cls._create(Path(path), device, dtype, capabilities)
        backend.pipeline = pipeline
        backend._lock = threading.Lock()
        return backend

    @classmethod
    @abstractmethod
    def _load_pipeline(cls, path: Path, dtype: torch.dtype) -> Any:
        """The family's pipeline, read from ``path`` in ``dtype`` (:func:`load_pipeline` with its class)."""

    @classmethod
    def _create(cls, path: Path, device: torch.device, dtype: torch.dtype, capabilities: Capabilities) -> Self:
        """The backend around a loaded pipeline (a family with settings of its own reads them here)."""
        return cls(path, device, dtype, capabilities)

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def modules(self) -> list[torch.nn.Module]:
        return pipeline_modules(self.pipeline)

    @property
    def execution_device(self) -> torch.device:
        return execution_device(self.pipeline, self.device)
