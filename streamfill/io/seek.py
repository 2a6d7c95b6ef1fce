"""Random access to a video's frames by index, and small preview encodings (for ``streamfill studio``).

``FrameSeeker`` numbers frames the way :class:`streamfill.io.VideoReader` does (0-based, presentation
order): on open it reads every packet's pts once (demuxing only, no decoding), sorts them, and frame ``i`` is
the picture with the ``i``-th smallest pts. A request for frame ``i`` seeks to the keyframe before it and
decodes forward; a request just after the last frame returned continues decoding without seeking (playback).

Preview helpers: ``fit`` (the size a preview gets), ``encode_jpeg`` (RGB) and ``encode_png`` (grey masks).
"""

from __future__ import annotations

import bisect
import os
import threading
from fractions import Fraction

import av
import cv2
import numpy as np

from streamfill.errors import DecodeError, InputError
from streamfill.io.decode import VideoInfo, VideoReader, _rotate
from streamfill.types import Frame

_CONTINUE = 48  # a request at most this many frames after the last one decodes on instead of seeking


class FrameSeeker:
    """Frames of a video file by index: ``with FrameSeeker(path) as s: s.count; s.frame(i) -> Frame``.

    Thread-safe (one lock). Frames are H x W x 3 uint8 RGB with their source pts and time base, rotation
    applied. ``count`` is the number of video packets with a timestamp (for files whose every packet is one
    picture, the number of frames). Raises InputError for an index out of range, DecodeError when the file
    cannot be read.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 0) -> None:
        self.path = str(path)
        self._threads = threads
        self._lock = threading.Lock()
        self._container = None
        self._stream = None
        self._decoder = None
        self._last = -1  # index of the last frame the decoder returned
        self.info: VideoInfo | None = None
        self.pts: list[int] = []
        self.seeks = 0  # how many requests needed a seek (for benchmarks)

    def open(self) -> FrameSeeker:
        with VideoReader(self.path) as probe:
            self.info = probe.info
        try:
            self._container = av.open(self.path, mode="r")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            if self._threads:
                self._stream.thread_count = self._threads
            pts = set()
            for packet in self._container.demux(self._stream):
                if packet.size == 0:
                    continue
                p = packet.pts if packet.pts is not None else packet.dts
                if p is not None:
                    pts.add(int(p))
            self.pts = sorted(pts)
        except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
            self.close()
            raise DecodeError(f"cannot index {self.path}: {exc}") from None
        if not self.pts:
            self.close()
            raise DecodeError(f"{self.path} has no video frames with timestamps")
        self._rewind()
        return self

    @property
    def count(self) -> int:
        return len(self.pts)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._decoder = None

    def __enter__(self) -> FrameSeeker:
        return self.open() if self._container is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    def _rewind(self, target_pts: int | None = None, *, skip: bool = False) -> None:
        if target_pts is None:
            self._container.seek(0, stream=self._stream, backward=True, any_frame=False)
        else:
            self._container.seek(target_pts, stream=self._stream, backward=True, any_frame=False)
        self._decoder = self._decode(target_pts if skip else None)
        self._last = -1

    def _decode(self, target_pts: int | None):
        """Decoded frames from the current position. With ``target_pts``, the packets before the target's own
        packet are decoded with FFmpeg's ``skip_frame = NONREF``: pictures no other picture refers to are not
        decoded at all (they would be thrown away on the way to the target; the others come out identical),
        which makes a jump in a long-GOP file about 40 % cheaper. From the target's packet on, every picture is
        decoded, so playback can go on from there."""
        cc = self._stream.codec_context
        cc.skip_frame = "NONREF" if target_pts is not None else "DEFAULT"
        for packet in self._container.demux(self._stream):
            if target_pts is not None and packet.pts is not None and packet.pts == target_pts:
                cc.skip_frame = "DEFAULT"
                target_pts = None
            yield from packet.decode()
        cc.skip_frame = "DEFAULT"

    def _next(self) -> tuple[int, av.VideoFrame] | None:
        for vf in self._decoder:
            p = vf.pts
            if p is None:
                continue
            i = bisect.bisect_left(self.pts, p)
            return min(i, self.count - 1), vf
        return None

    def frame(self, index: int) -> Frame:
        """Frame ``index`` (0 <= index < count)."""
        if not 0 <= index < self.count:
            raise InputError(f"frame {index} is outside the clip (0-{self.count - 1})")
        if self._container is None:
            raise DecodeError(f"{self.path} is not open")
        with self._lock:
            try:
                return self._frame(index)
            except av.FFmpegError as exc:
                self._decoder = None
                raise DecodeError(f"cannot decode frame {index} of {self.path}: {exc}") from None

    def _frame(self, index: int) -> Frame:
        target = self.pts[index]
        # Plans, in order: decode on (the next frames), a seek skipping unreferenced pictures, a plain seek,
        # decoding from the start (the seek landed after the frame, or a picture was missing).
        plans = [None, ("seek", True), ("seek", False), ("start", False)]
        if self._decoder is None or not (self._last < index <= self._last + _CONTINUE):
            plans = plans[1:]
        for plan in plans:
            if plan is not None:
                self.seeks += 1
                self._rewind(target if plan[0] == "seek" else None, skip=plan[1])
            got = self._next()
            while got is not None and got[0] < index:
                got = self._next()
            if got is not None and got[0] == index:
                i, vf = got
                self._last = i
                image = _rotate(vf.to_ndarray(format="rgb24"), getattr(vf, "rotation", 0) or self.info.rotation)
                return Frame(image=image, pts=int(vf.pts), time_base=self.info.time_base, index=i)
        raise DecodeError(f"{self.path}: frame {index} (pts {target}) could not be decoded")

    def time_of(self, index: int) -> float:
        """Presentation time (seconds) of frame ``index``, from its pts."""
        return float(Fraction(self.pts[index]) * self.info.time_base)


def fit(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest size with the aspect ratio of ``width`` x ``height`` inside ``max_width`` x ``max_height``
    (never larger than the original; even numbers not required)."""
    scale = min(1.0, max_width / width, max_height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_jpeg(image: np.ndarray, *, size: tuple[int, int] | None = None, quality: int = 85) -> bytes:
    """JPEG bytes of an H x W x 3 uint8 RGB image, resized (area filter) to ``size`` = (w, h) if given."""
    if size is not None and (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DecodeError("JPEG encoding failed")
    return buf.tobytes()


def encode_png(grey: np.ndarray, *, size: tuple[int, int] | None = None) -> bytes:
    """PNG bytes of an H x W uint8 image (a mask), resized to ``size`` = (w, h) if given (area filter, so a
    thin stroke stays visible as a soft line)."""
    if size is not None and (grey.shape[1], grey.shape[0]) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", grey, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise DecodeError("PNG encoding failed")
    return buf.tobytes()


def decode_png_mask(data: bytes) -> np.ndarray:
    """An uploaded mask picture (PNG/JPEG bytes) as H x W uint8: the maximum over colour channels, or the
    alpha channel when the colours are all black (a transparent stroke layer). Raises InputError."""
    array = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(array, cv2.IMREAD_UNCHANGED) if array.size else None
    if image is None:
        raise InputError("the mask is not a PNG or JPEG picture")
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        colour = image[..., :3].max(axis=2)
        return colour if colour.any() else np.ascontiguousarray(image[..., 3])
    return image.max(axis=2)
