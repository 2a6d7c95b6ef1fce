#!/usr/bin/env python3
"""Colour-key mask plugin: marks every pixel near a key colour (a green screen, a coloured marker) as hole.

Request/reply mask source (plugins/PROTOCOL.md): binds a REP socket, answers each ``frame`` message with a
``mask`` message for the same stream/index/req. Imports only streamfill.protocol, pyzmq and numpy.

    python plugins/colorkey_mask.py --bind tcp://127.0.0.1:5560 --rgb 0,255,0 --tolerance 60
    python plugins/colorkey_mask.py --bind tcp://127.0.0.1:5560 --hsv 100,80,60:140,255,255
    streamfill process in.mp4 -o out.mp4 --mask-source zmq:tcp://127.0.0.1:5560

``--rgb R,G,B --tolerance T``: pixels within Euclidean distance T of the colour. ``--hsv LO:HI``: hue in
degrees 0-360, saturation and value 0-255 (hue ranges may wrap, e.g. 340,80,60:20,255,255 for red).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import numpy as np
import zmq

from streamfill import protocol


def rgb_to_hsv(image: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB -> float32 H (degrees 0-360), S and V (0-255)."""
    rgb = image.astype(np.float32)
    v = rgb.max(axis=2)
    c = v - rgb.min(axis=2)
    s = np.where(v > 0, c / np.maximum(v, 1e-6) * 255.0, 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(c, 1e-6)
    h = np.where(v == r, (g - b) / safe % 6, np.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60.0
    h = np.where(c > 0, h, 0.0)
    return np.stack([h, s, v], axis=2)


class ColourKey:
    def __init__(self, rgb=None, tolerance=60.0, hsv=None):
        self.rgb = None if rgb is None else np.asarray(rgb, np.float32)
        self.tolerance = float(tolerance)
        self.hsv = hsv

    def mask(self, image: np.ndarray) -> np.ndarray:
        """H x W uint8, 255 where the pixel matches the key."""
        if self.hsv is None:
            dist2 = ((image.astype(np.float32) - self.rgb) ** 2).sum(axis=2)
            hit = dist2 <= self.tolerance**2
        else:
            (h0, s0, v0), (h1, s1, v1) = self.hsv
            hsv = rgb_to_hsv(image)
            hue = (hsv[..., 0] >= h0) & (hsv[..., 0] <= h1) if h0 <= h1 else (hsv[..., 0] >= h0) | (hsv[..., 0] <= h1)
            hit = hue & (hsv[..., 1] >= s0) & (hsv[..., 1] <= s1) & (hsv[..., 2] >= v0) & (hsv[..., 2] <= v1)
        return np.where(hit, np.uint8(255), np.uint8(0))


def answer(parts: list, key: ColourKey, max_bytes: int) -> list:
    """The reply to one request (a mask, a hello, or an error)."""
    try:
        msg = protocol.decode(parts, max_bytes=max_bytes)
    except protocol.MessageError as exc:
        return protocol.error_reply(exc)
    if msg.type == "hello":
        return protocol.encode_hello(version=protocol.negotiate(msg.header.get("versions", [1])),
                                     name="colorkey_mask", req=msg.req, extra={"role": "mask"})
    if msg.type != "frame":
        return protocol.encode_error("unexpected_type", f"this plugin answers frames, not {msg.type}",
                                     stream=msg.stream or None, index=msg.index, req=msg.req)
    return protocol.encode_mask(key.mask(msg.image), index=msg.index, stream=msg.stream or None, req=msg.req,
                                encoding="raw")


def triple(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected three comma-separated numbers")
    return values


def hsv_range(text: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    lo, sep, hi = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LO:HI, each H,S,V (e.g. 100,80,60:140,255,255)")
    return triple(lo), triple(hi)


def at_least_zero(text: str) -> float:
    """argparse type of a distance or a delay: a number of 0 or more (nan refused too)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number of 0 or more")
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bind", default="tcp://127.0.0.1:5560", help="REP endpoint to listen on")
    p.add_argument("--rgb", type=triple, default=(0.0, 255.0, 0.0), help="key colour R,G,B (default 0,255,0)")
    p.add_argument("--tolerance", type=at_least_zero, default=60.0, help="RGB distance counted as the key colour")
    p.add_argument("--hsv", type=hsv_range, help="HSV range LO:HI as H,S,V:H,S,V (overrides --rgb)")
    p.add_argument("--delay", type=at_least_zero, default=0.0,
                   help="sleep this long per frame (simulates a slow detector)")
    p.add_argument("--max-bytes", type=int, default=protocol.DEFAULT_MAX_BYTES, help="largest payload accepted")
    args = p.parse_args(argv)
    key = ColourKey(args.rgb, args.tolerance, args.hsv)

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
        print(f"colorkey_mask: cannot bind {args.bind}: {exc}", file=sys.stderr)
        return 2
    print(f"colorkey_mask: answering on {args.bind}", file=sys.stderr, flush=True)
    try:
        while True:
            if not sock.poll(500):
                continue
            parts = sock.recv_multipart(copy=False)
            if args.delay:
                time.sleep(args.delay)
            sock.send_multipart(answer(parts, key, args.max_bytes), copy=False)
    except KeyboardInterrupt:
        return 0
    finally:
        sock.close(0)
        ctx.term()


if __name__ == "__main__":
    sys.exit(main())
