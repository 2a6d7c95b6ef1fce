"""`streamfill eval`: measure parts of streamfill against known truth.

Each evaluation is a sub-command registered in ``EVALUATIONS`` (name -> (add_arguments, run)); to add one,
write its two functions here (or in another module) and add an entry. ``eval masks`` scores mask tracking,
``eval temporal`` video completion (per-frame vs temporal).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamfill.cli.common import add_config_flag, config_from_args, non_negative, random_seed


def _add_masks(p: argparse.ArgumentParser) -> None:
    from streamfill.eval.masks import CODECS, STANDARD

    p.add_argument("--background", metavar="PATH",
                   help="background video or still image (default: synthetic texture)")
    p.add_argument("--object", metavar="IMAGE",
                   help="object to composite: an RGBA cut-out, or a photo (its alpha from --object-mask, else "
                        "GrabCut on its centre); default: a synthetic textured blob")
    p.add_argument("--object-mask", metavar="MASK", help="mask of the object in --object (white = object)")
    p.add_argument("--occluder", metavar="IMAGE", help="cut-out that crosses in front for 'occlusion'")
    p.add_argument("--trajectory", action="append", choices=STANDARD, metavar="NAME",
                   help=f"run only these trajectories (repeatable; default all: {', '.join(STANDARD)})")
    p.add_argument("--frames", type=int, help="frames per trajectory (default 150; 90 with --suite)")
    p.add_argument("--size", metavar="WxH", help="resize the background to WxH (default: the clip's size)")
    p.add_argument("--json", metavar="PATH", help="also write the full report (per-frame values) as JSON")
    p.add_argument("--dilate", type=int, metavar="PX", help="safety margin used for the coverage column")
    p.add_argument("--codec", choices=CODECS, default="none",
                   help="what the frames go through before tracking: none (exact pixels, the default) or h264 "
                        "(an H.264 round trip, CRF 23, 4:2:0, as any real clip has had)")
    s = p.add_argument_group("hard-case suite (--suite)")
    s.add_argument("--suite", action="store_true",
                   help="the hard cases (random cut-outs and paths over generated scenes: pan, small, foliage, "
                        "talking, shake, tiny, cut), several seeds each: the default unless --background, "
                        "--object, --occluder, --trajectory, --size or --dilate asks for the trajectory benchmark")
    s.add_argument("--case", action="append", metavar="NAME",
                   help="run only these cases (repeatable; default all)")
    s.add_argument("--seeds", type=int, metavar="N", help="seeds per case: 0..N-1 (default 3)")
    s.add_argument("--photos", metavar="DIR",
                   help="folder of photos for backgrounds and object textures (default: synthetic textures); "
                        "the even-numbered files are used, the odd ones are kept for --held-out")
    s.add_argument("--held-out", action="store_true",
                   help="run the held-out seeds (1000, 1001) on the other half of --photos")
    s.add_argument("--backdrop", metavar="VIDEO",
                   help="a real clip whose frames replace the generated backgrounds (resized to each case's size)")
    add_config_flag(p)


def _run_suite(args: argparse.Namespace) -> int:
    from streamfill.errors import InputError
    from streamfill.eval.masks import evaluate_suite

    if args.seeds is not None and args.seeds < 1:
        raise InputError(f"--seeds {args.seeds}: at least 1")
    if args.seeds is not None and args.held_out:
        raise InputError("--held-out runs its own seeds: drop --seeds")

    def progress(r) -> None:
        print(f"  {r.case} seed {r.seed}: mean IoU {r.mean_iou:.3f}, min {r.min_iou:.3f}", file=sys.stderr)

    report = evaluate_suite(tuple(args.case or ()) or None,
                            tuple(range(args.seeds)) if args.seeds is not None else None,
                            photos=args.photos, held_out=args.held_out,
                            frames=90 if args.frames is None else args.frames,
                            config=config_from_args(args), codec=args.codec, backdrop=args.backdrop,
                            progress=progress)
    return _print_report(report, args.json)


def _run_masks(args: argparse.Namespace) -> int:
    from streamfill.errors import InputError
    from streamfill.eval.masks import STANDARD, evaluate_masks

    classic = bool(args.background or args.object or args.object_mask or args.occluder or args.trajectory
                   or args.size or args.dilate is not None)
    if args.suite and classic:
        raise InputError("--suite makes its own scenes: drop --background/--object/--occluder/--trajectory/--size")
    if not classic:
        return _run_suite(args)
    if args.case or args.photos or args.held_out or args.backdrop or args.seeds is not None:
        raise InputError("--case, --seeds, --photos, --held-out and --backdrop belong to --suite")
    if args.object_mask and not args.object:
        raise InputError("--object-mask is the mask of --object: give --object too")
    size = None
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise InputError(f"--size {args.size!r}: expected WxH, e.g. 768x576") from None
        if w < 32 or h < 32:
            raise InputError(f"--size {args.size}: at least 32x32")
        size = (w, h)
    report = evaluate_masks(
        args.background, args.object, args.object_mask, trajectories=tuple(args.trajectory or STANDARD),
        frames=150 if args.frames is None else args.frames, size=size, config=config_from_args(args),
        occluder_path=args.occluder, codec=args.codec,
    )
    return _print_report(report, args.json)


def _add_temporal(p: argparse.ArgumentParser) -> None:
    from streamfill.cli.common import add_fill_flags
    from streamfill.eval.corpus import CASES
    from streamfill.eval.temporal import METHODS, OCCLUDERS

    p.add_argument("video", nargs="*", help="clean clip(s) to paint occluders on (the clip is the truth)")
    p.add_argument("--corpus", action="store_true",
                   help="run the generated development corpus instead of (or beside) videos")
    p.add_argument("--case", action="append", choices=sorted(CASES), metavar="NAME",
                   help=f"corpus cases, repeatable (default all: {', '.join(CASES)})")
    p.add_argument("--seeds", default="0,1,2", metavar="LIST",
                   help="corpus seeds, comma-separated (default 0,1,2; held out: 10,11)")
    p.add_argument("--photos", metavar="DIR",
                   help="folder of photos the corpus is made from (default: synthetic textures)")
    p.add_argument("--occluder", action="append", choices=OCCLUDERS, metavar="KIND",
                   help=f"occluder kind, repeatable: {', '.join(OCCLUDERS)} (default blob)")
    p.add_argument("--method", action="append", choices=METHODS, metavar="NAME",
                   help=f"methods to run, repeatable (default all: {', '.join(METHODS)}); generator rows are "
                        "skipped with a note when no neural engine or weights are available")
    p.add_argument("--frames", type=int, default=120,
                   help="frames from the start of each clip (default 120; the corpus's hd case: at most 10)")
    p.add_argument("--width", type=int, default=640, help="resize the clip to this width, 0 = native (default 640)")
    p.add_argument("--start", type=non_negative, default=0.0, metavar="SEC", help="first second of the clip to use")
    p.add_argument("--seed", type=random_seed, default=0, help="occluder seed (default 0)")
    p.add_argument("--window", type=int, metavar="N",
                   help="temporal window, frames on each side (default: 10 fast, 15 quality)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    add_fill_flags(p)
    p.set_defaults(fill_engine=False)  # its generator rows use --weights/--device whatever --engine says
    add_config_flag(p)


def _run_temporal(args: argparse.Namespace) -> int:
    import json

    from streamfill.errors import InputError
    from streamfill.eval.temporal import METHODS, evaluate

    if args.frames < 2:
        raise InputError(f"--frames {args.frames}: need at least 2")
    if args.width and args.width < 32:
        raise InputError(f"--width {args.width}: at least 32 (or 0 for the native size)")
    if not args.video and not args.corpus:
        raise InputError("give at least one video, or --corpus")
    try:
        seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if args.corpus and not seeds:
        raise InputError("--seeds: at least one seed")
    if any(s < 0 for s in seeds):
        raise InputError(f"--seeds {args.seeds}: seeds are 0 or more")
    if args.photos and not Path(args.photos).is_dir():
        raise InputError(f"--photos {args.photos}: not a folder")
    config = config_from_args(args)
    results = []
    if args.corpus:
        from streamfill.eval.corpus import CASES, make_clip
        from streamfill.eval.temporal import evaluate_clip

        for case in args.case or list(CASES):
            for seed in seeds:
                clip = make_clip(case, seed, args.frames, args.photos)
                r = evaluate_clip(clip, config=config, methods=tuple(args.method or METHODS))
                print(r.table(), flush=True)
                print()
                results.append(r.to_dict())
    for video in args.video:
        for occluder in args.occluder or ["blob"]:
            r = evaluate(video, config=config, methods=tuple(args.method or METHODS), frames=args.frames,
                         width=args.width, occluder=occluder, seed=args.seed, start=args.start)
            print(r.table())
            print()
            results.append(r.to_dict())
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(results, indent=2))
        except OSError as exc:
            raise InputError(f"cannot write {args.json}: {exc.strerror or exc}") from None
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


EVALUATIONS = {
    "masks": (_add_masks, _run_masks,
              "score mask tracking: a cut-out moves along known trajectories over a background clip"),
    "temporal": (_add_temporal, _run_temporal,
                 "score video completion: occluders move over real clips; PSNR/SSIM in the hole, flicker, fps "
                 "for per-frame and temporal methods"),
}


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="measure accuracy and speed against known truth",
                       description="Measure parts of streamfill against known truth.")
    evals = p.add_subparsers(dest="evaluation", metavar="WHAT", required=True)
    for name, (add_arguments, run_one, text) in EVALUATIONS.items():
        e = evals.add_parser(name, help=text, description=text)
        add_arguments(e)
        e.set_defaults(func=_checked(run_one))
    p.set_defaults(func=run)


def _checked(run_one):
    """``run_one`` after checking that its ``--json`` can be written: before the measurement, not after it."""

    def run_checked(args: argparse.Namespace) -> int:
        from streamfill.cli.common import check_writable

        # (eval masks' --occluder is a picture; eval temporal's a list of kinds, no files)
        files = [getattr(args, flag, None) for flag in ("background", "object", "object_mask", "backdrop", "config")]
        if isinstance(getattr(args, "occluder", None), str):
            files.append(args.occluder)
        check_writable(getattr(args, "json", None), "--json", inputs=files + list(getattr(args, "video", [])),
                       folders=[args.photos])
        return run_one(args)

    return run_checked


def run(args: argparse.Namespace) -> int:
    return int(args.func(args) or 0)


def _print_report(report, json_path: str | None) -> int:
    """Print an evaluation's table; with ``--json PATH`` also write its JSON (one line on stderr says so)."""
    from streamfill.errors import InputError

    print(report.table())
    if json_path:
        try:
            Path(json_path).write_text(report.to_json())
        except OSError as exc:
            raise InputError(f"cannot write {json_path}: {exc.strerror or exc}") from None
        print(f"wrote {json_path}", file=sys.stderr)
    return 0
