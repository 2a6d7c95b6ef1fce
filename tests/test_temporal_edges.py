"""Temporal completion never offers a colour interpolated from what is not valid: black beyond the frame's
edge (bilinear reads just outside it), never-seen memory pixels, or the occluder's colours inside the hole.
Each of these showed as dark or wrong pixels along a hole that touches the frame's edge or a memory edge."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest
from test_temporal import telea, texture

from streamfill.config import TemporalConfig
from streamfill.temporal import BackgroundMemory, TemporalCompletion
from streamfill.temporal.background import Placement
from streamfill.temporal.flow import Flow
from streamfill.temporal.ring import disc, misfits
from streamfill.types import Frame

H, W, PAD = 96, 160, 10


def _frame(image: np.ndarray, i: int) -> Frame:
    return Frame(image=image, pts=1000 + 40 * i, time_base=Fraction(1, 1000), index=i)


def _shifted(big: np.ndarray, dx: float, pad: int = PAD) -> np.ndarray:
    """The H x W view of ``big`` moved ``dx`` px to the right (sub-pixel: bilinear)."""
    m = np.array([[1, 0, pad + dx], [0, 1, pad]], np.float32)
    return cv2.warpAffine(big, m, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def test_memory_stores_no_black_from_beyond_the_frame_edge():
    """After a sub-pixel camera move, the reference's first column is read at x = -0.3: a nearest read calls
    it seen, a bilinear read with a black border stored 70 % of its colour (and on first sight in every
    sample, so the median was dark)."""
    mem = BackgroundMemory(samples=5, stride=1, shake=0.5)
    flat = np.full((H, W, 3), 200, np.uint8)
    hole = np.zeros((H, W), bool)
    hole[20:70, 0:30] = True                     # at the left edge: not seen in the first frame
    mem.observe(flat, hole)
    moved = np.array([[1, 0, -0.3], [0, 1, 0]], np.float32)
    for _ in range(5):
        mem._update(flat, np.zeros((H, W), bool), moved)
    view = mem.model(Placement(mem.epoch, None), 0, 0, W, H)
    seen = view.count > 0
    assert seen[20:70, 0].all()
    assert np.abs(view.colour[seen] - 200).max() < 1.0


@pytest.mark.parametrize("occluder", [(255, 0, 255), (0, 0, 0), (255, 255, 255)])
def test_fast_misfit_check_is_not_blinded_by_the_occluder(occluder):
    """``fast``'s cheap misfit check measured the ring's texture with a blur that took in the occluder's
    colours inside the hole: its threshold rose past any misfit, so the old background was pasted where a
    subject now stands. It must flag what the full check flags, whatever the occluder looks like."""
    hole = np.zeros((80, 80), bool)
    hole[25:55, 25:55] = True
    region = hole | (cv2.dilate(hole.astype(np.uint8), disc(6)) > 0)
    frame = np.full((80, 80, 3), 100, np.uint8)
    frame[hole] = occluder
    candidates = np.full((80, 80, 3), 145.0, np.float32)      # 45 levels off: a different thing was there
    cheap = misfits(frame, hole, region, region.copy(), candidates, cheap=True)
    full = misfits(frame, hole, region, region.copy(), candidates, cheap=False)
    assert full.sum() == hole.sum()
    assert cheap.sum() == hole.sum()


def test_previous_output_read_at_the_frame_edge_is_not_darkened():
    """``quality`` reads the previous output bilinearly along the flow; at the left edge of a pan the read
    falls up to half a pixel beyond the frame and took in black (60 levels dark in the first column)."""
    big = texture(H + 2 * 40, W + 2 * 40 + 40, 5)
    images = [_shifted(big, -1.3 * i, pad=40) for i in range(2)]
    mask = np.zeros((H, W), np.uint8)
    mask[40:70, 0:16] = 255
    tc = TemporalCompletion(telea().fill, TemporalConfig(mode="quality", background=False))
    tc._flow = Flow("medium")
    buf = [tc._ingest(_frame(images[i], i), mask) for i in range(2)]
    buf[0].out = np.full((H, W, 3), 200, np.uint8)
    ys, xs = np.mgrid[30:80, 0:24].astype(np.float32)
    _, ok, filtered = tc._from_previous(buf, 1, xs, ys)
    inside = ok & (mask[30:80, 0:24] > 0)
    assert inside.sum() > 100
    assert filtered[inside].min() >= 199


@pytest.mark.parametrize("mode", ["fast", "quality"])
def test_no_dark_column_where_the_hole_touches_the_frame_edge(mode):
    """A camera drifting 0.4 px per frame; from frame 10 two holes touch the left and right edges. The copies
    through the camera placements read the frame edge bilinearly with a black border (the right column came
    out 15 levels dark) and the memory stored such reads (the left column 26 levels dark)."""
    big = texture(H + 2 * PAD, W + 2 * PAD, 3)
    outs, truths, holes = [], [], []
    tc = TemporalCompletion(telea().fill, TemporalConfig(mode=mode, window=3))
    pairs = []
    for i in range(24):
        truth = _shifted(big, 0.0 if i == 0 else 0.4)
        mask = np.zeros((H, W), np.uint8)
        if i < 10:
            cv2.circle(mask, (80, 48), 12, 255, -1)
        else:
            mask[30:60, 0:20] = 255
            mask[30:60, W - 20:W] = 255
        shown = truth.copy()
        shown[mask > 0] = (255, 0, 255)
        pairs.append((_frame(shown, i), mask))
        truths.append(truth)
        holes.append(mask > 0)
    outs = [o.image for o in tc.stream(iter(pairs))]
    err = np.stack([outs[i].astype(np.float32) - truths[i] for i in range(10, 24)])
    hole = np.stack(holes[10:])
    assert abs(err[:, 30:60, 0].mean()) < 3 and abs(err[:, 30:60, W - 1].mean()) < 3
    assert (np.abs(err).max(axis=-1)[hole] > 10).sum() == 0
