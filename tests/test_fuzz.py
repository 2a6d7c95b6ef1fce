"""Property-based fuzzing (Hypothesis) of the wire-protocol parser and of a running `streamfill serve`.

Bounded: a few hundred examples, a few seconds on 2 cores. The long run (100,000 mutated messages, RSS and
stderr checks) is benchmarks/fuzz_serve.py."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamfill import protocol as P
from streamfill.config import TransportConfig
from streamfill.transport import ServeService

FIELDS = ("v", "type", "req", "stream", "index", "width", "height", "channels", "dtype", "encoding",
          "mask_encoding", "reply_encoding", "pts", "time_base", "versions", "count", "code", "message")
TYPES = ("hello", "frame", "mask", "result", "error", "bye")

text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.sampled_from(["raw", "png", "jpeg", "uint8", "frame", "hello", ""]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**60), st.sampled_from([0, 1, 2, 3, 4, 16, 17]),
                    st.floats(allow_nan=False, allow_infinity=False), text)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                      max_leaves=6)


def _png(w: int, h: int, colour: int, filters: list[int], data: bytes) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    bpp = 1 if colour == 0 else 3
    stride = w * bpp
    rows = bytearray()
    for y in range(h):
        rows.append(filters[y % len(filters)])
        rows += (data * (stride // max(1, len(data)) + 1))[:stride] if data else bytes(stride)
    return b"".join([b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)),
                     chunk(b"IDAT", zlib.compress(bytes(rows))), chunk(b"IEND", b"")])


@st.composite
def payloads(draw, w: int, h: int, channels: int):
    kind = draw(st.sampled_from(["raw", "raw-wrong", "png", "png-flip", "jpeg-ish", "bytes"]))
    if kind == "raw":
        return bytes(w * h * channels)
    if kind == "raw-wrong":
        return bytes(max(0, w * h * channels + draw(st.integers(-3, 3))))
    if kind in ("png", "png-flip"):
        data = _png(w, h, 0 if channels == 1 else 2, draw(st.lists(st.integers(0, 5), min_size=1, max_size=4)),
                    draw(st.binary(max_size=8)))
        if kind == "png-flip":
            buf = bytearray(data)
            buf[draw(st.integers(0, len(buf) - 1))] ^= draw(st.integers(1, 255))
            data = bytes(buf)
        return data
    if kind == "jpeg-ish":
        return b"\xff\xd8" + draw(st.binary(max_size=64)) + b"\xff\xd9"
    return draw(st.binary(max_size=64))


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(TYPES))
    w, h = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    header = {"v": 1, "type": kind, "req": draw(st.integers(0, 1000)), "index": 0, "width": w, "height": h,
              "channels": 1 if kind == "mask" else 3, "dtype": "uint8",
              "encoding": draw(st.sampled_from(["raw", "png", "jpeg"])),
              "mask_encoding": draw(st.sampled_from(["raw", "png"]))}
    if draw(st.booleans()):
        header["stream"] = draw(text)  # a third of these hold lone surrogates
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        if draw(st.booleans()):
            header.pop(key, None)
        else:
            header[key] = draw(values)
    raw = json.dumps(header)  # ensure_ascii: lone surrogates become \udXXX escapes, valid JSON
    if draw(st.integers(0, 9)) == 0:
        raw = draw(st.sampled_from(['{"v":1,"type":"hello","x":NaN}', '[1,2]', '{', '{"v":1e999}', ""])) or raw
    parts = [raw.encode()]
    for _ in range(draw(st.integers(0, 3))):
        parts.append(draw(payloads(w, h, 1 if len(parts) == 2 or kind == "mask" else 3)))
    return parts


def _check_reply(parts: list, request: list) -> None:
    reply = P.decode(parts)
    assert reply.type in ("result", "error", "hello", "bye")
    if reply.type == "error":
        assert reply.header["code"] in P.ERROR_CODES


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_parser_raises_only_message_errors_and_every_error_has_a_valid_reply(parts):
    try:
        msg = P.decode(parts, max_bytes=1 << 20, max_side=64)
    except P.MessageError as exc:
        assert exc.code in P.ERROR_CODES
        reply = P.decode(P.error_reply(exc))  # the reply can always be written and read back
        assert reply.type == "error" and reply.header["code"] == exc.code
        req = exc.header.get("req")
        if isinstance(req, int) and not isinstance(req, bool) and 0 <= req <= P.MAX_INT:
            assert reply.req == req
    else:
        assert msg.type in TYPES
        P.header_bytes(msg.header)  # what was accepted can be echoed


@pytest.fixture(scope="module")
def running():
    ctx = zmq.Context()
    svc = ServeService("tcp://127.0.0.1:0", lambda image, mask: image,
                       TransportConfig(max_message_bytes=1 << 20, max_side=64, queue=4))
    svc.start()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(svc.endpoint)
    yield svc, sock
    sock.close(0)
    svc.close()
    ctx.destroy(linger=0)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(parts=messages())
def test_service_answers_every_message_once_and_stays_alive(running, parts):
    svc, sock = running
    sock.send_multipart([b"", *parts])
    assert sock.poll(5000), f"no reply to {parts[0][:80]!r}"
    reply = sock.recv_multipart()
    assert reply[0] == b""
    _check_reply(reply[1:], parts)
    assert not sock.poll(0)  # exactly one reply
    assert svc.stop_event.is_set() is False


def test_service_still_fills_after_the_fuzzing(running):
    svc, sock = running
    image = np.full((8, 8, 3), 7, np.uint8)
    mask = np.zeros((8, 8), np.uint8)
    sock.send_multipart([b"", *P.encode_frame(image, index=0, mask=mask, req=1)])
    assert sock.poll(5000)
    reply = P.decode(sock.recv_multipart()[1:])
    assert reply.type == "result" and reply.req == 1
    assert svc.stats["internal"] == 0
