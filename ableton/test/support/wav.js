"use strict";
// Writes small 16-bit PCM WAV files for tests that need real audio files (Live's fake reads
// their length; the device puts them into clips), and reads back the format of the engine's.

const fs = require("node:fs");

function writeWav(file, {seconds = 1, sampleRate = 48000, channels = 2, frequencyHz = 220} = {}) {
    const frames = Math.round(seconds * sampleRate);
    const data = Buffer.alloc(frames * channels * 2);
    for (let i = 0; i < frames; i++) {
        const value = Math.round(Math.sin(2 * Math.PI * frequencyHz * i / sampleRate) * 8000);
        for (let c = 0; c < channels; c++) {
            data.writeInt16LE(value, (i * channels + c) * 2);
        }
    }
    const header = Buffer.alloc(44);
    header.write("RIFF", 0, "ascii");
    header.writeUInt32LE(36 + data.length, 4);
    header.write("WAVE", 8, "ascii");
    header.write("fmt ", 12, "ascii");
    header.writeUInt32LE(16, 16);
    header.writeUInt16LE(1, 20);
    header.writeUInt16LE(channels, 22);
    header.writeUInt32LE(sampleRate, 24);
    header.writeUInt32LE(sampleRate * channels * 2, 28);
    header.writeUInt16LE(channels * 2, 32);
    header.writeUInt16LE(16, 34);
    header.write("data", 36, "ascii");
    header.writeUInt32LE(data.length, 40);
    fs.writeFileSync(file, Buffer.concat([header, data]));
    return file;
}

/** {sampleRate, channels, frames} of a PCM or float WAV file (any chunks around `fmt ` and `data`). */
function wavInfo(file) {
    const data = fs.readFileSync(file);
    if (data.length < 12 || data.toString("ascii", 0, 4) !== "RIFF" || data.toString("ascii", 8, 12) !== "WAVE") {
        throw new Error(`${file} is not a WAV file`);
    }
    let format = null;
    for (let offset = 12; offset + 8 <= data.length;) {
        const id = data.toString("ascii", offset, offset + 4);
        const size = data.readUInt32LE(offset + 4);
        if (id === "fmt ") {
            format = {channels: data.readUInt16LE(offset + 10), sampleRate: data.readUInt32LE(offset + 12),
                blockAlign: data.readUInt16LE(offset + 20)};
        } else if (id === "data" && format) {
            const bytes = Math.min(size, data.length - offset - 8);
            return {sampleRate: format.sampleRate, channels: format.channels, frames: bytes / format.blockAlign};
        }
        offset += 8 + size + (size % 2);
    }
    throw new Error(`${file} has no fmt and data chunks`);
}

module.exports = {writeWav, wavInfo};
