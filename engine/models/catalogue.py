"""A short catalogue of published checkpoints per family, for ``loopbridge models --available``.

Each entry is as its publisher lists it on the Hugging Face hub: the id, the size (parameters as
the hub or the model card states them), the licence's name and whether the hub gates the files
behind accepting it. Nothing here was downloaded to write it; ``loopbridge models pull ID`` fetches
one, and a licence should be read on the model's page before use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CatalogueEntry:
    """One published checkpoint."""

    id: str
    family: str
    pipeline: str  # the diffusers pipeline class its model_index.json names
    size: str  # as published: parameters of the whole pipeline unless said otherwise
    licence: str
    gated: bool  # the hub serves the files only after the licence is accepted, to a signed-in token
    good_for: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry("harmonai/maestro-150k", "dance-diffusion", "DanceDiffusionPipeline", "unconditional, 16 kHz",
                   "see the model page", False, "solo piano phrases (MAESTRO); audio-prompt variations"),
    CatalogueEntry("harmonai/glitch-440k", "dance-diffusion", "DanceDiffusionPipeline", "unconditional, 48 kHz",
                   "see the model page", False, "glitchy electronic textures; audio-prompt variations"),
    CatalogueEntry("harmonai/jmann-small-190k", "dance-diffusion", "DanceDiffusionPipeline", "unconditional, 48 kHz",
                   "see the model page", False, "Jonathan Mann's songs: guitar and voice fragments"),
    CatalogueEntry("riffusion/riffusion-model-v1", "riffusion", "StableDiffusionPipeline",
                   "Stable Diffusion 1.5 (about 1 B parameters)", "CreativeML OpenRAIL-M", False,
                   "short riffs and loops from text; morphs between two prompts"),
    CatalogueEntry("cvssp/audioldm-s-full-v2", "audioldm", "AudioLDMPipeline", "421 M parameters",
                   "CC BY-NC-SA 4.0", False, "sound effects and ambiences from text (16 kHz)"),
    CatalogueEntry("cvssp/audioldm2", "audioldm2", "AudioLDM2Pipeline", "1.1 B parameters", "CC BY-NC-SA 4.0", False,
                   "sound effects, textures and general audio from text (16 kHz)"),
    CatalogueEntry("cvssp/audioldm2-music", "audioldm2", "AudioLDM2Pipeline", "1.1 B parameters", "CC BY-NC-SA 4.0",
                   False, "music from text (16 kHz)"),
    CatalogueEntry("stabilityai/stable-audio-open-1.0", "stable-audio", "StableAudioPipeline", "1.21 B parameters",
                   "Stability AI Community License (stable-audio-nc-community)", True,
                   "44.1 kHz stereo loops, one-shots and textures up to 47 s"),
    CatalogueEntry("stabilityai/stable-audio-3-small-music", "stable-audio-3", "StableAudio3Pipeline",
                   "0.6 B parameters (433 M DiT)", "Stability AI Community License (and Gemma terms)", True,
                   "music loops on a CPU; continue, replace and transform a clip"),
    CatalogueEntry("stabilityai/stable-audio-3-small-sfx", "stable-audio-3", "StableAudio3Pipeline",
                   "0.6 B parameters (433 M DiT)", "Stability AI Community License (and Gemma terms)", True,
                   "sound effects and one-shots on a CPU"),
    CatalogueEntry("stabilityai/stable-audio-3-medium", "stable-audio-3", "StableAudio3Pipeline",
                   "2 B parameters (1.4 B DiT)", "Stability AI Community License (and Gemma terms)", True,
                   "longer music and effects on a GPU, 8 steps; inpaint and audio-to-audio"),
    CatalogueEntry("ACE-Step/acestep-v15-xl-turbo-diffusers", "ace-step", "AceStepPipeline",
                   "about 5 B parameters (DiT)", "MIT", False,
                   "songs at a set tempo, key and meter in 8 steps; repaint, cover, extract a stem, add a part"),
    CatalogueEntry("ACE-Step/acestep-v15-xl-base-diffusers", "ace-step", "AceStepPipeline",
                   "about 5 B parameters (DiT)", "MIT", False,
                   "the undistilled ACE-Step 1.5 XL: more steps, guidance, every task"),
)


def catalogue_entry(model_id: str) -> CatalogueEntry | None:
    """The catalogue's entry for ``model_id``, or None."""
    for entry in CATALOGUE:
        if entry.id == model_id:
            return entry
    return None
