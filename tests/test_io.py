"""Video I/O contracts: frame count, pts, audio, pixels, atomic outputs."""

import logging
from fractions import Fraction

import numpy as np
import pytest
from media import audio_packets, box_mask, make_video, make_x264_clip, pattern, read_frames, write_png

from streamfill import api
from streamfill.config import Config, IOConfig, MaskConfig, load_config
from streamfill.errors import DecodeError, InputError, OutputError
from streamfill.io import open_output, open_video


def lossless_config(**mask):
    return load_config(overrides={"io": {"lossless": True}, "mask": {"dilate": 0, "feather": 0, **mask}})


def test_decode_keeps_every_frame_and_pts(tmp_path):
    src = tmp_path / "in.mp4"
    pts = make_video(src, frames=17, audio=True)
    with open_video(src) as r:
        frames = list(r)
        assert r.info.has_audio
    assert [f.index for f in frames] == list(range(17))
    assert [f.time for f in frames] == [p * Fraction(1, 25) for p in pts]
    assert frames[0].image.dtype == np.uint8 and frames[0].image.shape == (64, 96, 3)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_process_keeps_frames_pts_audio_and_known_pixels(tmp_path, suffix):
    src = tmp_path / "in.mp4"
    make_video(src, frames=20, audio=True)
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(64, 96, 30, 20, 50, 40))
    out = tmp_path / f"out{suffix}"
    cfg = lossless_config() if suffix == ".mkv" else load_config(overrides={"mask": {"dilate": 0, "feather": 0}})
    result = api.process(src, out, mask=mask, config=cfg)
    assert result.frames == 20
    a, b = read_frames(src), read_frames(out)
    assert len(a) == len(b) == 20
    tol = Fraction(1, 1000) if suffix == ".mkv" else 0  # Matroska stores milliseconds
    assert all(abs(ta - tb) <= tol for (ta, _), (tb, _) in zip(a, b, strict=True))
    assert audio_packets(src) == audio_packets(out)  # remuxed byte for byte
    keep = box_mask(64, 96, 30, 20, 50, 40) == 0
    for (_, ia), (_, ib) in zip(a, b, strict=True):
        if suffix == ".mkv":
            assert np.array_equal(ia[keep], ib[keep])
        else:
            mse = np.mean((ia[keep].astype(float) - ib[keep]) ** 2)
            assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 30  # a second lossy encode of a busy pattern


def test_variable_frame_rate_pts_survive(tmp_path):
    src = tmp_path / "vfr.mkv"
    pts = [0, 40, 70, 160, 170, 300, 420]
    make_video(src, vfr_pts=pts, time_base=Fraction(1, 1000))
    out = tmp_path / "out.mp4"
    api.process(src, out, mask=_mask(tmp_path, 64, 96), config=Config())
    assert [t for t, _ in read_frames(out)] == [Fraction(p, 1000) for p in pts]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm"])
def test_odd_sizes(tmp_path, suffix):
    src = tmp_path / "odd.mkv"
    make_video(src, width=97, height=65, frames=5, codec="ffv1")
    out = tmp_path / f"out{suffix}"
    cfg = lossless_config() if suffix == ".mkv" else Config()
    api.process(src, out, mask=_mask(tmp_path, 65, 97), config=cfg)
    frames = read_frames(out)
    assert len(frames) == 5 and frames[0][1].shape == (65, 97, 3)


def test_png_sequence_output_and_image_sequence_input(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=6)
    out = tmp_path / "seq"
    api.process(src, str(out) + "/", mask=_mask(tmp_path, 64, 96), config=lossless_config())
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 6
    lines = (out / "timestamps.csv").read_text().splitlines()
    assert lines[0].startswith("file,index,pts") and len(lines) == 7
    again = tmp_path / "again.mkv"
    result = api.process(out, again, mask=_mask(tmp_path, 64, 96), config=lossless_config(), fps=12)
    assert result.frames == 6
    times = [t for t, _ in read_frames(again)]
    assert abs(times[1] - times[0] - Fraction(1, 12)) <= Fraction(1, 1000)  # Matroska stores milliseconds


def test_an_image_folder_numbered_without_padding_is_read_in_frame_order(tmp_path, caplog):
    folder = tmp_path / "seq"
    folder.mkdir()
    numbers = [1, 2, 3, 9, 10, 11]  # a plain sort put frame10 and frame11 before frame2; 3 -> 9 is a gap
    for n in numbers:
        write_png(folder / f"frame{n}.png", np.full((16, 24, 3), n * 20, np.uint8))
    with caplog.at_level(logging.WARNING), open_video(folder, fps=10) as r:
        shades = [int(f.image[0, 0, 0]) for f in r]
    assert shades == [n * 20 for n in numbers]
    said = [m for m in caplog.messages if "numbering jumps" in m]
    assert len(said) == 1 and "frame3.png to frame9.png" in said[0]


def test_a_folder_of_16_bit_or_transparent_pictures_is_noted_as_a_video_is(tmp_path, caplog):
    import cv2

    for name, picture in (("deep", np.full((16, 24, 3), 40000, np.uint16)),
                          ("layer", np.dstack([np.zeros((16, 24, 3), np.uint8), np.full((16, 24), 9, np.uint8)]))):
        folder = tmp_path / name
        folder.mkdir()
        for n in range(2):
            cv2.imwrite(str(folder / f"{n}.png"), picture)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            api.process(folder, tmp_path / f"{name}.mkv", mask=_mask(tmp_path, 16, 24), fps=5, config=Config())
        words = "16-bit" if name == "deep" else "has transparency"
        assert len([m for m in caplog.messages if words in m]) == 1, caplog.messages


def test_an_image_folder_numbered_in_order_says_nothing(tmp_path, caplog):
    folder = tmp_path / "seq"
    folder.mkdir()
    for n in range(8, 12):  # 8, 9, 10, 11: the digits widen, the numbers run on
        write_png(folder / f"shot_{n}.png", np.zeros((16, 24, 3), np.uint8))
    with caplog.at_level(logging.WARNING), open_video(folder, fps=10) as r:
        assert len(list(r)) == 4
    assert not [m for m in caplog.messages if "numbering" in m]


def test_an_audio_file_with_a_cover_picture_is_no_video(tmp_path):
    import av

    song = tmp_path / "song.mp3"
    with av.open(str(song), "w") as c:
        audio = c.add_stream("libmp3lame", rate=8000)
        audio.layout = "mono"
        cover = c.add_stream("png")
        cover.width, cover.height, cover.pix_fmt = 24, 16, "rgb24"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.full((16, 24, 3), 200, np.uint8), format="rgb24")
        picture.pts, picture.time_base = 0, Fraction(1, 1000)
        for packet in [*cover.encode(picture), *cover.encode()]:
            c.mux(packet)
        for k in range(8):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts, samples.time_base = 8000, k * 1152, Fraction(1, 8000)
            for packet in audio.encode(samples):
                c.mux(packet)
        for packet in audio.encode():
            c.mux(packet)
    with pytest.raises(DecodeError, match="has no video stream \\(only a cover picture\\)"):
        open_video(song).open()


def test_a_stream_that_changes_resolution_midway_is_named_by_the_reader(tmp_path):
    import av

    parts = []
    for k, (w, h) in enumerate([(64, 48), (96, 64)]):  # two MPEG-TS pieces joined byte for byte, as a capture
        piece = tmp_path / f"part{k}.ts"
        with av.open(str(piece), "w", format="mpegts") as c:
            s = c.add_stream("libx264", rate=25, options={"g": "5"})
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            for i in range(6):
                f = av.VideoFrame.from_ndarray(np.zeros((h, w, 3), np.uint8), format="rgb24")
                f.pts, f.time_base = 10 * k + i, Fraction(1, 25)
                for packet in s.encode(f):
                    c.mux(packet)
            for packet in s.encode():
                c.mux(packet)
        parts.append(piece.read_bytes())
    joined = tmp_path / "capture.ts"
    joined.write_bytes(b"".join(parts))
    with pytest.raises(DecodeError, match="frame 6 is 96x64, earlier frames were 64x48"), open_video(joined) as r:
        list(r)


def test_empty_mask_passes_frames_through_bit_exact(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=5)
    mask = tmp_path / "empty.png"
    write_png(mask, np.zeros((64, 96), np.uint8))
    out = tmp_path / "out.mkv"
    r = api.process(src, out, mask=mask, config=lossless_config())
    assert r.filled == 0
    for (_, a), (_, b) in zip(read_frames(src), read_frames(out), strict=True):
        assert np.array_equal(a, b)


def test_all_white_mask_is_filled(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=3)
    mask = tmp_path / "white.png"
    write_png(mask, np.full((64, 96), 255, np.uint8))
    r = api.process(src, tmp_path / "out.mp4", mask=mask, config=Config())
    assert r.frames == 3 and r.filled == 3


def test_per_frame_mask_folder_and_mask_video(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=4)
    folder = tmp_path / "masks"
    folder.mkdir()
    for i in range(4):
        write_png(folder / f"m{i:03d}.png", box_mask(64, 96, 10 + 10 * i, 10, 20 + 10 * i, 30))
    out = tmp_path / "out.mkv"
    api.process(src, out, mask=folder, config=lossless_config())
    a, b = read_frames(src), read_frames(out)
    for i, ((_, ia), (_, ib)) in enumerate(zip(a, b, strict=True)):
        changed = np.any(ia != ib, axis=2)
        assert not changed[:, : 10 + 10 * i].any() and not changed[:, 20 + 10 * i:].any()
    mvid = tmp_path / "masks.mkv"
    with open_video(src) as r, open_output(mvid, r.info, config=IOConfig(lossless=True)) as w:
        for f in r:
            w.write(f.with_image(np.repeat(box_mask(64, 96, 40, 10, 60, 30)[..., None], 3, axis=2)))
    api.process(src, tmp_path / "out2.mkv", mask=mvid, config=lossless_config())


def test_range_keeps_source_pts(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=25, audio=True)
    out = tmp_path / "out.mkv"
    r = api.process(src, out, mask=_mask(tmp_path, 64, 96), config=lossless_config(), start=0.2, end=0.6)
    times = [t for t, _ in read_frames(out)]
    assert r.frames == 10 and times[0] == Fraction(1, 5) and times[-1] == Fraction(14, 25)


def test_interrupted_run_leaves_nothing_under_final_name(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=10)
    out = tmp_path / "out.mp4"

    def stop(done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.process(src, out, mask=_mask(tmp_path, 64, 96), config=Config(), progress=stop)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_truncated_video_is_an_error(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=60, width=160, height=120, options={"movflags": "+faststart"})
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(DecodeError, match="truncated|corrupt|decode"), open_video(cut) as r:
        for _ in r:
            pass


def test_mask_ops_feather_stays_inside_hole():
    from streamfill.masks import feather_alpha, prepare

    m = prepare(box_mask(40, 40, 10, 10, 30, 30), MaskConfig(dilate=2, feather=0))
    assert m[8:32, 10:30].all() and m[10:30, 8:32].all() and not m[:7].any()
    alpha = feather_alpha(m, 4)
    assert alpha[m == 0].max() == 0 and alpha.max() == 1 and 0 < alpha[m > 0].min() < 1


def _mask(tmp_path, h, w):
    p = tmp_path / f"mask_{h}x{w}.png"
    if not p.exists():
        write_png(p, box_mask(h, w, w // 3, h // 3, w // 2, h // 2))
    return p


def test_rotation_metadata_is_applied(tmp_path):
    src = tmp_path / "rot.mp4"
    make_x264_clip(src, frames=4, rotation=90)
    with open_video(src) as r:
        assert (r.info.width, r.info.height, r.info.rotation) == (64, 96, 90)
        first = next(iter(r))
    assert first.image.shape == (96, 64, 3)
    assert np.abs(first.image.astype(int) - np.rot90(pattern(0, 64, 96)).astype(int)).mean() < 8
    out = tmp_path / "out.mp4"
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(96, 64, 10, 10, 30, 30))
    assert api.process(src, out, mask=mask, config=Config()).frames == 4
    assert read_frames(out)[0][1].shape == (96, 64, 3)  # written upright, without rotation metadata


ONE = 1 << 16  # 1.0 in a display matrix's 16.16 fixed point


# (a, b, c, d) of FFmpeg's display matrix, and the picture a player shows for the stored one (FFmpeg's own
# autorotation: hflip / vflip for the mirrors, transpose=cclock_flip / clock_flip for the mirrored quarter turns)
@pytest.mark.parametrize("abcd, shown", [
    ((-1, 0, 0, 1), lambda s: s[:, ::-1]),                # mirrored left-right (a selfie camera's file)
    ((1, 0, 0, -1), lambda s: s[::-1]),                   # mirrored top-bottom
    ((-1, 0, 0, -1), lambda s: np.rot90(s, 2)),           # half a turn
    ((0, -1, 1, 0), lambda s: np.rot90(s)),               # a quarter counter-clockwise (set_display_rotation(90))
    ((0, 1, -1, 0), lambda s: np.rot90(s, -1)),           # a quarter clockwise
    ((0, 1, 1, 0), lambda s: s.transpose(1, 0, 2)),       # mirrored along the main diagonal
    ((0, -1, -1, 0), lambda s: np.rot90(s, -1)[::-1]),    # along the other diagonal
])
def test_a_display_matrix_is_applied_mirrors_included(tmp_path, abcd, shown):

    a, b, c, d = (v * ONE for v in abcd)
    src = tmp_path / "shown.mp4"
    make_x264_clip(src, matrix=[a, b, 0, c, d, 0, 0, 0, 1 << 30])
    want = shown(pattern(0, 64, 96))
    with open_video(src) as r:
        assert (r.info.height, r.info.width) == want.shape[:2]
        got = next(iter(r)).image
    assert got.shape == want.shape and np.abs(got.astype(int) - want).mean() < 4
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(*want.shape[:2], 4, 4, 12, 12))  # drawn on the picture as it is shown
    out = tmp_path / "out.mkv"
    assert api.process(src, out, mask=mask, config=lossless_config()).frames == 3
    assert np.array_equal(read_frames(out)[0][1][20:, 20:], got[20:, 20:])  # upright, away from the hole


def test_a_turned_stream_read_as_a_url_is_refused_at_its_first_frame_in_plain_words(tmp_path):
    """A URL cannot be opened twice to read its turn first: its header's size is unturned, its frames are
    turned. That was called a mid-stream change of size ('frame 0 is 64x96, earlier frames were ...')."""

    src = tmp_path / "phone.mp4"
    make_x264_clip(src, frames=2, rotation=90)
    with pytest.raises(DecodeError, match="shown turned .64x96.*save it to a file"), \
            open_video(f"file://{src}") as r:
        list(r)


def test_a_display_turn_that_is_no_quarter_turn_is_noted_and_frames_stay_as_stored(tmp_path, caplog):

    src = tmp_path / "tilted.mp4"
    make_x264_clip(src, rotation=45)
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(64, 96, 4, 4, 12, 12))
    with caplog.at_level(logging.WARNING):
        assert api.process(src, tmp_path / "out.mp4", mask=mask, config=Config()).frames == 3
    assert [m for m in caplog.messages if "no quarter turn" in m]
    assert read_frames(tmp_path / "out.mp4")[0][1].shape == (64, 96, 3)


def test_webm_output_is_vp9_with_opus_audio_and_keeps_every_frame(tmp_path):
    """WebM holds neither H.264 nor AAC: the video is encoded as VP9 and AAC audio as Opus, over the same time
    span; every frame keeps its pts (Matroska stores milliseconds)."""
    import av

    src = tmp_path / "in.mp4"
    make_video(src, frames=20, audio=True)
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(64, 96, 30, 20, 50, 40))
    out = tmp_path / "out.webm"
    assert api.process(src, out, mask=mask, config=Config()).frames == 20
    a, b = read_frames(src), read_frames(out)
    assert len(b) == 20
    assert all(abs(ta - tb) <= Fraction(1, 1000) for (ta, _), (tb, _) in zip(a, b, strict=True))
    keep = box_mask(64, 96, 30, 20, 50, 40) == 0
    mse = np.mean([np.mean((ia[keep].astype(float) - ib[keep]) ** 2) for (_, ia), (_, ib) in zip(a, b, strict=True)])
    assert 10 * np.log10(255**2 / mse) > 25
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "opus"
        times = [float(p.pts * p.time_base) for p in c.demux(audio) if p.pts is not None]
    with av.open(str(src)) as c:
        s = c.streams.audio[0]
        source = [float(p.pts * p.time_base) for p in c.demux(s) if p.pts is not None]
    assert abs(min(times) - min(source)) < 0.05 and abs(max(times) - max(source)) < 0.05


def _clip_with_audio(path, acodec, *, extra_video=False):
    """20 frames of 96x64 H.264 and 0.8 s of stereo ``acodec`` audio (Matroska: PCM gets no channel layout),
    optionally a second, smaller video stream."""
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        extra = None
        if extra_video:
            extra = c.add_stream("libx264", rate=25)
            extra.width, extra.height, extra.pix_fmt = 32, 16, "yuv420p"
        a = c.add_stream(acodec, rate=48000, layout="stereo")
        for i in range(20):
            for stream in (v, extra) if extra else (v,):
                f = av.VideoFrame.from_ndarray(np.full((stream.height, stream.width, 3), i * 10, np.uint8),
                                               format="rgb24")
                f.pts = i
                for p in stream.encode(f):
                    c.mux(p)
        for stream in (v, extra) if extra else (v,):
            for p in stream.encode():
                c.mux(p)
        fmt = a.codec_context.format
        n = 0
        while n < 48000 * 20 // 25:
            shape = (2, 1024) if fmt.is_planar else (1, 2048)
            samples = np.zeros(shape, {2: np.int16, 4: np.float32 if "flt" in fmt.name else np.int32}[fmt.bytes])
            af = av.AudioFrame.from_ndarray(samples, format=fmt.name, layout="stereo")
            af.sample_rate, af.pts = 48000, n
            n += 1024
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode():
            c.mux(p)


@pytest.mark.parametrize(("acodec", "suffix"), [("libopus", ".mov"), ("flac", ".mov"), ("pcm_s16le", ".mp4"),
                                               ("flac", ".ts"), ("pcm_s16le", ".ts")])
def test_audio_an_output_cannot_hold_as_it_is_is_encoded_as_aac(tmp_path, caplog, acodec, suffix):
    """Opus and FLAC pass into a .mov stream template but the header cannot be written; PCM from Matroska (no
    channel layout) into .mp4 failed only when the finished output was closed; FLAC and PCM into MPEG-TS were
    written without complaint and read back as a codec-less data stream (the sound lost in silence). Each is
    tried first (written and read back) and becomes AAC, with a note."""
    import logging

    import av

    src = tmp_path / "in.mkv"
    _clip_with_audio(src, acodec)
    out = tmp_path / f"out{suffix}"
    with caplog.at_level(logging.WARNING):
        assert api.process(src, out, mask=_mask(tmp_path, 64, 96), config=Config()).frames == 20
    assert any("encoded as aac" in r.getMessage() for r in caplog.records)
    with av.open(str(out)) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert sum(1 for p in c.demux(audio) if p.size) > 30   # 0.8 s at 1024 samples a packet


def test_streams_left_out_are_named_with_the_reason(tmp_path):
    """A second video stream is not copied and says so; a PNG folder names the audio it cannot hold."""
    src = tmp_path / "in.mkv"
    _clip_with_audio(src, "flac", extra_video=True)
    result = api.process(src, tmp_path / "out.mkv", mask=_mask(tmp_path, 64, 96), config=Config())
    assert result.skipped_streams == ["#1 video (only the first video stream is processed)"]
    folder = api.process(src, tmp_path / "frames", mask=_mask(tmp_path, 64, 96), config=Config())
    assert "#2 audio (a PNG folder holds pictures only)" in folder.skipped_streams


def test_a_container_without_h264_or_vp9_is_refused_before_any_work(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=5)
    out = tmp_path / "out.gif"
    with pytest.raises(OutputError, match="cannot hold"):
        api.process(src, out, mask=_mask(tmp_path, 64, 96), config=Config())
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_a_high_bit_depth_input_is_noted_as_written_8_bit(tmp_path, caplog):
    import logging

    import av

    src = tmp_path / "ten.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p10le"
        for i in range(3):
            img = np.full((64, 96, 3), 40 * i, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p10le")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with caplog.at_level(logging.WARNING, logger="streamfill"):
        api.process(src, tmp_path / "out.mp4", mask=_mask(tmp_path, 64, 96), config=Config())
    assert any("10-bit (yuv420p10le)" in r.getMessage() and "8-bit" in r.getMessage() for r in caplog.records)
    caplog.clear()
    plain = tmp_path / "eight.mp4"
    make_video(plain, frames=3)
    with caplog.at_level(logging.WARNING, logger="streamfill"):
        api.process(plain, tmp_path / "out8.mp4", mask=_mask(tmp_path, 64, 96), config=Config())
    assert not any("-bit" in r.getMessage() for r in caplog.records)


def test_lossless_output_of_a_one_pixel_wide_clip(tmp_path):
    """FFV1 version 3 cannot slice a 1 px wide picture (FFmpeg would not open the encoder: "Function not
    implemented"); such a size gets version 1, still bit-exact."""
    import av

    src = tmp_path / "thin.mov"
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (40, 1, 3), dtype=np.uint8) for _ in range(4)]
    with av.open(str(src), "w") as c:
        s = c.add_stream("png", rate=25)
        s.width, s.height, s.pix_fmt = 1, 40, "rgb24"
        for i, picture in enumerate(pictures):
            f = av.VideoFrame.from_ndarray(picture, format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    mask = np.zeros((40, 1), np.uint8)
    mask[10:20] = 255
    write_png(tmp_path / "m.png", mask)
    out = tmp_path / "out.mkv"
    assert api.process(src, out, mask=tmp_path / "m.png", config=lossless_config()).frames == 4
    got = read_frames(out)
    assert len(got) == 4
    for (_, image), picture in zip(got, pictures, strict=True):
        assert np.array_equal(image[mask == 0], picture[mask == 0])


@pytest.mark.parametrize(("start", "end", "want"), [(0.28, 0.56, range(7, 14)), (0.56, 1.0, range(14, 25))])
def test_a_range_from_a_frames_own_time_keeps_that_frame(tmp_path, start, end, want):
    """0.28 s as a float is a hair above 7/25: compared as floats, the frame at pts 3584 (1/12800) was dropped
    and the one at --end kept."""
    from streamfill.io import open_video

    src = tmp_path / "in.mp4"
    pts = make_video(src, frames=30, time_base=Fraction(1, 12800))
    with open_video(src, start=start, end=end) as r:
        got = [(f.index, f.pts) for f in r]
    assert got == [(i, pts[i]) for i in want]


def test_a_clip_that_starts_at_5_s_can_be_ranged_from_its_own_times(tmp_path, capsys):
    """--start is a frame time (pts), like --end: it was checked against the clip's length (2 s) instead of
    its end (7 s)."""
    src = tmp_path / "late.mp4"
    make_video(src, vfr_pts=[5 * 25 + i for i in range(50)])
    out = tmp_path / "out.mp4"
    result = api.process(src, out, mask=_mask(tmp_path, 64, 96), start=5.2, end=6.0, config=Config())
    assert result.frames == 20
    assert [float(t) for t, _ in read_frames(out)][:2] == [5.2, 5.24]
    with pytest.raises(InputError, match="run from 5.00 to 7.00 s"):
        api.process(src, tmp_path / "o2.mp4", mask=_mask(tmp_path, 64, 96), start=7.5, config=Config())


def _refused_before_any_work(tmp_path, src, out, chunked: bool, words: str) -> None:
    """``process`` (or a chunked run) from ``src`` into ``out`` fails with ``words`` and leaves nothing behind."""
    from streamfill.distributed import LocalExecutor, process_chunked

    with pytest.raises(OutputError, match=words):
        if chunked:
            process_chunked(src, out, mask=_mask(tmp_path, 64, 96), config=Config(), executor=LocalExecutor(Config()),
                            chunk_seconds=0.1)
        else:
            api.process(src, out, mask=_mask(tmp_path, 64, 96), config=Config())
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(("name", "words"), [("out.avi", "cannot keep the frames' timestamps"),
                                             ("out.gif", "cannot hold"),
                                             ("out.flv", "does not keep the frames' timestamps"),
                                             ("out.mpg", "does not keep the frames' timestamps"),
                                             ("out.mxf", "does not keep the frames' timestamps"),
                                             ("out.wmv", "does not keep the frames' timestamps")])
def test_an_avi_or_gif_output_is_refused_before_any_work(tmp_path, chunked, name, words):
    """H.264 in AVI came out a frame late and out of order (no presentation times in AVI); chunked runs found a
    .gif or .avi output only when joining (an internal error, and a failed join after all the work). .flv
    wrapped the times (2147483.648 s), .mpg wrote them all 0, .mxf and .wmv out of order: refused too."""

    src = tmp_path / "in.mp4"
    make_video(src, frames=5)
    out = tmp_path / name
    _refused_before_any_work(tmp_path, src, out, chunked, words)


def test_an_mp4_range_keeps_a_first_frame_time_off_the_millisecond(tmp_path):
    """A range of a 24000/1001 fps clip into .mp4: the edit list that starts it was written in milliseconds
    and moved every frame up to 0.5 ms early (0.5005 s became 0.5 s); now in the source's own timescale."""
    src = tmp_path / "ntsc.mp4"
    make_video(src, fps=24, time_base=Fraction(1, 240000), vfr_pts=[i * 10010 for i in range(30)], audio=True)
    out = tmp_path / "out.mp4"
    api.process(src, out, mask=_mask(tmp_path, 64, 96), start=0.5005, end=1.001, config=Config())
    times = [t for t, _ in read_frames(out)]
    assert times == [Fraction(i * 10010, 240000) for i in range(12, 24)]


def test_a_matroska_clip_that_starts_late_is_ranged_from_its_own_end(tmp_path):
    """Matroska's duration is an end time already: start + duration counted the start twice, so --start 9 on
    a clip of frames 5-6 s was accepted and failed after decoding everything ("no frames to write")."""
    src = tmp_path / "late.mkv"
    make_video(src, vfr_pts=[125 + i for i in range(25)])
    with pytest.raises(InputError, match="run from 5.00 to 6.00 s"):
        api.process(src, tmp_path / "o.mp4", mask=_mask(tmp_path, 64, 96), start=9, config=Config())
    assert api.process(src, tmp_path / "o.mp4", mask=_mask(tmp_path, 64, 96), start=5.5, config=Config()).frames == 12


def test_mp4_range_keeps_the_audio_start_of_a_coarse_time_base_source(tmp_path):
    """A movie timescale of the video's time base alone (1/25 for an AVI) snapped the audio's edit list to
    40 ms steps; it divides the audio rate too."""
    import av

    src = tmp_path / "in.avi"
    make_video(src, frames=40, codec="mpeg4", audio=True)
    out = tmp_path / "out.mp4"
    api.process(src, out, mask=_mask(tmp_path, 64, 96), start=0.513, config=Config())

    def audio_start(path):
        with av.open(str(path)) as c:
            return min(float(p.pts * p.time_base) for p in c.demux(c.streams.audio[0]) if p.pts is not None
                       and float(p.pts * p.time_base) >= 0.513)

    assert abs(audio_start(out) - audio_start(src)) < 1e-3


def test_live_refuses_an_avi_recording_at_once(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=5)
    with pytest.raises(OutputError, match="cannot keep the frames' timestamps"):
        api.live(str(src), box="10,10,20,20", record=tmp_path / "rec.avi", config=Config())


def test_fps_given_for_a_video_file_says_it_is_not_used(tmp_path, caplog):
    """``--fps`` sets the rate of a folder of images; on a video file it was ignored without a word."""
    src = tmp_path / "in.mp4"
    make_video(src, frames=3)
    write_png(tmp_path / "m.png", np.zeros((64, 96), np.uint8))
    with caplog.at_level(logging.WARNING):
        api.process(src, tmp_path / "out.mp4", mask=tmp_path / "m.png", fps=10)
    assert any("--fps" in r.getMessage() and "in.mp4 keeps its own timestamps" in r.getMessage()
               for r in caplog.records)
    caplog.clear()  # `info` said nothing (`info clip.mp4 --fps -5` too)
    with caplog.at_level(logging.WARNING):
        assert api.info(src, fps=-5).frame_count == 3
    assert any("in.mp4 keeps its own timestamps" in r.getMessage() for r in caplog.records)


def test_a_range_keeps_the_audio_packet_that_runs_into_its_start(tmp_path):
    """Audio was cut by packet start time: the AAC packet playing at the range's first frame (0.491-0.512 s for
    --start 0.5) was dropped, so the output's sound began up to a packet (21 ms; 104 ms of FLAC) after the
    picture. Every packet that overlaps the range is kept, and no other."""
    import av

    src = tmp_path / "in.mp4"
    make_video(src, frames=40, audio=True)
    out = tmp_path / "out.mkv"
    api.process(src, out, mask=_mask(tmp_path, 64, 96), start=0.5, end=1.0, config=Config())
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        spans = [(float(p.pts * p.time_base), float((p.pts + p.duration) * p.time_base))
                 for p in c.demux(a) if p.pts is not None and p.size]
    assert spans[0][0] <= 0.5 < spans[0][1] + 1e-3       # sound from the first frame on
    assert spans[-1][0] < 1.0 and spans[-1][1] >= 1.0 - 1e-3
    assert all(e > 0.5 and s < 1.0 for s, e in spans)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_nut_output_with_audio_is_refused_before_any_work(tmp_path, monkeypatch, chunked):
    """NUT holds no time before 0 s: AAC's priming packet failed at the trailer ("'.x.partial-N.nut' returned
    22", after the whole run), and beside PCM the first B-frames' times came out broken. Refused up front."""
    from streamfill.io.encode import VideoWriter

    def no_frames(*_):
        raise AssertionError("a frame was written")

    monkeypatch.setattr(VideoWriter, "write", no_frames)
    src = tmp_path / "in.mp4"
    make_video(src, frames=5, audio=True)
    out = tmp_path / "out.nut"
    _refused_before_any_work(tmp_path, src, out, chunked, r"out\.nut: a \.nut file cannot keep the frames' times "
                                                          r"beside the audio \(stream #1, aac\)")


def test_a_nut_output_of_video_alone_keeps_every_frame_time(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, frames=8)
    out = tmp_path / "out.nut"
    assert api.process(src, out, mask=_mask(tmp_path, 64, 96), config=Config()).frames == 8
    assert [t for t, _ in read_frames(out)] == [t for t, _ in read_frames(src)]


def test_audio_trials_are_written_with_the_outputs_own_options(tmp_path):
    """The copy trial ran without the output's avoid_negative_ts=disabled, so AAC's priming packet (before 0 s)
    passed it for a container that cannot hold it and failed only at the real output's trailer."""
    import io

    import av

    from streamfill.io.remux import Passthrough

    src = tmp_path / "in.mp4"
    make_video(src, frames=5, audio=True)
    with (av.open(str(src)) as c, av.open(io.BytesIO(), "w", format="nut", options={"avoid_negative_ts": "disabled"})
          as out, pytest.raises(OutputError, match=r"its first packet is timed before 0 s \(-0\.021 s")):
        Passthrough(out).add_all(list(c.streams.audio))


def _tagged_clip(path, space, frames=6, size=(96, 64), full=False):
    """Frames of saturated colours encoded with the YUV matrix ``space`` (an AVColorSpace code) and tagged so
    (2: untagged, swscale's default matrix); ``full``: in full range (0-255, a phone's), else limited."""
    import av
    names = {1: "ITU709", 6: "SMPTE170M", 9: "BT2020"}
    w, h = size
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": "1"}
        if space != 2:
            cc = st.codec_context
            cc.colorspace, cc.color_range, cc.color_primaries = space, 2 if full else 1, space
            cc.color_trc = space if space != 9 else 14
        colours = np.array([(200, 60, 30), (30, 200, 60), (40, 50, 220), (230, 220, 40)], np.uint8)
        for i in range(frames):
            img = np.repeat(np.repeat(colours[None], h, 0), w // 4, 1)
            img = np.roll(img, i, axis=1).copy()
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            if space != 2:
                vf = vf.reformat(format="yuv420p", dst_colorspace=names[space],
                                 dst_color_range="JPEG" if full else "MPEG")
            for p in st.encode(vf):
                out.mux(p)
        for p in st.encode():
            out.mux(p)


@pytest.mark.parametrize("space, full", [(1, False), (6, False), (9, False), (1, True)])
def test_output_keeps_the_sources_yuv_and_colour_tags(tmp_path, space, full):
    # frames are decoded to RGB with the source's matrix (BT.709 for HD), but were encoded back with swscale's
    # default (BT.601) and no tags: every pixel of a BT.709 clip changed colour (Y +7 on a saturated red),
    # not only the hole's. A full-range source came out limited (its luma x0.86 + 16: levels lost)
    import av
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    _tagged_clip(src, space, full=full)
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(64, 96, 4, 4, 12, 12))
    api.process(src, out, mask=mask, config=load_config(overrides={"temporal": {"mode": "off"}}))

    def tags(path):
        with av.open(str(path)) as c:
            cc = c.streams.video[0].codec_context
            return cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc

    def luma(fr):
        return np.frombuffer(fr.planes[0], np.uint8).reshape(fr.height, -1)[:, :fr.width].astype(int)

    assert tags(out) == tags(src)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0), strict=True):
            d = luma(fb)[32:, 40:] - luma(fa)[32:, 40:]  # away from the hole
            # swscale's fast YUV -> RGB path rounds down: about 1.5 levels of luma are lost either way
            assert abs(d.mean()) < 2.0 and np.abs(d).mean() < 2.0, (d.mean(), np.abs(d).mean())


def _clip(path, *, codec="libx264", pix_fmt="yuv420p", options=None, sar=None, rgba=False, frames=4):
    import av
    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=25, options=options or {})
        st.width, st.height, st.pix_fmt = 64, 48, pix_fmt
        if sar:
            st.codec_context.sample_aspect_ratio = sar
        for i in range(frames):
            img = np.full((48, 64, 4 if rgba else 3), 40 * i, np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgba" if rgba else "rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            for p in st.encode(vf):
                out.mux(p)
        for p in st.encode():
            out.mux(p)


@pytest.mark.parametrize("suffix, lossless", [(".mp4", False), (".mkv", False), (".mkv", True)])
def test_non_square_pixels_stay_so_or_the_run_says_why_not(tmp_path, caplog, suffix, lossless):
    import av
    src, out = tmp_path / "dv.mp4", tmp_path / f"out{suffix}"
    _clip(src, sar=Fraction(16, 11))  # anamorphic: shown 64 * 16/11 = 93 px wide
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(48, 64, 4, 4, 12, 12))
    with open_video(src) as r:
        assert r.info.sample_aspect == Fraction(16, 11)
    with caplog.at_level(logging.WARNING):
        api.process(src, out, mask=mask, config=lossless_config() if lossless else Config())
    with av.open(str(out)) as c:
        kept = c.streams.video[0].sample_aspect_ratio
    said = [m for m in caplog.messages if "square pixels" in m]
    if lossless:  # FFV1 here keeps none: said, not silent
        assert kept in (None, 1) and len(said) == 1 and "16/11" in said[0]
    else:
        assert kept == Fraction(16, 11) and not said
    # the writers themselves say nothing: a run's mask videos and chunks were each noted
    caplog.clear()
    with open_video(src) as r, caplog.at_level(logging.WARNING), \
            open_output(tmp_path / "masks.mkv", r.info, config=IOConfig(lossless=True)) as w:
        for f in r:
            w.write(f)
    assert not [m for m in caplog.messages if "square pixels" in m]


def test_interlaced_and_transparent_sources_are_noted_and_no_alpha_tag_is_copied(tmp_path, caplog):
    import av
    interlaced, alpha = tmp_path / "tv.mp4", tmp_path / "title.webm"
    _clip(interlaced, options={"x264-params": "interlaced=1:tff=1"})
    _clip(alpha, codec="libvpx-vp9", pix_fmt="yuva420p", rgba=True)
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(48, 64, 4, 4, 12, 12))
    for src, words in ((interlaced, "is interlaced"), (alpha, "has transparency")):
        out = tmp_path / f"out_{src.stem}.webm"
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            api.process(src, out, mask=mask, config=Config())
        assert len([m for m in caplog.messages if words in m]) == 1, caplog.messages
        with av.open(str(out)) as c:
            assert "alpha_mode" not in {k.lower() for k in c.streams.video[0].metadata}  # the output is opaque


def test_info_names_the_colour_tags(tmp_path, capsys):
    from streamfill.cli import main
    src = tmp_path / "in.mp4"
    _tagged_clip(src, 1)
    assert main(["info", str(src)]) == 0
    assert "colour     matrix BT.709, transfer BT.709, limited range" in capsys.readouterr().out
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    write_png(pictures / "0.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["info", str(pictures), "--fps", "25"]) == 0
    assert "colour     RGB, untagged" in capsys.readouterr().out  # pictures have no YUV matrix to read them with


def test_lossless_output_keeps_the_sources_primaries_and_transfer(tmp_path):
    # FFV1 RGB has no YUV matrix, but a BT.2020 source's RGB is still in BT.2020 primaries: written untagged,
    # players showed it as BT.709
    import av
    src, out = tmp_path / "in.mp4", tmp_path / "out.mkv"
    _tagged_clip(src, 9)
    mask = tmp_path / "m.png"
    write_png(mask, box_mask(64, 96, 4, 4, 12, 12))
    api.process(src, out, mask=mask, config=lossless_config())
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.name, cc.color_primaries, cc.color_trc) == ("ffv1", 9, 14)


def _clip_with_tags(path) -> None:
    """8 frames, a title and a recording date, an English video stream and two audio tracks: German
    (commentary, not the default) and English (the default)."""
    import av

    with av.open(str(path), "w") as out:
        out.metadata.update({"title": "Holiday", "creation_time": "2024-05-01T10:00:00.000000Z"})
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt, v.options = 96, 64, "yuv420p", {"preset": "ultrafast"}
        v.metadata["language"] = "eng"
        tracks = []
        for lang, title, default in (("deu", "Kommentar", False), ("eng", "Main", True)):
            a = out.add_stream("aac", rate=48000, layout="mono")
            a.metadata.update({"language": lang, "title": title})
            a.disposition = av.stream.Disposition.default if default else av.stream.Disposition(0)
            tracks.append(a)
        for i in range(8):
            vf = av.VideoFrame.from_ndarray(np.zeros((64, 96, 3), np.uint8) + i * 20, format="rgb24")
            vf.pts = i
            out.mux(v.encode(vf))
        out.mux(v.encode(None))
        for a in tracks:
            for k in range(0, 48000 * 8 // 25, 1024):
                af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts = 48000, k
                out.mux(a.encode(af))
            out.mux(a.encode(None))


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_output_keeps_the_sources_tags_and_track_flags(tmp_path, suffix, chunked):
    """The output lost every tag: the audio tracks' languages (all 'und', so a player could not tell the
    German commentary from the English track), their titles and default flags, the file's title and recording
    date (creation_time, by which galleries sort a phone's videos). They are copied as FFmpeg copies them."""
    import av

    from streamfill.distributed import LocalExecutor, process_chunked

    src = tmp_path / "in.mkv"
    _clip_with_tags(src)
    out = tmp_path / f"out{suffix}"
    if chunked:
        process_chunked(src, out, mask=_mask(tmp_path, 64, 96), config=Config(), executor=LocalExecutor(Config()),
                        chunk_seconds=0.12)
    else:
        api.process(src, out, mask=_mask(tmp_path, 64, 96), config=Config())
    with av.open(str(out)) as c:
        assert c.metadata["title"] == "Holiday"
        assert c.metadata["creation_time"].startswith("2024-05-01T10:00:00")
        assert c.streams.video[0].metadata["language"] == "eng"
        tracks = [(a.metadata.get("language"), a.metadata.get("title"), bool(a.disposition & a.disposition.default))
                  for a in c.streams.audio]
    titles = ("Kommentar", "Main") if suffix == ".mkv" else (None, None)  # (an MP4 track holds no title)
    assert tracks == [("deu", titles[0], False), ("eng", titles[1], True)]


def test_frame_order_of_a_folder_is_the_same_in_streamfill_and_its_plugins(tmp_path):
    """The GStreamer element sorts a mask folder with plugins/hostlink.py's key (it may import only the
    protocol); both must agree, and a name with a digit that is no decimal (superscript two) must not crash."""
    import sys
    from pathlib import Path as P

    sys.path.insert(0, str(P(__file__).resolve().parents[1] / "plugins"))
    try:
        import hostlink
    finally:
        sys.path.pop(0)
    from streamfill.io.images import picture_files

    names = ["m10.png", "m2.png", "m1.png", "m1\u00b22.png", "m01.png", "a.png", "m9x.png", "m9.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    ours = [p.name for p in picture_files(tmp_path)]
    assert ours == sorted(names, key=hostlink.frame_order)
    assert ours.index("m2.png") < ours.index("m10.png")


def test_streams_left_out_are_named_under_quiet_and_by_batch(tmp_path, capsys):
    """`process -q` hid the note (a dropped stream is something lost, not a summary); `batch` never said it."""
    from streamfill.cli import main

    src = tmp_path / "in.mkv"
    _clip_with_audio(src, "flac", extra_video=True)
    mask = _mask(tmp_path, 64, 96)
    assert main(["process", str(src), "--mask", str(mask), "-o", str(tmp_path / "o.mkv"), "-q"]) == 0
    assert "not copied: #1 video" in capsys.readouterr().err
    assert main(["batch", str(src), "--mask", str(mask), "--out-dir", str(tmp_path / "b")]) == 0
    assert "note: " in (err := capsys.readouterr().err) and "in.mkv: not copied: #1 video" in err
