"""End to end in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium): open a
clip, paint over the object, track, scrub, remove, download. Marked ``browser``; CI runs them
(STREAMFILL_BROWSER_TESTS=1 makes a missing browser a failure instead of a skip).

Set STREAMFILL_STUDIO_SCREENSHOT=PATH to keep the screenshot the README shows (docs/images/studio.png)."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
selenium = pytest.importorskip("selenium")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
from studio_helpers import make_object_clip, object_at, running_studio  # noqa: E402

from streamfill import io  # noqa: E402
from streamfill.studio.session import Studio  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
FRAMES, W, H = 24, 640, 360


@pytest.fixture
def browser(tmp_path, request):
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        message = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if os.environ.get("STREAMFILL_BROWSER_TESTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    except BaseException:
        # the test failed: keep what the page looked like (STREAMFILL_FAILURE_DIR, default the test's tmp dir)
        shot = Path(os.environ.get("STREAMFILL_FAILURE_DIR", tmp_path)) / f"{request.node.name}-failure.png"
        driver.save_screenshot(str(shot))
        print(f"screenshot of the failure: {shot}")
        raise
    finally:
        driver.quit()


def wait(driver, condition, what, timeout=30):
    try:
        # an element the page re-rendered while it was looked at (the file list) is looked for again
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d))
    except TimeoutException:
        message = driver.find_element(By.ID, "message").text
        raise AssertionError(f"timed out waiting for {what}; page message: {message!r}") from None


def save_small_png(driver, path, limit=200_000):
    """A screenshot of the page as a PNG under ``limit`` bytes (scaled down and posterised as needed)."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(driver.get_screenshot_as_png(), np.uint8), cv2.IMREAD_COLOR)
    for width, levels in ((1280, 256), (1100, 64), (960, 32), (800, 16)):
        small = cv2.resize(image, (width, round(image.shape[0] * width / image.shape[1])),
                           interpolation=cv2.INTER_AREA)
        step = 256 // levels
        small = (small // step) * step + step // 2 if levels < 256 else small
        ok, data = cv2.imencode(".png", small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if len(data) <= limit:
            break
    Path(path).write_bytes(data.tobytes())


def canvas_point(driver, view, x, y):
    """Offset from the canvas centre (what selenium's actions use) of frame pixel (x, y)."""
    rect = driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", view)
    return round((x / W - 0.5) * rect[0]), round((y / H - 0.5) * rect[1])


def served_mask_pixels(driver, index):
    """Pixels of the server's tracked mask of frame ``index`` (the preview-size PNG the page overlays)."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(`api/clips/${window.studio.state.clip.id}/masks/${arguments[0]}`).then((r) => r.blob())
          .then((b) => createImageBitmap(b)).then((bitmap) => {
            const c = document.createElement("canvas");
            c.width = bitmap.width; c.height = bitmap.height;
            const g = c.getContext("2d");
            g.drawImage(bitmap, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let k = 0; k < d.length; k += 4) if (d[k] > 127) n++;
            done(n);
          }).catch((err) => done(-1));""", index)


def test_draw_track_scrub_remove_download(browser, tmp_path):
    driver = browser
    root = tmp_path / "root"
    root.mkdir()
    make_object_clip(root / "clip.mp4", frames=FRAMES, width=W, height=H)
    studio = Studio(root, tmp_path / "work")
    t0 = time.monotonic()
    try:
        with running_studio(studio) as url:
            driver.get(url)
            # open the clip through the file browser
            driver.find_element(By.ID, "open-btn").click()
            item = wait(driver, lambda d: [li for li in d.find_elements(By.CSS_SELECTOR, "#browser-list li")
                                           if "clip.mp4" in li.text], "the file list")[0]
            item.click()
            wait(driver, lambda d: d.find_element(By.ID, "view").get_attribute("data-index") == "0", "frame 0")
            assert driver.find_element(By.ID, "frame-count").text == str(FRAMES - 1)
            assert driver.find_element(By.ID, "timecode").text == "00:00:00:00"
            # frames before zero (an edit list, a B-frame delay) read as a distance before zero, not "-1:-1:-1:24"
            assert driver.execute_script("return timecode(-0.04, 25)") == "-00:00:00:01"

            # paint over the disc on frame 0 with the mouse
            driver.execute_script("const s = document.getElementById('size'); s.value = 24;"
                                  "s.dispatchEvent(new Event('input'));")
            view = driver.find_element(By.ID, "view")
            cx, cy, r = object_at(0, W, H)
            d = r - 12
            points = [(cx - d + 8, cy - 24), (cx + d - 8, cy - 24), (cx + d, cy - 8), (cx - d, cy - 8),
                      (cx - d, cy + 8), (cx + d, cy + 8), (cx + d - 8, cy + 24), (cx - d + 8, cy + 24)]
            chain = ActionChains(driver, duration=20)
            chain.move_to_element_with_offset(view, *canvas_point(driver, view, *points[0])).click_and_hold()
            for p in points[1:]:
                chain.move_to_element_with_offset(view, *canvas_point(driver, view, *p))
            chain.release().perform()
            # while the picture shown is another frame (scrubbing), a stroke is refused, not put on an unseen frame
            driver.execute_script("window.studio.state.approx = true")
            at = canvas_point(driver, view, cx, cy)
            ActionChains(driver).move_to_element_with_offset(view, *at).click().perform()
            assert "still loading" in driver.find_element(By.ID, "message").text
            assert driver.execute_script("return window.studio.state.keyframes.size") == 1
            driver.execute_script("window.studio.state.approx = false")
            drawn = driver.execute_script("return window.studio.maskCoverage()")
            assert drawn["pixels"] > 3.14 * r * r * 0.7, drawn
            assert "keyframe" in driver.find_element(By.ID, "keyframe-flag").text

            # track, then scrub with the keyboard to frame N and check the overlay follows the disc
            driver.find_element(By.ID, "track").click()
            wait(driver, lambda d: "frames masked" in d.find_element(By.ID, "track-info").text, "tracking", 60)

            # drag the scrubber with the mouse: on release the exact frame under the thumb is shown (not marked
            # approximate), whatever was shown during the drag
            scrubber = driver.find_element(By.ID, "scrubber")
            width = scrubber.size["width"]
            chain = ActionChains(driver, duration=30)
            chain.move_to_element_with_offset(scrubber, -width // 2 + 4, 0).click_and_hold()
            for x in (-width // 4, 0, width // 8, width // 5):
                chain.move_to_element_with_offset(scrubber, x, 0)
            chain.release().perform()
            released = int(scrubber.get_attribute("value"))
            assert released > FRAMES // 2
            wait(driver, lambda d: d.find_element(By.ID, "view").get_attribute("data-index") == str(released)
                 and d.find_element(By.ID, "view").get_attribute("data-exact") == "1", f"exact frame {released}")
            assert driver.find_element(By.ID, "approx-flag").text == ""
            assert driver.find_element(By.ID, "frame-number").get_attribute("value") == str(released)
            driver.execute_script("window.studio.show(0)")
            wait(driver, lambda d: d.find_element(By.ID, "view").get_attribute("data-index") == "0", "frame 0 again")
            n = 15
            body = driver.find_element(By.TAG_NAME, "body")
            for _ in range(n):
                body.send_keys(Keys.ARROW_RIGHT)
            wait(driver, lambda d: d.find_element(By.ID, "view").get_attribute("data-index") == str(n), f"frame {n}")
            assert driver.find_element(By.ID, "frame-number").get_attribute("value") == str(n)
            assert driver.find_element(By.ID, "timecode").text == f"00:00:00:{n:02d}"
            cov = driver.execute_script("return window.studio.maskCoverage()")
            ex, ey, _ = object_at(n, W, H)
            assert cov["index"] == n and cov["box"] is not None, cov
            bx, by, bw, bh = cov["box"]
            assert abs(bx + bw / 2 - ex) < 12 and abs(by + bh / 2 - ey) < 12, (cov, ex, ey)
            assert 0.6 < cov["pixels"] / (3.14 * r * r) < 1.8, cov
            assert driver.find_element(By.ID, "masks-link").is_displayed()

            # a correction: the eraser over the tracked mask of frame n (not a keyframe) removes part of that mask,
            # and the frame becomes a keyframe whose base is the tracked mask it was painted on
            tracked = served_mask_pixels(driver, n)
            body.send_keys("e")
            chain = ActionChains(driver, duration=20)
            chain.move_to_element_with_offset(view, *canvas_point(driver, view, ex - r, ey)).click_and_hold()
            chain.move_to_element_with_offset(view, *canvas_point(driver, view, ex, ey)).release().perform()
            body.send_keys("b")
            assert "correction" in driver.find_element(By.ID, "keyframe-flag").text
            erased = driver.execute_script("return window.studio.maskCoverage()")
            assert erased["pixels"] < 0.9 * cov["pixels"], (erased, cov)
            base = f"return (window.studio.state.keyframes.get({n}) || {{}}).base || null"
            wait(driver, lambda d: d.execute_script(base) not in (None, "pending"), "the base kept by the server")
            first = driver.execute_script("return window.studio.state.job.id")
            driver.find_element(By.ID, "track").click()
            wait(driver, lambda d: d.execute_script("return window.studio.state.job.id") != first
                 and d.find_element(By.TAG_NAME, "body").get_attribute("data-job") == "done", "the re-track", 60)
            corrected = served_mask_pixels(driver, n)
            assert 0 < corrected < 0.9 * tracked, (corrected, tracked)

            # a click (no drag) with the box tool on a tracked frame makes no keyframe: it is no box, and it
            # does not pin the tracked mask there as a correction
            body.send_keys(Keys.ARROW_RIGHT)
            body.send_keys(Keys.ARROW_RIGHT)
            wait(driver, lambda d: d.execute_script("return window.studio.maskCoverage()")["index"] == n + 2
                 and d.execute_script("return window.studio.maskCoverage()")["pixels"] > 0
                 and d.find_element(By.ID, "view").get_attribute("data-exact") == "1", f"frame {n + 2} tracked")
            body.send_keys("x")
            ex2, ey2, _ = object_at(n + 2, W, H)
            ActionChains(driver).move_to_element_with_offset(view, *canvas_point(driver, view, ex2, ey2)).click() \
                .perform()
            time.sleep(0.3)
            assert driver.execute_script(f"return window.studio.state.keyframes.has({n + 2})") is False
            assert "keyframe" not in driver.find_element(By.ID, "keyframe-flag").text
            body.send_keys("b")
            body.send_keys(Keys.ARROW_LEFT)
            body.send_keys(Keys.ARROW_LEFT)
            wait(driver, lambda d: d.find_element(By.ID, "view").get_attribute("data-index") == str(n), f"frame {n}")

            # remove (per-frame telea: quick), reload the page while it runs, wait for 100 %
            Select(driver.find_element(By.ID, "engine")).select_by_value("telea")
            Select(driver.find_element(By.ID, "temporal")).select_by_value("off")
            driver.find_element(By.ID, "remove").click()
            wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-job")
                 in ("running", "done"), "the removal to start")
            driver.refresh()
            wait(driver, lambda d: d.find_element(By.ID, "download").is_displayed(), "the removal", 90)
            assert driver.find_element(By.ID, "progress").get_attribute("value") in ("100", "100.0") or \
                driver.find_element(By.ID, "job").get_attribute("hidden") is not None
            compare = driver.find_element(By.ID, "compare")
            if not compare.is_selected():
                compare.click()
            wait(driver, lambda d: d.execute_script("return window.studio.state.resultImage !== null"), "the result")
            wait(driver, lambda d: d.find_element(By.ID, "view").get_attribute("data-index") == str(n),
                 "the frame shown before the reload")
            # dragging the before/after wipe moves the wipe and changes no keyframe: the track is not stale
            view = driver.find_element(By.ID, "view")
            chain = ActionChains(driver, duration=20)
            chain.move_to_element_with_offset(view, *canvas_point(driver, view, W // 4, H // 2)).click_and_hold()
            chain.move_to_element_with_offset(view, *canvas_point(driver, view, W // 3, H // 2)).release().perform()
            assert abs(driver.execute_script("return window.studio.state.wipe") - 1 / 3) < 0.05
            assert "changed since" not in driver.find_element(By.ID, "track-info").text

            # download the result and the masks the links point at; every frame is there
            href = driver.find_element(By.ID, "download").get_attribute("href")
            out = tmp_path / "result.mp4"
            with urllib.request.urlopen(href, timeout=30) as response, open(out, "wb") as fh:
                shutil.copyfileobj(response, fh)
            with io.open_video(out) as reader:
                assert sum(1 for _ in reader) == FRAMES
            masks_href = driver.find_element(By.ID, "masks-link").get_attribute("href")
            masks = tmp_path / "masks.mkv"
            with urllib.request.urlopen(masks_href, timeout=30) as response, open(masks, "wb") as fh:
                shutil.copyfileobj(response, fh)
            with io.open_video(masks) as reader:
                assert sum(1 for _ in reader) == FRAMES

            keep = os.environ.get("STREAMFILL_STUDIO_SCREENSHOT")
            if keep:  # the README's picture: the wipe across the disc at frame 12, half before, half after
                cx = object_at(12, W, H)[0]
                driver.execute_script(f"window.studio.state.wipe = {cx / W}; window.studio.show(12);")
                wait(driver, lambda d: d.find_element(By.ID, "view").get_attribute("data-index") == "12", "frame 12")
                save_small_png(driver, keep)

            # open the same clip again (as after looking at another one): its result is still offered
            driver.find_element(By.ID, "open-btn").click()
            wait(driver, lambda d: [li for li in d.find_elements(By.CSS_SELECTOR, "#browser-list li")
                                    if "clip.mp4" in li.text], "the file list")[0].click()
            wait(driver, lambda d: d.find_element(By.ID, "download").is_displayed()
                 and d.find_element(By.ID, "download").get_attribute("href") == href, "the result's link again")
    finally:
        studio.close()
    assert time.monotonic() - t0 < 120, "the whole flow must take under 2 minutes"


def test_bad_input_shows_one_message(browser, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.mp4").write_bytes(b"this is not a video at all")
    studio = Studio(root, tmp_path / "work")
    try:
        with running_studio(studio) as url:
            browser.get(url)
            browser.find_element(By.ID, "open-btn").click()  # the file browser opens and closes
            wait(browser, lambda d: d.find_element(By.ID, "browser").get_attribute("open") is not None, "the dialog")
            browser.find_element(By.CSS_SELECTOR, "#browser button[value=cancel]").click()
            wait(browser, lambda d: d.find_element(By.ID, "browser").get_attribute("open") is None, "it to close")
            browser.find_element(By.ID, "open-btn").click()
            wait(browser, lambda d: [li for li in d.find_elements(By.CSS_SELECTOR, "#browser-list li")
                                     if "notes.mp4" in li.text], "the file list")[0].click()
            message = wait(browser, lambda d: d.find_element(By.ID, "message").text if
                           d.find_element(By.ID, "message").is_displayed() and "opening" not in
                           d.find_element(By.ID, "message").text else None, "an error message")
            assert "notes.mp4" in message and "\n" not in message
            # Track with nothing drawn: a clear message too (no clip: "open a clip first")
            browser.find_element(By.ID, "track").click()
            wait(browser, lambda d: "open a clip first" in d.find_element(By.ID, "message").text, "a message")
            # an upload that is not a video
            bad = tmp_path / "holiday.mp4"
            bad.write_bytes(b"\x00\x01 certainly not a video" * 100)
            browser.find_element(By.ID, "upload").send_keys(str(bad))
            wait(browser, lambda d: d.find_element(By.ID, "message").text.startswith("holiday.mp4 is not a video"),
                 "the upload's message")
            # an upload that is a video opens
            make_object_clip(tmp_path / "mine.mp4", frames=3, width=160, height=96)
            browser.find_element(By.ID, "upload").send_keys(str(tmp_path / "mine.mp4"))
            wait(browser, lambda d: d.find_element(By.ID, "clip-name").text == "mine.mp4", "the uploaded clip")
            wait(browser, lambda d: not d.find_element(By.ID, "message").is_displayed(), "the message to clear")
    finally:
        studio.close()


def test_token_url_works_and_other_pages_are_refused(browser, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    make_object_clip(root / "clip.mp4", frames=4, width=160, height=96)
    studio = Studio(root, tmp_path / "work")
    try:
        with running_studio(studio, token="t0ken-for-test") as url:
            browser.get(url)  # no token: refused
            assert "missing or wrong token" in browser.find_element(By.TAG_NAME, "body").text
            browser.get(url + "?token=t0ken-for-test")  # the printed URL: the page keeps the token in a cookie
            wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#engine option")) > 0, "the engines")
            browser.find_element(By.ID, "open-btn").click()
            wait(browser, lambda d: [li for li in d.find_elements(By.CSS_SELECTOR, "#browser-list li")
                                     if "clip.mp4" in li.text], "the file list")[0].click()
            wait(browser, lambda d: d.find_element(By.ID, "view").get_attribute("data-index") == "0", "frame 0")
    finally:
        studio.close()


def test_another_clip_opened_shows_its_own_track_and_job(browser, tmp_path, monkeypatch):
    """Opening clip B while clip A was tracked and its removal ran kept A's "24/24 frames masked" under B's
    Track and A's job box ("Removing 0/24 frames", Cancel) on B, with B's Track and Remove disabled until A's
    job ended; opening A again must show its job again. After a reload the engine and temporal mode shown
    were the defaults, not those of the removal running."""
    import threading

    from streamfill.studio import session

    root = tmp_path / "root"
    root.mkdir()
    make_object_clip(root / "a.mp4", frames=FRAMES, width=W, height=H)
    make_object_clip(root / "b.mp4", frames=3, width=160, height=96)
    studio = Studio(root, tmp_path / "work")
    release = threading.Event()

    def waiting_process(input, output, *, mask, config, progress, inpainter=None):
        release.wait(30)
        progress(0, FRAMES)

    monkeypatch.setattr(session.api, "process", waiting_process)

    def open_clip(name):
        browser.execute_script("document.getElementById('view').dataset.index = '-1'")  # set again once open
        browser.find_element(By.ID, "open-btn").click()
        wait(browser, lambda d: [li for li in d.find_elements(By.CSS_SELECTOR, "#browser-list li")
                                 if name in li.text], "the file list")[0].click()
        wait(browser, lambda d: d.find_element(By.ID, "clip-name").text == name
             and d.find_element(By.ID, "view").get_attribute("data-index") == "0", name)

    try:
        clip = studio.open_clip(root / "a.mp4", "a.mp4")
        job = studio.start_track(clip, studio.keyframes(clip, [{"index": 0, "box": [150, 130, 90, 90]}]))
        deadline = time.monotonic() + 30
        while job.state != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
        with running_studio(studio) as url:
            browser.get(url)
            open_clip("a.mp4")
            assert "frames masked" in browser.find_element(By.ID, "track-info").text
            Select(browser.find_element(By.ID, "temporal")).select_by_value("off")
            browser.find_element(By.ID, "remove").click()
            wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-job") == "running",
                 "the removal to run")
            open_clip("b.mp4")
            assert browser.find_element(By.ID, "track-info").text == ""
            assert not browser.find_element(By.ID, "job").is_displayed()
            assert browser.find_element(By.ID, "track").is_enabled()
            open_clip("a.mp4")
            wait(browser, lambda d: "frames masked" in d.find_element(By.ID, "track-info").text, "a's track")
            wait(browser, lambda d: d.find_element(By.ID, "job").is_displayed()
                 and d.find_element(By.ID, "cancel").is_displayed(), "a's job again")
            assert not browser.find_element(By.ID, "remove").is_enabled()
            # after a reload, the options shown are the running removal's, not the defaults
            browser.refresh()
            wait(browser, lambda d: d.find_element(By.ID, "cancel").is_displayed(), "a's job after the reload")
            assert Select(browser.find_element(By.ID, "temporal")).first_selected_option.text == "off"
    finally:
        release.set()
        studio.close()


def test_close_is_refused_while_a_job_runs_then_leaves_no_clip(browser, tmp_path, monkeypatch):
    """The Close button beside the clip's name (DELETE /api/clips/ID): while a removal of the clip runs the
    server refuses it, and the page keeps the clip and says why; once the job ended, the clip leaves the
    server and the page (no clip shown, nothing kept for a reload), and the file can be opened again."""
    import threading

    from streamfill.studio import session

    root = tmp_path / "root"
    root.mkdir()
    make_object_clip(root / "clip.mp4", frames=4, width=160, height=96)
    studio = Studio(root, tmp_path / "work")
    release = threading.Event()

    def waiting_process(input, output, *, mask, config, progress, inpainter=None):
        release.wait(30)
        progress(0, 4)  # (cancelled by then: the job stops here)

    monkeypatch.setattr(session.api, "process", waiting_process)

    def open_clip():
        browser.execute_script("document.getElementById('view').dataset.index = '-1'")  # set again once open
        browser.find_element(By.ID, "open-btn").click()
        wait(browser, lambda d: [li for li in d.find_elements(By.CSS_SELECTOR, "#browser-list li")
                                 if "clip.mp4" in li.text], "the file list")[0].click()
        wait(browser, lambda d: d.find_element(By.ID, "clip-name").text == "clip.mp4"
             and d.find_element(By.ID, "view").get_attribute("data-index") == "0", "clip.mp4")
        return browser.execute_script("return window.studio.state.clip.id")

    try:
        with running_studio(studio) as url:
            browser.get(url)
            wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#engine option")) > 0, "the engines")
            assert not browser.find_element(By.ID, "close-btn").is_displayed()
            cid = open_clip()
            assert browser.find_element(By.ID, "close-btn").is_displayed()
            clip = studio.clips[cid]
            job = studio.start_track(clip, studio.keyframes(clip, [{"index": 0, "box": [40, 20, 60, 50]}]))
            deadline = time.monotonic() + 30
            while job.state != "done" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert job.state == "done", job
            Select(browser.find_element(By.ID, "engine")).select_by_value("telea")
            Select(browser.find_element(By.ID, "temporal")).select_by_value("off")
            browser.find_element(By.ID, "remove").click()
            wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-job") == "running",
                 "the removal to run")

            browser.find_element(By.ID, "close-btn").click()
            wait(browser, lambda d: "clip.mp4 has a remove job running: cancel it or wait for it to end, then close "
                 "the clip" in d.find_element(By.ID, "message").text, "the refusal")
            assert browser.find_element(By.ID, "clip-name").text == "clip.mp4" and cid in studio.clips
            assert browser.find_element(By.ID, "close-btn").is_displayed()

            studio.cancel(next(j for j in studio.jobs.values() if j.kind == "remove"))  # the removal ends
            release.set()
            wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-job") == "cancelled",
                 "the removal to stop")

            browser.find_element(By.ID, "close-btn").click()
            wait(browser, lambda d: d.find_element(By.ID, "clip-name").text == "no clip", "the clip to close")
            assert cid not in studio.clips
            assert not browser.find_element(By.ID, "close-btn").is_displayed()
            assert not browser.find_element(By.ID, "message").is_displayed()
            assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "empty"
            assert browser.execute_script("return localStorage.getItem('streamfill.studio.clip')") is None

            again = open_clip()
            assert again != cid and again in studio.clips
            assert browser.find_element(By.ID, "close-btn").is_displayed()
    finally:
        release.set()
        studio.close()


def test_a_frame_of_the_clip_left_is_not_shown_on_the_clip_opened(browser, tmp_path, monkeypatch):
    """A frame of clip A still loading when clip B was opened (a slow first frame, a click far into a long
    GOP) was drawn on B's canvas as B's frame 0 when both were at the same frame number, and stayed there
    (marked exact): a stroke then went onto B's frame 0 over A's picture."""
    import threading

    from streamfill.studio import session

    root = tmp_path / "root"
    root.mkdir()
    make_object_clip(root / "a.mp4", frames=4, width=W, height=H)
    make_object_clip(root / "b.mp4", frames=3, width=160, height=96)
    studio = Studio(root, tmp_path / "work")
    slow = threading.Event()
    scrub = session.Clip.scrub

    def slow_scrub(self, index, *, exact):
        if self.name == "a.mp4" and slow.is_set():
            time.sleep(2)
        return scrub(self, index, exact=exact)

    monkeypatch.setattr(session.Clip, "scrub", slow_scrub)
    try:
        with running_studio(studio) as url:
            browser.get(url)

            def open_clip(name):
                browser.find_element(By.ID, "open-btn").click()
                wait(browser, lambda d: [li for li in d.find_elements(By.CSS_SELECTOR, "#browser-list li")
                                         if name in li.text], "the file list")[0].click()

            open_clip("a.mp4")
            wait(browser, lambda d: d.find_element(By.ID, "view").get_attribute("data-index") == "0", "a's frame 0")
            slow.set()  # a's frame 0 asked for again, slowly; b opened meanwhile
            browser.execute_script("window.studio.state.shownIndex = -1; window.studio.show(0)")
            open_clip("b.mp4")
            time.sleep(3)  # a's frame has come back meanwhile
            assert browser.find_element(By.ID, "clip-name").text == "b.mp4"
            wait(browser, lambda d: d.execute_script("return window.studio.state.frameImage.width") == 160,
                 "b's own frame 0", timeout=5)
    finally:
        studio.close()


def test_a_damaged_clip_is_shown_as_long_as_the_frames_that_decode(browser, tmp_path):
    """With [io] salvage, a damaged clip tracked to its 12 decodable frames kept a scrubber of 20 frames, and
    frames 12-19 failed with 'frame 15 is outside the clip (0-11)'; a keyframe past the damage failed every Track.
    The page now ends the clip there and says once why; the keyframe past it is left out of the next Track."""
    from test_studio import _corrupt_clip

    from streamfill.config import Config, merge

    root = tmp_path / "root"
    root.mkdir()
    _corrupt_clip(root / "damaged.mkv")
    studio = Studio(root, tmp_path / "work", config=merge(Config(), {"io": {"salvage": True}}))
    try:
        with running_studio(studio) as url:
            browser.get(url)
            browser.find_element(By.ID, "open-btn").click()
            wait(browser, lambda d: [li for li in d.find_elements(By.CSS_SELECTOR, "#browser-list li")
                                     if "damaged.mkv" in li.text], "the file list")[0].click()
            wait(browser, lambda d: d.find_element(By.ID, "view").get_attribute("data-index") == "0", "frame 0")
            assert browser.find_element(By.ID, "scrubber").get_attribute("max") == "19"
            # a keyframe past the damage (painted where a seek still decodes, in a long-GOP clip) with one before
            browser.execute_script("for (const i of [0, 15]) window.studio.state.keyframes.set(i, "
                                   "{strokes: [], box: [8, 8, 20, 20]})")
            for state in ("failed", "done"):  # the first Track finds the damage, the next leaves 15 out
                browser.find_element(By.ID, "track").click()
                wait(browser, lambda d, s=state: d.find_element(By.TAG_NAME, "body").get_attribute("data-job") == s,
                     f"the track: {state}")
                kept = studio.clips[browser.execute_script("return window.studio.state.clip.id")].frames
                assert 0 < kept < 15
                last = str(kept - 1)
                wait(browser, lambda d, n=last: d.find_element(By.ID, "scrubber").get_attribute("max") == n,
                     "the scrubber to end at the damage")
                assert browser.find_element(By.ID, "frame-count").text == str(kept - 1)
                assert f"damaged after frame {kept - 1}" in browser.find_element(By.ID, "clip-meta").text
                if state == "failed":
                    message = browser.find_element(By.ID, "message").text
                    assert (f"damaged.mkv is damaged after frame {kept - 1}: frames {kept}-19 cannot be decoded"
                            in message and "keyframe at frame 15 is after the damage" in message)
                browser.execute_script("document.body.dataset.job = ''")
    finally:
        studio.close()
