"""Who gets the engine's OSC messages, and how many bytes an answer may take.

- A *sender* is a host and a UDP source port. ``/loopbridge/controller/register [PORT]``, sent from
  the socket a controller sends from, makes it a *registered controller*: its replies and the
  session's feedback go to PORT on its host (default: its source port). Nothing else moves a
  sender's replies: an unregistered sender's go to its own source port, whoever else on its host
  registered.
- A *reply* (the answer to a message, and the messages of a job it started) goes to its sender
  only. *Feedback* (a session parameter that changed, the session's sample, progress and status,
  the motion tempo) goes to every registered controller, and to the sender whose message caused it.
- What one packet draws back to its sender — a bundle's messages together, the jobs they start
  included — is at most ``MAX_OSC_UNREGISTERED_REPLY_BYTES`` for an unregistered sender and
  ``MAX_OSC_REPLY_BYTES`` for a registered one; what does not fit is not sent, and one
  ``/loopbridge/error`` ``too_large`` (counted in the bound) says so. A JSON reply is cut to fit,
  and to ``MAX_OSC_JSON_BYTES``. So a small packet from a forged source address draws little.
- A host holds at most ``MAX_OSC_CONTROLLERS_PER_HOST`` registrations (a new one replaces the host's
  oldest), the engine ``MAX_OSC_CONTROLLERS`` (beyond that a new host's is refused as ``busy``),
  which bounds how far one change of the session fans out.

This module knows no sockets: the OSC server sends, these say where and how much.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from . import protocol as p
from .protocol import ErrorCode
from .replies import WireError

Address = tuple[str, int]

#: bytes of a packet's bound kept for the one error that says its replies were cut
NOTICE_BYTES = 256


class ReplyBudget:
    """The bytes one packet may still draw back to its sender; a bundle's messages and the jobs they
    start share it (job messages come from other threads)."""

    def __init__(self) -> None:
        self.spent = 0
        self._cut = False
        self._lock = threading.Lock()

    def room(self, limit: int) -> int:
        """Bytes a reply may still take under ``limit``."""
        with self._lock:
            return 0 if self._cut else max(0, limit - NOTICE_BYTES - self.spent)

    def admit(self, size: int, limit: int) -> Literal["send", "notice", "drop"]:
        """Whether a reply of ``size`` bytes goes out under ``limit`` (and is counted): "send"; else,
        the first time, "notice" (send the error that says the replies stop here, within
        NOTICE_BYTES); then "drop". Once one reply did not fit, none after it goes out either, so
        the answer stops where the sender is told it does."""
        with self._lock:
            if self._cut:
                return "drop"
            if self.spent + size <= limit - NOTICE_BYTES:
                self.spent += size
                return "send"
            self._cut = True
            return "notice"


@dataclass(frozen=True)
class Sender:
    """Where a message came from, where its replies go, and what its packet may still draw."""

    address: Address
    target: Address
    registered: bool
    budget: ReplyBudget

    @property
    def limit(self) -> int:
        return p.MAX_OSC_REPLY_BYTES if self.registered else p.MAX_OSC_UNREGISTERED_REPLY_BYTES


class Registrations:
    """The registered controllers: a sender's host and source port -> the port its messages go to,
    oldest first."""

    def __init__(self, per_host: int = p.MAX_OSC_CONTROLLERS_PER_HOST, total: int = p.MAX_OSC_CONTROLLERS) -> None:
        self.per_host = per_host
        self.total = total
        self._ports: OrderedDict[Address, int] = OrderedDict()
        self._lock = threading.Lock()

    def sender(self, address: Address, budget: ReplyBudget) -> Sender:
        with self._lock:
            port = self._ports.get(address)
        if port is None:
            return Sender(address, address, False, budget)
        return Sender(address, (address[0], port), True, budget)

    def register(self, sender: Address, port: int) -> None:
        """Send ``sender``'s messages to ``port`` on its host. Raises WireError(busy) when the engine
        holds its most registrations and ``sender``'s host none."""
        with self._lock:
            if sender in self._ports:
                self._ports.move_to_end(sender)
            else:
                same_host = [key for key in self._ports if key[0] == sender[0]]
                if len(same_host) >= self.per_host:
                    del self._ports[same_host[0]]  # the host's oldest: a controller that re-registers returns
                elif len(self._ports) >= self.total:
                    raise WireError(ErrorCode.BUSY, f"{self.total} controllers are registered, the most this engine "
                                                    "keeps: unregister one first")
            self._ports[sender] = port

    def unregister(self, sender: Address, port: int) -> None:
        """Forget ``sender``'s registration and every registration of ``port`` on its host (a sender
        whose source port changes, as oscsend's does, can only name the port)."""
        with self._lock:
            self._ports.pop(sender, None)
            for key in [k for k, v in self._ports.items() if k[0] == sender[0] and v == port]:
                del self._ports[key]

    def targets(self) -> list[Address]:
        """Where feedback goes: every registered controller's port, once each."""
        with self._lock:
            return sorted({(host, port) for (host, _), port in self._ports.items()})


def fit_json(value: Any, max_bytes: int) -> str:
    """``value`` as compact JSON of at most ``max_bytes`` (UTF-8): while it is longer, its longest
    list (anywhere in it) loses its second half, and an object at the top gets ``"truncated": true``;
    what still does not fit is ``{"truncated":true}`` (an object) or ``[]``."""
    text = json.dumps(value, default=str, separators=(",", ":"))
    if len(text.encode()) <= max_bytes:
        return text
    value = json.loads(text)  # plain, and ours to cut
    while True:
        lists = [items for items in _lists(value) if items]
        if not lists:
            break
        longest = max(lists, key=lambda items: len(json.dumps(items, separators=(",", ":"))))
        del longest[len(longest) // 2:]
        if isinstance(value, dict):
            value["truncated"] = True
        text = json.dumps(value, separators=(",", ":"))
        if len(text.encode()) <= max_bytes:
            return text
    return '{"truncated":true}' if isinstance(value, dict) else "[]"


def _lists(value: Any) -> list[list[Any]]:
    found = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            found.append(item)
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return found


__all__ = ["NOTICE_BYTES", "Address", "Registrations", "ReplyBudget", "Sender", "fit_json"]
