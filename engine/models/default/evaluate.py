"""Measure the default model: ``loopbridge eval-default`` or ``python -m loopbridge.engine.models.default.evaluate``.

Against real recordings (the reference)
---------------------------------------

``loopbridge eval-default [--model DIR] [--corpus DIR] [--quick] [--json]`` measures a model against
the held-out split of the real-recordings corpus (``real_corpus.py``: whole kits and instruments the
training never hears; built into ``--corpus`` when it is missing), and prints its figures beside the
shipped model's and the floor's: the training recordings themselves, measured as if a model had made
them (what a model that sounded exactly like its training data would score).

- Class accuracy: a classifier (the judge, :class:`Judge`: a logistic regression and three small
  MLPs on :func:`judge_features`, their probabilities averaged) fitted to every held-out recording,
  each class weighted equally, labels 16 generated one-shots per class; the share labelled as asked,
  averaged over classes. The judge never
  hears the training recordings or generated audio. Its own trust is measured leave-one-kit-out:
  each held-out recording labelled by a judge fitted without its kit (or instrument).
- Fréchet distance of the log-mel statistics (band means over time, loudness envelope) and of the
  envelope statistics, to the held-out recordings (up to 48 per class).
- Envelope: per class, the median flicker (:func:`flicker_measures`: the loudness's wobble from
  frame to frame around its own course, 58 ms to 0.7 s, frames within 40 dB of the peak) as a ratio
  to the held-out recordings' (at least 0.1 dB), the issue's "no flicker" target; beside it the
  jitter as first measured (the median frame-to-frame loudness change, at least 0.25 dB), which
  also counts a decay's slope (a one-shot that decays faster, without any wobble, scores higher:
  ``bench/bench_flicker_measure.py``); and the attack (first 30 ms against 0.1 to 0.2 s, each level
  at least 60 dB below the one-shot's peak) minus the recordings'.
- Diversity: mean pairwise distance within a class, as a share of the held-out recordings'.
- Memorization: the share of generated one-shots whose best normalized cross-correlation (any lag,
  either polarity, at 22.05 kHz) with a training recording of their class exceeds 0.9. The floor's
  figure is the held-out recordings' own against the training ones. Pitched sounds at the same note
  correlate highly without being copies (a harp's and a celesta's C4: 0.95), so a share for bass
  and pluck says more when read with the floor's.

``--quick`` is a reduced run (3 one-shots per class, 12 held-out and 24 training recordings per class).

Against the synthesized corpus (``--synthesized``, the earlier evaluation)
--------------------------------------------------------------------------

Three measures, each against held-out synthesized one-shots (a corpus seed the training never saw):

1. Conditional accuracy: a small classifier trained on held-out one-shots labels generated ones; the
   share labelled as the class that was asked for, averaged over classes.
2. Realism: the Fréchet distance between Gaussians fitted to log-mel statistics (band means over
   time, and the loudness envelope) of generated and held-out one-shots, next to two baselines run
   through the same decoder: class-shaped noise (each class's mean spectrum and mean loudness
   envelope, random phase) and the untrained network. The codec's own floor (held-out one-shots
   encoded and decoded) is shown too.
3. Diversity: mean pairwise distance between one class's generated one-shots (one seed each), as a
   share of the mean pairwise distance inside that class of the held-out corpus.
4. Envelope: the realism statistics average over bands and 4-frame blocks, so a one-shot whose level
   flickers from frame to frame, or that holds its level where the corpus's sounds die away, can
   still score well there. Per class, from each one-shot's loudness per STFT frame (11.6 ms): the
   jitter (median absolute frame-to-frame change, 58 ms to 0.7 s) and the decay (the drop from 0.1 s
   to 0.6 s), generated against held-out and against held-out encoded and decoded (the decoder's
   phase estimate adds some jitter of its own, so the jitter ratio is taken against that); and a
   Fréchet distance on envelope statistics (loudness at 2-frame resolution and the mean absolute
   frame-to-frame change per 4-frame block) next to the same baselines.

Prints a table on stdout (``--json`` for a JSON object). Exit status 0, or 2 for bad arguments or an
unloadable model folder.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import linalg

from ...errors import ModelLoadError
from ...request import GenerateRequest, Kind
from ..registry import EMBEDDED_DEFAULT_DIR
from . import spectral
from .backend import DefaultModel
from .corpus import render_corpus
from .model import MelUNet
from .train import HELD_OUT_CORPUS_SEED

#: the classifier is trained on one held-out corpus, the realism reference is another
CLASSIFIER_CORPUS_SEED = HELD_OUT_CORPUS_SEED
REFERENCE_CORPUS_SEED = HELD_OUT_CORPUS_SEED + 1


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pooled_log_mel(audio: np.ndarray) -> np.ndarray:
    """``[n, 40 * 22]``: log-mels of ``audio`` ``[n, samples]`` averaged over 2 bands x 4 frames."""
    mel = spectral.log_mel(audio)  # [n, 80, 88]
    pooled = torch.nn.functional.avg_pool2d(mel[:, None], kernel_size=(2, 4))[:, 0]
    return pooled.reshape(len(audio), -1).numpy().astype(np.float64)


def realism_features(audio: np.ndarray) -> np.ndarray:
    """``[n, 40 + 22]``: per-band means over time and the loudness envelope (band means per frame)."""
    pooled = pooled_log_mel(audio).reshape(len(audio), 40, 22)
    return np.concatenate([pooled.mean(axis=2), pooled.mean(axis=1)], axis=1)


#: frames of the envelope measures (hop 512 at 44.1 kHz: 11.6 ms a frame)
_JITTER_FRAMES = slice(5, 60)  # 58 ms to 0.7 s: past the attack, where the corpus's one-shots ring out
_DECAY_FROM_S, _DECAY_TO_S = 0.1, 0.6
_ATTACK_S = 0.03
_ATTACK_BODY_S = (0.1, 0.2)
#: a class is struck when its held-out one-shots' median attack is at least this (dB)
STRUCK_DB = 1.0
#: classes whose held-out one-shots fall at least this much from 0.1 s to 0.6 s count as decaying ...
DECAYING_DB = 10.0
#: ... when they are still this far above silence at 0.1 s (a closed hat has all but gone by then)
SOUNDING_DB = 30.0
#: the loudness of silence: every band at the spectrogram's floor
SILENCE_DB = spectral.DB_FLOOR + 10.0 * float(np.log10(spectral.N_MELS))
#: jitter ratios divide by at least this: a class that is silent by 58 ms has a jitter of 0
JITTER_FLOOR_DB = 0.25


def loudness_envelope(audio: np.ndarray) -> np.ndarray:
    """``[n, 88]`` loudness per frame in dB: the power sum over the log-mel bands of ``audio`` ``[n, samples]``."""
    return spectral.frame_loudness_db(spectral.unit_to_db(spectral.log_mel(audio))).numpy()


def envelope_measures(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Jitter, decay and level in dB, one of each per one-shot of ``audio`` ``[n, samples]``.

    Jitter: the median absolute frame-to-frame change of the loudness over ``_JITTER_FRAMES``.
    Decay: the loudness at 0.1 s minus that at 0.6 s (each a 3-frame mean), positive for a falling level.
    Level: the loudness at 0.1 s.
    """
    envelope = loudness_envelope(audio)
    jitter = np.median(np.abs(np.diff(envelope[:, _JITTER_FRAMES], axis=1)), axis=1)

    def level_at(seconds: float) -> np.ndarray:
        frame = int(round(seconds * spectral.SAMPLE_RATE / spectral.HOP))
        return envelope[:, frame - 1 : frame + 2].mean(axis=1)

    level = level_at(_DECAY_FROM_S)
    return jitter, level - level_at(_DECAY_TO_S), level


#: frames whose loudness is more than this below the one-shot's loudest frame are not read for flicker
FLICKER_BELOW_PEAK_DB = 40.0
#: ... nor frames less than this above the silent floor's loudness (a tail's noise, digital silence)
FLICKER_ABOVE_SILENCE_DB = 12.0
#: a one-shot with fewer readable frames than this has no flicker figure (it has died away by 58 ms)
FLICKER_MIN_FRAMES = 5
#: flicker ratios divide by at least this (dB): a loudness alternating by ±0.1 dB from frame to frame
#: (a modulation depth near -38 dB) is far below what the ear detects at that rate, so a class whose
#: recordings flicker less does not make an inaudible difference a large ratio
FLICKER_FLOOR_DB = 0.1


def flicker_measures(audio: np.ndarray) -> np.ndarray:
    """Flicker in dB, one per one-shot of ``audio`` ``[n, samples]`` (NaN when fewer than
    :data:`FLICKER_MIN_FRAMES` frames can be read): how much the loudness wobbles from frame to frame
    around its own course, whatever that course's slope.

    The median over ``_JITTER_FRAMES`` of ``|L[t-1] - 2 L[t] + L[t+1]| / 4``, ``L`` the loudness per
    frame (:func:`loudness_envelope`), read where the three frames are all at most
    :data:`FLICKER_BELOW_PEAK_DB` below the one-shot's loudest frame and
    :data:`FLICKER_ABOVE_SILENCE_DB` above silence. A straight course in dB (a steady exponential
    decay, at any rate) reads 0, and a loudness alternating by ±a dB reads a; the median leaves out the
    few frames where a decay bends (its first fast fall turning into a slower one). The jitter of
    :func:`envelope_measures` (the median frame-to-frame change) counts the slope of a decay as well:
    a recording that decays faster, without any wobble, scores a higher jitter.
    """
    envelope = loudness_envelope(audio)
    curvature = np.abs(envelope[:, :-2] - 2.0 * envelope[:, 1:-1] + envelope[:, 2:]) / 4.0  # frame t = 1 ...
    peak = envelope.max(axis=1, keepdims=True)
    readable = envelope > np.maximum(peak - FLICKER_BELOW_PEAK_DB, SILENCE_DB + FLICKER_ABOVE_SILENCE_DB)
    readable = readable[:, :-2] & readable[:, 1:-1] & readable[:, 2:]
    frames = np.arange(1, envelope.shape[1] - 1)
    readable &= (frames >= _JITTER_FRAMES.start) & (frames < _JITTER_FRAMES.stop)
    flicker = np.full(len(envelope), np.nan)
    for row in range(len(envelope)):
        values = curvature[row, readable[row]]
        if values.size >= FLICKER_MIN_FRAMES:
            flicker[row] = float(np.median(values))
    return flicker


def attack_measures(audio: np.ndarray, floor_db: float | None = None) -> np.ndarray:
    """Attack in dB, one per one-shot of ``audio`` ``[n, samples]``: the RMS level of the first
    ``_ATTACK_S`` minus that from 0.1 s to 0.2 s, on the waveform (so energy counts as it sounds:
    a kick's body weighs in as much as it does to the ear, not one mel band's worth). A struck
    sound (a kick, a snare) is loudest at its start; a sound that swells after its onset scores below 0.
    ``floor_db`` (negative) bounds both levels from below, relative to each one-shot's peak."""
    audio = np.asarray(audio, dtype=np.float64)
    # both levels at least ``floor_db`` below the one-shot's peak (when given): a recording whose
    # tail was cut to digital silence before 0.1 s would otherwise score an attack of 100 dB or more
    lowest = (20.0 * np.log10(np.abs(audio).max(axis=1) + 1e-12) + floor_db) if floor_db is not None else -np.inf

    def rms_db(start_s: float, end_s: float) -> np.ndarray:
        piece = audio[:, int(start_s * spectral.SAMPLE_RATE):int(end_s * spectral.SAMPLE_RATE)]
        return np.maximum(10.0 * np.log10(np.mean(piece ** 2, axis=1) + 1e-12), lowest)

    return rms_db(0.0, _ATTACK_S) - rms_db(*_ATTACK_BODY_S)


def envelope_features(audio: np.ndarray) -> np.ndarray:
    """``[n, 44 + 22]``: loudness averaged over 2 frames, and the mean absolute frame-to-frame change
    of the loudness in each 4-frame block (averaging the changes' size, not the level, keeps a
    flicker visible), both in units of 10 dB."""
    envelope = loudness_envelope(audio) / 10.0
    n, frames = envelope.shape
    level = envelope[:, : frames // 2 * 2].reshape(n, -1, 2).mean(axis=2)
    change = np.abs(np.diff(envelope, axis=1, prepend=envelope[:, :1]))
    change = change[:, : frames // 4 * 4].reshape(n, -1, 4).mean(axis=2)
    return np.concatenate([level, change], axis=1)


def per_class_medians(values: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    return {name: float(np.median(values[labels == c])) for c, name in enumerate(classes) if np.any(labels == c)}


def per_class_flicker(flicker: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Per class, the median of :func:`flicker_measures` over the one-shots that have a figure; 0 for a
    class none of whose one-shots sound long enough to be read."""
    out = {}
    for c, name in enumerate(classes):
        if np.any(labels == c):
            values = flicker[labels == c]
            values = values[~np.isnan(values)]
            out[name] = float(np.median(values)) if values.size else 0.0
    return out


def _summary(per_class: dict[str, float], worst: str) -> dict[str, Any]:
    """``per_class`` with its median and its worst value (``"max"`` or ``"min"``); None for no classes."""
    values = list(per_class.values())
    pick = max if worst == "max" else min
    return {"per_class": per_class, worst: float(pick(values)) if values else None,
            "median": float(np.median(values)) if values else None}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` ``[n, d]`` and ``b`` ``[m, d]``."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    root = np.real(root)
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))
    return max(value, 0.0)


def mean_pairwise_distance(features: np.ndarray) -> float:
    diffs = features[:, None, :] - features[None, :, :]
    dist = np.sqrt((diffs**2).sum(-1))
    n = len(features)
    return float(dist.sum() / (n * (n - 1))) if n > 1 else 0.0


class Classifier:
    """A small MLP on pooled log-mels, trained on held-out synthesized one-shots (seeded, full batch)."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, n_classes: int, seed: int = 0, epochs: int = 300):
        self.mean = features.mean(axis=0)
        self.std = features.std(axis=0) + 1e-6
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(features.shape[1], 128), torch.nn.ReLU(), torch.nn.Dropout(0.2),
            torch.nn.Linear(128, n_classes),
        )
        x = torch.from_numpy((features - self.mean) / self.std).float()
        y = torch.from_numpy(labels).long()
        optimizer = torch.optim.Adam(self.net.parameters(), lr=2e-3, weight_decay=1e-3)
        self.net.train()
        for _ in range(epochs):
            # light input noise so the classifier does not key on exact synthesizer values
            noisy = x + 0.1 * torch.randn(x.shape, generator=generator)
            loss = torch.nn.functional.cross_entropy(self.net(noisy), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        self.net.eval()

    def predict(self, features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy((features - self.mean) / self.std).float()
            return self.net(x).argmax(dim=1).numpy()


# ---- the judge of class accuracy against real recordings ----------------------------------------

#: frames of the judge's time segments: the onset (0-35 ms), the hit (35-105 ms), the body (0.1-0.3 s), the tail
JUDGE_SEGMENTS = ((0, 3), (3, 9), (9, 26), (26, spectral.FRAMES))
#: the judge's loudness envelope: mean level over these frame spans, log-spaced
_JUDGE_ENVELOPE_EDGES = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, spectral.FRAMES)
_JUDGE_MFCC = 20
#: levels relative to a one-shot's loudest frame are floored here (dB): a recording's digital silence
#: and a model's noise floor read alike
_JUDGE_FLOOR_DB = -80.0
#: frames within this of the loudest (dB) are the sounding ones the MFCC statistics average over
_JUDGE_SOUNDING_DB = -50.0


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II ``[n_out, n_in]``: log-mel bands to cepstral coefficients."""
    k = np.arange(n_out)[:, None]
    i = np.arange(n_in)[None, :]
    matrix = np.cos(np.pi / n_in * (i + 0.5) * k) * np.sqrt(2.0 / n_in)
    matrix[0] /= np.sqrt(2.0)
    return matrix


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of ``values`` ``[n, ..., frames]`` over its last axis with ``weights`` ``[n, frames]``."""
    w = weights.reshape(weights.shape[0], *([1] * (values.ndim - 2)), weights.shape[1])
    return (values * w).sum(axis=-1) / w.sum(axis=-1)


def judge_features(audio: np.ndarray) -> np.ndarray:
    """``[n, 577]`` features that tell the classes apart, for one-shots ``audio`` ``[n, samples]`` (the
    native length; shorter ones are padded). Every level is taken relative to the one-shot's loudest
    frame, so a gain changes nothing.

    - log-mel (40 bands) averaged over each of :data:`JUDGE_SEGMENTS`, and each band's spread over time;
    - MFCC (20) over the sounding frames: mean, spread and mean absolute change (deltas), and the mean
      in each of the first three segments (the hit's timbre against the body's);
    - the loudness envelope over log-spaced spans, the peak's frame and the frames it takes to fall
      10, 20 and 40 dB, and the frame-to-frame jitter;
    - spectral centroid, bandwidth, flatness and 85 % roll-off, per segment (weighted by the frames'
      power) and their spread over the sounding frames;
    - how tonal the first 0.3 s is: the height and lag of the autocorrelation's highest peak between
      30 Hz and 2 kHz;
    - the onset at 2.9 ms resolution and its bursts (:func:`_onset_features`), periodicity and pitch in
      three windows and the pitch's course (:func:`_pitch_features`), the body's low end in bands
      of 20 to 130 Hz and its spectrum's peakedness (:func:`_low_band_features`), the zero-crossing
      rate per segment, the decay's slope, the sounding length and the loudness's centre in time
      (:func:`_course_features`), and the log-mel in 20 bands over seven finer segments with each
      band's maximum (:func:`_fine_segment_features`).
    """
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    if x.ndim == 1:
        x = x[None]
    need = spectral.NATIVE_SAMPLES
    x = torch.nn.functional.pad(x, (0, max(0, need - x.shape[-1])))[:, :need]
    x = x / x.abs().amax(dim=1, keepdim=True).clamp_min(1e-9)  # peak 1: the floors below sit as far under any one-shot
    n = x.shape[0]
    power = (spectral.stft(x).abs() ** 2)[..., : spectral.FRAMES].double().numpy()  # [n, bins, frames]
    mel_power = np.matmul(spectral.mel_filters().astype(np.float64), power)
    frame_power = mel_power.sum(axis=1)
    loud = 10.0 * np.log10(frame_power + 1e-12)
    peak = loud.max(axis=1, keepdims=True)
    rel = np.maximum(10.0 * np.log10(mel_power + 1e-12) - peak[:, :, None], _JUDGE_FLOOR_DB)
    loud_rel = np.maximum(loud - peak, _JUDGE_FLOOR_DB)
    sounding = (loud_rel > _JUDGE_SOUNDING_DB).astype(np.float64) + 1e-3
    features: list[np.ndarray] = []

    bands = rel.reshape(n, spectral.N_MELS // 2, 2, -1).mean(axis=2)
    features += [bands[:, :, a:b].mean(axis=2) / 20.0 for a, b in JUDGE_SEGMENTS]
    features.append(bands.std(axis=2) / 10.0)

    mfcc = np.matmul(_dct_matrix(spectral.N_MELS, _JUDGE_MFCC), rel) / 100.0
    mean = _weighted_mean(mfcc, sounding)
    spread = np.sqrt(_weighted_mean((mfcc - mean[:, :, None]) ** 2, sounding))
    change = _weighted_mean(np.abs(np.diff(mfcc, axis=2)), sounding[:, 1:]) * 5.0
    features += [mean, spread, change]
    features += [mfcc[:, :, a:b].mean(axis=2) for a, b in JUDGE_SEGMENTS[:3]]

    edges = _JUDGE_ENVELOPE_EDGES
    features.append(np.stack([loud_rel[:, a:b].mean(axis=1) for a, b in itertools.pairwise(edges)],
                             axis=1) / 20.0)
    peak_frame = loud.argmax(axis=1)
    frames = np.arange(spectral.FRAMES)

    def frames_to_fall(db: float) -> np.ndarray:
        below = (loud_rel < db) & (frames[None, :] > peak_frame[:, None])
        first = np.where(below.any(axis=1), below.argmax(axis=1), spectral.FRAMES)
        return np.log1p(first - peak_frame)

    features.append(np.stack([np.log1p(peak_frame), frames_to_fall(-10.0), frames_to_fall(-20.0),
                              frames_to_fall(-40.0)], axis=1))
    features.append(np.log1p(np.median(np.abs(np.diff(loud_rel[:, _JITTER_FRAMES], axis=1)), axis=1))[:, None])

    freqs = np.fft.rfftfreq(spectral.N_FFT, 1.0 / spectral.SAMPLE_RATE)[None, :, None]
    total = power.sum(axis=1) + 1e-12
    centroid = (power * freqs).sum(axis=1) / total
    bandwidth = np.sqrt((power * (freqs - centroid[:, None]) ** 2).sum(axis=1) / total)
    flatness = np.exp(np.log(power + 1e-12).mean(axis=1)) / (power.mean(axis=1) + 1e-12)
    rolloff = freqs[0, np.argmax(np.cumsum(power, axis=1) >= 0.85 * total[:, None], axis=1), 0]
    share = frame_power / frame_power.sum(axis=1, keepdims=True).clip(1e-30)
    for course in (np.log2(centroid + 20.0) / 4.0, np.log2(bandwidth + 20.0) / 4.0,
                   np.log10(flatness + 1e-12) / 2.0, np.log2(rolloff + 20.0) / 4.0):
        features += [_weighted_mean(course[:, a:b], share[:, a:b] + 1e-12)[:, None] for a, b in JUDGE_SEGMENTS]
        average = _weighted_mean(course, sounding)
        features.append(np.sqrt(_weighted_mean((course - average[:, None]) ** 2, sounding))[:, None])

    start = x[:, : int(0.3 * spectral.SAMPLE_RATE)].double().numpy()
    start = start - start.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * start.shape[1])))
    autocorrelation = np.fft.irfft(np.abs(np.fft.rfft(start, size)) ** 2, size)[:, : start.shape[1]]
    autocorrelation /= autocorrelation[:, :1] + 1e-12
    low, high = spectral.SAMPLE_RATE // 2000, spectral.SAMPLE_RATE // 30
    lag = autocorrelation[:, low:high].argmax(axis=1) + low
    features.append(np.stack([autocorrelation[np.arange(n), lag], np.log2(spectral.SAMPLE_RATE / lag) / 4.0], axis=1))

    audio64 = x.double().numpy()
    features += [_onset_features(audio64), _pitch_features(audio64), _low_band_features(audio64),
                 _course_features(audio64, loud_rel), _fine_segment_features(rel)]
    return np.concatenate(features, axis=1).astype(np.float32)


#: the onset's fine envelope: RMS over hops of this many samples (2.9 ms) ...
_ONSET_HOP = 128
#: ... over this many hops (186 ms)
_ONSET_HOPS = 64
#: windows (seconds) whose periodicity and pitch the judge reads: the hit, the body, the tail
_PITCH_WINDOWS = ((0.005, 0.065), (0.06, 0.2), (0.2, 0.5))
#: band edges (Hz) of the low end, read from a long FFT of the body (a kick's, a tom's and a bass's fundamentals)
_LOW_EDGES_HZ = (20, 40, 60, 80, 100, 130, 160, 200, 250, 320, 400)
#: the log-mel's 80 bands pooled to 20 over these finer frame spans (11.6 ms a frame)
_FINE_SEGMENTS = ((0, 1), (1, 3), (3, 6), (6, 13), (13, 26), (26, 52), (52, spectral.FRAMES))


def _onset_features(audio: np.ndarray) -> np.ndarray:
    """``[n, 34]``: the first 186 ms at 2.9 ms resolution (a clap's several bursts, a stick's click):
    the level relative to the loudest hop in 32 pairs of hops, how many bursts come within 12 dB of
    the loudest in the first 93 ms, and the hops it takes to rise within 3 dB of it."""
    n = len(audio)
    hops = audio[:, : _ONSET_HOP * _ONSET_HOPS].reshape(n, _ONSET_HOPS, _ONSET_HOP)
    db = 10.0 * np.log10((hops ** 2).mean(axis=2) + 1e-12)
    db = np.maximum(db - db.max(axis=1, keepdims=True), -60.0)
    pooled = db.reshape(n, _ONSET_HOPS // 2, 2).mean(axis=2) / 20.0
    early = np.pad(db[:, : _ONSET_HOPS // 2], ((0, 0), (1, 0)), constant_values=-60.0)  # the first hop can peak
    bursts = (early[:, 1:-1] > early[:, :-2]) & (early[:, 1:-1] >= early[:, 2:]) & (early[:, 1:-1] > -12.0)
    rise = np.argmax(db > -3.0, axis=1)
    return np.concatenate([pooled, np.log1p(bursts.sum(axis=1))[:, None], np.log1p(rise)[:, None]], axis=1)


def _pitch_features(audio: np.ndarray) -> np.ndarray:
    """``[n, 8]``: in each of :data:`_PITCH_WINDOWS`, how periodic the sound is (the height of the
    normalized autocorrelation's highest peak between 30 Hz and 2 kHz, corrected for the window) and
    at what pitch (the lag of its first peak that comes within 10 % of that, in octaves), and how the
    pitch moves from window to window (a tom's falls, a bass's holds)."""
    rate = spectral.SAMPLE_RATE
    heights, pitches = [], []
    for start_s, end_s in _PITCH_WINDOWS:
        piece = audio[:, int(start_s * rate):int(end_s * rate)]
        window = np.hanning(piece.shape[1])
        piece = (piece - piece.mean(axis=1, keepdims=True)) * window[None]
        size = 1 << int(np.ceil(np.log2(2 * piece.shape[1])))
        correlation = np.fft.irfft(np.abs(np.fft.rfft(piece, size)) ** 2, size)[:, : piece.shape[1]]
        own = np.fft.irfft(np.abs(np.fft.rfft(window, size)) ** 2, size)[: piece.shape[1]]
        correlation = correlation / (correlation[:, :1] + 1e-12) / np.maximum(own / own[0], 0.1)[None]
        low, high = rate // 2000, min(rate // 30, piece.shape[1] // 2)
        lag = _first_best_peak(correlation[:, low - 1:high + 1]) + low
        heights.append(np.clip(correlation[np.arange(len(audio)), lag], -1.0, 1.5))
        pitches.append(np.log2(rate / lag) / 4.0)
    pitch = np.stack(pitches, axis=1)
    return np.concatenate([np.stack(heights, axis=1), pitch, (pitch[:, 1:] - pitch[:, :-1]) * 4.0], axis=1)


def _first_best_peak(values: np.ndarray) -> np.ndarray:
    """Per row of ``values`` ``[n, m + 2]``, the index (0 to m - 1, of ``values[:, 1:-1]``) of the first
    local peak within 10 % of the highest local peak: the period, not one of its multiples (which the
    window correction can lift as high); the highest value where no peak is."""
    inner = values[:, 1:-1]
    peaks = (inner > values[:, :-2]) & (inner >= values[:, 2:])
    top = np.where(peaks, inner, -np.inf).max(axis=1, keepdims=True)
    near = peaks & (inner >= top - 0.1 * np.abs(top))
    return np.where(near.any(axis=1), near.argmax(axis=1), inner.argmax(axis=1))


def _low_band_features(audio: np.ndarray) -> np.ndarray:
    """``[n, 11]``: the share of the body's power (10-300 ms, a 16384-point FFT: 2.7 Hz a bin) in each
    band of :data:`_LOW_EDGES_HZ`, in dB, and how peaked the body's spectrum is between 50 Hz and 5 kHz
    (its highest bin over its mean, in dB: a tone's partials against a noise's spread)."""
    rate = spectral.SAMPLE_RATE
    piece = audio[:, int(0.01 * rate):int(0.3 * rate)]
    power = np.abs(np.fft.rfft(piece * np.hanning(piece.shape[1])[None], 16384)) ** 2
    freqs = np.fft.rfftfreq(16384, 1.0 / rate)
    total = power.sum(axis=1) + 1e-20
    shares = [10.0 * np.log10(power[:, (freqs >= a) & (freqs < b)].sum(axis=1) / total + 1e-8)
              for a, b in itertools.pairwise(_LOW_EDGES_HZ)]
    band = (freqs >= 50) & (freqs < 5000)
    peaked = 10.0 * np.log10(power[:, band].max(axis=1) / (power[:, band].mean(axis=1) + 1e-20) + 1e-12)
    return np.concatenate([np.maximum(np.stack(shares, axis=1), -80.0) / 20.0, peaked[:, None] / 20.0], axis=1)


def _course_features(audio: np.ndarray, loud_rel: np.ndarray) -> np.ndarray:
    """``[n, 7]``: the zero-crossing rate in each of :data:`JUDGE_SEGMENTS` (over its sounding frames),
    the slope of the loudness's straight-line fit from the peak on (dB a frame, while within 50 dB of
    the peak), how many frames sound, and the loudness's centre of gravity in time."""
    n = len(audio)
    frames = audio[:, : spectral.HOP * spectral.FRAMES].reshape(n, spectral.FRAMES, spectral.HOP)
    crossings = (np.abs(np.diff(np.sign(frames), axis=2)) > 0).mean(axis=2)
    sounding = (loud_rel > _JUDGE_SOUNDING_DB).astype(np.float64) + 1e-3
    rates = [np.log(_weighted_mean(crossings[:, a:b], sounding[:, a:b]) + 1e-4) / 3.0 for a, b in JUDGE_SEGMENTS]
    t = np.arange(spectral.FRAMES, dtype=np.float64)[None, :]
    after = ((t >= loud_rel.argmax(axis=1)[:, None]) & (loud_rel > _JUDGE_SOUNDING_DB)).astype(np.float64)
    count = after.sum(axis=1)
    t_mean = (after * t).sum(axis=1) / count
    l_mean = (after * loud_rel).sum(axis=1) / count
    slope = ((after * (t - t_mean[:, None]) * (loud_rel - l_mean[:, None])).sum(axis=1)
             / ((after * (t - t_mean[:, None]) ** 2).sum(axis=1) + 1e-9))
    power = 10.0 ** (loud_rel / 10.0)
    centre = (power * t).sum(axis=1) / power.sum(axis=1)
    return np.concatenate([np.stack(rates, axis=1), np.stack(
        [np.sign(slope) * np.log1p(np.abs(slope)), np.log1p(count), np.log1p(centre)], axis=1)], axis=1)


def _fine_segment_features(rel: np.ndarray) -> np.ndarray:
    """``[n, 160]``: the log-mel relative to the loudest frame (``rel``, ``[n, 80, frames]``) pooled to 20
    bands, averaged over each of :data:`_FINE_SEGMENTS`, and each band's loudest frame."""
    bands = rel.reshape(len(rel), 20, spectral.N_MELS // 20, -1).mean(axis=2)
    rows = [bands[:, :, a:b].mean(axis=2) / 20.0 for a, b in _FINE_SEGMENTS]
    rows.append(bands.max(axis=2) / 20.0)
    return np.concatenate(rows, axis=1)


#: the judge's L2 penalties: the logistic regression's, and each MLP member's on its weights
JUDGE_L2 = 1e-2
JUDGE_MLP_L2 = 1e-2
#: the judge's MLP members (one hidden layer of this many tanh units each; 0 members: the regression alone)
JUDGE_MLP_MEMBERS = 3
JUDGE_MLP_HIDDEN = 64
#: L-BFGS iterations: the regression's (to convergence) and each MLP member's (early stopped: fewer
#: iterations keep it smooth, and fast)
JUDGE_ITERATIONS = 300
JUDGE_MLP_ITERATIONS = 100


def _class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Per class, ``total / (classes present x count)``: each class weighs as much as any other."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return torch.from_numpy(np.where(counts > 0, counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1.0)),
                                     0.0))


def _fit_lbfgs(parameters: list[torch.Tensor], loss_of: Any, iterations: int) -> None:
    """Minimize ``loss_of()`` over ``parameters`` by full-batch L-BFGS (deterministic)."""
    optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=iterations, history_size=20,
                                  tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_of()
        loss.backward()
        return loss

    optimizer.step(closure)
    for parameter in parameters:
        parameter.requires_grad_(False)


class Judge:
    """The class-accuracy judge: on standardized :func:`judge_features`, a multinomial logistic
    regression (L2 penalty ``l2``) and ``mlp_members`` one-hidden-layer MLPs (``hidden`` tanh units,
    L2 penalty ``mlp_l2`` on their weights, each from its own seeded start), their class probabilities
    averaged. Every member weighs each class equally whatever its count and is fitted by full-batch
    L-BFGS: the same recordings give the same judge.

    Its accuracy on kits it was not fitted on (:func:`leave_one_kit_out`) is what it can be trusted to.
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray, n_classes: int, l2: float = JUDGE_L2,
                 iterations: int = JUDGE_ITERATIONS, mlp_members: int = JUDGE_MLP_MEMBERS,
                 hidden: int = JUDGE_MLP_HIDDEN, mlp_l2: float = JUDGE_MLP_L2,
                 mlp_iterations: int = JUDGE_MLP_ITERATIONS) -> None:
        """Fitted to ``features`` ``[n, d]`` (:func:`judge_features` of recordings) and their ``labels``."""
        if len(features) != len(labels) or len(labels) == 0:
            raise ValueError(f"the judge needs recordings and one label each: got {len(features)} and {len(labels)}")
        if mlp_members < 0 or (mlp_members > 0 and hidden < 1):
            raise ValueError(f"the judge's MLP members need at least 1 hidden unit each and a count of 0 or more: "
                             f"got {mlp_members} members of {hidden}")
        features = np.asarray(features, dtype=np.float64)
        self.n_classes = n_classes
        self.mean = features.mean(axis=0)
        self.std = features.std(axis=0) + 1e-6
        x = torch.from_numpy((features - self.mean) / self.std)
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        class_weight = _class_weights(np.asarray(labels, dtype=np.int64), n_classes)
        self.weight = torch.zeros(features.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
        self.bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
        _fit_lbfgs([self.weight, self.bias], lambda: (
            torch.nn.functional.cross_entropy(x @ self.weight + self.bias, y, weight=class_weight)
            + l2 * (self.weight ** 2).sum()), iterations)
        self.members: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for seed in range(mlp_members):
            generator = torch.Generator().manual_seed(seed)
            w1 = (torch.randn(features.shape[1], hidden, generator=generator, dtype=torch.float64)
                  / np.sqrt(features.shape[1])).requires_grad_(True)
            b1 = torch.zeros(hidden, dtype=torch.float64, requires_grad=True)
            w2 = (torch.randn(hidden, n_classes, generator=generator, dtype=torch.float64)
                  / np.sqrt(hidden)).requires_grad_(True)
            b2 = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)

            def loss(w1: torch.Tensor = w1, b1: torch.Tensor = b1, w2: torch.Tensor = w2,
                     b2: torch.Tensor = b2) -> torch.Tensor:
                logits = torch.tanh(x @ w1 + b1) @ w2 + b2
                return (torch.nn.functional.cross_entropy(logits, y, weight=class_weight)
                        + mlp_l2 * ((w1 ** 2).sum() + (w2 ** 2).sum()))

            _fit_lbfgs([w1, b1, w2, b2], loss, mlp_iterations)
            self.members.append((w1, b1, w2, b2))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """``[n, classes]``: the members' class probabilities for each row of ``features``, averaged."""
        x = torch.from_numpy((np.asarray(features, dtype=np.float64).reshape(len(features), -1) - self.mean)
                             / self.std)
        total = torch.softmax(x @ self.weight + self.bias, dim=1)
        for w1, b1, w2, b2 in self.members:
            total = total + torch.softmax(torch.tanh(x @ w1 + b1) @ w2 + b2, dim=1)
        return (total / (1 + len(self.members))).numpy()

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The class index of each row of ``features`` (:func:`judge_features` of the one-shots)."""
        if len(features) == 0:
            return np.zeros(0, dtype=int)
        return self.probabilities(features).argmax(axis=1)


def kit_of(group: str) -> str:
    """The kit or instrument a corpus group is: a sound font program played by FluidR3 and by freepats
    is one instrument (``fluid-Harp`` and ``freepats-Harp`` -> ``gm-Harp``); drum kits stay apart."""
    for prefix in ("fluid-", "freepats-"):
        if group.startswith(prefix) and not group.startswith(prefix + "kit-"):
            return "gm-" + group[len(prefix):]
    return group


def leave_one_kit_out(features: np.ndarray, labels: np.ndarray, groups: Sequence[str], n_classes: int,
                      **judge: Any) -> tuple[np.ndarray, list[str]]:
    """Each recording (its :func:`judge_features` row) labelled by a judge fitted on the recordings of
    every other kit (:func:`kit_of`; ``judge``: :class:`Judge`'s settings): the predictions ``[n]``, and
    the kits in the order they were left out."""
    kits = np.array([kit_of(g) for g in groups])
    predicted = np.zeros(len(labels), dtype=int)
    order = sorted(set(kits.tolist()))
    for kit in order:
        out = kits == kit
        predicted[out] = Judge(features[~out], labels[~out], n_classes, **judge).predict(features[out])
    return predicted, order


def class_accuracy(predicted: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """The share labelled right per class and its mean over the classes present."""
    per_class = {name: float(np.mean(predicted[labels == c] == c)) for c, name in enumerate(classes)
                 if np.any(labels == c)}
    return {"mean": float(np.mean(list(per_class.values()))) if per_class else float("nan"),
            "per_class": per_class}


@dataclass
class EvalSettings:
    per_class: int = 16
    reference_per_class: int = 32
    classifier_per_class: int = 48
    diversity_seeds: int = 16
    steps: int | None = None
    guidance: float | None = None
    baselines: tuple[str, ...] = ("noise", "untrained")
    seed: int = 0


def class_shaped_noise(
    reference: np.ndarray, labels: np.ndarray, n_classes: int, per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline one-shots: each class's mean spectrum x mean loudness envelope, with random phase."""
    mel = spectral.log_mel(reference)
    rows, out_labels = [], []
    generator = torch.Generator().manual_seed(seed)
    for c in range(n_classes):
        class_mel = mel[torch.from_numpy(labels == c)]
        if len(class_mel) == 0:
            continue
        mean = class_mel.mean(dim=0)  # [80, 88]
        spectrum = mean.mean(dim=1, keepdim=True)
        envelope = mean.mean(dim=0, keepdim=True)
        separable = (spectrum + envelope - mean.mean()).clamp(-1, 1.25)
        # noise: a random phase (the decoder's own start would give every copy one coherent phase)
        audio = spectral.invert(separable[None].repeat(per_class, 1, 1), 32, generator, start="random",
                                sharpen=0).numpy()
        peaks = np.abs(audio).max(axis=1, keepdims=True)
        rows.append(audio / np.where(peaks > 0, peaks, 1) * 0.9)
        out_labels += [c] * per_class
    return np.concatenate(rows).astype(np.float32), np.array(out_labels)


def generate_class_set(
    model: DefaultModel, per_class: int, settings: EvalSettings, seed_base: int,
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` one-shots of every class (or of ``classes`` only; seeds ``seed_base ...``), batched per
    class; labels are the classes' indices in the model's config."""
    audio, labels = [], []
    for c, name in enumerate(model.config.classes):
        if classes is not None and name not in classes:
            continue
        requests = [
            GenerateRequest(prompt=name, kind=Kind.ONE_SHOT, seed=seed_base + i, steps=settings.steps,
                            guidance=settings.guidance, duration_s=spectral.NATIVE_SAMPLES / spectral.SAMPLE_RATE)
            for i in range(per_class)
        ]
        for out in model.generate(requests):
            audio.append(out.audio[0])
            labels.append(c)
    return np.stack(audio).astype(np.float32), np.array(labels)


def untrained_model(model: DefaultModel, seed: int) -> DefaultModel:
    torch.manual_seed(seed)
    network = MelUNet(model.config).eval().requires_grad_(False)
    return DefaultModel(None, torch.device("cpu"), torch.float32, model.config, network)


def evaluate(model: DefaultModel, settings: EvalSettings) -> dict[str, Any]:
    """Run the three measures; returns a JSON-ready dict (see the module docstring)."""
    started = time.perf_counter()
    classes = model.config.classes
    n_classes = len(classes)
    _log(f"rendering held-out corpora ({settings.classifier_per_class} + {settings.reference_per_class} per class)")
    train_set = render_corpus(CLASSIFIER_CORPUS_SEED, settings.classifier_per_class, classes)
    reference = render_corpus(REFERENCE_CORPUS_SEED, settings.reference_per_class, classes)
    classifier = Classifier(pooled_log_mel(train_set.audio), train_set.labels, n_classes, seed=settings.seed)
    reference_accuracy = float(np.mean(classifier.predict(pooled_log_mel(reference.audio)) == reference.labels))
    reference_features = realism_features(reference.audio)

    shown_settings = settings.__dict__ | {"baselines": list(settings.baselines)}
    results: dict[str, Any] = {"classes": list(classes), "settings": shown_settings}
    _log(f"generating {settings.per_class} one-shots per class")
    gen_audio, gen_labels = generate_class_set(model, settings.per_class, settings, seed_base=10_000)
    predicted = classifier.predict(pooled_log_mel(gen_audio))
    per_class_accuracy = {name: float(np.mean(predicted[gen_labels == c] == c)) for c, name in enumerate(classes)}
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    for truth, guess in zip(gen_labels, predicted, strict=True):
        confusion[truth, guess] += 1
    results["accuracy"] = {
        "mean": float(np.mean(list(per_class_accuracy.values()))),
        "per_class": per_class_accuracy,
        "classifier_on_held_out": reference_accuracy,
        "confusion": confusion.tolist(),
    }

    # every set compared with the held-out reference: (audio, labels)
    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {"model": (gen_audio, gen_labels)}
    codec = spectral.invert(spectral.log_mel(reference.audio), generator=torch.Generator().manual_seed(1)).numpy()
    sets["codec_floor"] = (codec, reference.labels)
    if "noise" in settings.baselines:
        sets["class_shaped_noise"] = class_shaped_noise(
            train_set.audio, train_set.labels, n_classes, settings.per_class, settings.seed
        )
    if "untrained" in settings.baselines:
        _log("generating with the untrained network")
        sets["untrained_model"] = generate_class_set(
            untrained_model(model, settings.seed), settings.per_class, settings, 10_000
        )
    results["frechet_distance"] = {
        key: frechet_distance(realism_features(audio), reference_features) for key, (audio, _) in sets.items()
    }

    reference_envelope = envelope_features(reference.audio)
    held_jitter, held_decay, held_level = envelope_measures(reference.audio)
    jitter = {"held_out": per_class_medians(held_jitter, reference.labels, classes)}
    decay = {"held_out": per_class_medians(held_decay, reference.labels, classes)}
    attack = {"held_out": per_class_medians(attack_measures(reference.audio), reference.labels, classes)}
    flicker = {"held_out": per_class_flicker(flicker_measures(reference.audio), reference.labels, classes)}
    level = per_class_medians(held_level, reference.labels, classes)
    for key, (audio, labels) in sets.items():
        set_jitter, set_decay, _ = envelope_measures(audio)
        jitter[key] = per_class_medians(set_jitter, labels, classes)
        flicker[key] = per_class_flicker(flicker_measures(audio), labels, classes)
        decay[key] = per_class_medians(set_decay, labels, classes)
        attack[key] = per_class_medians(attack_measures(audio), labels, classes)
    # against the codec floor, not the held-out audio itself: generated one-shots go through the same
    # decoder, whose phase estimate alone adds some flicker (0.9 dB on kicks against 0.25 dB)
    jitter_ratio = {name: jitter["model"][name] / max(jitter["codec_floor"][name], JITTER_FLOOR_DB)
                    for name in classes}
    # the flicker (the real-recordings evaluation's target) against the held-out one-shots' own
    flicker_ratio = {name: flicker["model"][name] / max(flicker["held_out"][name], FLICKER_FLOOR_DB)
                     for name in classes}
    decaying = [name for name in classes
                if decay["held_out"][name] >= DECAYING_DB and level[name] >= SILENCE_DB + SOUNDING_DB]
    decay_ratio = {name: decay["model"][name] / decay["held_out"][name] for name in decaying}
    struck = [name for name in classes if attack["held_out"][name] >= STRUCK_DB]
    attack_shortfall = {name: attack["held_out"][name] - attack["model"][name] for name in struck}
    results["envelope"] = {
        "jitter_db": jitter,
        "decay_db": decay,
        "held_out_level_db_at_0.1_s": level,
        "jitter_ratio": _summary(jitter_ratio, "max"),
        "flicker_db": flicker,
        "flicker_ratio": _summary(flicker_ratio, "max"),
        "decaying_classes": decaying,
        "decay_ratio": _summary(decay_ratio, "min"),
        "frechet_distance": {
            key: frechet_distance(envelope_features(audio), reference_envelope) for key, (audio, _) in sets.items()
        },
        "attack_db": attack,
        "struck_classes": struck,
        "attack_shortfall_db": _summary(attack_shortfall, "max"),
    }

    _log(f"diversity: {settings.diversity_seeds} seeds per class")
    diversity = {}
    for c, name in enumerate(classes):
        if settings.diversity_seeds == settings.per_class:
            generated = gen_audio[gen_labels == c]
        else:
            requests = [GenerateRequest(prompt=name, seed=20_000 + i, steps=settings.steps, guidance=settings.guidance)
                        for i in range(settings.diversity_seeds)]
            generated = np.stack([o.audio[0] for o in model.generate(requests)])
        corpus_spread = mean_pairwise_distance(pooled_log_mel(reference.audio[reference.labels == c]))
        diversity[name] = mean_pairwise_distance(pooled_log_mel(generated)) / corpus_spread
    results["diversity"] = {"mean_ratio": float(np.mean(list(diversity.values()))),
                            "min_ratio": float(np.min(list(diversity.values()))), "per_class": diversity}
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def format_table(results: dict[str, Any]) -> str:
    acc = results["accuracy"]
    fd = results["frechet_distance"]
    div = results["diversity"]
    env = results["envelope"]
    jitter, decay, attack = env["jitter_db"], env["decay_db"], env["attack_db"]
    rule = "------------  --------  ---------  ---------------------  ---------------  ---------------"
    lines = ["                                   jitter dB              decay dB         attack dB",
             "class         accuracy  diversity  model  held-out  codec  model  held-out  model  held-out", rule]
    for name in results["classes"]:
        lines.append(f"{name:12s}  {acc['per_class'][name]:8.2f}  {div['per_class'][name]:9.2f}  "
                     f"{jitter['model'][name]:5.2f}  {jitter['held_out'][name]:8.2f}  "
                     f"{jitter['codec_floor'][name]:5.2f}  "
                     f"{decay['model'][name]:5.1f}  {decay['held_out'][name]:8.1f}  "
                     f"{attack['model'][name]:5.1f}  {attack['held_out'][name]:8.1f}")
    lines.append(rule)
    lines.append(f"{'mean':12s}  {acc['mean']:8.2f}  {div['mean_ratio']:9.2f}")
    lines.append("")
    lines.append(f"classifier accuracy on held-out synthesized one-shots: {acc['classifier_on_held_out']:.2f}")
    lines.append("")
    names = {"model": "default model", "codec_floor": "codec floor (held-out, encoded + decoded)",
             "class_shaped_noise": "baseline: class-shaped noise", "untrained_model": "baseline: untrained model"}
    lines.append("Fréchet distance (lower is closer to the held-out corpus)")
    lines.append(f"  {'':44s} {'log-mel':>8s} {'envelope':>9s}")
    for key, label in names.items():
        if key in fd:
            lines.append(f"  {label:44s} {fd[key]:8.2f} {env['frechet_distance'][key]:9.2f}")
    lines.append("")
    lines.append(f"diversity = mean pairwise distance of one class's generated one-shots / the held-out "
                 f"corpus's (min over classes {div['min_ratio']:.2f})")
    lines.append("jitter = median frame-to-frame loudness change, 58 ms to 0.7 s; decay = loudness drop "
                 "from 0.1 s to 0.6 s (medians over one-shots); codec = held-out, encoded + decoded")
    lines.append("attack = RMS level of the first 30 ms minus that from 0.1 s to 0.2 s (below 0: the sound "
                 "swells after its onset)")
    ratio = env["jitter_ratio"]
    lines.append(f"jitter / codec's (codec's at least {JITTER_FLOOR_DB} dB): median {ratio['median']:.2f}, "
                 f"max {ratio['max']:.2f}")
    flicker = env["flicker_db"]
    lines.append("flicker dB (median |second difference| / 4 of the frame loudness, 58 ms to 0.7 s), model / "
                 "held-out / codec: " + ", ".join(
                     f"{name} {flicker['model'][name]:.2f}/{flicker['held_out'][name]:.2f}/"
                     f"{flicker['codec_floor'][name]:.2f}" for name in results["classes"]))
    ratio = env["flicker_ratio"]
    lines.append(f"flicker / held-out's (held-out's at least {FLICKER_FLOOR_DB} dB): median {ratio['median']:.2f}, "
                 f"max {ratio['max']:.2f}")
    if env["decaying_classes"]:
        lines.append(f"decay / held-out over the classes that decay ({', '.join(env['decaying_classes'])}): "
                     f"median {env['decay_ratio']['median']:.2f}, min {env['decay_ratio']['min']:.2f}")
    if env["struck_classes"]:
        short = env["attack_shortfall_db"]
        lines.append(f"attack shortfall (held-out minus model) over the struck classes "
                     f"({', '.join(env['struck_classes'])}): median {short['median']:.1f} dB, "
                     f"max {short['max']:.1f} dB")
    lines.append(f"took {results['seconds']} s")
    return "\n".join(lines)


# ---- against real recordings ------------------------------------------------------------------

#: the attack's levels are bounded at this far below each one-shot's peak (recordings end in digital silence)
ATTACK_FLOOR_DB = -60.0
#: a generated one-shot is a copy when its normalized cross-correlation with a training recording exceeds this
MEMORIZED_NCC = 0.9
#: the memorization check runs at half the sample rate (a copy correlates at any rate; half the work)
_NCC_DECIMATE = 2
#: seeds of the generated one-shots (the synthesized evaluation's too)
GENERATED_SEED_BASE = 10_000


def default_corpus_dir() -> Path:
    from ..registry import default_data_dir

    return default_data_dir() / "corpus"


@dataclass
class RecordingSet:
    """One-shots from the corpus at the native length (cut or padded), with their labels and groups."""

    audio: np.ndarray
    labels: np.ndarray
    groups: list[str]
    paths: list[str]


def _native(audio: np.ndarray) -> np.ndarray:
    out = np.zeros(spectral.NATIVE_SAMPLES, dtype=np.float32)
    n = min(len(audio), spectral.NATIVE_SAMPLES)
    out[:n] = audio[:n]
    return out


def load_recordings(corpus: Path, manifest: dict[str, Any], split: str, classes: Sequence[str],
                    per_class: int | None = None) -> RecordingSet:
    """The ``split`` recordings of ``classes`` at the native length; with ``per_class``, at most that
    many per class, spread evenly over the class's files in path order (so over its kits)."""
    import soundfile as sf

    audio, labels, groups, paths = [], [], [], []
    for c, name in enumerate(classes):
        files = sorted((f for f in manifest["files"] if f["split"] == split and f["class"] == name),
                       key=lambda f: str(f["path"]))
        if per_class is not None and len(files) > per_class:
            files = [files[int(i)] for i in np.linspace(0, len(files) - 1, per_class).round()]
        for f in files:
            data, rate = sf.read(str(corpus / f["path"]), dtype="float32", always_2d=True)
            if rate != spectral.SAMPLE_RATE:
                raise ValueError(f"{f['path']}: sample rate {rate} Hz, expected {spectral.SAMPLE_RATE}")
            audio.append(_native(data.mean(axis=1)))
            labels.append(c)
            groups.append(str(f["group"]))
            paths.append(str(f["path"]))
    stacked = np.stack(audio) if audio else np.zeros((0, spectral.NATIVE_SAMPLES), np.float32)
    return RecordingSet(stacked, np.array(labels, dtype=int), groups, paths)


def best_correlations(audio: np.ndarray, labels: np.ndarray, against: np.ndarray, against_labels: np.ndarray,
                      chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``audio``, its best normalized cross-correlation (any lag, either polarity) with
    a row of ``against`` of the same class (1.0 for a copy, however shifted or scaled), and that row's
    index (-1 when the class has none).

    ``NCC(x, y) = max_lag |sum_t x[t] y[t + lag]| / (|x| |y|)``, at 22.05 kHz.
    """
    from scipy.signal import resample_poly

    def prepared(rows: np.ndarray) -> torch.Tensor:
        x = resample_poly(np.asarray(rows, dtype=np.float64), 1, _NCC_DECIMATE, axis=1)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return torch.from_numpy(x / np.where(norms > 0, norms, 1.0)).float()

    best = np.zeros(len(audio))
    best_index = np.full(len(audio), -1)
    if len(audio) == 0:
        return best, best_index
    x = prepared(audio)
    n = 2 * x.shape[1]
    fx = torch.fft.rfft(x, n=n)
    for c in np.unique(labels):
        pool = np.flatnonzero(against_labels == c)
        for start in range(0, len(pool), chunk):
            fy = torch.fft.rfft(prepared(against[pool[start:start + chunk]]), n=n)
            # a block of rows at a time: [rows, chunk, n] stays within about 100 MB
            class_rows = np.flatnonzero(labels == c)
            for first in range(0, len(class_rows), 16):
                rows = class_rows[first:first + 16]
                corr = torch.fft.irfft(fx[rows][:, None, :] * fy[None].conj(), n=n)
                peak, where = corr.abs().amax(dim=2).max(dim=1)
                better = peak.numpy() > best[rows]
                best[rows[better]] = peak.numpy()[better]
                best_index[rows[better]] = pool[start + where.numpy()[better]]
    return best, best_index


def measure_set(audio: np.ndarray, labels: np.ndarray, classes: Sequence[str], classifier: Judge,
                reference: RecordingSet, training: RecordingSet) -> dict[str, Any]:
    """Every figure of one set of one-shots (generated ones, or the training recordings for the floor)
    against the held-out ``reference``; memorization against the ``training`` recordings."""
    present = [c for c in range(len(classes)) if np.any(labels == c) and np.any(reference.labels == c)]
    names = [classes[c] for c in present]
    predicted = classifier.predict(judge_features(audio))
    accuracy = {classes[c]: float(np.mean(predicted[labels == c] == c)) for c in present}
    jitter, decay, _ = envelope_measures(audio)
    flicker = per_class_flicker(flicker_measures(audio), labels, classes)
    attack = attack_measures(audio, ATTACK_FLOOR_DB)
    diversity = {}
    for c in present:
        spread = mean_pairwise_distance(pooled_log_mel(reference.audio[reference.labels == c]))
        diversity[classes[c]] = mean_pairwise_distance(pooled_log_mel(audio[labels == c])) / max(spread, 1e-9)
    correlations, _ = best_correlations(audio, labels, training.audio, training.labels)
    memorized = {classes[c]: float(np.mean(correlations[labels == c] > MEMORIZED_NCC)) for c in present}
    keep = np.isin(labels, present)
    return {
        "count": int(keep.sum()),
        "accuracy": {"mean": float(np.mean(list(accuracy.values()))), "per_class": accuracy},
        "frechet_distance": frechet_distance(realism_features(audio[keep]), realism_features(reference.audio)),
        "envelope_frechet_distance": frechet_distance(envelope_features(audio[keep]),
                                                      envelope_features(reference.audio)),
        "jitter_db": {k: v for k, v in per_class_medians(jitter, labels, classes).items() if k in names},
        "flicker_db": {k: v for k, v in flicker.items() if k in names},
        "decay_db": {k: v for k, v in per_class_medians(decay, labels, classes).items() if k in names},
        "attack_db": {k: v for k, v in per_class_medians(attack, labels, classes).items() if k in names},
        "diversity": {"mean": float(np.mean(list(diversity.values()))), "min": float(min(diversity.values())),
                      "per_class": diversity},
        "memorization": {"share": float(np.mean(correlations[keep] > MEMORIZED_NCC)), "per_class": memorized,
                         "median_best_ncc": float(np.median(correlations[keep]))},
    }


def _against_recordings(figures: dict[str, Any], held: dict[str, dict[str, float]]) -> None:
    """Add the flicker ratio and the attack difference to the held-out recordings' (the issue's targets),
    and the jitter ratio as first measured (it counts a decay's slope as well)."""
    jitter_ratio = {k: v / max(held["jitter_db"][k], JITTER_FLOOR_DB) for k, v in figures["jitter_db"].items()}
    flicker_ratio = {k: v / max(held["flicker_db"][k], FLICKER_FLOOR_DB) for k, v in figures["flicker_db"].items()}
    attack_diff = {k: v - held["attack_db"][k] for k, v in figures["attack_db"].items()}
    figures["jitter_ratio"] = _summary(jitter_ratio, "max")
    figures["flicker_ratio"] = _summary(flicker_ratio, "max")
    figures["attack_difference_db"] = {"per_class": attack_diff,
                                       "max_abs": float(max(abs(v) for v in attack_diff.values())),
                                       "median": float(np.median(list(attack_diff.values())))}


@dataclass
class RealSettings:
    per_class: int = 16
    #: held-out recordings per class for the Fréchet distances, envelopes and diversity (all when fewer)
    reference_per_class: int = 48
    #: training recordings per class compared for memorization (None: all)
    training_per_class: int | None = None
    steps: int | None = None
    guidance: float | None = None


def evaluate_real(models: dict[str, DefaultModel], corpus: Path, settings: RealSettings) -> dict[str, Any]:
    """The figures of each model in ``models`` (name -> model) against the corpus's held-out recordings,
    beside the training recordings' own (``floor``); see :func:`measure_set`."""
    from .real_corpus import load_manifest

    started = time.perf_counter()
    manifest = load_manifest(corpus)
    classes = next(iter(models.values())).config.classes
    n_classes = len(classes)
    _log(f"reading the corpus in {corpus}")
    judge = load_recordings(corpus, manifest, "held-out", classes)
    reference = load_recordings(corpus, manifest, "held-out", classes, settings.reference_per_class)
    training = load_recordings(corpus, manifest, "train", classes, settings.training_per_class)
    floor = load_recordings(corpus, manifest, "train", classes, settings.per_class)
    missing = [name for c, name in enumerate(classes)
               if not np.any(reference.labels == c) or not np.any(training.labels == c)]
    _log(f"fitting the judge to {len(judge.labels)} held-out recordings; leave-one-kit-out on them")
    judge_rows = judge_features(judge.audio)
    classifier = Judge(judge_rows, judge.labels, n_classes)
    loko, kits = leave_one_kit_out(judge_rows, judge.labels, judge.groups, n_classes)
    held = {
        "jitter_db": per_class_medians(envelope_measures(reference.audio)[0], reference.labels, classes),
        "flicker_db": per_class_flicker(flicker_measures(reference.audio), reference.labels, classes),
        "decay_db": per_class_medians(envelope_measures(reference.audio)[1], reference.labels, classes),
        "attack_db": per_class_medians(attack_measures(reference.audio, ATTACK_FLOOR_DB), reference.labels, classes),
    }
    results: dict[str, Any] = {
        "classes": list(classes), "corpus": str(corpus), "settings": dict(settings.__dict__),
        "classes_without_recordings": missing,
        "recordings": {"judge_held_out": len(judge.labels), "reference_held_out": len(reference.labels),
                       "training": len(training.labels), "floor_training": len(floor.labels)},
        "held_out": held, "sets": {},
        # the judge's own accuracy on kits it was not fitted on: what its class accuracy can be trusted to
        "judge": {"kind": (f"logistic regression and {JUDGE_MLP_MEMBERS} MLPs ({JUDGE_MLP_HIDDEN} tanh units) "
                           f"on judge_features, probabilities averaged"), "kits": len(kits),
                  "leave_one_kit_out": class_accuracy(loko, judge.labels, classes)},
    }
    eval_settings = EvalSettings(steps=settings.steps, guidance=settings.guidance)
    done: dict[int, dict[str, Any]] = {}
    for name, model in models.items():
        if id(model) in done:
            results["sets"][name] = done[id(model)]
            continue
        _log(f"{name}: generating {settings.per_class} one-shots per class")
        audio, labels = generate_class_set(model, settings.per_class, eval_settings, GENERATED_SEED_BASE)
        figures = measure_set(audio, labels, classes, classifier, reference, training)
        _against_recordings(figures, held)
        results["sets"][name] = done[id(model)] = figures
    _log("the floor: training recordings against the held-out ones")
    figures = measure_set(floor.audio, floor.labels, classes, classifier, reference, training)
    # the floor's memorization is the held-out recordings' own correlation with the training ones:
    # near-copies shared between kits show here
    held_best, held_match = best_correlations(reference.audio, reference.labels, training.audio, training.labels)
    figures["memorization"] = {"share": float(np.mean(held_best > MEMORIZED_NCC)),
                               "per_class": {classes[c]: float(np.mean(held_best[reference.labels == c]
                                                                       > MEMORIZED_NCC))
                                             for c in range(n_classes) if np.any(reference.labels == c)},
                               "median_best_ncc": float(np.median(held_best)),
                               "copies": [[reference.paths[i], training.paths[held_match[i]],
                                           round(float(held_best[i]), 3)]
                                          for i in np.flatnonzero(held_best > MEMORIZED_NCC)]}
    _against_recordings(figures, held)
    results["sets"]["floor"] = figures
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def format_real_table(results: dict[str, Any]) -> str:
    sets = results["sets"]
    names = list(sets)
    labels = {"floor": "floor"}
    width = 10
    head = "".join(f"{labels.get(n, n):>{width}s}" for n in names)
    lines = [f"Against {results['recordings']['reference_held_out']} held-out recordings (whole kits the "
             f"models never saw) in {results['corpus']}",
             "floor = training recordings measured like a model's output against the held-out ones", "",
             f"{'':34s}{head}"]

    def row(label: str, values: list[float | None], fmt: str) -> None:
        lines.append(f"{label:34s}" + "".join(f"{'' if v is None else format(v, fmt):>{width}s}" for v in values))

    row("class accuracy (judge: held-out)", [sets[n]["accuracy"]["mean"] for n in names], ".2f")
    if "judge" in results:
        loko = results["judge"]["leave_one_kit_out"]
        row("  judge, leave-one-kit-out", [None] * (len(names) - 1) + [loko["mean"]], ".2f")
    row("Fréchet distance, log-mel", [sets[n]["frechet_distance"] for n in names], ".2f")
    row("Fréchet distance, envelope", [sets[n]["envelope_frechet_distance"] for n in names], ".2f")
    row("memorized share (NCC > 0.9)", [sets[n]["memorization"]["share"] for n in names], ".3f")
    row("median best NCC with training", [sets[n]["memorization"]["median_best_ncc"] for n in names], ".2f")
    row("diversity, mean (1 = held-out's)", [sets[n]["diversity"]["mean"] for n in names], ".2f")
    row("diversity, min over classes", [sets[n]["diversity"]["min"] for n in names], ".2f")
    row("flicker / recordings', max", [sets[n]["flicker_ratio"]["max"] for n in names], ".2f")
    row("flicker / recordings', median", [sets[n]["flicker_ratio"]["median"] for n in names], ".2f")
    row("jitter (counts slope) / rec., max", [sets[n]["jitter_ratio"]["max"] for n in names], ".2f")
    row("jitter (counts slope) / rec., med.", [sets[n]["jitter_ratio"]["median"] for n in names], ".2f")
    row("attack - recordings' dB, max |.|", [sets[n]["attack_difference_db"]["max_abs"] for n in names], ".1f")
    row("attack - recordings' dB, median", [sets[n]["attack_difference_db"]["median"] for n in names], ".1f")
    lines.append("")
    held = results["held_out"]
    per = [n for n in names]
    lines.append(f"{'per class':12s} {'accuracy':>{7 * len(per)}s}   {'flicker dB':>{7 * (len(per) + 1)}s}   "
                 f"{'jitter dB':>{7 * (len(per) + 1)}s}   {'attack dB':>{7 * (len(per) + 1)}s}")
    short = "".join(f"{labels.get(n, n)[:6]:>7s}" for n in per)
    lines.append(f"{'class':12s} {short}   {short}{'held':>7s}   {short}{'held':>7s}   {short}{'held':>7s}")
    for cls in results["classes"]:
        if cls not in sets[names[0]]["accuracy"]["per_class"]:
            lines.append(f"{cls:12s} (no recordings in one of the splits)")
            continue
        acc = "".join(f"{sets[n]['accuracy']['per_class'][cls]:7.2f}" for n in per)
        jit = "".join(f"{sets[n]['jitter_db'][cls]:7.2f}" for n in per) + f"{held['jitter_db'][cls]:7.2f}"
        fli = "".join(f"{sets[n]['flicker_db'][cls]:7.2f}" for n in per) + f"{held['flicker_db'][cls]:7.2f}"
        att = "".join(f"{sets[n]['attack_db'][cls]:7.1f}" for n in per) + f"{held['attack_db'][cls]:7.1f}"
        lines.append(f"{cls:12s} {acc}   {fli}   {jit}   {att}")
    lines.append("")
    if "judge" in results:
        loko = results["judge"]["leave_one_kit_out"]
        lines.append(f"judge: {results['judge']['kind']}, fitted to the held-out recordings; each of them labelled "
                     f"by a judge fitted without its kit ({results['judge']['kits']} kits): {loko['mean']:.2f} ("
                     + ", ".join(f"{k} {v:.2f}" for k, v in loko["per_class"].items()) + ")")
    lines.append(f"flicker (the target): median |second difference| / 4 of the frame loudness from 58 ms to 0.7 s, "
                 f"frames within {FLICKER_BELOW_PEAK_DB:.0f} dB of the peak (a straight decay in dB reads 0), ratios "
                 f"against at least {FLICKER_FLOOR_DB} dB")
    lines.append("jitter (as first measured; counts a decay's slope too): median frame-to-frame loudness change "
                 "from 58 ms to 0.7 s")
    lines.append("attack: RMS of the first 30 ms minus that from 0.1 s to 0.2 s; held = the held-out recordings")
    lines.append(f"took {results['seconds']} s")
    return "\n".join(lines)


def build_synthesized_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopbridge eval-default --synthesized",
                                     description="Measure the default model against its synthesized corpus.")
    parser.add_argument("--synthesized", action="store_true", required=True)
    parser.add_argument("--weights", "--model", type=Path, default=EMBEDDED_DEFAULT_DIR,
                        help="model folder (default: embedded)")
    parser.add_argument("--per-class", type=int, default=16, help="generated one-shots per class")
    parser.add_argument("--reference-per-class", type=int, default=32, help="held-out one-shots per class (realism)")
    parser.add_argument("--classifier-per-class", type=int, default=48,
                        help="held-out one-shots per class (classifier)")
    parser.add_argument("--diversity-seeds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's)")
    parser.add_argument("--no-untrained", action="store_true", help="skip the untrained-model baseline")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of the table")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopbridge eval-default",
        description="Measure the default model against real recordings it never saw (the corpus's held-out "
                    "kits), beside the shipped model and the training recordings themselves. "
                    "--synthesized runs the older evaluation against the synthesized corpus.")
    parser.add_argument("--model", type=Path, default=EMBEDDED_DEFAULT_DIR,
                        help="model folder (default: the shipped weights)")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="real-recordings corpus (loopbridge build-corpus; built here when missing; "
                             "default: the corpus folder in loopbridge's data folder)")
    parser.add_argument("--per-class", type=int, default=16, help="generated one-shots per class")
    parser.add_argument("--reference-per-class", type=int, default=48,
                        help="held-out recordings per class for the distances and envelopes")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run: 3 one-shots per class, 12 held-out and 24 training recordings per class")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of the table")
    return parser


def _main_synthesized(argv: Sequence[str]) -> int:
    parser = build_synthesized_parser()
    args = parser.parse_args(argv)
    for name in ("per_class", "reference_per_class", "classifier_per_class", "threads"):
        if getattr(args, name) < 2 if name != "threads" else getattr(args, name) < 1:
            parser.print_usage(sys.stderr)
            _log(f"error: --{name.replace('_', '-')}={getattr(args, name)} is too small")
            return 2
    if args.diversity_seeds < 2:
        _log(f"error: --diversity-seeds={args.diversity_seeds} is not accepted: expected at least 2")
        return 2
    torch.set_num_threads(args.threads)
    try:
        model = DefaultModel.load(args.weights)
    except ModelLoadError as exc:
        _log(f"error: {exc}")
        return 2
    settings = EvalSettings(
        per_class=args.per_class, reference_per_class=args.reference_per_class,
        classifier_per_class=args.classifier_per_class, diversity_seeds=args.diversity_seeds,
        steps=args.steps, guidance=args.guidance,
        baselines=("noise",) if args.no_untrained else ("noise", "untrained"),
    )
    results = evaluate(model, settings)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--synthesized" in argv:
        return _main_synthesized(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        settings = RealSettings(per_class=3, reference_per_class=12, training_per_class=24, steps=args.steps,
                                guidance=args.guidance)
    else:
        settings = RealSettings(per_class=args.per_class, reference_per_class=args.reference_per_class,
                                steps=args.steps, guidance=args.guidance)
    for flag, value, least in (("--per-class", settings.per_class, 2),
                               ("--reference-per-class", settings.reference_per_class, 2),
                               ("--threads", args.threads, 1)):
        if value < least:
            parser.print_usage(sys.stderr)
            _log(f"error: {flag}={value} is not accepted: expected at least {least}")
            return 2
    torch.set_num_threads(args.threads)
    corpus = args.corpus if args.corpus is not None else default_corpus_dir()
    if not (corpus / "manifest.json").is_file():
        from .real_corpus import build_corpus, format_counts

        _log(f"{corpus} holds no corpus: building it from the installed Debian packages (a few minutes)")
        try:
            manifest = build_corpus(corpus, log=_log)
        except (ValueError, OSError) as exc:
            _log(f"error: the corpus could not be built in {corpus}: {exc}")
            return 2
        _log(format_counts(manifest["counts"]))  # type: ignore[arg-type]
    try:
        models = {"model": DefaultModel.load(args.model)}
        shipped = EMBEDDED_DEFAULT_DIR.resolve()
        models["shipped"] = models["model"] if args.model.resolve() == shipped else DefaultModel.load(shipped)
    except ModelLoadError as exc:
        _log(f"error: {exc}")
        return 2
    try:
        results = evaluate_real(models, corpus, settings)
    except (ValueError, FileNotFoundError) as exc:
        _log(f"error: {exc}")
        return 2
    print(json.dumps(results, indent=2) if args.json else format_real_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
