"""`streamfill finetune`: adapt the generator to one clip (its known pixels only), write new weights."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from streamfill.cli.common import check_writable, random_seed, torch_device


def add_parser(sub) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune the generator on one clip's known pixels (internal learning); use with process --weights",
        description="streamfill finetune VIDEO --mask M -o W.safetensors --steps N. Trains on random holes in "
        "the clip's own frames, never on pixels inside the real (masked) hole. Minutes on a GPU; slow on CPU.",
    )
    p.add_argument("video", help="the clip (video file)")
    p.add_argument("--mask", required=True,
                   help="one mask image for every frame, or a mask video / folder of per-frame masks")
    p.add_argument("-o", "--output", required=True, help="output .safetensors")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    p.add_argument("--weights", help="starting weights (default: the shipped weights)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=256, help="training crop, multiple of 8 (default 256)")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--margin", type=int, default=8, help="grow the real hole by PX before excluding it")
    p.add_argument("--max-frames", type=int, default=64, help="frames sampled from the clip (default 64)")
    p.add_argument("--seed", type=random_seed, default=0)
    p.add_argument("--device", default="cpu", type=torch_device, help="torch device (cpu, cuda, cuda:N)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from streamfill.backends.neural import resolve_weights
    from streamfill.config import MaskConfig
    from streamfill.errors import InputError
    from streamfill.io import is_image_file, open_video, read_grey_sequence, read_image
    from streamfill.masks.static import PerFrameMasks, StaticMask
    from streamfill.model import load_generator, read_metadata, save_generator
    from streamfill.train.finetune import FinetuneConfig, finetune

    if not Path(args.video).exists():
        raise InputError(f"video not found: {args.video}")
    if Path(args.video).is_dir():
        raise InputError(f"{args.video} is a folder: finetune reads a video file")
    if args.steps < 1:
        raise InputError(f"--steps {args.steps}: must be 1 or more (0 wrote a copy of the weights)")
    if not str(args.output).endswith(".safetensors"):
        raise InputError(f"{args.output}: the output must end in .safetensors")
    check_writable(args.output, "-o")  # before the training, not after it
    if Path(args.output).exists() and not args.force:
        raise InputError(f"{args.output} exists (use --force to overwrite)")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {args.device} but no CUDA GPU is available")
    cfg = FinetuneConfig(steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr, margin=args.margin,
                         max_frames=args.max_frames, seed=args.seed)
    base = resolve_weights(args.weights)
    generator = load_generator(base)
    mask_cfg = MaskConfig(dilate=0)
    if is_image_file(args.mask):
        source = StaticMask(read_image(args.mask, grey=True), mask_cfg, name=Path(args.mask).name)
    else:
        masks, count = read_grey_sequence(args.mask)
        source = PerFrameMasks(masks, mask_cfg, name=Path(args.mask).name, count=count)
    t0 = time.perf_counter()
    last = [0.0]
    crop = [cfg.crop]

    def progress(event: dict) -> None:
        crop[0] = event.get("crop", crop[0])  # smaller frames train on a smaller crop: recorded as trained
        now = time.perf_counter()
        if args.quiet or (now - last[0] < 1.0 and event["step"] != event["total"]):
            return
        last[0] = now
        rate = event["step"] / max(now - t0, 1e-9)
        eta = (event["total"] - event["step"]) / rate if rate > 0 else 0
        tty = sys.stderr.isatty()  # in a log file each line ends (a carriage return ran them together)
        end = "\n" if event["step"] == event["total"] or not tty else ""
        print(f"{chr(13) if tty else ''}step {event['step']}/{event['total']} {rate:.2f} it/s ETA {eta:.0f} s "
              f"L1 {event['l1']:.4f}", end=end, file=sys.stderr, flush=True)

    with open_video(args.video) as reader:
        pairs = ((frame.image, mask) for frame, mask in source.pair(reader))
        finetune(generator, pairs, cfg, device=args.device, callback=progress)
    provenance = dict(read_metadata(base)["provenance"])
    provenance["finetuned"] = {"from": base.name, "clip": Path(args.video).name, "steps": cfg.steps,
                               "batch": cfg.batch, "crop": crop[0], "lr": cfg.lr}
    provenance["trainer"] = "streamfill finetune (from " + str(provenance.get("trainer", base.name)) + ")"
    provenance["licence_note"] = f"fine-tuned by streamfill from {base.name} on {Path(args.video).name}"
    save_generator(generator.cpu(), args.output, metadata=provenance, dtype=torch.float16)
    print(f"wrote {args.output} (use: streamfill process ... --engine deepfill --weights {args.output})")
    return 0
