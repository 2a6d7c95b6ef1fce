"""Clips that are sequences: a folder of pictures read as a clip (``ImageSequenceReader``), per-frame masks from
a folder or a mask video (``MaskSequence``), and ``open_video``, which picks a folder's reader or a video's.

Readers yield ``Frame`` objects (H x W x 3 uint8 RGB, pts and time base, 0-based index), one at a time, and are
context managers, as ``decode.VideoReader``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from streamfill.errors import DecodeError, InputError
from streamfill.io.decode import VideoInfo, VideoReader, exact_seconds, note
from streamfill.io.images import numbering_gap, picture_files, picture_format, read_image
from streamfill.types import Frame

FPS_RANGE = (0.001, 1_000_000)  # frames per second of an image sequence (--fps)


class ImageSequenceReader:
    """Decodes a folder of PNG/JPG images, in name order (numbers as numbers), as a clip at ``fps`` frames per
    second.

    pts = index, time_base = 1/fps. All images must have the same size.
    """

    def __init__(self, folder: str | os.PathLike, fps: Fraction | float | int, *, start=None, end=None) -> None:
        self.folder = Path(folder)
        # beyond this range the time base overflows (1e308) or the .mp4 trailer fails after the run (1e-5)
        if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            raise InputError(f"--fps {float(fps):g}: a frame rate from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g} is needed")
        self.fps = Fraction(fps).limit_denominator(1001 * 1000)
        self._start, self._end = start, end
        self.files: list[Path] = []
        self.info: VideoInfo | None = None
        self.frames_decoded = 0
        self.notes: list[str] = []

    def open(self) -> ImageSequenceReader:
        if not self.folder.is_dir():
            raise InputError(f"input not found: {self.folder}")
        self.files = picture_files(self.folder)
        if not self.files:
            raise DecodeError(f"{self.folder} holds no PNG/JPG images")
        gap = numbering_gap(self.files)
        if gap:
            self._note(f"{self.folder}: the numbering jumps from {gap[0]} to {gap[1]}; the pictures are read as "
                       f"consecutive frames at {float(self.fps):g} fps, with no frame for the missing numbers")
        first = read_image(self.files[0])
        h, w = first.shape[:2]
        tb = 1 / self.fps
        alpha, bits = picture_format(self.files[0])  # said once by the caller, as for a video (8-bit RGB out)
        self.info = VideoInfo(
            path=str(self.folder), format="image2", codec=self.files[0].suffix.lstrip(".").lower(),
            width=w, height=h, fps=self.fps, time_base=tb, frame_count=len(self.files),
            duration=float(len(self.files) / self.fps), rotation=0, pix_fmt="rgb48le" if bits > 8 else "rgb24",
            alpha=alpha,
        )
        return self

    def close(self) -> None:
        pass

    def _note(self, message: str) -> None:
        note(self.notes, message)

    def __enter__(self) -> ImageSequenceReader:
        return self.open() if self.info is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        if self.info is None:
            self.open()
        tb = self.info.time_base
        for i, path in enumerate(self.files):
            t = i * tb
            if self._start is not None and t < exact_seconds(self._start):
                continue
            if self._end is not None and t >= exact_seconds(self._end):
                return
            image = read_image(path)
            if image.shape[:2] != (self.info.height, self.info.width):
                raise DecodeError(
                    f"{path.name} is {image.shape[1]}x{image.shape[0]} but the sequence is "
                    f"{self.info.width}x{self.info.height}"
                )
            self.frames_decoded += 1
            yield Frame(image=image, pts=i, time_base=tb, index=i)


def open_video(path: str | os.PathLike, *, fps: float | Fraction | None = None, threads: int = 0,
               start: float | None = None, end: float | None = None, salvage: bool = False):
    """Open a video file, URL, device or (with ``fps``) a folder of images. Returns an unopened reader; use
    it as a context manager: ``with open_video(p) as r: info = r.info; for frame in r: ...``."""
    if os.path.isdir(str(path)):
        if fps is None:
            raise InputError(f"{path} is a folder: pass --fps to read it as an image sequence")
        return ImageSequenceReader(path, fps, start=start, end=end)
    return VideoReader(path, threads=threads, start=start, end=end, salvage=salvage)


class MaskSequence:
    """Per-frame masks of a mask video or a folder of images (in name order, numbers as numbers): iterating
    gives H x W uint8 (max over colour channels). Where they start: ``first_index``, the source frame the first mask
    belongs to when the folder says so (``streamfill masks -o DIR/`` lists each file's source frame in
    timestamps.csv), else None; ``first_time``, the first mask's time in seconds (a video's, once it is read;
    a mask video written by ``streamfill masks --start`` keeps the source frames' times)."""

    def __init__(self, path: str | os.PathLike) -> None:
        p = Path(path)
        self.first_index: int | None = None
        self.first_time: float | None = None
        self.time: float | None = None  # the last mask's time (a video)
        self.count: int | None = None
        self.current: str | None = None  # the last mask read, for messages: its file (a folder)
        self._reader = None
        if p.is_dir():
            files = picture_files(p)
            if not files:
                raise DecodeError(f"mask folder {p} holds no PNG/JPG images")
            self.count = len(files)
            self.first_index = _listed_first_index(p / "timestamps.csv", files[0].name)
            self._it = self._files(files)
        else:
            self._reader = VideoReader(p).open()
            self._it = iter(self._reader)

    def _files(self, files: list[Path]) -> Iterator[np.ndarray]:
        for f in files:
            self.current = f.name
            yield read_image(f, grey=True)

    def __iter__(self) -> MaskSequence:
        return self

    def __next__(self) -> np.ndarray:
        try:
            item = next(self._it)
        except StopIteration:
            self.close()
            raise
        if self._reader is None:
            return item
        self.time = float(item.pts * item.time_base)
        if self.first_time is None:
            self.first_time = self.time
        return item.image.max(axis=2)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def _listed_first_index(csv_path: Path, first_file: str) -> int | None:
    """The source frame index timestamps.csv gives for ``first_file`` (None without a matching listing)."""
    try:
        with open(csv_path) as fh:
            for row in csv.DictReader(fh):
                if row.get("file") == first_file:
                    return int(row["index"])
    except (OSError, ValueError, KeyError):
        return None
    return None


def read_grey_sequence(path: str | os.PathLike) -> tuple[MaskSequence, int | None]:
    """Per-frame masks of a video file or a folder of images: (``MaskSequence``, count); count is None for a
    video (known once read). Raises InputError/DecodeError when the path is missing, empty or unreadable."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"mask not found: {p}")
    masks = MaskSequence(p)
    return masks, masks.count
