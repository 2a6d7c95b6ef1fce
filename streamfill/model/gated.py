"""Gated convolution layers of DeepFill v2 and the resizing helpers they need.

All tensors are N x C x H x W. Padding follows TensorFlow's ``"SAME"`` rule, which for a stride-2 layer on an
even-sized input pads *asymmetrically* (3x3: nothing above/left, one row/column below/right). The official
weights were trained with that padding, so it is reproduced exactly. Inputs of stride-s layers must have
H and W divisible by s (the generator guarantees it by requiring multiples of 8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("elu", "relu", None)


def same_padding(kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zero padding of TF "SAME" for an input whose size is divisible by ``stride``."""
    effective = dilation * (kernel_size - 1) + 1
    total = max(effective - stride, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """Zero-pad N x C x H x W exactly as TF "SAME" would for this layer, for any H and W (eager use)."""
    effective = dilation * (kernel_size - 1) + 1
    pads = []
    for size in (x.shape[3], x.shape[2]):
        out = -(-size // stride)
        total = max((out - 1) * stride + effective - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class GatedConv2d(nn.Module):
    """One convolution with ``2 * out_channels`` outputs split into a feature half and a gate half.

    Output = ``act(feature) * sigmoid(gate)`` (``act`` = ELU, or ReLU where the official layer uses it).
    With ``activation=None`` the layer is a plain convolution with ``out_channels`` outputs and no gate
    (the RGB output layers). Weights live in ``self.conv`` (feature channels first, then gate channels).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        activation: str | None = "elu",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation = {activation!r}: must be one of {ACTIVATIONS}")
        self.out_channels = out_channels
        self.activation = activation
        self.stride = stride
        before, after = same_padding(kernel_size, stride, dilation)
        self.symmetric = before == after
        self.pad = (before, after, before, after)  # F.pad order: left, right, top, bottom
        conv_out = out_channels if activation is None else 2 * out_channels
        self.conv = nn.Conv2d(
            in_channels, conv_out, kernel_size, stride=stride, dilation=dilation,
            padding=before if self.symmetric else 0,
        )
        # TensorFlow's defaults for tf.layers.conv2d, as in the official training code.
        nn.init.xavier_uniform_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        if not self.symmetric:
            x = F.pad(x, self.pad)
        return self.conv(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._conv(x)
        if self.activation is None:
            return y
        feature, gate = y.split(self.out_channels, dim=1)
        feature = F.elu(feature) if self.activation == "elu" else F.relu(feature)
        return feature * torch.sigmoid(gate)

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """The gate values ``sigmoid(gate half)`` in (0, 1), N x out_channels x H' x W' (for inspection)."""
        if self.activation is None:
            raise ValueError("an output layer (activation=None) has no gate")
        return torch.sigmoid(self._conv(x)[:, self.out_channels:])


class GatedUpConv2d(nn.Module):
    """Gated upsampling: 2x nearest-neighbour resize, then a 3x3 gated convolution (``self.conv``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _tf_nearest_index(in_size, out_size, device) -> torch.Tensor:
    """Source indices of TF1 ``resize_nearest_neighbor(align_corners=True)``: roundf(i * (in-1)/(out-1)),
    computed in float32 like TensorFlow."""
    pos = torch.arange(out_size, device=device, dtype=torch.float32)
    scale = (in_size - 1) / torch.sym_max(out_size - 1, 1)
    v = pos * scale
    r = torch.floor(v)
    idx = r + (v - r >= 0.5).to(torch.float32)  # roundf: halves away from zero
    return idx.to(torch.int64).clamp(max=in_size - 1)


def downsample_nearest(x: torch.Tensor, factor: int, mode: str = "align_corners") -> torch.Tensor:
    """Nearest-neighbour downsampling of N x C x H x W by an integer ``factor`` (H, W divisible by it).

    ``mode="align_corners"`` picks the pixels the official TensorFlow code picks
    (``tf.image.resize_nearest_neighbor(..., align_corners=True)``); ``mode="nearest"`` picks every
    ``factor``-th pixel starting at 0 (PyTorch's ``F.interpolate(mode="nearest")``).
    """
    if factor == 1:
        return x
    if mode == "nearest":
        return x[:, :, ::factor, ::factor]
    if mode != "align_corners":
        raise ValueError(f"mode = {mode!r}: must be align_corners or nearest")
    h, w = x.shape[-2], x.shape[-1]
    rows = _tf_nearest_index(h, h // factor, x.device)
    cols = _tf_nearest_index(w, w // factor, x.device)
    return x.index_select(2, rows).index_select(3, cols)
