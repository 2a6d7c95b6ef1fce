"""Live sources and outputs through PyAV: V4L2 cameras, network streams (RTSP/HTTP/SRT/...), and a V4L2
loopback virtual camera as output.

- ``open_live_reader(spec, ...)`` returns an unopened ``VideoReader`` (Frames: H x W x 3 uint8 RGB, source
  pts/time_base, 0-based index) with the FFmpeg options that suit the source: ``/dev/videoN`` opens with the
  ``v4l2`` demuxer (``video_size``, ``framerate``, ``input_format``); URLs get low-latency flags (no input
  buffering, small probe) and a read timeout, so a silent network peer fails the run instead of hanging it.
- ``V4L2Writer`` writes Frames to a V4L2 output device (a ``v4l2loopback`` virtual camera) as raw
  ``yuv420p`` or ``yuyv422`` frames; video-call applications then read the clean feed as a webcam.
"""

from __future__ import annotations

import contextlib
import os
import re
from fractions import Fraction

import av
import numpy as np

from streamfill.errors import InputError, OutputError
from streamfill.io.decode import VideoReader
from streamfill.types import Frame

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp", "rtp", "hls")
V4L2_OUT_FORMATS = ("yuv420p", "yuyv422")
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480). Raises InputError with the expected form."""
    m = _SIZE.match(str(text).strip())
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise InputError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480")
    return int(m.group(1)), int(m.group(2))


def source_kind(spec: str) -> str:
    """``device`` (/dev/...), ``network`` (a URL with a known scheme), ``zmq`` or ``file``."""
    s = str(spec)
    if s.startswith("zmq:"):
        return "zmq"
    if s.startswith("/dev/"):
        return "device"
    scheme = s.split("://", 1)[0].lower() if "://" in s else ""
    if scheme in NETWORK_SCHEMES:
        return "network"
    if scheme:
        raise InputError(f"source {s!r}: unsupported scheme {scheme!r} (known: {', '.join(NETWORK_SCHEMES)}, "
                         "zmq:, /dev/videoN or a file)")
    return "file"


def live_options(spec: str, *, size: str | None = None, fps: float | None = None,
                 input_format: str | None = None, timeout: float = 5.0,
                 extra: dict[str, str] | None = None) -> tuple[str | None, dict[str, str]]:
    """(FFmpeg input format, options) for a live source. ``timeout`` is in seconds; ``extra`` (``--av-option
    KEY=VALUE``) wins over the defaults."""
    kind = source_kind(spec)
    fmt = None
    opts: dict[str, str] = {}
    if kind == "device":
        fmt = "v4l2"
        if size:
            w, h = parse_size(size)
            opts["video_size"] = f"{w}x{h}"
        if fps:
            opts["framerate"] = f"{Fraction(fps).limit_denominator(1001)}"
        if input_format:
            opts["input_format"] = input_format
    elif kind == "network":
        us = str(int(timeout * 1_000_000))
        scheme = spec.split("://", 1)[0].lower()
        opts.update({"fflags": "nobuffer", "flags": "low_delay", "probesize": "500000",
                     "analyzeduration": "500000"})
        if scheme in ("rtsp", "rtsps"):
            opts.update({"rtsp_transport": "tcp", "timeout": us})
        elif scheme == "srt":
            opts.update({"timeout": us})
        elif scheme in ("udp", "rtp"):
            # their sockets wait on FFmpeg's "timeout" only: with rw_timeout alone a silent address waited for
            # ever, and Ctrl-C did not end it
            opts.update({"timeout": us, "rw_timeout": us})
        else:
            opts.update({"rw_timeout": us})
        if size or fps or input_format:
            raise InputError("--size, --fps and --input-format apply to cameras (/dev/videoN) only")
    elif size or fps or input_format:
        raise InputError("--size, --fps and --input-format apply to cameras (/dev/videoN) only")
    opts.update(extra or {})
    return fmt, opts


def open_live_reader(spec: str, *, size: str | None = None, fps: float | None = None,
                     input_format: str | None = None, timeout: float = 5.0,
                     extra: dict[str, str] | None = None, threads: int = 0, salvage: bool = False) -> VideoReader:
    """An unopened VideoReader for a camera, URL or file with live-friendly options (see ``live_options``);
    ``salvage``: a decode error part-way ends the source, keeping what came before it (as ``process --salvage``)."""
    fmt, opts = live_options(spec, size=size, fps=fps, input_format=input_format, timeout=timeout, extra=extra)
    if source_kind(spec) == "device" and not os.path.exists(spec):
        raise InputError(f"camera not found: {spec}")
    wait = timeout if source_kind(spec) == "network" else None
    return VideoReader(spec, options=opts, format=fmt, threads=threads, timeout=wait, salvage=salvage)


class V4L2Writer:
    """Writes Frames (H x W x 3 uint8 RGB) to a V4L2 output device, e.g. a ``v4l2loopback`` virtual camera.

    ``pix_fmt``: ``yuv420p`` (most applications) or ``yuyv422`` (some browsers). Frames are sent as raw
    video at ``fps``; every frame must have the size given here. Linux only; needs the loopback device.
    A FrameSink (context manager); nothing is buffered, so closing is immediate.
    """

    def __init__(self, device: str, width: int, height: int, fps: float | Fraction = 30,
                 pix_fmt: str = "yuv420p") -> None:
        if pix_fmt not in V4L2_OUT_FORMATS:
            raise OutputError(f"--v4l2-format {pix_fmt!r}: must be one of {', '.join(V4L2_OUT_FORMATS)}")
        self.device = str(device)
        self.width, self.height = int(width), int(height)
        self.fps = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
        self.pix_fmt = pix_fmt
        self._out = None
        self._stream = None
        self.frames_written = 0

    def __enter__(self) -> V4L2Writer:
        if not os.path.exists(self.device):
            raise OutputError(f"V4L2 output device not found: {self.device} (load the v4l2loopback module, "
                              "e.g. `sudo modprobe v4l2loopback video_nr=10 exclusive_caps=1`)")
        try:
            self._out = av.open(self.device, mode="w", format="v4l2")
            self._stream = self._out.add_stream("rawvideo", rate=self.fps)
            self._stream.width, self._stream.height = self.width, self.height
            self._stream.pix_fmt = self.pix_fmt
        except (av.FFmpegError, ValueError, OSError) as exc:
            self._close()
            raise OutputError(f"cannot open {self.device} as a V4L2 output: {exc}") from None
        return self

    def write(self, frame: Frame) -> None:
        if frame.image.shape != (self.height, self.width, 3):
            raise OutputError(f"frame {frame.index} is {frame.width}x{frame.height}, the V4L2 output is "
                              f"{self.width}x{self.height}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.image), format="rgb24")
        vf = vf.reformat(format=self.pix_fmt)
        vf.pts = self.frames_written
        vf.time_base = 1 / self.fps
        try:
            for packet in self._stream.encode(vf):
                self._out.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"writing frame {frame.index} to {self.device} failed: {exc}") from None
        self.frames_written += 1

    def _close(self) -> None:
        if self._out is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                self._out.close()
            self._out = None

    def __exit__(self, exc_type, exc, tb) -> None:
        self._close()
