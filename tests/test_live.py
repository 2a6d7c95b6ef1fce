"""Live engine: threaded stages with bounded queues, latest-frame-wins drops, latency statistics, shutdown.

Every test is bounded in time (sources are short or stopped by the stop event; stages poll with timeouts).
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from media import make_video, pattern

from streamfill import api
from streamfill.backends.classical import ClassicalInpainter
from streamfill.config import LiveConfig
from streamfill.errors import InputError, MaskError
from streamfill.masks import StaticMask
from streamfill.pipeline.complete import Completer
from streamfill.pipeline.live import LazySink, LiveEngine, Retarget, paced, preview_unavailable
from streamfill.pipeline.live_stats import LatencyHistogram
from streamfill.types import Frame

TB = Fraction(1, 1000)


def synthetic(n: int | None, fps: float = 100.0, h: int = 48, w: int = 64):
    """Frames made on the fly (never held in a list): n frames (None = endless) at ``fps`` in pts."""
    i = 0
    while n is None or i < n:
        yield Frame(image=pattern(i, h, w), pts=int(round(i * 1000 / fps)), time_base=TB, index=i)
        i += 1


class Collect:
    """A FrameSink keeping (index, pts, image) of what it receives."""

    def __init__(self, keep_images: bool = True) -> None:
        self.frames: list[tuple[int, int, np.ndarray | None]] = []
        self.keep = keep_images

    def write(self, frame: Frame) -> None:
        self.frames.append((frame.index, frame.pts, frame.image if self.keep else None))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


class SlowInpainter:
    """Sleeps ``delay`` seconds per call, then fills the hole with grey."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def inpaint(self, images, masks, guidance=None):
        time.sleep(self.delay)
        out = images.copy()
        out[masks > 0] = 128
        return out


def box(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


def completer(delay: float = 0.0) -> Completer:
    return Completer(SlowInpainter(delay) if delay else ClassicalInpainter("telea", 3))


def check_accounting(stats) -> None:
    assert stats.frames_in == stats.frames_out + stats.dropped
    assert stats.dropped == stats.dropped_capture + stats.dropped_masks + stats.dropped_at_stop


# ------------------------------------------------------------------------------------------------ pieces
def test_paced_releases_frames_at_their_timestamps():
    frames = list(synthetic(6, fps=20))  # 50 ms apart
    t0 = time.monotonic()
    times = [time.monotonic() - t0 for _ in paced(frames)]
    assert len(times) == 6
    for i, t in enumerate(times):
        assert t >= i * 0.05 - 0.005  # never early
        assert t <= i * 0.05 + 0.2  # and not far behind (a loaded 2-core machine)
    stop = threading.Event()
    stop.set()
    assert len(list(paced(synthetic(5, fps=1), stop))) <= 1  # a set stop ends the wait at once
    with pytest.raises(InputError):
        list(paced(frames, speed=0))


def test_paced_speed_factor():
    t0 = time.monotonic()
    list(paced(synthetic(5, fps=10), speed=4.0))  # 0.4 s of video at 4x: 0.1 s
    assert 0.09 <= time.monotonic() - t0 < 0.35


def test_latency_histogram_matches_exact_percentiles():
    rng = np.random.default_rng(1)
    values = rng.lognormal(mean=-3.0, sigma=0.6, size=5000)  # around 50 ms
    h = LatencyHistogram()
    for v in values:
        h.add(v)
    for q in (50, 95, 99):
        exact = np.percentile(values, q, method="inverted_cdf")
        assert abs(h.percentile(q) - exact) <= 0.011 * exact
    assert h.count == 5000 and h.max == pytest.approx(values.max())
    assert LatencyHistogram().percentile(50) is None
    s = h.summary_ms()
    assert s["p50"] <= s["p95"] <= s["p99"] <= s["max"]


def test_retarget_switches_trackers_and_clears():
    made = []

    class Const:
        def __init__(self, index, value):
            self.value = value
            made.append((index, value))

        def pair(self, frames):
            for f in frames:
                yield f, np.full(f.image.shape[:2], self.value, np.uint8)

    rt = Retarget(lambda index, target: Const(index, target), initial=255)
    got = []
    gen = rt.pair(synthetic(6))
    for i, (_frame, mask) in enumerate(gen):
        got.append(int(mask.max()))
        if i == 1:
            rt.retarget(7)
        if i == 3:
            rt.clear()
    assert got == [255, 255, 7, 7, 0, 0]
    assert made == [(0, 255), (2, 7)]
    assert rt.retargets == 2 and rt.last_shape == (48, 64)


def test_retarget_refuses_a_look_ahead_tracker():
    class Ahead:
        def pair(self, frames):
            held = list(frames)  # wants two frames before answering
            yield from ((f, np.zeros(f.image.shape[:2], np.uint8)) for f in held)

    rt = Retarget(lambda index, target: Ahead(), initial="x")
    with pytest.raises(InputError, match="ahead"):
        list(rt.pair(synthetic(3)))


def test_lazy_sink_opens_on_first_frame_and_closes():
    events = []

    class Inner(Collect):
        def __enter__(self):
            events.append("open")
            return self

        def __exit__(self, exc_type, *rest):
            events.append(("close", exc_type))

    lazy = LazySink(lambda frame: Inner())
    with lazy:
        assert events == []
        lazy.write(next(synthetic(1)))
        assert events == ["open"]
    assert events == ["open", ("close", None)]


# ------------------------------------------------------------------------------------------------ engine
def test_realtime_file_every_frame_accounted(tmp_path: Path):
    clip = tmp_path / "clip.mp4"
    make_video(clip, frames=30, width=96, height=64, fps=50)  # 0.6 s
    hole = box(64, 96, 30, 20, 60, 44)
    reports = []
    with api.io.open_video(clip) as reader:
        engine = LiveEngine(paced(reader), StaticMask(hole), completer(), sink := Collect(),
                            LiveConfig(stats_interval=0.1), on_stats=reports.append)
        stats = engine.run()
    check_accounting(stats)
    assert stats.frames_in == 30 and stats.dropped_at_stop == 0 and stats.stopped_by == "end of source"
    assert stats.frames_out == len(sink.frames) >= 1
    indices = [i for i, _, _ in sink.frames]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    # output frames keep the source pts of their index
    with api.io.open_video(clip) as reader:
        src_pts = {f.index: f.pts for f in reader}
    assert all(src_pts[i] == p for i, p, _ in sink.frames)
    lat = stats.latency_ms
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"] < 1000
    assert 20 <= stats.input_fps <= 60  # paced at 50 fps (30 frames over ~0.6 s plus start-up)
    assert reports and all(not r.final for r in reports) and stats.final
    for r in reports:
        assert r.frames_in == r.frames_out + r.dropped + r.in_flight
    # the hole was filled, the rest untouched
    idx, _, img = sink.frames[-1]
    with api.io.open_video(clip) as reader:
        original = next(f.image for f in reader if f.index == idx)
    outside = StaticMask(hole).mask == 0  # the hole as dilated by the mask stage
    assert np.array_equal(img[outside], original[outside])


def test_slow_inpainter_drops_frames_and_queues_stay_bounded():
    cfg = LiveConfig(capture_queue=2, mask_queue=1, output_queue=2)
    hole = box(48, 64, 10, 10, 30, 30)
    engine = LiveEngine(paced(synthetic(60, fps=200)), StaticMask(hole), completer(delay=0.03), Collect(False),
                        cfg)
    stats = engine.run()
    check_accounting(stats)
    assert stats.frames_in == 60
    assert stats.dropped > 20  # 200 fps in, at most ~33 fps through completion
    assert stats.dropped_masks > 0
    bound = cfg.capture_queue + cfg.mask_queue + cfg.output_queue + 3  # queues + one frame per stage
    assert stats.max_in_flight <= bound


def _peak_memory(n: int) -> int:
    hole = box(240, 320, 100, 80, 160, 140)
    tracemalloc.start()
    try:
        engine = LiveEngine(paced(synthetic(n, fps=400, h=240, w=320)), StaticMask(hole), completer(delay=0.02),
                            Collect(False), LiveConfig())
        stats = engine.run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.dropped > 0
    return peak


def test_memory_stays_flat_when_frames_are_dropped():
    short, long = _peak_memory(60), _peak_memory(240)
    frame_bytes = 240 * 320 * 3
    # 180 more frames in the long run, fed 8x faster than they are filled: unbounded queues would hold ~150 more
    # frames (35 MB). The bound leaves room for what is transiently in flight when the peak is taken (stage
    # buffers, crops), which depends on timing: with 12 frames of room it failed once on a loaded machine.
    assert long - short < 30 * frame_bytes, (short, long)


def test_block_policy_drops_nothing():
    hole = box(48, 64, 10, 10, 30, 30)
    stats = LiveEngine(paced(synthetic(20, fps=200)), StaticMask(hole), completer(delay=0.01), sink := Collect(False),
                       LiveConfig(policy="block")).run()
    assert stats.dropped == 0 and stats.frames_out == 20 == len(sink.frames)


def test_stop_event_ends_an_endless_source_promptly():
    stop = threading.Event()
    hole = box(48, 64, 10, 10, 30, 30)
    engine = LiveEngine(paced(synthetic(None, fps=100), stop), StaticMask(hole), completer(delay=0.02),
                        Collect(False), LiveConfig(), stop=stop)
    timer = threading.Timer(0.4, stop.set)
    timer.start()
    t0 = time.monotonic()
    stats = engine.run()
    assert time.monotonic() - t0 < 0.4 + 1.0
    check_accounting(stats)
    assert stats.frames_in > 10 and stats.stopped_by == "stop requested"
    assert engine.stuck_stages == []


def test_worker_error_is_raised_in_the_caller():
    class Broken:
        def pair(self, frames):
            for f in frames:
                if f.index == 5:
                    raise MaskError("mask plugin sent garbage")
                yield f, np.zeros(f.image.shape[:2], np.uint8)

    engine = LiveEngine(synthetic(None), Broken(), completer(), Collect(False), LiveConfig(policy="block"))
    t0 = time.monotonic()
    with pytest.raises(MaskError, match="garbage"):
        engine.run()
    assert time.monotonic() - t0 < 2.0
    assert engine.stuck_stages == []


def test_sink_error_stops_the_stages():
    class Full(Collect):
        def write(self, frame):
            raise OSError("disk full")

    engine = LiveEngine(synthetic(None), StaticMask(np.zeros((48, 64), np.uint8)), completer(), Full(),
                        LiveConfig())
    with pytest.raises(OSError, match="disk full"):
        engine.run()
    assert engine.stop.is_set() and engine.stuck_stages == []


def test_decreasing_indices_are_refused():
    frames = [Frame(pattern(0, 8, 8), 0, TB, 3), Frame(pattern(1, 8, 8), 1, TB, 2)]
    engine = LiveEngine(frames, StaticMask(np.zeros((8, 8), np.uint8)), completer(), Collect(),
                        LiveConfig(policy="block"))
    with pytest.raises(InputError, match="increase"):
        engine.run()


# --------------------------------------------------------------------------------------------------- api
def moving_square_clip(path: Path, frames: int = 20, fps: int = 25, w: int = 160, h: int = 120) -> list[tuple]:
    """A clip with a textured red 20x20 square moving right 2 px per frame over a static noise background
    (no saturated red in it); returns the square's box (x, y, w, h) in every frame."""
    rng = np.random.default_rng(3)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 2)
    bg = (bg.astype(np.float32) * 0.6 + 40).astype(np.uint8)
    bg[..., 0] //= 2
    yy, xx = np.mgrid[0:20, 0:20]
    obj = np.zeros((20, 20, 3), np.uint8)
    obj[...] = (250, 10, 10)
    obj[((xx // 4 + yy // 4) % 2) == 1] = (200, 0, 40)
    boxes = []
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv444p"
        s.options = {"preset": "ultrafast", "crf": "12"}
        for i in range(frames):
            img = bg.copy()
            x, y = 30 + 2 * i, 50
            img[y:y + 20, x:x + 20] = obj
            boxes.append((x, y, 20, 20))
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return boxes


def red_pixels(image: np.ndarray) -> int:
    r, g, b = (image[..., c].astype(int) for c in range(3))
    return int(((r > 180) & (g < 90) & (b < 90)).sum())


def test_api_live_tracks_a_box_and_records(tmp_path: Path):
    clip = tmp_path / "square.mp4"
    boxes = moving_square_clip(clip)
    assert red_pixels(next(iter(api.io.open_video(clip))).image) == 400  # only the square is red
    out = tmp_path / "rec.mp4"
    result = api.live(str(clip), box=boxes[0], record=out, realtime=True, stats_json=tmp_path / "s.json")
    s = result.stats
    check_accounting(s)
    assert s.frames_in == 20 and result.record == str(out)
    frames = [f.image for f in api.io.open_video(out)]
    assert len(frames) == s.frames_out
    assert red_pixels(frames[0]) == 0 and red_pixels(frames[-1]) == 0
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["frames_out"] == s.frames_out and stats["latency_ms"]["p99"] > 0


def test_api_live_refuses_bad_requests(tmp_path: Path):
    clip = tmp_path / "c.mp4"
    make_video(clip, frames=3, width=64, height=48)
    with pytest.raises(InputError, match="output"):
        api.live(str(clip), box=(1, 1, 5, 5))
    with pytest.raises(InputError, match="what to remove"):
        api.live(str(clip), record=tmp_path / "o.mp4")
    with pytest.raises(InputError, match="outside"):
        api.live(str(clip), box=(60, 40, 10, 10), record=tmp_path / "o.mp4")
    with pytest.raises(InputError, match="file sources"):
        api.live("rtsp://127.0.0.1:1/x", box=(1, 1, 5, 5), record=tmp_path / "o.mp4", realtime=True)
    if preview_unavailable() is not None:
        with pytest.raises(InputError, match="--preview"):
            api.live(str(clip), box=(1, 1, 5, 5), preview=True)
    with pytest.raises(InputError, match="camera not found"):
        api.live("/dev/video99", box=(1, 1, 5, 5), record=tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_api_live_temporal_look_back_and_motion_masks(tmp_path: Path):
    from streamfill.config import Config, merge

    clip = tmp_path / "square.mp4"
    boxes = moving_square_clip(clip, frames=12)
    config = merge(Config(), {"live": {"temporal": True, "policy": "block"}})
    r = api.live(str(clip), box=boxes[0], record=tmp_path / "t.mp4", config=config)
    assert r.stats.frames_out == 12 and r.stats.dropped == 0  # look-back only: one answer per frame, no wait
    assert set(r.stats.stage_ms) == {"masks", "complete", "output"} and r.stats.stage_ms["complete"] > 0
    config = merge(Config(), {"track": {"motion_warmup": 3}, "live": {"policy": "block"}})
    r = api.live(str(clip), motion=True, record=tmp_path / "m.mp4", config=config)
    check_accounting(r.stats)
    assert r.stats.frames_out == 12


def test_live_box_with_a_frame_number_is_refused(tmp_path: Path):
    """A live run starts at the current frame: ``x,y,w,h@K`` cannot be honoured and must not be dropped silently."""
    make_video(tmp_path / "clip.mp4", frames=3)
    with pytest.raises(InputError, match="no @FRAME"):
        api.live(str(tmp_path / "clip.mp4"), box="10,10,20,20@5", record=str(tmp_path / "out.mp4"))
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("scheme", ["udp", "rtp"])
def test_a_silent_udp_or_rtp_source_fails_after_the_timeout(scheme):
    """Nothing sending to the address: the open waited for ever (FFmpeg's rw_timeout does not reach these
    sockets) and Ctrl-C did not end it; now it fails after the source timeout with one line."""
    import socket

    from streamfill.errors import DecodeError
    from streamfill.io.live import open_live_reader

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(DecodeError, match="nothing received within 1 s"):
        open_live_reader(f"{scheme}://127.0.0.1:{port}", timeout=1.0).open()
    assert time.monotonic() - t0 < 10


def test_a_live_track_stopped_by_a_scene_cut_is_reported_lost():
    """A looping file jumps back to its start: the jump is a scene cut, the live tracker (one keyframe) stops,
    and every later frame got an empty mask while the stats said nothing was lost (the box stayed in the
    recording). The frames after the cut are a lost stretch."""
    from streamfill import build
    from streamfill.config import Config

    def picture(i):
        img = np.full((120, 160, 3), 60, np.uint8)
        for bit in range(8):                     # the frame number as bars: the loop's jump is a cut
            if (i >> bit) & 1:
                img[0:40, bit * 20:(bit + 1) * 20] = 230
        img[70:90, 10 + 5 * i:30 + 5 * i] = (250, 10, 10)
        return img

    frames = [Frame(picture(i % 12), i * 512, Fraction(1, 10240), i) for i in range(30)]
    retarget = Retarget(build.make_live_tracker(Config()), build.live_target("box", (10, 70, 20, 20)))
    masks = {f.index: m for f, m in retarget.pair(iter(frames))}
    assert masks[5].any() and not masks[12].any()      # tracked before the loop, not after it
    status = retarget.track_status()
    assert status["lost"] and status["lost"][0][0] == 12 and status["lost_frames"] >= 12


def test_a_retired_tracks_lost_stretch_ends_on_the_last_frame_it_tracked():
    """A re-target closed the old tracker's open lost stretch at the frame the new target starts on, and
    frames dropped before the mask stage were counted into it: lost [2, 14] for a tracker that saw 0-9."""

    class LostFromThird:
        def __init__(self, index, target):
            self.lost, self.lost_frames, self.lost_since = [], 0, None

        def pair(self, frames):
            for n, f in enumerate(frames):
                if n >= 2:
                    self.lost_since = f.index if self.lost_since is None else self.lost_since
                    self.lost_frames += 1
                yield f, np.zeros((4, 4), np.uint8)

    retarget = Retarget(LostFromThird, "A")

    def frames():
        for i in [*range(10), 14, 15]:             # 10-13 dropped before the mask stage
            if i == 14:
                retarget.retarget("B")
            yield Frame(np.zeros((4, 4, 3), np.uint8), i, Fraction(1, 30), i)

    for _ in retarget.pair(frames()):
        pass
    assert retarget.track_status()["lost"] == [[2, 9]]


def test_statistics_after_a_hard_interrupt_say_what_the_recording_holds(tmp_path):
    """A second Ctrl-C interrupts at once; the recording is finalised on the way out, but the statistics
    written were the last once-a-second report (all zeros in the first second; 21 frames for 34 recorded)."""
    import _thread
    import signal

    src = tmp_path / "in.mp4"
    make_video(src, frames=12, fps=20)
    # interrupt_main does nothing where SIGINT is ignored (a CI run started as a background job): the run would
    # never stop; Python's own handler makes it raise KeyboardInterrupt as a Ctrl-C would
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            api.live(str(src), box=(10, 10, 20, 20), record=tmp_path / "rec.mp4", realtime=True, loop=True,
                     stats_json=tmp_path / "s.json")
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    stats = json.loads((tmp_path / "s.json").read_text())
    with av.open(str(tmp_path / "rec.mp4")) as c:
        recorded = sum(1 for _ in c.decode(video=0))
    assert stats["final"] and stats["stopped_by"] == "interrupted"
    assert stats["frames_out"] == recorded > 10


def test_a_looped_file_source_is_closed_when_the_run_stops(tmp_path):
    """The reader a loop reopened for its current round stayed open after the run (closed only by the garbage
    collector): one file handle per run in a process that runs many."""
    import os

    src = tmp_path / "in.mp4"
    make_video(src, frames=12, fps=20)
    stop = threading.Event()
    threading.Timer(1.2, stop.set).start()
    api.live(str(src), box=(10, 10, 20, 20), record=tmp_path / "rec.mp4", realtime=True, loop=True, stop=stop)

    def open_handles():
        fds = os.listdir("/proc/self/fd")
        return sum(1 for fd in fds if os.path.realpath(f"/proc/self/fd/{fd}") == str(src.resolve()))

    assert open_handles() == 0
