"""The DeepFill v2 generator in eager PyTorch behind the ``Inpainter`` protocol (engine name ``deepfill``)."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from streamfill.backends.neural import InpaintGraph, TorchExecutor, check_batch, resolve_weights
from streamfill.errors import EngineError


class TorchInpainter:
    """Fills batches of crops with a ``streamfill.model.Generator``.

    ``inpaint(images, masks, guidance=None)``: images N x H x W x 3 uint8 RGB, masks N x H x W uint8 (non-zero
    = hole), guidance optional N x H x W uint8 sketch (non-zero = stroke; used only by models with a guidance
    channel, only inside the hole). Returns N x H x W x 3 uint8 RGB: the input outside the hole, the refined
    output inside. Any H x W works (padded internally to multiples of 8). ``dtype`` is the compute type
    (float32; float16/bfloat16 on CUDA). Weights arrive as a generator object or through ``from_weights``.
    """

    name = "deepfill"

    def __init__(self, generator: torch.nn.Module, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, batch: int = 8, channels_last: bool | None = None) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.batch = max(1, int(batch))
        self.generator = generator.to(self.device, dtype).eval()
        config = getattr(generator, "config", None)
        self.guided = bool(getattr(config, "guidance", False))
        self.sided = self.guided and getattr(config, "prefill", "none") != "none"  # sketch lines split the start
        # channels_last (NHWC) by default on CUDA, where cuDNN's fp16/bf16 convolutions prefer it.
        self.channels_last = self.device.type == "cuda" if channels_last is None else bool(channels_last)
        if self.channels_last:
            self.generator = self.generator.to(memory_format=torch.channels_last)
        self._executor = None
        if self.device.type == "cuda":  # pinned host buffers, non-blocking copies, one CUDA stream
            self._graph = InpaintGraph(self.generator)
            self._executor = TorchExecutor(str(self.device), dtype, autocast=False,
                                           channels_last=self.channels_last, guided=self.guided)

    @classmethod
    def from_weights(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32, batch: int = 8) -> TorchInpainter:
        """Load a generator weights file (default: the shipped weights) and wrap it."""
        from streamfill.model import load_generator

        path = resolve_weights(None if path is None else str(path))
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise EngineError(f"device {str(device)!r} requested but no CUDA GPU is available")
        return cls(load_generator(path), device=device, dtype=dtype, batch=batch)

    @torch.no_grad()
    def inpaint(self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        check_batch(images, masks, guidance, any_size=True)
        n, h, w = images.shape[:3]
        sided = self.sided and guidance is not None and bool(guidance.any())
        if self._executor is not None and h % 8 == 0 and w % 8 == 0 and not sided:
            return np.concatenate([
                self._executor.run(self._graph, images[s: s + self.batch], masks[s: s + self.batch],
                                   None if guidance is None else guidance[s: s + self.batch])
                for s in range(0, n, self.batch)])
        from streamfill.masks.ops import sketch_regions
        from streamfill.model.prefill import sided_start

        ph, pw = (-h) % 8, (-w) % 8
        out = np.empty_like(images)
        for s in range(0, n, self.batch):
            img = torch.from_numpy(np.ascontiguousarray(images[s : s + self.batch])).to(self.device)
            img = img.permute(0, 3, 1, 2).to(self.dtype) / 127.5 - 1.0
            hole = torch.from_numpy(np.ascontiguousarray(masks[s : s + self.batch]) > 0).to(self.device)
            hole = hole[:, None].to(self.dtype)
            guide = None
            if self.guided and guidance is not None:
                guide = torch.from_numpy(np.ascontiguousarray(guidance[s : s + self.batch]) > 0).to(self.device)
                guide = guide[:, None].to(self.dtype)
            if ph or pw:
                img = F.pad(img, (0, pw, 0, ph), mode="replicate")
                hole = F.pad(hole, (0, pw, 0, ph))
                guide = None if guide is None else F.pad(guide, (0, pw, 0, ph))
            start = sided_start(img, hole, guide, sketch_regions) if sided else None
            _, refined = self.generator(img * (1 - hole), hole, guide, start=start)
            result = refined * hole + img * (1 - hole)
            result = result[:, :, :h, :w].float().clamp(-1, 1)
            result = ((result + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            keep = masks[s : s + self.batch, ..., None] == 0
            out[s : s + self.batch] = np.where(keep, images[s : s + self.batch], result)
        return out


def load_torch(generator: torch.nn.Module, options, cache=None) -> tuple[TorchInpainter, list]:
    """Engine ``torch`` (eager) from ``streamfill.backends.neural.BackendOptions``: device, precision
    (fp32 | fp16 | bf16 weights and compute), batch = ``max_batch``. Nothing is built, so ``cache`` is unused
    and the entry list is empty."""
    from streamfill.backends.neural import DTYPES

    return TorchInpainter(generator, device=options.device, dtype=DTYPES[options.precision],
                          batch=options.max_batch, channels_last=options.channels_last), []
