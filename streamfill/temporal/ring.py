"""Checks against the ring around the hole: the known pixels just outside it, where the frame is the truth.

Propagated candidates are gathered for the ring too (``sources.py``), so every source can be judged there before
it is trusted inside the hole (see ``hole.py`` for how one frame's hole is filled):

- ``ring_error``: how far a source's candidates are from the frame on the ring, carried into the hole (the
  arbitration between copies and flow, ``hole.ARBITRATE``);
- ``RingChecks._check_layers``: a layer's copies give way where they predict the ring worse than the flow
  (``hole.LAYER_SWITCH``);
- ``RingChecks._probe``: the held-out probe (``quality``, ``hole.PROBE``): propagation against the engine
  on the ring, hidden from both;
- ``misfits``: candidates along the hole's inner edge that do not continue the frame outside;
- ``background_agreement``: how far the frame around the hole looks like the background memory;
- ``light_fit``: a candidate brought to the frame's light (gain and planar offset per channel, fitted on the
  ring): the background memory's colours, and propagation's in the probe;
- ``RingChecks._seam``: the propagated colours matched to the frame (offset or membrane);
- ``whole_parts``: the connected parts of the hole mostly given away, which then go to the engine whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from streamfill.config import TemporalConfig
from streamfill.temporal.flow import smooth_fill

if TYPE_CHECKING:
    from streamfill.temporal.complete import Fill, TemporalStats

FOREGROUND_LEVEL = 30.0  # 8-bit levels a ring pixel may differ from the background memory and still agree
RING_MIN = 16            # ring pixels needed to compare sources
FIT_BAND = 2             # px of the hole's inner edge where candidates are checked against the frame outside
FIT_LEVEL = 25.0         # 8-bit levels a candidate may differ from the frame's continuation (plus texture) and fit
FIT_RATIO = 2.0          # ... plus this many times the ring's local variation
SEAM_OUTLIER = 30.0      # 8-bit levels a ring difference may stray from the ring's median and still count (quality)
SEAM_CLIP = 40.0         # largest colour correction (8-bit levels) the seam may apply
PROBE_GAP = 4            # px beyond the ring also hidden from the engine in the probe (its paste feathers there)
PROBE_RATIO = 0.6        # propagated pixels give way where their ring error exceeds this share of the engine's
PROBE_LIGHT = True       # the probe compares after a change of light fitted on the ring (light_fit)
LIGHT_FIT_MAX = 8.0      # light_fit: median 8-bit levels the fitted candidate may still miss the ring by (else None)
GAIN_MIN = 0.67          # light_fit: the smallest gain (and 1 / it the largest) a change of light may have
PROBE_ALL = 0.5          # share of a hole part given away above which all of it goes to the engine


class RingChecks:
    """The ring checks that need the completer's state: a mixin of ``complete.TemporalCompletion``, whose
    ``fill`` (the engine), ``config``, ``quality`` and ``stats`` they use."""

    fill: Fill
    config: TemporalConfig
    quality: bool
    stats: TemporalStats

    def _check_layers(self, frame, hole, region, layered, layer_of, layer_w, acc, flow_w, switch
                      ) -> np.ndarray:
        """``layer_w`` with the pixels of each layer whose ring error exceeds ``switch``
        (``hole.LAYER_SWITCH``) x the flow's (on the ring pixels both answer) set to 0. ``acc``/``flow_w``:
        the flow candidates gathered so far."""
        ring = region & ~hole & (flow_w > 0)
        truth = frame.astype(np.float32)
        flow = acc / np.maximum(flow_w, 1e-6)[..., None]
        out = layer_w.copy()
        for layer in np.unique(layer_of[layer_of >= 0]):
            mine = layer_of == layer
            both = mine & ring
            if both.sum() < RING_MIN:
                continue
            e_layer = float(np.abs(layered[both] - truth[both]).mean())
            e_flow = float(np.abs(flow[both] - truth[both]).mean())
            if e_layer > switch * e_flow:
                out[mine] = 0.0
                refused = self.stats.pixels.get("layer_refused", 0)
                self.stats.pixels["layer_refused"] = refused + int((mine & hole).sum())
        return out

    def _probe(self, image, box, hole, region, have, cand, aged=None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(misfit, given_away)``, h x w bool: the parts of the hole where propagation is not trusted, by
        held-out evidence, and the connected parts of the hole given away whole (None when none is). The ring of
        known pixels around the hole is treated as missing: propagation's prediction of it (``cand`` there, from
        other frames: the same flow, memory and copies as inside the hole) and the engine's (``fill`` run with
        the ring, a gap beyond it and the hole all hidden, so it sees none of them) are compared with the
        frame's real ring pixels; each error is carried smoothly into the hole, and where propagation's exceeds
        ``PROBE_RATIO`` x the engine's (non-rigid motion, blur, a wrong flow), the engine fills instead."""
        x0, y0, x1, y1 = box
        ring = region & ~hole & have
        if ring.sum() < RING_MIN:
            return np.zeros(hole.shape, bool), None
        H, W = image.shape[:2]
        full = np.zeros((H, W), np.uint8)
        full[y0:y1, x0:x1] = region
        hidden = cv2.dilate(full, disc(PROBE_GAP))
        engine = self.fill(image, hidden * np.uint8(255))[y0:y1, x0:x1].astype(np.float32)
        frame = image[y0:y1, x0:x1].astype(np.float32)
        e_eng = smooth_fill(np.where(ring, np.abs(engine - frame).mean(axis=2), 0.0).astype(np.float32), ring)
        if aged is not None:
            colour, found, led = aged
            ring_aged = ring & (found | ~led)    # flow-led ring pixels with no candidate that old say nothing
            if ring_aged.sum() >= RING_MIN:
                cand = np.where(found[..., None], colour, cand)
                ring = ring_aged
        e_prop = ring_error(frame, cand, ring, light=PROBE_LIGHT)
        self.stats.probes += 1
        misfit = hole & have & (e_prop > PROBE_RATIO * e_eng)
        given_away = None
        if misfit.any():
            # a part of the hole mostly given away goes to the engine whole: the rest of it came along the same
            # flow, and the engine fills better without that context
            given_away = whole_parts(hole, misfit, hole & have, PROBE_ALL)
            misfit |= given_away & have
        return misfit, given_away

    def _seam(self, frame, hole, region, known, real, cand) -> np.ndarray:
        """Match the propagated colours to the frame: differences measured on the ring (outside the hole,
        where the frame is the truth) are added inside the hole."""
        ring = region & ~hole & real
        if self.config.seam <= 0 or not ring.any():
            return cand
        diff = np.clip(frame.astype(np.float32) - cand, -SEAM_CLIP, SEAM_CLIP)
        if self.quality:
            # ring pixels far from the ring's typical difference show something else than what was carried
            # in (a person at the border): they say nothing about lighting and must not bend the membrane
            typical = np.median(diff[ring], axis=0)
            ring = ring & (np.abs(diff - typical).max(axis=2) <= SEAM_OUTLIER)
            offset = smooth_fill(np.where(ring[..., None], diff, 0), ring)
        else:
            offset = np.broadcast_to(np.median(diff[ring], axis=0), cand.shape)
        return np.where((hole & known)[..., None], cand + offset, cand)


def ring_error(frame: np.ndarray, cand: np.ndarray, ring: np.ndarray, light: bool = False) -> np.ndarray | None:
    """How far ``cand`` is from the frame on the ``ring`` pixels (mean absolute difference over RGB, after
    the ring's median offset, which the seam takes out anyway), carried smoothly into the hole: h x w float32,
    or None when the ring has too few pixels to tell. ``light``: after the change of light fitted on the ring
    (``light_fit``: a gain and a planar offset per channel) instead."""
    if ring.sum() < RING_MIN:
        return None
    d = frame - cand
    fitted = light_fit(frame, cand, ring) if light else None
    if fitted is not None:
        d = frame - fitted
    else:
        d -= np.median(d[ring], axis=0)
    err = np.abs(d).mean(axis=2)
    return smooth_fill(np.where(ring, err, 0.0).astype(np.float32), ring)


def light_fit(frame, cand, ring) -> np.ndarray | None:
    """``cand`` (h x w x 3 float32) as lit like the frame: per channel a gain (``GAIN_MIN`` .. 1 / ``GAIN_MIN``)
    and an offset that may vary linearly across the box, fitted by least squares on the ``ring`` pixels (where
    the frame is the truth) from a robust start (medians), twice without the pixels that stray far (something
    else standing there). A change of light between frames (a cloud, a lamp, a camera's exposure) is taken out;
    what is misplaced or deformed is not (four numbers per channel cannot bend texture). None when even the
    fitted candidate misses the ring by more than ``LIGHT_FIT_MAX`` levels (median over the ring, mean over the
    channels): it does not show the ring, lit otherwise or not (something else stands there); None too when the
    ring has fewer than ``RING_MIN`` pixels."""
    ys, xs = np.nonzero(ring)
    if xs.size < RING_MIN:
        return None
    n = float(max(ring.shape))
    basis = np.stack([np.ones(xs.size), xs / n, ys / n], axis=1)
    yy, xx = np.mgrid[0:ring.shape[0], 0:ring.shape[1]].astype(np.float32) / n
    out = np.empty_like(cand)
    resid = []
    for c in range(3):
        x, y = cand[ys, xs, c].astype(np.float64), frame[ys, xs, c].astype(np.float64)
        # a robust start (medians: up to half the ring may show something else), then least squares on the
        # pixels it fits, twice
        bright = x > 16
        gain = float(np.median(y[bright] / x[bright])) if bright.sum() >= RING_MIN else 1.0
        gain = float(np.clip(gain, GAIN_MIN, 1.0 / GAIN_MIN))
        off = np.array([np.median(y - gain * x), 0.0, 0.0])
        for _ in range(2):
            r = np.abs(y - gain * x - basis @ off)
            keep = r <= max(5.0 * float(np.median(r)), 2.0)
            if keep.sum() < RING_MIN:
                break
            coef, *_ = np.linalg.lstsq(np.column_stack([x, basis])[keep], y[keep], rcond=None)
            gain = float(np.clip(coef[0], GAIN_MIN, 1.0 / GAIN_MIN))
            off, *_ = np.linalg.lstsq(basis[keep], y[keep] - gain * x[keep], rcond=None)
        out[..., c] = gain * cand[..., c] + off[0] + off[1] * xx + off[2] * yy
        resid.append(float(np.median(np.abs(y - gain * x - basis @ off))))
    if np.mean(resid) > LIGHT_FIT_MAX:
        return None
    return out


def whole_parts(hole: np.ndarray, lost: np.ndarray, among: np.ndarray, share: float) -> np.ndarray:
    """h x w bool: the connected parts of ``hole`` in which ``lost`` covers more than ``share`` of ``among``."""
    n, labels = cv2.connectedComponents(hole.astype(np.uint8), connectivity=8)
    count = np.bincount(labels[among & hole], minlength=n)
    whole = np.bincount(labels[lost & hole], minlength=n) > share * np.maximum(count, 1)
    whole[0] = False
    return whole[labels] & hole


def misfits(frame, hole, region, have, cand, cheap: bool = False) -> np.ndarray:
    """h x w bool: the parts of the hole whose real-pixel candidates do not fit the frame around the hole
    (another frame showed something else there: the background where the subject now stands, a passer-by,
    the other side of a scene cut). Along the hole's inner edge the candidates are compared with the frame
    just outside (its smooth continuation into the hole); a difference well above the frame's own texture
    there (``FIT_LEVEL`` + ``FIT_RATIO`` x the ring's local variation) marks the part of the hole it belongs
    to, which then goes to the engine instead."""
    box = frame.astype(np.float32)
    outside = ~hole
    if not outside.any():
        return np.zeros(hole.shape, bool)
    inner = cv2.erode(hole.astype(np.uint8), disc(FIT_BAND), borderType=cv2.BORDER_CONSTANT,
                      borderValue=1) > 0
    edge = hole & ~inner & have
    ring = region & ~hole
    if edge.sum() < RING_MIN or ring.sum() < RING_MIN:
        return np.zeros(hole.shape, bool)
    if cheap:
        # fast: the continuation and the ring's texture as local averages of the pixels outside (box
        # filters, within 3 px: the band is 2 px deep) instead of push-pull fills (measured 8 % of fps)
        known = box * outside[..., None]
        w = cv2.blur(outside.astype(np.float32), (7, 7))
        guess = cv2.blur(known, (7, 7)) / np.maximum(w, 1e-6)[..., None]
        # the ring's texture against a local average of the pixels outside only: a plain blur mixes in what the
        # hole shows (the occluder), and its colours read as texture that raised the threshold past any misfit
        w5 = cv2.blur(outside.astype(np.float32), (5, 5))
        near = cv2.blur(known, (5, 5)) / np.maximum(w5, 1e-6)[..., None]
        texture = np.abs(box - near).mean(axis=2) * ring
        t_in = cv2.blur(texture, (9, 9)) / np.maximum(cv2.blur(ring.astype(np.float32), (9, 9)), 1e-6)
    else:
        guess = smooth_fill(box, outside)
        texture = np.abs(box - cv2.blur(guess, (5, 5))).mean(axis=2)
        t_in = smooth_fill(np.where(ring, texture, 0.0).astype(np.float32), ring)
    d = np.abs(cand - guess).mean(axis=2)
    off = edge & (d > FIT_LEVEL + FIT_RATIO * t_in)
    if not off.any():
        return off
    # the share of each part's edge that misfits, carried into the hole
    share = smooth_fill(off.astype(np.float32), edge)
    return hole & have & (share > 0.5)


def background_agreement(frame, hole, region, colour, count) -> np.ndarray:
    """h x w in [0, 1]: how far the frame around the hole looks like the background memory, carried
    smoothly into the hole. Where something else (a person, an animal) stands at the hole's border, the
    memory's background is probably not what is behind the occluder either: flow decides there."""
    ring = region & ~hole & (count > 0)
    if not ring.any():
        return np.ones(hole.shape, np.float32)
    dev = np.abs(frame.astype(np.float32) - colour).max(axis=2) > FOREGROUND_LEVEL
    fg = smooth_fill(np.where(ring, dev, 0).astype(np.float32), ring)
    return np.clip(1.0 - 2.0 * fg, 0.0, 1.0)


def disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
