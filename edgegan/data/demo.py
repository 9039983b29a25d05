"""Built-in offline demo data: a paired synthetic benchmark that is trained unpaired.

Domain A is crops of the public-domain/CC0 photos that ship inside scikit-image's and matplotlib's
wheels (two portraits among them: face crops train on one face and are tested on another); domain B
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
    package: str
    loader: str  # how the photo is read from the installed package
    licence: str
    credit: str
    url: str
    # A face found in the photo (dlib's HOG detector, x, y, w, h in source pixels) and the split its
    # region belongs to: the region is carved out of the tile grid as one tile of its own.
    face: tuple[int, int, int, int] | None = None
    face_split: str | None = None


# Crops flatter than this (grey std, 0..255) are redrawn, at most MAX_DRAWS times.
MIN_GREY_STD = 6.0
MAX_DRAWS = 50

# Every public-domain / CC0 colour photo that ships inside the installed packages (scikit-image's
# wheel, matplotlib's sample data). Two are portraits: the astronaut's face is held out for testA,
# Grace Hopper's trains domain A, so face crops are scored on a face the model never saw.
SOURCES: tuple[_Source, ...] = (
    _Source("astronaut", "scikit-image", "skimage.data.astronaut()", "Public domain (NASA)",
            "NASA, portrait of astronaut Eileen Collins", "https://flic.kr/p/r9qvLn",
            face=(175, 76, 91, 91), face_split="testA"),
    _Source("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "Public domain (U.S. Navy)",
            "U.S. Navy, portrait of Rear Admiral Grace M. Hopper (1984)",
            "https://commons.wikimedia.org/wiki/File:Commodore_Grace_M._Hopper,_USN_(covered).jpg",
            face=(180, 139, 187, 187), face_split="trainA"),
    _Source("chelsea", "scikit-image", "skimage.data.chelsea()", "CC0 1.0",
            "Stefan van der Walt (Chelsea the cat)", ""),
    _Source("coffee", "scikit-image", "skimage.data.coffee()", "CC0 1.0",
            "Rachel Michetti, courtesy of Pikolo Espresso Bar", ""),
    _Source("rocket", "scikit-image", "skimage.data.rocket()", "Public domain (SpaceX)",
            "SpaceX, launch of DSCOVR on Falcon 9", "https://www.flickr.com/photos/spacexphotos/16511594820/"),
    _Source("hubble_deep_field", "scikit-image", "skimage.data.hubble_deep_field()", "Public domain (NASA)",
            "NASA, Hubble eXtreme Deep Field",
            "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/"),
    _Source("retina", "scikit-image", "skimage.data.retina()", "CC0 1.0",
            "Mikael Häggström, fundus photograph of a normal left eye",
            "https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg"),
    _Source("immunohistochemistry", "scikit-image", "skimage.data.immunohistochemistry()",
            "No known copyright restrictions", "Center for Microscopy And Molecular Imaging (CMMI)", ""),
)

TILE_PX = 128  # target tile side in source pixels; crops never leave their tile
CROP_SCALE = (0.6, 1.0)  # crop side as a fraction of the tile's shorter side
FACE_REGION = 2.0  # side of a face's tile, in face widths (the face fills 1/2 to 2/3 of a crop)
FACE_CROP_SCALE = (0.75, 1.0)
FACE_EVERY = 3  # every third crop of a split that holds a face region is drawn from it
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

STYLE_VERSION = 2
STYLISATION = (
    "cartoonize() v2: bilateral-filter passes (edge-preserving smoothing; images above 128 px are "
    "smoothed at 128 px and upsampled); in Lab, a tone curve on lightness (gamma 0.6, then 4 flat bands "
    "joined by smooth ramps, lifted blacks), chroma x2.2 (saturated, same hues) and split toning (warm "
    "highlights, cool shadows); ink lines from a difference of Gaussians of the lightness (the dark side "
    "of every strong edge, soft-thresholded, about 2 px wide at 64 px) darken and desaturate the colour. "
    "Every step is a continuous function of the photo, so the style is learnable; sizes scale with the image."
)

# The v2 look, as numbers (see STYLISATION).
_SMOOTH_PASSES = 3
_TONE_GAMMA = 0.6
_BANDS = 4
_BAND_SHARPNESS = 6.0  # tanh slope inside a band: higher = flatter bands, shorter ramps
_BLACK, _WHITE = 0.08, 0.98  # lightness range after the tone curve
_CHROMA = 2.2
_SPLIT_TONE = 40.0  # b* shift per unit of lightness away from mid-grey (warm highlights, cool shadows)
_LINE_SIGMA = 0.9  # inner Gaussian of the line DoG, in pixels at 64 px
_LINE_THRESHOLD, _LINE_GAIN = 0.02, 40.0
_INK, _INK_DESATURATE = 0.6, 0.6


@contextlib.contextmanager
def _cv2_single_thread() -> Iterator[None]:
    # OpenCV's parallel filters split the image into per-thread stripes; one thread keeps the
    # output independent of the machine's core count.
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def _flat_bands(t: np.ndarray, bands: int, sharpness: float) -> np.ndarray:
    """[0, 1] -> [0, 1] in ``bands`` nearly flat steps joined by smooth ramps (continuous, monotone)."""
    x = t * bands
    step = np.floor(np.minimum(x, bands - 1e-6))
    ramp = 0.5 + 0.5 * np.tanh(sharpness * (x - step - 0.5)) / np.tanh(sharpness / 2)
    return (step + ramp) / bands


def cartoonize(rgb: np.ndarray) -> np.ndarray:
    """Deterministic cartoon stylisation of an (H, W, 3) uint8 RGB image; same shape and dtype.

    Smoothing and line width are sized relative to a 64 px image, so the result looks alike at
    64..1024 px. Hard thresholds (quantisation, Canny) are avoided on purpose: a style whose pixels
    jump on a sub-pixel change of the photo cannot be learned, and then no score can tell a model
    that learned the style from one that did not (v1's identity baseline was within 1 dB of a
    supervised model).
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
        for _ in range(_SMOOTH_PASSES):
            smooth = cv2.bilateralFilter(smooth, diameter, 30, 2.0 * k * shrink)
        if shrink < 1.0:
            smooth = cv2.resize(smooth, (w, h), interpolation=cv2.INTER_CUBIC)

        lab = cv2.cvtColor(smooth.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)  # L 0..100, a/b ~±127
        grey = lab[..., 0] / 100.0
        light = _flat_bands(grey ** _TONE_GAMMA, _BANDS, _BAND_SHARPNESS)
        light = _BLACK + (_WHITE - _BLACK) * light
        chroma = lab[..., 1:] * _CHROMA
        # Split toning: warm highlights, cool shadows (b* towards yellow where bright, blue where dark).
        chroma[..., 1] += _SPLIT_TONE * (light - 0.5)

        sigma = _LINE_SIGMA * k
        dog = cv2.GaussianBlur(grey, (0, 0), sigma) - cv2.GaussianBlur(grey, (0, 0), 1.6 * sigma)
        line = np.clip((-dog - _LINE_THRESHOLD) * _LINE_GAIN, 0.0, 1.0)
        light = light * (1.0 - _INK * line)
        chroma = chroma * (1.0 - _INK_DESATURATE * line[..., None])
        out = cv2.cvtColor(np.dstack([light * 100.0, chroma]).astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- building the dataset


def load_source_photos() -> dict[str, np.ndarray]:
    """Every source photo as (H, W, 3) uint8 RGB, read from the installed packages (nothing is downloaded)."""
    try:
        import skimage.data
    except ImportError as e:
        raise EdgeGANError(
            "the demo dataset needs scikit-image (its photos ship inside the package): "
            "pip install 'edgegan[train]'"
        ) from e
    photos = {}
    for s in SOURCES:
        if s.package == "scikit-image":
            photos[s.name] = np.ascontiguousarray(getattr(skimage.data, s.name)())
        else:
            photos[s.name] = _package_photo(s)
    return photos


def _package_photo(source: _Source) -> np.ndarray:
    """A photo shipped as a data file inside ``source.package``, found without importing the package."""
    import importlib.util

    spec = importlib.util.find_spec(source.package)
    if spec is None or not spec.submodule_search_locations:
        raise EdgeGANError(f"the demo dataset uses {source.loader} from {source.package}, which is not "
                           "installed: pip install 'edgegan[train]'")
    path = Path(list(spec.submodule_search_locations)[0]) / source.loader
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise EdgeGANError(f"{path}: cannot read the demo source photo {source.name!r} "
                           f"(reinstall {source.package})")
    return np.ascontiguousarray(bgr[..., ::-1])


def face_region(face: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The square (x, y, w, h) tile around a face box: FACE_REGION face widths, centred a little below the
    box's centre (the detector's box stops at the chin), kept inside the photo."""
    h, w = shape[:2]
    fx, fy, fw, fh = face
    side = min(round(FACE_REGION * max(fw, fh)), h, w)
    cx, cy = fx + fw / 2, fy + fh / 2 + 0.05 * side
    x = int(min(max(0, round(cx - side / 2)), w - side))
    y = int(min(max(0, round(cy - side / 2)), h - side))
    return x, y, side, side


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _tiles(shape: tuple[int, ...], face: tuple[int, int, int, int] | None = None) -> list[tuple[int, int, int, int]]:
    """Non-overlapping (x, y, w, h) tiles of about TILE_PX, row-major. With a face region, the grid tiles
    it touches are dropped and the region itself is the last tile."""
    h, w = shape[:2]
    rows, cols = max(1, h // TILE_PX), max(1, w // TILE_PX)
    ys = np.linspace(0, h, rows + 1).astype(int)
    xs = np.linspace(0, w, cols + 1).astype(int)
    grid = [
        (int(xs[c]), int(ys[r]), int(xs[c + 1] - xs[c]), int(ys[r + 1] - ys[r]))
        for r in range(rows)
        for c in range(cols)
    ]
    if face is None:
        return grid
    return [t for t in grid if not _overlaps(t, face)] + [face]


def _assign_tiles(n_tiles: int, rng: np.random.Generator, face_split: str | None = None) -> dict[str, list[int]]:
    """Shuffle one photo's tiles into trainA / trainB / testA / testB (testA_gt shares testA). With
    ``face_split``, the last tile is the face region and goes to that split alone."""
    n_grid = n_tiles - (face_split is not None)
    if n_grid < 4:
        raise AssertionError("every demo source photo needs at least 4 tiles besides its face")
    order = [int(i) for i in rng.permutation(n_grid)]
    n_test = max(2, round(TEST_FRACTION * n_grid))
    n_train_a = (n_grid - n_test + 1) // 2
    n_test_a = (n_test + 1) // 2
    test, train = order[:n_test], order[n_test:]
    splits = {
        "trainA": sorted(train[:n_train_a]),
        "trainB": sorted(train[n_train_a:]),
        "testA": sorted(test[:n_test_a]),
        "testB": sorted(test[n_test_a:]),
    }
    if face_split is not None:
        splits[face_split].append(n_grid)
    return splits


def _tile_odds(
    photos: dict[str, np.ndarray], tiles: dict[str, list], pool: list[tuple[str, int]]
) -> np.ndarray:
    """Sampling odds of each (source, tile): every photo gets the same share (a large photo has more
    tiles, not more say), and within a photo textured tiles are drawn more often than plain sky."""
    spread = []
    for name, t in pool:
        x, y, w, h = tiles[name][t]
        grey = cv2.cvtColor(photos[name][y : y + h, x : x + w], cv2.COLOR_RGB2GRAY)
        # Rounded, so the odds cannot depend on the platform's float summation order.
        spread.append(round(max(float(grey.std()), 8.0), 1))
    odds = np.array(spread)
    names = [name for name, _ in pool]
    for name in set(names):
        mine = np.array([n == name for n in names])
        odds[mine] /= odds[mine].sum()
    return odds / odds.sum()


def _draw_crop(
    photo: np.ndarray, tile: tuple[int, int, int, int], size: int, rng: np.random.Generator,
    scale: tuple[float, float] = CROP_SCALE,
) -> tuple[np.ndarray, list[int], bool]:
    tx, ty, tw, th = tile
    side = max(1, round(float(rng.uniform(*scale)) * min(tw, th)))
    x = tx + int(rng.integers(0, tw - side + 1))
    y = ty + int(rng.integers(0, th - side + 1))
    flip = bool(rng.random() < 0.5)
    crop = photo[y : y + side, x : x + side]
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
    crop = cv2.resize(crop, (size, size), interpolation=interp)
    if flip:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop), [x, y, side, side], flip


def _draw_textured_crop(photos, tiles, pool, odds, size, rng, *, scale=CROP_SCALE):
    """Draw crops until photo and cartoon both have some texture.

    A flat crop (clear sky) becomes one uniform colour after stylisation; instance norm then
    divides by ~sqrt(eps) in every layer and the gradients overflow to NaN within a few steps.
    """
    for _ in range(MAX_DRAWS):
        name, t = pool[int(rng.choice(len(pool), p=odds))]
        photo, box, flip = _draw_crop(photos[name], tiles[name][t], size, rng, scale)
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
    photos = load_source_photos()
    rng = np.random.default_rng(seed)

    faces = {s.name: face_region(s.face, photos[s.name].shape) for s in SOURCES if s.face is not None}
    tiles = {name: _tiles(photo.shape, faces.get(name)) for name, photo in photos.items()}
    face_splits = {s.name: s.face_split for s in SOURCES if s.face is not None}
    assignment = {name: _assign_tiles(len(t), rng, face_splits.get(name)) for name, t in tiles.items()}
    is_face = {(name, len(tiles[name]) - 1) for name in faces}
    pools, face_pools = {}, {}
    for split in ("trainA", "trainB", "testA", "testB"):
        everything = [(name, i) for name in photos for i in assignment[name][split]]
        pools[split] = [p for p in everything if p not in is_face]
        face_pools[split] = [p for p in everything if p in is_face]
    odds = {split: _tile_odds(photos, tiles, pool) for split, pool in pools.items()}
    face_odds = {split: np.full(len(p), 1.0 / len(p)) for split, p in face_pools.items() if p}
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
                    if face_pools[split] and i % FACE_EVERY == 0:
                        drawn = _draw_textured_crop(photos, tiles, face_pools[split], face_odds[split], size,
                                                    rng, scale=FACE_CROP_SCALE)
                    else:
                        drawn = _draw_textured_crop(photos, tiles, pools[split], odds[split], size, rng)
                    name, t, photo, cartoon, box, flip = drawn
                    fname = f"{i:05d}.png"
                    for folder, stylised in writes:
                        (tmp / folder / fname).write_bytes(encode_png(cartoon if stylised else photo))
                        bar.update(1)
                    crops[split].append({"file": fname, "source": name, "tile": t, "box": box, "flip": flip,
                                         "face": (name, t) in is_face})
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

    versions = {pkg: version(pkg) for pkg in sorted({s.package for s in SOURCES})}
    skimage_version = versions["scikit-image"]
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
                "face_region_widths": FACE_REGION,
                "face_crop_scale": list(FACE_CROP_SCALE),
                "face_every": FACE_EVERY,
            },
            "splits": {
                "trainA": "photo crops from trainA tiles; every third is a face crop (Grace Hopper's face region)",
                "trainB": "cartoonize() of photo crops from trainB tiles (never the trainA images)",
                "testA": "photo crops from testA tiles; every third is a face crop (the astronaut's face region)",
                "testA_gt": "cartoonize() of the testA image with the same file name (exact ground truth)",
                "testB": "cartoonize() of photo crops from testB tiles (disjoint from testA), for FID/KID",
            },
            "counts": counts,
            "stylisation": STYLISATION,
            "style_version": STYLE_VERSION,
            "sources": [
                {
                    "name": s.name,
                    "package": s.package,
                    "package_version": versions[s.package],
                    "loader": s.loader,
                    **({"face_box": list(s.face), "face_split": s.face_split} if s.face else {}),
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
            f"Made by `edgegan` {__version__} from {len(SOURCES)} public-domain / CC0 photos that ship inside "
            f"scikit-image {skimage_version} and matplotlib (two portraits among them; see `SOURCES.json`).\n\n"
            f"- `trainA/` ({counts['trainA']}): {size} px photo crops.\n"
            f"- `trainB/` ({counts['trainB']}): synthetic cartoons of *other* crops (unpaired).\n"
            f"- `testA/` ({counts['testA']}) and `testA_gt/`: held-out photo crops (every third a face the "
            "training set never shows) and their exact cartoon ground truth, same file names.\n"
            f"- `testB/` ({counts['testB']}): held-out cartoons for FID/KID.\n\n"
            "Every photo is cut into tiles and each tile belongs to one split, so the splits share no "
            "pixels (`crops.json` lists every crop box). The cartoons are a fixed OpenCV stylisation "
            "(`edgegan.data.demo.cartoonize`), so this is a small, learnable benchmark, not real "
            "cartoon art.\n"
        ),
    )
