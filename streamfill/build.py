"""The one place that picks concrete classes from a config: plain functions and dicts, readable with grep."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

from streamfill import io, transport
from streamfill.backends.classical import ClassicalInpainter
from streamfill.config import Config
from streamfill.errors import EngineError
from streamfill.masks import PerFrameMasks, StaticMask, prepare
from streamfill.pipeline.complete import Completer
from streamfill.temporal import TemporalCompletion
from streamfill.types import Frame, FrameSink, Inpainter, Mask, MaskSource

INPAINTERS = {
    "telea": lambda config: ClassicalInpainter("telea", config.engine.radius),
    "ns": lambda config: ClassicalInpainter("ns", config.engine.radius),
}


def make_inpainter(config: Config) -> Inpainter:
    try:
        factory = INPAINTERS[config.engine.name]
    except KeyError:
        raise EngineError(f"unknown engine {config.engine.name!r} (known: {', '.join(INPAINTERS)})") from None
    return factory(config)


def make_completer(config: Config, inpainter: Inpainter | None = None) -> Completer:
    return Completer(inpainter or make_inpainter(config), config.crop, config.mask)


def make_completion(config: Config, inpainter: Inpainter | None = None) -> Completer | TemporalCompletion:
    """The completion stage of ``process``: per-frame (``temporal.mode = "off"``) or temporal, whose
    never-seen regions go to the per-frame completer's ``fill``. Both have ``stream(pairs)`` and
    ``frames_filled``."""
    completer = make_completer(config, inpainter)
    if config.temporal.mode == "off":
        return completer
    return TemporalCompletion(completer.fill, config.temporal, feather=config.mask.feather)


def make_mask_source(mask: str | Path, config: Config) -> MaskSource:
    """``--mask PATH``: one image for the whole clip, a mask video, or a folder of per-frame masks.
    A ``zmq:[req|sub:]ENDPOINT`` spec instead asks a ZeroMQ plugin (see ``make_plugin_mask_source``)."""
    if isinstance(mask, str) and mask.startswith("zmq:"):
        return make_plugin_mask_source(mask, config)
    path = Path(mask)
    if io.is_image_file(path):
        return StaticMask(io.read_image(path, grey=True), config.mask, name=str(path))
    masks, count = io.read_grey_sequence(path)
    return PerFrameMasks(masks, config.mask, name=str(path), count=count)


def open_source(path: str | Path, config: Config, *, fps: float | Fraction | None = None,
                start: float | None = None, end: float | None = None):
    """An opened frame reader (context manager) for a file, URL, device or image folder."""
    reader = io.open_video(path, fps=fps, threads=config.io.decode_threads, start=start, end=end)
    return reader.open()


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
    return transport.sink(spec, config.transport, stream=stream)


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
