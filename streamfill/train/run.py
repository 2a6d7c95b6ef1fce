"""Setting up a training run directory: new runs, resumed runs, and what each run records.

A run directory holds ``run.json`` (data paths and the resolved config), ``config.json``, ``log.jsonl``
(training and validation records), ``samples/step_*.png`` and ``checkpoints/{step_*,latest}.pt``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from streamfill.errors import InputError
from streamfill.io import staged
from streamfill.train.config import TrainConfig, load_train_config, train_config_from_dict
from streamfill.train.data import TrainData
from streamfill.train.loop import Trainer, read_checkpoint


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """``checkpoints/latest.pt``, else the newest numbered ``step_*.pt`` (latest.pt lost or deleted: a new
    run there would overwrite them), else None."""
    folder = Path(run_dir) / "checkpoints"
    path = folder / "latest.pt"
    if path.is_file():
        return path
    numbered = sorted(folder.glob("step_*.pt")) if folder.is_dir() else []
    return numbered[-1] if numbered else None


def run_record(run: str | os.PathLike) -> dict[str, Any]:
    """The ``run.json`` of ``run`` (a run directory, or a checkpoint file in its ``checkpoints/``): empty when
    there is none; InputError naming the file when it is damaged."""
    run = Path(run)
    return _read_record((run if run.is_dir() else run.parent.parent) / "run.json")


def _read_record(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise InputError(f"{path} is damaged ({exc}); restore it or remove it to use the checkpoint's "
                         "config") from None
    if not isinstance(record, dict) or ("config" in record and not isinstance(record["config"], dict)):
        raise InputError(f"{path} is damaged (not a run record)")
    return record


def prepare_run(
    run_dir: str | os.PathLike,
    *,
    config_path: str | os.PathLike | None = None,
    data_paths: Sequence[str | os.PathLike] | None = None,
    resume: bool = False,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Trainer:
    """A Trainer for ``run_dir``, restored from its latest checkpoint when ``resume`` is set and one exists.

    A new run needs ``data_paths``; a resumed run reuses the recorded data paths and config unless new ones
    are given (the model section must then still match the checkpoint). Without ``resume`` an existing run
    with checkpoints is refused rather than overwritten. The data are scanned (videos decoded) here."""
    run_dir = Path(run_dir)
    ckpt = latest_checkpoint(run_dir)
    record_path = run_dir / "run.json"
    record = _read_record(record_path)
    if ckpt is not None and not resume:
        raise InputError(f"{run_dir} already holds checkpoints: pass --resume to continue it, or choose a new --out")
    if config_path is not None or "config" not in record:
        cfg = load_train_config(config_path, overrides)
    else:
        base = train_config_from_dict(record["config"]).to_dict()
        for section, values in (overrides or {}).items():
            base.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
        cfg = train_config_from_dict(base)
    paths = [str(p) for p in data_paths] if data_paths else record.get("data", [])
    if not paths:
        raise InputError("no training data: pass --data DIR (folders of images and/or video files)")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    data = TrainData(paths, cfg.data, seed=cfg.train.seed).open()
    trainer = Trainer(cfg, data, run_dir=run_dir)
    if ckpt is not None:
        trainer.load_checkpoint(ckpt)
    else:
        trainer.initialise()
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"data": paths, "config": cfg.to_dict(),
              "train_items": len(data.train_items), "val_items": len(data.val_items),
              "val": [str(key) for _, key in data.val_items]}
    with staged(record_path) as tmp:  # a resume reads it: never half-written
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return trainer


def resolved_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The config a run was last started with (from ``run.json``, else from its latest checkpoint)."""
    run_dir = Path(run_dir)
    record_path = run_dir / "run.json"
    record = _read_record(record_path)
    if "config" in record:
        return train_config_from_dict(record["config"])
    return train_config_from_dict(read_checkpoint(run_dir)["config"])
