"""Benchmark of `streamfill live`: output fps, drops and capture-to-output latency at 640x480, one tracked object.

The source is a file paced in real time (the camera stand-in): any clip, scaled to --size on the fly into a
temporary file first (so decoding cost is that of a 640x480 stream), looped for --seconds. Each run records
to a temporary file (x264, live settings) as a real session would. Prints one JSON line per run and a
summary with medians.

    python benchmarks/live.py --clip /path/to/vtest.avi --box 528,196,46,74 --fps 30 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamfill import api
from streamfill.config import load_config


def _object(side: int) -> np.ndarray:
    """A textured red square (side x side x 3 uint8 RGB): something a tracker can follow."""
    yy, xx = np.mgrid[0:side, 0:side]
    obj = np.zeros((side, side, 3), np.uint8)
    obj[...] = (250, 20, 20)
    obj[((xx // 6 + yy // 6) % 2) == 1] = (190, 0, 50)
    return obj


def paste_at(i: int, w: int, h: int, side: int) -> tuple[int, int]:
    """Top-left corner of the pasted object in frame ``i``: a slow left-right sweep (2 px per frame)."""
    span = w - side - 40
    t = (2 * i) % (2 * span)
    return 20 + (t if t < span else 2 * span - t), h // 2 - side // 2


def scaled_copy(src: str, dst: Path, size: tuple[int, int], fps: int, frames: int, paste: int = 0) -> None:
    """Re-encode ``frames`` frames of ``src`` at ``size`` with timestamps at ``fps`` (a camera at that rate),
    with a moving textured square of side ``paste`` pasted in when ``paste`` > 0."""
    w, h = size
    obj = _object(paste) if paste else None
    with av.open(src) as inp, av.open(str(dst), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "20"}
        for n, f in enumerate(inp.decode(video=0)):
            if n >= frames:
                break
            g = f.reformat(width=w, height=h, format="rgb24")
            if obj is not None:
                img = g.to_ndarray()
                x, y = paste_at(n, w, h, paste)
                img[y:y + paste, x:x + paste] = obj
                g = av.VideoFrame.from_ndarray(img, format="rgb24")
            g = g.reformat(format="yuv420p")
            g.pts, g.time_base = n, Fraction(1, fps)
            for p in s.encode(g):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", required=True)
    p.add_argument("--box", help="x,y,w,h of the object in the first frame at --size")
    p.add_argument("--paste", type=int, default=0, metavar="SIDE",
                   help="paste a moving textured square of this side and track it (instead of --box)")
    p.add_argument("--size", default="640x480")
    p.add_argument("--fps", type=int, default=30, help="frame rate the clip is paced at")
    p.add_argument("--frames", type=int, default=300, help="frames taken from the clip")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each run (the clip loops)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--config", help="TOML config (default: built-in defaults)")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    config = load_config(args.config)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        scaled_copy(args.clip, clip, (w, h), args.fps, args.frames, args.paste)
        box = args.box
        if args.paste:
            x, y = paste_at(0, w, h, args.paste)
            box = f"{x - 4},{y - 4},{args.paste + 8},{args.paste + 8}"
        if not box:
            p.error("give --box or --paste")
        for i in range(args.runs):
            stop = threading.Event()
            timer = threading.Timer(args.seconds, stop.set)
            timer.start()
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            load0 = os.getloadavg()[0]
            try:
                r = api.live(str(clip), box=box, record=Path(tmp) / f"rec{i}.mp4", realtime=True, loop=True,
                             config=config, stop=stop)
            finally:
                timer.cancel()
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            s = r.stats
            row = {"load_avg_1min": round((load0 + os.getloadavg()[0]) / 2, 1),
                   "cpu_ms_per_frame_out": round(cpu_s * 1000 / max(1, s.frames_out), 1), "run": i,
                   "stage_ms": s.stage_ms, "seconds": s.seconds, "frames_in": s.frames_in, "frames_out": s.frames_out,
                   "dropped": s.dropped, "input_fps": s.input_fps, "output_fps": s.output_fps, **{
                       f"latency_{k}_ms": v for k, v in s.latency_ms.items()}}
            print(json.dumps(row), flush=True)
            runs.append(row)
    summary = {"machine": cpu_name(), "clip": Path(args.clip).name, "object": box, "size": args.size,
               "source_fps": args.fps,
               "engine": config.engine.name, "runs": len(runs),
               "median_output_fps": statistics.median(r["output_fps"] for r in runs),
               "median_p50_ms": statistics.median(r["latency_p50_ms"] for r in runs),
               "median_p95_ms": statistics.median(r["latency_p95_ms"] for r in runs),
               "median_p99_ms": statistics.median(r["latency_p99_ms"] for r in runs),
               "median_cpu_ms_per_frame_out": statistics.median(r["cpu_ms_per_frame_out"] for r in runs),
               "median_load_avg": statistics.median(r["load_avg_1min"] for r in runs),
               "median_drop_share": statistics.median(r["dropped"] / max(1, r["frames_in"]) for r in runs)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
