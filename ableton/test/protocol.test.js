"use strict";
// The device's copy of the protocol (ableton/js/loopbridge_protocol.js) against the one source,
// bridge/protocol.py (and the engine's request limits), dumped by ableton/tools/dump_protocol.py.

const test = require("node:test");
const assert = require("node:assert/strict");

const {modules} = require("./support/harness");
const {pythonProtocol} = require("./support/python");

const js = modules.protocol;

test("scalar constants are bridge/protocol.py's and engine/request.py's", () => {
    const py = pythonProtocol();
    for (const name of ["PROTOCOL_VERSION", "DEFAULT_OSC_HOST", "DEFAULT_OSC_PORT", "DEFAULT_OSC_REPLY_PORT",
        "REQUEST_TIMEOUT_S", "MAX_ID_CHARS", "MAX_OSC_PACKET_BYTES", "OSC_ROOT", "DEFAULT_SAMPLE_RATE",
        "RANDOM_SEED_MAX", "DEFAULT_LOUDNESS_LUFS"]) {
        assert.equal(js[name], py[name], name);
    }
});

test("every address the device names is in the protocol's OSC table", () => {
    const py = pythonProtocol();
    for (const [name, address] of Object.entries(js.ADDRESSES)) {
        const known = address in py.INCOMING || address in py.OUTGOING;
        assert.ok(known, `${name} = ${address} is not an address of bridge/protocol.py`);
    }
    assert.equal(js.ADDRESSES.ERROR, py.ERROR_ADDRESS);
});

test("requests: positional arguments and key/value request types match OSC_ADDRESSES", () => {
    const py = pythonProtocol();
    for (const [address, spec] of Object.entries(js.REQUEST_ARGS)) {
        assert.ok(address in py.INCOMING, `${address} is not an incoming address`);
        assert.deepEqual(spec, py.INCOMING[address], address);
    }
});

test("replies: argument names and order match OSC_OUTGOING", () => {
    const py = pythonProtocol();
    for (const [address, names] of Object.entries(js.REPLY_ARGS)) {
        assert.ok(address in py.OUTGOING, `${address} is not an outgoing address`);
        assert.deepEqual(names, py.OUTGOING[address], address);
    }
});

test("the device reads every reply the engine sends about a job", () => {
    const py = pythonProtocol();
    const jobReplies = Object.keys(py.OUTGOING).filter((address) => address.startsWith(`${py.OSC_ROOT}/job/`));
    assert.ok(jobReplies.length > 0);
    for (const address of jobReplies) {
        assert.ok(address in js.REPLY_ARGS, `${address} is not in REPLY_ARGS of loopbridge_protocol.js`);
    }
});

test("request fields and their types match FIELDS_BY_TYPE", () => {
    assert.deepEqual(js.FIELDS, pythonProtocol().FIELDS);
});

test("kinds and limits match engine/request.py", () => {
    const py = pythonProtocol();
    assert.deepEqual(js.KINDS, py.KINDS);
    assert.deepEqual(js.TASKS, py.TASKS);
    assert.deepEqual(js.TRACKS, py.TRACKS);
    assert.deepEqual(js.LIMITS, py.LIMITS);
});

test("key names are the engine's (engine/conform/key.py), by root from C", () => {
    assert.deepEqual(js.KEY_NAMES, pythonProtocol().KEY_NAMES);
});
