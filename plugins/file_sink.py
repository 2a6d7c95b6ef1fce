#!/usr/bin/env python3
"""File sink plugin: receives ``frame`` messages and writes each frame to a folder as PNG (or raw RGB).

Lossless by default: binds a PULL socket that ``streamfill process --sink zmq:push:ENDPOINT`` connects to,
and stops at the sender's ``bye`` (reporting any missing indices; exit status 1 when fewer frames came
than the ``bye`` counts, or a frame could not be written). ``--sub`` instead subscribes to a
publish sink (frames may be missed by design). Imports only streamfill.protocol, pyzmq and numpy.

    python plugins/file_sink.py --bind tcp://127.0.0.1:5570 --out frames/
    streamfill process in.mp4 -o out.mp4 --mask m.png --sink zmq:push:tcp://127.0.0.1:5570

Files: ``frames/frame_000123.png`` (RGB PNG, written with streamfill.protocol.encode_png) or, with
``--raw``, ``frame_000123.rgb`` (H x W x 3 bytes, row-major RGB; the size is in ``frames/info.txt``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import zmq

from streamfill import protocol


def write(folder: Path, msg: protocol.Message, raw: bool) -> Path:
    name = f"frame_{msg.index:06d}.{'rgb' if raw else 'png'}"
    data = msg.image.tobytes() if raw else protocol.encode_png(msg.image, level=1)
    tmp = folder / f".{name}.part"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)  # a reader never sees a half-written file
    return folder / name


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bind", default="tcp://127.0.0.1:5570", help="PULL endpoint to listen on")
    p.add_argument("--sub", metavar="ENDPOINT", help="subscribe to a publish sink at ENDPOINT instead")
    p.add_argument("--out", required=True, help="folder for the frames (created if missing)")
    p.add_argument("--raw", action="store_true", help="write raw RGB bytes instead of PNG")
    p.add_argument("--idle", type=float, default=0, help="stop after this many seconds without frames (0 = never)")
    args = p.parse_args(argv)
    folder = Path(args.out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"file_sink: cannot create {folder}: {exc}", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB if args.sub else zmq.PULL)
    sock.linger = 0
    try:
        if args.sub:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(args.sub)
        else:
            sock.bind(args.bind)
    except zmq.ZMQError as exc:  # a bad endpoint, or the port is taken (another copy running?)
        sock.close(0)
        ctx.term()
        print(f"file_sink: cannot {'connect' if args.sub else 'bind'} {args.sub or args.bind}: {exc}",
              file=sys.stderr)
        return 2
    print(f"file_sink: writing to {folder} from {args.sub or args.bind}", file=sys.stderr, flush=True)
    seen: set[int] = set()
    size = None
    count = None
    failed = False
    idle = 0.0
    try:
        while True:
            if not sock.poll(500):
                idle += 0.5
                if args.idle and idle >= args.idle:
                    print("file_sink: idle, stopping", file=sys.stderr)
                    break
                continue
            idle = 0.0
            try:
                msg = protocol.decode(sock.recv_multipart(copy=False))
            except protocol.MessageError as exc:
                print(f"file_sink: dropped a bad message: {exc}", file=sys.stderr)
                continue
            if msg.type == "bye":
                count = msg.header.get("count")
                print(f"file_sink: sender said bye after {count} frames", file=sys.stderr)
                break
            if msg.type != "frame":
                continue
            try:
                write(folder, msg, args.raw)
                if size is None:
                    size = (msg.image.shape[1], msg.image.shape[0])
                    (folder / "info.txt").write_text(f"width {size[0]}\nheight {size[1]}\nformat rgb24\n")
            except OSError as exc:  # disk full, folder removed or not writable
                print(f"file_sink: cannot write frame {msg.index} to {folder}: {exc}", file=sys.stderr)
                failed = True
                break
            seen.add(msg.index)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close(0)
        ctx.term()
    if seen:
        missing = sorted(set(range(min(seen), max(seen) + 1)) - seen)
        note = f", {len(missing)} missing (first: {missing[:5]})" if missing else ""
        print(f"file_sink: wrote {len(seen)} frames, indices {min(seen)}-{max(seen)}{note}", file=sys.stderr)
    if failed:
        return 1
    if isinstance(count, int) and count > len(seen):
        # gaps at the start or the end (e.g. this receiver was restarted mid-stream) show only here
        print(f"file_sink: the sender sent {count} frames but {count - len(seen)} never arrived",
              file=sys.stderr)
        return 0 if args.sub else 1  # a publish sink drops frames by design; push is lossless
    return 0


if __name__ == "__main__":
    sys.exit(main())
