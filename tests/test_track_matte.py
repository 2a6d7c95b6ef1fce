"""The yielded outline snapped to the picture's local two-colour alpha (streamfill/masks/matte.py)."""

import cv2
import numpy as np

from streamfill.config import TrackConfig
from streamfill.masks import matte, propagate
from streamfill.masks.matte import snap_outline
from streamfill.masks.ops import disk

H = W = 64


def _disc(radius: float, inside, outside, texture: bool = False, blur: float = 0.8, cx: float = 31.3, cy: float = 32.6):
    """A disc drawn with its true coverage (8x supersampled) and blurred as a lens or codec would: the
    picture and the truth (coverage above one half)."""
    s = 8
    yy, xx = np.mgrid[0:H * s, 0:W * s]
    cover = ((((xx + 0.5) / s - cx) ** 2 + ((yy + 0.5) / s - cy) ** 2) < radius**2).astype(np.float32)
    alpha = cv2.resize(cover, (W, H), interpolation=cv2.INTER_AREA)
    fg = np.empty((H, W, 3), np.float32)
    fg[:] = inside
    if texture:  # bright stripes 2 px wide across the object
        fg[:, (np.arange(W) // 2) % 2 == 0] = (230, 230, 230)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * np.float32(outside)
    image = cv2.GaussianBlur(image, (0, 0), blur)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), alpha > 0.5


def _soft(radius: float, cx: float = 31.3, cy: float = 32.6) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return ((((xx + 0.5) - cx) ** 2 + ((yy + 0.5) - cy) ** 2) < radius**2).astype(np.float32)


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_an_outline_a_pixel_off_either_way_comes_back_to_the_edge():
    image, truth = _disc(9.0, (240, 140, 20), (40, 60, 200))
    for radius in (8.0, 10.0):  # a pixel too small, a pixel too large
        soft = _soft(radius)
        before = _iou(soft > 0.5, truth)
        after = _iou(snap_outline(soft, image) > 0.5, truth)
        assert before < 0.85
        assert after > max(0.9, before + 0.1), (radius, before, after)


def test_an_outline_on_the_edge_stays_there():
    image, truth = _disc(9.0, (240, 140, 20), (40, 60, 200))
    out = snap_outline(truth.astype(np.float32), image)
    assert _iou(out > 0.5, truth) > 0.98


def test_colours_that_do_not_decide_leave_the_outline_alone():
    soft = _soft(10.0)
    near, _ = _disc(9.0, (120, 120, 120), (100, 110, 130))  # |F - B| under the contrast floor
    assert np.array_equal(snap_outline(soft, near), soft)


def test_a_textured_object_is_not_cut_down_to_its_stripes(monkeypatch):
    """A dark object with bright stripes on a dark ground: the bright stripes are not the object's one colour,
    and taking them for it would give the dark edge to the background."""
    image, truth = _disc(9.0, (20, 20, 20), (25, 25, 25), texture=True, blur=0.5)
    soft = truth.astype(np.float32)
    assert _iou(snap_outline(soft, image) > 0.5, truth) > 0.95
    monkeypatch.setattr(matte, "_MAX_SPREAD", 1e9)  # the guard is what holds it
    assert _iou(snap_outline(soft, image) > 0.5, truth) < 0.9


def test_an_edge_colour_off_the_line_between_the_two_sides_is_not_read_as_a_blend(monkeypatch):
    """An object with a dark rim (a third colour, not a mix of its inside and the ground): the rim is not a
    blend of the two, so the alpha read along their line (about 0.3 here) says nothing about it."""
    image, truth = _disc(9.0, (240, 140, 20), (40, 60, 200), blur=1e-4)
    t8 = truth.astype(np.uint8)
    image[(t8 - cv2.erode(t8, disk(1))).astype(bool)] = (0, 0, 0)
    soft = truth.astype(np.float32)
    assert _iou(snap_outline(soft, image) > 0.5, truth) > 0.98
    monkeypatch.setattr(matte, "_MAX_OFF_LINE", 1e9)  # the guard is what holds it
    assert _iou(snap_outline(soft, image) > 0.5, truth) < 0.9


def test_only_the_outline_s_neighbourhood_changes_and_the_input_is_kept():
    image, _ = _disc(9.0, (240, 140, 20), (40, 60, 200))
    soft = _soft(10.0) * 0.9 + 0.05
    kept = soft.copy()
    out = snap_outline(soft, image)
    assert np.array_equal(soft, kept)
    obj = (soft > 0.5).astype(np.uint8)
    edge = cv2.dilate(obj, disk(1)).astype(bool) & ~cv2.erode(obj, disk(1)).astype(bool)
    assert np.array_equal(out[~edge], soft[~edge])
    assert not np.array_equal(out[edge], soft[edge])
    empty = np.zeros((H, W), np.float32)
    assert snap_outline(empty, image) is empty


def test_the_tracker_yields_the_snapped_outline_but_carries_its_own_state(monkeypatch):
    """A disc moving 1.5 px a frame: what the tracker yields is its own mask snapped to the picture; its state,
    and so its course, is what it would be without the snap."""
    frames = [_disc(9.0, (240, 140, 20), (40, 60, 200), cx=24.3 + 1.5 * t, cy=30.6 + 0.5 * t) for t in range(8)]

    def run(snap):
        monkeypatch.setattr(propagate, "snap_outline", snap)
        prop = propagate.Propagator(TrackConfig(), (W, H))
        prop.start(frames[0][0], cv2.cvtColor(frames[0][0], cv2.COLOR_RGB2GRAY), frames[0][1].astype(np.float32))
        out = []
        for image, _ in frames[1:]:
            out.append((prop.step(image, cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)), prop.state.copy()))
        return out

    snapped = run(snap_outline)
    plain = run(lambda soft, rgb: soft)
    for (image, truth), (soft, state), (soft0, state0) in zip(frames[1:], snapped, plain, strict=True):
        np.testing.assert_array_equal(state, state0)
        np.testing.assert_array_equal(soft, snap_outline(soft0, image))
        assert _iou(soft > 0.5, truth) >= _iou(soft0 > 0.5, truth) - 0.02
    assert any(not np.array_equal(soft, soft0) for (soft, _), (soft0, _) in zip(snapped, plain, strict=True))
