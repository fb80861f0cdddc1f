"""The engine's typed, immutable requests and results.

A :class:`GenerateRequest` says what audio to make; a :class:`ConformSpec` says how to fit it to a
song (tempo, bars, pitch, sample rate). They are separate on purpose: a render is keyed by what
determines its audio, a conformed file by (render, tempo, bars, pitch, rate), so a tempo change
never runs the model again.

Every field is checked at construction; a bad value raises :class:`RequestError` naming the field,
the value and the accepted range. Audio is always ``float32`` shaped ``[channels, samples]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from .audio import as_audio_array, read_audio_bytes, read_audio_file
from .errors import RequestError, TooLargeError

# Accepted ranges, in one place: the CLI, the protocol and the docs quote these.
TEMPO_MIN_BPM = 20.0
TEMPO_MAX_BPM = 999.0
PROMPT_MAX_CHARS = 500
SEED_MAX = 2**32 - 1
VARIATION_MAX = 9999
DURATION_MIN_S = 0.05
DURATION_MAX_S = 600.0
BARS_MIN = 0.25
BARS_MAX = 64.0
BEATS_PER_BAR_RANGE = (1, 16)
STEPS_RANGE = (1, 1000)
GUIDANCE_RANGE = (0.0, 30.0)
PITCH_RANGE_SEMITONES = (-24.0, 24.0)
SAMPLE_RATE_RANGE = (8000, 192000)
#: the rate of conformed files when the host names none (the protocol, the CLI and the front ends quote it)
DEFAULT_SAMPLE_RATE = 48000
#: integrated loudness (LUFS, ITU-R BS.1770) loops and textures are brought to when the request names
#: none: a finished track's level (streaming masters sit near -14), so a loop dropped into a session
#: sits with the music around it and layers without clipping under a -1 dBTP ceiling
DEFAULT_LOUDNESS_LUFS = -14.0
#: loudness targets accepted: quieter than -40 is near the noise of a 24-bit file's gain staging, and
#: louder than -6 LUFS cannot be reached under a -1 dBTP ceiling without crushing the sound
LOUDNESS_RANGE_LUFS = (-40.0, -6.0)
#: the true peak above loudness (dB) a request's shared level may be set from (a steady sine has 3)
LEVEL_CREST_RANGE_DB = (0.0, 60.0)
#: seeds drawn for a request without one stay at or below this (OSC ints and the front ends' are 32-bit signed)
RANDOM_SEED_MAX = 2**31 - 1
AUDIO_PROMPT_MAX_S = 600.0
#: the most samples (frames × channels) an audio prompt may hold: ten minutes of stereo at 48 kHz (230 MB
#: as float32). Every model takes at most two channels at 48 kHz, and less than a minute of them; a
#: prompt is held whole while its job waits, and this bounds it (and the binary frame that carries it)
AUDIO_PROMPT_MAX_SAMPLES = int(AUDIO_PROMPT_MAX_S) * 48000 * 2
#: the most samples (frames × channels) one conformed file may hold: the longest loop
#: (DURATION_MAX_S) in stereo at the highest rate; its 24-bit WAV (691 MB) is the largest binary
#: frame of a reply
CONFORMED_MAX_SAMPLES = int(DURATION_MAX_S) * SAMPLE_RATE_RANGE[1] * 2
MAX_VARIATIONS = 64
#: audio prompt files read as spectrogram images (Riffusion seed images), by suffix
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
#: the first bytes of those image formats: audio prompt bytes that start so are read as a spectrogram image
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM")
#: a texture is rendered this much longer than asked: the extra leads into its loop's seam, so the
#: conformed texture is exactly as long as asked and still loops without a click
TEXTURE_PREROLL_S = 0.25


class Kind(StrEnum):
    """What sort of sample is asked for; decides how it is conformed."""

    ONE_SHOT = "one-shot"
    LOOP = "loop"
    TEXTURE = "texture"
    KIT = "kit"

    @classmethod
    def parse(cls, value: Kind | str) -> Kind:
        if isinstance(value, Kind):
            return value
        text = str(value).strip().lower().replace("_", "-")
        aliases = {"oneshot": "one-shot", "shot": "one-shot", "one": "one-shot"}
        text = aliases.get(text, text)
        for kind in cls:
            if kind.value == text:
                return kind
        raise RequestError("kind", value, "one of: " + ", ".join(k.value for k in cls))


def check_loudness(value: object, name: str = "loudness_lufs") -> None:
    """Raise :class:`RequestError` unless ``value`` is an integrated loudness in :data:`LOUDNESS_RANGE_LUFS`."""
    low, high = LOUDNESS_RANGE_LUFS
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or not low <= value <= high):
        raise RequestError(name, value, f"an integrated loudness from {low:g} to {high:g} LUFS")


def check_range(name: str, value: float, low: float, high: float, unit: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(name, value, f"a number from {_fmt(low)} to {_fmt(high)}{unit}")
    if not low <= value <= high:
        raise RequestError(name, value, f"{_fmt(low)}–{_fmt(high)}{unit}")


def check_int(name: str, value: int, low: int, high: int, unit: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise RequestError(name, value, f"a whole number from {low} to {high}{unit}")
    if not low <= value <= high:
        raise RequestError(name, value, f"{low}–{high}{unit}")


def random_seed() -> int:
    """A fresh seed for a request that names none (0–:data:`RANDOM_SEED_MAX`)."""
    return secrets.randbelow(RANDOM_SEED_MAX + 1)


def _fmt(x: float) -> str:
    return f"{x:g}"


def audio_digest(audio: np.ndarray, sample_rate: int) -> str:
    """A content hash of audio samples and their rate (hex sha256)."""
    h = hashlib.sha256()
    h.update(f"{sample_rate}:{audio.shape}:".encode())
    h.update(np.ascontiguousarray(audio, dtype=np.float32).data.cast("B"))  # hashed in place, not copied
    return h.hexdigest()


def check_audio_prompt_size(frames: int, channels: int, sample_rate: int) -> None:
    """Refuse an audio prompt longer than :data:`AUDIO_PROMPT_MAX_S` (RequestError) or of more than
    :data:`AUDIO_PROMPT_MAX_SAMPLES` samples (TooLargeError); called with a file's header, before
    it is decoded, and again on the decoded audio."""
    duration_s = frames / sample_rate
    if duration_s > AUDIO_PROMPT_MAX_S:
        raise RequestError("audio_prompt", f"{duration_s:.1f} s of audio", f"at most {AUDIO_PROMPT_MAX_S:g} s")
    if frames * channels > AUDIO_PROMPT_MAX_SAMPLES:
        raise TooLargeError(
            "audio_prompt",
            f"{duration_s:.1f} s of {channels} channels at {sample_rate} Hz ({frames * channels} samples)",
            f"at most {AUDIO_PROMPT_MAX_SAMPLES} samples (frames × channels: ten minutes of stereo at 48 kHz)",
        )


@dataclass(frozen=True, eq=False)
class AudioPrompt:
    """Audio to make variations of (partial noising), with its sample rate.

    Equality and hashing go by content digest, so two prompts with the same samples are the same.
    """

    audio: np.ndarray
    sample_rate: int
    digest: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        check_int("audio_prompt.sample_rate", self.sample_rate, *SAMPLE_RATE_RANGE, " Hz")
        audio = as_audio_array(self.audio, "audio_prompt")
        check_audio_prompt_size(audio.shape[1], audio.shape[0], self.sample_rate)
        audio.setflags(write=False)
        object.__setattr__(self, "audio", audio)
        object.__setattr__(self, "digest", audio_digest(audio, self.sample_rate))

    @property
    def duration_s(self) -> float:
        return self.audio.shape[1] / self.sample_rate

    @classmethod
    def from_file(cls, path: str | Path) -> AudioPrompt:
        """Read an audio file (WAV, FLAC, AIFF, MP3, OGG: whatever pedalboard reads), or a spectrogram
        image in Riffusion's format (``.png``, ``.jpg``...: a seed image, decoded to its sound).

        Raises :class:`AudioReadError` naming the path when it cannot be read, :class:`RequestError`
        for an image that is not a spectrogram in Riffusion's format.
        """
        path = Path(path)
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            # a spectrogram image (a Riffusion seed image): its sound, which Riffusion turns back into it
            # (the codec is imported here, on use: it loads torch)
            from .models.riffusion.codec import audio_from_image_file

            audio, rate = audio_from_image_file(path)
        else:  # a missing image gets the audio reader's "not a readable file"
            audio, rate = read_audio_file(path, "audio prompt", check_audio_prompt_size)
        return cls(audio=audio, sample_rate=rate)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, name: str = "audio prompt") -> AudioPrompt:
        """An audio file's bytes (WAV, FLAC, AIFF, OGG, MP3), or a spectrogram image's in Riffusion's
        format (PNG, JPEG, WebP, BMP: a seed image, told by its first bytes), as a client sends them.

        Raises :class:`AudioReadError` starting with ``name`` for bytes that are not audio,
        :class:`RequestError` for an image that is not a spectrogram in Riffusion's format and for
        audio longer than :data:`AUDIO_PROMPT_MAX_S` (refused before it is decoded).
        """
        data = bytes(data)
        if data.startswith(IMAGE_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
            from .models.riffusion.codec import audio_from_image_file

            audio, rate = audio_from_image_file(io.BytesIO(data), name=name)
        else:
            audio, rate = read_audio_bytes(data, name, check_audio_prompt_size)
        return cls(audio=audio, sample_rate=rate)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AudioPrompt) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)


#: the longest motion a request may carry (seconds)
MOTION_PROMPT_MAX_S = 600.0


@dataclass(frozen=True, eq=False)
class MotionPrompt:
    """A dancer's motion to condition on (models that take motion: a learned Dance2Music model).

    ``positions``: float32 ``[frames, joints, 3]`` on a regular grid of ``frame_rate_hz`` (gaps
    already bridged: :func:`loopbridge.engine.motion.regular_frames`); an accelerometer is one
    "joint". Equality and hashing go by content digest.
    """

    positions: np.ndarray
    frame_rate_hz: float
    digest: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        check_range("motion_prompt.frame_rate_hz", self.frame_rate_hz, 5.0, 1000.0, " frames per second")
        positions = np.asarray(self.positions, dtype=np.float32)
        if positions.ndim != 3 or positions.shape[2] != 3 or positions.shape[0] < 2 or positions.shape[1] < 1:
            raise RequestError("motion_prompt", f"an array of shape {positions.shape}", "frames × joints × 3 positions")
        if not np.all(np.isfinite(positions)):
            raise RequestError("motion_prompt", "positions with NaN or infinite values", "finite positions")
        if positions.shape[0] / self.frame_rate_hz > MOTION_PROMPT_MAX_S:
            raise RequestError("motion_prompt", f"{positions.shape[0] / self.frame_rate_hz:.0f} s of motion",
                               f"at most {MOTION_PROMPT_MAX_S:g} s")
        positions = np.ascontiguousarray(positions)
        positions.setflags(write=False)
        object.__setattr__(self, "positions", positions)
        h = hashlib.sha256(f"motion:{float(self.frame_rate_hz)}:{positions.shape}:".encode())
        h.update(positions.tobytes())
        object.__setattr__(self, "digest", h.hexdigest())

    @property
    def duration_s(self) -> float:
        return self.positions.shape[0] / self.frame_rate_hz

    def segment(self, start_s: float, duration_s: float) -> MotionPrompt:
        """The motion from ``start_s`` for ``duration_s`` seconds (at least two frames)."""
        first = max(0, int(round(start_s * self.frame_rate_hz)))
        count = max(2, int(round(duration_s * self.frame_rate_hz)))
        first = min(first, self.positions.shape[0] - 2)
        return MotionPrompt(self.positions[first:first + count], self.frame_rate_hz)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MotionPrompt) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)


class Task(StrEnum):
    """What a request does with the user's audio (``audio_prompt``, the source), or ``generate`` (none).

    - ``generate``: text (and the host's tempo, key and meter) to audio;
    - ``continue``: the source followed by ``continue_bars`` new bars (the source kept to the sample);
    - ``replace``: bars ``replace_from_bar``–``replace_to_bar`` of the source made anew, the rest kept
      to the sample;
    - ``transform``: the source remade after the prompt, ``audio_prompt_strength`` how far (0 keeps it);
    - ``extract``: one ``track`` (drums, bass...) pulled out of the source;
    - ``add``: a new part (``track``, and the prompt) that fits the source, alone.

    Bar positions count from the source's start at the request's tempo and bar: the source is the
    current sample, already at the song's tempo with its first downbeat at its start.
    """

    GENERATE = "generate"
    CONTINUE = "continue"
    REPLACE = "replace"
    TRANSFORM = "transform"
    EXTRACT = "extract"
    ADD = "add"

    @classmethod
    def parse(cls, value: Task | str) -> Task:
        if isinstance(value, Task):
            return value
        text = str(value).strip().lower()
        aliases = {"text": "generate", "outpaint": "continue", "extend": "continue", "inpaint": "replace",
                   "repaint": "replace", "cover": "transform", "audio-to-audio": "transform", "stem": "extract",
                   "lego": "add"}
        text = aliases.get(text, text)
        for task in cls:
            if task.value == text:
                return task
        raise RequestError("task", value, "one of: " + ", ".join(t.value for t in cls))


#: the parts ``extract`` and ``add`` name (ACE-Step's track names)
TRACKS: tuple[str, ...] = ("vocals", "backing_vocals", "drums", "bass", "guitar", "keyboard", "percussion",
                           "strings", "synth", "fx", "brass", "woodwinds")
#: a key named in a prompt ("in A minor", "F# major", "Ebm"): the song's key is then not added
_KEY_IN_PROMPT = re.compile(r"(?<![\w#])[A-G][#b]?\s*(?:m|min|minor|maj|major)(?![\w#])")


@dataclass(frozen=True)
class GenerateRequest:
    """What to generate. Immutable; checked at construction.

    Length is either ``duration_s`` or ``bars`` at ``tempo_bpm`` (``beats_per_bar`` beats a bar);
    with neither, each kind has a default (:meth:`render_duration_s`). ``steps`` and ``guidance``
    of ``None`` mean the model's defaults. Variation ``k`` of a request uses seed ``seed + k``.
    A ``task`` other than ``generate`` works on ``audio_prompt`` (the user's audio, at ``tempo_bpm``
    and ``beats_per_bar``): its length is the source's (plus ``continue_bars``); see :class:`Task`.
    """

    prompt: str = ""
    model: str = "default"
    kind: Kind = Kind.ONE_SHOT
    seed: int = 0
    variation: int = 0
    duration_s: float | None = None
    bars: float | None = None
    tempo_bpm: float = 120.0
    beats_per_bar: int = 4
    steps: int | None = None
    guidance: float | None = None
    negative_prompt: str = ""
    audio_prompt: AudioPrompt | None = None
    audio_prompt_strength: float = 0.5
    morph_prompt: str | None = None
    morph_amount: float = 0.0
    morph_seed: int | None = None
    start_s: float = 0.0
    motion_prompt: MotionPrompt | None = None
    task: Task = Task.GENERATE
    continue_bars: float | None = None
    replace_from_bar: float | None = None
    replace_to_bar: float | None = None
    track: str = ""
    #: the song's key a text model is asked for (canonical, "Am"); set by the front door for models that take
    #: free text, None for the others (their render does not depend on it: the conform stage matches the key)
    key: str | None = None

    def __post_init__(self) -> None:
        from .conform.key import key_name

        object.__setattr__(self, "kind", Kind.parse(self.kind))
        object.__setattr__(self, "task", Task.parse(self.task))
        object.__setattr__(self, "key", key_name(self.key))
        if not isinstance(self.model, str) or not self.model.strip():
            raise RequestError("model", self.model, "a model id (see `loopbridge models`)")
        for name in ("prompt", "negative_prompt"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise RequestError(name, value, "text")
            if len(value) > PROMPT_MAX_CHARS:
                raise RequestError(name, f"{len(value)} characters", f"at most {PROMPT_MAX_CHARS} characters")
            if any(ord(c) < 32 and c not in "\t" for c in value):
                raise RequestError(name, value, "text without control characters")
        if self.morph_prompt is not None:
            if not isinstance(self.morph_prompt, str) or len(self.morph_prompt) > PROMPT_MAX_CHARS:
                raise RequestError("morph_prompt", self.morph_prompt, f"text of at most {PROMPT_MAX_CHARS} characters")
        check_int("seed", self.seed, 0, SEED_MAX)
        check_int("variation", self.variation, 0, VARIATION_MAX)
        check_range("tempo_bpm", self.tempo_bpm, TEMPO_MIN_BPM, TEMPO_MAX_BPM, " BPM")
        check_int("beats_per_bar", self.beats_per_bar, *BEATS_PER_BAR_RANGE)
        if self.duration_s is not None and self.bars is not None:
            raise RequestError("duration_s", self.duration_s, "either a duration in seconds or bars, not both")
        if self.duration_s is not None:
            check_range("duration_s", self.duration_s, DURATION_MIN_S, DURATION_MAX_S, " s")
        if self.bars is not None:
            check_range("bars", self.bars, BARS_MIN, BARS_MAX, " bars")
            if self.render_duration_s > DURATION_MAX_S:
                raise RequestError(
                    "bars", self.bars, f"a length of at most {DURATION_MAX_S:g} s at {self.tempo_bpm:g} BPM"
                )
        if self.steps is not None:
            check_int("steps", self.steps, *STEPS_RANGE)
        if self.guidance is not None:
            check_range("guidance", self.guidance, *GUIDANCE_RANGE)
        check_range("audio_prompt_strength", self.audio_prompt_strength, 0.0, 1.0)
        check_range("morph_amount", self.morph_amount, 0.0, 1.0)
        if self.morph_seed is not None:
            check_int("morph_seed", self.morph_seed, 0, SEED_MAX)
        check_range("start_s", self.start_s, 0.0, DURATION_MAX_S, " s")
        if self.audio_prompt is not None and not isinstance(self.audio_prompt, AudioPrompt):
            raise RequestError("audio_prompt", type(self.audio_prompt).__name__, "an AudioPrompt")
        if self.motion_prompt is not None and not isinstance(self.motion_prompt, MotionPrompt):
            raise RequestError("motion_prompt", type(self.motion_prompt).__name__, "a MotionPrompt")
        self._check_task()

    def _check_task(self) -> None:
        """The task's own fields: given where the task takes them, absent elsewhere, within the source."""
        task = self.task
        if task is not Task.GENERATE:
            if self.audio_prompt is None:
                raise RequestError("audio_prompt", None, f"the audio to {task.value} (a file, or bytes on the wire)")
            if self.kind is Kind.KIT:
                raise RequestError("kind", self.kind.value, f"one-shot, loop or texture for task {task.value!r}")
        if (self.continue_bars is not None) != (task is Task.CONTINUE):
            raise RequestError("continue_bars", self.continue_bars,
                               "a number of bars for task 'continue', and none for other tasks")
        if self.continue_bars is not None:
            check_range("continue_bars", self.continue_bars, BARS_MIN, BARS_MAX, " bars")
        start, end = self.replace_from_bar, self.replace_to_bar
        if task is Task.REPLACE:
            if start is None or end is None:
                raise RequestError("replace_from_bar" if start is None else "replace_to_bar", None,
                                   "the bars to replace: replace_from_bar and replace_to_bar (bar positions from 0)")
            source_bars = self.source_bars
            check_range("replace_from_bar", start, 0.0, source_bars, " (a bar position from 0)")
            check_range("replace_to_bar", end, start, source_bars + 1e-6,
                        f" (after replace_from_bar, within the source's {source_bars:.3g} bars)")
            if end - start < 1e-6:
                raise RequestError("replace_to_bar", end, f"a bar position after replace_from_bar={start:g}")
        elif start is not None or end is not None:
            raise RequestError("replace_from_bar", self.replace_from_bar, "none unless the task is 'replace'")
        if not isinstance(self.track, str):
            raise RequestError("track", self.track, "one of: " + ", ".join(TRACKS))
        track = self.track.strip().lower().replace(" ", "_").replace("-", "_")
        if track and track not in TRACKS:
            raise RequestError("track", self.track, "one of: " + ", ".join(TRACKS))
        object.__setattr__(self, "track", track)
        if task is Task.EXTRACT and not track:
            raise RequestError("track", self.track, "the part to extract, one of: " + ", ".join(TRACKS))
        if track and task not in (Task.EXTRACT, Task.ADD):
            raise RequestError("track", self.track, "none unless the task is 'extract' or 'add'")
        if task is Task.TRANSFORM and self.audio_prompt_strength <= 0.0:
            raise RequestError("audio_prompt_strength", self.audio_prompt_strength,
                               "more than 0 for task 'transform' (0 would keep the audio as it is)")

    # ---- derived values -------------------------------------------------------------------

    @property
    def effective_seed(self) -> int:
        """The seed this variation actually samples with."""
        return (self.seed + self.variation) % (SEED_MAX + 1)

    @property
    def effective_morph_seed(self) -> int:
        """The seed of the morph target's end (its own seed, so each end is repeatable)."""
        base = self.morph_seed if self.morph_seed is not None else self.seed + 1
        return (base + self.variation) % (SEED_MAX + 1)

    @property
    def bar_s(self) -> float:
        """Seconds in one bar at the request's tempo."""
        return self.beats_per_bar * 60.0 / float(self.tempo_bpm)

    @property
    def source_bars(self) -> float:
        """How many bars the task's source holds at the request's tempo (0 without a source)."""
        if self.audio_prompt is None:
            return 0.0
        return self.audio_prompt.duration_s / self.bar_s

    @property
    def output_bars(self) -> float | None:
        """The bars a task's result holds (the source's, plus the new ones of ``continue``), to the
        nearest quarter bar within the engine's range; None for ``generate``."""
        if self.task is Task.GENERATE:
            return None
        bars = self.render_duration_s / self.bar_s
        return min(max(round(bars * 4.0) / 4.0, BARS_MIN), BARS_MAX)

    @property
    def render_duration_s(self) -> float:
        """Seconds of audio to generate (a task's: its source's length, plus the new bars of ``continue``)."""
        if self.task is not Task.GENERATE and self.audio_prompt is not None:
            return self.audio_prompt.duration_s + (self.continue_bars or 0.0) * self.bar_s
        if self.duration_s is not None:
            return float(self.duration_s)
        if self.bars is not None:
            return float(self.bars) * self.beats_per_bar * 60.0 / float(self.tempo_bpm)
        if self.kind is Kind.LOOP:
            return self.beats_per_bar * 60.0 / float(self.tempo_bpm)  # one bar
        if self.kind is Kind.TEXTURE:
            return 4.0
        return 1.0

    def replace(self, **changes: Any) -> GenerateRequest:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def with_variation(self, variation: int) -> GenerateRequest:
        return self.replace(variation=variation)

    @property
    def model_prompt(self) -> str:
        """The prompt a text model hears: with :attr:`key`, the key in words ("house groove, in A minor"),
        unless the prompt names a key already."""
        from .conform.key import parse_key

        key = parse_key(self.key)
        prompt = self.prompt.strip()
        if key is None or _KEY_IN_PROMPT.search(prompt):
            return prompt
        words = f"in {key.name.rstrip('m')} {key.mode}"
        return f"{prompt}, {words}" if prompt else words

    def render_fields(self) -> dict[str, Any]:
        """Everything that determines the generated audio, as plain JSON values.

        Tempo enters only through the duration, and only for loops and kits (a default-model loop
        is arranged at that tempo); for one-shots and textures the tempo is a conform setting.
        """
        fields: dict[str, Any] = {
            "model": self.model,
            "prompt": self.prompt,
            "kind": self.kind.value,
            "seed": self.effective_seed,
            "duration_s": round(self.render_duration_s, 6),
            "steps": self.steps,
            "guidance": self.guidance,
            "negative_prompt": self.negative_prompt,
            "audio_prompt": self.audio_prompt.digest if self.audio_prompt else None,
            "audio_prompt_strength": self.audio_prompt_strength if self.audio_prompt else None,
            "morph_prompt": self.morph_prompt,
            "morph_amount": self.morph_amount if self.morph_prompt is not None else None,
            "morph_seed": self.effective_morph_seed if self.morph_prompt is not None else None,
            "start_s": self.start_s,
        }
        if self.motion_prompt is not None:  # only when present: keys of requests without one stay as they were
            fields["motion_prompt"] = self.motion_prompt.digest
        if self.task is not Task.GENERATE:  # the same: a text request keeps the key it always had
            fields.update(task=self.task.value, continue_bars=self.continue_bars,
                          replace_from_bar=self.replace_from_bar, replace_to_bar=self.replace_to_bar, track=self.track,
                          tempo_bpm=float(self.tempo_bpm), beats_per_bar=self.beats_per_bar)
        if self.key is not None:  # likewise: a text model asked for a key hears another prompt
            fields["key"] = self.key
        if self.kind in (Kind.LOOP, Kind.KIT):
            fields["tempo_bpm"] = float(self.tempo_bpm)
            fields["beats_per_bar"] = self.beats_per_bar
        return fields

    def render_key(self, model_digest: str) -> str:
        """Content address of the render: sha256 over the render fields and the weights digest."""
        payload = json.dumps({"weights": model_digest, **self.render_fields()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def level_group(self) -> str | None:
        """The key of the variations of this request, which share one level (a loop: the file level
        ``ConformSpec.level_crest_db`` sets); None for other kinds, levelled one file at a time."""
        if self.kind is not Kind.LOOP:
            return None
        payload = json.dumps({"level_group": self.with_variation(0).render_fields()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the audio prompt appears as its digest only)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["kind"] = self.kind.value
        data["task"] = self.task.value
        data["audio_prompt"] = self.audio_prompt.digest if self.audio_prompt else None
        data["motion_prompt"] = self.motion_prompt.digest if self.motion_prompt else None
        return data


@dataclass(frozen=True)
class ConformSpec:
    """How to fit a render to a song.

    ``bars`` of ``None`` keeps a loop's own length rounded to whole bars at the new tempo; one-shots
    and textures ignore ``bars`` unless given (then a texture is cut or padded to that length).
    ``root_note`` is a MIDI note; ``None`` keeps what the model reported (or none). ``loudness_lufs``:
    the integrated loudness loops and textures are brought to (one-shots are brought to the true-peak
    ceiling instead: ``conform/levels.py``). ``key``: the song's key pitched material is moved to by
    the smallest shift (``conform/key.py``; any spelling it takes, kept canonical: "Am", "F#"), None
    for no key matching. ``level_crest_db``: for a loop levelled with the variations of its request, the
    true peak above loudness (dB) of the request's first levelled variation, which sets the level they
    share (``conform/levels.py``: :func:`~loopbridge.engine.conform.levels.request_level`); None: the
    loop is levelled on its own. ``warp``: how a loop is stretched (``conform/warp.py``): ``"complex"`` (the
    default), ``"beats"`` or ``"auto"`` (``"beats"`` for a loop with no pitch, ``"complex"`` for the rest).
    """

    tempo_bpm: float = 120.0
    bars: float | None = None
    beats_per_bar: int = 4
    pitch_semitones: float = 0.0
    sample_rate: int = DEFAULT_SAMPLE_RATE
    root_note: int | None = None
    loudness_lufs: float = DEFAULT_LOUDNESS_LUFS
    key: str | None = None
    level_crest_db: float | None = None
    warp: str = "complex"  # conform/warp.py DEFAULT_WARP

    def __post_init__(self) -> None:
        from .conform.key import key_name
        from .conform.warp import check_warp

        object.__setattr__(self, "key", key_name(self.key))
        check_warp(self.warp)
        check_range("tempo_bpm", self.tempo_bpm, TEMPO_MIN_BPM, TEMPO_MAX_BPM, " BPM")
        check_int("beats_per_bar", self.beats_per_bar, *BEATS_PER_BAR_RANGE)
        check_loudness(self.loudness_lufs)
        if self.bars is not None:
            check_range("bars", self.bars, BARS_MIN, BARS_MAX, " bars")
        check_range("pitch_semitones", self.pitch_semitones, *PITCH_RANGE_SEMITONES, " semitones")
        check_int("sample_rate", self.sample_rate, *SAMPLE_RATE_RANGE, " Hz")
        if self.root_note is not None:
            check_int("root_note", self.root_note, 0, 127, " (MIDI note)")
        if self.level_crest_db is not None:
            check_range("level_crest_db", self.level_crest_db, *LEVEL_CREST_RANGE_DB, " dB")

    def key_fields(self) -> dict[str, Any]:
        # the song's key only when one is asked for, so files conformed without one keep their keys
        key: dict[str, Any] = {"key": self.key} if self.key is not None else {}
        # a request's shared level likewise: files levelled on their own keep their keys
        if self.level_crest_db is not None:
            key["level_crest_db"] = round(float(self.level_crest_db), 2)
        # a warp mode only when one is forced: files conformed by the default keep their keys
        if self.warp != "complex":
            key["warp"] = self.warp
        return {**key,
            "tempo_bpm": float(self.tempo_bpm),
            "bars": None if self.bars is None else float(self.bars),
            "beats_per_bar": self.beats_per_bar,
            "pitch_semitones": float(self.pitch_semitones),
            "sample_rate": self.sample_rate,
            "root_note": self.root_note,
            "loudness_lufs": float(self.loudness_lufs),
        }

    @property
    def loop_frames(self) -> int | None:
        """A loop's or texture's length in frames when ``bars`` is given (None otherwise):
        ``round(bars * beats_per_bar * 60 / tempo_bpm * sample_rate)``."""
        if self.bars is None:
            return None
        return int(round(self.bars * self.beats_per_bar * 60.0 / self.tempo_bpm * self.sample_rate))

    def conform_key(self, render_key: str) -> str:
        payload = json.dumps({"render": render_key, **self.key_fields()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def replace(self, **changes: Any) -> ConformSpec:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class Render:
    """Raw generated audio, before conforming.

    ``info`` carries what the model knows about its output, all optional: ``"class"`` (a label),
    ``"tempo_bpm"`` (exact source tempo, so conform need not estimate it), ``"beats"``,
    ``"downbeat_s"``, ``"root_note"`` (MIDI), ``"part"`` (a kit part's name).
    """

    key: str
    audio: np.ndarray
    sample_rate: int
    request: GenerateRequest
    model_digest: str
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.audio.shape[1] / self.sample_rate

    @property
    def channels(self) -> int:
        return int(self.audio.shape[0])
