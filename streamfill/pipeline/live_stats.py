"""What a live run counts (:class:`LiveStats`) and its latency histogram (:class:`LatencyHistogram`), kept by
:class:`streamfill.pipeline.live.LiveEngine` and reported by ``streamfill live`` (``--stats-json``, the control
socket)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


# ---------------------------------------------------------------------------------------------- latency
class LatencyHistogram:
    """Latencies in logarithmic bins (1 % wide, 0.1 ms to 1000 s): constant memory however long the run.

    Percentiles are exact to the bin width (1 %); ``max``, ``mean`` and ``count`` are exact."""

    LO = 1e-4
    RATIO = 1.01

    def __init__(self) -> None:
        self.nbins = int(math.ceil(math.log(1e3 / self.LO) / math.log(self.RATIO))) + 2
        self.counts = np.zeros(self.nbins, np.int64)
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        s = max(0.0, float(seconds))
        b = 0 if s <= self.LO else min(self.nbins - 1, 1 + int(math.log(s / self.LO) / math.log(self.RATIO)))
        self.counts[b] += 1
        self.count += 1
        self.total += s
        self.max = max(self.max, s)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) in seconds: the upper edge of the bin holding it (None if empty)."""
        if self.count == 0:
            return None
        rank = max(1, int(math.ceil(q / 100.0 * self.count)))
        b = int(np.searchsorted(np.cumsum(self.counts), rank))
        upper = self.LO * self.RATIO ** b
        return min(upper, self.max)

    def summary_ms(self) -> dict[str, float | None]:
        """{p50, p95, p99, mean, max} in milliseconds (None when no frame was measured)."""
        def ms(v):
            return None if v is None else round(v * 1000.0, 2)
        return {"p50": ms(self.percentile(50)), "p95": ms(self.percentile(95)), "p99": ms(self.percentile(99)),
                "mean": ms(self.total / self.count if self.count else None), "max": ms(self.max if self.count
                                                                                     else None)}


# ------------------------------------------------------------------------------------------------ stats
@dataclass
class LiveStats:
    """Counters of a live run. ``frames_in == frames_out + dropped`` at the end of a run (and at every report,
    counting frames still in flight as ``in_flight``: ``frames_in == frames_out + dropped + in_flight``).

    ``dropped`` = ``dropped_capture`` (the mask stage fell behind) + ``dropped_masks`` (completion fell
    behind) + ``dropped_at_stop`` (still queued when the run was stopped). ``stage_ms``: mean busy time per
    frame of each stage (masks, complete, output), in ms: the slowest stage sets the output rate. Rates are
    frames per second over the whole run; ``interval_*`` cover the last report interval. Latency is
    capture-to-output, in ms: from the moment a frame left the source (for a ``--realtime`` file: its release
    time) to the moment every sink had taken it.
    """

    seconds: float = 0.0
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    dropped_capture: int = 0
    dropped_masks: int = 0
    dropped_at_stop: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    stage_ms: dict[str, float | None] = field(default_factory=dict)
    input_fps: float = 0.0
    output_fps: float = 0.0
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    interval_seconds: float = 0.0
    interval_input_fps: float = 0.0
    interval_output_fps: float = 0.0
    interval_dropped: int = 0
    interval_latency_ms: dict[str, float | None] = field(default_factory=dict)
    stopped_by: str = ""
    final: bool = False
    # Mask tracking (when the masks come from a tracker): ``confidence`` of the latest mask (0-1, None when
    # not tracking), ``lost_since`` (first frame of the lost stretch going on now, else None), ``lost``
    # (finished lost stretches [first, last], the latest 20), ``lost_frames`` (frames in lost stretches).
    track: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
