"""Frame completion by crop-and-stitch: cut each hole out with context, fill it at a working size with an
Inpainter, resize back, and paste only inside the hole. Pixels outside the hole are returned exactly as they
came in, at any resolution.

The paste rule (DESIGN.md): the hole is the user's mask grown by ``[mask] dilate``; the engine receives the
crop with every hole pixel blanked (it never sees what the user marked), and the feather softens the paste only
inside that safety margin, so the marked pixels never reach the output; with no margin there is no feather."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from streamfill.config import CropConfig, MaskConfig
from streamfill.masks import blank_hole, paste_alpha
from streamfill.pipeline.crop import Crop, plan_crops
from streamfill.types import Frame, Inpainter

_log = logging.getLogger(__name__)

def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrink = width < image.shape[1] or height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _resize_hole(hole: np.ndarray, size: int) -> np.ndarray:
    """Resize a boolean hole to size x size without losing thin strokes: any coverage counts as hole."""
    if hole.shape == (size, size):
        return hole.astype(np.uint8) * 255
    area = cv2.resize(hole.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA
                      if size < max(hole.shape) else cv2.INTER_LINEAR)
    return np.where(area > 1e-3, np.uint8(255), np.uint8(0))


class Completer:
    """Fills the holes of whole frames through an ``Inpainter`` working on crops.

    ``fill(image, mask, guidance=None)``: image H x W x 3 uint8 RGB, mask H x W uint8 (non-zero = hole): the
    user's mask already grown by ``mask.dilate`` (as every mask source yields it), guidance optional H x W uint8
    sketch. Returns H x W x 3 uint8; identical to ``image`` outside the hole (the same object when the mask is
    empty: the engine is skipped). The engine gets the crops with the hole blanked (black); the feather
    (``mask.feather``, at most ``mask.dilate`` pixels) blends the fill with the input only inside the margin.
    """

    _whole_noted = False

    def __init__(self, inpainter: Inpainter, crop: CropConfig | None = None, mask: MaskConfig | None = None):
        self.inpainter = inpainter
        self.crop = crop or CropConfig()
        mask = mask or MaskConfig()
        self.feather = mask.feather
        self.margin = mask.dilate
        self.crops_filled = 0
        self.frames_filled = 0

    def stream(self, pairs: Iterable[tuple[Frame, np.ndarray]]) -> Iterator[Frame]:
        """The ``Completion`` protocol: fill each frame on its own."""
        for frame, mask in pairs:
            out = self.fill(frame.image, mask)
            if out is not frame.image:
                self.frames_filled += 1
            yield frame.with_image(out)

    def fill(self, image: np.ndarray, mask: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        hole = mask > 0
        if not hole.any():
            return image
        if hole.all() and not Completer._whole_noted:
            Completer._whole_noted = True  # once per process: a run may make a completer per shot
            _log.warning("note: a hole covers the whole frame: the engine has nothing to fill it from (a mask is "
                         "white where to remove, black elsewhere)")
        crops, labels = plan_crops(hole, self.crop)
        by_size: dict[int, list[Crop]] = defaultdict(list)
        for c in crops:
            by_size[c.size].append(c)
        out = image.copy()
        for size, group in by_size.items():
            imgs = np.stack([_resize(blank_hole(image[c.y0:c.y1, c.x0:c.x1], hole[c.y0:c.y1, c.x0:c.x1]), size, size)
                             for c in group])
            holes = np.stack([_resize_hole(hole[c.y0:c.y1, c.x0:c.x1], size) for c in group])
            guide = None
            if guidance is not None:
                guide = np.stack([_resize(guidance[c.y0:c.y1, c.x0:c.x1], size, size) for c in group])
            filled = self.inpainter.inpaint(imgs, holes, guide)
            for c, f in zip(group, filled, strict=True):
                self._paste(out, image, hole, labels, c, f)
            self.crops_filled += len(group)
        return out

    def _paste(self, out, image, hole, labels, c: Crop, filled: np.ndarray) -> None:
        region = (slice(c.y0, c.y1), slice(c.x0, c.x1))
        own = np.isin(labels[region], c.labels) & hole[region]
        back = _resize(filled, c.width, c.height).astype(np.float32)
        alpha = paste_alpha(hole[region], self.feather, self.margin)[..., None]
        src = image[region].astype(np.float32)
        blended = np.clip(np.rint(src + (back - src) * alpha), 0, 255).astype(np.uint8)
        out[region] = np.where(own[..., None], blended, out[region])
