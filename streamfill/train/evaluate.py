"""Held-out evaluation of whole-picture filling: mean errors inside free-form holes, method vs method.

Each photo is downscaled so its longer side is at most ``max_side``, gets ``masks_per_image`` seeded
free-form holes (the training mask generator at the photo's size), and every method fills it. Errors are on
[0, 1] inside the holes (see ``streamfill.train.metrics``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import cv2
import numpy as np

from streamfill.train.config import MaskGenConfig, SketchConfig
from streamfill.train.data import edges, find_sources
from streamfill.train.masks import random_mask
from streamfill.train.metrics import hole_metrics

FillFn = Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]
"""(image H x W x 3 uint8 RGB, mask H x W uint8 255 = hole, sketch H x W uint8 or None) -> H x W x 3 uint8."""


def load_photos(paths: Sequence[str | os.PathLike], max_side: int) -> list[tuple[str, np.ndarray]]:
    from streamfill.io import read_image

    images, _ = find_sources(paths)
    out = []
    for p in images:
        img = read_image(p)
        h, w = img.shape[:2]
        s = min(1.0, max_side / max(h, w))
        if s < 1.0:
            img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        out.append((p.name, img))
    return out


def evaluate_methods(
    photos: Sequence[tuple[str, np.ndarray]],
    methods: Mapping[str, FillFn],
    *,
    masks_per_image: int = 2,
    seed: int = 0,
    mask_cfg: MaskGenConfig | None = None,
    sketch_cfg: SketchConfig | None = None,
) -> dict[str, dict[str, float]]:
    """{method: {"l1", "l2", "psnr"}} over every (photo, hole) pair; a method whose name ends in "+sketch" gets
    the Canny sketch of the ground truth inside the hole, the others get None."""
    mask_cfg = mask_cfg or MaskGenConfig()
    sketch_cfg = sketch_cfg or SketchConfig()
    rng = np.random.default_rng([seed, 2024])
    results: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {m: [] for m in methods}
    for _, img in photos:
        h, w = img.shape[:2]
        for _ in range(masks_per_image):
            mask = random_mask(rng, h, w, mask_cfg)
            sketch = edges(img, sketch_cfg) & mask
            for name, fill in methods.items():
                out = fill(img, mask, sketch if name.endswith("+sketch") else None)
                results[name].append((out, img, mask))
    summary = {}
    for name, rows in results.items():
        l1 = [hole_metrics(o[None], t[None], m[None]) for o, t, m in rows]
        hole = np.array([(m > 0).sum() for _, _, m in rows], np.float64)
        summary[name] = {
            "l1": float(np.sum([r["l1"] * n for r, n in zip(l1, hole, strict=True)]) / hole.sum()),
            "l2": float(np.sum([r["l2"] * n for r, n in zip(l1, hole, strict=True)]) / hole.sum()),
            "psnr": float(np.mean([r["psnr"] for r in l1])),
            "samples": len(rows),
        }
    return summary
