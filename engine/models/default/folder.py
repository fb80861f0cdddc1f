"""A producer's folder of one-shots as training data for the default model.

1. Every audio file under the folder (``AUDIO_SUFFIXES``) is found, in sorted order.
2. Each gets a class: from the nearest enclosing sub-folder whose name names one (``Kicks``,
   ``closed-hat``, ``open_hat``), else from the words of its file name (``Kick-Soft.wav``,
   ``BD_01.aiff``, ``HiHatOpen.flac``). Words are the prompt words of :mod:`.classes` plus the
   abbreviations sample packs use in file names (``SN``, ``HH``, ``OHH``, ``RS``, ``CB``...). A hat
   whose name says it is open is an open hat even in a ``hats`` folder.
3. Each file is read, mixed to mono, resampled to 44.1 kHz, started at its onset, cut or padded to
   the model's 1.02 s and peak-normalized like the synthesized corpus.

:func:`label_folder` raises :class:`UnlabelledFilesError` listing every file it could not label
(and the words it accepts) unless asked to skip them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio import read_audio_file, resample
from ...errors import AudioReadError
from .classes import CLASSES, class_for_prompt
from .spectral import NATIVE_SAMPLES, SAMPLE_RATE

#: the file types read (whatever the audio reader decodes among them)
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3")
#: peak level of a prepared one-shot (the synthesized corpus's)
PEAK = 0.9
#: the onset is the first sample this far below the peak (dB)
ONSET_DB = -30.0

# words sample packs put in file names that are not prompt words; checked before the prompt words
_FILE_WORDS: dict[str, str] = {
    "sn": "snare", "snr": "snare", "sd": "snare", "rsnare": "snare", "jsnare": "snare",
    "bd": "kick", "kd": "kick", "bassdrum": "kick", "kik": "kick",
    "hh": "closed hat", "chh": "closed hat", "hhc": "closed hat", "hhclosed": "closed hat",
    "closehihat": "closed hat", "closedhihat": "closed hat", "pedalhihat": "closed hat", "hhpedal": "closed hat",
    "ohh": "open hat", "hho": "open hat", "ho": "open hat", "hhopen": "open hat", "openhat": "open hat",
    "openhihat": "open hat", "rd": "open hat", "rc": "open hat", "cc": "open hat", "cymbal": "open hat",
    "china": "open hat", "splash": "open hat", "paiste": "open hat",
    "tm": "tom", "ft": "tom", "floortom": "tom", "t1": "tom", "t2": "tom", "t3": "tom",
    "rs": "perc", "cb": "perc", "sidestick": "perc", "stick": "perc", "agogo": "perc", "tambourine": "perc",
    "djembe": "perc", "dununba": "perc", "kenkeni": "perc", "sangban": "perc", "cajon": "perc",
    "timbale": "perc", "timbales": "perc", "guiro": "perc", "triangle": "perc", "shake": "perc",
    "maraca": "perc", "maracas": "perc", "whistle": "perc",
    "fingersnap": "clap", "snaps": "clap",
}
_OPEN_WORDS = frozenset({"open", "op", "opened", "semiopen", "semi-open"})
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^a-z0-9]+")
_DIGITS = re.compile(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])")


@dataclass(frozen=True)
class LabelledFile:
    """A file of the folder and the class it was given (``source``: "folder" or "file name")."""

    path: Path
    label: str
    source: str


class UnlabelledFilesError(ValueError):
    """Files whose folder and file name name no class; ``files`` are their paths."""

    def __init__(self, root: Path, files: list[Path]) -> None:
        self.files = files
        shown = "\n".join(f"  {p.relative_to(root)}" for p in files[:40])
        more = f"\n  ... and {len(files) - 40} more" if len(files) > 40 else ""
        super().__init__(
            f"{len(files)} file(s) under {str(root)!r} name no class, in their sub-folder or file name:\n"
            f"{shown}{more}\n"
            f"accepted: a sub-folder or file name with a class word: {accepted_words()} "
            f"(classes: {', '.join(CLASSES)}); or pass --skip-unlabelled to train on the rest"
        )


def accepted_words() -> str:
    """The words that label a file, one example list per class (for error messages)."""
    examples = {
        "kick": "kick, bd, bassdrum, 808", "snare": "snare, sd, sn", "clap": "clap, handclap, snap",
        "closed hat": "hat, hihat, hh, chh, closed hat", "open hat": "open hat, ohh, ride, crash, cymbal",
        "tom": "tom, floortom", "perc": "perc, rim, cowbell, shaker, conga, bongo, clave",
        "bass": "bass, sub, 808 bass", "pluck": "pluck, keys, piano, bell, synth, stab",
        "texture": "texture, riser, sweep, noise, pad, fx",
    }
    return "; ".join(f"{cls}: {examples[cls]}" for cls in CLASSES if cls in examples)


def name_words(name: str) -> list[str]:
    """Lower-case words of a file or folder name: split at punctuation, camelCase and digits
    (``HiHatOpen_02`` -> hi, hat, open, 02; ``HH2`` -> hh, 2)."""
    spaced = _CAMEL.sub(" ", name)
    words: list[str] = []
    for word in _SPLIT.split(spaced.lower()):
        if word:
            words.extend(w for w in _DIGITS.sub(" ", word).split() if w)
    return words


def class_for_name(name: str) -> str | None:
    """The class a file or folder name names, or None."""
    lowered = name.lower()
    whole = [w for w in _SPLIT.split(lowered) if w]  # unsplit words: "bassdrum", "hhopen", "t1"
    words = name_words(name)
    found: str | None = None
    for word in (*whole, *words):
        if word in _FILE_WORDS:
            found = _FILE_WORDS[word]
            break
    if found is None:
        found = class_for_prompt(" ".join(words)) or class_for_prompt(" ".join(whole))
    if found == "texture":
        # "noise tom" is a tom: a drum word beats the texture words (noise, fx...) in a file name
        drums = [c for c in (class_for_prompt(w) for w in words) if c not in (None, "texture")]
        found = drums[0] if drums else found
    if found == "open hat" and "closed" in words:  # "cymbal closed": a closed hat
        found = "closed hat"
    if found == "closed hat" and (_OPEN_WORDS.intersection(words) or "open" in lowered):
        found = "open hat"
    return found


def label_file(path: Path, root: Path) -> LabelledFile | None:
    """The class of ``path`` (under ``root``): nearest sub-folder naming a class, else its file name.

    A hat folder's file whose name says open is an open hat.
    """
    from_name = class_for_name(path.stem)
    for folder in path.relative_to(root).parents:
        if folder == Path("."):
            break
        label = class_for_name(folder.name)
        if label is not None:
            if label == "closed hat" and _OPEN_WORDS.intersection(name_words(path.stem)):
                label = "open hat"
            return LabelledFile(path, label, "folder")
    if from_name is None:
        return None
    return LabelledFile(path, from_name, "file name")


def audio_files(root: Path) -> list[Path]:
    """Every audio file under ``root`` (by suffix, case-insensitive), sorted; hidden files skipped."""
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def label_folder(root: Path, skip_unlabelled: bool = False) -> tuple[list[LabelledFile], list[Path]]:
    """Labelled audio files under ``root`` and the files left unlabelled.

    Raises ValueError when ``root`` is not a folder or holds no audio file, and
    :class:`UnlabelledFilesError` for unlabelled files unless ``skip_unlabelled``.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--data {str(root)!r} is not a folder: expected a folder of one-shots")
    files = audio_files(root)
    if not files:
        raise ValueError(f"--data {str(root)!r} holds no audio file: expected {', '.join(AUDIO_SUFFIXES)} files")
    labelled: list[LabelledFile] = []
    unlabelled: list[Path] = []
    for path in files:
        item = label_file(path, root)
        if item is None:
            unlabelled.append(path)
        else:
            labelled.append(item)
    if unlabelled and not skip_unlabelled:
        raise UnlabelledFilesError(root, unlabelled)
    return labelled, unlabelled


def prepare_one_shot(audio: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """A file's audio ``[channels, samples]`` as a model one-shot ``[NATIVE_SAMPLES]`` float32 at
    44.1 kHz, mono, started at its onset, peak ``PEAK``; None for silence."""
    mono = np.asarray(audio, dtype=np.float32).mean(axis=0, keepdims=True)
    if sample_rate != SAMPLE_RATE:
        mono = resample(mono, int(sample_rate), SAMPLE_RATE)
    x = mono[0]
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < 1e-5:
        return None
    onset = int(np.argmax(np.abs(x) >= peak * 10 ** (ONSET_DB / 20)))
    # a few samples before the onset keep the attack's rise
    x = x[max(0, onset - 32):]
    out = np.zeros(NATIVE_SAMPLES, dtype=np.float32)
    kept = min(NATIVE_SAMPLES, x.size)
    out[:kept] = x[:kept]
    fade = min(kept, 441)  # 10 ms fade where a long sound is cut
    if x.size > NATIVE_SAMPLES:
        out[kept - fade:kept] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return (out * (PEAK / float(np.max(np.abs(out))))).astype(np.float32)


def read_one_shots(files: list[LabelledFile]) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Read and prepare ``files``: audio ``[n, NATIVE_SAMPLES]``, class labels ``[n]`` and the paths
    skipped (silent files). Raises AudioReadError naming a file that cannot be read."""
    audio: list[np.ndarray] = []
    labels: list[int] = []
    silent: list[Path] = []
    for item in files:
        data, rate = read_audio_file(item.path, name="training file")
        prepared = prepare_one_shot(data, rate)
        if prepared is None:
            silent.append(item.path)
            continue
        audio.append(prepared)
        labels.append(CLASSES.index(item.label))
    if not audio:
        raise AudioReadError("every training file is silent")
    return np.stack(audio), np.asarray(labels, dtype=np.int64), silent
