"""ZeroMQ transport on real loopback sockets (tcp and ipc): serve, mask sources, sinks, plugins, fuzzing.

Every test is bounded in time: sockets poll with timeouts and the services stop through their stop event.
"""

from __future__ import annotations

import json
import os
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
from serve_helpers import Dealer, invert_in_hole, service

from streamfill import protocol as P
from streamfill.config import TransportConfig
from streamfill.errors import InputError, MaskError, TransportError
from streamfill.transport import (
    PubSink,
    PushSink,
    ReqMaskSource,
    ServeService,
    SubMaskSource,
    generate_keys,
    load_client_keys,
    mask_source,
    parse_spec,
    sink,
)
from streamfill.types import Frame

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"


def free_tcp() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def endpoint(kind: str, tmp_path: Path, name: str = "ep") -> str:
    return free_tcp() if kind == "tcp" else f"ipc://{tmp_path}/{name}.ipc"


def make_pair(i: int, h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(i)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[i % h, :] = 255
    return image, mask


def frames(n: int, h: int = 48, w: int = 64):
    for i in range(n):
        yield Frame(image=make_pair(i, h, w)[0], pts=2 * i, time_base=Fraction(1, 50), index=i)


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


# ------------------------------------------------------------------------------------------------ serve


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_serve_on_an_ipv6_address(ctx):
    """tcp://[::1]:PORT failed with "No such device": ZeroMQ sockets have IPv6 off unless told."""
    with service("tcp://[::1]:0") as svc:
        assert svc.endpoint.startswith("tcp://[::1]:")
        client = Dealer(ctx, svc.endpoint)
        image, mask = make_pair(3)
        reply = client.ask(P.encode_frame(image, index=3, mask=mask, req=1))
        assert reply.type == "result" and reply.index == 3
        client.close()


@pytest.mark.parametrize("kind", ["tcp", "ipc"])
def test_serve_answers_with_filled_frame(ctx, tmp_path, kind):
    with service(endpoint(kind, tmp_path)) as svc:
        client = Dealer(ctx, svc.endpoint)
        image, mask = make_pair(3)
        reply = client.ask(P.encode_frame(image, index=3, pts=6, time_base=(1, 50), mask=mask, req=11,
                                          stream="s"))
        assert reply.type == "result" and reply.req == 11 and reply.index == 3 and reply.stream == "s"
        assert reply.pts == 6 and reply.time_base == Fraction(1, 50)
        np.testing.assert_array_equal(reply.image, invert_in_hole(image, mask))
        hello = client.ask(P.encode_hello(versions=[1, 5], req=1))
        assert hello.type == "hello" and hello.header["version"] == 1
        assert client.ask(P.encode_bye(stream="s")).type == "bye"
        client.close()


def test_serve_accepts_req_sockets_and_dealers_without_delimiter(ctx):
    with service() as svc:
        req = ctx.socket(zmq.REQ)
        req.linger = 0
        req.connect(svc.endpoint)
        image, mask = make_pair(1)
        req.send_multipart(P.encode_frame(image, index=1, mask=mask))
        assert req.poll(5000)
        np.testing.assert_array_equal(P.decode(req.recv_multipart()).image, invert_in_hole(image, mask))
        req.close(0)
        bare = Dealer(ctx, svc.endpoint, delimiter=False)
        assert bare.ask(P.encode_frame(image, index=1, mask=mask)).type == "result"
        bare.close()


def test_serve_replies_to_malformed_requests_and_keeps_serving(ctx):
    hdr = {"v": 1, "type": "frame", "index": 0, "width": 4, "height": 2, "channels": 3, "dtype": "uint8",
           "mask_encoding": "raw", "req": 5}

    def h(**kw):
        return json.dumps({**hdr, **kw}).encode()

    cases = [
        ([b"{not json"], "bad_json"),
        ([h(), bytes(24)], "bad_message"),  # serve needs image and mask
        ([h(), bytes(20), bytes(8)], "bad_payload"),
        ([h(), bytes(24), bytes(9)], "bad_payload"),
        ([h(v=3), bytes(24), bytes(8)], "unsupported_version"),
        ([h(type="launch"), bytes(24), bytes(8)], "unknown_type"),
        ([h(width=16000, height=16000), bytes(24), bytes(8)], "too_large"),
        ([h(dtype="float32"), bytes(96), bytes(8)], "unsupported_dtype"),
        ([h(type="mask", channels=1), bytes(8)], "unexpected_type"),
        ([h(width=None), bytes(24), bytes(8)], "bad_header"),
        ([h()], "bad_message"),
    ]
    with service(max_message_bytes=1_000_000) as svc:
        client = Dealer(ctx, svc.endpoint)
        for parts, code in cases:
            parts = [json.dumps({k: v for k, v in json.loads(parts[0]).items() if v is not None}).encode()
                     if parts[0].startswith(b"{\"") else parts[0], *parts[1:]]
            reply = client.ask(parts)
            assert reply is not None and reply.type == "error", code
            assert reply.header["code"] == code, reply.header
            if code != "bad_json":
                assert reply.req == 5
        image, mask = make_pair(2)
        assert client.ask(P.encode_frame(image, index=2, mask=mask)).type == "result"
        assert svc.stats["errors"] == len(cases)
        client.close()


def test_part_over_max_message_size_cuts_that_peer_off_only(ctx):
    with service(max_message_bytes=4096) as svc:
        big = Dealer(ctx, svc.endpoint)
        image, mask = make_pair(0, 64, 64)  # 12 KiB image part > 4 KiB
        assert big.ask(P.encode_frame(image, index=0, mask=mask), timeout=0.5) is None
        small = Dealer(ctx, svc.endpoint)
        image, mask = make_pair(1, 16, 16)
        assert small.ask(P.encode_frame(image, index=1, mask=mask)).type == "result"
        big.close()
        small.close()


def test_fill_failure_is_an_error_reply(ctx):
    def broken(image, mask):
        if mask[0].any():
            raise RuntimeError("engine exploded")
        return image

    with service(fill=broken) as svc:
        client = Dealer(ctx, svc.endpoint)
        image, mask = make_pair(0)
        reply = client.ask(P.encode_frame(image, index=0, mask=mask, req=1))
        assert reply.header["code"] == "fill_failed" and "engine exploded" in reply.header["message"]
        image, mask = make_pair(1)
        assert client.ask(P.encode_frame(image, index=1, mask=mask, req=2)).type == "result"
        client.close()


def test_full_queue_answers_busy_and_recovers(ctx):
    def slow(image, mask):
        time.sleep(0.05)
        return image

    with service(fill=slow, queue=1) as svc:
        client = Dealer(ctx, svc.endpoint)
        for i in range(8):
            image, mask = make_pair(i)
            client.send(P.encode_frame(image, index=i, mask=mask, req=i))
        replies = [client.recv() for _ in range(8)]
        assert all(r is not None for r in replies)
        busy = [r for r in replies if r.type == "error"]
        assert busy and all(r.header["code"] == "busy" for r in busy)
        assert sorted(r.req for r in replies) == list(range(8))
        results = [r.req for r in replies if r.type == "result"]
        assert results == sorted(results)
        image, mask = make_pair(9)
        assert client.ask(P.encode_frame(image, index=9, mask=mask)).type == "result"
        client.close()


def test_vanished_client_does_not_stall_others(ctx):
    def slow(image, mask):
        time.sleep(0.02)
        return image

    with service(fill=slow, queue=8) as svc:
        gone = Dealer(ctx, svc.endpoint)
        image, mask = make_pair(0)
        for i in range(6):
            gone.send(P.encode_frame(image, index=i, mask=mask, req=i))
        time.sleep(0.05)
        gone.close()  # vanishes with requests in flight
        other = Dealer(ctx, svc.endpoint)
        t0 = time.monotonic()
        for i in range(5):
            assert other.ask(P.encode_frame(image, index=i, mask=mask, req=i), timeout=3).req == i
        assert time.monotonic() - t0 < 3
        other.close()


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_four_clients_300_frames_in_order_with_right_checksums(ctx):
    n_clients, n_frames, window = 4, 300, 4
    errors: list[str] = []
    rss: list[float] = []

    def client_run(cid: int, ep: str):
        c = Dealer(ctx, ep)
        try:
            sent = got = 0
            expected: dict[int, bytes] = {}
            while got < n_frames:
                while sent < n_frames and sent - got < window:
                    image, mask = make_pair(cid * 1000 + sent)
                    expected[sent] = invert_in_hole(image, mask).tobytes()
                    c.send(P.encode_frame(image, index=sent, mask=mask, req=sent, stream=f"c{cid}"))
                    sent += 1
                reply = c.recv(timeout=10)
                if reply is None or reply.type != "result":
                    errors.append(f"client {cid}: {None if reply is None else reply.header}")
                    return
                if reply.req != got or reply.stream != f"c{cid}":
                    errors.append(f"client {cid}: got req {reply.req} expected {got}")
                    return
                if reply.image.tobytes() != expected.pop(got):
                    errors.append(f"client {cid}: wrong pixels for frame {got}")
                    return
                got += 1
                if got == n_frames // 2 and cid == 0:
                    rss.append(_rss_mb())
        finally:
            c.close()

    with service(workers=2, queue=32) as svc:
        before = _rss_mb()
        threads = [threading.Thread(target=client_run, args=(i, svc.endpoint)) for i in range(n_clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert not errors, errors
        assert svc.stats["results"] == n_clients * n_frames
        after = _rss_mb()
    assert after - before < 64 and rss and rss[0] - before < 64  # no growth with the number of frames


def test_fuzzed_messages_leave_the_service_alive(ctx):
    rng = np.random.default_rng(1234)
    image, mask = make_pair(0, 12, 16)
    seeds = [P.encode_frame(image, index=1, mask=mask, req=1),
             P.encode_frame(image, index=1, mask=mask, req=1, encoding="png", mask_encoding="png"),
             P.encode_hello(req=1)]
    with service(max_message_bytes=1_000_000) as svc:
        client = Dealer(ctx, svc.endpoint)
        for n in range(300):
            parts = [bytearray(bytes(p)) for p in seeds[n % len(seeds)]]
            for _ in range(int(rng.integers(1, 4))):
                op = rng.integers(0, 5)
                k = int(rng.integers(0, len(parts)))
                if op == 0 and parts[k]:
                    parts[k][int(rng.integers(0, len(parts[k])))] = int(rng.integers(0, 256))
                elif op == 1:
                    parts[k] = parts[k][: int(rng.integers(0, len(parts[k]) + 1))]
                elif op == 2 and len(parts) > 1:
                    del parts[k]
                elif op == 3:
                    parts.insert(k, bytearray(rng.bytes(int(rng.integers(0, 40)))))
                else:
                    text = parts[0].decode("latin-1")
                    for key in ("index", "width", "height", "channels", "req", "v"):
                        text = text.replace(f'"{key}":', f'"{key}":{rng.integers(-3, 99999)}0', 1) \
                            if rng.random() < 0.2 else text
                    parts[0] = bytearray(text.encode("latin-1"))
            reply = client.ask([bytes(p) for p in parts], timeout=5)
            assert reply is not None, f"no reply to mutated message {n}"
            assert reply.type in ("result", "error", "hello")
        assert client.ask(seeds[0]).type == "result"
        client.close()


def test_curve_requires_a_known_client_key(ctx, tmp_path):
    generate_keys(tmp_path / "keys")
    with ServeService("tcp://127.0.0.1:0", invert_in_hole, TransportConfig(), curve_dir=tmp_path / "keys") as svc:
        good = Dealer(ctx, svc.endpoint, curve=load_client_keys(tmp_path / "keys"))
        image, mask = make_pair(0)
        assert good.ask(P.encode_frame(image, index=0, mask=mask)).type == "result"
        plain = Dealer(ctx, svc.endpoint)
        assert plain.ask(P.encode_frame(image, index=0, mask=mask), timeout=0.5) is None
        generate_keys(tmp_path / "other")
        stranger = Dealer(ctx, svc.endpoint, curve=load_client_keys(tmp_path / "other"))
        assert stranger.ask(P.encode_frame(image, index=0, mask=mask), timeout=0.5) is None
        for c in (good, plain, stranger):
            c.close()


@pytest.mark.parametrize("damage", ["secret", "authorized"])
def test_curve_key_files_that_do_not_hold_a_key_are_refused_at_start(tmp_path, damage):
    # a truncated secret key stopped serve with "internal error (ZMQError: Invalid argument)"; one junk file
    # in authorized/ made pyzmq load no client key at all: serve said "listening (CURVE)" and refused everyone
    generate_keys(tmp_path / "keys")
    if damage == "secret":
        secret = tmp_path / "keys" / "server.key_secret"
        secret.write_text(secret.read_text().rstrip()[:-10] + '"\n')  # the secret key loses 9 characters
        what = "server.key_secret holds a malformed key"
    else:
        (tmp_path / "keys" / "authorized" / "colleague.key").write_text("not a certificate\n")
        what = "colleague.key"
    with pytest.raises(InputError, match=what):
        ServeService("tcp://127.0.0.1:0", invert_in_hole, TransportConfig(), curve_dir=tmp_path / "keys").start()


def test_bind_failure_is_a_transport_error():
    with service() as svc, pytest.raises(TransportError, match="cannot bind"), service(svc.endpoint):
        pass


# ------------------------------------------------------------------------------------------ mask sources


def rep_plugin(ep: str, stop: threading.Event, answer=None):
    """An in-process REP mask plugin: the mask marks pixels whose red channel is > 200."""

    def default(msg):
        return P.encode_mask(np.where(msg.image[:, :, 0] > 200, 255, 0).astype(np.uint8), index=msg.index,
                             req=msg.req, stream=msg.stream or None)

    answer = answer or default

    def loop():
        c = zmq.Context()
        s = c.socket(zmq.REP)
        s.linger = 0
        s.bind(ep)
        try:
            while not stop.is_set():
                if s.poll(50):
                    msg = P.decode(s.recv_multipart())
                    reply = answer(msg)
                    if reply is None:
                        s.close(0)  # swallow the request: a REP must answer, so start over
                        s = c.socket(zmq.REP)
                        s.linger = 0
                        s.bind(ep)
                        continue
                    s.send_multipart(reply)
        finally:
            s.close(0)
            c.term()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def expected_mask(frame: Frame) -> np.ndarray:
    return np.where(frame.image[:, :, 0] > 200, 255, 0).astype(np.uint8)


@pytest.mark.parametrize("kind", ["tcp", "ipc"])
def test_req_mask_source_pairs_every_frame_in_order(tmp_path, kind):
    ep = endpoint(kind, tmp_path)
    stop = threading.Event()
    t = rep_plugin(ep, stop)
    try:
        source = ReqMaskSource(ep, TransportConfig(timeout=2, window=3))
        pairs = list(source.pair(frames(30)))
    finally:
        stop.set()
        t.join(5)
    assert [f.index for f, _ in pairs] == list(range(30))
    for f, m in pairs:
        np.testing.assert_array_equal(m, expected_mask(f))


def test_offline_silent_mask_source_fails_clearly_within_its_timeout(tmp_path):
    ep = free_tcp()  # nobody listens there
    source = ReqMaskSource(ep, TransportConfig(timeout=0.3, retries=1))
    t0 = time.monotonic()
    with pytest.raises(TransportError, match=r"no mask for frame 0 within 0\.6 s") as err:
        list(source.pair(frames(3)))
    assert time.monotonic() - t0 < 2.0
    assert ep in str(err.value)


def test_offline_plugin_error_reply_is_a_mask_error(tmp_path):
    ep = endpoint("ipc", tmp_path)
    stop = threading.Event()
    t = rep_plugin(ep, stop, answer=lambda m: P.encode_error("bad_payload", "nope", index=m.index, req=m.req))
    try:
        with pytest.raises(MaskError, match="refused frame 0: bad_payload: nope"):
            list(ReqMaskSource(ep, TransportConfig(timeout=2)).pair(frames(2)))
    finally:
        stop.set()
        t.join(5)


def test_wrong_size_mask_is_rejected(tmp_path):
    ep = endpoint("ipc", tmp_path)
    stop = threading.Event()
    t = rep_plugin(ep, stop, answer=lambda m: P.encode_mask(np.zeros((5, 5), np.uint8), index=m.index, req=m.req))
    try:
        with pytest.raises(MaskError, match="5x5 mask for frame 0"):
            list(ReqMaskSource(ep, TransportConfig(timeout=2)).pair(frames(2)))
    finally:
        stop.set()
        t.join(5)


def test_live_mode_reuses_the_last_mask_and_counts_misses(tmp_path):
    ep = endpoint("ipc", tmp_path)
    stop = threading.Event()

    def odd_silent(msg):
        if msg.index % 2:
            return None
        return P.encode_mask(np.full(msg.image.shape[:2], msg.index, np.uint8), index=msg.index, req=msg.req)

    t = rep_plugin(ep, stop, answer=odd_silent)
    try:
        source = ReqMaskSource(ep, TransportConfig(live_timeout=0.2, timeout=0.3, window=2), live=True)
        t0 = time.monotonic()
        pairs = list(source.pair(frames(8)))
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        t.join(5)
    assert [f.index for f, _ in pairs] == list(range(8))
    assert elapsed < 8 * 0.2 + 1  # a live frame never waits longer than live_timeout
    own = 0
    for f, m in pairs:
        value = int(m[0, 0])
        assert (m == value).all()
        if value == f.index and (f.index == 0 or value):
            own += 1
        else:  # the last mask received before (an even frame), or empty before the first
            assert value < f.index and value % 2 == 0
    assert source.misses == 8 - own
    assert source.misses >= 4  # every odd frame at least
    assert own >= 1


def _start_plugin(ep: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(PLUGINS / "colorkey_mask.py"), "--bind", ep, "--rgb",
                             "255,0,0", "--tolerance", "1", "--delay", "0.05"], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # "answering on ..." once bound
    assert "answering" in line, line
    return proc


@pytest.mark.parametrize("kind", ["tcp", "ipc"])
def test_mask_plugin_killed_and_restarted_mid_stream(tmp_path, kind):
    ep = endpoint(kind, tmp_path, "plugin")
    h, w = 24, 32
    procs = [_start_plugin(ep)]

    def red_dot_frames(n):
        for i in range(n):
            if i == 13:  # frame 12 was just sent and the plugin is working on it: kill it, start another
                procs[-1].kill()
                procs[-1].wait(5)
                procs.append(_start_plugin(ep))
            image = np.zeros((h, w, 3), np.uint8)
            image[i % h, i % w] = (255, 0, 0)
            yield Frame(image=image, pts=i, time_base=Fraction(1, 25), index=i)

    try:
        source = ReqMaskSource(ep, TransportConfig(timeout=0.5, retries=20, window=2))
        got = []
        for frame, mask in source.pair(red_dot_frames(25)):
            expected = np.zeros((h, w), np.uint8)
            expected[frame.index % h, frame.index % w] = 255
            np.testing.assert_array_equal(mask, expected)
            got.append(frame.index)
        assert got == list(range(25))
        assert source.reconnects >= 1  # the request lost with the killed plugin was sent again
    finally:
        for p in procs:
            p.kill()
            p.wait(5)
            p.stderr.close()


def _publisher(ep: str, stop: threading.Event, masks: dict[tuple[str, int], np.ndarray]):
    def loop():
        c = zmq.Context()
        s = c.socket(zmq.PUB)
        s.linger = 0
        s.bind(ep)
        try:
            while not stop.is_set():  # publish again and again: subscribers may join late
                for (stream, i), m in reversed(masks.items()):
                    s.send_multipart([b'{"v": 1, "type": "mask"}', b"junk"])  # rejected, then ignored
                    s.send_multipart(P.encode_mask(m, index=i, stream=stream))
                time.sleep(0.02)
        finally:
            s.close(0)
            c.term()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def test_subscribe_mask_source_matches_masks_by_index(tmp_path):
    ep = endpoint("tcp", tmp_path)
    fs = list(frames(10))
    masks = {("cam", f.index): expected_mask(f) for f in fs}
    masks.update({("other", f.index): np.zeros((48, 64), np.uint8) for f in fs})
    stop = threading.Event()
    t = _publisher(ep, stop, masks)
    try:
        source = SubMaskSource(ep, TransportConfig(timeout=2, retries=0), stream="cam")
        pairs = list(source.pair(fs))
        assert source.rejected >= 1
        assert [f.index for f, _ in pairs] == list(range(10))
        for f, m in pairs:
            np.testing.assert_array_equal(m, expected_mask(f))
        # offline: a frame whose mask never comes fails within timeout x (1 + retries)
        missing = Frame(image=fs[0].image, pts=99, time_base=Fraction(1, 50), index=99)
        t0 = time.monotonic()
        with pytest.raises(TransportError, match="no mask for frame 99"):
            list(SubMaskSource(ep, TransportConfig(timeout=0.3, retries=0), stream="cam").pair([missing]))
        assert time.monotonic() - t0 < 2
    finally:
        stop.set()
        t.join(5)


def test_subscribe_mask_source_names_a_skipped_frame_when_later_ones_came(tmp_path):
    ep = endpoint("tcp", tmp_path)
    fs = list(frames(10))
    masks = {("", f.index): expected_mask(f) for f in fs if f.index != 5}  # the publisher skips frame 5
    stop = threading.Event()
    t = _publisher(ep, stop, masks)
    try:
        with pytest.raises(TransportError, match=r"masks for later frames arrived \(from frame 6\) but none for "
                                                 r"this one"):
            list(SubMaskSource(ep, TransportConfig(timeout=0.5, retries=0)).pair(fs[5:]))
    finally:
        stop.set()
        t.join(5)


# ------------------------------------------------------------------------------------------------ sinks


def _collect(ep: str, kind: int, out: list, stop: threading.Event, bind: bool, read: bool = True):
    def loop():
        c = zmq.Context()
        s = c.socket(kind)
        s.linger = 0
        if kind == zmq.SUB:
            s.setsockopt(zmq.SUBSCRIBE, b"")
        s.bind(ep) if bind else s.connect(ep)
        try:
            while not stop.is_set():
                if read and s.poll(50):
                    msg = P.decode(s.recv_multipart())
                    out.append(msg)
                    if msg.type == "bye":
                        return
                elif not read:
                    time.sleep(0.05)
        finally:
            s.close(0)
            c.term()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("kind", ["tcp", "ipc"])
def test_push_sink_is_lossless_and_ends_with_bye(tmp_path, kind):
    ep = endpoint(kind, tmp_path)
    got: list = []
    stop = threading.Event()
    t = _collect(ep, zmq.PULL, got, stop, bind=True)
    try:
        sent = list(frames(40))
        with PushSink(ep, TransportConfig(push_hwm=2, send_timeout=5)) as out:
            for f in sent:
                out.write(f)
        t.join(5)
    finally:
        stop.set()
    assert [m.index for m in got[:-1]] == list(range(40))
    assert got[-1].type == "bye" and got[-1].header["count"] == 40
    for f, m in zip(sent, got, strict=False):
        np.testing.assert_array_equal(m.image, f.image)
        assert m.pts == f.pts and m.time_base == f.time_base


@pytest.mark.parametrize("count, hwm, words", [
    (50, 1, "did not take frame"),  # backpressure: the queue is full, write blocks, then fails
    # the close: the frames and the bye sat in the queue until the linger ran out and were thrown away, and
    # the run ended as if all had been delivered
    (3, 8, "did not take the last frames"),
])
def test_push_sink_without_a_receiver_fails_with_a_clear_error(count, hwm, words):
    ep = free_tcp()  # no receiver: every frame stays queued
    t0 = time.monotonic()
    with pytest.raises(TransportError, match=words), \
            PushSink(ep, TransportConfig(push_hwm=hwm, send_timeout=0.3)) as out:
        for f in frames(count):
            out.write(f)
    assert time.monotonic() - t0 < 3


def test_pub_sink_never_blocks_on_a_stalled_subscriber(tmp_path):
    ep = endpoint("ipc", tmp_path)
    stop = threading.Event()
    stalled = _collect(ep, zmq.SUB, [], stop, bind=False, read=False)
    got: list = []
    live = _collect(ep, zmq.SUB, got, stop, bind=False)
    try:
        with PubSink(ep, TransportConfig(pub_hwm=2)) as out:
            time.sleep(0.3)  # let the subscribers connect
            t0 = time.monotonic()
            for f in frames(300, 120, 160):
                out.write(f)
            elapsed = time.monotonic() - t0
        live.join(3)
    finally:
        stop.set()
        stalled.join(3)
    assert elapsed < 3
    assert out.sent == 300
    indices = [m.index for m in got if m.type == "frame"]
    assert indices and indices == sorted(indices)


def test_pub_sink_bye_reaches_a_subscriber_that_keeps_up():
    # the publish sink closed with LINGER=0 right after queueing its bye: most runs threw the bye (and the
    # last frames) away, so a viewer or `live zmq:sub:` waiting for the end of the stream never saw it
    for _ in range(3):
        ctx = zmq.Context()
        try:
            with PubSink("tcp://127.0.0.1:0") as out:
                sub = ctx.socket(zmq.SUB)
                sub.linger = 0
                sub.setsockopt(zmq.SUBSCRIBE, b"")
                sub.connect(out.bound_endpoint)
                time.sleep(0.3)  # let the subscriber connect
                for f in frames(3, 120, 160):
                    out.write(f)
            got = []
            while sub.poll(1000):
                got.append(P.decode(sub.recv_multipart()))
        finally:
            ctx.destroy(linger=0)
        assert [m.type for m in got] == ["frame"] * 3 + ["bye"]
        assert got[-1].header["count"] == 3


@pytest.mark.parametrize("spec, warned", [("zmq:pub:tcp://0.0.0.0:0", True), ("zmq:pub:tcp://*:0", True),
                                          ("zmq:pub:tcp://127.0.0.1:0", False), ("zmq:push:tcp://10.1.2.3:9", False)])
def test_a_publish_sink_open_beyond_this_machine_is_warned_about(caplog, spec, warned):
    from streamfill.build import open_stream_sink
    from streamfill.config import Config

    with caplog.at_level("WARNING"):
        open_stream_sink(spec, Config())  # built, not opened: nothing binds
    said = [r.getMessage() for r in caplog.records if "beyond this machine" in r.getMessage()]
    assert bool(said) == warned, said


# ----------------------------------------------------------------------------------------- specs & api


def test_specs():
    assert parse_spec("zmq:tcp://127.0.0.1:5", ("req", "sub")).mode == "req"
    assert parse_spec("zmq:sub:ipc:///tmp/x", ("req", "sub")).endpoint == "ipc:///tmp/x"
    assert isinstance(mask_source("zmq:sub:tcp://127.0.0.1:5"), SubMaskSource)
    assert isinstance(sink("zmq:pub:tcp://127.0.0.1:5"), PubSink)
    assert isinstance(sink("zmq:tcp://127.0.0.1:5"), PushSink)
    for bad in ("tcp://127.0.0.1:5", "zmq:pub:tcp://127.0.0.1:5", "zmq:http://x", "zmq:tcp://nohost"):
        with pytest.raises(InputError):
            mask_source(bad)


def test_api_serve_fills_with_the_real_completer(ctx):
    from streamfill import api

    stop = threading.Event()
    ready: list[str] = []
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(api.serve("tcp://127.0.0.1:0", stop=stop,
                                                                on_ready=ready.append)), daemon=True)
    t.start()
    try:
        for _ in range(100):
            if ready:
                break
            time.sleep(0.05)
        client = Dealer(ctx, ready[0])
        y, x = np.mgrid[0:72, 0:96]
        image = np.stack([x * 2, y * 3, np.full_like(x, 90)], axis=-1).astype(np.uint8)
        image[30:40, 40:50] = (255, 0, 255)
        mask = np.zeros((72, 96), np.uint8)
        mask[30:40, 40:50] = 255
        hello = client.ask(P.encode_hello())
        reply = client.ask(P.encode_frame(image, index=0, mask=mask))
        client.close()
    finally:
        stop.set()
        t.join(10)
    assert reply.type == "result"
    grow = hello.header["mask_dilate"] + 1
    outside = np.ones_like(mask, bool)
    outside[30 - grow:40 + grow, 40 - grow:50 + grow] = False
    np.testing.assert_array_equal(reply.image[outside], image[outside])
    assert np.abs(reply.image[33:37, 43:47].astype(int) - (255, 0, 255)).mean() > 60  # the magenta is gone
    assert result["results"] == 1


def test_api_serve_refuses_open_bind_without_keys():
    from streamfill import api

    with pytest.raises(InputError, match="--curve-keys"):
        api.serve("tcp://0.0.0.0:5555")


def test_cli_keys_writes_private_secret_files(tmp_path):
    from streamfill.cli import main

    assert main(["keys", str(tmp_path / "k")]) == 0
    assert (tmp_path / "k" / "authorized" / "client.key").is_file()
    assert oct((tmp_path / "k" / "server.key_secret").stat().st_mode & 0o777) == "0o600"
    assert main(["keys", str(tmp_path / "k")]) == 1  # refuses to overwrite


def test_process_cli_with_zmq_mask_source_and_push_sink(tmp_path, capsys):
    from media import make_video, read_frames

    from streamfill.cli import main

    clip = tmp_path / "in.mp4"
    make_video(clip, frames=8, width=96, height=64)
    plugin_ep, sink_ep = endpoint("ipc", tmp_path, "plugin"), endpoint("ipc", tmp_path, "sink")
    box = np.zeros((64, 96), np.uint8)
    box[20:40, 30:60] = 255
    stop = threading.Event()
    plugin = rep_plugin(plugin_ep, stop, answer=lambda m: P.encode_mask(box, index=m.index, req=m.req))
    got: list = []
    collector = _collect(sink_ep, zmq.PULL, got, stop, bind=True)
    try:
        code = main(["process", str(clip), "-o", str(tmp_path / "out.mp4"), "--mask-source",
                     f"zmq:{plugin_ep}", "--sink", f"zmq:push:{sink_ep}", "-q"])
        collector.join(5)
    finally:
        stop.set()
        plugin.join(5)
    assert code == 0, capsys.readouterr().err
    assert [m.index for m in got if m.type == "frame"] == list(range(8))
    assert got[-1].type == "bye" and got[-1].header["count"] == 8
    assert len(read_frames(tmp_path / "out.mp4")) == 8
    source = read_frames(clip)[3][1]
    streamed = got[3].image
    outside = np.ones((64, 96), bool)
    outside[10:50, 20:70] = False
    assert np.abs(streamed[outside].astype(int) - source[outside]).mean() < 3  # decoded pixels, untouched
    assert np.abs(streamed[25:35, 40:50].astype(int) - source[25:35, 40:50]).mean() > 0


def test_process_cli_fails_clearly_when_the_mask_plugin_is_silent(tmp_path, capsys):
    from media import make_video

    from streamfill.cli import main

    clip = tmp_path / "in.mp4"
    make_video(clip, frames=3, width=64, height=48)
    cfg = tmp_path / "t.toml"
    cfg.write_text("[transport]\ntimeout = 0.3\nretries = 1\n")
    ep = free_tcp()
    t0 = time.monotonic()
    code = main(["process", str(clip), "-o", str(tmp_path / "out.mp4"), "--mask-source", ep, "--config", str(cfg),
                 "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "no mask for frame 0 within 0.6 s" in err and ep in err and len(err.strip().splitlines()) == 1
    assert time.monotonic() - t0 < 10
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:70000", "tcp://127.0.0.1:65536"])
def test_an_endpoint_port_outside_1_to_65535_is_refused(endpoint):
    """ZeroMQ took the port modulo 65536: 99999 bound 34463, silently."""
    from streamfill.transport import parse_spec

    with pytest.raises(InputError, match="1-65535"):
        parse_spec(f"zmq:{endpoint}", ("rep",))
    assert parse_spec("zmq:tcp://127.0.0.1:65535", ("rep",)).endpoint.endswith(":65535")
    assert parse_spec("zmq:tcp://127.0.0.1:*", ("rep",)).endpoint.endswith(":*")


def test_eval_masks_refuses_zero_frames(capsys):
    """--frames 0 silently meant the default 90."""
    from streamfill.cli import main

    assert main(["eval", "masks", "--case", "tiny", "--seeds", "1", "--frames", "0"]) != 0
    assert "--frames 0" in capsys.readouterr().err


def test_keys_that_cannot_all_be_written_leave_none_behind(tmp_path, monkeypatch):
    """The authorized/ copy failed after the four key files were written: a rerun then said "already holds
    keys" and the set could not be completed without --force."""
    import shutil

    from streamfill.errors import OutputError
    from streamfill.transport import keys

    if not keys.curve_available():
        pytest.skip("libzmq without CURVE")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(shutil, "copyfile", refuse)
    with pytest.raises(OutputError, match="cannot write keys"):
        keys.generate_keys(tmp_path / "k")
    assert not list((tmp_path / "k").glob("*.key*"))
    monkeypatch.undo()
    assert keys.generate_keys(tmp_path / "k")["server_public"].is_file()


def test_control_socket_survives_deeply_nested_json():
    # one '[[[[...' request raised RecursionError inside the control thread: that socket stopped answering
    # (this request and every later one) for the rest of the live run, and nothing said so
    from streamfill.transport.live import ControlServer

    with ControlServer("tcp://127.0.0.1:0", lambda request: {"seen": request.get("cmd")}) as srv:
        ctx = zmq.Context()
        try:
            sock = ctx.socket(zmq.REQ)
            sock.linger = 0
            sock.connect(srv.endpoint)
            sock.send(b"[" * 60000)
            assert sock.poll(5000), "the control socket did not answer"
            reply = json.loads(sock.recv())
            assert reply["ok"] is False and "not JSON" in reply["error"]
            sock.send(b'{"cmd": "stats"}')
            assert sock.poll(5000)
            assert json.loads(sock.recv()) == {"ok": True, "seen": "stats"}
        finally:
            ctx.destroy(linger=0)
        assert srv.error is None


@pytest.mark.parametrize("argv", [
    ["colorkey_mask.py", "--hsv", "1,2,3"],
    ["colorkey_mask.py", "--hsv", "a,b,c:1,2,3"],
    ["colorkey_mask.py", "--tolerance", "-5"],
    ["colorkey_mask.py", "--delay", "nan"],
    ["motion_mask.py", "--bind", "TAKEN"],
    ["colorkey_mask.py", "--bind", "TAKEN"],
    ["file_sink.py", "--bind", "TAKEN", "--out", "OUT"],
    ["preview_sink.py", "--pull", "TAKEN", "--headless"],
])
def test_plugins_refuse_bad_arguments_in_one_line(tmp_path, argv):
    # a malformed --hsv and an endpoint already in use (a second copy of the plugin) ended in tracebacks
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ep = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        args = [a.replace("TAKEN", ep).replace("OUT", str(tmp_path / "out")) for a in argv]
        if "--bind" not in args and "--pull" not in args:
            args += ["--bind", free_tcp()]
        proc = subprocess.run([sys.executable, str(PLUGINS / args[0]), *args[1:]], capture_output=True, text=True,
                              timeout=30)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(args[0].removesuffix(".py")), proc.stderr


def test_file_sink_fails_when_frames_before_the_bye_never_arrived(tmp_path):
    # the lossless receiver checked only for gaps between the indices it got: frames lost at the start or
    # the end (a receiver restarted mid-stream) went unnoticed and it exited 0
    ep = free_tcp()
    proc = subprocess.Popen([sys.executable, str(PLUGINS / "file_sink.py"), "--bind", ep, "--out",
                             str(tmp_path / "out"), "--idle", "20"], stderr=subprocess.PIPE, text=True)
    try:
        assert "writing to" in proc.stderr.readline()
        ctx = zmq.Context()
        try:
            push = ctx.socket(zmq.PUSH)
            push.connect(ep)
            for f in list(frames(5))[2:]:
                push.send_multipart(P.encode_frame(f.image, index=f.index))
            push.send_multipart(P.encode_bye(count=5))
            _, err = proc.communicate(timeout=20)
            push.close(0)
        finally:
            ctx.destroy(linger=0)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1, err
    assert "sent 5 frames but 2 never arrived" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "frame_000002.png", "frame_000003.png", "frame_000004.png", "info.txt"]


def test_secret_key_files_are_never_readable_by_others(tmp_path, monkeypatch):
    # pyzmq wrote the secret with the umask's mode (0644) and generate_keys chmod-ed it to 0600 only after:
    # meanwhile any local user could read the server's secret key; with --force an old file kept its mode
    import stat

    import zmq.auth.certs

    from streamfill.transport import keys

    if not keys.curve_available():
        pytest.skip("libzmq without CURVE")
    modes = {}
    real = zmq.auth.certs._write_key_file

    def spy(path, *args, **kwargs):
        real(path, *args, **kwargs)
        modes[Path(path).name] = stat.S_IMODE(os.stat(path).st_mode)

    monkeypatch.setattr(zmq.auth.certs, "_write_key_file", spy)
    old = os.umask(0o022)
    try:
        (tmp_path / "k").mkdir()
        (tmp_path / "k" / "server.key_secret").write_text("old")
        os.chmod(tmp_path / "k" / "server.key_secret", 0o644)
        keys.generate_keys(tmp_path / "k", overwrite=True)
    finally:
        os.umask(old)
    assert modes["server.key_secret"] == 0o600 and modes["client.key_secret"] == 0o600
    assert keys.load_client_keys(tmp_path / "k").server_public == keys.load_server_keys(tmp_path / "k").public


def test_motion_plugin_answers_a_resent_frame_with_the_same_mask():
    # the plugin compared each frame with the last one it had seen: a frame sent again (the request/reply
    # source resends the frames in flight after a timeout) got an empty mask, which offline runs then used
    import importlib.util

    spec = importlib.util.spec_from_file_location("motion_mask_plugin", PLUGINS / "motion_mask.py")
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    motion = plugin.MotionMasks(threshold=25, radius=0)
    clip = []
    for i in range(4):
        image = np.full((24, 32, 3), 40, np.uint8)
        image[8:16, 4 * i:4 * i + 6] = 250
        clip.append(image)
    first = [motion.mask("", i, image) for i, image in enumerate(clip)]
    assert not first[0].any() and all(m.any() for m in first[1:])  # the first frame: nothing to compare with
    again = [motion.mask("", i, clip[i]) for i in (2, 3)]  # frames 2 and 3 were in flight: resent
    np.testing.assert_array_equal(again[0], first[2])
    np.testing.assert_array_equal(again[1], first[3])
    assert not motion.mask("", 0, clip[0]).any()  # a new clip on the stream starts afresh
    np.testing.assert_array_equal(motion.mask("", 1, clip[1]), first[1])


def test_control_socket_survives_a_request_the_handler_chokes_on():
    # {"cmd": "box", "box": [0, 0, 10, 1e400]} raised OverflowError (int(inf)) in the live handler, which
    # only turns StreamfillError into an answer: the control thread ended and the socket went silent
    from streamfill.api import _control_handler
    from streamfill.transport.live import ControlServer

    class Retarget:
        last_shape = (48, 64)

        def retarget(self, target):
            pass

    handler = _control_handler(None, Retarget(), (48, 64))
    with ControlServer("tcp://127.0.0.1:0", handler) as srv:
        ctx = zmq.Context()
        try:
            sock = ctx.socket(zmq.REQ)
            sock.linger = 0
            sock.connect(srv.endpoint)
            replies = []
            for request in (b'{"cmd": "box", "box": [0, 0, 10, 1e400]}', b'{"cmd": "box", "box": [0, 0, 10, 10]}'):
                sock.send(request)
                assert sock.poll(5000), "the control socket did not answer"
                replies.append(json.loads(sock.recv()))
        finally:
            ctx.destroy(linger=0)
    assert replies[0]["ok"] is False and replies[1] == {"ok": True}
    assert srv.error is None
