"""`streamfill info`: what a video holds."""

from __future__ import annotations

import argparse
import json

from streamfill import api
from streamfill.cli.common import seconds
from streamfill.io.images import orientation_words


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="show streams, codec, size, fps, frames, duration and audio of a video")
    p.add_argument("input", help="video file, URL, or folder of images (with --fps)")
    p.add_argument("--fps", type=seconds, help="frame rate of an image-sequence input")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    info = api.info(args.input, fps=args.fps)
    fps = float(info.fps) if info.fps else None
    data = {
        "path": info.path, "format": info.format, "codec": info.codec, "width": info.width,
        "height": info.height, "fps": fps, "time_base": str(info.time_base), "frames": info.frame_count,
        "frames_estimated": info.frame_count_estimated,
        "duration": info.duration, "rotation": info.rotation, "orientation": info.orientation,
        "pix_fmt": info.pix_fmt,
        "sample_aspect": str(info.sample_aspect) if info.sample_aspect else None,
        "interlaced": info.interlaced, "alpha": info.alpha,
        "colour": {"space": info.colour.space, "range": info.colour.range, "primaries": info.colour.primaries,
                   "trc": info.colour.trc},
        "audio": info.has_audio,
        "streams": [{"index": s.index, "type": s.type, "codec": s.codec, "detail": s.detail}
                    for s in info.other_streams],
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{info.path}")
    print(f"  container  {info.format}")
    print(f"  video      {info.codec} {info.width}x{info.height} {info.pix_fmt}"
          + (f", shown {orientation_words(info.orientation)}" if orientation_words(info.orientation) else "")
          + (f", pixels {info.sample_aspect.numerator}:{info.sample_aspect.denominator}" if info.sample_aspect
             else "")
          + (", interlaced" if info.interlaced else "") + (", alpha" if info.alpha else ""))
    print(f"  colour     {_colour(info.colour, info.pix_fmt)}")
    print(f"  fps        {fps:.3f}" if fps else "  fps        unknown")
    if info.frame_count is None:
        frames = "unknown"
    elif info.frame_count_estimated:
        frames = f"~{info.frame_count} (estimated from duration x fps)"
    else:
        frames = str(info.frame_count)
    print(f"  frames     {frames}")
    print(f"  duration   {info.duration:.3f} s" if info.duration else "  duration   unknown")
    print(f"  time base  {info.time_base}")
    if not info.other_streams:
        print("  audio      none")
    for s in info.other_streams:
        print(f"  stream #{s.index}  {s.type} {s.codec}" + (f" ({s.detail})" if s.detail else ""))
    return 0


# FFmpeg's codes (AVColorSpace, AVColorTransferCharacteristic, AVColorRange) for the usual cases
_SPACES = {0: "RGB", 1: "BT.709", 4: "FCC", 5: "BT.601", 6: "BT.601", 7: "SMPTE 240M", 9: "BT.2020", 10: "BT.2020"}
_TRANSFERS = {1: "BT.709", 6: "BT.601", 13: "sRGB", 14: "BT.2020", 15: "BT.2020", 16: "PQ (HDR)", 18: "HLG (HDR)"}
_RANGES = {1: "limited range", 2: "full range"}


def _colour(c, pix_fmt: str) -> str:
    """The matrix, transfer and range a source is tagged with, as a line (output keeps them)."""
    rgb = pix_fmt.startswith(("rgb", "bgr", "gbr", "argb", "abgr"))
    if (c.space, c.trc, c.range) == (2, 2, 0) or (rgb and c.trc == 2):
        return "RGB, untagged" if rgb else "untagged (read as BT.601)"
    if rgb:
        return f"RGB, transfer {_TRANSFERS.get(c.trc, f'code {c.trc}')}"
    parts = [f"matrix {_SPACES.get(c.space, 'unspecified' if c.space == 2 else f'code {c.space}')}"]
    if c.trc != 2:
        parts.append(f"transfer {_TRANSFERS.get(c.trc, f'code {c.trc}')}")
    if c.range in _RANGES:
        parts.append(_RANGES[c.range])
    return ", ".join(parts)
