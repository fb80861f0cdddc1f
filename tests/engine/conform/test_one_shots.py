"""One-shots: tidied, never stretched; pitch shift and resampling keep the right pitch."""

from __future__ import annotations

import numpy as np
import pytest
from loopbridge.engine import ConformSpec, Kind, RequestError
from loopbridge.engine.conform import SourceInfo, conform_audio

from .signals import dominant_frequency, kick, tone, true_peak_dbtp

RATE = 48000
PEAK = 10 ** (-1 / 20)


def _messy_kick(rate: int = RATE) -> tuple[np.ndarray, int]:
    """A kick after 0.2 s of near-silence, quiet (peak 0.3), on a DC offset of 0.1, with 0.3 s of
    silence after it. Returns the audio and where the kick starts."""
    lead = int(0.2 * rate)
    hit = 0.3 * kick(rate)
    mono = np.concatenate([np.zeros(lead), hit, np.zeros(int(0.3 * rate))])
    mono[:lead] += 1e-6 * np.random.default_rng(1).standard_normal(lead)  # a noise floor, -120 dB
    return np.stack([mono, mono]).astype(np.float32) + np.float32(0.1), lead


def test_one_shot_is_tidied() -> None:
    audio, lead = _messy_kick()
    conformed = conform_audio(audio, RATE, Kind.ONE_SHOT, ConformSpec(tempo_bpm=128.0, sample_rate=RATE))
    out = conformed.audio
    assert conformed.kind is Kind.ONE_SHOT
    assert conformed.loop_start is None and conformed.loop_end is None
    # leading silence gone: the attack starts within a millisecond and a half of the first sample
    assert conformed.info["trimmed_start_s"] == pytest.approx(lead / RATE, abs=0.0015)
    assert np.argmax(np.abs(out[0]) > 0.01) < int(0.0015 * RATE)
    # DC removed, the true peak brought to just under -1 dBTP, the ends at zero (no click at note-on
    # or at the end)
    assert abs(float(out.mean())) < 0.005
    assert -1.05 < true_peak_dbtp(out) <= -1.0
    assert float(np.abs(out).max()) <= PEAK
    assert abs(float(out[0, 0])) < 0.01 and abs(float(out[0, -1])) < 1e-3
    # the silent tail is cut (kick: 0.3 s; a little kept after it falls below -60 dB)
    assert out.shape[1] < int(0.32 * RATE)
    assert conformed.info["dc_offset"][0] == pytest.approx(0.1, abs=0.01)


def test_one_shot_is_never_stretched() -> None:
    audio, _ = _messy_kick()
    slow = conform_audio(audio, RATE, Kind.ONE_SHOT, ConformSpec(tempo_bpm=60.0, bars=4, sample_rate=RATE))
    fast = conform_audio(audio, RATE, Kind.ONE_SHOT, ConformSpec(tempo_bpm=180.0, bars=1, sample_rate=RATE))
    np.testing.assert_array_equal(slow.audio, fast.audio)
    assert slow.tempo_bpm == 60.0 and fast.tempo_bpm == 180.0
    assert slow.beats == pytest.approx(slow.duration_s)  # length in beats at 60 BPM
    # the kick keeps its own time course: past the fade-in and before the tail fade, the output is
    # the input scaled and shifted (gain and DC), sample for sample
    start = int(round(slow.info["trimmed_start_s"] * RATE))
    middle = slice(int(0.005 * RATE), int(0.2 * RATE))
    source = audio[0, start : start + slow.audio.shape[1]][middle].astype(np.float64)
    design = np.stack([source, np.ones_like(source)], axis=1)
    (gain, offset), *_ = np.linalg.lstsq(design, slow.audio[0, middle], rcond=None)
    residual = slow.audio[0, middle] - (gain * source + offset)
    assert float(np.sqrt(np.mean(residual**2))) < 1e-5
    assert gain == pytest.approx(PEAK / 0.3 / kick(RATE).max(), rel=0.01)


def test_kit_part_is_conformed_as_a_one_shot() -> None:
    audio, _ = _messy_kick()
    conformed = conform_audio(audio, RATE, Kind.KIT, ConformSpec(sample_rate=RATE))
    assert conformed.kind is Kind.ONE_SHOT
    assert conformed.loop_start is None


def test_pitch_shift_moves_the_tone_and_the_root_note() -> None:
    audio = tone(RATE, 440.0, 1.0)
    spec = ConformSpec(tempo_bpm=120.0, pitch_semitones=7.0, sample_rate=RATE)
    conformed = conform_audio(audio, RATE, Kind.ONE_SHOT, spec, SourceInfo(root_note=69))
    assert dominant_frequency(conformed.audio, RATE) == pytest.approx(440.0 * 2 ** (7 / 12), rel=1e-3)
    assert conformed.root_note == 76
    down = conform_audio(audio, RATE, Kind.ONE_SHOT, spec.replace(pitch_semitones=-12.0), SourceInfo(root_note=69))
    assert dominant_frequency(down.audio, RATE) == pytest.approx(220.0, rel=1e-3)
    assert down.root_note == 57
    # a root note in the spec overrides the model's; a fractional shift is recorded in cents
    half = conform_audio(audio, RATE, Kind.ONE_SHOT, spec.replace(pitch_semitones=0.5, root_note=60))
    assert half.root_note == 60
    assert half.info["root_note_cents"] == pytest.approx(50.0)
    assert half.info["pitch_fraction"] == 2**31
    assert dominant_frequency(half.audio, RATE) == pytest.approx(440.0 * 2 ** (0.5 / 12), rel=1e-3)


@pytest.mark.parametrize(("source_rate", "target_rate"), [(44100, 48000), (48000, 44100), (16000, 48000)])
def test_resampling_keeps_the_frequency(source_rate: int, target_rate: int) -> None:
    freq = 1000.0 if source_rate > 16000 else 3000.0
    conformed = conform_audio(
        tone(source_rate, freq, 0.5), source_rate, Kind.ONE_SHOT, ConformSpec(sample_rate=target_rate)
    )
    assert conformed.sample_rate == target_rate
    assert conformed.info["resampled_from"] == source_rate
    assert dominant_frequency(conformed.audio, target_rate) == pytest.approx(freq, rel=2e-4)
    # length in seconds kept (a tone has no silence to trim)
    assert conformed.duration_s == pytest.approx(0.5, abs=0.002)


def test_silent_one_shot_is_refused() -> None:
    with pytest.raises(RequestError) as caught:
        conform_audio(np.zeros((2, RATE), np.float32), RATE, Kind.ONE_SHOT, ConformSpec(sample_rate=RATE))
    assert caught.value.field == "audio"
    assert "silence" in str(caught.value)
