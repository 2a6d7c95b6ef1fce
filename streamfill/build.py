"""The one place that picks concrete classes from a config: plain functions and dicts, readable with grep."""

from __future__ import annotations

import contextlib
import logging
import numbers
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from streamfill import io, transport
from streamfill.backends.classical import ClassicalInpainter
from streamfill.config import Config, IOConfig, merge
from streamfill.errors import EngineError, InputError
from streamfill.io.live import V4L2Writer, open_live_reader, source_kind
from streamfill.masks import PerFrameMasks, StaticMask, prepare
from streamfill.masks.ops import binarize
from streamfill.masks.track import Advice, FlowTracker, Keyframe, parse_box
from streamfill.pipeline.complete import Completer
from streamfill.pipeline.live import LazySink, paced
from streamfill.pipeline.streams import TemporalFill
from streamfill.temporal import TemporalCompletion
from streamfill.transport.live import ControlServer, FrameSource
from streamfill.types import Frame, FrameSink, Inpainter, Mask, MaskSource

_log = logging.getLogger(__name__)

INPAINTERS = {
    "telea": lambda config: ClassicalInpainter("telea", config.engine.radius),
    "ns": lambda config: ClassicalInpainter("ns", config.engine.radius),
    # Neural (DeepFill v2) engines; auto/deepfill pick a backend for the device (see choose_engine).
    "auto": lambda config: make_neural_inpainter(config),
    "deepfill": lambda config: make_neural_inpainter(config),
    "torch": lambda config: make_neural_inpainter(config),
    "compile": lambda config: make_neural_inpainter(config),
    "onnx": lambda config: make_neural_inpainter(config),
    "tensorrt": lambda config: make_neural_inpainter(config),
}


def make_inpainter(config: Config) -> Inpainter:
    try:
        factory = INPAINTERS[config.engine.name]
    except KeyError:
        raise EngineError(f"unknown engine {config.engine.name!r} (known: {', '.join(INPAINTERS)})") from None
    return factory(config)


def choose_engine(config: Config, engine: str | None = None):
    """The backend that ``engine`` (default ``config.engine.name``) resolves to on this machine, as a
    ``backends.select.EngineChoice`` whose ``reason`` says in one line why the preferred backend was not used
    (None when it was). Probes CUDA and installed packages; loads nothing."""
    from streamfill.backends.select import CLASSICAL, EngineChoice, choose

    name = engine or config.engine.name
    if name in CLASSICAL:
        return EngineChoice(name, name, "cpu", "fp32")
    from streamfill.backends.neural import default_weights

    if config.engine.weights and not Path(config.engine.weights).is_file():   # before any engine note
        raise EngineError(f"weights file not found: {config.engine.weights}")
    has_weights = bool(config.engine.weights) or default_weights() is not None
    return choose(name, config.engine.device, config.engine.precision, has_weights)


def backend_options(config: Config, choice, *, sizes: tuple[int, ...] | None = None, rebuild: bool = False):
    """``BackendOptions`` for a neural ``choice`` from ``[engine]`` and ``[crop] sizes`` (or ``sizes``)."""
    from streamfill.backends.neural import BackendOptions

    return BackendOptions(device=choice.device, precision=choice.precision,
                          sizes=tuple(sizes or config.crop.sizes), max_batch=config.engine.max_batch,
                          threads=config.engine.threads, cache_dir=config.engine.cache_dir, rebuild=rebuild)


def load_weights(config: Config):
    """The generator from ``[engine] weights`` (or the shipped default weights), float32 on the CPU."""
    from streamfill.backends.neural import resolve_weights
    from streamfill.model import load_generator

    return load_generator(resolve_weights(config.engine.weights), config.model)


def _neural_loaders() -> dict:
    from streamfill.backends.compile import load_compiled
    from streamfill.backends.onnx import load_onnx
    from streamfill.backends.tensorrt import load_tensorrt
    from streamfill.backends.torch import load_torch

    return {"torch": load_torch, "compile": load_compiled, "onnx": load_onnx, "tensorrt": load_tensorrt}


def load_neural(config: Config, choice, generator=None, *, sizes: tuple[int, ...] | None = None,
                rebuild: bool = False):
    """Load (building or reusing cached engines) the neural backend of ``choice``. ``generator`` defaults to
    :func:`load_weights`. Returns ``(inpainter, cache_entries)``."""
    from streamfill.backends.cache import EngineCache, cache_dir

    generator = generator if generator is not None else load_weights(config)
    options = backend_options(config, choice, sizes=sizes, rebuild=rebuild)
    return _neural_loaders()[choice.backend](generator, options, EngineCache(cache_dir(options.cache_dir)))


def make_neural_inpainter(config: Config, choice=None, generator=None) -> Inpainter:
    """The inpainter for a neural engine name (or ``auto`` falling back to classical telea)."""
    choice = choice or choose_engine(config)
    if not choice.neural:
        return ClassicalInpainter(choice.backend, config.engine.radius)
    return load_neural(config, choice, generator)[0]


SPEC_KEYS = ("engine", "sizes", "precision", "max_batch", "description")


def read_engine_spec(path: str | Path) -> dict:
    """An engine build spec (engines/*.toml): a ``[build]`` table with ``engine``, ``sizes``, ``precision``,
    ``max_batch`` (all optional) and a free-text ``description``. Raises ConfigError naming a bad key."""
    from streamfill.config import ENGINES, PRECISIONS, CropConfig, check_choice, check_range, read_toml
    from streamfill.errors import ConfigError

    data = read_toml(path, "engine spec")
    spec = data.get("build")
    if not isinstance(spec, dict) or set(data) != {"build"}:
        raise ConfigError(f"engine spec {path}: expected one [build] table")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"engine spec {path}: unknown key build.{unknown[0]} (known: {', '.join(SPEC_KEYS)})")
    if "engine" in spec:
        check_choice("build.engine", spec["engine"], ENGINES)
    if "precision" in spec:
        check_choice("build.precision", spec["precision"], PRECISIONS)
    if "max_batch" in spec:
        check_range("build.max_batch", spec["max_batch"], 1, 64)
    if "sizes" in spec:
        try:
            spec["sizes"] = list(CropConfig(sizes=spec["sizes"]).sizes)
        except ConfigError as exc:
            raise ConfigError(f"engine spec {path}: {str(exc).replace('crop.sizes', 'build.sizes', 1)}") from None
    return spec


def compile_engines(config: Config, engine: str | None = None, *, sizes: tuple[int, ...] | None = None,
                    rebuild: bool = False):
    """``streamfill compile``: build (or validate) the cached engines of ``engine`` for ``sizes`` ahead of
    time. Returns ``(choice, cache_entries)``; eager torch has nothing to build (empty list)."""
    choice = choose_engine(config, engine)
    if not choice.neural:
        raise EngineError(f"engine {choice.backend} has nothing to compile (classical)")
    _, entries = load_neural(config, choice, sizes=sizes, rebuild=rebuild)
    return choice, entries


def make_completer(config: Config, inpainter: Inpainter | None = None) -> Completer:
    return Completer(inpainter or make_inpainter(config), config.crop, config.mask)


def make_completion(config: Config, inpainter: Inpainter | None = None) -> Completer | TemporalCompletion:
    """The completion stage of ``process``: per-frame (``temporal.mode = "off"``) or temporal, whose
    never-seen regions go to the per-frame completer's ``fill``. Both have ``stream(pairs)`` and
    ``frames_filled``."""
    completer = make_completer(config, inpainter)
    if config.temporal.mode == "off":
        return completer
    return _temporal_completion(completer, config)


def _temporal_completion(completer: Completer, config: Config) -> TemporalCompletion:
    """Temporal completion whose never-seen regions go to ``completer.fill``; the paste is feathered only
    inside the safety margin (``[mask] dilate``), as for every completion."""
    return TemporalCompletion(completer.fill, config.temporal, feather=config.mask.feather,
                              margin=config.mask.dilate)


def make_clip_completion(config: Config, inpainter: Inpainter | None = None):
    """The completion stage of ``process`` on a clip (and of each chunk of ``process --ray``): as
    ``make_completion``, but a temporal completion restarts at every scene cut (``pipeline.shots``), so no
    shot is filled from another and a chunk that starts at a cut gives what one pass gives."""
    if config.temporal.mode == "off":
        return make_completion(config, inpainter)
    inpainter = inpainter or make_inpainter(config)
    from streamfill.pipeline.shots import ShotSplit

    return ShotSplit(lambda: make_completion(config, inpainter), config.track.cut_threshold)


@dataclass(frozen=True)
class MaskOptions:
    """How masks are made beyond a plain ``--mask``: ``track`` follows the ``--mask`` image from frame
    ``mask_frame`` through the clip (``--mask-track``, ``--mask-frame``); ``boxes`` are more keyframes as
    ``"x,y,w,h[@K]"`` (``--box``, implies tracking); ``keyframes`` more keyframes as ``masks.track.Keyframe``
    objects (masks or boxes drawn in ``streamfill studio``); ``auto = "motion"`` masks what moves
    (``--mask-auto``). ``on_warning(message)`` receives tracking notices (scene cuts, lost tracks); None sends
    them to ``warnings``. ``advice``: what the tracking notices tell the user to do (None: the command
    line's, ``masks.track.Advice()``)."""

    track: bool = False
    mask_frame: int = 0
    boxes: tuple[str, ...] = ()
    keyframes: tuple[Keyframe, ...] = ()
    auto: str | None = None
    on_warning: Callable[[str], None] | None = None
    advice: Advice | None = None

    @property
    def tracking(self) -> bool:
        return self.track or bool(self.boxes) or bool(self.keyframes) or self.mask_frame != 0


MASK_AUTO = ("motion",)


def make_tracking_source(mask: str | Path | None, config: Config, options: MaskOptions, *,
                         frame_count: int | None = None) -> MaskSource:
    """The MaskSource for ``options`` (tracking or automatic masks); ``frame_count`` (when known) lets a
    keyframe beyond the clip fail before any work. Masks come out dilated by ``[mask] dilate``."""
    from streamfill.masks.motion import MotionMasks

    if options.auto is not None:
        if options.auto not in MASK_AUTO:
            raise InputError(f"--mask-auto {options.auto!r}: known: {', '.join(MASK_AUTO)}")
        if mask is not None or options.tracking:
            raise InputError("--mask-auto motion makes its own masks: drop --mask/--mask-track/--box")
        return MotionMasks(config.track, dilate=config.mask.dilate)
    keys = []
    if mask is not None:
        path = Path(mask)
        if not io.is_image_file(path):
            raise InputError(f"--mask-track needs a mask image (PNG/JPEG) for frame {options.mask_frame}; "
                             f"got {path}")
        keys.append(Keyframe(options.mask_frame, mask=binarize(io.read_image(path, grey=True), config.mask.threshold)))
    keys += [parse_box(b) for b in options.boxes]
    keys += list(options.keyframes)
    if not keys:
        raise InputError("--mask-track needs a keyframe: --mask IMAGE (with --mask-frame K) or --box x,y,w,h[@K]")
    if frame_count is not None:
        late = [k.index for k in keys if k.index >= frame_count]
        if late:
            raise InputError(f"keyframe {late[0]} is beyond the clip ({frame_count} frames, 0-{frame_count - 1})")
    return FlowTracker(keys, config.track, dilate=config.mask.dilate, on_warning=options.on_warning,
                       advice=options.advice)


def make_mask_source(mask: str | Path | None, config: Config, options: MaskOptions | None = None, *,
                     frame_count: int | None = None) -> MaskSource:
    """``--mask PATH``: one image for the whole clip, a mask video, or a folder of per-frame masks.
    A ``zmq:[req|sub:]ENDPOINT`` spec instead asks a ZeroMQ plugin (see ``make_plugin_mask_source``).
    With ``options`` asking for tracking or automatic masks, see ``make_tracking_source``."""
    if isinstance(mask, str) and not mask.strip():  # an unset shell variable: as a Path, the current folder
        raise InputError("--mask is empty: give a path")
    if options is not None and (options.tracking or options.auto is not None):
        return make_tracking_source(mask, config, options, frame_count=frame_count)
    if mask is None:
        raise InputError("say what to remove: --mask, --box or --mask-auto motion")
    if isinstance(mask, str) and mask.startswith("zmq:"):
        return make_plugin_mask_source(mask, config)
    path = Path(mask)
    if io.is_image_file(path):
        return StaticMask(io.read_image(path, grey=True), config.mask, name=str(path))
    masks, count = io.read_grey_sequence(path)
    return PerFrameMasks(masks, config.mask, name=str(path), count=count)


def note_fps(path: str | Path, fps) -> None:
    """Say so when ``fps`` (the frame rate of a folder of images) is given for a video, which keeps its own."""
    if fps is not None and not Path(str(path)).is_dir():
        _log.warning("note: --fps is the frame rate of a folder of images; %s keeps its own timestamps",
                     Path(str(path)).name)


def check_span(start, end, fps=None) -> None:
    """Library callers' ``start``/``end`` (seconds, >= 0 and > 0) and ``fps`` (> 0) as the command line checks
    them: a string, NaN or a negative start was a TypeError, a ValueError deep inside, or silently taken."""
    for flag, value, least in (("--start", start, 0), ("--end", end, None), ("--fps", fps, None)):
        if value is None:
            continue
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not number or value != value or value in (float("inf"), float("-inf")):
            raise InputError(f"{flag} {value!r}: expected " + ("a frame rate" if flag == "--fps" else "seconds"))
        if (least == 0 and value < 0) or (least is None and value <= 0):
            raise InputError(f"{flag} {value:g}: must be {'0 or more' if least == 0 else 'more than 0'}")


def open_source(path: str | Path, config: Config, *, fps: float | Fraction | None = None,
                start: float | None = None, end: float | None = None):
    """An opened frame reader (context manager) for a file, URL, device or image folder."""
    check_span(start, end, fps)
    note_fps(path, fps)
    reader = io.open_video(path, fps=fps, threads=config.io.decode_threads, start=start, end=end,
                           salvage=config.io.salvage).open()
    if reader.info.bit_depth > 8:  # said once per run here, not by every writer (a chunked run has one per chunk)
        _log.warning("note: %s is %d-bit (%s); streamfill works in 8-bit RGB, so its output is 8-bit",
                     Path(str(path)).name, reader.info.bit_depth, reader.info.pix_fmt)
    if reader.info.alpha:
        _log.warning("note: %s has transparency (an alpha channel); streamfill works in RGB, so its output is "
                     "opaque", Path(str(path)).name)
    if reader.info.interlaced:
        _log.warning("note: %s is interlaced; streamfill fills whole frames (both fields at once) and writes them "
                     "progressive: deinterlace it first for a clean fill", Path(str(path)).name)
    return reader


def note_lost_aspect(output: str | Path, info: io.VideoInfo, config: Config) -> None:
    """Say once per run when ``output`` cannot keep the source's non-square pixels: only H.264 keeps them
    here (FFV1, VP9 and PNG pictures are written with square pixels)."""
    if not info.sample_aspect:
        return
    if io.is_sequence_path(output):
        kind = "PNG pictures have"
    elif config.io.lossless:
        kind = "FFV1 (--lossless) keeps"
    elif Path(str(output)).suffix.lower() in io.VP9_SUFFIXES:
        kind = "VP9 (.webm) keeps"
    else:
        return
    _log.warning("note: %s is written with square pixels: %s no pixel aspect ratio here (the source's is %s); "
                 "H.264 output (.mp4, .mov, .mkv without --lossless) keeps it", Path(str(output)).name, kind,
                 info.sample_aspect)


def open_sink(path: str | Path, info: io.VideoInfo, config: Config, *, remux_from: str | None = None,
              start: float | None = None, end: float | None = None):
    return io.open_output(path, info, config=config.io, remux_from=remux_from, start=start, end=end)


class _PreparedMasks:
    """A MaskSource whose masks are thresholded and dilated like file masks (``mask.threshold/dilate``)."""

    def __init__(self, source: MaskSource, config: Config) -> None:
        self.source = source
        self.config = config

    def pair(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]:
        for frame, mask in self.source.pair(frames):
            yield frame, prepare(mask, self.config.mask)


def make_plugin_mask_source(spec: str, config: Config, *, live: bool = False, stream: str = "") -> MaskSource:
    """``--mask-source zmq:[req|sub:]ENDPOINT``: masks from a ZeroMQ plugin (request/reply by default).

    Offline (``live=False``) every frame waits for its own mask and a silent plugin fails the run after
    ``transport.timeout x (1 + transport.retries)`` s; live runs reuse the last mask instead."""
    return _PreparedMasks(transport.mask_source(spec, config.transport, live=live, stream=stream), config)


def open_stream_sink(spec: str | None, config: Config, *, stream: str = ""):
    """``--sink zmq:[push|pub:]ENDPOINT`` as a context manager (None when ``spec`` is None)."""
    if spec is None:
        return contextlib.nullcontext(None)
    out = transport.sink(spec, config.transport, stream=stream)
    if out.bind and not transport.is_loopback(out.endpoint):
        _log.warning("warning: --sink %s publishes the frames beyond this machine, unencrypted: anyone who can reach "
                     "that address can watch them (tcp://127.0.0.1:PORT keeps them on this machine)", spec)
    return out


class _Tee:
    def __init__(self, sinks: list[FrameSink]) -> None:
        self.sinks = sinks

    def write(self, frame: Frame) -> None:
        for sink in self.sinks:
            sink.write(frame)

    def __enter__(self) -> _Tee:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        return None


def tee(*sinks: FrameSink | None) -> FrameSink:
    """One sink that writes every frame to each of ``sinks`` in turn (None entries are skipped).
    The sinks are opened and closed by their owners, not by the tee."""
    present = [s for s in sinks if s is not None]
    return present[0] if len(present) == 1 else _Tee(present)


def make_fill(config: Config):
    """``fill(image, mask) -> image`` for ``streamfill serve``: masks are thresholded and dilated as file
    masks are, then completed. image H x W x 3 uint8 RGB (not modified), mask H x W uint8 (255 = hole)."""
    completer = make_completer(config)

    def fill(image, mask):
        return completer.fill(image, prepare(mask, config.mask))

    return fill


def make_temporal_fill(config: Config, *, max_streams: int = 4, idle: float = 60.0) -> TemporalFill:
    """The ``fill`` of ``streamfill serve --temporal fast|quality``: a ``TemporalFill`` (per-stream temporal
    completion, look-back by default, look-ahead for requests that ask for it), masks prepared as in
    ``make_fill``."""
    clip_config = merge(config, {"temporal": {"live": False}})
    back_config = merge(config, {"temporal": {"live": True}})
    inpainter = make_inpainter(config)
    completer = make_completer(config, inpainter)

    def open_completion(lookahead: bool):
        # look-ahead: what `process` runs on a clip; look-back: as live runs, each frame answered at once
        if lookahead:
            return make_clip_completion(clip_config, inpainter)
        return _temporal_completion(completer, back_config)

    return TemporalFill(open_completion, lambda mask: prepare(mask, clip_config.mask),
                        lookahead=_temporal_completion(completer, clip_config).ahead,
                        max_streams=max_streams, idle=idle)


# -- streamfill live --------------------------------------------------------------------------------------
class LiveSource:
    """What ``streamfill live`` reads: ``frames`` (an iterable of Frames, iterated in the capture thread),
    ``info`` (a VideoInfo, or None for a ZeroMQ source whose size is known only once frames arrive) and
    ``close()``. Use as a context manager."""

    def __init__(self, frames: Iterable[Frame], info: io.VideoInfo | None, closers: list) -> None:
        self.frames, self.info, self._closers = frames, info, closers

    def close(self) -> None:
        for close in self._closers:
            close()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _looped(reader: io.VideoReader, reopen) -> Iterator[Frame]:
    """A file's frames over and over; pts and indices keep increasing across rounds."""
    pts_offset = index_offset = 0
    try:
        while True:
            first = last = None
            for f in reader:
                first = first or f
                last = f
                yield Frame(f.image, f.pts + pts_offset, f.time_base, f.index + index_offset)
            reader.close()
            if last is None:
                return
            fps = reader.info.fps or Fraction(25)
            step = max(1, round(1 / (fps * last.time_base)))
            pts_offset += last.pts - first.pts + step
            index_offset += last.index + 1
            reader = reopen()
    finally:   # a run stopped mid-round: the reader opened for that round is closed too (its file stayed open)
        reader.close()


def open_live_source(spec: str, config: Config, *, size: str | None = None, fps: float | None = None,
                     input_format: str | None = None, av_options: dict[str, str] | None = None,
                     realtime: bool = False, loop: bool = False, stop=None) -> LiveSource:
    """``--source``: a camera (/dev/videoN, v4l2), a URL (rtsp/http/srt/..., low-latency options and a
    ``live.source_timeout`` read timeout), a ZeroMQ ``zmq:[sub|pull:]ENDPOINT`` frame stream, or a file
    (``realtime``: released at its own frame rate x ``live.speed``; ``loop``: over and over)."""
    kind = source_kind(spec)
    if (realtime or loop) and kind != "file":
        raise InputError("--realtime and --loop apply to file sources only (cameras and streams are live)")
    if kind == "zmq":
        if size or fps or input_format or av_options:
            raise InputError("--size, --fps, --input-format and --av-option do not apply to a zmq: source")
        src = FrameSource(spec, config.transport, timeout=config.live.source_timeout, poll=config.live.poll)
        return LiveSource(src.frames(stop), None, [])

    def reopen() -> io.VideoReader:
        return open_live_reader(spec, size=size, fps=fps, input_format=input_format,
                                timeout=config.live.source_timeout, extra=av_options,
                                threads=config.io.decode_threads, salvage=config.io.salvage).open()

    reader = reopen()
    frames: Iterable[Frame] = _looped(reader, reopen) if loop else reader
    if realtime:
        frames = paced(frames, stop, config.live.speed)
    return LiveSource(frames, reader.info, [reader.close])


def live_target(kind: str, value) -> tuple[str, object]:
    """A live masking target: ("box", (x, y, w, h)) tracked, ("mask", H x W uint8) tracked, or ("static",
    H x W uint8) used as is for every frame."""
    if kind not in ("box", "mask", "static"):
        raise InputError(f"unknown live target kind {kind!r}")
    return kind, value


def make_live_tracker(config: Config):
    """``factory(index, target) -> MaskSource`` for ``pipeline.live.Retarget``: a flow tracker keyed on the
    frame ``index`` for boxes and masks, or the static mask itself. Masks are dilated by ``mask.dilate``."""

    def factory(index: int, target):
        kind, value = target
        if kind == "static":
            return StaticMask(value, config.mask, name="mask")
        key = Keyframe(index=index, box=tuple(value)) if kind == "box" else Keyframe(index=index, mask=value)
        return FlowTracker([key], config.track, dilate=config.mask.dilate, on_warning=lambda message: None,
                           lost_after_cut=True)

    return factory


def make_live_completion(config: Config):
    """The completion stage of live runs: per-frame crop-and-stitch, or with ``live.temporal`` temporal
    completion in look-back-only mode (``temporal.live``: answers each frame at once, never waits for later
    ones)."""
    if not config.live.temporal:
        return make_completer(config)
    return make_completion(merge(config, {"temporal": {"live": True}}))


def open_record_sink(path: str | Path, config: Config, info: io.VideoInfo | None) -> FrameSink:
    """``--record PATH``: H.264 (``live.record_preset``/``record_crf``/``tune``) or FFV1 with ``--lossless``,
    opened at the first frame (size from it, frame rate from ``info`` when known), finalised on close."""

    lcfg = config.live
    iocfg = IOConfig(crf=lcfg.record_crf, preset=lcfg.record_preset, lossless=config.io.lossless)
    tune = None if lcfg.tune == "none" or config.io.lossless else lcfg.tune

    def factory(frame: Frame):
        fps = info.fps if info is not None and info.fps else None
        out = io.VideoInfo(path=str(path), format="", codec="", width=frame.width, height=frame.height,
                           fps=fps or Fraction(30), time_base=frame.time_base, frame_count=None, duration=None,
                           rotation=0, pix_fmt="rgb24")
        return io.open_output(path, out, config=iocfg, tune=tune)

    return LazySink(factory)


def open_v4l2_sink(device: str, info: io.VideoInfo | None, pix_fmt: str = "yuv420p") -> FrameSink:
    """``--v4l2-out /dev/videoN``: a v4l2loopback virtual camera, opened at the first frame."""

    fps = info.fps if info is not None and info.fps else 30
    return LazySink(lambda frame: V4L2Writer(device, frame.width, frame.height, fps, pix_fmt))


def make_live_motion_masks(config: Config) -> MaskSource:
    """``--mask-auto motion`` for live runs: moving things, from a background model (masks.motion). Its
    warm-up (``track.motion_warmup`` frames) is held once at the start, then masks follow frame by frame."""
    from streamfill.masks.motion import MotionMasks

    return MotionMasks(config.track, dilate=config.mask.dilate)


def open_control(bind: str, handler, config: Config) -> ControlServer:
    """``--control ENDPOINT``: the loopback JSON request/reply socket of a live run."""
    return ControlServer(bind, handler, poll=config.live.poll)
