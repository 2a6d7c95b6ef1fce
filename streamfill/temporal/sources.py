"""The sources of real pixels for a hole: what other frames (and the previous output) show there.

Methods of ``complete.TemporalCompletion`` (a mixin; see ``hole.py`` for how one frame's hole is filled
and how the sources are weighed):

- ``_bracket``: fixed or shaking camera: the nearest frame before and after (aligned by the background
  memory's placements) where the pixel is not hidden; alike on both sides, or the nearer side;
- ``_gather_flow``: real pixels where forward and backward flow chains land outside the holes, with the drift
  guard (``fast``: chains refused once they drift too far through flow interpolated across a hole);
- ``_from_previous``: the previous output read along the backward flow;
- ``_aged_ring``: for the probe (``ring.RingChecks._probe``), the ring's candidates gathered again from frames
  as far away as the hole's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from streamfill.config import TemporalConfig
from streamfill.temporal.flow import sample, sample_points, smooth_fill

BRACKET_LEVEL = 20.0     # 8-bit levels within which before and after count as the same
# px two views of the camera differ by beyond which a copy between them is read bicubic: a shaking camera's copies
# land between pixels, and bilinear reads blur them (development ``shake`` up to +1.8 dB); below it a fit of a pixel
# or two may be moving texture read as camera motion, and the bilinear blur hides part of its error (bicubic there:
# ``small_hole`` -0.5, ``water`` -0.2 dB)
SHARP_PX = 1.5
PROBE_AGE_QUANTILE = 0.5  # which distance of a hole part's flow candidates the ring is matched to
# the ring's copies (``hole.PROBE_AGE_COPIES``):
PROBE_AGE_ONE_SIDED = True  # ... only copies found on one side (no frame before and after both showed them)
PROBE_AGE_COPY_SHARE = 0.5  # ... from frames at least this share of the hole part's copies' distance


class Sources:
    """The sources of real pixels: a mixin of ``complete.TemporalCompletion``, whose ``config``, ``quality``,
    ``tau`` (the time constant, in frames, of the flow candidates' weight) and ``_pair`` (the flows between two
    consecutive slots, computed once) they use."""

    config: TemporalConfig
    quality: bool
    tau: float
    _pair: Callable[[Any, Any], None]

    def _bracket(self, buf, i, xs, ys, memory=None, min_dist=None, dist_out=None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Fixed or shaking camera: per pixel of the box, the nearest frame before and the nearest frame after
        (within the window, same background epoch, aligned by the background placements) where the pixel is
        not in the hole. Where both exist and show the same colour (``BRACKET_LEVEL``), the place did not
        change while it was hidden: that colour is the answer, whatever it shows (background, or someone
        standing still). ``xs``, ``ys``: the box's pixel coordinates (h x w float32). ``min_dist`` (h x w,
        optional): per pixel, the nearest frame distance that may answer; ``dist_out`` (h x w float32, optional):
        receives the distance of the nearer side found. Returns (mean of before and after h x w x 3 float32,
        same h x w bool, the nearer side's colour, found on either side)."""
        slot = buf[i]
        H, W = slot.hole.shape
        shape = xs.shape
        x0, y0 = int(xs[0, 0]), int(ys[0, 0])
        x1, y1 = x0 + shape[1], y0 + shape[0]
        epoch = slot.placement.epoch
        inv = None if slot.placement.warp is None else cv2.invertAffineTransform(slot.placement.warp)
        sides = []
        raw = []
        for d in (-1, 1):
            colour = np.zeros((*shape, 3), np.float32)
            found = np.zeros(shape, bool)
            dist = np.full(shape, np.inf, np.float32)
            k = i + d
            while 0 <= k < len(buf) and not found.all():
                other = buf[k]
                k += d
                if other.placement is None or other.placement.epoch != epoch:
                    break
                if inv is None and other.placement.warp is None:
                    image = other.frame.image[y0:y1, x0:x1].astype(np.float32)
                    free = np.ones(shape, bool) if other.empty else other.unsafe[y0:y1, x0:x1] == 0
                else:
                    a = np.eye(3, dtype=np.float32)
                    if inv is not None:
                        a[:2] = inv
                    m = np.eye(3, dtype=np.float32)
                    if other.placement.warp is not None:
                        m[:2] = other.placement.warp
                    a = (m @ a)[:2]
                    px = a[0, 0] * xs + a[0, 1] * ys + a[0, 2]
                    py = a[1, 0] * xs + a[1, 1] * ys + a[1, 2]
                    sharp = slot.placement.shift(W, H, other.placement) > SHARP_PX
                    image = sample(other.frame.image, px, py, clamp=True, cubic=sharp).astype(np.float32)
                    inside = (px > -0.5) & (px < other.hole.shape[1] - 0.5) & (py > -0.5) & \
                        (py < other.hole.shape[0] - 0.5)
                    free = inside if other.empty else inside & (sample(other.unsafe, px, py, nearest=True,
                                                                       border=1) == 0)
                new = free & ~found
                if min_dist is not None:
                    new &= min_dist <= abs(k - d - i)
                colour[new] = image[new]
                dist[new] = abs(k - d - i)
                found |= new
            raw.append(dist.copy())
            if memory is not None:  # a side that disagrees with a trusted memory comes after one that agrees
                mem_colour, trusted = memory
                off = trusted & (np.abs(colour - mem_colour).max(axis=2) > BRACKET_LEVEL)
                dist[off & found] += 1000.0
            sides.append((colour, found, dist))
        (before, fb, db), (after, fa, da) = sides
        same = fb & fa & (np.abs(before - after).max(axis=2) <= BRACKET_LEVEL)
        nearest = np.where((db <= da)[..., None], before, after)
        if dist_out is not None:
            dist_out[...] = np.minimum(raw[0], raw[1])
            if PROBE_AGE_ONE_SIDED:
                # copies found on both sides are bracketed in time: they are left out of the age matching
                dist_out[fb & fa] = np.inf
        return 0.5 * (before + after), same, nearest, fb | fa

    def _gather_flow(self, buf, i, xs, ys, region, acc, wsum, age=None, min_dist=None, drifted=None,
                     drift_max: float = 0.0) -> np.ndarray:
        """Add real-pixel candidates found along forward and backward flow chains into acc/wsum (h x w
        boxes) for the ``region`` pixels; returns the per-pixel weight they contributed. Chains are kept as
        flat arrays of the pixels still followed (``fast`` stops following a pixel once it has a candidate).
        ``age`` (h x w, optional): receives the weighted distance in frames of each candidate (divide by the
        returned weight for the mean); ``min_dist`` (h x w, optional): per pixel, the nearest frame distance whose
        candidates count (the chains still pass through nearer frames); ``drifted`` (h x w bool, optional) and
        ``drift_max`` (px; the drift guard, ``hole.DRIFT_MAX``; 0 = off): chains are refused once they have
        drifted more than ``drift_max`` px through flow completed across holes whose border moves in several
        ways (``flow.border_spread``), and their pixels are marked here."""
        slot = buf[i]
        H, W = slot.hole.shape
        h, w = slot.small.shape
        sx, sy = w / W, h / H
        thr = self.config.fb_threshold
        total = np.zeros(region.shape, np.float32)
        flat_acc = acc.reshape(-1, 3)
        flat_w = wsum.reshape(-1)
        flat_total = total.reshape(-1)
        flat_age = None if age is None else age.reshape(-1)
        start = np.flatnonzero(region.reshape(-1))
        floor = None if min_dist is None else min_dist.reshape(-1)
        chains = [{"dir": d, "k": i, "idx": start, "x": xs.reshape(-1)[start].copy(),
                   "y": ys.reshape(-1)[start].copy(), "err": np.zeros(start.size, np.float32),
                   "drift": np.zeros(start.size, np.float32)} for d in (1, -1)]
        guard = drifted is not None and drift_max > 0
        flat_drifted = None if drifted is None else drifted.reshape(-1)
        for dist in range(1, max(i, len(buf) - 1 - i) + 1):
            for c in chains:
                if c["idx"].size == 0:
                    continue
                k, d = c["k"], c["dir"]
                nxt = k + d
                if nxt < 0 or nxt >= len(buf):
                    c["idx"] = c["idx"][:0]
                    continue
                a, b = (buf[k], buf[nxt]) if d > 0 else (buf[nxt], buf[k])
                self._pair(a, b)
                if a.cut_after:
                    c["idx"] = c["idx"][:0]
                    continue
                flow, err = (buf[k].fwd, buf[k].err_fwd) if d > 0 else (buf[k].bwd, buf[k].err_bwd)
                u = (c["x"] + 0.5) * sx - 0.5
                v = (c["y"] + 0.5) * sy - 0.5
                f = sample_points(flow, u, v)
                e = sample_points(err, u, v, border=1e3)
                if guard:
                    spread = buf[k].drift_fwd if d > 0 else buf[k].drift_bwd
                    if spread > 0 and not buf[k].empty:
                        inside = sample_points(buf[k].hole_small.view(np.uint8), u, v, nearest=True) > 0
                        c["drift"] += spread * inside
                c["x"] += f[:, 0] / sx
                c["y"] += f[:, 1] / sy
                c["err"] += e
                c["k"] = nxt
                keep = (c["x"] > -0.5) & (c["x"] < W - 0.5) & (c["y"] > -0.5) & (c["y"] < H - 0.5) & (e < thr)
                if not self.quality:
                    keep &= flat_total[c["idx"]] == 0
                if guard:
                    gone = c["drift"] > drift_max
                    if gone.any():
                        flat_drifted[c["idx"][gone]] = True
                    keep &= ~gone
                if not keep.all():
                    for key in ("idx", "x", "y", "err", "drift"):
                        c[key] = c[key][keep]
                if c["idx"].size == 0:
                    continue
                target = buf[nxt]
                real = np.ones(c["idx"].size, bool) if target.empty else \
                    sample_points(target.unsafe, c["x"], c["y"], nearest=True, border=1) == 0
                if floor is not None:
                    real &= floor[c["idx"]] <= dist
                if not real.any():
                    continue
                idx = c["idx"][real]
                wgt = (np.exp(-dist / self.tau) * np.exp(-c["err"][real] / (2 * thr))).astype(np.float32)
                colour = sample_points(target.frame.image, c["x"][real], c["y"][real]).astype(np.float32)
                flat_acc[idx] += colour * wgt[:, None]      # idx has no repeats within one chain
                flat_w[idx] += wgt
                flat_total[idx] += wgt
                if flat_age is not None:
                    flat_age[idx] += wgt * dist
        return total

    def _from_previous(self, buf, i, xs, ys) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The previous output read along the backward flow: (colour read at the nearest pixel h x w x 3
        float32, valid h x w bool, colour read bilinearly for the quality filter)."""
        slot, prev = buf[i], buf[i - 1]
        self._pair(prev, slot)
        H, W = slot.hole.shape
        h, w = slot.small.shape
        sx, sy = w / W, h / H
        u = (xs + 0.5) * sx - 0.5
        v = (ys + 0.5) * sy - 0.5
        f = sample(slot.bwd, u, v)
        px = xs + f[..., 0] / sx
        py = ys + f[..., 1] / sy
        ok = (px > -0.5) & (px < W - 0.5) & (py > -0.5) & (py < H - 0.5)
        # nearest for what is carried over unchanged: carrying a fill frame after frame must not blur it a little
        # more each time; bilinear for the quality filter, whose share of each past frame decays geometrically
        # (on a panning clip nearest reads cost the filter 0.3 dB of detail)
        carried = sample(prev.out, np.rint(px), np.rint(py), nearest=True).astype(np.float32)
        if slot.bwd_near is not None:  # the border moves in several ways: each side's own motion (nearest_flow)
            f = sample(slot.bwd_near, u, v)
            px, py = xs + f[..., 0] / sx, ys + f[..., 1] / sy
        filtered = sample(prev.out, px, py, clamp=True).astype(np.float32) if self.quality else carried
        return carried, ok, filtered

    def _aged_ring(self, buf, i, xs, ys, hole, region, flow_w, age, other_w, copies=None):
        """The ring's propagated colours as old as the hole's: where the hole's real pixels come along the flow,
        they come from frames further away (the occluder hid them longer) than the ring's, which are seen a
        frame or two away; a ring predicted from its own nearest frames says little about the hole (blur,
        deformation and flow drift grow with the distance). Per part of the hole, the median distance of its
        flow candidates is carried to the ring, and the ring's flow candidates are gathered again from frames
        at least that far. Returns (colour h x w x 3, found h x w bool, led: the ring pixels where the flow
        leads) or None.

        ``copies`` (``PROBE_AGE_COPIES``; fixed or shaking camera): (distance h x w of each copy, or of the flow
        candidates where they replaced the copies, copied h x w bool, switched h x w bool, memory, moving): the
        ring's copies are taken again from frames at least ``PROBE_AGE_COPY_SHARE`` x as far as the hole part's
        copies came from (a subject that deforms or bobs under the occluder: the copies of the hole came from
        frames where it stood elsewhere, those of the ring from the next frame), and the switched ring pixels'
        flow candidates likewise. With ``PROBE_AGE_ONE_SIDED`` only copies found on one side count (the
        distance is inf where frames before and after both showed the pixel)."""
        n, labels = cv2.connectedComponents(hole.astype(np.uint8), connectivity=8)

        def carried(src_age, got):
            part = np.zeros(hole.shape, np.float32)
            for k in range(1, n):
                sel = got & (labels == k)
                if sel.any():
                    part[sel] = np.quantile(src_age[sel], PROBE_AGE_QUANTILE)
            return smooth_fill(part, got)

        colour = np.zeros((*hole.shape, 3), np.float32)
        found = np.zeros(hole.shape, bool)
        led = np.zeros(hole.shape, bool)
        floor = np.full(hole.shape, np.inf, np.float32)
        got = hole & (flow_w > 0)
        if got.any():
            mean_age = np.zeros(hole.shape, np.float32)
            mean_age[got] = age[got] / flow_w[got]
            need = carried(mean_age, got)
            ring = region & ~hole & (flow_w > other_w)
            if (need[ring] > 1.0).any():
                floor[ring] = np.maximum(1.0, np.floor(need[ring]))
                led |= ring
        if copies is not None:
            copy_age, copied, switch, memory, moving = copies
            got = hole & copied & (copy_age > 0) & np.isfinite(copy_age)
            ring = region & ~hole & copied
            if got.any() and ring.any():
                need = carried(np.where(got, copy_age, 0.0).astype(np.float32), got)
                if (need[ring] > 1.0).any():
                    floor_c = np.where(ring, np.maximum(1.0, np.floor(PROBE_AGE_COPY_SHARE * need)),
                                       np.inf).astype(np.float32)
                    plain = ring & ~switch
                    if plain.any():
                        mean, same, near_colour, either = self._bracket(
                            buf, i, xs, ys, memory, min_dist=np.where(plain, floor_c, np.inf))
                        ok_same = plain & same
                        ok_near = plain & either & ~same & (not moving)
                        colour[ok_same] = mean[ok_same]
                        colour[ok_near] = near_colour[ok_near]
                        found |= ok_same | ok_near
                        led |= plain
                    floor[ring & switch] = floor_c[ring & switch]
                    led |= ring & switch
        flowed = led & np.isfinite(floor)
        if not led.any():
            return None
        if flowed.any():
            acc = np.zeros((*hole.shape, 3), np.float32)
            wsum = np.zeros(hole.shape, np.float32)
            hit = (self._gather_flow(buf, i, xs, ys, flowed, acc, wsum, min_dist=floor) > 0) & flowed
            colour[hit] = acc[hit] / wsum[hit][:, None]
            found |= hit
        return colour, found & led, led
