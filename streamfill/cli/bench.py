"""`streamfill bench`: per-engine speed and memory at each working size and batch, then an end-to-end run."""

from __future__ import annotations

import argparse
import json
import sys

from streamfill.cli.common import add_config_flag, add_neural_flags, config_from_args
from streamfill.config import ENGINES


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench", help="measure inpainting engines (ms per crop, crops/s, memory) and an end-to-end clip run",
        description="Time each engine on random crops at each working size and batch (median and p95 ms per "
                    "crop, crops/s, peak memory; engines of one size are timed in turn so their ratio is fair), "
                    "then run decode -> masks -> completion -> encode on a clip with a synthetic occluder.")
    p.add_argument("--engine", action="append", choices=ENGINES, metavar="NAME",
                   help=f"engine to measure, repeatable ({', '.join(ENGINES)}; default: torch and auto)")
    p.add_argument("--size", action="append", type=int, metavar="PX",
                   help="square working size, repeatable, multiple of 8 (default 256)")
    p.add_argument("--batch", action="append", type=int, metavar="N", help="crops per call, repeatable (default 1)")
    p.add_argument("--runs", type=int, default=10, help="timed calls per row (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--random-weights", action="store_true",
                   help="use a randomly initialised generator of [model] width (speed only; no weights needed)")
    p.add_argument("--clip", metavar="VIDEO", help="clip for the end-to-end run (default: the bundled demo clip)")
    p.add_argument("--frames", type=int, default=25, help="frames of the end-to-end run (default 25)")
    p.add_argument("--no-clip", action="store_true", help="skip the end-to-end run")
    p.add_argument("--json", action="store_true", help="print a JSON list of rows instead of tables")
    g = p.add_argument_group("neural engines")
    add_neural_flags(g)
    add_config_flag(p)
    p.set_defaults(func=run)


def _check(args) -> None:
    from streamfill.errors import InputError

    for s in args.size or []:
        if s < 64 or s % 8:
            raise InputError(f"--size {s}: must be a multiple of 8, at least 64")
    for b in args.batch or []:
        if not 1 <= b <= 64:
            raise InputError(f"--batch {b}: must be in [1, 64]")
    if args.runs < 1 or args.warmup < 0 or args.frames < 1:
        raise InputError("--runs and --frames must be at least 1, --warmup at least 0")


def run(args: argparse.Namespace) -> int:
    from streamfill.eval import bench

    _check(args)
    config = config_from_args(args)
    engines = args.engine or ["torch", "auto"]
    sizes = args.size or [256]
    batches = args.batch or [1]
    generator = bench.random_generator(config) if args.random_weights else None
    say = (lambda msg: None) if args.json else (lambda msg: print(f"  {msg}", file=sys.stderr, flush=True))
    rows = bench.bench_engines(config, engines, sizes, batches, runs=args.runs, warmup=args.warmup,
                               generator=generator, progress=say)
    clip = None
    if not args.no_clip:
        clip = bench.bench_clip(config, engines[-1], args.clip, frames=args.frames, generator=generator,
                                progress=say)
    if args.json:
        out = [r.as_dict() for r in rows]
        if clip is not None:
            out.append({"kind": "clip", **clip.as_dict()})
        print(json.dumps(out, indent=1))
        return 0
    for r in rows:
        if r.reason:
            print(f"engine {r.engine}: {r.reason}", file=sys.stderr)
            break
    print(f"{'engine':<10} {'backend':<9} {'device':<7} {'prec':<5} {'size':>5} {'batch':>5} {'median ms':>10} "
          f"{'p95 ms':>9} {'crops/s':>8} {'peak MiB':>9} {'setup s':>8}")
    for r in rows:
        peak = f"{r.peak_mb:9.0f}" if r.peak_mb is not None else f"{'-':>9}"
        print(f"{r.engine:<10} {r.backend:<9} {r.device:<7} {r.precision:<5} {r.size:>5} {r.batch:>5} "
              f"{r.median_ms:>10.1f} {r.p95_ms:>9.1f} {r.crops_per_s:>8.2f} {peak} {r.setup_s:>8.1f}")
    for engine, size, batch, ratio in bench.speedups(rows):
        print(f"{engine} vs torch (eager) at {size}x{size} batch {batch}: {ratio:.2f}x")
    if clip is not None:
        st = clip.stages
        print(f"clip {clip.clip} ({clip.width}x{clip.height}), engine {clip.engine} ({clip.backend}): "
              f"{clip.frames} frames, {clip.crops} crops, {clip.fps:.2f} fps; ms per frame: "
              f"decode {st['decode']:.1f}, masks {st['masks']:.1f}, completion {st['completion']:.1f}, "
              f"encode {st['encode']:.1f}")
    return 0
