"""Import the widely used PyTorch conversion of the official DeepFill v2 checkpoints (Places2, CelebA-HQ).

That conversion keeps the official TensorFlow layer names: ``conv1.conv.weight`` ... ``conv17``,
``xconv1`` ... ``xconv10_atrous``, ``pmconv1`` ... ``pmconv10``, ``allconv11`` ... ``allconv17``; the
upsampling layers are nested one level deeper (``conv13_upsample.conv.conv.weight``). The file is either a
bare state dict or a dict with the generator under ``"G"``.

The official models read and write **BGR** images (they were trained on OpenCV-decoded images). streamfill
models are RGB throughout, so the conversion happens here, once: the input-channel order of the three layers
that read an image (``conv1``, ``xconv1``, ``pmconv1``; their first three input channels) and the
output-channel order of the two RGB output layers (``conv17``, ``allconv17``) are reversed. The converted
model on an RGB image gives exactly the official model's output on the BGR image, channel-reversed.

The official weights are licensed for non-commercial use only: streamfill never ships them.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from streamfill.config import ModelConfig
from streamfill.errors import ConfigError, WeightsError
from streamfill.model.generator import BRANCHES, Generator
from streamfill.model.weights import FLOAT_DTYPES, check_state_dict, load_state_into, save_generator

_BRANCH_OF = {row[0]: branch for branch, rows in BRANCHES.items() for row in rows}
IMAGE_INPUT_LAYERS = ("coarse.conv1", "conv_branch.xconv1", "attention_encoder.pmconv1")
RGB_OUTPUT_LAYERS = ("coarse.conv17", "decoder.allconv17")
LICENCE_NOTE = (
    "Official DeepFill v2 weights (JiahuiYu/generative_inpainting): non-commercial use only; "
    "not redistributed by streamfill."
)


def _swap_rgb_bgr(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = dict(state)
    rev = torch.tensor([2, 1, 0])
    for layer in IMAGE_INPUT_LAYERS:
        key = f"{layer}.conv.weight"
        w = out[key].clone()
        w[:, :3] = w[:, :3].index_select(1, rev)
        out[key] = w
    for layer in RGB_OUTPUT_LAYERS:
        for kind in ("weight", "bias"):
            key = f"{layer}.conv.{kind}"
            out[key] = out[key].index_select(0, rev)
    return out


def _unwrap(obj: Any) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "G" in obj and isinstance(obj["G"], Mapping):
        obj = obj["G"]
    if (not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values())
            or not all(isinstance(k, str) for k in obj)):
        raise WeightsError("not a generator state dict (expected a dict of tensors by name, or one under 'G')")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def infer_official_config(state: Mapping[str, torch.Tensor], **overrides: Any) -> ModelConfig:
    """The :class:`ModelConfig` of an official-layout (TF-named) state dict: ``cnum`` from ``conv1``'s output
    width, ``guidance`` from its input channels (5 = official, 6 = with a guidance channel). ``overrides``
    set the attention options (e.g. ``attention_fuse=False``)."""
    w = state.get("conv1.conv.weight")
    if w is None or w.dim() != 4:
        raise WeightsError("no 4-D tensor 'conv1.conv.weight': not the TF-named DeepFill v2 layout")
    in_channels = w.shape[1]
    if in_channels not in (5, 6):
        raise WeightsError(f"conv1 reads {in_channels} channels: expected 5 (official) or 6 (with guidance)")
    try:
        return ModelConfig(cnum=int(w.shape[0]), guidance=in_channels == 6, **overrides)
    except (ConfigError, TypeError) as exc:
        raise WeightsError(f"cannot build a model config for these weights: {exc}") from None


def official_to_streamfill(state: Mapping[str, torch.Tensor], bgr_to_rgb: bool = True) -> dict[str, torch.Tensor]:
    """Rename TF-named keys (``conv13_upsample.conv.conv.weight``) to streamfill's
    (``coarse.conv13_upsample.conv.conv.weight``) and, with ``bgr_to_rgb``, convert the colour order."""
    out = {}
    unknown = []
    for key, value in _unwrap(state).items():
        layer = key.split(".", 1)[0]
        if layer not in _BRANCH_OF:
            unknown.append(key)
            continue
        if value.dtype not in FLOAT_DTYPES:  # int, bool, complex or float8: no weights of this model
            raise WeightsError(f"tensor {key} has dtype {str(value.dtype).replace('torch.', '')}: expected float16, "
                               "bfloat16, float32 or float64")
        out[f"{_BRANCH_OF[layer]}.{key}"] = value.detach().to("cpu", torch.float32)
    if unknown:
        raise WeightsError(f"unknown layer names in the official-layout weights: {', '.join(sorted(unknown)[:6])}")
    return _swap_rgb_bgr(out) if bgr_to_rgb else out


def streamfill_to_official(state: Mapping[str, torch.Tensor], rgb_to_bgr: bool = True) -> dict[str, torch.Tensor]:
    """Inverse of :func:`official_to_streamfill` (for tests and for comparing against other ports)."""
    state = _swap_rgb_bgr(dict(state)) if rgb_to_bgr else dict(state)
    out = {}
    for key, value in state.items():
        branch, rest = key.split(".", 1)
        if branch not in BRANCHES:
            raise WeightsError(f"unexpected key {key!r}: not a streamfill generator weight")
        out[rest] = value
    return out


def load_official(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a TF-named PyTorch checkpoint (``.pth``) safely (tensors only, no code execution)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols and casts: the error line says it all
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load raises many unrelated types for a bad file
        # torch's messages run to a paragraph (the weights_only advice): keep their first sentence
        detail = str(exc).split(". ")[0].splitlines()[0][:160] if str(exc) else ""
        raise WeightsError(f"cannot read {path} as a PyTorch checkpoint (loaded as tensors only, no code): "
                           f"{type(exc).__name__}{': ' + detail if detail else ''}") from None
    return dict(_unwrap(obj))


def import_official(
    src: str | Path,
    dst: str | Path,
    bgr_to_rgb: bool = True,
    metadata: Mapping[str, Any] | None = None,
    **config_overrides: Any,
) -> ModelConfig:
    """Convert the TF-named checkpoint ``src`` into a streamfill weights file ``dst`` (.safetensors).

    The architecture is inferred (:func:`infer_official_config`); ``config_overrides`` set attention options.
    The provenance metadata records the source file, the colour conversion and the licence note. Returns
    the model config written.
    """
    if not str(dst).endswith(".safetensors"):
        raise WeightsError(f"{dst}: the output must end in .safetensors (that is what is written)")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise WeightsError(f"metadata = {metadata!r}: expected a mapping of names to JSON values")
    official = load_official(src)
    config = infer_official_config(official, **config_overrides)
    generator = Generator(config)
    # keys and shapes first: the colour conversion indexes layers a malformed file may lack or hold mis-shaped
    check_state_dict(generator, official_to_streamfill(official, bgr_to_rgb=False), source=str(src))
    state = official_to_streamfill(official, bgr_to_rgb=bgr_to_rgb)
    load_state_into(generator, state, source=str(src))   # dtypes, and no inf/NaN (it imported a NaN file)
    provenance = {
        "source": Path(src).name,
        "converted_from": "TF-named PyTorch conversion of the official DeepFill v2 checkpoint",
        "colour_order_converted": "BGR->RGB" if bgr_to_rgb else "none",
        "licence": LICENCE_NOTE,
        **dict(metadata or {}),
    }
    save_generator(generator, dst, metadata=provenance)
    return dataclasses.replace(config)
