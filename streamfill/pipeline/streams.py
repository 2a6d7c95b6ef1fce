"""Per-stream temporal completion for ``streamfill serve --temporal fast|quality`` (:class:`TemporalFill`):
each client stream keeps its own completion running in a ``Feeder``, restarted on a seek or a new clip, bounded
in number and expired when idle. It picks no classes: ``build.make_temporal_fill`` hands it the completions."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from streamfill.pipeline.feed import Feeder
from streamfill.types import Frame, Mask


@dataclass
class _Stream:
    """One serve stream's temporal completion (``TemporalFill``): the feeder running it, the requests
    whose frames it holds (headers only, oldest first), and where the stream must continue."""

    feeder: Feeder
    lookahead: bool
    next_index: int
    held: deque = field(default_factory=deque)
    used: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    size: tuple[int, int] | None = None  # (h, w) of its frames


class TemporalFill:
    """Temporal completion per stream for ``streamfill serve --temporal fast|quality``.

    Each stream (the ``frame`` messages' ``stream`` id, or the ``key`` given: serve passes the client's
    connection with it, so that two clients using the same id never share pictures) runs its own temporal
    completion, fed one frame at
    a time (``pipeline.feed.Feeder``); ``open_completion(lookahead)`` makes one (``build.make_temporal_fill``
    picks them) and ``prepare_mask(mask)`` readies each mask:

    - look-back (``submit(..., lookahead=False)``, or calling the object as ``fill(image, mask, message)``):
      as live runs (``temporal.live``), every frame is answered at once from it and earlier frames;
    - look-ahead (``lookahead=True``): what ``process`` runs on a clip (the window, restarts at scene cuts),
      so frame t is answered once frame t + ``lookahead`` (frames) has come, or at ``drain``.

    ``submit`` returns ``[(header, result)]`` for the frames completed now, oldest first, each with the
    header of its own request (``result``: H x W x 3 uint8 RGB, or the exception that failed it: when the
    completion fails, every frame it held fails with this one and the stream starts afresh). A stream
    restarts, dropping what it held unanswered, when a frame's ``index`` does not follow the previous one (a
    seek, a new clip) or its mode changes; when the frame size changes, it first answers what it
    held. The ``max_streams`` most recently used streams are kept, and
    ``expire`` drops streams idle for ``idle`` seconds (a client that vanished), so at most ``max_streams``
    completions (each ``2 * window + 2`` frames) are held. Thread-safe; one stream is filled by one caller
    at a time.
    """

    takes_message = True

    def __init__(self, open_completion: Callable[[bool], Any], prepare_mask: Callable[[np.ndarray], Mask], *,
                 lookahead: int, max_streams: int = 4, idle: float = 60.0) -> None:
        self.open_completion, self.prepare_mask = open_completion, prepare_mask
        self.lookahead = lookahead
        self.max_streams, self.idle = max(1, int(max_streams)), float(idle)
        self._streams: dict[Hashable, _Stream] = {}
        self._guard = threading.Lock()

    def __len__(self) -> int:
        return len(self._streams)

    def _open(self, lookahead: bool, index: int) -> _Stream:
        return _Stream(Feeder(self.open_completion(lookahead).stream, name="streamfill-serve-stream"), lookahead,
                       index)

    def _take(self, key: Hashable, index: int, lookahead: bool) -> _Stream:
        now = time.monotonic()
        with self._guard:
            state = self._streams.pop(key, None)
            if state is None or state.next_index != index or state.lookahead != lookahead or state.feeder.done:
                if state is not None:
                    state.feeder.abort()
                state = self._open(lookahead, index)
            state.used = now
            self._streams[key] = state  # most recently used last
            while len(self._streams) > self.max_streams:
                self._streams.pop(next(iter(self._streams))).feeder.abort()
        return state

    def submit(self, image, mask, message, *, lookahead: bool = False, key=None) -> list[tuple[dict, object]]:
        """Feed one ``frame`` message (image H x W x 3 uint8 RGB, not modified; mask H x W uint8, 255 =
        hole); returns the frames completed now as ``[(header, image or exception)]`` (see the class). ``key``
        names the stream (default: the message's ``stream`` id; serve scopes it by the client's connection)."""
        key, index = (message.stream if key is None else key), message.index
        flushed = []
        held = self._streams.get(key)
        if (held is not None and held.size is not None and held.size != image.shape[:2]
                and held.lookahead == lookahead and held.next_index == index):
            # a new frame size (a new clip on the same stream id): the frames held are answered at their own
            # size first (a look-ahead completion failed every one of them on the mismatch)
            flushed = self.drain(key)
        state = self._take(key, index, lookahead)
        with state.lock:
            state.size = image.shape[:2]
            tb = message.time_base or Fraction(1, 1)
            frame = Frame(image=image, pts=message.pts if message.pts is not None else index, time_base=tb,
                          index=index)
            state.held.append(message.header)
            state.next_index = index + 1
            try:
                done = state.feeder.push(frame, self.prepare_mask(mask))
            except Exception as exc:  # noqa: BLE001 - every held frame fails with it; the stream restarts
                return flushed + self._fail(key, state, exc)
            return flushed + [(state.held.popleft(), out.image) for out in done]

    def __call__(self, image, mask, message, key=None):
        """Look-back: the filled image of this frame (raises the completion's failure)."""
        (_, out), = self.submit(image, mask, message, key=key)
        if isinstance(out, BaseException):
            raise out
        return out

    def drain(self, key: Hashable, *, discard: bool = False) -> list[tuple[dict, object]]:
        """End stream ``key``: its held frames completed (as ``submit`` returns them), or dropped unanswered
        with ``discard``; ``[]`` for a stream not held."""
        with self._guard:
            state = self._streams.pop(key, None)
        if state is None:
            return []
        with state.lock:
            if discard:
                state.feeder.abort()
                return []
            try:
                done = state.feeder.finish()
            except Exception as exc:  # noqa: BLE001
                return self._fail(key, state, exc)
            return [(state.held.popleft(), out.image) for out in done]

    def _fail(self, key: Hashable, state: _Stream, exc: Exception) -> list[tuple[dict, object]]:
        state.feeder.abort()
        with self._guard:
            if self._streams.get(key) is state:
                del self._streams[key]
        lost = [(header, exc) for header in state.held]
        state.held.clear()
        return lost

    def expire(self, now: float | None = None) -> int:
        """Drop streams idle for more than ``idle`` seconds; returns how many."""
        now = time.monotonic() if now is None else now
        with self._guard:
            old = [k for k, s in self._streams.items() if now - s.used > self.idle and not s.lock.locked()]
            for key in old:
                self._streams.pop(key).feeder.abort()
        return len(old)

    def close(self) -> None:
        """Stop every stream (held frames are dropped)."""
        with self._guard:
            streams, self._streams = list(self._streams.values()), {}
        for state in streams:
            state.feeder.abort()
