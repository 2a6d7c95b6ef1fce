"""Temporal completion: fill each frame's hole with real pixels that other frames show, and use the engine
only for what no frame has seen, once, on a keyframe.

For the frame being filled (the *target*), every hole pixel (and a ring of ``seam`` pixels around the hole)
gathers candidates:

1. **Bracket** (fixed or shaking camera, not ``live``): the nearest frame before and the nearest frame after
   (in the window, aligned by the background memory's placements) where the pixel is not hidden. If both
   show the same colour, the place did not change while it was hidden: that colour wins, whatever it is
   (background, or someone standing still whom the background memory rightly leaves out).
   **Layered copies** (``LAYERED``, ``layers.py``; any camera, not ``live``): the same test along each motion
   found around the hole (a subject moving against a panning background): a pixel seen alike in the nearest
   frame before and after along one layer's motion takes that colour; a layer whose copies predict the
   ring around the hole worse than the flow does (``LAYER_SWITCH``) gives way.
2. **Background memory** (``background``): for a fixed or shaking camera, the per-pixel model of the
   unoccluded background (``BackgroundMemory``) offers what the camera saw there before, trusted by its
   number of observations, its support (do its samples agree?) and, once the camera has moved, by how far
   the frame around the hole agrees with it. Its colours are brought to the frame's present light first
   (``MEMORY_LIGHT``: a gain and a planar offset per channel fitted on the ring, ``ring.light_fit``).
3. **Real pixels along the motion**: optical flow (DIS, on grey frames scaled by ``flow_scale``) between
   neighbouring frames, completed inside the holes by smooth interpolation from the hole border, is chained
   forward and backward over the window; each step is checked by forward-backward consistency. A chain
   that lands on a pixel outside that frame's hole offers its colour, weighted by closeness in time and by
   the chain's consistency. ``fast`` skips pixels the memory knows well. In ``quality``, once the camera has
   moved (``MOVING_PX`` from the memory's reference), flow candidates that disagree with the memory overrule
   it (a rigid memory of a moving scene is a guess); on a fixed camera the memory stays in charge, since there
   a disagreeing flow candidate is far more often a passer-by carried in along a wrong flow.
4. **The previous output**: pixels nothing real covers are carried over from the already completed previous
   frame along the flow, so what the engine invented once moves with the scene instead of re-rolling.
5. **The engine** (the injected ``fill``) for the rest: small specks are interpolated from around them;
   larger never-seen regions are filled by ``fill`` on this frame (a keyframe for them), with the propagated
   pixels already in place as context. Later frames receive them through step 4.

Arbitration by evidence (``ARBITRATE``): on a fixed or shaking camera the copies (bracket, nearest side) and
real pixels along the flow are both gathered, and per part of the hole the one whose candidates predict the ring
around the hole better wins (``ring.ring_error``); then candidates whose colours along the hole's inner edge do
not continue the frame outside (``ring.misfits``: the background where a subject now stands, the other side of a
cut) are dropped, and that part goes to the engine as never seen. Where before and after differ on a still
camera, the nearer of the two answers (not the memory's median, a blur of moving texture); in ``fast`` still means
around this frame (``NEAR_MOVING_PX`` over the window), not only since the memory's reference, which the first
frames of a pan are still close to.

Drift guard (``fast``, ``DRIFT_MAX``): the flow inside a hole is interpolated from its border; where the border
moves in several ways (``flow.border_spread``: the residual of an affine fit to the flow around the hole), that
interpolation is a guess, and a chain that drifts too far through such guesses is refused; what it would have
brought goes to the engine (not to the previous output, which comes along the same flow), the whole part when
most of it is refused.

Held-out probe (``quality``, ``PROBE``): the ring of known pixels around the hole is treated as missing and
predicted twice, by propagation (the candidates gathered there from other frames, as inside the hole) and by the
engine (run with the ring, a gap beyond it and the hole hidden); both are compared with the real ring pixels
(``ring.RingChecks._probe``; propagation after the change of light fitted on the ring, ``ring.PROBE_LIGHT``).
Where propagation's error, carried into the hole, exceeds ``ring.PROBE_RATIO`` x
the engine's (a subject that deforms or moves against its border, blur, a wrong flow), that part of the hole
goes to the engine (all of a connected part once most of it does). The comparison is age-matched
(``PROBE_AGE``): the hole's real pixels come from frames further away than the ring's (the occluder hid them
longer), and blur, deformation and flow drift grow with that distance, so the ring's flow candidates are
gathered again from frames at least as far as the median distance of the hole part's own
(``sources.Sources._aged_ring``). A part given away whole takes nothing carried from the previous output either
(``PROBE_CARRY``: it comes along the same flow). In ``quality`` the engine's fill is then averaged with the
previous output along the flow (``ENGINE_SMOOTH``), as carried pixels are. It costs one extra engine run per
frame with a hole, so ``fast`` skips it. Where the hole's border moves in several ways (``NEAREST_SPREAD``: a
subject crossing a panning background), both averages read the previous output along the motion of the nearest
border pixel (``flow.nearest_flow``), not along the smooth blend of the motions, which misplaces it on both sides.

The propagated colours are matched to the frame around the hole (seam): ``fast`` adds the median difference
measured on the ring; ``quality`` interpolates the ring's differences smoothly across the hole (a membrane,
as in Poisson-style cloning), which also absorbs lighting changes; ring pixels whose difference strays far
from the ring's median (someone standing at the border) are left out of it. The paste is feathered only inside
the safety margin (the hole is the user's mask grown by ``margin``; ``masks.paste_alpha``), so the pixels the
user marked never reach the output; pixels outside the hole are returned exactly as they came in. The engine
is handed the frame with every hole pixel already replaced (propagated, or interpolated from around), and the
completer blanks its hole before the engine sees it.

Modes: ``fast`` (DIS fast preset, chains stop once every pixel has a candidate, offset seam) and ``quality``
(DIS medium, candidates from the whole window blended, membrane seam).

Streaming and memory: frames are answered in order, one per input. At most ``window`` frames of look-ahead
(none when ``live``) and ``max(1, window)`` frames of look-back are held, so at most ``2 * window + 2``
frames (each: the picture, its output, its hole and flow fields at ``flow_scale``) plus the background model
(18 bytes per full-resolution pixel with 5 samples), whatever the clip length.

Where it lives: this module holds the streaming window and the orchestration (``TemporalCompletion``, with
the weights and switches it uses); the sources of real pixels (copies, flow chains, the previous output) are
in ``sources.py``, the checks against the ring around the hole (arbitration, layer check, probe, misfits,
seam) in ``ring.py``, the layered copies in ``layers.py``, the background memory in ``background.py`` and
the flow helpers in ``flow.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from streamfill.config import TemporalConfig
from streamfill.errors import MaskError
from streamfill.masks import paste_alpha
from streamfill.temporal.background import BackgroundMemory, Placement
from streamfill.temporal.flow import (
    Flow,
    border_spread,
    complete_flow,
    fb_error,
    grey_small,
    grid,
    nearest_flow,
    sample,
    shrink_hole,
    smooth_fill,
)
from streamfill.temporal.layers import layered_copies
from streamfill.temporal.ring import (
    RingChecks,
    background_agreement,
    disc,
    light_fit,
    misfits,
    ring_error,
    whole_parts,
)
from streamfill.temporal.sources import Sources
from streamfill.types import Frame

Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""fill(image H x W x 3 uint8 RGB, mask H x W uint8 255 = hole) -> H x W x 3 uint8, unchanged outside."""

FAST_WINDOW = 10         # frames on each side when ``window`` is 0 (by mode)
QUALITY_WINDOW = 15
FLOW_BAND = 6            # flow-grid px around the hole whose flow is not trusted (measured: there it was ~2 px off)
CUT_SHARE = 0.6          # a frame pair whose matches are this inconsistent is a cut: chains stop there
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
NEAREST_SPREAD = 1.0     # quality: border spread (px per frame) above which the filters read the previous output
                         # along the flow of the nearest border pixel (nearest_flow), not the smooth blend (0 = never)
PROBE = True             # quality: test propagation against the engine on held-out known pixels around the hole
PROBE_AGE = True         # quality: the probe predicts the ring from frames as far away as the hole's sources
PROBE_AGE_COPIES = True  # quality: ... and the ring's copies (and flow candidates that replaced them) likewise
PROBE_CARRY = True       # quality: a hole part the probe gave away whole takes nothing carried from the previous output
DRIFT_MAX = 1.5          # fast: px a flow chain may drift through flow completed across holes (0 = off)
DRIFT_TOL = 1.5          # fast: px of border spread per frame pair taken as noise (parallax edges, bad matches)
DRIFT_MEMORY = True      # fast, moving camera: a part the guard gives away takes the memory's guesses with it
DRIFT_CARRY = True       # fast: ... and what the guard refused is not carried from the previous output either
DRIFT_ALL = 0.5          # fast: share of a hole part refused by the guard above which all of it goes to the engine
LAYERED = True           # copies seen alike before and after the hole along one of the motions around it (layers.py)
LAYER_TRUST = 16.0       # their weight (as the bracket's)
LAYER_SWITCH = 1.0       # a layer's copies give way where their ring error exceeds this share of the flow's (0 = off)


@dataclass
class _Slot:
    frame: Frame
    hole: np.ndarray                      # H x W bool
    small: np.ndarray                     # h x w uint8 grey
    hole_small: np.ndarray                # h x w bool (dilated by FLOW_BAND pixels)
    placement: Placement | None = None
    unsafe: np.ndarray | None = None      # H x W uint8 hole, dilated by one pixel without a margin (None: empty)
    fwd: np.ndarray | None = None         # completed flow to the next frame (h x w x 2)
    err_fwd: np.ndarray | None = None     # its forward-backward error (h x w)
    bwd: np.ndarray | None = None         # completed flow to the previous frame
    err_bwd: np.ndarray | None = None
    bwd_near: np.ndarray | None = None    # quality: flow to the previous frame, completed from the nearest border
    cut_after: bool = False
    drift_fwd: float = 0.0                # fast: how far (px) the flow completed in the hole may be off, per step
    drift_bwd: float = 0.0
    paired: bool = False                  # flows to the next frame computed
    out: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return self.unsafe is None


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


@dataclass
class TemporalStats:
    """Counters: frames answered, frames whose hole was filled, engine calls (keyframes), and how many hole
    pixels came from each source."""

    frames: int = 0
    frames_filled: int = 0
    keyframes: int = 0
    background_resets: int = 0
    probes: int = 0
    pixels: dict[str, int] = field(default_factory=lambda: {
        "bracket": 0, "flow": 0, "background": 0, "previous": 0, "speck": 0, "engine": 0})


class TemporalCompletion(Sources, RingChecks):
    """The ``Completion`` protocol with a bounded window (see the module docstring).

    ``fill``: the per-frame filler for never-seen regions (e.g. ``pipeline.complete.Completer.fill``).
    ``config``: ``TemporalConfig`` (``mode`` must be fast or quality). ``feather``: pixels over which the
    paste rises to full strength inside the hole (as ``[mask] feather``), never more than ``margin``: how far
    the masks were grown beyond what the user marked (``[mask] dilate``; 0 = no feather).
    """

    def __init__(self, fill: Fill, config: TemporalConfig | None = None, *, feather: int = 3,
                 margin: int = 0) -> None:
        self.fill = fill
        self.config = config or TemporalConfig()
        if self.config.mode == "off":
            self.config = dataclasses.replace(self.config, mode="fast")
        self.quality = self.config.mode == "quality"
        self.margin = max(0, int(margin))
        self.feather = max(0, min(int(feather), self.margin))  # the feather lives only in the margin
        window = self.config.window or (QUALITY_WINDOW if self.quality else FAST_WINDOW)
        self.ahead = 0 if self.config.live else window
        self.back = max(1, window)
        self.tau = 3.0 if self.quality else 1.5
        self.stats = TemporalStats()
        self._flow: Flow | None = None
        self._memory: BackgroundMemory | None = None
        self.max_held = 0

    @property
    def frames_filled(self) -> int:
        return self.stats.frames_filled

    # -- streaming ------------------------------------------------------------------------------------------

    def stream(self, pairs: Iterable[tuple[Frame, np.ndarray]]) -> Iterator[Frame]:
        """One filled frame per (frame, mask) pair, in order, with the input pts/time_base/index. Holds at
        most ``2 * window + 2`` frames; a change of frame size starts a new window (and background)."""
        self._flow = Flow("medium" if self.quality else "fast")
        # quality lets the flow overrule the memory on a moving camera, and does better with a memory that holds
        # only steady observations there too (measured: bigbuckbunny +0.7 dB); fast relies on the memory alone
        # and needs it fed (+0.9 dB)
        self._memory = None if not self.config.background else BackgroundMemory(
            self.config.background_samples, self.config.background_stride, self.config.shake,
            gate_moving=self.quality)
        buf: list[_Slot] = []
        base = 0        # stream position of buf[0]
        done = 0        # next stream position to answer
        for frame, mask in pairs:
            if buf and buf[-1].frame.image.shape != frame.image.shape:
                while done < base + len(buf):
                    yield self._answer(buf, done - base)
                    done += 1
                base += len(buf)
                buf = []
                if self._memory is not None:
                    self._memory.forget()
            buf.append(self._ingest(frame, mask))
            self.max_held = max(self.max_held, len(buf))
            while done + self.ahead < base + len(buf):
                yield self._answer(buf, done - base)
                done += 1
                drop = (done - self.back) - base
                if drop > 0:
                    del buf[:drop]
                    base += drop
        while done < base + len(buf):
            yield self._answer(buf, done - base)
            done += 1
        if self._memory is not None:
            self.stats.background_resets = self._memory.resets

    def _ingest(self, frame: Frame, mask: np.ndarray) -> _Slot:
        image = frame.image
        if mask is None or mask.shape[:2] != image.shape[:2]:
            got = None if mask is None else tuple(mask.shape)
            raise MaskError(f"frame {frame.index}: mask size {got} does not match the frame "
                            f"({image.shape[0]} x {image.shape[1]})")
        hole = (mask.max(axis=2) if mask.ndim == 3 else mask) > 0
        small = grey_small(image, self.config.flow_scale)
        hole_small = shrink_hole(hole, small.shape)
        has_hole = bool(hole.any())
        if has_hole:
            # flow near the occluder is dragged along with it (DIS patches straddle the edge, and the pyramid
            # smooths further): it is not trusted within FLOW_BAND pixels of the hole, and completed from beyond
            band = 2 * FLOW_BAND + 1
            hole_small = cv2.dilate(hole_small.astype(np.uint8), np.ones((band, band), np.uint8)) > 0
        slot = _Slot(frame=frame, hole=hole, small=small, hole_small=hole_small)
        if has_hole:
            # other frames are read right up to the edge of their hole: it holds the safety margin already (an
            # object's soft edge); without one, a pixel is kept off it. The pixels just outside a hole are where
            # it has just moved away, the nearest sight of what it hid (development corpus: +0.1 to +0.8 dB on
            # still cameras, where the next frame's sight of a moving texture is the best copy)
            slot.unsafe = hole.astype(np.uint8) if self.margin > 0 else \
                cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8))
        if self._memory is not None:
            slot.placement = self._memory.observe(image, hole)
        return slot

    def _pair(self, a: _Slot, b: _Slot) -> None:
        """Flows between consecutive frames a -> b and b -> a, completed in the holes (computed once)."""
        if a.paired:
            return
        f = self._flow(a.small, b.small)
        g = self._flow(b.small, a.small)
        err_f = fb_error(f, g)
        err_g = fb_error(g, f)
        thr = self.config.fb_threshold
        bad_f = a.hole_small | (err_f > thr) | self._lands_in(f, b.hole_small)
        bad_g = b.hole_small | (err_g > thr) | self._lands_in(g, a.hole_small)
        outside = ~a.hole_small
        a.cut_after = bool(outside.any()) and float((err_f[outside] > thr).mean()) > CUT_SHARE
        if not self.quality and DRIFT_MAX > 0:
            scale = a.hole.shape[1] / a.small.shape[1]
            a.drift_fwd = max(0.0, border_spread(f, err_f, a.hole_small, thr) * scale - DRIFT_TOL)
            b.drift_bwd = max(0.0, border_spread(g, err_g, b.hole_small, thr) * scale - DRIFT_TOL)
        fc = complete_flow(f, bad_f)
        gc = complete_flow(g, bad_g)
        a.fwd, b.bwd = fc, gc
        if self.quality and NEAREST_SPREAD > 0:
            # where the border moves in several ways, the smooth flow blends them inside the hole, and the
            # previous output read along it (the quality filters) is misplaced on both sides
            scale = a.hole.shape[1] / a.small.shape[1]
            if border_spread(g, err_g, b.hole_small, thr) * scale > NEAREST_SPREAD:
                b.bwd_near = nearest_flow(g, bad_g)
        a.err_fwd, b.err_bwd = fb_error(fc, gc), fb_error(gc, fc)
        a.paired = True

    @staticmethod
    def _lands_in(flow: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if not hole.any():
            return np.zeros(hole.shape, bool)
        xs, ys = grid(*hole.shape)
        return sample(hole, xs + flow[..., 0], ys + flow[..., 1], nearest=True) > 0

    # -- one frame ------------------------------------------------------------------------------------------

    def _answer(self, buf: list[_Slot], i: int) -> Frame:
        slot = buf[i]
        self.stats.frames += 1
        if slot.empty:
            slot.out = slot.frame.image
            return slot.frame
        out = self._complete(buf, i)
        slot.out = out
        self.stats.frames_filled += 1
        return slot.frame.with_image(out)

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
