"""pipeline.feed.Feeder: a pull-style completion driven one pair at a time (serve's temporal streams)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from streamfill.pipeline.feed import Feeder
from streamfill.types import Frame


def _pair(i):
    return Frame(np.full((2, 2, 3), i, np.uint8), i * 10, Fraction(1, 100), i), np.zeros((2, 2), np.uint8)


class Windowed:
    """Yields frame i once frame i + ahead has been pulled, the rest at the end; fails on frame ``fail``."""

    def __init__(self, ahead=2, fail=None):
        self.ahead, self.fail, self.computed = ahead, fail, []

    def stream(self, pairs):
        held = []
        for frame, _ in pairs:
            if frame.index == self.fail:
                raise ValueError(f"bad frame {frame.index}")
            held.append(frame)
            while len(held) > self.ahead:
                self.computed.append(held[0].index)
                yield held.pop(0)
        for frame in held:
            self.computed.append(frame.index)
            yield frame


def test_push_returns_what_the_window_released_and_finish_the_rest():
    feeder = Feeder(Windowed(ahead=2).stream)
    got = [[f.index for f in feeder.push(*_pair(i))] for i in range(5)]
    assert got == [[], [], [0], [1], [2]]
    rest = feeder.finish()
    assert [(f.index, f.pts) for f in rest] == [(3, 30), (4, 40)]
    assert feeder.join(5) and feeder.done


def test_a_failure_is_raised_in_the_caller_and_ends_the_feeder():
    feeder = Feeder(Windowed(ahead=1, fail=2).stream)
    feeder.push(*_pair(0))
    assert [f.index for f in feeder.push(*_pair(1))] == [0]
    with pytest.raises(ValueError, match="bad frame 2"):
        feeder.push(*_pair(2))
    assert feeder.join(5) and feeder.done
    with pytest.raises(ValueError):
        feeder.push(*_pair(3))


def test_abort_stops_without_computing_the_held_frames():
    completion = Windowed(ahead=3)
    feeder = Feeder(completion.stream)
    for i in range(4):
        feeder.push(*_pair(i))
    feeder.abort()
    assert feeder.join(5) and feeder.done
    assert completion.computed == [0]  # frames 1-3 were held, never completed
