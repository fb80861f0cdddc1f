"use strict";
// The device users download, dist/loopbridge/ (committed so that installing needs no Node), is
// exactly what a fresh build from patchers/ and js/ makes: byte for byte, no file more or less.
// When it is not, `npm run build` and commit dist/loopbridge/.

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const {build} = require("../tools/build");
const {tempDir} = require("./support/harness");

const COMMITTED = path.join(__dirname, "..", "dist", "loopbridge");

function filesIn(dir) {
    return fs.readdirSync(dir).sort();
}

test("two builds from the same sources are byte-identical (the build is deterministic)", () => {
    const first = tempDir();
    const second = tempDir();
    build(first);
    build(second);
    assert.deepEqual(filesIn(second), filesIn(first));
    for (const name of filesIn(first)) {
        assert.ok(fs.readFileSync(path.join(first, name)).equals(fs.readFileSync(path.join(second, name))), name);
    }
});

test("the committed dist/loopbridge is a fresh build of the sources, byte for byte", () => {
    assert.ok(fs.existsSync(COMMITTED), `${COMMITTED} is missing: run npm run build and commit dist/loopbridge`);
    const fresh = tempDir();
    const result = build(fresh);
    assert.deepEqual(filesIn(COMMITTED), filesIn(fresh),
        "dist/loopbridge holds other files than a build writes: run npm run build and commit dist/loopbridge");
    for (const name of filesIn(fresh)) {
        const committed = fs.readFileSync(path.join(COMMITTED, name));
        const built = fs.readFileSync(path.join(fresh, name));
        assert.ok(committed.equals(built),
            `dist/loopbridge/${name} (${committed.length} bytes) differs from a fresh build (${built.length} bytes): ` +
            "run npm run build and commit dist/loopbridge");
    }
    assert.equal(path.basename(result.device), "loopbridge.amxd");
    assert.equal(fs.readFileSync(path.join(COMMITTED, "loopbridge.amxd")).toString("ascii", 0, 4), "ampf");
});
