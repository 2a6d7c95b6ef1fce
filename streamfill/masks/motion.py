"""Automatic masks for fixed cameras: everything that moves (``--mask-auto motion``).

Per frame, at ``[track] motion_scale`` of the frame size:

1. MOG2 background subtraction (history ``motion_history``, variance threshold ``motion_var_threshold``)
   with shadow detection; shadow pixels (MOG2's grey label) are not masked.
2. Spatial hysteresis: blobs of foreground of at least ``motion_min_area`` (full-resolution) pixels are the
   seeds; weaker foreground touching a seed joins it; isolated specks are dropped.
3. Temporal hysteresis: a pixel stays masked for ``motion_hold`` frames after its motion was last seen, so
   masks do not flicker and a pausing walker stays covered.
4. Dilation by ``motion_dilate`` pixels (blurred edges, shadows' fringes), then upsampling.

Warm-up: the first ``motion_warmup`` frames are read ahead and learnt first, so that objects moving in the
first frames are not learnt as background. Memory bound: those ``motion_warmup`` frames (25 by default)
are held once, at the start; afterwards each mask is yielded as soon as its frame arrives.
Masks: H x W uint8, 255 = moving (to fill).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from streamfill.config import TrackConfig
from streamfill.errors import MaskError
from streamfill.masks.ops import dilate
from streamfill.types import Frame, Mask

MOVER_LEVEL = 25.0  # 8-bit levels from the warm-up median beyond which a warm-up pixel is a mover, not learnt


class MotionMasks:
    """A :class:`~streamfill.types.MaskSource` masking moving objects (see the module doc).

    ``dilate`` adds a further safety margin in pixels (e.g. ``[mask] dilate``) on top of
    ``[track] motion_dilate``.
    """

    def __init__(self, config: TrackConfig | None = None, dilate: int = 0) -> None:
        self.config = config or TrackConfig()
        self.extra_dilate = int(dilate)

    def pair(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]:
        cfg = self.config
        it = iter(frames)
        warm: list[Frame] = []
        for frame in it:
            warm.append(frame)
            if len(warm) >= max(1, cfg.motion_warmup):
                break
        if not warm:
            return
        h, w = warm[0].height, warm[0].width
        sw, sh = max(16, round(w * cfg.motion_scale)), max(16, round(h * cfg.motion_scale))
        mog = cv2.createBackgroundSubtractorMOG2(
            history=cfg.motion_history, varThreshold=cfg.motion_var_threshold, detectShadows=True
        )
        small = [self._small(f, w, h, sw, sh) for f in warm]
        k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        # Learn the background from the look-ahead frames (in both orders, so neither end dominates), with the
        # movers taken out: where a frame differs from the frames' per-pixel median (a mover covers a pixel in
        # only a few of them) the median is learnt instead. Learning the frames as they were made the movers
        # of the last-learnt frames background: the first frame's mask came out empty and the next ones thin
        # (vtest: 0 px, then 7228 rising to ~27000 by frame 20).
        median = np.median(np.stack(small), axis=0).astype(np.float32)
        still = []
        for img in small:
            mover = np.abs(img.astype(np.float32) - median).max(axis=2) > MOVER_LEVEL
            mover = cv2.dilate(mover.astype(np.uint8), k3, iterations=2).astype(bool)
            still.append(np.where(mover[..., None], median, img).astype(np.uint8))
        for img in still + still[::-1]:
            mog.apply(img, learningRate=-1)
        del still
        age = np.full((sh, sw), 1 << 20, np.int32)
        area_small = cfg.motion_min_area * (sw * sh) / float(w * h)

        def one(frame: Frame, img: np.ndarray) -> tuple[Frame, Mask]:
            nonlocal age
            if (frame.width, frame.height) != (w, h):
                raise MaskError(f"frame {frame.index} is {frame.width}x{frame.height}, earlier frames were {w}x{h}")
            fg = mog.apply(img)
            strong = (fg == 255).astype(np.uint8)
            strong = cv2.morphologyEx(strong, cv2.MORPH_OPEN, k3)
            weak = cv2.dilate((fg == 255).astype(np.uint8), k3)
            moving = _hysteresis(strong, weak, area_small)
            age = np.where(moving, 0, age + 1)
            held = (age <= cfg.motion_hold).astype(np.uint8) * 255
            up = cv2.resize(held, (w, h), interpolation=cv2.INTER_LINEAR)
            mask = np.where(up > 127, 255, 0).astype(np.uint8)
            return frame, dilate(mask, cfg.motion_dilate + self.extra_dilate)

        for frame, img in zip(warm, small, strict=True):
            yield one(frame, img)
        del warm, small
        for frame in it:
            yield one(frame, self._small(frame, w, h, sw, sh))

    @staticmethod
    def _small(frame: Frame, w: int, h: int, sw: int, sh: int) -> np.ndarray:
        if (frame.width, frame.height) != (w, h):
            raise MaskError(f"frame {frame.index} is {frame.width}x{frame.height}, earlier frames were {w}x{h}")
        return cv2.resize(frame.image, (sw, sh), interpolation=cv2.INTER_AREA)


def _hysteresis(strong: np.ndarray, weak: np.ndarray, min_area: float) -> np.ndarray:
    """Boolean mask: components of ``weak`` that contain a component of ``strong`` of at least
    ``min_area`` pixels."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(strong, connectivity=8)
    seeds = np.zeros(strong.shape, np.uint8)
    big = np.nonzero(stats[1:, cv2.CC_STAT_AREA] >= max(1.0, min_area))[0] + 1
    if len(big) == 0:
        return np.zeros(strong.shape, bool)
    seeds[np.isin(labels, big)] = 1
    n2, wl = cv2.connectedComponents(np.maximum(weak, seeds), connectivity=8)
    keep = np.unique(wl[seeds > 0])
    keep = keep[keep > 0]
    return np.isin(wl, keep)
