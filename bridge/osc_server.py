"""The engine's OSC front (UDP): the protocol's operations under ``/loopbridge/...``.

One thread reads datagrams. Each message's address is looked up in the protocol's address table,
whose every row is mapped to one handler here (a pattern with OSC wildcards is matched against the
table by :mod:`.osc_pattern`, in time linear in the pattern); its arguments are checked leniently
(``protocol.lenient``: an int where a float is expected and the other way round, as controllers
send them) and it is served. Anything wrong is answered on ``/loopbridge/error`` and the server goes
on; packets from hosts outside the allow-list are dropped without an answer.

Who gets what (:mod:`.osc_routes`): replies go to their sender only — at the port it registered
with ``/loopbridge/controller/register`` from the socket it sends from, else at its source port —
and no more bytes of them than one packet may draw; registered controllers also get the controller
session's feedback (:mod:`.osc_session`): every change of a session parameter, the current sample,
progress and status. A job belongs to the sender that started it.

Results over OSC are file paths on the engine's machine: readable-named links to the store's files.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
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
from .osc_routes import NOTICE_BYTES, Address, Registrations, ReplyBudget, Sender, fit_json
from .osc_session import Session, sample_args
from .protocol import OSC_ROOT, ErrorCode, MessageType, OscAddress, lenient
from .replies import JobSink, WireError
from .security import AllowList
from .service import Service

log = logging.getLogger(__name__)

RequestLog = Callable[[str], None]
#: a handler of one table row: (its checked arguments, trailing key/value arguments, the sender)
Handler = Callable[[OscAddress, dict[str, Any], list[Any], Sender], None]

#: addresses that carry a stream of frames rather than requests (not logged one line each)
_STREAM_ADDRESSES = frozenset({f"{OSC_ROOT}/motion/joints", f"{OSC_ROOT}/motion/accel"})
#: hosts outside the allow-list logged by name (forged source addresses must not grow the set for ever)
_REFUSED_LOGGED = 256
#: the longest error message sent
_MAX_ERROR_CHARS = 300


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
        self.registrations = Registrations()
        self._refused: set[str] = set()
        self.session = Session(service, self)
        self.motion = MotionFollower(on_reading=self._motion_reading, on_follow=self.session.follow_tempo,
                                     session_tempo=lambda: float(self.session.params["tempo_bpm"]))
        self.counters = {"received": 0, "errors": 0, "dropped": 0, "sent": 0, "cut": 0}
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
            if family == socket.AF_INET6 and ipaddress.ip_address(sockaddr[0]).is_unspecified:
                # [::] hears IPv4 too (as ::ffff:a.b.c.d), as on Linux by default, on every system
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
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
        """One message to ``target``, counted against nothing: feedback to a registered controller."""
        dgram = _build(address, args)
        if dgram is not None:
            self._sendto(dgram, target)

    def reply(self, sender: Sender, address: str, *args: Any, request_id: str = "") -> None:
        """One message to ``sender``, within what its packet may still draw; the first one that does not
        fit is replaced by an error saying so (with ``request_id``), and nothing is sent after it."""
        dgram = _build(address, args)
        if dgram is None:
            return
        verdict = sender.budget.admit(len(dgram), sender.limit)
        if verdict == "send":
            self._sendto(dgram, sender.target)
        elif verdict == "notice":
            self.counters["cut"] += 1
            advice = f": register ({OSC_ROOT}/controller/register) to get them all" if not sender.registered else \
                ": ask for less in one packet"
            notice = _build(p.OSC_ERROR, [request_id[:p.MAX_ID_CHARS], ErrorCode.TOO_LARGE.value,
                                          f"replies to one packet stop at {sender.limit} bytes{advice}"])
            if notice is not None and len(notice) <= NOTICE_BYTES:
                self._sendto(notice, sender.target)

    def reply_json(self, sender: Sender, address: str, *lead: Any, value: Any) -> None:
        """A reply whose last argument is ``value`` as JSON, cut to fit (lists lose their tail)."""
        overhead = len(_build(address, [*lead, ""]) or b"") + 4  # the text's own terminator and padding
        room = min(p.MAX_OSC_JSON_BYTES, sender.budget.room(sender.limit) - overhead)
        self.reply(sender, address, *lead, fit_json(value, max(0, room)))

    def error(self, sender: Sender, request_id: str, error: WireError) -> None:
        self.counters["errors"] += 1
        message = error.message
        if len(message) > _MAX_ERROR_CHARS:
            message = message[:_MAX_ERROR_CHARS - 3] + "..."
        self.reply(sender, p.OSC_ERROR, request_id or "", error.code.value, message, request_id=request_id or "")

    def broadcast(self, sender: Sender | None, address: str, *args: Any) -> None:
        """Feedback: to every registered controller, and (as a reply) to the sender that caused it."""
        for target in self.registrations.targets():
            if sender is None or target != sender.target:
                self.send(target, address, *args)
        if sender is not None:
            self.reply(sender, address, *args)

    def _sendto(self, dgram: bytes, target: Address) -> None:
        try:
            if self._sock is not None:
                self._sock.sendto(dgram, target)
                self.counters["sent"] += 1
        except OSError as exc:  # a controller gone: never fatal
            log.debug("OSC to %s not sent: %s", target, exc)

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

    def _packet(self, data: bytes, source: Address) -> None:
        self.counters["received"] += 1
        if not self.allow.allows(source[0]):
            self.counters["dropped"] += 1
            if source[0] not in self._refused and len(self._refused) < _REFUSED_LOGGED:
                self._refused.add(source[0])
                log.warning("OSC from %s dropped: not in the allow-list (--osc-allow)", source[0])
            return
        budget = ReplyBudget()  # what this packet may draw back, its bundle's messages and jobs together
        if len(data) > self.max_packet_bytes:
            self.error(self.registrations.sender(source, budget), "", WireError(
                ErrorCode.TOO_LARGE, f"packet of {len(data)} bytes: at most {self.max_packet_bytes}"))
            return
        try:
            packet = OscPacket(data)
        except Exception as exc:  # python-osc raises ParseError, but also struct/Index/Unicode errors
            self.error(self.registrations.sender(source, budget), "", WireError(
                ErrorCode.MALFORMED, f"not an OSC packet ({type(exc).__name__}: {str(exc)[:120]})"))
            return
        for timed in packet.messages:
            # the sender's route is looked up for each message: a bundle may register, then ask
            self._message(timed.message.address, list(timed.message.params), self.registrations.sender(source, budget))

    def _message(self, address: str, args: list[Any], sender: Sender) -> None:
        started = time.perf_counter()
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
            self.error(sender, "", refused)
            self._log(sender, _shown(address), f"error {refused.code.value}", started)
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
                self.error(sender, request_id, error)
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

    def _job(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        assert entry.keyvalues is not None  # only rows with key/value pairs are mapped here
        fields = self._keyvalues(entry.keyvalues, rest)
        if entry.keyvalues is MessageType.RECALL:
            fields["render_key"] = values["render_key"]
        elif entry.keyvalues is MessageType.CONFORM_FILE:
            fields["audio_path"] = values["path"]
        sink = _OscJobSink(self, sender, values["id"])
        self.service.start_job(_owner(sender.address), entry.keyvalues, values["id"], fields, (), sink)

    def _ping(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        self.reply(sender, f"{OSC_ROOT}/engine/pong", values.get("token", ""))

    def _hello(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        hello = self.service.hello()
        self.reply(sender, f"{OSC_ROOT}/engine/hello", p.PROTOCOL_VERSION, hello["engine_version"], hello["inbox"])

    def _status(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        self.reply_json(sender, f"{OSC_ROOT}/engine/status", value=self.service.status(_owner(sender.address)))

    def _models(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        self.reply_json(sender, f"{OSC_ROOT}/models/list", value=self.service.models())

    def _capabilities(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        reply = self.service.quick(MessageType.CAPABILITIES, {"model": values["model"]})
        self.reply_json(sender, f"{OSC_ROOT}/models/capabilities", reply["model"], value=reply["capabilities"])

    def _cancel(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        self.service.cancel(_owner(sender.address), values["id"])  # its own jobs only: another's is not found
        self.reply(sender, f"{OSC_ROOT}/job/cancelled", values["id"], request_id=values["id"])

    def _history(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        entries = self.service.history({"limit": values.get("limit") or 50, "offset": values.get("offset") or 0})
        self.reply_json(sender, f"{OSC_ROOT}/history/list", value=entries)

    def _register(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        host = sender.address[0]
        port = values.get("port") or sender.address[1]
        if not 0 < port < 65536:
            raise RequestError("port", port, "a UDP port 1–65535")
        if entry.address.endswith("/register"):
            self.registrations.register(sender.address, port)
            self.reply(self.registrations.sender(sender.address, sender.budget), f"{OSC_ROOT}/controller/registered",
                       host, port)
        else:
            self.registrations.unregister(sender.address, port)
            self.reply(dataclasses.replace(sender, target=(host, port)), f"{OSC_ROOT}/controller/unregistered",
                       host, port)

    def _session_set(self, name: str, entry: OscAddress, values: dict[str, Any], rest: list[Any],
                     sender: Sender) -> None:
        self.session.set(name, values["value"], sender)

    def _session_get(self, name: str, entry: OscAddress, values: dict[str, Any], rest: list[Any],
                     sender: Sender) -> None:
        self.session.get(name, sender)

    def _motion_frame(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        kind = MotionKind.JOINTS if entry.address.endswith("/joints") else MotionKind.ACCEL
        self.motion.frame(kind, values["values"])

    def _motion_reset(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        self.motion.reset()
        self._motion_reading(None)

    def _motion_tempo(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
        self.reply(sender, f"{OSC_ROOT}/motion/tempo", *reading_args(self.motion.latest, self.motion.following))

    def _motion_follow(self, entry: OscAddress, values: dict[str, Any], rest: list[Any], sender: Sender) -> None:
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

    def _log(self, sender: Sender, address: str, outcome: str, started: float) -> None:
        if self.request_log is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.request_log(f"osc {sender.address[0]}:{sender.address[1]} {address} {outcome} {elapsed_ms:.1f} ms")


def _owner(sender: Address) -> str:
    """Whose jobs a sender's are: its host and source port's, so two senders' ids never meet (the same
    id from two controllers is two jobs) and a cancel reaches only the sender's own."""
    return f"osc:[{sender[0]}]:{sender[1]}"


def _shown(address: str) -> str:
    """An address as an error message quotes it: a long one cut short."""
    return address if len(address) <= 80 else address[:77] + "..."


def _build(address: str, args: Any) -> bytes | None:
    """One OSC message's bytes (None, logged, when an argument cannot be sent)."""
    builder = OscMessageBuilder(address)
    try:
        for arg in args:
            builder.add_arg(_osc_arg(arg))
        return bytes(builder.build().dgram)
    except (ValueError, TypeError) as exc:
        log.debug("OSC %s not built: %s", address, exc)
        return None


def _osc_arg(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
        return float(value)  # OSC ints are 32-bit for most controllers; keys and seeds never go this way
    return value


class _OscJobSink(JobSink):
    """A job's messages to the sender that started it, within what its packet may draw; progress
    only to a registered sender (fifty of them would leave an unregistered one no room for its result)."""

    def __init__(self, server: OscServer, sender: Sender, request_id: str) -> None:
        self.server = server
        self.sender = sender
        self.request_id = request_id

    def _reply(self, address: str, *args: Any) -> None:
        self.server.reply(self.sender, address, self.request_id, *args, request_id=self.request_id)

    def accepted(self, position: int) -> None:
        self._reply(f"{OSC_ROOT}/job/accepted", position)

    def progress(self, fraction: float) -> None:
        if self.sender.registered:
            self._reply(f"{OSC_ROOT}/job/progress", float(fraction))

    def done(self, samples: list[Sample], extra: dict[str, Any]) -> None:
        for note in extra.get("notes", ()):
            self._reply(f"{OSC_ROOT}/job/note", note)
        for index, sample in enumerate(samples):
            self._reply(f"{OSC_ROOT}/job/sample", index, *sample_args(sample, self.server.service.export(sample)))
        self._reply(f"{OSC_ROOT}/job/done", len(samples))

    def failed(self, error: WireError) -> None:
        self.server.error(self.sender, self.request_id, error)


__all__ = ["OscServer", "lenient"]
