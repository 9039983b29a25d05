"""Check an exported model against PyTorch on real photos: parity (PSNR, max-abs), latency, thresholds.

The photos are real (the CC0/public-domain scikit-image photos the demo data is cut from, or the
user's ``--photos`` folder), never random noise: a generator's error shows on image statistics
(flat skin, edges, saturated colours), which uniform noise does not have.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.runtime.quality import Parity

# PSNR an export must reach against the fp32 PyTorch model (outputs in [-1, 1], peak-to-peak 2).
MIN_PSNR = {"fp32": 60.0, "fp16": 45.0}
# INT8 is held to the quantizer's own result: NNCF's fake-quant torch model vs fp32, minus this margin.
INT8_MARGIN_DB = 1.0
# Validation and calibration crops of the demo-data photos (see edgegan.data.demo.SOURCES).
PHOTO_SOURCES = ("astronaut", "chelsea", "coffee", "rocket")


def _skimage_photos() -> dict[str, np.ndarray]:
    try:
        import skimage.data
    except ImportError as err:
        raise EdgeGANError("export validation uses the photos that ship in scikit-image: "
                           "pip install 'edgegan[train]', or pass --photos DIR") from err
    return {name: np.ascontiguousarray(getattr(skimage.data, name)()) for name in PHOTO_SOURCES}


def demo_photos(size: int) -> np.ndarray:
    """8 validation photos, (8, size, size, 3) uint8: per source photo its centre square and a closer crop
    of its centre (a face-sized subject in the portrait)."""
    from edgegan.data.unpaired import resize_square

    out = []
    for rgb in _skimage_photos().values():
        h, w = rgb.shape[:2]
        s = min(h, w)
        t = s // 2
        for y, x, side in (((h - s) // 2, (w - s) // 2, s), ((h - t) // 3, (w - t) // 2, t)):
            out.append(resize_square(rgb[y:y + side, x:x + side], size))
    return np.stack(out)


def demo_calibration(size: int) -> np.ndarray:
    """36 calibration photos, (36, size, size, 3) uint8: a 3x3 grid of tiles of each source photo, framed
    differently from the validation crops."""
    from edgegan.data.unpaired import resize_square

    out = []
    for rgb in _skimage_photos().values():
        h, w = rgb.shape[:2]
        th, tw = h // 3, w // 3
        out += [resize_square(rgb[r * th:(r + 1) * th, c * tw:(c + 1) * tw], size) for r in range(3) for c in range(3)]
    return np.stack(out)


def folder_photos(folder: str | Path, size: int, *, limit: int, min_images: int, role: str) -> np.ndarray:
    from edgegan.quantize.calibration import load_photos

    return load_photos(folder, size, limit=limit, min_images=min_images, role=role).images


def run_batched(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Batch-1 calls (every export is batch 1) over the photos, concatenated."""
    return np.concatenate([np.asarray(run(x[i:i + 1]), dtype=np.float32) for i in range(len(x))])


def int8_floor(nncf_vs_fp32: Parity) -> float:
    """The PSNR (vs fp32 PyTorch) an INT8 export must reach: the quantizer's own result minus the margin."""
    return nncf_vs_fp32.psnr_db - INT8_MARGIN_DB
