"""Layered copies: real pixels for a hole whose surroundings move in several ways.

Inside a hole, the flow is only interpolated from the hole's border. Where the border moves in one way (a pan
over a still scene) that is right; where it moves in several (a subject moving over a panning background, a
face against its backdrop), the interpolated flow is a blend of the motions and carries nothing to the right
place. Here the motions are kept apart instead:

1. Points on a ring around the target frame's hole (beyond the band where the flow is not trusted) are followed
   along the measured flow ``LABEL_STEP`` frames forward (backward near the window's end), and split into
   *layers*: up to ``LAYERS`` motions (similarities: shift, turn, scale) fitted in turn by RANSAC to where
   the points went (sequential RANSAC: the largest coherent group, then the largest in the rest).
2. Each layer is then followed through the window, frame pair by frame pair: a similarity is fitted to the
   measured flow at its points that are outside the holes (least squares, refitted once without the points
   it does not fit), and all its points move by it (points that pass through a hole move with their layer
   instead of being lost), which gives, per frame, the layer's map from the target frame.
3. Every hole pixel is looked up, per layer, in the nearest frame before and the nearest frame after where
   the layer's map lands it outside the hole.
4. A pixel whose before and after agree (within ``LEVEL``) under one layer gets that colour: two frames seen
   independently, from both sides of the occlusion, show the same thing at the place the layer's motion says.
   Where they agree under two layers, the closer agreement wins. Pixels where no layer's before and after
   agree get nothing here (flow chains, the memory and the engine answer them as before).

This is the *bracket* of a still camera (the same place seen before and after the occluder) extended to
layers that move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import cv2
import numpy as np

from streamfill.temporal.flow import sample_points

LAYERS = 3          # motions looked for around a hole
LEVEL = 20.0        # 8-bit levels within which before and after count as the same
RING_SHARE = 0.4    # ring width (beyond the untrusted band) as a share of the hole's size (sqrt of its area)
RING_MIN, RING_MAX = 16, 96   # ... in full-resolution px
MAX_POINTS = 800    # ring points followed (a regular subsample)
MIN_POINTS = 30     # points a layer needs (and at least MIN_SHARE of the followed ones)
MIN_SHARE = 0.08
LABEL_STEP = 3      # frames between the target and the frame whose positions split the layers
FIT_INLIERS = 0.5   # share of a layer's points a frame pair's step must fit, else the layer stops there


def _ransac_px(width: int, height: int) -> float:
    """RANSAC tolerance (full-res px): blur and flow noise grow with the picture."""
    return max(1.5, 0.003 * max(width, height))


def layered_copies(buf: Sequence[Any], i: int, box: tuple[int, int, int, int], region: np.ndarray,
                   pair: Callable[[Any, Any], None], fb_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Colours (h x w x 3 float32 over ``box`` = x0, y0, x1, y1) and the layer each was found along (h x w
    int8, -1 = not found) for the ``region`` pixels of ``buf[i]``'s hole. ``buf``: the completer's slots
    (frame, hole, hole_small, unsafe, fwd/bwd flows and their errors, cut_after); ``pair(a, b)`` computes the
    flows between consecutive slots a -> b on demand."""
    x0, y0, x1, y1 = box
    colour = np.zeros((*region.shape, 3), np.float32)
    found = np.full(region.shape, -1, np.int8)
    slot = buf[i]
    H, W = slot.hole.shape
    area = int(slot.hole.sum())
    if area == 0 or not region.any():
        return colour, found
    points = _ring_points(slot, area)
    if points is None:
        return colour, found
    px, py = points
    tol = _ransac_px(W, H)
    labels = _split_layers(buf, i, px, py, pair, fb_threshold, tol)
    if labels is None:
        return colour, found
    ry, rx = np.nonzero(region)
    hx = (rx + x0).astype(np.float32)
    hy = (ry + y0).astype(np.float32)
    best = np.full(hx.size, np.inf, np.float32)
    for layer in range(int(labels.max()) + 1):
        mine = labels == layer
        before = _nearest_view(buf, _layer_maps(buf, i, -1, px[mine], py[mine], pair, fb_threshold, tol), hx, hy)
        seen = np.flatnonzero(np.isfinite(before[:, 0]))
        if seen.size == 0:
            continue
        after = np.full_like(before, np.nan)       # looked up only where the frames before showed the pixel
        after[seen] = _nearest_view(buf, _layer_maps(buf, i, 1, px[mine], py[mine], pair, fb_threshold, tol),
                                    hx[seen], hy[seen])
        diff = np.abs(before - after).max(axis=1)     # NaN where either side saw nothing
        ok = diff < LEVEL                             # False for NaN
        ok &= diff < best
        if ok.any():
            best[ok] = diff[ok]
            colour[ry[ok], rx[ok]] = 0.5 * (before[ok] + after[ok])
            found[ry[ok], rx[ok]] = layer
    return colour, found


def _ring_points(slot: Any, area: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Full-res positions of a regular subsample of the pixels on a ring around the hole, beyond the band
    where the flow is not trusted (``hole_small``), taken on the flow's grid (inside the hole's bounding box
    grown by the ring)."""
    H, W = slot.hole.shape
    h, w = slot.hole_small.shape
    sx, sy = w / W, h / H
    width = max(1, int(round(np.clip(RING_SHARE * np.sqrt(area), RING_MIN, RING_MAX) * max(sx, sy))))
    ys, xs = np.nonzero(slot.hole_small)
    if xs.size == 0:
        return None
    pad = width + 2
    u0, v0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
    u1, v1 = min(w, xs.max() + pad + 1), min(h, ys.max() + pad + 1)
    untrusted = slot.hole_small[v0:v1, u0:u1].astype(np.uint8)
    untrusted = cv2.dilate(untrusted, np.ones((3, 3), np.uint8)) > 0
    k = 2 * width + 1
    near = cv2.dilate(untrusted.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    vs, us = np.nonzero(near & ~untrusted)
    if us.size < MIN_POINTS:
        return None
    step = max(1, int(np.ceil(us.size / MAX_POINTS)))
    us, vs = us[::step] + u0, vs[::step] + v0
    return ((us + 0.5) / sx - 0.5).astype(np.float32), ((vs + 0.5) / sy - 0.5).astype(np.float32)


def _step(buf, k, d, x, y, pair, thr):
    """One frame pair k -> k + d: the flow at the points (full-res px) and where it is measured and consistent
    (outside the untrusted band of the hole, forward-backward error under ``thr``), or None at a cut."""
    a, b = (buf[k], buf[k + d]) if d > 0 else (buf[k + d], buf[k])
    pair(a, b)
    if a.cut_after:
        return None
    here = buf[k]
    H, W = here.hole.shape
    flow, err = (here.fwd, here.err_fwd) if d > 0 else (here.bwd, here.err_bwd)
    h, w = here.small.shape
    sx, sy = w / W, h / H
    u = (x + 0.5) * sx - 0.5
    v = (y + 0.5) * sy - 0.5
    f = sample_points(flow, u, v)
    good = (sample_points(err, u, v, border=1e3) < thr) & (x > -0.5) & (x < W - 0.5) & (y > -0.5) & (y < H - 0.5)
    if not here.empty:
        good &= sample_points(here.hole_small.view(np.uint8), u, v, nearest=True, border=1) == 0
    return f[:, 0] / sx, f[:, 1] / sy, good


def _split_layers(buf, i, px, py, pair, thr, tol) -> np.ndarray | None:
    """Per ring point, its layer (0, 1, ...; -1 = none), from where its own measured flow takes it
    ``LABEL_STEP`` frames away (forward if the window allows, else backward)."""
    src = np.stack([px, py], 1)
    for d in (1, -1):
        if not 0 <= i + d * LABEL_STEP < len(buf):
            continue
        x, y = px.copy(), py.copy()
        alive = np.ones(px.size, bool)
        for s in range(LABEL_STEP):
            step = _step(buf, i + d * s, d, x, y, pair, thr)
            if step is None:
                alive[:] = False
                break
            fx, fy, good = step
            alive &= good
            x, y = x + fx, y + fy
        if alive.sum() < 2 * MIN_POINTS:
            continue
        labels = np.full(px.size, -1, np.int32)
        left = np.flatnonzero(alive)
        dst = np.stack([x, y], 1)
        for layer in range(LAYERS):
            if left.size < MIN_POINTS:
                break
            m, inl = cv2.estimateAffinePartial2D(src[left], dst[left], ransacReprojThreshold=tol, maxIters=200,
                                          confidence=0.99)
            if m is None:
                break
            inl = inl.ravel().astype(bool)
            if inl.sum() < max(MIN_POINTS, MIN_SHARE * alive.sum()):
                break
            labels[left[inl]] = layer
            left = left[~inl]
        return labels if (labels >= 0).any() else None
    return None


def _layer_maps(buf, i, d, px, py, pair, thr, tol) -> Iterator[tuple[int, np.ndarray]]:
    """(k, the layer's map from the target frame to frame k, 2 x 3) for the frames k on side ``d``, nearest
    first, as far as the layer can be followed (lazily: the caller stops when it has what it needs). Each frame
    pair's step is a similarity fitted to the measured flow at the layer's points outside the holes, and moves
    all of them."""
    x, y = px.copy(), py.copy()
    total = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    k = i
    while 0 <= k + d < len(buf):
        step = _step(buf, k, d, x, y, pair, thr)
        if step is None:
            break
        fx, fy, good = step
        if good.sum() < max(MIN_POINTS // 2, FIT_INLIERS * MIN_SHARE * px.size):
            break
        m, share = _fit_similarity(x[good], y[good], x[good] + fx[good], y[good] + fy[good], tol)
        if m is None or share < FIT_INLIERS:
            break
        x, y = m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]
        total = m @ np.vstack([total, [0, 0, 1]])
        k += d
        yield k, total


def _fit_similarity(x, y, u, v, tol) -> tuple[np.ndarray | None, float]:
    """Least-squares similarity (2 x 3: scale, rotation, shift) mapping (x, y) to (u, v) in closed form,
    refitted once on the points within ``tol`` px of the first fit; returns it and the share of points within
    ``tol`` (a cheap stand-in for RANSAC where most points follow one motion)."""
    keep = np.ones(x.size, bool)
    m = None
    for _ in range(2):
        if keep.sum() < 3:
            return None, 0.0
        xs, ys, us, vs = x[keep], y[keep], u[keep], v[keep]
        mx, my, mu, mv = xs.mean(), ys.mean(), us.mean(), vs.mean()
        xc, yc, uc, vc = xs - mx, ys - my, us - mu, vs - mv
        denom = float((xc * xc + yc * yc).sum())
        if denom <= 1e-9:
            return None, 0.0
        p = float((xc * uc + yc * vc).sum()) / denom
        q = float((xc * vc - yc * uc).sum()) / denom
        m = np.array([[p, -q, mu - p * mx + q * my], [q, p, mv - q * mx - p * my]])
        res = np.hypot(m[0, 0] * x + m[0, 1] * y + m[0, 2] - u, m[1, 0] * x + m[1, 1] * y + m[1, 2] - v)
        keep = res < tol
    return m, float(keep.mean())


def _nearest_view(buf, maps: Iterable[tuple[int, np.ndarray]], hx, hy) -> np.ndarray:
    """Per hole pixel, its colour in the nearest frame of ``maps`` ((frame, map from the target), nearest first)
    where the map lands it outside that frame's hole (N x 3 float32, NaN where none does)."""
    out = np.full((hx.size, 3), np.nan, np.float32)
    need = np.ones(hx.size, bool)
    for k, m in maps:
        H, W = buf[k].hole.shape
        idx = np.flatnonzero(need)
        qx = m[0, 0] * hx[idx] + m[0, 1] * hy[idx] + m[0, 2]
        qy = m[1, 0] * hx[idx] + m[1, 1] * hy[idx] + m[1, 2]
        inside = (qx > -0.5) & (qx < W - 0.5) & (qy > -0.5) & (qy < H - 0.5)
        target = buf[k]
        if not target.empty:
            inside &= sample_points(target.unsafe, qx, qy, nearest=True, border=1) == 0
        if inside.any():
            got = idx[inside]
            out[got] = sample_points(target.frame.image, qx[inside], qy[inside]).astype(np.float32)
            need[got] = False
            if not need.any():
                break
    return out
