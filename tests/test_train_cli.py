"""CLI of the training feature: `streamfill image`, `streamfill train masks`, `streamfill train export`, and the
TorchInpainter contract."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from streamfill.backends.torch import TorchInpainter
from streamfill.cli import main
from streamfill.config import ModelConfig
from streamfill.model import Generator, read_metadata, save_generator
from streamfill.types import Inpainter


def _generator(guidance=True):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Generator(ModelConfig(cnum=8, guidance=guidance))


def test_torch_inpainter_keeps_known_pixels_and_any_size():
    inp = TorchInpainter(_generator())
    assert isinstance(inp, Inpainter)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 36, 44, 3), dtype=np.uint8)  # not multiples of 8
    masks = np.zeros((2, 36, 44), np.uint8)
    masks[:, 10:20, 12:30] = 255
    out = inp.inpaint(images, masks)
    assert out.shape == images.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[masks == 0], images[masks == 0])


def test_torch_inpainter_uses_the_sketch():
    from streamfill.train.loop import lsuv_init

    g = _generator()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    m = torch.zeros(2, 1, 32, 32)
    m[:, :, 8:24, 8:24] = 1
    lsuv_init(g, x, m, (torch.rand_like(m) > 0.9).float())  # Glorot init outputs ~1e-8: nothing to compare
    inp = TorchInpainter(g)
    images = np.full((1, 32, 32, 3), 128, np.uint8)
    masks = np.zeros((1, 32, 32), np.uint8)
    masks[:, 8:24, 8:24] = 255
    sketch = np.zeros_like(masks)
    sketch[:, 16, 8:24] = 255
    a = inp.inpaint(images, masks)
    b = inp.inpaint(images, masks, sketch)
    assert not np.array_equal(a, b)


def test_image_cli(tmp_path, capsys):
    weights = save_generator(_generator(), tmp_path / "w.safetensors")
    img = np.random.default_rng(1).integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), img[..., ::-1])
    mask = np.zeros((40, 48), np.uint8)
    mask[10:25, 10:30] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    sketch = np.zeros_like(mask)
    sketch[17, 5:40] = 255
    cv2.imwrite(str(tmp_path / "s.png"), sketch)
    out = tmp_path / "out.png"
    rc = main(["image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "m.png"), "--sketch",
               str(tmp_path / "s.png"), "-o", str(out), "--weights", str(weights)])
    assert rc == 0
    result = cv2.imread(str(out))[..., ::-1]
    assert result.shape == img.shape
    far = np.ones_like(mask, bool)
    far[6:29, 6:34] = False  # away from the hole (and its feathered rim) the input is untouched
    np.testing.assert_array_equal(result[far], img[far])
    # a mask of another size is a one-line error, not a traceback
    cv2.imwrite(str(tmp_path / "bad.png"), np.zeros((10, 10), np.uint8))
    rc = main(["image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "bad.png"), "-o", str(out),
               "--weights", str(weights)])
    assert rc == 1 and "mask" in capsys.readouterr().err
    # an output suffix we cannot write is a one-line error before any work, and nothing is written
    rc = main(["image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "m.png"), "-o",
               str(tmp_path / "out.xyz"), "--engine", "telea"])
    err = capsys.readouterr().err
    assert rc == 1 and "unknown image format '.xyz'" in err and "internal" not in err, err
    assert not list(tmp_path.glob("*out.xyz*"))


def test_train_masks_cli(tmp_path):
    out = tmp_path / "grid.png"
    assert main(["train", "masks", "-o", str(out), "--count", "4", "--size", "64"]) == 0
    grid = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    assert grid.shape == (2 * 64 + 3 * 4, 2 * 64 + 3 * 4)
    assert (grid == 255).any() and (grid == 0).any()


@pytest.mark.slow
def test_train_cli_run_resume_export(tmp_path):
    from train_helpers import write_photos

    photos = write_photos(tmp_path / "photos", count=4)
    run = tmp_path / "run"
    args = ["train", "--config", "configs/train/tiny.toml", "--data", str(photos), "--out", str(run), "--quiet"]
    assert main(args) == 0
    assert main(args) == 1  # refuses to overwrite a run without --resume
    assert main([*args, "--resume", "--steps", "6"]) == 0
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()
             if json.loads(line)["event"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    out = tmp_path / "export" / "w.safetensors"
    assert main(["train", "export", str(run), "-o", str(out), "--hardware", "test"]) == 0
    meta = read_metadata(out)
    assert meta["provenance"]["step"] == 6 and meta["model_config"].cnum == 8
    card = (out.parent / "MODEL_CARD.md").read_text()
    assert "| steps | 6 |" in card and "Telea" in card


def test_train_export_discriminator_is_never_half_written(tmp_path, monkeypatch):
    """`train export --discriminator` wrote the discriminator straight to its final name: an interrupted export
    left a truncated file there (the generator beside it was already staged and renamed)."""
    import safetensors.torch
    from train_helpers import write_photos

    photos = write_photos(tmp_path / "photos", count=4)
    run = tmp_path / "run"
    assert main(["train", "--config", "configs/train/tiny.toml", "--data", str(photos), "--out", str(run),
                 "--quiet", "--steps", "2"]) == 0
    out = tmp_path / "export" / "w.safetensors"
    real = safetensors.torch.save_file

    def interrupted(tensors, filename, metadata=None):
        if "discriminator" in str(filename):
            Path(filename).write_bytes(b"half a file")
            raise KeyboardInterrupt
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", interrupted)
    assert main(["train", "export", str(run), "-o", str(out), "--hardware", "test", "--discriminator"]) == 130
    assert not any("discriminator" in p.name for p in out.parent.iterdir()), list(out.parent.iterdir())
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    assert main(["train", "export", str(run), "-o", str(out), "--hardware", "test", "--discriminator"]) == 0
    assert (out.parent / "w.discriminator.safetensors").is_file()


class _Planted:
    """A pickle that runs code when loaded (what a full unpickling of a downloaded "checkpoint" allows)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_train_export_runs_no_code_and_names_a_non_checkpoint(tmp_path, capsys):
    marker = tmp_path / "code_ran"
    planted = tmp_path / "planted.pt"
    torch.save({"version": 1, "payload": _Planted(marker)}, planted)
    plain = tmp_path / "state_dict.pt"
    torch.save(_generator().state_dict(), plain)  # e.g. a bare state dict: was an internal error (KeyError)
    for path, message in ((planted, "no code"), (plain, "not a streamfill training checkpoint")):
        capsys.readouterr()
        assert main(["train", "export", str(path), "-o", str(tmp_path / "w.safetensors")]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not marker.exists()
    assert not (tmp_path / "w.safetensors").exists()


def test_train_export_card_on_the_weights_or_unwritable_leaves_no_weights(tmp_path, capsys):
    """--card equal to -o replaced the weights with the card (exit 0); a card that could not be written failed
    with a bare PermissionError after the weights stood under their final name."""
    from train_helpers import write_photos

    photos = write_photos(tmp_path / "photos", count=4)
    run = tmp_path / "run"
    assert main(["train", "--config", "configs/train/tiny.toml", "--data", str(photos), "--out", str(run),
                 "--quiet", "--steps", "1"]) == 0
    out = tmp_path / "w.safetensors"
    capsys.readouterr()
    for card in (out, tmp_path / "w.partial.safetensors"):  # (the second: where the weights wait for the card)
        assert main(["train", "export", str(run), "-o", str(out), "--card", str(card)]) == 1
        assert "--card" in capsys.readouterr().err and not out.exists() and not card.exists()
    (tmp_path / "file").write_text("x")
    assert main(["train", "export", str(run), "-o", str(out), "--card", str(tmp_path / "file" / "card.md")]) == 1
    err = capsys.readouterr().err
    assert "cannot write the model card" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob("*.partial*"))
