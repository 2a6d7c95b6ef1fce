"""Training data: random crops of photos (folders of images) and of video frames, with holes and sketches.

Everything random is drawn from a ``numpy.random.Generator`` that the caller owns (the trainer saves its
state in checkpoints), so a resumed run draws exactly the batches an uninterrupted one would have drawn.

Shapes: images N x H x W x 3 uint8 RGB; masks N x H x W uint8 (255 = hole); sketches N x H x W uint8
(255 = edge, only inside the hole, all zero when the sketch was dropped).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamfill.errors import InputError
from streamfill.io import open_video
from streamfill.io.images import IMAGE_SUFFIXES, read_image
from streamfill.train.config import DataConfig, MaskGenConfig, SketchConfig
from streamfill.train.masks import mask_batch

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".y4m")


@dataclass
class Batch:
    """One batch of training samples (numpy, uint8; see the module docstring for the contracts)."""

    images: np.ndarray
    masks: np.ndarray
    sketches: np.ndarray | None


def _unit_hash(key: str) -> float:
    """A stable number in [0, 1) from a string (for the fixed train/validation split)."""
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") / 2**64


def edges(image: np.ndarray, cfg: SketchConfig) -> np.ndarray:
    """Canny edges of an H x W x 3 uint8 RGB image: H x W uint8, 255 = edge (the training "sketch")."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if cfg.blur > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), cfg.blur)
    return cv2.Canny(grey, cfg.canny_low, cfg.canny_high)


def random_crop(rng: np.random.Generator, image: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """A square crop covering 1/context_max .. 1/context_min of the shorter side (log-uniform), resized to
    ``cfg.crop`` and flipped with probability 1/2 when ``cfg.flip``. In and out: H x W x 3 uint8 RGB."""
    h, w = image.shape[:2]
    short = min(h, w)
    context = math.exp(rng.uniform(math.log(cfg.context_min), math.log(cfg.context_max)))
    side = max(8, min(short, round(short / context)))
    top = int(rng.integers(0, h - side + 1))
    left = int(rng.integers(0, w - side + 1))
    window = image[top : top + side, left : left + side]
    interp = cv2.INTER_AREA if side > cfg.crop else cv2.INTER_LINEAR
    crop = cv2.resize(window, (cfg.crop, cfg.crop), interpolation=interp)
    if cfg.flip and rng.random() < 0.5:
        crop = crop[:, ::-1]
    if cfg.rotate:
        crop = np.rot90(crop, k=int(rng.integers(0, 4)))
        if rng.random() < 0.5:
            crop = crop[::-1]
    if cfg.color > 0 and rng.random() < cfg.color:
        crop = recolor(rng, crop)
    return np.ascontiguousarray(crop)


def recolor(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A colour augmentation of an H x W x 3 uint8 image: a random permutation of the channels, then a random
    contrast (0.7-1.3 around the mean) and brightness (-25..25) change. Breaks "this texture has this
    colour" shortcuts, so that the fill has to take its colours from the context."""
    out = image[..., rng.permutation(3)].astype(np.float32)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.7, 1.3) + mean + rng.uniform(-25, 25)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def find_sources(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """Split ``paths`` (folders are searched recursively, in sorted order) into image and video files."""
    images: list[Path] = []
    videos: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file())
        elif p.is_file():
            files = [p]
        else:
            raise InputError(f"training data not found: {p}")
        for f in files:
            suffix = f.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                images.append(f)
            elif suffix in VIDEO_SUFFIXES:
                videos.append(f)
    if not images and not videos:
        raise InputError(f"no images or videos found in {', '.join(map(str, paths))}")
    return images, videos


class TrainData:
    """Photos and video frames, split once into train and validation items.

    Images are split by a hash of their file name (``val_fraction``), video frames by blocks of
    ``video_block`` frames, so near-identical neighbours never straddle the split. Each video is decoded once
    (on ``open``) keeping a seeded reservoir sample of ``video_frames`` frames; photos are decoded on demand
    and kept in a bounded LRU cache. The constructor does no I/O; ``open()`` scans and decodes videos.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], cfg: DataConfig, *, seed: int = 0) -> None:
        self.paths = list(paths)
        self.cfg = cfg
        self.seed = seed
        self.train_items: list[tuple[str, object]] = []
        self.val_items: list[tuple[str, object]] = []
        self._frames: dict[str, np.ndarray] = {}
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.opened = False

    def open(self) -> TrainData:
        if self.opened:
            return self
        images, videos = find_sources(self.paths)
        for path in images:
            item = ("image", str(path))
            (self.val_items if _unit_hash(path.name) < self.cfg.val_fraction else self.train_items).append(item)
        for vi, path in enumerate(videos):
            for index, frame in self._reservoir(path, self.seed + 7919 * (vi + 1)):
                key = f"{path}#{index}"
                self._frames[key] = frame
                block = f"{path.name}#{index // self.cfg.video_block}"
                target = self.val_items if _unit_hash(block) < self.cfg.val_fraction else self.train_items
                target.append(("frame", key))
        if not self.train_items:
            raise InputError("every training item fell into the validation split; lower data.val_fraction")
        self.opened = True
        return self

    def _reservoir(self, path: Path, seed: int) -> list[tuple[int, np.ndarray]]:
        """A uniform random sample (without replacement) of the video's frames, in one decoding pass."""
        rng = np.random.default_rng(seed)
        keep: list[tuple[int, np.ndarray]] = []
        k = self.cfg.video_frames
        with open_video(path) as reader:
            for n, frame in enumerate(reader):
                if len(keep) < k:
                    keep.append((frame.index, frame.image))
                else:
                    j = int(rng.integers(0, n + 1))
                    if j < k:
                        keep[j] = (frame.index, frame.image)
        if not keep:
            raise InputError(f"no frames decoded from {path}")
        return sorted(keep, key=lambda t: t[0])

    def load(self, item: tuple[str, object]) -> np.ndarray:
        """The full picture of one item: H x W x 3 uint8 RGB."""
        kind, key = item
        if kind == "frame":
            return self._frames[str(key)]
        path = str(key)
        image = self._cache.get(path)
        if image is not None:
            self._cache.move_to_end(path)
            return image
        image = read_image(path)
        if self.cfg.cache_images > 0:
            self._cache[path] = image
            while len(self._cache) > self.cfg.cache_images:
                self._cache.popitem(last=False)
        return image

    def crops(self, rng: np.random.Generator, n: int, *, split: str = "train") -> np.ndarray:
        """``n`` random crops from the chosen split: N x crop x crop x 3 uint8 RGB (validation crops get no
        rotation or colour augmentation)."""
        items = self.train_items if split == "train" else (self.val_items or self.train_items)
        picks = rng.integers(0, len(items), size=n)
        cfg = self.cfg if split == "train" else dataclasses.replace(self.cfg, rotate=False, color=0.0)
        return np.stack([random_crop(rng, self.load(items[int(i)]), cfg) for i in picks])


def make_batch(
    rng: np.random.Generator,
    images: np.ndarray,
    mask_cfg: MaskGenConfig,
    sketch_cfg: SketchConfig,
    *,
    sketch_prob: float | None = None,
) -> Batch:
    """Holes and sketches for N x H x W x 3 uint8 crops. The sketch is the Canny edge map of the ground truth
    restricted to the hole, kept with probability ``sketch_prob`` (default ``sketch_cfg.prob``) per sample;
    ``sketches`` is None when the sketch channel is disabled."""
    n, h, w = images.shape[:3]
    masks = mask_batch(rng, n, h, w, mask_cfg)
    if not sketch_cfg.enabled:
        return Batch(images, masks, None)
    prob = sketch_cfg.prob if sketch_prob is None else sketch_prob
    keep = rng.random(n) < prob
    sketches = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        if keep[i]:
            sketches[i] = edges(images[i], sketch_cfg) & masks[i]
    return Batch(images, masks, sketches)


def validation_set(data: TrainData, mask_cfg: MaskGenConfig, sketch_cfg: SketchConfig, count: int, seed: int
                   ) -> tuple[Batch, Batch]:
    """The fixed validation samples: the same crops and holes twice, without and with the sketch.

    Drawn from the validation split (or, when it is empty, from the training items) with its own seed, so
    every run with the same data and seed validates on identical inputs."""
    rng = np.random.default_rng([seed, 424242])
    images = data.crops(rng, count, split="val")
    plain = make_batch(rng, images, mask_cfg, sketch_cfg, sketch_prob=0.0)
    if plain.sketches is None:
        return plain, plain
    sketches = np.stack([edges(images[i], sketch_cfg) & plain.masks[i] for i in range(count)])
    return plain, Batch(images, plain.masks, sketches)
