"""Calibration photos for INT8: real domain-A images from a folder, resized like the training data.

No torch here. Unreadable files are skipped with a warning (as the trainer does); a folder that is
missing, empty or has fewer than :data:`MIN_IMAGES` readable photos is one clear ``EdgeGANError``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegan.data.images import list_images, load_rgb
from edgegan.data.unpaired import resize_square, to_model_range
from edgegan.errors import EdgeGANError, ImageError

log = logging.getLogger(__name__)

MIN_IMAGES = 8  # below this the activation ranges are a guess, not a measurement
DEFAULT_IMAGES = 300  # NNCF's default subset size


@dataclass
class PhotoSet:
    """(N, S, S, 3) uint8 RGB photos and where they came from."""

    folder: Path
    names: list[str]
    images: np.ndarray
    skipped: list[str]

    def __len__(self) -> int:
        return len(self.images)


def spread(n_total: int, n_wanted: int) -> list[int]:
    """``n_wanted`` indices spread evenly over ``range(n_total)`` (all of them if there are fewer)."""
    if n_total <= n_wanted:
        return list(range(n_total))
    return sorted({int(i) for i in np.linspace(0, n_total - 1, n_wanted).round()})


def load_photos(folder: str | Path, size: int, *, limit: int = DEFAULT_IMAGES, min_images: int = MIN_IMAGES,
                role: str = "--calib") -> PhotoSet:
    """Up to ``limit`` readable photos of ``folder``, spread over its sorted file list, resized to ``size``.

    Raises:
        EdgeGANError: the folder is missing or not a folder, holds no image files, or fewer than
            ``min_images`` of them are readable (the message names the folder and the first bad file).
    """
    if limit < min_images:
        raise EdgeGANError(f"{role}: asked for {limit} calibration images, at least {min_images} are needed")
    folder = Path(folder)
    files = list_images(folder, role=role)
    names, images, skipped = [], [], []
    # Read in spread order until `limit` good ones are found, so bad files are replaced by others.
    first = spread(len(files), limit)
    order = first + sorted(set(range(len(files))) - set(first))
    for i in order:
        if len(images) == limit:
            break
        try:
            images.append(resize_square(load_rgb(files[i]), size))
            names.append(files[i].name)
        except ImageError as err:
            skipped.append(str(err))
    if skipped:
        log.warning("%s: skipped %d unreadable file(s), e.g. %s", role, len(skipped), skipped[0])
    if len(images) < min_images:
        bad = f" ({len(skipped)} unreadable, e.g. {skipped[0]})" if skipped else ""
        raise EdgeGANError(f"{role} {folder}: only {len(images)} readable image(s) of {len(files)}{bad}; "
                           f"INT8 calibration needs at least {min_images} photos")
    return PhotoSet(folder, names, np.stack(images), skipped)


def crop_batch(images: np.ndarray, size: int, step: int, batch: int, *, seed: int = 0) -> np.ndarray:
    """The QAT batch of ``step``: random ``size`` crops (and flips) of resized photos, a pure function
    of (seed, step), so a resumed run sees the same batches. float32 (B, 3, size, size) in [-1, 1]."""
    rng = np.random.default_rng([seed, step])
    n, h, w = images.shape[:3]
    out = np.empty((batch, size, size, 3), np.uint8)
    for b, i in enumerate(rng.integers(0, n, batch)):
        top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        crop = images[i, top:top + size, left:left + size]
        out[b] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return to_model_range(out)
