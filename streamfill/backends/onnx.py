"""ONNX Runtime backend (engine ``onnx``, the default on CPU).

The :class:`~streamfill.backends.neural.InpaintGraph` is exported once per shape bucket (square working size
fixed, batch dynamic) with ``torch.onnx.export`` into the engine cache; sessions run it with all graph
optimisations on and as many intra-op threads as the process has cores (``[engine] threads``). Static H/W
lets ONNX Runtime fold the attention's shape arithmetic. fp32 only: ONNX Runtime's CPU kernels have no fast
fp16/bf16 path. ``onnxruntime`` is imported only in this module.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamfill.backends.cache import EngineCache, EngineKey
from streamfill.backends.neural import (
    BackendOptions,
    InpaintGraph,
    check_batch,
    device_tag,
    model_config_json,
    model_inputs,
    to_uint8,
    version,
    weights_digest,
)
from streamfill.errors import EngineError

OPSET = 18


@contextlib.contextmanager
def _quiet(logger_name: str):
    """Raise a logger's level to ERROR for the duration (the exporter logs optional-package notices)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def export_bucket(generator: nn.Module, path: str | os.PathLike, size: int, opset: int = OPSET) -> Path:
    """Write the inference graph for ``size`` x ``size`` crops (dynamic batch) to ``path`` as ONNX. Inputs
    ``image`` N x 3 x S x S, ``mask`` N x 1 x S x S (+ ``guidance``), output ``output`` N x 3 x S x S."""
    from torch.export import Dim

    graph = InpaintGraph(generator.eval()).eval()
    image = torch.rand(2, 3, size, size) * 2 - 1
    mask = torch.zeros(2, 1, size, size)
    mask[:, :, size // 4: size // 2, size // 4: size // 2] = 1
    args = (image, mask, torch.zeros_like(mask)) if graph.guided else (image, mask)
    batch = Dim("batch", min=1, max=1024)
    names = ["image", "mask", "guidance"][: len(args)]
    path = Path(path)
    try:
        # The exporter reports progress on stdout and warns freely; the library never prints.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, args, dynamo=True, opset_version=opset, verbose=False,
                                        input_names=names, output_names=["output"],
                                        dynamic_shapes=tuple({0: batch} for _ in args))
            program.save(str(path))
    except Exception as exc:  # noqa: BLE001 - the exporter raises many internal types
        raise EngineError(f"ONNX export of the generator failed: {type(exc).__name__}: {exc}") from exc
    return path


def onnx_key(generator: nn.Module, size: int, precision: str = "fp32", digest: str | None = None,
             device: str = "cpu") -> EngineKey:
    """The cache key of one exported bucket (``digest``: a precomputed :func:`weights_digest`)."""
    return EngineKey(
        backend="onnx", weights=digest or weights_digest(generator), bucket=str(size), precision=precision,
        versions={"torch": torch.__version__, "onnx": version("onnx"), "onnxruntime": version("onnxruntime")},
        device=device_tag(device), extra={"opset": str(OPSET), "model": model_config_json(generator)},
    )


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's cpuset), not the
    machine's count (``os.cpu_count``), which would start a thread per host core on a pinned process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return os.cpu_count() or 1


def session_options(threads: int = 0):
    """ONNX Runtime session options tuned for a small CPU: all graph optimisations, sequential execution,
    ``threads`` intra-op threads (0 = every core the process may use), one inter-op thread, no spin-waiting
    worker threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads or usable_cores()
    so.inter_op_num_threads = 1
    # No busy-waiting between ops: on a small or shared CPU spinning workers steal the cores that decode and
    # encode (FFmpeg threads) and other processes need; measured faster on the 2-core bench machine.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def providers(device: str) -> list[str]:
    import onnxruntime as ort

    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise EngineError("onnx on cuda needs onnxruntime-gpu (CUDAExecutionProvider is not available)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(path: str | os.PathLike, threads: int = 0, device: str = "cpu"):
    """An ``onnxruntime.InferenceSession`` on ``path``; EngineError if ONNX Runtime rejects the file."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), session_options(threads), providers=providers(device))
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises several pybind11 types
        raise EngineError(f"ONNX Runtime cannot load {path}: {exc}") from None


class OnnxInpainter:
    """Inpainter over ONNX Runtime sessions, one per square working size.

    ``inpaint(images, masks, guidance=None)``: images N x S x S x 3 uint8 RGB, masks N x S x S uint8 (non-zero =
    hole), S one of ``sessions``' sizes. Returns N x S x S x 3 uint8 RGB (input pixels outside the hole).
    ``run_float`` returns the graph's N x 3 x S x S float32 output in [-1, 1] (for parity checks).
    """

    name = "onnx"

    def __init__(self, sessions: Mapping[int, object], guided: bool = False, max_batch: int = 4) -> None:
        self.sessions = dict(sessions)
        self.guided = guided
        self.max_batch = max(1, int(max_batch))

    def run_float(self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        check_batch(images, masks, guidance)
        n, h, w = images.shape[:3]
        session = self.sessions.get(h) if h == w else None
        if session is None:
            raise EngineError(f"no ONNX engine for {h}x{w} crops (built for {sorted(self.sessions)})")
        names = [i.name for i in session.get_inputs()]
        outs = []
        for s in range(0, n, self.max_batch):
            sl = slice(s, s + self.max_batch)
            arrays = model_inputs(images[sl], masks[sl], None if guidance is None else guidance[sl], self.guided)
            outs.append(session.run(None, dict(zip(names, arrays, strict=True)))[0])
        return np.concatenate(outs)

    def inpaint(self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        return to_uint8(self.run_float(images, masks, guidance))


def load_onnx(generator: nn.Module, options: BackendOptions, cache: EngineCache) -> tuple[OnnxInpainter, list]:
    """Build (or reuse from ``cache``) one ONNX file per size in ``options.sizes`` and open sessions.
    Returns the inpainter and the cache entries (``entry.built`` says whether each was exported now)."""
    if options.precision != "fp32":
        raise EngineError(f"engine onnx runs fp32 only (got precision {options.precision}); use torch for "
                          "fp16/bf16")
    digest = weights_digest(generator)
    sessions, entries = {}, []
    for size in options.sizes:
        key = onnx_key(generator, size, "fp32", digest, options.device)
        entry = cache.get_or_build(key, ".onnx", lambda p, s=size: export_bucket(generator, p, s),
                                   rebuild=options.rebuild)
        try:
            sessions[size] = open_session(entry.path, options.threads, options.device)
        except EngineError:
            # Valid checksum but unloadable (e.g. written by an incompatible exporter): rebuild once.
            entry = cache.get_or_build(key, ".onnx", lambda p, s=size: export_bucket(generator, p, s), rebuild=True,
                                       why="ONNX Runtime could not load the cached file")
            sessions[size] = open_session(entry.path, options.threads, options.device)
        entries.append(entry)
    guided = bool(getattr(getattr(generator, "config", None), "guidance", False))
    return OnnxInpainter(sessions, guided=guided, max_batch=options.max_batch), entries
