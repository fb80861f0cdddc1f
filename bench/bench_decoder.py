"""The default model's decoders on real recorded one-shots: how much of the transients each keeps.

Each recording (Debian's hydrogen-drumkits and the drum_* / elec_* one-shots of sonic-pi-samples) is
cut to the model's 1.02 s, peak-normalized, encoded to the model's scaled log-mel and decoded by each
candidate; the decoded audio is compared with the recording, per class:

- attack: RMS level of the first 30 ms minus that from 0.1 s to 0.2 s (the measure of
  ``loopbridge eval-default``), the recordings' own and each decoder's error against it;
- rise: the 10 % -> 90 % rise time of the amplitude envelope (2 ms RMS windows) in ms;
- flux: the peak of the spectral flux (positive change of a 512-point STFT's magnitude, hop 128)
  relative to the recording's, in dB (below 0: a softer onset);
- jitter: the median frame-to-frame loudness change from 58 ms to 0.7 s (eval-default's), as a
  ratio to the recording's own (at least 0.25 dB);
- SC: spectral convergence of the 2048-point STFT magnitude (what the decoder is asked to match);
- LSD: log-spectral distance in dB over a 256-point STFT (hop 64, 5.8 ms), where a smeared
  transient shows;
- crest: peak over RMS level of the first 0.3 s in dB, the recordings' own and each decoder's (a
  decoder that lines every bin's phase up makes clicks: a higher crest, and a quieter sound once
  peak-normalized);
- time: seconds to decode one 1-s one-shot (median), one torch thread.

    python bench/bench_decoder.py [--per-class 12] [--decoders gl32,pghi16,...]

Needs the Debian packages hydrogen-drumkits and sonic-pi-samples.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
import torch
from loopbridge.engine.audio import resample
from loopbridge.engine.models.default import spectral
from loopbridge.engine.models.default.evaluate import attack_measures, envelope_measures

HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
SONIC_PI = Path("/usr/share/sonic-pi/samples")
PEAK = 0.9

#: file-name words -> class, checked in this order (the first that matches wins)
_CLASS_WORDS: list[tuple[str, tuple[str, ...]]] = [
    ("clap", ("clap", "handclap")),
    ("hat", ("hat", "hh", "hihat", "hhclosed", "hhopen", "hhpedal", "chh", "ohh", "ho", "closehihat",
             "openhat", "pedalhihat", "hhat")),
    ("cymbal", ("crash", "ride", "splash", "china", "cymbal", "cc", "rc", "rd", "cra")),
    ("kick", ("kick", "bd", "bassdrum", "kik")),
    ("snare", ("snare", "sn", "sd", "jsnare", "rsnare", "snareoff")),
    ("tom", ("tom", "tm", "ft", "floortom", "tomh", "t1", "t2", "tom1", "tom2", "tomhigh", "tomlow", "tommid")),
    ("perc", ("cowbell", "cb", "rim", "rs", "stick", "clave", "woodblock", "wood", "agogo", "conga", "bongo",
              "tambourine", "maraca", "shaker", "fxshake")),
]


def label_for(path: Path) -> str | None:
    """A recording's class from the words of its file name (``BD_01`` -> kick, ``HiHatOpen-2`` -> hat)."""
    stem = path.stem
    if path.parent == SONIC_PI:
        stem = stem.replace("drum_bass", "kick").replace("cymbal_closed", "hat").replace("cymbal_pedal", "hat")
        stem = stem.replace("cymbal_open", "hat")
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", stem)
    words = [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]
    words = [re.sub(r"\d+$", "", w) or w for w in words] + words
    for name, keys in _CLASS_WORDS:
        if any(w in keys for w in words):
            return name
    return None


def recordings(per_class: int) -> dict[str, list[np.ndarray]]:
    """Up to ``per_class`` one-shots ``[NATIVE_SAMPLES]`` per class, evenly spread over the sorted files."""
    files = sorted(p for p in HYDROGEN.glob("*/*") if p.suffix.lower() in (".wav", ".flac", ".aiff", ".aif"))
    files += sorted(p for p in SONIC_PI.glob("*.flac") if p.name.startswith(("drum_", "elec_")))
    if not files:
        sys.exit(f"no recordings under {HYDROGEN} or {SONIC_PI}: install hydrogen-drumkits and sonic-pi-samples")
    by_class: dict[str, list[Path]] = {}
    for path in files:
        name = label_for(path)
        if name is not None:
            by_class.setdefault(name, []).append(path)
    out: dict[str, list[np.ndarray]] = {}
    for name, paths in sorted(by_class.items()):
        picked = [paths[i] for i in np.unique(np.linspace(0, len(paths) - 1, per_class).round().astype(int))]
        shots = [s for s in (load_one_shot(p) for p in picked) if s is not None]
        if shots:
            out[name] = shots
    return out


def load_one_shot(path: Path) -> np.ndarray | None:
    """Mono, 44.1 kHz, leading silence (below -40 dB of the peak) cut, 1.02 s, peak 0.9; None if silent."""
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != spectral.SAMPLE_RATE:
        mono = resample(mono[None], rate, spectral.SAMPLE_RATE)[0]
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if peak <= 0:
        return None
    start = int(np.argmax(np.abs(mono) >= 0.01 * peak))
    mono = mono[start:start + spectral.NATIVE_SAMPLES]
    mono = np.pad(mono, (0, spectral.NATIVE_SAMPLES - mono.size))
    return (mono / peak * PEAK).astype(np.float32)


def decoders() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Each candidate: scaled log-mel ``[1, 80, 88]`` -> audio ``[1, samples]``.

    ``glN``: N fast Griffin-Lim iterations from a random start phase (``gl32``: the decoder the
    default model first shipped with); ``pghiN``: the phase of Phase Gradient Heap Integration and N
    iterations; ``alignedN``: an onset-aligned start (every bin's phase that of an impulse at its
    frame's centre) and N iterations; a trailing ``s``: band magnitudes sharpened at every frequency
    (``spectral.sharpen_linear``, 10 iterations) rather than interpolated; ``shipped``:
    ``spectral.invert`` with its defaults (PGHI, 16 iterations, sharpened below 500 Hz), what the
    model renders through now.
    """

    def gl(iterations: int, sharpen: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(mel: torch.Tensor) -> torch.Tensor:
            return spectral.invert(mel, iterations=iterations, generator=torch.Generator().manual_seed(0),
                                   start="random", sharpen=sharpen, sharpen_below_hz=math.inf)
        return run

    def aligned(iterations: int) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(mel: torch.Tensor) -> torch.Tensor:
            magnitude = spectral.mel_to_linear(mel)
            magnitude = torch.cat([magnitude, magnitude[..., -1:] * 0.5], dim=-1)
            centre = float(np.pi) * torch.arange(magnitude.shape[1], dtype=torch.float32)
            phase = centre[None, :, None].expand_as(magnitude)
            return spectral.griffin_lim(magnitude, mel.shape[-1] * spectral.HOP, iterations=iterations, phase=phase)
        return run

    def pghi(iterations: int, sharpen: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(mel: torch.Tensor) -> torch.Tensor:
            return spectral.invert(mel, iterations=iterations, start="pghi", sharpen=sharpen,
                                   sharpen_below_hz=math.inf)
        return run

    out: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"shipped": lambda mel: spectral.invert(mel)}
    for n in (16, 32, 100):
        out[f"gl{n}"], out[f"gl{n}s"] = gl(n), gl(n, 10)
    for n in (0, 8, 16, 32):
        out[f"pghi{n}"], out[f"pghi{n}s"] = pghi(n), pghi(n, 10)
    out["aligned32"] = aligned(32)
    return out


def rise_ms(audio: np.ndarray) -> np.ndarray:
    """10 % -> 90 % rise time (ms) of each one-shot's 2 ms RMS envelope (hop 0.5 ms), within 150 ms."""
    win, hop = 88, 22
    seg = audio[:, : int(0.15 * spectral.SAMPLE_RATE)]
    frames = (seg.shape[1] - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(frames)[:, None]
    env = np.sqrt(np.mean(seg[:, idx] ** 2, axis=2))  # [n, frames]
    peak = env.max(axis=1, keepdims=True)
    t10 = np.argmax(env >= 0.1 * peak, axis=1)
    t90 = np.argmax(env >= 0.9 * peak, axis=1)
    return (t90 - t10) * hop / spectral.SAMPLE_RATE * 1000.0


def _mag(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    x = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    return torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=True, return_complex=True).abs().numpy()


def flux_peak(audio: np.ndarray) -> np.ndarray:
    mag = _mag(audio, 512, 128)
    flux = np.clip(np.diff(mag, axis=2), 0, None).sum(axis=1)
    return flux.max(axis=1)


def spectral_convergence(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    a, b = _mag(ref, 2048, 512), _mag(est, 2048, 512)
    return np.linalg.norm((a - b).reshape(len(a), -1), axis=1) / np.linalg.norm(a.reshape(len(a), -1), axis=1)


def log_spectral_distance(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    a, b = _mag(ref, 256, 64), _mag(est, 256, 64)
    floor = 1e-4 * a.max(axis=(1, 2), keepdims=True)
    diff = 20 * np.log10(np.maximum(a, floor)) - 20 * np.log10(np.maximum(b, floor))
    return np.sqrt(np.mean(diff ** 2, axis=1)).mean(axis=1)


def crest_db(audio: np.ndarray) -> np.ndarray:
    head = np.asarray(audio, dtype=np.float64)[:, : int(0.3 * spectral.SAMPLE_RATE)]
    return 20 * np.log10(np.abs(head).max(axis=1) / np.sqrt(np.mean(head ** 2, axis=1) + 1e-20) + 1e-12)


def peak_normalize(audio: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(audio), axis=1, keepdims=True)
    return audio / np.where(peak > 0, peak, 1.0) * PEAK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=12, help="recordings per class (evenly spread)")
    parser.add_argument("--decoders", default="gl32,aligned32,pghi16,gl32s,pghi16s,shipped",
                        help=f"comma-separated, from: {', '.join(decoders())}")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    all_decoders = decoders()
    names = [n.strip() for n in args.decoders.split(",") if n.strip()]
    for n in names:
        if n not in all_decoders:
            sys.exit(f"unknown decoder {n!r}: expected one of {', '.join(all_decoders)}")
    shots = recordings(args.per_class)
    classes = list(shots)
    print("recordings: " + ", ".join(f"{c} {len(shots[c])}" for c in classes))

    results: dict[str, dict[str, dict[str, float]]] = {}  # measure -> column -> class -> value
    times: dict[str, list[float]] = {n: [] for n in names}

    def put(measure: str, column: str, cls: str, value: float) -> None:
        results.setdefault(measure, {}).setdefault(column, {})[cls] = value

    for cls in classes:
        ref = np.stack(shots[cls])
        ref_attack, ref_rise, ref_flux = attack_measures(ref), rise_ms(ref), flux_peak(ref)
        ref_jitter = envelope_measures(ref)[0]
        put("attack dB", "recorded", cls, float(np.median(ref_attack)))
        put("rise ms", "recorded", cls, float(np.median(ref_rise)))
        put("jitter dB", "recorded", cls, float(np.median(ref_jitter)))
        put("crest dB", "recorded", cls, float(np.median(crest_db(ref))))
        mels = spectral.log_mel(ref)
        for n in names:
            outs = []
            for mel in mels:
                start = time.perf_counter()
                outs.append(all_decoders[n](mel[None])[0].numpy())
                times[n].append(time.perf_counter() - start)
            dec = peak_normalize(np.stack(outs).astype(np.float64))
            put("attack dB", n, cls, float(np.median(attack_measures(dec))))
            put("attack error dB", n, cls, float(np.median(np.abs(attack_measures(dec) - ref_attack))))
            put("rise ms", n, cls, float(np.median(rise_ms(dec))))
            put("flux dB", n, cls, float(np.median(20 * np.log10(flux_peak(dec) / ref_flux))))
            put("jitter dB", n, cls, float(np.median(envelope_measures(dec)[0])))
            put("jitter ratio", n, cls, float(np.median(envelope_measures(dec)[0]) / max(np.median(ref_jitter), 0.25)))
            put("crest dB", n, cls, float(np.median(crest_db(dec))))
            put("SC", n, cls, float(np.median(spectral_convergence(ref, dec))))
            put("LSD dB", n, cls, float(np.median(log_spectral_distance(ref, dec))))
        print(f"  {cls} done", file=sys.stderr, flush=True)

    for measure, columns in results.items():
        cols = list(columns)
        print(f"\n{measure} (median per class)")
        print(f"{'class':<8}" + "".join(f"{c:>11}" for c in cols))
        for cls in classes:
            print(f"{cls:<8}" + "".join(f"{columns[c][cls]:11.2f}" for c in cols))
        print(f"{'mean':<8}" + "".join(f"{np.mean(list(columns[c].values())):11.2f}" for c in cols))
    print("\nseconds to decode one 1-s one-shot (median over all recordings, one thread)")
    print("".join(f"{n:>11}" for n in names))
    print("".join(f"{np.median(times[n]):11.3f}" for n in names))


if __name__ == "__main__":
    main()
