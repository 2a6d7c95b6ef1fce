"""Objects the tracker lost for geometric reasons: one entering through the frame's edge (its entering part was
read as background beyond the edge), thin ones (a pole, a thin stroke: erased at the default working
scale), and a plain small one over a moving texture (the flow followed the texture)."""

from __future__ import annotations

import warnings
from fractions import Fraction

import cv2
import numpy as np
import pytest

from streamfill.masks.track import FlowTracker, Keyframe
from streamfill.types import Frame

H, W = 240, 320


def _background(extra: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (H + extra, W + extra, 3), dtype=np.uint8), (0, 0), 3)
    return (bg // 2 + 60).astype(np.uint8)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return float((a & b).sum() / max(1, (a | b).sum()))


def _track(frames, truth) -> tuple[FlowTracker, list[np.ndarray]]:
    tracker = FlowTracker([Keyframe(0, mask=truth[0])], dilate=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tracker, [m for _, m in tracker.pair(frames)]


@pytest.mark.parametrize("start, speed", [(-60, 2), (60, 2), (20, -2)])
def test_an_object_entering_through_the_frame_edge_is_followed_whole(start, speed):
    """A 90 px textured object 60 px outside the left edge at the keyframe moves in at 2 px per frame: the mask
    stayed at the part first seen (IoU 0.34 at frame 29). Controls: inside the frame, and leaving it."""
    bg = _background(0)
    rng = np.random.default_rng(2)
    obj = cv2.GaussianBlur(rng.integers(0, 255, (90, 90, 3), dtype=np.uint8), (0, 0), 1.5)
    obj[..., 0] = 230
    frames, truth = [], []
    for t in range(30):
        image, mask = bg.copy(), np.zeros((H, W), np.uint8)
        x = start + speed * t
        x0, x1 = max(0, x), min(W, x + 90)
        if x1 > x0:
            image[70:160, x0:x1] = obj[:, x0 - x:x1 - x]
            mask[70:160, x0:x1] = 255
        frames.append(Frame(image=image, pts=t, time_base=Fraction(1, 25), index=t))
        truth.append(mask)
    _, masks = _track(frames, truth)
    ious = [_iou(m, t) for m, t in zip(masks, truth, strict=True)]
    assert min(ious) > 0.9, [round(v, 2) for v in ious]


@pytest.mark.parametrize("width", [3, 5])
def test_a_thin_object_is_tracked_not_erased(width):
    """A bar 3-5 px wide and 160 px tall: at the default working scale (0.5) it was 1.5-2.5 working px wide,
    the mask's clean-up erased it on the first tracked frame and the whole run was reported lost."""
    bg = _background(40)[20:20 + H, 20:20 + W]
    frames, truth = [], []
    for t in range(8):
        image, mask = bg.copy(), np.zeros((H, W), np.uint8)
        mask[40:200, 100 + t:100 + t + width] = 255
        image[mask > 0] = (255, 20, 20)
        frames.append(Frame(image=image, pts=t, time_base=Fraction(1, 25), index=t))
        truth.append(mask)
    tracker, masks = _track(frames, truth)
    assert tracker.lost == []
    assert min(_iou(m, t) for m, t in zip(masks, truth, strict=True)) > 0.8


def _grass(seed: int, h: int, w: int) -> np.ndarray:
    """Grey blades of grass (short slanted strokes): a texture the flow follows."""
    rng = np.random.default_rng(seed)
    grey = np.full((h, w), 120, np.uint8)
    for _ in range(h * w // 40):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        tip = (x + int(rng.integers(-3, 4)), y - int(rng.integers(6, 14)))
        cv2.line(grey, (x, y), tip, int(rng.integers(60, 200)), 1)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


@pytest.mark.parametrize("seed", range(6))
def test_a_plain_small_object_follows_its_picture_not_the_textured_background(seed):
    """A flat orange 23 px disc moving up 3.2 px a frame over grey grass that pans down 3 px a frame: its grey
    picture has no texture for the alignment, the flow fitted on it followed the grass, and the mask slid off
    (before the object's picture refereed the flow: seed 2 was lost from frame 21, mean IoU 0.37)."""
    grass = _grass(seed, H + 150, W)
    frames, truth = [], []
    for t in range(45):
        image = grass[150 - 3 * t:150 - 3 * t + H].copy()
        mask = np.zeros((H, W), np.uint8)
        cv2.circle(mask, (160, round(190 - 3.2 * t)), 11, 255, -1)
        image[mask > 0] = (235, 140, 40)
        frames.append(Frame(image=image, pts=t, time_base=Fraction(1, 25), index=t))
        truth.append(mask)
    tracker, masks = _track(frames, truth)
    ious = [_iou(m, t) for m, t in zip(masks, truth, strict=True)]
    assert tracker.lost == []
    assert np.mean(ious) > 0.9 and min(ious) > 0.6, [round(v, 2) for v in ious]
