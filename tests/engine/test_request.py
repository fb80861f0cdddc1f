"""The typed request: every field checked at construction, errors naming value and range."""

from __future__ import annotations

import math

import numpy as np
import pytest
from loopbridge.engine import (
    AudioPrompt,
    AudioReadError,
    ConformSpec,
    GenerateRequest,
    Kind,
    RequestError,
    TooLargeError,
)

BAD_REQUESTS = [
    ({"tempo_bpm": 19.9}, r"tempo_bpm=19\.9.*20–999 BPM"),
    ({"tempo_bpm": 1000}, r"tempo_bpm=1000.*20–999 BPM"),
    ({"tempo_bpm": math.nan}, r"tempo_bpm=nan.*a number"),
    ({"tempo_bpm": "fast"}, r"tempo_bpm='fast'"),
    ({"duration_s": 0}, r"duration_s=0.*0\.05–600 s"),
    ({"duration_s": -1.0}, r"duration_s=-1\.0"),
    ({"duration_s": 601}, r"duration_s=601"),
    ({"bars": 0}, r"bars=0.*0\.25–64 bars"),
    ({"bars": 65}, r"bars=65"),
    ({"bars": 64, "tempo_bpm": 20}, r"bars=64.*at most 600 s at 20 BPM"),
    ({"bars": 1, "duration_s": 2.0}, r"either a duration in seconds or bars"),
    ({"seed": -1}, r"seed=-1.*0–4294967295"),
    ({"seed": 2**32}, r"seed=4294967296"),
    ({"seed": 1.5}, r"seed=1\.5.*whole number"),
    ({"seed": True}, r"seed=True"),
    ({"variation": -2}, r"variation=-2"),
    ({"steps": 0}, r"steps=0.*1–1000"),
    ({"guidance": 31.0}, r"guidance=31\.0.*0–30"),
    ({"audio_prompt_strength": 1.5}, r"audio_prompt_strength=1\.5.*0–1"),
    ({"morph_amount": -0.1}, r"morph_amount=-0\.1"),
    ({"kind": "drone"}, r"kind='drone'.*one-shot, loop, texture, kit"),
    ({"prompt": "x" * 501}, r"prompt='501 characters'.*at most 500"),
    ({"prompt": "kick\x00"}, r"prompt=.*control characters"),
    ({"prompt": 42}, r"prompt=42.*text"),
    ({"model": ""}, r"model=''.*model id"),
    ({"beats_per_bar": 0}, r"beats_per_bar=0.*1–16"),
    ({"start_s": -1.0}, r"start_s=-1\.0"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_REQUESTS)
def test_bad_values_name_the_field_value_and_range(fields: dict, message: str) -> None:
    with pytest.raises(RequestError, match=message) as info:
        GenerateRequest(**fields)
    assert info.value.field in fields


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tempo_bpm": 5}, r"tempo_bpm=5.*20–999"),
        ({"sample_rate": 4000}, r"sample_rate=4000.*8000–192000 Hz"),
        ({"pitch_semitones": 25}, r"pitch_semitones=25.*−24|pitch_semitones=25.*-24"),
        ({"bars": 0.1}, r"bars=0\.1"),
        ({"root_note": 128}, r"root_note=128.*0–127"),
    ],
)
def test_bad_conform_values(fields: dict, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        ConformSpec(**fields)


def test_kind_accepts_common_spellings() -> None:
    assert GenerateRequest(kind="oneshot").kind is Kind.ONE_SHOT
    assert GenerateRequest(kind="ONE_SHOT").kind is Kind.ONE_SHOT
    assert GenerateRequest(kind=Kind.LOOP).kind is Kind.LOOP


def test_durations_and_seeds() -> None:
    loop = GenerateRequest(kind="loop", bars=2, tempo_bpm=128)
    assert loop.render_duration_s == pytest.approx(3.75)
    assert GenerateRequest(kind="loop", tempo_bpm=120).render_duration_s == pytest.approx(2.0)  # one bar
    assert GenerateRequest().render_duration_s == 1.0
    assert GenerateRequest(seed=2**32 - 1, variation=2).effective_seed == 1


def test_render_key_covers_what_changes_the_audio_and_nothing_else() -> None:
    base = GenerateRequest(prompt="kick", seed=3)
    key = base.render_key("w")
    assert base.with_variation(1).render_key("w") != key
    assert base.replace(seed=4).render_key("w") == base.with_variation(1).render_key("w")
    assert base.render_key("other-weights") != key
    assert base.replace(steps=20).render_key("w") != key
    # a one-shot's tempo is a conform setting, not a render setting
    assert base.replace(tempo_bpm=90).render_key("w") == key
    loop = GenerateRequest(prompt="groove", kind="loop", bars=1, tempo_bpm=120)
    assert loop.replace(tempo_bpm=125).render_key("w") != loop.render_key("w")


def test_requests_are_immutable() -> None:
    request = GenerateRequest()
    with pytest.raises(AttributeError):
        request.seed = 3  # type: ignore[misc]


def test_audio_prompt_is_content_addressed_and_read_only() -> None:
    audio = np.zeros((2, 100), np.float32)
    a, b = AudioPrompt(audio, 44100), AudioPrompt(audio.copy(), 44100)
    assert a == b and hash(a) == hash(b)
    assert AudioPrompt(audio, 48000) != a
    with pytest.raises(ValueError):
        a.audio[0, 0] = 1.0
    with pytest.raises(RequestError, match="NaN"):
        AudioPrompt(np.full((1, 10), np.nan, np.float32), 44100)
    with pytest.raises(RequestError, match="empty"):
        AudioPrompt(np.zeros((1, 0), np.float32), 44100)
    with pytest.raises(RequestError, match=r"shape \(2, 2, 2\)"):
        AudioPrompt(np.zeros((2, 2, 2), np.float32), 44100)


def test_audio_prompt_from_bytes_audio_or_a_spectrogram_image() -> None:
    import io

    import soundfile as sf
    from PIL import Image

    wav = io.BytesIO()
    sf.write(wav, np.full((800, 2), 0.25, np.float32), 16000, format="WAV", subtype="FLOAT")
    prompt = AudioPrompt.from_bytes(wav.getvalue(), "audio prompt in frame 1")
    assert prompt.sample_rate == 16000 and prompt.audio.shape == (2, 800) and np.allclose(prompt.audio, 0.25)
    png = io.BytesIO()
    Image.fromarray(np.full((512, 8), 255, np.uint8)).save(png, format="PNG")  # a silent seed image
    image = AudioPrompt.from_bytes(memoryview(png.getvalue()))
    assert image.sample_rate == 44100 and image.audio.shape[0] == 1
    with pytest.raises(AudioReadError, match=r"^audio prompt in frame 2 is not readable audio "):
        AudioPrompt.from_bytes(b"RIFF0000WAVEjunk", "audio prompt in frame 2")
    with pytest.raises(RequestError, match="512 pixels high"):
        short = io.BytesIO()
        Image.fromarray(np.zeros((10, 8), np.uint8)).save(short, format="PNG")
        AudioPrompt.from_bytes(short.getvalue())
    # an over-long prompt is refused from its header, before its samples are decoded
    long = io.BytesIO()
    sf.write(long, np.zeros(8000 * 700, np.float32), 8000, format="FLAC")  # 700 s of silence: a few kB
    with pytest.raises(RequestError, match=r"^audio_prompt='700\.0 s of audio' is not accepted"):
        AudioPrompt.from_bytes(long.getvalue())


def test_an_audio_prompt_is_held_to_its_length_and_its_samples(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At most AUDIO_PROMPT_MAX_S, and at most AUDIO_PROMPT_MAX_SAMPLES (frames × channels: ten minutes of
    stereo at 48 kHz) however they are made of frames and channels; a file is refused from its header,
    before it is decoded."""
    import soundfile as sf
    from loopbridge.engine import request

    assert request.AUDIO_PROMPT_MAX_SAMPLES == 600 * 48000 * 2
    request.check_audio_prompt_size(600 * 48000, 2, 48000)
    request.check_audio_prompt_size(600 * 12000, 8, 12000)
    too_many = r"audio_prompt=.*8 channels at 192000 Hz.*at most 57600000 samples"
    with pytest.raises(TooLargeError, match=too_many) as caught:
        request.check_audio_prompt_size(60 * 192000, 8, 192000)
    assert caught.value.code == "too_large" and isinstance(caught.value, RequestError)
    with pytest.raises(RequestError, match=r"audio_prompt='600\.1 s of audio'.*at most 600 s"):
        request.check_audio_prompt_size(int(600.1 * 8000), 1, 8000)
    monkeypatch.setattr(request, "AUDIO_PROMPT_MAX_SAMPLES", 1000)
    with pytest.raises(TooLargeError, match="at most 1000 samples"):
        AudioPrompt(np.zeros((2, 501), np.float32), 44100)
    path = tmp_path / "long.flac"
    sf.write(path, np.zeros((600, 2), np.float32), 44100)
    monkeypatch.setattr("pedalboard.io.ReadableAudioFile.read", lambda *_: pytest.fail("decoded before the check"))
    with pytest.raises(TooLargeError):
        AudioPrompt.from_file(path)


def test_unreadable_audio_prompt_file(tmp_path) -> None:
    bogus = tmp_path / "prompt.wav"
    bogus.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioReadError, match=r"^audio prompt '.*prompt\.wav' cannot be read as audio: "):
        AudioPrompt.from_file(bogus)
    with pytest.raises(AudioReadError, match=r"^audio prompt '.*missing\.wav' is not a readable file$"):
        AudioPrompt.from_file(tmp_path / "missing.wav")
    with pytest.raises(AudioReadError, match=r"^audio prompt '.*missing\.png' is not a readable file$"):
        AudioPrompt.from_file(tmp_path / "missing.png")
