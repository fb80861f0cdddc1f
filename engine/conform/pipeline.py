"""Fit a render to a song: :func:`conform_audio`.

Loops
    1. Source tempo and downbeat: from the model when it knows them (:class:`SourceInfo`), else
       estimated (:func:`~.tempo.estimate_tempo`, with the beats the render was asked to hold as a
       prior; without one, an estimate is folded by octaves towards the song tempo).
    2. The render's own loop (its whole bars from the downbeat) is made seamless, then repeated
       as needed to cover the requested bars, with a pre-roll and post-roll taken from the loop
       itself, so the stretcher sees the wrap as music running on.
    3. That material is resampled to the song's rate (libsoxr), stretched to the song tempo
       and pitch-shifted in one pass (Rubber Band through pedalboard; the pitch by resampling its
       result, see :mod:`.stretcher`), in the warp mode ``spec.warp`` names or the material calls for
       (:mod:`.warp`: a loop with no pitch heard takes the engine that keeps hits on the grid).
    4. Where each beat landed is measured and the beats are put back on the grid
       (:func:`~.alignment.retime`); exactly ``bars * beats_per_bar`` beats at the song tempo are
       cut, to the sample, and the loop's end is crossfaded into the stretched pre-roll so the
       wrap is seamless. A render already at the song's tempo and pitch is not stretched at all.
One-shots (and kit parts)
    Resampled, pitch-shifted, tidied (:func:`~.oneshot.tidy_one_shot`); never stretched.
Textures
    Never stretched (no pulse): cut (or looped) to ``bars`` at the song tempo when given, with a
    long crossfaded seam so they loop.
Levels, last, for every kind (:func:`~.levels.level_audio`)
    DC removed, loops and textures brought to ``spec.loudness_lufs`` (BS.1770), the true peak held
    under -1 dBTP by a look-ahead limiter that reads around the loop's wrap; one-shots brought to
    the true-peak ceiling. Lengths never change.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ..audio import as_audio_array, resample
from ..errors import RequestError, TooLargeError
from ..request import (
    CONFORMED_MAX_SAMPLES,
    DURATION_MAX_S,
    PITCH_RANGE_SEMITONES,
    SAMPLE_RATE_RANGE,
    TEMPO_MAX_BPM,
    TEMPO_MIN_BPM,
    TEXTURE_PREROLL_S,
    ConformSpec,
    GenerateRequest,
    Kind,
    Render,
)
from . import memory, seams, threads
from .alignment import (
    MIN_SEGMENT_STRENGTH,
    PRE_ECHO_BLOCK_S,
    Retiming,
    band_levels,
    limit_pre_echo,
    onset_curves,
    retime,
)
from .key import KEY_SHIFT_RANGE, MusicalKey, detect_key, key_shift, parse_key
from .levels import level_audio
from .oneshot import tidy_one_shot
from .onsets import transient_flux
from .stretcher import (
    DEFAULT_STRETCH,
    StretchOptions,
    engine_for,
    pitch_method,
    pitch_shift,
    probe_offset,
    rubberband_semitones,
    stretch,
    window_flag,
)
from .tempo import ANALYSIS_MAX_S, BEATS_HINT_MAX, estimate_tempo, find_downbeat, is_low_confidence
from .warp import choose_warp

#: longest input accepted (a render is at most DURATION_MAX_S; audio prompts are as long)
INPUT_MAX_S = 2 * DURATION_MAX_S
#: crossfade of a loop's wrap after stretching
LOOP_SEAM_FADE_S = 0.010
#: crossfade that makes the render's own loop seamless before stretching
SOURCE_SEAM_FADE_S = 0.015
#: when nothing leads into the render's first downbeat: its fade-in (the end fades out instead)
SOURCE_SEAM_FADE_IN_S = 0.0005
#: crossfade of a texture's wrap (at most a quarter of its length)
TEXTURE_SEAM_FADE_S = TEXTURE_PREROLL_S
#: the farthest the stretcher's timing is searched for, and no more than this share of a beat
MAX_OFFSET_S = 0.08
MAX_OFFSET_BEATS = 0.3
#: stretched audio kept before and after the loop for the stretcher to settle in and out
STRETCH_SETTLE_S = 0.1
#: an estimate below this confidence found no pulse: the render is not stretched
MIN_TEMPO_CONFIDENCE = 0.1


@dataclass(frozen=True)
class SourceInfo:
    """What the model knows about its output (``Render.info``); every field optional.

    ``tempo_bpm``: the exact source tempo (estimation is skipped). ``beats``: how many beats the
    render was asked to hold (a prior for the estimator, and the length of the render's own loop).
    ``downbeat_s``: where the first downbeat is. ``root_note``: MIDI note of the sound's pitch.
    ``duration_s``: how long the sound was asked to be (a texture rendered longer keeps exactly
    that much, the rest before it leading into its seam). ``pitched``: False when the model says the
    sound has no pitch (drums: no key is detected and it is never shifted to the song's key), None
    when it does not say (the key detection decides).
    """

    tempo_bpm: float | None = None
    beats: float | None = None
    downbeat_s: float | None = None
    root_note: int | None = None
    duration_s: float | None = None
    pitched: bool | None = None

    def __post_init__(self) -> None:
        if self.tempo_bpm is not None and not _is_number(self.tempo_bpm, TEMPO_MIN_BPM, TEMPO_MAX_BPM):
            raise RequestError("source.tempo_bpm", self.tempo_bpm, f"{TEMPO_MIN_BPM:g}–{TEMPO_MAX_BPM:g} BPM")
        if self.beats is not None and not (_is_number(self.beats, 0.0, BEATS_HINT_MAX) and self.beats > 0):
            raise RequestError("source.beats", self.beats, f"a number of beats above 0 and up to {BEATS_HINT_MAX:g}")
        if self.downbeat_s is not None and not _is_number(self.downbeat_s, 0.0, INPUT_MAX_S):
            raise RequestError("source.downbeat_s", self.downbeat_s, f"0–{INPUT_MAX_S:g} s")
        if self.root_note is not None and (
            isinstance(self.root_note, bool)
            or not isinstance(self.root_note, int | np.integer)
            or not 0 <= self.root_note <= 127
        ):
            raise RequestError("source.root_note", self.root_note, "a MIDI note from 0 to 127")
        if self.duration_s is not None and not (_is_number(self.duration_s, 0.0, INPUT_MAX_S) and self.duration_s > 0):
            raise RequestError("source.duration_s", self.duration_s, f"above 0 and up to {INPUT_MAX_S:g} s")

    @classmethod
    def for_render(cls, render: Render) -> SourceInfo:
        """What is known about a render's audio, from its model's ``info`` and its request.

        ``tempo_bpm``, ``beats``, ``downbeat_s`` and ``root_note`` come from ``render.info`` (other
        keys are ignored; a beat count of 0 counts as none). A loop whose model gave no beat count
        holds the beats it was asked for: its render duration at the request's tempo. A texture keeps
        the duration it was asked for (``request.render_duration_s``: the engine renders a texture a
        little longer, the extra leading into its seam).
        Raises :class:`RequestError` (fields ``source.*``) for a value that is no number or out of range.
        """
        return cls.for_request(render.request, render.info)

    @classmethod
    def for_request(cls, request: GenerateRequest, info: Mapping[str, Any]) -> SourceInfo:
        """:meth:`for_render` from a render's request and model info alone (a stored render's index
        row, or what a request's render will say), without its audio."""
        beats = _info_float(info, "beats") or None
        if beats is None and request.kind is Kind.LOOP:
            beats = request.render_duration_s * request.tempo_bpm / 60.0
        return cls(
            tempo_bpm=_info_float(info, "tempo_bpm"),
            beats=beats,
            downbeat_s=_info_float(info, "downbeat_s"),
            root_note=info.get("root_note"),
            duration_s=request.render_duration_s if request.kind is Kind.TEXTURE else None,
            pitched=pitched_from_info(request, info),
        )


#: the classes models give (``Render.info["class"]``) of sounds with no pitch: never shifted to a key
UNPITCHED_CLASSES = frozenset({"kick", "snare", "clap", "closed hat", "open hat", "hat", "hihat", "tom", "perc",
                               "percussion", "drum loop", "drums", "noise"})


def pitched_from_info(request: GenerateRequest, info: Mapping[str, Any]) -> bool | None:
    """False when the render is known to have no pitch (a kit's part, a drum class, ``info["pitched"]``
    False), True when ``info["pitched"]`` says so, None when nothing says (its key is detected)."""
    given = info.get("pitched")
    if isinstance(given, bool):
        return given
    if request.kind is Kind.KIT or str(info.get("class") or "").lower() in UNPITCHED_CLASSES:
        return False
    return None


def _info_float(info: Mapping[str, Any], name: str) -> float | None:
    """``info[name]`` as a float (None when absent); RequestError naming ``source.<name>`` if it is no number."""
    value = info.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RequestError(f"source.{name}", value, "a number") from None


@dataclass(frozen=True)
class ConformedAudio:
    """A render fitted to a song, before it is written as a WAV file.

    ``audio``: float32 ``[channels, samples]`` at ``sample_rate``. ``beats``: length in beats at
    ``tempo_bpm``. ``loop_start``/``loop_end``: frames, end exclusive (``None`` for one-shots).
    ``info``: how it was made (``source_tempo_bpm``, ``tempo_confidence``, ``stretch_factor``,
    ``estimated``, ``alignment``...). ``beats_per_bar``: the meter written to the ``acid`` chunk.
    """

    audio: np.ndarray
    sample_rate: int
    kind: Kind
    tempo_bpm: float
    beats: float
    root_note: int | None
    loop_start: int | None
    loop_end: int | None
    info: dict = field(default_factory=dict)
    beats_per_bar: int = 4

    @property
    def duration_s(self) -> float:
        return self.audio.shape[1] / self.sample_rate


def _is_number(value: object, low: float, high: float) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.number)
        and math.isfinite(float(value))
        and low <= float(value) <= high
    )


def _validate(
    audio: object, sample_rate: object, kind: object, spec: object, source: object, options: object
) -> tuple[np.ndarray, Kind]:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise RequestError(
            "sample_rate", sample_rate, f"a whole number of Hz from {SAMPLE_RATE_RANGE[0]} to {SAMPLE_RATE_RANGE[1]}"
        )
    if not SAMPLE_RATE_RANGE[0] <= sample_rate <= SAMPLE_RATE_RANGE[1]:
        raise RequestError("sample_rate", sample_rate, f"{SAMPLE_RATE_RANGE[0]}–{SAMPLE_RATE_RANGE[1]} Hz")
    if not isinstance(spec, ConformSpec):
        raise RequestError("spec", type(spec).__name__, "a ConformSpec")
    if not isinstance(source, SourceInfo):
        raise RequestError("source", type(source).__name__, "a SourceInfo")
    if not isinstance(options, StretchOptions):
        raise RequestError("options", type(options).__name__, "a StretchOptions")
    parsed_kind = Kind.parse(kind)  # type: ignore[arg-type]
    data = as_audio_array(audio)
    duration_s = data.shape[1] / sample_rate
    if duration_s > INPUT_MAX_S:
        raise RequestError("audio", f"{duration_s:.1f} s of audio", f"at most {INPUT_MAX_S:g} s")
    return data, parsed_kind


def _root_after_shift(root_note: int | None, semitones: float) -> tuple[int | None, dict[str, Any]]:
    """The recorded root note after a pitch shift, and the fraction of a semitone above it (``smpl``)."""
    if root_note is None:
        return None, {}
    total = root_note + semitones
    note = int(np.clip(round(total), 0, 127))
    residual = total - note
    info: dict[str, Any] = {"source_root_note": root_note}
    if abs(residual) > 1e-9:
        info["root_note_cents"] = round(100.0 * residual, 3)
        if residual > 0:
            info["pitch_fraction"] = int(round(residual * 2**32)) & 0xFFFFFFFF
    return note, info


#: the octave a key's tonic is written in as the root note (MIDI 48-59: C3 to B3)
KEY_ROOT_OCTAVE_C = 48


@dataclass(frozen=True)
class KeyMatch:
    """What :func:`match_key` decided: the sound's ``key`` after the conform (None: it has none),
    the ``shift`` in semitones that moves it to the song's key (0 without one), and ``info`` for the
    conform info (``key``, ``key_confidence``, ``detected_key``, ``key_shift_semitones``...)."""

    key: MusicalKey | None
    shift: int
    info: dict[str, Any]


def match_key(data: np.ndarray, sample_rate: int, kind: Kind, spec: ConformSpec, source: SourceInfo,
              root_note: int | None) -> KeyMatch:
    """The key of a render and the shift that matches it to ``spec.key``.

    Loops and textures: detected (:func:`~.key.detect_key`) unless the model says they have no pitch;
    with a key found and ``spec.key`` given, the smallest shift (−6…+5 semitones, a relative key counting
    as a match) onto it, on top of the user's ``pitch_semitones``. One-shots carry a root note, not a
    key: with ``spec.key`` a pitched one-shot's root is moved onto the key's tonic by the smallest shift,
    and so is the model's root of a loop in which no key is heard.
    Drums and sounds with no key are never shifted. The shift is held so the total stays within ±24.
    """
    target = parse_key(spec.key)
    user_shift = int(round(spec.pitch_semitones))
    info: dict[str, Any] = {"key": None, "key_confidence": None}
    if target is not None:
        info["key_requested"] = target.name
    if source.pitched is False:
        info["key_rule"] = "no pitch (the model's word)"
        return KeyMatch(None, 0, info)
    def root_to_tonic(rule: str) -> KeyMatch:
        if target is None or root_note is None:
            return KeyMatch(None, 0, info)
        shift = _held(key_shift(MusicalKey((root_note + user_shift) % 12), MusicalKey(target.tonic)), spec)
        info.update({"key_shift_semitones": shift, "key_rule": rule})
        return KeyMatch(None, shift, info)

    if kind is Kind.ONE_SHOT or kind is Kind.KIT:
        return root_to_tonic("one-shot root moved to the tonic")
    estimate = detect_key(data, sample_rate)
    info["tonalness"] = estimate.tonalness
    if estimate.key is None:
        info["key_rule"] = "no key (unpitched)"
        # a loop the model built on one note (the default model's bass and pluck loops) keeps that root
        return root_to_tonic("no key heard: the model's root moved to the tonic")
    own = estimate.key.transposed(user_shift)
    info["detected_key"] = estimate.key.name
    shift = 0 if target is None else _held(key_shift(own, target), spec)
    key = own.transposed(shift)
    info.update({"key": key.name, "key_confidence": estimate.confidence, "key_shift_semitones": shift,
                 "key_rule": "detected" if target is None else "detected and matched"})
    return KeyMatch(key, shift, info)


def _held(shift: int, spec: ConformSpec) -> int:
    """``shift`` or the same key an octave the other way, so the total shift stays within ±24 semitones."""
    low, high = PITCH_RANGE_SEMITONES
    total = spec.pitch_semitones + shift
    if total > high:
        return shift - 12
    if total < low:
        return shift + 12
    return shift


def conform_audio(
    audio: np.ndarray,
    sample_rate: int,
    kind: Kind,
    spec: ConformSpec,
    source: SourceInfo = SourceInfo(),
    *,
    options: StretchOptions = DEFAULT_STRETCH,
    reserve: Callable[[int], None] | None = None,
    sets_level: bool = False,
) -> ConformedAudio:
    """Fit float32 ``[channels, samples]`` audio at ``sample_rate`` to ``spec`` (see the module doc).

    ``kind``: LOOP, ONE_SHOT or TEXTURE; KIT is conformed like a one-shot (a kit arrives here one
    part at a time). The result is at ``spec.sample_rate``; a loop holds exactly
    ``round(bars * beats_per_bar * 60 / tempo_bpm * sample_rate)`` samples.

    ``reserve(nbytes)`` is called with the most memory the conform and the WAV file written from it
    will hold at once (:func:`conform_peak_bytes`, for the render's own tempo once it is known) before
    any array of the song's length is made; it may wait for the memory, or raise to refuse.

    A loop with ``spec.level_crest_db`` is brought to the level its request's variations share
    (:func:`~.levels.request_level`); ``sets_level``: the loop is the first of its request to be
    levelled, and its own true peak above loudness sets that level (``info["levels"]["crest_db"]``
    says it; the caller keeps it for the request's other variations).

    Raises :class:`RequestError` naming the value for empty, non-finite or wrongly shaped audio, a
    sample rate outside 8–192 kHz, audio longer than :data:`INPUT_MAX_S`, a one-shot that is silent,
    or a loop longer than the engine's longest duration; :class:`TooLargeError` for a result of more
    than :data:`CONFORMED_MAX_SAMPLES` samples.
    """
    data, parsed_kind = _validate(audio, sample_rate, kind, spec, source, options)
    root_in = spec.root_note if spec.root_note is not None else source.root_note
    key = _KeyDetection(functools.partial(match_key, data, int(sample_rate), parsed_kind, spec, source, root_in))
    # the key is detected first where it moves the pitch (spec.key) or picks a loop's warp mode ("auto");
    # otherwise a loop's is detected beside its stretch (_conform_loop), where it takes no wall time
    key_first = parsed_kind is not Kind.LOOP or spec.key is not None or spec.warp == "auto"
    if key_first and key.value().shift:
        spec = spec.replace(pitch_semitones=spec.pitch_semitones + key.value().shift)
    if parsed_kind is Kind.LOOP:
        if reserve is not None and source.tempo_bpm is None:
            # estimating the tempo takes memory too, and the estimate may be far from the song's
            reserve(conform_peak_bytes(parsed_kind, data.shape[0], data.shape[1], int(sample_rate), spec, source))
        # the warp mode: the stretch a drum loop takes is not the one a loop with notes takes (.warp)
        warp = choose_warp(spec.warp, options, source.pitched, key.value().info.get("tonalness") if key_first else None)
        result = _conform_loop(data, int(sample_rate), spec, source, warp.options, reserve,
                               None if key_first else key)
        result[4].update({"warp": warp.mode, "warp_rule": warp.rule})
    else:
        peak = conform_peak_bytes(parsed_kind, data.shape[0], data.shape[1], int(sample_rate), spec, source)
        if reserve is not None:
            reserve(peak)
        if parsed_kind is Kind.TEXTURE:
            result = _conform_texture(data, int(sample_rate), spec, options, source.duration_s)
        else:
            result = _conform_one_shot(data, int(sample_rate), spec, options)
    found = key.value()
    root_note, root_info = _root_after_shift(root_in, spec.pitch_semitones)
    if found.key is not None and spec.root_note is None:
        # a sound in a key is rooted on its tonic (a one-shot keeps the root of its own pitch)
        root_note = found.key.tonic_note(KEY_ROOT_OCTAVE_C)
        if root_in is not None and root_note % 12 == round(root_in + spec.pitch_semitones) % 12:
            root_note = int(np.clip(round(root_in + spec.pitch_semitones), 0, 127))
    audio_out, kind_out, beats, loop, info = result
    started = time.perf_counter()
    audio_out, report = level_audio(audio_out, spec.sample_rate, kind_out, spec.loudness_lufs,
                                    grouped=sets_level or spec.level_crest_db is not None,
                                    crest_db=spec.level_crest_db)
    info["levels"] = report.info()
    info.setdefault("timings_s", {})["levels"] = time.perf_counter() - started
    if kind_out is not Kind.ONE_SHOT:
        info["loudness_target_lufs"] = float(spec.loudness_lufs)
    info.update(root_info)
    info.update(found.info)
    info["timings_s"]["key"] = key.seconds
    info["pitch_semitones"] = float(spec.pitch_semitones - found.shift)  # the user's own shift
    if int(sample_rate) != spec.sample_rate:
        info["resampled_from"] = int(sample_rate)
    return ConformedAudio(
        audio=audio_out,
        sample_rate=spec.sample_rate,
        kind=kind_out,
        tempo_bpm=float(spec.tempo_bpm),
        beats=float(beats),
        root_note=root_note,
        loop_start=None if loop is None else loop[0],
        loop_end=None if loop is None else loop[1],
        info=info,
        beats_per_bar=spec.beats_per_bar,
    )


_Result = tuple[np.ndarray, Kind, float, "tuple[int, int] | None", dict[str, Any]]


def _conform_one_shot(data: np.ndarray, sample_rate: int, spec: ConformSpec, options: StretchOptions) -> _Result:
    rate = spec.sample_rate
    audio = resample(data, sample_rate, rate)
    audio = pitch_shift(audio, rate, spec.pitch_semitones, options)
    tidied, report = tidy_one_shot(audio, rate)
    info: dict[str, Any] = {
        "trimmed_start_s": report.trimmed_start / rate,
        "trimmed_end_s": report.trimmed_end / rate,
        "gain_db": report.gain_db,
        "dc_offset": list(report.dc_offset),
    }
    beats = tidied.shape[1] / rate * spec.tempo_bpm / 60.0
    return tidied, Kind.ONE_SHOT, beats, None, info


def _conform_texture(data: np.ndarray, sample_rate: int, spec: ConformSpec, options: StretchOptions,
                     duration_s: float | None = None) -> _Result:
    rate = spec.sample_rate
    audio = resample(data, sample_rate, rate)
    audio = pitch_shift(audio, rate, spec.pitch_semitones, options)
    audio = (audio - audio.mean(axis=1, keepdims=True)).astype(np.float32, copy=False)
    fade = int(round(min(TEXTURE_SEAM_FADE_S * rate, audio.shape[1] / 4)))
    info: dict[str, Any] = {"fitted_to_bars": spec.bars is not None, "seam_fade_s": fade / rate}
    asked = int(round(duration_s * rate)) if duration_s is not None else None
    if spec.bars is None and asked is not None and audio.shape[1] >= asked + fade:
        # rendered with a pre-roll: the asked-for length, its end crossfaded into what led into it
        loop = seams.cut_loop(audio, audio.shape[1] - asked, asked, fade)
    elif spec.bars is None:
        loop = seams.overlap_cycle(audio, fade)
    else:
        frames = _bars_to_frames(spec.bars * spec.beats_per_bar, spec.tempo_bpm, rate)
        if audio.shape[1] >= frames + fade:
            # the render's first `fade` samples are what leads into the loop's start
            loop = seams.cut_loop(audio, fade, frames, fade)
        else:
            cycle = seams.overlap_cycle(audio, fade)
            del audio
            loop = seams.repeat_loop(cycle, frames, fade)
            info["repeated"] = True
    beats = loop.shape[1] / rate * spec.tempo_bpm / 60.0
    return loop, Kind.TEXTURE, beats, (0, loop.shape[1]), info


def _bars_to_frames(beats: float, tempo_bpm: float, sample_rate: int) -> int:
    frames = int(round(beats * 60.0 / tempo_bpm * sample_rate))
    if frames / sample_rate > DURATION_MAX_S:
        bars_hint = f"{beats:g} beats at {tempo_bpm:g} BPM"
        raise RequestError("bars", bars_hint, f"a length of at most {DURATION_MAX_S:g} s")
    return max(1, frames)


def _source_tempo(
    data: np.ndarray, sample_rate: int, spec: ConformSpec, source: SourceInfo
) -> tuple[float, float, dict[str, Any]]:
    """Source tempo (BPM) and downbeat (s), with what was done to find them and how sure it is
    (``tempo_confidence``, ``downbeat_confidence``, ``low_confidence``: either under
    :data:`~.tempo.LOW_CONFIDENCE`)."""
    if source.tempo_bpm is not None:
        if source.downbeat_s is not None:
            downbeat_s, downbeat_confidence, rule = float(source.downbeat_s), 1.0, "given"
        else:
            # the tempo is known, the downbeat not: the file's start, unless a lead-in precedes it
            downbeat_s, downbeat_confidence, rule = find_downbeat(
                data, sample_rate, float(source.tempo_bpm), beats_per_bar=spec.beats_per_bar
            )
        return float(source.tempo_bpm), downbeat_s, {
            "estimated": False,
            "tempo_confidence": 1.0,
            "downbeat_confidence": round(downbeat_confidence, 3),
            "downbeat_rule": rule,
            "low_confidence": is_low_confidence(1.0, downbeat_confidence),
        }
    estimate = estimate_tempo(
        data, sample_rate, source.beats, beats_per_bar=spec.beats_per_bar, downbeat_s=_inside(source.downbeat_s, data,
                                                                                           sample_rate)
    )
    info: dict[str, Any] = {
        "estimated": True,
        "tempo_confidence": round(estimate.tempo_confidence, 3),
        "pulse_strength": round(estimate.confidence, 3),
        "downbeat_confidence": round(estimate.downbeat_confidence, 3),
        "downbeat_rule": estimate.downbeat_rule,
        "low_confidence": estimate.low_confidence,
        "estimated_tempo_bpm": estimate.bpm,
        "tempo_snapped": estimate.snapped,
        "tempo_whole_bars": estimate.whole_bars,
    }
    downbeat_s = estimate.downbeat_s
    if estimate.confidence < MIN_TEMPO_CONFIDENCE:
        # no pulse to follow: take the render as made for the tempo it was asked for
        tempo = estimate.hinted_bpm if estimate.hinted_bpm is not None else float(spec.tempo_bpm)
        info["no_pulse"] = True
        info["low_confidence"] = True
        return float(np.clip(tempo, TEMPO_MIN_BPM, TEMPO_MAX_BPM)), 0.0, info
    return float(np.clip(estimate.bpm, TEMPO_MIN_BPM, TEMPO_MAX_BPM)), downbeat_s, info


def _inside(downbeat_s: float | None, data: np.ndarray, sample_rate: int) -> float | None:
    """A given downbeat, when it falls inside the audio (one past its end is no downbeat of it)."""
    if downbeat_s is None or downbeat_s >= data.shape[1] / sample_rate:
        return None
    return float(downbeat_s)


class _Stopwatch:
    """Seconds spent per stage, kept in ``info["timings_s"]`` (the benchmark reads them)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.timings: dict[str, float] = info.setdefault("timings_s", {})
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self._last
        self._last = now


@dataclass(frozen=True)
class ConformSize:
    """What a conform makes and holds: ``output_frames`` of ``channels`` at the song's rate (at
    most: a one-shot's tidying only shortens it) and ``peak_bytes``, the most memory it holds at
    once, the render and the WAV file written from it included."""

    channels: int
    output_frames: int
    peak_bytes: int

    @property
    def wav_bytes(self) -> int:
        """Bytes of its 24-bit WAV file (headers aside)."""
        return memory.wav_bytes(self.channels, self.output_frames)


def conform_size(
    kind: Kind,
    channels: int,
    frames: int,
    sample_rate: int,
    spec: ConformSpec,
    source: SourceInfo = SourceInfo(),
    source_tempo_bpm: float | None = None,
) -> ConformSize:
    """What :func:`conform_audio` makes of ``frames`` of ``channels`` at ``sample_rate`` (the render)
    fitted to ``spec``, and the most memory it and writing its WAV file hold at once (:class:`ConformSize`).
    Nothing is computed on audio: the frames each step makes are worked out the way the steps work
    them out, and :mod:`.memory` adds up what is held at once.

    A loop's source tempo is ``source_tempo_bpm``, else ``source.tempo_bpm``, else a guess on the slow
    side of what estimating it may give (the stage charges the loop again once it knows the tempo).
    Raises :class:`TooLargeError` for a result over :data:`CONFORMED_MAX_SAMPLES` samples and
    :class:`RequestError` for a loop longer than :data:`DURATION_MAX_S`.
    """
    rate = spec.sample_rate
    resampled = int(round(frames * rate / sample_rate))
    shifted = spec.pitch_semitones != 0.0 or spec.key is not None  # a key may shift it
    if kind is Kind.LOOP:
        tempo = source_tempo_bpm or source.tempo_bpm
        analysed = 0
        if tempo is None:
            # to be estimated: assume it comes out on the slow side of what the estimator settles on
            # (a slower source is more of it to stretch): a quarter octave under the tempo its beats
            # imply, else the most it folds away from the song's (half an octave)
            analysed = min(frames, int(ANALYSIS_MAX_S * sample_rate))
            hinted = source.beats * 60.0 * sample_rate / frames if source.beats else None
            tempo = float(np.clip(hinted / 2**0.25 if hinted else spec.tempo_bpm / math.sqrt(2),
                                  TEMPO_MIN_BPM, TEMPO_MAX_BPM))
        plan = _loop_plan(frames, sample_rate, spec, source, tempo, source.downbeat_s or 0.0)
        steps = _loop_frames(plan, channels, frames, sample_rate, spec, analysed)
        return ConformSize(channels, plan.out_frames, memory.loop_peak_bytes(channels, steps))
    if kind is Kind.TEXTURE:
        output = (_bars_to_frames(spec.bars * spec.beats_per_bar, spec.tempo_bpm, rate) if spec.bars is not None
                  else resampled)
        _check_output(channels, output, spec, "bars" if spec.bars is not None else "duration_s")
        return ConformSize(channels, output, memory.texture_peak_bytes(channels, frames, resampled, output, shifted))
    _check_output(channels, resampled, spec, "duration_s")
    return ConformSize(channels, resampled, memory.one_shot_peak_bytes(channels, frames, resampled, shifted))


def conform_peak_bytes(
    kind: Kind,
    channels: int,
    frames: int,
    sample_rate: int,
    spec: ConformSpec,
    source: SourceInfo = SourceInfo(),
    source_tempo_bpm: float | None = None,
) -> int:
    """:attr:`ConformSize.peak_bytes` of :func:`conform_size`: the most memory conforming ``frames`` of
    ``channels`` at ``sample_rate`` to ``spec`` and writing its WAV file hold at once, in bytes."""
    return conform_size(kind, channels, frames, sample_rate, spec, source, source_tempo_bpm).peak_bytes


def _check_output(channels: int, frames: int, spec: ConformSpec, field: str) -> None:
    """Refuse a conformed file of more than :data:`CONFORMED_MAX_SAMPLES` samples (frames × channels)."""
    if channels * frames > CONFORMED_MAX_SAMPLES:
        rate = spec.sample_rate
        longest = CONFORMED_MAX_SAMPLES / channels / rate
        raise TooLargeError(
            field, f"{frames / rate:.1f} s of {channels} channels at {rate} Hz ({channels * frames} samples)",
            f"at most {CONFORMED_MAX_SAMPLES} samples (frames × channels) in one file: {longest:.1f} s of "
            f"{channels} channels at {rate} Hz",
        )


def _loop_frames(plan: _LoopPlan, channels: int, frames_in: int, sample_rate: int, spec: ConformSpec,
                 analysed: int = 0) -> memory.LoopFrames:
    """The frames each step of a loop's conform makes (for :mod:`.memory`); refuses a loop over
    :data:`CONFORMED_MAX_SAMPLES` samples."""
    rate = spec.sample_rate
    _check_output(channels, plan.out_frames, spec, "bars")
    extended_out = int(round(plan.extended_frames * rate / sample_rate))
    stretched = plan.factor != 1.0 or spec.pitch_semitones != 0.0 or spec.key is not None
    # a pitch shift is the stretcher's result resampled by the pitch ratio: it makes that much more
    # first (with a key, charged for the highest shift onto it, on top of the user's own)
    highest = spec.pitch_semitones + (max(KEY_SHIFT_RANGE) if spec.key is not None else 0)
    ratio = 2.0 ** (max(0.0, highest) / 12.0) if spec.pitch_semitones != 0.0 or spec.key is not None else 0.0
    return memory.LoopFrames(
        input=frames_in,
        analysed=analysed,
        cycle=plan.cycle_frames,
        extended=plan.extended_frames,
        extended_out=extended_out,
        stretched=int(math.ceil(extended_out / plan.factor)) + 1 if stretched else 0,
        stream=plan.out_frames + int(round(LOOP_SEAM_FADE_S * rate)),
        output=plan.out_frames,
        rate=rate,
        shifted=int(math.ceil(extended_out * ratio / plan.factor)) + 1 if ratio else 0,
        input_rate=sample_rate,
    )


@dataclass(frozen=True)
class _LoopPlan:
    """How a loop is made, in frames: the render's own loop (``cycle_frames`` from ``downbeat``, in
    source frames) repeated over ``extended_frames`` source frames (the loop's ``out_beats`` and a
    ``roll`` before and after), stretched by ``factor`` into ``out_frames`` at the song's rate."""

    source_tempo: float
    downbeat: int
    cycle_beats: float
    cycle_frames: int
    out_beats: float
    out_frames: int
    factor: float
    max_offset_s: float
    roll: int
    extended_frames: int


def _loop_plan(frames_in: int, sample_rate: int, spec: ConformSpec, source: SourceInfo, source_tempo: float,
               downbeat_s: float) -> _LoopPlan:
    """The frames of a loop's conform (:class:`_LoopPlan`), worked out before any audio is made.

    Raises :class:`RequestError` for a loop longer than :data:`DURATION_MAX_S`.
    """
    beats_per_bar = spec.beats_per_bar
    beat_in = 60.0 / source_tempo * sample_rate  # source samples per beat
    downbeat = int(round(downbeat_s * sample_rate))
    # the render's own loop: the beats it was made to hold, else its whole bars from the downbeat
    available_beats = (frames_in - downbeat) / beat_in
    if source.beats is not None:
        cycle_beats = float(source.beats)
    elif available_beats >= 0.75 * beats_per_bar:
        cycle_beats = float(beats_per_bar * max(1, round(available_beats / beats_per_bar)))
    else:
        cycle_beats = float(max(1, round(available_beats)))
    cycle_frames = max(1, int(round(cycle_beats * beat_in)))
    if spec.bars is not None:
        out_beats = float(spec.bars) * beats_per_bar
    else:
        out_beats = float(beats_per_bar * max(1, round(cycle_beats / beats_per_bar)))
    out_frames = _bars_to_frames(out_beats, spec.tempo_bpm, spec.sample_rate)
    factor = float(spec.tempo_bpm) / source_tempo
    max_offset_s = min(MAX_OFFSET_S, MAX_OFFSET_BEATS * 60.0 / float(spec.tempo_bpm))
    # pre- and post-roll, in source samples, long enough in stretched time for the stretcher to
    # settle, for the timing search and for the wrap crossfade
    roll = int(math.ceil((max_offset_s + LOOP_SEAM_FADE_S + STRETCH_SETTLE_S) * factor * sample_rate)) + 1
    span = int(math.ceil(out_beats * beat_in))
    return _LoopPlan(source_tempo, downbeat, cycle_beats, cycle_frames, out_beats, out_frames, factor, max_offset_s,
                     roll, span + 2 * roll)


#: measure the source's bands (for the pre-echo limit), and its onset curve where measuring that holds
#: little (:func:`~.memory.onsets_beside`), in a worker thread while Rubber Band stretches it (all release
#: the GIL, so a second core takes the measuring off the wall time), and the render's key where nothing
#: before the stretch needed it (no key asked for, a warp mode other than "auto"); off, the same work runs
#: after the stretch, with the same results to the bit. The steps after the stretch split over two threads
#: of their own (:mod:`.threads`). The bands' memory does not grow with the audio
#: (:func:`~.memory.pre_echo_bytes`); the onset curve's does (a minute's spectrum at 48 kHz is 64 MiB, a
#: block of frames at 192 kHz 96 MiB), so past :data:`~.memory.ONSETS_BESIDE_MAX_BYTES` it stays after
#: the stretch.
OVERLAP_SOURCE_ANALYSIS = True

_T = TypeVar("_T")
_U = TypeVar("_U")


def _beside(work: Callable[[], _T], task: Callable[[], _U]) -> tuple[_T, _U]:
    """``(work(), task())``, ``task`` run in a worker thread while ``work`` runs in this one (one after the
    other when :data:`OVERLAP_SOURCE_ANALYSIS` is off). The two share no array either writes; an exception
    of either is raised here, once both have ended."""
    if not OVERLAP_SOURCE_ANALYSIS:
        return work(), task()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="conform-source") as pool:
        measured = pool.submit(task)
        return work(), measured.result()


class _KeyDetection:
    """The render's key (:func:`match_key`), detected once, where it costs least: :meth:`run` detects it (in a
    worker thread, beside the stretch), :meth:`value` gives it, detecting it first if nothing has;
    ``seconds``: how long that took."""

    def __init__(self, task: Callable[[], KeyMatch]) -> None:
        self._task = task
        self._value: KeyMatch | None = None
        self.seconds = 0.0

    def run(self) -> None:
        if self._value is None:
            started = time.perf_counter()
            self._value = self._task()
            self.seconds = time.perf_counter() - started

    def value(self) -> KeyMatch:
        self.run()
        assert self._value is not None
        return self._value


def _conform_loop(
    data: np.ndarray, sample_rate: int, spec: ConformSpec, source: SourceInfo, options: StretchOptions,
    reserve: Callable[[int], None] | None = None, key: _KeyDetection | None = None,
) -> _Result:
    rate = spec.sample_rate
    timings: dict[str, Any] = {}
    watch = _Stopwatch(timings)
    source_tempo, downbeat_s, info = _source_tempo(data, sample_rate, spec, source)
    info.update(timings)
    watch.lap("tempo")
    plan = _loop_plan(data.shape[1], sample_rate, spec, source, source_tempo, downbeat_s)
    sizes = _loop_frames(plan, data.shape[0], data.shape[1], sample_rate, spec)
    peak = memory.loop_peak_bytes(data.shape[0], sizes)
    if reserve is not None:
        reserve(peak)
    downbeat, cycle_beats, cycle_frames = plan.downbeat, plan.cycle_beats, plan.cycle_frames
    out_beats, out_frames, factor, roll = plan.out_beats, plan.out_frames, plan.factor, plan.roll
    semitones = float(spec.pitch_semitones)
    max_offset_s = plan.max_offset_s
    cycle = seams.circular_cycle(
        data,
        downbeat,
        cycle_frames,
        int(round(SOURCE_SEAM_FADE_S * sample_rate)),
        int(round(SOURCE_SEAM_FADE_IN_S * sample_rate)),
    )
    extended = seams.wrapped(cycle, -roll, plan.extended_frames)
    del cycle
    watch.lap("seams")
    extended = resample(extended, sample_rate, rate, threads.each)
    watch.lap("resample")
    roll_out = roll * rate / sample_rate  # the loop's start in `extended`, at the output rate
    info.update(
        {
            "source_tempo_bpm": source_tempo,
            "downbeat_s": downbeat / sample_rate,
            "source_beats": cycle_beats,
            "stretch_factor": factor,
        }
    )
    seam_fade = int(round(LOOP_SEAM_FADE_S * rate))
    if factor == 1.0 and semitones == 0.0:
        info["alignment"] = "not stretched"
        loop = seams.cut_loop(extended, int(round(roll_out)), out_frames, seam_fade)
    else:
        # each array from here on is as long as the song's loop: each goes as soon as it is used
        if options.align:
            level_block = max(1, int(round(PRE_ECHO_BLOCK_S * rate)))
            # the source's bands, moved by the pitch ratio as the stretch moves them, measured while it is
            # stretched (all only read `extended`), and its onset curve with them where measuring that holds
            # little (memory.onsets_beside: the rule the memory estimate follows), else after the stretch
            onsets_beside = memory.onsets_beside(sizes.extended_out, rate)

            def measure_source() -> tuple[np.ndarray, tuple[np.ndarray, int] | None]:
                levels = band_levels(extended, rate, level_block, 2.0 ** (semitones / 12.0))
                flux = transient_flux(extended, rate) if onsets_beside else None
                if key is not None:
                    key.run()  # the render's key, when nothing before the stretch needed it
                return levels, flux

            stretched, (source_levels, source_onsets) = _beside(
                functools.partial(stretch, extended, rate, factor, semitones, options), measure_source)
        else:
            stretched = stretch(extended, rate, factor, semitones, options)
        watch.lap("stretch")
        method = pitch_method(options.pitch, looped=True)
        finer, transient_mode, window_name = engine_for(options, factor, semitones, method)
        info["stretch_engine"] = "rubberband-r3" if finer else "rubberband-r2"
        window = window_flag(window_name, rubberband_semitones(semitones, method))
        info["fft_window"] = {False: "short", None: "standard", True: "long"}[window]
        if semitones != 0.0:
            info["pitch_method"] = method
        info["transient_mode"] = transient_mode
        if options.align:
            expected, actual, hop = onset_curves(extended if source_onsets is None else source_onsets, stretched,
                                                 rate, factor)
            del extended

            def place(fallback: float | None) -> tuple[np.ndarray, Retiming]:
                return retime(
                    stretched,
                    expected,
                    actual,
                    hop,
                    loop_start=roll_out / factor,
                    beat=60.0 / float(spec.tempo_bpm) * rate,
                    loop_frames=out_frames,
                    pre_frames=seam_fade,
                    max_lag=int(round(max_offset_s * rate)),
                    fallback_lag=fallback,
                    sample_rate=rate,
                )

            stream, placed = place(None)
            info["alignment"] = "onsets"
            if placed.strength < MIN_SEGMENT_STRENGTH or placed.hits == 0:
                # too few onsets to follow: the stretcher's own timing, measured on a click probe
                stream, placed = place(probe_offset(rate, factor, semitones, options))
                info["alignment"] = "probe"
            info["alignment_strength"] = round(placed.strength, 3)
            info["alignment_offset_ms"] = round(1000.0 * placed.global_lag / rate, 3)
            info["alignment_lags_ms"] = [round(1000.0 * lag / rate, 3) for lag in placed.lags]
            del stretched
            info["pre_echo_limited"] = round(
                limit_pre_echo(stream, source_levels, level_block, loop_start=roll_out, factor=factor,
                               pre_frames=seam_fade, sample_rate=rate), 4)
            watch.lap("align")
            loop = seams.cut_loop(stream, seam_fade, out_frames, seam_fade)
            del stream
        else:
            del extended
            info["alignment"] = "none"
            loop = seams.cut_loop(stretched, int(round(roll_out / factor)), out_frames, seam_fade)
    watch.lap("seams")
    return loop, Kind.LOOP, out_beats, (0, out_frames), info
