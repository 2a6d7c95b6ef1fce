"""The streamfill wire protocol: encode, decode and validate multipart messages (no sockets).

The full specification is ``plugins/PROTOCOL.md``. In short, every message is a ZeroMQ multipart message
``[header, payload...]``: the header is a UTF-8 JSON object, the payloads are bytes.

- ``frame``  (1 or 2 payloads): an RGB image, optionally followed by its mask.
- ``mask``   (1 payload): a mask for one frame.
- ``result`` (1 payload): a filled RGB image (the answer of ``streamfill serve``).
- ``hello`` / ``error`` / ``bye`` (no payload): negotiation, failures, end of stream.

Data contracts: images are H x W x 3 uint8 **RGB**, masks H x W uint8 with **255 = fill** (0 = keep), both
row-major with no row padding. Decoded arrays may be read-only views on the received buffers.

This module imports only numpy and the standard library, so plugins in other environments stay light.
PNG is implemented here with ``zlib``; JPEG needs OpenCV and is loaded only when a JPEG is encoded or decoded.
"""

from __future__ import annotations

import importlib
import json
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

try:
    from streamfill.errors import ProtocolError
except ImportError:  # this file copied alone into a host's environment (the README says one file is enough)

    class ProtocolError(ValueError):  # type: ignore[no-redef]
        """A wire message is malformed (see plugins/PROTOCOL.md)."""

VERSION = 1
SUPPORTED_VERSIONS = (1,)
TYPES = ("hello", "frame", "mask", "result", "error", "bye")
ENCODINGS = ("raw", "png", "jpeg")
DTYPES = ("uint8",)
MAX_HEADER_BYTES = 65536
MAX_SIDE = 32768
MAX_STRING = 256
MAX_INT = 2**53 - 1  # exactly representable in a JavaScript number
DEFAULT_MAX_BYTES = 128 * 1024 * 1024

ERROR_CODES = {
    "bad_message": "wrong number of parts for the message type, or no parts at all",
    "bad_json": "the header is not a UTF-8 JSON object",
    "bad_header": "a header field is missing, has the wrong type, or is out of range",
    "unsupported_version": "no protocol version in common (the reply lists the supported ones)",
    "unknown_type": "the message type is not one of hello, frame, mask, result, error, bye",
    "unexpected_type": "a valid message that this peer does not accept here",
    "unsupported_dtype": "dtype is not uint8",
    "unsupported_encoding": "encoding is not raw, png or jpeg, or is unavailable at this peer",
    "bad_payload": "a payload disagrees with the header (size, dimensions) or cannot be decoded",
    "too_large": "a part or a declared size exceeds the peer's limits",
    "busy": "the peer's queue is full; retry later",
    "fill_failed": "the completion engine failed on this frame",
    "internal": "an unexpected failure inside the peer",
}

_PAYLOADS = {"hello": (0,), "error": (0,), "bye": (0,), "mask": (1,), "result": (1,), "frame": (1, 2)}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class MessageError(ProtocolError):
    """A message failed validation. ``code`` is one of ``ERROR_CODES``; ``header`` is the parsed header
    (a dict, possibly empty) so that an error reply can echo ``req``, ``stream`` and ``index``."""

    def __init__(self, code: str, message: str, header: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.detail = message
        self.header = header if isinstance(header, dict) else {}


@dataclass(frozen=True)
class Message:
    """A decoded, validated message.

    ``image``: H x W x 3 uint8 RGB for ``frame``/``result``; ``mask``: H x W uint8 (255 = fill) for ``mask``
    messages and for a ``frame`` that carries its mask. Both may be read-only views.
    """

    header: dict
    image: np.ndarray | None = None
    mask: np.ndarray | None = None

    @property
    def type(self) -> str:
        return self.header["type"]

    @property
    def stream(self) -> str:
        return self.header.get("stream", "")

    @property
    def index(self) -> int | None:
        return self.header.get("index")

    @property
    def req(self) -> int | None:
        return self.header.get("req")

    @property
    def pts(self) -> int | None:
        return self.header.get("pts")

    @property
    def time_base(self) -> Fraction | None:
        tb = self.header.get("time_base")
        return None if tb is None else Fraction(tb[0], tb[1])


# ----------------------------------------------------------------------------------------------- encoding


def header_bytes(header: dict) -> bytes:
    """The compact UTF-8 JSON form of a header dict. Raises ``ProtocolError`` for a string that cannot be
    UTF-8 (a lone surrogate) or a value JSON cannot hold (NaN, infinity, other objects)."""
    try:
        return json.dumps(header, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError) as exc:
        raise ProtocolError(f"header cannot be written as UTF-8 JSON ({exc})") from None


def _common(type_: str, stream: str | None, req: int | None, extra: dict | None) -> dict:
    header: dict[str, Any] = {"v": VERSION, "type": type_}
    if stream:
        header["stream"] = stream
    if req is not None:
        header["req"] = int(req)
    if extra:
        header.update(extra)
    return header


def _payload(array: np.ndarray, channels: int, encoding: str, *, png_level: int, jpeg_quality: int):
    if encoding == "raw":
        return memoryview(np.ascontiguousarray(array)).cast("B")
    if encoding == "png":
        return encode_png(array, level=png_level)
    if encoding == "jpeg":
        if channels != 3:
            raise MessageError("unsupported_encoding", "jpeg is for images only; send masks raw or png")
        return encode_jpeg(array, quality=jpeg_quality)
    raise MessageError("unsupported_encoding", f"encoding {encoding!r} is not one of {', '.join(ENCODINGS)}")


def _check_image(image: np.ndarray) -> tuple[int, int]:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", "")
        raise ProtocolError(f"image must be an H x W x 3 uint8 RGB array, got {shape} {dtype}")
    if 0 in image.shape[:2]:  # (an empty crop: the server refuses it too)
        raise ProtocolError(f"image must be at least 1x1, got {image.shape[0]}x{image.shape[1]} (HxW)")
    return int(image.shape[0]), int(image.shape[1])


def _check_mask(mask: np.ndarray, hw: tuple[int, int] | None = None) -> tuple[int, int]:
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 2:
        shape = getattr(mask, "shape", None)
        raise ProtocolError(f"mask must be an H x W uint8 array, got {shape} {getattr(mask, 'dtype', '')}")
    if hw is not None and tuple(mask.shape) != hw:
        raise ProtocolError(f"mask is {mask.shape[0]}x{mask.shape[1]} (HxW) but the image is {hw[0]}x{hw[1]}")
    if 0 in mask.shape:
        raise ProtocolError(f"mask must be at least 1x1, got {mask.shape[0]}x{mask.shape[1]} (HxW)")
    return int(mask.shape[0]), int(mask.shape[1])


def encode_image(
    type_: str,
    image: np.ndarray,
    *,
    index: int,
    pts: int | None = None,
    time_base: Fraction | tuple[int, int] | None = None,
    stream: str | None = None,
    req: int | None = None,
    encoding: str = "raw",
    mask: np.ndarray | None = None,
    mask_encoding: str = "raw",
    png_level: int = 3,
    jpeg_quality: int = 90,
    extra: dict | None = None,
) -> list:
    """Parts of a ``frame`` or ``result`` message: ``[header, image]`` or ``[header, image, mask]``.

    ``image``: H x W x 3 uint8 RGB. ``mask`` (frame only): H x W uint8, 255 = fill. Raw payloads are
    zero-copy views: do not modify the arrays until the message is sent.
    """
    if type_ not in ("frame", "result"):
        raise ProtocolError(f"encode_image makes frame or result messages, not {type_!r}")
    h, w = _check_image(image)
    fields: dict[str, Any] = {"index": int(index), "width": w, "height": h, "channels": 3, "dtype": "uint8",
                              "encoding": encoding}
    if pts is not None:
        fields["pts"] = int(pts)
    if time_base is not None:
        tb = Fraction(time_base) if not isinstance(time_base, tuple) else Fraction(*time_base)
        fields["time_base"] = [tb.numerator, tb.denominator]
    parts = [None, _payload(image, 3, encoding, png_level=png_level, jpeg_quality=jpeg_quality)]
    if mask is not None:
        if type_ != "frame":
            raise ProtocolError("only a frame message carries a mask")
        _check_mask(mask, (h, w))
        fields["mask_encoding"] = mask_encoding
        parts.append(_payload(mask, 1, mask_encoding, png_level=png_level, jpeg_quality=jpeg_quality))
    header = _common(type_, stream, req, fields)
    if extra:
        header.update(extra)
    parts[0] = header_bytes(header)
    return parts


def encode_frame(image: np.ndarray, **kwargs) -> list:
    """Parts of a ``frame`` message (see ``encode_image``)."""
    return encode_image("frame", image, **kwargs)


def encode_result(image: np.ndarray, **kwargs) -> list:
    """Parts of a ``result`` message (see ``encode_image``)."""
    return encode_image("result", image, **kwargs)


def encode_mask(
    mask: np.ndarray,
    *,
    index: int,
    stream: str | None = None,
    req: int | None = None,
    encoding: str = "raw",
    png_level: int = 3,
    extra: dict | None = None,
) -> list:
    """Parts of a ``mask`` message: ``[header, mask]``; ``mask`` is H x W uint8, 255 = fill, 0 = keep."""
    h, w = _check_mask(mask)
    header = _common("mask", stream, req, {"index": int(index), "width": w, "height": h, "channels": 1,
                                           "dtype": "uint8", "encoding": encoding})
    if extra:
        header.update(extra)
    return [header_bytes(header), _payload(mask, 1, encoding, png_level=png_level, jpeg_quality=0)]


def encode_error(
    code: str, message: str, *, stream: str | None = None, index: int | None = None, req: int | None = None,
    extra: dict | None = None,
) -> list:
    """Parts of an ``error`` message (``code`` from ``ERROR_CODES``, ``message`` human-readable)."""
    header = _common("error", stream, req, {"code": code, "message": str(message)[:1000]})
    if index is not None:
        header["index"] = int(index)
    if extra:
        header.update(extra)
    return [header_bytes(header)]


def error_reply(exc: MessageError, **extra) -> list:
    """An ``error`` message answering a request that raised ``exc``; echoes its valid req/stream/index."""
    h = exc.header
    req = h.get("req") if _is_int(h.get("req"), 0, MAX_INT) else None
    index = h.get("index") if _is_int(h.get("index"), 0, MAX_INT) else None
    stream = h.get("stream") if _is_text(h.get("stream")) and len(h["stream"]) <= MAX_STRING else None
    fields = {"versions": list(SUPPORTED_VERSIONS)} if exc.code == "unsupported_version" else {}
    fields.update(extra)
    return encode_error(exc.code, exc.detail, stream=stream, index=index, req=req, extra=fields or None)


def encode_hello(
    *, versions: Sequence[int] = SUPPORTED_VERSIONS, version: int | None = None, name: str | None = None,
    req: int | None = None, stream: str | None = None, extra: dict | None = None,
) -> list:
    """Parts of a ``hello``: a request lists ``versions``; a reply also sets the chosen ``version``."""
    fields: dict[str, Any] = {"versions": [int(v) for v in versions]}
    if version is not None:
        fields["version"] = int(version)
    if name:
        fields["name"] = name
    return [header_bytes(_common("hello", stream, req, {**fields, **(extra or {})}))]


def encode_bye(*, stream: str | None = None, count: int | None = None, req: int | None = None,
               reason: str | None = None, discard: bool = False) -> list:
    """Parts of a ``bye``: the sender is done with ``stream`` after ``count`` frames (both optional);
    ``discard``: serve drops what it holds of a look-ahead stream instead of answering it (PROTOCOL.md 6.1.1)."""
    fields: dict[str, Any] = {}
    if count is not None:
        fields["count"] = int(count)
    if reason:
        fields["reason"] = reason
    if discard:
        fields["discard"] = True
    return [header_bytes(_common("bye", stream, req, fields))]


def negotiate(versions: Any, header: dict | None = None) -> int:
    """The highest version in both ``versions`` (a hello's list) and ``SUPPORTED_VERSIONS``.
    ``header`` (the hello's) lets the error reply echo its ``req`` and ``stream``."""
    if not isinstance(versions, list) or not all(_is_int(v, 0, 65535) for v in versions):
        raise MessageError("bad_header", "hello.versions must be a list of integers in [0, 65535]", header)
    common = set(versions) & set(SUPPORTED_VERSIONS)
    if not common:
        raise MessageError("unsupported_version", f"no common version: peer offers {versions}, "
                           f"this side supports {list(SUPPORTED_VERSIONS)}", header)
    return max(common)


# ----------------------------------------------------------------------------------------------- decoding


def _is_int(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _is_text(value: Any) -> bool:
    """A str that UTF-8 can hold (JSON's ``\\ud800`` escapes decode to lone surrogates, which it cannot)."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bad_strings(value: Any) -> bool:
    """Whether any key or string inside a parsed JSON value is not valid Unicode text (iterative walk)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _is_text(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _no_constants(name: str):
    raise ValueError(f"{name} is not standard JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range for a double")
    return value


def _int_field(header: dict, key: str, lo: int, hi: int, *, required: bool = True) -> int | None:
    if key not in header:
        if required:
            raise MessageError("bad_header", f"{header.get('type')} message needs field {key!r}", header)
        return None
    value = header[key]
    if not _is_int(value, lo, hi):
        raise MessageError("bad_header", f"{key} = {value!r}: must be an integer in [{lo}, {hi}]", header)
    return value


def _bool_field(header: dict, key: str) -> None:
    if key in header and not isinstance(header[key], bool):
        raise MessageError("bad_header", f"{key} = {str(header[key])[:40]!r}: must be true or false", header)


def _as_buffer(part: Any) -> memoryview:
    try:
        view = memoryview(part)
    except TypeError:
        raise MessageError("bad_message", f"message part is not bytes-like ({type(part).__name__})") from None
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def parse_header(parts: Sequence[Any]) -> dict:
    """The header dict of ``parts`` after the checks that apply to every type (version, type, req, stream)."""
    if len(parts) == 0:
        raise MessageError("bad_message", "empty message: expected [header, payload...]")
    raw = _as_buffer(parts[0])
    if raw.nbytes > MAX_HEADER_BYTES:
        raise MessageError("too_large", f"header is {raw.nbytes} bytes; the limit is {MAX_HEADER_BYTES}")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_no_constants,
                            parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MessageError("bad_json", f"header is not UTF-8 JSON ({str(exc)[:200]})") from None
    if not isinstance(header, dict):
        raise MessageError("bad_json", f"header must be a JSON object, got {type(header).__name__}")
    if _bad_strings(header):
        # A \ud800-style escape of a lone surrogate is valid JSON but no UTF-8 text: nothing could echo it.
        req = header.get("req")
        raise MessageError("bad_json", "header holds a string that is not valid Unicode (an escaped lone "
                           "surrogate such as \\ud800)", {"req": req} if _is_int(req, 0, MAX_INT) else None)
    if "v" not in header:
        raise MessageError("bad_header", "header needs field 'v' (protocol version)", header)
    if not _is_int(header["v"], 0, 65535):
        raise MessageError("bad_header", f"v = {header['v']!r}: must be an integer", header)
    if header["v"] not in SUPPORTED_VERSIONS:
        raise MessageError("unsupported_version", f"version {header['v']} is not supported "
                           f"(supported: {list(SUPPORTED_VERSIONS)})", header)
    kind = header.get("type")
    if not isinstance(kind, str):
        raise MessageError("bad_header", "header needs a string field 'type'", header)
    if kind not in TYPES:
        raise MessageError("unknown_type", f"type {kind[:40]!r} is not one of {', '.join(TYPES)}", header)
    _int_field(header, "req", 0, MAX_INT, required=False)
    stream = header.get("stream", "")
    if not isinstance(stream, str) or len(stream) > MAX_STRING:
        raise MessageError("bad_header", f"stream must be a string of at most {MAX_STRING} characters",
                           header)
    return header


def decode(parts: Sequence[Any], *, max_bytes: int = DEFAULT_MAX_BYTES, max_side: int = MAX_SIDE,
           decoder: Decoder | None = None) -> Message:
    """Validate and decode one multipart message. Raises ``MessageError`` (with a ``code``) on any problem.

    ``parts``: the frames of the message without any routing envelope (bytes, memoryview or zmq.Frame).
    ``max_bytes``: the largest decoded payload (and encoded part) accepted; ``max_side``: the largest
    width or height. Raw payloads are returned as read-only zero-copy views on ``parts``. ``decoder``: an
    optional C decoder for PNG/JPEG pixels (see ``Decoder``); without it PNG is decoded here with zlib and
    numpy and JPEG with OpenCV.

    Checks run in a fixed order and the first that fails decides the error code (plugins/PROTOCOL.md 7.1):
    parts present, header size, JSON and its strings, ``v``, ``type``, ``req``, ``stream``, number of
    payloads, then per type ``index``, ``width``, ``height``, ``channels``, ``dtype``, ``pts``,
    ``time_base``, declared size, ``encoding``/``reply_encoding``, the image payload, ``mask_encoding`` and
    the mask payload.
    """
    header = parse_header(parts)
    kind = header["type"]
    n_payloads = len(parts) - 1
    if n_payloads not in _PAYLOADS[kind]:
        want = " or ".join(str(n) for n in _PAYLOADS[kind])
        raise MessageError("bad_message", f"{kind} message needs {want} payload part(s), got {n_payloads}",
                           header)
    if kind == "error":
        if not isinstance(header.get("code"), str) or not isinstance(header.get("message", ""), str):
            raise MessageError("bad_header", "error message needs string fields 'code' and 'message'", header)
        _int_field(header, "index", 0, MAX_INT, required=False)
        return Message(header)
    if kind == "hello":
        negotiate(header.get("versions", [header["v"]]), header)
        return Message(header)
    if kind == "bye":
        _int_field(header, "count", 0, MAX_INT, required=False)
        _bool_field(header, "discard")
        return Message(header)

    _int_field(header, "index", 0, MAX_INT)
    width = _int_field(header, "width", 1, max_side)
    height = _int_field(header, "height", 1, max_side)
    channels = _int_field(header, "channels", 1, 4)
    want_channels = 1 if kind == "mask" else 3
    if channels != want_channels:
        raise MessageError("bad_header", f"channels = {channels}: a {kind} has {want_channels}", header)
    dtype = header.get("dtype")
    if not isinstance(dtype, str):
        raise MessageError("bad_header", f"{kind} message needs a string field 'dtype'", header)
    if dtype not in DTYPES:
        raise MessageError("unsupported_dtype", f"dtype {dtype[:40]!r} is not supported (only uint8)", header)
    _int_field(header, "pts", -MAX_INT, MAX_INT, required=False)
    if "time_base" in header:
        tb = header["time_base"]
        if not (isinstance(tb, list) and len(tb) == 2 and _is_int(tb[0], 1, 2**31 - 1)
                and _is_int(tb[1], 1, 2**31 - 1)):
            raise MessageError("bad_header", f"time_base = {tb!r}: must be [numerator, denominator], "
                               "integers in [1, 2147483647]", header)
    if kind == "frame":
        _bool_field(header, "lookahead")
    if width * height * channels > max_bytes:
        raise MessageError("too_large", f"{width}x{height}x{channels} = {width * height * channels} bytes "
                           f"exceeds the limit of {max_bytes}", header)
    encoding = _encoding_field(header, "encoding")
    if kind == "frame" and "reply_encoding" in header:
        _encoding_field(header, "reply_encoding")
    first = _decode_payload(parts[1], encoding, height, width, channels, max_bytes, header, decoder=decoder)
    if kind == "mask":
        return Message(header, mask=first)
    mask = None
    if n_payloads == 2:
        mask_encoding = _encoding_field(header, "mask_encoding")
        mask = _decode_payload(parts[2], mask_encoding, height, width, 1, max_bytes, header, what="mask",
                               decoder=decoder)
    return Message(header, image=first, mask=mask)


def _encoding_field(header: dict, key: str) -> str:
    value = header.get(key, "raw")
    if not isinstance(value, str):
        raise MessageError("bad_header", f"{key} must be a string", header)
    if value not in ENCODINGS:
        raise MessageError("unsupported_encoding", f"{key} {value[:40]!r} is not one of "
                           f"{', '.join(ENCODINGS)}", header)
    return value


def _decode_payload(part, encoding: str, height: int, width: int, channels: int, max_bytes: int,
                    header: dict, what: str = "payload", decoder: Decoder | None = None) -> np.ndarray:
    buf = _as_buffer(part)
    expected = height * width * channels
    shape = (height, width) if channels == 1 else (height, width, channels)
    if buf.nbytes > max(max_bytes, expected):
        raise MessageError("too_large", f"{what} is {buf.nbytes} bytes; the limit is {max_bytes}", header)
    if encoding == "raw":
        if buf.nbytes != expected:
            raise MessageError("bad_payload", f"{what} is {buf.nbytes} bytes but {width}x{height}x{channels} "
                               f"uint8 needs {expected}", header)
        return np.frombuffer(buf, dtype=np.uint8).reshape(shape)
    try:
        if encoding == "png":
            array = decode_png(buf, max_bytes=max_bytes, expect=(height, width, channels), decoder=decoder)
        else:
            if channels != 3:
                raise MessageError("unsupported_encoding", "jpeg is for images only", header)
            size = jpeg_size(buf)
            if size != (height, width):
                raise MessageError("bad_payload", f"JPEG is {size[1]}x{size[0]} but the header says "
                                   f"{width}x{height}")
            array = decode_jpeg(buf, decoder=decoder)
    except MessageError as exc:
        raise MessageError(exc.code, f"{what}: {exc.detail}", header) from None
    if array.shape != shape:
        got = "x".join(str(s) for s in array.shape)
        raise MessageError("bad_payload", f"{what} decodes to {got} but the header says "
                           f"{'x'.join(str(s) for s in shape)} (HxW[xC])", header)
    return array


# ------------------------------------------------------------------------------------------ PNG via zlib


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def encode_png(array: np.ndarray, *, level: int = 3) -> bytes:
    """PNG bytes of an H x W uint8 (greyscale) or H x W x 3 uint8 (RGB) array; 8-bit, not interlaced."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ProtocolError(f"PNG encodes H x W or H x W x 3 uint8 arrays, got {array.shape} {array.dtype}")
    h, w = int(array.shape[0]), int(array.shape[1])
    if not h or not w:
        raise ProtocolError(f"PNG needs at least 1x1 pixels, got {h}x{w} (HxW)")
    channels = 1 if array.ndim == 2 else 3
    rows = np.ascontiguousarray(array).reshape(h, w * channels)
    # "Up" filter on every row (difference to the row above), filtered and compressed in strips of rows so
    # that a big frame costs one strip of extra memory, not a filtered copy of the whole picture.
    compressor = zlib.compressobj(level)
    pieces = []
    strip = max(1, (1 << 20) // (w * channels + 1))
    for y0 in range(0, h, strip):
        y1 = min(h, y0 + strip)
        filtered = np.empty((y1 - y0, w * channels + 1), dtype=np.uint8)
        filtered[:, 0] = 2
        if y0 == 0:
            filtered[0, 1:] = rows[0]
            np.subtract(rows[1:y1], rows[:y1 - 1], out=filtered[1:, 1:])
        else:
            np.subtract(rows[y0:y1], rows[y0 - 1:y1 - 1], out=filtered[:, 1:])
        pieces.append(compressor.compress(filtered))
    pieces.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", ihdr), _chunk(b"IDAT", b"".join(pieces)), _chunk(b"IEND", b"")))


def _scan_zlib(data: bytes, expected: int, row: int) -> np.ndarray:
    """Inflate ``data`` in 1 MiB pieces without keeping them: check that it inflates to exactly ``expected``
    bytes and ends there; return the first byte of every ``row`` bytes (the PNG filter bytes)."""
    inflater = zlib.decompressobj()
    filters = bytearray()
    total, pending, piece_max = 0, data, 1 << 20
    try:
        while True:
            piece = inflater.decompress(pending, piece_max)
            pending = inflater.unconsumed_tail
            filters += piece[(-total) % row::row]
            total += len(piece)
            if total > expected:
                raise MessageError("bad_payload", f"PNG data inflates to more than {expected} bytes")
            if not pending and len(piece) < piece_max:
                break
    except zlib.error as exc:
        raise MessageError("bad_payload", f"PNG data does not inflate ({exc})") from None
    if total != expected:
        raise MessageError("bad_payload", f"PNG data inflates to {total} bytes, expected {expected}")
    if not inflater.eof or inflater.unused_data:
        raise MessageError("bad_payload", "PNG zlib stream is incomplete or followed by extra data")
    return np.frombuffer(bytes(filters), dtype=np.uint8)


Decoder = Callable[[bytes, str, bool], np.ndarray]
"""``decoder(data, encoding, grey) -> array``: an optional C decoder for PNG/JPEG payloads (``streamfill
serve`` passes FFmpeg's, see ``streamfill.io.payload``). It is called only after the payload was validated
and its size checked; it returns H x W uint8 (``grey``) or H x W x 3 uint8 RGB and raises ``ValueError``
when the data does not decode."""


def decode_png(data: Any, *, max_bytes: int = DEFAULT_MAX_BYTES,
               expect: tuple[int, int, int] | None = None, decoder: Decoder | None = None) -> np.ndarray:
    """Decode an 8-bit, non-interlaced greyscale (H x W) or RGB (H x W x 3) PNG into a uint8 array.

    Any PNG filter type is accepted. Raises ``MessageError`` (``bad_payload``, ``too_large``,
    ``unsupported_encoding``) on anything else; the decompressed size is bounded by the IHDR dimensions,
    which must equal ``expect`` = (height, width, channels) when given (checked before inflating). The
    chunk CRCs, the zlib stream (complete, nothing after it) and every row's filter byte are checked here.

    Rows are unfiltered with numpy; filters 3 (Average) and 4 (Paeth) depend on the byte to their left
    and are sequential, so when a row uses them the picture goes to ``decoder`` (a C decoder) if given;
    without one they are unfiltered in pure Python (about 0.3 us per byte: fine for plugin-sized frames,
    which streamfill always sends with filter 2).
    """
    buf = bytes(_as_buffer(data))
    if not buf.startswith(_PNG_SIGNATURE):
        raise MessageError("bad_payload", "not a PNG (bad signature)")
    pos, ihdr, idat, chunks = len(_PNG_SIGNATURE), None, [], []
    while True:
        if pos + 8 > len(buf):
            raise MessageError("bad_payload", "PNG is truncated (no IEND chunk)")
        length, kind = struct.unpack(">I4s", buf[pos:pos + 8])
        end = pos + 8 + length
        if end + 4 > len(buf):
            raise MessageError("bad_payload", f"PNG chunk {kind!r} is truncated")
        body = buf[pos + 8:end]
        (crc,) = struct.unpack(">I", buf[end:end + 4])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise MessageError("bad_payload", f"PNG chunk {kind!r} has a bad CRC")
        if ihdr is None:
            if kind != b"IHDR" or length != 13:
                raise MessageError("bad_payload", "PNG does not start with an IHDR chunk")
            ihdr = struct.unpack(">IIBBBBB", body)
            chunks.append(buf[pos:end + 4])
        elif kind == b"IDAT":
            idat.append(body)
            chunks.append(buf[pos:end + 4])
        elif kind == b"IEND":
            chunks.append(buf[pos:end + 4])
            break
        elif kind[0:1].isupper() and kind != b"PLTE":
            raise MessageError("unsupported_encoding", f"PNG critical chunk {kind!r} is not supported")
        pos = end + 4
    width, height, depth, colour, compression, filter_method, interlace = ihdr
    if colour not in (0, 2) or depth != 8 or compression or filter_method or interlace:
        raise MessageError("unsupported_encoding", "only 8-bit non-interlaced greyscale or RGB PNGs are "
                           f"supported (got bit depth {depth}, colour type {colour}, interlace {interlace})")
    channels = 1 if colour == 0 else 3
    if expect is not None and (height, width, channels) != tuple(expect):
        raise MessageError("bad_payload", f"PNG is {width}x{height}x{channels} but the header says "
                           f"{expect[1]}x{expect[0]}x{expect[2]}")
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE) or width * height * channels > max_bytes:
        raise MessageError("too_large", f"PNG of {width}x{height}x{channels} exceeds the limits")
    stride = width * channels
    expected = height * (stride + 1)
    if decoder is not None:
        filters = _scan_zlib(b"".join(idat), expected, stride + 1)  # checks without holding the pixels
        if (filters > 4).any():
            raise MessageError("bad_payload", "PNG uses an unknown row filter type")
        if (filters >= 3).any():
            return _decode_with(decoder, b"".join((_PNG_SIGNATURE, *chunks)), "png", (height, width, channels))
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat), expected + 1)
        rest = inflater.decompress(inflater.unconsumed_tail, 1) if inflater.unconsumed_tail else b""
    except zlib.error as exc:
        raise MessageError("bad_payload", f"PNG data does not inflate ({exc})") from None
    if len(raw) != expected or rest:
        more = "+" if rest else ""
        raise MessageError("bad_payload", f"PNG data inflates to {len(raw)}{more} bytes, expected {expected}")
    if not inflater.eof or inflater.unused_data:
        raise MessageError("bad_payload", "PNG zlib stream is incomplete or followed by extra data")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    filters = rows[:, 0]
    if (filters > 4).any():
        raise MessageError("bad_payload", "PNG uses an unknown row filter type")
    out = np.empty((height, stride), dtype=np.uint8)
    if not filters.any():
        out[:] = rows[:, 1:]
    elif (filters == 2).all():
        np.cumsum(rows[:, 1:], axis=0, dtype=np.uint8, out=out)  # "Up" on every row: what streamfill writes
    else:
        prev = np.zeros(stride, dtype=np.uint8)
        for y in range(height):
            kind, line = int(filters[y]), rows[y, 1:]
            if kind == 0:
                out[y] = line
            elif kind == 1:
                out[y] = line.reshape(width, channels).cumsum(axis=0, dtype=np.uint8).reshape(stride)
            elif kind == 2:
                np.add(line, prev, out=out[y])
            else:
                out[y] = _unfilter_sequential(kind, line, prev, channels)
            prev = out[y]
    return out.reshape(height, width) if channels == 1 else out.reshape(height, width, 3)


def _decode_with(decoder: Decoder, data: bytes, encoding: str, shape: tuple[int, int, int]) -> np.ndarray:
    height, width, channels = shape
    try:
        array = decoder(data, encoding, channels == 1)
    except (ValueError, MemoryError) as exc:
        raise MessageError("bad_payload", f"{encoding} does not decode ({str(exc)[:200]})") from None
    want = (height, width) if channels == 1 else (height, width, 3)
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.shape != want:
        raise MessageError("bad_payload", f"{encoding} decodes to {getattr(array, 'shape', None)}, expected {want}")
    return array


def _unfilter_sequential(kind: int, line: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """PNG filters 3 (Average) and 4 (Paeth), which depend on the reconstructed byte to the left."""
    cur = bytearray(line.tobytes())
    up = prev.tobytes()
    for i in range(len(cur)):
        a = cur[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            cur[i] = (cur[i] + ((a + b) >> 1)) & 0xFF
        else:
            c = up[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[i] = (cur[i] + pred) & 0xFF
    return np.frombuffer(bytes(cur), dtype=np.uint8)


# ----------------------------------------------------------------------------------- JPEG (needs OpenCV)


def _cv2():
    # OpenCV is optional for this module: it is looked up only when a JPEG is encoded or decoded, so that
    # importing streamfill.protocol still pulls in nothing but numpy.
    try:
        return importlib.import_module("cv2")
    except ImportError:
        raise MessageError("unsupported_encoding", "jpeg needs OpenCV (cv2), not installed here") from None


def jpeg_available() -> bool:
    """Whether this process can encode/decode JPEG payloads (OpenCV importable)."""
    try:
        _cv2()
    except MessageError:
        return False
    return True


def encode_jpeg(image: np.ndarray, *, quality: int = 90) -> bytes:
    """Baseline JPEG bytes of an H x W x 3 uint8 RGB image (lossy)."""
    cv2 = _cv2()
    _check_image(image)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]),
                            [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ProtocolError("OpenCV could not encode the JPEG")
    return data.tobytes()


def jpeg_size(data: Any) -> tuple[int, int]:
    """(height, width) from a JPEG's frame header, read without decoding (guards against huge images)."""
    buf = bytes(_as_buffer(data))
    if not buf.startswith(b"\xff\xd8"):
        raise MessageError("bad_payload", "not a JPEG (no SOI marker)")
    pos = 2
    while pos + 4 <= len(buf):
        if buf[pos] != 0xFF:
            raise MessageError("bad_payload", "JPEG marker expected")
        marker = buf[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            pos += 2
            continue
        (length,) = struct.unpack(">H", buf[pos + 2:pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(buf):
                break
            height, width = struct.unpack(">HH", buf[pos + 5:pos + 9])
            return int(height), int(width)
        if marker == 0xDA or length < 2:
            break
        pos += 2 + length
    raise MessageError("bad_payload", "JPEG has no frame header")


MAX_JPEG_SCANS = 64


def decode_jpeg(data: Any, *, decoder: Decoder | None = None) -> np.ndarray:
    """Decode a JPEG into an H x W x 3 uint8 RGB array (with ``decoder`` when given, else OpenCV).

    A progressive JPEG with more than ``MAX_JPEG_SCANS`` scans is refused (``bad_payload``): each scan
    passes over the whole picture, so thousands of tiny scans would cost seconds of CPU per message."""
    view = _as_buffer(data)
    if bytes(view).count(b"\xff\xda") > MAX_JPEG_SCANS:  # SOS markers (0xFF is stuffed inside scan data)
        raise MessageError("bad_payload", f"JPEG has more than {MAX_JPEG_SCANS} scans")
    if decoder is not None:
        try:
            array = decoder(bytes(view), "jpeg", False)
        except (ValueError, MemoryError) as exc:
            raise MessageError("bad_payload", f"JPEG cannot be decoded ({str(exc)[:200]})") from None
        if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 3:
            raise MessageError("bad_payload", "JPEG cannot be decoded")
        return array
    cv2 = _cv2()
    array = np.frombuffer(view, dtype=np.uint8)
    image = cv2.imdecode(array, cv2.IMREAD_COLOR) if array.size else None
    if image is None or image.ndim != 3:
        raise MessageError("bad_payload", "JPEG cannot be decoded")
    return np.ascontiguousarray(image[:, :, ::-1])
