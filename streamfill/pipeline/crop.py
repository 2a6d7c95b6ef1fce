"""Crop planning: which region around each hole is cut out, and at which working size it is filled.

A hole's bounding box plus proportional context becomes a square crop (clipped to the frame), resized to
the smallest working size that holds it (or the largest one, downscaling). Holes whose crops would overlap
are merged into one crop. Cost therefore depends on the holes, not on the frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamfill.config import CropConfig


@dataclass(frozen=True)
class Crop:
    """A region ``[y0:y1, x0:x1]`` of the frame filled at ``size`` x ``size``; ``labels`` are the connected
    components (of the label image returned by ``plan_crops``) whose pixels this crop pastes."""

    x0: int
    y0: int
    x1: int
    y1: int
    size: int
    labels: tuple[int, ...]

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def _square(box: tuple[int, int, int, int], cfg: CropConfig, w: int, h: int) -> tuple[int, int, int, int]:
    """Grow a hole box by its context into a square of at least the smallest working size, inside the frame."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    ctx = max(cfg.min_context, int(round(cfg.context * max(bw, bh))))
    side = max(bw, bh) + 2 * ctx
    side = max(side, min(cfg.sizes[0], max(w, h)))
    sw, sh = min(side, w), min(side, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    nx0 = int(round(cx - sw / 2))
    ny0 = int(round(cy - sh / 2))
    nx0 = min(max(nx0, 0), w - sw)
    ny0 = min(max(ny0, 0), h - sh)
    return nx0, ny0, nx0 + sw, ny0 + sh


MANY_HOLES = 64  # above this many separate holes plan_crops first joins crops in passes over the frame


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _merge_many(groups: list, cfg: CropConfig, w: int, h: int) -> list:
    """Join the groups whose crops overlap, then again with the grown crops, until at most ``MANY_HOLES`` are
    left or no two crops overlap.

    Each round paints every crop less its last row and column and joins the crops that meet 8-connected, which
    are exactly those that share a pixel (and chains of such): a few frame-sized passes however many holes
    there are. (The pairwise search alone, restarted after each merge, took 6 s per 1080p frame and 30 s per 4K
    frame for a speckled mask of a few thousand specks.)"""
    while len(groups) > MANY_HOLES:
        squares = [_square(box, cfg, w, h) for box, _ in groups]
        canvas = np.zeros((h, w), np.uint8)
        for x0, y0, x1, y1 in squares:
            canvas[y0:max(y1 - 1, y0 + 1), x0:max(x1 - 1, x0 + 1)] = 1
        n, joined = cv2.connectedComponents(canvas, connectivity=8)
        if n - 1 == len(groups):
            break
        merged: dict[int, tuple[tuple[int, int, int, int], list[int]]] = {}
        for (box, labs), (x0, y0, _, _) in zip(groups, squares, strict=True):
            k = int(joined[y0, x0])
            if k in merged:
                b, la = merged[k]
                merged[k] = ((min(b[0], box[0]), min(b[1], box[1]), max(b[2], box[2]), max(b[3], box[3])), la + labs)
            else:
                merged[k] = (box, labs)
        groups = list(merged.values())
    return groups


def pick_size(side: int, sizes: tuple[int, ...]) -> int:
    """The smallest working size >= ``side``, else the largest (the crop is then downscaled)."""
    for s in sizes:
        if s >= side:
            return s
    return sizes[-1]


def plan_crops(hole: np.ndarray, cfg: CropConfig) -> tuple[list[Crop], np.ndarray]:
    """Plan crops for a boolean/uint8 H x W hole mask. Returns (crops, labels) where ``labels`` is the
    int32 connected-component image the crops' ``labels`` refer to. An empty mask gives no crops."""
    h, w = hole.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hole.astype(np.uint8), connectivity=8)
    groups: list[tuple[tuple[int, int, int, int], list[int]]] = []
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        groups.append(((x, y, x + bw, y + bh), [i]))
    if len(groups) > MANY_HOLES:  # a speckled mask: join in a few frame-sized passes first
        groups = _merge_many(groups, cfg, w, h)
    # Merge groups whose crops overlap until none do (few holes by now: quadratic is fine).
    merged = True
    while merged and len(groups) > 1:
        merged = False
        squares = [_square(g[0], cfg, w, h) for g in groups]
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if _overlap(squares[a], squares[b]):
                    (ba, la), (bb, lb) = groups[a], groups[b]
                    box = (min(ba[0], bb[0]), min(ba[1], bb[1]), max(ba[2], bb[2]), max(ba[3], bb[3]))
                    groups[a] = (box, la + lb)
                    del groups[b]
                    merged = True
                    break
            if merged:
                break
    crops = []
    for box, labs in groups:
        x0, y0, x1, y1 = _square(box, cfg, w, h)
        size = pick_size(max(x1 - x0, y1 - y0), cfg.sizes)
        crops.append(Crop(x0, y0, x1, y1, size, tuple(labs)))
    return crops, labels
