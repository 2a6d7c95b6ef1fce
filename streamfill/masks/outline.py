"""A small object's yielded outline redrawn by a learned net (:class:`OutlineRefiner`), after the tracker and the snap.

The tracker's outline is about a pixel off either way, and through a codec the picture's blends decide it no
better (see :mod:`streamfill.masks.matte`). A small fully convolutional net (``streamfill/data/outline.onnx``,
trained by ``streamfill train outline``: :mod:`streamfill.train.outline`) reads the frame's colours around the
object with the tracker's 0/1 mask and gives the object's mask again: residual logits over the mask, so that by
default it keeps what it is given. It was trained on the tracker's own yields over generated scenes (the tune half
of the photos, half of the runs through H.264), against the scenes' true masks.

Only objects whose mask's box is at most ``MAX_SIDE`` px are redrawn (the net's receptive field, about 40 px, sees
their outline whole), and only within ``REACH`` px of the mask. Only the yielded mask is redrawn, never the
tracker's state: nothing builds up from it frame to frame. Runs through OpenCV's DNN module, so the tracker stays
free of torch; one call costs about 1.5 ms CPU for a 20 px object, 2.5-4 ms up to 80 px. See "Twenty-fifth
pass" in docs/guide/tracking.md."""

from __future__ import annotations

from importlib import resources

import cv2
import numpy as np

MAX_SIDE = 80  # px: longer side of the mask's box, at most, for the net to redraw it
REACH = 8  # px: the net decides within the mask grown by this much; elsewhere the mask stands
CONTEXT = 8  # px: the picture given to the net reaches this far beyond that region
WEIGHTS = "outline.onnx"


def small_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``mask``'s box (x0, y0, x1, y1, ends excluded) when the net redraws it, or None for a mask of under 4 pixels
    or with a box over ``MAX_SIDE`` px."""
    u8 = mask.view(np.uint8)
    if cv2.countNonZero(u8) < 4:
        return None
    x, y, w, h = cv2.boundingRect(u8)
    if max(w, h) > MAX_SIDE:
        return None
    return x, y, x + w, y + h


def canvas_warp(mask: np.ndarray, side: int) -> np.ndarray | None:
    """The 2 x 3 whole-pixel shift from the frame to a ``side`` x ``side`` canvas centred on ``mask``'s box (how
    training crops are cut), or None where :func:`small_box` gives none."""
    box = small_box(mask)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    return np.array([[1.0, 0.0, side // 2 - cx], [0.0, 1.0, side // 2 - cy]])


def net_input(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1 x 4 x H x W float32: the colours (RGB / 255 - 0.5) and the mask (0/1), as the net was trained."""
    x = np.empty((1, 4) + mask.shape, np.float32)
    x[0, :3] = np.moveaxis(rgb, -1, 0) / np.float32(255.0) - np.float32(0.5)
    x[0, 3] = mask
    return x


def reach_kernel() -> np.ndarray:
    return np.ones((2 * REACH + 1, 2 * REACH + 1), np.uint8)


class OutlineRefiner:
    """Redraws a small object's mask from the picture (see the module docstring). ``weights``: an ONNX file (default:
    the packaged ``outline.onnx``). One instance per tracker: OpenCV's network is not shared between threads."""

    def __init__(self, weights: str | None = None) -> None:
        if weights is None:
            with resources.as_file(resources.files("streamfill") / "data" / WEIGHTS) as path:
                self.net = cv2.dnn.readNetFromONNX(str(path))
        else:
            self.net = cv2.dnn.readNetFromONNX(str(weights))
        self._kernel = reach_kernel()
        self.calls = 0  # masks redrawn (for tests and statistics)

    def __call__(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``mask`` (H x W bool) of the object in ``rgb`` (H x W x 3 uint8 RGB), redrawn where the net may; the same
        array when the mask is empty, tiny or over ``MAX_SIDE`` px."""
        box = small_box(mask)
        if box is None:
            return mask
        x0, y0, x1, y1 = box
        H, W = mask.shape
        m = REACH + CONTEXT
        rx0, ry0, rx1, ry1 = max(0, x0 - m), max(0, y0 - m), min(W, x1 + m), min(H, y1 + m)
        given = mask[ry0:ry1, rx0:rx1]
        self.net.setInput(net_input(rgb[ry0:ry1, rx0:rx1], given))
        logits = self.net.forward()[0, 0]
        region = cv2.dilate(given.view(np.uint8), self._kernel) > 0
        out = mask.copy()
        out[ry0:ry1, rx0:rx1] = np.where(region, logits > 0.0, given)
        self.calls += 1
        return out
