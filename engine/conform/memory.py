"""What the conform stage holds in memory, and a budget that bounds conforms running together.

The stage works on whole arrays: a loop is repeated, resampled, stretched and re-timed as one piece
of the song's length, then written as one WAV file, so its peak grows with frames × channels at the
song's rate (and, before stretching, at the render's tempo). :func:`peak_bytes` adds up what each
step holds at once, from the same frame counts the steps use, and takes the largest; the
coefficients were measured by ``bench/bench_conform_memory.py`` (peak resident memory of the stage
in a process of its own) and carry a margin, so the estimate stays above what is measured.

:class:`ConformMemory` is the budget: the front door refuses an order whose files and conform could
never fit in it (:class:`~loopbridge.engine.errors.TooLargeError`, before any work), and each job
that conforms first takes what its next conform needs from it (:meth:`ConformMemory.lease`),
waiting while other conforms hold the rest, so conforms running together stay within it.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import TooLargeError
from .alignment import PRE_ECHO_CHUNK_MARGIN_S, PRE_ECHO_CHUNK_S, PRE_ECHO_FFT_ROWS
from .key import ANALYSIS_MAX_S as KEY_ANALYSIS_MAX_S
from .onsets import (
    TRANSIENT_FRAME_RATE_HZ,
    TRANSIENT_SPECTRUM_KEPT_BYTES,
    transient_block_bytes,
    transient_fft_size,
    transient_splits,
)

#: bytes of a float32 sample, the stage's working type
FLOAT32 = 4
#: bytes of a sample in the WAV files the stage writes (24-bit PCM)
PCM24 = 3
#: Rubber Band (pedalboard.time_stretch) beside its input: up to three times its float32 output (the
#: output gathered in a growing buffer, then copied out), half as much again as its input (more
#: when it shifts pitch) and a fixed part; measured up to 2.7x, 1.5x and 20 MB, stretching and
#: shifting mono and stereo at 48 and 192 kHz by 0.25-4x and -7 to +5 semitones
STRETCHER_OUTPUT_COPIES = 3.0
STRETCHER_INPUT_COPIES = 1.5
STRETCHER_FIXED_BYTES = 24 * 1024 * 1024
#: estimating a tempo holds about this much per frame it analyses (at most a minute of the render):
#: a float64 mix and a spectrum with its flux (measured 21–27 bytes)
TEMPO_ANALYSIS_BYTES_PER_FRAME = 32
#: detecting a key holds about this much per frame it analyses (at most 30 s of the render: a float32 mono
#: mix and the audio read for it), beside a few MB of spectra at its own low rate
KEY_ANALYSIS_BYTES_PER_FRAME = 8
#: room for what does not grow with the audio: the WAV writer's blocks, libraries' own buffers
FIXED_OVERHEAD_BYTES = 32 * 1024 * 1024
#: the estimate is raised by this share on top, for allocator slack
MARGIN = 0.1
#: the default conform memory: this share of the memory available when the engine starts
DEFAULT_SHARE_OF_AVAILABLE = 0.25


def wav_bytes(channels: int, frames: int) -> int:
    """Bytes of the 24-bit WAV file the stage writes for ``frames`` of ``channels`` (headers aside)."""
    return channels * frames * PCM24


def level_bytes(frames: int) -> int:
    """What setting the levels of ``frames`` holds beside the audio (:mod:`.levels`: the gain each
    frame needs, float32 and mono; its blocks are in :data:`FIXED_OVERHEAD_BYTES`)."""
    return FLOAT32 * frames


def stretch_bytes(channels: int, input_frames: int, output_frames: int) -> float:
    """What stretching ``input_frames`` into ``output_frames`` holds, its input included."""
    held = (1.0 + STRETCHER_INPUT_COPIES) * input_frames + STRETCHER_OUTPUT_COPIES * output_frames
    return channels * FLOAT32 * held + STRETCHER_FIXED_BYTES


def onset_bytes(frames: int, sample_rate: int, split: bool = False) -> int:
    """What measuring onsets on ``frames`` at ``sample_rate`` holds beside the audio
    (:func:`~.onsets.transient_flux`: its spectrum when it is kept, and one block of frames, two when it is
    measured over two threads: ``split``, where :func:`~.onsets.transient_splits` says)."""
    n_fft = transient_fft_size(sample_rate)
    hop = max(1, int(round(sample_rate / TRANSIENT_FRAME_RATE_HZ)))
    spectrum = (frames // hop) * (n_fft // 2 + 1) * FLOAT32
    blocks = 2 if split and transient_splits(frames, sample_rate) else 1
    return (spectrum if spectrum <= TRANSIENT_SPECTRUM_KEPT_BYTES else 0) + blocks * transient_block_bytes(sample_rate)


#: the source's onset curve is measured beside the stretch (``pipeline.OVERLAP_SOURCE_ANALYSIS``) when
#: measuring it holds at most this much (:func:`onset_bytes`): at 44.1 and 48 kHz always (a block of its
#: frames, 24 MiB, and a kept spectrum of at most 64 MiB); at 96 kHz (a 48 MiB block) when the source,
#: rolls included, is under 21 s or over 33 s (its spectrum no longer kept); at 192 kHz never (a block
#: alone is 96 MiB), so a long conform at a high rate does not hold it on top of the stretcher's peak
ONSETS_BESIDE_MAX_BYTES = 90 * 1024 * 1024


def onsets_beside(frames: int, sample_rate: int) -> bool:
    """Whether the onset curve of a source of ``frames`` at ``sample_rate`` is measured while it is
    stretched (see :data:`ONSETS_BESIDE_MAX_BYTES`), else after."""
    return onset_bytes(frames, sample_rate) <= ONSETS_BESIDE_MAX_BYTES


def pre_echo_bytes(channels: int, sample_rate: int, split: bool = False) -> int:
    """What splitting audio into bands (for the pre-echo) holds beside the audio: a stretch of it with its
    margins, its spectrum, the weighted copies and bands of one group of bands transformed together
    (:data:`~.alignment.PRE_ECHO_FFT_ROWS`), the stretch before it, a gain per sample of it and a frequency
    per bin; it does not grow with the audio. ``split``: the stream limited in two halves over two threads
    (:func:`~.alignment.limit_pre_echo`): twice that, and the two stretches either side of the split taken
    before either half starts."""
    frames = int(math.ceil((PRE_ECHO_CHUNK_S + 2 * PRE_ECHO_CHUNK_MARGIN_S) * sample_rate)) + 4 * sample_rate // 1000
    group = max(1, -(-PRE_ECHO_FFT_ROWS // channels))
    one = (3 + 2 * group) * channels * FLOAT32 * frames + 2 * 8 * frames
    return 2 * one + 2 * channels * FLOAT32 * frames if split else one


@dataclass(frozen=True)
class LoopFrames:
    """The frames a loop's conform works on (see ``pipeline._LoopPlan``).

    ``input``, ``cycle`` and ``extended`` at the render's rate (``analysed``: frames of it a tempo
    estimate reads, 0 when the tempo is known); ``extended_out`` that material at the song's rate
    ``rate``, ``stretched`` after the stretch (0 when the loop is not stretched), ``output`` the loop
    and ``stream`` the loop with its pre-roll. ``shifted``: what the stretcher makes before its result
    is resampled by the pitch ratio (0 when no pitch moves: see :mod:`.stretcher`). ``input_rate``: the
    render's rate (0: the song's).
    """

    input: int
    analysed: int
    cycle: int
    extended: int
    extended_out: int
    stretched: int
    stream: int
    output: int
    rate: int
    shifted: int = 0
    input_rate: int = 0


def loop_peak_bytes(channels: int, frames: LoopFrames) -> int:
    """The most a loop's conform holds at once (the render, the steps' arrays, the WAV file)."""
    c, f = channels, FLOAT32
    input_rate = frames.input_rate or frames.rate
    # its tempo estimated (a second block of the transient curve's frames where that is measured over two threads)
    split = transient_block_bytes(input_rate) if transient_splits(frames.analysed, input_rate) else 0
    steps: list[float] = [
        TEMPO_ANALYSIS_BYTES_PER_FRAME * frames.analysed + split,
        c * f * (frames.cycle + frames.extended),  # the render's loop repeated over the song's beats
        # resampled, two channels at a time (over two threads)
        c * f * (frames.extended + frames.extended_out) + min(c, 2) * f * frames.extended_out,
    ]
    # the source's bands, and its onset curve where that is small, are measured while it is stretched
    # (pipeline.OVERLAP_SOURCE_ANALYSIS), and the render's key detected where nothing before needed it
    beside = pre_echo_bytes(c, frames.rate) + KEY_ANALYSIS_BYTES_PER_FRAME * min(frames.input,
                                                                                int(KEY_ANALYSIS_MAX_S * input_rate))
    if onsets_beside(frames.extended_out, frames.rate):
        beside += onset_bytes(frames.extended_out, frames.rate)
    if frames.shifted:
        steps += [
            stretch_bytes(c, frames.extended_out, frames.shifted) + beside,
            c * f * (frames.extended_out + frames.shifted + frames.stretched) + f * frames.stretched  # resampled
            + beside,
        ]
    if frames.stretched:
        steps += [
            stretch_bytes(c, frames.extended_out, frames.stretched) + beside,
            c * f * (frames.extended_out + frames.stretched)  # onsets measured on both, over two threads
            + onset_bytes(max(frames.extended_out, frames.stretched), frames.rate, split=True),
            # the source's bands measured, a stretch at a time
            c * f * (frames.extended_out + frames.stretched) + pre_echo_bytes(c, frames.rate),
            c * f * (frames.stretched + frames.stream),  # beats put back on the grid
            # the pre-echo lowered band by band, in two halves over two threads
            c * f * frames.stream + pre_echo_bytes(c, frames.rate, split=True),
            c * f * (frames.stream + frames.output),  # the loop cut from the stream
        ]
    else:
        steps.append(c * f * (frames.extended_out + frames.output))
    steps.append(c * f * frames.output + level_bytes(frames.output))  # its levels set
    steps.append(c * f * frames.output + wav_bytes(c, frames.output))  # the WAV file written
    return _with_margin(c * f * frames.input + max(steps))


def texture_peak_bytes(channels: int, input_frames: int, resampled_frames: int, output_frames: int,
                       pitch_shifted: bool) -> int:
    """The most a texture's conform holds at once."""
    c, f, n, r, o = channels, FLOAT32, input_frames, resampled_frames, output_frames
    steps: list[float] = [c * f * r + f * r, 2 * c * f * r]  # resampled; its DC removed
    if pitch_shifted:
        steps.append(stretch_bytes(c, r, r))
    # the loop cut or repeated; its levels set; the WAV file
    steps += [c * f * (r + o), c * f * o + level_bytes(o), c * f * o + wav_bytes(c, o)]
    return _with_margin(c * f * n + max(steps))


def one_shot_peak_bytes(channels: int, input_frames: int, resampled_frames: int, pitch_shifted: bool) -> int:
    """The most a one-shot's conform holds at once (tidying works in float64)."""
    c, f, n, r = channels, FLOAT32, input_frames, resampled_frames
    steps: list[float] = [c * f * r + f * r]
    if pitch_shifted:
        steps.append(stretch_bytes(c, r, r))
    steps += [c * f * r + 8 * c * r + 16 * r + c * f * r, c * f * r + level_bytes(r), c * f * r + wav_bytes(c, r)]
    return _with_margin(c * f * n + max(steps))


def _with_margin(nbytes: float) -> int:
    return int(nbytes * (1.0 + MARGIN)) + FIXED_OVERHEAD_BYTES


def available_memory_bytes() -> int | None:
    """Memory available to start new work now (``MemAvailable``), or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_conform_memory_bytes() -> int | None:
    """The conform memory when none is given: :data:`DEFAULT_SHARE_OF_AVAILABLE` of the memory
    available now (None where that cannot be read: no bound)."""
    available = available_memory_bytes()
    return None if available is None else int(available * DEFAULT_SHARE_OF_AVAILABLE)


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.2f} GB"


class ConformMemory:
    """A budget of ``budget_bytes`` for conforms running together (None: no bound, nothing waits).

    :meth:`check` refuses work that could never fit; :meth:`lease` hands out a :class:`Lease` that
    takes bytes as a job's conforms need them and gives them all back when the job is done.
    """

    def __init__(self, budget_bytes: int | None) -> None:
        if budget_bytes is not None and budget_bytes <= 0:
            raise ValueError(f"budget_bytes={budget_bytes}: expected more than 0 or None")
        self.budget_bytes = budget_bytes
        self._held = 0
        self._cond = threading.Condition()

    @property
    def held_bytes(self) -> int:
        with self._cond:
            return self._held

    def check(self, nbytes: int, what: str, field: str = "conform_memory") -> None:
        """Raise :class:`TooLargeError` when ``nbytes`` exceed the whole budget (``what`` says what
        needs them, ``field`` names what to change)."""
        if self.budget_bytes is not None and nbytes > self.budget_bytes:
            raise TooLargeError(
                field, f"{what}: {_gb(nbytes)}",
                f"at most {_gb(self.budget_bytes)}, this engine's conform memory (loopbridge serve --conform-memory)",
            )

    @contextmanager
    def lease(self) -> Iterator[Lease]:
        """A lease for one job's conforms; what it took is given back when the block ends."""
        lease = Lease(self)
        try:
            yield lease
        finally:
            lease.release()

    def _take(self, nbytes: int) -> None:
        with self._cond:
            # a lone conform always runs (check() has made sure it fits the budget)
            while self._held and self.budget_bytes is not None and self._held + nbytes > self.budget_bytes:
                self._cond.wait()
            self._held += nbytes

    def _give(self, nbytes: int) -> None:
        if nbytes:
            with self._cond:
                self._held -= nbytes
                self._cond.notify_all()

    def status(self) -> dict[str, int | None]:
        return {"budget_bytes": self.budget_bytes, "held_bytes": self.held_bytes}


class Lease:
    """What one job holds of a :class:`ConformMemory` (see :meth:`ConformMemory.lease`)."""

    def __init__(self, memory: ConformMemory) -> None:
        self._memory = memory
        self.held_bytes = 0

    def need(self, nbytes: int, what: str = "this conform") -> None:
        """Hold at least ``nbytes``: at once when the lease holds them already, else after giving
        back what it holds and waiting until the budget has room (never waiting while holding, so
        two jobs cannot wait on each other). Raises :class:`TooLargeError` when ``nbytes`` exceed
        the budget."""
        if nbytes <= self.held_bytes:
            return
        self._memory.check(nbytes, what)
        self.release()
        self._memory._take(nbytes)
        self.held_bytes = nbytes

    def release(self) -> None:
        self._memory._give(self.held_bytes)
        self.held_bytes = 0
