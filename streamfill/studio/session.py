"""The studio's state, without any web framework: clips opened (from the root folder or uploaded), their
preview frames, tracked masks and weak frames, and the background jobs (tracking, removal) with progress.

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
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamfill import api, build, io
from streamfill.build import MaskOptions
from streamfill.config import ENGINES, TEMPORAL_MODES, Config, merge
from streamfill.errors import DecodeError, EngineError, InputError, MaskError, StreamfillError
from streamfill.io.seek import FrameSeeker, decode_png_mask, encode_png, fit, preview_jpeg
from streamfill.masks.track import Advice, Keyframe
from streamfill.studio import paths
from streamfill.studio.scrub import ProxyBuilder, Scrubber
from streamfill.studio.weak import spans, weak_frames

PREVIEW_MAX = (1280, 720)  # the page shows frames at most this size; masks stay at full resolution
PROXY_QUALITY = 80
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


@dataclass(frozen=True)
class Limits:
    """Input limits: upload size (bytes), largest frame (pixels, 8K UHD by default), mask upload size."""

    max_upload: int = 2 * 1024**3
    max_pixels: int = 7680 * 4320
    max_mask_bytes: int = 16 * 1024**2
    max_keyframes: int = 200
    proxy_bytes: int = 768 * 1024**2  # preview JPEGs decoded ahead for scrubbing, all clips together


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


class Clip:
    """One opened video: random access to its frames, a small cache of preview JPEGs, its masks and result."""

    def __init__(self, id: str, path: Path, name: str, work: Path, limits: Limits, config: Config,
                 proxies: Proxies | None = None) -> None:
        self.id, self.path, self.name, self.work = id, path, name, work
        self.seeker = FrameSeeker(path, threads=config.io.decode_threads).open()
        info = self.seeker.info
        if info.width * info.height > limits.max_pixels:
            self.seeker.close()
            raise InputError(f"{name}: frames of {info.width}x{info.height} are larger than this studio "
                             f"accepts ({limits.max_pixels} pixels)")
        self.info = info
        self.preview = fit(info.width, info.height, *PREVIEW_MAX)
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.masks: Path | None = None  # lossless mask video of the last tracking
        self.mask_seeker: FrameSeeker | None = None
        self.track: dict | None = None  # areas, weak frames, keyframes
        self.track_lock = threading.Lock()  # masks, mask_seeker and track change together
        self.result: Path | None = None
        self.result_seeker: FrameSeeker | None = None
        # the frames a job could decode, when fewer than the file's index holds (a damaged clip read with
        # [io] salvage: the masks and the result end there); the page's clip then ends there too
        self.decodable: int | None = None
        self.stamp: tuple | None = None  # the file's identity when opened (Studio.open_clip)
        # The source's previews: a decoder that follows the page's pointer, and every frame's preview JPEG
        # decoded ahead by a background thread (nearest the playhead first), so that a jump anywhere is
        # soon answered from memory (a seek in a long-GOP file decodes up to a whole GOP).
        self.scrubber = Scrubber(self.seeker, self.preview, PROXY_QUALITY)
        self.proxies = self.scrubber.proxies
        self._proxy_pool = proxies
        self._builder = None
        if proxies is not None:
            self._builder = ProxyBuilder(self.scrubber, paused=lambda: not proxies.idle.is_set(),
                                         take=proxies.take)
        # Retired (its file changed on disk and was opened anew, Studio.open_clip): no new use; closed (its
        # decoders and proxy thread stopped, its proxies' memory given back) once the last request or job
        # using it ends
        self.retired = False
        self._users = 0
        self._closed = False
        self._use_lock = threading.Lock()

    # -- frames ----------------------------------------------------------------------------------------
    def describe(self) -> dict:
        i = self.info
        fps = float(i.fps) if i.fps else None
        return {"id": self.id, "name": self.name, "width": i.width, "height": i.height, "frames": self.frames,
                "damaged": self.damaged(),
                "fps": fps, "fps_fraction": [i.fps.numerator, i.fps.denominator] if i.fps else None,
                "duration": i.duration, "codec": i.codec, "preview": list(self.preview),
                "track": self.track, "result": self.result.name if self.result else None,
                "has_masks": self.masks is not None}

    def _cached(self, key: tuple, make: Callable[[], bytes], size: int = 256) -> bytes:
        with self._cache_lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                return data
        data = make()
        with self._cache_lock:
            self._cache[key] = data
            while len(self._cache) > size:
                self._cache.popitem(last=False)
        return data

    def frame_jpeg(self, index: int, which: str = "source") -> tuple[bytes, float]:
        """Preview JPEG of frame ``index`` of the source or the result, and its time (s, from its pts)."""
        if which == "source":
            data, _, _ = self.scrub(index, exact=True)
            return data, self.seeker.time_of(index)
        with self.using():
            seeker = self.result_seeker
            if seeker is None:
                raise InputError("there is no result yet: run Remove first")
            self._check_index(index)
            data = self._cached((which, index, str(self.result)),
                                lambda: preview_jpeg(seeker.decode_to(index), self.preview, quality=PROXY_QUALITY))
        return data, self.seeker.time_of(index)

    def scrub(self, index: int, *, exact: bool) -> tuple[bytes, int, bool]:
        """Preview JPEG of a source frame while scrubbing: (JPEG, the frame it shows, is it frame ``index``).
        ``exact=False`` (the pointer during a drag) answers at once with the nearest frame there is;
        ``exact=True`` waits for frame ``index`` itself (see ``streamfill.studio.scrub``)."""
        self._check_index(index)
        with self.using():
            return self.scrubber.request(index, exact=exact)

    def mask_png(self, index: int) -> bytes:
        """The tracked mask of frame ``index`` at preview size (grey PNG, 255 = remove)."""
        if self.mask_seeker is None:
            raise InputError("no masks yet: draw on a frame and press Track")
        self._check_index(index)
        with self.using():
            return self._cached(("mask", index, str(self.masks)),
                                lambda: encode_png(self.mask_seeker.frame(index).image.max(axis=2),
                                                   size=self.preview))

    # -- corrections: a keyframe drawn over the tracked mask ---------------------------------------------
    def save_base(self, index: int) -> str:
        """Keep the tracked mask of frame ``index`` (full resolution) as the base of a correction painted on
        that frame: the keyframe is then this mask with the page's strokes added and erased (``base_mask``).
        Kept in the clip's work folder, so a later Track (which replaces the masks) does not change it.
        Returns its id."""
        self._check_index(index)
        with self.using(), self.track_lock:  # a Track ending now swaps the masks: mask and job name from one run
            track, seeker = self.track, self.mask_seeker
            if track is None or seeker is None:
                raise InputError("no tracked mask on this frame to correct: press Track first")
            base_id = f"{index}-{track['job']}"
            path = self.work / "bases" / f"{base_id}.png"
            grey = None if path.is_file() else seeker.frame(index).image.max(axis=2)
        if grey is not None:
            mask = np.where(grey > 127, np.uint8(255), np.uint8(0))
            path.parent.mkdir(parents=True, exist_ok=True)
            # a name of its own: the page may ask twice at once (an Undo and a new stroke, a second tab)
            partial = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial")
            partial.write_bytes(encode_png(mask))
            os.replace(partial, path)
        return base_id

    def base_mask(self, base_id: object, index: int) -> np.ndarray:
        """The tracked mask kept by ``save_base`` for a correction on frame ``index`` (H x W uint8, 255 = object)."""
        if not isinstance(base_id, str) or not _BASE_ID.fullmatch(base_id) or int(base_id.split("-")[0]) != index:
            raise InputError(f"keyframe {index}: {base_id!r} is not a tracked mask of this frame")
        path = self.work / "bases" / f"{base_id}.png"
        if not path.is_file():
            raise InputError(f"keyframe {index}: the tracked mask this correction was painted on is gone (the "
                             f"server was restarted?): clear frame {index} and paint the object again")
        return decode_png_mask(path.read_bytes())

    @property
    def frames(self) -> int:
        """The clip's length as the page shows it: the frames the file's index holds, or fewer once a job
        found it cannot be decoded past a point (``decodable``)."""
        return self.seeker.count if self.decodable is None else self.decodable

    def cut(self, frames: int) -> None:
        """A job read only the first ``frames`` frames (the rest could not be decoded: [io] salvage)."""
        if 0 < frames < self.frames:
            self.decodable = frames

    def damaged(self) -> str | None:
        """What the page says, once, of a clip that cannot be decoded to its end (None when it can)."""
        if self.decodable is None:
            return None
        n = self.decodable
        return (f"{self.name} is damaged after frame {n - 1}: frames {n}-{self.seeker.count - 1} cannot be decoded, "
                f"so they cannot be shown, tracked or removed (the clip is used as its first {n} frames)")

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.frames:
            raise InputError(self.outside(f"frame {index}", index))

    def outside(self, what: str, index: object) -> str:
        """'``what`` is outside the clip', said in the page's terms (past the damage of a damaged clip)."""
        if self.decodable is not None and isinstance(index, int) and self.decodable <= index < self.seeker.count:
            return f"{what} is after the damage: {self.name} cannot be decoded after frame {self.decodable - 1}"
        return f"{what} is outside the clip (0-{self.frames - 1})"

    # -- lifetime: a clip whose file changed is retired, and closed when nothing uses it any more ----------
    @contextlib.contextmanager
    def using(self):
        """Hold the clip open for a request or a job; refused once it is retired."""
        with self._use_lock:
            if self.retired:
                raise _changed(self)
            self._users += 1
        try:
            yield self
        finally:
            with self._use_lock:
                self._users -= 1
                last = self.retired and self._users == 0
            if last:
                self.close()

    def retire(self) -> None:
        """No new use from now on; closed now, or when the request or job still using it ends."""
        with self._use_lock:
            self.retired = True
            idle = self._users == 0
        if idle:
            self.close()

    def close(self) -> None:
        with self._use_lock:
            if self._closed:
                return
            self._closed = True
        self.scrubber.close()
        if self._builder is not None:
            self._builder.close()
        if self._proxy_pool is not None:
            self._proxy_pool.give(sum(len(d) for d in self.proxies.values()))
        self.proxies.clear()  # a retired clip stays listed (its jobs, results): its previews are not kept
        with self._cache_lock:
            self._cache.clear()
        for s in (self.seeker, self.mask_seeker, self.result_seeker):
            if s is not None:
                s.close()


class Proxies:
    """The memory budget shared by all clips' scrub proxies, and the gate that pauses them while a job runs."""

    def __init__(self, budget: int) -> None:
        self.left = budget
        self.idle = threading.Event()
        self.idle.set()
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self.left or self.left <= 0:
                return False
            self.left -= size
            return True

    def give(self, size: int) -> None:
        with self._lock:
            self.left += size


_BASE_ID = re.compile(r"[0-9]{1,9}-[0-9a-f]{12}")  # frame index - the track job whose mask it is


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
            raise paths.NotFound("unknown clip (the server was restarted?): open it again") from None

    def upload_path(self, name: str) -> Path:
        """A fresh place for an uploaded file (its name kept, made safe)."""
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name or "upload").name)[-100:]
        folder = self.work / "uploads" / secrets.token_hex(6)
        folder.mkdir(parents=True)
        return folder / (safe.lstrip(".") or "upload")

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
        if job.state == "queued":
            job.state = "cancelled"
            job.finished = time.monotonic()

    def _new_job(self, kind: str, clip: Clip, options: dict) -> Job:
        if clip.retired:
            raise _changed(clip)
        with self._lock:
            busy = [j for j in self.jobs.values() if j.clip == clip.id and j.state in ("queued", "running")]
            if busy:
                raise InputError(f"a {busy[0].kind} job is already running for this clip: wait or cancel it")
            job = Job(id=secrets.token_hex(6), kind=kind, clip=clip.id, total=clip.frames, options=options)
            self.jobs[job.id] = job
        return job

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
            raise _changed(clip)
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
        with clip.track_lock:
            old = (clip.masks, clip.mask_seeker)
            clip.masks, clip.mask_seeker = out, seeker
            clip.track = {"job": job.id, "frames": result.frames, "masked": result.masked,
                          "keyframes": sorted(k.index for k in keys), "weak": weak, "weak_spans": spans(weak),
                          "signal": signal, "areas": areas}
            clip.cut(result.frames)
        job.output = out.name
        self._drop(*old)

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
        result = api.process(clip.path, out, mask=clip.masks, config=config, progress=self._progress(job, clip),
                             inpainter=inpainter)
        # what the command line prints as notes: streams the result does not carry, the reader's own notes
        if result.skipped_streams:
            job.warnings.append(f"not copied into the result: {', '.join(result.skipped_streams)}")
        for note in result.notes:
            note = _for_page(note, clip)
            if note not in job.warnings:  # logged as well (_JobNotes)
                job.warnings.append(note)
        old = (clip.result, clip.result_seeker)
        clip.cut(result.frames)
        clip.result, clip.result_seeker = out, FrameSeeker(out).open()
        job.output = out.name
        self._drop(*old)

    @staticmethod
    def _drop(path: Path | None, seeker: FrameSeeker | None) -> None:
        if seeker is not None:
            seeker.close()
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

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


def _changed(clip: Clip) -> InputError:
    return InputError(f"{clip.name} changed on disk since this clip was opened: open it again")


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


class UploadTooLarge(InputError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than this studio accepts ({limit / 1024**2:.0f} MB; "
                         "start it with a larger --max-upload)")
