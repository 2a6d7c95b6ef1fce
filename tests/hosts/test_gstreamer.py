"""The `streamfill` GStreamer element (plugins/gstreamer) in real gst-launch-1.0 pipelines against
`streamfill serve`, loaded by Debian's python3 plugin loader in the system Python (not this venv).

Skipped, with one line, only where GStreamer or its Python plugin loader is not installed (.ci/run
installs them on Debian)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    ROOT,
    frame_image,
    free_port,
    host_env,
    moving_square,
    read_frames,
    square_over_background,
    still_background,
    write_grey_clip,
    write_rgb_clip,
)
from media import write_png

W, H, N, FPS = 96, 64, 12, 25
CHECK = Path(__file__).with_name("gst_check.py")
DEBIAN = ("gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly "
          "gstreamer1.0-libav gstreamer1.0-python3-plugin-loader python3-gst-1.0 python3-numpy python3-zmq")


@pytest.fixture(scope="module")
def gst(tmp_path_factory):
    """The host environment, once the element is known to load there."""
    if not shutil.which("gst-launch-1.0", path="/usr/bin:/bin:/usr/local/bin"):
        pytest.skip(f"GStreamer is not installed (Debian: apt-get install {DEBIAN})")
    env = host_env(tmp_path_factory.mktemp("gst"))
    probe = subprocess.run(["gst-inspect-1.0", "streamfill"], env=env, capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"the streamfill element does not load: GStreamer's Python plugin loader, numpy or pyzmq is "
                    f"missing (Debian: apt-get install {DEBIAN})")
    return env


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A lossless clip with a moving red square, its masks as a video and as a folder, and one mask image."""
    d = tmp_path_factory.mktemp("gst_media")
    frames = [frame_image(i, H, W) for i in range(N)]
    write_rgb_clip(d / "clip.mkv", frames, FPS)
    masks = []
    (d / "masks").mkdir()
    for i in range(N):
        x, y = moving_square(i, H, W)
        m = np.zeros((H, W), np.uint8)
        m[y - 1:y + 13, x - 1:x + 13] = 255
        masks.append(m)
        write_png(d / "masks" / f"m{i}.png", m)  # unpadded (m10 after m9, not after m1)
    write_grey_clip(d / "masks.mkv", masks, FPS)
    still = np.zeros((H, W), np.uint8)
    still[10:30, 50:80] = 255
    write_png(d / "still.png", still)
    return d, frames, masks


def _process(clip: Path, mask: Path, out: Path) -> list[np.ndarray]:
    """`streamfill process` per-frame, lossless: the reference the element must match."""
    run = subprocess.run([sys.executable, "-m", "streamfill", "process", str(clip), "--mask", str(mask),
                          "--temporal", "off", "--lossless", "-q", "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return read_frames(out)[0]


def _launch(env, *pipeline: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["gst-launch-1.0", *pipeline], env=env, capture_output=True, text=True, timeout=timeout)


def _check(env, out: Path, clip: Path, *props: str, seek: int | None = None) -> tuple[dict, np.ndarray]:
    cmd = ["/usr/bin/python3", str(CHECK), str(clip), str(out), *props]
    if seek is not None:
        cmd += ["--seek", str(seek)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    return json.loads((out / "result.json").read_text()), np.load(out / "frames.npy")


def _grown(mask: np.ndarray, r: int = 5) -> np.ndarray:
    out = mask > 0
    ys, xs = np.nonzero(out)
    grown = np.zeros_like(out)
    for y, x in zip(ys, xs, strict=True):
        grown[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = True
    return grown


@pytest.mark.slow
def test_gst_launch_mask_video_matches_process(gst, media, serve, tmp_path):
    """The issue's pipeline: every frame comes out with its pts (x264 + mp4), and the frames the element
    produced (the lossless branch of a tee, before x264) equal `streamfill process` byte for byte."""
    d, frames, masks = media
    mp4, raw = tmp_path / "out.mp4", tmp_path / "out.rgb"
    run = _launch(gst, "filesrc", f"location={d / 'clip.mkv'}", "!", "decodebin", "!", "videoconvert", "!",
                  "streamfill", f"endpoint={serve}", f"mask={d / 'masks.mkv'}", "!", "tee", "name=t",
                  "t.", "!", "queue", "!", "videoconvert", "!", "x264enc", "!", "mp4mux", "!", "filesink",
                  f"location={mp4}", "t.", "!", "queue", "!", "filesink", f"location={raw}")
    assert run.returncode == 0, run.stdout + run.stderr
    decoded, times = read_frames(mp4)
    assert len(decoded) == N
    assert times == pytest.approx([i / FPS for i in range(N)], abs=1e-3)
    got = np.fromfile(raw, np.uint8).reshape(-1, H, W, 3)
    assert len(got) == N
    want = _process(d / "clip.mkv", d / "masks.mkv", tmp_path / "ref.mkv")
    for i in range(N):
        assert np.array_equal(got[i], want[i]), f"frame {i} differs from streamfill process"
        outside = ~_grown(masks[i])
        assert np.array_equal(got[i][outside], frames[i][outside]), f"frame {i}: pixels outside the hole changed"
        assert (got[i][masks[i] > 0] != frames[i][masks[i] > 0]).any(), f"frame {i}: the hole was not filled"


@pytest.mark.slow
def test_mask_folder_and_image_match_process(gst, media, serve, tmp_path):
    d, frames, _ = media
    for mask in (d / "masks", d / "still.png"):
        result, got = _check(gst, tmp_path / mask.stem, d / "clip.mkv", f"endpoint={serve}", f"mask={mask}")
        assert result["error"] is None and result["frames_filled"] == N
        # the folder's masks must be taken in frame order: compared with the mask video's result
        want = _process(d / "clip.mkv", d / "masks.mkv" if mask.is_dir() else mask, tmp_path / f"{mask.stem}.mkv")
        assert all(np.array_equal(got[i], want[i]) for i in range(N)), mask.name


@pytest.mark.slow
def test_box_track_flushing_seek_and_latency(gst, media, serve, tmp_path):
    """box + track follows the moving square; a flushing seek restarts at the target with the right pts
    (masks by frame number); the element adds its `latency` to the latency query."""
    d, frames, masks = media
    x, y = moving_square(0, H, W)
    box = f"box={x - 1},{y - 1},14,14"
    result, got = _check(gst, tmp_path / "track", d / "clip.mkv", f"endpoint={serve}", box, "track=true",
                         "latency=150")
    assert result["error"] is None and len(got) == N
    assert result["pts"] == [i * 10**9 // FPS for i in range(N)]
    assert result["latency"][1] == result["upstream_latency"][1] + 150 * 10**6
    for i in range(N):
        hole = masks[i] > 0
        red = (got[i][..., 0] > 200) & (got[i][..., 1] < 60) & (got[i][..., 2] < 60)
        assert not (red & hole).any(), f"frame {i}: the tracked box missed part of the square"
    result, seeked = _check(gst, tmp_path / "seek", d / "clip.mkv", f"endpoint={serve}",
                            f"mask={d / 'masks.mkv'}", seek=5)
    assert result["seeked"] and result["pts"] == [i * 10**9 // FPS for i in range(5, N)]
    straight, _ = _check(gst, tmp_path / "straight", d / "clip.mkv", f"endpoint={serve}", f"mask={d / 'masks.mkv'}")
    full = np.load(tmp_path / "straight" / "frames.npy")
    assert all(np.array_equal(seeked[k], full[5 + k]) for k in range(N - 5))
    assert straight["frames_filled"] == N


def test_server_down_fail_posts_error(gst, media, tmp_path):
    d, _, _ = media
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    run = _launch(gst, "filesrc", f"location={d / 'clip.mkv'}", "!", "decodebin", "!", "videoconvert", "!",
                  "streamfill", f"endpoint={endpoint}", f"mask={d / 'still.png'}", "timeout=0.3", "retries=1",
                  "!", "fakesink", timeout=60)
    assert run.returncode != 0
    assert f"no answer from streamfill serve at {endpoint}" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_server_down_passthrough_completes(gst, media, tmp_path):
    d, frames, _ = media
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    result, got = _check(gst, tmp_path / "pass", d / "clip.mkv", f"endpoint={endpoint}", f"mask={d / 'still.png'}",
                         "on-error=passthrough", "timeout=0.3", "retries=0")
    assert result["error"] is None
    assert len(got) == N and result["passed_through"] == N and result["frames_filled"] == 0
    assert all(np.array_equal(got[i], frames[i]) for i in range(N))


@pytest.mark.parametrize("props, message", [
    (("on-error=maybe",), "on-error='maybe' must be fail or passthrough"),
    (("box=1,2,3",), "must be x,y,w,h"),
    ((), "set exactly one of mask=PATH or box=x,y,w,h"),
    (("mask=/nonexistent/mask.png",), "mask /nonexistent/mask.png does not exist"),
])
def test_bad_properties_are_one_line_errors(gst, media, props, message):
    d, _, _ = media
    run = _launch(gst, "filesrc", f"location={d / 'clip.mkv'}", "!", "decodebin", "!", "videoconvert", "!",
                  "streamfill", "endpoint=tcp://127.0.0.1:9", "timeout=0.2", "retries=0", *props, "!", "fakesink",
                  timeout=60)
    assert run.returncode != 0 and message in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_wrong_size_mask(gst, media, tmp_path, serve):
    d, _, _ = media
    write_png(tmp_path / "small.png", np.zeros((10, 10), np.uint8))
    run = _launch(gst, "filesrc", f"location={d / 'clip.mkv'}", "!", "decodebin", "!", "videoconvert", "!",
                  "streamfill", f"endpoint={serve}", f"mask={tmp_path / 'small.png'}", "!", "fakesink", timeout=60)
    assert run.returncode != 0 and f"is 10x10 but the frames are {W}x{H}" in run.stdout + run.stderr


def test_box_outside_the_frame(gst, media, serve):
    """A box that misses the frame is a one-line error (it filled nothing and counted every frame filled)."""
    d, _, _ = media
    run = _launch(gst, "filesrc", f"location={d / 'clip.mkv'}", "!", "decodebin", "!", "videoconvert", "!",
                  "streamfill", f"endpoint={serve}", f"box={W},10,8,8", "!", "fakesink", timeout=60)
    assert run.returncode != 0 and f"box={W},10,8,8 lies outside the {W}x{H} frames" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_element_imports_only_numpy_zmq_and_protocol(gst):
    """The host's Python gets numpy, pyzmq and streamfill.protocol from the element: nothing heavy."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'plugins')!r}); import hostlink; "
            "bad = [m for m in ('torch', 'cv2', 'av', 'streamfill.api', 'streamfill.transport') if m in sys.modules]; "
            "print(bad)")
    run = subprocess.run(["/usr/bin/python3", "-c", code], env=gst, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


class _FlakyServe:
    """A stand-in for serve on loopback that answers the first ``answer`` frames (the image, unchanged)
    and then goes silent, as a server that hangs or dies mid-stream does. With ``lookahead`` it says so in
    its hello and answers look-ahead frames that many frames late (deferred replies); as serve does
    (plugins/PROTOCOL.md 6.1.1), a frame whose ``index`` does not follow the previous one drops the held
    frames unanswered, and a ``bye`` answers the held frames (none with ``discard``), then itself."""

    def __init__(self, answer: int, lookahead: int = 0):
        import threading

        import zmq

        from streamfill import protocol

        self.answer, self.frames, self.restarts = answer, 0, 0
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.stop = threading.Event()
        held, last = [], [None]

        def loop():
            while not self.stop.is_set():
                if not self.sock.poll(50):
                    continue
                parts = self.sock.recv_multipart()
                envelope, body = parts[:2], parts[2:]
                msg = protocol.decode(body)
                if msg.type == "hello":
                    self.sock.send_multipart(envelope + protocol.encode_hello(
                        version=1, req=msg.req, extra={"lookahead": lookahead}))
                elif msg.type == "bye" and self.frames <= self.answer:
                    for done in [] if msg.header.get("discard") else held:
                        self.sock.send_multipart(envelope + [bytes(p) for p in protocol.encode_result(
                            done.image, index=done.index, pts=done.pts, req=done.req, stream=done.stream or None)])
                    held.clear()
                    last[0] = None
                    self.sock.send_multipart(envelope + protocol.encode_bye(req=msg.req, stream=msg.stream or None))
                elif msg.type == "frame":
                    self.frames += 1
                    if last[0] is not None and msg.index != last[0] + 1:
                        self.restarts += 1  # serve starts the stream afresh (look-back: without its history)
                        held.clear()
                    last[0] = msg.index
                    held.append(msg)
                    if self.frames > self.answer:
                        continue
                    while len(held) > (lookahead if msg.header.get("lookahead") else 0):
                        done = held.pop(0)
                        self.sock.send_multipart(envelope + [bytes(p) for p in protocol.encode_result(
                            done.image, index=done.index, pts=done.pts, req=done.req, stream=done.stream or None)])

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close(0)
        self.ctx.term()


def _against_flaky_serve(gst, media, tmp_path, mode, **serve):
    """The element over the still-mask clip against a ``_FlakyServe(**serve)`` (closed afterwards) with
    ``on-error=mode``, a 0.3 s timeout and no retries: ``(fake, result, got)``."""
    d = media[0]
    fake = _FlakyServe(**serve)
    try:
        result, got = _check(gst, tmp_path / mode, d / "clip.mkv", f"endpoint={fake.endpoint}",
                             f"mask={d / 'still.png'}", f"on-error={mode}", "timeout=0.3", "retries=0")
    finally:
        fake.close()
    return fake, result, got


@pytest.mark.parametrize("mode", ["fail", "passthrough"])
def test_lookahead_server_stops_answering_mid_stream(gst, media, tmp_path, mode):
    """Look-ahead (serve holds 3 frames): serve answers frames 0-2 (as frames 3-5 come), then goes silent. `fail`
    stops with the first unanswered frame; `passthrough` forwards the held frames unchanged, in order, and
    every frame comes out with its pts."""
    frames = media[1]
    fake, result, got = _against_flaky_serve(gst, media, tmp_path, mode, answer=6, lookahead=3)
    if mode == "fail":
        assert result["error"].startswith("streamfill: frame ") and "no answer from streamfill serve at " \
            f"{fake.endpoint} for frame 3 after 1 tries of 0.3 s" in result["error"], result["error"]
        assert len(got) == 3 and result["frames_filled"] == 3
        assert result["flags_out"] == result["flags_in"][:3], "buffer flags (DISCONT, ...) lost"
    else:
        assert result["error"] is None and len(got) == N
        assert result["pts"] == [i * 10**9 // FPS for i in range(N)]
        assert result["frames_filled"] == 3 and result["passed_through"] == N - 3
        assert all(np.array_equal(got[i], frames[i]) for i in range(N))


@pytest.mark.parametrize("mode", ["fail", "passthrough"])
def test_server_stops_answering_mid_stream(gst, media, tmp_path, mode):
    frames = media[1]
    fake, result, got = _against_flaky_serve(gst, media, tmp_path, mode, answer=4)
    if mode == "fail":
        assert result["error"] == ("streamfill: frame 4: no answer from streamfill serve at "
                                   f"{fake.endpoint} for frame 4 after 1 tries of 0.3 s (is `streamfill serve "
                                   f"--bind {fake.endpoint}` running?)")
        assert len(got) == 4 and result["frames_filled"] == 4
    else:
        assert result["error"] is None and len(got) == N
        assert result["frames_filled"] == 4 and result["passed_through"] == N - 4
        assert all(np.array_equal(got[i], frames[i]) for i in range(N))


@pytest.mark.parametrize("temporal", ["lookahead", "lookback"])
def test_pts_gap_keeps_serve_indices_consecutive(gst, tmp_path, temporal):
    """A clip with a hole in its timestamps (frame 6 is missing: a variable frame rate, a dropped frame): the
    indices sent to serve still follow one another, so serve keeps the stream (a jump would drop the frames it
    holds unanswered and the look-ahead run failed with "no answer" after the timeouts), and every frame
    comes out with its own pts."""
    frames = [frame_image(i, H, W) for i in range(N)]
    pts = [i if i < 6 else i + 1 for i in range(N)]
    write_rgb_clip(tmp_path / "gap.mkv", frames, FPS, pts=pts)
    still = np.zeros((H, W), np.uint8)
    still[10:30, 50:80] = 255
    write_png(tmp_path / "still.png", still)
    fake = _FlakyServe(answer=10**6, lookahead=3)
    try:
        result, got = _check(gst, tmp_path / "out", tmp_path / "gap.mkv", f"endpoint={fake.endpoint}",
                             f"mask={tmp_path / 'still.png'}", f"temporal={temporal}", "timeout=1", "retries=0")
    finally:
        fake.close()
    assert result["error"] is None, result["error"]
    assert fake.restarts == 0
    assert result["pts"] == [p * 10**9 // FPS for p in pts] and result["frames_filled"] == N
    assert all(np.array_equal(got[i], frames[i]) for i in range(N))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _temporal_clip(tmp_path: Path, n: int):
    """A square crossing a still textured background (known: the truth under the hole), as lossless clips."""
    background = still_background(H, W)
    pairs = list(square_over_background(n, H, W))
    frames, masks = [p[0] for p in pairs], [p[1] for p in pairs]
    write_rgb_clip(tmp_path / "clip.mkv", frames, FPS)
    write_grey_clip(tmp_path / "masks.mkv", masks, FPS)
    return background, frames, masks


def _process_temporal(tmp_path: Path, out: str, *extra: str) -> list[np.ndarray]:
    run = subprocess.run([sys.executable, "-m", "streamfill", "process", str(tmp_path / "clip.mkv"), "--mask",
                          str(tmp_path / "masks.mkv"), "--lossless", "-q", "-o", str(tmp_path / out), *extra],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return read_frames(tmp_path / out)[0]


@pytest.mark.slow
def test_temporal_serve_matches_process(gst, tmp_path):
    """`serve --temporal fast` with the element's default `temporal=lookahead`: frames are held until serve
    has seen the look-ahead window, so over the whole clip, every frame and its pts, the hole is within
    0.5 dB of `process --temporal fast` (measured: identical). The latency query adds the window; EOS
    drains the held frames. `temporal=lookback` instead equals `process` run look-back ([temporal]
    live = true), answered frame by frame."""
    from conftest import running_serve

    n = 16
    background, frames, masks = _temporal_clip(tmp_path, n)
    (tmp_path / "live.toml").write_text("[temporal]\nlive = true\n")
    with running_serve("--temporal", "fast") as endpoint:
        result, got = _check(gst, tmp_path / "gst", tmp_path / "clip.mkv", f"endpoint={endpoint}",
                             f"mask={tmp_path / 'masks.mkv'}", "latency=100")
        back_result, back = _check(gst, tmp_path / "back", tmp_path / "clip.mkv", f"endpoint={endpoint}",
                                   f"mask={tmp_path / 'masks.mkv'}", "temporal=lookback", "latency=100")
        # a flushing seek once prerolled (the element held frames then): they are dropped, serve is told to
        # drop its own, and the frames from the target on come out, each with its pts
        seek_result, seeked = _check(gst, tmp_path / "seek", tmp_path / "clip.mkv", f"endpoint={endpoint}",
                                     f"mask={tmp_path / 'masks.mkv'}", seek=5)
    assert result["error"] is None and len(got) == n and result["frames_filled"] == n
    assert result["pts"] == [i * 10**9 // FPS for i in range(n)]
    assert result["flags_out"] == result["flags_in"]  # DISCONT and the others, as the pts
    window = 10  # fast's look-ahead window; 2 more frames are in flight
    assert result["latency"][1] == result["upstream_latency"][1] + 100 * 10**6 + (window + 2) * 10**9 // FPS
    assert back_result["latency"][1] == back_result["upstream_latency"][1] + 100 * 10**6
    assert back_result["error"] is None and back_result["pts"] == result["pts"]
    assert window <= max(result["lag"]) <= window + 2 and max(back_result["lag"]) == 0  # frames held
    assert seek_result["seeked"] and seek_result["error"] is None
    assert seek_result["pts"] == [i * 10**9 // FPS for i in range(5, n)]

    look_ahead = _process_temporal(tmp_path, "ahead.mkv", "--temporal", "fast")
    look_back = _process_temporal(tmp_path, "back.mkv", "--temporal", "fast", "--config", str(tmp_path / "live.toml"))
    per_frame = _process_temporal(tmp_path, "off.mkv", "--temporal", "off")
    assert all(np.array_equal(back[i], look_back[i]) for i in range(n))
    hole = np.stack(masks) > 0
    truth = np.stack([background] * n)[hole]
    psnr = {name: _psnr(np.stack(v)[hole], truth) for name, v in
            (("element", got), ("process", look_ahead), ("element lookback", back), ("per-frame", per_frame))}
    vs_process = [_psnr(got[i][masks[i] > 0], look_ahead[i][masks[i] > 0]) for i in range(n)]
    print("hole PSNR over the whole clip, dB:", psnr, "element vs process per frame:", min(vs_process))
    assert abs(psnr["element"] - psnr["process"]) <= 0.5, psnr
    after_seek = _psnr(np.stack(seeked)[hole[5:]], np.stack([background] * (n - 5))[hole[5:]])
    assert after_seek >= psnr["process"] - 0.5, after_seek
    assert psnr["element"] > psnr["element lookback"] + 3, psnr  # look-ahead knows what the first frames hide
    assert psnr["element"] > psnr["per-frame"] + 3, psnr
