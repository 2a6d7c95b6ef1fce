"""`streamfill bench`: per-engine speed and memory at each working size and batch, then an end-to-end run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    p.add_argument("--results", metavar="JSON",
                   help="also write the engine rows as a benchmark result file (e.g. benchmarks/results/X.json)")
    p.add_argument("--title", help="title of the --results section (default: engine speed at SIZES)")
    p.add_argument("--notes", default="", help="the --results file's notes paragraph")
    r = p.add_argument_group("report (measures nothing)")
    r.add_argument("--report", action="store_true",
                   help="render BENCHMARKS.md from the result files (benchmarks/results/*.json) and exit")
    r.add_argument("--results-dir", metavar="DIR", help="where the result files are (default benchmarks/results)")
    r.add_argument("-o", "--output", metavar="MD", help="report file (default BENCHMARKS.md)")
    r.add_argument("--check", action="store_true",
                   help="with --report: write nothing, fail if the report file is not up to date")
    g = p.add_argument_group("neural engines")
    add_neural_flags(g)
    add_config_flag(p)
    p.set_defaults(func=run)


def _check(args) -> None:
    from pathlib import Path

    from streamfill.cli.common import check_writable
    from streamfill.errors import InputError

    used = [flag for flag, value in (("--check", args.check), ("-o", args.output), ("--results-dir", args.results_dir))
            if value]
    if used:
        raise InputError(f"{', '.join(used)}: for --report (rendering BENCHMARKS.md); a measurement writes "
                         "--results")
    for s in args.size or []:
        if s < 64 or s % 8:
            raise InputError(f"--size {s}: must be a multiple of 8, at least 64")
    for b in args.batch or []:
        if not 1 <= b <= 64:
            raise InputError(f"--batch {b}: must be in [1, 64]")
    if args.runs < 1 or args.warmup < 0 or args.frames < 1:
        raise InputError("--runs and --frames must be at least 1, --warmup at least 0")
    # found before the measurement, not after it
    if args.clip is not None and not args.no_clip:
        if not Path(args.clip).is_file():
            raise InputError(f"--clip {args.clip}: " + ("a folder; give a video file" if Path(args.clip).is_dir()
                                                         else "no such file"))
        from streamfill.io import open_video

        with open_video(args.clip):  # a file that is no video fails here (DecodeError: one line), not after timing
            pass
    check_writable(args.results, "--results", inputs=[args.clip, args.config])


def report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streamfill.errors import InputError
    from streamfill.eval.results import render_folder

    results_dir = args.results_dir or "benchmarks/results"
    if not Path(results_dir).is_dir():
        raise InputError(f"--results-dir {results_dir}: no such folder")
    text = render_folder(results_dir)
    out = Path(args.output or "BENCHMARKS.md")
    if args.check:
        if not out.is_file() or out.read_text() != text:
            raise InputError(f"{out} is not up to date with {results_dir}: run streamfill bench --report")
        print(f"{out} is up to date")
        return 0
    try:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    from streamfill.eval import bench

    if args.report:
        return report(args)
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
    if args.results:
        write_results(args, rows, clip)
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
          f"{'p95 ms':>9} {'CPU ms':>8} {'crops/s':>8} {'peak MiB':>9} {'setup s':>8} {'load 1m':>11}")
    for r in rows:
        peak = f"{r.peak_mb:9.0f}" if r.peak_mb is not None else f"{'-':>9}"
        load = "-" if r.load_avg is None or None in r.load_avg else f"{r.load_avg[0]:.1f}->{r.load_avg[1]:.1f}"
        print(f"{r.engine:<10} {r.backend:<9} {r.device:<7} {r.precision:<5} {r.size:>5} {r.batch:>5} "
              f"{r.median_ms:>10.1f} {r.p95_ms:>9.1f} {r.cpu_median_ms:>8.1f} {r.crops_per_s:>8.2f} {peak} "
              f"{r.setup_s:>8.1f} {load:>11}")
    for sp in bench.speedups(rows):
        print(f"{sp.engine} vs torch (eager) at {sp.size}x{sp.size} batch {sp.batch}: {sp.wall:.2f}x wall, "
              f"{sp.cpu:.2f}x CPU time (medians of same-run ratios over {args.runs} interleaved runs)")
    if clip is not None:
        st = clip.stages
        print(f"clip {clip.clip} ({clip.width}x{clip.height}), engine {clip.engine} ({clip.backend}): "
              f"{clip.frames} frames, {clip.crops} crops, {clip.fps:.2f} fps; ms per frame: "
              f"decode {st['decode']:.1f}, masks {st['masks']:.1f}, completion {st['completion']:.1f}, "
              f"encode {st['encode']:.1f}")
    return 0


def write_results(args: argparse.Namespace, rows, clip) -> None:
    from streamfill.eval import bench
    from streamfill.eval.results import command_line, make_result, write_result

    table = [[r.engine, r.backend, r.device, r.precision, r.size, r.batch, round(r.median_ms, 1),
              round(r.p95_ms, 1), round(r.cpu_median_ms, 1), round(r.crops_per_s, 2),
              None if r.peak_mb is None else round(r.peak_mb), r.runs,
              None if not r.load_avg or None in r.load_avg else f"{r.load_avg[0]:g} -> {r.load_avg[1]:g}"]
             for r in rows]
    summary = {f"{sp.engine} vs torch at {sp.size} px batch {sp.batch} (median same-run ratio, wall / CPU)":
               f"{sp.wall:.2f}x / {sp.cpu:.2f}x" for sp in bench.speedups(rows)}
    if clip is not None:
        summary[f"clip {clip.width}x{clip.height} {clip.engine} fps"] = round(clip.fps, 2)
    sizes = sorted({r.size for r in rows})
    title = args.title or f"Engine speed at {', '.join(f'{s} px' for s in sizes)}"
    gpu = None
    if any(r.device.startswith("cuda") for r in rows):
        import torch

        gpu = torch.cuda.get_device_name(0)
    result = make_result(
        Path(args.results).stem, title, command=command_line(),
        columns=["engine", "backend", "device", "precision", "size", "batch", "median wall ms", "p95 wall ms",
                 "median CPU ms", "crops/s", "peak MiB", "runs", "load 1m before -> after"],
        rows=table, summary=summary, notes=args.notes, gpu=gpu)  # machine load: 1/5/15-min averages at the end
    write_result(args.results, result)
    print(f"wrote {args.results}", file=sys.stderr)
