"""plugins/host_client.py (the Python example of a host application) against `streamfill serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT, running_serve
from serve_helpers import busy_serve


def test_host_client_window_meets_busy():
    """With a queue of 2 a window of 8 meets `busy`: the resent frames come back after the later ones that
    serve took, which is the protocol's order (only busy overtakes), not an error (it stopped with "result N
    arrived before M: out of order")."""
    with running_serve("--queue", "2") as endpoint:
        run = subprocess.run([sys.executable, str(ROOT / "plugins" / "host_client.py"), "--connect", endpoint,
                              "--frames", "40", "--size", "96x64", "--window", "8", "--timeout", "5"],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    found = re.search(r"40 frames in order .*, (\d+) busy resends", run.stderr)
    assert found and int(found.group(1)) > 0, run.stderr


def test_host_client_refuses_bad_arguments_in_one_line():
    """A malformed --size or a --frames/--window below 1 was a traceback (ValueError, ZeroDivisionError)."""
    for args in (["--size", "640x"], ["--size", "12"], ["--frames", "0"], ["--window", "-1"]):
        run = subprocess.run([sys.executable, str(ROOT / "plugins" / "host_client.py"), *args],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert run.returncode == 2 and "Traceback" not in run.stderr, (args, run.stderr)
        assert run.stderr.strip().splitlines()[-1].startswith("host_client.py: error: argument"), run.stderr


def test_host_client_gives_up_on_a_serve_that_stays_busy():
    """A serve whose queue stays full (other clients) answers every frame ``busy``: the resends came back busy
    at once, so the head frame's timeout never struck and the client resent every 10 ms forever (a hang; the
    hostlink clients are bounded since 81e565d). After timeout x (retries + 1) seconds of nothing but busy it
    stops with one line."""
    import time

    with busy_serve() as endpoint:
        started = time.monotonic()
        run = subprocess.run([sys.executable, str(ROOT / "plugins" / "host_client.py"), "--connect", endpoint,
                              "--frames", "3", "--size", "32x32", "--window", "2", "--timeout", "0.3",
                              "--retries", "1"],
                             capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert run.returncode == 1 and "stayed busy" in run.stderr.strip().splitlines()[-1], run.stderr
        assert time.monotonic() - started < 10


def test_host_client_resends_a_hello_answered_busy():
    """Every request takes a place in serve's queue, hello included, so a hello can be answered ``busy``
    (PROTOCOL.md 6.1: resend it). host_client took that busy for a refusal and stopped: "serve refused hello"."""
    import threading

    import zmq

    from streamfill import protocol

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    endpoint = f"tcp://127.0.0.1:{sock.bind_to_random_port('tcp://127.0.0.1')}"
    stop = threading.Event()

    def serve_after_one_busy():  # the first hello meets a full queue; then an echo serve (holes left as they are)
        hellos = 0
        while not stop.is_set():
            if sock.poll(50):
                route, _, *parts = sock.recv_multipart()
                msg = protocol.decode(parts)
                if msg.type == "hello":
                    hellos += 1
                    reply = (protocol.encode_error("busy", "queue full", req=msg.req) if hellos == 1
                             else protocol.encode_hello(version=1, name="echo", req=msg.req))
                else:
                    reply = protocol.encode_result(msg.image, index=msg.index, req=msg.req,
                                                   stream=msg.header.get("stream"))
                sock.send_multipart([route, b""] + reply)

    worker = threading.Thread(target=serve_after_one_busy, daemon=True)
    worker.start()
    try:
        run = subprocess.run([sys.executable, str(ROOT / "plugins" / "host_client.py"), "--connect", endpoint,
                              "--frames", "3", "--size", "32x32", "--window", "2", "--timeout", "2"],
                             capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert run.returncode == 0 and "3 frames in order" in run.stderr, run.stderr
    finally:
        stop.set()
        worker.join(2)
        sock.close(0)
        ctx.term()
