"""Shared fixtures for the training tests: a small photo folder written on the fly, and a tiny config."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamfill.train.config import train_config_from_dict


def write_photos(folder: Path, count: int = 6, size: tuple[int, int] = (72, 96), seed: int = 0) -> Path:
    """Smooth, structured RGB pictures (gradients, discs, stripes) that an inpainter can learn quickly."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(count):
        base = rng.uniform(40, 200, size=3)
        gx, gy = rng.uniform(-1.2, 1.2, size=2)
        img = base[None, None, :] + (gx * xx + gy * yy)[..., None]
        img = np.clip(img, 0, 255).astype(np.uint8)
        for _ in range(2):
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.circle(img, c, int(rng.integers(6, 20)), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        cv2.imwrite(str(folder / f"photo{i}.png"), img[..., ::-1])
    return folder


def tiny_config(**sections):
    data = {
        "data": {"crop": 32, "context_min": 1.0, "context_max": 1.5, "val_fraction": 0.0, "val_samples": 4},
        "train": {"batch": 2, "steps": 4, "seed": 1, "device": "cpu", "log_every": 1, "val_every": 1000,
                  "sample_every": 1000, "ckpt_every": 1000},
        "loss": {"gan": 0.1},
        "model": {"cnum": 8},
        "discriminator": {"cnum": 8},
    }
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    return train_config_from_dict(data)

