"""Spectrogram images in Riffusion's published format, and back to audio.

The format (what a Riffusion checkpoint was trained on and generates):

- mono audio at 44.1 kHz;
- a short-time Fourier transform with a 100 ms Hann window zero-padded to a 400 ms FFT, every 10 ms;
- its magnitude on 512 mel bands (HTK mel scale, triangular filters, no area normalisation) from
  0 to 10 kHz;
- divided by its maximum, raised to the power 0.25 (to compress the dynamic range into 8 bits),
  scaled to 0–255, inverted (loud is dark) and flipped (low frequencies at the bottom row).

One image column is 10 ms, so a 512×512 image holds 5.12 s. Going back, the pixel values are
expanded again, the mel bands spread back onto linear frequencies (a non-negative least-squares
fit) and Griffin-Lim estimates a phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import scipy.sparse
import torch

from ...audio import as_audio_array
from ...errors import RequestError


def hz_to_mel_htk(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``2595 · log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz_htk(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@dataclass(frozen=True)
class SpectrogramParams:
    """The parameters of a spectrogram image; the defaults are Riffusion's published ones."""

    sample_rate: int = 44100
    n_mels: int = 512
    f_min_hz: float = 0.0
    f_max_hz: float = 10000.0
    hop_ms: float = 10.0
    window_ms: float = 100.0
    fft_ms: float = 400.0
    power: float = 0.25
    griffin_lim_iters: int = 32
    #: momentum of the fast Griffin-Lim update (0 gives the classic algorithm)
    griffin_lim_momentum: float = 0.99

    def __post_init__(self) -> None:
        if not 0 <= self.f_min_hz < self.f_max_hz <= self.sample_rate / 2:
            raise RequestError(
                "f_max_hz", self.f_max_hz, f"above f_min_hz={self.f_min_hz:g} and at most {self.sample_rate / 2:g} Hz"
            )
        if not 0 < self.window_ms <= self.fft_ms:
            raise RequestError("window_ms", self.window_ms, f"0 < window_ms <= fft_ms={self.fft_ms:g}")
        if not 0 < self.power <= 1:
            raise RequestError("power", self.power, "0 < power <= 1")

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000.0)

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.window_ms / 1000.0)

    @property
    def n_fft(self) -> int:
        return round(self.sample_rate * self.fft_ms / 1000.0)

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def frames_for(self, samples: int) -> int:
        """Image columns for ``samples`` of audio (one per hop; a 5.12 s clip gives 512)."""
        return samples // self.hop_length

    def samples_for(self, frames: int) -> int:
        return frames * self.hop_length

    def row_of_hz(self, hz: float) -> int:
        """The image row (0 = top) whose mel band is centred nearest ``hz``."""
        centres = self.mel_band_centres_hz
        band = int(np.argmin(np.abs(centres - hz)))
        return self.n_mels - 1 - band

    @property
    def mel_band_centres_hz(self) -> np.ndarray:
        edges = mel_to_hz_htk(np.linspace(hz_to_mel_htk(self.f_min_hz), hz_to_mel_htk(self.f_max_hz), self.n_mels + 2))
        return np.asarray(edges[1:-1])


@dataclass(frozen=True, eq=False)
class SpectrogramImage:
    """A grayscale spectrogram image: ``pixels`` uint8 ``[n_mels, frames]``, row 0 the highest band.

    ``max_value`` is the mel magnitude that pixel value 0 (black) stands for; a generated image has
    none of its own, and decoding then uses the codec's reference level.
    """

    pixels: np.ndarray
    max_value: float | None = None

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


@dataclass
class SpectrogramImageCodec:
    """Audio ⇄ spectrogram image in the format of :class:`SpectrogramParams`.

    The filterbank is built once per codec. Griffin-Lim runs on ``device`` in float32; the mel
    inversion is a sparse product on the CPU (each linear bin touches at most two mel bands).
    """

    params: SpectrogramParams = field(default_factory=SpectrogramParams)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: the mel magnitude an image decodes to when it carries no ``max_value`` of its own
    reference_max_value: float = 1000.0
    #: multiplicative non-negative least-squares updates when spreading mel bands back to linear bins
    mel_inversion_iters: int = 20

    # ---- fixed transforms -------------------------------------------------------------------

    @cached_property
    def _window(self) -> torch.Tensor:
        return torch.hann_window(self.params.win_length, periodic=True, device=self.device)

    @cached_property
    def _overlap_envelope_cache(self) -> dict[int, torch.Tensor]:
        return {}

    @cached_property
    def mel_filterbank(self) -> np.ndarray:
        """Triangular HTK filters, float32 ``[n_mels, n_freqs]``, peak 1 (no area normalisation)."""
        p = self.params
        freqs = np.arange(p.n_freqs, dtype=np.float64) * p.sample_rate / p.n_fft
        edges = mel_to_hz_htk(np.linspace(hz_to_mel_htk(p.f_min_hz), hz_to_mel_htk(p.f_max_hz), p.n_mels + 2))
        lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        rising = (freqs[None, :] - lower) / (centre - lower)
        falling = (upper - freqs[None, :]) / (upper - centre)
        return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)

    @cached_property
    def _band_bins(self) -> int:
        """Linear bins up to the last one any mel band touches."""
        used = np.nonzero(self.mel_filterbank.max(axis=0) > 0)[0]
        return int(used[-1]) + 1 if used.size else 1

    @cached_property
    def _sparse_bank(self) -> tuple[scipy.sparse.csr_matrix, scipy.sparse.csr_matrix]:
        bank = self.mel_filterbank
        return scipy.sparse.csr_matrix(bank), scipy.sparse.csr_matrix(bank.T)

    # ---- short-time Fourier transform ---------------------------------------------------------
    #
    # The Hann window is shorter than the FFT (100 ms inside 400 ms), so each frame is the window's
    # samples centred on a hop, zero-padded to the FFT length. Framing directly (rather than with
    # torch.stft, which would multiply a 400 ms frame by a mostly-zero window) keeps the overlap-add
    # of the inverse over 100 ms frames, a quarter of the work.

    def stft(self, audio: torch.Tensor) -> torch.Tensor:
        """Complex STFT of ``audio`` ``[batch, samples]`` → ``[batch, n_freqs, samples // hop]``.

        Frame ``t`` is centred on sample ``t · hop`` (the signal is reflected at its edges).
        """
        p = self.params
        half = p.win_length // 2
        padded = torch.nn.functional.pad(audio[:, None], (half, p.win_length - half), mode="reflect")[:, 0]
        frames = padded.unfold(-1, p.win_length, p.hop_length)[:, : p.frames_for(audio.shape[-1])]
        return torch.fft.rfft(frames * self._window, n=p.n_fft).transpose(1, 2)

    def istft(self, spectrum: torch.Tensor, samples: int) -> torch.Tensor:
        """Inverse of :meth:`stft` (weighted overlap-add): ``[batch, n_freqs, frames]`` → ``[batch, samples]``."""
        p = self.params
        frames = spectrum.shape[-1]
        pieces = torch.fft.irfft(spectrum.transpose(1, 2), n=p.n_fft)[..., : p.win_length] * self._window
        total = (frames - 1) * p.hop_length + p.win_length
        fold: dict[str, Any] = {
            "output_size": (1, total), "kernel_size": (1, p.win_length), "stride": (1, p.hop_length)
        }
        summed = torch.nn.functional.fold(pieces.transpose(1, 2), **fold)[:, 0, 0]
        envelope = self._overlap_envelope_cache.get(frames)
        if envelope is None:
            squares = (self._window**2).expand(1, frames, p.win_length).transpose(1, 2)
            envelope = torch.nn.functional.fold(squares, **fold)[0, 0, 0]
            envelope = envelope.clamp_min(1e-3 * float(envelope.max()))
            self._overlap_envelope_cache[frames] = envelope
        audio = summed / envelope
        half = p.win_length // 2
        out = audio[:, half : half + samples]
        if out.shape[-1] < samples:
            out = torch.nn.functional.pad(out, (0, samples - out.shape[-1]))
        return out

    # ---- audio → image ------------------------------------------------------------------------

    def mel_spectrogram(self, audio: np.ndarray) -> np.ndarray:
        """Mel magnitude float32 ``[n_mels, samples // hop]`` of audio ``[channels, samples]`` (or ``[samples]``).

        Several channels are averaged to mono first. Raises RequestError for audio shorter than one hop.
        """
        mono = as_audio_array(audio).mean(axis=0)
        if mono.shape[0] < max(self.params.hop_length, self.params.win_length // 2 + 1):
            raise RequestError(
                "audio", f"{mono.shape[0]} samples", f"at least {self.params.win_length // 2 + 1} samples"
            )
        with torch.no_grad():
            signal = torch.from_numpy(np.ascontiguousarray(mono)).to(self.device)[None]
            magnitude = self.stft(signal).abs()[0].cpu().numpy()
        bank, _ = self._sparse_bank
        return np.asarray(bank @ magnitude, dtype=np.float32)

    def image_from_mel(self, mel: np.ndarray, max_value: float | None = None) -> SpectrogramImage:
        """Quantise a mel magnitude ``[n_mels, frames]`` to an image (loud = dark, low at the bottom)."""
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] != self.params.n_mels:
            raise RequestError("mel", f"array of shape {mel.shape}", f"[{self.params.n_mels}, frames]")
        peak = float(mel.max()) if max_value is None else float(max_value)
        if not peak > 0:
            # silence: every pixel white
            return SpectrogramImage(np.full(mel.shape, 255, dtype=np.uint8), max_value=0.0)
        level = np.clip(mel / peak, 0.0, 1.0) ** self.params.power
        pixels = 255 - np.round(level * 255.0).astype(np.int32)
        return SpectrogramImage(np.ascontiguousarray(pixels[::-1].astype(np.uint8)), max_value=peak)

    def encode(self, audio: np.ndarray) -> SpectrogramImage:
        """Audio float32 ``[channels, samples]`` at ``params.sample_rate`` → spectrogram image."""
        return self.image_from_mel(self.mel_spectrogram(audio))

    # ---- image → audio ------------------------------------------------------------------------

    def mel_from_image(self, image: SpectrogramImage) -> np.ndarray:
        """Expand pixel values back to mel magnitude float32 ``[n_mels, frames]``."""
        pixels = np.asarray(image.pixels)
        if pixels.ndim != 2 or pixels.shape[0] != self.params.n_mels:
            raise RequestError("image", f"pixels of shape {pixels.shape}", f"[{self.params.n_mels}, frames] grayscale")
        level = (255.0 - pixels[::-1].astype(np.float32)) / 255.0
        peak = self.reference_max_value if image.max_value is None else image.max_value
        return np.asarray(level ** (1.0 / self.params.power) * peak, dtype=np.float32)

    def linear_from_mel(self, mel: np.ndarray) -> np.ndarray:
        """Linear magnitude ``[n_freqs, frames]`` whose mel projection best fits ``mel`` ``[n_mels, frames]``.

        The first guess spreads each band's mean level over its bins; multiplicative non-negative
        least-squares updates then refine it, keeping every bin non-negative.
        """
        bank, bank_t = self._sparse_bank
        area = np.asarray(self.mel_filterbank.sum(axis=1), dtype=np.float32)[:, None]
        weight = np.asarray(self.mel_filterbank.sum(axis=0), dtype=np.float32)[:, None]
        linear = (bank_t @ (mel / np.maximum(area, 1e-12))) / np.maximum(weight, 1e-12)
        numerator = bank_t @ mel
        eps = 1e-12 + 1e-7 * (float(np.max(mel)) if mel.size else 0.0)
        for _ in range(self.mel_inversion_iters):
            linear = linear * numerator / (bank_t @ (bank @ linear) + eps)
        return np.asarray(linear, dtype=np.float32)

    def griffin_lim(self, magnitude: torch.Tensor, samples: int, phases: torch.Tensor) -> torch.Tensor:
        """Audio ``[batch, samples]`` whose STFT magnitude approaches ``magnitude`` ``[batch, n_freqs, frames]``.

        Fast Griffin-Lim (alternating projections with momentum) from the initial ``phases``
        (radians, same shape as ``magnitude``).
        """
        p = self.params
        momentum = p.griffin_lim_momentum / (1.0 + p.griffin_lim_momentum)
        # bins above f_max carry no magnitude: leave them out (irfft pads them back as zeros)
        bins = self._band_bins
        magnitude, phases = magnitude[:, :bins], phases[:, :bins]
        angles = torch.polar(torch.ones_like(magnitude), phases)
        previous = torch.zeros_like(angles)
        for _ in range(p.griffin_lim_iters):
            rebuilt = self.stft(self.istft(magnitude * angles, samples))[:, :bins]
            accelerated = rebuilt - momentum * previous
            previous = rebuilt
            angles = accelerated / accelerated.abs().clamp_min(1e-16)
        return self.istft(magnitude * angles, samples)

    def decode_batch(self, images: list[SpectrogramImage], seeds: list[int]) -> np.ndarray:
        """Equal-width images → mono audio float32 ``[batch, 1, width · hop]``.

        Each image's Griffin-Lim starts from random phases drawn from its own seed, so an image
        decodes the same alone or in a batch.
        """
        if not images:
            return np.zeros((0, 1, 0), dtype=np.float32)
        widths = sorted({image.width for image in images})
        if len(widths) != 1:
            raise RequestError("images", widths, "images of one width in a batch")
        if len(seeds) != len(images):
            raise RequestError("seeds", len(seeds), f"one seed per image ({len(images)})")
        samples = self.params.samples_for(widths[0])
        linear = np.stack([self.linear_from_mel(self.mel_from_image(image)) for image in images])
        phases = []
        for seed in seeds:
            generator = torch.Generator(device="cpu").manual_seed(seed)
            phases.append(2 * math.pi * torch.rand(linear.shape[1:], generator=generator))
        with torch.no_grad():
            magnitude = torch.from_numpy(linear).to(self.device)
            audio = self.griffin_lim(magnitude, samples, torch.stack(phases).to(self.device))
        return np.ascontiguousarray(audio.cpu().numpy()[:, None, :], dtype=np.float32)

    def decode(self, image: SpectrogramImage, seed: int = 0) -> np.ndarray:
        """A spectrogram image → mono audio float32 ``[1, width · hop]`` at ``params.sample_rate``."""
        return self.decode_batch([image], [seed])[0]


def spectral_convergence(reference: np.ndarray, estimate: np.ndarray, codec: SpectrogramImageCodec) -> float:
    """``‖|S_ref| − |S_est|‖ / ‖|S_ref|‖`` over the codec's mel spectrogram (the band it keeps).

    Both signals are mono ``[1, samples]``; the shorter length is used.
    """
    samples = min(reference.shape[-1], estimate.shape[-1])
    ref = codec.mel_spectrogram(reference[..., :samples])
    est = codec.mel_spectrogram(estimate[..., :samples])
    return float(np.linalg.norm(ref - est)) / max(float(np.linalg.norm(ref)), 1e-12)


def read_image(path: str | Path | BinaryIO, params: SpectrogramParams | None = None,
               name: str | None = None) -> SpectrogramImage:
    """A spectrogram image file in Riffusion's format (grayscale or RGB; 512 rows, loud = dark,
    high frequencies at the top), as published Riffusion seed images are: a path, or an open binary
    file (bytes a client sent). Raises :class:`RequestError` naming the file (or ``name``) for an
    unreadable image or one of another height."""
    from PIL import Image, UnidentifiedImageError

    params = params or SpectrogramParams()
    shown = name if name is not None else str(path)
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise RequestError("audio_prompt", shown, "a readable spectrogram image", str(exc)[:120]) from None
    if pixels.shape[0] != params.n_mels or pixels.shape[1] < 2:
        raise RequestError("audio_prompt", f"{shown}: an image of {pixels.shape[1]}×{pixels.shape[0]} pixels",
                           f"a spectrogram image {params.n_mels} pixels high (Riffusion's format)")
    return SpectrogramImage(np.ascontiguousarray(pixels))


def audio_from_image_file(path: str | Path | BinaryIO, seed: int = 0, name: str | None = None,
                          ) -> tuple[np.ndarray, int]:
    """``(audio [1, samples], sample_rate)`` of a spectrogram image file, a path or an open binary file
    (see :func:`read_image`), so a published seed image can be used wherever audio prompts are taken."""
    codec = SpectrogramImageCodec()
    return codec.decode(read_image(path, codec.params, name), seed), codec.params.sample_rate
