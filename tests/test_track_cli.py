"""`streamfill masks` / `process --mask-track` / `--box` / `--mask-auto motion` / `eval masks` end to end."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest
from media import read_frames, write_png

from streamfill.cli import main
from streamfill.masks import cutouts

H, W, N = 144, 192, 16


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    """A clip of a textured object crossing a textured background, the true masks, the first mask PNG."""
    d = tmp_path_factory.mktemp("track")
    bgs = cutouts.synthetic_backgrounds(H, W, 0, noise=1.0)
    cut = cutouts.textured_cutout(96, 1)
    truth = []
    path = d / "clip.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv444p"
        s.options = {"preset": "ultrafast", "crf": "8"}
        for t in range(N):
            layer = cutouts.place(cut, cutouts.TRAJECTORIES["translate"](t, 40), (H, W), 52)
            image, visible = cutouts.composite(next(bgs), [layer])
            truth.append(visible[0] > 0.5)
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts = t
            vf.time_base = Fraction(1, 25)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    mask0 = d / "m0.png"
    write_png(mask0, np.where(truth[0], 255, 0).astype(np.uint8))
    return path, mask0, truth


def run_cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_masks_command_writes_tracked_masks_and_preview_that_process_reuses(moving, tmp_path, capsys):
    clip, mask0, truth = moving
    out, preview = tmp_path / "masks.mkv", tmp_path / "overlay.mp4"
    code, err = run_cli(capsys, "masks", clip, "--mask", mask0, "--mask-track", "-o", out, "--preview", preview)
    assert code == 0, err
    frames = read_frames(out)
    assert len(frames) == N and len(read_frames(preview)) == N
    assert [t for t, _ in frames] == [Fraction(i, 25) for i in range(N)]
    ious = []
    for (_, img), gt in zip(frames, truth, strict=True):
        assert (img[..., 0] == img[..., 2]).all() and set(np.unique(img)) <= {0, 255}  # lossless grey
        ious.append(_iou(img[..., 0] > 127, gt))
    assert np.mean(ious) >= 0.8, ious
    code, err = run_cli(capsys, "process", clip, "--mask", out, "-o", tmp_path / "a.mp4", "-q")
    assert code == 0, err
    code, err = run_cli(capsys, "process", clip, "--mask", mask0, "--mask-track", "-o", tmp_path / "b.mp4", "-q")
    assert code == 0, err
    assert len(read_frames(tmp_path / "b.mp4")) == N


def test_eval_masks_suite_over_a_real_clip_through_h264(moving, tmp_path, capsys):
    clip = moving[0]
    report = tmp_path / "s.json"
    code, err = run_cli(capsys, "eval", "masks", "--case", "tiny", "--seeds", "1", "--frames", "5", "--codec",
                        "h264", "--backdrop", clip, "--json", report)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["setting"]["codec"] == "h264" and data["setting"]["backdrop"] == str(clip)
    assert data["runs"][0]["frames"] == 5
    write_png(tmp_path / "still.png", np.zeros((32, 32), np.uint8))
    for argv, message in ((["--backdrop", tmp_path / "none.mp4"], "not found"),
                          (["--backdrop", tmp_path / "still.png"], "a video is needed"),
                          (["--trajectory", "scale", "--backdrop", clip], "belong to --suite")):
        code, err = run_cli(capsys, "eval", "masks", "--frames", "3", *argv)
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    code, err = run_cli(capsys, "eval", "masks", "--codec", "vp9")
    assert code == 2 and "invalid choice" in err


@pytest.mark.parametrize("target", ["masks.mkv", "masks/"])
def test_masks_written_for_a_range_are_used_for_that_range(moving, tmp_path, capsys, target):
    """`masks --start/--end` then `process --mask ... --start/--end`: the masks start at the range's first frame
    (a Matroska file keeps its time, a folder lists it); they were matched from the clip's frame 0 and ran out."""
    clip, _, truth = moving
    box = ",".join(str(v) for v in _box_of(truth[8])) + "@8"
    out = tmp_path / target
    code, err = run_cli(capsys, "masks", clip, "--box", box, "--start", "0.24", "--end", "0.52", "-o", out)
    assert code == 0, err
    result = tmp_path / "clean.mp4"
    code, err = run_cli(capsys, "process", clip, "--mask", out, "--start", "0.24", "--end", "0.52", "-o", result, "-q")
    assert code == 0, err
    frames = read_frames(result)
    assert [t for t, _ in frames] == [Fraction(i, 25) for i in range(6, 13)]


def _box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def test_box_and_motion_masks(moving, tmp_path, capsys):
    clip, _, truth = moving
    ys, xs = np.nonzero(truth[0])
    box = f"{xs.min() - 2},{ys.min() - 2},{np.ptp(xs) + 5},{np.ptp(ys) + 5}@0"
    code, err = run_cli(capsys, "masks", clip, "--box", box, "-o", tmp_path / "box/", "-q")
    assert code == 0, err
    assert len(list((tmp_path / "box").glob("*.png"))) == N
    code, err = run_cli(capsys, "masks", clip, "--mask-auto", "motion", "-o", tmp_path / "motion.mkv", "-q")
    assert code == 0, err
    assert len(read_frames(tmp_path / "motion.mkv")) == N


@pytest.mark.parametrize("args, message", [
    (["--box", "180,10,50,50"], "reaches outside the 192x144 frame"),
    (["--box", "1,2,3"], "x,y,w,h"),
    (["--mask", "{mask}", "--mask-frame", "99"], "beyond the clip"),
    (["--mask", "{mask}", "--mask-frame", "-1"], "--mask-frame"),
])
def test_bad_tracking_input_is_one_clear_line(moving, tmp_path, capsys, args, message):
    clip, mask0, _ = moving
    args = [a.replace("{mask}", str(mask0)) for a in args]
    out = tmp_path / "o.mkv"
    code, err = run_cli(capsys, "masks", clip, *args, "-o", out)
    assert code == 1 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_eval_masks_cli_prints_table_and_json(tmp_path, capsys):
    report = tmp_path / "r.json"
    code = main(["eval", "masks", "--frames", "8", "--size", "160x120", "--trajectory", "scale",
                 "--json", str(report)])
    captured = capsys.readouterr()
    assert code == 0
    assert "scale" in captured.out and "mean IoU" in captured.out
    data = json.loads(report.read_text())
    assert data["trajectories"][0]["frames"] == 8 and len(data["trajectories"][0]["iou"]) == 8
    assert data["setting"]["codec"] == "none"
    # the trajectory benchmark through H.264 too; an odd size cannot go through 4:2:0
    code, err = run_cli(capsys, "eval", "masks", "--frames", "8", "--size", "160x120", "--trajectory", "scale",
                        "--codec", "h264", "--json", report)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["setting"]["codec"] == "h264" and len(data["trajectories"][0]["iou"]) == 8
    code, err = run_cli(capsys, "eval", "masks", "--frames", "4", "--size", "161x120", "--codec", "h264")
    assert code == 1 and "must be even" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_a_lost_track_is_one_line_marked_in_the_preview_and_counted_in_the_summaries(tmp_path, capsys):
    # The object is hidden by an opaque square from frame 8 to 17 (10 frames, shortened from the library
    # test's 30 to keep the CLI run small).
    bgs = cutouts.synthetic_backgrounds(H, W, 5)
    obj, occ = cutouts.textured_cutout(96, 11), cutouts.textured_cutout(96, 23)
    occ[..., 3] = 255
    path, n = tmp_path / "hidden.mp4", 22
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv444p"
        s.options = {"preset": "ultrafast", "crf": "8"}
        for t in range(n):
            layers = [cutouts.place(obj, cutouts.Pose(0.3 + 0.004 * t, 0.5), (H, W), 48)]
            if 8 <= t < 18:
                layers.append(cutouts.place(occ, cutouts.Pose(0.3 + 0.004 * t, 0.5), (H, W), 80))
            image, visible = cutouts.composite(next(bgs), layers)
            if t == 0:
                write_png(tmp_path / "m0.png", np.where(visible[0] > 0.5, 255, 0).astype(np.uint8))
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts, vf.time_base = t, Fraction(1, 25)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    preview = tmp_path / "p.mp4"
    code, err = run_cli(capsys, "masks", path, "--mask", tmp_path / "m0.png", "--mask-track", "-o",
                        tmp_path / "m.mkv", "--preview", preview, "-q")
    assert code == 0, err
    warned = [line for line in err.splitlines() if "track of the object lost" in line]
    assert len(warned) == 1, err
    assert warned[0].endswith("add a --box there or check the preview"), warned  # the file it just wrote
    first, last = (int(v) for v in warned[0].split("frames ")[1].split(";")[0].split("-"))
    assert first <= 9 and last >= 17 and first >= 6
    shown = read_frames(preview)
    magenta = [int(img[1, W // 2, 0] > 200 and img[1, W // 2, 1] < 80 and img[1, W // 2, 2] > 200) for _, img in shown]
    assert magenta[:6] == [0] * 6 and all(magenta[first:last + 1]), magenta
    code, err = run_cli(capsys, "process", path, "--mask", tmp_path / "m0.png", "--mask-track", "-o",
                        tmp_path / "o.mp4")
    assert code == 0, err
    assert f"track lost on {last - first + 1} frames: {first}-{last}" in err, err
    # process writes no preview: its advice says how to get one (before, "check the preview" named none)
    assert (f"or look at the masks first (streamfill masks {path} with the same mask flags, -o masks.mkv "
            "--preview preview.mp4)") in err, err
    code, err = run_cli(capsys, "masks", path, "--mask", tmp_path / "m0.png", "--mask-track", "-o",
                        tmp_path / "m2.mkv", "-q")
    assert code == 0 and "or run again with --preview VIDEO to see the masks" in err, err


def test_eval_masks_suite_is_the_default_and_reports_each_seed(tmp_path, capsys):
    report = tmp_path / "s.json"
    code = main(["eval", "masks", "--case", "tiny", "--case", "cut", "--seeds", "2", "--frames", "6",
                 "--json", str(report)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "worst seed" in captured.out and "tiny" in captured.out and "CPU ms" in captured.out
    data = json.loads(report.read_text())
    assert [(r["case"], r["seed"]) for r in data["runs"]] == [("tiny", 0), ("tiny", 1), ("cut", 0), ("cut", 1)]
    assert "max_area_change" in data["summary"]
    for argv, message in ((["--case", "meadow"], "unknown case 'meadow'"),
                          (["--held-out", "--seeds", "2"], "--held-out runs its own seeds"),
                          (["--suite", "--trajectory", "scale"], "--suite makes its own scenes"),
                          (["--trajectory", "scale", "--photos", str(tmp_path)], "belong to --suite")):
        code, err = run_cli(capsys, "eval", "masks", "--frames", "3", *argv)
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("target", ["masks.mkv", "masks/"])
def test_range_masks_inside_a_later_range_align_and_an_earlier_range_is_refused(moving, tmp_path, capsys, target):
    clip, _, truth = moving
    box = ",".join(str(v) for v in _box_of(truth[8])) + "@8"
    out = tmp_path / target
    assert run_cli(capsys, "masks", clip, "--box", box, "--start", "0.24", "--end", "0.52", "-o", out)[0] == 0
    later = tmp_path / "later.mp4"
    code, err = run_cli(capsys, "process", clip, "--mask", out, "--start", "0.32", "--end", "0.52", "-o", later, "-q")
    assert code == 0, err
    assert [t for t, _ in read_frames(later)] == [Fraction(i, 25) for i in range(8, 13)]
    code, err = run_cli(capsys, "process", clip, "--mask", out, "--start", "0.12", "--end", "0.52",
                        "-o", tmp_path / "earlier.mp4", "-q")
    assert code == 1 and "starts at" in err and not (tmp_path / "earlier.mp4").exists()


@pytest.mark.parametrize("target", ["masks.mkv", "masks/"])
def test_range_masks_given_to_the_whole_clip_say_where_they_start(moving, tmp_path, capsys, target):
    """Without --start the first frame read is 0: the count check at the end said "has 13 masks but the video
    has at least 14 frames", which does not tell the user the masks were written for a range."""
    clip, _, truth = moving
    box = ",".join(str(v) for v in _box_of(truth[8])) + "@8"
    out = tmp_path / target
    assert run_cli(capsys, "masks", clip, "--box", box, "--start", "0.24", "--end", "0.52", "-o", out)[0] == 0
    code, err = run_cli(capsys, "process", clip, "--mask", out, "-o", tmp_path / "whole.mp4", "-q")
    assert code == 1 and "starts at" in err and "--start" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "whole.mp4").exists()
