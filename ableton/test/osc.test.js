"use strict";
// The Node OSC codec (ableton/node/osc.js): byte layouts from the OSC 1.0 specification, round
// trips, and garbage / empty / truncated input rejected with an OscError naming the problem.

const test = require("node:test");
const assert = require("node:assert/strict");
const dgram = require("node:dgram");

const osc = require("../node/osc");

const hex = (s) => Buffer.from(s.replace(/\s+/g, ""), "hex");

test("byte layout: padded strings, big-endian int32 and float32, type tags", () => {
    const packet = osc.encodeMessage("/a", [{type: "i", value: 1}, {type: "f", value: 0.5}, {type: "s", value: "hi"}]);
    assert.deepEqual(packet, hex(`
        2f610000
        2c696673 00000000
        00000001
        3f000000
        68690000`));
    // a string whose length is a multiple of 4 still gets a full word of NULs
    assert.deepEqual(osc.encodeMessage("/abc"), hex("2f616263 00000000 2c000000"));
});

test("round trips every supported type", () => {
    const args = [
        {type: "i", value: -2147483648}, {type: "i", value: 2147483647}, {type: "f", value: 440},
        {type: "d", value: 0.1}, {type: "h", value: 9007199254740993n}, {type: "s", value: "kick drüm"},
        {type: "s", value: ""}, {type: "b", value: Buffer.from([1, 2, 3])}, {type: "T", value: true},
        {type: "F", value: false}, {type: "N", value: null}, {type: "I", value: Infinity},
    ];
    const [message] = osc.decodePacket(osc.encodeMessage("/loopbridge/x", args));
    assert.equal(message.address, "/loopbridge/x");
    assert.deepEqual(message.args, args);
});

test("bundles: elements in order, nested bundles flattened", () => {
    const inner = osc.encodeBundle([osc.encodeMessage("/b", [{type: "i", value: 2}])]);
    const packet = osc.encodeBundle([osc.encodeMessage("/a", [{type: "i", value: 1}]), inner]);
    assert.deepEqual(osc.decodePacket(packet).map((m) => [m.address, m.args[0].value]), [["/a", 1], ["/b", 2]]);
});

test("atoms as Max types them: whole numbers int32, others float32, the rest symbols", () => {
    assert.deepEqual(osc.fromAtoms([3, 2.5, "x", 3e10, true]), [
        {type: "i", value: 3}, {type: "f", value: 2.5}, {type: "s", value: "x"}, {type: "f", value: 3e10},
        {type: "i", value: 1},
    ]);
    assert.deepEqual(osc.toAtoms([{type: "i", value: 4}, {type: "T", value: true}, {type: "h", value: 5n}]), [4, 1, 5]);
});

const GOOD = osc.encodeMessage("/ok", [{type: "i", value: 7}, {type: "s", value: "abc"}]);

for (const [what, data, pattern] of [
    ["empty packet", Buffer.alloc(0), /empty OSC packet/],
    ["size not a multiple of 4", Buffer.from("/ab"), /multiple of 4/],
    ["no leading slash", Buffer.from("abc\0,\0\0\0"), /does not start with "\/"/],
    ["no NUL in the address", Buffer.from("/abcdefg"), /no NUL terminator/],
    ["no type tag string", hex("2f6f6b00"), /has no type tag string/],
    ["type tags without a comma", Buffer.concat([hex("2f6f6b00"), Buffer.from("ii\0\0")]), /does not start with ","/],
    ["truncated int32", GOOD.subarray(0, 8), /int32 at byte 8 needs 4 bytes/],
    ["truncated string", GOOD.subarray(0, 12), /string at byte 12 has no NUL terminator/],
    ["trailing bytes", Buffer.concat([GOOD, Buffer.alloc(4)]), /4 bytes after its arguments/],
    ["unknown type tag", Buffer.concat([hex("2f6f6b00"), Buffer.from(",q\0\0")]), /unknown OSC type tag "q"/],
    ["non-NUL padding", Buffer.from("/a\0x,\0\0\0"), /padded with a non-NUL byte/],
    ["negative blob size", Buffer.concat([hex("2f6f6b00"), Buffer.from(",b\0\0"), hex("ffffffff")]), /negative size/],
    ["bad bundle header", Buffer.from("#bundlx\0\0\0\0\0\0\0\0\0"), /expected "\/" or "#bundle"/],
    ["bundle element overrun", Buffer.concat([osc.encodeBundle([]), hex("00000010"), GOOD.subarray(0, 4)]),
        /bundle element at byte 20 needs 16 bytes/],
    ["random garbage", hex("deadbeefdeadbeef"), /./],
]) {
    test(`rejects ${what}`, () => {
        assert.throws(() => osc.decodePacket(data), (err) => err instanceof osc.OscError && pattern.test(err.message));
    });
}

test("encoding refuses what OSC cannot carry", () => {
    assert.throws(() => osc.encodeMessage("no-slash"), osc.OscError);
    assert.throws(() => osc.encodeMessage("/a", [{type: "i", value: 2 ** 31}]), /not an integer in/);
    assert.throws(() => osc.encodeMessage("/a", [{type: "s", value: "a\0b"}]), /NUL byte/);
    assert.throws(() => osc.encodeMessage("/a", [{type: "x", value: 1}]), /not supported/);
});

test("a message survives a real UDP round trip to a peer the test controls", async () => {
    const peer = dgram.createSocket("udp4");
    await new Promise((resolve) => peer.bind(0, "127.0.0.1", resolve));
    const received = new Promise((resolve) => peer.once("message", (data) => resolve(osc.decodePacket(data))));
    const sender = dgram.createSocket("udp4");
    sender.send(osc.encodeMessage("/loopbridge/engine/hello", []), peer.address().port, "127.0.0.1");
    const [message] = await received;
    assert.deepEqual(message, {address: "/loopbridge/engine/hello", args: []});
    sender.close();
    peer.close();
});
