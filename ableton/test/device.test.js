"use strict";
// The device's logic (ableton/js/loopbridge_device.js + loopbridge_live.js) against the recording
// Live fake: what it sends for each control, how it reads replies, where clips land and how.

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const {modules, makeRig, keyValues, tempDir, loopFile} = require("./support/harness");

const P = modules.protocol;
const A = P.ADDRESSES;

function idOf(message) {
    return message.args[0];
}

/** Sends the engine's replies for job `id`: accepted, progress, one sample per entry (`key`: its
 *  render key; `musicalKey`: the key the engine hears, "" for none), done. */
function completeJob(rig, id, samples) {
    rig.reply(A.JOB_ACCEPTED, id, 0);
    rig.reply(A.JOB_PROGRESS, id, 0.5);
    samples.forEach((s, index) => {
        rig.reply(A.JOB_SAMPLE, id, index, s.path, s.kind, s.tempo, s.beats, -1, s.variation || 0, s.key || "render-1",
            s.musicalKey === undefined ? "" : s.musicalKey, s.musicalKey ? 0.9 : -1);
    });
    rig.reply(A.JOB_DONE, id, samples.length);
}

function startedRig(liveSetup, options) {
    const rig = makeRig(liveSetup, options);
    rig.device.start();
    return rig;
}

test("generate sends the controls and Live's tempo as key/value fields of /job/generate", () => {
    const rig = startedRig({tempo: 124, numerator: 3});
    rig.device.control("prompt", "dusty breakbeat");
    rig.device.control("kind", 1);
    rig.device.control("length", 3);  // 2 bars
    rig.device.control("quality", 40);
    rig.device.setSampleRate(44100);
    const id = rig.device.generate();

    const message = rig.lastSentTo(A.JOB_GENERATE);
    assert.equal(idOf(message), id);
    const fields = keyValues(message);
    assert.equal(fields.prompt, "dusty breakbeat");
    assert.equal(fields.kind, "loop");
    assert.equal(fields.bars, 2);
    assert.equal(fields.tempo_bpm, 124);
    // the time signature as Live shows it, with the Length in bars of it: the engine works out its bar
    assert.equal(fields.meter_numerator, 3);
    assert.equal(fields.meter_denominator, 4);
    assert.equal("beats_per_bar" in fields, false);
    assert.equal(fields.steps, 40);
    assert.equal(fields.sample_rate, 44100);
    assert.equal(fields.variation, 0);
    assert.ok(Number.isInteger(fields.seed) && fields.seed >= 0 && fields.seed <= P.RANDOM_SEED_MAX);
    // every key is a field of generate, with a value of its declared type
    for (const [key, value] of Object.entries(fields)) {
        const type = P.FIELDS.generate[key];
        assert.ok(type, `${key} is not a generate field`);
        if (type === "int") {
            assert.ok(Number.isInteger(value), `${key}=${value} should be an int`);
        } else if (type === "float") {
            assert.equal(typeof value, "number");
        } else if (type === "str") {
            assert.equal(typeof value, "string");
        }
    }
    // the reply port is registered before the request: udpsend and udpreceive are two sockets
    const order = rig.sent.map((m) => m.address);
    assert.ok(order.lastIndexOf(A.CONTROLLER_REGISTER) < order.lastIndexOf(A.JOB_GENERATE));
    assert.deepEqual(rig.lastSentTo(A.CONTROLLER_REGISTER).args, [P.DEFAULT_OSC_REPLY_PORT]);
});

test("the meter goes as Live shows it, the Length in bars of it; the device draws no conclusion", () => {
    for (const [n, d] of [[6, 8], [7, 8], [2, 2], [17, 8], [1, 32]]) {
        const rig = startedRig({tempo: 120, numerator: n, denominator: d});
        rig.device.control("kind", 1);
        rig.device.control("length", 3);  // 2 bars
        rig.device.generate();
        const fields = keyValues(rig.lastSentTo(A.JOB_GENERATE));
        assert.deepEqual([fields.meter_numerator, fields.meter_denominator, fields.bars], [n, d, 2], `${n}/${d}`);
        assert.equal("beats_per_bar" in fields, false, `${n}/${d}`);
        assert.match(rig.status(), /^Generating loop/);
    }
});

test("a meter Live does not give (or gives half of) is left out; the Length still goes as bars", () => {
    for (const missing of [["signature_numerator", "signature_denominator"], ["signature_denominator"]]) {
        const rig = startedRig({tempo: 120});
        for (const name of missing) {
            delete rig.live.song.props[name];
        }
        rig.device.control("kind", 1);
        rig.device.control("length", 3);
        rig.device.generate();
        const fields = keyValues(rig.lastSentTo(A.JOB_GENERATE));
        for (const key of ["meter_numerator", "meter_denominator", "beats_per_bar"]) {
            assert.equal(key in fields, false, `${key} with ${missing} missing`);
        }
        assert.equal(fields.bars, 2);
    }
});

test("the clip loops over the sample's beats as the engine returned them, whatever the meter", () => {
    const dir = tempDir();
    const rig = startedRig({tempo: 120, numerator: 7, denominator: 8});
    rig.device.control("kind", 1);
    rig.device.control("length", 3);  // 2 bars of 7/8
    const id = rig.device.generate();
    // a file of another length, so that the loop can only come from `beats`
    completeJob(rig, id, [{path: loopFile(dir, "l.wav", 2, 120), kind: "loop", tempo: 120, beats: 7}]);
    const clip = rig.live.clipInSlot(0, 0);
    assert.equal(clip.loop_start, 0);
    assert.equal(clip.loop_end, 7, rig.status());
    assert.equal(clip.end_marker, 7);
    assert.match(rig.status(), /7 beats loop at 120 BPM, no key\.$/);
    assert.deepEqual(rig.live.errors, []);
});

test("a sample without its length in beats keeps the length Live gives the file", () => {
    const dir = tempDir();
    const rig = startedRig({tempo: 120, numerator: 6, denominator: 8});
    rig.device.control("kind", 1);
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "l.wav", 3, 120), kind: "loop", tempo: 120, beats: 0}]);
    const clip = rig.live.clipInSlot(0, 0);
    assert.equal(clip.warping, 1, rig.status());
    const lengthSets = rig.live.callsOf("set").filter((c) => ["loop_end", "end_marker", "looping"].includes(c.name));
    assert.deepEqual(lengthSets, [], "no loop length of the device's own making");
    assert.match(rig.status(), /loop as long as Live reads the file/);
});

test("the engine's note on a length it cannot make exactly goes on the status line with the result", () => {
    const dir = tempDir();
    const rig = startedRig({tempo: 120, numerator: 7, denominator: 8});
    rig.device.control("kind", 1);
    rig.device.control("length", 0);  // a quarter bar of 7/8: 0.875 quarter notes
    const id = rig.device.generate();
    const fields = keyValues(rig.lastSentTo(A.JOB_GENERATE));
    assert.deepEqual([fields.meter_numerator, fields.meter_denominator, fields.bars], [7, 8, 0.25]);
    const note = "0.25 bars of 7/8 cannot be made exactly: 1.75 quarter notes instead of 0.875 (0.25 bars of 7 beats)";
    rig.reply(A.JOB_ACCEPTED, id, 0);
    rig.reply(A.JOB_NOTE, id, note);
    rig.reply(A.JOB_SAMPLE, id, 0, loopFile(dir, "l.wav", 1.75, 120), "loop", 120, 1.75, -1, 0, "rk", "", -1);
    rig.reply(A.JOB_DONE, id, 1);
    assert.equal(rig.status(), `Placed l.wav in 'Audio' slot 1: Beats warp, 1.75 beats loop at 120 BPM, no key. ${note}`);
    assert.equal(rig.live.clipInSlot(0, 0).loop_end, 1.75);

    // a note belongs to its job: the next result, exact, has none
    rig.live.setMeter(4, 4);
    rig.live.select(0, 1);
    const next = rig.device.generate();
    rig.reply(A.JOB_NOTE, "someone-else", "not ours");
    completeJob(rig, next, [{path: loopFile(dir, "m.wav", 1, 120), kind: "loop", tempo: 120, beats: 1}]);
    assert.match(rig.status(), /^Placed m\.wav .* 1 beat loop at 120 BPM, no key\.$/);

    // a note with no sample, and a note with an error after it: the error is what the status says
    const empty = rig.device.generate();
    rig.reply(A.JOB_NOTE, empty, "a note");
    rig.reply(A.JOB_DONE, empty, 0);
    assert.equal(rig.status(), "The engine finished without a sample. a note");
    const failed = rig.device.generate();
    rig.reply(A.JOB_NOTE, failed, "a note");
    rig.reply(A.ERROR, failed, "bad_request", "bars=0.1 is not accepted");
    assert.equal(rig.status(), "Engine error (bad_request): bars=0.1 is not accepted");
});

test("a Variation after a meter change sends the new meter with the bars first asked for", () => {
    const dir = tempDir();
    const rig = startedRig({tempo: 120, numerator: 4, denominator: 4});
    rig.device.control("kind", 1);
    rig.device.control("length", 3);  // 2 bars
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "l.wav", 8, 120), kind: "loop", tempo: 120, beats: 8}]);
    rig.live.setMeter(6, 8);
    rig.device.control("variation", 1);
    rig.clock.advance(300);
    const fields = keyValues(rig.lastSentTo(A.JOB_VARIATION));
    assert.deepEqual([fields.meter_numerator, fields.meter_denominator, fields.bars], [6, 8, 2]);
    assert.equal("beats_per_bar" in fields, false);
    // and the engine's 6 quarter notes are the clip's loop
    completeJob(rig, idOf(rig.lastSentTo(A.JOB_VARIATION)), [{path: loopFile(dir, "v.wav", 6, 120), kind: "loop",
        tempo: 120, beats: 6, variation: 1}]);
    assert.equal(rig.live.clipInSlot(0, 0).loop_end, 6);

    // a tempo change re-conforms in the meter as it is then
    rig.live.setMeter(7, 8);
    rig.live.setTempo(100);
    rig.clock.advance(300);
    const conform = keyValues(rig.lastSentTo(A.JOB_CONFORM));
    assert.deepEqual([conform.meter_numerator, conform.meter_denominator, conform.bars], [7, 8, 2]);
    assert.equal("beats_per_bar" in conform, false);
});

test("each Generate uses a fresh seed; one-shots leave the length to the model", () => {
    const rig = startedRig();
    rig.device.control("kind", 0);
    rig.device.generate();
    rig.device.generate();
    const [a, b] = rig.sentTo(A.JOB_GENERATE).map(keyValues);
    assert.notEqual(a.seed, b.seed);
    assert.equal(a.kind, "one-shot");
    assert.equal("bars" in a, false);
});

test("Generate -> a clip in the selected track's selected slot, warped, looping the requested bars", () => {
    const dir = tempDir();
    const rig = startedRig({tracks: [{name: "Drums", type: "audio"}, {name: "Keys", type: "audio"}]});
    rig.live.select(1, 2);
    rig.device.control("prompt", "house loop");
    rig.device.control("length", 3);  // 2 bars = 8 beats
    const id = rig.device.generate();
    const file = loopFile(dir, "house_120bpm.wav", 8, 120);
    completeJob(rig, id, [{path: file, kind: "loop", tempo: 120, beats: 8}]);

    const clip = rig.live.clipInSlot(1, 2);
    assert.ok(clip, rig.status());
    assert.equal(clip.file_path, file);
    assert.equal(clip.warping, 1);
    assert.equal(clip.warp_mode, 0);  // Beats
    assert.equal(clip.looping, 1);
    assert.equal(clip.loop_start, 0);
    assert.equal(clip.loop_end, 8);
    assert.deepEqual(rig.live.errors, []);
    const creates = rig.live.callsOf("call", "create_audio_clip");
    assert.deepEqual(creates.map((c) => [c.path, c.args]), [["live_set tracks 1 clip_slots 2", [file]]]);
    // the settings are asked of Live explicitly, not left to how it happens to load the file
    const sets = rig.live.callsOf("set").filter((c) => c.path === "live_set tracks 1 clip_slots 2 clip")
        .map((c) => [c.name, c.args[0]]);
    for (const expected of [["warping", 1], ["warp_mode", 0], ["looping", 1], ["loop_start", 0], ["loop_end", 8],
        ["end_marker", 8]]) {
        assert.ok(sets.some(([n, v]) => n === expected[0] && v === expected[1]), `set ${expected} in ${sets}`);
    }
    assert.match(rig.status(), /Placed house_120bpm\.wav in 'Keys' slot 3: Beats warp, 8 beats loop at 120 BPM/);
    assert.deepEqual(rig.ui.filter(([n]) => n === "progress").map(([, v]) => v), [0, 0.5, 1]);
});

test("textures get Complex warping, one-shots play once", () => {
    const dir = tempDir();
    const rig = startedRig({tracks: [{name: "A", type: "audio"}]});
    rig.device.control("kind", 2);
    let id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "pad.wav", 16, 120), kind: "texture", tempo: 120, beats: 16}]);
    assert.equal(rig.live.clipInSlot(0, 0).warp_mode, 4);
    assert.equal(rig.live.clipInSlot(0, 0).looping, 1);

    rig.live.select(0, 1);
    rig.device.control("kind", 0);
    id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "kick.wav", 0.5, 120), kind: "one-shot", tempo: 120, beats: 0.5}]);
    const kick = rig.live.clipInSlot(0, 1);
    assert.equal(kick.warping, 1);
    assert.equal(kick.looping, 0);
    assert.equal(kick.end_marker, 0.5);
    assert.deepEqual(rig.live.errors, []);
});

test("a kit puts its beat loop in the clip and names the other files", () => {
    const dir = tempDir();
    const rig = startedRig();
    rig.device.control("kind", 3);
    const id = rig.device.generate();
    completeJob(rig, id, [
        {path: loopFile(dir, "kick.wav", 0.5, 120), kind: "one-shot", tempo: 120, beats: 0.5},
        {path: loopFile(dir, "snare.wav", 0.5, 120), kind: "one-shot", tempo: 120, beats: 0.5},
        {path: loopFile(dir, "beat.wav", 4, 120), kind: "loop", tempo: 120, beats: 4},
    ]);
    assert.match(rig.live.clipInSlot(0, 0).file_path, /beat\.wav$/);
    assert.match(rig.status(), /\+2 more files/);
});

test("Arrangement view: the clip goes on the selected track at the play head", () => {
    const dir = tempDir();
    const rig = startedRig({view: "Arranger", songTime: 32});
    const id = rig.device.generate();
    const file = loopFile(dir, "loop.wav", 4, 120);
    completeJob(rig, id, [{path: file, kind: "loop", tempo: 120, beats: 4}]);
    const creates = rig.live.callsOf("call", "create_audio_clip");
    assert.deepEqual(creates.map((c) => [c.path, c.args]), [["live_set tracks 0", [file, 32]]]);
    const clip = rig.live.tracks[0].arrangement[0].props;
    assert.equal(clip.start_time, 32);
    assert.equal(clip.warping, 1);
    assert.equal(clip.loop_end, 4);
    assert.match(rig.status(), /at beat 32/);
});

for (const [what, setup, act, expected] of [
    ["a full slot", {}, (live, file) => live.userClip(0, 0, file), /Clip slot 1 of 'Audio' is full/],
    ["a MIDI track", {tracks: [{name: "Bass", type: "midi"}]}, () => {}, /'Bass' is a MIDI track/],
    ["a group track", {tracks: [{name: "Grp", type: "group"}]}, () => {}, /'Grp' is a group track/],
    ["a frozen track", {tracks: [{name: "Ice", type: "audio", frozen: true}]}, () => {}, /'Ice' is frozen/],
    ["a return track", {}, (live) => live.selectReturn(0), /'A-Return' is the master or a return track/],
    ["the master track", {}, (live) => live.selectMaster(), /'Master' is the master or a return track/],
    ["Live 12.0.4", {version: [12, 0, 4]}, () => {}, /Live 12\.0\.4 cannot create clips from files: that takes Live 12\.0\.5/],
    ["Live 11", {version: [11, 3, 25]}, () => {}, /Live 11\.3\.25 cannot create clips/],
]) {
    test(`${what}: a clear message with the file's path, and no clip`, () => {
        const dir = tempDir();
        const rig = startedRig(setup);
        const existing = loopFile(dir, "mine.wav", 4, 120);
        act(rig.live, existing);
        const id = rig.device.generate();
        const file = loopFile(dir, "new.wav", 4, 120);
        completeJob(rig, id, [{path: file, kind: "loop", tempo: 120, beats: 4}]);
        assert.match(rig.status(), expected);
        assert.ok(rig.status().includes(`File: ${file}`), rig.status());
        assert.deepEqual(rig.live.callsOf("call", "create_audio_clip"), []);
        assert.deepEqual(rig.live.callsOf("set"), []);
        assert.deepEqual(rig.live.errors, []);
    });
}

test("changing the song tempo re-conforms the current sample without generating again", () => {
    const dir = tempDir();
    const rig = startedRig({tempo: 120});
    rig.device.control("length", 2);  // 1 bar
    const id = rig.device.generate();
    const first = loopFile(dir, "loop_120.wav", 4, 120);
    completeJob(rig, id, [{path: first, kind: "loop", tempo: 120, beats: 4, key: "rk-abc"}]);
    const generates = rig.sentTo(A.JOB_GENERATE).length;

    // the user drags the tempo: only the settled value is sent, and Live is not touched meanwhile
    rig.live.setTempo(110);
    rig.live.setTempo(100);
    assert.deepEqual(rig.live.errors, []);
    assert.equal(rig.sentTo(A.JOB_CONFORM).length, 0);
    rig.clock.advance(300);
    const conforms = rig.sentTo(A.JOB_CONFORM);
    assert.equal(conforms.length, 1);
    const fields = keyValues(conforms[0]);
    assert.deepEqual(fields, {render_key: "rk-abc", tempo_bpm: 100, meter_numerator: 4, meter_denominator: 4,
        pitch_semitones: 0, loudness_lufs: -14, bars: 1});
    for (const key of Object.keys(fields)) {
        assert.ok(P.FIELDS.conform[key], `${key} is not a conform field`);
    }
    assert.equal(rig.sentTo(A.JOB_GENERATE).length, generates);

    // the re-conformed file replaces the device's clip in the same slot
    const second = loopFile(dir, "loop_100.wav", 4, 100);
    completeJob(rig, idOf(conforms[0]), [{path: second, kind: "loop", tempo: 100, beats: 4, key: "rk-abc"}]);
    const clip = rig.live.clipInSlot(0, 0);
    assert.equal(clip.file_path, second);
    assert.equal(clip.warping, 1);
    assert.equal(clip.loop_end, 4);
    assert.equal(rig.live.callsOf("call", "delete_clip").length, 1);
    assert.deepEqual(rig.live.errors, []);
});

test("a tempo change before any sample, or the observer's first report, sends nothing", () => {
    const rig = startedRig({tempo: 120});
    rig.live.setTempo(90);
    rig.clock.advance(1000);
    assert.equal(rig.sentTo(A.JOB_CONFORM).length, 0);
    assert.equal(rig.device.tempoBpm, 90);
});

test("a tempo change while the engine works: the placed sample is re-conformed afterwards", () => {
    const dir = tempDir();
    const rig = startedRig({tempo: 120});
    const id = rig.device.generate();
    rig.live.setTempo(128);
    rig.clock.advance(300);
    assert.equal(rig.sentTo(A.JOB_CONFORM).length, 0);  // nothing in Live to re-conform yet
    completeJob(rig, id, [{path: loopFile(dir, "l.wav", 4, 120), kind: "loop", tempo: 120, beats: 4, key: "rk"}]);
    rig.clock.advance(300);
    const conform = rig.lastSentTo(A.JOB_CONFORM);
    assert.ok(conform, rig.status());
    assert.equal(keyValues(conform).tempo_bpm, 128);
});

test("a tempo change during a variation does not cancel it: the variation is re-conformed when it lands", () => {
    const dir = tempDir();
    const rig = startedRig({tempo: 120});
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "v0.wav", 4, 120), kind: "loop", tempo: 120, beats: 4, key: "rk0"}]);
    rig.device.control("variation", 1);
    rig.clock.advance(300);
    const variation = rig.lastSentTo(A.JOB_VARIATION);
    rig.live.setTempo(140);
    rig.clock.advance(300);
    assert.equal(rig.sentTo(A.JOB_CANCEL).length, 0);
    assert.equal(rig.sentTo(A.JOB_CONFORM).length, 0);
    completeJob(rig, idOf(variation), [{path: loopFile(dir, "v1.wav", 4, 120), kind: "loop", tempo: 120, beats: 4,
        variation: 1, key: "rk1"}]);
    rig.clock.advance(300);
    const conform = keyValues(rig.lastSentTo(A.JOB_CONFORM));
    assert.equal(conform.render_key, "rk1");
    assert.equal(conform.tempo_bpm, 140);
});

test("the Pitch dial re-conforms with pitch_semitones", () => {
    const dir = tempDir();
    const rig = startedRig();
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "l.wav", 4, 120), kind: "loop", tempo: 120, beats: 4, key: "rk"}]);
    rig.device.control("pitch", -3);
    rig.clock.advance(300);
    assert.equal(keyValues(rig.lastSentTo(A.JOB_CONFORM)).pitch_semitones, -3);
    // and later requests carry it
    rig.device.control("variation", 1);
    rig.clock.advance(300);
    assert.equal(keyValues(rig.lastSentTo(A.JOB_VARIATION)).pitch_semitones, -3);
});

// ---- the song's key (Live 12) and the Loudness dial ----------------------------------------------

const D = modules.device;

test("Live's scale becomes a major or minor key by its tonic triad; other scales ask for none", () => {
    const on = (rootNote, scaleName) => D.songKeyFromScale({rootNote, scaleName, scaleMode: true});
    const cases = [
        [9, "Minor", "Am"], [0, "Major", "C"], [6, "Major", "F#"], [10, "Major", "Bb"], [8, "Minor", "G#m"],
        [3, "Minor", "Ebm"], [2, "Dorian", "Dm"], [4, "Phrygian", "Em"], [5, "Lydian", "F"], [7, "Mixolydian", "G"],
        [11, "Harmonic Minor", "Bm"], [1, "Melodic Minor", "C#m"], [0, "Major Pentatonic", "C"],
        [9, "Minor Pentatonic", "Am"], [9, "Minor Blues", "Am"], [4, "Phrygian Dominant", "E"],
        [2, "Hungarian Minor", "Dm"], [7, "Lydian Dominant", "G"], [1, "Bhairav", "C#"],
    ];
    for (const [root, name, key] of cases) {
        assert.deepEqual(on(root, name), {key, why: ""}, `${root} ${name}`);
    }
    for (const name of ["Locrian", "Whole Tone", "Half-whole Dim.", "Whole-half Dim.", "Super Locrian", "In-Sen",
        "Iwato", "Pelog Tembung", "Messiaen 3", "Lydian Augmented", "8-Tone Spanish"]) {
        const found = on(0, name);
        assert.equal(found.key, null, name);
        assert.match(found.why, new RegExp(`^Live's scale C ${name.replace(/[.#]/g, "\\$&")} is neither major nor minor`),
            name);
    }
    assert.equal(on(0, "Gamelan X").key, null);
    assert.match(on(0, "Gamelan X").why, /Gamelan X is not one the device knows/);
    // Scale Mode off (a new set shows C Major then), or a Live without a song key: none, nothing said
    assert.deepEqual(D.songKeyFromScale({rootNote: 9, scaleName: "Minor", scaleMode: false}), {key: null, why: ""});
    assert.deepEqual(D.songKeyFromScale({rootNote: null, scaleName: null, scaleMode: null}), {key: null, why: ""});
    // the table itself: intervals above the root, ascending, within the octave
    for (const [name, intervals] of Object.entries(D.LIVE_SCALES)) {
        assert.equal(intervals[0], 0, name);
        for (let i = 1; i < intervals.length; i++) {
            assert.ok(intervals[i] > intervals[i - 1] && intervals[i] < 12, name);
        }
    }
    // every key asked for is one the engine spells
    for (const name of P.KEY_NAMES.MAJOR.concat(P.KEY_NAMES.MINOR)) {
        assert.match(name, /^[A-G][#b]?m?$/);
    }
});

test("the song's key and the Loudness go with every request; none when Scale Mode is off", () => {
    const dir = tempDir();
    const rig = startedRig({scale: {rootNote: 9, scaleName: "Minor", scaleMode: true}});
    rig.device.control("kind", 1);
    const id = rig.device.generate();
    let fields = keyValues(rig.lastSentTo(A.JOB_GENERATE));
    assert.equal(fields.key, "Am");
    assert.equal(fields.loudness_lufs, -14);
    for (const key of Object.keys(fields)) {
        assert.ok(P.FIELDS.generate[key], `${key} is not a generate field`);
    }
    completeJob(rig, id, [{path: loopFile(dir, "l.wav", 4, 120), kind: "loop", tempo: 120, beats: 4,
        musicalKey: "Am"}]);
    rig.device.control("variation", 1);
    rig.clock.advance(300);
    fields = keyValues(rig.lastSentTo(A.JOB_VARIATION));
    assert.equal(fields.key, "Am");
    assert.equal(fields.loudness_lufs, -14);

    const off = startedRig({scale: {rootNote: 9, scaleName: "Minor", scaleMode: false}});
    off.device.generate();
    assert.equal("key" in keyValues(off.lastSentTo(A.JOB_GENERATE)), false);
    assert.deepEqual(off.live.errors, []);
});

test("a new song key re-conforms the sample in Live (no model run); the status shows the sample's key", () => {
    const dir = tempDir();
    const rig = startedRig({scale: {rootNote: 0, scaleName: "Major", scaleMode: false}});
    rig.device.control("kind", 1);
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "l.wav", 4, 120), kind: "loop", tempo: 120, beats: 4, key: "rk",
        musicalKey: "F#m"}]);
    assert.match(rig.status(), /at 120 BPM, in F#m\.$/);
    const generates = rig.sentTo(A.JOB_GENERATE).length;

    // the user picks D minor: root, scale and Scale Mode arrive one by one; one conform once they settle
    rig.live.setScale({rootNote: 2, scaleName: "Minor", scaleMode: true});
    assert.deepEqual(rig.live.errors, []);
    assert.equal(rig.sentTo(A.JOB_CONFORM).length, 0);
    rig.clock.advance(300);
    const conforms = rig.sentTo(A.JOB_CONFORM);
    assert.equal(conforms.length, 1);
    const fields = keyValues(conforms[0]);
    assert.equal(fields.key, "Dm");
    assert.equal(fields.render_key, "rk");
    for (const key of Object.keys(fields)) {
        assert.ok(P.FIELDS.conform[key], `${key} is not a conform field`);
    }
    assert.match(rig.status(), /in Dm\.\.\.$/);
    completeJob(rig, idOf(conforms[0]), [{path: loopFile(dir, "l_Dm.wav", 4, 120), kind: "loop", tempo: 120, beats: 4,
        key: "rk", musicalKey: "Dm"}]);
    assert.match(rig.status(), /, in Dm\.$/);
    assert.equal(rig.sentTo(A.JOB_GENERATE).length, generates);

    // a scale that is neither major nor minor: the sample goes back to its own key, and the status says why
    rig.live.setScale({scaleName: "Whole Tone"});
    rig.clock.advance(300);
    const back = rig.lastSentTo(A.JOB_CONFORM);
    assert.notEqual(back, conforms[0]);
    assert.equal("key" in keyValues(back), false);
    completeJob(rig, idOf(back), [{path: loopFile(dir, "l2.wav", 4, 120), kind: "loop", tempo: 120, beats: 4,
        key: "rk", musicalKey: ""}]);
    assert.match(rig.status(), /, no key\. Live's scale D Whole Tone is neither major nor minor: no key asked\.$/);

    // the root moves while the scale still gives no key: nothing to re-conform
    const sentBefore = rig.sent.length;
    rig.live.setScale({rootNote: 5});
    rig.clock.advance(300);
    assert.equal(rig.sentTo(A.JOB_CONFORM).length, 2);
    assert.equal(rig.sent.length, sentBefore);
});

test("a key change while the engine works: the sample is re-conformed to it when it lands", () => {
    const dir = tempDir();
    const rig = startedRig({scale: {rootNote: 0, scaleName: "Major", scaleMode: true}});
    const id = rig.device.generate();
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).key, "C");
    rig.live.setScale({rootNote: 7});
    rig.clock.advance(300);
    assert.equal(rig.sentTo(A.JOB_CONFORM).length, 0);  // nothing in Live to re-conform yet
    completeJob(rig, id, [{path: loopFile(dir, "l.wav", 4, 120), kind: "loop", tempo: 120, beats: 4, key: "rk",
        musicalKey: "C"}]);
    rig.clock.advance(300);
    assert.equal(keyValues(rig.lastSentTo(A.JOB_CONFORM)).key, "G");
});

test("the Loudness dial re-conforms with loudness_lufs, and later requests carry it", () => {
    const dir = tempDir();
    const rig = startedRig();
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "l.wav", 4, 120), kind: "loop", tempo: 120, beats: 4, key: "rk"}]);
    rig.device.control("loudness", -22.5);
    rig.device.control("loudness", -20);
    rig.clock.advance(300);
    assert.equal(rig.sentTo(A.JOB_CONFORM).length, 1);
    assert.equal(keyValues(rig.lastSentTo(A.JOB_CONFORM)).loudness_lufs, -20);
    rig.device.control("variation", 1);
    rig.clock.advance(300);
    assert.equal(keyValues(rig.lastSentTo(A.JOB_VARIATION)).loudness_lufs, -20);
    rig.device.generate();
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).loudness_lufs, -20);
    // a value outside the dial (a controller's) is held to it
    rig.device.control("loudness", -80);
    rig.device.generate();
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).loudness_lufs, -30);
});

test("the Variation dial asks for variation k of the last request and swaps the clip", () => {
    const dir = tempDir();
    const rig = startedRig();
    rig.device.control("prompt", "amen break");
    const id = rig.device.generate();
    const seed = keyValues(rig.lastSentTo(A.JOB_GENERATE)).seed;
    completeJob(rig, id, [{path: loopFile(dir, "v0.wav", 4, 120), kind: "loop", tempo: 120, beats: 4}]);

    rig.device.control("variation", 1);
    rig.device.control("variation", 2);
    rig.device.control("variation", 3);
    rig.clock.advance(300);
    const requests = rig.sentTo(A.JOB_VARIATION);
    assert.equal(requests.length, 1);
    const fields = keyValues(requests[0]);
    assert.equal(fields.variation, 3);
    assert.equal(fields.seed, seed);
    assert.equal(fields.prompt, "amen break");
    const v3 = loopFile(dir, "v3.wav", 4, 120);
    completeJob(rig, idOf(requests[0]), [{path: v3, kind: "loop", tempo: 120, beats: 4, variation: 3}]);
    assert.equal(rig.live.clipInSlot(0, 0).file_path, v3);
    assert.equal(rig.live.clipInSlot(0, 1), null);
});

test("a clip swapped while it plays is launched again; a stopped one stays stopped", () => {
    const dir = tempDir();
    const rig = startedRig();
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "v0.wav", 4, 120), kind: "loop", tempo: 120, beats: 4}]);
    rig.device.control("variation", 1);
    rig.clock.advance(300);
    completeJob(rig, idOf(rig.lastSentTo(A.JOB_VARIATION)), [{path: loopFile(dir, "v1.wav", 4, 120), kind: "loop",
        tempo: 120, beats: 4}]);
    assert.equal(rig.live.callsOf("call", "fire").length, 0);
    rig.live.tracks[0].slots[0].clip.props.is_playing = 1;  // the user launches it
    rig.device.control("variation", 2);
    rig.clock.advance(300);
    completeJob(rig, idOf(rig.lastSentTo(A.JOB_VARIATION)), [{path: loopFile(dir, "v2.wav", 4, 120), kind: "loop",
        tempo: 120, beats: 4}]);
    const fires = rig.live.callsOf("call", "fire");
    assert.deepEqual(fires.map((c) => c.path), ["live_set tracks 0 clip_slots 0"]);
    assert.equal(rig.live.clipInSlot(0, 0).is_playing, 1);
    assert.match(rig.live.clipInSlot(0, 0).file_path, /v2\.wav$/);
    // launched after its warp settings are in place
    const order = rig.live.calls.filter((c) => (c.op === "call" && c.name === "fire") || (c.op === "set" && c.name === "warping"));
    assert.equal(order[order.length - 1].name, "fire");
});

test("a newer knob turn supersedes (cancels) the running one; its late result is dropped", () => {
    const dir = tempDir();
    const rig = startedRig();
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "v0.wav", 4, 120), kind: "loop", tempo: 120, beats: 4}]);
    rig.device.control("variation", 1);
    rig.clock.advance(300);
    const older = idOf(rig.lastSentTo(A.JOB_VARIATION));
    rig.device.control("variation", 2);
    rig.clock.advance(300);
    const newer = idOf(rig.lastSentTo(A.JOB_VARIATION));
    assert.deepEqual(rig.lastSentTo(A.JOB_CANCEL).args, [older]);
    const v2 = loopFile(dir, "v2.wav", 4, 120);
    completeJob(rig, newer, [{path: v2, kind: "loop", tempo: 120, beats: 4, variation: 2}]);
    completeJob(rig, older, [{path: loopFile(dir, "v1.wav", 4, 120), kind: "loop", tempo: 120, beats: 4}]);
    assert.equal(rig.live.clipInSlot(0, 0).file_path, v2);
});

test("when the user has replaced the device's clip, a variation goes to the selected slot instead", () => {
    const dir = tempDir();
    const rig = startedRig();
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "v0.wav", 4, 120), kind: "loop", tempo: 120, beats: 4}]);
    // the user deletes it and records their own clip there, then selects the next slot
    rig.live.tracks[0].slots[0].clip.alive = false;
    rig.live.tracks[0].slots[0].clip = null;
    rig.live.userClip(0, 0, loopFile(dir, "mine.wav", 4, 120));
    rig.live.select(0, 1);
    rig.device.control("variation", 1);
    rig.clock.advance(300);
    const v1 = loopFile(dir, "v1.wav", 4, 120);
    completeJob(rig, idOf(rig.lastSentTo(A.JOB_VARIATION)), [{path: v1, kind: "loop", tempo: 120, beats: 4}]);
    assert.match(rig.live.clipInSlot(0, 0).file_path, /mine\.wav$/);
    assert.equal(rig.live.clipInSlot(0, 1).file_path, v1);
    assert.equal(rig.live.callsOf("call", "delete_clip").length, 0);
});

test("Morph needs a target prompt, then asks /job/morph with the amount", () => {
    const dir = tempDir();
    const rig = startedRig();
    rig.device.control("morph", 50);
    rig.clock.advance(300);
    assert.match(rig.status(), /Morph: press Generate first/);
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "a.wav", 4, 120), kind: "loop", tempo: 120, beats: 4}]);
    rig.device.control("morph", 60);
    rig.clock.advance(300);
    assert.match(rig.status(), /type a morph target prompt/);
    assert.equal(rig.sentTo(A.JOB_MORPH).length, 0);
    rig.device.control("morph_prompt", "choir pad");
    rig.device.control("morph", 25);
    rig.clock.advance(300);
    const fields = keyValues(rig.lastSentTo(A.JOB_MORPH));
    assert.equal(fields.morph_prompt, "choir pad");
    assert.equal(fields.morph_amount, 0.25);
    for (const key of Object.keys(fields)) {
        assert.ok(P.FIELDS.morph[key], `${key} is not a morph field`);
    }
});

test("Variation before any Generate says so and sends nothing", () => {
    const rig = startedRig();
    rig.device.control("variation", 4);
    rig.clock.advance(300);
    assert.match(rig.status(), /Variation 4: press Generate first/);
    assert.equal(rig.sentTo(A.JOB_VARIATION).length, 0);
});

test("a dropped file is copied into the engine's inbox and travels as that copy's path until cleared", () => {
    const rig = startedRig();
    rig.reply(A.HELLO_REPLY, 1, "0.1.0", "/data/loopbridge/inbox");
    rig.device.control("audio_prompt", "/Users/me/Samples/break 1.wav");
    assert.match(rig.status(), /Audio prompt: break 1\.wav/);
    rig.device.generate();
    const copy = "/data/loopbridge/inbox/t-audio1-break 1.wav";
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).audio_prompt_path, copy);
    assert.deepEqual(rig.copied, [["/Users/me/Samples/break 1.wav", copy]]);
    rig.device.generate();  // copied once per drop
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).audio_prompt_path, copy);
    assert.equal(rig.copied.length, 1);
    rig.device.control("audio_prompt", "/Users/me/Samples/break 1.wav");  // dropped again: copied as it is now
    rig.device.generate();
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).audio_prompt_path,
        "/data/loopbridge/inbox/t-audio2-break 1.wav");
    rig.device.control("clear_audio", 1);
    rig.device.generate();
    assert.equal("audio_prompt_path" in keyValues(rig.lastSentTo(A.JOB_GENERATE)), false);
    assert.equal(rig.copied.length, 2);
});

test("with a dropped file and no inbox known yet, Generate asks the engine first, then generates", () => {
    const rig = startedRig();
    rig.device.control("audio_prompt", "C:/Samples/kick.wav");
    const hellos = rig.sentTo(A.ENGINE_HELLO).length;
    assert.equal(rig.device.generate(), null);
    assert.equal(rig.sentTo(A.JOB_GENERATE).length, 0);
    assert.equal(rig.sentTo(A.ENGINE_HELLO).length, hellos + 1);
    assert.match(rig.status(), /Asking the engine where to put the audio prompt/);
    rig.reply(A.HELLO_REPLY, 1, "0.1.0", "C:\\Users\\me\\AppData\\Local\\loopbridge\\inbox\\");
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).audio_prompt_path,
        "C:\\Users\\me\\AppData\\Local\\loopbridge\\inbox\\t-audio1-kick.wav");

    // no answer: nothing is generated when a hello comes in later
    const late = startedRig();
    late.device.control("audio_prompt", "/x/kick.wav");
    late.device.generate();
    late.clock.advance(P.REQUEST_TIMEOUT_S * 1000 + 1);
    assert.match(late.status(), /No answer from the loopbridge engine/);
    late.reply(A.HELLO_REPLY, 1, "0.1.0", "/inbox");
    assert.equal(late.sentTo(A.JOB_GENERATE).length, 0);
    assert.match(late.status(), /ready/);
});

test("a dropped file that cannot be copied is said so and nothing is sent", () => {
    const rig = startedRig();
    rig.reply(A.HELLO_REPLY, 1, "0.1.0", "/inbox");
    rig.device.control("audio_prompt", "/Users/me/kick.wav");
    rig.copyError = "cannot open /Users/me/kick.wav";
    assert.equal(rig.device.generate(), null);
    assert.equal(rig.status(), "Could not copy the audio prompt kick.wav into the engine's inbox /inbox: " +
        "cannot open /Users/me/kick.wav");
    assert.equal(rig.sentTo(A.JOB_GENERATE).length, 0);
    rig.copyError = null;
    rig.device.generate();
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).audio_prompt_path, "/inbox/t-audio2-kick.wav");
});

test("copies get names every file system takes, in the inbox's own style", () => {
    const {stagedName, joinPath} = modules.device;
    assert.equal(stagedName("m4l1-", 3, "/a/b/k\u00e9 \u00fc?*.wav"), "m4l1-audio3-k_ ___.wav");
    assert.equal(stagedName("m4l1-", 1, "C:\\drums\\snare.aif"), "m4l1-audio1-snare.aif");
    assert.equal(stagedName("p-", 1, "x".repeat(300) + ".wav").length, 100);
    assert.equal(joinPath("/data/inbox/", "a.wav"), "/data/inbox/a.wav");
    assert.equal(joinPath("C:\\data\\inbox", "a.wav"), "C:\\data\\inbox\\a.wav");
    assert.equal(joinPath("C:/data/inbox", "a.wav"), "C:/data/inbox/a.wav");
});

test("the model setting travels as the model field; empty means the engine's default", () => {
    const rig = startedRig();
    rig.device.generate();
    assert.equal("model" in keyValues(rig.lastSentTo(A.JOB_GENERATE)), false);
    rig.device.setModel("tiny-dd");
    rig.device.generate();
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).model, "tiny-dd");
    // a revision of a pulled model, named as the engine's `models` lists it: asked about and sent whole
    const revision = "harmonai/maestro-150k@v2";
    rig.reply(A.HELLO_REPLY, 1, "0.1.0", "/inbox");
    rig.device.setModel(revision);
    assert.deepEqual(rig.lastSentTo(A.MODELS_CAPABILITIES).args, [revision]);
    rig.reply(A.MODELS_CAPABILITIES, revision, JSON.stringify({tasks: ["generate"]}));
    assert.match(rig.ui.filter(([name]) => name === "tasks").pop()[1], /^harmonai\/maestro-150k@v2 does nothing/);
    rig.device.generate();
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).model, revision);
});

test("Max-style paths from live.drop become the operating system's", () => {
    const nativePath = modules.device.nativePath;
    assert.equal(nativePath("Macintosh HD:/Users/me/kick.wav", "Macintosh HD"), "/Users/me/kick.wav");
    assert.equal(nativePath("Samples:/drums/kick.wav", "Macintosh HD"), "/Volumes/Samples/drums/kick.wav");
    assert.equal(nativePath("C:/Users/me/kick.wav", ""), "C:/Users/me/kick.wav");
    assert.equal(nativePath("/Users/me/kick.wav", "Macintosh HD"), "/Users/me/kick.wav");
    const rig = startedRig({}, {bootVolume: "Macintosh HD"});
    rig.reply(A.HELLO_REPLY, 1, "0.1.0", "/inbox");
    rig.device.control("audio_prompt", "Macintosh HD:/Users/me/break.wav");
    assert.match(rig.status(), /Audio prompt: break\.wav/);
    rig.device.generate();
    // Max's File opens the path as Max gave it; the engine gets the copy's
    assert.deepEqual(rig.copied, [["Macintosh HD:/Users/me/break.wav", "/inbox/t-audio1-break.wav"]]);
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).audio_prompt_path, "/inbox/t-audio1-break.wav");
});

test("a prompt over the engine's limit is refused before sending", () => {
    const rig = startedRig();
    rig.device.control("prompt", "x".repeat(P.LIMITS.PROMPT_MAX_CHARS + 1));
    assert.equal(rig.device.generate(), null);
    assert.match(rig.status(), /The prompt has 501 characters: at most 500/);
    assert.equal(rig.sentTo(A.JOB_GENERATE).length, 0);
});

test("no answer from the engine: a message after the request timeout, no exception", () => {
    const rig = startedRig();
    rig.clock.advance(P.REQUEST_TIMEOUT_S * 1000 + 1);
    assert.match(rig.status(), /No answer from the loopbridge engine at 127\.0\.0\.1:9000\. Start it with `loopbridge serve`/);
    rig.device.generate();
    rig.clock.advance(P.REQUEST_TIMEOUT_S * 1000 + 1);
    assert.match(rig.status(), /No answer from the loopbridge engine at 127\.0\.0\.1:9000 within 5 s/);
    assert.deepEqual(rig.live.callsOf("call", "create_audio_clip"), []);
});

test("a request that timed out is let go: a later hello says ready, a tempo change re-conforms", () => {
    const dir = tempDir();
    const rig = startedRig({tempo: 120});
    rig.device.control("length", 2);  // 1 bar
    const first = rig.device.generate();
    completeJob(rig, first, [{path: loopFile(dir, "loop_120.wav", 4, 120), kind: "loop", tempo: 120, beats: 4, key: "rk-abc"}]);

    // The engine goes away: the variation request is never answered.
    rig.device.control("variation", 1);
    rig.clock.advance(300);
    const variation = rig.lastSentTo(A.JOB_VARIATION);
    assert.ok(variation);
    rig.clock.advance(P.REQUEST_TIMEOUT_S * 1000 + 1);
    assert.match(rig.status(), /No answer from the loopbridge engine at 127\.0\.0\.1:9000 within 5 s/);
    assert.equal(rig.device.activeJobs(), 0, "the unanswered job is no longer pending");
    assert.deepEqual(rig.lastSentTo(A.JOB_CANCEL).args, [idOf(variation)], "an engine that gets it late drops it");

    // The engine is back: its hello reads ready, and a late answer to the old job changes nothing.
    rig.reply(A.HELLO_REPLY, 1, "0.1.0", "/inbox");
    assert.match(rig.status(), /Engine 0\.1\.0 ready at 127\.0\.0\.1:9000/);
    rig.reply(A.JOB_DONE, idOf(variation), 0);
    assert.match(rig.status(), /ready/);

    // No job in the way any more: a tempo change re-conforms the sample in Live.
    rig.live.setTempo(100);
    rig.clock.advance(300);
    const conforms = rig.sentTo(A.JOB_CONFORM);
    assert.equal(conforms.length, 1);
    assert.equal(keyValues(conforms[0]).tempo_bpm, 100);
});

test("the engine's hello: ready, or a protocol version mismatch", () => {
    const rig = startedRig();
    rig.reply(A.HELLO_REPLY, 1, "0.1.0", "/inbox");
    assert.match(rig.status(), /Engine 0\.1\.0 ready at 127\.0\.0\.1:9000/);
    rig.clock.advance(10000);
    assert.match(rig.status(), /ready/);
    rig.reply(A.HELLO_REPLY, 2, "9.0.0", "/inbox");
    assert.match(rig.status(), /speaks protocol 2; this device speaks 1/);
});

test("a sample from an engine that sends no key (nine arguments) is placed, and nothing is said of its key", () => {
    const dir = tempDir();
    const rig = startedRig();
    const id = rig.device.generate();
    rig.reply(A.JOB_SAMPLE, id, 0, loopFile(dir, "l.wav", 4, 120), "loop", 120, 4, -1, 0, "rk");
    rig.reply(A.JOB_DONE, id, 1);
    assert.equal(rig.status(), "Placed l.wav in 'Audio' slot 1: Beats warp, 4 beats loop at 120 BPM.");
    assert.ok(rig.live.clipInSlot(0, 0));
});

test("error replies and malformed replies become status messages, never exceptions", () => {
    const dir = tempDir();
    const rig = startedRig();
    let id = rig.device.generate();
    rig.reply(A.ERROR, id, "bad_request", "bars=99 is not accepted: expected 0.25-64 bars");
    assert.equal(rig.status(), "Engine error (bad_request): bars=99 is not accepted: expected 0.25-64 bars");
    rig.clock.advance(10000);
    assert.match(rig.status(), /Engine error/);  // an answered job does not time out

    id = rig.device.generate();
    rig.reply(A.JOB_SAMPLE, id, 0, "/tmp/x.wav");  // too few arguments
    assert.match(rig.status(), /sent \/loopbridge\/job\/sample with 3 arguments: expected at least 9 \(/);
    rig.reply(A.JOB_SAMPLE, id, 0, "", "loop", 120, 4, -1, 0, "rk", "", -1);  // no path
    assert.match(rig.status(), /a sample without a file path/);
    rig.reply(A.JOB_DONE, id, 1);
    assert.match(rig.status(), /finished without a sample/);

    id = rig.device.generate();
    rig.reply(A.JOB_SAMPLE, id, 0, "/nonexistent/file.wav", "loop", 120, 4, -1, 0, "rk", "", -1);
    rig.reply(A.JOB_DONE, id, 1);
    assert.match(rig.status(), /Live did not create the clip in slot 1 of 'Audio'.*File: \/nonexistent\/file\.wav/);
    assert.equal(rig.live.errors.length, 1);  // Live itself refused the file (its message goes to the Max window)

    rig.reply("/loopbridge/session/tempo", 120);  // feedback meant for other controllers: ignored
    rig.reply("/something/else", 1, 2);
    rig.reply(A.JOB_PROGRESS, "unknown-job", 0.3);
    rig.reply(A.ERROR, "", "malformed", "could not parse");
    assert.equal(rig.status(), "Engine error (malformed): could not parse");
    const ok = loopFile(dir, "ok.wav", 4, 120);
    id = rig.device.generate();
    completeJob(rig, id, [{path: ok, kind: "loop", tempo: 120, beats: 4}]);
    assert.match(rig.status(), /Placed ok\.wav/);
});

test("controls restored with the set send nothing", () => {
    const rig = startedRig();
    rig.device.restore("variation", 5);
    rig.device.restore("morph", 40);
    rig.device.restore("pitch", 2);
    rig.clock.advance(1000);
    assert.equal(rig.device.values.variation, 5);
    assert.equal(rig.device.values.morph_amount, 0.4);
    assert.equal(rig.sentTo(A.JOB_VARIATION).length + rig.sentTo(A.JOB_MORPH).length, 0);
});

test("stop unregisters the reply port and leaves no timers behind", () => {
    const rig = startedRig();
    rig.device.generate();
    rig.device.control("variation", 2);
    rig.device.stop();
    assert.deepEqual(rig.lastSentTo(A.CONTROLLER_UNREGISTER).args, [P.DEFAULT_OSC_REPLY_PORT]);
    assert.deepEqual(rig.clock.pending, []);
});

test("Fit to song: a dropped file is copied to the inbox and fitted at once; a tempo change re-conforms it", () => {
    const dir = tempDir();
    const rig = startedRig({tempo: 124});
    rig.device.control("length", 3);  // 2 bars
    rig.device.control("drop_mode", 1);
    assert.match(rig.status(), /fit it to the song/);
    rig.device.control("audio_prompt", "Macintosh HD:/Users/me/Samples/my break.wav");
    // the inbox is not known yet: the engine is asked first, and nothing is fitted before its answer
    assert.equal(rig.sentTo(A.JOB_CONFORM_FILE).length, 0);
    rig.reply(A.HELLO_REPLY, 1, "0.1.0", "/data/loopbridge/inbox");
    const copy = "/data/loopbridge/inbox/t-audio1-my break.wav";
    assert.deepEqual(rig.copied, [["Macintosh HD:/Users/me/Samples/my break.wav", copy]]);
    const [sent] = rig.sentTo(A.JOB_CONFORM_FILE);
    const [id, path, ...pairs] = sent.args;
    assert.equal(path, copy);
    const fields = {};
    for (let i = 0; i < pairs.length; i += 2) {
        fields[pairs[i]] = pairs[i + 1];
    }
    assert.deepEqual(fields, {tempo_bpm: 124, meter_numerator: 4, meter_denominator: 4, bars: 2, name: "my break",
        pitch_semitones: 0, loudness_lufs: -14});
    for (const key of Object.keys(fields)) {
        assert.ok(P.FIELDS.conform_file[key], `${key} is not a conform_file field`);
    }
    assert.deepEqual(P.REQUEST_ARGS[A.JOB_CONFORM_FILE].args, [["id", "str"], ["path", "str"]]);
    assert.equal(rig.sentTo(A.JOB_GENERATE).length, 0);  // no model runs, and no audio prompt was set
    const fitted = loopFile(dir, "my-break_loop_124bpm_2bars.wav", 8, 124);
    completeJob(rig, id, [{path: fitted, kind: "loop", tempo: 124, beats: 8, key: "rk-file"}]);
    const clip = rig.live.clipInSlot(0, 0);
    assert.equal(clip.file_path, fitted);
    assert.equal(clip.warping, 1);
    assert.equal(clip.loop_end, 8);

    rig.live.setTempo(100);
    rig.clock.advance(300);
    const [conform] = rig.sentTo(A.JOB_CONFORM);
    assert.deepEqual(keyValues(conform), {render_key: "rk-file", tempo_bpm: 100, meter_numerator: 4,
        meter_denominator: 4, pitch_semitones: 0, loudness_lufs: -14, bars: 2});

    // back to Vary it: a drop is an audio prompt again, sent with Generate
    rig.device.control("drop_mode", 0);
    rig.device.control("audio_prompt", "/Users/me/kick.wav");
    assert.equal(rig.sentTo(A.JOB_CONFORM_FILE).length, 1);
    rig.device.generate();
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).audio_prompt_path, "/data/loopbridge/inbox/t-audio2-kick.wav");
    assert.deepEqual(rig.live.errors, []);
});

// ---- Run Task: the model's tasks on the current sample ---------------------------------------------

const ACE_STEP_CAPABILITIES = JSON.stringify({family: "ace-step", tasks: ["generate", "continue", "replace", "transform",
    "extract", "add"], tracks: P.TRACKS});
const STABLE_AUDIO_3_CAPABILITIES = JSON.stringify({family: "stable-audio-3", tasks: ["generate", "continue", "replace",
    "transform"], tracks: []});

/** A started rig whose engine named its inbox and said what `model` does; a loop placed from it. */
function taskRig(dir, capabilities, model = "tiny-ace-step") {
    const rig = startedRig({tempo: 120});
    rig.device.setModel(model);
    rig.reply(A.HELLO_REPLY, 1, "0.1.0", "/data/loopbridge/inbox");
    assert.deepEqual(rig.lastSentTo(A.MODELS_CAPABILITIES).args, [model]);
    rig.reply(A.MODELS_CAPABILITIES, model, capabilities);
    rig.device.control("kind", 1);
    rig.device.control("length", 3);  // 2 bars
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "groove.wav", 4, 120), kind: "loop", tempo: 120, beats: 8, key: "rk-groove"}]);
    return rig;
}

test("Run Task: the current sample's file goes through the inbox with the task's own fields", () => {
    const dir = tempDir();
    const rig = taskRig(dir, ACE_STEP_CAPABILITIES);
    const tasksLine = rig.ui.filter(([name]) => name === "tasks").pop();
    assert.equal(tasksLine[1], "Run Task with tiny-ace-step: Continue, Replace, Transform, Extract, Add a part.");
    const source = path.join(dir, "groove.wav");
    rig.device.control("prompt", "rolling bass");
    const cases = [
        [0, {task: "continue", continue_bars: 2}, () => rig.device.control("task_bars", 2.1)],
        [1, {task: "replace", replace_from_bar: 1, replace_to_bar: 1.5},
            () => { rig.device.control("from_bar", 1); rig.device.control("to_bar", 1.4); }],
        [2, {task: "transform", audio_prompt_strength: 0.3}, () => rig.device.control("strength", 30)],
        [3, {task: "extract", track: "drums"}, () => {}],
        [4, {task: "add", track: "bass"}, () => rig.device.control("track", 3)],
    ];
    for (const [index, own, set] of cases) {
        rig.device.control("task", index);
        set();
        const before = rig.copied.length;
        const id = rig.device.runTask();
        assert.ok(id, rig.status());
        const copy = rig.copied[before];
        assert.equal(copy[0], source, "the sample in Live is what the task works on");
        assert.match(copy[1], /^\/data\/loopbridge\/inbox\/t-audio\d+-groove\.wav$/);
        const fields = keyValues(rig.lastSentTo(A.JOB_GENERATE));
        assert.deepEqual(fields, {prompt: "rolling bass", kind: "loop", seed: fields.seed, tempo_bpm: 120,
            meter_numerator: 4, meter_denominator: 4, ...own, audio_prompt_path: copy[1], pitch_semitones: 0,
            loudness_lufs: -14, model: "tiny-ace-step"}, own.task);
        assert.equal("key" in fields, false);
        for (const key of Object.keys(fields)) {
            assert.ok(P.FIELDS.generate[key], `${key} is not a generate field`);
        }
        rig.reply(A.JOB_CANCELLED, id);
    }
});

test("a task's result lands like any sample: a new clip, re-conformed on a tempo change with its own bars", () => {
    const dir = tempDir();
    const rig = taskRig(dir, ACE_STEP_CAPABILITIES);
    rig.live.select(0, 1);
    rig.device.control("task", 0);  // continue
    rig.device.control("task_bars", 2);
    const id = rig.device.runTask();
    assert.match(rig.status(), /^Continuing the sample by 2 bars with tiny-ace-step/);
    const longer = loopFile(dir, "groove-continued.wav", 8, 120);
    completeJob(rig, id, [{path: longer, kind: "loop", tempo: 120, beats: 16, key: "rk-continued"}]);
    const clip = rig.live.clipInSlot(0, 1);
    assert.equal(clip.file_path, longer);
    assert.equal(clip.loop_end, 16, rig.status());
    assert.equal(rig.live.clipInSlot(0, 0).file_path, path.join(dir, "groove.wav"), "the source's clip stays");
    rig.live.setTempo(100);
    rig.clock.advance(300);
    // the result keeps the source's grid (its own bars, the engine's): no Length goes with it
    assert.deepEqual(keyValues(rig.lastSentTo(A.JOB_CONFORM)), {render_key: "rk-continued", tempo_bpm: 100,
        meter_numerator: 4, meter_denominator: 4, pitch_semitones: 0, loudness_lufs: -14});
    assert.deepEqual(rig.live.errors, []);
});

test("Run Task offers what the model's capabilities list, and says why it sends nothing", () => {
    const dir = tempDir();
    const rig = taskRig(dir, STABLE_AUDIO_3_CAPABILITIES, "tiny-stable-audio-3");
    assert.equal(rig.ui.filter(([name]) => name === "tasks").pop()[1],
        "Run Task with tiny-stable-audio-3: Continue, Replace, Transform.");
    const sent = rig.sentTo(A.JOB_GENERATE).length;
    rig.device.control("task", 3);  // extract
    assert.equal(rig.device.runTask(), null);
    assert.equal(rig.status(), "Extract: tiny-stable-audio-3 cannot do that to a sample (it offers: Continue, Replace, Transform).");
    rig.device.control("task", 0);
    rig.device.control("pitch", 3);
    assert.equal(rig.device.runTask(), null);
    assert.match(rig.status(), /^Continue: set Pitch to 0 first/);
    assert.equal(rig.sentTo(A.JOB_GENERATE).length, sent);

    // a model that does nothing to a sample: said on the tasks line, and by Run Task
    rig.device.control("pitch", 0);
    rig.device.setModel("tiny-dd");
    assert.deepEqual(rig.lastSentTo(A.MODELS_CAPABILITIES).args, ["tiny-dd"]);
    rig.reply(A.MODELS_CAPABILITIES, "tiny-dd", JSON.stringify({tasks: ["generate"]}));
    assert.match(rig.ui.filter(([name]) => name === "tasks").pop()[1], /^tiny-dd does nothing to a sample/);
    assert.equal(rig.device.runTask(), null);
    assert.equal(rig.status(), "Continue: tiny-dd cannot do that to a sample; choose a model that can.");

    // no sample yet
    const empty = startedRig();
    empty.reply(A.HELLO_REPLY, 1, "0.1.0", "/inbox");
    empty.reply(A.MODELS_CAPABILITIES, "tiny-ace-step", ACE_STEP_CAPABILITIES);
    assert.equal(empty.device.runTask(), null);
    assert.match(empty.status(), /^Continue: no sample yet/);
    assert.equal(empty.sentTo(A.JOB_GENERATE).length, 0);
});

test("Run Task before the engine said what the model does: asked first, then sent", () => {
    const dir = tempDir();
    const rig = startedRig({tempo: 120});
    rig.reply(A.HELLO_REPLY, 1, "0.1.0", "/inbox");
    const id = rig.device.generate();
    completeJob(rig, id, [{path: loopFile(dir, "a.wav", 1, 120), kind: "loop", tempo: 120, beats: 2, key: "rk-a"}]);
    rig.device.setModel("tiny-ace-step");  // a new model: what it does is asked again
    assert.equal(rig.device.runTask(), null);
    assert.match(rig.status(), /^Asking the engine what tiny-ace-step does to a sample/);
    assert.equal(rig.sentTo(A.JOB_GENERATE).length, 1);
    rig.reply(A.MODELS_CAPABILITIES, "tiny-stable-audio-3", STABLE_AUDIO_3_CAPABILITIES);  // about another model
    assert.equal(rig.sentTo(A.JOB_GENERATE).length, 1);
    rig.reply(A.MODELS_CAPABILITIES, "tiny-ace-step", ACE_STEP_CAPABILITIES);
    assert.equal(keyValues(rig.lastSentTo(A.JOB_GENERATE)).task, "continue");
});
