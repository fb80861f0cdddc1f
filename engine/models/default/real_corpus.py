"""The real-recordings corpus: recorded drums and instruments from Debian packages, labelled, trimmed
and split by whole kit. ``loopbridge build-corpus --out DIR`` or
``python -m loopbridge.engine.models.default.real_corpus --out DIR``.

Sources (each read from its installed Debian package; a missing package is skipped with a note):

- ``hydrogen-drumkits``: the kits under ``/usr/share/hydrogen/data/drumkits``; each ``drumkit.xml``
  names its instruments and their velocity layers. One recording per layer, labelled from the
  instrument's name (:func:`label_drum_name`).
- ``fluid-soundfont-gm`` rendered with ``fluidsynth``: the sound font's drum kits on MIDI channel 10
  with the General MIDI note map (:data:`GM_DRUM_NOTES`) at several velocities; the basses (GM
  programs 32-39), plucked and struck instruments (:data:`PLUCK_PROGRAMS`) as single notes at several
  pitches and velocities and a few chord stabs; pads and a noise (:data:`TEXTURE_PROGRAMS`) held longer.
- ``freepats`` rendered with ``timidity``: the same MIDI, played by the freepats patch set.
- ``sonic-pi-samples``: the one-shots, labelled from their names (:func:`label_sonic_pi_name`);
  the ambient ones (``ambi_*``) cut into texture segments.
- For the evaluation alone (``--no-extra-held-out`` leaves them out): General MIDI drums and FX pads
  played as programs, FluidR3's variant programs and numbered drum kits (:data:`EXTRA_PROGRAMS`,
  :data:`FLUID_EXTRA_KITS`), always held out.

Every recording is mixed to mono, resampled to 44.1 kHz, trimmed of leading silence (from 1 ms
before the first sample within 50 dB of the peak), cut at :data:`MAX_SECONDS` (textures
:data:`MAX_TEXTURE_SECONDS`) with a 10 ms fade, its silent tail dropped, peak-normalized to -1 dBFS
and written as 16-bit WAV. A recording identical to one already written (velocity layers of one
sample that differ only in gain) is dropped, and so is a held-out recording whose normalized
cross-correlation with a training recording of its class reaches :data:`NEAR_COPY_NCC` (a sample
that two kits share).

Layout (read by ``train-default --data``)::

    DIR/train/<class-folder>/<source>-<group>-<name>.wav
    DIR/held-out/<class-folder>/...
    DIR/manifest.json      every file's class, group, source package, licence and split

The split holds out whole groups (a kit, a sound font program, a sample family), never single
recordings: the groups whose licence does not allow shipped weights (share-alike, GPL-2-only) and
the groups in :data:`HELD_OUT_GROUPS`. See CORPUS.md beside this file for the licences.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from .classes import CLASSES

SAMPLE_RATE = 44100
MAX_SECONDS = 1.5
MAX_TEXTURE_SECONDS = 4.0
#: leading silence ends at the first sample within this many dB of the peak
ONSET_DB = -50.0
#: the tail is cut where the level stays this far below the peak
TAIL_DB = -60.0
PEAK = 10 ** (-1 / 20)  # -1 dBFS
FADE_SECONDS = 0.01

HYDROGEN_DIR = Path("/usr/share/hydrogen/data/drumkits")
SONIC_PI_DIR = Path("/usr/share/sonic-pi/samples")
SOUND_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
FREEPATS_CFG = Path("/etc/timidity/freepats.cfg")
#: timidity's resample cache, in bytes: large enough that no group's notes are ever left out of it. With
#: timidity's default (2 MB) which notes are cached, and so how they sound, depended on timing: freepats'
#: Harpsichord gave other audio in about one render in three from 10-25 s into its group on.
TIMIDITY_CACHE_BYTES = 64 * 1024 * 1024

#: class name -> folder name ("closed hat" -> "closed-hat")
FOLDERS: dict[str, str] = {name: name.replace(" ", "-") for name in CLASSES}
SPLITS = ("train", "held-out")


@dataclass(frozen=True)
class Source:
    package: str
    licence: str
    copyright_file: str
    #: may weights trained on it ship under GPL-3 (with attribution)?
    shippable: bool
    credit: str


SOURCES: dict[str, Source] = {
    "hydrogen-drumkits": Source(
        "hydrogen-drumkits", "per kit (see KIT_LICENCES)", "/usr/share/doc/hydrogen-drumkits/copyright", True,
        "Hydrogen drum kits: Artemiy Pavlov (ArtemioLabs), Emiliano Grilli (Emillo), Marcos Guglielmetti, "
        "Glen MacArthur, Emanuel Rumpf, Audiophob; Luc Tanguay / Bransin James Anderson, Jim Harney, "
        "Vladimir Sadovnikov and Alexander Belokurov (evaluation only)"),
    "fluid-soundfont-gm": Source(
        "fluid-soundfont-gm", "MIT", "/usr/share/doc/fluid-soundfont-gm/copyright", True,
        "FluidR3 GM sound font, Frank Wen and contributors (MIT)"),
    "freepats": Source(
        "freepats", "GPL-2+ with composition exception", "/usr/share/doc/freepats/copyright", True,
        "FreePats patch set, freepats.opensrc.org (GPL-2+)"),
    "sonic-pi-samples": Source(
        "sonic-pi-samples", "CC0-1.0", "/usr/share/doc/sonic-pi-samples/copyright", True,
        "Sonic Pi samples from freesound.org (CC0), collected by Sam Aaron"),
}


@dataclass(frozen=True)
class KitLicence:
    licence: str
    shippable: bool
    note: str = ""


#: hydrogen kit folder -> licence, from /usr/share/doc/hydrogen-drumkits/copyright and the kit's drumkit.xml
KIT_LICENCES: dict[str, KitLicence] = {
    "Audiophob": KitLicence("CC0-1.0", True),
    "BJA_Pacific": KitLicence("CC-BY-SA-3.0-US", False, "share-alike 3.0: not GPL-3 compatible; evaluation only"),
    "ColomboAcousticDrumkit": KitLicence("GPL-2+ with composition exception", True),
    "ElectricEmpireKit": KitLicence("GPL-2+", True),
    "ForzeeStereo": KitLicence("GPL-2 (only)", False, "drumkit.xml says GPL version 2, no later version; "
                                                      "evaluation only"),
    "Gimme A Hand 1.0": KitLicence("GPL (drumkit.xml; Debian: GPL-2)", True,
                                   "no version named: GPL-2 section 9 lets any version apply"),
    "HardElectro1": KitLicence("GPL-2+", True),
    "Millo-Drums_v.1": KitLicence("GPL (drumkit.xml; Debian: GPL-2)", True,
                                  "no version named: GPL-2 section 9 lets any version apply"),
    "Millo_MultiLayered2": KitLicence("GPL (drumkit.xml; Debian: GPL-2)", True,
                                      "no version named: GPL-2 section 9 lets any version apply"),
    "Millo_MultiLayered3": KitLicence("GPL (drumkit.xml; Debian: GPL-2)", True,
                                      "no version named: GPL-2 section 9 lets any version apply"),
    "The Black Pearl 1.0": KitLicence("GPL (drumkit.xml; Debian: GPL-2)", True,
                                      "no version named: GPL-2 section 9 lets any version apply"),
    "VariBreaks": KitLicence("GPL-2+", True),
    "circAfrique v4": KitLicence("CC-BY-SA-3.0", False, "share-alike 3.0: not GPL-3 compatible; evaluation only"),
    "rumpf_kit_z01_h2": KitLicence("CC-BY-3.0", True, "attribution: Emanuel Rumpf"),
}

#: groups held out besides the evaluation-only ones: whole kits, programs and families, chosen so
#: every class has 30+ held-out recordings from kits and instruments the training never hears
HELD_OUT_GROUPS: frozenset[str] = frozenset({
    "hydrogen-BJA-Pacific", "hydrogen-circAfrique-v4", "hydrogen-ForzeeStereo",  # evaluation only
    "hydrogen-Gimme-A-Hand-1.0", "hydrogen-HardElectro1", "hydrogen-The-Black-Pearl-1.0",
    "fluid-kit-TR-808", "freepats-kit-Standard", "sonic-pi-bd", "sonic-pi-sn",
    # an instrument is held out in both sound fonts, so the training never hears it
    "fluid-Fretless-Bass", "freepats-Fretless-Bass", "fluid-Synth-Bass-2", "fluid-Slap-Bass-1",
    "freepats-Slap-Bass-1", "sonic-pi-bass",
    "fluid-Vibraphone", "fluid-Harp", "freepats-Harp", "fluid-Steel-Guitar", "freepats-Steel-Guitar",
    "fluid-Electric-Piano-2", "freepats-Electric-Piano-2", "fluid-Xylophone", "freepats-Xylophone",
    "fluid-Pad-Warm", "fluid-Pad-Halo", "freepats-Pad-Halo", "fluid-Pad-Sweep", "freepats-Pad-Sweep",
    "fluid-Seashore", "freepats-Seashore", "sonic-pi-ambi",
})
#: a held-out recording this close to a training one (best normalized cross-correlation, same class)
#: is the same sample in another kit (the sound fonts' kits share some) and is dropped
NEAR_COPY_NCC = 0.97

#: More kits and instruments for the evaluation alone (``build_corpus(extra_held_out=True)``, the default): General
#: MIDI programs no training class is taken from, FluidR3's variant programs (banks 8 and 16) and its
#: variant drum kits (bank 128). Every group they make goes to ``held-out/``, never to ``train/``; they
#: are written after every other recording, so the training set and the other held-out groups stay as
#: they are, and a recording of theirs is dropped when it copies (exactly, or by :data:`NEAR_COPY_NCC`)
#: a training recording, another held-out recording or one of another extra group.
#: (bank, program) -> (name, class); FluidR3 has them all, freepats those in its Tone_000.
EXTRA_PROGRAMS: dict[tuple[int, int], tuple[str, str]] = {
    (0, 97): ("FX Soundtrack", "texture"), (0, 98): ("FX Crystal", "texture"),
    (0, 100): ("FX Brightness", "texture"), (0, 101): ("FX Goblins", "texture"),
    (0, 103): ("FX Sci-fi", "texture"),
    (0, 112): ("Tinkle Bell", "pluck"), (0, 113): ("Agogo", "perc"), (0, 114): ("Steel Drums", "pluck"),
    (0, 115): ("Woodblock", "perc"), (0, 116): ("Taiko Drum", "tom"), (0, 117): ("Melodic Tom", "tom"),
    (0, 118): ("Synth Drum", "tom"),
    # FluidR3's variants in banks 8 and 16 that are instruments of their own (not a detuned or
    # doubled copy of a program the training reads). Left out, since most of their recordings come
    # within 0.9 (normalized cross-correlation) of a training recording: Ice Rain (0, 96), Hawaiian
    # Guitar (8, 26), Funk Guitar (8, 28), Synth Bass 4 (8, 39).
    (8, 14): ("Church Bell", "pluck"), (8, 24): ("Ukulele", "pluck"), (8, 25): ("12 String Guitar", "pluck"),
    (16, 25): ("Mandolin", "pluck"),
    (8, 107): ("Taisho Koto", "pluck"), (8, 38): ("Synth Bass 3", "bass"),
    (8, 115): ("Castanets", "perc"), (8, 116): ("Concert Bass Drum", "kick"), (8, 117): ("Melo Tom 2", "tom"),
    (8, 118): ("808 Tom", "tom"),
}
#: FluidR3's numbered drum kits (bank 128) besides :data:`FLUID_KITS`; most of their samples are the
#: main kits' and are dropped as copies, the rest are kits the training never hears
FLUID_EXTRA_KITS: dict[int, str] = {
    **{n: f"Standard {n}" for n in range(1, 8)}, **{8 + n: f"Room {n}" for n in range(1, 8)},
    **{16 + n: f"Power {n}" for n in range(1, 4)}, **{32 + n: f"Jazz {n}" for n in range(1, 5)},
    41: "Brush 1", 42: "Brush 2",
}
#: the pitches and velocities a drum played as a melodic program is rendered at
HIT_NOTES: dict[str, tuple[int, ...]] = {"kick": (33, 36, 40), "tom": (38, 43, 48, 53), "perc": (60, 67, 72)}


# ---- labels -------------------------------------------------------------------------------------

_DRUM_RULES: tuple[tuple[str | None, str], ...] = (
    # left out first: cymbals, effects, rolls and anything that is not one struck sound
    (None, r"crash|ride|china|splash|cymbal|\bfx\b|zap|whistle|roll|swish|choke|strum|waterglass|guiro|"
           r"cuica|triangle|vibra|\bbell\b|\bfree\b|\bhat\b.*\b(ring|low)\b|\bside\b.*\b(hh|ohh)\b"),
    ("open hat", r"(hh|hi-?hat|hat)\b.*\b(open|opened|op|semi-?open)\b|\b(open|semi-?open)\b.*\b(hh|hi-?hat|hat)\b|"
                 r"\bohh\b"),
    ("closed hat", r"(hh|hi-?hat|hat)\b.*\b(closed|cl|pedal|pd)\b|\b(closed|pedal)\b.*\b(hh|hi-?hat|hat)\b|\bchh\b"),
    ("kick", r"kick|bass ?drum|\bbd\b"),
    ("clap", r"clap|snap"),
    ("snare", r"snare"),
    ("tom", r"\btom|tom\b|tom\d"),
    ("perc", r"stick|rim|cowbell|conga|bongo|tambourine|agogo|clave|woodblock|wood block|maraca|cajon|"
             r"djembe|sangban|dununba|kenkeni|\bclick\b|shaker|cabasa|timbale"),
)


def label_drum_name(name: str) -> str | None:
    """The class a drum instrument's name names, or None when it is ambiguous (a cymbal, an effect,
    an unnamed slot): ``"Hi-Hat Open (Paiste ...)"`` -> open hat, ``"Crash"`` -> None."""
    text = re.sub(r"\(.*?\)", " ", name.lower())
    text = re.sub(r"[_\-]+", " ", text).strip()
    text = re.sub(r"^[a-g]#?\d\s+", "", text)  # rumpf's "c3 - bass drum 1"
    if not re.search(r"[a-z]{2}", text):
        return None
    for label, pattern in _DRUM_RULES:
        if re.search(pattern, text):
            return label
    return None


_SONIC_PI_RULES: tuple[tuple[str | None, str], ...] = (
    (None, r"^(loop|misc|mehackit|vinyl_(backspin|rewind|scratch)|guit_e_slide|glitch_robot|drum_roll|"
           r"drum_cymbal_(soft|hard)|drum_splash|elec_cymbal|perc_(door|swash|swoosh|impact|till)|"
           r"elec_(beep|blip|blip2|blup|bong|flip|ping|plip|pop|twang|twip)|ambi_piano)"),
    ("kick", r"^(bd_|drum_bass_|drum_heavy_kick|elec_(soft|hollow)_kick)"),
    ("snare", r"^(sn_|drum_snare_|elec_(filt_|hi_|lo_|mid_)?snare)"),
    ("closed hat", r"^drum_cymbal_(closed|pedal)"),
    ("open hat", r"^drum_cymbal_open"),
    ("tom", r"^(drum_tom_|elec_fuzz_tom)"),
    ("clap", r"^perc_snap"),
    ("perc", r"^(drum_cowbell|tabla_|glitch_perc|elec_(wood|tick|triangle)|perc_bell)"),
    ("bass", r"^(bass_|glitch_bass)"),
    ("pluck", r"^(guit_|elec_(bell|chime))"),
    ("texture", r"^(ambi_|vinyl_hiss)"),
)


def label_sonic_pi_name(stem: str) -> str | None:
    """The class of a Sonic Pi sample from its name (``bd_haus`` -> kick), None when left out."""
    for label, pattern in _SONIC_PI_RULES:
        if re.search(pattern, stem):
            return label
    return None


# ---- General MIDI --------------------------------------------------------------------------------

#: GM drum notes (channel 10) per class; the cymbals, whistles, guiro, cuica and triangle are left out
GM_DRUM_NOTES: dict[str, tuple[int, ...]] = {
    "kick": (35, 36), "snare": (38, 40), "clap": (39,), "closed hat": (42, 44), "open hat": (46,),
    "tom": (41, 43, 45, 47, 48, 50),
    "perc": (37, 54, 56, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 75, 76, 77),
}
GM_DRUM_LEFT_OUT: dict[int, str] = {
    49: "crash cymbal 1", 51: "ride cymbal 1", 52: "chinese cymbal", 53: "ride bell", 55: "splash cymbal",
    57: "crash cymbal 2", 58: "vibraslap", 59: "ride cymbal 2", 71: "short whistle", 72: "long whistle",
    73: "short guiro", 74: "long guiro", 78: "mute cuica", 79: "open cuica", 80: "mute triangle",
    81: "open triangle",
}
DRUM_VELOCITIES = (50, 90, 127)
#: FluidR3's distinct drum kits (bank 128); its numbered variants share most of their samples
FLUID_KITS: dict[int, str] = {0: "Standard", 8: "Room", 16: "Power", 24: "Electronic", 25: "TR-808", 32: "Jazz",
                              40: "Brush", 48: "Orchestra"}
#: freepats has one kit
FREEPATS_KITS: dict[int, str] = {0: "Standard"}

GM_NAMES: dict[int, str] = {
    0: "Acoustic Grand Piano", 1: "Bright Acoustic Piano", 2: "Electric Grand Piano", 3: "Honky-tonk Piano",
    4: "Electric Piano 1", 5: "Electric Piano 2", 6: "Harpsichord", 7: "Clavinet", 8: "Celesta",
    9: "Glockenspiel", 10: "Music Box", 11: "Vibraphone", 12: "Marimba", 13: "Xylophone", 14: "Tubular Bells",
    15: "Dulcimer", 24: "Nylon Guitar", 25: "Steel Guitar", 26: "Jazz Guitar", 27: "Clean Guitar",
    28: "Muted Guitar", 32: "Acoustic Bass", 33: "Fingered Bass", 34: "Picked Bass", 35: "Fretless Bass",
    36: "Slap Bass 1", 37: "Slap Bass 2", 38: "Synth Bass 1", 39: "Synth Bass 2", 45: "Pizzicato Strings",
    46: "Harp", 88: "Pad New Age", 89: "Pad Warm", 90: "Pad Polysynth", 91: "Pad Choir", 92: "Pad Bowed",
    93: "Pad Metallic", 94: "Pad Halo", 95: "Pad Sweep", 99: "FX Atmosphere", 102: "FX Echoes", 104: "Sitar",
    105: "Banjo", 106: "Shamisen", 107: "Koto",
    108: "Kalimba", 122: "Seashore",
}
BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39)
PLUCK_PROGRAMS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 45, 46, 104, 105, 106,
                  107, 108)
TEXTURE_PROGRAMS = (88, 89, 90, 91, 92, 93, 94, 95, 99, 102, 122)
BASS_NOTES = (28, 31, 33, 36, 38, 40, 43, 45)  # E1 .. A2
PLUCK_NOTES = (48, 55, 60, 67, 72)  # C3 .. C5
TEXTURE_NOTES = (48, 55, 62)
PITCHED_VELOCITIES = (70, 110)
#: chord stabs: (root, intervals)
PLUCK_CHORDS = ((60, (0, 4, 7)), (57, (0, 3, 7)), (62, (0, 5, 7, 10)))
TEXTURE_CHORDS = ((48, (0, 7, 12, 16)), (50, (0, 3, 7, 10)))


@dataclass(frozen=True)
class Event:
    """One sound of a rendered group: a drum note or notes of a melodic program."""
    name: str
    label: str
    notes: tuple[int, ...]
    velocity: int
    hold_s: float
    slot_s: float


def gm_events(kind: str, program: int) -> list[Event]:
    """The sounds rendered for a GM drum kit (``kind="kit"``) or a melodic program."""
    if kind == "kit":
        return [Event(f"{_gm_drum_name(note)}-v{velocity}", label, (note,), velocity, 0.3, 2.0)
                for label, notes in GM_DRUM_NOTES.items() for note in notes for velocity in DRUM_VELOCITIES]
    if program in BASS_PROGRAMS:
        return class_events("bass")
    if program in PLUCK_PROGRAMS:
        return class_events("pluck")
    if program in TEXTURE_PROGRAMS:
        return class_events("texture")
    raise ValueError(f"program {program} is not one of the corpus's programs")


def class_events(label: str) -> list[Event]:
    """The sounds rendered for a melodic program of class ``label``: basses, plucks and textures as
    :func:`gm_events` plays them; a drum played as a program (kick, tom, perc) at :data:`HIT_NOTES`."""
    if label in HIT_NOTES:
        return [Event(f"{_note_name(n)}-v{v}", label, (n,), v, 0.3, 2.0)
                for n in HIT_NOTES[label] for v in DRUM_VELOCITIES]
    if label == "bass":
        return [Event(f"{_note_name(n)}-v{v}", "bass", (n,), v, 0.7, 2.5)
                for n in BASS_NOTES for v in PITCHED_VELOCITIES]
    if label == "pluck":
        single = [Event(f"{_note_name(n)}-v{v}", "pluck", (n,), v, 0.8, 2.5) for n in PLUCK_NOTES
                  for v in PITCHED_VELOCITIES]
        chords = [Event(f"chord-{_note_name(root)}-{'-'.join(map(str, ivs))}", "pluck",
                        tuple(root + i for i in ivs), 100, 0.8, 2.5) for root, ivs in PLUCK_CHORDS]
        return single + chords
    if label == "texture":
        single = [Event(f"{_note_name(n)}", "texture", (n,), 90, 3.5, 6.0) for n in TEXTURE_NOTES]
        chords = [Event(f"chord-{_note_name(root)}", "texture", tuple(root + i for i in ivs), 90, 3.5, 6.0)
                  for root, ivs in TEXTURE_CHORDS]
        return single + chords
    raise ValueError(f"class {label!r} has no program events; accepted: bass, pluck, texture, "
                     f"{', '.join(HIT_NOTES)}")


_GM_DRUM_NAMES = {35: "Kick-1", 36: "Kick-2", 37: "Side-Stick", 38: "Snare-1", 39: "Clap", 40: "Snare-2",
                  41: "Tom-Floor-Low", 42: "Hat-Closed", 43: "Tom-Floor-High", 44: "Hat-Pedal", 45: "Tom-Low",
                  46: "Hat-Open", 47: "Tom-Low-Mid", 48: "Tom-Hi-Mid", 50: "Tom-High", 54: "Tambourine",
                  56: "Cowbell", 60: "Bongo-High", 61: "Bongo-Low", 62: "Conga-Mute", 63: "Conga-Open",
                  64: "Conga-Low", 65: "Timbale-High", 66: "Timbale-Low", 67: "Agogo-High", 68: "Agogo-Low",
                  69: "Cabasa", 70: "Maracas", 75: "Claves", 76: "Woodblock-High", 77: "Woodblock-Low"}


def _gm_drum_name(note: int) -> str:
    return _GM_DRUM_NAMES.get(note, f"note{note}")


def _note_name(note: int) -> str:
    names = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")
    return f"{names[note % 12]}{note // 12 - 1}"


def _var(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


TICKS = 1000  # per quarter note at 60 bpm: one tick a millisecond


def midi_file(events: Sequence[Event], channel: int, program: int, bank: int = 0) -> bytes:
    """A format-0 MIDI file at 60 bpm playing ``events`` one after another, each in its slot; a
    ``bank`` other than 0 is selected (controller 0) before the program."""
    if not 0 <= bank <= 127:
        raise ValueError(f"bank {bank} is out of range: accepted 0-127")
    timed: list[tuple[int, int, bytes]] = [(0, 0, b"\xff\x51\x03" + (1_000_000).to_bytes(3, "big")),
                                           (0, 1, bytes([0xC0 | channel, program]))]
    if bank:
        timed.insert(1, (0, 0, bytes([0xB0 | channel, 0, bank])))
    start = 500
    for event in events:
        for note in event.notes:
            timed.append((start, 3, bytes([0x90 | channel, note, event.velocity])))
            timed.append((start + int(event.hold_s * 1000), 2, bytes([0x80 | channel, note, 0])))
        start += int(event.slot_s * 1000)
    timed.append((start, 4, b"\xff\x2f\x00"))
    timed.sort(key=lambda e: (e[0], e[1]))
    track, now = b"", 0
    for tick, _, data in timed:
        track += _var(tick - now) + data
        now = tick
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS) + b"MTrk" + struct.pack(">I", len(track)) + track


def fluidsynth_render(midi: Path, wav: Path, sample_rate: int, *, effects: bool = False,
                      timeout_s: float | None = None) -> None:
    """Write ``midi`` played by ``fluidsynth`` with the FluidR3 General MIDI sound font to ``wav``
    (16-bit, stereo, ``sample_rate``), at gain 0.5; dry unless ``effects`` (the sound font's reverb and
    chorus). Raises subprocess.CalledProcessError (its stderr kept) or TimeoutExpired."""
    cmd = ["fluidsynth", "-ni", "-q", *(() if effects else ("-R", "0", "-C", "0")), "-g", "0.5",
           "-r", str(sample_rate), "-O", "s16", "-T", "wav", "-F", str(wav), str(SOUND_FONT), str(midi)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout_s)


def render_midi(renderer: str, midi: bytes, work: Path) -> np.ndarray:
    """Render ``midi`` with ``fluidsynth`` (FluidR3) or ``timidity`` (freepats), dry, mono, 44.1 kHz."""
    mid, wav = work / "in.mid", work / "out.wav"
    mid.write_bytes(midi)
    if renderer == "fluidsynth":
        fluidsynth_render(mid, wav, SAMPLE_RATE)
    elif renderer == "timidity":
        cmd = ["timidity", "-c", str(FREEPATS_CFG), "-Ow", "--output-mono", "-s", str(SAMPLE_RATE),
               "-EFreverb=0", "-EFchorus=0", "-A100", f"-S{TIMIDITY_CACHE_BYTES}", "-o", str(wav), str(mid)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    else:
        raise ValueError(f"renderer {renderer!r} is not one of: fluidsynth, timidity")
    audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    return to_mono_44k(audio, rate)


# ---- audio ----------------------------------------------------------------------------------------

def to_mono_44k(audio: np.ndarray, rate: int) -> np.ndarray:
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    if rate != SAMPLE_RATE:
        ratio = Fraction(SAMPLE_RATE, rate).limit_denominator(1000)
        mono = resample_poly(mono, ratio.numerator, ratio.denominator)
    return np.asarray(mono, dtype=np.float32)


def prepare(audio: np.ndarray, max_seconds: float) -> np.ndarray | None:
    """Trim, cut, fade and peak-normalize one recording; None when it is silent or shorter than 20 ms."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-4:
        return None
    above = np.flatnonzero(np.abs(audio) >= peak * 10 ** (ONSET_DB / 20))
    start = max(int(above[0]) - SAMPLE_RATE // 1000, 0)
    audio = audio[start:]
    # the tail: where a 10 ms RMS stays below TAIL_DB of the peak
    hop = SAMPLE_RATE // 100
    frames = len(audio) // hop
    if frames > 1:
        rms = np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1))
        loud = np.flatnonzero(rms >= peak * 10 ** (TAIL_DB / 20))
        if loud.size:
            audio = audio[: (int(loud[-1]) + 1) * hop]
    limit = int(max_seconds * SAMPLE_RATE)
    audio = audio[:limit].copy()
    if len(audio) < SAMPLE_RATE // 50:
        return None
    fade = min(int(FADE_SECONDS * SAMPLE_RATE), len(audio))
    audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return (audio / np.max(np.abs(audio)) * PEAK).astype(np.float32)


def _safe(text: str) -> str:
    text = re.sub(r"\(.*?\)", "", text)
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "x"


# ---- the recordings -------------------------------------------------------------------------------

@dataclass
class Recording:
    label: str
    source: str
    group: str
    name: str
    licence: str
    shippable: bool
    origin: str
    load: Callable[[], list[np.ndarray]]
    max_seconds: float = MAX_SECONDS
    #: one of the extra evaluation-only groups (:data:`EXTRA_PROGRAMS`, :data:`FLUID_EXTRA_KITS`)
    extra: bool = False


@dataclass
class Excluded:
    source: str
    group: str
    name: str
    reason: str


@dataclass
class Plan:
    recordings: list[Recording] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _read_file(path: Path) -> Callable[[], list[np.ndarray]]:
    def load() -> list[np.ndarray]:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return [to_mono_44k(audio, rate)]
    return load


def hydrogen_plan(plan: Plan, root: Path = HYDROGEN_DIR) -> None:
    if not root.is_dir():
        plan.missing.append(f"hydrogen-drumkits ({root} is missing)")
        return
    for kit_dir in sorted(p for p in root.iterdir() if (p / "drumkit.xml").is_file()):
        kit = kit_dir.name
        lic = KIT_LICENCES.get(kit)
        group = "hydrogen-" + _safe(kit)
        if lic is None:
            plan.excluded.append(Excluded("hydrogen-drumkits", group, "*", "kit with no recorded licence"))
            continue
        xml_root = ET.parse(kit_dir / "drumkit.xml").getroot()
        ns_match = re.match(r"\{.*\}", xml_root.tag)
        ns = ns_match.group(0) if ns_match else ""
        seen_names: set[str] = set()
        for instrument in xml_root.iter(ns + "instrument"):
            name = (instrument.findtext(ns + "name") or "").strip()
            named = [layer.findtext(ns + "filename") for layer in instrument.iter(ns + "layer")]
            files: list[str] = [f for f in named if f] or [f for f in [instrument.findtext(ns + "filename")] if f]
            if not files:
                continue
            label = label_drum_name(name)
            if label is None:
                plan.excluded.append(Excluded("hydrogen-drumkits", group, name or "(unnamed)",
                                              "ambiguous or unnamed instrument"))
                continue
            base = _safe(name)
            while base in seen_names:
                base += "-b"
            seen_names.add(base)
            for index, filename in enumerate(files):
                path = kit_dir / filename
                if not path.is_file():
                    plan.excluded.append(Excluded("hydrogen-drumkits", group, filename, "file named but missing"))
                    continue
                layer = f"-L{index + 1}" if len(files) > 1 else ""
                plan.recordings.append(Recording(
                    label, "hydrogen-drumkits", group, f"{base}{layer}", lic.licence, lic.shippable,
                    f"{kit}/{filename} (instrument {name!r})", _read_file(path)))


def sonic_pi_plan(plan: Plan, root: Path = SONIC_PI_DIR) -> None:
    if not root.is_dir():
        plan.missing.append(f"sonic-pi-samples ({root} is missing)")
        return
    for path in sorted(root.glob("*.flac")):
        stem = path.stem
        family = stem.split("_")[0]
        group = f"sonic-pi-{family}"
        label = label_sonic_pi_name(stem)
        if label is None:
            plan.excluded.append(Excluded("sonic-pi-samples", group, stem, "loop, effect or ambiguous sound"))
            continue
        if label == "texture":
            plan.recordings.append(Recording(label, "sonic-pi-samples", group, stem, "CC0-1.0", True, path.name,
                                             _texture_segments(path), MAX_TEXTURE_SECONDS))
        else:
            plan.recordings.append(Recording(label, "sonic-pi-samples", group, stem, "CC0-1.0", True, path.name,
                                             _read_file(path)))


#: long ambient recordings give up to this many texture segments
TEXTURE_SEGMENTS = 3


def _texture_segments(path: Path) -> Callable[[], list[np.ndarray]]:
    def load() -> list[np.ndarray]:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        mono = to_mono_44k(audio, rate)
        length = int(MAX_TEXTURE_SECONDS * SAMPLE_RATE)
        count = max(1, min(TEXTURE_SEGMENTS, len(mono) // length))
        return [mono[i * length:(i + 1) * length] for i in range(count)]
    return load


def _render_group(renderer: str, events: list[Event], channel: int, program: int,
                  cache: dict[str, list[np.ndarray]], key: str, bank: int = 0) -> list[np.ndarray]:
    if key not in cache:
        with tempfile.TemporaryDirectory(prefix="loopbridge-corpus-") as work:
            audio = render_midi(renderer, midi_file(events, channel, program, bank), Path(work))
        pieces, start = [], int(0.5 * SAMPLE_RATE)
        for event in events:
            end = start + int(event.slot_s * SAMPLE_RATE)
            pieces.append(audio[start:end])
            start = end
        cache[key] = pieces
    return cache[key]


def gm_plan(plan: Plan, renderer: str, extra: bool = False) -> None:
    """The sound font's (``fluidsynth``) or freepats' (``timidity``) kits and programs; with ``extra``,
    only the extra evaluation-only ones (:data:`EXTRA_PROGRAMS`, :data:`FLUID_EXTRA_KITS`)."""
    if renderer == "fluidsynth":
        source, prefix, kits = "fluid-soundfont-gm", "fluid", FLUID_KITS
        if shutil.which("fluidsynth") is None or not SOUND_FONT.is_file():
            plan.missing.append(f"fluid-soundfont-gm (needs fluidsynth and {SOUND_FONT})")
            return
        programs = sorted(GM_NAMES)
        extra_programs = sorted(EXTRA_PROGRAMS)
        if extra:
            kits = FLUID_EXTRA_KITS
    else:
        source, prefix, kits = "freepats", "freepats", FREEPATS_KITS
        if shutil.which("timidity") is None or not FREEPATS_CFG.is_file():
            plan.missing.append(f"freepats (needs timidity and {FREEPATS_CFG})")
            return
        tone_dir = Path("/usr/share/midi/freepats/Tone_000")
        have = {int(p.name[:3]) for p in tone_dir.glob("*.pat")} if tone_dir.is_dir() else set()
        programs = sorted(p for p in GM_NAMES if p in have)
        # timidity's freepats set has bank 0 only
        extra_programs = sorted(k for k in EXTRA_PROGRAMS if k[0] == 0 and k[1] in have)
        if extra:
            kits = {}
    licence = SOURCES[source].licence
    if extra:
        _gm_extra_plan(plan, renderer, source, prefix, kits, extra_programs)
        return
    cache: dict[str, list[np.ndarray]] = {}
    for kit_program, kit_name in kits.items():
        group = _kit_plan(plan, renderer, source, prefix, kit_program, kit_name, cache, extra=False)
        for note, what in GM_DRUM_LEFT_OUT.items():
            plan.excluded.append(Excluded(source, group, f"note {note} ({what})", "cymbal or effect: ambiguous"))
    for program in programs:
        group = f"{prefix}-{_safe(GM_NAMES[program])}"
        events = gm_events("program", program)
        for index, event in enumerate(events):
            notes = "+".join(map(str, event.notes))
            plan.recordings.append(Recording(
                event.label, source, group, event.name, licence, True,
                f"{renderer}: program {program} ({GM_NAMES[program]}), notes {notes}, velocity {event.velocity}",
                _piece(renderer, events, 0, program, cache, group, index),
                MAX_TEXTURE_SECONDS if event.label == "texture" else MAX_SECONDS))


def _kit_plan(plan: Plan, renderer: str, source: str, prefix: str, kit_program: int, kit_name: str,
              cache: dict[str, list[np.ndarray]], extra: bool) -> str:
    """Add one General MIDI drum kit's recordings (channel 10) to ``plan``; returns the kit's group."""
    group = f"{prefix}-kit-{_safe(kit_name)}"
    events = gm_events("kit", kit_program)
    for index, event in enumerate(events):
        plan.recordings.append(Recording(
            event.label, source, group, event.name, SOURCES[source].licence, True,
            f"{renderer}: drum kit {kit_program} ({kit_name}), note {event.notes[0]}, velocity {event.velocity}",
            _piece(renderer, events, 9, kit_program, cache, group, index), extra=extra))
    return group


def _gm_extra_plan(plan: Plan, renderer: str, source: str, prefix: str, kits: dict[int, str],
                   programs: Sequence[tuple[int, int]]) -> None:
    licence = SOURCES[source].licence
    cache: dict[str, list[np.ndarray]] = {}
    for kit_program, kit_name in kits.items():
        _kit_plan(plan, renderer, source, prefix, kit_program, kit_name, cache, extra=True)
    for bank, program in programs:
        name, label = EXTRA_PROGRAMS[(bank, program)]
        group = f"{prefix}-{_safe(name)}"
        events = class_events(label)
        for index, event in enumerate(events):
            notes = "+".join(map(str, event.notes))
            plan.recordings.append(Recording(
                event.label, source, group, event.name, licence, True,
                f"{renderer}: bank {bank} program {program} ({name}), notes {notes}, velocity {event.velocity}",
                _piece(renderer, events, 0, program, cache, group, index, bank),
                MAX_TEXTURE_SECONDS if label == "texture" else MAX_SECONDS, extra=True))


def _piece(renderer: str, events: list[Event], channel: int, program: int, cache: dict[str, list[np.ndarray]],
           key: str, index: int, bank: int = 0) -> Callable[[], list[np.ndarray]]:
    def load() -> list[np.ndarray]:
        return [_render_group(renderer, events, channel, program, cache, key, bank)[index]]
    return load


def make_plan(extra_held_out: bool = False) -> Plan:
    """Every recording the recipe reads; with ``extra_held_out`` also the extra evaluation-only groups."""
    plan = Plan()
    hydrogen_plan(plan)
    gm_plan(plan, "fluidsynth")
    gm_plan(plan, "timidity")
    sonic_pi_plan(plan)
    if extra_held_out:
        gm_plan(plan, "fluidsynth", extra=True)
        gm_plan(plan, "timidity", extra=True)
    return plan


def split_of(recording: Recording) -> str:
    """``held-out`` for the evaluation-only groups, :data:`HELD_OUT_GROUPS` and the extra groups, else
    ``train``."""
    held = not recording.shippable or recording.extra or recording.group in HELD_OUT_GROUPS
    return "held-out" if held else "train"


# ---- building --------------------------------------------------------------------------------------

def _matches(group: str, patterns: Sequence[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(group, p) for p in patterns)


def build_corpus(out: Path, groups: Sequence[str] | None = None, log: Callable[[str], None] | None = None,
                 extra_held_out: bool = True) -> dict[str, object]:
    """Write the corpus under ``out`` (replacing an earlier build there); returns the manifest.

    ``groups``: fnmatch patterns of the groups to build (all when None), for a quick subset.
    ``extra_held_out``: also the extra evaluation-only groups (:data:`EXTRA_PROGRAMS`,
    :data:`FLUID_EXTRA_KITS`; the recipe's default), written after the rest so nothing else changes.
    """
    log = log or (lambda message: None)
    plan = make_plan(extra_held_out)
    recordings = [r for r in plan.recordings if _matches(r.group, groups)]
    if not recordings:
        known = sorted({r.group for r in plan.recordings})
        raise ValueError(f"groups {list(groups or [])!r} match none of: {', '.join(known)}")
    for split in SPLITS:
        shutil.rmtree(out / split, ignore_errors=True)
    # train first, so a held-out recording identical to a training one is the one dropped; the extra
    # groups last, so they never displace a recording of the others
    ordered = sorted(recordings, key=lambda r: (split_of(r) != "train", r.extra, r.group, r.name))
    extra_groups = {r.group for r in recordings if r.extra}
    seen: dict[str, str] = {}
    files: list[dict[str, object]] = []
    duplicates: list[dict[str, str]] = []
    last_group = ""
    for rec in ordered:
        if rec.group != last_group:
            log(f"  {rec.group}")
            last_group = rec.group
        split = split_of(rec)
        pieces = rec.load()
        for index, raw in enumerate(pieces):
            audio = prepare(raw, rec.max_seconds)
            suffix = f"-part{index + 1}" if len(pieces) > 1 else ""
            name = f"{rec.group}-{_safe(rec.name)}{suffix}.wav"
            if audio is None:
                plan.excluded.append(Excluded(rec.source, rec.group, rec.name + suffix, "silent or too short"))
                continue
            pcm = np.round(audio * 32767).astype("<i2")
            digest = hashlib.sha1(pcm.tobytes()).hexdigest()
            if digest in seen:
                duplicates.append({"file": name, "same_as": seen[digest]})
                continue
            rel = f"{split}/{FOLDERS[rec.label]}/{name}"
            seen[digest] = rel
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), pcm, SAMPLE_RATE, subtype="PCM_16")
            files.append({"path": rel, "class": rec.label, "group": rec.group, "source": rec.source,
                          "licence": rec.licence, "shippable": rec.shippable, "split": split, "origin": rec.origin,
                          "seconds": round(len(pcm) / SAMPLE_RATE, 3), "sha1": digest})
    log("  checking the held-out recordings for samples a training kit shares")
    near_copies = _drop_near_copies(out, files, extra_groups)
    files = [f for f in files if f["path"] not in {c["file"] for c in near_copies}]
    files.sort(key=lambda f: str(f["path"]))
    manifest: dict[str, object] = {
        "version": 1,
        "sample_rate": SAMPLE_RATE,
        "classes": {name: FOLDERS[name] for name in CLASSES},
        "files": files,
        "counts": counts(files),
        "sources": {name: {"licence": s.licence, "copyright": s.copyright_file, "shippable": s.shippable,
                           "credit": s.credit} for name, s in SOURCES.items()},
        "kit_licences": {kit: {"licence": k.licence, "shippable": k.shippable, "note": k.note}
                         for kit, k in KIT_LICENCES.items()},
        "held_out_groups": sorted({str(f["group"]) for f in files if f["split"] == "held-out"}),
        "extra_held_out_groups": sorted({str(f["group"]) for f in files if f["group"] in extra_groups}),
        "excluded": [e.__dict__ for e in plan.excluded if _matches(e.group, groups)],
        "duplicates_dropped": duplicates,
        "near_copies_dropped": near_copies,
        "missing_sources": plan.missing,
        "groups": list(groups) if groups is not None else None,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _drop_near_copies(out: Path, files: list[dict[str, object]], extra_groups: frozenset[str] | set[str] = frozenset()
                      ) -> list[dict[str, object]]:
    """Delete the held-out files whose best normalized cross-correlation with a training file of the
    same class is at least :data:`NEAR_COPY_NCC`; returns what was dropped and what it matched.

    The files of ``extra_groups`` are checked after the others, one kit or instrument
    (:func:`~.evaluate.kit_of`) at a time, against the training files, the held-out files kept and the
    extra files kept of the kits before it: a sample that two held-out kits share is kept once."""
    from .evaluate import best_correlations, kit_of

    held = [f for f in files if f["split"] == "held-out" and f["group"] not in extra_groups]
    extra = [f for f in files if f["group"] in extra_groups]
    train = [f for f in files if f["split"] == "train"]
    if not (held or extra) or not train:
        return []
    names = list(FOLDERS)

    def native(rows: list[dict[str, object]]) -> tuple[np.ndarray, np.ndarray]:
        length = int(1.0 * SAMPLE_RATE)
        audio = np.zeros((len(rows), length), dtype=np.float32)
        for i, f in enumerate(rows):
            data, _ = sf.read(str(out / str(f["path"])), dtype="float32")
            audio[i, : min(len(data), length)] = data[:length]
        return audio, np.array([names.index(str(f["class"])) for f in rows], dtype=int)

    dropped: list[dict[str, object]] = []

    def check(rows: list[dict[str, object]], pool: list[dict[str, object]], pool_audio: np.ndarray,
              pool_labels: np.ndarray) -> tuple[list[dict[str, object]], np.ndarray, np.ndarray]:
        """Drop the rows that copy one of ``pool``; the rows kept, with their audio and labels."""
        audio, labels = native(rows)
        best, match = best_correlations(audio, labels, pool_audio, pool_labels)
        keep = best < NEAR_COPY_NCC
        for i in np.flatnonzero(~keep):
            (out / str(rows[i]["path"])).unlink()
            dropped.append({"file": rows[i]["path"], "same_as": pool[match[i]]["path"],
                            "ncc": round(float(best[i]), 3)})
        return [r for r, k in zip(rows, keep, strict=True) if k], audio[keep], labels[keep]

    train_audio, train_labels = native(train)
    kept, kept_audio, kept_labels = check(held, train, train_audio, train_labels) if held else (
        [], train_audio[:0], train_labels[:0])
    pool = train + kept
    pool_audio = np.concatenate([train_audio, kept_audio])
    pool_labels = np.concatenate([train_labels, kept_labels])
    for kit in sorted({kit_of(str(f["group"])) for f in extra}):
        rows = [f for f in extra if kit_of(str(f["group"])) == kit]
        kept, kept_audio, kept_labels = check(rows, pool, pool_audio, pool_labels)
        pool = pool + kept
        pool_audio = np.concatenate([pool_audio, kept_audio])
        pool_labels = np.concatenate([pool_labels, kept_labels])
    return dropped


def counts(files: Sequence[dict[str, object]]) -> dict[str, dict[str, int]]:
    """Recordings per class per split: ``{class: {"train": n, "held-out": m}}``."""
    table = {name: dict.fromkeys(SPLITS, 0) for name in CLASSES}
    for f in files:
        table[str(f["class"])][str(f["split"])] += 1
    return table


def format_counts(table: dict[str, dict[str, int]]) -> str:
    lines = [f"{'class':12s} {'train':>6s} {'held-out':>9s}"]
    for name, row in table.items():
        lines.append(f"{name:12s} {row['train']:6d} {row['held-out']:9d}")
    lines.append(f"{'total':12s} {sum(r['train'] for r in table.values()):6d} "
                 f"{sum(r['held-out'] for r in table.values()):9d}")
    return "\n".join(lines)


def load_manifest(corpus: Path) -> dict[str, object]:
    path = corpus / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: build the corpus with `loopbridge build-corpus --out {corpus}`")
    return dict(json.loads(path.read_text()))


def iter_files(manifest: dict[str, object], split: str) -> Iterator[dict[str, object]]:
    files = manifest["files"]
    assert isinstance(files, list)
    for f in files:
        if f["split"] == split:
            yield f


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loopbridge build-corpus",
                                     description="Build the real-recordings corpus from Debian packages.")
    parser.add_argument("--out", type=Path, required=True, help="corpus folder (train/, held-out/, manifest.json)")
    parser.add_argument("--groups", nargs="+", default=None, metavar="PATTERN",
                        help="build only the groups matching these patterns (e.g. 'hydrogen-*' 'sonic-pi-bd')")
    parser.add_argument("--extra-held-out", action=argparse.BooleanOptionalAction, default=True,
                        help="also render the extra evaluation-only kits and programs (General MIDI drums "
                             "played as programs, FX pads, FluidR3's variant kits and programs) into held-out/ "
                             "(the default; the training set is the same either way)")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"building the corpus in {args.out}")
    try:
        manifest = build_corpus(args.out, args.groups, log, args.extra_held_out)
    except ValueError as exc:
        log(f"error: {exc}")
        return 2
    except (subprocess.CalledProcessError, OSError) as exc:
        log(f"error: {exc}")
        return 1
    for missing in manifest["missing_sources"]:  # type: ignore[attr-defined]
        log(f"skipped: {missing}")
    table = manifest["counts"]
    assert isinstance(table, dict)
    print(format_counts(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
