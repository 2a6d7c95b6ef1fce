"""Frame sinks that send output frames over ZeroMQ as ``frame`` messages (see plugins/PROTOCOL.md).

- ``PubSink`` binds a PUB socket: any number of live viewers connect and come and go. Each subscriber has
  a small queue (``pub_hwm`` frames); a slow subscriber misses frames, the pipeline never waits (only a
  clean close lingers, at most ``PUB_CLOSE_LINGER`` s, so the ``bye`` and the last frames get out).
- ``PushSink`` connects a PUSH socket to a receiver that binds PULL: lossless. When the receiver falls
  behind, ``write`` blocks (backpressure reaches the pipeline) for at most ``send_timeout`` seconds, then
  raises ``TransportError``. On a clean exit it sends ``bye`` (with the frame count) and waits up to
  ``send_timeout`` for the queued frames to leave, raising ``TransportError`` if they did not (ZeroMQ gives
  no delivery report: a receiver that stalls for that long may have lost the last frames and the bye); on an
  error exit it drops them at once.

``write`` sends the frame's image without copying it: do not modify the array afterwards.
Both implement ``FrameSink`` (use them as context managers).
"""

from __future__ import annotations

import contextlib
import time

import zmq

from streamfill import protocol
from streamfill.config import TransportConfig
from streamfill.errors import TransportError
from streamfill.transport._zmq import attach, check_endpoint, make_socket
from streamfill.types import Frame

PUB_CLOSE_LINGER = 1.0  # seconds a publish sink lingers at a clean close, so its bye reaches live subscribers
DRAIN_SHARE = 0.95  # a push sink whose close took this share of its linger had frames left when the linger ran out


class _ZmqSink:
    kind = zmq.PUSH

    def __init__(self, endpoint: str, config: TransportConfig | None = None, *, stream: str = "",
                 bind: bool = False):
        self.endpoint = check_endpoint(endpoint)
        self.config = config or TransportConfig()
        self.stream = stream
        self.bind = bind
        self.sent = 0
        self.bound_endpoint: str | None = None
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None

    def _make(self, ctx: zmq.Context) -> zmq.Socket:
        raise NotImplementedError

    def __enter__(self):
        self._ctx = zmq.Context()
        try:
            self._sock = self._make(self._ctx)
            self.bound_endpoint = attach(self._sock, self.endpoint, bind=self.bind)
        except BaseException:
            self._close(0)
            raise
        return self

    def _parts(self, frame: Frame) -> list:
        cfg = self.config
        return protocol.encode_frame(frame.image, index=frame.index, pts=frame.pts, time_base=frame.time_base,
                                     stream=self.stream or None, encoding=cfg.encoding,
                                     jpeg_quality=cfg.jpeg_quality, extra={"sent_at": round(time.time(), 6)})

    def _close(self, linger_ms: int) -> None:
        if self._sock is not None:
            self._sock.close(linger_ms)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def close(self) -> None:
        self._close(0)

    def _require_open(self) -> zmq.Socket:
        if self._sock is None:
            raise TransportError(f"{type(self).__name__} for {self.endpoint} is not open (use it in a with block)")
        return self._sock


class PubSink(_ZmqSink):
    """Publishes every frame (binds by default); never blocks. ``sent`` counts frames handed to ZeroMQ."""

    kind = zmq.PUB

    def __init__(self, endpoint: str, config: TransportConfig | None = None, *, stream: str = "",
                 bind: bool = True):
        super().__init__(endpoint, config, stream=stream, bind=bind)
        self.dropped = 0

    def _make(self, ctx: zmq.Context) -> zmq.Socket:
        return make_socket(ctx, zmq.PUB, sndhwm=self.config.pub_hwm)

    def write(self, frame: Frame) -> None:
        """Publish ``frame`` (image H x W x 3 uint8 RGB) as a ``frame`` message."""
        sock = self._require_open()
        try:
            sock.send_multipart(self._parts(frame), zmq.NOBLOCK, copy=False)
            self.sent += 1
        except zmq.Again:
            self.dropped += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._sock is not None and exc_type is None:
            with contextlib.suppress(zmq.Again):
                self._sock.send_multipart(protocol.encode_bye(stream=self.stream or None, count=self.sent),
                                          zmq.NOBLOCK)
            # LINGER=0 would throw away the bye and the last frames still queued for the subscribers that
            # keep up (they waited for a bye that never came); linger briefly, bounded, on a clean close
            self._close(int(min(PUB_CLOSE_LINGER, self.config.send_timeout) * 1000))
            return
        self._close(0)


class PushSink(_ZmqSink):
    """Sends every frame to one receiver (connects by default); lossless, with bounded backpressure."""

    kind = zmq.PUSH

    def _make(self, ctx: zmq.Context) -> zmq.Socket:
        sock = make_socket(ctx, zmq.PUSH, sndhwm=self.config.push_hwm)
        sock.setsockopt(zmq.SNDTIMEO, int(self.config.send_timeout * 1000))
        return sock

    def _send(self, parts: list, what: str) -> None:
        try:
            self._require_open().send_multipart(parts, copy=False)
        except zmq.Again:
            raise TransportError(f"push sink: the receiver at {self.endpoint} did not take {what} within "
                                 f"{self.config.send_timeout:g} s") from None

    def write(self, frame: Frame) -> None:
        """Send ``frame`` (image H x W x 3 uint8 RGB); blocks at most ``send_timeout`` s on backpressure."""
        self._send(self._parts(frame), f"frame {frame.index}")
        self.sent += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._sock is None:
            return
        if exc_type is not None:
            self._close(0)
            return
        try:
            self._send(protocol.encode_bye(stream=self.stream or None, count=self.sent), "the final bye")
        except TransportError:
            self._close(0)
            raise
        # Deliberate exception to LINGER=0: a lossless sink lets its queue drain, for a bounded time. ZeroMQ
        # reports nothing about what it threw away when the linger ran out, but closing returns as soon as the
        # queue is empty: a close that took the whole linger means frames (or the bye) may never have arrived.
        linger = self.config.send_timeout
        t0 = time.monotonic()
        self._close(int(linger * 1000))
        if time.monotonic() - t0 >= linger * DRAIN_SHARE:
            raise TransportError(f"push sink: the receiver at {self.endpoint} did not take the last frames within "
                                 f"{linger:g} s of the end; the last ones and the bye may be lost")
