"""The training loop: hinge SN-PatchGAN + L1 on the coarse and refined outputs, exact checkpoint/resume.

One step, as in the official DeepFill v2 trainer: draw a batch (crops, holes, sketches), run the generator on
the image with the hole zeroed, L1 against the ground truth on both outputs (mean over the whole image, hole
pixels optionally weighted more), then one discriminator update on (real, composited fake) with the mask and
sketch channels, and one generator update with the hinge generator loss added. Adam, lr 1e-4, betas (0.5,
0.999). bf16 autocast on CUDA (losses in float32).

The trainer reports through a callback; it never prints. A checkpoint holds the generator, discriminator,
both optimisers, the numpy data RNG, torch's RNG states, the step and the accumulated wall time, so that a
resumed run continues bit-for-bit (on CPU) where an uninterrupted one would be.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from streamfill.errors import ConfigError, InputError, WeightsError
from streamfill.io import staged
from streamfill.train.config import TrainConfig, resolve_init_weights, train_config_from_dict
from streamfill.train.data import Batch, TrainData, make_batch, validation_set
from streamfill.train.metrics import hole_metrics, telea_fill
from streamfill.train.tensors import fill_batch, from_images, start_kwargs, to_images, to_masks

Callback = Callable[[dict[str, Any]], None]

CHECKPOINT_VERSION = 1


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device = 'cuda' but no CUDA GPU is available")
    return torch.device(name)


def model_config(cfg: TrainConfig):
    """The ``streamfill.config.ModelConfig`` of a training config: its ``[model]`` keys, with the guidance
    channel on exactly when sketch training is enabled."""
    from streamfill.config import ModelConfig

    values = dict(cfg.model)
    if values.get("guidance", cfg.sketch.enabled) != cfg.sketch.enabled:
        raise ConfigError(f"model.guidance = {values['guidance']!r} contradicts sketch.enabled = "
                          f"{cfg.sketch.enabled!r}; set only sketch.enabled")
    values["guidance"] = cfg.sketch.enabled
    return ModelConfig(**values)


def build_models(cfg: TrainConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The generator and SN-PatchGAN discriminator of a training config, initialised from ``train.seed``
    (without touching torch's global RNG)."""
    from streamfill.model.discriminator import Discriminator
    from streamfill.model.generator import Generator

    mcfg = model_config(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        return Generator(mcfg), Discriminator.for_config(mcfg, cnum=cfg.discriminator.cnum)


@torch.no_grad()
def lsuv_init(generator: torch.nn.Module, image: torch.Tensor, mask: torch.Tensor, guidance: torch.Tensor | None,
              *, out_std: float = 0.3, passes: int = 1) -> None:
    """Layer-sequential unit-variance initialisation: rescale each convolution, in forward order, so that its
    output has unit standard deviation on the given batch (RGB output layers: ``out_std``).

    The official (Glorot) initialisation shrinks the signal by roughly 0.4 per gated layer (ELU times a
    sigmoid gate around 0.5), so a fresh generator outputs ~1e-8 everywhere and learns slowly at first;
    this keeps the signal alive through all ~40 layers. Only the weight scales change, not the architecture."""
    convs = [m for m in generator.modules() if isinstance(m, torch.nn.Conv2d)]
    was_training = generator.training
    generator.eval()
    try:
        for conv in convs:
            target = out_std if conv.out_channels == 3 else 1.0
            for _ in range(passes):
                seen: list[torch.Tensor] = []
                handle = conv.register_forward_hook(lambda _m, _i, out, seen=seen: seen.append(out.detach()))
                try:
                    generator(image * (1 - mask), mask, guidance)
                finally:
                    handle.remove()
                if not seen:
                    break
                std = float(torch.cat([t.flatten() for t in seen]).std())
                if std > 0 and math.isfinite(std):
                    conv.weight.mul_(target / std)
    finally:
        generator.train(was_training)


@torch.no_grad()
def identity_init(generator: torch.nn.Module, *, gate_bias: float = 4.0, noise: float = 0.1, seed: int = 0) -> None:
    """Initialise the generator as a (blocky, 1/4-resolution) copy of its RGB input, plus small noise.

    Every gated layer passes input channel ``c % C_in`` to output channel ``c`` through the centre tap
    (divided by the open gate's value), gates start open (bias ``gate_bias``), the first layer of each
    stage adds 1 to the RGB channels so that the signal stays positive through the ELUs, and the output
    layers subtract it again. A deep plain network learns an identity-like colour mapping only slowly; starting
    from one, the generator can spend its training on filling the hole. Symmetry is broken by Gaussian noise
    of ``noise / sqrt(fan_in)``."""
    from streamfill.model.gated import GatedConv2d

    gen = torch.Generator().manual_seed(seed)
    first = {id(getattr(generator, name)[0]) for name in ("coarse", "conv_branch", "attention_encoder")
             if hasattr(generator, name)}
    for layer in generator.modules():
        if not isinstance(layer, GatedConv2d):
            continue
        conv = layer.conv
        cout_total, cin, kh, kw = conv.weight.shape
        fan_in = cin * kh * kw
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (noise / fan_in**0.5))
        conv.bias.zero_()
        cout = layer.out_channels
        ch, cw = kh // 2, kw // 2
        open_gate = 1.0 if layer.activation is None else float(torch.sigmoid(torch.tensor(gate_bias)))
        for c in range(cout):
            conv.weight[c, c % cin, ch, cw] += 1.0 / open_gate
        if layer.activation is None:
            conv.bias[:3] = -1.0  # undo the +1 shift of the stage input
        else:
            conv.bias[cout:] = gate_bias
        if id(layer) in first:
            conv.bias[:3] += 1.0 / open_gate


def load_init_weights(generator: torch.nn.Module, path: str | os.PathLike) -> str:
    """Copy a generator weights file into ``generator`` (its guidance channel must match; the prefill may
    differ, it has no weights). A file of a narrower ``cnum`` is widened to the generator's width first
    (:func:`streamfill.model.widen.widen_generator`: the wider network starts computing what the file's
    does). Returns the file's prefill ("none" for files without one)."""
    from streamfill.model.weights import load_state_into, read_metadata, read_weights

    info = read_metadata(path)
    tensors, _ = read_weights(path)
    config = info["model_config"]
    own = getattr(generator, "config", None)
    if config is not None and own is not None and config.cnum < own.cnum:
        from dataclasses import replace

        from streamfill.model.generator import Generator
        from streamfill.model.widen import widen_generator

        narrow = Generator(replace(own, cnum=config.cnum))
        load_state_into(narrow, tensors, source=f"train.init_weights {path}")
        tensors = widen_generator(narrow, own.cnum, noise=0.01).state_dict()
    load_state_into(generator, tensors, source=f"train.init_weights {path}")
    return config.prefill if config is not None else "none"


def weights_origin(path: str | os.PathLike) -> dict[str, Any]:
    """Where a weights file that a run starts from came from: ``{"file", "trainer", "derived_from_official"}``,
    the last True for files imported from the official (non-commercial) DeepFill v2 weights by ``streamfill
    weights import``, or trained or fine-tuned from such a file (their licence carries over)."""
    from streamfill.model.weights import read_metadata

    provenance = read_metadata(path)["provenance"]
    provenance = provenance if isinstance(provenance, dict) else {}
    derived = bool(provenance.get("converted_from") or provenance.get("derived_from_official")
                   or "non-commercial" in str(provenance.get("licence", "")).lower())
    return {"file": Path(path).name, "trainer": str(provenance.get("trainer", "")), "derived_from_official": derived}


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -mean(D(fake))."""
    return -fake.mean()


@dataclass
class TrainState:
    step: int = 0
    wall_time: float = 0.0  # seconds spent in training steps, summed over resumes
    extra: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Owns the models, optimisers, RNGs and the fixed validation set of one run.

    ``generator(image, mask, guidance) -> (coarse, refined)`` takes image N x 3 x H x W in [-1, 1] with the hole
    zeroed, mask N x 1 x H x W (1 = hole), guidance N x 1 x H x W (1 = sketch) or None. ``discriminator(x)``
    takes the image with the mask (and sketch) channels concatenated and returns patch scores. Passing the
    models in lets tests use small stand-ins; ``build_models`` gives the real ones.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        data: TrainData,
        generator: torch.nn.Module | None = None,
        discriminator: torch.nn.Module | None = None,
        *,
        run_dir: str | os.PathLike | None = None,
    ) -> None:
        self.cfg = cfg
        self.data = data
        if generator is None or discriminator is None:
            generator, discriminator = build_models(cfg)
        self.device = resolve_device(cfg.train.device)
        self.generator = generator.to(self.device)
        self.discriminator = discriminator.to(self.device)
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=o.d_lr, betas=(o.beta1, o.beta2))
        self.rng = np.random.default_rng(cfg.train.seed)
        self.state = TrainState()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        precision = cfg.train.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        self.autocast_dtype = torch.bfloat16 if precision == "bf16" else None
        self._val: tuple[Batch, Batch] | None = None
        self._telea: np.ndarray | None = None

    def initialise(self) -> None:
        """Fresh-run weight initialisation of the generator (``train.init``), on a batch drawn from its own
        seed (the training RNG is not touched), then ``train.init_weights`` if set. A residual (prefill) generator
        whose weights did not come from a file of the same prefill gets zeroed output layers, so it starts at
        exactly its prefill. Call before the first step of a new run, not on resume."""
        if self.cfg.train.init == "identity":
            identity_init(self.generator, seed=self.cfg.train.seed)
        elif self.cfg.train.init == "lsuv":
            rng = np.random.default_rng([self.cfg.train.seed, 777])
            images = self.data.crops(rng, 4)
            image, mask, guidance = self._tensors(make_batch(rng, images, self.cfg.masks, self.cfg.sketch))
            lsuv_init(self.generator, image, mask, guidance)
        source_prefill = "none"
        if self.cfg.train.init_weights:
            path = resolve_init_weights(self.cfg.train.init_weights)
            source_prefill = load_init_weights(self.generator, path)
            self.state.extra["init_weights"] = weights_origin(path)  # for the exported provenance and card
        prefill = getattr(getattr(self.generator, "config", None), "prefill", "none")
        if prefill != "none" and source_prefill != prefill:
            with torch.no_grad():
                for layer in self.generator.output_layers():
                    layer.conv.weight.zero_()
                    layer.conv.bias.zero_()

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def next_batch(self) -> Batch:
        """The next training batch, drawn from the trainer's own RNG (part of the checkpoint)."""
        images = self.data.crops(self.rng, self.cfg.train.batch)
        return make_batch(self.rng, images, self.cfg.masks, self.cfg.sketch)

    def _tensors(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        image = from_images(batch.images).to(self.device)
        mask = to_masks(batch.masks).to(self.device)
        guidance = None if batch.sketches is None else to_masks(batch.sketches).to(self.device)
        return image, mask, guidance

    @staticmethod
    def _disc_input(image: torch.Tensor, mask: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        """The official discriminator input: image, sketch (when the model has the channel), mask."""
        parts = [image] + ([guidance] if guidance is not None else []) + [mask]
        return torch.cat(parts, dim=1)

    def _l1(self, target: torch.Tensor, output: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        diff = (target - output.float()).abs()
        hw = self.cfg.loss.hole_weight
        if hw == 1.0:
            return diff.mean()
        return (diff * (1.0 + (hw - 1.0) * mask)).mean()

    def train_step(self, batch: Batch | None = None) -> dict[str, float]:
        """One generator (and, once the GAN term is on, one discriminator) update. Returns float losses."""
        t0 = time.perf_counter()
        if batch is None:
            batch = self.next_batch()
        self.generator.train()
        self.discriminator.train()
        image, mask, guidance = self._tensors(batch)
        masked = image * (1.0 - mask)
        loss_cfg = self.cfg.loss
        gan_w = loss_cfg.gan_weight(self.state.step)
        extra = start_kwargs(self.generator, image, mask, guidance)
        with self._autocast():
            coarse, refined = self.generator(masked, mask, guidance, **extra)
        l1_coarse = self._l1(image, coarse, mask)
        l1_refined = self._l1(image, refined, mask)
        g_loss = loss_cfg.l1_coarse * l1_coarse + loss_cfg.l1_refined * l1_refined
        logs = {"l1_coarse": l1_coarse.item(), "l1_refined": l1_refined.item()}
        if gan_w > 0:
            complete = refined.float() * mask + image * (1.0 - mask)
            real_in = self._disc_input(image, mask, guidance)
            fake_in = self._disc_input(complete.detach(), mask, guidance)
            with self._autocast():
                scores = self.discriminator(torch.cat([real_in, fake_in], dim=0)).float()
            real, fake = scores.chunk(2, dim=0)
            d_loss = hinge_d_loss(real, fake)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            with self._autocast():
                fake_scores = self.discriminator(self._disc_input(complete, mask, guidance)).float()
            adv = hinge_g_loss(fake_scores)
            g_loss = g_loss + gan_w * adv
            logs.update(d_loss=d_loss.item(), g_adv=adv.item(), d_real=real.mean().item(),
                        d_fake=fake.mean().item())
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        logs.update(g_loss=g_loss.item(), gan_weight=gan_w)
        for key, value in logs.items():
            if not math.isfinite(value):
                raise FloatingPointError(f"training diverged at step {self.state.step + 1}: {key} = {value}")
        self.state.step += 1
        self.state.wall_time += time.perf_counter() - t0
        return logs

    # ------------------------------------------------------------------ validation
    def validation_batches(self) -> tuple[Batch, Batch]:
        if self._val is None:
            self._val = validation_set(self.data, self.cfg.masks, self.cfg.sketch, self.cfg.data.val_samples,
                                       self.cfg.train.seed)
        return self._val

    def fill(self, batch: Batch, *, with_sketch: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Run the generator on a batch in eval mode: (coarse, composited refined) N x H x W x 3 uint8 RGB."""
        sketches = batch.sketches if with_sketch else None
        if self.cfg.sketch.enabled and sketches is None:
            sketches = np.zeros_like(batch.masks)
        return fill_batch(self.generator, batch.images, batch.masks, sketches, device=self.device,
                          autocast_dtype=self.autocast_dtype, chunk=self.cfg.train.batch)

    def validate(self) -> dict[str, float]:
        """L1, L2 and PSNR inside the holes of the fixed validation set (on [0, 1]), for the generator without
        and with the sketch, and for OpenCV Telea on the same holes."""
        plain, sketched = self.validation_batches()
        if len(plain.images) == 0:
            return {}
        if self._telea is None:
            self._telea = telea_fill(plain.images, plain.masks)
        _, out = self.fill(plain, with_sketch=False)
        result = {f"val_{k}": v for k, v in hole_metrics(out, plain.images, plain.masks).items()}
        result.update({f"telea_{k}": v for k, v in hole_metrics(self._telea, plain.images, plain.masks).items()})
        if sketched.sketches is not None and sketched is not plain:
            _, out_s = self.fill(sketched, with_sketch=True)
            result.update({f"val_sketch_{k}": v
                           for k, v in hole_metrics(out_s, sketched.images, sketched.masks).items()})
        return result

    def sample_grid(self, count: int = 6) -> np.ndarray:
        """A PNG-ready sheet (H x W x 3 uint8 RGB): per validation sample, ground truth | input with hole (and
        sketch in red) | coarse | result without sketch | result with sketch | Telea."""
        from streamfill.train.masks import tile

        plain, sketched = self.validation_batches()
        n = min(count, len(plain.images))
        sub = Batch(plain.images[:n], plain.masks[:n], None if plain.sketches is None else plain.sketches[:n])
        coarse, out = self.fill(sub, with_sketch=False)
        hole = plain.masks[:n, ..., None] > 0
        shown = np.where(hole, 255, plain.images[:n]).astype(np.uint8)
        columns = [plain.images[:n], shown, coarse, out]
        if sketched.sketches is not None and sketched is not plain:
            sub_s = Batch(sketched.images[:n], sketched.masks[:n], sketched.sketches[:n])
            _, out_s = self.fill(sub_s, with_sketch=True)
            edge = sketched.sketches[:n] > 0
            shown[edge] = (255, 0, 0)
            columns.append(out_s)
        columns.append(telea_fill(plain.images[:n], plain.masks[:n]))
        rows = np.stack(columns, axis=1).reshape(-1, *plain.images.shape[1:])
        return tile(rows, columns=len(columns))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "step": self.state.step,
            "wall_time": self.state.wall_time,
            "extra": self.state.extra,
            "config": self.cfg.to_dict(),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise WeightsError(f"checkpoint version {state.get('version')!r}, expected {CHECKPOINT_VERSION}")
        try:
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
        except RuntimeError as exc:
            # torch lists every mismatched tensor (a 14 KB line for another width): the first two say enough
            detail = "; ".join(line.strip() for line in str(exc).splitlines()[1:3] if line.strip())
            raise WeightsError(f"checkpoint does not match the model of this config (another [model] width or "
                               f"option?): {detail[:300]}") from None
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        o = self.cfg.optim  # the current config's learning rates and betas win over the saved ones
        for opt, lr in ((self.opt_g, o.lr), (self.opt_d, o.d_lr)):
            for group in opt.param_groups:
                group["lr"] = lr
                group["betas"] = (o.beta1, o.beta2)
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.state = TrainState(step=int(state["step"]), wall_time=float(state["wall_time"]),
                                extra=dict(state.get("extra", {})))

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write the full training state atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with staged(path) as tmp:
            torch.save(self.state_dict(), tmp)
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        self.load_state_dict(read_checkpoint(path))

    # ------------------------------------------------------------------ the run
    def run(self, callback: Callback | None = None, *, stop: Callable[[], bool] | None = None) -> TrainState:
        """Train until ``train.steps`` in total, writing logs, samples and checkpoints to ``run_dir`` (if set).

        ``callback`` receives dicts with ``event`` = "step" (after every step: step, total, losses, it/s),
        "val" (metrics), "sample" (path), "checkpoint" (path). ``stop()`` returning True ends the run early
        (a checkpoint is written first). Checkpoints are written every ``ckpt_every`` steps, and also whenever
        ``ckpt_minutes`` (> 0) of wall-clock time passed since the last one (long runs on a busy machine)."""
        sched = self.cfg.train
        emit = callback or (lambda _e: None)
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2) + "\n")
        rate = 0.0
        last = time.perf_counter()
        last_step = self.state.step
        last_ckpt = time.monotonic()
        while self.state.step < sched.steps:
            logs = self.train_step()
            step = self.state.step
            now = time.perf_counter()
            # a figure from the first step on (a short run showed 0.00 it/s), smoothed over 2 s or 50 steps after
            if rate == 0.0 or now - last > 2.0 or step - last_step >= 50:
                inst = (step - last_step) / max(now - last, 1e-9)
                rate = inst if rate == 0.0 else 0.7 * rate + 0.3 * inst
                last, last_step = now, step
            emit({"event": "step", "step": step, "total": sched.steps, "rate": rate, **logs})
            if step % sched.log_every == 0:
                self._log({"event": "train", "step": step, "wall_time": round(self.state.wall_time, 2), **logs})
            if step % sched.val_every == 0:
                metrics = self.validate()
                self.state.extra["last_val"] = {"step": step, **metrics}
                self._log({"event": "val", "step": step, **metrics})
                emit({"event": "val", "step": step, **metrics})
            if step % sched.sample_every == 0 and self.run_dir is not None:
                emit({"event": "sample", "step": step, "path": str(self.write_samples())})
            done = step >= sched.steps or (stop is not None and stop())
            timed = sched.ckpt_minutes > 0 and time.monotonic() - last_ckpt >= sched.ckpt_minutes * 60
            if (step % sched.ckpt_every == 0 or done or timed) and self.run_dir is not None:
                emit({"event": "checkpoint", "step": step, "path": str(self.write_checkpoint())})
                last_ckpt = time.monotonic()
            if done:
                break
        return self.state

    def _log(self, record: dict[str, Any]) -> None:
        if self.run_dir is None:
            return
        record = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in record.items()}
        with open(self.run_dir / "log.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def write_samples(self) -> Path:
        from streamfill.io import write_image

        assert self.run_dir is not None
        path = self.run_dir / "samples" / f"step_{self.state.step:07d}.png"
        write_image(path, self.sample_grid())
        return path

    def write_checkpoint(self) -> Path:
        assert self.run_dir is not None
        ckpt_dir = self.run_dir / "checkpoints"
        path = self.save_checkpoint(ckpt_dir / f"step_{self.state.step:07d}.pt")
        latest = ckpt_dir / "latest.pt"
        tmp = ckpt_dir / "latest.pt.partial"
        tmp.unlink(missing_ok=True)
        try:
            os.link(path, tmp)
        except OSError:  # a filesystem without hard links (exFAT, some network mounts): a copy, then the rename
            shutil.copyfile(path, tmp)
        os.replace(tmp, latest)
        numbered = sorted(ckpt_dir.glob("step_*.pt"))
        for old in numbered[: -self.cfg.train.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by ``Trainer.save_checkpoint`` (tensors on CPU)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "latest.pt"
    if not path.is_file():
        raise InputError(f"no checkpoint at {path}")
    try:  # tensors and plain data only: unpickling a full object could run any code the file names
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        detail = str(exc).split(". ")[0].splitlines()[0][:160] if str(exc) else ""  # torch's run to a paragraph
        raise WeightsError(f"cannot read checkpoint {path} (loaded as tensors and plain data only, no code): "
                           f"{type(exc).__name__}{': ' + detail if detail else ''}") from None
    missing = [k for k in _CHECKPOINT_KEYS if k not in state] if isinstance(state, dict) else list(_CHECKPOINT_KEYS)
    if missing:
        raise WeightsError(f"{path} is not a streamfill training checkpoint (no {', '.join(missing[:3])}); "
                           "a weights file is not a checkpoint")
    if state["version"] != CHECKPOINT_VERSION:
        raise WeightsError(f"{path}: checkpoint version {state['version']!r}, expected {CHECKPOINT_VERSION}")
    return state


_CHECKPOINT_KEYS = ("version", "step", "wall_time", "config", "generator", "discriminator", "opt_g", "opt_d",
                    "numpy_rng", "torch_rng", "cuda_rng")


def checkpoint_config(state: dict[str, Any]) -> TrainConfig:
    return train_config_from_dict(state["config"])


__all__ = [
    "Trainer",
    "TrainState",
    "build_models",
    "checkpoint_config",
    "hinge_d_loss",
    "hinge_g_loss",
    "read_checkpoint",
    "resolve_device",
    "to_images",
]
