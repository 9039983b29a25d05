"""The built-in test clip: a real face photo filmed by a virtual camera that pans and zooms.

Source: ``astronaut.png`` from scikit-image's wheel (Eileen Collins, NASA photo, public domain). The
file is located without importing scikit-image (which would pull in scipy). The camera window
follows a smooth path: the face moves across the frame and its size changes by about 1.8x, so
the tracker, the crop sizes and the paste-back all vary as in a hand-held selfie.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.io_utils import _default_file_mode

PHOTO = "astronaut.png"
PHOTO_SOURCE = "scikit-image data/astronaut.png: Eileen Collins, NASA, public domain"
# face box in the photo's own 512x512 pixels (BlazeFace, rounded): the clip keeps it inside the frame
FACE_BOX = (178, 78, 272, 175)


def face_photo() -> np.ndarray:
    """The astronaut photo as (512, 512, 3) uint8 BGR."""
    spec = importlib.util.find_spec("skimage")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "data" / PHOTO
        if path.is_file():
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image
    raise EdgeGANError("the built-in test clip is made from scikit-image's astronaut photo: "
                       "pip install scikit-image (or pass --source VIDEO)")


def _camera(i: int, n: int, size: tuple[int, int]) -> np.ndarray:
    """2x3 affine map from photo to frame pixels for frame ``i`` of ``n``."""
    w, h = size
    fx, fy = (FACE_BOX[0] + FACE_BOX[2]) / 2, (FACE_BOX[1] + FACE_BOX[3]) / 2
    t = i / max(1, n - 1)
    # window width in photo pixels: wide (face ~120 px at 640) -> tight (face ~220 px) -> back
    scale = w / (500 - 225 * math.sin(math.pi * t) ** 2)
    # the face wanders around the frame centre; amplitude shrinks as the face grows so it stays inside
    room_x, room_y = 0.3 * (w - 95 * scale), 0.3 * (h - 97 * scale)
    cx = w / 2 + room_x * math.sin(2 * math.pi * 1.5 * t)
    cy = h / 2 + room_y * math.sin(2 * math.pi * t + 0.7)
    return np.array([[scale, 0, cx - fx * scale], [0, scale, cy - fy * scale]], np.float32)


def clip_frames(n: int = 90, size: tuple[int, int] = (640, 480)):
    """Yield ``n`` BGR frames of ``size`` (width, height): pan and zoom over the face photo."""
    photo = face_photo()
    for i in range(n):
        yield cv2.warpAffine(photo, _camera(i, n, size), size, flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)


def clip_face_boxes(n: int = 90, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """(n, 4) true face box (x0, y0, x1, y1) in each frame of the clip: ground truth for tracking tests."""
    x0, y0, x1, y1 = FACE_BOX
    out = []
    for i in range(n):
        m = _camera(i, n, size)
        out.append([m[0, 0] * x0 + m[0, 2], m[1, 1] * y0 + m[1, 2], m[0, 0] * x1 + m[0, 2], m[1, 1] * y1 + m[1, 2]])
    return np.array(out)


def write_clip(path: str | os.PathLike[str], n: int = 90, size: tuple[int, int] = (640, 480),
               fps: float = 30.0) -> Path:
    """Write the test clip as an MPEG-4 video (temp file + rename); returns ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix or ".mp4")
    os.close(fd)
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    try:
        if not writer.isOpened():
            raise EdgeGANError(f"{path}: OpenCV cannot write MPEG-4 video here")
        for frame in clip_frames(n, size):
            writer.write(frame)
        writer.release()
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        writer.release()
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
