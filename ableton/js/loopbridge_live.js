// loopbridge — the device's seam over the Live API.
//
// Everything the device asks of Live goes through LiveSeam, which uses only a LiveAPI
// constructor handed to it: Max's own `LiveAPI` inside Live, a recording fake in the Node tests
// (ableton/test/fake_live.js). Paths are the Live Object Model's canonical paths
// ("live_set tracks 2 clip_slots 0"); objects found through the view ("live_set view
// selected_track") are matched back to a canonical path by id, so the device never depends on
// how a path string of a view object looks.
//
// Max's LiveAPI reports a failing get/set/call in the Max window and returns nothing instead of
// throwing, so every operation here checks its result and returns null (or a reason) when Live
// did not do it.
//
// ES5, runs in Max's `js` object and in Node. Copyright the loopbridge developers. GPL-3.0-or-later.

// Clip.warp_mode numbers (Live Object Model)
exports.WARP_MODES = {BEATS: 0, TONES: 1, TEXTURE: 2, REPITCH: 3, COMPLEX: 4, COMPLEX_PRO: 6};
exports.WARP_MODE_NAMES = {0: "Beats", 1: "Tones", 2: "Texture", 3: "Re-Pitch", 4: "Complex", 6: "Complex Pro"};
// ClipSlot.create_audio_clip appeared in Live 12.0.5
exports.MIN_VERSION_FOR_FILE_CLIPS = [12, 0, 5];
// Track.create_audio_clip accepts positions in [0, 1576800] beats
exports.MAX_ARRANGEMENT_POSITION_BEATS = 1576800;

function first(value) {
    // LiveAPI get/call results arrive as arrays of atoms (sometimes a bare value)
    if (value === undefined || value === null) {
        return null;
    }
    if (typeof value === "object" && typeof value.length === "number") {
        return value.length ? value[0] : null;
    }
    return value;
}

function asNumber(value) {
    var n = Number(first(value));
    return isFinite(n) ? n : null;
}

function asText(value) {
    if (value === undefined || value === null) {
        return "";
    }
    var text = (typeof value === "object" && typeof value.length === "number") ? value.join(" ") : String(value);
    // a symbol with spaces may come back quoted
    if (text.length >= 2 && text.charAt(0) === "\"" && text.charAt(text.length - 1) === "\"") {
        text = text.substring(1, text.length - 1);
    }
    return text;
}

function idOf(api) {
    if (!api) {
        return 0;
    }
    var n = Number(api.id);
    return isFinite(n) ? n : 0;
}

// An "id N" pair from a call's result (Live returns new objects that way), or 0.
function idFromResult(result) {
    if (result && typeof result === "object" && typeof result.length === "number") {
        for (var i = 0; i + 1 < result.length; i++) {
            if (result[i] === "id") {
                var n = Number(result[i + 1]);
                return isFinite(n) ? n : 0;
            }
        }
    }
    return 0;
}

function versionAtLeast(version, minimum) {
    for (var i = 0; i < minimum.length; i++) {
        var part = version[i] || 0;
        if (part !== minimum[i]) {
            return part > minimum[i];
        }
    }
    return true;
}

exports.versionAtLeast = versionAtLeast;

// liveApiConstructor: Max's LiveAPI (or the tests' fake), called as `new liveApiConstructor(path)`
function LiveSeam(liveApiConstructor) {
    this.LiveAPI = liveApiConstructor;
    this.observers = [];
}

// The object at `path` ("live_set", "id 12", ...) or null when Live has none there.
LiveSeam.prototype.object = function (path) {
    var api = new this.LiveAPI(path);
    return idOf(api) !== 0 ? api : null;
};

LiveSeam.prototype.number = function (path, property) {
    var api = this.object(path);
    return api ? asNumber(api.get(property)) : null;
};

LiveSeam.prototype.text = function (path, property) {
    var api = this.object(path);
    return api ? asText(api.get(property)) : "";
};

// [major, minor, bugfix] of the running Live, or null.
LiveSeam.prototype.version = function () {
    var app = this.object("live_app");
    if (!app) {
        return null;
    }
    var major = asNumber(app.call("get_major_version"));
    var minor = asNumber(app.call("get_minor_version"));
    var bugfix = asNumber(app.call("get_bugfix_version"));
    if (major === null) {
        return null;
    }
    return [major, minor || 0, bugfix || 0];
};

LiveSeam.prototype.tempo = function () {
    return this.number("live_set", "tempo");
};

// The song's time signature, {numerator, denominator}; either is null when Live does not say.
LiveSeam.prototype.meter = function () {
    return {
        numerator: this.number("live_set", "signature_numerator"),
        denominator: this.number("live_set", "signature_denominator")
    };
};

// The play head (Song.current_song_time), in beats.
LiveSeam.prototype.playheadBeats = function () {
    return this.number("live_set", "current_song_time");
};

// "Session" or "Arranger": which main view has the focus.
LiveSeam.prototype.focusedView = function () {
    return this.text("live_app view", "focused_document_view");
};

// Calls onTempo(bpm) now and whenever the song's tempo changes. Live forbids changing the set
// from inside such a notification; the device only schedules work from it.
LiveSeam.prototype.observeTempo = function (onTempo) {
    var observer = new this.LiveAPI(function (args) {
        var values = Array.prototype.slice.call(args || []);
        if (values[0] === "tempo" && values.length > 1) {
            var bpm = Number(values[1]);
            if (isFinite(bpm)) {
                onTempo(bpm);
            }
        }
    }, "live_set");
    observer.property = "tempo";
    this.observers.push(observer);  // a LiveAPI object must stay referenced to keep observing
    return observer;
};

// The song's key and scale as Live 12 shows them: {rootNote (0 = C ... 11 = B), scaleName ("Minor",
// "Dorian", ...), scaleMode (whether Scale Mode is on)}; each null when Live does not say (before 12).
LiveSeam.prototype.songScale = function () {
    var song = this.hasSongScale() ? this.object("live_set") : null;
    if (!song) {
        return {rootNote: null, scaleName: null, scaleMode: null};
    }
    var root = asNumber(song.get("root_note"));
    var mode = asNumber(song.get("scale_mode"));
    var name = song.get("scale_name");
    return {
        rootNote: root,
        scaleName: name === undefined || name === null ? null : asText(name),
        scaleMode: mode === null ? null : mode !== 0
    };
};

// Song.root_note, scale_name and scale_mode came with Live 12 (asking an older Live for them only
// fills the Max window with errors). Asked of Live once: the answer is needed inside observers'
// notifications too, where the device calls no functions of Live's.
LiveSeam.prototype.hasSongScale = function () {
    if (this.songScaleKnown === undefined) {
        var version = this.version();
        if (version === null) {
            return false;  // Live is not ready to say: asked again next time
        }
        this.songScaleKnown = versionAtLeast(version, [12, 0, 0]);
    }
    return this.songScaleKnown;
};

// Calls onChange() whenever the song's root note, scale or Scale Mode changes (as observeTempo);
// nothing before Live 12.
LiveSeam.prototype.observeSongScale = function (onChange) {
    var properties = ["root_note", "scale_name", "scale_mode"];
    var made = [];
    if (!this.hasSongScale()) {
        return made;
    }
    for (var i = 0; i < properties.length; i++) {
        var observer = new this.LiveAPI(function (args) {
            var values = Array.prototype.slice.call(args || []);
            if (values.length > 1 && properties.indexOf(values[0]) >= 0) {
                onChange();
            }
        }, "live_set");
        observer.property = properties[i];
        this.observers.push(observer);
        made.push(observer);
    }
    return made;
};

// The selected track: {id, path, index, name, regular, isAudio, isMidi, isGroup, isFrozen}, or null.
// `regular` is false for the master and return tracks (no clip slots, no clips).
LiveSeam.prototype.selectedTrack = function () {
    var selected = this.object("live_set view selected_track");
    if (!selected) {
        return null;
    }
    var id = idOf(selected);
    var track = {id: id, path: null, index: -1, name: asText(selected.get("name")), regular: false,
        isAudio: false, isMidi: false, isGroup: false, isFrozen: false};
    var song = this.object("live_set");
    var count = song ? song.getcount("tracks") : 0;
    for (var i = 0; i < count; i++) {
        if (idOf(new this.LiveAPI("live_set tracks " + i)) === id) {
            track.index = i;
            track.path = "live_set tracks " + i;
            track.regular = true;
            break;
        }
    }
    if (track.regular) {
        track.isAudio = asNumber(selected.get("has_audio_input")) === 1;
        track.isMidi = asNumber(selected.get("has_midi_input")) === 1;
        track.isGroup = asNumber(selected.get("is_foldable")) === 1;
        track.isFrozen = asNumber(selected.get("is_frozen")) === 1;
    }
    return track;
};

// The highlighted clip slot of `track` (from selectedTrack): {id, path, index, hasClip}, or null.
LiveSeam.prototype.selectedSlot = function (track) {
    var highlighted = this.object("live_set view highlighted_clip_slot");
    if (!highlighted || !track || !track.regular) {
        return null;
    }
    var id = idOf(highlighted);
    var owner = this.object(track.path);
    var count = owner ? owner.getcount("clip_slots") : 0;
    for (var i = 0; i < count; i++) {
        var path = track.path + " clip_slots " + i;
        if (idOf(new this.LiveAPI(path)) === id) {
            return this.slot(path, i);
        }
    }
    return null;
};

LiveSeam.prototype.slot = function (path, index) {
    var api = this.object(path);
    if (!api) {
        return null;
    }
    return {id: idOf(api), path: path, index: index, hasClip: asNumber(api.get("has_clip")) === 1};
};

// The clip's audio file path, or "" when there is no such clip.
LiveSeam.prototype.clipFile = function (clipId) {
    return clipId ? this.text("id " + clipId, "file_path") : "";
};

// The clip in a session slot: {id, file, playing} or null.
LiveSeam.prototype.slotClip = function (slotPath) {
    var clip = this.object(slotPath + " clip");
    return clip ? {id: idOf(clip), file: asText(clip.get("file_path")),
        playing: asNumber(clip.get("is_playing")) === 1} : null;
};

// Launches the clip in a session slot (as its launch button does, quantized by Live).
LiveSeam.prototype.fireSlot = function (slotPath) {
    var slot = this.object(slotPath);
    if (slot) {
        slot.call("fire");
    }
};

// Creates an audio clip from `file` in an empty session slot (Live 12.0.5+). Returns {id} or null.
LiveSeam.prototype.createSessionClip = function (slotPath, file) {
    var slot = this.object(slotPath);
    if (!slot) {
        return null;
    }
    slot.call("create_audio_clip", file);
    var clip = this.slotClip(slotPath);
    return (clip && clip.file === file) ? {id: clip.id} : null;
};

// Creates an audio clip from `file` on an arrangement track at `positionBeats`. Returns {id} or null.
LiveSeam.prototype.createArrangementClip = function (trackPath, file, positionBeats) {
    var track = this.object(trackPath);
    if (!track) {
        return null;
    }
    var result = track.call("create_audio_clip", file, positionBeats);
    var id = idFromResult(result);
    if (id && this.clipFile(id) === file) {
        return {id: id};
    }
    // Not every Live returns the new clip: find it on the track by file and start time.
    var count = track.getcount("arrangement_clips");
    for (var i = count - 1; i >= 0; i--) {
        var clip = new this.LiveAPI(trackPath + " arrangement_clips " + i);
        if (asText(clip.get("file_path")) === file &&
                Math.abs((asNumber(clip.get("start_time")) || 0) - positionBeats) < 1e-6) {
            return {id: idOf(clip)};
        }
    }
    return null;
};

// Deletes the clip in a session slot; true when the slot is empty afterwards.
LiveSeam.prototype.deleteSessionClip = function (slotPath) {
    var slot = this.object(slotPath);
    if (!slot) {
        return false;
    }
    slot.call("delete_clip");
    return asNumber(slot.get("has_clip")) === 0;
};

// Deletes an arrangement clip (by id) from its track; true when it is gone.
LiveSeam.prototype.deleteArrangementClip = function (trackPath, clipId) {
    var track = this.object(trackPath);
    if (!track) {
        return false;
    }
    track.call("delete_clip", "id", clipId);
    return this.object("id " + clipId) === null;
};

// Turns warping on with `settings.warpMode`, sets looping and the length in beats, names the
// clip. Returns what Live reports back: {warping, warpMode, looping, loopEnd, endMarker}.
LiveSeam.prototype.configureClip = function (clipId, settings) {
    var clip = this.object("id " + clipId);
    if (!clip) {
        return null;
    }
    clip.set("warping", 1);
    clip.set("warp_mode", settings.warpMode);
    if (settings.name) {
        clip.set("name", settings.name);
    }
    if (settings.lengthBeats > 0) {
        clip.set("start_marker", 0);
        clip.set("end_marker", settings.lengthBeats);
        if (settings.looping) {
            clip.set("looping", 1);
            clip.set("loop_start", 0);
            clip.set("loop_end", settings.lengthBeats);
        } else {
            clip.set("looping", 0);
        }
    }
    return {
        warping: asNumber(clip.get("warping")),
        warpMode: asNumber(clip.get("warp_mode")),
        looping: asNumber(clip.get("looping")),
        loopEnd: asNumber(clip.get("loop_end")),
        endMarker: asNumber(clip.get("end_marker"))
    };
};

exports.LiveSeam = LiveSeam;
