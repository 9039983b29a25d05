"""The one PSNR in EdgeGAN, and the parity of a model's outputs against a reference. Numpy only.

Everything that scores images or compares runtimes uses these: ``edgegan eval`` (uint8 photos,
peak 255), export validation and ``edgegan bench`` (model outputs in [-1, 1], peak-to-peak 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgegan.errors import EdgeGANError

MODEL_RANGE = 2.0  # peak-to-peak of a generator's output ([-1, 1])


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio, in dB, of two arrays of the same shape.

    Args:
        a, b: images (or batches), uint8 or float.
        data_range: the span of valid values: 255 for uint8, 2 for model outputs in [-1, 1].

    Returns:
        ``10 * log10(data_range**2 / MSE)``; ``math.inf`` when they are identical (MSE 0).
    """
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError(f"empty image of shape {a.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(data_range**2 / mse)


@dataclass
class Parity:
    """A model's outputs against a reference's on the same inputs (model output units, [-1, 1])."""

    psnr_db: float
    max_abs: float
    n: int

    def to_dict(self) -> dict:
        return {"psnr_db": None if math.isinf(self.psnr_db) else round(self.psnr_db, 2),
                "max_abs": float(self.max_abs), "n": self.n}


def compare(y: np.ndarray, ref: np.ndarray) -> Parity:
    """PSNR over all outputs (peak-to-peak 2) and the largest absolute difference, batch (N, ...) each."""
    if y.shape != ref.shape:
        raise EdgeGANError(f"output shape {tuple(y.shape)} differs from the reference's {tuple(ref.shape)}")
    diff = np.abs(y.astype(np.float64) - ref.astype(np.float64))
    return Parity(psnr(y, ref, MODEL_RANGE), float(diff.max()), len(y))
