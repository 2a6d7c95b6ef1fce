"""Hole metrics and the classical baseline (OpenCV Telea) used by validation.

Images N x H x W x 3 uint8 RGB, masks N x H x W uint8 (nonzero = hole). Errors are measured on [0, 1] over
the hole pixels only (all three channels): L1 = mean |a - b|, L2 = mean (a - b)^2, PSNR = the mean over images
of 10 log10(1 / L2_i).
"""

from __future__ import annotations

import cv2
import numpy as np


def hole_metrics(output: np.ndarray, target: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """L1, L2 (pooled over every hole pixel of the batch) and PSNR (mean over images) inside the holes."""
    hole = masks > 0
    diff = (output.astype(np.float64) - target.astype(np.float64)) / 255.0
    count = int(hole.sum()) * 3
    if count == 0:
        return {"l1": 0.0, "l2": 0.0, "psnr": float("inf")}
    d_hole = diff[hole]
    l1 = float(np.abs(d_hole).sum() / count)
    l2 = float((d_hole**2).sum() / count)
    psnrs = []
    for i in range(len(output)):
        h = hole[i]
        if not h.any():
            continue
        mse = float((diff[i][h] ** 2).mean())
        psnrs.append(10 * np.log10(1.0 / max(mse, 1e-10)))
    return {"l1": l1, "l2": l2, "psnr": float(np.mean(psnrs))}


def telea_fill(images: np.ndarray, masks: np.ndarray, radius: int = 5) -> np.ndarray:
    """OpenCV's Telea inpainting of each image (the classical baseline): N x H x W x 3 uint8 RGB."""
    out = np.empty_like(images)
    for i in range(len(images)):
        m = (masks[i] > 0).astype(np.uint8) * 255
        src = np.ascontiguousarray(images[i]).copy()
        src[m > 0] = 0  # the hole is blanked: no method sees the truth there
        out[i] = cv2.inpaint(src, m, radius, cv2.INPAINT_TELEA)
    return out
