// loopbridge — the device's controls, declared once (AbletonOSC style: one table, no logic).
//
// Each row names a control of the patch (its Max `varname`), the message the patch sends to the
// `js` object when it changes, how its value becomes a request value, and the address of the
// bridge's OSC table that the change maps to (with the key/value field it fills). Tests check
// this table against the patch (every control is in both, ranges and menus agree) and against
// bridge/protocol.py (every address exists, every field belongs to that address's request type).
//
// ES5, runs in Max's `js` object and in Node. Copyright the loopbridge developers. GPL-3.0-or-later.

var protocol = require("loopbridge_protocol");
var A = protocol.ADDRESSES;

// live.dial parameter types and unit styles (Max's parameter_type / parameter_unitstyle numbers)
var FLOAT = 0;
var INT = 1;
var ENUM = 2;
var UNIT_INT = 0;
var UNIT_PERCENT = 5;
var UNIT_SEMITONES = 7;
var UNIT_CUSTOM = 9;

// What a file dropped on Audio Prompt is for: varied (an audio prompt) or fitted to the song as it is
var DROP_MODES = ["vary", "fit"];
var DROP_MODE_NAMES = ["Vary it", "Fit to song"];

exports.DROP_MODES = DROP_MODES;

// Length menu: bars of the song's meter per item (sent as they are; the engine fits its bar to the meter)
var LENGTH_BARS = [0.25, 0.5, 1, 2, 4, 8, 16, 32];
var LENGTH_NAMES = ["1/4", "1/2", "1", "2", "4", "8", "16", "32"];

exports.LENGTH_BARS = LENGTH_BARS;

// Task menu: what Run Task does to the clip in the device (protocol.TASKS but generate), and its names
var TASKS = ["continue", "replace", "transform", "extract", "add"];
var TASK_NAMES = ["Continue", "Replace", "Transform", "Extract", "Add a part"];
// Track menu: the parts extract and add name (protocol.TRACKS), as Live shows them
var TRACK_NAMES = ["Vocals", "Backing vocals", "Drums", "Bass", "Guitar", "Keyboard", "Percussion", "Strings",
    "Synth", "FX", "Brass", "Woodwinds"];

exports.TASKS = TASKS;

exports.CONTROLS = [
    {
        name: "prompt", varname: "Prompt", maxclass: "textedit", inlet: 1,
        address: A.JOB_GENERATE, field: "prompt",
        summary: "what to generate; sent with every generate, variation and morph request"
    },
    {
        name: "morph_prompt", varname: "Morph Target", maxclass: "textedit", inlet: 2,
        address: A.JOB_MORPH, field: "morph_prompt",
        summary: "the prompt the Morph dial moves towards"
    },
    {
        name: "variation", varname: "Variation", maxclass: "live.dial", message: "variation",
        address: A.JOB_VARIATION, field: "variation",
        parameter: {type: INT, min: 0, max: 99, initial: 0, unitstyle: UNIT_INT},
        summary: "turning it fetches variation k of the last request (pre-rendered ones come from the store)"
    },
    {
        name: "morph", varname: "Morph", maxclass: "live.dial", message: "morph",
        address: A.JOB_MORPH, field: "morph_amount",
        parameter: {type: FLOAT, min: 0, max: 100, initial: 0, unitstyle: UNIT_PERCENT},
        scale: 0.01,
        summary: "turning it fetches the sample this far between Prompt and Morph Target"
    },
    {
        name: "length", varname: "Length", maxclass: "live.dial", message: "length",
        address: A.JOB_GENERATE, field: "bars",
        parameter: {type: ENUM, enum: LENGTH_NAMES, initial: 2},
        values: LENGTH_BARS,
        summary: "bars of the song's meter for a loop, texture or kit; the clip loops over them"
    },
    {
        name: "pitch", varname: "Pitch", maxclass: "live.dial", message: "pitch",
        address: A.JOB_CONFORM, field: "pitch_semitones",
        parameter: {type: INT, min: -24, max: 24, initial: 0, unitstyle: UNIT_SEMITONES},
        summary: "turning it re-conforms the current sample (no model run)"
    },
    {
        name: "loudness", varname: "Loudness", maxclass: "live.dial", message: "loudness",
        address: A.JOB_CONFORM, field: "loudness_lufs",
        parameter: {type: FLOAT, min: -30, max: -6, initial: -14, unitstyle: UNIT_CUSTOM, units: "LUFS"},
        summary: "integrated loudness of loops and textures (BS.1770; the engine's -14 by default); turning it " +
            "re-conforms the current sample (no model run)"
    },
    {
        name: "kind", varname: "Kind", maxclass: "live.dial", message: "kind",
        address: A.JOB_GENERATE, field: "kind",
        parameter: {type: ENUM, enum: protocol.KINDS.slice(), initial: 1},
        values: protocol.KINDS.slice(),
        summary: "one-shot, loop, texture or kit; also picks the clip's warp mode"
    },
    {
        name: "quality", varname: "Quality", maxclass: "live.dial", message: "quality",
        address: A.JOB_GENERATE, field: "steps",
        parameter: {type: INT, min: 0, max: 200, initial: 0, unitstyle: UNIT_CUSTOM, units: "steps"},
        summary: "diffusion steps; 0 = the model's default"
    },
    {
        name: "generate", varname: "Generate", maxclass: "live.text", message: "generate",
        address: A.JOB_GENERATE, field: null,
        parameter: {type: ENUM, enum: ["off", "on"], initial: 0},
        summary: "sends a generate request with a fresh seed; the result becomes a clip"
    },
    {
        name: "audio_prompt", varname: "Audio Prompt", maxclass: "live.drop", message: "audio_prompt",
        address: A.JOB_GENERATE, field: "audio_prompt_path",
        parameter: {type: 4},
        summary: "drop a clip or file: Vary it asks for variations of it; Fit to song fits the file itself to the " +
            "song's tempo and meter (the Length's bars for a loop)"
    },
    {
        name: "drop_mode", varname: "Drop Mode", maxclass: "live.text", message: "drop_mode",
        address: A.JOB_CONFORM_FILE, field: null,
        parameter: {type: ENUM, enum: DROP_MODE_NAMES, initial: 0},
        values: DROP_MODES,
        summary: "what a dropped file is for: Vary it (an audio prompt for Generate) or Fit to song (the file " +
            "itself, conformed at once to the song's tempo and meter, re-conformed when the tempo changes)"
    },
    {
        name: "clear_audio", varname: "Clear Audio", maxclass: "live.text", message: "clear_audio",
        address: A.JOB_GENERATE, field: "audio_prompt_path",
        parameter: {type: ENUM, enum: ["off", "on"], initial: 0},
        summary: "forgets the dropped audio prompt"
    },
    {
        name: "task", varname: "Task", maxclass: "live.dial", message: "task",
        address: A.JOB_GENERATE, field: "task",
        parameter: {type: ENUM, enum: TASK_NAMES, initial: 0},
        values: TASKS,
        summary: "what Run Task does to the current sample: continue it, replace bars of it, transform it, " +
            "extract a track from it or add a part to it (those the model offers)"
    },
    {
        name: "task_bars", varname: "Task Bars", maxclass: "live.dial", message: "task_bars",
        address: A.JOB_GENERATE, field: "continue_bars",
        parameter: {type: FLOAT, min: 0.25, max: 64, initial: 1, unitstyle: UNIT_CUSTOM, units: "bars"},
        step: 0.25,
        summary: "Continue: bars of the song's meter to add after the sample"
    },
    {
        name: "from_bar", varname: "From Bar", maxclass: "live.dial", message: "from_bar",
        address: A.JOB_GENERATE, field: "replace_from_bar",
        parameter: {type: FLOAT, min: 0, max: 63.75, initial: 0, unitstyle: UNIT_CUSTOM, units: "bar"},
        step: 0.25,
        summary: "Replace: where the bars made anew start, a bar position from 0 at the sample's start"
    },
    {
        name: "to_bar", varname: "To Bar", maxclass: "live.dial", message: "to_bar",
        address: A.JOB_GENERATE, field: "replace_to_bar",
        parameter: {type: FLOAT, min: 0.25, max: 64, initial: 1, unitstyle: UNIT_CUSTOM, units: "bar"},
        step: 0.25,
        summary: "Replace: where they end (after From Bar, within the sample)"
    },
    {
        name: "track", varname: "Track", maxclass: "live.dial", message: "track",
        address: A.JOB_GENERATE, field: "track",
        parameter: {type: ENUM, enum: TRACK_NAMES, initial: 2},
        values: protocol.TRACKS.slice(),
        summary: "Extract: the track to pull out of the sample; Add a part: the track to make for it"
    },
    {
        name: "strength", varname: "Strength", maxclass: "live.dial", message: "strength",
        address: A.JOB_GENERATE, field: "audio_prompt_strength",
        parameter: {type: FLOAT, min: 0, max: 100, initial: 50, unitstyle: UNIT_PERCENT},
        scale: 0.01,
        summary: "Transform: how far the sample is remade after the prompt (0 keeps it, 100 % ignores it)"
    },
    {
        name: "run_task", varname: "Run Task", maxclass: "live.text", message: "run_task",
        address: A.JOB_GENERATE, field: "task",
        parameter: {type: ENUM, enum: ["off", "on"], initial: 0},
        summary: "runs the Task on the current sample (the clip the device made or fitted last); the result " +
            "becomes a new clip and follows the tempo like any sample"
    }
];

// What the device reads from Live rather than from a control, and where each value goes.
exports.LIVE_INPUTS = [
    {name: "tempo", source: "live_set tempo (observed)", address: A.JOB_CONFORM, field: "tempo_bpm",
        summary: "sent with every request; a change re-conforms the current sample"},
    {name: "meter_numerator", source: "live_set signature_numerator", address: A.JOB_GENERATE,
        field: "meter_numerator",
        summary: "sent with every request, as Live shows it: the Length counts bars of this meter"},
    {name: "meter_denominator", source: "live_set signature_denominator", address: A.JOB_GENERATE,
        field: "meter_denominator",
        summary: "sent with every request, as Live shows it; the engine works out its bar from the two"},
    {name: "sample_rate", source: "dspstate~", address: A.JOB_GENERATE, field: "sample_rate",
        summary: "the conformed file is written at Live's sample rate"},
    {name: "key", source: "live_set root_note, scale_name, scale_mode (observed)", address: A.JOB_CONFORM,
        field: "key",
        summary: "the song's key (Scale Mode on, a major or minor scale: C ... B, Cm ... Bm), sent with every " +
            "request; a change re-conforms the current sample"}
];

// Settings a Max user sends to the script as messages (no control in the device's view).
exports.SETTINGS = [
    {name: "model", message: "model", address: A.JOB_GENERATE, field: "model",
        summary: "\"model ID\": the engine's model to use (default: the engine's default model)"},
    {name: "engine", message: "engine", address: A.ENGINE_HELLO, field: null,
        summary: "\"engine HOST PORT\": where the engine listens (default 127.0.0.1 and the protocol's OSC port)"},
    {name: "reply_port", message: "reply_port", address: A.CONTROLLER_REGISTER, field: null,
        summary: "\"reply_port PORT\": where this device listens for replies (one port per device in a set)"}
];

exports.byName = function (name) {
    for (var i = 0; i < exports.CONTROLS.length; i++) {
        if (exports.CONTROLS[i].name === name) {
            return exports.CONTROLS[i];
        }
    }
    return null;
};
