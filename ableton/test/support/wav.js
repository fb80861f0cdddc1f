"use strict";
// Writes small 16-bit PCM WAV files for tests that need real audio files (Live's fake reads
// their length; the device puts them into clips), and reads back the format of the engine's.

const fs = require("node:fs");

/** A note's sound: five harmonics, a 5 ms attack, an exponential decay (a plucked or struck string). */
function noteSample(midi, t) {
    const f = 440 * Math.pow(2, (midi - 69) / 12);
    let value = 0;
    for (let k = 1; k <= 5; k++) {
        value += Math.sin(2 * Math.PI * f * k * t) / k;
    }
    return value * Math.min(1, t * 200) * Math.exp(-t * 1.5);
}

/** A sine of `frequencyHz`, or with `chords` (lists of MIDI notes) those chords one after another,
 *  evenly over `seconds`: pitched material whose key a test knows. */
function writeWav(file, {seconds = 1, sampleRate = 48000, channels = 2, frequencyHz = 220, chords = null} = {}) {
    const frames = Math.round(seconds * sampleRate);
    const data = Buffer.alloc(frames * channels * 2);
    const chordFrames = chords ? Math.floor(frames / chords.length) : 0;
    for (let i = 0; i < frames; i++) {
        let value;
        if (chords) {
            const chord = chords[Math.min(chords.length - 1, Math.floor(i / chordFrames))];
            const t = (i - Math.floor(i / chordFrames) * chordFrames) / sampleRate;
            value = Math.round(chord.reduce((sum, midi) => sum + noteSample(midi, t), 0) * 2500);
        } else {
            value = Math.round(Math.sin(2 * Math.PI * frequencyHz * i / sampleRate) * 8000);
        }
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
