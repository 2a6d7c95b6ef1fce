"""Quiet C decoding of PNG and JPEG payloads (FFmpeg through PyAV) for ``streamfill serve``.

``streamfill.protocol`` validates a payload first (structure, declared size; numpy only, so plugins stay
light); the server then hands the pixel work to FFmpeg's decoders, which are fast for every PNG filter type
and, unlike libjpeg inside OpenCV, never print warnings about corrupt data to stderr (FFmpeg's log is off
unless PyAV's logging is enabled).
"""

from __future__ import annotations

from typing import Any

import av
import numpy as np

_CODECS = {"png": "png", "jpeg": "mjpeg"}


class PayloadDecodeError(ValueError):
    """The payload could not be decoded (the caller turns it into a protocol error)."""


def decode_still(data: Any, encoding: str, *, grey: bool = False) -> np.ndarray:
    """Decode one PNG or JPEG picture: H x W x 3 uint8 RGB, or H x W uint8 with ``grey``.

    ``data``: the encoded bytes (bytes-like). ``encoding``: ``png`` or ``jpeg``. Raises PayloadDecodeError
    when FFmpeg cannot decode it. The caller must bound the picture's size before calling (the protocol
    checks the header's width and height against the payload's own before any pixel is decoded)."""
    try:
        codec = av.CodecContext.create(_CODECS[encoding], "r")
    except KeyError:
        raise PayloadDecodeError(f"no decoder for {encoding!r}") from None
    codec.thread_count = 1
    try:
        frames = list(codec.decode(av.Packet(bytes(data))))
        frames += codec.decode(None)
    except (av.FFmpegError, ValueError, MemoryError) as exc:
        raise PayloadDecodeError(f"{encoding} does not decode ({exc})") from None
    if len(frames) != 1:
        raise PayloadDecodeError(f"{encoding} decodes to {len(frames)} pictures, expected 1")
    try:
        return frames[0].to_ndarray(format="gray" if grey else "rgb24")
    except (av.FFmpegError, ValueError) as exc:
        raise PayloadDecodeError(f"{encoding} picture cannot be converted ({exc})") from None
