#!/usr/bin/env python3
"""Motion mask plugin: frame differencing. A pixel whose brightness changed by more than a threshold since
the previous frame of the same stream is marked as hole (grown by a few pixels). The first frame of a
stream gets an empty mask.

Request/reply mask source (plugins/PROTOCOL.md): binds a REP socket and answers every ``frame`` with a
``mask`` for the same stream/index/req. Imports only streamfill.protocol, pyzmq and numpy.

    python plugins/motion_mask.py --bind tcp://127.0.0.1:5560 --threshold 25 --grow 4
    streamfill process in.mp4 -o out.mp4 --mask-source zmq:tcp://127.0.0.1:5560
"""

from __future__ import annotations

import argparse
import signal
import sys

import numpy as np
import zmq

from streamfill import protocol


def grey(image: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB -> H x W int16 luma (BT.601 weights, integer)."""
    r, g, b = (image[..., i].astype(np.int32) for i in range(3))
    return ((77 * r + 150 * g + 29 * b) >> 8).astype(np.int16)


def grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate a boolean H x W mask by ``radius`` pixels (square neighbourhood), numpy only."""
    if radius <= 0:
        return mask
    h, w = mask.shape
    rows = np.pad(mask, ((radius, radius), (0, 0)))
    tall = np.zeros_like(mask)
    for d in range(2 * radius + 1):
        tall |= rows[d:d + h]
    cols = np.pad(tall, ((0, 0), (radius, radius)))
    out = np.zeros_like(mask)
    for d in range(2 * radius + 1):
        out |= cols[:, d:d + w]
    return out


class MotionMasks:
    """Per stream, the luma of the last ``keep`` frames by index: a frame is compared with the latest kept
    frame before it, so a request sent again (streamfill resends the frames in flight after a timeout)
    gets the same mask as the first time."""

    def __init__(self, threshold: int = 25, radius: int = 4, max_streams: int = 64, keep: int = 4):
        self.threshold = threshold
        self.radius = radius
        self.max_streams = max_streams
        self.keep = max(2, keep)
        self.previous: dict[str, dict[int, np.ndarray]] = {}

    def mask(self, stream: str, index: int, image: np.ndarray) -> np.ndarray:
        """H x W uint8 mask (255 = moved) of ``image`` against the previous frame of ``stream``."""
        luma = grey(image)
        kept = self.previous.pop(stream, {})
        before = [i for i, old in kept.items() if i < index and old.shape == luma.shape]
        if not before:
            moved = np.zeros(luma.shape, bool)
        else:
            moved = grow(np.abs(luma - kept[max(before)]) > self.threshold, self.radius)
        if any(i > index for i in kept) or any(old.shape != luma.shape for old in kept.values()):
            kept = {i: old for i, old in kept.items() if i < index and old.shape == luma.shape}  # a seek back
        kept[index] = luma.astype(np.uint8)  # 0..255: half the memory of the int16 working copy
        for i in sorted(kept)[:-self.keep]:
            del kept[i]
        self.previous[stream] = kept
        while len(self.previous) > self.max_streams:  # bounded state: forget the oldest stream
            self.previous.pop(next(iter(self.previous)))
        return np.where(moved, np.uint8(255), np.uint8(0))


def answer(parts: list, motion: MotionMasks, max_bytes: int) -> list:
    try:
        msg = protocol.decode(parts, max_bytes=max_bytes)
    except protocol.MessageError as exc:
        return protocol.error_reply(exc)
    if msg.type == "hello":
        return protocol.encode_hello(version=protocol.negotiate(msg.header.get("versions", [1])),
                                     name="motion_mask", req=msg.req, extra={"role": "mask"})
    if msg.type == "bye":
        motion.previous.pop(msg.stream, None)
        return protocol.encode_bye(stream=msg.stream or None, req=msg.req)
    if msg.type != "frame":
        return protocol.encode_error("unexpected_type", f"this plugin answers frames, not {msg.type}",
                                     stream=msg.stream or None, index=msg.index, req=msg.req)
    mask = motion.mask(msg.stream, msg.index, msg.image)
    return protocol.encode_mask(mask, index=msg.index, stream=msg.stream or None, req=msg.req)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bind", default="tcp://127.0.0.1:5560", help="REP endpoint to listen on")
    p.add_argument("--threshold", type=int, default=25, help="brightness change (0-255) that counts as motion")
    p.add_argument("--grow", type=int, default=4, help="grow the mask by this many pixels")
    p.add_argument("--max-bytes", type=int, default=protocol.DEFAULT_MAX_BYTES, help="largest payload accepted")
    args = p.parse_args(argv)
    motion = MotionMasks(args.threshold, args.grow)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.linger = 0
    sock.setsockopt(zmq.MAXMSGSIZE, args.max_bytes)
    try:
        sock.bind(args.bind)
    except zmq.ZMQError as exc:  # a bad endpoint, or the port is taken (another copy running?)
        sock.close(0)
        ctx.term()
        print(f"motion_mask: cannot bind {args.bind}: {exc}", file=sys.stderr)
        return 2
    print(f"motion_mask: answering on {args.bind}", file=sys.stderr, flush=True)
    try:
        while True:
            if sock.poll(500):
                parts = sock.recv_multipart(copy=False)
                sock.send_multipart(answer(parts, motion, args.max_bytes), copy=False)
    except KeyboardInterrupt:
        return 0
    finally:
        sock.close(0)
        ctx.term()


if __name__ == "__main__":
    sys.exit(main())
