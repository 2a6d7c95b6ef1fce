"""Temporal-completion benchmark: real occluders composited over a real clip, where the truth is the clip.

An occluder moves over the first ``frames`` frames of a video (resized to ``width``); every method fills
the occluded region (the occluder's mask grown by ``[mask] dilate``, as ``process`` does) and is scored
against the clean clip:

- ``psnr`` (dB) and ``ssim`` inside the occluder (the pixels the occluder destroyed), over the whole run;
- ``psnr_seen``: PSNR over occluded pixels whose true content the camera had already seen: the pixel was
  unoccluded in an earlier frame and its true colour now is within ``SEEN_TOLERANCE`` levels of what it was
  then (the background-memory target; people walking through the hole are excluded, and for a moving
  camera "seen" means only "same colour at the same place");
- ``psnr_background`` ("bg dB", the fixed-camera target "once the background has been seen"): PSNR over
  occluded pixels whose true content now *is the scene's background* (within ``SEEN_TOLERANCE`` of the clean
  clip's per-pixel temporal median, taken over up to ``BACKGROUND_FRAMES`` frames spread over the run) and
  whose background the camera had shown unoccluded in an earlier frame. ``psnr_seen`` also counts whatever
  stood at a pixel when it was last visible and still stands there (a person walking along with the
  occluder), which no background model can know; this measure leaves such foreground out. Meaningful for
  fixed (or shaking) cameras only;
- ``flicker``: the mean warping error of the filled region between consecutive frames: the previous output
  is warped to the current frame with optical flow computed on the ground-truth clip (DIS medium, checked
  forward-backward), and the mean absolute difference (8-bit levels, RGB) over consistent filled pixels is
  taken. ``flicker_truth`` is the same measure on the clean clip (its floor: noise, lighting);
- ``fps``: frames per second of the completion stage alone (decoding, compositing and scoring excluded).

Methods: ``classical`` (Telea per frame), ``generator`` (the configured neural engine, else the first of
deepfill/torch/onnx registered in ``build.INPAINTERS``, per frame; skipped with a note when none is usable,
e.g. no weights), ``fast`` and ``quality`` (temporal completion; its engine is the generator when the
generator row is requested or a neural ``[engine] name`` is configured and it is usable, else Telea).

Occluders (all move; deterministic for a seed): ``blob`` (a striped free-form blob,
``masks.synthetic.MovingOccluder``), ``object`` (a textured cut-out object sliding across), ``logo`` (white
text with a dark outline drifting slowly, as a broadcaster's bug would if it moved).

Memory: each method streams the clip again; the ground-truth flow of each frame pair is computed once and
kept (float16, at most 480 px wide: about 0.5 MB per frame), so the run holds O(frames) flow, not frames.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streamfill import build
from streamfill.config import Config, EngineConfig
from streamfill.errors import InputError, StreamfillError
from streamfill.masks import prepare
from streamfill.masks.synthetic import MovingOccluder
from streamfill.types import Frame

METHODS = ("classical", "generator", "fast", "quality")
OCCLUDERS = ("blob", "object", "logo")
NEURAL_ENGINES = ("deepfill", "torch", "onnx")
CLASSICAL_ENGINES = ("telea", "ns")
FLOW_WIDTH = 480
SEEN_TOLERANCE = 25      # 8-bit levels: an occluded pixel counts as "seen" if it looks as when last unoccluded
BACKGROUND_FRAMES = 31   # clean frames (spread over the run) whose per-pixel median is the scene's background


@dataclass
class MethodResult:
    """Scores of one method over the run (see the module docstring for each measure)."""

    name: str
    engine: str = ""
    psnr: float = float("nan")
    ssim: float = float("nan")
    psnr_seen: float = float("nan")
    psnr_background: float = float("nan")
    flicker: float = float("nan")
    flicker_truth: float = float("nan")
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
    methods: list[MethodResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "video": self.video, "occluder": self.occluder, "frames": self.frames,
            "width": self.width, "height": self.height, "notes": list(self.notes),
            "methods": [{k: clean(v) for k, v in dataclasses.asdict(m).items()} for m in self.methods],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        head = (f"{self.video} ({self.width}x{self.height}, {self.frames} frames, occluder {self.occluder})\n"
                f"{'method':<10} {'engine':<9} {'PSNR dB':>8} {'SSIM':>6} {'seen dB':>8} {'bg dB':>6} {'flicker':>8} "
                f"{'fps':>7}")
        rows = [head]
        for m in self.methods:
            if m.skipped:
                rows.append(f"{m.name:<10} {'-':<9} skipped: {m.note}")
                continue
            rows.append(f"{m.name:<10} {m.engine:<9} {m.psnr:8.2f} {m.ssim:6.3f} {m.psnr_seen:8.2f} "
                        f"{m.psnr_background:6.2f} {m.flicker:8.2f} {m.fps:7.1f}")
        rows.append(f"(flicker of the clean clip in the same pixels: {self.methods[0].flicker_truth:.2f})"
                    if self.methods and not self.methods[0].skipped else "")
        rows.extend(f"note: {n}" for n in self.notes)
        return "\n".join(r for r in rows if r)


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


# -- the run --------------------------------------------------------------------------------------------------

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


def evaluate(video: str | Path, *, config: Config | None = None, methods: tuple[str, ...] = METHODS,
             frames: int = 120, width: int = 640, occluder: str = "blob", seed: int = 0, start: float = 0.0,
             progress: Callable[[str, int, int], None] | None = None) -> TemporalEvalResult:
    """Score ``methods`` on the first ``frames`` frames of ``video`` (from ``start`` s), resized to ``width``
    px wide (0 = native), with ``occluder`` moving over it. ``progress(method, done, total)`` is called per
    frame. Raises InputError for unknown methods/occluders or an unreadable video (DecodeError)."""
    config = config or Config()
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"unknown method {unknown[0]!r} (known: {', '.join(METHODS)})")
    if frames < 2:
        raise InputError(f"--frames {frames}: need at least 2 frames")
    occ = make_occluder(occluder, seed, frames)
    classical = dataclasses.replace(config, engine=EngineConfig(name="telea", radius=config.engine.radius))
    wanted = "generator" in methods or config.engine.name not in CLASSICAL_ENGINES
    generator, note = _engine_configs(config) if wanted else (None, "")
    result = TemporalEvalResult(video=Path(str(video)).name, occluder=occluder, frames=0, width=0, height=0)
    if note and ("generator" in methods or "fast" in methods or "quality" in methods):
        result.notes.append(note + ("; temporal methods use the classical engine" if generator is None else ""))
    truth_flow = _TruthFlow()
    background = scene_background(video, config, frames, width, start)
    for name in methods:
        if name == "generator" and generator is None:
            result.methods.append(MethodResult(name=name, note=note))
            continue
        engine_cfg = generator if (name != "classical" and generator is not None) else classical
        mode = "off" if name in ("classical", "generator") else name
        cfg = dataclasses.replace(engine_cfg, temporal=dataclasses.replace(config.temporal, mode=mode))
        res = _run_method(name, video, cfg, occ, frames, width, start, truth_flow, progress, background)
        result.methods.append(res)
        result.frames, result.width, result.height = res.frames, *_size_of(truth_flow)
    return result


def _size_of(tf: _TruthFlow) -> tuple[int, int]:
    for _, valid in tf.cache.values():
        return int(valid.shape[1]), int(valid.shape[0])
    return 0, 0


def _resized(image: np.ndarray, width: int) -> np.ndarray:
    if width and image.shape[1] != width:
        h = int(round(image.shape[0] * width / image.shape[1] / 2)) * 2
        image = cv2.resize(image, (width, h), interpolation=cv2.INTER_AREA)
    return image


def scene_background(video: str | Path, config: Config, frames: int, width: int, start: float) -> np.ndarray:
    """The clean clip's per-pixel median over up to ``BACKGROUND_FRAMES`` of its first ``frames`` frames
    (evenly spread), resized as the run is: H x W x 3 uint8 RGB, the static scene behind whatever moves."""
    step = max(1, math.ceil(frames / BACKGROUND_FRAMES))
    picked = []
    with build.open_source(video, config, start=start if start > 0 else None) as reader:
        for k, frame in enumerate(itertools.islice(reader, frames)):
            if k % step == 0:
                picked.append(_resized(frame.image, width))
    if not picked:
        raise InputError(f"{video}: no frames decoded")
    if any(p.shape != picked[0].shape for p in picked):
        return picked[0]
    return np.median(np.stack(picked), axis=0).astype(np.uint8)


def _run_method(name, video, cfg: Config, occ, frames, width, start, truth_flow, progress,
                background: np.ndarray | None = None) -> MethodResult:
    completion = build.make_completion(cfg)
    res = MethodResult(name=name, engine=cfg.engine.name)
    truths: dict[int, np.ndarray] = {}
    holes: dict[int, np.ndarray] = {}
    produce = [0.0]
    seen: list[np.ndarray | None] = [None]

    def pairs() -> Iterator[tuple[Frame, np.ndarray]]:
        with build.open_source(video, cfg, start=start if start > 0 else None) as reader:
            it = iter(itertools.islice(reader, frames))
            while True:
                t0 = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    produce[0] += time.perf_counter() - t0
                    return
                image = _resized(frame.image, width)
                mask, colour = occ.at(frame.index, image.shape[0], image.shape[1])
                truths[frame.index] = image
                holes[frame.index] = mask > 0
                occluded = np.where(mask[..., None] > 0, colour, image)
                fill_mask = prepare(mask, cfg.mask)
                produce[0] += time.perf_counter() - t0
                yield frame.with_image(np.ascontiguousarray(occluded)), fill_mask

    sse = sse_seen = sse_bg = 0.0
    count = count_seen = count_bg = 0
    bg_seen: np.ndarray | None = None
    ssim_sum = 0.0
    flick = flick_truth = 0.0
    flick_n = 0
    prev_out: np.ndarray | None = None
    prev_truth: np.ndarray | None = None
    scoring = 0.0
    t_start = time.perf_counter()
    for out in completion.stream(pairs()):
        t0 = time.perf_counter()
        i = out.index
        truth = truths.pop(i)
        hole = holes.pop(i)
        img = out.image
        d = img[hole].astype(np.float64) - truth[hole]
        sse += float((d * d).sum())
        count += d.size
        if seen[0] is None:
            seen[0] = np.zeros(hole.shape, bool)
            last = np.zeros_like(truth)
        s = hole & seen[0]
        if s.any():
            moved = np.abs(truth.astype(np.int16) - last).max(axis=2) > SEEN_TOLERANCE
            s &= ~moved
            ds = img[s].astype(np.float64) - truth[s]
            sse_seen += float((ds * ds).sum())
            count_seen += ds.size
        seen[0] |= ~hole
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
                flick += float(np.abs(img[sel].astype(np.float32) - warped[sel]).sum())
                flick_truth += float(np.abs(truth[sel].astype(np.float32) - warped_truth[sel]).sum())
                flick_n += int(sel.sum()) * 3
        prev_out, prev_truth = img, truth
        res.frames += 1
        scoring += time.perf_counter() - t0
        if progress is not None:
            progress(name, res.frames, frames)
    total = time.perf_counter() - t_start
    if res.frames == 0:
        raise InputError(f"{video}: no frames decoded")
    busy = max(1e-9, total - produce[0] - scoring)
    res.fps = res.frames / busy
    res.psnr = _psnr(sse, count)
    res.psnr_seen = _psnr(sse_seen, count_seen)
    res.psnr_background = _psnr(sse_bg, count_bg)
    res.ssim = ssim_sum / (count / 3) if count else float("nan")
    res.flicker = flick / flick_n if flick_n else float("nan")
    res.flicker_truth = flick_truth / flick_n if flick_n else float("nan")
    stats = getattr(completion, "stats", None)
    if stats is not None:
        res.keyframes = stats.keyframes
        res.sources = dict(stats.pixels, background_resets=stats.background_resets)
    return res


def evaluate_many(videos: list[str | Path], occluders: tuple[str, ...] = ("blob",), **kwargs) -> list[
        TemporalEvalResult]:
    """``evaluate`` for each video x occluder."""
    return [evaluate(v, occluder=o, **kwargs) for v in videos for o in occluders]


__all__ = ["METHODS", "OCCLUDERS", "MethodResult", "TemporalEvalResult", "evaluate", "evaluate_many",
           "make_occluder", "scene_background", "ssim_map"]
