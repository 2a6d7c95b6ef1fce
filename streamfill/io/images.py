"""Still pictures through PyAV: read as they are shown (a JPEG's EXIF orientation, mirrored ones included),
masks and sketches as grey (``mask_grey``), what a file's header says about its pixels, and whether a file is a
picture at all."""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import av
import numpy as np

from streamfill.errors import DecodeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


# How a stored picture is shown, as EXIF codes it (1-8), the shown picture made from the stored one (numpy index
# operations on H x W x C). FFmpeg's display matrix says the same for video; its rotation alone cannot tell a
# mirrored picture from a turned one.
_ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],                         # mirrored left-right
    3: lambda a: a[::-1, ::-1],                      # turned half round
    4: lambda a: a[::-1],                            # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),                   # mirrored along the main diagonal
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],          # turned a quarter clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),       # mirrored along the other diagonal
    8: lambda a: a.swapaxes(0, 1)[::-1],             # turned a quarter counter-clockwise
}
SWAPS_SIDES = (5, 6, 7, 8)  # orientations that show a W x H picture as H x W
_WORDS = {2: "mirrored left-right", 3: "turned 180 deg", 4: "mirrored top-bottom", 5: "mirrored and turned",
          6: "turned 90 deg clockwise", 7: "mirrored and turned", 8: "turned 90 deg counter-clockwise"}


def orient(image: np.ndarray, orientation: int | None) -> np.ndarray:
    """``image`` as it is shown, for an EXIF-coded ``orientation`` (1 or None: as stored)."""
    if not orientation or orientation == 1:
        return image
    return np.ascontiguousarray(_ORIENT[orientation](image))


def orientation_words(orientation: int | None) -> str:
    """'turned 90 deg clockwise', 'mirrored left-right', ... ('' for a picture shown as stored)."""
    return _WORDS.get(orientation or 1, "")


def frame_orientation(vf) -> int | None:
    """How a decoded frame is shown (an EXIF code, see ``_ORIENT``), from its display matrix; None when it has
    none, and 1 for a matrix that is no quarter turn or mirror (a 45 degree turn: shown as stored)."""
    try:
        container = vf.side_data
        # PyAV 18.1.0 iterates the side data itself, 18.1.1 its types (a mapping)
        found = (item if hasattr(item, "type") else container[item] for item in container)
        matrices = [bytes(sd) for sd in found if getattr(sd.type, "name", "") == "DISPLAYMATRIX"]
    except (ValueError, KeyError, AttributeError, TypeError):
        # side data PyAV cannot name (a JPEG's EXIF): the rotation it reports is all there is
        return {0: None, 90: 8, -90: 6, 270: 6, 180: 3, -180: 3}.get(round(getattr(vf, "rotation", 0) or 0), 1)
    if not matrices or len(matrices[0]) < 20:
        return None
    m = np.frombuffer(matrices[0][:20], np.int32)  # FFmpeg's 3 x 3 display matrix, native order, 16.16 fixed
    a, b, c, d = (int(np.sign(v)) for v in (m[0], m[1], m[3], m[4]))
    if b == c == 0 and a and d:  # (x, y) -> (a x, d y): mirrors only
        return {(1, 1): 1, (-1, 1): 2, (-1, -1): 3, (1, -1): 4}[a, d]
    if a == d == 0 and b and c:  # (x, y) -> (c y, b x): the sides swap
        return {(1, 1): 5, (1, -1): 6, (-1, -1): 7, (-1, 1): 8}[b, c]
    return 1


def _jpeg_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation tag (1-8) of a JPEG file, 1 when it has none or is not a JPEG."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return 1
    if head[:2] != b"\xff\xd8":
        return 1
    at = 2
    while at + 4 <= len(head) and head[at] == 0xFF:
        marker, size = head[at + 1], struct.unpack(">H", head[at + 2:at + 4])[0]
        if marker == 0xDA:  # start of scan: no metadata after it
            break
        block = head[at + 4:at + 2 + size]
        if marker == 0xE1 and block[:6] == b"Exif\x00\x00":
            return _tiff_orientation(block[6:])
        at += 2 + size
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of a TIFF header's first directory (the body of an EXIF block), 1 when absent or damaged."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    try:
        if order is None:
            return 1
        ifd = struct.unpack(order + "I", tiff[4:8])[0]
        (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
        for k in range(count):
            entry = tiff[ifd + 2 + 12 * k:ifd + 14 + 12 * k]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag == 0x0112 and kind == 3:
                value = struct.unpack(order + "H", entry[8:10])[0]
                return value if 1 <= value <= 8 else 1
    except struct.error:
        pass
    return 1


def picture_orientation(path: str | os.PathLike, vf) -> int:
    """How the picture in ``path`` (whose first decoded frame is ``vf``) is shown: a JPEG's EXIF orientation,
    which FFmpeg reports as a plain turn even where it mirrors, else the frame's display matrix."""
    exif = _jpeg_orientation(path)
    return exif if exif != 1 else (frame_orientation(vf) or 1)


def read_image(path: str | os.PathLike, *, grey: bool = False) -> np.ndarray:
    """Read one image file: H x W x 3 uint8 RGB (or H x W uint8 with ``grey=True``: a mask or sketch, see
    ``mask_grey``), turned and mirrored as it is shown (a JPEG's EXIF orientation). Raises DecodeError when
    unreadable."""
    if os.path.isdir(str(path)):
        raise DecodeError(f"cannot read image {path}: it is a folder")
    try:
        with av.open(str(path), mode="r") as c:
            vf = next(c.decode(video=0))
            image = vf.to_ndarray(format="rgba" if grey else "rgb24")
            shown = picture_orientation(path, vf)
    except (av.FFmpegError, OSError, StopIteration, ValueError, IndexError) as exc:
        # FFmpeg's errors carry an errno that means nothing to a user ("[Errno 1094995529] Invalid data ...")
        reason = (getattr(exc, "strerror", None) if isinstance(exc, av.FFmpegError) else None) or str(exc)
        raise DecodeError(f"cannot read image {path}: {reason or 'no picture'}") from None
    image = orient(image, shown)
    if grey:
        return mask_grey(image[..., :3].max(axis=2), image[..., 3])
    return image


def picture_format(path: str | os.PathLike) -> tuple[bool, int]:
    """(has transparent pixels, bits per channel) of an image file ((False, 8) when it cannot tell). An alpha
    channel that is opaque everywhere (as OpenCV and many editors save RGBA) is no transparency."""
    try:
        with av.open(str(path), mode="r") as c:
            fmt = c.streams.video[0].codec_context.format
            components = fmt.components if fmt is not None else ()
            alpha = any(k.is_alpha for k in components)
            if alpha:
                alpha = int(next(c.decode(video=0)).to_ndarray(format="rgba")[..., 3].min()) < 255
    except (av.FFmpegError, OSError, ValueError, IndexError, StopIteration):
        return False, 8
    return alpha, max((k.bits for k in components), default=8)


def mask_grey(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """A mask or sketch picture as H x W uint8 from its brightest colour channel (any colour counts, so red
    strokes do) and its alpha channel, if any. A picture with transparent pixels is a layer painted on
    transparency: what is painted (opaque) is what counts, whatever its colour, unless its opaque part is itself
    a black-and-white mask (then both must say so)."""
    if alpha is None or alpha.min() == 255:
        return np.ascontiguousarray(colour)
    painted = colour[alpha > 127]
    if painted.size and painted.min() <= 127 < painted.max():
        return np.ascontiguousarray(np.minimum(colour, alpha))
    return np.ascontiguousarray(alpha)


def _natural_key(path: Path) -> tuple:
    """Sort key for names with numbers in them, the numbers compared as numbers: frame2 before frame10."""
    return tuple(int(part) if part.isdecimal() else part for part in re.split(r"(\d+)", path.name)), path.name


def picture_files(folder: str | os.PathLike) -> list[Path]:
    """The pictures in ``folder`` in frame order: sorted by name, numbers in names compared as numbers (frame1,
    frame2, ..., frame10: unpadded numbering is common, and a plain sort put frame10 before frame2)."""
    return sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)


def numbering_gap(files: list[Path]) -> tuple[str, str] | None:
    """The first two neighbours whose frame numbers jump (frame5, frame10), when every name is the same text
    around one number; None when the numbers run on, or the names are not numbered that way."""
    parts = [re.fullmatch(r"(\D*)(\d+)(\D*)", p.stem) for p in files]
    if len(files) < 2 or not all(parts) or len({(m[1], m[3]) for m in parts}) != 1:
        return None
    numbers = [int(m[2]) for m in parts]
    for k in range(1, len(files)):
        if numbers[k] != numbers[k - 1] + 1:
            return files[k - 1].name, files[k].name
    return None


def is_image_file(path: str | os.PathLike) -> bool:
    """A still picture: a file with an image suffix, or one whose contents FFmpeg reads as a single picture
    (``.jfif``, no suffix)."""
    p = Path(path)
    if not p.is_file():
        return False
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with av.open(str(p), mode="r") as c:
            return c.format.name == "image2" or c.format.name.endswith("_pipe")
    except (av.FFmpegError, OSError, ValueError):
        return False
