"""``DefaultModel``: the embedded default model behind the engine's backend interface.

1. Each request becomes one or more voices: a one-shot or texture is one voice, a loop is one voice
   per part of its pattern. A voice has a class (from the prompt words; else the texture class for
   textures, "no class" for audio-prompt variations, else a class chosen by the seed) and the
   initial noise of its request's seed, so a variation sounds the same alone or in a batch, and a
   loop's kick is the kit's kick for the same seed.
2. All voices are denoised as one batch (one batch per distinct step count / audio-prompt
   strength) with classifier-free guidance.
3. Log-mels become audio (:func:`.spectral.invert`: sharpened band magnitudes, a phase from Phase
   Gradient Heap Integration, a few fast Griffin-Lim iterations), are fitted to the requested
   length (textures are stretched in time, one-shots cut or padded), coloured by style words, and
   loops are arranged on their pattern by :func:`loopbridge.engine.patterns.arrange`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ...audio import match_channels, resample
from ...errors import ModelLoadError, RequestError
from ...patterns import MELODIC_PATTERNS, Pattern, arrange, pattern_for_prompt
from ...request import GenerateRequest, Kind
from ..base import (
    Capabilities,
    GeneratedAudio,
    LoadOptions,
    ModelBackend,
    ProgressCallback,
    batch_noise,
    read_json,
    seeded_generator,
)
from . import spectral
from .character import KIT_STYLES, apply_styles, styles_in
from .classes import CLASSES, DRUM_CLASSES, PITCHED_CLASSES, class_for_prompt
from .model import MelUNet, ModelConfig, sample

#: the longest render: textures are stretched up to this, one-shots padded with silence
MAX_DURATION_S = 30.0
SCHEDULERS: tuple[str, ...] = ("dpm++",)
ONE_SHOT_PEAK = 0.9
#: MIDI notes the corpus gives each pitched class (with a few semitones' margin)
ROOT_NOTE_RANGES: dict[str, tuple[int, int]] = {"bass": (24, 52), "pluck": (46, 90)}
LOOP_PEAK = 0.95


@dataclass(frozen=True)
class _Voice:
    """One row of the batch: which request it serves, its class label and (for loops) its part."""

    request_index: int
    label: int
    part: str | None = None


def _read_config(path: Path) -> ModelConfig:
    data = read_json(Path(path) / "config.json")
    try:
        return ModelConfig.from_json(data)
    except ValueError as exc:
        raise ModelLoadError(f"{str(Path(path) / 'config.json')!r}: {exc}") from exc


def _capabilities(config: ModelConfig) -> Capabilities:
    return Capabilities(
        family="default",
        sample_rate=config.sample_rate,
        channels=1,
        max_duration_s=MAX_DURATION_S,
        min_duration_s=0.05,
        text_prompt=True,
        audio_prompt=True,
        negative_prompt=False,
        morph=False,
        kinds=frozenset({Kind.ONE_SHOT, Kind.LOOP, Kind.TEXTURE}),
        default_steps=config.default_steps,
        default_guidance=config.default_guidance,
        classes=config.classes,
        max_batch=16,
    )


def seed_class(seed: int, classes: Sequence[str] = CLASSES) -> str:
    """The class a prompt without a class word gets for ``seed`` (spread evenly over the classes)."""
    rng = np.random.default_rng((seed, 0x5EED))
    return classes[int(rng.integers(0, len(classes)))]


def estimate_root_note(audio: np.ndarray, sample_rate: int) -> int | None:
    """MIDI note of a pitched one-shot ``[samples]``, or None when no clear pitch is found.

    Autocorrelation over 20–300 ms after the onset; lags for 27.5–2000 Hz; the peak must hold at
    least half of the signal's energy at lag 0 to count as a pitch.
    """
    x = np.asarray(audio, dtype=np.float64)
    start = int(0.02 * sample_rate)
    window = x[start : start + int(0.28 * sample_rate)]
    if window.size < 2048 or not np.any(window):
        return None
    window = (window - window.mean()) * np.hanning(window.size)
    spectrum = np.fft.rfft(window, 2 * window.size)
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[: window.size]
    if ac[0] <= 0:
        return None
    ac /= ac[0] * (1 - np.arange(window.size) / window.size).clip(0.25)  # undo the taper's fall-off
    low, high = int(sample_rate / 2000), int(sample_rate / 27.5)
    if high >= window.size:
        high = window.size - 1
    # the search starts where the fall from lag 0 ends: a low sound's autocorrelation is still
    # falling at the shortest lag searched, and that slope is no period
    rising = np.flatnonzero(np.diff(ac[low:high]) > 0)
    if rising.size == 0:
        return None
    start = low + int(rising[0])
    strongest = float(ac[start:high].max())
    if strongest < 0.5:
        return None
    # the period is the shortest lag whose peak is nearly as strong as the strongest: the taper's
    # correction lifts the peaks at its multiples too (an octave or more low otherwise)
    segment = ac[start:high]
    peaks = np.flatnonzero((segment[1:-1] >= segment[:-2]) & (segment[1:-1] >= segment[2:])) + 1
    strong = peaks[segment[peaks] >= 0.9 * strongest]
    lag = start + int(strong[0] if strong.size else np.argmax(segment))
    freq = sample_rate / lag
    note = int(round(69 + 12 * math.log2(freq / 440.0)))
    return note if 0 <= note <= 127 else None


def strongest_note(audio: np.ndarray, sample_rate: int, low: int, high: int) -> int | None:
    """The MIDI note from ``low`` to ``high`` whose first five harmonics hold the most of the spectrum
    of ``audio`` ``[samples]`` over 20–300 ms after its start; None for silence.

    The fallback when :func:`estimate_root_note` finds no clear period: a sound of a pitched class
    still has a strongest note, and every variation of a melodic request then carries a root.
    """
    x = np.asarray(audio, dtype=np.float64)
    start = int(0.02 * sample_rate)
    window = x[start : start + int(0.28 * sample_rate)]
    if window.size < 2048 or not np.any(window):
        return None
    window = (window - window.mean()) * np.hanning(window.size)
    size = 1 << int(math.ceil(math.log2(4 * window.size)))  # bins of a few Hz: a semitone apart at 27.5 Hz
    magnitude = np.abs(np.fft.rfft(window, size))
    notes = np.arange(low, high + 1)
    f0 = 440.0 * 2.0 ** ((notes - 69) / 12.0)
    score = np.zeros(len(notes))
    for k in range(1, 6):
        bins = np.round(k * f0 * size / sample_rate).astype(int)
        score += np.where(bins < len(magnitude), magnitude[np.minimum(bins, len(magnitude) - 1)], 0.0)
    return int(notes[int(np.argmax(score))]) if score.max() > 0 else None


def root_note_for(audio: np.ndarray, sample_rate: int, class_name: str) -> int | None:
    """The root of a sound of a pitched class: its period's note (:func:`estimate_root_note`) when it
    lies in the class's range or an octave from it (an octave error), else its strongest note in that
    range (:func:`strongest_note`: a period found further off is a partial or noise); None only for
    silence."""
    low, high = ROOT_NOTE_RANGES.get(class_name, (0, 127))
    root = estimate_root_note(audio, sample_rate)
    if root is not None:
        for note in (root, root - 12, root + 12):
            if low <= note <= high:
                return note
    return strongest_note(audio, sample_rate, low, high)


def _loop_pattern(request: GenerateRequest) -> Pattern:
    """A loop's pattern: a bass line or a pluck arpeggio when the prompt names that class ("bass
    loop", "pluck arp"), else the drum pattern its words (or its seed) pick."""
    named = class_for_prompt(request.prompt)
    if named in MELODIC_PATTERNS:
        return MELODIC_PATTERNS[named]
    return pattern_for_prompt(request.prompt, request.effective_seed)


class DefaultModel(ModelBackend):
    """The embedded class-conditional log-mel diffusion model (see MODEL.md beside this file)."""

    family: ClassVar[str] = "default"

    def __init__(
        self, path: Path | None, device: torch.device, dtype: torch.dtype, config: ModelConfig, network: MelUNet
    ) -> None:
        super().__init__(path, device, dtype)
        self.config = config
        self.network = network

    # ---- loading --------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: Path,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        options: LoadOptions | None = None,
    ) -> DefaultModel:
        """Load ``config.json`` + ``model.safetensors`` from ``path``.

        Raises :class:`ModelLoadError` naming the file for a missing, corrupt or mismatched folder,
        and :class:`RequestError` for a scheduler other than those in :data:`SCHEDULERS`.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        options = options or LoadOptions()
        if options.scheduler is not None and options.scheduler.strip().lower() not in SCHEDULERS:
            raise RequestError("scheduler", options.scheduler, f"{', '.join(SCHEDULERS)} for the default model")
        if not path.is_dir():
            raise ModelLoadError(f"model folder {str(path)!r} does not exist")
        config = _read_config(path)
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise ModelLoadError(f"{str(weights)!r} is missing: the model folder is incomplete")
        try:
            state = load_file(str(weights), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{str(weights)!r} cannot be read as safetensors: {exc}") from exc
        device = torch.device(device)
        # float16 is only a storage format here; the CPU computes in float32
        run_dtype = dtype if device.type == "cuda" else torch.float32
        network = MelUNet(config)
        try:
            network.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        except RuntimeError as exc:
            raise ModelLoadError(f"{str(weights)!r} does not fit the network in config.json: {exc}") from exc
        network.eval().requires_grad_(False)
        network.to(device=device, dtype=run_dtype)
        if options.compile:
            network = torch.compile(network)  # type: ignore[assignment]
        return cls(path, device, run_dtype, config, network)

    @classmethod
    def inspect(cls, path: Path) -> Capabilities:
        return _capabilities(_read_config(Path(path)))

    @classmethod
    def render_settings(cls, device: torch.device, dtype: torch.dtype, options: LoadOptions) -> dict[str, str]:
        settings = super().render_settings(device, dtype, options)
        if settings.get("scheduler") == SCHEDULERS[0]:
            del settings["scheduler"]  # its own sampler: naming it changes nothing
        if torch.device(device).type != "cuda":
            settings.pop("dtype", None)  # off a GPU it computes in float32 whatever the option says
        return settings

    @property
    def capabilities(self) -> Capabilities:
        return _capabilities(self.config)

    def modules(self) -> list[torch.nn.Module]:
        return [self.network]

    # ---- kits -----------------------------------------------------------------------------

    @classmethod
    def kit_requests(cls, request: GenerateRequest) -> list[tuple[str, GenerateRequest]]:
        """One one-shot per drum class, all from the same seed and the same style words.

        Shared seed means shared initial noise; when the prompt names no style, the seed picks one
        for the whole kit (and names it in every part's prompt, so the parts say what they are).
        """
        words = request.prompt
        if not styles_in(words):
            style = KIT_STYLES[request.effective_seed % len(KIT_STYLES)]
            words = f"{words} {style}".strip() if style != "clean" else words
        # class words in the kit prompt would fight each part's own class: keep only the other words
        rest = " ".join(w for w in words.split() if class_for_prompt(w) is None)
        return [
            (part, request.replace(kind=Kind.ONE_SHOT, prompt=f"{part} {rest}".strip(), bars=None,
                                   duration_s=request.duration_s))
            for part in DRUM_CLASSES
        ]

    # ---- generation -----------------------------------------------------------------------

    def _label_for(self, request: GenerateRequest) -> int:
        named = class_for_prompt(request.prompt)
        if named is not None and named in self.config.classes:
            return self.config.classes.index(named)
        if request.kind is Kind.TEXTURE and "texture" in self.config.classes:
            return self.config.classes.index("texture")
        if request.audio_prompt is not None:
            return self.config.null_class
        return self.config.classes.index(seed_class(request.effective_seed, self.config.classes))

    def _class_name(self, label: int) -> str | None:
        return self.config.classes[label] if label < len(self.config.classes) else None

    def _voices(self, requests: list[GenerateRequest]) -> tuple[list[_Voice], dict[int, Pattern]]:
        voices: list[_Voice] = []
        patterns: dict[int, Pattern] = {}
        for i, request in enumerate(requests):
            if request.kind is Kind.LOOP:
                pattern = _loop_pattern(request)
                patterns[i] = pattern
                for part in pattern.parts:
                    voices.append(_Voice(i, self.config.classes.index(part), part))
            else:
                voices.append(_Voice(i, self._label_for(request)))
        return voices, patterns

    def _init_mel(self, request: GenerateRequest) -> torch.Tensor:
        """Scaled log-mel ``[N_MELS, FRAMES]`` of the request's audio prompt (mono, resampled)."""
        prompt = request.audio_prompt
        if prompt is None:
            raise ValueError("_init_mel needs a request with an audio prompt")
        mono = resample(match_channels(prompt.audio, 1), prompt.sample_rate, self.config.sample_rate)[0]
        peak = float(np.max(np.abs(mono))) or 1.0
        mono = (mono / peak * ONE_SHOT_PEAK).astype(np.float32)
        return spectral.log_mel(mono[: spectral.NATIVE_SAMPLES])[0]

    def _generate(self, requests: list[GenerateRequest], progress: ProgressCallback | None) -> list[GeneratedAudio]:
        config = self.config
        voices, patterns = self._voices(requests)
        shape = (config.n_mels, config.frames)
        noise = batch_noise([requests[v.request_index] for v in voices], shape, self.device, self.dtype)
        # voices that share step count and audio-prompt strength run as one batch
        groups: dict[tuple[int, float | None], list[int]] = {}
        for row, voice in enumerate(voices):
            request = requests[voice.request_index]
            steps = request.steps if request.steps is not None else config.default_steps
            strength = request.audio_prompt_strength if request.audio_prompt is not None else None
            groups.setdefault((steps, strength), []).append(row)
        mels = torch.empty((len(voices), *shape), dtype=torch.float32)
        done = 0
        for (steps, strength), rows in groups.items():
            group_requests = [requests[voices[r].request_index] for r in rows]
            # a request's own scale, else its voice's class's (ModelConfig.class_guidance), else the default
            guidance = [r.guidance if r.guidance is not None
                        else config.guidance_for(self._class_name(voices[row].label))
                        for r, row in zip(group_requests, rows, strict=True)]
            init = None
            if strength is not None:
                init = torch.stack([self._init_mel(r) for r in group_requests]).to(self.device, self.dtype)

            def group_progress(fraction: float, offset: int = done, size: int = len(rows)) -> None:
                if progress is not None:
                    progress(0.9 * (offset + fraction * size) / len(voices))

            out = sample(
                self.network, config, [voices[r].label for r in rows], noise[rows], steps, guidance,
                progress=group_progress, init=init, strength=1.0 if strength is None else strength,
            )
            mels[rows] = out.float().cpu()
            done += len(rows)

        outputs = []
        for i, request in enumerate(requests):
            rows = [r for r, v in enumerate(voices) if v.request_index == i]
            if request.kind is Kind.LOOP:
                outputs.append(self._loop(request, patterns[i], [voices[r].part or "" for r in rows], mels[rows]))
            else:
                outputs.append(self._single(request, voices[rows[0]].label, mels[rows[0]]))
            if progress is not None:
                progress(0.9 + 0.1 * (i + 1) / len(requests))
        return outputs

    def _decode(self, mel: torch.Tensor, seed: int, samples: int, stretch: bool, class_name: str | None) -> np.ndarray:
        """Audio ``[samples]`` from one scaled log-mel ``[N_MELS, frames]``.

        With ``stretch`` the spectrogram is resampled in time to cover ``samples`` (textures); else the
        audio is cut (with a short fade) or padded with silence.
        """
        mel = spectral.steady_loudness(mel[None], self.config.most_db(class_name),
                                       self.config.onset_rise_db(class_name), self.config.half_frames(class_name))[0]
        frames = mel.shape[-1]
        if stretch and samples > frames * spectral.HOP:
            target = math.ceil(samples / spectral.HOP)
            mel = torch.nn.functional.interpolate(mel[None], size=target, mode="linear", align_corners=True)[0]
        # the decoder's phase comes from the spectrogram alone (no random start), so a seed's render
        # is the same every time; the generator only serves a random-start decoder
        generator = seeded_generator(seed, torch.device("cpu"))
        audio = spectral.invert(mel[None], generator=generator,
                                sharpen_below_hz=self.config.sharpen_below_hz(class_name),
                                loudness_rounds=self.config.loudness_rounds(class_name))
        # the decoder's own frame-to-frame wobble, taken out around the decoded course (the spectrogram's
        # stage cannot: Griffin-Lim adds it after)
        audio = spectral.steady_decoded(audio, self.config.steady_rounds(class_name), self.config.most_db(class_name),
                                        self.config.onset_rise_db(class_name),
                                        self.config.decoded_half_frames(class_name),
                                        self.config.decoded_trend(class_name))[0]
        audio_np = audio.numpy().astype(np.float32)
        if audio_np.shape[0] >= samples:
            audio_np = audio_np[:samples].copy()
            fade = min(256, max(1, samples // 8))
            audio_np[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        else:
            audio_np = np.pad(audio_np, (0, samples - audio_np.shape[0]))
        return audio_np

    def _single(self, request: GenerateRequest, label: int, mel: torch.Tensor) -> GeneratedAudio:
        config = self.config
        samples = max(1, int(round(request.render_duration_s * config.sample_rate)))
        class_name = self._class_name(label)
        audio = self._decode(mel, request.effective_seed, samples, stretch=request.kind is Kind.TEXTURE,
                             class_name=class_name)
        styles = styles_in(request.prompt)
        audio = apply_styles(audio[None], config.sample_rate, styles)[0]
        peak = float(np.max(np.abs(audio)))
        if peak > 0:
            audio = audio * np.float32(ONE_SHOT_PEAK / peak)
        info: dict[str, Any] = {"class": class_name, "styles": styles}
        if class_name in PITCHED_CLASSES:
            root = root_note_for(audio, config.sample_rate, class_name)
            if root is not None:
                info["root_note"] = root
        return GeneratedAudio(audio=audio[None].astype(np.float32), sample_rate=config.sample_rate, info=info)

    def _loop(self, request: GenerateRequest, pattern: Pattern, parts: list[str], mels: torch.Tensor) -> GeneratedAudio:
        config = self.config
        styles = styles_in(request.prompt)
        shots = {}
        for part, mel in zip(parts, mels, strict=True):
            audio = self._decode(mel, request.effective_seed, spectral.NATIVE_SAMPLES, stretch=False, class_name=part)
            audio = apply_styles(audio[None], config.sample_rate, styles)
            peak = float(np.max(np.abs(audio)))
            shots[part] = audio * np.float32(ONE_SHOT_PEAK / peak) if peak > 0 else audio
        bars = request.render_duration_s * request.tempo_bpm / 60.0 / request.beats_per_bar
        loop = arrange(shots, pattern, request.tempo_bpm, bars, config.sample_rate, request.beats_per_bar)
        peak = float(np.max(np.abs(loop)))
        if peak > LOOP_PEAK:
            loop *= np.float32(LOOP_PEAK / peak)
        melodic = [part for part in parts if part in PITCHED_CLASSES]
        info: dict[str, Any] = {
            "tempo_bpm": float(request.tempo_bpm),
            "beats": bars * request.beats_per_bar,
            "pattern": pattern.name,
            "class": f"{melodic[0]} loop" if melodic else "drum loop",
            "parts": list(parts),
            "styles": styles,
        }
        if melodic:
            # the loop's key is its note's: the pattern moves around the one-shot's own pitch
            root = root_note_for(shots[melodic[0]][0], config.sample_rate, melodic[0])
            if root is not None:
                info["root_note"] = root
        return GeneratedAudio(audio=loop.astype(np.float32), sample_rate=config.sample_rate, info=info)
