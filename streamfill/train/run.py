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
from streamfill.train.config import TrainConfig, load_train_config, train_config_from_dict
from streamfill.train.data import TrainData
from streamfill.train.loop import Trainer, read_checkpoint


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    path = Path(run_dir) / "checkpoints" / "latest.pt"
    return path if path.is_file() else None


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
    record: dict[str, Any] = {}
    if record_path.is_file():
        record = json.loads(record_path.read_text())
    if ckpt is not None and not resume:
        raise InputError(f"{run_dir} already holds checkpoints: pass --resume to continue it, or choose a new --out")
    if config_path is not None or not record:
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
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return trainer


def resolved_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The config a run was last started with (from ``run.json``, else from its latest checkpoint)."""
    run_dir = Path(run_dir)
    record_path = run_dir / "run.json"
    if record_path.is_file():
        return train_config_from_dict(json.loads(record_path.read_text())["config"])
    return train_config_from_dict(read_checkpoint(run_dir)["config"])
