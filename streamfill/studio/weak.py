"""Which tracked frames to flag on the studio's timeline as weak (worth a look, or a correction keyframe).

Three sources, one interface: ``weak_frames(areas, keyframes, confidence=None, lost=None)``. When the
tracker reports a per-frame confidence in [0, 1] (``confidence``), a frame is weak below ``min_confidence``;
when it reports the stretches where it lost the object (``lost``: (first, last) frame pairs, as
``MasksResult.lost``), those frames are weak. Otherwise the signal is derived from the masks themselves: a
tracked object whose area collapses (or balloons) against the area it had at the nearest keyframe, or jumps
from one frame to the next, has usually been lost or has leaked into the background.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_CONFIDENCE = 0.5
SHRINK = 0.4  # weak when the area falls below 40 % of the nearest keyframe's ...
GROW = 2.5  # ... or grows beyond 2.5 times it
JUMP = 0.5  # or changes by more than half from the previous frame


def weak_frames(areas: Sequence[int], keyframes: Sequence[int], confidence: Sequence[float] | None = None,
                lost: Sequence[tuple[int, int]] | None = None, *,
                min_confidence: float = MIN_CONFIDENCE) -> tuple[list[int], str]:
    """Indices (into ``areas``) of weak frames and the name of the signal used ("confidence", "lost" or
    "area").

    ``areas``: mask pixels per frame; ``keyframes``: frame indices the user drew; ``confidence``: optional
    per-frame tracker confidence (same length as ``areas``); ``lost``: optional stretches the tracker reports
    as lost (None = the tracker reports none, an empty list = it lost nothing). Keyframes are never weak."""
    keys = sorted(k for k in set(keyframes) if 0 <= k < len(areas))
    keyset = set(keys)
    if confidence is not None and len(confidence) == len(areas):
        return [i for i, c in enumerate(confidence) if i not in keyset and c < min_confidence], "confidence"
    if lost is not None:
        frames = {i for a, b in lost for i in range(max(0, int(a)), min(len(areas), int(b) + 1))}
        return sorted(frames - keyset), "lost"
    weak = []
    for i, area in enumerate(areas):
        if i in keyset or not keys:
            continue
        ref = areas[min(keys, key=lambda k: abs(k - i))]
        if ref <= 0:
            continue
        bad = area < SHRINK * ref or area > GROW * ref
        if not bad and i > 0:
            prev = areas[i - 1]
            bad = prev > 0 and abs(area - prev) > JUMP * prev
        if bad:
            weak.append(i)
    return weak, "area"


def spans(frames: Sequence[int]) -> list[tuple[int, int]]:
    """Runs of consecutive frame indices as (first, last) pairs, for drawing on the timeline."""
    out: list[tuple[int, int]] = []
    for f in sorted(frames):
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out
