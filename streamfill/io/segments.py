"""Chunked rendering support: scan a video's frames and keyframes without decoding, decode one range of
frames after a seek, and join video-only segments into one output by copying packets (no re-encode).

Used by ``streamfill.distributed`` (``process --ray``): each worker decodes its own range with
:class:`RangeReader`, writes it with ``VideoWriter`` (no remux) to a segment, and the driver calls
:func:`join_segments`, which also copies the source's audio and subtitles once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from streamfill.errors import DecodeError, OutputError
from streamfill.io.decode import VideoReader
from streamfill.io.encode import MOVIE_SUFFIXES, _format_for, _temp_path, movie_timescale
from streamfill.io.images import frame_orientation, orient
from streamfill.io.remux import Passthrough, check_carry, copy_source_tags, remux_streams
from streamfill.types import Frame


def keyframe_pts(path: str | os.PathLike) -> list[int]:
    """The pts (video stream time base) of every keyframe packet of ``path``'s first video stream, sorted.
    Reads packets only (no decoding): cheap even for long masters. Raises DecodeError when unreadable."""
    try:
        with av.open(str(path)) as c:
            streams = [s for s in c.streams if s.type == "video"
                       and not (s.disposition & av.stream.Disposition.attached_pic)]
            if not streams:
                raise DecodeError(f"{path} has no video stream")
            keys = [int(p.pts) for p in c.demux(streams[0]) if p.is_keyframe and p.pts is not None]
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DecodeError(f"cannot scan {path}: {exc}") from None
    return sorted(keys)


class RangeReader(VideoReader):
    """Frames ``pts`` (an increasing list, in the stream's time base) of a video, decoded after one seek to
    ``seek_pts`` (a keyframe at or before ``pts[0]``). Frame ``k`` gets index ``first_index + k``. Every
    listed pts must come out, in order, and nothing else: a missing or unexpected frame raises DecodeError
    (the range would otherwise be silently short)."""

    def __init__(self, path: str | os.PathLike, pts: list[int], *, seek_pts: int, first_index: int,
                 threads: int = 0) -> None:
        super().__init__(path, threads=threads)
        if not pts:
            raise ValueError("RangeReader needs at least one pts")
        self.pts = list(pts)
        self.seek_pts = int(seek_pts)
        self.first_index = int(first_index)

    def __iter__(self) -> Iterator[Frame]:
        if self._container is None:
            self.open()
        s, tb = self._stream, self.info.time_base
        want = self.pts
        k = 0
        # Some containers seek by decode time (MPEG-TS): with B-frames the keyframe's dts lies before its pts,
        # and a seek to its pts lands after it, on the next keyframe (or, from the last keyframe, at the end of
        # the file: nothing decoded). Nothing is yielded before the first wanted frame, so such an overshoot is
        # retried from a second earlier, then two, ... (the frames before the range are decoded and skipped),
        # down to a second before the stream's start.
        back, second = 0, max(1, round(1 / tb))
        try:
            while True:
                self._container.seek(self.seek_pts - back, stream=s, backward=True, any_frame=False)
                overshot = decoded = False
                for packet in self._container.demux(s):
                    for vf in packet.decode():
                        decoded = True
                        if vf.pts is None:
                            raise DecodeError(f"{self.path}: a frame without pts in a seeked range")
                        if vf.pts < want[k]:
                            continue  # before the range (decoded from the keyframe on)
                        if k == 0 and vf.pts > want[0] and self.seek_pts - back >= self._start_pts() - second:
                            overshot = True
                            break
                        if vf.pts != want[k]:
                            raise DecodeError(f"{self.path}: expected the frame at pts {want[k]}, decoded {vf.pts}")
                        shown = self.info.orientation or frame_orientation(vf)
                        image = orient(vf.to_ndarray(format="rgb24"), shown)
                        self.frames_decoded += 1
                        yield Frame(image=image, pts=int(vf.pts), time_base=tb, index=self.first_index + k)
                        k += 1
                        if k == len(want):
                            return
                    if overshot:
                        break
                if not decoded and self.seek_pts - back >= self._start_pts() - second:
                    overshot = True  # the seek went past the last keyframe
                if not overshot:
                    break
                back = max(second, 2 * back)
        except av.FFmpegError as exc:
            raise DecodeError(f"cannot decode {self.path}: {exc}") from None
        raise DecodeError(f"{self.path}: the range ended after {k} of {len(want)} frames (next pts {want[k]})")

    def _start_pts(self) -> int:
        """The stream's first timestamp (in its time base)."""
        start = self._stream.start_time
        return int(start) if start is not None else 0


@dataclass
class JoinResult:
    output: str
    packets: int
    dts_adjusted: int = 0
    copied_streams: list[str] = field(default_factory=list)
    skipped_streams: list[str] = field(default_factory=list)


def _video(container, path) -> av.stream.Stream:
    streams = [s for s in container.streams if s.type == "video"]
    if len(streams) != 1:
        raise OutputError(f"segment {path} should hold one video stream, holds {len(streams)}")
    return streams[0]


def _signature(stream) -> tuple:
    cc = stream.codec_context
    return (cc.name, cc.width, cc.height, str(cc.format.name) if cc.format else None, bytes(cc.extradata or b""),
            Fraction(stream.time_base) if stream.time_base else None)


def _temp_name(final: Path) -> Path:
    return _temp_path(final)


def join_segments(segments: list[str | os.PathLike], output: str | os.PathLike, *,
                  remux_from: str | None = None, time_base: Fraction | None = None,
                  expect: int | None = None) -> JoinResult:
    """Concatenate video-only ``segments`` (in order, each encoded with identical settings) into ``output``
    by copying packets, and copy the audio and subtitle streams of ``remux_from`` once, interleaved by time.

    Checks that every segment has the same codec, size, pixel format, time base and extradata (the
    decoder of the joined stream is configured once, from the first). ``time_base``: the output video
    stream's (the source's, as a single-machine run sets it; default the segments'); pts are copied unchanged
    (converted exactly). Decode timestamps: with B-frames each segment's encoder starts its dts a reorder delay
    before its first pts, and Matroska/NUT segments do not even store the dts of those first packets. The
    joiner gives them consecutive ticks right after the previous segment's last dts, and moves any dts that
    would not increase to one tick after the previous one; a dts never goes past its packet's pts (else
    OutputError: the time base is too coarse). Written under a temporary name and renamed when complete;
    with ``expect`` (the frames the segments must hold together) a join with another count is an OutputError
    before the rename, so a file already under ``output`` is left as it was."""
    if not segments:
        raise OutputError("no segments to join")
    final = Path(output)
    tmp = _temp_name(final)
    result = JoinResult(output=str(final), packets=0)
    with contextlib.ExitStack() as stack:
        try:
            firsts = stack.enter_context(av.open(str(segments[0])))
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot open segment {segments[0]}: {exc}") from None
        template = _video(firsts, segments[0])
        signature = _signature(template)
        options = {"avoid_negative_ts": "disabled"}
        out_tb = Fraction(time_base) if time_base is not None else Fraction(template.time_base)
        src = _open_source(stack, remux_from)
        if final.suffix.lower() in MOVIE_SUFFIXES:
            # as a single run's writer does: an edit list in milliseconds put every frame up to 0.5 ms early
            rates = [st.codec_context.sample_rate for st in src.streams.audio] if src is not None else []
            options["movie_timescale"] = str(movie_timescale(out_tb, rates))
        try:
            out = av.open(str(tmp), mode="w", format=_format_for(final.suffix.lower()), options=options)
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise OutputError(f"cannot create {final}: {exc}") from None
        ok = False
        try:
            vout = out.add_stream_from_template(template)
            vout.time_base = out_tb
            if src is not None:  # the tags a single run's writer copies: the file's, the video stream's
                copy_source_tags(src, out, vout)
            src_packets, passthrough = _remux_source(src, out, result)
            last_dts = None

            def video_packets():
                nonlocal last_dts
                for i, path in enumerate(segments):
                    seg = firsts if i == 0 else stack.enter_context(_open(path))
                    vs = _video(seg, path)
                    if _signature(vs) != signature:
                        raise OutputError(f"segment {i} ({Path(path).name}) was encoded differently from segment 0 "
                                          "(codec, size, pixel format, time base or extradata); cannot join")
                    lead = []  # the first packets, whose dts the container did not store (B-frame reorder delay)
                    for p in seg.demux(vs):
                        if p.dts is None and p.pts is None:
                            continue
                        _retime(p, out_tb)
                        if p.dts is None and len(lead) == len([q for q in lead if q.dts is None]) and len(lead) < 64:
                            lead.append(p)
                            continue
                        if lead:
                            yield from _lead(lead, p, i)
                            lead = []
                        yield _monotonic(p, i)
                    if lead:
                        yield from _lead(lead, None, i)
                    if i > 0:
                        seg.close()

            def _lead(lead, after, i):
                # The container keeps no dts for the packets before the decoder's reorder delay has filled.
                # The first segment: a frame apart, ending a frame before the first stored dts, as the encoder
                # of a single run does (consecutive ticks made the track that many frames short: an MP4's length
                # is read from its dts, and a --start near the end was refused). Later segments: evenly between
                # the previous segment's last dts and the first stored one. Each stays at or below its own pts;
                # where a frame's spacing does not fit, consecutive ticks as before.
                n = len(lead)
                stored = after.dts if after is not None and after.dts is not None else None
                # a frame: the smallest step between their presentation times (the encoder's packet durations
                # follow the nominal rate, 1000 ticks where the frames are 1001 apart)
                shown = sorted(q.pts for q in (*lead, after) if q is not None and q.pts is not None)
                steps = [b - a for a, b in zip(shown, shown[1:], strict=False) if b > a]
                step = min(steps) if steps else next((q.duration for q in lead if q.duration), 0)
                if last_dts is None:
                    end = stored if stored is not None else min(q.pts for q in lead)
                    wanted = [end - (n - k) * step for k in range(n)]
                    ticks = [min(q.pts for q in lead) - n + k for k in range(n)]
                else:
                    hi = stored if stored is not None else last_dts + (n + 1) * max(step, 1)
                    wanted = [last_dts + (k + 1) * (hi - last_dts) // (n + 1) for k in range(n)]
                    ticks = [last_dts + 1 + k for k in range(n)]
                fits = step > 0 and all(a < b for a, b in zip(wanted, wanted[1:], strict=False)) and \
                    all(d <= q.pts for d, q in zip(wanted, lead, strict=True)) and \
                    (last_dts is None or wanted[0] > last_dts) and (stored is None or wanted[-1] < stored)
                for d, q in zip(wanted if fits else ticks, lead, strict=True):
                    q.dts = d
                    if stored is not None and q.dts >= stored:
                        raise OutputError(f"segment {i}: no room for the decode timestamps of its first frames")
                    yield _monotonic(q, i)

            def _monotonic(p, i):
                nonlocal last_dts
                if p.dts is None:
                    p.dts = last_dts + 1 if last_dts is not None else p.pts
                    result.dts_adjusted += 1
                if last_dts is not None and p.dts <= last_dts:
                    p.dts = last_dts + 1
                    result.dts_adjusted += 1
                if p.pts is not None and p.dts > p.pts:
                    raise OutputError(f"segment {i}: decode timestamps cannot be made increasing at pts {p.pts} "
                                      f"(previous dts {last_dts}); the time base is too coarse for this reorder delay")
                last_dts = p.dts
                return p

            def when(p) -> float:
                t = p.dts if p.dts is not None else p.pts
                return float(t * p.time_base)

            pending = next(src_packets, None) if src_packets is not None else None
            for p in video_packets():
                t = when(p)
                while pending is not None and when(pending) <= t:
                    passthrough.mux(pending)
                    pending = next(src_packets, None)
                p.stream = vout
                out.mux(p)
                result.packets += 1
            while pending is not None:
                passthrough.mux(pending)
                pending = next(src_packets, None)
            if passthrough is not None:
                passthrough.flush()
            out.close()
            ok = True
        except av.FFmpegError as exc:
            raise OutputError(f"joining segments into {final} failed: {exc}") from None
        finally:
            if not ok:
                with contextlib.suppress(Exception):
                    out.close()
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp)
    if expect is not None and result.packets != expect:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise OutputError(f"the joined output would hold {result.packets} of {expect} frames; {final} not written")
    try:
        os.replace(tmp, final)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise OutputError(f"cannot move the joined output to {final}: {exc}") from None
    return result


def _retime(p, tb: Fraction) -> None:
    """Express a packet's timestamps and duration in ``tb`` (exact for the source's own ticks)."""
    ptb = Fraction(p.time_base)
    if ptb == tb:
        return
    if p.pts is not None:
        p.pts = round(p.pts * ptb / tb)
    if p.dts is not None:
        p.dts = round(p.dts * ptb / tb)
    if p.duration:   # left in the segment's ticks, it showed the last frame twice as long (1/60000 -> 1/30000)
        p.duration = round(p.duration * ptb / tb)
    p.time_base = tb


@contextlib.contextmanager
def _open(path):
    try:
        c = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise OutputError(f"cannot open segment {path}: {exc}") from None
    try:
        yield c
    finally:
        c.close()


def _open_source(stack, remux_from):
    """The source file whose audio/subtitle streams the join carries over, opened in ``stack``; None for none
    (no file, a URL, an image folder, or one that cannot be opened)."""
    if not remux_from or "://" in remux_from or os.path.isdir(remux_from):
        return None
    try:
        return stack.enter_context(av.open(remux_from))
    except (av.FFmpegError, OSError):
        return None


def _remux_source(src, out, result: JoinResult):
    """(packet iterator, ``Passthrough`` into ``out``) for the audio/subtitle streams of the opened source
    ``src``; (None, None) when there are none."""
    if src is None:
        return None, None
    passthrough = Passthrough(out)
    keep, skipped = remux_streams(src)
    check_carry(out.name, keep)
    result.skipped_streams.extend(skipped)
    passthrough.add_all(keep)
    result.copied_streams.extend(f"#{st.index} {st.type}" for st in keep)
    if not keep:
        return None, None

    def packets():
        try:
            for p in src.demux(*keep):
                if p.dts is None and p.pts is None:
                    continue
                yield p
        except av.FFmpegError:
            return

    return packets(), passthrough
