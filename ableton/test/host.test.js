"use strict";
// The device's js script (ableton/js/loopbridge.js) as Max runs it, in ableton/node/max_host.js:
// Max's messages in, real UDP out of "udpsend" and into "udpreceive", the Live fake behind
// LiveAPI. The peer on the engine's port here is a UDP socket the test controls (the real
// engine is in e2e.test.js): it checks what arrives and sends protocol replies back.

const test = require("node:test");
const assert = require("node:assert/strict");
const dgram = require("node:dgram");
const fs = require("node:fs");
const path = require("node:path");

const osc = require("../node/osc");
const {MaxHost, freeUdpPort} = require("../node/max_host");
const {FakeLive} = require("./support/fake_live");
const {modules, tempDir, loopFile} = require("./support/harness");
const {writeWav} = require("./support/wav");
const {pythonProtocol} = require("./support/python");

const P = modules.protocol;
const A = P.ADDRESSES;

async function udpPeer() {
    const socket = dgram.createSocket("udp4");
    await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
    const peer = {
        socket,
        port: socket.address().port,
        messages: [],
        waiters: [],
        replyTo: null,
        send(address, ...args) {
            socket.send(osc.encodeMessage(address, osc.fromAtoms(args)), peer.replyTo, "127.0.0.1");
        },
        next(address, timeoutMs = 3000) {
            const found = peer.messages.find((m) => m.address === address && !m.taken);
            if (found) {
                found.taken = true;
                return Promise.resolve(found);
            }
            return new Promise((resolve, reject) => {
                const timer = setTimeout(() => reject(new Error(`no ${address} within ${timeoutMs} ms`)), timeoutMs);
                peer.waiters.push({address, resolve: (m) => {
                    clearTimeout(timer);
                    resolve(m);
                }});
            });
        },
        close: () => new Promise((resolve) => socket.close(resolve)),
    };
    socket.on("message", (data) => {
        for (const m of osc.decodePacket(data)) {
            const message = {address: m.address, args: osc.toAtoms(m.args)};
            peer.messages.push(message);
            const waiter = peer.waiters.find((w) => w.address === m.address);
            if (waiter) {
                message.taken = true;
                peer.waiters.splice(peer.waiters.indexOf(waiter), 1);
                waiter.resolve(message);
            }
        }
    });
    return peer;
}

async function startHost(live, enginePort) {
    const host = new MaxHost({LiveAPI: live.LiveAPI});
    const replyPort = await freeUdpPort();
    host.message("engine", "127.0.0.1", enginePort);
    host.message("reply_port", replyPort);
    host.message("init");
    await host.receiverReady;
    return {host, replyPort};
}

function fields(message) {
    const out = {};
    for (let i = 1; i < message.args.length; i += 2) {
        out[message.args[i]] = message.args[i + 1];
    }
    return out;
}

test("Generate over UDP: OSC to the engine's port, replies on the registered port, a warped clip in Live", async () => {
    const dir = tempDir();
    const peer = await udpPeer();
    const live = new FakeLive({tempo: 126, tracks: [{name: "Beats", type: "audio"}]});
    const {host, replyPort} = await startHost(live, peer.port);
    try {
        const register = await peer.next(A.CONTROLLER_REGISTER);
        assert.deepEqual(register.args, [replyPort]);
        await peer.next(A.ENGINE_HELLO);
        peer.replyTo = replyPort;
        peer.send(A.HELLO_REPLY, 1, "0.1.0", dir);
        await host.waitFor(() => /ready/.test(host.lastStatus()), 3000, "the hello reply");

        host.textedit(1, "four on the floor");
        host.message("kind", 1);
        host.message("length", 3);
        host.message("generate", 1);
        host.message("generate", 0);  // the button's release is not a second press
        const request = await peer.next(A.JOB_GENERATE);
        const id = request.args[0];
        const sent = fields(request);
        assert.equal(sent.prompt, "four on the floor");
        assert.equal(sent.kind, "loop");
        assert.equal(sent.bars, 2);
        assert.equal(sent.tempo_bpm, 126);

        const file = loopFile(dir, "four_126bpm.wav", 8, 126);
        peer.send(A.JOB_ACCEPTED, id, 0);
        peer.send(A.JOB_PROGRESS, id, 0.25);
        peer.send(A.JOB_SAMPLE, id, 0, file, "loop", 126.0, 8.0, -1, 0, "rk-1", "", -1);
        peer.send(A.JOB_DONE, id, 1);
        await host.waitFor(() => /^Placed/.test(host.lastStatus()), 3000, "the clip");
        const clip = live.clipInSlot(0, 0);
        assert.equal(clip.file_path, file);
        assert.equal(clip.warping, 1);
        assert.equal(clip.loop_end, 8);
        assert.ok(host.ui.some(([name, value]) => name === "progress" && Math.abs(value - 0.25) < 1e-6));
        assert.equal(peer.messages.filter((m) => m.address === A.JOB_GENERATE).length, 1);

        // the song's tempo changes: a conform request, and the re-conformed file replaces the clip
        live.setTempo(100);
        const conform = await peer.next(A.JOB_CONFORM);
        assert.equal(fields(conform).render_key, "rk-1");
        assert.equal(fields(conform).tempo_bpm, 100);
        const slower = loopFile(dir, "four_100bpm.wav", 8, 100);
        peer.send(A.JOB_SAMPLE, conform.args[0], 0, slower, "loop", 100.0, 8.0, -1, 0, "rk-1", "", -1);
        peer.send(A.JOB_DONE, conform.args[0], 1);
        await host.waitFor(() => live.clipInSlot(0, 0) && live.clipInSlot(0, 0).file_path === slower, 3000,
            "the re-conformed clip");
        assert.equal(peer.messages.filter((m) => m.address === A.JOB_GENERATE).length, 1);

        // every address the device used is one bridge/protocol.py defines
        const py = pythonProtocol();
        for (const m of host.sent) {
            assert.ok(m.address in py.INCOMING, `sent ${m.address}`);
        }
        for (const m of host.received) {
            assert.ok(m.address in py.OUTGOING, `received ${m.address}`);
        }
        assert.deepEqual(host.errors, []);
        assert.deepEqual(live.errors, []);
    } finally {
        await host.close();
        await peer.close();
    }
});

test("engine down: a clear message after the request timeout, no error thrown, nothing in Live", async () => {
    const nobody = await freeUdpPort();
    const live = new FakeLive();
    const {host} = await startHost(live, nobody);
    try {
        host.textedit(1, "kick");
        host.message("generate", 1);
        await host.waitFor(() => /No answer from the loopbridge engine at 127\.0\.0\.1:\d+ within 5 s/.test(host.lastStatus()),
            P.REQUEST_TIMEOUT_S * 1000 + 3000, "the no-answer message");
        assert.deepEqual(host.errors, []);
        assert.deepEqual(live.callsOf("call", "create_audio_clip"), []);
        assert.deepEqual(host.sent.map((m) => m.address).filter((a) => a === A.JOB_GENERATE).length, 1);
    } finally {
        await host.close();
    }
});

test("values that arrive before live.thisdevice are kept and send nothing; a dropped file goes to the inbox",
    async () => {
        const dir = tempDir();
        const inbox = path.join(dir, "inbox");
        fs.mkdirSync(inbox);
        const dropped = writeWav(path.join(dir, "drop me.wav"), {seconds: 2, sampleRate: 8000, channels: 2});  // 4 copy chunks
        const peer = await udpPeer();
        const live = new FakeLive();
        const host = new MaxHost({LiveAPI: live.LiveAPI});
        try {
            host.message("variation", 7);
            host.message("pitch", 3);
            host.textedit(2, "string pad");
            host.message("audio_prompt", dropped);
            host.message("sample_rate", 44100);
            host.message("engine", "127.0.0.1", peer.port);
            const replyPort = await freeUdpPort();
            host.message("reply_port", replyPort);
            assert.deepEqual(host.sent, []);  // no Live API, no OSC before init
            host.message("init");
            await peer.next(A.ENGINE_HELLO);
            assert.equal(host.sent.filter((m) => m.address.startsWith(`${P.OSC_ROOT}/job/`)).length, 0);
            // the engine has not said where its inbox is: Generate asks, and generates on the answer
            host.message("generate");
            await peer.next(A.ENGINE_HELLO);
            await host.receiverReady;
            peer.replyTo = replyPort;
            peer.send(A.HELLO_REPLY, 1, "0.1.0", inbox);
            const sent = fields(await peer.next(A.JOB_GENERATE));
            assert.equal(sent.variation, 7);
            assert.equal(sent.pitch_semitones, 3);
            assert.equal(path.dirname(sent.audio_prompt_path), inbox);
            assert.match(path.basename(sent.audio_prompt_path), /-drop me\.wav$/);
            assert.deepEqual(fs.readFileSync(sent.audio_prompt_path), fs.readFileSync(dropped));
            assert.equal(sent.sample_rate, 44100);
            assert.deepEqual(host.errors, []);
        } finally {
            await host.close();
            await peer.close();
        }
    });

test("the engine's address and the reply port can be changed; the device registers the new port", async () => {
    const first = await udpPeer();
    const second = await udpPeer();
    const live = new FakeLive();
    const {host} = await startHost(live, first.port);
    try {
        await first.next(A.ENGINE_HELLO);
        const newReply = await freeUdpPort();
        host.message("engine", "127.0.0.1", second.port);
        host.message("reply_port", newReply);
        await host.receiverReady;
        const registers = [];
        for (;;) {
            registers.push((await second.next(A.CONTROLLER_REGISTER)).args[0]);
            if (registers.includes(newReply)) {
                break;
            }
        }
        second.replyTo = newReply;
        second.send(A.HELLO_REPLY, 1, "0.1.0", "/inbox");
        await host.waitFor(() => /ready at 127\.0\.0\.1:\d+/.test(host.lastStatus()), 3000, "hello on the new port");
        // a datagram that is not OSC is dropped by udpreceive, and the device carries on
        const raw = dgram.createSocket("udp4");
        await new Promise((resolve) => raw.send(Buffer.from("garbage!"), newReply, "127.0.0.1", resolve));
        raw.close();
        second.send(A.HELLO_REPLY, 1, "0.1.1", "/inbox");
        await host.waitFor(() => /0\.1\.1 ready/.test(host.lastStatus()), 3000, "the next reply");
        assert.ok(host.posts.some((p) => /udpreceive:/.test(p)));
        assert.deepEqual(host.errors, []);
    } finally {
        await host.close();
        await first.close();
        await second.close();
    }
});
