"""Temporal completion: background memory reconstructs a fixed camera's background, flow propagation beats
per-frame Telea on a pan, invented content is generated once and carried along, the window is bounded."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from streamfill import build
from streamfill.backends.classical import ClassicalInpainter
from streamfill.config import Config, TemporalConfig, merge
from streamfill.errors import ConfigError, MaskError
from streamfill.pipeline.complete import Completer
from streamfill.temporal import BackgroundMemory, TemporalCompletion
from streamfill.temporal.background import Placement
from streamfill.temporal.flow import nearest_flow, smooth_fill

H, W = 96, 160


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Multi-scale coloured noise (texture at every scale, so flow has something to hold on to)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3), np.float32)
    for cell in (4, 8, 16, 32):
        small = rng.random((h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        out += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * cell
    out = (out - out.min()) / np.ptp(out)
    return (out * 255).astype(np.uint8)


def clip(n: int, pan: int = 0, speed: int = 4, radius: int = 16, seed: int = 1, noise: float = 0.0):
    """(frame with a magenta disc painted on, fill mask = disc grown by 3 px, clean truth, disc) per frame;
    ``noise``: standard deviation of the sensor noise added to each frame (8-bit levels)."""
    big = texture(H, W + pan * n, seed)
    rng = np.random.default_rng(seed)
    for i in range(n):
        truth = np.ascontiguousarray(big[:, pan * i:pan * i + W])
        if noise:
            truth = np.clip(truth + rng.normal(0, noise, truth.shape), 0, 255).astype(np.uint8)
        disc = np.zeros((H, W), np.uint8)
        cv2.circle(disc, (24 + speed * i, H // 2), radius, 255, -1)
        occluded = truth.copy()
        occluded[disc > 0] = (255, 0, 255)
        mask = cv2.dilate(disc, np.ones((7, 7), np.uint8))
        yield dict(frame=_frame(occluded, i), mask=mask, truth=truth, disc=disc > 0)


def _frame(image: np.ndarray, i: int):
    from streamfill.types import Frame

    return Frame(image=image, pts=1000 + 40 * i, time_base=Fraction(1, 1000), index=i)


def psnr(a: np.ndarray, b: np.ndarray, sel: np.ndarray) -> float:
    d = a[sel].astype(np.float64) - b[sel]
    mse = float((d * d).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def telea() -> Completer:
    return Completer(ClassicalInpainter("telea", 5))


def run(completion, data):
    return list(completion.stream((d["frame"], d["mask"]) for d in data))


def test_contract_order_pts_and_untouched_outside():
    data = list(clip(12))
    outs = run(TemporalCompletion(telea().fill, TemporalConfig(window=3)), data)
    assert [o.index for o in outs] == list(range(12))
    for o, d in zip(outs, data, strict=True):
        assert o.pts == d["frame"].pts and o.time_base == d["frame"].time_base
        keep = d["mask"] == 0
        assert np.array_equal(o.image[keep], d["frame"].image[keep])
        assert o.image.dtype == np.uint8 and o.image.shape == (H, W, 3)


def test_fixed_camera_background_memory_is_near_exact():
    data = list(clip(30))
    tc = TemporalCompletion(telea().fill, TemporalConfig(mode="fast", window=4))
    outs = run(tc, data)
    # from frame 20 on, every occluded pixel was seen unoccluded before (the disc moved 4 px/frame)
    late = [psnr(o.image, d["truth"], d["disc"]) for o, d in zip(outs[20:], data[20:], strict=True)]
    assert min(late) > 45, late
    assert tc.stats.pixels["background"] > 0
    assert tc.stats.background_resets == 1


def test_background_memory_compensates_shake():
    base = texture(H + 20, W + 20, 3)
    mem = BackgroundMemory(samples=5, stride=1, shake=0.1)
    hole = np.zeros((H, W), bool)
    hole[30:60, 60:100] = True
    rng = np.random.default_rng(0)
    shifts = [(0, 0)] + [tuple(int(v) for v in rng.integers(-3, 4, 2)) for _ in range(12)]
    for dx, dy in shifts:
        frame = np.ascontiguousarray(base[10 + dy:10 + dy + H, 10 + dx:10 + dx + W])
        mem.observe(frame, np.zeros((H, W), bool))
    dx, dy = 2, -2
    frame = np.ascontiguousarray(base[10 + dy:10 + dy + H, 10 + dx:10 + dx + W])
    placement = mem.observe(frame, hole)
    assert placement.warp is not None
    view = mem.model(placement, 60, 30, 100, 60)
    colour, count = view.colour, view.count
    assert (count > 0).all()
    err = np.abs(colour - frame[30:60, 60:100].astype(np.float32))
    assert err.mean() < 4.0, err.mean()
    assert mem.resets == 1


def test_background_memory_read_through_a_moved_camera_has_no_dark_edge():
    """Read back through a sub-pixel camera move, a pixel next to one the memory never saw (its samples are
    zeros) came out blended with black: a 1 px dark line inside the hole along the edge of what was seen (the
    demo, frames 60-64). Such a pixel counts as not seen."""
    mem = BackgroundMemory(samples=5, stride=1, shake=0.5)
    frame = np.full((H, W, 3), 200, np.uint8)
    never = np.zeros((H, W), bool)
    never[20:70, 40:120] = True                  # hidden from the first frame on: the memory has zeros there
    mem.observe(frame, never)
    placement = Placement(mem.epoch, np.array([[1, 0, 0.5], [0, 1, 0.5]], np.float32))   # moved by half a pixel
    view = mem.model(placement, 30, 10, 130, 80)
    seen = view.count > 0
    assert seen.any() and (~seen).any()
    assert np.abs(view.colour[seen] - 200).max() < 1.0   # no pixel the memory offers is blended with black


def test_pan_flow_propagation_beats_per_frame_telea():
    data = list(clip(24, pan=2, speed=3))
    per_frame = run(telea(), data)
    temporal = run(TemporalCompletion(telea().fill, TemporalConfig(mode="quality", window=6)), data)

    def score(outs):
        sse = n = 0
        for o, d in zip(outs, data, strict=True):
            diff = o.image[d["disc"]].astype(np.float64) - d["truth"][d["disc"]]
            sse += float((diff * diff).sum())
            n += diff.size
        return 10 * np.log10(255.0**2 / (sse / n))

    assert score(temporal) > score(per_frame) + 6, (score(temporal), score(per_frame))


def test_never_seen_region_is_generated_once_and_carried():
    """A disc that never moves over a static scene: nothing ever shows what is behind it, so the engine
    fills it once (a keyframe) and every later frame carries that fill instead of re-rolling it."""
    calls = []
    rng = np.random.default_rng(0)

    def noisy_fill(image, mask):
        calls.append(1)
        out = image.copy()
        out[mask > 0] = rng.integers(0, 256, (int((mask > 0).sum()), 3), dtype=np.uint8)
        return out

    data = list(clip(10, speed=0))
    tc = TemporalCompletion(noisy_fill, TemporalConfig(mode="fast", window=3))
    outs = run(tc, data)
    assert len(calls) == 1 and tc.stats.keyframes == 1
    sel = cv2.erode(data[0]["disc"].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # inside the feather
    for o in outs[1:]:
        assert np.abs(o.image[sel].astype(int) - outs[0].image[sel]).max() <= 1


def test_window_is_bounded_and_live_answers_at_once():
    pulled = []

    def pairs(n):
        for d in clip(n):
            pulled.append(d["frame"].index)
            yield d["frame"], d["mask"]

    tc = TemporalCompletion(telea().fill, TemporalConfig(window=3))
    it = tc.stream(pairs(40))
    first = next(it)
    assert first.index == 0 and len(pulled) == 4          # look-ahead of 3 frames
    rest = list(it)
    assert len(rest) == 39 and tc.max_held <= 2 * 3 + 2

    pulled.clear()
    live = TemporalCompletion(telea().fill, TemporalConfig(window=3, live=True))
    it = live.stream(pairs(10))
    for k in range(10):
        out = next(it)
        assert out.index == k and pulled[-1] == k          # no frame waits for a later one
    assert live.max_held <= 3 + 1


def test_mask_of_wrong_size_is_a_mask_error():
    d = next(clip(1))
    tc = TemporalCompletion(telea().fill, TemporalConfig())
    with pytest.raises(MaskError, match="mask size"):
        list(tc.stream([(d["frame"], np.zeros((H + 1, W), np.uint8))]))


def test_smooth_fill_keeps_known_and_interpolates():
    values = np.zeros((40, 40, 2), np.float32)
    values[..., 0] = np.arange(40, dtype=np.float32)[None, :]
    values[..., 1] = 3.0
    known = np.ones((40, 40), bool)
    known[10:30, 10:30] = False
    out = smooth_fill(np.where(known[..., None], values, 99.0), known)
    assert np.array_equal(out[known], values[known])
    assert np.abs(out[~known][:, 1] - 3.0).max() < 1e-4       # a constant field stays constant
    assert np.abs(out[~known][:, 0] - values[~known][:, 0]).mean() < 4.0


def test_nearest_flow_keeps_each_sides_motion():
    # a subject on the left moving right, the background on the right moving left, a hole over the boundary:
    # the smooth completion blends the two motions to about zero in the middle, which moves nothing right
    flow = np.zeros((30, 40, 2), np.float32)
    flow[:, :20, 0], flow[:, 20:, 0] = 3.0, -3.0
    bad = np.zeros((30, 40), bool)
    bad[5:25, 12:28] = True
    near = nearest_flow(np.where(bad[..., None], 99.0, flow), bad)
    assert np.array_equal(near[~bad], flow[~bad])
    assert (near[10:20, 13:19, 0] == 3.0).all() and (near[10:20, 21:27, 0] == -3.0).all()
    blend = smooth_fill(np.where(bad[..., None], 0.0, flow), ~bad)
    assert np.abs(blend[10:20, 18:22, 0]).max() < 2.0  # what it replaces: neither motion near the middle


def test_make_completion_and_config():
    assert isinstance(build.make_completion(merge(Config(), {"temporal": {"mode": "off"}})), Completer)
    tc = build.make_completion(merge(Config(), {"temporal": {"mode": "quality", "window": 4}}))
    assert isinstance(tc, TemporalCompletion) and tc.quality and tc.ahead == 4
    with pytest.raises(ConfigError, match="temporal.mode"):
        TemporalConfig(mode="slow")
    with pytest.raises(ConfigError, match="temporal.window"):
        TemporalConfig(window=-1)
    # window 0 (the default) = by mode: quality sees further than fast
    assert build.make_completion(merge(Config(), {"temporal": {"mode": "quality"}})).ahead == 15
    assert build.make_completion(merge(Config(), {"temporal": {"mode": "fast"}})).ahead == 10
    assert TemporalCompletion(telea().fill, TemporalConfig(mode="fast", window=0, live=True)).back == 10


def test_process_flag_reaches_config():
    from streamfill.cli import build_parser
    from streamfill.cli.common import config_from_args

    args = build_parser().parse_args(["process", "in.mp4", "-o", "out.mp4", "--mask", "m.png",
                                      "--temporal", "quality", "--window", "5"])
    config = config_from_args(args)
    assert config.temporal.mode == "quality" and config.temporal.window == 5


def _write_clip(path, n=24, pan=0):
    import av

    big = texture(H, W + pan * n, 5)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "bgr0"
        for i in range(n):
            img = np.ascontiguousarray(big[:, pan * i:pan * i + W])
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_eval_temporal_small(tmp_path):
    from streamfill.eval.temporal import evaluate

    video = tmp_path / "fixed.mkv"
    _write_clip(video)
    r = evaluate(video, methods=("classical", "fast"), frames=24, width=0, occluder="blob")
    rows = {m.name: m for m in r.methods}
    assert r.frames == 24 and (r.width, r.height) == (W, H)
    assert rows["classical"].frames == 24 and rows["fast"].frames == 24
    assert rows["fast"].psnr > rows["classical"].psnr + 3
    assert rows["fast"].tc < 0.5 * rows["classical"].tc
    assert rows["fast"].psnr_frames > rows["classical"].psnr_frames + 3
    # a fixed camera with nothing moving: the scene's background is every frame, and once seen it is known
    assert rows["fast"].psnr_background > 35 > rows["classical"].psnr_background
    assert 0 < rows["fast"].ssim <= 1 and rows["fast"].fps > 0
    data = r.to_dict()
    assert [m["name"] for m in data["methods"]] == ["classical", "fast"]
    assert "PSNR" in r.table() and "bg dB" in r.table() and "TC" in r.table()


def test_scene_background_is_the_median_of_the_clean_clip(tmp_path):
    from streamfill.eval.temporal import scene_background

    video = tmp_path / "fixed.mkv"
    _write_clip(video, n=12)
    with build.open_source(video, Config()) as reader:
        frames = [f.image for f in reader]
    bg = scene_background(frames)
    first = texture(H, W, 5)
    assert bg.shape == (H, W, 3) and bg.dtype == np.uint8
    assert np.abs(bg.astype(int) - first).max() <= 2          # static clip: every frame is the background


def test_eval_temporal_cli(tmp_path, capsys):
    import json

    from streamfill.cli import main

    video = tmp_path / "pan.mkv"
    _write_clip(video, n=12, pan=2)
    out = tmp_path / "r.json"
    code = main(["eval", "temporal", str(video), "--frames", "12", "--width", "0", "--method", "classical",
                 "--method", "fast", "--occluder", "logo", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data[0]["occluder"] == "logo" and [m["name"] for m in data[0]["methods"]] == ["classical", "fast"]
    assert "TC" in capsys.readouterr().out
    assert main(["eval", "temporal", str(video), "--frames", "1"]) == 1


def _sprite(seed: int, size: int) -> np.ndarray:
    return texture(size, size, seed)


def test_background_memory_skips_what_passes_by():
    """A textured object crossing a fixed scene: while it stands over a pixel, the memory still answers the
    background there (frames where it moved are not stored), and the support is full on the static scene."""
    base = texture(H, W, 7)
    obj = _sprite(8, 20)
    mem = BackgroundMemory(samples=5, stride=1)
    none = np.zeros((H, W), bool)
    for i in range(20):
        frame = base.copy()
        x = 10 + 3 * i
        frame[40:60, x:x + 20] = obj                      # the object slides right, 3 px per frame
        placement = mem.observe(frame, none)
    # frame 19: the object covers x 67..86, and has covered x 70..80 for the last 3-6 frames
    view = mem.model(placement, 70, 42, 80, 58)
    err = np.abs(view.colour - base[42:58, 70:80].astype(np.float32))
    assert err.mean() < 6.0, err.mean()
    still = mem.model(placement, 0, 70, 40, 90)           # never covered
    assert (still.support == 1.0).all() and (still.count == 20).all()


def test_background_memory_support_drops_when_samples_disagree():
    base = (40 + texture(H, W, 9).astype(int) * 160 // 255).astype(np.uint8)
    mem = BackgroundMemory(samples=5, stride=1)
    none = np.zeros((H, W), bool)
    for i in range(9):
        frame = base.copy()
        if i >= 6:  # a lasting change of colour (not of grey: alignment is not the subject here) in one corner
            frame[:30, :40, 0] += 60
            frame[:30, :40, 1] -= 31
        placement = mem.observe(frame, none)
        assert placement.warp is None
    view = mem.model(placement, 0, 0, W, H)
    changed = view.support[5:25, 5:35]
    assert 0.0 < changed.max() < 0.9, (changed.min(), changed.max())
    assert view.support[50:, 60:].min() == 1.0


def test_hidden_pixel_shown_alike_before_and_after_is_kept():
    """Someone arrives and stands still; a disc hides them for 13 frames. The background memory still holds
    the empty place (mostly), but the frames just before and just after the disc show the same person:
    temporal completion must show the person, not the empty place."""
    base = texture(H, W, 11)
    person = _sprite(12, 12)
    data = []
    for i in range(30):
        truth = base.copy()
        if i >= 6:
            truth[42:54, 70:82] = person
        disc = np.zeros((H, W), np.uint8)
        cv2.circle(disc, (20 + 4 * i, 48), 16, 255, -1)
        occluded = truth.copy()
        occluded[disc > 0] = (255, 0, 255)
        mask = cv2.dilate(disc, np.ones((7, 7), np.uint8))
        data.append(dict(frame=_frame(occluded, i), mask=mask, truth=truth, disc=disc > 0))
    outs = run(TemporalCompletion(telea().fill, TemporalConfig(mode="fast", window=10)), data)
    sel = np.zeros((H, W), bool)
    sel[42:54, 70:82] = True
    for i in range(12, 17):                                 # the person is fully hidden in these frames
        assert (data[i]["mask"][sel] > 0).all()
        assert psnr(outs[i].image, data[i]["truth"], sel) > 35, i


def test_quality_seam_ignores_something_else_standing_at_the_border():
    """The membrane carries lighting differences measured on the ring into the hole; ring pixels that show
    something else entirely (a person at the border) must not tint the hole."""
    tc = TemporalCompletion(telea().fill, TemporalConfig(mode="quality", seam=6))
    h = w = 60
    hole = np.zeros((h, w), bool)
    hole[15:45, 15:45] = True
    region = np.zeros((h, w), bool)
    region[9:51, 9:51] = True
    cand = np.full((h, w, 3), 100.0, np.float32)
    frame = np.full((h, w, 3), 104, np.uint8)               # the frame is 4 levels brighter all round...
    frame[9:51, 9:15] = 10                                  # ...but a dark figure stands on the left border
    out = tc._seam(frame, hole, region, hole.copy(), np.ones((h, w), bool), cand)
    inside = out[hole]
    assert np.abs(inside - 104.0).max() < 1.0, (inside.min(), inside.max())


def test_quality_filters_carried_pixels_along_their_motion(monkeypatch):
    """Quality averages carried pixels with the previous output along the flow: on a panning clip the fill
    changes less from frame to frame (measured along the known pan) without losing accuracy. With sensor noise,
    as in real footage: each source frame carries its own noise, and the sources change as the window slides."""
    import streamfill.temporal.hole as hole_fill

    pan = 2
    data = list(clip(20, pan=pan, speed=3, noise=6.0))

    def measure():
        outs = run(TemporalCompletion(telea().fill, TemporalConfig(mode="quality", window=6)), data)
        jumps, err = [], []
        for t in range(1, len(outs)):
            sel = data[t]["disc"][:, : W - pan]
            now, before = outs[t].image[:, : W - pan], outs[t - 1].image[:, pan:]
            jumps.append(np.abs(now[sel].astype(np.float64) - before[sel]).mean())
            err.append(psnr(outs[t].image, data[t]["truth"], data[t]["disc"]))
        return float(np.mean(jumps)), float(np.mean(err))

    smooth_jump, smooth_psnr = measure()
    monkeypatch.setattr(hole_fill, "TRAJECTORY_SMOOTH", 0.0)
    raw_jump, raw_psnr = measure()
    assert smooth_jump < 0.9 * raw_jump, (smooth_jump, raw_jump)
    assert smooth_psnr > raw_psnr - 0.5, (smooth_psnr, raw_psnr)


def _textured_pan(n: int, pan: int, speed: int, radius: int = 20, h: int = 180, w: int = 320):
    """A textured scene panning ``pan`` px per frame (content moves left) under a *textured* disc moving
    ``speed`` px per frame to the right (DIS tracks the occluder's texture, and drags the flow next to it along)."""
    big = texture(h, w + pan * n, 3)
    skin = texture(2 * radius + 1, 2 * radius + 1, 4)
    for i in range(n):
        truth = np.ascontiguousarray(big[:, pan * i:pan * i + w])
        disc = np.zeros((h, w), np.uint8)
        cx = 40 + speed * i
        cv2.circle(disc, (cx, h // 2), radius, 255, -1)
        occluded = truth.copy()
        x0, y0 = cx - radius, h // 2 - radius
        box = disc[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1] > 0
        occluded[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1][box] = skin[box]
        mask = cv2.dilate(disc, np.ones((7, 7), np.uint8))
        yield dict(frame=_frame(occluded, i), mask=mask, truth=truth, disc=disc > 0)


def test_flow_next_to_a_moving_occluder_is_not_trusted(monkeypatch):
    """A panning camera under a textured occluder moving the other way: the flow within FLOW_BAND pixels of the
    hole is dragged along by the occluder; completing it from beyond the band (and refining DIS down to the
    flow grid) carries the real pixels in where they belong."""
    import streamfill.temporal.complete as tc

    data = list(_textured_pan(24, pan=3, speed=4))

    def score():
        outs = run(TemporalCompletion(telea().fill, TemporalConfig(mode="fast", window=8)), data)
        return float(np.mean([psnr(o.image, d["truth"], d["disc"]) for o, d in zip(outs[4:-4], data[4:-4],
                                                                                   strict=True)]))

    banded = score()
    monkeypatch.setattr(tc, "FLOW_BAND", 1)
    unbanded = score()
    assert banded > unbanded + 5.0, (banded, unbanded)
    assert banded > 45.0, banded


def test_flow_is_refined_down_to_the_grid_it_is_given():
    """DIS presets stop pyramid levels above the input grid (fast: two); ``Flow`` refines down to it, so a
    sub-pixel shift is measured to a few hundredths of a pixel (the fast preset alone: ~0.08 px)."""
    from streamfill.temporal.flow import Flow

    a = cv2.cvtColor(texture(200, 400, 3), cv2.COLOR_RGB2GRAY)
    b = cv2.warpAffine(a, np.float32([[1, 0, -1.37], [0, 1, 0.61]]), (400, 200), flags=cv2.INTER_CUBIC)
    flow = Flow("fast")(a, b)[20:-20, 20:-20]
    assert np.abs(flow[..., 0] + 1.37).mean() < 0.05
    assert np.abs(flow[..., 1] - 0.61).mean() < 0.05


@pytest.mark.parametrize("side", [2, 8, 16])
@pytest.mark.parametrize("mode", ["fast", "quality"])
def test_tiny_frames_are_filled(side, mode):
    """DIS refuses images under 12 px each way: tiny frames (thumbnails, test patterns) are scaled up for the
    flow instead of failing the run; every frame comes out, outside the hole untouched."""
    rng = np.random.default_rng(side)
    data = []
    for i in range(6):
        image = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
        mask = np.zeros((side, side), np.uint8)
        mask[side // 4:side // 2 + 1, side // 4:side // 2 + 1] = 255
        data.append(dict(frame=_frame(image, i), mask=mask))
    outs = run(TemporalCompletion(telea().fill, TemporalConfig(mode=mode, window=2)), data)
    assert [o.index for o in outs] == list(range(6))
    for o, d in zip(outs, data, strict=True):
        keep = d["mask"] == 0
        assert np.array_equal(o.image[keep], d["frame"].image[keep])


def _edge_and_inner(hole: np.ndarray, px: int = 2) -> tuple[np.ndarray, np.ndarray]:
    inner = cv2.erode(hole.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0
    return hole & ~inner, inner


@pytest.mark.parametrize("mode", ["fast", "quality"])
@pytest.mark.parametrize("pan", [0, 3])
def test_no_seam_along_the_hole_edge(mode, pan):
    """The hole shows black (as when the truth is blanked) and the mask is exact (no dilation margin): the
    paste must not feather what the hole showed into the fill, nor may the engine's paste (a disc that never
    moves on a fixed camera is never seen: the engine fills it). The error in the hole's 2-px edge band is no
    larger than in its interior."""
    data = []
    big = texture(H, W + pan * 16, 3)
    for i in range(16):
        truth = np.ascontiguousarray(big[:, pan * i:pan * i + W])
        disc = np.zeros((H, W), np.uint8)
        cv2.circle(disc, (40 + (4 * i if pan else 0), H // 2), 18, 255, -1)
        shown = truth.copy()
        shown[disc > 0] = 0
        data.append(dict(frame=_frame(shown, i), mask=disc, truth=truth, disc=disc > 0))
    outs = run(TemporalCompletion(telea().fill, TemporalConfig(mode=mode, window=4), feather=3, margin=0), data)
    edge_err, inner_err = [], []
    for d, o in zip(data[2:], outs[2:], strict=True):
        err = np.abs(o.image.astype(np.float32) - d["truth"]).mean(axis=2)
        edge, inner = _edge_and_inner(d["disc"])
        edge_err.append(err[edge].mean())
        inner_err.append(err[inner].mean())
        assert (o.image[d["disc"]].max(axis=1) > 0).all()      # no black pixel of the hole comes through
    assert np.mean(edge_err) <= np.mean(inner_err), (np.mean(edge_err), np.mean(inner_err))


def test_feather_lives_only_in_the_dilation_margin():
    tc = TemporalCompletion(telea().fill, TemporalConfig(), feather=3, margin=1)
    assert tc.feather == 1
    assert TemporalCompletion(telea().fill, TemporalConfig(), feather=3, margin=4).feather == 3
    assert build.make_completion(merge(Config(), {"mask": {"dilate": 2, "feather": 5}})).feather == 2


def test_consistency_rewards_following_the_truth_not_freezing(monkeypatch):
    """The temporal-consistency measure: a method that copies the truth scores 0; a frozen fill over moving
    texture scores high (the old flicker measure rewarded it); the nearest-frame baseline runs on the same masks."""
    from streamfill.eval import temporal as ev
    from streamfill.eval.corpus import make_clip

    clip = make_clip("shake", 0, 8)
    assert len(clip.frames) == 8 and clip.masks[0].shape == clip.frames[0].shape[:2] and clip.moving_camera

    class Oracle:
        def stream(self, pairs):
            for frame, _ in pairs:
                yield frame.with_image(clip.frames[frame.index])

    class Frozen:
        def stream(self, pairs):
            for frame, mask in pairs:
                yield frame.with_image(np.where(mask[..., None] > 0, 128, frame.image).astype(np.uint8))

    flow = ev._TruthFlow()
    cfg = Config()
    c = ev._Clip(clip.name, clip.frames, clip.masks)
    monkeypatch.setattr(build, "make_completion", lambda config: Oracle())
    oracle = ev._run_method("x", c, cfg, flow, None)
    monkeypatch.setattr(build, "make_completion", lambda config: Frozen())
    frozen = ev._run_method("x", c, cfg, flow, None)
    monkeypatch.undo()
    assert oracle.tc == 0 and oracle.psnr == float("inf")
    assert frozen.tc > 3
    r = ev.evaluate_clip(clip, methods=("classical", "nearest"))
    assert [m.name for m in r.methods] == ["classical", "nearest"] and r.method("nearest").frames == 8


def test_corpus_cases_are_deterministic_and_sized():
    from streamfill.eval.corpus import CASES, make_clip

    assert len(CASES) >= 10
    a = make_clip("face", 1, 3)
    b = make_clip("face", 1, 3)
    assert a.size == (176, 144) and all((x == y).all() for x, y in zip(a.frames, b.frames, strict=True))
    assert make_clip("hd", 0, 40).size == (1920, 1080) and len(make_clip("hd", 0, 40).frames) == 10
    cut = make_clip("cut", 0, 12)
    diffs = [np.abs(cut.frames[k + 1].astype(int) - cut.frames[k]).mean() for k in range(11)]
    assert max(diffs) > 3 * sorted(diffs)[5]          # one frame pair is a scene cut
    with pytest.raises(Exception, match="unknown case"):
        make_clip("nope", 0, 3)


def test_eval_temporal_corpus_cli(tmp_path, capsys):
    import json

    from streamfill.cli import main

    out = tmp_path / "c.json"
    assert main(["eval", "temporal", "--corpus", "--case", "lighting", "--seeds", "0", "--frames", "6",
                 "--method", "nearest", "--method", "fast", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data[0]["video"] == "lighting" and [m["name"] for m in data[0]["methods"]] == ["nearest", "fast"]
    assert main(["eval", "temporal"]) == 1
    assert main(["eval", "temporal", "--corpus", "--seeds", "x"]) == 1
    assert "--corpus" in capsys.readouterr().err


def test_background_memory_follows_a_change_of_light():
    """The light brightens steadily (a lamp, a camera's auto-exposure): the memory's median of past samples is
    darker than the frame now, and its colours are brought to the present light (fitted on the ring) before they
    fill the hole."""
    data = []
    for i, d in enumerate(clip(30)):
        gain = 0.7 + 0.5 * i / 29
        lit = np.clip(d["truth"].astype(np.float32) * gain, 0, 255).astype(np.uint8)
        occluded = lit.copy()
        occluded[d["disc"]] = (255, 0, 255)
        data.append(dict(frame=d["frame"].with_image(occluded), mask=d["mask"], truth=lit, disc=d["disc"]))
    tc = TemporalCompletion(telea().fill, TemporalConfig(mode="fast", window=4))
    outs = run(tc, data)
    late = [psnr(o.image, d["truth"], d["disc"]) for o, d in zip(outs[20:], data[20:], strict=True)]
    assert tc.stats.pixels["background"] > 0
    assert np.mean(late) > 27.0, late                     # (the stale median: 24.6 dB)
