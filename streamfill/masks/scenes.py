"""Hard tracking scenes with known truth, for ``streamfill eval masks`` (the suite) and the tests.

Each case renders a short clip in which one random cut-out (a random blob shape filled with a texture patch
cut from a picture) moves along a random smooth path; the truth is its visible alpha (> 0.5) in every frame.
A *seed* picks the shape, the texture patch, the background picture, the object's size (within the case's
range) and the path, so several seeds per case give several independent clips.

Cases (``CASES``; an object's size is its longer side at its nominal size: its path scales it by up to +-30 %
and turns it, so it can get shorter than the lower bound during a run, and ``eval masks`` reports the smallest):

- ``pan``: 768x576, the camera pans over a still picture; object 60-200 px.
- ``small``: 768x576, the same but the object is 20-32 px.
- ``foliage``: 320x240, fixed camera, the picture sways non-rigidly (a smooth, time-varying local warp of a
  few px, like leaves in wind); object 24-70 px.
- ``talking``: 352x288, fixed camera, the object itself deforms non-rigidly (a smooth time-varying warp of
  up to ~10 % of its size, like a talking face) while it moves little; object 30-90 px.
- ``shake``: 768x576, hand-held camera: smooth pan plus random shake (translation and rotation jitter) and
  motion blur along the camera's motion; object 40-160 px.
- ``tiny``: 176x144 frames, slow pan plus gentle non-rigid object deformation; object 20-40 px.
- ``cut``: 768x576 pan; two thirds in, a scene cut to another picture in which the object is absent (the
  truth is empty there: the tracker must stop); object 24-120 px.

Pictures: H x W x 3 uint8 RGB. ``pictures`` passed in are used as backgrounds and texture sources; without
them, synthetic multi-scale textures are generated (as the tests do). Truth masks: H x W bool.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from streamfill.errors import InputError
from streamfill.masks import cutouts


@dataclass(frozen=True)
class CaseSpec:
    size: tuple[int, int]  # frame (w, h)
    obj: tuple[int, int]  # object's longer side on screen, px (min, max)
    speed: float  # object speed, px/frame (typical peak)
    camera: str  # "still" | "pan" | "shake"
    wind: float = 0.0  # background non-rigid sway amplitude, px
    deform: float = 0.0  # object non-rigid deformation amplitude, fraction of its size
    cut: bool = False


CASES: dict[str, CaseSpec] = {
    "pan": CaseSpec((768, 576), (60, 200), 4.0, "pan"),
    "small": CaseSpec((768, 576), (20, 32), 3.0, "pan"),
    "foliage": CaseSpec((320, 240), (24, 70), 1.5, "still", wind=3.0),
    "talking": CaseSpec((352, 288), (30, 90), 0.8, "still", deform=0.09),
    "shake": CaseSpec((768, 576), (40, 160), 3.0, "shake"),
    "tiny": CaseSpec((176, 144), (20, 40), 1.0, "pan", deform=0.05),
    "cut": CaseSpec((768, 576), (24, 120), 3.0, "pan", cut=True),
}


@dataclass
class SceneFrame:
    image: np.ndarray  # H x W x 3 uint8 RGB
    truth: np.ndarray  # H x W bool, the visible object


def _texture_patch(pictures: Sequence[np.ndarray], rng: np.random.Generator, side: int) -> np.ndarray:
    """side x side x 3 uint8: the most textured of a few random square crops of a random picture."""
    if not pictures:
        return cutouts.textured_image(side, side, int(rng.integers(1 << 30)))
    best, best_score = None, -1.0
    for _ in range(6):
        pic = pictures[int(rng.integers(len(pictures)))]
        ph, pw = pic.shape[:2]
        c = int(rng.integers(max(16, min(ph, pw) // 6), max(17, min(ph, pw) // 2)))
        y, x = int(rng.integers(0, ph - c + 1)), int(rng.integers(0, pw - c + 1))
        crop = cv2.resize(pic[y : y + c, x : x + c], (side, side), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
        score = float(np.std(grey))
        if score > best_score:
            best, best_score = crop, score
    return best


def random_cutout(pictures: Sequence[np.ndarray], rng: np.random.Generator, side: int = 160) -> np.ndarray:
    """side x side x 4 uint8 RGBA: a random blob (random harmonics of the outline, elongation) filled with a
    texture patch (tinted a little so it differs from where it was cut)."""
    tex = _texture_patch(pictures, rng, side).astype(np.float32)
    tint = 0.75 + 0.5 * rng.random(3).astype(np.float32)
    tex = np.clip(tex * tint, 0, 255)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
    e = 0.6 + 0.4 * float(rng.random())  # elongation
    a = float(rng.random()) * math.pi
    u = np.cos(a) * xx + np.sin(a) * yy
    v = (-np.sin(a) * xx + np.cos(a) * yy) / e
    r = np.hypot(u, v) * e
    theta = np.arctan2(v, u)
    outline = 0.30 + sum(
        (0.07 / k) * float(rng.random()) * np.sin(k * theta + float(rng.random()) * 6.3) for k in range(2, 6)
    )
    alpha = np.clip((outline - r) * side / 2.0 + 0.5, 0, 1)
    ys, xs = np.nonzero(alpha > 0.02)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return np.dstack([tex.astype(np.uint8), (alpha * 255).astype(np.uint8)])[y0:y1, x0:x1].copy()


def _smooth_field(h: int, w: int, rng: np.random.Generator, n: int, wavelength: tuple[float, float]):
    """Parameters of a sum of ``n`` travelling sinusoids (a smooth, time-varying displacement field)."""
    waves = []
    for _ in range(n):
        lam = float(rng.uniform(*wavelength))
        ang = float(rng.uniform(0, 2 * math.pi))
        waves.append((math.cos(ang) * 2 * math.pi / lam, math.sin(ang) * 2 * math.pi / lam,
                      float(rng.uniform(0.05, 0.2)), float(rng.uniform(0, 2 * math.pi)),
                      float(rng.uniform(0, 2 * math.pi))))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return xx, yy, waves


def _displace(field, t: float, amp: float) -> tuple[np.ndarray, np.ndarray]:
    xx, yy, waves = field
    dx = np.zeros_like(xx)
    dy = np.zeros_like(yy)
    for kx, ky, om, p1, p2 in waves:
        phase = kx * xx + ky * yy + om * t
        dx += np.sin(phase + p1)
        dy += np.cos(phase + p2)
    s = amp / math.sqrt(len(waves))
    return xx + s * dx, yy + s * dy


class _Path:
    """A random smooth path in frame coordinates that stays inside [margin, size - margin]."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, margin: float, speed: float, n: int) -> None:
        self.w, self.h, self.m = w, h, margin
        self.p0 = np.array([rng.uniform(margin, w - margin), rng.uniform(margin, h - margin)])
        ang = rng.uniform(0, 2 * math.pi)
        self.v = speed * rng.uniform(0.4, 1.0) * np.array([math.cos(ang), math.sin(ang)])
        self.amp = speed * rng.uniform(2, 8, 2)
        self.om = rng.uniform(0.03, 0.12, 2)
        self.ph = rng.uniform(0, 2 * math.pi, 2)
        self.rot = rng.uniform(-1.2, 1.2)  # degrees per frame
        self.scale_amp = rng.uniform(0.0, 0.3)
        self.scale_om = rng.uniform(0.01, 0.05)

    def _reflect(self, x: float, lo: float, hi: float) -> float:
        span = max(1e-6, hi - lo)
        u = (x - lo) % (2 * span)
        return lo + (u if u <= span else 2 * span - u)

    def pose(self, t: float) -> tuple[float, float, float, float]:
        p = self.p0 + self.v * t + self.amp * np.sin(self.om * t + self.ph)
        x = self._reflect(float(p[0]), self.m, self.w - self.m)
        y = self._reflect(float(p[1]), self.m, self.h - self.m)
        scale = 1.0 + self.scale_amp * math.sin(self.scale_om * t)
        return x, y, scale, self.rot * t


def _place(cut: np.ndarray, x: float, y: float, scale: float, angle: float, ref: float,
           hw: tuple[int, int]) -> np.ndarray:
    ch, cw = cut.shape[:2]
    s = scale * ref / max(ch, cw)
    m = cv2.getRotationMatrix2D((cw / 2.0, ch / 2.0), angle, s)
    m[0, 2] += x - cw / 2.0
    m[1, 2] += y - ch / 2.0
    layer = cv2.warpAffine(cut.astype(np.float32), m, (hw[1], hw[0]), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    layer[..., 3] /= 255.0
    return layer


def _motion_blur(image: np.ndarray, vx: float, vy: float) -> np.ndarray:
    length = math.hypot(vx, vy)
    if length < 1.0:
        return image
    k = int(min(15, math.ceil(length))) | 1
    kernel = np.zeros((k, k), np.float32)
    c = k // 2
    ux, uy = vx / length, vy / length
    for i in range(4 * k):
        s = (i / (4 * k - 1) - 0.5) * (k - 1)
        kernel[int(round(c + s * uy)), int(round(c + s * ux))] += 1
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def render(case: str, seed: int, pictures: Sequence[np.ndarray] = (), frames: int = 90,
           size: tuple[int, int] | None = None, backdrop: Sequence[np.ndarray] | None = None
           ) -> Iterator[SceneFrame]:
    """The frames of ``case`` for ``seed`` (see the module doc), one :class:`SceneFrame` at a time.

    ``pictures``: backgrounds and texture sources (H x W x 3 uint8 RGB; none = synthetic textures).
    ``size`` (w, h) overrides the case's frame size (object sizes scale with it).
    ``backdrop``: frames of a real clip (H x W x 3 uint8 RGB) to use as the background instead of the generated
    one, resized (stretched) to the case's size, from a frame the seed picks (played back and forth when the clip is
    shorter); the clip brings its own camera motion, so the case's camera and wind are not added (a shake
    case still shakes and blurs the object with its camera; a cut case cuts to a picture, as without a backdrop;
    the scene's noise is added as to any scene)."""
    if case not in CASES:
        raise InputError(f"unknown case {case!r} (known: {', '.join(CASES)})")
    if frames < 2:
        raise InputError(f"{frames} frames: a scene needs at least 2")
    spec = CASES[case]
    rng = np.random.default_rng([seed, list(CASES).index(case)])
    w, h = size or spec.size
    k = w / spec.size[0]
    ref = float(rng.uniform(*spec.obj)) * k
    cut = random_cutout(pictures, rng, side=max(64, min(256, int(2 * ref))))
    margin = 0.5 * ref * 1.5 + 2
    path = _Path(rng, w, h, margin, spec.speed * k, frames)

    first_pic = [-1]

    def world_of(pic_rng: np.random.Generator) -> np.ndarray:
        pad = 48 if spec.camera != "still" else 8
        if pictures:
            i = int(pic_rng.integers(len(pictures)))
            if i == first_pic[0]:
                i = (i + 1) % len(pictures)  # a cut to another picture
            first_pic[0] = i
            pic = pictures[i]
        else:
            pic = cutouts.textured_image(h + 2 * pad, w + 2 * pad, int(pic_rng.integers(1 << 30)))
            # Each synthetic picture its own colour cast, so that a cut to another one is a real cut.
            pic = (pic * (0.3 + 0.7 * pic_rng.random(3))).astype(np.uint8)
        ph, pw = pic.shape[:2]
        s = max((h + 2 * pad) / ph, (w + 2 * pad) / pw)
        return cv2.resize(pic, (max(w + 2 * pad, round(pw * s)), max(h + 2 * pad, round(ph * s))),
                          interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)

    world = world_of(rng)
    clip_at = _backdrop_reader(backdrop, seed, (w, h)) if backdrop else None
    wh, ww = world.shape[:2]
    wind = _smooth_field(h, w, rng, 6, (25.0, 120.0)) if spec.wind else None
    ch, cw = cut.shape[:2]
    deform = _smooth_field(ch, cw, rng, 4, (0.5 * max(ch, cw), 1.5 * max(ch, cw))) if spec.deform else None
    cam_ph = rng.uniform(0, 2 * math.pi, 2)
    cam_om = rng.uniform(0.015, 0.04, 2)
    jitter = rng.normal(0, 1, (frames, 3))
    cut_at = int(frames * 2 / 3) if spec.cut else None
    noise_rng = np.random.default_rng([seed, 99])
    prev_cam = None
    for t in range(frames):
        if cut_at is not None and t == cut_at:
            world = world_of(rng)
            wh, ww = world.shape[:2]
        # Camera: the top-left of the view in the world, plus rotation (degrees).
        ox = (ww - w) / 2 + ((ww - w) / 2 - 2) * math.sin(cam_om[0] * t + cam_ph[0])
        oy = (wh - h) / 2 + ((wh - h) / 2 - 2) * math.sin(cam_om[1] * t + cam_ph[1])
        rot = 0.0
        if spec.camera == "still":
            ox, oy = (ww - w) / 2, (wh - h) / 2
        elif spec.camera == "shake":
            lim = (ww - w) / 2 - 1
            ox = float(np.clip(ox + 3.0 * k * jitter[t, 0], 0, 2 * lim))
            oy = float(np.clip(oy + 3.0 * k * jitter[t, 1], 0, 2 * lim * (wh - h) / max(1, ww - w)))
            rot = 0.4 * jitter[t, 2]
        view = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), rot, 1.0)
        view[0, 2] -= ox
        view[1, 2] -= oy
        if clip_at is not None and (cut_at is None or t < cut_at):
            bg = clip_at(t)
        else:
            bg = cv2.warpAffine(world, _shift(view, 0, 0), (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
        if wind is not None and clip_at is None:  # a real clip has its own
            mx, my = _displace(wind, t, spec.wind * k)
            bg = cv2.remap(bg, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        present = cut_at is None or t < cut_at
        if present:
            x, y, scale, angle = path.pose(t)
            obj = cut
            if deform is not None:
                mx, my = _displace(deform, t, spec.deform * max(ch, cw))
                obj = cv2.remap(cut, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            layer = _place(obj, x, y, scale, angle, ref, (h, w))
            if spec.camera == "shake":
                # The object lives in the world: the camera's shake moves it too.
                layer = cv2.warpAffine(layer, _about_centre(rot, w, h, 3.0 * k * jitter[t, :2]), (w, h),
                                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            image, visible = cutouts.composite(bg, [layer])
            truth = visible[0] > 0.5
        else:
            image, truth = bg, np.zeros((h, w), bool)
        if spec.camera == "shake":
            cam = np.array([ox, oy])
            v = (cam - prev_cam) if prev_cam is not None else np.zeros(2)
            prev_cam = cam
            image = _motion_blur(image, float(v[0]), float(v[1]))
        noisy = image.astype(np.float32) + noise_rng.normal(0, 2.0, image.shape).astype(np.float32)
        yield SceneFrame(np.clip(noisy + 0.5, 0, 255).astype(np.uint8), truth)


def _backdrop_reader(clip: Sequence[np.ndarray], seed: int, size: tuple[int, int]):
    """A function t -> the backdrop's frame for scene frame t (resized to ``size``), starting at a frame the seed
    picks and played back and forth. Its own random stream: the scene's other choices stay as without it."""
    n = len(clip)
    start = int(np.random.default_rng([seed, 77]).integers(n))

    def frame(t: int) -> np.ndarray:
        i = (start + t) % (2 * n - 2) if n > 1 else 0
        pic = clip[i if i < n else 2 * n - 2 - i]
        if (pic.shape[1], pic.shape[0]) == size:
            return pic
        return cv2.resize(pic, size, interpolation=cv2.INTER_AREA)

    return frame


def _shift(m: np.ndarray, dx: float, dy: float) -> np.ndarray:
    out = m.copy()
    out[0, 2] += dx
    out[1, 2] += dy
    return out


def _about_centre(angle: float, w: int, h: int, shift: np.ndarray) -> np.ndarray:
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    m[0, 2] -= float(shift[0])
    m[1, 2] -= float(shift[1])
    return m
