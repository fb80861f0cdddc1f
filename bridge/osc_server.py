"""The engine's OSC front (UDP): the protocol's operations under ``/loopbridge/...``.

One thread reads datagrams. Each message's address is looked up in the protocol's address table,
whose every row is mapped to one handler here (a pattern with OSC wildcards is matched against the
table by :mod:`.osc_pattern`, in time linear in the pattern); its arguments are checked leniently
(``protocol.lenient``: an int where a float is expected and the other way round, as controllers
send them) and it is served. Anything wrong is answered on ``/loopbridge/error`` and the server goes
on; packets from hosts outside the allow-list are dropped without an answer.

Replies go to the sender's host, at the port it registered with ``/loopbridge/controller/register``
(or, when its source port changed and its host registered exactly one port, that one), else to the
sender's own source port. Registered controllers also get the controller session's feedback
(:mod:`.osc_session`): every change of a session parameter, the current sample, progress and status.

Results over OSC are file paths on the engine's machine: readable-named links to the store's files.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopbridge.engine.errors import RequestError
from loopbridge.engine.frontdoor import Sample
from loopbridge.engine.motion import MotionKind, TempoReading
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from . import protocol as p
from .motion_follow import MotionFollower, reading_args
from .osc_pattern import AddressTable, PatternError, is_pattern
from .osc_session import Session, sample_args
from .protocol import OSC_ROOT, ErrorCode, MessageType, OscAddress, lenient
from .replies import JobSink, WireError
from .security import AllowList
from .service import Service

log = logging.getLogger(__name__)

RequestLog = Callable[[str], None]
Address = tuple[str, int]
#: a handler of one table row: (its checked arguments, trailing key/value arguments, the sender)
Handler = Callable[[OscAddress, dict[str, Any], list[Any], Address], None]

#: addresses that carry a stream of frames rather than requests (not logged one line each)
_STREAM_ADDRESSES = frozenset({f"{OSC_ROOT}/motion/joints", f"{OSC_ROOT}/motion/accel"})
#: the most a JSON reply (status, models, history) may take in one datagram
_MAX_JSON_BYTES = 60 * 1024


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
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        #: (host, source port) -> the port it asked feedback on
        self._registered: dict[Address, int] = {}
        self._refused: set[str] = set()
        self.session = Session(service, self)
        self.motion = MotionFollower(on_reading=self._motion_reading, on_follow=self.session.follow_tempo,
                                     session_tempo=lambda: float(self.session.params["tempo_bpm"]))
        self.counters = {"received": 0, "errors": 0, "dropped": 0, "sent": 0}
        handlers = self._handlers()
        #: every incoming address: its row and its handler
        self._rows = {entry.address: (entry, handlers[entry.address]) for entry in p.OSC_ADDRESSES}
        self._table = AddressTable(self._rows)

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
        wildcard = is_pattern(address)
        if not ours and not wildcard:
            self.counters["dropped"] += 1  # a controller's own addresses: not ours, not an error
            return
        try:
            try:
                # an address without wildcards (nearly every message) is its own key: no pattern to match
                matched = self._table.match(address) if wildcard else [address] if address in self._rows else []
            except PatternError as exc:
                raise WireError(ErrorCode.MALFORMED, f"address pattern {_shown(address)}: {exc}") from None
            if not matched:
                if ours:
                    raise WireError(ErrorCode.UNKNOWN_TYPE, f"{_shown(address)} is not an address of this "
                                                            f"protocol: see {OSC_ROOT}/... in PROTOCOL.md")
                self.counters["dropped"] += 1
                return
        except WireError as refused:
            self.error(target, "", refused)
            self._log(sender, address, f"error {refused.code.value}", started)
            return
        for row in matched:
            entry, handler = self._rows[row]
            request_id = ""
            try:
                values, rest = self._arguments(entry, args)
                request_id = str(values.get("id") or "")
                handler(entry, values, rest, sender)
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
            if name == "id" and not 0 < len(values[name]) <= p.MAX_ID_CHARS:
                raise WireError(ErrorCode.BAD_REQUEST, f"id of {len(values[name])} characters: expected 1–"
                                                       f"{p.MAX_ID_CHARS}", "id")
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

    # ---- the dispatch table: one handler for every row of protocol.OSC_ADDRESSES -------------------------------

    def _handlers(self) -> dict[str, Handler]:
        session = self.session
        table: dict[str, Handler] = {
            f"{OSC_ROOT}/engine/ping": self._ping,
            f"{OSC_ROOT}/engine/hello": self._hello,
            f"{OSC_ROOT}/engine/status": self._status,
            f"{OSC_ROOT}/models/list": self._models,
            f"{OSC_ROOT}/models/capabilities": self._capabilities,
            f"{OSC_ROOT}/job/cancel": self._cancel,
            f"{OSC_ROOT}/history/list": self._history,
            f"{OSC_ROOT}/controller/register": self._register,
            f"{OSC_ROOT}/controller/unregister": self._register,
            f"{OSC_ROOT}/motion/joints": self._motion_frame,
            f"{OSC_ROOT}/motion/accel": self._motion_frame,
            f"{OSC_ROOT}/motion/reset": self._motion_reset,
            f"{OSC_ROOT}/motion/get/tempo": self._motion_tempo,
            f"{OSC_ROOT}/motion/set/follow": self._motion_follow,
            f"{OSC_ROOT}/session/generate": lambda entry, values, rest, sender: session.generate(sender),
            f"{OSC_ROOT}/session/state": lambda entry, values, rest, sender: session.send_state(sender),
        }
        for name in [*p.SESSION_PARAMS, *p.SESSION_ALIASES]:
            table[f"{OSC_ROOT}/session/set/{name}"] = functools.partial(self._session_set, name)
            table[f"{OSC_ROOT}/session/get/{name}"] = functools.partial(self._session_get, name)
        for entry in p.OSC_ADDRESSES:
            if entry.keyvalues is not None:
                table[entry.address] = self._job
        return table

    def _job(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        assert entry.keyvalues is not None  # only rows with key/value pairs are mapped here
        fields = self._keyvalues(entry.keyvalues, rest)
        if entry.keyvalues is MessageType.RECALL:
            fields["key"] = values["key"]
        sink = _OscJobSink(self, self.reply_target(sender), values["id"])
        self.service.start_job(_owner(sender), entry.keyvalues, values["id"], fields, (), sink)

    def _ping(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        self.send(self.reply_target(sender), f"{OSC_ROOT}/engine/pong", values.get("token", ""))

    def _hello(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        hello = self.service.hello()
        self.send(self.reply_target(sender), f"{OSC_ROOT}/engine/hello", p.PROTOCOL_VERSION, hello["engine_version"],
                  hello["inbox"])

    def _status(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        self.send_json(self.reply_target(sender), f"{OSC_ROOT}/engine/status", value=self.service.status())

    def _models(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        self.send_json(self.reply_target(sender), f"{OSC_ROOT}/models/list", value=self.service.models())

    def _capabilities(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        reply = self.service.quick(MessageType.CAPABILITIES, {"model": values["model"]})
        self.send_json(self.reply_target(sender), f"{OSC_ROOT}/models/capabilities", reply["model"],
                       value=reply["capabilities"])

    def _cancel(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        self.service.cancel(_owner(sender), values["id"])  # one of its own jobs: another sender's is not found
        self.send(self.reply_target(sender), f"{OSC_ROOT}/job/cancelled", values["id"])

    def _history(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        entries = self.service.history({"limit": values.get("limit") or 50})
        self.send_json(self.reply_target(sender), f"{OSC_ROOT}/history/list", value=entries)

    def _register(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        port = values.get("port") or sender[1]
        if not 0 < port < 65536:
            raise RequestError("port", port, "a UDP port 1–65535")
        registering = entry.address.endswith("/register")
        with self._lock:
            if registering:
                self._registered[sender] = port
            else:
                self._registered.pop(sender, None)
                for key in [k for k, v in self._registered.items() if k[0] == sender[0] and v == port]:
                    del self._registered[key]
        done = "registered" if registering else "unregistered"
        self.send((sender[0], port), f"{OSC_ROOT}/controller/{done}", sender[0], port)

    def _session_set(self, name: str, entry: OscAddress, values: dict[str, Any], rest: list[Any],
                     sender: Address) -> None:
        self.session.set(name, values["value"], sender)

    def _session_get(self, name: str, entry: OscAddress, values: dict[str, Any], rest: list[Any],
                     sender: Address) -> None:
        self.session.get(name, sender)

    def _motion_frame(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        kind = MotionKind.JOINTS if entry.address.endswith("/joints") else MotionKind.ACCEL
        self.motion.frame(kind, values["values"])

    def _motion_reset(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        self.motion.reset()
        self._motion_reading(None)

    def _motion_tempo(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        self.send(self.reply_target(sender), f"{OSC_ROOT}/motion/tempo",
                  *reading_args(self.motion.latest, self.motion.following))

    def _motion_follow(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Address) -> None:
        if values["value"] not in (0, 1):
            raise RequestError("follow", values["value"], "0 (the session keeps its tempo) or 1 (it follows)")
        self.motion.set_following(bool(values["value"]))
        self.broadcast(sender, f"{OSC_ROOT}/motion/follow", int(self.motion.following))

    def _motion_reading(self, reading: TempoReading | None) -> None:
        """Push a motion tempo estimate to registered controllers and the PUB socket."""
        following = self.motion.following
        self.broadcast(None, f"{OSC_ROOT}/motion/tempo", *reading_args(reading, following))
        fields: dict[str, Any] = {"bpm": 0.0, "confidence": 0.0, "phase": 0.0}
        if reading is not None:
            fields = {k: v for k, v in reading.to_dict().items() if k in ("bpm", "confidence", "phase", "last_beat_s")}
        self.service.publish(p.EventTopic.MOTION.value,
                             {**fields, "following": following, "session_tempo_bpm": self.session.params["tempo_bpm"]})

    def _log(self, sender: Address, address: str, outcome: str, started: float) -> None:
        if self.request_log is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.request_log(f"osc {sender[0]}:{sender[1]} {address} {outcome} {elapsed_ms:.1f} ms")


def _owner(sender: Address) -> str:
    """Whose jobs a sender's are: its host and source port's, so two senders' ids never meet (the same
    id from two controllers is two jobs) and a cancel reaches only the sender's own."""
    return f"osc:[{sender[0]}]:{sender[1]}"


def _shown(address: str) -> str:
    """An address as an error message quotes it: a long one cut short."""
    return address if len(address) <= 80 else address[:77] + "..."


def _osc_arg(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
        return float(value)  # OSC ints are 32-bit for most controllers; keys and seeds never go this way
    return value


class _OscJobSink(JobSink):
    def __init__(self, server: OscServer, target: Address, request_id: str) -> None:
        self.server = server
        self.target = target
        self.request_id = request_id

    def accepted(self, position: int) -> None:
        self.server.send(self.target, f"{OSC_ROOT}/job/accepted", self.request_id, position)

    def progress(self, fraction: float) -> None:
        self.server.send(self.target, f"{OSC_ROOT}/job/progress", self.request_id, float(fraction))

    def done(self, samples: list[Sample], extra: dict[str, Any]) -> None:
        for note in extra.get("notes", ()):
            self.server.send(self.target, f"{OSC_ROOT}/job/note", self.request_id, note)
        for index, sample in enumerate(samples):
            path = self.server.service.export(sample)
            self.server.send(self.target, f"{OSC_ROOT}/job/sample", self.request_id, index,
                             *sample_args(sample, path))
        self.server.send(self.target, f"{OSC_ROOT}/job/done", self.request_id, len(samples))

    def failed(self, error: WireError) -> None:
        self.server.error(self.target, self.request_id, error)


__all__ = ["OscServer", "lenient"]

