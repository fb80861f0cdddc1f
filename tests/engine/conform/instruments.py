"""Real sampled instruments playing music in known keys: MIDI written here, rendered by fluidsynth with
the FluidR3 General MIDI sound font (Debian's ``fluidsynth`` and ``fluid-soundfont-gm``; scripts/test.sh
installs them).

The key of each render is known by construction: the MIDI file holds only the notes of a cadence in
that key (a tonic chord first and last, dominant before it) under a melody of that key's scale. Drum
patterns are General MIDI channel 10: the sound font's recorded drum kits, with no pitch.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from loopbridge.engine.conform.key import MusicalKey
from loopbridge.engine.models.default.real_corpus import SOUND_FONT, fluidsynth_render

TICKS = 480  # per quarter note

#: General MIDI programs of the harmony, the melody and the bass, per arrangement
ARRANGEMENTS: dict[str, tuple[int, int, int]] = {
    "piano": (0, 0, 32),  # acoustic grand piano, acoustic bass
    "strings": (48, 73, 43),  # string ensemble, flute, contrabass
    "guitar": (24, 65, 33),  # nylon guitar, alto sax, finger bass
    "organ": (16, 11, 38),  # drawbar organ, vibraphone, synth bass
    "epiano": (4, 80, 34),  # electric piano, square lead, picked bass
    "pad": (89, 81, 39),  # warm pad, saw lead, synth bass 2
}
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor; the dominant chord takes the leading tone
#: chords as scale degrees (0 = tonic) per bar: I-IV-V-I / i-iv-V-i and I-vi-ii-V-I / i-VI-iv-V-i
PROGRESSIONS = {"cadence": (0, 3, 4, 0), "turnaround": (0, 5, 1, 4, 0)}
#: melody as scale degrees, eighth notes, one line per bar (it starts and ends on the tonic)
MELODY = ((0, 2, 4, 2, 0, 4, 2, 4), (3, 5, 3, 0, 3, 5, 7, 5), (4, 6, 8, 6, 4, 1, 3, 1), (2, 1, 0, 4, 2, 0, 0, 0))


def available() -> str | None:
    """None when fluidsynth and the sound font are here, else why not (for pytest.skip)."""
    if shutil.which("fluidsynth") is None:
        return "fluidsynth is not installed (Debian: fluidsynth)"
    if not SOUND_FONT.is_file():
        return f"{SOUND_FONT} is missing (Debian: fluid-soundfont-gm)"
    return None


def _var(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


@dataclass(frozen=True)
class Note:
    start: int  # ticks
    length: int
    pitch: int
    channel: int
    velocity: int = 90


def midi_file(notes: list[Note], programs: dict[int, int], tempo_bpm: float) -> bytes:
    """A format-0 Standard MIDI File: the tempo, each channel's program, the notes."""
    events: list[tuple[int, int, bytes]] = [(0, 0, b"\xff\x51\x03" + int(round(60e6 / tempo_bpm)).to_bytes(3, "big"))]
    for channel, program in programs.items():
        events.append((0, 1, bytes([0xC0 | channel, program])))
    for n in notes:
        events.append((n.start, 3, bytes([0x90 | n.channel, n.pitch, n.velocity])))
        events.append((n.start + n.length, 2, bytes([0x80 | n.channel, n.pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    track, now = b"", 0
    for tick, _, data in events:
        track += _var(tick - now) + data
        now = tick
    track += _var(TICKS) + b"\xff\x2f\x00"  # a beat of tail, then the end
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS) + b"MTrk" + struct.pack(">I", len(track)) + track


def _pitch(key: MusicalKey, degree: int, octave_c: int) -> int:
    scale = MINOR_SCALE if key.minor else MAJOR_SCALE
    return octave_c + key.tonic + 12 * (degree // 7) + scale[degree % 7]


def tonal_notes(key: MusicalKey, progression: str = "cadence", melody: bool = True, bars: int = 4) -> list[Note]:
    """A progression in ``key`` (channel 0 chords, channel 2 bass) with a melody (channel 1), 4/4."""
    bar = 4 * TICKS
    degrees = PROGRESSIONS[progression]
    notes: list[Note] = []
    for b in range(bars):
        root = degrees[b % len(degrees)] if b < bars - 1 else 0
        start = b * bar
        for i in (0, 2, 4):
            pitch = _pitch(key, root + i, 60)
            if key.minor and root == 4 and i == 2:
                pitch += 1  # the leading tone: V is a major chord in a minor key
            notes.append(Note(start, bar - 10, pitch, 0, 70))
        for beat in range(4):
            notes.append(Note(start + beat * TICKS, TICKS - 20, _pitch(key, root, 36), 2, 95))
        if melody:
            line = MELODY[b % len(MELODY)] if b < bars - 1 else MELODY[-1]
            for i, degree in enumerate(line):
                notes.append(Note(start + i * TICKS // 2, TICKS // 2 - 10, _pitch(key, degree, 72), 1, 85))
    return notes


#: General MIDI drum notes: kick, snare, closed hat, open hat, low tom, clap, ride
KICK, SNARE, HAT, OPEN_HAT, TOM, CLAP, RIDE = 36, 38, 42, 46, 45, 39, 51
DRUM_PATTERNS: dict[str, list[tuple[float, int]]] = {
    "four on the floor": [(b, KICK) for b in range(4)] + [(b + 0.5, OPEN_HAT) for b in range(4)]
    + [(1, CLAP), (3, CLAP)],
    "breakbeat": [(0, KICK), (1, SNARE), (1.75, SNARE), (2.5, KICK), (3, SNARE)] + [(b / 2, HAT) for b in range(8)],
    "toms": [(0, KICK), (1, TOM), (1.5, TOM), (2, KICK), (3, TOM), (3.25, TOM), (3.5, SNARE)],
    "ride": [(0, KICK), (2, SNARE)] + [(b / 2, RIDE) for b in range(8)],
}
#: General MIDI drum kits (programs on channel 10): standard, room, power, electronic, TR-808, jazz
DRUM_KITS = (0, 8, 16, 24, 25, 32)


def drum_notes(pattern: str, bars: int = 4) -> list[Note]:
    notes = []
    for b in range(bars):
        for beat, pitch in DRUM_PATTERNS[pattern]:
            notes.append(Note(int(round((b * 4 + beat) * TICKS)), TICKS // 4, pitch, 9, 100))
    return notes


def render(notes: list[Note], programs: dict[int, int], folder: Path, name: str, tempo_bpm: float = 120.0,
           sample_rate: int = 44100, bars: int = 4) -> tuple[np.ndarray, int]:
    """The notes played by fluidsynth: float32 ``[2, frames]`` stereo at ``sample_rate``, cut to ``bars``
    bars of 4/4 at ``tempo_bpm`` (the notes' release past the end is dropped, so loops are whole bars)."""
    midi = folder / f"{name}.mid"
    wav = folder / f"{name}.wav"
    midi.write_bytes(midi_file(notes, programs, tempo_bpm))
    fluidsynth_render(midi, wav, sample_rate, effects=True, timeout_s=120)
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    frames = int(round(bars * 4 * 60.0 / tempo_bpm * rate))
    audio = audio[:frames]
    if audio.shape[0] < frames:
        audio = np.pad(audio, ((0, frames - audio.shape[0]), (0, 0)))
    return np.ascontiguousarray(audio.T), rate


def tonal_loop(key: MusicalKey, arrangement: str, folder: Path, progression: str = "cadence",
               tempo_bpm: float = 120.0, bars: int = 4) -> tuple[np.ndarray, int]:
    """Four bars in ``key`` played by one of :data:`ARRANGEMENTS`."""
    harmony, melody, bass = ARRANGEMENTS[arrangement]
    notes = tonal_notes(key, progression, bars=bars)
    name = f"{arrangement}-{progression}-{key.name.replace('#', 's')}-{tempo_bpm:g}"
    return render(notes, {0: harmony, 1: melody, 2: bass}, folder, name, tempo_bpm, bars=bars)


#: instruments whose notes start with a clear attack (onset timing is measured on them): piano, harpsichord,
#: marimba, xylophone, nylon guitar, pizzicato strings
STACCATO_PROGRAMS = (0, 6, 12, 13, 24, 45)


def staccato_loop(key: MusicalKey, program: int, folder: Path, tempo_bpm: float = 120.0,
                  bars: int = 4) -> tuple[np.ndarray, int]:
    """The melody and the bass of :func:`tonal_notes` in ``key``, short notes on one instrument, no held
    chords: every note starts on the eighth-note grid with an attack an onset detector finds."""
    notes = [Note(n.start, min(n.length, TICKS // 3), n.pitch, 0, n.velocity)
             for n in tonal_notes(key, bars=bars) if n.channel != 0]
    name = f"staccato-{program}-{key.name.replace('#', 's')}-{tempo_bpm:g}"
    return render(notes, {0: program}, folder, name, tempo_bpm, bars=bars)


def drum_loop(pattern: str, kit: int, folder: Path, tempo_bpm: float = 120.0, bars: int = 4) -> tuple[np.ndarray, int]:
    """Four bars of a General MIDI drum pattern on one of the sound font's kits."""
    name = f"drums-{pattern.replace(' ', '-')}-{kit}-{tempo_bpm:g}"
    return render(drum_notes(pattern, bars), {9: kit}, folder, name, tempo_bpm, bars=bars)
