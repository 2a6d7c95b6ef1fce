"""Scene-cut detection for mask tracking.

A cut is a frame whose colour content differs abruptly from the previous frame's: the Bhattacharyya
distance between hue-saturation histograms of two tiny (64 px wide) copies, combined with the mean absolute
difference of their grey levels. Works on any
H x W x 3 uint8 RGB image; costs well under 1 ms per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

_TINY_WIDTH = 64
_MIN_CHANGE = 0.04  # mean absolute grey difference (0-1) a cut needs as well


class SceneCutDetector:
    """Streaming cut detector: call :meth:`update` once per frame, in order.

    ``threshold`` is the histogram distance in [0, 1] above which a frame starts a new shot (0.4 by
    default: ``[track] cut_threshold``). The first frame is never a cut.
    """

    def __init__(self, threshold: float = 0.4) -> None:
        self.threshold = float(threshold)
        self._prev_hist: np.ndarray | None = None
        self._prev_grey: np.ndarray | None = None
        self.last_distance = 0.0

    def reset(self) -> None:
        self._prev_hist = None
        self._prev_grey = None

    def update(self, image: np.ndarray) -> bool:
        """True if ``image`` (H x W x 3 uint8 RGB) starts a new shot relative to the previous call's."""
        h, w = image.shape[:2]
        tw = min(_TINY_WIDTH, w)
        th = max(1, round(h * tw / w))
        tiny = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(tiny, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)
        grey = cv2.cvtColor(tiny, cv2.COLOR_RGB2GRAY).astype(np.float32)
        cut = False
        if self._prev_hist is not None:
            dist = float(cv2.compareHist(self._prev_hist, hist, cv2.HISTCMP_BHATTACHARYYA))
            mad = float(np.mean(np.abs(grey - self._prev_grey))) / 255.0
            # Hue-saturation histograms ignore brightness changes (flashes, exposure); the grey difference
            # keeps a colour shift of an unchanged picture from counting.
            self.last_distance = dist
            cut = dist > self.threshold and mad > _MIN_CHANGE
        self._prev_hist = hist
        self._prev_grey = grey
        return cut
