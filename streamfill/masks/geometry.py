"""2 x 3 affine transforms (numpy float64, OpenCV's layout: ``[A | t]`` maps ``x`` to ``A @ x + t``) as the mask
tracker (:mod:`streamfill.masks.propagate`) uses them: composing, inverting, splitting the linear part into
scale, rotation and anisotropy, the pure translation that moves a mask's centre as a transform does, and
estimating one by aligning a picture to another (ECC)."""

from __future__ import annotations

import cv2
import numpy as np

_ECC_AREA_JUMP = 4.0  # an alignment that changes the template's area more than this many times has diverged


def ecc(template: np.ndarray, image: np.ndarray, warp: np.ndarray, mask: np.ndarray,
         affine: bool) -> tuple[float, np.ndarray]:
    """ECC alignment of ``template`` to ``image`` from the 2 x 3 ``warp`` (template -> image coordinates),
    scoring ``mask``; affine or translation only. (correlation, warp float64), or (0, warp) on failure.

    A result that carries the template's centre out of ``image`` or changes its area more than
    ``_ECC_AREA_JUMP`` times is a failure too: ECC can settle on a degenerate warp with a correlation of 1.0
    (seen: the template moved 4000 px off, flattened to a few pixels, on a blurred camera jump), and taken as
    a match it stopped the wider searches that would have found the object ("Nineteenth pass" in
    docs/guide/tracking.md)."""
    try:
        rho, out = cv2.findTransformECC(
            template, image, warp.astype(np.float32), cv2.MOTION_AFFINE if affine else cv2.MOTION_TRANSLATION,
            (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-3), mask, 3,
        )
    except cv2.error:
        return 0.0, warp
    if not (np.isfinite(rho) and np.isfinite(out).all()):
        return 0.0, warp
    out = out.astype(np.float64)
    th, tw = template.shape
    cx, cy = out[:, :2] @ np.array([(tw - 1) / 2.0, (th - 1) / 2.0]) + out[:, 2]
    if not (0.0 <= cx < image.shape[1] and 0.0 <= cy < image.shape[0]):
        return 0.0, warp
    before, after = (abs(np.linalg.det(np.asarray(w, np.float64)[:, :2])) for w in (warp, out))
    if not before / _ECC_AREA_JUMP <= after <= before * _ECC_AREA_JUMP:
        return 0.0, warp
    return float(rho), out


def decompose(m: np.ndarray) -> tuple[float, float, float]:
    """(log scale, rotation in radians, log anisotropy) of the linear part of the 2 x 3 affine ``m``."""
    a = np.asarray(m, np.float64)[:, :2]
    sv = np.linalg.svd(a, compute_uv=False)
    if not np.isfinite(sv).all() or sv[1] <= 1e-9:
        return float("inf"), float("inf"), float("inf")
    ls = 0.5 * float(np.log(sv[0] * sv[1]))
    ang = float(np.arctan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1]))
    return ls, ang, float(np.log(sv[0] / sv[1]))


def translation_of(m: np.ndarray, state: np.ndarray) -> np.ndarray:
    """The pure translation that moves the mask's centre as ``m`` does."""
    inside = (state > 0.5).view(np.uint8)
    x, y, w, h = cv2.boundingRect(inside)  # the centre is found inside (np.nonzero over a whole frame cost ~2 ms)
    ys, xs = np.nonzero(inside[y : y + h, x : x + w])
    c = np.array([(xs + x).mean(), (ys + y).mean()]) if len(ys) else np.zeros(2)
    moved = m[:, :2] @ c + m[:, 2]
    out = np.eye(2, 3, dtype=np.float64)
    out[:, 2] = moved - c
    return out


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2 x 3 affine ``a`` after ``b``."""
    m = np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]])
    return m[:2]


def invert(a: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(a.astype(np.float64))
