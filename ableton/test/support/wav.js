"use strict";
// Writes small 16-bit PCM WAV files for tests that need real audio files (Live's fake reads
// their length; the device puts them into clips).

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

module.exports = {writeWav};
