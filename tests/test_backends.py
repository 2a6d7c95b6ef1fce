"""Inference backends: engine cache, selection, ONNX Runtime / torch.compile parity with eager, TensorRT export.

Models are tiny (cnum = 8) and crops 64 x 64; exports and compiles still take tens of seconds on a small CPU,
so those tests are marked slow and share one exported engine per module."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from streamfill import build
from streamfill.backends import select
from streamfill.backends.cache import EngineCache, EngineKey, cache_dir
from streamfill.backends.neural import (
    BackendOptions,
    InpaintGraph,
    batch_buckets,
    model_inputs,
    pad_batch,
    to_uint8,
    weights_digest,
)
from streamfill.config import load_config
from streamfill.errors import EngineError, InputError
from streamfill.model import Generator, ModelConfig

SIZE = 64


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(ModelConfig(cnum=8)).eval()


def crops(n: int = 3, size: int = SIZE, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        y, x = rng.integers(4, size // 2, 2)
        masks[i, y: y + size // 3, x: x + size // 4] = 255
    return images, masks


def eager(generator, images, masks) -> np.ndarray:
    with torch.inference_mode():
        return InpaintGraph(generator)(*[torch.from_numpy(a) for a in model_inputs(images, masks)]).numpy()


# --- engine cache --------------------------------------------------------------------------------------


def key(**kw) -> EngineKey:
    base = dict(backend="onnx", weights="w" * 64, bucket="256", precision="fp32", versions={"onnxruntime": "1"})
    base.update(kw)
    return EngineKey(**base)


def test_cache_key_changes_with_weights_bucket_precision_and_versions():
    ref = key().stem()
    assert key().stem() == ref  # deterministic
    assert key(weights="x" * 64).stem() != ref
    assert key(bucket="384").stem() != ref
    assert key(precision="fp16").stem() != ref
    assert key(versions={"onnxruntime": "2"}).stem() != ref
    assert key(device="cuda-sm90").stem() != ref


def test_weights_digest_follows_the_tensors():
    a, b = tiny_generator(0), tiny_generator(0)
    assert weights_digest(a) == weights_digest(b)
    with torch.no_grad():
        next(b.parameters()).view(-1)[0] += 1e-3
    assert weights_digest(a) != weights_digest(b)


def _builder(calls: list, payload: bytes = b"engine-bytes"):
    def build(path):
        calls.append(path)
        path.write_bytes(payload)
    return build


def test_cache_builds_once_then_reuses(tmp_path, caplog):
    cache, calls = EngineCache(tmp_path), []
    with caplog.at_level(logging.INFO, logger="streamfill"):
        first = cache.get_or_build(key(), ".onnx", _builder(calls))
        said = [r.getMessage() for r in caplog.records]
        second = cache.get_or_build(key(), ".onnx", _builder(calls))
    assert first.built and not second.built and len(calls) == 1
    # a build (tens of seconds for a real export) is announced once; a cache hit says nothing
    assert len(said) == 1 and "building the" in said[0] and "not built yet" in said[0], said
    assert len(caplog.records) == 1
    assert first.path == second.path and first.path.read_bytes() == b"engine-bytes"
    sidecar = json.loads(cache.paths(key(), ".onnx")[1].read_text())
    assert sidecar["key"] == key().as_dict() and sidecar["size"] == len(b"engine-bytes")
    assert not list(tmp_path.rglob("*.partial*"))
    assert first.path.stat().st_mode & 0o777 == 0o644  # readable by others sharing the cache (mkstemp: 0600)


@pytest.mark.parametrize("damage", ["flip", "truncate", "sidecar", "stale", "no-sidecar"])
def test_corrupt_or_stale_entry_is_rebuilt(tmp_path, damage):
    cache, calls = EngineCache(tmp_path), []
    entry = cache.get_or_build(key(), ".onnx", _builder(calls))
    artefact, sidecar = cache.paths(key(), ".onnx")
    if damage == "flip":
        artefact.write_bytes(b"engine-bytez")  # same size, different bytes
    elif damage == "truncate":
        artefact.write_bytes(b"eng")
    elif damage == "sidecar":
        sidecar.write_text("{not json")
    elif damage == "stale":
        meta = json.loads(sidecar.read_text())
        meta["key"]["versions"] = {"onnxruntime": "0"}
        sidecar.write_text(json.dumps(meta))
    else:
        sidecar.unlink()
    assert cache.check(key(), ".onnx") is not None
    again = cache.get_or_build(key(), ".onnx", _builder(calls))
    assert again.built and again.reason and len(calls) == 2
    assert entry.path.read_bytes() == b"engine-bytes" and cache.check(key(), ".onnx") is None


def test_unreadable_artefact_is_rebuilt_not_a_crash(tmp_path, monkeypatch):
    """Reading the artefact for its checksum was the one read check() did not guard: a shared cache entry
    another user wrote unreadable (mode 0600) raised PermissionError out of the engine load."""
    from streamfill.backends import cache as cache_module

    cache = EngineCache(tmp_path)
    cache.get_or_build(key(), ".onnx", lambda p: p.write_bytes(b"engine"))
    real = cache_module.file_sha256
    calls = []

    def denied_until_rebuilt(path):
        calls.append(path)
        if ".partial" not in path.name and len(calls) <= 2:  # get_or_build's check, then its check under the lock
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(cache_module, "file_sha256", denied_until_rebuilt)
    entry = cache.get_or_build(key(), ".onnx", lambda p: p.write_bytes(b"engine"))
    assert entry.built and "unreadable" in entry.reason and cache.check(key(), ".onnx") is None


def test_failed_build_leaves_no_entry(tmp_path):
    cache = EngineCache(tmp_path)

    def broken(path):
        path.write_bytes(b"half")
        raise EngineError("export failed")

    with pytest.raises(EngineError):
        cache.get_or_build(key(), ".onnx", broken)
    assert cache.check(key(), ".onnx") == "not built"
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".lock"]


def test_concurrent_builders_build_once(tmp_path):
    import threading

    cache, calls = EngineCache(tmp_path), []
    gate = threading.Barrier(3)

    def slow_build(path):
        calls.append(path)
        path.write_bytes(b"engine")

    def worker(results):
        gate.wait()
        results.append(EngineCache(tmp_path).get_or_build(key(), ".onnx", slow_build))

    results: list = []
    threads = [threading.Thread(target=worker, args=(results,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and sum(r.built for r in results) == 1 and cache.check(key(), ".onnx") is None


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAMFILL_CACHE", str(tmp_path / "env"))
    assert cache_dir(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert cache_dir("") == tmp_path / "env"
    monkeypatch.delenv("STREAMFILL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "streamfill" / "engines"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG specification says
    assert cache_dir().parts[-3:] == (".cache", "streamfill", "engines") and cache_dir().is_absolute()
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir().parts[-3:] == (".cache", "streamfill", "engines")


# --- selection ---------------------------------------------------------------------------------------------


def test_auto_picks_onnx_runtime_on_a_cpu_only_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("auto", "deepfill"):
        choice = select.choose(name, "auto", "auto")
        assert (choice.backend, choice.device, choice.precision) == ("onnx", "cpu", "fp32")
        assert "no CUDA GPU" in choice.reason and "\n" not in choice.reason


def test_auto_on_cuda_prefers_tensorrt_then_compile_then_torch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    installed = {"torch_tensorrt": True, "triton": True, "onnxruntime": True}
    monkeypatch.setattr(select, "_installed", lambda m: installed[m])
    c = select.choose("auto", "auto", "auto")
    assert (c.backend, c.device, c.precision, c.reason) == ("tensorrt", "cuda", "fp16", None)
    installed["torch_tensorrt"] = False
    c = select.choose("auto")
    assert c.backend == "compile" and "torch-tensorrt is not installed" in c.reason
    installed["triton"] = False
    c = select.choose("auto")
    assert c.backend == "torch" and "triton" in c.reason and "torch-tensorrt" in c.reason


def test_explicit_engines_are_checked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EngineError, match="CUDA"):
        select.choose("tensorrt", "auto")
    with pytest.raises(EngineError, match="fp32"):
        select.choose("onnx", "cpu", "fp16")
    with pytest.raises(EngineError, match="no CUDA GPU"):
        select.choose("torch", "cuda")
    assert select.choose("torch", "cpu", "bf16").precision == "bf16"
    # auto with a precision ONNX Runtime cannot run falls back to eager torch, and says why
    c = select.choose("auto", "cpu", "bf16")
    assert c.backend == "torch" and "fp32" in c.reason


def test_a_gpu_index_the_machine_lacks_is_a_clear_error(monkeypatch):
    """--device cuda:3 on a one-GPU machine passed selection and failed inside torch ("invalid device
    ordinal"), the CLI's internal error."""
    from streamfill.backends import neural

    monkeypatch.setattr(neural, "cuda_available", lambda: True)
    monkeypatch.setattr(neural.torch.cuda, "device_count", lambda: 1)
    assert neural.resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(EngineError, match="'cuda:3' requested but this machine has 1 CUDA GPU"):
        neural.resolve_device("cuda:3")


def test_auto_without_weights_falls_back_to_classical():
    c = select.choose("auto", weights_available=False)
    assert c.backend == "telea" and not c.neural and "weights" in c.reason


def test_missing_default_weights_is_a_clear_error(monkeypatch):
    from streamfill.backends import neural

    monkeypatch.setattr(neural, "default_weights", lambda: None)
    with pytest.raises(EngineError, match="no default weights are installed"):
        neural.resolve_weights("")
    with pytest.raises(EngineError, match="not found"):
        neural.resolve_weights("/nonexistent/w.safetensors")


def test_config_rejects_bad_engine_keys():
    from streamfill.errors import ConfigError

    with pytest.raises(ConfigError, match="engine.precision"):
        load_config(overrides={"engine": {"precision": "fp8"}})
    with pytest.raises(ConfigError, match="engine.device"):
        load_config(overrides={"engine": {"device": "tpu"}})
    assert load_config(overrides={"engine": {"name": "onnx", "device": "cuda:1"}}).engine.device == "cuda:1"


# --- shared conversions --------------------------------------------------------------------------------------


def test_batch_buckets_and_padding():
    assert batch_buckets(1) == (1,)
    assert batch_buckets(4) == (1, 2, 4)
    assert batch_buckets(6) == (1, 2, 4, 6)
    assert [pad_batch(n, (1, 2, 4)) for n in (1, 2, 3, 4)] == [1, 2, 4, 4]


def test_model_inputs_and_to_uint8_round_trip():
    images, masks = crops(2)
    image, mask = model_inputs(images, masks)
    assert image.shape == (2, 3, SIZE, SIZE) and image.dtype == np.float32
    assert image.min() >= -1 and image.max() <= 1
    assert set(np.unique(mask)) <= {0.0, 1.0} and mask.sum() == (masks > 0).sum()
    np.testing.assert_array_equal(to_uint8(image), images)


# --- ONNX Runtime ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_engine(tmp_path_factory):
    from streamfill.backends.onnx import load_onnx

    generator = tiny_generator()
    root = tmp_path_factory.mktemp("engines")
    inpainter, entries = load_onnx(generator, BackendOptions(sizes=(SIZE,), max_batch=2), EngineCache(root))
    return generator, inpainter, entries, root


@pytest.mark.slow
def test_onnx_runtime_equals_eager(onnx_engine):
    generator, inpainter, entries, _ = onnx_engine
    assert entries[0].built
    images, masks = crops(3)  # 3 > max_batch: also checks chunking
    got = inpainter.run_float(images, masks)
    np.testing.assert_allclose(got, eager(generator, images, masks), atol=1e-3, rtol=0)
    out = inpainter.inpaint(images, masks)
    assert out.shape == images.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[masks == 0], images[masks == 0])


@pytest.mark.slow
def test_onnx_engine_is_reused_then_rebuilt_when_corrupt(onnx_engine, capsys):
    from streamfill.backends.onnx import load_onnx

    generator, _, entries, root = onnx_engine
    cache = EngineCache(root)
    options = BackendOptions(sizes=(SIZE,), max_batch=2)
    _, again = load_onnx(generator, options, cache)
    assert not again[0].built and again[0].path == entries[0].path
    data = bytearray(entries[0].path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entries[0].path.write_bytes(bytes(data))
    inpainter, rebuilt = load_onnx(generator, options, cache)
    assert rebuilt[0].built and "checksum" in rebuilt[0].reason
    images, masks = crops(1)
    np.testing.assert_allclose(inpainter.run_float(images, masks), eager(generator, images, masks), atol=1e-3)
    assert capsys.readouterr().out == ""  # the exporter's progress lines are not printed by the library
    # garbage whose sidecar matches it: the checksum passes, ONNX Runtime refuses it (said so, not "requested")
    import json

    from streamfill.backends.cache import file_sha256
    artefact, sidecar = cache.paths(rebuilt[0].key, ".onnx")
    artefact.write_bytes(b"not a model")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "sha256": file_sha256(artefact), "size": artefact.stat().st_size}))
    _, again = load_onnx(generator, options, cache)
    assert again[0].built and again[0].reason == "ONNX Runtime could not load the cached file"


@pytest.mark.slow
def test_onnx_rejects_unbuilt_sizes_and_bad_input(onnx_engine):
    _, inpainter, _, _ = onnx_engine
    images, masks = crops(1, size=72)
    with pytest.raises(EngineError, match="no ONNX engine for 72x72"):
        inpainter.inpaint(images, masks)
    images, masks = crops(1)
    with pytest.raises(InputError):
        inpainter.inpaint(images[..., 0], masks)


def test_onnx_threads_default_to_the_cores_the_process_may_use(monkeypatch):
    """threads = 0 meant os.cpu_count(): a process pinned to 2 cores of a 64-core host (docker --cpuset-cpus,
    taskset) ran 64 intra-op threads on them."""
    from streamfill.backends import onnx

    monkeypatch.setattr(onnx.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(onnx.os, "sched_getaffinity", lambda pid: {3, 5}, raising=False)
    assert onnx.session_options(0).intra_op_num_threads == 2
    assert onnx.session_options(3).intra_op_num_threads == 3


def test_onnx_refuses_half_precision(tmp_path):
    from streamfill.backends.onnx import load_onnx

    with pytest.raises(EngineError, match="fp32 only"):
        load_onnx(tiny_generator(), BackendOptions(precision="fp16", sizes=(SIZE,)), EngineCache(tmp_path))
    assert not list(tmp_path.iterdir())


# --- torch.compile ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_torch_compile_equals_eager_and_does_not_recompile():
    from streamfill.backends.compile import CompiledInpainter

    generator = tiny_generator()
    inpainter = CompiledInpainter(generator, "cpu", "fp32", sizes=(SIZE,), max_batch=1)
    images, masks = crops(2)  # two calls of the single batch-1 bucket
    got = inpainter.run_float(images, masks)
    np.testing.assert_allclose(got, eager(generator, images, masks), atol=1e-3, rtol=0)
    assert inpainter.warm == {(1, SIZE)}
    with pytest.raises(EngineError, match="no compiled bucket"):
        inpainter.inpaint(*crops(1, size=72))


def test_torch_compile_without_a_cxx_compiler_is_a_clear_error(monkeypatch):
    """Inductor on a machine without a C++ compiler (a slim container) raised its own error through the CLI as
    an internal error (exit 70); it is now an EngineError that says what failed."""
    from streamfill.backends.compile import CompiledInpainter

    inpainter = CompiledInpainter(tiny_generator(), "cpu", "fp32", sizes=(SIZE,), max_batch=1)

    def no_compiler(*args):
        inner = RuntimeError("InvalidCxxCompiler: No working C++ compiler found in cpp.cxx: (None, 'g++')")
        raise torch._dynamo.exc.BackendCompilerFailed(lambda: None, inner, None)

    monkeypatch.setattr(inpainter, "_call", no_compiler)
    with pytest.raises(EngineError, match="torch.compile failed .*No working C.. compiler"):
        inpainter.inpaint(*crops(1))


# --- eager torch and TensorRT (export half) ------------------------------------------------------------


def test_gpu_staging_gives_mask_and_guidance_their_own_pinned_buffers(monkeypatch):
    """On CUDA the inputs go through reusable pinned buffers copied with non_blocking=True. Masks and guidance
    (same shape, same dtype) shared one buffer, so staging the guidance refilled the buffer whose copy of the
    mask to the GPU could still be running: the engine could get the sketch as its hole. (Simulated on the CPU:
    the pinned allocation is made pageable, and the device is the CPU.)"""
    from streamfill.backends.neural import TorchExecutor

    empty = torch.empty
    monkeypatch.setattr(torch, "empty", lambda *a, pin_memory=False, **k: empty(*a, **k))
    executor = TorchExecutor("cpu", guided=True)
    executor.cuda = True  # take the pinned-buffer path
    images, masks = crops(2)
    guidance = np.zeros_like(masks)
    guidance[:, 10:12] = 255
    executor.inputs(images, masks, guidance)
    buffers = list(executor._pinned.values())
    assert len(buffers) == 3 and len({b.data_ptr() for b in buffers}) == 3


def test_torch_backend_matches_the_graph():
    from streamfill.backends.torch import load_torch

    generator = tiny_generator()
    inpainter, entries = load_torch(generator, BackendOptions(sizes=(SIZE,), max_batch=2))
    images, masks = crops(3)
    out = inpainter.inpaint(images, masks)
    assert entries == [] and out.shape == images.shape
    np.testing.assert_array_equal(out[masks == 0], images[masks == 0])
    ref = to_uint8(eager(generator, images, masks))
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.slow
def test_tensorrt_path_exports_with_dynamic_batch_and_size():
    from streamfill.backends.tensorrt import export_for_tensorrt

    generator = tiny_generator()
    program = export_for_tensorrt(generator, (64, 96), max_batch=4, precision="fp32", device="cpu")
    module = program.module()
    for b, s in ((1, 64), (3, 96), (4, 80)):
        images, masks = crops(b, size=s)
        args = [torch.from_numpy(a) for a in model_inputs(images, masks)]
        with torch.inference_mode():
            got = module(*args)
        np.testing.assert_allclose(got.numpy(), eager(generator, images, masks), atol=1e-4)
    assert next(generator.parameters()).dtype == torch.float32  # the caller's generator is not converted


def test_tensorrt_without_gpu_is_a_clear_error(tmp_path):
    from streamfill.backends.tensorrt import load_tensorrt

    with pytest.raises(EngineError, match="CUDA"):
        load_tensorrt(tiny_generator(), BackendOptions(device="cpu"), EngineCache(tmp_path))


def test_broken_torch_tensorrt_install_is_a_clear_error(tmp_path, monkeypatch):
    """torch-tensorrt built for another torch or CUDA fails to import with OSError (a missing libnvinfer) or an
    undefined-symbol error, not only ImportError: that escaped as the CLI's internal error."""
    import sys

    from streamfill.backends import tensorrt as T

    (tmp_path / "torch_tensorrt").mkdir()
    (tmp_path / "torch_tensorrt" / "__init__.py").write_text(
        'raise OSError("libnvinfer.so.10: cannot open shared object file")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "torch_tensorrt", raising=False)
    with pytest.raises(EngineError, match="needs torch-tensorrt.*OSError: libnvinfer"):
        T._torch_tensorrt()


def test_tensorrt_engine_that_never_loads_is_a_clear_error(tmp_path, monkeypatch):
    """A TensorRT program that torch_tensorrt.load refuses even after the rebuild (a broken install) escaped as
    the runtime's own exception (the CLI's 'internal error'); it is an EngineError now. No GPU needed: the
    runtime, the build and the device probe are stubbed."""
    import types

    from streamfill.backends import tensorrt as T

    def refuse(path):
        raise RuntimeError("Serialization assertion failed")

    monkeypatch.setattr(T, "_torch_tensorrt", lambda: types.SimpleNamespace(load=refuse))
    monkeypatch.setattr(T, "device_tag", lambda device: "cuda-sm90")
    monkeypatch.setattr(T, "build_tensorrt", lambda generator, options, path: path.write_bytes(b"plan"))
    with pytest.raises(EngineError, match="TensorRT cannot load .*Serialization assertion failed"):
        T.load_tensorrt(tiny_generator(), BackendOptions(device="cuda", precision="fp16", sizes=(SIZE,)),
                        EngineCache(tmp_path))


# --- wiring -------------------------------------------------------------------------------------------


def test_build_makes_a_neural_inpainter_from_config(tmp_path, monkeypatch):
    from streamfill.model import save_generator

    weights = save_generator(tiny_generator(), tmp_path / "w.safetensors")
    config = load_config(overrides={"engine": {"name": "torch", "weights": str(weights), "device": "cpu",
                                               "cache_dir": str(tmp_path / "cache")},
                                    "crop": {"sizes": [SIZE]}})
    choice = build.choose_engine(config)
    assert (choice.backend, choice.reason) == ("torch", None)
    inpainter = build.make_inpainter(config)
    images, masks = crops(2)
    assert inpainter.inpaint(images, masks).shape == images.shape
    with pytest.raises(EngineError, match="not found"):
        build.make_inpainter(load_config(overrides={"engine": {"name": "torch", "weights": str(tmp_path / "x")}}))


# --- CLI: bench and compile ---------------------------------------------------------------------------------


def test_engine_specs_in_the_repo_are_valid():
    from pathlib import Path

    specs = sorted((Path(__file__).resolve().parent.parent / "engines").glob("*.toml"))
    assert specs
    for path in specs:
        spec = build.read_engine_spec(path)
        assert spec["engine"] in select.NEURAL + select.AUTO and spec["sizes"] == sorted(spec["sizes"])


def test_bad_engine_spec_names_the_key(tmp_path):
    from streamfill.errors import ConfigError

    path = tmp_path / "bad.toml"
    path.write_text('[build]\nengine = "onnx"\nsizes = [256, 250]\n')
    with pytest.raises(ConfigError, match="multiple of 8"):
        build.read_engine_spec(path)
    path.write_text('[build]\nengin = "onnx"\n')
    with pytest.raises(ConfigError, match="build.engin"):
        build.read_engine_spec(path)


@pytest.mark.parametrize("value", ["256", '["abc"]', "[256.5]"])
def test_crop_sizes_of_the_wrong_kind_are_one_line_errors(tmp_path, capsys, value):
    """`sizes = 256` (no list) or `sizes = ["abc"]` in a config or an engine spec was an internal error (exit 70,
    TypeError / ValueError); `[256.5]` was taken as 256."""
    from streamfill.cli import main
    from streamfill.errors import ConfigError

    spec = tmp_path / "spec.toml"
    spec.write_text(f'[build]\nengine = "torch"\nsizes = {value}\n')
    with pytest.raises(ConfigError, match="build.sizes"):
        build.read_engine_spec(spec)
    config = tmp_path / "config.toml"
    config.write_text(f"[crop]\nsizes = {value}\n")
    assert main(["compile", "--engine", "torch", "--device", "cpu", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "crop.sizes" in err[0] and "internal error" not in err[0]


def test_crop_sizes_are_sorted_once_each():
    from streamfill.config import CropConfig

    assert CropConfig(sizes=[512, 256, 512]).sizes == (256, 512)


@pytest.mark.slow
def test_bench_json_rows(tmp_path, capsys):
    from streamfill.cli import main

    config = tmp_path / "tiny.toml"
    config.write_text(f'[model]\ncnum = 8\n[engine]\ncache_dir = "{tmp_path / "cache"}"\n')
    code = main(["bench", "--config", str(config), "--random-weights", "--engine", "torch", "--engine", "telea",
                 "--size", "64", "--batch", "1", "--batch", "2", "--runs", "2", "--warmup", "1", "--no-clip",
                 "--device", "cpu", "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["engine"], r["size"], r["batch"]) for r in rows] == [
        ("torch", 64, 1), ("telea", 64, 1), ("torch", 64, 2), ("telea", 64, 2)]
    for r in rows:
        assert {"engine", "size", "batch", "precision", "median_ms", "p95_ms", "crops_per_s"} <= set(r)
        assert 0 < r["median_ms"] <= r["p95_ms"] + 1e-9 and r["precision"] == "fp32"


def test_bench_engines_do_not_change_the_shared_generator(tmp_path):
    """`bench --random-weights --precision fp16 --engine torch --engine compile` (scripts/gpu_check.sh) shares one
    generator: eager torch converted it in place, so compile was measured with fp16 weights, not as it runs."""
    from streamfill.eval.bench import bench_engines

    generator = tiny_generator()
    config = load_config(overrides={"engine": {"device": "cpu", "cache_dir": str(tmp_path)}})
    rows = bench_engines(config, ["torch"], [SIZE], precision="bf16", runs=1, warmup=0, generator=generator)
    assert rows[0].precision == "bf16"
    assert {p.dtype for p in generator.parameters()} == {torch.float32}


def test_bench_engine_named_twice_is_measured_once():
    """`--engine telea --engine telea` loaded it twice and pooled both calls of a run under one name: two rows,
    each with 2 x runs timings (and a median over both)."""
    from streamfill.eval.bench import bench_engines

    rows = bench_engines(load_config(), ["telea", "telea"], [SIZE], runs=3, warmup=0)
    assert len(rows) == 1 and len(rows[0].wall_ms) == 3 == rows[0].runs


def test_bench_rejects_bad_sizes(capsys):
    from streamfill.cli import main

    assert main(["bench", "--size", "100", "--no-clip"]) == 1
    assert "multiple of 8" in capsys.readouterr().err


def test_compile_command_for_eager_torch(tmp_path, capsys):
    from streamfill.cli import main
    from streamfill.model import save_generator

    weights = save_generator(tiny_generator(), tmp_path / "w.safetensors")
    code = main(["compile", "--engine", "torch", "--weights", str(weights), "--device", "cpu", "--size", "64",
                 "--cache-dir", str(tmp_path / "cache")])
    assert code == 0 and "nothing to build" in capsys.readouterr().out


def test_compile_command_reports_a_cached_torch_compile_engine(tmp_path, monkeypatch, capsys):
    """A second `streamfill compile --engine compile` printed "compile: nothing to build (eager)": a valid cached
    entry came back as no entry at all. It is now listed as cached. (warmup is stubbed: no compile here.)"""
    from streamfill.backends import compile as C
    from streamfill.cli import main
    from streamfill.model import save_generator

    monkeypatch.setattr(C.CompiledInpainter, "warmup", lambda self, *a, **k: None)
    monkeypatch.setattr(C.torch.compiler, "save_cache_artifacts", lambda: (b"", None))
    weights = save_generator(tiny_generator(), tmp_path / "w.safetensors")
    config = tmp_path / "tiny.toml"
    config.write_text("[model]\ncnum = 8\n")
    argv = ["compile", "--engine", "compile", "--weights", str(weights), "--device", "cpu", "--size", "64",
            "--cache-dir", str(tmp_path / "cache"), "--config", str(config)]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("built: ")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("cached: ") and "compile-b1-2-4_s64-fp32-" in out and "nothing to build" not in out


def test_compile_command_builds_sizes_in_the_order_process_uses(monkeypatch, capsys):
    """`compile --engine compile --size 512 --size 256` built the engine under a key naming "s512-256", which
    `process` (crop.sizes sorted: "s256-512") never looks up, so the first run compiled it all again."""
    from streamfill.backends.select import EngineChoice
    from streamfill.cli import main

    seen = []

    def fake(config, engine, *, sizes, rebuild):
        seen.append(sizes)
        return EngineChoice(engine, engine, "cpu", "fp32"), []

    monkeypatch.setattr(build, "compile_engines", fake)
    assert main(["compile", "--engine", "compile", "--size", "512", "--size", "256", "--size", "512"]) == 0
    assert seen == [(256, 512)]


def test_compile_engine_says_what_it_builds_before_it_builds_it(tmp_path, monkeypatch, caplog):
    """`--engine compile` on a CPU compiled every size x batch for minutes in silence, then said "rebuild
    requested". The note now comes first, says why, and comes once. (warmup is stubbed: no compile here.)"""
    from streamfill.backends import compile as C
    from streamfill.backends.cache import EngineCache
    from streamfill.backends.neural import BackendOptions
    from streamfill.config import ModelConfig
    from streamfill.model import Generator

    order = []
    monkeypatch.setattr(C.CompiledInpainter, "warmup", lambda self, *a, **k: order.append("warmup"))
    monkeypatch.setattr(C.torch.compiler, "save_cache_artifacts", lambda: (b"x", None))
    generator = Generator(ModelConfig(cnum=8)).eval()
    options = BackendOptions(sizes=(256, 384), max_batch=2)


    class Record(logging.Handler):
        def emit(self, record):
            order.append(record.getMessage())

    handler = Record(logging.INFO)
    logger = logging.getLogger("streamfill")
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="streamfill"):
            C.load_compiled(generator, options, EngineCache(tmp_path))
    finally:
        logger.removeHandler(handler)
    assert order[0].startswith("compiling the generator") and "2 picture size(s) x 2 batch size(s)" in order[0]
    assert "not built yet" in order[0] and order[1] == "warmup" and len(order) == 2
