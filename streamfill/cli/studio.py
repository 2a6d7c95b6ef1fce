"""`streamfill studio`: the browser editor (draw, track, preview, remove) on a local web server."""

from __future__ import annotations

import argparse
import math
import sys

from streamfill.cli.common import add_config_flag, config_from_args
from streamfill.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("studio", help="open the browser editor: paint, track, preview and remove",
                       description="Start a local web editor: open a clip from --root (or upload one), paint "
                                   "over the object on a frame, track it through the clip, preview the masks and "
                                   "run the removal. Needs `pip install 'streamfill[studio]'`. Prints the URL.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; another address needs "
                        "--token)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 = any free port)")
    p.add_argument("--root", default=".", metavar="DIR",
                   help="folder whose videos the page may open (nothing outside it is read or listed; default .)")
    p.add_argument("--token", metavar="T", help="secret every request must carry (the printed URL has it)")
    p.add_argument("--work", metavar="DIR",
                   help="where uploads, masks and results are kept (default: a temporary folder removed on exit)")
    p.add_argument("--max-upload", type=float, default=2048, metavar="MB", help="largest upload (default 2048 MB)")
    p.add_argument("--max-pixels", type=int, default=7680 * 4320, metavar="N",
                   help="largest frame, in pixels (default 8K UHD: 7680x4320)")
    add_config_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: must be 0-65535")
    if not math.isfinite(args.max_upload) or args.max_upload <= 0 or args.max_pixels <= 0:
        raise InputError("--max-upload and --max-pixels must be positive numbers")
    try:
        from streamfill.studio.server import serve
        from streamfill.studio.session import Limits
    except ImportError as exc:
        raise InputError(f"the studio needs its extra: pip install 'streamfill[studio]' ({exc})") from None
    config = config_from_args(args)
    limits = Limits(max_upload=int(args.max_upload * 1024**2), max_pixels=args.max_pixels)

    def ready(url: str) -> None:
        print(f"streamfill studio: open {url}  (Ctrl+C to stop)", file=sys.stderr, flush=True)

    serve(args.root, host=args.host, port=args.port, token=args.token, work=args.work, limits=limits,
          config=config, on_ready=ready)
    return 0
