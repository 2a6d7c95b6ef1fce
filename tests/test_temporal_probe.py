"""The held-out probe of temporal completion (quality): propagation and the engine each predict the ring of
known pixels around the hole without seeing it; where propagation predicts worse, that part of the hole goes
to the engine."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from streamfill.config import TemporalConfig
from streamfill.temporal import TemporalCompletion
from streamfill.temporal import hole as hole_fill
from streamfill.temporal.flow import Flow
from streamfill.temporal.ring import light_fit
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
    return tcomp._probe(image, (0, 0, W, H), hole, region, region.copy(), cand)[0], tcomp


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
    monkeypatch.setattr(hole_fill, "PROBE", True)
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


def _still_slots(comp, n, hole_at):
    """Slots of a still clip of ``n`` frames (one picture) with a disc hole in frame ``hole_at`` only."""
    comp._flow = Flow("medium")
    image = picture(5)
    slots = []
    for i in range(n):
        hole = np.zeros((H, W), np.uint8)
        if i == hole_at:
            cv2.circle(hole, (W // 2, H // 2), 9, 255, -1)
        slots.append(comp._ingest(Frame(image=image, pts=i, time_base=Fraction(1, 25), index=i), hole))
    return slots


def test_flow_candidates_can_be_asked_to_come_from_far_frames():
    """The age-matched probe gathers the ring's candidates only from frames at least as far as the hole's
    sources; the gather reports the distance its candidates came from."""
    comp = TemporalCompletion(lambda img, mask: img, TemporalConfig(mode="quality", background=False))
    buf = _still_slots(comp, 9, 4)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    ring = (cv2.dilate(buf[4].hole.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~buf[4].hole

    def mean_age(floor):
        acc = np.zeros((H, W, 3), np.float32)
        wsum = np.zeros((H, W), np.float32)
        age = np.zeros((H, W), np.float32)
        total = comp._gather_flow(buf, 4, xs, ys, ring, acc, wsum, age, floor)
        got = total > 0
        assert got[ring].mean() > 0.9
        return float((age[got] / total[got]).min()), float((age[got] / total[got]).mean())

    nearest, _ = mean_age(None)
    far, _ = mean_age(np.where(ring, 3.0, np.inf).astype(np.float32))
    assert nearest < 2.5                                  # unrestricted: mostly the nearest frames
    assert far >= 3.0                                     # nothing nearer than three frames counted


def test_quality_carries_nothing_into_a_part_the_probe_gave_away(monkeypatch):
    """Where the probe distrusts a part of the hole, the previous output (carried along the same flow) is not
    used there either: that part goes to the engine whole."""
    n = 8

    def fill(img, mask):
        return np.where(mask[..., None] > 0, np.uint8(100), img)

    def pairs():
        for i in range(n):
            image = picture(100 + i)                      # every frame a new picture: propagation is wrong
            hole = np.zeros((H, W), np.uint8)
            cv2.circle(hole, (W // 2 + 2 * i, H // 2), 14, 255, -1)
            yield Frame(image=image, pts=i, time_base=Fraction(1, 25), index=i), hole

    carried = {}
    for flag in (False, True):
        monkeypatch.setattr(hole_fill, "PROBE_CARRY", flag)
        comp = TemporalCompletion(fill, TemporalConfig(mode="quality", background=False, window=3))
        assert len(list(comp.stream(pairs()))) == n
        carried[flag] = comp.stats.pixels["previous"]
    assert carried[False] > 0
    assert carried[True] < 0.2 * carried[False]


def test_probe_keeps_propagation_seen_in_other_light():
    """Copies from a frame lit otherwise (a cloud, a lamp, the camera's exposure: a gain and a gradient) are
    right once the seam matches their colours; the probe compares them after the same change of light fitted
    on the ring, so it keeps them instead of handing a well-predicted part to the engine."""
    image, hole, region = setup()
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    darker = np.clip((image.astype(np.float32) - 12 - 0.3 * xs[..., None]) / 1.3, 0, 255)
    noisy = np.clip(image + np.random.default_rng(3).normal(0, 12, image.shape), 0, 255).astype(np.uint8)

    def good_engine(img, mask):                           # an engine that roughly knows the picture
        return np.where(mask[..., None] > 0, noisy, img)

    misfit, _ = probe(good_engine, darker, image, hole, region)
    assert misfit[hole].mean() < 0.05                     # (before: all of it went to the engine)


def test_light_fit_takes_out_light_not_texture():
    image, hole, region = setup()
    ring = region & ~hole
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    truth = image.astype(np.float32)
    lit = (truth - 20 + 0.2 * ys[..., None]) / 1.2        # another exposure and a gradient of light
    lit[ring & (xs < W // 2 - 6)] = 255                   # and something else standing on a part of the ring
    fitted = light_fit(truth, lit, ring)
    assert np.abs(fitted - truth)[hole].mean() < 1.5
    moved = np.roll(truth, 2, axis=1)                     # misplaced texture stays wrong
    fitted = light_fit(truth, moved, ring)
    assert fitted is None or np.abs(fitted - truth)[hole].mean() > 0.7 * np.abs(moved - truth)[hole].mean()
    assert light_fit(truth, picture(7).astype(np.float32), ring) is None  # another picture: no light explains it
