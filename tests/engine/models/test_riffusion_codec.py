"""The spectrogram-image codec: Riffusion's published format, and audio → image → audio quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from loopbridge.engine.errors import RequestError
from loopbridge.engine.models.riffusion.codec import (
    SpectrogramImage,
    SpectrogramImageCodec,
    SpectrogramParams,
    hz_to_mel_htk,
    spectral_convergence,
)

torch.set_num_threads(2)
RATE = 44100
#: spectral convergence (mel magnitudes, 0–10 kHz) after audio → 8-bit image → audio with the published
#: 32 Griffin-Lim iterations; measured 0.06–0.10 on these signals
SC_BOUND = 0.15


@pytest.fixture(scope="module")
def codec() -> SpectrogramImageCodec:
    return SpectrogramImageCodec()


def _tone(hz: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None, :]


def test_published_parameters() -> None:
    p = SpectrogramParams()
    assert (p.sample_rate, p.n_mels, p.f_min_hz, p.f_max_hz, p.power) == (44100, 512, 0.0, 10000.0, 0.25)
    assert (p.hop_length, p.win_length, p.n_fft) == (441, 4410, 17640)  # 10 ms, 100 ms, 400 ms
    assert hz_to_mel_htk(1000.0) == pytest.approx(1000.0, abs=0.1)  # HTK's anchor: 1 kHz is 1000 mel


def test_five_seconds_make_a_512_by_512_image_with_the_tone_on_its_row(codec: SpectrogramImageCodec) -> None:
    image = codec.encode(_tone(1000.0, 5.12))
    assert image.pixels.shape == (512, 512) and image.pixels.dtype == np.uint8
    row_profile = image.pixels.mean(axis=1)
    darkest = int(np.argmin(row_profile))
    assert abs(darkest - codec.params.row_of_hz(1000.0)) <= 1
    # loud is dark, silence is white; low frequencies sit at the bottom
    assert row_profile[darkest] < 10 and np.median(row_profile) > 200
    low = int(np.argmin(codec.encode(_tone(200.0, 0.64)).pixels.mean(axis=1)))
    high = int(np.argmin(codec.encode(_tone(5000.0, 0.64)).pixels.mean(axis=1)))
    assert low > high


def test_magnitude_is_power_compressed(codec: SpectrogramImageCodec) -> None:
    audio = _tone(500.0, 0.64, 0.4) + _tone(4000.0, 0.64, 0.05)
    image = codec.encode(audio)
    mel = codec.mel_spectrogram(audio)
    expected = 255 - np.round(255 * (mel / mel.max()) ** 0.25)
    np.testing.assert_allclose(image.pixels.astype(float), expected[::-1], atol=1)
    # the quiet tone is 18 dB down, yet the 4th root keeps it well visible: darker than a quarter grey
    quiet_row = image.pixels[codec.params.row_of_hz(4000.0) - 2 : codec.params.row_of_hz(4000.0) + 3]
    assert quiet_row.min() < 255 * 0.75
    # the image is relative to its own peak: a louder copy gives the same picture
    np.testing.assert_array_equal(codec.encode(audio * 2).pixels, image.pixels)


@pytest.mark.parametrize("signal", ["chord", "chirp", "bursts"])
def test_round_trip_keeps_spectral_convergence_within_bound(codec: SpectrogramImageCodec, signal: str) -> None:
    seconds = 0.64
    t = np.arange(int(seconds * RATE)) / RATE
    if signal == "chord":
        audio = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 1000.0, 3000.0))
    elif signal == "chirp":
        audio = 0.5 * np.sin(2 * np.pi * (100 * t + (8000 - 100) / (2 * seconds) * t**2))
    else:
        from scipy.signal import butter, sosfilt

        noise = sosfilt(butter(8, 8000, fs=RATE, output="sos"), np.random.default_rng(0).standard_normal(t.size))
        audio = 0.3 * noise * np.exp(-(t % 0.16) / 0.03)
    audio = np.asarray(audio, dtype=np.float32)[None, :]
    decoded = codec.decode(codec.encode(audio), seed=3)
    assert decoded.shape == (1, 64 * 441)
    assert spectral_convergence(audio, decoded, codec) < SC_BOUND


def test_decoding_is_seeded_and_batch_independent(codec: SpectrogramImageCodec) -> None:
    quick = SpectrogramImageCodec(SpectrogramParams(griffin_lim_iters=4))
    first = quick.encode(_tone(440.0, 0.32))
    second = quick.encode(_tone(880.0, 0.32))
    batch = quick.decode_batch([first, second], [7, 8])
    np.testing.assert_allclose(batch[1], quick.decode(second, seed=8), atol=1e-5)
    assert not np.allclose(quick.decode(first, seed=1), quick.decode(first, seed=2))


def test_bad_images_and_audio_are_refused(codec: SpectrogramImageCodec) -> None:
    with pytest.raises(RequestError, match=r"\[512, frames\]"):
        codec.decode(SpectrogramImage(np.zeros((256, 64), dtype=np.uint8)))
    with pytest.raises(RequestError, match="one width"):
        codec.decode_batch([SpectrogramImage(np.zeros((512, 8), np.uint8)),
                            SpectrogramImage(np.zeros((512, 16), np.uint8))], [0, 1])
    with pytest.raises(RequestError, match="at least"):
        codec.encode(np.zeros((1, 100), dtype=np.float32))
    silent = codec.encode(np.zeros((1, 4410), dtype=np.float32))
    assert np.all(silent.pixels == 255)
    with pytest.raises(RequestError):
        SpectrogramParams(f_max_hz=30000.0)


def test_a_spectrogram_image_file_is_an_audio_prompt(codec: SpectrogramImageCodec, tmp_path: Path) -> None:
    from loopbridge.engine.request import AudioPrompt
    from PIL import Image

    image = codec.encode(_tone(880.0, 2.0))
    Image.fromarray(image.pixels).convert("RGB").save(tmp_path / "seed.png")
    prompt = AudioPrompt.from_file(tmp_path / "seed.png")
    assert prompt.sample_rate == RATE and prompt.audio.shape[1] == codec.params.samples_for(image.width)
    again = codec.encode(prompt.audio)
    # the image the seed decodes to encodes back to nearly the same pixels (what Riffusion starts from)
    assert np.mean(np.abs(again.pixels.astype(float) - image.pixels.astype(float))) < 6.0
    assert codec.params.row_of_hz(880.0) in np.argsort(again.pixels.mean(axis=1))[:5]  # loud = dark
    Image.fromarray(image.pixels[:100]).save(tmp_path / "short.png")
    with pytest.raises(RequestError, match="512 pixels high"):
        AudioPrompt.from_file(tmp_path / "short.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(RequestError, match="readable spectrogram image"):
        AudioPrompt.from_file(tmp_path / "bad.png")
