"""TensorRT backend (engine ``tensorrt``) through torch-tensorrt's dynamo path. CUDA only.

1. :func:`export_for_tensorrt`: ``torch.export`` of the inference graph with a dynamic batch (1..max_batch)
   and a dynamic square size spanning the shape buckets (min..max of ``crop.sizes``, multiples of 8). For
   fp16/bf16 the generator is converted to that dtype; its contextual attention casts to float32 explicitly
   (streamfill/model/attention.py), and the engine is built with ``use_explicit_typing=True`` so TensorRT keeps
   those float32 ops (scores and softmax overflow in fp16 otherwise).
2. :func:`build_tensorrt`: ``torch_tensorrt.dynamo.compile`` + ``torch_tensorrt.save`` into the engine cache.
3. :func:`load_tensorrt`: validate the cache entry (rebuild when stale/corrupt), ``torch_tensorrt.load``.

``torch_tensorrt`` is imported only inside these functions, so this module imports on any machine; step 1
runs (and is tested) on CPU.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamfill.backends.cache import EngineCache, EngineKey
from streamfill.backends.neural import (
    DTYPES,
    BackendOptions,
    InpaintGraph,
    TorchExecutor,
    check_batch,
    device_tag,
    model_config_json,
    version,
    weights_digest,
)
from streamfill.errors import EngineError


def _example(size: int, batch: int, dtype: torch.dtype, device: str, guided: bool):
    image = torch.zeros(batch, 3, size, size, dtype=dtype, device=device)
    mask = torch.zeros(batch, 1, size, size, dtype=dtype, device=device)
    mask[:, :, size // 4: size // 2, size // 4: size // 2] = 1
    return (image, mask, torch.zeros_like(mask)) if guided else (image, mask)


def export_for_tensorrt(generator: nn.Module, sizes: tuple[int, ...], max_batch: int, precision: str = "fp16",
                        device: str = "cpu") -> torch.export.ExportedProgram:
    """``torch.export`` the inference graph in ``precision`` on ``device`` with dynamic batch 1..max_batch and
    a dynamic square size min(sizes)..max(sizes) (multiple of 8). Inputs image N x 3 x S x S in [-1, 1],
    mask N x 1 x S x S (1 = hole) in the precision's dtype."""
    from torch.export import Dim

    dtype = DTYPES[precision]
    graph = InpaintGraph(copy.deepcopy(generator).to(device, dtype).eval()).eval()
    lo, hi = min(sizes), max(sizes)
    batch = Dim("batch", min=1, max=max(2, max_batch))
    side = 8 * Dim("side8", min=lo // 8, max=max(hi // 8, lo // 8 + 1))
    spec = {0: batch, 2: side, 3: side}
    args = _example(lo, 2, dtype, device, graph.guided)
    try:
        return torch.export.export(graph, args, dynamic_shapes=tuple(spec for _ in args))
    except Exception as exc:  # noqa: BLE001 - torch.export raises many internal types
        raise EngineError(f"torch.export for TensorRT failed: {type(exc).__name__}: {exc}") from exc


def _torch_tensorrt():
    try:
        import torch_tensorrt
    except Exception as exc:  # noqa: BLE001 - a build for another torch or CUDA fails with OSError, RuntimeError...
        raise EngineError("engine tensorrt needs torch-tensorrt: pip install 'streamfill[tensorrt]' (matching "
                          f"your torch {torch.__version__}) - {type(exc).__name__}: {exc}") from None
    return torch_tensorrt


def tensorrt_key(generator: nn.Module, options: BackendOptions, digest: str | None = None) -> EngineKey:
    return EngineKey(
        backend="tensorrt", weights=digest or weights_digest(generator),
        bucket=f"b1-{options.max_batch}_s{min(options.sizes)}-{max(options.sizes)}", precision=options.precision,
        versions={"torch": torch.__version__, "torch_tensorrt": version("torch-tensorrt"),
                  "tensorrt": version("tensorrt")},
        device=device_tag(options.device), extra={"model": model_config_json(generator)},
    )


def build_tensorrt(generator: nn.Module, options: BackendOptions, path: str | os.PathLike) -> Path:
    """Compile the exported graph with TensorRT (dynamic batch and size ranges, opt = the largest bucket at
    batch 1..max) and save it with ``torch_tensorrt.save`` to ``path``."""
    trt = _torch_tensorrt()
    dtype = DTYPES[options.precision]
    program = export_for_tensorrt(generator, options.sizes, options.max_batch, options.precision, options.device)
    guided = bool(getattr(getattr(generator, "config", None), "guidance", False))
    lo, hi = min(options.sizes), max(options.sizes)
    b = options.max_batch
    inputs = [trt.Input(min_shape=(1, c, lo, lo), opt_shape=(b, c, hi, hi), max_shape=(b, c, hi, hi), dtype=dtype)
              for c in ((3, 1, 1) if guided else (3, 1))]
    try:
        module = trt.dynamo.compile(program, arg_inputs=inputs, use_explicit_typing=True,
                                    device=torch.device(options.device), min_block_size=1)
        example = _example(hi, 1, dtype, options.device, guided)
        trt.save(module, str(path), output_format="exported_program", arg_inputs=list(example))
    except EngineError:
        raise
    except Exception as exc:  # noqa: BLE001 - TensorRT raises many internal types
        raise EngineError(f"TensorRT build failed: {type(exc).__name__}: {exc}") from exc
    return Path(path)


class TensorRTInpainter:
    """Inpainter over a loaded TensorRT module (``fn(image, mask[, guidance]) -> composite`` in the engine's
    dtype). ``inpaint`` takes N x S x S x 3 uint8 RGB and N x S x S uint8 masks (non-zero = hole), S within the
    built size range, N any (chunks of at most ``max_batch``); returns N x S x S x 3 uint8 RGB."""

    name = "tensorrt"

    def __init__(self, module, device: str = "cuda", precision: str = "fp16", max_batch: int = 4,
                 guided: bool = False) -> None:
        self.module = module
        self.max_batch = max_batch
        self.executor = TorchExecutor(device, DTYPES[precision], autocast=False, guided=guided)

    def _run(self, images, masks, guidance, as_float):
        check_batch(images, masks, guidance)
        outs = [self.executor.run(self.module, images[s:s + self.max_batch], masks[s:s + self.max_batch],
                                  None if guidance is None else guidance[s:s + self.max_batch], as_float)
                for s in range(0, images.shape[0], self.max_batch)]
        return np.concatenate(outs)

    def run_float(self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        return self._run(images, masks, guidance, True)

    def inpaint(self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        return self._run(images, masks, guidance, False)


def load_tensorrt(generator: nn.Module, options: BackendOptions, cache: EngineCache) -> tuple[TensorRTInpainter, list]:
    """Build (or reuse from ``cache``) the TensorRT program for ``options`` and load it."""
    if not options.device.startswith("cuda"):
        raise EngineError(f"engine tensorrt needs a CUDA device (device = {options.device})")
    if options.precision not in ("fp16", "bf16", "fp32"):
        raise EngineError(f"engine tensorrt: unknown precision {options.precision}")
    trt = _torch_tensorrt()
    key = tensorrt_key(generator, options)
    entry = cache.get_or_build(key, ".ep", lambda p: build_tensorrt(generator, options, p), rebuild=options.rebuild)
    try:
        module = trt.load(str(entry.path)).module()
    except Exception:  # noqa: BLE001 - checksum fine but unloadable (e.g. another TensorRT): rebuild once
        entry = cache.get_or_build(key, ".ep", lambda p: build_tensorrt(generator, options, p), rebuild=True,
                                   why="TensorRT could not load the cached file")
        try:
            module = trt.load(str(entry.path)).module()
        except Exception as exc:  # noqa: BLE001 - TensorRT raises many internal types
            raise EngineError(f"TensorRT cannot load the engine it just built ({entry.path}): "
                              f"{type(exc).__name__}: {exc}") from exc
    guided = bool(getattr(getattr(generator, "config", None), "guidance", False))
    return TensorRTInpainter(module, options.device, options.precision, options.max_batch, guided), [entry]
