"""Loops: on the grid to ±5 ms, exactly N bars to the sample, no click at the wrap."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine import ConformSpec, Kind, RequestError
from loopbridge.engine.conform import SourceInfo, StretchOptions, conform_audio

from .signals import click_track, dominant_frequency, drum_pattern, onset_errors_ms, pad_with_kicks, tone

GRID_TOLERANCE_MS = 5.0


def _bars_frames(bars: float, tempo_bpm: float, rate: int, beats_per_bar: int = 4) -> int:
    return int(round(bars * beats_per_bar * 60.0 / tempo_bpm * rate))


@pytest.mark.parametrize(
    ("source_rate", "target_rate", "bars"),
    [(44100, 48000, 4), (48000, 44100, 2), (44100, 44100, 1), (48000, 96000, 2)],
)
def test_click_track_100_to_128_lands_on_the_grid(source_rate: int, target_rate: int, bars: int) -> None:
    source = click_track(source_rate, 100.0, 16)
    spec = ConformSpec(tempo_bpm=128.0, bars=bars, sample_rate=target_rate)
    conformed = conform_audio(source, source_rate, Kind.LOOP, spec, SourceInfo(tempo_bpm=100.0))
    assert conformed.audio.shape == (2, _bars_frames(bars, 128.0, target_rate))
    assert conformed.audio.dtype == np.float32
    assert conformed.sample_rate == target_rate
    assert (conformed.loop_start, conformed.loop_end) == (0, conformed.audio.shape[1])
    assert conformed.beats == bars * 4
    assert conformed.info["stretch_factor"] == pytest.approx(1.28)
    errors = onset_errors_ms(conformed.audio, target_rate, 128.0, bars * 4)
    assert np.abs(errors).max() <= GRID_TOLERANCE_MS, errors


def test_estimated_tempo_lands_on_the_grid_too() -> None:
    # no tempo from the model, only the beats it was asked for
    source = click_track(44100, 100.0, 16)
    spec = ConformSpec(tempo_bpm=128.0, bars=4, sample_rate=48000)
    conformed = conform_audio(source, 44100, Kind.LOOP, spec, SourceInfo(beats=16))
    assert conformed.info["estimated"] is True
    assert conformed.info["source_tempo_bpm"] == pytest.approx(100.0, rel=1e-9)
    assert conformed.audio.shape[1] == _bars_frames(4, 128.0, 48000)
    errors = onset_errors_ms(conformed.audio, 48000, 128.0, 16)
    assert np.abs(errors).max() <= GRID_TOLERANCE_MS, errors


@pytest.mark.parametrize(("source_bpm", "target_bpm"), [(100.0, 128.0), (140.0, 96.0)])
def test_drum_loop_lands_on_the_grid(source_bpm: float, target_bpm: float) -> None:
    source = drum_pattern(44100, source_bpm, 2, bed=0.05)
    spec = ConformSpec(tempo_bpm=target_bpm, bars=2, sample_rate=48000)
    conformed = conform_audio(source, 44100, Kind.LOOP, spec, SourceInfo(beats=8))
    assert conformed.audio.shape[1] == _bars_frames(2, target_bpm, 48000)
    errors = onset_errors_ms(conformed.audio, 48000, target_bpm, 8)
    assert np.abs(errors).max() <= GRID_TOLERANCE_MS, errors


def test_exact_tempo_skips_estimation() -> None:
    # clicks at 100 BPM, but the model says 120: its word is taken, nothing is estimated
    source = click_track(44100, 100.0, 8)
    # (a quiet loudness target: the level stage then only removes DC and applies one gain)
    spec = ConformSpec(tempo_bpm=120.0, bars=1, sample_rate=44100, loudness_lufs=-30.0)
    conformed = conform_audio(source, 44100, Kind.LOOP, spec, SourceInfo(tempo_bpm=120.0))
    assert conformed.info["estimated"] is False
    assert conformed.info["source_tempo_bpm"] == 120.0
    assert conformed.info["alignment"] == "not stretched"
    levels = conformed.info["levels"]
    assert "limited_db" not in levels
    # at the same tempo and rate nothing is stretched: the first bar comes out sample for sample (but
    # for its DC and the level's gain), but for the half-millisecond fade-in at its start and the
    # wrap's crossfade at its end
    frames = _bars_frames(1, 120.0, 44100)
    gain = 10 ** (levels["gain_db"] / 20)
    dc = np.array(levels["dc_offset"])[:, None]
    np.testing.assert_allclose(conformed.audio[:, 30 : frames - 500] / gain + dc, source[:, 30 : frames - 500],
                               rtol=1e-4, atol=1e-5)  # the gain as info keeps it (to 0.001 dB)


def test_bars_none_keeps_the_renders_whole_bars() -> None:
    source = click_track(44100, 100.0, 16)  # 4 bars at 100
    spec = ConformSpec(tempo_bpm=128.0, bars=None, sample_rate=48000)
    conformed = conform_audio(source, 44100, Kind.LOOP, spec, SourceInfo(tempo_bpm=100.0))
    assert conformed.beats == 16
    assert conformed.audio.shape[1] == _bars_frames(4, 128.0, 48000)
    # a render a little longer than 2 bars (a tail) still counts as 2 bars
    tailed = np.pad(click_track(44100, 100.0, 8), ((0, 0), (0, 4000)))
    conformed = conform_audio(tailed, 44100, Kind.LOOP, spec, SourceInfo(tempo_bpm=100.0))
    assert conformed.beats == 8


def test_short_render_repeats_to_fill_the_bars() -> None:
    source = click_track(44100, 100.0, 4)  # one bar
    spec = ConformSpec(tempo_bpm=128.0, bars=4, sample_rate=44100)
    conformed = conform_audio(source, 44100, Kind.LOOP, spec, SourceInfo(tempo_bpm=100.0, beats=4))
    assert conformed.audio.shape[1] == _bars_frames(4, 128.0, 44100)
    errors = onset_errors_ms(conformed.audio, 44100, 128.0, 16)
    assert np.abs(errors).max() <= GRID_TOLERANCE_MS, errors


@pytest.mark.parametrize(("bars", "beats_per_bar"), [(0.5, 4), (1.0, 3), (2.0, 7)])
def test_fractional_bars_and_other_meters_are_exact(bars: float, beats_per_bar: int) -> None:
    source = click_track(44100, 110.0, 14)
    spec = ConformSpec(tempo_bpm=123.0, bars=bars, beats_per_bar=beats_per_bar, sample_rate=48000)
    conformed = conform_audio(source, 44100, Kind.LOOP, spec, SourceInfo(tempo_bpm=110.0))
    assert conformed.audio.shape[1] == _bars_frames(bars, 123.0, 48000, beats_per_bar)
    assert conformed.beats == pytest.approx(bars * beats_per_bar)
    assert conformed.beats_per_bar == beats_per_bar


def _wrap_click(audio: np.ndarray) -> float:
    """The jump from the last sample to the first, in units of the loop's median sample-to-sample
    step: a click is a jump tens of times larger than the waveform's usual step."""
    steps = np.abs(np.diff(audio.astype(np.float64), axis=1))
    return float(np.max(np.abs(audio[:, -1].astype(np.float64) - audio[:, 0])) / np.median(steps))


@pytest.mark.parametrize("source_bpm", [96.0, 128.0])
def test_seam_has_no_click(source_bpm: float) -> None:
    rate = 44100
    render = pad_with_kicks(rate, source_bpm, 8)
    assert _wrap_click(render) > 20.0, "the material must click when looped as it is"
    spec = ConformSpec(tempo_bpm=128.0, bars=2, sample_rate=rate)
    conformed = conform_audio(render, rate, Kind.LOOP, spec, SourceInfo(tempo_bpm=source_bpm))
    assert _wrap_click(conformed.audio) < 2.0


def test_seam_uses_audio_before_the_downbeat_when_there_is_some() -> None:
    rate = 44100
    beat = _bars_frames(0.25, 100.0, rate)
    render = pad_with_kicks(rate, 100.0, 12)[:, beat // 2 :]  # half a beat of pickup, then the bars
    loop_as_cut = render[:, beat - beat // 2 : beat - beat // 2 + _bars_frames(2, 100.0, rate)]
    assert _wrap_click(loop_as_cut) > 20.0
    spec = ConformSpec(tempo_bpm=100.0, bars=2, sample_rate=rate)
    source = SourceInfo(tempo_bpm=100.0, downbeat_s=(beat - beat // 2) / rate)
    conformed = conform_audio(render, rate, Kind.LOOP, spec, source)
    assert conformed.info["downbeat_s"] == pytest.approx((beat - beat // 2) / rate)
    assert _wrap_click(conformed.audio) < 2.0


def test_loop_pitch_shift_moves_tone_and_root_and_keeps_time() -> None:
    rate = 48000
    spec = ConformSpec(tempo_bpm=128.0, bars=2, pitch_semitones=-5.0, sample_rate=rate)
    held = conform_audio(
        tone(rate, 440.0, 4.0, channels=2), rate, Kind.LOOP, spec, SourceInfo(tempo_bpm=120.0, root_note=69)
    )
    assert dominant_frequency(held.audio, rate) == pytest.approx(440.0 * 2 ** (-5 / 12), rel=0.003)
    assert held.root_note == 64
    assert held.info["source_root_note"] == 69
    clicks = conform_audio(click_track(rate, 120.0, 8), rate, Kind.LOOP, spec, SourceInfo(tempo_bpm=120.0))
    errors = onset_errors_ms(clicks.audio, rate, 128.0, 8)
    assert np.abs(errors).max() <= GRID_TOLERANCE_MS, errors


@pytest.mark.parametrize("pitch", ["resample", "rubberband"])
def test_both_ways_of_shifting_a_loop_move_it_alike(pitch: str) -> None:
    # Rubber Band's own shift (standard window) and its short-window stretch resampled by the pitch
    # ratio (the default): the same interval, the same length, the hits on the grid
    rate = 44100
    options = StretchOptions(pitch=pitch)
    spec = ConformSpec(tempo_bpm=126.0, bars=2, pitch_semitones=3.0, sample_rate=rate)
    for tempo in (120.0, 126.0):  # with a tempo's stretch, and at the loop's own tempo
        held = conform_audio(tone(rate, 220.0, 4.0 * 126.0 / tempo, channels=2), rate, Kind.LOOP, spec,
                             SourceInfo(tempo_bpm=tempo), options=options)
        assert held.audio.shape == (2, _bars_frames(2, 126.0, rate))
        assert dominant_frequency(held.audio, rate) == pytest.approx(220.0 * 2 ** (3 / 12), rel=0.003)
        assert held.info["pitch_method"] == pitch
        assert held.info["fft_window"] == ("short" if pitch == "resample" else "standard")
        clicks = conform_audio(click_track(rate, tempo, 8), rate, Kind.LOOP, spec, SourceInfo(tempo_bpm=tempo),
                               options=options)
        errors = onset_errors_ms(clicks.audio, rate, 126.0, 8)
        assert np.abs(errors).max() <= GRID_TOLERANCE_MS, (tempo, errors)


@pytest.mark.parametrize("shift_alone", ["faster", "same"])
def test_a_shift_at_the_loops_own_tempo_takes_the_engine_asked_for(shift_alone: str) -> None:
    # the pitch alone moving makes Rubber Band run: asked for, its faster engine (R2), stretched by the
    # pitch ratio and resampled; a tempo change keeps the finer one (R3) whatever the choice
    rate = 44100
    options = StretchOptions(shift_alone=shift_alone)
    spec = ConformSpec(tempo_bpm=126.0, bars=2, pitch_semitones=3.0, sample_rate=rate)
    engines = {}
    for tempo in (126.0, 120.0):
        held = conform_audio(tone(rate, 220.0, 4.0 * 126.0 / tempo, channels=2), rate, Kind.LOOP, spec,
                             SourceInfo(tempo_bpm=tempo), options=options)
        assert held.audio.shape == (2, _bars_frames(2, 126.0, rate))
        assert dominant_frequency(held.audio, rate) == pytest.approx(220.0 * 2 ** (3 / 12), rel=0.003)
        engines[tempo] = held.info["stretch_engine"], held.info["transient_mode"], held.info["fft_window"]
    own = ("rubberband-r2", "mixed", "standard") if shift_alone == "faster" else ("rubberband-r3", "crisp", "short")
    assert engines == {126.0: own, 120.0: ("rubberband-r3", "crisp", "short")}


def test_the_default_shift_of_a_loop_is_resampled() -> None:
    spec = ConformSpec(tempo_bpm=126.0, bars=1, pitch_semitones=-2.0, sample_rate=44100)
    out = conform_audio(tone(44100, 330.0, 2.0, channels=2), 44100, Kind.LOOP, spec, SourceInfo(tempo_bpm=120.0))
    assert out.info["pitch_method"] == "resample" and out.info["fft_window"] == "short"
    plain = conform_audio(tone(44100, 330.0, 2.0, channels=2), 44100, Kind.LOOP, spec.replace(pitch_semitones=0.0),
                          SourceInfo(tempo_bpm=120.0))
    assert "pitch_method" not in plain.info


def test_held_notes_are_not_cut_into_pieces() -> None:
    # a bass note and a chord have no hits: the alignment has nothing to follow and must not splice
    # the stretched audio at lags read from noise (every segment keeps one lag)
    rate = 48000
    t = np.arange(int(4.0 * rate)) / rate
    held = 0.4 * np.sin(2 * np.pi * 55.0 * t) + 0.2 * np.sin(2 * np.pi * 110.0 * t)
    held += 0.1 * (np.sin(2 * np.pi * 261.6 * t) + np.sin(2 * np.pi * 329.6 * t) + np.sin(2 * np.pi * 392.0 * t))
    audio = np.stack([held, held]).astype(np.float32)
    spec = ConformSpec(tempo_bpm=128.0, bars=2, sample_rate=rate)
    conformed = conform_audio(audio, rate, Kind.LOOP, spec, SourceInfo(tempo_bpm=120.0))
    # (the only onset is the loop's own wrap, faded in: at most that one segment is measured)
    assert len(set(conformed.info["alignment_lags_ms"])) == 1
    assert dominant_frequency(conformed.audio, rate) == pytest.approx(55.0, rel=2e-3)


def test_resampled_loop_keeps_its_pitch() -> None:
    render = tone(44100, 1000.0, 2.0, channels=2)
    spec = ConformSpec(tempo_bpm=120.0, bars=1, sample_rate=48000)
    conformed = conform_audio(render, 44100, Kind.LOOP, spec, SourceInfo(tempo_bpm=120.0))
    assert conformed.info["resampled_from"] == 44100
    assert dominant_frequency(conformed.audio, 48000) == pytest.approx(1000.0, rel=5e-4)


def test_loops_without_a_pulse_or_too_short_still_come_out_exact() -> None:
    spec = ConformSpec(tempo_bpm=90.0, bars=1, sample_rate=48000)
    silent = conform_audio(np.zeros((2, 48000), np.float32), 48000, Kind.LOOP, spec)
    assert silent.audio.shape[1] == _bars_frames(1, 90.0, 48000)
    assert silent.info["no_pulse"] is True
    assert not np.any(silent.audio)
    tiny = conform_audio(np.full((1, 300), 0.1, np.float32), 48000, Kind.LOOP, spec)
    assert tiny.audio.shape == (1, _bars_frames(1, 90.0, 48000))
    assert np.all(np.isfinite(tiny.audio))


def test_loop_longer_than_the_engine_allows_is_refused() -> None:
    spec = ConformSpec(tempo_bpm=20.0, bars=64, beats_per_bar=16, sample_rate=48000)
    with pytest.raises(RequestError) as caught:
        conform_audio(click_track(48000, 100.0, 4), 48000, Kind.LOOP, spec, SourceInfo(tempo_bpm=100.0))
    assert caught.value.field == "bars"
