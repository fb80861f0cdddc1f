"""Warp modes: how a loop is stretched, chosen per material the way a producer picks a DAW's warp mode.

``"complex"`` is the engine for anything with notes in it (Ableton's Complex for a full mix): Rubber
Band's finer engine (R3) with the settings :class:`~.stretcher.StretchOptions` names. ``"beats"`` is
the engine for drums and other unpitched loops (Ableton's Beats): Rubber Band's faster engine (R2) in
its crisp mode with its short window, which resets the phase at each hit, so the hit keeps its attack
where the stretch puts it, and costs less than R3. It detunes held notes (a held 110 Hz bass stretched
120 -> 132 BPM by about 80 cents, the 52 Hz note held under Sonic Pi's ``loop_breakbeat`` by 20-140
cents, where R3 stays within a few): only material with no pitch takes it. ``"auto"`` picks:
``"beats"`` for a loop with no pitch, ``"complex"`` for the rest. ``"complex"`` is the default
(:data:`DEFAULT_WARP`): with the pre-echo limited band by band (``alignment.py``) it keeps recorded drum
loops' hits closer to the grid pooled (95th percentile 8.7 ms against 11.1 ms for ``"auto"`` over
Sonic Pi's nine loops at three tempi, ``bench/bench_real_loops.py``), though ``"auto"`` costs less
(0.066x against 0.077x the loop's duration) and is closer on seven of the nine loops taken one by one.

Whether a loop has pitch is measured once per render, by the key detection the conform stage runs
anyway (:func:`~.key.detect_key`): its ``tonalness``, the share of the sound's energy in stable
spectral peaks, under :data:`~.key.MIN_TONALNESS` (drums, noise) is no pitch. A model's word (a kit's
part, a drum class: :attr:`~.pipeline.SourceInfo.pitched`) counts first. ``bench/bench_real_loops.py``
prints the default beside ``"auto"`` on recorded loops, pooled and loop by loop.

Only loops are stretched, so only loops are warped; one-shots, textures and kit parts are never
stretched (their pitch shifts keep the engine :class:`~.stretcher.StretchOptions` names).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import RequestError
from .key import MIN_TONALNESS
from .stretcher import StretchOptions

WARP_MODES = ("auto", "beats", "complex")
#: the mode a loop is stretched in unless another is asked for
DEFAULT_WARP = "complex"


def check_warp(value: object, field: str = "warp") -> str:
    """``value`` when it is a warp mode (:data:`WARP_MODES`); raises :class:`RequestError` naming it otherwise."""
    if not isinstance(value, str) or value not in WARP_MODES:
        raise RequestError(field, value, "one of: " + ", ".join(WARP_MODES))
    return value


@dataclass(frozen=True)
class WarpChoice:
    """The warp mode a loop is stretched with (``"beats"`` or ``"complex"``), the rule that chose it
    (``"the default"``, ``"asked"``, ``"no pitch (the model's word)"``, ``"no pitch heard"``, ``"pitched"``) and the
    stretch options it runs with."""

    mode: str
    rule: str
    options: StretchOptions


def choose_warp(warp: str, options: StretchOptions, pitched: bool | None, tonalness: float | None) -> WarpChoice:
    """The warp mode for a loop asked for with ``warp`` (:data:`WARP_MODES`).

    ``pitched``: the model's word (None: it says nothing); ``tonalness``: what the key detection
    measured (None: not measured). ``"auto"`` takes ``"beats"`` when the model says the loop has no
    pitch or, without its word, the tonalness is under :data:`~.key.MIN_TONALNESS`; ``"complex"``
    otherwise, unmeasured material included. ``options``: the settings ``"complex"`` keeps.
    """
    check_warp(warp)
    if warp != "auto":
        return WarpChoice(warp, "the default" if warp == DEFAULT_WARP else "asked",
                          beats_options(options) if warp == "beats" else options)
    if pitched is False:
        return WarpChoice("beats", "no pitch (the model's word)", beats_options(options))
    if pitched is None and tonalness is not None and tonalness < MIN_TONALNESS:
        return WarpChoice("beats", "no pitch heard", beats_options(options))
    return WarpChoice("complex", "pitched", options)


def beats_options(options: StretchOptions) -> StretchOptions:
    """``options`` with the beats mode's engine: R2, crisp transients, short window (alignment and
    the pitch method as ``options`` say)."""
    return dataclasses.replace(options, high_quality=False, transient_mode="crisp", window="short")
