"""Built-in offline demo data: a paired synthetic benchmark that is trained unpaired.

Domain A is crops of the public-domain/CC0 photos that ship inside scikit-image's wheel; domain B
is the same kind of crop passed through :func:`cartoonize`, a deterministic OpenCV stylisation.
Each photo is cut into a grid of tiles and every tile belongs to exactly one split, so trainA,
trainB and the test folders never share a pixel; the test photos come with their exact cartoon
ground truth (``testA_gt``), which makes the unpaired translation measurable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgegan import __version__
from edgegan.data.images import encode_png
from edgegan.errors import EdgeGANError
from edgegan.io_utils import write_json_atomic, write_text_atomic


@dataclass(frozen=True)
class _Source:
    name: str
    licence: str
    credit: str
    url: str


# Crops flatter than this (grey std, 0..255) are redrawn, at most MAX_DRAWS times.
MIN_GREY_STD = 6.0
MAX_DRAWS = 50

SOURCES: tuple[_Source, ...] = (
    _Source(
        "astronaut",
        "Public domain (NASA)",
        "NASA, portrait of astronaut Eileen Collins",
        "https://flic.kr/p/r9qvLn",
    ),
    _Source("chelsea", "CC0 1.0", "Stefan van der Walt (Chelsea the cat)", ""),
    _Source("coffee", "CC0 1.0", "Rachel Michetti, courtesy of Pikolo Espresso Bar", ""),
    _Source(
        "rocket",
        "Public domain (SpaceX)",
        "SpaceX, launch of DSCOVR on Falcon 9",
        "https://www.flickr.com/photos/spacexphotos/16511594820/",
    ),
)

TILE_PX = 128  # target tile side in source pixels; crops never leave their tile
CROP_SCALE = (0.6, 1.0)  # crop side as a fraction of the tile's shorter side
TEST_FRACTION = 0.2  # share of each photo's tiles held out for testA/testB
SPLITS = ("trainA", "trainB", "testA", "testA_gt", "testB")
MAX_COUNT = 100_000  # file names are 5 digits
_MAX_SMOOTH_PX = 128  # cartoonize smooths larger images at this short side, then upsamples
# Which folders each split's crops go to, and whether stylised; testA_gt reuses testA's crops.
_WRITES = {
    "trainA": (("trainA", False),),
    "trainB": (("trainB", True),),
    "testA": (("testA", False), ("testA_gt", True)),
    "testB": (("testB", True),),
}

STYLISATION = (
    "cartoonize(): three bilateral-filter passes (edge-preserving smoothing; images above 128 px "
    "are smoothed at 128 px and upsampled), lightness quantised "
    "to 6 uniform levels and chroma (Lab a/b) to steps of 12, then Canny edges of the smoothed "
    "image (short fragments removed, thickened above 128 px) drawn in a dark shade of the "
    "underlying colour. Applied at the output resolution; all parameters scale with image size."
)


@contextlib.contextmanager
def _cv2_single_thread() -> Iterator[None]:
    # OpenCV's parallel Canny splits the image into per-thread stripes; one thread keeps the
    # output independent of the machine's core count.
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def cartoonize(rgb: np.ndarray) -> np.ndarray:
    """Deterministic cartoon stylisation of an (H, W, 3) uint8 RGB image; same shape and dtype.

    Smoothing, quantisation and outlines are sized relative to a 64 px image, so the result looks
    alike at 64..1024 px.
    """
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError(f"cartoonize expects an (H, W, 3) uint8 array, got {getattr(rgb, 'shape', rgb)}")
    h, w = rgb.shape[:2]
    k = min(h, w) / 64.0
    # Bilateral cost grows with the square of its diameter: smooth large images at 128 px and
    # upsample the flat result (it looks the same, at a tenth of the cost for 256 px).
    shrink = min(1.0, _MAX_SMOOTH_PX / min(h, w))
    with _cv2_single_thread():
        smooth = np.ascontiguousarray(rgb)
        if shrink < 1.0:
            small = (max(1, round(w * shrink)), max(1, round(h * shrink)))
            smooth = cv2.resize(smooth, small, interpolation=cv2.INTER_AREA)
        diameter = max(5, round(5 * k * shrink) | 1)
        for _ in range(3):
            smooth = cv2.bilateralFilter(smooth, diameter, 40, 2.5 * k * shrink)
        if shrink < 1.0:
            smooth = cv2.resize(smooth, (w, h), interpolation=cv2.INTER_CUBIC)

        # Quantise lightness into flat bands but keep the hue: uniform RGB levels shift hues in
        # gradients (a blue sky turns into purple and green stripes).
        lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB).astype(np.float32)
        step = 256.0 / 6
        lab[..., 0] = (np.floor(lab[..., 0] / step) + 0.5) * step
        lab[..., 1:] = np.round((lab[..., 1:] - 128.0) / 12.0) * 12.0 + 128.0
        out = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)

        # Upsampling spreads each step over 1/shrink pixels, so the gradients shrink by as much.
        lo, hi = 60 * shrink, 140 * shrink
        edges = cv2.Canny(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY), lo, hi, L2gradient=True)
        edges = _drop_short_edges(edges, min_pixels=max(2, round(3 * k)))
        if k >= 2:
            size = int(k) | 1
            edges = cv2.dilate(edges, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    ink = edges > 0
    out[ink] = (out[ink] // 5).astype(np.uint8)
    return out


def _drop_short_edges(edges: np.ndarray, *, min_pixels: int) -> np.ndarray:
    # Isolated specks from texture read as noise, not as outlines.
    _, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_pixels
    keep[0] = False
    return np.where(keep[labels], np.uint8(255), np.uint8(0))


# --------------------------------------------------------------------------- building the dataset


def _load_sources() -> dict[str, np.ndarray]:
    try:
        import skimage.data
    except ImportError as e:
        raise EdgeGANError(
            "the demo dataset needs scikit-image (its photos ship inside the package): "
            "pip install 'edgegan[train]'"
        ) from e
    return {s.name: np.ascontiguousarray(getattr(skimage.data, s.name)()) for s in SOURCES}


def _tiles(shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """Non-overlapping (x, y, w, h) tiles of about TILE_PX covering the photo, row-major."""
    h, w = shape[:2]
    rows, cols = max(1, h // TILE_PX), max(1, w // TILE_PX)
    ys = np.linspace(0, h, rows + 1).astype(int)
    xs = np.linspace(0, w, cols + 1).astype(int)
    return [
        (int(xs[c]), int(ys[r]), int(xs[c + 1] - xs[c]), int(ys[r + 1] - ys[r]))
        for r in range(rows)
        for c in range(cols)
    ]


def _assign_tiles(n_tiles: int, rng: np.random.Generator) -> dict[str, list[int]]:
    """Shuffle one photo's tiles into trainA / trainB / testA / testB (testA_gt shares testA)."""
    if n_tiles < 4:
        raise AssertionError("every demo source photo needs at least 4 tiles")
    order = [int(i) for i in rng.permutation(n_tiles)]
    n_test = max(2, round(TEST_FRACTION * n_tiles))
    n_train_a = (n_tiles - n_test + 1) // 2
    n_test_a = (n_test + 1) // 2
    test, train = order[:n_test], order[n_test:]
    return {
        "trainA": sorted(train[:n_train_a]),
        "trainB": sorted(train[n_train_a:]),
        "testA": sorted(test[:n_test_a]),
        "testB": sorted(test[n_test_a:]),
    }


def _tile_odds(
    photos: dict[str, np.ndarray], tiles: dict[str, list], pool: list[tuple[str, int]]
) -> np.ndarray:
    """Sampling odds of each (source, tile): textured tiles are drawn more often than plain sky."""
    spread = []
    for name, t in pool:
        x, y, w, h = tiles[name][t]
        grey = cv2.cvtColor(photos[name][y : y + h, x : x + w], cv2.COLOR_RGB2GRAY)
        # Rounded, so the odds cannot depend on the platform's float summation order.
        spread.append(round(max(float(grey.std()), 8.0), 1))
    odds = np.array(spread)
    return odds / odds.sum()


def _draw_crop(
    photo: np.ndarray, tile: tuple[int, int, int, int], size: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[int], bool]:
    tx, ty, tw, th = tile
    side = max(1, round(float(rng.uniform(*CROP_SCALE)) * min(tw, th)))
    x = tx + int(rng.integers(0, tw - side + 1))
    y = ty + int(rng.integers(0, th - side + 1))
    flip = bool(rng.random() < 0.5)
    crop = photo[y : y + side, x : x + side]
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
    crop = cv2.resize(crop, (size, size), interpolation=interp)
    if flip:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop), [x, y, side, side], flip


def _draw_textured_crop(photos, tiles, pool, odds, size, rng):
    """Draw crops until photo and cartoon both have some texture.

    A flat crop (clear sky) becomes one uniform colour after stylisation; instance norm then
    divides by ~sqrt(eps) in every layer and the gradients overflow to NaN within a few steps.
    """
    for _ in range(MAX_DRAWS):
        name, t = pool[int(rng.choice(len(pool), p=odds))]
        photo, box, flip = _draw_crop(photos[name], tiles[name][t], size, rng)
        cartoon = cartoonize(photo)
        if min(_grey_std(photo), _grey_std(cartoon)) >= MIN_GREY_STD:
            break
    return name, t, photo, cartoon, box, flip


def _grey_std(rgb: np.ndarray) -> float:
    return float(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).std())


def _check_args(size: int, n_train: int, n_test: int) -> None:
    if not 32 <= size <= 1024:
        raise EdgeGANError(f"--size must be between 32 and 1024 pixels, got {size}")
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if not 1 <= n <= MAX_COUNT:
            raise EdgeGANError(f"{name} must be between 1 and {MAX_COUNT}, got {n}")


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise EdgeGANError(f"{out} exists and is a file; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise EdgeGANError(f"{out} already exists; remove it or choose another --out")


def build_demo_dataset(
    out: Path,
    *,
    size: int = 64,
    n_train: int = 200,
    n_test: int = 24,
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the demo dataset to ``out/{trainA,trainB,testA,testA_gt,testB}/NNNNN.png``.

    Also writes ``SOURCES.json`` (provenance, licences, parameters), ``crops.json`` (the tile and
    crop boxes of every file) and ``README.md``. The folder appears complete or not at all, and
    the same arguments give byte-identical files.

    Returns:
        A summary: ``{"path", "size", "seed", "counts", "seconds"}``.
    """
    from tqdm import tqdm

    out = Path(out)
    _check_args(size, n_train, n_test)
    _check_out(out, overwrite)
    start = time.perf_counter()
    photos = _load_sources()
    rng = np.random.default_rng(seed)

    tiles = {name: _tiles(photo.shape) for name, photo in photos.items()}
    assignment = {name: _assign_tiles(len(t), rng) for name, t in tiles.items()}
    pools = {
        split: [(name, i) for name in photos for i in assignment[name][split]]
        for split in ("trainA", "trainB", "testA", "testB")
    }
    odds = {split: _tile_odds(photos, tiles, pool) for split, pool in pools.items()}
    counts = {"trainA": n_train, "trainB": n_train, "testA": n_test, "testA_gt": n_test, "testB": n_test}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.building-"))
    try:
        crops: dict[str, list[dict[str, Any]]] = {}
        for folder in SPLITS:
            (tmp / folder).mkdir()
        with tqdm(total=sum(counts.values()), desc="demo data", unit="img", disable=not progress) as bar:
            for split, writes in _WRITES.items():
                crops[split] = []
                for i in range(counts[split]):
                    name, t, photo, cartoon, box, flip = _draw_textured_crop(
                        photos, tiles, pools[split], odds[split], size, rng)
                    fname = f"{i:05d}.png"
                    for folder, stylised in writes:
                        (tmp / folder / fname).write_bytes(encode_png(cartoon if stylised else photo))
                        bar.update(1)
                    crops[split].append({"file": fname, "source": name, "tile": t, "box": box, "flip": flip})
        _write_metadata(tmp, photos, tiles, assignment, crops, size=size, counts=counts, seed=seed)
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "path": str(out),
        "size": size,
        "seed": seed,
        "counts": counts,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    _check_out(out, overwrite)  # again: something may have appeared while we were building
    if out.is_dir():
        if any(out.iterdir()):
            trash = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, trash / out.name)
            os.rename(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
            return
        out.rmdir()
    os.rename(tmp, out)


def _write_metadata(
    tmp: Path,
    photos: dict[str, np.ndarray],
    tiles: dict[str, list],
    assignment: dict,
    crops: dict[str, list],
    *,
    size: int,
    counts: dict[str, int],
    seed: int,
) -> None:
    from importlib.metadata import version

    skimage_version = version("scikit-image")
    write_json_atomic(
        tmp / "SOURCES.json",
        {
            "dataset": "edgegan demo: photo (A) -> synthetic cartoon (B)",
            "edgegan_version": __version__,
            "parameters": {
                "size": size,
                "n_train": counts["trainA"],
                "n_test": counts["testA"],
                "seed": seed,
                "tile_px": TILE_PX,
                "crop_scale": list(CROP_SCALE),
                "test_fraction": TEST_FRACTION,
                "hflip_probability": 0.5,
            },
            "splits": {
                "trainA": "photo crops from trainA tiles",
                "trainB": "cartoonize() of photo crops from trainB tiles (never the trainA images)",
                "testA": "photo crops from testA tiles",
                "testA_gt": "cartoonize() of the testA image with the same file name (exact ground truth)",
                "testB": "cartoonize() of photo crops from testB tiles (disjoint from testA), for FID/KID",
            },
            "counts": counts,
            "stylisation": STYLISATION,
            "sources": [
                {
                    "name": s.name,
                    "package": "scikit-image",
                    "package_version": skimage_version,
                    "loader": f"skimage.data.{s.name}()",
                    "shape": list(photos[s.name].shape),
                    "licence": s.licence,
                    "credit": s.credit,
                    "url": s.url,
                }
                for s in SOURCES
            ],
            "crops_file": "crops.json",
        },
    )
    write_json_atomic(
        tmp / "crops.json",
        {
            "box_format": "[x, y, width, height] in source-photo pixels, before resize and flip",
            "tiles": {
                name: {"boxes": [list(b) for b in tiles[name]], "splits": assignment[name]} for name in tiles
            },
            "crops": crops,
        },
    )
    write_text_atomic(
        tmp / "README.md",
        (
            "# EdgeGAN demo dataset\n\n"
            f"Made by `edgegan` {__version__} from four photos that ship inside scikit-image "
            f"{skimage_version} (NASA and SpaceX public domain, two CC0 photos; see `SOURCES.json`).\n\n"
            f"- `trainA/` ({counts['trainA']}): {size} px photo crops.\n"
            f"- `trainB/` ({counts['trainB']}): synthetic cartoons of *other* crops (unpaired).\n"
            f"- `testA/` ({counts['testA']}) and `testA_gt/`: held-out photo crops and their exact "
            "cartoon ground truth, same file names.\n"
            f"- `testB/` ({counts['testB']}): held-out cartoons for FID/KID.\n\n"
            "Every photo is cut into tiles and each tile belongs to one split, so the splits share no "
            "pixels (`crops.json` lists every crop box). The cartoons are a fixed OpenCV stylisation "
            "(`edgegan.data.demo.cartoonize`), so this is a small, learnable benchmark, not real "
            "cartoon art.\n"
        ),
    )
