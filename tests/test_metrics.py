"""Quality metrics on numpy arrays: PSNR, SSIM, paired summaries, FID and KID from features."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from edgegan.eval import metrics
from edgegan.eval.metrics import (
    fid_from_features,
    frechet_distance,
    kid_from_features,
    kid_n_subsets,
    kid_subset_size,
    paired_scores,
    psnr,
    ssim,
)


def _image(h: int = 32, w: int = 32, seed: int = 0) -> np.ndarray:
    """A smooth colour image with some structure (gradients and a square)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w) + 64], axis=-1)
    img[h // 4 : h // 2, w // 4 : w // 2] = (200, 40, 90)
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def _noise(h: int = 32, w: int = 32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_identical_is_inf_and_noise_is_low() -> None:
    img = _image()
    assert psnr(img, img) == math.inf
    assert psnr(img, _noise()) < 15.0
    assert psnr(img.astype(np.float32) / 255, img.astype(np.float32) / 255, data_range=1.0) == math.inf


def test_psnr_matches_formula() -> None:
    a = _image()
    b = np.clip(a.astype(int) + np.random.default_rng(5).integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255.0**2 / mse), rel=1e-12)
    # uint8 wrap-around must not happen: 0 vs 255 everywhere is the worst case, 0 dB.
    assert psnr(np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)) == pytest.approx(0.0)
    # Same images as floats in [0, 1] with data_range 1: the same number.
    assert psnr(a / 255.0, b / 255.0, data_range=1.0) == pytest.approx(psnr(a, b), rel=1e-9)


def test_psnr_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"\(8, 8, 3\) vs \(8, 9, 3\)"):
        psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


def test_ssim_identical_is_one_noise_near_zero() -> None:
    img = _image(64, 64)
    assert ssim(img, img) == pytest.approx(1.0)
    assert abs(ssim(img, _noise(64, 64))) < 0.1


@pytest.mark.parametrize("side, win", [(16, 7), (6, 5), (5, 5), (4, 3), (3, 3)])
def test_ssim_small_images_shrink_the_window(side: int, win: int) -> None:
    from skimage.metrics import structural_similarity

    a, b = _image(side, side + 3, seed=2), _image(side, side + 3, seed=3)
    assert metrics.ssim_win_size(side, side + 3) == win
    expected = structural_similarity(a, b, data_range=255, channel_axis=-1, win_size=win)
    assert ssim(a, b) == pytest.approx(expected, rel=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def test_ssim_too_small_image() -> None:
    with pytest.raises(ValueError, match="at least 3x3"):
        ssim(np.zeros((2, 8, 3), np.uint8), np.zeros((2, 8, 3), np.uint8))


def test_paired_scores_summary() -> None:
    a, b, c = _image(seed=0), _image(seed=4), _noise()
    scores = paired_scores([a, a, a], [a, b, c])
    assert scores["n"] == 3 and scores["psnr_identical"] == 1
    finite = [psnr(a, b), psnr(a, c)]
    assert scores["psnr_mean"] == pytest.approx(np.mean(finite))
    assert scores["psnr_std"] == pytest.approx(np.std(finite))
    sims = [1.0, ssim(a, b), ssim(a, c)]
    assert scores["ssim_mean"] == pytest.approx(np.mean(sims))
    assert scores["ssim_std"] == pytest.approx(np.std(sims))
    every = paired_scores([a, b], [a, b])
    assert every["psnr_mean"] == math.inf and every["psnr_std"] == 0.0 and every["psnr_identical"] == 2


def test_paired_scores_errors() -> None:
    a = _image(16, 16)
    with pytest.raises(ValueError) as info:
        paired_scores([a, a, a], [a, a, _image(16, 20)])
    message = str(info.value)
    assert "pair 2" in message and "(16, 16, 3)" in message and "(16, 20, 3)" in message
    with pytest.raises(ValueError, match="2 outputs but 1 targets"):
        paired_scores([a, a], [a])
    with pytest.raises(ValueError, match="no image pairs"):
        paired_scores([], [])


def test_metrics_module_never_imports_torch() -> None:
    code = "import sys, edgegan.eval.metrics; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- FID / KID


def _gaussian(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, (n, d)) + shift


def test_fid_self_is_zero_and_shift_is_larger() -> None:
    f = _gaussian(40, 64, seed=0)
    assert abs(fid_from_features(f, f)) < 1e-8
    # A mean shift of 0.5 in every dimension adds |Δμ|² = 64 * 0.25 = 16 on top of the rest.
    shifted = fid_from_features(f, f + 0.5)
    assert shifted == pytest.approx(16.0, rel=1e-9)
    assert fid_from_features(f, _gaussian(40, 64, seed=1, shift=1.0)) > 64.0


@pytest.mark.parametrize("n1, n2, d", [(20, 25, 32), (12, 12, 48), (80, 60, 16)])
def test_fid_matches_the_sqrtm_reference(n1: int, n2: int, d: int) -> None:
    # (20, 25, 32) and (12, 12, 48) take the exact low-rank path (singular covariances);
    # (80, 60, 16) goes through scipy's sqrtm. Both must agree with pytorch-fid's formula.
    x, y = _gaussian(n1, d, seed=2), _gaussian(n2, d, seed=3, shift=0.3) * 1.5
    reference = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert fid_from_features(x, y) == pytest.approx(reference, rel=1e-5)


def test_fid_rejects_bad_features() -> None:
    with pytest.raises(ValueError, match="feature sizes differ"):
        fid_from_features(np.zeros((4, 8)), np.zeros((4, 9)))
    with pytest.raises(ValueError, match="at least 2"):
        fid_from_features(np.zeros((1, 8)), np.zeros((4, 8)))
    with pytest.raises(ValueError, match="NaN"):
        fid_from_features(np.full((4, 8), np.nan), np.zeros((4, 8)))


def _kid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Bińkowski et al.'s unbiased MMD² written out as loops."""
    m, d = len(a), a.shape[1]

    def k(x: np.ndarray, y: np.ndarray) -> float:
        return (x @ y / d + 1.0) ** 3

    kaa = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j)
    kbb = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j)
    kab = sum(k(a[i], b[j]) for i in range(m) for j in range(m))
    return kaa / (m * (m - 1)) + kbb / (m * (m - 1)) - 2 * kab / m**2


def test_kid_matches_reference_formula() -> None:
    a, b = _gaussian(12, 8, seed=4), _gaussian(12, 8, seed=5, shift=0.2)
    mean, std = kid_from_features(a, b, subset_size=12, n_subsets=1)
    assert mean == pytest.approx(_kid_reference(a, b), rel=1e-10) and std == 0.0


def test_kid_self_is_small_and_shift_is_larger() -> None:
    f = _gaussian(200, 64, seed=0)
    n = kid_subset_size(200, 200)
    self_kid, _ = kid_from_features(f, f, subset_size=n, n_subsets=kid_n_subsets(200, 200, n))
    shifted, _ = kid_from_features(f, f + 1.0, subset_size=n, n_subsets=1)
    assert shifted > 1.0
    assert abs(self_kid) < 0.02 * shifted
    # The self-score is not exactly 0: same-image pairs enter the cross term (module docstring).
    gram = (f @ f.T / f.shape[1] + 1.0) ** 3
    off_diag = (gram.sum() - np.trace(gram)) / (n * (n - 1))
    assert self_kid == pytest.approx(-2.0 / n * (np.trace(gram) / n - off_diag), rel=1e-9)
    # Two independent samples of one distribution: about 0 too.
    other, _ = kid_from_features(f, _gaussian(200, 64, seed=9), subset_size=n, n_subsets=1)
    assert abs(other) < 0.02 * shifted


def test_kid_subsets_are_deterministic_and_vary() -> None:
    a, b = _gaussian(60, 16, seed=6), _gaussian(50, 16, seed=7, shift=0.5)
    first = kid_from_features(a, b, subset_size=20, n_subsets=30, seed=3)
    assert first == kid_from_features(a, b, subset_size=20, n_subsets=30, seed=3)
    assert first != kid_from_features(a, b, subset_size=20, n_subsets=30, seed=4)
    assert first[1] > 0.0


def test_kid_subset_rule_adapts_to_small_sets() -> None:
    assert kid_subset_size(24, 24) == 24
    assert kid_n_subsets(24, 24, 24) == 1  # every subset would be the same 24 + 24 images
    assert kid_subset_size(24, 100) == 24
    assert kid_n_subsets(24, 100, 24) == 100
    assert kid_subset_size(5000, 3000) == 1000
    assert kid_n_subsets(5000, 3000, 1000) == 100
    with pytest.raises(ValueError, match="n_b=1"):
        kid_subset_size(24, 1)
    with pytest.raises(ValueError, match="subset_size must be between 2 and 10"):
        kid_from_features(np.zeros((10, 4)), np.zeros((12, 4)), subset_size=11, n_subsets=1)
