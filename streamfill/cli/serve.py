"""`streamfill serve`: fill frames for host applications over ZeroMQ (plugins/PROTOCOL.md)."""

from __future__ import annotations

import argparse
import sys

from streamfill import api
from streamfill.cli.common import add_config_flag, add_fill_flags, config_from_args
from streamfill.config import merge


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="fill frames sent by host applications over ZeroMQ",
                       description="Answer ZeroMQ 'frame' messages (image + mask) with the filled frame. "
                                   "Many clients at once; bad requests get 'error' replies. "
                                   "Protocol: plugins/PROTOCOL.md.")
    p.add_argument("--bind", default="tcp://127.0.0.1:5555", metavar="ENDPOINT",
                   help="where to listen: tcp://HOST:PORT or ipc://PATH (default tcp://127.0.0.1:5555, loopback)")
    p.add_argument("--curve-keys", metavar="DIR",
                   help="require CURVE authentication and encryption with the keys in DIR (from `streamfill keys`)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --bind without --curve-keys (anyone who can reach it can use it)")
    p.add_argument("--workers", type=int, metavar="N", help="completion threads (default 1)")
    p.add_argument("--queue", type=int, metavar="N", help="requests waiting before 'busy' replies (default 32)")
    p.add_argument("--queue-bytes", type=int, metavar="N",
                   help="bytes of requests held (waiting or being filled) before 'busy' replies (default 256 MiB)")
    p.add_argument("--max-message-bytes", type=int, metavar="N", help="largest accepted message part")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing while serving")
    p.add_argument("--temporal", choices=("off", "fast", "quality"), default="off",
                   help="off: each frame alone (default); fast | quality: per stream, real pixels from the "
                        "stream's other frames first, the engine for the rest: from earlier frames (look-back, "
                        "answered at once), or, for clients that ask (lookahead), as `process` does, answered "
                        "once the window of later frames has come")
    add_fill_flags(p)
    add_config_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = merge(config_from_args(args), {"transport": {
        "workers": args.workers, "queue": args.queue, "queue_bytes": args.queue_bytes,
        "max_message_bytes": args.max_message_bytes}})

    def ready(endpoint: str) -> None:
        if not args.quiet:
            curve = " (CURVE)" if args.curve_keys else ""
            print(f"streamfill serve: listening on {endpoint}{curve}; Ctrl-C to stop", file=sys.stderr, flush=True)

    try:
        stats = api.serve(args.bind, config=config, curve_keys=args.curve_keys, insecure=args.insecure,
                          on_ready=ready, temporal=args.temporal)
    except KeyboardInterrupt:
        return 0
    if not args.quiet:
        internal = f" ({stats['internal']} internal: rerun with STREAMFILL_DEBUG=1 for tracebacks)" \
            if stats.get("internal") else ""
        print(f"streamfill serve: {stats['results']} frames filled, {stats['errors']} errors{internal}",
              file=sys.stderr)
    return 0
