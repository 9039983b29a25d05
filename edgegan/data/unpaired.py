"""Unpaired two-domain training data (``trainA/ trainB/ testA/ testB/``), no torch needed.

Every sample is a pure function of ``(seed, domain, sample_index)``: which image, where it is
cropped and whether it is flipped. A resumed or multi-process run therefore draws exactly the
batches an uninterrupted single run would, with no sampler state to save.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgegan.data.images import list_images, load_rgb
from edgegan.errors import EdgeGANError, ImageError

log = logging.getLogger(__name__)

DOMAIN_IDS = {"trainA": 0, "trainB": 1, "testA": 2, "testB": 3}


def resize_square(rgb: np.ndarray, side: int) -> np.ndarray:
    """Resize the short side to ``side`` and centre-crop to a square, so faces keep their shape."""
    h, w = rgb.shape[:2]
    scale = side / min(h, w)
    nh, nw = max(side, round(h * scale)), max(side, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.resize(rgb, (nw, nh), interpolation=interp)
    top, left = (nh - side) // 2, (nw - side) // 2
    return np.ascontiguousarray(out[top:top + side, left:left + side])


def to_model_range(batch_hwc: np.ndarray) -> np.ndarray:
    """uint8 (B, H, W, 3) RGB -> float32 (B, 3, H, W) in [-1, 1]."""
    return (batch_hwc.astype(np.float32).transpose(0, 3, 1, 2) / 127.5) - 1.0


@dataclass
class Domain:
    """The readable images of one folder, resized once to ``load_size`` (kept in memory if small)."""

    role: str
    files: list[Path]
    load_size: int
    cached: list[np.ndarray] | None
    skipped: list[str]

    def __len__(self) -> int:
        return len(self.files)

    def image(self, index: int) -> np.ndarray:
        if self.cached is not None:
            return self.cached[index]
        return resize_square(load_rgb(self.files[index]), self.load_size)


def load_domain(folder: Path, role: str, load_size: int, *, cache_mb: float = 1024,
                progress: bool = False) -> Domain:
    """Decode every image once: bad files are skipped with a warning and counted, not fatal."""
    files = list_images(folder, role=role)
    per_image_mb = load_size * load_size * 3 / 2**20
    keep = len(files) * per_image_mb <= cache_mb
    good: list[Path] = []
    cached: list[np.ndarray] = []
    skipped: list[str] = []
    iterator = files
    if progress:
        from tqdm import tqdm

        iterator = tqdm(files, desc=f"checking {role}", unit="img", leave=False)
    for path in iterator:
        try:
            img = resize_square(load_rgb(path), load_size)
        except ImageError as err:
            skipped.append(str(err))
            continue
        good.append(path)
        if keep:
            cached.append(img)
    if skipped:
        log.warning("%s: skipped %d unreadable file(s) of %d, e.g. %s", role, len(skipped), len(files),
                    skipped[0])
    if not good:
        raise EdgeGANError(f"{role}: none of the {len(files)} files in {folder} is a readable image "
                           f"(first: {skipped[0]})")
    return Domain(role, good, load_size, cached if keep else None, skipped)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


class UnpairedData:
    """trainA/trainB for training (resize -> random crop -> flip), testA/testB for sample grids.

    ``domains=("trainA",)`` loads one side only (distillation trains on photos alone); the
    samples it draws are the same as a two-domain instance's for that side.
    """

    def __init__(self, root: str | Path, size: int, *, seed: int = 0, cache_mb: float = 1024,
                 progress: bool = False, domains: tuple[str, ...] = ("trainA", "trainB")):
        root = Path(root)
        if not root.is_dir():
            raise EdgeGANError(f"--data: {root} is not a folder (expected trainA/ trainB/ testA/ testB/)")
        unknown = [r for r in domains if r not in ("trainA", "trainB")]
        if unknown or not domains:
            raise ValueError(f"domains must be trainA and/or trainB, got {domains!r}")
        self.size, self.seed = size, seed
        self.load_size = round(size * 286 / 256)  # U-GAT-IT: 286 -> random 256 crop
        self.train = {r: load_domain(root / r, r, self.load_size, cache_mb=cache_mb, progress=progress)
                      for r in domains}
        # Test folders are optional for training: samples then come from the training images.
        self.test = {}
        for r, fallback in (("testA", "trainA"), ("testB", "trainB")):
            if fallback not in domains:
                continue
            if (root / r).is_dir() and any(p for p in (root / r).iterdir()):
                self.test[r] = load_domain(root / r, r, size, cache_mb=cache_mb)
            else:
                log.warning("%s: no %s folder, sample grids use %s", root, r, fallback)
                self.test[r] = load_domain(root / fallback, fallback, size, cache_mb=cache_mb)
        self._perm_cache: dict[tuple[int, int], np.ndarray] = {}

    def _pick(self, role: str, k: int) -> np.ndarray:
        domain = self.train[role]
        dom_id, n = DOMAIN_IDS[role], len(domain)
        epoch, pos = divmod(k, n)
        perm = self._perm_cache.get((dom_id, epoch))
        if perm is None:
            perm = _rng(self.seed, dom_id, epoch).permutation(n)
            self._perm_cache = {k2: v for k2, v in self._perm_cache.items() if k2[0] != dom_id}
            self._perm_cache[(dom_id, epoch)] = perm
        img = domain.image(int(perm[pos]))
        r = _rng(self.seed, dom_id, 1_000_003, k)
        top, left = r.integers(0, self.load_size - self.size + 1, size=2)
        crop = img[top:top + self.size, left:left + self.size]
        return crop[:, ::-1] if r.random() < 0.5 else crop

    def batch(self, step: int, batch: int, *, rank: int = 0, world: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """The (real_A, real_B) batch of ``step`` for process ``rank``: float32 (B, 3, H, W) in [-1, 1]."""
        return (self.domain_batch("trainA", step, batch, rank=rank, world=world),
                self.domain_batch("trainB", step, batch, rank=rank, world=world))

    def domain_batch(self, role: str, step: int, batch: int, *, rank: int = 0, world: int = 1) -> np.ndarray:
        """One domain of :meth:`batch` (``role`` "trainA" or "trainB"): float32 (B, 3, H, W) in [-1, 1]."""
        first = (step * world + rank) * batch
        crops = np.stack([self._pick(role, first + i) for i in range(batch)])
        return to_model_range(crops)

    def test_batch(self, role: str, n: int) -> np.ndarray:
        """The first ``n`` test images of ``role`` ("testA"/"testB"), centre-resized, in [-1, 1]."""
        domain = self.test[role]
        imgs = np.stack([domain.image(i % len(domain)) for i in range(n)])
        return to_model_range(imgs)
