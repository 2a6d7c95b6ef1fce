"""Conversions between the project's numpy contracts and model tensors, and batched generator inference.

numpy side: images N x H x W x 3 uint8 RGB; masks/sketches N x H x W uint8 (nonzero = hole / edge).
torch side: images N x 3 x H x W float in [-1, 1]; masks N x 1 x H x W float, 1 = hole (or edge).
"""

from __future__ import annotations

import numpy as np
import torch


def from_images(images: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 uint8 RGB -> N x 3 x H x W float32 in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return t / 127.5 - 1.0


def to_masks(masks: np.ndarray) -> torch.Tensor:
    """N x H x W uint8 (nonzero = 1) -> N x 1 x H x W float32 in {0, 1}."""
    return torch.from_numpy(np.ascontiguousarray(masks) > 0).unsqueeze(1).float()


def to_images(t: torch.Tensor) -> np.ndarray:
    """N x 3 x H x W float in [-1, 1] -> N x H x W x 3 uint8 RGB (rounded, clipped)."""
    x = ((t.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).cpu().numpy())


@torch.no_grad()
def start_kwargs(generator: torch.nn.Module, image: torch.Tensor, mask: torch.Tensor,
                 guidance: torch.Tensor | None) -> dict:
    """``{"start": ...}`` when ``generator`` is a prefill model and the sketch cuts a hole apart (the sided
    push-pull start, as the torch backend gives at inference), else ``{}``."""
    if guidance is None or getattr(getattr(generator, "config", None), "prefill", "none") == "none":
        return {}
    from streamfill.masks.ops import sketch_regions
    from streamfill.model.prefill import sided_start

    start = sided_start(image, mask, guidance, sketch_regions)
    return {} if start is None else {"start": start}


def fill_batch(
    generator: torch.nn.Module,
    images: np.ndarray,
    masks: np.ndarray,
    sketches: np.ndarray | None = None,
    *,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
    chunk: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``generator`` in eval mode on N x H x W x 3 uint8 RGB crops with N x H x W uint8 holes (255 = hole)
    and optional N x H x W uint8 sketches. H, W multiples of 8. Returns (coarse, result) as N x H x W x 3
    uint8 RGB, the result composited: known pixels are the input's, the hole is the refined output."""
    was_training = generator.training
    generator.eval()
    device = torch.device(device)
    coarse_out, result_out = [], []
    try:
        for s in range(0, len(images), chunk):
            image = from_images(images[s : s + chunk]).to(device)
            mask = to_masks(masks[s : s + chunk]).to(device)
            guide = None if sketches is None else to_masks(sketches[s : s + chunk]).to(device)
            extra = start_kwargs(generator, image, mask, guide)
            if autocast_dtype is not None:
                with torch.autocast(device.type, dtype=autocast_dtype):
                    coarse, refined = generator(image * (1 - mask), mask, guide, **extra)
            else:
                coarse, refined = generator(image * (1 - mask), mask, guide, **extra)
            complete = refined.float() * mask + image * (1 - mask)
            coarse_out.append(to_images(coarse))
            result_out.append(to_images(complete))
    finally:
        generator.train(was_training)
    return np.concatenate(coarse_out), np.concatenate(result_out)
