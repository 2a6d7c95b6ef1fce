"""`streamfill serve` hardening (issue 17): one message never stops the service, CPU and memory per client
are bounded, and every behaviour that plugins/PROTOCOL.md pins down (order of checks, busy, strings, ...)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import time
import zlib

import numpy as np
import pytest
import zmq
from commands import streamfill_cmd
from serve_helpers import Dealer, invert_in_hole, service

from streamfill import protocol as P
from streamfill.config import MaskConfig, TransportConfig
from streamfill.transport import ServeService


def pair(i, h=24, w=32):
    rng = np.random.default_rng(i)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[i % h, :] = 255
    return image, mask


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def wait_in_work(svc, n: int = 1, timeout: float = 10.0) -> None:
    """Until ``n`` requests are in work (taken by workers), so that the next ones queue behind them."""
    deadline = time.monotonic() + timeout
    while len(svc._queue._working) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(svc._queue._working) >= n


def wait_waiting(svc, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while svc._queue.items < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert svc._queue.items >= n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------- one message, one reply


def test_issue_repro_lone_surrogate_hello_does_not_stop_cli_serve(tmp_path):
    """The exact repro of issue 17: a 48-byte hello whose stream is a lone surrogate."""
    port = free_port()
    proc = subprocess.Popen(streamfill_cmd("serve", "--bind", f"tcp://127.0.0.1:{port}"),
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    ctx = zmq.Context()
    try:
        line = proc.stderr.readline()
        assert "listening" in line, line
        d = ctx.socket(zmq.DEALER)
        d.linger = 0
        d.connect(f"tcp://127.0.0.1:{port}")
        d.send_multipart([b"", rb'{"v":1,"type":"hello","req":2,"stream":"\ud800"}'])
        assert d.poll(5000), "no reply to the surrogate hello"
        reply = P.decode(d.recv_multipart()[1:])
        assert reply.type == "error" and reply.header["code"] == "bad_json" and reply.req == 2
        d.send_multipart([b"", P.encode_hello(req=3)[0]])
        assert d.poll(5000), "serve stopped answering"
        assert P.decode(d.recv_multipart()[1:]).type == "hello"
        assert proc.poll() is None
        d.close(0)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)  # generous: a loaded CI machine
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not stop on SIGINT within 30 s: {_why_stuck(proc)}")
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        ctx.destroy(linger=0)
    assert "Traceback" not in err and proc.returncode == 0, err


def _why_stuck(proc: subprocess.Popen) -> str:
    """What a child that ignores SIGINT is doing: its signal masks, then its threads' stacks (faulthandler)."""
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            wanted = ("SigBlk", "SigIgn", "SigCgt", "SigPnd", "ShdPnd")
            masks = " ".join(line.strip() for line in f if line.startswith(wanted))
    except OSError as exc:
        masks = f"(no /proc: {exc})"
    proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER=1: every thread's stack on stderr
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        err = "(no stacks)"
    return f"{masks}\n{err[-6000:]}"


def test_unexpected_exception_in_a_worker_is_an_internal_reply(ctx, monkeypatch, caplog):
    real = P.encode_result

    def flaky(image, **kw):
        if kw.get("req") in (1, 2):
            raise RuntimeError("surprise")
        return real(image, **kw)

    monkeypatch.setattr(P, "encode_result", flaky)
    monkeypatch.setenv("STREAMFILL_DEBUG", "1")
    with caplog.at_level("ERROR", logger="streamfill"), service() as svc:
        client = Dealer(ctx, svc.endpoint)
        for req in (1, 2):
            image, mask = pair(req)
            reply = client.ask(P.encode_frame(image, index=req, mask=mask, req=req, stream="s"))
            assert reply.type == "error" and reply.header["code"] == "internal"
            assert reply.req == req and reply.index == req and reply.stream == "s"
        image, mask = pair(3)
        assert client.ask(P.encode_frame(image, index=3, mask=mask, req=3)).type == "result"
        assert svc.stats["internal"] == 2 and "surprise" in svc.last_internal_error
        client.close()
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1  # logged once, not per message


def test_unexpected_exception_is_not_logged_without_debug(ctx, monkeypatch, caplog):
    monkeypatch.delenv("STREAMFILL_DEBUG", raising=False)
    monkeypatch.setattr(P, "encode_bye", lambda **kw: 1 / 0)
    with caplog.at_level("DEBUG", logger="streamfill"), service() as svc:
        client = Dealer(ctx, svc.endpoint)
        assert client.ask([b"{\"v\":1,\"type\":\"bye\",\"req\":4}"]).header["code"] \
            == "internal"
        assert client.ask(P.encode_hello(req=5)).type == "hello"
        client.close()
    assert not caplog.records


@pytest.mark.parametrize("raw", [
    rb'{"v":1,"type":"hello","req":7,"stream":"\ud800"}',
    rb'{"v":1,"type":"hello","req":7,"name":"ok\udfffok"}',
    rb'{"v":1,"type":"hello","req":7,"x_meta":{"\udc80":[1,"\ud834"]}}',
])
def test_lone_surrogates_anywhere_in_a_header_are_bad_json_echoing_req(raw):
    with pytest.raises(P.MessageError) as err:
        P.decode([raw])
    assert err.value.code == "bad_json"
    reply = P.decode(P.error_reply(err.value))  # the reply itself is valid UTF-8 JSON
    assert reply.req == 7 and "stream" not in reply.header


def test_a_valid_surrogate_pair_is_fine():
    msg = P.decode([rb'{"v":1,"type":"hello","req":1,"stream":"\ud83d\ude00"}'])
    assert msg.stream == "\U0001F600"


@pytest.mark.parametrize("raw", [b'{"v":1,"type":"hello","x":NaN}', b'{"v":1,"type":"hello","x":Infinity}',
                                 b'{"v":1,"type":"hello","x":-Infinity}', b'{"v":1,"type":"hello","x":1e999}'])
def test_nan_and_infinity_are_refused_on_receipt(raw):
    with pytest.raises(P.MessageError) as err:
        P.decode([raw])
    assert err.value.code == "bad_json"


def test_invalid_utf8_bytes_are_bad_json():
    with pytest.raises(P.MessageError) as err:
        P.decode([b'{"v":1,"type":"hello","stream":"\xff\xfe"}'])
    assert err.value.code == "bad_json"


def test_header_bytes_refuses_what_json_or_utf8_cannot_hold():
    with pytest.raises(P.ProtocolError):
        P.header_bytes({"v": 1, "stream": "\ud800"})
    with pytest.raises(P.ProtocolError):
        P.header_bytes({"v": 1, "x": float("nan")})


# ------------------------------------------------------------------------------------------ CPU bounds


def _png(rows: np.ndarray, width: int, height: int, colour: int, extra_chunks=()) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"".join([b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", ihdr), *extra_chunks,
                     chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)), chunk(b"IEND", b"")])


def _paeth_png(image: np.ndarray) -> bytes:
    """``image`` (H x W x 3 or H x W) PNG-encoded with filter 4 (Paeth) on every row, computed in numpy."""
    h, w = image.shape[:2]
    bpp = 1 if image.ndim == 2 else 3
    x = image.reshape(h, w * bpp).astype(np.int16)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, bpp:] = x[:-1, :-bpp]
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    rows = np.empty((h, w * bpp + 1), np.uint8)
    rows[:, 0] = 4
    rows[:, 1:] = ((x - pred) % 256).astype(np.uint8)
    return _png(rows, w, h, 0 if bpp == 1 else 2)


def test_serve_decodes_paeth_png_in_c_never_byte_by_byte(monkeypatch):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    mask = np.zeros((64, 96), np.uint8)
    mask[10:20, 10:30] = 255
    png_image, png_mask = _paeth_png(image), _paeth_png(mask)
    np.testing.assert_array_equal(P.decode_png(png_image), image)  # the pure-Python path agrees
    np.testing.assert_array_equal(P.decode_png(png_mask), mask)

    def forbidden(*a):
        raise AssertionError("serve unfiltered a PNG row byte by byte in Python")

    monkeypatch.setattr(P, "_unfilter_sequential", forbidden)
    header = {"v": 1, "type": "frame", "req": 1, "index": 0, "width": 96, "height": 64, "channels": 3,
              "dtype": "uint8", "encoding": "png", "mask_encoding": "png", "reply_encoding": "raw"}
    svc = ServeService("tcp://127.0.0.1:0", invert_in_hole, TransportConfig())
    reply = P.decode(svc.handle([json.dumps(header).encode(), png_image, png_mask]))
    assert reply.type == "result"
    np.testing.assert_array_equal(reply.image, invert_in_hole(image, mask))


def test_png_checks_hold_on_the_c_path():
    svc = ServeService("tcp://127.0.0.1:0", invert_in_hole, TransportConfig())
    header = {"v": 1, "type": "frame", "req": 1, "index": 0, "width": 32, "height": 8, "channels": 3,
              "dtype": "uint8", "encoding": "png", "mask_encoding": "raw"}
    image = np.random.default_rng(1).integers(0, 256, (8, 32, 3), dtype=np.uint8)
    good = _paeth_png(image)
    idat = good.index(b"IDAT")
    length = struct.unpack(">I", good[idat - 4:idat])[0]
    body = good[idat + 4:idat + 4 + length] + b"junk"  # bytes after the end of the zlib stream
    chunk = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    extra = good[:idat - 4] + chunk + good[idat + 8 + length:]
    for payload in (extra, good[:-20], good.replace(b"IEND", b"IEND", 1)[:40] + good[40:].replace(b"\x04", b"\x09", 1)):
        reply = P.decode(svc.handle([json.dumps(header).encode(), payload, bytes(8 * 32)]))
        assert reply.type == "error" and reply.header["code"] == "bad_payload", reply.header


def test_corrupt_jpeg_prints_nothing(capfd):
    cv2 = pytest.importorskip("cv2")
    image = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = bytearray(cv2.imencode(".jpg", image)[1].tobytes())
    svc = ServeService("tcp://127.0.0.1:0", invert_in_hole, TransportConfig())
    header = {"v": 1, "type": "frame", "req": 1, "index": 0, "width": 64, "height": 64, "channels": 3,
              "dtype": "uint8", "encoding": "jpeg", "mask_encoding": "raw", "reply_encoding": "raw"}
    rng = np.random.default_rng(3)
    codes = set()
    for n in range(12):
        bad = bytearray(data)
        if n == 0:
            bad = bad[:300] + b"\x12\x34" + bad[300:]  # extraneous bytes before a marker
        else:
            for _ in range(5):
                bad[int(rng.integers(700, len(bad) - 2))] = int(rng.integers(0, 256))
        reply = P.decode(svc.handle([json.dumps(header).encode(), bytes(bad), bytes(64 * 64)]))
        codes.add(reply.type if reply.type == "result" else reply.header["code"])
    out, err = capfd.readouterr()
    assert err == "" and out == "", err[:300]
    assert codes <= {"result", "bad_payload"}


def test_progressive_jpeg_with_too_many_scans_is_refused():
    data = b"\xff\xd8" + b"\xff\xda\x00\x02" * (P.MAX_JPEG_SCANS + 1) + b"\xff\xd9"
    with pytest.raises(P.MessageError) as err:
        P.decode_jpeg(data)
    assert err.value.code == "bad_payload" and "scans" in err.value.detail


# ------------------------------------------------------------------------------- fair queue, byte budget


def test_heavy_client_backlog_does_not_delay_a_light_client(ctx):
    def fill(image, mask):
        if image.shape[1] == 40:  # the heavy client's frames
            time.sleep(0.15)
        return image

    with service(fill=fill, workers=1) as svc:
        heavy, light = Dealer(ctx, svc.endpoint), Dealer(ctx, svc.endpoint)
        image, mask = pair(0, 20, 40)
        for i in range(8):
            heavy.send(P.encode_frame(image, index=i, mask=mask, req=i))
        wait_waiting(svc, 6)
        small, small_mask = pair(1, 20, 30)
        light.send(P.encode_frame(small, index=0, mask=small_mask, req=100))
        order = []
        poller = zmq.Poller()
        poller.register(heavy.sock, zmq.POLLIN)
        poller.register(light.sock, zmq.POLLIN)
        deadline = time.monotonic() + 10
        while len(order) < 9 and time.monotonic() < deadline:
            for sock, _ in poller.poll(500):
                who = heavy if sock is heavy.sock else light
                order.append(who.recv().req)
        assert len(order) == 9 and sorted(order) == [*range(8), 100]
        assert order.index(100) <= 2, order  # after at most the heavy request(s) already in work
        assert [r for r in order if r != 100] == list(range(8))  # the heavy client's own order holds
        heavy.close()
        light.close()


def test_queue_is_bounded_in_bytes_not_only_in_requests(ctx):
    import threading

    gate = threading.Event()

    def blocked(image, mask):
        gate.wait(10)
        return image

    image, mask = pair(0, 320, 320)  # 307 200 + 102 400 bytes per request
    with service(fill=blocked, queue=1000, queue_bytes=1024 * 1024, workers=1) as svc:
        a, b, c = (Dealer(ctx, svc.endpoint) for _ in range(3))
        a.send(P.encode_frame(image, index=0, mask=mask, req=1))       # taken into work: 0.4 MB held
        wait_in_work(svc)
        busy = a.ask(P.encode_frame(image, index=1, mask=mask, req=2))  # a's second: over half the budget
        assert busy.header["code"] == "busy" and busy.req == 2 and "bytes" in busy.header["message"]
        b.send(P.encode_frame(image, index=0, mask=mask, req=3))       # 0.8 MB held: fits
        wait_waiting(svc, 1)
        full = c.ask(P.encode_frame(image, index=0, mask=mask, req=4))  # 1.2 MB > 1 MiB
        assert full.header["code"] == "busy" and full.req == 4
        assert c.ask(P.encode_hello(req=5), timeout=0.5) is None       # hello waits its turn (tiny: fits)
        gate.set()
        assert a.recv().req == 1 and b.recv().req == 3 and c.recv().type == "hello"
        assert svc.stats["busy"] == 2
        for d in (a, b, c):
            d.close()


def test_config_rejects_a_tiny_byte_budget():
    with pytest.raises(ValueError, match="transport.queue_bytes"):
        TransportConfig(queue_bytes=10)


# ------------------------------------------------------------------------- behaviours PROTOCOL.md pins


def test_resend_after_busy_reuses_req(ctx):
    import threading

    gate = threading.Event()

    def blocked(image, mask):
        gate.wait(10)
        return image

    with service(fill=blocked, queue=2, workers=1) as svc:
        client = Dealer(ctx, svc.endpoint)
        image, mask = pair(0)
        client.send(P.encode_frame(image, index=1, mask=mask, req=1))
        wait_in_work(svc)  # 1 goes into work, 2 waits (one waiting request per client when queue = 2)
        client.send(P.encode_frame(image, index=2, mask=mask, req=2))
        wait_waiting(svc, 1)
        busy = client.ask(P.encode_frame(image, index=3, mask=mask, req=3))
        assert busy.header["code"] == "busy" and busy.req == 3 and busy.index == 3
        hello_busy = client.ask(P.encode_hello(req=9))  # hello (and bye) take a place too
        assert hello_busy.type == "error" and hello_busy.header["code"] == "busy" and hello_busy.req == 9
        gate.set()
        assert [client.recv().req for _ in range(2)] == [1, 2]
        again = client.ask(P.encode_frame(image, index=3, mask=mask, req=3))  # same req
        assert again.type == "result" and again.req == 3
        client.close()


def test_errors_without_req_keep_request_order(ctx):
    with service() as svc:
        client = Dealer(ctx, svc.endpoint)
        image, mask = pair(0)
        client.send(P.encode_frame(image, index=0, mask=mask, req=1))
        client.send([b"{not json"])
        client.send([b" " * (P.MAX_HEADER_BYTES + 1)])
        client.send([rb'{"v":1,"type":"hello","stream":"\udc00"}'])
        client.send(P.encode_frame(image, index=4, mask=mask, req=4))
        replies = [client.recv() for _ in range(5)]
        assert [r.type for r in replies] == ["result", "error", "error", "error", "result"]
        assert [r.header.get("code") for r in replies[1:4]] == ["bad_json", "too_large", "bad_json"]
        assert [r.req for r in replies] == [1, None, None, None, 4]
        client.close()


def test_bye_reply_fields_exactly(ctx):
    with service() as svc:
        client = Dealer(ctx, svc.endpoint)
        reply = client.ask([b'{"v":1,"type":"bye","req":8,"stream":"cam","count":12}'])
        assert reply.header == {"v": 1, "type": "bye", "stream": "cam", "req": 8}
        assert client.ask([b'{"v":1,"type":"bye"}']).header == {"v": 1, "type": "bye"}
        client.close()


@pytest.mark.parametrize("fields,code", [
    ({"v": 9, "dtype": "float32"}, "unsupported_version"),       # v before any type-specific field
    ({"type": "nope", "width": -1}, "unknown_type"),              # type before fields
    ({"req": -1, "stream": 5}, "bad_header"),                     # req before stream (message names req)
    ({"index": "x", "width": 0}, "bad_header"),                   # index before width
    ({"dtype": "float32", "encoding": "webp"}, "unsupported_dtype"),  # dtype before encoding
    ({"width": 20000, "height": 20000}, "bad_header"),            # a side over max_side: bad_header, not too_large
    ({"width": 9000, "height": 9000}, "too_large"),               # declared size before encoding / payload
    ({"encoding": "webp", "mask_encoding": "gif"}, "unsupported_encoding"),
])
def test_order_of_checks(fields, code):
    header = {"v": 1, "type": "frame", "req": 1, "index": 0, "width": 4, "height": 2, "channels": 3,
              "dtype": "uint8", "mask_encoding": "raw", **fields}
    with pytest.raises(P.MessageError) as err:
        P.decode([json.dumps(header).encode(), b"x", b"y"], max_bytes=64 * 1024 * 1024, max_side=16384)
    assert err.value.code == code
    if "req" in fields:
        assert "req" in err.value.detail


def test_dilate_shape_is_the_documented_disc():
    from streamfill.masks import prepare

    for r in (1, 2, 3, 4, 7):
        size = 4 * r + 1
        mask = np.zeros((size, size), np.uint8)
        mask[2 * r, 2 * r] = 255
        grown = prepare(mask, MaskConfig(dilate=r, feather=0)) > 0
        dy, dx = np.mgrid[-2 * r:2 * r + 1, -2 * r:2 * r + 1]
        half = np.floor(np.sqrt(np.maximum(r * r - dy * dy, 0)) + 0.5)  # PROTOCOL.md 4: round half up
        expect = (np.abs(dy) <= r) & (np.abs(dx) <= half)
        np.testing.assert_array_equal(grown, expect, err_msg=f"dilate {r}")


def test_protocol_md_names_the_section_that_holds_max_side():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "plugins" / "PROTOCOL.md").read_text()
    assert "max side (4)" not in text and "1 .. max side (9)" in text


@pytest.mark.slow
def test_close_returns_while_a_worker_is_still_in_a_fill(ctx):
    """A fill that does not come back (a stuck engine) must not make stopping hang: the worker still holds its
    socket, so terminating the ZeroMQ context would wait for it forever; close() gives up on it after its join
    timeout and leaves the daemon thread to the process's exit."""
    import threading

    gate = threading.Event()

    def stuck(image, mask):
        gate.wait(60)
        return image

    image, mask = pair(0)
    svc = ServeService("tcp://127.0.0.1:0", stuck, TransportConfig(workers=1))
    svc.__enter__()
    try:
        a = Dealer(ctx, svc.endpoint)
        a.send(P.encode_frame(image, index=0, mask=mask, req=1))
        wait_in_work(svc)
        closer = threading.Thread(target=svc.close, daemon=True)
        closer.start()
        closer.join(20)
        assert not closer.is_alive(), "close() hung on a worker stuck in its fill"
    finally:
        gate.set()
