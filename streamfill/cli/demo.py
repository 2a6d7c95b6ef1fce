"""`streamfill demo`: the main job on the bundled clip, with a measured result."""

from __future__ import annotations

import argparse

from streamfill import api
from streamfill.cli.common import (
    ProgressBar,
    add_config_flag,
    add_encode_flags,
    add_fill_flags,
    add_temporal_flags,
    config_from_args,
)


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="remove a moving occluder from the bundled clip and report the PSNR",
                       description="Paints a moving occluder onto a short bundled clip (Big Buck Bunny, "
                                   "CC-BY 3.0 Blender Foundation), removes it with its mask, and writes the "
                                   "occluded input, the result and a side-by-side comparison.")
    p.add_argument("-o", "--output", default="streamfill-demo", metavar="DIR",
                   help="folder for the demo videos (default ./streamfill-demo)")
    add_fill_flags(p)
    add_temporal_flags(p)
    add_encode_flags(p)
    add_config_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    bar = ProgressBar("demo")
    try:
        r = api.demo(args.output, config=config, progress=bar)
    finally:
        bar.finish()
    print(f"engine {config.engine.name}, temporal {config.temporal.mode}: {r.frames} frames in "
          f"{r.seconds:.1f} s ({r.frames / r.seconds:.1f} fps)")
    print(f"PSNR inside the removed region vs the clean clip: {r.psnr_hole:.2f} dB "
          f"(occluded input: {r.psnr_hole_input:.2f} dB)")
    print(f"wrote {r.input}\n      {r.output}\n      {r.side_by_side}")
    return 0
