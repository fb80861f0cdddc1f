// loopbridge — what the Max for Live device does: turns its controls into OSC requests for the
// engine, follows the replies, and puts the resulting sample into Live as a warped clip.
//
// The Device knows Max and Live only through seams handed to it:
//   live    a LiveSeam (loopbridge_live.js) over Max's LiveAPI, or over the tests' fake
//   send    send(address, args): an OSC message to the engine (Max: an outlet into udpsend)
//   ui      ui(name, value): status text and progress for the patch
//   after   after(ms, fn) -> handle; cancel(handle): timers (Max: Task; Node: setTimeout)
//   log     log(text): the Max window
//   random  random(): a number in [0, 1) for fresh seeds
//   copyFile  copyFile(source, destination): copies a dropped file into the engine's inbox
// A dropped file is either an audio prompt (Drop Mode "Vary it": Generate asks for variations of
// it) or fitted to the song as it is (Drop Mode "Fit to song": /job/conform_file at once, then
// re-conformed like any sample when the tempo changes).
// Run Task works on the current sample (the clip the device made or fitted last, already at the
// song's tempo with its first downbeat at its start): continue it, replace bars of it, transform it,
// extract a track or add a part, as the model's capabilities offer (/models/capabilities). The
// sample's file is copied into the engine's inbox and sent as the audio prompt; the result lands
// as a new clip and is re-conformed like any sample.
// Every public method catches what goes wrong, shows it on the status line and returns: an
// engine that is down, a malformed reply or a refusing Live never throws into Max.
//
// ES5, runs in Max's `js` object and in Node. Copyright the loopbridge developers. GPL-3.0-or-later.

var protocol = require("loopbridge_protocol");
var controls = require("loopbridge_controls");
var liveModule = require("loopbridge_live");

var A = protocol.ADDRESSES;
var WARP = liveModule.WARP_MODES;

// Reply arguments an engine before them does not send (the sample's key came later): a reply
// without them is read as saying nothing about the key.
var OPTIONAL_REPLY_ARGS = {};
OPTIONAL_REPLY_ARGS[A.JOB_SAMPLE] = ["key", "key_confidence"];

// Warp mode by sample kind: Beats keeps drum hits and loops tight, Complex keeps textures smooth.
var WARP_MODE_BY_KIND = {"one-shot": WARP.BEATS, "loop": WARP.BEATS, "kit": WARP.BEATS, "texture": WARP.COMPLEX};
// Knob turns and tempo drags send one request once the value settles.
var DEFAULT_SETTLE_MS = 250;
var TEMPO_EPSILON_BPM = 1e-6;

// Live 12's scales (Song.scale_name) with their intervals above the root, in semitones. The engine
// matches major and minor keys, so a scale counts as the key of its tonic triad: a major third and
// a perfect fifth above the root make it major (Lydian, Mixolydian, Major Pentatonic...), a minor
// third and a perfect fifth minor (Dorian, Phrygian, Harmonic Minor, Minor Blues...). A scale with
// both thirds, or without a third or a fifth (Locrian, Whole Tone, the diminished and most of
// Messiaen's modes, In-Sen, Iwato, Pelog Tembung), is neither: the device then asks for no key and
// says so, rather than shifting a sample towards a key the song is not in.
var LIVE_SCALES = {
    "Major": [0, 2, 4, 5, 7, 9, 11],
    "Minor": [0, 2, 3, 5, 7, 8, 10],
    "Dorian": [0, 2, 3, 5, 7, 9, 10],
    "Mixolydian": [0, 2, 4, 5, 7, 9, 10],
    "Lydian": [0, 2, 4, 6, 7, 9, 11],
    "Phrygian": [0, 1, 3, 5, 7, 8, 10],
    "Locrian": [0, 1, 3, 5, 6, 8, 10],
    "Whole Tone": [0, 2, 4, 6, 8, 10],
    "Half-whole Dim.": [0, 1, 3, 4, 6, 7, 9, 10],
    "Whole-half Dim.": [0, 2, 3, 5, 6, 8, 9, 11],
    "Minor Blues": [0, 3, 5, 6, 7, 10],
    "Minor Pentatonic": [0, 3, 5, 7, 10],
    "Major Pentatonic": [0, 2, 4, 7, 9],
    "Harmonic Minor": [0, 2, 3, 5, 7, 8, 11],
    "Harmonic Major": [0, 2, 4, 5, 7, 8, 11],
    "Dorian #4": [0, 2, 3, 6, 7, 9, 10],
    "Phrygian Dominant": [0, 1, 4, 5, 7, 8, 10],
    "Melodic Minor": [0, 2, 3, 5, 7, 9, 11],
    "Lydian Augmented": [0, 2, 4, 6, 8, 9, 11],
    "Lydian Dominant": [0, 2, 4, 6, 7, 9, 10],
    "Super Locrian": [0, 1, 3, 4, 6, 8, 10],
    "8-Tone Spanish": [0, 1, 3, 4, 5, 6, 8, 10],
    "Bhairav": [0, 1, 4, 5, 7, 8, 11],
    "Hungarian Minor": [0, 2, 3, 6, 7, 8, 11],
    "Hirajoshi": [0, 2, 3, 7, 8],
    "In-Sen": [0, 1, 5, 7, 10],
    "Iwato": [0, 1, 5, 6, 10],
    "Kumoi": [0, 2, 3, 7, 9],
    "Pelog Selisir": [0, 1, 3, 7, 8],
    "Pelog Tembung": [0, 1, 5, 7, 8],
    "Messiaen 3": [0, 2, 3, 4, 6, 7, 8, 10, 11],
    "Messiaen 4": [0, 1, 2, 5, 6, 7, 8, 11],
    "Messiaen 5": [0, 1, 5, 6, 7, 11],
    "Messiaen 6": [0, 2, 4, 5, 6, 8, 10, 11],
    "Messiaen 7": [0, 1, 2, 3, 5, 6, 7, 8, 9, 11]
};

// "major", "minor" or null (neither) for a scale's intervals, by its tonic triad (LIVE_SCALES).
function scaleFamily(intervals) {
    var minorThird = intervals.indexOf(3) >= 0;
    var majorThird = intervals.indexOf(4) >= 0;
    if (intervals.indexOf(7) < 0 || minorThird === majorThird) {
        return null;
    }
    return majorThird ? "major" : "minor";
}

// The key to ask for, from Live's song scale ({rootNote, scaleName, scaleMode}, as LiveSeam.songScale
// gives it): {key: "Am" | null, why: what the status line says when a scale is set but gives no key}.
// Scale Mode off means the song has no key set (Live shows C Major then too), and Live before 12
// has no song key: no key, and nothing to say about it.
function songKeyFromScale(scale) {
    if (!scale || scale.rootNote === null || scale.scaleName === null || scale.scaleMode === null ||
            !scale.scaleMode) {
        return {key: null, why: ""};
    }
    var intervals = LIVE_SCALES.hasOwnProperty(scale.scaleName) ? LIVE_SCALES[scale.scaleName] : null;
    var root = Math.round(scale.rootNote);
    if (!intervals || !(root >= 0 && root <= 11)) {
        return {key: null, why: "Live's scale " + scale.scaleName + " is not one the device knows: no key asked"};
    }
    var family = scaleFamily(intervals);
    if (family === null) {
        return {key: null, why: "Live's scale " + protocol.KEY_NAMES.MAJOR[root] + " " + scale.scaleName +
            " is neither major nor minor: no key asked"};
    }
    return {key: (family === "minor" ? protocol.KEY_NAMES.MINOR : protocol.KEY_NAMES.MAJOR)[root], why: ""};
}

function round(value, digits) {
    var scale = Math.pow(10, digits);
    return Math.round(value * scale) / scale;
}

function basename(path) {
    var parts = String(path).split(/[\\\/]/);
    return parts[parts.length - 1];
}

// A dropped file's copy in the engine's inbox: "<device id>audio<n>-<its name>", with only
// characters that every file system takes.
var STAGED_NAME_MAX_CHARS = 100;

function stagedName(prefix, n, source) {
    var name = basename(source).replace(/[^A-Za-z0-9._ -]/g, "_");
    return (prefix + "audio" + n + "-" + name).substring(0, STAGED_NAME_MAX_CHARS);
}

// `name` in `folder`, with the folder's own separator (the engine's machine is this one).
function joinPath(folder, name) {
    var text = String(folder);
    var sep = text.indexOf("\\") >= 0 && text.indexOf("/") < 0 ? "\\" : "/";
    return text.replace(/[\\\/]+$/, "") + sep + name;
}

function clamp(value, low, high) {
    return Math.max(low, Math.min(high, value));
}

// Max hands paths around in its own style, "Volume:/folder/file.wav"; the engine and Live's
// create_audio_clip want the operating system's. A one-letter volume is a Windows drive
// ("C:/x.wav" already is a Windows path); on macOS the boot volume is "/" and others are under
// /Volumes. Native paths pass through unchanged.
function nativePath(path, bootVolume) {
    var text = String(path);
    var match = /^([^\/:]+):\/(.*)$/.exec(text);
    if (!match || match[1].length === 1) {
        return text;
    }
    if (bootVolume && match[1] !== bootVolume) {
        return "/Volumes/" + match[1] + "/" + match[2];
    }
    return "/" + match[2];
}

function Device(seams, options) {
    options = options || {};
    this.live = seams.live;
    this.sendRaw = seams.send;
    this.ui = seams.ui;
    this.after = seams.after;
    this.cancelTimer = seams.cancel;
    this.log = seams.log || function () {};
    this.random = seams.random || Math.random;
    this.copyFile = seams.copyFile || null;

    this.engineHost = options.engineHost || protocol.DEFAULT_OSC_HOST;
    this.enginePort = options.enginePort || protocol.DEFAULT_OSC_PORT;
    this.replyPort = options.replyPort || protocol.DEFAULT_OSC_REPLY_PORT;
    this.requestTimeoutMs = options.requestTimeoutMs || protocol.REQUEST_TIMEOUT_S * 1000;
    this.settleMs = options.settleMs === undefined ? DEFAULT_SETTLE_MS : options.settleMs;
    this.idPrefix = options.idPrefix || ("m4l" + Math.floor(this.random() * 1e6) + "-");
    this.bootVolume = options.bootVolume || "";

    // control values, as the engine takes them
    this.values = {
        prompt: "",
        morph_prompt: "",
        variation: 0,
        morph_amount: 0,
        bars: 1,
        pitch_semitones: 0,
        kind: "loop",
        steps: 0,
        audio_prompt_path: "",
        model: "",
        loudness_lufs: protocol.DEFAULT_LOUDNESS_LUFS,
        // Run Task's settings
        task: "continue",
        continue_bars: 1,
        replace_from_bar: 0,
        replace_to_bar: 1,
        track: "drums",
        audio_prompt_strength: 0.5
    };
    this.tempoBpm = null;
    this.songKey = null;       // the song's key as the engine names it ("Am", "F#"), or null: none asked
    this.songKeyWhy = "";      // why there is none (Scale Mode off, a scale neither major nor minor)
    this.sampleRate = null;
    this.jobs = {};
    this.jobCount = 0;
    this.timers = {};
    this.engineReady = false;
    this.helloTimer = null;
    this.inbox = null;         // the engine's folder for files it is to read (its hello reply)
    this.promptSource = "";    // the dropped file as Max gave it (what its File object opens)
    this.staged = null;        // the dropped file's copy in the inbox: {source, inbox, path}
    this.stagedCount = 0;
    this.generateAfterHello = false;
    this.dropMode = "vary";    // what a dropped file is for: "vary" (an audio prompt) or "fit" (conformed as it is)
    this.fitPending = null;    // a file dropped to fit while the engine's inbox is not known yet: {raw, path}
    this.lastRequest = null;   // {fields, seed}: what Variation and Morph vary
    this.current = null;       // the sample in Live now: {renderKey, kind, bars, path, beats, tempoBpm, ...}
    this.placed = null;        // where the device put it: {where, trackPath, trackName, slotPath, slotIndex, clipId, file, position}
    this.replaceJobId = null;  // newest variation / morph / conform job (older ones are superseded)
    this.offered = null;       // what the model does to a sample: {model, tasks, tracks} (its capabilities)
    this.capabilitiesAsked = null;  // the model whose capabilities were asked for last ("" = the default)
    this.taskPending = false;  // Run Task pressed before the engine named its inbox and the model's tasks
}

// ---- status ------------------------------------------------------------------------------------

Device.prototype.status = function (text) {
    this.statusText = text;
    this.ui("status", text);
    this.log(text);
};

Device.prototype.progress = function (fraction) {
    this.ui("progress", clamp(fraction, 0, 1));
};

Device.prototype.guard = function (what, fn) {
    try {
        return fn.call(this);
    } catch (err) {
        this.status("Could not " + what + ": " + (err && err.message ? err.message : String(err)));
        return null;
    }
};

Device.prototype.engineName = function () {
    return this.engineHost + ":" + this.enginePort;
};

Device.prototype.send = function (address, args) {
    this.sendRaw(address, args);
};

// ---- lifecycle ---------------------------------------------------------------------------------

// Starts observing the tempo and says hello to the engine (registering the reply port).
Device.prototype.start = function () {
    return this.guard("start", function () {
        var self = this;
        this.live.observeTempo(function (bpm) {
            self.tempoChanged(bpm);
        });
        this.readSongKey();
        this.live.observeSongScale(function () {
            self.songScaleChanged();
        });
        this.hello();
    });
};

Device.prototype.stop = function () {
    return this.guard("stop", function () {
        for (var key in this.timers) {
            if (this.timers.hasOwnProperty(key)) {
                this.cancelTimer(this.timers[key]);
            }
        }
        this.timers = {};
        this.cancelTimer(this.helloTimer);
        this.helloTimer = null;
        for (var id in this.jobs) {
            if (this.jobs.hasOwnProperty(id)) {
                this.cancelTimer(this.jobs[id].timer);
            }
        }
        this.jobs = {};
        this.send(A.CONTROLLER_UNREGISTER, [this.replyPort]);
    });
};

Device.prototype.hello = function () {
    var self = this;
    this.register();
    this.send(A.ENGINE_HELLO, []);
    this.cancelTimer(this.helloTimer);
    this.helloTimer = this.after(this.requestTimeoutMs, function () {
        self.helloTimer = null;
        self.generateAfterHello = false;
        self.fitPending = null;
        self.taskPending = false;
        if (!self.engineReady) {
            self.status("No answer from the loopbridge engine at " + self.engineName() +
                ". Start it with `loopbridge serve`; Generate tries again.");
        }
    });
};

// Replies go to the port the device registers: Max's udpsend and udpreceive are two sockets.
Device.prototype.register = function () {
    this.send(A.CONTROLLER_REGISTER, [this.replyPort]);
};

Device.prototype.setEngine = function (host, port, replyPort) {
    return this.guard("change the engine address", function () {
        if (host) {
            this.engineHost = String(host);
        }
        if (port) {
            this.enginePort = Number(port);
        }
        if (replyPort) {
            this.replyPort = Number(replyPort);
        }
        this.engineReady = false;
        this.hello();
    });
};

// "" = the engine's default model
Device.prototype.setModel = function (model) {
    var changed = this.values.model !== (model === undefined || model === null ? "" : String(model));
    this.values.model = model === undefined || model === null ? "" : String(model);
    if (changed) {
        this.offered = null;
        if (this.inbox !== null) {
            this.askCapabilities();  // the engine answered before: ask what this model does
        }
    }
};

// Asks the engine what the model does to a sample; the answer sets `offered` (onCapabilities).
Device.prototype.askCapabilities = function () {
    this.capabilitiesAsked = this.values.model;
    this.register();
    this.send(A.MODELS_CAPABILITIES, [this.values.model]);
};

Device.prototype.setSampleRate = function (rate) {
    var n = Number(rate);
    if (isFinite(n) && n >= protocol.LIMITS.SAMPLE_RATE_MIN && n <= protocol.LIMITS.SAMPLE_RATE_MAX) {
        this.sampleRate = Math.round(n);
    }
};

// ---- controls ----------------------------------------------------------------------------------

// A control's value restored with the Live set: taken without sending anything.
Device.prototype.restore = function (name, raw) {
    this.restoring = true;
    try {
        return this.control(name, raw);
    } finally {
        this.restoring = false;
    }
};

// A control of the patch changed (name from loopbridge_controls.js, raw value from Max).
Device.prototype.control = function (name, raw) {
    return this.guard("read the " + name + " control", function () {
        var row = controls.byName(name);
        if (!row) {
            this.log("unknown control " + name);
            return;
        }
        switch (name) {
        case "prompt":
        case "morph_prompt":
            this.values[row.field] = raw === undefined || raw === null ? "" : String(raw);
            return;
        case "length":
        case "kind":
            var index = clamp(Math.round(Number(raw) || 0), 0, row.values.length - 1);
            this.values[row.field] = row.values[index];
            return;
        case "variation":
            this.values.variation = Math.max(0, Math.round(Number(raw) || 0));
            this.settle("variation", this.requestVariation);
            return;
        case "morph":
            this.values.morph_amount = round(clamp((Number(raw) || 0) * row.scale, 0, 1), 4);
            this.settle("morph", this.requestMorph);
            return;
        case "pitch":
            this.values.pitch_semitones = Math.round(Number(raw) || 0);
            this.settle("pitch", this.requestConform);
            return;
        case "quality":
            this.values.steps = Math.max(0, Math.round(Number(raw) || 0));
            return;
        case "loudness":
            var lufs = Number(raw);
            if (isFinite(lufs)) {
                this.values.loudness_lufs = round(clamp(lufs, row.parameter.min, row.parameter.max), 2);
                this.settle("loudness", this.requestConform);
            }
            return;
        case "drop_mode":
            var mode = clamp(Math.round(Number(raw) || 0), 0, row.values.length - 1);
            this.dropMode = row.values[mode];
            if (!this.restoring) {
                this.status(this.dropMode === "fit" ?
                    "Drop a file to fit it to the song's tempo and meter." :
                    "Drop a file to make variations of it with Generate.");
            }
            return;
        case "audio_prompt":
            if (this.dropMode === "fit") {
                if (raw && !this.restoring) {
                    this.fitFile(String(raw));
                }
                return;  // the audio prompt stays as it was
            }
            this.promptSource = raw ? String(raw) : "";
            this.staged = null;  // dropped again: copied again, as it is now
            this.values.audio_prompt_path = raw ? nativePath(raw, this.bootVolume) : "";
            if (this.values.audio_prompt_path && !this.restoring) {
                this.status("Audio prompt: " + basename(this.values.audio_prompt_path) +
                    ". Generate asks for variations of it.");
            }
            return;
        case "task":
        case "track":
            var choice = clamp(Math.round(Number(raw) || 0), 0, row.values.length - 1);
            this.values[row.field] = row.values[choice];
            return;
        case "task_bars":
        case "from_bar":
        case "to_bar":
            var bars = Number(raw);
            if (isFinite(bars)) {
                // whole steps of a quarter bar, as the engine counts them
                this.values[row.field] = clamp(Math.round(bars / row.step) * row.step, row.parameter.min, row.parameter.max);
            }
            return;
        case "strength":
            var amount = Number(raw);
            if (isFinite(amount)) {
                this.values.audio_prompt_strength = round(clamp(amount * row.scale, 0, 1), 4);
            }
            return;
        case "clear_audio":
            if (!this.restoring) {
                this.values.audio_prompt_path = "";
                this.promptSource = "";
                this.staged = null;
                this.status("Audio prompt cleared.");
            }
            return;
        default:
            this.log("control " + name + " has no handler");
        }
    });
};

// Waits until a knob has not moved for settleMs, then runs fn once.
Device.prototype.settle = function (key, fn) {
    var self = this;
    if (this.restoring) {
        return;
    }
    this.cancelTimer(this.timers[key]);
    this.timers[key] = this.after(this.settleMs, function () {
        delete self.timers[key];
        self.guard("send the " + key + " request", fn);
    });
};

// ---- requests ----------------------------------------------------------------------------------

Device.prototype.songTempo = function () {
    var bpm = this.live.tempo();
    if (bpm !== null) {
        this.tempoBpm = bpm;
    }
    return this.tempoBpm;
};

// The song's time signature as Live shows it, {numerator, denominator}, or null when Live does
// not give both as whole numbers (the engine then keeps its request's own bar). The device draws
// no conclusion from it: requests carry it with `bars` in bars of this meter, and the engine works
// out its own bar, saying so (/job/note) when it cannot make a length exactly (engine/host.py).
Device.prototype.songMeter = function () {
    var meter = this.live.meter();
    if (!meter || !wholePositive(meter.numerator) || !wholePositive(meter.denominator)) {
        return null;
    }
    return {numerator: meter.numerator, denominator: meter.denominator};
};

function wholePositive(value) {
    return typeof value === "number" && isFinite(value) && value > 0 && Math.floor(value) === value;
}

// `fields` with `meter` (from songMeter) as meter_numerator and meter_denominator, replacing the
// meter they were sent with; null leaves both out.
function withMeter(fields, meter) {
    fields = setField(fields, "meter_numerator", meter ? meter.numerator : null);
    return setField(fields, "meter_denominator", meter ? meter.denominator : null);
}

// The key/value fields of a generate-type request from the controls, or a reason why not.
Device.prototype.generateFields = function (seed) {
    var v = this.values;
    var L = protocol.LIMITS;
    if (v.prompt.length > L.PROMPT_MAX_CHARS) {
        return {error: "The prompt has " + v.prompt.length + " characters: at most " + L.PROMPT_MAX_CHARS + "."};
    }
    if (v.morph_prompt.length > L.PROMPT_MAX_CHARS) {
        return {error: "The morph target has " + v.morph_prompt.length + " characters: at most " +
            L.PROMPT_MAX_CHARS + "."};
    }
    var tempo = this.songTempo();
    if (tempo === null || tempo < L.TEMPO_MIN_BPM || tempo > L.TEMPO_MAX_BPM) {
        return {error: "Live's tempo " + tempo + " BPM is outside " + L.TEMPO_MIN_BPM + "-" + L.TEMPO_MAX_BPM + " BPM."};
    }
    var fields = withMeter([
        ["prompt", v.prompt],
        ["kind", v.kind],
        ["seed", seed],
        ["variation", v.variation],
        ["tempo_bpm", round(tempo, 6)]
    ], this.songMeter());
    fields.push(["pitch_semitones", v.pitch_semitones]);
    fields = this.withSongKeyAndLoudness(fields);
    // one-shots take the model's natural length; everything else lasts the Length's bars of the song
    if (v.kind !== "one-shot") {
        fields.push(["bars", v.bars]);
    }
    if (v.steps > 0) {
        fields.push(["steps", clamp(v.steps, L.STEPS_MIN, L.STEPS_MAX)]);
    }
    if (v.morph_prompt && v.morph_amount > 0) {
        fields.push(["morph_prompt", v.morph_prompt]);
        fields.push(["morph_amount", v.morph_amount]);
    }
    if (v.audio_prompt_path) {
        fields.push(["audio_prompt_path", v.audio_prompt_path]);
    }
    if (v.model) {
        fields.push(["model", v.model]);
    }
    if (this.sampleRate) {
        fields.push(["sample_rate", this.sampleRate]);
    }
    return {fields: fields};
};

// `fields` with the song's key (left out when there is none: the sample keeps the key it was made
// in) and the Loudness control's value.
Device.prototype.withSongKeyAndLoudness = function (fields) {
    fields = setField(fields, "key", this.songKey);
    return setField(fields, "loudness_lufs", this.values.loudness_lufs);
};

function setField(fields, name, value) {
    var out = [];
    var found = false;
    for (var i = 0; i < fields.length; i++) {
        if (fields[i][0] === name) {
            if (value !== null) {
                out.push([name, value]);
            }
            found = true;
        } else {
            out.push(fields[i]);
        }
    }
    if (!found && value !== null) {
        out.push([name, value]);
    }
    return out;
}

function fieldValue(fields, name) {
    for (var i = 0; i < fields.length; i++) {
        if (fields[i][0] === name) {
            return fields[i][1];
        }
    }
    return null;
}

function flatten(fields) {
    var args = [];
    for (var i = 0; i < fields.length; i++) {
        args.push(fields[i][0], fields[i][1]);
    }
    return args;
}

Device.prototype.generate = function () {
    return this.guard("generate", function () {
        // 0 to RANDOM_SEED_MAX, as the engine draws its own: seeds travel as OSC int32
        var seed = Math.floor(this.random() * (protocol.RANDOM_SEED_MAX + 1));
        var built = this.generateFields(seed);
        if (built.error) {
            this.status(built.error);
            return null;
        }
        if (this.values.audio_prompt_path) {
            if (!this.inbox) {
                // the engine takes dropped files from its inbox: ask where that is, then generate
                this.generateAfterHello = true;
                this.hello();
                this.status("Asking the engine where to put the audio prompt...");
                return null;
            }
            var staged = this.stageAudioPrompt();
            if (staged.error) {
                this.status(staged.error);
                return null;
            }
            built.fields = setField(built.fields, "audio_prompt_path", staged.path);
        }
        this.lastRequest = {fields: built.fields, seed: seed};
        var what = this.values.prompt ? "\"" + this.values.prompt + "\"" : "(no prompt)";
        return this.startJob("generate", A.JOB_GENERATE, built.fields, false,
            "Generating " + this.values.kind + " " + what + " at " + round(this.tempoBpm, 2) + " BPM...");
    });
};

// A file dropped in Fit to song mode: copied into the engine's inbox and fitted to the song's tempo,
// meter and the Length's bars (a loop; the engine keeps a one-shot's own length) at Live's rate.
Device.prototype.fitFile = function (raw) {
    var path = nativePath(raw, this.bootVolume);
    if (!this.inbox) {
        this.fitPending = {raw: raw, path: path};
        this.hello();
        this.status("Asking the engine where to put " + basename(path) + "...");
        return null;
    }
    this.fitPending = null;
    var tempo = this.songTempo();
    if (tempo === null) {
        this.status("Live's tempo is not known yet: drop the file again in a moment.");
        return null;
    }
    if (!this.copyFile) {
        this.status("This device cannot copy files: " + basename(path) + " cannot reach the engine.");
        return null;
    }
    this.stagedCount += 1;
    var staged = joinPath(this.inbox, stagedName(this.idPrefix, this.stagedCount, path));
    try {
        this.copyFile(raw, staged);
    } catch (err) {
        this.status("Could not copy " + basename(path) + " into the engine's inbox " + this.inbox + ": " +
            (err && err.message ? err.message : String(err)));
        return null;
    }
    var fields = withMeter([["tempo_bpm", round(tempo, 6)]], this.songMeter());
    fields.push(["bars", this.values.bars]);
    fields.push(["name", basename(path).replace(/\.[^.]*$/, "")]);
    fields.push(["pitch_semitones", this.values.pitch_semitones]);
    fields = this.withSongKeyAndLoudness(fields);
    if (this.sampleRate) {
        fields.push(["sample_rate", this.sampleRate]);
    }
    // a new sample, as Generate's: a clip of its own in the selected slot
    return this.startJob("conform_file", A.JOB_CONFORM_FILE, fields, false,
        "Fitting " + basename(path) + " to the song at " + round(tempo, 2) + " BPM...", [staged]);
};

var TASK_NAMES = {continue: "Continue", replace: "Replace", transform: "Transform", extract: "Extract", add: "Add a part"};

// The task names a model offers, as the Task menu shows them ("Continue, Replace").
function taskList(tasks) {
    var names = [];
    for (var i = 0; i < tasks.length; i++) {
        if (TASK_NAMES.hasOwnProperty(tasks[i])) {
            names.push(TASK_NAMES[tasks[i]]);
        }
    }
    return names.join(", ");
}

// Run Task: the Task control's task on the current sample, as the model offers it. The sample's
// file (already at the song's tempo, starting on a downbeat) is copied into the engine's inbox and
// sent as the audio prompt; the result becomes a new clip.
Device.prototype.runTask = function () {
    return this.guard("run the task", function () {
        var v = this.values;
        var name = TASK_NAMES[v.task];
        if (!this.current) {
            this.status(name + ": no sample yet. Generate one, or drop a file in Fit to song mode, first.");
            return null;
        }
        if (v.pitch_semitones !== 0) {
            // the sample's file carries the shift; its result would be shifted again at every re-conform
            this.status(name + ": set Pitch to 0 first (a task works on the sample as it was made).");
            return null;
        }
        if (!this.inbox || !this.offered) {
            this.taskPending = true;
            if (!this.inbox) {
                this.hello();
            } else {
                this.askCapabilities();
            }
            this.status("Asking the engine what " + (v.model || "its default model") + " does to a sample...");
            return null;
        }
        var offered = this.offered;
        if (offered.tasks.indexOf(v.task) < 0) {
            this.status(name + ": " + offered.model + " cannot do that to a sample" +
                (offered.tasks.length ? " (it offers: " + taskList(offered.tasks) + ")." : "; choose a model that can."));
            return null;
        }
        if ((v.task === "extract" || v.task === "add") && offered.tracks.indexOf(v.track) < 0) {
            this.status(name + ": " + offered.model + " takes no track " + v.track + " (it takes: " +
                offered.tracks.join(", ") + ").");
            return null;
        }
        var tempo = this.songTempo();
        if (tempo === null) {
            this.status(name + ": Live's tempo is not known yet.");
            return null;
        }
        if (!this.copyFile) {
            this.status("This device cannot copy files: the sample cannot reach the engine.");
            return null;
        }
        this.stagedCount += 1;
        var staged = joinPath(this.inbox, stagedName(this.idPrefix, this.stagedCount, this.current.path));
        try {
            this.copyFile(this.current.path, staged);
        } catch (err) {
            this.status("Could not copy the sample into the engine's inbox " + this.inbox + ": " +
                (err && err.message ? err.message : String(err)));
            return null;
        }
        var seed = Math.floor(this.random() * (protocol.RANDOM_SEED_MAX + 1));
        var fields = withMeter([
            ["prompt", v.prompt],
            ["kind", "loop"],
            ["seed", seed],
            ["tempo_bpm", round(tempo, 6)]
        ], this.songMeter());
        fields.push(["task", v.task]);
        if (v.task === "continue") {
            fields.push(["continue_bars", v.continue_bars]);
        } else if (v.task === "replace") {
            fields.push(["replace_from_bar", v.replace_from_bar]);
            fields.push(["replace_to_bar", v.replace_to_bar]);
        } else if (v.task === "transform") {
            fields.push(["audio_prompt_strength", v.audio_prompt_strength]);
        } else {
            fields.push(["track", v.track]);
        }
        fields.push(["audio_prompt_path", staged]);
        fields.push(["pitch_semitones", 0]);
        fields = this.withSongKeyAndLoudness(fields);
        if (v.steps > 0) {
            fields.push(["steps", clamp(v.steps, protocol.LIMITS.STEPS_MIN, protocol.LIMITS.STEPS_MAX)]);
        }
        if (v.model) {
            fields.push(["model", v.model]);
        }
        if (this.sampleRate) {
            fields.push(["sample_rate", this.sampleRate]);
        }
        var what = v.task === "continue" ? "Continuing the sample by " + v.continue_bars + " bars" :
            v.task === "replace" ? "Replacing bars " + v.replace_from_bar + "-" + v.replace_to_bar + " of the sample" :
                v.task === "transform" ? "Transforming the sample " + Math.round(v.audio_prompt_strength * 100) + "%" :
                    v.task === "extract" ? "Extracting the " + v.track + " from the sample" :
                        "Adding a " + v.track + " part to the sample";
        // a new sample, as Generate's: a clip of its own in the selected slot
        return this.startJob("task", A.JOB_GENERATE, fields, false, what + " with " + offered.model + "...");
    });
};

// The engine's /models/capabilities answer: what the model does to a sample.
Device.prototype.onCapabilities = function (msg) {
    if (this.capabilitiesAsked === null) {
        return;  // another controller asked
    }
    var asked = this.capabilitiesAsked;
    if (asked !== "" && String(msg.model) !== asked) {
        return;  // about a model asked for before the latest
    }
    var caps = JSON.parse(String(msg.json));
    var tasks = [];
    var listed = caps && caps.tasks && caps.tasks.length ? caps.tasks : [];
    for (var i = 0; i < listed.length; i++) {
        if (String(listed[i]) !== "generate") {
            tasks.push(String(listed[i]));
        }
    }
    this.capabilitiesAsked = null;
    this.offered = {model: String(msg.model), tasks: tasks, tracks: caps && caps.tracks ? caps.tracks.slice() : []};
    this.ui("tasks", tasks.length ? "Run Task with " + this.offered.model + ": " + taskList(tasks) + "." :
        this.offered.model + " does nothing to a sample: Run Task needs a model that does (Stable Audio 3, ACE-Step).");
    if (this.taskPending) {
        this.taskPending = false;
        this.runTask();
    }
};

// The dropped file as the engine reads it: a copy in the engine's inbox (the engine refuses paths
// outside the folders its user allowed, and the inbox is the one it names). Copied once per drop
// and inbox; {path} or {error}.
Device.prototype.stageAudioPrompt = function () {
    var source = this.values.audio_prompt_path;
    if (this.staged && this.staged.source === source && this.staged.inbox === this.inbox) {
        return {path: this.staged.path};
    }
    if (!this.copyFile) {
        return {error: "This device cannot copy files: the audio prompt stays unused."};
    }
    this.stagedCount += 1;
    var path = joinPath(this.inbox, stagedName(this.idPrefix, this.stagedCount, source));
    try {
        this.copyFile(this.promptSource || source, path);
    } catch (err) {
        return {error: "Could not copy the audio prompt " + basename(source) + " into the engine's inbox " +
            this.inbox + ": " + (err && err.message ? err.message : String(err))};
    }
    this.staged = {source: source, inbox: this.inbox, path: path};
    return {path: path};
};

// The last request again with the live values that Variation / Morph / Pitch / tempo / meter change.
// Its bars stay the bars first asked for, now of the song's meter as it is.
Device.prototype.followUpFields = function () {
    var fields = withMeter(this.lastRequest.fields, this.songMeter());
    fields = setField(fields, "variation", this.values.variation);
    fields = setField(fields, "pitch_semitones", this.values.pitch_semitones);
    fields = this.withSongKeyAndLoudness(fields);
    var tempo = this.songTempo();
    if (tempo !== null) {
        fields = setField(fields, "tempo_bpm", round(tempo, 6));
    }
    if (this.sampleRate) {
        fields = setField(fields, "sample_rate", this.sampleRate);
    }
    return fields;
};

Device.prototype.requestVariation = function () {
    if (!this.lastRequest) {
        this.status("Variation " + this.values.variation + ": press Generate first.");
        return null;
    }
    return this.startJob("variation", A.JOB_VARIATION, this.followUpFields(), true,
        "Fetching variation " + this.values.variation + "...");
};

Device.prototype.requestMorph = function () {
    if (!this.lastRequest) {
        this.status("Morph: press Generate first.");
        return null;
    }
    if (!this.values.morph_prompt) {
        this.status("Morph: type a morph target prompt first.");
        return null;
    }
    var fields = this.followUpFields();
    fields = setField(fields, "morph_prompt", this.values.morph_prompt);
    fields = setField(fields, "morph_amount", this.values.morph_amount);
    return this.startJob("morph", A.JOB_MORPH, fields, true,
        "Morphing " + Math.round(this.values.morph_amount * 100) + "% towards \"" + this.values.morph_prompt + "\"...");
};

// Re-conforms the sample in Live to the song's tempo and the Pitch dial: no model run.
Device.prototype.requestConform = function () {
    if (!this.current) {
        return null;
    }
    var running = this.replaceJobId ? this.jobs[this.replaceJobId] : null;
    if (running && running.op !== "conform") {
        // a variation or morph is on its way: it is fitted to the new tempo and pitch when it lands
        return null;
    }
    var tempo = this.songTempo();
    if (tempo === null) {
        return null;
    }
    var fields = withMeter([
        ["render_key", this.current.renderKey],
        ["tempo_bpm", round(tempo, 6)]
    ], this.songMeter());
    fields.push(["pitch_semitones", this.values.pitch_semitones]);
    fields = this.withSongKeyAndLoudness(fields);
    // the bars first asked for, of the song's meter as it is now
    var bars = this.current.kind !== "one-shot" ? this.current.bars : null;
    if (bars !== null && bars !== undefined) {
        fields.push(["bars", bars]);
    }
    if (this.sampleRate) {
        fields.push(["sample_rate", this.sampleRate]);
    }
    if (this.lastRequest) {
        this.lastRequest.fields = setField(this.lastRequest.fields, "pitch_semitones", this.values.pitch_semitones);
        this.lastRequest.fields = this.withSongKeyAndLoudness(this.lastRequest.fields);
    }
    return this.startJob("conform", A.JOB_CONFORM, fields, true,
        "Re-conforming to " + round(tempo, 2) + " BPM" +
        (this.values.pitch_semitones ? ", " + this.values.pitch_semitones + " st" : "") +
        (this.songKey ? " in " + this.songKey : "") + "...");
};

// The song's tempo changed (from the observer). The first call only records it.
Device.prototype.tempoChanged = function (bpm) {
    return this.guard("follow the tempo", function () {
        var previous = this.tempoBpm;
        this.tempoBpm = bpm;
        if (previous === null || Math.abs(previous - bpm) < TEMPO_EPSILON_BPM || !this.current) {
            return;
        }
        this.settle("tempo", this.requestConform);
    });
};

// Reads Live's song scale into songKey / songKeyWhy; true when the key to ask for changed.
Device.prototype.readSongKey = function () {
    var found = songKeyFromScale(this.live.songScale());
    var changed = found.key !== this.songKey;
    this.songKey = found.key;
    this.songKeyWhy = found.why;
    return changed;
};

// Live's root note, scale or Scale Mode changed (from the observers): a new key re-conforms the
// sample in Live, as a tempo change does (the model does not run).
Device.prototype.songScaleChanged = function () {
    return this.guard("follow the song's key", function () {
        if (!this.readSongKey() || !this.current) {
            return;
        }
        this.settle("key", this.requestConform);
    });
};

Device.prototype.nextId = function () {
    this.jobCount += 1;
    return (this.idPrefix + this.jobCount).substring(0, protocol.MAX_ID_CHARS);
};

// Sends a job request. `replaces`: its result replaces the device's clip, and it supersedes
// (cancels) the previous replacing job still running. `positional`: the address's arguments after
// the id (conform_file's path), before the key/value fields.
Device.prototype.startJob = function (op, address, fields, replaces, text, positional) {
    var self = this;
    var id = this.nextId();
    if (replaces && this.replaceJobId && this.jobs[this.replaceJobId]) {
        var old = this.jobs[this.replaceJobId];
        old.superseded = true;
        this.send(A.JOB_CANCEL, [old.id]);
    }
    var job = {id: id, op: op, fields: fields, replaces: replaces, samples: [], notes: [], answered: false,
        superseded: false};
    this.jobs[id] = job;
    if (replaces) {
        this.replaceJobId = id;
    }
    this.register();
    this.send(address, [id].concat(positional || [], flatten(fields)));
    job.timer = this.after(this.requestTimeoutMs, function () {
        job.timer = null;
        if (!job.answered && self.jobs[id] === job) {
            // Nothing was heard of it: let it go. A job left pending would keep a later hello from
            // saying "ready" and hold back every re-conform; an engine that gets the request late
            // is told to drop it, and a late answer is ignored like any finished job's.
            self.forget(job);
            self.engineReady = false;
            self.send(A.JOB_CANCEL, [id]);
            self.status("No answer from the loopbridge engine at " + self.engineName() + " within " +
                Math.round(self.requestTimeoutMs / 100) / 10 + " s. Is `loopbridge serve` running?");
        }
    });
    this.progress(0);
    this.status(text);
    return id;
};

// ---- replies -----------------------------------------------------------------------------------

function named(address, args) {
    var names = protocol.REPLY_ARGS[address];
    var out = {};
    for (var i = 0; i < names.length; i++) {
        out[names[i]] = args[i];
    }
    return out;
}

// An OSC message from the engine (Max: udpreceive's output, address as the message name).
Device.prototype.receive = function (address, args) {
    return this.guard("read the engine's " + address + " message", function () {
        args = args || [];
        var names = protocol.REPLY_ARGS[address];
        if (!names) {
            // other addresses of the protocol (session feedback to registered controllers) are not ours
            if (String(address).indexOf(protocol.OSC_ROOT + "/") !== 0) {
                this.log("ignored OSC message " + address);
            }
            return;
        }
        var optional = OPTIONAL_REPLY_ARGS.hasOwnProperty(address) ? OPTIONAL_REPLY_ARGS[address].length : 0;
        if (args.length < names.length - optional) {
            this.status("The engine sent " + address + " with " + args.length + " arguments: expected " +
                (optional ? "at least " + (names.length - optional) : names.length) + " (" + names.join(", ") + ").");
            return;
        }
        var msg = named(address, args);
        if (address === A.HELLO_REPLY) {
            this.onHello(msg);
            return;
        }
        if (address === A.REGISTERED) {
            return;
        }
        if (address === A.MODELS_CAPABILITIES) {
            this.onCapabilities(msg);
            return;
        }
        if (address === A.ERROR) {
            this.onError(msg);
            return;
        }
        var job = this.jobs[String(msg.id)];
        if (!job) {
            return;  // another controller's job, or one that already finished
        }
        job.answered = true;
        this.engineReady = true;
        if (address === A.JOB_ACCEPTED) {
            if (!job.superseded && Number(msg.position) > 0) {
                this.status("Queued (position " + msg.position + ").");
            }
        } else if (address === A.JOB_PROGRESS) {
            if (!job.superseded && isFinite(Number(msg.fraction))) {
                this.progress(Number(msg.fraction));
            }
        } else if (address === A.JOB_SAMPLE) {
            job.samples.push(this.parseSample(msg));
        } else if (address === A.JOB_NOTE) {
            // what the engine could not make exactly as asked (a length its limits cannot hold in
            // the song's meter): shown with the result
            if (msg.text !== undefined && msg.text !== null && String(msg.text) !== "") {
                job.notes.push(String(msg.text));
            }
        } else if (address === A.JOB_DONE) {
            this.finish(job);
        } else if (address === A.JOB_CANCELLED) {
            this.forget(job);
            if (!job.superseded) {
                this.status("Cancelled.");
            }
        }
    });
};

Device.prototype.onHello = function (msg) {
    this.engineReady = true;
    this.cancelTimer(this.helloTimer);
    this.helloTimer = null;
    if (Number(msg.protocol_version) !== protocol.PROTOCOL_VERSION) {
        this.generateAfterHello = false;
        this.taskPending = false;
        this.status("The engine at " + this.engineName() + " speaks protocol " + msg.protocol_version +
            "; this device speaks " + protocol.PROTOCOL_VERSION + ". Update one of them.");
        return;
    }
    this.inbox = msg.inbox ? String(msg.inbox) : null;
    this.askCapabilities();
    if (this.fitPending) {
        var pending = this.fitPending;
        this.fitPending = null;
        if (this.inbox) {
            this.fitFile(pending.raw);
        } else {
            this.status("The engine at " + this.engineName() + " names no inbox for files: update it.");
        }
        return;
    }
    if (this.generateAfterHello) {
        this.generateAfterHello = false;
        if (this.inbox) {
            this.generate();
        } else {
            this.status("The engine at " + this.engineName() + " names no inbox for audio prompts: update it.");
        }
        return;
    }
    if (this.activeJobs() === 0) {
        this.status("Engine " + msg.engine_version + " ready at " + this.engineName() + ".");
    }
};

Device.prototype.onError = function (msg) {
    var job = this.jobs[String(msg.id)];
    if (msg.id && !job) {
        return;  // about another controller's request
    }
    if (job) {
        job.answered = true;
        this.forget(job);
        if (job.superseded || msg.code === "cancelled") {
            return;
        }
    }
    this.engineReady = true;
    this.progress(0);
    this.status("Engine error (" + msg.code + "): " + msg.message);
};

Device.prototype.parseSample = function (msg) {
    var path = String(msg.path || "");
    if (!path) {
        throw new Error("a sample without a file path");
    }
    return {
        index: Number(msg.index) || 0,
        path: path,
        kind: String(msg.kind),
        tempoBpm: Number(msg.tempo_bpm),
        beats: Number(msg.beats),
        rootNote: Number(msg.root_note),
        variation: Number(msg.variation) || 0,
        renderKey: String(msg.render_key),
        // the key the engine hears in the sample ("Am"; "" for drums and noise); undefined from an
        // engine before keys
        musicalKey: msg.key === undefined || msg.key === null ? null : String(msg.key)
    };
};

Device.prototype.activeJobs = function () {
    var n = 0;
    for (var id in this.jobs) {
        if (this.jobs.hasOwnProperty(id)) {
            n += 1;
        }
    }
    return n;
};

Device.prototype.forget = function (job) {
    this.cancelTimer(job.timer);
    job.timer = null;
    delete this.jobs[job.id];
    if (this.replaceJobId === job.id) {
        this.replaceJobId = null;
    }
};

// The sample of a finished job that goes into Live: the one of the requested kind (a kit's
// beat loop), lowest index first.
function primarySample(samples, kind) {
    var sorted = samples.slice().sort(function (a, b) {
        return a.index - b.index;
    });
    var wanted = kind === "kit" ? "loop" : kind;
    for (var i = 0; i < sorted.length; i++) {
        if (sorted[i].kind === wanted) {
            return sorted[i];
        }
    }
    return sorted[0];
}

Device.prototype.finish = function (job) {
    this.forget(job);
    if (job.superseded) {
        return;
    }
    this.progress(1);
    var notes = job.notes.length ? " " + job.notes.join(" ") : "";
    if (!job.samples.length) {
        this.status("The engine finished without a sample." + notes);
        return;
    }
    var kind = fieldValue(job.fields, "kind") || (this.current ? this.current.kind : this.values.kind);
    // a task's result keeps the source's grid: its own bars (the engine's), whatever a re-conform says
    var task = fieldValue(job.fields, "task");
    var sample = primarySample(job.samples, kind);
    var bars = fieldValue(job.fields, "bars");
    var keep = this.current && job.op === "conform";
    this.current = {
        renderKey: sample.renderKey,
        kind: sample.kind,
        // the bars asked for, of the song's meter (what a re-conform asks for again)
        bars: task !== null ? null : bars !== null ? bars : (keep ? this.current.bars : null),
        path: sample.path,
        beats: sample.beats,
        tempoBpm: sample.tempoBpm,
        variation: sample.variation,
        others: job.samples.length - 1
    };
    var placement = this.placeSample(sample, job.replaces && this.placed !== null);
    var extra = (job.samples.length > 1 ? " (+" + (job.samples.length - 1) + " more files next to it)" : "") + notes;
    if (placement.ok) {
        this.status(placement.text + extra);
    } else {
        this.status(placement.reason + " File: " + sample.path + extra);
    }
    // the tempo or the Pitch dial moved while the engine worked: fit the sample to them now
    var askedTempo = fieldValue(job.fields, "tempo_bpm");
    var askedPitch = fieldValue(job.fields, "pitch_semitones");
    var askedLoudness = fieldValue(job.fields, "loudness_lufs");
    if ((this.tempoBpm !== null && askedTempo !== null && Math.abs(askedTempo - this.tempoBpm) > 1e-3) ||
            (askedPitch !== null && askedPitch !== this.values.pitch_semitones) ||
            fieldValue(job.fields, "key") !== this.songKey ||
            (askedLoudness !== null && askedLoudness !== this.values.loudness_lufs)) {
        this.settle("tempo", this.requestConform);
    }
};

// ---- putting the sample into Live --------------------------------------------------------------

Device.prototype.placeSample = function (sample, replace) {
    var result = null;
    try {
        if (replace) {
            result = this.replaceClip(sample);
        }
        if (!result) {
            result = this.newClip(sample);
        }
    } catch (err) {
        result = {ok: false, reason: "Live refused the clip: " + (err && err.message ? err.message : err) + "."};
    }
    if (result.ok) {
        var settings = this.clipSettings(sample);
        var reported = this.live.configureClip(result.placed.clipId, settings) || {};
        if (result.refire) {
            this.live.fireSlot(result.placed.slotPath);
        }
        result.placed.file = sample.path;
        this.placed = result.placed;
        var mode = liveModule.WARP_MODE_NAMES[reported.warpMode] || liveModule.WARP_MODE_NAMES[settings.warpMode];
        var beats = round(settings.lengthBeats, 3);
        var length = !settings.looping ? "one-shot" : beats > 0 ? beats + (beats === 1 ? " beat" : " beats") + " loop" :
            "loop as long as Live reads the file";
        var where = result.placed.where === "session" ?
            "'" + result.placed.trackName + "' slot " + (result.placed.slotIndex + 1) :
            "'" + result.placed.trackName + "' at beat " + round(result.placed.position, 3);
        result.text = "Placed " + basename(sample.path) + " in " + where + ": " + mode + " warp, " + length +
            " at " + round(sample.tempoBpm, 2) + " BPM" + keyText(sample) + "." +
            (this.songKeyWhy && sample.kind !== "one-shot" ? " " + this.songKeyWhy + "." : "");
    }
    return result;
};

// ", in Am" / ", no key" / "": the sample's key as the engine heard it, for the status line.
function keyText(sample) {
    if (sample.musicalKey === null) {
        return "";
    }
    return sample.musicalKey ? ", in " + sample.musicalKey : ", no key";
}

Device.prototype.clipSettings = function (sample) {
    var warpMode = WARP_MODE_BY_KIND.hasOwnProperty(sample.kind) ? WARP_MODE_BY_KIND[sample.kind] : WARP.BEATS;
    var looping = sample.kind !== "one-shot";
    // Live counts a clip's loop in quarter notes, as the engine's `beats` does (two bars of 6/8
    // loop over 6 beats): the length is the engine's, never worked out here. A sample without it
    // keeps the length Live gives the file.
    var beats = sample.beats;
    var prompt = this.lastRequest ? String(fieldValue(this.lastRequest.fields, "prompt") || "") : "";
    var name = (prompt || "loopbridge") + " v" + sample.variation + " " + round(sample.tempoBpm, 2) + "bpm";
    return {warpMode: warpMode, looping: looping, lengthBeats: beats > 0 && isFinite(beats) ? beats : 0, name: name};
};

// A new clip where the user points: the selected slot (Session) or the play head (Arrangement).
Device.prototype.newClip = function (sample) {
    var live = this.live;
    var version = live.version();
    if (!version || !liveModule.versionAtLeast(version, liveModule.MIN_VERSION_FOR_FILE_CLIPS)) {
        return {ok: false, reason: "Live " + (version ? version.join(".") : "(unknown version)") +
            " cannot create clips from files: that takes Live 12.0.5 or later. Drag the file into Live."};
    }
    var track = live.selectedTrack();
    if (!track) {
        return {ok: false, reason: "No track is selected."};
    }
    var problem = null;
    if (!track.regular) {
        problem = "'" + track.name + "' is the master or a return track";
    } else if (track.isGroup) {
        problem = "'" + track.name + "' is a group track";
    } else if (!track.isAudio) {
        problem = "'" + track.name + "' is a MIDI track";
    } else if (track.isFrozen) {
        problem = "'" + track.name + "' is frozen";
    }
    if (problem) {
        return {ok: false, reason: problem + ": select an audio track for the clip."};
    }
    if (live.focusedView() === "Arranger") {
        var position = clamp(live.playheadBeats() || 0, 0, liveModule.MAX_ARRANGEMENT_POSITION_BEATS);
        var made = live.createArrangementClip(track.path, sample.path, position);
        if (!made) {
            return {ok: false, reason: "Live did not create the clip in '" + track.name + "' (see the Max window)."};
        }
        return {ok: true, placed: {where: "arrangement", trackPath: track.path, trackName: track.name,
            clipId: made.id, position: position}};
    }
    var slot = live.selectedSlot(track);
    if (!slot) {
        return {ok: false, reason: "No clip slot of '" + track.name + "' is selected."};
    }
    if (slot.hasClip) {
        return {ok: false, reason: "Clip slot " + (slot.index + 1) + " of '" + track.name +
            "' is full: select an empty slot."};
    }
    var clip = live.createSessionClip(slot.path, sample.path);
    if (!clip) {
        return {ok: false, reason: "Live did not create the clip in slot " + (slot.index + 1) + " of '" +
            track.name + "' (see the Max window)."};
    }
    return {ok: true, placed: {where: "session", trackPath: track.path, trackName: track.name, slotPath: slot.path,
        slotIndex: slot.index, clipId: clip.id}};
};

// Swaps the device's own clip for the new sample in the same place; null when that clip is no
// longer there as the device left it (the user moved, deleted or replaced it): then the new
// sample goes where the user points now.
Device.prototype.replaceClip = function (sample) {
    var live = this.live;
    var p = this.placed;
    if (p.where === "session") {
        var inSlot = live.slotClip(p.slotPath);
        if (!inSlot || inSlot.id !== p.clipId || inSlot.file !== p.file) {
            return null;
        }
        if (!live.deleteSessionClip(p.slotPath)) {
            return null;
        }
        var clip = live.createSessionClip(p.slotPath, sample.path);
        if (!clip) {
            return {ok: false, reason: "Live did not create the clip in slot " + (p.slotIndex + 1) + " of '" +
                p.trackName + "'."};
        }
        // a sample swapped while its clip plays keeps playing (from the next launch quantum)
        return {ok: true, refire: inSlot.playing, placed: {where: "session", trackPath: p.trackPath,
            trackName: p.trackName, slotPath: p.slotPath, slotIndex: p.slotIndex, clipId: clip.id}};
    }
    if (live.clipFile(p.clipId) !== p.file) {
        return null;
    }
    if (!live.deleteArrangementClip(p.trackPath, p.clipId)) {
        return null;
    }
    var made = live.createArrangementClip(p.trackPath, sample.path, p.position);
    if (!made) {
        return {ok: false, reason: "Live did not create the clip in '" + p.trackName + "'."};
    }
    return {ok: true, placed: {where: "arrangement", trackPath: p.trackPath, trackName: p.trackName,
        clipId: made.id, position: p.position}};
};

exports.Device = Device;
exports.nativePath = nativePath;
exports.joinPath = joinPath;
exports.stagedName = stagedName;
exports.WARP_MODE_BY_KIND = WARP_MODE_BY_KIND;
exports.primarySample = primarySample;
exports.LIVE_SCALES = LIVE_SCALES;
exports.scaleFamily = scaleFamily;
exports.songKeyFromScale = songKeyFromScale;
