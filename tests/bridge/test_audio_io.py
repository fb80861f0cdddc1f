"""Audition and record through the real PortAudio: a clear message without hardware, real I/O with ALSA's
null device."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopbridge.bridge.cli import main
from loopbridge.engine.errors import RequestError

NULL_ALSA = """pcm.!default {
    type null
}
"""


def _cli(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "LOOPBRIDGE_HOME": str(home / "lb")}
    return subprocess.run([sys.executable, "-m", "loopbridge.bridge.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def _wav(path: Path, seconds: float = 0.1, rate: int = 48000) -> Path:
    sf.write(str(path), np.zeros((int(seconds * rate), 2), np.float32), rate)
    return path


def _portaudio_loads() -> bool:
    try:
        import sounddevice  # noqa: F401
    except OSError:
        return False
    return True


def test_without_audio_hardware_or_portaudio_the_message_is_clear(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # this machine's own devices (a CI box has none; HOME is the user's, with no null device set up)
    wav = _wav(tmp_path / "s.wav")
    for args in (["audition", str(wav)], ["record", "0.1", "--out", str(tmp_path / "r.wav")]):
        status = main(args)
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if status == 0:
            continue  # a machine with a sound card: nothing to explain
        assert status == 1 and err.startswith("loopbridge: error: ") and err.count("\n") == 1
        assert "no output device" in err or "no input device" in err or "PortAudio is not installed" in err, err


def test_play_and_record_through_alsa_null_device(tmp_path: Path) -> None:
    if not _portaudio_loads():
        pytest.skip("PortAudio is not installed (Debian: libportaudio2)")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(NULL_ALSA)
    wav = _wav(tmp_path / "s.wav", seconds=0.2)
    played = _cli("audition", str(wav), home=home, cwd=tmp_path)
    if played.returncode != 0 and "no output device" in played.stderr:
        pytest.skip(f"ALSA's null device is not available here: {played.stderr.strip()}")
    assert played.returncode == 0, played.stderr
    assert "played" in played.stderr and "0.20 s" in played.stderr
    recorded = _cli("record", "0.25", "--out", "take.wav", "--sample-rate", "44100", "--channels", "1",
                    home=home, cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    out = Path(recorded.stdout.strip())
    assert out == (tmp_path / "take.wav").resolve()
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 1, 11025, "PCM_24")
    audio, _ = sf.read(io.BytesIO(out.read_bytes()))
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 1.0
    none_yet = _cli("audition", "last", home=home, cwd=tmp_path)
    assert none_yet.returncode == 1 and "no sample in the store yet" in none_yet.stderr


def test_bad_record_settings_are_refused_before_touching_a_device(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from loopbridge.bridge.audio_io import record

    for seconds in (0, -1, 10_000, float("nan")):
        with pytest.raises(RequestError, match="seconds"):
            record(seconds, tmp_path / "x.wav")
    with pytest.raises(RequestError, match="sample_rate"):
        record(1, tmp_path / "x.wav", sample_rate=100)
    with pytest.raises(RequestError, match="out"):
        record(1, tmp_path)
    assert main(["audition", str(tmp_path / "nope.wav")]) == 2
    assert "expected an audio file or 'last'" in capsys.readouterr().err
