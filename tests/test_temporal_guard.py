"""Evidence against propagated pixels that the ring alone does not show: fast's drift guard (flow chains that
travel far through flow interpolated across a hole whose border moves in several ways) and quality's age
matching of copies (the ring's copies taken from frames as far away as the hole's)."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from streamfill.config import TemporalConfig
from streamfill.temporal import TemporalCompletion
from streamfill.temporal import complete as tc
from streamfill.temporal import hole as hole_fill
from streamfill.temporal.background import BackgroundMemory
from streamfill.temporal.flow import Flow, border_spread
from streamfill.types import Frame

H, W = 96, 160


def picture(seed: int, h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((h // 6 + 2, w // 6 + 2, 3)).astype(np.float32)
    return (cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def test_border_spread_is_small_where_the_border_moves_as_one():
    hole = np.zeros((48, 80), bool)
    hole[16:32, 30:50] = True
    err = np.zeros(hole.shape, np.float32)
    ys, xs = np.mgrid[0:48, 0:80].astype(np.float32)
    pan = np.dstack([np.full(hole.shape, 2.5, np.float32), np.full(hole.shape, -1.0, np.float32)])
    zoom = np.dstack([0.05 * (xs - 40), 0.05 * (ys - 24)]).astype(np.float32)
    split = np.zeros((48, 80, 2), np.float32)
    split[:, 40:, 1] = -3.0                               # the right side rises, the left stands still
    assert border_spread(pan, err, hole, 1.0) < 0.01
    assert border_spread(zoom, err, hole, 1.0) < 0.01
    assert border_spread(split, err, hole, 1.0) > 0.5       # a step the affine fit cannot follow
    assert border_spread(split, err + 5.0, hole, 1.0) == 0.0   # no consistent flow around: nothing to say


def _clip(n: int, split: bool):
    """A still left half and a right half that rises 8 px a frame (``split``), or the whole picture panning
    8 px a frame; a disc occluder on the boundary, drifting slowly so its pixels are hidden for several
    frames."""
    big = picture(11, H + 8 * n + 8, W + 8 * n + 8)
    for i in range(n):
        if split:
            image = big[:H, :W].copy()
            image[:, W // 2:] = big[8 * i:8 * i + H, W // 2:W]
        else:
            image = big[:H, 8 * i:8 * i + W].copy()
        hole = np.zeros((H, W), np.uint8)
        cv2.circle(hole, (W // 2 + i // 2, H // 2), 16, 255, -1)
        yield Frame(image=image, pts=i, time_base=Fraction(1, 25), index=i), hole


def _fast(split: bool, monkeypatch, drift_max: float | None = None):
    monkeypatch.setattr(tc, "DRIFT_TOL", 0.0)             # the synthetic step is small: no noise allowance
    if drift_max is not None:
        monkeypatch.setattr(hole_fill, "DRIFT_MAX", drift_max)

    def fill(img, mask):
        return np.where(mask[..., None] > 0, np.uint8(100), img)

    comp = TemporalCompletion(fill, TemporalConfig(mode="fast", window=6))
    out = list(comp.stream(_clip(10, split)))
    assert len(out) == 10
    return comp.stats.pixels


def test_fast_refuses_chains_through_a_hole_whose_sides_move_apart(monkeypatch):
    """The flow inside the hole is interpolated from a border that moves in two ways: chains that travel far
    through it are refused (and not replaced by the previous output, which comes along the same flow)."""
    guarded = _fast(True, monkeypatch)
    assert guarded.get("drifted", 0) > 0
    assert guarded["engine"] > 0
    off = _fast(True, monkeypatch, drift_max=0.0)
    assert off.get("drifted", 0) == 0
    assert off["flow"] > guarded["flow"]


def test_fast_keeps_chains_through_a_pan(monkeypatch):
    """Where the border moves as one (a pan), the interpolated flow is right and nothing is refused."""
    assert _fast(False, monkeypatch).get("drifted", 0) == 0


def test_copies_can_be_asked_to_come_from_far_frames():
    """The probe's age matching for copies: the bracket reports how far the nearer side's copy came from
    (only where a single side shows the pixel: a copy bracketed in time is not aged) and can be told to skip
    frames nearer than a floor."""
    comp = TemporalCompletion(lambda img, mask: img, TemporalConfig(mode="quality"))
    comp._flow = Flow("medium")
    comp._memory = BackgroundMemory(5, 2, 0.03, gate_moving=True)
    image = picture(5, 64, 96)
    buf = []
    for i in range(10):
        hole = np.zeros((64, 96), np.uint8)
        if i <= 4:                                        # hidden from the start of the clip to frame 4
            cv2.circle(hole, (48, 32), 9, 255, -1)
        buf.append(comp._ingest(Frame(image=image, pts=i, time_base=Fraction(1, 25), index=i), hole))
    ys, xs = np.mgrid[0:64, 0:96].astype(np.float32)
    hole = buf[2].hole
    dist = np.zeros((64, 96), np.float32)
    comp._bracket(buf, 2, xs, ys, None, dist_out=dist)
    assert (dist[hole] == 3).all()                        # only frame 5 and later show it: one side, 3 away
    assert np.isinf(dist[~buf[0].unsafe.astype(bool)]).all()   # seen on both sides: left out
    far = np.zeros((64, 96), np.float32)
    mean, same, near, found = comp._bracket(buf, 2, xs, ys, None, min_dist=np.full((64, 96), 5, np.float32),
                                            dist_out=far)
    assert found[hole].all()
    assert (far[hole] == 5).all()                         # frames 3 and 4 away were skipped
