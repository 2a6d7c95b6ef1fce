"""Export: torch.export with dynamic batch and H/W, ONNX (run with onnxruntime); both match eager to 1e-4."""

import numpy as np
import pytest
import torch

from streamfill.config import ModelConfig
from streamfill.model import Generator, export_onnx, export_program

SHAPES = [(1, 64, 64), (3, 48, 80), (2, 128, 40)]


def make(config):
    torch.manual_seed(0)
    gen = Generator(config).eval()
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return gen


def _inputs(n, h, w, guidance=False):
    g = torch.Generator().manual_seed(n * h + w)
    image = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, h, w)
    mask[:, :, h // 4: h // 2 + 4, w // 3: w // 3 + 16] = 1
    return (image, mask, torch.rand(n, 1, h, w, generator=g)) if guidance else (image, mask)


@pytest.mark.slow
@pytest.mark.parametrize("guidance", [False, True])
def test_torch_export_dynamic_batch_and_size(guidance):
    gen = make(ModelConfig(cnum=8, guidance=guidance))
    program = export_program(gen, batch=2, size=64)
    module = program.module()
    for n, h, w in SHAPES:
        args = _inputs(n, h, w, guidance)
        with torch.no_grad():
            expected = gen(*args)
            got = module(*args)
        for a, b in zip(expected, got, strict=True):
            assert b.shape == (n, 3, h, w)
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_onnx_export_matches_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    gen = make(ModelConfig(cnum=8))
    path = export_onnx(gen, tmp_path / "g.onnx", batch=2, size=64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "mask"]
    assert [o.name for o in session.get_outputs()] == ["coarse", "refined"]
    for n, h, w in SHAPES:
        image, mask = _inputs(n, h, w)
        with torch.no_grad():
            expected = gen(image, mask)
        got = session.run(None, {"image": image.numpy(), "mask": mask.numpy()})
        for a, b in zip(expected, got, strict=True):
            assert b.shape == (n, 3, h, w)
            np.testing.assert_allclose(b, a.numpy(), rtol=1e-4, atol=1e-4)
