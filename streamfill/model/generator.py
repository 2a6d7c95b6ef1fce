"""The DeepFill v2 generator (Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019).

Layer names follow the official TensorFlow code (``conv1`` ... ``allconv17``) inside five branches:
``coarse`` (stage 1), ``conv_branch`` (stage-2 dilated "hallucination" branch), ``attention_encoder`` /
``attention_decoder`` (stage-2 contextual-attention branch, before and after the attention layer) and
``decoder`` (stage-2 decoder after concatenating the two branches).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from streamfill.config import ModelConfig
from streamfill.errors import InputError
from streamfill.model.attention import ContextualAttention
from streamfill.model.gated import GatedConv2d, GatedUpConv2d, downsample_nearest
from streamfill.model.prefill import pushpull

# (name, kind, out width as a multiple of cnum/4, kernel, stride, dilation, activation); kind "up" = gated
# upsampling, "out" = plain RGB output convolution. Widths: 2 -> cnum/2, 4 -> cnum, 8 -> 2*cnum.
_Row = tuple[str, str, int, int, int, int, str | None]
COARSE: list[_Row] = [
    ("conv1", "conv", 2, 5, 1, 1, "elu"),
    ("conv2_downsample", "conv", 4, 3, 2, 1, "elu"),
    ("conv3", "conv", 4, 3, 1, 1, "elu"),
    ("conv4_downsample", "conv", 8, 3, 2, 1, "elu"),
    ("conv5", "conv", 8, 3, 1, 1, "elu"),
    ("conv6", "conv", 8, 3, 1, 1, "elu"),
    ("conv7_atrous", "conv", 8, 3, 1, 2, "elu"),
    ("conv8_atrous", "conv", 8, 3, 1, 4, "elu"),
    ("conv9_atrous", "conv", 8, 3, 1, 8, "elu"),
    ("conv10_atrous", "conv", 8, 3, 1, 16, "elu"),
    ("conv11", "conv", 8, 3, 1, 1, "elu"),
    ("conv12", "conv", 8, 3, 1, 1, "elu"),
    ("conv13_upsample", "up", 4, 3, 1, 1, "elu"),
    ("conv14", "conv", 4, 3, 1, 1, "elu"),
    ("conv15_upsample", "up", 2, 3, 1, 1, "elu"),
    ("conv16", "conv", 1, 3, 1, 1, "elu"),
    ("conv17", "out", 0, 3, 1, 1, None),
]
CONV_BRANCH: list[_Row] = [
    ("xconv1", "conv", 2, 5, 1, 1, "elu"),
    ("xconv2_downsample", "conv", 2, 3, 2, 1, "elu"),
    ("xconv3", "conv", 4, 3, 1, 1, "elu"),
    ("xconv4_downsample", "conv", 4, 3, 2, 1, "elu"),
    ("xconv5", "conv", 8, 3, 1, 1, "elu"),
    ("xconv6", "conv", 8, 3, 1, 1, "elu"),
    ("xconv7_atrous", "conv", 8, 3, 1, 2, "elu"),
    ("xconv8_atrous", "conv", 8, 3, 1, 4, "elu"),
    ("xconv9_atrous", "conv", 8, 3, 1, 8, "elu"),
    ("xconv10_atrous", "conv", 8, 3, 1, 16, "elu"),
]
ATTENTION_ENCODER: list[_Row] = [
    ("pmconv1", "conv", 2, 5, 1, 1, "elu"),
    ("pmconv2_downsample", "conv", 2, 3, 2, 1, "elu"),
    ("pmconv3", "conv", 4, 3, 1, 1, "elu"),
    ("pmconv4_downsample", "conv", 8, 3, 2, 1, "elu"),
    ("pmconv5", "conv", 8, 3, 1, 1, "elu"),
    ("pmconv6", "conv", 8, 3, 1, 1, "relu"),
]
ATTENTION_DECODER: list[_Row] = [
    ("pmconv9", "conv", 8, 3, 1, 1, "elu"),
    ("pmconv10", "conv", 8, 3, 1, 1, "elu"),
]
DECODER: list[_Row] = [
    ("allconv11", "conv", 8, 3, 1, 1, "elu"),
    ("allconv12", "conv", 8, 3, 1, 1, "elu"),
    ("allconv13_upsample", "up", 4, 3, 1, 1, "elu"),
    ("allconv14", "conv", 4, 3, 1, 1, "elu"),
    ("allconv15_upsample", "up", 2, 3, 1, 1, "elu"),
    ("allconv16", "conv", 1, 3, 1, 1, "elu"),
    ("allconv17", "out", 0, 3, 1, 1, None),
]
BRANCHES: dict[str, list[_Row]] = {
    "coarse": COARSE,
    "conv_branch": CONV_BRANCH,
    "attention_encoder": ATTENTION_ENCODER,
    "attention_decoder": ATTENTION_DECODER,
    "decoder": DECODER,
}


def _build(rows: list[_Row], in_channels: int, cnum: int) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    cin = in_channels
    for name, kind, width, k, stride, dilation, act in rows:
        cout = 3 if kind == "out" else width * cnum // 4
        if kind == "up":
            layers[name] = GatedUpConv2d(cin, cout)
        else:
            layers[name] = GatedConv2d(cin, cout, k, stride=stride, dilation=dilation, activation=act)
        cin = cout
    return nn.Sequential(layers)


def composite(output: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``output`` inside the hole, ``image`` outside: N x 3 x H x W, mask N x 1 x H x W with 1 = hole."""
    return output * mask + image * (1.0 - mask)


_ATANH_LIMIT = 0.999  # atanh(0.999) = 3.8: a start value of +-1 stays finite and trainable


def _residual(start: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``tanh(atanh(start) + delta)``: ``start`` (in [-1, 1]) where ``delta`` is 0, always inside (-1, 1)."""
    return torch.tanh(torch.atanh(start.clamp(-_ATANH_LIMIT, _ATANH_LIMIT)) + delta)


class Generator(nn.Module):
    """DeepFill v2 two-stage generator: coarse network, then refinement with contextual attention.

    ``Generator(config)`` builds the network described by :class:`streamfill.config.ModelConfig`
    (default: the official width ``cnum = 48``, 4,052,478 parameters, 5 input channels).

    ``forward(image, mask, guidance=None, return_offsets=False) -> (coarse, refined[, offsets])``

    * ``image``: N x 3 x H x W float, RGB in [-1, 1]; content inside the hole is ignored (zeroed here).
    * ``mask``: N x 1 x H x W, 1 = hole, 0 = known (binary); H and W multiples of 8.
    * ``guidance``: optional N x 1 x H x W (e.g. a sketch/edge map in [0, 1]), used only inside the hole;
      only for ``config.guidance = True`` models (which read zeros when it is ``None``); giving it to a model
      without a guidance channel raises InputError.
    * returns ``coarse`` and ``refined``, N x 3 x H x W RGB in [-1, 1] (tanh) over the whole frame; use
      :func:`composite` to keep the known pixels. ``offsets`` (N x 2 x H/8 x W/8 int64) are the attention's
      best-match displacements at 1/8 resolution, for visualisation.

    The network input is ``[image with hole zeroed, (guidance * mask), ones, mask]`` as in the official code;
    stage 2 reads only the RGB composite of the coarse result.

    With ``config.prefill = "pushpull"`` (streamfill's own weights; not in the paper) the hole is first filled
    by :func:`streamfill.model.prefill.pushpull` instead of zeros, and both stages predict a residual on top
    of what they are given: ``coarse = tanh(atanh(prefilled) + coarse_net(...))`` and ``refined =
    tanh(atanh(coarse composite) + refine_net(...))``. With zeroed output layers such a network returns the
    push-pull fill, a start as good as Telea that training only has to improve. ``start`` (N x 3 x H x W,
    prefill models only) replaces the push-pull start inside the hole, e.g. a sketch-sided fill
    (:func:`streamfill.model.prefill.sided_pushpull`).
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ModelConfig()
        cnum = self.config.cnum
        self.in_channels = 6 if self.config.guidance else 5
        self.coarse = _build(COARSE, self.in_channels, cnum)
        self.conv_branch = _build(CONV_BRANCH, 3, cnum)
        self.attention_encoder = _build(ATTENTION_ENCODER, 3, cnum)
        self.attention = ContextualAttention(
            patch_size=3, rate=2, fuse=self.config.attention_fuse, softmax_scale=self.config.softmax_scale,
            downsampling=self.config.attention_downsampling,
        )
        self.attention_decoder = _build(ATTENTION_DECODER, 2 * cnum, cnum)
        self.decoder = _build(DECODER, 4 * cnum, cnum)

    def output_layers(self) -> list[GatedConv2d]:
        """The two RGB output convolutions (``coarse.conv17``, ``decoder.allconv17``)."""
        return [self.coarse.conv17, self.decoder.allconv17]

    def _check(self, image: torch.Tensor, mask: torch.Tensor, guidance: torch.Tensor | None) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise InputError(f"image has shape {tuple(image.shape)}: expected N x 3 x H x W")
        if mask.dim() != 4 or mask.shape[1] != 1:
            raise InputError(f"mask has shape {tuple(mask.shape)}: expected N x 1 x H x W")
        if image.shape[0] != mask.shape[0] or image.shape[2:] != mask.shape[2:]:
            raise InputError(f"mask shape {tuple(mask.shape)} does not fit image shape {tuple(image.shape)}")
        if image.shape[2] % 8 or image.shape[3] % 8:
            raise InputError(f"image size {image.shape[2]}x{image.shape[3]}: H and W must be multiples of 8")
        if guidance is not None and not self.config.guidance:
            raise InputError("guidance given, but this model has no guidance channel (model.guidance = false)")
        if guidance is not None and tuple(guidance.shape) != tuple(mask.shape):
            raise InputError(f"guidance has shape {tuple(guidance.shape)}: expected {tuple(mask.shape)}")

    def forward(self, image: torch.Tensor, mask: torch.Tensor, guidance: torch.Tensor | None = None,
                return_offsets: bool = False, start: torch.Tensor | None = None):
        self._check(image, mask, guidance)
        if start is not None and (self.config.prefill == "none" or tuple(start.shape) != tuple(image.shape)):
            raise InputError(f"start {tuple(start.shape)} needs a prefill model and the image's shape "
                             f"{tuple(image.shape)}")
        mask = mask.to(image.dtype)
        known = 1.0 - mask
        incomplete = image * known
        residual = self.config.prefill == "pushpull"
        if not residual:
            start = incomplete
        elif start is None:
            start = pushpull(image, known)
        else:
            start = start.to(image.dtype) * mask + incomplete
        parts = [start]
        if self.config.guidance:
            parts.append(guidance.to(image.dtype) * mask if guidance is not None else torch.zeros_like(mask))
        parts += [torch.ones_like(mask), mask]
        coarse = self.coarse(torch.cat(parts, dim=1))
        coarse = _residual(start, coarse) if residual else torch.tanh(coarse)

        x = coarse * mask + incomplete * known  # stage 2 input: coarse result pasted into the known pixels
        hallucinated = self.conv_branch(x)
        a = self.attention_encoder(x)
        mask_small = downsample_nearest(mask, 4, self.config.attention_downsampling)
        a, offsets = self.attention(a, a, mask_small, return_offsets=True)
        a = self.attention_decoder(a)
        refined = self.decoder(torch.cat([hallucinated, a], dim=1))
        refined = _residual(x, refined) if residual else torch.tanh(refined)
        if return_offsets:
            return coarse, refined, offsets
        return coarse, refined
