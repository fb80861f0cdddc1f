"""Render the plugin's editor in a real host window and save a screenshot (docs/plugin-editor.png).

Run under an X server; scripts/screenshot.sh starts Xvfb for it:

    plugin/scripts/screenshot.sh [out.png] [--endpoint tcp://127.0.0.1:5555]

The plugin is loaded by pedalboard (the same host as the tests), given a prompt and a sample
through its saved state, and its editor opened with ``show_editor``; the window is grabbed from
the X display with Pillow once it has painted.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageGrab

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "plugin"))

from plugin_state import read_state, tagged_wav, write_state  # noqa: E402


def demo_loop(sample_rate: int, tempo_bpm: float, bars: int) -> np.ndarray:
    """A one-bar drum loop (kick, hats, snare) so the waveform looks like what the engine sends."""
    beat_frames = int(round(60.0 / tempo_bpm * sample_rate))
    frames = beat_frames * 4 * bars
    out = np.zeros(frames, dtype=np.float32)
    t = np.arange(beat_frames) / sample_rate
    kick = np.sin(2 * np.pi * (45 + 120 * np.exp(-t * 30)) * t) * np.exp(-t * 9)
    rng = np.random.default_rng(7)
    snare = rng.standard_normal(beat_frames) * np.exp(-t * 18) * 0.6 + np.sin(2 * np.pi * 190 * t) * np.exp(-t * 25) * 0.4
    hat = rng.standard_normal(beat_frames // 2) * np.exp(-t[: beat_frames // 2] * 90) * 0.25
    for beat in range(4 * bars):
        start = beat * beat_frames
        out[start : start + beat_frames] += kick.astype(np.float32) * (1.0 if beat % 2 == 0 else 0.0)
        out[start : start + beat_frames] += snare.astype(np.float32) * (1.0 if beat % 2 == 1 else 0.0)
        off = start + beat_frames // 2
        out[off : off + hat.size] += hat.astype(np.float32)[: frames - off]
    out /= np.max(np.abs(out)) * 1.1
    return np.stack([out, out * 0.95])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default=str(REPO / "docs" / "plugin-editor.png"))
    parser.add_argument("--vst3", default=str(REPO / "plugin/build/LoopBridge_artefacts/Release/VST3/loopbridge.vst3"))
    parser.add_argument("--endpoint", default=None, help="engine endpoint to show (default: the plugin's default)")
    parser.add_argument("--wait-s", type=float, default=4.0, help="seconds to let the editor connect and paint")
    args = parser.parse_args()

    if not os.environ.get("DISPLAY"):
        print("no DISPLAY: run plugin/scripts/screenshot.sh, which starts Xvfb", file=sys.stderr)
        return 2
    if args.endpoint:
        os.environ["LOOPBRIDGE_ENDPOINT"] = args.endpoint

    import pedalboard

    plugin = pedalboard.load_plugin(args.vst3)
    state = read_state(plugin)
    state.set_session(prompt="dusty boom-bap drum loop, vinyl crackle", morph_prompt="bright four-on-the-floor house loop",
                      model="default")
    rate, tempo = 48000, 92.0
    state.set_sample(tagged_wav(demo_loop(rate, tempo, 1), rate, tempo_bpm=tempo, beats=4, root_note=60, loop=True),
                     kind="loop", variation="3", tempo_bpm=str(tempo), beats="4", filename="dusty-boom-bap-92bpm.wav")
    write_state(plugin, state)
    plugin.kind = "Loop"
    plugin.variation = 3
    plugin.morph = 0.35
    plugin.quality_steps = 40
    plugin.length = "1 bar"
    plugin.seed = 1207

    close = threading.Event()
    grabbed: dict[str, Image.Image] = {}

    def grab() -> None:
        time.sleep(args.wait_s)
        grabbed["screen"] = ImageGrab.grab(xdisplay=os.environ["DISPLAY"])
        close.set()

    threading.Thread(target=grab, daemon=True).start()
    plugin.show_editor(close)

    screen = grabbed["screen"].convert("RGB")
    # The window is the only thing on the bare X screen: crop to what is not the black root window.
    pixels = np.asarray(screen)
    painted = np.argwhere(pixels.max(axis=2) > 8)
    if painted.size == 0:
        print("the screen stayed black: the editor did not paint", file=sys.stderr)
        return 1
    (top, left), (bottom, right) = painted.min(axis=0), painted.max(axis=0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    screen.crop((int(left), int(top), int(right) + 1, int(bottom) + 1)).save(out)
    print(f"wrote {out} ({right - left + 1}x{bottom - top + 1})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
