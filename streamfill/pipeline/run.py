"""The streaming loop: frames paired with masks -> completion -> sink, one frame at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from streamfill.pipeline.complete import Completer
from streamfill.types import Frame, FrameSink, MaskSource


@dataclass
class RunStats:
    frames: int = 0
    filled: int = 0
    passed_through: int = 0
    crops: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)


def run(frames: Iterable[Frame], masks: MaskSource, completer: Completer, sink: FrameSink,
        progress: Callable[[RunStats], None] | None = None) -> RunStats:
    """Fill every frame's hole and write every frame, in order, with its source pts. Returns counts."""
    stats = RunStats()
    for frame, mask in masks.pair(frames):
        out = completer.fill(frame.image, mask)
        if out is frame.image:
            stats.passed_through += 1
        else:
            stats.filled += 1
        sink.write(frame.with_image(out))
        stats.frames += 1
        if progress is not None:
            progress(stats)
    stats.crops = completer.crops_filled
    return stats
