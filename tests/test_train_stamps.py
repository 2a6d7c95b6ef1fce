"""Object-shaped training holes from cut-outs (``masks.stamp_dir``): generated alpha cut-outs, no pool needed."""

import cv2
import numpy as np
import pytest

from streamfill.errors import ConfigError, InputError
from streamfill.train.config import MaskGenConfig
from streamfill.train.masks import load_stamps, mask_batch, random_mask, stamp_mask


def _l_shape(size: int = 60) -> np.ndarray:
    """An RGBA cut-out: an L (bounding-box fill 0.5) in a transparent margin, some colour in RGB."""
    im = np.zeros((size + 20, size + 30, 4), np.uint8)
    im[..., :3] = (30, 160, 90)
    im[10 : 10 + size, 15 : 15 + size // 2, 3] = 255
    im[10 + size // 2 : 10 + size, 15 : 15 + size, 3] = 255
    return im


@pytest.fixture
def stamp_dir(tmp_path):
    d = tmp_path / "masks"
    d.mkdir()
    cv2.imwrite(str(d / "ell.png"), _l_shape())
    return d


def _bbox_fill(mask: np.ndarray) -> float:
    ys, xs = np.nonzero(mask)
    box = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return float((box > 0).mean())


def test_load_stamps_alpha_and_grey(tmp_path, stamp_dir):
    grey = np.zeros((40, 50), np.uint8)
    cv2.circle(grey, (25, 20), 12, 255, -1)
    cv2.imwrite(str(stamp_dir / "sub_disk.png"), grey)  # a grey file: the grey level is the object
    (stamp_dir / "notes.txt").write_text("not an image")
    load_stamps.cache_clear()
    shapes = load_stamps(str(stamp_dir))
    assert len(shapes) == 2
    ell, disk = shapes  # sorted by name: ell.png, sub_disk.png
    assert ell.shape == (60, 60)  # cropped to the object
    assert abs((ell > 0).mean() - 0.75) < 0.02
    assert disk.shape == (25, 25)
    assert set(np.unique(ell)) == {0, 255}


def test_missing_or_empty_stamp_dir_is_one_clear_error(tmp_path):
    load_stamps.cache_clear()
    with pytest.raises(InputError, match="no such folder"):
        load_stamps(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no cut-outs"):
        load_stamps(str(tmp_path / "empty"))


def test_stamp_hole_has_the_objects_shape(stamp_dir):
    load_stamps.cache_clear()
    cfg = MaskGenConfig(stamp_dir=str(stamp_dir), stamp_prob=1.0, stamp_min=0.4, stamp_max=0.5)
    rng = np.random.default_rng(0)
    fills = []
    for _ in range(20):
        m = stamp_mask(rng, 128, 128, cfg)
        assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
        n, _ = cv2.connectedComponents((m > 0).astype(np.uint8))
        assert n == 2  # one object
        fills.append(_bbox_fill(m))
    # an L fills ~3/4 of its box (less when rotated, a little more after the growth); only when the crop's edge
    # cuts it down to one arm (objects may leave the crop) is the visible part a filled rectangle
    assert np.mean(np.array(fills) < 0.9) >= 0.75
    assert 0.45 < float(np.median(fills)) < 0.85


def test_mix_follows_stamp_prob(stamp_dir):
    load_stamps.cache_clear()
    # free-form holes are made boxes only (bounding-box fill 1.0), object holes are Ls (fill < 0.9)
    cfg = MaskGenConfig(strokes_min=0, strokes_max=0, box_prob=1.0, blob_prob=0.0, stamp_dir=str(stamp_dir),
                        stamp_prob=0.5, stamp_min=0.3, stamp_max=0.5)
    masks = mask_batch(np.random.default_rng(1), 200, 96, 96, cfg)
    objects = np.mean([_bbox_fill(m) < 0.95 for m in masks])
    assert 0.38 < objects < 0.62
    cover = (masks > 0).mean(axis=(1, 2))
    assert cover.min() >= cfg.min_coverage and cover.max() <= cfg.max_coverage


def test_stamp_prob_zero_keeps_the_old_masks(stamp_dir):
    plain = mask_batch(np.random.default_rng(7), 6, 64, 64, MaskGenConfig())
    with_dir = mask_batch(np.random.default_rng(7), 6, 64, 64, MaskGenConfig(stamp_dir=str(stamp_dir)))
    np.testing.assert_array_equal(plain, with_dir)


def test_stamps_are_seeded(stamp_dir):
    load_stamps.cache_clear()
    cfg = MaskGenConfig(stamp_dir=str(stamp_dir), stamp_prob=1.0, stamp_count=3, stamp_strokes=0.5)
    a = [random_mask(np.random.default_rng(5), 80, 100, cfg) for _ in range(3)]
    b = [random_mask(np.random.default_rng(5), 80, 100, cfg) for _ in range(3)]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_stamp_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="masks.stamp_dir"):
        MaskGenConfig(stamp_prob=0.3)
    with pytest.raises(ConfigError, match="masks.stamp_max"):
        MaskGenConfig(stamp_dir="x", stamp_min=0.5, stamp_max=0.2)
    with pytest.raises(ConfigError, match="masks.stamp_count"):
        MaskGenConfig(stamp_dir="x", stamp_count=0)


def test_masks_command_with_stamps(tmp_path, stamp_dir):
    from streamfill.cli import main

    load_stamps.cache_clear()
    cfg = tmp_path / "t.toml"
    cfg.write_text(f'[masks]\nstamp_dir = "{stamp_dir}"\nstamp_prob = 1.0\n')
    out = tmp_path / "grid.png"
    assert main(["train", "masks", "-o", str(out), "--config", str(cfg), "--count", "4", "--size", "64"]) == 0
    grid = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    assert grid is not None and (grid == 255).any()
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[masks]\nstamp_dir = "{tmp_path / "none"}"\nstamp_prob = 1.0\n')
    assert main(["train", "masks", "-o", str(tmp_path / "g2.png"), "--config", str(bad)]) != 0
    assert not (tmp_path / "g2.png").exists()
