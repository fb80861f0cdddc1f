"""The embedded default model: a small class-conditional diffusion model that runs offline on a CPU.

See MODEL.md beside this file for the architecture, the training corpus and the measured quality.
"""

from .backend import DefaultModel
from .classes import CLASSES, class_for_prompt

__all__ = ["CLASSES", "DefaultModel", "class_for_prompt"]
