"""Data contracts shared by every layer (DESIGN.md, "The data flow").

- ``Frame.image``: H x W x 3 uint8, **RGB**, C-contiguous.
- ``Frame.pts`` / ``Frame.time_base``: the source timestamps, never resampled; ``pts * time_base`` is seconds.
- ``Frame.index``: 0-based position of the frame in the source stream (not in a trimmed range).
- A mask is H x W uint8 with **255 = pixel to fill** and 0 = keep, the same H x W as its frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol, runtime_checkable

import numpy as np

Mask = np.ndarray
"""H x W uint8, 255 = fill, 0 = keep."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture with its source timestamp. ``image`` is H x W x 3 uint8 RGB."""

    image: np.ndarray
    pts: int
    time_base: Fraction
    index: int

    @property
    def time(self) -> Fraction:
        """Presentation time in seconds (exact)."""
        return self.pts * self.time_base

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def with_image(self, image: np.ndarray) -> Frame:
        """The same timestamp and index with another picture (the sink sees the source pts)."""
        return Frame(image=image, pts=self.pts, time_base=self.time_base, index=self.index)


@runtime_checkable
class Inpainter(Protocol):
    """Fills holes in a batch of same-sized crops.

    ``images``: N x H x W x 3 uint8 RGB. ``masks``: N x H x W uint8, 255 = hole.
    ``guidance``: optional N x H x W uint8 sketch/edge map (255 = edge), used by engines that support it.
    Returns N x H x W x 3 uint8 RGB; only pixels inside the hole are used by the caller.
    H and W are multiples of 8 when the pipeline calls it (a working size from the crop buckets).
    """

    name: str

    def inpaint(
        self, images: np.ndarray, masks: np.ndarray, guidance: np.ndarray | None = None
    ) -> np.ndarray: ...


@runtime_checkable
class MaskSource(Protocol):
    """Pairs each frame of a stream with its mask, in order, one pair per frame.

    Implementations may look ahead (bounded) but must yield exactly one mask per input frame, or raise
    ``MaskError``. Masks are H x W uint8, 255 = fill, same size as the frame.
    """

    def pair(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]: ...


@runtime_checkable
class Completion(Protocol):
    """The completion stage: turns (frame, mask) pairs into filled frames, one out per pair, in order.

    Per-frame completion (``pipeline.complete.Completer``) answers at once; temporal completion may hold a
    bounded window of frames before answering. Output frames keep the input pts/time_base/index.
    """

    def stream(self, pairs: Iterable[tuple[Frame, Mask]]) -> Iterator[Frame]: ...


@runtime_checkable
class FrameSink(Protocol):
    """Takes output frames in order. Used as a context manager; ``close`` finalises (or discards on error)."""

    def write(self, frame: Frame) -> None: ...

    def __enter__(self) -> FrameSink: ...

    def __exit__(self, exc_type, exc, tb) -> bool | None: ...
