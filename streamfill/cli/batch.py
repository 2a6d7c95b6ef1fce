"""`streamfill batch`: many clips, one task per clip (each exactly as `process` renders it), locally or on a
Ray cluster; a summary table at the end, failed clips listed with their reason."""

from __future__ import annotations

import argparse
import sys

from streamfill.cli.common import (
    ONE_MASK,
    ProgressBar,
    add_config_flag,
    add_encode_flags,
    add_fill_flags,
    add_ray_flags,
    add_temporal_flags,
    check_ray_flags,
    config_from_args,
    print_engine_note,
)
from streamfill.cli.masks import add_mask_flags, mask_options


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="remove objects from many clips (locally or on a Ray cluster)",
                       description="Process every input clip as `process` would, one task per clip, and write "
                                   "DIR/<name>. Finished outputs stay when another clip fails; the exit status "
                                   "is 1 if any clip failed.")
    p.add_argument("inputs", nargs="+", metavar="IN", help="video files (or URLs every worker can open)")
    p.add_argument("--out-dir", required=True, metavar="DIR",
                   help="folder for the outputs: <name>.mkv with --lossless, else the input's suffix (.mp4 when "
                        "it is not .mp4/.mov/.mkv)")
    masks = p.add_mutually_exclusive_group(required=True)
    masks.add_argument("--mask", metavar="PATH", action=ONE_MASK, help="mask image (or mask video) used for every clip")
    add_mask_flags(p, masks)
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="without --ray: clips processed at once on this machine (default 1: one after another "
                        "with one engine; N > 1: a pool of N processes)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (the summary is still printed)")
    add_fill_flags(p)
    add_temporal_flags(p)
    add_encode_flags(p)
    add_ray_flags(p)
    add_config_flag(p)
    p.set_defaults(func=run, interrupt_note="finished outputs kept, the clip in progress discarded")


def run(args: argparse.Namespace) -> int:
    from streamfill.distributed import batch_jobs, run_batch_local
    from streamfill.errors import InputError

    config = config_from_args(args)
    if args.jobs < 1:
        raise InputError(f"--jobs {args.jobs}: must be 1 or more")
    check_ray_flags(args, "on this machine use --jobs N")
    if not args.quiet:
        print_engine_note(config)
    jobs = batch_jobs(args.inputs, args.out_dir, mask=args.mask, config=config, mask_options=mask_options(args))
    bar = ProgressBar(f"batch ({len(jobs)} clips)", enabled=not args.quiet)

    try:
        if args.ray:
            from streamfill.distributed import ray_backend

            ray_backend.connect(args.ray, timeout=args.ray_timeout)
            executor = ray_backend.RayExecutor(config, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                                               cpus_per_worker=args.cpus_per_worker)
            try:
                results = executor.clips(jobs, progress=lambda d: bar(d, None))
            finally:
                executor.close()
        else:
            results = run_batch_local(jobs, config, jobs_parallel=args.jobs, progress=lambda d, t: bar(d, None))
    finally:
        bar.finish()
    print_summary(results)
    for r in results:
        for note in r.notes:
            print(f"note: {r.input}: {note}", file=sys.stderr)
    failed = [r for r in results if r.status != "ok"]
    if failed:
        print(f"streamfill: {len(failed)} of {len(results)} clips failed:", file=sys.stderr)
        for r in failed:
            print(f"  {r.input}: {r.reason}", file=sys.stderr)
        return 1
    return 0


def print_summary(results) -> None:
    rows = [("clip", "frames", "filled", "seconds", "status")]
    rows += [(r.input, str(r.frames), str(r.filled), f"{r.seconds:.1f}", r.status) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        cells = (c.ljust(w) if i in (0, 4) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        print("  ".join(cells).rstrip())
    total = sum(r.frames for r in results)
    ok = sum(r.status == "ok" for r in results)
    print(f"{ok} of {len(results)} clips done, {total} frames")
