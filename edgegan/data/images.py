"""Robust image I/O: any common file becomes (H, W, 3) uint8 RGB, or one clear ImageError.

No torch here: the runtime and the data tools share this module.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from edgegan.errors import EdgeGANError, ImageError
from edgegan.io_utils import write_bytes_atomic

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
_SUFFIX_LIST = ".jpg, .jpeg, .png, .bmp, .webp, .tif, .tiff"

# Our own decompression-bomb limit, checked from the header before any pixel is decoded.
MAX_PIXELS = 100_000_000

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def list_images(folder: Path, *, role: str) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive, hidden files skipped), sorted by name.

    ``role`` names the folder in error messages, e.g. ``"trainA"``.
    """
    folder = Path(folder)
    if not folder.exists():
        raise EdgeGANError(f"{role}: folder {folder} does not exist")
    if not folder.is_dir():
        raise EdgeGANError(f"{role}: {folder} is a file, not a folder")
    files = [
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    ]
    if not files:
        raise EdgeGANError(f"{role}: folder {folder} holds no image files ({_SUFFIX_LIST})")
    return sorted(files, key=lambda p: p.name)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def load_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB, EXIF orientation applied, alpha composited on white.

    Raises:
        ImageError: the file is missing, empty, not an image, truncated/corrupt or absurdly large.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise ImageError(f"{path}: is a folder, not an image file")
        n_bytes = path.stat().st_size
    except FileNotFoundError as e:
        raise ImageError(f"{path}: no such file") from e
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or _one_line(e)})") from e
    if n_bytes == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")

    with warnings.catch_warnings():
        # Pillow warns from ~89 MP on; we apply our own limit from the header instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageError(
                        f"{path}: image too large ({w}x{h} = {w * h / 1e6:.0f} megapixels; "
                        f"limit {MAX_PIXELS / 1e6:.0f})"
                    )
                im.load()  # decode now, so a truncated file fails here rather than later
                return _to_rgb(_upright(im), path)
        except Image.UnidentifiedImageError as e:
            raise ImageError(f"{path}: not an image or unrecognised format") from e
        except Image.DecompressionBombError as e:
            raise ImageError(f"{path}: image too large ({_one_line(e)})") from e
        except PermissionError as e:
            raise ImageError(f"{path}: cannot read ({e.strerror or _one_line(e)})") from e
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as e:
            # Pillow decoders signal damaged data through all of these.
            raise ImageError(f"{path}: truncated or corrupt image ({_one_line(e)})") from e


def _upright(im: Image.Image) -> Image.Image:
    # A damaged EXIF block should not cost us an otherwise good photo: keep it as stored.
    try:
        return ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error):
        return im


def _to_rgb(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        grey = _high_depth_to_u8(np.asarray(im), mode)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in _ALPHA_MODES or "transparency" in im.info:
        return _composite_on_white(im.convert("RGBA"))
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode == "LAB":
        # Pillow's plain convert() reinterprets Lab channels as RGB; a colour transform is needed.
        try:
            from PIL import ImageCms
        except ImportError as e:
            raise ImageError(f"{path}: Lab colour images need Pillow built with LittleCMS") from e
        xform = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        return np.asarray(ImageCms.applyTransform(im, xform), dtype=np.uint8).copy()
    if mode in {"1", "L", "P", "CMYK", "YCbCr", "HSV"}:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    raise ImageError(f"{path}: unsupported image mode {mode!r}")


def _composite_on_white(rgba: Image.Image) -> np.ndarray:
    a = np.asarray(rgba, dtype=np.float32)
    alpha = a[:, :, 3:4] / 255.0
    rgb = a[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _high_depth_to_u8(a: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16/32-bit integer or float greyscale to 0..255 by its range, not by clipping."""
    a = a.astype(np.float64)
    if mode == "F":
        a = np.nan_to_num(a)
        lo, hi = (0.0, 1.0) if a.min() >= 0.0 and a.max() <= 1.0 else (a.min(), a.max())
    elif mode.startswith("I;16") or (a.min() >= 0 and a.max() <= 65535):
        # "I" is how Pillow hands over 16-bit data from some formats; assume 16 bits when it fits.
        lo, hi = 0.0, 65535.0
    else:
        lo, hi = a.min(), a.max()
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.clip(np.rint((a - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB array (deterministic for equal input)."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got shape {shape} dtype {dtype}")
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError(f"PNG encoding failed for an array of shape {rgb.shape}")
    return buf.tobytes()


def save_png_atomic(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB array as a PNG, atomically (temp file + ``os.replace``)."""
    write_bytes_atomic(path, encode_png(rgb))
