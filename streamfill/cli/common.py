"""Helpers shared by the CLI commands: config flags and the progress bar (printing lives here, in the CLI)."""

from __future__ import annotations

import argparse
import math
import sys
import time

from streamfill.config import ENGINES, PRECISIONS, TEMPORAL_MODES, X264_PRESETS, Config, load_config


def once(why: str) -> type[argparse.Action]:
    """An argparse action for an option that may be given once: a second one silently replaced the first.
    ``why`` ends the usage error."""

    class Once(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            mark = f"_given_{self.dest}"
            if getattr(namespace, mark, False):
                parser.error(f"{option_string} given twice: {why}")
            setattr(namespace, mark, True)
            setattr(namespace, self.dest, values)

    return Once


ONE_MASK = once("one mask (an image, a mask video or a folder) per run; to correct a tracked object on later "
                "frames, start from --box and add --box X,Y,W,H@K")


def add_config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML", help="configuration file (default: built-in defaults)")


def seconds(text: str) -> float:
    """argparse type of a time or rate: a finite number ("nan" and "inf" are usage errors, not crashes)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def positive(text: str) -> float:
    """argparse type of a finite number above 0 (a timeout, a CPU share)."""
    value = seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text!r}")
    return value


def non_negative(text: str) -> float:
    """argparse type of a finite number of 0 or more (a GPU share: 0 = none)."""
    value = seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text!r}")
    return value


def random_seed(text: str) -> int:
    """argparse type of a random seed: a whole number of 0 or more (numpy refuses a negative one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text!r}")
    return value


def check_not_input(path: str | None, flag: str, inputs=(), folders=()) -> None:
    """Refuse, before any work, a file to write that is one of the ``inputs`` files, or that would replace a file
    in one of the input ``folders`` (a photo folder: writing a report there overwrote a photo)."""
    from pathlib import Path

    from streamfill.errors import InputError
    from streamfill.io.encode import same_file

    if path is None:
        return
    out = Path(path)
    for src in inputs:
        if src is not None and "://" not in str(src) and same_file(Path(src), out):
            raise InputError(f"{flag} {path} is the input {src}; choose another name")
    for folder in folders:
        if folder is not None and out.is_file() and Path(folder).is_dir() \
                and out.resolve().is_relative_to(Path(folder).resolve()):
            raise InputError(f"{flag} {path} would replace a file in the input folder {folder}; choose another name")


def check_writable(path: str | None, flag: str, inputs=(), folders=()) -> None:
    """Refuse, before any work, a file to write (``--json``, ``--results``, ``-o``) whose folder does not exist,
    that is a folder, or that is an input (``check_not_input``)."""
    from pathlib import Path

    from streamfill.errors import InputError

    if path is None:
        return
    check_not_input(path, flag, inputs, folders)
    out = Path(path)
    if out.is_dir() or not out.parent.is_dir():
        raise InputError(f"{flag} {path}: " + ("is a folder" if out.is_dir() else f"no folder {out.parent}"))


def torch_device(text: str) -> str:
    """argparse type of a --device for one torch model: cpu, cuda or cuda:N."""
    import re

    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r}: use cpu, cuda or cuda:N")
    return text


def add_read_flags(p: argparse.ArgumentParser) -> None:
    """What part of the input to read, shared by `process` and `masks`: --fps, --start, --end, --salvage, -q."""
    p.add_argument("--fps", type=seconds, help="frame rate of an image-sequence input")
    p.add_argument("--start", type=non_negative, metavar="SEC", help="first second to read (frames keep their pts)")
    p.add_argument("--end", type=positive, metavar="SEC", help="stop before this second")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--salvage", action="store_true",
                   help="a decode error part-way through the input keeps the frames decoded before it (with a "
                        "note) instead of failing")


def add_encode_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output encoding")
    g.add_argument("--crf", type=int, help="x264 quality, 0-51, lower is better (default 18)")
    g.add_argument("--preset", choices=X264_PRESETS, help="x264 speed preset (default medium)")
    g.add_argument("--lossless", action="store_true", default=None,
                   help="write bit-exact FFV1 RGB in MKV (output name must end in .mkv)")


def add_ray_flags(p: argparse.ArgumentParser, *, chunks: bool = False) -> None:
    """--ray and the worker options of `batch` and `process` (see streamfill.distributed)."""
    g = p.add_argument_group("scale-out (Ray)")
    g.add_argument("--ray", metavar="ADDRESS",
                   help="run on a Ray cluster: HOST:PORT of its head (`ray start --head`), ray://HOST:PORT, auto "
                        "(the cluster started on this machine) or local (a private Ray on this machine)")
    if chunks:
        g.add_argument("--chunk-seconds", type=float, metavar="N",
                       help="split the clip into chunks of about N seconds, cut at scene cuts or source keyframes "
                            "(default 10 with --ray; without --ray the chunks run one after another here)")
        g.add_argument("--chunk-at", choices=("auto", "cuts"),
                       help="auto: scene cuts, else source keyframes (default); cuts: only at scene cuts, whole "
                            "shots per chunk, the output identical to one pass")
        g.add_argument("--preroll", metavar="N|shot",
                       help="frames decoded and filled before each chunk to warm the temporal stage up (default: "
                            "window + background memory, 20 for fast); shot = from the start of the chunk's shot "
                            "(identical to one pass, more work)")
    g.add_argument("--workers", type=int, metavar="N", help="Ray workers (default: the cluster's CPUs, or GPUs)")
    g.add_argument("--cpus-per-worker", type=positive, metavar="C", help="CPUs per Ray worker (default 1)")
    g.add_argument("--gpus-per-worker", type=non_negative, metavar="G",
                   help="GPUs per Ray worker, fractions allowed (default 1 when the cluster has GPUs and the engine "
                        "is neural, else 0)")
    g.add_argument("--ray-timeout", type=positive, metavar="SEC",
                   help="seconds the --ray address gets to answer (default 20)")


RAY_ONLY = ("workers", "cpus_per_worker", "gpus_per_worker", "ray_timeout")  # flags that mean nothing without --ray
RAY_DEFAULTS = {"cpus_per_worker": 1.0, "ray_timeout": 20.0}


def check_ray_flags(args: argparse.Namespace, here: str) -> None:
    """Without --ray, a Ray-only flag is an error (``here``: what runs instead); with it, fill in the defaults."""
    from streamfill.errors import InputError

    given = [f"--{name.replace('_', '-')}" for name in RAY_ONLY if getattr(args, name, None) is not None]
    if not args.ray and given:
        raise InputError(f"{', '.join(given)}: for Ray (--ray ADDRESS); {here}")
    for name, value in RAY_DEFAULTS.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def add_fill_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filling")
    g.add_argument("--engine", choices=ENGINES, help="inpainting engine (default telea)")
    p.set_defaults(fill_engine=True)  # --engine is the config's [engine] name (bench and compile pick their own)
    g.add_argument("--dilate", type=int, metavar="PX", help="grow the mask by PX pixels (default 4)")
    g.add_argument("--feather", type=int, metavar="PX",
                   help="soften the paste over PX pixels inside the safety margin only (default 3, capped at --dilate; "
                        "the masked pixels never reach the output)")
    add_neural_flags(g)


def add_neural_flags(g) -> None:
    """--weights, --precision, --device: the [engine] keys of the neural (DeepFill v2) engines."""
    g.add_argument("--weights", metavar="PATH",
                   help="generator weights .safetensors for neural engines (default: the shipped weights)")
    g.add_argument("--precision", choices=PRECISIONS, help="neural compute precision (default auto: fp16 on "
                   "CUDA, fp32 on CPU)")
    g.add_argument("--device", metavar="DEV", help="neural device: auto, cpu, cuda or cuda:N (default auto)")


def print_engine_note(config: Config) -> None:
    """One line on stderr saying which backend a neural engine fell back to and why (nothing otherwise)."""
    from streamfill import build

    choice = build.choose_engine(config)
    if choice.reason:
        print(f"engine {choice.engine}: {choice.reason}", file=sys.stderr)


def _single(value):
    """An --engine given once (a repeatable --engine, as in bench, is not a config value)."""
    return None if isinstance(value, list) else value


def _mode(value):
    """A --temporal MODE (live's on/off --temporal is a [live] key, set by live itself)."""
    return value if isinstance(value, str) else None


def add_temporal_flags(p: argparse.ArgumentParser) -> None:
    t = p.add_argument_group("temporal completion")
    t.add_argument("--temporal", choices=TEMPORAL_MODES,
                   help="fill holes with real pixels from other frames first (background memory, optical flow) and "
                        "the engine only for what no frame shows: off (each frame alone) | fast | quality "
                        "(default fast)")
    t.add_argument("--window", type=int, metavar="N",
                   help="frames held on each side of the frame being filled (default: 10 for fast, 15 for quality; "
                        "memory grows with N)")


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults, then --config, then the flags the user gave."""
    from streamfill.errors import InputError

    overrides = {
        "io": {"crf": getattr(args, "crf", None), "preset": getattr(args, "preset", None),
               "lossless": getattr(args, "lossless", None)},
        "mask": {"dilate": getattr(args, "dilate", None), "feather": getattr(args, "feather", None)},
        "engine": {"name": _single(getattr(args, "engine", None)), "weights": getattr(args, "weights", None),
                   "precision": getattr(args, "precision", None), "device": getattr(args, "device", None)},
        "temporal": {"mode": _mode(getattr(args, "temporal", None)), "window": getattr(args, "window", None)},
    }
    config = load_config(getattr(args, "config", None), overrides)
    # flags that do nothing with what the command line and the --config file together chose
    # (eval temporal has no --temporal: it sets the mode per method, and --window applies to its temporal ones)
    if hasattr(args, "temporal") and config.temporal.mode == "off" and getattr(args, "window", None) is not None:
        off = "--temporal off" if getattr(args, "temporal", None) else '[temporal] mode = "off" (--config)'
        raise InputError(f"--window {args.window} is the temporal window: it does nothing with {off}")
    x264 = [f"--{flag}" for flag in ("crf", "preset") if getattr(args, flag, None) is not None]
    if config.io.lossless and x264:
        lossless = "--lossless" if getattr(args, "lossless", None) else "[io] lossless = true (--config)"
        raise InputError(f"{', '.join(x264)}: for H.264/VP9 output; {lossless} writes FFV1, which has no quality "
                         "or speed setting")
    neural = [f"--{flag}" for flag in ("weights", "precision", "device") if getattr(args, flag, None) is not None]
    if neural and getattr(args, "fill_engine", False) and config.engine.name in ("telea", "ns"):
        # (process's default engine is telea: the weights a finetune wrote were silently not used)
        raise InputError(f"{', '.join(neural)}: for the generator (--engine deepfill, auto, torch, onnx, ...); "
                         f"engine {config.engine.name} uses none")
    return config


class ProgressBar:
    """One self-rewriting line on stderr: frames, fps, ETA. Silent when stderr is not a terminal, unless
    ``force`` (then a plain line every few seconds)."""

    def __init__(self, label: str, enabled: bool = True, force: bool = False, every: float = 5.0) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.enabled = enabled and (self.tty or force)
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.every = 0.1 if self.tty else every
        self.done = 0

    def __call__(self, done: int, total: int | None) -> None:
        self.done = done
        now = time.perf_counter()
        if not self.enabled or (now - self.last < self.every and done != total):
            return
        self.last = now
        elapsed = now - self.t0
        fps = done / elapsed if elapsed > 0 else 0.0
        if total:
            eta = (total - done) / fps if fps > 0 else 0.0
            text = f"{self.label}: {done}/{total} frames  {fps:5.1f} fps  ETA {eta:4.0f} s"
        else:
            text = f"{self.label}: {done} frames  {fps:5.1f} fps"
        print(("\r" + text + "  ") if self.tty else text, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def finish(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)
