"""Masks from boxes: the object inside an (x, y, w, h) box, segmented with GrabCut (``--box`` keyframes,
cut-outs for the tracking benchmark)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from streamfill.types import Mask


def box_to_mask(image: np.ndarray, box: Sequence[int], iterations: int = 4) -> Mask:
    """Segment the object inside ``box`` (x, y, w, h) of ``image`` (H x W x 3 uint8 RGB) with GrabCut.

    Returns H x W uint8, 255 = object, zero outside the box. If GrabCut finds almost nothing (under 10 % of
    the box) the whole box is returned.
    """
    mask = segment_box(image, box, iterations)
    return whole_box(image.shape[:2], box) if mask is None else mask


def whole_box(shape: tuple[int, int], box: Sequence[int]) -> Mask:
    """H x W uint8 with the box (x, y, w, h) at 255, zero elsewhere."""
    x, y, bw, bh = (int(v) for v in box)
    out = np.zeros(shape, np.uint8)
    out[y : y + bh, x : x + bw] = 255
    return out


def segment_box(image: np.ndarray, box: Sequence[int], iterations: int = 4) -> Mask | None:
    """GrabCut's object inside ``box`` (H x W uint8 255 = object, zero outside the box), or None when it
    finds under 10 % of the box (nothing there stands out from its surroundings).

    The same picture and box always give the same mask: GrabCut starts its colour models with k-means++ drawn
    from OpenCV's random generator, which carries over from call to call, and on an ambiguous picture the
    second call of a process found a different object than the first, or none: the studio, the Python API or
    ``live`` could answer one box two ways. So each call first resets that generator (OpenCV's, per thread) to
    its start: every call gives what the first call of a fresh process gave."""
    h, w = image.shape[:2]
    x, y, bw, bh = (int(v) for v in box)
    # Work on a crop around the box at most ~256 px across, for speed.
    pad = max(8, round(0.25 * max(bw, bh)))
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(w, x + bw + pad), min(h, y + bh + pad)
    crop = image[y0:y1, x0:x1]
    s = min(1.0, 256.0 / max(crop.shape[:2]))
    small = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else crop
    rect = (
        round((x - x0) * s), round((y - y0) * s), max(1, round(bw * s)), max(1, round(bh * s))
    )
    gc = np.zeros(small.shape[:2], np.uint8)
    try:
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # OpenCV's generator as a fresh process has it (its seed 0 means its default state)
        cv2.grabCut(
            np.ascontiguousarray(small[..., ::-1]), gc, rect, bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT
        )
    except cv2.error:
        return None
    obj = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8) * 255
    obj = cv2.resize(obj, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((h, w), np.uint8)
    out[y0:y1, x0:x1] = np.where(obj > 127, 255, 0)
    out &= whole_box((h, w), box)
    return out if (out > 0).sum() >= 0.1 * bw * bh else None
