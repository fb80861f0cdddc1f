"""The engine's ZeroMQ front: a ROUTER for requests, a PUB for events.

One thread owns both sockets. Frames come in as ``[identity, (empty,) header, binary...]``; every
failure to decode or serve one message is answered with an error (or, for a frame over
``ZMQ_MAXMSGSIZE``, dropped by libzmq with the connection) and the loop goes on. Replies made on
other threads (a job finishing on the scheduler) reach the socket thread through an inproc PUSH
socket, so only that thread ever touches the ROUTER and the PUB. The quick requests that read model
folders or the store (``models``, ``capabilities``, ``history``) are answered on a thread of their
own, one after another: a model folder on a slow share holds up those alone, never a heartbeat.

Who owns a job: the connection that asked for it, never the routing id it presents (a peer picks
that itself, and libzmq's automatic ones count up). The same thread answers the context's ZAP
requests (:class:`~.security.ZapHandler`), which give every connection a fresh random id that its
messages carry as metadata, and under CURVE the client's public key as its ``User-Id``; a job's id
is scoped to both. A second connection presenting a routing id in use is ignored by the ROUTER
(``ROUTER_HANDOVER`` stays off), and a job's replies go to its routing id only while the last
message heard on that id came from the job's connection within the liveness window: once another
connection has spoken under it, or nobody has for that long, they are dropped.

Heartbeats: every client that sent anything within ``liveness`` intervals gets a heartbeat each
interval; one that falls silent longer is forgotten: its jobs' replies are dropped (a client that
heartbeats, as the protocol asks, is never silent that long while it waits).
"""

from __future__ import annotations

import ctypes
import itertools
import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import zmq
from loopbridge.engine.frontdoor import Sample

from . import protocol as p
from .protocol import ErrorCode, MessageType, ProtocolError
from .replies import JobSink, WireError, sample_fields
from .security import CONNECTION_PROPERTY, USER_PROPERTY, ZAP_DOMAIN, ZAP_ENDPOINT, CurveKeys, ZapHandler
from .service import Service

log = logging.getLogger(__name__)

_ids = itertools.count()
#: messages handled per socket per loop turn before the other socket gets its turn
_BATCH = 64
#: the socket loop wakes at least this often to notice stop()
_TICK_S = 0.1
#: quick requests that read model folders (their configs, a family's code imported on first use) or
#: the store: seconds on a slow disk or share, so they are answered on a thread of their own, in the
#: order they came, while the socket loop goes on with heartbeats, pings, status, cancels and jobs
#: (a plugin that hears nothing for its liveness window reconnects and sends its requests again)
_OFF_LOOP = frozenset({MessageType.MODELS, MessageType.CAPABILITIES, MessageType.HISTORY})

RequestLog = Callable[[str], None]


class _Route:
    """Where a reply goes: the peer's routing id, whether it framed its message with an empty frame,
    and who asked: the connection (its ZAP-given id) and, under CURVE, the client's public key."""

    __slots__ = ("connection", "delimiter", "identity", "user")

    def __init__(self, identity: bytes, delimiter: bool, connection: str, user: str = "") -> None:
        self.identity = identity
        self.delimiter = delimiter
        self.connection = connection
        self.user = user

    def frames(self, header: bytes, binary: Sequence[bytes] = ()) -> list[Any]:
        return [self.identity, *([b""] if self.delimiter else []), header, *binary]

    @property
    def owner(self) -> str:
        """The namespace of this connection's job ids: its connection id, and its client key under CURVE."""
        return f"zmq:{self.connection}" + (f":{self.user}" if self.user else "")

    @property
    def peer(self) -> str:
        return self.identity.hex()[:10]


class _Quick(NamedTuple):
    """A quick request waiting for the thread that answers those off the socket loop."""

    route: _Route
    kind: MessageType
    request_id: str
    fields: dict[str, Any]
    started: float


class _Peer:
    """A routing id heard from: when, how it frames its messages, and which connection spoke under it last."""

    __slots__ = ("connection", "delimiter", "seen")

    def __init__(self, seen: float, delimiter: bool, connection: str) -> None:
        self.seen = seen
        self.delimiter = delimiter
        self.connection = connection


class ZmqServer:
    """Serves :class:`Service` over ZeroMQ (see the module docstring).

    ``endpoint``/``events_endpoint`` may end in ``:*`` to pick free ports (read :attr:`endpoint`
    after :meth:`start`). ``keys`` turns on CURVE for both sockets. ``request_log`` gets one line
    per request. Raises ``zmq.ZMQError`` from :meth:`start` when a bind fails.
    """

    def __init__(
        self,
        service: Service,
        endpoint: str = p.DEFAULT_ZMQ_ENDPOINT,
        events_endpoint: str | None = p.DEFAULT_EVENTS_ENDPOINT,
        keys: CurveKeys | None = None,
        max_message_bytes: int = p.MAX_MESSAGE_BYTES,
        max_frame_bytes: int = p.MAX_BINARY_FRAME_BYTES,
        heartbeat_interval_s: float = p.HEARTBEAT_INTERVAL_S,
        liveness: int = p.HEARTBEAT_LIVENESS,
        request_log: RequestLog | None = None,
    ) -> None:
        self.service = service
        self.endpoint = endpoint
        self.events_endpoint = events_endpoint
        self.keys = keys
        self.max_message_bytes = max_message_bytes
        self.max_frame_bytes = max_frame_bytes
        self.heartbeat_interval_s = heartbeat_interval_s
        self.liveness = liveness
        self.request_log = request_log
        self.ctx = zmq.Context()
        self._zap_handler = ZapHandler(keys)
        self._zap: zmq.Socket | None = None
        self._router: zmq.Socket | None = None
        self._pub: zmq.Socket | None = None
        self._pull: zmq.Socket | None = None
        self._push: zmq.Socket | None = None
        self._push_lock = threading.Lock()
        self._outbox = f"inproc://loopbridge-zmq-out-{next(_ids)}"
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._stopping = threading.Event()
        self._quick: queue.SimpleQueue[_Quick | None] = queue.SimpleQueue()
        self._quick_thread: threading.Thread | None = None
        self._peers: dict[bytes, _Peer] = {}
        #: ``orphaned``: job replies dropped: their routing id was another connection's by then, or silent
        self.counters = {"received": 0, "errors": 0, "replies": 0, "orphaned": 0}

    # ---- life cycle --------------------------------------------------------------------------------

    def start(self) -> ZmqServer:
        opened: list[zmq.Socket] = []
        try:
            # bound before any socket that asks it: a connection is only admitted through it
            self._zap = self._open(zmq.REP, opened, hwm=0, public=False)
            self._zap.bind(ZAP_ENDPOINT)
            _seed_routing_ids()
            router = self._open(zmq.ROUTER, opened, hwm=10000, public=True)
            # libzmq bounds each frame before reading it; the whole message is checked as it arrives
            router.setsockopt(zmq.MAXMSGSIZE, min(self.max_frame_bytes, self.max_message_bytes))
            # off (libzmq's default, said outright): a second connection presenting a routing id in use is
            # ignored, so no one takes over a live route
            router.setsockopt(zmq.ROUTER_HANDOVER, 0)
            self.endpoint = self._bind(router, self.endpoint)
            if self.events_endpoint:
                pub = self._open(zmq.PUB, opened, hwm=10000, public=True)
                self.events_endpoint = self._bind(pub, self.events_endpoint)
                self._pub = pub
        except zmq.ZMQError:
            for sock in opened:
                sock.close(0)
            raise
        self._router = router
        # replies made on other threads come to the socket thread through an unbounded inproc pair
        self._pull = self._open(zmq.PULL, opened, hwm=0, public=False)
        self._pull.bind(self._outbox)
        self._push = self._open(zmq.PUSH, opened, hwm=0, public=False)
        self._push.connect(self._outbox)
        self.service.add_listener(self._on_event)
        self._quick_thread = threading.Thread(target=self._quick_loop, name="loopbridge-zmq-quick", daemon=True)
        self._quick_thread.start()
        self._thread = threading.Thread(target=self._loop, name="loopbridge-zmq", daemon=True)
        self._thread.start()
        return self

    def _open(self, kind: int, opened: list[zmq.Socket], hwm: int, public: bool) -> zmq.Socket:
        """A socket of ``kind`` with linger 0 and both high-water marks at ``hwm``; CURVE when it is
        ``public`` and the server has keys."""
        sock = self.ctx.socket(kind)
        opened.append(sock)
        sock.linger = 0
        sock.sndhwm = hwm
        sock.rcvhwm = hwm
        if public:
            self._secure(sock)
        return sock

    @staticmethod
    def _bind(sock: zmq.Socket, endpoint: str) -> str:
        """Bind ``sock``; returns the endpoint it is bound to (a ``:*`` port filled in)."""
        sock.bind(endpoint)
        return str(sock.getsockopt_string(zmq.LAST_ENDPOINT))

    def _secure(self, sock: zmq.Socket) -> None:
        """Every connection to a public socket goes through the ZAP handler (a ZAP domain makes libzmq ask
        it about NULL connections too); with keys, CURVE."""
        sock.zap_domain = ZAP_DOMAIN.encode()
        if self.keys is None:
            return
        sock.curve_server = True
        sock.curve_secretkey = self.keys.secret
        sock.curve_publickey = self.keys.public

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the socket loop and close every socket (linger 0)."""
        self.service.remove_listener(self._on_event)
        self._stopping.set()
        self._quick.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._quick_thread is not None:
            # a request still reading a model folder is not waited for past the timeout (its reply has
            # nowhere to go once the sockets close)
            self._quick_thread.join(timeout)
        with self._push_lock:
            for sock in (self._push, self._pull, self._pub, self._router, self._zap):
                if sock is not None:
                    sock.close(0)
            self._push = None
        self.ctx.term()

    # ---- sending -----------------------------------------------------------------------------------

    def _send(self, route: _Route, header: dict[str, Any], binary: Sequence[bytes] = ()) -> None:
        try:
            raw = p.encode_header(header)
        except ProtocolError:
            raw = _fit_header(header)
        frames = route.frames(raw, binary)
        if threading.get_ident() == self._thread_id:
            self._deliver(route.connection, frames)
            return
        with self._push_lock:
            if self._push is not None:
                self._push.send_multipart([b"R", route.connection.encode(), *frames], copy=False)

    def _deliver(self, connection: str, frames: list[Any]) -> None:
        """Send a reply to ``connection``'s request while the last message under its routing id came from that
        connection, within the liveness window; else drop it: another connection spoke under the id since
        (it is not who asked), or nobody did for so long that whoever holds the id now may be someone else.
        On the socket thread only."""
        identity = frames[0] if isinstance(frames[0], bytes) else frames[0].bytes  # a Frame when forwarded
        peer = self._peers.get(identity)
        if peer is None or peer.connection != connection:
            self.counters["orphaned"] += 1
            log.debug("reply for connection %s dropped: routing id %s is %s", connection[:8], identity.hex()[:10],
                      "silent" if peer is None else "another connection's now")
            return
        self._router_send(frames)

    def _router_send(self, frames: list[Any]) -> None:
        assert self._router is not None  # only called on the socket thread while it runs
        try:
            self._router.send_multipart(frames, copy=len(frames[-1]) < 65536)
            self.counters["replies"] += 1
        except zmq.ZMQError as exc:  # a peer gone mid-send, a full queue: never fatal
            log.debug("reply not sent: %s", exc)

    def _on_event(self, topic: str, fields: dict[str, Any]) -> None:
        if self._pub is None:
            return
        try:
            raw = p.encode_header({"type": topic, **fields})
        except (ProtocolError, TypeError, ValueError) as exc:
            log.debug("event %s not published: %s", topic, exc)
            return
        if threading.get_ident() == self._thread_id:
            self._pub.send_multipart([topic.encode(), raw])
            return
        with self._push_lock:
            if self._push is not None:
                self._push.send_multipart([b"P", topic.encode(), raw])

    def error(self, route: _Route, request_id: str | None, error: WireError, re: str | None = None) -> None:
        self.counters["errors"] += 1
        self._send(route, p.error_header(request_id, error.code, error.message, re, **error.details()))

    # ---- the loop ----------------------------------------------------------------------------------

    def _loop(self) -> None:
        self._thread_id = threading.get_ident()
        router, pull, zap = self._router, self._pull, self._zap
        assert router is not None and pull is not None and zap is not None  # start() made them
        poller = zmq.Poller()
        poller.register(zap, zmq.POLLIN)
        poller.register(router, zmq.POLLIN)
        poller.register(pull, zmq.POLLIN)
        next_beat = time.monotonic() + self.heartbeat_interval_s
        while not self._stopping.is_set():
            timeout_s = min(_TICK_S, max(0.0, next_beat - time.monotonic()))
            try:
                ready = dict(poller.poll(int(timeout_s * 1000)))
            except zmq.ZMQError as exc:
                if exc.errno == zmq.ETERM:
                    return
                raise
            if ready.get(zap):
                self._answer_zap(zap)
            backlog = False
            if ready.get(router):
                for _ in range(_BATCH):
                    try:
                        frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._handle(frames)
                else:
                    backlog = True  # heartbeats may wait in it: nobody counts as silent before they are read
            if ready.get(pull):
                for _ in range(_BATCH * 4):
                    try:
                        out = pull.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._forward(out)
            now = time.monotonic()
            if now >= next_beat:
                self._heartbeat(now, forget=not backlog)
                next_beat = now + self.heartbeat_interval_s

    def _answer_zap(self, zap: zmq.Socket) -> None:
        for _ in range(_BATCH):
            try:
                request = zap.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = self._zap_handler.answer(request)
            except Exception:  # a REP socket must answer what it received, or it takes no more requests
                log.exception("ZAP request refused: the handler failed")
                reply = [b"1.0", request[1] if len(request) > 1 else b"", b"500", b"ZAP handler failed", b"", b""]
            zap.send_multipart(reply)

    def _forward(self, out: list[zmq.Frame]) -> None:
        kind = out[0].bytes
        if kind == b"R":
            self._deliver(out[1].bytes.decode(), out[2:])
        elif kind == b"P" and self._pub is not None:
            try:
                self._pub.send_multipart(out[1:], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass

    def _heartbeat(self, now: float, forget: bool = True) -> None:
        """A heartbeat to every peer heard within the liveness window; with ``forget``, the others are
        forgotten (their jobs' replies are dropped from then on)."""
        horizon = now - self.heartbeat_interval_s * self.liveness
        gone = [identity for identity, peer in self._peers.items() if peer.seen < horizon] if forget else []
        for identity in gone:
            del self._peers[identity]
        if not self._peers:
            return
        raw = p.encode_header({"type": p.ReplyType.HEARTBEAT.value})
        for identity, peer in self._peers.items():
            self._router_send([identity, *([b""] if peer.delimiter else []), raw])

    # ---- one message ---------------------------------------------------------------------------------

    def _handle(self, frames: list[zmq.Frame]) -> None:
        started = time.perf_counter()
        self.counters["received"] += 1
        identity = frames[0].bytes
        rest = frames[1:]
        first = frames[1] if len(frames) > 1 else frames[0]  # the routing id frame is the ROUTER's own
        connection, user = _property(first, CONNECTION_PROPERTY), _property(first, USER_PROPERTY)
        if not connection:  # admitted without the ZAP handler: nothing to tie its jobs to
            log.error("message from %s without a connection id dropped: was it admitted without ZAP?",
                      identity.hex()[:10])
            return
        delimiter = len(rest) >= 2 and len(rest[0]) == 0
        if delimiter:
            rest = rest[1:]
        route = _Route(identity, delimiter, connection, user)
        self._heard(identity, delimiter, connection)
        request_id: str | None = None
        kind: MessageType | None = None
        try:
            if not rest or len(rest[0]) == 0:
                raise WireError(ErrorCode.MALFORMED, "empty message: expected a JSON header frame first")
            if len(rest) > p.MAX_FRAMES:
                request_id = p.peek_id(rest[0].bytes)
                raise WireError(ErrorCode.TOO_LARGE, f"{len(rest)} frames: at most {p.MAX_FRAMES} (a header and "
                                                     f"{p.MAX_FRAMES - 1} binary frames)")
            try:
                p.check_message_size([len(f) for f in rest], self.max_frame_bytes, self.max_message_bytes)
            except ProtocolError:
                request_id = p.peek_id(rest[0].bytes)
                raise
            try:
                header = p.decode_header(rest[0].bytes)
            except ProtocolError:
                request_id = p.peek_id(rest[0].bytes)
                raise
            request_id = header.get("id")
            kind = p.request_type(header)
            if kind is MessageType.HEARTBEAT:
                return
            if request_id is None:
                raise WireError(ErrorCode.MALFORMED, f"a {kind.value} request needs an id: a string of "
                                                     f"1–{p.MAX_ID_CHARS} characters the reply will carry", "id")
            fields = p.check_fields(kind, header)
            self._dispatch(route, kind, request_id, fields, [f.buffer for f in rest[1:]], started)
        except Exception as exc:
            self._failed(route, request_id, kind, exc, started)

    def _failed(self, route: _Route, request_id: str | None, kind: MessageType | None, exc: Exception,
                started: float) -> None:
        error = WireError.from_exception(exc)
        if error.code is ErrorCode.INTERNAL:
            log.exception("message from %s failed", route.peer)
        self.error(route, request_id, error, kind.value if kind is not None else None)
        self._log(route, kind.value if kind else "?", request_id, f"error {error.code.value}", started)

    def _heard(self, identity: bytes, delimiter: bool, connection: str) -> None:
        peer = self._peers.get(identity)
        if peer is None:
            self._peers[identity] = _Peer(time.monotonic(), delimiter, connection)
            return
        if peer.connection != connection:
            log.info("routing id %s is another connection's now: replies to the earlier one's jobs are dropped",
                     identity.hex()[:10])
        peer.seen, peer.delimiter, peer.connection = time.monotonic(), delimiter, connection

    def _dispatch(self, route: _Route, kind: MessageType, request_id: str, fields: dict[str, Any],
                  binary: list[memoryview], started: float) -> None:
        namespace = route.owner
        if kind in p.JOB_TYPES:
            sink = _JobSink(self, route, request_id, kind, fields.get("audio", True), started)
            self.service.start_job(namespace, kind, request_id, fields, binary, sink)
            return
        if kind is MessageType.CANCEL:
            target = fields.get("target")
            if not target:
                raise WireError(ErrorCode.BAD_REQUEST, "cancel needs target: the id of the job to cancel", "target")
            reply = self.service.cancel(namespace, target)
        elif kind is MessageType.PING:
            self._send(route, {"type": p.ReplyType.PONG.value, "id": request_id, "token": fields.get("token", "")})
            self._log(route, kind.value, request_id, "ok", started)
            return
        elif kind in _OFF_LOOP:
            self._quick.put(_Quick(route, kind, request_id, fields, started))
            return
        else:
            reply = self.service.quick(kind, fields, namespace)
        self._reply(route, kind, request_id, reply, started)

    def _reply(self, route: _Route, kind: MessageType, request_id: str, reply: dict[str, Any],
               started: float) -> None:
        self._send(route, {"type": p.ReplyType.REPLY.value, "re": kind.value, "id": request_id, **reply})
        self._log(route, kind.value, request_id, "ok", started)

    def _quick_loop(self) -> None:
        """Answer the quick requests that read model folders or the store (:data:`_OFF_LOOP`), one at a time."""
        while (item := self._quick.get()) is not None:
            try:
                reply = self.service.quick(item.kind, item.fields, item.route.owner)
            except Exception as exc:
                self._failed(item.route, item.request_id, item.kind, exc, item.started)
            else:
                self._reply(item.route, item.kind, item.request_id, reply, item.started)

    def _log(self, route: _Route, kind: str, request_id: str | None, outcome: str, started: float) -> None:
        if self.request_log is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.request_log(f"zmq {route.peer} {kind} id={request_id} {outcome} {elapsed_ms:.1f} ms")


class _JobSink(JobSink):
    def __init__(self, server: ZmqServer, route: _Route, request_id: str, kind: MessageType, audio: bool,
                 started: float) -> None:
        self.server = server
        self.route = route
        self.request_id = request_id
        self.kind = kind
        self.audio = audio
        self.started = started

    def accepted(self, position: int) -> None:
        self.server._send(self.route, {"type": p.ReplyType.ACCEPTED.value, "re": self.kind.value,
                                       "id": self.request_id, "position": position})

    def progress(self, fraction: float) -> None:
        self.server._send(self.route, {"type": p.ReplyType.PROGRESS.value, "id": self.request_id,
                                       "fraction": round(fraction, 4)})

    def done(self, samples: list[Sample], extra: dict[str, Any]) -> None:
        described = []
        binary: list[bytes] = []
        for sample in samples:
            fields = sample_fields(sample)
            if self.audio:
                binary.append(sample.data)
                fields["frame"] = len(binary)
            described.append(fields)
        header = {"type": p.ReplyType.REPLY.value, "re": self.kind.value, "id": self.request_id,
                  "count": len(samples), "samples": described, **extra}
        self.server._send(self.route, header, binary)
        cached = " cached" if samples and all(s.cached for s in samples) else ""
        self.server._log(self.route, self.kind.value, self.request_id, f"ok {len(samples)} sample(s){cached}",
                         self.started)

    def failed(self, error: WireError) -> None:
        self.server.error(self.route, self.request_id, error, self.kind.value)
        self.server._log(self.route, self.kind.value, self.request_id, f"error {error.code.value}: {error.message}",
                         self.started)


def _property(frame: zmq.Frame, name: str) -> str:
    """A metadata property of the connection ``frame`` came on ("" when it has none)."""
    try:
        return str(frame.get(name) or "")
    except zmq.ZMQError:
        return ""


def _seed_routing_ids() -> None:
    """Make the ROUTER's automatic routing ids unguessable: libzmq counts them up from ``rand()``, which it
    never seeds, so the first one is the same in every process (``006b8b4567`` with glibc). A peer could
    present the next one itself, and libzmq aborts the process when it then gives that id to a peer that
    chose none. Seeding the C library's generator here, just before the ROUTER is made, starts the count
    at a random 32-bit number. Where the C library cannot be reached the ids stay libzmq's (jobs never
    depend on them)."""
    try:
        ctypes.CDLL(None).srand(ctypes.c_uint(secrets.randbits(32)))
    except (OSError, AttributeError, TypeError) as exc:
        log.debug("automatic routing ids keep libzmq's start: %s", exc)


def _fit_header(header: dict[str, Any]) -> bytes:
    """A reply too large for one header: its longest list is cut until it fits, marked ``truncated``."""
    lists = [k for k, v in header.items() if isinstance(v, list) and v]
    if not lists:
        return p.encode_header(p.error_header(header.get("id"), ErrorCode.TOO_LARGE,
                                              "the reply does not fit in a header", header.get("re")))
    name = max(lists, key=lambda k: len(json.dumps(header[k], default=str)))
    items = list(header[name])
    low, high = 0, len(items)
    while low < high:  # the most items that fit
        mid = (low + high + 1) // 2
        try:
            p.encode_header({**header, name: items[:mid], "truncated": True})
            low = mid
        except ProtocolError:
            high = mid - 1
    return p.encode_header({**header, name: items[:low], "truncated": True})
