"""Drive a pull-style completion (``stream(pairs) -> frames``) one input at a time, from callers that get
their frames one by one (``streamfill serve`` answering requests).

A completion with a look-ahead window (``temporal.TemporalCompletion``, ``pipeline.shots.ShotSplit``) pulls
several pairs before it yields a frame, and at a scene cut or at the end it yields several at once; a
generator cannot be paused inside such a nested pull, so ``Feeder`` runs ``stream`` in its own thread and
hands pairs in and frames out through a condition variable. ``push`` returns every frame the completion
produced before it asked for the next pair (none while it fills its window); ``finish`` ends the input and
returns the rest; ``abort`` stops it without computing what it holds. Frames keep their pts/time_base/index.

Memory: the thread holds what the completion holds (for ``TemporalCompletion`` at most ``2 * window + 2``
frames); frames produced wait in ``Feeder`` only until the caller's ``push``/``finish`` returns.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from streamfill.types import Frame, Mask

POLL_S = 0.5  # the completion thread re-checks abort this often while it waits for input


class _Aborted(Exception):
    """Raised inside the completion's input iterator to stop it without draining."""


class Feeder:
    """Runs ``stream(pairs)`` in a daemon thread fed by ``push``. Not for concurrent callers: one caller at a
    time (``push``/``finish`` from one thread, ``abort`` from any). ``name`` names the thread."""

    def __init__(self, stream: Callable[[Iterable[tuple[Frame, Mask]]], Iterator[Frame]], *,
                 name: str = "streamfill-feed") -> None:
        self._cond = threading.Condition()
        self._inbox: deque[tuple[Frame, Mask]] = deque()
        self._out: list[Frame] = []
        self._waiting = False   # the completion asked for a pair and there was none
        self._closed = False    # no more input: the completion drains
        self._aborted = False
        self._done = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(stream,), name=name, daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        """The completion has ended (drained, aborted or failed)."""
        return self._done

    def _pairs(self) -> Iterator[tuple[Frame, Mask]]:
        while True:
            with self._cond:
                while not self._inbox and not self._aborted:
                    if self._closed:
                        return
                    self._waiting = True
                    self._cond.notify_all()
                    self._cond.wait(POLL_S)
                self._waiting = False
                if self._aborted:
                    raise _Aborted
                item = self._inbox.popleft()
            yield item

    def _run(self, stream) -> None:
        try:
            for frame in stream(self._pairs()):
                with self._cond:
                    self._out.append(frame)
                    self._cond.notify_all()
        except _Aborted:
            pass
        except BaseException as exc:  # re-raised in the caller by push/finish
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _collect(self, ready: Callable[[], bool]) -> list[Frame]:
        with self._cond:
            while not ready() and not self._done:
                self._cond.wait(POLL_S)
            if self._error is not None:
                raise self._error
            out, self._out = self._out, []
            return out

    def push(self, frame: Frame, mask: Mask) -> list[Frame]:
        """Hand one pair in; returns the frames completed before the completion asked for the next pair
        (in order, possibly none). Re-raises the completion's failure (the feeder is then done)."""
        with self._cond:
            if self._done or self._closed:
                if self._error is not None:
                    raise self._error
                raise RuntimeError("the feeder has ended")
            self._inbox.append((frame, mask))
            self._waiting = False
            self._cond.notify_all()
        return self._collect(lambda: self._waiting and not self._inbox)

    def finish(self) -> list[Frame]:
        """End the input; returns the frames still held (the completion drains), in order."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        return self._collect(lambda: False)

    def abort(self) -> None:
        """Stop without computing held frames; returns at once (the thread ends at its next pull)."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
