"""`streamfill train`: train the DeepFill v2 generator (SN-PatchGAN), resume, export shipped weights, look at
training masks."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from streamfill.cli.common import check_not_input, random_seed


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train the inpainting generator on folders of photos and video files (resumable)",
        description="Train: streamfill train --config configs/train/default.toml --data DIR... --out RUN "
        "[--resume]. Other actions: `streamfill train export RUN -o W.safetensors`, "
        "`streamfill train masks -o grid.png`.",
    )
    p.add_argument("--config", metavar="TOML", help="training config (default: configs/train defaults)")
    p.add_argument("--data", nargs="+", metavar="PATH", help="folders of images and/or video files")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (logs, samples, checkpoints)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/latest.pt if present")
    p.add_argument("--steps", type=int, help="train until this many steps in total")
    p.add_argument("--batch", type=int, help="batch size")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="training device")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--init-weights", metavar="W|shipped",
                   help="a new run starts its generator from this weights file ('shipped' = the packaged weights); "
                   "with --resume it applies only while RUN_DIR has no checkpoint yet")
    p.add_argument("--ckpt-minutes", type=float, metavar="M",
                   help="also checkpoint every M minutes of wall-clock time (train.ckpt_minutes)")
    p.add_argument("--minutes", type=float, metavar="M",
                   help="stop (with a checkpoint) after M minutes of wall-clock time: one session's share")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)
    actions = p.add_subparsers(dest="train_action", metavar="ACTION")
    ex = actions.add_parser("export", help="write fp16 generator weights and a model card from a run")
    ex.add_argument("run_dir", help="run directory (or a checkpoint .pt file)")
    ex.add_argument("-o", "--output", required=True, help="output .safetensors (fp16 generator)")
    ex.add_argument("--card", help="model card path (default: MODEL_CARD.md next to the output)")
    ex.add_argument("--sources", help="SOURCES.md of the training photos (summarised in the card)")
    ex.add_argument("--hardware", default="", help="hardware line for the card, e.g. '2-core CPU, no GPU'")
    ex.add_argument("--discriminator", action="store_true",
                    help="also write OUTPUT_STEM.discriminator.safetensors (fp16)")
    ex.add_argument("--heldout", nargs="+", metavar="PATH",
                    help="re-run the held-out evaluation (hole blanked) of the exported weights on these photos "
                    "(never trained on) and put the table into the model card")
    ex.add_argument("--heldout-seeds", type=int, default=3, help="seeds of the held-out holes (default 3)")
    ex.add_argument("--heldout-max-side", type=int, default=256, help="downscale held-out photos first (256)")
    ex.add_argument("--heldout-method", action="append", metavar="NAME",
                    help=f"methods of the held-out table, repeatable (default: {', '.join(HELDOUT_DEFAULT)})")
    ex.add_argument("--heldout-results", metavar="JSON",
                    help="also write the held-out table as a benchmark result file (benchmarks/results/ schema)")
    ex.set_defaults(func=run_export)
    ev = actions.add_parser("eval", help="compare weights with classical methods inside free-form holes on "
                            "whole photos (the hole blanked: no method sees the truth)")
    ev.add_argument("--data", nargs="+", required=True, help="photos (files or folders) never used in training")
    ev.add_argument("--weights", help="generator .safetensors (default: the shipped weights)")
    ev.add_argument("--max-side", type=int, default=512, help="downscale photos to this longer side first")
    ev.add_argument("--masks-per-image", type=int, default=2)
    ev.add_argument("--seed", type=random_seed, default=0, help="first seed of the holes")
    ev.add_argument("--seeds", type=int, default=1, help="number of seeds (seed, seed+1, ...; default 1)")
    ev.add_argument("--method", action="append", metavar="NAME",
                    help=f"methods to run, repeatable (default all available: {', '.join(EVAL_METHODS)})")
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.add_argument("--results", metavar="JSON",
                    help="also write a benchmark result file (benchmarks/results/ schema) with per-seed rows")
    ev.add_argument("--title", default="Filling holes in never-seen photos (hole blanked)",
                    help="title of the --results section")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    ev.set_defaults(func=run_eval)
    mk = actions.add_parser("masks", help="write a PNG contact sheet of random training masks")
    mk.add_argument("-o", "--output", required=True, help="output PNG")
    mk.add_argument("--config", dest="mask_config", metavar="TOML", help="training config ([masks] section)")
    mk.add_argument("--count", type=int, default=16)
    mk.add_argument("--size", type=int, default=256)
    mk.add_argument("--seed", type=random_seed, default=0)
    mk.set_defaults(func=run_masks)
    ol = actions.add_parser("outline", help="train the outline net that redraws small tracked objects' masks "
                            "(streamfill/data/outline.onnx) on generated scenes")
    ol.add_argument("--photos", required=True, metavar="DIR",
                    help="photos for the scenes; only the tune half is used (the tracking evaluation's held-out "
                    "runs use the other half)")
    ol.add_argument("-o", "--output", required=True, help="output .onnx")
    ol.add_argument("--seeds", default="50001-50040,51001-51040", metavar="A-B,...",
                    help="scene seeds (ranges; default: those of the shipped net)")
    ol.add_argument("--epochs", type=int, default=10)
    ol.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ol.add_argument("--samples", metavar="NPZ", help="keep the collected samples here (reused when present)")
    ol.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    ol.set_defaults(func=run_outline)


def _fmt_time(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class TrainProgress:
    """Prints training progress: a self-rewriting bar on a terminal, a plain line every ``every`` s otherwise."""

    def __init__(self, quiet: bool = False, every: float = 30.0) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.every = 0.2 if self.tty else every
        self.last = 0.0
        self.val = ""

    def __call__(self, event: dict) -> None:
        if self.quiet:
            return
        kind = event["event"]
        if kind == "val":
            if "val_l1" in event:
                self.val = (f" | val L1 {event['val_l1']:.4f} (Telea {event['telea_l1']:.4f}) "
                            f"PSNR {event['val_psnr']:.2f} (Telea {event['telea_psnr']:.2f})")
            self._line(f"validation at step {event['step']}:{self.val}", newline=True)
            return
        if kind == "checkpoint":
            self._line(f"checkpoint {event['path']}", newline=True)
            return
        if kind != "step":
            return
        now = time.perf_counter()
        if now - self.last < self.every and event["step"] != event["total"]:
            return
        self.last = now
        step, total, rate = event["step"], event["total"], event["rate"]
        eta = (total - step) / rate if rate > 0 else float("nan")
        width = 24
        filled = int(width * step / total) if total else width
        bar = "#" * filled + "." * (width - filled)
        self._line(f"step {step}/{total} [{bar}] {rate:.2f} it/s ETA {_fmt_time(eta)} "
                   f"L1 {event['l1_refined']:.4f}{self.val}")

    def _line(self, text: str, newline: bool = False) -> None:
        if self.tty:
            end = "\n" if newline else ""
            print(f"\r\x1b[2K{text}", end=end, file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from streamfill.errors import InputError
    from streamfill.train.run import prepare_run

    if args.out is None:
        raise InputError("streamfill train needs --out RUN_DIR (or an action: export, eval, masks, outline)")
    if args.minutes is not None and not args.minutes > 0:  # (nan too: its deadline never comes)
        raise InputError(f"--minutes {args.minutes:g}: must be > 0")
    if args.steps is not None and args.steps < 1:  # refused before the data are read (that takes a while)
        raise InputError(f"--steps {args.steps}: must be 1 or more")
    overrides = {"train": {"steps": args.steps, "batch": args.batch, "device": args.device,
                           "threads": args.threads, "init_weights": args.init_weights,
                           "ckpt_minutes": args.ckpt_minutes}}
    trainer = prepare_run(args.out, config_path=args.config, data_paths=args.data, resume=args.resume,
                          overrides=overrides)
    if trainer.state.step >= trainer.cfg.train.steps:
        raise InputError(f"{args.out} is at step {trainer.state.step} already: --steps N is the step to train to "
                         f"(more than {trainer.state.step})")
    progress = TrainProgress(quiet=args.quiet)
    if not args.quiet:
        d = trainer.data
        print(f"training on {len(d.train_items)} items ({len(d.val_items)} held out for validation), "
              f"device {trainer.device}, from step {trainer.state.step} to {trainer.cfg.train.steps}",
              file=sys.stderr)
    stop = {"requested": False}

    def on_signal(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt()
        stop["requested"] = True
        print("\nstop requested: finishing this step and writing a checkpoint (again to abort)",
              file=sys.stderr, flush=True)

    deadline = None if args.minutes is None else time.monotonic() + args.minutes * 60

    def should_stop() -> bool:
        return stop["requested"] or (deadline is not None and time.monotonic() >= deadline)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        state = trainer.run(progress, stop=should_stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not args.quiet:
        print(f"\nstopped at step {state.step}; checkpoint {Path(args.out) / 'checkpoints' / 'latest.pt'}",
              file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from streamfill.errors import InputError
    from streamfill.train.export import export_run

    heldout = None
    if args.sources is not None and not Path(args.sources).is_file():
        raise InputError(f"--sources {args.sources}: no such file")
    if args.heldout:
        _check_not_trained_on(args.run_dir, args.heldout)
        names = args.heldout_method or list(HELDOUT_DEFAULT)
        _check_eval_args(names, args.heldout_max_side, 1, args.heldout_seeds, ("--heldout-max-side", "--heldout-seeds"))
        check_not_input(args.heldout_results, "--heldout-results", inputs=args.heldout, folders=args.heldout)
        photos = _load_heldout(args.heldout, args.heldout_max_side)

        def heldout(weights: Path) -> str:
            evaluation = _evaluate(photos, names, weights=str(weights), masks_per_image=1, seed=0,
                                   seeds=args.heldout_seeds, quiet=True)
            if args.heldout_results:
                _write_eval_results(args.heldout_results, evaluation, photos, args.heldout_max_side, 1,
                                    "Held-out photos at export (hole blanked)")
            return heldout_markdown(evaluation, photos, args.heldout_max_side, args.heldout_seeds)
    elif args.heldout_results:
        raise InputError("--heldout-results needs --heldout PHOTOS")
    result = export_run(args.run_dir, args.output, card_path=args.card, sources=args.sources,
                        hardware=args.hardware, discriminator=args.discriminator, heldout=heldout)
    print(f"wrote {result.weights} ({result.weights.stat().st_size / 1e6:.1f} MB, step {result.step}) "
          f"and {result.card}")
    return 0


def _check_not_trained_on(run_dir: str, heldout: list[str]) -> None:
    """Refuse held-out photos that the run trained on (its run.json lists its data): the card would call
    them "never used in training"."""
    from streamfill.errors import InputError
    from streamfill.train.run import run_record

    data = [Path(p).resolve() for p in run_record(run_dir).get("data", [])]
    for photo in heldout:
        p = Path(photo).resolve()
        for d in data:
            if p == d or d in p.parents or p in d.parents:
                raise InputError(f"--heldout {photo}: the run trained on {d}; held-out photos must come from "
                                 "elsewhere")


def run_masks(args: argparse.Namespace) -> int:
    from streamfill.errors import InputError
    from streamfill.io import write_image
    from streamfill.train.config import load_train_config
    from streamfill.train.masks import mask_grid

    if args.count < 1 or args.size < 16:
        raise InputError("--count must be >= 1 and --size >= 16")
    cfg = load_train_config(args.mask_config)
    write_image(args.output, mask_grid(cfg.masks, count=args.count, size=args.size, seed=args.seed))
    print(f"wrote {args.output}")
    return 0


EVAL_METHODS = {
    # name: (engine, [mask] dilate, [mask] feather, description)
    "streamfill": ("deepfill", 4, 3, "streamfill image, CLI defaults (dilate 4, feather 3)"),
    "streamfill feather 0": ("deepfill", 4, 0, "dilate 4, feather 0"),
    "streamfill dilate 0": ("deepfill", 0, 0, "the user's mask only (no margin, so no feather)"),
    "streamfill+sketch": ("deepfill", 4, 3, "CLI defaults + oracle sketch (Canny of the true image in the hole)"),
    "telea": ("telea", 0, 0, "OpenCV Telea (radius 5) on the user's mask"),
    "telea dilate 4": ("telea", 4, 3, "streamfill image --engine telea, CLI defaults (dilate 4, feather 3)"),
    "ns": ("ns", 0, 0, "OpenCV Navier-Stokes (radius 5) on the user's mask"),
    "fsr_fast": ("fsr_fast", 0, 0, "OpenCV xphoto FSR_FAST on the user's mask (needs opencv-contrib)"),
    "fsr_best": ("fsr_best", 0, 0, "OpenCV xphoto FSR_BEST on the user's mask (needs opencv-contrib)"),
    "fsr_fast dilate 4": ("fsr_fast", 4, 3, "streamfill image --engine fsr_fast, CLI defaults (dilate 4, feather 3)"),
    "fsr_best dilate 4": ("fsr_best", 4, 3, "streamfill image --engine fsr_best, CLI defaults (dilate 4, feather 3)"),
}


HELDOUT_DEFAULT = ("streamfill dilate 0", "streamfill", "telea", "telea dilate 4", "ns", "fsr_fast")
"""The model card's held-out table (FSR_BEST costs ~30 s of CPU per 256 px photo: add it with --heldout-method)."""


def _check_eval_args(names, max_side: int, masks_per_image: int, seeds: int,
                     flags=("--max-side", "--masks-per-image and --seeds")) -> None:
    from streamfill.errors import InputError

    if max_side < 64 or masks_per_image < 1 or seeds < 1:
        raise InputError(f"{flags[0]} must be >= 64, {flags[1]} >= 1")
    for n in names:
        if n not in EVAL_METHODS:
            raise InputError(f"method {n!r}: known: {', '.join(EVAL_METHODS)}")


def _load_heldout(paths, max_side: int):
    from streamfill.errors import InputError
    from streamfill.train.evaluate import load_photos

    photos = load_photos(paths, max_side)
    if not photos:
        raise InputError("no photos found in the held-out paths")
    return photos


def _evaluate(photos, names, *, weights, masks_per_image: int, seed: int, seeds: int, quiet: bool) -> dict:
    """Run the blanked-hole evaluation: {"names", "result" (per method: means and worst), "per_seed", "loads"}."""
    import os

    import numpy as np

    from streamfill.backends.classical import ClassicalInpainter, available_methods
    from streamfill.config import CropConfig, MaskConfig
    from streamfill.masks.ops import dilate
    from streamfill.pipeline.complete import Completer
    from streamfill.train.evaluate import evaluate_methods

    unavailable = [n for n in names if EVAL_METHODS[n][0] not in ("deepfill", *available_methods())]
    for n in unavailable:
        print(f"{n}: unavailable (OpenCV without the contrib modules: pip install opencv-contrib-python-headless)",
              file=sys.stderr)
    names = [n for n in names if n not in unavailable]
    generator = None
    methods = {}
    for n in names:
        engine, margin, feather, _ = EVAL_METHODS[n]
        if engine == "deepfill":
            if generator is None:
                from streamfill.backends.torch import TorchInpainter

                generator = TorchInpainter.from_weights(weights)
            inpainter = generator
        else:
            inpainter = ClassicalInpainter(engine, 5)
        completer = Completer(inpainter, CropConfig(), MaskConfig(dilate=margin, feather=feather))

        def fill(img, m, s, completer=completer, margin=margin):
            return completer.fill(img, dilate(m, margin), s)

        methods[n] = fill

    def progress(name, done, total):
        if not quiet:
            print(f"\r{done}/{total} fills", end="\n" if done == total else "", file=sys.stderr, flush=True)

    per_seed = {}
    loads = []
    for sd in range(seed, seed + seeds):
        per_seed[sd] = evaluate_methods(photos, methods, masks_per_image=masks_per_image, seed=sd,
                                        progress=progress)
        loads.append(os.getloadavg())
    result = {}
    for n in names:
        rows = [per_seed[sd][n] for sd in per_seed]
        result[n] = {
            "l1": float(np.mean([r["l1"] for r in rows])), "psnr": float(np.mean([r["psnr"] for r in rows])),
            "worst_seed_l1": float(max(r["l1"] for r in rows)), "worst_seed_psnr": float(min(r["psnr"] for r in rows)),
            "worst_sample_l1": float(max(r["worst_l1"] for r in rows)), "samples": int(sum(r["samples"] for r in rows)),
        }
    return {"names": names, "result": result, "per_seed": per_seed, "loads": loads}


def _write_eval_results(path, evaluation, photos, max_side: int, masks_per_image: int, title: str) -> None:
    import numpy as np

    from streamfill.eval.results import command_line, make_result, write_result

    names, result, per_seed, loads = (evaluation[k] for k in ("names", "result", "per_seed", "loads"))
    table = [[n, sd, round(per_seed[sd][n]["l1"] * 100, 2), round(per_seed[sd][n]["psnr"], 2),
              round(per_seed[sd][n]["worst_l1"] * 100, 2), per_seed[sd][n]["samples"]]
             for n in names for sd in per_seed]
    summary = {f"{n}: mean L1 % / worst seed L1 % / mean PSNR dB":
               f"{result[n]['l1'] * 100:.2f} / {result[n]['worst_seed_l1'] * 100:.2f} / {result[n]['psnr']:.2f}"
               for n in names}
    notes = (f"{len(photos)} photos never used in training ({', '.join(sorted(p for p, _ in photos))}), "
             f"longer side <= {max_side}, {masks_per_image} seeded free-form hole(s) per photo and "
             f"seed. Every method gets the photo with the hole blanked (black); errors are inside the user's "
             f"hole on [0, 1] (L1 pooled over hole pixels, PSNR the mean over samples). Methods: "
             + "; ".join(f"{n} = {EVAL_METHODS[n][3]}" for n in names) + ".")
    mean_load = [round(float(np.mean([v[i] for v in loads])), 2) for i in range(3)]
    write_result(path, make_result(
        Path(path).stem, title, command=command_line(),
        columns=["method", "seed", "L1 % in hole", "PSNR dB in hole", "worst sample L1 %", "samples"],
        rows=table, summary=summary, notes=notes, load_avg=mean_load))
    print(f"wrote {path}", file=sys.stderr)


def heldout_markdown(evaluation, photos, max_side: int, seeds: int) -> str:
    """The model card's held-out section: a table of every method, and the ratios the acceptance is stated in."""
    import platform

    result, loads = evaluation["result"], evaluation["loads"]
    load = max(v[0] for v in loads) if loads else float("nan")
    lines = [
        f"Re-measured at export on {len(photos)} photos never used in training, longer side <= {max_side}, one "
        f"seeded free-form hole per photo and seed, {seeds} seed(s); every method gets the photo with the hole "
        "**blanked**; L1 (x100, on [0, 1]) and PSNR inside the user's hole. Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average up to {load:.1f}. "
        "`streamfill train export --heldout`; the same figures as `streamfill train eval`.",
        "",
        "| method | mean L1 % | worst seed L1 % | mean PSNR dB | worst seed PSNR dB |",
        "|---|---:|---:|---:|---:|",
    ]
    for n, r in result.items():
        lines.append(f"| {n} ({EVAL_METHODS[n][3]}) | {r['l1'] * 100:.2f} | {r['worst_seed_l1'] * 100:.2f} | "
                     f"{r['psnr']:.2f} | {r['worst_seed_psnr']:.2f} |")
    pairs = [("streamfill dilate 0", "telea"), ("streamfill", "telea dilate 4"),
             ("streamfill dilate 0", "fsr_best"), ("streamfill", "fsr_best dilate 4"),
             ("streamfill dilate 0", "fsr_fast"), ("streamfill", "fsr_fast dilate 4")]
    ratios = [f"{a} / {b} = {result[a]['l1'] / result[b]['l1']:.3f}" for a, b in pairs
              if a in result and b in result and result[b]["l1"] > 0]
    if ratios:
        lines += ["", "Mean L1 ratios at equal settings (< 1: the generator is better): " + "; ".join(ratios) + "."]
    return "\n".join(lines)


def run_eval(args: argparse.Namespace) -> int:
    import json

    names = args.method or list(EVAL_METHODS)
    _check_eval_args(names, args.max_side, args.masks_per_image, args.seeds)
    check_not_input(args.results, "--results", inputs=args.data, folders=args.data)  # (its folder is made)
    photos = _load_heldout(args.data, args.max_side)
    evaluation = _evaluate(photos, names, weights=args.weights, masks_per_image=args.masks_per_image,
                           seed=args.seed, seeds=args.seeds, quiet=args.quiet)
    result, per_seed = evaluation["result"], evaluation["per_seed"]
    if args.results:
        _write_eval_results(args.results, evaluation, photos, args.max_side, args.masks_per_image, args.title)
    if args.json:
        print(json.dumps({"methods": result, "per_seed": {str(k): v for k, v in per_seed.items()}}, indent=2))
    else:
        print(f"{len(photos)} photos x {args.masks_per_image} free-form holes x {args.seeds} seed(s), longer side "
              f"<= {args.max_side}, hole blanked:")
        for name, r in result.items():
            print(f"  {name:22s} L1 {r['l1'] * 100:.2f} % (worst seed {r['worst_seed_l1'] * 100:.2f} %)  "
                  f"PSNR {r['psnr']:.2f} dB (worst seed {r['worst_seed_psnr']:.2f})")
    return 0


def _seed_ranges(text: str) -> list[int]:
    from streamfill.errors import InputError

    seeds: list[int] = []
    try:
        for part in text.split(","):
            a, _, b = part.strip().partition("-")
            first, last = int(a), int(b or a)
            if last < first:
                raise ValueError
            seeds.extend(range(first, last + 1))
    except ValueError:
        raise InputError(f"--seeds {text}: expected ranges such as 50001-50040,51001") from None
    if not seeds:
        raise InputError(f"--seeds {text}: no seeds")
    return seeds


def run_outline(args: argparse.Namespace) -> int:
    """`streamfill train outline`: collect the tracker's yields over generated scenes, train, write ONNX."""
    import numpy as np
    import torch

    from streamfill.errors import InputError
    from streamfill.eval.masks import codec_roundtrip, load_pictures
    from streamfill.train.outline import collect, export_onnx, fit

    if args.epochs < 1:
        raise InputError(f"--epochs {args.epochs}: must be at least 1")
    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"-o {args.output}: the outline net is written as .onnx")
    seeds = _seed_ranges(args.seeds)
    say = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    torch.set_num_threads(max(1, args.threads))
    if args.samples and Path(args.samples).is_file():
        with np.load(args.samples) as f:
            samples = {k: f[k] for k in ("rgb", "mask", "truth")}
    else:
        pictures = load_pictures(args.photos, "tune")
        samples = collect(pictures, seeds, codec_roundtrip, progress=say)
        if args.samples:
            np.savez(args.samples, **samples)
    net, scores = fit(samples, epochs=args.epochs, log=say)
    part = out.with_name(out.name + ".part")
    try:
        export_onnx(net, part)
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)  # a failed export leaves nothing behind
    print(f"{out}: validation IoU {scores['iou']:.4f} near the outline (the yields as they came "
          f"{scores['input_iou']:.4f}), {int(scores['samples'])} samples")
    return 0
