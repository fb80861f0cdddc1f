"""Onset functions: where sound starts, as a curve over time.

Two curves serve different needs:

- :func:`spectral_flux` (≈23 ms frames, ≈6 ms apart) sees changes in any frequency band, so it finds
  the pulse of tonal material too; the tempo estimator's autocorrelation runs on it.
- :func:`transient_flux` (≈10 ms frames, 1 ms apart, above the bass) places hits to a fraction of a
  millisecond through a mix; the beat-grid fit and the stretch alignment run on it.

Both take float32 audio ``[channels, samples]`` (channels are mixed to mono) and return the curve
with its hop in samples, so frame ``i`` sits at sample ``i * hop``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

from . import threads

#: frames per second of :func:`transient_flux`
TRANSIENT_FRAME_RATE_HZ = 1000.0
#: log compression in :func:`transient_flux`: enough that a quiet hat counts next to a kick, not
#: so much that the faint pre-echo a stretcher smears ahead of a hit reads as its start
TRANSIENT_COMPRESSION = 10.0
#: :func:`transient_flux` ignores what happens below this (held bass notes, the body of a kick)
TRANSIENT_LOW_HZ = 300.0
#: :func:`transient_flux` keeps a spectrum up to this size (a minute of audio at 48 kHz); a larger one is
#: computed twice rather than held
TRANSIENT_SPECTRUM_KEPT_BYTES = 64 * 1024 * 1024
#: :func:`transient_flux` computes its spectrum this many frames at a time
TRANSIENT_BLOCK_FRAMES = 2048
#: :func:`transient_flux` with ``split`` measures a kept spectrum over two threads, two blocks of frames held at
#: once, where a block holds at most this much (:func:`transient_block_bytes`: up to 48 kHz)
TRANSIENT_SPLIT_MAX_BLOCK_BYTES = 32 * 1024 * 1024
#: log compression of spectral magnitudes before the flux: larger makes quiet onsets count more
FLUX_COMPRESSION = 100.0


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Mean of the channels of ``[channels, samples]`` audio, as float64 ``[samples]``."""
    return np.asarray(audio).mean(axis=0, dtype=np.float64)


def mix_to_mono(audio: np.ndarray, out: np.ndarray, block: int = 1 << 18) -> np.ndarray:
    """:func:`to_mono` written into ``out`` (float32 ``[samples]``), a block at a time, so no
    float64 copy of the whole signal is made."""
    for first in range(0, audio.shape[-1], block):
        out[first : first + block] = audio[:, first : first + block].mean(axis=0, dtype=np.float64)
    return out


def transient_fft_size(sample_rate: int) -> int:
    """The frame length of :func:`transient_flux` at ``sample_rate`` (a power of two near 10.7 ms)."""
    return int(2 ** round(np.log2(0.0107 * sample_rate)))


def transient_block_bytes(sample_rate: int) -> int:
    """What one block of :func:`transient_flux`'s frames holds at ``sample_rate``: the windowed frames, their
    complex spectra and magnitudes (with room to spare)."""
    return TRANSIENT_BLOCK_FRAMES * transient_fft_size(sample_rate) * 24


def transient_spectrum_kept(samples: int, sample_rate: int) -> bool:
    """Whether :func:`transient_flux` keeps the spectrum of ``samples`` at ``sample_rate`` (else computes it
    twice, see :data:`TRANSIENT_SPECTRUM_KEPT_BYTES`)."""
    n_fft = transient_fft_size(sample_rate)
    bins = n_fft // 2 + 1 - int(np.ceil(TRANSIENT_LOW_HZ * n_fft / sample_rate))
    return _transient_frames(samples, sample_rate) * bins * 4 <= TRANSIENT_SPECTRUM_KEPT_BYTES


def transient_splits(samples: int, sample_rate: int) -> bool:
    """Whether :func:`transient_flux` with ``split`` measures ``samples`` at ``sample_rate`` over two threads:
    where it keeps their spectrum, holds more than one block of frames and a block holds little
    (:data:`TRANSIENT_SPLIT_MAX_BLOCK_BYTES`)."""
    return (threads.TWO_THREADS and _transient_frames(samples, sample_rate) > TRANSIENT_BLOCK_FRAMES
            and transient_block_bytes(sample_rate) <= TRANSIENT_SPLIT_MAX_BLOCK_BYTES
            and transient_spectrum_kept(samples, sample_rate))


def _transient_frames(samples: int, sample_rate: int) -> int:
    return max(1, samples // max(1, int(round(sample_rate / TRANSIENT_FRAME_RATE_HZ))))


def transient_flux(audio: np.ndarray, sample_rate: int, smooth_ms: float = 1.5,
                   split: bool = False) -> tuple[np.ndarray, int]:
    """Where new sound starts above :data:`TRANSIENT_LOW_HZ`, one value per millisecond.

    Log-magnitude spectral flux over ≈10 ms frames (placed so that a sharp onset peaks at its own
    time, within about 0.3 ms; a 10 ms fade-in peaks about 1.5 ms later), summed over
    the bins above :data:`TRANSIENT_LOW_HZ`. A level envelope would do for drums alone, but in a
    mix the partials of a held bass note or chord beat against each other and ripple the level
    every few milliseconds like a row of tiny hits; per frequency bin, above the bass, a held
    note is steady and a hit is not. The curve is lightly smoothed (``smooth_ms``, Gaussian) so
    that peaks can be interpolated. Returns ``(curve, hop)``.

    Memory: the audio is mixed and analysed a block of frames at a time. The spectrum of a long
    signal (a stretched loop of minutes at 192 kHz holds gigabytes of it) is never held whole: past
    :data:`TRANSIENT_SPECTRUM_KEPT_BYTES` it is computed twice, once for its peak (the compression's
    reference) and once for the flux, with the same result. ``split``: measured over two threads (:mod:`.threads`)
    where :func:`transient_splits` says, each a run of whole blocks, two blocks held at once: the same curve to
    the bit.
    """
    data = np.asarray(audio)
    samples = data.shape[-1]
    n_fft = transient_fft_size(sample_rate)
    hop = max(1, int(round(sample_rate / TRANSIENT_FRAME_RATE_HZ)))
    frames = _transient_frames(samples, sample_rate)
    # frame i is centred a quarter window before i * hop: the flux of a sharp onset peaks when it
    # is a quarter window past the frame's centre, so the peak then falls on the onset itself
    lead = 3 * n_fft // 4
    window = np.hanning(n_fft).astype(np.float32)
    low_bin = int(np.ceil(TRANSIENT_LOW_HZ * n_fft / sample_rate))
    bins = n_fft // 2 + 1 - low_bin
    block = TRANSIENT_BLOCK_FRAMES

    def spectrum(first: int, last: int) -> np.ndarray:
        # the block's frames from its stretch of the mono mix (silence before and after the audio)
        start = first * hop - lead
        segment = np.zeros((last - first - 1) * hop + n_fft, np.float32)
        a, b = max(0, start), min(samples, start + len(segment))
        if b > a:
            mix_to_mono(data[:, a:b], out=segment[a - start : b - start])
        view = np.lib.stride_tricks.sliding_window_view(segment, n_fft)[::hop]
        return np.abs(scipy.fft.rfft(view * window, axis=1))[:, low_bin:]

    kept = np.empty((frames, bins), dtype=np.float32) if transient_spectrum_kept(samples, sample_rate) else None
    flux = np.empty(frames, dtype=np.float64)

    def measure(first: int, last: int) -> float:
        """The loudest magnitude of frames ``[first, last)``, their spectrum kept where it is."""
        peak = 0.0
        for start in range(first, last, block):
            mags = spectrum(start, min(last, start + block))
            if kept is not None:
                kept[start : start + len(mags)] = mags
            peak = max(peak, float(mags.max()))
        return peak

    def rise(first: int, last: int, scale: float) -> None:
        """The flux of frames ``[first, last)``, the first over silence."""
        previous: np.ndarray | None = None
        for start in range(first, last, block):
            stop = min(last, start + block)
            mags = kept[start:stop] if kept is not None else spectrum(start, stop)
            np.multiply(mags, scale, out=mags)
            np.log1p(mags, out=mags)
            positive_flux(mags, out=flux[start:stop], previous=previous)
            previous = mags[-1].copy()

    # two threads, each a run of whole blocks, where the spectrum is kept (:func:`transient_splits`); the
    # second run's first frame rises over the first run's last, taken once both have ended
    starts = range(0, frames, block)
    middle = starts[len(starts) // 2] if kept is not None and split and transient_splits(samples, sample_rate) else 0
    if middle:
        reference = max(threads.both(lambda: measure(0, middle), lambda: measure(middle, frames)))
    else:
        reference = measure(0, frames)
    if reference <= 0.0:
        return np.zeros(frames), hop
    scale = TRANSIENT_COMPRESSION / reference
    # silence precedes the first frame, so a sound that starts at sample 0 is an onset
    if middle and kept is not None:
        threads.both(lambda: rise(0, middle, scale), lambda: rise(middle, frames, scale))
        positive_flux(kept[middle : middle + 1], out=flux[middle : middle + 1], previous=kept[middle - 1].copy())
    else:
        rise(0, frames, scale)
    if smooth_ms > 0:
        flux = gaussian_filter1d(flux, sigma=smooth_ms * 1e-3 * sample_rate / hop, mode="constant")
    return flux, hop


def spectral_flux(
    audio: np.ndarray, sample_rate: int, low_cutoff_hz: float = 200.0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Log-magnitude spectral flux (summed positive change per bin), detrended, and the flux of the
    band below ``low_cutoff_hz`` (kicks and bass: the accent of a downbeat).

    Frames of ≈23 ms (a power of two), hop of a quarter of that (≈5.8 ms at 44.1 kHz); the STFT
    runs in blocks so memory stays bounded on long audio. Returns ``(flux, low_flux, hop)``.
    """
    mono = to_mono(audio).astype(np.float32)
    n_fft = int(2 ** round(np.log2(0.023 * sample_rate)))
    hop = n_fft // 4
    padded = np.concatenate([np.zeros(n_fft // 2, np.float32), mono, np.zeros(n_fft // 2, np.float32)])
    total = 1 + max(0, (len(padded) - n_fft) // hop)
    window = np.hanning(n_fft).astype(np.float32)
    mags = np.empty((total, n_fft // 2 + 1), dtype=np.float32)
    frames_view = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    block = 1024
    for start in range(0, total, block):
        stop = min(total, start + block)
        mags[start:stop] = np.abs(scipy.fft.rfft(frames_view[start:stop] * window, axis=1))
    low_bins = max(2, int(low_cutoff_hz * n_fft / sample_rate) + 1)
    # the frame before the first is silence, so a sound that starts at sample 0 is an onset
    low_flux = positive_flux(mags[:, :low_bins])
    reference = float(mags.max())
    if reference <= 0.0:
        return np.zeros(total), np.zeros(total), hop
    # log compression makes the flux follow relative change, so quiet parts of a loop count too
    np.multiply(mags, FLUX_COMPRESSION / reference, out=mags)
    np.log1p(mags, out=mags)
    flux = positive_flux(mags)
    # subtract the local mean (≈0.2 s) so that slow swells do not read as a pulse
    size = max(3, int(round(0.2 * sample_rate / hop)))
    detrended = flux - uniform_filter1d(flux, size=size, mode="nearest")
    return np.maximum(detrended, 0.0), low_flux, hop


def positive_flux(mags: np.ndarray, out: np.ndarray | None = None,
                  previous: np.ndarray | None = None) -> np.ndarray:
    """Per frame, the summed rise of every bin over the frame before (the first frame's: over
    silence, or over ``previous``, the frame before a block), as float64 ``[frames]`` (written into
    ``out`` when given); computed in the magnitudes' own float32."""
    flux = np.empty(mags.shape[0], dtype=np.float64) if out is None else out
    if not len(flux):
        return flux
    if previous is None:
        flux[0] = float(mags[0].sum())
    else:
        rise = np.subtract(mags[0], previous)
        np.maximum(rise, 0.0, out=rise)
        flux[0] = rise[None].sum(axis=1)[0]
    rise = np.subtract(mags[1:], mags[:-1])
    np.maximum(rise, 0.0, out=rise)
    flux[1:] = rise.sum(axis=1)
    return flux


def interpolate(curve: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``curve`` at fractional frame ``positions`` (0 outside)."""
    return np.interp(positions, np.arange(len(curve)), curve, left=0.0, right=0.0)


def peak_near(curve: np.ndarray, center: float, radius: float) -> tuple[float, float]:
    """The largest value of ``curve`` within ``center ± radius`` frames, refined by a parabola.

    Returns ``(position, height)``; ``(center, 0.0)`` when the window falls outside the curve.
    """
    lo = max(0, int(np.floor(center - radius)))
    hi = min(len(curve), int(np.ceil(center + radius)) + 1)
    if hi - lo < 1:
        return center, 0.0
    i = lo + int(np.argmax(curve[lo:hi]))
    height = float(curve[i])
    if 0 < i < len(curve) - 1:
        a, b, c = curve[i - 1], curve[i], curve[i + 1]
        denominator = a - 2 * b + c
        if denominator < 0:
            offset = 0.5 * (a - c) / denominator
            return i + float(np.clip(offset, -0.5, 0.5)), height
    return float(i), height


def smooth(curve: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian smoothing of a curve (sigma in frames)."""
    return gaussian_filter1d(curve, sigma=sigma_frames, mode="nearest") if sigma_frames > 0 else curve
