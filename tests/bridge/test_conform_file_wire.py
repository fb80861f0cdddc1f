"""``conform_file`` over the wire: a client's own audio as bytes in a ZeroMQ binary frame, or as a path inside
the engine's allowed folders over OSC, answered with a conformed sample and how sure the engine was of its tempo."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopbridge.bridge import protocol as p
from loopbridge.bridge.client import Client, RemoteError

from tests.bridge.conftest import Served
from tests.bridge.test_osc import Peer
from tests.engine.conform.signals import drum_pattern, onset_errors_ms

R = p.OSC_ROOT
AMEN = Path("/usr/share/sonic-pi/samples/loop_amen.flac")


def _flac(audio: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio.T, rate, format="FLAC")
    return buffer.getvalue()


@pytest.fixture()
def client(served: Served) -> Client:
    with Client(served.zmq.endpoint) as c:
        yield c


def test_bytes_in_a_frame_come_back_conformed_with_the_confidence(client: Client, served: Served) -> None:
    data = _flac(drum_pattern(44100, 96.0, 2, seed=9), 44100)
    reply = client.conform_file(data, name="my groove", tempo_bpm=120, bars=2, meter_numerator=4,
                                meter_denominator=4, source_bars=2, sample_rate=48000, timeout=120)
    assert reply.get("re") == "conform_file"
    (sample,) = reply.samples
    assert sample.kind == "loop" and sample.tempo_bpm == pytest.approx(120)
    assert sample.filename.startswith("my-groove_loop_120bpm_2bars_")
    assert reply.get("render_key") == sample.render_key
    assert 0.0 <= reply.get("tempo_confidence") <= 1.0 and reply.get("low_confidence") is False
    assert sample.wav is not None
    audio, rate = sf.read(io.BytesIO(sample.wav), dtype="float32", always_2d=True)
    assert audio.shape[0] == round(8 * 60 / 120 * 48000)
    assert np.abs(onset_errors_ms(audio.T, rate, 120.0, 8)).max() <= 5.0
    # stored like a render: listed, and fitted again to a new tempo by its key alone
    assert any(e["key"] == sample.render_key and e["model"] == "file" for e in client.history(limit=20))
    again = client.conform(sample.render_key, tempo_bpm=100, bars=2, timeout=60)
    assert again.samples[0].tempo_bpm == pytest.approx(100)
    assert again.get("tempo_confidence") is not None  # a file's render says how sure its tempo was, each time


def test_a_file_without_a_pulse_is_flagged_low_confidence(client: Client) -> None:
    noise = (np.random.default_rng(2).standard_normal((1, 3 * 16000)) * 0.2).astype(np.float32)
    reply = client.conform_file(_flac(noise, 16000), kind="loop", tempo_bpm=120, bars=1, timeout=60)
    assert reply.get("low_confidence") is True
    assert any("source_tempo_bpm" in note for note in reply.get("notes"))


def test_a_given_source_tempo_is_not_doubted(client: Client) -> None:
    data = _flac(drum_pattern(48000, 110.0, 1), 48000)
    reply = client.conform_file(data, kind="loop", tempo_bpm=120, bars=1, source_tempo_bpm=110,
                                source_downbeat_s=0.0, timeout=60)
    assert reply.get("tempo_confidence") == 1.0 and reply.get("low_confidence") is False


def test_bad_requests_name_the_field(client: Client) -> None:
    cases = [
        ({"audio_frame": 2}, [b"x"], "bad_request", "audio_frame"),
        ({"audio_frame": 1}, [b"RIFF not audio"], "bad_audio", None),
        ({"audio_frame": 1, "source_tempo_bpm": 1000}, [_flac(drum_pattern(16000, 120, 1), 16000)],
         "bad_request", "source_tempo_bpm"),
        ({"audio_frame": 1, "kind": "kit"}, [_flac(drum_pattern(16000, 120, 1), 16000)], "bad_request", "kind"),
        ({"audio_frame": 1, "audio_path": "/etc/passwd"}, [b"x"], "bad_request", "audio_path"),
    ]
    for fields, frames, code, field in cases:
        with pytest.raises(RemoteError) as caught:
            client.request(p.MessageType.CONFORM_FILE, {"tempo_bpm": 120, **fields}, frames, timeout=30)
        assert caught.value.code == code, (fields, caught.value.message)
        if field is not None:
            assert caught.value.field == field


def test_a_path_over_the_network_only_inside_the_allowed_folders(client: Client, served: Served,
                                                                 tmp_path: Path) -> None:
    outside = tmp_path / "groove.flac"
    outside.write_bytes(_flac(drum_pattern(16000, 120, 1), 16000))
    with pytest.raises(RemoteError) as caught:
        client.request(p.MessageType.CONFORM_FILE, {"audio_path": str(outside), "tempo_bpm": 120}, timeout=30)
    assert caught.value.code == "bad_request" and "inbox" in caught.value.message
    inside = served.service.inbox / "groove.flac"
    shutil.copyfile(outside, inside)
    reply = client.request(p.MessageType.CONFORM_FILE, {"audio_path": str(inside), "tempo_bpm": 120, "bars": 1,
                                                        "kind": "loop"}, timeout=60)
    assert reply.samples[0].filename.startswith("groove_loop_120bpm_1bar_")


def test_osc_takes_a_path_in_the_inbox(served: Served) -> None:
    if AMEN.is_file():
        source, name = AMEN, "loop-amen"
    else:  # a recording when Sonic Pi's samples are installed; the same path either way
        source, name = Path(served.root) / "groove.flac", "groove"
        source.write_bytes(_flac(drum_pattern(22050, 130, 1), 22050))
    inside = served.service.inbox / source.name
    shutil.copyfile(source, inside)
    peer = Peer(served)
    try:
        assert peer.ask(f"{R}/controller/register") == ["127.0.0.1", peer.port]
        peer.send(f"{R}/job/conform_file", "f1", str(inside), "tempo_bpm", 100, "bars", 2, "kind", "loop")
        args, _ = peer.until(f"{R}/job/sample", 120)
        assert args[0] == "f1" and args[3] == "loop" and args[4] == pytest.approx(100) and args[5] == pytest.approx(8)
        assert Path(args[2]).is_file() and Path(args[2]).name.startswith(f"{name}_loop_100bpm_2bars_")
        assert sf.info(args[2]).frames == round(8 * 60 / 100 * 48000)
        assert peer.until(f"{R}/job/done")[0] == ["f1", 1]
        peer.send(f"{R}/job/conform_file", "f2", "/etc/hostname", "tempo_bpm", 100)
        error, _ = peer.until(f"{R}/error", 30)
        assert error[0] == "f2" and error[1] == "bad_request" and "inbox" in error[2]
    finally:
        peer.close()
