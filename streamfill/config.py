"""Configuration: one frozen dataclass per stage, validated on construction.

``configs/default.toml`` lists every key with its default; ``load_config`` reads a TOML file (a preset holds
only the keys it changes) and applies overrides, e.g. from command-line flags. Errors name the key, the value
and the allowed range.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from streamfill.errors import ConfigError


def check_range(key: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    """Raise ConfigError unless lo <= value <= hi (either bound may be None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} = {value!r}: expected a number")
    if value != value:  # NaN passes every comparison
        raise ConfigError(f"{key} = nan: expected a number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise ConfigError(f"{key} = {value!r}: must be in [{lo_s}, {hi_s}]")


def check_choice(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{key} = {value!r}: must be one of {', '.join(map(str, choices))}")


X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)


@dataclass(frozen=True)
class IOConfig:
    """Decoding and encoding: x264 quality and speed for H.264 output, FFV1 for lossless output."""

    crf: int = 18
    preset: str = "medium"
    lossless: bool = False
    decode_threads: int = 0
    salvage: bool = False

    def __post_init__(self) -> None:
        check_range("io.crf", self.crf, 0, 51)
        check_choice("io.preset", self.preset, X264_PRESETS)
        check_range("io.decode_threads", self.decode_threads, 0, 64)


@dataclass(frozen=True)
class MaskConfig:
    """How mask pixels become the hole: threshold, safety margin (dilate) and feather."""

    dilate: int = 4
    feather: int = 3
    threshold: int = 127

    def __post_init__(self) -> None:
        check_range("mask.dilate", self.dilate, 0, 256)
        check_range("mask.feather", self.feather, 0, 256)
        check_range("mask.threshold", self.threshold, 0, 254)


@dataclass(frozen=True)
class CropConfig:
    """Crop-and-stitch: the working sizes a hole's crop is resized to and the context around it."""

    sizes: tuple[int, ...] = (256, 384, 512)
    context: float = 0.5
    min_context: int = 16

    def __post_init__(self) -> None:
        sizes = self.sizes
        if not isinstance(sizes, (list, tuple)):
            raise ConfigError(f"crop.sizes = {sizes!r}: expected a list of working sizes, e.g. [256, 384, 512]")
        if not sizes:
            raise ConfigError("crop.sizes = []: give at least one working size")
        for s in sizes:
            check_range("crop.sizes[]", s, 64, 2048)
            if s != int(s) or s % 8:
                raise ConfigError(f"crop.sizes = {list(sizes)!r}: every size must be a multiple of 8")
        # sorted, each once (a compiled engine's cache key names them: [512, 256] must be the same engine)
        object.__setattr__(self, "sizes", tuple(sorted({int(s) for s in sizes})))
        check_range("crop.context", self.context, 0.0, 4.0)
        check_range("crop.min_context", self.min_context, 0, 1024)


ENGINES = ("telea", "ns", "auto", "deepfill", "torch", "compile", "onnx", "tensorrt")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class EngineConfig:
    """Inpainting engine. Classical: telea, ns. Neural (DeepFill v2): torch, compile, onnx, tensorrt, or
    deepfill = the best of them for the device (auto = deepfill, or telea when no weights are installed)."""

    name: str = "telea"
    radius: int = 5
    weights: str = ""
    precision: str = "auto"
    device: str = "auto"
    cache_dir: str = ""
    max_batch: int = 4
    threads: int = 0

    def __post_init__(self) -> None:
        check_choice("engine.name", self.name, ENGINES)
        check_range("engine.radius", self.radius, 1, 64)
        check_choice("engine.precision", self.precision, PRECISIONS)
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit())
        ):
            raise ConfigError(f"engine.device = {self.device!r}: must be auto, cpu, cuda or cuda:N")
        if not isinstance(self.weights, str):
            raise ConfigError(f"engine.weights = {self.weights!r}: expected a path string (\"\" = shipped default)")
        if not isinstance(self.cache_dir, str):
            raise ConfigError(f"engine.cache_dir = {self.cache_dir!r}: expected a path string")
        check_range("engine.max_batch", self.max_batch, 1, 64)
        check_range("engine.threads", self.threads, 0, 256)


FLOW_PRESETS = ("ultrafast", "fast", "medium")


@dataclass(frozen=True)
class TrackConfig:
    """Mask tracking (``--mask-track``, ``--box``) and automatic masks (``--mask-auto motion``)."""

    preset: str = "fast"
    scale: float = 0.5
    fb_threshold: float = 1.0
    reanchor: float = 0.35
    band: int = 4
    anchor_corr: float = 0.85
    anchor_patience: int = 25
    rigid_tolerance: float = 1.0
    colour_bins: int = 16
    model_rate: float = 0.05
    backfill: int = 0
    max_backward: int = 150
    cut_threshold: float = 0.4
    outline: bool = True
    motion_scale: float = 0.5
    motion_history: int = 300
    motion_var_threshold: float = 25.0
    motion_min_area: int = 150
    motion_hold: int = 5
    motion_warmup: int = 25
    motion_dilate: int = 6

    def __post_init__(self) -> None:
        check_choice("track.preset", self.preset, FLOW_PRESETS)
        check_range("track.scale", self.scale, 0.1, 1.0)
        check_range("track.fb_threshold", self.fb_threshold, 0.0, 100.0)
        check_range("track.reanchor", self.reanchor, 0.0, 1.0)
        check_range("track.band", self.band, 0, 64)
        check_range("track.anchor_corr", self.anchor_corr, 0.0, 1.0)
        check_range("track.anchor_patience", self.anchor_patience, 0, 100000)
        check_range("track.rigid_tolerance", self.rigid_tolerance, 0.0, 100.0)
        check_choice("track.colour_bins", self.colour_bins, (8, 16, 32))
        check_range("track.model_rate", self.model_rate, 0.0, 1.0)
        check_range("track.backfill", self.backfill, 0, 10000)
        check_range("track.max_backward", self.max_backward, 0, 100000)
        check_range("track.cut_threshold", self.cut_threshold, 0.0, 1.0)
        if not isinstance(self.outline, bool):
            raise ConfigError(f"track.outline = {self.outline!r}: expected true or false")
        check_range("track.motion_scale", self.motion_scale, 0.1, 1.0)
        check_range("track.motion_history", self.motion_history, 1, 100000)
        check_range("track.motion_var_threshold", self.motion_var_threshold, 1.0, 1000.0)
        check_range("track.motion_min_area", self.motion_min_area, 0, 10**8)
        check_range("track.motion_hold", self.motion_hold, 0, 1000)
        check_range("track.motion_warmup", self.motion_warmup, 0, 1000)
        check_range("track.motion_dilate", self.motion_dilate, 0, 256)


ATTENTION_DOWNSAMPLING = ("align_corners", "nearest")
MODEL_PREFILLS = ("none", "pushpull")  # generator start for the hole: zeros (official) | push-pull fill + residual


@dataclass(frozen=True)
class ModelConfig:
    """DeepFill v2 generator settings. ``cnum`` is the official width knob: gated feature widths are
    cnum/2, cnum and 2*cnum (48 -> 24/48/96, the official model, 4,052,478 parameters)."""

    cnum: int = 48
    guidance: bool = False
    attention_fuse: bool = True
    softmax_scale: float = 10.0
    attention_downsampling: str = "align_corners"
    prefill: str = "none"

    def __post_init__(self) -> None:
        check_range("model.cnum", self.cnum, 8, 512)
        if not isinstance(self.cnum, int):  # a whole float (48.0, as JSON metadata may hold it) is that int
            if not float(self.cnum).is_integer():
                raise ConfigError(f"model.cnum = {self.cnum!r}: must be a whole number")
            object.__setattr__(self, "cnum", int(self.cnum))
        if self.cnum % 4:
            raise ConfigError(f"model.cnum = {self.cnum!r}: must be a multiple of 4")
        if not isinstance(self.guidance, bool):
            raise ConfigError(f"model.guidance = {self.guidance!r}: expected true or false")
        if not isinstance(self.attention_fuse, bool):
            raise ConfigError(f"model.attention_fuse = {self.attention_fuse!r}: expected true or false")
        check_range("model.softmax_scale", self.softmax_scale, 0.0, 1000.0)
        check_choice("model.attention_downsampling", self.attention_downsampling, ATTENTION_DOWNSAMPLING)
        check_choice("model.prefill", self.prefill, MODEL_PREFILLS)


TRANSPORT_ENCODINGS = ("raw", "png", "jpeg")


@dataclass(frozen=True)
class TransportConfig:
    """ZeroMQ plugins, sinks and ``streamfill serve`` (see plugins/PROTOCOL.md). Times are in seconds."""

    timeout: float = 5.0
    retries: int = 2
    live_timeout: float = 0.05
    window: int = 2
    send_timeout: float = 10.0
    pub_hwm: int = 4
    push_hwm: int = 16
    sub_buffer: int = 256
    encoding: str = "raw"
    jpeg_quality: int = 90
    max_message_bytes: int = 128 * 1024 * 1024
    max_side: int = 16384
    queue: int = 32
    queue_bytes: int = 256 * 1024 * 1024
    workers: int = 1

    def __post_init__(self) -> None:
        check_range("transport.timeout", self.timeout, 0.01, 3600.0)
        check_range("transport.retries", self.retries, 0, 100)
        check_range("transport.live_timeout", self.live_timeout, 0.0, 60.0)
        check_range("transport.window", self.window, 1, 64)
        check_range("transport.send_timeout", self.send_timeout, 0.01, 3600.0)
        check_range("transport.pub_hwm", self.pub_hwm, 1, 10000)
        check_range("transport.push_hwm", self.push_hwm, 1, 10000)
        check_range("transport.sub_buffer", self.sub_buffer, 1, 100000)
        check_choice("transport.encoding", self.encoding, TRANSPORT_ENCODINGS)
        check_range("transport.jpeg_quality", self.jpeg_quality, 1, 100)
        check_range("transport.max_message_bytes", self.max_message_bytes, 1024, 2**31 - 1)
        check_range("transport.max_side", self.max_side, 16, 32768)
        check_range("transport.queue", self.queue, 1, 10000)
        check_range("transport.queue_bytes", self.queue_bytes, 1024 * 1024, 2**40)
        check_range("transport.workers", self.workers, 1, 64)


LIVE_POLICIES = ("latest", "block")
X264_TUNES = ("zerolatency", "none")


@dataclass(frozen=True)
class LiveConfig:
    """``streamfill live``: threaded stages with bounded queues (see ``streamfill.pipeline.live``)."""

    capture_queue: int = 1
    mask_queue: int = 1
    output_queue: int = 2
    policy: str = "latest"
    poll: float = 0.05
    join_timeout: float = 1.0
    stats_interval: float = 1.0
    speed: float = 1.0
    record_preset: str = "veryfast"
    record_crf: int = 23
    tune: str = "zerolatency"
    model_cnum: int = 0
    source_timeout: float = 5.0
    temporal: bool = False

    def __post_init__(self) -> None:
        check_range("live.capture_queue", self.capture_queue, 1, 64)
        check_range("live.mask_queue", self.mask_queue, 1, 64)
        check_range("live.output_queue", self.output_queue, 1, 64)
        check_choice("live.policy", self.policy, LIVE_POLICIES)
        check_range("live.poll", self.poll, 0.001, 1.0)
        check_range("live.join_timeout", self.join_timeout, 0.01, 60.0)
        check_range("live.stats_interval", self.stats_interval, 0.05, 3600.0)
        check_range("live.speed", self.speed, 0.01, 100.0)
        check_choice("live.record_preset", self.record_preset, X264_PRESETS)
        check_range("live.record_crf", self.record_crf, 0, 51)
        check_choice("live.tune", self.tune, X264_TUNES)
        check_range("live.model_cnum", self.model_cnum, 0, 512)
        if self.model_cnum % 4 or 0 < self.model_cnum < 8:  # (it becomes [model] cnum, which is 8 to 512)
            raise ConfigError(f"live.model_cnum = {self.model_cnum!r}: must be 0 or a multiple of 4 from 8 to 512")
        check_range("live.source_timeout", self.source_timeout, 0.1, 3600.0)
        if not isinstance(self.temporal, bool):
            raise ConfigError(f"live.temporal = {self.temporal!r}: expected true or false")


TEMPORAL_MODES = ("off", "fast", "quality")


@dataclass(frozen=True)
class TemporalConfig:
    """Temporal completion (``streamfill.temporal``): real pixels from other frames first, the engine only for
    what no frame shows. ``window`` frames are held on each side (look-back only when ``live``); 0 = by mode
    (``fast`` 10, ``quality`` 15: quality blends more frames and gains from seeing further)."""

    mode: str = "fast"
    window: int = 0
    live: bool = False
    flow_scale: float = 0.5
    fb_threshold: float = 1.0
    background: bool = True
    background_samples: int = 5
    background_stride: int = 2
    shake: float = 0.03
    seam: int = 6
    speck_area: int = 64

    def __post_init__(self) -> None:
        check_choice("temporal.mode", self.mode, TEMPORAL_MODES)
        check_range("temporal.window", self.window, 0, 100)
        if not isinstance(self.live, bool):
            raise ConfigError(f"temporal.live = {self.live!r}: expected true or false")
        check_range("temporal.flow_scale", self.flow_scale, 0.1, 1.0)
        check_range("temporal.fb_threshold", self.fb_threshold, 0.05, 100.0)
        if not isinstance(self.background, bool):
            raise ConfigError(f"temporal.background = {self.background!r}: expected true or false")
        check_range("temporal.background_samples", self.background_samples, 1, 63)
        check_range("temporal.background_stride", self.background_stride, 1, 1000)
        check_range("temporal.shake", self.shake, 0.0, 0.5)
        check_range("temporal.seam", self.seam, 0, 64)
        check_range("temporal.speck_area", self.speck_area, 0, 10**6)


@dataclass(frozen=True)
class Config:
    io: IOConfig = field(default_factory=IOConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)


def _section_types() -> dict[str, type]:
    return {f.name: f.type if isinstance(f.type, type) else globals()[f.type] for f in fields(Config)}


def _build_section(name: str, cls: type, values: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown key {name}.{unknown[0]} (known: {', '.join(sorted(known))})")
    for f in fields(cls):
        # whole-number keys (counts, pixels, levels) take 4 or 4.0, not 4.5 (OpenCV would fail on it later)
        value = values.get(f.name)
        if type(f.default) is int and isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"{name}.{f.name} = {value!r}: expected a whole number")
            if abs(value) < 2**53:  # beyond that it stays a float, for the range check to name as written
                values[f.name] = int(value)
        # on/off keys: "false" (a string) or 1 is not a switch ("false" used to turn lossless on)
        if type(f.default) is bool and not isinstance(value, bool):
            raise ConfigError(f"{name}.{f.name} = {value!r}: expected true or false")
    return cls(**values)


def merge(config: Config, overrides: dict[str, dict[str, Any]]) -> Config:
    """A copy of ``config`` with ``{section: {key: value}}`` applied (None values are ignored)."""
    sections = _section_types()
    changed = {}
    for section, values in overrides.items():
        if section not in sections:
            raise ConfigError(f"unknown config section [{section}] (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table of keys, e.g. [{section}] on a line of its own with "
                              f"key = value lines below it; got {values!r}")
        values = {k: v for k, v in values.items() if v is not None}
        current = dataclasses.asdict(getattr(config, section))
        current.update(values)
        changed[section] = _build_section(section, sections[section], current)
    return dataclasses.replace(config, **changed)


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The tables of a TOML file; ConfigError (naming ``what`` and the path) when missing or invalid."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
        return tomllib.loads(text.removeprefix("\ufeff"))  # a byte-order mark (Windows editors) is no statement
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder; give a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not valid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Defaults, then the TOML file at ``path`` (if any), then ``overrides``."""
    config = Config()
    if path is not None:
        config = merge(config, read_toml(path))
    if overrides:
        config = merge(config, overrides)
    return config
