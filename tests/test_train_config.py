"""The training config: every key is checked by type before any data is scanned."""

from pathlib import Path

import pytest

from streamfill.errors import ConfigError
from streamfill.train.config import load_train_config, train_config_from_dict

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs" / "train").glob("*.toml")))
def test_shipped_training_configs_load(name):
    load_train_config(ROOT / "configs" / "train" / name)


@pytest.mark.parametrize(("data", "message"), [
    ({"model": {"cnum": 8, "cnun": 8}}, "unknown key model.cnun"),  # was a TypeError deep in the trainer
    ({"model": {"cnum": 6}}, "model.cnum"),
    ({"train": {"batch": 2.5}}, "train.batch = 2.5: expected a whole number"),
    ({"train": {"seed": 1.5}}, "train.seed"),
    ({"masks": {"strokes_max": 2.5}}, "masks.strokes_max"),
    ({"data": {"flip": "no"}}, "data.flip = 'no': expected true or false"),  # was silently true
    ({"data": {"rotate": 1}}, "data.rotate"),
    ({"sketch": {"enabled": "false"}}, "sketch.enabled"),
    ({"train": {"device": 0}}, "train.device"),
])
def test_wrong_types_are_config_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        train_config_from_dict(data)


def test_whole_floats_become_ints():
    cfg = train_config_from_dict({"data": {"crop": 32.0}, "train": {"steps": 1e3}, "model": {"cnum": 8.0}})
    assert cfg.data.crop == 32 and type(cfg.data.crop) is int
    assert cfg.train.steps == 1000 and type(cfg.train.steps) is int
    assert cfg.model["cnum"] == 8 and type(cfg.model["cnum"]) is int
