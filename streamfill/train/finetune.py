"""Per-clip fine-tuning (internal learning): adapt the generator to one clip using only its known pixels.

The clip's frames are sampled (a bounded reservoir), the real hole of each frame is grown by ``margin`` px
and **blanked before anything else** (no resize, crop or loss ever sees a pixel from inside it), then the
generator is trained with random training holes on random crops: the network input hides the union of the
random hole and the real hole, and the L1 loss counts only pixels outside the real hole. The content of the
real hole therefore cannot influence the weights at all (tested with a poisoned hole).

L1 only (coarse and refined, hole pixels weighted more): a few hundred steps on one clip are too few for the
adversarial term to help, and without a discriminator nothing else needs the hole either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from streamfill.errors import InputError
from streamfill.train.config import MaskGenConfig
from streamfill.train.masks import mask_batch
from streamfill.train.tensors import from_images, to_masks


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 200
    batch: int = 4
    crop: int = 256  # training crop side (multiple of 8); smaller frames use their largest multiple of 8
    lr: float = 5e-5
    beta1: float = 0.5
    beta2: float = 0.999
    hole_weight: float = 3.0  # weight of random-hole pixels (outside the real hole) in the L1 terms
    margin: int = 8  # the real hole is grown by this many pixels before blanking
    max_frames: int = 64  # frames kept from the clip (uniform reservoir sample)
    seed: int = 0
    masks: MaskGenConfig = field(default_factory=MaskGenConfig)

    def __post_init__(self) -> None:
        from streamfill.config import check_range

        check_range("finetune.steps", self.steps, 0, 10**8)
        check_range("finetune.batch", self.batch, 1, 1024)
        check_range("finetune.crop", self.crop, 32, 4096)
        if self.crop % 8:
            raise InputError(f"finetune crop {self.crop}: must be a multiple of 8")
        check_range("finetune.lr", self.lr, 0.0, 1.0)
        check_range("finetune.hole_weight", self.hole_weight, 0.0, 1e4)
        check_range("finetune.margin", self.margin, 0, 1024)
        check_range("finetune.max_frames", self.max_frames, 1, 100_000)


def blank_holes(image: np.ndarray, mask: np.ndarray, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """(image with the grown hole set to 0, grown hole as H x W bool). image H x W x 3 uint8, mask H x W
    (non-zero = hole)."""
    hole = mask > 0
    if margin > 0 and hole.any():
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
        hole = cv2.dilate(hole.astype(np.uint8), k) > 0
    clean = image.copy()
    clean[hole] = 0
    return clean, hole


def collect_frames(pairs: Iterable[tuple[np.ndarray, np.ndarray]], cfg: FinetuneConfig
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """A seeded uniform sample of at most ``max_frames`` (blanked image, hole) pairs, in one pass; memory is
    bounded by ``max_frames`` whatever the clip length."""
    rng = np.random.default_rng([cfg.seed, 31])
    keep: list[tuple[np.ndarray, np.ndarray]] = []
    for n, (image, mask) in enumerate(pairs):
        if image.shape[:2] != mask.shape[:2]:
            raise InputError(f"frame {n}: mask {mask.shape[:2]} does not match image {image.shape[:2]}")
        if len(keep) < cfg.max_frames:
            keep.append(blank_holes(image, mask, cfg.margin))
        else:
            j = int(rng.integers(0, n + 1))
            if j < cfg.max_frames:
                keep[j] = blank_holes(image, mask, cfg.margin)
    if not keep:
        raise InputError("the clip has no frames to fine-tune on")
    known = sum(int((~hole).sum()) for _, hole in keep)
    if known < 0.05 * sum(hole.size for _, hole in keep):
        # (a mask over the whole frame trained on nothing: L1 0.0000 at every step, the weights unchanged)
        raise InputError("the masks cover (almost) the whole frame: fine-tuning learns from the pixels outside "
                         "them, and there are none")
    return keep


def _crop(rng: np.random.Generator, image: np.ndarray, hole: np.ndarray, size: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """A random square window (side between ``size`` and the shorter side) resized to ``size``; a resized
    pixel counts as real hole if any source pixel under it was (the image there is already 0)."""
    h, w = hole.shape
    short = min(h, w)
    side = int(rng.integers(size, short + 1)) if short > size else short
    top = int(rng.integers(0, h - side + 1))
    left = int(rng.integers(0, w - side + 1))
    img = image[top : top + side, left : left + side]
    hol = hole[top : top + side, left : left + side].astype(np.float32)
    if side != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        hol = cv2.resize(hol, (size, size), interpolation=cv2.INTER_AREA)  # side > size: an average
    return img, hol > 0


def finetune(
    generator: torch.nn.Module,
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    cfg: FinetuneConfig | None = None,
    *,
    device: str | torch.device = "cpu",
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> torch.nn.Module:
    """Fine-tune ``generator`` in place on one clip and return it (eval mode).

    ``pairs`` yields (image H x W x 3 uint8 RGB, mask H x W uint8 with non-zero = the real hole) per frame.
    ``callback`` gets ``{"event": "step", "step", "total", "l1", "crop"}`` after each step (``crop``: the side
    trained on, ``cfg.crop`` or less for smaller frames)."""
    cfg = cfg or FinetuneConfig()
    frames = collect_frames(pairs, cfg)
    short = min(min(f[0].shape[:2]) for f in frames)
    size = min(cfg.crop, short - short % 8)
    if size < 32:
        raise InputError(f"frames are too small to fine-tune on ({short} px; need at least 32)")
    device = torch.device(device)
    generator.to(device).train()
    opt = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    rng = np.random.default_rng(cfg.seed)
    guided = bool(getattr(getattr(generator, "config", None), "guidance", False))
    for step in range(1, cfg.steps + 1):
        picks = rng.integers(0, len(frames), size=cfg.batch)
        crops = [_crop(rng, *frames[int(i)], size) for i in picks]
        images = np.stack([c[0] for c in crops])
        real = np.stack([c[1] for c in crops])
        train_holes = mask_batch(rng, cfg.batch, size, size, cfg.masks) > 0
        image = from_images(images).to(device)
        real_t = to_masks(real).to(device)
        train_t = to_masks(train_holes).to(device)
        hole = torch.clamp(real_t + train_t, max=1.0)
        image = image * (1.0 - real_t)  # belt and braces: the real hole is already blank
        guidance = torch.zeros_like(hole) if guided else None
        coarse, refined = generator(image * (1.0 - hole), hole, guidance)
        weight = (1.0 - real_t) * (1.0 + (cfg.hole_weight - 1.0) * train_t)
        norm = weight.sum().clamp(min=1.0) * 3
        loss = ((coarse - image).abs() * weight).sum() / norm + ((refined - image).abs() * weight).sum() / norm
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if callback is not None:
            callback({"event": "step", "step": step, "total": cfg.steps, "l1": loss.item(), "crop": size})
    return generator.eval()
