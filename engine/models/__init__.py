"""Model backends behind one interface (base.py) and the registry that finds them."""

from .base import Capabilities, GeneratedAudio, LoadOptions, ModelBackend
from .registry import ModelRegistry, ModelSpec

__all__ = ["Capabilities", "GeneratedAudio", "LoadOptions", "ModelBackend", "ModelRegistry", "ModelSpec"]
