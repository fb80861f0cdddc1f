"""Phase Gradient Heap Integration (PGHI): a phase for an STFT magnitude, without iterating.

Průša, Balazs and Søndergaard (2017), "A noniterative method for reconstruction of phase from STFT
magnitude". For a Gaussian window the phase's gradient follows from the log-magnitude's gradient:
with ``s = ln|X|``, the phase measured from each frame's centre,

- along time (per frame): ``dφ/dm = 2π k H / N + (H N / λ) ∂s/∂k`` (a partial's frequency is its
  bin's plus an offset the spectrum's slope reveals), and
- along frequency (per bin): ``dφ/dk = −(λ / (N H)) ∂s/∂m`` (an impulse's position in the window
  shows as the level rising or falling from frame to frame),

where ``H`` is the hop, ``N`` the FFT size and ``λ = 0.25645 N²`` the Gaussian that best matches a
Hann window of ``N`` samples. The gradient is integrated from the loudest bin outwards, through
the loudest bins first, so that errors start where the estimate is most reliable. The paper does
this with a heap; here the same order comes from a maximum spanning tree of the time-frequency grid
(edges weighted by the quieter of their two bins, Kruskal in :mod:`scipy.sparse.csgraph`), and the
sum along each bin's path to the root by pointer doubling, so no step loops in Python over bins.

A transient then gets the phase of an impulse at the right place inside each window (its bins line
up), where Griffin-Lim from a random phase spreads it over the whole window and beyond.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

from ..base import stop_point

#: λ / N² of the Gaussian whose phase-magnitude relations best fit a Hann window (Průša et al.)
HANN_GAMMA = 0.25645
#: bins quieter than this (relative to the loudest) carry no usable gradient; they get the
#: integrated phase all the same, but the spanning tree routes round them where it can
_LOG_FLOOR = np.log(1e-7)


def _gradients(log_mag: np.ndarray, n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """``(dφ/dm, dφ/dk)`` ``[bins, frames]`` of the centre-referenced phase, from ``ln|X|``."""
    lam = HANN_GAMMA * n_fft * n_fft
    bins = log_mag.shape[0]
    ds_dk = np.gradient(log_mag, axis=0) if bins > 1 else np.zeros_like(log_mag)
    ds_dm = np.gradient(log_mag, axis=1) if log_mag.shape[1] > 1 else np.zeros_like(log_mag)
    k = np.arange(bins, dtype=np.float64)[:, None]
    time_grad = 2.0 * np.pi * k * hop / n_fft + (hop * n_fft / lam) * ds_dk
    freq_grad = -(lam / (n_fft * hop)) * ds_dm
    return time_grad, freq_grad


def pghi_phase(magnitude: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Phase ``[bins, frames]`` (radians, torch.stft's convention: referenced to each frame's first
    sample) for the magnitude ``[bins, frames]`` of a centred STFT with a Hann window of ``n_fft``.

    Deterministic: the same magnitude always gives the same phase.
    """
    mag = np.asarray(magnitude, dtype=np.float64)
    bins, frames = mag.shape
    peak = float(mag.max()) if mag.size else 0.0
    if peak <= 0.0:
        return np.zeros((bins, frames))
    log_mag = np.maximum(np.log(np.maximum(mag / peak, 1e-30)), _LOG_FLOOR)
    time_grad, freq_grad = _gradients(log_mag, n_fft, hop)
    stop_point()  # a stopped batch stops between these stages (a few ms each), not at the decoder's end

    # grid graph: node = bin * frames + frame; time edges (frame -> frame + 1), frequency edges
    index = np.arange(bins * frames).reshape(bins, frames)
    # weight: how far the quieter end lies below the loudest bin (>= a small positive value: a
    # zero weight would be no edge to scipy); the minimum spanning tree keeps the loudest paths
    # quantized to 0.1 neper (0.9 dB), so that a magnitude changed by rounding alone (the same
    # spectrogram computed in a batch or alone) keeps the same tree
    depth = np.round(-log_mag / 0.1) * 0.1 + 1e-3
    t_from, t_to = index[:, :-1].ravel(), index[:, 1:].ravel()
    f_from, f_to = index[:-1, :].ravel(), index[1:, :].ravel()
    t_w = np.maximum(depth[:, :-1], depth[:, 1:]).ravel()
    f_w = np.maximum(depth[:-1, :], depth[1:, :]).ravel()
    n = bins * frames
    graph = coo_matrix(
        (np.concatenate([t_w, f_w]), (np.concatenate([t_from, f_from]), np.concatenate([t_to, f_to]))), shape=(n, n)
    ).tocsr()
    stop_point()
    tree = minimum_spanning_tree(graph)
    stop_point()
    root = int(np.argmax(mag.ravel()))
    _, predecessors = breadth_first_order(tree, root, directed=False, return_predecessors=True)
    stop_point()

    # each bin's step from its predecessor (trapezoid rule on the two ends' gradients)
    node = np.arange(n)
    pred = predecessors.copy()
    has_pred = pred >= 0
    step = np.zeros(n)
    tg, fg = time_grad.ravel(), freq_grad.ravel()
    src = np.where(has_pred, pred, node)
    same_bin = (src // frames) == (node // frames)
    along_time = has_pred & same_bin
    along_freq = has_pred & ~same_bin
    sign_t = np.sign((node % frames) - (src % frames))
    sign_f = np.sign((node // frames) - (src // frames))
    step[along_time] = (sign_t * 0.5 * (tg[src] + tg))[along_time]
    step[along_freq] = (sign_f * 0.5 * (fg[src] + fg))[along_freq]

    # sum the steps along each path to the root by pointer doubling (log2(longest path) rounds)
    total = step
    parent = np.where(has_pred, pred, -1)
    while True:
        live = parent >= 0
        if not live.any():
            break
        total = total + np.where(live, total[np.maximum(parent, 0)], 0.0)
        parent = np.where(live, parent[np.maximum(parent, 0)], -1)
    phase = total.reshape(bins, frames)
    # from the window's centre to torch.stft's reference (the frame's first sample): + π k
    return phase + np.pi * np.arange(bins)[:, None]


def pghi(magnitude: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Phase ``[batch, bins, frames]`` for each magnitude of ``magnitude`` ``[batch, bins, frames]``."""
    rows = [pghi_phase(m.detach().cpu().double().numpy(), n_fft, hop) for m in magnitude]
    return torch.from_numpy(np.stack(rows)).to(device=magnitude.device, dtype=magnitude.dtype)
