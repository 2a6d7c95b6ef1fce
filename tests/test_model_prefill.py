"""Push-pull prefill and residual (prefill) generators: exact known pixels, smooth fills, a zero-residual
generator equals its prefill, exports, weights files carry the setting."""

import numpy as np
import pytest
import torch

from streamfill.config import ModelConfig
from streamfill.errors import ConfigError
from streamfill.model import Generator, export_onnx, load_generator, save_generator
from streamfill.model.prefill import pushpull

RESIDUAL = ModelConfig(cnum=8, prefill="pushpull")


def _hole(n=1, h=64, w=96):
    known = torch.ones(n, 1, h, w)
    known[:, :, 20:44, 30:70] = 0
    return known


def test_known_pixels_exact_and_constant_image_filled_with_the_constant():
    image = torch.rand(2, 3, 64, 96)
    known = _hole(2)
    out = pushpull(image, known)
    assert torch.equal(out * known, image * known)
    flat = torch.full((1, 3, 64, 96), 0.3)
    torch.testing.assert_close(pushpull(flat * known[:1], known[:1]), flat, rtol=0, atol=1e-5)


def test_fill_follows_a_gradient_better_than_the_mean():
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(96.0), indexing="ij")
    ramp = (xx / 95.0).expand(1, 3, 64, 96)
    known = _hole()
    out = pushpull(ramp, known)
    hole = known[0, 0] == 0
    err = (out - ramp).abs()[0, 0][hole].mean()
    mean_err = (ramp[0, 0][~hole].mean() - ramp[0, 0][hole]).abs().mean()
    assert err < 0.25 * mean_err  # a mean-colour fill would be 4x worse
    assert out.isfinite().all()


def test_any_size_and_all_hole_or_no_hole():
    for h, w in [(8, 8), (24, 40), (48, 8)]:
        image = torch.rand(1, 3, h, w)
        assert pushpull(image, torch.ones(1, 1, h, w)).equal(image)
        assert pushpull(image, torch.zeros(1, 1, h, w)).abs().max() == 0


def test_zero_residual_generator_returns_the_prefill():
    torch.manual_seed(0)
    gen = Generator(RESIDUAL).eval()
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.2)
        for layer in gen.output_layers():
            layer.conv.weight.zero_()
            layer.conv.bias.zero_()
    image = torch.rand(2, 3, 64, 96) * 1.8 - 0.9
    known = _hole(2)
    with torch.no_grad():
        coarse, refined = gen(image, 1 - known)
    start = pushpull(image, known)
    torch.testing.assert_close(coarse, start, rtol=0, atol=1e-5)
    torch.testing.assert_close(refined, start, rtol=0, atol=1e-5)
    with torch.no_grad():
        gen.decoder.allconv17.conv.bias.fill_(0.5)  # a non-zero residual moves the result
        assert (gen(image, 1 - known)[1] - start).abs().min() > 0.01


def test_prefill_is_validated_and_kept_in_weights_files(tmp_path):
    with pytest.raises(ConfigError, match="model.prefill"):
        ModelConfig(prefill="telea")
    gen = Generator(RESIDUAL)
    path = save_generator(gen, tmp_path / "g.safetensors")
    assert load_generator(path).config.prefill == "pushpull"
    assert ModelConfig().prefill == "none"  # the official architecture


@pytest.mark.slow
def test_residual_generator_exports_with_dynamic_size(tmp_path):
    """One exported graph serves every size: the prefill's levels must not be baked in at the export size
    (a large hole needs the coarsest levels, where a size-dependent pyramid would differ)."""
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(1)
    gen = Generator(RESIDUAL).eval()
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = export_onnx(gen, tmp_path / "g.onnx", batch=1, size=64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in [(64, 64), (128, 40)]:
        image = torch.rand(1, 3, h, w) * 2 - 1
        mask = torch.zeros(1, 1, h, w)
        mask[..., 2:-2, 2:-2] = 1
        with torch.no_grad():
            expected = gen(image, mask)
        got = session.run(None, {"image": image.numpy(), "mask": mask.numpy()})
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_allclose(b, a.numpy(), rtol=1e-4, atol=1e-4)


def test_sketch_regions_split_only_where_a_line_crosses_the_hole():
    from streamfill.masks.ops import sketch_regions

    hole = np.zeros((40, 40), np.uint8)
    hole[10:30, 10:30] = 255
    across = np.zeros_like(hole)
    across[np.arange(8, 32), np.arange(8, 32)] = 255  # an 8-connected diagonal from corner to corner
    regions = sketch_regions(hole, across, gap=0)
    assert len(regions) == 2 and all(r.sum() == 190 for r in regions)  # 400 - 20 stroke pixels, split in two
    assert not (regions[0] & regions[1]).any()
    near = np.zeros_like(hole)
    near[20, 13:27] = 255  # stops 3 px short of both sides: cuts within the default 4 px band, not without it
    halves = sketch_regions(hole, near)
    assert len(halves) == 2 and sketch_regions(hole, near, gap=0) == []
    # the regions grew back over the band: together they are the whole hole but the stroke
    assert ((halves[0] | halves[1]) == ((hole > 0) & (near == 0))).all()
    above = [h[10:18, 10:30].all() for h in halves]  # one region holds the rows above the stroke
    assert sorted(above) == [False, True]
    short = np.zeros_like(hole)
    short[20, 15:25] = 255  # ends far inside the hole: nothing is cut off
    assert sketch_regions(hole, short) == []
    assert sketch_regions(hole, np.zeros_like(hole)) == []


def test_sided_fill_moves_the_edge_to_the_sketch_line():
    from streamfill.masks.ops import sketch_regions
    from streamfill.model.prefill import sided_pushpull

    image = torch.full((1, 3, 64, 64), -0.8)
    image[..., 32:, :] = 0.6  # dark above row 32, bright below
    known = torch.ones(1, 1, 64, 64)
    known[..., 16:48, 16:48] = 0
    sketch = np.zeros((64, 64), np.uint8)
    sketch[22, 10:54] = 255  # the user puts the edge at row 22
    regions = sketch_regions((known[0, 0] == 0).numpy(), sketch)
    start = sided_pushpull(image, known, torch.from_numpy(np.stack(regions)[:, None]))
    plain = pushpull(image, known)
    assert torch.equal(start * known, image * known)
    # between the sketch line and the edge the context shows (row 32), the fill takes the bright side's
    # colours (mixed with the dark rows 22-32 of the hole's left and right borders, which it also touches)
    below, unsketched = start[0, 0, 24:30, 26:38].mean(), plain[0, 0, 24:30, 26:38].mean()
    assert below > unsketched + 0.25, (below, unsketched)
    assert start[0, 0, 16:22, 16:48].max() < -0.75  # above the line: only the dark side


def test_start_needs_a_prefill_model_and_the_image_shape():
    from streamfill.errors import InputError

    image, mask = torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    with pytest.raises(InputError, match="prefill"):
        Generator(ModelConfig(cnum=8))(image, mask, start=image)
    with pytest.raises(InputError, match="shape"):
        Generator(RESIDUAL)(image, mask, start=image[..., :16])


def test_torch_inpainter_fills_each_side_of_the_sketch_from_its_own_side():
    from streamfill.backends.torch import TorchInpainter

    gen = Generator(ModelConfig(cnum=8, guidance=True, prefill="pushpull"))
    with torch.no_grad():
        for layer in gen.output_layers():  # residual 0: the result is the (sided) start itself
            layer.conv.weight.zero_()
            layer.conv.bias.zero_()
    image = np.full((1, 60, 60, 3), 30, np.uint8)
    image[:, :, 30:] = 220  # dark left, bright right; not a multiple of 8 (padded inside)
    mask = np.zeros((1, 60, 60), np.uint8)
    mask[:, :, 12:48] = 255  # a band from top to bottom: the context is left and right of it
    sketch = np.zeros_like(mask)
    sketch[:, :, 40] = 255  # the user moves the edge to column 40
    engine = TorchInpainter(gen)
    plain, sided = engine.inpaint(image, mask), engine.inpaint(image, mask, sketch)
    assert (sided[~mask.astype(bool)] == image[~mask.astype(bool)]).all()
    assert sided[0, 20:40, 32:38].mean() < plain[0, 20:40, 32:38].mean() - 40  # left of the line: darker
    assert sided[0, 20:40, 42:47].min() > 150  # right of the line: bright
