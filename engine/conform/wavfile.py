"""24-bit PCM WAV with the chunks DAWs read for tempo (``acid``) and samplers for loops (``smpl``).

Layout written (all little-endian): ``RIFF`` size ``WAVE``, then ``fmt `` (PCM, or
WAVE_FORMAT_EXTENSIBLE above two channels), ``acid`` (24 bytes), ``smpl`` (36 bytes + 24 per
loop), ``data``. The metadata chunks come before ``data`` so readers that stop at the audio still
see them. :func:`read_wav_tags` is an independent parser of those chunks for tests and tools.

``acid`` payload: int32 flags (0x01 one-shot, 0x02 root note set, 0x04 stretch, 0x08 disk-based,
0x10 Acidizer), int16 root note, uint16 0x8000, float32 0, int32 beats, int16 meter denominator,
int16 meter numerator, float32 tempo. ``smpl`` payload: manufacturer, product, sample period (ns),
MIDI unity note, pitch fraction, SMPTE format, SMPTE offset, loop count, sampler data size, then per
loop cue id, type (0 forward), start, end (inclusive), fraction, play count (0 endless); all uint32.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import AudioReadError, RequestError
from ..request import Kind

if TYPE_CHECKING:
    from .pipeline import ConformedAudio

ACID_ONE_SHOT = 0x01
ACID_ROOT_SET = 0x02
ACID_STRETCH = 0x04
ACID_DISK_BASED = 0x08
ACID_ACIDIZER = 0x10

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# the KSDATAFORMAT_SUBTYPE_PCM GUID's bytes after its leading format tag
_PCM_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_INT24_SCALE = 2**23
_RIFF_MAX = 2**32 - 1
#: frames converted to 24-bit PCM at a time when a WAV file is written
PCM_BLOCK_FRAMES = 1 << 16
#: MIDI note written when none is known (middle C); the acid root-set flag stays off then
DEFAULT_ROOT_NOTE = 60


@dataclass(frozen=True)
class AcidChunk:
    """The ``acid`` chunk, as written or read."""

    flags: int
    root_note: int
    beats: int
    meter_denominator: int
    meter_numerator: int
    tempo_bpm: float

    @property
    def one_shot(self) -> bool:
        return bool(self.flags & ACID_ONE_SHOT)

    @property
    def root_note_set(self) -> bool:
        return bool(self.flags & ACID_ROOT_SET)

    @property
    def stretch(self) -> bool:
        return bool(self.flags & ACID_STRETCH)

    def pack(self) -> bytes:
        return struct.pack(
            "<ihHfihhf",
            self.flags,
            self.root_note,
            0x8000,
            0.0,
            self.beats,
            self.meter_denominator,
            self.meter_numerator,
            self.tempo_bpm,
        )


@dataclass(frozen=True)
class SmplLoop:
    """One ``smpl`` loop: frames ``start`` to ``end`` *inclusive*, as the chunk stores them."""

    start: int
    end: int
    loop_type: int = 0
    play_count: int = 0
    cue_id: int = 0
    fraction: int = 0


@dataclass(frozen=True)
class SmplChunk:
    """The ``smpl`` chunk, as written or read."""

    unity_note: int
    sample_period_ns: int
    loops: tuple[SmplLoop, ...] = ()
    pitch_fraction: int = 0

    def pack(self) -> bytes:
        header = struct.pack(
            "<9I", 0, 0, self.sample_period_ns, self.unity_note, self.pitch_fraction, 0, 0, len(self.loops), 0
        )
        body = b"".join(
            struct.pack("<6I", loop.cue_id, loop.loop_type, loop.start, loop.end, loop.fraction, loop.play_count)
            for loop in self.loops
        )
        return header + body


@dataclass(frozen=True)
class WavTags:
    """What :func:`read_wav_tags` found in a WAV file."""

    sample_rate: int
    channels: int
    bits_per_sample: int
    format_tag: int
    frames: int
    acid: AcidChunk | None
    smpl: SmplChunk | None
    chunks: tuple[str, ...]


def _chunk(chunk_id: bytes, payload: bytes) -> bytes:
    pad = b"\x00" if len(payload) % 2 else b""
    return chunk_id + struct.pack("<I", len(payload)) + payload + pad


def _fmt_chunk(channels: int, sample_rate: int) -> bytes:
    block_align = channels * 3
    common = struct.pack("<HIIHH", channels, sample_rate, sample_rate * block_align, block_align, 24)
    if channels <= 2:
        return _chunk(b"fmt ", struct.pack("<H", WAVE_FORMAT_PCM) + common)
    # more than two channels: WAVE_FORMAT_EXTENSIBLE, no speaker positions assigned (mask 0)
    extension = struct.pack("<HHIH", 22, 24, 0, WAVE_FORMAT_PCM) + _PCM_GUID_TAIL
    return _chunk(b"fmt ", struct.pack("<H", WAVE_FORMAT_EXTENSIBLE) + common + extension)


def pcm24_bytes(audio: np.ndarray) -> bytes:
    """Interleaved little-endian 24-bit PCM of float ``[channels, samples]`` audio (clipped to ±1)."""
    scaled = np.round(np.clip(audio.astype(np.float64), -1.0, 1.0) * _INT24_SCALE)
    ints = np.clip(scaled, -_INT24_SCALE, _INT24_SCALE - 1).astype("<i4").T.copy()
    return ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def write_wav_bytes(audio: np.ndarray, sample_rate: int, acid: AcidChunk | None, smpl: SmplChunk | None) -> bytes:
    """A complete 24-bit WAV file of float32 ``[channels, samples]`` audio with optional chunks.

    The samples are converted :data:`PCM_BLOCK_FRAMES` at a time straight into the file's bytes, so
    writing holds the file and one block beside the audio (not float64 and int32 copies of it all).
    """
    channels, frames = audio.shape
    head = _fmt_chunk(channels, sample_rate)
    if acid is not None:
        head += _chunk(b"acid", acid.pack())
    if smpl is not None:
        head += _chunk(b"smpl", smpl.pack())
    data_bytes = frames * channels * 3
    pad = data_bytes % 2
    riff_bytes = 4 + len(head) + 8 + data_bytes + pad
    if riff_bytes > _RIFF_MAX:
        raise RequestError("audio", f"{frames} frames of {channels} channels", "a WAV file under 4 GiB")
    out = io.BytesIO()  # its getvalue() hands over the buffer it filled, no copy
    out.write(b"RIFF" + struct.pack("<I", riff_bytes) + b"WAVE" + head + b"data" + struct.pack("<I", data_bytes))
    for first in range(0, frames, PCM_BLOCK_FRAMES):
        out.write(pcm24_bytes(audio[:, first : first + PCM_BLOCK_FRAMES]))
    out.write(b"\x00" * pad)
    return out.getvalue()


def tags_for(conformed: ConformedAudio) -> tuple[AcidChunk, SmplChunk]:
    """The ``acid`` and ``smpl`` chunks that describe a conformed sample."""
    is_loop = conformed.loop_start is not None and conformed.loop_end is not None
    flags = 0
    if conformed.kind is Kind.ONE_SHOT or not is_loop:
        flags |= ACID_ONE_SHOT
    if conformed.root_note is not None:
        flags |= ACID_ROOT_SET
    # loops follow the song tempo; a texture only when it was fitted to bars (it has no pulse)
    if is_loop and (conformed.kind is Kind.LOOP or conformed.info.get("fitted_to_bars", False)):
        flags |= ACID_STRETCH
    root = conformed.root_note if conformed.root_note is not None else DEFAULT_ROOT_NOTE
    acid = AcidChunk(
        flags=flags,
        root_note=root,
        beats=max(1 if is_loop else 0, int(round(conformed.beats))),
        meter_denominator=4,
        meter_numerator=conformed.beats_per_bar,
        tempo_bpm=float(conformed.tempo_bpm),
    )
    loops: tuple[SmplLoop, ...] = ()
    if conformed.loop_start is not None and conformed.loop_end is not None:
        loops = (SmplLoop(start=conformed.loop_start, end=conformed.loop_end - 1),)
    smpl = SmplChunk(
        unity_note=root,
        sample_period_ns=int(round(1e9 / conformed.sample_rate)),
        loops=loops,
        pitch_fraction=int(conformed.info.get("pitch_fraction", 0)),
    )
    return acid, smpl


def encode_wav(conformed: ConformedAudio) -> bytes:
    """A conformed sample as 24-bit PCM WAV bytes with ``acid`` and ``smpl`` chunks.

    The bytes are what the store writes to disk and what the wire protocol sends.
    """
    acid, smpl = tags_for(conformed)
    return write_wav_bytes(conformed.audio, conformed.sample_rate, acid, smpl)


def _read_source(data: bytes | bytearray | memoryview | str | Path) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str | Path):
        path = Path(data)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise AudioReadError(f"WAV file {str(path)!r} cannot be read: {exc.strerror or exc}") from exc
    raise AudioReadError(f"expected WAV bytes or a path, got {type(data).__name__}")


def read_wav_tags(data: bytes | bytearray | memoryview | str | Path) -> WavTags:
    """Parse the format, ``acid`` and ``smpl`` chunks of a WAV file (bytes or a path).

    Raises :class:`AudioReadError` for anything that is not a RIFF/WAVE file with a ``fmt `` chunk,
    or whose chunks are cut short.
    """
    raw = _read_source(data)
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise AudioReadError(f"not a RIFF/WAVE file (starts with {raw[:12]!r})")
    position = 12
    chunks: list[str] = []
    fmt: tuple[int, int, int, int, int] | None = None
    acid: AcidChunk | None = None
    smpl: SmplChunk | None = None
    data_size = 0
    while position + 8 <= len(raw):
        chunk_id = raw[position : position + 4]
        (size,) = struct.unpack_from("<I", raw, position + 4)
        name = chunk_id.decode("latin-1")
        chunks.append(name)
        if chunk_id == b"data":
            data_size = min(size, len(raw) - position - 8)  # a file cut short keeps the frames it has
            position += 8 + size + (size % 2)
            continue
        payload = raw[position + 8 : position + 8 + size]
        if len(payload) < size:
            raise AudioReadError(f"WAV chunk {name!r} claims {size} bytes but only {len(payload)} remain")
        elif chunk_id == b"fmt ":
            if size < 16:
                raise AudioReadError(f"WAV fmt chunk of {size} bytes (expected at least 16)")
            tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", payload)
            if tag == WAVE_FORMAT_EXTENSIBLE and size >= 26:
                (tag,) = struct.unpack_from("<H", payload, 24)
            fmt = (tag, channels, rate, block_align, bits)
        elif chunk_id == b"acid":
            if size < 24:
                raise AudioReadError(f"WAV acid chunk of {size} bytes (expected 24)")
            flags, root, _, _, beats, denominator, numerator, tempo = struct.unpack_from("<ihHfihhf", payload)
            acid = AcidChunk(flags, root, beats, denominator, numerator, float(tempo))
        elif chunk_id == b"smpl":
            if size < 36:
                raise AudioReadError(f"WAV smpl chunk of {size} bytes (expected at least 36)")
            header = struct.unpack_from("<9I", payload)
            count = header[7]
            if 36 + 24 * count > size:
                raise AudioReadError(f"WAV smpl chunk lists {count} loops but holds {size} bytes")
            loops = []
            for i in range(count):
                cue, kind, start, end, fraction, plays = struct.unpack_from("<6I", payload, 36 + 24 * i)
                loops.append(SmplLoop(start, end, kind, plays, cue, fraction))
            smpl = SmplChunk(
                unity_note=header[3], sample_period_ns=header[2], loops=tuple(loops), pitch_fraction=header[4]
            )
        position += 8 + size + (size % 2)
    if fmt is None:
        raise AudioReadError("WAV file has no fmt chunk")
    tag, channels, rate, block_align, bits = fmt
    frames = data_size // block_align if block_align else 0
    return WavTags(
        sample_rate=rate,
        channels=channels,
        bits_per_sample=bits,
        format_tag=tag,
        frames=frames,
        acid=acid,
        smpl=smpl,
        chunks=tuple(chunks),
    )
