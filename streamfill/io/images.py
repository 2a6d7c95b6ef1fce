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


def _rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display-matrix rotation (degrees counter-clockwise, as FFmpeg reports it)."""
    turns = (round(rotation / 90) % 4) if rotation else 0
    if turns == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=turns))


# EXIF orientations that mirror the picture, as the shown picture is made from the stored one (numpy index
# operations on H x W x C); FFmpeg's display rotation reports them as a plain turn, which is wrong for these.
_MIRRORED = {
    2: lambda a: a[:, ::-1],                         # mirrored left-right
    4: lambda a: a[::-1],                            # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, *range(2, a.ndim)),  # mirrored along the main diagonal
    7: lambda a: a[::-1, ::-1].transpose(1, 0, *range(2, a.ndim)),  # along the other diagonal
}


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
            turn = getattr(vf, "rotation", 0) or 0
    except (av.FFmpegError, OSError, StopIteration, ValueError, IndexError) as exc:
        # FFmpeg's errors carry an errno that means nothing to a user ("[Errno 1094995529] Invalid data ...")
        reason = (getattr(exc, "strerror", None) if isinstance(exc, av.FFmpegError) else None) or str(exc)
        raise DecodeError(f"cannot read image {path}: {reason or 'no picture'}") from None
    mirror = _MIRRORED.get(_jpeg_orientation(path))
    image = np.ascontiguousarray(mirror(image)) if mirror else _rotate(image, turn)
    if grey:
        return mask_grey(image[..., :3].max(axis=2), image[..., 3])
    return image


def picture_format(path: str | os.PathLike) -> tuple[bool, int]:
    """(has an alpha channel, bits per channel) of an image file's pixel format, as far as its header says
    ((False, 8) when it cannot tell)."""
    try:
        with av.open(str(path), mode="r") as c:
            fmt = c.streams.video[0].codec_context.format
            components = fmt.components if fmt is not None else ()
    except (av.FFmpegError, OSError, ValueError, IndexError):
        return False, 8
    return any(c.is_alpha for c in components), max((c.bits for c in components), default=8)


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
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)), path.name


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
