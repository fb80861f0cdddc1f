"""Riffusion: spectrogram images from Stable Diffusion, and the codec between images and audio."""

from .backend import RiffusionBackend
from .codec import SpectrogramImage, SpectrogramImageCodec, SpectrogramParams

__all__ = ["RiffusionBackend", "SpectrogramImage", "SpectrogramImageCodec", "SpectrogramParams"]
