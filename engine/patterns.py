"""Drum patterns, and arranging one-shots on them into loops that are exact to the sample.

A :class:`Pattern` lists hits (part name, position in beats, velocity) over a cycle of
``length_beats``. :func:`arrange` places given one-shot audio on those positions at a tempo: every
hit starts at ``round(beat * 60 * sample_rate / tempo_bpm)`` and the loop is
``round(total_beats * 60 * sample_rate / tempo_bpm)`` samples long, so the loop is on the grid by
construction (no tempo estimation, no stretching). Tails that run past the end wrap to the start,
so the loop repeats seamlessly; a closed hat chokes a ringing open hat, as on a drum machine.

Nothing here knows about models: the default model and Dance2Music both hand it audio arrays.
Audio is float32 ``[channels, samples]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .errors import RequestError
from .request import BARS_MAX, BARS_MIN, BEATS_PER_BAR_RANGE, SAMPLE_RATE_RANGE, TEMPO_MAX_BPM, TEMPO_MIN_BPM

#: fade applied where a choke cuts a ringing sound off (seconds)
CHOKE_FADE_S = 0.004


@dataclass(frozen=True)
class Hit:
    """One hit: ``part`` at ``beat`` (from the start of the pattern cycle) with ``velocity`` (0–1),
    ``semitones`` above the one-shot's own pitch (a melodic part; played as a sampler plays a note:
    resampled, so a higher note is also shorter)."""

    part: str
    beat: float
    velocity: float = 1.0
    semitones: float = 0.0


@dataclass(frozen=True)
class Pattern:
    """A named drum pattern: hits over a cycle of ``length_beats`` beats.

    ``chokes`` maps a part to the parts its hits cut off (``{"closed hat": ("open hat",)}``).
    """

    name: str
    length_beats: float
    hits: tuple[Hit, ...]
    chokes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts this pattern plays, in order of first appearance."""
        seen: dict[str, None] = {}
        for hit in self.hits:
            seen.setdefault(hit.part, None)
        return tuple(seen)


def steps(part: str, grid: str, step_beats: float = 0.25, accent: float = 1.0, soft: float = 0.6) -> list[Hit]:
    """Hits from a step string: ``X`` a full hit, ``x`` a soft one, anything else a rest.

    ``"X...x..."`` with ``step_beats=0.25`` is a hit on beat 0 and a soft one on beat 1.
    """
    hits = []
    for i, symbol in enumerate(grid.replace(" ", "").replace("|", "")):
        if symbol == "X":
            hits.append(Hit(part, i * step_beats, accent))
        elif symbol == "x":
            hits.append(Hit(part, i * step_beats, soft))
    return hits


_HAT_CHOKE = {"closed hat": ("open hat",)}


def _pattern(name: str, *groups: list[Hit], length_beats: float = 4.0) -> Pattern:
    hits = tuple(sorted((h for g in groups for h in g), key=lambda h: (h.beat, h.part)))
    return Pattern(name, length_beats, hits, _HAT_CHOKE)


def _trap_hats() -> list[Hit]:
    """Eighth-note hats with a sixteenth roll, a triplet roll and a thirty-second roll."""
    hits = steps("closed hat", "X.x.X.x.X.x.XxXx", accent=0.8, soft=0.5)
    hits += [Hit("closed hat", 3.0 + k / 3, 0.6) for k in range(3)]  # triplet roll on beat 4
    hits = [h for h in hits if not 3.0 <= h.beat < 3.5 or h.beat * 3 % 1 == 0]
    hits += [Hit("closed hat", 3.5 + k / 8, 0.45 + 0.05 * k) for k in range(4)]  # 1/32 roll
    return sorted({(h.beat, h.part): h for h in hits}.values(), key=lambda h: h.beat)


PATTERNS: dict[str, Pattern] = {
    p.name: p
    for p in (
        _pattern(
            "four on the floor",
            steps("kick", "X...X...X...X..."),
            steps("clap", "....X.......X..."),
            steps("closed hat", "x.x.x.x.x.x.x.x.", soft=0.45),
            steps("open hat", "..X...X...X...X.", accent=0.7),
        ),
        _pattern(
            "breakbeat",
            steps("kick", "X.X.......X....."),
            steps("snare", "....X..x.x..X..x", soft=0.35),
            steps("closed hat", "X.X.X.X.X.X.X.X.", accent=0.7),
            steps("open hat", "..............X.", accent=0.6),
        ),
        _pattern(
            "trap",
            steps("kick", "X......X..X....."),
            steps("clap", "........X......."),
            steps("snare", "........X......."),
            _trap_hats(),
            steps("perc", "...........x....", soft=0.5),
        ),
        _pattern(
            "boom bap",
            steps("kick", "X.....x...X....."),
            steps("snare", "....X.......X..."),
            steps("closed hat", "X.X.X.X.X.X.X.X.", accent=0.65),
            steps("perc", ".......x.......x", soft=0.4),
        ),
        _pattern(
            "hats",
            steps("closed hat", "XxxxXxxxXxxxXx..", accent=0.85, soft=0.45),
            steps("open hat", "..............X.", accent=0.7),
        ),
    )
}

#: melodic loops of one pitched part, by the class they play: a bass line (root, octave, fifth and
#: the minor seventh under the root) and a minor-seventh pluck arpeggio in eighths
MELODIC_PATTERNS: dict[str, Pattern] = {
    "bass": Pattern("bass line", 4.0, tuple(
        Hit("bass", beat, velocity, semitones)
        for beat, velocity, semitones in ((0.0, 1.0, 0), (0.75, 0.7, 0), (1.5, 0.8, 12), (2.0, 0.9, 0),
                                          (2.75, 0.7, 7), (3.25, 0.7, 10), (3.5, 0.8, -2))
    ), {"bass": ("bass",)}),  # one note at a time, as a bass is played
    "pluck": Pattern("pluck arpeggio", 4.0, tuple(
        Hit("pluck", 0.5 * k, 0.9 if k % 2 == 0 else 0.65, semitones)
        for k, semitones in enumerate((0, 3, 7, 10, 12, 10, 7, 3))
    )),
}

#: prompt phrases (lower case) that pick a pattern, longest first
_PATTERN_WORDS: tuple[tuple[str, str], ...] = (
    ("four on the floor", "four on the floor"), ("four-on-the-floor", "four on the floor"),
    ("4 on the floor", "four on the floor"), ("4x4", "four on the floor"), ("house", "four on the floor"),
    ("techno", "four on the floor"), ("disco", "four on the floor"), ("edm", "four on the floor"),
    ("breakbeat", "breakbeat"), ("breakbeats", "breakbeat"), ("breaks", "breakbeat"), ("break", "breakbeat"),
    ("jungle", "breakbeat"), ("dnb", "breakbeat"), ("drum and bass", "breakbeat"), ("amen", "breakbeat"),
    ("trap", "trap"), ("drill", "trap"), ("boom bap", "boom bap"), ("boombap", "boom bap"),
    ("hip hop", "boom bap"), ("hip-hop", "boom bap"), ("hiphop", "boom bap"),
    ("hats", "hats"), ("hihats", "hats"), ("hi-hats", "hats"), ("hi hats", "hats"), ("hat loop", "hats"),
    ("hihat loop", "hats"),
)


def pattern_for_prompt(prompt: str, seed: int) -> Pattern:
    """The pattern a prompt names (whole words: "house", "breakbeat", "trap", "hats", ...), else one
    chosen by ``seed`` among :data:`PATTERNS`."""
    text = " " + " ".join(re.findall(r"[a-z0-9\-]+", prompt.lower())) + " "
    for phrase, name in _PATTERN_WORDS:
        if f" {phrase} " in text:
            return PATTERNS[name]
    names = sorted(PATTERNS)
    return PATTERNS[names[seed % len(names)]]


def beat_to_sample(beat: float, tempo_bpm: float, sample_rate: int) -> int:
    """The sample frame where ``beat`` (from 0) falls at ``tempo_bpm``."""
    return int(round(beat * 60.0 * sample_rate / tempo_bpm))


def _check(tempo_bpm: float, bars: float, beats_per_bar: int, sample_rate: int) -> None:
    if not TEMPO_MIN_BPM <= tempo_bpm <= TEMPO_MAX_BPM:
        raise RequestError("tempo_bpm", tempo_bpm, f"{TEMPO_MIN_BPM:g}–{TEMPO_MAX_BPM:g} BPM")
    if not BARS_MIN <= bars <= BARS_MAX:
        raise RequestError("bars", bars, f"{BARS_MIN:g}–{BARS_MAX:g} bars")
    if not BEATS_PER_BAR_RANGE[0] <= beats_per_bar <= BEATS_PER_BAR_RANGE[1]:
        raise RequestError("beats_per_bar", beats_per_bar, f"{BEATS_PER_BAR_RANGE[0]}–{BEATS_PER_BAR_RANGE[1]}")
    if not SAMPLE_RATE_RANGE[0] <= sample_rate <= SAMPLE_RATE_RANGE[1]:
        raise RequestError("sample_rate", sample_rate, f"{SAMPLE_RATE_RANGE[0]}–{SAMPLE_RATE_RANGE[1]} Hz")


def hit_times(pattern: Pattern, bars: float, beats_per_bar: int = 4) -> list[tuple[float, Hit]]:
    """Every hit of the loop as ``(beat from loop start, hit)``, sorted by beat.

    Each bar starts the pattern afresh; inside a bar the cycle repeats (a 4-beat pattern in 7/4 plays
    once, then its first three beats); hits past the end of the last (possibly partial) bar are left out.
    """
    total_beats = bars * beats_per_bar
    events = []
    for bar in range(math.ceil(bars)):
        cycle_start = 0.0
        while cycle_start < beats_per_bar:
            for hit in pattern.hits:
                in_bar = cycle_start + hit.beat
                beat = bar * beats_per_bar + in_bar
                if in_bar < beats_per_bar and beat < total_beats - 1e-9:
                    events.append((beat, hit))
            cycle_start += pattern.length_beats
    events.sort(key=lambda e: (e[0], e[1].part))
    return events


def loop_length_samples(tempo_bpm: float, bars: float, beats_per_bar: int, sample_rate: int) -> int:
    """Samples in ``bars`` bars at ``tempo_bpm`` (rounded once, for the whole loop)."""
    return beat_to_sample(bars * beats_per_bar, tempo_bpm, sample_rate)


def arrange(
    parts: Mapping[str, np.ndarray],
    pattern: Pattern,
    tempo_bpm: float,
    bars: float,
    sample_rate: int,
    beats_per_bar: int = 4,
    wrap_tails: bool = True,
) -> np.ndarray:
    """A loop ``[channels, loop_length_samples(...)]`` with each part's one-shot on the pattern's hits.

    ``parts`` maps part names to one-shots ``[channels, samples]`` (or ``[samples]``) at
    ``sample_rate``; all must have the same channel count. Hits of parts not given are skipped.
    Raises :class:`RequestError` for a tempo, bar count, meter or rate out of range, or when no part
    of the pattern is given.
    """
    _check(tempo_bpm, bars, beats_per_bar, sample_rate)
    length = loop_length_samples(tempo_bpm, bars, beats_per_bar, sample_rate)
    return _place(parts, pattern, bars, beats_per_bar, length,
                  lambda beat: beat_to_sample(beat, tempo_bpm, sample_rate), wrap_tails, _choke_fade(sample_rate))


def arrange_on_grid(
    parts: Mapping[str, np.ndarray],
    pattern: Pattern,
    beat_samples: np.ndarray,
    sample_rate: int,
    beats_per_bar: int = 4,
    length: int | None = None,
) -> np.ndarray:
    """The pattern played on a grid whose tempo may change: beat ``k`` starts at ``beat_samples[k]``.

    ``beat_samples`` holds the sample frame of every beat, ascending, the last entry being where the
    last beat ends (so ``len - 1`` beats are played); a hit between beats is placed in proportion.
    Bars start at beats ``0, beats_per_bar, ...``. Tails ring on past the last beat; the result is
    ``length`` samples long (default: the end of the last beat plus the longest tail). Raises
    :class:`RequestError` for a grid that is not ascending or holds fewer than two entries.
    """
    grid = np.asarray(beat_samples, dtype=np.float64).ravel()
    if len(grid) < 2 or not np.all(np.isfinite(grid)) or np.any(np.diff(grid) <= 0) or grid[0] < 0:
        raise RequestError("beat_samples", f"{len(grid)} positions", "two or more ascending sample positions ≥ 0")
    if not BEATS_PER_BAR_RANGE[0] <= beats_per_bar <= BEATS_PER_BAR_RANGE[1]:
        raise RequestError("beats_per_bar", beats_per_bar, f"{BEATS_PER_BAR_RANGE[0]}–{BEATS_PER_BAR_RANGE[1]}")
    beats = len(grid) - 1
    longest = max((np.atleast_2d(a).shape[-1] for a in parts.values()), default=0)
    total = int(length) if length is not None else int(math.ceil(grid[-1])) + longest
    index = np.arange(len(grid), dtype=np.float64)
    return _place(parts, pattern, beats / beats_per_bar, beats_per_bar, total,
                  lambda beat: int(round(float(np.interp(beat, index, grid)))), False, _choke_fade(sample_rate))


def repitch(shot: np.ndarray, semitones: float) -> np.ndarray:
    """``shot`` ``[channels, samples]`` played ``semitones`` higher, as a sampler plays a note: read
    faster (shorter) or slower (longer), by linear interpolation between samples."""
    if semitones == 0:
        return shot
    ratio = 2.0 ** (semitones / 12.0)
    frames = shot.shape[1]
    positions = np.arange(int(np.floor((frames - 1) / ratio)) + 1) * ratio
    return np.stack([np.interp(positions, np.arange(frames), row) for row in shot]).astype(np.float32)


def _choke_fade(sample_rate: int) -> int:
    return max(1, int(round(CHOKE_FADE_S * sample_rate)))


def _place(
    parts: Mapping[str, np.ndarray],
    pattern: Pattern,
    bars: float,
    beats_per_bar: int,
    length: int,
    position: Callable[[float], int],
    wrap_tails: bool,
    choke_fade: int,
) -> np.ndarray:
    """Every hit of ``bars`` bars of ``pattern`` at ``position(beat)``, in ``length`` samples;
    ``choke_fade`` samples of fade where a choke cuts a sound."""
    shots = {name: np.atleast_2d(np.asarray(audio, dtype=np.float32)) for name, audio in parts.items()}
    playable = [p for p in pattern.parts if p in shots]
    if not playable:
        raise RequestError("parts", sorted(shots), f"audio for at least one of: {', '.join(pattern.parts)}")
    channels = {shots[p].shape[0] for p in playable}
    if len(channels) != 1:
        raise RequestError("parts", f"channel counts {sorted(channels)}", "one-shots with the same channel count")
    n_channels = channels.pop()
    out = np.zeros((n_channels, length), dtype=np.float32)
    events = [(position(beat), hit) for beat, hit in hit_times(pattern, bars, beats_per_bar)]
    events = [(pos, hit) for pos, hit in events if hit.part in shots and pos < length]
    notes: dict[tuple[str, float], np.ndarray] = {}
    for pos, hit in events:
        key = (hit.part, hit.semitones)
        if key not in notes:
            notes[key] = repitch(shots[hit.part], hit.semitones)
        shot = notes[key] * np.float32(hit.velocity)
        # a later hit of a choking part cuts this sound (looking round the loop end when wrapping)
        choked_by = [part for part, victims in pattern.chokes.items() if hit.part in victims]
        cut = shot.shape[1]
        if choked_by:
            later = [p - pos for p, h in events if h.part in choked_by and p > pos]
            if wrap_tails:
                later += [p + length - pos for p, h in events if h.part in choked_by and p <= pos]
            if later:
                cut = min(cut, min(later))
        shot = shot[:, :cut].copy()
        if cut < notes[key].shape[1]:
            fade = min(choke_fade, shot.shape[1])
            shot[:, shot.shape[1] - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        end = pos + shot.shape[1]
        if end <= length:
            out[:, pos:end] += shot
        else:
            head = length - pos
            out[:, pos:] += shot[:, :head]
            if wrap_tails:
                rest = shot[:, head:]
                # a tail longer than the loop wraps more than once
                for start in range(0, rest.shape[1], length):
                    piece = rest[:, start : start + length]
                    out[:, : piece.shape[1]] += piece
    return out
