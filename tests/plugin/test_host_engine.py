"""The built VST3 in a real host (pedalboard) against a real ``loopbridge serve``.

Parameters are set as a host sets them, MIDI is sent, and the output is compared with the engine's
own files: Generate plays the generated sample, a Variation change plays a different (pre-rendered)
sample, the host's tempo and sample rate reach the engine, and with the engine killed the plugin
still renders what it has.

pedalboard's play head always reports 120 BPM in 4/4, so "the host tempo reaches the engine" is
checked as: the engine's file is tagged 120 BPM and is exactly the requested bars long at that
tempo, at the sample rate the host ran at (44.1 kHz here, not the engine's 48 kHz default). For a
meter other than 4/4 the same built bundle runs in ``loopbridge-test-host`` (plugin/tools/TestHost.cpp),
a JUCE VST3 host whose play head says what the test asks, and the engine's loop is checked against
tests/data/host_meters.json. Other tempos and meters in the request header, and the re-conform on a
new tempo, Pitch or rate, are checked in plugin/tests/EngineClientTests.cpp against a scripted engine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .conftest import load_vst3
from .engine_process import JOB_ERROR, RunningEngine, start_engine
from .plugin_state import PluginState, plugin_blob_from_raw_state, read_state, read_wav, write_state

pedalboard = pytest.importorskip("pedalboard", reason="pedalboard hosts the VST3 in these tests")

HOST_RATE = 44100
BLOCK = 512
#: meters and bar counts with the length the engine must make of them (engine/host.py's tests read it too)
HOST_METERS = Path(__file__).resolve().parents[1] / "data" / "host_meters.json"


#: the tiny Dance Diffusion checkpoint tests/conftest.py builds; two steps keep a render short, and
#: one beat at pedalboard's 120 BPM (0.5 s) is within its longest render (1.024 s)
MODEL = "tiny-dd"
STEPS = 2
LENGTH = "1 beat"
#: the engine's request log: the plugin's background fetch of a neighbouring variation, answered
PREFETCH_ANSWERED = re.compile(r" variation id=prefetch-\d+ ok 1 sample")
#: ... and a variation the user's knob asked for (not fetched ahead)
VARIATION_ASKED = re.compile(r" variation id=variation-\d+ ")


@pytest.fixture(params=["in-process", "cluster"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RunningEngine]:
    """A real ``loopbridge serve`` in its own process: free loopback ports, its own store, the tiny model;
    rendering in process, or on a replica of the session's Ray cluster (``serve --cluster``)."""
    tiny_dd_root: Path = request.getfixturevalue("tiny_dd_root")
    head = request.getfixturevalue("ray_head") if request.param == "cluster" else None
    running = start_engine(tmp_path, tiny_dd_root, ["--model", MODEL], cluster=head)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture()
def plugin(vst3_path: Path, engine: RunningEngine, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOOPBRIDGE_ENDPOINT", engine.endpoint)
    monkeypatch.delenv("DISPLAY", raising=False)
    loaded = load_vst3(vst3_path)
    state = read_state(loaded)
    state.set_session(prompt="punchy kick", model=MODEL, endpoint=engine.endpoint)
    write_state(loaded, state)
    loaded.quality_steps = STEPS
    loaded.length = LENGTH
    return loaded


def note(pitch: int, start_s: float = 0.0, length_s: float = 0.3) -> list:
    return [(bytes([0x90, pitch, 127]), start_s), (bytes([0x80, pitch, 0]), start_s + length_s)]


def render(plugin, midi: list, duration_s: float) -> np.ndarray:
    return plugin(midi, duration=duration_s, sample_rate=HOST_RATE, num_channels=2, buffer_size=BLOCK, reset=False)


def wait_for_sample(plugin, engine: RunningEngine, previous_key: str | None,
                    timeout_s: float = 300.0) -> dict[str, str]:
    """Renders silence (the host keeps calling processBlock) until the plugin holds a new sample."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        render(plugin, [], 0.05)
        attributes = read_state(plugin).sample_attributes
        if attributes and attributes.get("key") != previous_key:
            return attributes
        failed = JOB_ERROR.search(engine.log())
        if failed:
            pytest.fail(f"the engine refused the plugin's request:{failed.group(0)}\n{engine.log()}")
        time.sleep(0.05)
    pytest.fail(f"no sample from the engine within {timeout_s} s:\n{engine.log()}")


def engine_file(engine: RunningEngine, attributes: dict[str, str]) -> tuple[np.ndarray, int, bytes]:
    """The engine's own conformed file for a sample the plugin received (its reply names the path)."""
    path = Path(attributes.get("path", ""))
    assert path.is_file(), f"the engine's file {path} is not there: {attributes}"
    data = path.read_bytes()
    audio, rate = read_wav(data)
    return audio, rate, data


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size)
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def press_generate(plugin) -> None:
    plugin.generate = True
    render(plugin, [], 0.02)
    plugin.generate = False


def test_generate_plays_the_engines_sample(plugin, engine: RunningEngine) -> None:
    plugin.kind = "One-shot"
    press_generate(plugin)
    attributes = wait_for_sample(plugin, engine, None)
    audio, rate, data = engine_file(engine, attributes)
    assert rate == HOST_RATE, "conformed to the host's sample rate"
    assert read_state(plugin).sample_wav == data, "the plugin holds the engine's file, byte for byte"

    root = int(attributes.get("root_note", "60"))
    out = render(plugin, note(root), max(1.0, audio.shape[1] / rate + 0.2))
    assert correlation(out[0, : audio.shape[1]], audio[0]) > 0.99


def wait_for_log(plugin, engine: RunningEngine, pattern: re.Pattern, timeout_s: float = 300.0) -> None:
    """Renders silence until the engine's log has a line matching ``pattern``."""
    deadline = time.monotonic() + timeout_s
    while not pattern.search(engine.log_all()):
        if time.monotonic() > deadline:
            pytest.fail(f"no {pattern.pattern!r} in the engine's log within {timeout_s} s:\n{engine.log()}")
        render(plugin, [], 0.05)
        time.sleep(0.05)


def test_variation_change_plays_a_different_pre_rendered_sample(plugin, engine: RunningEngine) -> None:
    press_generate(plugin)
    first = wait_for_sample(plugin, engine, None)
    first_audio, _, _ = engine_file(engine, first)
    # Variation 1 is rendered ahead and fetched in the background before the knob turns.
    wait_for_log(plugin, engine, PREFETCH_ANSWERED)
    render(plugin, [], 0.2)  # the reply, already sent, is decoded on the plugin's side

    plugin.variation = 1
    second = wait_for_sample(plugin, engine, first.get("key"))
    assert second.get("variation") == "1"
    assert not VARIATION_ASKED.search(engine.log_all()), \
        "the knob turn played what was rendered ahead, no model ran for it"
    second_audio, _, _ = engine_file(engine, second)
    assert second.get("render_key") != first.get("render_key")

    root = int(second.get("root_note", "60"))
    out = render(plugin, note(root), max(1.0, second_audio.shape[1] / HOST_RATE + 0.2))
    assert correlation(out[0, : second_audio.shape[1]], second_audio[0]) > 0.99
    assert correlation(out[0, : first_audio.shape[1]], first_audio[0]) < 0.9, "not the first variation any more"

    # Back to variation 0: served again (from the engine's store), the same audio as the first time.
    plugin.variation = 0
    again = wait_for_sample(plugin, engine, second.get("key"))
    assert again.get("render_key") == first.get("render_key")


def test_host_tempo_and_rate_reach_the_engine(plugin, engine: RunningEngine) -> None:
    plugin.kind = "Loop"
    press_generate(plugin)
    attributes = wait_for_sample(plugin, engine, None)
    audio, rate, _ = engine_file(engine, attributes)
    assert float(attributes["tempo_bpm"]) == pytest.approx(120.0)
    assert rate == HOST_RATE
    one_beat_frames = 60.0 / 120.0 * HOST_RATE  # Length "1 beat" at the host's 120 BPM
    assert audio.shape[1] == pytest.approx(one_beat_frames, abs=2)


#: a key as the engine names a sample's key in its reply ("Am", "F#")
KEY_NAME = re.compile(r"^[A-G][#b]?m?$")


def test_key_and_loudness_reach_the_engine_and_re_conform(plugin, engine: RunningEngine) -> None:
    """Key and Loudness go to the real engine with the request; a change of either is a conform of the
    stored render (the model does not run again), and the plugin keeps the engine's word on the
    sample's key (a key, or none for the tiny model's noise)."""
    plugin.kind = "Loop"
    press_generate(plugin)
    first = wait_for_sample(plugin, engine, None)
    assert first.get("key_asked", "") == "", "Key Off: none asked"
    assert float(first["loudness_lufs"]) == pytest.approx(-14.0)

    plugin.key = "A minor"
    second = wait_for_sample(plugin, engine, first.get("key"))
    assert second["render_key"] == first["render_key"], "the same render, conformed again"
    assert second["key_asked"] == "Am"
    assert KEY_NAME.match(second.get("musical_key", "")) or second.get("no_key") == "1", second

    plugin.loudness_lufs = -20.0
    third = wait_for_sample(plugin, engine, second.get("key"))
    assert third["render_key"] == first["render_key"]
    assert float(third["loudness_lufs"]) == pytest.approx(-20.0)
    assert third["key_asked"] == "Am", "the key still asked"
    log = engine.log_all()
    assert len(re.findall(r" generate id=generate-\d+ ", log)) == 1, log[-4000:]
    assert len(re.findall(r" conform id=conform-\d+ ", log)) >= 2, log[-4000:]


def test_with_the_engine_killed_it_keeps_playing(plugin, engine: RunningEngine) -> None:
    press_generate(plugin)
    attributes = wait_for_sample(plugin, engine, None)
    audio, _, _ = engine_file(engine, attributes)
    engine.kill()

    plugin.variation = 2  # a request into the void
    root = int(attributes.get("root_note", "60"))
    started = time.monotonic()
    out = render(plugin, note(root), 6.0)  # well past the heartbeat liveness (3 s)
    elapsed = time.monotonic() - started
    assert correlation(out[0, : audio.shape[1]], audio[0]) > 0.99
    assert read_state(plugin).sample_attributes.get("key") == attributes.get("key"), "still the last sample"
    assert elapsed < 120, "rendering stalled without the engine"  # liveness bound, not a speed figure


def test_unknown_model_is_reported_and_nothing_is_lost(plugin, engine: RunningEngine) -> None:
    press_generate(plugin)
    attributes = wait_for_sample(plugin, engine, None)
    state = read_state(plugin)
    state.set_session(model="no-such-model", endpoint=engine.endpoint)
    write_state(plugin, state)
    press_generate(plugin)
    for _ in range(40):
        render(plugin, [], 0.05)
    assert read_state(plugin).sample_attributes.get("key") == attributes.get("key")


def host_meter_row(numerator: int, denominator: int, bars: float, tempo_bpm: float, sample_rate: int) -> dict:
    rows = json.loads(HOST_METERS.read_text(encoding="utf-8"))["cases"]
    for row in rows:
        if (row["numerator"], row["denominator"], row["bars"], row["tempo_bpm"], row["sample_rate"]) == \
                (numerator, denominator, bars, tempo_bpm, sample_rate):
            return row
    pytest.fail(f"{HOST_METERS} has no row for {bars} bars of {numerator}/{denominator} "
                f"at {tempo_bpm} BPM, {sample_rate} Hz")


def test_a_host_meter_other_than_4_4_gives_the_tables_loop(plugin, engine: RunningEngine, vst3_path: Path,
                                                           test_host_binary: Path, tmp_path: Path) -> None:
    """One bar of 3/8 in a host whose play head says 3/8: the plugin sends the meter as it is, the
    engine makes its bar of it (1.5 quarter notes: half a bar of 3), and the loop the plugin holds
    is the table's frames long. (A bar of 3/8 at 120 BPM, 0.75 s, is within what the tiny model
    renders, 1.024 s; two bars of 6/8 or 7/8 are not.)"""
    row = host_meter_row(3, 8, 1, 120, 48000)
    plugin.kind = "Loop"
    plugin.length = "1 bar"
    state_in, state_out = tmp_path / "before.state", tmp_path / "after.state"
    state_in.write_bytes(plugin.raw_state)

    meter = f"{row['numerator']}/{row['denominator']}"
    host = subprocess.Popen(
        [str(test_host_binary), str(vst3_path), str(state_in), str(state_out), "--tempo", str(row["tempo_bpm"]),
         "--meter", meter, "--rate", str(row["sample_rate"]), "--timeout-s", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while host.poll() is None:
            failed = JOB_ERROR.search(engine.log())
            if failed:
                pytest.fail(f"the engine refused the plugin's request:{failed.group(0)}\n{engine.log()}")
            time.sleep(0.1)
    finally:
        if host.poll() is None:
            host.kill()
        stdout, stderr = host.communicate(timeout=60)
    assert host.returncode == 0, f"{stdout}\n{stderr[-3000:]}\n{engine.log()}"

    state = PluginState.from_plugin_blob(plugin_blob_from_raw_state(state_out.read_bytes()))
    attributes, wav = state.sample_attributes, state.sample_wav
    assert wav is not None, attributes
    audio, rate = read_wav(wav)
    assert rate == row["sample_rate"]
    assert audio.shape[1] == row["frames"], f"the loop for {row}"
    assert attributes.get("kind") == "loop"
    assert float(attributes["tempo_bpm"]) == pytest.approx(row["tempo_bpm"])
    assert float(attributes["beats"]) == pytest.approx(row["quarter_notes"]), "the reply's length in quarter notes"
    assert float(attributes["loop_end"]) - float(attributes["loop_start"]) == row["frames"], "it loops over all of it"
    _, _, engine_bytes = engine_file(engine, attributes)
    assert engine_bytes == wav, "the plugin holds the engine's file, byte for byte"


def test_a_file_dropped_to_fit_the_song_through_the_real_engine(engine: RunningEngine, unit_test_binary: Path,
                                                                tmp_path: Path) -> None:
    """The plugin's Fit to song path (its processor, as the editor's drop zone calls it) against this engine:
    the file's bytes in, the engine's loop out at the host's tempo and rate, then re-conformed to a new tempo
    from the store (plugin/tests/RealEngineTests.cpp). A Sonic Pi recording when installed, else a drum loop
    written here."""
    amen = Path("/usr/share/sonic-pi/samples/loop_amen.flac")
    if amen.is_file():
        source = amen
    else:
        import soundfile as sf

        from tests.engine.conform.signals import drum_pattern

        source = tmp_path / "groove.flac"
        sf.write(str(source), drum_pattern(44100, 128.0, 1).T, 44100)
    env = {**os.environ, "LOOPBRIDGE_TEST_ENGINE": engine.endpoint, "LOOPBRIDGE_TEST_FILE": str(source)}
    result = subprocess.run([str(unit_test_binary), "loopbridge-real-engine"], capture_output=True, text=True,
                            timeout=600, env=env)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    failures = [line for line in result.stdout.splitlines() if line.startswith("!!!")]
    assert result.returncode == 0, f"{summary}\n" + "\n".join(failures) + f"\n{engine.log()}"
    assert summary.endswith(" 0 failed") and not summary.startswith("0 passed"), summary
    log = engine.log_all()
    assert re.search(r" conform_file id=fit-\d+ ok 1 sample", log), log[-2000:]
    assert re.search(r" conform id=conform-\d+ ok 1 sample", log), log[-2000:]


def chords_in_c_major(sample_rate: int, tempo_bpm: float) -> np.ndarray:
    """I-IV-V-I in C major twice, a chord a beat (bass and triad, five harmonics, a plucked decay): [2, frames]."""
    beat = int(round(60.0 / tempo_bpm * sample_rate))
    t = np.arange(beat) / sample_rate
    envelope = np.minimum(1.0, t * 200.0) * np.exp(-t * 1.5)

    def note(midi: int) -> np.ndarray:
        f = 440.0 * 2.0 ** ((midi - 69) / 12.0)
        return sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 6)) * envelope

    chords = [[48, 60, 64, 67], [53, 60, 65, 69], [55, 59, 62, 67], [48, 60, 64, 67]] * 2
    mono = np.concatenate([sum(note(n) for n in chord) for chord in chords])
    mono = mono / (np.max(np.abs(mono)) * 1.25)
    return np.stack([mono, mono]).astype(np.float32)


def test_the_key_parameter_moves_a_pitched_file_through_the_real_engine(engine: RunningEngine,
                                                                         unit_test_binary: Path,
                                                                         tmp_path: Path) -> None:
    """The plugin's Key parameter against this engine (plugin/tests/RealEngineTests.cpp): chords in C
    fitted with Key D major come back in D; Key Off re-conforms them from the store to their own key."""
    import soundfile as sf

    source = tmp_path / "chords in C.wav"
    sf.write(str(source), chords_in_c_major(44100, 120.0).T, 44100)
    env = {**os.environ, "LOOPBRIDGE_TEST_ENGINE": engine.endpoint, "LOOPBRIDGE_TEST_FILE": str(source)}
    result = subprocess.run([str(unit_test_binary), "loopbridge-real-engine-key"], capture_output=True, text=True,
                            timeout=600, env=env)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    failures = [line for line in result.stdout.splitlines() if line.startswith("!!!")]
    assert result.returncode == 0, f"{summary}\n" + "\n".join(failures) + f"\n{engine.log()}"
    assert summary.endswith(" 0 failed") and not summary.startswith("0 passed"), summary
    log = engine.log_all()
    assert len(re.findall(r" conform_file id=fit-\d+ ok 1 sample", log)) == 1, log[-2000:]
    assert re.search(r" conform id=conform-\d+ ok 1 sample", log), log[-2000:]
