"""Inputs real users have (issue 17): headers that overstate the length, truncated files, `--salvage`,
and `info` saying which frame counts are estimates."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from media import make_video, make_x264_clip, write_png

from streamfill import api
from streamfill.cli import main
from streamfill.config import Config
from streamfill.errors import DecodeError
from streamfill.io import open_video


def overstated_avi(path: Path, frames: int = 10, claims: int = 444) -> Path:
    """An AVI holding ``frames`` frames whose headers (avih total frames, strh length) claim ``claims``:
    complete packets, a clean end, the count of the issue's real-world file."""
    make_video(path, frames=frames, codec="mpeg4")
    data = bytearray(path.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    assert avih > 0 and strh > 0 and data[strh + 8:strh + 12] == b"vids"
    assert struct.unpack("<I", data[avih + 24:avih + 28])[0] == frames
    assert struct.unpack("<I", data[strh + 40:strh + 44])[0] == frames
    data[avih + 24:avih + 28] = struct.pack("<I", claims)
    data[strh + 40:strh + 44] = struct.pack("<I", claims)
    path.write_bytes(bytes(data))
    return path


def overstated_mkv(path: Path, frames: int = 10, seconds: float = 3.6) -> Path:
    """A Matroska file of ``frames`` frames at 25 fps whose Segment Duration claims ``seconds``."""
    make_video(path, frames=frames, codec="ffv1")
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration element, 8-byte float, in milliseconds
    assert at > 0 and struct.unpack(">d", data[at + 3:at + 11])[0] == frames * 40
    data[at + 3:at + 11] = struct.pack(">d", seconds * 1000)
    tag = data.find(b"00:00:00.400000000")  # the video track's DURATION tag says the same
    assert tag > 0
    data[tag:tag + 18] = f"00:00:{seconds:012.9f}".encode()
    path.write_bytes(bytes(data))
    return path


def truncated_mp4(tmp_path: Path) -> Path:
    src = tmp_path / "whole.mp4"
    make_video(src, frames=60, width=96, height=64, options={"movflags": "+faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: int(src.stat().st_size * 0.6)])
    return cut


def mask_png(tmp_path: Path, h: int = 64, w: int = 96) -> Path:
    m = np.zeros((h, w), np.uint8)
    m[20:40, 30:60] = 255
    write_png(tmp_path / "m.png", m)
    return tmp_path / "m.png"


def encode_ramp(container, stream, *, frames: int, step: int) -> None:
    """Encode and mux ``frames`` flat grey pictures (frame i at grey level step x i, pts i), then flush."""
    import av

    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(np.full((stream.height, stream.width, 3), step * i, np.uint8),
                                           format="rgb24")
        frame.pts = i
        for p in stream.encode(frame):
            container.mux(p)
    for p in stream.encode():
        container.mux(p)


def count_frames(path: Path) -> int:
    with open_video(path) as r:
        return sum(1 for _ in r)


@pytest.mark.parametrize("make", [overstated_avi, overstated_mkv])
def test_overstated_header_reads_every_frame_with_a_note(tmp_path, make, caplog):
    src = make(tmp_path / ("in.avi" if make is overstated_avi else "in.mkv"))
    with caplog.at_level("WARNING", logger="streamfill"), open_video(src) as r:
        frames = list(r)
        assert len(frames) == 10 and [f.index for f in frames] == list(range(10))
        assert len(r.notes) == 1 and ("444 frames" in r.notes[0] or "3.60 s" in r.notes[0])
    assert len([rec for rec in caplog.records if "note:" in rec.getMessage()]) == 1


def test_process_masks_and_eval_temporal_accept_an_overstated_avi(tmp_path, capsys):
    src = overstated_avi(tmp_path / "in.avi")
    mask = mask_png(tmp_path)
    out = tmp_path / "out.mp4"
    assert main(["process", str(src), "-o", str(out), "--mask", str(mask), "-q"]) == 0
    err = capsys.readouterr().err
    assert count_frames(out) == 10
    notes = [line for line in err.splitlines() if "444" in line]
    assert len(notes) == 1 and "10" in notes[0] and "Traceback" not in err
    masks_out = tmp_path / "masks.mkv"
    assert main(["masks", str(src), "-o", str(masks_out), "--mask", str(mask), "-q"]) == 0
    assert count_frames(masks_out) == 10
    assert main(["eval", "temporal", str(src), "--frames", "20", "--width", "0", "--method", "classical"]) == 0
    assert "classical" in capsys.readouterr().out


def test_truncated_file_still_fails_loudly_and_salvage_keeps_what_decoded(tmp_path, capsys):
    cut = truncated_mp4(tmp_path)
    mask = mask_png(tmp_path)
    out = tmp_path / "out.mp4"
    assert main(["process", str(cut), "-o", str(out), "--mask", str(mask), "-q"]) == 1
    err = capsys.readouterr().err
    assert "truncated or corrupt" in err and "--salvage" in err and not out.exists()
    assert main(["process", str(cut), "-o", str(out), "--mask", str(mask), "-q", "--salvage"]) == 0
    err = capsys.readouterr().err
    kept = count_frames(out)
    assert 20 < kept < 60 and f"kept the {kept} frames" in err
    masks_out = tmp_path / "masks.mkv"
    assert main(["masks", str(cut), "-o", str(masks_out), "--mask", str(mask), "-q", "--salvage"]) == 0
    assert count_frames(masks_out) == kept


def test_salvage_through_the_api(tmp_path):
    import dataclasses

    cut = truncated_mp4(tmp_path)
    config = Config()
    with pytest.raises(DecodeError):
        api.process(cut, tmp_path / "a.mp4", mask=mask_png(tmp_path), config=config)
    salvage = dataclasses.replace(config, io=dataclasses.replace(config.io, salvage=True))
    result = api.process(cut, tmp_path / "b.mp4", mask=mask_png(tmp_path), config=salvage)
    assert result.frames == count_frames(tmp_path / "b.mp4") and result.notes and "salvage" in result.notes[0]


def test_info_marks_estimated_counts(tmp_path, capsys):
    mkv = tmp_path / "v.mkv"
    make_video(mkv, frames=10, codec="ffv1")
    assert main(["info", str(mkv)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "frames" in x)
    assert "~10 (estimated from duration x fps)" in line
    assert main(["info", str(mkv), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["frames"] == 10 and data["frames_estimated"] is True
    mp4 = tmp_path / "v.mp4"
    make_video(mp4, frames=10)
    assert main(["info", str(mp4)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "frames" in x)
    assert line.split() == ["frames", "10"]


def test_keys_names_the_real_flag(tmp_path, capsys):
    assert main(["keys", str(tmp_path / "k")]) == 0
    assert main(["keys", str(tmp_path / "k")]) == 1
    err = capsys.readouterr().err
    assert "--force" in err and "pass overwrite" not in err
    assert main(["keys", str(tmp_path / "k"), "--force"]) == 0


def test_keys_into_an_empty_name_or_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    """`keys ''` (an unset shell variable) wrote the keys into the current folder; `keys FILE` gave an errno
    line (NotADirectoryError)."""
    monkeypatch.chdir(tmp_path)
    assert main(["keys", ""]) == 1
    assert "key folder is empty" in capsys.readouterr().err and not list(tmp_path.iterdir())
    (tmp_path / "notes.txt").write_text("x")
    assert main(["keys", "notes.txt"]) == 1
    err = capsys.readouterr().err
    assert "is a file" in err and "Errno" not in err


def test_a_matroska_file_cut_short_is_noted_from_its_track_duration(tmp_path, caplog):
    """Matroska stores the video track's duration in a tag next to the header; a file cut at 90 % (38 of 40
    frames, inside the half second the container's duration is allowed for audio running on) is noted."""
    whole = tmp_path / "whole.mkv"
    make_video(whole, frames=40, audio=True)
    cut = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.9)])
    with caplog.at_level("WARNING", logger="streamfill"), open_video(whole) as r:
        assert sum(1 for _ in r) == 40 and not r.notes
    with caplog.at_level("WARNING", logger="streamfill"), open_video(cut) as r:
        n = sum(1 for _ in r)
        assert 30 < n < 40 and len(r.notes) == 1 and "the header says 1.60 s" in r.notes[0]


def test_audio_running_on_past_the_video_is_not_taken_for_a_cut(tmp_path):
    """A .mkv whose audio lasts 2 s past its 0.4 s of video: the container's duration is the audio's, the video
    track's own tag says 0.4 s, and nothing is noted (the container's duration alone called it cut short)."""
    import av

    path = tmp_path / "long_audio.mkv"
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        a = c.add_stream("aac", rate=48000, layout="mono")
        encode_ramp(c, v, frames=10, step=20)
        for k in range(0, 48000 * 24 // 10, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, k
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    with open_video(path) as r:
        assert r.info.duration > 2.0
        assert sum(1 for _ in r) == 10 and not r.notes


def test_estimated_count_uses_the_video_track_not_audio_that_runs_longer(tmp_path):
    """A Matroska file stores no frame count; its container duration covers an audio track that runs on after
    the video (64 frames at 25 fps = 2.56 s, audio 3 s): the estimate said ~75 instead of ~64."""
    import av

    path = tmp_path / "longer_audio.mkv"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        for i in range(64):
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8), format="rgb24")
            for packet in video.encode(picture):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        for k in range(3 * 48000 // 1024):
            sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            sound.sample_rate, sound.pts = 48000, k * 1024
            for packet in audio.encode(sound):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    info = api.info(path)
    assert info.frame_count_estimated and info.duration > 2.9
    assert info.frame_count == 64


def test_pictures_an_edit_list_discards_are_not_reported_missing(tmp_path, caplog):
    """A clip cut without re-encoding: its header counts 30 pictures, 3 of them before the edit list's start
    (decoded as references, never shown). The reader gives the 27 shown ones and said "the header says 30 frames
    but the video ends after 27"."""
    import logging
    from fractions import Fraction

    path = tmp_path / "cut.mp4"
    make_video(path, frames=30, vfr_pts=list(range(-3, 27)), time_base=Fraction(1, 25),
               options={"avoid_negative_ts": "disabled"})
    with caplog.at_level(logging.WARNING), open_video(path) as reader:
        frames = list(reader)
    assert len(frames) == 27 and frames[0].pts == 0 and reader.info.declared_frames == 30
    assert not [r for r in caplog.records if "header says" in r.getMessage()]


def test_an_mp4_that_starts_between_keyframes_is_read_with_a_note_not_refused(tmp_path):
    """Every packet its index lists is there, but the decoder drops the pictures before the first keyframe (a clip
    cut by copying packets): fewer frames than the index, yet not a truncated file."""
    import av

    whole, cut = tmp_path / "whole.mp4", tmp_path / "cut.mp4"
    with av.open(str(whole), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        v.options = {"g": "10", "keyint_min": "10", "sc_threshold": "0", "bf": "0"}
        encode_ramp(out, v, frames=30, step=8)
    with av.open(str(whole)) as src, av.open(str(cut), "w") as out:
        o = out.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(video=0) if p.size]
        assert packets[0].is_keyframe and not any(p.is_keyframe for p in packets[1:10])
        for p in packets[3:]:  # from the fourth picture: seven before the next keyframe
            p.stream = o
            out.mux(p)
    with open_video(cut) as r:
        frames = list(r)
        assert 0 < len(frames) < 27 and r.info.declared_frames == 27
        assert len(r.notes) == 1 and "27 frames" in r.notes[0] and "cleanly" in r.notes[0]


def test_a_matroska_file_damaged_part_way_fails_naming_salvage(tmp_path):
    """Damage in a Matroska cluster ends its demuxer as if the file ended there: 1 of 40 frames came out, exit 0,
    with a note calling the file 'cleanly' short. Most of the file lies after where reading stopped."""
    whole = tmp_path / "whole.mkv"
    make_video(whole, frames=40)
    data = bytearray(whole.read_bytes())
    at = len(data) * 4 // 10
    data[at:at + 3000] = b"\xff" * 3000
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    with pytest.raises(DecodeError, match="reading stopped at byte .* damaged.*--salvage"), open_video(bad) as r:
        list(r)
    with open_video(bad, salvage=True) as r:
        kept = sum(1 for _ in r)
        assert 0 < kept < 40 and "kept the" in r.notes[0]


def b_frame_avi(path: Path, frames: int = 20) -> Path:
    """An AVI of H.264 with B-frames (what `ffmpeg -c copy x.avi` gives), ``pattern`` frames, near lossless."""
    return make_x264_clip(path, frames=frames, crf=1)


def test_an_avi_with_b_frames_reads_in_shown_order_with_shown_times(tmp_path):
    """AVI stores no presentation times: each frame came with its packet's decode-order stamp (1, 4, 3, 5, 2,
    ...), and the writer, keeping times increasing, pushed frames up to 3 frame lengths late against the audio
    ("15 repeated timestamps were moved by one tick")."""
    import av
    from media import pattern

    path = b_frame_avi(tmp_path / "b.avi")
    with av.open(str(path)) as c:  # (the premise: FFmpeg's own stamps are out of order)
        raw = [f.pts for f in c.decode(video=0)]
    assert raw != sorted(raw)
    with open_video(path) as r:
        frames = list(r)
    assert [f.pts for f in frames] == sorted(raw)
    for i, f in enumerate(frames):  # and each picture is the one shown at that time, not a neighbour
        error = {k: np.abs(f.image.astype(int) - pattern(k, 64, 96)).mean() for k in range(max(0, i - 3), i + 4)}
        assert min(error, key=error.get) == i


def test_re_timing_gives_out_the_frames_it_holds_before_a_decode_error():
    """The frames held back to re-time them were dropped at a decode error: --salvage kept 16 fewer, and the
    error named a frame 16 too early."""
    import av

    from streamfill.io.decode import in_presentation_times

    def ten_then_damage():
        for pts in (1, 3, 2, 4, 6, 5, 7, 9, 8, 10):
            yield object(), pts
        raise av.error.InvalidDataError(1094995529, "Invalid data")

    got = []
    with pytest.raises(av.FFmpegError):
        for _, pts in in_presentation_times(ten_then_damage()):
            got.append(pts)
    assert got == list(range(1, 11))


def test_chunked_runs_and_the_studio_refuse_an_avi_with_b_frames_in_plain_words(tmp_path, capsys):
    """Their readers find frames by their stamps, which such a file does not have in shown order: the chunked
    run failed after the whole mask pass ('expected the frame at pts 2, decoded 3'), the studio's seeker with
    'frame 1 (pts 2) could not be decoded'."""
    from streamfill.io.seek import FrameSeeker

    src = b_frame_avi(tmp_path / "b.avi")
    mask = mask_png(tmp_path)
    out = tmp_path / "o.mp4"
    assert main(["process", str(src), "--mask", str(mask), "-o", str(out), "--chunk-seconds", "0.4"]) == 1
    err = capsys.readouterr().err
    assert "AVI with B-frames" in err and "without --ray/--chunk-seconds" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(DecodeError, match="AVI with B-frames.*convert it"):
        FrameSeeker(src).open()
