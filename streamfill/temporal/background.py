"""Background memory for fixed cameras: a per-pixel model of the unoccluded background, learned only from
pixels outside the hole, that fills hole pixels the camera has already seen.

The model lives in the coordinates of a reference frame. Each new frame is aligned to the reference with a
rigid (Euclidean) ECC fit on downscaled grey (a third of the width, 192-640 px), so small camera shake is
compensated; when the fit is within 0.3 px (of that grid) of the identity the camera counts as static and no
resampling happens (pixels are copied exactly). When the camera moves further than ``shake`` x the frame
width, or the fit fails, the model restarts from the current frame (a new reference and a new ``epoch``).

Per pixel it keeps its last ``samples`` unoccluded observations (every one at first, then one every
``stride`` frames) and answers their median, so people walking past do not smear into the background and the
model follows lighting changes within ``samples x stride`` frames; plus a count of observations. What changed
since the previous frame (grey difference above ``MOTION_LEVEL``, dilated) is something passing by and is
not stored (except at a pixel's first sight), so a group walking the same path does not become a ghost in
the median; only while the camera is static unless ``gate_moving`` (after a resampled alignment the
difference shows the alignment's error too, and the memory may starve). The ECC fit leaves out what
differs from the reference by more than ``ALIGN_LEVEL`` (walkers in either frame would drag the fit along: a
static camera would seem to shake). With the median comes its *support*: the share of the samples that
agree with it, low where the samples disagree (the median is then a guess). Memory: ``samples`` x H x W x 3
bytes + 3 bytes per pixel (18 bytes per pixel with 5 samples), whatever the clip
length.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ALIGN_WIDTH = (192, 640)  # ECC works on grey frames a third as wide as the video, within these bounds
STATIC_PX = 0.3           # motion (in ECC-grid pixels) below which the camera counts as static: ECC's own noise
MOTION_LEVEL = 12         # grey levels (blurred ECC grid) a pixel may change between frames and still be static
ALIGN_LEVEL = 24          # grey levels (blurred ECC grid) a pixel may differ from the reference and still be fitted
SUPPORT_LEVEL = 20.0      # 8-bit levels within which a sample agrees with the median (support)


@dataclass(frozen=True)
class Placement:
    """Where a frame sits relative to the model: ``warp`` (2 x 3 float32, reference -> frame coordinates,
    full resolution) or None for the identity; ``epoch`` identifies the reference it refers to."""

    epoch: int
    warp: np.ndarray | None

    def shift(self, width: int, height: int, other: Placement | None = None) -> float:
        """How far (px, the largest corner displacement) this frame's view is from ``other``'s (a placement of
        the same reference; default: the reference itself)."""
        corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float32)

        def place(p: Placement | None) -> np.ndarray:
            return corners if p is None or p.warp is None else corners @ p.warp[:, :2].T + p.warp[:, 2]

        return float(np.abs(place(self) - place(other)).max())


@dataclass
class View:
    """The model over a box of one frame (h x w each): ``colour`` 3-channel float32 RGB 0-255, the median of
    the samples; ``count`` observations (0 = never seen); ``support`` in [0, 1], the share of the samples
    within ``SUPPORT_LEVEL`` of the median (low where they disagree: something moved slowly through or
    lingered, and the median is a guess, not a background)."""

    colour: np.ndarray
    count: np.ndarray
    support: np.ndarray

    @staticmethod
    def empty(shape: tuple[int, int]) -> View:
        return View(np.zeros((*shape, 3), np.float32), np.zeros(shape, np.float32), np.zeros(shape, np.float32))


class BackgroundMemory:
    """Per-pixel background model with shake compensation (see the module docstring).

    ``observe(image, hole)`` learns from one frame (image H x W x 3 uint8 RGB, hole H x W bool, True = not
    background) and returns its ``Placement``; ``model(placement, x0, y0, x1, y1)`` returns the model in that
    frame's coordinates over a box as a ``View`` (colour, count of observations, support). A placement from
    an older epoch reads as never seen.
    """

    def __init__(self, samples: int = 5, stride: int = 2, shake: float = 0.03, *,
                 gate_moving: bool = False) -> None:
        self.k = int(samples)
        self.stride = max(1, int(stride))
        self.shake = float(shake)
        self.gate_moving = bool(gate_moving)
        self.epoch = 0
        self.samples: np.ndarray | None = None   # K x H x W x 3 uint8: recent unoccluded observations
        self.slot: np.ndarray | None = None      # H x W uint8: where each pixel's next observation goes
        self.count: np.ndarray | None = None     # H x W uint16: observations so far (saturating)
        self.ref: np.ndarray | None = None
        self.scale = 1.0
        self.last = np.eye(2, 3, dtype=np.float32)
        self.frames = 0
        self.resets = 0
        self.prev: tuple[int, np.ndarray, np.ndarray] | None = None  # (epoch, blurred grey, seen) of the last frame

    @property
    def shape(self) -> tuple[int, int] | None:
        return None if self.count is None else self.count.shape

    def forget(self) -> None:
        """Drop the model (the next frame starts a new one)."""
        self.samples = self.slot = self.count = None
        self.prev = None

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
        # Leave out what differs from the reference under the last fit: people who walked since (in either
        # frame) would pull the fit along with them. Not when that is most of the frame (the camera moved).
        sh, sw = small.shape
        ref = cv2.warpAffine(self.ref, self.last, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diff = cv2.absdiff(cv2.GaussianBlur(small, (5, 5), 1.0), cv2.GaussianBlur(ref, (5, 5), 1.0))
        odd = cv2.dilate((diff > ALIGN_LEVEL).view(np.uint8), np.ones((5, 5), np.uint8)) > 0
        if odd.mean() < 0.3:
            valid[odd] = 0
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
        if Placement(self.epoch, full).shift(w, h) * s < STATIC_PX:
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
        # frame differences after a resampled alignment show the alignment's error too: gated only on request
        moving = self._moving(small, hole, warp, wanted=warp is None or self.gate_moving)
        self._update(image, hole, warp, moving)
        self.frames += 1
        return Placement(self.epoch, warp)

    def _moving(self, small: np.ndarray, hole: np.ndarray, warp: np.ndarray | None,
                wanted: bool = True) -> np.ndarray | None:
        """Full-resolution bool mask (reference coordinates) of what changed since the previous frame: things
        passing by, which must not be stored as background. Where either frame had a hole nothing can be
        told (and those pixels are not stored anyway); None for the first frame of an epoch, and when not
        ``wanted`` (this frame is only remembered for the next one)."""
        sh, sw = small.shape
        seen = cv2.resize((~hole).astype(np.uint8), (sw, sh), interpolation=cv2.INTER_AREA) > 0
        if warp is None:
            grey, ok = small, seen
        else:
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            grey = cv2.warpAffine(small, self.last, (sw, sh), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            ok = cv2.warpAffine(seen.view(np.uint8), self.last, (sw, sh), flags=cv2.INTER_NEAREST |
                                cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
        grey = cv2.GaussianBlur(grey, (5, 5), 1.0).astype(np.int16)
        prev, self.prev = self.prev, (self.epoch, grey, ok)
        if not wanted or prev is None or prev[0] != self.epoch or prev[1].shape != grey.shape:
            return None
        changed = (np.abs(grey - prev[1]) > MOTION_LEVEL) & ok & prev[2]
        if not changed.any():
            return None
        changed = cv2.dilate(changed.view(np.uint8), np.ones((5, 5), np.uint8))
        h, w = hole.shape
        return cv2.resize(changed, (w, h), interpolation=cv2.INTER_NEAREST) > 0

    def _update(self, image: np.ndarray, hole: np.ndarray, warp: np.ndarray | None,
                moving: np.ndarray | None = None) -> None:
        h, w = hole.shape
        if warp is None:
            x = image
            valid = ~hole
        else:
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            # a reference pixel read within half a pixel beyond the frame's edge counts as seen (``keep`` is a
            # nearest read): it takes the edge's colour, not a blend with a black border
            x = cv2.warpAffine(image, warp, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            keep = cv2.warpAffine((~hole).astype(np.uint8), warp, (w, h), flags=cv2.INTER_NEAREST |
                                  cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            valid = cv2.erode(keep, np.ones((3, 3), np.uint8)) > 0
        new = valid & (self.count == 0)
        if new.any():  # first sight fills every sample, so the median is meaningful at once
            np.copyto(self.samples, x[None], where=new[None, ..., None])
        store = valid & ~new
        if moving is not None:  # something passing by is not background (first sight is kept all the same)
            store &= ~moving
            valid = store | new
        if self.frames % self.stride:
            store &= self.count < self.k
        idx = np.flatnonzero(store)
        if idx.size:
            pos = self.slot.reshape(-1)[idx]
            self.samples.reshape(self.k, -1, 3)[pos, idx] = x.reshape(-1, 3)[idx]
            self.slot.reshape(-1)[idx] = (pos + 1) % self.k
        self.count += (valid & (self.count < 65535)).view(np.uint8)

    def model(self, placement: Placement, x0: int, y0: int, x1: int, y1: int) -> View:
        """The model in a frame's coordinates over a box (see ``View``)."""
        shape = (y1 - y0, x1 - x0)
        if self.count is None or placement.epoch != self.epoch:
            return View.empty(shape)
        if placement.warp is None:
            med, support = self._median(y0, y1, x0, x1)
            return View(med, self.count[y0:y1, x0:x1].astype(np.float32), support)
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
            return View.empty(shape)
        med, support = self._median(by0, by1, bx0, bx1)
        rx -= bx0
        ry -= by0

        def warp(a, nearest=False):
            return cv2.remap(a, rx, ry, cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT)

        count = warp(self.count[by0:by1, bx0:bx1], True).astype(np.float32)
        # a pixel whose interpolation reaches a never-seen reference pixel (its samples are zeros) would come
        # out blended with black: a dark line along the edge of what the memory has seen
        whole = warp((self.count[by0:by1, bx0:bx1] > 0).astype(np.float32)) > 0.999
        count[~whole] = 0
        return View(warp(med), count, warp(support))

    def _median(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        block = self.samples[:, y0:y1, x0:x1]
        mid = self.k // 2
        med = np.partition(block, mid, axis=0)[mid].astype(np.float32)
        near = np.abs(block.astype(np.float32) - med[None]).max(axis=3) <= SUPPORT_LEVEL
        return med, near.mean(axis=0, dtype=np.float32)
