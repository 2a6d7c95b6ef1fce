#!/usr/bin/env python3
"""Host client: how an editing tool sends a frame sequence to ``streamfill serve`` and collects results.

Connects a DEALER socket, says hello (version negotiation, limits), then keeps up to ``--window`` frames
in flight (each a ``frame`` message: image + mask), and checks that results come back in the order of
their (latest) sends with the right req/index and that pixels outside the hole are untouched. A request
that gets no answer within ``--timeout`` seconds is resent on a fresh socket (up to ``--retries`` times);
``busy`` errors are retried after a short pause (a resent frame then comes after the later frames that
serve took: PROTOCOL.md 6.1, only ``busy`` overtakes), for at most ``--timeout`` x (``--retries`` + 1) seconds of
nothing but ``busy``. Imports only streamfill.protocol, pyzmq and numpy.

    streamfill serve --bind tcp://127.0.0.1:5555 &
    python plugins/host_client.py --connect tcp://127.0.0.1:5555 --frames 100 --size 640x360
    python plugins/host_client.py --connect tcp://HOST:5555 --curve-keys keys/ --encoding png --out results/

The frames are synthetic (a moving square over a gradient; the mask covers the square) unless you adapt
``frames()`` to your tool's own pictures.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import zmq
import zmq.auth

from streamfill import protocol


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


def frames(count: int, width: int, height: int):
    """(image H x W x 3 uint8 RGB, mask H x W uint8 255 = fill) pairs: a red square moving over a gradient."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    background = np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                                 np.full((height, width, 1), 128, np.float32)], axis=2).astype(np.uint8)
    side = max(4, min(width, height) // 6)
    for i in range(count):
        image = background.copy()
        mask = np.zeros((height, width), np.uint8)
        x0 = (i * 3) % max(1, width - side)
        y0 = (height - side) // 2
        image[y0:y0 + side, x0:x0 + side] = (255, 0, 0)
        mask[y0:y0 + side, x0:x0 + side] = 255
        yield image, mask


class Client:
    """A DEALER to serve with a request window and lazy-pirate retries (fresh socket after a timeout)."""

    def __init__(self, endpoint: str, timeout: float, retries: int, curve_keys: str | None):
        self.endpoint, self.timeout, self.retries = endpoint, timeout, retries
        self.ctx = zmq.Context()
        self.curve = None
        if curve_keys:
            public, secret = zmq.auth.load_certificate(Path(curve_keys) / "client.key_secret")
            server_public, _ = zmq.auth.load_certificate(Path(curve_keys) / "server.key")
            self.curve = (public, secret, server_public)
        self.sock = self._connect()

    def _connect(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.linger = 0
        if self.curve:
            sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = self.curve
        sock.connect(self.endpoint)
        return sock

    def reconnect(self) -> None:
        self.sock.close(0)
        self.sock = self._connect()

    def send(self, parts: list) -> None:
        self.sock.send_multipart([b""] + parts, copy=False)  # empty delimiter: a REQ-style envelope

    def recv(self, timeout: float):
        if not self.sock.poll(int(timeout * 1000)):
            return None
        parts = self.sock.recv_multipart(copy=False)
        return protocol.decode(parts[1:] if len(parts[0]) == 0 else parts)

    def hello(self) -> dict:
        tries = 0
        busy_until = time.monotonic() + self.timeout * (self.retries + 1)
        while tries <= self.retries:
            self.send(protocol.encode_hello(name="host_client", req=0))
            msg = self.recv(self.timeout)
            if msg is not None and msg.type == "error" and msg.header.get("code") == "busy":
                # any request can meet a full queue, hello included (PROTOCOL.md 6.1): resend it, bounded
                if time.monotonic() > busy_until:
                    raise SystemExit(f"host_client: serve at {self.endpoint} stayed busy (its queue is full)")
                time.sleep(0.05)
                continue
            tries += 1
            if msg is not None:
                if msg.type == "error":
                    raise SystemExit(f"host_client: serve refused hello: {msg.header}")
                return msg.header
            self.reconnect()
        raise SystemExit(f"host_client: no answer from {self.endpoint}")

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return value


def frame_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not (sep and w.isdigit() and h.isdigit() and int(w) >= 16 and int(h) >= 16):
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, each at least 16 (e.g. 640x360)")
    return int(w), int(h)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connect", default="tcp://127.0.0.1:5555", help="the serve endpoint")
    p.add_argument("--frames", type=positive, default=100)
    p.add_argument("--size", type=frame_size, default="640x360", help="WIDTHxHEIGHT of the synthetic frames")
    p.add_argument("--window", type=positive, default=4, help="frames in flight at once")
    p.add_argument("--encoding", default="raw", choices=protocol.ENCODINGS, help="payload encoding")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a result before resending")
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--curve-keys", metavar="DIR", help="CURVE key folder (server.key, client.key_secret)")
    p.add_argument("--stream", default="host", help="stream id sent with every frame")
    p.add_argument("--out", metavar="DIR", help="write the results as PNG files here")
    args = p.parse_args(argv)
    width, height = args.size
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)

    client = Client(args.connect, args.timeout, args.retries, args.curve_keys)
    try:
        info = client.hello()
        print(f"host_client: connected to {info.get('name')} (protocol v{info.get('version')}, "
              f"encodings {info.get('encodings')})", file=sys.stderr)
        grown = int(info.get("mask_dilate", 0)) + 1
        source = iter(frames(args.frames, width, height))
        inflight: deque[dict] = deque()  # oldest first: {req, image, mask, parts, sent, tries, seq}
        done = busy = 0
        busy_since = None  # when serve began answering nothing but busy
        req = 1
        sends = itertools.count()  # the order of sends: replies (but busy) come back in it
        last = -1
        latencies = []
        t0 = time.monotonic()
        while True:
            while len(inflight) < args.window:
                item = next(source, None)
                if item is None:
                    break
                image, mask = item
                parts = protocol.encode_frame(image, index=req - 1, pts=req - 1, time_base=(1, 25), mask=mask,
                                              stream=args.stream, req=req, encoding=args.encoding,
                                              mask_encoding="png" if args.encoding != "raw" else "raw")
                client.send(parts)
                inflight.append({"req": req, "image": image, "mask": mask, "parts": parts,
                                 "sent": time.monotonic(), "tries": 1, "seq": next(sends)})
                req += 1
            if not inflight:
                break
            head = inflight[0]
            msg = client.recv(max(0.0, head["sent"] + args.timeout - time.monotonic()))
            if msg is None:
                if head["tries"] > args.retries:
                    raise SystemExit(f"host_client: no result for frame {head['req'] - 1} after "
                                     f"{head['tries']} tries")
                client.reconnect()  # lazy pirate: a fresh socket, then resend everything in flight
                for item in inflight:
                    item["tries"] += 1
                    item["sent"] = time.monotonic()
                    item["seq"] = next(sends)
                    client.send(item["parts"])
                continue
            item = next((i for i in inflight if i["req"] == msg.req), None)
            if item is None:
                continue  # a late duplicate from before a resend
            if msg.type == "error" and msg.header.get("code") == "busy":
                busy += 1
                # busy replies come at once, so the head's timeout never strikes: bound them as hostlink does
                now = time.monotonic()
                busy_since = now if busy_since is None else busy_since
                if now - busy_since > args.timeout * (args.retries + 1):
                    raise SystemExit(f"host_client: serve at {args.connect} stayed busy for {now - busy_since:.0f} s "
                                     "(its queue is full: other clients, or a --queue smaller than --window)")
                time.sleep(0.01)
                item["seq"] = next(sends)
                client.send(item["parts"])
                continue
            busy_since = None
            if msg.type == "error":
                raise SystemExit(f"host_client: frame {msg.index} failed: {msg.header.get('code')}: "
                                 f"{msg.header.get('message')}")
            if item["seq"] < last or msg.index != item["req"] - 1:
                raise SystemExit(f"host_client: result {msg.req} (index {msg.index}) arrived out of order")
            last = item["seq"]
            inflight.remove(item)
            head = item
            outside = ~grow(head["mask"] > 0, grown)  # serve grows masks by mask_dilate before filling
            if args.encoding == "raw" and not np.array_equal(msg.image[outside], head["image"][outside]):
                raise SystemExit(f"host_client: frame {msg.index}: pixels outside the hole changed")
            latencies.append(time.monotonic() - head["sent"])
            if out:
                (out / f"result_{msg.index:06d}.png").write_bytes(protocol.encode_png(msg.image, level=1))
            done += 1
        seconds = time.monotonic() - t0
        lat = sorted(latencies)
        print(f"host_client: {done} frames in order in {seconds:.2f} s ({done / seconds:.1f} fps), latency "
              f"median {lat[len(lat) // 2] * 1000:.1f} ms, {busy} busy resends", file=sys.stderr)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
