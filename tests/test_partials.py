"""No leftovers (issue 17): partial outputs are removed on every exit streamfill controls, and the ones a
killed process (kill -9) could not remove are removed by the next run into the same folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from media import make_video, write_png

from streamfill.io.encode import host_tag, remove_stale_partials


def _setup(tmp_path: Path, frames: int = 150) -> tuple[Path, Path]:
    src = tmp_path / "in.mp4"
    make_video(src, frames=frames, width=320, height=240)
    m = np.zeros((240, 320), np.uint8)
    m[80:160, 100:220] = 255
    write_png(tmp_path / "m.png", m)
    return src, tmp_path / "m.png"


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


def _start(src: Path, out: Path, mask: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "streamfill", "process", str(src), "-o", str(out), "--mask",
                             str(mask), "--preset", "veryslow", "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not _partials(out.parent) and proc.poll() is None:
        time.sleep(0.02)
    return proc


@pytest.mark.slow
def test_kill_9_leftover_is_removed_by_the_next_run_with_one_line(tmp_path):
    src, mask = _setup(tmp_path)
    out = tmp_path / "out.mp4"
    proc = _start(src, out, mask)
    time.sleep(0.3)
    proc.kill()  # SIGKILL: no handler runs
    proc.communicate(timeout=30)
    left = _partials(tmp_path)
    assert left == [f".out.partial-{proc.pid}-{host_tag()}.mp4"] and not out.exists()
    second = subprocess.run([sys.executable, "-m", "streamfill", "process", str(src), "-o",
                             str(tmp_path / "again.mp4"), "--mask", str(mask), "--preset", "ultrafast", "-q"],
                            stderr=subprocess.PIPE, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert _partials(tmp_path) == [] and (tmp_path / "again.mp4").exists()
    lines = [line for line in second.stderr.splitlines() if "stale partial" in line]
    assert len(lines) == 1 and left[0] in lines[0] and "Traceback" not in second.stderr


@pytest.mark.slow
def test_sighup_removes_the_partial_output(tmp_path):
    src, mask = _setup(tmp_path)
    out = tmp_path / "out.mp4"
    proc = _start(src, out, mask)
    time.sleep(0.3)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert _partials(tmp_path) == [] and not out.exists()


def test_only_partials_of_dead_processes_are_removed(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        names = [f".a.partial-{dead_pid}.mp4", f".b.partial-{alive.pid}.mp4", f".c.partial-{os.getpid()}.mkv",
                 "a.partial-1.mp4", ".notes.txt", f".d.partial-{dead_pid}x.mp4"]
        for name in names:
            (tmp_path / name).write_bytes(b"x")
        seq = tmp_path / f".frames.partial-{dead_pid}"
        seq.mkdir()
        (seq / "000000.png").write_bytes(b"x")
        with caplog.at_level("WARNING", logger="streamfill"):
            removed = remove_stale_partials(tmp_path)
        assert sorted(p.name for p in removed) == sorted([names[0], seq.name])
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])
        assert len(caplog.records) == 1 and "2 stale partial outputs" in caplog.records[0].getMessage()
    finally:
        alive.kill()
        alive.wait()


def _frame(i: int):
    from fractions import Fraction

    from streamfill.types import Frame

    return Frame(image=np.full((16, 24, 3), 40 * i, np.uint8), pts=i, time_base=Fraction(1, 25), index=i)


def test_a_png_sequence_that_cannot_be_written_names_its_folder_and_leaves_nothing(tmp_path):
    """A full disk while writing a PNG sequence: the error names the output (it was a bare OSError), and the partial
    folder goes even though the timestamps file's buffer cannot be written (its close raised inside abort())."""
    import shutil

    from streamfill.errors import OutputError
    from streamfill.io.encode import PngSequenceWriter

    class FullDisk:
        closed = False

        def write(self, _text):
            return None

        def close(self):
            raise OSError(28, "No space left on device")

    out = tmp_path / "seq"
    with pytest.raises(OutputError, match="seq"), PngSequenceWriter(out) as writer:
        writer.write(_frame(0))
        writer._csv.close()
        writer._csv = FullDisk()
        shutil.rmtree(writer._tmp)  # the next picture cannot be written
        writer.write(_frame(1))
    assert list(tmp_path.iterdir()) == []


def test_a_masks_run_whose_output_cannot_be_finished_leaves_no_preview(tmp_path, monkeypatch):
    from streamfill import api
    from streamfill.errors import OutputError
    from streamfill.io import encode

    src, mask = _setup(tmp_path, frames=6)
    finish = encode.VideoWriter.close

    def close(self):
        if self.path.name == "m.mkv":
            self.abort()
            raise OutputError(f"finishing {self.path} failed: no space left")
        finish(self)

    monkeypatch.setattr(encode.VideoWriter, "close", close)
    with pytest.raises(OutputError, match="m.mkv"):
        api.write_masks(src, tmp_path / "m.mkv", mask=mask, preview=tmp_path / "p.mp4")
    assert not (tmp_path / "p.mp4").exists() and _partials(tmp_path) == []
