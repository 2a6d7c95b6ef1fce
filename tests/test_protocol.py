"""The wire protocol (streamfill.protocol): encode/decode round trips, PNG/JPEG payloads, validation codes."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamfill import protocol as P


def _image(h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask(h=48, w=64):
    m = np.zeros((h, w), np.uint8)
    m[10:30, 20:40] = 255
    return m


def _hdr(**fields):
    base = {"v": 1, "type": "frame", "index": 0, "width": 4, "height": 2, "channels": 3, "dtype": "uint8"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_frame_round_trip_keeps_pixels_and_fields(encoding):
    image, mask = _image(), _mask()
    parts = P.encode_frame(image, index=7, pts=14, time_base=(1, 50), stream="cam1", req=3, mask=mask,
                           encoding=encoding, mask_encoding=encoding)
    assert len(parts) == 3
    msg = P.decode(parts)
    assert msg.type == "frame" and msg.index == 7 and msg.pts == 14 and msg.req == 3 and msg.stream == "cam1"
    assert msg.time_base.numerator == 1 and msg.time_base.denominator == 50
    np.testing.assert_array_equal(msg.image, image)
    np.testing.assert_array_equal(msg.mask, mask)
    assert msg.image.shape == (48, 64, 3) and msg.mask.shape == (48, 64)


def test_raw_payload_is_row_major_rgb_without_padding():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    header, payload = P.encode_frame(image, index=0)
    assert bytes(payload) == bytes(range(18))
    h = json.loads(header)
    assert (h["width"], h["height"], h["channels"], h["dtype"], h["encoding"]) == (3, 2, 3, "uint8", "raw")


def test_mask_and_result_messages():
    mask = _mask()
    msg = P.decode(P.encode_mask(mask, index=5, req=9, encoding="png"))
    assert msg.type == "mask" and msg.index == 5 and msg.req == 9 and msg.image is None
    np.testing.assert_array_equal(msg.mask, mask)
    res = P.decode(P.encode_result(_image(), index=1))
    assert res.type == "result" and res.mask is None


@pytest.mark.parametrize("kind", ["rgb", "grey", "smooth"])
def test_png_decoder_reads_libpng_files_with_every_filter(kind):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    array = {"rgb": base, "grey": base[:, :, 0], "smooth": cv2.GaussianBlur(base, (9, 9), 0)}[kind]
    bgr = array[:, :, ::-1] if array.ndim == 3 else array
    ok, data = cv2.imencode(".png", np.ascontiguousarray(bgr))  # libpng: adaptive (Sub/Up/Avg/Paeth) filters
    assert ok
    np.testing.assert_array_equal(P.decode_png(data.tobytes()), array)
    ours = P.encode_png(array)
    decoded = cv2.imdecode(np.frombuffer(ours, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded[:, :, ::-1] if array.ndim == 3 else decoded, array)


def test_jpeg_payload_round_trips_approximately():
    image = cv2.GaussianBlur(_image(64, 96), (15, 15), 0)
    parts = P.encode_frame(image, index=0, encoding="jpeg", jpeg_quality=95)
    assert P.jpeg_size(parts[1]) == (64, 96)
    msg = P.decode(parts)
    assert msg.image.shape == image.shape
    assert np.abs(msg.image.astype(int) - image).mean() < 4


def test_hello_negotiates_highest_common_version():
    assert P.negotiate([0, 1, 7]) == 1
    with pytest.raises(P.MessageError) as err:
        P.negotiate([2, 3])
    assert err.value.code == "unsupported_version"


def _bomb() -> bytes:
    png = bytearray(P.encode_png(np.zeros((4, 4), np.uint8)))
    # same IHDR (4x4 grey) but IDAT inflates to far more than 4 * (4 + 1) bytes
    body = zlib.compress(b"\0" * 10_000_000)
    start = png.index(b"IDAT") - 4
    end = start + 12 + int.from_bytes(png[start:start + 4], "big")
    chunk = len(body).to_bytes(4, "big") + b"IDAT" + body + zlib.crc32(b"IDAT" + body).to_bytes(4, "big")
    return bytes(png[:start]) + chunk + bytes(png[end:])


BAD = {
    "no parts": ([], "bad_message"),
    "bad json": ([b"{nope"], "bad_json"),
    "json array": ([b"[1, 2]"], "bad_json"),
    "not utf-8": ([b"\xff\xfe{}"], "bad_json"),
    "no version": ([b'{"type": "hello"}'], "bad_header"),
    "future version": ([_hdr(v=2), bytes(24)], "unsupported_version"),
    "unknown type": ([_hdr(type="teleport"), bytes(24)], "unknown_type"),
    "missing width": ([_hdr(width=None), bytes(24)], "bad_header"),
    "bool index": ([_hdr(index=True), bytes(24)], "bad_header"),
    "negative index": ([_hdr(index=-1), bytes(24)], "bad_header"),
    "float channels": ([_hdr(channels=3.0), bytes(24)], "bad_header"),
    "mask channels on frame": ([_hdr(channels=1), bytes(8)], "bad_header"),
    "wrong dtype": ([_hdr(dtype="float32"), bytes(96)], "unsupported_dtype"),
    "unknown encoding": ([_hdr(encoding="webp"), bytes(24)], "unsupported_encoding"),
    "short payload": ([_hdr(), bytes(23)], "bad_payload"),
    "long payload": ([_hdr(), bytes(25)], "bad_payload"),
    "missing payload": ([_hdr()], "bad_message"),
    "extra payload": ([_hdr(), bytes(24), bytes(8), bytes(8)], "bad_message"),
    "short mask": ([_hdr(), bytes(24), bytes(7)], "bad_payload"),
    "huge declared size": ([_hdr(width=30000, height=30000), bytes(24)], "too_large"),
    "side over limit": ([_hdr(width=40000), bytes(24)], "bad_header"),
    "bad time base": ([_hdr(time_base=[1, 0]), bytes(24)], "bad_header"),
    "huge header": ([b'{"v": 1, "pad": "' + b"x" * 70000 + b'"}'], "too_large"),
    "corrupt png": ([_hdr(encoding="png"), b"\x89PNG\r\n\x1a\nrubbish"], "bad_payload"),
    "png of wrong size": ([_hdr(encoding="png"), P.encode_png(np.zeros((3, 4, 3), np.uint8))], "bad_payload"),
    "png bomb": ([_hdr(type="mask", channels=1, encoding="png", height=4), _bomb()], "bad_payload"),
    "png size differs from header": ([_hdr(type="mask", channels=1, encoding="png"), _bomb()], "bad_payload"),
    "jpeg mask": ([_hdr(type="mask", channels=1, encoding="jpeg"), b"\xff\xd8"], "unsupported_encoding"),
    "error without code": ([b'{"v": 1, "type": "error"}'], "bad_header"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_malformed_messages_raise_with_a_code(name):
    parts, code = BAD[name]
    with pytest.raises(P.MessageError) as err:
        P.decode(parts, max_bytes=64 * 1024 * 1024)
    assert err.value.code == code, str(err.value)
    assert err.value.code in P.ERROR_CODES


def test_png_bomb_is_refused_without_inflating_it_all():
    with pytest.raises(P.MessageError, match="inflates to 21\\+ bytes, expected 20"):
        P.decode_png(_bomb())


def test_error_reply_echoes_request_identity():
    with pytest.raises(P.MessageError) as err:
        P.decode([_hdr(req=42, stream="s", index=3, dtype="int16"), bytes(48)])
    reply = P.decode(P.error_reply(err.value))
    assert reply.type == "error" and reply.req == 42 and reply.stream == "s" and reply.index == 3
    assert reply.header["code"] == "unsupported_dtype"
    with pytest.raises(P.MessageError) as err:
        P.decode([_hdr(v=9), bytes(24)])
    assert P.decode(P.error_reply(err.value)).header["versions"] == [1]


def test_importing_protocol_pulls_in_nothing_heavy():
    code = ("import sys, streamfill.protocol; "
            "print(sorted(m for m in ('zmq', 'cv2', 'torch', 'av', 'streamfill.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_protocol_py_works_as_one_copied_file(tmp_path):
    # the README: "a client needs only numpy, pyzmq and streamfill/protocol.py"; the file imported
    # streamfill.errors, so a copy in a host's environment without streamfill failed with ModuleNotFoundError
    import shutil

    shutil.copy(Path(P.__file__), tmp_path / "protocol.py")
    code = ("import sys; sys.modules['streamfill'] = None; sys.path.insert(0, sys.argv[1]); import numpy as np; "
            "import protocol as P; m = P.decode(P.encode_mask(np.zeros((2, 3), np.uint8), index=4)); "
            "print(m.type, m.index, m.mask.shape)\n"
            "try:\n    P.decode([b'{}'])\nexcept P.ProtocolError as exc:\n    print(exc.code)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["mask", "4", "(2,", "3)", "bad_header"]


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_an_empty_picture_is_a_protocol_error(shape):
    """An empty crop raised memoryview's TypeError ('cannot cast view with zeros in shape'), and encode_png
    wrote a PNG that decode_png refuses."""
    with pytest.raises(P.ProtocolError, match="at least 1x1"):
        P.encode_frame(np.zeros((*shape, 3), np.uint8), index=0, mask=np.zeros(shape, np.uint8))
    with pytest.raises(P.ProtocolError, match="at least 1x1"):
        P.encode_mask(np.zeros(shape, np.uint8), index=0)
    with pytest.raises(P.ProtocolError, match="at least 1x1"):
        P.encode_png(np.zeros(shape, np.uint8))
