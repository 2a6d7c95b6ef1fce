#!/usr/bin/env python3
"""The GStreamer element in temporal mode against `streamfill process`: hole PSNR and added latency.

For each case a lossless RGB clip (FFV1) with a moving occluder and its mask video is made; the clean clip
(the truth under the occluder) is known and never reaches any method. Then:

- the element (tests/hosts/gst_check.py in the system python3) against `streamfill serve --temporal MODE`,
  with `temporal=lookahead` and with `temporal=lookback`;
- `streamfill process --temporal MODE` (look-ahead: the reference) and `process --temporal off` (per-frame
  baseline), both lossless.

Reported per case and method: hole PSNR against the truth over the whole clip, the element's hole PSNR
against process (mean over frames and the worst frame; 99 = identical), the frames the element held
(max lag, input buffers taken minus output buffers pushed) and the latency it adds to the latency query.

Cases: a square crossing a still textured background (3 speeds), and a 320 x 180 excerpt of the bundled
demo clip (Big Buck Bunny, CC-BY) with a grey box moving over it.

    nice -n 10 python benchmarks/hosts_temporal.py [--mode fast] [--frames 24]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import zmq

from streamfill import api
from streamfill import protocol as P
from streamfill.eval.results import command_line, machine, versions, write_result

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "tests" / "hosts" / "gst_check.py"
RESULTS = ROOT / "benchmarks" / "results" / "hosts_temporal.json"
FPS = 25


def write_clip(path: Path, frames: list[np.ndarray], grey: bool = False) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=FPS)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "gray" if grey else "bgr0"
        for i, image in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(image, format="gray" if grey else "rgb24")
            if not grey:
                vf = vf.reformat(format="bgr0")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def read_clip(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def square_case(n: int, step: int) -> tuple[list, list, list]:
    h, w, side = 72, 128, 14
    y, x = np.mgrid[0:h, 0:w]
    background = np.stack([(x * 5 + y * 2) % 256, (y * 4 + 30) % 256, ((x // 6 + y // 6) % 2) * 140 + 60],
                          axis=-1).astype(np.uint8)
    frames, masks, clean = [], [], []
    for i in range(n):
        sx, sy = 6 + (i * step) % (w - side - 12), (h - side) // 2
        image = background.copy()
        image[sy:sy + side, sx:sx + side] = (230, 20, 20)
        m = np.zeros((h, w), np.uint8)
        m[sy - 1:sy + side + 1, sx - 1:sx + side + 1] = 255
        frames.append(image)
        masks.append(m)
        clean.append(background)
    return frames, masks, clean


def demo_case(n: int) -> tuple[list, list, list]:
    clean = []
    with av.open(str(api.demo_clip())) as container:
        for frame in container.decode(video=0):
            clean.append(frame.reformat(width=320, height=180, format="rgb24").to_ndarray())
            if len(clean) == n:
                break
    frames, masks = [], []
    for i, image in enumerate(clean):
        x, y = 40 + 6 * i, 70 + int(10 * np.sin(i / 4))
        occluded = image.copy()
        occluded[y:y + 36, x:x + 30] = (128, 128, 128)
        m = np.zeros(image.shape[:2], np.uint8)
        m[y - 1:y + 37, x - 1:x + 31] = 255
        frames.append(occluded)
        masks.append(m)
    return frames, masks, clean


def hole_psnr(images, truth, masks) -> float:
    hole = np.stack(masks) > 0
    mse = float(np.mean((np.stack(images).astype(np.float64)[hole] - np.stack(truth).astype(np.float64)[hole]) ** 2))
    return 99.0 if mse == 0 else round(10 * np.log10(255.0 ** 2 / mse), 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(mode: str):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "streamfill", "serve", "-q", "--bind", endpoint, "--temporal", mode])
    try:
        ctx = zmq.Context()
        deadline = time.monotonic() + 120
        while True:
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(endpoint)
            sock.send_multipart([b""] + P.encode_hello(req=1))
            ok = sock.poll(1000)
            sock.close(0)
            if ok or time.monotonic() > deadline:
                break
        ctx.term()
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def host_env(tmp: Path) -> dict:
    venv = os.environ.get("VIRTUAL_ENV")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not (venv and p.startswith(venv))]
    return {"PATH": os.pathsep.join(["/usr/bin", "/bin", *path]), "HOME": os.environ.get("HOME", str(tmp)),
            "LANG": "C.UTF-8", "GST_REGISTRY": str(tmp / "gst-registry.bin"),
            "GST_PLUGIN_PATH": str(ROOT / "plugins" / "gstreamer")}


def element(env, clip: Path, masks: Path, out: Path, endpoint: str, temporal: str) -> tuple[dict, list]:
    run = subprocess.run(["/usr/bin/python3", str(CHECK), str(clip), str(out), f"endpoint={endpoint}",
                          f"mask={masks}", f"temporal={temporal}", "latency=0"],
                         env=env, capture_output=True, text=True, timeout=1200)
    if run.returncode != 0:
        raise SystemExit(run.stderr[-2000:])
    result = json.loads((out / "result.json").read_text())
    if result["error"]:
        raise SystemExit(result["error"])
    return result, list(np.load(out / "frames.npy"))


def process(clip: Path, masks: Path, out: Path, mode: str) -> list[np.ndarray]:
    run = subprocess.run([sys.executable, "-m", "streamfill", "process", str(clip), "--mask", str(masks),
                          "--temporal", mode, "--lossless", "-q", "-o", str(out)], capture_output=True, text=True,
                         timeout=1200)
    if run.returncode != 0:
        raise SystemExit(run.stderr[-2000:])
    return read_clip(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", default="fast", choices=("fast", "quality"))
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()
    cases = {f"square {step} px/frame": square_case(args.frames, step) for step in (2, 3, 5)}
    cases["demo clip 320x180, grey box"] = demo_case(args.frames)
    rows, deltas, worst = [], [], []
    with tempfile.TemporaryDirectory() as tmp_name, serve(args.mode) as endpoint:
        tmp = Path(tmp_name)
        env = host_env(tmp)
        for c, (name, (frames, masks, clean)) in enumerate(cases.items()):
            d = tmp / f"case{c}"
            d.mkdir()
            write_clip(d / "clip.mkv", frames)
            write_clip(d / "masks.mkv", masks, grey=True)
            reference = process(d / "clip.mkv", d / "masks.mkv", d / "ref.mkv", args.mode)
            per_frame = process(d / "clip.mkv", d / "masks.mkv", d / "off.mkv", "off")
            n = len(frames)
            for method, images, info in (
                    ("element lookahead", *element(env, d / "clip.mkv", d / "masks.mkv", d / "ahead", endpoint,
                                                   "lookahead")[::-1]),
                    ("element lookback", *element(env, d / "clip.mkv", d / "masks.mkv", d / "back", endpoint,
                                                  "lookback")[::-1]),
                    (f"process --temporal {args.mode}", reference, None),
                    ("process --temporal off (per-frame)", per_frame, None)):
                assert len(images) == n, (name, method, len(images))
                vs = [hole_psnr([images[i]], [reference[i]], [masks[i]]) for i in range(n)]
                row = [name, n, f"{frames[0].shape[1]}x{frames[0].shape[0]}", method, hole_psnr(images, clean, masks),
                       round(float(np.mean(vs)), 2), min(vs)]
                if info is not None:
                    added = (info["latency"][1] - info["upstream_latency"][1]) / 1e6
                    row += [max(info["lag"]), round(added, 1), info["pts"] == [i * 10**9 // FPS for i in range(n)]]
                    if method == "element lookahead":
                        deltas.append(round(row[4] - hole_psnr(reference, clean, masks), 2))
                        worst.append(min(vs))
                else:
                    row += [None, None, None]
                rows.append(row)
                print(row, flush=True)
    result = {
        "item": "hosts_temporal",
        "title": "GStreamer element in temporal mode (serve look-ahead) against streamfill process",
        "date": datetime.date.today().isoformat(), "machine": machine(), "versions": versions(),
        "command": " ".join(["python benchmarks/hosts_temporal.py", *command_line().split()[1:]]),
        "columns": ["case", "frames", "size", "method", "hole PSNR vs truth dB", "hole PSNR vs process, mean dB",
                    "hole PSNR vs process, worst frame dB", "max frames held", "added latency ms (query)",
                    "every pts"],
        "rows": rows,
        "summary": {"mode": args.mode, "lookahead_minus_process_db_worst": max(deltas, key=abs) if deltas else None,
                    "lookahead_minus_process_db": deltas, "lookahead_vs_process_worst_frame_db": min(worst),
                    "goal_within_db": 0.5},
        "notes": ("Element = the `streamfill` GStreamer element (plugins/gstreamer) against `streamfill serve "
                  f"--temporal {args.mode}` with latency=0 (so the query's added latency is the look-ahead "
                  "alone: (window + 2 in flight) frames at 25 fps); look-ahead is what process runs on a clip "
                  "(99 dB against process = byte-identical), look-back answers every frame at once from earlier "
                  "frames and cannot know what the first frames hide. Truth = the clip without the occluder, "
                  "seen by no method. Default engine; lossless clips so that GStreamer and PyAV decode the same "
                  "pixels. Single runs (quality figures are deterministic)."),
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
