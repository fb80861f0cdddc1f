"""The default model's classes and how prompt words pick one.

A prompt is split into words; the first word (or two-word phrase) that names a class picks it.
A prompt that names no class gives ``None``: the model then samples any class.
"""

from __future__ import annotations

import re

#: class names, in label order (the model's class index is the position here)
CLASSES: tuple[str, ...] = (
    "kick", "snare", "clap", "closed hat", "open hat", "tom", "perc", "bass", "pluck", "texture",
)
#: classes whose samples have a pitch worth reporting as a root note
PITCHED_CLASSES: frozenset[str] = frozenset({"bass", "pluck"})
#: the drum classes a kit is made of (one render each), in kit order
DRUM_CLASSES: tuple[str, ...] = ("kick", "snare", "clap", "closed hat", "open hat", "tom", "perc")

# two-word phrases first: "open hat" must not be read as a plain "hat"
_PHRASES: dict[str, str] = {
    "open hat": "open hat", "open hihat": "open hat", "open hi hat": "open hat", "open hi-hat": "open hat",
    "closed hat": "closed hat", "closed hihat": "closed hat", "closed hi hat": "closed hat",
    "closed hi-hat": "closed hat", "hi hat": "closed hat", "bass drum": "kick", "kick drum": "kick",
    "snare drum": "snare", "hand clap": "clap", "rim shot": "perc", "sub bass": "bass", "808 bass": "bass",
    "e piano": "pluck", "white noise": "texture", "noise sweep": "texture",
}
_WORDS: dict[str, str] = {
    # kick
    "kick": "kick", "kicks": "kick", "bd": "kick", "bassdrum": "kick", "kickdrum": "kick", "808": "kick",
    "909": "kick", "thump": "kick", "boom": "kick",
    # snare
    "snare": "snare", "snares": "snare", "sd": "snare", "snr": "snare",
    # clap
    "clap": "clap", "claps": "clap", "handclap": "clap", "cp": "clap", "snap": "clap",
    # hats
    "hat": "closed hat", "hats": "closed hat", "hihat": "closed hat", "hihats": "closed hat",
    "hi-hat": "closed hat", "hi-hats": "closed hat", "hh": "closed hat", "ch": "closed hat",
    "chh": "closed hat", "closedhat": "closed hat", "tick": "closed hat",
    "openhat": "open hat", "oh": "open hat", "ohh": "open hat", "cymbal": "open hat", "ride": "open hat",
    "crash": "open hat", "sizzle": "open hat",
    # tom
    "tom": "tom", "toms": "tom", "floortom": "tom", "tomtom": "tom",
    # percussion
    "perc": "perc", "percs": "perc", "percussion": "perc", "rim": "perc", "rimshot": "perc",
    "rimclick": "perc", "cowbell": "perc", "block": "perc", "woodblock": "perc", "shaker": "perc",
    "conga": "perc", "bongo": "perc", "click": "perc", "clave": "perc", "claves": "perc",
    # bass
    "bass": "bass", "bassline": "bass", "sub": "bass", "reese": "bass", "basses": "bass",
    # pluck / keys
    "pluck": "pluck", "plucks": "pluck", "keys": "pluck", "key": "pluck", "piano": "pluck",
    "epiano": "pluck", "rhodes": "pluck", "bell": "pluck", "bells": "pluck", "stab": "pluck",
    "synth": "pluck", "lead": "pluck", "chord": "pluck", "chords": "pluck", "mallet": "pluck",
    "marimba": "pluck", "harp": "pluck", "guitar": "pluck",
    # texture
    "texture": "texture", "textures": "texture", "riser": "texture", "risers": "texture", "sweep": "texture",
    "sweeps": "texture", "noise": "texture", "whoosh": "texture", "uplifter": "texture",
    "downlifter": "texture", "ambience": "texture", "ambient": "texture", "pad": "texture", "drone": "texture",
    "atmosphere": "texture", "fx": "texture", "sfx": "texture", "wind": "texture",
}

_SPLIT = re.compile(r"[^a-z0-9\-]+")


def prompt_words(prompt: str) -> list[str]:
    """Lower-case words of a prompt (letters, digits and hyphens)."""
    return [w for w in _SPLIT.split(prompt.lower()) if w]


def class_for_prompt(prompt: str) -> str | None:
    """The class a prompt names, or ``None`` when it names none (any class will do).

    "808 bass" is bass, a lone "808" is a kick; "open hat" beats "hat"; the first class named wins.
    """
    words = prompt_words(prompt)
    for i in range(len(words)):
        for span in (3, 2):
            phrase = " ".join(words[i : i + span])
            if len(words[i : i + span]) == span and phrase in _PHRASES:
                return _PHRASES[phrase]
        if words[i] in _WORDS:
            # "808" followed by bass words is a bass; keep scanning a short window for that
            if words[i] == "808" and any(_WORDS.get(w) == "bass" for w in words[i + 1 : i + 3]):
                return "bass"
            return _WORDS[words[i]]
    return None


def class_index(name: str) -> int:
    """Label index of a class name; raises ValueError naming the accepted classes."""
    try:
        return CLASSES.index(name)
    except ValueError:
        raise ValueError(f"class {name!r} is not one of: {', '.join(CLASSES)}") from None
