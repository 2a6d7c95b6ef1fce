"""Decoding video files, streams and cameras through PyAV (folders of pictures and per-frame masks:
``sequences.py``; single pictures: ``images.py``).

Every reader yields ``Frame`` objects (H x W x 3 uint8 RGB, source pts and time base, 0-based index) and is a
context manager. Memory is flat in clip length: one frame at a time (plus FFmpeg's own small buffers).
"""

from __future__ import annotations

import heapq
import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av

from streamfill.errors import DecodeError, InputError
from streamfill.io.images import SWAPS_SIDES, frame_orientation, orient, picture_format, picture_orientation
from streamfill.types import Frame

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamInfo:
    """One non-video stream of a container (what gets remuxed)."""

    index: int
    type: str
    codec: str
    detail: str
    sample_rate: int | None = None  # audio


@dataclass(frozen=True)
class ColourTags:
    """How a source's YUV maps to colour, as FFmpeg codes it (``AVColorSpace``, ``AVColorRange``,
    ``AVColorPrimaries``, ``AVColorTransferCharacteristic``; 2, 0, 2, 2 = unspecified). Frames are decoded to
    RGB with the source's matrix and range; the encoder converts back with the same ones and writes these tags,
    so the pixels outside the hole keep their values and players show them as they showed the source."""

    space: int = 2
    range: int = 0
    primaries: int = 2
    trc: int = 2


@dataclass(frozen=True)
class VideoInfo:
    """What a source holds. ``width``/``height`` are the decoded frame size after rotation is applied."""

    path: str
    format: str
    codec: str
    width: int
    height: int
    fps: Fraction | None
    time_base: Fraction
    frame_count: int | None
    duration: float | None
    rotation: int  # degrees counter-clockwise, as FFmpeg reports the display matrix (for information)
    pix_fmt: str
    other_streams: tuple[StreamInfo, ...] = ()
    declared_frames: int | None = None  # the container's own frame count, when it stores one
    frame_count_estimated: bool = False  # frame_count is duration x fps (the container stores no count)
    start_time: float = 0.0  # seconds of the first frame's pts (a clip cut from a longer one may start at 5 s)
    end_time: float | None = None  # seconds where its last frame ends, as the header says
    end_from_track: bool = False  # end_time comes from the video track's own duration, not the container's
    colour: ColourTags = ColourTags()  # the source's colour description (unspecified for pictures, cameras)
    sample_aspect: Fraction | None = None  # a pixel's width over its height where not square (anamorphic DV, DVD)
    interlaced: bool = False  # the first frame is coded as two fields
    alpha: bool = False  # the source has transparency (an alpha channel; VP9's alpha_mode)
    orientation: int | None = 1  # how frames are shown (images.orient's EXIF code); None: each frame says (URLs)
    decode_order_stamps: bool = False  # an AVI with B-frames: FFmpeg stamps its frames in decode order

    @property
    def has_audio(self) -> bool:
        return any(s.type == "audio" for s in self.other_streams)

    @property
    def bit_depth(self) -> int:
        """Bits per component of the decoded pixel format (8 when unknown); frames are read as 8-bit RGB."""
        try:
            return max(c.bits for c in av.VideoFormat(self.pix_fmt).components)
        except (ValueError, TypeError, av.FFmpegError):
            return 8


class VideoReader:
    """Decodes the first video stream of a file, URL or device with PyAV.

    Iterating yields Frames in presentation order with the source pts and time base; frames with no pts get
    one derived from the previous frame. ``start``/``end`` (seconds) restrict the range; frames keep their
    source index and pts. Raises DecodeError for a source that is missing, not video, corrupt or empty.

    A container whose header overstates its length (a frame count or duration the stream does not reach)
    is not an error when decoding ends cleanly: the frames it holds are read and a note is logged (and kept
    in ``notes``). A decode error part-way through raises DecodeError, unless ``salvage``: then iteration
    stops at the error, keeping the frames decoded so far, with a note.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        threads: int = 0,
        start: float | None = None,
        end: float | None = None,
        options: dict[str, str] | None = None,
        format: str | None = None,
        salvage: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.path = str(path)
        self._timeout = timeout  # seconds an open or a read of a network source may wait (None: no limit)
        self.salvage = salvage
        self.notes: list[str] = []
        self._threads = threads
        self._start = start
        self._end = end
        self._options = options or {}
        self._format = format
        self._container = None
        self._stream = None
        self.info: VideoInfo | None = None
        self.frames_decoded = 0

    # -- lifecycle -------------------------------------------------------------------------------------
    def open(self) -> VideoReader:
        is_url = "://" in self.path or self.path.startswith("/dev/")
        if not is_url and not os.path.exists(self.path):
            raise InputError(f"input not found: {self.path}")
        if not is_url and os.path.isdir(self.path):
            raise InputError(f"input is a folder: {self.path} (for an image sequence pass --fps)")
        try:
            self._container = av.open(self.path, mode="r", options=self._options, format=self._format,
                                      timeout=self._timeout)
        except av.ExitError as exc:  # PyAV's own timeout: the only one that ends a wait on a silent rtp:// address
            waited = f"nothing received within {self._timeout:g} s" if self._timeout else str(exc)
            raise DecodeError(f"cannot open {self.path}: {waited}") from None
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise DecodeError(f"cannot open {self.path} as video: {getattr(exc, 'strerror', None) or exc}") from None
        self._stream = main_video_stream(self._container)
        if self._stream is None:
            cover = " (only a cover picture)" if self._container.streams.video else ""
            self.close()
            raise DecodeError(f"{self.path} has no video stream{cover}")
        if self._stream.codec_context is None or self._stream.codec_context.name is None:
            self.close()
            raise DecodeError(f"{self.path}: video codec not supported")
        self._stream.thread_type = "AUTO"
        if self._threads:
            self._stream.thread_count = self._threads
        self.info = self._probe()
        return self

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoReader:
        return self.open() if self._container is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- probing ---------------------------------------------------------------------------------------
    def _probe(self) -> VideoInfo:
        c, s = self._container, self._stream
        cc = s.codec_context
        rotation, orientation, colour, interlaced = _first_frame_props(self.path)
        if colour is None:
            colour = ColourTags(cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc)
        if rotation % 90:
            self._note(f"{self.path}: its display turn of {rotation} deg is no quarter turn; frames are processed "
                       "and written as stored, upright as the file holds them")
        w, h = cc.width, cc.height
        sar = s.sample_aspect_ratio or cc.sample_aspect_ratio
        sar = Fraction(sar) if sar and sar != 1 else None
        if orientation in SWAPS_SIDES:
            w, h = h, w
            sar = 1 / sar if sar else None  # turned a quarter, a wide pixel is a tall one
        fmt = cc.format
        alpha = any(c.is_alpha for c in fmt.components) if fmt else False
        alpha = alpha or s.metadata.get("alpha_mode") == "1"  # VP9 keeps its alpha beside the picture
        if alpha and (c.format.name == "image2" or c.format.name.endswith("_pipe")):
            alpha = picture_format(self.path)[0]  # one picture: opaque everywhere is no transparency
        fps = s.average_rate or s.guessed_rate or s.base_rate
        fps = Fraction(fps) if fps else None
        duration = None
        track = None
        if s.duration is not None and s.time_base:
            duration = track = float(s.duration * s.time_base)
        elif c.duration is not None:
            duration = c.duration / av.time_base
        if track is None:
            track = _tag_seconds(s.metadata.get("DURATION"))  # Matroska's per-track tag (FFmpeg writes it)
        start = float(s.start_time * s.time_base) if s.start_time is not None and s.time_base else 0.0
        count = s.frames or None
        estimated = False
        end = _end_time(c, s, start, track)
        # the video's own span when the header gives it (Matroska's track tag: the container's duration covers
        # the audio too, which often runs longer)
        span = end - start if track is not None and end is not None else duration
        if count is None and span and fps:
            count = round(span * fps)
            estimated = True
        others = []
        for st in c.streams:
            if st.index == s.index:
                continue
            name = st.codec_context.name if st.codec_context is not None else "?"
            detail, rate = "", None
            if st.type == "audio":
                rate = st.codec_context.sample_rate
                detail = f"{rate} Hz, {st.codec_context.layout.name}"
            others.append(StreamInfo(index=st.index, type=st.type, codec=str(name), detail=detail, sample_rate=rate))
        if w <= 0 or h <= 0:
            raise DecodeError(f"{self.path}: video stream has no valid size ({w}x{h})")
        return VideoInfo(
            path=self.path,
            format=c.format.name,
            codec=cc.name,
            width=w,
            height=h,
            fps=fps,
            time_base=Fraction(s.time_base) if s.time_base else Fraction(1, int(fps or 25)),
            frame_count=count,
            duration=duration,
            rotation=rotation,
            pix_fmt=str(cc.format.name) if cc.format else "?",
            other_streams=tuple(others),
            declared_frames=s.frames or None,
            start_time=start,
            end_time=end,
            end_from_track=track is not None,
            frame_count_estimated=estimated,
            colour=colour,
            sample_aspect=sar,
            interlaced=interlaced,
            alpha=alpha,
            orientation=orientation,
            decode_order_stamps="avi" in c.format.name.split(",") and bool(cc.has_b_frames),
        )

    # -- frames ----------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        if self._container is None:
            self.open()
        s = self._stream
        tb = self.info.time_base
        step = int(round(1 / (self.info.fps * tb))) if self.info.fps else 1
        start_pts = None if self._start is None else exact_seconds(self._start) / tb
        end_pts = None if self._end is None else exact_seconds(self._end) / tb
        # No seeking: frames before ``start`` are decoded and skipped, so that every frame keeps its source
        # index (per-frame masks are matched by it) whatever the container's keyframe layout.
        index = -1
        last_pts = None
        shown = self.info.orientation
        size = (self.info.height, self.info.width)
        seen = {"damaged": 0, "discarded": 0, "packets": 0, "reach": 0}
        # damaged: packets the demuxer flags as corrupt (e.g. cut short by the end of a truncated file);
        # discarded: pictures decoded as references only (before an MP4 edit list's start), in the header's count;
        # packets: those that hold data (an MP4's index lists each frame's: fewer read means the file was cut);
        # reach: the byte where the last packet of any stream read ends (a Matroska file's damage stops it early)

        def pictures() -> Iterator[tuple[av.VideoFrame, int | None]]:
            for packet in self._container.demux():  # every stream's packets, for ``reach``; the video's decoded
                if packet.size and packet.pos is not None and packet.pos >= 0 \
                        and not packet.stream.disposition & av.stream.Disposition.attached_pic:  # (read first)
                    seen["reach"] = max(seen["reach"], packet.pos + packet.size)
                if packet.stream is not s:
                    continue
                seen["packets"] += bool(packet.size)
                seen["damaged"] += bool(packet.is_corrupt)
                seen["discarded"] += bool(packet.is_discard and packet.size)
                for vf in packet.decode():
                    yield vf, vf.pts

        decoded = pictures()
        if self.info.decode_order_stamps:
            decoded = in_presentation_times(decoded)
        try:
            for vf, pts in decoded:
                if pts is None:
                    pts = 0 if last_pts is None else last_pts + step
                index += 1
                last_pts = pts
                if start_pts is not None and pts < start_pts:
                    continue
                if end_pts is not None and pts >= end_pts:
                    return
                image = orient(vf.to_ndarray(format="rgb24"), shown or frame_orientation(vf))
                if image.shape[:2] != size:
                    if not self.frames_decoded:  # a stream (URL) whose frames alone say they are turned
                        raise DecodeError(f"{self.path}: its frames are shown turned "
                                          f"({image.shape[1]}x{image.shape[0]}), which its header does not say "
                                          f"({size[1]}x{size[0]}); save it to a file and process that")
                    # a broadcast or HLS capture that changes resolution mid-way
                    raise DecodeError(f"{self.path}: frame {index} is {image.shape[1]}x{image.shape[0]}, "
                                      f"earlier frames were {size[1]}x{size[0]}; streamfill needs one frame "
                                      "size through a clip (cut it where the size changes)")
                self.frames_decoded += 1
                yield Frame(image=image, pts=int(pts), time_base=tb, index=index)
        except av.FFmpegError as exc:
            reason = getattr(exc, "strerror", None) or exc  # FFmpeg's words, not its errno
            if not (self.salvage and self.frames_decoded):
                hint = "; --salvage keeps the frames decoded before it" if self.frames_decoded else ""
                raise DecodeError(f"cannot decode {self.path}: decode error after {self.frames_decoded} "
                                  f"frames ({reason}){hint}") from None
            self._note(f"{self.path}: decode error after frame {index} ({reason}); kept the "
                       f"{self.frames_decoded} frames decoded before it (--salvage)")
            return
        whole = self._start is None and self._end is None
        if self.frames_decoded == 0 and whole:
            raise DecodeError(f"{self.path} has no decodable video frames")
        declared = self.info.declared_frames
        short = None
        damaged, packets, reach = seen["damaged"], seen["packets"], seen["reach"]
        if whole and declared and self.frames_decoded + seen["discarded"] < declared:
            short = f"the header says {declared} frames but the video ends after {self.frames_decoded}"
        if whole and not declared and last_pts is not None and self.info.fps:
            # the video track's own duration is checked within 1.5 frames (its last frame's length is a guess);
            # without one, the container's, which covers every stream (audio often runs on): within 0.5 s
            end, frame = float(last_pts * tb), float(1 / self.info.fps)
            if self.info.end_from_track:
                said, margin = self.info.end_time, 1.5
            else:
                said, margin = self.info.duration, max(3.0, 0.5 / frame)
            if said and said - end - frame > margin * frame:
                short = f"the header says {said:.2f} s but the video ends at {end:.2f} s"
        # An MP4/MOV's index lists every frame with its place in the file, so fewer packets read than it lists
        # means the file was cut (a truncated download whose cut fell between the video's packets, in the
        # audio's): not a header that overstates, as an AVI's or a Matroska's can. (All packets read and fewer
        # frames decoded is the decoder's doing, such as a stream that starts between keyframes: only noted.)
        indexed = short is not None and declared and packets < declared and "mov" in self.info.format.split(",")
        # A Matroska demuxer that meets a damaged element stops there as if the file ended: a file cut short
        # ends where reading stopped (bar the index, a few bytes), a damaged one goes on for a good part of itself.
        unread = self._unread(reach) if short and "matroska" in self.info.format else 0
        if short and (damaged or indexed or unread):
            where = ("in a damaged packet" if damaged else
                     f"reading stopped at byte {reach}, {unread} bytes before its end (the file is damaged there)"
                     if unread else "the rest of the file is missing (an MP4 lists every frame)")
            if not self.salvage:
                raise DecodeError(f"{self.path} is truncated or corrupt: {short}, {where}; "
                                  f"--salvage keeps the {self.frames_decoded} frames decoded")
            self._note(f"{self.path} is truncated or corrupt: {short}; kept the {self.frames_decoded} frames "
                       "decoded (--salvage)")
        elif short:
            self._note(f"{self.path}: {short}, cleanly; using the {self.frames_decoded} frames it holds")
        elif damaged:
            self._note(f"{self.path}: {damaged} damaged packet(s); the decoder concealed the damage")

    def _unread(self, reach: int) -> int:
        """Bytes of a local file after ``reach`` when they are more than its index, tags and attached files
        (fonts, a cover, which mkvpropedit appends at the end) could take: 4 KiB and 1 % of the file beyond the
        attachments; 0 otherwise, and for a URL or a device."""
        try:
            size = os.path.getsize(self.path) if os.path.isfile(self.path) else 0
        except OSError:
            return 0
        attached = sum(len(a.data or b"") for a in self._container.streams.attachments)
        left = size - reach - attached
        return left if reach and left > max(4096, size // 100) else 0

    def _note(self, message: str) -> None:
        note(self.notes, message)


REORDER_DEPTH = 16
"""The most frames a decoder holds back to reorder (H.264's limit; MPEG-4 Part 2's packed B-frames hold 1-2)."""


def in_presentation_times(pictures: Iterator[tuple[av.VideoFrame, int | None]],
                          depth: int = REORDER_DEPTH) -> Iterator[tuple[av.VideoFrame, int | None]]:
    """Frames of an AVI with B-frames (``VideoInfo.decode_order_stamps``) with the times they are shown at.
    AVI stores no presentation times: FFmpeg gives each frame the decode-order stamp of its own packet, so the
    frames come out in the order they are shown but their stamps do not (1, 4, 3, 5, 2, ...), and a writer that
    keeps times increasing pushed every later frame late (up to 3 frames against the audio). The stamps are the
    shown times, each displaced by at most ``depth`` frames: the frames, in order, get the smallest stamp not yet
    given. Frames without a stamp pass as they are."""
    held: deque = deque()
    stamps: list[int] = []
    try:
        for vf, pts in pictures:
            if pts is None:
                while held:
                    yield held.popleft(), heapq.heappop(stamps)
                yield vf, None
                continue
            held.append(vf)
            heapq.heappush(stamps, pts)
            if len(held) > depth:
                yield held.popleft(), heapq.heappop(stamps)
    except av.FFmpegError:  # a decode error part-way: the frames held are good ones, given out before it goes on
        while held:
            yield held.popleft(), heapq.heappop(stamps)
        raise
    while held:
        yield held.popleft(), heapq.heappop(stamps)


def main_video_stream(container):
    """The video stream streamfill processes: the first one that is not an attached picture (cover art, a
    "video" stream holding one still image); None when there is none (an audio file with its cover is no
    video)."""
    moving = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    return moving[0] if moving else None


def _end_time(c, s, start: float, track: float | None) -> float | None:
    """Where the video's last frame ends (seconds), from the header: an MP4 track's duration is a length from
    its first frame; Matroska's per-track tag, and its segment duration, are end times already."""
    matroska = "matroska" in c.format.name or "webm" in c.format.name
    if s.duration is not None and s.time_base:
        return start + float(s.duration * s.time_base)
    if track is not None:
        return track if matroska else start + track
    if c.duration is None:
        return None
    duration = c.duration / av.time_base
    return duration if matroska else start + duration


def exact_seconds(value: float) -> Fraction:
    """The seconds a user typed, exactly: 0.28 is 7/25 s, not the float just above it, so that a range starting
    at a frame's time (pts 3584 in 1/12800) keeps that frame."""
    return Fraction(str(value))


def _tag_seconds(value: str | None) -> float | None:
    """Seconds of a duration tag "HH:MM:SS.fraction" (Matroska's DURATION), None when absent or malformed."""
    if not value:
        return None
    try:
        h, m, sec = value.strip().split(":")
        seconds = int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def _first_frame_props(path: str) -> tuple[int, int | None, ColourTags | None, bool]:
    """Display rotation (degrees counter-clockwise, as FFmpeg reports its display matrix), orientation (how
    frames are shown, mirrors included: ``images.orient``'s code), colour tags and whether it is interlaced, of
    a file's first video frame.

    PyAV exposes the display matrix on decoded frames only, so a file is opened once more and one frame is
    decoded (its colour tags are the ones its pixels are converted with; the stream header may lack them).
    Sources that cannot be reopened (URLs, devices) report 0, None, None, False: their frames are turned as
    each says, and a turn that swaps the sides is refused at the first frame (the header's size is unturned)."""
    if "://" in path or path.startswith("/dev/"):
        return 0, None, None, False
    try:
        with av.open(path) as c:
            main = main_video_stream(c)  # (not stream 0: a cover picture may come first)
            for frame in c.decode(main) if main is not None else ():
                return (int(round(getattr(frame, "rotation", 0) or 0)), picture_orientation(path, frame),
                        ColourTags(frame.colorspace, frame.color_range, frame.color_primaries, frame.color_trc),
                        bool(frame.interlaced_frame))
    except (av.FFmpegError, OSError, ValueError):
        pass
    return 0, 1, None, False


def note(notes: list[str], message: str) -> None:
    """Keep ``message`` in a reader's ``notes`` and say it (one ``note:`` line)."""
    notes.append(message)
    _log.warning("note: %s", message)
