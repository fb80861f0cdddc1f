"use strict";
// A recording fake of the Live API objects the device uses, behind the constructor Max's `js`
// object calls `LiveAPI`: Song (tempo, signature, play head), Song.View (selected track,
// highlighted clip slot), Application (version) and its View (focused document view), Track,
// ClipSlot and Clip, with the rules of the Live Object Model documentation that matter here:
//   - Song.root_note (0 = C ... 11 = B), scale_name ("Major", "Minor", "Dorian"...) and scale_mode
//     (Scale Mode on or off) exist from Live 12 (a new set: C, Major, Scale Mode off);
//   - ClipSlot.create_audio_clip(path): Live 12.0.5 or later, an audio track, an empty slot, a
//     readable audio file; Track.create_audio_clip(path, position): an audio track that is not
//     frozen, a position in [0, 1576800] beats, a readable audio file;
//   - clips from files arrive unwarped; warp_mode must be one of the clip's available modes;
//     loop_end > loop_start, end_marker > start_marker; read-only properties cannot be set;
//   - a property change from inside an observer's notification is refused (Live's rule that a
//     notification cannot change the set).
// Like Max's LiveAPI, a failing get/set/call does not throw: it reports the error (here: in
// `errors`) and returns nothing. Every construction, get, set, call, getcount and observation is
// recorded in `calls` so tests can assert what the device asked of Live.
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

const fs = require("node:fs");

const WARP_MODES = [0, 1, 2, 3, 4, 6];
const MAX_POSITION_BEATS = 1576800;

/** Duration in seconds of a PCM/float WAV file, or null when it is not one. */
function wavDurationS(file) {
    let data;
    try {
        data = fs.readFileSync(file);
    } catch {
        return null;
    }
    if (data.length < 12 || data.toString("ascii", 0, 4) !== "RIFF" || data.toString("ascii", 8, 12) !== "WAVE") {
        return null;
    }
    let offset = 12;
    let blockAlign = 0;
    let rate = 0;
    while (offset + 8 <= data.length) {
        const id = data.toString("ascii", offset, offset + 4);
        const size = data.readUInt32LE(offset + 4);
        if (id === "fmt ") {
            rate = data.readUInt32LE(offset + 12);
            blockAlign = data.readUInt16LE(offset + 20);
        } else if (id === "data") {
            if (!rate || !blockAlign) {
                return null;
            }
            const bytes = Math.min(size, data.length - offset - 8);
            return bytes / blockAlign / rate;
        }
        offset += 8 + size + (size % 2);
    }
    return null;
}

class FakeLive {
    /**
     * @param {object} [setup]
     * @param {number[]} [setup.version]  [major, minor, bugfix]
     * @param {number} [setup.tempo]
     * @param {number} [setup.numerator]
     * @param {number} [setup.denominator]
     * @param {{rootNote: number, scaleName: string, scaleMode: boolean}} [setup.scale]  Live 12's song scale
     * @param {string} [setup.view]  "Session" or "Arranger"
     * @param {{name: string, type: "audio"|"midi"|"group", frozen?: boolean, slots?: number}[]} [setup.tracks]
     * @param {number} [setup.returnTracks]
     */
    constructor({version = [12, 1, 0], tempo = 120, numerator = 4, denominator = 4, view = "Session", songTime = 0,
        tracks = [{name: "Audio", type: "audio"}], returnTracks = 1,
        scale = {rootNote: 0, scaleName: "Major", scaleMode: false}} = {}) {
        this.version = version;
        this.calls = [];
        this.errors = [];
        this.objects = new Map();
        this.nextId = 1;
        this.observers = [];
        this.notifying = false;

        this.song = this.add("song", {tempo, signature_numerator: numerator, signature_denominator: denominator,
            current_song_time: songTime});
        if (version[0] >= 12) {
            Object.assign(this.song.props, {root_note: scale.rootNote, scale_name: scale.scaleName,
                scale_mode: scale.scaleMode ? 1 : 0});
        }
        this.songView = this.add("song_view", {});
        this.app = this.add("app", {});
        this.appView = this.add("app_view", {focused_document_view: view});
        this.tracks = tracks.map((spec) => this.makeTrack(spec));
        this.returns = [];
        for (let i = 0; i < returnTracks; i++) {
            this.returns.push(this.makeTrack({name: `${String.fromCharCode(65 + i)}-Return`, type: "return"}));
        }
        this.master = this.makeTrack({name: "Master", type: "master"});
        this.selectedTrack = this.tracks[0] || this.master;
        this.selectedSlotIndex = 0;

        const live = this;
        // the constructor the device's code calls `LiveAPI`
        this.LiveAPI = function LiveAPI(first, second) {
            const callback = typeof first === "function" ? first : null;
            const path = String(callback ? second : first);
            const object = live.resolve(path);
            this._live = live;
            this._callback = callback;
            this._object = object;
            this.id = object ? String(object.id) : "0";
            this.unquotedpath = object ? live.pathOf(object) : "";
            this.path = `"${this.unquotedpath}"`;
            live.record("new", path, null, []);
        };
        const proto = this.LiveAPI.prototype;
        Object.defineProperty(proto, "property", {
            get() {
                return this._property || "";
            },
            set(name) {
                this._property = name;
                live.record("observe", this.unquotedpath, name, []);
                if (this._object && this._callback) {
                    live.observers.push({api: this, object: this._object, name});
                    // Max's LiveAPI reports the current value at once
                    this._callback.call(this, [name, this._object.props[name]]);
                }
            },
        });
        proto.get = function (name) {
            live.record("get", this.unquotedpath, name, []);
            return live.get(this._object, name);
        };
        proto.set = function (name, value) {
            live.record("set", this.unquotedpath, name, [value]);
            live.set(this._object, name, value);
        };
        proto.call = function (name, ...args) {
            live.record("call", this.unquotedpath, name, args);
            return live.invoke(this._object, name, args);
        };
        proto.getcount = function (name) {
            live.record("getcount", this.unquotedpath, name, []);
            return live.count(this._object, name);
        };
    }

    // ---- the set ------------------------------------------------------------------------------

    add(type, props, extra = {}) {
        const object = {id: this.nextId++, type, props, alive: true, ...extra};
        this.objects.set(object.id, object);
        return object;
    }

    makeTrack({name, type, frozen = false, slots = 8}) {
        const track = this.add("track", {
            name,
            has_audio_input: type === "audio" || type === "return" || type === "master" ? 1 : 0,
            has_midi_input: type === "midi" ? 1 : 0,
            is_foldable: type === "group" ? 1 : 0,
            is_frozen: frozen ? 1 : 0,
        }, {kind: type, slots: [], arrangement: []});
        if (type !== "return" && type !== "master") {
            for (let i = 0; i < slots; i++) {
                track.slots.push(this.add("slot", {}, {track, clip: null}));
            }
        }
        return track;
    }

    pathOf(object) {
        switch (object.type) {
        case "song":
            return "live_set";
        case "song_view":
            return "live_set view";
        case "app":
            return "live_app";
        case "app_view":
            return "live_app view";
        case "track": {
            if (object.kind === "master") {
                return "live_set master_track";
            }
            const r = this.returns.indexOf(object);
            return r >= 0 ? `live_set return_tracks ${r}` : `live_set tracks ${this.tracks.indexOf(object)}`;
        }
        case "slot":
            return `${this.pathOf(object.track)} clip_slots ${object.track.slots.indexOf(object)}`;
        case "clip":
            return object.slot ? `${this.pathOf(object.slot)} clip`
                : `${this.pathOf(object.track)} arrangement_clips ${object.track.arrangement.indexOf(object)}`;
        default:
            return "";
        }
    }

    resolve(path) {
        const tokens = path.trim().split(/\s+/);
        if (tokens[0] === "id") {
            const object = this.objects.get(Number(tokens[1]));
            return object && object.alive ? object : null;
        }
        let object = null;
        for (let i = 0; i < tokens.length; i++) {
            const token = tokens[i];
            const index = Number(tokens[i + 1]);
            if (i === 0) {
                object = token === "live_set" ? this.song : token === "live_app" ? this.app : null;
            } else if (token === "view" && object === this.song) {
                object = this.songView;
            } else if (token === "view" && object === this.app) {
                object = this.appView;
            } else if (token === "selected_track" && object === this.songView) {
                object = this.selectedTrack;
            } else if (token === "highlighted_clip_slot" && object === this.songView) {
                object = this.selectedTrack.slots[this.selectedSlotIndex] || null;
            } else if (token === "tracks" && object === this.song) {
                object = this.tracks[index] || null;
                i++;
            } else if (token === "return_tracks" && object === this.song) {
                object = this.returns[index] || null;
                i++;
            } else if (token === "master_track" && object === this.song) {
                object = this.master;
            } else if (token === "clip_slots" && object && object.type === "track") {
                object = object.slots[index] || null;
                i++;
            } else if (token === "arrangement_clips" && object && object.type === "track") {
                object = object.arrangement[index] || null;
                i++;
            } else if (token === "clip" && object && object.type === "slot") {
                object = object.clip;
            } else {
                object = null;
            }
            if (!object) {
                return null;
            }
        }
        return object;
    }

    record(op, path, name, args) {
        this.calls.push({op, path, name, args: args.slice()});
    }

    fail(text) {
        this.errors.push(text);
        return undefined;
    }

    versionAtLeast(minimum) {
        for (let i = 0; i < minimum.length; i++) {
            if ((this.version[i] || 0) !== minimum[i]) {
                return (this.version[i] || 0) > minimum[i];
            }
        }
        return true;
    }

    get(object, name) {
        if (!object) {
            return this.fail(`get ${name}: no object`);
        }
        if (object === this.songView && name === "selected_track") {
            return ["id", this.selectedTrack.id];
        }
        if (object === this.songView && name === "highlighted_clip_slot") {
            const slot = this.selectedTrack.slots[this.selectedSlotIndex];
            return ["id", slot ? slot.id : 0];
        }
        if (object.type === "slot" && name === "has_clip") {
            return [object.clip ? 1 : 0];
        }
        if (object.type === "clip" && name === "length") {
            return [object.props.loop_end - object.props.loop_start];
        }
        if (!(name in object.props)) {
            return this.fail(`get: ${object.type} has no property ${name}`);
        }
        return [object.props[name]];
    }

    set(object, name, value) {
        if (!object) {
            return this.fail(`set ${name}: no object`);
        }
        if (this.notifying) {
            return this.fail(`set ${name}: changes cannot be triggered by notifications`);
        }
        const n = Number(value);
        if (object === this.song && name === "tempo") {
            if (!(n >= 20 && n <= 999)) {
                return this.fail(`set tempo ${value}: out of range`);
            }
            this.setTempo(n);
            return undefined;
        }
        if (object.type !== "clip") {
            return this.fail(`set ${name}: not settable on ${object.type}`);
        }
        const props = object.props;
        const writable = ["name", "warping", "warp_mode", "looping", "loop_start", "loop_end", "start_marker",
            "end_marker"];
        if (!writable.includes(name)) {
            return this.fail(`set ${name}: property is read-only`);
        }
        if (name === "name") {
            props.name = String(value);
            return undefined;
        }
        if (!Number.isFinite(n)) {
            return this.fail(`set ${name} ${value}: not a number`);
        }
        if (name === "warping" || name === "looping") {
            props[name] = n ? 1 : 0;
        } else if (name === "warp_mode") {
            if (!WARP_MODES.includes(n)) {
                return this.fail(`set warp_mode ${value}: not an available warp mode`);
            }
            props.warp_mode = n;
        } else if (name === "loop_start" && n >= props.loop_end) {
            return this.fail(`set loop_start ${value}: must be before loop_end ${props.loop_end}`);
        } else if (name === "loop_end" && n <= props.loop_start) {
            return this.fail(`set loop_end ${value}: must be after loop_start ${props.loop_start}`);
        } else if (name === "end_marker" && n <= props.start_marker) {
            return this.fail(`set end_marker ${value}: must be after start_marker ${props.start_marker}`);
        } else if (name === "start_marker" && n >= props.end_marker) {
            return this.fail(`set start_marker ${value}: must be before end_marker ${props.end_marker}`);
        } else {
            props[name] = n;
        }
        return undefined;
    }

    count(object, name) {
        if (!object) {
            return this.fail(`getcount ${name}: no object`) || 0;
        }
        if (object === this.song && name === "tracks") {
            return this.tracks.length;
        }
        if (object.type === "track" && name === "clip_slots") {
            return object.slots.length;
        }
        if (object.type === "track" && name === "arrangement_clips") {
            return object.arrangement.length;
        }
        return this.fail(`getcount: ${object.type} has no list ${name}`) || 0;
    }

    makeClip(file, owner) {
        const seconds = wavDurationS(file);
        const beats = seconds * this.song.props.tempo / 60;
        return this.add("clip", {
            name: file.split(/[\\/]/).pop().replace(/\.[^.]*$/, ""),
            file_path: file,
            is_audio_clip: 1,
            warping: 0,
            warp_mode: 0,
            looping: 0,
            loop_start: 0,
            loop_end: beats,
            start_marker: 0,
            end_marker: beats,
            start_time: owner.position || 0,
            is_playing: 0,
        }, {slot: owner.slot || null, track: owner.track || (owner.slot && owner.slot.track)});
    }

    invoke(object, name, args) {
        if (!object) {
            return this.fail(`call ${name}: no object`);
        }
        if (this.notifying) {
            return this.fail(`call ${name}: changes cannot be triggered by notifications`);
        }
        if (object === this.app) {
            const part = {get_major_version: 0, get_minor_version: 1, get_bugfix_version: 2}[name];
            if (part === undefined) {
                return this.fail(`call ${name}: no such function`);
            }
            return [this.version[part]];
        }
        if (object.type === "slot" && name === "create_audio_clip") {
            if (!this.versionAtLeast([12, 0, 5])) {
                return this.fail("call create_audio_clip: no such function");
            }
            const track = object.track;
            if (track.kind !== "audio") {
                return this.fail("create_audio_clip: the track is not an audio track");
            }
            if (object.clip) {
                return this.fail("create_audio_clip: the clip slot is not empty");
            }
            if (wavDurationS(String(args[0])) === null) {
                return this.fail(`create_audio_clip: ${args[0]} is not a valid audio file`);
            }
            object.clip = this.makeClip(String(args[0]), {slot: object});
            return ["id", object.clip.id];
        }
        if (object.type === "slot" && name === "fire") {
            if (object.clip) {
                object.clip.props.is_playing = 1;
            }
            return undefined;
        }
        if (object.type === "slot" && name === "delete_clip") {
            if (object.clip) {
                object.clip.alive = false;
                object.clip = null;
            }
            return undefined;
        }
        if (object.type === "track" && name === "create_audio_clip") {
            if (!this.versionAtLeast([12, 0, 5])) {
                return this.fail("call create_audio_clip: no such function");
            }
            const [file, position] = [String(args[0]), Number(args[1])];
            if (object.kind !== "audio" || object.props.is_frozen) {
                return this.fail("create_audio_clip: not an audio track, or frozen");
            }
            if (!(position >= 0 && position <= MAX_POSITION_BEATS)) {
                return this.fail(`create_audio_clip: position ${args[1]} outside [0, ${MAX_POSITION_BEATS}]`);
            }
            if (wavDurationS(file) === null) {
                return this.fail(`create_audio_clip: ${file} is not a valid audio file`);
            }
            const clip = this.makeClip(file, {track: object, position});
            object.arrangement.push(clip);
            object.arrangement.sort((a, b) => a.props.start_time - b.props.start_time);
            return ["id", clip.id];
        }
        if (object.type === "track" && name === "delete_clip") {
            const id = args[0] === "id" ? Number(args[1]) : Number(args[0]);
            const index = object.arrangement.findIndex((c) => c.id === id);
            if (index < 0) {
                return this.fail(`delete_clip: no clip ${id} on this track`);
            }
            object.arrangement[index].alive = false;
            object.arrangement.splice(index, 1);
            return undefined;
        }
        return this.fail(`call ${name}: ${object.type} has no such function`);
    }

    // ---- what the user does in Live -----------------------------------------------------------

    /** The user changes the song tempo: observers hear it (and may not change the set then). */
    setTempo(bpm) {
        this.song.props.tempo = bpm;
        this.notify(this.song, "tempo");
    }

    /** The user sets the song's key in Live 12 (each property observers hear, as Live notifies them). */
    setScale({rootNote, scaleName, scaleMode}) {
        const props = this.song.props;
        for (const [name, value] of [["root_note", rootNote], ["scale_name", scaleName],
            ["scale_mode", scaleMode === undefined ? undefined : (scaleMode ? 1 : 0)]]) {
            if (value !== undefined && props[name] !== value) {
                props[name] = value;
                this.notify(this.song, name);
            }
        }
    }

    /** The user changes the time signature (the device reads it at each request; nobody observes it). */
    setMeter(numerator, denominator) {
        this.song.props.signature_numerator = numerator;
        this.song.props.signature_denominator = denominator;
        this.notify(this.song, "signature_numerator");
        this.notify(this.song, "signature_denominator");
    }

    notify(object, name) {
        this.notifying = true;
        try {
            for (const o of this.observers) {
                if (o.object === object && o.name === name && o.api._callback) {
                    o.api._callback.call(o.api, [name, object.props[name]]);
                }
            }
        } finally {
            this.notifying = false;
        }
    }

    select(trackIndex, slotIndex = 0) {
        this.selectedTrack = this.tracks[trackIndex];
        this.selectedSlotIndex = slotIndex;
    }

    selectReturn(index) {
        this.selectedTrack = this.returns[index];
    }

    selectMaster() {
        this.selectedTrack = this.master;
    }

    setView(view) {
        this.appView.props.focused_document_view = view;
    }

    setPlayhead(beats) {
        this.song.props.current_song_time = beats;
    }

    /** Puts an existing clip (made by the user) into a slot. */
    userClip(trackIndex, slotIndex, file) {
        const slot = this.tracks[trackIndex].slots[slotIndex];
        slot.clip = this.makeClip(file, {slot});
        return slot.clip;
    }

    clipInSlot(trackIndex, slotIndex) {
        const slot = this.tracks[trackIndex].slots[slotIndex];
        return slot.clip ? slot.clip.props : null;
    }

    callsOf(op, name) {
        return this.calls.filter((c) => c.op === op && (name === undefined || c.name === name));
    }
}

module.exports = {FakeLive, wavDurationS};
