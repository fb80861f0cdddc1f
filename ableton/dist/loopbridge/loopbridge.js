// loopbridge — the script of the device's `js` object (patchers/loopbridge.maxpat).
//
// Inlets:  0  controls ("variation 3", "generate", ...), OSC replies from udpreceive (via deferlow),
//             settings ("engine HOST PORT", "reply_port PORT"), "init" from live.thisdevice
//          1  the Prompt textedit ("text ...")
//          2  the Morph Target textedit ("text ...")
// Outlets: 0  OSC messages to udpsend, and its "host" / "port" settings
//          1  "port N" to udpreceive
//          2  "status TEXT" and "progress 0..1" for the patch's display
//
// This file is glue only: the logic is in loopbridge_device.js, the Live API in
// loopbridge_live.js, the protocol's names in loopbridge_protocol.js. Written for Max's `js`
// object (ES5); the Node tests run this same file with Max's globals supplied
// (ableton/node/max_host.js).
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

autowatch = 0;
inlets = 3;
outlets = 3;

var protocol = require("loopbridge_protocol");
var controls = require("loopbridge_controls");
var deviceModule = require("loopbridge_device");
var liveModule = require("loopbridge_live");

var OUT_OSC = 0;
var OUT_RECEIVER = 1;
var OUT_UI = 2;

var settings = {
    host: protocol.DEFAULT_OSC_HOST,
    enginePort: protocol.DEFAULT_OSC_PORT,
    replyPort: protocol.DEFAULT_OSC_REPLY_PORT
};
var device = null;
var stored = {};        // control values that arrive before live.thisdevice says the device is ready
var storedOrder = [];
var sampleRateValue = null;

if (typeof setinletassist === "function") {
    setinletassist(0, "controls, OSC replies (udpreceive), settings");
    setinletassist(1, "Prompt (textedit)");
    setinletassist(2, "Morph Target (textedit)");
    setoutletassist(0, "OSC to udpsend");
    setoutletassist(1, "port to udpreceive");
    setoutletassist(2, "status and progress");
}

function log(text) {
    post("loopbridge: " + text + "\n");
}

function args(list) {
    return Array.prototype.slice.call(list);
}

function applyPorts() {
    outlet(OUT_OSC, "host", settings.host);
    outlet(OUT_OSC, "port", settings.enginePort);
    outlet(OUT_RECEIVER, "port", settings.replyPort);
}

// Max's js has no call that copies a file; its File object reads and writes bytes, so a dropped
// file reaches the engine's inbox in chunks (well under what one readbytes call returns).
var COPY_CHUNK_BYTES = 16384;

function makeDevice() {
    // The engine's paths are the system's; Max's File takes "C:/..." on Windows, not backslashes.
    function maxPath(path) {
        return String(path).replace(/\\/g, "/");
    }

    function copyFile(source, destination) {
        var from = new File(source, "read");
        if (!from.isopen) {
            throw new Error("cannot open " + source);
        }
        var to = null;
        try {
            to = new File(maxPath(destination), "write");
            if (!to.isopen) {
                throw new Error("cannot write " + destination);
            }
            to.eof = 0;
            var size = from.eof;
            while (from.position < size) {
                var bytes = from.readbytes(Math.min(COPY_CHUNK_BYTES, size - from.position));
                if (!bytes || !bytes.length) {
                    throw new Error("reading stopped at byte " + from.position + " of " + size);
                }
                to.writebytes(bytes);
            }
            if (to.eof !== size) {
                throw new Error("wrote " + to.eof + " bytes of " + size);
            }
        } finally {
            from.close();
            if (to) {
                to.close();
            }
        }
    }

    var seams = {
        live: new liveModule.LiveSeam(LiveAPI),
        send: function (address, values) {
            outlet(OUT_OSC, [address].concat(values));
        },
        ui: function (name, value) {
            outlet(OUT_UI, [name, value]);
        },
        after: function (ms, fn) {
            var task = new Task(fn, this);
            task.schedule(ms);
            return task;
        },
        cancel: function (task) {
            if (task) {
                task.cancel();
            }
        },
        log: log,
        copyFile: copyFile
    };
    return new deviceModule.Device(seams, {
        engineHost: settings.host,
        enginePort: settings.enginePort,
        replyPort: settings.replyPort,
        bootVolume: bootVolume()
    });
}

// The volume Max itself runs from ("Macintosh HD" of "Macintosh HD:/Applications/Max.app"):
// the boot volume, whose Max-style paths map to "/..." on macOS.
function bootVolume() {
    if (typeof max === "undefined" || !max.apppath) {
        return "";
    }
    var match = /^([^\/:]+):\//.exec(String(max.apppath));
    return match ? match[1] : "";
}

function setControl(name, value) {
    if (device) {
        device.control(name, value);
    } else {
        if (!stored.hasOwnProperty(name)) {
            storedOrder.push(name);
        }
        stored[name] = value;
    }
}

// live.thisdevice: the Live API can be used from now on
function init() {
    if (device) {
        return;
    }
    applyPorts();
    device = makeDevice();
    if (sampleRateValue !== null) {
        device.setSampleRate(sampleRateValue);
    }
    device.setModel(modelValue);
    for (var i = 0; i < storedOrder.length; i++) {
        // values restored with the set are settings, not knob turns: they send nothing
        device.restore(storedOrder[i], stored[storedOrder[i]]);
    }
    stored = {};
    storedOrder = [];
    device.start();
}

function bang() {
    init();
}

// textedit output: "text WORDS..."; which textedit is told by the inlet
function text() {
    var value = args(arguments).join(" ");
    if (inlet === 1) {
        setControl("prompt", value);
    } else if (inlet === 2) {
        setControl("morph_prompt", value);
    }
}

function generate() {
    var values = args(arguments);
    // live.text in button mode; a release (0) is not a press
    if (values.length && Number(values[0]) === 0) {
        return;
    }
    if (device) {
        device.generate();
    } else {
        log("Generate before the device is ready: ignored");
    }
}

// Run Task pressed: the Task control's task on the current sample
function run_task() {
    var values = args(arguments);
    if (values.length && Number(values[0]) === 0) {
        return;
    }
    if (device) {
        device.runTask();
    } else {
        log("Run Task before the device is ready: ignored");
    }
}

function clear_audio() {
    var values = args(arguments);
    if (values.length && Number(values[0]) === 0) {
        return;
    }
    setControl("clear_audio", 1);
}

function drop_mode(value) {
    setControl("drop_mode", value);
}

function audio_prompt() {
    setControl("audio_prompt", args(arguments).join(" "));
}

function sample_rate(rate) {
    sampleRateValue = rate;
    if (device) {
        device.setSampleRate(rate);
    }
}

// "model ID": the engine's model to use; "model" alone: the engine's default
var modelValue = "";
function model() {
    modelValue = args(arguments).join(" ");
    if (device) {
        device.setModel(modelValue);
    }
}

// "engine HOST PORT": where the engine listens (default 127.0.0.1 and DEFAULT_OSC_PORT)
function engine(host, port) {
    settings.host = String(host || settings.host);
    settings.enginePort = Number(port) || settings.enginePort;
    if (device) {
        applyPorts();
        device.setEngine(settings.host, settings.enginePort, settings.replyPort);
    }
}

// "reply_port PORT": where this device listens for replies (one port per device in a set)
function reply_port(port) {
    settings.replyPort = Number(port) || settings.replyPort;
    if (device) {
        applyPorts();
        device.setEngine(settings.host, settings.enginePort, settings.replyPort);
    }
}

// Dial values ("variation 3") and OSC messages from udpreceive ("/loopbridge/job/sample ...").
function anything() {
    var values = args(arguments);
    var name = messagename;
    if (name.charAt(0) === "/") {
        if (device) {
            device.receive(name, values);
        }
        return;
    }
    if (controls.byName(name)) {
        setControl(name, values[0]);
        return;
    }
    log("unknown message " + name);
}

// the device was removed from the set
function notifydeleted() {
    if (device) {
        device.stop();
        device = null;
    }
}
