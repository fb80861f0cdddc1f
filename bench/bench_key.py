"""Key benchmark: detection, the no-key gate, matching to the song's key and what it costs, in one run.

Material (real recordings only): the FluidR3 General MIDI sound font's sampled instruments playing MIDI
written by ``tests/engine/conform/instruments.py`` in each of the 24 keys (a cadence or a turnaround
under a melody, six arrangements: piano, strings, guitar, organ, electric piano, pad), so every render's
key is known by construction; its recorded drum kits; Sonic Pi's recorded drum loops and noises
(Debian's ``sonic-pi-samples``). Sonic Pi's ``loop_breakbeat`` and ``loop_tabla`` are left out of the
unpitched set: a tuned bass tone (pYIN hears G#1 throughout) and tuned tabla are pitched.

Prints:

1. Key detection on ``--per-key`` renders of each of the 24 keys: the MIREX weighted score (1 exact, 0.5
   a fifth, 0.3 relative, 0.2 parallel; target at least 0.85) and the counts of each, side by side for
   loopbridge's detector (stable spectral peaks against the ``edma`` profile, with its no-key gate),
   librosa's constant-Q chroma against the Krumhansl–Kessler profiles, and essentia's
   ``KeyExtractor(profileType="edma")`` when essentia is installed (``pip install essentia``).
2. Unpitched material called "no key" by loopbridge's gate (target at least 90 %).
3. After matching: every render conformed from 120 to 126 BPM and moved to a key drawn at random (seeded):
   the detected key of the result equals the key asked for or its relative (target at least 95 %), the
   length exact to the sample, and the onsets against the song's grid (librosa's onset detector on the
   source and the result alike: median and 95th percentile of the offsets; target within ±5 ms).
   Onsets are measured without a key and moved to a key each way a shift can be made: Rubber Band's
   own shift with its standard window, and the default, Rubber Band's stretch resampled by the pitch
   ratio (:mod:`loopbridge.engine.conform.stretcher`). Beside them, the detector's own error on the same
   renders: raw, against the MIDI grid they were played on (its constant delay and the instruments'
   attacks), and on each render played at 126 BPM by resampling (every note exactly on the grid: what
   a perfect conform would measure); and the conform's own offset, note by note the measured offset
   less that one. The targets are judged on the raw figures.
4. A shift at the loop's own tempo (120 -> 120 BPM: the shift alone makes Rubber Band run), each way it
   can be made, on ``--own-tempo`` tonal renders moved to a key drawn at random: the spectral error
   against the same MIDI rendered by fluidsynth in the new key (the instrument's own transposition;
   mean absolute constant-Q log-magnitude difference in dB, levels matched, 60 dB range), beside the unshifted render's
   error (the wrong key) as a ceiling; the key heard after; the onsets of staccato renders moved the same
   way against the grid.
5. The cost of detection and of the shift for a 4-bar stereo 44.1 kHz loop, as a ratio of its duration
   (target: at most 0.05x): each conform timed ``--repeats`` times, the ways alternated in one run (so
   the shared machine's load falls on all alike), medians (and the best) with the load average printed:
   detection alone, and the shift as what a conform with it costs over one without (a conform detects
   the key either way), at the song's own tempo and at another (the shift rides on the tempo's
   stretch), for each way of shifting; detection + shift is the sum.

    python bench/bench_key.py [--per-key 3] [--own-tempo 12] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loopbridge.engine import ConformSpec, Kind
from loopbridge.engine.conform import DEFAULT_STRETCH, SourceInfo, StretchOptions, conform_audio
from loopbridge.engine.conform.key import (
    MusicalKey,
    all_keys,
    detect_key,
    key_correlations,
    key_shift,
    mirex_score,
)

from tests.engine.conform import instruments
from tests.engine.conform.real_audio import conform_own_ms, detect_onsets, grid_offsets, varispeed_loop

SONIC_PI = Path("/usr/share/sonic-pi/samples")
UNPITCHED_SONIC_PI = ("loop_amen", "loop_amen_full", "loop_compus", "loop_industrial", "loop_perc1", "loop_perc2",
                      "loop_safari", "loop_3d_printer", "loop_electric", "vinyl_hiss", "vinyl_rewind",
                      "vinyl_scratch", "ambi_swoosh", "perc_swoosh", "perc_swash")


def librosa_key(audio: np.ndarray, rate: int) -> MusicalKey:
    """librosa's constant-Q chroma, averaged, against the Krumhansl–Kessler profiles."""
    import librosa

    mono = librosa.resample(audio.mean(axis=0), orig_sr=rate, target_sr=22050)
    chroma = librosa.feature.chroma_cqt(y=mono, sr=22050).mean(axis=1)
    scores = key_correlations(chroma, "krumhansl")
    return all_keys()[int(np.argmax(scores))]


def essentia_extractor():  # type: ignore[no-untyped-def]
    try:
        import essentia
        import essentia.standard as es
    except ImportError:
        return None
    essentia.log.warningActive = False
    return es.KeyExtractor(profileType="edma", sampleRate=44100)


def essentia_key(extractor, audio: np.ndarray) -> MusicalKey | None:  # type: ignore[no-untyped-def]
    from loopbridge.engine.conform.key import parse_key

    key, scale, _strength = extractor(np.ascontiguousarray(audio.mean(axis=0), dtype=np.float32))
    return parse_key(f"{key} {scale}")


def _scores_line(name: str, scores: list[float]) -> str:
    s = np.asarray(scores)
    return (f"  {name:38s} {s.mean():.3f}   exact {int((s == 1).sum()):3d}  fifth {int((s == 0.5).sum()):3d}  "
            f"relative {int((s == 0.3).sum()):3d}  parallel {int((s == 0.2).sum()):3d}  other/none "
            f"{int((s == 0).sum()):3d}  (n={len(s)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-key", type=int, default=3, help="renders of each key (default 3: 72 renders)")
    parser.add_argument("--own-tempo", type=int, default=12, help="renders shifted at their own tempo (default 12)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--sections", default="1,2,3,4,5",
                        help="which of the numbered parts to run, e.g. 4,5 (default all; section 3's key matching "
                             "runs on section 1's renders; the keys drawn at random differ with the parts run)")
    parser.add_argument("--staccato", type=int, default=24, help="staccato renders timed in section 3 (default 24)")
    args = parser.parse_args()
    sections = {int(part) for part in args.sections.split(",") if part.strip()}
    why = instruments.available()
    if why is not None:
        sys.exit(f"bench_key: {why}")
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="bench-key-"))
    extractor = essentia_extractor()
    arrangements = list(instruments.ARRANGEMENTS)

    target_bpm, bars = 126.0, 4
    renders: list[tuple[MusicalKey, str, np.ndarray, int]] = []
    if 1 in sections:
        # 1. detection on renders in all 24 keys
        for index, key in enumerate(all_keys()):
            for k in range(args.per_key):
                arrangement = arrangements[(index + 2 * k) % len(arrangements)]
                progression = ("cadence", "turnaround")[(index + k) % 2]
                audio, rate = instruments.tonal_loop(key, arrangement, folder, progression)
                renders.append((key, arrangement, audio, rate))
        ours, theirs, ess, ours_none = [], [], [], 0
        for key, _, audio, rate in renders:
            found = detect_key(audio, rate)
            ours_none += found.key is None
            ours.append(mirex_score(found.key, key))
            theirs.append(mirex_score(librosa_key(audio, rate), key))
            if extractor is not None:
                ess.append(mirex_score(essentia_key(extractor, audio), key))
        print(f"1. Key detection, {len(renders)} renders of real sampled instruments (FluidR3 GM through fluidsynth), "
              f"{args.per_key} per key over all 24 keys, 4 bars at 120 BPM")
        print(f"  {'method':38s} MIREX (target >= 0.85)")
        print(_scores_line("loopbridge (peaks + edma, with gate)", ours))
        print(_scores_line("librosa chroma_cqt + Krumhansl", theirs))
        if extractor is not None:
            print(_scores_line("essentia KeyExtractor edma", ess))
        else:
            print("  essentia KeyExtractor edma             (essentia is not installed: pip install essentia)")
        print(f"  loopbridge called {ours_none} of the {len(renders)} tonal renders 'no key'")

    if 2 in sections:
        # 2. the no-key gate on unpitched material
        unpitched: list[tuple[str, np.ndarray, int]] = []
        for pattern in instruments.DRUM_PATTERNS:
            for kit in instruments.DRUM_KITS:
                audio, rate = instruments.drum_loop(pattern, kit, folder)
                unpitched.append((f"GM kit {kit} {pattern}", audio, rate))
        if SONIC_PI.is_dir():
            for name in UNPITCHED_SONIC_PI:
                audio, rate = sf.read(SONIC_PI / f"{name}.flac", dtype="float32", always_2d=True)
                unpitched.append((name, np.ascontiguousarray(audio.T), rate))
        noise = rng.standard_normal((2, 44100 * 8)).astype(np.float32) * 0.1
        spectrum = np.fft.rfft(noise, axis=1) / np.sqrt(np.maximum(1.0, np.arange(noise.shape[1] // 2 + 1)))[None]
        unpitched += [("white noise", noise, 44100),
                      ("pink noise", np.fft.irfft(spectrum, axis=1).astype(np.float32), 44100)]
        called = [(name, detect_key(audio, rate)) for name, audio, rate in unpitched]
        keyed = [f"{name} ({found.name}, tonalness {found.tonalness})"
                 for name, found in called if found.key is not None]
        rate_none = 1 - len(keyed) / len(called)
        print(f"\n2. Unpitched material called 'no key': {rate_none:.1%} of {len(called)} (target >= 90 %): "
              f"{len(instruments.DRUM_PATTERNS) * len(instruments.DRUM_KITS)} GM drum-kit loops, "
              f"{len(called) - len(instruments.DRUM_PATTERNS) * len(instruments.DRUM_KITS) - 2} Sonic Pi drum loops "
              "and noises, 2 noises")
        for line in keyed:
            print(f"  given a key: {line}")

    if 3 in sections:
        # 3. matching: 120 -> 126 BPM, to a random key
        source = SourceInfo(tempo_bpm=120.0, beats=16)
        matched, exact_length, shifts = 0, 0, []
        for _own, _, audio, rate in renders:
            asked = all_keys()[int(rng.integers(24))]
            spec = ConformSpec(tempo_bpm=target_bpm, bars=bars, sample_rate=rate, key=asked.name)
            out = conform_audio(audio, rate, Kind.LOOP, spec, source)
            heard = detect_key(out.audio, rate).key
            matched += heard is not None and heard in (asked, asked.relative())
            exact_length += out.audio.shape[1] == spec.loop_frames
            shifts.append(abs(out.info.get("key_shift_semitones", 0)))
        if renders:
            print(f"\n3. Matching: the {len(renders)} renders conformed 120 -> {target_bpm:g} BPM, {bars} bars, "
                  f"each to a key drawn at random (mean shift {np.mean(shifts):.2f} semitones)")
            print(f"  detected key == asked or its relative  {matched / len(renders):.1%} (target >= 95 %)")
            print(f"  length exact to the sample             {exact_length} of {len(renders)}")
        else:
            print("\n3. Matching (no renders: section 1 was not run)")
        # timing, where notes have attacks to find: melody and bass on staccato instruments, without a key and
        # moved to one each way a shift is made (the same key for both)
        ways = {"without a key": DEFAULT_STRETCH,
                "moved, Rubber Band's shift (standard window)": StretchOptions(pitch="rubberband"),
                "moved, stretch + resample (default)": DEFAULT_STRETCH}
        offsets: dict[str, list[float]] = {label: [] for label in ways}
        net: dict[str, list[float]] = {label: [] for label in ways}
        missed = dict.fromkeys(offsets, 0)
        perfect_offsets: list[float] = []
        raw_detector: list[float] = []
        staccato = 0
        for index, key in enumerate(all_keys()[: args.staccato]):
            program = instruments.STACCATO_PROGRAMS[index % len(instruments.STACCATO_PROGRAMS)]
            audio, rate = instruments.staccato_loop(key, program, folder)
            asked = all_keys()[int(rng.integers(24))]
            staccato += 1
            raw_detector.extend(_against_midi_ms(audio, rate, key))
            perfect = grid_offsets(audio, rate, 120.0, 16, 0.0,
                                   varispeed_loop(audio, rate, 120.0, 16, 0.0, target_bpm), rate, target_bpm)
            perfect_offsets.extend(perfect.offsets_ms.tolist())
            for label, options in ways.items():
                wanted = None if label == "without a key" else asked.name
                spec = ConformSpec(tempo_bpm=target_bpm, bars=bars, sample_rate=rate, key=wanted)
                out = conform_audio(audio, rate, Kind.LOOP, spec, source, options=options)
                grid = grid_offsets(audio, rate, 120.0, 16, 0.0, out.audio, rate, target_bpm)
                offsets[label].extend(grid.offsets_ms.tolist())
                net[label].extend(conform_own_ms(grid, perfect).tolist())
                missed[label] += grid.missed
        if staccato:  # none with --staccato 0
            print(f"  onsets vs the grid ({staccato} staccato renders, librosa's detector; target median within "
                  "+-5 ms):")
            for label, values in offsets.items():
                found = np.asarray(values)
                print(f"    {label:46s} median {np.median(found):+.2f} ms, p95 |offset| "
                      f"{np.percentile(np.abs(found), 95):.2f} ms ({len(found)} onsets, {missed[label]} missed)")
            raw = np.asarray(raw_detector)
            spread = np.percentile(np.abs(raw - np.median(raw)), 95)
            print(f"    the detector on the renders themselves, against the MIDI grid they were played on: median "
                  f"{np.median(raw):+.2f} ms (its delay and the attacks'), spread about it p95 {spread:.2f} ms "
                  f"({len(raw)} notes)")
            found = np.asarray(perfect_offsets)
            print(f"    {'the detector own (renders resampled to 126 BPM)':46s} median {np.median(found):+.2f} ms, p95 "
                  "|offset| "
                  f"{np.percentile(np.abs(found), 95):.2f} ms (every note exactly on the grid: "
                  "a perfect conform's reading)")
            for label, values in net.items():
                found = np.asarray(values)
                print(f"    {label + ', less the detector own':46s} median {np.median(found):+.2f} ms, p95 |offset| "
                      f"{np.percentile(np.abs(found), 95):.2f} ms (note by note; the target is judged on the raw "
                      "figures)")

    if 4 in sections:
        # 4. a shift at the loop's own tempo, each way
        own_ways = (("R2 stretch + resample (shift_alone=faster)", StretchOptions(shift_alone="faster")),
                    ("R3 short-window stretch + resample (default)", DEFAULT_STRETCH),
                    ("Rubber Band's R3 shift, standard window", StretchOptions(pitch="rubberband")))
        errors: dict[str, list[float]] = {name: [] for name, _ in own_ways}
        wrong: list[float] = []
        heard_right = dict.fromkeys(errors, 0)
        own_offsets: dict[str, list[float]] = {name: [] for name, _ in own_ways}
        own_source = SourceInfo(tempo_bpm=120.0, beats=16)
        index = 0
        while index < args.own_tempo:
            # a shift of 1-5 semitones either way that keeps the tonic within the octave the renders are
            # played from (so fluidsynth's rendering in the new key is the same notes moved, not an octave off)
            key = all_keys()[int(rng.integers(24))]
            shift = int(rng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]))
            if not 0 <= key.tonic + shift <= 11:
                continue
            arrangement = arrangements[index % len(arrangements)]
            audio, rate = instruments.tonal_loop(key, arrangement, folder)
            asked = key.transposed(shift)
            if detect_key(audio, rate).key != key or key_shift(key, asked) != shift:
                continue  # the shift made would not be the one the truth was rendered with
            index += 1
            truth, _ = instruments.tonal_loop(asked, arrangement, folder)
            wrong.append(_spectral_error_db(audio, truth, rate))
            staccato_audio, _ = instruments.staccato_loop(key, instruments.STACCATO_PROGRAMS[index % 6], folder)
            spec = ConformSpec(tempo_bpm=120.0, bars=bars, sample_rate=rate, key=asked.name)
            for name, options in own_ways:
                out = conform_audio(audio, rate, Kind.LOOP, spec, own_source, options=options)
                errors[name].append(_spectral_error_db(out.audio, truth, rate))
                heard = detect_key(out.audio, rate).key
                heard_right[name] += heard is not None and heard in (asked, asked.relative())
                out = conform_audio(staccato_audio, rate, Kind.LOOP, spec, own_source, options=options)
                grid = grid_offsets(staccato_audio, rate, 120.0, 16, 0.0, out.audio, rate, 120.0)
                own_offsets[name].extend(grid.offsets_ms.tolist())
        print(f"\n4. A shift at the loop's own tempo (120 -> 120 BPM), {args.own_tempo} tonal renders moved to a key "
              "drawn at random; spectral error against fluidsynth's rendering of the same MIDI in the new key "
              "(constant-Q, dB):")
        print(f"  {'unshifted (the wrong key: a ceiling)':42s} {np.mean(wrong):.2f} dB")
        for name, _ in own_ways:
            found = np.asarray(own_offsets[name])
            print(f"  {name:42s} {np.mean(errors[name]):.2f} dB; heard in the key asked (or relative) "
                  f"{heard_right[name]}/{args.own_tempo}; staccato onsets median {np.median(found):+.2f} ms, "
                  f"p95 {np.percentile(np.abs(found), 95):.2f} ms")

    if 5 in sections:
        # 5. cost for a 4-bar stereo 44.1 kHz loop, the ways alternated in one run
        key = MusicalKey(2)
        audio, rate = instruments.tonal_loop(key, "piano", folder)
        duration = audio.shape[1] / rate
        source = SourceInfo(tempo_bpm=120.0, beats=16)
        cost_ways = (("R2 stretch + resample (shift_alone=faster)", StretchOptions(shift_alone="faster")),
                     ("R3 short-window stretch + resample (default)", DEFAULT_STRETCH),
                     ("Rubber Band's R3 shift, standard window", StretchOptions(pitch="rubberband")))
        runs: dict[tuple[str, float], list[float]] = {}

        def timed(label: tuple[str, float], fn) -> None:  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            fn()
            runs.setdefault(label, []).append(time.perf_counter() - started)

        before = os.getloadavg()
        for _ in range(args.repeats):
            timed(("detection", 0.0), lambda: detect_key(audio, rate))
            for tempo in (120.0, 126.0):
                timed(("plain", tempo), lambda tempo=tempo: conform_audio(audio, rate, Kind.LOOP, ConformSpec(
                    tempo_bpm=tempo, bars=bars, sample_rate=rate), source))
                for name, options in cost_ways:
                    timed((name, tempo), lambda tempo=tempo, options=options: conform_audio(
                        audio, rate, Kind.LOOP, ConformSpec(tempo_bpm=tempo, bars=bars, sample_rate=rate, key="F"),
                        source, options=options))
        after = os.getloadavg()
        median = {label: float(np.median(values)) / duration for label, values in runs.items()}
        least = {label: min(values) / duration for label, values in runs.items()}
        print(f"\n5. Cost for a {bars}-bar stereo 44.1 kHz loop ({duration:.2f} s; {args.repeats} runs each, "
              f"alternated; median (best); {os.cpu_count()} CPUs, shared: load average {before[0]:.2f} before, "
              f"{after[0]:.2f} after)")
        detection = ("detection", 0.0)
        print(f"  detection                                  {median[detection]:.4f}x ({least[detection]:.4f}x)")
        for tempo in (120.0, 126.0):
            plain = ("plain", tempo)
            print(f"  conform 120 -> {tempo:g} BPM without a key {median[plain]:.4f}x ({least[plain]:.4f}x); "
                  "moved D -> F:")
            for name, _ in cost_ways:
                label = (name, tempo)
                shift, shift_least = median[label] - median[plain], least[label] - least[plain]
                print(f"    {name:40s} {median[label]:.4f}x; shift {shift:+.4f}x ({shift_least:+.4f}x), detection + "
                      f"shift {median[detection] + shift:.4f}x ({least[detection] + shift_least:.4f}x)")
        print("  (a conform detects a loop's key with or without --key, so the shift is a conform with a key less one "
              "without, and detection + shift adds the detection timed alone; at the loop's own tempo a shift alone "
              "makes Rubber Band run, at another it rides on the tempo's stretch, where R3 runs as without a key "
              "whatever shift_alone says)")


def _spectral_error_db(audio: np.ndarray, truth: np.ndarray, rate: int) -> float:
    """Mean absolute difference (dB) of the constant-Q spectrograms of ``audio`` and ``truth`` (mono mixes;
    a third of a semitone a bin from C1 over 7 octaves, so a partial a semitone off is told apart), their
    overall levels matched, over the 60 dB below the louder's peak."""
    import librosa

    def constant_q(x: np.ndarray) -> np.ndarray:
        spectrum = librosa.cqt(x.mean(axis=0), sr=rate, hop_length=512, fmin=librosa.note_to_hz("C1"),
                               n_bins=7 * 36, bins_per_octave=36)
        return 20.0 * np.log10(np.abs(spectrum) + 1e-6)

    a, b = constant_q(audio), constant_q(truth)
    frames = min(a.shape[1], b.shape[1])
    a, b = a[:, :frames], b[:, :frames]
    top = max(float(a.max()), float(b.max()))
    a, b = np.maximum(a, top - 60.0), np.maximum(b, top - 60.0)
    difference = a - b
    return float(np.mean(np.abs(difference - difference.mean())))


def _against_midi_ms(audio: np.ndarray, rate: int, key: MusicalKey) -> list[float]:
    """librosa's onsets of a staccato render against the note starts of the MIDI it was played from (ms)."""
    starts = sorted({note.start for note in instruments.tonal_notes(key) if note.channel != 0})
    seconds = np.array(starts, dtype=np.float64) / instruments.TICKS * 60.0 / 120.0
    times, _ = detect_onsets(audio, rate)
    if not len(times):
        return []
    errors = []
    for start in seconds:
        nearest = times[np.argmin(np.abs(times - start))]
        if abs(nearest - start) <= 0.03:
            errors.append(1000.0 * (nearest - start))
    return errors


if __name__ == "__main__":
    main()
