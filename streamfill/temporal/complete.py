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

Where it lives: this module holds the streaming window (``TemporalCompletion``: frames in, flows between
neighbours, frames answered in order); filling one frame's hole in phases, with the weights and switches the
phases read, is in ``hole.py``; the sources of real pixels (copies, flow chains, the previous output) are in
``sources.py``, the checks against the ring around the hole (arbitration, layer check, probe, misfits, seam) in
``ring.py``, the layered copies in ``layers.py``, the background memory in ``background.py`` and the flow
helpers in ``flow.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from streamfill.config import TemporalConfig
from streamfill.errors import MaskError
from streamfill.temporal import hole as hole_fill
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
)
from streamfill.temporal.hole import HoleFill
from streamfill.temporal.ring import RingChecks
from streamfill.temporal.sources import Sources
from streamfill.types import Frame

Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""fill(image H x W x 3 uint8 RGB, mask H x W uint8 255 = hole) -> H x W x 3 uint8, unchanged outside."""

FAST_WINDOW = 10         # frames on each side when ``window`` is 0 (by mode)
QUALITY_WINDOW = 15
FLOW_BAND = 6            # flow-grid px around the hole whose flow is not trusted (measured: there it was ~2 px off)
CUT_SHARE = 0.6          # a frame pair whose matches are this inconsistent is a cut: chains stop there
NEAREST_SPREAD = 1.0     # quality: border spread (px per frame) above which the filters read the previous output
                         # along the flow of the nearest border pixel (nearest_flow), not the smooth blend (0 = never)
DRIFT_TOL = 1.5          # fast: px of border spread per frame pair taken as noise (parallax edges, bad matches)


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


class TemporalCompletion(HoleFill, Sources, RingChecks):
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
        if not self.quality and hole_fill.DRIFT_MAX > 0:
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
