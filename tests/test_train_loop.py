"""The training loop: one step, exact resume, loss falls, logs/samples/checkpoints."""

import json

import numpy as np
import pytest
import torch
from train_helpers import tiny_config, write_photos

from streamfill.train.data import TrainData
from streamfill.train.loop import Trainer


def make_trainer(tmp_path, cfg, run_dir=None):
    data = TrainData([tmp_path / "photos"], cfg.data, seed=cfg.train.seed)
    data.open()
    return Trainer(cfg, data, run_dir=run_dir)  # the real generator and discriminator, tiny widths


@pytest.fixture()
def photos(tmp_path):
    return write_photos(tmp_path / "photos")


def test_one_step_finite_losses_and_changes_weights(tmp_path, photos):
    trainer = make_trainer(tmp_path, tiny_config())
    before_g = [p.detach().clone() for p in trainer.generator.parameters()]
    before_d = [p.detach().clone() for p in trainer.discriminator.parameters()]
    logs = trainer.train_step()
    for key in ("l1_coarse", "l1_refined", "g_loss", "d_loss", "g_adv"):
        assert np.isfinite(logs[key]), key
    assert trainer.state.step == 1
    assert any(not torch.equal(a, b) for a, b in zip(before_g, trainer.generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, trainer.discriminator.parameters(), strict=True))


def test_gan_off_before_gan_start(tmp_path, photos):
    trainer = make_trainer(tmp_path, tiny_config(loss={"gan_start": 5}))
    before_d = [p.detach().clone() for p in trainer.discriminator.parameters()]
    logs = trainer.train_step()
    assert logs["gan_weight"] == 0 and "d_loss" not in logs
    assert all(torch.equal(a, b) for a, b in zip(before_d, trainer.discriminator.parameters(), strict=True))


@pytest.mark.slow
def test_resume_equals_uninterrupted_bitwise(tmp_path, photos):
    cfg = tiny_config(train={"steps": 6})
    straight = make_trainer(tmp_path, cfg)
    for _ in range(6):
        straight.train_step()

    first = make_trainer(tmp_path, cfg)
    for _ in range(3):
        first.train_step()
    ckpt = first.save_checkpoint(tmp_path / "ckpt.pt")
    del first
    torch.manual_seed(12345)  # the resumed run must not depend on the global RNG it finds
    second = make_trainer(tmp_path, cfg)
    second.load_checkpoint(ckpt)
    assert second.state.step == 3
    for _ in range(3):
        second.train_step()

    for name, module in (("generator", "generator"), ("discriminator", "discriminator")):
        a = getattr(straight, module).state_dict()
        b = getattr(second, module).state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key}"
    sa, sb = straight.opt_g.state_dict()["state"], second.opt_g.state_dict()["state"]
    for k in sa:
        assert torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"])
    assert straight.rng.bit_generator.state == second.rng.bit_generator.state


@pytest.mark.slow
def test_run_writes_logs_samples_checkpoints_and_resumes(tmp_path, photos):
    cfg = tiny_config(train={"steps": 4, "log_every": 2, "val_every": 2, "sample_every": 4, "ckpt_every": 2,
                             "keep_checkpoints": 1})
    run = tmp_path / "run"
    events = []
    make_trainer(tmp_path, cfg, run).run(events.append)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["event"] == "train"] == [2, 4]
    vals = [r for r in records if r["event"] == "val"]
    assert len(vals) == 2 and {"val_l1", "telea_l1", "val_psnr", "val_sketch_l1"} <= set(vals[0])
    assert (run / "samples" / "step_0000004.png").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest.pt", "step_0000004.pt"]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3, 4]

    cfg2 = tiny_config(train={"steps": 6, "ckpt_every": 2})
    resumed = make_trainer(tmp_path, cfg2, run)
    resumed.load_checkpoint(run / "checkpoints" / "latest.pt")
    resumed.run()
    assert resumed.state.step == 6


@pytest.mark.slow
def test_loss_falls_over_50_steps(tmp_path, photos):
    cfg = tiny_config(train={"steps": 50, "batch": 4}, loss={"gan": 0.0}, optim={"lr": 1e-3},
                      data={"val_samples": 8})
    trainer = make_trainer(tmp_path, cfg)
    trainer.initialise()
    before = trainer.validate()["val_l1"]
    losses = [trainer.train_step()["l1_refined"] for _ in range(50)]
    after = trainer.validate()["val_l1"]
    assert after < 0.8 * before, (before, after)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_identity_init_copies_colours():
    from streamfill.config import ModelConfig
    from streamfill.model import Generator
    from streamfill.train.loop import identity_init

    g = Generator(ModelConfig(cnum=16, guidance=True))  # cnum 8 has a 2-channel layer: no room for RGB
    identity_init(g, noise=0.0)
    colours = torch.tensor([[0.6, -0.4, 0.2], [-0.5, 0.5, 0.0]])
    x = colours[:, :, None, None].expand(2, 3, 32, 32).clone()
    m = torch.zeros(2, 1, 32, 32)
    m[:, :, 8:16, 8:16] = 1
    with torch.no_grad():
        coarse, refined = g(x * (1 - m), m)
    # away from the hole and the borders both stages reproduce the input colour (tanh squashes a little)
    for out in (coarse, refined):
        got = out[:, :, 24, 24]
        assert torch.allclose(got, torch.tanh(colours), atol=0.05), got


def _perturbed(generator, seed):
    """``generator`` with every weight moved by seeded noise (a stand-in for trained weights)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return generator


def _probe():
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 4:20] = 1
    return image, mask


def test_init_weights_start_a_residual_generator_at_its_prefill(tmp_path, photos):
    from streamfill.config import ModelConfig
    from streamfill.model import Generator, save_generator
    from streamfill.model.prefill import pushpull

    source = _perturbed(Generator(ModelConfig(cnum=8, guidance=True)), seed=3)  # tiny config's width, no prefill
    path = save_generator(source, tmp_path / "start.safetensors")
    cfg = tiny_config(model={"cnum": 8, "prefill": "pushpull"}, train={"init_weights": str(path), "init": "default"})
    trainer = make_trainer(tmp_path, cfg)
    trainer.initialise()
    got, want = trainer.generator.state_dict(), source.state_dict()
    zeroed = {f"{name}.conv.{p}" for name in ("coarse.conv17", "decoder.allconv17") for p in ("weight", "bias")}
    for key, value in want.items():
        if key in zeroed:
            assert not got[key].any(), key
        else:
            assert torch.equal(got[key], value), key
    image, mask = _probe()
    with torch.no_grad():
        refined = trainer.generator(image, mask)[1]
    torch.testing.assert_close(refined, pushpull(image, 1 - mask), rtol=0, atol=1e-3)  # atanh clamp at 0.999
    # a file of another width is refused with the keys named
    other = save_generator(Generator(ModelConfig(cnum=16, guidance=True)), tmp_path / "wide.safetensors")
    bad = make_trainer(tmp_path, tiny_config(model={"cnum": 8, "prefill": "pushpull"},
                                             train={"init_weights": str(other)}))
    with pytest.raises(Exception, match="wrong shapes"):
        bad.initialise()


def test_init_weights_of_a_narrower_model_are_widened(tmp_path, photos):
    from streamfill.config import ModelConfig
    from streamfill.model import Generator, save_generator

    source = _perturbed(Generator(ModelConfig(cnum=8, guidance=True, prefill="pushpull")), seed=4)
    path = save_generator(source, tmp_path / "narrow.safetensors")
    cfg = tiny_config(model={"cnum": 12, "prefill": "pushpull"}, train={"init_weights": str(path), "init": "default"})
    trainer = make_trainer(tmp_path, cfg)
    trainer.initialise()
    assert trainer.generator.coarse.conv1.conv.weight.shape[0] == 12  # 2 x (12 / 2) gated outputs
    image, mask = _probe()
    with torch.no_grad():
        want = source.eval()(image, mask)[1]
        got = trainer.generator.eval()(image, mask)[1]
    assert (got - want).abs().mean() < 0.02  # starts where the narrow model stopped (not zeroed, not random)


def test_the_rate_is_known_from_the_first_step(tmp_path, photos):
    """The rate was measured only after 2 s or 50 steps: a short run's progress said 0.00 it/s throughout."""
    cfg = tiny_config(train={"steps": 2})
    events = []
    make_trainer(tmp_path, cfg).run(events.append)
    rates = [e["rate"] for e in events if e["event"] == "step"]
    assert len(rates) == 2 and all(r > 0 for r in rates)
