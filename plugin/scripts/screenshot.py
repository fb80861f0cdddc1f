"""Render the plugin's editor into docs/plugin-editor.png.

    plugin/scripts/screenshot.sh [out.png] [--endpoint tcp://127.0.0.1:5555]

Writes a saved plugin state (prompts, knobs and a drum loop as the current sample, the way a host
stores it) and runs plugin/build/loopbridge-snapshot, which restores that state into the real
processor, lets its engine client connect (or find no engine), and paints the real editor with
JUCE's createComponentSnapshot. screenshot.sh runs this under Xvfb.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "plugin"))

from plugin_state import PluginState, tagged_wav  # noqa: E402


def demo_loop(sample_rate: int, tempo_bpm: float, bars: int) -> np.ndarray:
    """A one-bar drum loop (kick, hats, snare) so the waveform looks like what the engine sends."""
    beat_frames = int(round(60.0 / tempo_bpm * sample_rate))
    frames = beat_frames * 4 * bars
    out = np.zeros(frames, dtype=np.float32)
    t = np.arange(beat_frames) / sample_rate
    kick = np.sin(2 * np.pi * (45 + 120 * np.exp(-t * 30)) * t) * np.exp(-t * 9)
    rng = np.random.default_rng(7)
    snare = rng.standard_normal(beat_frames) * np.exp(-t * 18) * 0.6
    snare += np.sin(2 * np.pi * 190 * t) * np.exp(-t * 25) * 0.4
    hat = rng.standard_normal(beat_frames // 2) * np.exp(-t[: beat_frames // 2] * 90) * 0.25
    for beat in range(4 * bars):
        start = beat * beat_frames
        out[start : start + beat_frames] += kick.astype(np.float32) * (1.0 if beat % 2 == 0 else 0.0)
        out[start : start + beat_frames] += snare.astype(np.float32) * (1.0 if beat % 2 == 1 else 0.0)
        off = start + beat_frames // 2
        out[off : off + hat.size] += hat.astype(np.float32)[: frames - off]
    out /= np.max(np.abs(out)) * 1.1
    return np.stack([out, out * 0.95])


def demo_state(endpoint: str) -> bytes:
    """The plugin's saved state with a prompt, knobs and a one-bar loop at 92 BPM."""
    root = ET.Element("LOOPBRIDGE", {"version": "1"})
    parameters = ET.SubElement(root, "PARAMETERS")
    for param_id, value in {"variation": 3, "morph": 0.35, "seed": 1207, "quality": 40, "length": 2, "kind": 1,
                            "pitch": 0, "strength": 0.5, "gain": -3.0, "key": 22, "loudness": -14.0}.items():
        ET.SubElement(parameters, "PARAM", {"id": param_id, "value": str(value)})
    state = PluginState(root)
    state.set_session(prompt="dusty boom-bap drum loop, vinyl crackle",
                      morph_prompt="bright four-on-the-floor house loop", model="default", endpoint=endpoint)
    rate, tempo = 48000, 92.0
    state.set_sample(tagged_wav(demo_loop(rate, tempo, 1), rate, tempo_bpm=tempo, beats=4, root_note=60, loop=True),
                     kind="loop", variation="3", tempo_bpm=str(tempo), beats="4", filename="dusty-boom-bap-92bpm.wav",
                     no_key="1", key_asked="Am")  # drums: no key, so the song's A minor leaves them as they are
    return state.to_plugin_blob()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default=str(REPO / "docs" / "plugin-editor.png"))
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5555", help="engine endpoint the editor shows")
    parser.add_argument("--wait-ms", type=int, default=4500, help="time for the engine client to settle")
    args = parser.parse_args()

    tool = REPO / "plugin" / "build" / "loopbridge-snapshot"
    if not tool.exists():
        print(f"{tool} is missing: run plugin/build.sh", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        state_file = Path(scratch) / "state.bin"
        state_file.write_bytes(demo_state(args.endpoint))
        result = subprocess.run([str(tool), str(state_file), str(out), "--wait-ms", str(args.wait_ms)],
                                capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
