"""Fixtures for the studio tests: a clip with one moving object, and the studio served on a free port."""

from __future__ import annotations

import contextlib
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from media import pattern


def object_at(index: int, width: int, height: int) -> tuple[int, int, int]:
    """Centre (x, y) and radius of the disc in frame ``index`` of ``make_object_clip``."""
    r = max(8, height // 9)
    return int(width * 0.3 + index * width * 0.006), height // 2, r


def make_object_clip(path: str | Path, *, frames: int = 24, width: int = 640, height: int = 360,
                     fps: int = 25, x264: dict | None = None, hidden: range = range(0)) -> Path:
    """A textured background with a textured blue disc moving right (0.6 % of the width per frame); in the
    frames of ``hidden`` the disc is not drawn (it vanishes, the background shows)."""
    path = Path(path)
    yy, xx = np.mgrid[0:height, 0:width]
    background = pattern(0, height, width)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "18", "g": "12", **(x264 or {})}
        tb = Fraction(1, fps)
        v.codec_context.time_base = tb
        for i in range(frames):
            image = background.copy()
            cx, cy, r = object_at(i, width, height)
            inside = ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r) & (i not in hidden)
            spots = (((xx - cx) // 6 + (yy - cy) // 6) % 2).astype(np.uint8) * 90
            image[inside] = np.stack([spots, spots // 2 + 20, np.full_like(spots, 210)], axis=-1)[inside]
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts = i
            vf.time_base = tb
            for p in v.encode(vf):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    return path


def disc_mask(index: int, width: int, height: int, grow: int = 4) -> np.ndarray:
    cx, cy, r = object_at(index, width, height)
    yy, xx = np.mgrid[0:height, 0:width]
    return np.where((xx - cx) ** 2 + (yy - cy) ** 2 <= (r + grow) ** 2, 255, 0).astype(np.uint8)


@contextlib.contextmanager
def running_studio(studio, *, token: str | None = None):
    """Serve ``studio`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    import uvicorn

    from streamfill.studio.app import create_app
    from streamfill.studio.server import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(studio, token=token), log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
