import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from edgegan.models import create_model, list_models
from edgegan.models.layers import ILN, AdaLIN
from edgegan.models.mobile import ConvBNAct, MobileGenerator, fold_batchnorm, make_divisible

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: see conftest

STUDENTS = [n for n in list_models() if n.startswith("mobile-")]
# per-image statistics, reflection padding, activations that quantize badly
FORBIDDEN = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, nn.GroupNorm, AdaLIN, ILN,
             nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d, nn.GELU, nn.SiLU, nn.Hardswish)
ALLOWED_ACTS = (nn.ReLU, nn.ReLU6, nn.Tanh)


def gmacs_at_256(name: str, **kw) -> float:
    """MACs counted on the meta device: shapes only, no arithmetic (the teacher is 52.5 GMACs)."""
    with torch.device("meta"):
        model = create_model(name, img_size=256, **kw).eval()
        x = torch.zeros(1, 3, 256, 256)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2e9


def randomize_batchnorm(model: nn.Module) -> nn.Module:
    """Non-trivial BN affine parameters and running statistics, then eval mode."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(2, 3, 32, 32) * 2 - 1)
    return model.eval()


def astronaut(size: int) -> torch.Tensor:
    """skimage's astronaut photo (NASA, public domain) as (1, 3, size, size) in [-1, 1]."""
    from skimage.data import astronaut as load
    from skimage.transform import resize

    img = resize(load(), (size, size), anti_aliasing=True)  # float64 in [0, 1]
    return torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None] * 2 - 1


def test_students_are_registered():
    assert {"mobile-s", "mobile-m"} <= set(STUDENTS)


@pytest.mark.parametrize("name", STUDENTS)
@pytest.mark.parametrize("size", [64, 256])
def test_student_shape_and_range(name, size):
    torch.manual_seed(0)
    g = create_model(name, img_size=size).eval()
    with torch.no_grad():
        img = g(torch.rand(2, 3, size, size) * 2 - 1)
    assert isinstance(img, torch.Tensor) and img.shape == (2, 3, size, size)
    assert img.min() >= -1 and img.max() <= 1 and img.std() > 0


def test_student_rejects_sizes_it_cannot_reconstruct():
    g = create_model("mobile-s")
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.zeros(1, 3, 66, 64))
    assert g(torch.zeros(1, 3, 48, 80)).shape == (1, 3, 48, 80)  # non-square is fine


def test_students_are_over_100x_cheaper_than_the_teacher():
    teacher = gmacs_at_256("ugatit-light", ngf=64)
    assert 52 < teacher < 53  # the counter agrees with shared/README.md
    small = gmacs_at_256("mobile-s")
    assert small <= 0.5 and teacher / small >= 100
    assert 0.7 <= gmacs_at_256("mobile-m") <= 1.3
    assert gmacs_at_256("mobile-m", width=0.5) < gmacs_at_256("mobile-m")  # the width multiplier works


@pytest.mark.parametrize("name", STUDENTS)
def test_student_uses_only_npu_friendly_ops(name):
    g = create_model(name)
    for mod_name, m in g.named_modules():
        assert not isinstance(m, FORBIDDEN), f"{name}: {mod_name} is a {type(m).__name__}"
        if isinstance(m, nn.Conv2d):
            assert m.padding_mode == "zeros", mod_name
            assert m.groups in (1, m.in_channels), f"{mod_name}: grouped conv that is not depthwise"
            assert m.out_channels % 8 == 0 or m.out_channels == 3, mod_name
        if isinstance(m, nn.Upsample):
            assert m.mode in ("nearest", "bilinear"), mod_name
        structural = (nn.Conv2d, nn.BatchNorm2d, nn.Upsample, nn.Identity)
        if not list(m.children()) and not isinstance(m, structural):
            assert isinstance(m, ALLOWED_ACTS), f"{name}: unexpected leaf {mod_name} ({type(m).__name__})"


@pytest.mark.parametrize("name", STUDENTS)
def test_batchnorm_folds_with_identical_output(name):
    g = randomize_batchnorm(create_model(name))
    folded = fold_batchnorm(g)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in g.modules())  # the original is untouched
    assert not folded.training
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(folded(x), g(x), rtol=0, atol=1e-5)
    n_folded = sum(p.numel() for p in folded.parameters())
    assert n_folded < sum(p.numel() for p in g.parameters())


def test_fold_handles_conv_bn_pairs_in_a_sequential():
    torch.manual_seed(0)
    net = randomize_batchnorm(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                            ConvBNAct(8, 8, 3, groups=8)))
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", STUDENTS)
def test_forward_features_match_feature_info(name):
    g = create_model(name).eval()
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        img, feats = g.forward_features(x)
        torch.testing.assert_close(img, g(x))
    assert len(feats) == len(g.feature_info) >= 3
    modules = dict(g.named_modules())
    for f, info in zip(feats, g.feature_info):
        assert f.shape == (2, info["channels"], 64 // info["reduction"], 96 // info["reduction"])
        assert info["module"] in modules
    # the teacher's bottleneck is at 1/4: the first taps line up with it spatially
    assert [i["reduction"] for i in g.feature_info[:3]] == [4, 4, 4]


def test_features_carry_gradients_for_distillation():
    g = create_model("mobile-s").train()
    img, feats = g.forward_features(torch.rand(2, 3, 32, 32) * 2 - 1)
    (img.mean() + sum(f.mean() for f in feats)).backward()
    assert g.stem.conv.weight.grad is not None and g.stem.conv.weight.grad.abs().sum() > 0


def test_make_divisible_rounds_to_multiples_of_8():
    assert [make_divisible(v) for v in (8, 10, 12, 32, 33, 5)] == [8, 16, 16, 32, 32, 8]  # 10 -> 8 loses >10%
    assert isinstance(create_model("mobile-m", width=0.75), MobileGenerator)


def test_folded_student_onnx_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install onnxruntime)")
    pytest.importorskip("onnxscript", reason="onnxscript not installed (the dynamo ONNX exporter needs it)")
    onnx = pytest.importorskip("onnx", reason="onnx not installed")
    torch.manual_seed(0)
    g = fold_batchnorm(randomize_batchnorm(create_model("mobile-s")))
    x = astronaut(64)
    path = tmp_path / "mobile-s.onnx"
    torch.onnx.export(g, (x,), str(path), dynamo=True, input_names=["image"], output_names=["cartoon"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"image": x.numpy()})
    with torch.no_grad():
        ref = g(x).numpy()
    assert out.shape == ref.shape == (1, 3, 64, 64)
    assert np.abs(out - ref).max() < 1e-4
    op_types = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert not op_types & {"BatchNormalization", "InstanceNormalization", "LayerNormalization", "Pad"}


def test_skip_student_starts_as_the_identity_and_exports(tmp_path):
    """skip=True: clip(x + head), head zero-initialised; folds and exports to plain Add + Clip."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install onnxruntime)")
    pytest.importorskip("onnxscript", reason="onnxscript not installed (the dynamo ONNX exporter needs it)")
    onnx = pytest.importorskip("onnx", reason="onnx not installed")
    torch.manual_seed(0)
    g = create_model("mobile-s", skip=True).eval()
    x = astronaut(64)
    with torch.no_grad():
        assert torch.equal(g(x), x)
    g.train()
    loss = (g(x) - 0.5).abs().mean()
    loss.backward()
    assert g.head.weight.grad.abs().sum() > 0  # the change is learnable from the first step
    folded = fold_batchnorm(randomize_batchnorm(g))
    with torch.no_grad():
        folded.head.weight.normal_(0, 0.05)
        ref = folded(x)
    assert ref.min() >= -1 and ref.max() <= 1 and not torch.equal(ref, x)
    path = tmp_path / "skip.onnx"
    torch.onnx.export(folded, (x,), str(path), dynamo=True, input_names=["image"], output_names=["cartoon"])
    (out,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})
    assert np.abs(out - ref.numpy()).max() < 1e-4
    assert {"Add", "Clip"} <= {n.op_type for n in onnx.load(str(path)).graph.node}
