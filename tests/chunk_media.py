"""A clip for chunked-run tests: two shots (a scene cut), a fixed camera on a textured background, a square
that moves across it (what the mask's hole hides is seen in other frames), keyframes every ``gop`` frames,
B-frames, and a mono AAC track."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def shot_frame(index: int, cut: int, height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    if index < cut:
        base = np.stack([(x * 4) % 256, (y * 5) % 256, ((x // 6 + y // 6) % 2) * 160 + 50], axis=-1)
    else:
        base = np.stack([255 - (y * 3) % 256, (x * 2 + y) % 256, ((x // 10) % 2) * 200 + 30], axis=-1)
    img = base.astype(np.uint8)
    sx = 4 + (index * 3) % max(1, width - 16)
    img[height // 2 - 6:height // 2 + 6, sx:sx + 12] = (240, 240, 40)
    return img


def make_two_shot_clip(path: str | Path, *, frames: int = 48, cut: int = 24, width: int = 96, height: int = 64,
                       fps: int = 24, gop: int = 8, vfr: bool = False) -> list[int]:
    """Write the clip; returns the video pts (time base 1/(fps*4)). ``vfr`` spaces frames irregularly."""
    tb = Fraction(1, fps * 4)
    pts, t = [], 0
    for i in range(frames):
        pts.append(t)
        t += 4 if not vfr else (3, 5, 4, 8, 2)[i % 5]
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"preset": "veryfast", "crf": "12", "g": str(gop), "keyint_min": str(gop), "bf": "2"}
        v.codec_context.time_base = tb
        v.time_base = tb
        a = out.add_stream("aac", rate=48000, layout="mono")
        for i, p in enumerate(pts):
            vf = av.VideoFrame.from_ndarray(shot_frame(i, cut, height, width), format="rgb24")
            vf.pts, vf.time_base = p, tb
            for pkt in v.encode(vf):
                out.mux(pkt)
        for pkt in v.encode(None):
            out.mux(pkt)
        n = int((float(pts[-1] * tb) + 1 / fps) * 48000)
        samples = (np.sin(2 * np.pi * 440 * np.arange(n) / 48000) * 0.3).astype(np.float32)
        for k in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(samples[None, k:k + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, k, Fraction(1, 48000)
            for pkt in a.encode(af):
                out.mux(pkt)
        for pkt in a.encode(None):
            out.mux(pkt)
    return pts
