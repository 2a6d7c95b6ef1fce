"""Training as a background job over many sessions: start from a weights file (or the shipped one), resume the
local optimiser state when present, checkpoint every N minutes, stop after M minutes. Tiny data and models."""

import json
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_config, write_photos

from streamfill.cli import main
from streamfill.config import ModelConfig
from streamfill.model import Generator, read_metadata, save_generator
from streamfill.train.config import load_train_config, resolve_init_weights, shipped_weights_path
from streamfill.train.data import TrainData
from streamfill.train.loop import Trainer, read_checkpoint

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "configs" / "train" / "tiny.toml")


@pytest.fixture()
def photos(tmp_path):
    return write_photos(tmp_path / "photos")


def _weights(tmp_path, name, seed):
    torch.manual_seed(seed)
    g = Generator(ModelConfig(cnum=8, guidance=True))  # tiny.toml's generator
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return save_generator(g, tmp_path / name), g.state_dict()


def _max_diff(a, b):
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in b)


@pytest.mark.slow
def test_resume_starts_from_weights_then_from_the_local_state(tmp_path, photos):
    w1, s1 = _weights(tmp_path, "a.safetensors", 1)
    w2, s2 = _weights(tmp_path, "b.safetensors", 2)
    run = tmp_path / "run"
    base = ["train", "--config", TINY, "--data", str(photos), "--out", str(run), "--resume", "--quiet"]
    # no checkpoint yet: a fresh run from the weights file (one Adam step of lr 1e-4 moves a weight by <= ~1e-4)
    assert main([*base, "--init-weights", str(w1), "--steps", "1"]) == 0
    first = read_checkpoint(run)
    assert first["step"] == 1
    assert _max_diff(first["generator"], s1) < 2e-3
    assert _max_diff(first["generator"], s2) > 1e-2
    assert first["opt_g"]["state"]  # the optimiser state is kept locally
    # a checkpoint exists: --resume continues it (step count, Adam moments); another weights file is ignored
    assert main([*base, "--init-weights", str(w2), "--steps", "2"]) == 0
    second = read_checkpoint(run)
    assert second["step"] == 2
    assert _max_diff(second["generator"], first["generator"]) < 2e-3
    assert _max_diff(second["generator"], s2) > 1e-2
    assert int(second["opt_g"]["state"][0]["step"]) == 2


def test_shipped_weights_name(tmp_path):
    path = shipped_weights_path()
    assert path.name == "deepfill_default.safetensors" and path.is_file()
    assert resolve_init_weights("shipped") == str(path)
    assert resolve_init_weights("x.safetensors") == "x.safetensors"


def test_continue_config_loads_and_matches_the_shipped_model(tmp_path):
    cfg = load_train_config(ROOT / "configs" / "train" / "cpu-continue.toml")
    assert cfg.train.init_weights == "shipped" and cfg.train.ckpt_minutes > 0
    assert 0 < cfg.masks.stamp_prob < 1 and cfg.masks.stamp_dir
    shipped = read_metadata(shipped_weights_path())["model_config"]
    assert shipped.cnum == cfg.model["cnum"] and shipped.prefill == cfg.model["prefill"]
    assert shipped.guidance == cfg.sketch.enabled


@pytest.mark.slow
def test_a_run_starts_from_the_shipped_weights(tmp_path, photos):
    from streamfill.model.weights import read_weights

    cfg = tiny_config(model={"cnum": 24, "prefill": "pushpull"}, discriminator={"cnum": 8},
                      train={"init_weights": "shipped", "steps": 1, "batch": 1})
    data = TrainData([photos], cfg.data, seed=cfg.train.seed).open()
    trainer = Trainer(cfg, data)
    trainer.initialise()
    tensors, _ = read_weights(shipped_weights_path())
    got = trainer.generator.state_dict()
    for key, value in tensors.items():
        torch.testing.assert_close(got[key].float(), value.float(), rtol=0, atol=0)


@pytest.mark.slow
def test_checkpoint_every_n_minutes(tmp_path, photos):
    cfg = tiny_config(train={"steps": 3, "ckpt_every": 1000, "ckpt_minutes": 1e-6, "keep_checkpoints": 10})
    data = TrainData([photos], cfg.data, seed=cfg.train.seed).open()
    events = []
    trainer = Trainer(cfg, data, run_dir=tmp_path / "run")
    trainer.initialise()
    trainer.run(events.append)
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [1, 2, 3]
    # off (0): only the step schedule and the end of the run
    cfg0 = tiny_config(train={"steps": 3, "ckpt_every": 1000, "ckpt_minutes": 0.0})
    events0 = []
    trainer0 = Trainer(cfg0, data, run_dir=tmp_path / "run0")
    trainer0.initialise()
    trainer0.run(events0.append)
    assert [e["step"] for e in events0 if e["event"] == "checkpoint"] == [3]


def test_minutes_budget_stops_with_a_checkpoint(tmp_path, photos):
    run = tmp_path / "run"
    assert main(["train", "--config", TINY, "--data", str(photos), "--out", str(run), "--quiet",
                 "--steps", "50", "--minutes", "0.000001"]) == 0
    state = read_checkpoint(run)
    assert state["step"] == 1  # stopped after the first step, checkpoint written
    record = json.loads((run / "run.json").read_text())
    assert record["config"]["train"]["steps"] == 50


def test_checkpoint_on_a_filesystem_without_hard_links(tmp_path, photos, monkeypatch):
    """latest.pt is a hard link of the newest numbered checkpoint; where the filesystem has none (exFAT, some
    network mounts) it is a copy, and the run goes on instead of failing at its first checkpoint."""
    import os

    def no_links(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    run = tmp_path / "run"
    assert main(["train", "--config", TINY, "--data", str(photos), "--out", str(run), "--quiet",
                 "--steps", "50", "--minutes", "0.000001"]) == 0
    assert read_checkpoint(run)["step"] == 1
    assert not (run / "checkpoints" / "latest.pt.partial").exists()


def test_bad_minutes_and_missing_init_weights_are_one_line_errors(tmp_path, photos, capsys):
    assert main(["train", "--config", TINY, "--data", str(photos), "--out", str(tmp_path / "r"),
                 "--minutes", "0"]) != 0
    assert "--minutes" in capsys.readouterr().err
    # nan passed the "> 0" check and the deadline never came (the run went on to its last step); the twin
    # train.ckpt_minutes = nan is a config error since 188023e
    assert main(["train", "--config", TINY, "--data", str(photos), "--out", str(tmp_path / "r1"),
                 "--minutes", "nan", "--quiet"]) == 1
    assert "--minutes nan" in capsys.readouterr().err
    assert not (tmp_path / "r1").exists()
    assert main(["train", "--config", TINY, "--data", str(photos), "--out", str(tmp_path / "r2"),
                 "--init-weights", str(tmp_path / "missing.safetensors"), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "missing.safetensors" in err and "Traceback" not in err


@pytest.mark.slow
def test_export_reruns_the_heldout_evaluation_into_the_card(tmp_path, photos):
    from streamfill.eval.results import load_results

    run = tmp_path / "run"
    assert main(["train", "--config", TINY, "--data", str(photos), "--out", str(run), "--quiet", "--steps", "1"]) == 0
    heldout = write_photos(tmp_path / "heldout", count=2, seed=9)
    out = tmp_path / "ship" / "w.safetensors"
    res = tmp_path / "results" / "heldout_export.json"
    assert main(["train", "export", str(run), "-o", str(out), "--heldout", str(heldout), "--heldout-seeds", "2",
                 "--heldout-max-side", "96", "--heldout-method", "streamfill dilate 0", "--heldout-method", "telea",
                 "--heldout-results", str(res)]) == 0
    card = (out.parent / "MODEL_CARD.md").read_text()
    assert "## Held-out photos (hole blanked)" in card and "2 photos never used in training" in card
    table = [line for line in card.splitlines() if line.startswith("| streamfill dilate 0") or
             line.startswith("| telea")]
    assert len(table) == 2
    l1 = {line.split(" (")[0][2:]: float(line.split("|")[2]) for line in table}
    assert all(0 < v < 100 for v in l1.values()) and l1["streamfill dilate 0"] != l1["telea"]
    assert "streamfill dilate 0 / telea = " in card
    assert out.is_file() and not list(out.parent.glob("*.partial*"))
    (result,) = load_results(res.parent)
    assert len(result["rows"]) == 4 and str(tmp_path) not in json.dumps(result)
    # a bad held-out path fails before anything is replaced
    before = out.read_bytes()
    assert main(["train", "export", str(run), "-o", str(out), "--heldout", str(tmp_path / "none")]) != 0
    assert out.read_bytes() == before
    assert main(["train", "export", str(run), "-o", str(out), "--heldout-results", str(res)]) != 0


def test_a_run_without_latest_pt_resumes_from_its_newest_step_and_a_damaged_record_is_named(tmp_path, photos,
                                                                                             capsys):
    """latest.pt lost: a new run (with or without --resume) started at step 0 and overwrote the numbered
    checkpoints; a damaged run.json was an internal error."""
    run = tmp_path / "run"
    base = ["train", "--config", TINY, "--data", str(photos), "--out", str(run), "--quiet"]
    assert main([*base, "--steps", "50", "--minutes", "0.000001"]) == 0
    (run / "checkpoints" / "latest.pt").unlink()
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == ["step_0000001.pt"]
    assert main([*base, "--steps", "2"]) != 0
    assert "already holds checkpoints" in capsys.readouterr().err
    assert main([*base, "--steps", "2", "--resume"]) == 0
    assert read_checkpoint(run)["step"] == 2
    (run / "run.json").write_text("garbage")
    assert main([*base, "--steps", "3", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "run.json is damaged" in err and "Traceback" not in err


def test_resuming_to_a_step_already_reached_says_so(tmp_path, photos, capsys):
    """--steps 1 on a run at step 1 said "from step 1 to 1" and exited 0 having done nothing."""
    run = tmp_path / "run"
    base = ["train", "--config", TINY, "--data", str(photos), "--out", str(run), "--quiet"]
    assert main([*base, "--steps", "50", "--minutes", "0.000001"]) == 0
    capsys.readouterr()
    assert main([*base, "--steps", "1", "--resume"]) == 1
    assert "at step 1 already" in capsys.readouterr().err


def test_export_card_says_only_what_the_run_did(tmp_path, photos, capsys):
    """The card called the run's own photos "never used in training", its validation crops "held out" when
    none were, listed a fixed set of licences whatever the data, and --sources that did not exist was ignored."""
    run = tmp_path / "run"
    assert main(["train", "--config", TINY, "--data", str(photos), "--out", str(run), "--quiet",
                 "--steps", "50", "--minutes", "0.000001"]) == 0
    capsys.readouterr()
    out = tmp_path / "w.safetensors"
    assert main(["train", "export", str(run), "-o", str(out), "--heldout", str(photos)]) == 1
    assert "the run trained on" in capsys.readouterr().err
    assert main(["train", "export", str(run), "-o", str(out), "--sources", str(tmp_path / "nope.md")]) == 1
    assert "--sources" in capsys.readouterr().err and not out.exists()
    assert main(["train", "export", str(run), "-o", str(out)]) == 0
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "GPL-2+" not in card and "No SOURCES file was given" in card and "default" not in card.splitlines()[0]
    assert "held out of training" not in card or "held none out" in card


def test_an_interrupted_run_record_write_keeps_the_old_record(tmp_path, photos, monkeypatch):
    """run.json was rewritten in place at every start: Ctrl-C or a full disk there left it damaged, and every
    later --resume was refused until it was repaired by hand."""
    import pathlib

    from streamfill.train.run import prepare_run, run_record

    run = tmp_path / "run"
    cfg = {"train": {"steps": 1, "init": "default"}}
    prepare_run(run, config_path=TINY, data_paths=[photos], overrides=cfg)
    before = run_record(run)
    real = pathlib.Path.write_text

    def half(self, text, *a, **k):
        real(self, text[: len(text) // 2], *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(pathlib.Path, "write_text", half)
    with pytest.raises(KeyboardInterrupt):
        prepare_run(run, config_path=TINY, data_paths=[photos], resume=True, overrides=cfg)
    monkeypatch.undo()
    assert run_record(run) == before


@pytest.mark.slow
def test_export_of_a_run_from_official_weights_keeps_their_licence(tmp_path, photos):
    """A run started from weights imported by `streamfill weights import` (the official, non-commercial ones)
    exported a card saying "trained from scratch ... Not derived from the official (non-commercial) DeepFill v2
    weights", and a provenance "trained by streamfill from scratch"."""
    from streamfill.model import import_official
    from streamfill.model.importer import streamfill_to_official

    _, state = _weights(tmp_path, "own.safetensors", 3)
    official = tmp_path / "places2.pth"
    torch.save(streamfill_to_official(state), official)
    imported = tmp_path / "imported.safetensors"
    import_official(official, imported)
    ours = save_generator(Generator(ModelConfig(cnum=8, guidance=True)), tmp_path / "ours.safetensors",
                          metadata={"trainer": "streamfill train"})
    for init, derived in ((imported, True), (ours, False)):
        run, out = tmp_path / f"run_{derived}", tmp_path / f"w_{derived}" / "w.safetensors"
        assert main(["train", "--config", TINY, "--data", str(photos), "--out", str(run), "--quiet",
                     "--init-weights", str(init), "--steps", "50", "--minutes", "0.000001"]) == 0
        init.rename(init.with_suffix(".moved"))  # recorded in the checkpoint: the file need not be kept
        assert main(["train", "export", str(run), "-o", str(out)]) == 0
        card = (out.parent / "MODEL_CARD.md").read_text()
        provenance = read_metadata(out)["provenance"]
        assert provenance["init_weights"]["file"] == init.name
        if derived:
            assert "Derived from the official DeepFill v2 weights" in card and "Not derived" not in card
            assert provenance["derived_from_official"] and "non-commercial" in provenance["licence"]
        else:
            assert "Not derived from the official" in card and "derived_from_official" not in provenance
