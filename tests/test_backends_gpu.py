"""GPU backend tests: run only with STREAMFILL_GPU_TESTS=1 (tests/conftest.py), and then they FAIL when no CUDA
GPU is present - they never skip for a missing GPU. Run: STREAMFILL_GPU_TESTS=1 pytest -m gpu
tests/test_backends_gpu.py. TensorRT tests skip (with a reason) only when torch-tensorrt is not installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from streamfill.backends.cache import EngineCache
from streamfill.backends.neural import DTYPES, BackendOptions, InpaintGraph, TorchExecutor, model_inputs
from streamfill.model import Generator, ModelConfig

pytestmark = pytest.mark.gpu
SIZE = 256


@pytest.fixture(scope="module")
def cuda() -> str:
    assert torch.cuda.is_available(), "STREAMFILL_GPU_TESTS=1 but torch sees no CUDA GPU"
    return "cuda"


@pytest.fixture(scope="module")
def generator() -> Generator:
    torch.manual_seed(0)
    return Generator(ModelConfig()).eval()  # the official width: what the product runs


def crops(n: int = 2, size: int = SIZE, seed: int = 0):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, size // 8, size // 8, 3), dtype=np.uint8)
    images = np.ascontiguousarray(np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2))
    masks = np.zeros((n, size, size), np.uint8)
    masks[:, size // 4: size // 2, size // 3: 2 * size // 3] = 255
    return images, masks


def cpu_reference(generator, images, masks) -> np.ndarray:
    with torch.inference_mode():
        return InpaintGraph(generator.cpu())(*[torch.from_numpy(a) for a in model_inputs(images, masks)]).numpy()


def test_cuda_fp32_equals_cpu(cuda, generator):
    import copy

    images, masks = crops()
    ref = cpu_reference(generator, images, masks)
    graph = InpaintGraph(copy.deepcopy(generator).to(cuda)).eval()
    got = TorchExecutor(cuda, torch.float32).run(graph, images, masks, as_float=True)
    np.testing.assert_allclose(got, ref, atol=1e-3, rtol=0)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_parity(cuda, generator, precision):
    """fp16/bf16 autocast vs fp32 on the GPU: finite, and close on average (contextual attention runs fp32)."""
    import copy

    images, masks = crops(4)
    graph = InpaintGraph(copy.deepcopy(generator).to(cuda)).eval()
    ref = TorchExecutor(cuda, torch.float32).run(graph, images, masks, as_float=True)
    got = TorchExecutor(cuda, DTYPES[precision], autocast=True, channels_last=True).run(
        graph, images, masks, as_float=True)
    assert np.isfinite(got).all()
    diff = np.abs(got - ref)
    print(f"{precision} vs fp32 at {SIZE}: mean abs diff {diff.mean():.5f}, max {diff.max():.4f} (range [-1, 1])")
    assert diff.mean() < (0.02 if precision == "fp16" else 0.05)


def test_torch_backend_on_cuda_uses_the_pinned_stream_path(cuda, generator):
    import copy

    from streamfill.backends.torch import load_torch

    images, masks = crops(3)
    inpainter, _ = load_torch(copy.deepcopy(generator), BackendOptions(device=cuda, precision="fp32", max_batch=2))
    assert inpainter._executor is not None and inpainter.channels_last
    out = inpainter.inpaint(images, masks)
    ref = np.clip(np.rint((cpu_reference(generator, images, masks).transpose(0, 2, 3, 1) + 1) * 127.5), 0, 255)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 2
    np.testing.assert_array_equal(out[masks == 0], images[masks == 0])
    assert inpainter._executor._pinned and all(t.is_pinned() for t in inpainter._executor._pinned.values())


def test_auto_on_cuda_picks_a_gpu_backend(cuda):
    from streamfill.backends.select import choose

    choice = choose("auto", "auto", "auto")
    assert choice.device == "cuda" and choice.backend in ("tensorrt", "compile", "torch")
    assert choice.precision == "fp16"


@pytest.mark.slow
def test_torch_compile_cuda_graphs_equal_eager(cuda, generator):
    import copy

    from streamfill.backends.compile import CompiledInpainter

    images, masks = crops(2)
    inpainter = CompiledInpainter(copy.deepcopy(generator), cuda, "fp32", sizes=(SIZE,), max_batch=2)
    assert inpainter.mode == "reduce-overhead"
    inpainter.warmup()
    got = inpainter.run_float(images, masks)
    np.testing.assert_allclose(got, cpu_reference(generator, images, masks), atol=1e-3, rtol=0)
    got2 = inpainter.run_float(images, masks)  # CUDA-graph replay gives the same answer
    np.testing.assert_allclose(got2, got, atol=1e-6)


@pytest.mark.slow
def test_tensorrt_fp16_builds_loads_and_matches(cuda, generator, tmp_path):
    if importlib.util.find_spec("torch_tensorrt") is None:
        pytest.skip("torch-tensorrt is not installed (pip install 'streamfill[tensorrt]')")
    import copy

    from streamfill.backends.tensorrt import load_tensorrt

    options = BackendOptions(device=cuda, precision="fp16", sizes=(256, 512), max_batch=4)
    inpainter, entries = load_tensorrt(copy.deepcopy(generator), options, EngineCache(tmp_path))
    assert entries[0].built
    for n, s in ((1, 256), (3, 512)):
        images, masks = crops(n, s)
        got = inpainter.run_float(images, masks)
        assert np.isfinite(got).all()
        assert np.abs(got - cpu_reference(generator, images, masks)).mean() < 0.02
    _, again = load_tensorrt(copy.deepcopy(generator), options, EngineCache(tmp_path))
    assert not again[0].built
