"""Widen a trained generator to a larger ``cnum`` without forgetting what it learned (Net2WiderNet,
Chen et al., "Net2Net", ICLR 2016).

Every gated layer gets more output channels; each new channel is a copy of an existing one (its feature and
its gate half together), and the next layer divides the input weights of a copied channel among its copies,
so the sum it reads is unchanged. Convolutions, ELU/ReLU gates, nearest upsampling and the concatenations
of the two refinement branches are preserved exactly (the coarse result is identical). The contextual
attention is preserved only approximately: its cosine similarity counts a copied channel once per copy.
A little noise on the copies' incoming weights (``noise``) lets training pull the copies apart.

Used by training (``train.init_weights`` naming a narrower file than ``model.cnum``): a CPU can then train a
wider model from where the narrow one stopped instead of from scratch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from streamfill.model.gated import GatedConv2d, GatedUpConv2d
from streamfill.model.generator import Generator


def _conv_of(layer: torch.nn.Module) -> GatedConv2d:
    return layer.conv if isinstance(layer, GatedUpConv2d) else layer


def _out_map(old: int, new: int, rng: np.random.Generator) -> np.ndarray:
    """New channel -> old channel: the old channels in order, then random copies (each old channel copied at
    most once more than any other)."""
    extra = []
    while len(extra) < new - old:
        extra += list(rng.permutation(old)[: new - old - len(extra)])
    return np.concatenate([np.arange(old), np.asarray(extra, dtype=np.int64)]).astype(np.int64)


def _copy_layer(small: GatedConv2d, big: GatedConv2d, in_map: np.ndarray, out_map: np.ndarray,
                noise: float, rng: np.random.Generator) -> None:
    ws, bs = small.conv.weight.detach(), small.conv.bias.detach()
    counts = np.bincount(in_map, minlength=ws.shape[1]).astype(np.float32)
    cols = torch.as_tensor(in_map)
    scale = torch.as_tensor(1.0 / counts[in_map]).view(1, -1, 1, 1)
    if small.activation is None:
        rows = torch.as_tensor(out_map)
    else:  # feature half, then the gate half, each mapped the same way
        rows = torch.as_tensor(np.concatenate([out_map, out_map + small.out_channels]))
    w = ws[rows][:, cols] * scale
    if noise > 0 and small.activation is not None:
        copies = np.flatnonzero(np.arange(len(out_map)) >= small.out_channels)
        copies = np.concatenate([copies, copies + len(out_map)])
        if len(copies):
            jitter = torch.as_tensor(rng.standard_normal((len(copies),) + tuple(w.shape[1:])), dtype=w.dtype)
            w[torch.as_tensor(copies)] += noise * float(ws.std()) * jitter
    with torch.no_grad():
        big.conv.weight.copy_(w)
        big.conv.bias.copy_(bs[rows])


def widen_generator(small: Generator, cnum: int, noise: float = 0.0, seed: int = 0) -> Generator:
    """A new :class:`Generator` of width ``cnum`` (>= ``small``'s, same other settings) that computes what
    ``small`` computes (exactly up to the attention, see the module docstring); ``noise`` is the standard
    deviation of the jitter added to copied channels' weights, relative to each layer's weight spread."""
    old = small.config.cnum
    if cnum < old:
        raise ValueError(f"cnum {cnum} is narrower than the generator's {old}")
    big = Generator(replace(small.config, cnum=cnum))
    rng = np.random.default_rng(seed)  # which channels are copied
    jitter_rng = np.random.default_rng([seed, 1])  # the noise: the same copies with or without it
    maps: dict[str, np.ndarray] = {}
    start = {"coarse": np.arange(small.in_channels), "conv_branch": np.arange(3), "attention_encoder": np.arange(3)}
    for branch in ("coarse", "conv_branch", "attention_encoder", "attention_decoder", "decoder"):
        if branch == "attention_decoder":  # the attention keeps each channel: it reads pmconv6's channels
            in_map = maps["attention_encoder"]
        elif branch == "decoder":  # cat(conv branch, attention branch)
            first = small.conv_branch[-1].out_channels
            in_map = np.concatenate([maps["conv_branch"], maps["attention_decoder"] + first])
        else:
            in_map = start[branch]
        for s_layer, b_layer in zip(getattr(small, branch), getattr(big, branch), strict=True):
            s_conv, b_conv = _conv_of(s_layer), _conv_of(b_layer)
            out_map = (np.arange(3) if s_conv.activation is None
                       else _out_map(s_conv.out_channels, b_conv.out_channels, rng))
            _copy_layer(s_conv, b_conv, in_map, out_map, noise, jitter_rng)
            in_map = out_map
        maps[branch] = in_map
    return big.train(small.training)
