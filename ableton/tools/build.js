"use strict";
// Builds the installable device: dist/loopbridge/loopbridge.amxd (the patch in Max's device
// container, an audio effect) with the scripts it loads next to it.
//
//   node tools/build.js [--out DIR]      (npm run build)
//
// Max finds `js loopbridge.js` and the modules it requires in the folder of the device it loads,
// so the folder is the unit to install (or open the device in Max and freeze it).
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

const fs = require("node:fs");
const path = require("node:path");

const amxd = require("./amxd");

const ROOT = path.join(__dirname, "..");
const PATCH = path.join(ROOT, "patchers", "loopbridge.maxpat");
const JS_DIR = path.join(ROOT, "js");

function build(outDir = path.join(ROOT, "dist", "loopbridge")) {
    const patcherText = fs.readFileSync(PATCH, "utf8");
    const bytes = amxd.encode(patcherText, {type: amxd.DEVICE_TYPES.audio_effect});
    fs.mkdirSync(outDir, {recursive: true});
    const device = path.join(outDir, "loopbridge.amxd");
    // write then rename: an interrupted build never leaves a half-written device behind
    fs.writeFileSync(`${device}.tmp`, bytes);
    fs.renameSync(`${device}.tmp`, device);
    const scripts = fs.readdirSync(JS_DIR).filter((name) => name.endsWith(".js")).sort();
    for (const name of scripts) {
        fs.copyFileSync(path.join(JS_DIR, name), path.join(outDir, name));
    }
    return {device, bytes: bytes.length, scripts: scripts.map((name) => path.join(outDir, name))};
}

function main(argv) {
    let out;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--out" && argv[i + 1]) {
            out = path.resolve(argv[++i]);
        } else {
            process.stderr.write(`unknown argument ${JSON.stringify(argv[i])}: expected --out DIR\n`);
            return 2;
        }
    }
    const result = build(out);
    process.stdout.write(`${result.device} (${result.bytes} bytes)\n`);
    for (const script of result.scripts) {
        process.stdout.write(`${script}\n`);
    }
    return 0;
}

if (require.main === module) {
    process.exitCode = main(process.argv.slice(2));
}

module.exports = {build, PATCH};
