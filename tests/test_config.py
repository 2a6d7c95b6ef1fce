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


@pytest.mark.parametrize(("text", "words"), [
    ("[crop]\ncontext = nan\n", "crop.context = nan"),           # passed every range check, then crashed
    ("[transport]\ntimeout = nan\n", "transport.timeout = nan"),  # silently accepted
    ("[live]\nspeed = nan\n", "live.speed = nan"),
    ("io = 5\n", "[io]"),                                         # a key where a table belongs
    ("[[io]]\ncrf = 1\n", "[io]"),
    ("[io]\nlossless = \"false\"\n", "io.lossless"),              # a string meant lossless on
    ("[io]\nsalvage = 1\n", "io.salvage"),
    ("[mask]\ndilate = 5e300\n", "mask.dilate = 5e+300"),        # printed as a 301-digit integer
])
def test_config_file_values_that_cannot_be_are_config_errors(tmp_path, text, words):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert words in str(err.value)
    assert len(str(err.value)) < 200


def test_config_file_that_is_not_text_or_not_a_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"\xff\xfe[io]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_a_config_file_saved_with_a_byte_order_mark_reads(tmp_path):
    """Windows editors start UTF-8 files with a byte-order mark: it was 'Invalid statement (at line 1)'."""
    path = tmp_path / "c.toml"
    path.write_bytes("\ufeff[mask]\ndilate = 7\n".encode())
    assert load_config(path).mask.dilate == 7


def test_live_model_cnum_is_checked_against_the_generator_s_range():
    """live.model_cnum = 4 was accepted, then api.live failed naming model.cnum, a key the user never set."""
    with pytest.raises(ConfigError, match="live.model_cnum = 4"):
        load_config(overrides={"live": {"model_cnum": 4}})
    assert load_config(overrides={"live": {"model_cnum": 24}}).live.model_cnum == 24
