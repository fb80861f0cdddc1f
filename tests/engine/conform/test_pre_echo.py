"""The pre-echo a stretch smears ahead of a note, lowered band by band (:func:`~.alignment.limit_pre_echo`)."""

from __future__ import annotations

import numpy as np
from loopbridge.engine.conform.alignment import PRE_ECHO_BLOCK_S, band_levels, bands, limit_pre_echo

RATE = 44100


def _tone(hz: float, seconds: float, start_s: float = 0.0, level: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * hz * t) * (t >= start_s)).astype(np.float32)


def test_the_bands_sum_to_the_audio_and_follow_a_pitch_shift() -> None:
    audio = np.stack([_tone(1000.0, 0.5), _tone(150.0, 0.5)])
    assert np.allclose(sum(bands(audio, RATE)), audio, atol=1e-5)
    # a 1 kHz tone moved up an octave by a shift is measured in the band a 2 kHz tone sits in
    def loudest_band(hz: float, scale: float) -> int:
        levels = band_levels(_tone(hz, 0.5)[None, :], RATE, 441, scale)
        return int(np.argmax(levels.max(axis=1)))

    assert loudest_band(1000.0, 2.0) == loudest_band(2000.0, 1.0) != loudest_band(1000.0, 1.0)


def test_a_smear_under_a_ringing_note_is_lowered_in_its_own_band_only() -> None:
    # the source: a note ringing at 440 Hz, a new note at 2 kHz starting at 0.3 s; the "stretched" stream:
    # the same with the new note's partial smeared 15 ms ahead of it at -20 dB, far under the ringing
    # note's level (a broadband limit sees nothing), far over what its own band held before the note
    ringing = _tone(440.0, 0.6)
    new_note = _tone(2000.0, 0.6, start_s=0.3, level=0.5)
    source = (ringing + new_note)[None, :]
    smear = _tone(2000.0, 0.6, start_s=0.285, level=0.05) * (np.arange(ringing.size) < int(0.3 * RATE))
    stream = source + smear[None, :]
    block = int(round(PRE_ECHO_BLOCK_S * RATE))
    lowered = limit_pre_echo(stream, band_levels(source, RATE, block), block, loop_start=0.0, factor=1.0,
                             pre_frames=0, sample_rate=RATE)
    assert lowered > 0
    ahead = slice(int(0.287 * RATE), int(0.297 * RATE))
    left = stream[0, ahead] - source[0, ahead]
    assert np.sqrt(np.mean(left**2)) < 0.3 * np.sqrt(np.mean(smear[ahead] ** 2)), "the smear is lowered"
    # the ringing note and the new one are kept
    steady = slice(int(0.1 * RATE), int(0.25 * RATE))
    assert np.allclose(stream[0, steady], source[0, steady], atol=0.02)
    after = slice(int(0.32 * RATE), int(0.5 * RATE))
    assert np.allclose(stream[0, after], source[0, after], atol=0.02)
