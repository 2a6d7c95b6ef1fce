"""Rebuild the README's before/after picture from the bundled demo.

Usage: python scripts/make_readme_image.py [-o docs/images/demo_before_after.png] [--frames 30,90]
       [--width 312] [--bits 6] [--temporal fast] [--side-by-side demo_side_by_side.mp4]

Runs ``streamfill demo`` (the library's ``api.demo``: a moving occluder painted on the bundled Big Buck Bunny
excerpt, then removed with its mask) into a temporary folder, takes the chosen frames of its side-by-side
video, scales each half to ``--width`` px, labels them and stacks them into one PNG: one row per frame,
"input" on the left, "streamfill" on the right. Colours are cut to ``--bits`` bits per channel so the PNG
stays under 300 KB (it is committed); the script refuses to write a bigger one. ``--side-by-side`` reuses a
``demo_side_by_side.mp4`` written earlier by ``streamfill demo`` instead of running the demo again. Rerun this
script when the default engine or the completion changes enough to show.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from streamfill import api
from streamfill.config import TEMPORAL_MODES, load_config
from streamfill.io import open_video

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "images" / "demo_before_after.png"
LIMIT_BYTES = 300_000


def _label(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``image`` (RGB) with ``text`` on a dark band in its top-left corner."""
    out = image.copy()
    scale, thick = 0.45, 1
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(out, (0, 0), (w + 10, h + base + 8), (20, 20, 20), -1)
    cv2.putText(out, text, (5, h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def compose(side_by_side: Path, frames: list[int], width: int) -> np.ndarray:
    """Rows of [input | output] for the given frame indices of the demo's side-by-side video (RGB)."""
    wanted = set(frames)
    rows: dict[int, np.ndarray] = {}
    with open_video(side_by_side) as reader:
        for frame in reader:
            if frame.index in wanted:
                half = frame.image.shape[1] // 2
                left, right = frame.image[:, :half], frame.image[:, half:]
                height = round(left.shape[0] * width / left.shape[1])
                left = cv2.resize(left, (width, height), interpolation=cv2.INTER_AREA)
                right = cv2.resize(right, (width, height), interpolation=cv2.INTER_AREA)
                gap = np.full((height, 4, 3), 255, np.uint8)
                rows[frame.index] = np.concatenate(
                    [_label(left, f"input, frame {frame.index}"), gap, _label(right, "streamfill")], axis=1)
            if len(rows) == len(wanted):
                break
    missing = sorted(wanted - set(rows))
    if missing:
        raise SystemExit(f"make_readme_image: the demo has no frame {missing[0]}")
    gap = np.full((4, rows[frames[0]].shape[1], 3), 255, np.uint8)
    stacked = []
    for i, index in enumerate(frames):
        if i:
            stacked.append(gap)
        stacked.append(rows[index])
    return np.concatenate(stacked, axis=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT, help="PNG to write")
    p.add_argument("--frames", default="30,90", help="comma-separated frame indices, one row each")
    p.add_argument("--width", type=int, default=312, help="width of each half, px")
    p.add_argument("--bits", type=int, choices=range(4, 9), default=6, help="bits kept per colour channel")
    p.add_argument("--temporal", choices=TEMPORAL_MODES, default=None, help="as `streamfill demo --temporal`")
    p.add_argument("--side-by-side", type=Path, metavar="MP4",
                   help="reuse this demo_side_by_side.mp4 of an earlier `streamfill demo` run")
    args = p.parse_args(argv)
    frames = [int(f) for f in args.frames.split(",") if f.strip()]
    if not frames or args.output.suffix.lower() != ".png":
        p.error("give at least one frame and an output ending in .png")
    note = "from " + args.side_by_side.name if args.side_by_side else ""
    if args.side_by_side:
        picture = compose(args.side_by_side, frames, args.width)
    else:
        config = load_config(overrides={"temporal": {"mode": args.temporal}})
        with tempfile.TemporaryDirectory() as tmp:
            result = api.demo(tmp, config=config)
            picture = compose(Path(result.side_by_side), frames, args.width)
        note = (f"demo PSNR in the hole {result.psnr_hole:.2f} dB, occluded input {result.psnr_hole_input:.2f} dB, "
                f"temporal {config.temporal.mode}, engine {config.engine.name}")
    shift = 8 - args.bits
    picture = (picture >> shift) << shift
    args.output.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise SystemExit("make_readme_image: PNG encoding failed")
    if len(data) > LIMIT_BYTES:
        raise SystemExit(f"make_readme_image: {len(data)} bytes is over {LIMIT_BYTES}; use a smaller --width")
    partial = args.output.with_name(args.output.name + ".partial")
    partial.write_bytes(data.tobytes())
    partial.replace(args.output)
    out = args.output.resolve()
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"wrote {shown} ({len(data) // 1024} KB; {note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
