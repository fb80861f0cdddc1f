"use strict";
// The patch (patchers/loopbridge.maxpat): no dangling cords, objects as Max defines them, every
// control in the control table and wired to the script, no OSC address the protocol lacks, and
// the wiring that ableton/node/max_host.js stands in for.

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const {Patch, PATCH_FILE} = require("../node/patch");
const {modules} = require("./support/harness");
const {pythonProtocol} = require("./support/python");
const {JS_DIR, topLevelFunctions, declaredIO} = require("./support/sources");

const patch = Patch.load();
const P = modules.protocol;
const CONTROLS = modules.controls.CONTROLS;
const SCRIPT = path.join(JS_DIR, "loopbridge.js");
const scriptIO = {"loopbridge.js": declaredIO(SCRIPT)};
const jsBox = patch.boxes.find((box) => Patch.className(box) === "js");

test("no dangling cords, no unknown objects, inlets and outlets as the objects have them", () => {
    assert.deepEqual(patch.problems(scriptIO), []);
});

test("the structural check catches a dangling cord and a wrong outlet", () => {
    const broken = JSON.parse(fs.readFileSync(PATCH_FILE, "utf8"));
    broken.patcher.lines.push({patchline: {source: ["obj-999", 0], destination: [jsBox.id, 0]}});
    broken.patcher.lines.push({patchline: {source: [jsBox.id, 7], destination: [jsBox.id, 0]}});
    broken.patcher.boxes.push({box: {id: "obj-998", maxclass: "newobj", text: "udpsnd 1 2", numinlets: 1, numoutlets: 0}});
    const problems = new Patch(broken).problems(scriptIO);
    assert.ok(problems.some((p) => /starts at a box that does not exist/.test(p)), problems.join("\n"));
    assert.ok(problems.some((p) => /leaves outlet 7 of js loopbridge.js, which has 3/.test(p)), problems.join("\n"));
    assert.ok(problems.some((p) => /unknown object "udpsnd"/.test(p)), problems.join("\n"));
});

test("every OSC address in the patch is one the protocol defines", () => {
    const py = pythonProtocol();
    const text = fs.readFileSync(PATCH_FILE, "utf8");
    const found = text.match(/\/loopbridge(\/[A-Za-z0-9_]+)*/g) || [];
    const unknown = found.filter((a) => !(a in py.INCOMING) && !(a in py.OUTGOING));
    assert.deepEqual(unknown, []);
});

test("every control of the table is in the patch, and every control of the patch is in the table", () => {
    const names = new Set(CONTROLS.map((row) => row.varname));
    for (const row of CONTROLS) {
        const box = patch.byVarname(row.varname);
        assert.ok(box, `no box named ${row.varname}`);
        assert.equal(box.maxclass, row.maxclass, row.varname);
    }
    const uiControls = patch.boxes.filter((box) => box.parameter_enable === 1 || box.maxclass === "textedit");
    for (const box of uiControls) {
        assert.ok(names.has(box.varname), `${box.maxclass} ${box.varname || box.id} is not in loopbridge_controls.js`);
    }
});

test("every control maps to an incoming address of the protocol, and to a field of its request type", () => {
    const py = pythonProtocol();
    for (const row of CONTROLS.concat(modules.controls.LIVE_INPUTS, modules.controls.SETTINGS)) {
        const entry = py.INCOMING[row.address];
        assert.ok(entry, `${row.name}: ${row.address} is not an address the engine takes`);
        if (row.field !== null) {
            assert.ok(entry.keyvalues, `${row.name}: ${row.address} takes no key/value fields`);
            assert.ok(row.field in py.FIELDS[entry.keyvalues], `${row.name}: ${row.field} is not a field of ${entry.keyvalues}`);
        }
    }
});

test("the script handles every setting message", () => {
    const functions = new Set(topLevelFunctions(SCRIPT));
    for (const row of modules.controls.SETTINGS) {
        assert.ok(functions.has(row.message), `no function ${row.message} in loopbridge.js`);
    }
});

test("Live parameters: ranges, menus, initial values and units as the control table says", () => {
    for (const row of CONTROLS.filter((r) => r.parameter)) {
        const valueof = patch.byVarname(row.varname).saved_attribute_attributes.valueof;
        const p = row.parameter;
        assert.equal(valueof.parameter_longname, row.varname);
        assert.equal(valueof.parameter_type, p.type, row.varname);
        if (p.enum) {
            assert.deepEqual(valueof.parameter_enum, p.enum, row.varname);
            assert.equal(valueof.parameter_mmax, p.enum.length - 1, row.varname);
        } else if (p.type !== 4) {
            assert.equal(valueof.parameter_mmin, p.min, row.varname);
            assert.equal(valueof.parameter_mmax, p.max, row.varname);
            assert.equal(valueof.parameter_unitstyle, p.unitstyle, row.varname);
        }
        if (p.initial !== undefined) {
            assert.equal(valueof.parameter_initial_enable, 1, row.varname);
            assert.deepEqual(valueof.parameter_initial, [p.initial], row.varname);
        }
        if (row.values) {
            assert.equal(row.values.length, p.enum.length, row.varname);
        }
    }
    const longnames = CONTROLS.filter((r) => r.parameter).map((r) => r.varname);
    assert.equal(new Set(longnames).size, longnames.length, "parameter long names must be unique");
    const listed = Object.entries(patch.patcher.parameters).filter(([key]) => key.startsWith("obj-"));
    assert.deepEqual(listed.map(([id, [longname]]) => [id, longname]).sort(),
        patch.boxes.filter((b) => b.parameter_enable === 1)
            .map((b) => [b.id, b.saved_attribute_attributes.valueof.parameter_longname]).sort());
});

test("control ranges stay inside what the engine accepts", () => {
    const L = P.LIMITS;
    const byName = (name) => modules.controls.byName(name);
    assert.ok(byName("variation").parameter.max <= L.VARIATION_MAX);
    assert.ok(byName("pitch").parameter.min >= L.PITCH_MIN_SEMITONES);
    assert.ok(byName("pitch").parameter.max <= L.PITCH_MAX_SEMITONES);
    assert.ok(byName("quality").parameter.max <= L.STEPS_MAX);
    for (const bars of byName("length").values) {
        assert.ok(bars >= L.BARS_MIN && bars <= L.BARS_MAX, `${bars} bars`);
    }
    assert.deepEqual(byName("kind").values, P.KINDS);
    assert.deepEqual(byName("kind").parameter.enum, P.KINDS);
    assert.equal(byName("morph").parameter.max * byName("morph").scale, 1);
    // Run Task's controls: the engine's tasks (but generate) and tracks, bars within its range
    assert.deepEqual(byName("task").values, P.TASKS.filter((task) => task !== "generate"));
    assert.deepEqual(byName("track").values, P.TRACKS);
    for (const name of ["task_bars", "to_bar"]) {
        assert.ok(byName(name).parameter.min >= L.BARS_MIN && byName(name).parameter.max <= L.BARS_MAX, name);
    }
    assert.ok(byName("from_bar").parameter.min >= 0 && byName("from_bar").parameter.max < L.BARS_MAX);
    assert.equal(byName("strength").parameter.max * byName("strength").scale, 1);
});

test("each control reaches the script with the message the script handles", () => {
    const functions = new Set(topLevelFunctions(SCRIPT));
    for (const row of CONTROLS) {
        const box = patch.byVarname(row.varname);
        const cords = patch.from(box.id, 0);
        assert.equal(cords.length, 1, `${row.varname} outlet 0 should have one cord`);
        if (row.maxclass === "textedit") {
            assert.equal(cords[0].to, jsBox, `${row.varname} goes straight to the script`);
            assert.equal(cords[0].inlet, row.inlet, `${row.varname} enters inlet ${row.inlet}`);
            assert.ok(functions.has("text"), "the script handles textedit's \"text\" message");
            continue;
        }
        const prepend = cords[0].to;
        assert.equal(prepend.text, `prepend ${row.message}`, row.varname);
        assert.deepEqual(patch.from(prepend.id).map((c) => [c.to, c.inlet]), [[jsBox, 0]], row.varname);
        // handled by a function of that name, or by anything() through the control table
        assert.ok(functions.has(row.message) || (functions.has("anything") && modules.controls.byName(row.message)),
            `the script has no handler for "${row.message}"`);
    }
});

test("the wiring around the script: udpsend, udpreceive, status, live.thisdevice, sample rate", () => {
    const [udpsend] = patch.byText(`udpsend ${P.DEFAULT_OSC_HOST} ${P.DEFAULT_OSC_PORT}`);
    const [udpreceive] = patch.byText(`udpreceive ${P.DEFAULT_OSC_REPLY_PORT}`);
    assert.ok(udpsend && udpreceive, "udpsend / udpreceive with the protocol's default ports");
    assert.deepEqual(patch.from(jsBox.id, 0).map((c) => [c.to, c.inlet]), [[udpsend, 0]]);
    assert.deepEqual(patch.from(jsBox.id, 1).map((c) => [c.to, c.inlet]), [[udpreceive, 0]]);
    const [deferred] = patch.from(udpreceive.id, 0);
    assert.equal(deferred.to.text, "deferlow");
    assert.deepEqual(patch.from(deferred.to.id, 0).map((c) => [c.to, c.inlet]), [[jsBox, 0]]);
    const [route] = patch.from(jsBox.id, 2).map((c) => c.to);
    assert.equal(route.text, "route status progress tasks");
    const status = patch.byVarname("status");
    const progress = patch.byVarname("progress");
    const tasks = patch.byVarname("tasks");
    const setStatus = patch.from(route.id, 0)[0].to;
    const setProgress = patch.from(route.id, 1)[0].to;
    const setTasks = patch.from(route.id, 2)[0].to;
    assert.deepEqual([setStatus.text, setProgress.text, setTasks.text], ["prepend set", "prepend set", "prepend set"]);
    assert.equal(patch.from(setStatus.id)[0].to, status);
    assert.equal(patch.from(setProgress.id)[0].to, progress);
    // what Run Task offers with the chosen model (the device's "tasks" line)
    assert.equal(patch.from(setTasks.id)[0].to, tasks);
    assert.equal(tasks.maxclass, "comment");
    // live.thisdevice -> ... -> "init": the Live API is usable only from then on
    const [thisdevice] = patch.byText("live.thisdevice");
    const seen = new Set();
    const queue = [thisdevice];
    let reachesInit = false;
    while (queue.length) {
        const box = queue.shift();
        if (seen.has(box.id)) {
            continue;
        }
        seen.add(box.id);
        for (const cord of patch.from(box.id)) {
            if (box.maxclass === "message" && box.text === "init" && cord.to === jsBox) {
                reachesInit = true;
            }
            queue.push(cord.to);
        }
    }
    assert.ok(reachesInit, "live.thisdevice should send \"init\" to the script");
    assert.ok(topLevelFunctions(SCRIPT).includes("init"));
    const [dsp] = patch.byText("dspstate~");
    assert.equal(patch.from(dsp.id, 1)[0].to.text, "prepend sample_rate");
    assert.ok(topLevelFunctions(SCRIPT).includes("sample_rate"));
    // audio passes through: an audio effect must not silence its track
    const [plugin] = patch.byText("plugin~");
    const [plugout] = patch.byText("plugout~");
    assert.deepEqual(patch.from(plugin.id).map((c) => [c.outlet, c.to, c.inlet]).sort(),
        [[0, plugout, 0], [1, plugout, 1]]);
});

test("the device opens in presentation and its controls fit Live's device view", () => {
    assert.equal(patch.patcher.openinpresentation, 1);
    const width = patch.patcher.devicewidth;
    for (const box of patch.boxes.filter((b) => b.presentation === 1)) {
        const [x, y, w, h] = box.presentation_rect;
        assert.ok(x >= 0 && y >= 0 && x + w <= width && y + h <= 169, `${box.varname || box.text} at ${box.presentation_rect}`);
    }
    for (const row of CONTROLS) {
        assert.equal(patch.byVarname(row.varname).presentation, 1, `${row.varname} is shown in Live`);
    }
});

test("docs/controls.svg is drawn from the current patch and control table", () => {
    const {render, OUT} = require("../tools/render_controls");
    assert.equal(fs.readFileSync(OUT, "utf8"), render(), "run `npm run diagram` and commit docs/controls.svg");
});
