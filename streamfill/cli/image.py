"""`streamfill image`: fill the hole of one picture with the generator, optionally steered by a sketch."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from streamfill.cli.common import check_writable, torch_device

_log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "image",
        help="fill the masked region of one image (DeepFill v2; optional sketch to steer the result)",
        description="streamfill image IN --mask M [--sketch S] -o OUT. The mask and sketch are images of the "
        "same size as IN (turned as shown: a JPEG's EXIF orientation counts); white mask pixels (above [mask] "
        "threshold, 127; on a transparent layer, what is painted) are filled, white sketch pixels are the lines "
        "the result should follow inside the hole.",
    )
    p.add_argument("input", help="input image (PNG, JPEG, ...)")
    p.add_argument("--mask", required=True, help="mask image, white = fill")
    p.add_argument("--sketch", help="sketch image, white = edge to follow (used inside the hole)")
    p.add_argument("-o", "--output", required=True, help="output image (format from the suffix)")
    p.add_argument("--weights", help="generator .safetensors (default: the shipped weights)")
    p.add_argument("--engine", choices=("deepfill", "telea", "ns", "fsr_fast", "fsr_best"), default="deepfill",
                   help="deepfill (default) or a classical OpenCV method: telea, ns, or OpenCV contrib's frequency-"
                        "selective reconstruction fsr_fast (~1 s per 256 px crop) / fsr_best (~30 s; slow, often the "
                        "best classical result on still pictures)")
    p.add_argument("--dilate", type=int, metavar="PX",
                   help="safety margin: grow the mask by PX pixels (default: [mask] dilate, 4, as in process)")
    p.add_argument("--feather", type=int, metavar="PX",
                   help="soften the paste over PX pixels inside the safety margin (default: [mask] feather, 3)")
    p.add_argument("--device", type=torch_device, help="torch device for deepfill: cpu (default), cuda, cuda:N")
    p.add_argument("--config", metavar="TOML",
                   help="streamfill config ([crop] working sizes, [mask] dilate and feather)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from streamfill.config import load_config
    from streamfill.errors import InputError, MaskError
    from streamfill.io import check_image_output, is_image_file, picture_format, read_image, write_image
    from streamfill.masks.ops import binarize, dilate
    from streamfill.masks.static import note_if_empty
    from streamfill.pipeline.complete import Completer

    for path in (args.input, args.mask, args.sketch):
        if path is not None and Path(path).is_dir():
            raise InputError(f"{path} is a folder; give an image file")
        if path is not None and not Path(path).is_file():
            raise InputError(f"file not found: {path}")
        if path is not None and Path(path).stat().st_size and not is_image_file(path):
            raise InputError(f"{path} is not a still picture (a video?); give an image file")
    for flag, path in (("input", args.input), ("--mask", args.mask), ("--sketch", args.sketch)):
        if path is not None and Path(args.output).resolve() == Path(path).resolve():
            raise InputError(f"the output would overwrite the {flag} {path}; choose another -o")
    check_image_output(args.output)
    check_writable(args.output, "-o")
    unused = [flag for flag in ("weights", "device", "sketch") if getattr(args, flag) is not None]
    if args.engine != "deepfill" and unused:
        raise InputError(f"{', '.join('--' + f for f in unused)}: for the generator (--engine deepfill); "
                         f"--engine {args.engine} uses none")
    for flag in ("dilate", "feather"):
        value = getattr(args, flag)
        if value is not None and value < 0:
            raise InputError(f"--{flag} {value}: must be >= 0")
    cfg = load_config(args.config)
    image = read_image(args.input)
    alpha, bits = picture_format(args.input)
    if alpha or bits > 8:
        what = " and ".join(w for w, lost in (("has transparency", alpha), (f"is {bits}-bit", bits > 8)) if lost)
        _log.warning("note: %s %s; the output is 8-bit RGB, with no transparency", args.input, what)
    mask = read_image(args.mask, grey=True)
    if mask.shape != image.shape[:2]:
        raise MaskError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {image.shape[1]}x{image.shape[0]}")
    note_if_empty(int(mask.max()), cfg.mask.threshold, args.mask)
    mask = binarize(mask, cfg.mask.threshold)
    sketch = None
    if args.sketch is not None:
        sketch = read_image(args.sketch, grey=True)
        if sketch.shape != image.shape[:2]:
            raise InputError(f"sketch is {sketch.shape[1]}x{sketch.shape[0]} but the image is "
                             f"{image.shape[1]}x{image.shape[0]}")
        sketch = binarize(sketch, 127)
    cfg = dataclasses.replace(cfg, mask=dataclasses.replace(
        cfg.mask, **{k: getattr(args, k) for k in ("dilate", "feather") if getattr(args, k) is not None}))
    mask = dilate(mask, cfg.mask.dilate)
    if args.engine == "deepfill":
        from streamfill.backends.torch import TorchInpainter

        inpainter = TorchInpainter.from_weights(args.weights, device=args.device or "cpu")
        if sketch is not None and not inpainter.guided:
            _log.warning("note: these weights were trained without a sketch channel; --sketch is not used")
    else:
        from streamfill.backends.classical import ClassicalInpainter

        inpainter = ClassicalInpainter(args.engine, cfg.engine.radius)
    out = Completer(inpainter, cfg.crop, cfg.mask).fill(image, mask, sketch)
    write_image(args.output, out)
    print(f"wrote {args.output}")
    return 0
