"""Mask sources fed by external ZeroMQ plugins (see plugins/PROTOCOL.md). Both implement ``MaskSource``.

- ``ReqMaskSource`` (request/reply): streamfill sends each frame to a plugin (a REP or ROUTER socket that
  the plugin binds) and the plugin answers with that frame's mask. A DEALER keeps up to ``window`` frames
  in flight; when the plugin is silent for ``timeout`` seconds the socket is thrown away, a fresh one
  connects and the frames in flight are sent again ("lazy pirate"), so a restarted plugin is picked up.
- ``SubMaskSource`` (subscribe): a detector publishes masks keyed by frame index on a PUB socket it binds;
  masks that arrive ahead of their frame wait in a bounded buffer.

Offline (``live=False``): every frame waits for its own mask; after ``timeout x (1 + retries)`` seconds
without it the run stops with ``TransportError`` -- no frame is ever paired with a guessed mask.
Live (``live=True``): a frame waits at most ``live_timeout``; then the last mask received is reused (an
empty mask before the first one) and ``misses`` counts it.

Masks yielded are H x W uint8 with 255 = fill, the frame's H x W; they may be read-only views.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import zmq

from streamfill import protocol
from streamfill.config import TransportConfig
from streamfill.errors import MaskError, ProtocolError, TransportError
from streamfill.transport._zmq import Deadline, attach, check_endpoint, make_socket, recv_timed, strip_delimiter
from streamfill.types import Frame, Mask


def _frame_parts(frame: Frame, cfg: TransportConfig, *, stream: str, req: int | None) -> list:
    return protocol.encode_frame(frame.image, index=frame.index, pts=frame.pts, time_base=frame.time_base,
                                 stream=stream or None, req=req, encoding=cfg.encoding,
                                 jpeg_quality=cfg.jpeg_quality)


def _check_fits(mask: np.ndarray, frame: Frame, endpoint: str) -> None:
    if mask.shape != frame.image.shape[:2]:
        raise MaskError(f"mask source at {endpoint} sent a {mask.shape[1]}x{mask.shape[0]} mask for frame "
                        f"{frame.index}, which is {frame.width}x{frame.height}")


@dataclass
class _Pending:
    frame: Frame
    req: int
    deadline: Deadline
    tries: int = 1
    mask: np.ndarray | None = field(default=None)


class ReqMaskSource:
    """Asks a plugin for each frame's mask (request/reply, lazy-pirate retries). See the module docstring.

    Counters after (or during) ``pair``: ``misses`` (live fallbacks), ``reconnects``, ``stale`` (replies to
    requests no longer waited for, dropped).
    """

    def __init__(self, endpoint: str, config: TransportConfig | None = None, *, live: bool = False,
                 stream: str = ""):
        self.endpoint = check_endpoint(endpoint)
        self.config = config or TransportConfig()
        self.live = live
        self.stream = stream
        self.misses = 0
        self.reconnects = 0
        self.stale = 0

    def _connect(self, ctx: zmq.Context) -> zmq.Socket:
        window = self.config.window
        sock = make_socket(ctx, zmq.DEALER, sndhwm=window + 1, rcvhwm=window + 1,
                           max_bytes=self.config.max_message_bytes)
        try:
            attach(sock, self.endpoint, bind=False)  # (a bind address such as tcp://*:5560: one line)
        except TransportError:
            sock.close(0)
            raise
        return sock

    def _send(self, sock: zmq.Socket, frame: Frame, req: int) -> bool:
        parts = [b""] + _frame_parts(frame, self.config, stream=self.stream, req=req)
        try:
            sock.send_multipart(parts, zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            return False

    def _reply(self, parts: list) -> protocol.Message | None:
        """The decoded reply, or None for replies that are not for us (hello, bye)."""
        try:
            msg = protocol.decode(strip_delimiter(parts), max_bytes=self.config.max_message_bytes,
                                  max_side=self.config.max_side)
        except protocol.MessageError as exc:
            if self.live:
                self.stale += 1
                return None
            raise ProtocolError(f"mask source at {self.endpoint} sent a malformed reply: {exc}") from None
        if msg.type in ("mask", "error") and msg.req is not None:
            return msg
        self.stale += 1
        return None

    def pair(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]:
        ctx = zmq.Context()
        try:
            if self.live:
                yield from self._pair_live(ctx, frames)
            else:
                yield from self._pair_offline(ctx, frames)
        finally:
            ctx.destroy(linger=0)

    def _pair_offline(self, ctx: zmq.Context, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]:
        cfg = self.config
        sock = self._connect(ctx)
        it = iter(frames)
        pending: deque[_Pending] = deque()
        by_req: dict[int, _Pending] = {}
        next_req = 0
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < cfg.window:
                    frame = next(it, None)
                    if frame is None:
                        exhausted = True
                        break
                    item = _Pending(frame, next_req, Deadline(cfg.timeout))
                    next_req += 1
                    self._send(sock, frame, item.req)  # a full queue counts as a lost request: retried
                    pending.append(item)
                    by_req[item.req] = item
                if not pending:
                    return
                head = pending[0]
                if head.mask is not None:
                    pending.popleft()
                    del by_req[head.req]
                    yield head.frame, head.mask
                    continue
                if head.deadline.expired():
                    if head.tries > cfg.retries:
                        waited = cfg.timeout * (cfg.retries + 1)
                        raise TransportError(
                            f"mask source at {self.endpoint} sent no mask for frame {head.frame.index} within "
                            f"{waited:g} s ({head.tries} tries); an offline run needs a mask for every frame")
                    sock.close(0)
                    sock = self._connect(ctx)
                    self.reconnects += 1
                    head.tries += 1
                    for item in pending:
                        if item.mask is None:
                            item.deadline = Deadline(cfg.timeout)
                            self._send(sock, item.frame, item.req)
                    continue
                parts = recv_timed(sock, head.deadline.left())
                if parts is None:
                    continue
                msg = self._reply(parts)
                item = by_req.get(msg.req) if msg is not None else None
                if item is None:
                    self.stale += msg is not None
                    continue
                if msg.type == "error":
                    raise MaskError(f"mask source at {self.endpoint} refused frame {item.frame.index}: "
                                    f"{msg.header.get('code')}: {msg.header.get('message', '')}")
                if msg.index != item.frame.index:
                    raise MaskError(f"mask source at {self.endpoint} answered frame {item.frame.index} "
                                    f"(req {item.req}) with the mask of frame {msg.index}")
                _check_fits(msg.mask, item.frame, self.endpoint)
                item.mask = msg.mask
        finally:
            sock.close(0)

    def _pair_live(self, ctx: zmq.Context, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]:
        cfg = self.config
        sock = self._connect(ctx)
        outstanding: dict[int, tuple[int, Deadline]] = {}  # req -> (frame index, expiry)
        last: np.ndarray | None = None
        last_index = -1
        next_req = 0
        try:
            for frame in frames:
                req = None
                if len(outstanding) < cfg.window and self._send(sock, frame, next_req):
                    req = next_req
                    outstanding[req] = (frame.index, Deadline(cfg.timeout))
                next_req += 1
                wait = Deadline(cfg.live_timeout)
                mine = None
                while True:
                    parts = recv_timed(sock, wait.left())
                    if parts is None:
                        break
                    msg = self._reply(parts)
                    if msg is None or outstanding.pop(msg.req, None) is None:
                        self.stale += msg is not None
                        continue
                    if msg.type != "mask" or msg.mask.shape != frame.image.shape[:2]:
                        continue
                    if msg.req == req:
                        mine = msg.mask
                        break
                    if msg.index is not None and msg.index > last_index:  # a late answer: newest known
                        last, last_index = msg.mask, msg.index
                if mine is not None:
                    last, last_index = mine, frame.index
                    yield frame, mine
                    continue
                self.misses += 1
                if any(d.expired() for _, d in outstanding.values()):
                    sock.close(0)  # the plugin is silent: start over with a fresh socket
                    sock = self._connect(ctx)
                    self.reconnects += 1
                    outstanding.clear()
                fits = last is not None and last.shape == frame.image.shape[:2]
                yield frame, last if fits else np.zeros(frame.image.shape[:2], np.uint8)
        finally:
            sock.close(0)


class SubMaskSource:
    """Takes masks a detector publishes (SUB connects to the detector's PUB), matched by frame index.

    Messages for other streams (when ``stream`` is set) are ignored: one publisher may serve several.
    Messages that fail validation are ignored and counted in ``rejected`` (``last_rejection`` says why);
    masks for frames already passed are ``late``;
    when more than ``sub_buffer`` masks wait, those furthest ahead are ``dropped``.
    """

    def __init__(self, endpoint: str, config: TransportConfig | None = None, *, live: bool = False,
                 stream: str = ""):
        self.endpoint = check_endpoint(endpoint)
        self.config = config or TransportConfig()
        self.live = live
        self.stream = stream
        self.misses = 0
        self.rejected = 0
        self.late = 0
        self.dropped = 0
        self.last_rejection = ""

    def pair(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]:
        cfg = self.config
        ctx = zmq.Context()
        sock = make_socket(ctx, zmq.SUB, rcvhwm=cfg.sub_buffer, max_bytes=cfg.max_message_bytes)
        buffer: dict[int, np.ndarray] = {}
        last: np.ndarray | None = None
        ended = False
        try:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            attach(sock, self.endpoint, bind=False)
            for frame in frames:
                i = frame.index
                for k in [k for k in buffer if k < i]:
                    del buffer[k]
                wait = Deadline(cfg.live_timeout if self.live else cfg.timeout * (cfg.retries + 1))
                while i not in buffer:
                    parts = recv_timed(sock, wait.left()) if not ended or self.live else None
                    if parts is None:
                        break
                    ended = self._take(parts, i, buffer) or ended
                mask = buffer.pop(i, None)
                if mask is not None and self.live and mask.shape != frame.image.shape[:2]:
                    mask = None  # a live run treats a mask of the wrong size as a miss
                if mask is not None:
                    _check_fits(mask, frame, self.endpoint)
                    last = mask
                    yield frame, mask
                    continue
                if not self.live:
                    if ended:
                        why = "it said bye"
                    elif buffer:  # later frames' masks came, this one did not
                        why = (f"masks for later frames arrived (from frame {min(buffer)}) but none for this one "
                               f"within {wait_s(cfg):g} s")
                    else:
                        why = f"nothing arrived within {wait_s(cfg):g} s"
                    extra = f"; {self.rejected} messages rejected (last: {self.last_rejection})" \
                        if self.rejected else ""
                    raise TransportError(f"mask source at {self.endpoint} published no mask for frame {i}: "
                                         f"{why}{extra}; an offline run needs a mask for every frame")
                self.misses += 1
                fits = last is not None and last.shape == frame.image.shape[:2]
                yield frame, last if fits else np.zeros(frame.image.shape[:2], np.uint8)
        finally:
            sock.close(0)
            ctx.destroy(linger=0)

    def _take(self, parts: list, current: int, buffer: dict[int, np.ndarray]) -> bool:
        """Store one published message; True when it is the publisher's bye."""
        try:
            msg = protocol.decode(parts, max_bytes=self.config.max_message_bytes, max_side=self.config.max_side)
        except protocol.MessageError as exc:
            self.rejected += 1
            self.last_rejection = str(exc)
            return False
        if self.stream and msg.stream != self.stream:
            return False
        if msg.type == "bye":
            return True
        if msg.type != "mask":
            return False
        if msg.index < current:
            self.late += 1
            return False
        buffer[msg.index] = msg.mask
        while len(buffer) > self.config.sub_buffer:
            del buffer[max(buffer)]
            self.dropped += 1
        return False


def wait_s(cfg: TransportConfig) -> float:
    """How long an offline run waits for one mask: ``timeout x (1 + retries)`` seconds."""
    return cfg.timeout * (cfg.retries + 1)
