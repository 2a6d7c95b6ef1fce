"""Mask propagation: one tracked mask carried from one frame to the next (:class:`Propagator`). The public
tracker, :class:`streamfill.masks.track.FlowTracker`, runs one per keyframe (forward, or backward over held
frames) and decides which frame gets which result.

How a mask moves from frame to frame (all at a working resolution: ``[track] scale`` of the frame, raised for
objects under ~128 px so that they are ~64 working px across, up to full resolution; the tracker chooses it):

1. DIS optical flow (OpenCV, ``[track] preset``) from the new frame back to the previous one; the previous
   (soft) mask is warped along it.
2. Forward-backward consistency: the flow is also computed forward; where the two disagree by more than
   ``[track] fb_threshold`` working-resolution pixels (occlusions, disocclusions, the background uncovered
   behind a moving object) the warped mask is not trusted.
3. Drift control: inside a band of ``[track] band`` pixels around the warped mask's edge, the mask is pulled
   towards the object's appearance: a foreground colour histogram (the object) against a local background
   histogram (a ring around it), both learnt on the keyframe and updated slowly (``[track] model_rate``;
   :class:`~streamfill.masks.colour.ColourModel`; the object's side keeps the keyframe's colours). Where the
   flow is not trusted the colour model decides most; this is also how parts that reappear after an occlusion
   grow back. The pull is weighted by how decisive the colour is (``|2 P(object | colour) - 1|``): a colour the
   object shares with its surroundings leaves the edge where the flow put it.
4. Re-threshold at 0.5, morphological opening and closing, removal of specks; the result is the next
   frame's state (soft: the pixels it drops keep values under 0.5).
5. What is yielded is that state (or the key view, below) with the pixels next to its outline set by the
   picture's local two-colour alpha where the colours decide (:mod:`streamfill.masks.matte`); the state itself
   is not snapped. The tracker makes the full-resolution masks from it (``FlowTracker._to_full``: upsampled,
   above 0.3).

Appearance anchor: while the keyframe's picture of the object aligns (ECC) with the new frame, the mask is the
keyframe's shape moved there (where the flow is trusted and follows the object, averaged with the flow's mask;
the alignment's scale correction damped, ``_ANCHOR_FLOW_SHARE`` / ``_ANCHOR_SCALE_GAIN``); when the alignment
fails outright (a blurred jump the flow missed), the template is searched for in a wider window and taken back
if it correlates and its colours agree (``_reseek``). Before that, when the alignment from the flow's motion does
not match, it is tried again from the object's recent motion (``_retry_recent``): on a periodic texture the flow
aliases, and then the whole frame is tracked by the template alone; then on the object's own pixels only, without
the background side of the outline (``_align_own``): a neighbour moving behind a small object changes that side.

Small objects (templates aligned by translation only): the object's own picture in colour, matched from the
previous frame, referees the flow's fitted motion; where it clearly disagrees, its shift is taken and that frame's
flow is not trusted (``_picture_shift``: on a plain object the flow follows the textured background behind it).
What is yielded for them, where the keyframe's picture still aligns with correlation 0.95 or more (rigid, not
hidden, not deformed), is the keyframe's own shape where it is now (:mod:`streamfill.masks.keyview`); the state
carries on as above, untouched by it.

Bounded motion: the object's fitted per-frame motion, and the appearance alignment's correction to it, may
change scale and rotation only a little beyond the object's recent motion; the mask's area may not grow by
more than the fitted scale change explains (x1.3 at least, x1.6 at most) in one frame (else the plain flow
result, then the previous shape moved, then the previous mask shifted by whole pixels, is used): whatever
path made a mask, the bound holds. A camera jump (the picture's shift around the object changing abruptly,
phase correlation) starts the flow from the object's last motion plus the jump (``_camera_jump``). Each
mask gets a confidence (area kept, colours still the object's: :mod:`streamfill.masks.confidence`); the
tracker turns runs of low-confidence frames into lost stretches.

The template alignment (ECC), the wider re-seek and the camera-jump measurement are in
:mod:`streamfill.masks.anchor`, the 2 x 3 transform helpers and the ECC call in :mod:`streamfill.masks.geometry`,
the colour statistics in :mod:`streamfill.masks.colour`.
"""

from __future__ import annotations

import cv2
import numpy as np

from streamfill.config import TrackConfig
from streamfill.masks.anchor import AppearanceSearch, damped_scale, place_only, repeats
from streamfill.masks.colour import ColourModel
from streamfill.masks.confidence import TrackConfidence
from streamfill.masks.geometry import compose, decompose, invert, translation_of
from streamfill.masks.keyview import KeyView
from streamfill.masks.matte import snap_outline
from streamfill.masks.ops import disk, drop_specks

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _finest_level(shape: tuple[int, int], patch: int, wanted: int) -> int:
    """The DIS pyramid level to stop at for a region of ``shape`` (h, w): ``wanted`` (the preset's), but below
    the coarsest level DIS builds for that size (OpenCV's rule), so that at least two levels remain. With the
    preset's finest level equal to the coarsest (regions of about 64-190 px with the fast preset), DIS ran on
    one level only and lost track of fast or occluded parts (`streamfill eval masks`, vtest + chelsea: min
    IoU 0.908 -> 0.947); above it, OpenCV picks its own levels."""
    h, w = shape
    coarsest = min(int(np.log2(max(h, w) / (4.0 * patch)) + 0.5), int(np.log2(max(1, min(h, w)) / patch)))
    return int(max(0, min(wanted, coarsest - 1)))


_PROVEN = 8  # consecutive template matches after which a lost match is blamed on an occlusion
_FIT_INSET = 0.1  # the object's motion is fitted on points this share of its size inside its outline
_ANCHOR_AGREE = 0.5  # share of the flow's mask an accepted alignment's shape must cover (see step)
_HIDDEN_SHARE = 0.1  # share of the predicted shape's interior that must be hidden to keep a lost anchor's shape
_RIGID_INLIERS = 0.8  # share of the object's flow one similarity transform explains for it to count as rigid
# Anchored shape (see Propagator.step): the alignment's scale correction to the predicted motion is taken at
# this gain, and where the flow is trusted and follows the object, the flow's mask has this share in the shape.
_ANCHOR_SCALE_GAIN = 0.5
_ANCHOR_FLOW_SHARE = 0.5
# Bounded per-frame motion (see Propagator._plausible): log-scale and rotation (radians) change per frame
# allowed beyond twice the object's recent change, their caps, and the anisotropy (log ratio of the axes).
_SCALE_STEP, _SCALE_CAP = 0.08, 0.2
_ANGLE_STEP, _ANGLE_CAP = np.radians(10.0), np.radians(25.0)
_ANISO_STEP = 0.08
# Colour pull at the edge (see Propagator.start): from ``[track] reanchor`` for colours that do not tell the
# object from its surroundings (separation <= _SEP_LOW) up to _PULL_MAX for ones that do perfectly.
_PULL_MAX = 0.95
_SEP_LOW = 0.2
_BAND_SHARE = 0.2  # colour band at most this share of the object's longer side
_MAX_GROWTH = 1.3  # the mask's area may grow at most this much per frame beyond the fitted scale change
_AREA_SLACK = 6.0  # px of growth always allowed (tiny masks)
_MAX_AREA_STEP = 1.6  # ... and never more than this factor in one frame, whatever the fitted motion
# Re-seeking a lost anchor (see Propagator._reseek): the template is kept through this many frames without
# a match when it had matched at least _RESEEK_RUN frames in a row before.
_RESEEK_GRACE, _RESEEK_RUN = 3, 3
_RESEEK_ABRUPT = 0.5  # ... and the loss was abrupt: the alignment correlated below this


class Propagator(AppearanceSearch, KeyView):
    """Carries one soft mask (working resolution, float32 in [0, 1]) from frame to frame."""

    def __init__(self, config: TrackConfig, small_size: tuple[int, int]) -> None:
        self.cfg = config
        w, h = small_size
        self._dis = None
        self._dis_shape = None
        self.gx, self.gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self.colour = ColourModel(config.colour_bins)
        self.k3 = disk(1)
        self.k5 = disk(2)
        self.band_k = disk(max(1, config.band))
        self.ring_k = disk(max(2, 3 * config.band))
        self.state: np.ndarray | None = None
        self.prev_grey: np.ndarray | None = None

    def start(self, rgb: np.ndarray, grey: np.ndarray, mask_small: np.ndarray) -> None:
        self.state = mask_small.astype(np.float32)
        self.prev_grey = grey
        self.prev_rgb = rgb
        self.global_motion = np.zeros(2)  # the picture's last shift around the object (working px), see step
        self._hann_win: np.ndarray | None = None  # phase-correlation window, kept while its size holds
        self.prev_blur = cv2.blur(grey, (3, 3)).astype(np.float32)
        self.velocity = np.eye(2, 3, dtype=np.float64)
        self.recent_scale = 0.0  # recent |log scale| per frame of the object's accepted motion
        self.recent_angle = 0.0  # recent |rotation| per frame, radians
        self.reseeks = 0  # anchors found again by the wider search (see _reseek)
        self.refereed = 0  # frames whose flow the object's picture overruled (see _picture_shift)
        self.rejected = 0  # updates refused by the motion bounds (for tests and statistics)
        self.redetected = 0  # masks replaced by the keyframe's shape where its picture was found (see _redetected)
        self.tracked = 0  # frames tracked since the keyframe
        self.confidence = 1.0
        obj = self.state > 0.5
        # The colour band scales with the object: a 4 px band around a 20 px object could double its area
        # in one frame.
        side = max(cv2.boundingRect(obj.astype(np.uint8))[2:]) if obj.any() else 0
        self.band = min(self.cfg.band, max(1, round(_BAND_SHARE * side))) if self.cfg.band > 0 else 0
        self.band_k = disk(max(1, self.band))
        self.fit_k = disk(max(1, round(_FIT_INSET * side)))
        self.scorer = TrackConfidence(rgb, obj, side)
        self.area = self.scorer.ref_area
        self.ref_hist = self.scorer.ref_hist  # the keyframe object's colours (the re-seek's colour check)
        self._set_template(grey, self.state)
        self.key_soft = self.state.copy()
        self.key_tmpl = self.tmpl
        self._start_key_view()
        self._key_picture(grey, obj)
        self._learn(rgb, obj, None, rate=None)
        # How well colour alone tells the object from its surroundings (1 - Bhattacharyya coefficient of
        # the two histograms): the colour pull at the edge gets stronger the better it does.
        sep = 0.0
        if self.colour.fg is not None:
            sep = 1.0 - float(np.sum(np.sqrt(self.colour.fg * self.colour.bg)))
        self.pull = self.cfg.reanchor + (max(self.cfg.reanchor, _PULL_MAX) - self.cfg.reanchor) * max(
            0.0, (sep - _SEP_LOW) / (1.0 - _SEP_LOW))

    def _set_template(self, grey: np.ndarray, soft: np.ndarray) -> None:
        """Remember the object's appearance (grey crop) and shape; ``self.anchor`` maps it to now."""
        obj = (soft > 0.5).astype(np.uint8)
        self.anchor = np.eye(2, 3, dtype=np.float64)
        self.misses = 0
        self.matched = 0
        self.run_before_loss = 0  # matches in a row before the current loss of the match
        self.proven = False
        self.rigidity = 0.0
        self.tmpl_periodic = False
        if cv2.countNonZero(obj) < 16:
            self.tmpl, self.tmpl_std = None, 0.0
            return
        x, y, w, h = cv2.boundingRect(obj)
        H, W = obj.shape
        x0, y0, x1, y1 = max(0, x - 4), max(0, y - 4), min(W, x + w + 4), min(H, y + h + 4)
        blur = cv2.blur(grey[y0:y1, x0:x1], (3, 3)).astype(np.float32)
        self.tmpl = (grey[y0:y1, x0:x1].astype(np.float32), soft.copy(), (x0, y0), blur)
        # Over the crop, ring of background included: ECC scores the outline too (see step).
        self.tmpl_std = float(np.std(self.tmpl[0]))
        self.tmpl_periodic = repeats(grey[y:y + h, x:x + w].astype(np.float32))

    def _fit_step(self, fwd: np.ndarray, back: np.ndarray, x0: int, y0: int) -> np.ndarray | None:
        """Similarity transform (2 x 3, previous -> current frame, frame coordinates) of the object, from the
        forward flow of its interior pixels that pass the forward-backward check; None when too few do.
        ``fwd``/``back`` cover the region of interest whose top-left corner is (x0, y0)."""
        h, w = fwd.shape[:2]
        obj = (self.state[y0 : y0 + h, x0 : x0 + w] > 0.5).astype(np.uint8)
        # Points away from the outline: the flow near it is dragged towards the background's motion, which
        # biased the fitted scale (a steady shrink of ~1 % per frame on a deforming object over a still
        # background, talking seed 2). Nearer the outline only when too few points are left.
        ys, xs = np.nonzero(cv2.erode(obj, self.fit_k))
        if len(ys) < 40:
            ys, xs = np.nonzero(cv2.erode(obj, self.k3))
        if len(ys) < 12:
            return None
        stride = max(1, len(ys) // 600)
        ys, xs = ys[::stride], xs[::stride]
        if self.tmpl is not None and self.misses == 0:
            # Only points that still look like the anchored object: an occluder sliding over it must not
            # lend the object its motion.
            same = self._looks_like_template(xs + x0, ys + y0)
            if same.sum() >= 12:
                ys, xs = ys[same], xs[same]
        f = fwd[ys, xs]
        qx, qy = xs + f[:, 0], ys + f[:, 1]
        qxi = np.clip(np.rint(qx).astype(np.int32), 0, w - 1)
        qyi = np.clip(np.rint(qy).astype(np.int32), 0, h - 1)
        err = np.hypot(*(back[qyi, qxi] + f).T)
        ok = err <= max(0.5, self.cfg.fb_threshold)
        if ok.sum() < 12:
            return None
        src = np.stack([xs[ok] + x0, ys[ok] + y0], 1).astype(np.float32)
        dst = np.stack([qx[ok] + x0, qy[ok] + y0], 1).astype(np.float32)
        a, inliers = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0, maxIters=200, refineIters=10
        )
        self.rigidity = float(inliers.mean()) if a is not None and inliers is not None else 0.0
        return a

    def _looks_like_template(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """For points (frame coordinates) of the previous frame: does the (blurred) picture there match the
        template's picture at the anchored position? Boolean array."""
        _, _, (tx, ty), tblur = self.tmpl
        inv = invert(self.anchor)
        u = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2] - tx
        v = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2] - ty
        th, tw = tblur.shape
        ui = np.clip(np.rint(u).astype(np.int32), 0, tw - 1)
        vi = np.clip(np.rint(v).astype(np.int32), 0, th - 1)
        diff = np.abs(self.prev_blur[ys, xs] - tblur[vi, ui])
        limit = max(10.0, 3.0 * float(np.median(diff)))
        return diff <= limit

    def _box(self) -> tuple[int, int, int, int] | None:
        """The object's bounding box (x, y, w, h) in the current state, or None when the mask is empty."""
        obj = (self.state > 0.5).astype(np.uint8)
        return cv2.boundingRect(obj) if obj.any() else None

    def _roi(self, box: tuple[int, int, int, int] | None, extra: float = 0.0) -> tuple[int, int, int, int]:
        """Region (x0, y0, x1, y1) the object (``box``, from ``_box``) can reach in one frame: its box plus a
        generous margin (plus ``extra`` px, a camera jump)."""
        H, W = self.state.shape
        if box is None:
            return 0, 0, W, H
        x, y, w, h = box
        m = max(24, round(0.3 * max(w, h)), 4 * self.cfg.band) + int(np.ceil(extra))
        return max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)

    def _learn(self, rgb: np.ndarray, obj: np.ndarray, trusted: np.ndarray | None, rate: float | None) -> None:
        o8 = obj.astype(np.uint8)
        if not o8.any():
            return
        x, y, w, h = cv2.boundingRect(o8)
        pad = 3 * self.cfg.band + 2
        H, W = obj.shape
        x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(W, x + w + pad), min(H, y + h + pad)
        o = o8[y0:y1, x0:x1]
        fg = cv2.erode(o, self.k3).astype(bool)
        bg = cv2.dilate(o, self.ring_k).astype(bool) & ~cv2.dilate(o, self.k3).astype(bool)
        if trusted is not None:
            t = trusted[y0:y1, x0:x1]
            fg &= t
            bg &= t
        self.colour.fit(self.colour.index(rgb[y0:y1, x0:x1]), fg, bg, rate)

    def _flow(self, shape: tuple[int, int]):
        """A DIS instance for this region size. One instance fed regions of changing size gets several
        times slower (its internal buffers), and creating one costs microseconds, so renew it on a change."""
        if self._dis is None or self._dis_shape != shape:
            self._dis = cv2.DISOpticalFlow_create(_PRESETS[self.cfg.preset])
            self._dis.setFinestScale(_finest_level(shape, self._dis.getPatchSize(), self._dis.getFinestScale()))
            self._dis_shape = shape
        return self._dis

    def _plausible(self, m: np.ndarray, slack: float = 1.0) -> bool:
        """Is the 2 x 3 per-frame motion ``m`` (previous -> current) within the bounds on scale and rotation
        change: a little more than the object's recent motion (``_SCALE_STEP`` / ``_ANGLE_STEP`` plus twice
        the recent per-frame change, capped)?"""
        ls, ang, aniso = decompose(m)
        ls_max = min(_SCALE_CAP, _SCALE_STEP + 2.0 * self.recent_scale) * slack
        ang_max = min(_ANGLE_CAP, _ANGLE_STEP + 2.0 * self.recent_angle) * slack
        return abs(ls) <= ls_max and abs(ang) <= ang_max and abs(aniso) <= _ANISO_STEP * slack

    def _finish(self, warped: np.ndarray, rgb: np.ndarray, trusted: np.ndarray, colour: bool = True):
        """Colour pull in the edge band, re-threshold, clean-up. Returns (binary uint8, soft) of the ROI."""
        cfg = self.cfg
        p = warped
        obj = (warped > 0.5).astype(np.uint8)
        if colour and cfg.reanchor > 0 and self.band > 0 and self.colour.fg is not None and obj.any():
            band = cv2.dilate(obj, self.band_k).astype(bool) & ~cv2.erode(obj, self.band_k).astype(bool)
            ys, xs = np.nonzero(band)
            if len(ys):
                post = self.colour.posterior(self.colour.index(rgb[ys, xs]))
                w = np.where(trusted[ys, xs], self.pull, min(1.0, 2 * self.pull)).astype(np.float32)
                # ... as strong as the colour is decisive: one that the object and its surroundings both show
                # (the white half of an object on a white wall) says nothing about where the edge is, and
                # pulling by it ate such parts a pixel or two a frame (`streamfill eval masks`, the benchmark's 175
                # runs, with the interior and agreement rules of step: worst run's mean IoU 0.76 -> 0.83).
                w *= np.abs(2.0 * post - 1.0).astype(np.float32)
                p = warped.copy()
                p[ys, xs] = (1 - w) * warped[ys, xs] + w * post
        obj = (p > 0.5).astype(np.uint8)
        obj = cv2.morphologyEx(obj, cv2.MORPH_OPEN, self.k3)
        obj = cv2.morphologyEx(obj, cv2.MORPH_CLOSE, self.k3)
        return drop_specks(obj), p

    def step(self, rgb: np.ndarray, grey: np.ndarray) -> np.ndarray:
        """Carry the mask to the next frame (``rgb``/``grey`` at working resolution) and return the soft mask
        to yield for it: the new state (``self.state``), or for a small object that still looks as it did at the
        keyframe, the keyframe's shape where it is now (:mod:`streamfill.masks.keyview`). Work is confined to a
        region of interest around the object, so the cost follows the object's size, not the frame's. Sets
        ``self.confidence`` (0-1) for the new state."""
        cfg = self.cfg
        box = self._box()
        jump = self._camera_jump(grey, box)
        x0, y0, x1, y1 = self._roi(box, float(np.hypot(*jump)))
        to_roi = np.array([[1, 0, -x0], [0, 1, -y0]], np.float64)
        full_state, full_rgb = self.state, rgb
        prev = np.ascontiguousarray(self.prev_grey[y0:y1, x0:x1])
        cur = np.ascontiguousarray(grey[y0:y1, x0:x1])
        rgb = rgb[y0:y1, x0:x1]
        gx, gy = self.gx[y0:y1, x0:x1], self.gy[y0:y1, x0:x1]
        dis = self._flow(cur.shape)
        if jump.any():
            # The camera jumped (shake): the flow starts from the object's last motion plus the jump, which
            # DIS alone, from zero, missed with motion blur (held-out shake seed 1000: a 20 px jump of a 42 px
            # object, IoU 0.27 in that frame).
            start = translation_of(self.velocity, full_state)[:, 2] + jump
            init = np.empty(cur.shape + (2,), np.float32)
            init[..., 0], init[..., 1] = start[0], start[1]
            fwd = dis.calc(prev, cur, init)
            back = dis.calc(cur, prev, np.ascontiguousarray(-init))
        else:
            back = dis.calc(cur, prev, None)
            fwd = dis.calc(prev, cur, None)
        mapx = gx + back[..., 0]  # frame coordinates in the previous frame
        mapy = gy + back[..., 1]
        dense = cv2.remap(full_state, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fwd_at = cv2.remap(fwd, mapx - x0, mapy - y0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        err = np.hypot(fwd_at[..., 0] + back[..., 0], fwd_at[..., 1] + back[..., 1])
        trusted = err <= cfg.fb_threshold if cfg.fb_threshold > 0 else np.ones(dense.shape, bool)
        warped = dense
        step = self._fit_step(fwd, back, x0, y0) if self.tmpl is not None else None
        if step is not None and not self._plausible(step):
            # Bounded motion: a scale or rotation change far beyond the object's recent motion is a bad fit
            # (a few points on the background, an occluder); keep the recent motion, else its translation.
            self.rejected += 1
            step = self.velocity if self._plausible(self.velocity) else translation_of(step, full_state)
            self.rigidity = 0.0
        # A small object's own picture referees the flow's motion.
        moved = self._picture_shift(full_rgb, step, box) if step is not None else None
        overruled = moved is not None
        if overruled:
            step = moved
            self.refereed += 1
        # An object under 80 px that still looks as it did at the keyframe is yielded as the keyframe's shape (keyview).
        view = self._key_view(grey, step if step is not None else self.velocity)
        recent = self.velocity  # the object's last accepted motion, before this frame's fit replaces it
        if step is None and self.tmpl is not None and self.misses < cfg.anchor_patience:
            step = self.velocity  # hidden for now: assume it keeps moving as it did
            self.misses += 1
        elif step is not None:
            self.velocity = step
            ls, ang, _ = decompose(step)
            self.recent_scale = 0.8 * self.recent_scale + 0.2 * abs(ls)
            self.recent_angle = 0.8 * self.recent_angle + 0.2 * abs(ang)
        anchored = False
        if step is not None:
            size = (x1 - x0, y1 - y0)
            previous = self.anchor
            guess = compose(step, previous)
            # Pixels whose (trusted) flow does not follow the object's motion are not the object's:
            # deforming parts, occluders passing in front.
            inv = invert(step)
            rx = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
            ry = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
            follows = (np.hypot(mapx - rx, mapy - ry) <= cfg.rigid_tolerance) | ~trusted
            predicted = _moved(self.tmpl[1], compose(to_roi, guess), size)
            visible = np.zeros(grey.shape, np.uint8)
            # Scored: the visible interior, plus a band of 2 px on both sides of the predicted outline. The
            # outline is what pins a plain object down: scored on its flat interior alone, ECC correlated at
            # 0.99 at a shifted position and the anchor slid off the object (mean IoU 0.81 -> 0.98 on such
            # a case of the suite).
            shape = (predicted > 0.5).astype(np.uint8)
            anchor_shape = predicted  # the template where the anchor puts it (the guess, unless a match moves it)
            matched = None  # the template where an accepted alignment puts it
            if overruled:
                # The flow followed something else: none of it is trusted this frame, and the shape is moved
                # by the object's motion (as after a re-seek below).
                trusted = np.zeros_like(trusted)
                follows = np.ones_like(follows)
            seen = shape & (follows & trusted).astype(np.uint8)
            inner = cv2.erode(seen, self.k5)
            visible[y0:y1, x0:x1] = inner | (cv2.dilate(shape, self.k5) & ~cv2.erode(shape, self.k5))
            refined, rho = self._refine(grey, guess, visible, (x0, y0, x1, y1))
            if rho > 0.0:
                # The alignment's scale is noisy on small or deforming objects (a few % per frame either way,
                # tiny seed 9507); taken at half gain, a steady bias of the fitted motion is still corrected.
                refined = damped_scale(refined, guess, self.tmpl, _ANCHOR_SCALE_GAIN)
            ecc_rho, reseeks = rho, self.reseeks
            if rho < cfg.anchor_corr:
                refined, rho = self._retry_recent(grey, guess, compose(recent, previous), refined, rho, full_rgb)
                if self.reseeks > reseeks:
                    # The flow's motion was wrong (aliased on a periodic texture): the object's motion is the
                    # alignment's, and none of this frame's flow is trusted, so its shape is the template's.
                    step = self.velocity = compose(refined, invert(previous))
                    trusted = np.zeros_like(trusted)
                    follows = np.ones_like(follows)
            if rho < cfg.anchor_corr:
                own = inner | (shape & ~cv2.erode(shape, self.k5))
                found, rho = self._align_own(grey, guess, own, (x0, y0, x1, y1), refined, rho)
                if found is not refined:
                    refined = damped_scale(found, guess, self.tmpl, _ANCHOR_SCALE_GAIN)
            before_reseek = self.reseeks
            if rho < _RESEEK_ABRUPT:
                refined, rho = self._reseek(grey, guess, refined, rho, full_rgb)
            refound = self.reseeks > before_reseek
            # Found again by the wider search: the guess's motion is what failed, so the fit is bounded
            # against the last anchor, by the per-frame bound.
            base, slack = (previous, 1.0) if self.reseeks > reseeks else (guess, 0.5)
            if rho >= cfg.anchor_corr and not self._plausible(compose(refined, invert(base)), slack):
                # The alignment's own correction is bounded too (half the per-frame bound): a well-correlated
                # but much larger or slanted fit (seen: x13 the area at correlation 0.92) is refused.
                self.rejected += 1
                if refound:
                    # ... but where the wider search found the object, the place is kept, with the last anchor's
                    # scale, turn and slant: a motion-blurred picture fits slanted (x1.17 along the blur at
                    # correlation 0.98, shake 10092 over the bunny clip, H.264), and refusing the place too left
                    # the mask where the object had been.
                    refined = place_only(refined, previous, self.tmpl)
                else:
                    rho = 0.0
            if refound and rho >= cfg.anchor_corr:
                # The wider search found the object where the flow's motion did not put it: as after a retry
                # from the recent motion (above), the motion is the alignment's and none of this frame's flow is
                # trusted. Else the flow's mask, trusted where it did not follow that wrong motion, cut the shape
                # found down to its overlap with the old place (shake 10092 over the bunny clip, H.264: IoU
                # 0.35 in the frame after a 12 px jump, and the lost part never grew back).
                step = self.velocity = compose(refined, invert(previous))
                trusted = np.zeros_like(trusted)
                follows = np.ones_like(follows)
            if rho >= cfg.anchor_corr and self.reseeks == reseeks:
                # ... and must agree with the flow about where the object is: the anchored shape takes the place
                # of the flow's mask (below, the flow may only take pixels away from it), so a match on a
                # look-alike spot beside a small object (translation-only ECC slid 25 px on a 27 px object, at
                # correlation >= anchor_corr) erased the mask in one frame (held-out `small` 4001: mean IoU
                # 0.11). The wider re-seek is exempt: it runs when the flow missed a jump.
                flow_obj = (dense > 0.5).astype(np.uint8)
                matched = _moved(self.tmpl[1], compose(to_roi, refined), size)
                at = (matched > 0.5).astype(np.uint8)
                n_flow = cv2.countNonZero(flow_obj)
                if n_flow > 0 and cv2.countNonZero(at & flow_obj) < _ANCHOR_AGREE * n_flow:
                    self.rejected += 1
                    rho = 0.0
            if rho >= cfg.anchor_corr:
                self.misses = 0
                self.matched += 1
                self.anchor = refined
                anchor_shape = matched if matched is not None else _moved(self.tmpl[1], compose(to_roi, refined), size)
            else:
                if self.misses == 0:
                    self.proven = self.matched >= _PROVEN
                    # An abrupt loss (the alignment failed outright, as on a blurred jump) rather than a
                    # template that slowly stopped fitting.
                    self.run_before_loss = self.matched if ecc_rho < _RESEEK_ABRUPT else 0
                    self.matched = 0
                self.misses += 1
                self.anchor = guess
            # The anchored shape is used while the template matches, and through a short loss of the match
            # only for an object that moves rigidly (it had matched for a while before, e.g. an occlusion
            # now, or one similarity explains its flow): a deforming one is followed by the flow alone.
            moves_rigidly = self.proven or self.rigidity >= _RIGID_INLIERS
            if self.misses > 0:
                # ... and only while part of it is hidden now (pixels not following its motion, or where the
                # flow is not trusted): a template that stops matching while the whole object is seen to
                # move with its flow means the object changed its look (non-rigid, turning, scaling), and
                # the stale shape, moved on by a slightly biased fitted scale, capped the mask (talking seed
                # 2: IoU 0.97 -> 0.69 over 25 frames).
                moves_rigidly = moves_rigidly and _partly_hidden(shape, seen, self.k5)
            if self.misses == 0 or (moves_rigidly and self.misses <= cfg.anchor_patience):
                # The keyframe's shape, moved to now: parts hidden for a while come back with it.
                anchored = True
                rigid = anchor_shape
                # The anchored shape is trusted: the flow may only take pixels away from it (occluders) ...
                flow_mask = dense
                dense = np.minimum(dense, rigid)
                # ... but where the flow is trusted and follows the object, the flow's mask has its share in the
                # shape. With the anchored shape alone there, an alignment a few % too small cut the mask and
                # one too large could not grow it (the flow may only take away), a ratchet: on small deforming
                # objects the mask shrank ~10 % over 90 frames, the template then re-learnt from the shrunk
                # mask (`streamfill eval masks` tiny seed 9507: 0.86 of the object's area by frame 72).
                rigid = np.where(follows & trusted, (1.0 - _ANCHOR_FLOW_SHARE) * rigid + _ANCHOR_FLOW_SHARE * flow_mask,
                                 rigid)
            else:
                rigid = _moved(full_state, compose(to_roi, step), size)
            warped = np.where(follows, rigid, dense).astype(np.float32)
        obj, p = self._finish(warped, rgb, trusted)
        # A single frame never multiplies the area: growth beyond what the object's own motion explains
        # (its scale change squared, at least _MAX_GROWTH, at most _MAX_AREA_STEP) falls back to the plain
        # flow result, then to the previous shape moved by the object's motion, and last to the previous
        # binary mask shifted by whole pixels (its area cannot grow). Whatever path made the mask (anchor,
        # re-seek, flow, colour pull), the bound holds; an empty previous mask regrows by _AREA_SLACK px,
        # then by the same factor.
        area = float(cv2.countNonZero(obj))
        ls = decompose(step)[0] if step is not None else 0.0
        limit = min(_MAX_AREA_STEP, max(_MAX_GROWTH, 1.1 * float(np.exp(2 * ls)))) * self.area + _AREA_SLACK
        if area > limit:
            self.rejected += 1
            anchored = False
            obj, p = self._finish(dense, rgb, trusted)
            if cv2.countNonZero(obj) > limit:
                moved = _moved(full_state, compose(to_roi, step if step is not None else np.eye(2, 3)),
                               (x1 - x0, y1 - y0))
                obj, p = self._finish(moved, rgb, trusted, colour=False)
            if cv2.countNonZero(obj) > limit:
                shift = translation_of(step, full_state) if step is not None else np.eye(2, 3)
                shift[:, 2] = np.rint(shift[:, 2])
                prev = (full_state > 0.5).astype(np.uint8)
                obj = cv2.warpAffine(prev, compose(to_roi, shift), (x1 - x0, y1 - y0), flags=cv2.INTER_NEAREST)
                p = obj.astype(np.float32)
            area = float(cv2.countNonZero(obj))
        keep = obj.astype(bool)
        # The state stays soft (sub-pixel edges) but agrees with the cleaned binary mask.
        local = np.where(keep, np.maximum(p, 0.5), np.minimum(p, 0.499)).astype(np.float32)
        state = np.zeros_like(full_state)
        state[y0:y1, x0:x1] = np.clip((local - 0.5) * 2.0 + 0.5, 0.0, 1.0)
        placed = self._redetected(grey, state)
        if placed is not None:
            state = placed
            keep = placed[y0:y1, x0:x1] > 0.5
            area = float(np.count_nonzero(placed > 0.5))
        self.state = state
        self.area = area
        self.prev_grey = grey
        self.prev_rgb = full_rgb
        self.prev_blur = cv2.blur(grey, (3, 3)).astype(np.float32)
        self.confidence = self.scorer.score(rgb, keep, area)
        # A template that had matched for a while survives a short, abrupt loss of the match (a blurred jump the
        # flow missed): the mask of those frames may be off, and taking it as the new look would keep the
        # offset for good; the wider search (_reseek) finds the object again from the old look.
        grace = anchored or (0 < self.misses <= _RESEEK_GRACE and self.run_before_loss >= _RESEEK_RUN)
        if not grace or placed is not None:
            self._set_template(grey, state)  # appearance changed (or found again): anchor to the newest look
        if cfg.model_rate > 0:
            full_trusted = np.zeros(state.shape, bool)
            full_trusted[y0:y1, x0:x1] = trusted
            self._learn(full_rgb, state > 0.5, full_trusted, rate=cfg.model_rate)
        out = view if view is not None and self._key_agrees(view, state) else state
        # What is yielded has its outline placed by the picture where the colours decide (matte.py); the state
        # carries on as the tracker made it.
        return snap_outline(out, full_rgb)


def _partly_hidden(shape: np.ndarray, seen: np.ndarray, kernel: np.ndarray) -> bool:
    """Is at least ``_HIDDEN_SHARE`` of the object's interior (``shape`` eroded by ``kernel``) not ``seen`` (its
    flow untrusted, or not following the object's motion)? The outline's own pixels do not count: the flow is
    rarely trusted on an object's edge, and for a 28 px object that edge alone is more than a tenth of it, so
    a fully visible object counted as partly hidden and was held to a stale shape that shrank with a biased
    fitted scale (`streamfill eval masks` cut, seed 3001: mean IoU 0.76 -> 0.97)."""
    core = cv2.erode(shape, kernel)
    n = cv2.countNonZero(core)
    return n > 0 and cv2.countNonZero(seen & core) < (1.0 - _HIDDEN_SHARE) * n


def _moved(mask: np.ndarray, warp: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A full-frame soft mask moved by ``warp`` into a ``size`` (w, h) region. Beyond the frame's edge the mask
    continues as it is at the edge: an object cut by the edge goes on outside it, so when it moves into the
    frame its entering part is the object's (a constant border read it as background, and the anchored shape,
    which the flow may only shrink, kept it out: mean IoU 0.34 at frame 29 of an object entering at 2 px per
    frame)."""
    return cv2.warpAffine(mask, warp, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

