"""--mask-auto motion: background subtraction masks on a fixed-camera synthetic clip."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from streamfill.config import TrackConfig
from streamfill.errors import MaskError
from streamfill.masks import cutouts
from streamfill.masks.motion import MotionMasks
from streamfill.types import Frame, MaskSource

H, W = 120, 160


def _clip(n: int, blob: int = 24, speed: int = 3):
    """A still textured background with sensor noise and a textured square moving right."""
    rng = np.random.default_rng(0)
    bg = cutouts.textured_image(H, W, 2)
    obj = cutouts.textured_image(blob, blob, 5)[..., ::-1]
    frames, truth = [], []
    for t in range(n):
        img = np.clip(bg.astype(np.int16) + rng.integers(-3, 4, bg.shape), 0, 255).astype(np.uint8)
        x = 10 + speed * t
        img[50 : 50 + blob, x : x + blob] = obj
        gt = np.zeros((H, W), bool)
        gt[50 : 50 + blob, x : x + blob] = True
        frames.append(Frame(img, pts=t, time_base=Fraction(1, 25), index=t))
        truth.append(gt)
    return frames, truth


def test_motion_masks_cover_the_mover_and_not_the_background():
    frames, truth = _clip(30)
    source = MotionMasks(TrackConfig(motion_warmup=10, motion_min_area=40, motion_hold=2, motion_dilate=2))
    assert isinstance(source, MaskSource)
    out = list(source.pair(frames))
    assert [f.index for f, _ in out] == list(range(30))
    covered, spill = [], []
    for (_, m), gt in zip(out[3:], truth[3:], strict=True):
        assert m.shape == (H, W) and m.dtype == np.uint8
        on = m > 127
        covered.append(on[gt].mean())
        spill.append(on[~gt].mean())
    assert np.mean(covered) >= 0.9, covered
    assert np.mean(spill) <= 0.08, spill


def test_first_frames_are_masked_too():
    # The warm-up frames are learnt as background with their movers taken out: learning them as they were
    # left the first frame's mask empty and the next ones thin (this test's frame 0 had no mask at all).
    frames, truth = _clip(30, speed=2)
    out = list(MotionMasks(TrackConfig(motion_warmup=10, motion_min_area=40, motion_dilate=0)).pair(frames))
    covered = [(m > 127)[gt].mean() for (_, m), gt in zip(out[:5], truth[:5], strict=True)]
    assert min(covered) >= 0.8, covered


def test_min_area_drops_small_movers_and_hold_keeps_masks_briefly():
    frames, _ = _clip(20, blob=4)
    out = list(MotionMasks(TrackConfig(motion_warmup=5, motion_min_area=200)).pair(frames))
    assert all(not m.any() for _, m in out)
    # hold: once the object is gone, its mask persists for `motion_hold` frames, then clears
    frames, _ = _clip(16)
    bg = cutouts.textured_image(H, W, 2)
    gone = [Frame(bg, pts=16 + i, time_base=Fraction(1, 25), index=16 + i) for i in range(8)]
    cfg = TrackConfig(motion_warmup=5, motion_min_area=40, motion_hold=3, motion_dilate=0)
    out = list(MotionMasks(cfg).pair(frames + gone))
    assert out[15][1].any() and out[17][1].any()
    assert not out[23][1].any()


def test_motion_rejects_size_changes():
    frames, _ = _clip(4)
    bad = Frame(np.zeros((10, 10, 3), np.uint8), pts=9, time_base=Fraction(1, 25), index=9)
    with pytest.raises(MaskError, match="10x10"):
        list(MotionMasks(TrackConfig(motion_warmup=2)).pair(frames + [bad]))
