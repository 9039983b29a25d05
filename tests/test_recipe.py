"""EdgeGAN's recipe pieces: identity-start generator, EMA, DiffAugment, the preset's round trip and resume."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from edgegan.errors import EdgeGANError
from edgegan.models import create_model
from edgegan.train import recipe
from edgegan.train.checkpoint import list_checkpoints, read_checkpoint
from edgegan.train.config import PRESETS, TrainConfig, preset_config, resolve_config
from edgegan.train.recipe import diff_augment, ema_decay_at, ema_update_, parse_policy
from tests.conftest import TINY, run_train


def test_skip_generator_starts_as_the_identity_and_learns():
    torch.manual_seed(0)
    g = create_model("ugatit-light", ngf=4, n_res=1, img_size=32, skip=True)
    x = torch.rand(2, 3, 32, 32) * 1.6 - 0.8  # away from the +-1 clamp
    y = g(x)[0]
    assert torch.allclose(y, x, atol=1e-5)
    y.sum().backward()
    head = g.decoder[-1]
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    # saturated inputs stay finite and in range
    edge = g(torch.tensor([-1.0, 1.0]).repeat(3 * 32 * 16).reshape(1, 3, 32, 32))[0]
    assert torch.isfinite(edge).all() and edge.abs().max() <= 1


@pytest.mark.slow
def test_colour_path_learns_a_global_tone_curve_that_instance_norm_hides():
    """A per-pixel colour change (here: darken + boost red) is what the demo style and real cartoon looks
    are made of; behind instance norm the decoder cannot see absolute colour, the colour path can."""
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32) * 1.8 - 0.9
    target = torch.tanh(torch.stack([x[:, 0] * 1.5 + 0.3, x[:, 1] * 0.6 - 0.2, x[:, 2] ** 2 - 0.5], 1))
    final = {}
    for width in (0, 8):
        torch.manual_seed(0)
        g = create_model("ugatit-light", ngf=4, n_res=1, img_size=32, skip=True, color_mlp=width)
        opt = torch.optim.Adam(g.parameters(), lr=5e-3)
        for _ in range(100):
            loss = (g(x)[0] - target).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        final[width] = float(loss)
    assert final[8] < 0.6 * final[0], final
    with pytest.raises(ValueError, match="needs skip"):
        create_model("ugatit-light", ngf=4, n_res=1, img_size=32, color_mlp=8)


def test_paper_generator_is_unchanged_by_the_skip_option():
    torch.manual_seed(0)
    plain = create_model("ugatit-light", ngf=4, n_res=1, img_size=32)
    torch.manual_seed(0)
    same = create_model("ugatit-light", ngf=4, n_res=1, img_size=32, skip=False)
    assert plain.state_dict().keys() == same.state_dict().keys()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(plain(x)[0], same(x)[0])
    assert not torch.allclose(plain(x)[0], x, atol=0.05)  # the paper's network does not start at the identity


def test_ema_update_is_a_moving_average_of_parameters_and_copies_buffers():
    avg, model = torch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        avg.weight.fill_(1.0)
        model.weight.fill_(3.0)
        model.running_mean.fill_(5.0)
    ema_update_(avg, model, 0.75)
    assert torch.allclose(avg.weight, torch.full((3,), 0.75 * 1 + 0.25 * 3))
    assert torch.equal(avg.running_mean, model.running_mean)
    assert not avg.weight.requires_grad or avg.weight.grad is None


def test_ema_decay_warms_up_and_is_capped():
    decays = [ema_decay_at(s, 0.999) for s in range(0, 20000, 100)]
    assert decays[0] == pytest.approx(0.1)
    assert all(b >= a for a, b in zip(decays, decays[1:]))
    assert max(decays) == 0.999
    assert ema_decay_at(10, 0.5) == 0.5


@pytest.mark.parametrize("op", recipe.AUGMENTATIONS)
def test_each_augmentation_keeps_the_range_shape_and_changes_images(op):
    torch.manual_seed(0)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    x[0] = 1.0  # saturated image: colour jitter must not leave the range
    y = diff_augment(x, (op,))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= -1 and y.max() <= 1
    assert not torch.equal(x, y)


def test_translation_shifts_content_and_cutout_blanks_one_square():
    torch.manual_seed(1)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    y = diff_augment(x, ("translation",))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    for i in range(4):  # every output image is a 32x32 window of its reflect-padded input
        assert any(torch.equal(y[i], padded[i, :, r:r + 32, c:c + 32]) for r in range(9) for c in range(9))
    z = diff_augment(x, ("cutout",))
    for i in range(4):
        blank = (z[i] == 0).all(dim=0) & (x[i] != 0).all(dim=0)
        assert blank.sum() == 8 * 8  # a quarter of each side
        rows, cols = blank.nonzero(as_tuple=True)
        assert rows.max() - rows.min() == 7 and cols.max() - cols.min() == 7
        assert torch.equal(z[i][:, ~blank], x[i][:, ~blank])


def test_augmentation_draws_come_from_the_torch_rng():
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    torch.manual_seed(5)
    a = diff_augment(x, parse_policy("color,translation,cutout"))
    torch.manual_seed(5)
    b = diff_augment(x, parse_policy("color,translation,cutout"))
    assert torch.equal(a, b)


def test_unknown_augmentation_is_a_one_line_error():
    with pytest.raises(EdgeGANError, match="--diffaug: unknown augmentation 'flip'"):
        preset_config("edgegan", diffaug="translation,flip")
    assert parse_policy("") == ()


def test_train_step_augments_real_and_fake_alike(monkeypatch):
    from edgegan.train import ugatit
    from edgegan.train.common import setup_runtime

    calls = []

    def record(x, ops):
        calls.append((x.detach().clone(), ops))
        return x

    monkeypatch.setattr(ugatit, "diff_augment", record)
    cfg = preset_config("edgegan", size=32, ngf=4, ndf=4, n_res=1)
    torch.manual_seed(0)
    gen, disc = ugatit.Generators(cfg), ugatit.Discriminators(cfg)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr)
    real_a, real_b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    ugatit.train_step(gen, disc, disc, opt_g, opt_d, real_a, real_b, cfg, setup_runtime("cpu", "fp32", "off"))
    assert all(ops == ("translation", "cutout") for _, ops in calls)
    # D step: [real A, fake A] and [real B, fake B], each through the same policy; G step: both fakes
    assert [len(x) for x, _ in calls] == [4, 4, 2, 2]
    assert torch.equal(calls[0][0][:2], real_a) and torch.equal(calls[1][0][:2], real_b)
    assert torch.allclose(calls[0][0][2:], calls[2][0]) and torch.allclose(calls[1][0][2:], calls[3][0])


def test_edgegan_preset_round_trips_through_config_json(tmp_path):
    cfg = preset_config("edgegan", out=str(tmp_path), size=32)
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    again = resolve_config(out=str(tmp_path), preset=None, overrides={"iters": 7}, resume=True)
    assert again == preset_config("edgegan", out=str(tmp_path), size=32, iters=7)
    for key, value in PRESETS["edgegan"].items():
        assert getattr(again, key) == value
    assert TrainConfig().cam_weight == 1000 and not TrainConfig().skip  # the dataclass keeps the paper's values
    with pytest.raises(EdgeGANError, match="--ema-decay"):
        resolve_config(out=str(tmp_path), preset=None, overrides={"ema_decay": 0.0}, resume=True)


@pytest.mark.slow
def test_edgegan_run_keeps_an_ema_copy_and_resumes_exactly(tiny_data, tmp_path):
    args = ["--preset", "edgegan", "--iters", "8", "--save-every", "4", "--sample-every", "0", "--log-every", "1",
            "--seed", "2"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    run_train(tiny_data, straight, *args)
    # The same run stopped after its step-4 checkpoint (the schedule depends on --iters, so it must
    # be the same run, not a shorter one), then resumed.
    shutil.copytree(straight, split)
    shutil.rmtree(split / "checkpoints" / "step_0000008")
    run_train(tiny_data, split, *args, "--resume")
    wa = load_file(list_checkpoints(straight / "checkpoints")[-1] / "weights.safetensors")
    wb = load_file(list_checkpoints(split / "checkpoints")[-1] / "weights.safetensors")
    assert wa.keys() == wb.keys() and any(k.startswith("gen_a2b_ema.") for k in wa)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa), [k for k in wa if not np.array_equal(wa[k], wb[k])]
    ckpt = read_checkpoint(list_checkpoints(straight / "checkpoints")[-1])
    assert ckpt.state["translators"] == {"A2B": "gen_a2b_ema", "B2A": "gen_b2a_ema"}
    # the average lags the raw weights
    key = next(k for k in wa if k.startswith("gen_a2b.decoder"))
    assert not np.array_equal(wa[key], wa[key.replace("gen_a2b.", "gen_a2b_ema.")])
    assert "--size" in TINY
