"use strict";
// OSC 1.0 encoding and decoding for the Node side of the device's tests (Max itself speaks OSC
// through udpsend / udpreceive). Pure functions over Buffers: strings are UTF-8, NUL-terminated
// and padded to 4 bytes; numbers are big-endian; a message is address, type tag string, arguments;
// a bundle is "#bundle", a 64-bit time tag and size-prefixed elements.
//
// Arguments are {type, value} pairs; `fromAtoms` / `toAtoms` convert from and to plain values the
// way Max does (integral numbers are ints, other numbers float32, strings symbols).
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

class OscError extends Error {
    constructor(message) {
        super(message);
        this.name = "OscError";
    }
}

function padLength(n) {
    return (n + 3) & ~3;
}

function encodeString(text) {
    const bytes = Buffer.from(String(text), "utf8");
    if (bytes.includes(0)) {
        throw new OscError(`OSC string ${JSON.stringify(text)} contains a NUL byte`);
    }
    const out = Buffer.alloc(padLength(bytes.length + 1));
    bytes.copy(out);
    return out;
}

function encodeBlob(data) {
    const bytes = Buffer.from(data);
    const out = Buffer.alloc(4 + padLength(bytes.length));
    out.writeInt32BE(bytes.length, 0);
    bytes.copy(out, 4);
    return out;
}

function encodeArgument(arg) {
    switch (arg.type) {
    case "i": {
        if (!Number.isInteger(arg.value) || arg.value < INT32_MIN || arg.value > INT32_MAX) {
            throw new OscError(`int32 argument ${arg.value} is not an integer in ${INT32_MIN}..${INT32_MAX}`);
        }
        const b = Buffer.alloc(4);
        b.writeInt32BE(arg.value, 0);
        return b;
    }
    case "f": {
        if (typeof arg.value !== "number") {
            throw new OscError(`float32 argument ${arg.value} is not a number`);
        }
        const b = Buffer.alloc(4);
        b.writeFloatBE(arg.value, 0);
        return b;
    }
    case "d": {
        const b = Buffer.alloc(8);
        b.writeDoubleBE(arg.value, 0);
        return b;
    }
    case "h": {
        const b = Buffer.alloc(8);
        b.writeBigInt64BE(BigInt(arg.value), 0);
        return b;
    }
    case "s":
        return encodeString(arg.value);
    case "b":
        return encodeBlob(arg.value);
    case "T":
    case "F":
    case "N":
    case "I":
        return Buffer.alloc(0);
    default:
        throw new OscError(`OSC type tag ${JSON.stringify(arg.type)} is not supported: expected one of i f d h s b T F N I`);
    }
}

/** One OSC message: address (must start with "/") and {type, value} arguments. */
function encodeMessage(address, args = []) {
    if (typeof address !== "string" || address.charAt(0) !== "/") {
        throw new OscError(`OSC address ${JSON.stringify(address)} must start with "/"`);
    }
    const tags = "," + args.map((a) => a.type).join("");
    return Buffer.concat([encodeString(address), encodeString(tags), ...args.map(encodeArgument)]);
}

/** A bundle of already encoded elements, with an NTP time tag (1n = immediately). */
function encodeBundle(elements, timeTag = 1n) {
    const head = Buffer.alloc(8);
    head.writeBigUInt64BE(BigInt(timeTag), 0);
    const parts = [encodeString("#bundle"), head];
    for (const element of elements) {
        const size = Buffer.alloc(4);
        size.writeInt32BE(element.length, 0);
        parts.push(size, element);
    }
    return Buffer.concat(parts);
}

function readString(buf, offset, what) {
    const end = buf.indexOf(0, offset);
    if (end < 0) {
        throw new OscError(`${what} at byte ${offset} has no NUL terminator`);
    }
    const next = padLength(end + 1);
    if (next > buf.length) {
        throw new OscError(`${what} at byte ${offset} is not padded to 4 bytes`);
    }
    for (let i = end + 1; i < next; i++) {
        if (buf[i] !== 0) {
            throw new OscError(`${what} at byte ${offset} is padded with a non-NUL byte`);
        }
    }
    return {value: buf.toString("utf8", offset, end), next};
}

function need(buf, offset, size, what) {
    if (offset + size > buf.length) {
        throw new OscError(`${what} at byte ${offset} needs ${size} bytes; ${buf.length - offset} left`);
    }
}

function decodeMessage(buf) {
    const address = readString(buf, 0, "address");
    if (address.value.charAt(0) !== "/") {
        throw new OscError(`OSC address ${JSON.stringify(address.value)} does not start with "/"`);
    }
    if (address.next >= buf.length) {
        throw new OscError(`message ${address.value} has no type tag string`);
    }
    const tags = readString(buf, address.next, "type tag string");
    if (tags.value.charAt(0) !== ",") {
        throw new OscError(`type tag string ${JSON.stringify(tags.value)} does not start with ","`);
    }
    let offset = tags.next;
    const args = [];
    for (const type of tags.value.slice(1)) {
        switch (type) {
        case "i":
            need(buf, offset, 4, "int32");
            args.push({type, value: buf.readInt32BE(offset)});
            offset += 4;
            break;
        case "f":
            need(buf, offset, 4, "float32");
            args.push({type, value: buf.readFloatBE(offset)});
            offset += 4;
            break;
        case "d":
            need(buf, offset, 8, "float64");
            args.push({type, value: buf.readDoubleBE(offset)});
            offset += 8;
            break;
        case "h":
            need(buf, offset, 8, "int64");
            args.push({type, value: buf.readBigInt64BE(offset)});
            offset += 8;
            break;
        case "t":
            need(buf, offset, 8, "time tag");
            args.push({type, value: buf.readBigUInt64BE(offset)});
            offset += 8;
            break;
        case "s":
        case "S": {
            const s = readString(buf, offset, "string");
            args.push({type, value: s.value});
            offset = s.next;
            break;
        }
        case "b": {
            need(buf, offset, 4, "blob size");
            const size = buf.readInt32BE(offset);
            if (size < 0) {
                throw new OscError(`blob at byte ${offset} has a negative size ${size}`);
            }
            need(buf, offset + 4, padLength(size), "blob");
            args.push({type, value: Buffer.from(buf.subarray(offset + 4, offset + 4 + size))});
            offset += 4 + padLength(size);
            break;
        }
        case "T":
            args.push({type, value: true});
            break;
        case "F":
            args.push({type, value: false});
            break;
        case "N":
            args.push({type, value: null});
            break;
        case "I":
            args.push({type, value: Infinity});
            break;
        default:
            throw new OscError(`unknown OSC type tag ${JSON.stringify(type)} in message ${address.value}`);
        }
    }
    if (offset !== buf.length) {
        throw new OscError(`message ${address.value} has ${buf.length - offset} bytes after its arguments`);
    }
    return {address: address.value, args};
}

/** A packet as a list of messages (a bundle's elements in order, nested bundles flattened). */
function decodePacket(data, depth = 0) {
    const buf = Buffer.from(data);
    if (buf.length === 0) {
        throw new OscError("empty OSC packet");
    }
    if (buf.length % 4 !== 0) {
        throw new OscError(`OSC packet of ${buf.length} bytes: the size must be a multiple of 4`);
    }
    if (buf[0] === 0x23) {  // "#"
        if (depth > 8) {
            throw new OscError("OSC bundles nested more than 8 deep");
        }
        const head = readString(buf, 0, "bundle header");
        if (head.value !== "#bundle") {
            throw new OscError(`packet starts with ${JSON.stringify(head.value)}: expected "/" or "#bundle"`);
        }
        need(buf, head.next, 8, "bundle time tag");
        let offset = head.next + 8;
        const messages = [];
        while (offset < buf.length) {
            need(buf, offset, 4, "bundle element size");
            const size = buf.readInt32BE(offset);
            if (size <= 0 || size % 4 !== 0) {
                throw new OscError(`bundle element at byte ${offset} has size ${size}: expected a positive multiple of 4`);
            }
            need(buf, offset + 4, size, "bundle element");
            messages.push(...decodePacket(buf.subarray(offset + 4, offset + 4 + size), depth + 1));
            offset += 4 + size;
        }
        return messages;
    }
    return [decodeMessage(buf)];
}

/** Plain values as OSC arguments, the way Max's udpsend types atoms. */
function fromAtoms(values) {
    return values.map((value) => {
        if (typeof value === "number") {
            if (Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX) {
                return {type: "i", value};
            }
            return {type: "f", value};
        }
        if (typeof value === "boolean") {
            return {type: "i", value: value ? 1 : 0};
        }
        return {type: "s", value: String(value)};
    });
}

/** OSC arguments as plain values, the way Max's udpreceive turns them into atoms. */
function toAtoms(args) {
    return args.map((arg) => {
        switch (arg.type) {
        case "h":
        case "t":
            return Number(arg.value);
        case "T":
            return 1;
        case "F":
            return 0;
        case "N":
            return "";
        case "b":
            return arg.value.toString("hex");
        default:
            return arg.value;
        }
    });
}

module.exports = {OscError, encodeMessage, encodeBundle, decodePacket, fromAtoms, toAtoms, INT32_MIN, INT32_MAX};
