"""ZeroMQ pieces of ``streamfill live``: a frame source and a small control socket.

- ``FrameSource``: frames arrive as protocol ``frame`` messages (plugins/PROTOCOL.md). ``zmq:sub:ENDPOINT``
  (the default) connects a SUB socket to a publisher that binds (e.g. another streamfill's ``--sink
  zmq:pub:...``); ``zmq:pull:ENDPOINT`` binds a PULL socket that senders connect PUSH sockets to. A ``bye``
  message ends the stream. Yields Frames (H x W x 3 uint8 RGB, writable copies) with the sender's pts and
  time base (index-based 1/30 s when it sends none); indices are made strictly increasing.
- ``ControlServer``: a REP socket (loopback only) taking one JSON object per request and answering one JSON
  object, e.g. ``{"cmd": "box", "box": [x, y, w, h]}`` -> ``{"ok": true}``. The handler runs in the
  server's thread; errors it raises (StreamfillError) are answered as ``{"ok": false, "error": "..."}``,
  any other exception as ``{"ok": false, "error": "internal error (...)"}`` (the socket keeps answering).

Sockets have LINGER=0; every receive has a timeout; both watch a stop event.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction

import numpy as np
import zmq

from streamfill import protocol
from streamfill.config import TransportConfig
from streamfill.errors import InputError, StreamfillError, TransportError
from streamfill.transport._zmq import Deadline, attach, is_loopback, make_socket, parse_spec, recv_timed
from streamfill.types import Frame

FRAME_SOURCE_MODES = ("sub", "pull")
DEFAULT_TIME_BASE = Fraction(1, 30)


class FrameSource:
    """Frames from ZeroMQ (see the module docstring). ``frames(stop)`` is a generator that owns its socket
    (create and use it in one thread); it raises TransportError when nothing arrives for ``timeout`` s.

    Counters: ``received``, ``rejected`` (messages that failed validation; ``last_rejection`` says why).
    """

    def __init__(self, spec: str, config: TransportConfig | None = None, *, timeout: float = 5.0,
                 stream: str = "", poll: float = 0.05) -> None:
        parsed = parse_spec(spec, FRAME_SOURCE_MODES)
        self.mode, self.endpoint = parsed.mode, parsed.endpoint
        self.config = config or TransportConfig()
        self.timeout = float(timeout)
        self.stream = stream
        self.poll = float(poll)
        self.received = 0
        self.rejected = 0
        self.last_rejection = ""
        self.bound_endpoint: str | None = None
        self.ready = threading.Event()

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        stop = stop or threading.Event()
        cfg = self.config
        ctx = zmq.Context()
        kind = zmq.SUB if self.mode == "sub" else zmq.PULL
        sock = make_socket(ctx, kind, rcvhwm=4, max_bytes=cfg.max_message_bytes)
        try:
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            self.bound_endpoint = attach(sock, self.endpoint, bind=self.mode == "pull")
            self.ready.set()
            last_index = -1
            silent = Deadline(self.timeout)
            while not stop.is_set():
                parts = recv_timed(sock, min(self.poll, silent.left()))
                if parts is None:
                    if silent.expired():
                        raise TransportError(f"frame source {self.endpoint}: nothing arrived within "
                                             f"{self.timeout:g} s")
                    continue
                silent = Deadline(self.timeout)
                try:
                    msg = protocol.decode(parts, max_bytes=cfg.max_message_bytes, max_side=cfg.max_side)
                except protocol.MessageError as exc:
                    self.rejected += 1
                    self.last_rejection = str(exc)
                    continue
                if self.stream and msg.stream != self.stream:
                    continue
                if msg.type == "bye":
                    return
                if msg.type != "frame":
                    continue
                index = msg.index if msg.index > last_index else last_index + 1
                last_index = index
                tb = msg.time_base or DEFAULT_TIME_BASE
                pts = msg.pts if msg.pts is not None else index
                self.received += 1
                yield Frame(image=np.array(msg.image, dtype=np.uint8, copy=True), pts=int(pts), time_base=tb,
                            index=index)
        finally:
            sock.close(0)
            ctx.destroy(linger=0)


class ControlServer:
    """A loopback REP socket answering JSON commands with ``handler(request: dict) -> dict`` (see the module
    docstring). Use as a context manager; ``endpoint`` is the bound address (a tcp port 0 is resolved)."""

    def __init__(self, bind: str, handler: Callable[[dict], dict], *, poll: float = 0.05,
                 max_bytes: int = 65536) -> None:
        if not is_loopback(bind):
            raise InputError(f"--control {bind}: the control socket must be on loopback (127.0.0.1, ipc://)")
        parse_spec(f"zmq:{bind}", ("rep",))  # validates the endpoint
        self.bind = bind
        self.handler = handler
        self.poll = poll
        self.max_bytes = max_bytes
        self.endpoint: str | None = None
        self.requests = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None
        self.error: BaseException | None = None

    def __enter__(self) -> ControlServer:
        self._ctx = zmq.Context()
        self._sock = make_socket(self._ctx, zmq.REP, max_bytes=self.max_bytes)
        try:
            self.endpoint = attach(self._sock, self.bind, bind=True)
        except BaseException:
            self._sock.close(0)
            self._ctx.destroy(linger=0)
            raise
        self._thread = threading.Thread(target=self._loop, name="streamfill-live-control", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        sock = self._sock
        try:
            while not self._stop.is_set():
                parts = recv_timed(sock, self.poll)
                if parts is None:
                    continue
                sock.send(json.dumps(self._answer(parts)).encode())
        except BaseException as exc:  # noqa: BLE001 - reported by close()
            self.error = exc
        finally:
            sock.close(0)

    def _answer(self, parts: list) -> dict:
        self.requests += 1
        try:
            request = json.loads(bytes(parts[0].buffer if hasattr(parts[0], "buffer") else parts[0]))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # deep nesting: RecursionError
            return {"ok": False, "error": f"not JSON: {str(exc)[:200]}"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "send one JSON object, e.g. {\"cmd\": \"box\", \"box\": [x, y, w, h]}"}
        try:
            reply = self.handler(request)
        except StreamfillError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one request must not end the control socket for the run
            return {"ok": False, "error": f"internal error ({type(exc).__name__}: {str(exc)[:200]})"}
        return {"ok": True, **(reply or {})}

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(1.0, 4 * self.poll))
        if self._ctx is not None:
            self._ctx.destroy(linger=0)
            self._ctx = None
