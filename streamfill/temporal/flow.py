"""Optical-flow helpers for temporal completion: DIS flow on downscaled grey, forward-backward consistency,
smooth completion of a field inside a hole (push-pull interpolation from the known pixels), and bilinear /
nearest sampling at arbitrary positions.

Conventions: a flow field is h x w x 2 float32, (dx, dy) in pixels of the grid it lives on, pointing from a
pixel of the first frame to where it is in the second. Grey images are h x w uint8. Positions are float32
arrays in pixel units of the grid being sampled (x right, y down, pixel centres at integers).
"""

from __future__ import annotations

import cv2
import numpy as np

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


MIN_SIDE = 16  # DIS needs 12 px in one direction; tiny frames are scaled up to this


def grey_small(image: np.ndarray, scale: float) -> np.ndarray:
    """H x W x 3 uint8 RGB -> h x w uint8 grey, h = round(H * scale) (area interpolation), at least
    ``MIN_SIDE`` px each way."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    size = (max(MIN_SIDE, int(round(w * scale))), max(MIN_SIDE, int(round(h * scale))))
    if size == (w, h):
        return grey
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA if size[0] <= w else cv2.INTER_LINEAR)


def shrink_hole(hole: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A full-resolution boolean hole resized to ``shape`` (h, w): any coverage counts as hole."""
    if hole.shape == shape:
        return hole.copy()
    area = cv2.resize(hole.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return area > 1e-3


class Flow:
    """A DIS optical-flow estimator (``preset``: ultrafast | fast | medium), refined down to the grid it is
    given: the presets stop one (medium) or two (fast) pyramid levels coarser, which on frames already scaled
    by ``flow_scale`` left the flow a few pixels off after a chain of frames (measured on a panning camera:
    quality 26 -> 29 dB in the hole, with the band of ``complete.FLOW_BAND`` 40 dB). Not thread-safe."""

    def __init__(self, preset: str = "ultrafast") -> None:
        self.dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        self.dis.setFinestScale(0)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from grey ``a`` to grey ``b`` (same h x w uint8): h x w x 2 float32."""
        return self.dis.calc(a, b, None)


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (xs, ys), each h x w float32 (cached per size; do not modify)."""
    key = (h, w)
    if key not in _GRIDS:
        if len(_GRIDS) > 8:
            _GRIDS.clear()
        xs = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w)).copy()
        ys = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w)).copy()
        xs.flags.writeable = False
        ys.flags.writeable = False
        _GRIDS[key] = (xs, ys)
    return _GRIDS[key]


def sample(field: np.ndarray, x: np.ndarray, y: np.ndarray, *, nearest: bool = False,
           border: float = 0.0, clamp: bool = False, cubic: bool = False) -> np.ndarray:
    """``field`` (h x w or h x w x C) read at positions ``x``, ``y`` (any 2-D shape, float32, pixel units
    of ``field``); bilinear unless ``nearest`` (or ``cubic``: bicubic). Outside the field the result is
    ``border``; with ``clamp`` the field's edge continues beyond it, so a pixel read within a pixel of its
    edge takes the edge's value instead of a blend with ``border`` (colours: a position the caller counts as
    inside the frame must not come out darkened by a black border)."""
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    src = field
    if src.dtype == bool:
        src = src.view(np.uint8)
    if clamp:
        return cv2.remap(src, x, y, interp, borderMode=cv2.BORDER_REPLICATE)
    return cv2.remap(src, x, y, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def sample_points(field: np.ndarray, x: np.ndarray, y: np.ndarray, *, nearest: bool = False,
                  border: float = 0.0) -> np.ndarray:
    """``sample`` at N positions given as flat float32 arrays: returns N (or N x C) values."""
    n = x.size
    if n == 0:
        return np.zeros((0,) + field.shape[2:], np.float32 if field.dtype != np.uint8 else np.uint8)
    cols = min(n, 1024)
    rows = -(-n // cols)
    xs = np.zeros(rows * cols, np.float32)
    ys = np.zeros(rows * cols, np.float32)
    xs[:n] = x
    ys[:n] = y
    xs = xs.reshape(rows, cols)
    ys = ys.reshape(rows, cols)
    out = sample(field, xs, ys, nearest=nearest, border=border)
    return out.reshape((rows * cols,) + out.shape[2:])[:n]


def fb_error(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Forward-backward disagreement h x w float32 (pixels): |F(x) + B(x + F(x))|; large where the flow
    is unreliable (occlusion, disocclusion, mismatch). Outside the frame it counts as large (1e3)."""
    h, w = forward.shape[:2]
    xs, ys = grid(h, w)
    back = sample(backward, xs + forward[..., 0], ys + forward[..., 1], border=1e3)
    d = forward + back
    return np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)


def smooth_fill(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill ``values`` (h x w x C float32) where ``known`` (h x w bool) is False by push-pull interpolation:
    known pixels are kept exactly, unknown ones get a smooth blend of the known values around them (coarser
    averages further from the border). With nothing known the result is zeros."""
    v = values.astype(np.float32, copy=True)
    if v.ndim == 2:
        return smooth_fill(v[..., None], known)[..., 0]
    if known.all():
        return v
    if not known.any():
        return np.zeros_like(v)
    wt = known.astype(np.float32)
    v *= wt[..., None]
    levels = []
    while True:
        levels.append((v, wt))
        h, w = wt.shape
        if (wt > 0).all() or max(h, w) <= 2:
            break
        size = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
        v = cv2.resize(v, size, interpolation=cv2.INTER_AREA)
        wt = cv2.resize(wt, size, interpolation=cv2.INTER_AREA)
        if v.ndim == 2:
            v = v[..., None]
    v, wt = levels[-1]
    mean = v.reshape(-1, v.shape[-1]).sum(0) / max(float(wt.sum()), 1e-6)
    result = np.where(wt[..., None] > 1e-6, v / np.maximum(wt, 1e-6)[..., None], mean)
    for v, wt in reversed(levels[:-1]):
        h, w = wt.shape
        up = cv2.resize(result, (w, h), interpolation=cv2.INTER_LINEAR)
        if up.ndim == 2:
            up = up[..., None]
        a = np.clip(wt, 0.0, 1.0)[..., None]
        mean_known = v / np.maximum(wt, 1e-6)[..., None]
        result = a * mean_known + (1.0 - a) * up
    out = values.astype(np.float32, copy=True)
    out[~known] = result[~known]
    return out


def complete_flow(flow: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """The flow with the ``bad`` pixels (h x w bool: the hole, inconsistent matches) replaced by a smooth
    interpolation of the good ones: inside a hole the background keeps moving as it does around it."""
    if not bad.any():
        return flow
    return smooth_fill(flow, ~bad)



def border_spread(flow: np.ndarray, err: np.ndarray, hole: np.ndarray, thr: float) -> float:
    """How far the flow completed inside ``hole`` may be off (flow-grid px): the RMS residual of an affine fit
    to the consistent flow in a band around it. Where the border moves as one (a pan, a zoom, a still scene)
    the smooth interpolation across the hole is right; where one side moves against the other (a subject
    standing up next to still grass), the interpolated flow is a guess of about this error per frame."""
    if not hole.any():
        return 0.0
    band = (cv2.dilate(hole.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~hole & (err <= thr)
    ys, xs = np.nonzero(band)
    if xs.size < 20:
        return 0.0
    a = np.stack([xs, ys, np.ones_like(xs)], axis=1).astype(np.float64)
    v = flow[ys, xs].astype(np.float64)
    coef, *_ = np.linalg.lstsq(a, v, rcond=None)
    r = v - a @ coef
    r = (r * r).sum(axis=1)
    return float(np.sqrt(r.mean()))


def nearest_flow(flow: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """The flow with the ``bad`` pixels given the flow of the nearest good pixel. Where a hole's border moves in
    several ways (a subject crossing a panning background), each side's motion goes on into the hole up to where
    the sides meet, instead of ``complete_flow``'s blend of both, which follows neither."""
    if not bad.any() or bad.all():
        return flow
    # each good pixel (0 in the input) gets a label of its own; every pixel gets the label of the nearest one
    _, labels = cv2.distanceTransformWithLabels(bad.astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    good = ~bad
    table = np.zeros((int(labels.max()) + 1, 2), np.float32)
    table[labels[good]] = flow[good]
    out = table[labels]
    out[good] = flow[good]
    return out
