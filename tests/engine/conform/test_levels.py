"""Levels of conformed files: true peak, DC, loudness and its spread, measured independently.

The true peak is measured by ``signals.true_peak_dbtp`` (scipy's polyphase resampler, 4x, on the
whole file) and the loudness by pyloudnorm's own meter, not by the engine's code.
"""

from __future__ import annotations

import io

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from loopbridge.engine import ConformSpec, Kind, RequestError
from loopbridge.engine.conform import SourceInfo, conform_audio, encode_wav
from loopbridge.engine.conform import levels as levels_module
from loopbridge.engine.conform.levels import (
    CLIP_MAX_DB,
    LEVEL_MARGIN_DB,
    MAX_LIMIT_DB,
    frame_peaks,
    limit,
    request_level,
    soft_clip,
)

from .real_audio import real_loops, real_loops_available
from .signals import drum_pattern, true_peak_dbtp

RATE = 48000
CEILING_DBTP = -1.0


def _hot_quarter_rate(rate: int, seconds: float, channels: int = 2) -> np.ndarray:
    """A sine at a quarter of the rate, phased so every sample misses its crests: sample peaks at
    full scale, true peak 3 dB above it (+3 dBTP), plus a DC offset of 0.05."""
    t = np.arange(int(seconds * rate)) / rate
    wave = np.sin(2 * np.pi * rate / 4 * t + np.pi / 4)
    wave *= 0.999 / np.abs(wave).max()
    return (np.stack([wave] * channels) + 0.05).astype(np.float32)


def _hot_drums(rate: int, tempo_bpm: float, seed: int, level: float) -> np.ndarray:
    """Two bars of drums at ``level`` times full scale, a transient clipped square wave under them
    (crests between samples), on a DC offset."""
    drums = drum_pattern(rate, tempo_bpm, 2, seed=seed)
    drums = drums / np.abs(drums).max()
    t = np.arange(drums.shape[1]) / rate
    buzz = np.clip(3 * np.sin(2 * np.pi * 5512.5 * t + 0.3), -1, 1) * 0.3
    mixed = np.clip(drums + buzz, -1, 1) * level + 0.02
    return mixed.astype(np.float32)


def _written(conformed: object) -> np.ndarray:
    """The samples of the 24-bit WAV file written, as a DAW reads them: float64 ``[channels, frames]``."""
    data, _ = sf.read(io.BytesIO(encode_wav(conformed)), dtype="float64", always_2d=True)  # type: ignore[arg-type]
    return data.T


def _loudness(audio: np.ndarray, rate: int) -> float:
    return float(pyloudnorm.Meter(rate).integrated_loudness(audio.T))


@pytest.mark.parametrize("kind", [Kind.LOOP, Kind.TEXTURE, Kind.ONE_SHOT])
def test_material_that_overshoots_between_samples_is_written_under_minus_1_dbtp(kind: Kind) -> None:
    hot = _hot_quarter_rate(RATE, 2.0)
    assert true_peak_dbtp(hot - 0.05) > 2.5  # +3 dBTP before, with every sample under full scale
    spec = ConformSpec(tempo_bpm=120.0, bars=1, sample_rate=RATE)
    source = SourceInfo(tempo_bpm=120.0) if kind is Kind.LOOP else SourceInfo()
    conformed = conform_audio(hot, RATE, kind, spec, source)
    written = _written(conformed)
    assert true_peak_dbtp(written, looped=kind is not Kind.ONE_SHOT) <= CEILING_DBTP
    if kind is not Kind.ONE_SHOT:
        assert written.shape[1] == spec.loop_frames  # the level stage never changes a loop's length


@pytest.mark.parametrize("kind", [Kind.LOOP, Kind.TEXTURE])
@pytest.mark.parametrize("target", [-14.0, -20.0, -10.0])
def test_loops_and_textures_reach_their_loudness_under_the_ceiling_without_dc(kind: Kind, target: float) -> None:
    tempo = 124.0
    spec = ConformSpec(tempo_bpm=tempo, bars=2, sample_rate=RATE, loudness_lufs=target)
    source = SourceInfo(tempo_bpm=tempo) if kind is Kind.LOOP else SourceInfo()
    conformed = conform_audio(_hot_drums(44100, tempo, seed=3, level=0.98), 44100, kind, spec, source)
    written = _written(conformed)
    assert written.shape[1] == spec.loop_frames
    assert true_peak_dbtp(written, looped=True) <= CEILING_DBTP
    assert np.abs(written.mean(axis=1)).max() < 1e-4  # DC (0.02 in) removed
    assert _loudness(written, RATE) == pytest.approx(target, abs=0.5)
    assert conformed.info["loudness_target_lufs"] == target
    if kind is Kind.LOOP:  # (a texture's DC goes before it is cut, the level stage finds none left)
        assert conformed.info["levels"]["dc_offset"][0] == pytest.approx(0.02, abs=0.005)


def test_variations_of_a_request_sit_within_one_lu_of_each_other() -> None:
    # four "variations": different patterns at levels 20 dB apart, one of them hot; all 2 bars at 128
    tempo = 128.0
    spec = ConformSpec(tempo_bpm=tempo, bars=2, sample_rate=RATE)
    loudness = []
    for seed, level in ((0, 0.05), (1, 0.3), (2, 0.98), (3, 0.5)):
        render = _hot_drums(RATE, tempo, seed=seed, level=level)
        written = _written(conform_audio(render, RATE, Kind.LOOP, spec, SourceInfo(tempo_bpm=tempo, beats=8)))
        assert true_peak_dbtp(written, looped=True) <= CEILING_DBTP
        loudness.append(_loudness(written, RATE))
    assert max(loudness) - min(loudness) <= 1.0, loudness
    assert np.mean(loudness) == pytest.approx(-14.0, abs=0.5)


def test_sparse_hits_are_limited_by_at_most_12_db_and_stay_quieter_than_asked() -> None:
    # one short click a bar: reaching -8 LUFS would flatten it, so it stays short of the target
    frames = int(2.0 * RATE)
    clicks = np.zeros((1, frames), np.float32)
    for start in range(0, frames, RATE):
        clicks[0, start : start + 48] = np.hanning(48) * 0.9
    spec = ConformSpec(tempo_bpm=120.0, bars=1, sample_rate=RATE, loudness_lufs=-8.0)
    conformed = conform_audio(clicks, RATE, Kind.TEXTURE, spec)
    levels = conformed.info["levels"]
    assert levels.get("limited_db", 0.0) <= MAX_LIMIT_DB + 0.01
    assert levels["loudness_lufs"] < -8.0 - 1.0
    written = _written(conformed)
    assert true_peak_dbtp(written, looped=True) <= CEILING_DBTP
    assert _loudness(np.tile(written, (1, 2)), RATE) == pytest.approx(levels["loudness_lufs"], abs=0.5)


def test_the_limiter_reads_around_the_wrap_so_the_seam_is_like_any_other_point() -> None:
    # a hot loop limited as it is, and turned by a few hundred frames first: the same gain, turned,
    # so the frames either side of the seam are gained as they would be anywhere else in the loop
    loop = _hot_drums(RATE, 120.0, seed=5, level=0.98) * np.float32(2.0)
    ceiling = 10 ** (-1.02 / 20)
    shift = 337
    plain = loop.copy()
    turned = np.roll(loop, shift, axis=1)
    deepest = limit(plain, RATE, ceiling, circular=True)
    limit(turned, RATE, ceiling, circular=True)
    assert deepest > 3.0
    np.testing.assert_allclose(turned, np.roll(plain, shift, axis=1), atol=2e-5)
    # and the loop, wrapped around, has no true peak over the ceiling at its seam
    assert float(frame_peaks(plain, circular=True).max()) <= ceiling * 1.001


def test_a_loudness_out_of_range_is_refused_naming_the_value() -> None:
    with pytest.raises(RequestError) as caught:
        ConformSpec(loudness_lufs=-3.0)
    assert caught.value.field == "loudness_lufs" and "-40" in str(caught.value) and "-6" in str(caught.value)
    with pytest.raises(RequestError, match="loudness_lufs"):
        ConformSpec(loudness_lufs=float("nan"))


def test_the_loudness_target_is_part_of_the_conform_key() -> None:
    assert ConformSpec(loudness_lufs=-14.0).conform_key("r") != ConformSpec(loudness_lufs=-20.0).conform_key("r")
    assert ConformSpec().conform_key("r") == ConformSpec(loudness_lufs=-14.0).conform_key("r")


# ---- the level a request's loops share, and the soft clipper that reaches it -------------------------


def _drums(seed: int, level: float) -> np.ndarray:
    """Two bars of drums at 128 BPM, their sample peak at ``level``, on a DC offset of 0.01."""
    drums = drum_pattern(RATE, 128.0, 2, seed=seed)
    return (drums / np.abs(drums).max() * level + 0.01).astype(np.float32)


def _grouped(render: np.ndarray, crest_db: float | None, tempo: float = 128.0) -> object:
    spec = ConformSpec(tempo_bpm=tempo, bars=2, sample_rate=RATE, level_crest_db=crest_db)
    return conform_audio(render, RATE, Kind.LOOP, spec, SourceInfo(tempo_bpm=tempo, beats=8),
                         sets_level=crest_db is None)


def test_the_first_loop_of_a_request_sets_the_level_its_variations_reach() -> None:
    """The first variation is brought to its own reach less the margin, and says its crest; variations
    with peaks up to the margin plus the clipper's bound higher above their loudness reach that level
    too, under the ceiling, without DC; the loops' lengths never change."""
    first = _grouped(_drums(seed=0, level=0.5), None)
    crest = first.info["levels"]["crest_db"]  # type: ignore[attr-defined]
    level = request_level(-14.0, crest)
    assert level < -14.0  # a drum loop: its peaks stand more than 13 dB above its loudness
    loudness = [_loudness(_written(first), RATE)]
    assert loudness[0] == pytest.approx(level, abs=0.3)
    for seed, scale in ((1, 0.3), (2, 0.98), (3, 0.05)):
        # sparser variations: their peaks stand 1-4 dB higher above their loudness than the first's
        render = _drums(seed=seed, level=scale)
        render[:, : render.shape[1] // 2] *= np.float32(0.4)
        conformed = _grouped(render, crest)
        written = _written(conformed)
        assert written.shape[1] == first.audio.shape[1]  # type: ignore[attr-defined]
        assert true_peak_dbtp(written, looped=True) <= CEILING_DBTP
        assert np.abs(written.mean(axis=1)).max() < 1e-4
        # the bound, with the clipper's headroom under the ceiling and its filter's ringing
        assert conformed.info["levels"].get("clipped_db", 0.0) <= CLIP_MAX_DB + 0.7  # type: ignore[attr-defined]
        loudness.append(_loudness(written, RATE))
    assert max(loudness) - min(loudness) <= 1.0, (loudness, level)


def test_the_request_level_never_goes_above_the_loudness_asked_for() -> None:
    assert request_level(-14.0, 6.0) == -14.0  # a dense loop: its reach is higher than the target
    assert request_level(-14.0, 20.0) == pytest.approx(-1.02 - 20.0 - LEVEL_MARGIN_DB)


def test_the_shared_level_is_part_of_the_conform_key_and_checked() -> None:
    plain = ConformSpec().conform_key("r")
    other = ConformSpec(level_crest_db=18.5).conform_key("r")
    assert ConformSpec(level_crest_db=18.0).conform_key("r") not in (plain, other)
    with pytest.raises(RequestError, match="level_crest_db"):
        ConformSpec(level_crest_db=-1.0)


def test_the_soft_clipper_bends_a_sine_a_little_and_moves_nothing_ahead_of_a_hit() -> None:
    """A 1 kHz sine 3 dB over the ceiling: its true peak brought under it, its crest factor lowered by
    the 3 dB and its harmonics (THD) under a hard clip's; a hit after silence: not a frame before the
    band-limiting filter's reach changes, and its attack keeps its place."""
    ceiling = 10 ** (-1.02 / 20)
    t = np.arange(RATE) / RATE
    sine = (np.sin(2 * np.pi * 1000 * t) * ceiling * 10 ** (3 / 20)).astype(np.float32)[None, :]
    clipped = sine.copy()
    taken = soft_clip(clipped, ceiling, circular=True)
    assert taken == pytest.approx(3.0 + 0.3, abs=0.6)
    assert float(frame_peaks(clipped, circular=True).max()) <= ceiling

    def thd(wave: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(wave * np.hanning(RATE)))
        harmonics = np.sqrt(sum(spectrum[k * 1000 - 5 : k * 1000 + 6].max() ** 2 for k in range(2, 20)))
        return float(harmonics / spectrum[995:1006].max())

    # a steady sine is a clipper's worst case: 14 % THD at 3 dB, less than a hard clip to the same peak
    peak = float(frame_peaks(clipped, circular=True).max())
    assert thd(clipped[0]) < min(0.15, thd(np.clip(sine[0], -peak, peak)))
    # a decaying hit 4 dB over the ceiling after a quiet stretch
    hit = np.zeros((2, RATE // 2), np.float32)
    start = 10000
    decay = np.exp(-np.arange(4000) / 400.0) * np.sin(2 * np.pi * 90 * np.arange(4000) / RATE + 0.4)
    hit[:, start : start + 4000] = decay * ceiling * 10 ** (4 / 20) / np.abs(decay).max()
    hit[:, :start] = (np.random.default_rng(1).standard_normal((2, start)) * 1e-3).astype(np.float32)
    before = hit.copy()
    soft_clip(hit, ceiling, circular=True)
    changed = np.flatnonzero(np.abs(hit - before).max(axis=0) > 1e-7)
    assert changed[0] >= start - 12  # the filter's reach, a quarter of a millisecond
    assert float(frame_peaks(hit, circular=True).max()) <= ceiling


def _frame_peaks_by_resample_poly(audio: np.ndarray, circular: bool) -> np.ndarray:
    """The frame peaks the straightforward way: the whole file (a loop with its wrap around either end) 4x
    oversampled by scipy's polyphase resampler with the engine's filter, the loudest of each frame's four
    values over the channels, and its own sample."""
    from loopbridge.engine.conform import levels
    from scipy.signal import resample_poly

    pad = 32
    frames = audio.shape[1]
    if circular:
        padded = audio[:, np.arange(-pad, frames + pad) % frames]
    else:
        padded = np.pad(audio, ((0, 0), (pad, pad)))
    up = resample_poly(padded, 4, 1, axis=1, window=levels._OVERSAMPLING_FILTER)[:, 4 * pad : 4 * (pad + frames)]
    loudest = np.abs(up).max(axis=0).reshape(frames, 4).max(axis=1)
    return np.maximum(loudest, np.abs(audio).max(axis=0))


@pytest.mark.skipif(not real_loops_available(), reason="Debian's sonic-pi-samples are not installed")
@pytest.mark.parametrize("circular", [True, False])
def test_frame_peaks_match_scipys_polyphase_resampler_on_recorded_loops(circular: bool) -> None:
    for loop in real_loops():
        expected = _frame_peaks_by_resample_poly(loop.audio, circular)
        found = frame_peaks(loop.audio, circular)
        assert found.shape == expected.shape
        # the same filter by FFT convolution: float32 rounding apart
        assert np.abs(found - expected).max() <= 1e-6 * expected.max(), loop.name


def test_a_loop_whose_peak_sets_its_gain_is_not_limited_for_the_gains_rounding() -> None:
    # loud targets the peaks cannot reach: the gain puts each loop's loudest peak at the ceiling, where float32
    # rounding leaves it a hair under or over; a hair over is trimmed, the limiter does not run for it
    ceiling = 10 ** ((levels_module.TRUE_PEAK_CEILING_DBTP - levels_module.TRUE_PEAK_MARGIN_DB) / 20)
    base = drum_pattern(RATE, 120.0, 2, bed=0.05)
    for scale in np.linspace(0.3, 0.9, 12):
        audio = (base * scale).astype(np.float32)
        levelled, report = levels_module.level_audio(audio, RATE, Kind.LOOP, -6.0)
        assert report.limited_db == 0.0, scale
        assert report.loudness_lufs is not None and report.loudness_lufs < -6.0  # the peak set the gain
        assert frame_peaks(levelled, True).max() <= ceiling * (1 + 1e-6)
        assert report.true_peak_dbtp <= levels_module.TRUE_PEAK_CEILING_DBTP - levels_module.TRUE_PEAK_MARGIN_DB + 1e-5
