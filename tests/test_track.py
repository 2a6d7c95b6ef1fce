"""Mask tracking: accuracy on synthetic textured content, keyframes, scene cuts, errors, streaming bounds."""

from __future__ import annotations

import json
import warnings
from fractions import Fraction

import cv2
import numpy as np
import pytest

from streamfill.config import Config, TrackConfig
from streamfill.errors import InputError, MaskError
from streamfill.eval.masks import evaluate_masks, evaluate_trajectory
from streamfill.masks import cutouts
from streamfill.masks.box import segment_box
from streamfill.masks.colour import ColourModel
from streamfill.masks.scenecut import SceneCutDetector
from streamfill.masks.track import FlowTracker, Keyframe, TrackingWarning, parse_box
from streamfill.types import Frame, MaskSource

H, W = 144, 192


def _clip(n: int, seed: int = 0, trajectory: str = "translate", size: int = 48):
    """n frames of a textured object moving over a panning textured background, with true masks."""
    bgs = cutouts.synthetic_backgrounds(H, W, seed)
    cut = cutouts.textured_cutout(96, seed + 1)
    frames, truth = [], []
    for t in range(n):
        layer = cutouts.place(cut, cutouts.TRAJECTORIES[trajectory](t, n), (H, W), size)
        image, visible = cutouts.composite(next(bgs), [layer])
        frames.append(Frame(image=image, pts=t * 2, time_base=Fraction(1, 50), index=t))
        truth.append(np.where(visible[0] > 0.5, 255, 0).astype(np.uint8))
    return frames, truth


def _iou(a, b):
    a, b = a > 127, b > 127
    return (a & b).sum() / max(1, (a | b).sum())


def test_tracker_is_a_mask_source_and_follows_a_moving_object():
    frames, truth = _clip(30)
    tracker = FlowTracker([Keyframe(0, mask=truth[0])])
    assert isinstance(tracker, MaskSource)
    out = list(tracker.pair(frames))
    assert [f.index for f, _ in out] == list(range(30))
    assert all(f is g for (f, _), g in zip(out, frames, strict=True))  # frames pass through untouched
    for _, m in out:
        assert m.shape == (H, W) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
    ious = [_iou(m, t) for (_, m), t in zip(out, truth, strict=True)]
    assert np.mean(ious[1:]) >= 0.85, ious
    assert min(ious) >= 0.6, ious
    # A static mask (no tracking) would have lost the object: the test can fail.
    assert np.mean([_iou(truth[0], t) for t in truth[20:]]) < 0.5


def test_a_checkered_object_moving_about_a_period_per_frame_is_not_lost():
    # A 22 px disc with a 6 px checkerboard, speeding up to 5.1 px per frame over a blurred noise background:
    # the flow aliases (every point of the object agrees on a motion one period short), the template alignment
    # from that motion fails, and without a second try from the object's recent motion the mask slid off the
    # object for good (mean IoU 0.42, min 0.0). Not every such case is rescued (see the tracking guide: with the
    # checker's colours swapped, or periods of 3-5 px at 4-5 px per frame, the track is still lost).
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(60, 140, (H, W, 3)).astype(np.uint8), (0, 0), 2.0)
    yy, xx = np.mgrid[0:H, 0:W]
    frames, truth = [], []
    for t in range(40):
        d = t * t / 20.0 if t < 10 else 5.0 + (t - 10)
        cx, cy = W - 30 - 4.0 * d, H - 30 - 3.2 * d
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= 11.0**2
        light = (np.floor((xx - cx) / 6) + np.floor((yy - cy) / 6)) % 2 == 1
        image = bg.copy()
        image[inside & light] = (230, 150, 230)
        image[inside & ~light] = (30, 20, 30)
        frames.append(Frame(image=image, pts=t, time_base=Fraction(1, 25), index=t))
        truth.append(np.where(inside, 255, 0).astype(np.uint8))
    out = list(FlowTracker([Keyframe(0, mask=truth[0])], on_warning=lambda m: None).pair(frames))
    ious = [_iou(m, g) for (_, m), g in zip(out, truth, strict=True)]
    # Frames 2-9 score 0.88-0.99: this picture is point-sampled, so the checker's edges snap to whole pixels while
    # the disc's outline does not, and the keyframe's shape is yielded where the checker is (see "Sixteenth pass"
    # in the tracking guide; rendered as a camera sees it, test_track_keyview.py).
    assert np.mean(ious[1:]) >= 0.95 and min(ious) >= 0.85, ious


def test_a_small_object_does_not_spread_onto_a_neighbour_moving_behind_it():
    # The bundled Big Buck Bunny excerpt at 176x144: the bunny climbs out of its burrow behind a 60 px object,
    # at about the object's speed and in its colours. The template alignment, which also scored the background
    # side of the outline, failed most frames; the template was learnt again from the mask each time, and the
    # mask spread onto the bunny (mean IoU 0.52, min 0.25), with no loss reported.
    from streamfill.api import demo_clip
    from streamfill.eval.masks import background_factory

    result = evaluate_trajectory("translate", background_factory(demo_clip(), (176, 144))(),
                                 cutouts.textured_cutout(160, 1), frames=120, ref_size=60)
    assert result.mean_iou >= 0.9 and result.min_iou >= 0.8, (result.mean_iou, result.min_iou)


def test_a_mask_spread_onto_a_moving_neighbour_is_mended_where_the_keyframe_picture_is_found():
    # A 43 px object over the bunny in the bundled excerpt at 176x144: the mask spread onto the bunny (x4 the
    # object) and the track was lost for good (mean IoU 0.38, min 0.00 before the re-detection); the keyframe's
    # picture is found again every 5 frames, and the keyframe's shape put there replaces the spread mask.
    from streamfill.api import demo_clip
    from streamfill.eval.masks import background_factory

    result = evaluate_trajectory("translate", background_factory(demo_clip(), (176, 144))(),
                                 cutouts.textured_cutout(160, 1), frames=120, ref_size=43)
    assert result.mean_iou >= 0.85 and result.min_iou >= 0.4, (result.mean_iou, result.min_iou)


def test_the_re_detection_only_mends_a_mask_that_spread_around_the_object():
    """The keyframe's shape is put where its picture is found, at its keyframe size, only over a mask that holds
    it and is at least x1.5 its area: a good, a shrunken, a shifted mask or that of a grown object is left to the
    tracker (a search that can match the object's own texture, or a look-alike nearby, must not cut or move it)."""
    from streamfill.masks import anchor, propagate

    rng = np.random.default_rng(0)
    ground = cv2.GaussianBlur(rng.normal(128, 40, (H, W)).astype(np.float32), (0, 0), 3)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)

    def shot(cx, cy, radius):
        """A disc with a smooth picture on it (which still correlates when grown a little, but tells its size:
        better at its own size by 0.075) over blurred noise: the grey frame and the disc's mask."""
        u, v = (xx - cx) / radius, (yy - cy) / radius
        inside = u * u + v * v <= 1
        picture = 128 + 70 * np.sin(6 * u + 1) * np.cos(5 * v) + 40 * u
        return np.where(inside, picture, ground).clip(0, 255).astype(np.uint8), inside

    key, key_mask = shot(80, 70, 16)
    p = propagate.Propagator(TrackConfig(), (W, H))
    p.start(np.repeat(key[..., None], 3, 2), key, key_mask.astype(np.float32))

    def mended(now, mask):
        p.tracked = anchor._REDETECT_EVERY - 1  # the next call searches
        return p._redetected(now, mask.astype(np.float32))

    now, true = shot(90, 66, 16)
    spread = cv2.dilate(true.astype(np.uint8), np.ones((13, 13), np.uint8))
    assert spread.sum() >= 1.5 * true.sum()
    placed = mended(now, spread)
    assert placed is not None and p.redetected == 1
    assert _iou(np.where(placed > 0.5, 255, 0), np.where(true, 255, 0)) >= 0.9
    assert mended(now, true) is None  # a good mask
    assert mended(now, cv2.erode(true.astype(np.uint8), np.ones((9, 9), np.uint8))) is None  # a shrunken one
    assert mended(now, np.roll(spread, 30, axis=1)) is None  # spread, but not around the object
    p.tracked = 0
    assert p._redetected(now, spread.astype(np.float32)) is None  # not a search frame
    # The object grown by a quarter: its good mask is x1.58 the keyframe's shape, and its picture at the
    # keyframe's size still correlates there, but better at a larger size, so it is not taken for it (it was
    # before that check: fresh seed 10010, min IoU 0.95 -> 0.65).
    grown_now, grown = shot(90, 66, 20)
    assert grown.sum() >= 1.5 * key_mask.sum()
    assert mended(grown_now, grown) is None
    assert p.redetected == 1


def test_a_nearly_plain_picture_does_not_tell_its_size_so_a_grown_objects_mask_is_not_cut_back():
    """A 26 px plain disc with one small dark notch, grown by x1.3: its central picture (the notch on plain grey)
    matches about as well at every size, so being found at the keyframe's size proves nothing; the good mask
    (x1.7 the keyframe's shape) must not be cut back to that shape (fresh `tiny` 10131 over `vtest.avi`:
    IoU 0.98 -> 0.51 in one frame)."""
    from streamfill.masks import anchor, propagate

    rng = np.random.default_rng(0)
    ground = cv2.GaussianBlur(rng.normal(90, 30, (H, W)).astype(np.float32), (0, 0), 3)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)

    def shot(cx, cy, radius):
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
        notch = (xx - cx - 4) ** 2 + (yy - cy + 5) ** 2 <= 9  # the same 6 px notch at any size
        picture = np.where(notch, 110.0, 200.0) + 4 * np.sin(xx / 3)
        grey = cv2.GaussianBlur(np.where(inside, picture, ground).astype(np.float32), (0, 0), 0.8)
        return grey.clip(0, 255).astype(np.uint8), inside

    key, key_mask = shot(80, 60, 13)
    p = propagate.Propagator(TrackConfig(), (W, H))
    p.start(np.repeat(key[..., None], 3, 2), key, key_mask.astype(np.float32))
    assert p.key_picture is not None
    now, grown = shot(86, 57, 13 * 1.3)
    assert grown.sum() >= anchor._REDETECT_SPREAD * key_mask.sum()
    p.tracked = anchor._REDETECT_EVERY - 1  # the next call searches
    assert p._redetected(now, grown.astype(np.float32)) is None
    assert p.redetected == 0


def test_a_repeating_picture_is_told_from_a_plain_or_random_one():
    from streamfill.masks.anchor import repeats

    yy, xx = np.mgrid[0:24, 0:30]
    assert repeats((((xx // 3) + (yy // 3)) % 2 * 200.0).astype(np.float32))  # checkerboard, 3 px squares
    assert repeats((np.sin(xx * 2 * np.pi / 5) * 80 + 120).astype(np.float32))  # stripes, 5 px period
    rng = np.random.default_rng(0)
    assert not repeats(cv2.GaussianBlur(rng.normal(120, 40, (24, 30)).astype(np.float32), (0, 0), 1.0))
    assert not repeats(np.full((24, 30), 90, np.float32))  # plain
    assert not repeats((xx * 4.0 + yy).astype(np.float32))  # a smooth gradient
    assert not repeats(np.zeros((6, 6), np.float32))  # too small to tell


def test_an_edge_or_a_bar_is_not_a_repeating_picture_but_a_slanted_checkerboard_is():
    """A straight edge or bar makes a ridge in the autocorrelation, bumpy where the picture is blurred and noisy;
    read one step towards the centre at a time, a bump looked like a repeat (half of such bars were flagged), and
    a small object's own picture was then kept from refereeing its flow (a plain orange disc with one black bar,
    `small` 10020: lost at frame 66). Repeats are still told at any slant and a period of 4-7 px."""
    from streamfill.masks.anchor import repeats

    yy, xx = np.mgrid[0:24, 0:30].astype(np.float32)

    def shot(picture, rng):  # as a camera sees it: a little blurred, a little noisy
        picture = cv2.GaussianBlur(picture.astype(np.float32), (0, 0), 0.7)
        return picture + rng.normal(0, 3, picture.shape).astype(np.float32)

    for seed in range(20):
        rng = np.random.default_rng(seed)
        slope, offset = rng.uniform(-1.5, 1.5), rng.uniform(-5, 5)
        across = ((yy - 12) - slope * (xx - 15) - offset) / np.sqrt(1 + slope**2)
        assert not repeats(shot(np.where(across > 0, 170, 60), rng))  # two tones
        assert not repeats(shot(np.where(np.abs(across) < rng.uniform(1, 2.5), 20, 165), rng))  # a bar
        turn, period = rng.uniform(0, np.pi), rng.uniform(4, 7)
        u = np.cos(turn) * xx + np.sin(turn) * yy
        v = np.cos(turn) * yy - np.sin(turn) * xx
        assert repeats(shot((np.floor(2 * u / period) + np.floor(2 * v / period)) % 2 * 150 + 50, rng))
        assert repeats(shot(np.sin(u * 2 * np.pi / period) * 70 + 120, rng))


def test_backward_tracking_from_a_later_keyframe():
    frames, truth = _clip(16)
    out = list(FlowTracker([Keyframe(10, mask=truth[10])]).pair(frames))
    assert [f.index for f, _ in out] == list(range(16))
    ious = [_iou(m, t) for (_, m), t in zip(out, truth, strict=True)]
    assert min(ious[:10]) >= 0.7, ious
    assert np.array_equal(out[10][1], truth[10])


def test_several_keyframes_later_correction_wins():
    frames, truth = _clip(20)
    wrong = np.zeros_like(truth[0])
    wrong[:20, :20] = 255  # a deliberately wrong first keyframe
    out = list(FlowTracker([Keyframe(0, mask=wrong), Keyframe(8, mask=truth[8])]).pair(frames))
    assert np.array_equal(out[8][1], truth[8])
    assert np.mean([_iou(m, t) for (_, m), t in zip(out[9:], truth[9:], strict=True)]) >= 0.85
    # backfill: frames just before the correction are re-tracked backward from it
    out = list(FlowTracker([Keyframe(0, mask=wrong), Keyframe(8, mask=truth[8])],
                           TrackConfig(backfill=3)).pair(frames))
    assert min(_iou(out[i][1], truth[i]) for i in (5, 6, 7)) >= 0.7


def test_box_keyframe_segments_the_object():
    frames, truth = _clip(30)
    frames, truth = frames[:8], truth[:8]
    ys, xs = np.nonzero(truth[0])
    box = (int(xs.min()) - 3, int(ys.min()) - 3, int(np.ptp(xs)) + 7, int(np.ptp(ys)) + 7)
    out = list(FlowTracker([Keyframe(0, box=box)]).pair(frames))
    assert _iou(out[0][1], truth[0]) >= 0.6
    assert np.mean([_iou(m, t) for (_, m), t in zip(out, truth, strict=True)]) >= 0.6


def test_a_box_around_nothing_is_tracked_whole_with_a_warning():
    frames, truth = _clip(4)
    ys, xs = np.nonzero(truth[0])
    box = (int(xs.min()) - 3, int(ys.min()) - 3, int(np.ptp(xs)) + 7, int(np.ptp(ys)) + 7)
    said = []
    list(FlowTracker([Keyframe(0, box=box)], on_warning=said.append).pair(frames[:1]))
    assert not said  # a box around the object: GrabCut finds it
    flat = [f.with_image(np.full_like(f.image, 90)) for f in frames]
    out = list(FlowTracker([Keyframe(0, box=(40, 30, 30, 20))], on_warning=said.append).pair(flat[:2]))
    assert len(said) == 1 and "stands out" in said[0] and "40,30,30,20" in said[0], said
    assert (out[0][1] > 0).sum() == 30 * 20 and out[0][1][30:50, 40:70].all()


def test_the_same_box_on_the_same_picture_gives_the_same_mask_every_time():
    # An ambiguous picture (smooth multi-scale colour noise, nothing in particular in the box), where GrabCut's
    # random start decides what it finds: before, repeated calls in one process gave masks of 1148 and 1185 px
    # and none at all (the whole box).
    rng = np.random.default_rng(4)
    picture = np.zeros((240, 320, 3), np.float32)
    for k in (4, 8, 16, 32, 64):
        coarse = rng.random((k, k * 320 // 240, 3)).astype(np.float32)
        picture += cv2.resize(coarse, (320, 240), interpolation=cv2.INTER_CUBIC) * (64 / k) ** 0.5
    picture = ((picture - picture.min()) / np.ptp(picture) * 255).astype(np.uint8)
    box = (80, 60, 107, 80)
    first = segment_box(picture, box)
    for _ in range(4):
        again = segment_box(picture, box)
        assert (again is None) == (first is None)
        assert first is None or np.array_equal(again, first)


def test_streaming_holds_no_frames_with_keyframe_zero():
    frames, truth = _clip(10)
    pulled = []

    def source():
        for f in frames:
            pulled.append(f.index)
            yield f

    it = FlowTracker([Keyframe(0, mask=truth[0])]).pair(source())
    for i in range(5):
        frame, _ = next(it)
        assert frame.index == i and len(pulled) == i + 1


def test_dilate_adds_a_safety_margin():
    frames, truth = _clip(4)
    plain = list(FlowTracker([Keyframe(0, mask=truth[0])]).pair(frames))
    wide = list(FlowTracker([Keyframe(0, mask=truth[0])], dilate=4).pair(frames))
    for (_, a), (_, b) in zip(plain, wide, strict=True):
        assert (b >= a).all() and (b > 0).sum() > (a > 0).sum()


def test_many_cuts_after_the_track_stopped_say_so_once():
    """A clip of many short shots: the first cut stops the track (one warning); later cuts change nothing and
    are not announced again, until a keyframe starts a new track."""
    a, ta = _clip(4, seed=0)
    shots = [cutouts.textured_image(H, W, seed=20 + k)[..., ::-1].copy() for k in range(6)]
    rest = [Frame(np.ascontiguousarray(shots[i % 6]), pts=0, time_base=Fraction(1, 50), index=4 + i)
            for i in range(12)]
    messages = []
    out = list(FlowTracker([Keyframe(0, mask=ta[0])], on_warning=messages.append).pair(a + rest))
    assert len(out) == 16
    cuts = [m for m in messages if "scene cut" in m]
    assert len(cuts) == 1 and "scene cut at frame 4: mask tracking stopped" in cuts[0], messages


def test_scene_cut_stops_tracking_with_a_warning_or_resumes_from_a_keyframe():
    a, ta = _clip(6, seed=0)
    rng = np.random.default_rng(5)
    other = cutouts.textured_image(H, W, seed=9)[..., ::-1] // 2 + rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
    b = [Frame(np.ascontiguousarray(other), pts=0, time_base=Fraction(1, 50), index=6 + i) for i in range(4)]
    messages = []
    out = list(FlowTracker([Keyframe(0, mask=ta[0])], on_warning=messages.append).pair(a + b))
    assert len(out) == 10
    assert any("scene cut at frame 6" in m for m in messages)
    assert all(not m.any() for _, m in out[6:]) and out[5][1].any()
    # through the warnings module when no callback is given
    with pytest.warns(TrackingWarning, match="scene cut") as record:
        list(FlowTracker([Keyframe(0, mask=ta[0])]).pair(a + b))
    assert len(record) == 1  # one notice, not one per frame
    # a keyframe after the cut: the new shot is tracked (backward to the cut, forward after)
    k = np.zeros((H, W), np.uint8)
    k[40:80, 50:100] = 255
    messages.clear()
    out = list(FlowTracker([Keyframe(0, mask=ta[0]), Keyframe(8, mask=k)], on_warning=messages.append).pair(a + b))
    assert any("resumes from keyframe 8" in m for m in messages)
    assert all(_iou(m, k) > 0.8 for _, m in out[6:])  # the second shot is still: the mask stays put


def test_bad_keyframes_fail_with_clear_errors():
    frames, truth = _clip(3)
    with pytest.raises(MaskError, match="outside the 192x144 frame"):
        list(FlowTracker([Keyframe(0, box=(150, 10, 60, 20))]).pair(frames))
    with pytest.raises(MaskError, match="beyond the end of the clip"):
        list(FlowTracker([Keyframe(7, mask=truth[0])]).pair(frames))
    with pytest.raises(MaskError, match="but the video is 192x144"):
        list(FlowTracker([Keyframe(0, mask=np.zeros((10, 10), np.uint8))]).pair(frames))
    with pytest.raises(MaskError, match="two keyframes for frame 0"):
        FlowTracker([Keyframe(0, mask=truth[0]), Keyframe(0, box=(1, 1, 5, 5))])
    with pytest.raises(MaskError):
        FlowTracker([])
    with pytest.raises(InputError, match="x,y,w,h"):
        parse_box("1,2,3")
    with pytest.raises(InputError, match="positive"):
        parse_box("1,2,0,4")
    assert parse_box("1, 2,3,4@7") == Keyframe(7, box=(1, 2, 3, 4))
    assert parse_box("1,2,3,4", default_frame=2).index == 2


def test_scene_cut_detector():
    d = SceneCutDetector(0.4)
    a = cutouts.textured_image(H, W, 1)
    assert not d.update(a)
    assert not d.update(np.roll(a, 3, axis=1))  # a small pan is not a cut
    assert not d.update(np.clip(a.astype(int) + 30, 0, 255).astype(np.uint8))  # nor a brightness change
    b = np.zeros_like(a)
    b[..., 2] = 200
    b[::2, :, 0] = 90
    assert d.update(b)
    # A cut between two shots of the same colours (here the very same colour histogram: the picture's tiles
    # shuffled) is found by the structure test; the colour test alone missed such a cut in the suite.
    d = SceneCutDetector(0.4)
    assert not d.update(a) and not d.update(np.roll(a, 2, axis=0))
    assert not d.update(np.roll(a, (17, -23), axis=(0, 1)))  # nor a big jump of the whole picture (a shake)
    assert d.update(_shuffled(a))
    assert d.last_distance < 0.4 and d.last_correlation < 0.5
    plain = np.full_like(a, 120)  # plain frames: no structure to compare, so only the colour test counts
    d = SceneCutDetector(0.4)
    assert not d.update(plain) and not d.update(plain + 3) and d.last_correlation == 1.0


def _shuffled(image: np.ndarray, tile: int = 24) -> np.ndarray:
    """The picture's tiles in a random order: the same colours, another picture."""
    h, w = image.shape[:2]
    tiles = [image[y : y + tile, x : x + tile] for y in range(0, h, tile) for x in range(0, w, tile)]
    out = np.empty_like(image)
    for i, j in enumerate(np.random.default_rng(0).permutation(len(tiles))):
        y, x = divmod(i, w // tile)
        out[y * tile : (y + 1) * tile, x * tile : (x + 1) * tile] = tiles[j]
    return out


def test_a_cut_to_a_shot_of_the_same_colours_stops_tracking():
    a, ta = _clip(8, seed=2)
    b = [Frame(_shuffled(f.image), pts=f.pts, time_base=f.time_base, index=8 + f.index) for f in a[:4]]
    messages = []
    out = list(FlowTracker([Keyframe(0, mask=ta[0])], on_warning=messages.append).pair(a + b))
    assert any("scene cut at frame 8" in m for m in messages)
    assert out[7][1].any() and all(not m.any() for _, m in out[8:])


def test_no_code_path_grows_the_mask_more_than_the_bound_in_one_frame(monkeypatch):
    """Whatever path makes a frame's mask (here every one is forced to return a huge shape: the anchor's
    alignment, the wider search, the colour pull / clean-up), the area yielded grows at most x_MAX_AREA_STEP
    (plus a few px) per frame."""
    from streamfill.masks import propagate

    frames, truth = _clip(12, seed=1, size=40)
    finish = propagate.Propagator._finish

    def huge(self, warped, rgb, trusted, colour=True):
        obj, p = finish(self, warped, rgb, trusted, colour)
        return np.ones_like(obj), np.ones_like(p)  # the whole region of interest

    def far(self, grey, guess, *args, **kwargs):
        out = guess.copy()
        out[:, :2] *= 3.0  # x9 the area, well correlated
        return out, 0.99

    monkeypatch.setattr(propagate.Propagator, "_finish", huge)
    monkeypatch.setattr(propagate.Propagator, "_refine", far)
    monkeypatch.setattr(propagate.Propagator, "_reseek", far)
    tracker = FlowTracker([Keyframe(0, mask=truth[0])])
    areas = [int((m > 127).sum()) for _, m in tracker.pair(frames)]
    for before, after in zip(areas[:-1], areas[1:], strict=True):
        assert after <= propagate._MAX_AREA_STEP * before + 2 * propagate._AREA_SLACK, areas
    # and from an empty mask, a few px per frame, not the whole shape at once
    empty = np.zeros((H, W), np.uint8)
    tracker = FlowTracker([Keyframe(0, mask=empty)], on_warning=lambda m: None)
    areas = [int((m > 127).sum()) for _, m in tracker.pair(frames[:4])]
    assert areas[0] == 0 and areas[1] <= 2 * propagate._AREA_SLACK


def test_flow_keeps_two_pyramid_levels_for_mid_sized_objects():
    # An object region of ~100 working px is where the fast preset's finest DIS level equals the coarsest one
    # OpenCV builds: DIS then ran on a single level and lost the object behind the occluder (mean IoU 0.59,
    # min 0.17 on this very run before the fix).
    from streamfill.masks.propagate import _finest_level

    assert _finest_level((100, 100), 8, 2) == 1      # coarsest level 2 there: one level below it
    assert _finest_level((40, 40), 8, 2) == 0
    assert _finest_level((540, 960), 8, 2) == 2      # big regions keep the preset's level
    result = evaluate_trajectory(
        "occlusion", cutouts.synthetic_backgrounds(240, 320, 3), cutouts.textured_cutout(96, 4), frames=60,
        ref_size=120,
    )
    assert result.mean_iou >= 0.9 and result.min_iou >= 0.7, (result.mean_iou, result.min_iou)


def test_trackconfig_validates():
    from streamfill.errors import ConfigError

    with pytest.raises(ConfigError, match="track.scale"):
        TrackConfig(scale=0)
    with pytest.raises(ConfigError, match="track.preset"):
        TrackConfig(preset="slow")


def test_benchmark_reports_iou_drift_and_timing():
    result = evaluate_trajectory(
        "rotate", cutouts.synthetic_backgrounds(H, W, 3), cutouts.textured_cutout(96, 4), frames=20,
        ref_size=50,
    )
    assert len(result.iou) == len(result.ms) == len(result.centroid_error) == 20
    assert result.iou[0] == 1.0 and result.mean_iou >= 0.8
    assert len(result.drift(10)) == 2  # frames 1-10 and 11-19: the keyframe (IoU 1 by construction) is left out
    assert result.drift(10)[0] == pytest.approx(np.mean(result.iou[1:11]))
    report = evaluate_masks(None, None, trajectories=("translate", "occlusion"), frames=12, size=(W, H))
    data = json.loads(report.to_json())
    assert [t["name"] for t in data["trajectories"]] == ["translate", "occlusion"]
    assert 0.0 <= data["min_iou"] <= data["mean_iou"] <= 1.0
    table = report.table()
    assert "occlusion" in table and "mean IoU" in table
    with pytest.raises(InputError, match="unknown trajectory"):
        evaluate_masks(None, None, trajectories=("zigzag",), frames=5)
    with pytest.raises(InputError, match="only 3 frames"):
        backgrounds = iter([cutouts.textured_image(H, W)] * 3)
        evaluate_trajectory("translate", backgrounds, cutouts.textured_cutout(32), frames=5)


def test_warnings_module_not_used_when_callback_given():
    frames, truth = _clip(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(FlowTracker([Keyframe(0, mask=truth[0])], Config().track, on_warning=lambda m: None).pair(frames))


# -- lost tracks, bounded motion, working scale, the hard-case suite -----------------------------------------

def _lost_clip(kind: str, n: int = 60):
    """A 48 px object that leaves the frame at ~frame 14 and is gone until frame 50 (``leave``), or that an
    opaque square hides completely from frame 20 to 49 (``occlude``)."""
    bgs = cutouts.synthetic_backgrounds(H, W, 5)
    obj = cutouts.textured_cutout(96, 11)
    occ = cutouts.textured_cutout(96, 23)
    occ[..., 3] = 255
    frames, truth = [], []
    for t in range(n):
        if kind == "leave":
            x = min(0.3 + 0.05 * t, 1.4) if t < 50 else 0.5
            layers = [cutouts.place(obj, cutouts.Pose(x, 0.5), (H, W), 48)]
        else:
            layers = [cutouts.place(obj, cutouts.Pose(0.3 + 0.004 * t, 0.5), (H, W), 48)]
            if 20 <= t < 50:
                layers.append(cutouts.place(occ, cutouts.Pose(0.3 + 0.004 * t, 0.5), (H, W), 80))
        image, visible = cutouts.composite(next(bgs), layers)
        frames.append(Frame(image=image, pts=t, time_base=Fraction(1, 25), index=t))
        truth.append(np.where(visible[0] > 0.5, 255, 0).astype(np.uint8))
    return frames, truth


@pytest.mark.parametrize("kind", ["leave", "occlude"])
def test_a_lost_track_is_reported_with_its_frame_range(kind):
    frames, truth = _lost_clip(kind)
    messages, stretches = [], []
    tracker = FlowTracker([Keyframe(0, mask=truth[0])], on_warning=messages.append,
                          on_lost=lambda a, b: stretches.append((a, b)))
    confidence = []
    for _ in tracker.pair(frames):
        confidence.append(tracker.confidence)
    assert len(tracker.lost) == 1 and stretches == tracker.lost
    first, last = tracker.lost[0]
    gone = range(16, 50) if kind == "leave" else range(20, 50)  # frames without any visible object
    assert first <= gone.start and last >= gone.stop - 1, tracker.lost
    assert first >= 8  # not before it happened: the object was in plain view
    assert min(confidence[:8]) >= 0.5
    assert tracker.lost_frames == last - first + 1
    assert messages == [f"track of the object lost at frames {first}-{last}; add a --box there or check the preview"]


def _disc_clip(background: str, event: str, gone: int, n: int = 50, margin: int = 6):
    """A plain red disc (radius 18) drifting right 1 px/frame over a plain or a textured (panning) background;
    from frame 12 on, for ``gone`` frames, it is cut out (``vanish``: the background shows where it was) or an
    opaque textured square covers it (``occlude``). Keyframe 0's mask is drawn ``margin`` px wider than the
    disc, as a brush stroke is. Returns the frames, the keyframe mask and the frames without the disc."""
    yy, xx = np.mgrid[0:H, 0:W]
    bgs = cutouts.synthetic_backgrounds(H, W, 5) if background == "textured" else None
    cover = cutouts.textured_image(H, W, 23)
    hidden = range(12, 12 + gone)
    frames = []
    for t in range(n):
        image = next(bgs) if bgs is not None else np.full((H, W, 3), (90, 110, 130), np.uint8)
        cx, cy = 60 + t, 72
        if t not in hidden or event == "occlude":
            image[(xx - cx) ** 2 + (yy - cy) ** 2 < 18**2] = (220, 60, 40)
        if t in hidden and event == "occlude":
            square = (abs(xx - cx) < 28) & (abs(yy - cy) < 28)
            image[square] = cover[square]
        frames.append(Frame(image=image, pts=t, time_base=Fraction(1, 25), index=t))
    key = np.where((xx - 60) ** 2 + (yy - 72) ** 2 < (18 + margin) ** 2, 255, 0).astype(np.uint8)
    return frames, key, hidden


@pytest.mark.parametrize("event,gone", [("vanish", 10), ("vanish", 30), ("occlude", 30)])
@pytest.mark.parametrize("background", ["plain", "textured"])
def test_a_lost_track_is_reported_when_the_keyframe_mask_is_wider_than_the_object(background, event, gone):
    """A mask drawn a little wider than the object (a brush stroke, a hand-drawn outline) holds some of the
    background. Scored against all the colours under the keyframe's mask, the background left where the object
    had vanished still agreed (confidence ~0.4 on the plain disc): nothing was reported lost, and the studio's
    timeline showed no weak frame. The confidence now counts the object's own colours."""
    frames, key, hidden = _disc_clip(background, event, gone)
    messages = []
    tracker = FlowTracker([Keyframe(0, mask=key)], on_warning=messages.append)
    confidence = [tracker.confidence for _ in tracker.pair(frames)]
    assert min(confidence[:hidden.start]) >= 0.5  # in plain view before
    assert tracker.lost, confidence
    first, last = tracker.lost[0]
    assert hidden.start <= first <= hidden.start + 1 and last >= hidden.stop - 1, tracker.lost
    assert messages[0] == f"track of the object lost at frames {first}-{last}; add a --box there or check the preview"


def test_a_keyframe_mask_wider_than_the_object_is_not_reported_lost():
    frames, truth = _clip(30)
    key = cv2.dilate(truth[0], cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13)))  # 6 px wider
    tracker = FlowTracker([Keyframe(0, mask=key)], on_warning=lambda m: None)
    confidence = [tracker.confidence for _ in tracker.pair(frames)]
    assert tracker.lost == [] and min(confidence) >= 0.5, confidence
    disc, key, _ = _disc_clip("textured", "vanish", 0)
    tracker = FlowTracker([Keyframe(0, mask=key)], on_warning=lambda m: None)
    confidence = [tracker.confidence for _ in tracker.pair(disc)]
    assert tracker.lost == [] and min(confidence) >= 0.5, confidence


def test_an_untroubled_track_is_not_reported_lost():
    frames, truth = _clip(30)
    messages = []
    tracker = FlowTracker([Keyframe(0, mask=truth[0])], on_warning=messages.append)
    list(tracker.pair(frames))
    assert tracker.lost == [] and tracker.lost_frames == 0 and messages == []


def test_motion_bounds_refuse_implausible_steps_and_ecc_guards():
    from streamfill.masks.geometry import decompose
    from streamfill.masks.propagate import Propagator

    p = Propagator(TrackConfig(), (64, 64))
    yy, xx = np.mgrid[0:64, 0:64]
    mask = ((xx - 32) ** 2 + (yy - 32) ** 2 < 15**2).astype(np.float32)
    grey = np.full((64, 64), 128, np.uint8)  # a plain object: nothing for ECC to align
    p.start(np.dstack([grey] * 3), grey, mask)
    ls, ang, aniso = decompose(np.array([[2.0, 0, 0], [0, 2.0, 0]]))
    assert abs(ls - np.log(2)) < 1e-9 and abs(ang) < 1e-9 and abs(aniso) < 1e-9
    assert p._plausible(np.array([[1.03, 0, 1.0], [0, 1.03, -2.0]]))
    assert not p._plausible(np.array([[3.6, 0, 0], [0, 3.6, 0]]))  # x13 the area in one frame
    c, s = np.cos(np.radians(40)), np.sin(np.radians(40))
    assert not p._plausible(np.array([[c, -s, 0], [s, c, 0]]))
    assert not p._plausible(np.array([[1.3, 0.4, 0], [0, 0.8, 0]]))  # slanted
    guess = np.eye(2, 3)
    visible = (mask > 0.5).astype(np.uint8)
    warp, rho = p._refine(grey, guess, visible, (0, 0, 64, 64))
    assert rho == 0.0 and np.array_equal(warp, guess)  # refused before ECC could fail on a flat template


@pytest.mark.parametrize("diverged", [
    [[0.02, 0.0, -3500.0], [0.0, 0.02, 2700.0]],  # flattened to a few pixels, thousands of px off
    [[1.0, 0.0, 90.0], [0.0, 1.0, 5.0]],  # the template's centre carried out of the searched image
    [[2.5, 0.0, -20.0], [0.0, 2.5, -20.0]],  # six times the area
])
def test_an_ecc_alignment_that_diverged_is_a_failure_not_a_match(monkeypatch, diverged):
    from streamfill.masks import geometry

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.uniform(0, 255, (60, 60)).astype(np.float32), (0, 0), 2.0)
    template = np.ascontiguousarray(image[14:46, 10:42])
    mask = np.full(image.shape, 255, np.uint8)
    start = np.array([[1.0, 0.0, 8.0], [0.0, 1.0, 13.0]])
    rho, warp = geometry.ecc(template, image, start, mask, True)  # a real alignment still works
    assert rho > 0.95 and np.allclose(warp[:, 2], [10.0, 14.0], atol=0.3)
    # ECC can settle on a degenerate warp with a correlation of 1.0: that must read as a failure, so that
    # the tracker goes on to its wider searches.
    monkeypatch.setattr(geometry.cv2, "findTransformECC", lambda *a: (1.0, np.array(diverged, np.float32)))
    rho, warp = geometry.ecc(template, image, start, mask, True)
    assert rho == 0.0 and np.array_equal(warp, start)


def test_mask_area_never_multiplies_in_one_frame_and_small_objects_get_a_finer_scale():
    from streamfill.eval.masks import evaluate_scene

    r = evaluate_scene("tiny", 0, frames=30)
    assert r.size == (176, 144)
    assert r.max_area_change <= 2.0, r.max_area_change
    assert r.mean_iou >= 0.6 and len(r.cpu_ms) == len(r.confidence) == 30
    tiny = FlowTracker([Keyframe(0, box=(10, 10, 20, 20))])
    assert tiny._working_scale(176, 144) == 1.0  # small objects: full resolution
    assert tiny._working_scale(768, 576) == 1.0
    mid = FlowTracker([Keyframe(0, box=(10, 10, 100, 80))])
    assert mid._working_scale(768, 576) == pytest.approx(0.64)  # ~64 working px across
    big = FlowTracker([Keyframe(0, box=(10, 10, 300, 300))])
    assert big._working_scale(768, 576) == TrackConfig().scale


def test_the_suite_times_the_tracker_on_one_opencv_thread_and_gives_the_threads_back(monkeypatch):
    """CPU time per frame counts OpenCV's idle worker threads too, more the emptier the machine: the suite
    times the tracker with OpenCV on one thread, and leaves the thread count as it found it."""
    from streamfill.eval import masks as eval_masks

    seen = []
    pair = FlowTracker.pair

    def watched(self, frames):
        for item in pair(self, frames):
            seen.append(cv2.getNumThreads())
            yield item

    monkeypatch.setattr(FlowTracker, "pair", watched)
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        r = eval_masks.evaluate_scene("tiny", 1, frames=4)
        assert seen == [1, 1, 1, 1] and len(r.cpu_ms) == 4
        assert cv2.getNumThreads() == 2
        with pytest.raises(RuntimeError), eval_masks.one_opencv_thread():
            raise RuntimeError("a failing run")
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)


@pytest.mark.slow
def test_suite_reports_every_case_and_seed_and_keeps_held_out_apart():
    from streamfill.eval.masks import evaluate_suite
    from streamfill.masks import scenes

    for case in scenes.CASES:  # every generator runs and yields truth of the frame's size
        f = next(scenes.render(case, 0, frames=4))
        assert f.truth.shape == f.image.shape[:2] and f.truth.any()
    report = evaluate_suite(("cut", "foliage"), (0, 1), frames=9)
    assert [(r.case, r.seed) for r in report.results] == [("cut", 0), ("cut", 1), ("foliage", 0), ("foliage", 1)]
    cut = report.results[0]
    assert cut.truth_absent == list(range(6, 9))  # the object is not in the new shot
    assert cut.iou[6:] == [1.0, 1.0, 1.0]  # and the tracker stopped at the cut
    table = report.table()
    assert "worst seed" in table and "area x" in table
    data = json.loads(report.to_json())
    assert data["summary"]["runs"] == 4 and len(data["runs"][0]["iou"]) == 9
    held = evaluate_suite(("tiny",), held_out=True, frames=3)
    assert [r.seed for r in held.results] == [1000, 1001]
    with pytest.raises(InputError, match="unknown case"):
        evaluate_suite(("meadow",), frames=3)


def test_the_suite_reports_the_objects_size_at_frame_0_and_the_smallest_it_gets():
    """The path scales the object by up to +-30 % and turns it, so its size at frame 0 alone hid that a `small`
    object can be shorter than 20 px later (the issue's targets are for objects from 20 px up)."""
    from streamfill.eval.masks import SuiteReport, evaluate_scene
    from streamfill.masks import scenes

    def longer(truth):
        x, y, w, h = cv2.boundingRect(truth.astype(np.uint8))
        return max(w, h)

    sides = [longer(f.truth) for f in scenes.render("small", 1, frames=40)]
    assert min(sides) < sides[0]  # this seed's object shrinks: the two numbers differ
    r = evaluate_scene("small", 1, frames=40)
    assert (r.object_px, r.object_min_px) == (sides[0], min(sides))
    assert r.to_dict(per_frame=False)["object_min_px"] == min(sides)
    head, _, row = SuiteReport([r], {}).table().splitlines()[:3]
    assert "min px" in head and f"{sides[0]:6d} {min(sides):6d}" in row


def test_suite_scenes_go_through_h264_and_over_a_real_backdrop_with_the_same_object():
    from streamfill.eval.masks import codec_roundtrip, evaluate_scene
    from streamfill.masks import scenes

    plain = list(scenes.render("tiny", 3, frames=6))
    coded = codec_roundtrip([f.image for f in plain], "h264")
    assert len(coded) == 6 and coded[0].shape == plain[0].image.shape
    err = [np.abs(c.astype(np.float32) - f.image).mean() for c, f in zip(coded, plain, strict=True)]
    assert all(0.3 < e < 12 for e in err), err  # a lossy round trip, not a copy and not garbage
    assert codec_roundtrip(coded, "none") is coded
    with pytest.raises(InputError, match="unknown codec"):
        codec_roundtrip(coded, "vp9")
    with pytest.raises(InputError, match="must be even"):
        codec_roundtrip([np.zeros((31, 40, 3), np.uint8)] * 2, "h264")
    # a backdrop replaces the background only: the seed's object, path and truth are the same
    clip = [np.full((60, 80, 3), (40 * i) % 250, np.uint8) for i in range(5)]
    over = list(scenes.render("tiny", 3, frames=6, backdrop=clip))
    assert all(np.array_equal(a.truth, b.truth) for a, b in zip(plain, over, strict=True))
    far = ~cv2.dilate(over[2].truth.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    values = {int(round(float(np.median(f.image[far])))) for f in over}
    assert len(values) > 2  # the clip's frames (played back and forth from a seed-chosen frame), not one picture
    for f in over:
        assert np.abs(f.image[far].astype(np.float32) - np.median(f.image[far])).mean() < 4  # plain grey + noise
    r = evaluate_scene("tiny", 3, frames=6, codec="h264", backdrop=clip)
    assert len(r.iou) == 6 and r.mean_iou > 0.5


def test_the_h264_round_trip_gives_the_same_pixels_every_time():
    """An A/B comparison through `--codec h264` must show both trackers the same frames. libx264's assembly
    reads past the rows of a frame whose width is not a multiple of 64 (here 176): the same frames gave a
    different stream from run to run (a scene's mean IoU moved by up to 0.013), so the round trip encodes
    without it, on one thread."""
    from streamfill.eval.masks import codec_roundtrip
    from streamfill.masks import scenes

    images = [f.image for f in scenes.render("tiny", 9, frames=60)]
    first = codec_roundtrip(images, "h264")
    for _ in range(3):
        again = codec_roundtrip(images, "h264")
        assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_the_trajectory_benchmark_tracks_the_frames_as_the_codec_left_them(monkeypatch):
    import streamfill.eval.masks as em
    from streamfill.masks import track

    coded, seen = [], []
    real_roundtrip, real_pair = em.codec_roundtrip, track.FlowTracker.pair

    def roundtrip(images, codec):
        out = real_roundtrip(images, codec)
        coded.extend(out)
        return out

    def pair(self, frames):
        for frame, mask in real_pair(self, frames):
            seen.append(frame.image)
            yield frame, mask

    monkeypatch.setattr(em, "codec_roundtrip", roundtrip)
    monkeypatch.setattr(track.FlowTracker, "pair", pair)
    result = evaluate_trajectory("translate", cutouts.synthetic_backgrounds(H, W, 3), cutouts.textured_cutout(64, 4),
                                 frames=20, ref_size=40, codec="h264")
    assert len(result.iou) == len(result.ms) == 20 and result.mean_iou > 0.7
    assert len(coded) == len(seen) == 20 and all(a is b for a, b in zip(coded, seen, strict=True))
    seen.clear()
    evaluate_trajectory("translate", cutouts.synthetic_backgrounds(H, W, 3), cutouts.textured_cutout(64, 4),
                        frames=20, ref_size=40)
    assert len(coded) == 20 and len(seen) == 20  # without a codec, no round trip
    errors = [np.abs(a.astype(np.float32) - b).mean() for a, b in zip(coded, seen, strict=True)]
    assert all(0.1 < e < 12 for e in errors), errors  # the tracker saw lossy copies of the composited frames


def test_live_retarget_reports_the_track_state_for_stats_and_the_control_socket():
    from streamfill.build import make_live_tracker
    from streamfill.pipeline.live import Retarget
    from streamfill.pipeline.live_stats import LiveStats

    frames, truth = _lost_clip("occlude", n=40)
    retarget = Retarget(make_live_tracker(Config()), initial=("mask", truth[0]))
    states = []
    for _pair in retarget.pair(iter(frames)):
        states.append(retarget.track_status())
    assert states[5]["confidence"] >= 0.5 and states[5]["lost_since"] is None
    assert 20 <= states[30]["lost_since"] <= 24  # lost now, reported while it goes on
    assert states[-1]["lost_frames"] >= 15
    assert "track" in LiveStats().as_dict()


def test_a_jump_the_flow_missed_is_found_again_by_the_wider_search():
    from streamfill.masks.propagate import Propagator

    bg = next(cutouts.synthetic_backgrounds(H, W, 3))
    cut = cutouts.textured_cutout(96, 4)

    def shot(cx, cy, angle):
        layer = cutouts.place(cut, cutouts.Pose(cx / W, cy / H, 1.0, angle), (H, W), 44)
        image, visible = cutouts.composite(bg, [layer])
        return image, (visible[0] > 0.5).astype(np.float32)

    img0, mask0 = shot(90, 70, 0.0)
    img1, mask1 = shot(104, 58, 6.0)  # 14 px right, 12 px up, turned 6 degrees: beyond ECC's reach
    p = Propagator(TrackConfig(), (W, H))
    grey0, grey1 = (np.asarray(np.dot(i[..., :3], [0.299, 0.587, 0.114]), np.uint8) for i in (img0, img1))
    p.start(img0, grey0, mask0)
    guess = np.eye(2, 3)  # the flow saw no motion
    assert p._reseek(grey1, guess, guess, 0.0)[1] == 0.0  # without the picture's colours: not trusted
    warp, rho = p._reseek(grey1, guess, guess, 0.0, img1)
    assert rho >= TrackConfig().anchor_corr and p.reseeks == 1
    moved = cv2.warpAffine(p.tmpl[1], warp, (W, H)) > 0.5
    assert _iou(moved.astype(np.uint8) * 255, mask1.astype(np.uint8) * 255) >= 0.8
    # Without the wider search the guess is where the object was: a third or more of it outside.
    assert _iou(mask0.astype(np.uint8) * 255, mask1.astype(np.uint8) * 255) < 0.5


def test_the_mask_follows_the_place_the_wider_search_found_even_when_its_fit_is_slanted(monkeypatch):
    from streamfill.masks.anchor import template_centre
    from streamfill.masks.geometry import compose
    from streamfill.masks.propagate import Propagator

    bg = next(cutouts.synthetic_backgrounds(H, W, 3))
    cut = cutouts.textured_cutout(96, 4)

    def shot(cx, cy, angle):
        layer = cutouts.place(cut, cutouts.Pose(cx / W, cy / H, 1.0, angle), (H, W), 44)
        image, visible = cutouts.composite(bg, [layer])
        grey = np.asarray(np.dot(image[..., :3], [0.299, 0.587, 0.114]), np.uint8)
        return image, grey, (visible[0] > 0.5).astype(np.uint8) * 255

    img0, grey0, mask0 = shot(90, 70, 0.0)
    img1, grey1, mask1 = shot(104, 58, 6.0)  # as above; the flow's fit is made to fail (as in a blurred frame)
    p = Propagator(TrackConfig(), (W, H))
    p.start(img0, grey0, (mask0 > 127).astype(np.float32))
    monkeypatch.setattr(p, "_fit_step", lambda *a: None)
    real_reseek = p._reseek

    def slanted_reseek(*args):
        # The place is right, but the fit is stretched by 1.2 along x (as motion blur makes it): beyond the
        # per-frame bound on slant, so its shape is not taken, only its place.
        warp, rho = real_reseek(*args)
        c = warp[:, :2] @ template_centre(p.tmpl) + warp[:, 2]
        stretch = np.array([[1.2, 0.0, -0.2 * c[0]], [0.0, 1.0, 0.0]])
        return compose(stretch, warp), rho

    monkeypatch.setattr(p, "_reseek", slanted_reseek)
    soft = p.step(img1, grey1)
    assert p.reseeks == 1
    mask = np.where(soft > 0.5, 255, 0).astype(np.uint8)
    assert _iou(mask, mask1) >= 0.85  # the object where it was found, in its last shape
    assert _iou(mask0, mask1) < 0.5  # (where it had been: most of it elsewhere)


def _pose_clip(poses, size, seed=0, shifts=None):
    """Frames of one textured object at ``poses`` (cutouts.Pose per frame) over a still textured background;
    ``shifts[t]`` (dx, dy) moves the whole picture (a camera jump). Returns frames and true masks."""
    bg = next(cutouts.synthetic_backgrounds(H + 80, W + 80, seed))
    cut = cutouts.textured_cutout(96, seed + 1)
    frames, truth = [], []
    for t, pose in enumerate(poses):
        dx, dy = shifts[t] if shifts is not None else (0, 0)
        view = np.ascontiguousarray(bg[40 - dy : 40 - dy + H, 40 - dx : 40 - dx + W])
        pose = cutouts.Pose(pose.cx + dx / W, pose.cy + dy / H, pose.scale, pose.angle)
        image, visible = cutouts.composite(view, [cutouts.place(cut, pose, (H, W), size)])
        frames.append(Frame(image=image, pts=t, time_base=Fraction(1, 25), index=t))
        truth.append(np.where(visible[0] > 0.5, 255, 0).astype(np.uint8))
    return frames, truth


def test_the_mask_yielded_holds_the_unsure_pixels_of_the_soft_state(monkeypatch):
    """The tracked state lags the outline inwards by a fraction of a pixel, so a tracked frame's mask is its
    upsampled soft state above 0.3, not 0.5 (docs/guide/tracking.md, "Fourth pass"); keyframes pass as given.
    Those unsure pixels may add at most 30 % to the area: more, and the mask is the sure part alone (the area
    bound holds on the state, and so on what is yielded)."""
    from streamfill.masks import propagate

    frames, truth = _clip(3, size=40)
    soft = np.full((H, W), 0.8, np.float32)
    monkeypatch.setattr(propagate.Propagator, "step", lambda self, rgb, grey: soft)
    soft[:, :20], soft[:, 20:40] = 0.25, 0.4  # 20 columns out, 20 unsure columns in (+13 %)
    tracker = FlowTracker([Keyframe(0, mask=truth[0])])
    out = [m for _, m in tracker.pair(frames)]
    assert tracker._small == (W, H)  # a 40 px object is tracked at full resolution: no resampling here
    assert np.array_equal(out[0], truth[0])
    for m in out[1:]:
        assert np.array_equal(m > 127, soft > 0.3) and (m > 127)[:, 20:].all()
    soft[:, 20:150] = 0.4  # unsure pixels that would make the area x4: the sure ones alone
    out = [m for _, m in FlowTracker([Keyframe(0, mask=truth[0])]).pair(frames)]
    for m in out[1:]:
        assert np.array_equal(m > 127, soft > 0.5)


def test_a_small_growing_object_keeps_its_size():
    """A 24 px object growing by half over 60 frames: its template is aligned by translation only (too small
    for an affine fit), so its scale is measured against the template too, not only summed from the flow
    (which left the mask at 0.87-0.90 of the object's area over the last frames)."""
    n = 60
    poses = [cutouts.Pose(0.4 + 0.003 * t, 0.5, 1.0 + 0.5 * t / (n - 1), 0.0) for t in range(n)]
    frames, truth = _pose_clip(poses, 24, seed=4)
    out = [m for _, m in FlowTracker([Keyframe(0, mask=truth[0])]).pair(frames)]
    ratio = [(m > 127).sum() / (g > 127).sum() for m, g in zip(out[-10:], truth[-10:], strict=True)]
    ious = [_iou(m, g) for m, g in zip(out, truth, strict=True)]
    assert min(ratio) >= 0.91 and min(ious) >= 0.8, (ratio, min(ious))


@pytest.mark.parametrize("seed", [6, 12])
def test_a_small_deforming_object_does_not_shrink_under_its_anchor(seed):
    """`tiny` scenes (176x144, a 25-30 px object that deforms while the camera pans; synthetic textures): the
    alignment's scale is off by a few % either way from frame to frame, and with the anchored shape alone
    deciding where the flow follows the object (the flow may only take pixels away), a too small one cut the
    mask and a too large one could not grow it back. The main branch's tracker ended at 0.92 of the object's
    area (mean IoU 0.90); now the flow has its share in the shape and the scale correction is damped."""
    from streamfill.masks import scenes

    rendered = list(scenes.render("tiny", seed, frames=90))
    frames = [Frame(image=f.image, pts=t, time_base=Fraction(1, 25), index=t) for t, f in enumerate(rendered)]
    key = np.where(rendered[0].truth, 255, 0).astype(np.uint8)
    out = [m > 127 for _, m in FlowTracker([Keyframe(0, mask=key)]).pair(frames)]
    truth = [f.truth for f in rendered]
    ratio = np.mean([m.sum() / g.sum() for m, g in zip(out[-30:], truth[-30:], strict=True)])
    iou = np.mean([(m & g).sum() / (m | g).sum() for m, g in zip(out[1:], truth[1:], strict=True)])
    assert ratio >= 0.93 and iou >= 0.92, (ratio, iou)


def test_a_camera_jump_is_followed():
    """The whole picture jumps 22 px in one frame, with motion blur (a shake): the flow starts from the jump,
    measured around the object, and the mask stays on it (from zero, the flow lost it: IoU 0.07 then)."""
    from streamfill.masks import scenes

    n = 10
    poses = [cutouts.Pose(0.3 + 0.003 * t, 0.3) for t in range(n)]
    shifts = [(0, 0)] * 6 + [(-12, 18)] * (n - 6)
    frames, truth = _pose_clip(poses, 30, seed=6, shifts=shifts)
    f = frames[6]
    frames[6] = Frame(scenes._motion_blur(f.image, -12.0, 18.0), pts=f.pts, time_base=f.time_base, index=f.index)
    tracker = FlowTracker([Keyframe(0, mask=truth[0])])
    ious = [_iou(m, g) for (_, m), g in zip(tracker.pair(frames), truth, strict=True)]
    assert min(ious) >= 0.75, [round(v, 2) for v in ious]


def _half_camouflaged_clip(n: int = 45):
    """An ellipse whose top half has the colour of the white wall behind it and whose bottom half has the colour
    of the red blobs on that wall (dark stripes give the flow its texture), moving right and a little down."""
    rng = np.random.default_rng(3)
    wall = np.full((H + 40, W + 40, 3), 238, np.uint8)
    for _ in range(16):
        centre = (int(rng.integers(0, W + 40)), int(rng.integers(0, H + 40)))
        cv2.circle(wall, centre, int(rng.integers(8, 16)), (205, 25, 30), -1)
    wall = cv2.GaussianBlur(wall, (3, 3), 0)
    frames, truth = [], []
    for t in range(n):
        cx, cy = 50 + t, 60 + t // 3
        mask = np.zeros((H, W), np.uint8)
        cv2.ellipse(mask, (cx, cy), (22, 16), 0, 0, 360, 255, -1)
        look = np.full((H, W, 3), 236, np.uint8)
        look[cy:] = (200, 30, 35)
        for k in range(-30, 31, 9):
            cv2.line(look, (cx + k, cy - 20), (cx + k + 8, cy + 20), (60, 40, 40), 2)
        image = np.where(mask[..., None] > 0, look, wall[20 : 20 + H, 20 : 20 + W])
        frames.append(Frame(image=np.ascontiguousarray(image), pts=t, time_base=Fraction(1, 25), index=t))
        truth.append(mask)
    return frames, truth


def test_colours_shared_with_the_background_do_not_eat_the_mask():
    """Half of the object has the wall's colour: the colour pull at the edge is weighted by how decisive the
    colour is, so that half keeps the shape the flow gives it (with the full pull it was eaten a pixel or two a
    frame: mean IoU 0.76, 0.66 at the end)."""
    frames, truth = _half_camouflaged_clip()
    out = [m for _, m in FlowTracker([Keyframe(0, mask=truth[0])]).pair(frames)]
    ious = [_iou(m, g) for m, g in zip(out, truth, strict=True)]
    assert np.mean(ious[1:]) >= 0.9 and ious[-1] >= 0.8, [round(v, 2) for v in ious]


def test_an_untrusted_outline_alone_does_not_count_as_hidden():
    """The flow is rarely trusted on an object's outline; for a small object that edge alone is more than a tenth
    of it, and a fully seen object then counted as partly hidden (held to a stale, shrinking shape)."""
    from streamfill.masks.ops import disk
    from streamfill.masks.propagate import _partly_hidden

    shape = np.zeros((64, 64), np.uint8)
    cv2.circle(shape, (32, 32), 14, 1, -1)  # a 28 px object
    edge_untrusted = cv2.erode(shape, disk(1))
    assert cv2.countNonZero(shape - edge_untrusted) > 0.1 * cv2.countNonZero(shape)
    assert not _partly_hidden(shape, edge_untrusted, disk(2))
    left_hidden = shape.copy()
    left_hidden[:, :26] = 0  # an occluder over its left part
    assert _partly_hidden(shape, left_hidden, disk(2))


def test_an_alignment_beside_the_object_does_not_erase_the_mask(monkeypatch):
    """A well-correlated alignment of the template at a look-alike spot beside a small object (here forced once:
    25 px to the side of a 28 px object) must agree with the flow about where the object is before its shape
    replaces the flow's mask; accepted, it erased the mask for good (IoU 0.00 from that frame on)."""
    from streamfill.masks import propagate

    poses = [cutouts.Pose(0.3 + 0.012 * t, 0.5 + 0.004 * t) for t in range(14)]
    frames, truth = _pose_clip(poses, 28, seed=1)
    refine = propagate.Propagator._refine
    calls = []

    def once_beside(self, grey, guess, *args, **kwargs):
        calls.append(1)
        if len(calls) != 6:
            return refine(self, grey, guess, *args, **kwargs)
        out = guess.copy()
        out[0, 2] += 25.0
        return out, 0.99

    monkeypatch.setattr(propagate.Propagator, "_refine", once_beside)
    tracker = FlowTracker([Keyframe(0, mask=truth[0])])
    ious = [_iou(m, g) for (_, m), g in zip(tracker.pair(frames), truth, strict=True)]
    assert len(calls) >= 6 and min(ious) >= 0.85, [round(v, 2) for v in ious]


def test_the_colour_model_never_forgets_a_keyframe_colour_of_the_object():
    """The ratchet the floor stops: the mask has lost the object's dark part, so the object's side stops seeing dark
    while the ring around the mask (which now holds that part) teaches dark to the background's. Learnt alone, the
    object's histogram forgot dark within tens of frames and the pull then ate the rest of that part."""
    red, dark, green = (200, 40, 40), (20, 20, 20), (40, 160, 40)
    model = ColourModel(16)

    def fit(obj_colours, ring_colours, rate):
        pixels = np.array([obj_colours + ring_colours], np.uint8)
        fg = np.array([[True] * len(obj_colours) + [False] * len(ring_colours)])
        model.fit(model.index(pixels), fg, ~fg, rate)

    fit([red] * 50 + [dark] * 50, [green] * 100, None)  # the keyframe: half red, half dark, on green
    dark_idx = model.index(np.array([dark], np.uint8))
    assert model.posterior(dark_idx)[0] > 0.9
    for _ in range(60):  # the dark half lost: only red inside, dark and green in the ring
        fit([red] * 100, [dark] * 30 + [green] * 70, 0.05)
    assert model.posterior(dark_idx)[0] > 0.4  # learnt alone: 0.07
    # ... while what the object's side learns still counts: a colour only ever seen in the ring is background
    assert model.posterior(model.index(np.array([green], np.uint8)))[0] < 0.01


def test_the_tracking_benchmark_counts_misses_also_among_objects_20_px_and_up():
    """benchmarks/tracking.py: a part's misses (under mean IoU 0.90 or min IoU 0.60), all of them and those whose
    object stays at least 20 px long; a baseline checkout that gives no smallest size shows '-'."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "tracking.py"
    spec = importlib.util.spec_from_file_location("tracking_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def run(mean, low, smallest):
        return {"case": "small", "seed": 1, "size": [768, 576], "object_px": 24.0, "object_min_px": smallest,
                "mean_iou": mean, "min_iou": low, "max_area_change": 1.1, "cpu_ms_per_frame": 9.0, "lost": []}

    runs = [run(0.95, 0.9, 22), run(0.89, 0.8, 19), run(0.93, 0.55, 20), run(0.85, 0.7, 21), run(0.97, 0.9, 18)]
    assert bench._misses(runs) == {"misses": 3, "runs_object_20px_up": 3, "misses_object_20px_up": 2}
    assert bench._row("p", runs[1])[4:7] == [24, 19, 0.89]
    old = run(0.9, 0.9, 0)
    del old["object_min_px"]
    assert bench._row("p, before", old)[5] == "-"
