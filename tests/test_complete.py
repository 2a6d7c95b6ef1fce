"""Crop-and-stitch: only the hole changes, at any resolution; crops use the working sizes."""

import cv2
import numpy as np
import pytest

from streamfill.backends.classical import ClassicalInpainter
from streamfill.config import CropConfig, MaskConfig
from streamfill.pipeline.complete import Completer
from streamfill.pipeline.crop import pick_size, plan_crops
from streamfill.types import Inpainter


class RecordingInpainter:
    """Fills holes with a constant and records the batches it was given."""

    name = "record"

    def __init__(self):
        self.calls = []

    def inpaint(self, images, masks, guidance=None):
        self.calls.append((images.shape, masks.shape))
        out = images.copy()
        out[masks > 0] = (10, 200, 30)
        return out


def noisy(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_4k_frame_small_hole_only_hole_changes():
    image = noisy(2160, 3840)
    mask = np.zeros((2160, 3840), np.uint8)
    mask[1000:1040, 2000:2050] = 255
    rec = RecordingInpainter()
    out = Completer(rec, CropConfig(), MaskConfig(feather=3)).fill(image, mask)
    assert np.array_equal(out[mask == 0], image[mask == 0])
    assert not np.array_equal(out[mask > 0], image[mask > 0])
    assert rec.calls == [((1, 256, 256, 3), (1, 256, 256))]  # cost depends on the hole, not the frame


def test_large_hole_is_downscaled_to_the_largest_size():
    image = noisy(1080, 1920)
    mask = np.zeros((1080, 1920), np.uint8)
    mask[100:900, 200:1200] = 255
    rec = RecordingInpainter()
    out = Completer(rec, CropConfig(), MaskConfig(feather=0)).fill(image, mask)
    assert rec.calls[0][0] == (1, 512, 512, 3)
    assert np.array_equal(out[mask == 0], image[mask == 0])
    # No feather: the fill is pasted as is (the outermost pixels mix with context when resampled back).
    assert (out[104:896, 204:1196] == (10, 200, 30)).all()


def test_distant_holes_get_separate_crops_batched_by_size():
    mask = np.zeros((720, 1280), np.uint8)
    mask[50:70, 50:70] = 255
    mask[600:620, 1200:1220] = 255
    crops, _ = plan_crops(mask > 0, CropConfig())
    assert len(crops) == 2 and {c.size for c in crops} == {256}
    rec = RecordingInpainter()
    Completer(rec).fill(noisy(720, 1280), mask)
    assert rec.calls == [((2, 256, 256, 3), (2, 256, 256))]


def test_near_holes_are_merged():
    mask = np.zeros((720, 1280), np.uint8)
    mask[300:320, 300:320] = 255
    mask[300:320, 340:360] = 255
    crops, _ = plan_crops(mask > 0, CropConfig())
    assert len(crops) == 1
    c = crops[0]
    assert c.x0 <= 300 and c.x1 >= 360 and c.size % 8 == 0


def _check_plan(crops, labels):
    from streamfill.pipeline.crop import _overlap

    boxes = [(c.x0, c.y0, c.x1, c.y1) for c in crops]
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert sorted(lab for c in crops for lab in c.labels) == list(range(1, int(labels.max()) + 1))


def test_speckled_mask_is_planned_in_well_under_a_second():
    """A mask of a few thousand specks (a noisy mask video, a spray brush) took about 6 s per 1080p frame (30 s
    per 4K frame) to plan: the pairwise overlap search restarted after every merge."""
    import time

    rng = np.random.default_rng(0)
    mask = np.zeros((1080, 1920), np.uint8)
    mask[rng.integers(0, 1080, 3000), rng.integers(0, 1920, 3000)] = 255
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))  # ~2400 separate specks
    t0 = time.process_time()
    crops, labels = plan_crops(mask > 0, CropConfig())
    assert time.process_time() - t0 < 1.0
    assert len(crops) == 1 and crops[0].size == 512
    _check_plan(crops, labels)


def test_many_distant_holes_keep_their_own_crops():
    mask = np.zeros((1000, 1000), np.uint8)
    for y in range(20, 1000, 100):
        for x in range(20, 1000, 100):
            mask[y: y + 4, x: x + 4] = 255  # 100 holes, 100 px apart: their 64 px crops never meet
    crops, labels = plan_crops(mask > 0, CropConfig(sizes=(64,), context=0.0, min_context=0))
    assert len(crops) == 100 and all(len(c.labels) == 1 and c.width == c.height == 64 for c in crops)
    _check_plan(crops, labels)
    mask[:, ::10] = 255  # now every crop overlaps its neighbours: one crop
    crops, labels = plan_crops(mask > 0, CropConfig(sizes=(64,), context=0.0, min_context=0))
    assert len(crops) == 1
    _check_plan(crops, labels)


def test_crop_inside_frame_smaller_than_working_size():
    mask = np.zeros((60, 90), np.uint8)
    mask[20:30, 40:50] = 255
    crops, _ = plan_crops(mask > 0, CropConfig())
    c = crops[0]
    assert 0 <= c.x0 < c.x1 <= 90 and 0 <= c.y0 < c.y1 <= 60 and c.size == 256


def test_empty_mask_skips_the_engine():
    rec = RecordingInpainter()
    image = noisy(64, 64)
    assert Completer(rec).fill(image, np.zeros((64, 64), np.uint8)) is image
    assert rec.calls == []


def test_pick_size():
    assert pick_size(100, (256, 384, 512)) == 256
    assert pick_size(300, (256, 384, 512)) == 384
    assert pick_size(900, (256, 384, 512)) == 512


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_classical_engines_fill_smoothly(method):
    eng = ClassicalInpainter(method, 5)
    assert isinstance(eng, Inpainter)
    img = np.zeros((1, 64, 64, 3), np.uint8)
    img[:] = (100, 150, 200)
    img[0, 20:40, 20:40] = (255, 0, 0)  # the "object"
    m = np.zeros((1, 64, 64), np.uint8)
    m[0, 18:42, 18:42] = 255
    out = eng.inpaint(img, m)
    assert np.abs(out[0, 20:40, 20:40].astype(int) - (100, 150, 200)).max() <= 4  # the object is gone


def test_a_hole_over_the_whole_frame_is_noted_once(caplog, monkeypatch):
    """An all-white mask (often an inverted one) leaves the engine nothing to fill from: the run says so, once."""
    import logging

    monkeypatch.setattr(Completer, "_whole_noted", False)
    completer = Completer(ClassicalInpainter("telea"), CropConfig(), MaskConfig(dilate=0, feather=0))
    image = np.full((32, 48, 3), 120, np.uint8)
    part = np.zeros((32, 48), np.uint8)
    part[8:20, 10:30] = 255
    with caplog.at_level(logging.WARNING):
        completer.fill(image, part)
        assert not caplog.records
        completer.fill(image, np.full((32, 48), 255, np.uint8))
        completer.fill(image, np.full((32, 48), 255, np.uint8))
    assert len(caplog.records) == 1 and "whole frame" in caplog.records[0].getMessage()
