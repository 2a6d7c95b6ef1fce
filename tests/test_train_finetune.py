"""Per-clip fine-tuning: never learns from pixels inside the real hole; does learn from the rest."""

import numpy as np
import pytest
import torch

from streamfill.config import ModelConfig
from streamfill.model import Generator
from streamfill.train.finetune import FinetuneConfig, blank_holes, finetune


def _clip(poison: str, n=3, h=48, w=64):
    rng = np.random.default_rng(0)
    frames = []
    mask = np.zeros((h, w), np.uint8)
    mask[12:30, 20:40] = 255
    for _ in range(n):
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        if poison == "white":
            img[mask > 0] = 255
        elif poison == "noise":
            img[mask > 0] = np.random.default_rng(99).integers(0, 256, size=(int((mask > 0).sum()), 3))
        frames.append((img, mask.copy()))
    return frames, mask


def _tiny_generator():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Generator(ModelConfig(cnum=8, guidance=True))


def test_blank_holes_grows_and_blanks():
    img = np.full((20, 20, 3), 200, np.uint8)
    m = np.zeros((20, 20), np.uint8)
    m[10, 10] = 255
    clean, hole = blank_holes(img, m, 2)
    assert hole.sum() > 1 and hole[10, 12] and not hole[10, 14]
    assert (clean[hole] == 0).all() and (clean[~hole] == 200).all()


@pytest.mark.slow
def test_poisoned_hole_does_not_change_the_weights():
    cfg = FinetuneConfig(steps=2, batch=2, crop=32, margin=2, seed=3)
    results = []
    for poison in ("white", "noise"):
        frames, _ = _clip(poison)
        g = finetune(_tiny_generator(), iter(frames), cfg)
        results.append(g.state_dict())
    for key in results[0]:
        assert torch.equal(results[0][key], results[1][key]), key


@pytest.mark.slow
def test_known_pixels_do_change_the_weights():
    cfg = FinetuneConfig(steps=2, batch=2, crop=32, margin=2, seed=3)
    before = _tiny_generator().state_dict()
    frames, mask = _clip("white")
    tuned = finetune(_tiny_generator(), iter(frames), cfg).state_dict()
    assert any(not torch.equal(before[k], tuned[k]) for k in before)
    # and changing a known pixel region changes the result (the test above is not vacuous)
    frames2 = [(img.copy(), m) for img, m in frames]
    for img, _ in frames2:
        img[mask == 0] = 255 - img[mask == 0]
    tuned2 = finetune(_tiny_generator(), iter(frames2), cfg).state_dict()
    assert any(not torch.equal(tuned[k], tuned2[k]) for k in tuned)


def test_a_mask_over_the_whole_frame_is_refused():
    """Nothing outside the mask to learn from: it ran with L1 0.0000 and wrote the weights unchanged."""
    from streamfill.errors import InputError
    from streamfill.train.finetune import collect_frames

    image = np.full((32, 48, 3), 100, np.uint8)
    with pytest.raises(InputError, match="cover"):
        collect_frames([(image, np.full((32, 48), 255, np.uint8))] * 3, FinetuneConfig())
    part = np.zeros((32, 48), np.uint8)
    part[8:20, 10:30] = 255
    assert len(collect_frames([(image, part)] * 3, FinetuneConfig())) == 3


def test_the_cli_records_the_crop_it_trained_on(tmp_path):
    """A 64x48 clip trains on 48 px crops: the provenance said 256 (the default asked for)."""
    from media import box_mask, make_video, write_png

    from streamfill.cli import main
    from streamfill.model import read_metadata

    make_video(tmp_path / "clip.mp4", frames=3, width=64, height=48)
    write_png(tmp_path / "m.png", box_mask(48, 64, 20, 12, 36, 26))
    out = tmp_path / "w.safetensors"
    assert main(["finetune", str(tmp_path / "clip.mp4"), "--mask", str(tmp_path / "m.png"), "-o", str(out),
                 "--steps", "1", "--batch", "1", "--quiet"]) == 0
    assert read_metadata(out)["provenance"]["finetuned"]["crop"] == 48
