"""Conforming: fit a render to a song (tempo, bars, pitch, sample rate) and tag the WAV.

``conform_audio`` does the fitting (see :mod:`.pipeline` for what it does to loops, one-shots and
textures), ``conform_peak_bytes`` says how much memory that takes and :class:`ConformMemory` bounds
conforms running together (:mod:`.memory`), ``encode_wav`` writes 24-bit PCM with ``acid`` and
``smpl`` chunks, ``read_wav_tags`` reads those chunks back, ``sample_filename`` names the file,
``estimate_tempo`` finds a loop's tempo and downbeat.
"""

from .alignment import Retiming, measure_offset, retime
from .memory import ConformMemory, default_conform_memory_bytes
from .naming import note_name, sample_filename
from .oneshot import TidyReport, tidy_one_shot
from .pipeline import ConformedAudio, ConformSize, SourceInfo, conform_audio, conform_peak_bytes, conform_size
from .stretcher import DEFAULT_STRETCH, StretchOptions, pitch_shift, stretch
from .tempo import TempoEstimate, estimate_tempo
from .wavfile import AcidChunk, SmplChunk, SmplLoop, WavTags, encode_wav, read_wav_tags

__all__ = [
    "DEFAULT_STRETCH",
    "AcidChunk",
    "ConformMemory",
    "ConformSize",
    "ConformedAudio",
    "Retiming",
    "SmplChunk",
    "SmplLoop",
    "SourceInfo",
    "StretchOptions",
    "TempoEstimate",
    "TidyReport",
    "WavTags",
    "conform_audio",
    "conform_peak_bytes",
    "conform_size",
    "default_conform_memory_bytes",
    "encode_wav",
    "estimate_tempo",
    "measure_offset",
    "note_name",
    "pitch_shift",
    "read_wav_tags",
    "retime",
    "sample_filename",
    "stretch",
    "tidy_one_shot",
]
