"""Read and write the plugin's saved state the way a host stores it, and make tagged WAV bytes.

The plugin's own state is JUCE's binary XML (``VC2!`` + little-endian size + UTF-8 XML + NUL)
holding ``<LOOPBRIDGE>`` with the parameters, ``<SESSION prompt morph_prompt model endpoint>`` and
``<SAMPLE>`` (the current sample's WAV, base64). Through pedalboard it travels inside the VST3
host's ``<VST3PluginState>`` XML, as the base64 ``IComponent`` blob (JUCE's ``MemoryBlock`` base64,
``<size>.<data>`` in JUCE's own alphabet).
"""

from __future__ import annotations

import io
import struct
import wave
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

_JUCE_BINARY_XML_MAGIC = 0x21324356  # "VC2!"
_JUCE_PRIVATE_DATA = b"JUCEPrivateData"
# JUCE's MemoryBlock::toBase64Encoding alphabet (not RFC 4648's order)
_JUCE_BASE64 = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"


# ---- JUCE's binary XML ----------------------------------------------------------------------


def pack_binary_xml(xml_text: str) -> bytes:
    """``AudioProcessor::copyXmlToBinary`` in Python."""
    data = xml_text.encode("utf-8") + b"\0"
    return struct.pack("<II", _JUCE_BINARY_XML_MAGIC, len(data)) + data


def unpack_binary_xml(blob: bytes) -> str:
    """``AudioProcessor::getXmlFromBinary``: the XML text (JUCE's private trailer is ignored)."""
    magic, size = struct.unpack_from("<II", blob, 0)
    if magic != _JUCE_BINARY_XML_MAGIC:
        raise ValueError(f"state starts with {blob[:4]!r}: expected JUCE binary XML (VC2!)")
    return blob[8 : 8 + size].rstrip(b"\0").decode("utf-8")


def juce_memory_block_from_base64(text: str) -> bytes:
    """``MemoryBlock::fromBase64Encoding``: ``<size>.<6-bit digits, least significant bits first>``."""
    size_text, _, digits = text.strip().partition(".")
    size = int(size_text)
    values = np.frombuffer(digits.encode("ascii"), dtype=np.uint8)
    lookup = np.full(256, 255, dtype=np.uint8)
    lookup[np.frombuffer(_JUCE_BASE64.encode("ascii"), dtype=np.uint8)] = np.arange(64, dtype=np.uint8)
    sixes = lookup[values]
    if np.any(sixes == 255):
        raise ValueError("not JUCE base64")
    bits = ((sixes[:, None] >> np.arange(6, dtype=np.uint8)) & 1).astype(np.uint8).reshape(-1)
    padded = np.concatenate([bits, np.zeros(max(0, size * 8 - bits.size), dtype=np.uint8)])[: size * 8]
    return np.packbits(padded, bitorder="little").tobytes()


def juce_memory_block_to_base64(data: bytes) -> str:
    """``MemoryBlock::toBase64Encoding``."""
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    groups = np.concatenate([bits, np.zeros((-bits.size) % 6, dtype=np.uint8)]).reshape(-1, 6)
    sixes = groups @ (1 << np.arange(6))
    alphabet = np.frombuffer(_JUCE_BASE64.encode("ascii"), dtype=np.uint8)
    return f"{len(data)}." + alphabet[sixes].tobytes().decode("ascii")


# ---- the plugin's state -------------------------------------------------------------------------


@dataclass
class PluginState:
    """The parsed ``<LOOPBRIDGE>`` state."""

    root: ET.Element

    @classmethod
    def from_plugin_blob(cls, blob: bytes) -> PluginState:
        return cls(ET.fromstring(unpack_binary_xml(blob)))

    def to_plugin_blob(self) -> bytes:
        return pack_binary_xml(ET.tostring(self.root, encoding="unicode"))

    @property
    def session(self) -> ET.Element:
        found = self.root.find("SESSION")
        if found is None:
            found = ET.SubElement(self.root, "SESSION")
        return found

    def set_session(self, **values: str) -> None:
        for name, value in values.items():
            self.session.set(name, value)

    def parameter(self, param_id: str) -> float:
        for param in self.root.iter("PARAM"):
            if param.get("id") == param_id:
                return float(param.get("value", "nan"))
        raise KeyError(param_id)

    @property
    def sample_wav(self) -> bytes | None:
        element = self.root.find("SAMPLE")
        if element is None or not (element.text or "").strip():
            return None
        return juce_memory_block_from_base64(element.text or "")

    @property
    def sample_attributes(self) -> dict[str, str]:
        element = self.root.find("SAMPLE")
        return dict(element.attrib) if element is not None else {}

    def set_sample(self, wav_bytes: bytes, **attributes: str) -> None:
        for old in self.root.findall("SAMPLE"):
            self.root.remove(old)
        element = ET.SubElement(self.root, "SAMPLE", {"encoding": "base64", **attributes})
        element.text = juce_memory_block_to_base64(wav_bytes)


# ---- the VST3 host's wrapper (what pedalboard's raw_state holds) ---------------------------------


def plugin_blob_from_raw_state(raw_state: bytes) -> bytes:
    """The plugin's own state inside pedalboard's ``raw_state`` (JUCE's private trailer removed)."""
    host = ET.fromstring(unpack_binary_xml(raw_state))
    component = host.find("IComponent")
    if component is None or not (component.text or "").strip():
        raise ValueError(f"raw_state holds no IComponent state: {ET.tostring(host)[:200]!r}")
    blob = juce_memory_block_from_base64(component.text or "")
    if blob.endswith(_JUCE_PRIVATE_DATA):
        (private_size,) = struct.unpack_from("<Q", blob, len(blob) - len(_JUCE_PRIVATE_DATA) - 8)
        blob = blob[: len(blob) - len(_JUCE_PRIVATE_DATA) - 8 - private_size - 8]
    return blob


def raw_state_with_plugin_blob(raw_state: bytes, plugin_blob: bytes) -> bytes:
    """``raw_state`` with the plugin's own state replaced (the host's other parts kept)."""
    host = ET.fromstring(unpack_binary_xml(raw_state))
    component = host.find("IComponent")
    if component is None:
        component = ET.SubElement(host, "IComponent")
    component.text = juce_memory_block_to_base64(plugin_blob)
    return pack_binary_xml(ET.tostring(host, encoding="unicode"))


def read_state(plugin: object) -> PluginState:
    return PluginState.from_plugin_blob(plugin_blob_from_raw_state(plugin.raw_state))  # type: ignore[attr-defined]


def write_state(plugin: object, state: PluginState) -> None:
    plugin.raw_state = raw_state_with_plugin_blob(plugin.raw_state, state.to_plugin_blob())  # type: ignore[attr-defined]


# ---- WAV bytes with the engine's tags ------------------------------------------------------------


def tagged_wav(audio: np.ndarray, sample_rate: int, tempo_bpm: float = 0.0, beats: float = 0.0, root_note: int = 60,
               loop: bool = False) -> bytes:
    """24-bit PCM WAV of float32 ``[channels, frames]`` audio with ``acid`` (and, for loops, ``smpl``) chunks."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    channels, frames = audio.shape
    ints = np.clip(np.round(audio.T * 8388607.0), -8388608, 8388607).astype(np.int32)
    pcm = np.ascontiguousarray(ints.astype("<i4")).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(3)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    data = bytearray(buffer.getvalue())
    chunks = b""
    if beats > 0:
        flags = (0x01 if not loop else 0) | 0x02
        acid = struct.pack("<IHHfIHHf", flags, root_note, 0x8000, 0.0, int(round(beats)), 4, 4, float(tempo_bpm))
        chunks += b"acid" + struct.pack("<I", len(acid)) + acid
    if loop:
        smpl = struct.pack("<9I", 0, 0, round(1e9 / sample_rate), root_note, 0, 0, 0, 1, 0)
        smpl += struct.pack("<6I", 0, 0, 0, frames - 1, 0, 0)
        chunks += b"smpl" + struct.pack("<I", len(smpl)) + smpl
    data += chunks
    struct.pack_into("<I", data, 4, len(data) - 8)
    return bytes(data)


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """float32 ``[channels, frames]`` and the rate of 16- or 24-bit PCM WAV bytes."""
    with wave.open(io.BytesIO(data), "rb") as w:
        channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(frames)
    if width == 3:
        bytes3 = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        padded = np.zeros((bytes3.shape[0], 4), dtype=np.uint8)
        padded[:, 1:] = bytes3
        ints = padded.view("<i4").reshape(-1) >> 8
        audio = ints.astype(np.float32) / 8388608.0
    elif width == 2:
        audio = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    else:
        raise ValueError(f"{width * 8}-bit WAV: expected 16 or 24 bit")
    return audio.reshape(-1, channels).T.copy(), rate
