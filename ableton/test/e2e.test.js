"use strict";
// End to end: the device's js script (as Max runs it, in max_host.js) and the Live fake, talking
// OSC over UDP to a real `loopbridge serve` started here on free ports with a tiny model.
// Skipped, with the reason, where that engine cannot run (see support/engine.js).

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const {MaxHost, freeUdpPort} = require("../node/max_host");
const {FakeLive, wavDurationS} = require("./support/fake_live");
const {modules, tempDir} = require("./support/harness");
const {writeWav, wavInfo} = require("./support/wav");
const {unavailable, startEngine} = require("./support/engine");

const P = modules.protocol;
const A = P.ADDRESSES;
const GENERATE_TIMEOUT_MS = 300000;

const reason = unavailable();

function fields(message) {
    const out = {};
    for (let i = 1; i < message.args.length; i += 2) {
        out[message.args[i]] = message.args[i + 1];
    }
    return out;
}

function lastSample(host) {
    const samples = host.received.filter((m) => m.address === A.JOB_SAMPLE);
    return samples.length ? samples[samples.length - 1].args : null;
}

async function settled(host, since, what) {
    // a request is answered when the status moves on to a placement, or to an error to report
    await host.waitFor(() => host.statuses().slice(since).some((s) => /^Placed|^Engine error|^Live|^Could not|No answer/.test(s)),
        GENERATE_TIMEOUT_MS, what);
    return host.lastStatus();
}

test("the device against a real loopbridge serve", {skip: reason || false, timeout: 900000}, async (t) => {
    const engine = await startEngine();
    const live = new FakeLive({tempo: 120, tracks: [{name: "Loops", type: "audio"}]});
    const host = new MaxHost({LiveAPI: live.LiveAPI});
    host.message("engine", "127.0.0.1", engine.oscPort);
    host.message("reply_port", await freeUdpPort());
    host.message("model", engine.model);
    host.message("init");
    try {
        await t.test("the engine answers the device's hello on its registered port", async () => {
            await host.waitFor(() => /ready at 127\.0\.0\.1/.test(host.lastStatus()), 30000, "the hello reply");
        });

        await t.test("Generate: a clip in the selected slot, warped, looping the requested bars", async () => {
            host.textedit(1, "test loop");
            host.message("kind", 1);       // loop
            host.message("length", 0);     // 1/4 bar: the tiny model makes at most 1.024 s
            host.message("quality", 2);    // two diffusion steps
            const since = host.statuses().length;
            host.message("generate", 1);
            const status = await settled(host, since, "the generated clip");
            assert.match(status, /^Placed .* in 'Loops' slot 1: Beats warp, 1 beat loop at 120 BPM/, engine.log());
            const clip = live.clipInSlot(0, 0);
            assert.ok(fs.existsSync(clip.file_path), clip.file_path);
            assert.equal(clip.warping, 1);
            assert.equal(clip.warp_mode, 0);
            assert.equal(clip.looping, 1);
            assert.equal(clip.loop_start, 0);
            assert.equal(clip.loop_end, 1);
            // one beat at 120 BPM
            assert.ok(Math.abs(wavDurationS(clip.file_path) - 0.5) < 0.002, `${wavDurationS(clip.file_path)} s`);
            const sample = lastSample(host);
            assert.equal(sample[3], "loop");
            assert.ok(Math.abs(sample[4] - 120) < 1e-3);
            assert.deepEqual(live.errors, []);
        });

        await t.test("a tempo change re-conforms the sample: no new generate, a new file at the new tempo", async () => {
            assert.ok(live.clipInSlot(0, 0), "needs the clip of the Generate test");
            const generates = host.sent.filter((m) => m.address === A.JOB_GENERATE).length;
            const before = live.clipInSlot(0, 0).file_path;
            const renderKey = lastSample(host)[8];
            const since = host.statuses().length;
            live.setTempo(100);
            const status = await settled(host, since, "the re-conformed clip");
            assert.match(status, /^Placed .* at 100 BPM/, engine.log());
            const conform = host.sent.filter((m) => m.address === A.JOB_CONFORM).pop();
            assert.equal(fields(conform).render_key, renderKey);
            assert.equal(fields(conform).tempo_bpm, 100);
            assert.equal(host.sent.filter((m) => m.address === A.JOB_GENERATE).length, generates);
            const clip = live.clipInSlot(0, 0);
            assert.notEqual(clip.file_path, before);
            assert.equal(clip.loop_end, 1);
            assert.ok(Math.abs(wavDurationS(clip.file_path) - 0.6) < 0.002, `${wavDurationS(clip.file_path)} s`);
            assert.equal(lastSample(host)[8], renderKey);
            assert.deepEqual(live.errors, []);
        });

        await t.test("Live's song key re-conforms the sample to it: no new generate; the status names the sample's key", async () => {
            assert.ok(live.clipInSlot(0, 0), "needs the clip of the Generate test");
            const generates = host.sent.filter((m) => m.address === A.JOB_GENERATE).length;
            const renderKey = lastSample(host)[8];
            const since = host.statuses().length;
            live.setScale({rootNote: 9, scaleName: "Dorian", scaleMode: true});  // A Dorian: a minor key
            const status = await settled(host, since, "the clip conformed to the song's key");
            assert.match(status, /^Placed .* at 100 BPM, (in [A-G][#b]?m?|no key)\./, engine.log());
            const conform = fields(host.sent.filter((m) => m.address === A.JOB_CONFORM).pop());
            assert.equal(conform.key, "Am");
            assert.equal(conform.render_key, renderKey);
            assert.equal(host.sent.filter((m) => m.address === A.JOB_GENERATE).length, generates);
            // the engine's word on the sample's key: a key name, or "" (with confidence -1) for none
            const sample = lastSample(host);
            assert.match(String(sample[9]), /^([A-G][#b]?m?)?$/);
            assert.equal(sample[9] === "", sample[10] === -1, `${sample[9]} ${sample[10]}`);
            assert.deepEqual(live.errors, []);

            // Scale Mode off: the sample back in the key it was made in
            const again = host.statuses().length;
            live.setScale({scaleMode: false});
            await settled(host, again, "the clip without a key");
            assert.equal("key" in fields(host.sent.filter((m) => m.address === A.JOB_CONFORM).pop()), false);
        });

        await t.test("the Variation dial swaps in variation k", async () => {
            const since = host.statuses().length;
            host.message("variation", 1);
            const status = await settled(host, since, "variation 1");
            assert.match(status, /^Placed/, engine.log());
            assert.equal(lastSample(host)[7], 1);
            assert.equal(live.tracks[0].slots.filter((s) => s.clip).length, 1);
        });

        await t.test("a dropped audio file asks for variations of it", async () => {
            const dir = tempDir();
            const dropped = writeWav(path.join(dir, "dropped.wav"), {seconds: 0.6, sampleRate: 16000, channels: 2});
            live.select(0, 1);
            host.message("audio_prompt", dropped);
            const since = host.statuses().length;
            host.message("generate", 1);
            const status = await settled(host, since, "the audio-prompted clip");
            assert.match(status, /^Placed .* slot 2/, engine.log());
            // the engine reads files only in the folders it allows: the device sent a copy in its inbox
            const inbox = host.received.filter((m) => m.address === A.HELLO_REPLY).pop().args[2];
            const sent = fields(host.sent.filter((m) => m.address === A.JOB_GENERATE).pop()).audio_prompt_path;
            assert.equal(path.dirname(sent), inbox);
            assert.deepEqual(fs.readFileSync(sent), fs.readFileSync(dropped));
        });

        await t.test("in 7/8 the device sends Live's meter; the engine's note on a length it cannot make is shown", async () => {
            assert.ok(live.clipInSlot(0, 1), "needs the clip of the audio prompt test: a quarter bar");
            live.setMeter(7, 8);
            const since = host.statuses().length;
            // the tiny model makes at most 1.024 s: two bars of 7/8 (7 quarter notes) fit at 420 BPM
            live.setTempo(420);
            const status = await settled(host, since, "the re-conformed clip in 7/8");
            const conform = fields(host.sent.filter((m) => m.address === A.JOB_CONFORM).pop());
            assert.deepEqual([conform.meter_numerator, conform.meter_denominator, conform.bars, conform.tempo_bpm],
                [7, 8, 0.25, 420]);
            assert.equal("beats_per_bar" in conform, false);
            // a quarter bar of 7/8 is 0.875 quarter notes, below the engine's shortest length
            const note = host.received.filter((m) => m.address === A.JOB_NOTE && /cannot be made/.test(m.args[1])).pop();
            assert.ok(note, engine.log());
            assert.match(note.args[1], /^0\.25 bars of 7\/8 cannot be made exactly: 1\.75 quarter notes instead of 0\.875/);
            assert.match(status, /^Placed .* slot 2: Beats warp, 1\.75 beats loop at 420 BPM, no key\. /, engine.log());
            assert.ok(status.includes(note.args[1]), status);
            assert.equal(live.clipInSlot(0, 1).loop_end, 1.75);
        });

        await t.test("two bars of 7/8: the engine's seven quarter notes are the clip's loop", async () => {
            host.message("clear_audio", 1);
            host.message("length", 3);     // 2 bars
            live.select(0, 2);
            const notes = host.received.filter((m) => m.address === A.JOB_NOTE).length;
            const since = host.statuses().length;
            host.message("generate", 1);
            const status = await settled(host, since, "two bars of 7/8");
            const sent = fields(host.sent.filter((m) => m.address === A.JOB_GENERATE).pop());
            assert.deepEqual([sent.meter_numerator, sent.meter_denominator, sent.bars, sent.tempo_bpm], [7, 8, 2, 420]);
            assert.equal("beats_per_bar" in sent, false);
            assert.equal("sample_rate" in sent, false, "Live's rate is not known here");
            // an exact length has no note of its own; the engine still says its model takes no text
            const newNotes = host.received.filter((m) => m.address === A.JOB_NOTE).slice(notes).map((m) => m.args[1]);
            assert.deepEqual(newNotes, ["model 'tiny-dd' takes no text: the prompt was not used"], engine.log());
            // the tiny model's noise has no key, and the engine says so
            assert.match(status, /^Placed .* slot 3: Beats warp, 7 beats loop at 420 BPM, no key\. model 'tiny-dd' takes no text/,
                engine.log());
            assert.equal(lastSample(host)[5], 7);
            const clip = live.clipInSlot(0, 2);
            assert.equal(clip.loop_end, 7);
            assert.equal(clip.end_marker, 7);
            // 7 quarter notes at 420 BPM at the engine's default rate, to the frame
            const wav = wavInfo(clip.file_path);
            assert.equal(wav.sampleRate, P.DEFAULT_SAMPLE_RATE);
            assert.equal(wav.frames, Math.round(7 * 60 / 420 * P.DEFAULT_SAMPLE_RATE));
            assert.deepEqual(live.errors, []);
        });

        await t.test("Fit to song: a dropped file is fitted to the song as it is, then follows the tempo", async () => {
            const dir = tempDir();
            const dropped = writeWav(path.join(dir, "my pad.wav"), {seconds: 1.5, sampleRate: 44100, channels: 2});
            live.select(0, 3);
            host.message("drop_mode", 1);
            const generates = host.sent.filter((m) => m.address === A.JOB_GENERATE).length;
            let since = host.statuses().length;
            host.message("audio_prompt", dropped);
            let status = await settled(host, since, "the fitted clip");
            assert.match(status, /^Placed .* slot 4: Beats warp, 7 beats loop at 420 BPM/, engine.log());
            const [, copy, ...pairs] = host.sent.filter((m) => m.address === A.JOB_CONFORM_FILE).pop().args;
            const inbox = host.received.filter((m) => m.address === A.HELLO_REPLY).pop().args[2];
            assert.equal(path.dirname(copy), inbox);
            assert.deepEqual(fs.readFileSync(copy), fs.readFileSync(dropped));
            assert.ok(pairs.includes("name") && pairs[pairs.indexOf("name") + 1] === "my pad");
            assert.equal(host.sent.filter((m) => m.address === A.JOB_GENERATE).length, generates, "no model ran");
            const renderKey = lastSample(host)[8];
            let wav = wavInfo(live.clipInSlot(0, 3).file_path);
            assert.equal(wav.frames, Math.round(7 * 60 / 420 * P.DEFAULT_SAMPLE_RATE));
            // the song's tempo changes: the stored file is fitted again, not sent again
            const uploads = host.sent.filter((m) => m.address === A.JOB_CONFORM_FILE).length;
            since = host.statuses().length;
            live.setTempo(210);
            status = await settled(host, since, "the fitted clip at the new tempo");
            assert.match(status, /^Placed .* slot 4: Beats warp, 7 beats loop at 210 BPM/, engine.log());
            assert.equal(fields(host.sent.filter((m) => m.address === A.JOB_CONFORM).pop()).render_key, renderKey);
            assert.equal(host.sent.filter((m) => m.address === A.JOB_CONFORM_FILE).length, uploads);
            wav = wavInfo(live.clipInSlot(0, 3).file_path);
            assert.equal(wav.frames, Math.round(7 * 60 / 210 * P.DEFAULT_SAMPLE_RATE));
            host.message("drop_mode", 0);
            assert.deepEqual(live.errors, []);
        });

        await t.test("a pitched file fitted in Live's key: the engine moves it there (C major to D major)", async () => {
            // I-IV-V-I in C major, twice: bass and triad, one chord a beat at 120 BPM
            const progression = [[48, 60, 64, 67], [53, 60, 65, 69], [55, 59, 62, 67], [48, 60, 64, 67]];
            const dir = tempDir();
            const dropped = writeWav(path.join(dir, "chords in C.wav"), {seconds: 4, sampleRate: 44100, channels: 2,
                chords: progression.concat(progression)});
            let since = host.statuses().length;
            live.setScale({rootNote: 2, scaleName: "Major", scaleMode: true});  // D major; the clip in Live follows
            await settled(host, since, "the clip in Live conformed to D");
            live.select(0, 4);
            host.message("drop_mode", 1);
            since = host.statuses().length;
            host.message("audio_prompt", dropped);
            const status = await settled(host, since, "the fitted chords");
            const fit = host.sent.filter((m) => m.address === A.JOB_CONFORM_FILE).pop().args;
            assert.equal(fit[fit.indexOf("key") + 1], "D");
            const sample = lastSample(host);
            // shifted up a whole tone: D major (its relative B minor would count as a match too)
            assert.match(String(sample[9]), /^(D|Bm)$/, engine.log());
            assert.ok(sample[10] > 0 && sample[10] <= 1, String(sample[10]));
            assert.match(status, new RegExp(`^Placed .* slot 5: .*, in ${sample[9]}\\.`), status);
            host.message("drop_mode", 0);
            assert.deepEqual(live.errors, []);
        });

        await t.test("the engine stops: Generate gives a message, no error is thrown", async () => {
            await engine.stop();
            const clips = live.callsOf("call", "create_audio_clip").length;
            host.message("generate", 1);
            await host.waitFor(() => /No answer from the loopbridge engine/.test(host.lastStatus()),
                P.REQUEST_TIMEOUT_S * 1000 + 5000, "the no-answer message");
            assert.equal(live.callsOf("call", "create_audio_clip").length, clips);
        });

        assert.deepEqual(host.errors, []);
    } finally {
        await host.close();
        await engine.remove();
    }
});

test("Run Task against a real loopbridge serve with a tiny ACE-Step model", {skip: reason || false, timeout: 900000}, async (t) => {
    const engine = await startEngine({model: "tiny-ace-step"});
    // 240 BPM: one bar of 4/4 is one second, as the Python tests of the task models have it
    const live = new FakeLive({tempo: 240, tracks: [{name: "Loops", type: "audio"}]});
    const host = new MaxHost({LiveAPI: live.LiveAPI});
    host.message("engine", "127.0.0.1", engine.oscPort);
    host.message("reply_port", await freeUdpPort());
    host.message("model", engine.model);
    host.message("init");
    const tasksLine = () => host.ui.filter(([name]) => name === "tasks").map(([, text]) => text).pop();
    try {
        await t.test("the engine's capabilities of the model say what Run Task offers", async () => {
            await host.waitFor(() => tasksLine() !== undefined, 30000, "the model's capabilities");
            assert.equal(tasksLine(), "Run Task with tiny-ace-step: Continue, Replace, Transform, Extract, Add a part.");
        });

        await t.test("a loop from the model, then Continue by a bar: the sample and one more bar, a new clip", async () => {
            host.textedit(1, "drum loop");
            host.message("kind", 1);       // loop
            host.message("length", 2);     // 1 bar
            host.message("quality", 2);    // two steps
            let since = host.statuses().length;
            host.message("generate", 1);
            let status = await settled(host, since, "the generated loop");
            assert.match(status, /^Placed .* slot 1: Beats warp, 4 beats loop at 240 BPM/, engine.log());
            const source = live.clipInSlot(0, 0).file_path;

            live.select(0, 1);
            host.message("task", 0);       // Continue
            host.message("task_bars", 1);
            since = host.statuses().length;
            host.message("run_task", 1);
            status = await settled(host, since, "the continued loop");
            assert.match(status, /^Placed .* slot 2: Beats warp, 8 beats loop at 240 BPM/, engine.log());
            const sent = fields(host.sent.filter((m) => m.address === A.JOB_GENERATE).pop());
            assert.deepEqual([sent.task, sent.continue_bars, sent.kind], ["continue", 1, "loop"]);
            // the sample in Live travelled as a copy in the engine's inbox, as it is
            const inbox = host.received.filter((m) => m.address === A.HELLO_REPLY).pop().args[2];
            assert.equal(path.dirname(sent.audio_prompt_path), inbox);
            assert.deepEqual(fs.readFileSync(sent.audio_prompt_path), fs.readFileSync(source));
            const wav = wavInfo(live.clipInSlot(0, 1).file_path);
            assert.equal(wav.frames, 2 * P.DEFAULT_SAMPLE_RATE, "two bars of 240 BPM, to the frame");
            assert.deepEqual(live.errors, []);
        });

        await t.test("Extract drums from the continued loop; a tempo change re-conforms the result, no model run", async () => {
            live.select(0, 2);
            host.message("task", 3);       // Extract
            host.message("track", 2);      // drums
            let since = host.statuses().length;
            host.message("run_task", 1);
            let status = await settled(host, since, "the extracted drums");
            assert.match(status, /^Placed .* slot 3: Beats warp, 8 beats loop at 240 BPM/, engine.log());
            assert.deepEqual([fields(host.sent.filter((m) => m.address === A.JOB_GENERATE).pop()).task,
                fields(host.sent.filter((m) => m.address === A.JOB_GENERATE).pop()).track], ["extract", "drums"]);
            const renderKey = lastSample(host)[8];
            const generates = host.sent.filter((m) => m.address === A.JOB_GENERATE).length;
            since = host.statuses().length;
            live.setTempo(120);
            status = await settled(host, since, "the drums at 120 BPM");
            assert.match(status, /^Placed .* slot 3: Beats warp, 8 beats loop at 120 BPM/, engine.log());
            assert.equal(fields(host.sent.filter((m) => m.address === A.JOB_CONFORM).pop()).render_key, renderKey);
            assert.equal(host.sent.filter((m) => m.address === A.JOB_GENERATE).length, generates);
            assert.equal(wavInfo(live.clipInSlot(0, 2).file_path).frames, 4 * P.DEFAULT_SAMPLE_RATE);
            assert.deepEqual(live.errors, []);
        });

        assert.deepEqual(host.errors, []);
    } finally {
        await host.close();
        await engine.remove();
    }
});
