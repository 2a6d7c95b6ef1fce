"""fast: the nearer of before/after taken alone (a one-sided copy) needs a camera that stays put around the frame:
at the start of a pan (or just after the background memory restarted) the frame is still within ``MOVING_PX``
of the memory's reference, but the window around it is not, and there the nearer side shows the background
where a subject moving against it was hidden."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
from test_temporal_layers import picture

from streamfill.config import TemporalConfig
from streamfill.temporal import TemporalCompletion
from streamfill.temporal import complete as tc
from streamfill.temporal import hole as hole_fill
from streamfill.types import Frame

H, W, N = 160, 256, 14
LIMIT = hole_fill.NEAR_MOVING_PX  # the shipped setting


def clip(pan: int):
    """The camera pans ``pan`` px a frame; a textured square moves 5 px a frame to the right; a disc hides its
    middle in frames 0-3 only (so the first frames have copies after them, none before)."""
    back = picture(3, H, W + N * pan + 8)
    square = picture(5, 56, 56, cell=6)
    for i in range(N):
        image = back[:, pan * i:pan * i + W].copy()
        image[50:106, 80 + 5 * i:136 + 5 * i] = square
        hole = np.zeros((H, W), np.uint8)
        if i < 4:
            cv2.circle(hole, (108, 78), 18, 255, -1)
        shown = image.copy()
        shown[hole > 0] = (255, 0, 255)
        yield Frame(image=shown, pts=i, time_base=Fraction(1, 25), index=i), hole


def copies(monkeypatch, pan: int, limit: float, mode: str = "fast") -> int:
    monkeypatch.setattr(hole_fill, "NEAR_MOVING_PX", limit)
    comp = TemporalCompletion(lambda img, mask: np.where(mask[..., None] > 0, np.uint8(128), img),
                              TemporalConfig(mode=mode))
    out = list(comp.stream(clip(pan)))
    assert len(out) == N
    return comp.stats.pixels["bracket"]


def test_no_one_sided_copies_at_the_start_of_a_pan(monkeypatch):
    # frames 0 and 1 are within MOVING_PX (1.5 px) of the memory's reference, the window around them is not
    assert copies(monkeypatch, pan=1, limit=0.0) > 1000   # the rule off: they took one-sided copies
    assert copies(monkeypatch, pan=1, limit=LIMIT) == 0


def test_quality_keeps_them_for_its_arbitration(monkeypatch):
    # quality weighs copies against the flow on the ring (and the probe): there the rule cost 0.17 dB on average
    assert copies(monkeypatch, pan=1, limit=LIMIT, mode="quality") == copies(monkeypatch, pan=1, limit=0.0,
                                                                             mode="quality") > 1000


def test_a_fixed_camera_keeps_its_one_sided_copies(monkeypatch):
    assert copies(monkeypatch, pan=0, limit=LIMIT) > 1000


def test_window_moves_compares_every_frame_of_the_window_with_the_same_reference():
    from streamfill.temporal.background import Placement

    def slot(dx: float, epoch: int = 1):
        warp = None if dx == 0 else np.float32([[1, 0, dx], [0, 1, 0]])
        return tc._Slot(frame=None, hole=None, small=None, hole_small=None, placement=Placement(epoch, warp))

    buf = [slot(0.0), slot(1.0), slot(2.0), slot(3.5)]
    assert hole_fill._window_moves(buf, 0, 64, 48, 3.0)            # 3.5 px from frame 0
    assert not hole_fill._window_moves(buf, 1, 64, 48, 3.0)        # at most 2.5 px from frame 1
    buf[3] = slot(3.5, epoch=2)                             # another reference: not comparable
    assert not hole_fill._window_moves(buf, 0, 64, 48, 3.0)


def drifting(n: int = 10):
    """(frame, hole, truth): a still camera on a picture whose every pixel drifts by its own few levels a frame
    (a slowly changing texture: the nearest frame's sight is the best copy); a 20 px wide hole moves 2 px a frame
    to the right, so each frame's hole uncovers, just at the edge of its own hole, a strip the next frame hides."""
    rng = np.random.default_rng(7)
    base = picture(3, 48, 96).astype(np.float32)
    drift = rng.uniform(-6, 6, base.shape).astype(np.float32)
    for i in range(n):
        truth = np.clip(base + 40 + i * drift, 0, 255).astype(np.uint8)
        hole = np.zeros((48, 96), np.uint8)
        hole[14:34, 30 + 2 * i:50 + 2 * i] = 255
        shown = truth.copy()
        shown[hole > 0] = 0
        yield Frame(image=shown, pts=i, time_base=Fraction(1, 25), index=i), hole, truth


def test_a_margin_lets_copies_come_from_right_up_to_another_frame_s_hole():
    # the column of frame i's hole that frame i - 1 showed right beside its own hole: with a safety margin in
    # the hole (the masks were grown), frame i - 1's sight is read there; without one a pixel is kept off the
    # edge, and that column comes from further away (more drift)
    def strip_error(margin: int) -> float:
        data = list(drifting())
        comp = TemporalCompletion(telea_fill, TemporalConfig(mode="fast", window=4), feather=0, margin=margin)
        outs = list(comp.stream((frame, hole) for frame, hole, _ in data))
        errors = [np.abs(out.image[14:34, 48 + 2 * i].astype(np.float32)
                         - truth[14:34, 48 + 2 * i]).mean()
                  for i, (out, (_, _, truth)) in enumerate(zip(outs, data, strict=True)) if i > 0]
        return float(np.mean(errors))

    near, kept_off = strip_error(margin=2), strip_error(margin=0)
    # one frame of drift is 3 levels on average, two frames 6 (the offset seam takes a little out of both)
    assert near < 3.0 and kept_off > 1.5 * near


def telea_fill(image, mask):
    return cv2.inpaint(image, (mask > 0).astype(np.uint8), 3, cv2.INPAINT_TELEA)


def shaking(n: int = 8):
    """(frame, hole, truth): a camera shaking by 2.5 px and 1.5 px (a finely textured picture, each frame
    sampled from a 4x finer one, as a sensor would); a disc moves across it."""
    fine = picture(11, 4 * 120, 4 * 160, cell=12)
    for i in range(n):
        dx, dy = (10, 6) if i % 2 else (0, 0)   # quarter pixels: half a pixel off either way
        view = fine[dy:dy + 4 * 112, dx:dx + 4 * 150]
        truth = cv2.resize(view, (150, 112), interpolation=cv2.INTER_AREA)
        hole = np.zeros((112, 150), np.uint8)
        cv2.circle(hole, (40 + 9 * i, 56), 16, 255, -1)
        shown = truth.copy()
        shown[hole > 0] = 0
        yield Frame(image=shown, pts=i, time_base=Fraction(1, 25), index=i), hole, truth


def test_a_shaking_camera_s_copies_are_read_sharp(monkeypatch):
    # the copies land between pixels of the frames they come from: bilinear reads blurred the fine texture
    from streamfill.temporal import sources

    def hole_error(sharp_px: float) -> float:
        monkeypatch.setattr(sources, "SHARP_PX", sharp_px)
        data = list(shaking())
        comp = TemporalCompletion(telea_fill, TemporalConfig(mode="fast", window=4), feather=0, margin=2)
        outs = list(comp.stream((frame, hole) for frame, hole, _ in data))
        assert comp.stats.pixels["bracket"] > 0.9 * sum(int((h > 0).sum()) for _, h, _ in data[1:-1])
        return float(np.mean([np.abs(out.image[h > 0].astype(np.float32) - truth[h > 0]).mean()
                              for out, (_, h, truth) in zip(outs, data, strict=True)]))

    sharp, blurred = hole_error(sources.SHARP_PX), hole_error(1e9)
    assert sharp < 0.85 * blurred   # (measured 3.41 against 4.30 levels)
