"""Held-out evaluation of whole-picture filling: mean errors inside free-form holes, method vs method.

Each photo is downscaled so its longer side is at most ``max_side`` and gets ``masks_per_image`` seeded
free-form holes (the training mask generator at the photo's size). Every method receives the photo with the
hole **blanked** (black): no method sees the truth inside the hole, and no paste can blend it back in. The
one deliberate exception is a method whose name ends in ``+sketch``: it also gets the Canny edges of the truth
inside the hole (an *oracle* sketch, standing for what a user would draw). Errors are on [0, 1] inside the
user's hole (see ``streamfill.train.metrics``); a method may grow the hole by a safety margin (as
``streamfill image`` does), but it is scored on the pixels the user marked.
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
"""(image H x W x 3 uint8 RGB with the hole blanked, mask H x W uint8 255 = hole, sketch H x W uint8 or None)
-> H x W x 3 uint8."""


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


def blanked(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with the hole (``mask`` non-zero) set to black: what every method is given."""
    out = image.copy()
    out[mask > 0] = 0
    return out


def evaluate_methods(
    photos: Sequence[tuple[str, np.ndarray]],
    methods: Mapping[str, FillFn],
    *,
    masks_per_image: int = 2,
    seed: int = 0,
    mask_cfg: MaskGenConfig | None = None,
    sketch_cfg: SketchConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, dict[str, float]]:
    """{method: {"l1", "l2", "psnr", "samples", "worst_l1", "worst_psnr"}} over every (photo, hole) pair (L1
    and L2 pooled over the hole pixels, PSNR the mean over samples; the worst values are those of the single
    worst sample). Every method gets the photo with the hole blanked; a method whose name ends in "+sketch"
    also gets the Canny sketch of the ground truth inside the hole (an oracle), the others get None.
    ``progress(method, done, total)`` is called after each fill."""
    mask_cfg = mask_cfg or MaskGenConfig()
    sketch_cfg = sketch_cfg or SketchConfig()
    rng = np.random.default_rng([seed, 2024])
    results: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {m: [] for m in methods}
    total = len(photos) * masks_per_image * len(methods)
    done = 0
    for _, img in photos:
        h, w = img.shape[:2]
        for _ in range(masks_per_image):
            mask = random_mask(rng, h, w, mask_cfg)
            sketch = edges(img, sketch_cfg) & mask
            given = blanked(img, mask)
            for name, fill in methods.items():
                out = fill(given.copy(), mask, sketch if name.endswith("+sketch") else None)
                results[name].append((out, img, mask))
                done += 1
                if progress is not None:
                    progress(name, done, total)
    summary = {}
    for name, rows in results.items():
        per = [hole_metrics(o[None], t[None], m[None]) for o, t, m in rows]
        hole = np.array([(m > 0).sum() for _, _, m in rows], np.float64)
        summary[name] = {
            "l1": float(np.sum([r["l1"] * n for r, n in zip(per, hole, strict=True)]) / hole.sum()),
            "l2": float(np.sum([r["l2"] * n for r, n in zip(per, hole, strict=True)]) / hole.sum()),
            "psnr": float(np.mean([r["psnr"] for r in per])),
            "samples": len(rows),
            "worst_l1": float(max(r["l1"] for r in per)),
            "worst_psnr": float(min(r["psnr"] for r in per)),
        }
    return summary
