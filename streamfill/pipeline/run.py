"""The streaming loop: source frames -> mask source -> completion stage -> sink, in order, one at a time
(the completion stage may hold a bounded window)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from streamfill.types import Completion, Frame, FrameSink, MaskSource


@dataclass
class RunStats:
    frames: int = 0


def run(frames: Iterable[Frame], masks: MaskSource, completion: Completion, sink: FrameSink,
        progress: Callable[[RunStats], None] | None = None) -> RunStats:
    """Fill every frame's hole and write every frame, in order, with its source pts. Returns counts."""
    stats = RunStats()
    for out in completion.stream(masks.pair(frames)):
        sink.write(out)
        stats.frames += 1
        if progress is not None:
            progress(stats)
    return stats
