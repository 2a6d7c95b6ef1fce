"""Random training holes: free-form strokes (the DeepFill v2 paper's algorithm), boxes, object-shaped blobs, and
the silhouettes of real object cut-outs (``masks.stamp_dir``: PNGs with alpha, e.g. tuxpaint's stamps).

Every function takes a ``numpy.random.Generator`` so that a seed reproduces the exact masks. Masks are
H x W uint8 with 255 = hole, 0 = known (the project's mask convention).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from streamfill.errors import InputError
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


STAMP_SUFFIXES = (".png", ".webp", ".tif", ".tiff", ".bmp")


@lru_cache(maxsize=4)
def load_stamps(folder: str) -> tuple[np.ndarray, ...]:
    """The object silhouettes in ``folder`` (sorted by name, searched recursively): H x W uint8, 255 = object.
    The alpha channel of RGBA/grey-alpha files, else the grey level; >= 128 counts as object; each silhouette is
    cropped to its bounding box. Cached per folder. Raises InputError for a missing or empty folder."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"masks.stamp_dir {folder!r}: no such folder")
    shapes = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in STAMP_SUFFIXES):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            continue
        if image.ndim == 3 and image.shape[2] in (2, 4):
            plane = image[..., -1]
        elif image.ndim == 3:
            plane = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        else:
            plane = image
        if plane.dtype != np.uint8:
            plane = (plane.astype(np.float32) * (255.0 / max(1.0, float(np.iinfo(plane.dtype).max)))).astype(np.uint8)
        shape = np.where(plane >= 128, 255, 0).astype(np.uint8)
        ys, xs = np.nonzero(shape)
        if len(ys) == 0:
            continue
        shapes.append(np.ascontiguousarray(shape[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]))
    if not shapes:
        raise InputError(f"masks.stamp_dir {folder!r}: no cut-outs (PNG with alpha, or grey) found")
    return tuple(shapes)


def stamp_mask(rng: np.random.Generator, height: int, width: int, cfg: MaskGenConfig) -> np.ndarray:
    """An object-shaped hole from real cut-outs: 1..``stamp_count`` silhouettes from ``stamp_dir``, each scaled so
    its longer side is uniform in [stamp_min, stamp_max] of the crop side, rotated by up to +-20 degrees, flipped
    with probability 1/2, placed at random (it may leave the crop), then grown by 1/64 of the crop side as a
    segmentation mask would be; free-form strokes are added with ``stamp_strokes``."""
    shapes = load_stamps(cfg.stamp_dir)
    mask = np.zeros((height, width), np.uint8)
    side = min(height, width)
    for _ in range(int(rng.integers(1, cfg.stamp_count + 1))):
        shape = shapes[int(rng.integers(0, len(shapes)))]
        if rng.random() < 0.5:
            shape = shape[:, ::-1]
        sh, sw = shape.shape
        target = rng.uniform(cfg.stamp_min, cfg.stamp_max) * side
        scale = target / max(sh, sw)
        angle = float(rng.uniform(-20.0, 20.0))
        # scale and rotate about the centre into a canvas big enough for any rotation
        diag = max(4, math.ceil(math.hypot(sh, sw) * scale) + 2)
        m = cv2.getRotationMatrix2D(((sw - 1) / 2, (sh - 1) / 2), angle, scale)
        m[:, 2] += np.array([(diag - 1) / 2, (diag - 1) / 2]) - np.array([(sw - 1) / 2, (sh - 1) / 2])
        warped = cv2.warpAffine(np.ascontiguousarray(shape), m, (diag, diag), flags=cv2.INTER_LINEAR,
                                borderValue=0)
        warped = np.where(warped >= 128, 255, 0).astype(np.uint8)
        cy = int(rng.integers(0, height))
        cx = int(rng.integers(0, width))
        top, left = cy - diag // 2, cx - diag // 2
        y0, x0 = max(0, top), max(0, left)
        y1, x1 = min(height, top + diag), min(width, left + diag)
        if y1 > y0 and x1 > x0:
            mask[y0:y1, x0:x1] |= warped[y0 - top : y1 - top, x0 - left : x1 - left]
    grow = max(1, round(side / 64))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    mask = cv2.dilate(mask, kernel)
    if cfg.stamp_strokes > 0 and rng.random() < cfg.stamp_strokes and cfg.strokes_max > 0:
        mask |= stroke_mask(rng, height, width, cfg)
    return mask


def random_mask(rng: np.random.Generator, height: int, width: int, cfg: MaskGenConfig) -> np.ndarray:
    """One training hole: with ``stamp_prob`` an object cut-out hole (``stamp_mask``); otherwise strokes, plus a
    box with ``box_prob``, plus a blob with ``blob_prob``. Redrawn (up to 32 times) until the covered fraction
    lies in [min_coverage, max_coverage]. H x W uint8, 255 = hole. With ``stamp_prob`` = 0 no random number is
    drawn for the choice, so existing seeds give the same masks as before."""
    mask = np.zeros((height, width), np.uint8)
    for _ in range(32):
        if cfg.stamp_prob > 0 and rng.random() < cfg.stamp_prob:
            mask = stamp_mask(rng, height, width, cfg)
        else:
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
