"""DeepFill v2 generator and SN-PatchGAN discriminator: parameter counts, shapes, contracts."""

import math

import pytest
import torch
import torch.nn.functional as F

from streamfill.config import ModelConfig, load_config
from streamfill.errors import ConfigError, InputError
from streamfill.model import Discriminator, Generator, composite
from streamfill.model.discriminator import discriminator_input
from streamfill.model.importer import streamfill_to_official

SMALL = ModelConfig(cnum=8)


def make(config=SMALL, seed=0):
    """An eval-mode generator with non-trivial weights (a fresh init has near-zero outputs and zero biases)."""
    torch.manual_seed(seed)
    gen = Generator(config).eval()
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return gen


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def _inputs(n=2, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, h, w)
    mask[0, :, h // 4: h // 2, w // 8: w // 2] = 1
    if n > 1:
        mask[1:, :, h // 2: h - 8, w // 2: w - 4] = 1
    return image, mask


def test_default_generator_has_exactly_the_official_parameter_count():
    assert n_params(Generator()) == 4_052_478
    assert n_params(Generator(ModelConfig())) == 4_052_478


def test_guidance_channel_adds_one_input_channel_to_conv1_only():
    plain, guided = Generator(), Generator(ModelConfig(guidance=True))
    assert guided.coarse.conv1.conv.in_channels == 6
    assert n_params(guided) - n_params(plain) == 48 * 5 * 5  # 48 conv outputs x 5x5 kernel, no extra bias


def test_light_preset_is_lighter():
    light = load_config("configs/presets/light.toml").model
    assert light.cnum == 24
    assert n_params(Generator(light)) < n_params(Generator()) / 3


def test_bad_widths_are_rejected():
    with pytest.raises(ConfigError, match="model.cnum"):
        ModelConfig(cnum=30)
    with pytest.raises(ConfigError, match="attention_downsampling"):
        ModelConfig(attention_downsampling="bilinear")


@pytest.mark.parametrize("n,h,w", [(1, 64, 64), (2, 32, 48), (3, 16, 24), (1, 72, 40)])
def test_output_shapes_and_range(n, h, w):
    gen = make()
    image, mask = _inputs(n, h, w)
    with torch.no_grad():
        coarse, refined, offsets = gen(image, mask, return_offsets=True)
    assert coarse.shape == refined.shape == (n, 3, h, w)
    assert offsets.shape == (n, 2, h // 8, w // 8)
    for t in (coarse, refined):
        assert torch.isfinite(t).all() and t.abs().max() <= 1


def test_hole_content_is_ignored():
    gen = make()
    image, mask = _inputs(h=32, w=32)
    other = torch.where(mask.bool(), torch.rand_like(image), image)
    with torch.no_grad():
        a, b = gen(image, mask), gen(other, mask)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)


def test_batch_of_two_with_different_masks_equals_each_alone():
    gen = make()
    image, mask = _inputs(n=2, h=48, w=64, seed=3)
    with torch.no_grad():
        both = gen(image, mask)
        for i in range(2):
            alone = gen(image[i:i + 1], mask[i:i + 1])
            for x, y in zip(both, alone, strict=True):
                torch.testing.assert_close(x[i:i + 1], y, rtol=1e-4, atol=1e-5)


def test_guidance_none_means_zeros_and_is_used_only_in_the_hole():
    gen = make(ModelConfig(cnum=8, guidance=True))
    image, mask = _inputs(h=32, w=32)
    with torch.no_grad():
        none = gen(image, mask)
        zeros = gen(image, mask, torch.zeros_like(mask))
        outside = gen(image, mask, 1 - mask)
        inside = gen(image, mask, mask)
    torch.testing.assert_close(none[1], zeros[1])
    torch.testing.assert_close(none[1], outside[1])
    assert (none[0] - inside[0]).abs().max() > 1e-3


def test_bad_inputs_raise_input_error():
    gen = Generator(SMALL)
    image, mask = _inputs(n=1, h=32, w=32)
    with pytest.raises(InputError, match="multiples of 8"):
        gen(image[..., :30], mask[..., :30])
    with pytest.raises(InputError, match="mask"):
        gen(image, mask[..., :16])
    with pytest.raises(InputError, match="N x 3"):
        gen(image[:, :2], mask)
    with pytest.raises(InputError, match="no guidance channel"):
        gen(image, mask, torch.zeros_like(mask))
    with pytest.raises(InputError, match="guidance has shape"):
        Generator(ModelConfig(cnum=8, guidance=True))(image, mask, torch.zeros(1, 1, 16, 16))


def test_composite_keeps_known_pixels():
    image, mask = _inputs()
    out = torch.zeros_like(image)
    c = composite(out, image, mask)
    assert torch.equal(c[mask.expand_as(c).bool()], out[mask.expand_as(c).bool()])
    assert torch.equal(c[~mask.expand_as(c).bool()], image[~mask.expand_as(c).bool()])


def test_finite_under_bf16_autocast():
    gen = make()
    image, mask = _inputs(h=32, w=32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        coarse, refined = gen(image, mask)
    assert torch.isfinite(coarse).all() and torch.isfinite(refined).all()


# --- an independent, functional implementation of the official stage 1 (TF "SAME", gating, upsampling) ---

def _tf_pad(x, k, s, d):
    eff = (k - 1) * d + 1
    pads = []
    for size in (x.shape[3], x.shape[2]):
        out = math.ceil(size / s)
        total = max((out - 1) * s + eff - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def _gen_conv(sd, name, x, k, s=1, d=1, act=F.elu, out=False):
    w, b = sd[f"{name}.conv.weight"], sd[f"{name}.conv.bias"]
    x = F.conv2d(_tf_pad(x, k, s, d), w, b, stride=s, dilation=d)
    if out:
        return x
    feat, gate = torch.chunk(x, 2, dim=1)
    return act(feat) * torch.sigmoid(gate)


def official_stage1(sd, x):
    """Stage 1 of inpaint_model.py's build_inpaint_net on TF-named weights (NCHW)."""
    x = _gen_conv(sd, "conv1", x, 5)
    x = _gen_conv(sd, "conv2_downsample", x, 3, 2)
    x = _gen_conv(sd, "conv3", x, 3)
    x = _gen_conv(sd, "conv4_downsample", x, 3, 2)
    x = _gen_conv(sd, "conv5", x, 3)
    x = _gen_conv(sd, "conv6", x, 3)
    for name, rate in (("conv7_atrous", 2), ("conv8_atrous", 4), ("conv9_atrous", 8), ("conv10_atrous", 16)):
        x = _gen_conv(sd, name, x, 3, 1, rate)
    x = _gen_conv(sd, "conv11", x, 3)
    x = _gen_conv(sd, "conv12", x, 3)
    x = _gen_conv(sd, "conv13_upsample.conv", x.repeat_interleave(2, 2).repeat_interleave(2, 3), 3)
    x = _gen_conv(sd, "conv14", x, 3)
    x = _gen_conv(sd, "conv15_upsample.conv", x.repeat_interleave(2, 2).repeat_interleave(2, 3), 3)
    x = _gen_conv(sd, "conv16", x, 3)
    return torch.tanh(_gen_conv(sd, "conv17", x, 3, out=True))


def test_coarse_output_matches_functional_official_stage1():
    gen = make(ModelConfig(cnum=16), seed=5)  # non-zero biases so that padding and bias mistakes show
    sd = streamfill_to_official(gen.state_dict(), rgb_to_bgr=False)
    image, mask = _inputs(n=2, h=40, w=56)
    x = torch.cat([image * (1 - mask), torch.ones_like(mask), mask], dim=1)
    with torch.no_grad():
        coarse, _ = gen(image, mask)
        expected = official_stage1(sd, x)
    # float32 through two orders of the same sums: a CPU with other vector units differs by a few 1e-5
    torch.testing.assert_close(coarse, expected, rtol=1e-4, atol=1e-4)


# --- discriminator ---

def test_discriminator_parameter_count_from_layer_table():
    widths = [64, 128, 256, 256, 256, 256]
    for cin in (4, 5):
        expected, c = 0, cin
        for cout in widths:
            expected += cout * c * 5 * 5 + cout
            c = cout
        assert n_params(Discriminator(cin)) == expected
    assert n_params(Discriminator(4)) == 5_946_816  # the official RGB + mask discriminator


def test_discriminator_shapes_spectral_norm_and_leaky_relu():
    torch.manual_seed(0)
    d = Discriminator.for_config(ModelConfig(guidance=True), cnum=8)
    assert d.in_channels == 5
    image, mask = _inputs(n=2, h=64, w=128)
    x = discriminator_input(image, mask, torch.zeros_like(mask))
    assert x.shape == (2, 5, 64, 128)
    pre = []
    hooks = [c.register_forward_hook(lambda m, i, o: pre.append(o)) for c in d.convs]
    out = d(x)
    for h in hooks:
        h.remove()
    assert out.shape == (2, 32 * 1 * 2)
    assert len(pre) == 6 and (pre[-1] < 0).any()
    torch.testing.assert_close(out, F.leaky_relu(pre[-1], 0.2).flatten(1))  # LeakyReLU(0.2) after conv6 too
    for conv in d.convs:
        assert hasattr(conv, "parametrizations") and "weight" in conv.parametrizations
    # spectral norm: largest singular value of each normalised weight is ~1 after a few power iterations
    d.train()
    for _ in range(30):
        d(x)
    d.eval()
    for conv in d.convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert abs(sigma.item() - 1) < 0.05
    odd = d(discriminator_input(*_inputs(n=1, h=200, w=72), torch.zeros(1, 1, 200, 72)))
    assert odd.shape == (1, 32 * math.ceil(200 / 64) * math.ceil(72 / 64))
