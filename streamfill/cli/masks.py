"""`streamfill masks`: write the per-frame masks (tracked or automatic) and an overlay preview, to check them
before a long run; `process --mask masks.mkv` reuses them.

``add_mask_flags`` also gives `process` its tracking flags (--mask-track, --mask-frame, --box, --mask-auto).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from streamfill import api
from streamfill.cli.common import (
    ONE_MASK,
    ProgressBar,
    add_config_flag,
    add_encode_flags,
    add_read_flags,
    config_from_args,
    once,
)
from streamfill.config import merge


def add_mask_flags(p: argparse.ArgumentParser, what) -> None:
    """Tracking flags. ``what`` is the (mutually exclusive) group that holds ``--mask``."""
    what.add_argument("--box", action="append", metavar="X,Y,W,H[@K]",
                      help="the object's box at frame K (default 0), in pixels; it is segmented and tracked "
                           "(repeatable: later boxes correct the track)")
    what.add_argument("--mask-auto", choices=("motion",),
                      help="make the masks automatically: motion = everything that moves (fixed cameras)")
    g = p.add_argument_group("mask tracking")
    g.add_argument("--mask-track", action="store_true",
                   help="--mask is the object at one frame (--mask-frame): follow it through the clip")
    g.add_argument("--mask-frame", type=int, default=0, metavar="K", action=once("the --mask image shows one frame"),
                   help="the frame (0-based) the --mask image shows; implies --mask-track (default 0)")


def _advice(args: argparse.Namespace):
    """What the tracking notices tell the user to do: "the preview" is the file `masks --preview` writes; a
    `masks` run without it, and `process` / `batch` (which write none), point at how to get one."""
    from streamfill.masks.track import Advice

    if getattr(args, "preview", None):
        return Advice()
    if hasattr(args, "preview"):  # streamfill masks, without --preview
        return Advice(lost="add a --box there, or run again with --preview VIDEO to see the masks",
                      box="run again with --preview VIDEO to check it, or draw the box tighter")
    source = getattr(args, "input", None)
    look = (f"streamfill masks {shlex.quote(str(source)) if source else 'INPUT'} with the same mask flags, "
            "-o masks.mkv --preview preview.mp4")
    return Advice(lost=f"add a --box there, or look at the masks first ({look})",
                  box=f"look at the masks first ({look}) or draw the box tighter")


def mask_options(args: argparse.Namespace):
    """``build.MaskOptions`` from the flags of ``add_mask_flags``; tracking notices print as warnings, with
    advice for the command that runs (see ``_advice``)."""
    from streamfill.build import MaskOptions
    from streamfill.errors import InputError

    if isinstance(getattr(args, "mask", None), str) and not args.mask.strip():  # "$MASK" unset: not the cwd
        raise InputError("--mask is empty: give a path")
    if args.mask_frame < 0:
        raise InputError(f"--mask-frame {args.mask_frame}: must be 0 or more")
    if args.mask_frame and args.box:
        raise InputError(f"--mask-frame is the frame of a --mask image; a box names its own frame: --box "
                         f"X,Y,W,H@{args.mask_frame}")
    track = bool(args.mask_track or args.mask_frame)
    if track and getattr(args, "mask", None) is None and not args.box:
        raise InputError("--mask-track needs --mask IMAGE (the object at --mask-frame) or --box")
    return MaskOptions(track=track, mask_frame=args.mask_frame, boxes=tuple(args.box or ()), auto=args.mask_auto,
                       on_warning=lambda message: print(f"streamfill: warning: {message}", file=sys.stderr),
                       advice=_advice(args))


def add_parser(sub) -> None:
    p = sub.add_parser("masks", help="write per-frame masks (tracked or automatic) and an overlay preview",
                       description="Write every frame's mask to a lossless video (or a folder of PNGs) and, with "
                                   "--preview, a video with the masks drawn over it. Check it, then run "
                                   "`streamfill process VIDEO --mask MASKS.mkv`.")
    p.add_argument("input", help="video file, URL, or a folder of images (with --fps)")
    p.add_argument("-o", "--output", required=True,
                   help="masks: a .mkv (lossless FFV1, white = remove) or a folder ending in / for PNGs")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--mask", metavar="PATH", action=ONE_MASK,
                      help="mask image (tracked with --mask-track) or mask video/folder")
    add_mask_flags(p, what)
    p.add_argument("--preview", metavar="VIDEO", help="also write the video with the masks drawn over it")
    p.add_argument("--dilate", type=int, metavar="PX",
                   help="safety margin drawn in the preview and added by process (default 4); the mask file "
                        "stores the object itself")
    add_read_flags(p)
    add_encode_flags(p)
    add_config_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = merge(config_from_args(args), {"io": {"salvage": True if args.salvage else None}})
    bar = ProgressBar("masks", enabled=not args.quiet)
    try:
        result = api.write_masks(args.input, args.output, mask=args.mask, mask_options=mask_options(args),
                                 config=config, preview=args.preview, fps=args.fps, start=args.start,
                                 end=args.end, progress=bar)
    finally:
        bar.finish()
    if not args.quiet:
        from streamfill.cli.process import _lost_note

        extra = f" and {result.preview}" if result.preview else ""
        print(f"wrote {result.output}{extra}: {result.frames} frames ({result.masked} with a mask"
              f"{_lost_note(result)}) in "
              f"{result.seconds:.1f} s", file=sys.stderr)
    return 0
