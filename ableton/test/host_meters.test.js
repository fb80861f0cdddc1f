"use strict";
// The shared table of meters (tests/data/host_meters.json), read by the engine's, the plugin's and
// this device's tests. The engine turns a meter and bars into its own bar, bars, quarter notes and
// frames (engine/host.py; tests/engine/test_host.py checks those columns). What is left to the
// device, and checked here for every row: the request it formats carries Live's facts exactly (the
// row's numerator, denominator, bars and tempo, never a beats_per_bar of its own), and the clip it
// makes loops over the length the engine answers with (`beats`, the row's quarter notes).

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const osc = require("../node/osc");
const {modules, makeRig, keyValues, tempDir, loopFile} = require("./support/harness");

const P = modules.protocol;
const A = P.ADDRESSES;
const TABLE = path.join(__dirname, "..", "..", "tests", "data", "host_meters.json");
const COLUMNS = ["numerator", "denominator", "bars", "tempo_bpm", "sample_rate", "quarter_notes"];

/** The table's rows; a table that is missing, unreadable or empty fails the test that reads it. */
function meterRows() {
    let text;
    try {
        text = fs.readFileSync(TABLE, "utf8");
    } catch (err) {
        throw new Error(`the shared table of meters cannot be read: ${TABLE} (${err.code || err.message})`);
    }
    const rows = JSON.parse(text).cases;
    assert.ok(Array.isArray(rows) && rows.length > 0, `${TABLE} has no cases`);
    rows.forEach((row, index) => {
        for (const column of COLUMNS) {
            assert.equal(typeof row[column], "number", `${TABLE} case ${index}: ${column} = ${row[column]}`);
        }
    });
    return rows;
}

/** The request as it leaves Max's udpsend and arrives at the engine: OSC-encoded, then decoded. */
function onTheWire(message) {
    const [decoded] = osc.decodePacket(osc.encodeMessage(message.address, osc.fromAtoms(message.args)));
    const fields = {};
    for (let i = 1; i < decoded.args.length; i += 2) {
        fields[decoded.args[i].value] = decoded.args[i + 1];
    }
    return fields;
}

/** Sets the Length to `bars`: with the dial where it has that value, else as the device's Length value. */
function setLength(device, bars) {
    const index = modules.controls.LENGTH_BARS.indexOf(bars);
    if (index >= 0) {
        device.control("length", index);
    } else {
        // the dial stops at 32 bars; the request is formatted from the Length value all the same
        device.values.bars = bars;
    }
}

function assertHostFacts(fields, row, tempo, what) {
    assert.equal(fields.meter_numerator, row.numerator, what);
    assert.equal(fields.meter_denominator, row.denominator, what);
    assert.equal(fields.bars, row.bars, what);
    assert.equal(fields.tempo_bpm, tempo, what);
    assert.equal(fields.sample_rate, row.sample_rate, what);
    assert.equal("beats_per_bar" in fields, false, `${what}: beats_per_bar is the engine's to work out`);
}

function answer(rig, id, file, tempo, beats) {
    rig.reply(A.JOB_ACCEPTED, id, 0);
    rig.reply(A.JOB_SAMPLE, id, 0, file, "loop", tempo, beats, -1, 0, "rk-meter", "", -1);
    rig.reply(A.JOB_DONE, id, 1);
}

function assertLoop(rig, beats, what) {
    const clip = rig.live.clipInSlot(0, 0);
    assert.ok(clip, `${what}: ${rig.status()}`);
    assert.equal(clip.looping, 1, what);
    assert.equal(clip.loop_start, 0, what);
    assert.equal(clip.loop_end, beats, `${what}: ${rig.status()}`);
    assert.equal(clip.end_marker, beats, what);
    assert.match(rig.status(), new RegExp(`: Beats warp, ${String(beats).replace(".", "\\.")} beats? loop at `), what);
    assert.deepEqual(rig.live.errors, [], what);
}

test("tests/data/host_meters.json: the device sends each row's meter, bars and tempo, and loops the clip " +
     "over the engine's quarter notes", async (t) => {
    const rows = meterRows();
    const dir = tempDir();
    for (const [index, row] of rows.entries()) {
        const what = `${row.bars} bars of ${row.numerator}/${row.denominator} at ${row.tempo_bpm} BPM`;
        await t.test(what, () => {
            const rig = makeRig({tempo: row.tempo_bpm, numerator: row.numerator, denominator: row.denominator});
            rig.device.start();
            rig.device.setSampleRate(row.sample_rate);
            rig.device.control("kind", 1);  // loop
            setLength(rig.device, row.bars);
            const id = rig.device.generate();
            const sent = rig.lastSentTo(A.JOB_GENERATE);
            assert.ok(sent, rig.status());
            assertHostFacts(keyValues(sent), row, row.tempo_bpm, what);
            // and so they arrive: the meter as OSC ints, the rest unchanged by the encoding
            const wire = onTheWire(sent);
            assert.deepEqual([wire.meter_numerator.type, wire.meter_denominator.type], ["i", "i"], what);
            assert.deepEqual([wire.meter_numerator.value, wire.meter_denominator.value, wire.bars.value,
                wire.tempo_bpm.value], [row.numerator, row.denominator, row.bars, row.tempo_bpm], what);
            assert.equal("beats_per_bar" in wire, false, what);

            // the engine's answer: the row's quarter notes as `beats`, at the row's tempo (the file
            // is half as long, so that the loop can only come from `beats`)
            const file = loopFile(dir, `row${index}.wav`, row.quarter_notes / 2, row.tempo_bpm);
            answer(rig, id, file, row.tempo_bpm, row.quarter_notes);
            assertLoop(rig, row.quarter_notes, what);

            // a tempo change re-conforms with the same facts at the new tempo; the quarter notes stay
            const tempo = row.tempo_bpm === 120 ? 100 : 120;
            rig.live.setTempo(tempo);
            rig.clock.advance(1000);
            const conform = rig.lastSentTo(A.JOB_CONFORM);
            assert.ok(conform, rig.status());
            assertHostFacts(keyValues(conform), row, tempo, `${what}, re-conformed to ${tempo} BPM`);
            answer(rig, conform.args[0], loopFile(dir, `row${index}-${tempo}.wav`, row.quarter_notes / 2, tempo), tempo,
                row.quarter_notes);
            assertLoop(rig, row.quarter_notes, `${what}, re-conformed to ${tempo} BPM`);
        });
    }
});
