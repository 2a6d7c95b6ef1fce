"""Chunked runs (process --ray / --chunk-seconds) and batches: the output is the one a single machine writes.

Fast tests run the chunks in this process (LocalExecutor); the slow ones use a two-node Ray cluster in one
process (ray.cluster_utils.Cluster, 2 nodes x 1 CPU)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from chunk_media import make_two_shot_clip
from commands import streamfill_cmd
from media import make_video, write_png

from streamfill import api
from streamfill.config import load_config
from streamfill.distributed import LocalExecutor, batch_jobs, process_chunked
from streamfill.distributed import chunks as chunks_mod
from streamfill.errors import DistributedError, OutputError
from streamfill.io.segments import join_segments

H, W = 64, 96


def _hole() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[22:42, 36:60] = 255
    return m


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("chunked")
    src = d / "two_shots.mp4"
    make_two_shot_clip(src, frames=48, cut=24, width=W, height=H, gop=8)
    write_png(d / "hole.png", _hole())
    return d, src, d / "hole.png"


def _frames(path):
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def _packets(path, kind):
    with av.open(str(path)) as c:
        return [(bytes(p), p.pts) for p in c.demux(**{kind: 0}) if p.size]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _check_same_as_single(single: Path, chunked: Path, result, hole: np.ndarray) -> None:
    """The contract: same frame count and pts, same audio packets, pixels outside the hole bit-exact (lossless),
    inside the hole >= 40 dB at chunk borders and bit-exact where the border is a scene cut."""
    a, b = _frames(single), _frames(chunked)
    assert len(a) == len(b) == result.frames
    assert [p for p, _ in a] == [p for p, _ in b]
    assert _packets(single, "audio") == _packets(chunked, "audio")
    inside = hole > 0
    dilated = np.zeros_like(inside)
    ys, xs = np.nonzero(inside)
    dilated[max(0, ys.min() - 8):ys.max() + 9, max(0, xs.min() - 8):xs.max() + 9] = True  # hole + margin
    for (_, x), (_, y) in zip(a, b, strict=True):
        assert np.array_equal(x[~dilated], y[~dilated])
    assert len(result.starts) >= 3 and result.cut_starts, result.starts
    for s in result.starts[1:]:
        for i in (s - 1, s):
            assert _psnr(a[i][1][dilated], b[i][1][dilated]) >= 40.0, (i, result.starts)
    for s in result.cut_starts:
        for i in (s - 1, s, s + 1):
            assert np.array_equal(a[i][1], b[i][1]), (i, result.cut_starts)


def test_plan_cuts_at_the_scene_cut_and_at_keyframes(clip, tmp_path):
    _, src, hole = clip
    cfg = load_config(None, {"temporal": {"mode": "fast"}})
    analysis = chunks_mod.analyse(src, hole, cfg, tmp_path)
    assert analysis.cuts == [24]
    assert analysis.keyframes[:3] == [0, 8, 16]
    plan = chunks_mod.plan(analysis, cfg, chunk_seconds=0.34, source=str(src), work_dir=tmp_path, suffix=".mkv")
    starts = [c.frames[0] for c in plan]
    assert 24 in starts and starts[0] == 0
    assert all(s == 24 or s in analysis.keyframes for s in starts)
    assert sum(c.size for c in plan) == 48
    pre, post = chunks_mod.rolls(cfg)
    assert (pre, post) == (20, 10)  # window 10 + background memory 5 samples x stride 2; window ahead
    second = plan[1]
    assert second.own_from == min(pre, second.frames[0])  # pre-roll decoded, not written
    assert len(second.pts) == second.own_from + second.size + min(post, 24 - second.frames[1] - 1)  # stops at the cut
    at_cut = next(c for c in plan if c.frames[0] == 24)
    assert at_cut.starts_at_cut and at_cut.own_from == 0  # a shot's first chunk needs no pre-roll
    assert chunks_mod.rolls(load_config(None, {"temporal": {"mode": "off"}})) == (0, 0)
    shots = chunks_mod.plan(analysis, cfg, chunk_seconds=0.34, source=str(src), work_dir=tmp_path, suffix=".mkv",
                            cuts_only=True)
    assert [c.frames for c in shots] == [(0, 23), (24, 47)] and shots[1].own_from == 0


@pytest.mark.parametrize("seconds", [0.04, 0.01, 0.0001])
def test_plan_with_chunks_of_a_frame_ends(clip, tmp_path, seconds):
    """A chunk of about one frame: a scene cut at the border was chosen as the next border again and again
    (the plan never ended and its list grew); now every frame is in exactly one chunk."""
    _, src, hole = clip
    cfg = load_config(None, {"temporal": {"mode": "fast"}})
    analysis = chunks_mod.analyse(src, hole, cfg, tmp_path)
    plan = chunks_mod.plan(analysis, cfg, chunk_seconds=seconds, source=str(src), work_dir=tmp_path, suffix=".mkv")
    assert sum(c.size for c in plan) == 48
    assert [c.frames[0] for c in plan] == sorted({c.frames[0] for c in plan})


def test_shot_split_restarts_the_completion_at_each_cut(clip):
    from streamfill import build
    from streamfill.io import VideoReader
    from streamfill.masks import StaticMask

    _, src, hole = clip
    cfg = load_config(None, {"temporal": {"mode": "fast"}})
    made = []

    def factory():
        made.append(build.make_completion(cfg))
        return made[-1]

    from streamfill.pipeline.shots import ShotSplit

    split = ShotSplit(factory, cfg.track.cut_threshold)
    with VideoReader(src) as r:
        out = list(split.stream(StaticMask(_hole(), cfg.mask).pair(r)))
    assert [f.index for f in out] == list(range(48))
    assert split.cuts == [24] and len(made) == 2
    assert [m.stats.frames for m in made] == [24, 24] and split.frames_filled == 48


def test_chunked_run_matches_a_single_run(clip, tmp_path):
    _, src, hole = clip
    cfg = load_config(None, {"io": {"lossless": True}, "temporal": {"mode": "fast"}})
    api.process(src, tmp_path / "single.mkv", mask=hole, config=cfg)
    result = process_chunked(src, tmp_path / "chunked.mkv", mask=hole, config=cfg, executor=LocalExecutor(cfg),
                             chunk_seconds=0.34)
    assert result.chunks >= 4 and result.frames == 48 and result.filled == 48
    _check_same_as_single(tmp_path / "single.mkv", tmp_path / "chunked.mkv", result, _hole())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # work folder removed


def test_chunked_webm_output_is_vp9_with_opus_audio(tmp_path):
    """Segments of a .webm output are WebM (VP9) too, and the source's AAC audio is encoded as Opus when joined."""
    from media import box_mask, make_video

    src = tmp_path / "in.mp4"
    make_video(src, frames=30, audio=True)
    hole = tmp_path / "m.png"
    write_png(hole, box_mask(64, 96, 30, 20, 50, 40))
    cfg = load_config(None, {"temporal": {"mode": "off"}})
    result = process_chunked(src, tmp_path / "out.webm", mask=hole, config=cfg, executor=LocalExecutor(cfg),
                             chunk_seconds=0.4)
    assert result.chunks >= 2 and result.frames == 30
    with av.open(str(tmp_path / "out.webm")) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
        assert c.streams.audio[0].codec_context.name == "opus"
        assert sum(1 for _ in c.decode(video=0)) == 30


def test_per_frame_masks_go_through_the_serial_pass(clip, tmp_path):
    _, src, _ = clip
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(48):
        m = np.zeros((H, W), np.uint8)
        x = 5 + i
        m[20:40, x:x + 16] = 255
        write_png(masks / f"{i:03d}.png", m)
    cfg = load_config(None, {"io": {"lossless": True}, "temporal": {"mode": "off"}})
    api.process(src, tmp_path / "single.mkv", mask=masks, config=cfg)
    result = process_chunked(src, tmp_path / "chunked.mkv", mask=masks, config=cfg, executor=LocalExecutor(cfg),
                             chunk_seconds=0.34)
    a, b = _frames(tmp_path / "single.mkv"), _frames(tmp_path / "chunked.mkv")
    assert result.chunks >= 4
    assert [p for p, _ in a] == [p for p, _ in b]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))  # temporal off: exact


def test_h264_with_b_frames_and_variable_frame_rate_joins_with_the_single_run_pts(tmp_path):
    src = tmp_path / "vfr.mp4"
    make_two_shot_clip(src, frames=40, cut=20, width=W, height=H, gop=8, vfr=True)
    write_png(tmp_path / "hole.png", _hole())
    cfg = load_config(None, {"temporal": {"mode": "off"}, "io": {"preset": "veryfast"}})
    api.process(src, tmp_path / "single.mp4", mask=tmp_path / "hole.png", config=cfg)
    result = process_chunked(src, tmp_path / "chunked.mp4", mask=tmp_path / "hole.png", config=cfg,
                             executor=LocalExecutor(cfg), chunk_seconds=0.3)
    assert result.chunks >= 3
    a, b = _frames(tmp_path / "single.mp4"), _frames(tmp_path / "chunked.mp4")
    assert len(a) == len(b) == 40
    assert [p for p, _ in a] == [p for p, _ in b]
    with av.open(str(tmp_path / "chunked.mp4")) as c:
        packets = [p for p in c.demux(video=0) if p.size]
        assert any(p.pts != p.dts for p in packets)  # B-frames really reorder
        dts = [p.dts for p in packets]
    assert all(y > x for x, y in zip(dts, dts[1:], strict=False))
    assert all(p.dts <= p.pts for p in packets)
    assert _packets(tmp_path / "single.mp4", "audio") == _packets(tmp_path / "chunked.mp4", "audio")


def test_join_refuses_segments_encoded_differently(tmp_path):
    from media import make_video

    make_video(tmp_path / "a.mp4", frames=4, width=64, height=48)
    make_video(tmp_path / "b.mp4", frames=4, width=96, height=64)
    with pytest.raises(OutputError, match="encoded differently"):
        join_segments([tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]


def test_a_join_with_the_wrong_count_leaves_the_existing_output_alone(tmp_path):
    """The frame count was checked after the rename, and the file deleted: a file already under the output
    name (a previous run's result) was lost. It is now checked before, and the old file stays."""
    from media import make_video

    tb = Fraction(1, 25)
    make_video(tmp_path / "a.mp4", frames=4, width=64, height=48, vfr_pts=[0, 1, 2, 3], time_base=tb)
    make_video(tmp_path / "b.mp4", frames=4, width=64, height=48, vfr_pts=[4, 5, 6, 7], time_base=tb)
    old = tmp_path / "out.mp4"
    old.write_bytes(b"the previous result")
    with pytest.raises(OutputError, match="would hold 8 of 9 frames"):
        join_segments([tmp_path / "a.mp4", tmp_path / "b.mp4"], old, expect=9)
    assert old.read_bytes() == b"the previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4", "out.mp4"]
    assert join_segments([tmp_path / "a.mp4", tmp_path / "b.mp4"], old, expect=8).packets == 8


def test_a_chunk_failing_twice_fails_the_run_naming_it(clip, tmp_path, monkeypatch):
    _, src, hole = clip
    cfg = load_config(None, {"temporal": {"mode": "off"}})
    real = chunks_mod.render_chunk
    calls = []

    def flaky(chunk, config, **kw):
        calls.append(chunk.id)
        if chunk.id == 1:
            raise OSError("disk vanished")
        return real(chunk, config, **kw)

    monkeypatch.setattr(chunks_mod, "render_chunk", flaky)
    with pytest.raises(DistributedError, match=r"chunk 1 \(frames 8-15\) failed twice: OSError: disk vanished"):
        process_chunked(src, tmp_path / "out.mp4", mask=hole, config=cfg, executor=LocalExecutor(cfg),
                        chunk_seconds=0.34)
    assert calls.count(1) == 2
    assert list(tmp_path.iterdir()) == []  # nothing under the final name, work folder removed


def _run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "streamfill", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_batch_with_a_corrupt_clip_keeps_the_good_outputs(clip, tmp_path):
    _, src, hole = clip
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    from media import make_video

    make_video(tmp_path / "other.mp4", frames=6, width=W, height=H)
    out = tmp_path / "out"
    r = _run_cli("batch", src, bad, tmp_path / "other.mp4", "--out-dir", out, "--mask", hole, "--temporal", "off")
    assert r.returncode == 1
    assert (out / "two_shots.mp4").exists() and (out / "other.mp4").exists()
    assert not (out / "broken.mp4").exists()
    assert sorted(p.name for p in out.iterdir()) == ["other.mp4", "two_shots.mp4"]  # no partial files
    assert "1 of 3 clips failed" in r.stderr and "broken.mp4: cannot" in r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["clip", "frames", "filled", "seconds", "status"]
    assert any("two_shots.mp4" in ln and " 48 " in ln and ln.endswith("ok") for ln in lines)
    assert any("broken.mp4" in ln and ln.endswith("failed") for ln in lines)


def test_batch_in_a_process_pool(tmp_path):
    from media import make_video

    from streamfill.distributed import batch_jobs, run_batch_local

    for name in ("a", "b"):
        make_video(tmp_path / f"{name}.mp4", frames=5, width=64, height=48)
    m = np.zeros((48, 64), np.uint8)
    m[10:20, 10:30] = 255
    write_png(tmp_path / "m.png", m)
    cfg = load_config(None, {"temporal": {"mode": "off"}})
    jobs = batch_jobs([str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), str(tmp_path / "missing.mp4")],
                      tmp_path / "out", mask=str(tmp_path / "m.png"), config=cfg)
    results = run_batch_local(jobs, cfg, jobs_parallel=2)
    assert [(r.status, r.frames) for r in results] == [("ok", 5), ("ok", 5), ("failed", 0)]
    assert "missing.mp4" in results[2].reason
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4"]


@pytest.mark.parametrize("whom", ["group", "parent"])
def test_interrupted_batch_in_a_process_pool_stops_at_once(tmp_path, whom):
    """Ctrl-C (SIGINT to the process group) or SIGTERM to the parent alone during `batch --jobs 2`: the parent
    said "interrupted" but, leaving the pool's `with` block, waited for it to render every clip still queued
    (their outputs appeared after the interrupt). Now the queued clips are dropped and the workers stop."""
    import os
    import signal

    from media import box_mask

    names = [f"c{i}.mp4" for i in range(5)]
    for name in names:
        make_video(tmp_path / name, frames=60, width=96, height=64)
    write_png(tmp_path / "m.png", box_mask(64, 96, 20, 20, 60, 44))
    out = tmp_path / "out"
    # as in a terminal (streamfill_cmd): a run started as a background job (CI) inherits SIGINT ignored, and then
    # only the workers saw the Ctrl-C
    proc = subprocess.Popen(streamfill_cmd("batch", *names, "--out-dir", out, "--mask", "m.png", "--temporal",
                                           "quality", "-q", "--jobs", "2"), cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out.is_dir() and any(".partial-" in p.name for p in out.iterdir())):  # the workers are rendering
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    if whom == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert time.monotonic() - t0 < 10
    left = sorted(p.name for p in out.iterdir())
    assert not any(".partial-" in n for n in left) and len(left) <= 2, left  # the clips queued were not rendered
    # no worker left: nothing of the session still runs (an exited helper, a zombie until init reaps it, is fine)
    ps = subprocess.run(["ps", "-o", "stat=,args=", "-s", str(proc.pid)], capture_output=True, text=True).stdout
    assert [line for line in ps.splitlines() if not line.strip().startswith("Z")] == [], ps


def test_a_worker_killed_in_a_process_pool_fails_only_its_clip(tmp_path):
    """A worker process that dies (SIGKILL: the out-of-memory killer) broke the whole pool: every clip still in
    it or queued failed with BrokenProcessPool. The clips not done run again, each in a pool of its own, so
    only the clip whose worker dies again fails."""
    from batch_workers import killed_on_bad

    from streamfill.distributed.batch import ClipJob, run_batch_local

    names = ["a.mp4", "bad.mp4", "b.mp4", "c.mp4", "d.mp4"]
    jobs = [ClipJob(str(tmp_path / n), str(tmp_path / "out" / n), None) for n in names]
    seen = []
    results = run_batch_local(jobs, load_config(None), jobs_parallel=2, on_result=seen.append, render=killed_on_bad)
    assert [r.status for r in results] == ["ok", "failed", "ok", "ok", "ok"], results
    assert "worker process died" in results[1].reason
    assert len(seen) == len(names)


def test_pool_workers_do_not_inherit_a_lock_held_by_another_thread(tmp_path):
    """CI hung in the batch pool test: its workers were forked from the test process while threads left by
    earlier tests ran there, and a fork copies a lock another thread holds, locked, with nobody to release it.
    The workers are now spawned: a lock held by a parent thread during the batch does not reach them."""
    import batch_workers

    from streamfill.distributed.batch import ClipJob, run_batch_local

    held, release = threading.Event(), threading.Event()

    def hold():
        with batch_workers.LOCK:
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    held.wait(10)
    try:
        jobs = [ClipJob(str(tmp_path / n), str(tmp_path / "out" / n), None) for n in ("a.mp4", "b.mp4")]
        results = run_batch_local(jobs, load_config(None), jobs_parallel=2, render=batch_workers.needs_the_lock)
    finally:
        release.set()
        holder.join(10)
    assert [(r.status, r.reason) for r in results] == [("ok", ""), ("ok", "")], results


def test_a_partial_written_on_another_node_is_not_removed_as_stale(tmp_path, monkeypatch):
    """Ray workers on several machines write into one shared folder (segments of `process --ray`, outputs of
    `batch`). Each writer removes the partials whose process no longer runs, but a pid from another machine
    does not run here: a worker starting its chunk deleted the segment another node was writing (that chunk
    then failed at its rename, and a batch clip failed outright). Partial names now say which machine."""
    import os

    from streamfill.io import encode

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    here = os.uname()
    monkeypatch.setattr(os, "getpid", lambda: dead)
    monkeypatch.setattr(os, "uname", lambda: os.uname_result((here[0], here[1] + "-other-node", *here[2:])))
    elsewhere = encode._temp_path(tmp_path / "chunk-00000.nut")  # being written on the other node
    elsewhere.write_bytes(b"x")
    monkeypatch.setattr(os, "uname", lambda: here)
    stale = encode._temp_path(tmp_path / "chunk-00001.nut")  # left here by a process killed outright
    stale.write_bytes(b"x")
    monkeypatch.undo()
    assert encode.remove_stale_partials(tmp_path) == [stale]
    assert sorted(tmp_path.iterdir()) == [elsewhere]


def test_wrong_ray_address_is_one_line_without_a_hang(clip, tmp_path):
    _, src, hole = clip
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    r = _run_cli("process", src, "-o", tmp_path / "o.mp4", "--mask", hole, "--ray", f"127.0.0.1:{port}", timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "no Ray cluster at 127.0.0.1" in r.stderr
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_ray_address_that_is_not_a_ray_head_times_out(clip, tmp_path):
    _, src, hole = clip
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections, never speaks
    port = server.getsockname()[1]
    try:
        t0 = time.monotonic()
        r = _run_cli("process", src, "-o", tmp_path / "o.mp4", "--mask", hole, "--ray", f"127.0.0.1:{port}",
                     "--ray-timeout", "4", timeout=60)
        took = time.monotonic() - t0
    finally:
        server.close()
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and f"127.0.0.1:{port}" in r.stderr, r.stderr
    assert took < 25


# -- a two-node Ray cluster in this process ------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from streamfill.distributed import ray_backend

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray_backend.connect(c.address)
    yield c
    ray_backend.shutdown()
    c.shutdown()


@pytest.mark.slow
def test_ray_cluster_chunked_run_matches_a_single_run(cluster, clip, tmp_path):
    from streamfill.distributed.ray_backend import RayExecutor

    _, src, hole = clip
    cfg = load_config(None, {"io": {"lossless": True}, "temporal": {"mode": "fast"}})
    api.process(src, tmp_path / "single.mkv", mask=hole, config=cfg)
    seen = []
    executor = RayExecutor(cfg)
    try:
        result = process_chunked(src, tmp_path / "ray.mkv", mask=hole, config=cfg, executor=executor,
                                 chunk_seconds=0.34, progress=lambda stage, d, t: seen.append((stage, d, t)))
    finally:
        executor.close()
    assert len(result.nodes) == 2  # both worker nodes rendered chunks
    _check_same_as_single(tmp_path / "single.mkv", tmp_path / "ray.mkv", result, _hole())
    render = [d for stage, d, _ in seen if stage == "render"]
    assert render[-1] == 48 and render == sorted(render)  # one bar, fed by all workers, ends at the total


@pytest.mark.slow
def test_ray_batch_with_a_corrupt_clip(cluster, clip, tmp_path):
    from streamfill.distributed import batch_jobs
    from streamfill.distributed.ray_backend import RayExecutor

    _, src, hole = clip
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    cfg = load_config(None, {"temporal": {"mode": "off"}})
    jobs = batch_jobs([str(src), str(bad)], tmp_path / "out", mask=str(hole), config=cfg)
    executor = RayExecutor(cfg)
    try:
        results = executor.clips(jobs)
    finally:
        executor.close()
    assert [r.status for r in results] == ["ok", "failed"]
    assert results[0].frames == 48 and "bad.mp4" in results[1].reason
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["two_shots.mp4"]


@pytest.mark.slow
def test_cli_process_and_batch_on_the_cluster(cluster, clip, tmp_path):
    _, src, hole = clip
    r = _run_cli("process", src, "-o", tmp_path / "out.mkv", "--mask", hole, "--lossless", "--ray", cluster.address,
                 "--chunk-seconds", "0.5", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "48 frames" in r.stderr and "at scene cuts" in r.stderr
    assert len(_frames(tmp_path / "out.mkv")) == 48
    r = _run_cli("batch", src, "--out-dir", tmp_path / "b", "--mask", hole, "--temporal", "off", "--ray",
                 cluster.address, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "1 of 1 clips done, 48 frames" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "out.mkv"]  # no work folder left


@pytest.mark.slow
def test_ray_node_removed_mid_job(cluster, tmp_path):
    """A third node joins, takes chunks, and is removed while the job runs: its chunks are retried on the
    others and the output is complete, or the run fails with one line and writes nothing."""
    from streamfill.distributed.ray_backend import RayExecutor

    src = tmp_path / "long.mp4"
    make_two_shot_clip(src, frames=96, cut=48, width=W, height=H, gop=8)
    write_png(tmp_path / "hole.png", _hole())
    node = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    cfg = load_config(None, {"io": {"lossless": True}, "temporal": {"mode": "fast"}})
    executor = RayExecutor(cfg, workers=3)
    started = threading.Event()
    outcome = {}

    def job():
        try:
            outcome["result"] = process_chunked(
                src, tmp_path / "out.mkv", mask=tmp_path / "hole.png", config=cfg, executor=executor,
                chunk_seconds=0.34, progress=lambda stage, d, t: stage == "render" and d > 0 and started.set())
        except DistributedError as exc:
            outcome["error"] = exc

    t = threading.Thread(target=job)
    t.start()
    assert started.wait(120)
    cluster.remove_node(node)
    t.join(300)
    executor.close()
    assert not t.is_alive()
    print(f"lost workers: {executor.lost_workers}, outcome: {sorted(outcome)}")
    if "result" in outcome:
        assert outcome["result"].frames == 96
        assert len(_frames(tmp_path / "out.mkv")) == 96
    else:
        assert "\n" not in str(outcome["error"])
        assert not (tmp_path / "out.mkv").exists()


def test_batch_refuses_a_folder_or_a_clip_given_twice_before_making_the_out_dir(tmp_path):
    from streamfill.config import Config
    from streamfill.errors import InputError

    src = tmp_path / "a.mp4"
    make_video(src, frames=3)
    (tmp_path / "frames").mkdir()
    out = tmp_path / "out"
    with pytest.raises(InputError, match="is a folder"):
        batch_jobs([str(src), str(tmp_path / "frames")], out, mask=None, config=Config())
    with pytest.raises(InputError, match="given twice"):
        batch_jobs([str(src), str(src)], out, mask=None, config=Config())
    assert not out.exists()
    assert len(batch_jobs([str(src)], out, mask=None, config=Config())) == 1 and out.is_dir()


def _box_hole(tmp_path) -> Path:
    mask = np.zeros((64, 96), np.uint8)
    mask[20:40, 30:60] = 255
    write_png(tmp_path / "hole.png", mask)
    return tmp_path / "hole.png"


def _video_times(path) -> list:
    """The presentation times (exact fractions of a second) of a file's video frames."""
    from fractions import Fraction

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [f.pts * Fraction(s.time_base) for f in c.decode(s)]


def test_chunked_mp4_keeps_every_timestamp_and_the_length_of_a_single_run(tmp_path):
    """NTSC-rate clip starting at frame 15 (pts 15015 in 1/30000), joined into an .mp4: the join left the edit
    list in milliseconds (every frame 0.5 ms early), kept the segments' packet durations in their own time base
    (the last frame twice as long) and gave the first frames' decode times consecutive ticks (the track two
    frames short, so a --start near the end was refused)."""
    from fractions import Fraction

    tb = Fraction(1001, 30000)
    src = tmp_path / "ntsc.mp4"
    make_video(src, fps=Fraction(30000, 1001), time_base=Fraction(1, 30000), vfr_pts=[1001 * k for k in range(15, 45)],
               options={"movie_timescale": "30000"})
    hole = _box_hole(tmp_path)
    cfg = load_config(None, {"temporal": {"mode": "fast"}})
    api.process(src, tmp_path / "single.mp4", mask=hole, config=cfg)
    result = process_chunked(src, tmp_path / "chunked.mp4", mask=hole, config=cfg, executor=LocalExecutor(cfg),
                             chunk_seconds=0.3)
    assert result.chunks >= 3 and result.frames == 30

    def timing(path):
        times = _video_times(path)
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            durations = {p.duration * Fraction(s.time_base) for p in c.demux(s) if p.size}
            return times, durations, s.duration * Fraction(s.time_base)

    times, durations, length = timing(tmp_path / "chunked.mp4")
    assert times == [k * tb for k in range(15, 45)]
    assert durations == {tb} and (times, durations, length) == timing(tmp_path / "single.mp4")


def _b_frame_ts(path: Path, frames: int = 40) -> None:
    """An MPEG-TS at 30000/1001 fps starting at 1.4 s, keyframes every 12 frames, B-frames."""
    from media import pattern

    tb = Fraction(1, 90000)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=Fraction(30000, 1001))
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        v.options = {"preset": "veryfast", "crf": "18", "g": "12", "bf": "3"}
        v.codec_context.time_base = v.time_base = tb
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(k, 64, 96), format="rgb24")
            frame.pts, frame.time_base = 126123 + 3003 * k, tb
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode(None):
            out.mux(packet)


def test_chunked_run_of_an_mpeg_ts_with_b_frames(tmp_path):
    """MPEG-TS seeks by decode time: with B-frames a keyframe's dts lies before its pts, the seek to its pts
    landed on the next keyframe and every chunked run failed ("expected the frame at pts 128213, decoded
    164249"). The chunk's reader now steps back until it starts at or before its first frame."""
    src = tmp_path / "b.ts"
    _b_frame_ts(src)
    cfg = load_config(None, {"temporal": {"mode": "fast"}})
    result = process_chunked(src, tmp_path / "out.mp4", mask=_box_hole(tmp_path), config=cfg,
                             executor=LocalExecutor(cfg), chunk_seconds=0.35)
    assert result.chunks >= 3 and result.frames == 40
    assert _video_times(tmp_path / "out.mp4") == _video_times(src)


@pytest.mark.parametrize(("frames", "preroll"), [(40, 0), (8, None)])
def test_a_ts_chunk_that_starts_at_the_last_keyframe_is_read(tmp_path, frames, preroll):
    """From the last keyframe of an MPEG-TS with B-frames the seek went past the end of the file: nothing was
    decoded, which was not taken for an overshoot, and the run failed after every other chunk was rendered
    ("chunk 3 (frames 36-39) failed twice: ... the range ended after 0 of 4 frames"): without pre-roll, or a
    clip of one keyframe interval. The reader steps back from there too."""
    src = tmp_path / "b.ts"
    _b_frame_ts(src, frames)
    cfg = load_config(None, {"temporal": {"mode": "fast"}})
    result = process_chunked(src, tmp_path / "out.mp4", mask=_box_hole(tmp_path), config=cfg,
                             executor=LocalExecutor(cfg), chunk_seconds=0.1 if frames < 12 else 0.35,
                             preroll=preroll)
    assert result.chunks >= 2 and result.frames == frames
    assert _video_times(tmp_path / "out.mp4") == _video_times(src)


@pytest.mark.parametrize(("asks", "words"), [
    ((1.0, 1.0), "each worker asks for --gpus-per-worker 1 and the cluster has 0 GPUs"),
    ((4.0, 0.0), "each worker asks for --cpus-per-worker 4 and the cluster has 2 CPUs"),
    ((1.0, 0.0), "the engine failed"),
])
def test_why_no_worker_started_is_said_in_the_user_s_terms(asks, words):
    """Ray cancels a worker that the cluster cannot place with a message about actors ('cancelled before it
    started running'); the flag that asked for too much is named instead."""
    from streamfill.distributed.ray_backend import _why_none_started

    assert words in _why_none_started({"CPU": 2.0}, *asks, ["the engine failed"], 120)
