"""Every bad input: one line on stderr, a non-zero exit, no traceback, nothing under the output name."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from media import box_mask, make_video, write_png

from streamfill.cli import main


@pytest.fixture
def clip(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=6)
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(64, 96, 10, 10, 30, 30))
    return src, mask


def run_cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code, err, *words):
    assert code not in (0, None)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]


def test_missing_input(capsys, tmp_path, clip):
    _, mask = clip
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", tmp_path / "nope.mp4", "-o", out, "--mask", mask), "not found")
    assert not out.exists()


@pytest.mark.parametrize("engine", ["auto", "onnx"])
def test_missing_weights_file_is_the_only_line(capsys, tmp_path, clip, engine):
    """``--engine auto`` printed its choice ("no CUDA GPU found: using onnx") before the missing file's error."""
    src, mask = clip
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", mask, "--engine", engine,
                                   "--weights", tmp_path / "nope.safetensors"), "weights file not found")
    assert not out.exists()


def test_not_a_video(capsys, tmp_path, clip):
    _, mask = clip
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello, I am not a video\n" * 20)
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", bad, "-o", out, "--mask", mask), "notes.mp4")
    assert not out.exists()


def test_truncated_video(capsys, tmp_path, clip):
    _, mask = clip
    src = tmp_path / "long.mp4"
    make_video(src, frames=60, options={"movflags": "+faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: int(src.stat().st_size * 0.6)])
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", cut, "-o", out, "--mask", mask), "cut.mp4")
    assert not out.exists()


def test_zero_frame_video(capsys, tmp_path, clip):
    import av

    _, mask = clip
    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height = 96, 64
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", empty, "-o", out, "--mask", mask), "empty.mkv")
    assert not out.exists()


def test_mask_of_wrong_size_names_both_sizes(capsys, tmp_path, clip):
    src, _ = clip
    mask = tmp_path / "small.png"
    write_png(mask, np.zeros((10, 20), np.uint8))
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", mask), "20x10", "96x64")
    assert not out.exists()


def test_mask_count_mismatch_names_both_counts(capsys, tmp_path, clip):
    src, _ = clip
    folder = tmp_path / "masks"
    folder.mkdir()
    for i in range(4):
        write_png(folder / f"{i}.png", np.zeros((64, 96), np.uint8))
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", folder), "4 masks", "5 frames")
    for i in range(4, 9):
        write_png(folder / f"{i}.png", np.zeros((64, 96), np.uint8))
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", folder), "9 masks", "6 frames")
    assert not out.exists()


def test_unreadable_mask(capsys, tmp_path, clip):
    src, _ = clip
    mask = tmp_path / "mask.png"
    mask.write_bytes(b"\x89PNG garbage")
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", mask), "mask.png")
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", tmp_path / "none.png"), "none.png")
    assert not out.exists()


def test_output_not_writable(capsys, tmp_path, clip):
    src, mask = clip
    assert_one_line_error(
        *run_cli(capsys, "process", src, "-o", tmp_path / "no" / "such" / "o.mp4", "--mask", mask), "does not exist"
    )


def test_output_equal_to_input(capsys, clip):
    src, mask = clip
    before = src.read_bytes()
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", src, "--mask", mask), "same")
    assert src.read_bytes() == before


def test_unknown_engine(capsys, tmp_path, clip):
    src, mask = clip
    code, err = run_cli(capsys, "process", src, "-o", tmp_path / "o.mp4", "--mask", mask, "--engine", "magic")
    assert code == 2
    assert_one_line_error(code, err, "magic")


def test_lossless_needs_mkv(capsys, tmp_path, clip):
    src, mask = clip
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", mask, "--lossless"), ".mkv")
    assert not out.exists()


def test_info_prints_streams(capsys, tmp_path):
    src = tmp_path / "a.mp4"
    make_video(src, frames=5, audio=True)
    assert main(["info", str(src)]) == 0
    out = capsys.readouterr().out
    assert "96x64" in out and "audio aac" in out and "frames     5" in out


@pytest.mark.slow
def test_sigterm_leaves_no_output(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=250, width=320, height=240)
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(240, 320, 100, 80, 220, 160))
    out = tmp_path / "o.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "streamfill", "process", str(src), "-o", str(out), "--mask",
                             str(mask), "--preset", "veryslow"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and not any("partial" in p.name for p in tmp_path.iterdir()):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
    assert "Traceback" not in err


@pytest.mark.slow
def test_demo_runs_and_temporal_beats_per_frame(tmp_path, capsys):
    from streamfill import api
    from streamfill.config import load_config

    per_frame = api.demo(tmp_path / "a", config=load_config(overrides={"temporal": {"mode": "off"}}))
    temporal = api.demo(tmp_path / "b", config=load_config(overrides={"temporal": {"mode": "fast"}}))
    assert per_frame.frames == temporal.frames == 132
    assert per_frame.psnr_hole > per_frame.psnr_hole_input + 5
    assert temporal.psnr_hole > per_frame.psnr_hole + 1
    for r in (per_frame, temporal):
        for p in (r.input, r.output, r.side_by_side):
            assert (tmp_path / p).exists()


@pytest.mark.slow
def test_demo_lossless_writes_mkv(tmp_path):
    """`demo --lossless` offers FFV1, which needs MKV: the demo's videos get that suffix (it failed on .mp4)."""
    run = subprocess.run([sys.executable, "-m", "streamfill", "demo", "--lossless", "--temporal", "off", "-o",
                          str(tmp_path / "d")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "demo_input.mkv", "demo_output.mkv", "demo_side_by_side.mkv"]


def test_a_file_that_is_not_a_video_is_named_without_an_errno(tmp_path):
    """FFmpeg's error number means nothing to a user: the line says what is wrong and nothing else."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    run = subprocess.run([sys.executable, "-m", "streamfill", "info", str(notes)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open" in lines[0] and "Errno" not in lines[0], run.stderr


def test_an_image_that_is_not_an_image_is_named_without_an_errno(capsys, tmp_path, clip):
    _, mask = clip
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture\n")
    out = tmp_path / "o.png"
    code, err = run_cli(capsys, "image", notes, "-o", out, "--mask", mask)
    assert_one_line_error(code, err, "cannot read image", "notes.png")
    assert "Errno" not in err
    assert not out.exists()


def test_start_past_the_end_says_how_long_the_clip_is(capsys, tmp_path, clip):
    src, mask = clip  # 6 frames at 25 fps: 0.24 s
    out = tmp_path / "o.mp4"
    code, err = run_cli(capsys, "process", src, "-o", out, "--mask", mask, "--start", "9")
    assert_one_line_error(code, err, "--start 9 s", "past the end", "0.24 s long")
    assert not out.exists()
    code, err = run_cli(capsys, "masks", src, "-o", tmp_path / "masks", "--box", "10,10,20,20", "--start", "9")
    assert_one_line_error(code, err, "--start 9 s", "past the end")


def test_a_keyframe_before_start_names_the_first_frame_read(capsys, tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=12)
    out = tmp_path / "o.mp4"
    # --start 0.2 s: the first frame read is frame 5; --box without @K means frame 0, which is skipped
    code, err = run_cli(capsys, "process", src, "-o", out, "--box", "10,10,20,20", "--start", "0.2")
    assert_one_line_error(code, err, "keyframe 0 comes before the first frame read (5)", "@5", "--mask-frame 5")
    assert not out.exists()
    code, err = run_cli(capsys, "process", src, "-o", out, "--box", "10,10,20,20@5", "--start", "0.2")
    assert code == 0, err


@pytest.mark.parametrize("flags", [("--start", "nan"), ("--end", "inf"), ("--chunk-seconds", "0")])
def test_times_that_are_not_finite_or_zero_chunks_are_refused(capsys, tmp_path, clip, flags):
    """--start nan was an internal error; --chunk-seconds 0 silently meant 10 s."""
    src, mask = clip
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", mask, *flags), flags[0].lstrip("-"))
    assert not out.exists()


def test_ctrl_c_while_the_commands_load_is_an_interruption(capsys, monkeypatch):
    """Ctrl-C in the first ~0.3 s (the parser imports every command) printed a KeyboardInterrupt traceback."""
    import streamfill.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["info", "x.mp4"]) == 130
    assert capsys.readouterr().err.strip() == "streamfill: interrupted"


@pytest.mark.parametrize("argv", [
    ("eval", "masks", "--case", "tiny", "--seeds", "1", "--frames", "10", "--json", "{tmp}/no/x.json"),
    ("bench", "--engine", "telea", "--clip", "{tmp}/nope.mp4"),
    ("bench", "--engine", "telea", "--no-clip", "--results", "{tmp}/no/r.json"),
])
def test_an_output_that_cannot_be_written_is_refused_before_the_measurement(capsys, tmp_path, argv):
    """They failed only after the whole measurement had run."""
    import time

    t0 = time.process_time()
    code, err = run_cli(capsys, *(a.format(tmp=tmp_path) for a in argv))
    assert_one_line_error(code, err, "no ")
    assert time.process_time() - t0 < 5


def test_masks_preview_on_its_own_output_and_lossy_masks(capsys, tmp_path, clip, caplog):
    import logging

    src, _ = clip
    same = tmp_path / "m.mkv"
    assert_one_line_error(*run_cli(capsys, "masks", src, "--box", "10,10,30,30", "-o", same, "--preview", same),
                          "--preview and -o name the same file")
    with caplog.at_level(logging.WARNING):
        code, _ = run_cli(capsys, "masks", src, "--box", "10,10,30,30", "-o", tmp_path / "m.mp4")
    assert code == 0
    assert any("compressed with loss" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("argv", "words"), [
    (("info", "x.mp4", "--fps", "nan"), "--fps"),
    (("live", "--source", "x.mp4", "--fps", "inf", "--box", "1,1,4,4", "--record", "r.mp4"), "--fps"),
    (("finetune", "x.mp4", "--mask", "m.png", "-o", "x.safetensors", "--device", "tpu"), "--device"),
    (("image", "x.png", "--mask", "m.png", "-o", "o.png", "--device", "tpu"), "--device"),
])
def test_rates_and_devices_that_cannot_be_are_usage_errors(capsys, argv, words):
    """--fps nan/inf and --device tpu were internal errors (ValueError, OverflowError, torch's RuntimeError)."""
    code, err = run_cli(capsys, *argv)
    assert code == 2
    assert_one_line_error(code, err, words)


def test_demo_into_a_file_is_refused_in_one_line(capsys, tmp_path):
    """It said "FileExistsError: [Errno 17] File exists"."""
    target = tmp_path / "taken"
    target.write_text("x")
    assert_one_line_error(*run_cli(capsys, "demo", "-o", target), "is a file")


def test_a_demo_stopped_midway_leaves_no_folder_of_its_own(tmp_path, monkeypatch):
    """Ctrl-C (or a failure) during `demo -o NEW` left the empty folder it had made (the partial videos were
    removed); a folder that was there before stays."""
    from streamfill import api

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "_run_demo", stopped)
    with pytest.raises(KeyboardInterrupt):
        api.demo(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(KeyboardInterrupt):
        api.demo(tmp_path / "mine")
    assert (tmp_path / "mine").is_dir()


@pytest.mark.parametrize(("argv", "words"), [
    (("compile", "--engine", "onnx", "--max-batch", "0"), "--max-batch 0"),
    (("finetune", "{src}", "--mask", "{mask}", "-o", "{tmp}/x.safetensors", "--steps", "0"), "--steps 0"),
    (("batch", "{src}", "--out-dir", "{tmp}/o", "--mask", "{mask}", "--workers", "2"), "--ray"),
    # the default engine (telea) uses no weights: a finetune's output was silently not used
    (("process", "{src}", "--mask", "{mask}", "-o", "{tmp}/o.mp4", "--weights", "{tmp}/x.safetensors"), "--weights"),
    (("process", "{src}", "--mask", "{mask}", "-o", "{tmp}/o.mp4", "--engine", "ns", "--device", "cpu"), "--device"),
    (("image", "{mask}", "--mask", "{mask}", "--sketch", "{mask}", "-o", "{tmp}/o.png", "--engine", "telea"),
     "--sketch"),
    # finetune's output checked before minutes of training, not after them
    (("finetune", "{src}", "--mask", "{mask}", "-o", "{tmp}/o/x.safetensors"), "no folder"),
    (("finetune", "{tmp}", "--mask", "{mask}", "-o", "{tmp}/x.safetensors"), "a folder"),
])
def test_arguments_that_were_silently_ignored_are_refused(capsys, tmp_path, clip, argv, words):
    src, mask = clip
    argv = [a.format(src=src, mask=mask, tmp=tmp_path) for a in argv]
    assert_one_line_error(*run_cli(capsys, *argv), words)
    assert not (tmp_path / "o").exists() and not (tmp_path / "x.safetensors").exists()
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.png").exists()


def test_finetune_does_not_overwrite_weights_without_force(capsys, tmp_path, clip):
    src, mask = clip
    out = tmp_path / "mine.safetensors"
    out.write_bytes(b"the user's earlier weights")
    assert_one_line_error(*run_cli(capsys, "finetune", src, "--mask", mask, "-o", out, "--steps", "1"),
                          "--force")
    assert out.read_bytes() == b"the user's earlier weights"


@pytest.mark.parametrize("target", ["mask", "sketch"])
def test_image_output_on_its_mask_or_sketch_is_refused(capsys, tmp_path, target):
    """`image pic.png --mask m.png -o m.png` wrote the filled picture over the user's mask (exit 0)."""
    pic, mask, sketch = tmp_path / "pic.png", tmp_path / "m.png", tmp_path / "s.png"
    write_png(pic, np.full((32, 48, 3), 90, np.uint8))
    write_png(mask, box_mask(32, 48, 4, 4, 10, 10))
    write_png(sketch, box_mask(32, 48, 6, 6, 2, 2))
    before = {p: p.read_bytes() for p in (mask, sketch)}
    out = {"mask": mask, "sketch": sketch}[target]
    assert_one_line_error(*run_cli(capsys, "image", pic, "--mask", mask, "--sketch", sketch, "-o", out,
                                   "--engine", "telea"), "overwrite")
    assert {p: p.read_bytes() for p in (mask, sketch)} == before


@pytest.mark.parametrize(("flags", "words"), [
    (("--workers", "3"), "--ray"),
    (("--gpus-per-worker", "1"), "--ray"),
    (("--cpus-per-worker", "2"), "--ray"),
    (("--ray-timeout", "5"), "--ray"),
    (("--workers", "3", "--chunk-seconds", "1"), "--ray"),
    (("--preroll", "5"), "--chunk-seconds"),
    (("--chunk-at", "cuts"), "--chunk-seconds"),
])
def test_process_scale_out_flags_without_ray_are_refused(capsys, tmp_path, clip, flags, words):
    """`process --workers 3` (no --ray) ran in one process as if the flag was not there, like --preroll and
    --chunk-at without chunks; `batch --workers` was already refused. --cpus-per-worker and --ray-timeout had
    defaults of their own, so given without --ray they could not even be told apart from not given."""
    src, mask = clip
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", mask, *flags), words)
    assert not out.exists()


@pytest.mark.parametrize("flags", [("--ray-timeout", "nan"), ("--ray-timeout", "-5"), ("--ray-timeout", "0"),
                                   ("--cpus-per-worker", "nan"), ("--cpus-per-worker", "0"),
                                   ("--gpus-per-worker", "inf"), ("--gpus-per-worker", "-1")])
def test_ray_numbers_that_cannot_be_are_usage_errors(capsys, tmp_path, clip, flags):
    """--ray-timeout nan or -5 was an internal error (socket timeout ValueError); --cpus-per-worker nan
    passed the '<= 0' check."""
    src, mask = clip
    out = tmp_path / "o.mp4"
    code, err = run_cli(capsys, "process", src, "-o", out, "--mask", mask, "--ray", "127.0.0.1:1", *flags)
    assert code == 2
    assert_one_line_error(code, err, flags[0])
    assert not out.exists()


@pytest.mark.parametrize("command", ["process", "masks"])
@pytest.mark.parametrize("empty", ["-o", "--mask"])
def test_an_empty_path_is_refused(capsys, tmp_path, clip, monkeypatch, command, empty):
    """`--mask "$MASK"` with MASK unset read the current folder as per-frame masks (also in chunks and batch);
    `-o ""` was an internal error (exit 70)."""
    src, mask = clip
    monkeypatch.chdir(tmp_path)  # holds m.png: the current folder looked like a folder of masks
    args = {"-o": str(tmp_path / "o.mkv"), "--mask": str(mask)}
    args[empty] = ""
    code, err = run_cli(capsys, command, src, "-o", args["-o"], "--mask", args["--mask"])
    assert code == 1
    assert_one_line_error(code, err, empty, "empty")
    assert not (tmp_path / "o.mkv").exists()
    if empty == "--mask" and command == "process":
        code, err = run_cli(capsys, command, src, "-o", args["-o"], "--mask", "", "--chunk-seconds", "1")
    assert code == 1
    assert_one_line_error(code, err, empty, "empty")
    assert not (tmp_path / "o.mkv").exists()


def test_an_output_under_a_file_or_a_sequence_name_taken_by_a_file(capsys, tmp_path, clip):
    """`-o clip.mp4/x.mp4` said "NotADirectoryError: [Errno 20] ..."; `-o notes` (no suffix: a PNG folder)
    where notes is a file said "output folder notes exists and is not empty"."""
    src, mask = clip
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", src / "x.mp4", "--mask", mask),
                          "is a file", "not a folder")
    assert "errno" not in capsys.readouterr().err.lower()
    taken = tmp_path / "notes"
    taken.write_text("x")
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", taken, "--mask", mask), "is a file")
    assert taken.read_text() == "x"


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_eval_temporal_start_that_is_not_finite_is_a_usage_error(capsys, value):
    """`eval temporal clip.mp4 --start inf` was an internal error (Fraction('inf')); --start nan measured
    something and exited 0."""
    code, err = run_cli(capsys, "eval", "temporal", "x.mp4", "--start", value)
    assert code == 2
    assert_one_line_error(code, err, "--start")


def test_live_temporal_flag_turns_temporal_completion_on(capsys, tmp_path, clip):
    """`live --temporal` (an on/off flag there) reached config_from_args as temporal.mode = True: every run
    with it failed with "temporal.mode = True: must be one of off, fast, quality"."""
    src, _ = clip
    stats = tmp_path / "stats.json"
    code, err = run_cli(capsys, "live", "--source", src, "--box", "10,10,20,20", "--record", tmp_path / "r.mp4",
                        "--temporal", "-q", "--stats-json", stats)
    assert code == 0, err
    assert stats.exists()


def test_window_with_temporal_off_is_refused(capsys, tmp_path, clip):
    """`--temporal off --window 5` ran per frame as if --window had not been given."""
    src, mask = clip
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", mask, "--temporal", "off",
                                   "--window", "5"), "--window", "--temporal off")
    assert not out.exists()


def test_masks_into_an_upper_case_mkv_are_lossless(capsys, tmp_path, clip):
    """`masks ... -o masks.MKV` wrote H.264 (masks whose edges blur into grey) without the lossy-masks note:
    the .mkv test was case-sensitive, the note's was not."""
    import av

    src, mask = clip
    out = tmp_path / "masks.MKV"
    code, err = run_cli(capsys, "masks", src, "--mask", mask, "-o", out)
    assert code == 0, err
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "ffv1"


@pytest.mark.parametrize("fps", ["1e308", "1e-5", "1e-9"])
def test_an_image_sequence_rate_out_of_range_is_refused_before_any_work(capsys, tmp_path, fps):
    """--fps 1e308 was an internal error (OverflowError); --fps 1e-5 failed in the .mp4 trailer after the whole
    run ('Not yet implemented in FFmpeg'); --fps 1e-9 said 'must be positive, got 1e-09'."""
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(2):
        write_png(folder / f"{i}.png", np.full((16, 16, 3), 40 * i, np.uint8))
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(16, 16, 2, 2, 6, 6))
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", folder, "--fps", fps, "-o", out, "--mask", mask),
                          "--fps", "0.001")
    assert not out.exists()


def test_mask_frame_with_a_box_is_refused(capsys, tmp_path, clip):
    """`--box 10,10,20,20 --mask-frame 3` tracked the box from frame 0, --mask-frame silently unused (a box
    names its frame with @K)."""
    src, _ = clip
    out = tmp_path / "m.mkv"
    assert_one_line_error(*run_cli(capsys, "masks", src, "-o", out, "--box", "10,10,20,20", "--mask-frame", "3"),
                          "--mask-frame", "@3")
    assert not out.exists()


def test_output_piped_into_a_reader_that_leaves_stops_quietly():
    # `streamfill weights info W | head -1`: the reader closed the pipe, and the next write printed
    # "streamfill: error: BrokenPipeError: [Errno 32] Broken pipe" with exit 1, as if something had failed
    weights = Path(__file__).resolve().parents[1] / "streamfill" / "data" / "deepfill_default.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "streamfill", "weights", "info", str(weights)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the interpreter has started: every write finds the reader gone
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141
    assert err == ""


def test_mp4_cut_between_video_packets_is_truncated_not_short(capsys, tmp_path, clip):
    """A truncated MP4 whose cut falls between two video packets (in the audio's, say) ends without a damaged packet;
    its index lists every frame, so fewer frames is a cut file: an error, and --salvage keeps what came before."""
    import av

    _, mask = clip
    src = tmp_path / "whole.mp4"
    make_video(src, frames=60, options={"movflags": "+faststart"})
    with av.open(str(src)) as c:
        at = [p.pos for p in c.demux(video=0) if p.size][30]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[:at])  # exactly before the 31st video packet
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", cut, "-o", out, "--mask", mask), "cut.mp4", "truncated",
                          "--salvage")
    assert not out.exists()
    code, err = run_cli(capsys, "process", cut, "-o", out, "--mask", mask, "-q", "--salvage")
    assert code == 0 and "kept the" in err and out.exists()


@pytest.mark.parametrize("argv, words", [
    (["--start", "-1"], ["--start", "0 or more"]),
    (["--end", "0"], ["--end", "more than 0"]),
    (["--lossless", "--crf", "40"], ["--crf", "--lossless"]),
    (["--lossless", "--preset", "slow"], ["--preset", "--lossless"]),
])
def test_out_of_range_and_conflicting_encode_flags(capsys, tmp_path, clip, argv, words):
    src, mask = clip
    out = tmp_path / ("o.mkv" if "--lossless" in argv else "o.mp4")
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", mask, *argv), *words)
    assert not out.exists()


def test_eval_temporal_on_a_one_frame_clip(capsys, tmp_path):
    one = tmp_path / "one.mp4"
    make_video(one, frames=1)
    assert_one_line_error(*run_cli(capsys, "eval", "temporal", one, "--frames", "10", "--method", "classical"),
                          "one.mp4", "1 frame", "at least 2")


def test_bench_refuses_a_clip_that_is_no_video_before_timing(capsys, tmp_path, monkeypatch):
    from streamfill.eval import bench

    def timed(*_a, **_k):
        raise AssertionError("engines were timed before the clip was checked")

    monkeypatch.setattr(bench, "bench_engines", timed)
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n")
    assert_one_line_error(*run_cli(capsys, "bench", "--clip", text, "--runs", "1"), "text.mp4")


def test_train_refuses_zero_steps_before_reading_data(capsys, tmp_path):
    # a data folder that does not exist: the step count is refused before anything looks at it
    assert_one_line_error(*run_cli(capsys, "train", "--out", tmp_path / "run", "--data", tmp_path / "nope",
                                   "--steps", "0"), "--steps 0")
    assert not (tmp_path / "run").exists()


def test_an_output_that_cannot_be_created_fails_before_any_frame(capsys, tmp_path, clip, monkeypatch):
    """PyAV creates the file only at the first packet, which x264 holds back ~40 frames: the whole clip was
    processed before `-o /sys/o.mp4` failed. Here the temporary name is taken by a folder (root may write anywhere)."""
    from streamfill.io import encode

    src, mask = clip
    out = tmp_path / "o.mp4"
    encode._temp_path(out).mkdir()
    decoded = []
    frames = encode.VideoWriter.write
    monkeypatch.setattr(encode.VideoWriter, "write", lambda self, f: (decoded.append(f.index), frames(self, f)))
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", mask), "cannot create", "o.mp4")
    assert decoded == [] and not out.exists()


def test_an_output_format_ffmpeg_does_not_know_leaves_no_partial(capsys, tmp_path, clip):
    src, mask = clip
    out = tmp_path / "o.xyz"
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask", mask), "o.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "m.png"]


@pytest.mark.parametrize("source", ["zmq:tcp://*:5560", "zmq:sub:tcp://*:5561"])
def test_a_mask_source_given_a_bind_address_is_one_line(capsys, tmp_path, clip, source):
    """`tcp://*:PORT` is where a plugin binds; streamfill connects to it. It was an internal error (exit 70)."""
    src, _ = clip
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run_cli(capsys, "process", src, "-o", out, "--mask-source", source), "cannot connect",
                          "tcp://*:556")
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["serve", "--bind", "inproc://x"],
    ["process", "IN", "-o", "OUT", "--mask-source", "zmq:inproc://x"],
    ["process", "IN", "-o", "OUT", "--mask", "MASK", "--sink", "zmq:push:inproc://y"],
])
def test_inproc_endpoints_are_refused_at_once(capsys, tmp_path, clip, argv):
    """Every part of streamfill has a ZeroMQ context of its own, so an inproc:// endpoint can never be reached:
    serve listened on it and served nothing, a mask source waited 15 s for a mask."""
    src, mask = clip
    out = tmp_path / "o.mp4"
    args = [{"IN": src, "OUT": out, "MASK": mask}.get(a, a) for a in argv]
    assert_one_line_error(*run_cli(capsys, *args), "inproc://", "ipc://")
    assert not out.exists()


@pytest.mark.parametrize("out", [".", "./", "/"])
def test_the_current_folder_or_the_root_as_a_png_sequence_output_is_one_line(capsys, tmp_path, clip, monkeypatch,
                                                                            out):
    """`process clip.mp4 -o .` was an internal error (a path with no name to build the folder under)."""
    src, mask = clip
    here = tmp_path / "empty"
    here.mkdir()
    monkeypatch.chdir(here)
    assert_one_line_error(*run_cli(capsys, "process", src, "--mask", mask, "-o", out), "name a new folder")
    assert list(here.iterdir()) == []


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"start": float("nan")}, "--start nan"), ({"start": "0.1"}, "--start '0.1'"), ({"fps": "25"}, "--fps '25'"),
    ({"start": -1}, "0 or more"), ({"end": 0}, "more than 0"), ({"end": float("inf")}, "--end inf"),
])
def test_library_callers_get_the_command_line_s_checks_on_start_end_and_fps(tmp_path, clip, kwargs, words):
    """api.process(start="0.1") was a TypeError, start=nan a ValueError from Fraction, start=-1 was taken."""
    from streamfill import api
    from streamfill.errors import InputError

    src, mask = clip
    with pytest.raises(InputError, match=re.escape(words)):
        api.process(src, tmp_path / "o.mp4", mask=mask, **kwargs)
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize(("argv", "refused"), [
    (["process", "x.mp4", "-o", "o.mp4", "--mask", "m.png", "--weights", "w.safetensors"], True),
    (["serve", "--device", "cpu"], True),
    (["eval", "temporal", "x.mp4", "--weights", "w.safetensors"], False),  # its generator rows use them
    (["bench", "--weights", "w.safetensors"], False),
    (["compile", "--device", "cpu"], False),
])
def test_neural_flags_are_refused_only_where_no_generator_would_use_them(argv, refused):
    from streamfill.cli import build_parser
    from streamfill.cli.common import config_from_args
    from streamfill.errors import InputError

    args = build_parser().parse_args(argv)
    if refused:
        with pytest.raises(InputError, match="engine telea uses none"):
            config_from_args(args)
    else:
        config_from_args(args)


@pytest.mark.parametrize("argv", [
    ("eval", "masks", "--background", "{src}", "--trajectory", "translate", "--frames", "4", "--json", "{src}"),
    ("eval", "temporal", "{src}", "--width", "0", "--frames", "4", "--method", "fast", "--json", "{src}"),
    ("bench", "--engine", "telea", "--size", "64", "--runs", "1", "--clip", "{src}", "--results", "{src}"),
    ("train", "eval", "--data", "{photos}", "--max-side", "64", "--method", "telea", "--results", "{photos}/a.png"),
])
def test_a_report_written_over_an_input_is_refused(capsys, tmp_path, clip, argv):
    """eval/bench/train eval wrote their JSON over the clip or photo they measured, and exited 0."""
    src, _ = clip
    photos = tmp_path / "photos"
    photos.mkdir()
    write_png(photos / "a.png", np.full((64, 64, 3), 90, np.uint8))
    before = {p: p.read_bytes() for p in (src, photos / "a.png")}
    code, err = run_cli(capsys, *(a.format(src=src, photos=photos) for a in argv))
    assert_one_line_error(code, err, "input")
    assert all(p.read_bytes() == data for p, data in before.items())


@pytest.mark.parametrize("argv", [
    ("eval", "temporal", "{src}", "--seed", "-1"),
    ("eval", "temporal", "--corpus", "--seeds", "0,-1"),
    ("train", "eval", "--data", "{tmp}", "--seed", "-1"),
    ("train", "masks", "-o", "{tmp}/g.png", "--seed", "-1"),
    ("finetune", "{src}", "--mask", "{mask}", "-o", "{tmp}/f.safetensors", "--seed", "-1"),
])
def test_a_negative_seed_is_refused_in_one_line(capsys, tmp_path, clip, argv):
    """It was an internal error (numpy's SeedSequence), exit 70."""
    src, mask = clip
    code, err = run_cli(capsys, *(a.format(src=src, mask=mask, tmp=tmp_path) for a in argv))
    assert code in (1, 2)
    assert "internal error" not in err and "seed" in err and "Traceback" not in err


@pytest.mark.parametrize(("argv", "words"), [
    (("bench", "--check"), "--check"),
    (("bench", "-o", "{tmp}/B.md", "--engine", "telea", "--no-clip"), "-o"),
    (("eval", "masks", "--trajectory", "translate", "--frames", "4", "--seeds", "7"), "--seeds"),
    (("eval", "masks", "--object-mask", "{mask}", "--frames", "4", "--trajectory", "translate"), "--object"),
])
def test_flags_that_would_be_ignored_in_this_mode_are_refused(capsys, tmp_path, clip, argv, words):
    """bench --check without --report benchmarked and passed (a CI step that always passes); eval masks --seeds
    in trajectory mode and --object-mask without --object were ignored."""
    _, mask = clip
    assert_one_line_error(*run_cli(capsys, *(a.format(tmp=tmp_path, mask=mask) for a in argv)), words)
    assert not (tmp_path / "B.md").exists()


def test_a_missing_occluder_is_one_line_naming_its_flag(capfd, tmp_path):
    """OpenCV printed its own warning line first, and the error spoke of 'the object image'."""
    code = main(["eval", "masks", "--trajectory", "occlusion", "--frames", "4", "--size", "96x64",
                 "--occluder", str(tmp_path / "nofile.png")])
    err = capfd.readouterr().err
    assert_one_line_error(code, err, "--occluder", "no such file")


def test_masks_into_a_png_name_is_refused_without_a_note_first(capsys, tmp_path, clip):
    src, _ = clip
    code, err = run_cli(capsys, "masks", src, "--box", "1,1,5,5", "-o", tmp_path / "x.png")
    assert_one_line_error(code, err, ".png")
    assert "compressed with loss" not in err


def test_eval_reports_show_no_nan_or_inf_and_write_strict_json(capsys, tmp_path, clip):
    """An occluder over the whole frame empties the tracked mask: the centroid error is infinite. The table
    showed 'inf' and the JSON a bare Infinity, which strict readers refuse; eval temporal's table showed 'nan'
    for the logo occluder's empty inner region."""
    import json

    src, _ = clip
    occluder = tmp_path / "big.png"
    write_png(occluder, (np.random.default_rng(3).random((400, 400, 3)) * 255).astype(np.uint8))
    report = tmp_path / "r.json"
    code, _ = run_cli(capsys, "eval", "masks", "--trajectory", "occlusion", "--frames", "6", "--size", "96x64",
                      "--occluder", occluder, "--json", report)
    assert code == 0

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))

    data = strict(report.read_text())
    assert data["trajectories"][0]["max_centroid_error_px"] is None
    assert main(["eval", "masks", "--trajectory", "occlusion", "--frames", "6", "--size", "96x64",
                 "--occluder", str(occluder)]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\b(nan|inf)\b", out) and "empty" in out
    clip20 = tmp_path / "c20.mp4"
    make_video(clip20, frames=10)
    temporal = tmp_path / "t.json"
    assert main(["eval", "temporal", str(clip20), "--width", "0", "--frames", "10", "--method", "fast",
                 "--occluder", "logo", "--json", str(temporal)]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\b(nan|inf)\b", out), out
    strict(temporal.read_text())


def test_a_chunked_run_into_a_folder_that_refuses_files_is_one_line(capsys, tmp_path, clip, monkeypatch):
    """Root's os.access says yes to /sys; the work folder's mkdir then raised a bare PermissionError."""
    real = Path.mkdir

    def refuse(self, *a, **k):
        if ".chunks-" in self.name:
            raise PermissionError(1, "Operation not permitted")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", refuse)
    src, mask = clip
    code, err = run_cli(capsys, "process", src, "--mask", mask, "-o", tmp_path / "o.mp4", "--chunk-seconds", "0.1")
    assert_one_line_error(code, err, "cannot write into", "not permitted")


@pytest.mark.parametrize(("config", "flags", "out", "words"), [
    ("[io]\nlossless = true\n", ("--crf", "20"), "o.mkv", ("--crf", "lossless = true (--config)")),
    ("[io]\nlossless = true\n", ("--preset", "slow"), "o.mkv", ("--preset", "--config")),
    ('[temporal]\nmode = "off"\n', ("--window", "3"), "o.mp4", ("--window 3", '"off" (--config)')),
    ("", ("--crf", "40", "--preset", "ultrafast"), "frames/", ("--crf, --preset", "png folder")),
    ("", ("--lossless",), "frames/", ("--lossless", "png folder")),
])
def test_flags_that_the_config_file_or_the_output_makes_void_are_refused(capsys, tmp_path, clip, config, flags,
                                                                         out, words):
    """The same combinations as flags were refused; through --config (or into a PNG folder, which has no encoder
    setting) they were silently ignored."""
    src, mask = clip
    cfg = tmp_path / "c.toml"
    cfg.write_text(config)
    target = tmp_path / out
    assert_one_line_error(*run_cli(capsys, "process", src, "--mask", mask, "--config", cfg, *flags, "-o", target),
                          *words)
    assert not target.exists()


@pytest.mark.parametrize(("flags", "words"), [
    (("--lossless",), "--record"),
    (("--speed", "3"), "--realtime"),
])
def test_live_flags_for_an_output_or_a_pacing_not_asked_for_are_refused(capsys, clip, flags, words):
    src, _ = clip
    assert_one_line_error(*run_cli(capsys, "live", "--source", src, "--box", "10,10,20,20", "--publish",
                                   "tcp://127.0.0.1:5689", *flags), words)


def test_eval_temporal_keeps_window_whatever_the_config_s_mode(capsys, tmp_path, clip):
    """eval temporal sets the mode per method, so --window applies to its temporal rows even when --config
    turns temporal off (the conflict check refused it)."""
    src, _ = clip
    cfg = tmp_path / "off.toml"
    cfg.write_text('[temporal]\nmode = "off"\n')
    code, err = run_cli(capsys, "eval", "temporal", src, "--config", cfg, "--window", "3", "--frames", "4",
                        "--width", "0", "--method", "fast")
    assert code == 0, err


@pytest.mark.parametrize("argv", [
    ("masks", "{src}", "--mask", "{mask}", "--mask-track", "--mask", "{mask}", "--mask-frame", "3",
     "-o", "{tmp}/m.mkv"),
    ("masks", "{src}", "--mask", "{mask}", "--mask-frame", "1", "--mask-frame", "2", "-o", "{tmp}/m.mkv"),
    ("process", "{src}", "--mask", "{mask}", "--mask", "{mask}", "-o", "{tmp}/o.mp4"),
])
def test_a_mask_given_twice_is_a_usage_error(capsys, tmp_path, clip, argv):
    """The last --mask silently won: a frame-0 mask followed by a 'correction' mask at frame K dropped the first
    (the docs offered that as a correction)."""
    src, mask = clip
    code, err = run_cli(capsys, *(a.format(src=src, mask=mask, tmp=tmp_path) for a in argv))
    assert code == 2 and "given twice" in err
    assert not list(tmp_path.glob("[mo].m*"))
