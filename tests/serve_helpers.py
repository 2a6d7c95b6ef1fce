"""What the serve tests share: a stand-in fill, a raw DEALER client and a running ServeService."""

from __future__ import annotations

import contextlib

import numpy as np
import zmq

from streamfill import protocol as P
from streamfill.config import TransportConfig
from streamfill.transport import ServeService


def invert_in_hole(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for completion: pixels under the mask are inverted."""
    out = image.copy()
    out[mask > 127] = 255 - out[mask > 127]
    return out


class Dealer:
    """A raw test client: DEALER with the REQ-style empty delimiter (``delimiter=False``: without it)."""

    def __init__(self, ctx: zmq.Context, ep: str, curve=None, delimiter: bool = True):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if curve is not None:
            self.sock.curve_publickey, self.sock.curve_secretkey = curve.public, curve.secret
            self.sock.curve_serverkey = curve.server_public
        self.sock.connect(ep)
        self.delimiter = delimiter

    def send(self, parts):
        self.sock.send_multipart(([b""] if self.delimiter else []) + list(parts), copy=False)

    def recv(self, timeout=5.0):
        if not self.sock.poll(int(timeout * 1000)):
            return None
        parts = self.sock.recv_multipart()
        if self.delimiter:
            assert parts[0] == b""
            parts = parts[1:]
        return P.decode(parts)

    def ask(self, parts, timeout=5.0):
        self.send(parts)
        return self.recv(timeout)

    def close(self):
        self.sock.close(0)


@contextlib.contextmanager
def service(ep="tcp://127.0.0.1:0", fill=invert_in_hole, **cfg):
    """A running ServeService on ``ep`` with ``fill`` and TransportConfig(**cfg)."""
    with ServeService(ep, fill, TransportConfig(**cfg)) as svc:
        yield svc
