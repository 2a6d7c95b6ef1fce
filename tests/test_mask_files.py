"""Mask and picture files as users make them in image editors: layers painted on transparency, masks that
mark nothing, a JPEG's EXIF orientation, pictures with an unusual suffix."""

from __future__ import annotations

import logging
import struct

import cv2
import numpy as np
import pytest
from media import make_video, read_frames, write_png
from test_cli_errors import assert_one_line_error, run_cli

from streamfill import api
from streamfill.cli import main
from streamfill.config import Config
from streamfill.io import is_image_file, open_video, read_image
from streamfill.io.images import mask_grey
from streamfill.io.seek import decode_png_mask

H, W = 64, 96
BOX = (slice(20, 40), slice(30, 60))


def rgba_png(path, colour: tuple[int, int, int], alpha: np.ndarray) -> None:
    """A layer painted in ``colour`` where ``alpha`` is 255, transparent elsewhere; the colour is kept under the
    transparent pixels too (as editors do)."""
    bgra = np.zeros((*alpha.shape, 4), np.uint8)
    bgra[..., :3] = colour[::-1]
    bgra[..., 3] = alpha
    cv2.imwrite(str(path), bgra)


def box_alpha() -> np.ndarray:
    a = np.zeros((H, W), np.uint8)
    a[BOX] = 255
    return a


@pytest.mark.parametrize("colour", [(255, 255, 255), (40, 40, 40), (0, 0, 0), (255, 0, 0)])
def test_what_is_painted_on_a_transparent_layer_is_the_mask_whatever_its_colour(tmp_path, colour):
    path = tmp_path / "layer.png"
    rgba_png(path, colour, box_alpha())
    want = box_alpha() > 127
    assert np.array_equal(read_image(path, grey=True) > 127, want)
    assert np.array_equal(decode_png_mask(path.read_bytes()) > 127, want)   # the studio's uploads


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_a_16_bit_mask_reads_as_the_command_line_and_the_studio_read_it(tmp_path, channels):
    box = box_alpha().astype(np.uint16) * 257  # 0 / 65535
    picture = box if channels == 1 else np.dstack([box] * channels)
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), picture)
    got = decode_png_mask(path.read_bytes())
    assert got.dtype == np.uint8
    assert np.array_equal(got, read_image(path, grey=True))
    assert np.array_equal(got > 127, box_alpha() > 127)


def test_an_opaque_black_and_white_mask_with_a_transparent_border_keeps_its_black():
    colour = np.zeros((H, W), np.uint8)
    colour[BOX] = 255
    alpha = np.full((H, W), 255, np.uint8)
    alpha[:, :5] = 0   # a transparent margin around an otherwise ordinary mask
    grey = mask_grey(colour, alpha)
    assert np.array_equal(grey > 127, colour > 127)


def exif_jpeg(path, picture_rgb: np.ndarray, orientation: int) -> None:
    """``picture_rgb`` stored as a JPEG with an EXIF Orientation tag (6: shown turned 90 degrees clockwise)."""
    ok, data = cv2.imencode(".jpg", picture_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHI", 0x0112, 3, 1) + struct.pack(">HH", orientation, 0) + struct.pack(">I", 0)
    app1 = b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\x00\x00" + tiff
    raw = data.tobytes()
    path.write_bytes(raw[:2] + app1 + raw[2:])


def test_a_jpeg_is_read_as_it_is_shown_and_image_removes_what_the_mask_marks_there(tmp_path):
    stored = np.full((H, W, 3), 90, np.uint8)
    stored[5:15, 70:90] = (250, 30, 30)       # a red object, top right as stored
    exif_jpeg(tmp_path / "photo.jpg", stored, 6)
    shown = read_image(tmp_path / "photo.jpg")
    assert shown.shape == (W, H, 3)            # turned: as viewers (and OpenCV) show it
    red = (shown[..., 0] > 180) & (shown[..., 1] < 100)
    assert red.sum() > 150
    ys, xs = np.nonzero(red)   # turned clockwise: the object, top right as stored, is bottom right as shown
    assert 70 <= ys.mean() <= 90 and 48 <= xs.mean() <= 59
    mask = np.zeros((W, H), np.uint8)
    mask[cv2.dilate(red.astype(np.uint8), np.ones((5, 5))) > 0] = 255   # drawn over the picture as shown
    write_png(tmp_path / "mask.png", mask)
    out = tmp_path / "out.png"
    code = main(["image", str(tmp_path / "photo.jpg"), "--mask", str(tmp_path / "mask.png"), "--engine", "telea",
                 "-o", str(out)])
    assert code == 0
    result = read_image(out)
    assert result.shape == (W, H, 3)
    assert ((result[..., 0] > 180) & (result[..., 1] < 100)).sum() == 0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_shown_as_opencv_shows_it_mirrors_included(tmp_path, orientation):
    """OpenCV's imread applies all eight EXIF orientations; the mirrored ones (2, 4, 5, 7) came out turned
    instead of mirrored (FFmpeg reports a mirror as a plain rotation)."""
    yy, xx = np.mgrid[0:H, 0:W]
    stored = np.stack([xx * 255 // W, yy * 255 // H, np.full_like(xx, 60)], axis=2).astype(np.uint8)
    stored[2:12, 3:20] = 255      # a white block near one corner: no two orientations look alike
    exif_jpeg(tmp_path / "p.jpg", stored, orientation)
    shown_by_opencv = cv2.imread(str(tmp_path / "p.jpg"))[..., ::-1]
    shown = read_image(tmp_path / "p.jpg")
    assert shown.shape == shown_by_opencv.shape
    assert np.abs(shown.astype(int) - shown_by_opencv).mean() < 3   # two JPEG decoders: not bit-exact
    assert read_image(tmp_path / "p.jpg", grey=True).shape == shown.shape[:2]
    with open_video(tmp_path / "p.jpg") as r:  # the photo given to `process` as a one-frame clip: the same
        assert np.array_equal(next(iter(r)).image, shown)


@pytest.mark.parametrize("value", [0, 1, 100])
def test_a_mask_that_marks_nothing_says_so(tmp_path, caplog, value):
    """An all-black mask, or one painted at 1 or 100 (under the threshold, 127): nothing is removed, and the
    run says why instead of passing the clip through silently."""
    src = tmp_path / "in.mp4"
    make_video(src, frames=4)
    mask = np.zeros((H, W), np.uint8)
    mask[BOX] = value
    write_png(tmp_path / f"m{value}.png", mask)
    with caplog.at_level(logging.WARNING):
        result = api.process(src, tmp_path / "out.mp4", mask=tmp_path / f"m{value}.png", config=Config())
    assert result.filled == 0
    notes = [r.getMessage() for r in caplog.records if "nothing is removed" in r.getMessage()]
    assert len(notes) == 1 and (("all black" in notes[0]) if value == 0 else (f"brightest is {value}" in notes[0]))


def test_image_honours_the_configured_threshold(tmp_path):
    picture = np.full((H, W, 3), 90, np.uint8)
    picture[BOX] = (250, 30, 30)
    write_png(tmp_path / "in.png", picture)
    mask = np.zeros((H, W), np.uint8)
    mask[22:38, 32:58] = 100
    write_png(tmp_path / "m.png", mask)
    (tmp_path / "low.toml").write_text("[mask]\nthreshold = 50\n")
    out = tmp_path / "out.png"
    assert main(["image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "m.png"), "--engine", "telea",
                 "--config", str(tmp_path / "low.toml"), "-o", str(out)]) == 0
    assert not np.array_equal(read_image(out), picture)


def test_a_single_picture_with_another_suffix_is_a_mask_for_every_frame(tmp_path):
    """A JPEG saved as .jfif (or with no suffix) was read as a one-frame mask video: "has 1 masks"."""
    src = tmp_path / "in.mp4"
    make_video(src, frames=6)
    mask = np.zeros((H, W), np.uint8)
    mask[BOX] = 255
    ok, data = cv2.imencode(".jpg", mask)
    (tmp_path / "mask.jfif").write_bytes(data.tobytes())
    assert is_image_file(tmp_path / "mask.jfif") and not is_image_file(src)
    result = api.process(src, tmp_path / "out.mp4", mask=tmp_path / "mask.jfif", config=Config())
    assert result.frames == 6 and result.filled == 6
    assert len(read_frames(tmp_path / "out.mp4")) == 6


def test_image_refuses_a_video_or_a_folder_as_its_picture(tmp_path, capsys):
    write_png(tmp_path / "in.png", np.full((H, W, 3), 90, np.uint8))
    make_video(tmp_path / "clip.mp4", frames=3)
    (tmp_path / "folder.png").mkdir()
    assert_one_line_error(*run_cli(capsys, "image", tmp_path / "in.png", "--mask", tmp_path / "clip.mp4",
                                   "-o", tmp_path / "o.png"), "not a still picture")
    assert_one_line_error(*run_cli(capsys, "image", tmp_path / "folder.png", "--mask", tmp_path / "in.png",
                                   "-o", tmp_path / "o.png"), "is a folder")
    assert not (tmp_path / "o.png").exists()


def test_image_says_what_the_output_cannot_keep(tmp_path, caplog):
    """A picture with transparency, or 16 bits per channel, comes out as 8-bit RGB: the run says so."""
    bgra = np.full((H, W, 4), 200, np.uint16) * 257
    bgra[..., 3] = 0
    bgra[10:50, 10:80, 3] = 65535
    cv2.imwrite(str(tmp_path / "deep.png"), bgra)
    mask = np.zeros((H, W), np.uint8)
    mask[BOX] = 255
    write_png(tmp_path / "m.png", mask)
    with caplog.at_level(logging.WARNING):
        assert main(["image", str(tmp_path / "deep.png"), "--mask", str(tmp_path / "m.png"), "--engine", "telea",
                     "-o", str(tmp_path / "out.png")]) == 0
    notes = [r.getMessage() for r in caplog.records if "8-bit RGB" in r.getMessage()]
    assert len(notes) == 1 and "has transparency and is 16-bit" in notes[0]
    # an RGBA picture opaque everywhere (OpenCV and many editors save one) loses nothing: no note
    opaque = np.full((H, W, 4), 255, np.uint8)
    cv2.imwrite(str(tmp_path / "opaque.png"), opaque)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["image", str(tmp_path / "opaque.png"), "--mask", str(tmp_path / "m.png"), "--engine", "telea",
                     "-o", str(tmp_path / "out2.png")]) == 0
    assert not [r for r in caplog.records if "8-bit RGB" in r.getMessage()]


def test_a_boolean_mask_that_marks_something_is_not_called_empty(tmp_path, caplog):
    """A bool array (API callers) has brightest value 1: it was said to mark nothing, yet it was filled."""
    from streamfill.masks import StaticMask
    from streamfill.types import Frame

    mask = np.zeros((H, W), bool)
    mask[BOX] = True
    frames = [Frame(np.zeros((H, W, 3), np.uint8), 0, 1, 0)]
    with caplog.at_level(logging.WARNING):
        (_, prepared), = StaticMask(mask, name="bool-mask").pair(frames)
    assert prepared.any() and not [r for r in caplog.records if "nothing is removed" in r.getMessage()]


def test_a_mask_folder_with_one_wrong_size_names_that_file(tmp_path, capsys):
    src = tmp_path / "in.mp4"
    make_video(src, frames=4)
    folder = tmp_path / "masks"
    folder.mkdir()
    for i in range(4):
        write_png(folder / f"{i:04d}.png", np.zeros((H if i != 2 else H - 8, W), np.uint8))
    code, err = run_cli(capsys, "process", src, "--mask", folder, "-o", tmp_path / "out.mp4", "-q")
    assert_one_line_error(code, err, "0002.png", f"{W}x{H - 8}")
    assert not (tmp_path / "out.mp4").exists()
