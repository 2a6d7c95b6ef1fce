"""Random access to a video's frames by index, and small preview encodings (for ``streamfill studio``).

``FrameSeeker`` numbers frames the way :class:`streamfill.io.VideoReader` does (0-based, presentation
order): on open it reads every packet's pts once (demuxing only, no decoding), sorts them, and frame ``i`` is
the picture with the ``i``-th smallest pts; the same pass notes which frames are keyframes. A request for
frame ``i`` either decodes on from where the decoder stands (when no keyframe lies closer to ``i``) or seeks to
the keyframe before ``i``; on the way, pictures no other picture refers to are not decoded at all.
``decode_to`` can be interrupted between packets (``stop``), leaving the decoder where it got to, so a caller
can move the target while a user drags a scrubber.

Preview helpers: ``fit`` (the size a preview gets), ``encode_jpeg`` (RGB) and ``encode_png`` (grey masks).
"""

from __future__ import annotations

import bisect
import collections
import os
import threading
from collections.abc import Callable
from fractions import Fraction

import av
import cv2
import numpy as np

from streamfill.errors import DecodeError, InputError
from streamfill.io.decode import VideoInfo, VideoReader
from streamfill.io.images import SWAPS_SIDES, frame_orientation, mask_grey, orient
from streamfill.types import Frame

_SEEK_COST = 3  # a seek (flush, demuxer seek) costs about as much as decoding this many frames


class Decoded:
    """One decoded picture of a ``FrameSeeker``: its index and pts, full-resolution RGB (bit-exact, as
    :class:`streamfill.io.VideoReader` gives it) or a preview scaled straight from the decoder's YUV."""

    def __init__(self, vf: av.VideoFrame, index: int, orientation: int | None) -> None:
        self._vf, self.index, self.pts = vf, index, int(vf.pts)
        self._shown = orientation or frame_orientation(vf)  # how it is shown (``images.orient``)

    def rgb(self) -> np.ndarray:
        return orient(self._vf.to_ndarray(format="rgb24"), self._shown)

    def preview_bgr(self, size: tuple[int, int]) -> np.ndarray:
        """H x W x 3 BGR at ``size`` = (w, h) (after rotation): one libswscale pass (area filter) from the
        decoder's picture, several times cheaper than a full-size RGB conversion and a resize."""
        w, h = size
        if self._shown in SWAPS_SIDES:
            w, h = h, w
        if (w, h) == (self._vf.width, self._vf.height):
            image = self._vf.to_ndarray(format="bgr24")
        else:
            image = self._vf.reformat(width=w, height=h, format="bgr24", interpolation="AREA").to_ndarray()
        return orient(image, self._shown)


class FrameSeeker:
    """Frames of a video file by index: ``with FrameSeeker(path) as s: s.count; s.frame(i) -> Frame``.

    Thread-safe (one lock). Frames are H x W x 3 uint8 RGB with their source pts and time base, shown as the
    file says (turned, mirrored). ``count`` is the number of video packets with a timestamp (for files whose
    every packet is one picture, the number of frames); ``keyframes`` the indices of the frames a seek can start
    from. Raises InputError for an index out of range, DecodeError when the file cannot be read.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 0) -> None:
        self.path = str(path)
        self._threads = threads
        self._lock = threading.Lock()
        self._container = None
        self._stream = None
        self._decoder = None
        self._last = -1  # index of the last frame the decoder returned
        self._base = 0  # index of the keyframe the decoder started from
        self._aim: int | None = None  # pts of the packet up to which unreferenced pictures are skipped
        self._fed: collections.deque = collections.deque(maxlen=64)  # pts of the last packets decoded
        self.info: VideoInfo | None = None
        self.pts: list[int] = []
        self.keyframes: list[int] = [0]
        # None: a seek goes to the frame's pts; else to the dts of its keyframe, one per keyframe (a demuxer
        # that seeks by decoding time, MPEG-TS: a seek to a pts landed on a B-frame after the keyframe)
        self._key_dts: list[int] | None = None
        self.seeks = 0  # how many requests needed a seek (for benchmarks)
        self.decoded = 0  # how many pictures the decoder returned (for benchmarks)

    def open(self) -> FrameSeeker:
        with VideoReader(self.path) as probe:
            self.info = probe.info
        if self.info.decode_order_stamps:  # its frames cannot be found by their stamps (see in_presentation_times)
            raise DecodeError(f"{os.path.basename(self.path)}: an AVI with B-frames stores no presentation times, so "
                              "its frames cannot be found by time; convert it to .mp4 or .mkv first (ffmpeg -i IN.avi "
                              "OUT.mp4)")
        try:
            self._open_container()
            pts, keys, dts = set(), set(), {}
            for packet in self._container.demux(self._stream):
                if packet.size == 0 or packet.is_discard:
                    # discarded: decoded only as a reference, never shown (an MP4 edit list that starts after
                    # them, as a cut without re-encoding leaves): the reader has no such frame, and counting it
                    # moved every index (a mask painted on frame k in the studio applied to frame k + 3)
                    continue
                p = packet.pts if packet.pts is not None else packet.dts
                if p is not None:
                    pts.add(int(p))
                    if packet.is_keyframe:
                        keys.add(int(p))
                        if packet.dts is not None:
                            dts[int(p)] = int(packet.dts)
            self.pts = sorted(pts)
        except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
            self.close()
            raise DecodeError(f"cannot index {self.path}: {exc}") from None
        if not self.pts:
            self.close()
            raise DecodeError(f"{self.path} has no video frames with timestamps")
        self.keyframes = sorted({0} | {bisect.bisect_left(self.pts, k) for k in keys})
        try:
            last = len(self.keyframes) - 1
            lands = self._lands_at(last)
            if not lands:
                self._key_dts = [dts.get(self.pts[k], self.pts[k]) for k in self.keyframes]
                lands = self._lands_at(last)
                if not lands:
                    self._key_dts = None  # neither: the seeks that miss fall back to decoding from the start
            self._rewind(0 if lands else None)  # (a seek back is cheaper than opening the file again)
        except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
            self.close()
            raise DecodeError(f"cannot open {self.path}: {exc}") from None
        return self

    def _lands_at(self, k: int) -> bool:
        """A seek to keyframe number ``k`` starts demuxing at or before that keyframe (not after it)."""
        self._seek(self.keyframes[k])
        for packet in self._container.demux(self._stream):
            p = packet.pts if packet.pts is not None else packet.dts
            if packet.size and p is not None:
                return p <= self.pts[self.keyframes[k]]
        return False

    def _open_container(self) -> None:
        self._container = av.open(self.path, mode="r")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        if self._threads:
            self._stream.thread_count = self._threads

    def sibling(self, *, threads: int | None = None) -> FrameSeeker:
        """A second, independent decoder on the same file, opened without indexing it again."""
        other = FrameSeeker(self.path, threads=self._threads if threads is None else threads)
        other.info, other.pts, other.keyframes, other._key_dts = self.info, self.pts, self.keyframes, self._key_dts
        try:
            other._rewind()
        except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
            other.close()
            raise DecodeError(f"cannot open {self.path}: {exc}") from None
        return other

    @property
    def count(self) -> int:
        return len(self.pts)

    @property
    def position(self) -> int:
        """Index of the last frame the decoder returned (-1 right after a seek or open)."""
        return self._last

    def keyframe_before(self, index: int) -> int:
        """The index of the last keyframe at or before frame ``index``."""
        return self.keyframes[max(0, bisect.bisect_right(self.keyframes, index) - 1)]

    def cost(self, index: int) -> int:
        """About how many frames must be decoded to return frame ``index`` from where the decoder stands."""
        on = self._on_cost(index)
        seek = self._seek_cost(index)
        return seek if on is None else min(seek, on)

    def _seek_cost(self, index: int) -> int:
        return index - self.keyframe_before(index) + _SEEK_COST

    def _on_cost(self, index: int) -> int | None:
        """Frames to decode to reach ``index`` by decoding on from where the decoder stands; None when
        decoding on cannot reach it (no decoder, or the frame is behind it)."""
        if self._decoder is not None and index > self._last and index >= self._base:
            return index - max(self._last, self._base - 1)
        return None

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None
            self._decoder = None

    def __enter__(self) -> FrameSeeker:
        return self.open() if self._container is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    def _rewind(self, index: int | None = None) -> None:
        """Start decoding at the keyframe before frame ``index``, or (None) at the very start of the file."""
        if index is None:
            # a fresh demuxer: a seek to the first timestamp can land after the first keyframe (MPEG-TS)
            if self._container is not None:
                self._container.close()
            self._open_container()
        else:
            self._seek(index)
        self._stream.codec_context.skip_frame = "DEFAULT"
        self._decoder = self._decode()
        self._fed.clear()
        self._last = -1
        self._base = self.keyframe_before(index) if index is not None else 0

    def _seek(self, index: int) -> None:
        """Move the demuxer to the keyframe before frame ``index``: a seek to that keyframe's time (a seek to
        the frame's own pts lands on that very packet, keyframe or not, in a demuxer without an index: MPEG-TS)."""
        k = bisect.bisect_right(self.keyframes, index) - 1
        target = self.pts[self.keyframes[k]] if self._key_dts is None else self._key_dts[k]
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)

    def _decode(self):
        """Decoded frames from the current position, and ``None`` after each packet (a point to stop at).
        While ``self._aim`` is set, packets before the aim's own packet are decoded with FFmpeg's
        ``skip_frame = NONREF``: pictures no other picture refers to are not decoded at all (they would be
        thrown away on the way to the target; the others come out identical), which makes a jump in a
        long-GOP file about 40 % cheaper. From the aim's packet on, every picture is decoded."""
        cc = self._stream.codec_context
        mode = "DEFAULT"  # _rewind set it; only this generator changes it while it runs
        for packet in self._container.demux(self._stream):
            aim = self._aim
            if aim is not None and packet.pts is not None and packet.pts == aim:
                self._aim = aim = None
            want = "NONREF" if aim is not None else "DEFAULT"
            if want != mode:
                cc.skip_frame = mode = want
            if packet.pts is not None:
                self._fed.append(int(packet.pts))
            yield from packet.decode()
            yield None
        self._aim = None
        cc.skip_frame = "DEFAULT"

    def decode_to(self, index: int, *, stop: Callable[[], bool] | None = None,
                  on_frame: Callable[[Decoded], None] | None = None, skip: bool = True) -> Decoded | None:
        """Decode frame ``index`` (0 <= index < count): on from where the decoder stands, or after a seek to
        the keyframe before it, whichever decodes fewer frames. ``stop`` is asked after every packet; when it
        says True, returns None and the decoder stays where it got to (a later call goes on from there).
        ``on_frame`` sees every frame decoded on the way. ``skip=False`` decodes every picture."""
        if not 0 <= index < self.count:
            raise InputError(f"frame {index} is outside the clip (0-{self.count - 1})")
        with self._lock:  # (checked under the lock: a close() from another thread may come first)
            if self._container is None:
                raise DecodeError(f"{os.path.basename(self.path)} is not open")
            try:
                return self._decode_to(index, stop, on_frame, skip)
            except av.FFmpegError as exc:
                self._decoder = None
                reason = getattr(exc, "strerror", None) or exc  # not FFmpeg's errno, nor the server's path
                raise DecodeError(f"cannot decode frame {index} of {os.path.basename(self.path)}: {reason}") from None

    def _decode_to(self, index, stop, on_frame, skip) -> Decoded | None:
        target = self.pts[index]
        # Plans, in order: decode on, a seek skipping unreferenced pictures, a plain seek, decoding from the
        # start (the seek landed after the frame, or a picture was missing).
        plans = ["on", "seek-skip", "seek", "start"]
        on = self._on_cost(index)
        if on is None or on > self._seek_cost(index):
            plans = plans[1:]
        if not skip:
            plans = [p for p in plans if p != "seek-skip"]
        shown = self.info.orientation
        for plan in plans:
            if plan != "on":
                self.seeks += 1
                self._rewind(index if plan.startswith("seek") else None)
            # Skip unreferenced pictures up to the target's packet, unless that packet is already decoded.
            self._aim = target if plan != "seek" and skip and target not in self._fed else None
            while True:
                got = self._next(stop)
                if got is None:
                    break
                if got == "stop":
                    return None
                i, vf = got
                self._last = i
                if i >= index:
                    self._aim = None
                    if i == index:
                        return Decoded(vf, i, shown)
                    break
                if on_frame is not None:
                    on_frame(Decoded(vf, i, shown))
        raise DecodeError(f"{os.path.basename(self.path)}: frame {index} (pts {target}) could not be decoded")

    def _next(self, stop):
        for vf in self._decoder:
            if vf is None:
                if stop is not None and stop():
                    return "stop"
                continue
            p = vf.pts
            if p is None:
                continue
            self.decoded += 1
            i = bisect.bisect_left(self.pts, p)
            return min(i, self.count - 1), vf
        self._decoder = None
        return None

    def frame(self, index: int) -> Frame:
        """Frame ``index`` (0 <= index < count), full resolution RGB."""
        decoded = self.decode_to(index)
        return Frame(image=decoded.rgb(), pts=decoded.pts, time_base=self.info.time_base, index=decoded.index)

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


def preview_jpeg(decoded: Decoded, size: tuple[int, int], *, quality: int = 85) -> bytes:
    """JPEG bytes of a decoded picture scaled straight to ``size`` = (w, h) (see ``Decoded.preview_bgr``)."""
    ok, buf = cv2.imencode(".jpg", decoded.preview_bgr(size), [cv2.IMWRITE_JPEG_QUALITY, quality])
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
    """An uploaded mask picture (PNG/JPEG bytes) as H x W uint8 (``decode.mask_grey``: the brightest colour
    channel, or what is painted on a transparent layer). Raises InputError."""
    array = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(array, cv2.IMREAD_UNCHANGED) if array.size else None
    if image is None:
        raise InputError("the mask is not a PNG or JPEG picture")
    if image.dtype == np.uint16:  # a 16-bit PNG: its top 8 bits, as the command line's reader takes them
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return image
    return mask_grey(image[..., :3].max(axis=2), image[..., 3] if image.shape[2] == 4 else None)
