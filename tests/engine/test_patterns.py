"""Arranging one-shots on drum patterns: loops exact to the sample, hits on the grid."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine.errors import RequestError
from loopbridge.engine.patterns import (
    PATTERNS,
    Hit,
    Pattern,
    arrange,
    beat_to_sample,
    hit_times,
    loop_length_samples,
    pattern_for_prompt,
)

SR = 44100


def _impulses(pattern: Pattern) -> dict[str, np.ndarray]:
    """A one-sample click per part, each part at its own level so hits can be told apart."""
    return {part: np.array([[float(2 ** i)]], dtype=np.float32) for i, part in enumerate(pattern.parts)}


@pytest.mark.parametrize("name", sorted(PATTERNS))
@pytest.mark.parametrize(("tempo_bpm", "bars"), [(120.0, 1), (128.0, 2), (93.7, 1.5), (174.0, 4)])
def test_every_hit_lands_on_its_grid_sample(name: str, tempo_bpm: float, bars: float) -> None:
    pattern = PATTERNS[name]
    shots = _impulses(pattern)
    loop = arrange(shots, pattern, tempo_bpm, bars, SR)
    assert loop.shape == (1, round(bars * 4 * 60 * SR / tempo_bpm))
    expected = np.zeros(loop.shape[1], dtype=np.float64)
    for beat, hit in hit_times(pattern, bars):
        expected[round(beat * 60 * SR / tempo_bpm)] += shots[hit.part][0, 0] * hit.velocity
    np.testing.assert_allclose(loop[0], expected, rtol=1e-6, atol=1e-7)
    # the grid in sixteenths (32nd notes and triplets for trap rolls): every hit is on it
    for beat, _ in hit_times(pattern, bars):
        assert min(abs(beat * 8 - round(beat * 8)), abs(beat * 3 - round(beat * 3))) < 1e-9


def test_four_on_the_floor_kicks_every_beat() -> None:
    pattern = PATTERNS["four on the floor"]
    kicks = [beat for beat, hit in hit_times(pattern, 2) if hit.part == "kick"]
    assert kicks == [float(b) for b in range(8)]
    loop = arrange({"kick": np.ones((1, 1), np.float32)}, pattern, 125.0, 2, SR)
    assert list(np.flatnonzero(loop[0])) == [beat_to_sample(b, 125.0, SR) for b in range(8)]


def test_tails_wrap_round_the_loop_end() -> None:
    pattern = Pattern("one", 4.0, (Hit("kick", 3.0),))
    length = loop_length_samples(120.0, 1, 4, SR)
    shot = np.linspace(1.0, 0.5, SR, dtype=np.float32)[None]  # one second: past the loop end
    loop = arrange({"kick": shot}, pattern, 120.0, 1, SR)
    start = beat_to_sample(3.0, 120.0, SR)
    np.testing.assert_allclose(loop[0, start:], shot[0, : length - start])
    np.testing.assert_allclose(loop[0, : SR - (length - start)], shot[0, length - start :])
    assert np.isclose(loop.sum(), shot.sum(), rtol=1e-4)
    cut = arrange({"kick": shot}, pattern, 120.0, 1, SR, wrap_tails=False)
    assert not cut[0, :start].any()


def test_closed_hat_chokes_open_hat() -> None:
    pattern = Pattern("choke", 4.0, (Hit("open hat", 0.0), Hit("closed hat", 1.0)), {"closed hat": ("open hat",)})
    ring = np.ones((1, SR), dtype=np.float32)
    loop = arrange({"open hat": ring, "closed hat": np.zeros((1, 10), np.float32)}, pattern, 120.0, 1, SR)
    choke_at = beat_to_sample(1.0, 120.0, SR)
    assert loop[0, choke_at - 1000] == 1.0
    assert loop[0, choke_at - 1] < 0.05
    assert not loop[0, choke_at:].any()


def test_other_meters_and_partial_bars() -> None:
    pattern = PATTERNS["breakbeat"]
    beats = [beat for beat, _ in hit_times(pattern, 2, beats_per_bar=3)]
    assert max(beats) < 6 and any(2.9 < b < 3.1 for b in beats)  # bar 2 restarts the pattern
    loop = arrange(_impulses(pattern), pattern, 100.0, 0.5, SR)
    assert loop.shape[1] == loop_length_samples(100.0, 0.5, 4, SR)


def test_prompt_words_pick_patterns_and_the_seed_picks_otherwise() -> None:
    assert pattern_for_prompt("deep house groove", 0).name == "four on the floor"
    assert pattern_for_prompt("four-on-the-floor", 3).name == "four on the floor"
    assert pattern_for_prompt("Breakbeat!", 0).name == "breakbeat"
    assert pattern_for_prompt("dark trap beat", 0).name == "trap"
    assert pattern_for_prompt("hats", 0).name == "hats"
    assert pattern_for_prompt("boom bap", 0).name == "boom bap"
    assert pattern_for_prompt("housekeeping", 0) == pattern_for_prompt("housekeeping", 0)
    chosen = {pattern_for_prompt("", seed).name for seed in range(20)}
    assert chosen == set(PATTERNS)


def test_bad_arguments_name_the_value() -> None:
    pattern = PATTERNS["hats"]
    shots = _impulses(pattern)
    with pytest.raises(RequestError, match="tempo_bpm"):
        arrange(shots, pattern, 5.0, 1, SR)
    with pytest.raises(RequestError, match="bars"):
        arrange(shots, pattern, 120.0, 0, SR)
    with pytest.raises(RequestError, match="parts"):
        arrange({"tuba": np.ones((1, 4), np.float32)}, pattern, 120.0, 1, SR)
    with pytest.raises(RequestError, match="channel"):
        arrange({"closed hat": np.ones((1, 4), np.float32), "open hat": np.ones((2, 4), np.float32)},
                pattern, 120.0, 1, SR)


def test_repitch_plays_a_note_higher_as_a_sampler_does() -> None:
    from loopbridge.engine.patterns import repitch

    rate = 8000
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 100 * t).astype(np.float32)[None]
    up = repitch(tone, 12.0)
    assert up.shape[1] == pytest.approx(rate / 2, abs=1)  # an octave up lasts half as long
    spectrum = np.abs(np.fft.rfft(up[0]))
    assert np.argmax(spectrum) * rate / up.shape[1] == pytest.approx(200.0, rel=0.01)
    assert repitch(tone, 0.0) is tone


def test_bass_line_is_one_note_at_a_time_on_its_grid() -> None:
    from loopbridge.engine.patterns import MELODIC_PATTERNS

    rate = 8000
    shot = np.ones((1, rate * 2), np.float32)  # a note that would ring past the next one
    loop = arrange({"bass": shot}, MELODIC_PATTERNS["bass"], 120.0, 1, rate, wrap_tails=False)
    # notes never overlap: a later note cuts the one ringing (with a short fade), so the level stays at one
    assert float(np.max(np.abs(loop))) <= 1.0 + 1e-6
    starts = [beat_to_sample(h.beat, 120.0, rate) for h in MELODIC_PATTERNS["bass"].hits]
    for start, hit in zip(starts, MELODIC_PATTERNS["bass"].hits, strict=True):
        assert loop[0, start + 1] == pytest.approx(hit.velocity, abs=1e-6)
