"use strict";
// Reading a Max patcher (.maxpat JSON): boxes by id and by varname, patch cords, object class
// names, and structural checks (dangling cords, inlet/outlet numbers, unknown objects).
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

const fs = require("node:fs");
const path = require("node:path");

const PATCH_FILE = path.join(__dirname, "..", "patchers", "loopbridge.maxpat");

/**
 * Inlets and outlets of the Max objects this project's patches use, by the object's class (the
 * first word of an object box's text). A function gets the box's arguments.
 */
const OBJECT_IO = {
    "prepend": () => [1, 1],
    "route": (args) => [2, args.length + 1],
    "t": (args) => [1, args.length],
    "trigger": (args) => [1, args.length],
    "udpsend": () => [1, 0],
    "udpreceive": () => [1, 1],
    "deferlow": () => [1, 1],
    "live.thisdevice": () => [1, 3],
    "dspstate~": () => [1, 4],
    "plugin~": () => [2, 2],
    "plugout~": () => [2, 2],
};

/** Inlets and outlets of UI objects (boxes whose maxclass is not "newobj"). */
const UI_IO = {
    "comment": [1, 0],
    "message": [2, 1],
    "textedit": [1, 4],
    "live.dial": [1, 2],
    "live.text": [1, 2],
    "live.drop": [1, 2],
    "slider": [1, 1],
};

class Patch {
    constructor(json) {
        if (!json || typeof json !== "object" || !json.patcher) {
            throw new Error("not a Max patcher: no \"patcher\" object");
        }
        this.patcher = json.patcher;
        this.boxes = (this.patcher.boxes || []).map((entry) => entry.box);
        this.lines = (this.patcher.lines || []).map((entry) => entry.patchline);
        this.byId = new Map(this.boxes.map((box) => [box.id, box]));
    }

    static load(file = PATCH_FILE) {
        return new Patch(JSON.parse(fs.readFileSync(file, "utf8")));
    }

    /** The object class of a box: the first word of a newobj's text, else its maxclass. */
    static className(box) {
        if (box.maxclass === "newobj") {
            return String(box.text || "").trim().split(/\s+/)[0];
        }
        return box.maxclass;
    }

    static args(box) {
        return String(box.text || "").trim().split(/\s+/).slice(1);
    }

    byVarname(varname) {
        return this.boxes.find((box) => box.varname === varname) || null;
    }

    byText(text) {
        return this.boxes.filter((box) => box.maxclass === "newobj" && box.text === text);
    }

    /** Cords leaving box `id` (optionally from one outlet): [{to, inlet, outlet}]. */
    from(id, outlet = null) {
        return this.lines.filter((l) => l.source[0] === id && (outlet === null || l.source[1] === outlet))
            .map((l) => ({to: this.byId.get(l.destination[0]), inlet: l.destination[1], outlet: l.source[1]}));
    }

    /** Cords arriving at box `id`: [{from, outlet, inlet}]. */
    into(id, inlet = null) {
        return this.lines.filter((l) => l.destination[0] === id && (inlet === null || l.destination[1] === inlet))
            .map((l) => ({from: this.byId.get(l.source[0]), outlet: l.source[1], inlet: l.destination[1]}));
    }

    /**
     * Structural problems, as sentences: duplicate ids, cords to or from boxes that do not exist,
     * outlet / inlet numbers beyond a box's, duplicate cords, objects whose inlet/outlet counts are
     * not the object's, unknown objects. `scriptIO` gives [inlets, outlets] of `js` scripts by file.
     */
    problems(scriptIO = {}) {
        const out = [];
        const seen = new Set();
        for (const box of this.boxes) {
            if (seen.has(box.id)) {
                out.push(`duplicate box id ${box.id}`);
            }
            seen.add(box.id);
            if (Array.isArray(box.outlettype) && box.outlettype.length !== box.numoutlets) {
                out.push(`${box.id} (${box.text || box.maxclass}) has ${box.numoutlets} outlets but ${box.outlettype.length} outlet types`);
            }
            const expected = this.expectedIO(box, scriptIO);
            if (!expected) {
                out.push(`${box.id}: unknown object ${JSON.stringify(Patch.className(box))}`);
            } else if (expected[0] !== box.numinlets || expected[1] !== box.numoutlets) {
                out.push(`${box.id} (${box.text || box.maxclass}) declares ${box.numinlets} inlets / ${box.numoutlets} ` +
                    `outlets; the object has ${expected[0]} / ${expected[1]}`);
            }
        }
        const cords = new Set();
        for (const line of this.lines) {
            const [srcId, outlet] = line.source;
            const [dstId, inlet] = line.destination;
            const key = `${srcId}:${outlet}->${dstId}:${inlet}`;
            if (cords.has(key)) {
                out.push(`duplicate cord ${key}`);
            }
            cords.add(key);
            const src = this.byId.get(srcId);
            const dst = this.byId.get(dstId);
            if (!src) {
                out.push(`cord ${key} starts at a box that does not exist`);
            } else if (!(outlet >= 0 && outlet < src.numoutlets)) {
                out.push(`cord ${key} leaves outlet ${outlet} of ${src.text || src.maxclass}, which has ${src.numoutlets}`);
            }
            if (!dst) {
                out.push(`cord ${key} ends at a box that does not exist`);
            } else if (!(inlet >= 0 && inlet < dst.numinlets)) {
                out.push(`cord ${key} enters inlet ${inlet} of ${dst.text || dst.maxclass}, which has ${dst.numinlets}`);
            }
        }
        return out;
    }

    expectedIO(box, scriptIO) {
        if (box.maxclass === "newobj") {
            const name = Patch.className(box);
            if (name === "js") {
                const file = Patch.args(box)[0];
                return scriptIO[file] || null;
            }
            return OBJECT_IO[name] ? OBJECT_IO[name](Patch.args(box)) : null;
        }
        return UI_IO[box.maxclass] || null;
    }
}

module.exports = {Patch, PATCH_FILE, OBJECT_IO, UI_IO};
