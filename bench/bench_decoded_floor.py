"""What the default model's decoder costs the judge: the training recordings, judged as they are and decoded.

``loopbridge eval-default``'s floor is the corpus's training recordings judged by the judge fitted to
every held-out recording (``evaluate.Judge``). Here the same recordings (``--per-class`` a class,
chosen as the evaluation chooses its floor) are also encoded to the model's scaled log-mel
(``spectral.log_mel``) and decoded back through the package's own path for a sampled log-mel of
their class (``DefaultModel._decode``: ``spectral.steady_loudness`` by the config's per-class
settings, ``spectral.invert``, ``spectral.steady_decoded``), then scaled to the recording's peak.
Printed per class: the judge's accuracy on the recordings (the floor) and on each decoding, what it
calls the decoded ones when it misses, and the median attack (``evaluate.attack_measures``: the
first 30 ms against 0.1-0.2 s, dB). The tom's first-frame bound belongs to the sampler and is not
applied.

Each ``--variant NAME:KEY=VALUE;KEY=VALUE`` decodes once more with settings changed: a lower-case
key is a field of the model's ``config.json`` (a JSON value, e.g. ``decoder_steady_rounds={"pluck":0}``
or ``decoder_sharpen_below_hz={"kick":22050}``),
an upper-case key a setting of the ``spectral`` module (``REFINE_ITERATIONS=32``,
``SHARPEN_BELOW_HZ=inf``, ``SHARPEN_ITERATIONS=0``). Also printed: seconds to decode one 1-s one-shot
(median) per decoding, at ``--threads``.

Not a test: nothing here passes or fails.

    python bench/bench_decoded_floor.py --corpus DIR [--model DIR] [--per-class 48] [--threads 1]
        [--variant gl32:REFINE_ITERATIONS=32 ...]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from loopbridge.engine.models.default import DefaultModel, spectral
from loopbridge.engine.models.default.evaluate import (
    ATTACK_FLOOR_DB,
    Judge,
    attack_measures,
    judge_features,
    load_recordings,
)
from loopbridge.engine.models.default.real_corpus import load_manifest
from loopbridge.engine.models.registry import EMBEDDED_DEFAULT_DIR


def parse_variant(text: str, model: DefaultModel) -> tuple[str, dict[str, Any], dict[str, float]]:
    """``NAME:KEY=VALUE;...`` -> (name, config fields, spectral settings); a clear error for a bad one."""
    name, _, rest = text.partition(":")
    if not name or not rest:
        raise ValueError(f"--variant {text!r}: expected NAME:KEY=VALUE;KEY=VALUE")
    fields: dict[str, Any] = {}
    settings: dict[str, float] = {}
    known = set(model.config.to_json())
    for item in rest.split(";"):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"--variant {text!r}: {item!r} is not KEY=VALUE")
        if key.isupper():
            if not isinstance(getattr(spectral, key, None), (int, float)):
                raise ValueError(f"--variant {text!r}: spectral has no numeric setting {key!r}")
            number = float(value)
            settings[key] = int(number) if isinstance(getattr(spectral, key), int) and math.isfinite(number) else number
        elif key in known:
            fields[key] = json.loads(value)
        else:
            raise ValueError(f"--variant {text!r}: {key!r} is neither a config.json field nor a spectral setting")
    return name, fields, settings


@contextmanager
def spectral_settings(settings: dict[str, float]) -> Iterator[None]:
    """The ``spectral`` module's settings changed for the duration (``spectral.invert`` reads them per call)."""
    before = {key: getattr(spectral, key) for key in settings}
    for key, value in settings.items():
        setattr(spectral, key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            setattr(spectral, key, value)


def decode_as_package(model: DefaultModel, audio: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Each recording encoded to the scaled log-mel and decoded as the package decodes its class's
    sampled log-mel, at the recording's peak; with the seconds each decode took."""
    mels = spectral.log_mel(audio)
    out, seconds = [], []
    for row, (mel, label) in enumerate(zip(mels, labels, strict=True)):
        start = time.perf_counter()
        decoded = model._decode(mel, 0, spectral.NATIVE_SAMPLES, stretch=False,
                                class_name=model.config.classes[int(label)])
        seconds.append(time.perf_counter() - start)
        peak = float(np.max(np.abs(decoded)))
        out.append(decoded * (float(np.max(np.abs(audio[row]))) / peak if peak > 0 else 0.0))
    return np.stack(out).astype(np.float32), seconds


def report(classes: list[str], labels: np.ndarray, predicted: dict[str, np.ndarray],
           attack: dict[str, np.ndarray]) -> None:
    """Per class, each column's accuracy by the judge, median attack and what the judge calls its misses."""
    names = list(predicted)
    print("per class: the judge's accuracy | median attack dB (first 30 ms - 0.1..0.2 s)")
    print(f"{'class':<11}" + "".join(f"{n:>10}" for n in names) + " |" + "".join(f"{n:>10}" for n in names))
    for c, cls in enumerate(classes):
        rows = labels == c
        acc = [float(np.mean(predicted[n][rows] == c)) for n in names]
        att = [float(np.median(attack[n][rows])) for n in names]
        print(f"{cls:<11}" + "".join(f"{a:10.2f}" for a in acc) + " |" + "".join(f"{a:10.1f}" for a in att))
    print(f"{'all':<11}" + "".join(f"{float(np.mean(predicted[n] == labels)):10.3f}" for n in names))
    print("what the judge calls the misses (column: class n, ...)")
    for c, cls in enumerate(classes):
        rows = labels == c
        cells = []
        for n in names:
            counts = np.bincount(predicted[n][rows], minlength=len(classes))
            counts[c] = 0
            top = [f"{classes[i]} {counts[i]}" for i in np.argsort(-counts)[:3] if counts[i]]
            cells.append(f"{n}: {', '.join(top) or '-'}")
        print(f"{cls:<11}" + "; ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=EMBEDDED_DEFAULT_DIR)
    parser.add_argument("--per-class", type=int, default=48, help="training recordings per class (the floor's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE;...")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = DefaultModel.load(args.model)
    shipped = model.config
    try:
        variants = [parse_variant(v, model) for v in args.variant]
    except ValueError as exc:
        parser.error(str(exc))
    classes = list(shipped.classes)

    manifest = load_manifest(args.corpus)
    judge_set = load_recordings(args.corpus, manifest, "held-out", classes)
    judge = Judge(judge_features(judge_set.audio), judge_set.labels, len(classes))
    floor = load_recordings(args.corpus, manifest, "train", classes, args.per_class)
    print(f"judge fitted to {len(judge_set.labels)} held-out recordings; {len(floor.labels)} training recordings "
          f"({time.perf_counter() - started:.0f} s)", flush=True)

    predicted = {"recorded": judge.predict(judge_features(floor.audio))}
    attack = {"recorded": attack_measures(floor.audio, ATTACK_FLOOR_DB)}
    report(classes, floor.labels, predicted, attack)
    seconds: dict[str, list[float]] = {}
    for name, fields, settings in [("shipped", {}, {}), *variants]:
        model.config = type(shipped).from_json(shipped.to_json() | fields)
        with spectral_settings(settings):
            decoded, seconds[name] = decode_as_package(model, floor.audio, floor.labels)
        model.config = shipped
        predicted[name] = judge.predict(judge_features(decoded))
        attack[name] = attack_measures(decoded, ATTACK_FLOOR_DB)
        print(f"\ndecoded: {name} ({time.perf_counter() - started:.0f} s); seconds to decode one 1-s one-shot "
              f"(median, {args.threads} thread(s)) {np.median(seconds[name]):.3f}")
        report(classes, floor.labels, predicted, attack)
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
