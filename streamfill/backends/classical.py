"""Classical inpainting with OpenCV: Telea's fast marching method and Navier–Stokes. Available everywhere."""

from __future__ import annotations

import cv2
import numpy as np

from streamfill.errors import EngineError

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


class ClassicalInpainter:
    """Inpainter backed by ``cv2.inpaint``. Works on any size; ``guidance`` is ignored.

    ``images``: N x H x W x 3 uint8 RGB; ``masks``: N x H x W uint8 (non-zero = hole) -> N x H x W x 3 uint8.
    """

    def __init__(self, method: str = "telea", radius: int = 5) -> None:
        if method not in METHODS:
            raise EngineError(f"unknown classical method {method!r} (known: {', '.join(METHODS)})")
        self.name = method
        self.radius = radius
        self._flag = METHODS[method]

    def inpaint(self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        out = np.empty_like(images)
        for i in range(images.shape[0]):
            m = (masks[i] > 0).astype(np.uint8)
            out[i] = cv2.inpaint(np.ascontiguousarray(images[i]), m, self.radius, self._flag) if m.any() else images[i]
        return out
