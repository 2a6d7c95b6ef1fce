"""Gated convolution, gated upsampling, TF "SAME" padding and the TF nearest-resize rule."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from streamfill.model.gated import GatedConv2d, GatedUpConv2d, downsample_nearest, pad_same, same_padding


def tf_same_pads(size, k, s, d=1):
    """TensorFlow's SAME rule, written from its documentation: out = ceil(in/s)."""
    eff = (k - 1) * d + 1
    out = math.ceil(size / s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("k,s,d", [(3, 1, 1), (5, 1, 1), (3, 2, 1), (3, 1, 16), (5, 2, 1), (4, 2, 1)])
def test_same_padding_matches_tf_rule_on_divisible_sizes(k, s, d):
    for size in (8, 16, 64):
        assert same_padding(k, s, d) == tf_same_pads(size, k, s, d)


def test_stride2_padding_is_asymmetric():
    assert same_padding(3, 2) == (0, 1)
    layer = GatedConv2d(2, 3, 3, stride=2)
    assert layer.pad == (0, 1, 0, 1)


@pytest.mark.parametrize("h,w", [(8, 8), (25, 13), (7, 64)])
def test_pad_same_any_size(h, w):
    x = torch.ones(1, 1, h, w)
    y = pad_same(x, 5, 2)
    top, bottom = tf_same_pads(h, 5, 2)
    left, right = tf_same_pads(w, 5, 2)
    assert y.shape[-2:] == (h + top + bottom, w + left + right)
    assert y[0, 0, top:top + h, left:left + w].eq(1).all()
    assert y.sum() == h * w


@pytest.mark.parametrize("stride,dilation,act", [(1, 1, "elu"), (2, 1, "elu"), (1, 4, "elu"), (1, 1, "relu")])
def test_gated_conv_is_split_activation_times_sigmoid(stride, dilation, act):
    torch.manual_seed(0)
    layer = GatedConv2d(3, 4, 3, stride=stride, dilation=dilation, activation=act)
    assert layer.conv.out_channels == 8
    x = torch.randn(2, 3, 16, 16)
    top, bottom = tf_same_pads(16, 3, stride, dilation)
    raw = F.conv2d(F.pad(x, (top, bottom, top, bottom)), layer.conv.weight, layer.conv.bias,
                   stride=stride, dilation=dilation)
    feature, gate = raw[:, :4], raw[:, 4:]
    feature = F.elu(feature) if act == "elu" else torch.relu(feature)
    expected = feature * torch.sigmoid(gate)
    out = layer(x)
    assert out.shape == (2, 4, 16 // stride, 16 // stride)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_gates_strictly_inside_unit_interval():
    torch.manual_seed(1)
    layer = GatedConv2d(5, 24, 5)
    g = layer.gates(torch.rand(2, 5, 32, 32) * 2 - 1)
    assert g.shape == (2, 24, 32, 32)
    assert (g > 0).all() and (g < 1).all()


def test_output_layer_is_plain_conv():
    layer = GatedConv2d(12, 3, 3, activation=None)
    assert layer.conv.out_channels == 3
    x = torch.randn(1, 12, 8, 8)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.conv.weight, layer.conv.bias, padding=1))
    with pytest.raises(ValueError):
        layer.gates(x)


def test_gated_upsampling_is_nearest_then_gated_conv():
    torch.manual_seed(2)
    up = GatedUpConv2d(4, 6)
    x = torch.randn(1, 4, 5, 7)
    big = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(up(x), up.conv(big))
    assert up(x).shape == (1, 6, 10, 14)


def tf_align_corners_index(i, n_in, n_out):
    """TF1 resize_nearest_neighbor(align_corners=True): roundf(i * float32((in-1)/(out-1)))."""
    scale = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
    v = float(np.float32(i) * scale)
    return min(int(math.floor(v + 0.5)), n_in - 1)


@pytest.mark.parametrize("h,w,factor", [(64, 32, 2), (50, 18, 2), (128, 96, 4), (16, 8, 4), (2, 4, 2)])
def test_downsample_align_corners_matches_tf_rule(h, w, factor):
    x = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
    y = downsample_nearest(x, factor, "align_corners")
    oh, ow = h // factor, w // factor
    expected = torch.tensor(
        [[tf_align_corners_index(i, h, oh) * w + tf_align_corners_index(j, w, ow) for j in range(ow)]
         for i in range(oh)], dtype=torch.float32)
    torch.testing.assert_close(y[0, 0], expected)


def test_downsample_nearest_mode_matches_interpolate():
    x = torch.randn(2, 3, 24, 40)
    torch.testing.assert_close(downsample_nearest(x, 2, "nearest"), F.interpolate(x, scale_factor=0.5))
    assert not torch.equal(downsample_nearest(x, 2, "nearest"), downsample_nearest(x, 2, "align_corners"))
