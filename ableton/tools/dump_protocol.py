"""Print, as JSON, the part of the wire protocol that the Max for Live device mirrors.

The device's JavaScript copy of these constants lives in ``ableton/js/loopbridge_protocol.js``;
the Node tests (``ableton/test/protocol.test.js``) and ``tests/ableton/test_device_protocol.py``
compare that module with this dump, so a change to ``bridge/protocol.py`` or to the engine's
limits that the device would get wrong fails a test instead of a user's session.

Usage: ``python ableton/tools/dump_protocol.py`` (with the ``loopbridge`` package importable).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from loopbridge.bridge import protocol as p
from loopbridge.engine import request as r
from loopbridge.engine.conform import key as k

#: request types the device sends as jobs, by the name the JavaScript module uses
DEVICE_JOB_TYPES = {
    "generate": p.MessageType.GENERATE,
    "variation": p.MessageType.VARIATION,
    "morph": p.MessageType.MORPH,
    "conform": p.MessageType.CONFORM,
    "conform_file": p.MessageType.CONFORM_FILE,
}


def device_protocol() -> dict[str, Any]:
    """The device-facing protocol as plain JSON values (the layout of loopbridge_protocol.js)."""
    incoming = {entry.address: entry for entry in p.OSC_ADDRESSES}
    return {
        "PROTOCOL_VERSION": p.PROTOCOL_VERSION,
        "DEFAULT_OSC_HOST": p.DEFAULT_OSC_HOST,
        "DEFAULT_OSC_PORT": p.DEFAULT_OSC_PORT,
        "DEFAULT_OSC_REPLY_PORT": p.DEFAULT_OSC_REPLY_PORT,
        "REQUEST_TIMEOUT_S": p.REQUEST_TIMEOUT_S,
        "MAX_ID_CHARS": p.MAX_ID_CHARS,
        "MAX_OSC_PACKET_BYTES": p.MAX_OSC_PACKET_BYTES,
        "OSC_ROOT": p.OSC_ROOT,
        "DEFAULT_SAMPLE_RATE": r.DEFAULT_SAMPLE_RATE,
        "RANDOM_SEED_MAX": r.RANDOM_SEED_MAX,
        "DEFAULT_LOUDNESS_LUFS": r.DEFAULT_LOUDNESS_LUFS,
        # the keys a request's `key` names, as the engine spells them, by root from C
        "KEY_NAMES": {"MAJOR": list(k.MAJOR_NAMES), "MINOR": list(k.MINOR_NAMES)},
        # every incoming address with its positional arguments and the request type of its
        # trailing key/value pairs (null when it takes none)
        "INCOMING": {
            address: {
                "args": [[name, kind] for name, kind in entry.args],
                "keyvalues": entry.keyvalues.value if entry.keyvalues is not None else None,
            }
            for address, entry in sorted(incoming.items())
        },
        "OUTGOING": {address: list(args) for address, args in sorted(p.OSC_OUTGOING.items())},
        "ERROR_ADDRESS": p.OSC_ERROR,
        "FIELDS": {name: dict(sorted(p.FIELDS_BY_TYPE[kind].items())) for name, kind in DEVICE_JOB_TYPES.items()},
        "ERROR_CODES": sorted(code.value for code in p.ErrorCode),
        "KINDS": [kind.value for kind in r.Kind],
        # what a generate does with the user's audio, and the parts extract and add name
        "TASKS": [task.value for task in r.Task],
        "TRACKS": list(r.TRACKS),
        "LIMITS": {
            "TEMPO_MIN_BPM": r.TEMPO_MIN_BPM,
            "TEMPO_MAX_BPM": r.TEMPO_MAX_BPM,
            "PROMPT_MAX_CHARS": r.PROMPT_MAX_CHARS,
            "SEED_MAX": r.SEED_MAX,
            "VARIATION_MAX": r.VARIATION_MAX,
            "BARS_MIN": r.BARS_MIN,
            "BARS_MAX": r.BARS_MAX,
            "BEATS_PER_BAR_MIN": r.BEATS_PER_BAR_RANGE[0],
            "BEATS_PER_BAR_MAX": r.BEATS_PER_BAR_RANGE[1],
            "STEPS_MIN": r.STEPS_RANGE[0],
            "STEPS_MAX": r.STEPS_RANGE[1],
            "PITCH_MIN_SEMITONES": r.PITCH_RANGE_SEMITONES[0],
            "PITCH_MAX_SEMITONES": r.PITCH_RANGE_SEMITONES[1],
            "SAMPLE_RATE_MIN": r.SAMPLE_RATE_RANGE[0],
            "SAMPLE_RATE_MAX": r.SAMPLE_RATE_RANGE[1],
            "LOUDNESS_MIN_LUFS": r.LOUDNESS_RANGE_LUFS[0],
            "LOUDNESS_MAX_LUFS": r.LOUDNESS_RANGE_LUFS[1],
        },
    }


def main() -> int:
    json.dump(device_protocol(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
