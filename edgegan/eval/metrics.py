"""Image-quality metrics on numpy arrays: paired PSNR/SSIM, and FID/KID from feature vectors.

No torch here: the edge runtime scores its outputs with :func:`psnr` and :func:`ssim` alone.
scikit-image (SSIM) and scipy (FID of sets larger than the feature size) are imported inside the
functions that need them.

KID on small test sets
----------------------
Bińkowski et al. (2018), and U-GAT-IT after them (which reports KID×100 ± std), average the
unbiased MMD² with the kernel k(x, y) = (x·y/d + 1)³ over 100 random subsets of 1000 images
per set, drawn without replacement; the "± std" is the spread of those 100 estimates. A test
set of 24 (or selfie2anime's 100) images cannot fill a 1000-image subset, so:

* subset size = ``min(1000, n_a, n_b)`` (:func:`kid_subset_size`). The estimator is unbiased at
  any subset size, so its expected value does not depend on the size; its variance falls as
  the subset grows, and averaging the estimate over all subsets of size m < n gives exactly
  the estimate on all n images, so smaller subsets would only add sampling noise.
* number of subsets = 100, except when the subsets would be the whole of both sets (n_a ==
  n_b <= 1000): every draw is then the same (the estimate does not depend on order), so it
  is computed once, ``n_subsets`` is 1 and the std is 0 (:func:`kid_n_subsets`). There is no
  subset spread to quote then; a published "± std" at 1000 images is not comparable anyway.

The estimator assumes the two sets are independent samples. A set scored against *itself* gives
not 0 but -2/m · (mean k(x, x) - mean k(x, x')) (same-image pairs enter the cross term): about
-3.9 (×100) for 16 demo images. Sanity-check with disjoint sets, not with a copy.

On a few dozen images FID is strongly biased upwards (it depends on n) and KID is noisy:
compare models on the same test set, and never against numbers from the papers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.runtime.quality import psnr

SSIM_WIN_SIZE = 7  # scikit-image's default window side
SSIM_MIN_WIN_SIZE = 3
KID_MAX_SUBSET_SIZE = 1000  # Bińkowski et al.'s subset size
KID_N_SUBSETS = 100  # ... and number of subsets
FID_EPS = 1e-6  # diagonal offset for singular covariances (as pytorch-fid / TTUR)
FID_MAX_IMAG = 1e-3  # largest imaginary part tolerated on the diagonal of sqrtm's result


# --------------------------------------------------------------------------- paired metrics


def _as_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError(f"empty image of shape {a.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def _check_range(data_range: float) -> None:
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")


def ssim_win_size(height: int, width: int) -> int:
    """SSIM window side: scikit-image's 7, or the largest odd side (>= 3) that fits the image."""
    side = min(height, width, SSIM_WIN_SIZE)
    if side < SSIM_MIN_WIN_SIZE:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    return side if side % 2 else side - 1


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean structural similarity of two (H, W, C) images, channels averaged; 1.0 when identical.

    scikit-image's ``structural_similarity`` with its defaults (uniform 7x7 window, sample
    covariance), which differ slightly from the Gaussian-window SSIM of Wang et al.; images
    under 7 px a side use the largest odd window that fits (:func:`ssim_win_size`).
    """
    try:
        from skimage.metrics import structural_similarity
    except ImportError as e:
        raise EdgeGANError("SSIM needs scikit-image: pip install 'edgegan[eval]'") from e
    _check_range(data_range)
    x, y = _as_pair(a, b)
    if x.ndim != 3:
        raise ValueError(f"SSIM expects (H, W, C) images, got shape {x.shape}")
    win = ssim_win_size(x.shape[0], x.shape[1])
    return float(structural_similarity(x, y, data_range=data_range, channel_axis=-1, win_size=win))


def paired_scores(
    outputs: Sequence[np.ndarray], targets: Sequence[np.ndarray], *, data_range: float = 255.0
) -> dict[str, float | int]:
    """PSNR and SSIM of each output against its target, summarised over the pairs.

    Returns:
        ``{"n", "psnr_mean", "psnr_std", "psnr_identical", "ssim_mean", "ssim_std"}``. The PSNR
        mean and std are over the finite values; ``psnr_identical`` counts the pairs that are
        identical (PSNR inf). If every pair is identical, ``psnr_mean`` is inf and ``psnr_std``
        0. Standard deviations are population ones (ddof 0).

    Raises:
        ValueError: the lists differ in length or are empty, or a pair differs in shape (the
            message names the pair's index and both shapes).
    """
    if len(outputs) != len(targets):
        raise ValueError(f"{len(outputs)} outputs but {len(targets)} targets")
    if not outputs:
        raise ValueError("no image pairs to score")
    for i, (out, tgt) in enumerate(zip(outputs, targets)):
        if np.shape(out) != np.shape(tgt):
            raise ValueError(f"pair {i}: output shape {np.shape(out)} != target shape {np.shape(tgt)}")
    psnrs = [psnr(o, t, data_range) for o, t in zip(outputs, targets)]
    ssims = [ssim(o, t, data_range) for o, t in zip(outputs, targets)]
    finite = [p for p in psnrs if math.isfinite(p)]
    return {
        "n": len(psnrs),
        "psnr_mean": float(np.mean(finite)) if finite else math.inf,
        "psnr_std": float(np.std(finite)) if finite else 0.0,
        "psnr_identical": len(psnrs) - len(finite),
        "ssim_mean": float(np.mean(ssims)),
        "ssim_std": float(np.std(ssims)),
    }


# --------------------------------------------------------------------------- FID / KID


def _features(f: np.ndarray, name: str) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{name} must be an (N, D) feature array, got shape {f.shape}")
    if len(f) < 2:
        raise ValueError(f"{name} needs at least 2 feature vectors, got {len(f)}")
    if not np.isfinite(f).all():
        raise ValueError(f"{name} holds NaN or inf values")
    return f


def _feature_pair(f1: np.ndarray, f2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = _features(f1, "f1"), _features(f2, "f2")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sizes differ: f1 has {x.shape[1]}, f2 has {y.shape[1]}")
    return x, y


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, *, eps: float = FID_EPS
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), as pytorch-fid computes it.

    ``|mu1 - mu2|² + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))`` with scipy's ``sqrtm``. When
    sqrtm is not finite (singular covariances) ``eps`` is added to both diagonals; the tiny
    imaginary parts sqrtm leaves from rounding are dropped. Costs O(D³): tens of seconds for
    D = 2048 on a small CPU.

    Raises:
        ValueError: sqrtm's result has an imaginary part above 1e-3 on its diagonal.
    """
    from scipy import linalg

    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if imag > FID_MAX_IMAG:
            raise ValueError(f"FID: matrix square root has an imaginary component of {imag:.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet Inception Distance of two (N, D) feature sets (Gaussian fits; lower is better).

    With no more images than feature dimensions (every test set here: N <= 2048) the covariances
    are singular and ``tr sqrtm(sigma1 sigma2)`` is computed exactly from the centred features:
    with sigma1 = AᵀA and sigma2 = BᵀB it is the sum of the singular values of A·Bᵀ (N1 x N2),
    milliseconds instead of the minute :func:`frechet_distance`'s 2048x2048 sqrtm takes on two
    cores, and with no eps or imaginary parts involved. Larger sets use :func:`frechet_distance`.
    """
    x, y = _feature_pair(f1, f2)
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    if max(len(x), len(y)) > x.shape[1]:
        return frechet_distance(mu1, np.cov(x, rowvar=False), mu2, np.cov(y, rowvar=False))
    a = (x - mu1) / math.sqrt(len(x) - 1)  # (N1, D): np.cov(x) == a.T @ a
    b = (y - mu2) / math.sqrt(len(y) - 1)  # (N2, D)
    tr_covmean = float(np.linalg.svd(a @ b.T, compute_uv=False).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.sum(a * a) + np.sum(b * b) - 2.0 * tr_covmean)


def kid_subset_size(n_a: int, n_b: int) -> int:
    """KID subset size: ``min(1000, n_a, n_b)`` (why: see the module docstring)."""
    for name, n in (("n_a", n_a), ("n_b", n_b)):
        if n < 2:
            raise ValueError(f"KID needs at least 2 images per set, got {name}={n}")
    return min(KID_MAX_SUBSET_SIZE, n_a, n_b)


def kid_n_subsets(n_a: int, n_b: int, subset_size: int) -> int:
    """Number of KID subsets: 100, or 1 when every subset would be the whole of both sets."""
    return 1 if subset_size >= max(n_a, n_b) else KID_N_SUBSETS


def _polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b.T / a.shape[1] + 1.0) ** 3  # (m, m)


def _mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    # Bińkowski et al.'s estimator: within-set sums without the diagonal, the full cross term.
    m = len(a)
    k_aa, k_bb, k_ab = _polynomial_kernel(a, a), _polynomial_kernel(b, b), _polynomial_kernel(a, b)
    within = (k_aa.sum() - np.trace(k_aa)) + (k_bb.sum() - np.trace(k_bb))
    return float(within / (m * (m - 1)) - 2.0 * k_ab.sum() / (m * m))


def kid_from_features(
    f1: np.ndarray, f2: np.ndarray, *, subset_size: int, n_subsets: int, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance (unbiased MMD², cubic polynomial kernel) of two feature sets.

    Args:
        f1, f2: (N, D) features.
        subset_size: images drawn (without replacement) from each set per subset.
        n_subsets: number of subsets; the draws come from ``numpy.random.default_rng(seed)``,
            so the result is a pure function of the inputs and the seed.

    Returns:
        (mean, std) of the MMD² estimates over the subsets, unscaled (papers print ×100). An
        unbiased estimate can be slightly negative when the sets match.
    """
    x, y = _feature_pair(f1, f2)
    if not 2 <= subset_size <= min(len(x), len(y)):
        raise ValueError(f"subset_size must be between 2 and {min(len(x), len(y))}, got {subset_size}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be at least 1, got {n_subsets}")
    rng = np.random.default_rng(seed)
    estimates = np.empty(n_subsets)
    for s in range(n_subsets):
        a = x[rng.choice(len(x), subset_size, replace=False)]
        b = y[rng.choice(len(y), subset_size, replace=False)]
        estimates[s] = _mmd2_unbiased(a, b)
    return float(estimates.mean()), float(estimates.std())
