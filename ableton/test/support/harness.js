"use strict";
// A Device from ableton/js wired to the recording Live fake, a manual clock and recorders for
// what it sends and shows. Replies are fed in as udpreceive would deliver them: address + atoms.

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const {loadDeviceModules} = require("../../node/max_require");
const {FakeLive} = require("./fake_live");
const {writeWav} = require("./wav");

const modules = loadDeviceModules();

/** Timers that run only when the test advances the clock. */
class ManualClock {
    constructor() {
        this.now = 0;
        this.pending = [];
        this.seq = 0;
    }

    after(ms, fn) {
        const timer = {due: this.now + ms, fn, seq: this.seq++};
        this.pending.push(timer);
        return timer;
    }

    cancel(timer) {
        this.pending = this.pending.filter((t) => t !== timer);
    }

    advance(ms) {
        const until = this.now + ms;
        for (;;) {
            const due = this.pending.filter((t) => t.due <= until).sort((a, b) => a.due - b.due || a.seq - b.seq);
            if (!due.length) {
                break;
            }
            const next = due[0];
            this.pending = this.pending.filter((t) => t !== next);
            this.now = next.due;
            next.fn();
        }
        this.now = until;
    }
}

/** A deterministic random() so seeds and ids are stable. */
function seededRandom(seed = 1) {
    let state = seed >>> 0;
    return () => {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        return state / 4294967296;
    };
}

function makeRig(liveSetup = {}, options = {}) {
    const live = new FakeLive(liveSetup);
    const clock = new ManualClock();
    const sent = [];
    const ui = [];
    const copied = [];  // [source, destination] of each file the device copied
    const device = new modules.device.Device({
        live: new modules.live.LiveSeam(live.LiveAPI),
        send: (address, args) => sent.push({address, args: Array.from(args)}),
        ui: (name, value) => ui.push([name, value]),
        after: (ms, fn) => clock.after(ms, fn),
        cancel: (timer) => timer && clock.cancel(timer),
        log: () => {},
        random: seededRandom(7),
        copyFile: (source, destination) => {
            if (rig.copyError) {
                throw new Error(rig.copyError);
            }
            copied.push([source, destination]);
        },
    }, {idPrefix: "t-", settleMs: 250, ...options});
    const rig = {
        live, clock, sent, ui, device, copied, copyError: null,
        statuses: () => ui.filter(([n]) => n === "status").map(([, t]) => t),
        status: () => {
            const all = rig.statuses();
            return all[all.length - 1];
        },
        sentTo: (address) => sent.filter((m) => m.address === address),
        lastSentTo: (address) => {
            const all = rig.sentTo(address);
            return all[all.length - 1];
        },
        reply: (address, ...args) => device.receive(address, args),
    };
    return rig;
}

/** Key/value pairs after the id of a job request, as an object. */
function keyValues(message) {
    const out = {};
    const args = message.args.slice(1);
    for (let i = 0; i < args.length; i += 2) {
        out[args[i]] = args[i + 1];
    }
    return out;
}

const made = [];
process.on("exit", () => {
    for (const dir of made) {
        fs.rmSync(dir, {recursive: true, force: true});
    }
});

/** A fresh folder, removed when the test process exits. */
function tempDir(prefix = "loopbridge-m4l-") {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    made.push(dir);
    return dir;
}

/** A WAV of `beats` beats at `tempo` BPM in dir, returning its path. */
function loopFile(dir, name, beats, tempo) {
    return writeWav(path.join(dir, name), {seconds: beats * 60 / tempo, sampleRate: 8000, channels: 1});
}

module.exports = {modules, ManualClock, seededRandom, makeRig, keyValues, tempDir, loopFile};
