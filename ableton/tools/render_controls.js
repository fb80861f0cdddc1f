"use strict";
// Draws the device as Live shows it (the patch's presentation view) and lists the OSC address
// each control maps to: ableton/docs/controls.svg, from patchers/loopbridge.maxpat and
// js/loopbridge_controls.js.
//
//   node tools/render_controls.js [--check]      (npm run diagram)
//
// --check exits 1 when the committed SVG differs from what the sources give (a test runs it).
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

const fs = require("node:fs");
const path = require("node:path");

const {Patch} = require("../node/patch");
const {loadDeviceModules} = require("../node/max_require");

const OUT = path.join(__dirname, "..", "docs", "controls.svg");
const SCALE = 2;
const DEVICE_HEIGHT = 169;
const UNIT_SUFFIX = {5: " %", 7: " st"};

function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function dialValue(valueof) {
    const initial = (valueof.parameter_initial || [0])[0];
    if (valueof.parameter_enum) {
        return valueof.parameter_enum[initial];
    }
    if (valueof.parameter_units) {
        return `${initial} ${valueof.parameter_units}`;
    }
    return `${initial}${UNIT_SUFFIX[valueof.parameter_unitstyle] || ""}`;
}

function drawBox(box) {
    const [x, y, w, h] = box.presentation_rect.map((v) => v * SCALE);
    const out = [];
    const valueof = box.saved_attribute_attributes && box.saved_attribute_attributes.valueof;
    switch (box.maxclass) {
    case "comment":
        out.push(`<text x="${x + 2}" y="${y + 22}" class="label">${esc(box.text)}</text>`);
        break;
    case "textedit":
        out.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="4" class="field"/>`,
            `<text x="${x + 8}" y="${y + h / 2 + 7}" class="hint">${esc(box.varname)}</text>`);
        break;
    case "live.dial": {
        const cx = x + w / 2;
        const cy = y + h / 2 + 2;
        const r = Math.min(w, h) / 2 - 16;
        out.push(`<text x="${cx}" y="${y + 14}" class="small" text-anchor="middle">${esc(valueof.parameter_shortname)}</text>`,
            `<path d="M ${cx - r * 0.71} ${cy + r * 0.71} A ${r} ${r} 0 1 1 ${cx + r * 0.71} ${cy + r * 0.71}" class="arc"/>`,
            `<line x1="${cx}" y1="${cy}" x2="${cx - r * 0.71}" y2="${cy + r * 0.71}" class="needle"/>`,
            `<text x="${cx}" y="${y + h - 2}" class="small" text-anchor="middle">${esc(dialValue(valueof))}</text>`);
        break;
    }
    case "live.text":
        out.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="3" class="button"/>`,
            `<text x="${x + w / 2}" y="${y + h / 2 + 6}" class="${h < 40 ? "small" : "label"}" text-anchor="middle">${esc(box.text)}</text>`);
        break;
    case "live.drop":
        out.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="3" class="drop"/>`,
            `<text x="${x + w / 2}" y="${y + h / 2 + 6}" class="small" text-anchor="middle">${esc(box.legend)}</text>`);
        break;
    case "slider":
        out.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" class="track"/>`,
            `<rect x="${x}" y="${y}" width="${w * 0.4}" height="${h}" class="fill"/>`);
        break;
    default:
        break;
    }
    return out.join("\n  ");
}

function render() {
    const patch = Patch.load();
    const {controls} = loadDeviceModules();
    const width = patch.patcher.devicewidth * SCALE;
    const deviceHeight = DEVICE_HEIGHT * SCALE;
    const rows = controls.CONTROLS.concat(controls.LIVE_INPUTS.map((row) => ({...row, varname: `(Live) ${row.name}`})));
    const legendTop = deviceHeight + 40;
    const lineHeight = 26;
    const height = legendTop + rows.length * lineHeight + 20;
    const parts = [
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
        "<style>",
        "  .bg { fill: #c4c4c4; } .field { fill: #ffffff; stroke: #6b6b6b; } .button { fill: #f2b94a; stroke: #6b6b6b; }",
        "  .drop { fill: #d8d8d8; stroke: #6b6b6b; stroke-dasharray: 6 4; } .arc { fill: none; stroke: #4a4a4a; stroke-width: 4; }",
        "  .needle { stroke: #1c1c1c; stroke-width: 3; } .track { fill: #9a9a9a; } .fill { fill: #f2b94a; }",
        "  text { font-family: Helvetica, Arial, sans-serif; fill: #1c1c1c; } .label { font-size: 19px; }",
        "  .small { font-size: 16px; } .hint { font-size: 17px; fill: #8a8a8a; font-style: italic; }",
        "  .legend { font-size: 17px; } .address { font-family: Menlo, Consolas, monospace; font-size: 16px; }",
        "</style>",
        `<rect x="0" y="0" width="${width}" height="${deviceHeight}" class="bg"/>`,
    ];
    for (const box of patch.boxes.filter((b) => b.presentation === 1)) {
        parts.push(`  ${drawBox(box)}`);
    }
    parts.push(`<text x="8" y="${legendTop - 8}" class="legend" font-weight="bold">control → OSC address (key/value field)</text>`);
    rows.forEach((row, i) => {
        const y = legendTop + (i + 1) * lineHeight - 6;
        const field = row.field ? ` (${row.field})` : "";
        parts.push(`<text x="8" y="${y}" class="legend">${esc(row.varname)}</text>`,
            `<text x="230" y="${y}" class="address">${esc(row.address + field)}</text>`);
    });
    parts.push("</svg>");
    return `${parts.join("\n")}\n`;
}

function main(argv) {
    const svg = render();
    if (argv.includes("--check")) {
        const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, "utf8") : "";
        if (current !== svg) {
            process.stderr.write(`${OUT} is out of date: run npm run diagram\n`);
            return 1;
        }
        return 0;
    }
    fs.mkdirSync(path.dirname(OUT), {recursive: true});
    fs.writeFileSync(OUT, svg);
    process.stdout.write(`${OUT}\n`);
    return 0;
}

if (require.main === module) {
    process.exitCode = main(process.argv.slice(2));
}

module.exports = {render, OUT};
