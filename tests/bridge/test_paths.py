"""Paths and models from the network: a file only inside the folders the user allowed (the store, the
inbox, ``--allow-path``), symlinks resolved first, one answer for every path outside whether or not a
file is there; a model only by an id that ``models`` lists. Over ZeroMQ, over OSC jobs and over the
OSC session's audio prompt."""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from loopbridge.bridge import protocol as p
from loopbridge.bridge.cli import main
from loopbridge.bridge.client import Client, RemoteError
from loopbridge.bridge.paths import OUTSIDE, AllowedFolders
from loopbridge.engine.errors import RequestError
from PIL import Image

from tests.bridge.conftest import TINY, Served, spawn_engine
from tests.bridge.test_osc import Peer, _pairs

R = p.OSC_ROOT


def _wav(path: Path, seconds: float = 0.3, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32) * 0.5, rate)
    return path


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the engine was not told about, with a readable WAV in it."""
    folder = tmp_path_factory.mktemp("outside")
    _wav(folder / "secret.wav")
    return folder


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[Client]:
    with Client(served.zmq.endpoint) as c:
        yield c


@pytest.fixture()
def peer(served: Served) -> Iterator[Peer]:
    controller = Peer(served)
    assert controller.ask(f"{R}/controller/register") == ["127.0.0.1", controller.port]
    yield controller
    controller.ask(f"{R}/controller/unregister")
    controller.close()


def _refusal(client: Client, **fields: Any) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        client.generate(seed=1, timeout=60, **{**TINY, **fields})
    return caught.value


def _same_answer(error: RemoteError) -> tuple[Any, ...]:
    return error.code, error.message, error.field, error.header.get("value"), error.header.get("accepted")


# ---- audio prompt paths ------------------------------------------------------------------------------------


def test_a_path_outside_gets_one_answer_whether_or_not_a_file_is_there_over_zeromq(client: Client,
                                                                                   outside: Path) -> None:
    # strength 0 hands back the prompt's own audio: a file read here would go back to the client
    path = outside / "maybe.wav"
    missing = _refusal(client, audio_prompt_path=str(path), audio_prompt_strength=0.0)
    _wav(path)
    present = _refusal(client, audio_prompt_path=str(path), audio_prompt_strength=0.0)
    assert _same_answer(missing) == _same_answer(present)
    assert missing.code == "bad_request" and missing.field == "audio_prompt_path"
    assert missing.header["accepted"] == OUTSIDE
    # nor do other spellings of a place outside tell more
    for value in (str(outside / "secret.wav"), "secret.wav", "../../etc/passwd", str(outside / "nowhere" / "x.wav"),
                  "~/nothing-here.wav", "\0"):
        error = _refusal(client, audio_prompt_path=value)
        assert (error.code, error.field, error.header["accepted"]) == ("bad_request", "audio_prompt_path", OUTSIDE)


def test_a_symlink_in_the_inbox_that_points_out_is_refused(served: Served, client: Client, outside: Path) -> None:
    inbox = served.service.inbox
    link = inbox / "link-out.wav"
    link.symlink_to(outside / "secret.wav")
    folder_link = inbox / "folder-out"
    folder_link.symlink_to(outside, target_is_directory=True)
    dangling = inbox / "dangling.wav"
    dangling.symlink_to(outside / "not-there.wav")
    try:
        for path in (link, folder_link / "secret.wav", dangling):
            error = _refusal(client, audio_prompt_path=str(path), audio_prompt_strength=0.0)
            assert (error.code, error.field, error.header["accepted"]) == ("bad_request", "audio_prompt_path", OUTSIDE)
    finally:
        for made in (link, folder_link, dangling):
            made.unlink()


def test_a_file_in_the_inbox_is_an_audio_prompt(served: Served, client: Client) -> None:
    hello = client.hello()
    inbox = Path(hello["inbox"])
    assert inbox == served.service.inbox and inbox.is_dir()
    dropped = _wav(inbox / "dropped.wav")
    reply = client.generate(seed=5, audio_prompt_path=str(dropped), audio_prompt_strength=0.3, timeout=120, **TINY)
    assert reply.samples[0].wav is not None
    # a link inside the inbox to another file of it is inside too, and so is a file of the store
    inner = inbox / "again.wav"
    inner.symlink_to(dropped)
    try:
        assert client.generate(seed=5, audio_prompt_path=str(inner), audio_prompt_strength=0.3, timeout=120,
                               **TINY).samples[0].render_key == reply.samples[0].render_key
    finally:
        inner.unlink()
    stored = Path(reply.samples[0].path)
    assert client.generate(seed=6, audio_prompt_path=str(stored), audio_prompt_strength=0.3, timeout=120,
                           **TINY).samples
    # inside, the engine says what is wrong with the file
    error = _refusal(client, audio_prompt_path=str(inbox / "missing.wav"))
    assert error.code == "bad_audio" and "is not a readable file" in error.message
    (inbox / "junk.wav").write_bytes(b"RIFF but no audio")
    error = _refusal(client, audio_prompt_path=str(inbox / "junk.wav"))
    assert error.code == "bad_audio" and "is not readable audio" in error.message


def test_a_spectrogram_image_arrives_as_bytes(client: Client) -> None:
    # a Riffusion seed image: 512 mel rows, loud = dark
    pixels = np.full((512, 16), 255, np.uint8)
    pixels[400:410] = 40
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    reply = client.generate(seed=3, audio_prompt_frame=1, audio_prompt_strength=0.3, frames=[png.getvalue()],
                            timeout=120, **TINY)
    assert reply.samples[0].wav is not None
    short = io.BytesIO()
    Image.fromarray(pixels[:100]).save(short, format="PNG")
    error = _refusal(client, audio_prompt_frame=1, frames=[short.getvalue()])
    assert error.code == "bad_request" and "512 pixels high" in error.message


def test_over_osc_jobs_and_the_session_a_path_outside_gets_one_answer(served: Served, peer: Peer,
                                                                      outside: Path) -> None:
    path = outside / "session.wav"

    def job_error() -> list[Any]:
        peer.send(f"{R}/job/generate", "paths-1", *_pairs({**TINY, "audio_prompt_path": str(path),
                                                           "audio_prompt_strength": 0.0}))
        return peer.until(p.OSC_ERROR)[0]

    def session_errors() -> list[list[Any]]:
        answers = []
        for name in ("audio_prompt_path", "audio_prompt"):  # the parameter and its first name
            peer.send(f"{R}/session/set/{name}", str(path))
            assert peer.until(f"{R}/session/{name}")[0] == [""]  # refused: the control snaps back
            answers.append(peer.until(p.OSC_ERROR)[0])
        return answers

    try:
        missing = [job_error(), *session_errors()]
        _wav(path)
        present = [job_error(), *session_errors()]
        assert missing == present
        for _id, code, message in missing:
            assert code == "bad_request" and OUTSIDE in message
        assert served.osc.session.params["audio_prompt_path"] == ""
        # a file in the inbox is taken
        dropped = _wav(served.service.inbox / "session.wav")
        peer.send(f"{R}/session/set/audio_prompt", str(dropped))
        assert peer.until(f"{R}/session/audio_prompt_path")[0] == [str(dropped)]
        assert served.osc.session.params["audio_prompt_path"] == str(dropped)
    finally:
        served.osc.session.params["audio_prompt_path"] = ""


def test_allowed_folders_unit(tmp_path: Path) -> None:
    allowed_dir = tmp_path / "allowed"
    (allowed_dir / "sub").mkdir(parents=True)
    _wav(allowed_dir / "sub" / "a.wav")
    allowed = AllowedFolders([allowed_dir, tmp_path / "not-made-yet"])
    fd, real = allowed.open("audio_prompt_path", str(allowed_dir / "sub" / "a.wav"))
    try:
        assert real == (allowed_dir / "sub" / "a.wav").resolve()
    finally:
        os.close(fd)
    for value in (str(tmp_path / "elsewhere.wav"), str(allowed_dir / ".." / "allowed" / "sub" / "a.wav"), "a.wav"):
        with pytest.raises(RequestError) as caught:
            allowed.resolve("audio_prompt_path", value)
        assert caught.value.accepted == OUTSIDE


# ---- models by id ------------------------------------------------------------------------------------------


def test_a_model_folder_over_the_network_is_refused_while_its_id_works(served: Served, client: Client,
                                                                        peer: Peer, tiny_dd_root: Path) -> None:
    folder = str(tiny_dd_root / "tiny-dd")
    for model in (folder, f"dance-diffusion:{folder}"):
        error = _refusal(client, model=model)
        assert error.code == "unknown_model" and "tiny-dd" in error.message
        with pytest.raises(RemoteError) as caught:
            client.capabilities(model)
        assert caught.value.code == "unknown_model"
        peer.send(f"{R}/session/set/model", model)
        assert peer.until(f"{R}/session/model")[0] == ["tiny-dd"]  # snaps back
        assert peer.until(p.OSC_ERROR)[0][1] == "unknown_model"
        peer.send(f"{R}/models/capabilities", model)
        assert peer.until(p.OSC_ERROR)[0][1] == "unknown_model"
    # the same model by its id
    assert client.capabilities("tiny-dd")["family"] == "dance-diffusion"
    assert client.generate(seed=2, timeout=120, **TINY).samples
    assert served.osc.session.params["model"] == "tiny-dd"


# ---- serve --allow-path and serve --model FOLDER -----------------------------------------------------------


def test_serve_allow_path_adds_a_folder(tiny_dd_root: Path, tmp_path: Path, outside: Path) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    _wav(samples / "break.wav")
    _wav(tmp_path / "beside.wav")
    home = tmp_path / "home"
    home.mkdir()
    engine = spawn_engine(tiny_dd_root, home, "--zmq", "tcp://127.0.0.1:*", "--events", "off", "--osc", "off",
                          "--prerender", "0", "--allow-path", str(samples))
    try:
        with Client(engine.zmq) as client:
            # the inbox is made in the data folder (beside the store) and named in hello
            assert client.hello()["inbox"] == str((home / "inbox").resolve()) and (home / "inbox").is_dir()
            tiny = {**TINY, "seed": 4, "audio_prompt_strength": 0.3}
            assert client.generate(audio_prompt_path=str(samples / "break.wav"), timeout=120, **tiny).samples
            for refused in (tmp_path / "beside.wav", outside / "secret.wav"):
                with pytest.raises(RemoteError) as caught:
                    client.generate(audio_prompt_path=str(refused), timeout=60, **tiny)
                assert caught.value.header.get("accepted") == OUTSIDE
    finally:
        engine.process.terminate()
        engine.process.wait(60)


def test_serve_allow_path_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    status = main(["serve", "--zmq", "tcp://127.0.0.1:*", "--osc", "off", "--allow-path", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert status == 2 and "allow-path=" in err and "expected an existing folder" in err, err
    assert time.monotonic() - started < 30


def test_serve_model_folder_is_listed_under_an_id_that_clients_use(tiny_dd_root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tiny_dd_root / "tiny-dd", elsewhere / "tiny-dd")  # a second folder of that name
    home = tmp_path / "home"
    home.mkdir()
    engine = spawn_engine(tiny_dd_root, home, "--zmq", "tcp://127.0.0.1:*", "--events", "off", "--osc", "off",
                          "--prerender", "0", "--model", str(elsewhere / "tiny-dd"))
    try:
        assert "default_model tiny-dd-2" in engine.text()
        with Client(engine.zmq) as client:
            assert client.hello()["default_model"] == "tiny-dd-2"
            listed = {m["id"]: m["path"] for m in client.models()}
            assert listed["tiny-dd-2"] == str((elsewhere / "tiny-dd").resolve()) and "tiny-dd" in listed
            assert client.generate(timeout=120, **{**TINY, "model": "tiny-dd-2", "seed": 4}).samples
            assert client.generate(timeout=120, **{**TINY, "model": None, "seed": 4}).samples  # the default
            with pytest.raises(RemoteError) as caught:
                client.generate(timeout=60, **{**TINY, "model": str(elsewhere / "tiny-dd")})
            assert caught.value.code == "unknown_model"
    finally:
        engine.process.terminate()
        engine.process.wait(60)
