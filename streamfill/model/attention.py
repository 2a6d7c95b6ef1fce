"""Contextual attention (Yu et al., 2018), batched and export-friendly.

Each position of the foreground feature map borrows features from background patches outside the hole:
3x3 patches are matched at half resolution (``rate = 2``) by cosine similarity against L2-normalised
background patches, scores are optionally propagated with a 3x3 identity kernel ("fusion"), passed through
a softmax with temperature ``softmax_scale`` (patches touching the hole are excluded), and the matching 4x4
raw patches (stride 2, full feature resolution) are pasted back and averaged.

Deliberate departures from the official TensorFlow code:

* every sample of a batch uses its own mask (the official code uses the first sample's mask for all);
* scores, softmax and pasting are computed in float32 even under fp16/bf16 autocast or on half tensors
  (the result is cast back to the input dtype), because the scaled scores overflow in fp16.

Everything is written with pads, slices, batched matmuls and reshapes - no loop over samples or positions
and no data-dependent Python control flow - so ``torch.export`` with dynamic shapes and ONNX export work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from streamfill.model.gated import downsample_nearest


def extract_patches(x: torch.Tensor, size: int, stride: int, pad: tuple[int, int]) -> torch.Tensor:
    """All ``size`` x ``size`` patches of N x C x H x W, zero-padded by ``pad`` = (before, after) on both axes.

    Returns N x (C*size*size) x L, the channel axis ordered (c, i, j) and L positions in row-major order
    (the layout of ``F.unfold``).
    """
    n, c = x.shape[0], x.shape[1]
    xp = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    oh = (x.shape[2] + pad[0] + pad[1] - size) // stride + 1
    ow = (x.shape[3] + pad[0] + pad[1] - size) // stride + 1
    taps = [
        xp[:, :, i: i + stride * (oh - 1) + 1: stride, j: j + stride * (ow - 1) + 1: stride]
        for i in range(size)
        for j in range(size)
    ]
    return torch.stack(taps, dim=2).reshape(n, c * size * size, oh * ow)


def fold_patches(
    cols: torch.Tensor, out_hw: tuple, grid_hw: tuple, size: int, stride: int, pad: tuple[int, int]
) -> torch.Tensor:
    """Adjoint of :func:`extract_patches` (sums overlapping patches), i.e. a transposed convolution.

    ``cols``: N x (C*size*size) x L with L = grid_h * grid_w; returns N x C x out_h x out_w. Requires
    ``size % stride == 0`` and ``stride * (grid - 1) + size == out + pad[0] + pad[1]`` on both axes.
    """
    n = cols.shape[0]
    gh, gw = grid_hw
    c = cols.shape[1] // (size * size)
    p = cols.reshape(n, c, size, size, gh, gw)
    q = size // stride
    phases = []
    for a in range(stride):
        row = []
        for b in range(stride):
            acc = None
            for qi in range(q):
                for qj in range(q):
                    tap = F.pad(p[:, :, stride * qi + a, stride * qj + b], (qj, q - 1 - qj, qi, q - 1 - qi))
                    acc = tap if acc is None else acc + tap
            row.append(acc)  # N x C x (gh+q-1) x (gw+q-1)
        phases.append(torch.stack(row, dim=-1))  # ... x stride(b)
    full = torch.stack(phases, dim=3)  # N x C x (gh+q-1) x stride(a) x (gw+q-1) x stride(b)
    full = full.reshape(n, c, stride * (gh + q - 1), stride * (gw + q - 1))
    return full[:, :, pad[0]: pad[0] + out_hw[0], pad[0]: pad[0] + out_hw[1]]


def _fuse_diagonal(s: torch.Tensor) -> torch.Tensor:
    """3x3 identity-kernel correlation over the last two axes: s[p-1,q-1] + s[p,q] + s[p+1,q+1] (zeros outside)."""
    sp = F.pad(s, (1, 1, 1, 1))
    return sp[:, :-2, :-2] + sp[:, 1:-1, 1:-1] + sp[:, 2:, 2:]


def _fuse(scores: torch.Tensor, h, w) -> torch.Tensor:
    """Official attention fusion on N x L x L scores (L = h*w): once in row-major, once in column-major order."""
    n, L = scores.shape[0], scores.shape[1]
    s = _fuse_diagonal(scores)
    s = s.reshape(n, h, w, h, w).permute(0, 2, 1, 4, 3).reshape(n, L, L)
    s = _fuse_diagonal(s)
    return s.reshape(n, w, h, w, h).permute(0, 2, 1, 4, 3).reshape(n, L, L)


class ContextualAttention(nn.Module):
    """Contextual attention layer (no parameters).

    ``forward(f, b, mask=None, return_offsets=False)``:

    * ``f``: foreground features N x C x H x W (any float dtype); ``b``: background features, same shape
      (DeepFill v2 passes the same tensor twice); H and W even.
    * ``mask``: N x 1 x H x W at the feature resolution, 1 = hole, 0 = known; background patches touching the
      hole (at half resolution) are excluded. ``None`` = nothing excluded.
    * returns N x C x H x W in ``f.dtype``; with ``return_offsets`` also the attention offsets
      N x 2 x H/2 x W/2 int64 (dy, dx of the best-matching background patch, in half-resolution pixels).
    """

    def __init__(
        self,
        patch_size: int = 3,
        rate: int = 2,
        fuse: bool = True,
        fuse_k: int = 3,
        softmax_scale: float = 10.0,
        downsampling: str = "align_corners",
    ) -> None:
        super().__init__()
        if patch_size % 2 != 1:
            raise ValueError(f"patch_size = {patch_size}: must be odd")
        if fuse and fuse_k != 3:
            raise ValueError(f"fuse_k = {fuse_k}: only the official 3x3 fusion kernel is implemented")
        self.patch_size = patch_size
        self.rate = rate
        self.fuse = fuse
        self.softmax_scale = float(softmax_scale)
        self.downsampling = downsampling

    def extra_repr(self) -> str:
        return (f"patch_size={self.patch_size}, rate={self.rate}, fuse={self.fuse}, "
                f"softmax_scale={self.softmax_scale}, downsampling={self.downsampling!r}")

    def forward(self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None,
                return_offsets: bool = False):
        dtype = f.dtype
        if mask is None:
            mask = f.new_zeros((f.shape[0], 1, f.shape[2], f.shape[3]))
        device_type = f.device.type
        if torch.is_autocast_enabled(device_type):
            with torch.autocast(device_type=device_type, enabled=False):
                y, offsets = self._attend(f.float(), b.float(), mask.float())
        else:
            y, offsets = self._attend(f.float(), b.float(), mask.float())
        y = y.to(dtype)
        return (y, offsets) if return_offsets else y

    def _attend(self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor):
        n, c, H, W = b.shape
        r, k = self.rate, self.patch_size
        # Raw 2r x 2r background patches at stride r (full resolution), used for pasting.
        raw_pad = (r // 2, r - r // 2)  # TF "SAME" for kernel 2r, stride r
        raw = extract_patches(b, 2 * r, r, raw_pad)  # N x C*4r^2 x L
        # Matching at 1/rate resolution.
        fs = downsample_nearest(f, r, self.downsampling)
        bs = downsample_nearest(b, r, self.downsampling)
        ms = downsample_nearest(mask, r, self.downsampling)
        h, w = bs.shape[2], bs.shape[3]
        half = k // 2
        fp = extract_patches(fs, k, 1, (half, half))  # N x C*k*k x L
        wp = extract_patches(bs, k, 1, (half, half))
        norm = wp.square().sum(dim=1, keepdim=True).sqrt().clamp_min(1e-4)
        scores = torch.bmm(fp.transpose(1, 2), wp / norm)  # N x L(fg) x L(bg)
        if self.fuse:
            scores = _fuse(scores, h, w)
        # Background patches that touch the hole get weight 0 (as in the official code: zeroed scores, then
        # zeroed attention after the softmax).
        mp = extract_patches(ms, k, 1, (half, half))  # N x k*k x L
        valid = (mp.abs().amax(dim=1, keepdim=True) == 0).to(scores.dtype)  # N x 1 x L(bg)
        attn = torch.softmax(scores * valid * self.softmax_scale, dim=2) * valid
        pasted = torch.bmm(attn, raw.transpose(1, 2)).transpose(1, 2)  # N x C*4r^2 x L(fg)
        y = fold_patches(pasted, (H, W), (h, w), 2 * r, r, raw_pad) / 4.0
        best = attn.argmax(dim=2)  # N x L(fg)
        ys = torch.arange(h, device=f.device).view(1, h, 1)
        xs = torch.arange(w, device=f.device).view(1, 1, w)
        best = best.view(n, h, w)
        offsets = torch.stack([best // w - ys, best % w - xs], dim=1)
        return y, offsets
