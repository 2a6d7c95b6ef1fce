"""Encoding: H.264 or lossless FFV1 video with untouched audio, or a PNG sequence.

Writers are FrameSinks: context managers that take Frames in order. Output goes to a temporary name beside
the final one and is renamed only when the writer closes without error, so an interrupted or failed run
never leaves a truncated file under the final name. Every frame keeps its source pts and time base; audio,
subtitle and other streams of ``remux_from`` are copied packet by packet (no re-encode).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from streamfill.config import X264_PRESETS, IOConfig
from streamfill.errors import OutputError
from streamfill.io.decode import ColourTags, VideoInfo
from streamfill.io.images import IMAGE_SUFFIXES
from streamfill.io.remux import Passthrough, check_carry, copy_source_tags, remux_streams
from streamfill.types import Frame

_PARTIAL = re.compile(r"^\..+\.partial-(?P<pid>\d+)(?:-(?P<host>[0-9a-f]{8}))?(\.[A-Za-z0-9]+)?$")
_log = logging.getLogger(__name__)
LOSSLESS_SUFFIXES = (".mkv", ".avi")
VP9_SUFFIXES = (".webm",)  # WebM holds VP8/VP9/AV1 only: VP9 (libvpx) there, H.264 everywhere else
NO_VIDEO_SUFFIXES = (".ogv", ".ogg", ".gif")  # containers that hold neither (refused before any work)
# Containers that keep each frame's time with what streamfill writes (H.264 with B-frames, VP9 in .webm,
# timestamps kept as they came: negative decode times not shifted). Checked by writing and reading back; .flv,
# .mpg/.vob, .mxf, .wmv/.asf came back with wrong times (wrapped, all 0, out of order) and are refused.
TIMED_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".ts", ".m2ts", ".mts", ".3gp", ".3g2", ".nut")


def is_sequence_path(path: str | os.PathLike) -> bool:
    """A path names a PNG-sequence output when it ends with a separator, is a folder, or has no suffix."""
    s = str(path)
    return s.endswith(("/", os.sep)) or os.path.isdir(s) or Path(s).suffix == ""


MOVIE_SUFFIXES = (".mp4", ".mov", ".m4v")  # QuickTime-family files: their edit lists use a movie timescale


def movie_timescale(time_base: Fraction, rates: Iterable[int]) -> int:
    """A movie timescale in which the video's and the audio's first times are exact: the least common multiple
    of the video time base's, the audio sample rates' and milliseconds' (FFmpeg's default), or the largest
    part of it that fits in 31 bits."""
    rates = [r for r in rates if r]
    for parts in ([time_base.denominator, *rates, 1000], [time_base.denominator, 1000],
                  [time_base.denominator]):
        scale = math.lcm(*parts)
        if scale <= 2**31 - 1:
            return scale
    return 1000


def check_video_suffix(path: str | os.PathLike) -> None:
    """Refuse, before any work, an output file whose container cannot hold what streamfill writes (H.264, or
    VP9 in .webm) with the frames' timestamps. Raises OutputError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in NO_VIDEO_SUFFIXES:
        raise OutputError(f"{path.name}: a {suffix} file cannot hold the H.264 or VP9 video streamfill "
                          f"writes; use .mp4, .mkv, .mov or .webm")
    if suffix == ".avi":
        # AVI stores no presentation times, only a frame rate: H.264 in it came out a frame late, out of order
        # (B-frames) and at 1/600 s steps (an NTSC rate)
        raise OutputError(f"{path.name}: an .avi file cannot keep the frames' timestamps; use .mp4, .mkv, .mov "
                          f"or .webm")
    if suffix not in TIMED_SUFFIXES:
        raise OutputError(f"{path.name}: a {suffix or 'suffix-less'} file does not keep the frames' timestamps as "
                          f"streamfill writes them (it writes into {', '.join(TIMED_SUFFIXES)}); use .mp4, .mkv, "
                          f".mov or .webm")


def check_output_path(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Validate an output path before any work starts: writable folder, not one of the inputs."""
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    for src in inputs:
        if src is not None and "://" not in str(src) and same_file(Path(src), out):
            raise OutputError(f"output {out} is the same file as the input {src}; choose another name")
    if not parent.exists():
        raise OutputError(f"output folder does not exist: {parent}")
    if not parent.is_dir():
        raise OutputError(f"output {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder is not writable: {parent}")
    if out.exists() and out.is_dir() and not is_sequence_path(out):
        raise OutputError(f"output {out} is a folder")
    return out


def check_image_output(path: str | os.PathLike) -> Path:
    """``path`` as a Path if its suffix names an image format we write (``IMAGE_SUFFIXES``), else OutputError
    (checked before any work is done)."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise OutputError(f"{path}: unknown image format {path.suffix or '(no suffix)'!r}; use one of "
                          f"{', '.join(IMAGE_SUFFIXES)}")
    return path


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an H x W x 3 uint8 RGB (or H x W grey) image; the format follows the suffix. Written under a
    temporary name and renamed, so a failure never leaves a half-written file under the final name."""
    path = check_image_output(path)
    data = image[..., ::-1] if image.ndim == 3 else image
    ok, encoded = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(data))
    if not ok:
        raise OutputError(f"cannot encode {path}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(path.parent)
        with staged(path) as tmp:
            tmp.write_bytes(encoded.tobytes())
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file: the same path once resolved, or a link (hard or symbolic) to it."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def host_tag() -> str:
    """8 hex digits naming this machine in partial-output names: a process id means something only on its own
    machine, and a folder may be shared by several (the workers of a Ray cluster write into one)."""
    return hashlib.sha1(os.uname().nodename.encode()).hexdigest()[:8]


def partial_name(name: str) -> str:
    """The hidden name under which ``name`` (a file stem or a folder name) is written: ``.NAME.partial-PID-HOST``."""
    return f".{name}.partial-{os.getpid()}-{host_tag()}"


def _temp_path(final: Path) -> Path:
    return final.with_name(partial_name(final.stem) + final.suffix)


@contextlib.contextmanager
def staged(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary name beside ``path`` (``partial_name``) to write the file under; renamed to ``path`` when the
    block ends normally, removed when it does not (an error, Ctrl-C), so nothing half-written ever stands under
    ``path`` (nor replaces a good file there). One writer per path at a time."""
    final = Path(path)
    tmp = _temp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(OSError):  # (gone already after the rename)
            tmp.unlink()


def _pid_running(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it runs, as another user
        return True
    return True


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove the partial outputs (``.NAME.partial-PID[.ext]`` files and PNG-sequence folders) in ``folder``
    whose process PID no longer runs: leftovers of a run that was killed outright (``kill -9``, power loss),
    which no exit handler could clean. Returns what was removed and logs one line when anything was.
    (Every exit streamfill controls removes its own partial output.)"""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    here = host_tag()
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if match is None or (match["host"] or here) != here or _pid_running(int(match["pid"])):
            continue  # (a partial written on another machine sharing the folder: its pid means nothing here)
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    if removed:
        _log.warning("removed %d stale partial output%s left by processes that no longer run: %s", len(removed),
                     "" if len(removed) == 1 else "s", ", ".join(p.name for p in removed))
    return removed


class _AtomicWriter:
    """Context-manager lifecycle shared by the writers: ``open()`` on entry; on exit ``close()`` (publish
    under the final name) after success, ``abort()`` (discard the temporary output) after an error."""

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class VideoWriter(_AtomicWriter):
    """Writes Frames as H.264 (libx264; VP9 with libvpx in .webm) or, with ``config.lossless``, FFV1 RGB in MKV
    — bit-exact pixels.

    ``info`` gives size, frame rate and time base (the source's). H.264 (and VP9) use yuv420p, or yuv444p when
    the width or height is odd (4:2:0 cannot hold odd sizes). The audio and subtitle streams of ``remux_from`` are
    copied (``Passthrough``: audio the container cannot hold as it is becomes AAC, or Opus in WebM), limited to
    [start, end) seconds when given.
    """

    def __init__(self, path: str | os.PathLike, info: VideoInfo, *, config: IOConfig | None = None,
                 remux_from: str | None = None, start: float | None = None, end: float | None = None,
                 tune: str | None = None) -> None:
        self.path = Path(path)
        self.info = info
        self.config = config or IOConfig()
        self.remux_from = remux_from
        self._start, self._end = start, end
        self._tune = tune
        self._tmp = _temp_path(self.path)
        self._out = None
        self._stream = None
        self._matrix: str | None = None  # the YUV matrix frames are converted with (None: swscale's default)
        self._range = "MPEG"  # and the range (full, "JPEG", where the source's is)
        self._src = None
        self._src_packets = None
        self._pending = None
        self._passthrough: Passthrough | None = None
        self._last_pts: int | None = None
        self.frames_written = 0
        self.pts_adjusted = 0
        self.skipped_streams: list[str] = []

    def open(self) -> None:
        suffix = self.path.suffix.lower()
        if self.config.lossless and suffix not in LOSSLESS_SUFFIXES:
            raise OutputError(f"lossless output needs a .mkv name, got {self.path.name}")
        remove_stale_partials(self.path.parent)
        try:
            # PyAV creates the file only at the first packet, which x264 holds back for its look-ahead (~40
            # frames): a folder that cannot take it is found now, not after that work
            with open(self._tmp, "wb"):
                pass
        except OSError as exc:
            raise OutputError(f"cannot create {self.path}: {exc.strerror or exc}") from None
        try:
            # Keep source timestamps as they are: FFmpeg would otherwise shift every stream when one starts
            # below zero (AAC priming), moving all video pts.
            options = {"avoid_negative_ts": "disabled"}
            if suffix in MOVIE_SUFFIXES:
                # the edit lists that start a range at its first frame's time are in the movie's timescale
                # (1/1000 s by default, 0.5005 s became 0.5 s): one that divides the video's and the audio's
                rates = (st.sample_rate for st in self.info.other_streams)
                options["movie_timescale"] = str(movie_timescale(self.info.time_base, rates))
            self._out = av.open(str(self._tmp), mode="w", format=_format_for(suffix), options=options)
        except (av.FFmpegError, ValueError, OSError) as exc:
            self.abort()  # (the file made above)
            raise OutputError(f"cannot create {self.path}: {exc}") from None
        try:
            self._add_video_stream()
            self._add_remux_streams()
        except BaseException:
            self.abort()
            raise

    def _add_video_stream(self) -> None:
        info, cfg = self.info, self.config
        rate = info.fps.limit_denominator(1001000) if info.fps else None
        if cfg.lossless:
            stream = self._out.add_stream("ffv1", rate=rate)
            stream.pix_fmt = "bgr0"  # 8-bit RGB, bit-exact (this FFV1 build has no gbrp)
            stream.options = _ffv1_options(info.width, info.height)
        else:
            suffix = self.path.suffix.lower()
            check_video_suffix(self.path)
            vp9 = suffix in VP9_SUFFIXES
            try:
                stream = self._out.add_stream("libvpx-vp9" if vp9 else "libx264", rate=rate)
            except (av.FFmpegError, ValueError) as exc:
                raise OutputError(f"cannot write video into {self.path.name}: {exc}; use .mp4, .mkv, .mov or .webm"
                                  ) from None
            odd = info.width % 2 or info.height % 2
            stream.pix_fmt = "yuv444p" if odd else "yuv420p"
            if vp9:
                # constant quality (b=0) on VP9's 0-63 scale; the x264 preset picks the speed (ultrafast: cpu-used 8,
                # one less per slower preset, down to 0)
                opts = {"crf": str(round(cfg.crf * 63 / 51)), "b": "0", "row-mt": "1", "deadline": "good",
                        "cpu-used": str(max(0, 8 - X264_PRESETS.index(cfg.preset)))}
            else:
                opts = {"crf": str(cfg.crf), "preset": cfg.preset}
                if self._tune:
                    opts["tune"] = self._tune
            stream.options = opts
        stream.width, stream.height = info.width, info.height
        if info.sample_aspect:  # non-square pixels stay so in H.264 (in its own stream; PyAV writes no
            # container's, so FFV1 and VP9 lose it: build.note_lost_aspect says so once per run)
            stream.codec_context.sample_aspect_ratio = info.sample_aspect
        self._matrix = _tag_colour(stream.codec_context, info.colour, rgb=cfg.lossless)
        self._range = "JPEG" if stream.codec_context.color_range == 2 else "MPEG"
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        stream.thread_type = "AUTO"
        self._stream = stream

    def _add_remux_streams(self) -> None:
        if not self.remux_from or "://" in self.remux_from or os.path.isdir(self.remux_from):
            return
        try:
            src = av.open(self.remux_from, mode="r")
        except (av.FFmpegError, OSError):
            return
        self._src = src
        copy_source_tags(src, self._out, self._stream)
        self._passthrough = Passthrough(self._out)
        keep, skipped = remux_streams(src)
        check_carry(self.path, keep)
        self.skipped_streams.extend(skipped)
        self._passthrough.add_all(keep)
        if keep:
            self._src_packets = src.demux(*keep)
        else:
            src.close()
            self._src = None

    def write(self, frame: Frame) -> None:
        image = frame.image
        if image.shape != (self.info.height, self.info.width, 3) or image.dtype != np.uint8:
            raise OutputError(
                f"frame {frame.index} is {image.shape} {image.dtype}, writer expects "
                f"({self.info.height}, {self.info.width}, 3) uint8"
            )
        pts = int(frame.pts)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # the encoder needs strictly increasing pts; count every change
            self.pts_adjusted += 1
        self._last_pts = pts
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        if self._matrix is not None:
            # back to YUV with the matrix and range the source was decoded with (swscale's default is BT.601)
            vf = vf.reformat(format=self._stream.pix_fmt, dst_colorspace=self._matrix, dst_color_range=self._range)
        vf.pts = pts
        vf.time_base = self.info.time_base
        try:
            for packet in self._stream.encode(vf):
                self._out.mux(packet)
        except av.FFmpegError as exc:
            raise OutputError(f"encoding frame {frame.index} failed: {exc}") from None
        self.frames_written += 1
        self._pump(float(pts * self.info.time_base) + 1.0)

    def _pump(self, until: float | None) -> None:
        """Copy remuxed packets whose time is before ``until`` seconds (all remaining when None)."""
        if self._src_packets is None:
            return
        while True:
            packet = self._pending
            self._pending = None
            if packet is None:
                try:
                    packet = next(self._src_packets)
                except (StopIteration, av.FFmpegError):
                    self._src_packets = None
                    return
            if packet.dts is None and packet.pts is None:
                continue  # demuxer flush packet
            t = float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base)
            if until is not None and t > until:
                self._pending = packet
                return
            # a packet that overlaps the range is kept: the one running into the start too (dropping it left the
            # audio up to a packet late: 21 ms of AAC, 104 ms of FLAC)
            ends = t + float(packet.duration * packet.time_base) if packet.duration else t
            if (self._start is not None and ends <= self._start and t < self._start) or \
                    (self._end is not None and t >= self._end):
                continue
            self._passthrough.mux(packet)

    def close(self) -> None:
        if self._out is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._out.mux(packet)
            self._pump(None)
            if self._passthrough is not None:
                self._passthrough.flush()
            self._out.close()
            self._out = None
        except av.FFmpegError as exc:
            self.abort()
            raise OutputError(f"finishing {self.path} failed: {exc}") from None
        finally:
            self._close_src()
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"no frames to write to {self.path}")
        try:
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot move the finished output to {self.path}: {exc}") from None

    def abort(self) -> None:
        """Discard the partial output (never touches the final name)."""
        if self._out is not None:
            with contextlib.suppress(Exception):
                self._out.close()
            self._out = None
        self._close_src()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._tmp)

    def _close_src(self) -> None:
        if self._src is not None:
            with contextlib.suppress(Exception):
                self._src.close()
            self._src = None
            self._src_packets = None


# FFmpeg's AVColorSpace codes -> the YUV matrices swscale converts with (PyAV's reformat names)
_MATRICES = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


def _tag_colour(cc, colour: ColourTags, *, rgb: bool = False) -> str | None:
    """Give the encoder ``cc`` the source's colour tags; returns the matrix to convert RGB with (None: the
    source has none swscale knows, so frames keep swscale's default, BT.601, as they were decoded with). An
    ``rgb`` output (FFV1 with --lossless) has no matrix, but its pixels keep the source's primaries and
    transfer (an HDR source's RGB is PQ or HLG, in BT.2020 primaries)."""
    if colour.primaries not in (0, 2):  # 0: reserved, 2: unspecified
        cc.color_primaries = colour.primaries
    if colour.trc not in (0, 2):
        cc.color_trc = colour.trc
    if rgb:
        return None
    matrix = _MATRICES.get(colour.space)
    if matrix is None:
        return None
    cc.colorspace = colour.space
    # full range ("JPEG": a phone's or a webcam's 0-255) stays full; else limited ("MPEG"), what players assume
    cc.color_range = 2 if colour.range == 2 else 1
    return matrix


def _ffv1_options(width: int, height: int) -> dict[str, str]:
    """FFV1 version 3 (4 slices with checksums: a damaged file loses a slice, not the rest), or version 1 for
    sizes version 3 cannot slice (a 1 px wide picture; FFmpeg refuses to open the encoder)."""
    v3 = {"level": "3", "slices": "4", "slicecrc": "1", "g": "1"}
    try:
        codec = av.CodecContext.create("ffv1", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "bgr0"
        codec.time_base = Fraction(1, 25)
        codec.options = v3
        codec.open()
        return v3
    except (av.FFmpegError, ValueError):
        return {"level": "1", "g": "1"}


def _format_for(suffix: str) -> str | None:
    return {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".avi": "avi", ".webm": "webm"}.get(suffix)


class PngSequenceWriter(_AtomicWriter):
    """Writes Frames as ``000000.png`` ... into a folder (lossless RGB), plus ``timestamps.csv`` with each
    frame's index, pts, time base and seconds so no timing is lost. The folder is built under a temporary
    name and renamed when complete; an existing non-empty folder is refused."""

    def __init__(self, path: str | os.PathLike, info: VideoInfo | None = None, *,
                 remux_from: str | None = None, **_ignored) -> None:
        self.path = Path(os.path.abspath(str(path)))
        self.named = str(path).rstrip("/\\") or str(path)  # as the user wrote it, for messages
        if self.path == Path.cwd() or self.path.parent == self.path:  # "-o .", "-o /": no name to build it under
            raise OutputError(f"output folder {path}: the current folder or the root cannot become a PNG "
                              "sequence; name a new folder, e.g. -o frames/")
        self._tmp = self.path.with_name(partial_name(self.path.name))
        self._codec = None
        self._csv = None
        self.frames_written = 0
        self.skipped_streams: list[str] = []
        self.pts_adjusted = 0
        if remux_from and "://" not in remux_from and not os.path.isdir(remux_from):
            with contextlib.suppress(av.FFmpegError, OSError), av.open(remux_from) as src:
                keep, skipped = remux_streams(src)
                self.skipped_streams = [f"#{st.index} {st.type} (a PNG folder holds pictures only)" for st in keep]
                self.skipped_streams += skipped

    def open(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"output {self.named} is a file; a name without a suffix is a folder for a PNG "
                              "sequence (give a video name, e.g. .mp4, or a new folder)")
        if self.path.exists() and any(self.path.iterdir()):
            raise OutputError(f"output folder {self.named} exists and is not empty")
        remove_stale_partials(self.path.parent)
        try:
            self._tmp.mkdir(parents=False)
            self._csv = open(self._tmp / "timestamps.csv", "w")  # noqa: SIM115 - closed in close()/abort()
        except OSError as exc:
            raise OutputError(f"cannot create {self.named}: {exc}") from None
        self._csv.write("file,index,pts,time_base,seconds\n")

    def write(self, frame: Frame) -> None:
        h, w = frame.image.shape[:2]
        if self._codec is None or (self._codec.width, self._codec.height) != (w, h):
            self._codec = av.CodecContext.create("png", "w")
            self._codec.width, self._codec.height = w, h
            self._codec.pix_fmt = "rgb24"
            self._codec.time_base = Fraction(1, 25)
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.image), format="rgb24")
        vf.pts = self.frames_written
        name = f"{self.frames_written:06d}.png"
        data = b"".join(bytes(p) for p in self._codec.encode(vf))
        tb = frame.time_base
        try:
            with open(self._tmp / name, "wb") as fh:
                fh.write(data)
            self._csv.write(f"{name},{frame.index},{frame.pts},{tb.numerator}/{tb.denominator},"
                            f"{float(frame.pts * tb):.6f}\n")
        except OSError as exc:  # a full disk: named, one line (abort() removes the folder)
            raise OutputError(f"writing frame {frame.index} into {self.named} failed: {exc.strerror or exc}") from None
        self.frames_written += 1

    def close(self) -> None:
        try:
            self._csv.close()
        except OSError as exc:
            self.abort()
            raise OutputError(f"finishing {self.named} failed: {exc.strerror or exc}") from None
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"no frames to write to {self.named}")
        try:
            if self.path.exists():
                self.path.rmdir()  # empty, checked in open()
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot move the finished output to {self.named}: {exc.strerror or exc}") from None

    def abort(self) -> None:
        if self._csv is not None and not self._csv.closed:
            with contextlib.suppress(OSError):  # (its buffer cannot be written on a full disk: the folder goes anyway)
                self._csv.close()
        shutil.rmtree(self._tmp, ignore_errors=True)


def open_output(path: str | os.PathLike, info: VideoInfo, *, config: IOConfig | None = None,
                remux_from: str | None = None, start: float | None = None, end: float | None = None,
                tune: str | None = None):
    """The writer for ``path``: a PNG sequence for a folder-like path, otherwise a video file.

    Use as a context manager; frames are committed under the final name only on a clean exit."""
    if is_sequence_path(path):
        return PngSequenceWriter(path, info, remux_from=remux_from)
    return VideoWriter(path, info, config=config, remux_from=remux_from, start=start, end=end, tune=tune)
