"""`streamfill serve --temporal` with look-ahead (plugins/PROTOCOL.md 6.1.1): deferred replies, the drain at
`bye`, `bye` with `discard`, a failure that fails every held frame, a client that vanishes, and the
client side (plugins/hostlink.py). No host application needed."""

from __future__ import annotations

import sys
import threading
import time
from fractions import Fraction

import numpy as np
import pytest
import zmq
from conftest import ROOT
from serve_helpers import busy_serve
from test_serve_temporal import _clip

from streamfill import build
from streamfill import protocol as P
from streamfill.config import Config, merge
from streamfill.masks import prepare
from streamfill.temporal.complete import TemporalCompletion
from streamfill.transport import ServeService
from streamfill.types import Frame

WINDOW = 3
CONFIG = merge(Config(), {"temporal": {"mode": "fast", "window": WINDOW}})


def _process(clip) -> list[np.ndarray]:
    """What `process` computes on the clip: the clip completion (look-ahead window, shot splits)."""
    pairs = ((Frame(img, i * 40, Fraction(1, 1000), i), prepare(m, CONFIG.mask)) for i, (img, m) in enumerate(clip))
    return [f.image for f in build.make_clip_completion(CONFIG).stream(pairs)]


def _frame(img, m, i, req, stream="a", lookahead=True, **extra):
    return P.encode_frame(img, mask=m, index=i, pts=i * 40, time_base=(1, 1000), stream=stream, req=req,
                          extra={"lookahead": lookahead, **extra} if lookahead is not None else None)


@pytest.fixture
def service():
    fill = build.make_temporal_fill(CONFIG, idle=0.5)
    with ServeService("tcp://127.0.0.1:0", fill, CONFIG.transport, info={"temporal": "fast"}) as svc:
        yield svc, fill
    fill.close()


@pytest.fixture
def dealer(service):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(service[0].endpoint)
    yield sock
    sock.close(0)
    ctx.term()


def _recv(sock, timeout=5.0):
    assert sock.poll(int(timeout * 1000)), "no reply"
    parts = sock.recv_multipart()
    return P.decode(parts[1:])


def _quiet(sock, ms=300) -> bool:
    return not sock.poll(ms)


def test_lookahead_replies_are_deferred_and_match_process(service, dealer):
    svc, fill = service
    clip = [c for _ in range(2) for c in _clip()][:12]  # 12 frames, the square crossing twice
    want = _process(clip)
    dealer.send_multipart([b""] + P.encode_hello(req=100))
    hello = _recv(dealer)
    assert hello.header["lookahead"] == WINDOW and hello.header["temporal"] == "fast"
    got = {}
    for i, (img, m) in enumerate(clip):
        dealer.send_multipart([b""] + _frame(img, m, i, req=i))
        if i < WINDOW:
            assert _quiet(dealer), f"frame {i}: answered before its window came"
            continue
        msg = _recv(dealer)  # frame i - WINDOW, with its own req, pts and time base
        assert (msg.type, msg.req, msg.index, msg.pts) == ("result", i - WINDOW, i - WINDOW, (i - WINDOW) * 40)
        assert msg.time_base == Fraction(1, 1000) and msg.stream == "a"
        got[msg.index] = msg.image
    assert _quiet(dealer) and len(fill) == 1
    dealer.send_multipart([b""] + P.encode_bye(stream="a", req=50))  # the drain: the held frames, then bye
    for i in range(len(clip) - WINDOW, len(clip)):
        msg = _recv(dealer)
        assert (msg.type, msg.index, msg.req) == ("result", i, i)
        got[i] = msg.image
    assert _recv(dealer).header == {"v": 1, "type": "bye", "stream": "a", "req": 50}
    assert len(fill) == 0
    assert all(np.array_equal(got[i], want[i]) for i in range(len(clip)))
    # look-back (no lookahead field) is unchanged: answered at once
    img, m = clip[0]
    dealer.send_multipart([b""] + _frame(img, m, 0, req=7, stream="b", lookahead=None))
    assert _recv(dealer).req == 7


def test_bye_discard_drops_the_held_frames(service, dealer):
    svc, fill = service
    clip = list(_clip())
    for i, (img, m) in enumerate(clip[:WINDOW]):
        dealer.send_multipart([b""] + _frame(img, m, i, req=i))
    assert _quiet(dealer) and len(fill) == 1
    dealer.send_multipart([b""] + [P.header_bytes({"v": 1, "type": "bye", "stream": "a", "req": 9, "discard": True})])
    msg = _recv(dealer)
    assert (msg.type, msg.req) == ("bye", 9) and _quiet(dealer)
    assert len(fill) == 0
    # a jump (a seek) restarts the stream too: the frames held before it are dropped unanswered
    for i in (0, 1, 4, 5, 6, 7):
        img, m = clip[i]
        dealer.send_multipart([b""] + _frame(img, m, i, req=20 + i))
    msg = _recv(dealer)
    assert (msg.index, msg.req) == (4, 24) and _quiet(dealer)


def test_a_failure_fails_every_held_frame_then_the_stream_restarts(service, dealer, monkeypatch):
    svc, fill = service
    clip = list(_clip()) * 2
    ingest = TemporalCompletion._ingest

    def failing(self, frame, mask):
        if frame.index == 4:
            raise RuntimeError("engine exploded")
        return ingest(self, frame, mask)

    monkeypatch.setattr(TemporalCompletion, "_ingest", failing)
    for i, (img, m) in enumerate(clip[:5]):
        dealer.send_multipart([b""] + _frame(img, m, i, req=i))
    assert _recv(dealer).index == 0  # frame 3 released frame 0
    errors = [_recv(dealer) for _ in range(4)]  # frames 1, 2, 3 held, and 4 itself
    assert [(e.type, e.req, e.index, e.header["code"]) for e in errors] == [
        ("error", i, i, "fill_failed") for i in (1, 2, 3, 4)]
    assert "engine exploded" in errors[0].header["message"] and svc.stats["fill_failed"] == 4
    monkeypatch.setattr(TemporalCompletion, "_ingest", ingest)
    for i in range(5, 5 + WINDOW + 1):  # the stream starts afresh at frame 5
        img, m = clip[i]
        dealer.send_multipart([b""] + _frame(img, m, i, req=i))
    assert (_recv(dealer).index, _quiet(dealer)) == (5, True)


def test_a_new_frame_size_answers_the_held_frames_first(service, dealer):
    """The same stream id carries a clip of another size (index following on): the frames held were all
    failed with a numpy broadcast error; now they are answered at their size, then the new clip runs."""
    svc, fill = service
    clip = list(_clip())
    for i, (img, m) in enumerate(clip[:4]):
        dealer.send_multipart([b""] + _frame(img, m, i, req=i))
    assert _recv(dealer).index == 0   # frame 3 released frame 0; 1-3 held
    small, small_mask = clip[4][0][:16, :48].copy(), clip[4][1][:16, :48].copy()
    dealer.send_multipart([b""] + _frame(small, small_mask, 4, req=4))
    replies = [_recv(dealer) for _ in range(3)]
    assert [(r.type, r.index) for r in replies] == [("result", 1), ("result", 2), ("result", 3)]
    assert all(r.image.shape == clip[0][0].shape for r in replies) and svc.stats.get("fill_failed", 0) == 0
    dealer.send_multipart([b""] + [P.header_bytes({"v": 1, "type": "bye", "stream": "a", "req": 9})])
    last = _recv(dealer)
    assert (last.type, last.index, last.image.shape) == ("result", 4, (16, 48, 3))


def test_a_client_that_vanishes_frees_its_stream(service):
    svc, fill = service
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(svc.endpoint)
    for i, (img, m) in enumerate(list(_clip())[:WINDOW]):
        sock.send_multipart([b""] + _frame(img, m, i, req=i, stream="gone"))
    deadline = time.monotonic() + 5
    while len(fill) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fill) == 1
    threads = threading.active_count()
    sock.close(0)
    ctx.term()
    deadline = time.monotonic() + 10  # idle 0.5 s, checked once a second by an idle worker
    while (len(fill) or threading.active_count() >= threads) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(fill) == 0 and threading.active_count() < threads  # its completion thread ended too


@pytest.mark.parametrize("header, field", [
    ({"lookahead": 1}, "lookahead"),
    ({"lookahead": "yes"}, "lookahead"),
])
def test_lookahead_must_be_a_boolean(header, field):
    img, m = next(_clip())
    parts = P.encode_frame(img, mask=m, index=0, extra=header)
    with pytest.raises(P.MessageError) as err:
        P.decode(parts)
    assert err.value.code == "bad_header" and field in str(err.value)
    with pytest.raises(P.MessageError) as err:
        P.decode([P.header_bytes({"v": 1, "type": "bye", "discard": 0})])
    assert err.value.code == "bad_header" and "discard" in str(err.value)


def test_per_frame_serve_answers_lookahead_frames_at_once():
    """A client asking for look-ahead from a per-frame serve gets every answer at once (hello: lookahead 0)."""
    fill = build.make_fill(CONFIG)
    with ServeService("tcp://127.0.0.1:0", fill, CONFIG.transport) as svc:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(svc.endpoint)
        try:
            sock.send_multipart([b""] + P.encode_hello(req=1))
            assert _recv(sock).header["lookahead"] == 0
            img, m = next(_clip())
            sock.send_multipart([b""] + _frame(img, m, 0, req=2))
            assert _recv(sock).req == 2
        finally:
            sock.close(0)
            ctx.term()


def test_hostlink_client_pipelines_and_drains(service):
    """plugins/hostlink.ServeClient's look-ahead side: send without waiting, results as they come, a drain;
    after serve lost the stream, a timeout resends every unanswered frame and each is answered."""
    svc, fill = service
    sys.path.insert(0, str(ROOT / "plugins"))
    import hostlink

    clip = list(_clip())
    want = _process(clip)
    with hostlink.ServeClient(svc.endpoint, stream="h", timeout=1.0, retries=2) as client:
        client.hello()
        assert client.lookahead == WINDOW
        got = {}
        for i, (img, m) in enumerate(clip):
            client.send(img, m, index=i, pts=i * 40, time_base=(1, 1000))
            while client.unanswered > client.lookahead + 1:
                got.update((index, image) for _, index, image in client.results(wait=True))
        got.update((index, image) for _, index, image in client.drain())
        assert client.unanswered == 0 and sorted(got) == list(range(len(clip)))
        assert all(np.array_equal(got[i], want[i]) for i in range(len(clip)))
        # serve drops the stream (as after a restart): the client's timeout resends what is unanswered
        for i, (img, m) in enumerate(clip[:WINDOW + 1]):
            client.send(img, m, index=i)
        assert [index for _, index, _ in client.results(wait=True)] == [0]
        fill.drain("h", discard=True)
        got = client.drain()
        assert [index for _, index, _ in got] == [1, 2, 3] and client.unanswered == 0
        # serve loses frames the client is owed: the wait times out and every unanswered frame is resent
        for i, (img, m) in enumerate(clip[:WINDOW]):
            client.send(img, m, index=i)
        deadline = time.monotonic() + 10
        while getattr(fill._streams.get("h"), "next_index", 0) != WINDOW and time.monotonic() < deadline:
            time.sleep(0.02)
        fill.drain("h", discard=True)
        for i in (WINDOW, WINDOW + 1):
            client.send(*clip[i], index=i)
        started = time.monotonic()
        got = client.results(wait=True)
        assert time.monotonic() - started >= 0.9 and [index for _, index, _ in got][:1] == [0]
        got += client.drain()
        assert [index for _, index, _ in got] == list(range(WINDOW + 2)) and client.unanswered == 0


def test_quality_mode_lookahead_matches_process():
    """The same through `submit`/`drain` in quality mode (its own flow preset, membrane seam, blending)."""
    config = merge(Config(), {"temporal": {"mode": "quality", "window": WINDOW}})
    clip = list(_clip())
    pairs = ((Frame(img, i * 40, Fraction(1, 1000), i), prepare(m, config.mask)) for i, (img, m) in enumerate(clip))
    want = [f.image for f in build.make_clip_completion(config).stream(pairs)]
    fill = build.make_temporal_fill(config)
    got = []
    try:
        for i, (img, m) in enumerate(clip):
            message = P.decode(_frame(img, m, i, req=i, stream="q"))
            out = fill.submit(img, m, message, lookahead=True)
            assert [h["index"] for h, _ in out] == ([i - WINDOW] if i >= WINDOW else [])
            got += out
        got += fill.drain("q")
    finally:
        fill.close()
    assert [h["req"] for h, _ in got] == list(range(len(clip)))
    assert all(np.array_equal(image, want[i]) for i, (_, image) in enumerate(got))


def test_hostlink_drain_cancelled_returns_at_once():
    """A drain that its ``cancel`` stops (a GStreamer flush while EOS waits for serve) returns what came, at
    once: it neither counts the cancel as a lost-frames try nor resends (it raised "serve lost N frames", which
    the element posted as a pipeline error)."""
    sys.path.insert(0, str(ROOT / "plugins"))
    import hostlink

    ctx = zmq.Context()
    silent = ctx.socket(zmq.ROUTER)  # a serve that holds the frames and has not answered yet
    silent.linger = 0
    endpoint = f"tcp://127.0.0.1:{silent.bind_to_random_port('tcp://127.0.0.1')}"
    try:
        img, m = next(_clip())
        with hostlink.ServeClient(endpoint, stream="c", timeout=5.0, retries=2) as client:
            for i in range(2):
                client.send(img, m, index=i)
            started = time.monotonic()
            assert client.drain(cancel=lambda: True) == []
            assert time.monotonic() - started < 2.0
    finally:
        silent.close(0)
        ctx.term()


def test_hostlink_gives_up_on_a_serve_that_stays_busy():
    """A serve whose queue stays full (other clients) answers every frame ``busy``: the client resent every 20 ms
    forever (a host hung). After timeout x (retries + 1) seconds of nothing but busy it stops with one line."""
    sys.path.insert(0, str(ROOT / "plugins"))
    import hostlink

    with busy_serve() as endpoint:
        img, m = next(_clip())
        with hostlink.ServeClient(endpoint, timeout=0.3, retries=1) as client:
            started = time.monotonic()
            with pytest.raises(hostlink.HostError, match="stayed busy"):
                client.fill(img, m, index=0)
            assert time.monotonic() - started < 5.0


def test_hostlink_fill_cancelled_stops_the_wait():
    """``fill`` blocked for timeout x (retries + 1) seconds on a serve that stopped answering, with no way out (a
    Blender Esc waited 90 s). Its ``cancel`` now stops the wait within ~50 ms with ``Cancelled``; without one the
    wait is as before (``HostError`` after the timeout)."""
    sys.path.insert(0, str(ROOT / "plugins"))
    import hostlink

    ctx = zmq.Context()
    silent = ctx.socket(zmq.ROUTER)  # takes the frame, never answers
    silent.linger = 0
    endpoint = f"tcp://127.0.0.1:{silent.bind_to_random_port('tcp://127.0.0.1')}"
    try:
        img, m = next(_clip())
        with hostlink.ServeClient(endpoint, timeout=30.0, retries=2) as client:
            stop_at = time.monotonic() + 0.3
            started = time.monotonic()
            with pytest.raises(hostlink.Cancelled):
                client.fill(img, m, index=0, cancel=lambda: time.monotonic() > stop_at)
            assert time.monotonic() - started < 1.0
            with pytest.raises(hostlink.Cancelled):
                client.hello(cancel=lambda: True)
        with hostlink.ServeClient(endpoint, timeout=0.2, retries=0) as client, \
                pytest.raises(hostlink.HostError, match="no answer"):
            client.fill(img, m, index=0)
    finally:
        silent.close(0)
        ctx.term()
