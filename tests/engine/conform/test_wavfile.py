"""The WAV writer: 24-bit PCM with acid and smpl chunks, read back by libsndfile and by our parser."""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
from loopbridge.engine import AudioReadError, ConformSpec, Kind
from loopbridge.engine.conform import (
    ConformedAudio,
    SourceInfo,
    conform_audio,
    encode_wav,
    read_wav_tags,
)

from .signals import click_track


@pytest.fixture(scope="module")
def loop() -> ConformedAudio:
    spec = ConformSpec(tempo_bpm=126.5, bars=2, beats_per_bar=4, sample_rate=48000)
    return conform_audio(
        click_track(44100, 100.0, 8), 44100, Kind.LOOP, spec, SourceInfo(tempo_bpm=100.0, root_note=38)
    )


def _sndfile_info(path: Path) -> str:
    tool = shutil.which("sndfile-info")
    if tool is None:
        pytest.skip("sndfile-info (Debian package sndfile-programs) is not installed")
    return subprocess.run([tool, str(path)], capture_output=True, text=True, check=True, timeout=30).stdout


def test_loop_tags_read_back_by_our_parser(loop: ConformedAudio) -> None:
    data = encode_wav(loop)
    tags = read_wav_tags(data)
    assert tags.chunks == ("fmt ", "acid", "smpl", "data")
    assert (tags.sample_rate, tags.channels, tags.bits_per_sample, tags.format_tag) == (48000, 2, 24, 1)
    assert tags.frames == loop.audio.shape[1] == round(8 * 60 / 126.5 * 48000)
    assert tags.acid is not None and tags.smpl is not None
    assert not tags.acid.one_shot and tags.acid.root_note_set and tags.acid.stretch
    assert (tags.acid.root_note, tags.acid.beats, tags.acid.meter_numerator, tags.acid.meter_denominator) == (
        38,
        8,
        4,
        4,
    )
    assert tags.acid.tempo_bpm == pytest.approx(126.5)
    assert tags.smpl.unity_note == 38
    assert tags.smpl.sample_period_ns == 20833
    assert len(tags.smpl.loops) == 1
    assert (tags.smpl.loops[0].start, tags.smpl.loops[0].end, tags.smpl.loops[0].loop_type) == (
        0,
        loop.audio.shape[1] - 1,
        0,
    )


def test_soundfile_reads_24_bit_pcm_at_the_target_rate(loop: ConformedAudio, tmp_path: Path) -> None:
    path = tmp_path / "loop.wav"
    path.write_bytes(encode_wav(loop))
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.frames, info.subtype, info.format) == (
        48000,
        2,
        loop.audio.shape[1],
        "PCM_24",
        "WAV",
    )
    audio, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    assert rate == 48000
    np.testing.assert_allclose(audio.T, loop.audio, atol=1.0 / 2**23)


def test_sndfile_info_finds_tempo_beats_root_and_loop(loop: ConformedAudio, tmp_path: Path) -> None:
    path = tmp_path / "loop.wav"
    path.write_bytes(encode_wav(loop))
    text = _sndfile_info(path)
    assert re.search(r"Tempo\s*:\s*126\.5", text), text
    assert re.search(r"Beats\s*:\s*8\b", text), text
    assert re.search(r"Meter\s*:\s*4/4", text), text
    assert re.search(r"Root note\s*:\s*0x26\b", text), text  # 38
    assert "RootNoteValid" in text and "StretchOn" in text and "Loop" in text
    assert re.search(r"Midi Note\s*:\s*38\b", text), text
    assert re.search(r"Loop Count\s*:\s*1\b", text), text
    assert re.search(rf"Start\s*:\s*0\s+End\s*:\s*{loop.audio.shape[1] - 1}\b", text), text
    assert re.search(r"Bit Width\s*:\s*24", text), text
    assert re.search(r"Sample Rate\s*:\s*48000", text), text


def test_one_shot_tags(tmp_path: Path) -> None:
    t = np.arange(4800) / 48000
    hit = (np.exp(-t * 30) * np.sin(2 * np.pi * 60 * t)).astype(np.float32)[None]
    shot = conform_audio(hit, 48000, Kind.ONE_SHOT, ConformSpec(tempo_bpm=128.0, sample_rate=48000))
    data = encode_wav(shot)
    tags = read_wav_tags(data)
    assert tags.acid is not None and tags.smpl is not None
    assert tags.acid.one_shot and not tags.acid.root_note_set and not tags.acid.stretch
    assert tags.smpl.loops == ()
    path = tmp_path / "shot.wav"
    path.write_bytes(data)
    text = _sndfile_info(path)
    assert "OneShot" in text and re.search(r"Loop Count\s*:\s*0\b", text), text
    assert read_wav_tags(path) == tags  # a path works as well as bytes


def test_more_than_two_channels_use_the_extensible_format(tmp_path: Path) -> None:
    audio = (0.1 * np.random.default_rng(0).standard_normal((4, 1000))).astype(np.float32)
    conformed = ConformedAudio(audio, 44100, Kind.LOOP, 120.0, 1.0, None, 0, 1000, {}, 4)
    data = encode_wav(conformed)
    tags = read_wav_tags(data)
    (raw_tag,) = struct.unpack_from("<H", data, 20)
    assert raw_tag == 0xFFFE and tags.format_tag == 1 and tags.channels == 4
    path = tmp_path / "quad.wav"
    path.write_bytes(data)
    back, _ = soundfile.read(str(path), always_2d=True)
    np.testing.assert_allclose(back.T, audio, atol=1.0 / 2**23)


def test_full_scale_is_clipped_not_wrapped() -> None:
    audio = np.array([[1.5, 1.0, -1.0, -1.5, 0.5]], np.float32)
    data = encode_wav(ConformedAudio(audio, 8000, Kind.ONE_SHOT, 120.0, 0.0, None, None, None, {}, 4))
    start = data.index(b"data") + 8
    samples = [int.from_bytes(data[start + 3 * i : start + 3 * i + 3], "little", signed=True) for i in range(5)]
    assert samples == [2**23 - 1, 2**23 - 1, -(2**23), -(2**23), 2**22]
    assert len(data) % 2 == 0  # the odd-sized data chunk is padded, as RIFF requires


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"RIFF",
        b"RIFF\x00\x00\x00\x00AVI LIST",
        b"RIFF\x10\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00",  # fmt cut short
        b"RIFF\x0c\x00\x00\x00WAVEdata\x00\x00\x00\x00",  # no fmt
        b"RIFF\x20\x00\x00\x00WAVEacid\x04\x00\x00\x00\x01\x00\x00\x00",  # acid too small
    ],
)
def test_garbage_is_reported(data: bytes) -> None:
    with pytest.raises(AudioReadError):
        read_wav_tags(data)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(AudioReadError, match="cannot be read"):
        read_wav_tags(tmp_path / "nope.wav")


def _plain_wav(subtype: str, rate: int, channels: int, frames: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros((frames, channels), np.float32), rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize(("subtype", "rate", "channels", "frames"),
                         [("PCM_16", 44100, 2, 1000), ("PCM_24", 48000, 2, 4801), ("PCM_24", 22050, 1, 3),
                          ("FLOAT", 96000, 6, 777), ("PCM_U8", 8000, 1, 11)])
def test_the_shape_is_read_from_the_header_as_libsndfile_reads_it(subtype: str, rate: int, channels: int,
                                                                   frames: int) -> None:
    tags = read_wav_tags(_plain_wav(subtype, rate, channels, frames))
    assert (tags.sample_rate, tags.channels, tags.frames) == (rate, channels, frames)


def test_other_chunks_are_skipped_with_their_pad_byte() -> None:
    data = _plain_wav("PCM_24", 48000, 2, 100)
    # an odd-sized chunk before the data (a pad byte after it), as tagged files carry chunks of their own
    fmt_end = data.index(b"data")
    tagged = data[:fmt_end] + b"JUNK" + struct.pack("<I", 3) + b"abc" + b"\0" + data[fmt_end:]
    tagged = tagged[:4] + struct.pack("<I", len(tagged) - 8) + tagged[8:]
    tags = read_wav_tags(tagged)
    info = soundfile.info(io.BytesIO(tagged))
    assert (tags.sample_rate, tags.channels, tags.frames) == (48000, 2, 100) == (info.samplerate, info.channels,
                                                                                 info.frames)
    assert tags.chunks == ("fmt ", "JUNK", "data")


def test_a_file_written_a_block_at_a_time_holds_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer converts blocks of frames; the file is the one a single block makes (odd sizes,
    three channels, an odd byte count padded)."""
    from loopbridge.engine.conform import wavfile

    rng = np.random.default_rng(7)
    audio = (rng.standard_normal((3, 10_001)) * 0.6).astype(np.float32)
    acid = wavfile.AcidChunk(0, 60, 4, 4, 4, 120.0)
    whole = wavfile.write_wav_bytes(audio, 44100, acid, None)
    assert len(whole) % 2 == 0
    monkeypatch.setattr(wavfile, "PCM_BLOCK_FRAMES", 7)
    assert wavfile.write_wav_bytes(audio, 44100, acid, None) == whole
    assert whole.endswith(wavfile.pcm24_bytes(audio) + b"\0")
