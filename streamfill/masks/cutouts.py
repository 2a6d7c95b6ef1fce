"""Synthetic ground truth for mask evaluation: cut-out objects composited along known trajectories.

Used by ``streamfill eval masks`` and the tests. Pictures are H x W x 3 uint8 RGB; a cut-out is
h x w x 4 uint8 RGBA (alpha 255 = object); ground-truth masks are H x W uint8, 255 = visible object
(alpha > 127 after compositing, occluders removed).

Standard trajectories (``TRAJECTORIES``), each a function of the frame number t in [0, n) giving a
:class:`Pose` in frame-relative units so that they fit any frame size:

- ``translate``: left to right across the frame at constant speed, with a gentle vertical wave;
- ``scale``: drifting while the object grows to 1.8x and shrinks back;
- ``rotate``: a half turn while drifting;
- ``occlusion``: translation while a smaller second object crosses in front of its lower half;
- ``speedup``: back and forth with a speed that grows about fivefold (to ~12 px/frame at 768 px width).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamfill.errors import InputError
from streamfill.masks.box import box_to_mask


@dataclass(frozen=True)
class Pose:
    """Object centre (cx, cy as fractions of width/height), scale (1 = reference size), angle (degrees)."""

    cx: float
    cy: float
    scale: float = 1.0
    angle: float = 0.0


def _translate(t: float, n: int) -> Pose:
    u = t / max(1, n - 1)
    return Pose(0.22 + 0.56 * u, 0.5 + 0.08 * math.sin(2 * math.pi * u), 1.0, 0.0)


def _scale(t: float, n: int) -> Pose:
    u = t / max(1, n - 1)
    return Pose(0.35 + 0.3 * u, 0.5, 0.75 + 0.6 * math.sin(math.pi * u), 0.0)


def _rotate(t: float, n: int) -> Pose:
    u = t / max(1, n - 1)
    return Pose(0.4 + 0.2 * u, 0.5 - 0.05 * u, 1.0, 180.0 * u)


def _occlusion(t: float, n: int) -> Pose:
    return _translate(t, n)


def _speedup(t: float, n: int) -> Pose:
    # Phase speed grows from 0.01 to 0.05 rad/frame (for 150 frames), i.e. 2.3 -> 11.5 px/frame at 768 px.
    k = 150.0 / max(1, n)
    phi = 0.01 * k * t + 0.04 * k * k * t * t / 300.0
    return Pose(0.5 + 0.3 * math.sin(phi), 0.5 + 0.05 * math.sin(2 * phi), 1.0, 0.0)


OCCLUDER_SCALE = 0.6  # the occluder's size relative to the object's


def occluder_path(t: float, n: int) -> Pose:
    """The occluder of ``occlusion``: right to left across the object's lower half (it hides up to about
    a third of the object)."""
    u = t / max(1, n - 1)
    return Pose(0.95 - 0.9 * u, 0.63, 1.0, 20.0 * u)


TRAJECTORIES: dict[str, Callable[[float, int], Pose]] = {
    "translate": _translate,
    "scale": _scale,
    "rotate": _rotate,
    "occlusion": _occlusion,
    "speedup": _speedup,
}


def _smooth_noise(h: int, w: int, rng: np.random.Generator, octaves: int = 5) -> np.ndarray:
    out = np.zeros((h, w, 3), np.float32)
    for o in range(octaves):
        cell = max(2, 2 ** (o + 2))
        small = rng.random((max(2, h // cell + 2), max(2, w // cell + 2), 3)).astype(np.float32)
        out += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * (0.5 ** (octaves - o - 1))
    out -= out.min()
    return out / max(1e-6, out.max())


def textured_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """H x W x 3 uint8 RGB: multi-scale coloured noise (texture at every scale, for optical flow)."""
    rng = np.random.default_rng(seed)
    return (_smooth_noise(h, w, rng) * 255).astype(np.uint8)


def textured_cutout(size: int, seed: int = 1) -> np.ndarray:
    """size x size x 4 uint8 RGBA: an irregular blob with its own texture and colours; alpha 255 inside."""
    rng = np.random.default_rng(seed)
    img = _smooth_noise(size, size, rng, octaves=4)
    tint = 0.3 + 0.7 * rng.random(3).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    # Its own colour, plus spots of light and shade so that grey-level optical flow has texture to follow.
    fine = _smooth_noise(size, size, rng, octaves=2)[..., 0]
    shade = 0.35 + 0.65 * fine
    img = np.clip((0.4 * img + 0.6 * tint) * shade[..., None], 0, 1)
    r = np.hypot(xx, yy)
    theta = np.arctan2(yy, xx)
    wobble = 0.36 + 0.06 * np.sin(3 * theta + rng.random() * 6) + 0.03 * np.sin(5 * theta)
    alpha = np.clip((wobble - r) * size / 2.0 + 0.5, 0, 1)
    return np.dstack([(img * 255).astype(np.uint8), (alpha * 255).astype(np.uint8)])


def _read(path: str | Path, flag: str, mode: int) -> np.ndarray:
    """``cv2.imread``, with a missing or unreadable file as one InputError naming ``flag`` (OpenCV would print
    its own warning line first)."""
    if not Path(path).is_file():
        raise InputError(f"{flag} {path}: " + ("a folder; give a picture" if Path(path).is_dir() else "no such file"))
    raw = cv2.imread(str(path), mode)
    if raw is None:
        raise InputError(f"{flag} {path}: not a picture OpenCV can read")
    return raw


def load_cutout(image_path: str | Path, mask_path: str | Path | None = None, flag: str = "--object") -> np.ndarray:
    """A real cut-out as h x w x 4 uint8 RGBA, cropped to the object (``flag``: the option that named it, for
    the error messages).

    The alpha comes from the image's own alpha channel, else from ``mask_path`` (grey, > 127 = object),
    else from GrabCut inside the central 80 % of the picture.
    """
    raw = _read(image_path, flag, cv2.IMREAD_UNCHANGED)
    if raw.ndim == 2:
        raw = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR)
    if raw.dtype != np.uint8:
        raw = (raw / (raw.max() or 1) * 255).astype(np.uint8)
    rgb = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB)
    if raw.shape[2] == 4 and mask_path is None:
        alpha = raw[..., 3]
    elif mask_path is not None:
        m = _read(mask_path, f"{flag}-mask", cv2.IMREAD_GRAYSCALE)
        if m.shape != rgb.shape[:2]:
            raise InputError(f"object mask {mask_path} is {m.shape[1]}x{m.shape[0]}, image is "
                             f"{rgb.shape[1]}x{rgb.shape[0]}")
        alpha = np.where(m > 127, 255, 0).astype(np.uint8)
    else:
        h, w = rgb.shape[:2]
        alpha = box_to_mask(rgb, (w // 10, h // 10, w - w // 5, h - h // 5), iterations=5)
    if not (alpha > 127).any():
        raise InputError(f"the object in {image_path} is empty")
    x, y, bw, bh = cv2.boundingRect((alpha > 127).astype(np.uint8))
    return np.dstack([rgb, alpha])[y : y + bh, x : x + bw].copy()


def place(cutout: np.ndarray, pose: Pose, frame_hw: tuple[int, int], ref_size: float) -> np.ndarray:
    """The cut-out warped into an H x W x 4 float32 RGBA layer (alpha in [0, 1]) at ``pose``.

    ``ref_size`` is the on-screen size in pixels of the cut-out's longer side at scale 1.
    """
    h, w = frame_hw
    ch, cw = cutout.shape[:2]
    s = pose.scale * ref_size / max(ch, cw)
    m = cv2.getRotationMatrix2D((cw / 2.0, ch / 2.0), pose.angle, s)
    m[0, 2] += pose.cx * w - cw / 2.0
    m[1, 2] += pose.cy * h - ch / 2.0
    layer = cv2.warpAffine(
        cutout.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    layer[..., 3] /= 255.0
    return layer


def composite(
    background: np.ndarray, layers: list[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Alpha-blend ``layers`` (back to front) over ``background`` (H x W x 3 uint8 RGB).

    Returns the picture (H x W x 3 uint8 RGB) and each layer's visible alpha (H x W float32 in [0, 1]:
    its own alpha times the transparency of every layer in front of it).
    """
    out = background.astype(np.float32)
    for layer in layers:
        a = layer[..., 3:4]
        out = out * (1 - a) + layer[..., :3] * a
    visible = []
    for i, layer in enumerate(layers):
        v = layer[..., 3].copy()
        for front in layers[i + 1 :]:
            v *= 1 - front[..., 3]
        visible.append(v)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), visible


def synthetic_backgrounds(h: int, w: int, seed: int = 0, noise: float = 3.0) -> Iterator[np.ndarray]:
    """Endless H x W x 3 uint8 RGB frames: a textured picture panning slowly, with sensor noise."""
    rng = np.random.default_rng(seed + 1000)
    big = textured_image(h + 64, w + 64, seed)
    t = 0
    while True:
        dx = int(16 + 14 * math.sin(t / 40.0))
        dy = int(16 + 10 * math.sin(t / 55.0))
        frame = big[dy : dy + h, dx : dx + w].astype(np.float32)
        frame += rng.normal(0, noise, frame.shape).astype(np.float32)
        yield np.clip(frame, 0, 255).astype(np.uint8)
        t += 1


def image_backgrounds(image: np.ndarray, h: int, w: int) -> Iterator[np.ndarray]:
    """Endless H x W x 3 uint8 RGB frames: a slow pan over a (larger, resized) still picture."""
    ih, iw = image.shape[:2]
    s = max((h + 40) / ih, (w + 40) / iw)
    big = cv2.resize(image, (max(w + 40, round(iw * s)), max(h + 40, round(ih * s))), interpolation=cv2.INTER_AREA)
    t = 0
    while True:
        dx = int(20 + 18 * math.sin(t / 50.0))
        dy = int(20 + 12 * math.sin(t / 70.0))
        yield np.ascontiguousarray(big[dy : dy + h, dx : dx + w])
        t += 1


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB."""
    raw = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if raw is None:
        raise InputError(f"cannot read the image {path}")
    return cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)


def resize_rgb(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """``image`` resized to w x h (area interpolation when shrinking)."""
    if image.shape[:2] == (h, w):
        return image
    interp = cv2.INTER_AREA if w < image.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)
