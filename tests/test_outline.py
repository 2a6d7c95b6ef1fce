"""The outline net (streamfill/masks/outline.py, streamfill/train/outline.py, `streamfill train outline`)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import cv2
import numpy as np
import pytest

from streamfill.config import Config, TrackConfig
from streamfill.errors import ConfigError
from streamfill.masks import scenes
from streamfill.masks.outline import MAX_SIDE, REACH, OutlineRefiner, net_input
from streamfill.masks.track import FlowTracker, Keyframe
from streamfill.types import Frame


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b)))


def _scene(case: str = "tiny", seed: int = 0, frames: int = 12):
    return list(scenes.render(case, seed, [], frames=frames))


@pytest.fixture(scope="module")
def refiner() -> OutlineRefiner:
    return OutlineRefiner()


def test_leaves_empty_tiny_and_large_masks_alone(refiner):
    rgb = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    empty = np.zeros((120, 160), bool)
    assert refiner(rgb, empty) is empty
    few = empty.copy()
    few[5, 5:8] = True  # 3 pixels
    assert refiner(rgb, few) is few
    large = empty.copy()
    large[10:100, 10:10 + MAX_SIDE + 1] = True  # a box wider than MAX_SIDE
    assert refiner(rgb, large) is large
    assert refiner.calls == 0


def test_redraws_only_near_the_mask(refiner):
    frame = _scene()[5]
    given = cv2.erode(frame.truth.view(np.uint8), np.ones((3, 3), np.uint8)) > 0
    given[0:4, 0:4] = False
    out = refiner(frame.image, given)
    assert out.shape == given.shape and out.dtype == bool and refiner.calls == 1
    near = cv2.dilate(given.view(np.uint8), np.ones((2 * REACH + 1, 2 * REACH + 1), np.uint8)) > 0
    assert np.array_equal(out[~near], given[~near])
    assert not np.array_equal(out, given)  # the net did decide something near the outline


def test_keeps_a_mask_that_is_right(refiner):
    # The truth given as the yield: the net's residual must keep it (a broken or untrained net would not).
    for case, seed in (("tiny", 0), ("small", 1), ("foliage", 2)):
        for frame in _scene(case, seed)[1::4]:
            assert _iou(refiner(frame.image, frame.truth), frame.truth) > 0.9, (case, seed, frame)


def test_tracker_uses_it_for_small_objects_only():
    def track(case: str, outline: bool, seed: int = 0) -> FlowTracker:
        run = _scene(case, seed, frames=6)
        tracker = FlowTracker([Keyframe(0, mask=np.where(run[0].truth, 255, 0).astype(np.uint8))],
                              replace(Config().track, outline=outline), on_warning=lambda m: None)
        for _ in tracker.pair(Frame(image=f.image, pts=i, time_base=Fraction(1, 25), index=i)
                              for i, f in enumerate(run)):
            pass
        return tracker

    assert track("tiny", True)._outline.calls == 5  # every tracked frame, not the keyframe
    assert track("tiny", False)._outline is None
    assert track("pan", True, seed=0)._outline.calls == 0  # a 147-170 px object: over MAX_SIDE, left alone


def test_config_checks_the_switch():
    assert TrackConfig().outline is True
    with pytest.raises(ConfigError, match="track.outline"):
        TrackConfig(outline="yes")


def test_training_collects_fits_and_exports(tmp_path):
    torch = pytest.importorskip("torch")
    from streamfill.train.outline import CANVAS, OutlineNet, collect, export_onnx, fit

    seen = []
    samples = collect([], [7], lambda images, codec: [cv2.GaussianBlur(i, (3, 3), 0) for i in images],
                      progress=seen.append)
    n = len(samples["rgb"])
    assert n > 20 and samples["rgb"].shape == (n, CANVAS, CANVAS, 3) and len(seen) == 6
    assert samples["mask"].shape == samples["truth"].shape == (n, CANVAS, CANVAS)
    # the yields are the tracker's, not the truth
    assert not np.array_equal(samples["mask"], samples["truth"])
    net, scores = fit(samples, epochs=1, batch=32)
    assert 0.0 < scores["input_iou"] <= 1.0 and 0.0 < scores["iou"] <= 1.0
    path = tmp_path / "outline.onnx"
    export_onnx(net, path)
    import streamfill.train.outline as module

    assert module.__file__.encode() not in path.read_bytes()  # no machine's paths in the file (stack traces)
    frame = _scene()[3]
    x = net_input(frame.image[:50, :70], frame.truth[:50, :70])
    with torch.no_grad():
        expected = net(torch.from_numpy(x))[0, 0].numpy()
    loaded = OutlineRefiner(str(path))
    loaded.net.setInput(x)
    assert np.allclose(loaded.net.forward()[0, 0], expected, atol=1e-4)
    assert isinstance(net, OutlineNet)


def test_cli_refuses_a_wrong_output(tmp_path, capsys):
    from streamfill.cli import main

    rc = main(["train", "outline", "--photos", str(tmp_path), "-o", str(tmp_path / "net.pt")])
    err = capsys.readouterr().err
    assert rc != 0 and "onnx" in err and "Traceback" not in err
    rc = main(["train", "outline", "--photos", str(tmp_path), "-o", str(tmp_path / "n.onnx"), "--seeds", "x-y"])
    assert rc != 0 and "--seeds" in capsys.readouterr().err
    rc = main(["train", "outline", "--photos", str(tmp_path), "-o", str(tmp_path / "n.onnx"), "--seeds", "9-5"])
    assert rc != 0 and "--seeds" in capsys.readouterr().err  # a reversed range is refused, not read as no seeds
    assert not (tmp_path / "n.onnx").exists()
