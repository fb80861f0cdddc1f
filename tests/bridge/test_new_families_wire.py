"""The user's audio reaches the new families' tasks as a file on the command line and as bytes on the wire
(never a path from the network), and comes back conformed like any other sample."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from loopbridge.bridge.cli import main
from loopbridge.bridge.client import Client, RemoteError

from tests.bridge.conftest import Served, start_served, stop_served
from tests.engine.models.test_new_families import TEMPO, loop_source
from tests.engine.models.tiny_new_families import build_ace_step, build_stable_audio_3

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("new-families-wire")
    build_stable_audio_3(folder)
    build_ace_step(folder)
    return folder


@pytest.fixture(scope="module")
def served(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    instance = start_served(models, tmp_path_factory.mktemp("engine"), default_model="tiny-ace-step")
    yield instance
    stop_served(instance)


def _wav(rate: int, bars: float = 2.0) -> bytes:
    source = loop_source(rate, bars)
    buffer = io.BytesIO()
    sf.write(buffer, source.audio.T, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def test_bytes_in_a_frame_are_replaced_bar_by_bar(served: Served) -> None:
    with Client(served.zmq.endpoint) as client:
        reply = client.generate(frames=[_wav(48000)], audio_prompt_frame=1, model="tiny-ace-step", task="replace",
                                replace_from_bar=1, replace_to_bar=2, kind="loop", prompt="snare fill", steps=2,
                                tempo_bpm=TEMPO, meter_numerator=4, meter_denominator=4, bars=2, timeout=300)
        (sample,) = reply.samples
        assert sample.tempo_bpm == pytest.approx(TEMPO) and sample.wav is not None
        audio, rate = sf.read(io.BytesIO(sample.wav), dtype="float32", always_2d=True)
        assert (rate, audio.shape) == (48000, (96000, 2))
        render = served.engine.recall(sample.render_key)
        assert render is not None and render.request.task.value == "replace"
        source = loop_source(48000, 2.0).audio
        np.testing.assert_array_equal(render.audio[:, :48000], source[:, :48000])  # the first bar, to the sample
        # a task the model lacks is refused by name; a path from the network is not read
        with pytest.raises(RemoteError, match="task='extract'"):
            client.generate(frames=[_wav(44100)], audio_prompt_frame=1, model="tiny-stable-audio-3", task="extract",
                            track="drums", kind="loop", tempo_bpm=TEMPO, steps=2, timeout=60)
        with pytest.raises(RemoteError, match="audio_prompt_path"):
            client.generate(audio_prompt_path="/etc/passwd", model="tiny-ace-step", task="transform", kind="loop",
                            tempo_bpm=TEMPO, steps=2, timeout=60)


def test_the_command_line_takes_a_file(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LOOPBRIDGE_MODELS", str(models))
    monkeypatch.setenv("LOOPBRIDGE_HOME", str(tmp_path / "home"))
    source = tmp_path / "my-loop.wav"
    source.write_bytes(_wav(44100, bars=1.0))
    code = main(["generate", "rolling bass", "--model", "tiny-stable-audio-3", "--task", "continue",
                 "--continue-bars", "1", "--audio-prompt", str(source), "--bpm", str(TEMPO), "--steps", "2",
                 "--seed", "4", "--out", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    (written,) = [Path(line) for line in out.splitlines() if line.endswith(".wav")]
    audio, rate = sf.read(written, dtype="float32", always_2d=True)
    assert (rate, audio.shape) == (48000, (96000, 2))  # the loop's bar and the new one, at 240 BPM
    assert main(["generate", "--model", "tiny-stable-audio-3", "--task", "replace", "--replace", "1-2",
                 "--audio-prompt", str(source), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "FROM:TO" in capsys.readouterr().err
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "tasks on your audio (--task with --audio-prompt): continue, replace, transform, extract, add; tempo, " \
           "key and meter as conditions" in listing


def test_osc_jobs_take_a_task_on_a_file_in_the_inbox(served: Served) -> None:
    from loopbridge.bridge import protocol as p

    from tests.bridge.test_osc import Peer

    inside = served.service.inbox / "groove.wav"
    inside.write_bytes(_wav(48000, bars=1.0))
    peer = Peer(served)
    try:
        assert peer.ask(f"{p.OSC_ROOT}/controller/register") == ["127.0.0.1", peer.port]
        peer.send(f"{p.OSC_ROOT}/job/generate", "t1", "model", "tiny-ace-step", "task", "add", "track", "bass",
                  "audio_prompt_path", str(inside), "kind", "loop", "tempo_bpm", TEMPO, "steps", 2, "prerender", 0)
        args, _ = peer.until(f"{p.OSC_ROOT}/job/sample", 300)
        assert args[0] == "t1" and args[3] == "loop" and args[4] == pytest.approx(TEMPO)
        assert sf.info(args[2]).frames == 48000  # the source's one bar at 240 BPM
    finally:
        peer.close()
