"""The host's facts about the song, turned into the engine's terms in one place.

A DAW, the Max for Live device, an OSC controller or the command line says what the song is: its
tempo, its time signature (numerator and denominator), its sample rate and how many of its bars a
loop should last. The engine counts a bar as ``beats_per_bar`` quarter notes of ``tempo_bpm``, so a
meter has to be put in those terms; this module is the only place that does it (the plugin and the
device send the meter as the host gives it):

- a bar of the meter is ``q = numerator * 4 / denominator`` quarter notes; a whole ``q`` of 1–16 is
  the engine's bar as it is, and the bars stay as asked (6/8: 3 beats, 2/2: 4, 12/8: 6);
- any other meter takes its numerator as the engine's bar and scales the bars by ``4 / denominator``,
  which keeps the length in quarter notes (two bars of 7/8 are one bar of 7; 5/8 is 2.5 quarters a
  bar: one bar of it is 0.5 bar of 5);
- a numerator beyond 16 (with no whole ``q`` of 1–16) takes the largest of its divisors up to 16 as the
  engine's bar, the bars scaled to keep the quarter notes (18/4: bars of 9, twice as many; 17/8: bars
  of 1);
- bars are then held to the engine's range; a length beyond it is not exact, and
  :attr:`EngineBars.note` says what is made instead, for the front end's status line.

``tests/data/host_meters.json`` lists meters and bar counts with the engine bars, quarter notes and
sample frames they must give; the Python, C++ and JavaScript tests all read it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .conform.key import key_name
from .conform.warp import DEFAULT_WARP
from .errors import RequestError
from .request import (
    BARS_MAX,
    BARS_MIN,
    BEATS_PER_BAR_RANGE,
    DEFAULT_LOUDNESS_LUFS,
    DEFAULT_SAMPLE_RATE,
    SAMPLE_RATE_RANGE,
    TEMPO_MAX_BPM,
    TEMPO_MIN_BPM,
    ConformSpec,
    GenerateRequest,
    Kind,
    check_int,
    check_range,
)

#: time-signature numerators a host may send (Live allows 1–99)
METER_NUMERATOR_RANGE = (1, 99)
#: time-signature denominators a host may send
METER_DENOMINATORS = (1, 2, 4, 8, 16, 32)
#: host bars accepted before the engine's range is applied (a meter may scale them into it)
HOST_BARS_MAX = 1024.0


@dataclass(frozen=True)
class EngineBars:
    """A length in bars of the host's meter, as the engine takes it.

    ``beats_per_bar`` quarter notes a bar, ``bars`` of them; ``exact`` is False when the engine
    cannot hold the length asked for, and ``note`` then says what is made instead ("" when exact).
    """

    beats_per_bar: int
    bars: float
    exact: bool = True
    note: str = ""

    @property
    def quarter_notes(self) -> float:
        return self.beats_per_bar * self.bars


def _decimal(value: float) -> str:
    """Up to three decimals, no trailing zeros ("0.25", "1", "3.5"), as the front ends' status lines show."""
    text = f"{round(value, 3):.3f}".rstrip("0").rstrip(".")
    return text if text != "-0" else "0"


def _bars_text(bars: float) -> str:
    text = _decimal(bars)
    return f"{text} bar" if text == "1" else f"{text} bars"


def engine_bars(numerator: int, denominator: int, bars: float) -> EngineBars:
    """``bars`` bars of ``numerator``/``denominator`` in the engine's terms (see the module docstring).

    Raises :class:`RequestError` for a numerator, denominator or bar count no host sends.
    """
    check_int("meter_numerator", numerator, *METER_NUMERATOR_RANGE)
    if isinstance(denominator, bool) or not isinstance(denominator, int) or denominator not in METER_DENOMINATORS:
        raise RequestError("meter_denominator", denominator, "one of " + ", ".join(map(str, METER_DENOMINATORS)))
    check_range("bars", bars, 1e-6, HOST_BARS_MAX, " bars of the host's meter")
    low, high = BEATS_PER_BAR_RANGE
    quarters_per_bar = numerator * 4 / denominator
    if (numerator * 4) % denominator == 0 and low <= quarters_per_bar <= high:
        beats_per_bar, scaled, exact = (numerator * 4) // denominator, float(bars), True
    elif low <= numerator <= high:
        beats_per_bar, scaled, exact = numerator, bars * 4.0 / denominator, True
    else:
        # a numerator beyond 16 (17/8, 18/4): the largest of its divisors that fits is the engine's bar
        beats_per_bar = max(d for d in range(low, high + 1) if numerator % d == 0)
        scaled, exact = bars * quarters_per_bar / beats_per_bar, True
    held = min(max(scaled, BARS_MIN), BARS_MAX)
    exact = exact and held == scaled
    note = "" if exact else (
        f"{_bars_text(bars)} of {numerator}/{denominator} cannot be made exactly: "
        f"{_decimal(held * beats_per_bar)} quarter notes instead of {_decimal(bars * quarters_per_bar)} "
        f"({_bars_text(held)} of {beats_per_bar} beat{'s' if beats_per_bar != 1 else ''})"
    )
    return EngineBars(beats_per_bar, held, exact, note)


@dataclass(frozen=True)
class HostFacts:
    """What the host says about the song; ``None`` where it says nothing (the request's own value holds).

    ``meter_numerator``/``meter_denominator`` are the time signature as the host shows it, and then
    ``bars`` counts bars of that meter. Without a meter, ``beats_per_bar`` may give the engine's bar
    directly (quarter notes; the command line's ``--beats-per-bar``) and ``bars`` counts those.
    ``sample_rate`` is the rate of the files to write. ``key`` is the song's key when renders should
    be matched to it (any spelling :func:`~.conform.key.parse_key` takes; kept in its canonical
    spelling, "Am", "F#"; None or "off": no key matching). Checked at construction (RequestError).
    """

    tempo_bpm: float | None = None
    meter_numerator: int | None = None
    meter_denominator: int | None = None
    beats_per_bar: int | None = None
    bars: float | None = None
    sample_rate: int | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", key_name(self.key))
        given = (self.meter_numerator is not None, self.meter_denominator is not None)
        if given[0] != given[1]:
            missing = "meter_denominator" if given[0] else "meter_numerator"
            raise RequestError(missing, None, "the time signature's numerator and denominator together")
        if given[0] and self.beats_per_bar is not None:
            raise RequestError("beats_per_bar", self.beats_per_bar, "either the host's meter "
                               "(meter_numerator, meter_denominator) or beats_per_bar, not both")
        if self.beats_per_bar is not None:
            check_int("beats_per_bar", self.beats_per_bar, *BEATS_PER_BAR_RANGE)
        if self.meter_numerator is not None and self.meter_denominator is not None:
            engine_bars(self.meter_numerator, self.meter_denominator, self.bars if self.bars is not None else 1.0)
        elif self.bars is not None:
            check_range("bars", self.bars, BARS_MIN, BARS_MAX, " bars")
        if self.tempo_bpm is not None:
            check_range("tempo_bpm", self.tempo_bpm, TEMPO_MIN_BPM, TEMPO_MAX_BPM, " BPM")
        if self.sample_rate is not None:
            check_int("sample_rate", self.sample_rate, *SAMPLE_RATE_RANGE, " Hz")

    @property
    def has_meter(self) -> bool:
        return self.meter_numerator is not None and self.meter_denominator is not None

    def length(self) -> tuple[int | None, float | None, str]:
        """``(beats_per_bar, bars, note)`` in the engine's terms; None for what the host does not say.

        With a meter, the bar is the meter's (see the module docstring) and ``bars`` are scaled to it;
        ``note`` says what is made instead when that is not exact ("" otherwise).
        """
        if self.meter_numerator is not None and self.meter_denominator is not None:
            length = engine_bars(self.meter_numerator, self.meter_denominator,
                                 self.bars if self.bars is not None else 1.0)
            if self.bars is None:
                return length.beats_per_bar, None, ""
            return length.beats_per_bar, length.bars, length.note
        return self.beats_per_bar, None if self.bars is None else float(self.bars), ""

    @property
    def notes(self) -> list[str]:
        """What could not be made exactly, for the front end to show (empty when all is exact)."""
        note = self.length()[2]
        return [note] if note else []

    def request_fields(self) -> dict[str, Any]:
        """The :class:`GenerateRequest` fields the host decides: tempo, the engine's bar, bars."""
        beats_per_bar, bars, _ = self.length()
        fields: dict[str, Any] = {"tempo_bpm": self.tempo_bpm, "beats_per_bar": beats_per_bar, "bars": bars}
        return {name: value for name, value in fields.items() if value is not None}

    def replace(self, **changes: Any) -> HostFacts:
        return dataclasses.replace(self, **changes)


def conform_spec(
    request: GenerateRequest,
    host: HostFacts | None = None,
    *,
    pitch_semitones: float = 0.0,
    root_note: int | None = None,
    loudness_lufs: float | None = None,
    warp: str = DEFAULT_WARP,
) -> ConformSpec:
    """How to fit renders of ``request`` to the song ``host`` describes: the one place a spec is made.

    What the host does not say comes from the request: its tempo, its bar and, for loops and
    textures, its bars (one-shots keep their own length). Files are written at the host's sample
    rate, else :data:`DEFAULT_SAMPLE_RATE`; loops and textures are brought to ``loudness_lufs``, else
    :data:`DEFAULT_LOUDNESS_LUFS`; pitched material is moved to the host's key when it names one; loops
    are stretched in the ``warp`` mode (``conform/warp.py``).
    Raises :class:`RequestError` for a value out of range.
    """
    host = host or HostFacts()
    beats_per_bar, bars, _ = host.length()
    if request.output_bars is not None and request.kind in (Kind.LOOP, Kind.TEXTURE):
        # a task's result holds its source's bars (and the new ones): the host's bar count sized the
        # source, and the result keeps the grid the source sits on
        bars = request.output_bars
    elif bars is None and request.kind in (Kind.LOOP, Kind.TEXTURE):
        bars = request.bars
    return ConformSpec(
        tempo_bpm=host.tempo_bpm if host.tempo_bpm is not None else request.tempo_bpm,
        bars=bars,
        beats_per_bar=beats_per_bar if beats_per_bar is not None else request.beats_per_bar,
        pitch_semitones=pitch_semitones,
        sample_rate=host.sample_rate if host.sample_rate is not None else DEFAULT_SAMPLE_RATE,
        root_note=root_note,
        loudness_lufs=DEFAULT_LOUDNESS_LUFS if loudness_lufs is None else loudness_lufs,
        key=host.key,
        warp=warp,
    )
