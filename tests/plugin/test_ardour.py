"""The built VST3 in Ardour 7 (a real DAW, headless) against a real ``loopbridge serve``.

One session is made and checked by the tests of this module, in steps that each run in a process
of their own (tests/plugin/ardour/*.lua):

1. ``record.lua`` (``ardour7-lua``, the engine running): a 48 kHz session at 128 BPM, the plugin on
   two MIDI tracks, Loop mode (2 bars) on one and One-shot on the other, Generate pressed through
   its parameter on both; saved once the engine has answered both.
2. The engine is stopped. The saved session's plugin states must hold the engine's files, byte for
   byte. The test adds what Ardour's own import would (its GUI does it; its Lua cannot): the
   engine's loop copied into the session's audio files, one mono file a channel, and a region of
   the file's whole length at bar 2 of an audio track.
3. ``arrange.lua`` reopens the session without the engine, reads back the imported region on
   Ardour's own grid, writes a note at bar 2 on the one-shot track and saves one snapshot per track.
4. ``render.lua`` renders each snapshot (bars 1-5, 32-bit float at the session rate, no dither) in
   a process of its own, from the saved session, with no engine anywhere. (``ardour7-export`` would
   do the same but, in 7.3, starts before the MIDI regions are read: its export has no notes.)

Ardour 7.3 has faults of its own in headless runs: a segfault or a glibc abort (here, in 20 runs of
this module, 28 of 88 render attempts crashed, 16 during the export and 12 while closing the
session after it; none of the 40 record and arrange runs did), and rarely one garbage sample every 2048 frames in one
channel. A step that crashes is run again, at most ``HOST_ATTEMPTS`` times, and every rendered WAV
is checked for such garbage (and rendered again when it has some); every retry is printed in the
test's output and reported as a warning.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from .engine_process import JOB_ERROR, RunningEngine, start_engine
from .plugin_state import PluginState, read_wav, unpack_binary_xml

soundfile = pytest.importorskip("soundfile", reason="soundfile reads Ardour's 32-bit float exports")

ARDOUR_LUA = "ardour7-lua"
VST3_SCANNER = Path("/usr/lib/ardour7/ardour-vst3-scanner")
#: the Ardour these steps were written against (Debian 12's ``ardour`` 1:7.3.0+ds0-1); its Lua API
#: changes between major versions
ARDOUR_VERSION = re.compile(r"version 7\.3\.")
ARDOUR_VERSION_TEXT = "7.3"
LUA_DIR = Path(__file__).resolve().parent / "ardour"

RATE = 48000
TEMPO_BPM = 128
#: a 4/4 bar at 128 BPM and 48 kHz: 4 * 60 / 128 * 48000 frames, a whole number
BAR_FRAMES = 90000
LOOP_BARS = 2
#: the plugin's Length parameter, "2 bars": choice 3 of 7, as the VST3 value Ardour sets (k / 6)
LOOP_LENGTH_VALUE = 3 / 6
#: what is exported: bars 1-5 (two passes of the loop)
RANGE_BARS = 4
#: the one-shot's note and the imported loop start on bar 2
START_BAR = 2
START_FRAME = (START_BAR - 1) * BAR_FRAMES
#: Ardour's timeline unit (its TempoMap's superclocks-per-second in 7.x)
SUPERCLOCKS_PER_SECOND = 282240000
#: about a third of Ardour 7.3's headless renders crash: six tries leave about one in a thousand failing
HOST_ATTEMPTS = 6
#: the engine's answers to the two Generate presses (not the variations fetched ahead)
GENERATE_ANSWERED = re.compile(r" generate id=generate-\d+ ok 1 sample")
#: how long the engine may take to answer both (the default model on a busy 2-core CPU)
ENGINE_TIMEOUT_S = 300
#: Ardour's garbage comes in one channel every 2048 frames
GARBAGE_PERIOD = 2048
#: the loop mode's target: the transport-locked loop is the engine's file, frame for frame
LOOP_CORRELATION_TARGET = 0.9999


# ---- running Ardour's tools ---------------------------------------------------------------------


@dataclass
class HostLog:
    """What the Ardour steps did, retries included; printed with the test's output."""

    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(f"ardour: {line}")

    def retried(self, line: str) -> None:
        """A fault of Ardour's that was worked around: also a warning, so the run's summary shows it."""
        self.say(line)
        warnings.warn(f"Ardour {ARDOUR_VERSION_TEXT}: {line}", stacklevel=2)


def _crashed(returncode: int) -> bool:
    # killed by a signal: negative when Python started the binary itself, 128 + n through a shell
    return returncode < 0 or returncode >= 128


def _signal_name(returncode: int) -> str:
    number = -returncode if returncode < 0 else returncode - 128
    try:
        import signal

        return signal.Signals(number).name
    except ValueError:
        return f"exit {returncode}"


def _last_words(result: subprocess.CompletedProcess) -> str:
    """Where a crashed step got to: its last line of output, and its last words on stderr."""
    said = [line for line in (result.stdout or "").splitlines() if line.strip()]
    errors = [line for line in (result.stderr or "").splitlines() if line.strip()]
    return (f" after {said[-1]!r}" if said else "") + (f", {errors[-1][:160]!r}" if errors else "")


def run_ardour(command: list[str], env: dict[str, str], what: str, log: HostLog, timeout_s: float,
               prepare: Callable[[], None] | None = None,
               accept: Callable[[subprocess.CompletedProcess], str | None] | None = None,
               ) -> subprocess.CompletedProcess:
    """Runs an Ardour tool, again (after ``prepare``) when Ardour crashes or ``accept`` names a fault,
    at most ``HOST_ATTEMPTS`` times. A Lua error or any other failure fails the test at once."""
    faults = []
    for attempt in range(1, HOST_ATTEMPTS + 1):
        if prepare is not None:
            prepare()
        started = time.monotonic()
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
        elapsed = time.monotonic() - started
        if _crashed(result.returncode):
            fault = f"crashed ({_signal_name(result.returncode)}{_last_words(result)})"
        elif result.returncode != 0:
            pytest.fail(f"{what}: {command[0]} exited with {result.returncode}:\n{result.stdout[-3000:]}\n"
                        f"{result.stderr[-3000:]}")
        else:
            fault = accept(result) if accept is not None else None
            if fault is None:
                retried = f" after {attempt - 1} retries ({'; '.join(faults)})" if faults else ""
                log.say(f"{what}: ok in {elapsed:.1f} s, attempt {attempt}{retried}")
                return result
        faults.append(fault)
        log.retried(f"{what}: attempt {attempt}/{HOST_ATTEMPTS} {fault}"
                    + ("; running it again" if attempt < HOST_ATTEMPTS else ""))
    pytest.fail(f"{what}: Ardour failed {HOST_ATTEMPTS} times: {'; '.join(faults)}\n{result.stderr[-3000:]}")


def facts(stdout: str) -> dict[str, list[str]]:
    """The ``key value ...`` lines a Lua step printed."""
    found: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        key, _, rest = line.strip().partition(" ")
        if key and rest:
            found[key] = rest.split()
    return found


def host_garbage(audio: np.ndarray) -> str | None:
    """Ardour 7.3's export fault, or None. ``audio``: ``[channels, frames]``. Faults: non-finite or
    wild values; a few samples where two channels that are otherwise equal differ (every sound here
    is mono, played to both channels alike); one-sample spikes recurring at the same place of a
    2048-frame period in one channel through much of the file."""
    if not np.all(np.isfinite(audio)):
        return f"{int(np.sum(~np.isfinite(audio)))} non-finite samples"
    if np.max(np.abs(audio), initial=0.0) > 4.0:
        return f"a sample of {float(np.max(np.abs(audio))):.3g} (full scale is 1)"
    channels, frames = audio.shape
    if channels == 2:
        differ = np.flatnonzero(np.abs(audio[0].astype(np.float64) - audio[1]) > 1e-6)
        if 0 < differ.size <= frames // 100:
            return f"{differ.size} samples differ between the channels (frames {differ[:4].tolist()}...)"
    periods = frames // GARBAGE_PERIOD
    for channel, x in enumerate(audio.astype(np.float64)):
        if periods < 4:
            break
        # a lone sample off the line through its neighbours, far more than the samples two away are
        # off theirs (the neighbours' own bends hold half the lone one's)
        bend = np.abs(x[1:-1] - 0.5 * (x[:-2] + x[2:]))
        around = np.maximum(np.concatenate([[0.0, 0.0], bend[:-2]]), np.concatenate([bend[2:], [0.0, 0.0]]))
        lone = np.flatnonzero((bend > 0.01) & (bend > 8.0 * around)) + 1
        if lone.size:
            phases, counts = np.unique(lone % GARBAGE_PERIOD, return_counts=True)
            if counts.max() >= max(4, periods // 4):
                phase = int(phases[np.argmax(counts)])
                return (f"{int(counts.max())} lone spikes every {GARBAGE_PERIOD} frames in channel {channel} "
                        f"(frame {phase} of the period)")
    return None


def read_float_wav(path: Path) -> tuple[np.ndarray, int]:
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), int(rate)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size)
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def best_lag(signal: np.ndarray, reference: np.ndarray, max_lag: int) -> int:
    """The shift (frames) of ``reference`` within ``signal`` that matches best, within ``max_lag``."""
    n = min(signal.size, reference.size)
    a, b = signal[:n].astype(np.float64), reference[:n].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    cross = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([cross[: max_lag + 1], cross[size - max_lag:]])
    return int(lags[int(np.argmax(values))])


# ---- the session file ---------------------------------------------------------------------------


def plugin_states(session_file: Path) -> dict[str, PluginState]:
    """Each track's loopbridge state as Ardour saved it (its VST3 chunk holds JUCE's binary XML)."""
    root = ET.parse(session_file).getroot()
    states = {}
    for route in root.iter("Route"):
        for processor in route.iter("Processor"):
            if processor.get("name") != "loopbridge":
                continue
            chunk = processor.find("vst3/chunk")
            if chunk is None or not (chunk.text or "").strip():
                pytest.fail(f"track {route.get('name')!r}: the plugin's saved state has no VST3 chunk")
            blob = base64.b64decode(chunk.text or "")
            start = blob.find(b"VC2!")
            if start < 0:
                pytest.fail(f"track {route.get('name')!r}: the VST3 chunk holds no JUCE state")
            states[route.get("name", "")] = PluginState(ET.fromstring(unpack_binary_xml(blob[start:])))
    return states


def timecnt(frames: int, position: int = 0) -> str:
    """Ardour 7's ``timecnt_t`` text for audio time: ``a<superclocks>@a<superclocks>``."""
    per_frame = SUPERCLOCKS_PER_SECOND // RATE
    return f"a{frames * per_frame}@a{position * per_frame}"


def import_into_session(session_dir: Path, session_name: str, wav_path: Path, track_name: str,
                        position_frame: int) -> None:
    """What Ardour's import does with ``wav_path`` (copy each channel into the session's audio files,
    a whole-file region, a region of that whole length at ``position_frame`` on ``track_name``),
    written into the saved session file."""
    session_file = session_dir / f"{session_name}.ardour"
    tree = ET.parse(session_file)
    root = tree.getroot()
    audio, rate = read_wav(wav_path.read_bytes())
    if rate != RATE:
        pytest.fail(f"{wav_path} is at {rate} Hz: the session is at {RATE} Hz")
    channels, frames = audio.shape
    next_id = int(root.get("id-counter", "0")) + 1

    def new_id() -> str:
        nonlocal next_id
        next_id += 1
        return str(next_id - 1)

    audiofiles = session_dir / "interchange" / session_name / "audiofiles"
    audiofiles.mkdir(parents=True, exist_ok=True)
    stem = wav_path.stem
    sources = root.find("Sources")
    regions = root.find("Regions")
    if sources is None or regions is None:
        pytest.fail(f"{session_file} has no Sources or Regions")
    source_ids = []
    for channel in range(channels):
        suffix = "" if channels == 1 else ("%L" if channels == 2 and channel == 0 else
                                           "%R" if channels == 2 else f"%{channel}")
        name = f"{stem}{suffix}.wav"
        soundfile.write(str(audiofiles / name), audio[channel], RATE, subtype="FLOAT")
        source_id = new_id()
        ET.SubElement(sources, "Source", {"name": name, "type": "audio", "flags": "", "id": source_id,
                                          "natural-position": "a0", "channel": "0", "origin": str(wav_path),
                                          "gain": "1"})
        source_ids.append(source_id)

    def region(whole_file: bool, position: int) -> dict[str, str]:
        attributes = {"name": stem, "whole-file": "1" if whole_file else "0", "import": "1", "start": "a0",
                      "length": timecnt(frames, position), "id": new_id(), "type": "audio",
                      "channels": str(channels)}
        for channel, source_id in enumerate(source_ids):
            attributes[f"source-{channel}"] = source_id
            attributes[f"master-source-{channel}"] = source_id
        return attributes

    ET.SubElement(regions, "Region", region(True, 0))
    routes = {route.get("name"): route for route in root.iter("Route")}
    playlist_id = routes[track_name].get("audio-playlist") if track_name in routes else None
    playlist = next((p for p in root.iter("Playlist") if p.get("id") == playlist_id), None)
    if playlist is None:
        pytest.fail(f"{session_file}: no playlist for track {track_name!r}")
    ET.SubElement(playlist, "Region", region(False, position_frame))
    root.set("id-counter", str(next_id))
    tree.write(session_file, encoding="UTF-8", xml_declaration=True)


# ---- the session, made once for the module ------------------------------------------------------


@dataclass
class EngineFile:
    attributes: dict[str, str]
    path: Path
    audio: np.ndarray
    rate: int


@dataclass
class ArdourSession:
    directory: Path
    name: str
    log: HostLog
    #: what each plugin held when the session was saved, and the engine's file for it
    saved: dict[str, PluginState]
    files: dict[str, EngineFile]
    #: facts the reopened session printed (arrange.lua), and the plugins' states it saved again
    reopened: dict[str, list[str]]
    resaved: dict[str, PluginState]
    #: each snapshot's export, rendered with the engine stopped
    exports: dict[str, np.ndarray]
    engine_stopped_before_export: bool
    seconds: float


def _ardour_env(home: Path, endpoint: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    # Ardour reads its plugin cache and ~/.vst3 from this home only; the plugin asks this engine
    env.update({"HOME": str(home), "LOOPBRIDGE_ENDPOINT": endpoint, "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_CACHE_HOME": str(home / ".cache")})
    return env


def _install_plugin(vst3_path: Path, home: Path, log: HostLog) -> None:
    """Copies the bundle into ``~/.vst3`` and has Ardour's scanner cache it (headless Ardour reads
    only the cache). The copy's times are set back: a cache written in the same second as the bundle
    looks stale to Ardour."""
    bundle = home / ".vst3" / vst3_path.name
    shutil.copytree(vst3_path, bundle)
    past = time.time() - 3600
    for path in [bundle, *bundle.rglob("*")]:
        os.utime(path, (past, past), follow_symlinks=False)
    env = {**_ardour_env(home, "tcp://127.0.0.1:9"), "LD_LIBRARY_PATH": str(VST3_SCANNER.parent)}
    result = subprocess.run([str(VST3_SCANNER), str(bundle.resolve())], env=env, capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0 or "Found Plugin: loopbridge" not in result.stdout + result.stderr:
        pytest.fail(f"Ardour's VST3 scanner did not take {bundle} ({result.returncode}):\n"
                    f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    log.say("VST3 scanned into Ardour's plugin cache")


def _record(directory: Path, name: str, env: dict[str, str], engine: RunningEngine, log: HostLog) -> None:
    """record.lua, the test answering its wait once the engine has answered both plugins."""
    go_file = directory.parent / f"{name}.go"
    command = [ARDOUR_LUA, str(LUA_DIR / "record.lua"), str(directory), name, str(RATE), str(TEMPO_BPM),
               repr(LOOP_LENGTH_VALUE), str(go_file), str(ENGINE_TIMEOUT_S + 60)]
    faults = []
    for attempt in range(1, HOST_ATTEMPTS + 1):
        shutil.rmtree(directory, ignore_errors=True)
        go_file.unlink(missing_ok=True)
        answered_before = len(GENERATE_ANSWERED.findall(engine.log_all()))
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + ENGINE_TIMEOUT_S
            while process.poll() is None and not go_file.exists():
                answered = len(GENERATE_ANSWERED.findall(engine.log_all())) - answered_before
                failed = JOB_ERROR.search(engine.log())
                if failed:
                    pytest.fail(f"the engine refused a plugin's request:{failed.group(0)}\n{engine.log()}")
                if answered >= 2:
                    time.sleep(3.0)  # the replies are decoded and handed to the audio thread
                    go_file.write_text("go\n")
                elif time.monotonic() > deadline:
                    pytest.fail(f"the engine answered {answered} of 2 Generate presses within "
                                f"{ENGINE_TIMEOUT_S} s:\n{engine.log()}")
                time.sleep(0.2)
            stdout, stderr = process.communicate(timeout=ENGINE_TIMEOUT_S + 120)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        elapsed = time.monotonic() - started
        if process.returncode == 0:
            retried = f" after {attempt - 1} retries ({'; '.join(faults)})" if faults else ""
            log.say(f"record (ardour7-lua, engine running): ok in {elapsed:.1f} s, attempt {attempt}{retried}")
            return
        if not _crashed(process.returncode):
            pytest.fail(f"record.lua exited with {process.returncode}:\n{stdout[-3000:]}\n{stderr[-3000:]}")
        said = _last_words(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
        fault = f"crashed ({_signal_name(process.returncode)}{said})"
        faults.append(fault)
        log.retried(f"record (ardour7-lua): attempt {attempt}/{HOST_ATTEMPTS} {fault}"
                    + ("; running it again" if attempt < HOST_ATTEMPTS else ""))
    pytest.fail(f"record.lua: Ardour failed {HOST_ATTEMPTS} times: {'; '.join(faults)}")


def _engine_file(attributes: dict[str, str], track: str) -> EngineFile:
    path = Path(attributes.get("path", ""))
    if not path.is_file():
        pytest.fail(f"track {track!r}: the engine's file {path} is not there: {attributes}")
    audio, rate = read_wav(path.read_bytes())
    return EngineFile(attributes, path, audio, rate)


@pytest.fixture(scope="module")
def ardour_session(vst3_path: Path, tmp_path_factory: pytest.TempPathFactory,
                   ) -> Iterator[ArdourSession]:
    if shutil.which(ARDOUR_LUA) is None:
        pytest.skip(f"{ARDOUR_LUA} is not installed (Debian: ardour; scripts/test.sh installs it)")
    if not VST3_SCANNER.exists():
        pytest.skip(f"{VST3_SCANNER} is missing (Debian: ardour)")
    version = subprocess.run([ARDOUR_LUA, "--version"], capture_output=True, text=True, timeout=60)
    if not ARDOUR_VERSION.search(version.stdout + version.stderr):
        pytest.fail(f"these steps are written for Ardour 7.3's Lua API; {ARDOUR_LUA} says: "
                    f"{(version.stdout + version.stderr).strip()[:200]}")

    log = HostLog()
    started = time.monotonic()
    root = tmp_path_factory.mktemp("ardour")
    home = root / "home"
    home.mkdir()
    _install_plugin(vst3_path, home, log)
    presets = home / ".config" / "ardour7" / "export"
    presets.mkdir(parents=True)
    shutil.copy(LUA_DIR / "float-wav.preset", presets / "loopbridge-float-wav.preset")

    engine = start_engine(root / "engine", None, [])
    name = "loopbridge"
    directory = root / name  # Ardour names its interchange folder after the session folder
    try:
        _record(directory, name, _ardour_env(home, engine.endpoint), engine, log)
    finally:
        engine.stop()
    session_file = directory / f"{name}.ardour"

    saved = plugin_states(session_file)
    files = {}
    for track in ("loop", "shot"):
        if track not in saved or saved[track].sample_wav is None:
            pytest.fail(f"the saved session's plugin on track {track!r} holds no sample: "
                        f"{saved.get(track) and saved[track].sample_attributes}")
        files[track] = _engine_file(saved[track].sample_attributes, track)

    import_into_session(directory, name, files["loop"].path, "imported", START_FRAME)
    pristine = root / "session-before-arrange"
    shutil.copytree(directory, pristine)

    def fresh_copy() -> None:
        shutil.rmtree(directory)
        shutil.copytree(pristine, directory)

    env = _ardour_env(home, engine.endpoint)  # the endpoint of an engine that is gone
    root_note = int(files["shot"].attributes.get("root_note", "60"))
    arranged = run_ardour([ARDOUR_LUA, str(LUA_DIR / "arrange.lua"), str(directory), name, str(START_FRAME),
                           str(root_note)], env, "arrange (ardour7-lua, no engine)", log, 300, prepare=fresh_copy)
    reopened = facts(arranged.stdout)
    resaved = plugin_states(directory / "loop.ardour")

    exports = {}
    for snapshot in ("loop", "shot", "imported"):
        out = root / f"export-{snapshot}.wav"

        def garbage(_: subprocess.CompletedProcess, out: Path = out) -> str | None:
            if not out.exists():
                return f"no file at {out}"
            audio, rate = read_float_wav(out)
            if rate != RATE:
                pytest.fail(f"{out} is at {rate} Hz: expected the session's {RATE} Hz")
            found = host_garbage(audio)
            return f"garbage in the WAV: {found}" if found else None

        run_ardour([ARDOUR_LUA, str(LUA_DIR / "render.lua"), str(directory), snapshot, str(root), out.stem, "0",
                    str(RANGE_BARS * BAR_FRAMES)], env, f"render {snapshot} (ardour7-lua, no engine)", log, 300,
                   prepare=lambda out=out: out.unlink(missing_ok=True), accept=garbage)
        exports[snapshot], _ = read_float_wav(out)

    yield ArdourSession(directory, name, log, saved, files, reopened, resaved, exports,
                        engine.process.poll() is not None, time.monotonic() - started)
    log.say(f"the Ardour session's steps took {time.monotonic() - started:.1f} s in all")


# ---- the checks ---------------------------------------------------------------------------------


def test_the_engines_files_are_whole_bars_at_the_session_tempo(ardour_session: ArdourSession) -> None:
    loop, shot = ardour_session.files["loop"], ardour_session.files["shot"]
    assert loop.rate == RATE and shot.rate == RATE, "conformed to Ardour's sample rate"
    assert float(loop.attributes["tempo_bpm"]) == pytest.approx(TEMPO_BPM), "Ardour's tempo reached the engine"
    assert loop.attributes.get("kind") == "loop" and shot.attributes.get("kind") == "one-shot"
    assert loop.audio.shape[1] == LOOP_BARS * BAR_FRAMES, "exactly the plugin's Length, 2 bars, to the frame"


def test_the_saved_session_holds_the_engines_files(ardour_session: ArdourSession) -> None:
    """Saved with the engine running, then reopened and saved again without it: each plugin still
    holds the engine's file."""
    for track in ("loop", "shot"):
        engine_bytes = ardour_session.files[track].path.read_bytes()
        assert ardour_session.saved[track].sample_wav == engine_bytes, f"{track}: the engine's file, byte for byte"
        assert ardour_session.resaved[track].sample_wav == engine_bytes, f"{track}: still there, reopened"


def test_every_render_is_the_range_to_the_frame(ardour_session: ArdourSession) -> None:
    assert ardour_session.reopened.get("tempo_bpm") == [f"{TEMPO_BPM:.1f}"]
    assert ardour_session.engine_stopped_before_export, "rendered from the saved session alone"
    for snapshot, audio in ardour_session.exports.items():
        assert audio.shape == (2, RANGE_BARS * BAR_FRAMES), snapshot


def _mono(audio: np.ndarray) -> np.ndarray:
    return audio.astype(np.float64).mean(axis=0)


def test_one_shot_note_plays_the_engines_sample_to_the_frame(ardour_session: ArdourSession) -> None:
    """A note on bar 2 of the MIDI track: the engine's one-shot starts on that frame, as it is."""
    shot = ardour_session.files["shot"]
    out = ardour_session.exports["shot"]
    assert ardour_session.reopened.get("note_bbt") == [str(START_BAR), "1", "0"]
    frames = min(shot.audio.shape[1], out.shape[1] - START_FRAME)
    played = out[:, START_FRAME:START_FRAME + frames]
    expected = shot.audio[:, :frames] if shot.audio.shape[0] == 2 else np.repeat(shot.audio[:1, :frames], 2, axis=0)
    lag = best_lag(_mono(out[:, START_FRAME - 4096:START_FRAME + frames]), np.concatenate(
        [np.zeros(4096), _mono(expected)]), 2048)
    value = correlation(_mono(played), _mono(expected))
    ardour_session.log.say(f"one-shot: correlation {value:.6f} with the engine's file, offset {lag} frames, "
                           f"largest difference {float(np.max(np.abs(played - expected))):.2e}")
    assert np.max(np.abs(out[:, :START_FRAME])) == 0.0, "silence before the note"
    assert lag == 0, "the sample starts on the note's frame"
    assert value > 0.9999
    assert np.max(np.abs(played - expected)) < 1e-4, "the engine's samples, as they are"


def test_loop_mode_plays_the_engines_loop_on_the_bars(ardour_session: ArdourSession) -> None:
    """Loop mode, the transport rolling from bar 1: the engine's 2-bar loop, twice, on the bars, as
    it is. Ardour's roll starts before bar 1 on a song position rounded to 1/1920 quarter note (5.25
    frames early at 128 BPM); the plugin takes its phase from the host's sample position, which is
    exact, so the loop is not those frames late."""
    loop = ardour_session.files["loop"]
    out = ardour_session.exports["loop"]
    passes = RANGE_BARS // LOOP_BARS
    expected = np.tile(_mono(loop.audio), passes)
    played = _mono(out)
    lag = best_lag(played, expected, 2048)
    value = correlation(played, expected)
    per_pass = [correlation(played[k * loop.audio.shape[1]:(k + 1) * loop.audio.shape[1]], _mono(loop.audio))
                for k in range(passes)]
    stereo = loop.audio if loop.audio.shape[0] == 2 else np.repeat(loop.audio[:1], 2, axis=0)
    difference = float(np.max(np.abs(out - np.tile(stereo, (1, passes)))))
    ardour_session.log.say(f"loop mode: correlation {value:.6f} with the engine's loop repeated "
                           f"(passes: {', '.join(f'{c:.6f}' for c in per_pass)}), offset {lag} frames, "
                           f"largest difference {difference:.2e}")
    assert lag == 0, "the loop starts on bar 1"
    assert value > LOOP_CORRELATION_TARGET, \
        f"Loop mode in Ardour plays the engine's loop at correlation {value:.6f}: expected > {LOOP_CORRELATION_TARGET}"
    assert difference < 1e-4, "the engine's samples, frame for frame, from bar 1 on"


def test_an_imported_loop_spans_its_bars_on_the_grid(ardour_session: ArdourSession) -> None:
    """The engine's loop file as a region from bar 2: Ardour's tempo map puts its end on bar 4, and
    the export plays it there."""
    loop = ardour_session.files["loop"]
    facts_ = ardour_session.reopened
    assert facts_.get("imported_region") == [str(START_FRAME), str(LOOP_BARS * BAR_FRAMES),
                                              str(loop.audio.shape[0])]
    assert facts_.get("imported_start_bbt") == [str(START_BAR), "1", "0"]
    assert facts_.get("imported_end_bbt") == [str(START_BAR + LOOP_BARS), "1", "0"], \
        "the file ends exactly on a bar line of Ardour's grid"
    out = ardour_session.exports["imported"]
    frames = loop.audio.shape[1]
    played = _mono(out[:, START_FRAME:START_FRAME + frames])
    value = correlation(played, _mono(loop.audio))
    lag = best_lag(_mono(out), np.concatenate([np.zeros(START_FRAME), _mono(loop.audio)]), 2048)
    ardour_session.log.say(f"imported loop: correlation {value:.6f}, offset {lag} frames")
    assert lag == 0
    assert value > 0.999
    assert np.max(np.abs(out[:, :START_FRAME])) == 0.0
    assert np.max(np.abs(out[:, START_FRAME + frames:])) == 0.0


def test_the_garbage_check_finds_ardours_fault_and_passes_clean_audio() -> None:
    """``host_garbage`` on audio made here (it needs no Ardour): drum-like loops pass, mono and
    stereo; with one wrong sample every 2048 frames in one channel, or a NaN, they do not."""
    rng = np.random.default_rng(7)
    frames = 4 * BAR_FRAMES
    t = np.arange(frames) / RATE
    envelope = np.exp(-(np.arange(frames) % (BAR_FRAMES // 4)) / (0.05 * RATE))

    def hit() -> np.ndarray:
        return (0.6 * np.sin(2 * np.pi * 55 * t) + 0.3 * rng.standard_normal(frames)) * envelope

    mono = np.stack([hit()] * 2).astype(np.float32)
    stereo = np.stack([hit(), hit()]).astype(np.float32)
    assert host_garbage(mono) is None
    assert host_garbage(stereo) is None
    for clean, caught in ((mono, "differ between the channels"), (stereo, "lone spikes every 2048 frames")):
        faulty = clean.copy()
        faulty[1, 700::GARBAGE_PERIOD] += 0.5
        found = host_garbage(faulty)
        assert found is not None and caught in found, found
    with_nan = mono.copy()
    with_nan[0, 1000] = np.nan
    assert host_garbage(with_nan) == "1 non-finite samples"
