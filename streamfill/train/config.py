"""Training configuration: frozen dataclasses loaded from ``configs/train/*.toml``.

The training config is separate from the product config (``streamfill.config``): it describes one run. A TOML
file holds any subset of the sections below; missing keys keep their defaults. Errors name key, value, range.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from streamfill.config import ModelConfig, check_choice, check_range, read_toml
from streamfill.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    """Where training crops come from and how they are augmented."""

    crop: int = 256  # side of the square training crop (multiple of 8)
    context_min: float = 1.0  # the crop covers between 1/context_max and 1/context_min ...
    context_max: float = 3.0  # ... of the image's shorter side (random scale, log-uniform)
    flip: bool = True  # random horizontal flip
    rotate: bool = False  # random 90-degree rotations and vertical flips
    color: float = 0.0  # probability of a colour augmentation: channel permutation + brightness/contrast
    val_fraction: float = 0.1  # share of images (by a hash of the file name) held out for validation
    val_samples: int = 24  # fixed validation crops (with fixed masks and sketches)
    video_frames: int = 48  # random frames kept per video file (reservoir sample, one decoding pass)
    video_block: int = 25  # frames are split into train/val in blocks of this many (no near-duplicates)
    cache_images: int = 512  # decoded images kept in memory (LRU)

    def __post_init__(self) -> None:
        check_range("data.crop", self.crop, 32, 4096)
        if self.crop % 8:
            raise ConfigError(f"data.crop = {self.crop}: must be a multiple of 8")
        check_range("data.context_min", self.context_min, 1.0, 64.0)
        check_range("data.context_max", self.context_max, self.context_min, 64.0)
        check_range("data.val_fraction", self.val_fraction, 0.0, 0.9)
        check_range("data.color", self.color, 0.0, 1.0)
        check_range("data.val_samples", self.val_samples, 0, 100_000)
        check_range("data.video_frames", self.video_frames, 1, 100_000)
        check_range("data.video_block", self.video_block, 1, 100_000)
        check_range("data.cache_images", self.cache_images, 0, 1_000_000)


@dataclass(frozen=True)
class MaskGenConfig:
    """Random training holes: the paper's free-form strokes, boxes, object-shaped blobs and object cut-outs.

    With ``stamp_prob`` > 0 that share of holes is the silhouette of one or more object cut-outs from
    ``stamp_dir`` (e.g. the ``masks/`` folder written by ``scripts/build_train_pool.py``: tuxpaint stamps),
    scaled, rotated, flipped and placed at random, grown like a user's mask; the rest are free-form.

    Stroke widths and the box size are given for a 256 px crop and scale linearly with the crop size; the
    stroke segment length is drawn around the crop's diagonal / 8 as in the paper.
    """

    strokes_min: int = 1
    strokes_max: int = 3
    vertices_min: int = 4
    vertices_max: int = 11
    width_min: float = 12.0
    width_max: float = 40.0
    angle_mean: float = 2 * math.pi / 5
    angle_range: float = 2 * math.pi / 15
    box_prob: float = 0.5  # probability that a random box is added to the strokes
    box_min: float = 0.15  # box side as a fraction of the crop side
    box_max: float = 0.45
    blob_prob: float = 0.3  # probability that an object-shaped blob is added
    blob_min: float = 0.15  # blob size as a fraction of the crop side
    blob_max: float = 0.5
    max_coverage: float = 0.6  # masks covering more than this are redrawn
    min_coverage: float = 0.01  # and masks covering less
    stamp_dir: str = ""  # folder of object cut-outs (PNG with alpha, or grey: >= 128 = object); "" = none
    stamp_prob: float = 0.0  # share of holes that are object cut-outs instead of strokes/box/blob
    stamp_min: float = 0.2  # cut-out's longer side as a fraction of the crop side
    stamp_max: float = 0.6
    stamp_count: int = 1  # up to this many cut-outs per object hole (1..stamp_count, uniform)
    stamp_strokes: float = 0.0  # probability that free-form strokes are added to an object hole

    def __post_init__(self) -> None:
        check_range("masks.strokes_min", self.strokes_min, 0, 64)
        check_range("masks.strokes_max", self.strokes_max, self.strokes_min, 64)
        check_range("masks.vertices_min", self.vertices_min, 1, 64)
        check_range("masks.vertices_max", self.vertices_max, self.vertices_min, 64)
        check_range("masks.width_min", self.width_min, 1.0, 1024.0)
        check_range("masks.width_max", self.width_max, self.width_min, 1024.0)
        check_range("masks.angle_mean", self.angle_mean, 0.0, 2 * math.pi)
        check_range("masks.angle_range", self.angle_range, 0.0, math.pi)
        for key in ("box_prob", "blob_prob"):
            check_range(f"masks.{key}", getattr(self, key), 0.0, 1.0)
        check_range("masks.box_min", self.box_min, 0.01, 1.0)
        check_range("masks.box_max", self.box_max, self.box_min, 1.0)
        check_range("masks.blob_min", self.blob_min, 0.01, 1.0)
        check_range("masks.blob_max", self.blob_max, self.blob_min, 1.0)
        check_range("masks.max_coverage", self.max_coverage, 0.01, 1.0)
        check_range("masks.min_coverage", self.min_coverage, 0.0, self.max_coverage)
        if not isinstance(self.stamp_dir, str):
            raise ConfigError(f"masks.stamp_dir = {self.stamp_dir!r}: expected a folder path string (\"\" = none)")
        check_range("masks.stamp_prob", self.stamp_prob, 0.0, 1.0)
        check_range("masks.stamp_min", self.stamp_min, 0.01, 1.0)
        check_range("masks.stamp_max", self.stamp_max, self.stamp_min, 1.0)
        check_range("masks.stamp_count", self.stamp_count, 1, 16)
        check_range("masks.stamp_strokes", self.stamp_strokes, 0.0, 1.0)
        if self.stamp_prob > 0 and not self.stamp_dir:
            raise ConfigError(f"masks.stamp_prob = {self.stamp_prob:g} needs masks.stamp_dir (a folder of cut-outs)")
        if self.strokes_max == 0 and self.box_prob == 0 and self.blob_prob == 0 and self.stamp_prob < 1:
            raise ConfigError("masks: strokes_max = 0, box_prob = 0 and blob_prob = 0 would give empty holes")


@dataclass(frozen=True)
class SketchConfig:
    """Sketch guidance: Canny edges of the ground truth inside the hole, given with probability ``prob``."""

    enabled: bool = True  # the generator gets a guidance channel
    prob: float = 0.5  # share of training samples that get the sketch (others get an empty channel)
    canny_low: int = 60
    canny_high: int = 160
    blur: float = 1.0  # Gaussian sigma applied before Canny (0 = none)

    def __post_init__(self) -> None:
        check_range("sketch.prob", self.prob, 0.0, 1.0)
        check_range("sketch.canny_low", self.canny_low, 0, 1000)
        check_range("sketch.canny_high", self.canny_high, self.canny_low, 1000)
        check_range("sketch.blur", self.blur, 0.0, 16.0)


@dataclass(frozen=True)
class LossConfig:
    """Official DeepFill v2 weights by default: L1 (whole image) on coarse and refined at 1.0, hinge GAN 1.0."""

    l1_coarse: float = 1.0
    l1_refined: float = 1.0
    hole_weight: float = 1.0  # extra weight of hole pixels in the L1 terms (official: 1 = plain mean)
    gan: float = 1.0  # weight of the hinge generator loss
    gan_start: int = 0  # no adversarial term (and no discriminator updates) before this step
    gan_ramp: int = 0  # then ramp its weight linearly over this many steps

    def __post_init__(self) -> None:
        for key in ("l1_coarse", "l1_refined", "gan"):
            check_range(f"loss.{key}", getattr(self, key), 0.0, 1e4)
        check_range("loss.hole_weight", self.hole_weight, 0.0, 1e4)
        check_range("loss.gan_start", self.gan_start, 0, 10**9)
        check_range("loss.gan_ramp", self.gan_ramp, 0, 10**9)

    def gan_weight(self, step: int) -> float:
        """Adversarial weight at ``step`` (0-based count of completed steps)."""
        if self.gan == 0 or step < self.gan_start:
            return 0.0
        if self.gan_ramp == 0:
            return self.gan
        return self.gan * min(1.0, (step - self.gan_start + 1) / self.gan_ramp)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self) -> None:
        check_range("optim.lr", self.lr, 0.0, 1.0)
        check_range("optim.d_lr", self.d_lr, 0.0, 1.0)
        check_range("optim.beta1", self.beta1, 0.0, 0.9999)
        check_range("optim.beta2", self.beta2, 0.0, 0.99999)


@dataclass(frozen=True)
class DiscriminatorConfig:
    cnum: int = 64  # SN-PatchGAN width (official 64): layers cnum x 1, 2, 4, 4, 4, 4

    def __post_init__(self) -> None:
        check_range("discriminator.cnum", self.cnum, 4, 1024)


DEVICES = ("auto", "cpu", "cuda")
INITS = ("lsuv", "identity", "default")
SHIPPED_WEIGHTS = "shipped"


def shipped_weights_path() -> Path:
    """The generator weights inside the package (``train.init_weights = "shipped"``)."""
    return Path(__file__).resolve().parent.parent / "data" / "deepfill_default.safetensors"


def resolve_init_weights(value: str) -> str:
    """``train.init_weights`` as a path: "shipped" -> the packaged weights; other values unchanged."""
    return str(shipped_weights_path()) if value == SHIPPED_WEIGHTS else value
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class ScheduleConfig:
    batch: int = 16
    steps: int = 1_000_000  # stop after this many steps in total (resume continues the count)
    seed: int = 0
    device: str = "auto"  # auto = cuda when available
    precision: str = "auto"  # auto = bf16 autocast on CUDA, fp32 on CPU
    threads: int = 0  # torch CPU threads, 0 = leave torch's default
    log_every: int = 10  # JSONL training log
    val_every: int = 1000  # validation against Telea
    sample_every: int = 1000  # PNG sample grid
    ckpt_every: int = 1000  # checkpoint (also written at the end of a run)
    keep_checkpoints: int = 3  # older numbered checkpoints are deleted (latest.pt is always kept)
    init: str = "lsuv"  # generator init of a fresh run: lsuv (unit variance) | identity (RGB copy) | default
    init_weights: str = ""  # fresh run: start the generator from this weights file (same cnum/guidance), after init;
    # "shipped" = the weights inside the package (streamfill/data/deepfill_default.safetensors)
    ckpt_minutes: float = 0.0  # also checkpoint whenever this many minutes passed since the last one (0 = off)

    def __post_init__(self) -> None:
        check_range("train.batch", self.batch, 1, 4096)
        check_range("train.steps", self.steps, 0, 10**10)
        check_range("train.seed", self.seed, 0, 2**63 - 1)
        check_choice("train.device", self.device, DEVICES)
        check_choice("train.precision", self.precision, PRECISIONS)
        check_range("train.threads", self.threads, 0, 1024)
        for key in ("log_every", "val_every", "sample_every", "ckpt_every"):
            check_range(f"train.{key}", getattr(self, key), 1, 10**9)
        check_range("train.keep_checkpoints", self.keep_checkpoints, 1, 10**6)
        check_choice("train.init", self.init, INITS)
        check_range("train.ckpt_minutes", self.ckpt_minutes, 0.0, 10_000.0)
        if not isinstance(self.init_weights, str):
            raise ConfigError(f"train.init_weights = {self.init_weights!r}: expected a path string (\"\" = none)")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``model`` holds ``streamfill.config.ModelConfig`` keys (e.g. ``cnum``); the guidance
    channel follows ``sketch.enabled``."""

    data: DataConfig = field(default_factory=DataConfig)
    masks: MaskGenConfig = field(default_factory=MaskGenConfig)
    sketch: SketchConfig = field(default_factory=SketchConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: ScheduleConfig = field(default_factory=ScheduleConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    model: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {
    "data": DataConfig,
    "masks": MaskGenConfig,
    "sketch": SketchConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "train": ScheduleConfig,
    "discriminator": DiscriminatorConfig,
}


def _checked(section: str, cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` for the dataclass ``cls``, checked by the type of each key's default: unknown keys, a
    string or number for a true/false key, a non-string for a string key and a fraction for a whole-number key
    raise ConfigError (they failed deep inside training, or, for true/false keys, counted as true); 4.0 for a
    whole-number key becomes 4."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown key {section}.{unknown[0]} (known: {', '.join(sorted(names))})")
    out = dict(values)
    for f in fields(cls):
        if f.name not in out:
            continue
        value, default = out[f.name], f.default
        if type(default) is bool and not isinstance(value, bool):
            raise ConfigError(f"{section}.{f.name} = {value!r}: expected true or false")
        if type(default) is str and not isinstance(value, str):
            raise ConfigError(f"{section}.{f.name} = {value!r}: expected a string")
        if type(default) is int and isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"{section}.{f.name} = {value!r}: expected a whole number")
            out[f.name] = int(value)
    return out


def train_config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build a TrainConfig from ``{section: {key: value}}``; unknown sections or keys, and values of the wrong
    type, raise ConfigError."""
    kwargs: dict[str, Any] = {}
    for section, values in data.items():
        cls = ModelConfig if section == "model" else _SECTIONS.get(section)
        if cls is None:
            known = ", ".join([*_SECTIONS, "model"])
            raise ConfigError(f"unknown training config section [{section}] (known: {known})")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table, got {values!r}")
        values = _checked(section, cls, values)
        if section == "model":
            ModelConfig(**values)  # its ranges now, not after the data were scanned
            kwargs["model"] = values
        else:
            kwargs[section] = cls(**values)
    return TrainConfig(**kwargs)


def load_train_config(path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None
                      ) -> TrainConfig:
    """Defaults, then the TOML file at ``path`` (if given), then ``overrides`` (``{section: {key: value}}``)."""
    data: dict[str, Any] = {} if path is None else read_toml(path, "training config file")
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    return train_config_from_dict(data)
