"""Track confidence of the mask tracker (:mod:`streamfill.masks.propagate`): how sure it is, 0-1, that a tracked
mask is still on the keyframe's object, from the mask's area against the keyframe's and the colours under it
against the keyframe object's (:class:`TrackConfidence`). The tracker (:mod:`streamfill.masks.track`) turns runs
of low-confidence frames into lost stretches."""

from __future__ import annotations

import cv2
import numpy as np

from streamfill.masks.colour import colour_hist
from streamfill.masks.ops import disk

# Track confidence (see TrackConfidence.score).
# Area score = area / (_LOST_AREA x the keyframe's area), capped at 1: lost below 30 % of it (the tracker's
# _LOST_CONFIDENCE).
_LOST_AREA = 1.0
_COLOUR_LOW, _COLOUR_HIGH = 0.35, 0.75  # colour score 0 at or below the first, 1 at or above the second
# The object's own colours (see TrackConfidence._distinct): those of the keyframe mask's core _DISTINCT_RATIO
# times commoner there than in a ring around the mask (this share of the object's longer side, at least
# _RING_MIN px); when they make up less than _DISTINCT_MIN of the keyframe's mask, colour cannot tell the
# object from its surroundings and only the plain colour score counts (see TrackConfidence.score).
_RING_SHARE, _RING_MIN = 0.25, 3
_DISTINCT_MIN = 0.25
_DISTINCT_RATIO = 2.0


class TrackConfidence:
    """What the keyframe's mask ``obj`` (bool, working resolution) over ``rgb`` says about the object: its area
    (``ref_area``), its colours (``ref_hist``, as ``colour_hist``) and its own colours (``ref_distinct``, see
    ``_distinct``); ``side``: the object's longer side in px. ``score`` rates a later mask against them."""

    def __init__(self, rgb: np.ndarray, obj: np.ndarray, side: int) -> None:
        self.ref_area = float(np.count_nonzero(obj))
        self.ref_hist = colour_hist(rgb, obj)
        self.ref_distinct = self._distinct(rgb, obj, side)

    @staticmethod
    def _distinct(rgb: np.ndarray, obj: np.ndarray, side: int) -> np.ndarray | None:
        """The keyframe mask's colour histogram (as ``colour_hist``) kept on the object's own colours and zero
        elsewhere; None when those make up less than ``_DISTINCT_MIN`` of the mask (an object coloured like
        its surroundings). The object's own colours: those of the mask's core (farther from the outline than
        half the largest distance) that are ``_DISTINCT_RATIO`` times commoner there than in a ring around
        the mask. A mask drawn wider than the object holds a band of background along its outline: that
        band must not count as the object (see ``score``), and the core of such a mask is the object."""
        o8 = obj.astype(np.uint8)
        if not o8.any():
            return None
        dist = cv2.distanceTransform(o8, cv2.DIST_L2, 3)
        core = dist > 0.5 * float(dist.max())
        if np.count_nonzero(core) < 16:
            core = obj
        ring = cv2.dilate(o8, disk(max(_RING_MIN, round(_RING_SHARE * side)))).astype(bool)
        ring &= ~cv2.dilate(o8, disk(1)).astype(bool)  # not the outline's blended pixels
        if not ring.any():
            return None
        inside = colour_hist(rgb, obj)
        own = np.where(colour_hist(rgb, core) > _DISTINCT_RATIO * colour_hist(rgb, ring), inside, 0.0)
        return own if own.sum() >= _DISTINCT_MIN else None

    def score(self, rgb: np.ndarray, obj: np.ndarray, area: float) -> float:
        """How sure the track is that the mask is on the object, 0-1: the smaller of an area score (the mask's
        area over ``_LOST_AREA`` x the keyframe's, capped at 1) and a colour score (the Bhattacharyya
        coefficient between the colours under the mask and the keyframe object's, mapped so that
        ``_COLOUR_LOW`` and below is 0 and ``_COLOUR_HIGH`` and above is 1).

        The coefficient is also taken on the keyframe object's own colours only (``ref_distinct``: those
        commoner in its mask than around it), over their share of the keyframe's mask, and the smaller one
        counts. A keyframe mask drawn wider than the object (a brush stroke, a hand-drawn outline) holds a
        ring of background, and against the whole mask's colours, the background alone left where the object
        had vanished still agreed (a plain disc with a 4 px margin, gone for 10 frames: coefficient 0.52,
        confidence 0.42, nothing reported); on the object's own colours it is 0. For a mask under which the
        object is all there, both agree (1 at the keyframe)."""
        if area <= 0 or self.ref_area <= 0:
            return 0.0
        area_score = min(1.0, area / (_LOST_AREA * self.ref_area))
        hist = colour_hist(rgb, obj)
        bc = float(np.sum(np.sqrt(hist * self.ref_hist)))
        if self.ref_distinct is not None:
            own = float(np.sum(np.sqrt(hist * self.ref_distinct)) / self.ref_distinct.sum())
            bc = min(bc, own)
        colour_score = min(1.0, max(0.0, (bc - _COLOUR_LOW) / (_COLOUR_HIGH - _COLOUR_LOW)))
        return float(min(area_score, colour_score))
