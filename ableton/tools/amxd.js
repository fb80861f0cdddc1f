"use strict";
// The .amxd container: Max's Max for Live device file around a patcher.
//
// Layout (as public parsers such as Ableton's maxdevtools read it): a sequence of chunks, each a
// 4-byte ASCII tag and a 32-bit little-endian size of the data that follows (no padding):
//   "ampf" size 4   device type: "aaaa" audio effect, "mmmm" MIDI effect, "iiii" instrument
//   "meta" size 4   a 32-bit little-endian value that readers ignore (Max-saved devices carry 7)
//   "ptch" size N   the patcher as UTF-8 JSON followed by one NUL byte (a frozen device holds an
//                   "mx@c" archive here instead: not produced or read by this module)
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

const DEVICE_TYPES = {audio_effect: "aaaa", midi_effect: "mmmm", instrument: "iiii"};
const META_VALUE = 7;

class AmxdError extends Error {
    constructor(message) {
        super(message);
        this.name = "AmxdError";
    }
}

function chunk(tag, data) {
    const head = Buffer.alloc(8);
    head.write(tag, 0, 4, "ascii");
    head.writeUInt32LE(data.length, 4);
    return Buffer.concat([head, data]);
}

/**
 * The .amxd bytes for a patcher's JSON text.
 * @param {string} patcherText  the .maxpat file's text (must parse as a JSON object with "patcher")
 * @param {{type?: string, meta?: number}} [options]  type: a value of DEVICE_TYPES
 */
function encode(patcherText, {type = DEVICE_TYPES.audio_effect, meta = META_VALUE} = {}) {
    if (!Object.values(DEVICE_TYPES).includes(type)) {
        throw new AmxdError(`device type ${JSON.stringify(type)}: expected one of ${Object.values(DEVICE_TYPES).join(", ")}`);
    }
    let parsed;
    try {
        parsed = JSON.parse(patcherText);
    } catch (err) {
        throw new AmxdError(`the patcher is not JSON: ${err.message}`);
    }
    if (!parsed || typeof parsed !== "object" || !parsed.patcher) {
        throw new AmxdError("the patcher JSON has no \"patcher\" object");
    }
    const metaData = Buffer.alloc(4);
    metaData.writeUInt32LE(meta, 0);
    return Buffer.concat([
        chunk("ampf", Buffer.from(type, "ascii")),
        chunk("meta", metaData),
        chunk("ptch", Buffer.concat([Buffer.from(patcherText, "utf8"), Buffer.from([0])])),
    ]);
}

/** The chunks of an .amxd file: [{tag, data}], in order. */
function chunks(bytes) {
    const buf = Buffer.from(bytes);
    const out = [];
    let offset = 0;
    while (offset < buf.length) {
        if (offset + 8 > buf.length) {
            throw new AmxdError(`truncated chunk header at byte ${offset}`);
        }
        const tag = buf.toString("ascii", offset, offset + 4);
        const size = buf.readUInt32LE(offset + 4);
        if (offset + 8 + size > buf.length) {
            throw new AmxdError(`chunk "${tag}" at byte ${offset} declares ${size} bytes; ${buf.length - offset - 8} remain`);
        }
        out.push({tag, data: buf.subarray(offset + 8, offset + 8 + size)});
        offset += 8 + size;
    }
    return out;
}

/**
 * Reads an .amxd file: {type, meta, patcherText, patcher}.
 * Raises AmxdError for a file that is not a device, a frozen or encrypted one, or a patch that is
 * not JSON.
 */
function decode(bytes) {
    const list = chunks(bytes);
    if (!list.length || list[0].tag !== "ampf") {
        throw new AmxdError("not a Max for Live device: the file does not start with \"ampf\"");
    }
    if (list[0].data.length !== 4) {
        throw new AmxdError(`"ampf" holds ${list[0].data.length} bytes: expected a 4-byte device type`);
    }
    const type = list[0].data.toString("ascii");
    const metaChunk = list.find((c) => c.tag === "meta");
    const meta = metaChunk && metaChunk.data.length === 4 ? metaChunk.data.readUInt32LE(0) : null;
    if (list.some((c) => c.tag === "ciph")) {
        throw new AmxdError("the device is encrypted");
    }
    const patch = list.find((c) => c.tag === "ptch");
    if (!patch) {
        throw new AmxdError("the device has no \"ptch\" chunk");
    }
    if (patch.data.subarray(0, 4).toString("ascii") === "mx@c") {
        throw new AmxdError("the device is frozen: its patch is inside an mx@c archive");
    }
    let data = patch.data;
    if (data.length && data[data.length - 1] === 0) {
        data = data.subarray(0, data.length - 1);
    }
    const patcherText = data.toString("utf8");
    let patcher;
    try {
        patcher = JSON.parse(patcherText);
    } catch (err) {
        throw new AmxdError(`the "ptch" chunk is not JSON: ${err.message}`);
    }
    return {type, meta, patcherText, patcher};
}

module.exports = {DEVICE_TYPES, META_VALUE, AmxdError, encode, decode, chunks};
