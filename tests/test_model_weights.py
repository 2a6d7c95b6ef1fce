"""Weights files (safetensors + metadata), the official-checkpoint importer and `streamfill weights`."""

import json

import pytest
import torch

from streamfill.cli import main
from streamfill.config import ModelConfig
from streamfill.errors import ConfigError, InputError, WeightsError
from streamfill.model import Generator, import_official, load_generator, read_metadata, save_generator
from streamfill.model.importer import infer_official_config, official_to_streamfill, streamfill_to_official

SMALL = ModelConfig(cnum=8, attention_fuse=False)


def make(config=SMALL, seed=0):
    torch.manual_seed(seed)
    gen = Generator(config).eval()
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return gen


def _inputs(n=1, h=32, w=32):
    g = torch.Generator().manual_seed(1)
    image = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, h, w)
    mask[:, :, 8:20, 6:18] = 1
    return image, mask


def _same_outputs(a, b, image, mask, atol=1e-6):
    with torch.no_grad():
        for x, y in zip(a(image, mask), b(image, mask), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=atol)


def test_save_load_round_trip_with_metadata(tmp_path):
    gen = make()
    path = save_generator(gen, tmp_path / "g.safetensors", metadata={"steps": 1234, "data": "synthetic"})
    loaded = load_generator(path)
    assert loaded.config == gen.config and not loaded.training
    _same_outputs(gen, loaded, *_inputs())
    meta = read_metadata(path)
    assert meta["model_config"] == SMALL
    assert meta["provenance"] == {"steps": 1234, "data": "synthetic"}


def test_fp16_file_loads_into_fp32_model(tmp_path):
    gen = make()
    path = save_generator(gen, tmp_path / "g16.safetensors", dtype=torch.float16)
    assert path.stat().st_size < 0.6 * save_generator(gen, tmp_path / "g32.safetensors").stat().st_size
    loaded = load_generator(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for (k, a), b in zip(gen.state_dict().items(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a.half().float(), msg=k)


def test_mismatches_are_named(tmp_path):
    from safetensors.torch import save_file

    gen = make()
    state = {k: v.clone() for k, v in gen.state_dict().items()}
    meta = {"streamfill.model_config": json.dumps({"cnum": 8, "attention_fuse": False})}
    del state["decoder.allconv17.conv.bias"]
    state["coarse.conv3.conv.weight"] = torch.zeros(1, 2, 3, 3)
    state["extra.layer"] = torch.zeros(1)
    save_file(state, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(WeightsError) as err:
        load_generator(tmp_path / "bad.safetensors")
    msg = str(err.value)
    assert "decoder.allconv17.conv.bias" in msg and "extra.layer" in msg and "coarse.conv3.conv.weight" in msg


def test_unreadable_files(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_generator(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="safetensors"):
        load_generator(tmp_path / "junk.safetensors")


def test_file_without_config_needs_one(tmp_path):
    from safetensors.torch import save_file

    gen = make()
    save_file({k: v.contiguous() for k, v in gen.state_dict().items()}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(WeightsError, match="no model config"):
        load_generator(tmp_path / "bare.safetensors")
    _same_outputs(gen, load_generator(tmp_path / "bare.safetensors", config=SMALL), *_inputs())


# --- importer -------------------------------------------------------------------------------------------

def test_tf_named_layout_round_trip():
    state = make().state_dict()
    official = streamfill_to_official(state)
    assert "conv1.conv.weight" in official and "conv13_upsample.conv.conv.weight" in official
    assert "allconv17.conv.bias" in official and "pmconv6.conv.weight" in official
    assert len(official) == len(state)
    back = official_to_streamfill(official)
    assert back.keys() == state.keys()
    for k in state:
        assert torch.equal(back[k], state[k]), k
    # the colour conversion changes exactly the five image layers
    raw = official_to_streamfill(official, bgr_to_rgb=False)
    changed = sorted(k.rsplit(".", 2)[0] for k in state if not torch.equal(raw[k], state[k]))
    assert changed == sorted([
        "attention_encoder.pmconv1", "coarse.conv1", "coarse.conv17", "coarse.conv17",
        "conv_branch.xconv1", "decoder.allconv17", "decoder.allconv17",
    ])


def test_imported_rgb_model_equals_official_bgr_model(tmp_path):
    """A synthetic checkpoint in the official layout (BGR convention) goes through the importer; on an RGB
    image the result must equal the unconverted model on the BGR image, with channels reversed back."""
    bgr_model = make(ModelConfig(cnum=8))
    official = {k: v.clone() for k, v in streamfill_to_official(bgr_model.state_dict(), rgb_to_bgr=False).items()}
    torch.save({"G": official, "D": {"conv1.weight": torch.zeros(1)}}, tmp_path / "states_tf_places2.pth")
    config = import_official(tmp_path / "states_tf_places2.pth", tmp_path / "places2.safetensors")
    assert config == ModelConfig(cnum=8)
    rgb_model = load_generator(tmp_path / "places2.safetensors")
    image, mask = _inputs(n=2)
    with torch.no_grad():
        c_rgb, r_rgb = rgb_model(image, mask)
        c_bgr, r_bgr = bgr_model(image.flip(1), mask)
    torch.testing.assert_close(c_rgb, c_bgr.flip(1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(r_rgb, r_bgr.flip(1), rtol=1e-5, atol=1e-6)
    prov = read_metadata(tmp_path / "places2.safetensors")["provenance"]
    assert prov["colour_order_converted"] == "BGR->RGB" and "non-commercial" in prov["licence"]


def test_importer_infers_width_and_guidance_and_rejects_foreign_keys(tmp_path):
    official = streamfill_to_official(Generator(ModelConfig(cnum=12, guidance=True)).state_dict())
    assert infer_official_config(official) == ModelConfig(cnum=12, guidance=True)
    assert infer_official_config(official, attention_fuse=False).attention_fuse is False
    bad = dict(official)
    bad["conv99.conv.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match="conv99"):
        official_to_streamfill(bad)
    with pytest.raises(WeightsError, match="conv1"):
        infer_official_config({"foo.weight": torch.zeros(1)})


def test_cli_weights_import_and_info(tmp_path, capsys):
    official = streamfill_to_official(make(ModelConfig(cnum=8)).state_dict())
    torch.save(official, tmp_path / "ckpt.pth")
    dst = tmp_path / "out.safetensors"
    assert main(["weights", "import", str(tmp_path / "ckpt.pth"), str(dst), "--no-fuse"]) == 0
    out = capsys.readouterr().out
    assert "non-commercial" in out and dst.is_file()
    assert load_generator(dst).config == ModelConfig(cnum=8, attention_fuse=False)
    assert main(["weights", "import", str(tmp_path / "ckpt.pth"), str(dst)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["weights", "import", str(tmp_path / "nope.pth"), str(tmp_path / "x.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("streamfill: error:") and err.count("\n") == 1
    (tmp_path / "junk.pth").write_bytes(b"junk")
    assert main(["weights", "import", str(tmp_path / "junk.pth"), str(tmp_path / "y.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err
    (tmp_path / "text.pth").write_bytes(b"garbage\n")  # torch answers with a paragraph of weights_only advice
    assert main(["weights", "import", str(tmp_path / "text.pth"), str(tmp_path / "z.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and err.count("\n") == 1 and len(err) < 300, err
    assert main(["weights", "info", str(dst), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_config"]["cnum"] == 8 and info["parameters"] == sum(
        p.numel() for p in Generator(ModelConfig(cnum=8)).parameters())


def test_shipped_weights_load_with_their_architecture_and_card():
    from streamfill.backends.neural import default_weights

    path = default_weights()
    assert path.stat().st_size < 16 * 1024 * 1024
    meta = read_metadata(path)
    config = meta["model_config"]
    assert config.guidance and config.prefill == "pushpull"
    gen = load_generator(path)
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:40, 20:44] = 1
    with torch.no_grad():
        refined = gen(image, mask)[1]
    assert refined.isfinite().all() and refined.abs().max() <= 1
    card = (path.parent / "MODEL_CARD.md").read_text()
    assert "Telea" in card and "prefill pushpull" in card


def test_weights_import_refuses_nan_weights_a_wrong_suffix_and_a_missing_folder(tmp_path, capsys):
    """A checkpoint full of NaN imported with exit 0 (process refused it later); into a missing folder the
    import was an internal error; any suffix was taken."""
    state = make(ModelConfig(cnum=8)).state_dict()
    official = streamfill_to_official({k: torch.full_like(v, float("nan")) for k, v in state.items()})
    torch.save(official, tmp_path / "nan.pth")
    assert main(["weights", "import", str(tmp_path / "nan.pth"), str(tmp_path / "n.safetensors")]) == 1
    assert "inf or NaN" in capsys.readouterr().err and not (tmp_path / "n.safetensors").exists()
    torch.save(streamfill_to_official(state), tmp_path / "ok.pth")
    for dst, words in ((tmp_path / "no" / "x.safetensors", "no folder"), (tmp_path / "x.txt", ".safetensors")):
        assert main(["weights", "import", str(tmp_path / "ok.pth"), str(dst)]) == 1
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1


def test_an_interrupted_save_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    import safetensors.torch

    gen = make()
    good = save_generator(gen, tmp_path / "g.safetensors")
    before = good.read_bytes()

    def half_write(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"\x00" * 100)  # a truncated file, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", half_write)
    with pytest.raises(KeyboardInterrupt):
        save_generator(gen, tmp_path / "new.safetensors")
    with pytest.raises(KeyboardInterrupt):
        save_generator(make(seed=1), good)
    assert not (tmp_path / "new.safetensors").exists()  # (finetune and weights import wrote it half)
    assert good.read_bytes() == before  # the old file is kept whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.safetensors"]  # no temporary file left


def test_weights_that_overflow_float16_are_not_written(tmp_path):
    gen = make()
    with torch.no_grad():
        gen.coarse.conv1.conv.weight[0, 0, 0, 0] = 1e6  # fine in float32, inf in float16
    save_generator(gen, tmp_path / "g32.safetensors")
    with pytest.raises(WeightsError, match="coarse.conv1.conv.weight has inf or NaN"):
        save_generator(gen, tmp_path / "g16.safetensors", dtype=torch.float16)
    assert not (tmp_path / "g16.safetensors").exists()


@pytest.mark.parametrize("damage", ["no xconv1", "no conv17 bias", "scalar bias", "1-D conv", "int key", "float8",
                                    "pickle warning"])
def test_a_malformed_checkpoint_is_one_error_line_not_an_internal_error(tmp_path, capsys, damage):
    """The colour conversion indexed layers before their keys and shapes were checked: a missing layer was a
    KeyError (exit 70); float8 tensors crashed the NaN check; torch's warnings came out beside the error."""
    official = streamfill_to_official(make(ModelConfig(cnum=8)).state_dict())
    if damage == "no xconv1":
        del official["xconv1.conv.weight"]
    elif damage == "no conv17 bias":
        del official["conv17.conv.bias"]
    elif damage == "scalar bias":
        official["conv17.conv.bias"] = torch.tensor(1.0)
    elif damage == "1-D conv":
        official["pmconv1.conv.weight"] = torch.zeros(3)
    elif damage == "int key":
        official = {1: torch.zeros(1)}
    elif damage == "float8":
        official = {k: v.to(torch.float8_e4m3fn) for k, v in official.items()}
    src = tmp_path / "bad.pth"
    if damage == "pickle warning":
        import pickle
        src.write_bytes(pickle.dumps(print, protocol=4))  # no tensors; torch warns about the protocol
    else:
        torch.save(official, src)
    code = main(["weights", "import", str(src), str(tmp_path / "w.safetensors")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("streamfill: error:"), err
    assert not (tmp_path / "w.safetensors").exists()


def test_weights_files_with_odd_metadata_or_tensors_are_refused_in_one_line(tmp_path):
    from safetensors.torch import save_file

    gen = make()
    good = save_generator(gen, tmp_path / "good.safetensors")
    from safetensors import safe_open
    with safe_open(str(good), "pt") as fh:
        meta = dict(fh.metadata())
    tensors = {k: v.contiguous() for k, v in gen.state_dict().items()}
    cases = {
        "list provenance": (tensors, {**meta, "streamfill.provenance": "[1, 2]"}, "provenance"),
        "float8": ({k: v.to(torch.float8_e4m3fn) for k, v in tensors.items()}, meta, "float8"),
        "config not an object": (tensors, {**meta, "streamfill.model_config": "[8]"}, "model config"),
    }
    for name, (values, metadata, words) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.safetensors"
        save_file(values, str(path), metadata=metadata)
        with pytest.raises(WeightsError, match=words):
            load_generator(path)
    # a whole float cnum (JSON numbers may be written 8.0) is that width, not a crash in torch
    path = tmp_path / "float_cnum.safetensors"
    config = json.loads(meta["streamfill.model_config"])
    save_file(tensors, str(path), metadata={**meta, "streamfill.model_config": json.dumps({**config, "cnum": 8.0})})
    assert load_generator(path).config.cnum == 8
    with pytest.raises(ConfigError, match="whole number"):
        ModelConfig(cnum=8.5)


def test_saving_weights_where_no_file_can_be_is_a_weights_error(tmp_path):
    gen = make()
    for path, words in ((tmp_path / "missing" / "g.safetensors", "no folder"), (tmp_path, "folder")):
        with pytest.raises(WeightsError, match=words):
            save_generator(gen, path)
    with pytest.raises(InputError, match="device 'bogus'"):
        load_generator(save_generator(gen, tmp_path / "g.safetensors"), device="bogus")


def test_saved_weights_are_readable_by_others():
    """safetensors creates its file 0600: an imported or saved weights file was unreadable to a service."""
    import os
    import stat
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = save_generator(make(), os.path.join(folder, "g.safetensors"))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_import_official_checks_its_destination_and_metadata_before_reading(tmp_path):
    torch.save(streamfill_to_official(make(ModelConfig(cnum=8)).state_dict()), tmp_path / "ok.pth")
    with pytest.raises(WeightsError, match="must end in .safetensors"):
        import_official(tmp_path / "ok.pth", tmp_path / "w.pt")  # it wrote safetensors under a .pt name
    with pytest.raises(WeightsError, match="metadata = 5"):
        import_official(tmp_path / "ok.pth", tmp_path / "w.safetensors", metadata=5)
    assert not list(tmp_path.glob("w.*"))
