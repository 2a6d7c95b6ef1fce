"""Which backend runs an engine name: ``auto`` / ``deepfill`` pick TensorRT > torch.compile > eager torch on
CUDA and ONNX Runtime on CPU; explicit names are checked for availability. The choice is returned as data,
with a one-line reason whenever the preferred backend was not taken (the CLI prints it)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from streamfill.errors import EngineError

CLASSICAL = ("telea", "ns")
NEURAL = ("torch", "compile", "onnx", "tensorrt")
AUTO = ("auto", "deepfill")
CUDA_ORDER = ("tensorrt", "compile", "torch")


@dataclass(frozen=True)
class EngineChoice:
    """``engine``: the name asked for; ``backend``: what runs (torch | compile | onnx | tensorrt | telea | ns);
    ``device``: "cpu" / "cuda[:N]"; ``precision``: fp32 | fp16 | bf16; ``reason``: one line saying why the
    preferred backend was not used, or None."""

    engine: str
    backend: str
    device: str
    precision: str
    reason: str | None = None

    @property
    def neural(self) -> bool:
        return self.backend in NEURAL


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def unavailable(backend: str, device: str, precision: str) -> str | None:
    """None when ``backend`` can run on ``device`` in ``precision``, else a short reason."""
    cuda = device.startswith("cuda")
    if backend == "tensorrt":
        if not cuda:
            return "tensorrt needs a CUDA GPU"
        if not _installed("torch_tensorrt"):
            return "torch-tensorrt is not installed"
    elif backend == "compile":
        if cuda and not _installed("triton"):
            return "torch.compile on CUDA needs triton, which is not installed"
    elif backend == "onnx":
        if not _installed("onnxruntime"):
            return "onnxruntime is not installed"
        if precision != "fp32":
            return f"ONNX Runtime runs fp32 only (precision {precision})"
    elif backend != "torch":
        return f"unknown backend {backend!r}"
    return None


def choose(engine: str, device: str = "auto", precision: str = "auto", weights_available: bool = True) -> EngineChoice:
    """Resolve an engine name (config ``engine.name``) to a concrete backend, device and precision.

    ``device``: auto | cpu | cuda[:N]; ``precision``: auto | fp32 | fp16 | bf16 (auto = fp16 on CUDA, fp32 on
    CPU); ``weights_available``: whether generator weights exist (``auto`` falls back to classical telea when
    not; the other neural names fail later with a clear error). Probes the machine (CUDA, installed packages).
    """
    if engine in CLASSICAL:
        return EngineChoice(engine, engine, "cpu", "fp32")
    if engine not in NEURAL + AUTO:
        raise EngineError(f"unknown engine {engine!r} (known: {', '.join(CLASSICAL + AUTO + NEURAL)})")
    if engine == "auto" and not weights_available:
        return EngineChoice(engine, "telea", "cpu", "fp32",
                            "no generator weights installed (pass --weights PATH): using classical telea")
    from streamfill.backends.neural import resolve_device  # imports torch: only for neural engines

    dev = resolve_device(device)
    cuda = dev.startswith("cuda")
    prec = ("fp16" if cuda else "fp32") if precision == "auto" else precision
    if engine in NEURAL:
        why = unavailable(engine, dev, prec)
        if why is not None:
            raise EngineError(f"engine {engine} is unavailable: {why}")
        return EngineChoice(engine, engine, dev, prec)
    if cuda:
        skipped = []
        for backend in CUDA_ORDER:
            why = unavailable(backend, dev, prec)
            if why is None:
                reason = f"{'; '.join(skipped)}: using {backend}" if skipped else None
                return EngineChoice(engine, backend, dev, prec, reason)
            skipped.append(why)
        raise EngineError(f"engine {engine}: no backend can run on {dev} ({'; '.join(skipped)})")
    no_gpu = "no CUDA GPU found" if device == "auto" else None
    why = unavailable("onnx", dev, prec)
    if why is None:
        reason = f"{no_gpu}: using onnx (ONNX Runtime) on CPU" if no_gpu else None
        return EngineChoice(engine, "onnx", dev, prec, reason)
    parts = [p for p in (no_gpu, why) if p]
    return EngineChoice(engine, "torch", dev, prec, f"{'; '.join(parts)}: using torch (eager) on CPU")
