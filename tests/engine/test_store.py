"""The render store: content addressing, history, recall, atomic writes that survive crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopbridge.engine import AudioPrompt, GenerateRequest, Kind, Render, StoreError
from loopbridge.engine.store import RenderStore, StoredSample

from tests.store_files import unreadable_store_files


def _render(seed: int = 0, frames: int = 4410, prompt: str = "kick", **fields) -> Render:
    request = GenerateRequest(prompt=prompt, seed=seed, **fields)
    audio = np.random.default_rng(seed).uniform(-0.5, 0.5, (2, frames)).astype(np.float32)
    return Render(key=request.render_key("w"), audio=audio, sample_rate=44100, request=request, model_digest="w",
                  info={"class": "kick", "root_note": 36})


def test_render_round_trip_and_history(tmp_path: Path) -> None:
    store = RenderStore(tmp_path)
    first, second = _render(1), _render(2, prompt="snare")
    store.put_render(first)
    time.sleep(0.01)
    store.put_render(second)
    store.put_render(first)  # idempotent
    back = store.get_render(first.key)
    assert back is not None
    np.testing.assert_array_equal(back.audio, first.audio)  # float32 WAV: bit exact
    assert back.sample_rate == 44100 and back.info == {"class": "kick", "root_note": 36}
    assert back.request == first.request
    assert [e.key for e in store.history()] == [second.key, first.key]
    assert store.history(model="nope") == []
    assert store.find_render(first.key[:8]) == first.key
    assert store.find_render("zz") is None
    assert store.stats()["renders"] == 2


def test_audio_prompt_is_kept_so_a_render_can_be_recalled_whole(tmp_path: Path) -> None:
    store = RenderStore(tmp_path)
    prompt = AudioPrompt(np.linspace(-0.5, 0.5, 1000, dtype=np.float32)[None], 22050)
    render = _render(3, audio_prompt=prompt, audio_prompt_strength=0.3)
    store.put_render(render)
    again = RenderStore(tmp_path).get_render(render.key)
    assert again is not None and again.request.audio_prompt == prompt
    assert again.request.render_key("w") == render.key


def test_conformed_files(tmp_path: Path) -> None:
    store = RenderStore(tmp_path)
    render = _render(4)
    store.put_render(render)
    sample = StoredSample(key="c" * 64, path=Path("anywhere.wav"), render_key=render.key, kind=Kind.ONE_SHOT,
                          tempo_bpm=128.0, beats=0.0, root_note=36, loop_start=None, loop_end=None, sample_rate=48000,
                          filename="kick_one-shot_s4v0.wav", info={"part": ""}, created_at=0.0)
    audio = np.zeros((2, 480), np.float32)
    import io

    buffer = io.BytesIO()
    sf.write(buffer, audio.T, 48000, format="WAV", subtype="PCM_24")
    stored = store.put_conformed(sample, buffer.getvalue(), {"tempo_bpm": 128.0})
    assert stored.path.is_file() and stored.path.is_relative_to(tmp_path) and stored.created_at > 0
    found, renders = store.lookup([sample.key, "d" * 64], [render.key, "e" * 64])
    assert set(found) == {sample.key} and renders == {render.key}
    back = found[sample.key]
    assert back.tempo_bpm == 128.0 and back.filename == "kick_one-shot_s4v0.wav" and back.path == stored.path
    assert back.render_key == render.key and back.root_note == 36
    stored.path.unlink()
    assert store.lookup([sample.key], [])[0] == {}  # a vanished file is a miss, not a crash


def test_failed_write_leaves_no_partial_file_and_no_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RenderStore(tmp_path)
    render = _render(5)

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StoreError, match="No space left"):
        store.put_render(render)
    monkeypatch.undo()
    assert not store.has_render(render.key)
    assert list((tmp_path / "renders").rglob("*.wav")) == []
    assert list((tmp_path / "tmp").iterdir()) == []
    store.put_render(render)  # and the store still works
    assert store.get_render(render.key) is not None


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, numpy as np, os
    from loopbridge.engine import GenerateRequest, Render
    from loopbridge.engine.store import RenderStore
    store = RenderStore(sys.argv[1])
    request = GenerateRequest(prompt="huge", seed=1)
    audio = np.random.default_rng(0).uniform(-1, 1, (2, 30_000_000)).astype(np.float32)  # 240 MB
    print("writing", flush=True)
    store.put_render(Render(key=request.render_key("w"), audio=audio, sample_rate=44100, request=request,
                            model_digest="w"))
    print("finished", flush=True)
    """
)


def test_killed_in_the_middle_of_a_write(tmp_path: Path) -> None:
    store = RenderStore(tmp_path)
    kept = _render(6)
    store.put_render(kept)
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
        deadline = time.monotonic() + 60
        while not any((tmp_path / "tmp").iterdir()):  # the temp file exists: the write is under way
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    reopened = RenderStore(tmp_path)  # a new process's view: the dead writer's temp file is swept
    assert list((tmp_path / "tmp").iterdir()) == []
    assert [e.key for e in reopened.history()] == [kept.key], "no dangling row"
    assert unreadable_store_files(reopened.root) == []
    assert len(list((tmp_path / "renders").rglob("*.wav"))) == 1, "no partial file under a final name"


def test_repair_drops_rows_without_files_and_files_without_rows(tmp_path: Path) -> None:
    store = RenderStore(tmp_path)
    gone, kept = _render(7), _render(8)
    store.put_render(gone)
    store.put_render(kept)
    next((tmp_path / "renders").rglob(f"{gone.key}.wav")).unlink()
    orphan = tmp_path / "renders" / "ff" / ("f" * 64 + ".wav")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x")
    assert store.repair(min_age_s=3600) == {"rows": 1, "files": 0}  # a fresh orphan may be a write in flight
    assert store.repair(min_age_s=0) == {"rows": 0, "files": 1}
    assert [e.key for e in store.history()] == [kept.key]


def test_concurrent_writers(tmp_path: Path) -> None:
    store = RenderStore(tmp_path)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(10):
                store.put_render(_render(offset * 100 + i, frames=256))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.stats()["renders"] == 40 and unreadable_store_files(store.root) == []


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot be created"):
        RenderStore(blocker / "store")
