"""`streamfill live` end to end: SIGTERM finalises the recording; ZeroMQ frame source, publisher and control.

Subprocesses and sockets are bounded in time (timeouts everywhere)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import zmq
from test_live import moving_square_clip, red_pixels

from streamfill import api, protocol
from streamfill.config import Config, merge

ROOT = Path(__file__).resolve().parents[1]


def free_tcp() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def decode_all(path: Path) -> list[tuple[int, np.ndarray]]:
    return [(f.pts, f.image) for f in api.io.open_video(path)]


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", ["SIGTERM", "SIGHUP"])  # SIGHUP: the terminal closed (was exit 130)
def test_sigterm_finalises_a_playable_recording_with_the_object_removed(tmp_path: Path, stop_signal):
    clip = tmp_path / "square.mp4"
    boxes = moving_square_clip(clip, frames=40, fps=25)
    out, stats = tmp_path / "clean.mp4", tmp_path / "stats.json"
    box = ",".join(str(v) for v in boxes[0])
    cmd = [sys.executable, "-m", "streamfill", "live", "--source", str(clip), "--realtime", "--loop",
           "--box", box, "--record", str(out), "--stats-json", str(stats)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:  # wait for the first per-second report: frames are flowing
            line = proc.stderr.readline()
            lines.append(line)
            if line.startswith("live ") and "out" in line or not line:
                break
        assert proc.poll() is None, "".join(lines)
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(getattr(signal, stop_signal))
        _, err = proc.communicate(timeout=15)
        stop_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert stop_s < 1.5, stop_s  # finalised within about a second (a loaded machine gets some slack)
    assert "ended: stop requested" in err
    s = json.loads(stats.read_text())
    assert s["frames_in"] == s["frames_out"] + s["dropped"] and s["frames_out"] > 0
    frames = decode_all(out)  # playable: decodes to the end, as many frames as were written
    assert len(frames) == s["frames_out"]
    assert not list(tmp_path.glob(".clean.partial*"))
    pts = [p for p, _ in frames]
    assert pts == sorted(pts)
    # the object is gone from the first and the last frame written (the clip loops, the tracker follows)
    assert red_pixels(frames[0][1]) == 0 and red_pixels(frames[-1][1]) == 0


def test_cli_bad_input_is_one_line(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "streamfill", "live", "--source", str(tmp_path / "none.mp4"),
                           "--box", "1,1,4,4", "--record", str(tmp_path / "o.mp4")],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "not found" in proc.stderr


def test_a_second_box_or_mask_is_refused(capsys):
    """A second --box (or --mask) silently replaced the first: live follows one object."""
    from streamfill.cli import main

    for flag, a, b in (("--box", "1,1,4,4", "5,5,4,4"), ("--mask", "a.png", "b.png")):
        with pytest.raises(SystemExit) as stop:
            main(["live", "--source", "x.mp4", flag, a, flag, b])
        assert stop.value.code == 2 and f"{flag} given twice" in capsys.readouterr().err


def test_salvage_keeps_a_damaged_file_source_running_to_its_damage(tmp_path: Path, capsys):
    """The decode error of a damaged file named ``--salvage``, which ``live`` did not have."""
    from media import make_video, write_png

    from streamfill.cli import main

    whole = tmp_path / "whole.mp4"
    make_video(whole, frames=60, options={"movflags": "+faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    mask = tmp_path / "m.png"
    write_png(mask, np.full((64, 96), 0, np.uint8))
    argv = ["live", "--source", str(cut), "--mask", str(mask), "--realtime", "--speed", "20", "--quiet"]
    assert main([*argv, "--record", str(tmp_path / "a.mp4")]) == 1
    err = capsys.readouterr().err
    assert "--salvage" in err and not (tmp_path / "a.mp4").exists()
    assert main([*argv, "--record", str(tmp_path / "b.mp4"), "--salvage"]) == 0
    assert "kept the" in capsys.readouterr().err and (tmp_path / "b.mp4").exists()


def _push_frames(endpoint: str, n: int, h: int = 48, w: int = 64, delay: float = 0.01) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(endpoint)
    try:
        for i in range(n):
            img = np.full((h, w, 3), 60, np.uint8)
            img[10:20, 10:20] = (250, 10, 10)  # a still object
            sock.send_multipart(protocol.encode_frame(img, index=i, pts=i, time_base=Fraction(1, 25)))
            time.sleep(delay)
        sock.send_multipart(protocol.encode_bye(count=n))
    finally:
        sock.close()
        ctx.term()


def test_zmq_frame_source_publisher_and_control(tmp_path: Path):
    src, pub, ctl = free_tcp(), free_tcp(), free_tcp()
    out = tmp_path / "rec.mkv"
    config = merge(Config(), {"io": {"lossless": True}})
    replies: dict[str, dict] = {}
    received: list[int] = []
    ready = threading.Event()

    def on_ready(endpoints):
        ready.set()

    def client():
        ready.wait(10)
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(pub)
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, 5000)
        req.connect(ctl)
        def ask(name, msg):
            req.send(json.dumps(msg).encode())
            replies[name] = json.loads(req.recv())

        try:
            time.sleep(0.2)  # let the subscription reach the publisher
            ask("box", {"cmd": "box", "box": [8, 8, 14, 14]})
            threading.Thread(target=_push_frames, args=(src, 30), daemon=True).start()
            t_end = time.monotonic() + 10
            while time.monotonic() < t_end:
                if sub.poll(200):
                    m = protocol.decode(sub.recv_multipart())
                    if m.type == "frame":
                        received.append(m.index)
                        if len(received) == 3:
                            ask("bad", {"cmd": "box", "box": [60, 40, 9, 9]})
                            ask("stats", {"cmd": "stats"})
                    elif m.type == "bye":
                        break
        finally:
            sub.close()
            req.close()
            ctx.term()

    t = threading.Thread(target=client, daemon=True)
    t.start()
    result = api.live(f"zmq:pull:{src}", control=ctl, publish=pub, record=out, config=config, on_ready=on_ready)
    t.join(15)
    s = result.stats
    assert s.frames_in == 30 and s.frames_in == s.frames_out + s.dropped
    assert replies["box"] == {"ok": True} and replies["bad"]["ok"] is False and "outside" in replies["bad"]["error"]
    assert replies["stats"]["ok"] is True and "frames_in" in replies["stats"]["stats"]
    assert result.retargets == 0  # the box came before the first frame: it is the initial target
    assert received and received == sorted(received)
    frames = decode_all(out)
    assert len(frames) == s.frames_out
    assert red_pixels(frames[-1][1]) == 0  # the box was tracked from the first frame the mask stage saw
