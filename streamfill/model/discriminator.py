"""SN-PatchGAN discriminator of DeepFill v2.

Six 5x5 stride-2 convolutions (widths cnum x 1, 2, 4, 4, 4, 4; official cnum = 64) with spectral
normalisation (one power iteration per call, as the official code) and LeakyReLU(0.2) after every layer,
TF "SAME" padding. The output is the flattened N x (4*cnum * H/64 * W/64) patch feature map that the
hinge loss averages.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from streamfill.config import ModelConfig
from streamfill.model.gated import pad_same

DISCRIMINATOR_WIDTHS = (1, 2, 4, 4, 4, 4)  # multiples of cnum, layers conv1 ... conv6


def discriminator_input(image: torch.Tensor, mask: torch.Tensor, guidance: torch.Tensor | None = None):
    """The discriminator's input, N x (4 or 5) x H x W: RGB image in [-1, 1], optional guidance, mask (1 = hole),
    in the official channel order ``[image, guidance, mask]``."""
    parts = [image] + ([guidance.to(image.dtype)] if guidance is not None else []) + [mask.to(image.dtype)]
    return torch.cat(parts, dim=1)


class Discriminator(nn.Module):
    """SN-PatchGAN: ``Discriminator(in_channels=4, cnum=64)``; ``forward(x)`` with x N x in_channels x H x W
    (see :func:`discriminator_input`) returns N x F features, F = 4*cnum * ceil(H/64) * ceil(W/64)."""

    def __init__(self, in_channels: int = 4, cnum: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cnum = cnum
        layers = []
        cin = in_channels
        for mult in DISCRIMINATOR_WIDTHS:
            conv = nn.Conv2d(cin, mult * cnum, 5, stride=2)
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
            layers.append(spectral_norm(conv))
            cin = mult * cnum
        self.convs = nn.ModuleList(layers)

    @classmethod
    def for_config(cls, config: ModelConfig, cnum: int = 64) -> Discriminator:
        """The discriminator matching a generator config: 4 input channels, 5 with guidance."""
        return cls(in_channels=5 if config.guidance else 4, cnum=cnum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.leaky_relu(conv(pad_same(x, 5, 2)), 0.2)
        return x.flatten(1)
