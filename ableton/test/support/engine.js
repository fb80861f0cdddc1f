"use strict";
// Starts a real `loopbridge serve` for the end-to-end tests: on free ports, with its own data
// folder and a tiny Dance Diffusion model that tests/engine/models/tiny_dance_diffusion.py builds
// (no downloads). `unavailable()` says why the engine cannot run here, for test.skip.

const {spawn, spawnSync} = require("node:child_process");
const dgram = require("node:dgram");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const osc = require("../../node/osc");
const {freeUdpPort} = require("../../node/max_host");
const {REPO, pythonExecutable} = require("./python");

const CLI = ["-m", "loopbridge.bridge.cli"];
const TINY_MODEL = "tiny-dd";

function baseEnv(home, models) {
    return {...process.env, LOOPBRIDGE_HOME: home, LOOPBRIDGE_MODELS: models, HF_HUB_OFFLINE: "1",
        TRANSFORMERS_OFFLINE: "1", DIFFUSERS_VERBOSITY: "error", OMP_NUM_THREADS: "2", PYTHONUNBUFFERED: "1"};
}

let helpResult = null;

/** `serve --help` as {text, problem}: text null when there is no serve command. */
function serveHelp() {
    if (helpResult === null) {
        const result = spawnSync(pythonExecutable(), [...CLI, "serve", "--help"], {cwd: REPO, encoding: "utf8",
            timeout: 120000});
        helpResult = result.status === 0 ? {text: result.stdout, problem: null} :
            {text: null, problem: String(result.stderr || result.error || "no output").trim().split("\n").pop()};
    }
    return helpResult;
}

/** Why the real engine cannot be started here, or null when it can. */
function unavailable() {
    const help = serveHelp().text;
    if (!help) {
        return `\`loopbridge serve\` is not available in this checkout (${serveHelp().problem})`;
    }
    for (const option of ["--osc", "--zmq", "--events", "--model", "--prerender"]) {
        if (!help.includes(option)) {
            return `\`loopbridge serve --help\` lists no ${option} option; test/support/engine.js needs its option names`;
        }
    }
    return null;
}

// The tiny models the Python tests build, by id: a Dance Diffusion checkpoint (the default), and an
// ACE-Step pipeline of the real classes (tests/engine/models/tiny_new_families.py) for Run Task.
const TINY_BUILDERS = {
    [TINY_MODEL]: "from tests.engine.models.tiny_dance_diffusion import build_tiny_dance_diffusion\n" +
        "build_tiny_dance_diffusion(Path(sys.argv[1]) / sys.argv[2])\n",
    "tiny-ace-step": "from tests.engine.models.tiny_new_families import build_ace_step\n" +
        "build_ace_step(Path(sys.argv[1]), name=sys.argv[2])\n",
};

// LOOPBRIDGE_TEST_MODELS_DIR: a folder where the tiny models were built already (the Python tests that
// run this test build them in their own process, where torch is loaded): copied rather than built again
function buildTinyModel(models, model) {
    const prebuilt = process.env.LOOPBRIDGE_TEST_MODELS_DIR ? path.join(process.env.LOOPBRIDGE_TEST_MODELS_DIR, model) : null;
    if (prebuilt && fs.existsSync(prebuilt)) {
        fs.cpSync(prebuilt, path.join(models, model), {recursive: true});
        return;
    }
    const script = "import sys; from pathlib import Path\n" + TINY_BUILDERS[model];
    const result = spawnSync(pythonExecutable(), ["-c", script, models, model], {cwd: REPO,
        encoding: "utf8", timeout: 300000});
    if (result.status !== 0) {
        throw new Error(`building the tiny model failed: ${result.stderr}`);
    }
}

function freeTcpPort() {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const {port} = server.address();
            server.close(() => resolve(port));
        });
    });
}

/** Sends /engine/hello from a throwaway socket until the engine answers (replies go to the sender). */
async function waitForHello(port, timeoutMs) {
    const socket = dgram.createSocket("udp4");
    await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
    try {
        return await new Promise((resolve, reject) => {
            const deadline = Date.now() + timeoutMs;
            let timer = null;
            socket.on("message", (data) => {
                try {
                    const [m] = osc.decodePacket(data);
                    if (m.address === "/loopbridge/engine/hello") {
                        clearTimeout(timer);
                        resolve(osc.toAtoms(m.args));
                    }
                } catch {
                    // not for us
                }
            });
            const tick = () => {
                if (Date.now() > deadline) {
                    reject(new Error(`the engine did not answer /loopbridge/engine/hello on port ${port} within ${timeoutMs} ms`));
                    return;
                }
                socket.send(osc.encodeMessage("/loopbridge/engine/hello"), port, "127.0.0.1");
                timer = setTimeout(tick, 500);
            };
            tick();
        });
    } finally {
        socket.close();
    }
}

/** A running engine: {oscPort, home, models, log(), stop()}, serving `model` (one of TINY_BUILDERS). */
async function startEngine({readyTimeoutMs = 180000, model = TINY_MODEL} = {}) {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "loopbridge-e2e-home-"));
    const models = fs.mkdtempSync(path.join(os.tmpdir(), "loopbridge-e2e-models-"));
    try {
        buildTinyModel(models, model);
    } catch (err) {
        fs.rmSync(home, {recursive: true, force: true});
        fs.rmSync(models, {recursive: true, force: true});
        throw err;
    }
    const oscPort = await freeUdpPort();
    // free ports throughout: other sessions on this machine may hold the defaults
    const args = [...CLI, "serve", "--osc", `127.0.0.1:${oscPort}`, "--zmq", `tcp://127.0.0.1:${await freeTcpPort()}`,
        "--events", "off", "--model", model, "--prerender", "0"];
    if (serveHelp().text.includes("--threads")) {
        args.push("--threads", "2");
    }
    // LOOPBRIDGE_TEST_CLUSTER (a Ray head's HOST:PORT, with LOOPBRIDGE_TEST_CLUSTER_TOKEN, or "local": a
    // cluster the engine starts and stops itself): the engine renders on a replica there (`serve --cluster`);
    // tests/cluster/test_frontends.py runs the end-to-end test so
    if (process.env.LOOPBRIDGE_TEST_CLUSTER) {
        args.push("--cluster", process.env.LOOPBRIDGE_TEST_CLUSTER, "--replicas", "1");
        if (process.env.LOOPBRIDGE_TEST_CLUSTER_TOKEN) {
            args.push("--cluster-token", process.env.LOOPBRIDGE_TEST_CLUSTER_TOKEN);
        }
    }
    const child = spawn(pythonExecutable(), args, {cwd: REPO, env: baseEnv(home, models), stdio: ["ignore", "pipe", "pipe"]});
    let output = "";
    child.stdout.on("data", (d) => {
        output += d;
    });
    child.stderr.on("data", (d) => {
        output += d;
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const engine = {
        oscPort, home, models, model, child,
        log: () => output,
        async stop() {
            if (child.exitCode === null && child.signalCode === null) {
                child.kill("SIGTERM");
                const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
                await exited;
                clearTimeout(timer);
            }
        },
        /** Stops the engine and removes its data and model folders. */
        async remove() {
            await engine.stop();
            fs.rmSync(home, {recursive: true, force: true});
            fs.rmSync(models, {recursive: true, force: true});
        },
    };
    try {
        await Promise.race([
            waitForHello(oscPort, readyTimeoutMs),
            exited.then((code) => {
                throw new Error(`loopbridge serve exited with ${code}:\n${output}`);
            }),
        ]);
    } catch (err) {
        await engine.remove();
        throw err;
    }
    return engine;
}

module.exports = {unavailable, startEngine, TINY_MODEL};
