import pytest
import torch

from edgegan.errors import EdgeGANError
from edgegan.models import create_model, list_models
from edgegan.models.layers import ILN, AdaLIN, clip_rho_, instance_layer_mix
from edgegan.models.ugatit import UGATITDiscriminator, discriminator_depths

# the U-GAT-IT generators (3 outputs, ngf/n_res); the mobile students are tested in test_mobile.py
GENERATORS = [n for n in list_models() if n.startswith("ugatit") and not n.startswith("ugatit-disc")]
DISCRIMINATORS = [n for n in list_models() if n.startswith("ugatit-disc")]


def test_registry_lists_every_model():
    assert {"ugatit-light", "ugatit", "ugatit-disc-global", "ugatit-disc-local"} <= set(list_models())


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("size", [32, 64])
def test_generator_shapes_and_range(name, size):
    torch.manual_seed(0)
    g = create_model(name, ngf=4, n_res=2, img_size=size)
    x = torch.rand(2, 3, size, size) * 2 - 1
    img, cam_logit, heatmap = g(x)
    assert img.shape == (2, 3, size, size)
    assert cam_logit.shape == (2, 2)
    assert heatmap.shape == (2, 1, size // 4, size // 4)
    assert img.min() >= -1 and img.max() <= 1


@pytest.mark.parametrize("name", DISCRIMINATORS)
@pytest.mark.parametrize("size", [32, 64, 256])
def test_discriminator_shapes(name, size):
    d = create_model(name, ndf=2, img_size=size)
    logits, cam_logit, heatmap = d(torch.randn(2, 3, size, size))
    assert logits.shape[:2] == (2, 1) and logits.shape[2] >= 1 and logits.shape[2] == logits.shape[3]
    assert cam_logit.shape == (2, 2)
    assert heatmap.shape[:2] == (2, 1)


def test_discriminator_depths_follow_the_paper_at_256_and_shrink_below():
    assert discriminator_depths(256) == (7, 5)
    assert discriminator_depths(128) == (6, 4)
    g64, l64 = discriminator_depths(64)
    assert g64 < 7 and l64 < g64
    # the paper's 7-layer global D cannot even run at 64 px; the scaled one can
    with pytest.raises(RuntimeError):
        UGATITDiscriminator(ndf=2, n_layers=7)(torch.randn(1, 3, 64, 64))


def test_discriminators_use_spectral_norm():
    d = create_model("ugatit-disc-local", ndf=2, img_size=32)
    names = [n for n, _ in d.named_parameters()]
    assert any("parametrizations.weight.original" in n for n in names)


def test_full_generator_is_tied_to_its_size_light_is_not():
    light = create_model("ugatit-light", ngf=4, n_res=1, img_size=32)
    assert light(torch.randn(1, 3, 64, 64))[0].shape == (1, 3, 64, 64)
    full = create_model("ugatit", ngf=4, n_res=1, img_size=32)
    with pytest.raises(RuntimeError):
        full(torch.randn(1, 3, 64, 64))


def test_fp16_safe_variance_matches_torch_var():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16, 16) * 3 + 1
    rho = torch.full((1, 5, 1, 1), 0.3)
    eps = 1e-5
    x_in = (x - x.mean((2, 3), keepdim=True)) / torch.sqrt(x.var((2, 3), keepdim=True) + eps)
    x_ln = (x - x.mean((1, 2, 3), keepdim=True)) / torch.sqrt(x.var((1, 2, 3), keepdim=True) + eps)
    expected = 0.3 * x_in + 0.7 * x_ln
    torch.testing.assert_close(instance_layer_mix(x, rho, eps), expected, rtol=1e-5, atol=1e-5)
    # the statistics stay exact for a flat channel and a large offset (no E[x^2] - E[x]^2)
    flat = torch.full((1, 2, 8, 8), 1000.0)
    flat[:, 1] += torch.randn(8, 8)
    ref_in = (flat - flat.mean((2, 3), keepdim=True)) / torch.sqrt(flat.var((2, 3), keepdim=True) + eps)
    torch.testing.assert_close(instance_layer_mix(flat, torch.ones(1, 2, 1, 1), eps), ref_in, rtol=1e-4, atol=1e-4)


def test_adalin_applies_gamma_beta_per_sample():
    norm = AdaLIN(3)
    x = torch.randn(2, 3, 8, 8)
    gamma = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    beta = torch.tensor([[0.0, 1.0, -1.0], [2.0, 2.0, 2.0]])
    out = norm(x, gamma, beta)
    base = instance_layer_mix(x, norm.rho, norm.eps)
    torch.testing.assert_close(out, base * gamma[:, :, None, None] + beta[:, :, None, None], rtol=1e-5, atol=1e-5)


def test_rho_is_clipped_to_unit_interval():
    g = create_model("ugatit-light", ngf=4, n_res=1, img_size=32)
    norms = [m for m in g.modules() if isinstance(m, (AdaLIN, ILN))]
    assert norms
    with torch.no_grad():
        norms[0].rho.fill_(1.7)
        norms[-1].rho.fill_(-0.4)
    clip_rho_(g)
    for m in norms:
        rho = m.rho.detach()
        assert 0.0 <= float(rho.min()) and float(rho.max()) <= 1.0
    # the forward pass clamps as well, so an out-of-range rho loaded from disk changes nothing
    x = torch.randn(1, 4, 8, 8)
    over = instance_layer_mix(x, torch.full((1, 4, 1, 1), 3.0), 1e-5)
    at_one = instance_layer_mix(x, torch.ones(1, 4, 1, 1), 1e-5)
    torch.testing.assert_close(over, at_one)


def test_unknown_model_name_suggests_the_closest():
    with pytest.raises(EdgeGANError, match="did you mean 'ugatit-light'"):
        create_model("ugatit_light")


def test_light_ngf64_matches_the_paper_size():
    g = create_model("ugatit-light", ngf=64, n_res=4, img_size=256)
    n = sum(p.numel() for p in g.parameters())
    assert 10.5e6 < n < 10.7e6  # U-GAT-IT light: 10.6 M parameters
