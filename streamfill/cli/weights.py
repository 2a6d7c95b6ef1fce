"""`streamfill weights`: import the official DeepFill v2 checkpoints, inspect weights files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streamfill.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("weights", help="import official DeepFill v2 weights or inspect a weights file")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    imp = wsub.add_parser(
        "import",
        help="convert the TF-named PyTorch conversion of the official checkpoints (Places2, CelebA-HQ) "
        "to a streamfill .safetensors file (non-commercial weights: never redistribute them)",
    )
    imp.add_argument("src", help="checkpoint .pth in the official TF layer naming (state dict, or dict with 'G')")
    imp.add_argument("dst", help="output .safetensors file")
    imp.add_argument("--keep-bgr", action="store_true",
                     help="do not convert the official BGR colour order to RGB (only for checkpoints already RGB)")
    imp.add_argument("--no-fuse", action="store_true", help="record attention fusion as off in the model config")
    imp.add_argument("--attention-downsampling", choices=("align_corners", "nearest"), default="align_corners",
                     help="nearest-resize rule recorded in the model config (official: align_corners)")
    imp.add_argument("--force", action="store_true", help="overwrite DST if it exists")
    imp.set_defaults(func=run_import)
    info = wsub.add_parser("info", help="show the model config and provenance of a .safetensors weights file")
    info.add_argument("path", help="weights file")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_info)


def run_import(args: argparse.Namespace) -> int:
    from streamfill.model.importer import LICENCE_NOTE, import_official

    src, dst = Path(args.src), Path(args.dst)
    if not src.is_file():
        raise InputError(f"checkpoint not found: {src}")
    if dst.exists() and not args.force:
        raise InputError(f"{dst} exists (use --force to overwrite)")
    if dst.resolve() == src.resolve():
        raise InputError("DST must differ from SRC")
    if dst.suffix.lower() != ".safetensors":
        raise InputError(f"{dst}: the weights are written as .safetensors; name it so")
    if not dst.parent.is_dir():
        raise InputError(f"{dst}: no folder {dst.parent}")
    config = import_official(
        src, dst, bgr_to_rgb=not args.keep_bgr, attention_fuse=not args.no_fuse,
        attention_downsampling=args.attention_downsampling,
    )
    print(f"wrote {dst} (cnum={config.cnum}, guidance={config.guidance}, "
          f"colour {'BGR kept' if args.keep_bgr else 'BGR->RGB'})")
    print(f"note: {LICENCE_NOTE}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    import dataclasses

    from streamfill.model.weights import read_metadata, read_weights

    tensors, _ = read_weights(args.path)
    meta = read_metadata(args.path)
    config = meta["model_config"]
    data = {
        "path": str(args.path),
        "format": meta["format"],
        "model_config": dataclasses.asdict(config) if config else None,
        "parameters": int(sum(t.numel() for t in tensors.values())),
        "dtypes": sorted({str(t.dtype).replace("torch.", "") for t in tensors.values()}),
        "provenance": meta["provenance"],
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(data["path"])
    rows = [(key, data[key]) for key in ("format", "model_config", "parameters", "dtypes")]
    rows += list(data["provenance"].items())
    width = max(len(key) for key, _ in rows) + 2  # ("colour_order_converted" ran into its value)
    for key, value in rows:
        print(f"  {key:<{width}}{value}")
    return 0
