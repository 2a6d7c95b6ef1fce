"""Widening a generator (Net2WiderNet): the wider network computes what the narrow one computed."""

import pytest
import torch

from streamfill.config import ModelConfig
from streamfill.model import Generator
from streamfill.model.widen import widen_generator


def _trained_like(config, seed=0):
    torch.manual_seed(seed)
    g = Generator(config)
    with torch.no_grad():
        for p in g.parameters():  # non-zero biases too, so a wrong bias copy shows
            p.add_(torch.randn_like(p) * 0.1)
    return g.eval()


def _inputs():
    torch.manual_seed(1)
    image = torch.rand(2, 3, 48, 48) * 2 - 1
    mask = torch.zeros(2, 1, 48, 48)
    mask[0, :, 8:30, 10:40] = 1
    mask[1, :, 20:44, 4:24] = 1
    return image, mask, torch.rand(2, 1, 48, 48)


@pytest.mark.parametrize("prefill", ["none", "pushpull"])
def test_widened_generator_computes_the_same(prefill):
    small = _trained_like(ModelConfig(cnum=8, guidance=True, prefill=prefill))
    big = widen_generator(small, 12, seed=5)
    assert big.config.cnum == 12 and big.config.prefill == prefill
    assert sum(p.numel() for p in big.parameters()) > 1.8 * sum(p.numel() for p in small.parameters())
    image, mask, sketch = _inputs()
    with torch.no_grad():
        c_small, r_small = small(image, mask, sketch)
        c_big, r_big = big(image, mask, sketch)
    torch.testing.assert_close(c_big, c_small, rtol=0, atol=1e-5)  # no attention in stage 1: exact
    assert (r_big - r_small).abs().mean() < 2e-3  # the attention's similarity changes a little


def test_noise_breaks_the_copies_apart_but_stays_close():
    small = _trained_like(ModelConfig(cnum=8))
    plain, noisy = widen_generator(small, 16), widen_generator(small, 16, noise=0.01)
    w_plain, w_noisy = plain.coarse.conv5.conv.weight, noisy.coarse.conv5.conv.weight
    old = small.coarse.conv5.out_channels
    assert torch.equal(w_plain[:old], w_noisy[:old])  # the original channels are untouched
    assert not torch.equal(w_plain[old:2 * old], w_noisy[old:2 * old])  # the copies moved
    image, mask, _ = _inputs()
    with torch.no_grad():
        assert (noisy(image, mask)[1] - small(image, mask)[1]).abs().mean() < 0.02


def test_narrowing_is_refused():
    with pytest.raises(ValueError, match="narrower"):
        widen_generator(_trained_like(ModelConfig(cnum=12)), 8)
