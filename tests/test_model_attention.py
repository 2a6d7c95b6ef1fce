"""Contextual attention against a slow, loop-over-positions reference of the official algorithm."""

import math

import numpy as np
import pytest
import torch

from streamfill.model.attention import ContextualAttention, extract_patches, fold_patches


def _tf_index(i, n_in, n_out):
    scale = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
    return min(int(math.floor(float(np.float32(i) * scale) + 0.5)), n_in - 1)


def _resize_half(x, mode):
    """C x H x W -> C x H/2 x W/2 by the TF align_corners rule or plain nearest (every second pixel)."""
    c, h, w = x.shape
    oh, ow = h // 2, w // 2
    out = np.zeros((c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            si = _tf_index(i, h, oh) if mode == "align_corners" else 2 * i
            sj = _tf_index(j, w, ow) if mode == "align_corners" else 2 * j
            out[:, i, j] = x[:, si, sj]
    return out


def _patch(x, y, xx, k):
    """k x k patch of C x H x W centred on (y, xx), zeros outside."""
    c, h, w = x.shape
    r = k // 2
    p = np.zeros((c, k, k))
    for i in range(k):
        for j in range(k):
            sy, sx = y + i - r, xx + j - r
            if 0 <= sy < h and 0 <= sx < w:
                p[:, i, j] = x[:, sy, sx]
    return p


def _diag_fuse(s):
    n = s.shape[0]
    out = np.zeros_like(s)
    for p in range(n):
        for q in range(s.shape[1]):
            for d in (-1, 0, 1):
                if 0 <= p + d < n and 0 <= q + d < s.shape[1]:
                    out[p, q] += s[p + d, q + d]
    return out


def reference_attention(f, b, mask, fuse=True, scale=10.0, mode="align_corners"):
    """One sample at a time, one position at a time, float64, following the official TF code literally."""
    f, b, mask = (t.double().numpy() for t in (f, b, mask))
    n, c, H, W = f.shape
    outs, offs = [], []
    for s in range(n):
        fs, bs, ms = _resize_half(f[s], mode), _resize_half(b[s], mode), _resize_half(mask[s], mode)
        h, w = fs.shape[1:]
        pos = [(y, x) for y in range(h) for x in range(w)]
        L = len(pos)
        wn = []
        for (y, x) in pos:
            p = _patch(bs, y, x, 3)
            wn.append(p / max(math.sqrt((p ** 2).sum()), 1e-4))
        scores = np.array([[(_patch(fs, py, px, 3) * wn[q]).sum() for q in range(L)] for (py, px) in pos])
        if fuse:
            scores = _diag_fuse(scores)
            cm = [x * h + y for (y, x) in pos]  # column-major index of each row-major position
            t = np.zeros_like(scores)
            for p in range(L):
                for q in range(L):
                    t[cm[p], cm[q]] = scores[p, q]
            t = _diag_fuse(t)
            scores = np.array([[t[cm[p], cm[q]] for q in range(L)] for p in range(L)])
        valid = np.array([float((_patch(ms, y, x, 3) == 0).all()) for (y, x) in pos])
        z = scores * valid * scale
        attn = np.exp(z - z.max(axis=1, keepdims=True))
        attn = attn / attn.sum(axis=1, keepdims=True) * valid
        out = np.zeros((c, H, W))
        for p, (py, px) in enumerate(pos):
            for q, (qy, qx) in enumerate(pos):
                if attn[p, q] == 0:
                    continue
                for i in range(4):
                    for j in range(4):
                        oy, ox, sy, sx = 2 * py + i - 1, 2 * px + j - 1, 2 * qy + i - 1, 2 * qx + j - 1
                        if 0 <= oy < H and 0 <= ox < W and 0 <= sy < H and 0 <= sx < W:
                            out[:, oy, ox] += attn[p, q] * b[s][:, sy, sx]
        outs.append(out / 4.0)
        best = attn.argmax(axis=1)
        offs.append(np.stack([np.array([best[p] // w - py for p, (py, px) in enumerate(pos)]).reshape(h, w),
                              np.array([best[p] % w - px for p, (py, px) in enumerate(pos)]).reshape(h, w)]))
    return torch.from_numpy(np.stack(outs)), torch.from_numpy(np.stack(offs))


def _inputs(n=2, c=4, h=8, w=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n, c, h, w, generator=g)
    mask = torch.zeros(n, 1, h, w)
    mask[0, :, 2:5, 3:8] = 1
    if n > 1:
        mask[1, :, 4:8, 0:4] = 1
    return f, mask


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("mode", ["align_corners", "nearest"])
def test_matches_slow_reference(fuse, mode):
    f, mask = _inputs()
    b = f * 0.5 + 0.1
    layer = ContextualAttention(fuse=fuse, downsampling=mode)
    y, offsets = layer(f, b, mask, return_offsets=True)
    ref, ref_off = reference_attention(f, b, mask, fuse=fuse, mode=mode)
    assert y.shape == f.shape and y.dtype == torch.float32
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    assert offsets.shape == (2, 2, 4, 6) and offsets.dtype == torch.int64
    assert torch.equal(offsets, ref_off)


def test_without_mask_and_other_scale():
    f, _ = _inputs(n=1, h=10, w=6, seed=3)
    layer = ContextualAttention(softmax_scale=3.0)
    ref, _ = reference_attention(f, f, torch.zeros(1, 1, 10, 6), scale=3.0)
    torch.testing.assert_close(layer(f, f).double(), ref, rtol=1e-5, atol=1e-5)


def test_patches_touching_the_hole_are_never_used():
    f, mask = _inputs(n=1, h=16, w=16, seed=4)
    f[:, :, 4:12, 4:12] = 1e3  # a hole full of huge values: if any of it leaked out, the output would show it
    mask = torch.zeros(1, 1, 16, 16)
    mask[:, :, 4:12, 4:12] = 1
    y = ContextualAttention()(f, f, mask)
    assert y.abs().max() < 50


def test_batch_uses_each_samples_own_mask():
    f, mask = _inputs(n=2, h=16, w=16, seed=5)
    layer = ContextualAttention()
    both = layer(f, f, mask)
    for i in range(2):
        alone = layer(f[i:i + 1], f[i:i + 1], mask[i:i + 1])
        torch.testing.assert_close(both[i:i + 1], alone, rtol=1e-5, atol=1e-6)


def test_extract_and_fold_are_unfold_and_its_adjoint():
    x = torch.randn(2, 3, 8, 10)
    cols = extract_patches(x, 4, 2, (1, 1))
    torch.testing.assert_close(cols, torch.nn.functional.unfold(x, 4, padding=1, stride=2))
    back = fold_patches(cols, (8, 10), (4, 5), 4, 2, (1, 1))
    torch.testing.assert_close(back, torch.nn.functional.fold(cols, (8, 10), 4, padding=1, stride=2))


def _large(n=2, c=96, h=32, w=32):
    g = torch.Generator().manual_seed(7)
    f = torch.randn(n, c, h, w, generator=g) * 200.0
    mask = torch.zeros(n, 1, h, w)
    mask[:, :, 8:20, 10:24] = 1
    return f, mask


def test_large_activations_under_bf16_autocast_are_finite():
    f, mask = _large()
    layer = ContextualAttention()
    ref = layer(f.bfloat16().float(), f.bfloat16().float(), mask)  # same inputs, all in float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(f.bfloat16(), f.bfloat16(), mask)
    assert y.dtype == torch.bfloat16
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), ref, rtol=0.01, atol=0.5)


def test_large_activations_in_fp16_are_finite():
    f, mask = _large()
    layer = ContextualAttention()
    ref = layer(f.half().float(), f.half().float(), mask)  # same inputs, all in float32
    # Patch energies (for the L2 norms) and scaled scores of this size overflow fp16 (max 65504): the layer
    # must not compute them in fp16.
    fp = extract_patches(f[:, :, ::2, ::2], 3, 1, (1, 1))
    assert fp.square().sum(1).max() > 65504
    assert torch.isinf(fp.half().square().sum(1)).any()
    half = f.half()
    y = layer(half, half, mask.half())
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), ref, rtol=1e-3, atol=0.1)
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            y2 = layer(half, half, mask)
    except RuntimeError as exc:  # pragma: no cover - CPU fp16 autocast missing in this torch build
        pytest.skip(f"CPU fp16 autocast unavailable: {exc}")
    assert torch.isfinite(y2).all()
