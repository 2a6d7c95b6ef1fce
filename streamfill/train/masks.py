"""Random training holes: free-form strokes (the DeepFill v2 paper's algorithm), boxes, object-shaped blobs.

Every function takes a ``numpy.random.Generator`` so that a seed reproduces the exact masks. Masks are
H x W uint8 with 255 = hole, 0 = known (the project's mask convention).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamfill.train.config import MaskGenConfig

REFERENCE_SIZE = 256
"""Stroke widths, box and blob sizes in ``MaskGenConfig`` are given for a crop of this size."""


def stroke_mask(rng: np.random.Generator, height: int, width: int, cfg: MaskGenConfig) -> np.ndarray:
    """Free-form brush strokes as in the paper: 1-3 polylines of 4-11 vertices with zig-zag angles around
    ``angle_mean``, segment lengths ~ N(d/8, d/16) clipped to [0, d/4] (d = the crop's diagonal), drawn with a
    round brush whose width is uniform in [width_min, width_max] (scaled to the crop), randomly flipped."""
    mask = np.zeros((height, width), np.uint8)
    scale = min(height, width) / REFERENCE_SIZE
    radius = math.hypot(height, width) / 8
    n_strokes = int(rng.integers(cfg.strokes_min, cfg.strokes_max + 1))
    for _ in range(n_strokes):
        n_vertex = int(rng.integers(cfg.vertices_min, cfg.vertices_max + 1))
        a_lo = cfg.angle_mean - rng.uniform(0, cfg.angle_range)
        a_hi = cfg.angle_mean + rng.uniform(0, cfg.angle_range)
        x = float(rng.uniform(0, width))
        y = float(rng.uniform(0, height))
        points = [(x, y)]
        for i in range(n_vertex):
            angle = rng.uniform(a_lo, a_hi)
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            r = float(np.clip(rng.normal(radius, radius / 2), 0, 2 * radius))
            x = float(np.clip(x + r * math.cos(angle), 0, width - 1))
            y = float(np.clip(y + r * math.sin(angle), 0, height - 1))
            points.append((x, y))
        brush = max(1, round(rng.uniform(cfg.width_min, cfg.width_max) * scale))
        pts = np.round(np.array(points)).astype(np.int32)
        cv2.polylines(mask, [pts], False, 255, thickness=brush, lineType=cv2.LINE_8)
        for px, py in pts:
            cv2.circle(mask, (int(px), int(py)), brush // 2, 255, thickness=-1)
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    if rng.random() < 0.5:
        mask = mask[::-1, :]
    return np.ascontiguousarray(mask)


def box_mask(rng: np.random.Generator, height: int, width: int, cfg: MaskGenConfig) -> np.ndarray:
    """One axis-aligned rectangle whose sides are uniform in [box_min, box_max] of the crop's sides."""
    mask = np.zeros((height, width), np.uint8)
    bh = max(1, round(rng.uniform(cfg.box_min, cfg.box_max) * height))
    bw = max(1, round(rng.uniform(cfg.box_min, cfg.box_max) * width))
    top = int(rng.integers(0, height - bh + 1))
    left = int(rng.integers(0, width - bw + 1))
    mask[top : top + bh, left : left + bw] = 255
    return mask


def blob_mask(rng: np.random.Generator, height: int, width: int, cfg: MaskGenConfig) -> np.ndarray:
    """An object-shaped hole: a smooth random field under an elliptic window (random aspect, often upright
    like a person), thresholded to one connected silhouette and dilated like a segmentation mask would be."""
    size = rng.uniform(cfg.blob_min, cfg.blob_max) * min(height, width)
    aspect = math.exp(rng.uniform(-0.4, 1.0))  # height / width, > 1 more often (people, poles, signs)
    bh = max(4, round(size * math.sqrt(aspect)))
    bw = max(4, round(size / math.sqrt(aspect)))
    bh, bw = min(bh, height), min(bw, width)
    coarse = rng.normal(size=(6, 6)).astype(np.float32)
    field = cv2.resize(coarse, (bw, bh), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    r2 = ((yy - (bh - 1) / 2) / (bh / 2)) ** 2 + ((xx - (bw - 1) / 2) / (bw / 2)) ** 2
    field = field * 0.35 + (1.0 - r2) * 1.5
    shape = (field > 0.3).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(shape, connectivity=8)
    if count > 1:
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        shape = (labels == biggest).astype(np.uint8)
    else:
        shape = np.zeros((bh, bw), np.uint8)
        cv2.ellipse(shape, (bw // 2, bh // 2), (max(1, bw // 3), max(1, bh // 3)), 0, 0, 360, 1, -1)
    mask = np.zeros((height, width), np.uint8)
    top = int(rng.integers(0, height - bh + 1))
    left = int(rng.integers(0, width - bw + 1))
    mask[top : top + bh, left : left + bw] = shape * 255
    grow = max(1, round(min(height, width) / 64))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.dilate(mask, kernel)


def random_mask(rng: np.random.Generator, height: int, width: int, cfg: MaskGenConfig) -> np.ndarray:
    """One training hole: strokes, plus a box with ``box_prob``, plus a blob with ``blob_prob``; redrawn (up to
    32 times) until the covered fraction lies in [min_coverage, max_coverage]. H x W uint8, 255 = hole."""
    mask = np.zeros((height, width), np.uint8)
    for _ in range(32):
        mask = stroke_mask(rng, height, width, cfg) if cfg.strokes_max > 0 else np.zeros_like(mask)
        if rng.random() < cfg.box_prob:
            mask |= box_mask(rng, height, width, cfg)
        if rng.random() < cfg.blob_prob:
            mask |= blob_mask(rng, height, width, cfg)
        coverage = float(np.count_nonzero(mask)) / mask.size
        if cfg.min_coverage <= coverage <= cfg.max_coverage:
            return mask
    return mask


def mask_batch(rng: np.random.Generator, n: int, height: int, width: int, cfg: MaskGenConfig) -> np.ndarray:
    """``n`` independent training holes: N x H x W uint8, 255 = hole."""
    return np.stack([random_mask(rng, height, width, cfg) for _ in range(n)])


def mask_grid(cfg: MaskGenConfig, *, count: int = 16, size: int = 256, seed: int = 0,
              columns: int | None = None) -> np.ndarray:
    """A contact sheet of ``count`` training masks of ``size`` px (white = hole) on a grey grid, for a look:
    H x W uint8. The same seed gives the same sheet."""
    rng = np.random.default_rng(seed)
    masks = mask_batch(rng, count, size, size, cfg)
    return tile(masks[..., None].repeat(3, axis=-1), columns=columns)[..., 0]


def tile(images: np.ndarray, *, columns: int | None = None, gap: int = 4, background: int = 96) -> np.ndarray:
    """Lay N x H x W x C uint8 images on a grid (row-major) with ``gap`` px gutters: uint8 H' x W' x C."""
    n, h, w, c = images.shape
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    sheet = np.full((rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, c), background, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + k * (w + gap)
        sheet[y : y + h, x : x + w] = images[i]
    return sheet
