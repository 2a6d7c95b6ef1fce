"""Embeddable functions for host applications and the CLI. They never print or exit; they raise the typed
errors of ``streamfill.errors`` and report progress through callbacks."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path

import numpy as np

from streamfill import build, io, transport
from streamfill.config import Config
from streamfill.errors import InputError
from streamfill.masks import prepare
from streamfill.masks.synthetic import MovingOccluder
from streamfill.masks.synthetic import composite as paint_occluder
from streamfill.pipeline.run import RunStats, run
from streamfill.types import Frame


@dataclass
class ProcessResult:
    output: str
    frames: int
    filled: int
    seconds: float
    skipped_streams: list[str] = field(default_factory=list)
    pts_adjusted: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


Progress = Callable[[int, int | None], None]
"""progress(frames_done, frames_total_or_None)."""


def info(path: str | Path, *, fps: float | None = None) -> io.VideoInfo:
    """Probe a video file, URL or image folder (with ``fps``) without decoding it."""
    reader = io.open_video(path, fps=fps)
    with reader.open():
        return reader.info


def process(input: str | Path, output: str | Path, *, mask: str | Path, config: Config | None = None,
            fps: float | Fraction | None = None, start: float | None = None, end: float | None = None,
            progress: Progress | None = None, sink: str | None = None) -> ProcessResult:
    """Remove what ``mask`` marks from every frame of ``input`` and write ``output``.

    ``mask`` may also be a ``zmq:[req|sub:]ENDPOINT`` spec (masks from a plugin, see plugins/PROTOCOL.md);
    ``sink`` a ``zmq:[push|pub:]ENDPOINT`` spec that receives every output frame as well as ``output``.

    Every input frame is written with its source pts; audio is copied unchanged; the output appears under
    its final name only when complete. Raises InputError/DecodeError/MaskError/OutputError/EngineError.
    """
    config = config or Config()
    if start is not None and end is not None and end <= start:
        raise InputError(f"--end ({end}) must be after --start ({start})")
    t0 = time.perf_counter()
    with build.open_source(input, config, fps=fps, start=start, end=end) as reader:
        source_info = reader.info
        masks = build.make_mask_source(mask, config)
        completer = build.make_completion(config)
        io.check_output_path(output, inputs=(input, mask))
        total = _expected_frames(source_info, start, end)
        remux = None if Path(str(input)).is_dir() else str(input)
        with (build.open_sink(output, source_info, config, remux_from=remux, start=start, end=end) as out,
              build.open_stream_sink(sink, config) as extra):
            stats = run(reader, masks, completer, build.tee(out, extra),
                        progress=(lambda s: progress(s.frames, total)) if progress else None)
    return ProcessResult(output=str(output), frames=stats.frames, filled=completer.frames_filled,
                         seconds=time.perf_counter() - t0, skipped_streams=list(out.skipped_streams),
                         pts_adjusted=out.pts_adjusted)


def _expected_frames(info: io.VideoInfo, start: float | None, end: float | None) -> int | None:
    if info.frame_count is None:
        return None
    if start is None and end is None:
        return info.frame_count
    if info.fps is None or info.duration is None:
        return None
    a = start or 0.0
    b = min(end if end is not None else info.duration, info.duration)
    return max(0, math.ceil((b - a) * float(info.fps)))


def serve(bind: str = "tcp://127.0.0.1:5555", *, config: Config | None = None,
          curve_keys: str | Path | None = None, insecure: bool = False, stop: threading.Event | None = None,
          on_ready: Callable[[str], None] | None = None, fill=None) -> dict[str, int]:
    """Run ``streamfill serve`` until ``stop`` is set (or KeyboardInterrupt); returns the request counters.

    Host applications send ``frame`` messages carrying image + mask (plugins/PROTOCOL.md) and get
    ``result`` messages with the filled frame. Binding beyond loopback requires ``curve_keys`` (a
    ``streamfill keys`` directory) unless ``insecure``. ``on_ready(endpoint)`` is called once bound.
    ``fill`` replaces the completion function (default: ``build.make_fill(config)``).
    """
    config = config or Config()
    if not transport.is_loopback(bind) and curve_keys is None and not insecure:
        raise InputError(f"--bind {bind} is reachable from other machines: protect it with --curve-keys DIR "
                         "(see `streamfill keys`) or pass --insecure")
    service = transport.ServeService(bind, fill or build.make_fill(config), config.transport,
                                     curve_dir=curve_keys, stop=stop,
                                     info={"mask_dilate": config.mask.dilate, "mask_threshold": config.mask.threshold})
    with service:
        if on_ready is not None:
            on_ready(service.endpoint)
        while not service.wait(0.5):
            pass
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
    into ``out_dir`` and returns the PSNR (dB) of the filled region against the clean original (and of the
    occluded input there, for reference)."""
    config = config or Config()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clip = demo_clip()
    occluder = MovingOccluder(seed=7)
    completer = build.make_completer(config)
    paths = {k: out / f"demo_{k}.mp4" for k in ("input", "output", "side_by_side")}
    for p in paths.values():
        io.check_output_path(p, inputs=(clip,))
    sse = sse_in = 0.0
    count = frames = 0
    t0 = time.perf_counter()
    with build.open_source(clip, config) as reader:
        info = reader.info
        wide = io.VideoInfo(**{**info.__dict__, "width": info.width * 2})
        with (build.open_sink(paths["input"], info, config, remux_from=str(clip)) as w_in,
              build.open_sink(paths["output"], info, config, remux_from=str(clip)) as w_out,
              build.open_sink(paths["side_by_side"], wide, config, remux_from=str(clip)) as w_sbs):
            for frame in reader:
                mask, colour = occluder.at(frame.index, frame.height, frame.width)
                occluded = paint_occluder(frame.image, mask, colour)
                filled = completer.fill(occluded, prepare(mask, config.mask))
                w_in.write(frame.with_image(occluded))
                w_out.write(frame.with_image(filled))
                w_sbs.write(frame.with_image(np.concatenate([occluded, filled], axis=1)))
                hole = mask > 0
                clean = frame.image[hole].astype(np.float64)
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


__all__ = ["DemoResult", "Frame", "ProcessResult", "RunStats", "demo", "demo_clip", "info", "keys", "process",
           "serve"]
