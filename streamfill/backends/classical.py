"""Classical inpainting with OpenCV: Telea's fast marching method and Navier–Stokes (available everywhere),
and, where OpenCV's contrib modules are installed (``cv2.xphoto``, from opencv-contrib-python-headless), the
frequency-selective reconstruction (FSR, fast or best quality; slow: tens of seconds per 256 px crop for
``fsr_best``)."""

from __future__ import annotations

import cv2
import numpy as np

from streamfill.errors import EngineError

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
XPHOTO_METHODS = {"fsr_fast": "INPAINT_FSR_FAST", "fsr_best": "INPAINT_FSR_BEST"}


def xphoto_available() -> bool:
    """True when ``cv2.xphoto.inpaint`` (OpenCV contrib) can be called."""
    return hasattr(cv2, "xphoto") and hasattr(cv2.xphoto, "inpaint")


def available_methods() -> tuple[str, ...]:
    """The classical methods this OpenCV build offers (``fsr_*`` only with cv2.xphoto)."""
    return tuple(METHODS) + (tuple(XPHOTO_METHODS) if xphoto_available() else ())


def fsr_inpaint(image: np.ndarray, hole: np.ndarray, method: str = "fsr_best") -> np.ndarray:
    """OpenCV's frequency-selective reconstruction of one H x W x 3 uint8 RGB image inside ``hole`` (H x W,
    non-zero = fill); returns H x W x 3 uint8 RGB, the input outside the hole. FSR works in CIELab (its first
    channel must be the intensity); the hole pixels are blanked before it runs."""
    if not xphoto_available():
        raise EngineError(f"{method} needs OpenCV's contrib modules (cv2.xphoto): "
                          "pip install opencv-contrib-python-headless")
    inside = hole > 0
    src = image.copy()
    src[inside] = 0
    lab = cv2.cvtColor(src, cv2.COLOR_RGB2Lab)
    dst = np.zeros_like(lab)
    known = np.where(inside, np.uint8(0), np.uint8(255))   # xphoto's mask: non-zero = known
    cv2.xphoto.inpaint(lab, known, dst, getattr(cv2.xphoto, XPHOTO_METHODS[method]))
    out = image.copy()
    out[inside] = cv2.cvtColor(dst, cv2.COLOR_Lab2RGB)[inside]
    return out


class ClassicalInpainter:
    """Inpainter backed by ``cv2.inpaint`` (``telea``, ``ns``) or ``cv2.xphoto.inpaint`` (``fsr_fast``,
    ``fsr_best``). Works on any size; ``guidance`` is ignored. The hole pixels are blanked before OpenCV sees
    them.

    ``images``: N x H x W x 3 uint8 RGB; ``masks``: N x H x W uint8 (non-zero = hole) -> N x H x W x 3 uint8.
    """

    def __init__(self, method: str = "telea", radius: int = 5) -> None:
        if method in XPHOTO_METHODS:
            if not xphoto_available():
                raise EngineError(f"engine {method} needs OpenCV's contrib modules (cv2.xphoto): "
                                  "pip install opencv-contrib-python-headless")
        elif method not in METHODS:
            raise EngineError(f"unknown classical method {method!r} (known: {', '.join(available_methods())})")
        self.name = method
        self.radius = radius
        self._flag = METHODS.get(method)

    def inpaint(self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        out = np.empty_like(images)
        for i in range(images.shape[0]):
            m = (masks[i] > 0).astype(np.uint8)
            if not m.any():
                out[i] = images[i]
            elif self._flag is None:
                out[i] = fsr_inpaint(images[i], m, self.name)
            else:
                src = np.ascontiguousarray(images[i]).copy()
                src[m > 0] = 0
                out[i] = cv2.inpaint(src, m, self.radius, self._flag)
        return out
