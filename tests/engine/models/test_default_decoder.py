"""The default model's decoder (``spectral.invert``) on recorded drums and on exact spectrograms.

Recorded drums from Debian's ``hydrogen-drumkits`` are encoded to the model's log-mel and decoded:
the ElectricEmpireKit's kicks (electronic kicks, like those the model makes) must keep their
recordings' attack, and The Black Pearl's toms (ringing acoustic toms) their steady decay.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from loopbridge.engine.audio import resample
from loopbridge.engine.models.default import spectral
from loopbridge.engine.models.default.pghi import pghi_phase

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
needs_kits = pytest.mark.skipif(not DRUMKITS.is_dir(), reason="hydrogen-drumkits is not installed")
SR = spectral.SAMPLE_RATE


def _recorded(kit: str, pattern: str) -> np.ndarray:
    """``[n, NATIVE_SAMPLES]``: the kit's files matching ``pattern``, mono, 44.1 kHz, from their
    onset (-40 dB of the peak), peak 0.9."""
    shots = []
    for path in sorted((DRUMKITS / kit).glob(pattern)):
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        mono = resample(data.mean(axis=1)[None], rate, SR)[0] if rate != SR else data.mean(axis=1)
        peak = float(np.abs(mono).max())
        mono = mono[int(np.argmax(np.abs(mono) >= 0.01 * peak)):][: spectral.NATIVE_SAMPLES]
        shots.append(np.pad(mono, (0, spectral.NATIVE_SAMPLES - mono.size)) / peak * 0.9)
    return np.stack(shots).astype(np.float32)


def _attack_db(audio: np.ndarray) -> np.ndarray:
    """RMS level of the first 30 ms minus that from 0.1 s to 0.2 s (eval-default's attack)."""
    def rms_db(start: float, end: float) -> np.ndarray:
        piece = audio[:, int(start * SR):int(end * SR)].astype(np.float64)
        return 10 * np.log10(np.mean(piece ** 2, axis=1) + 1e-12)
    return rms_db(0.0, 0.03) - rms_db(0.1, 0.2)


def _jitter_db(audio: np.ndarray) -> np.ndarray:
    """Median frame-to-frame loudness change from 58 ms to 0.7 s (eval-default's jitter)."""
    db = spectral.unit_to_db(spectral.log_mel(audio)).numpy().astype(np.float64)
    loudness = 10 * np.log10(np.sum(10 ** (db / 10), axis=1))
    return np.median(np.abs(np.diff(loudness[:, 5:60], axis=1)), axis=1)


@needs_kits
def test_decoded_recorded_kicks_keep_their_attack() -> None:
    kicks = _recorded("ElectricEmpireKit", "EE_Kick_*.flac")
    assert len(kicks) == 12
    decoded = spectral.invert(spectral.log_mel(kicks)).numpy()
    error = np.abs(_attack_db(decoded) - _attack_db(kicks))
    # the decoder this replaced (32 fast Griffin-Lim iterations from a random phase, bands
    # interpolated onto the bins) missed the recordings' attack by 1.51 dB in the median kick and
    # 2.93 dB at most (random start of seed 0; 1.67 and 3.99 with seed 1); this one by 0.89 and 2.38
    assert np.median(error) < 1.5, error
    assert np.max(error) < 2.75, error


@needs_kits
def test_decoded_recorded_toms_decay_without_flicker() -> None:
    toms = _recorded("The Black Pearl 1.0", "PearlTom*.wav")
    assert len(toms) == 15
    decoded = spectral.invert(spectral.log_mel(toms)).numpy()
    # the issue's target for flicker: loudness jitter at most 1.2x the recordings' own. Recorded
    # 0.31 dB in the median tom; decoded 0.33, and 0.85 (2.7x) by the decoder this replaced
    ratio = np.median(_jitter_db(decoded)) / np.median(_jitter_db(toms))
    assert ratio < 1.2, ratio


def test_pghi_puts_a_click_back_where_it_was() -> None:
    # from the exact STFT magnitude of one click, the integrated phase alone (no iterations) gives
    # the click back in its place and not smeared: the phase a transient needs. A random phase
    # spreads the same magnitude over the whole window.
    audio = np.zeros((1, spectral.NATIVE_SAMPLES), dtype=np.float32)
    audio[0, 20_000] = 1.0
    magnitude = spectral.stft(torch.from_numpy(audio)).abs()
    rebuilt = spectral.griffin_lim(magnitude, audio.shape[1], iterations=0,
                                   phase=torch.from_numpy(pghi_phase(magnitude[0].numpy(), spectral.N_FFT,
                                                                     spectral.HOP))[None].float())[0].numpy()
    energy = rebuilt.astype(np.float64) ** 2
    assert abs(int(np.argmax(np.abs(rebuilt))) - 20_000) <= 2
    near = energy[20_000 - 220:20_000 + 221].sum() / energy.sum()  # within 5 ms
    random_start = spectral.griffin_lim(magnitude, audio.shape[1], iterations=0,
                                        generator=torch.Generator().manual_seed(0))[0].numpy().astype(np.float64)
    near_random = (random_start[20_000 - 220:20_000 + 221] ** 2).sum() / (random_start ** 2).sum()
    assert near > 0.9 and near_random < 0.5, (near, near_random)


def test_the_decoder_is_deterministic_and_checks_its_settings() -> None:
    t = np.arange(spectral.NATIVE_SAMPLES) / SR
    tone = (np.sin(2 * np.pi * 220 * t) * np.exp(-t / 0.2)).astype(np.float32)
    mel = spectral.log_mel(tone)
    first = spectral.invert(mel, generator=torch.Generator().manual_seed(1))
    again = spectral.invert(mel, generator=torch.Generator().manual_seed(2))
    assert torch.equal(first, again)  # the phase comes from the spectrogram, not from a seed
    # its bands match the spectrogram's within about 1 dB on average
    assert (spectral.log_mel(first) - mel).abs().mean().item() < 0.03
    # the replaced decoder remains reachable, and repeatable for a seed
    old = [spectral.invert(mel, 32, torch.Generator().manual_seed(3), start="random", sharpen=0) for _ in range(2)]
    assert torch.equal(old[0], old[1])
    with pytest.raises(ValueError, match=r"start='zero'.*pghi, random"):
        spectral.invert(mel, start="zero")
    with pytest.raises(ValueError, match="sharpen=-1"):
        spectral.invert(mel, sharpen=-1)


def test_the_decoder_keeps_its_spectrogram_s_loudness_course() -> None:
    # a sampled spectrogram is seldom one that any signal has: here a decaying tone's, with every band
    # of every frame moved by a random 3 dB. Griffin-Lim's audio misses its frame loudness by about
    # 0.9 dB on average; the loudness rounds bring each frame back towards the spectrogram's
    t = np.arange(spectral.NATIVE_SAMPLES) / SR
    rng = np.random.default_rng(0)
    tone = (np.sin(2 * np.pi * 110 * t) + 0.3 * np.sin(2 * np.pi * 330 * t)
            + 0.05 * rng.standard_normal(t.size)) * np.exp(-t / 0.25)
    mel = spectral.log_mel(tone.astype(np.float32))
    moved = spectral.db_to_unit(spectral.unit_to_db(mel)
                                + 3.0 * torch.randn(mel.shape, generator=torch.Generator().manual_seed(0)))

    def course(spec: torch.Tensor) -> np.ndarray:
        return spectral.frame_loudness_db(spectral.unit_to_db(spec)).numpy()[0]

    def miss(spec: torch.Tensor, rounds: int) -> float:
        decoded = spectral.invert(spec, loudness_rounds=rounds)  # 0: the decoder unless asked
        return float(np.abs(course(spectral.log_mel(decoded)) - course(spec))[3:80].mean())

    unmatched, matched = miss(moved, 0), miss(moved, spectral.LOUDNESS_ROUNDS)
    assert unmatched > 0.6 and matched < 0.7 * unmatched, (unmatched, matched)
    # a spectrogram a signal has is decoded closer still, and the rounds do not move it away
    assert miss(mel, spectral.LOUDNESS_ROUNDS) < min(0.03, miss(mel, 0))
    with pytest.raises(ValueError, match="loudness_rounds=-1"):
        spectral.invert(mel, loudness_rounds=-1)
