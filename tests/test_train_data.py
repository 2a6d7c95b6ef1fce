"""Training data: fixed split, deterministic crops, video frames through streamfill.io, sketches."""

import dataclasses

import av
import numpy as np
import pytest
from train_helpers import write_photos

from streamfill.errors import InputError
from streamfill.train.config import DataConfig, MaskGenConfig, SketchConfig
from streamfill.train.data import TrainData, make_batch, recolor, validation_set


def _clip(path, frames=30, size=(48, 64)):
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.height, s.width = size
        s.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.zeros((*size, 3), np.uint8)
            img[:, :, 0] = 8 * i
            img[10:30, (i % 40) : (i % 40) + 10] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_photos_and_video_frames_split_and_crop(tmp_path):
    photos = write_photos(tmp_path / "photos", count=10)
    clip = _clip(tmp_path / "clip.mp4")
    cfg = DataConfig(crop=32, val_fraction=0.3, video_frames=12, video_block=5)
    data = TrainData([photos, clip], cfg, seed=0).open()
    frames = [k for kind, k in data.train_items + data.val_items if kind == "frame"]
    assert len(frames) == 12
    assert data.val_items and data.train_items
    again = TrainData([photos, clip], cfg, seed=0).open()
    assert again.train_items == data.train_items and again.val_items == data.val_items
    a = data.crops(np.random.default_rng(1), 6)
    b = again.crops(np.random.default_rng(1), 6)
    assert a.shape == (6, 32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_validation_set_is_fixed_and_free_of_augmentation(tmp_path):
    photos = write_photos(tmp_path / "photos", count=6)
    cfg = DataConfig(crop=32, val_fraction=0.0)
    plain = TrainData([photos], cfg).open()
    augmented = TrainData([photos], dataclasses.replace(cfg, rotate=True, color=1.0)).open()
    v1, s1 = validation_set(plain, MaskGenConfig(), SketchConfig(), 5, seed=3)
    v2, s2 = validation_set(augmented, MaskGenConfig(), SketchConfig(), 5, seed=3)
    np.testing.assert_array_equal(v1.images, v2.images)
    np.testing.assert_array_equal(v1.masks, v2.masks)
    assert (v1.sketches == 0).all()
    assert ((s1.sketches > 0) <= (s1.masks > 0)).all()  # sketch lines only inside the hole


def test_sketch_dropout_and_recolor():
    rng = np.random.default_rng(0)
    images = np.zeros((40, 32, 32, 3), np.uint8)
    images[:, :, 16:] = 200  # one vertical edge in every crop
    batch = make_batch(rng, images, MaskGenConfig(box_prob=1.0), SketchConfig(prob=0.5))
    with_lines = (batch.sketches.reshape(40, -1) > 0).any(axis=1).mean()
    assert 0.2 < with_lines < 0.8
    img = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = recolor(np.random.default_rng(2), img)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_missing_data_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        TrainData([tmp_path / "nope"], DataConfig()).open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        TrainData([tmp_path / "empty"], DataConfig()).open()
