"use strict";
// Prints the device's JavaScript copy of the protocol (ableton/js/loopbridge_protocol.js) and its
// control table as JSON, for tests/ableton/test_device_protocol.py.
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

const {loadDeviceModules} = require("../node/max_require");

const {protocol, controls} = loadDeviceModules();
const out = {
    protocol,
    controls: controls.CONTROLS.map((row) => ({name: row.name, varname: row.varname, address: row.address,
        field: row.field, parameter: row.parameter || null, values: row.values || null})),
    live_inputs: controls.LIVE_INPUTS,
    settings: controls.SETTINGS,
};
process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
