"""The engine's OSC front (UDP): the protocol's operations under ``/loopbridge/...``.

One thread reads datagrams; each message is looked up in the protocol's address table (OSC
wildcards in the incoming address are honoured), its arguments are checked leniently (an int where
a float is expected and the other way round, as controllers send them; a float for an int is
rounded) and it is served. Anything wrong is answered on ``/loopbridge/error`` and the server goes
on; packets from hosts outside the allow-list are dropped without an answer.

Replies go to the sender's host, at the port it registered with ``/loopbridge/controller/register``
(or, when its source port changed and its host registered exactly one port, that one), else to the
sender's own source port. Registered controllers also get the *session's* feedback: every change of
a session parameter, the current sample, progress and status, so faders and labels follow.

Results over OSC are file paths on the engine's machine: readable-named links to the store's files.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopbridge.engine.errors import RequestError
from loopbridge.engine.motion import MotionKind, TempoReading
from loopbridge.engine.prerender import snap_morph
from loopbridge.engine.request import AudioPrompt, ConformSpec, GenerateRequest, Kind
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from . import protocol as p
from .motion_follow import MotionFollower, reading_args
from .protocol import OSC_ROOT, ErrorCode, MessageType, OscAddress, ProtocolError
from .security import AllowList
from .service import RANDOM_SEED_LIMIT, JobSink, ServedSample, Service, WireError

log = logging.getLogger(__name__)

RequestLog = Callable[[str], None]
Address = tuple[str, int]

#: addresses that carry a stream of frames rather than requests (not logged one line each)
_STREAM_ADDRESSES = frozenset({f"{OSC_ROOT}/motion/joints", f"{OSC_ROOT}/motion/accel"})
#: the most a JSON reply (status, models, history) may take in one datagram
_MAX_JSON_BYTES = 60 * 1024

SESSION_DEFAULTS: dict[str, Any] = {
    "prompt": "",
    "morph_prompt": "",
    "model": "default",
    "kind": Kind.ONE_SHOT.value,
    "seed": 0,
    "variation": 0,
    "morph": 0.0,
    "quality": 0,
    "bars": 1.0,
    "tempo": 120.0,
    "beats_per_bar": 4,
    "pitch": 0.0,
    "strength": 0.5,
    "sample_rate": 48000,
    "audio_prompt": "",
}


def lenient(name: str, value: Any, expected: str) -> Any:
    """``value`` as ``expected`` the way controllers mean it, then checked by the protocol's coerce.

    A float for an int is rounded; an int for a float is widened; a number for text becomes text
    only for ids; booleans from True/False, 0/1. Raises ProtocolError naming the argument.
    """
    kind = expected.rstrip("?")
    if kind == "int" and isinstance(value, float) and value == value and abs(value) < 2**63:
        value = int(round(value))
    elif kind == "float" and isinstance(value, bool):
        value = float(value)
    elif kind == "str" and name == "id" and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(int(value)) if float(value).is_integer() else str(value)
    return p.coerce(name, value, kind)


def _pattern(address: str) -> re.Pattern[str] | None:
    """An OSC 1.0 address pattern as a regex (None when it has no wildcard)."""
    if not any(c in address for c in "?*[{"):
        return None
    out = []
    i = 0
    while i < len(address):
        c = address[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = address.find("]", i)
            if end < 0:
                raise ProtocolError(ErrorCode.MALFORMED, f"address {address!r} has an unclosed [")
            body = address[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if not body:
                raise ProtocolError(ErrorCode.MALFORMED, f"address {address!r} has an empty [] set")
            out.append("[" + ("^" if negate else "") + re.escape(body).replace("\\-", "-") + "]")
            i = end
        elif c == "{":
            end = address.find("}", i)
            if end < 0:
                raise ProtocolError(ErrorCode.MALFORMED, f"address {address!r} has an unclosed {{")
            out.append("(?:" + "|".join(re.escape(x) for x in address[i + 1:end].split(",")) + ")")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out) + r"\Z")
    except re.error as exc:  # a range like [z-a]
        raise ProtocolError(ErrorCode.MALFORMED, f"address pattern {address!r} is not valid: {exc}") from exc


class OscServer:
    """Serves :class:`Service` over OSC/UDP (see the module docstring).

    ``port`` 0 picks a free port (read :attr:`address` after :meth:`start`). ``allow`` admits
    controllers beyond loopback. ``max_packet_bytes`` bounds a packet (larger ones get ``too_large``).
    Raises OSError from :meth:`start` when the bind fails.
    """

    def __init__(
        self,
        service: Service,
        host: str = p.DEFAULT_OSC_HOST,
        port: int = p.DEFAULT_OSC_PORT,
        allow: AllowList | None = None,
        request_log: RequestLog | None = None,
        max_packet_bytes: int = p.MAX_OSC_PACKET_BYTES,
    ) -> None:
        self.service = service
        self.max_packet_bytes = max_packet_bytes
        self.host = host
        self.port = port
        self.allow = allow or AllowList()
        self.request_log = request_log
        self.table = p.osc_table()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        #: (host, source port) -> the port it asked feedback on
        self._registered: dict[Address, int] = {}
        self._refused: set[str] = set()
        self.session = Session(self)
        self.motion = MotionFollower(on_reading=self._motion_reading, on_follow=self.session.follow_tempo,
                                     session_tempo=lambda: float(self.session.params["tempo"]))
        self.counters = {"received": 0, "errors": 0, "dropped": 0, "sent": 0}

    @property
    def address(self) -> Address:
        if self._sock is None:
            return (self.host, self.port)
        bound = self._sock.getsockname()
        return (bound[0], bound[1])

    # ---- life cycle ------------------------------------------------------------------------------

    def start(self) -> OscServer:
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        family, _, _, _, sockaddr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind(sockaddr)
        except OSError:
            sock.close()
            raise
        sock.settimeout(0.1)  # so the loop notices stop()
        self._sock = sock
        self.motion.start()
        self._thread = threading.Thread(target=self._loop, name="loopbridge-osc", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self.motion.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()

    # ---- sending -----------------------------------------------------------------------------------

    def send(self, target: Address, address: str, *args: Any) -> None:
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(_osc_arg(arg))
        try:
            dgram = builder.build().dgram
            if self._sock is not None:
                self._sock.sendto(dgram, target)
                self.counters["sent"] += 1
        except (OSError, ValueError) as exc:  # a controller gone, a reply too large: never fatal
            log.debug("OSC %s to %s not sent: %s", address, target, exc)

    def send_json(self, target: Address, address: str, *lead: Any, value: Any) -> None:
        text = json.dumps(value, default=str, separators=(",", ":"))
        if len(text.encode()) > _MAX_JSON_BYTES and isinstance(value, list):
            while value and len(text.encode()) > _MAX_JSON_BYTES:
                value = value[: max(0, len(value) * 3 // 4)]
                text = json.dumps(value, default=str, separators=(",", ":"))
        self.send(target, address, *lead, text)

    def error(self, target: Address, request_id: str, error: WireError) -> None:
        self.counters["errors"] += 1
        self.send(target, p.OSC_ERROR, request_id or "", error.code.value, error.message)

    def reply_target(self, sender: Address) -> Address:
        """Where replies to ``sender`` go: its registered port; its own port when that is a registered
        one; the one port its host registered (a sender whose source port changes, as oscsend's and
        Max's do); else its source port."""
        host, port = sender[0], sender[1]
        with self._lock:
            registered = self._registered.get((host, port))
            if registered is None:
                ports = {p_ for (h, _), p_ in self._registered.items() if h == host}
                if port not in ports and len(ports) == 1:
                    registered = ports.pop()
        return (host, registered) if registered is not None else (host, port)

    def feedback_targets(self, sender: Address | None = None) -> list[Address]:
        with self._lock:
            targets = {(host, port) for (host, _), port in self._registered.items()}
        if sender is not None:
            targets.add(self.reply_target(sender))
        return sorted(targets)

    def broadcast(self, sender: Address | None, address: str, *args: Any) -> None:
        for target in self.feedback_targets(sender):
            self.send(target, address, *args)

    # ---- the loop ----------------------------------------------------------------------------------

    def _loop(self) -> None:
        assert self._sock is not None  # start() bound it
        while not self._stopping.is_set():
            try:
                data, sender = self._sock.recvfrom(max(self.max_packet_bytes, p.MAX_OSC_PACKET_BYTES) + 1)
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    return
                log.debug("OSC receive failed: %s", exc)  # e.g. an ICMP port-unreachable for a reply
                continue
            try:
                self._packet(data, (sender[0], sender[1]))
            except Exception:  # a bug must not stop the server: log it, answer nothing more
                log.exception("OSC packet from %s failed", sender)

    def _packet(self, data: bytes, sender: Address) -> None:
        self.counters["received"] += 1
        if not self.allow.allows(sender[0]):
            self.counters["dropped"] += 1
            if sender[0] not in self._refused:
                self._refused.add(sender[0])
                log.warning("OSC from %s dropped: not in the allow-list (--osc-allow)", sender[0])
            return
        target = self.reply_target(sender)
        if len(data) > self.max_packet_bytes:
            self.error(target, "", WireError(ErrorCode.TOO_LARGE, f"packet of {len(data)} bytes: at most "
                                                                   f"{self.max_packet_bytes}"))
            return
        try:
            packet = OscPacket(data)
        except Exception as exc:  # python-osc raises ParseError, but also struct/Index/Unicode errors
            self.error(target, "", WireError(ErrorCode.MALFORMED, f"not an OSC packet ({type(exc).__name__}: "
                                                                   f"{str(exc)[:120]})"))
            return
        for timed in packet.messages:
            self._message(timed.message.address, list(timed.message.params), sender)

    def _message(self, address: str, args: list[Any], sender: Address) -> None:
        started = time.perf_counter()
        target = self.reply_target(sender)
        ours = address.startswith(OSC_ROOT + "/")
        try:
            pattern = _pattern(address)
        except ProtocolError as exc:
            if ours:
                self.error(target, "", WireError.from_exception(exc))
            else:
                self.counters["dropped"] += 1
            return
        if not ours and pattern is None:
            self.counters["dropped"] += 1  # a controller's own addresses: not ours, not an error
            return
        try:
            if pattern is None:
                entry = self.table.get(address)
                entries = [entry] if entry is not None else []
            else:
                entries = [e for a, e in self.table.items() if pattern.match(a)]
            if not entries:
                if address.startswith(OSC_ROOT + "/"):
                    raise WireError(ErrorCode.UNKNOWN_TYPE, f"{address} is not an address of this protocol: see "
                                                            f"{OSC_ROOT}/... in PROTOCOL.md")
                self.counters["dropped"] += 1
                return
        except Exception as exc:
            error = WireError.from_exception(exc)
            self.error(target, "", error)
            self._log(sender, address, f"error {error.code.value}", started)
            return
        for entry in entries:
            request_id = ""
            try:
                values, rest = self._arguments(entry, args)
                request_id = str(values.get("id") or "")
                self._serve(entry, values, rest, sender)
                if entry.address not in _STREAM_ADDRESSES:  # motion frames come 60 a second: no line each
                    self._log(sender, entry.address, "ok", started)
            except Exception as exc:
                error = WireError.from_exception(exc)
                if error.code is ErrorCode.INTERNAL:
                    log.exception("OSC %s failed", entry.address)
                self.error(target, request_id, error)
                self._log(sender, entry.address, f"error {error.code.value}: {error.message}", started)

    def _arguments(self, entry: OscAddress, args: list[Any]) -> tuple[dict[str, Any], list[Any]]:
        values: dict[str, Any] = {}
        for index, (name, kind) in enumerate(entry.args):
            if kind.endswith("*"):  # the rest of the arguments, all of one type
                values[name] = [lenient(name, a, kind[:-1]) for a in args[index:]]
                return values, []
            if index >= len(args):
                if kind.endswith("?"):
                    continue
                wanted = " ".join(f"{n}:{k}" for n, k in entry.args)
                raise WireError(ErrorCode.BAD_REQUEST, f"{entry.address} needs {len(entry.args)} argument(s): "
                                                       f"{wanted}", name)
            values[name] = lenient(name, args[index], kind)
        rest = args[len(entry.args):]
        if rest and entry.keyvalues is None:
            raise WireError(ErrorCode.BAD_REQUEST, f"{entry.address} takes {len(entry.args)} argument(s), "
                                                   f"{len(args)} were sent")
        return values, rest

    def _keyvalues(self, op: MessageType, rest: list[Any]) -> dict[str, Any]:
        spec = p.FIELDS_BY_TYPE[op]
        converted = list(rest)
        for i in range(0, len(converted) - 1, 2):
            key = converted[i]
            if isinstance(key, str) and key in spec:
                converted[i + 1] = lenient(key, converted[i + 1], spec[key])
        return p.osc_keyvalues(op, converted)

    # ---- operations ----------------------------------------------------------------------------------

    def _serve(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        address = entry.address
        target = self.reply_target(sender)
        verb = address[len(OSC_ROOT) + 1:]
        namespace = f"osc:{sender[0]}"
        if entry.keyvalues is not None:
            fields = self._keyvalues(entry.keyvalues, rest)
            if entry.keyvalues is MessageType.RECALL:
                fields["key"] = values["key"]
            sink = _OscJobSink(self, target, values["id"])
            self.service.start_job(namespace, entry.keyvalues, values["id"], fields, (), sink)
        elif verb == "engine/ping":
            self.send(target, f"{OSC_ROOT}/engine/pong", values.get("token", ""))
        elif verb == "engine/hello":
            self.send(target, f"{OSC_ROOT}/engine/hello", p.PROTOCOL_VERSION, self.service.hello()["engine_version"])
        elif verb == "engine/status":
            self.send_json(target, f"{OSC_ROOT}/engine/status", value=self.service.status())
        elif verb == "models/list":
            self.send_json(target, f"{OSC_ROOT}/models/list", value=self.service.models())
        elif verb == "models/capabilities":
            reply = self.service.quick(MessageType.CAPABILITIES, {"model": values["model"]})
            self.send_json(target, f"{OSC_ROOT}/models/capabilities", reply["model"], value=reply["capabilities"])
        elif verb == "job/cancel":
            self.service.cancel(namespace, values["id"])
            self.send(target, f"{OSC_ROOT}/job/cancelled", values["id"])
        elif verb == "history/list":
            entries = self.service.history({"limit": values.get("limit") or 50})
            self.send_json(target, f"{OSC_ROOT}/history/list", value=entries)
        elif verb in ("controller/register", "controller/unregister"):
            port = values.get("port") or sender[1]
            if not 0 < port < 65536:
                raise RequestError("port", port, "a UDP port 1–65535")
            with self._lock:
                if verb == "controller/register":
                    self._registered[sender] = port
                else:
                    self._registered.pop(sender, None)
                    for key in [k for k, v in self._registered.items() if k[0] == sender[0] and v == port]:
                        del self._registered[key]
            done = "registered" if verb == "controller/register" else "unregistered"
            self.send((sender[0], port), f"{OSC_ROOT}/controller/{done}", sender[0], port)
        elif verb.startswith("session/"):
            self.session.handle(verb[len("session/"):], values, sender)
        elif verb in ("motion/joints", "motion/accel"):
            self.motion.frame(MotionKind.JOINTS if verb == "motion/joints" else MotionKind.ACCEL, values["values"])
        elif verb == "motion/reset":
            self.motion.reset()
            self._motion_reading(None)
        elif verb == "motion/get/tempo":
            self.send(target, f"{OSC_ROOT}/motion/tempo", *reading_args(self.motion.latest, self.motion.following))
        elif verb == "motion/set/follow":
            if values["value"] not in (0, 1):
                raise RequestError("follow", values["value"], "0 (the session keeps its tempo) or 1 (it follows)")
            self.motion.set_following(bool(values["value"]))
            self.broadcast(sender, f"{OSC_ROOT}/motion/follow", int(self.motion.following))
        else:  # every address of the table is served above; a new one must be added here
            raise WireError(ErrorCode.UNKNOWN_TYPE, f"{address} is not served by this engine")

    def _motion_reading(self, reading: TempoReading | None) -> None:
        """Push a motion tempo estimate to registered controllers and the PUB socket."""
        following = self.motion.following
        self.broadcast(None, f"{OSC_ROOT}/motion/tempo", *reading_args(reading, following))
        fields: dict[str, Any] = {"bpm": 0.0, "confidence": 0.0, "phase": 0.0}
        if reading is not None:
            fields = {k: v for k, v in reading.to_dict().items() if k in ("bpm", "confidence", "phase", "last_beat_s")}
        self.service.publish(p.EventTopic.MOTION.value,
                             {**fields, "following": following, "session_tempo_bpm": self.session.params["tempo"]})

    def _log(self, sender: Address, address: str, outcome: str, started: float) -> None:
        if self.request_log is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.request_log(f"osc {sender[0]}:{sender[1]} {address} {outcome} {elapsed_ms:.1f} ms")


def _osc_arg(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
        return float(value)  # OSC ints are 32-bit for most controllers; keys and seeds never go this way
    return value


def _sample_args(sample: ServedSample, path: Path) -> list[Any]:
    root = sample.root_note if sample.root_note is not None else -1
    return [str(path), sample.kind, float(sample.tempo_bpm), float(sample.beats), int(root), int(sample.variation),
            sample.render_key]


class _OscJobSink(JobSink):
    def __init__(self, server: OscServer, target: Address, request_id: str) -> None:
        self.server = server
        self.target = target
        self.request_id = request_id

    def accepted(self, position: int) -> None:
        self.server.send(self.target, f"{OSC_ROOT}/job/accepted", self.request_id, position)

    def progress(self, fraction: float) -> None:
        self.server.send(self.target, f"{OSC_ROOT}/job/progress", self.request_id, float(fraction))

    def done(self, samples: list[ServedSample], extra: dict[str, Any]) -> None:
        for note in extra.get("notes", ()):
            self.server.send(self.target, f"{OSC_ROOT}/job/note", self.request_id, note)
        for index, sample in enumerate(samples):
            path = self.server.service.export(sample)
            self.server.send(self.target, f"{OSC_ROOT}/job/sample", self.request_id, index,
                             *_sample_args(sample, path))
        self.server.send(self.target, f"{OSC_ROOT}/job/done", self.request_id, len(samples))

    def failed(self, error: WireError) -> None:
        self.server.error(self.target, self.request_id, error)


# ---- the session -----------------------------------------------------------------------------------------


class Session:
    """The parameters controllers set and get, and the sample they select.

    One session per engine, shared by every controller (a phone and the Live device see one state).
    Generating fixes a *base* request; the Variation and Morph knobs move around it and are served
    from the store when pre-rendered; tempo, pitch and rate re-conform the current sample.
    """

    NAMESPACE = "osc-session"

    def __init__(self, server: OscServer) -> None:
        self.server = server
        self.params: dict[str, Any] = dict(SESSION_DEFAULTS)
        self.params["model"] = server.service.default_model
        self.base: GenerateRequest | None = None
        self.current: list[ServedSample] = []
        self.current_paths: list[Path] = []
        self._lock = threading.Lock()
        self._job_counter = 0
        self._job_id: str | None = None
        self._prompt_cache: tuple[tuple[str, float], AudioPrompt] | None = None

    def handle(self, verb: str, values: dict[str, Any], sender: Address) -> None:
        if verb == "generate":
            self.generate(sender)
        elif verb == "state":
            self.send_state(sender)
        elif verb.startswith("set/"):
            name = verb[len("set/"):]
            self.set(name, values["value"], sender)
        elif verb.startswith("get/"):
            name = verb[len("get/"):]
            self.server.send(self.server.reply_target(sender), f"{OSC_ROOT}/session/{name}", self.params[name])
        else:
            raise WireError(ErrorCode.UNKNOWN_TYPE, f"{OSC_ROOT}/session/{verb} is not an address of this protocol")

    def send_state(self, sender: Address) -> None:
        target = self.server.reply_target(sender)
        for name in p.SESSION_PARAMS:
            self.server.send(target, f"{OSC_ROOT}/session/{name}", self.params[name])
        with self._lock:
            current = list(zip(self.current, self.current_paths, strict=True))
        for sample, path in current:
            self.server.send(target, f"{OSC_ROOT}/session/sample", *_sample_args(sample, path))
        self.server.send(target, f"{OSC_ROOT}/session/state")

    def set(self, name: str, value: Any, sender: Address) -> None:
        expected = p.SESSION_PARAMS.get(name)
        if expected is None:
            raise WireError(ErrorCode.UNKNOWN_TYPE, f"{name} is not a session parameter: expected one of "
                                                    f"{', '.join(p.SESSION_PARAMS)}")
        try:
            value = lenient(name, value, expected)
            if name == "morph":
                value = snap_morph(value)
            if name == "kind":
                value = Kind.parse(value).value
            trial = {**self.params, name: value}
            self.request_from(trial)  # raises for a value outside its range
            self.spec_from(trial)
            if name == "model":
                self.server.service.engine.capabilities(value)
        except Exception:
            # the fader that sent it snaps back to the value in force
            self.server.send(self.server.reply_target(sender), f"{OSC_ROOT}/session/{name}", self.params[name])
            raise
        self.params[name] = value
        self.server.broadcast(sender, f"{OSC_ROOT}/session/{name}", value)
        if name in p.SESSION_SELECTING_PARAMS:
            base = self.base or self.request_from(self.params)
            if name == "variation":
                request = base.with_variation(value)
            elif base.morph_prompt is not None:
                request = base.replace(morph_amount=value)
            else:
                return  # no morph target: nothing to select
            self.base = request
            self._run(MessageType.VARIATION, self.server.service.inputs_for(request, self.spec_from(self.params)),
                      sender)
        elif name in p.SESSION_CONFORMING_PARAMS:
            self._reconform(sender)

    def follow_tempo(self, bpm: float) -> None:
        """Take ``bpm`` as the session tempo (the dancer's): pushed to every controller, and the
        current sample re-conformed to it (no model runs)."""
        value = lenient("tempo", bpm, "float")
        self.spec_from({**self.params, "tempo": value})  # raises for a tempo out of range
        self.params["tempo"] = value
        self.server.broadcast(None, f"{OSC_ROOT}/session/tempo", value)
        self.server.service.publish(p.EventTopic.STATE.value, {**self.server.service.state_fields(),
                                                               "session_tempo_bpm": value})
        self._reconform(None)

    def _reconform(self, sender: Address | None) -> None:
        """The current sample again under the session's conform settings (tempo, pitch, rate)."""
        with self._lock:
            render_keys = [s.render_key for s in self.current]
        if len(render_keys) == 1:
            inputs = self.server.service.inputs_for_render(render_keys[0], self.spec_from(self.params))
            self._run(MessageType.CONFORM, inputs, sender)
        elif self.base is not None:
            self._run(MessageType.VARIATION,
                      self.server.service.inputs_for(self.base, self.spec_from(self.params)), sender)

    def generate(self, sender: Address) -> None:
        seed = secrets.randbelow(RANDOM_SEED_LIMIT + 1)
        request = self.request_from({**self.params, "seed": seed, "variation": 0})
        self.params["seed"], self.params["variation"] = seed, 0
        self.server.broadcast(sender, f"{OSC_ROOT}/session/seed", seed)
        self.server.broadcast(sender, f"{OSC_ROOT}/session/variation", 0)
        self.base = request
        self._run(MessageType.GENERATE, self.server.service.inputs_for(request, self.spec_from(self.params)), sender)

    def request_from(self, params: dict[str, Any]) -> GenerateRequest:
        kind = Kind.parse(params["kind"])
        morph_prompt = params["morph_prompt"] or None
        return GenerateRequest(
            prompt=params["prompt"],
            model=params["model"],
            kind=kind,
            seed=params["seed"],
            variation=params["variation"],
            bars=params["bars"] if kind in (Kind.LOOP, Kind.TEXTURE) else None,
            tempo_bpm=params["tempo"],
            beats_per_bar=params["beats_per_bar"],
            steps=params["quality"] or None,
            audio_prompt=self._audio_prompt(params["audio_prompt"]),
            audio_prompt_strength=params["strength"],
            morph_prompt=morph_prompt,
            morph_amount=params["morph"] if morph_prompt else 0.0,
        )

    def spec_from(self, params: dict[str, Any]) -> ConformSpec:
        kind = Kind.parse(params["kind"])
        return ConformSpec(
            tempo_bpm=params["tempo"],
            bars=params["bars"] if kind in (Kind.LOOP, Kind.TEXTURE) else None,
            beats_per_bar=params["beats_per_bar"],
            pitch_semitones=params["pitch"],
            sample_rate=params["sample_rate"],
        )

    def _audio_prompt(self, path_text: str) -> AudioPrompt | None:
        if not path_text:
            return None
        path = Path(path_text).expanduser()
        try:
            stamp = (str(path), path.stat().st_mtime)
        except OSError as exc:
            raise RequestError("audio_prompt", path_text, "a readable audio file on the engine's machine",
                               str(exc)) from exc
        if self._prompt_cache is not None and self._prompt_cache[0] == stamp:
            return self._prompt_cache[1]
        prompt = AudioPrompt.from_file(path)
        self._prompt_cache = (stamp, prompt)
        return prompt

    def _run(self, kind: MessageType, inputs: Any, sender: Address | None) -> None:
        with self._lock:
            previous = self._job_id
            self._job_counter += 1
            job_id = f"session-{self._job_counter}"
            self._job_id = job_id
        if previous is not None:
            # a knob turned on: only the newest position matters (pre-renders of it live on)
            self.server.service.cancel_job(self.NAMESPACE, previous)
        self.server.service.run(self.NAMESPACE, kind, job_id, inputs, _SessionSink(self, job_id, sender))

    def _is_current(self, job_id: str) -> bool:
        with self._lock:
            return self._job_id == job_id


class _SessionSink(JobSink):
    def __init__(self, session: Session, job_id: str, sender: Address | None) -> None:
        self.session = session
        self.job_id = job_id
        self.sender = sender

    def accepted(self, position: int) -> None:
        self.session.server.broadcast(self.sender, f"{OSC_ROOT}/session/status",
                                      "rendering" if position == 0 else f"queued ({position} ahead)")

    def progress(self, fraction: float) -> None:
        if self.session._is_current(self.job_id):
            self.session.server.broadcast(self.sender, f"{OSC_ROOT}/session/progress", float(fraction))

    def done(self, samples: list[ServedSample], extra: dict[str, Any]) -> None:
        if not self.session._is_current(self.job_id):
            return
        server = self.session.server
        paths = [server.service.export(s) for s in samples]
        with self.session._lock:
            self.session.current, self.session.current_paths = list(samples), paths
        for sample, path in zip(samples, paths, strict=True):
            server.broadcast(self.sender, f"{OSC_ROOT}/session/sample", *_sample_args(sample, path))
        cached = samples and all(s.cached for s in samples)
        server.broadcast(self.sender, f"{OSC_ROOT}/session/status", "ready (from the store)" if cached else "ready")

    def failed(self, error: WireError) -> None:
        if error.code is ErrorCode.CANCELLED and not self.session._is_current(self.job_id):
            return  # superseded by a newer knob position
        server = self.session.server
        server.broadcast(self.sender, f"{OSC_ROOT}/session/status", f"error: {error.message}")
        if self.sender is not None:  # None: the engine's own change (a tempo followed), no one to answer
            server.error(server.reply_target(self.sender), self.job_id, error)


__all__ = ["SESSION_DEFAULTS", "OscServer", "Session", "lenient"]
