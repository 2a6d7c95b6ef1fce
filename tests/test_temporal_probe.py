"""The held-out probe of temporal completion (quality): propagation and the engine each predict the ring of
known pixels around the hole without seeing it; where propagation predicts worse, that part of the hole goes
to the engine."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from streamfill.config import TemporalConfig
from streamfill.temporal import TemporalCompletion
from streamfill.temporal import complete as tc
from streamfill.types import Frame

H, W = 64, 96


def picture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((H // 8 + 2, W // 8 + 2, 3)).astype(np.float32)
    return (cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def setup(seed: int = 0):
    image = picture(seed)
    hole = np.zeros((H, W), bool)
    cv2.circle(hole.view(np.uint8), (W // 2, H // 2), 10, 1, -1)
    region = cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))) > 0
    return image, hole, region


def probe(fill, cand, image, hole, region):
    tcomp = TemporalCompletion(fill, TemporalConfig(mode="quality"))
    return tcomp._probe(image, (0, 0, W, H), hole, region, region.copy(), cand), tcomp


def test_probe_hides_the_ring_from_the_engine():
    image, hole, region = setup()
    seen = []

    def fill(img, mask):
        seen.append(mask > 0)
        return img

    probe(fill, image.astype(np.float32), image, hole, region)
    assert seen and seen[0][region].all()                 # neither the hole nor the ring is shown to the engine
    assert not seen[0].all()


def test_probe_keeps_propagation_that_predicts_the_ring():
    image, hole, region = setup()

    def bad_engine(img, mask):                            # an engine that paints grey
        out = img.copy()
        out[mask > 0] = 128
        return out

    misfit, tcomp = probe(bad_engine, image.astype(np.float32), image, hole, region)
    assert not misfit.any()
    assert tcomp.stats.probes == 1


def test_probe_gives_away_propagation_that_does_not():
    image, hole, region = setup()
    other = picture(7).astype(np.float32)                 # what a wrong flow carries in: another picture
    clean = image.copy()

    noisy = np.clip(clean + np.random.default_rng(3).normal(0, 12, clean.shape), 0, 255).astype(np.uint8)

    def good_engine(img, mask):                           # an engine that roughly knows the picture
        return np.where(mask[..., None] > 0, noisy, img)

    misfit, _ = probe(good_engine, other, image, hole, region)
    assert misfit[hole].all()                             # the whole part of the hole goes to the engine
    assert not misfit[~hole].any()


def test_quality_sends_a_part_propagated_wrongly_to_the_engine(monkeypatch):
    """End to end: a subject's texture changes completely every frame (nothing other frames show is right);
    quality's probe sees it on the ring and the engine's calls rise."""
    monkeypatch.setattr(tc, "PROBE", True)
    n = 8
    calls = []

    def fill(img, mask):
        calls.append(1)
        return np.where(mask[..., None] > 0, np.uint8(100), img)

    def pairs():
        for i in range(n):
            image = picture(100 + i)                      # every frame a new picture: propagation is wrong
            hole = np.zeros((H, W), np.uint8)
            cv2.circle(hole, (W // 2 + i, H // 2), 9, 255, -1)
            yield Frame(image=image, pts=i, time_base=Fraction(1, 25), index=i), hole

    comp = TemporalCompletion(fill, TemporalConfig(mode="quality", background=False))
    out = list(comp.stream(pairs()))
    assert len(out) == n
    assert comp.stats.probes > 0
    assert comp.stats.pixels.get("probe", 0) > 0
