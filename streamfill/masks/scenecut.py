"""Scene-cut detection for mask tracking.

A cut is a frame whose content differs abruptly from the previous frame's, by either of two tests on tiny
(64 px wide) copies, each combined with the mean absolute difference of their grey levels (a real change):

- colour: the Bhattacharyya distance between their hue-saturation histograms is over the threshold;
- structure: not even a fifth of the picture's detail is found again: once the whole picture's shift is
  undone (phase correlation), over 16 px blocks, the best normalised cross-correlation of the grey detail
  (shifts of up to ``_MAX_SHIFT`` tiny px more, for rotation and parallax), its 80th percentile below
  ``_MIN_CORRELATION``. A cut between two shots of similar colours (two green landscapes)
  passes the colour test, but there the picture's structure changes everywhere (0.1-0.45 against 0.77-1.0
  between frames of one shot on the tracking suite's cases, shake and 176x144 frames included), while an
  object entering or an occluder changes only part of it (0.91 for one covering a quarter of the frame).
  Blocks need some texture (``_MIN_STD``) in both pictures: a plain block's correlation is noise.

Works on any H x W x 3 uint8 RGB image; costs well under 1 ms per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

_TINY_WIDTH = 64
_MIN_CHANGE = 0.04  # mean absolute grey difference (0-1) a cut needs as well
_MIN_CORRELATION = 0.55  # structure test: block correlation (see _correlation) below this = a cut
_MAX_SHIFT = 3  # ... over shifts of up to this many tiny px beyond the whole picture's shift
_DETAIL_SIGMA = 3.0  # ... of the pictures' detail (minus a Gaussian blur of this sigma, tiny px)
_BLOCK = 16  # ... per block of this many tiny px
_MIN_STD = 3.0  # ... of blocks that vary at least this much (grey levels) in both pictures
_MIN_BLOCKS = 4  # ... and at least this many of them
_KEPT_SHARE = 0.8  # ... the quantile of the blocks' correlations that counts


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
        self.last_correlation = 1.0

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
            # The structure test only where it can decide (it costs about as much as the rest).
            changed = mad > _MIN_CHANGE
            self.last_correlation = (_correlation(self._prev_grey, grey) if changed and dist <= self.threshold
                                     else 1.0)
            cut = changed and (dist > self.threshold or self.last_correlation < _MIN_CORRELATION)
        self._prev_hist = hist
        self._prev_grey = grey
        return cut


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """How much of picture ``b`` is still picture ``a`` (tiny grey pictures, float32, same size): over blocks
    of ``_BLOCK`` px, the best normalised cross-correlation of the detail of ``b``'s block with ``a``'s around
    the same place (shifts up to ``_MAX_SHIFT`` px); the ``_KEPT_SHARE`` quantile of those, so that the frame
    counts as the same shot while a fifth of it still matches (an object entering or an occluder covering
    much of the frame is no cut). Blocks too plain to tell (detail standard deviation under ``_MIN_STD`` in
    either picture) are skipped, and 1.0 comes back when fewer than ``_MIN_BLOCKS`` remain."""
    h, w = a.shape
    m, n = _MAX_SHIFT, _BLOCK
    # Structure only: without the large-scale shading, any two smooth blocks correlate (a ramp matches a ramp).
    a = a - cv2.GaussianBlur(a, (0, 0), _DETAIL_SIGMA)
    b = b - cv2.GaussianBlur(b, (0, 0), _DETAIL_SIGMA)
    # The whole picture's shift too (a fast pan or a shake on a small frame moves it more than the blocks'
    # search reaches): each block counts at its best, at its own place or at the shifted one.
    (dx, dy), _ = cv2.phaseCorrelate(a, b, cv2.createHanningWindow((w, h), cv2.CV_32F))
    pictures = [b]
    if np.isfinite(dx) and np.isfinite(dy) and abs(dx) < w / 2 and abs(dy) < h / 2 and np.hypot(dx, dy) > m:
        back = np.array([[1.0, 0.0, -dx], [0.0, 1.0, -dy]])
        pictures.append(cv2.warpAffine(b, back, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    scores = []
    for y in range(0, h - n + 1, n):
        for x in range(0, w - n + 1, n):
            if cv2.meanStdDev(a[y : y + n, x : x + n])[1][0, 0] < _MIN_STD:
                continue
            region = np.ascontiguousarray(a[max(0, y - m) : min(h, y + n + m), max(0, x - m) : min(w, x + n + m)])
            best = []
            for picture in pictures:
                tb = np.ascontiguousarray(picture[y : y + n, x : x + n])
                if cv2.meanStdDev(tb)[1][0, 0] >= _MIN_STD:
                    r = float(cv2.matchTemplate(region, tb, cv2.TM_CCOEFF_NORMED).max())
                    best.append(r if np.isfinite(r) else 1.0)
            if best:
                scores.append(max(best))
    return float(np.quantile(scores, _KEPT_SHARE)) if len(scores) >= _MIN_BLOCKS else 1.0
