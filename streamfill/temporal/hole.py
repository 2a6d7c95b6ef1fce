"""Filling one frame's hole: the sources weighed into one candidate per pixel, the candidates the ring refuses,
and the rest carried from the previous output or left to the engine (the module docstring of ``complete.py`` tells
the whole method).

``HoleFill`` is a mixin of ``complete.TemporalCompletion`` (as ``sources.Sources`` and ``ring.RingChecks``, whose
methods it calls): ``_complete`` fills frame ``i`` of the window in phases over one ``_Hole``, the record of what
each source offers in the box around the hole. The weights and switches below are the ones these phases read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from streamfill.masks import paste_alpha
from streamfill.temporal.flow import smooth_fill
from streamfill.temporal.layers import layered_copies
from streamfill.temporal.ring import (
    background_agreement,
    disc,
    light_fit,
    misfits,
    ring_error,
    whole_parts,
)

if TYPE_CHECKING:
    from streamfill.temporal.complete import _Slot

BACKGROUND_TRUST = 8.0   # weight of a well-observed background pixel (a flow candidate one frame away: ~0.5)
WARMUP = 4               # observations after which a background pixel is trusted fully (no flow is sought)
MEMORY_LIGHT = True      # the memory's colours are brought to the frame's present light, fitted on the ring
SUPPORT_MIN = 0.5        # background samples agreeing with their median below which the memory is not trusted
BRACKET_TRUST = 16.0     # weight of a pixel shown alike just before and just after it was hidden
ARBITRATE = True         # compare sources on the ring (copies vs flow) and drop candidates that misfit it
SWITCH_RATIO = 1.0       # flow candidates replace the copies where their ring error is below this share of theirs
NEAREST_TRUST = 12.0     # weight of the nearer of before/after where they differ (above a trusted memory's 8)
MOVING_PX = 1.5          # camera motion (px, from the memory's reference) beyond which the memory is a rigid guess
NEAR_MOVING_PX = 3.0     # fast: camera motion between this frame and any other of the window (px) beyond which the
                         # nearer of before/after is not taken alone (0 = only MOVING_PX, from the memory's reference)
FLOW_SOLID = 0.3         # flow weight (about one candidate within 3 frames) that may overrule the memory (quality)
CONFLICT_LEVEL = 30.0    # 8-bit levels flow and memory may differ before the flow overrules the memory (quality)
TRAJECTORY_SMOOTH = 0.5   # quality: share of the previous output (along the flow) in each carried pixel
ENGINE_SMOOTH = 0.6      # quality: share of the previous output (along the flow) in each engine-filled pixel
PROBE = True             # quality: test propagation against the engine on held-out known pixels around the hole
PROBE_AGE = True         # quality: the probe predicts the ring from frames as far away as the hole's sources
PROBE_AGE_COPIES = True  # quality: ... and the ring's copies (and flow candidates that replaced them) likewise
PROBE_CARRY = True       # quality: a hole part the probe gave away whole takes nothing carried from the previous output
DRIFT_MAX = 1.5          # fast: px a flow chain may drift through flow completed across holes (0 = off)
DRIFT_MEMORY = True      # fast, moving camera: a part the guard gives away takes the memory's guesses with it
DRIFT_CARRY = True       # fast: ... and what the guard refused is not carried from the previous output either
DRIFT_ALL = 0.5          # fast: share of a hole part refused by the guard above which all of it goes to the engine
LAYERED = True           # copies seen alike before and after the hole along one of the motions around it (layers.py)
LAYER_TRUST = 16.0       # their weight (as the bracket's)
LAYER_SWITCH = 1.0       # a layer's copies give way where their ring error exceeds this share of the flow's (0 = off)


@dataclass(eq=False)
class _Hole:
    """One frame's hole while it is completed (``TemporalCompletion._complete``): the box around it, and what
    each source offers there (box-sized arrays; a weight is 0 where its source offers nothing)."""

    box: tuple[int, int, int, int]        # x0, y0, x1, y1 in the frame: the hole, its ring and one pixel more
    hole: np.ndarray                      # bool: the pixels to fill
    region: np.ndarray                    # bool: the hole and the ring of ``seam`` pixels around it
    xs: np.ndarray                        # float32: the box's pixels' frame coordinates
    ys: np.ndarray
    image: np.ndarray                     # the frame's pixels in the box (a view)
    moving: bool                          # the camera has moved more than MOVING_PX from the memory's reference
    acc: np.ndarray = field(init=False)   # float32 x 3: weighted sum of the candidates (the flow's, then all)
    wsum: np.ndarray = field(init=False)  # ... and of their weights
    bg_w: np.ndarray = field(init=False)  # the memory's weight (_combine zeroes it where others answer) ...
    colour: np.ndarray | None = None      # ... and its colours, lit as the frame is now
    memory: tuple | None = None           # (colour, well-observed) handed to the bracket, when the memory is trusted
    bracket: np.ndarray | None = None     # the copies' colours (bracket, or the nearer side) ...
    bracket_w: np.ndarray = field(init=False)  # ... and their weight
    copy_age: np.ndarray | None = None    # quality: frames between this one and each copy's source
    layered: np.ndarray | None = None     # the layered copies' colours, their layer ...
    layer_of: np.ndarray | None = None
    layer_w: np.ndarray = field(init=False)  # ... and their weight
    todo: np.ndarray | None = None        # the pixels flow chains were gathered for
    flow_w: np.ndarray | None = None      # the flow candidates' weight (their colours are in acc)
    age: np.ndarray | None = None         # quality: frames the flow candidates came from (for the probe)
    drifted: np.ndarray | None = None     # fast: pixels whose chains the drift guard refused
    rival: tuple | None = None            # quality: (acc, weight) of flow candidates for the copies' pixels ...
    age_f: np.ndarray | None = None       # ... their age
    w_f: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.acc = np.zeros((*self.hole.shape, 3), np.float32)
        self.wsum = np.zeros(self.hole.shape, np.float32)
        self.bg_w = np.zeros(self.hole.shape, np.float32)
        self.bracket_w = np.zeros(self.hole.shape, np.float32)
        self.layer_w = np.zeros(self.hole.shape, np.float32)


class HoleFill:
    """Filling one frame's hole: a mixin of ``complete.TemporalCompletion``, whose ``config``, ``quality``,
    ``stats``, ``fill``, ``feather``, ``margin``, ``_memory`` and ``_pair`` it uses."""

    def _complete(self, buf: list[_Slot], i: int) -> np.ndarray:
        """Frame ``i``'s picture with its hole filled: the sources are gathered (memory, copies, layers, flow),
        weighed into one candidate per pixel, refused where the ring around the hole says they misfit, and what
        none of them answers is carried from the previous output or left to the engine."""
        h = self._open(buf[i])
        self._from_memory(h, buf[i])
        self._from_copies(h, buf, i)
        self._from_flow(h, buf, i)
        cand, have, switch = self._combine(h)
        have, misfit, given_away = self._give_away(h, buf, i, cand, have, switch)
        return self._fill_rest(h, buf, i, cand, have, misfit, given_away)

    def _open(self, slot: _Slot) -> _Hole:
        H, W = slot.hole.shape
        ring = self.config.seam
        x0, y0, x1, y1 = _bbox(slot.hole, ring + 1, W, H)
        hole = slot.hole[y0:y1, x0:x1]
        region = hole | (cv2.dilate(hole.astype(np.uint8), disc(ring)) > 0) if ring > 0 else hole
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        # Once the camera has moved (the memory is then a rigid approximation of a scene with parallax and slow
        # movers, resampled), the memory is trusted only where the frame around the hole agrees with it, and in
        # quality real pixels from near frames that disagree with it overrule it. On a fixed camera the memory
        # stays in charge: there a disagreeing flow candidate is far more often a person carried in along a
        # wrong flow than the truth. Pixels the memory knows well need no flow in fast mode.
        moving = slot.placement is not None and slot.placement.shift(W, H) > MOVING_PX
        return _Hole(box=(x0, y0, x1, y1), hole=hole, region=region, xs=xs, ys=ys,
                     image=slot.frame.image[y0:y1, x0:x1], moving=moving)

    def _from_memory(self, h: _Hole, slot: _Slot) -> None:
        """The background memory's colours (lit as the frame is now) and their weight."""
        if self._memory is None or slot.placement is None:
            return
        view = self._memory.model(slot.placement, *h.box)
        colour = view.colour
        if MEMORY_LIGHT:  # (None: too few ring pixels, or the memory does not show the ring even lit otherwise)
            relit = light_fit(h.image, colour, h.region & ~h.hole & (view.count > 0))
            colour = colour if relit is None else relit
        stable = np.clip((view.support - SUPPORT_MIN) / (1.0 - SUPPORT_MIN), 0.0, 1.0)
        h.bg_w = BACKGROUND_TRUST * np.minimum(view.count / WARMUP, 1.0) * stable * h.region
        if h.moving:
            h.bg_w *= background_agreement(h.image, h.hole, h.region, colour, view.count)
        h.colour = colour

    def _from_copies(self, h: _Hole, buf: list[_Slot], i: int) -> None:
        """Fixed or shaking camera, not live: the bracket (seen alike before and after) and the nearer side."""
        slot = buf[i]
        # quality: how far (frames) each copy came from, for the probe's age matching
        h.copy_age = np.zeros(h.hole.shape, np.float32) if self.quality and PROBE_AGE and PROBE_AGE_COPIES else None
        if self._memory is None or slot.placement is None or self.config.live:
            return
        h.memory = None if not h.bg_w.any() else (h.colour, h.bg_w >= 0.9 * BACKGROUND_TRUST)
        bracket, found, near_colour, nearest = self._bracket(buf, i, h.xs, h.ys, h.memory, dist_out=h.copy_age)
        h.bracket_w = BRACKET_TRUST * (found & h.region).astype(np.float32)
        # where before and after differ (swaying leaves, water, a face moving a little), the nearer of the
        # two (the one agreeing with a trusted memory, if one does) beats the memory's median, a blur of
        # the moving texture (measured: foliage 31 -> 34 dB)
        # fast: only from a camera that stays put around this frame: the first frames after the memory's
        # reference (a pan just begun, or restarted) sit within MOVING_PX of it, and there the nearer side shows
        # the background where a subject that moves against it was hidden (development corpus, fast: +0.42 dB
        # on average). quality keeps them: its arbitration (ring, probe) weighs them against the flow, and
        # without them it lost 0.17 dB on average (zoom_parallax 0: -3.5 dB).
        H, W = slot.hole.shape
        still = not h.moving and (self.quality or NEAR_MOVING_PX <= 0
                                  or not _window_moves(buf, i, W, H, NEAR_MOVING_PX))
        near = nearest & h.region & ~found & still
        bracket[near] = near_colour[near]
        h.bracket_w[near] = NEAREST_TRUST
        h.bracket = bracket

    def _from_flow(self, h: _Hole, buf: list[_Slot], i: int) -> None:
        """The layered copies, real pixels along the flow chains for what copies do not answer (summed into
        ``h.acc``/``h.wsum``), the layers' check against the flow, and (quality) the flow's rival candidates for
        the copies' pixels."""
        if LAYERED and not self.config.live:
            want = h.region & (h.bracket_w == 0)
            if want.any():
                h.layered, h.layer_of = layered_copies(buf, i, h.box, want, self._pair, self.config.fb_threshold)
                h.layer_w = LAYER_TRUST * (h.layer_of >= 0).astype(np.float32)
        # flow is gathered for the layers' ring pixels too: the two are compared there (below)
        todo = h.region & (h.bracket_w == 0) & ~(h.hole & (h.layer_w > 0))
        if not self.quality:
            todo &= h.bg_w < BACKGROUND_TRUST
        h.todo = todo
        h.age = np.zeros(h.hole.shape, np.float32) if self.quality and PROBE_AGE else None
        # fast: the pixels whose chains the drift guard refused
        h.drifted = np.zeros(h.hole.shape, bool) if not self.quality and DRIFT_MAX > 0 else None
        h.flow_w = self._gather_flow(buf, i, h.xs, h.ys, todo, h.acc, h.wsum, h.age, drifted=h.drifted,
                                     drift_max=DRIFT_MAX) if todo.any() else np.zeros_like(h.wsum)
        if h.layer_w.any() and LAYER_SWITCH > 0:
            # a layer's copies stay only where they predict the ring around the hole (the frame's truth) about as
            # well as the flow does: a subject that deforms, or blur, fools the agreement of before and after
            kept = self._check_layers(h.image, h.hole, h.region, h.layered, h.layer_of, h.layer_w, h.acc, h.flow_w,
                                      LAYER_SWITCH)
            redo = h.hole & (h.layer_w > 0) & (kept == 0)
            if not self.quality:
                redo &= h.bg_w < BACKGROUND_TRUST
            if redo.any():   # the refused layers' hole pixels: flow chains, as for any other pixel
                h.flow_w = h.flow_w + self._gather_flow(buf, i, h.xs, h.ys, redo, h.acc, h.wsum, h.age,
                                                        drifted=h.drifted, drift_max=DRIFT_MAX)
            h.layer_w = kept
        # Evidence for the copies of a fixed camera (quality): real pixels along the flow are gathered for the
        # pixels the copies answer too, and the two sources are compared on the ring around the hole (where the
        # frame is the truth), in _combine.
        if ARBITRATE and self.quality and h.bracket_w.any():  # fast: DIS on every still frame cost 20 % fps
            acc_f = np.zeros_like(h.acc)
            h.w_f = np.zeros_like(h.wsum)
            h.age_f = None if h.copy_age is None else np.zeros_like(h.wsum)
            if self._gather_flow(buf, i, h.xs, h.ys, h.region & (h.bracket_w > 0), acc_f, h.w_f, h.age_f).any():
                h.rival = (acc_f, h.w_f)

    def _combine(self, h: _Hole) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All sources weighed into one candidate per pixel (summed into ``h.acc``/``h.wsum``; ``h.bg_w`` is zeroed
        where copies, layers or, quality on a moving camera, a conflicting flow answer); where the flow's rival
        candidates predict the ring better than the copies (quality), they take the copies' place. Returns
        (candidate colours, answered, switched to the flow)."""
        acc, wsum, bg_w = h.acc, h.wsum, h.bg_w
        if bg_w.any():
            if self.quality and h.moving:
                flow_colour = acc / np.maximum(h.flow_w, 1e-6)[..., None]
                conflict = (h.flow_w > FLOW_SOLID) & (np.abs(flow_colour - h.colour).max(axis=2) > CONFLICT_LEVEL)
                bg_w[conflict] = 0.0
            bg_w[(h.bracket_w > 0) | (h.layer_w > 0)] = 0.0
            acc += h.colour * bg_w[..., None]
            wsum += bg_w
        if h.bracket_w.any():
            acc += h.bracket * h.bracket_w[..., None]
            wsum += h.bracket_w
        if h.layer_w.any():
            acc += h.layered * h.layer_w[..., None]
            wsum += h.layer_w
        have = wsum > 0
        cand = np.zeros_like(acc)
        cand[have] = acc[have] / wsum[have][:, None]
        switch = np.zeros(h.hole.shape, bool)
        if h.rival is not None:
            # per part of the hole, the source that predicts the ring better (by SWITCH_RATIO) wins: where the
            # scene moves on its own (leaves, water, a face) real pixels along the flow beat a copy from the same
            # place; where it does not, the copy stays (it is exact, and flow would carry passers-by in)
            acc_f, w_f = h.rival
            got = w_f > 0
            flow_cand = np.zeros_like(acc)
            flow_cand[got] = acc_f[got] / w_f[got][:, None]
            box = h.image.astype(np.float32)
            outside = h.region & ~h.hole
            e_copy = ring_error(box, cand, outside & have)
            e_flow = ring_error(box, flow_cand, outside & got)
            if e_copy is not None and e_flow is not None:
                switch = got & (h.bracket_w > 0) & (e_flow < SWITCH_RATIO * e_copy)
                cand[switch] = flow_cand[switch]
                self.stats.pixels["switched"] = self.stats.pixels.get("switched", 0) + int((switch & h.hole).sum())
        return cand, have, switch

    def _give_away(self, h: _Hole, buf: list[_Slot], i: int, cand: np.ndarray, have: np.ndarray,
                   switch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Candidates refused: parts the drift guard mostly refused (fast), parts the probe gives to the engine
        (quality), and candidates that misfit the ring. Returns (answered, misfit: the candidates refused, parts
        given away whole); ``h.drifted`` takes in the parts the drift guard gave away."""
        hole = h.hole
        misfit = np.zeros(hole.shape, bool)
        given_away = None   # parts of the hole the probe gave away whole
        refused = None if h.drifted is None else h.drifted & hole & ~have
        if refused is not None and refused.any():
            self.stats.pixels["drifted"] = self.stats.pixels.get("drifted", 0) + int(refused.sum())
        if refused is not None and DRIFT_ALL < 1.0 and refused.any():
            # fast: a part of the hole mostly refused by the drift guard goes to the engine whole (a patchwork of
            # short chains and engine fills is worse than either)
            lost, among = refused, hole
            slot = buf[i]
            if h.moving and DRIFT_MEMORY and max(slot.drift_fwd, slot.drift_bwd) > 0:
                # once the camera has moved, the memory is a rigid guess at what the refused chains show (a scene
                # whose parts move against each other, here, around this frame's hole): the share counts among the
                # pixels the chains were for, and the memory goes with them
                lost, among = h.drifted & hole, h.todo & hole
            # layered copies (seen alike before and after, not along the refused flow) stay
            whole = whole_parts(hole, lost, among, DRIFT_ALL) & (h.layer_w == 0)
            if whole.any():
                given_away = whole
                h.drifted = h.drifted | given_away
                misfit |= given_away & have
                have = have & ~given_away
        # (quality only: in fast, its engine run and ring errors cost about 40 % of the throughput)
        if PROBE and self.quality and (hole & have).any():
            aged = None
            if h.age is not None:
                copies = None
                copy_age = h.copy_age
                if copy_age is not None and (h.bracket_w > 0).any():
                    if h.age_f is not None and switch.any():
                        copy_age = np.where(switch & np.isfinite(copy_age), h.age_f / np.maximum(h.w_f, 1e-6),
                                            copy_age)
                    copies = (copy_age, h.bracket_w > 0, switch, h.memory, h.moving)
                aged = self._aged_ring(buf, i, h.xs, h.ys, hole, h.region, h.flow_w, h.age, h.bg_w + h.bracket_w,
                                       copies)
            misfit, given_away = self._probe(buf[i].frame.image, h.box, hole, h.region, have, cand, aged)
            if misfit.any():
                have = have & ~misfit
                self.stats.pixels["probe"] = self.stats.pixels.get("probe", 0) + int(misfit.sum())
        if ARBITRATE and (hole & have).any():
            off = misfits(h.image, hole, h.region, have, cand, cheap=not self.quality)
            if off.any():
                have = have & ~off
                misfit |= off
                self.stats.pixels["misfit"] = self.stats.pixels.get("misfit", 0) + int(off.sum())
        return have, misfit, given_away

    def _fill_rest(self, h: _Hole, buf: list[_Slot], i: int, cand: np.ndarray, have: np.ndarray,
                   misfit: np.ndarray, given_away: np.ndarray | None) -> np.ndarray:
        """What no source answers: carried from the previous output along the flow, interpolated (specks) or
        filled by the engine; the seam matched to the ring, and the result pasted into the frame."""
        slot = buf[i]
        hole, region, drifted = h.hole, h.region, h.drifted
        uncovered = (region & ~have).any()
        previous = None  # the previous output read along the flow, once: (carried, valid, filtered)
        if i > 0 and buf[i - 1].out is not None and (uncovered or self.quality):
            self._pair(buf[i - 1], slot)
            if not buf[i - 1].cut_after:
                previous = self._from_previous(buf, i, h.xs, h.ys)
        prev_used = np.zeros(hole.shape, bool)
        if previous is not None and uncovered:
            prev_used = previous[1] & ~have & region & ~misfit
            if drifted is not None and DRIFT_CARRY:
                # fast: what the guard refused came along flow interpolated across a hole whose border moves
                # in several ways; the previous output would come along that same flow
                prev_used &= ~drifted
            if PROBE_CARRY and given_away is not None:
                # the previous output comes along the same flow the probe just distrusted in this part
                prev_used &= ~given_away
            cand[prev_used] = previous[0][prev_used]

        known = have | prev_used
        cand = self._seam(h.image, hole, region, known, have, cand)
        if self.quality and previous is not None:
            # Quality: carried pixels are averaged with the previous output along the flow (an exponential
            # filter along motion trajectories), so sources that come and go as the window slides do not
            # flicker. Not where the bracket or a fully trusted background memory answers: those are exact,
            # and the flow there (interpolated across the hole on a still camera) would only shift them.
            _, valid, colour = previous
            smooth = valid & hole & have & (h.bracket_w == 0) & (h.bg_w < BACKGROUND_TRUST)
            cand[smooth] = (1.0 - TRAJECTORY_SMOOTH) * cand[smooth] + TRAJECTORY_SMOOTH * colour[smooth]

        missing = hole & ~known
        specks, large = _split(missing, self.config.speck_area)
        if missing.any():
            # specks keep this interpolation; large parts hold it only until the engine fills them (so the frame
            # handed to the engine, and any blend at their edge, carries nothing of the marked pixels)
            base = np.where(hole[..., None], cand, h.image.astype(np.float32))
            cand = np.where(missing[..., None], smooth_fill(base, ~missing), cand)
        stats = self.stats.pixels
        stats["flow"] += int((hole & (h.flow_w > h.bg_w)).sum())
        stats["background"] += int((hole & (h.bg_w >= h.flow_w) & (h.bg_w > 0)).sum())
        stats["bracket"] += int((hole & (h.bracket_w > 0)).sum())
        stats["layered"] = stats.get("layered", 0) + int((hole & (h.layer_w > 0)).sum())
        stats["previous"] += int((hole & prev_used).sum())
        stats["speck"] += int(specks.sum())
        return self._paste(h, slot, cand, large, previous)

    def _paste(self, h: _Hole, slot: _Slot, cand: np.ndarray, large: np.ndarray,
               previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> np.ndarray:
        """The candidates pasted into the frame (feathered inside the margin); the ``large`` never-seen parts
        then filled by the engine (quality: averaged with the previous output along the flow)."""
        image = slot.frame.image
        H, W = slot.hole.shape
        x0, y0, x1, y1 = h.box
        hole = h.hole
        out = image.copy()
        src = h.image.astype(np.float32)
        alpha = paste_alpha(hole, self.feather, self.margin)[..., None]
        blend = np.clip(np.rint(src + (cand - src) * alpha), 0, 255).astype(np.uint8)
        out[y0:y1, x0:x1] = np.where(hole[..., None], blend, h.image)
        if large.any():
            grow = cv2.dilate(large.astype(np.uint8), disc(2)) > 0
            mask = np.zeros((H, W), np.uint8)
            mask[y0:y1, x0:x1] = np.where(grow & hole, np.uint8(255), np.uint8(0))
            # the engine sees, inside the never-seen part, the smooth guess pasted above (interpolated from
            # around it), not whatever the hole showed (black, the occluder: a dark line along the edge)
            engine = self.fill(out, mask)
            sel = previous[1] & large if self.quality and previous is not None else None
            if sel is not None and sel.any():
                # the engine's fill is filtered along the flow like carried pixels: it invents each frame anew,
                # and the previous frame's invention, moved along, is as good a guess (steadier, and averaged)
                engine = engine.copy()
                box_e = engine[y0:y1, x0:x1]
                mixed = (1.0 - ENGINE_SMOOTH) * box_e[sel].astype(np.float32) + ENGINE_SMOOTH * previous[2][sel]
                box_e[sel] = np.clip(np.rint(mixed.astype(np.float32)), 0, 255).astype(np.uint8)
            keep = np.zeros((H, W), bool)
            keep[y0:y1, x0:x1] = hole
            out = np.where(keep[..., None], engine, out)
            self.stats.keyframes += 1
            self.stats.pixels["engine"] += int(large.sum())
        return out


def _window_moves(buf: list[_Slot], i: int, width: int, height: int, limit: float) -> bool:
    """Does the camera move by more than ``limit`` px (at a corner) between frame ``i`` and any other frame of the
    window that shares its background reference?"""
    here = buf[i].placement
    return here is not None and any(s.placement is not None and s.placement.epoch == here.epoch
                                    and here.shift(width, height, s.placement) > limit for s in buf)


def _bbox(hole: np.ndarray, margin: int, width: int, height: int) -> tuple[int, int, int, int]:
    ys = np.flatnonzero(hole.any(axis=1))
    xs = np.flatnonzero(hole.any(axis=0))
    return (max(0, int(xs[0]) - margin), max(0, int(ys[0]) - margin),
            min(width, int(xs[-1]) + 1 + margin), min(height, int(ys[-1]) + 1 + margin))


def _split(missing: np.ndarray, speck_area: int) -> tuple[np.ndarray, np.ndarray]:
    """(specks, large): connected parts of ``missing`` below / at or above ``speck_area`` pixels."""
    if not missing.any():
        return missing, missing
    n, labels, stats, _ = cv2.connectedComponentsWithStats(missing.astype(np.uint8), connectivity=8)
    small = np.zeros(n, bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] < speck_area
    specks = small[labels] & missing
    return specks, missing & ~specks
