"""Socket helpers shared by the transport classes: endpoint specs, socket options, timed receives."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import zmq

from streamfill.errors import InputError, TransportError

SOURCE_MODES = ("req", "sub")
SINK_MODES = ("push", "pub")
_ENDPOINT = re.compile(r"^(tcp://[^\s/]+:(\d+|\*)|ipc://\S+|inproc://\S+)$")


@dataclass(frozen=True)
class Spec:
    """A parsed ``zmq:[MODE:]ENDPOINT`` spec, e.g. ``zmq:sub:tcp://127.0.0.1:5561``."""

    mode: str
    endpoint: str


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if it is a ZeroMQ tcp://HOST:PORT or ipc://PATH address. (inproc:// reaches only sockets of
    the same ZeroMQ context, and each part of streamfill has its own: nothing could ever answer it.)"""
    if isinstance(endpoint, str) and endpoint.startswith("inproc://"):
        raise InputError(f"endpoint {endpoint!r}: inproc:// reaches only the same process's own ZeroMQ context, "
                         "which nothing else can join; use ipc://PATH or tcp://HOST:PORT")
    if not isinstance(endpoint, str) or not _ENDPOINT.match(endpoint):
        raise InputError(f"endpoint {endpoint!r}: expected tcp://HOST:PORT or ipc://PATH")
    if endpoint.startswith("tcp://"):
        port = endpoint.rsplit(":", 1)[1]
        # ZeroMQ takes the port modulo 65536 (99999 bound 34463); "*" or 0 asks for any free port
        if port != "*" and not (port.isdigit() and int(port) <= 65535):
            raise InputError(f"endpoint {endpoint!r}: the port must be 1-65535 (or * for any free one)")
    return endpoint


def parse_spec(spec: str, modes: tuple[str, ...]) -> Spec:
    """Parse ``zmq:ENDPOINT`` (first mode of ``modes``) or ``zmq:MODE:ENDPOINT``."""
    if not isinstance(spec, str) or not spec.startswith("zmq:"):
        raise InputError(f"{spec!r}: a ZeroMQ spec looks like zmq:[{'|'.join(modes)}:]ENDPOINT")
    rest = spec[4:]
    mode = modes[0]
    head, sep, tail = rest.partition(":")
    if sep and head in modes + SOURCE_MODES + SINK_MODES and not tail.startswith("//"):
        if head not in modes:
            raise InputError(f"{spec!r}: mode {head!r} is not one of {', '.join(modes)} here")
        mode, rest = head, tail
    return Spec(mode, check_endpoint(rest))


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on 127.0.0.0/8, ::1 or localhost."""
    if not endpoint.startswith("tcp://"):
        return True
    host = endpoint[6:].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def make_socket(ctx: zmq.Context, kind: int, *, sndhwm: int | None = None, rcvhwm: int | None = None,
                max_bytes: int | None = None) -> zmq.Socket:
    """A socket with LINGER=0 (nothing is left queued at close) and the given limits."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if sndhwm is not None:
        sock.setsockopt(zmq.SNDHWM, int(sndhwm))
    if rcvhwm is not None:
        sock.setsockopt(zmq.RCVHWM, int(rcvhwm))
    if max_bytes is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, int(max_bytes))
    return sock


def attach(sock: zmq.Socket, endpoint: str, *, bind: bool) -> str:
    """Bind or connect; returns the resolved endpoint (a bound tcp port 0 becomes the real port). An IPv6
    address (``tcp://[::1]:5555``) turns the socket's IPv6 on (ZeroMQ's default is off: "No such device")."""
    if endpoint.startswith("tcp://["):
        sock.setsockopt(zmq.IPV6, 1)
    try:
        if bind:
            sock.bind(endpoint)
            return sock.getsockopt_string(zmq.LAST_ENDPOINT)
        sock.connect(endpoint)
        return endpoint
    except zmq.ZMQError as exc:
        raise TransportError(f"cannot {'bind' if bind else 'connect'} {endpoint}: {exc}") from None


def recv_timed(sock: zmq.Socket, timeout: float) -> list | None:
    """The next multipart message (a list of zmq.Frame) within ``timeout`` seconds, else None."""
    if sock.poll(max(0, int(timeout * 1000)), zmq.POLLIN):
        return sock.recv_multipart(copy=False)
    return None


def strip_delimiter(parts: list) -> list:
    """Drop the empty delimiter frame that REQ/REP envelopes carry, if present."""
    if parts and len(parts[0]) == 0:
        return parts[1:]
    return parts


class Deadline:
    """Remaining time until a moment, on the monotonic clock."""

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at
