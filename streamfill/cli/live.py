"""`streamfill live`: remove an object from a camera or stream with bounded latency."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from streamfill import api
from streamfill.cli.common import add_config_flag, add_fill_flags, config_from_args, once, seconds
from streamfill.config import merge
from streamfill.errors import InputError

ONE_OBJECT = once("live removes one object (re-target it with --control)")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "live", help="remove objects from a camera or stream in real time",
        description="Capture, mask, fill and output frames in parallel threads with bounded queues. When filling "
                    "is slower than the source the oldest waiting frame is dropped (and counted): latency stays "
                    "bounded. Ctrl-C or SIGTERM stops the run and finalises the recording. Statistics are "
                    "printed once a second.")
    src = p.add_argument_group("source")
    src.add_argument("--source", required=True, metavar="SRC",
                     help="camera (/dev/video0), URL (rtsp://, http://, srt://...), zmq:[sub|pull:]ENDPOINT, or a "
                          "video file (use --realtime to play it at its frame rate, like a camera; without it "
                          "most frames of a file are dropped, as a slow camera's would be: process keeps every frame)")
    src.add_argument("--size", metavar="WxH", help="camera capture size, e.g. 640x480")
    src.add_argument("--fps", type=seconds, help="camera frame rate")
    src.add_argument("--input-format", metavar="FMT", help="camera pixel/compression format, e.g. mjpeg or yuyv422")
    src.add_argument("--av-option", action="append", default=[], metavar="KEY=VALUE",
                     help="extra FFmpeg input option (repeatable), e.g. rtsp_transport=udp")
    src.add_argument("--realtime", action="store_true", help="file source: release frames at their timestamps")
    src.add_argument("--speed", type=float, help="--realtime pacing factor (default 1.0)")
    src.add_argument("--loop", action="store_true", help="file source: start again at the end (until stopped)")
    src.add_argument("--salvage", action="store_true",
                     help="a decode error part-way through the source ends it, keeping the frames before it (with a "
                          "note), instead of failing")
    what = p.add_argument_group("what to remove (one)")
    what.add_argument("--box", metavar="X,Y,W,H", action=ONE_OBJECT,
                      help="the object's box in the first frame; it is then tracked")
    what.add_argument("--mask", metavar="PATH", action=ONE_OBJECT,
                      help="mask image (white = remove), the same for every frame")
    what.add_argument("--track", action="store_true", help="track the --mask object instead of keeping it fixed")
    what.add_argument("--mask-auto", choices=("motion",), help="remove what moves (background model)")
    what.add_argument("--mask-source", metavar="zmq:ENDPOINT",
                      help="masks from a ZeroMQ plugin, zmq:[req|sub:]ENDPOINT; a late mask is replaced by the last")
    what.add_argument("--control", metavar="ENDPOINT",
                      help="loopback ZeroMQ REP endpoint taking JSON commands, e.g. tcp://127.0.0.1:5590; "
                           '{"cmd": "box", "box": [x, y, w, h]} re-targets without restarting')
    out = p.add_argument_group("outputs (at least one)")
    out.add_argument("--record", metavar="PATH", help="record the clean feed (.mp4/.mkv), finalised on exit")
    out.add_argument("--lossless", action="store_true", default=None,
                     help="record bit-exact FFV1 RGB (the --record name must end in .mkv)")
    out.add_argument("--publish", metavar="ENDPOINT", help="publish frames on ZeroMQ (PUB binds), e.g. "
                                                          "tcp://127.0.0.1:5580")
    out.add_argument("--sink", metavar="zmq:ENDPOINT", help="send frames over ZeroMQ: zmq:[push|pub:]ENDPOINT")
    out.add_argument("--v4l2-out", metavar="DEVICE", help="a v4l2loopback virtual camera, e.g. /dev/video10")
    out.add_argument("--v4l2-format", choices=("yuv420p", "yuyv422"), default="yuv420p",
                     help="pixel format for --v4l2-out (default yuv420p)")
    out.add_argument("--preview", action="store_true", help="show a window (needs a display and OpenCV GUI)")
    out.add_argument("--stats-json", metavar="PATH", help="write the final statistics as JSON")
    p.add_argument("--policy", choices=("latest", "block"), help="full queue: drop the oldest frame (latest, "
                                                                 "default) or wait (block)")
    p.add_argument("--temporal", action="store_true", default=None,
                   help="temporal completion, look-back only (better fills, about 3-4x the CPU of per-frame Telea)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-second statistics")
    add_fill_flags(p)
    add_config_flag(p)
    p.set_defaults(func=run, interrupt_note="what was recorded is finalised")


def _av_options(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--av-option {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _fmt_ms(v) -> str:
    return "-" if v is None else f"{v:.0f}"


def _line(s: api.LiveStats) -> str:
    lat = s.interval_latency_ms
    return (f"live {s.seconds:6.1f} s  in {s.interval_input_fps:5.1f} fps  out {s.interval_output_fps:5.1f} fps  "
            f"dropped {s.dropped} (+{s.interval_dropped})  latency ms p50 {_fmt_ms(lat.get('p50'))} "
            f"p95 {_fmt_ms(lat.get('p95'))} p99 {_fmt_ms(lat.get('p99'))}{_track_note(s)}")


def _track_note(s: api.LiveStats) -> str:
    """``"  track lost since frame 176"`` (or the frames lost so far) for the stats lines, else ""."""
    t = s.track or {}
    if t.get("lost_since") is not None:
        return f"  track lost since frame {t['lost_since']}; send a box"
    if t.get("lost_frames"):
        return f"  track was lost on {t['lost_frames']} frames"
    return ""


def run(args: argparse.Namespace) -> int:
    if args.lossless and not args.record:
        raise InputError("--lossless is how --record writes: add --record PATH.mkv")
    if args.speed is not None and not args.realtime:
        raise InputError(f"--speed {args.speed:g} paces --realtime: without it a file is read as fast as it goes")
    config = config_from_args(args)
    config = merge(config, {"live": {"speed": args.speed, "policy": args.policy, "temporal": args.temporal},
                            "io": {"salvage": True if args.salvage else None}})
    stop = threading.Event()

    def on_signal(signum, frame):
        if stop.is_set():  # a second Ctrl-C: stop at once (outputs are still finalised on the way out)
            raise KeyboardInterrupt
        stop.set()

    # SIGHUP (the terminal closed) stops it the same way: it used to interrupt at once, leaving stale statistics
    stops = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, on_signal) for sig in stops}
    try:
        result = api.live(
            args.source, box=args.box, mask=args.mask, track=args.track, mask_source=_zmq(args.mask_source),
            motion=args.mask_auto == "motion", record=args.record, sink=args.sink, publish=args.publish,
            v4l2_out=args.v4l2_out, v4l2_format=args.v4l2_format, preview=args.preview, control=args.control,
            config=config, realtime=args.realtime, loop=args.loop, size=args.size, fps=args.fps,
            input_format=args.input_format, av_options=_av_options(args.av_option), stats_json=args.stats_json,
            stop=stop, on_stats=None if args.quiet else (lambda s: print(_line(s), file=sys.stderr, flush=True)),
            on_ready=None if args.quiet else _ready,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    s = result.stats
    lat = s.latency_ms
    print(f"live: {s.frames_in} frames in, {s.frames_out} out, {s.dropped} dropped "
          f"({s.dropped_capture} before masks, {s.dropped_masks} before completion, {s.dropped_at_stop} at stop) "
          f"in {s.seconds:.1f} s; {s.output_fps:.1f} fps out; latency ms p50 {_fmt_ms(lat.get('p50'))} "
          f"p95 {_fmt_ms(lat.get('p95'))} p99 {_fmt_ms(lat.get('p99'))}; ended: {s.stopped_by}{_track_note(s)}",
          file=sys.stderr)
    if result.record:
        print(f"recorded {result.record}", file=sys.stderr)
    elif args.record:
        print(f"note: nothing recorded to {args.record}: no frame came out before the end", file=sys.stderr)
    if result.mask_misses:
        print(f"note: {result.mask_misses} masks came late and the previous one was reused", file=sys.stderr)
    if result.stuck_stages:
        print(f"warning: {', '.join(result.stuck_stages)} did not stop in time", file=sys.stderr)
    return 0


def _zmq(spec: str | None) -> str | None:
    if spec is None:
        return None
    return spec if spec.startswith("zmq:") else f"zmq:{spec}"


def _ready(endpoints: dict[str, str]) -> None:
    for name, endpoint in endpoints.items():
        print(f"live: {name} on {endpoint}", file=sys.stderr, flush=True)
