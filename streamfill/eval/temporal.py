"""Temporal-completion benchmark: occluders over clips whose truth is known; every method fills the same holes
and is scored against the clean clip.

The clip is either a real video (``evaluate``: an occluder from ``OCCLUDERS`` painted over its first
``frames`` frames) or a generated one (``evaluate_clip`` with a ``corpus.Clip``: its own masks). The pixels
under the occluder (the *user's mask*) are **blanked** (set to black) before any method sees the frame, so
no method can see the truth inside the hole; each method gets the mask grown as ``process`` grows it
(``[mask] dilate``) and is scored on the user's mask:

- ``psnr`` (dB): PSNR over all hole pixels of the run (pooled); ``psnr_frames``: the mean of the per-frame
  PSNR values (each frame counts alike, whatever its hole's size); ``ssim``: SSIM (luma) in the hole;
- ``psnr_seen`` / ``psnr_background`` (video runs, fixed cameras): PSNR over hole pixels whose true content
  the camera had already shown (same colour within ``SEEN_TOLERANCE`` as when last visible), and over those
  whose true content is the scene's background (the clean clip's per-pixel temporal median) seen earlier;
- ``tc`` (temporal consistency, lower is better): the previous output and the previous true frame are
  warped to the current frame with the **true clip's** optical flow (DIS medium, forward-backward checked);
  per hole pixel, |(out_t - warp(out_t-1)) - (true_t - warp(true_t-1))| (8-bit levels, mean over RGB),
  averaged over the run. A fill that changes as the true scene changes scores 0, whether the scene is still
  or moving; a frozen blur over moving texture, or one that re-rolls every frame, does not;
- ``ring_err`` / ``inner_err``: mean absolute error (8-bit levels) in the band of the hole within
  ``RING_PX`` px of its edge and in the rest of the hole (a seam shows as ``ring_err`` above ``inner_err``);
- ``fps``: frames per second of the method alone (CPU time of this process: compositing and scoring excluded).

Methods: ``classical`` (Telea per frame), ``generator`` (the configured neural engine, else the first of
deepfill/torch/onnx registered in ``build.INPAINTERS``, per frame; skipped with a note when none is usable),
``nearest`` (baseline: each hole pixel copied from the nearest frame, before or after, where that pixel is
not in the hole, same place, no motion compensation; Telea where no frame shows it), ``fast`` and
``quality`` (temporal completion; their engine is the generator when the generator is usable and requested
or configured, else Telea).

Memory: the clip is held in memory (keep runs short: 30-120 frames); the true flow of each frame pair is
computed once (float16, at most ``FLOW_WIDTH`` px wide).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from streamfill import build
from streamfill.config import Config, EngineConfig
from streamfill.errors import InputError, StreamfillError
from streamfill.eval.results import finite, number
from streamfill.masks import prepare
from streamfill.masks.synthetic import MovingOccluder
from streamfill.types import Frame

METHODS = ("classical", "generator", "nearest", "fast", "quality")
OCCLUDERS = ("blob", "object", "logo")
NEURAL_ENGINES = ("deepfill", "torch", "onnx")
CLASSICAL_ENGINES = ("telea", "ns")
FLOW_WIDTH = 480
SEEN_TOLERANCE = 25      # 8-bit levels: an occluded pixel counts as "seen" if it looks as when last unoccluded
BACKGROUND_FRAMES = 31   # clean frames (spread over the run) whose per-pixel median is the scene's background
RING_PX = 3              # the hole's edge band scored apart (ring_err)


@dataclass
class MethodResult:
    """Scores of one method over the run (see the module docstring for each measure)."""

    name: str
    engine: str = ""
    psnr: float = float("nan")
    psnr_frames: float = float("nan")
    ssim: float = float("nan")
    psnr_seen: float = float("nan")
    psnr_background: float = float("nan")
    tc: float = float("nan")
    ring_err: float = float("nan")
    inner_err: float = float("nan")
    fps: float = float("nan")
    frames: int = 0
    keyframes: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def skipped(self) -> bool:
        return self.frames == 0


@dataclass
class TemporalEvalResult:
    video: str
    occluder: str
    frames: int
    width: int
    height: int
    seed: int = 0
    moving_camera: bool | None = None
    methods: list[MethodResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def method(self, name: str) -> MethodResult | None:
        for m in self.methods:
            if m.name == name and not m.skipped:
                return m
        return None

    def to_dict(self) -> dict:
        return finite({
            "video": self.video, "occluder": self.occluder, "frames": self.frames, "seed": self.seed,
            "width": self.width, "height": self.height, "moving_camera": self.moving_camera,
            "notes": list(self.notes),
            "methods": [dataclasses.asdict(m) for m in self.methods],
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        head = (f"{self.video} ({self.width}x{self.height}, {self.frames} frames, occluder {self.occluder}, "
                f"seed {self.seed})\n"
                f"{'method':<10} {'engine':<9} {'PSNR dB':>8} {'frame dB':>8} {'SSIM':>6} {'seen dB':>8} "
                f"{'bg dB':>6} {'TC':>6} {'ring':>6} {'inner':>6} {'fps':>7}")
        rows = [head]
        for m in self.methods:
            if m.skipped:
                rows.append(f"{m.name:<10} {'-':<9} skipped: {m.note}")
                continue
            rows.append(f"{m.name:<10} {m.engine:<9} {number(m.psnr, '8.2f')} {number(m.psnr_frames, '8.2f')} "
                        f"{number(m.ssim, '6.3f')} {number(m.psnr_seen, '8.2f')} {number(m.psnr_background, '6.2f')} "
                        f"{number(m.tc, '6.2f')} {number(m.ring_err, '6.2f')} {number(m.inner_err, '6.2f')} "
                        f"{number(m.fps, '7.1f')}")
        rows.extend(f"note: {n}" for n in self.notes)
        return "\n".join(rows)


# -- occluders ------------------------------------------------------------------------------------------------

class _Blob:
    def __init__(self, seed: int, frames: int) -> None:
        self.occ = MovingOccluder(seed=seed, period=max(frames, 2))

    def at(self, index: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        return self.occ.at(index, h, w)


class _Object:
    """A textured cut-out (irregular outline, its own colours) sliding left to right with a gentle wave."""

    def __init__(self, seed: int, frames: int) -> None:
        rng = np.random.default_rng(seed)
        self.frames = max(frames, 2)
        n = 256
        noise = np.zeros((n, n, 3), np.float32)
        for cell in (4, 8, 16, 32):
            small = rng.random((n // cell + 2, n // cell + 2, 3)).astype(np.float32)
            noise += cv2.resize(small, (n, n), interpolation=cv2.INTER_CUBIC) * cell
        noise = (noise - noise.min()) / max(1e-6, float(np.ptp(noise)))
        tint = rng.random(3).astype(np.float32)
        self.texture = (np.clip(0.6 * noise + 0.4 * tint, 0, 1) * 255).astype(np.uint8)
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n - 0.5
        theta = np.arctan2(yy, xx)
        edge = 0.38 + 0.07 * np.sin(3 * theta + rng.random() * 6) + 0.04 * np.sin(5 * theta + rng.random() * 6)
        self.alpha = (np.hypot(xx, yy) < edge).astype(np.uint8) * 255
        self.phase = float(rng.random() * 2 * math.pi)

    def at(self, index: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        u = (index % self.frames) / (self.frames - 1)
        size = 0.3 * min(h, w)
        cx = w * (0.15 + 0.7 * u)
        cy = h * (0.5 + 0.15 * math.sin(2 * math.pi * u + self.phase))
        n = self.alpha.shape[0]
        s = size / n
        m = cv2.getRotationMatrix2D((n / 2, n / 2), 30 * u, s)
        m[0, 2] += cx - n / 2
        m[1, 2] += cy - n / 2
        mask = cv2.warpAffine(self.alpha, m, (w, h), flags=cv2.INTER_NEAREST)
        colour = cv2.warpAffine(self.texture, m, (w, h), flags=cv2.INTER_LINEAR)
        return mask, colour


class _Logo:
    """White text with a dark outline, drifting slowly diagonally."""

    def __init__(self, seed: int, frames: int, text: str = "STREAMFILL") -> None:
        self.frames = max(frames, 2)
        self.text = text
        self.seed = seed

    def at(self, index: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        u = (index % self.frames) / (self.frames - 1)
        scale = min(h, w) / 160
        thick = max(2, int(round(scale * 2.5)))
        (tw, th), _ = cv2.getTextSize(self.text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        x = int(round(0.05 * w + u * max(1, 0.9 * w - tw)))
        y = int(round(0.2 * h + th + u * 0.4 * h))
        outline = np.zeros((h, w), np.uint8)
        inner = np.zeros((h, w), np.uint8)
        cv2.putText(outline, self.text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick + 4, cv2.LINE_AA)
        cv2.putText(inner, self.text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
        mask = np.where(outline > 60, np.uint8(255), np.uint8(0))
        colour = np.zeros((h, w, 3), np.uint8)
        colour[:] = (20, 20, 30)
        colour[inner > 127] = (245, 245, 245)
        return mask, colour


def make_occluder(kind: str, seed: int, frames: int):
    """An occluder with ``at(index, h, w) -> (mask H x W uint8 255 = occluder, colour H x W x 3 uint8 RGB)``."""
    table = {"blob": _Blob, "object": _Object, "logo": _Logo}
    if kind not in table:
        raise InputError(f"unknown occluder {kind!r} (known: {', '.join(OCCLUDERS)})")
    return table[kind](seed, frames)


# -- metrics --------------------------------------------------------------------------------------------------

def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM (Gaussian window 11, sigma 1.5, on luma) of two H x W x 3 uint8 RGB images: H x W float32."""
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z):
        return cv2.GaussianBlur(z, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def _psnr(sse: float, count: int) -> float:
    if count == 0:
        return float("nan")
    mse = sse / count
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


class _TruthFlow:
    """Backward flow of the clean clip (frame t -> t-1) with a forward-backward validity mask, cached."""

    def __init__(self) -> None:
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.prev_grey: np.ndarray | None = None

    def grey(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        s = min(1.0, FLOW_WIDTH / g.shape[1])
        if s < 1.0:
            g = cv2.resize(g, (int(round(g.shape[1] * s)), int(round(g.shape[0] * s))), interpolation=cv2.INTER_AREA)
        return g, s

    def backward(self, index: int, prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(map_x, map_y) full-res float32 positions in frame t-1 of each pixel of t, valid H x W bool."""
        if index not in self.cache:
            a, s = self.grey(cur)
            b, _ = self.grey(prev)
            back = self.dis.calc(a, b, None)
            fwd = self.dis.calc(b, a, None)
            h, w = a.shape
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            ret = cv2.remap(fwd, xs + back[..., 0], ys + back[..., 1], cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=1e3)
            ok = np.hypot(back[..., 0] + ret[..., 0], back[..., 1] + ret[..., 1]) < 1.0
            H, W = cur.shape[:2]
            flow = cv2.resize(back, (W, H), interpolation=cv2.INTER_LINEAR) / s
            valid = cv2.resize(ok.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST) > 0
            self.cache[index] = (flow.astype(np.float16), valid)
        flow, valid = self.cache[index]
        H, W = valid.shape
        ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
        return xs + flow[..., 0].astype(np.float32), ys + flow[..., 1].astype(np.float32), valid


# -- baselines --------------------------------------------------------------------------------------------------

class NearestCopy:
    """Baseline (offline, sees the whole clip): each hole pixel takes its colour from the nearest frame (before
    or after; the earlier on a tie) where that pixel is outside the hole, at the same place; what no frame
    shows is filled per frame by ``fill``. Implements the ``Completion`` protocol."""

    def __init__(self, fill: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.fill = fill
        self.frames_filled = 0

    def stream(self, pairs) -> Iterator[Frame]:
        items = list(pairs)
        if not items:
            return
        holes = [(m.max(axis=2) if m.ndim == 3 else m) > 0 for _, m in items]
        n = len(items)
        for t, (frame, _mask) in enumerate(items):
            hole = holes[t]
            if not hole.any() or any(f.image.shape != frame.image.shape for f, _ in items):
                yield frame
                continue
            out = frame.image.copy()
            todo = hole.copy()
            for d in range(1, n):
                for k in (t - d, t + d):
                    if 0 <= k < n and todo.any():
                        take = todo & ~holes[k]
                        out[take] = items[k][0].image[take]
                        todo &= ~take
                if not todo.any():
                    break
            if todo.any():
                out = np.where(todo[..., None], self.fill(out, todo.astype(np.uint8) * 255), out)
            self.frames_filled += 1
            yield frame.with_image(out)


# -- the run --------------------------------------------------------------------------------------------------

@dataclass
class _Clip:
    """What a run needs: truth frames, the user's masks (H x W bool), frame indices."""

    name: str
    frames: list[np.ndarray]
    masks: list[np.ndarray]


def _engine_configs(config: Config) -> tuple[Config | None, str]:
    """(config for the generator engine or None, note)."""
    chosen = (config.engine.name,) if config.engine.name not in CLASSICAL_ENGINES else ()
    for name in chosen + NEURAL_ENGINES:
        if name not in build.INPAINTERS:
            continue
        try:
            cfg = dataclasses.replace(config, engine=EngineConfig(**{**dataclasses.asdict(config.engine),
                                                                      "name": name}))
            build.make_inpainter(cfg)
        except StreamfillError as exc:
            return None, f"generator engine {name!r} unavailable: {exc}"
        return cfg, ""
    return None, "no neural engine registered in build.INPAINTERS (deepfill/onnx/torch)"


def _check_methods(methods) -> None:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"unknown method {unknown[0]!r} (known: {', '.join(METHODS)})")


def evaluate(video: str | Path, *, config: Config | None = None, methods: tuple[str, ...] = METHODS,
             frames: int = 120, width: int = 640, occluder: str = "blob", seed: int = 0, start: float = 0.0,
             progress: Callable[[str, int, int], None] | None = None) -> TemporalEvalResult:
    """Score ``methods`` on the first ``frames`` frames of ``video`` (from ``start`` s), resized to ``width``
    px wide (0 = native), with ``occluder`` moving over it. ``progress(method, done, total)`` is called per
    frame. Raises InputError for unknown methods/occluders or an unreadable video (DecodeError)."""
    config = config or Config()
    _check_methods(methods)
    if frames < 2:
        raise InputError(f"--frames {frames}: need at least 2 frames")
    occ = make_occluder(occluder, seed, frames)
    truths, masks = [], []
    with build.open_source(video, config, start=start if start > 0 else None) as reader:
        for frame in itertools.islice(reader, frames):
            image = _resized(frame.image, width)
            truths.append(image)
            masks.append(occ.at(frame.index, image.shape[0], image.shape[1])[0] > 0)
    if len(truths) < 2:
        raise InputError(f"{video}: {len(truths) or 'no'} frame{'s' if not truths else ''} decoded"
                         + (f" from {start:g} s" if start > 0 else "") + "; eval temporal needs at least 2")
    background = scene_background(truths)
    clip = _Clip(Path(str(video)).name, truths, masks)
    result = _evaluate(clip, config, methods, progress, background)
    result.occluder, result.seed = occluder, seed
    return result


def evaluate_clip(clip, *, config: Config | None = None, methods: tuple[str, ...] = METHODS,
                  progress: Callable[[str, int, int], None] | None = None) -> TemporalEvalResult:
    """Score ``methods`` on a generated clip (``corpus.Clip``: frames and the user's masks)."""
    config = config or Config()
    _check_methods(methods)
    result = _evaluate(_Clip(clip.name, clip.frames, clip.masks), config, methods, progress, None)
    result.occluder, result.seed, result.moving_camera = "corpus", clip.seed, clip.moving_camera
    return result


def _evaluate(clip: _Clip, config: Config, methods, progress, background) -> TemporalEvalResult:
    classical = dataclasses.replace(config, engine=EngineConfig(name="telea", radius=config.engine.radius))
    wanted = "generator" in methods or config.engine.name not in CLASSICAL_ENGINES
    generator, note = _engine_configs(config) if wanted else (None, "")
    h, w = clip.frames[0].shape[:2]
    result = TemporalEvalResult(video=clip.name, occluder="", frames=len(clip.frames), width=w, height=h)
    if note and any(m in methods for m in ("generator", "nearest", "fast", "quality")):
        result.notes.append(note + ("; the other methods use the classical engine" if generator is None else ""))
    truth_flow = _TruthFlow()
    for name in methods:
        if name == "generator" and generator is None:
            result.methods.append(MethodResult(name=name, note=note))
            continue
        engine_cfg = generator if (name != "classical" and generator is not None) else classical
        mode = "off" if name in ("classical", "generator", "nearest") else name
        cfg = dataclasses.replace(engine_cfg, temporal=dataclasses.replace(config.temporal, mode=mode))
        result.methods.append(_run_method(name, clip, cfg, truth_flow, progress, background))
    return result


def _resized(image: np.ndarray, width: int) -> np.ndarray:
    if width and image.shape[1] != width:
        h = int(round(image.shape[0] * width / image.shape[1] / 2)) * 2
        image = cv2.resize(image, (width, h), interpolation=cv2.INTER_AREA)
    return image


def scene_background(frames: list[np.ndarray]) -> np.ndarray | None:
    """The clean clip's per-pixel median over up to ``BACKGROUND_FRAMES`` of its frames (evenly spread): H x W
    x 3 uint8 RGB, the static scene behind whatever moves; None when the frames differ in size."""
    if not frames or any(f.shape != frames[0].shape for f in frames):
        return None
    step = max(1, math.ceil(len(frames) / BACKGROUND_FRAMES))
    return np.median(np.stack(frames[::step]), axis=0).astype(np.uint8)


def _edge_band(hole: np.ndarray) -> np.ndarray:
    inner = cv2.erode(hole.astype(np.uint8), np.ones((2 * RING_PX + 1, 2 * RING_PX + 1), np.uint8),
                      borderType=cv2.BORDER_CONSTANT, borderValue=1) > 0
    return hole & ~inner


def _run_method(name, clip: _Clip, cfg: Config, truth_flow, progress, background=None) -> MethodResult:
    if name == "nearest":
        completion = NearestCopy(build.make_completer(dataclasses.replace(
            cfg, temporal=dataclasses.replace(cfg.temporal, mode="off"))).fill)
    else:
        completion = build.make_completion(cfg)
    res = MethodResult(name=name, engine=cfg.engine.name)
    n = len(clip.frames)
    produce = [0.0]

    def pairs() -> Iterator[tuple[Frame, np.ndarray]]:
        for i, (truth, hole) in enumerate(zip(clip.frames, clip.masks, strict=True)):
            t0 = time.process_time()
            blank = truth.copy()
            blank[hole] = 0                       # the method never sees the truth inside the hole
            fill_mask = prepare(hole.astype(np.uint8) * 255, cfg.mask)
            frame = Frame(image=blank, pts=i, time_base=Fraction(1, 25), index=i)
            produce[0] += time.process_time() - t0
            yield frame, fill_mask

    sse = sse_seen = sse_bg = 0.0
    count = count_seen = count_bg = 0
    psnrs: list[float] = []
    bg_seen = seen = last = None
    ssim_sum = 0.0
    tc_sum = 0.0
    tc_n = 0
    ring_sum = inner_sum = 0.0
    ring_n = inner_n = 0
    prev_out = prev_truth = None
    scoring = 0.0
    t_start = time.process_time()
    for out in completion.stream(pairs()):
        t0 = time.process_time()
        i = out.index
        truth = clip.frames[i]
        hole = clip.masks[i]
        img = out.image
        d = img[hole].astype(np.float64) - truth[hole]
        frame_sse = float((d * d).sum())
        sse += frame_sse
        count += d.size
        if d.size:
            psnrs.append(min(_psnr(frame_sse, d.size), 100.0))
            band = _edge_band(hole)
            e = np.abs(img.astype(np.float32) - truth).mean(axis=2)
            ring_sum += float(e[band].sum())
            ring_n += int(band.sum())
            inner_sum += float(e[hole & ~band].sum())
            inner_n += int((hole & ~band).sum())
        if seen is None:
            seen = np.zeros(hole.shape, bool)
            last = np.zeros_like(truth)
        s = hole & seen
        if s.any():
            s &= ~(np.abs(truth.astype(np.int16) - last).max(axis=2) > SEEN_TOLERANCE)
            ds = img[s].astype(np.float64) - truth[s]
            sse_seen += float((ds * ds).sum())
            count_seen += ds.size
        seen |= ~hole
        if background is not None and background.shape == truth.shape:
            is_bg = np.abs(truth.astype(np.int16) - background).max(axis=2) <= SEEN_TOLERANCE
            if bg_seen is None:
                bg_seen = np.zeros(hole.shape, bool)
            b = hole & is_bg & bg_seen
            if b.any():
                db = img[b].astype(np.float64) - truth[b]
                sse_bg += float((db * db).sum())
                count_bg += db.size
            bg_seen |= ~hole & is_bg
        last[~hole] = truth[~hole]
        if hole.any():
            ssim_sum += float(ssim_map(img, truth)[hole].sum())
        if prev_out is not None and prev_out.shape == img.shape:
            mx, my, valid = truth_flow.backward(i, prev_truth, truth)
            sel = valid & hole
            if sel.any():
                warped = cv2.remap(prev_out, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                warped_truth = cv2.remap(prev_truth, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                change = img[sel].astype(np.float32) - warped[sel]
                true_change = truth[sel].astype(np.float32) - warped_truth[sel]
                tc_sum += float(np.abs(change - true_change).sum())
                tc_n += int(sel.sum()) * 3
        prev_out, prev_truth = img, truth
        res.frames += 1
        scoring += time.process_time() - t0
        if progress is not None:
            progress(name, res.frames, n)
    total = time.process_time() - t_start
    if res.frames == 0:
        raise InputError(f"{clip.name}: no frames")
    res.fps = res.frames / max(1e-9, total - produce[0] - scoring)
    res.psnr = _psnr(sse, count)
    res.psnr_frames = float(np.mean(psnrs)) if psnrs else float("nan")
    res.psnr_seen = _psnr(sse_seen, count_seen)
    res.psnr_background = _psnr(sse_bg, count_bg)
    res.ssim = ssim_sum / (count / 3) if count else float("nan")
    res.tc = tc_sum / tc_n if tc_n else float("nan")
    res.ring_err = ring_sum / ring_n if ring_n else float("nan")
    res.inner_err = inner_sum / inner_n if inner_n else float("nan")
    stats = getattr(completion, "stats", None)
    if stats is not None:
        res.keyframes = stats.keyframes
        res.sources = dict(stats.pixels, background_resets=stats.background_resets)
    return res


def evaluate_many(videos: list[str | Path], occluders: tuple[str, ...] = ("blob",), **kwargs) -> list[
        TemporalEvalResult]:
    """``evaluate`` for each video x occluder."""
    return [evaluate(v, occluder=o, **kwargs) for v in videos for o in occluders]


__all__ = ["METHODS", "OCCLUDERS", "MethodResult", "NearestCopy", "TemporalEvalResult", "evaluate",
           "evaluate_clip", "evaluate_many", "make_occluder", "scene_background", "ssim_map"]
