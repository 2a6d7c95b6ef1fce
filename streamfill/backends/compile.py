"""torch.compile backend (engine ``compile``).

The inference graph is compiled with ``dynamic=False`` for a fixed set of shape buckets: square working sizes
(``crop.sizes``) x batch sizes (powers of two up to ``[engine] max_batch``; a batch is padded up to its
bucket). :meth:`CompiledInpainter.warmup` compiles every bucket ahead of time; once a bucket is warm it runs
under ``torch.compiler.set_stance("fail_on_recompile")``, so a recompile mid-clip is an error, not a stall.
On CUDA the mode is ``"reduce-overhead"`` (CUDA graphs). Inductor's artefacts are saved into the engine cache
(``torch.compiler.save_cache_artifacts``) so a later process warms up from them.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import torch
from torch import nn

from streamfill.backends.cache import CacheEntry, EngineCache, EngineKey
from streamfill.backends.neural import (
    DTYPES,
    BackendOptions,
    InpaintGraph,
    TorchExecutor,
    batch_buckets,
    check_batch,
    device_tag,
    model_config_json,
    pad_batch,
    weights_digest,
)
from streamfill.errors import EngineError

_log = logging.getLogger(__name__)


class CompiledInpainter:
    """Inpainter running a ``torch.compile``d generator on fixed shape buckets.

    ``inpaint(images, masks, guidance=None)``: images N x S x S x 3 uint8 RGB, masks N x S x S uint8 (non-zero =
    hole), S one of ``sizes``; returns N x S x S x 3 uint8 RGB. ``run_float`` returns the graph's
    N x 3 x S x S float32 output in [-1, 1]. The constructor compiles nothing (compilation is lazy or
    :meth:`warmup`).
    """

    name = "compile"

    def __init__(self, generator: nn.Module, device: str = "cpu", precision: str = "fp32",
                 sizes: tuple[int, ...] = (256, 384, 512), max_batch: int = 4,
                 channels_last: bool | None = None) -> None:
        self.device = device
        self.cuda = device.startswith("cuda")
        self.precision = precision
        self.sizes = tuple(sizes)
        self.buckets = batch_buckets(max(1, int(max_batch)))
        channels_last = self.cuda if channels_last is None else channels_last
        generator = generator.to(device).eval()
        if channels_last:
            generator = generator.to(memory_format=torch.channels_last)
        self.graph = InpaintGraph(generator).eval()
        self.executor = TorchExecutor(device, DTYPES[precision], autocast=True, channels_last=channels_last,
                                      guided=self.graph.guided)
        self.mode = "reduce-overhead" if self.cuda else None
        self._compiled = torch.compile(self.graph, dynamic=False, mode=self.mode)
        self.warm: set[tuple[int, int]] = set()

    def _call(self, *args):
        if self.cuda:
            torch.compiler.cudagraph_mark_step_begin()
        return self._compiled(*args)

    def _run_bucket(self, images, masks, guidance, as_float: bool):
        n, size = images.shape[0], images.shape[1]
        b = pad_batch(n, self.buckets)
        if b != n:  # pad with copies of the last crop so the shape is a compiled bucket
            reps = [images, np.repeat(images[-1:], b - n, 0)]
            images = np.concatenate(reps)
            masks = np.concatenate([masks, np.repeat(masks[-1:], b - n, 0)])
            if guidance is not None:
                guidance = np.concatenate([guidance, np.repeat(guidance[-1:], b - n, 0)])
        limit = len(self.sizes) * len(self.buckets) + 2
        stance = (torch.compiler.set_stance("fail_on_recompile") if (b, size) in self.warm
                  else contextlib.nullcontext())
        try:
            with torch._dynamo.config.patch(recompile_limit=limit), stance:
                out = self.executor.run(self._call, images, masks, guidance, as_float=as_float)
        except RuntimeError as exc:
            if "recompil" in str(exc).lower():
                raise EngineError(f"compiled engine recompiled for a warm bucket {b}x{size}: {exc}") from exc
            if isinstance(exc, torch._dynamo.exc.BackendCompilerFailed):  # e.g. no C++ compiler for inductor
                inner = getattr(exc, "inner_exception", None) or exc
                lines = str(inner).split(" Set TORCHDYNAMO_VERBOSE")[0].strip().splitlines() or [""]
                raise EngineError(f"engine compile: torch.compile failed for {b} x {size}x{size} crops "
                                  f"({type(inner).__name__}: {lines[0]}); engines torch and onnx need no "
                                  "compiler") from exc
            raise
        self.warm.add((b, size))
        return out[:n]

    def _run(self, images, masks, guidance, as_float):
        check_batch(images, masks, guidance)
        if images.shape[1] != images.shape[2] or images.shape[1] not in self.sizes:
            raise EngineError(f"no compiled bucket for {images.shape[1]}x{images.shape[2]} crops "
                              f"(buckets: {list(self.sizes)})")
        top = self.buckets[-1]
        outs = [self._run_bucket(images[s:s + top], masks[s:s + top],
                                 None if guidance is None else guidance[s:s + top], as_float)
                for s in range(0, images.shape[0], top)]
        return np.concatenate(outs)

    def run_float(self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        return self._run(images, masks, guidance, True)

    def inpaint(self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None) -> np.ndarray:
        return self._run(images, masks, guidance, False)

    def warmup(self, sizes: tuple[int, ...] | None = None, batches: tuple[int, ...] | None = None) -> None:
        """Compile (and run once) every bucket: ``sizes`` x ``batches`` (default: all of them)."""
        for size in sizes or self.sizes:
            for b in batches or self.buckets:
                images = np.full((b, size, size, 3), 127, np.uint8)
                masks = np.zeros((b, size, size), np.uint8)
                masks[:, size // 4: size // 2, size // 4: size // 2] = 255
                self._run(images, masks, None, False)


def compile_key(generator: nn.Module, options: BackendOptions, digest: str | None = None) -> EngineKey:
    buckets = batch_buckets(options.max_batch)
    return EngineKey(
        backend="compile", weights=digest or weights_digest(generator),
        bucket=f"b{'-'.join(map(str, buckets))}_s{'-'.join(map(str, options.sizes))}",
        precision=options.precision, versions={"torch": torch.__version__}, device=device_tag(options.device),
        extra={"model": model_config_json(generator), "mode": "reduce-overhead" if options.device != "cpu" else ""},
    )


def load_compiled(generator: nn.Module, options: BackendOptions, cache: EngineCache,
                  warmup: bool = True) -> tuple[CompiledInpainter, list]:
    """A :class:`CompiledInpainter`, warmed up over every bucket (``warmup``), seeded from the engine cache's
    saved inductor artefacts when a valid entry exists, which is (re)written after a cold warm-up."""
    inpainter = CompiledInpainter(generator, options.device, options.precision, options.sizes, options.max_batch)
    if not warmup:
        return inpainter, []
    key = compile_key(generator, options)
    artefact, _ = cache.paths(key, ".bin")
    problem = "rebuild requested" if options.rebuild else cache.check(key, ".bin")
    if problem is None:
        blob = artefact.read_bytes()
        if blob:
            try:
                torch.compiler.load_cache_artifacts(blob)
            except Exception:  # noqa: BLE001 - a bad artefact means: compile from scratch and rewrite it
                problem = "saved compile artefacts rejected by torch"
    if problem is not None:
        # said before the slow part (it was said after it, as "rebuild requested"): on a CPU each picture size
        # x batch size takes 10-40 s to compile
        _log.info("compiling the generator with torch.compile for %d picture size(s) x %d batch size(s) (%s): "
                  "minutes on a CPU, once for these weights, then cached (`streamfill compile` builds ahead)",
                  len(inpainter.sizes), len(inpainter.buckets), "not built yet" if problem == "not built" else problem)
    inpainter.warmup()
    entries = [CacheEntry(artefact, key, built=False)] if problem is None else []
    if problem is not None:

        def save(path):
            saved = torch.compiler.save_cache_artifacts()
            path.write_bytes(saved[0] if saved else b"")

        entries.append(cache.get_or_build(key, ".bin", save, rebuild=True, announce=False, why=problem))
    return inpainter, entries
