"""Mask operations. Masks are H x W uint8 with 255 = fill (hole) and 0 = keep."""

from __future__ import annotations

import cv2
import numpy as np


def binarize(mask: np.ndarray, threshold: int = 127) -> np.ndarray:
    """H x W (or H x W x C, max over channels) any dtype -> H x W uint8 in {0, 255}; > threshold is a hole."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.max(axis=2)
    if m.dtype == bool:
        return m.astype(np.uint8) * 255
    return np.where(m > threshold, np.uint8(255), np.uint8(0))


def disk(radius: int) -> np.ndarray:
    """Elliptical structuring element of ``radius`` px (a (2r+1) x (2r+1) disc) for OpenCV morphology."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the hole by ``pixels`` (elliptical structuring element). Returns a new H x W uint8 mask."""
    if pixels <= 0 or not mask.any():
        return mask
    k = disk(pixels)
    return cv2.dilate(mask, k)


def feather_alpha(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Blend weights for pasting a fill: H x W float32 in [0, 1], 0 outside the hole, rising to 1 over
    ``pixels`` pixels inside it. The feather never reaches outside the hole, so known pixels stay exact."""
    hole = mask > 0
    if pixels <= 0:
        return hole.astype(np.float32)
    dist = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
    return np.clip(dist / float(pixels + 1), 0.0, 1.0).astype(np.float32)


def paste_alpha(hole: np.ndarray, feather: int, margin: int) -> np.ndarray:
    """Blend weights for pasting a fill into a hole that is the user's mask grown by ``margin`` pixels (as
    :func:`dilate` grows it): H x W float32 in [0, 1], 0 outside the hole, 1 on every pixel the user marked.

    The feather (a rise over ``min(feather, margin)`` pixels from the hole's border) lives only inside the
    safety margin: everywhere the hole shrunk back by ``margin`` (which holds the user's mask: eroding a
    dilation by the same element gives its closing, a superset) the weight is 1, so the marked pixels never
    reach the output, not even in part. ``margin`` 0 (no safety margin) means no feather."""
    inside = hole > 0
    width = min(int(feather), int(margin))
    if width <= 0 or not inside.any():
        return inside.astype(np.float32)
    alpha = feather_alpha(inside.astype(np.uint8), width)
    k = disk(margin)
    core = cv2.erode(inside.astype(np.uint8), k, borderType=cv2.BORDER_CONSTANT, borderValue=1) > 0
    alpha[core] = 1.0
    return alpha


def blank_hole(image: np.ndarray, hole: np.ndarray, value: int = 0) -> np.ndarray:
    """A copy of ``image`` (H x W x C or N x H x W x C uint8) with every hole pixel (``hole`` non-zero, same
    leading shape) set to ``value``: what every engine receives, so that no engine sees what the user marked."""
    out = np.array(image, copy=True)
    out[np.asarray(hole) > 0] = value
    return out


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), exclusive ends, of the hole; None for an empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def sketch_regions(hole: np.ndarray, sketch: np.ndarray, max_regions: int = 32, min_area: int = 16,
                   gap: int = 4) -> list[np.ndarray]:
    """The parts of ``hole`` that the lines of ``sketch`` cut apart: H x W bool masks, largest first.

    ``hole`` and ``sketch`` are H x W (non-zero = hole / stroke). The hole, less a band of ``gap`` px along
    its border, minus the strokes is split into 4-connected regions (so an 8-connected one-pixel line is a
    wall); a stroke therefore needs to reach only within ``gap`` px of the border (holes are usually dilated
    after the user drew them). The regions then grow back over that band (never over a stroke), so each
    touches the border along its own side. Regions under ``min_area`` pixels and beyond the ``max_regions``
    largest are left out. Returns ``[]`` when the strokes split nothing (at most one region)."""
    free = (hole > 0) & (sketch == 0)
    if not free.any() or not ((hole > 0) & (sketch > 0)).any():
        return []
    inner = free
    if gap:
        inner = free & (cv2.erode((hole > 0).astype(np.uint8), np.ones((2 * gap + 1, 2 * gap + 1), np.uint8)) > 0)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inner.astype(np.uint8), connectivity=4)
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = [int(i) + 1 for i in np.argsort(-areas, kind="stable") if areas[i] >= min_area][:max_regions]
    if len(order) < 2:
        return []
    lut = np.zeros(count, np.float32)
    lut[order] = np.arange(1, len(order) + 1)
    kept = lut[labels]
    square = np.ones((3, 3), np.uint8)
    for _ in range(gap):  # grow back over the band (as deep as the erosion), one pixel at a time
        grown = cv2.dilate(kept, square)
        take = free & (kept == 0) & (grown > 0)
        if not take.any():
            break
        kept[take] = grown[take]
    return [kept == i for i in range(1, len(order) + 1)]


def drop_specks(obj: np.ndarray) -> np.ndarray:
    """``obj`` (uint8 0/1) without its components smaller than 4 px or 2 % of the whole (specks of a cleaned mask)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(obj, connectivity=8)
    if n <= 2:
        return obj
    areas = stats[1:, cv2.CC_STAT_AREA]
    small = np.nonzero(areas < max(4, 0.02 * areas.sum()))[0] + 1
    if len(small):
        obj = obj.copy()
        obj[np.isin(labels, small)] = 0
    return obj
