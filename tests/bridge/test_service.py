"""Pieces of the service that the socket tests do not reach one by one."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf
from loopbridge.bridge.service import wav_shape


def _wav(subtype: str, rate: int, channels: int, frames: int, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((frames, channels), np.float32), rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize(("subtype", "rate", "channels", "frames"),
                         [("PCM_16", 44100, 2, 1000), ("PCM_24", 48000, 2, 4801), ("PCM_24", 22050, 1, 3),
                          ("FLOAT", 96000, 6, 777), ("PCM_U8", 8000, 1, 11)])
def test_wav_shape_reads_the_header_as_libsndfile_does(subtype: str, rate: int, channels: int, frames: int) -> None:
    data = _wav(subtype, rate, channels, frames)
    assert wav_shape(data) == (rate, channels, frames)


def test_wav_shape_skips_other_chunks_and_falls_back_for_other_formats() -> None:
    data = _wav("PCM_24", 48000, 2, 100)
    # an odd-sized chunk before the data (a pad byte after it), as tagged files carry chunks of their own
    fmt_end = data.index(b"data")
    extra = b"JUNK" + struct.pack("<I", 3) + b"abc" + b"\0"
    tagged = data[:fmt_end] + extra + data[fmt_end:]
    tagged = tagged[:4] + struct.pack("<I", len(tagged) - 8) + tagged[8:]
    assert wav_shape(tagged) == (48000, 2, 100) == (sf.info(io.BytesIO(tagged)).samplerate, 2, 100)
    flac = _wav("PCM_16", 44100, 1, 500, fmt="FLAC")
    assert wav_shape(flac) == (44100, 1, 500)
