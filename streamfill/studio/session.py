"""The studio's state, without any web framework: the clips opened (from the root folder or uploaded; each a
``clip.Clip``: its frames, previews, masks and result), their tracks and weak frames, and the background jobs
(tracking, removal) with progress.

Everything heavy goes through ``streamfill.api`` / ``streamfill.io``: the numbers (frame indices, counts)
the page shows are streamfill's own. One job runs at a time (the machine's cores are the limit); others
wait in a queue. Jobs live as long as the server, so a page reload finds them again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import re
import secrets
import shutil
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamfill import api, build, io
from streamfill.build import MaskOptions
from streamfill.config import ENGINES, TEMPORAL_MODES, Config, merge
from streamfill.errors import DecodeError, EngineError, InputError, MaskError, StreamfillError
from streamfill.io.seek import FrameSeeker, decode_png_mask
from streamfill.masks.track import Advice, Keyframe
from streamfill.studio import paths
from streamfill.studio.clip import Clip, Limits, Masks, Proxies, Result, changed, closed
from streamfill.studio.weak import spans, weak_frames

# The tracker's notices, said on the page: there is no --box, preview file nor [track] setting there
# (masks.track.Advice() is the command line's); the orange marks on the timeline are the preview's magenta
# frames.
ADVICE = Advice(lost="paint a correction on a frame there (brush, eraser or box) and track again",
                box="check its mask on that frame, or draw the box tighter",
                too_far="the next keyframe is more than {limit} frames after it, too far to track back to it; "
                        "paint the object on a frame nearer to it")
# Messages from below the studio that name command-line flags, in the page's terms: those settings are the
# studio's own configuration (`streamfill studio --config`), the page has no control for them.
PAGE_WORDS = (("; --salvage keeps", "; [io] salvage = true in the studio's configuration keeps"),
              (" (--salvage)", " ([io] salvage)"),
              ("pass --weights PATH or set [engine] weights", "set [engine] weights in the studio's configuration"))
# Engines the page offers only where the neural engines run on a CUDA GPU: torch.compile on a CPU spends
# minutes (200 s and more) compiling before the first frame, a job that cannot stop meanwhile and holds up
# every other job; TensorRT needs a GPU.
GPU_ENGINES = {"compile": "on a CPU, torch.compile takes minutes before the first frame and the job cannot be "
                          "cancelled meanwhile",
               "tensorrt": "TensorRT runs on NVIDIA GPUs only"}


class Cancelled(StreamfillError):
    """A job stopped because the user pressed Cancel."""


@dataclass
class Job:
    id: str
    kind: str  # "track" | "remove"
    clip: str
    total: int | None
    state: str = "queued"  # queued | running | done | failed | cancelled
    done: int = 0
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    output: str | None = None  # file name of the result (download)
    options: dict = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def snapshot(self) -> dict:
        now = self.finished or time.monotonic()
        elapsed = (now - self.started) if self.started else 0.0
        fps = self.done / elapsed if elapsed > 0 and self.done else 0.0
        eta = None
        if self.state == "running" and self.total and fps > 0:
            eta = max(0.0, (self.total - self.done) / fps)
        percent = 100.0 if self.state == "done" else (100.0 * self.done / self.total if self.total else None)
        return {"id": self.id, "kind": self.kind, "clip": self.clip, "state": self.state, "done": self.done,
                "total": self.total, "percent": None if percent is None else round(min(percent, 100.0), 1),
                "fps": round(fps, 2), "eta": None if eta is None else round(eta, 1),
                "elapsed": round(elapsed, 1), "error": self.error, "warnings": list(self.warnings),
                "output": self.output, "options": dict(self.options),
                # Cancel pressed, the job not stopped yet: it stops at its next frame (temporal quality: the
                # first frame comes only after the look-ahead window)
                "cancelling": self.state == "running" and self.cancel.is_set()}




def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG header, or None when ``data`` is not a PNG (checked before decoding)."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


class Studio:
    """All clips and jobs of one server. ``root``: the folder clips are opened from (resolved); ``work``:
    where uploads, masks and results are written."""

    def __init__(self, root: str | os.PathLike, work: str | os.PathLike, *, limits: Limits | None = None,
                 config: Config | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        if not self.root.is_dir():
            raise InputError(f"--root {root}: not a folder")
        self.work = Path(work)
        try:
            self.work.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--work {work}: cannot make that folder ({exc.strerror or exc})") from None
        self.limits = limits or Limits()
        self.config = config or Config()
        self.clips: dict[str, Clip] = {}
        self.jobs: dict[str, Job] = {}
        self.proxies = Proxies(self.limits.proxy_bytes) if self.limits.proxy_bytes > 0 else None
        # the files this studio wrote for uploads: the only ones closing a clip deletes (--work may lie under or
        # over --root, so a path under work/uploads may be the user's own file)
        self._uploads: set[Path] = set()
        self._gpu: bool | None = None  # do the neural engines run on a CUDA GPU (see engines)
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="streamfill-studio-jobs", daemon=True)
        self._worker.start()

    # -- clips -----------------------------------------------------------------------------------------
    def open_clip(self, path: Path, name: str) -> Clip:
        stamp = _stamp(path)
        with self._lock:
            for clip in self.clips.values():
                # a file changed since (re-exported) is opened anew
                if clip.path == path and clip.stamp == stamp and not clip.retired:
                    return clip
        clip_id = secrets.token_hex(6)
        work = self.work / clip_id
        work.mkdir(parents=True, exist_ok=True)
        try:
            clip = Clip(clip_id, path, name, work, self.limits, self.config, self.proxies)
        except StreamfillError as exc:
            shutil.rmtree(work, ignore_errors=True)
            detail = re.sub(r"\[Errno -?\d+\] ", "", _without_paths(str(exc), {path: name}))
            if isinstance(exc, DecodeError):
                raise InputError(f"{name} is not a video streamfill can read ({detail})") from None
            raise type(exc)(detail) from None
        clip.stamp = stamp
        with self._lock:
            self.clips[clip_id] = clip
            # the clips of the file as it was before: no new use; each is closed once its last request or
            # job ends (a job running on one finishes on the file it opened)
            stale = [c for c in self.clips.values() if c.path == path and c.stamp != stamp and not c.retired]
        for old in stale:
            old.retire()
        return clip

    def clip(self, clip_id: str) -> Clip:
        try:
            return self.clips[clip_id]
        except KeyError:
            raise paths.NotFound("unknown clip (it was closed, or the server was restarted): open it again") from None

    def close_clip(self, clip: Clip) -> None:
        """The user is done with ``clip``: it leaves the studio and is closed (its decoders, its previews' memory
        given back, its masks and results deleted) once the request still using it ends; the studio's copy of an
        uploaded file is deleted (a file under --root never is). Refused while a job of the clip waits or runs:
        a click must not throw a removal away (Cancel does that)."""
        with self._lock:
            job = self._busy(clip)
            if job is not None:
                raise ClipBusy(f"{clip.name} has a {job.kind} job {'waiting' if job.state == 'queued' else 'running'}"
                               ": cancel it or wait for it to end, then close the clip")
            self.clips.pop(clip.id, None)
        clip.retire(by_user=True)
        self.discard_upload(clip.path)  # (only a file the studio wrote for an upload)

    def upload_path(self, name: str) -> Path:
        """A fresh place for an uploaded file (its name kept, made safe)."""
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name or "upload").name)[-100:]
        folder = self.work / "uploads" / secrets.token_hex(6)
        folder.mkdir(parents=True)
        path = folder / (safe.lstrip(".") or "upload")
        with self._lock:
            self._uploads.add(path)
        return path

    def open_upload(self, path: Path) -> Clip:
        """Open an uploaded file; anything that is not a video is refused with one line (and removed)."""
        try:
            if path.stat().st_size == 0:
                raise InputError("the upload is empty")
            return self.open_clip(path, path.name)
        except BaseException:
            self.discard_upload(path)
            raise

    def discard_upload(self, path: Path) -> None:
        """Delete the folder ``upload_path`` made for ``path`` (nothing for any other path)."""
        with self._lock:
            if path not in self._uploads:
                return
            self._uploads.discard(path)
        shutil.rmtree(path.parent, ignore_errors=True)

    # -- keyframes and jobs ----------------------------------------------------------------------------
    def keyframes(self, clip: Clip, items: list) -> list[Keyframe]:
        """Keyframes from the page: ``{"index": K, "box": [x, y, w, h]}`` or ``{"index": K, "mask": PNG bytes}``
        (full resolution, white = remove), or a correction of the tracked mask: ``{"index": K, "base": ID,
        "mask": PNG bytes}`` with ``ID`` from ``Clip.save_base`` and the mask an edit (white = add, black =
        erase, grey = keep the tracked mask). Raises InputError/MaskError with a message for the page."""
        if not isinstance(items, list) or not items:
            raise InputError("nothing to track: paint over the object (or draw a box) on a frame first")
        if len(items) > self.limits.max_keyframes:
            raise InputError(f"too many keyframes ({len(items)}; at most {self.limits.max_keyframes})")
        w, h = clip.info.width, clip.info.height
        keys = []
        seen = set()
        for item in items:
            index = item.get("index") if isinstance(item, dict) else None
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < clip.frames:
                if isinstance(index, int) and not isinstance(index, bool) and clip.decodable is not None:
                    raise InputError(clip.outside(f"keyframe at frame {index}", index))
                raise InputError(f"keyframe at frame {index!r}: not a frame of this clip")
            if index in seen:
                raise InputError(f"two keyframes for frame {index}: keep one")
            seen.add(index)
            if item.get("box") is not None:
                box = item["box"]
                if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)):
                    raise InputError(f"keyframe {index}: the box must be four whole numbers x, y, w, h")
                x, y, bw, bh = box
                # the part inside the frame (a box dragged past the left edge kept its width: it grew)
                x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
                x, y, bw, bh = x0, y0, x1 - x0, y1 - y0
                if bw < 2 or bh < 2:
                    raise InputError(f"keyframe {index}: the box is empty or outside the frame")
                keys.append(Keyframe(index=index, box=(x, y, bw, bh)))
                continue
            data = item.get("mask")
            if not isinstance(data, bytes | bytearray) or not data:
                raise InputError(f"keyframe {index}: no mask")
            if len(data) > self.limits.max_mask_bytes:
                raise MaskError(f"keyframe {index}: the mask is larger than {self.limits.max_mask_bytes} bytes")
            size = png_size(bytes(data))
            if size is None:
                raise MaskError(f"keyframe {index}: the mask is not a PNG picture")
            if size != (w, h):
                raise MaskError(f"keyframe {index}: the mask is {size[0]}x{size[1]} but the clip is {w}x{h}")
            mask = decode_png_mask(bytes(data))
            if item.get("base") is not None:
                base = clip.base_mask(item["base"], index)
                mask = np.where(mask > 191, np.uint8(255), np.where(mask < 64, np.uint8(0), base))
            if not (mask > 127).any():
                raise MaskError(f"keyframe {index}: the mask is empty (nothing painted)")
            keys.append(Keyframe(index=index, mask=np.ascontiguousarray(mask)))
        return keys

    def start_track(self, clip: Clip, keys: list[Keyframe]) -> Job:
        job = self._new_job("track", clip, {"keyframes": sorted(k.index for k in keys)})
        self._queue.put((job, lambda: self._run_track(job, clip, keys)))
        return job

    def start_remove(self, clip: Clip, engine: str, temporal: str) -> Job:
        if engine not in ENGINES:
            raise InputError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
        if engine not in self.engines():
            raise InputError(f"engine {engine} is offered only where the engines run on a CUDA GPU, not here: "
                             f"{GPU_ENGINES[engine]}; choose torch or onnx (the same generator)")
        if temporal not in TEMPORAL_MODES:
            raise InputError(f"unknown temporal mode {temporal!r} (known: {', '.join(TEMPORAL_MODES)})")
        if clip.masks is None:
            raise InputError("no masks yet: draw on a frame and press Track before Remove")
        job = self._new_job("remove", clip, {"engine": engine, "temporal": temporal})
        self._queue.put((job, lambda: self._run_remove(job, clip, engine, temporal)))
        return job

    def engines(self) -> list[str]:
        """The engines the page offers here: ``GPU_ENGINES`` only where the neural engines run on CUDA
        (``[engine] device``, probed once)."""
        if self._gpu is None:
            self._gpu = _runs_on_gpu(self.config)
        return [e for e in ENGINES if self._gpu or e not in GPU_ENGINES]

    def job(self, job_id: str) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise paths.NotFound("unknown job (the server was restarted?)") from None

    def cancel(self, job: Job) -> None:
        job.cancel.set()
        with self._lock:  # (the worker takes a queued job under it: a job is either cancelled or started)
            if job.state == "queued":
                job.state = "cancelled"
                job.finished = time.monotonic()

    def _new_job(self, kind: str, clip: Clip, options: dict) -> Job:
        with self._lock:
            if clip.id not in self.clips:  # closed since the request found it (close_clip)
                raise closed(clip)
            if clip.retired:
                raise changed(clip)
            busy = self._busy(clip)
            if busy is not None:
                raise InputError(f"a {busy.kind} job is already running for this clip: wait or cancel it")
            job = Job(id=secrets.token_hex(6), kind=kind, clip=clip.id, total=clip.frames, options=options)
            self.jobs[job.id] = job
        return job

    def _busy(self, clip: Clip) -> Job | None:
        """The job of ``clip`` waiting or running, if any (call with the lock held)."""
        return next((j for j in self.jobs.values() if j.clip == clip.id and j.state in ("queued", "running")), None)

    def _progress(self, job: Job, clip: Clip):
        def progress(done: int, total: int | None) -> None:
            job.done = done
            if total:  # (a reader counts a damaged clip's frames past the damage: the page's clip ends before)
                job.total = total if clip.decodable is None else min(total, clip.decodable)
            if job.cancel.is_set():
                raise Cancelled("cancelled")
        return progress

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:  # close()
                return
            job, run = item
            with self._lock:  # (close_clip checks for a waiting or running job under it)
                if job.state == "cancelled":
                    continue
                job.state, job.started = "running", time.monotonic()
            if self.proxies is not None:
                self.proxies.idle.clear()
            notes = _JobNotes(job, self.clips.get(job.clip))
            logger = logging.getLogger("streamfill")
            logger.addHandler(notes)
            # the notes said while an engine is built (minutes) are INFO records: let them through as the
            # command line does, also where nothing else lowered the level (a studio served from Python)
            level = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            try:
                with self._using(job):
                    run()
                job.state = "done"
            except Cancelled:
                job.state = "cancelled"
            except StreamfillError as exc:
                job.state, job.error = "failed", _for_page(str(exc), self.clips.get(job.clip))
            except Exception as exc:  # noqa: BLE001 - a job's failure is reported on the page, never lost
                job.state, job.error = "failed", f"internal error ({type(exc).__name__}: {exc})"
            finally:
                logger.removeHandler(notes)
                logger.setLevel(level)
                job.finished = time.monotonic()
                if self.proxies is not None:
                    self.proxies.idle.set()

    def _using(self, job: Job):
        """The job's clip held open while the job runs; a clip whose file changed on disk since it was opened
        (replaced or rewritten: the job would read other frames than the page showed) is refused."""
        clip = self.clips[job.clip]
        if _stamp(clip.path) != clip.stamp:
            raise changed(clip)
        return clip.using()

    def _run_track(self, job: Job, clip: Clip, keys: list[Keyframe]) -> None:
        out = clip.work / f"masks-{job.id}.mkv"
        options = MaskOptions(keyframes=tuple(keys), on_warning=job.warnings.append, advice=ADVICE)
        try:
            result = api.write_masks(clip.path, out, mask=None, mask_options=options, config=self.config,
                                     progress=self._progress(job, clip))
        except MaskError as exc:
            # a keyframe after the damage of a clip read with [io] salvage (painted where a seek still decodes,
            # in a long-GOP clip): the clip ends before it from now on, and the page leaves it out
            frames = getattr(exc, "frames", None)
            late = [k.index for k in keys if frames is not None and k.index >= frames]
            if not late or frames >= clip.frames:
                raise
            clip.cut(frames)
            raise MaskError(f"{clip.outside(f'keyframe at frame {late[0]}', late[0])}; press Track again to track "
                            "without the keyframes after it") from None
        areas, seeker = self._areas(out, job)
        # What the tracker reports, when it does: per-frame confidence, or the stretches where it lost the object.
        weak, signal = weak_frames(areas, [k.index for k in keys], getattr(result, "confidence", None),
                                   getattr(result, "lost", None))
        old = clip.masks
        clip.cut(result.frames)
        clip.masks = Masks(out, seeker, {"job": job.id, "frames": result.frames, "masked": result.masked,
                                         "keyframes": sorted(k.index for k in keys), "weak": weak,
                                         "weak_spans": spans(weak), "signal": signal, "areas": areas})
        job.output = out.name
        self._drop(old)

    def _areas(self, masks: Path, job: Job) -> tuple[list[int], FrameSeeker]:
        """Mask pixels per frame (read back from the mask video) and a seeker on it."""
        frames, _ = io.read_grey_sequence(masks)
        areas = []
        for grey in frames:
            areas.append(int(np.count_nonzero(grey > 127)))
        return areas, FrameSeeker(masks).open()

    def _run_remove(self, job: Job, clip: Clip, engine: str, temporal: str) -> None:
        stem = Path(clip.name).stem
        out = clip.work / f"{stem}-removed-{job.id}.mp4"
        config = merge(self.config, {"engine": {"name": engine}, "temporal": {"mode": temporal}})
        # The engine first: loading it (building it, the first time: minutes) reports no frames, so a Cancel
        # meanwhile is honoured as soon as it is ready, not after the first frame (temporal quality: the
        # look-ahead window later still)
        inpainter = _load_engine(config)
        if job.cancel.is_set():
            raise Cancelled("cancelled")
        result = api.process(clip.path, out, mask=clip.masks.path, config=config, progress=self._progress(job, clip),
                             inpainter=inpainter)
        # what the command line prints as notes: streams the result does not carry, the reader's own notes
        if result.skipped_streams:
            job.warnings.append(f"not copied into the result: {', '.join(result.skipped_streams)}")
        for note in result.notes:
            note = _for_page(note, clip)
            if note not in job.warnings:  # logged as well (_JobNotes)
                job.warnings.append(note)
        old = clip.result
        clip.cut(result.frames)
        # (``out`` stands under its name only once complete: the writer renames it when it closes)
        clip.result = Result(out, FrameSeeker(out).open())
        job.output = out.name
        self._drop(old)

    @staticmethod
    def _drop(old: Masks | Result | None) -> None:
        """Close and delete a replaced mask video or result."""
        if old is not None:
            old.seeker.close()
            with contextlib.suppress(OSError):
                old.path.unlink()

    def file_of(self, job: Job) -> Path:
        """The finished file a job made (result video or mask video), for download."""
        if job.state != "done" or job.output is None:
            raise InputError("this job has no finished output to download")
        path = self.clip(job.clip).work / job.output
        if not path.is_file():
            raise InputError("that output was replaced by a newer run")
        return path

    def state(self) -> dict:
        with self._lock:  # a clip opened or a job started meanwhile: "dictionary changed size during iteration"
            clips, jobs = list(self.clips.values()), list(self.jobs.values())
        engines = self.engines()
        return {"clips": [c.describe() for c in clips],
                "jobs": [j.snapshot() for j in jobs],
                "engines": engines, "temporal_modes": list(TEMPORAL_MODES),
                "default_engine": self.config.engine.name if self.config.engine.name in engines else "auto",
                "default_temporal": self.config.temporal.mode,
                "limits": dataclasses.asdict(self.limits)}

    def stop(self) -> None:
        """The server is stopping (Ctrl+C): jobs are told to stop and the pages' progress streams end, so that
        none holds the shutdown up."""
        self._stop.set()
        for job in list(self.jobs.values()):
            job.cancel.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self.stop()
        if self.proxies is not None:
            self.proxies.idle.set()
        self._queue.put(None)
        self._worker.join(timeout=10)
        for clip in self.clips.values():
            clip.close()


class _JobNotes(logging.Handler):
    """What streamfill logs while a job runs (the notes ``process`` prints on the command line: a 10-bit
    source written 8-bit, audio encoded again, the engine being compiled), kept as the job's warnings for
    the page, without the server's paths. Only the job's own thread: a scrub decoder may log meanwhile."""

    def __init__(self, job: Job, clip: Clip | None) -> None:
        super().__init__(logging.INFO)
        self.job, self.clip, self.thread = job, clip, threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed log call must not fail the job
            return
        text = _for_page(text.removeprefix("note: "), self.clip)
        if text and text not in self.job.warnings:
            self.job.warnings.append(text)


def _runs_on_gpu(config: Config) -> bool:
    """Whether the neural engines run on a CUDA GPU here (``[engine] device``; imports torch)."""
    from streamfill.backends.neural import resolve_device

    try:
        return resolve_device(config.engine.device).startswith("cuda")
    except EngineError:  # device = "cuda" on a machine without one: every neural engine fails, compile too
        return False


def _load_engine(config: Config):
    """The inpainting engine of ``config`` (``build.make_inpainter``: a neural one is loaded, or built)."""
    return build.make_inpainter(config)


def _stamp(path: Path) -> tuple | None:
    """What tells a file from the one that was at ``path`` before (replaced or rewritten)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _for_page(message: str, clip: Clip | None) -> str:
    """A job's message as the page shows it: on one line, the clip's paths called by the clip's name and its
    work folder '(work folder)', command-line flags by the page's terms (``PAGE_WORDS``)."""
    names = {clip.path: clip.name, clip.work: "(work folder)"} if clip else {}
    message = " ".join(_without_paths(message, names).split())
    for cli, page in PAGE_WORDS:
        message = message.replace(cli, page)
    return message


def _without_paths(message: str, names: dict) -> str:
    """``message`` with the server's own paths replaced by what the page calls them (the clip's name)."""
    for path, name in names.items():
        message = message.replace(f"'{path}'", name).replace(str(path), name)
    return message


class ClipBusy(InputError):
    """A clip cannot be closed while a job of it waits or runs (HTTP 409)."""


class UploadTooLarge(InputError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than this studio accepts ({limit / 1024**2:.0f} MB; "
                         "start it with a larger --max-upload)")
