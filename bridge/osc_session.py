"""The OSC controller session: the parameters controllers set and get, and the sample they select.

One session per engine, shared by every controller (a phone and the Live device see one state).
Its parameters carry the request fields' own names (``protocol.SESSION_PARAMS``; the first names
``tempo``, ``pitch``, ``quality``, ``morph``, ``strength`` and ``audio_prompt`` are still taken and
fed back, ``protocol.SESSION_ALIASES``), so a session request is built by the same constructor as a
ZeroMQ one (:class:`~.fields.OrderBuilder`). Generating fixes a *base* request; the Variation and
Morph knobs move around it and are served from the store when pre-rendered; tempo, meter, pitch and
rate re-conform the current sample.

The session knows no sockets: it talks through a :class:`Controllers` (the OSC server), and answers
each :class:`~.osc_routes.Sender` the way the server routes it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from loopbridge.engine.conform.key import key_name
from loopbridge.engine.frontdoor import Order, Sample
from loopbridge.engine.host import engine_bars
from loopbridge.engine.prerender import snap_morph
from loopbridge.engine.request import DEFAULT_LOUDNESS_LUFS, DEFAULT_SAMPLE_RATE, GenerateRequest, Kind, random_seed

from . import protocol as p
from .osc_routes import Sender
from .protocol import OSC_ROOT, ErrorCode, MessageType
from .replies import JobSink, WireError
from .service import Service

SESSION_DEFAULTS: dict[str, Any] = {
    "prompt": "",
    "morph_prompt": "",
    "model": "default",
    "kind": Kind.ONE_SHOT.value,
    "seed": 0,
    "variation": 0,
    "morph_amount": 0.0,
    "steps": 0,
    "bars": 1.0,
    "tempo_bpm": 120.0,
    "meter_numerator": 4,
    "meter_denominator": 4,
    "beats_per_bar": 4,
    "pitch_semitones": 0.0,
    "loudness_lufs": DEFAULT_LOUDNESS_LUFS,
    "audio_prompt_strength": 0.5,
    "sample_rate": DEFAULT_SAMPLE_RATE,
    "audio_prompt_path": "",
    "key": "off",
}

#: parameters that follow from others: the engine's bar from the meter, the meter from beats_per_bar
_METER = ("meter_numerator", "meter_denominator", "beats_per_bar")


class Controllers(Protocol):
    """How the session reaches controllers (the OSC server implements it): a reply to the sender of a
    message; feedback to every registered controller and (as a reply) to the sender that caused it,
    None for the engine's own changes; an error to a sender."""

    def reply(self, sender: Sender, address: str, *args: Any, request_id: str = "") -> None: ...

    def broadcast(self, sender: Sender | None, address: str, *args: Any) -> None: ...

    def error(self, sender: Sender, request_id: str, error: WireError) -> None: ...


def sample_args(sample: Sample, path: Path) -> list[Any]:
    """The arguments of ``/job/sample`` (after id and index) and ``/session/sample``."""
    root = sample.root_note if sample.root_note is not None else -1
    confidence = sample.key_confidence
    return [str(path), sample.kind.value, float(sample.tempo_bpm), float(sample.beats), int(root),
            int(sample.variation), sample.render_key, sample.music_key or "",
            float(confidence) if confidence is not None else -1.0]


class Session:
    """The session's parameters and current sample (see the module docstring)."""

    NAMESPACE = "osc-session"

    def __init__(self, service: Service, controllers: Controllers) -> None:
        self.service = service
        self.controllers = controllers
        self.params: dict[str, Any] = dict(SESSION_DEFAULTS)
        self.params["model"] = service.default_model
        if service.orders.default_loudness_lufs is not None:
            self.params["loudness_lufs"] = service.orders.default_loudness_lufs
        self.base: GenerateRequest | None = None
        self.current: list[Sample] = []
        self.current_paths: list[Path] = []
        self._lock = threading.Lock()
        self._job_counter = 0
        self._job_id: str | None = None

    # ---- parameters ------------------------------------------------------------------------------------

    @staticmethod
    def name_of(name: str) -> str:
        """A parameter's name as the session keeps it (a first name becomes the request field's)."""
        return p.SESSION_ALIASES.get(name, name)

    def get(self, name: str, sender: Sender) -> None:
        self.controllers.reply(sender, f"{OSC_ROOT}/session/{name}", self.params[self.name_of(name)])

    def send_state(self, sender: Sender) -> None:
        """Every parameter (under each of its names), the current sample, then ``/session/state``."""
        for name in [*p.SESSION_PARAMS, *p.SESSION_ALIASES]:
            self.controllers.reply(sender, f"{OSC_ROOT}/session/{name}", self.params[self.name_of(name)])
        with self._lock:
            current = list(zip(self.current, self.current_paths, strict=True))
        for sample, path in current:
            self.controllers.reply(sender, f"{OSC_ROOT}/session/sample", *sample_args(sample, path))
        self.controllers.reply(sender, f"{OSC_ROOT}/session/state")

    def set(self, name: str, value: Any, sender: Sender) -> None:
        """Set a parameter (by either of its names); feedback to every controller; a selecting or
        conforming parameter serves the matching sample. A value out of range is refused (raises)
        and the sender's fader snaps back to the value in force."""
        field = self.name_of(name)
        expected = p.SESSION_PARAMS.get(field)
        if expected is None:
            raise WireError(ErrorCode.UNKNOWN_TYPE, f"{name} is not a session parameter: expected one of "
                                                    f"{', '.join(p.SESSION_PARAMS)}")
        try:
            value = p.lenient(field, value, expected)
            trial = self._with(field, value)
            self.order(trial)  # raises for a value out of range
            if field == "model":
                self.service.door.capabilities(value)
        except Exception:
            self.controllers.reply(sender, f"{OSC_ROOT}/session/{name}", self.params[field])
            raise
        changed = [n for n in p.SESSION_PARAMS if trial[n] != self.params[n]] or [field]
        self.params = trial
        for changed_field in changed:
            self._feedback(sender, changed_field)
        if field in p.SESSION_SELECTING_PARAMS:
            base = self.base or self.order(self.params).request
            assert base is not None
            if field == "variation":
                request = base.with_variation(self.params[field])
            elif base.morph_prompt is not None:
                request = base.replace(morph_amount=self.params[field])
            else:
                return  # no morph target: nothing to select
            self.base = request
            self._run(MessageType.VARIATION, self.order(self.params, request), sender)
        elif field in p.SESSION_CONFORMING_PARAMS:
            self._reconform(sender)

    def _with(self, field: str, value: Any) -> dict[str, Any]:
        """The parameters with ``field`` set, and what follows from it."""
        params = {**self.params, field: value}
        if field == "morph_amount":
            params["morph_amount"] = snap_morph(value)
        elif field == "kind":
            params["kind"] = Kind.parse(value).value
        elif field == "key":
            params["key"] = key_name(value) or "off"  # fed back in the canonical spelling ("a minor" -> "Am")
        elif field == "beats_per_bar":
            params["meter_numerator"], params["meter_denominator"] = value, 4  # N beats of a quarter note
        if field in _METER:
            params["beats_per_bar"] = engine_bars(params["meter_numerator"], params["meter_denominator"],
                                                  1.0).beats_per_bar
        return params

    def _feedback(self, sender: Sender | None, field: str) -> None:
        for name in (field, *[alias for alias, to in p.SESSION_ALIASES.items() if to == field]):
            self.controllers.broadcast(sender, f"{OSC_ROOT}/session/{name}", self.params[field])

    # ---- requests --------------------------------------------------------------------------------------

    def fields(self, params: dict[str, Any]) -> dict[str, Any]:
        """The session's parameters as the protocol's request fields."""
        kind = Kind.parse(params["kind"])
        fields: dict[str, Any] = {name: params[name] for name in (
            "prompt", "model", "seed", "variation", "tempo_bpm", "meter_numerator", "meter_denominator",
            "pitch_semitones", "loudness_lufs", "audio_prompt_strength", "sample_rate")}
        fields["kind"] = kind.value
        if params["key"] != "off":
            fields["key"] = params["key"]
        if kind in (Kind.LOOP, Kind.TEXTURE):  # one-shots and kits keep their own length
            fields["bars"] = params["bars"]
        if params["steps"]:
            fields["steps"] = params["steps"]
        if params["morph_prompt"]:
            fields["morph_prompt"], fields["morph_amount"] = params["morph_prompt"], params["morph_amount"]
        if params["audio_prompt_path"]:
            fields["audio_prompt_path"] = params["audio_prompt_path"]
        return fields

    def order(self, params: dict[str, Any], request: GenerateRequest | None = None) -> Order:
        """The order ``params`` make (for ``request`` when given: a base moved by a knob). Raises for a
        value out of range."""
        order = self.service.orders.order(MessageType.GENERATE, self.fields(params))
        return order if request is None else Order(request, order.host, pitch_semitones=order.pitch_semitones,
                                                   loudness_lufs=order.loudness_lufs)

    def generate(self, sender: Sender) -> None:
        seed = random_seed()
        order = self.order({**self.params, "seed": seed, "variation": 0})
        self.params["seed"], self.params["variation"] = seed, 0
        self.controllers.broadcast(sender, f"{OSC_ROOT}/session/seed", seed)
        self.controllers.broadcast(sender, f"{OSC_ROOT}/session/variation", 0)
        self.base = order.request
        self._run(MessageType.GENERATE, order, sender)

    def follow_tempo(self, bpm: float) -> None:
        """Take ``bpm`` as the session tempo (the dancer's): pushed to every controller, and the
        current sample re-conformed to it (no model runs)."""
        value = p.lenient("tempo_bpm", bpm, "float")
        self.order({**self.params, "tempo_bpm": value})  # raises for a tempo out of range
        self.params["tempo_bpm"] = value
        self._feedback(None, "tempo_bpm")
        self.service.publish(p.EventTopic.STATE.value, {**self.service.state_fields(), "session_tempo_bpm": value})
        self._reconform(None)

    def _reconform(self, sender: Sender | None) -> None:
        """The current sample again under the session's conform settings (tempo, meter, pitch, rate)."""
        with self._lock:
            render_keys = [s.render_key for s in self.current]
        fields = self.fields(self.params)
        if len(render_keys) == 1:
            order = self.service.orders.order(MessageType.CONFORM, {
                "render_key": render_keys[0], **{name: fields[name] for name in (
                    "tempo_bpm", "meter_numerator", "meter_denominator", "bars", "sample_rate", "pitch_semitones",
                    "loudness_lufs", "key")
                    if name in fields}})
            self._run(MessageType.CONFORM, order, sender)
        elif self.base is not None:
            self._run(MessageType.VARIATION, self.order(self.params, self.base), sender)

    def _run(self, kind: MessageType, order: Order, sender: Sender | None) -> None:
        with self._lock:
            previous = self._job_id
            self._job_counter += 1
            job_id = f"session-{self._job_counter}"
            self._job_id = job_id
        if previous is not None:
            # a knob turned on: only the newest position matters (pre-renders of it live on)
            self.service.cancel_job(self.NAMESPACE, previous)
        self.service.run(self.NAMESPACE, kind, job_id, order, _SessionSink(self, job_id, sender))

    def _is_current(self, job_id: str) -> bool:
        with self._lock:
            return self._job_id == job_id


class _SessionSink(JobSink):
    def __init__(self, session: Session, job_id: str, sender: Sender | None) -> None:
        self.session = session
        self.controllers = session.controllers
        self.job_id = job_id
        self.sender = sender

    def accepted(self, position: int) -> None:
        self.controllers.broadcast(self.sender, f"{OSC_ROOT}/session/status",
                                   "rendering" if position == 0 else f"queued ({position} ahead)")

    def progress(self, fraction: float) -> None:
        # to registered controllers only (the sender among them when it registered): fifty of these would
        # leave an unregistered sender no room for the sample
        if self.session._is_current(self.job_id):
            self.controllers.broadcast(None, f"{OSC_ROOT}/session/progress", float(fraction))

    def done(self, samples: list[Sample], extra: dict[str, Any]) -> None:
        if not self.session._is_current(self.job_id):
            return
        paths = [self.session.service.export(s) for s in samples]
        with self.session._lock:
            self.session.current, self.session.current_paths = list(samples), paths
        for sample, path in zip(samples, paths, strict=True):
            self.controllers.broadcast(self.sender, f"{OSC_ROOT}/session/sample", *sample_args(sample, path))
        status = "ready (from the store)" if samples and all(s.cached for s in samples) else "ready"
        notes = extra.get("notes", [])
        self.controllers.broadcast(self.sender, f"{OSC_ROOT}/session/status",
                                   f"{status}: {'; '.join(notes)}" if notes else status)

    def failed(self, error: WireError) -> None:
        if error.code is ErrorCode.CANCELLED and not self.session._is_current(self.job_id):
            return  # superseded by a newer knob position
        self.controllers.broadcast(self.sender, f"{OSC_ROOT}/session/status", f"error: {error.message}")
        if self.sender is not None:  # None: the engine's own change (a tempo followed), no one to answer
            self.controllers.error(self.sender, self.job_id, error)


__all__ = ["SESSION_DEFAULTS", "Controllers", "Session", "sample_args"]
