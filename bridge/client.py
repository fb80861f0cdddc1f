"""The Python client of a running engine, over ZeroMQ.

    from loopbridge.bridge.client import Client
    with Client("tcp://127.0.0.1:5555") as client:
        reply = client.generate(prompt="kick", model="default", tempo_bpm=128, variations=4)
        for sample in reply.samples:
            Path(sample.filename).write_bytes(sample.wav)

The socket is driven by whichever thread is waiting for a reply (it sends, polls and hands every
reply to the request it answers), so a request costs no hand-over between threads; with several
threads waiting, one drives and the others sleep until their reply is in. A small background
thread keeps things going while nobody waits: it sends heartbeats, counts the engine's (a liveness
counter), and when the engine falls silent the socket is closed, and after a pause (1 s doubling
to 30 s, from the protocol) a new one connected, and every unanswered request sent again. Each
socket presents a routing id of its own, random and never reused: the engine ties a job to the
connection that asked for it, so a new connection has nothing to take over and asks again. Requests
are safe to repeat: a render is keyed by its content, so the engine answers a repeat from its store
or by joining the render already on its way. The client is thread-safe.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from . import protocol as p
from .protocol import ErrorCode, MessageType, ProtocolError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]


class RemoteError(Exception):
    """The engine answered a request with an error; ``code`` is its :class:`ErrorCode` value."""

    def __init__(self, header: Mapping[str, Any]) -> None:
        self.header = dict(header)
        self.code = str(header.get("code", ErrorCode.INTERNAL.value))
        self.message = str(header.get("message", ""))
        self.field = header.get("field")
        super().__init__(f"{self.code}: {self.message}")


@dataclass(frozen=True)
class Sample:
    """One sample of a reply: its fields (``SAMPLE_FIELDS``) and its WAV bytes when they were sent
    (a read-only ``memoryview`` of the received frame: no copy is made)."""

    fields: Mapping[str, Any]
    wav: memoryview | bytes | None

    def __getattr__(self, name: str) -> Any:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class Reply:
    """An answer from the engine: the header and the binary frames after it (bytes-like, not copied)."""

    header: Mapping[str, Any]
    frames: Sequence[memoryview | bytes] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.header[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.header.get(name, default)

    @property
    def samples(self) -> list[Sample]:
        out = []
        for fields in self.header.get("samples", []):
            index = fields.get("frame")
            wav = self.frames[index - 1] if isinstance(index, int) and 1 <= index <= len(self.frames) else None
            out.append(Sample(fields, wav))
        return out


class Pending:
    """A request on its way: wait for its :class:`Reply` with :meth:`result`."""

    def __init__(self, request_id: str, kind: MessageType, frames: list[bytes],
                 progress: ProgressCallback | None, client: Client | None = None) -> None:
        self.id = request_id
        self._client = client
        self.kind = kind
        self.frames = frames
        self.progress = progress
        #: the queue position the engine reported (None until accepted; jobs only)
        self.position: int | None = None
        self.sent_at = 0.0
        self.sends = 0
        self._reply: Reply | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def _finish(self, reply: Reply | None = None, error: BaseException | None = None) -> None:
        self._reply, self._error = reply, error
        self._done.set()

    def result(self, timeout: float | None = None) -> Reply:
        """The reply; raises :class:`RemoteError` for an error reply, TimeoutError when none came in time."""
        done = self._client._wait(self, timeout) if self._client is not None else self._done.wait(timeout)
        if not done:
            raise TimeoutError(f"no reply to {self.kind.value} {self.id!r} within {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._reply is not None  # set together with the done flag
        return self._reply


class Client:
    """A connection to one engine (see the module docstring).

    ``server_key`` (40 z85 characters, a ``server.key`` file or its folder) turns on CURVE;
    ``client_keys`` is the client's ``(public, secret)`` pair (a fresh pair is made when omitted;
    an engine with an authorized-keys folder only lets in the clients it lists). Timing defaults
    come from the protocol; tests may shorten them.
    """

    def __init__(
        self,
        endpoint: str = p.DEFAULT_ZMQ_ENDPOINT,
        *,
        server_key: str | bytes | Path | None = None,
        client_keys: tuple[bytes, bytes] | None = None,
        heartbeat_interval_s: float = p.HEARTBEAT_INTERVAL_S,
        liveness: int = p.HEARTBEAT_LIVENESS,
        reconnect_initial_s: float = p.RECONNECT_INITIAL_S,
        reconnect_max_s: float = p.RECONNECT_MAX_S,
        request_timeout_s: float = p.REQUEST_TIMEOUT_S,
        name: str = "loopbridge-python",
    ) -> None:
        self.endpoint = endpoint
        self.heartbeat_interval_s = heartbeat_interval_s
        self.liveness = liveness
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.request_timeout_s = request_timeout_s
        self.name = name
        self._server_key: bytes | None = None
        if server_key is not None:
            from .security import load_public_key

            self._server_key = server_key if isinstance(server_key, bytes) else load_public_key(server_key)
            self._client_keys = client_keys or zmq.curve_keypair()
        self._ctx = zmq.Context()
        self._outgoing: queue.SimpleQueue[Pending] = queue.SimpleQueue()
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()  # guards _pending
        # whoever holds _io_lock drives the socket; the others wait on _arrived
        self._io_lock = threading.Lock()
        self._arrived = threading.Condition()
        self._followers = 0  # threads waiting on _arrived (changed under it)
        # request ids: unique per client without a random draw per request
        self._id_prefix = uuid.uuid4().hex[:8] + "-"
        self._counter = itertools.count(1)
        # a thread that cannot drive wakes the driver's poll through a socket pair (a few microseconds)
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._closing = threading.Event()
        #: how many times the client has reconnected after losing the engine
        self.reconnects = 0
        #: whether the engine has been heard within the liveness window
        self.connected = False
        #: when (``time.monotonic()``) the engine last sent anything, heartbeats included; None: never
        self.last_heard: float | None = None
        self._heartbeat = p.encode_header({"type": MessageType.HEARTBEAT.value})
        now = time.monotonic()
        self._sock: zmq.Socket | None = self._socket()
        self._last_heard = now
        self._next_beat = now  # say hello at once so the engine starts its heartbeats
        self._backoff = reconnect_initial_s
        self._reconnect_at = 0.0
        self._polled: tuple[zmq.Socket | None, zmq.Poller] | None = None
        self._thread = threading.Thread(target=self._background, name="loopbridge-client", daemon=True)
        self._thread.start()

    # ---- public API ----------------------------------------------------------------------------------

    def submit(
        self,
        kind: MessageType | str,
        fields: Mapping[str, Any] | None = None,
        frames: Sequence[bytes] = (),
        progress: ProgressCallback | None = None,
        request_id: str | None = None,
    ) -> Pending:
        """Send a request; returns at once. Raises ProtocolError for a header that cannot be encoded and
        for frames over the protocol's size limits (the engine would drop them unread)."""
        if self._closing.is_set():
            raise RuntimeError("the client is closed")
        kind = MessageType(kind)
        request_id = request_id or f"{self._id_prefix}{next(self._counter)}"
        header = {"v": p.PROTOCOL_VERSION, "type": kind.value, "id": request_id,
                  **{k: v for k, v in (fields or {}).items() if v is not None}}
        encoded = [p.encode_header(header), *[bytes(f) for f in frames]]
        p.check_message_size([len(f) for f in encoded])
        pending = Pending(request_id, kind, encoded, progress, self)
        with self._lock:
            if request_id in self._pending:
                raise ValueError(f"id={request_id!r} is already waiting for a reply")
            self._pending[request_id] = pending
        if self._io_lock.acquire(blocking=False):
            try:
                if self._sock is not None:
                    self._send(self._sock, pending)
                else:
                    self._outgoing.put(pending)  # reconnecting: every unanswered request goes out then
            finally:
                self._io_lock.release()
        else:
            self._outgoing.put(pending)
            self._wake()
        return pending

    def request(
        self,
        kind: MessageType | str,
        fields: Mapping[str, Any] | None = None,
        frames: Sequence[bytes] = (),
        progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Send a request and wait for its reply (``timeout`` None: as long as the engine lives).

        Raises :class:`RemoteError` for an error reply and TimeoutError when none came in time.
        """
        pending = self.submit(kind, fields, frames, progress)
        try:
            return pending.result(timeout)
        except TimeoutError:
            self._forget(pending.id)
            raise

    def hello(self, timeout: float | None = None) -> Reply:
        return self.request(MessageType.HELLO, {"client": self.name, "client_version": _version()},
                            timeout=self._quick(timeout))

    def models(self, timeout: float | None = None) -> list[dict[str, Any]]:
        return list(self.request(MessageType.MODELS, timeout=self._quick(timeout))["models"])

    def capabilities(self, model: str, timeout: float | None = None) -> dict[str, Any]:
        return dict(self.request(MessageType.CAPABILITIES, {"model": model}, timeout=self._quick(timeout))
                    ["capabilities"])

    def generate(self, progress: ProgressCallback | None = None, timeout: float | None = None,
                 frames: Sequence[bytes] = (), **fields: Any) -> Reply:
        """Render and conform; ``fields`` as the protocol's generate fields (``prompt``, ``model``, ...)."""
        return self.request(MessageType.GENERATE, fields, frames, progress, timeout)

    def variation(self, progress: ProgressCallback | None = None, timeout: float | None = None,
                  **fields: Any) -> Reply:
        return self.request(MessageType.VARIATION, fields, (), progress, timeout)

    def morph(self, progress: ProgressCallback | None = None, timeout: float | None = None, **fields: Any) -> Reply:
        return self.request(MessageType.MORPH, fields, (), progress, timeout)

    def conform(self, render_key: str, timeout: float | None = None, **fields: Any) -> Reply:
        return self.request(MessageType.CONFORM, {"render_key": render_key, **fields}, timeout=timeout)

    def conform_file(self, data: bytes, timeout: float | None = None, **fields: Any) -> Reply:
        """Fit an audio file's bytes (WAV, FLAC, AIFF, OGG, MP3) to the song; ``fields`` as the protocol's
        conform_file fields (``tempo_bpm``, ``bars``, ``name``, ``source_tempo_bpm``...). The reply says how
        sure the engine was of the file's tempo (``tempo_confidence``, ``low_confidence``)."""
        return self.request(MessageType.CONFORM_FILE, {"audio_frame": 1, **fields}, [data], timeout=timeout)

    def recall(self, render_key: str, timeout: float | None = None, **fields: Any) -> Reply:
        """A stored render by key (or a prefix of 6+ hex digits) conformed to ``fields`` (``tempo_bpm``, the
        song's ``key``...)."""
        return self.request(MessageType.RECALL, {"render_key": render_key, **fields}, timeout=timeout)

    def cancel(self, target: str, timeout: float | None = None) -> Reply:
        return self.request(MessageType.CANCEL, {"target": target}, timeout=self._quick(timeout))

    def history(self, limit: int = 50, offset: int = 0, model: str | None = None,
                timeout: float | None = None) -> list[dict[str, Any]]:
        reply = self.request(MessageType.HISTORY, {"limit": limit, "offset": offset, "model": model},
                             timeout=self._quick(timeout))
        return list(reply["entries"])

    def status(self, timeout: float | None = None) -> Reply:
        return self.request(MessageType.STATUS, timeout=self._quick(timeout))

    def ping(self, token: str = "", timeout: float | None = None) -> Reply:
        return self.request(MessageType.PING, {"token": token}, timeout=self._quick(timeout))

    def _quick(self, timeout: float | None) -> float:
        # a quick request is retried every request_timeout_s; give up after a few tries
        return timeout if timeout is not None else self.request_timeout_s * 3

    def close(self) -> None:
        """Stop the background thread and close the sockets (linger 0); unanswered requests fail."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._wake()
        self._thread.join(10)
        with self._io_lock:  # a thread driving the socket notices the closing within one poll
            if self._sock is not None:
                self._sock.close(0)
                self._sock = None
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for item in pending:
            item._finish(error=ConnectionError("the client was closed before the engine answered"))
        self._notify()
        with self._wake_lock:
            self._wake_write.close()
            self._wake_read.close()
        self._ctx.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the I/O thread ----------------------------------------------------------------------------------

    def _wake(self) -> None:
        with self._wake_lock:
            if self._wake_pending or self._wake_write.fileno() < 0:
                return  # a wake-up is already on its way (or the client is closed)
            self._wake_pending = True
            try:
                self._wake_write.send(b"\0")
            except OSError:
                pass

    def _drain_wake(self) -> None:
        with self._wake_lock:
            self._wake_pending = False
            try:
                while self._wake_read.recv(4096):
                    pass
            except OSError:  # BlockingIOError: nothing more to read
                pass

    def _forget(self, request_id: str) -> None:
        with self._lock:
            self._pending.pop(request_id, None)

    def _socket(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.DEALER)
        sock.linger = 0
        # unguessable, and new for each connection: nobody can present it, and no reply to an earlier
        # connection's request can reach this one
        sock.routing_id = b"lb-" + secrets.token_bytes(16)
        sock.setsockopt(zmq.MAXMSGSIZE, p.MAX_REPLY_FRAME_BYTES)
        sock.sndhwm = 10000
        sock.rcvhwm = 10000
        if self._server_key is not None:
            sock.curve_serverkey = self._server_key
            sock.curve_publickey, sock.curve_secretkey = self._client_keys
        sock.connect(self.endpoint)
        return sock

    def _notify(self) -> None:
        if self._followers:  # only threads waiting on another's driving need a nudge
            with self._arrived:
                self._arrived.notify_all()

    def _wait(self, pending: Pending, timeout: float | None) -> bool:
        """Wait for ``pending``'s reply, driving the socket when no other thread does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not pending.done:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if self._closing.is_set():
                return pending._done.wait(0)
            if self._io_lock.acquire(blocking=False):
                try:
                    self._drive(lambda: pending.done, deadline)
                finally:
                    self._io_lock.release()
                    self._notify()  # another waiter may take over the socket now
            else:
                with self._arrived:
                    # counted before the check: a notifier that finds no follower set ``done`` before
                    # this check, so no wake-up is lost
                    self._followers += 1
                    try:
                        if not pending.done:
                            self._arrived.wait(0.05 if remaining is None else min(remaining, 0.05))
                    finally:
                        self._followers -= 1
        return True

    def _background(self) -> None:
        """Heartbeats, liveness and replies to requests nobody is waiting for, while no thread drives."""
        while not self._closing.wait(min(0.1, self.heartbeat_interval_s / 2)):
            if self._io_lock.acquire(blocking=False):
                try:
                    self._drive(lambda: True, None)
                finally:
                    self._io_lock.release()
                    self._notify()

    def _drive(self, stop: Callable[[], bool], deadline: float | None) -> None:
        """Send what is queued, hand out what arrives, keep the heartbeat, until ``stop()`` or the deadline.

        Called with ``_io_lock`` held. ``stop`` returning True at once makes this one pass without waiting.
        """
        first = True
        while not self._closing.is_set():
            now = time.monotonic()
            self._housekeeping(now)
            sock = self._sock
            while sock is not None:
                try:
                    pending = self._outgoing.get_nowait()
                except queue.Empty:
                    break
                if not pending.done:
                    self._send(sock, pending)
            if stop() and not first:
                return
            wait_until = self._reconnect_at if sock is None else self._next_beat
            if deadline is not None:
                wait_until = min(wait_until, deadline)
            timeout_s = 0.0 if (stop() and first) else max(0.0, min(wait_until - now, 0.25))
            first = False
            ready = dict(self._poller(sock).poll(int(timeout_s * 1000)))
            if ready.get(self._wake_read):
                self._drain_wake()
            if sock is not None and ready.get(sock):
                for _ in range(256):
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._last_heard = self.last_heard = time.monotonic()
                    self.connected = True
                    self._backoff = self.reconnect_initial_s
                    self._receive(frames)
                self._notify()
            if stop():
                return
            if deadline is not None and time.monotonic() >= deadline:
                return

    def _poller(self, sock: zmq.Socket | None) -> zmq.Poller:
        if self._polled is None or self._polled[0] is not sock:
            poller = zmq.Poller()
            poller.register(self._wake_read, zmq.POLLIN)
            if sock is not None:
                poller.register(sock, zmq.POLLIN)
            self._polled = (sock, poller)
        return self._polled[1]

    def _housekeeping(self, now: float) -> None:
        sock = self._sock
        if sock is None:
            if now < self._reconnect_at:
                return
            # the pause is over: a new socket (a new routing id, a new connection), and every unanswered request again
            sock = self._sock = self._socket()
            self.reconnects += 1
            self._last_heard = now
            self._next_beat = now
            with self._lock:
                unanswered = [item for item in self._pending.values() if not item.done]
            while True:  # they are all sent below; drop the queued copies
                try:
                    self._outgoing.get_nowait()
                except queue.Empty:
                    break
            for item in unanswered:
                self._send(sock, item)
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_interval_s
            try:
                sock.send(self._heartbeat, zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
            self._retry_quick(sock, now)
        if now - self._last_heard > self.heartbeat_interval_s * self.liveness:
            # the engine is gone (or never came): drop the socket, connect again after a pause
            self.connected = False
            sock.close(0)
            self._sock = None
            self._reconnect_at = now + self._backoff
            log.info("engine at %s silent for %.1f s: reconnecting in %.1f s", self.endpoint, now - self._last_heard,
                     self._backoff)
            self._backoff = min(self._backoff * 2, self.reconnect_max_s)

    def _send(self, sock: zmq.Socket, pending: Pending) -> None:
        pending.sent_at = time.monotonic()
        pending.sends += 1
        try:
            sock.send_multipart(pending.frames, zmq.NOBLOCK, copy=len(pending.frames[-1]) < 65536)
        except zmq.ZMQError as exc:  # a full queue: the retry or the reconnect sends it again
            log.debug("request %s not sent now: %s", pending.id, exc)

    def _retry_quick(self, sock: zmq.Socket, now: float) -> None:
        with self._lock:
            stale = [item for item in self._pending.values()
                     if item.kind not in p.JOB_TYPES and not item.done and now - item.sent_at > self.request_timeout_s]
        for item in stale:
            self._send(sock, item)

    def _receive(self, frames: list[zmq.Frame]) -> None:
        try:
            header = p.decode_header(frames[0].bytes)
        except ProtocolError as exc:
            log.warning("ignored a message from the engine that is not a valid header: %s", exc)
            return
        kind = header.get("type")
        if kind == p.ReplyType.HEARTBEAT.value:
            return
        request_id = header.get("id")
        with self._lock:
            pending = self._pending.get(request_id) if isinstance(request_id, str) else None
            if pending is not None and kind in (p.ReplyType.REPLY.value, p.ReplyType.ERROR.value,
                                                p.ReplyType.PONG.value):
                del self._pending[request_id]  # type: ignore[arg-type]
        if pending is None:
            return  # an answer to a request given up on, or a duplicate after a resend
        if kind == p.ReplyType.ACCEPTED.value:
            position = header.get("position")
            pending.position = position if isinstance(position, int) else None
        elif kind == p.ReplyType.PROGRESS.value:
            fraction = header.get("fraction")
            if pending.progress is not None and isinstance(fraction, int | float):
                try:
                    pending.progress(float(fraction))
                except Exception:
                    log.exception("progress callback failed")
        elif kind == p.ReplyType.ERROR.value:
            pending._finish(error=RemoteError(header))
        else:
            pending._finish(reply=Reply(header, [f.buffer for f in frames[1:]]))


class Events:
    """A subscription to the engine's events (the PUB socket): ``next()`` returns ``(topic, header)``.

    Not thread-safe: use it from one thread.
    """

    def __init__(self, endpoint: str = p.DEFAULT_EVENTS_ENDPOINT, topics: Sequence[str] = (),
                 server_key: str | bytes | Path | None = None, client_keys: tuple[bytes, bytes] | None = None) -> None:
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.linger = 0
        self._sock.setsockopt(zmq.MAXMSGSIZE, p.MAX_HEADER_BYTES * 2)
        if server_key is not None:
            from .security import load_public_key

            self._sock.curve_serverkey = server_key if isinstance(server_key, bytes) else load_public_key(server_key)
            self._sock.curve_publickey, self._sock.curve_secretkey = client_keys or zmq.curve_keypair()
        for topic in topics or [""]:
            self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._sock.connect(endpoint)

    def next(self, timeout: float | None = None) -> tuple[str, dict[str, Any]] | None:
        """The next event, or None when none came within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._sock.poll(None if remaining is None else int(remaining * 1000)):
                return None
            frames = self._sock.recv_multipart()
            if len(frames) != 2:
                continue
            try:
                return frames[0].decode(), p.decode_header(frames[1])
            except (ProtocolError, UnicodeDecodeError):
                continue

    def close(self) -> None:
        self._sock.close(0)
        self._ctx.term()

    def __enter__(self) -> Events:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loopbridge")
    except PackageNotFoundError:
        return "unknown"


def default_endpoint() -> str:
    """``$LOOPBRIDGE_SERVER`` or the protocol's default endpoint."""
    return os.environ.get("LOOPBRIDGE_SERVER", p.DEFAULT_ZMQ_ENDPOINT)
