"""Layered copies (``streamfill.temporal.layers``): a hole over a subject that moves against a panning
background is filled from the frames before and after, along each of the two motions, where both agree."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from streamfill.config import TemporalConfig
from streamfill.temporal import TemporalCompletion, layers
from streamfill.temporal import hole as hole_fill
from streamfill.types import Frame

H, W = 192, 320
N = 16


def picture(seed: int, h: int, w: int, cell: int = 10) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((h // cell + 2, w // cell + 2, 3)).astype(np.float32)
    return (cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def two_layers(n: int = N, light_from: int | None = None):
    """(frame, hole, truth): the background pans left 4 px a frame, a 100 px textured square moves right 4 px
    and down 1 px a frame across it; a still disc hides it, and its edge for the first frames. From frame
    ``light_from`` on, the whole picture is 60 levels brighter."""
    back = picture(3, H, W + 4 * n + 8)
    square = picture(5, 100, 100)
    for i in range(n):
        image = back[:, 4 * i:4 * i + W].copy()
        x, y = 70 + 4 * i, 50 + i
        image[y:y + 100, x:x + 100] = square
        if light_from is not None and i >= light_from:
            image = np.clip(image.astype(np.int16) + 60, 0, 255).astype(np.uint8)
        hole = np.zeros((H, W), np.uint8)
        cv2.circle(hole, (W // 2, H // 2), 14, 255, -1)
        shown = image.copy()
        shown[hole > 0] = (255, 0, 255)   # what the user removes (never seen by the completer)
        yield Frame(image=shown, pts=i, time_base=Fraction(1, 25), index=i), hole, image


def run(monkeypatch, layered: bool, clip):
    monkeypatch.setattr(hole_fill, "LAYERED", layered)
    items = list(clip)

    def fill(img, mask):
        return np.where(mask[..., None] > 0, np.uint8(128), img)

    comp = TemporalCompletion(fill, TemporalConfig(mode="fast"))
    out = list(comp.stream((f, h) for f, h, _ in items))
    assert len(out) == len(items)
    return out, items, comp.stats.pixels


def psnr_in_holes(out, items, frames) -> float:
    err = []
    for k in frames:
        hole = items[k][1] > 0
        err.append((out[k].image[hole].astype(np.float64) - items[k][2][hole].astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / np.concatenate(err).mean()))


def test_layers_fill_a_hole_over_a_subject_moving_against_the_background(monkeypatch):
    out_on, items, stats_on = run(monkeypatch, True, two_layers())
    out_off, _, _ = run(monkeypatch, False, two_layers())
    gains = [psnr_in_holes(out_on, items, [k]) - psnr_in_holes(out_off, items, [k]) for k in range(4, N - 4)]
    assert stats_on["layered"] > 0.2 * sum(int((items[k][1] > 0).sum()) for k in range(N))
    assert float(np.mean(gains)) > 1.0, gains     # in dB, per frame in the middle of the clip
    assert min(gains) > -1.0, gains


def test_layers_answer_nothing_where_before_and_after_disagree(monkeypatch):
    """The light changes while the place is hidden: what was seen before no longer matches what is seen after,
    so the frames around the change take (almost) nothing from the layers (the ring check is off here: this is
    the agreement of before and after alone)."""
    monkeypatch.setattr(hole_fill, "LAYER_SWITCH", 0.0)
    _, _, steady = run(monkeypatch, True, two_layers(light_from=None))
    _, _, changed = run(monkeypatch, True, two_layers(light_from=N // 2))
    assert changed["layered"] < 0.4 * steady["layered"], (changed["layered"], steady["layered"])


def test_a_layer_that_mispredicts_the_ring_gives_way_to_the_flow(monkeypatch):
    """Copies accepted without the agreement (any before/after difference passes) but averaging a dark and a
    bright frame: on the ring around the hole they are worse than the flow's, so the layer is refused."""
    monkeypatch.setattr(layers, "LEVEL", 1e9)
    _, _, checked = run(monkeypatch, True, two_layers(light_from=N // 2))
    assert checked.get("layer_refused", 0) > 0
    monkeypatch.setattr(hole_fill, "LAYER_SWITCH", 0.0)
    _, _, unchecked = run(monkeypatch, True, two_layers(light_from=N // 2))
    assert checked["layered"] < 0.6 * unchecked["layered"], (checked["layered"], unchecked["layered"])
