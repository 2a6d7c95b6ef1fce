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
        self.sock.ipv6 = ep.startswith("tcp://[")
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


@contextlib.contextmanager
def busy_serve(*, stays_busy: bool = True, lookahead: int = 0):
    """A stand-in serve whose queue stays full (other clients): ``hello`` is answered as serve answers it, every
    other request ``busy`` at once (echoing its ``req`` and ``index``). Yields the endpoint. Requests that do
    not decode still get their ``busy``."""
    import json
    import threading

    ctx = zmq.Context()
    full = ctx.socket(zmq.ROUTER)
    full.linger = 0
    endpoint = f"tcp://127.0.0.1:{full.bind_to_random_port('tcp://127.0.0.1')}"
    stop = threading.Event()

    def answer():
        while not stop.is_set():
            if not full.poll(50):
                continue
            route, _, *parts = full.recv_multipart()
            try:
                header = json.loads(bytes(parts[0]))
            except (ValueError, IndexError):
                header = {}
            header = header if isinstance(header, dict) else {}
            req = header.get("req") if isinstance(header.get("req"), int) else None
            if header.get("type") == "hello":
                reply = P.encode_hello(version=max(P.SUPPORTED_VERSIONS), name="full", req=req,
                                       extra={"role": "serve", "lookahead": lookahead, "mask_dilate": 4,
                                              "mask_threshold": 127})
            else:
                index = header.get("index") if isinstance(header.get("index"), int) else None
                reply = P.encode_error("busy", "queue full", req=req, index=index)
            full.send_multipart([route, b""] + reply)

    worker = threading.Thread(target=answer, daemon=True)
    worker.start()
    try:
        yield endpoint
    finally:
        stop.set()
        worker.join(2)
        full.close(0)
        ctx.term()
