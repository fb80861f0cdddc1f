"use strict";
// Loads the device's Max JavaScript (ableton/js/*.js) in Node the way Max's `js` object does:
// require("loopbridge_device") finds loopbridge_device.js by bare name (Max searches its search
// path), and a module sees `exports` and `require` only (Max supports no `module.exports`).
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const JS_DIR = path.join(__dirname, "..", "js");

/**
 * A require() for Max modules. With a vm context the modules run in it (the context of a
 * script run by max_host.js); without one, in this realm (plain unit tests).
 */
function makeMaxRequire(context = null, jsDir = JS_DIR) {
    const cache = new Map();
    function maxRequire(name) {
        if (cache.has(name)) {
            return cache.get(name);
        }
        if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
            throw new Error(`Max's require takes a file name from the search path, not ${JSON.stringify(name)}`);
        }
        const file = path.join(jsDir, name.endsWith(".js") ? name : `${name}.js`);
        if (!fs.existsSync(file)) {
            throw new Error(`require(${JSON.stringify(name)}): no ${path.basename(file)} next to the device's scripts`);
        }
        const source = fs.readFileSync(file, "utf8");
        const wrapper = `(function (exports, require) {${source}\n})`;
        const fn = context ? vm.runInContext(wrapper, context, {filename: file})
            : vm.runInThisContext(wrapper, {filename: file});
        const exports = context ? vm.runInContext("({})", context) : {};
        cache.set(name, exports);
        fn(exports, maxRequire);
        return exports;
    }
    return maxRequire;
}

/** The device's modules, loaded in this realm. */
function loadDeviceModules() {
    const maxRequire = makeMaxRequire();
    return {
        protocol: maxRequire("loopbridge_protocol"),
        controls: maxRequire("loopbridge_controls"),
        live: maxRequire("loopbridge_live"),
        device: maxRequire("loopbridge_device"),
    };
}

module.exports = {JS_DIR, makeMaxRequire, loadDeviceModules};
