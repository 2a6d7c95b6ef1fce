"""What every neural backend shares: the inference graph, tensor conversions, options, batching, weights
identity, device probing and the GPU transfer path (pinned host memory, non-blocking copies, one stream).

Tensor contract of :class:`InpaintGraph` (the graph every backend runs, exported as-is to ONNX / TensorRT):
``image`` N x 3 x H x W float RGB in [-1, 1], ``mask`` N x 1 x H x W float (1 = hole), optional ``guidance``
N x 1 x H x W float in [0, 1]; output N x 3 x H x W float in [-1, 1] = the refined result inside the hole,
the input outside. H and W multiples of 8.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamfill.errors import EngineError, InputError

PRECISIONS = ("fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_WEIGHTS_NAME = "deepfill_default.safetensors"


@dataclass(frozen=True)
class BackendOptions:
    """How to run a neural backend. ``device``: "cpu", "cuda" or "cuda:N" (already resolved, not "auto");
    ``precision``: fp32 | fp16 | bf16; ``sizes``: the square working sizes (shape buckets) it must serve;
    ``max_batch``: most crops per engine call (compiled backends pad a batch up to a power of two);
    ``threads``: CPU intra-op threads (0 = all cores); ``cache_dir``: engine cache root."""

    device: str = "cpu"
    precision: str = "fp32"
    sizes: tuple[int, ...] = (256, 384, 512)
    max_batch: int = 4
    threads: int = 0
    cache_dir: str = ""
    rebuild: bool = False
    channels_last: bool | None = None  # None = on for CUDA, off for CPU


class InpaintGraph(nn.Module):
    """``forward(image, mask[, guidance]) -> composite``: the generator's refined output inside the hole, the
    input outside (see the module docstring for the contract). Pure tensor code, exportable."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.guided = bool(getattr(getattr(generator, "config", None), "guidance", False))

    def forward(self, image: torch.Tensor, mask: torch.Tensor, guidance: torch.Tensor | None = None):
        _, refined = self.generator(image, mask, guidance)
        refined = refined.to(image.dtype)
        return refined * mask + image * (1.0 - mask)


def check_batch(images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None, *,
                any_size: bool = False) -> None:
    """Raise InputError unless images N x H x W x 3 uint8, masks N x H x W, guidance N x H x W or None, with
    H and W multiples of 8 (the crop buckets guarantee it) unless ``any_size`` (eager torch pads itself)."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise InputError(f"images must be N x H x W x 3 uint8, got {images.shape} {images.dtype}")
    if masks.shape != images.shape[:3]:
        raise InputError(f"masks must be N x H x W = {images.shape[:3]}, got {masks.shape}")
    if guidance is not None and guidance.shape != images.shape[:3]:
        raise InputError(f"guidance must be N x H x W = {images.shape[:3]}, got {guidance.shape}")
    if not any_size and (images.shape[1] % 8 or images.shape[2] % 8):
        raise InputError(f"crop size {images.shape[1]}x{images.shape[2]}: H and W must be multiples of 8")


def model_inputs(images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None, guided: bool = False):
    """uint8 NHWC images / NHW masks (non-zero = hole) / NHW guidance -> float32 NCHW arrays for the graph:
    ``(image [-1, 1], mask {0, 1}[, guidance {0, 1}])``. Guidance is passed only to ``guided`` models
    (zeros when absent)."""
    image = images.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0)
    mask = (masks[:, None] > 0).astype(np.float32)
    if not guided:
        return image, mask
    guide = np.zeros_like(mask) if guidance is None else (guidance[:, None] > 0).astype(np.float32)
    return image, mask, guide


def to_uint8(output: np.ndarray) -> np.ndarray:
    """Graph output N x 3 x H x W float in [-1, 1] -> N x H x W x 3 uint8 RGB (rounded, clipped)."""
    return np.clip(np.rint((output.transpose(0, 2, 3, 1) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def batch_buckets(max_batch: int) -> tuple[int, ...]:
    """Batch sizes a fixed-shape engine is built for: powers of two up to ``max_batch`` (and max_batch)."""
    sizes, b = [], 1
    while b < max_batch:
        sizes.append(b)
        b *= 2
    return tuple([*sizes, max_batch])


def pad_batch(n: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket >= n (n <= max(buckets))."""
    return next(b for b in buckets if b >= n)


def weights_digest(generator: nn.Module) -> str:
    """SHA-256 (hex) over the generator's state dict (names, dtypes, shapes, float32 bytes): the cache key's
    weights identity, independent of the file's metadata."""
    h = hashlib.sha256()
    for name, tensor in sorted(generator.state_dict().items()):
        t = tensor.detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}:{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def model_config_json(generator: nn.Module) -> str:
    import dataclasses
    import json

    config = getattr(generator, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return "{}"
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def default_weights() -> Path | None:
    """The generator weights shipped in ``streamfill/data`` (found through importlib.resources), or None."""
    ref = resources.files("streamfill") / "data" / DEFAULT_WEIGHTS_NAME
    return Path(str(ref)) if ref.is_file() else None


def resolve_weights(path: str | None) -> Path:
    """``path`` when given (must exist), else the shipped default weights; EngineError when neither."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise EngineError(f"weights file not found: {p}")
        return p
    found = default_weights()
    if found is None:
        raise EngineError(f"no default weights are installed (streamfill/data/{DEFAULT_WEIGHTS_NAME} is missing): "
                          "pass --weights PATH or set [engine] weights")
    return found


def cuda_available() -> bool:
    """Probe for a usable CUDA device (a named function: probing is never done at import time)."""
    return bool(torch.cuda.is_available())


def resolve_device(requested: str) -> str:
    """"auto" -> "cuda" when a GPU is usable, else "cpu"; "cuda[:N]" without a GPU (or GPU N) -> EngineError."""
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested.startswith("cuda") and not cuda_available():
        raise EngineError(f"device {requested!r} requested but no CUDA GPU is available")
    if requested.startswith("cuda:") and int(requested[5:]) >= torch.cuda.device_count():
        raise EngineError(f"device {requested!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                          f"GPU(s): cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return requested


def device_tag(device: str) -> str:
    """Cache-key device identity: "cpu" or "cuda-sm<major><minor>" (the GPU's compute capability)."""
    if not device.startswith("cuda"):
        return "cpu"
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    return f"cuda-sm{major}{minor}"


class TorchExecutor:
    """Runs a tensor callable (the graph, a compiled graph, a TensorRT module) on uint8 batches.

    On CUDA: inputs are staged in reusable pinned host buffers, copied with ``non_blocking=True`` on one
    dedicated stream, converted to float on the device, and the uint8 result comes back through a pinned
    buffer; the host waits only for that stream. On CPU it is plain tensor code.
    ``autocast``: run under ``torch.autocast`` in ``dtype`` (fp16/bf16 with fp32 weights); otherwise the
    inputs are cast to ``dtype`` (for modules already converted to it). ``channels_last`` feeds NHWC-strided
    tensors (the uint8 input is NHWC already, so this costs no copy).
    """

    def __init__(self, device: str, dtype: torch.dtype = torch.float32, autocast: bool = False,
                 channels_last: bool = False, guided: bool = False) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.dtype = dtype
        self.autocast = autocast and dtype != torch.float32
        self.channels_last = channels_last
        self.guided = guided
        self._stream = None
        self._pinned: dict[tuple, torch.Tensor] = {}

    def _stage(self, array: np.ndarray, role: str) -> torch.Tensor:
        host = torch.from_numpy(np.ascontiguousarray(array))
        if not self.cuda:
            return host
        # one buffer per input: masks and guidance have the same shape and dtype, and refilling the buffer whose
        # non-blocking copy to the device may still be running would hand the engine the other one's pixels
        key = (role, tuple(array.shape), array.dtype.str)
        buf = self._pinned.get(key)
        if buf is None:
            buf = self._pinned[key] = torch.empty(host.shape, dtype=host.dtype, pin_memory=True)
        buf.copy_(host)
        return buf.to(self.device, non_blocking=True)

    def inputs(self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None):
        """Device tensors (image, mask[, guidance]) in the graph contract, in the compute dtype."""
        compute = torch.float32 if self.autocast else self.dtype
        img = self._stage(images, "image").permute(0, 3, 1, 2).to(compute) * (1 / 127.5) - 1.0
        if not self.channels_last:
            img = img.contiguous()
        mask = (self._stage(masks, "mask")[:, None] > 0).to(compute)
        args = [img, mask]
        if self.guided:
            guide = (torch.zeros_like(mask) if guidance is None
                     else (self._stage(guidance, "guidance")[:, None] > 0).to(compute))
            args.append(guide)
        return args

    def run(self, fn, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None,
            as_float: bool = False) -> np.ndarray:
        """``fn(image, mask[, guidance]) -> N x 3 x H x W`` on the batch; returns N x H x W x 3 uint8 RGB (or,
        with ``as_float``, the raw N x 3 x H x W float32 output in [-1, 1])."""
        if self.cuda and self._stream is None:
            self._stream = torch.cuda.Stream(self.device)
        with torch.inference_mode(), (torch.cuda.stream(self._stream) if self.cuda else _null()):
            args = self.inputs(images, masks, guidance)
            if self.autocast:
                with torch.autocast(self.device.type, dtype=self.dtype):
                    y = fn(*args)
            else:
                y = fn(*args)
            if as_float:
                out = y.float()
            else:
                out = ((y.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
            if self.cuda:
                key = (tuple(out.shape), str(out.dtype), "out")
                host = self._pinned.get(key)
                if host is None:
                    host = self._pinned[key] = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
                host.copy_(out, non_blocking=True)
                self._stream.synchronize()
                return host.numpy().copy()
            return out.contiguous().numpy()


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None
