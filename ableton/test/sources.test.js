"use strict";
// The device's scripts are plain ES5 (Max's `js` object), keep Max's globals in the glue script,
// and name OSC addresses only through loopbridge_protocol.js.

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const {scriptFiles, parseES5, stringLiterals, bareNames} = require("./support/sources");

const MAX_GLOBALS = ["outlet", "post", "error", "LiveAPI", "Task", "File", "messagename", "inlet", "inlets",
    "outlets", "autowatch", "arrayfromargs", "jsarguments", "setinletassist", "setoutletassist", "module", "max"];

for (const file of scriptFiles()) {
    const name = path.basename(file);

    test(`${name} parses as ES5 (what Max's js object runs)`, () => {
        assert.doesNotThrow(() => parseES5(file));
    });

    test(`${name} names no OSC address of its own`, () => {
        const literals = stringLiterals(file).filter((s) => s.value.includes("/loopbridge") ||
            /^\/(engine|job|controller|session|models|history|error)\b/.test(s.value));
        if (name === "loopbridge_protocol.js") {
            // the root, and the addresses composed from it
            assert.deepEqual(literals.filter((s) => s.value.includes("/loopbridge")).map((s) => s.value),
                ["/loopbridge"]);
        } else {
            assert.deepEqual(literals, [], `${name} should take its addresses from loopbridge_protocol.js`);
        }
    });

    if (name !== "loopbridge.js") {
        test(`${name} uses no Max global (only the glue script does)`, () => {
            const used = bareNames(file).filter((n) => MAX_GLOBALS.includes(n.name));
            assert.deepEqual(used, []);
        });
    }
}
