"""Live Dance2Music over OSC: a motion stream in, the dancer's tempo out, the session following it.

Controllers (a phone's accelerometer app, a pose tracker) send frames to ``/loopbridge/motion/joints``
(x y z per joint) or ``/loopbridge/motion/accel`` (x y z); a frame may lead with its own time in
seconds (then a joints frame holds 3·joints + 1 values, an accelerometer frame 4), which is better
than the arrival time the engine uses otherwise: network jitter does not enter the estimate, and a
recorded stream can be sent faster than it was danced.

A thread of its own estimates the tempo of the last :data:`WINDOW_S` seconds every
:data:`ESTIMATE_INTERVAL_S` of motion (the OSC thread only files frames) and pushes it to every
registered controller (``/loopbridge/motion/tempo``) and on the PUB socket (topic ``motion``).
While following is on, a confident tempo that holds for two estimates in a row and differs from the
session's by more than :data:`FOLLOW_MIN_CHANGE` becomes the session tempo: pushed as
``/loopbridge/session/tempo``, the current sample re-conformed to it, and every later sample
generated at it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from loopbridge.engine.errors import RequestError
from loopbridge.engine.motion import MotionKind, MotionStream, TempoReading
from loopbridge.engine.request import TEMPO_MAX_BPM, TEMPO_MIN_BPM

log = logging.getLogger(__name__)

#: seconds of motion the estimate looks at
WINDOW_S = 10.0
#: a new estimate after this much more motion (seconds)
ESTIMATE_INTERVAL_S = 0.25
#: estimates below this confidence are pushed but never followed
FOLLOW_MIN_CONFIDENCE = 0.3
#: the session tempo moves only for a change larger than this (relative)
FOLLOW_MIN_CHANGE = 0.01
#: two estimates in a row must agree this closely (relative) before the session follows
FOLLOW_AGREEMENT = 0.01
#: the session tempo is rounded to this (BPM), so re-conformed files are shared between close estimates
FOLLOW_STEP_BPM = 0.1


class MotionFollower:
    """Turns a stream of motion frames into tempo readings and, when following, session tempo changes.

    ``on_reading(reading)`` hears every estimate; ``on_follow(bpm)`` is called when the session
    should take a new tempo; ``session_tempo()`` says the tempo in force. Call :meth:`start` before
    frames arrive and :meth:`stop` at the end.
    """

    def __init__(
        self,
        on_reading: Callable[[TempoReading | None], None],
        on_follow: Callable[[float], None],
        session_tempo: Callable[[], float],
        window_s: float = WINDOW_S,
    ) -> None:
        self.stream = MotionStream(window_s=window_s)
        self.on_reading = on_reading
        self.on_follow = on_follow
        self.session_tempo = session_tempo
        self.following = True
        self.latest: TempoReading | None = None
        self._previous: TempoReading | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._last_estimate_at: float | None = None
        self._clock_origin = time.monotonic()
        self._thread: threading.Thread | None = None

    # ---- life cycle -----------------------------------------------------------------------------------

    def start(self) -> MotionFollower:
        self._thread = threading.Thread(target=self._loop, name="loopbridge-motion", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- input ------------------------------------------------------------------------------------------

    def frame(self, kind: MotionKind, values: list[float]) -> None:
        """File one frame (values as sent: an optional leading time, then x y z ...).

        Raises :class:`RequestError` for a value count that fits neither layout.
        """
        timed = len(values) % 3 == 1 if kind is MotionKind.JOINTS else len(values) == 4
        if kind is MotionKind.ACCEL and len(values) not in (3, 4):
            raise RequestError("accel", f"{len(values)} values", "x y z, or a time in seconds then x y z")
        if kind is MotionKind.JOINTS and (len(values) < 3 or len(values) % 3 == 2):
            raise RequestError("joints", f"{len(values)} values",
                               "x y z per joint (3·joints values), or a time in seconds then x y z per joint")
        if timed:
            time_s, coordinates = float(values[0]), values[1:]
        else:
            time_s, coordinates = time.monotonic() - self._clock_origin, values
        self.stream.push(kind, coordinates, time_s)
        with self._lock:
            due = self._last_estimate_at is None or not 0 <= time_s - self._last_estimate_at < ESTIMATE_INTERVAL_S
            if due:
                self._last_estimate_at = time_s
        if due:
            self._wake.set()

    def reset(self) -> None:
        self.stream.reset()
        with self._lock:
            self.latest = self._previous = None
            self._last_estimate_at = None

    def set_following(self, following: bool) -> None:
        self.following = bool(following)
        if self.following and self.latest is not None:
            self._consider(self.latest)

    # ---- estimating ----------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            woken = self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stopping.is_set():
                return
            if not woken:  # no new motion: nothing new to say
                continue
            try:
                self.estimate_now()
            except Exception:  # an estimate must never stop the stream
                log.exception("motion tempo estimate failed")

    def estimate_now(self) -> TempoReading | None:
        """Estimate the window's tempo now (also called by the thread), report it and maybe follow it."""
        reading = self.stream.estimate()
        with self._lock:
            self._previous, self.latest = self.latest, reading
        if reading is not None:
            self.on_reading(reading)
            self._consider(reading)
        return reading

    def _consider(self, reading: TempoReading) -> None:
        if not self.following or reading.confidence < FOLLOW_MIN_CONFIDENCE:
            return
        previous = self._previous
        if previous is None or abs(reading.bpm / previous.bpm - 1.0) > FOLLOW_AGREEMENT:
            return
        bpm = round(min(max(reading.bpm, TEMPO_MIN_BPM), TEMPO_MAX_BPM) / FOLLOW_STEP_BPM) * FOLLOW_STEP_BPM
        bpm = round(bpm, 2)
        if abs(bpm / self.session_tempo() - 1.0) > FOLLOW_MIN_CHANGE:
            self.on_follow(bpm)


def reading_args(reading: TempoReading | None, following: bool) -> list[Any]:
    """The arguments of ``/loopbridge/motion/tempo`` for a reading (zeros while there is none)."""
    if reading is None:
        return [0.0, 0.0, 0.0, int(following)]
    return [float(reading.bpm), float(reading.confidence), float(reading.phase), int(following)]
