"""An opened clip of the studio: random access to its frames, the preview JPEGs (cached, and built ahead
by a background thread within a memory budget all clips share: ``Proxies``), its tracked masks, its result,
and its lifetime (a clip whose file changed on disk is retired and closed once nothing uses it). The jobs
and the clips' registry are ``session.Studio``'s."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamfill.config import Config
from streamfill.errors import InputError
from streamfill.io.seek import FrameSeeker, decode_png_mask, encode_png, fit, preview_jpeg
from streamfill.studio.scrub import ProxyBuilder, Scrubber

PREVIEW_MAX = (1280, 720)  # the page shows frames at most this size; masks stay at full resolution
PROXY_QUALITY = 80


@dataclass(frozen=True)
class Limits:
    """Input limits: upload size (bytes), largest frame (pixels, 8K UHD by default), mask upload size."""

    max_upload: int = 2 * 1024**3
    max_pixels: int = 7680 * 4320
    max_mask_bytes: int = 16 * 1024**2
    max_keyframes: int = 200
    proxy_bytes: int = 768 * 1024**2  # preview JPEGs decoded ahead for scrubbing, all clips together


@dataclass(frozen=True)
class Result:
    """A finished removal: its file and a seeker on it (one object, so that a request never pairs one run's
    file with another's seeker)."""

    path: Path
    seeker: FrameSeeker


@dataclass(frozen=True)
class Masks:
    """The last tracking: its lossless mask video, a seeker on it, and what the page shows of it (areas, weak
    frames, keyframes, the job's id), one object for the same reason as ``Result``: a request never pairs one
    Track's video with another's seeker or summary."""

    path: Path
    seeker: FrameSeeker
    track: dict


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
        self.masks: Masks | None = None  # the last tracking's mask video, a seeker and summary, replaced as one
        self.result: Result | None = None  # the last removal's file and a seeker on it, replaced as one
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
        # Retired (its file changed on disk and was opened anew, Studio.open_clip; or the user closed it,
        # Studio.close_clip): no new use; closed (its decoders and proxy thread stopped, its proxies' memory
        # given back) once the last request or job using it ends
        self.retired = False
        self._by_user = False  # retired by the user (Close): refused as closed; its work folder goes with it
        self._users = 0
        self._closed = False
        self._use_lock = threading.Lock()

    # -- frames ----------------------------------------------------------------------------------------
    def describe(self) -> dict:
        i, masks, result = self.info, self.masks, self.result
        fps = float(i.fps) if i.fps else None
        return {"id": self.id, "name": self.name, "width": i.width, "height": i.height, "frames": self.frames,
                "damaged": self.damaged(),
                "fps": fps, "fps_fraction": [i.fps.numerator, i.fps.denominator] if i.fps else None,
                "duration": i.duration, "codec": i.codec, "preview": list(self.preview),
                "track": masks.track if masks else None, "result": result.path.name if result else None,
                "has_masks": masks is not None}

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
            result = self.result  # read once: a Remove ending meanwhile replaces the file and its seeker together
            if result is None:
                raise InputError("there is no result yet: run Remove first")
            self._check_index(index)
            data = self._cached((which, index, str(result.path)),
                                lambda: preview_jpeg(result.seeker.decode_to(index), self.preview,
                                                     quality=PROXY_QUALITY))
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
        masks = self.masks  # read once: a Track ending meanwhile replaces the video and its seeker together
        if masks is None:
            raise InputError("no masks yet: draw on a frame and press Track")
        self._check_index(index)
        with self.using():
            return self._cached(("mask", index, str(masks.path)),
                                lambda: encode_png(masks.seeker.frame(index).image.max(axis=2), size=self.preview))

    # -- corrections: a keyframe drawn over the tracked mask ---------------------------------------------
    def save_base(self, index: int) -> str:
        """Keep the tracked mask of frame ``index`` (full resolution) as the base of a correction painted on
        that frame: the keyframe is then this mask with the page's strokes added and erased (``base_mask``).
        Kept in the clip's work folder, so a later Track (which replaces the masks) does not change it.
        Returns its id."""
        self._check_index(index)
        with self.using():
            masks = self.masks  # read once: a Track ending meanwhile swaps them; mask and job name from one run
            if masks is None:
                raise InputError("no tracked mask on this frame to correct: press Track first")
            base_id = f"{index}-{masks.track['job']}"
            path = self.work / "bases" / f"{base_id}.png"
            grey = None if path.is_file() else masks.seeker.frame(index).image.max(axis=2)
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
                raise (closed if self._by_user else changed)(self)
            self._users += 1
        try:
            yield self
        finally:
            with self._use_lock:
                self._users -= 1
                last = self.retired and self._users == 0
            if last:
                self.close()

    def retire(self, *, by_user: bool = False) -> None:
        """No new use from now on (refused: the file changed on disk, or ``by_user``: the user closed it);
        closed now, or when the request or job still using it ends. Closed by the user, its work folder
        (masks, results: nothing offers them any more) is deleted then too."""
        with self._use_lock:
            self.retired = True
            self._by_user = self._by_user or by_user
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
        masks, result = self.masks, self.result
        for s in (self.seeker, masks and masks.seeker, result and result.seeker):
            if s is not None:
                s.close()
        if self._by_user:
            shutil.rmtree(self.work, ignore_errors=True)


class Proxies:
    """The memory budget shared by all clips' scrub proxies, and the gate that pauses them while a job runs."""

    def __init__(self, budget: int) -> None:
        self.left = budget
        self.idle = threading.Event()
        self.idle.set()
        self._lock = threading.Lock()
        self._refused: list[threading.Event] = []  # the proxy builders refused memory, woken when some comes back

    def take(self, size: int, wake: threading.Event) -> bool:
        """Take ``size`` bytes of the budget; False when they are not left, and then ``wake`` is set as soon as
        memory is given back (a clip closed)."""
        with self._lock:
            if size > self.left or self.left <= 0:
                self._refused.append(wake)
                return False
            self.left -= size
            return True

    def give(self, size: int) -> None:
        with self._lock:
            self.left += size
            refused, self._refused = self._refused, []
        for wake in refused:
            wake.set()


_BASE_ID = re.compile(r"[0-9]{1,9}-[0-9a-f]{12}")  # frame index - the track job whose mask it is


def changed(clip: Clip) -> InputError:
    return InputError(f"{clip.name} changed on disk since this clip was opened: open it again")


def closed(clip: Clip) -> InputError:
    return InputError(f"{clip.name} was closed: open it again")
