"""Where the default model's envelope goes wrong: the network, the de-flicker stage or the decoder.

Per class, the median flicker, jitter and attack (``evaluate.flicker_measures``,
``evaluate.envelope_measures``, ``evaluate.attack_measures``: the figures ``loopbridge eval-default``
compares with the held-out recordings; flicker is the target's, jitter also counts a decay's slope) of:

- ``rec``: recordings of the corpus's training and held-out kits, as recorded;
- ``dec``: the same recordings encoded to the model's log-mel and decoded (the decoder's own loss),
  with and without the de-flicker stage (``spectral.steady_loudness`` at the class's onset rise);
- the model's one-shots (the evaluation's seeds): its sampled log-mel before and after the stage
  (flicker and jitter read on the log-mel itself; ``mel attack``: the power of frames 0-2 against frames 9-17,
  the same reading on every row) and decoded, as ``generate`` returns them.

- ``first frame``: how much louder (dB) a log-mel's first frame is than its second, median per class:
  a recording starts at its onset, which falls in both; the network's first frame overshoots
  (MODEL.md, "The first frame"), and ``ModelConfig.first_frame_most_db`` bounds it in the sampler.
  ``--no-first-frame-bound`` samples without that bound, to see the network's own.

``--stage`` picks the de-flicker variants compared (``shipped`` is the package's config). Not a test:
nothing here passes or fails.

    python bench/bench_envelope_chain.py --corpus DIR [--per-class 16] [--split train|held-out|both]
        [--stage shipped --stage NAME ...] [--cache FILE] [--no-first-frame-bound]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from loopbridge.engine.models.default import DefaultModel, spectral
from loopbridge.engine.models.default.evaluate import (
    _JITTER_FRAMES,
    ATTACK_FLOOR_DB,
    FLICKER_ABOVE_SILENCE_DB,
    FLICKER_BELOW_PEAK_DB,
    FLICKER_MIN_FRAMES,
    GENERATED_SEED_BASE,
    SILENCE_DB,
    EvalSettings,
    attack_measures,
    envelope_measures,
    flicker_measures,
    generate_class_set,
    load_recordings,
)
from loopbridge.engine.models.default.real_corpus import load_manifest
from loopbridge.engine.models.registry import EMBEDDED_DEFAULT_DIR

Stage = Callable[[torch.Tensor, str], torch.Tensor]


def mel_jitter(mel: torch.Tensor) -> np.ndarray:
    """``[n]``: the evaluation's jitter read straight off scaled log-mels ``[n, mels, frames]``."""
    loud = spectral.frame_loudness_db(spectral.unit_to_db(mel.float())).numpy()
    return np.median(np.abs(np.diff(loud[:, _JITTER_FRAMES], axis=1)), axis=1)


def mel_flicker(mel: torch.Tensor) -> np.ndarray:
    """``[n]``: the evaluation's flicker read straight off scaled log-mels ``[n, mels, frames]`` (NaN:
    too few frames sound)."""
    loud = spectral.frame_loudness_db(spectral.unit_to_db(mel.float())).numpy()
    curvature = np.abs(loud[:, :-2] - 2.0 * loud[:, 1:-1] + loud[:, 2:]) / 4.0
    readable = loud > np.maximum(loud.max(axis=1, keepdims=True) - FLICKER_BELOW_PEAK_DB,
                                 SILENCE_DB + FLICKER_ABOVE_SILENCE_DB)
    readable = readable[:, :-2] & readable[:, 1:-1] & readable[:, 2:]
    frames = np.arange(1, loud.shape[1] - 1)
    readable &= (frames >= _JITTER_FRAMES.start) & (frames < _JITTER_FRAMES.stop)
    return np.array([float(np.median(c[r])) if r.sum() >= FLICKER_MIN_FRAMES else np.nan
                     for c, r in zip(curvature, readable, strict=True)])


def first_over_second(mel: torch.Tensor) -> np.ndarray:
    """``[n]``: how much louder (dB) a log-mel's first frame is than its second."""
    loud = spectral.frame_loudness_db(spectral.unit_to_db(mel.float()[..., :2])).numpy()
    return loud[:, 0] - loud[:, 1]


def mel_attack(mel: torch.Tensor) -> np.ndarray:
    """``[n]``: the power of a log-mel's frames 0-2 against frames 9-17 (about 0.1-0.2 s), in dB."""
    power = 10.0 ** (spectral.frame_loudness_db(spectral.unit_to_db(mel.float())).numpy() / 10.0)
    return 10.0 * np.log10(power[:, 0:3].mean(axis=1) + 1e-12) - 10.0 * np.log10(power[:, 9:18].mean(axis=1) + 1e-12)


#: decoders compared (``--decoder``), each given the spectrogram and the loudness rounds the package's
#: config asks for its class: the package's, and variants of its settings
DECODERS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    # (with the package's steady_decoded rounds after it, in decode)
    "shipped": lambda mel, rounds: spectral.invert(mel, loudness_rounds=rounds),
    "unsteadied": lambda mel, rounds: spectral.invert(mel, loudness_rounds=rounds),
    # no class's frame loudness matched to the spectrogram (the decoder before the rounds existed)
    "unmatched": lambda mel, rounds: spectral.invert(mel),
    # every class's matched, 4 rounds
    "matched": lambda mel, rounds: spectral.invert(mel, loudness_rounds=spectral.LOUDNESS_ROUNDS),
    "gl32": lambda mel, rounds: spectral.invert(mel, 32, loudness_rounds=rounds),
    "random32": lambda mel, rounds: spectral.invert(mel, 32, torch.Generator().manual_seed(0), start="random",
                                                    sharpen=0),
}


def decode(mels: torch.Tensor, labels: np.ndarray, model: DefaultModel, stage: Stage | None,
           decoder: str = "shipped") -> np.ndarray:
    classes = model.config.classes
    rows = []
    for mel, label in zip(mels, labels, strict=True):
        if stage is not None:
            mel = stage(mel[None], classes[label])[0]
        audio = DECODERS[decoder](mel[None], model.config.loudness_rounds(classes[label]))
        if decoder == "shipped":  # the package's: the decoded wobble taken out in the classes that ask
            name = classes[label]
            audio = spectral.steady_decoded(audio, model.config.steady_rounds(name), model.config.most_db(name),
                                            model.config.onset_rise_db(name), model.config.decoded_half_frames(name),
                                            model.config.decoded_trend(name))
        rows.append(audio[0].numpy())
    return np.stack(rows)


def stages(model: DefaultModel) -> dict[str, Stage]:
    config = model.config
    return {
        "none": lambda mel, name: mel,
        "shipped": lambda mel, name: spectral.steady_loudness(mel, config.most_db(name), config.onset_rise_db(name),
                                                              config.half_frames(name)),
        "rise3": lambda mel, name: spectral.steady_loudness(mel, config.steady_loudness_db, spectral.ONSET_RISE_DB),
        # the stage as first shipped with the per-class onset rise: 6 dB for these four classes,
        # 3 frames either side, 3 dB at most
        "rise6": lambda mel, name: spectral.steady_loudness(
            mel, config.steady_loudness_db, 6.0 if name in ("tom", "bass", "pluck", "texture") else 3.0),
    } | {
        # the package's stage with the mean over ``half`` frames either side in every class
        f"half{half}": (lambda mel, name, half=half: spectral.steady_loudness(
            mel, config.most_db(name), config.onset_rise_db(name), half))
        for half in (2, 3, 4, 6, 8)
    }


def medians(values: np.ndarray, labels: np.ndarray, classes: list[str]) -> list[float]:
    """Per class, the median of ``values`` over its rows that have one (NaN: none)."""
    out = []
    for c in range(len(classes)):
        v = values[(labels == c) & ~np.isnan(values)]
        out.append(float(np.median(v)) if v.size else float("nan"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=EMBEDDED_DEFAULT_DIR)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--split", choices=("train", "held-out", "both"), default="both")
    parser.add_argument("--stage", action="append", default=None)
    parser.add_argument("--decoder", action="append", default=None, choices=sorted(DECODERS))
    parser.add_argument("--cache", type=Path, default=None, help="the model's sampled log-mels, kept between runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-first-frame-bound", action="store_true",
                        help="sample without the config's bound on the first frame (the network's own)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = DefaultModel.load(args.model)
    if args.no_first_frame_bound:
        model.config = dataclasses.replace(model.config, first_frame_most_db={})
    classes = list(model.config.classes)
    known = stages(model)
    chosen = args.stage or ["none", "shipped"]
    for name in chosen:
        if name not in known:
            parser.error(f"--stage {name!r} is not known: expected one of {', '.join(known)}")
    decoders = args.decoder or ["shipped"]
    manifest = load_manifest(args.corpus)
    rows: list[tuple[str, list[float], list[float], list[float]]] = []  # label, jitter, attack, flicker per class
    firsts: list[tuple[str, list[float]]] = []  # label, first frame over second per class

    splits = ["train", "held-out"] if args.split == "both" else [args.split]
    for split in splits:
        recs = load_recordings(args.corpus, manifest, split, classes, args.per_class)
        jitter, _, _ = envelope_measures(recs.audio)
        rows.append((f"{split} rec", medians(jitter, recs.labels, classes),
                     medians(attack_measures(recs.audio, ATTACK_FLOOR_DB), recs.labels, classes),
                     medians(flicker_measures(recs.audio), recs.labels, classes)))
        mels = spectral.log_mel(recs.audio)
        firsts.append((f"{split} rec", medians(first_over_second(mels), recs.labels, classes)))
        for name in chosen:
            for dec in decoders:
                audio = decode(mels, recs.labels, model, known[name], dec)
                jitter, _, _ = envelope_measures(audio)
                rows.append((f"{split} {dec}, {name}", medians(jitter, recs.labels, classes),
                             medians(attack_measures(audio, ATTACK_FLOOR_DB), recs.labels, classes),
                             medians(flicker_measures(audio), recs.labels, classes)))

    # the model: sampled log-mels, kept from the decoder by wrapping it
    captured: list[torch.Tensor] = []
    if args.cache is not None and args.cache.is_file():
        saved = torch.load(args.cache)
        model_mels, model_labels = saved["mels"], saved["labels"].numpy()
    else:
        original = model._decode

        def keep(mel: torch.Tensor, *rest: object, **named: object) -> np.ndarray:
            captured.append(mel.clone())
            return original(mel, *rest, **named)  # type: ignore[arg-type]

        model._decode = keep  # type: ignore[method-assign]
        _, model_labels = generate_class_set(model, args.per_class, EvalSettings(), GENERATED_SEED_BASE)
        model._decode = original  # type: ignore[method-assign]
        model_mels = torch.stack(captured)
        if args.cache is not None:
            torch.save({"mels": model_mels, "labels": torch.from_numpy(model_labels)}, args.cache)
    firsts.append(("model mel", medians(first_over_second(model_mels), model_labels, classes)))
    rows.append(("model mel", medians(mel_jitter(model_mels), model_labels, classes),
                 medians(mel_attack(model_mels), model_labels, classes),
                 medians(mel_flicker(model_mels), model_labels, classes)))
    for name in chosen:
        staged = torch.cat([known[name](m[None], classes[c]) for m, c in zip(model_mels, model_labels, strict=True)])
        rows.append((f"model mel, {name}", medians(mel_jitter(staged), model_labels, classes),
                     medians(mel_attack(staged), model_labels, classes),
                     medians(mel_flicker(staged), model_labels, classes)))
        for dec in decoders:
            audio = decode(model_mels, model_labels, model, known[name], dec)
            jitter, _, _ = envelope_measures(audio)
            rows.append((f"model {dec}, {name}", medians(jitter, model_labels, classes),
                         medians(attack_measures(audio, ATTACK_FLOOR_DB), model_labels, classes),
                         medians(flicker_measures(audio), model_labels, classes)))

    short = [c[:6] for c in classes]
    for title, index in (("flicker dB (median per class over the one-shots that sound long enough; the target's)", 3),
                         ("jitter dB (median per class; counts a decay's slope too)", 1),
                         ("attack dB (median per class; 'mel' rows: mel attack)", 2)):
        print(title)
        print(f"{'':28s}" + "".join(f"{s:>7s}" for s in short))
        for row in rows:
            print(f"{row[0]:28s}" + "".join(f"{v:7.2f}" for v in row[index]))  # type: ignore[attr-defined]
        print()
    print("first frame over second, dB (median per class, log-mel)")
    print(f"{'':28s}" + "".join(f"{s:>7s}" for s in short))
    for label, values in firsts:
        print(f"{label:28s}" + "".join(f"{v:7.2f}" for v in values))
    print()
    print(f"took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
