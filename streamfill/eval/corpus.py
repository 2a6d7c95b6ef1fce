"""A development corpus for temporal completion: short clips with known truth, generated from still photos
(or, without photos, from synthetic textures), each with an occluder mask per frame.

Every case is a function of (seed, frames) returning a ``Clip``: the clean frames (the truth) and the
occluder's mask per frame (the user's mask: what the method must invent). The photos come from a folder
(``photos``; the project's experiments use its training photos), picked by the seed from a pool per case, so
seeds change the picture, the occluder's path and the motion's phases. Cases (``CASES``):

- ``foliage``: fixed camera, the whole picture sways as leaves in wind (smooth random displacement field);
- ``water``: fixed camera, travelling ripples with a shimmer of light;
- ``shake``: hand-held camera shake (random walk of shift and a little rotation) over a still scene;
- ``pan_parallax``: a pan with two layers: a far picture moving slowly, a near band (another photo, wavy
  outline) moving three times as fast (640x360);
- ``zoom_parallax``: a zoom-in with a near layer growing faster than the far one;
- ``face``: 176x144, near-static camera, a face-like subject (a photo cut-out) that deforms non-rigidly
  (thin-plate-spline warp moving over time) and bobs, under the occluder;
- ``nonrigid``: a thin-plate-spline-warped cut-out crossing a slowly panning scene;
- ``blur``: a pan with a defocused background, motion blur (the average of sub-frame positions) and a
  sharp subject crossing;
- ``cut``: a scene cut inside the window (two pans over two photos);
- ``lighting``: fixed camera, the light ramps up and a soft light spot drifts over the scene;
- ``small_hole``: outlined text drifting over a still scene with slight shake (640x360);
- ``large_hole``: an occluder covering about a third of the frame on a slow pan;
- ``long``: an occluder that barely moves, longer than any window, over swaying foliage;
- ``hd``: 1920x1080 pan with a crossing subject (few frames).

Frames are H x W x 3 uint8 RGB; masks H x W bool (True = hidden).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamfill.errors import InputError
from streamfill.masks.cutouts import textured_cutout, textured_image


@dataclass
class Clip:
    name: str
    seed: int
    frames: list[np.ndarray]
    masks: list[np.ndarray]
    moving_camera: bool = False

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.frames[0].shape[:2]
        return w, h


# -- sources -------------------------------------------------------------------------------------------------

SCENES = ("mate-backgrounds__Garden.jpg", "mate-backgrounds__GreenMeadow.jpg", "mate-backgrounds__FreshFlower.jpg",
          "mate-backgrounds__YellowFlower.jpg", "mate-backgrounds__Dune.jpg", "mate-backgrounds__Storm.jpg",
          "plasma-workspace-wallpapers__Path_2560x1600.jpg", "plasma-workspace-wallpapers__Kite_2560x1600.jpg",
          "plasma-workspace-wallpapers__BytheWater_2560x1600.jpg", "scikit-learn__china.jpg",
          "scikit-image__grass.jpg", "scikit-image__gravel.jpg", "scikit-image__brick.jpg",
          "opencv-doc__building.jpg", "opencv-doc__fruits.jpg", "scikit-image__coffee.jpg",
          "scikit-image__motorcycle_left.jpg", "opencv-doc__basketball1.jpg", "mate-backgrounds__LadyBird.jpg",
          "plasma-workspace-wallpapers__summer_1am_2560x1600.jpg", "opencv-doc__aero1.jpg",
          "opencv-doc__leuvenA.jpg", "opencv-doc__graf1.jpg", "scikit-learn__flower.jpg")
FOLIAGE = ("mate-backgrounds__Garden.jpg", "mate-backgrounds__GreenMeadow.jpg", "scikit-image__grass.jpg",
           "mate-backgrounds__FreshFlower.jpg", "mate-backgrounds__YellowFlower.jpg", "opencv-doc__plant.jpg")
WATER = ("plasma-workspace-wallpapers__ColdRipple_2560x1600.jpg", "mate-backgrounds__RainDrops.jpg",
         "plasma-workspace-wallpapers__BytheWater_2560x1600.jpg",
         "plasma-workspace-wallpapers__EveningGlow_2560x1600.jpg")
SUBJECTS = (("scikit-image__astronaut.jpg", (150, 20, 130, 160)), ("scikit-image__chelsea.jpg", (60, 10, 240, 250)),
            ("scikit-image__coffee.jpg", (120, 40, 340, 300)), ("opencv-doc__apple.jpg", None),
            ("opencv-doc__orange.jpg", None), ("scikit-image__rocket.jpg", None))


class Sources:
    """Pictures for the cases: photos from ``folder`` when it holds them, else synthetic textures."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder else None
        self._cache: dict[str, np.ndarray] = {}

    def _read(self, name: str) -> np.ndarray | None:
        if self.folder is None:
            return None
        if name not in self._cache:
            raw = cv2.imread(str(self.folder / name))
            if raw is None:
                return None
            self._cache[name] = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
        return self._cache[name]

    def picture(self, pool: tuple[str, ...], rng: np.random.Generator, w: int, h: int) -> np.ndarray:
        """A picture covering at least w x h (scaled to cover, centre crop), picked from ``pool``."""
        k = int(rng.integers(len(pool)))
        for j in range(len(pool)):
            img = self._read(pool[(k + j) % len(pool)])
            if img is not None:
                break
        else:
            return textured_image(h, w, int(rng.integers(1 << 30)))
        s = max(w / img.shape[1], h / img.shape[0])
        img = cv2.resize(img, (max(w, round(img.shape[1] * s)), max(h, round(img.shape[0] * s))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        y0 = (img.shape[0] - h) // 2
        x0 = (img.shape[1] - w) // 2
        return np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w])

    def cutout(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """size x size x 4 uint8 RGBA: a photo's subject inside a soft ellipse (or a textured blob)."""
        k = int(rng.integers(len(SUBJECTS)))
        name, box = SUBJECTS[k]
        img = self._read(name)
        if img is None:
            return textured_cutout(size, int(rng.integers(1 << 30)))
        if box is None:
            h, w = img.shape[:2]
            box = (w // 8, h // 8, w * 3 // 4, h * 3 // 4)
        x, y, bw, bh = box
        crop = cv2.resize(img[y:y + bh, x:x + bw], (size, size), interpolation=cv2.INTER_AREA)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
        alpha = np.clip((0.46 - np.hypot(xx, yy * 0.9)) * size / 3.0, 0, 1)
        return np.dstack([crop, (alpha * 255).astype(np.uint8)])


# -- motion helpers --------------------------------------------------------------------------------------------

def _noise_field(h: int, w: int, rng: np.random.Generator, cell: int) -> np.ndarray:
    small = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _remap(img: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    h, w = dx.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(img, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _view(big: np.ndarray, cx: float, cy: float, zoom: float, angle: float, w: int, h: int,
          interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """A w x h window of ``big`` centred at (cx, cy), magnified by ``zoom``, turned by ``angle`` degrees."""
    m = cv2.getRotationMatrix2D((cx, cy), angle, zoom)
    m[0, 2] += w / 2 - cx
    m[1, 2] += h / 2 - cy
    return cv2.warpAffine(big, m, (w, h), flags=interp, borderMode=cv2.BORDER_REFLECT)


def _tps(cutout: np.ndarray, rng: np.random.Generator, t: float, amount: float) -> np.ndarray:
    """The cut-out deformed by a thin-plate spline whose control points move smoothly with ``t`` (0-1)."""
    n = cutout.shape[0]
    pts = np.array([[x, y] for y in (0.2, 0.5, 0.8) for x in (0.2, 0.5, 0.8)], np.float64) * n
    phase = rng.random((len(pts), 2)) * 2 * math.pi
    freq = 1.0 + rng.random((len(pts), 2)) * 2.0
    disp = amount * n * np.sin(2 * math.pi * freq * t + phase)
    disp[4] *= 0.3
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float64)
    q = np.stack([xs.ravel(), ys.ravel()], 1)

    def kern(r2):
        return np.where(r2 > 0, 0.5 * r2 * np.log(np.maximum(r2, 1e-12)), 0.0)

    k = len(pts)
    K = kern(((pts[:, None] - pts[None]) ** 2).sum(-1))
    P = np.hstack([np.ones((k, 1)), pts])
    A = np.zeros((k + 3, k + 3))
    A[:k, :k] = K
    A[:k, k:] = P
    A[k:, :k] = P.T
    # backward map: output pixel -> source position = point - displacement
    rhs = np.zeros((k + 3, 2))
    rhs[:k] = -disp
    coef = np.linalg.solve(A + 1e-6 * np.eye(k + 3), rhs)
    U = kern(((q[:, None] - pts[None]) ** 2).sum(-1))
    off = U @ coef[:k] + np.hstack([np.ones((len(q), 1)), q]) @ coef[k:]
    mx = (xs + off[:, 0].reshape(n, n)).astype(np.float32)
    my = (ys + off[:, 1].reshape(n, n)).astype(np.float32)
    return cv2.remap(cutout, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _paste(frame: np.ndarray, cutout: np.ndarray, cx: float, cy: float, scale: float = 1.0,
           angle: float = 0.0) -> np.ndarray:
    h, w = frame.shape[:2]
    n = cutout.shape[0]
    m = cv2.getRotationMatrix2D((n / 2, n / 2), angle, scale)
    m[0, 2] += cx - n / 2
    m[1, 2] += cy - n / 2
    layer = cv2.warpAffine(cutout.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    a = layer[..., 3:4] / 255.0
    return np.clip(frame.astype(np.float32) * (1 - a) + layer[..., :3] * a + 0.5, 0, 255).astype(np.uint8)


# -- occluders ---------------------------------------------------------------------------------------------------

def _blob_masks(n: int, h: int, w: int, rng: np.random.Generator, size: float, travel: float = 0.7,
                ) -> list[np.ndarray]:
    """An irregular blob (``size`` x the shorter side across) moving along a wavy path over ``travel`` of
    the width, turning a little."""
    k = 9
    radii = 0.5 * size * min(h, w) * (0.7 + 0.3 * rng.random(k))
    base = rng.random() * 2 * math.pi
    phase = rng.random() * 2 * math.pi
    left = rng.random() < 0.5
    y0 = h * (0.35 + 0.3 * rng.random())
    out = []
    for t in range(n):
        u = t / max(1, n - 1)
        v = u if left else 1 - u
        cx = w * (0.5 - travel / 2 + travel * v)
        cy = y0 + 0.1 * h * math.sin(2 * math.pi * u + phase)
        ang = base + 0.6 * u
        pts = [(cx + r * math.cos(ang + 2 * math.pi * j / k), cy + r * math.sin(ang + 2 * math.pi * j / k))
               for j, r in enumerate(radii)]
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(np.array(pts) * 4).astype(np.int32)], 255, cv2.LINE_8, 2)
        out.append(m > 0)
    return out


def _text_masks(n: int, h: int, w: int, rng: np.random.Generator) -> list[np.ndarray]:
    scale = min(h, w) / 200
    thick = max(2, round(scale * 2.5))
    text = "STREAMFILL"
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x0 = 0.05 * w + rng.random() * 0.1 * w
    y0 = 0.25 * h + rng.random() * 0.2 * h
    out = []
    for t in range(n):
        u = t / max(1, n - 1)
        m = np.zeros((h, w), np.uint8)
        cv2.putText(m, text, (round(x0 + u * 0.3 * w), round(y0 + th + u * 0.2 * h)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, 255, thick + 4, cv2.LINE_AA)
        out.append(m > 60)
    return out


# -- cases ----------------------------------------------------------------------------------------------------------

def _foliage(src: Sources, rng, n, w=320, h=240, sway=2.5, still_occluder=False) -> Clip:
    pic = src.picture(FOLIAGE, rng, w, h)
    fields = [(_noise_field(h, w, rng, 24), _noise_field(h, w, rng, 24)) for _ in range(3)]
    amp = np.clip(_noise_field(h, w, rng, 64) * 0.5 + 1.0, 0.2, 1.6)
    frames = []
    for t in range(n):
        a = [math.sin(0.35 * t + j * 2.1) for j in range(3)]
        dx = sum(f[0] * c for f, c in zip(fields, a, strict=True)) * amp * sway
        dy = sum(f[1] * c for f, c in zip(fields, a, strict=True)) * amp * sway * 0.6
        frames.append(_remap(pic, dx.astype(np.float32), dy.astype(np.float32)))
    masks = _blob_masks(n, h, w, rng, 0.3, travel=0.04 if still_occluder else 0.6)
    return Clip("long" if still_occluder else "foliage", 0, frames, masks)


def _water(src: Sources, rng, n, w=320, h=240) -> Clip:
    pic = src.picture(WATER, rng, w, h).astype(np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    k1, k2 = 0.09 + 0.03 * rng.random(), 0.05 + 0.02 * rng.random()
    frames = []
    for t in range(n):
        ph = 0.5 * t
        dy = 1.6 * np.sin(k1 * ys + 0.3 * xs * k2 - ph) + 0.8 * np.sin(k2 * xs - 0.7 * ph)
        dx = 0.8 * np.cos(k1 * ys - ph)
        img = _remap(pic, dx.astype(np.float32), dy.astype(np.float32))
        img *= (1.0 + 0.06 * np.sin(k1 * 1.7 * ys - 1.3 * ph + xs * 0.05))[..., None]
        frames.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    return Clip("water", 0, frames, _blob_masks(n, h, w, rng, 0.3))


def _shake(src: Sources, rng, n, w=320, h=240) -> Clip:
    big = src.picture(SCENES, rng, w + 80, h + 80)
    walk = np.cumsum(rng.normal(0, 1.2, (n, 3)), axis=0)
    frames = [_view(big, (w + 80) / 2 + walk[t, 0], (h + 80) / 2 + walk[t, 1], 1.0, 0.15 * walk[t, 2], w, h)
              for t in range(n)]
    return Clip("shake", 0, frames, _blob_masks(n, h, w, rng, 0.3), moving_camera=True)


def _layer_band(src: Sources, rng, w: int, h: int) -> np.ndarray:
    """A near layer: another picture inside a wavy vertical band (RGBA float32, w x h)."""
    pic = src.picture(SCENES, rng, w, h).astype(np.float32)
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)[:, None]
    c = w * (0.3 + 0.4 * rng.random())
    half = w * 0.08 * (1 + 0.25 * np.sin(ys / h * 2 * math.pi * 1.5 + rng.random() * 6))
    alpha = np.clip(half - np.abs(xs[None] - c - 0.05 * w * np.sin(ys / h * 5.0)), 0, 1)
    return np.dstack([pic, alpha * 255])


def _over(back: np.ndarray, layer: np.ndarray) -> np.ndarray:
    a = layer[..., 3:4] / 255.0
    return np.clip(back.astype(np.float32) * (1 - a) + layer[..., :3] * a + 0.5, 0, 255).astype(np.uint8)


def _pan_parallax(src: Sources, rng, n, w=640, h=360) -> Clip:
    far = src.picture(SCENES, rng, w * 2, h + 40)
    near = _layer_band(src, rng, w * 3, h + 40).astype(np.float32)
    speed = 2.0 + rng.random()
    frames = []
    for t in range(n):
        x = w / 2 + 20 + speed * t
        back = _view(far, x, (h + 40) / 2, 1.0, 0.0, w, h)
        front = _view(near, w / 2 + 3 * speed * t + 40, (h + 40) / 2, 1.0, 0.0, w, h)
        frames.append(_over(back, front))
    return Clip("pan_parallax", 0, frames, _blob_masks(n, h, w, rng, 0.28), moving_camera=True)


def _zoom_parallax(src: Sources, rng, n, w=480, h=270) -> Clip:
    far = src.picture(SCENES, rng, w + 40, h + 40)
    near = _layer_band(src, rng, w + 40, h + 40).astype(np.float32)
    frames = []
    for t in range(n):
        u = t / max(1, n - 1)
        back = _view(far, (w + 40) / 2, (h + 40) / 2, 1.0 + 0.12 * u, 0.0, w, h)
        front = _view(near, (w + 40) / 2, (h + 40) / 2, 1.0 + 0.35 * u, 0.0, w, h)
        frames.append(_over(back, front))
    return Clip("zoom_parallax", 0, frames, _blob_masks(n, h, w, rng, 0.28), moving_camera=True)


def _face(src: Sources, rng, n, w=176, h=144) -> Clip:
    back = src.picture(SCENES, rng, w + 20, h + 20)
    size = int(h * 0.8)
    cut = src.cutout(rng, size)
    frames = []
    walk = np.cumsum(rng.normal(0, 0.3, (n, 2)), axis=0)
    for t in range(n):
        u = t / max(1, n - 1)
        frame = _view(back, (w + 20) / 2 + walk[t, 0], (h + 20) / 2 + walk[t, 1], 1.0, 0.0, w, h)
        warped = _tps(cut, rng_copy(rng), u, 0.05)
        cx = w * 0.5 + 6 * math.sin(2 * math.pi * u * 1.5)
        cy = h * 0.55 + 3 * math.sin(2 * math.pi * u * 2.3)
        frames.append(_paste(frame, warped, cx, cy, 1.0, 5 * math.sin(2 * math.pi * u)))
    return Clip("face", 0, frames, _blob_masks(n, h, w, rng, 0.35, travel=0.5))


def rng_copy(rng: np.random.Generator) -> np.random.Generator:
    """A generator with the same state (the same random deformation parameters every frame)."""
    g = np.random.default_rng()
    g.bit_generator.state = rng.bit_generator.state
    return g


def _nonrigid(src: Sources, rng, n, w=320, h=240) -> Clip:
    big = src.picture(SCENES, rng, w + 120, h)
    size = int(h * 0.55)
    cut = src.cutout(rng, size)
    frames = []
    for t in range(n):
        u = t / max(1, n - 1)
        frame = _view(big, w / 2 + 20 + 1.5 * t, h / 2, 1.0, 0.0, w, h)
        warped = _tps(cut, rng_copy(rng), u, 0.07)
        frames.append(_paste(frame, warped, w * (0.8 - 0.6 * u), h * 0.5 + 8 * math.sin(6 * u), 1.0,
                             10 * math.sin(3 * u)))
    return Clip("nonrigid", 0, frames, _blob_masks(n, h, w, rng, 0.3), moving_camera=True)


def _blur(src: Sources, rng, n, w=320, h=240) -> Clip:
    big = cv2.GaussianBlur(src.picture(SCENES, rng, w * 2, h), (0, 0), 2.5)
    size = int(h * 0.45)
    cut = src.cutout(rng, size)
    speed = 4.0 + 2 * rng.random()
    frames = []
    for t in range(n):
        subs = [_view(big, w / 2 + 10 + speed * (t + s / 5), h / 2, 1.0, 0.0, w, h).astype(np.float32)
                for s in range(5)]
        frame = np.clip(sum(subs) / 5 + 0.5, 0, 255).astype(np.uint8)
        frames.append(_paste(frame, cut, w * (0.2 + 0.6 * t / max(1, n - 1)), h * 0.5))
    return Clip("blur", 0, frames, _blob_masks(n, h, w, rng, 0.3), moving_camera=True)


def _cut(src: Sources, rng, n, w=320, h=240) -> Clip:
    a = src.picture(SCENES, rng, w * 2, h)
    b = src.picture(SCENES, rng, w * 2, h)
    at = n // 2 + int(rng.integers(-3, 4))
    frames = [_view(a if t < at else b, w / 2 + 10 + 2.0 * t, h / 2, 1.0, 0.0, w, h) for t in range(n)]
    return Clip("cut", 0, frames, _blob_masks(n, h, w, rng, 0.3), moving_camera=True)


def _lighting(src: Sources, rng, n, w=320, h=240) -> Clip:
    pic = src.picture(SCENES, rng, w, h).astype(np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for t in range(n):
        u = t / max(1, n - 1)
        gain = 0.75 + 0.45 * u
        sx, sy = w * (0.2 + 0.6 * u), h * (0.3 + 0.3 * math.sin(3 * u))
        spot = 50 * np.exp(-((xs - sx) ** 2 + (ys - sy) ** 2) / (2 * (0.25 * w) ** 2))
        frames.append(np.clip(pic * gain + spot[..., None] + 0.5, 0, 255).astype(np.uint8))
    return Clip("lighting", 0, frames, _blob_masks(n, h, w, rng, 0.3))


def _small_hole(src: Sources, rng, n, w=640, h=360) -> Clip:
    big = src.picture(SCENES, rng, w + 20, h + 20)
    walk = np.cumsum(rng.normal(0, 0.4, (n, 2)), axis=0)
    frames = [_view(big, (w + 20) / 2 + walk[t, 0], (h + 20) / 2 + walk[t, 1], 1.0, 0.0, w, h) for t in range(n)]
    return Clip("small_hole", 0, frames, _text_masks(n, h, w, rng))


def _large_hole(src: Sources, rng, n, w=320, h=240) -> Clip:
    big = src.picture(SCENES, rng, w + 100, h)
    frames = [_view(big, w / 2 + 10 + 2.5 * t, h / 2, 1.0, 0.0, w, h) for t in range(n)]
    return Clip("large_hole", 0, frames, _blob_masks(n, h, w, rng, 0.6, travel=0.3), moving_camera=True)


def _long(src: Sources, rng, n) -> Clip:
    return _foliage(src, rng, n, sway=1.5, still_occluder=True)


def _hd(src: Sources, rng, n, w=1920, h=1080) -> Clip:
    big = src.picture(SCENES, rng, w + 200, h)
    cut = src.cutout(rng, int(h * 0.4))
    frames = []
    for t in range(n):
        frame = _view(big, w / 2 + 10 + 6.0 * t, h / 2, 1.0, 0.0, w, h)
        frames.append(_paste(frame, cut, w * (0.7 - 0.02 * t), h * 0.5))
    return Clip("hd", 0, frames, _blob_masks(n, h, w, rng, 0.25, travel=0.2), moving_camera=True)


CASES: dict[str, Callable[..., Clip]] = {
    "foliage": _foliage, "water": _water, "shake": _shake, "pan_parallax": _pan_parallax,
    "zoom_parallax": _zoom_parallax, "face": _face, "nonrigid": _nonrigid, "blur": _blur, "cut": _cut,
    "lighting": _lighting, "small_hole": _small_hole, "large_hole": _large_hole, "long": _long, "hd": _hd,
}
HD_FRAMES = 10           # the 1080p case is kept short
DEV_SEEDS = (0, 1, 2)
HELD_OUT_SEEDS = (10, 11)  # other pictures and paths; run only for the final report


def make_clip(case: str, seed: int, frames: int, photos: str | Path | None = None) -> Clip:
    """The clip of ``case`` for ``seed`` (``frames`` frames; ``hd`` at most ``HD_FRAMES``)."""
    if case not in CASES:
        raise InputError(f"unknown case {case!r} (known: {', '.join(CASES)})")
    if frames < 2:
        raise InputError(f"--frames {frames}: need at least 2")
    rng = np.random.default_rng([seed, sorted(CASES).index(case)])
    n = min(frames, HD_FRAMES) if case == "hd" else frames
    clip = CASES[case](Sources(photos), rng, n)
    clip.name, clip.seed = case, seed
    return clip


__all__ = ["CASES", "DEV_SEEDS", "HELD_OUT_SEEDS", "Clip", "Sources", "make_clip"]
