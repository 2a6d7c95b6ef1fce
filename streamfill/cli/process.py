"""`streamfill process`: remove what a mask marks from a video."""

from __future__ import annotations

import argparse
import sys

from streamfill import api
from streamfill.cli.common import (
    ONE_MASK,
    ProgressBar,
    add_config_flag,
    add_encode_flags,
    add_fill_flags,
    add_ray_flags,
    add_read_flags,
    add_temporal_flags,
    check_ray_flags,
    config_from_args,
    print_engine_note,
)
from streamfill.cli.masks import add_mask_flags, mask_options
from streamfill.config import merge


def add_parser(sub) -> None:
    p = sub.add_parser("process", help="remove objects from a video file or image sequence",
                       description="Fill the masked region of every frame and write a new video. Every frame "
                                   "keeps its timestamp; audio is copied unchanged (encoded again, with a note, "
                                   "when the output format cannot hold it as it is).")
    p.add_argument("input", help="video file, URL, or a folder of images (with --fps)")
    p.add_argument("-o", "--output", required=True,
                   help="output video (.mp4, .mkv, .mov, .m4v, .ts: H.264; .webm: VP9) or a folder (ending in /, or a "
                        "name without a suffix) for a PNG sequence")
    masks = p.add_mutually_exclusive_group(required=True)
    masks.add_argument("--mask", metavar="PATH", action=ONE_MASK,
                       help="mask image for the whole clip, mask video, or folder of per-frame masks (white = remove)")
    masks.add_argument("--mask-source", metavar="zmq:ENDPOINT",
                       help="ask a ZeroMQ mask plugin for each frame's mask: zmq:[req|sub:]ENDPOINT, e.g. "
                            "zmq:tcp://127.0.0.1:5560 (see plugins/PROTOCOL.md)")
    add_mask_flags(p, masks)
    p.add_argument("--sink", metavar="zmq:ENDPOINT",
                   help="also send every output frame over ZeroMQ: zmq:[push|pub:]ENDPOINT (push connects to a "
                        "receiver, pub binds for viewers)")
    add_read_flags(p)
    add_fill_flags(p)
    add_temporal_flags(p)
    add_encode_flags(p)
    add_ray_flags(p, chunks=True)
    add_config_flag(p)
    p.set_defaults(func=run, interrupt_note="partial output discarded")


def run(args: argparse.Namespace) -> int:
    from streamfill.errors import InputError

    check_ray_flags(args, "without it the clip is processed here, in one process")
    if not args.ray and args.chunk_seconds is None and (args.preroll is not None or args.chunk_at is not None):
        raise InputError("--preroll and --chunk-at apply to chunks: add --chunk-seconds N (or --ray ADDRESS)")
    from streamfill.io import is_sequence_path

    encoding = [f"--{flag}" for flag in ("crf", "preset", "lossless") if getattr(args, flag) is not None]
    if is_sequence_path(args.output) and encoding:
        raise InputError(f"{', '.join(encoding)}: a PNG folder is written exactly; these set a video encoder")
    config = merge(config_from_args(args), {"io": {"salvage": True if args.salvage else None}})
    if not args.quiet:
        print_engine_note(config)
    if args.ray or args.chunk_seconds is not None:
        return run_chunked(args, config)
    bar = ProgressBar("process", enabled=not args.quiet)
    try:
        mask = args.mask
        if args.mask_source is not None:  # "zmq:" may be left out: --mask-source tcp://127.0.0.1:5560
            mask = args.mask_source if args.mask_source.startswith("zmq:") else f"zmq:{args.mask_source}"
        result = api.process(args.input, args.output, mask=mask, config=config,
                             fps=args.fps, start=args.start, end=args.end, progress=bar, sink=args.sink,
                             mask_options=mask_options(args))
    finally:
        bar.finish()
    if not args.quiet:
        lost = _lost_note(result)
        print(f"wrote {result.output}: {result.frames} frames ({result.filled} filled{lost}) in "
              f"{result.seconds:.1f} s, {result.fps:.1f} fps", file=sys.stderr)
    # notes, not summary: -q keeps them (a dropped stream is something lost)
    for line in result.output_notes:
        print(f"note: {line}", file=sys.stderr)
    return 0


def run_chunked(args: argparse.Namespace, config) -> int:
    """`process --ray ADDRESS [--chunk-seconds N]` (or `--chunk-seconds N` alone: chunks one after another
    here): masks in one serial pass, chunks rendered by the workers, segments joined (streamfill.distributed)."""
    from streamfill.distributed import LocalExecutor, process_chunked
    from streamfill.errors import InputError

    given = [flag for flag, value in (("--start", args.start), ("--end", args.end), ("--sink", args.sink),
                                      ("--mask-source", args.mask_source), ("--fps", args.fps)) if value is not None]
    if given:
        raise InputError(f"{', '.join(given)} cannot be combined with --ray/--chunk-seconds (run without them)")
    bars = {}

    def progress(stage, done, total):
        if stage not in bars:
            for bar in bars.values():
                bar.finish()
            label = "masks and cuts (serial pass)" if stage == "masks" else "render (all workers)"
            bars[stage] = ProgressBar(label, enabled=not args.quiet)
        bars[stage](done, total)

    preroll = None
    if args.preroll is not None:
        if args.preroll == "shot":
            preroll = 10**9  # clamped to the start of each chunk's shot
        elif args.preroll.isdigit():
            preroll = int(args.preroll)
        else:
            raise InputError(f"--preroll {args.preroll}: expected a number of frames or 'shot'")
    executor = None
    try:
        if args.ray:
            from streamfill.distributed import ray_backend

            ray_backend.connect(args.ray, timeout=args.ray_timeout)
            executor = ray_backend.RayExecutor(config, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                                               cpus_per_worker=args.cpus_per_worker)
        else:
            executor = LocalExecutor(config)
        result = process_chunked(args.input, args.output, mask=args.mask, config=config, executor=executor,
                                 chunk_seconds=10.0 if args.chunk_seconds is None else args.chunk_seconds,
                                 preroll=preroll,
                                 cuts_only=args.chunk_at == "cuts",
                                 mask_options=mask_options(args),
                                 progress=progress)
    finally:
        for bar in bars.values():
            bar.finish()
        if executor is not None:
            executor.close()
    if not args.quiet:
        print(f"wrote {result.output}: {result.frames} frames ({result.filled} filled) in {result.seconds:.1f} s, "
              f"{result.fps:.1f} fps; {result.chunks} chunks ({result.cuts_used} at scene cuts) on "
              f"{len(result.nodes)} node(s); pre-roll {min(result.preroll, result.frames)}, "
              f"post-roll {result.postroll} frames; "
              f"serial pass {result.analyse_seconds:.1f} s, join {result.join_seconds:.1f} s", file=sys.stderr)
        if result.skipped_streams:
            print(f"note: not copied: {', '.join(result.skipped_streams)}", file=sys.stderr)
    return 0


def _lost_note(result) -> str:
    """``"; track lost on 424 frames: 176-599"`` for a summary line, or "" when the track never was."""
    if not result.lost_frames:
        return ""
    spans = ", ".join(f"{a}-{b}" for a, b in result.lost[:5]) + (", ..." if len(result.lost) > 5 else "")
    return f"; track lost on {result.lost_frames} frames: {spans}"
