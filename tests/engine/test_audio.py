"""The audio module: arrays checked, files read, channels and lengths fitted; it depends on no other
engine module but the errors, so the request types and the Riffusion codec can both use it."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopbridge.engine import AudioReadError, RequestError
from loopbridge.engine.audio import (
    as_audio_array,
    fit_length,
    match_channels,
    read_audio_file,
    resample,
    resample_by,
)

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def _engine_imports(path: Path) -> set[str]:
    """The engine modules ``path`` imports (relative imports, resolved to dotted names under engine/)."""
    package = list(path.relative_to(ENGINE).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            found.add(".".join([*base, *(node.module or "").split(".")]).strip("."))
    return found


def test_the_audio_module_needs_only_the_errors() -> None:
    assert _engine_imports(ENGINE / "audio.py") == {"errors"}


def test_the_riffusion_codec_does_not_import_the_request_types() -> None:
    # request.py reads seed images through the codec; the codec importing request.py back was a cycle
    imports = _engine_imports(ENGINE / "models" / "riffusion" / "codec.py")
    assert "request" not in imports
    assert "audio" in imports


def test_as_audio_array_takes_mono_and_channels() -> None:
    mono = as_audio_array([0.0, 0.5, -0.5])
    assert mono.shape == (1, 3) and mono.dtype == np.float32 and mono.flags.c_contiguous
    stereo = as_audio_array(np.zeros((2, 4), np.float64)[:, ::2])
    assert stereo.shape == (2, 2) and stereo.dtype == np.float32 and stereo.flags.c_contiguous


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        ("loud", r"prompt='str'.*float audio shaped \[channels, samples\]"),
        ([[0.0, 1.0], [0.0]], r"prompt='list'"),
        (np.zeros((9, 4)), r"shape \(9, 4\).*\[channels \(1–8\), samples\]"),
        (np.zeros((2, 2, 2)), r"shape \(2, 2, 2\)"),
        (np.zeros((2, 0)), r"empty audio.*at least one sample"),
        (np.array([0.0, np.inf]), r"NaN or infinite.*finite samples"),
    ],
)
def test_as_audio_array_names_what_is_wrong(audio: object, message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        as_audio_array(audio, "prompt")
    assert caught.value.field == "prompt"


def test_read_audio_file(tmp_path: Path) -> None:
    path = tmp_path / "stereo.flac"
    written = np.stack([np.linspace(-0.5, 0.5, 441), np.zeros(441)]).astype(np.float32)
    sf.write(str(path), written.T, 44100)
    audio, rate = read_audio_file(path)
    assert rate == 44100 and audio.shape == (2, 441) and audio.dtype == np.float32
    np.testing.assert_allclose(audio, written, atol=1e-4)


def test_read_audio_file_errors_name_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AudioReadError, match=r"^audio file '.*missing\.wav' is not a readable file$"):
        read_audio_file(tmp_path / "missing.wav")
    with pytest.raises(AudioReadError, match=r"is not a readable file"):
        read_audio_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("junk.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioReadError, match=r"^take 'junk\.wav' cannot be read as audio: "):
        read_audio_file("junk.wav", "take")


def test_fit_length_cuts_or_pads_at_the_end() -> None:
    audio = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(fit_length(audio, 2), [[0, 1], [3, 4]])
    np.testing.assert_array_equal(fit_length(audio, 4), [[0, 1, 2, 0], [3, 4, 5, 0]])
    assert fit_length(audio, 4).dtype == np.float32


def test_match_channels() -> None:
    stereo = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    np.testing.assert_array_equal(match_channels(stereo, 1), [[0.5, 0.5]])
    assert match_channels(stereo[:1], 2).shape == (2, 2)
    assert match_channels(stereo, 3).shape == (3, 2)
    assert match_channels(stereo, 2) is stereo


RATES = (16000, 44100, 48000, 96000)
RATE_PAIRS = [(a, b) for a in RATES for b in RATES if a != b]


@pytest.mark.parametrize(("source_rate", "target_rate"), RATE_PAIRS)
@pytest.mark.parametrize("frames", [1, 2, 17, 4410, 48001])
def test_resample_gives_exactly_the_rounded_length(source_rate: int, target_rate: int, frames: int) -> None:
    audio = np.random.default_rng(frames).uniform(-0.5, 0.5, (2, frames)).astype(np.float32)
    out = resample(audio, source_rate, target_rate)
    assert out.shape == (2, round(frames * target_rate / source_rate))
    assert out.dtype == np.float32 and out.flags.c_contiguous


@pytest.mark.parametrize(("source_rate", "target_rate"), RATE_PAIRS)
def test_resample_keeps_time_at_both_ends(source_rate: int, target_rate: int) -> None:
    # short pulses near the start, in the middle and near the end come out where they went in, whole:
    # the resampler's own delay is removed and its tail flushed (conformed loops rely on both)
    frames = int(0.25 * source_rate)
    t = np.arange(frames) / source_rate
    for centre_s in (0.002, 0.125, frames / source_rate - 0.002):
        pulse = np.exp(-0.5 * ((t - centre_s) / 0.0003) ** 2).astype(np.float32)
        out = resample(np.stack([pulse, -pulse]), source_rate, target_rate).astype(np.float64)
        energy = out[0] ** 2
        centre = float((np.arange(out.shape[1]) * energy).sum() / energy.sum())
        assert centre == pytest.approx(centre_s * target_rate, abs=0.01)
        assert energy.sum() / target_rate == pytest.approx((pulse.astype(np.float64) ** 2).sum() / source_rate,
                                                           rel=1e-3)
        np.testing.assert_array_equal(out[1], -out[0])


@pytest.mark.parametrize(("source_rate", "target_rate"), [(16000, 48000), (48000, 44100), (96000, 16000)])
def test_resample_passes_the_band_and_stops_aliases(source_rate: int, target_rate: int) -> None:
    t = np.arange(source_rate // 2) / source_rate
    low = min(source_rate, target_rate)
    for freq in (0.05 * low, 0.45 * low):  # the passband: kept at its level
        out = resample(np.sin(2 * np.pi * freq * t)[None], source_rate, target_rate)[0]
        middle = out[out.size // 4 : 3 * out.size // 4]
        assert np.sqrt(2 * np.mean(middle.astype(np.float64) ** 2)) == pytest.approx(1.0, abs=2e-3)
    if target_rate < source_rate:  # between the two Nyquist frequencies: nothing comes out
        freq = (target_rate + source_rate) / 4
        out = resample(np.sin(2 * np.pi * freq * t)[None], source_rate, target_rate)[0]
        assert np.max(np.abs(out[out.size // 4 : 3 * out.size // 4])) < 1e-5


def test_resample_at_the_same_rate_and_bad_rates() -> None:
    audio = np.ones((1, 10), np.float64)
    same = resample(audio, 44100, 44100)
    assert same.dtype == np.float32 and same.shape == (1, 10)
    for rates, field in [((0, 48000), "source_rate"), ((44100, -1), "target_rate"), ((44100.0, 48000), "source_rate"),
                         ((True, 48000), "source_rate")]:
        with pytest.raises(RequestError) as caught:
            resample(audio, *rates)  # type: ignore[arg-type]
        assert caught.value.field == field


@pytest.mark.parametrize("semitones", [-7, -1, 1, 5, 12])
def test_resample_by_moves_the_pitch_shortens_by_the_ratio_and_keeps_time(semitones: int) -> None:
    # a tone comes out at ratio times its frequency and its level, round(frames / ratio) long; a pulse
    # at input frame k comes out at k / ratio (no delay: the stretcher's timing is measured around it)
    ratio = 2.0 ** (semitones / 12)
    rate, frames = 48000, 48000
    t = np.arange(frames) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    out = resample_by(np.stack([tone, -tone]), ratio)
    assert out.shape == (2, round(frames / ratio)) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1], -out[0])
    middle = out[0, out.shape[1] // 4 : 3 * out.shape[1] // 4].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size), 8 * middle.size))
    assert np.argmax(spectrum) * rate / (8 * middle.size) == pytest.approx(440.0 * ratio, rel=1e-4)
    assert np.sqrt(2 * np.mean(middle**2)) == pytest.approx(0.5, abs=2e-3)
    for centre_s in (0.01, 0.5, 0.98):
        pulse = np.exp(-0.5 * ((t - centre_s) / 0.0005) ** 2).astype(np.float32)
        energy = resample_by(pulse[None], ratio)[0].astype(np.float64) ** 2
        centre = float((np.arange(energy.size) * energy).sum() / energy.sum())
        assert centre == pytest.approx(centre_s * rate / ratio, abs=0.05)


def test_resample_by_one_and_bad_ratios() -> None:
    audio = np.ones((1, 10), np.float64)
    same = resample_by(audio, 1.0)
    assert same.dtype == np.float32 and same.shape == (1, 10)
    for ratio in (0.2, 4.5, 0.0, -1.0, float("nan"), True, "2"):
        with pytest.raises(RequestError) as caught:
            resample_by(audio, ratio)  # type: ignore[arg-type]
        assert caught.value.field == "ratio" and "0.25 to 4" in str(caught.value)


@pytest.mark.parametrize("channels", [2, 3])
def test_resample_a_channel_at_a_time_gives_soxrs_interleaved_samples(channels: int) -> None:
    """Each channel is resampled on its own into the result: the very samples of soxr's call on
    the interleaved channels (which needed interleaved copies of the input and the output)."""
    import soxr
    from loopbridge.engine.audio import RESAMPLE_QUALITY

    rng = np.random.default_rng(channels)
    audio = (rng.standard_normal((channels, 44100)) * 0.3).astype(np.float32)
    interleaved = soxr.resample(np.ascontiguousarray(audio.T), 44100, 96000, quality=RESAMPLE_QUALITY).T
    assert np.array_equal(resample(audio, 44100, 96000), fit_length(np.ascontiguousarray(interleaved), 96000))
