"""The source's audio and subtitle streams in an output: which are carried over (``remux_streams``), and how
(``Passthrough``: copied packet for packet, or encoded again where the output's container cannot hold them)."""

from __future__ import annotations

import contextlib
import io
import logging
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
    stream's first packets (read again from its file): some streams pass ``add_stream_from_template`` and fail
    only when the header, a packet or the trailer is written (Opus or FLAC into .mov; PCM with no channel layout,
    as Matroska stores it, into .mp4, where it failed when the finished output was closed)."""

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
        reason = _trial(self.out.format.name, lambda out: _with_packets(out, st, first_packets))
        if reason is None:
            self._map[st.index] = self.out.add_stream_from_template(st)
            return
        if st.type == "audio":
            layout = "mono" if st.codec_context.channels == 1 else "stereo"
            for codec in self.ENCODERS:
                rate = _encoder_rate(codec, st.codec_context.sample_rate)

                def setup(out, c=codec, r=rate):
                    _encoder(out, c, r, layout)
                    return []

                if _trial(self.out.format.name, setup) is None:
                    self._map[st.index] = _encoder(self.out, codec, rate, layout)
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


def _trial(fmt: str, setup) -> str | None:
    """None when an output of format ``fmt`` with the streams ``setup(container)`` adds can be written
    (header, the packets ``setup`` returns, trailer), else why not. In memory; nothing is kept."""
    out = av.open(io.BytesIO(), mode="w", format=fmt)
    try:
        packets = setup(out)
        out.start_encoding()
        for packet in packets:
            out.mux(packet)
        out.close()
        return None
    except (av.FFmpegError, ValueError, TypeError, OSError) as exc:
        with contextlib.suppress(Exception):
            out.close()
        return str(exc).split("; last error log")[0]


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


def _with_packets(out, st, packets: list) -> list:
    """Add a copy of source stream ``st`` to ``out``; returns ``packets`` (its first ones) re-labelled for it."""
    copy = out.add_stream_from_template(st)
    for packet in packets:
        packet.stream = copy
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
