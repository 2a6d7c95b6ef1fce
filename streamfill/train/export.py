"""Exporting a run: fp16 generator weights (safetensors with provenance) and a model card (Markdown)."""

from __future__ import annotations

import json
import os
import platform
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from streamfill.errors import InputError, OutputError
from streamfill.io import staged
from streamfill.train.config import TrainConfig
from streamfill.train.loop import checkpoint_config, model_config, read_checkpoint
from streamfill.train.run import run_record

KNOWN_VIDEO_LICENCES = {
    "bigbuckbunny": "Big Buck Bunny, (c) Blender Foundation (peach.blender.org), CC BY 3.0",
}


@dataclass(frozen=True)
class ExportResult:
    weights: Path
    card: Path
    step: int


def summarise_sources(path: str | os.PathLike) -> list[tuple[str, str, int]]:
    """(package, licence, count) rows from a SOURCES.md whose file table has the columns
    ``| file | source package | original path | license | ... |`` (the training photos' format)."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4:
            continue
        package = re.sub(r"\s*\(.*\)$", "", cells[1])
        counts[(package, cells[3])] += 1
    return [(p, lic, n) for (p, lic), n in sorted(counts.items())]


def _history(run_dir: Path | None) -> list[dict[str, Any]]:
    if run_dir is None or not (run_dir / "log.jsonl").is_file():
        return []
    out = []
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == "val":
            out.append(rec)
    return out


def init_origin(cfg: TrainConfig, state: dict[str, Any]) -> dict[str, Any] | None:
    """The origin of the weights a run started from (``streamfill.train.loop.weights_origin``), None for a run
    from scratch. Checkpoints written before runs recorded it: read from the ``train.init_weights`` file if it
    is still there, else ``derived_from_official`` None (unknown)."""
    from streamfill.errors import StreamfillError
    from streamfill.train.config import resolve_init_weights
    from streamfill.train.loop import weights_origin

    origin = state.get("extra", {}).get("init_weights")
    if origin is not None or not cfg.train.init_weights:
        return origin
    try:
        return weights_origin(resolve_init_weights(cfg.train.init_weights))
    except StreamfillError:
        return {"file": Path(cfg.train.init_weights).name, "trainer": "", "derived_from_official": None}


def _fmt_duration(seconds: float) -> str:
    h, rem = divmod(int(seconds), 3600)
    return f"{h} h {rem // 60:02d} min"


def model_card(
    cfg: TrainConfig,
    state: dict[str, Any],
    *,
    weights_name: str,
    params: int,
    size_bytes: int,
    data_paths: list[str],
    sources: str | os.PathLike | None,
    hardware: str,
    history: list[dict[str, Any]],
    run_dir: Path | None = None,
    heldout: str | None = None,
    held_out_items: int | None = None,
) -> str:
    """The model card text (Markdown) for an exported checkpoint. ``held_out_items``: how many items the run
    held out for validation (None: unknown)."""
    step = int(state["step"])
    last = state.get("extra", {}).get("last_val") or (history[-1] if history else {})
    origin = init_origin(cfg, state)
    channel = "with a sketch guidance channel" if cfg.sketch.enabled else "without a guidance channel"
    if origin is None:
        intro = ("trained from scratch by streamfill's own trainer (`streamfill train`). fp16 safetensors, "
                 f"{params:,} parameters, {size_bytes / 1e6:.1f} MB. Not derived from the official "
                 "(non-commercial) DeepFill v2 weights.")
    elif origin["derived_from_official"]:
        intro = (f"trained by streamfill's own trainer (`streamfill train`) starting from `{origin['file']}`, "
                 f"which derives from the official DeepFill v2 weights. fp16 safetensors, {params:,} parameters, "
                 f"{size_bytes / 1e6:.1f} MB. **Derived from the official DeepFill v2 weights: their licence "
                 "applies (non-commercial use only; do not redistribute).**")
    elif origin["derived_from_official"] is False and origin["trainer"].startswith("streamfill"):
        intro = ("trained from scratch by streamfill's own trainer (`streamfill train`; this run started from "
                 f"`{origin['file']}`, an earlier run of the same trainer). fp16 safetensors, {params:,} "
                 f"parameters, {size_bytes / 1e6:.1f} MB. Not derived from the official (non-commercial) "
                 "DeepFill v2 weights.")
    else:
        intro = (f"trained by streamfill's own trainer (`streamfill train`) starting from `{origin['file']}`, a "
                 f"weights file of unknown origin (check its licence: it carries over). fp16 safetensors, "
                 f"{params:,} parameters, {size_bytes / 1e6:.1f} MB.")
    lines = [
        "# streamfill inpainting weights — model card",
        "",
        f"`{weights_name}`: DeepFill v2 generator (gated convolutions, contextual attention) {channel}, {intro}",
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| steps | {step:,} |",
        f"| batch | {cfg.train.batch} |",
        f"| resolution | {cfg.data.crop} x {cfg.data.crop} random crops covering 1/{cfg.data.context_max:g} "
        f"to 1/{cfg.data.context_min:g} of the shorter image side, random flips"
        + (", 90-degree rotations" if cfg.data.rotate else "")
        + (f", colour augmentation on {cfg.data.color:.0%} of crops" if cfg.data.color else "") + " |",
        f"| model | generator cnum {cfg.model.get('cnum', 48)}, guidance channel "
        f"{'on' if cfg.sketch.enabled else 'off'}, prefill {cfg.model.get('prefill', 'none')}; SN-PatchGAN "
        f"discriminator cnum {cfg.discriminator.cnum} |",
        f"| losses | L1 coarse {cfg.loss.l1_coarse:g} + L1 refined {cfg.loss.l1_refined:g} (hole pixels x"
        f"{cfg.loss.hole_weight:g}), hinge GAN {cfg.loss.gan:g} from step {cfg.loss.gan_start} "
        f"(ramp {cfg.loss.gan_ramp}) |",
        f"| optimiser | Adam lr {cfg.optim.lr:g} (D {cfg.optim.d_lr:g}), betas ({cfg.optim.beta1:g}, "
        f"{cfg.optim.beta2:g}) |",
        f"| masks | free-form strokes (paper), boxes p={cfg.masks.box_prob:g}, object-shaped blobs "
        f"p={cfg.masks.blob_prob:g}; coverage {cfg.masks.min_coverage:g}-{cfg.masks.max_coverage:g} |",
        f"| sketch | Canny edges of the ground truth inside the hole, given to {cfg.sketch.prob:.0%} of samples |",
        f"| hardware | {hardware or platform.processor() or platform.machine()} |",
        f"| wall time | {_fmt_duration(float(state.get('wall_time', 0.0)))} of training steps |",
        f"| exported | {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} |",
        "",
        "## Validation (held-out crops, inside the holes, on [0, 1]; lower L1/L2 and higher PSNR are better)",
        "",
    ]
    if last:
        lines += [
            f"At step {last.get('step', step)}, {cfg.data.val_samples} fixed validation crops of "
            f"{cfg.data.crop} px with free-form holes, "
            + ("from photos/frames held out of training" if held_out_items != 0
               else "from the training photos themselves (this run held none out: `val_fraction` 0)")
            + " (every method sees the crop with the hole blanked):",
            "",
            "| method | L1 | L2 | PSNR (dB) |",
            "|---|---:|---:|---:|",
            f"| streamfill (no sketch) | {last['val_l1']:.4f} | {last['val_l2']:.5f} | {last['val_psnr']:.2f} |",
        ]
        if "val_sketch_l1" in last:
            lines.append(f"| streamfill (with sketch) | {last['val_sketch_l1']:.4f} | {last['val_sketch_l2']:.5f} "
                         f"| {last['val_sketch_psnr']:.2f} |")
        lines += [
            f"| OpenCV Telea (radius 5) | {last['telea_l1']:.4f} | {last['telea_l2']:.5f} | "
            f"{last['telea_psnr']:.2f} |",
            "",
        ]
    else:
        lines += ["No validation has run yet for this checkpoint.", ""]
    if len(history) > 1:
        lines += ["Validation L1 over training (step: streamfill / Telea): "
                  + ", ".join(f"{h['step']}: {h['val_l1']:.4f}/{h['telea_l1']:.4f}"
                              for h in history[:: max(1, len(history) // 8)]), ""]
    if heldout:
        lines += ["## Held-out photos (hole blanked)", "", heldout.strip(), ""]
    notes = run_dir / "NOTES.md" if run_dir is not None else None
    if notes is not None and notes.is_file():
        lines += ["## Run notes", "", notes.read_text(encoding="utf-8").strip(), ""]
    lines += ["## Data and licences", ""]
    lines.append("Training data paths: " + ", ".join(f"`{Path(p).name}`" for p in data_paths) + ".")
    lines.append("")
    rows = []
    if sources is not None and Path(sources).is_file():
        rows = summarise_sources(sources)
        total = sum(n for _, _, n in rows)
        lines += [f"{total} photographs (resized to at most 1024 px), summarised from their SOURCES.md "
                  "(per-file attribution is kept there):", "", "| package | licence | photos |", "|---|---|---:|"]
        lines += [f"| {p} | {lic} | {n} |" for p, lic, n in rows]
        lines.append("")
    videos = [p for p in data_paths if Path(p).suffix]
    for v in videos:
        key = Path(v).stem.lower()
        if key in KNOWN_VIDEO_LICENCES:
            lines.append(f"Video frames: `{Path(v).name}` — {KNOWN_VIDEO_LICENCES[key]}.")
    licences = sorted({lic for _, lic, _ in rows}) if rows else []
    lines += [
        "",
        (f"The photos' licences: {', '.join(licences)} (see the table). " if licences else
         "No SOURCES file was given (`train export --sources`): the photos' licences are not listed here. ")
        + "Whether trained weights are a derivative of their training images is unsettled; the attribution "
        "above is given in any case.",
        "",
        "## Continue training",
        "",
        "The exported file holds the generator only. The full state (discriminator, optimisers, RNG) is the "
        "run's `checkpoints/latest.pt`; continue with `streamfill train --out RUN_DIR --resume` (see "
        "docs/training.md in the streamfill repository).",
        "",
    ]
    return "\n".join(lines)


def export_run(
    run: str | os.PathLike,
    output: str | os.PathLike,
    *,
    card_path: str | os.PathLike | None = None,
    sources: str | os.PathLike | None = None,
    hardware: str = "",
    discriminator: bool = False,
    heldout: Callable[[Path], str] | None = None,
) -> ExportResult:
    """Write the generator of ``run`` (a run directory: its latest checkpoint; or a checkpoint file) as fp16
    safetensors to ``output`` and a model card next to it (``MODEL_CARD.md`` unless ``card_path``). With
    ``discriminator``, also ``<output stem>.discriminator.safetensors`` (fp16 SN-PatchGAN state dict).
    ``heldout(weights_path)``, when given, is called on the written weights and returns a Markdown section
    (the held-out evaluation with the hole blanked) that goes into the card: each shipping export re-measures."""
    from streamfill.model import Generator, save_generator

    run = Path(run)
    output = Path(output)
    if output.suffix != ".safetensors":
        raise InputError(f"{output}: the weights file must end in .safetensors")
    card = Path(card_path) if card_path else output.with_name("MODEL_CARD.md")
    d_path = output.with_name(output.stem + ".discriminator.safetensors")
    candidate = output.with_name(output.stem + ".partial.safetensors")  # the weights until the card is written
    taken = {output.resolve(): "weights", candidate.resolve(): "weights"}
    if discriminator:
        taken[d_path.resolve()] = "discriminator"
    if card.resolve() in taken:
        raise InputError(f"--card {card} is the {taken[card.resolve()]} file too; give the model card another name")
    state = read_checkpoint(run)
    run_dir = run if run.is_dir() else run.parent.parent
    cfg = checkpoint_config(state)
    generator = Generator(model_config(cfg))
    generator.load_state_dict(state["generator"])
    output.parent.mkdir(parents=True, exist_ok=True)
    record = run_record(run)
    data_paths = record.get("data", [])
    history = _history(run_dir)
    last = state.get("extra", {}).get("last_val", {})
    provenance = {
        "trainer": "streamfill train",
        "step": int(state["step"]),
        "batch": cfg.train.batch,
        "crop": cfg.data.crop,
        "wall_time_s": round(float(state.get("wall_time", 0.0)), 1),
        "data": [Path(p).name for p in data_paths],
        "hardware": hardware,
        "validation": last,
        "licence_note": "trained by streamfill from scratch; data licences in MODEL_CARD.md",
    }
    origin = init_origin(cfg, state)
    if origin is not None:
        provenance["init_weights"] = origin
        if origin["derived_from_official"]:
            from streamfill.model.importer import LICENCE_NOTE

            provenance.update(derived_from_official=True, licence=LICENCE_NOTE,
                              licence_note=f"trained by streamfill from {origin['file']}, derived from the "
                              "official DeepFill v2 weights (non-commercial); data licences in MODEL_CARD.md")
        else:
            provenance["licence_note"] = (f"trained by streamfill starting from {origin['file']}; data licences "
                                          "in MODEL_CARD.md")
    save_generator(generator, candidate, metadata=provenance, dtype=torch.float16)
    os.chmod(candidate, 0o644)  # package data: world-readable whatever the umask of the writer
    try:
        heldout_text = heldout(candidate) if heldout is not None else None  # measured before anything is replaced
        params = sum(p.numel() for p in generator.parameters())
        text = model_card(cfg, state, weights_name=output.name, params=params, size_bytes=candidate.stat().st_size,
                          data_paths=data_paths, sources=sources, hardware=hardware, history=history,
                          run_dir=run_dir, heldout=heldout_text, held_out_items=record.get("val_items"))
        try:  # the card before the weights: a card that cannot be written leaves no new weights behind
            with staged(card) as tmp:
                tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write the model card {card}: {exc.strerror or exc}") from None
    except BaseException:
        candidate.unlink(missing_ok=True)
        raise
    os.replace(candidate, output)
    if discriminator:
        from safetensors.torch import save_file

        d_state = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
                   for k, v in state["discriminator"].items()}
        with staged(d_path) as d_tmp:  # never half a file
            save_file(d_state, str(d_tmp),
                      metadata={"streamfill.format": "discriminator/1", "cnum": str(cfg.discriminator.cnum),
                                "step": str(int(state["step"]))})
    return ExportResult(output, card, int(state["step"]))
