"use strict";
// The .amxd build: the container's layout, and a round trip back to the same patch.

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const amxd = require("../tools/amxd");
const {build, PATCH} = require("../tools/build");
const {tempDir} = require("./support/harness");
const {JS_DIR} = require("../node/max_require");

const patcherText = fs.readFileSync(PATCH, "utf8");

test("header: ampf, a 4-byte audio effect type, meta, then ptch holding the patch and a NUL", () => {
    const bytes = amxd.encode(patcherText);
    assert.equal(bytes.toString("ascii", 0, 4), "ampf");
    assert.equal(bytes.readUInt32LE(4), 4);
    assert.equal(bytes.toString("ascii", 8, 12), "aaaa");
    assert.equal(bytes.toString("ascii", 12, 16), "meta");
    assert.equal(bytes.readUInt32LE(16), 4);
    assert.equal(bytes.toString("ascii", 24, 28), "ptch");
    const size = bytes.readUInt32LE(28);
    assert.equal(32 + size, bytes.length);
    assert.equal(bytes[bytes.length - 1], 0);
    assert.equal(bytes.toString("utf8", 32, bytes.length - 1), patcherText);
});

test("the built device round-trips to the same patch", () => {
    const out = tempDir();
    const result = build(out);
    const decoded = amxd.decode(fs.readFileSync(result.device));
    assert.equal(decoded.type, amxd.DEVICE_TYPES.audio_effect);
    assert.equal(decoded.meta, amxd.META_VALUE);
    assert.equal(decoded.patcherText, patcherText);
    assert.deepEqual(decoded.patcher, JSON.parse(patcherText));
    // and encoding what was decoded gives the same bytes
    assert.deepEqual(amxd.encode(decoded.patcherText, {type: decoded.type, meta: decoded.meta}), fs.readFileSync(result.device));
    // the scripts the patch loads travel with it
    for (const name of fs.readdirSync(JS_DIR).filter((n) => n.endsWith(".js"))) {
        assert.deepEqual(fs.readFileSync(path.join(out, name)), fs.readFileSync(path.join(JS_DIR, name)), name);
    }
});

for (const [what, bytes, pattern] of [
    ["an empty file", Buffer.alloc(0), /does not start with "ampf"/],
    ["another format", Buffer.from("RIFF\x04\x00\x00\x00WAVE"), /does not start with "ampf"/],
    ["a truncated chunk", amxd.encode(patcherText).subarray(0, 100), /declares \d+ bytes; 68 remain/],
    ["a frozen device", Buffer.concat([amxd.encode(patcherText).subarray(0, 24),
        Buffer.from("ptch\x08\x00\x00\x00mx@c\x00\x00\x00\x10", "latin1")]), /frozen/],
    ["a patch that is not JSON", Buffer.concat([amxd.encode(patcherText).subarray(0, 24),
        Buffer.from("ptch\x04\x00\x00\x00{{{\x00", "latin1")]), /not JSON/],
]) {
    test(`decoding refuses ${what}`, () => {
        assert.throws(() => amxd.decode(bytes), (err) => err instanceof amxd.AmxdError && pattern.test(err.message));
    });
}

test("encoding refuses a patch that is not a patcher, or an unknown device type", () => {
    assert.throws(() => amxd.encode("{}"), /no "patcher" object/);
    assert.throws(() => amxd.encode("nope"), /not JSON/);
    assert.throws(() => amxd.encode(patcherText, {type: "xxxx"}), /expected one of aaaa, mmmm, iiii/);
});
