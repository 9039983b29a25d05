"""Anime-face detection with AnimeFace (nagadomi's libnvxs, 2009), as shipped in the ``animeface`` wheel.

The wheel (Apache-2.0 wrapper; libnvxs and its trained MLPs compiled in, NYSL) needs no download and
no GPU: Haar-like features + MLPs over 32x32 windows, faces from ~43 px up, roll within +-30 deg.

Why not ``animeface.detect``: its C extension reads the pixels by casting ``PIL.Image.getdata()`` to
the Pillow 4.2 ``ImagingMemoryInstance`` struct it was compiled against. From Pillow 12 on that struct
changed and ``animeface.detect`` silently returns no faces for every image (measured: the same drawn
face is found with Pillow 10.4-11.3, not with 12.0 or 13.0). So EdgeGAN hands the extension a
Pillow-4.2-layout image it builds itself with ctypes: the extension only dereferences the pointer that
follows the object header, which for a ctypes instance is its buffer. On Pillow 11.3 this gives the same
boxes as the wrapper's own path (200 drawn faces, identical), and it works with every Pillow.
A self-check on a drawn face at first use turns any future layout change into a clear error.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import cv2
import numpy as np

from edgegan.errors import EdgeGANError

ANIMEFACE_EXTRA = ("pip install 'edgegan[prepare]' (animeface; wheels for Linux x86_64 and macOS arm64, Python "
                   "<= 3.13; elsewhere build its bundled libnvxs first, see animeface's README)")
# cost grows with the pixels (0.2-0.45 s for a 720p frame at 800 px on 2 cores); libnvxs' smallest window is
# 42.6 px, so at 800 px a 1080p frame's faces are found from ~100 px up
DETECT_SIDE = 800


class _PilImage42(ctypes.Structure):
    """Pillow 4.2.1's ``struct ImagingMemoryInstance`` (libImaging/Imaging.h), which libnvxs reads."""

    _fields_ = [
        ("mode", ctypes.c_char * 7),
        ("type", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("bands", ctypes.c_int),
        ("xsize", ctypes.c_int),
        ("ysize", ctypes.c_int),
        ("palette", ctypes.c_void_p),
        ("image8", ctypes.c_void_p),
        ("image32", ctypes.c_void_p),
        ("image", ctypes.POINTER(ctypes.c_void_p)),  # row pointers; RGB pixels are 4 bytes (RGBX)
        ("block", ctypes.c_void_p),
        ("pixelsize", ctypes.c_int),
        ("linesize", ctypes.c_int),
        ("destroy", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class AnimeFace:
    box: tuple[int, int, int, int]  # left, top, right, bottom in source pixels
    score: float  # libnvxs' likelihood, 0..1
    eyes: tuple[tuple[float, float], tuple[float, float]] | None  # centres (x, y), image-left first
    skin: tuple[int, int, int] | None = None  # RGB, libnvxs' estimate (within 2 levels on drawn faces)

    @property
    def side(self) -> int:
        return self.box[2] - self.box[0]


@functools.cache
def _nvxs():
    try:
        from animeface import _nvxs
    except ImportError as err:
        raise EdgeGANError(f"--kind cartoon needs the anime-face detector: {ANIMEFACE_EXTRA}") from err
    if not hasattr(_nvxs, "__file__") or not str(_nvxs.__file__).endswith((".so", ".pyd")):
        raise EdgeGANError(f"animeface is installed without its native detector (no wheel for this platform?): "
                           f"{ANIMEFACE_EXTRA}")
    return _nvxs


def _raw_detect(rgb: np.ndarray) -> list[dict]:
    h, w = rgb.shape[:2]
    rgbx = np.zeros((h, w, 4), np.uint8)  # the buffer must outlive the call: it is a local
    rgbx[:, :, :3] = rgb
    base = rgbx.ctypes.data
    rows = (ctypes.c_void_p * h)(*range(base, base + h * w * 4, w * 4))
    image = _PilImage42(mode=b"RGB", type=0, depth=8, bands=3, xsize=w, ysize=h,
                        image8=None, image32=None,
                        image=ctypes.cast(rows, ctypes.POINTER(ctypes.c_void_p)), block=base, pixelsize=4,
                        linesize=w * 4)
    # the extension reads ((ImagingObject *) arg)->image, the pointer after the object header: for a ctypes
    # instance that is its buffer pointer, i.e. the address of this struct
    return _nvxs().detect(image)


def _centre(box) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2


class AnimeFaceDetector:
    """``faces(rgb)``: anime faces, most likely first, in source pixel coordinates."""

    def __init__(self, *, min_score: float = 0.5, detect_side: int = DETECT_SIDE):
        _nvxs()
        self.min_score, self.detect_side = min_score, detect_side
        _self_check()

    def faces(self, rgb: np.ndarray) -> list[AnimeFace]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.detect_side / max(h, w))
        small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)),
                                                    interpolation=cv2.INTER_AREA)
        found = []
        for r in _raw_detect(np.ascontiguousarray(small)):
            if r["likelihood"] < self.min_score:
                continue
            x, y, bw, bh = (v / scale for v in r["face_box"])
            eyes = None
            (lx, ly), (rx, ry) = _centre(r["left_eye_box"]), _centre(r["right_eye_box"])
            # libnvxs' "left eye" is the character's left (image right); keep only plausible pairs
            if r["left_eye_box"][2] > 0 and r["right_eye_box"][2] > 0 and rx < lx:
                eyes = ((rx / scale, ry / scale), (lx / scale, ly / scale))
            skin = tuple(int(v) for v in r["skin_color"])
            found.append(AnimeFace((round(x), round(y), round(x + bw), round(y + bh)), float(r["likelihood"]),
                                   eyes, skin if min(skin) >= 0 else None))
        return sorted(found, key=lambda f: -f.score)


@functools.cache
def _self_check() -> None:
    from edgegan.data.drawn_faces import draw_anime_face

    if not _raw_detect(draw_anime_face(256, seed=0)):
        from importlib.metadata import version

        raise EdgeGANError(f"animeface {version('animeface')} found no face in EdgeGAN's reference drawing: "
                           "its native library changed; install animeface==2.0.3")
