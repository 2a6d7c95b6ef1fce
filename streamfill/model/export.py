"""Export the generator for deployment: ``torch.export`` (the graph TensorRT's dynamo path consumes) and ONNX.

Both take the generator's tensor contract (image N x 3 x H x W RGB in [-1, 1], mask N x 1 x H x W with 1 =
hole, plus guidance N x 1 x H x W for guidance models) and return ``(coarse, refined)``. Batch size and H/W
are dynamic; H and W must be multiples of 8.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from streamfill.errors import EngineError
from streamfill.model.generator import Generator


class _Inference(nn.Module):
    """Positional-only wrapper (image, mask[, guidance]) -> (coarse, refined) for exporters."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, mask: torch.Tensor, guidance: torch.Tensor | None = None):
        return self.generator(image, mask, guidance)


def example_inputs(generator: Generator, batch: int = 1, height: int = 128, width: int = 128):
    """Random example inputs (image, mask[, guidance]) in the generator's contract, on its device/dtype."""
    p = next(generator.parameters())
    image = torch.rand(batch, 3, height, width, device=p.device, dtype=p.dtype) * 2 - 1
    mask = torch.zeros(batch, 1, height, width, device=p.device, dtype=p.dtype)
    mask[:, :, height // 4: height // 2, width // 4: width // 2] = 1
    if generator.config.guidance:
        return image, mask, torch.zeros_like(mask)
    return image, mask


def _dynamic_shapes(generator: Generator, max_batch: int, max_size: int):
    from torch.export import Dim

    batch = Dim("batch", min=1, max=max_batch)
    h = 8 * Dim("h8", min=2, max=max_size // 8)
    w = 8 * Dim("w8", min=2, max=max_size // 8)
    spec = {0: batch, 2: h, 3: w}
    shapes = [spec, spec]
    if generator.config.guidance:
        shapes.append(spec)
    return tuple(shapes)


def export_program(
    generator: Generator, batch: int = 2, size: int = 128, max_batch: int = 64, max_size: int = 2048
) -> torch.export.ExportedProgram:
    """``torch.export`` the generator (eval mode) with dynamic batch (1..max_batch) and dynamic H, W
    (multiples of 8, 16..max_size), traced at ``batch`` x ``size`` x ``size``."""
    generator = generator.eval()
    args = example_inputs(generator, batch, size, size)
    try:
        return torch.export.export(
            _Inference(generator).eval(), args, dynamic_shapes=_dynamic_shapes(generator, max_batch, max_size)
        )
    except Exception as exc:  # noqa: BLE001 - exporters raise many internal types
        raise EngineError(f"torch.export of the generator failed: {type(exc).__name__}: {exc}") from exc


def export_onnx(
    generator: Generator, path: str | Path, batch: int = 2, size: int = 128, opset: int = 18,
    max_batch: int = 64, max_size: int = 2048,
) -> Path:
    """Write the generator as ONNX to ``path`` with dynamic batch and H/W (inputs ``image``, ``mask``
    [, ``guidance``]; outputs ``coarse``, ``refined``). Returns the path."""
    generator = generator.eval()
    args = example_inputs(generator, batch, size, size)
    names = ["image", "mask", "guidance"][: len(args)]
    path = Path(path)
    try:
        program = torch.onnx.export(
            _Inference(generator).eval(), args, dynamo=True, opset_version=opset, verbose=False,
            input_names=names, output_names=["coarse", "refined"],
            dynamic_shapes=_dynamic_shapes(generator, max_batch, max_size),
        )
        program.save(str(path))
    except Exception as exc:  # noqa: BLE001 - exporters raise many internal types
        raise EngineError(f"ONNX export of the generator failed: {type(exc).__name__}: {exc}") from exc
    return path
