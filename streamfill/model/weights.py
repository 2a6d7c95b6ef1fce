"""Generator weights as safetensors files with metadata.

A file holds the generator's state dict (float32 or float16 tensors) and string metadata:

* ``streamfill.format`` = ``"generator/1"``
* ``streamfill.model_config`` = JSON of :class:`streamfill.config.ModelConfig` (rebuilds the architecture)
* ``streamfill.provenance`` = JSON object given by the caller (data, steps, licence, source, ...)

Loading checks every key and shape against the architecture and names what does not match.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from streamfill.config import ModelConfig
from streamfill.errors import ConfigError, InputError, WeightsError
from streamfill.model.generator import Generator

FORMAT = "generator/1"
_FORMAT_KEY = "streamfill.format"
_CONFIG_KEY = "streamfill.model_config"
_PROVENANCE_KEY = "streamfill.provenance"


FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)  # what a weights tensor may be


def _list(keys, limit: int = 6) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def check_state_dict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Raise WeightsError naming missing keys, unexpected keys and shape mismatches between ``state`` and
    ``model.state_dict()``."""
    expected = model.state_dict()
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys: {_list(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys: {_list(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {'; '.join(wrong[:6])}" + (" ..." if len(wrong) > 6 else ""))
    if problems:
        raise WeightsError(f"{source} do not match the model: " + " | ".join(problems))


def load_state_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Check ``state`` (see :func:`check_state_dict`) and copy it into ``model``, converting dtypes (e.g. a
    float16 file into a float32 model)."""
    check_state_dict(model, state, source)
    own = model.state_dict()
    for key, value in state.items():
        if value.dtype not in FLOAT_DTYPES:  # (float8 is a float type torch cannot even check for NaN)
            raise WeightsError(f"{source}: tensor {key} has dtype {str(value.dtype).replace('torch.', '')}, "
                               "expected float16, bfloat16, float32 or float64")
        if not torch.isfinite(value).all():
            raise WeightsError(f"{source}: tensor {key} contains inf or NaN")
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value.to(own[key].dtype))


def save_generator(
    generator: Generator,
    path: str | Path,
    metadata: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write ``generator``'s weights to ``path`` (.safetensors) with its config and ``metadata`` (any
    JSON-serialisable mapping, stored as provenance). ``dtype`` float32 or float16. Returns the path."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise WeightsError(f"dtype = {dtype}: must be float32, float16 or bfloat16")
    path = Path(path)
    if path.is_dir() or not path.parent.is_dir():
        raise WeightsError(f"cannot write weights to {path}: " + ("it is a folder" if path.is_dir()
                                                                 else f"no folder {path.parent}"))
    try:
        provenance = json.dumps(dict(metadata or {}), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"metadata is not JSON-serialisable: {exc}") from None
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in generator.state_dict().items()}
    for key, value in tensors.items():  # (loading refuses such a file: it would be written, then useless)
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise WeightsError(f"cannot write weights to {path}: tensor {key} has inf or NaN values "
                               f"(as {str(dtype).replace('torch.', '')})")
    meta = {
        _FORMAT_KEY: FORMAT,
        _CONFIG_KEY: json.dumps(dataclasses.asdict(generator.config), sort_keys=True),
        _PROVENANCE_KEY: provenance,
    }
    # written under a temporary name, then renamed: an interrupted or failed write never leaves a truncated
    # file under the final name (nor replaces a good one)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        os.chmod(tmp, 0o644)  # safetensors writes 0600: weights are read by others too (a service, a shared cache)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, SafetensorError)):
            raise WeightsError(f"cannot write weights to {path}: {exc}") from None
        raise
    return path


def read_weights(path: str | Path, tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (``{}`` with ``tensors=False``) and raw string metadata of a safetensors file (CPU).
    Raises WeightsError if unreadable."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path} is a folder; give a .safetensors weights file")
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = dict(fh.metadata() or {})
            keys = fh.keys() if tensors else []
            values = {k: fh.get_tensor(k) for k in keys}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from None
    return values, meta


def read_metadata(path: str | Path) -> dict[str, Any]:
    """``{"format", "model_config": ModelConfig | None, "provenance": dict}`` of a generator weights file
    (reads the header only, not the tensors)."""
    _, meta = read_weights(path, tensors=False)
    return _parse_metadata(meta, path)


def _parse_metadata(meta: Mapping[str, str], path) -> dict[str, Any]:
    config = None
    if _CONFIG_KEY in meta:
        try:
            fields = json.loads(meta[_CONFIG_KEY])
            if not isinstance(fields, dict):
                raise ValueError(f"a JSON object was expected, not {type(fields).__name__}")
            config = ModelConfig(**fields)
        except (ValueError, TypeError, ConfigError) as exc:
            raise WeightsError(f"{path}: bad model config in metadata: {exc}") from None
    try:
        provenance = json.loads(meta.get(_PROVENANCE_KEY, "{}"))
    except ValueError as exc:
        raise WeightsError(f"{path}: bad provenance metadata: {exc}") from None
    if not isinstance(provenance, dict):
        raise WeightsError(f"{path}: bad provenance metadata: a JSON object was expected, not "
                           f"{type(provenance).__name__}")
    return {"format": meta.get(_FORMAT_KEY), "model_config": config, "provenance": provenance}


def load_generator(
    path: str | Path, config: ModelConfig | None = None, device: str | torch.device = "cpu"
) -> Generator:
    """Build a :class:`Generator` from a weights file and load it (eval mode, float32, on ``device``).

    The architecture comes from the file's metadata; ``config`` is used only for files without it (and must
    then match). float16/bfloat16 files are converted to float32.
    """
    tensors, meta = read_weights(path)
    info = _parse_metadata(meta, path)
    if info["format"] not in (None, FORMAT):
        raise WeightsError(f"{path}: unsupported weights format {info['format']!r} (expected {FORMAT!r})")
    model_config = info["model_config"] or config
    if model_config is None:
        raise WeightsError(f"{path} has no model config in its metadata; pass config=ModelConfig(...)")
    generator = Generator(model_config)
    load_state_into(generator, tensors, source=str(path))
    try:
        return generator.to(device).eval()
    except (RuntimeError, AssertionError) as exc:  # an unknown device, or CUDA in a CPU-only torch
        raise InputError(f"device {str(device)!r}: {str(exc).splitlines()[0] if str(exc) else 'not available'}"
                         ) from None
