"""The keyframe's own shape as an object's mask while it still looks as it did (:class:`KeyView`, mixed into
:class:`streamfill.masks.propagate.Propagator` after :class:`~streamfill.masks.anchor.AppearanceSearch`).

For an object small enough that its template is aligned by translation only, the tracker's mask is re-decided
pixel by pixel every frame, and through a codec its outline drifts a pixel or two; the keyframe's shape, moved
to where the object is, can be better (a rigid 20-32 px object scored 0.97 with the best such move, against
0.72-0.94 for the tracker through H.264). So the keyframe's pose (keyframe -> now) is carried along on its own:
moved by the object's per-frame motion, then aligned on the keyframe's template (translation, with the scale
and the turn measured by tries: the flow's fitted rotation reads about half of a small object's true turn, and
nothing else corrects it). Where that alignment correlates at least ``_KEY_VIEW_RHO`` (the object still looks
as it did at the keyframe: rigid, not hidden, not deformed), the yielded mask is the keyframe's shape there. The
tracker's own state is not touched: only what is yielded changes, so nothing builds up from it. The shape is
smoothed before it is moved, so that its outline follows the object by fractions of a pixel.

Mid-size objects (templates of ``_ECC_AFFINE_SIDE`` up to under ``_KEY_VIEW_SIDE`` px) get it too: a shaken
40-60 px object's mask shrank and slid off a dark part lying against dark ground, where the keyframe's shape
scored 0.98. Their template is aligned affine (scale and turn measured by the alignment itself), and the shape
is yielded only where it overlaps the tracker's mask by at least ``_KEY_AGREE_AFFINE``. See "Fourteenth pass" (the
measurements behind it), "Fifteenth pass" (how it was chosen), "Sixteenth pass" (repeating pictures, the
sub-pixel outline) and "Seventeenth pass"/"Eighteenth pass" (mid-size objects) in docs/guide/tracking.md.
"""

from __future__ import annotations

import cv2
import numpy as np

from streamfill.masks.anchor import _ECC_AFFINE_SIDE, _apart, damped_scale, template_centre
from streamfill.masks.geometry import compose

_KEY_VIEW_RHO = 0.95  # correlation of the keyframe's template, aligned, above which its shape is yielded
_KEY_SCALE_GAIN = 0.5  # the alignment's scale correction to the carried pose is taken at this gain
_KEY_TURN_STEP = 2.0  # degrees: the turn is measured by aligning from the pose turned by +-this much
# An alignment that moves the object's centre more than this share of its size (2 px at least) from where its
# motion put it is not taken (it found a look-alike: 26 px off at 0.95 on a 176x144 trajectory), and the shape is
# yielded only where it overlaps the tracker's own mask by at least _KEY_AGREE (IoU).
_KEY_JUMP = 0.2
_KEY_AGREE = 0.5
# Templates from _ECC_AFFINE_SIDE up to under _KEY_VIEW_SIDE px (shorter side) get the key view too, aligned affine
# (six unknowns: scale and turn measured, no tries), but their shape is yielded only where it overlaps the tracker's
# mask by at least _KEY_AGREE_AFFINE: such objects deform more often than they shrink and slide, and a looser bar
# gave single bad frames on deforming objects and next to cuts ("Seventeenth pass", "Eighteenth pass"). Larger
# templates are left to the tracker.
_KEY_VIEW_SIDE = 80
_KEY_AGREE_AFFINE = 0.8
_KEY_SHAPE_SIGMA = 0.8  # px: the keyframe's shape is smoothed by this before it is moved (sub-pixel outline)


class KeyView:
    """Carries the keyframe's pose and yields its shape while its picture matches (see the module docstring).
    Reads the propagator's ``key_tmpl``, ``key_soft`` (at the start: the keyframe's), ``cfg`` and ``k5``, and uses
    its ``_refine``."""

    def _start_key_view(self) -> None:
        self.key_pose = np.eye(2, 3, dtype=np.float64)
        self.key_views = 0  # frames that yielded the keyframe's shape (for tests and statistics)
        # Not for an object cut by the frame's edge at the keyframe: its shape there is only the part then in the
        # frame. (A picture that repeats itself is fine: see "Sixteenth pass" in the tracking guide.)
        self._key_on = self.key_tmpl is not None and min(self.key_tmpl[0].shape) < _KEY_VIEW_SIDE
        self._key_affine = self._key_on and min(self.key_tmpl[0].shape) >= _ECC_AFFINE_SIDE
        if self._key_on:
            x, y, w, h = cv2.boundingRect((self.key_soft > 0.0).astype(np.uint8))
            H, W = self.key_soft.shape
            self._key_on = x > 0 and y > 0 and x + w < W and y + h < H
        if self._key_on:
            self._key_corners = np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]], np.float64)
            self._key_reach = max(2.0, _KEY_JUMP * max(w, h))
            # The shape that is moved and cut at 0.5: smoothed, so that its outline moves by fractions of a pixel
            # (the 0/1 shape, warped and cut, only ever moves by whole pixels).
            self._key_shape = cv2.GaussianBlur(self.key_soft, (0, 0), _KEY_SHAPE_SIGMA)

    def _key_view(self, grey: np.ndarray, step: np.ndarray) -> np.ndarray | None:
        """Move the keyframe's pose on by ``step`` (previous -> current) and align it; the keyframe's shape there
        (float 0/1, full working frame) when it correlates at least ``_KEY_VIEW_RHO``, else None."""
        if not self._key_on:
            return None
        pose = compose(step, self.key_pose)
        H, W = grey.shape
        # Work on the region the keyframe's shape reaches there (a full-frame warp cost more than the alignment).
        reach = self._key_corners @ pose[:, :2].T + pose[:, 2]
        x0, y0 = (max(0, int(v) - 8) for v in reach.min(0))
        x1, y1 = min(W, int(reach[:, 0].max()) + 9), min(H, int(reach[:, 1].max()) + 9)
        if x1 - x0 < 4 or y1 - y0 < 4:
            self.key_pose = pose
            return None
        to_roi = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
        shape = (cv2.warpAffine(self.key_soft, compose(to_roi, pose), (x1 - x0, y1 - y0),
                                flags=cv2.INTER_LINEAR) > 0.5).astype(np.uint8)
        rho = 0.0
        if shape.any():
            # Scored like the tracker's own alignment: the interior and a band on both sides of the outline (all
            # of it seen here, so that is the shape grown by the band).
            scored = np.zeros((H, W), np.uint8)
            scored[y0:y1, x0:x1] = cv2.dilate(shape, self.k5)
            roi = (x0, y0, x1, y1)
            refined, rho = self._refine(grey, pose, scored, roi, self.key_tmpl)
            if rho > 0.0 and not self._key_affine:
                refined, rho = self._turn_tries(grey, refined, rho, scored, roi)
            if _apart(refined, pose, template_centre(self.key_tmpl)) > self._key_reach:
                rho = 0.0
            if rho >= self.cfg.anchor_corr:  # an affine alignment measured scale and turn itself: taken as it is
                pose = refined if self._key_affine else damped_scale(refined, pose, self.key_tmpl, _KEY_SCALE_GAIN)
        self.key_pose = pose
        if rho < _KEY_VIEW_RHO:
            return None
        self.key_views += 1
        self._key_roi = (x0, y0, x1, y1)
        view = np.zeros((H, W), np.float32)
        view[y0:y1, x0:x1] = cv2.warpAffine(self._key_shape, compose(to_roi, pose), (x1 - x0, y1 - y0),
                                            flags=cv2.INTER_LINEAR) > 0.5
        return view

    def _key_agrees(self, view: np.ndarray, state: np.ndarray) -> bool:
        """Does the keyframe's shape ``view`` overlap the tracker's mask ``state`` by at least ``_KEY_AGREE`` (or
        ``_KEY_AGREE_AFFINE`` for a template aligned affine)?"""
        x0, y0, x1, y1 = self._key_roi  # the view is empty outside its region of interest
        a, b = view[y0:y1, x0:x1] > 0.5, state[y0:y1, x0:x1] > 0.5
        both = np.count_nonzero(a & b)
        union = np.count_nonzero(a) + cv2.countNonZero((state > 0.5).view(np.uint8)) - both
        return union > 0 and both >= (_KEY_AGREE_AFFINE if self._key_affine else _KEY_AGREE) * union

    def _turn_tries(self, grey: np.ndarray, pose: np.ndarray, rho: float, scored: np.ndarray,
                    roi: tuple[int, int, int, int]) -> tuple[np.ndarray, float]:
        """The keyframe's template aligned again from ``pose`` (correlating ``rho``) turned by
        +-``_KEY_TURN_STEP`` degrees about the object's centre, and at the vertex of the parabola through the
        three correlations: (pose, correlation) of the best."""
        centre = template_centre(self.key_tmpl)
        at = pose[:, :2] @ centre + pose[:, 2]

        def turned(degrees: float) -> tuple[np.ndarray, float]:
            c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
            turn = np.array([[c, -s, 0.0], [s, c, 0.0]])
            turn[:, 2] = at - turn[:, :2] @ at
            return self._refine(grey, compose(turn, pose), scored, roi, self.key_tmpl, scale_tries=False)

        low, high = turned(-_KEY_TURN_STEP), turned(_KEY_TURN_STEP)
        best = max([(pose, rho), low, high], key=lambda v: v[1])  # translation ECC from each (no scale tries)
        curve = low[1] + high[1] - 2.0 * rho
        if min(low[1], high[1]) > 0.0 and curve < 0.0:
            vertex = turned(float(np.clip(0.5 * (low[1] - high[1]) / curve, -1.0, 1.0)) * _KEY_TURN_STEP)
            best = max(best, vertex, key=lambda v: v[1])
        return best
