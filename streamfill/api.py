"""Embeddable functions for host applications and the CLI. They never print or exit; they raise the typed
errors of ``streamfill.errors`` and report progress through callbacks."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path

import numpy as np

from streamfill import build, io, transport
from streamfill.config import Config, merge
from streamfill.errors import InputError, MaskError, OutputError
from streamfill.masks import dilate, prepare
from streamfill.masks.synthetic import MovingOccluder
from streamfill.masks.synthetic import composite as paint_occluder
from streamfill.masks.track import parse_box
from streamfill.pipeline.live import LiveEngine, PreviewSink, Retarget, preview_unavailable
from streamfill.pipeline.live_stats import LiveStats
from streamfill.pipeline.run import RunStats, run
from streamfill.types import Frame

_log = logging.getLogger(__name__)


@dataclass
class ProcessResult:
    output: str
    frames: int
    filled: int
    seconds: float
    skipped_streams: list[str] = field(default_factory=list)
    pts_adjusted: int = 0
    lost: list[tuple[int, int]] = field(default_factory=list)  # mask tracking lost at these frames (first, last)
    lost_frames: int = 0  # frames in those stretches
    notes: list[str] = field(default_factory=list)  # e.g. a header that overstated the frame count

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def output_notes(self) -> list[str]:
        """What the output lost or had changed beside the summary: streams not copied, timestamps moved."""
        out = [f"not copied: {', '.join(self.skipped_streams)}"] if self.skipped_streams else []
        if self.pts_adjusted:
            out.append(f"{self.pts_adjusted} timestamps that did not increase were moved just after the frame before")
        return out


Progress = Callable[[int, int | None], None]
"""progress(frames_done, frames_total_or_None)."""


def info(path: str | Path, *, fps: float | None = None) -> io.VideoInfo:
    """Probe a video file, URL or image folder (with ``fps``) without decoding it."""
    build.note_fps(path, fps)
    reader = io.open_video(path, fps=fps)
    with reader.open():
        return reader.info


def process(input: str | Path, output: str | Path, *, mask: str | Path | None, config: Config | None = None,
            fps: float | Fraction | None = None, start: float | None = None, end: float | None = None,
            progress: Progress | None = None, sink: str | None = None,
            mask_options: build.MaskOptions | None = None, inpainter=None) -> ProcessResult:
    """Remove what ``mask`` marks from every frame of ``input`` and write ``output``.

    ``mask`` may also be a ``zmq:[req|sub:]ENDPOINT`` spec (masks from a plugin, see plugins/PROTOCOL.md);
    ``sink`` a ``zmq:[push|pub:]ENDPOINT`` spec that receives every output frame as well as ``output``.
    ``mask_options`` tracks the ``mask`` image (or boxes) through the clip, or masks what moves
    (``build.MaskOptions``); ``mask`` may then be None. ``inpainter``: an engine already loaded (e.g. by a
    worker that processes many clips), instead of loading one from ``config``.

    Every input frame is written with its source pts; audio is copied unchanged (encoded again, with a note
    logged on the ``streamfill`` logger, when the output format cannot hold it as it is); the output appears
    under its final name only when complete. Raises InputError/DecodeError/MaskError/OutputError/EngineError.
    """
    config = config or Config()
    _check_not_empty(input=input, output=output, mask=mask)
    t0 = time.perf_counter()
    with build.open_source(input, config, fps=fps, start=start, end=end) as reader:
        source_info = reader.info
        _check_range(source_info, start, end)
        total = _expected_frames(source_info, start, end)
        masks = build.make_mask_source(mask, config, mask_options,
                                       frame_count=source_info.frame_count if start is None else None)
        completer = build.make_clip_completion(config, inpainter)
        io.check_output_path(output, inputs=tuple(p for p in (input, mask) if p is not None))
        build.note_lost_aspect(output, source_info, config)
        remux = None if Path(str(input)).is_dir() else str(input)
        with (build.open_sink(output, source_info, config, remux_from=remux, start=start, end=end) as out,
              build.open_stream_sink(sink, config) as extra):
            stats = run(reader, masks, completer, build.tee(out, extra),
                        progress=(lambda s: progress(s.frames, total)) if progress else None)
    return ProcessResult(output=str(output), frames=stats.frames, filled=completer.frames_filled,
                         seconds=time.perf_counter() - t0, skipped_streams=list(out.skipped_streams),
                         pts_adjusted=out.pts_adjusted, lost=list(getattr(masks, "lost", [])),
                         lost_frames=int(getattr(masks, "lost_frames", 0)), notes=list(getattr(reader, "notes", [])))


@dataclass
class MasksResult:
    output: str
    preview: str | None
    frames: int
    masked: int  # frames whose mask is not empty
    seconds: float
    lost: list[tuple[int, int]] = field(default_factory=list)  # mask tracking lost at these frames (first, last)
    lost_frames: int = 0  # frames in those stretches
    notes: list[str] = field(default_factory=list)


def write_masks(input: str | Path, output: str | Path, *, mask: str | Path | None,
                mask_options: build.MaskOptions | None = None, config: Config | None = None,
                preview: str | Path | None = None, fps: float | Fraction | None = None,
                start: float | None = None, end: float | None = None,
                progress: Progress | None = None) -> MasksResult:
    """``streamfill masks``: write every frame's mask (tracked, automatic or from files) to ``output`` so it
    can be checked, then reused with ``process --mask OUTPUT``.

    ``output`` gets one grey picture per frame (255 = fill) with the source pts: a ``.mkv`` is written
    lossless (FFV1), a folder ending in ``/`` as PNGs.
    Masks are written *without* the ``[mask] dilate`` margin, because ``process --mask`` adds it when it
    reads them back. ``preview`` (optional) gets the video with the masks, margin included, drawn over it
    (red tint, yellow outline); frames where a tracker's confidence is low (``track_lost``) get a magenta
    border, so that lost stretches stand out when scrubbing.
    """
    import dataclasses

    config = config or Config()
    _check_not_empty(input=input, output=output, mask=mask, preview=preview)
    # The margin is added once, by whoever reads the masks back.
    raw = dataclasses.replace(config, mask=dataclasses.replace(config.mask, dilate=0))
    if Path(output).suffix.lower() == ".mkv":
        raw = dataclasses.replace(raw, io=dataclasses.replace(raw.io, lossless=True))
    t0 = time.perf_counter()
    frames = masked = 0
    with build.open_source(input, raw, fps=fps, start=start, end=end) as reader:
        info_ = reader.info
        _check_range(info_, start, end)
        total = _expected_frames(info_, start, end)
        masks = build.make_mask_source(mask, raw, mask_options,
                                       frame_count=info_.frame_count if start is None else None)
        io.check_output_path(output, inputs=tuple(p for p in (input, mask) if p is not None))
        if preview is not None:
            if Path(preview).resolve() == Path(output).resolve():
                raise InputError("--preview and -o name the same file; choose another name for the preview")
            io.check_output_path(preview, inputs=tuple(p for p in (input, mask) if p is not None))
        if not io.is_sequence_path(output) and Path(output).suffix.lower() != ".mkv":
            io.check_video_suffix(output)  # (a .png is refused here, not after a note about its compression)
            _log.warning("note: masks in a %s are compressed with loss (their edges blur into grey); .mkv "
                         "(lossless) or a folder keeps them exact", Path(output).suffix or "file")
        with contextlib.ExitStack() as stack:
            # the preview is entered first, so that it is finished last: when the masks' output cannot be
            # finished, the preview is discarded with it (no preview left standing for a failed run)
            view = None
            if preview is not None:
                view = stack.enter_context(build.open_sink(preview, info_, config, start=start, end=end))
            out = stack.enter_context(build.open_sink(output, info_, raw, start=start, end=end))
            for frame, m in masks.pair(reader):
                out.write(frame.with_image(np.repeat(m[..., None], 3, axis=2)))
                if view is not None:
                    shown = _overlay(frame.image, dilate(m, config.mask.dilate))
                    if getattr(masks, "low_confidence", False):
                        _mark_lost(shown)
                    view.write(frame.with_image(shown))
                frames += 1
                masked += bool(m.any())
                if progress is not None:
                    progress(frames, total)
    return MasksResult(output=str(output), preview=str(preview) if preview is not None else None,
                       frames=frames, masked=masked, seconds=time.perf_counter() - t0,
                       lost=list(getattr(masks, "lost", [])), lost_frames=int(getattr(masks, "lost_frames", 0)),
                       notes=list(getattr(reader, "notes", [])))


def _mark_lost(image: np.ndarray) -> None:
    """A magenta border (in place) on a preview frame whose track confidence is low."""
    b = max(3, min(image.shape[:2]) // 40)
    for sl in (np.s_[:b], np.s_[-b:], np.s_[:, :b], np.s_[:, -b:]):
        image[sl] = (255, 0, 255)


def _overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB with the mask (255 = fill) tinted red and its edge drawn."""
    out = image.copy()
    on = mask > 127
    out[on] = (out[on] * 0.5 + np.array([255, 0, 0]) * 0.5).astype(np.uint8)
    edge = on & ~(np.roll(on, 1, 0) & np.roll(on, -1, 0) & np.roll(on, 1, 1) & np.roll(on, -1, 1))
    out[edge] = (255, 255, 0)
    return out


def _check_not_empty(**paths) -> None:
    """An empty path ("" from an unset shell variable) is an error: as a Path it is ".", the current folder,
    which was read as a folder of per-frame masks."""
    flags = {"input": "the input", "output": "-o", "mask": "--mask", "preview": "--preview"}
    for name, value in paths.items():
        if isinstance(value, str) and not value.strip():
            raise InputError(f"{flags[name]} is empty: give a path")


def _check_range(info: io.VideoInfo, start: float | None, end: float | None) -> None:
    """--start/--end are the frames' own times (pts): a clip cut from a longer one may start at 5 s."""
    if start is not None and end is not None and end <= start:
        raise InputError(f"--end ({end}) must be after --start ({start})")
    if start is not None and info.end_time is not None and start >= info.end_time:
        span = (f"its frames run from {info.start_time:.2f} to {info.end_time:.2f} s"
                if info.start_time else f"{info.end_time:.2f} s long")
        raise InputError(f"--start {start:g} s is at or past the end of the clip ({span})")


def _expected_frames(info: io.VideoInfo, start: float | None, end: float | None) -> int | None:
    if info.frame_count is None:
        return None
    if start is None and end is None:
        return info.frame_count
    if info.fps is None or info.end_time is None:
        return None
    first, last = info.start_time, info.end_time
    a = max(first, start if start is not None else first)
    b = min(end if end is not None else last, last)
    return max(0, math.ceil((b - a) * float(info.fps)))


def serve(bind: str = "tcp://127.0.0.1:5555", *, config: Config | None = None,
          curve_keys: str | Path | None = None, insecure: bool = False, stop: threading.Event | None = None,
          on_ready: Callable[[str], None] | None = None, fill=None, temporal: str = "off") -> dict[str, int]:
    """Run ``streamfill serve`` until ``stop`` is set (or KeyboardInterrupt); returns the request counters.

    Host applications send ``frame`` messages carrying image + mask (plugins/PROTOCOL.md) and get
    ``result`` messages with the filled frame. Binding beyond loopback requires ``curve_keys`` (a
    ``streamfill keys`` directory) unless ``insecure``. ``on_ready(endpoint)`` is called once bound.
    ``fill`` replaces the completion function (default: ``build.make_fill(config)``). ``temporal`` =
    ``fast`` or ``quality`` fills each stream with temporal completion (``build.make_temporal_fill``): look-back,
    or look-ahead for frames that ask for it (answered once their window has come; plugins/PROTOCOL.md 6.1.1).
    """
    config = config or Config()
    if not transport.is_loopback(bind) and curve_keys is None and not insecure:
        raise InputError(f"--bind {bind} is reachable from other machines: protect it with --curve-keys DIR "
                         "(see `streamfill keys`) or pass --insecure")
    if temporal not in ("off", "fast", "quality"):
        raise InputError(f"--temporal {temporal}: expected off, fast or quality")
    if fill is None:
        fill = build.make_fill(config) if temporal == "off" else build.make_temporal_fill(
            merge(config, {"temporal": {"mode": temporal}}))
    service = transport.ServeService(bind, fill, config.transport,
                                     curve_dir=curve_keys, stop=stop,
                                     info={"mask_dilate": config.mask.dilate, "mask_threshold": config.mask.threshold,
                                           "temporal": temporal})
    try:
        with service:
            if on_ready is not None:
                on_ready(service.endpoint)
            while not service.wait(0.5):
                pass
    finally:
        if hasattr(fill, "close"):
            fill.close()  # per-stream temporal completions (their threads and held frames)
    return dict(service.stats)


def keys(directory: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Create CURVE keypairs for ``serve --curve-keys DIR`` and its clients; returns the files written."""
    return transport.generate_keys(directory, overwrite=overwrite)


def demo_clip() -> Path:
    """Path of the bundled demo clip (Big Buck Bunny excerpt, CC-BY 3.0 Blender Foundation)."""
    return Path(str(resources.files("streamfill") / "data" / "demo.mp4"))


@dataclass
class DemoResult:
    input: str
    output: str
    side_by_side: str
    frames: int
    psnr_hole: float
    psnr_hole_input: float
    seconds: float


def demo(out_dir: str | Path, *, config: Config | None = None, progress: Progress | None = None) -> DemoResult:
    """The main job on the bundled clip: a moving occluder is painted on, then removed using its mask.

    Writes ``demo_input.mp4`` (occluded), ``demo_output.mp4`` (filled) and ``demo_side_by_side.mp4``
    (``.mkv`` with ``[io] lossless``) into ``out_dir`` and returns the PSNR (dB) of the filled region against
    the clean original (and of the occluded input there, for reference)."""
    config = config or Config()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out} is a file; the demo writes three videos into a folder")
    completion = build.make_completion(config)   # (an engine that cannot load leaves no folder behind)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _run_demo(out, completion, config, progress)
    except BaseException:
        if made:  # a run stopped (Ctrl-C, a failure) leaves no empty folder of its own behind
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _run_demo(out: Path, completion, config: Config, progress: Progress | None) -> DemoResult:
    clip = demo_clip()
    occluder = MovingOccluder(seed=7)
    suffix = ".mkv" if config.io.lossless else ".mp4"  # lossless output is FFV1, which needs MKV
    paths = {k: out / f"demo_{k}{suffix}" for k in ("input", "output", "side_by_side")}
    for p in paths.values():
        io.check_output_path(p, inputs=(clip,))
    sse = sse_in = 0.0
    count = frames = 0
    t0 = time.perf_counter()
    pending: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque()  # (clean, occluded, hole), bounded

    def occluded_pairs(reader):
        for frame in reader:
            mask, colour = occluder.at(frame.index, frame.height, frame.width)
            occluded = paint_occluder(frame.image, mask, colour)
            pending.append((frame.image, occluded, mask > 0))
            yield frame.with_image(occluded), prepare(mask, config.mask)

    with build.open_source(clip, config) as reader:
        info = reader.info
        wide = io.VideoInfo(**{**info.__dict__, "width": info.width * 2})
        with (build.open_sink(paths["input"], info, config, remux_from=str(clip)) as w_in,
              build.open_sink(paths["output"], info, config, remux_from=str(clip)) as w_out,
              build.open_sink(paths["side_by_side"], wide, config, remux_from=str(clip)) as w_sbs):
            for out_frame in completion.stream(occluded_pairs(reader)):
                clean_image, occluded, hole = pending.popleft()  # outputs come in input order
                filled = out_frame.image
                w_in.write(out_frame.with_image(occluded))
                w_out.write(out_frame)
                w_sbs.write(out_frame.with_image(np.concatenate([occluded, filled], axis=1)))
                clean = clean_image[hole].astype(np.float64)
                sse += float(((filled[hole] - clean) ** 2).sum())
                sse_in += float(((occluded[hole] - clean) ** 2).sum())
                count += int(hole.sum()) * 3
                frames += 1
                if progress:
                    progress(frames, info.frame_count)
    return DemoResult(input=str(paths["input"]), output=str(paths["output"]),
                      side_by_side=str(paths["side_by_side"]), frames=frames, psnr_hole=_psnr(sse, count),
                      psnr_hole_input=_psnr(sse_in, count), seconds=time.perf_counter() - t0)


def _psnr(sse: float, count: int) -> float:
    if count == 0:
        return float("inf")
    mse = sse / count
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


@dataclass
class LiveResult:
    """The end of a live run: final statistics (``stats.frames_in == stats.frames_out + stats.dropped``),
    the recording written (None when no frame reached it), the control endpoint and published endpoint
    actually bound, mask-source misses (live plugin masks that came late and were replaced by the last one)
    and stages that did not stop within ``live.join_timeout`` (e.g. a camera read that never returned)."""

    stats: LiveStats
    record: str | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    mask_misses: int = 0
    retargets: int = 0
    stuck_stages: list[str] = field(default_factory=list)


def _parse_box(box) -> tuple[int, int, int, int]:
    if isinstance(box, str):
        if "@" in box:
            raise InputError(f"box {box!r}: a live box is x,y,w,h at the current frame (no @FRAME; "
                             "re-target while running with --control)")
        return tuple(int(v) for v in parse_box(box).box)
    try:
        values = tuple(int(v) for v in box)
    except (TypeError, ValueError):
        raise InputError(f"box {box!r}: expected x,y,w,h (integers)") from None
    if len(values) != 4 or any(v != b for v, b in zip(values, box, strict=False)):
        raise InputError(f"box {box!r}: expected four integers x,y,w,h")
    if values[2] <= 0 or values[3] <= 0 or values[0] < 0 or values[1] < 0:
        raise InputError(f"box {box!r}: x and y must be >= 0, width and height > 0")
    return values


def _check_box_fits(box: tuple[int, int, int, int], shape: tuple[int, int] | None) -> None:
    if shape is None:
        return
    h, w = shape
    x, y, bw, bh = box
    if x + bw > w or y + bh > h:
        raise InputError(f"box {x},{y},{bw},{bh} (x,y,w,h) reaches outside the {w}x{h} frame; it must lie inside it")


def live(source: str, *, box=None, mask: str | Path | None = None, track: bool = False,
         mask_source: str | None = None, motion: bool = False, record: str | Path | None = None,
         sink: str | None = None, publish: str | None = None, v4l2_out: str | None = None,
         v4l2_format: str = "yuv420p", preview: bool = False, control: str | None = None,
         config: Config | None = None, realtime: bool = False, loop: bool = False, size: str | None = None,
         fps: float | None = None, input_format: str | None = None, av_options: dict[str, str] | None = None,
         stats_json: str | Path | None = None, stop: threading.Event | None = None,
         on_stats: Callable[[LiveStats], None] | None = None,
         on_ready: Callable[[dict[str, str]], None] | None = None) -> LiveResult:
    """Remove an object from a live feed with bounded latency until the source ends or ``stop`` is set.

    ``source``: a camera ``/dev/videoN`` (``size`` "WxH", ``fps``, ``input_format`` e.g. "mjpeg", other
    FFmpeg options in ``av_options``), a URL (rtsp/http/srt/...), ``zmq:[sub|pull:]ENDPOINT`` or a file
    (``realtime`` paces it at its frame rate; ``loop`` repeats it).
    What to remove, one of: ``box`` (x, y, w, h or "x,y,w,h" in the first frame, then tracked), ``mask`` (an
    image, H x W, white = remove; tracked with ``track``, else used as is for every frame), ``mask_source``
    (``zmq:[req|sub:]ENDPOINT``, live: a late mask is replaced by the last one), ``motion`` (moving things).
    With ``control`` (a loopback ZeroMQ REP endpoint) a JSON ``{"cmd": "box", "box": [x, y, w, h]}``
    re-targets the tracker while running; ``{"cmd": "clear"}``, ``{"cmd": "stats"}``, ``{"cmd": "stop"}``.
    Outputs, at least one: ``record`` (H.264 with ``live.tune``, finalised when the run ends, also when it is
    stopped or interrupted), ``publish`` (a ZeroMQ PUB endpoint viewers connect to), ``sink``
    (``zmq:[push|pub:]ENDPOINT``), ``v4l2_out`` (a v4l2loopback device), ``preview`` (a window).
    Every output frame keeps its source pts; frames dropped under load are counted (``live.policy``).

    ``on_stats(LiveStats)`` is called every ``live.stats_interval`` s; ``on_ready(endpoints)`` once outputs
    and the control socket are bound; ``stats_json`` receives the final statistics as JSON. A
    KeyboardInterrupt finalises the outputs, then propagates. Raises InputError/DecodeError/MaskError/
    OutputError/TransportError/EngineError.
    """
    config = config or Config()
    if config.live.model_cnum:
        config = merge(config, {"model": {"cnum": config.live.model_cnum}})
    stop = stop or threading.Event()
    chosen = [n for n, v in (("--box", box), ("--mask", mask), ("--mask-source", mask_source),
                             ("--mask-auto motion", motion)) if v]
    if len(chosen) > 1:
        raise InputError(f"give one of {', '.join(chosen)}")
    if not chosen and control is None:
        raise InputError("say what to remove: --box, --mask, --mask-auto motion or --mask-source "
                         "(or --control to send a box later)")
    if track and mask is None:
        raise InputError("--track follows a --mask; a --box is always tracked")
    if not (record or sink or publish or v4l2_out or preview):
        raise InputError("give at least one output: --record, --publish, --sink, --v4l2-out or --preview")
    if record is not None:
        io.check_output_path(record, inputs=(source,))
        if not config.io.lossless and not io.is_sequence_path(record):
            io.check_video_suffix(record)  # at once, not when the first frame reaches the recorder
    if stats_json is not None:
        io.check_output_path(stats_json, inputs=(source,))
    if v4l2_out is not None and not Path(v4l2_out).exists():
        raise OutputError(f"V4L2 output device not found: {v4l2_out} (load v4l2loopback, e.g. "
                          "`sudo modprobe v4l2loopback video_nr=10 exclusive_caps=1`)")
    if preview:
        why = preview_unavailable()
        if why:
            raise InputError(f"--preview is unavailable: {why}")
    box_t = _parse_box(box) if box is not None else None
    mask_image = io.read_image(mask, grey=True) if mask is not None else None

    src = build.open_live_source(source, config, size=size, fps=fps, input_format=input_format,
                                 av_options=av_options, realtime=realtime, loop=loop, stop=stop)
    engine = None
    try:
        shape = (src.info.height, src.info.width) if src.info is not None else None
        retarget = None
        if mask_source is not None:
            masks = build.make_plugin_mask_source(mask_source, config, live=True)
        elif motion:
            masks = build.make_live_motion_masks(config)
        else:
            if box_t is not None:
                _check_box_fits(box_t, shape)
                initial = build.live_target("box", box_t)
            elif mask_image is not None:
                if shape is not None and mask_image.shape != shape:
                    raise MaskError(f"mask {mask} is {mask_image.shape[1]}x{mask_image.shape[0]} but the source "
                                    f"is {shape[1]}x{shape[0]}")
                initial = build.live_target("mask" if track else "static", mask_image)
            else:
                initial = None
            masks = retarget = Retarget(build.make_live_tracker(config), initial)
        completion = build.make_live_completion(config)
        endpoints: dict[str, str] = {}
        interrupted = False
        with contextlib.ExitStack() as stack:
            sinks = []
            if record is not None:
                sinks.append(stack.enter_context(build.open_record_sink(record, config, src.info)))
            for spec in ([f"zmq:pub:{publish}"] if publish else []) + ([sink] if sink else []):
                s = stack.enter_context(build.open_stream_sink(spec, config))
                endpoints[spec] = getattr(s, "bound_endpoint", None) or spec
                sinks.append(s)
            if v4l2_out is not None:
                sinks.append(stack.enter_context(build.open_v4l2_sink(v4l2_out, src.info, v4l2_format)))
            if preview:
                sinks.append(stack.enter_context(PreviewSink(stop=stop)))
            engine = LiveEngine(src.frames, masks, completion, build.tee(*sinks), config.live, stop=stop,
                                on_stats=on_stats)
            if control is not None:
                handler = _control_handler(engine, retarget, shape)
                server = stack.enter_context(build.open_control(control, handler, config))
                endpoints["control"] = server.endpoint
            if on_ready is not None:
                on_ready(dict(endpoints))
            try:
                stats = engine.run()
            except KeyboardInterrupt:
                interrupted = True  # finalise the outputs below, then propagate
                stats = engine.stats
    finally:
        if engine is None or not engine.stuck_stages:
            src.close()
    result = LiveResult(stats=stats, endpoints=endpoints, stuck_stages=engine.stuck_stages,
                        record=str(record) if record is not None and Path(record).exists() else None,
                        mask_misses=_misses(masks), retargets=retarget.retargets if retarget else 0)
    if stats_json is not None:
        _write_json(stats_json, {**stats.as_dict(), "record": result.record, "mask_misses": result.mask_misses,
                                 "retargets": result.retargets, "stuck_stages": result.stuck_stages})
    if interrupted:
        raise KeyboardInterrupt
    return result


def _misses(masks) -> int:
    inner = getattr(masks, "source", masks)
    return int(getattr(inner, "misses", 0) or 0)


def _write_json(path: str | Path, data: dict) -> None:
    path = Path(path)
    try:
        with io.staged(path) as tmp:
            tmp.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from None


def _control_handler(engine: LiveEngine, retarget: Retarget | None, shape: tuple[int, int] | None):
    def handle(request: dict) -> dict:
        cmd = request.get("cmd")
        if cmd in ("box", "clear") and retarget is None:
            raise InputError(f"{cmd!r} needs a tracked target (this run masks with a plugin or motion)")
        if cmd == "box":
            box = _parse_box(request.get("box"))
            _check_box_fits(box, retarget.last_shape or shape)
            retarget.retarget(build.live_target("box", box))
            return {}
        if cmd == "clear":
            retarget.clear()
            return {}
        if cmd == "stats":
            return {"stats": engine.stats.as_dict()}
        if cmd == "stop":
            engine.stop.set()
            return {}
        raise InputError(f"unknown command {cmd!r} (known: box, clear, stats, stop)")

    return handle


__all__ = ["DemoResult", "Frame", "LiveResult", "LiveStats", "ProcessResult", "RunStats", "demo", "demo_clip",
           "info", "keys", "live", "process", "serve"]
