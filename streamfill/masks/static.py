"""Masks given as files: one image for the whole clip, or one mask per frame (a mask video or a folder).

Both are MaskSources: ``pair(frames)`` yields (frame, mask) with the mask thresholded and dilated, and fails
with MaskError when a mask's size or the number of masks does not match the video.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import numpy as np

from streamfill.config import MaskConfig
from streamfill.errors import MaskError
from streamfill.masks.ops import binarize, dilate
from streamfill.types import Frame, Mask

_log = logging.getLogger(__name__)
_noted: set[str] = set()  # masks already said to mark nothing (once per process: a chunked run makes several)


def prepare(mask: np.ndarray, config: MaskConfig) -> Mask:
    """Threshold then dilate a raw mask (H x W or H x W x C, any values) into H x W uint8 {0, 255}."""
    return dilate(binarize(mask, config.threshold), config.dilate)


def note_if_empty(brightest: int, threshold: int, name: str) -> None:
    """Say so (once per mask) when a mask whose brightest pixel is ``brightest`` marks nothing: all black, or
    no pixel above the threshold (a mask painted in dark grey, or with values 0/1)."""
    if brightest > threshold or name in _noted:
        return
    _noted.add(name)
    if brightest == 0:
        _log.warning("note: mask %s is all black: nothing is removed (white marks what to remove)", name)
    else:
        _log.warning("note: mask %s has no pixel above %d (its brightest is %d): nothing is removed; white marks "
                     "what to remove ([mask] threshold sets the level)", name, threshold, brightest)


def _check_size(mask: np.ndarray, frame: Frame, name: str) -> None:
    if mask.shape[:2] != frame.image.shape[:2]:
        h, w = mask.shape[:2]
        raise MaskError(
            f"mask {name} is {w}x{h} but the video is {frame.width}x{frame.height}; masks must match the frame size"
        )


class StaticMask:
    """The same mask for every frame. ``mask`` is H x W (any values; > threshold = hole)."""

    def __init__(self, mask: np.ndarray, config: MaskConfig | None = None, name: str = "image") -> None:
        self.name = name
        config = config or MaskConfig()
        self._brightest, self._threshold = int(mask.max()) if mask.size else 0, config.threshold
        self.mask = prepare(mask, config)

    def pair(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]:
        for i, frame in enumerate(frames):
            _check_size(self.mask, frame, self.name)
            if i == 0 and not self.mask.any():  # once the size fits (a wrong size is the one thing to say then)
                note_if_empty(self._brightest, self._threshold, self.name)
            yield frame, self.mask


class PerFrameMasks:
    """Mask ``i`` belongs to source frame ``i`` (frames keep their source index when a range is trimmed).

    ``masks`` is an iterator of raw H x W masks in frame order; ``count`` is how many there are when known
    up front (a folder), else None (a video, counted as it is read).
    """

    def __init__(self, masks: Iterable[np.ndarray], config: MaskConfig | None = None, *, name: str = "masks",
                 count: int | None = None) -> None:
        self.name = name
        self.count = count
        self.config = config or MaskConfig()
        self._masks = iter(masks)

    def pair(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]:
        read = 0  # masks consumed so far; the next one is mask number `read`, for source frame `read + offset`
        offset = 0
        pending = None  # a mask read ahead to find where the sequence starts
        last_index = -1
        first_index = None
        for frame in frames:
            if first_index is None:
                first_index = frame.index
                offset, pending, read = self._start(frame)
            last_index = frame.index
            raw = None
            while read + offset <= frame.index:
                if pending is not None:
                    raw, pending = pending, None
                else:
                    try:
                        raw = next(self._masks)
                    except StopIteration:
                        total = self.count if self.count is not None else read
                        raise MaskError(f"{self.name} has {total} masks but the video has at least "
                                        f"{frame.index + 1} frames") from None
                read += 1
            current = getattr(self._masks, "current", None)
            _check_size(raw, frame, f"{self.name}/{current}" if current else self.name)
            yield frame, prepare(raw, self.config)
        if first_index == 0 and next(self._masks, None) is not None:  # whole clip: counts must agree exactly
            total = self.count if self.count is not None else f"more than {last_index + 1}"
            raise MaskError(f"{self.name} has {total} masks but the video has {last_index + 1} frames")

    def _start(self, frame: Frame) -> tuple[int, np.ndarray | None, int]:
        """Where the masks start, for a range whose first frame is ``frame``: (offset, a mask read ahead or
        None, masks already skipped); mask number ``n`` belongs to source frame ``n + offset``. Masks written by
        ``streamfill masks`` for a range start there (a folder lists its frames; a mask video keeps their
        times, and those before the range are skipped); any others start at the clip's first frame."""
        listed = getattr(self._masks, "first_index", None)
        if listed is not None:
            if listed > frame.index:
                raise MaskError(f"{self.name} starts at frame {listed}, after the first frame read ({frame.index}): "
                                f"masks written for a range need the same --start")
            return listed, None, 0
        if not hasattr(self._masks, "first_time"):
            return 0, None, 0
        here = float(frame.pts * frame.time_base)
        first = next(self._masks, None)
        if first is None or not self._masks.first_time or self._masks.first_time <= 0:
            return 0, first, 0   # a mask video that starts at 0: one mask per frame from the clip's first
        skipped = 0
        while first is not None and self._masks.time < here - 2e-3:   # Matroska keeps milliseconds
            first, skipped = next(self._masks, None), skipped + 1
        if first is None or abs(self._masks.time - here) >= 2e-3:
            raise MaskError(f"{self.name} starts at {self._masks.first_time:.3f} s: no mask for the first frame "
                            f"read ({here:.3f} s); masks written for a range need the same --start")
        return frame.index - skipped, first, skipped
