"""``streamfill bench``: speed and memory of the inpainting engines, and an end-to-end run on a clip.

Engine rows: for each engine, working size and batch, the time of one ``inpaint`` call on random crops with a
centred hole, divided by the batch (ms per crop): median and 95th percentile of the wall time over ``runs``
timed calls after ``warmup`` untimed ones, the median CPU time of the process over the same calls (all its
threads: what the call cost the machine, much less sensitive to other jobs than the wall time), crops per
second, peak memory (CUDA: peak allocated bytes; CPU: the process's peak resident set, reset before the
engine's warm-up where Linux allows it), and the 1-minute load average before and after the row. Engines of one
(size, batch) are timed interleaved - one call each in turn, the order reversed every other run (A B B A ...) -
so that a neighbour's load on a shared machine hits them alike; a speed-up is the median over runs of the
ratio of the two calls of the same run (``speedups``).

End-to-end: decode -> synthetic occluder mask (streamfill.masks.synthetic) -> completion -> encode (H.264 into
a temporary file), each stage timed per frame. Nothing here prints; progress goes to a callback.
"""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from streamfill import build
from streamfill.config import Config, merge
from streamfill.masks import prepare
from streamfill.masks.synthetic import MovingOccluder
from streamfill.masks.synthetic import composite as paint_occluder

Progress = Callable[[str], None]


@dataclass
class BenchRow:
    """One engine at one working size and batch. Times in ms per crop; ``peak_mb`` in MiB (see module doc)."""

    engine: str
    backend: str
    device: str
    size: int
    batch: int
    precision: str
    median_ms: float
    p95_ms: float
    crops_per_s: float
    peak_mb: float | None
    runs: int
    setup_s: float
    reason: str | None = None
    cpu_median_ms: float = 0.0
    load_avg: tuple[float, float] | None = None      # 1-minute load average before and after the row
    wall_ms: list[float] = field(default_factory=list)  # per run, in run order (for same-run ratios)
    cpu_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClipResult:
    """End-to-end run: ``stages`` maps decode / masks / completion / encode to mean ms per frame."""

    engine: str
    backend: str
    clip: str
    width: int
    height: int
    frames: int
    crops: int
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "fps": self.fps}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated ``q``-th percentile (0-100) of ``values``."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


class PeakMemory:
    """Peak memory over a stretch of work: ``start()`` then ``stop() -> MiB`` (None when unknown)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.device = device

    def start(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:  # Linux: "5" resets the peak resident set size (VmHWM) to the current size
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass

    def stop(self) -> float | None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None


def sample_crops(size: int, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` random RGB crops (N x S x S x 3 uint8, smooth noise) with a centred hole of a quarter of the
    area (N x S x S uint8, 255 = hole)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (batch, size // 8, size // 8, 3), dtype=np.uint8)
    images = np.ascontiguousarray(np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2))
    masks = np.zeros((batch, size, size), np.uint8)
    masks[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 255
    return images, masks


@dataclass
class _Loaded:
    engine: str
    choice: object
    inpainter: object
    setup_s: float


def _engine_config(config: Config, engine: str, precision: str | None) -> Config:
    values = {"name": engine}
    if precision:
        values["precision"] = precision
    return merge(config, {"engine": values})


def random_generator(config: Config, seed: int = 0):
    """A DeepFill v2 generator of ``config.model``'s width with random weights (speed measurements only)."""
    import torch

    from streamfill.model import Generator

    torch.manual_seed(seed)
    return Generator(config.model).eval()


def load_engine(config: Config, engine: str, sizes: Sequence[int], precision: str | None = None, generator=None):
    """Choose and load ``engine`` (building cached engines when needed); returns (choice, inpainter, setup s).
    A ``generator`` given is copied, never changed."""
    cfg = _engine_config(config, engine, precision)
    t0 = time.perf_counter()
    choice = build.choose_engine(cfg)
    if choice.neural:
        # a copy each: eager torch converts its generator in place (device, dtype, channels_last), which would
        # hand the next engine fp16 weights where `process` gives it fp32 ones
        own = None if generator is None else copy.deepcopy(generator)
        inpainter, _ = build.load_neural(cfg, choice, own, sizes=tuple(sizes))
    else:
        inpainter = build.make_neural_inpainter(cfg, choice)
    return choice, inpainter, time.perf_counter() - t0


def bench_engines(config: Config, engines: Sequence[str], sizes: Sequence[int], batches: Sequence[int] = (1,),
                  precision: str | None = None, runs: int = 10, warmup: int = 2, generator=None,
                  progress: Progress | None = None) -> list[BenchRow]:
    """Time every engine at every (size, batch); see the module docstring. ``generator`` (a loaded or random
    generator) is shared by all neural engines; None loads ``[engine] weights``. Returns one row per
    engine x size x batch, in that order of nesting (size, batch outer; engines inner)."""
    say = progress or (lambda _msg: None)
    loaded = []
    for engine in dict.fromkeys(engines):  # each once: the timings are kept by engine name
        say(f"loading {engine}")
        choice, inpainter, setup = load_engine(config, engine, sizes, precision, generator)
        loaded.append(_Loaded(engine, choice, inpainter, setup))
    rows = []
    for size in sizes:
        for batch in batches:
            images, masks = sample_crops(size, batch)
            peaks = {}
            for item in loaded:
                say(f"warming up {item.engine} at {size}x{size} x{batch}")
                meter = PeakMemory(item.choice.device)
                meter.start()
                for _ in range(max(1, warmup)):
                    item.inpainter.inpaint(images, masks)
                peaks[item.engine] = meter.stop()
            times: dict[str, list[float]] = {item.engine: [] for item in loaded}
            cpu: dict[str, list[float]] = {item.engine: [] for item in loaded}
            load_before = _load()
            for r in range(runs):
                say(f"{size}x{size} x{batch}: run {r + 1}/{runs}")
                for item in (loaded if r % 2 == 0 else loaded[::-1]):
                    c0, t0 = time.process_time(), time.perf_counter()
                    item.inpainter.inpaint(images, masks)
                    t1, c1 = time.perf_counter(), time.process_time()
                    times[item.engine].append((t1 - t0) * 1000 / batch)
                    cpu[item.engine].append((c1 - c0) * 1000 / batch)
            load = (load_before, _load())
            for item in loaded:
                t = times[item.engine]
                med = statistics.median(t)
                rows.append(BenchRow(
                    engine=item.engine, backend=item.choice.backend, device=item.choice.device, size=size,
                    batch=batch, precision=item.choice.precision, median_ms=med, p95_ms=percentile(t, 95),
                    crops_per_s=1000.0 / med if med > 0 else 0.0, peak_mb=peaks[item.engine], runs=runs,
                    setup_s=item.setup_s, reason=item.choice.reason,
                    cpu_median_ms=statistics.median(cpu[item.engine]), load_avg=load, wall_ms=t,
                    cpu_ms=cpu[item.engine],
                ))
    return rows


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def same_run_ratio(base: Sequence[float], other: Sequence[float]) -> float:
    """The median over runs of ``base[i] / other[i]`` (two calls timed in the same run)."""
    ratios = [b / o for b, o in zip(base, other, strict=True) if o > 0]
    return statistics.median(ratios) if ratios else 0.0


@dataclass(frozen=True)
class Speedup:
    """``engine`` vs the baseline at one size and batch: medians of same-run ratios of wall and CPU time."""

    engine: str
    size: int
    batch: int
    wall: float
    cpu: float


def speedups(rows: Sequence[BenchRow], baseline: str = "torch") -> list[Speedup]:
    """For every row that has a ``baseline`` row (matched on ``backend``) at the same size and batch: the
    median over runs of (baseline time / engine time) of the same run, for wall and CPU time."""
    base = {(r.size, r.batch): r for r in rows if r.backend == baseline}
    out = []
    for r in rows:
        b = base.get((r.size, r.batch))
        if r.backend == baseline or b is None or not r.wall_ms:
            continue
        out.append(Speedup(r.engine, r.size, r.batch, same_run_ratio(b.wall_ms, r.wall_ms),
                           same_run_ratio(b.cpu_ms, r.cpu_ms)))
    return out


def bench_clip(config: Config, engine: str, clip: str | os.PathLike | None = None, frames: int | None = 25,
               precision: str | None = None, generator=None, progress: Progress | None = None) -> ClipResult:
    """Run decode -> synthetic occluder -> completion -> encode over the first ``frames`` frames of ``clip``
    (default: the bundled demo clip) with ``engine``; per-stage mean ms per frame. The encoded output goes to a
    temporary directory and is deleted."""
    from importlib import resources

    say = progress or (lambda _msg: None)
    clip = Path(clip) if clip is not None else Path(str(resources.files("streamfill") / "data" / "demo.mp4"))
    cfg = _engine_config(config, engine, precision)
    say(f"loading {engine} for the clip run")
    choice, inpainter, _ = load_engine(config, engine, cfg.crop.sizes, precision, generator)
    completer = build.make_completer(cfg, inpainter)
    occluder = MovingOccluder(seed=7)
    stages = {"decode": 0.0, "masks": 0.0, "completion": 0.0, "encode": 0.0}
    count = 0
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="streamfill-bench-") as tmp, \
            build.open_source(clip, cfg) as reader:
        info = reader.info
        with build.open_sink(Path(tmp) / "bench.mp4", info, cfg) as sink:
            it = iter(reader)
            while frames is None or count < frames:
                t0 = time.perf_counter()
                frame = next(it, None)
                t1 = time.perf_counter()
                if frame is None:
                    break
                mask, colour = occluder.at(frame.index, frame.height, frame.width)
                occluded = paint_occluder(frame.image, mask, colour)
                mask = prepare(mask, cfg.mask)
                t2 = time.perf_counter()
                filled = completer.fill(occluded, mask)
                t3 = time.perf_counter()
                sink.write(frame.with_image(filled))
                t4 = time.perf_counter()
                for name, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    stages[name] += dt
                count += 1
                say(f"clip: frame {count}")
            t_close = time.perf_counter()
        stages["encode"] += time.perf_counter() - t_close  # flushing the encoder
    seconds = time.perf_counter() - t_start
    per_frame = {k: 1000 * v / max(count, 1) for k, v in stages.items()}
    return ClipResult(engine=engine, backend=choice.backend, clip=str(clip), width=info.width, height=info.height,
                      frames=count, crops=completer.crops_filled, seconds=seconds, stages=per_frame)
