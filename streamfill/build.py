"""The one place that picks concrete classes from a config: plain functions and dicts, readable with grep."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from streamfill import io
from streamfill.backends.classical import ClassicalInpainter
from streamfill.config import Config
from streamfill.errors import EngineError
from streamfill.masks import PerFrameMasks, StaticMask
from streamfill.pipeline.complete import Completer
from streamfill.types import Inpainter, MaskSource

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


def make_mask_source(mask: str | Path, config: Config) -> MaskSource:
    """``--mask PATH``: one image for the whole clip, a mask video, or a folder of per-frame masks."""
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
