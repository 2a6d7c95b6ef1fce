"""One long clip rendered as chunks by several workers, joined into the output a single machine would write.

No Ray here: this module plans chunks, renders one chunk (what a worker runs), and joins the segments; the
executors (``LocalExecutor`` below, ``streamfill.distributed.ray_backend.RayExecutor``) only decide where each
chunk runs.

1. **Serial pass** (driver, :func:`analyse`): decode the source once, in order: every frame's pts, scene
   cuts (``masks.scenecut``, ``[track] cut_threshold``) and, unless the mask is one image, every frame's
   mask, made exactly as a single-machine run makes it (tracking and motion masks carry state from frame to
   frame, so they cannot be made per chunk). The masks, already thresholded and dilated, go to a lossless
   intra-only mask video (FFV1, one keyframe per frame: any frame can be sought exactly) in the work folder.
2. **Plan** (:func:`plan`): chunks of about ``chunk_seconds``, cut at scene cuts where there are any, else at
   source keyframes. A chunk travels as a :class:`Chunk` *description* (paths, pts, offsets), never as
   frames.
3. **Render** (:func:`render_chunk`, on a worker): seek to the keyframe before the pre-roll, decode the
   chunk's range plus ``preroll`` frames before and ``postroll`` after, run the normal pipeline over all of
   them, and write only the chunk's own frames to a video-only segment (a temporary name, renamed when
   complete: a retried chunk never sees a half-written segment).
4. **Join** (``io.segments.join_segments``): copy the segments' packets in order, copy audio and subtitles
   once from the source, write under a temporary name, rename.

Pre-roll and post-roll: the temporal completion (``--temporal fast|quality``) fills frame t from up to
``window`` frames on each side (default 10 for fast, 15 for quality), and its background memory needs
``background_samples x background_stride`` frames (5 x 2 = 10) to fill a fresh per-pixel sample set. So a
chunk decodes ``window + samples x stride`` frames before its first frame (20 for fast defaults) and
``window`` after its last. Neither crosses a scene cut: the temporal stage restarts at every cut, in a single
run too (``pipeline.shots``), so a chunk that starts at a cut is bit-identical to one pass. Elsewhere the
pre-roll is a trade (a slow pan shows, long before, what the hole hides; one pass remembers it): ``preroll``
may be raised up to the shot's start, which makes every chunk identical. With ``--temporal off`` every frame
is filled on its own: no pre-roll, and the chunked output is bit-identical to a single pass.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from streamfill import build, io
from streamfill.config import Config
from streamfill.errors import DecodeError, DistributedError, InputError, MaskError, OutputError, StreamfillError
from streamfill.io.segments import RangeReader, join_segments, keyframe_pts
from streamfill.masks import StaticMask, prepare
from streamfill.masks.scenecut import SceneCutDetector
from streamfill.types import Frame

MASK_TIME_BASE = Fraction(1, 1000)  # the internal mask video stores frame i at pts i (exact in Matroska's ms)


@dataclass(frozen=True)
class Chunk:
    """One chunk, as a description: decode ``pts`` (source time base, pre-roll + own + post-roll frames) after
    a seek to ``seek_pts``; frame ``k`` of them has source index ``first_index + k``; write frames
    ``own_from <= k < own_to`` to ``segment``. ``mask_video`` (internal, frame i at pts i) or ``mask_image``
    gives the masks."""

    id: int
    source: str
    pts: tuple[int, ...]
    first_index: int
    own_from: int
    own_to: int
    seek_pts: int
    segment: str
    mask_video: str | None = None
    mask_image: str | None = None
    starts_at_cut: bool = False

    @property
    def frames(self) -> tuple[int, int]:
        """Source frame indices [first, last] this chunk writes."""
        return self.first_index + self.own_from, self.first_index + self.own_to - 1

    @property
    def size(self) -> int:
        return self.own_to - self.own_from

    def describe(self) -> str:
        a, b = self.frames
        return f"chunk {self.id} (frames {a}-{b})"


@dataclass
class ChunkResult:
    id: int
    segment: str
    frames: int
    filled: int
    decoded: int
    seconds: float
    cpu_seconds: float
    node: str = ""


@dataclass
class Analysis:
    info: io.VideoInfo
    pts: list[int]
    cuts: list[int]                 # frame indices that start a new shot
    keyframes: list[int]            # frame indices of source keyframes
    mask_video: str | None
    mask_image: str | None
    seconds: float


def rolls(config: Config) -> tuple[int, int]:
    """(pre-roll, post-roll) in frames for ``config`` (see the module docstring for why)."""
    t = config.temporal
    if t.mode == "off":
        return 0, 0
    window = t.window or (15 if t.mode == "quality" else 10)
    memory = t.background_samples * t.background_stride if t.background else 0
    return window + memory, window


def analyse(input: str | Path, mask: str | Path | None, config: Config, work_dir: Path, *,
            mask_options: build.MaskOptions | None = None,
            progress: Callable[[int, int | None], None] | None = None) -> Analysis:
    """The serial pass (see the module docstring). Writes ``work_dir/masks.mkv`` unless ``mask`` is one
    image used as is."""
    t0 = time.perf_counter()
    tracking = mask_options is not None and (mask_options.tracking or mask_options.auto is not None)
    static = mask is not None and not tracking and io.is_image_file(Path(mask))
    detector = SceneCutDetector(config.track.cut_threshold)
    pts: list[int] = []
    cuts: list[int] = []
    mask_video = None
    with build.open_source(input, config) as reader:
        info = reader.info
        if info.decode_order_stamps:  # (the reader re-times its frames; the chunks' range readers cannot)
            raise InputError(f"{input}: an AVI with B-frames stores no presentation times, which chunked runs need "
                             "to cut it; run it without --ray/--chunk-seconds")
        total = info.frame_count

        def scanned(frames: Iterable[Frame]) -> Iterator[Frame]:
            for frame in frames:
                if detector.update(frame.image):
                    cuts.append(frame.index)
                pts.append(frame.pts)
                if progress is not None:
                    progress(len(pts), total)
                yield frame

        if static:
            for _ in scanned(reader):
                pass
        else:
            source = build.make_mask_source(mask, config, mask_options, frame_count=info.frame_count)
            mask_video = str(work_dir / "masks.mkv")
            minfo = dataclasses.replace(info, path=mask_video, time_base=MASK_TIME_BASE, fps=info.fps or Fraction(25))
            lossless = dataclasses.replace(config.io, lossless=True)
            with io.open_output(mask_video, minfo, config=lossless) as out:
                for k, (frame, m) in enumerate(source.pair(scanned(reader))):
                    out.write(Frame(np.repeat(m[..., None], 3, axis=2), k, MASK_TIME_BASE, frame.index))
    if not pts:
        raise DecodeError(f"{input} has no decodable video frames")
    if any(b <= a for a, b in zip(pts, pts[1:], strict=False)):
        raise InputError(f"{input}: frame timestamps are not strictly increasing; chunked runs need them to be "
                         "(run it without --ray)")
    keyset = set(keyframe_pts(input))
    keyframes = [i for i, p in enumerate(pts) if p in keyset]
    return Analysis(info=info, pts=pts, cuts=cuts, keyframes=keyframes, mask_video=mask_video,
                    mask_image=str(mask) if static else None, seconds=time.perf_counter() - t0)


def plan(analysis: Analysis, config: Config, *, chunk_seconds: float, source: str, work_dir: Path,
         suffix: str, preroll: int | None = None, cuts_only: bool = False) -> list[Chunk]:
    """Split the clip into chunks of about ``chunk_seconds``: the border is a scene cut where one lies within
    half a chunk of the target, else the first source keyframe within half a chunk after it, else the target
    frame itself (a source whose keyframes are further apart). ``cuts_only``: borders only at scene cuts
    (whole shots, grouped up to the target length): the output is then identical to one pass.
    ``preroll``: frames decoded before each chunk (default ``rolls(config)[0]``); never reaching back past
    the start of the chunk's shot (the completion restarts there anyway)."""
    n = len(analysis.pts)
    fps = analysis.info.fps or Fraction(25)
    target = max(1, round(chunk_seconds * float(fps)))
    pre, post = rolls(config)
    if preroll is not None and config.temporal.mode != "off":
        pre = max(0, int(preroll))
    cuts, keys = sorted(set(analysis.cuts)), analysis.keyframes
    keyset = set(keys)
    borders = [0]
    while True:
        a = borders[-1]
        want = a + target
        if want >= n:
            break
        # (after the border itself: with a chunk of a frame or two, a cut at the border was taken again and again)
        near = [c for c in cuts if max(a + 1, a + target // 2) <= c <= a + target + target // 2 and c < n]
        if cuts_only:  # shots grouped into chunks of at least the target: identical to one pass
            after = [c for c in cuts if c >= want]
            if not after:
                break
            b = after[0]
        elif near:
            b = min(near, key=lambda c: (abs(c - want), c))
        else:
            # a keyframe within half a chunk after the target, else the target frame itself: a worker decodes
            # from the keyframe before its pre-roll anyway, so a border inside a long GOP only costs decoding
            later = [k for k in keys if want <= k <= want + target // 2]
            b = later[0] if later else want
        if n - b < max(1, target // 4) and b not in set(cuts):
            break  # no tiny last chunk
        borders.append(b)
    borders.append(n)
    chunks = []
    for cid, (a, b) in enumerate(zip(borders, borders[1:], strict=False)):
        shot_start = max((c for c in cuts if c <= a), default=0)
        start = max(shot_start, a - pre)
        next_cut = min((c for c in cuts if c >= b), default=n)  # the next shot never affects this one
        stop = min(n, b + post, next_cut)
        seek_index = max((k for k in keys if k <= start), default=0)
        seek_pts = analysis.pts[seek_index] if seek_index in keyset else analysis.pts[0]
        chunks.append(Chunk(id=cid, source=str(source), pts=tuple(analysis.pts[start:stop]), first_index=start,
                            own_from=a - start, own_to=b - start, seek_pts=seek_pts,
                            segment=str(work_dir / f"chunk-{cid:05d}{suffix}"), mask_video=analysis.mask_video,
                            mask_image=analysis.mask_image, starts_at_cut=a in set(cuts)))
    return chunks


def segment_suffix(output: Path) -> str:
    """Segments keep the output's timestamps exactly: Matroska for a .mkv output (it stores milliseconds, as
    the single-machine output does; WebM, a Matroska with VP9 video, for a .webm output), else NUT, which
    stores the source time base as it is (an MP4 segment would get its own edit list and timescale, moving pts
    by a few ticks at every border)."""
    suffix = output.suffix.lower()
    return suffix if suffix in (".mkv", ".webm") else ".nut"


def _pairs(chunk: Chunk, frames: Iterable[Frame], config: Config) -> Iterator[tuple[Frame, np.ndarray]]:
    if chunk.mask_image is not None:
        yield from StaticMask(io.read_image(chunk.mask_image, grey=True), config.mask,
                              name=chunk.mask_image).pair(frames)
        return
    # The mask video holds the prepared (thresholded and dilated) masks: read back without a second margin.
    raw = dataclasses.replace(config.mask, dilate=0)
    indices = list(range(chunk.first_index, chunk.first_index + len(chunk.pts)))
    with RangeReader(chunk.mask_video, indices, seek_pts=indices[0], first_index=indices[0]) as masks:
        for frame, m in zip(frames, masks, strict=True):
            if m.index != frame.index:
                raise MaskError(f"{chunk.describe()}: mask {m.index} paired with frame {frame.index}")
            yield frame, prepare(m.image.max(axis=2), raw)


def render_chunk(chunk: Chunk, config: Config, *, inpainter=None,
                 progress: Callable[[int], None] | None = None) -> ChunkResult:
    """Render one chunk to its segment (see the module docstring). ``inpainter``: a loaded engine to reuse
    (a worker loads it once); ``progress(frames_written)`` is called as the chunk's own frames are written.
    Raises DecodeError/MaskError/OutputError/EngineError."""
    t0, c0 = time.perf_counter(), time.process_time()
    completion = build.make_clip_completion(config, inpainter)
    written = 0
    holes: set[int] = set()  # own frames whose hole is not empty (the "filled" count of a single run)

    def noted(pairs):
        for frame, m in pairs:
            if chunk.own_from <= frame.index - chunk.first_index < chunk.own_to and m.any():
                holes.add(frame.index)
            yield frame, m

    with RangeReader(chunk.source, list(chunk.pts), seek_pts=chunk.seek_pts, first_index=chunk.first_index,
                     threads=config.io.decode_threads) as reader:
        info = reader.info
        with io.open_output(chunk.segment, info, config=config.io) as out:
            for frame in completion.stream(noted(_pairs(chunk, reader, config))):
                k = frame.index - chunk.first_index
                if chunk.own_from <= k < chunk.own_to:
                    out.write(frame)
                    written += 1
                    if progress is not None:
                        progress(written)
        decoded = reader.frames_decoded
    if written != chunk.size:
        raise DecodeError(f"{chunk.describe()}: wrote {written} of {chunk.size} frames")
    return ChunkResult(id=chunk.id, segment=chunk.segment, frames=written, filled=len(holes),
                       decoded=decoded, seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
                       node=os.uname().nodename)


class ChunkWorker:
    """What runs on each worker: the engine is loaded once (``build.make_inpainter``), then chunks (``render``)
    or whole clips (``batch.process_clip`` with its ``inpainter``) are rendered with it. Plain Python:
    ``ray_backend`` wraps it in a Ray actor."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.inpainter = build.make_inpainter(config)

    def render(self, chunk: Chunk, attempt: int = 1, progress: Callable[[int], None] | None = None) -> ChunkResult:
        if attempt > 1:  # a retry writes under its own name: a late first attempt cannot overwrite it
            stem, suffix = os.path.splitext(chunk.segment)
            chunk = dataclasses.replace(chunk, segment=f"{stem}.retry{attempt}{suffix}")
        return render_chunk(chunk, self.config, inpainter=self.inpainter, progress=progress)


class LocalExecutor:
    """Runs chunks one after another in this process (the reference for tests; no cluster needed)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._worker: ChunkWorker | None = None

    def render(self, chunks: list[Chunk], progress: Callable[[int], None] | None = None) -> list[ChunkResult]:
        self._worker = self._worker or ChunkWorker(self.config)
        results, done = [], 0
        for chunk in chunks:
            def tick(n, base=done):
                if progress is not None:
                    progress(base + n)
            results.append(_attempts(lambda a, c=chunk, t=tick: self._worker.render(c, a, t), chunk))
            done += chunk.size
        return results

    def close(self) -> None:
        self._worker = None


def _attempts(fn, chunk: Chunk, tries: int = 2):
    last = None
    for attempt in range(1, tries + 1):
        try:
            return fn(attempt)
        except Exception as exc:  # noqa: BLE001 - reported below with the chunk named
            last = exc
    raise DistributedError(f"{chunk.describe()} failed twice: {_one_line(last)}")


def _one_line(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, StreamfillError) else f"{type(exc).__name__}: {text}"


def absolute(path: str | Path | None) -> str | None:
    """``path`` made absolute unless it is None, a URL or a ``zmq:`` spec (what a worker elsewhere can open)."""
    if path is None:
        return None
    s = str(path)
    if "://" in s or s.startswith("zmq:"):
        return s
    return str(Path(s).absolute())


@dataclass
class ChunkedResult:
    output: str
    frames: int
    filled: int
    seconds: float
    chunks: int
    cuts_used: int
    preroll: int
    postroll: int
    decoded: int                      # frames decoded by the workers (own + pre/post-roll + seek lead-in)
    analyse_seconds: float
    render_seconds: float             # workers' start-up (engine load) included
    join_seconds: float
    worker_cpu_seconds: float
    skipped_streams: list[str] = field(default_factory=list)
    dts_adjusted: int = 0
    nodes: list[str] = field(default_factory=list)
    startup_seconds: float = 0.0                          # starting the workers (part of render_seconds)
    starts: list[int] = field(default_factory=list)       # first frame of each chunk
    cut_starts: list[int] = field(default_factory=list)   # those that are scene cuts

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def process_chunked(input: str | Path, output: str | Path, *, mask: str | Path | None, config: Config,
                    executor, chunk_seconds: float = 10.0, preroll: int | None = None, cuts_only: bool = False,
                    mask_options: build.MaskOptions | None = None,
                    progress: Callable[[str, int, int | None], None] | None = None,
                    keep_work: bool = False) -> ChunkedResult:
    """``process`` for one long clip rendered in chunks by ``executor`` (``LocalExecutor`` or a
    ``RayExecutor``). ``progress(stage, done, total)``: stage "masks" (the serial pass) then "render".
    ``preroll``: frames decoded and filled before each chunk to warm the temporal stage up (default: the
    window plus the background memory's fill time, see ``rolls``). ``cuts_only``: chunk borders only at
    scene cuts (identical to one pass; as many chunks as the shots allow).

    The output appears under its final name only when every chunk succeeded and the join completed; the
    work folder (segments, mask video) beside it is removed either way. Raises InputError/DecodeError/
    MaskError/OutputError/EngineError, DistributedError naming a chunk that failed twice."""
    if chunk_seconds <= 0 or not math.isfinite(chunk_seconds):
        raise InputError(f"--chunk-seconds {chunk_seconds}: must be a positive number of seconds")
    input_s = str(input)
    if os.path.isdir(input_s):
        raise InputError("chunked runs need a video file (an image folder can be processed without --ray)")
    if not ("://" in input_s or os.path.exists(input_s)):
        raise InputError(f"input not found: {input_s}")
    out = Path(output)
    if io.is_sequence_path(out):
        raise InputError("chunked runs write a video file (.mp4/.mkv/.mov), not a PNG folder")
    if not config.io.lossless:
        io.check_video_suffix(out)
    if config.io.lossless and out.suffix.lower() != ".mkv":
        raise InputError(f"lossless output needs a .mkv name, got {out.name}")
    io.check_output_path(out, inputs=tuple(p for p in (input, mask) if p is not None))
    io.check_source_carry(out, input_s)
    # workers on other machines have another working folder: every path they get is absolute
    input_s, mask, out = absolute(input_s), absolute(mask), Path(absolute(out))
    t0 = time.perf_counter()
    work = out.with_name(f".{out.stem}.chunks-{os.getpid()}")
    try:
        work.mkdir(exist_ok=True)
    except OSError as exc:  # (a folder that says it is writable and is not: /sys, a read-only mount, as root)
        raise OutputError(f"cannot write into {out.parent}: {exc.strerror or exc}") from None
    try:
        analysis = analyse(input, mask, config, work, mask_options=mask_options,
                           progress=(lambda d, t: progress("masks", d, t)) if progress else None)
        build.note_lost_aspect(out, analysis.info, config)
        chunks = plan(analysis, config, chunk_seconds=chunk_seconds, source=input_s, work_dir=work,
                      suffix=segment_suffix(out), preroll=preroll, cuts_only=cuts_only)
        t1 = time.perf_counter()
        total = len(analysis.pts)
        results = executor.render(chunks, (lambda d: progress("render", d, total)) if progress else None)
        t2 = time.perf_counter()
        frames = sum(r.frames for r in results)
        if frames != total:
            raise DistributedError(f"the chunks wrote {frames} of {total} frames")
        tb = None if segment_suffix(out) == ".mkv" else analysis.info.time_base
        # the count is checked before the rename: a file already under the output name stays as it was
        joined = join_segments([r.segment for r in results], out, remux_from=input_s, time_base=tb, expect=total)
        t3 = time.perf_counter()
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    pre, post = rolls(config)
    if preroll is not None and config.temporal.mode != "off":
        pre = max(0, int(preroll))
    return ChunkedResult(output=str(out), frames=frames, filled=sum(r.filled for r in results), seconds=t3 - t0,
                         chunks=len(chunks), cuts_used=sum(c.starts_at_cut for c in chunks), preroll=pre,
                         postroll=post, decoded=sum(r.decoded for r in results),
                         analyse_seconds=analysis.seconds, render_seconds=t2 - t1, join_seconds=t3 - t2,
                         worker_cpu_seconds=sum(r.cpu_seconds for r in results),
                         skipped_streams=joined.skipped_streams, dts_adjusted=joined.dts_adjusted,
                         nodes=sorted({r.node for r in results}),
                         startup_seconds=getattr(executor, "startup_seconds", 0.0),
                         starts=[c.frames[0] for c in chunks],
                         cut_starts=[c.frames[0] for c in chunks if c.starts_at_cut])
