"""configs/default.toml lists every key of the config dataclasses with its default; validation names keys."""

import dataclasses
import tomllib
from pathlib import Path

import pytest

from streamfill.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def _normalise(v):
    return list(v) if isinstance(v, tuple) else v


def test_default_toml_matches_dataclasses():
    data = tomllib.loads((ROOT / "configs" / "default.toml").read_text())
    defaults = Config()
    sections = {f.name for f in dataclasses.fields(Config)}
    assert set(data) == sections
    for name in sections:
        expected = {k: _normalise(v) for k, v in dataclasses.asdict(getattr(defaults, name)).items()}
        assert {k: _normalise(v) for k, v in data[name].items()} == expected, name


def test_presets_load():
    for preset in sorted((ROOT / "configs" / "presets").glob("*.toml")):
        load_config(preset)


def test_validation_names_key_value_and_range():
    with pytest.raises(ConfigError, match=r"io\.crf = 99.*\[0, 51\]"):
        load_config(overrides={"io": {"crf": 99}})
    with pytest.raises(ConfigError, match="unknown key mask.blur"):
        load_config(overrides={"mask": {"blur": 1}})
    with pytest.raises(ConfigError, match="multiple of 8"):
        load_config(overrides={"crop": {"sizes": [250]}})


def test_whole_number_keys_reject_fractions():
    with pytest.raises(ConfigError, match=r"track\.band = 4\.5: expected a whole number"):
        load_config(overrides={"track": {"band": 4.5}})
    assert load_config(overrides={"track": {"band": 4.0}}).track.band == 4
    assert isinstance(load_config(overrides={"track": {"band": 4.0}}).track.band, int)
    assert load_config(overrides={"track": {"reanchor": 1}}).track.reanchor == 1  # floats still take ints
