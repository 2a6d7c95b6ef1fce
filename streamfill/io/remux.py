"""The source's audio and subtitle streams in an output: which are carried over (``remux_streams``), and how
(``Passthrough``: copied packet for packet, or encoded again where the output's container cannot hold them)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from fractions import Fraction
from pathlib import Path

import av

from streamfill.errors import OutputError
from streamfill.io.decode import main_video_stream

REMUX_TYPES = ("audio", "subtitle")
_log = logging.getLogger(__name__)


class Passthrough:
    """The source's audio and subtitle streams in an output ``out`` (an open PyAV output container): copied
    packet for packet where the output can hold them as they are, else (audio) decoded and encoded again as AAC,
    or Opus where AAC does not fit (WebM).

    Whether a stream can be copied is tried first, on a throw-away output of the same format in memory with the
    stream's first packets (read again from its file), and with the output's own options (its timestamps are kept
    as they are, ``avoid_negative_ts`` disabled): some streams pass ``add_stream_from_template`` and fail only when
    the header, a packet or the trailer is written (Opus or FLAC into .mov; PCM with no channel layout, as
    Matroska stores it, into .mp4, where it failed when the finished output was closed; AAC into .nut, which
    cannot hold the priming packet's time before 0 s and failed at the trailer, after the whole run). An encoder
    is tried the same way, with a few encoded packets of silence (AAC and Opus start before 0 s too)."""

    TRIAL_PACKETS = 8  # packets of the stream muxed in the trial
    TRIAL_READ = 2000  # ... found among at most this many packets of the file
    ENCODERS = ("aac", "libopus")  # audio that cannot be copied is encoded with the first that the output takes

    def __init__(self, out) -> None:
        self.out = out
        self._map: dict[int, object] = {}  # source stream index -> output stream
        self._transcode: dict[int, str] = {}  # source stream index -> encoder

    def add_all(self, streams) -> None:
        """Add the source streams ``streams`` (of one file); OutputError when one cannot go in. Their first
        packets, for the trials, are read in one pass over the file's start."""
        firsts = _first_packets(streams[0].container.name, [st.index for st in streams]) if streams else {}
        for st in streams:
            self._add(st, firsts[st.index])

    def _add(self, st, first_packets: list) -> None:
        fmt, options = self.out.format.name, self.out.options
        reason = _trial(fmt, lambda out: _with_packets(out, st, first_packets), options)
        if reason is None:
            self._map[st.index] = _labelled(self.out.add_stream_from_template(st), st)
            return
        early = _early_start(first_packets)
        if early is not None and _trial(fmt, lambda out: _with_packets(out, st, first_packets, shift=True),
                                        options) is None:
            reason = (f"its first packet is timed before 0 s ({early:.3f} s, the codec's start delay), which "
                      f"this container cannot hold")
        if st.type == "audio":
            layout = "mono" if st.codec_context.channels == 1 else "stereo"
            for codec in self.ENCODERS:
                rate = _encoder_rate(codec, st.codec_context.sample_rate)

                def setup(out, c=codec, r=rate):
                    return _silence(_encoder(out, c, r, layout))

                if _trial(fmt, setup, options) is None:
                    self._map[st.index] = _labelled(_encoder(self.out, codec, rate, layout), st)
                    self._transcode[st.index] = codec
                    _log.warning("note: audio stream #%d (%s) cannot go into a %s file as it is; encoded as %s",
                                 st.index, st.codec_context.name, Path(self.out.name).suffix or "this",
                                 codec.removeprefix("lib"))
                    return
        where = Path(self.out.name).suffix or "this"
        raise OutputError(f"cannot copy {st.type} stream #{st.index} ({st.codec_context.name}) into {where} "
                          f"output: {reason}; try a .mkv output")

    def mux(self, packet) -> None:
        """Write one demuxed source packet: as it is, or decoded and encoded again."""
        stream = self._map[packet.stream_index]
        codec = self._transcode.get(packet.stream_index)
        if codec is None:
            packet.stream = stream
            self.out.mux(packet)
            return
        try:
            for frame in packet.decode():
                for encoded in stream.encode(frame):
                    self.out.mux(encoded)
        except av.FFmpegError as exc:
            raise OutputError(f"encoding audio stream #{packet.stream_index} as {codec} failed: {exc}") from None

    def flush(self) -> None:
        """Drain the encoders of transcoded streams (at the end)."""
        for index in self._transcode:
            for encoded in self._map[index].encode(None):
                self.out.mux(encoded)


# Tags the muxer writes itself, or that describe the source's encoding, not what is written (Matroska's
# statistics, as mkvmerge writes them: "BPS-eng", "NUMBER_OF_FRAMES", "_STATISTICS_TAGS"; the MP4 brands)
_OWN_TAGS = ("encoder", "duration", "bps", "number_of_frames", "number_of_bytes", "major_brand", "minor_version",
             "compatible_brands", "rotate", "alpha_mode")


def copy_tags(source: dict, target: dict) -> None:
    """Copy a source's metadata (a container's or a stream's: title, language, creation_time, ...) into an
    output's, but for the tags that describe the source's own encoding (``_OWN_TAGS``)."""
    for key, value in source.items():
        name = key.lower().split("-")[0]
        if name not in _OWN_TAGS and not name.startswith("_statistics"):
            target[key] = value


def copy_source_tags(src, out, video) -> None:
    """The tags of the source file ``src`` (title, creation_time, a phone's location ...) on the output file
    ``out``, and those of its video stream (language, title) on the output's ``video`` stream."""
    copy_tags(src.metadata, out.metadata)
    main = main_video_stream(src)
    if main is not None:
        copy_tags(main.metadata, video.metadata)


def _labelled(stream, source):
    """``stream`` (an output stream) with the tags (language, title) and disposition (default, forced, ...) of
    the source stream it carries over."""
    copy_tags(source.metadata, stream.metadata)
    stream.disposition = source.disposition
    return stream


def _trial(fmt: str, setup, options: dict | None = None) -> str | None:
    """None when an output of format ``fmt`` (opened with ``options``, as the real output is) with the streams
    ``setup(container)`` adds can be written (header, the packets ``setup`` returns, trailer), else why not. In
    memory; nothing is kept. The bytes are also read back: a stream that comes back as another kind (FLAC or
    PCM audio in MPEG-TS is written without complaint and reads back as a codec-less ``data`` stream: the
    sound was lost in silence) does not fit either."""
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=fmt, options=dict(options or {}))
    try:
        packets = setup(out)
        kinds = [st.type for st in out.streams]
        out.start_encoding()
        for packet in packets:
            out.mux(packet)
        out.close()
    except (av.FFmpegError, ValueError, TypeError, OSError) as exc:
        with contextlib.suppress(Exception):
            out.close()
        return str(exc).split("; last error log")[0]
    try:
        with av.open(io.BytesIO(buf.getvalue()), mode="r", format=fmt) as back:
            came = [st.type for st in back.streams]
    except (av.FFmpegError, ValueError, OSError):
        return None  # not readable from memory (a format that needs to seek): as before, the write decides
    for want in kinds:
        if want not in came and "data" in came:
            return f"the {fmt} format reads it back as a data stream (the sound would be lost)"
    return None


def _first_packets(path: str, indices: list[int]) -> dict[int, list]:
    """The first ``Passthrough.TRIAL_PACKETS`` packets of each stream ``indices`` of file ``path``, from one
    pass over at most ``TRIAL_READ`` packets (a sparse stream, subtitles, does not make it read the file)."""
    found: dict[int, list] = {i: [] for i in indices}
    with av.open(path, mode="r") as src:
        for n, packet in enumerate(src.demux()):
            if n >= Passthrough.TRIAL_READ or all(len(p) >= Passthrough.TRIAL_PACKETS for p in found.values()):
                break
            got = found.get(packet.stream_index)
            if got is not None and packet.dts is not None and len(got) < Passthrough.TRIAL_PACKETS:
                got.append(packet)
    return found


def _with_packets(out, st, packets: list, *, shift: bool = False) -> list:
    """Add a copy of source stream ``st`` to ``out``; returns ``packets`` (its first ones) re-labelled for it, with
    ``shift`` moved to start at 0 (in place: does the container refuse only their early times?)."""
    copy = out.add_stream_from_template(st)
    if shift:
        first = min(_start(p) for p in packets)
        for packet in packets:
            packet.dts -= first
            if packet.pts is not None:
                packet.pts -= first
    for packet in packets:
        packet.stream = copy
    return packets


def _start(packet) -> int:
    return packet.dts if packet.pts is None else min(packet.pts, packet.dts)


def _early_start(packets: list) -> float | None:
    """The time in seconds of the first of ``packets`` when it is before 0 s (AAC's priming packet), else None."""
    if not packets:
        return None
    first = min(packets, key=lambda p: _start(p) * p.time_base)
    t = float(_start(first) * first.time_base)
    return t if t < 0 else None


def _silence(stream, frames: int = 4) -> list:
    """The packets that encoder ``stream`` makes of ``frames`` frames of silence, flushed."""
    cc = stream.codec_context
    if not cc.is_open:
        cc.open()  # (its frame size is known once open)
    size = cc.frame_size or 1024
    packets = []
    for k in range(frames):
        frame = av.AudioFrame(format=cc.format.name, layout=cc.layout.name, samples=size)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts, frame.time_base = cc.sample_rate, k * size, Fraction(1, cc.sample_rate)
        packets.extend(stream.encode(frame))
    packets.extend(stream.encode(None))
    return packets


def _encoder(out, codec: str, rate: int, layout: str):
    stream = out.add_stream(codec, rate=rate)
    stream.layout = layout
    return stream


def _encoder_rate(codec: str, rate: int) -> int:
    """The source's sample rate where the encoder takes it (AAC: 8-96 kHz; Opus: 8, 12, 16, 24, 48 kHz), else
    48 kHz."""
    try:
        rates = av.Codec(codec, "w").audio_rates
    except (av.FFmpegError, ValueError):
        return 48000
    return rate if rates and rate in rates else 48000


NO_CARRY_SUFFIXES = (".nut",)  # H.264 alone only: beside another stream the first B-frames' times came out wrong


def check_carry(out, streams) -> None:
    """Refuse, before any work, to carry ``streams`` (audio, subtitles) into an output ``out`` (a path) whose
    container cannot keep the video's frame times beside them: NUT, where H.264's first B-frames (timed before
    0 s, kept so) came out with broken times beside any other stream, and AAC or Opus could not be written at all
    (their first packet is before 0 s too; that failed at the trailer, after the whole run). OutputError."""
    out = Path(out)
    if streams and out.suffix.lower() in NO_CARRY_SUFFIXES:
        st = streams[0]
        raise OutputError(f"{out.name}: a {out.suffix.lower()} file cannot keep the frames' times beside the "
                          f"{st.type} (stream #{st.index}, {st.codec_context.name}): it holds no time before 0 s, "
                          f"where H.264 and AAC start; use .mkv, .mp4 or .mov")


def check_source_carry(out, source) -> None:
    """``check_carry`` for the streams an output ``out`` would carry over from the file ``source`` (nothing for a
    URL, a folder or a file that cannot be opened: those carry nothing)."""
    source = str(source)
    if "://" in source or os.path.isdir(source):
        return
    try:
        src = av.open(source, mode="r")
    except (av.FFmpegError, OSError):
        return
    with src:
        check_carry(out, remux_streams(src)[0])


def remux_streams(src) -> tuple[list, list[str]]:
    """The streams of source container ``src`` an output carries over (audio, subtitles), and the others
    (but the video stream that is processed) as "#2 data (why)" for the run's note."""
    keep, skipped = [], []
    main = main_video_stream(src)
    for st in src.streams:
        if st.type in REMUX_TYPES:
            keep.append(st)
        elif st.type == "video" and st is not main:
            cover = st.disposition & av.stream.Disposition.attached_pic
            skipped.append(f"#{st.index} " + ("cover picture" if cover else
                                              "video (only the first video stream is processed)"))
        elif st.type != "video":
            skipped.append(f"#{st.index} {st.type} (not audio or subtitles)")
    return keep, skipped
