"""Mask sources (what to remove, per frame) and mask operations. Masks: H x W uint8, 255 = fill."""

from streamfill.masks.ops import binarize, blank_hole, bounding_box, dilate, feather_alpha, paste_alpha
from streamfill.masks.static import PerFrameMasks, StaticMask, prepare

__all__ = ["PerFrameMasks", "StaticMask", "binarize", "blank_hole", "bounding_box", "dilate", "feather_alpha",
           "paste_alpha", "prepare"]
