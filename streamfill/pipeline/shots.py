"""Shot boundaries as hard borders for a completion stage: at each scene cut the running completion is
finished and a fresh one starts, so nothing of one shot (window frames, background memory, the previous
output carried along the flow) is used to fill the next.

This is what makes a chunked run (``streamfill.distributed``) whose chunk starts at a scene cut identical to
one pass: both start the shot from the same empty state. Cuts are found with ``masks.scenecut`` on the
source frames (``[track] cut_threshold``), exactly once per frame and in order, so the same frames give
the same cuts whatever came before the previous frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from streamfill.masks.scenecut import SceneCutDetector
from streamfill.types import Completion, Frame, Mask


class ShotSplit:
    """A ``Completion`` that runs ``factory()`` afresh for every shot. ``frames_filled`` sums the shots';
    ``cuts`` lists the frame indices that started a new shot."""

    def __init__(self, factory: Callable[[], Completion], threshold: float = 0.4) -> None:
        self.factory = factory
        self.threshold = threshold
        self.cuts: list[int] = []
        self._filled = 0
        self._current: Completion | None = None

    @property
    def frames_filled(self) -> int:
        current = getattr(self._current, "frames_filled", 0) if self._current is not None else 0
        return self._filled + current

    def stream(self, pairs: Iterable[tuple[Frame, Mask]]) -> Iterator[Frame]:
        detector = SceneCutDetector(self.threshold)
        source = iter(pairs)
        carry: list[tuple[Frame, Mask]] = []  # the first pair of the next shot, already seen by the detector

        def shot() -> Iterator[tuple[Frame, Mask]]:
            if carry:
                yield carry.pop()
            for frame, mask in source:
                if detector.update(frame.image):
                    self.cuts.append(frame.index)
                    carry.append((frame, mask))
                    return
                yield frame, mask

        while True:
            self._current = self.factory()
            yield from self._current.stream(shot())
            self._filled += self._current.frames_filled
            self._current = None
            if not carry:
                return
