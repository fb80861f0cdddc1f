"use strict";
// Runs the device's `js` script (ableton/js/loopbridge.js) in Node with what the patch gives it
// inside Live: Max's js globals (outlet, post, Task, File, messagename, inlet, LiveAPI), udpsend on
// outlet 0 and udpreceive (behind deferlow) on inlet 0 as real UDP sockets speaking OSC, and the
// status / progress outlet recorded. The LiveAPI is whatever the caller passes (the tests' fake).
//
// The wiring mirrors patchers/loopbridge.maxpat; ableton/test/patch.test.js checks that the patch
// really connects js outlet 0 to udpsend, outlet 1 to udpreceive, udpreceive to inlet 0 and
// outlet 2 to the status display.
//
// Copyright the loopbridge developers. GPL-3.0-or-later.

const dgram = require("node:dgram");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const osc = require("./osc");
const {JS_DIR, makeMaxRequire} = require("./max_require");

const SCRIPT = path.join(JS_DIR, "loopbridge.js");

function atomsOf(args) {
    if (args.length === 1 && Array.isArray(args[0])) {
        return Array.from(args[0]);
    }
    return Array.from(args);
}

/**
 * Max's js File object, as far as the device uses it, over the file system (system paths only, not
 * Max's "Volume:/..." style): opened by the constructor ("read": an existing file; "write" and
 * "readwrite": created when missing and not emptied, the stricter reading of Max's documentation,
 * so a script has to set `eof = 0` itself), `isopen`, `position`, `eof` (set: the file is cut or
 * grown to it), `readbytes(count)` (an array of up to count numbers 0-255, or null at the end),
 * `writebytes(numbers)` and `close()`.
 */
class MaxFile {
    constructor(filename, access = "read") {
        this.filename = String(filename);
        this.access = access;
        this.position = 0;
        this.fd = null;
        try {
            this.fd = access === "read" ? fs.openSync(this.filename, "r") :
                fs.openSync(this.filename, fs.constants.O_RDWR | fs.constants.O_CREAT);
        } catch (err) {
            this.fd = null;
        }
    }

    get isopen() {
        return this.fd !== null;
    }

    get eof() {
        return this.fd === null ? 0 : fs.fstatSync(this.fd).size;
    }

    set eof(size) {
        if (this.fd !== null && this.access !== "read") {
            fs.ftruncateSync(this.fd, size);
            this.position = Math.min(this.position, size);
        }
    }

    readbytes(count) {
        if (this.fd === null) {
            return null;
        }
        const buffer = Buffer.alloc(Math.max(0, Number(count) || 0));
        const read = fs.readSync(this.fd, buffer, 0, buffer.length, this.position);
        this.position += read;
        return read ? Array.from(buffer.subarray(0, read)) : null;
    }

    writebytes(numbers) {
        if (this.fd === null || this.access === "read") {
            return;
        }
        const buffer = Buffer.from(Array.from(numbers, (n) => n & 0xff));
        this.position += fs.writeSync(this.fd, buffer, 0, buffer.length, this.position);
    }

    close() {
        if (this.fd !== null) {
            fs.closeSync(this.fd);
            this.fd = null;
        }
    }
}

class MaxHost {
    /**
     * @param {object} options
     * @param {Function} options.LiveAPI  LiveAPI constructor the script sees
     * @param {string} [options.udpsendHost]  udpsend's box arguments (the patch: 127.0.0.1 9000)
     * @param {number} [options.udpsendPort]
     */
    constructor({LiveAPI, udpsendHost = "127.0.0.1", udpsendPort = 9000}) {
        this.sent = [];       // OSC messages the script sent through udpsend: {address, args}
        this.received = [];   // OSC messages udpreceive passed to the script
        this.ui = [];         // [name, value] from outlet 2
        this.posts = [];      // text the script posted to the Max window
        this.errors = [];     // exceptions that escaped the script (Max would print them)
        this.listeners = [];
        this.sendHost = udpsendHost;
        this.sendPort = udpsendPort;
        this.receiverPort = null;
        this.receiver = null;
        this.receiverReady = Promise.resolve();
        this.sender = dgram.createSocket("udp4");
        this.closed = false;

        const host = this;
        function Task(fn, owner) {
            this.fn = fn;
            this.owner = owner;
            this.handle = null;
        }
        Task.prototype.schedule = function (ms) {
            this.cancel();
            const task = this;
            this.handle = setTimeout(() => {
                task.handle = null;
                host.guard(() => task.fn.call(task.owner));
            }, Number(ms) || 0);
        };
        Task.prototype.cancel = function () {
            if (this.handle) {
                clearTimeout(this.handle);
                this.handle = null;
            }
        };

        this.context = vm.createContext({
            LiveAPI,
            Task,
            File: MaxFile,
            post: (...parts) => this.posts.push(parts.join(" ")),
            outlet: (index, ...args) => this.outlet(index, atomsOf(args)),
            setinletassist: () => {},
            setoutletassist: () => {},
            jsarguments: ["loopbridge.js"],
            messagename: "",
            inlet: 0,
        });
        this.context.require = makeMaxRequire(this.context);
        vm.runInContext(fs.readFileSync(SCRIPT, "utf8"), this.context, {filename: SCRIPT});
    }

    guard(fn) {
        try {
            return fn();
        } catch (err) {
            this.errors.push(err);
            return undefined;
        }
    }

    /** A message into the script's inlet, as Max dispatches it (function by name, else anything). */
    message(selector, ...args) {
        return this.toInlet(0, selector, args);
    }

    /** What a textedit sends when Return is pressed: "text ..." into inlet 1 or 2. */
    textedit(inlet, text) {
        return this.toInlet(inlet, "text", text === "" ? [] : [text]);
    }

    toInlet(inlet, selector, args) {
        this.context.inlet = inlet;
        this.context.messagename = selector;
        const fn = typeof this.context[selector] === "function" && selector !== "anything" ?
            this.context[selector] : this.context.anything;
        return this.guard(() => fn.apply(null, args));
    }

    outlet(index, atoms) {
        if (index === 0) {
            this.toUdpsend(atoms);
        } else if (index === 1) {
            if (atoms[0] === "port") {
                this.bindReceiver(Number(atoms[1]));
            }
        } else if (index === 2) {
            this.ui.push([atoms[0], atoms[1]]);
            this.notify();
        }
    }

    toUdpsend(atoms) {
        const [selector, ...args] = atoms;
        if (selector === "host") {
            this.sendHost = String(args[0]);
            return;
        }
        if (selector === "port") {
            this.sendPort = Number(args[0]);
            return;
        }
        const message = {address: selector, args};
        this.sent.push(message);
        const packet = osc.encodeMessage(selector, osc.fromAtoms(args));
        if (!this.closed) {
            this.sender.send(packet, this.sendPort, this.sendHost);
        }
        this.notify();
    }

    bindReceiver(port) {
        if (this.receiverPort === port && this.receiver) {
            return;
        }
        const old = this.receiver;
        this.receiverPort = port;
        const socket = dgram.createSocket("udp4");
        this.receiver = socket;
        socket.on("message", (data) => {
            let messages;
            try {
                messages = osc.decodePacket(data);
            } catch (err) {
                this.posts.push(`udpreceive: ${err.message}`);  // Max drops what it cannot parse
                return;
            }
            for (const m of messages) {
                // deferlow: the script runs later, on the low-priority queue
                setImmediate(() => {
                    const atoms = osc.toAtoms(m.args);
                    this.received.push({address: m.address, args: atoms});
                    this.toInlet(0, m.address, atoms);
                    this.notify();
                });
            }
        });
        this.receiverReady = new Promise((resolve, reject) => {
            const bind = () => {
                socket.once("error", reject);
                socket.bind(port, "127.0.0.1", () => {
                    socket.removeListener("error", reject);
                    resolve();
                });
            };
            if (old) {
                old.close(bind);
            } else {
                bind();
            }
        });
    }

    notify() {
        for (const listener of this.listeners.slice()) {
            listener();
        }
    }

    /** Resolves once predicate() is true (checked after every outlet and reply), or rejects. */
    waitFor(predicate, timeoutMs, what) {
        return new Promise((resolve, reject) => {
            const check = () => {
                let value;
                try {
                    value = predicate();
                } catch (err) {
                    finish();
                    reject(err);
                    return;
                }
                if (value) {
                    finish();
                    resolve(value);
                }
            };
            const timer = setTimeout(() => {
                finish();
                const last = this.lastStatus();
                reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last status: ${last}`));
            }, timeoutMs);
            const finish = () => {
                clearTimeout(timer);
                this.listeners = this.listeners.filter((l) => l !== check);
            };
            this.listeners.push(check);
            check();
        });
    }

    statuses() {
        return this.ui.filter(([name]) => name === "status").map(([, text]) => text);
    }

    lastStatus() {
        const all = this.statuses();
        return all.length ? all[all.length - 1] : null;
    }

    async close() {
        if (this.closed) {
            return;
        }
        this.toInlet(0, "notifydeleted", []);
        this.closed = true;
        await new Promise((resolve) => this.sender.close(resolve));
        if (this.receiver) {
            await this.receiverReady.catch(() => {});
            await new Promise((resolve) => this.receiver.close(resolve));
        }
    }
}

/** A UDP port that was free a moment ago (bind to 0, read, close). */
function freeUdpPort() {
    return new Promise((resolve, reject) => {
        const socket = dgram.createSocket("udp4");
        socket.once("error", reject);
        socket.bind(0, "127.0.0.1", () => {
            const {port} = socket.address();
            socket.close(() => resolve(port));
        });
    });
}

module.exports = {MaxHost, freeUdpPort};
