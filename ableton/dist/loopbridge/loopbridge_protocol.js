// loopbridge — the part of the wire protocol the Max for Live device uses.
//
// A copy of names and numbers from bridge/protocol.py (the one source) and the engine's request
// limits (engine/request.py). Tests compare this module with `ableton/tools/dump_protocol.py`
// (ableton/test/protocol.test.js and tests/ableton/test_device_protocol.py), so a change on the
// Python side that this copy does not follow fails CI. Every OSC address the device sends or
// handles is named here and nowhere else in the device's code.
//
// ES5 on purpose: this file runs inside Max's `js` object as well as in Node tests. Max's
// require() supports `exports.x = ...` only (no `module.exports`).
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

var ROOT = "/loopbridge";

exports.PROTOCOL_VERSION = 1;
exports.DEFAULT_OSC_HOST = "127.0.0.1";
// the engine listens here; the device listens for replies on DEFAULT_OSC_REPLY_PORT and
// registers that port, because Max's udpsend and udpreceive are two different sockets
exports.DEFAULT_OSC_PORT = 9000;
exports.DEFAULT_OSC_REPLY_PORT = 9001;
exports.REQUEST_TIMEOUT_S = 5.0;
exports.MAX_ID_CHARS = 64;
exports.MAX_OSC_PACKET_BYTES = 65536;
exports.OSC_ROOT = ROOT;
// engine/request.py: the rate of conformed files when a request names none (the device sends
// Live's rate once dspstate~ has reported it), and the largest seed the engine draws itself, which
// the device's fresh seeds stay at or below too (OSC ints are 32-bit signed)
exports.DEFAULT_SAMPLE_RATE = 48000;
exports.RANDOM_SEED_MAX = 2147483647;
// engine/request.py: the integrated loudness (LUFS) of loops and textures when a request names none
exports.DEFAULT_LOUDNESS_LUFS = -14.0;
// The keys a request's `key` names, as the engine spells them (engine/conform/key.py MAJOR_NAMES,
// MINOR_NAMES), by root from C; a request without `key` asks for none.
exports.KEY_NAMES = {
    MAJOR: ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"],
    MINOR: ["Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm"]
};

// The addresses the device uses, by role.
exports.ADDRESSES = {
    // device -> engine
    ENGINE_HELLO: ROOT + "/engine/hello",
    CONTROLLER_REGISTER: ROOT + "/controller/register",
    CONTROLLER_UNREGISTER: ROOT + "/controller/unregister",
    JOB_GENERATE: ROOT + "/job/generate",
    JOB_VARIATION: ROOT + "/job/variation",
    JOB_MORPH: ROOT + "/job/morph",
    JOB_CONFORM: ROOT + "/job/conform",
    JOB_CONFORM_FILE: ROOT + "/job/conform_file",
    JOB_CANCEL: ROOT + "/job/cancel",
    MODELS_CAPABILITIES: ROOT + "/models/capabilities",  // and its reply: the model id, its capabilities as JSON
    // engine -> device
    HELLO_REPLY: ROOT + "/engine/hello",
    REGISTERED: ROOT + "/controller/registered",
    JOB_ACCEPTED: ROOT + "/job/accepted",
    JOB_PROGRESS: ROOT + "/job/progress",
    JOB_SAMPLE: ROOT + "/job/sample",
    JOB_NOTE: ROOT + "/job/note",
    JOB_DONE: ROOT + "/job/done",
    JOB_CANCELLED: ROOT + "/job/cancelled",
    ERROR: ROOT + "/error"
};

var A = exports.ADDRESSES;

// Positional arguments of the addresses the device sends, and which request type's fields
// follow them as key/value pairs (as OSC_ADDRESSES in bridge/protocol.py).
exports.REQUEST_ARGS = {};
exports.REQUEST_ARGS[A.ENGINE_HELLO] = {args: [], keyvalues: null};
exports.REQUEST_ARGS[A.CONTROLLER_REGISTER] = {args: [["port", "int?"]], keyvalues: null};
exports.REQUEST_ARGS[A.CONTROLLER_UNREGISTER] = {args: [["port", "int?"]], keyvalues: null};
exports.REQUEST_ARGS[A.JOB_GENERATE] = {args: [["id", "str"]], keyvalues: "generate"};
exports.REQUEST_ARGS[A.JOB_VARIATION] = {args: [["id", "str"]], keyvalues: "variation"};
exports.REQUEST_ARGS[A.JOB_MORPH] = {args: [["id", "str"]], keyvalues: "morph"};
exports.REQUEST_ARGS[A.JOB_CONFORM] = {args: [["id", "str"]], keyvalues: "conform"};
exports.REQUEST_ARGS[A.JOB_CONFORM_FILE] = {args: [["id", "str"], ["path", "str"]], keyvalues: "conform_file"};
exports.REQUEST_ARGS[A.JOB_CANCEL] = {args: [["id", "str"]], keyvalues: null};
exports.REQUEST_ARGS[A.MODELS_CAPABILITIES] = {args: [["model", "str"]], keyvalues: null};

// Arguments of the replies the device handles, in order (OSC_OUTGOING in bridge/protocol.py).
exports.REPLY_ARGS = {};
exports.REPLY_ARGS[A.HELLO_REPLY] = ["protocol_version", "engine_version", "inbox"];
exports.REPLY_ARGS[A.REGISTERED] = ["host", "port"];
exports.REPLY_ARGS[A.JOB_ACCEPTED] = ["id", "position"];
exports.REPLY_ARGS[A.JOB_PROGRESS] = ["id", "fraction"];
exports.REPLY_ARGS[A.JOB_SAMPLE] = ["id", "index", "path", "kind", "tempo_bpm", "beats", "root_note", "variation",
    "render_key", "key", "key_confidence"];
exports.REPLY_ARGS[A.JOB_NOTE] = ["id", "text"];
exports.REPLY_ARGS[A.JOB_DONE] = ["id", "count"];
exports.REPLY_ARGS[A.JOB_CANCELLED] = ["id"];
exports.REPLY_ARGS[A.ERROR] = ["id", "code", "message"];
exports.REPLY_ARGS[A.MODELS_CAPABILITIES] = ["model", "json"];

// Key/value fields each job type accepts, with their types (FIELDS_BY_TYPE). The device sends the
// time signature as Live shows it (meter_numerator, meter_denominator, HOST_FIELDS) with `bars` in
// bars of it, never beats_per_bar: the engine works out its own bar (engine/host.py).
var REQUEST_FIELDS = {
    audio: "bool",
    audio_prompt_frame: "int",
    audio_prompt_key: "str",
    audio_prompt_path: "str",
    audio_prompt_strength: "float",
    bars: "float",
    beats_per_bar: "int",
    conform_bars: "float",
    continue_bars: "float",
    duration_s: "float",
    guidance: "float",
    key: "str",
    kind: "str",
    loudness_lufs: "float",
    meter_denominator: "int",
    meter_numerator: "int",
    model: "str",
    morph_amount: "float",
    morph_prompt: "str",
    morph_seed: "int",
    negative_prompt: "str",
    pitch_semitones: "float",
    prerender: "bool",
    priority: "str",
    prompt: "str",
    replace_from_bar: "float",
    replace_to_bar: "float",
    root_note: "int",
    sample_rate: "int",
    seed: "int",
    start_s: "float",
    steps: "int",
    task: "str",
    tempo_bpm: "float",
    track: "str",
    variation: "int",
    variations: "int"
};

exports.FIELDS = {
    generate: REQUEST_FIELDS,
    variation: REQUEST_FIELDS,
    morph: REQUEST_FIELDS,
    conform: {
        audio: "bool",
        bars: "float",
        beats_per_bar: "int",
        conform_bars: "float",
        key: "str",
        loudness_lufs: "float",
        meter_denominator: "int",
        meter_numerator: "int",
        pitch_semitones: "float",
        render_key: "str",
        root_note: "int",
        sample_rate: "int",
        tempo_bpm: "float"
    },
    // a dropped file fitted to the song (the file is a path in the engine's inbox, the address's argument)
    conform_file: {
        audio: "bool",
        audio_frame: "int",
        audio_path: "str",
        bars: "float",
        beats_per_bar: "int",
        key: "str",
        kind: "str",
        loudness_lufs: "float",
        meter_denominator: "int",
        meter_numerator: "int",
        name: "str",
        pitch_semitones: "float",
        priority: "str",
        root_note: "int",
        sample_rate: "int",
        source_bars: "float",
        source_downbeat_s: "float",
        source_tempo_bpm: "float",
        tempo_bpm: "float",
        warp: "str"
    }
};

// Sample kinds the engine knows (engine/request.py Kind), in its order.
exports.KINDS = ["one-shot", "loop", "texture", "kit"];

// What a generate does with the user's audio (engine/request.py Task), in its order, and the parts
// `extract` and `add` name (engine/request.py TRACKS).
exports.TASKS = ["generate", "continue", "replace", "transform", "extract", "add"];
exports.TRACKS = ["vocals", "backing_vocals", "drums", "bass", "guitar", "keyboard", "percussion", "strings",
    "synth", "fx", "brass", "woodwinds"];

// Accepted ranges of request values (engine/request.py); the device's controls stay inside them.
exports.LIMITS = {
    TEMPO_MIN_BPM: 20.0,
    TEMPO_MAX_BPM: 999.0,
    PROMPT_MAX_CHARS: 500,
    SEED_MAX: 4294967295,
    VARIATION_MAX: 9999,
    BARS_MIN: 0.25,
    BARS_MAX: 64.0,
    BEATS_PER_BAR_MIN: 1,
    BEATS_PER_BAR_MAX: 16,
    STEPS_MIN: 1,
    STEPS_MAX: 1000,
    PITCH_MIN_SEMITONES: -24.0,
    PITCH_MAX_SEMITONES: 24.0,
    SAMPLE_RATE_MIN: 8000,
    SAMPLE_RATE_MAX: 192000,
    LOUDNESS_MIN_LUFS: -40.0,
    LOUDNESS_MAX_LUFS: -6.0
};
