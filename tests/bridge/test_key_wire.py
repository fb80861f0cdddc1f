"""The song's key over the wire: the ``key`` field of ZeroMQ requests, the OSC session's key, and the
``key`` and ``key_confidence`` every sample carries back. The audio is a piano playing in D major
(FluidR3 General MIDI through fluidsynth: ``tests/engine/conform/instruments.py``)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf
from loopbridge.bridge import protocol as p
from loopbridge.bridge.client import Client, RemoteError
from loopbridge.engine.conform.key import detect_key, parse_key

from tests.bridge.conftest import Served
from tests.bridge.test_osc import Peer
from tests.engine.conform import instruments

R = p.OSC_ROOT
pytestmark = pytest.mark.skipif(instruments.available() is not None, reason=str(instruments.available()))


@pytest.fixture()
def client(served: Served) -> Iterator[Client]:
    with Client(served.zmq.endpoint) as c:
        yield c


@pytest.fixture()
def peer(served: Served) -> Iterator[Peer]:
    controller = Peer(served)
    yield controller
    controller.close()


@pytest.fixture(scope="module")
def piano_in_d(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    key = parse_key("D")
    assert key is not None
    audio, rate = instruments.tonal_loop(key, "piano", tmp_path_factory.mktemp("piano"))
    buffer = io.BytesIO()
    sf.write(buffer, audio.T, rate, format="FLAC")
    return buffer.getvalue()


def _heard(sample_wav: bytes | memoryview) -> str | None:
    audio, rate = sf.read(io.BytesIO(bytes(sample_wav)), dtype="float32", always_2d=True)
    return detect_key(np.ascontiguousarray(audio.T), rate).name


def test_a_file_is_fitted_to_the_songs_key_and_a_key_change_reconforms_it(client: Client, piano_in_d: bytes) -> None:
    fields = {"name": "piano", "tempo_bpm": 120, "bars": 4, "source_tempo_bpm": 120, "sample_rate": 44100}
    own = client.conform_file(piano_in_d, **fields, timeout=120).samples[0]
    assert own.key == "D" and 0.0 <= own.key_confidence <= 1.0 and own.filename.endswith("_D.wav")
    assert own.root_note is not None and own.root_note % 12 == 2
    moved = client.conform_file(piano_in_d, **fields, key="f major", timeout=120).samples[0]
    assert moved.key == "F" and moved.filename.endswith("_F.wav") and moved.frames == own.frames
    assert moved.sample_key != own.sample_key and moved.render_key == own.render_key
    assert moved.wav is not None and _heard(moved.wav) == "F"
    # another key for the stored render, without the file: conform and recall (both by render_key)
    relative = client.conform(own.render_key, tempo_bpm=120, bars=4, sample_rate=44100, key="Bm", timeout=60)
    assert relative.samples[0].key == "D", "B minor is D major's relative: no shift"
    recalled = client.recall(own.render_key[:10], tempo_bpm=120, bars=4, sample_rate=44100, key="Ab", timeout=60)
    assert recalled.samples[0].key == "Ab" and recalled.samples[0].frames == own.frames
    # "off" is no key matching: the file as it is, from the store
    off = client.conform(own.render_key, tempo_bpm=120, bars=4, sample_rate=44100, key="off", timeout=60)
    assert off.samples[0].sample_key == own.sample_key


@pytest.mark.parametrize("kind", ["generate", "conform_file"])
def test_a_bad_key_is_refused_naming_it_and_the_forms_accepted(client: Client, piano_in_d: bytes, kind: str) -> None:
    with pytest.raises(RemoteError) as caught:
        if kind == "generate":
            client.generate(prompt="x", model="tiny-dd", kind="one-shot", steps=2, key="H minor", timeout=30)
        else:
            client.conform_file(piano_in_d, tempo_bpm=120, key="H minor", timeout=30)
    assert caught.value.code == "bad_request" and caught.value.field == "key"
    assert "'H minor'" in caught.value.message and "A minor" in caught.value.message


def test_samples_without_a_key_say_so(client: Client) -> None:
    noise = (np.random.default_rng(5).standard_normal((1, 2 * 16000)) * 0.2).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, noise.T, 16000, format="FLAC")
    (sample,) = client.conform_file(buffer.getvalue(), kind="texture", tempo_bpm=120, key="Am", timeout=60).samples
    assert sample.key is None and sample.key_confidence is None


def test_the_osc_session_key_is_fed_back_canonical_and_refused_when_bad(served: Served, peer: Peer) -> None:
    assert peer.ask(f"{R}/controller/register") == ["127.0.0.1", peer.port]
    try:
        peer.send(f"{R}/session/set/key", "a minor")
        assert peer.until(f"{R}/session/key")[0] == ["Am"]
        assert peer.ask(f"{R}/session/get/key") == ["Am"]
        peer.send(f"{R}/session/set/key", "H")
        assert peer.until(f"{R}/session/key")[0] == ["Am"], "a bad key snaps back"
        error = peer.until(p.OSC_ERROR)[0]
        assert error[1] == "bad_request" and "'H'" in error[2]
        peer.send(f"{R}/session/set/key", "off")
        assert peer.until(f"{R}/session/key")[0] == ["off"]
    finally:
        served.osc.session.params["key"] = "off"
