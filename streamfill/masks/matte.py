"""The yielded mask's outline placed by the picture (:func:`snap_outline`), a witness beside the flow and template.

The tracker's outline is carried from frame to frame, so it is off by about a pixel either way, and through a
codec the colour model cannot say better: a pixel on the edge is a blend of the object's colour and the
background's, which the histograms give to whichever side owns that blend. Where the object and its
surroundings are each of one plain colour near the edge, the picture itself says where the edge is: the pixel's
colour ``c`` on the line between the object's local colour ``F`` and the background's ``B`` gives how much of it
is object, ``alpha = ((c - B) . (F - B)) / |F - B|^2``, and the object is where ``alpha > 0.5`` (what the
evaluation's truth is: the pasted cut-out's alpha above one half). Blur, a codec's included, spreads the blend
over more pixels but leaves that crossing in place.

It decides only where it can: ``F`` and ``B`` apart by at least ``_MIN_CONTRAST``, each side's colours within
``_MAX_SPREAD`` of that distance of their mean (a textured side has no one colour: a bright stripe inside a dark
object made the dark edge "background"), and the pixel near the line between them (``_MAX_OFF_LINE``). Elsewhere
the tracker's outline stands.

Only the yielded mask is snapped, never the tracker's state: fed back into the next frame, the snap measured its
``F`` from a mask that had already crept a pixel into a look-alike background, and took the next pixel too (a
ratchet: ``tiny`` 10021 over the bunny clip 0.882 -> 0.777; docs/guide/tracking.md, "Twenty-third pass")."""

from __future__ import annotations

import cv2
import numpy as np

from streamfill.masks.ops import disk

_WINDOW = 7  # px: the neighbourhood whose object / background pixels give F and B
_MIN_CONTRAST = 40.0  # |F - B| in RGB levels below which the picture does not decide
_MAX_SPREAD = 0.25  # each side's colour spread (std) at most this share of |F - B|
_MAX_OFF_LINE = 0.5  # the pixel at most this share of |F - B| away from the line through F and B
_K1, _K2, _K3 = disk(1), disk(2), disk(3)


def snap_outline(soft: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """``soft`` (H x W float32, object > 0.5) with the pixels within 1 px of its outline set to 1 or 0 by the
    local two-colour alpha of ``rgb`` (H x W x 3 uint8) where that decides; a new array (``soft`` itself when
    nothing is decided)."""
    obj = (soft > 0.5).astype(np.uint8)
    if not obj.any():
        return soft
    x, y, w, h = cv2.boundingRect(obj)
    H, W = obj.shape
    pad = _WINDOW + 1
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(W, x + w + pad), min(H, y + h + pad)
    o = obj[y0:y1, x0:x1]
    inner = cv2.erode(o, _K2).astype(np.float32)  # surely the object's, for a 1 px error
    outer = (cv2.dilate(o, _K3) & ~cv2.dilate(o, _K1)).astype(np.float32)  # ... surely the background's
    edge = cv2.dilate(o, _K1).astype(bool) & ~cv2.erode(o, _K1).astype(bool)
    k = (_WINDOW, _WINDOW)
    n_in, n_out = cv2.blur(inner, k), cv2.blur(outer, k)
    ys, xs = np.nonzero(edge & (n_in > 0.05) & (n_out > 0.05))
    if not len(ys):
        return soft
    f = rgb[y0:y1, x0:x1].astype(np.float32)
    f2 = (f * f).sum(axis=2)
    F = cv2.blur(f * inner[..., None], k)[ys, xs] / n_in[ys, xs, None]
    B = cv2.blur(f * outer[..., None], k)[ys, xs] / n_out[ys, xs, None]
    var_in = cv2.blur(f2 * inner, k)[ys, xs] / n_in[ys, xs] - (F * F).sum(axis=1)
    var_out = cv2.blur(f2 * outer, k)[ys, xs] / n_out[ys, xs] - (B * B).sum(axis=1)
    c = f[ys, xs]
    d = F - B
    d2 = (d * d).sum(axis=1)
    alpha = ((c - B) * d).sum(axis=1) / np.maximum(d2, 1e-6)
    off_line = np.linalg.norm(c - (B + alpha[:, None] * d), axis=1)
    decides = ((d2 > _MIN_CONTRAST**2) & (off_line < _MAX_OFF_LINE * np.sqrt(d2))
               & (np.maximum(var_in, var_out) < _MAX_SPREAD**2 * d2))
    if not decides.any():
        return soft
    out = soft.copy()
    out[ys[decides] + y0, xs[decides] + x0] = (alpha[decides] > 0.5).astype(np.float32)
    return out
