"""Fixtures for the host integrations (plugins/gstreamer, plugins/blender): a running `streamfill serve`,
lossless RGB clips, and the environment a host process gets (the system python3, not this venv)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import zmq

from streamfill import protocol

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the helpers the tests share (serve_helpers)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_env(tmp: Path, **extra: str) -> dict:
    """The environment of a host application: this venv and its Python left out, so the host runs its own
    (system) Python exactly as a user's shell would; a private GStreamer registry (no stale cache)."""
    venv = os.environ.get("VIRTUAL_ENV")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and not (venv and p.startswith(venv)) and "pyenv" not in p]
    env = {"PATH": os.pathsep.join(["/usr/bin", "/bin", *path]), "HOME": os.environ.get("HOME", str(tmp)),
           "LANG": "C.UTF-8", "GST_REGISTRY": str(tmp / "gst-registry.bin"),
           "GST_PLUGIN_PATH": str(ROOT / "plugins" / "gstreamer")}
    env.update(extra)
    return env


def moving_square(index: int, height: int, width: int, side: int = 12, step: int = 3) -> tuple[int, int]:
    """Top-left (x, y) of the red square in frame ``index`` of ``rgb_clip``."""
    return (8 + index * step) % max(1, width - side - 8), (height - side) // 2


def still_background(height: int, width: int) -> np.ndarray:
    """The still textured background of ``square_over_background`` (H x W x 3 uint8 RGB)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 5 + y * 2) % 256, (y * 4 + 30) % 256, ((x // 6 + y // 6) % 2) * 140 + 60],
                    axis=-1).astype(np.uint8)


def square_over_background(count: int, height: int, width: int):
    """(image, mask) pairs: a red 12 px square crossing ``still_background`` (the truth under the hole), the
    mask the square grown by 1 px."""
    background = still_background(height, width)
    for i in range(count):
        sx, sy = moving_square(i, height, width)
        image = background.copy()
        image[sy:sy + 12, sx:sx + 12] = (230, 20, 20)
        mask = np.zeros((height, width), np.uint8)
        mask[sy - 1:sy + 13, sx - 1:sx + 13] = 255
        yield image, mask


def frame_image(index: int, height: int, width: int, side: int = 12) -> np.ndarray:
    """A textured RGB frame with a red square that moves right by 3 px a frame (H x W x 3 uint8)."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([(x * 3 + index) % 256, (y * 2 + 40) % 256,
                      ((x // 8 + y // 8) % 2) * 150 + 50], axis=-1).astype(np.uint8)
    x0, y0 = moving_square(index, height, width, side)
    image[y0:y0 + side, x0:x0 + side] = (230, 20, 20)
    return image


def write_rgb_clip(path: Path, frames: list[np.ndarray], fps: int = 25, pts: list[int] | None = None) -> None:
    """A lossless FFV1 (bgr0) Matroska clip: GStreamer and PyAV both decode it to the exact RGB bytes, so
    the element and `streamfill process` see the same pictures. ``pts``: the frames' times in 1/fps units
    (default 0, 1, 2, ...)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "bgr0"
        for i, image in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="bgr0")
            vf.pts, vf.time_base = i if pts is None else pts[i], Fraction(1, fps)
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def write_grey_clip(path: Path, masks: list[np.ndarray], fps: int = 25) -> None:
    """A lossless FFV1 grey mask video (255 = remove)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=fps)
        stream.height, stream.width = masks[0].shape
        stream.pix_fmt = "gray"
        for i, mask in enumerate(masks):
            vf = av.VideoFrame.from_ndarray(mask, format="gray")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def read_frames(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """(RGB frames, their times in seconds) of a video file, decoded with PyAV."""
    images, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            images.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * stream.time_base))
    return images, times


def _hello(endpoint: str, timeout: float) -> bool:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    try:
        sock.connect(endpoint)
        sock.send_multipart([b""] + protocol.encode_hello(req=1))
        return bool(sock.poll(int(timeout * 1000)))
    finally:
        sock.close(0)
        ctx.term()


@contextlib.contextmanager
def running_serve(*args: str):
    """`streamfill serve ARGS` on a free loopback port, answering hello; yields its endpoint."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "streamfill", "serve", "-q", "--bind", endpoint, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _hello(endpoint, 1.0):
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.poll() is not None else ""
                pytest.fail(f"streamfill serve did not start on {endpoint}: {out}")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="package")
def serve():
    """`streamfill serve` (per-frame, default engine) on a free loopback port; yields its endpoint."""
    with running_serve() as endpoint:
        yield endpoint
