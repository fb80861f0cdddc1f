"""Audition and record on the engine's machine, with sounddevice (PortAudio).

Every way this can fail for want of hardware or libraries (PortAudio not installed, no output or
input device, a device busy) raises :class:`AudioDeviceError` with a message a musician can act
on; nothing here lets a PortAudio traceback through.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from loopbridge.engine.errors import AudioReadError, RequestError
from loopbridge.engine.request import AUDIO_PROMPT_MAX_S, DEFAULT_SAMPLE_RATE, SAMPLE_RATE_RANGE


class AudioDeviceError(Exception):
    """No way to play or record here; the message says why and what to do."""


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the module loads, the PortAudio library does not
        raise AudioDeviceError(
            "PortAudio is not installed, so nothing can be played or recorded here "
            f"(install it: Debian/Ubuntu `apt-get install libportaudio2`, macOS `brew install portaudio`): {exc}"
        ) from exc
    except ImportError as exc:
        raise AudioDeviceError(f"the sounddevice package is missing (pip install sounddevice): {exc}") from exc
    return sounddevice


def _device(sd: Any, kind: str, device: str | int | None) -> dict[str, Any]:
    """The device that will be used for ``kind`` ("output" or "input"), or AudioDeviceError."""
    try:
        info = sd.query_devices(device, kind=kind)
    except (ValueError, sd.PortAudioError) as exc:
        try:
            listed = [d["name"] for d in sd.query_devices() if d[f"max_{kind}_channels"] > 0]
        except sd.PortAudioError:
            listed = []
        which = f"device {device!r}" if device is not None else f"a default {kind} device"
        available = f"{kind} devices here: {', '.join(listed)}" if listed else f"this machine has no {kind} device"
        raise AudioDeviceError(f"cannot use {which} ({exc}); {available}") from exc
    if info is None or info.get(f"max_{kind}_channels", 0) < 1:
        raise AudioDeviceError(f"{info.get('name') if info else device!r} has no {kind} channels")
    return dict(info)


def devices() -> list[dict[str, Any]]:
    """Every audio device PortAudio sees (name, channels, default rate)."""
    sd = _sounddevice()
    try:
        return [dict(d) for d in sd.query_devices()]
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"PortAudio cannot list devices: {exc}") from exc


def play(path: str | Path, device: str | int | None = None) -> float:
    """Play an audio file to the end on ``device`` (default output); returns its length in seconds."""
    import soundfile as sf

    path = Path(path)
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise AudioReadError(f"{str(path)!r} cannot be read as audio: {exc}") from exc
    sd = _sounddevice()
    info = _device(sd, "output", device)
    channels = int(info["max_output_channels"])
    if audio.shape[1] > channels:
        audio = audio[:, :channels] if channels > 1 else audio.mean(axis=1, keepdims=True)
    try:
        sd.play(audio, rate, device=device, blocking=True)
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"playing on {info['name']!r} failed: {exc}") from exc
    return audio.shape[0] / rate


def record(seconds: float, path: str | Path, sample_rate: int = DEFAULT_SAMPLE_RATE, channels: int = 2,
           device: str | int | None = None) -> Path:
    """Record ``seconds`` from ``device`` (default input) into a 24-bit WAV at ``path`` (atomic).

    Raises RequestError for a length or rate outside the accepted range, AudioDeviceError when
    nothing can be recorded.
    """
    import soundfile as sf

    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= AUDIO_PROMPT_MAX_S:
        raise RequestError("seconds", seconds, f"more than 0 and at most {AUDIO_PROMPT_MAX_S:g} s")
    if not SAMPLE_RATE_RANGE[0] <= sample_rate <= SAMPLE_RATE_RANGE[1]:
        raise RequestError("sample_rate", sample_rate, f"{SAMPLE_RATE_RANGE[0]}–{SAMPLE_RATE_RANGE[1]} Hz")
    if not 1 <= channels <= 8:
        raise RequestError("channels", channels, "1–8")
    path = Path(path)
    if path.is_dir():
        raise RequestError("out", str(path), "a file name (it is a folder)")
    sd = _sounddevice()
    info = _device(sd, "input", device)
    channels = min(channels, int(info["max_input_channels"]))
    frames = int(round(seconds * sample_rate))
    try:
        audio = sd.rec(frames, samplerate=sample_rate, channels=channels, dtype="float32", device=device,
                       blocking=True)
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"recording from {info['name']!r} failed: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        # a device that delivers nothing sensible (a null sink) must still give a valid file
        clean = np.clip(np.nan_to_num(np.asarray(audio), nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        sf.write(str(tmp), clean, sample_rate, format="WAV", subtype="PCM_24")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
