"""Synthetic occluders with known masks, for the demo and for evaluation: a textured blob moving along a
smooth path over a real clip. Deterministic for a given seed."""

from __future__ import annotations

import math

import cv2
import numpy as np


class MovingOccluder:
    """An occluder of about ``scale`` x the frame's shorter side, crossing the frame in ``period`` frames.

    ``at(index, height, width)`` returns (mask H x W uint8 255 = occluder, colour H x W x 3 uint8 RGB).
    """

    def __init__(self, seed: int = 0, scale: float = 0.22, period: int = 120) -> None:
        rng = np.random.default_rng(seed)
        self.scale = scale
        self.period = period
        self.phase = float(rng.uniform(0, 2 * math.pi))
        n = 5
        self.lobes = [(float(rng.uniform(-0.35, 0.35)), float(rng.uniform(-0.35, 0.35)),
                       float(rng.uniform(0.25, 0.45))) for _ in range(n)]
        self.colour = tuple(int(c) for c in rng.integers(40, 230, size=3))

    def at(self, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        t = (index % self.period) / self.period
        size = self.scale * min(height, width)
        cx = width * (0.15 + 0.7 * t)
        cy = height * (0.5 + 0.25 * math.sin(2 * math.pi * t + self.phase))
        mask = np.zeros((height, width), np.uint8)
        for dx, dy, r in self.lobes:
            centre = (int(round(cx + dx * size)), int(round(cy + dy * size)))
            cv2.circle(mask, centre, max(2, int(round(r * size))), 255, -1, lineType=cv2.LINE_8)
        colour = np.empty((height, width, 3), np.uint8)
        colour[:] = self.colour
        stripes = ((np.arange(width)[None, :] + np.arange(height)[:, None] + index * 3) // 6) % 2 == 0
        colour[stripes] = 255 - np.array(self.colour, np.uint8)
        return mask, colour


def composite(image: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Paint ``colour`` over ``image`` where ``mask`` is non-zero (H x W x 3 uint8 RGB)."""
    return np.where(mask[..., None] > 0, colour, image)
