"""Warp modes (``ConformSpec.warp``, engine/conform/warp.py): a loop with no pitch is stretched by the
engine that keeps its hits on the grid, a loop with notes by the one that keeps their pitch, and a
user may force either."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine import ConformSpec, Kind, RequestError
from loopbridge.engine.conform import SourceInfo, StretchOptions, conform_audio
from loopbridge.engine.conform.key import MIN_TONALNESS
from loopbridge.engine.conform.warp import WARP_MODES, beats_options, choose_warp

from .real_audio import grid_offsets, real_loops, real_loops_available
from .signals import drum_pattern

RATE = 44100


def _held_bass(seconds: float, freq_hz: float = 110.0) -> np.ndarray:
    """A held low note (a few harmonics, a slow swell and fall each bar, as a bass pad plays it) with a
    soft click on each beat of 120 BPM: pitched material with a pulse."""
    t = np.arange(int(seconds * RATE)) / RATE
    note = sum(0.3 / k * np.sin(2 * np.pi * k * freq_hz * t) for k in (1, 2, 3))
    note = note * (0.8 + 0.2 * np.cos(2 * np.pi * t / 2.0))
    clicks = np.zeros_like(t)
    for start in range(0, len(t), RATE // 2):
        n = np.arange(min(256, len(t) - start))
        clicks[start : start + len(n)] += 0.2 * np.exp(-n / 40.0) * np.sin(2 * np.pi * 3000.0 * n / RATE)
    mono = note + clicks
    return np.stack([mono, mono]).astype(np.float32)


def _frequency_near(audio: np.ndarray, freq_hz: float) -> float:
    """The frequency (Hz) of the strongest spectral peak within a semitone of ``freq_hz``, refined by a
    parabola on log magnitudes (the middle half of the audio, zero-padded to 1/16 Hz bins)."""
    mono = audio.astype(np.float64).mean(axis=0)
    mono = mono[len(mono) // 4 : -len(mono) // 4]
    n = 1 << int(np.ceil(np.log2(16 * RATE)))
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono)), n))
    bins = np.arange(len(spectrum)) * RATE / n
    near = np.flatnonzero(np.abs(12 * np.log2(np.maximum(bins, 1e-9) / freq_hz)) < 1.0)
    i = int(near[np.argmax(spectrum[near])])
    a, b, c = np.log(spectrum[i - 1 : i + 2] + 1e-30)
    return float((i + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / n)


@pytest.mark.skipif(not real_loops_available(), reason="Debian's sonic-pi-samples are not installed "
                                                       "(scripts/test.sh installs them)")
@pytest.mark.parametrize(("name", "ratio"), [("loop_industrial", 1.30), ("loop_compus", 0.85)])
def test_a_recorded_drum_loop_under_auto_takes_the_beats_mode_and_its_hits_land_on_the_grid(name: str,
                                                                                           ratio: float) -> None:
    pytest.importorskip("librosa", reason="librosa measures the onsets")
    loop = next(loop for loop in real_loops() if loop.name == name)
    target = round(loop.tempo_bpm * ratio, 2)
    spec = ConformSpec(tempo_bpm=target, bars=loop.beats / 4, sample_rate=RATE, warp="auto")
    conformed = conform_audio(loop.audio, loop.sample_rate, Kind.LOOP, spec, SourceInfo())  # a user's file
    assert conformed.info["warp"] == "beats" and conformed.info["warp_rule"] == "no pitch heard"
    assert conformed.info["tonalness"] < MIN_TONALNESS
    assert conformed.info["stretch_engine"] == "rubberband-r2" and conformed.info["transient_mode"] == "crisp"
    assert conformed.info["fft_window"] == "short"
    offsets = grid_offsets(loop.audio, loop.sample_rate, loop.tempo_bpm, loop.beats, loop.downbeat_s,
                           conformed.audio, conformed.sample_rate, target)
    # librosa's onsets of the source, mapped onto the song's grid, found again in the conformed loop
    assert offsets.missed <= len(offsets.offsets_ms) // 10, offsets
    assert abs(offsets.median_ms) <= 5.0, offsets
    assert offsets.p95_ms <= 10.0, offsets
    assert abs(offsets.downbeat_ms) <= 5.0, offsets


def test_a_held_low_note_keeps_its_pitch_on_the_complex_mode() -> None:
    audio = _held_bass(8.0)
    spec = ConformSpec(tempo_bpm=132.0, bars=4, sample_rate=RATE, warp="auto")
    conformed = conform_audio(audio, RATE, Kind.LOOP, spec, SourceInfo(tempo_bpm=120.0))
    assert conformed.info["warp"] == "complex" and conformed.info["warp_rule"] == "pitched"
    assert conformed.info["tonalness"] >= MIN_TONALNESS
    assert conformed.info["stretch_engine"] == "rubberband-r3"
    source_hz = _frequency_near(audio, 110.0)
    cents = 1200.0 * np.log2(_frequency_near(conformed.audio, 110.0) / source_hz)
    assert abs(cents) <= 3.0, cents


def test_the_warp_mode_a_user_forces_is_the_one_that_runs() -> None:
    drums = drum_pattern(RATE, 120.0, 2, seed=3)
    bass = _held_bass(4.0)
    runs = {
        ("drums", "auto"): conform_audio(drums, RATE, Kind.LOOP,
                                         ConformSpec(tempo_bpm=132.0, bars=2, sample_rate=RATE, warp="auto"),
                                         SourceInfo(tempo_bpm=120.0)),
        ("drums", "default"): conform_audio(drums, RATE, Kind.LOOP,
                                            ConformSpec(tempo_bpm=132.0, bars=2, sample_rate=RATE),
                                            SourceInfo(tempo_bpm=120.0)),
        ("drums", "complex"): conform_audio(drums, RATE, Kind.LOOP,
                                            ConformSpec(tempo_bpm=132.0, bars=2, sample_rate=RATE, warp="complex"),
                                            SourceInfo(tempo_bpm=120.0)),
        ("bass", "beats"): conform_audio(bass, RATE, Kind.LOOP,
                                         ConformSpec(tempo_bpm=132.0, bars=2, sample_rate=RATE, warp="beats"),
                                         SourceInfo(tempo_bpm=120.0)),
    }
    assert (runs["drums", "auto"].info["warp"], runs["drums", "auto"].info["stretch_engine"]) == (
        "beats", "rubberband-r2")
    for (_, mode), conformed in runs.items():
        if mode not in ("auto", "default"):
            assert conformed.info["warp"] == mode and conformed.info["warp_rule"] == (
                "the default" if mode == "complex" else "asked")
    assert (runs["drums", "default"].info["warp"], runs["drums", "default"].info["warp_rule"]) == (
        "complex", "the default")
    assert np.array_equal(runs["drums", "default"].audio, runs["drums", "complex"].audio)
    assert runs["drums", "complex"].info["stretch_engine"] == "rubberband-r3"
    assert runs["bass", "beats"].info["stretch_engine"] == "rubberband-r2"
    # a different stretch makes different audio, of the same length
    assert runs["drums", "auto"].audio.shape == runs["drums", "complex"].audio.shape
    assert not np.allclose(runs["drums", "auto"].audio, runs["drums", "complex"].audio)


def test_the_models_word_on_pitch_counts_before_the_measurement() -> None:
    bass = _held_bass(4.0)
    spec = ConformSpec(tempo_bpm=132.0, bars=2, sample_rate=RATE, warp="auto")
    told = conform_audio(bass, RATE, Kind.LOOP, spec, SourceInfo(tempo_bpm=120.0, pitched=False))
    assert (told.info["warp"], told.info["warp_rule"]) == ("beats", "no pitch (the model's word)")
    drums = drum_pattern(RATE, 120.0, 2, seed=4)
    said = conform_audio(drums, RATE, Kind.LOOP, spec, SourceInfo(tempo_bpm=120.0, pitched=True))
    assert (said.info["warp"], said.info["warp_rule"]) == ("complex", "pitched")


def test_one_shots_and_kit_parts_are_never_warped() -> None:
    hit = drum_pattern(RATE, 120.0, 1, seed=5)[:, : RATE // 4]
    for kind in (Kind.ONE_SHOT, Kind.KIT):
        conformed = conform_audio(hit, RATE, kind, ConformSpec(tempo_bpm=132.0, sample_rate=RATE, warp="beats"),
                                  SourceInfo())
        assert "warp" not in conformed.info and conformed.kind is Kind.ONE_SHOT


def test_a_forced_warp_mode_is_another_file_and_the_default_keeps_its_key() -> None:
    spec = ConformSpec(tempo_bpm=128.0, bars=2)
    assert "warp" not in spec.key_fields()  # files conformed before warp modes keep their keys
    keys = {mode: spec.replace(warp=mode).conform_key("render") for mode in WARP_MODES}
    assert len(set(keys.values())) == 3 and keys["complex"] == spec.conform_key("render")


@pytest.mark.parametrize("value", ["fast", "Beats", "", None, 1, True])
def test_a_bad_warp_mode_is_refused_naming_it_and_the_modes(value: object) -> None:
    with pytest.raises(RequestError) as caught:
        ConformSpec(tempo_bpm=120.0, warp=value)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.value) == ("warp", value)
    assert str(caught.value) == f"warp={value!r} is not accepted: expected one of: auto, beats, complex"
    with pytest.raises(RequestError, match="warp"):
        choose_warp(value, StretchOptions(), None, 0.0)  # type: ignore[arg-type]


def test_the_beats_mode_keeps_the_callers_other_choices() -> None:
    options = beats_options(StretchOptions(align=False, pitch="rubberband"))
    assert (options.high_quality, options.transient_mode, options.window) == (False, "crisp", "short")
    assert (options.align, options.pitch) == (False, "rubberband")
