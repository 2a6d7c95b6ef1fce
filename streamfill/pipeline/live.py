"""Live processing: capture -> masks -> completion -> outputs in threads, with bounded queues and bounded latency.

Data flow (one thread per stage; the outputs run in the caller's thread)::

    source ──▶ [capture q] ──▶ mask source ──▶ [mask q] ──▶ completion ──▶ [output q] ──▶ sink (caller)

- Frames are ``Frame`` (H x W x 3 uint8 RGB, source pts/time_base, increasing ``index``); masks H x W uint8,
  255 = fill. Every frame that comes out keeps the pts it came in with.
- ``policy = "latest"`` (the live default): when the mask or completion stage is slower than the source, the
  capture and mask queues drop their *oldest* frame to take the newest (latest frame wins). Each drop is
  counted, so that ``frames_in == frames_out + dropped`` always holds. The output queue never drops: a slow
  output makes completion wait, and frames are dropped before completion instead. With ``policy = "block"``
  no frame is dropped: the capture stage waits (a camera's driver then drops frames on its own).
- Concurrency has an exit plan: one stop event, a ``poll`` timeout on every blocking call, worker exceptions
  re-raised in the caller, each stage joined for at most ``join_timeout`` seconds. Frames still queued when
  a stop is requested are discarded and counted as ``dropped_at_stop``.
- Memory is flat: at most ``capture_queue + mask_queue + output_queue`` frames wait in queues, plus one per
  stage being worked on (``LiveStats.max_in_flight`` reports the peak).

This module picks no concrete classes: the source, mask source, completion stage and sink are injected (by
``streamfill.api.live`` through ``streamfill.build``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from streamfill.config import LiveConfig
from streamfill.errors import InputError
from streamfill.pipeline.live_stats import LatencyHistogram, LiveStats
from streamfill.types import Completion, Frame, FrameSink, Mask, MaskSource

_EOS = object()  # end of stream marker, never dropped


# ------------------------------------------------------------------------------------------------ pacing
def paced(frames: Iterable[Frame], stop: threading.Event | None = None, speed: float = 1.0,
          clock: Callable[[], float] = time.monotonic) -> Iterator[Frame]:
    """Release each frame at its presentation time in wall-clock time (a file standing in for a camera).

    The first frame goes out at once; frame ``f`` goes out ``(f.time - first.time) / speed`` seconds later.
    A frame that is already late (slow decoding) goes out at once. Waiting ends early when ``stop`` is set
    (then the generator returns).
    """
    if speed <= 0:
        raise InputError(f"pacing speed must be positive, got {speed}")
    stop = stop or threading.Event()
    t0 = None
    first = None
    for frame in frames:
        if t0 is None:
            t0, first = clock(), frame.time
        else:
            due = t0 + float(frame.time - first) / speed
            delay = due - clock()
            if delay > 0 and stop.wait(delay):
                return
        if stop.is_set():
            return
        yield frame


# ------------------------------------------------------------------------------------- re-targeting masks
class Retarget:
    """A MaskSource that (re)starts a tracker on a new target while the stream runs.

    ``factory(index, target) -> MaskSource`` builds a tracker whose keyframe is the frame with that
    ``index`` (the first frame it is given). ``target`` is whatever the caller passes to ``retarget`` (e.g. a
    box ``(x, y, w, h)`` or an H x W uint8 mask); ``initial`` is the target at the first frame (None: empty
    masks until a target arrives). ``retarget`` may be called from any thread; the new target applies from
    the next frame the mask stage takes. ``clear()`` stops masking.

    The inner source must answer each frame before asking for the next (no look-ahead), as a tracker whose
    keyframe is its first frame does. Masks are H x W uint8, 255 = fill.
    """

    def __init__(self, factory: Callable[[int, Any], MaskSource], initial: Any = None) -> None:
        self.factory = factory
        self._pending = [initial] if initial is not None else []
        self._clear = False
        self._lock = threading.Lock()
        self.retargets = 0
        self._tracker: Any = None  # the mask source of the current target
        self.last_index = -1
        self._lost: list[list[int]] = []  # lost stretches of earlier targets
        self._lost_frames = 0
        self.last_shape: tuple[int, int] | None = None  # (H, W) of the latest frame seen

    def retarget(self, target: Any) -> None:
        if target is None:
            raise InputError("retarget needs a target (use clear() to stop masking)")
        with self._lock:
            self._pending = [target]
            self._clear = False

    def clear(self) -> None:
        with self._lock:
            self._pending = []
            self._clear = True

    def _take(self) -> tuple[bool, Any]:
        with self._lock:
            if self._clear:
                self._clear = False
                return True, None
            if self._pending:
                return True, self._pending.pop()
            return False, None

    def _retire(self, last_seen: int) -> None:
        """Keep what the tracker being replaced lost; ``last_seen``: the last frame it tracked (the frame the new
        target starts on, and frames dropped before this stage, were never its)."""
        old = self._tracker
        if old is not None:
            since = getattr(old, "lost_since", None)
            self._lost += [list(r) for r in getattr(old, "lost", [])]
            if since is not None:
                self._lost.append([since, last_seen])
            self._lost = self._lost[-20:]
            self._lost_frames += int(getattr(old, "lost_frames", 0))

    def track_status(self) -> dict[str, Any]:
        """The tracking part of the live statistics (see ``LiveStats.track``); safe from any thread."""
        t = self._tracker
        lost = self._lost + ([list(r) for r in getattr(t, "lost", [])] if t is not None else [])
        conf = getattr(t, "confidence", None) if t is not None else None
        return {"confidence": None if conf is None else round(float(conf), 3),
                "lost_since": getattr(t, "lost_since", None) if t is not None else None,
                "lost": lost[-20:],
                "lost_frames": self._lost_frames + (int(getattr(t, "lost_frames", 0)) if t is not None else 0)}

    def pair(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]:
        slot: list[Frame] = []

        def feed() -> Iterator[Frame]:
            while slot:
                yield slot.pop()

        inner: Iterator[tuple[Frame, Mask]] | None = None
        started = False
        try:
            for frame in frames:
                self.last_shape = frame.image.shape[:2]
                last_seen, self.last_index = self.last_index, frame.index
                changed, target = self._take()
                if changed:
                    if inner is not None:
                        with contextlib.suppress(Exception):
                            inner.close()
                    self._retire(last_seen)
                    self._tracker = None if target is None else self.factory(frame.index, target)
                    inner = None if self._tracker is None else iter(self._tracker.pair(feed()))
                    self.retargets += started
                    started = True
                if inner is None:
                    yield frame, np.zeros(frame.image.shape[:2], np.uint8)
                    continue
                slot.append(frame)
                try:
                    got, mask = next(inner)
                except StopIteration:
                    raise InputError("the tracker asked for a frame ahead; live tracking needs a mask source "
                                     "that answers every frame before the next one") from None
                if got is not frame and got.index != frame.index:
                    raise InputError(f"the tracker answered frame {got.index} for frame {frame.index}")
                yield frame, mask
        finally:
            if inner is not None:
                with contextlib.suppress(Exception):
                    inner.close()


# --------------------------------------------------------------------------------------------- lazy sink
class LazySink:
    """A FrameSink opened on its first frame: ``factory(frame)`` returns a FrameSink (a context manager,
    not yet entered) sized from that frame, for sources whose size is known only once they deliver
    (a ZeroMQ stream). Closing finalises the inner sink, or discards it on error, as the inner sink does."""

    def __init__(self, factory: Callable[[Frame], FrameSink]) -> None:
        self.factory = factory
        self.sink: FrameSink | None = None
        self._entered = False

    def write(self, frame: Frame) -> None:
        if self.sink is None:
            sink = self.factory(frame)
            sink.__enter__()
            self.sink = sink
            self._entered = True
        self.sink.write(frame)

    def __enter__(self) -> LazySink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.sink is not None and self._entered:
            self._entered = False
            self.sink.__exit__(exc_type, exc, tb)


# ------------------------------------------------------------------------------------------------ engine
@contextlib.contextmanager
def _closing(it: Iterator) -> Iterator[Iterator]:
    """Close a generator when its stage ends, so that its ``finally`` blocks (sockets, readers) run in the
    stage's own thread."""
    try:
        yield it
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


class _Stage(threading.Thread):
    def __init__(self, name: str, target: Callable[[], None], engine: LiveEngine) -> None:
        super().__init__(name=f"streamfill-live-{name}", daemon=True)
        self._target_fn = target
        self._engine = engine
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
            self.error = exc
            self._engine.stop.set()


class LiveEngine:
    """Runs one live session; see the module docstring.

    ``source``: an iterable of Frames (iterated in the capture thread; indices must increase).
    ``masks``: a MaskSource (iterated in the mask thread); ``completion``: a Completion (completion thread);
    ``sink``: a FrameSink already entered by the caller (written from the caller's thread).
    ``stop``: set it (from any thread or a signal handler) to end the run; ``run`` then returns within about
    ``join_timeout`` seconds. ``on_stats(LiveStats)`` is called from the caller's thread every
    ``stats_interval`` seconds. ``clock`` is a monotonic clock in seconds.
    """

    def __init__(self, source: Iterable[Frame], masks: MaskSource, completion: Completion, sink: FrameSink,
                 config: LiveConfig | None = None, *, stop: threading.Event | None = None,
                 on_stats: Callable[[LiveStats], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.masks = masks
        self.completion = completion
        self.sink = sink
        self.config = config or LiveConfig()
        self.stop = stop or threading.Event()
        self.on_stats = on_stats
        self.clock = clock
        cfg = self.config
        self._q_capture: queue.Queue = queue.Queue(cfg.capture_queue)
        self._q_masks: queue.Queue = queue.Queue(cfg.mask_queue)
        self._q_out: queue.Queue = queue.Queue(cfg.output_queue)
        self._lock = threading.Lock()
        self._born: dict[int, float] = {}  # frame index -> capture time, for frames in flight
        self._in = self._out = 0
        self._drop_capture = self._drop_masks = 0
        self._max_in_flight = 0
        self._hist = LatencyHistogram()
        self._interval = LatencyHistogram()
        self._stages: list[_Stage] = []
        self._busy = {"masks": [0.0, 0], "complete": [0.0, 0], "output": [0.0, 0]}  # seconds, frames
        self._got_at = {"masks": 0.0, "complete": 0.0}
        self.stats = LiveStats()

    # -- queue helpers (every blocking call has a timeout and watches the stop event) -------------------
    def _drop(self, item: Any, where: str) -> None:
        if item is _EOS:
            raise RuntimeError("internal: end-of-stream marker dropped")
        frame = item[0] if isinstance(item, tuple) else item
        with self._lock:
            self._born.pop(frame.index, None)
            if where == "capture":
                self._drop_capture += 1
            else:
                self._drop_masks += 1

    def _offer(self, q: queue.Queue, item: Any, where: str) -> bool:
        """Put ``item``; a full queue drops its oldest item (``latest``) or waits (``block``). False if the
        run was stopped while waiting."""
        if self.config.policy == "block":
            return self._put(q, item)
        while not self.stop.is_set():
            try:
                q.put_nowait(item)
                return True
            except queue.Full:
                try:
                    old = q.get_nowait()
                except queue.Empty:
                    continue
                if old is _EOS:  # cannot happen: the marker is the last item a producer puts
                    q.put_nowait(old)
                    return self._put(q, item)
                self._drop(old, where)
        return False

    def _put(self, q: queue.Queue, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=self.config.poll)
                return True
            except queue.Full:
                continue
        return False

    def _take(self, q: queue.Queue) -> Any:
        """The next item, or _EOS when the run is stopped."""
        while not self.stop.is_set():
            try:
                return q.get(timeout=self.config.poll)
            except queue.Empty:
                continue
        return _EOS

    def _drain(self, q: queue.Queue, stage: str) -> Iterator[Any]:
        while True:
            item = self._take(q)
            if item is _EOS:
                return
            self._got_at[stage] = self.clock()
            yield item

    def _count_busy(self, stage: str, since: float) -> None:
        busy = self._busy[stage]
        busy[0] += self.clock() - since
        busy[1] += 1

    # -- stages ----------------------------------------------------------------------------------------
    def _capture(self) -> None:
        with _closing(iter(self.source)) as frames:
            self._capture_from(frames)

    def _capture_from(self, frames: Iterator[Frame]) -> None:
        last = None
        for frame in frames:
            if self.stop.is_set():
                return
            if last is not None and frame.index <= last:
                raise InputError(f"source frame indices must increase: {frame.index} came after {last}")
            last = frame.index
            with self._lock:
                self._born[frame.index] = self.clock()
                self._in += 1
                self._max_in_flight = max(self._max_in_flight, len(self._born))
            if not self._offer(self._q_capture, frame, "capture"):
                return
        self._put(self._q_capture, _EOS)

    def _mask(self) -> None:
        with _closing(self.masks.pair(self._drain(self._q_capture, "masks"))) as pairs:
            for pair in pairs:
                self._count_busy("masks", self._got_at["masks"])
                if not self._offer(self._q_masks, pair, "masks"):
                    return
        self._put(self._q_masks, _EOS)

    def _complete(self) -> None:
        with _closing(self.completion.stream(self._drain(self._q_masks, "complete"))) as frames:
            for out in frames:
                self._count_busy("complete", self._got_at["complete"])
                if not self._put(self._q_out, out):
                    return
        self._put(self._q_out, _EOS)

    # -- the caller's side -------------------------------------------------------------------------------
    def _check_workers(self) -> None:
        for stage in self._stages:
            if stage.error is not None:
                raise stage.error

    def _snapshot(self, now: float, t0: float, last: tuple[float, int, int, int], final: bool) -> LiveStats:
        with self._lock:
            fin, fout = self._in, self._out
            dc, dm = self._drop_capture, self._drop_masks
            in_flight = len(self._born)
            peak = self._max_in_flight
        stage_ms = {k: (round(v[0] / v[1] * 1000.0, 2) if v[1] else None) for k, v in self._busy.items()}
        elapsed = max(now - t0, 1e-9)
        lt, lin, lout, ldrop = last
        dt = max(now - lt, 1e-9)
        s = LiveStats(
            seconds=round(elapsed, 3), frames_in=fin, frames_out=fout, dropped=dc + dm, dropped_capture=dc,
            dropped_masks=dm, in_flight=in_flight, max_in_flight=peak, stage_ms=stage_ms,
            input_fps=round(fin / elapsed, 2),
            output_fps=round(fout / elapsed, 2), latency_ms=self._hist.summary_ms(),
            interval_seconds=round(dt, 3), interval_input_fps=round((fin - lin) / dt, 2),
            interval_output_fps=round((fout - lout) / dt, 2), interval_dropped=dc + dm - ldrop,
            interval_latency_ms=self._interval.summary_ms(), final=final,
        )
        status = getattr(self.masks, "track_status", None)
        if callable(status):
            s.track = status()
        return s

    def run(self) -> LiveStats:
        """Run until the source ends or ``stop`` is set; returns the final statistics. Re-raises the first
        error of any stage (after stopping the others); a KeyboardInterrupt in the caller stops the stages
        and propagates."""
        cfg = self.config
        t0 = self.clock()
        self._stages = [_Stage("capture", self._capture, self), _Stage("masks", self._mask, self),
                        _Stage("complete", self._complete, self)]
        for stage in self._stages:
            stage.start()
        last = (t0, 0, 0, 0)
        next_report = t0 + cfg.stats_interval
        stopped_by = "end of source"
        try:
            while True:
                self._check_workers()
                item = self._take(self._q_out)
                if item is _EOS:
                    if self.stop.is_set():
                        self._check_workers()
                        stopped_by = "stop requested"
                    break
                t_write = self.clock()
                self.sink.write(item)
                self._count_busy("output", t_write)
                now = self.clock()
                with self._lock:
                    born = self._born.pop(item.index, None)
                    self._out += 1
                if born is not None:
                    self._hist.add(now - born)
                    self._interval.add(now - born)
                if now >= next_report:
                    self._report(now, t0, last)
                    last = (now, self.stats.frames_in, self.stats.frames_out, self.stats.dropped)
                    next_report = now + cfg.stats_interval
        except BaseException as exc:
            self.stop.set()
            self._join()
            if isinstance(exc, KeyboardInterrupt):
                # a second Ctrl-C: the recording is still finalised, and the statistics must say what it holds
                # (they were the last once-a-second report, all zeros in the first second)
                self._final(t0, last, "interrupted")
            raise
        self.stop.set()
        self._join()
        self._check_workers()
        return self._final(t0, last, stopped_by)

    def _final(self, t0: float, last: tuple[float, int, int, int], stopped_by: str) -> LiveStats:
        final = self._snapshot(self.clock(), t0, last, final=True)
        with self._lock:
            final.dropped_at_stop = len(self._born)
            self._born.clear()
        final.in_flight = 0
        final.dropped += final.dropped_at_stop
        final.stopped_by = stopped_by
        self.stats = final
        return final

    def _report(self, now: float, t0: float, last: tuple[float, int, int, int]) -> None:
        self.stats = self._snapshot(now, t0, last, final=False)
        self._interval = LatencyHistogram()
        if self.on_stats is not None:
            self.on_stats(self.stats)

    def _join(self) -> None:
        deadline = self.clock() + self.config.join_timeout
        for stage in self._stages:
            stage.join(max(0.0, deadline - self.clock()))

    @property
    def stuck_stages(self) -> list[str]:
        """Stages still running after the run returned (e.g. a camera read that never came back)."""
        return [s.name for s in self._stages if s.is_alive()]


def run_live(source: Iterable[Frame], masks: MaskSource, completion: Completion, sink: FrameSink,
             config: LiveConfig | None = None, *, stop: threading.Event | None = None,
             on_stats: Callable[[LiveStats], None] | None = None) -> LiveStats:
    """Convenience wrapper: ``LiveEngine(...).run()``."""
    return LiveEngine(source, masks, completion, sink, config, stop=stop, on_stats=on_stats).run()



# ----------------------------------------------------------------------------------------------- preview
def preview_unavailable() -> str | None:
    """Why a preview window cannot be shown here (None when it can): OpenCV built without a GUI backend
    (opencv-contrib-python-headless) or no display (neither DISPLAY nor WAYLAND_DISPLAY set, on Linux)."""
    import os
    import sys

    import cv2

    gui = [ln for ln in cv2.getBuildInformation().splitlines() if ln.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() == "NONE":
        return (
            "this OpenCV has no GUI backend (opencv-contrib-python-headless); for --preview, replace it with "
            "opencv-contrib-python"
        )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set)"
    return None


class PreviewSink:
    """Shows each frame (H x W x 3 uint8 RGB) in an OpenCV window; pressing q or Esc in it sets ``stop``.
    Check ``preview_unavailable()`` first. A FrameSink; closing destroys the window."""

    def __init__(self, title: str = "streamfill live", stop: threading.Event | None = None) -> None:
        self.title = title
        self.stop = stop

    def write(self, frame: Frame) -> None:
        import cv2

        cv2.imshow(self.title, np.ascontiguousarray(frame.image[..., ::-1]))
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) and self.stop is not None:
            self.stop.set()

    def __enter__(self) -> PreviewSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        import cv2

        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
