"""`streamfill compile`: build engines into the engine cache ahead of time (see engines/README.md)."""

from __future__ import annotations

import argparse
import sys

from streamfill.cli.common import add_config_flag, add_neural_flags, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compile", help="build neural engines ahead of time into the engine cache",
        description="Export / compile the generator for each working size so that the first `process` run "
                    "does not pay for it. A build spec (engines/*.toml) gives the engine, sizes, precision and "
                    "batch; flags override it. Valid cached engines are reused; stale or corrupt ones rebuilt.")
    p.add_argument("spec", nargs="?", metavar="SPEC.toml", help="build spec, e.g. engines/cpu.toml")
    p.add_argument("--engine", choices=("auto", "deepfill", "torch", "compile", "onnx", "tensorrt"),
                   help="engine to build (default: the spec's, else auto)")
    p.add_argument("--size", action="append", type=int, metavar="PX", help="working size, repeatable "
                   "(default: the spec's, else [crop] sizes)")
    p.add_argument("--max-batch", type=int, metavar="N", help="largest batch per call ([engine] max_batch)")
    p.add_argument("--cache-dir", metavar="DIR", help="engine cache (default $STREAMFILL_CACHE, else "
                   "$XDG_CACHE_HOME/streamfill/engines, else ~/.cache/streamfill/engines)")
    p.add_argument("--rebuild", action="store_true", help="rebuild even when a valid engine is cached")
    g = p.add_argument_group("neural engines")
    add_neural_flags(g)
    add_config_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamfill import build
    from streamfill.config import merge
    from streamfill.errors import InputError

    config = config_from_args(args)
    spec = build.read_engine_spec(args.spec) if args.spec else {}
    engine = args.engine or spec.get("engine") or "auto"
    if args.max_batch is not None and args.max_batch < 1:
        raise InputError(f"--max-batch {args.max_batch}: must be 1 or more")  # (0 meant the default)
    values = {"max_batch": args.max_batch or spec.get("max_batch"), "cache_dir": args.cache_dir,
              "precision": args.precision or spec.get("precision")}
    config = merge(config, {"engine": values})
    sizes = tuple(args.size or spec.get("sizes") or config.crop.sizes)
    if args.size:
        config = merge(config, {"crop": {"sizes": list(sizes)}})  # validates them
        sizes = config.crop.sizes  # sorted, once each: the key `process` looks the engine up by
    print(f"{engine} for sizes {', '.join(map(str, sizes))}: building what is not cached (minutes each)...",
          file=sys.stderr)
    choice, entries = build.compile_engines(config, engine, sizes=sizes, rebuild=args.rebuild)
    if choice.reason:
        print(f"engine {choice.engine}: {choice.reason}", file=sys.stderr)
    if not entries:
        print(f"{choice.backend}: nothing to build (eager)")
    for e in entries:
        state = "built" if e.built else "cached"
        note = f" (was: {e.reason})" if e.reason else ""
        print(f"{state}: {e.path}{note}")
    return 0
