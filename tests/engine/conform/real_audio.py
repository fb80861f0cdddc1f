"""Real recordings for the conform tests and ``bench/bench_real_loops.py``, and how they are measured.

- Recorded loops from Debian's ``sonic-pi-samples``, with the tempo, beats and downbeat established by
  hand in ``tests/data/real_loops.json`` (the reasoning is written there, loop by loop).
- Patterns played with human timing from the real drum one-shots of Debian's ``hydrogen-drumkits``
  (the Colombo acoustic kit): the hits' times and the downbeat are known because they are written here.
- Where the onsets are, by librosa's onset detector (not the engine's): a conformed loop's onsets
  against the source's own, mapped onto the song's grid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "real_loops.json"
HYDROGEN_KIT = Path("/usr/share/hydrogen/data/drumkits/ColomboAcousticDrumkit")
KIT_FILES = {
    "kick": "bassdrum-4mics-br-stereo-normal3.flac",
    "snare": "snare-opaque-normal-mic-normal_shot2.flac",
    "hat": "hihat-closed-1.flac",
}
#: librosa's onset detector at 1.45 ms frames (44.1 kHz); its own error is measured by
#: :func:`detector_error_ms` on hits placed to the sample
ONSET_HOP = 64
ONSET_FFT = 1024
#: a reference onset this far from every conformed one counts as missed
MATCH_WINDOW_S = 0.03
#: onsets under this share of a loop's strongest are left out (ghost notes and ringing, which a
#: detector finds in one rendering and not in another)
ONSET_FLOOR = 0.15
#: the three song tempi each loop is conformed to, relative to its own
TEMPO_RATIOS = (0.85, 1.10, 1.30)


@dataclass(frozen=True)
class RealLoop:
    """A recorded loop and what was established about it by hand (``why``)."""

    name: str
    audio: np.ndarray
    sample_rate: int
    tempo_bpm: float
    beats: float
    downbeat_s: float
    why: str


def real_loops_available() -> bool:
    """Whether Debian's sonic-pi-samples are installed (scripts/test.sh installs them)."""
    spec = json.loads(DATA_FILE.read_text())
    return all((Path(spec["directory"]) / entry["file"]).is_file() for entry in spec["loops"])


def real_loops() -> list[RealLoop]:
    """The loops of ``tests/data/real_loops.json``, read as float32 ``[channels, samples]``."""
    spec = json.loads(DATA_FILE.read_text())
    loops = []
    for entry in spec["loops"]:
        audio, rate = soundfile.read(Path(spec["directory"]) / entry["file"], dtype="float32", always_2d=True)
        loops.append(RealLoop(entry["name"], np.ascontiguousarray(audio.T), int(rate), float(entry["tempo_bpm"]),
                              float(entry["beats"]), float(entry["downbeat_s"]), entry["why"]))
    return loops


def hydrogen_available() -> bool:
    """Whether Debian's hydrogen-drumkits are installed (scripts/test.sh installs them)."""
    return all((HYDROGEN_KIT / name).is_file() for name in KIT_FILES.values())


def _kit(sample_rate: int) -> dict[str, np.ndarray]:
    kit = {}
    for part, name in KIT_FILES.items():
        audio, rate = soundfile.read(HYDROGEN_KIT / name, dtype="float32", always_2d=True)
        if rate != sample_rate:
            raise ValueError(f"the kit's {name} is at {rate} Hz; patterns are played at {sample_rate} Hz only")
        kit[part] = audio.T
    return kit


@dataclass(frozen=True)
class PlayedPattern:
    """A drum pattern played from real one-shots: ``hits_s`` are the true onset times (each sample's
    first sample), ``downbeat_s`` the first downbeat, ``beats`` the beats from there to the end."""

    audio: np.ndarray
    sample_rate: int
    tempo_bpm: float
    beats: float
    downbeat_s: float
    hits_s: np.ndarray


def played_pattern(
    sample_rate: int, tempo_bpm: float, bars: int, *, seed: int, jitter_ms: float = 4.0, lead_in: str = "none"
) -> PlayedPattern:
    """Kick on 1 and the and of 3, snare on 2 and 4, closed hats on the eighths, each hit moved by a
    drummer's timing (Gaussian, ``jitter_ms``, at most twice that; the first downbeat stays at its
    place) and played at a velocity from 0.6 to 1.

    ``lead_in``: ``"none"`` (the file starts on the downbeat's kick), ``"silence"`` (40 ms of silence
    first) or ``"pickup"`` (a beat of snare and hats before the downbeat). Stereo, the kit's own image.
    """
    kit = _kit(sample_rate)
    rng = np.random.default_rng(seed)
    beat_s = 60.0 / tempo_bpm
    lead_s = {"none": 0.0, "silence": 0.04, "pickup": beat_s}[lead_in]
    beats = 4 * bars
    frames = int(round((lead_s + beats * beat_s) * sample_rate))
    audio = np.zeros((2, frames), np.float32)
    events: list[tuple[float, str]] = []
    if lead_in == "pickup":
        events += [(-beat_s, "snare"), (-beat_s, "hat"), (-beat_s / 2, "snare"), (-beat_s / 2, "hat")]
    for bar in range(bars):
        for step in range(8):
            position = (bar * 4 + step / 2) * beat_s
            events.append((position, "hat"))
            if step in (0, 5):
                events.append((position, "kick"))
            if step in (2, 6):
                events.append((position, "snare"))
    hits = []
    for position, part in events:
        moved = position
        if position != 0.0:
            moved += float(np.clip(rng.normal(0.0, jitter_ms), -2 * jitter_ms, 2 * jitter_ms)) / 1000.0
        start = int(round((lead_s + moved) * sample_rate))
        sound = kit[part] * rng.uniform(0.6, 1.0) * (0.5 if part == "hat" else 0.9)
        stop = min(frames, start + sound.shape[1])
        if 0 <= start < frames:
            audio[:, start:stop] += sound[:, : stop - start]
            hits.append(start / sample_rate)
    peak = float(np.abs(audio).max())
    audio *= 0.9 / peak
    return PlayedPattern(audio, sample_rate, tempo_bpm, float(beats), lead_s, np.unique(np.round(hits, 6)))


def detect_onsets(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """librosa's onsets of ``[channels, samples]`` audio: times (s) and strengths."""
    import librosa

    mono = np.asarray(audio, np.float32).mean(axis=0)
    envelope = librosa.onset.onset_strength(y=mono, sr=sample_rate, hop_length=ONSET_HOP, n_fft=ONSET_FFT)
    frames = librosa.onset.onset_detect(onset_envelope=envelope, sr=sample_rate, hop_length=ONSET_HOP,
                                        backtrack=False, units="frames")
    return frames * ONSET_HOP / sample_rate, envelope[frames]


def _onsets_of_cycle(cycle: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onsets of a loop as it plays round (its middle of three plays: each hit has what precedes it),
    at least :data:`ONSET_FLOOR` of the strongest, in seconds from the loop's start."""
    length_s = cycle.shape[1] / sample_rate
    times, strengths = detect_onsets(np.tile(cycle, (1, 3)), sample_rate)
    inside = (times >= length_s - 0.5 * MATCH_WINDOW_S) & (times < 2 * length_s - 0.5 * MATCH_WINDOW_S)
    times, strengths = times[inside] - length_s, strengths[inside]
    return times[strengths >= ONSET_FLOOR * strengths.max()] if len(strengths) else times


@dataclass(frozen=True)
class GridOffsets:
    """How far (ms, signed: later is positive) each of the source's onsets, mapped onto the song's
    grid, landed in the conformed loop; ``downbeat_ms`` is the first downbeat's; ``missed`` counts
    reference onsets with no conformed onset within :data:`MATCH_WINDOW_S`; ``matched`` holds the index
    of the reference onset each offset belongs to (to pair two measurements of the same source)."""

    offsets_ms: np.ndarray
    downbeat_ms: float
    missed: int
    matched: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def median_ms(self) -> float:
        return float(np.median(self.offsets_ms)) if len(self.offsets_ms) else float("nan")

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(np.abs(self.offsets_ms), 95)) if len(self.offsets_ms) else float("nan")


def grid_offsets(
    source: np.ndarray, sample_rate: int, tempo_bpm: float, beats: float, downbeat_s: float,
    conformed: np.ndarray, conformed_rate: int, target_bpm: float,
) -> GridOffsets:
    """Where the conformed loop's hits are against the song's grid.

    The reference is the source's own loop (``beats`` at ``tempo_bpm`` from ``downbeat_s``, the truth)
    and its onsets, each mapped to ``time * tempo_bpm / target_bpm`` from the conformed loop's start;
    the conformed loop repeats as many times as it holds the source loop. Both are measured the same
    way (:func:`detect_onsets`, looping), so the detector's own delay cancels.
    """
    cycle = _cycle(source, sample_rate, tempo_bpm, beats, downbeat_s)
    reference = _onsets_of_cycle(cycle, sample_rate) * tempo_bpm / target_bpm
    out_s = conformed.shape[1] / conformed_rate
    cycle_out_s = beats * 60.0 / target_bpm
    repeats = max(1, int(round(out_s / cycle_out_s)))
    reference = np.concatenate([reference + k * cycle_out_s for k in range(repeats)])
    measured = _onsets_of_cycle(conformed, conformed_rate)
    offsets, matched, missed = [], [], 0
    downbeat_ms = float("nan")
    for index, time in enumerate(reference):
        if not len(measured):
            missed += 1
            continue
        # the loop plays round: an onset just before its end is one just before its start
        distance = (measured - time + out_s / 2) % out_s - out_s / 2
        nearest = int(np.argmin(np.abs(distance)))
        if abs(distance[nearest]) > MATCH_WINDOW_S:
            missed += 1
            continue
        offsets.append(1000.0 * distance[nearest])
        matched.append(index)
        if index == 0:
            downbeat_ms = 1000.0 * float(distance[nearest])
    return GridOffsets(np.array(offsets), downbeat_ms, missed, np.array(matched, np.int64))


def _cycle(source: np.ndarray, sample_rate: int, tempo_bpm: float, beats: float, downbeat_s: float) -> np.ndarray:
    """The source's own loop: ``beats`` at ``tempo_bpm`` from ``downbeat_s`` (silence past its end)."""
    start = int(round(downbeat_s * sample_rate))
    cycle_frames = int(round(beats * 60.0 / tempo_bpm * sample_rate))
    cycle = np.zeros((source.shape[0], cycle_frames), np.float32)
    piece = source[:, start : start + cycle_frames]
    cycle[:, : piece.shape[1]] = piece
    return cycle


def varispeed_loop(source: np.ndarray, sample_rate: int, tempo_bpm: float, beats: float, downbeat_s: float,
                   target_bpm: float) -> np.ndarray:
    """The source's own loop played ``target_bpm / tempo_bpm`` times as fast (resampled, as a tape
    would play it: the pitch moves with the tempo), ``beats`` at ``target_bpm`` to the sample.

    Every hit is exactly where the song's grid puts it, so :func:`grid_offsets` of this loop is the
    onset detector's own error for that time map on that material: what a perfect conform would
    measure. The loop is resampled as it plays round (three plays, the middle one kept)."""
    from loopbridge.engine.audio import resample_by

    cycle = _cycle(source, sample_rate, tempo_bpm, beats, downbeat_s)
    ratio = target_bpm / tempo_bpm
    played = resample_by(np.tile(cycle, (1, 3)), ratio)
    frames = int(round(beats * 60.0 / target_bpm * sample_rate))
    first = int(round(cycle.shape[1] / ratio))
    out = np.zeros((cycle.shape[0], frames), np.float32)
    piece = played[:, first : first + frames]
    out[:, : piece.shape[1]] = piece
    return out


def conform_own_ms(measured: GridOffsets, perfect: GridOffsets) -> np.ndarray:
    """Per hit found in both, a conform's offset less the detector's own on the perfectly timed loop
    (:func:`varispeed_loop`) for the same source hit: the conform's own share of the offset, ms."""
    common, mine, theirs = np.intersect1d(measured.matched, perfect.matched, return_indices=True)
    del common
    return measured.offsets_ms[mine] - perfect.offsets_ms[theirs]


def detector_error_ms(sample_rate: int = 44100) -> np.ndarray:
    """librosa's own error (ms) on hits whose times are known to the sample: a played pattern at three
    tempi, each hit against its nearest detected onset, less the median (a constant delay cancels in
    :func:`grid_offsets`, which measures source and result alike; the spread is what remains)."""
    errors = []
    for seed, tempo in enumerate((92.0, 124.0, 168.0)):
        pattern = played_pattern(sample_rate, tempo, 2, seed=seed, jitter_ms=0.0)
        times, _ = detect_onsets(pattern.audio, sample_rate)
        for hit in pattern.hits_s:
            nearest = times[np.argmin(np.abs(times - hit))]
            if abs(nearest - hit) <= MATCH_WINDOW_S:
                errors.append(1000.0 * (nearest - hit))
    values = np.array(errors)
    return values - np.median(values)
