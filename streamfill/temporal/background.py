"""Background memory for fixed cameras: a per-pixel model of the unoccluded background, learned only from
pixels outside the hole, that fills hole pixels the camera has already seen.

The model lives in the coordinates of a reference frame. Each new frame is aligned to the reference with a
rigid (Euclidean) ECC fit on downscaled grey (a third of the width, 192-640 px), so small camera shake is
compensated; when the fit is within 0.3 px (of that grid) of the identity the camera counts as static and no
resampling happens (pixels are copied exactly). When the camera moves further than ``shake`` x the frame
width, or the fit fails, the model restarts from the current frame (a new reference and a new ``epoch``).

Per pixel it keeps its last ``samples`` unoccluded observations (every one at first, then one every
``stride`` frames) and answers their median, so people walking past do not smear into the background and the
model follows lighting changes within ``samples x stride`` frames; plus a count of observations. Memory:
``samples`` x H x W x 3 bytes + 3 bytes per pixel (18 bytes per pixel with 5 samples), whatever the clip
length.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ALIGN_WIDTH = (192, 640)  # ECC works on grey frames a third as wide as the video, within these bounds
STATIC_PX = 0.3           # motion (in ECC-grid pixels) below which the camera counts as static: ECC's own noise


@dataclass(frozen=True)
class Placement:
    """Where a frame sits relative to the model: ``warp`` (2 x 3 float32, reference -> frame coordinates,
    full resolution) or None for the identity; ``epoch`` identifies the reference it refers to."""

    epoch: int
    warp: np.ndarray | None


class BackgroundMemory:
    """Per-pixel background model with shake compensation (see the module docstring).

    ``observe(image, hole)`` learns from one frame (image H x W x 3 uint8 RGB, hole H x W bool, True = not
    background) and returns its ``Placement``; ``read(placement, x0, y0, x1, y1)`` returns the model in that
    frame's coordinates over a box: (colour h x w x 3 float32 RGB 0-255, count h x w float32, 0 = never
    seen). A placement from an older epoch reads as never seen.
    """

    def __init__(self, samples: int = 5, stride: int = 2, shake: float = 0.03) -> None:
        self.k = int(samples)
        self.stride = max(1, int(stride))
        self.shake = float(shake)
        self.epoch = 0
        self.samples: np.ndarray | None = None   # K x H x W x 3 uint8: recent unoccluded observations
        self.slot: np.ndarray | None = None      # H x W uint8: where each pixel's next observation goes
        self.count: np.ndarray | None = None     # H x W uint16: observations so far (saturating)
        self.ref: np.ndarray | None = None
        self.scale = 1.0
        self.last = np.eye(2, 3, dtype=np.float32)
        self.frames = 0
        self.resets = 0

    @property
    def shape(self) -> tuple[int, int] | None:
        return None if self.count is None else self.count.shape

    def forget(self) -> None:
        """Drop the model (the next frame starts a new one)."""
        self.samples = self.slot = self.count = None

    def _small(self, image: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        h, w = grey.shape
        aw = int(min(w, max(ALIGN_WIDTH[0], min(ALIGN_WIDTH[1], w // 3))))
        size = (aw, max(8, int(round(h * aw / w))))
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)

    def _reset(self, image: np.ndarray, small: np.ndarray) -> None:
        h, w = image.shape[:2]
        self.samples = np.zeros((self.k, h, w, 3), np.uint8)
        self.slot = np.zeros((h, w), np.uint8)
        self.count = np.zeros((h, w), np.uint16)
        self.ref = small
        self.scale = small.shape[1] / w
        self.last = np.eye(2, 3, dtype=np.float32)
        self.epoch += 1
        self.resets += 1

    def _align(self, small: np.ndarray, hole: np.ndarray) -> np.ndarray | None:
        """Small-grid warp ref -> frame (2 x 3), or None when the fit fails."""
        valid = cv2.resize((~hole).astype(np.uint8) * 255, (small.shape[1], small.shape[0]),
                           interpolation=cv2.INTER_NEAREST)
        warp = self.last.copy()
        try:
            _, warp = cv2.findTransformECC(self.ref, small, warp, cv2.MOTION_EUCLIDEAN,
                                           (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 1e-4), valid, 3)
        except cv2.error:
            return None
        return warp.astype(np.float32)

    def _full(self, warp: np.ndarray) -> np.ndarray | None:
        """A small-grid warp at full resolution; None when it is (nearly) the identity."""
        s = self.scale
        a = warp[:, :2]
        c = np.full(2, 0.5 * s - 0.5, np.float32)
        b = (a @ c + warp[:, 2] + 0.5) / s - 0.5
        full = np.concatenate([a, b[:, None]], axis=1).astype(np.float32)
        h, w = self.count.shape
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float32)
        moved = corners @ a.T + b - corners
        if np.abs(moved).max() * s < STATIC_PX:
            return None
        return full

    def observe(self, image: np.ndarray, hole: np.ndarray) -> Placement:
        small = self._small(image)
        if self.count is None or self.count.shape != image.shape[:2]:
            self._reset(image, small)
            warp = None
        else:
            fit = self._align(small, hole)
            full = None if fit is None else self._full(fit)
            shift = 0.0 if full is None else float(np.abs(full[:, 2]).max())
            if fit is None or shift > self.shake * image.shape[1]:
                self._reset(image, small)
                warp = None
            else:
                self.last = fit
                warp = full
        self._update(image, hole, warp)
        self.frames += 1
        return Placement(self.epoch, warp)

    def _update(self, image: np.ndarray, hole: np.ndarray, warp: np.ndarray | None) -> None:
        h, w = hole.shape
        if warp is None:
            x = image
            valid = ~hole
        else:
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            x = cv2.warpAffine(image, warp, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)
            keep = cv2.warpAffine((~hole).astype(np.uint8), warp, (w, h), flags=cv2.INTER_NEAREST |
                                  cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            valid = cv2.erode(keep, np.ones((3, 3), np.uint8)) > 0
        new = valid & (self.count == 0)
        if new.any():  # first sight fills every sample, so the median is meaningful at once
            np.copyto(self.samples, x[None], where=new[None, ..., None])
        store = valid & ~new
        if self.frames % self.stride:
            store &= self.count < self.k
        idx = np.flatnonzero(store)
        if idx.size:
            pos = self.slot.reshape(-1)[idx]
            self.samples.reshape(self.k, -1, 3)[pos, idx] = x.reshape(-1, 3)[idx]
            self.slot.reshape(-1)[idx] = (pos + 1) % self.k
        self.count += (valid & (self.count < 65535)).view(np.uint8)

    def read(self, placement: Placement, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (y1 - y0, x1 - x0)
        if self.count is None or placement.epoch != self.epoch:
            return np.zeros((*shape, 3), np.float32), np.zeros(shape, np.float32)
        if placement.warp is None:
            return self._median(y0, y1, x0, x1), self.count[y0:y1, x0:x1].astype(np.float32)
        inv = cv2.invertAffineTransform(placement.warp)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        rx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
        ry = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
        # the median over the reference-frame box that covers the warped one, then resampled
        bx0 = max(0, int(np.floor(rx.min())) - 1)
        by0 = max(0, int(np.floor(ry.min())) - 1)
        bx1 = min(self.count.shape[1], int(np.ceil(rx.max())) + 2)
        by1 = min(self.count.shape[0], int(np.ceil(ry.max())) + 2)
        if bx1 <= bx0 or by1 <= by0:
            return np.zeros((*shape, 3), np.float32), np.zeros(shape, np.float32)
        med = self._median(by0, by1, bx0, bx1)
        colour = cv2.remap(med, rx - bx0, ry - by0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        count = cv2.remap(self.count[by0:by1, bx0:bx1], rx - bx0, ry - by0, cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT)
        return colour, count.astype(np.float32)

    def _median(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        block = self.samples[:, y0:y1, x0:x1]
        mid = self.k // 2
        return np.partition(block, mid, axis=0)[mid].astype(np.float32)
