"""The built VST3 inside a real host (pedalboard), without an engine: it loads headless, exposes its
parameters, plays a sample from MIDI (pitched relative to its root), loops it in Loop mode, keeps
it across save and reopen, and renders without stalling when no engine is reachable.

pedalboard hosts VST3 instruments on Linux; its play head reports 120 BPM, 4/4, transport stopped.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from .conftest import load_vst3
from .plugin_state import read_state, read_wav, tagged_wav, write_state

pedalboard = pytest.importorskip("pedalboard", reason="pedalboard hosts the VST3 in these tests")

SAMPLE_RATE = 48000


def closed_endpoint() -> str:
    """A loopback TCP endpoint on which nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


@pytest.fixture()
def plugin(vst3_path: Path, monkeypatch: pytest.MonkeyPatch):
    # No engine for these tests: point the plugin at a port where nothing listens.
    monkeypatch.setenv("LOOPBRIDGE_ENDPOINT", closed_endpoint())
    monkeypatch.delenv("DISPLAY", raising=False)  # the processor must not need an X server
    return load_vst3(vst3_path)


def note(pitch: int, start_s: float = 0.0, length_s: float = 0.5, velocity: int = 127) -> list:
    """A note as pedalboard takes MIDI: (raw bytes, time in seconds)."""
    return [(bytes([0x90, pitch, velocity]), start_s), (bytes([0x80, pitch, 0]), start_s + length_s)]


def render(plugin, midi: list, duration_s: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    return plugin(midi, duration=duration_s, sample_rate=sample_rate, num_channels=2, buffer_size=512, reset=False)


def load_sample(plugin, wav: bytes, **attributes: str) -> None:
    state = read_state(plugin)
    state.set_sample(wav, **attributes)
    write_state(plugin, state)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size)
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def decaying_tone(frequency_hz: float, duration_s: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(duration_s * sample_rate)) / sample_rate
    rng = np.random.default_rng(3)
    tone = 0.6 * np.sin(2 * np.pi * frequency_hz * t) * np.exp(-t * 3) + 0.05 * rng.standard_normal(t.size)
    return np.stack([tone, -tone]).astype(np.float32)


def test_loads_headless_as_an_instrument_with_its_parameters(plugin) -> None:
    assert plugin.is_instrument
    names = set(plugin.parameters)
    # pedalboard names parameters after their name and unit label
    assert {"generate", "variation", "morph", "seed", "quality_steps", "length", "kind", "pitch_st",
            "audio_prompt_strength", "gain_db", "key", "loudness_lufs"} <= names, sorted(names)
    plugin.variation = 5
    plugin.kind = "Loop"
    plugin.length = "2 bars"
    assert plugin.variation == 5
    assert read_state(plugin).parameter("variation") == 5
    assert read_state(plugin).parameter("kind") == 1
    assert read_state(plugin).parameter("length") == 3
    # Key and Loudness: saved in the project like the others
    assert plugin.key == "Off" and plugin.loudness_lufs == pytest.approx(-14.0)
    plugin.key = "F# minor"
    plugin.loudness_lufs = -20.0
    assert read_state(plugin).parameter("key") == 19
    assert read_state(plugin).parameter("loudness") == pytest.approx(-20.0)


def test_midi_note_plays_the_sample_at_its_root(plugin) -> None:
    source = decaying_tone(220.0, 0.8)
    wav = tagged_wav(source, SAMPLE_RATE, tempo_bpm=120, beats=2, root_note=57)
    load_sample(plugin, wav)
    played, _ = read_wav(wav)

    out = render(plugin, note(57, start_s=0.0, length_s=0.2), 1.0)
    assert out.shape == (2, SAMPLE_RATE)
    frames = played.shape[1]
    # one-shots ring out past the note-off, sample for sample
    assert correlation(out[0, :frames], played[0]) > 0.999
    assert correlation(out[1, :frames], played[1]) > 0.999
    assert np.max(np.abs(out[:, frames + 64 :])) < 1e-6


def test_other_notes_pitch_the_sample_by_semitones(plugin) -> None:
    source = decaying_tone(200.0, 1.0)
    load_sample(plugin, tagged_wav(source, SAMPLE_RATE, tempo_bpm=120, beats=2, root_note=60))
    out = render(plugin, note(72), 0.5)  # an octave up: twice as fast
    played, _ = read_wav(tagged_wav(source, SAMPLE_RATE))
    expected = played[0, ::2][: out.shape[1]]
    assert correlation(out[0, : expected.size], expected) > 0.99
    spectrum = np.abs(np.fft.rfft(out[0, :12000]))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / 12000
    assert abs(peak_hz - 400.0) < 8.0


def test_loop_mode_loops_the_sample_while_the_note_is_held(plugin) -> None:
    # pedalboard's transport is stopped, so Loop mode plays from a held note (free-running).
    loop_s = 0.5
    source = decaying_tone(300.0, loop_s)
    wav = tagged_wav(source, SAMPLE_RATE, tempo_bpm=120, beats=1, root_note=60, loop=True)
    load_sample(plugin, wav)
    plugin.kind = "Loop"
    out = render(plugin, note(64, 0.0, 1.6), 2.0)
    played, _ = read_wav(wav)
    n = played.shape[1]
    for k in range(3):
        assert correlation(out[0, k * n : (k + 1) * n], played[0]) > 0.999, f"pass {k} of the loop"
    assert np.max(np.abs(out[:, int(1.62 * SAMPLE_RATE) :])) < 1e-6, "released with the note"


def test_gain_parameter_scales_the_output(plugin) -> None:
    load_sample(plugin, tagged_wav(decaying_tone(220.0, 0.5), SAMPLE_RATE, tempo_bpm=120, beats=1))
    loud = render(plugin, note(60), 0.5)
    plugin.gain_db = -6.0
    render(plugin, [], 0.1)  # the gain glides over 20 ms
    quiet = render(plugin, note(60), 0.5)
    ratio = np.max(np.abs(quiet[:, 2000:])) / np.max(np.abs(loud[:, 2000:]))
    assert ratio == pytest.approx(10 ** (-6 / 20), rel=0.02)


def test_sample_prompts_and_knobs_survive_save_and_reopen(vst3_path: Path, plugin, monkeypatch) -> None:
    wav = tagged_wav(decaying_tone(330.0, 0.6), SAMPLE_RATE, tempo_bpm=128, beats=2, root_note=62)
    state = read_state(plugin)
    state.set_session(prompt="tight snare, vinyl", morph_prompt="rimshot", model="default")
    state.set_sample(wav, key="k1", render_key="r1", variation="3", kind="one-shot", root_note="62")
    write_state(plugin, state)
    plugin.variation = 3
    plugin.seed = 1234
    plugin.morph = 0.4
    first = render(plugin, note(62), 0.8)
    saved = plugin.raw_state

    reopened = load_vst3(vst3_path)
    reopened.raw_state = saved
    again = render(reopened, note(62), 0.8)
    assert np.allclose(first, again, atol=1e-6)
    restored = read_state(reopened)
    assert restored.session.get("prompt") == "tight snare, vinyl"
    assert restored.session.get("morph_prompt") == "rimshot"
    assert restored.sample_wav == wav
    assert restored.sample_attributes["render_key"] == "r1"
    assert reopened.variation == 3
    assert reopened.seed == 1234
    assert reopened.morph == pytest.approx(0.4, abs=0.01)


def test_without_an_engine_it_renders_what_it_has_without_stalling(plugin) -> None:
    wav = tagged_wav(decaying_tone(250.0, 0.5), SAMPLE_RATE, tempo_bpm=120, beats=1)
    load_sample(plugin, wav)
    plugin.generate = True  # asks an engine that is not there
    plugin.generate = False
    played, _ = read_wav(wav)

    result: dict[str, np.ndarray] = {}
    worker = threading.Thread(target=lambda: result.setdefault("out", render(plugin, note(60), 5.0)), daemon=True)
    worker.start()
    worker.join(timeout=120)  # a liveness bound, not a speed requirement: a stalled plugin never returns
    assert not worker.is_alive(), "the plugin stalled with no engine"
    out = result["out"]
    assert correlation(out[0, : played.shape[1]], played[0]) > 0.999


def test_state_that_is_not_ours_is_ignored(plugin) -> None:
    load_sample(plugin, tagged_wav(decaying_tone(220.0, 0.3), SAMPLE_RATE, tempo_bpm=120, beats=1))
    before = read_state(plugin).sample_wav
    broken = read_state(plugin)
    broken.root.tag = "SOMETHING_ELSE"
    write_state(plugin, broken)
    assert read_state(plugin).sample_wav == before

