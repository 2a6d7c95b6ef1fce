"""Small media fixtures made inside the tests with PyAV (tests never read ../shared)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern(index: int, height: int, width: int) -> np.ndarray:
    """A deterministic, textured RGB frame that changes with ``index`` (H x W x 3 uint8)."""
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 3 + index * 5) % 256
    g = (y * 2 + index * 3) % 256
    b = ((x // 8 + y // 8) % 2) * 180 + 40
    return np.stack([r, g, np.broadcast_to(b, r.shape)], axis=-1).astype(np.uint8)


def make_video(path: str | Path, *, frames: int = 12, width: int = 96, height: int = 64, fps: int = 25,
               codec: str = "libx264", audio: bool = False, vfr_pts: list[int] | None = None,
               time_base: Fraction | None = None, options: dict | None = None) -> list[int]:
    """Write a small clip; returns the pts of the video frames written (in the stream's time base).

    ``vfr_pts`` gives explicit (irregular) pts; ``audio`` adds a 1 kHz mono AAC (or PCM in .avi) track."""
    path = Path(path)
    with av.open(str(path), "w", options=options or {}) as out:
        v = out.add_stream(codec, rate=fps)
        v.width, v.height = width, height
        v.pix_fmt = "yuv420p" if codec in ("libx264", "mpeg4") and width % 2 == 0 and height % 2 == 0 else (
            "yuv444p" if codec == "libx264" else "yuv420p")
        if codec == "libx264":
            v.options = {"preset": "ultrafast", "crf": "18"}
        tb = time_base or Fraction(1, fps)
        v.codec_context.time_base = tb
        v.time_base = tb
        a = None
        if audio:
            a = out.add_stream("pcm_s16le" if path.suffix == ".avi" else "aac", rate=48000, layout="mono")
        pts_list = vfr_pts if vfr_pts is not None else [int(i / (fps * tb)) for i in range(frames)]
        for i, pts in enumerate(pts_list):
            vf = av.VideoFrame.from_ndarray(pattern(i, height, width), format="rgb24")
            vf.pts = pts
            vf.time_base = tb
            for p in v.encode(vf):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        if a is not None:
            duration = float(pts_list[-1] * tb) + 1 / fps
            n = int(duration * 48000)
            t = np.arange(n) / 48000
            samples = (np.sin(2 * np.pi * 1000 * t) * 0.3 * 32767).astype(np.int16)
            fmt = "s16" if path.suffix == ".avi" else "fltp"
            step = 1024
            for k in range(0, n, step):
                chunk = samples[k:k + step]
                data = chunk[None, :] if fmt == "s16" else (chunk.astype(np.float32) / 32767)[None, :]
                af = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
                af.sample_rate = 48000
                af.pts = k
                af.time_base = Fraction(1, 48000)
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode(None):
                out.mux(p)
    return pts_list


def make_x264_clip(path: str | Path, *, frames: int = 3, width: int = 96, height: int = 64, crf: int = 0,
                   matrix: list[int] | None = None, rotation: float | None = None) -> Path:
    """A small H.264 clip (yuv444p, x264's default B-frames unless ``crf`` is 0, lossless, which has none) of
    ``pattern`` frames, in any container ``path`` names; its header can carry a display matrix: FFmpeg's nine
    values in ``matrix``, or a turn in degrees in ``rotation``."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"crf": str(crf)})
        v.width, v.height, v.pix_fmt = width, height, "yuv444p"
        if matrix is not None:
            v.set_display_matrix(matrix)
        if rotation is not None:
            v.set_display_rotation(rotation)
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(pattern(i, height, width), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            for p in v.encode(vf):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    return Path(path)


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write an H x W (grey) or H x W x 3 (RGB) uint8 image as PNG."""
    fmt = "gray" if image.ndim == 2 else "rgb24"
    with av.open(str(path), "w", format="image2") as out:
        s = out.add_stream("png", rate=1)
        s.width, s.height = image.shape[1], image.shape[0]
        s.pix_fmt = "gray" if fmt == "gray" else "rgb24"
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
        vf.pts = 0
        for p in s.encode(vf):
            out.mux(p)
        for p in s.encode(None):
            out.mux(p)


def read_frames(path: str | Path) -> list[tuple[Fraction, np.ndarray]]:
    """(time in seconds, RGB image) of every decoded video frame."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append((f.pts * f.time_base, f.to_ndarray(format="rgb24")))
    return out


def audio_packets(path: str | Path) -> list[bytes]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def box_mask(height: int, width: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((height, width), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m
