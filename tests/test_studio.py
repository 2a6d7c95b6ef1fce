"""`streamfill studio`: the HTTP API through Starlette's test client, the path rules, the limits, the jobs
(track, remove, cancel), random access to frames, and the weak-track signal."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2")  # starlette's test client

import cv2  # noqa: E402
from media import make_video  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402
from studio_helpers import disc_mask, make_object_clip, object_at  # noqa: E402

from streamfill import io  # noqa: E402
from streamfill.errors import DecodeError  # noqa: E402
from streamfill.io.seek import FrameSeeker, encode_png  # noqa: E402
from streamfill.studio.app import create_app  # noqa: E402
from streamfill.studio.session import Limits, Studio  # noqa: E402
from streamfill.studio.weak import spans, weak_frames  # noqa: E402

W, H, FRAMES = 160, 96, 12


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    make_object_clip(root / "clip.mp4", frames=FRAMES, width=W, height=H)
    (root / "notes.mp4").write_bytes(b"not a video")
    (tmp_path / "secret.mp4").write_bytes(b"outside the root")
    make_video(tmp_path / "outside.mp4", frames=3)
    return root


@pytest.fixture
def studio(root, tmp_path):
    s = Studio(root, tmp_path / "work", limits=Limits(max_upload=2_000_000))
    yield s
    s.close()


@pytest.fixture
def client(studio):
    with TestClient(create_app(studio), base_url="http://127.0.0.1:7860") as c:
        yield c


def png_data_url(mask: np.ndarray) -> str:
    ok, data = cv2.imencode(".png", mask)
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode()


def wait_job(client, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = client.get(f"/api/jobs/{job_id}").json()
        if snap["state"] in ("done", "failed", "cancelled"):
            return snap
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {snap}")


def open_clip(client, path="clip.mp4"):
    r = client.post("/api/open", json={"path": path})
    assert r.status_code == 200, r.text
    return r.json()


def hold_removal(monkeypatch):
    """Make Remove jobs wait after their first frame: (reading: set once a job is there, go_on: set it to let the
    job finish)."""
    from streamfill.studio import session

    reading, go_on = threading.Event(), threading.Event()
    real = session.api.process

    def held(input, output, *, mask, config, progress, inpainter=None):
        def hold(done, total):  # the input is open and one frame is done
            if done == 1:
                reading.set()
                go_on.wait(20)
            progress(done, total)
        return real(input, output, mask=mask, config=config, progress=hold, inpainter=inpainter)

    monkeypatch.setattr(session.api, "process", held)
    return reading, go_on


# -- frames ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x264", [{}, {"preset": "medium", "bf": "3", "b-pyramid": "normal", "g": "250"}],
                         ids=["intra-12", "b-frames-long-gop"])
def test_frame_seeker_matches_sequential_decoding(tmp_path, x264):
    path = make_object_clip(tmp_path / "c.mp4", frames=30, width=64, height=48, x264=x264)
    with io.open_video(path) as reader:
        ref = list(reader)
    order = list(np.random.default_rng(0).permutation(30)) + list(range(30))
    with FrameSeeker(path) as seeker:
        assert seeker.count == 30
        for i in order:
            f = seeker.frame(int(i))
            assert f.index == i and f.pts == ref[i].pts and np.array_equal(f.image, ref[i].image)
        with pytest.raises(ValueError, match="outside the clip"):
            seeker.frame(30)


@pytest.mark.parametrize(("suffix", "bf"), [("ts", "2"), ("m2ts", "2"), ("ts", "0")])
def test_frame_seeker_reaches_every_frame_of_an_mpeg_ts_with_b_frames(tmp_path, suffix, bf):
    """MPEG-TS seeks by decoding time: a seek to a frame's (or its keyframe's) presentation time landed on a
    B-frame after the keyframe, and even the fallback "from the start" (a seek to the first pts) did, so no
    frame of the first GOP could be shown ("could not be decoded") and every other one was decoded from the
    second keyframe on (camera .mts/.m2ts files, broadcast .ts). Without B-frames (bf 0) a TS seek lands on
    the very packet of the frame's pts, keyframe or not: a seek to the frame's own pts started decoding at a
    P-frame, so every frame but the keyframes was decoded from the start of the file (reopened each time);
    seeks go to the keyframe's time."""
    path = make_object_clip(tmp_path / f"c.{suffix}", frames=40, width=64, height=48, x264={"bf": bf})
    with io.open_video(path) as reader:
        ref = list(reader)
    with FrameSeeker(path) as seeker:
        assert seeker.count == 40 and len(seeker.keyframes) > 1
        for i in [0, 5, 39, 13, 11, 1, 26, 24]:
            f = seeker.frame(i)
            assert f.pts == ref[i].pts and np.array_equal(f.image, ref[i].image), i
        assert seeker.seeks <= 8  # each jump back found its keyframe: no decoding from the start


def test_a_frame_that_cannot_be_decoded_is_named_without_the_server_path(tmp_path):
    """The page shows the seeker's message as it is: 'could not be decoded' (an AVI with B-frames, a damaged
    file) and 'is not open' (a mask or result video replaced meanwhile) carried the server's full path."""
    path = make_object_clip(tmp_path / "c.mp4", frames=12, width=64, height=48)
    seeker = FrameSeeker(path).open()
    seeker._next = lambda stop: None  # the decoder ends before the frame comes out
    with pytest.raises(DecodeError) as exc:
        seeker.frame(5)
    assert str(exc.value).startswith("c.mp4: frame 5") and str(tmp_path) not in str(exc.value)
    seeker.close()
    with pytest.raises(DecodeError) as exc:
        seeker.frame(5)
    assert str(exc.value) == "c.mp4 is not open"


def test_a_seeker_closed_while_a_request_waits_says_so(tmp_path):
    """A mask or result video replaced by a newer run is closed while the page may be asking for one of its
    frames: a request that passed the 'is it open' check before the close took the lock failed with an
    AttributeError (a 500 without a message) instead of 'is not open'."""
    path = make_object_clip(tmp_path / "c.mp4", frames=12, width=64, height=48)
    seeker = FrameSeeker(path).open()
    seeker.frame(0)
    errors = []

    def ask():
        try:
            seeker.frame(9)
        except Exception as exc:  # noqa: BLE001 - the test looks at which one
            errors.append(exc)

    with seeker._lock:  # the request waits for the lock, as behind a decode in progress ...
        thread = threading.Thread(target=ask)
        thread.start()
        time.sleep(0.2)
        seeker._container.close()  # ... and close() (which takes the same lock) comes first
        seeker._container, seeker._decoder = None, None
    thread.join(10)
    assert len(errors) == 1 and isinstance(errors[0], DecodeError) and str(errors[0]) == "c.mp4 is not open"


def test_frame_seeker_skips_frames_an_edit_list_discards(tmp_path):
    """A clip cut without re-encoding: its MP4 edit list starts 3 frames after the first picture, which is
    decoded as a reference only. The reader has 27 frames from pts 0; the seeker counted 30, so studio frame k
    was the reader's frame k - 3 (masks painted on k applied 3 frames later) and frame 0 could not be shown."""
    from fractions import Fraction

    path = tmp_path / "cut.mp4"
    make_video(path, frames=30, vfr_pts=list(range(-3, 27)), time_base=Fraction(1, 25),
               options={"avoid_negative_ts": "disabled"})
    with io.open_video(path) as reader:
        ref = list(reader)
    assert len(ref) == 27 and ref[0].pts == 0
    with FrameSeeker(path) as seeker:
        assert seeker.count == 27
        for i in [0, 26, 3, 13, 1]:
            f = seeker.frame(i)
            assert f.pts == ref[i].pts and np.array_equal(f.image, ref[i].image)


def test_open_and_frames(client):
    clip = open_clip(client)
    assert (clip["width"], clip["height"], clip["frames"], clip["fps"]) == (W, H, FRAMES, 25.0)
    assert clip["preview"] == [W, H]
    r = client.get(f"/api/clips/{clip['id']}/frames/5")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert float(r.headers["x-frame-time"]) == pytest.approx(5 / 25)
    image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (H, W, 3)
    r = client.get(f"/api/clips/{clip['id']}/frames/{FRAMES}")
    assert r.status_code == 400 and "outside the clip" in r.json()["error"]
    assert client.post("/api/open", json={"path": "clip.mp4"}).json()["id"] == clip["id"]  # opened once
    r = client.get(f"/api/clips/{clip['id']}/masks/0")
    assert r.status_code == 400 and "press Track" in r.json()["error"]
    assert client.get("/api/clips/nope/frames/0").json()["error"].startswith("unknown clip")


def page_timecode_frame(seconds: float, fps: float) -> int:
    """The frame part of the page's timecode (studio.js ``timecode``) for a frame time in the header."""
    whole = int(np.floor(seconds + 1e-9))
    return min(round(fps) - 1, int(np.floor((seconds - whole) * fps + 1e-6)))


def test_the_timecode_of_every_frame_of_a_30_fps_clip_names_that_frame(client, root):
    """X-Frame-Time was rounded to 6 decimals: at 30 fps (MP4 time base 1/15360) frame 1 came as 0.033333 s,
    and the page's timecode read 00:00:00:00 for frame 1, :24 for frame 25: one frame early on most frames."""
    make_object_clip(root / "thirty.mp4", frames=31, width=W, height=H, fps=30)
    clip = open_clip(client, "thirty.mp4")
    for i in range(clip["frames"]):
        r = client.get(f"/api/clips/{clip['id']}/frames/{i}")
        assert page_timecode_frame(float(r.headers["x-frame-time"]), clip["fps"]) == i % 30, i


def test_a_clip_replaced_on_disk_is_opened_anew(client, root):
    """Opening a path again gave the clip opened before even when the file had been replaced since (a clip
    re-exported under the same name): the page showed the old frames (and frame count) while Track and Remove
    read the new file, so masks painted on the old pictures were applied to other ones."""
    first = open_clip(client)
    assert open_clip(client)["id"] == first["id"]
    make_object_clip(root / "new.mp4", frames=FRAMES + 6, width=W, height=H)
    os.replace(root / "new.mp4", root / "clip.mp4")
    again = open_clip(client)
    assert again["id"] != first["id"] and again["frames"] == FRAMES + 6
    assert client.get(f"/api/clips/{first['id']}").status_code == 200  # its jobs and results stay reachable


def test_a_clip_opened_anew_closes_the_old_one_once_its_running_job_ends(client, studio, root, monkeypatch):
    """A clip opened again after its file changed on disk left the old clip open for good: its scrub decoder
    and its proxy thread went on and its previews stayed counted against the memory all clips share. The old
    clip is now retired: refused for new use at once, closed when the job still running on it ends (which
    finishes on the file it opened)."""

    first = open_clip(client)
    old = studio.clip(first["id"])
    job = client.post(f"/api/clips/{first['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert wait_job(client, job.json()["id"])["state"] == "done"
    assert old._builder.done.wait(20) and old.proxies
    budget = studio.limits.proxy_bytes
    assert studio.proxies.left == budget - sum(map(len, old.proxies.values()))
    reading, go_on = hold_removal(monkeypatch)  # the file is replaced while the job reads it
    job = client.post(f"/api/clips/{first['id']}/remove", json={"engine": "telea", "temporal": "off"}).json()
    assert reading.wait(30)
    make_object_clip(root / "new.mp4", frames=FRAMES + 6, width=W, height=H)
    os.replace(root / "new.mp4", root / "clip.mp4")
    again = open_clip(client)
    assert again["id"] != first["id"] and again["frames"] == FRAMES + 6
    assert old.scrubber._thread.is_alive()  # the job still runs on it
    for url in (f"/api/clips/{first['id']}/frames/3", f"/api/clips/{first['id']}/masks/3"):
        r = client.get(url)
        assert r.status_code == 400 and r.json()["error"] == "clip.mp4 changed on disk since this clip was opened: " \
                                                            "open it again", url
    r = client.post(f"/api/clips/{first['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert r.status_code == 400 and "changed on disk" in r.json()["error"]
    go_on.set()
    snap = wait_job(client, job["id"])
    assert snap["state"] == "done", snap
    result = client.get(f"/api/jobs/{job['id']}/download")
    assert result.status_code == 200
    (root / "result.mp4").write_bytes(result.content)
    with io.open_video(root / "result.mp4") as reader:
        assert sum(1 for _ in reader) == FRAMES  # the old file's frames
    assert not old.scrubber._thread.is_alive() and not old._builder._thread.is_alive()
    assert old.seeker._container is None and old.result.seeker._container is None and not old.proxies
    new = studio.clip(again["id"])
    assert new._builder.done.wait(20)
    assert studio.proxies.left == budget - sum(map(len, new.proxies.values()))  # the old clip's share is back
    assert client.get(f"/api/clips/{first['id']}").status_code == 200  # its job and result stay reachable


def test_closing_a_clip_frees_it_and_deletes_only_an_upload_s_copy(client, studio, root, monkeypatch):
    """Every clip opened or uploaded stayed open for the life of the server: its decoders, its previews' memory
    and an upload's copy on disk piled up with each clip. DELETE closes one: refused (409) while a job of the
    clip runs; then its decoders stop, its previews' memory goes back to the budget all clips share, and the
    studio's copy of an upload is deleted; a file opened from --root never is."""
    from streamfill.errors import InputError

    opened = open_clip(client)
    up = client.post("/api/upload", params={"name": "up.mp4"}, content=(root / "clip.mp4").read_bytes()).json()
    a, u = studio.clip(opened["id"]), studio.clip(up["id"])
    assert a._builder.done.wait(20) and u._builder.done.wait(20)
    budget, share = studio.limits.proxy_bytes, lambda c: sum(map(len, c.proxies.values()))
    assert studio.proxies.left == budget - share(a) - share(u) < budget
    r = client.post(f"/api/clips/{up['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert wait_job(client, r.json()["id"])["state"] == "done"
    reading, go_on = hold_removal(monkeypatch)
    job = client.post(f"/api/clips/{up['id']}/remove", json={"engine": "telea", "temporal": "off"}).json()
    assert reading.wait(30)
    r = client.delete(f"/api/clips/{up['id']}")
    assert r.status_code == 409 and r.json()["error"] == "up.mp4 has a remove job running: cancel it or wait for " \
                                                         "it to end, then close the clip", r.json()
    assert u.scrubber._thread.is_alive() and u.path.is_file()
    go_on.set()
    assert wait_job(client, job["id"])["state"] == "done"
    assert sorted(p.suffix for p in u.work.iterdir() if p.is_file()) == [".mkv", ".mp4"]  # its masks and result

    assert client.delete(f"/api/clips/{up['id']}").status_code == 200
    assert not u.work.exists()  # nothing offers its masks and result any more: they are not kept either
    assert not u.scrubber._thread.is_alive() and not u._builder._thread.is_alive()
    assert u.seeker._container is None and u.result.seeker._container is None and not u.proxies
    assert not u.path.exists() and not u.path.parent.exists()  # the studio's copy of the upload
    assert studio.proxies.left == budget - share(a)
    r = client.get(f"/api/clips/{up['id']}/frames/0")
    assert r.status_code == 404 and "closed" in r.json()["error"]
    with pytest.raises(InputError, match="up.mp4 was closed: open it again"):  # a request that had it before
        studio.start_track(u, [])
    assert [c["id"] for c in client.get("/api/state").json()["clips"]] == [opened["id"]]

    assert client.delete(f"/api/clips/{opened['id']}").status_code == 200
    assert (root / "clip.mp4").is_file() and studio.proxies.left == budget  # a file under --root stays
    assert not a.work.exists()
    assert client.delete(f"/api/clips/{opened['id']}").status_code == 404
    again = open_clip(client)
    assert again["id"] != opened["id"] and client.get(f"/api/clips/{again['id']}/frames/3").status_code == 200



def test_closing_a_clip_never_deletes_a_user_s_file_where_work_overlaps_root(tmp_path):
    """With --work over --root, a user's own folder may be called uploads: closing a clip opened from it
    deleted that whole folder (the clip's path alone was taken as the sign of an upload). Only the files the
    studio wrote for uploads are deleted."""
    root = tmp_path / "r"
    (root / "uploads" / "holiday").mkdir(parents=True)
    for name in ("a.mp4", "b.mp4"):
        make_object_clip(root / "uploads" / "holiday" / name, frames=4, width=W, height=H)
    studio = Studio(root, root, limits=Limits(max_upload=2_000_000))
    try:
        with TestClient(create_app(studio), base_url="http://127.0.0.1:7860") as client:
            opened = open_clip(client, "uploads/holiday/a.mp4")
            assert client.delete(f"/api/clips/{opened['id']}").status_code == 200
            assert (root / "uploads" / "holiday" / "a.mp4").is_file()
            assert (root / "uploads" / "holiday" / "b.mp4").is_file()
            data = (root / "uploads" / "holiday" / "b.mp4").read_bytes()
            up = client.post("/api/upload", params={"name": "up.mp4"}, content=data).json()
            copy = studio.clip(up["id"]).path
            assert client.delete(f"/api/clips/{up['id']}").status_code == 200
            assert not copy.exists()  # the studio's own copy still goes
    finally:
        studio.close()

def test_a_job_on_a_clip_whose_file_changed_since_it_was_opened_is_refused(client, root):
    """A Track started on a clip whose file was replaced since (the page not reopened) tracked the new
    file's frames with keyframes painted on the old ones."""
    clip = open_clip(client)
    make_object_clip(root / "new.mp4", frames=FRAMES + 6, width=W, height=H)
    os.replace(root / "new.mp4", root / "clip.mp4")
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    snap = wait_job(client, r.json()["id"])
    assert snap["state"] == "failed" and snap["error"] == "clip.mp4 changed on disk since this clip was opened: " \
                                                           "open it again"


@pytest.mark.slow
def test_four_k_preview_is_downscaled_and_masks_stay_full_size(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    make_object_clip(root / "uhd.mp4", frames=2, width=3840, height=2160)
    studio = Studio(root, tmp_path / "w", limits=Limits(proxy_bytes=0))  # the seek path, nothing beside it
    try:
        with TestClient(create_app(studio), base_url="http://127.0.0.1") as client:
            clip = open_clip(client, "uhd.mp4")
            assert clip["preview"] == [1280, 720]
            r = client.get(f"/api/clips/{clip['id']}/frames/1")
            assert cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR).shape == (720, 1280, 3)
            mask = disc_mask(0, 3840, 2160)
            r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [{"index": 0,
                                                                                  "mask": png_data_url(mask)}]})
            assert r.status_code == 200, r.text
            assert wait_job(client, r.json()["id"], 120)["state"] == "done"
            masks = studio.clip(clip["id"]).masks.path
            with io.open_video(masks) as reader:
                first = next(iter(reader))
            assert first.image.shape == (2160, 3840, 3)
            assert np.array_equal(first.image.max(axis=2) > 127, mask > 127)  # the keyframe, pixel for pixel
            r = client.get(f"/api/clips/{clip['id']}/masks/0")
            assert cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_GRAYSCALE).shape == (720, 1280)
    finally:
        studio.close()


# -- paths -------------------------------------------------------------------------------------------------
def test_listing_shows_videos_and_folders_only_inside_root(client, root, tmp_path):
    os.symlink(tmp_path / "secret.mp4", root / "link-out.mp4")
    os.symlink(tmp_path, root / "dir-out")
    os.symlink(root / "clip.mp4", root / "sub" / "link-in.mp4")
    (root / "readme.txt").write_text("x")
    listing = client.get("/api/files").json()
    assert [d["name"] for d in listing["dirs"]] == ["sub"]
    assert [f["name"] for f in listing["files"]] == ["clip.mp4", "notes.mp4"]
    assert listing["parent"] is None
    sub = client.get("/api/files", params={"path": "sub"}).json()
    assert [f["path"] for f in sub["files"]] == ["sub/link-in.mp4"] and sub["parent"] == ""
    assert open_clip(client, "sub/link-in.mp4")["frames"] == FRAMES  # a link that stays inside is fine


@pytest.mark.parametrize("path", ["..", "../", "../secret.mp4", "sub/../../secret.mp4", "/etc/passwd",
                                  "//etc/passwd", "link-out.mp4", "dir-out", "dir-out/secret.mp4", "sub\\..\\..",
                                  "~/secret.mp4", "clip.mp4\x00.txt", "%2e%2e/secret.mp4", "..%2fsecret.mp4",
                                  "%252e%252e%252fsecret.mp4", "C:/Windows"])
def test_nothing_outside_root_is_read_or_listed(client, root, tmp_path, path):
    os.symlink(tmp_path / "outside.mp4", root / "link-out.mp4")
    os.symlink(tmp_path, root / "dir-out")
    for r in (client.get("/api/files", params={"path": path}), client.post("/api/open", json={"path": path})):
        assert r.status_code == 404, (path, r.status_code, r.text)
        text = r.json()["error"]
        assert str(tmp_path) not in text and "\n" not in text
    assert client.get("/api/state").json()["clips"] == []


def test_unusual_but_valid_names_are_listed_and_opened(client, root):
    """'~tilde.mp4' and 'a:b.mp4' were listed but refused as absolute paths; a name that is not UTF-8 on disk
    made the whole folder's listing a 500."""
    shutil.copy(root / "clip.mp4", root / "~tilde.mp4")
    shutil.copy(root / "clip.mp4", root / "a:b.mp4")
    os.close(os.open(os.path.join(os.fsencode(root), b"bad\xffname.mp4"), os.O_CREAT | os.O_WRONLY))
    r = client.get("/api/files")
    assert r.status_code == 200, r.text
    names = [f["name"] for f in r.json()["files"]]
    assert "~tilde.mp4" in names and "a:b.mp4" in names
    for name in ("~tilde.mp4", "a:b.mp4"):
        assert open_clip(client, name)["frames"] == FRAMES


def test_json_nested_too_deep_or_of_the_wrong_kind_is_a_400(client):
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/api/open", content=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    clip = open_clip(client)["id"]
    r = client.post(f"/api/clips/{clip}/remove", json=[])
    assert r.status_code == 400 and "JSON object" in r.json()["error"]


@pytest.mark.parametrize("raw", ["/api/files?path=..", "/api/files?path=%2e%2e", "/api/files?path=%2E%2E%2F",
                                 "/api/files?path=..%2F..%2Fetc", "/api/files?path=%2Fetc",
                                 "/static/..%2f..%2fsession.py", "/static/%2e%2e/session.py",
                                 "/static/../app.py"])
def test_url_encoded_escapes(client, raw):
    r = client.get(raw)
    assert r.status_code == 404, (raw, r.status_code)
    assert b"import" not in r.content


# -- security ----------------------------------------------------------------------------------------------
def test_token_is_required_when_given(studio):
    with TestClient(create_app(studio, token="s3cret-token"), base_url="http://192.168.1.5:7860") as c:
        r = c.get("/api/state")
        assert r.status_code == 403 and "token" in r.json()["error"]
        assert c.get("/api/state", params={"token": "wrong-token"}).status_code == 403
        assert c.get("/api/state", headers={"X-Streamfill-Token": "s3cret-token"}).status_code == 200
        page = c.get("/", params={"token": "s3cret-token"})
        assert page.status_code == 200 and "streamfill studio" in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "httponly" in page.headers["set-cookie"].lower()
        assert c.get("/api/state").status_code == 200  # the cookie the page got


def test_state_while_a_clip_opens_or_a_job_starts(studio, client, monkeypatch):
    """/api/state iterated the clip and job tables while request threads added to them: "dictionary changed
    size during iteration" (a 500 on the page's poll). Here the change happens during the listing itself."""
    from streamfill.studio import session

    first = studio.clip(open_clip(client)["id"])
    real = session.Clip.describe

    def describe_while_another_opens(self):
        studio.clips.setdefault("other", first)  # what a concurrent open does
        return real(self)

    monkeypatch.setattr(session.Clip, "describe", describe_while_another_opens)
    assert len(studio.state()["clips"]) == 1
    assert len(studio.state()["clips"]) == 2


def test_two_studios_in_one_browser_keep_their_own_token_cookie(studio):
    """Browsers share cookies across the ports of a host: under one name, opening a second token-protected
    studio (another port) replaced the first one's token, whose page then got "wrong token"."""
    names = []
    for port, token in ((7860, "first-token"), (7861, "second-token")):
        with TestClient(create_app(studio, token=token), base_url=f"http://192.168.1.5:{port}") as c:
            page = c.get("/", params={"token": token})
            names.append(page.headers["set-cookie"].split("=", 1)[0])
            c.cookies.set(names[-1], token)  # (on the client: per-request cookies are deprecated)
            assert c.get("/api/state").status_code == 200
    assert names[0] != names[1] and names[0].endswith("7860"), names


def test_loopback_only_answers_loopback_hosts_and_own_origin(studio):
    with TestClient(create_app(studio), base_url="http://evil.example:7860") as c:
        r = c.get("/api/state")
        assert r.status_code == 403 and "loopback" in r.json()["error"]  # DNS rebinding
    with TestClient(create_app(studio), base_url="http://localhost:7860") as c:
        assert c.get("/api/state").status_code == 200
        r = c.post("/api/open", json={"path": "clip.mp4"}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "own page" in r.json()["error"]
        assert c.post("/api/open", json={"path": "clip.mp4"}, headers={"Origin": "http://localhost:7860"}).is_success


@pytest.mark.slow
def test_cli_refuses_other_hosts_without_token(tmp_path):
    run = subprocess.run([sys.executable, "-m", "streamfill", "studio", "--host", "0.0.0.0", "--root", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and "--token" in run.stderr
    run = subprocess.run([sys.executable, "-m", "streamfill", "studio", "--root", str(tmp_path / "nope"),
                          "--port", "0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "not a folder" in run.stderr and "Traceback" not in run.stderr


STOP_WITH_A_JOB = """
import sys, time
from streamfill.cli import main
from streamfill.studio import session

def endless(input, output, *, mask, config, progress, inpainter=None):  # a removal that runs until it is cancelled
    while True:
        progress(0, 10)
        time.sleep(0.05)

session.api.process = endless
sys.exit(main(["studio", "--root", sys.argv[1], "--port", "0"]))
"""


@pytest.mark.slow
def test_ctrl_c_while_a_page_follows_a_job_stops_without_a_traceback(root, tmp_path):
    """Ctrl+C while a job ran and a page followed its progress (server-sent events) printed uvicorn's
    "Cancel 1 running task(s), timeout graceful shutdown exceeded" and a 60-line CancelledError traceback:
    the progress stream went on until uvicorn gave up waiting for it. It now ends when the server stops."""
    import json
    import signal
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-c", STOP_WITH_A_JOB, str(root)], stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "open http://" in line, line
        url = line.split("open ", 1)[1].split()[0]

        def post(path, body):
            request = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as r:
                return json.load(r)

        def wait_done(job):
            for _ in range(600):
                with urllib.request.urlopen(f"{url}api/jobs/{job['id']}", timeout=30) as r:
                    if json.load(r)["state"] not in ("queued", "running"):
                        return
                time.sleep(0.05)

        clip = post("api/open", {"path": "clip.mp4"})
        wait_done(post(f"api/clips/{clip['id']}/track", {"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]}))
        job = post(f"api/clips/{clip['id']}/remove", {"engine": "telea"})
        events = urllib.request.urlopen(f"{url}api/jobs/{job['id']}/events", timeout=30)  # the page follows it
        assert events.readline().startswith(b"data: ")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=30)[1]
        events.close()
    finally:
        proc.kill()
    assert "Traceback" not in err and "ERROR" not in err, err
    assert time.monotonic() - t0 < 2, "the progress stream held the shutdown up"


@pytest.mark.parametrize("flags, message", [(["--max-upload", "nan"], "--max-upload"),
                                           (["--max-upload", "inf"], "--max-upload"),
                                           (["--work", "FILE"], "cannot make that folder")])
def test_cli_bad_limits_and_work_folder_get_one_line(tmp_path, capsys, flags, message):
    """--max-upload nan/inf was an 'internal error (ValueError...)'; --work naming a file was
    'FileExistsError: [Errno 17] File exists'."""
    from streamfill.cli import main

    (tmp_path / "FILE").write_text("x")
    flags = [str(tmp_path / f) if f == "FILE" else f for f in flags]
    assert main(["studio", "--root", str(tmp_path), "--port", "0", *flags]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "internal error" not in err and "Errno" not in err, err


# -- uploads -----------------------------------------------------------------------------------------------
def test_upload(client, studio, tmp_path):
    data = (tmp_path / "root" / "clip.mp4").read_bytes()
    r = client.post("/api/upload", params={"name": "../../my clip.mp4"}, content=data)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "my_clip.mp4" and r.json()["frames"] == FRAMES
    assert studio.clip(r.json()["id"]).path.is_relative_to(studio.work)
    r = client.post("/api/upload", params={"name": "x.mp4"}, content=b"definitely not a video" * 10)
    assert r.status_code == 400 and r.json()["error"].startswith("x.mp4 is not a video")
    r = client.post("/api/upload", params={"name": "big.mp4"}, content=b"\0" * 2_000_001)
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    r = client.post("/api/upload", params={"name": "empty.mp4"}, content=b"")
    assert r.status_code == 400 and "empty" in r.json()["error"]
    uploads = list((studio.work / "uploads").iterdir())
    assert len(uploads) == 1  # the refused ones left nothing behind


def test_frame_size_limit(root, tmp_path):
    studio = Studio(root, tmp_path / "w", limits=Limits(max_pixels=100 * 60))
    try:
        with TestClient(create_app(studio), base_url="http://127.0.0.1") as c:
            r = c.post("/api/open", json={"path": "clip.mp4"})
            assert r.status_code == 400 and "larger than this studio accepts" in r.json()["error"]
    finally:
        studio.close()


def test_not_a_video_in_root(client):
    r = client.post("/api/open", json={"path": "notes.mp4"})
    assert r.status_code == 400 and "notes.mp4" in r.json()["error"] and "/" not in r.json()["error"].split(":")[0]
    assert client.post("/api/open", content=b"{nope").json()["error"] == "the request is not valid JSON"


# -- tracking, removal, jobs -------------------------------------------------------------------------------
@pytest.mark.parametrize("item, message", [
    ({"index": 0, "mask": png_data_url(np.zeros((H, W), np.uint8))}, "empty"),
    ({"index": 0, "mask": png_data_url(np.full((H // 2, W), 255, np.uint8))}, f"but the clip is {W}x{H}"),
    ({"index": 0, "mask": "data:image/png;base64,@@@"}, "not valid base64"),
    ({"index": 0, "mask": base64.b64encode(b"GIF89a....").decode()}, "not a PNG"),
    ({"index": FRAMES, "box": [1, 1, 10, 10]}, "not a frame of this clip"),
    ({"index": 0, "box": [W + 5, 1, 10, 10]}, "outside the frame"),
    ({"index": 0, "box": "1,2,3,4"}, "four whole numbers"),
])
def test_bad_keyframes_get_one_clear_message(client, item, message):
    clip = open_clip(client)
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [item]})
    assert r.status_code in (400, 422) and message in r.json()["error"], r.text
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": []})
    assert "nothing to track" in r.json()["error"]


def test_a_box_dragged_past_the_edge_keeps_only_its_part_inside(studio, client):
    """x and y were clamped to 0 but the width kept: a box -60,-60,70,70 became 0,0,70,70 (it grew)."""
    clip = studio.clip(open_clip(client)["id"])
    (key,) = studio.keyframes(clip, [{"index": 0, "box": [-60, -60, 70, 70]}])
    assert key.box == (0, 0, 10, 10)
    (key,) = studio.keyframes(clip, [{"index": 0, "box": [-10**20, -10**20, 10**21, 10**21]}])
    assert key.box == (0, 0, W, H)


def test_two_keyframes_on_one_frame_and_unknown_ids(client):
    """Two keyframes for one frame were accepted and failed later, in the job; unknown ids were a 400."""
    clip = open_clip(client)
    keys = [{"index": 3, "box": [1, 1, 20, 20]}, {"index": 3, "box": [2, 2, 20, 20]}]
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": keys})
    assert r.status_code == 400 and "two keyframes for frame 3" in r.json()["error"]
    assert client.get("/api/clips/nope/frames/0").status_code == 404
    assert client.get("/api/jobs/nope").status_code == 404



def test_track_then_remove_then_download(client, studio, tmp_path):
    clip = open_clip(client)
    keys = [{"index": 0, "mask": png_data_url(disc_mask(0, W, H))}, {"index": 8, "box": [60, 30, 50, 40]}]
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": keys})
    assert r.status_code == 200 and r.json()["kind"] == "track"
    snap = wait_job(client, r.json()["id"])
    assert snap["state"] == "done" and snap["percent"] == 100.0 and snap["done"] == FRAMES, snap
    info = client.get(f"/api/clips/{clip['id']}").json()
    track = info["track"]
    assert track["frames"] == FRAMES and track["keyframes"] == [0, 8] and len(track["areas"]) == FRAMES
    assert track["signal"] in ("area", "confidence", "lost") and info["has_masks"]
    mask = client.get(f"/api/clips/{clip['id']}/masks/3")
    grey = cv2.imdecode(np.frombuffer(mask.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    ys, xs = np.nonzero(grey > 127)
    cx, cy, _ = object_at(3, W, H)
    assert abs(xs.mean() - cx) < 4 and abs(ys.mean() - cy) < 4

    masks = tmp_path / "masks.mkv"
    masks.write_bytes(client.get(f"/api/clips/{clip['id']}/masks.mkv").content)
    with io.open_video(masks) as reader:
        assert sum(1 for _ in reader) == FRAMES  # usable by `process --mask`

    r = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": "warp9", "temporal": "off"})
    assert r.status_code == 400 and "unknown engine" in r.json()["error"]
    r = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": "telea", "temporal": "off"})
    job = r.json()
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as events:
        states = [line for line in events.iter_lines() if line.startswith("data:")]
    assert '"state": "done"' in states[-1] and '"percent": 100.0' in states[-1]
    out = tmp_path / "out.mp4"
    r = client.get(f"/api/jobs/{job['id']}/download")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    out.write_bytes(r.content)
    with io.open_video(out) as reader:
        frames = list(reader)
    assert len(frames) == FRAMES
    cx, cy, rad = object_at(5, W, H)
    patch = frames[5].image[cy - rad // 2:cy + rad // 2, cx - rad // 2:cx + rad // 2].astype(int)
    assert patch[..., 2].mean() < 180  # the blue disc is gone
    r = client.get(f"/api/clips/{clip['id']}/frames/5", params={"which": "result"})
    assert r.status_code == 200
    assert client.get(f"/api/clips/{clip['id']}").json()["result"] == wait_job(client, job["id"])["output"]


def test_a_result_frame_asked_for_while_a_remove_ends_is_one_result_s_frame(client, studio, monkeypatch):
    """A Remove ending set the clip's result file, then its seeker: a result frame asked for in between decoded
    the old result under the new one's name, and the preview cache gave that old picture for the new result's
    frame from then on. The file and its seeker are now one attribute, swapped at once. Also: the new result
    never stands under its final name half-written (the page can only ever see it whole)."""
    from streamfill.io.seek import preview_jpeg
    from streamfill.studio import session
    from streamfill.studio.clip import PROXY_QUALITY

    cid = open_clip(client)["id"]
    clip = studio.clip(cid)
    r = client.post(f"/api/clips/{cid}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert wait_job(client, r.json()["id"])["state"] == "done"
    first = client.post(f"/api/clips/{cid}/remove", json={"engine": "telea", "temporal": "off"}).json()
    assert wait_job(client, first["id"])["state"] == "done"
    old = client.get(f"/api/clips/{cid}/frames/5", params={"which": "result"}).content

    reading, go_on, asking, swapped, asked = (threading.Event() for _ in range(5))
    real_process, real_check, real_drop = session.api.process, clip._check_index, session.Studio._drop

    def held(input, output, *, mask, config, progress, inpainter=None):
        def hold(done, total):
            if done == 1:
                reading.set()
                go_on.wait(20)
            progress(done, total)
        return real_process(input, output, mask=mask, config=config, progress=hold, inpainter=inpainter)

    def check(index):  # the request has taken the clip's result: the Remove ends now
        if threading.current_thread().name == "asker":
            asking.set()
            swapped.wait(20)
        real_check(index)

    def drop(old):  # the new result is in place; the old one stays open until the request has decoded
        if old is not None and old.path.suffix == ".mp4":
            swapped.set()
            asked.wait(20)
        real_drop(old)

    monkeypatch.setattr(session.api, "process", held)
    monkeypatch.setattr(clip, "_check_index", check)
    monkeypatch.setattr(session.Studio, "_drop", staticmethod(drop))
    second = client.post(f"/api/clips/{cid}/remove", json={"engine": "ns", "temporal": "off"}).json()
    assert reading.wait(30)
    final = clip.work / f"clip-removed-{second['id']}.mp4"
    assert not final.exists()  # written under a temporary name until it is complete
    answers = []

    def ask():
        try:
            answers.append(clip.frame_jpeg(5, "result")[0])
        finally:
            asked.set()

    asker = threading.Thread(target=ask, name="asker")
    asker.start()
    assert asking.wait(20)
    go_on.set()
    assert wait_job(client, second["id"])["state"] == "done"
    asker.join(20)
    with FrameSeeker(final) as seeker:
        new = preview_jpeg(seeker.decode_to(5), clip.preview, quality=PROXY_QUALITY)
    assert new != old  # (the two results differ: a mix-up would show)
    assert answers in ([old], [new])
    assert client.get(f"/api/clips/{cid}/frames/5", params={"which": "result"}).content == new


def test_a_mask_asked_for_while_a_track_ends_is_one_track_s_mask(client, studio, monkeypatch):
    """A Track ending set the clip's mask video, then its seeker, then the page's summary: a mask asked for in
    between decoded the old masks under the new video's name, and the preview cache gave that old mask for the
    new track's frame from then on (the overlay showed the first track there). The three are now one
    attribute, swapped at once: here a request is answered right after each attribute the job sets."""
    from streamfill.studio import session
    from streamfill.studio.clip import Clip

    cid = open_clip(client)["id"]
    clip = studio.clip(cid)

    def track(box):
        r = client.post(f"/api/clips/{cid}/track", json={"keyframes": [{"index": 0, "box": box}]})
        snap = wait_job(client, r.json()["id"])
        assert snap["state"] == "done", snap
        return snap["output"]

    track([40, 20, 60, 50])
    old = client.get(f"/api/clips/{cid}/masks/5").content
    ending = threading.Event()  # the new mask video is written and read back: the job swaps it in now
    answers = []
    real_areas = session.Studio._areas

    def areas(self, masks, job):
        got = real_areas(self, masks, job)
        ending.set()
        return got

    def set_then_ask(self, name, value):  # the page asks for frame 5's mask after each step of the swap
        object.__setattr__(self, name, value)
        if self is clip and ending.is_set() and threading.current_thread() is studio._worker \
                and not name.startswith("_"):
            try:
                answers.append(clip.mask_png(5))
            except Exception as exc:  # noqa: BLE001 - the test looks at which one
                answers.append(exc)

    monkeypatch.setattr(session.Studio, "_areas", areas)
    monkeypatch.setattr(Clip, "__setattr__", set_then_ask)
    second = track([0, 0, 40, 30])
    monkeypatch.undo()
    with FrameSeeker(clip.work / second) as seeker:
        new = encode_png(seeker.frame(5).image.max(axis=2), size=clip.preview)
    assert new != old  # (the two tracks differ: a mix-up would show)
    assert answers and all(a in (old, new) for a in answers), answers
    assert client.get(f"/api/clips/{cid}/masks/5").content == new


def test_a_correction_edits_the_tracked_mask_it_was_painted_on(client, studio):
    """Strokes on a tracked frame that is not a keyframe correct the tracked mask there: the server keeps that
    mask (full size) as the keyframe's base, and the page's edit picture adds (white), erases (black) or keeps
    it (grey). A later Track does not move the base: it stays the mask the correction was painted on."""
    clip = open_clip(client)
    cid = clip["id"]
    r = client.post(f"/api/clips/{cid}/bases/5", json={})
    assert r.status_code == 400 and "press Track" in r.json()["error"]
    first = {"index": 0, "mask": png_data_url(disc_mask(0, W, H))}
    r = client.post(f"/api/clips/{cid}/track", json={"keyframes": [first]})
    assert wait_job(client, r.json()["id"])["state"] == "done"
    base = client.post(f"/api/clips/{cid}/bases/5", json={}).json()["base"]
    tracked = studio.clip(cid).base_mask(base, 5) > 127
    assert tracked.any() and tracked.shape == (H, W)
    cx, cy, rad = object_at(5, W, H)
    edit = np.full((H, W), 128, np.uint8)
    edit[:, :cx] = 0           # erase the left half of the object
    edit[:6, :6] = 255         # paint a new corner
    keys = [first, {"index": 5, "base": base, "mask": png_data_url(edit)}]
    r = client.post(f"/api/clips/{cid}/track", json={"keyframes": keys})
    assert wait_job(client, r.json()["id"])["state"] == "done"
    (_, key) = studio.keyframes(studio.clip(cid), [{**k, "mask": base64.b64decode(k["mask"].split(",")[1])}
                                                   for k in keys])
    want = (tracked & (np.arange(W) >= cx)[None, :]) | (np.arange(H)[:, None] < 6) & (np.arange(W)[None, :] < 6)
    np.testing.assert_array_equal(key.mask > 127, want)
    # the second Track replaced the masks; the base is still the first Track's mask of frame 5
    np.testing.assert_array_equal(studio.clip(cid).base_mask(base, 5) > 127, tracked)
    # a base of another frame, a made-up one, or one whose file is gone: one line each
    bad_bases = ((base, "not a tracked mask of this frame"), ("5-" + "0" * 12, "is gone"), ("../x", "not a tracked"))
    for bad, text in bad_bases:
        item = {"index": 6 if bad == base else 5, "base": bad, "mask": png_data_url(edit)}
        r = client.post(f"/api/clips/{cid}/track", json={"keyframes": [item]})
        assert r.status_code == 400 and text in r.json()["error"], r.json()


def test_two_requests_to_keep_the_same_base_both_get_it(client, studio, monkeypatch):
    """The page asks the server to keep a frame's tracked mask when a correction starts; an Undo and a new stroke
    (or a second tab) ask again while the first request runs. Both wrote one temporary name: the second rename
    found it gone (FileNotFoundError: an internal error on the page, and the stroke's keyframe dropped)."""
    from streamfill.studio import session

    cid = open_clip(client)["id"]
    first = {"index": 0, "mask": png_data_url(disc_mask(0, W, H))}
    r = client.post(f"/api/clips/{cid}/track", json={"keyframes": [first]})
    assert wait_job(client, r.json()["id"])["state"] == "done"
    clip = studio.clip(cid)
    real_replace = os.replace
    both_written = threading.Barrier(2)

    def replace_together(src, dst):  # both requests have written their picture before either renames it
        if "bases" in str(dst):
            with contextlib.suppress(threading.BrokenBarrierError):
                both_written.wait(2)
        return real_replace(src, dst)

    monkeypatch.setattr(session.os, "replace", replace_together)
    got, errors = [], []

    def keep():
        try:
            got.append(clip.save_base(5))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=keep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors, errors
    assert len(got) == 2 and got[0] == got[1]
    assert (clip.base_mask(got[0], 5) > 127).any()
    assert not list((clip.work / "bases").glob("*.partial*"))


def test_remove_needs_masks_and_one_job_per_clip(client):
    clip = open_clip(client)
    r = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": "telea"})
    assert r.status_code == 400 and "press Track" in r.json()["error"]


def test_cancel_stops_a_job_and_leaves_no_output(client, studio, monkeypatch):
    from streamfill.studio import session

    clip = open_clip(client)
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert wait_job(client, r.json()["id"])["state"] == "done"
    started = []

    def slow_process(input, output, *, mask, config, progress, inpainter=None):
        open(output, "wb").close()  # what a real run leaves under a temporary name
        for i in range(10_000):
            started.append(i)
            progress(i, 10_000)
            time.sleep(0.01)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(session.api, "process", slow_process)
    job = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": "telea", "temporal": "off"}).json()
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert r.status_code == 400 and "already running" in r.json()["error"]
    while not started:
        time.sleep(0.01)
    snap = client.get(f"/api/jobs/{job['id']}").json()
    assert snap["state"] == "running" and snap["total"] == 10_000
    client.post(f"/api/jobs/{job['id']}/cancel")
    assert wait_job(client, job["id"])["state"] == "cancelled"
    assert len(started) < 10_000
    r = client.get(f"/api/jobs/{job['id']}/download")
    assert r.status_code == 400 and "no finished output" in r.json()["error"]


def test_a_cancel_the_job_has_not_reached_yet_is_shown_as_cancelling(client, studio, monkeypatch):
    """A job stops at its next frame: with temporal quality the first frame comes after the look-ahead window
    (17 s for a 1080p clip on 2 cores), and all that time the page went on showing "0/30 frames" and the
    Cancel button as if the click had done nothing. The snapshot now says the cancel is under way."""
    from streamfill.studio import session

    clip = open_clip(client)
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert wait_job(client, r.json()["id"])["state"] == "done"
    started, go_on = threading.Event(), threading.Event()

    def slow_start(input, output, *, mask, config, progress, inpainter=None):
        started.set()
        go_on.wait(10)  # the look-ahead: no frame done yet
        progress(1, FRAMES)

    monkeypatch.setattr(session.api, "process", slow_start)
    job = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": "telea", "temporal": "quality"}).json()
    assert job["cancelling"] is False
    assert started.wait(10)
    snap = client.post(f"/api/jobs/{job['id']}/cancel").json()
    assert snap["state"] == "running" and snap["cancelling"] is True
    go_on.set()
    snap = wait_job(client, job["id"])
    assert snap["state"] == "cancelled" and snap["cancelling"] is False


@pytest.mark.parametrize("gpu", [False, True])
def test_engines_that_need_a_gpu_are_offered_only_with_one(client, studio, monkeypatch, gpu):
    """A Remove with engine compile on a CPU-only machine spent minutes (> 200 s) in torch.compile before its
    first frame, where Cancel is not looked at: the job could not be stopped and held up every other job. The
    page now offers compile and tensorrt only where the engines run on a CUDA GPU, and the server refuses
    them elsewhere with one line, before any job starts."""
    from streamfill.studio import session

    monkeypatch.setattr(session, "_runs_on_gpu", lambda config: gpu)
    st = client.get("/api/state").json()
    assert ("compile" in st["engines"], "tensorrt" in st["engines"]) == (gpu, gpu)
    assert {"telea", "ns", "auto", "torch", "onnx"} <= set(st["engines"]) and st["default_engine"] in st["engines"]
    clip = open_clip(client)
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert wait_job(client, r.json()["id"])["state"] == "done"
    loaded = []
    monkeypatch.setattr(session, "_load_engine", lambda config: loaded.append(config.engine.name))
    monkeypatch.setattr(session.api, "process", lambda *a, **k: (_ for _ in ()).throw(session.Cancelled("x")))
    for engine in ("compile", "tensorrt"):
        r = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": engine, "temporal": "off"})
        if gpu:
            assert r.status_code == 200 and wait_job(client, r.json()["id"])["state"] == "cancelled"
        else:
            error = r.json()["error"]
            assert r.status_code == 400 and "\n" not in error and "CUDA GPU" in error and "choose torch" in error
    assert loaded == (["compile", "tensorrt"] if gpu else [])
    if not gpu:
        assert [j for j in client.get("/api/state").json()["jobs"] if j["kind"] == "remove"] == []


def test_a_cancel_while_the_engine_loads_is_honoured_as_soon_as_it_is_loaded(client, studio, monkeypatch):
    """An engine built the first time (torch.compile, TensorRT, an ONNX export) takes minutes and reports no
    frame: the Cancel pressed meanwhile waited for the first frame after it (with temporal quality, after the
    look-ahead window as well). The job now stops as soon as the engine is loaded, and never starts."""
    from streamfill.studio import session

    clip = open_clip(client)
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert wait_job(client, r.json()["id"])["state"] == "done"
    loading, loaded, ran = threading.Event(), threading.Event(), []

    def slow_engine(config):
        loading.set()
        assert loaded.wait(10)
        return object()

    monkeypatch.setattr(session, "_load_engine", slow_engine)
    monkeypatch.setattr(session.api, "process", lambda *a, **k: ran.append(1))
    job = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": "telea", "temporal": "quality"}).json()
    assert loading.wait(10)
    snap = client.post(f"/api/jobs/{job['id']}/cancel").json()
    assert snap["state"] == "running" and snap["cancelling"] is True
    loaded.set()
    assert wait_job(client, job["id"])["state"] == "cancelled" and ran == []


def test_the_engine_build_note_reaches_the_page_outside_the_command_line(client, studio, monkeypatch):
    """The notes said while an engine is built the first time (minutes: 'compiling the generator with
    torch.compile ...') are logged at INFO; the page got them only when the studio ran under `streamfill
    studio`, whose command line lowers the streamfill logger to INFO. A studio served by
    ``studio.server.serve`` (or a Studio embedded elsewhere) showed nothing while the job sat at 0 frames."""
    import logging

    from streamfill.studio import session

    logger = logging.getLogger("streamfill")
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    clip = open_clip(client)
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert wait_job(client, r.json()["id"])["state"] == "done"

    def building(config):
        logging.getLogger("streamfill.backends.cache").info("building the %s engine: once", config.engine.name)
        return object()

    monkeypatch.setattr(session, "_load_engine", building)
    monkeypatch.setattr(session.api, "process", lambda *a, **k: (_ for _ in ()).throw(session.Cancelled("x")))
    job = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": "telea", "temporal": "off"}).json()
    assert wait_job(client, job["id"])["warnings"] == ["building the telea engine: once"]
    assert logger.level == logging.NOTSET  # as it was


def test_failed_job_reports_one_line(client, studio, monkeypatch):
    from streamfill.errors import EngineError
    from streamfill.studio import session

    clip = open_clip(client)
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    wait_job(client, r.json()["id"])

    def broken(*args, **kwargs):
        raise EngineError("no weights for engine onnx:\n   see the docs")

    monkeypatch.setattr(session, "_load_engine", broken)
    job = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": "onnx"}).json()
    snap = wait_job(client, job["id"])
    assert snap["state"] == "failed" and snap["error"] == "no weights for engine onnx: see the docs"


def test_streams_left_out_of_the_result_are_reported_on_the_page(tmp_path):
    """`process` reports the source streams it could not carry into the result ("not copied: ..." on the
    command line); the studio's Remove dropped them without a word (a second camera angle, a data track)."""
    from fractions import Fraction

    import av

    root = tmp_path / "r"
    root.mkdir()
    with av.open(str(root / "two.mkv"), "w") as out:
        streams = [out.add_stream("ffv1", rate=25) for _ in range(2)]
        for v in streams:
            v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
            v.codec_context.time_base = Fraction(1, 25)
        for i in range(6):
            for v in streams:
                vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
                vf.pts = i
                for p in v.encode(vf):
                    out.mux(p)
        for v in streams:
            for p in v.encode(None):
                out.mux(p)
    snap = _track_and_remove(root, tmp_path, "two.mkv")
    assert any("not copied" in w and "#1 video" in w for w in snap["warnings"]), snap["warnings"]


def test_what_process_notes_on_the_command_line_is_shown_on_the_page(tmp_path):
    """`process` logs its notes (a 10-bit source written 8-bit, audio encoded again, a hole covering the whole
    frame, the engine being compiled for minutes): the studio left them in the server's terminal, and the
    page said nothing (an iPhone HDR clip came back 8-bit without a word). They are now the job's warnings,
    without server paths."""
    import av

    root = tmp_path / "r"
    root.mkdir()
    with av.open(str(root / "ten.mkv"), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p10le"
        for i in range(6):
            vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            for p in v.encode(vf.reformat(format="yuv420p10le")):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    snap = _track_and_remove(root, tmp_path, "ten.mkv")
    notes = [w for w in snap["warnings"] if "10-bit" in w]
    assert notes == ["ten.mkv is 10-bit (yuv420p10le); streamfill works in 8-bit RGB, so its output is "
                     "8-bit"], snap["warnings"]


def _track_and_remove(root, tmp_path, name):
    """The finished removal job's snapshot for clip ``name`` under ``root`` (tracked from a box at frame 0,
    telea, no temporal completion), in a studio of its own."""
    studio = Studio(root, tmp_path / "w", limits=Limits(proxy_bytes=0))
    try:
        with TestClient(create_app(studio), base_url="http://127.0.0.1") as client:
            clip = open_clip(client, name)
            keys = {"keyframes": [{"index": 0, "box": [8, 8, 20, 20]}]}
            job = client.post(f"/api/clips/{clip['id']}/track", json=keys)
            assert wait_job(client, job.json()["id"])["state"] == "done"
            job = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": "telea", "temporal": "off"}).json()
            snap = wait_job(client, job["id"])
            assert snap["state"] == "done", snap
            assert not [w for w in snap["warnings"] if "--" in w], snap  # the page has no command-line flags
            return snap
    finally:
        studio.close()


# -- weak tracking ------------------------------------------------------------------------------------------
def test_a_lost_track_is_said_on_the_page_in_the_studio_s_own_words(root, client):
    """The tracker's lost-track line ends with the command line's advice ('add a --box there or check the
    preview'), which reached the page as it was: the studio has neither --box nor a preview file. The page now
    says what to do there; the command line keeps its wording (test_track.py, test_track_cli.py)."""
    make_object_clip(root / "gone.mp4", frames=28, width=W, height=H, hidden=range(10, 20))
    clip = open_clip(client, "gone.mp4")
    keys = [{"index": 0, "mask": png_data_url(disc_mask(0, W, H))}]  # painted a little wider than the disc
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": keys})
    snap = wait_job(client, r.json()["id"])
    assert snap["state"] == "done", snap
    lost = [w for w in snap["warnings"] if "track of the object lost" in w]
    assert len(lost) == 1 and lost[0].endswith(
        "; paint a correction on a frame there (brush, eraser or box) and track again"), snap["warnings"]
    assert "--box" not in lost[0] and "preview" not in lost[0]
    first, last = (int(v) for v in lost[0].split("frames ")[1].split(";")[0].split("-"))
    assert 10 <= first <= 11 and last >= 19, lost
    track = client.get(f"/api/clips/{clip['id']}").json()["track"]
    assert track["signal"] == "lost" and [first, last] in [list(s) for s in track["weak_spans"]], track


def _messages(snap) -> list[str]:
    return list(snap["warnings"]) + ([snap["error"]] if snap["error"] else [])


def test_tracking_notices_name_the_page_s_controls_not_the_command_line_s(root, tmp_path):
    """Besides the lost track, two tracking notices reached the page in the command line's words: a box
    whose object does not stand out ('check the preview', a file the studio does not write) and frames too
    far before the first keyframe ('[track] max_backward = 150', a setting the page has no control for). The
    page now says what to do there; the command line keeps its wording (test_track.py)."""
    from streamfill.config import Config, merge

    studio = Studio(root, tmp_path / "w", limits=Limits(proxy_bytes=0),
                    config=merge(Config(), {"track": {"max_backward": 3}}))
    try:
        with TestClient(create_app(studio), base_url="http://127.0.0.1") as client:
            clip = open_clip(client)
            keys = {"keyframes": [{"index": 8, "box": [100, 60, 40, 30]}]}  # a box around background only
            snap = wait_job(client, client.post(f"/api/clips/{clip['id']}/track", json=keys).json()["id"])
    finally:
        studio.close()
    assert snap["state"] == "done", snap
    notes = _messages(snap)
    assert any(n.startswith("box 100,60,40,30 at frame 8: nothing in it stands out") and
               n.endswith("; check its mask on that frame, or draw the box tighter") for n in notes), notes
    assert ("frame 0 gets an empty mask: the next keyframe is more than 3 frames after it, too far to track back "
            "to it; paint the object on a frame nearer to it") in notes, notes
    for note in notes:
        assert "--" not in note and "preview" not in note and "[track]" not in note and "max_backward" not in note
    from streamfill.masks.track import Advice

    cli = Advice()  # the command line's words are unchanged
    assert (cli.lost, cli.box, cli.too_far.format(limit=150)) == (
        "add a --box there or check the preview", "check the preview or draw the box tighter",
        "no keyframe within [track] max_backward = 150 frames tracks it")


def _corrupt_clip(path):
    """An FFV1 clip of 20 frames whose packets from about frame 12 on are zeroed (a damaged copy)."""
    import av
    from media import pattern

    with av.open(str(path), "w") as out:
        v = out.add_stream("ffv1", rate=25)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.options = {"slicecrc": "1"}
        for i in range(20):
            vf = av.VideoFrame.from_ndarray(pattern(i, H, W), format="rgb24")
            vf.pts = i
            for p in v.encode(vf):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    data = bytearray(path.read_bytes())
    k = int(len(data) * 0.6)
    data[k:k + 2000] = bytes(2000)
    path.write_bytes(bytes(data))


@contextlib.contextmanager
def damaged_clip(root, tmp_path, salvage: bool):
    """(client, clip): a studio with ``[io] salvage`` as given, on a clip that cannot be decoded after frame 11."""
    from streamfill.config import Config, merge

    _corrupt_clip(root / "damaged.mkv")
    studio = Studio(root, tmp_path / "w", limits=Limits(proxy_bytes=0),
                    config=merge(Config(), {"io": {"salvage": salvage}}))
    try:
        with TestClient(create_app(studio), base_url="http://127.0.0.1") as client:
            yield client, open_clip(client, "damaged.mkv")
    finally:
        studio.close()


@pytest.mark.parametrize("salvage", [False, True])
def test_decoder_messages_on_the_page_name_no_command_line_flag(root, tmp_path, salvage):
    """A damaged clip failed its Track with '--salvage keeps the frames decoded before it' (with [io] salvage
    on, the note said '(--salvage)'): a flag of `process` the page has no control for. The page names the
    studio's configuration instead."""
    with damaged_clip(root, tmp_path, salvage) as (client, clip):
        keys = {"keyframes": [{"index": 0, "box": [8, 8, 20, 20]}]}
        snap = wait_job(client, client.post(f"/api/clips/{clip['id']}/track", json=keys).json()["id"])
    notes = [n for n in _messages(snap) if "decode error" in n]
    assert len(notes) == 1 and "damaged.mkv" in notes[0], snap
    assert "--" not in notes[0] and "[io] salvage" in notes[0]
    assert "Errno" not in notes[0] and "Invalid data found" in notes[0]  # FFmpeg's words, not its error number
    if not salvage:
        assert snap["state"] == "failed" and "[io] salvage = true in the studio's configuration keeps" in notes[0]


def test_a_damaged_clip_read_with_salvage_is_as_long_as_the_frames_that_decode(root, tmp_path):
    """With [io] salvage, a clip whose index holds 20 frames but which cannot be decoded after frame 11 kept
    its 20 frames on the page while its masks and result held 12: frame 15 said 'frame 15 is outside the clip
    (0-11)' for the mask and the result of a clip the page said had 20. Once a job finds it, the clip is as
    long as the frames that decode, and the page is told once why."""
    with damaged_clip(root, tmp_path, salvage=True) as (client, clip):
        assert clip["frames"] == 20 and clip.get("damaged") is None  # not known before a job reads it all
        # a keyframe past the damage (where a seek still decodes, in a long-GOP clip) failed every Track with
        # 'keyframe 15 is beyond the end of the clip (last frame index 11)'
        box = [8, 8, 20, 20]
        keys = {"keyframes": [{"index": 0, "box": box}, {"index": 15, "box": box}]}
        snap = wait_job(client, client.post(f"/api/clips/{clip['id']}/track", json=keys).json()["id"])
        kept = client.get(f"/api/clips/{clip['id']}").json()["frames"]
        assert 0 < kept < 15 and snap["state"] == "failed", snap
        assert snap["error"] == (f"keyframe at frame 15 is after the damage: damaged.mkv cannot be decoded "
                                 f"after frame {kept - 1}; press Track again to track without the keyframes "
                                 "after it")
        keys = {"keyframes": [{"index": 0, "box": box}]}
        snap = wait_job(client, client.post(f"/api/clips/{clip['id']}/track", json=keys).json()["id"])
        assert snap["state"] == "done" and snap["total"] == kept, snap
        clip = client.get(f"/api/clips/{clip['id']}").json()
        assert clip["frames"] == kept == clip["track"]["frames"] and len(clip["track"]["areas"]) == kept
        assert clip["damaged"] == (f"damaged.mkv is damaged after frame {kept - 1}: frames {kept}-19 cannot be "
                                   "decoded, so they cannot be shown, tracked or removed (the clip is used as "
                                   f"its first {kept} frames)")
        base = f"/api/clips/{clip['id']}"
        assert client.get(f"{base}/masks/{kept - 1}").status_code == 200
        snap = wait_job(client, client.post(f"{base}/remove", json={"engine": "telea", "temporal": "off"})
                        .json()["id"])
        assert snap["state"] == "done" and snap["total"] == kept, {k: snap[k] for k in ("done", "total", "percent")}
        for url in (f"{base}/frames/{kept - 1}", f"{base}/frames/{kept - 1}?which=result"):
            assert client.get(url).status_code == 200, url
        past = f"frame 15 is after the damage: damaged.mkv cannot be decoded after frame {kept - 1}"
        for url in (f"{base}/frames/15", f"{base}/masks/15", f"{base}/frames/15?which=result"):
            r = client.get(url)
            assert r.status_code == 400 and r.json()["error"] == past, url
        r = client.get(f"{base}/frames/20")
        assert r.json()["error"] == f"frame 20 is outside the clip (0-{kept - 1})"
        r = client.post(f"{base}/track", json={"keyframes": [{"index": 15, "box": [8, 8, 20, 20]}]})
        assert r.json()["error"] == f"keyframe at {past}"


def test_missing_weights_are_said_in_the_page_s_terms(client, studio, monkeypatch):
    from streamfill.backends import neural

    monkeypatch.setattr(neural, "default_weights", lambda: None)
    clip = open_clip(client)
    r = client.post(f"/api/clips/{clip['id']}/track", json={"keyframes": [{"index": 0, "box": [40, 20, 60, 50]}]})
    assert wait_job(client, r.json()["id"])["state"] == "done"
    job = client.post(f"/api/clips/{clip['id']}/remove", json={"engine": "torch", "temporal": "off"}).json()
    snap = wait_job(client, job["id"])
    assert snap["state"] == "failed" and "no default weights are installed" in snap["error"], snap
    assert "--" not in snap["error"] and "set [engine] weights in the studio's configuration" in snap["error"]


def test_weak_frames_from_area_and_confidence():
    areas = [1000, 980, 990, 300, 0, 950, 1010, 4000, 1000, 1020]
    weak, signal = weak_frames(areas, [0, 9])
    assert signal == "area" and weak == [3, 4, 7, 8]  # collapse, loss, balloon and the jump back from it
    assert spans(weak) == [(3, 4), (7, 8)]
    conf = [1, 0.9, 0.2, 0.8, 0.1, 0.9, 0.9, 0.9, 0.9, 0.4]
    assert weak_frames(areas, [0, 9], conf) == ([2, 4], "confidence")  # a keyframe is never weak
    assert weak_frames([0, 0, 0], [0]) == ([], "area")  # nothing drawn, nothing to judge
    assert weak_frames(areas, [0, 9], lost=[(2, 4), (8, 12)]) == ([2, 3, 4, 8], "lost")  # the tracker's word
    assert weak_frames(areas, [0, 9], lost=[]) == ([], "lost")


def test_scrub_proxies_are_the_frames_the_seek_path_gives(root, tmp_path):
    from streamfill.io.seek import encode_jpeg
    from streamfill.studio.clip import PROXY_QUALITY

    studio = Studio(root, tmp_path / "w")
    try:
        clip = studio.open_clip(root / "clip.mp4", "clip.mp4")
        deadline = time.monotonic() + 30
        while len(clip.proxies) < FRAMES and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(clip.proxies) == list(range(FRAMES))
        for i in (0, 7, 3, FRAMES - 1):
            expected = encode_jpeg(clip.seeker.frame(i).image, size=clip.preview, quality=PROXY_QUALITY)
            assert clip.frame_jpeg(i)[0] == expected
    finally:
        studio.close()
    assert studio.proxies.left == studio.limits.proxy_bytes  # the memory went back when the clip closed


def test_a_clip_refused_preview_memory_gets_its_proxies_once_another_clip_gives_it_back(root, tmp_path):
    """A clip opened while the preview memory all clips share was full stopped making proxies for good, even
    after another clip was closed and its memory given back. Now it waits for memory and goes on."""
    def built(studio, name):
        clip = studio.open_clip(root / name, name)
        assert clip._builder.done.wait(30)
        return clip

    shutil.copy(root / "clip.mp4", root / "copy.mp4")  # the same frames: the same proxies, byte for byte
    measure = Studio(root, tmp_path / "w1")
    try:
        one = sum(map(len, built(measure, "clip.mp4").proxies.values()))
    finally:
        measure.close()
    budget = one + one // 2  # one clip's proxies fit, not two
    studio = Studio(root, tmp_path / "w2", limits=Limits(proxy_bytes=budget))
    try:
        first = built(studio, "clip.mp4")
        assert len(first.proxies) == FRAMES
        refused = threading.Event()
        take = studio.proxies.take

        def noted(size, *wake):
            ok = take(size, *wake)
            if not ok:
                refused.set()
            return ok

        studio.proxies.take = noted
        second = studio.open_clip(root / "copy.mp4", "copy.mp4")
        assert refused.wait(30)
        assert len(second.proxies) < FRAMES
        studio.close_clip(first)
        assert second._builder.done.wait(30)
        assert sorted(second.proxies) == list(range(FRAMES))
        assert studio.proxies.left == budget - sum(map(len, second.proxies.values()))
    finally:
        studio.close()
    assert studio.proxies.left == budget


# -- scrubbing: decoder that follows the pointer, approximate answers while dragging --------------------------
LONG_GOP = {"preset": "medium", "bf": "3", "b-pyramid": "normal", "g": "250"}


def sequential_previews(path, size):
    """Preview pixels of every frame by decoding the whole file in order, every picture decoded."""
    with FrameSeeker(path) as seeker:
        return [seeker.decode_to(i, skip=False).preview_bgr(size) for i in range(seeker.count)]


def test_decode_to_stops_between_packets_and_goes_on_with_the_same_pixels(tmp_path):
    path = make_object_clip(tmp_path / "c.mp4", frames=30, width=64, height=48, x264=LONG_GOP)
    with io.open_video(path) as reader:
        ref = [f.image for f in reader]
    size = (32, 24)
    previews = sequential_previews(path, size)
    with FrameSeeker(path) as seeker:
        assert seeker.keyframes == [0]
        asked = []
        assert seeker.decode_to(25, stop=lambda: len(asked) > 3 or asked.append(1)) is None  # stopped early
        assert 0 <= seeker.position < 25 or seeker.position == -1
        seen = []
        d = seeker.decode_to(25, on_frame=lambda f: seen.append(f.index))  # goes on from there: no seek
        assert seeker.seeks == 0 and d.index == 25 and np.array_equal(d.rgb(), ref[25])
        assert seen == sorted(seen) and all(i < 25 for i in seen)
        # unreferenced pictures before the target are skipped (fewer frames seen than the gap), the target is exact
        assert len(seen) < 25
        assert np.array_equal(d.preview_bgr(size), previews[25])
        for i in (3, 29, 11, 12):  # backward (seek), forward in the GOP (on), each the same as in order
            d = seeker.decode_to(i)
            assert d.index == i and np.array_equal(d.rgb(), ref[i]) and np.array_equal(d.preview_bgr(size), previews[i])
    with FrameSeeker(make_object_clip(tmp_path / "k.mp4", frames=30, width=64, height=48)) as seeker:
        assert seeker.keyframes == [0, 12, 24]
        assert seeker.keyframe_before(11) == 0 and seeker.keyframe_before(12) == 12 and seeker.keyframe_before(29) == 24


def test_scrub_answers_approximate_during_a_drag_and_exact_on_release(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    path = make_object_clip(root / "long.mp4", frames=30, width=W, height=H, x264=LONG_GOP)
    studio = Studio(root, tmp_path / "w", limits=Limits(proxy_bytes=0))  # every frame from the decoder
    try:
        with TestClient(create_app(studio), base_url="http://127.0.0.1") as client:
            clip = open_clip(client, "long.mp4")
            url = f"/api/clips/{clip['id']}/frames/"
            r = client.get(url + "0")
            assert (r.headers["x-frame-index"], r.headers["x-frame-exact"]) == ("0", "1")
            first = r.content
            # dragging: answers come at once; a picture is marked exact only when it is the frame asked for
            for pointer in (8, 16, 24, 27):
                r = client.get(url + f"{pointer}?approx=1")
                assert r.status_code == 200
                shown, exact = int(r.headers["x-frame-index"]), r.headers["x-frame-exact"] == "1"
                assert exact == (shown == pointer) and 0 <= shown < 30
                assert float(r.headers["x-frame-time"]) == pytest.approx(shown / 25, abs=1e-3)
                if shown == 0:
                    assert r.content == first
            # release: the exact frame, the same picture as decoding every frame in order
            r = client.get(url + "27")
            assert (r.headers["x-frame-index"], r.headers["x-frame-exact"]) == ("27", "1")
            expected = sequential_previews(path, tuple(clip["preview"]))[27]
            got = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
            direct = cv2.imdecode(cv2.imencode(".jpg", expected, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], cv2.IMREAD_COLOR)
            assert np.array_equal(got, direct)
            # an approximate request for a frame that is there now is exact
            r = client.get(url + "27?approx=1")
            assert (r.headers["x-frame-index"], r.headers["x-frame-exact"]) == ("27", "1")
            # and the next frame (a step) follows from the decoder standing there
            r = client.get(url + "28")
            assert (r.headers["x-frame-index"], r.headers["x-frame-exact"]) == ("28", "1")
    finally:
        studio.close()


@contextlib.contextmanager
def scrubber_for(path, still: bool = False):
    """A Scrubber (64x48 previews) on ``path``, closed afterwards; ``still``: its decoder never moves, only the
    requests do."""
    from streamfill.studio.scrub import Scrubber

    with FrameSeeker(path) as seeker:
        scrubber = Scrubber(seeker, (64, 48), 80)
        try:
            if still:
                with scrubber._cond:
                    scrubber._plan = lambda: None
            yield scrubber
        finally:
            scrubber.close()


def test_backward_drag_aims_the_decoder_behind_the_pointer(tmp_path):
    from streamfill.studio.scrub import LEAD_S

    path = make_object_clip(tmp_path / "c.mp4", frames=30, width=64, height=48, x264=LONG_GOP)
    with scrubber_for(path) as scrubber:
        now = time.monotonic()
        with scrubber._cond:  # the pointer went from 24 to 20 in 0.1 s: 40 frames/s backward
            scrubber._trail.extend([(now - 0.1, 24), (now, 20)])
            scrubber._pointer = (20, False)
            aim = scrubber._plan()[0]
            assert abs(aim - (20 - 40 * LEAD_S)) <= 1 and aim < 20
            scrubber._trail.clear()
            scrubber._trail.extend([(now - 0.1, 16), (now, 20)])  # forward: the pointer itself
            assert scrubber._plan()[0] == 20
            scrubber._pointer = (20, True)  # released: exactly there
            assert scrubber._plan()[0] == 20


def test_a_request_waiting_for_a_frame_is_answered_when_the_proxy_builder_makes_it(tmp_path):

    path = make_object_clip(tmp_path / "c.mp4", frames=12, width=64, height=48)
    with scrubber_for(path, still=True) as scrubber:  # the frame arrives from the proxy builder only
        t0 = time.monotonic()
        threading.Timer(0.2, lambda: scrubber.add_proxy(5, b"jpeg")).start()
        assert scrubber.request(5, exact=True, timeout=10) == (b"jpeg", 5, True)
        assert time.monotonic() - t0 < 5


def test_the_release_pre_empts_drag_requests(tmp_path, monkeypatch):
    from streamfill.studio import scrub

    monkeypatch.setattr(scrub, "NEAR_WAIT_S", 30.0)  # a drag request near the decoder would wait long
    path = make_object_clip(tmp_path / "c.mp4", frames=30, width=64, height=48, x264=LONG_GOP)
    with scrubber_for(path, still=True) as scrubber:
        scrubber.add_proxy(0, b"k0")
        got = {}

        def ask(name, index, exact):
            got[name] = scrubber.request(index, exact=exact, timeout=20)

        drag = threading.Thread(target=ask, args=("drag", 4, False))
        drag.start()  # 4 frames from the keyframe: waits for the exact picture
        time.sleep(0.2)
        assert drag.is_alive()
        t0 = time.monotonic()
        release = threading.Thread(target=ask, args=("release", 20, True))
        release.start()
        drag.join(timeout=5)  # the release wakes it at once: the nearest picture, marked approximate
        assert not drag.is_alive() and time.monotonic() - t0 < 5 and got["drag"] == (b"k0", 0, False)
        # a drag request sent before the release and arriving after it is answered from memory and does
        # not take the decoder from the exact frame
        gen = scrubber._gen
        assert scrubber.request(3, exact=False) == (b"k0", 0, False)
        assert scrubber._gen == gen and scrubber._pointer == (20, True) and release.is_alive()
        scrubber.add_proxy(20, b"k20")
        release.join(timeout=5)
        assert got["release"] == (b"k20", 20, True)


def test_no_preview_is_made_on_the_way_while_an_exact_frame_is_waited_for(tmp_path):

    path = make_object_clip(tmp_path / "c.mp4", frames=30, width=64, height=48, x264=LONG_GOP)
    with scrubber_for(path, still=True) as scrubber, FrameSeeker(path) as other:
        passed = other.decode_to(0)  # a keyframe: kept during a drag
        scrubber._pointer = (20, True)
        scrubber._emit(passed)
        assert scrubber.have(0) is None
        scrubber._pointer = (20, False)
        scrubber._emit(passed)
        assert scrubber.have(0) is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own CPU priority is a Linux feature")
def test_proxies_are_built_at_low_priority_while_the_user_drags(tmp_path):
    from streamfill.studio.scrub import BACKGROUND_NICE, ProxyBuilder, Scrubber

    path = make_object_clip(tmp_path / "c.mp4", frames=40, width=64, height=48, x264=LONG_GOP)
    with FrameSeeker(path) as seeker:
        scrubber = Scrubber(seeker, (64, 48), 80)
        nice = {}
        builder = None
        try:
            with scrubber._cond:
                scrubber._plan = lambda: None  # the scrub decoder stands still; the page drags all along
                scrubber.add_proxy(0, b"k0")

            def take(size, wake):
                nice.setdefault("builder", os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
                return True

            builder = ProxyBuilder(scrubber, paused=lambda: False, take=take)
            t0 = time.monotonic()
            while len(scrubber.proxies) < 40 and time.monotonic() - t0 < 20:
                scrubber.request(int(time.monotonic() * 100) % 40, exact=False)  # a request every 20 ms
                time.sleep(0.02)
            assert len(scrubber.proxies) == 40 and builder.background  # built during the drag
            assert nice["builder"] == BACKGROUND_NICE
            assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != BACKGROUND_NICE
            with scrubber._cond:  # a release waiting for its exact frame: the builder stands aside
                scrubber._exact_waiting = 1
                assert builder._waiting()
                scrubber._exact_waiting = 0
                assert not builder._waiting()
        finally:
            if builder is not None:
                builder.close()
            scrubber.close()


def test_exact_requests_at_once_on_a_fresh_clip_all_get_a_frame(tmp_path):
    """Eight exact frame requests at once on a freshly opened long-GOP clip: each newer one takes the decoder,
    and the older ones, finding no preview yet, failed at once with "could not be decoded in 60 s"."""
    import concurrent.futures

    path = make_object_clip(tmp_path / "c.mp4", frames=60, width=64, height=48, x264=LONG_GOP)
    with scrubber_for(path) as scrubber:
        wanted = [59, 55, 50, 45, 40, 35, 30, 26]
        with concurrent.futures.ThreadPoolExecutor(len(wanted)) as pool:
            answers = list(pool.map(lambda i: scrubber.request(i, exact=True, timeout=20), wanted))
    assert all(data and 0 <= index < 60 for data, index, _ in answers)
    assert any(exact and index == want for (_, index, exact), want in zip(answers, wanted, strict=True))


def test_a_page_that_goes_away_mid_upload_leaves_no_file_and_no_traceback(studio, tmp_path):
    """A browser closed during an upload: ``ClientDisconnect`` escaped the handler (a traceback in the server's
    log). The partial copy goes, and the request ends quietly."""
    import asyncio

    app = create_app(studio)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/upload", "raw_path": b"/api/upload", "query_string": b"name=cut.mp4", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:7860"), (b"content-length", b"60000")],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 7860)}
    incoming = [{"type": "http.request", "body": b"x" * 30000, "more_body": True}]
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert not [p for p in (tmp_path / "work").rglob("*") if p.is_file() and "cut" in p.name]
