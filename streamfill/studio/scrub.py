"""Scrubbing a clip: one decoder per clip that follows the page's pointer, and the background proxy build.

While the user drags the scrubber, the page sends the pointer's frame (``exact=False``, one request at a
time): the answer is the nearest preview already made (a proxy, a frame decoded before, a keyframe),
marked approximate unless it is the very frame, and the decoder moves toward the pointer in the background.
On release the page asks for the exact frame, which waits for the decoder; since the decoder followed the
drag, it is then usually a few frames away instead of a whole GOP.

An exact request pre-empts everything else: the page drops a drag request still in flight and sends it at
once; it wakes a drag request waiting on the server (that one answers with the nearest preview), the decoder
drops an approximate aim between two packets, and no preview of a frame passed on the way is made while it
waits (each would cost a JPEG encode on the release's path). A drag request that reaches the server while an
exact one waits (it was sent before the release) is answered from memory and moves nothing.

The decoder's aim during a drag: the pointer itself when it moves forward; when it moves backward, a point
behind it (``LEAD_S`` seconds of the drag's speed, never before the keyframe): a decoder cannot step back,
so one that overtook the pointer would have to start again from the keyframe. A new request interrupts the
decoding between two packets; the decoder keeps what it got and the plan is made again.

The proxy builder decodes every frame once into a preview JPEG with a second decoder (threaded like the
scrub decoder), GOP by GOP, nearest to the playhead first, starting as soon as the clip is open, so that
soon every frame is answered from memory. It runs at the lowest CPU priority (its thread and the decoder
threads it starts: ``BACKGROUND_NICE``), so it goes on while the user drags and takes only the CPU time
the scrub decoder leaves; it stands aside (between two packets) while a release or a click waits for its
exact frame. Where a thread's priority cannot be lowered (not Linux), it waits while the user scrubs
instead. It waits while a job runs. Its previews count against a memory budget all clips share: refused
memory (a clip opened when the budget was spent), it waits until a clip gives some back (closed), then goes on.
"""

from __future__ import annotations

import bisect
import os
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from streamfill.errors import StreamfillError
from streamfill.io.seek import Decoded, FrameSeeker, preview_jpeg

LEAD_S = 0.2  # a backward drag: the decoder aims this many seconds of the drag's motion behind the pointer
SPEED_WINDOW_S = 0.15  # the drag's speed is measured over the requests of this last stretch of time
EMIT_S = 0.08  # on a long decode, a preview of the frame reached is kept this often (approximate answers)
ACTIVE_S = 0.6  # without a lower priority, the proxy builder waits until the page has not asked for this long
BACKGROUND_NICE: int | None = 19  # the proxy builder's niceness (None: wait while the user scrubs instead)
NEAR = 8  # while dragging, a frame at most this many decoded frames away is waited for (up to NEAR_WAIT_S)
NEAR_WAIT_S = 0.15
TRAIL = 24  # in a long GOP, a spare decoder waits this many frames behind the frame shown
CHUNK = 32  # the proxy builder's unit: whole GOPs, at least this many frames


class Scrubber:
    """The source frames of one clip as preview JPEGs of ``size``: ``request(index, exact=...)``."""

    def __init__(self, seeker: FrameSeeker, size: tuple[int, int], quality: int, *, cache: int = 512) -> None:
        self.seeker, self.size, self.quality = seeker, size, quality
        # a long GOP: a second decoder, for jumps and to stand a little behind the frame shown (see _behind)
        gaps = [b - a for a, b in zip(seeker.keyframes, seeker.keyframes[1:] + [seeker.count], strict=True)]
        self.decoders = [seeker] + ([seeker.sibling()] if max(gaps) > 3 * TRAIL else [])
        self.proxies: dict[int, bytes] = {}  # written by the proxy builder only
        self._cache: OrderedDict[int, bytes] = OrderedDict()  # previews the scrub decoder made (exact frames)
        self._cache_size = cache
        self._indices: list[int] = []  # sorted: the frames with a preview (proxy or cache)
        self._cond = threading.Condition()
        self._pointer: tuple[int, bool] | None = None  # (index, exact) of the latest request
        self._gen = 0  # bumped by every request: the decoder re-plans
        self._trail: deque = deque(maxlen=16)  # (time, index) of recent requests: the drag's speed
        self._failed: tuple[int, StreamfillError] | None = None  # (generation, error) of a failed decode
        self._exact_waiting = 0  # exact requests waiting for the decoder: drag requests may not re-plan then
        self._emitted = 0.0
        self.busy = False  # the decoder is working
        self.last_request = 0.0  # time.monotonic() of the latest request
        self.playhead = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="studio-scrub", daemon=True)
        self._thread.start()

    # -- the page's side ---------------------------------------------------------------------------------
    def have(self, index: int) -> bytes | None:
        data = self.proxies.get(index)
        return data if data is not None else self._cache.get(index)

    def nearest(self, index: int) -> int | None:
        """The index nearest to ``index`` that has a preview (the earlier one on a tie), None if none has."""
        at = bisect.bisect_left(self._indices, index)
        near = [i for i in self._indices[max(0, at - 1):at + 1]]
        return min(near, key=lambda i: (abs(i - index), i)) if near else None

    def request(self, index: int, *, exact: bool, timeout: float = 60.0) -> tuple[bytes, int, bool]:
        """(JPEG, index of the frame in it, exact?) for frame ``index``. ``exact=False`` answers at once with
        the nearest preview there is (waiting only when there is none at all yet, or briefly when a decoder is
        at most ``NEAR`` frames from it: then the answer is usually exact); ``exact=True`` waits for
        the frame itself, unless a newer request comes first (then: the nearest one, not exact)."""
        now = time.monotonic()
        with self._cond:
            self.last_request = now
            if not exact and self._exact_waiting:
                # sent before a release (the page dropped it): it must not take the decoder from the exact frame
                self._cond.wait_for(lambda: self._closed or self.nearest(index) is not None, timeout)
                near = self.nearest(index)
                if near is None:
                    raise StreamfillError(f"frame {index} could not be decoded in {timeout:.0f} s")
                return self.have(near), near, near == index
            self.playhead = index
            self._trail.append((now, index))
            data = self.have(index)
            if data is not None:
                self._pointer = (index, exact)
                return data, index, True
            self._gen += 1
            gen = self._gen
            # a frame a few decoded frames away is worth a short wait even while dragging: then it is exact
            close_by = not exact and min(d.cost(index) for d in self.decoders) <= NEAR
            self._pointer = (index, exact or close_by)
            self._cond.notify_all()
            if exact or close_by:
                self._exact_waiting += exact
                try:
                    self._cond.wait_for(lambda: self._closed or self.have(index) is not None or self._gen != gen
                                        or (self._failed is not None and self._failed[0] == gen),
                                        timeout if exact else NEAR_WAIT_S)
                finally:
                    self._exact_waiting -= exact
                data = self.have(index)
                if data is not None:
                    return data, index, True
                if self._failed is not None and self._failed[0] == gen:
                    raise self._failed[1]
            # a drag, or an exact request a newer one took the decoder from: the nearest preview, once there is
            # one (with several exact requests at once on a fresh clip, all but the last found none yet and
            # failed at once with "could not be decoded in 60 s")
            self._cond.wait_for(lambda: self._closed or self.nearest(index) is not None
                                or (self._failed is not None and self._failed[0] == gen), timeout)
            near = self.nearest(index)
            if near is None:
                if self._failed is not None:
                    raise self._failed[1]
                raise StreamfillError(f"frame {index} could not be decoded in {timeout:.0f} s")
            return self.have(near), near, near == index

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10)  # the decoder stops between two packets; then the file can be closed
        for spare in self.decoders[1:]:
            spare.close()
        with self._cond:  # (the proxies are the clip's: it counts them against the budget first)
            self._cache.clear()
            self._indices = [i for i in self._indices if i in self.proxies]

    # -- the decoder's side ------------------------------------------------------------------------------
    def _speed(self, now: float) -> float:
        """Frames per second the pointer moved over the last ``SPEED_WINDOW_S`` (0 when it stands still)."""
        recent = [(t, i) for t, i in self._trail if now - t <= SPEED_WINDOW_S]
        if len(recent) < 2 or recent[-1][0] - recent[0][0] < 0.02:
            return 0.0
        return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])

    def _best(self, target: int) -> tuple[int, FrameSeeker]:
        """``target`` and the decoder that reaches it decoding the fewest frames (the main one on a tie)."""
        return target, min(self.decoders, key=lambda d: d.cost(target))

    def _plan(self) -> tuple[int, FrameSeeker] | None:
        """The frame a decoder should go to now and which one, or None when there is nothing worth doing."""
        if self._pointer is None:
            return None
        index, exact = self._pointer
        if exact:
            if self.have(index) is None:
                return self._best(index)
            # answered from memory: still bring a decoder there when the next step or play will need it
            if any(d.position == index for d in self.decoders) or (index + 1 < self.seeker.count
                                                                   and self.have(index + 1)):
                return self._behind(index)
            return self._best(index)
        if self.have(index) is not None:
            return None
        key = self.seeker.keyframe_before(index)
        aim = index
        speed = self._speed(time.monotonic())
        if speed < 0:
            aim = max(key, index + int(speed * LEAD_S))
        if any(key <= d.position <= index and d.position >= aim for d in self.decoders):
            return None  # between the aim and the pointer: going on would only overtake the pointer
        return self._best(aim)  # (even when the aim has a preview already: the point is to have a decoder there)

    def _behind(self, index: int) -> tuple[int, FrameSeeker] | None:
        """Idle, the exact frame ``index`` shown: the spare decoder goes to ``TRAIL`` frames before it, so that
        a step or a short drag backward deep in a long GOP does not decode the GOP from its keyframe again."""
        if len(self.decoders) < 2:
            return None
        trail = index - TRAIL
        if trail - self.seeker.keyframe_before(index) < TRAIL:
            return None  # near the keyframe: a seek is cheap anyway
        if all(self.have(i) is not None for i in range(trail, index)):
            return None  # the proxies have it all
        if any(trail - TRAIL // 2 <= d.position < index for d in self.decoders):
            return None  # a decoder stands behind already
        return trail, max(self.decoders, key=lambda d: (d.position != index, d is not self.seeker))

    def _emit(self, decoded: Decoded) -> None:
        """A frame passed on the way during a drag: keep a preview of keyframes, and of one frame every
        ``EMIT_S`` (the drag's approximate answers). None while a request waits for an exact frame."""
        pointer = self._pointer
        if pointer is None or pointer[1]:
            return
        now = time.monotonic()
        if now - self._emitted >= EMIT_S or self.seeker.keyframe_before(decoded.index) == decoded.index:
            self._emitted = now
            self._store(decoded)

    def _store(self, decoded: Decoded) -> None:
        if self.have(decoded.index) is not None:
            return
        data = preview_jpeg(decoded, self.size, quality=self.quality)
        with self._cond:
            if decoded.index not in self._cache:
                self._known(decoded.index)
            self._cache[decoded.index] = data
            self._cache.move_to_end(decoded.index)
            while len(self._cache) > self._cache_size:
                old, _ = self._cache.popitem(last=False)
                if old not in self.proxies:
                    del self._indices[bisect.bisect_left(self._indices, old)]
            self._cond.notify_all()

    def _known(self, index: int) -> None:
        """Note that frame ``index`` has a preview now (call with the lock held, before storing it)."""
        if index not in self.proxies and index not in self._cache:
            bisect.insort(self._indices, index)

    def add_proxy(self, index: int, data: bytes) -> None:
        """The proxy builder's way in."""
        with self._cond:
            self._known(index)
            self.proxies[index] = data
            self._cond.notify_all()  # a request may be waiting for this very frame

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    plan = self._plan()
                    if plan is not None:
                        target, decoder = plan
                        break
                    self.busy = False
                    self._cond.wait(0.1)  # the drag's speed changes with time: plan again now and then
                if self._closed:
                    return
                gen = self._gen
                self.busy = True
            try:
                decoded = decoder.decode_to(target, stop=lambda g=gen: self._gen != g or self._closed,
                                            on_frame=self._emit)
                if decoded is not None:
                    self._store(decoded)
            except StreamfillError as exc:
                with self._cond:
                    self._failed = (gen, exc)
                    if self._gen == gen:
                        self._pointer = None
                    self._cond.notify_all()


class ProxyBuilder:
    """Fills ``scrubber.proxies`` in the background (see the module doc). ``paused()``: wait while True;
    ``take(size, wake)``: the shared memory budget (False: none left; it sets ``wake`` once some is given back)."""

    def __init__(self, scrubber: Scrubber, *, paused: Callable[[], bool],
                 take: Callable[[int, threading.Event], bool]) -> None:
        self.scrubber, self.paused, self.take = scrubber, paused, take
        self._closed = threading.Event()
        self._wake = threading.Event()  # set by close(), and by the budget when memory is given back
        self.done = threading.Event()
        self.background = False  # runs at a lower priority (then it does not wait for the user)
        self._thread = threading.Thread(target=self._run, name="studio-proxies", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=10)  # it stops between two packets; then its file is closed

    def _take(self, size: int) -> bool:
        """``size`` bytes of the shared budget, once there are (waits while it is spent); False once closed."""
        while not self.take(size, self._wake):
            self._wake.wait()
            self._wake.clear()  # (after the wait: a close() comes with _closed set first, checked next)
            if self._closed.is_set():
                return False
        return True

    def _waiting(self) -> bool:
        if self._closed.is_set() or self.paused():
            return True
        s = self.scrubber
        if self.background:  # it only stands aside while a release or a click waits for its exact frame
            return s._exact_waiting > 0
        return s.busy or time.monotonic() - s.last_request < ACTIVE_S

    def _chunks(self, seeker: FrameSeeker) -> list[tuple[int, int]]:
        starts = [k for k in seeker.keyframes]
        chunks, begin = [], 0
        for k in starts[1:] + [seeker.count]:
            if k - begin >= CHUNK or k == seeker.count:
                chunks.append((begin, k))
                begin = k
        return chunks

    def _run(self) -> None:
        proxies = self.scrubber.proxies
        self.background = lower_priority(BACKGROUND_NICE)  # before the decoder (and its threads) start
        try:
            with self.scrubber.seeker.sibling() as seeker:  # threaded: at the lowest priority, idle CPU only
                chunks = self._chunks(seeker)
                left = set(range(len(chunks)))
                while left:
                    while self._waiting():
                        if self._closed.is_set():
                            return
                        time.sleep(0.05)
                    head = self.scrubber.playhead
                    here = next((n for n, (a, b) in enumerate(chunks) if a <= head < b), 0)
                    # nearest chunk first; after the playhead before before it at the same distance
                    c = min(left, key=lambda n: (abs(n - here), n < here))
                    a, b = chunks[c]
                    for i in range(a, b):
                        if i in proxies:
                            continue
                        decoded = seeker.decode_to(i, stop=self._waiting)
                        if decoded is None:
                            break
                        data = preview_jpeg(decoded, self.scrubber.size, quality=self.scrubber.quality)
                        if not self._take(len(data)):
                            return
                        self.scrubber.add_proxy(i, data)
                    else:
                        left.discard(c)
        except StreamfillError:
            return  # the scrub decoder still answers; a broken tail shows up when that frame is asked for
        finally:
            self.done.set()


def lower_priority(nice: int | None) -> bool:
    """Give the calling thread, and the threads it starts from now on, the niceness ``nice`` (Linux: a
    thread's niceness is its own and new threads inherit it). False where that cannot be done."""
    if nice is None or not sys.platform.startswith("linux"):
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:
        return False
    return True
