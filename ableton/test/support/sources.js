"use strict";
// Static facts about the device's scripts (ableton/js/*.js), read with acorn as ES5 — the
// language of Max's `js` object.

const fs = require("node:fs");
const path = require("node:path");
const acorn = require("acorn");

const {JS_DIR} = require("../../node/max_require");

function scriptFiles() {
    return fs.readdirSync(JS_DIR).filter((name) => name.endsWith(".js")).sort()
        .map((name) => path.join(JS_DIR, name));
}

function parseES5(file) {
    return acorn.parse(fs.readFileSync(file, "utf8"), {ecmaVersion: 5, sourceType: "script", locations: true});
}

function tokens(file) {
    return Array.from(acorn.tokenizer(fs.readFileSync(file, "utf8"), {ecmaVersion: 5, locations: true}));
}

/** String literals of a script: [{value, line}]. */
function stringLiterals(file) {
    return tokens(file).filter((t) => t.type.label === "string").map((t) => ({value: t.value, line: t.loc.start.line}));
}

/**
 * Free-standing names a script uses (not property names after "." and not object keys): the
 * way to spot a Max global used outside the glue script.
 */
function bareNames(file) {
    const list = tokens(file);
    const out = [];
    for (let i = 0; i < list.length; i++) {
        const t = list[i];
        if (t.type.label !== "name") {
            continue;
        }
        const before = list[i - 1];
        const after = list[i + 1];
        if (before && before.type.label === ".") {
            continue;
        }
        if (after && after.type.label === ":" && before && (before.type.label === "{" || before.type.label === ",")) {
            continue;
        }
        out.push({name: t.value, line: t.loc.start.line});
    }
    return out;
}

/** Top-level function declarations of a script: the messages Max can send to it by name. */
function topLevelFunctions(file) {
    return parseES5(file).body.filter((node) => node.type === "FunctionDeclaration").map((node) => node.id.name);
}

/** [inlets, outlets] a Max js script declares with `inlets = N; outlets = M;`. */
function declaredIO(file) {
    const io = {inlets: 1, outlets: 1};
    for (const node of parseES5(file).body) {
        if (node.type === "ExpressionStatement" && node.expression.type === "AssignmentExpression" &&
                node.expression.left.type === "Identifier" && node.expression.left.name in io &&
                node.expression.right.type === "Literal") {
            io[node.expression.left.name] = node.expression.right.value;
        }
    }
    return [io.inlets, io.outlets];
}

module.exports = {JS_DIR, scriptFiles, parseES5, stringLiterals, bareNames, topLevelFunctions, declaredIO};
