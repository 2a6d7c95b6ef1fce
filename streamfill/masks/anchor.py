"""The mask tracker's searches for the object's picture (:class:`AppearanceSearch`, mixed into
:class:`streamfill.masks.propagate.Propagator`): aligning the remembered template to the new frame (ECC,
``_refine``), aligning it again from the object's recent motion when the flow's did not match
(``_retry_recent``), or on the object's own pixels only (``_align_own``), looking for it in a wider window when
that alignment fails outright (``_reseek``), refereeing the flow's motion of a small object by its colour picture
(``_picture_shift``), finding the keyframe's picture again (``_key_picture``, ``_redetect``) and mending a mask
that spread around the object with the keyframe's shape there (``_redetected``), and measuring a camera jump
around the object (phase correlation, ``_camera_jump``). They read the propagator's
state (``tmpl``, ``tmpl_std``, ``key_tmpl``, ``key_soft``, ``prev_grey``, ``prev_rgb``, ``state``,
``global_motion``, ``ref_hist``, ``cfg``, the counters ``reseeks``, ``tracked``, ``redetected``) and its kernels."""

from __future__ import annotations

import cv2
import numpy as np

from streamfill.masks.colour import agreement
from streamfill.masks.geometry import compose, decompose, ecc, invert

# ECC alignment guards (see AppearanceSearch._refine).
_ECC_MIN_STD = 4.0  # grey-level standard deviation of the template below which it is too plain to align
_ECC_MIN_PIXELS = 40  # visible object pixels ECC needs
_ECC_AFFINE_SIDE = 40  # templates smaller than this (px, shorter side) are aligned by translation only
_ECC_SCALE_STEP = 0.03  # ... and their scale is measured by trying +-this log-scale (see _refine)
# The picture's shift (see AppearanceSearch._picture_shift): the previous frame's object pixels searched for
# within max(_SHIFT_MIN_REACH, _SHIFT_REACH x the object's shorter side) px of where the flow's motion puts them;
# the flow is overruled when the best place is at least _SHIFT_MIN_APART px away and matches at most _SHIFT_RATIO
# times the squared difference at the flow's place.
_SHIFT_MIN_REACH = 4
_SHIFT_REACH = 0.4
_SHIFT_MIN_APART = 1.5
_SHIFT_RATIO = 0.6
_RESEEK_JUMP = 0.25  # only jumps of at least this share of the searched patch's side (4 px at least) count
# Alignment on the object's own pixels (see AppearanceSearch._align_own): taken only this close (px, the
# template's centre) to the flow's guess, and never for a picture that repeats itself under a shift of 2 to
# _REPEAT_REACH px (a peak of its autocorrelation there, at least _REPEAT_PEAK, that every way from the centre
# reaches only through a dip at least _REPEAT_DIP below it; see repeats).
_OWN_SHIFT = 0.75
_REPEAT_REACH, _REPEAT_PEAK, _REPEAT_DIP = 6, 0.6, 0.3
# Camera jumps (see AppearanceSearch._camera_jump): the picture's shift in a window this many times the object's
# size about it, on a copy at most _JUMP_SIDE px across, trusted above this phase-correlation response; a
# change of at least _JUMP_MIN working px starts the flow from it.
_JUMP_WINDOW = 3.0
_JUMP_SIDE = 128
_JUMP_RESPONSE = 0.1
_JUMP_MIN = 3.0
# Re-detection of the keyframe's picture (see AppearanceSearch._redetect): its central part (this share of the
# keyframe object's box inside each side; none for an object cut by the frame's edge), searched at a scale where its
# shorter side is at most _REDETECT_SIDE px, in a window reaching twice its size beyond the mask's box; found when it
# correlates at least _REDETECT_NCC and at least _REDETECT_MARGIN more than anywhere farther than half its size from
# the best place (so a picture that repeats itself at a shorter period is not told from its shifted copy: see
# "Sixth pass" in docs/guide/tracking.md).
_REDETECT_INSET = 0.2
_REDETECT_SIDE = 24
_REDETECT_NCC = 0.85
_REDETECT_MARGIN = 0.1
_REDETECT_OTHER_SCALES = (0.85, 1.18)  # ... and better than at these scales (see _redetect)
_REDETECT_SCALE_MARGIN = 0.05  # ... by at least this much
# Re-detection (see _redetected): every _REDETECT_EVERY tracked frames the keyframe's picture is searched
# for; where it is found, the keyframe's shape moved there replaces a mask that has spread around it (one that holds
# at least _REDETECT_INSIDE of that shape and is at least _REDETECT_SPREAD times its area), once the keyframe's
# template aligns there (ECC) at a correlation of at least _REDETECT_RHO.
_REDETECT_EVERY = 5
_REDETECT_INSIDE = 0.9
_REDETECT_SPREAD = 1.5
_REDETECT_RHO = 0.9


class AppearanceSearch:
    """Template alignment, wider re-seek and camera-jump measurement (see the module docstring)."""

    def _refine(self, grey: np.ndarray, guess: np.ndarray, visible: np.ndarray, roi: tuple[int, int, int, int],
                template: tuple | None = None, scale_tries: bool = True) -> tuple[np.ndarray, float]:
        """Align the template (``self.tmpl``, or ``template``, one of the same form such as the keyframe's)
        to ``grey`` (ECC) starting from ``guess`` (template frame -> now), scoring only ``visible`` pixels (uint8,
        the region of interest ``roi`` = x0, y0, x1, y1 of the current frame). A template aligned by translation
        only has its scale measured too (tries, below), unless ``scale_tries`` is False.
        Returns (warp, correlation) or (guess, 0) when ECC cannot be trusted.

        Why ECC failed (NaN, "stopped before its convergence") on small or plain objects: an affine warp has six
        unknowns, and a template of a few hundred pixels, or one with little texture, does not pin them down
        (the Hessian is near singular); a mask with only a handful of visible pixels gives it nothing to
        correlate. So: no alignment for a flat template or under ``_ECC_MIN_PIXELS`` visible pixels, a
        translation-only alignment (two unknowns) for templates under ``_ECC_AFFINE_SIDE`` px, and the input
        is cropped to the region of interest (the whole frame's gradients were computed every call)."""
        if template is None:
            template, template_std = self.tmpl, self.tmpl_std
        else:
            template_std = float(np.std(template[0]))
        tg, _, (tx, ty), _ = template
        rx0, ry0, rx1, ry1 = roi
        mask = visible[ry0:ry1, rx0:rx1]
        if template_std < _ECC_MIN_STD or cv2.countNonZero(mask) < _ECC_MIN_PIXELS:
            return guess, 0.0
        affine = min(tg.shape) >= _ECC_AFFINE_SIDE
        crop = guess.copy()
        crop[:, 2] = guess[:, :2] @ np.array([tx, ty], np.float64) + guess[:, 2] - np.array([rx0, ry0])
        image = np.ascontiguousarray(grey[ry0:ry1, rx0:rx1], np.float32)
        rho, warp = ecc(tg, image, crop, mask, affine)
        if rho <= 0.0:
            return guess, 0.0
        if not affine and scale_tries:
            # Translation only leaves the scale to the fitted motion, whose small bias added up: a 29 px
            # object growing by 25 % was anchored 18 % too small after 80 frames (small seed 0). So the scale
            # is measured too, against the template (no build-up): translation ECC from the warp scaled by
            # +-_ECC_SCALE_STEP about the template's centre, and a parabola through the three correlations.
            centre = np.array([(tg.shape[1] - 1) / 2.0, (tg.shape[0] - 1) / 2.0])

            def at_scale(d: float) -> tuple[float, np.ndarray]:
                scaled = warp.copy()
                scaled[:, :2] *= float(np.exp(d))
                scaled[:, 2] += (warp[:, :2] - scaled[:, :2]) @ centre
                return ecc(tg, image, scaled, mask, False)

            low, high = at_scale(-_ECC_SCALE_STEP), at_scale(_ECC_SCALE_STEP)
            lo, mid, hi = low[0], rho, high[0]
            curve = lo + hi - 2.0 * mid
            if min(lo, hi) > 0.0 and curve < 0.0:
                r, w = at_scale(float(np.clip(0.5 * (lo - hi) / curve, -1.0, 1.0)) * _ECC_SCALE_STEP)
                if r > rho:
                    rho, warp = r, w
            elif max(lo, hi) > rho:
                rho, warp = low if lo > hi else high
        out = warp.astype(np.float64)
        out[:, 2] = out[:, 2] + np.array([rx0, ry0]) - out[:, :2] @ np.array([tx, ty], np.float64)
        return out, float(rho)

    def _translation_only(self) -> bool:
        """Is the current template aligned by translation only (shorter side under ``_ECC_AFFINE_SIDE`` px)?"""
        return min(self.tmpl[0].shape) < _ECC_AFFINE_SIDE

    def _align_own(self, grey: np.ndarray, guess: np.ndarray, own: np.ndarray, roi: tuple[int, int, int, int],
                   refined: np.ndarray, rho: float) -> tuple[np.ndarray, float]:
        """The alignment from ``guess`` scored the outline's band on both sides and did not match: align again
        scoring only ``own`` (uint8, the object's own pixels: its visible interior and the inner side of its
        outline, over the region of interest ``roi`` = x0, y0, x1, y1), and take it when it correlates better
        and moves the template's centre at most ``_OWN_SHIFT`` px from the guess. The band's outer side is
        background: a neighbour moving behind a small object (the bunny climbing out behind a 72 px object in
        `bigbuckbunny.mp4` at 320x240) changes it, the alignment failed most frames, the template was learnt
        again from the mask each time and the mask spread onto the neighbour (the standard `translate`
        trajectory: mean IoU 0.69). Not for a template whose
        picture repeats itself (``tmpl_periodic``): its own pixels match one period off as well, which the
        outline rules out; nor for one under ``_ECC_AFFINE_SIDE`` px, aligned by translation only, whose own
        pixels are too few (20-30 px objects lost more than they gained). Returns (warp, correlation), else
        (``refined``, ``rho``) unchanged."""
        if self.tmpl_periodic or self._translation_only():
            return refined, rho
        x0, y0, x1, y1 = roi
        visible = np.zeros(grey.shape, np.uint8)
        visible[y0:y1, x0:x1] = own
        warp, r = self._refine(grey, guess, visible, roi)
        if r > rho and _apart(warp, guess, template_centre(self.tmpl)) <= _OWN_SHIFT:
            return warp, r
        return refined, rho

    def _retry_recent(self, grey: np.ndarray, guess: np.ndarray, prior: np.ndarray, refined: np.ndarray,
                      rho: float, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The alignment from ``guess`` (the template moved by the flow's motion) did not match: align again from
        ``prior`` (moved by the object's recent motion instead), when the two put the template's centre at least
        1 px apart. A periodic texture (a checkerboard) moving about a period per frame makes the flow alias:
        all the object's points agree on a motion one period short, ECC from there fails or slides to the
        wrong period, and the wider search (``_reseek``) refuses places that near the guess (held-out `small`
        seed 9960 over both clips: a 21 px checkered object lost for good at frame 48). Taken as
        ``_align_found`` takes a place (counted as a re-seek). Returns (warp, correlation) as ``_refine``."""
        if _apart(prior, guess, template_centre(self.tmpl)) < 1.0:
            return refined, rho
        return self._align_found(grey, guess, prior, refined, rho, rgb)

    def _align_found(self, grey: np.ndarray, guess: np.ndarray, moved: np.ndarray, refined: np.ndarray,
                     rho: float, rgb: np.ndarray | None) -> tuple[np.ndarray, float]:
        """Align the template (ECC) from ``moved``, a place found other than by the flow's ``guess``; taken
        (counted in ``reseeks``) when it correlates at least ``anchor_corr`` and better than ``rho``, and the
        object's colours agree under it at least as well as under ``guess``. Returns (warp, correlation), else
        (``refined``, ``rho``) unchanged."""
        tsoft = self.tmpl[1]
        H, W = grey.shape
        shape = (cv2.warpAffine(tsoft, moved, (W, H), flags=cv2.INTER_LINEAR) > 0.5).astype(np.uint8)
        visible = cv2.dilate(shape, self.k5)  # the interior and a 2 px band on both sides of the outline
        x, y, w, h = cv2.boundingRect(shape)
        roi = (max(0, x - 8), max(0, y - 8), min(W, x + w + 8), min(H, y + h + 8))
        warp, r = self._refine(grey, moved, visible, roi)
        if r > rho and r >= self.cfg.anchor_corr and rgb is not None:
            # The colours must agree too: the object's colours under the shape found again at least as well
            # as under the predicted one (a look-alike patch of background nearby correlated at 0.92 on a
            # 20-40 px object, and the mask jumped off the object).
            at = cv2.warpAffine(tsoft, warp, (W, H), flags=cv2.INTER_LINEAR) > 0.5
            before = cv2.warpAffine(tsoft, guess, (W, H), flags=cv2.INTER_LINEAR) > 0.5
            if agreement(rgb, at, self.ref_hist) < agreement(rgb, before, self.ref_hist):
                return refined, rho
            self.reseeks += 1
            return warp, r
        return refined, rho

    def _reseek(self, grey: np.ndarray, guess: np.ndarray, refined: np.ndarray, rho: float,
                rgb: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """The alignment failed outright near ``guess``: look for the template again in a wider window
        (normalised cross-correlation of its picture, turned and scaled as ``guess`` has it, translation
        only, over about the object's size each way), and align (ECC) from the best place found. A jump the
        flow missed (a shake, with motion blur) otherwise leaves the guess several px off, ECC cannot reach
        the object from there, and once the newest look replaces the anchor the offset is kept for good
        (held-out `shake` seed 1000: a third of the object outside the mask from frame 9 on). ``rgb`` (the
        whole working frame) checks the colours of the place found. Returns (warp, correlation) as ``_refine``."""
        tg = self.tmpl[0]
        ls, ang, aniso = decompose(guess)
        if self.tmpl_std < _ECC_MIN_STD or abs(ls) > 0.3 or abs(aniso) > 0.2:
            return refined, rho
        th, tw = tg.shape
        H, W = grey.shape
        # The template's picture turned and scaled as the guess has it; the search uses its central part
        # (inside the turned crop at any angle).
        side = int(0.7 * min(th, tw) * float(np.exp(ls)))
        if side < 12:
            return refined, rho
        predicted = guess[:, :2] @ template_centre(self.tmpl) + guess[:, 2]  # where the template's centre should be now
        turn = guess[:, :2].copy()
        shift = np.array([(side - 1) / 2.0, (side - 1) / 2.0]) - turn @ np.array([(tw - 1) / 2.0, (th - 1) / 2.0])
        patch = cv2.warpAffine(tg, np.hstack([turn, shift[:, None]]), (side, side), flags=cv2.INTER_LINEAR)
        m = max(12, round(0.6 * max(th, tw)))
        half = side // 2
        sx0, sy0 = max(0, int(predicted[0]) - half - m), max(0, int(predicted[1]) - half - m)
        sx1, sy1 = min(W, int(predicted[0]) + half + m), min(H, int(predicted[1]) + half + m)
        if sx1 - sx0 < side + 2 or sy1 - sy0 < side + 2 or float(np.std(patch)) < _ECC_MIN_STD:
            return refined, rho
        score = cv2.matchTemplate(np.ascontiguousarray(grey[sy0:sy1, sx0:sx1], np.float32), patch,
                                  cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(score)
        if not np.isfinite(best):
            return refined, rho
        found = np.array([bx + sx0 + (side - 1) / 2.0, by + sy0 + (side - 1) / 2.0])
        if np.hypot(*(found - predicted)) < max(4.0, _RESEEK_JUMP * side):
            # Near the guess: a template that no longer fits (the object turned, changed its look) rather
            # than a jump; kept alive by a near-miss here it would hold back the newest look.
            return refined, rho
        moved = guess.copy()
        moved[:, 2] += found - predicted
        return self._align_found(grey, guess, moved, refined, rho, rgb)

    def _picture_shift(self, rgb: np.ndarray, step: np.ndarray, box: tuple[int, int, int, int] | None
                       ) -> np.ndarray | None:
        """Referee the flow's motion of a small object: the previous frame's picture of the object (colour,
        ``prev_rgb`` under the mask ``state``, whose box is ``box``, one pixel in from its outline) is matched
        (squared differences, translation only) around where ``step`` (previous -> current, working px) puts it
        in ``rgb``. Returns ``step`` with its translation moved to the best place (to a fraction of a pixel)
        when that place is clearly better (see ``_SHIFT_RATIO``) and far enough from the flow's, else None.
        Only for templates aligned by translation only (under ``_ECC_AFFINE_SIDE`` px), and not for one whose
        picture repeats itself (``tmpl_periodic``), which matches one period off as well.

        Why: on a plain object (a flat orange disc) the grey template has no texture for ECC ("iterations do
        not converge") and the flow fitted on its interior follows the textured background behind it. The
        object's colours then still say where it went. Its own picture is the referee, not a colour
        probability: the colours' shift alone moved a textured 23 px object's mask 2-3 px off through H.264,
        where the flow was right ("Seventh pass" in docs/guide/tracking.md)."""
        if box is None or self.tmpl is None or self.tmpl_periodic or not self._translation_only():
            return None
        x, y, w, h = box
        support = cv2.erode((self.state[y:y + h, x:x + w] > 0.5).astype(np.uint8), self.k3)
        if cv2.countNonZero(support) < _ECC_MIN_PIXELS // 2:
            return None
        centre = np.array([x + (w - 1) / 2.0, y + (h - 1) / 2.0])
        moved = step[:, :2] @ centre + step[:, 2] - centre  # the flow's shift of the object's centre
        r = max(_SHIFT_MIN_REACH, int(np.ceil(_SHIFT_REACH * min(w, h))))
        ix, iy = (int(v) for v in np.rint(moved))
        H, W = self.state.shape
        sx, sy = x + ix - r, y + iy - r
        if sx < 0 or sy < 0 or sx + w + 2 * r > W or sy + h + 2 * r > H:
            return None
        ssd = cv2.matchTemplate(rgb[sy:sy + h + 2 * r, sx:sx + w + 2 * r].astype(np.float32),
                                self.prev_rgb[y:y + h, x:x + w].astype(np.float32), cv2.TM_SQDIFF,
                                mask=cv2.merge([support] * 3))
        by, bx = np.unravel_index(int(np.argmin(ssd)), ssd.shape)
        if bx in (0, 2 * r) or by in (0, 2 * r):
            return None  # on the window's edge: the best place may lie beyond it
        flow = moved - (ix, iy) + r  # the flow's place in ssd's coordinates
        fx, fy = (int(np.clip(v, 0, 2 * r)) for v in np.rint(flow))
        if np.hypot(bx - flow[0], by - flow[1]) < _SHIFT_MIN_APART or ssd[by, bx] > _SHIFT_RATIO * ssd[fy, fx]:
            return None
        best = np.array([bx + _vertex(ssd[by, bx - 1:bx + 2]), by + _vertex(ssd[by - 1:by + 2, bx])])
        out = step.copy()
        out[:, 2] += best - flow
        return out

    def _key_picture(self, grey: np.ndarray, obj: np.ndarray) -> None:
        """Remember the keyframe object's central picture for ``_redetect``: ``key_picture`` = (grey patch, its
        top-left corner in the keyframe), or None for an object too small, too plain or cut by the frame's edge."""
        self.key_picture = None
        if not obj.any():
            return
        x, y, w, h = cv2.boundingRect(obj.astype(np.uint8))
        if x == 0 or y == 0 or x + w == obj.shape[1] or y + h == obj.shape[0]:
            return
        ix, iy = int(_REDETECT_INSET * w), int(_REDETECT_INSET * h)
        patch = grey[y + iy : y + h - iy, x + ix : x + w - ix].astype(np.float32)
        if min(patch.shape) >= 8 and float(np.std(patch)) >= _ECC_MIN_STD:
            self.key_picture = (patch, np.array([x + ix, y + iy], np.float64))

    def _redetect(self, grey: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray | None:
        """Where the keyframe's picture, as it was (not turned, not scaled), is now: the translation (2 x 3 warp,
        keyframe -> now, working px) that puts it there, or None when it is not found unmistakably (see
        ``_REDETECT_NCC``) in a window of twice its size around ``box`` (the mask's). It is found only while the
        object looks as it did at the keyframe, and then the keyframe's shape moved there is the object's: a mask
        that spread onto a moving neighbour of the object's colours was told by nothing else (a 43 px object over
        the bunny in `bigbuckbunny.mp4` at 176x144: the mask grew to four times the object while the picture was
        found within 1 px of it at correlation 0.84-0.98). Placed at its keyframe size only, and found only where
        it matches better at that size than shrunk or grown (``_REDETECT_OTHER_SCALES``): placed at the best of
        0.8-1.25 it matched a 0.8-size copy of a foliage object's own texture inside it and cut the mask down;
        at one size alone, it still matched an object grown by a quarter and cut its good mask back. Better by
        ``_REDETECT_SCALE_MARGIN``, not by anything: a nearly plain picture (a grey disc with one dark notch, 26 px,
        over `vtest.avi`) matched about as well at every size (by 0.004), and an object grown by x1.65 in area had
        its good mask cut to the keyframe's size (IoU 0.98 -> 0.51); the finds that mend a spread mask beat the
        other sizes by 0.17 or more."""
        if self.key_picture is None or box is None:
            return None
        patch, corner = self.key_picture
        ph, pw = patch.shape
        H, W = grey.shape
        x, y, w, h = box
        m = max(ph, pw) * 2
        x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)
        f = min(1.0, _REDETECT_SIDE / min(ph, pw))
        window = np.ascontiguousarray(grey[y0:y1, x0:x1], np.float32)
        if f < 1.0:
            window = cv2.resize(window, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            patch = cv2.resize(patch, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        if patch.shape[0] + 2 > window.shape[0] or patch.shape[1] + 2 > window.shape[1] or min(patch.shape) < 6:
            return None
        score = cv2.matchTemplate(window, patch, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(score)
        if not np.isfinite(best) or best < _REDETECT_NCC:
            return None
        for sc in _REDETECT_OTHER_SCALES:  # the object must be at its keyframe size now
            other = cv2.resize(patch, None, fx=sc, fy=sc, interpolation=cv2.INTER_AREA if sc < 1 else cv2.INTER_LINEAR)
            if other.shape[0] > window.shape[0] or other.shape[1] > window.shape[1]:
                return None
            if float(cv2.matchTemplate(window, other, cv2.TM_CCOEFF_NORMED).max()) > best - _REDETECT_SCALE_MARGIN:
                return None
        r = max(2, min(patch.shape) // 2)
        score[max(0, by - r) : by + r + 1, max(0, bx - r) : bx + r + 1] = -1.0
        if float(score.max()) > best - _REDETECT_MARGIN:
            return None
        # the patch's top-left corner now (frame px) less where it was at the keyframe
        shift = np.array([x0 + bx / f, y0 + by / f]) - corner
        return np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])

    def _redetected(self, grey: np.ndarray, state: np.ndarray) -> np.ndarray | None:
        """Every ``_REDETECT_EVERY`` tracked frames: the keyframe's shape (soft, full frame) moved to where the
        keyframe's picture is found again (``_redetect``), when the mask ``state`` has spread around it (see
        ``_REDETECT_SPREAD``); else None. The template is then learnt again from it.

        Only a spread mask is mended, never a shrunken or shifted one: a search that may also match the
        object's own texture must not cut a good mask down (foliage at several scales did), and one that may
        match a look-alike nearby must not move it (a pan over vtest matched 50 px away)."""
        self.tracked += 1
        if self.tracked % _REDETECT_EVERY or self.key_tmpl is None:
            return None
        obj = (state > 0.5).astype(np.uint8)
        warp = self._redetect(grey, cv2.boundingRect(obj) if obj.any() else None)
        if warp is None:
            return None
        H, W = state.shape
        placed = cv2.warpAffine(self.key_soft, warp, (W, H), flags=cv2.INTER_LINEAR)
        a, b = placed > 0.5, obj.astype(bool)
        n_a, n_b, n_ab = np.count_nonzero(a), np.count_nonzero(b), np.count_nonzero(a & b)
        if n_ab < _REDETECT_INSIDE * n_a or n_b < _REDETECT_SPREAD * n_a:
            return None
        inner = cv2.erode(a.astype(np.uint8), self.k5)
        x, y, w, h = cv2.boundingRect(cv2.dilate(a.astype(np.uint8), self.k5))
        roi = (max(0, x - 8), max(0, y - 8), min(W, x + w + 8), min(H, y + h + 8))
        _, rho = self._refine(grey, warp, inner, roi, self.key_tmpl)
        if rho < _REDETECT_RHO:
            return None
        self.redetected += 1
        return placed

    def _camera_jump(self, grey: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
        """The change of the picture's shift around the object (phase correlation of the previous and the new
        frame in a window of ``_JUMP_WINDOW`` x the object's size about it, on a copy at most ``_JUMP_SIDE``
        px across; working px) since the previous frame, when it is a jump (at least ``_JUMP_MIN`` px,
        clearly found); else zeros. The object's own motion is smooth, a shaking camera's is not: the
        object's motion now is about its last motion plus this change. Measured around the object, not over
        the whole frame: the camera's shake turns the picture too, so far from the centre the shift differs
        (held-out shake seed 1000, frame 9: the whole frame moved 5 px up, the object 19 px)."""
        H, W = grey.shape
        if box is None:
            return np.zeros(2)
        x, y, w, h = box
        half = int(min(max(H, W), max(48, _JUMP_WINDOW * max(w, h)))) // 2
        cx, cy = x + w // 2, y + h // 2
        x0, y0 = max(0, min(W - 2 * half, cx - half)), max(0, min(H - 2 * half, cy - half))
        x1, y1 = min(W, x0 + 2 * half), min(H, y0 + 2 * half)
        a, b = self.prev_grey[y0:y1, x0:x1], grey[y0:y1, x0:x1]
        k = max(1.0, max(a.shape) / _JUMP_SIDE)
        if k > 1.0:
            size = (max(8, round(a.shape[1] / k)), max(8, round(a.shape[0] / k)))
            a, b = (cv2.resize(v, size, interpolation=cv2.INTER_AREA) for v in (a, b))
        a, b = a.astype(np.float32), b.astype(np.float32)
        (dx, dy), response = cv2.phaseCorrelate(a, b, self._hann(a.shape))
        shift = np.array([dx, dy]) * k if response >= _JUMP_RESPONSE else self.global_motion
        change = shift - self.global_motion
        self.global_motion = shift
        return change if np.hypot(*change) >= _JUMP_MIN else np.zeros(2)

    def _hann(self, shape: tuple[int, int]) -> np.ndarray:
        if self._hann_win is None or self._hann_win.shape != shape:
            self._hann_win = cv2.createHanningWindow((shape[1], shape[0]), cv2.CV_32F)
        return self._hann_win


def repeats(picture: np.ndarray) -> bool:
    """Does ``picture`` (grey, float32: the object's box) repeat itself under a shift of 2 to ``_REPEAT_REACH`` px
    (less in a small picture)? A checkerboard, stripes, a grid; not a plain picture, a ramp, a random texture, an
    edge or a bar."""
    h, w = picture.shape
    reach = min(_REPEAT_REACH, (min(h, w) - 5) // 2)
    if reach < 2:
        return False
    centre = picture[reach:h - reach, reach:w - reach]
    if float(np.std(centre)) < 1.0:
        return False
    score = cv2.matchTemplate(picture, centre, cv2.TM_CCOEFF_NORMED)
    # A repeat: a shift at least 2 px out that correlates at least _REPEAT_PEAK, as well as its neighbours,
    # and is parted from the centre by a valley: every way there dips at least _REPEAT_DIP below it. A periodic
    # picture dips between its repeats; a plain one, a ramp or a random texture only falls away from the centre,
    # and a straight edge or a bar keeps a ridge along itself, bumpy but unbroken (read one step at a time, a
    # bump on it looked like a repeat: two-tone objects were taken for repeating ones).
    top = cv2.dilate(score, np.ones((3, 3), np.uint8))
    peaks = np.argwhere((score >= _REPEAT_PEAK) & (score >= top))
    for y, x in peaks:
        if max(abs(y - reach), abs(x - reach)) >= 2 and _pass_height(score, (reach, reach), (y, x)) <= (
                score[y, x] - _REPEAT_DIP):
            return True
    return False


def _pass_height(score: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> float:
    """The highest level that joins ``a`` and ``b`` in ``score`` by a path (8-connected) of values at least that
    level: how high one can stay on the way from one to the other."""
    levels = np.unique(score[score <= min(score[a], score[b])])
    lo, hi = 0, len(levels) - 1  # joined at levels[0] (everything), the highest joining level is sought
    while lo < hi:
        mid = (lo + hi + 1) // 2
        _, labels = cv2.connectedComponents((score >= levels[mid]).astype(np.uint8), connectivity=8)
        if labels[a] == labels[b]:
            lo = mid
        else:
            hi = mid - 1
    return float(levels[lo])


def template_centre(tmpl: tuple) -> np.ndarray:
    """The centre of the template's crop (``tmpl`` as ``Propagator._set_template`` keeps it), in the coordinates
    of the frame it was taken from: a warp (template -> now) maps it to where the object's centre is now."""
    tg, _, (tx, ty), _ = tmpl
    return np.array([tx + (tg.shape[1] - 1) / 2.0, ty + (tg.shape[0] - 1) / 2.0])


def damped_scale(refined: np.ndarray, guess: np.ndarray, tmpl: tuple, gain: float) -> np.ndarray:
    """``refined`` (template -> now) with its scale change against ``guess`` taken at ``gain`` only: rescaled
    about where it puts the template's centre (translation and rotation kept)."""
    ls = decompose(compose(refined, invert(guess)))[0]
    if not np.isfinite(ls) or ls == 0.0:
        return refined
    c = refined[:, :2] @ template_centre(tmpl) + refined[:, 2]
    f = float(np.exp(-(1.0 - gain) * ls))
    return compose(np.array([[f, 0.0, (1.0 - f) * c[0]], [0.0, f, (1.0 - f) * c[1]]]), refined)


def place_only(found: np.ndarray, last: np.ndarray, tmpl: tuple) -> np.ndarray:
    """``last`` (template -> now) moved so that it puts the template's centre where ``found`` does: the place of
    ``found`` with the scale, turn and slant of ``last``."""
    centre = template_centre(tmpl)
    out = last.copy()
    out[:, 2] += found[:, :2] @ centre + found[:, 2] - (last[:, :2] @ centre + last[:, 2])
    return out


def _apart(a: np.ndarray, b: np.ndarray, point: np.ndarray) -> float:
    """How far apart (px) the 2 x 3 warps ``a`` and ``b`` put ``point``."""
    return float(np.hypot(*((a[:, :2] - b[:, :2]) @ point + a[:, 2] - b[:, 2])))


def _vertex(values: np.ndarray) -> float:
    """Offset (-0.5 .. 0.5) of the lowest point of the parabola through three values at -1, 0, 1."""
    a, b, c = (float(v) for v in values)
    curve = a + c - 2.0 * b
    return float(np.clip(0.5 * (a - c) / curve, -0.5, 0.5)) if curve > 0 else 0.0
