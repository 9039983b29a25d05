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


def group_photo(n_faces: int = 30, face_px: tuple[int, int] = (25, 40), size: tuple[int, int] = (1024, 741),
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic group photo: the clip's face, ``n_faces`` times at ``face_px`` sizes, mirrored and re-lit
    at random, on a grid with jitter over a smooth backdrop. Returns (BGR image of ``size`` (width, height),
    (n_faces, 4) true face boxes): ground truth for measuring how many small faces the still-image search
    finds (``benchmarks/runtime.py``)."""
    rng = np.random.default_rng(seed)
    photo = face_photo()
    pw = photo.shape[1]
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    backdrop = np.stack([120 + 50 * np.sin(xx / 97 + c) * np.cos(yy / 131 - c) for c in (0.0, 1.1, 2.3)], axis=2)
    image = np.clip(backdrop + rng.normal(0, 6, backdrop.shape), 0, 255)
    cols = math.ceil(math.sqrt(n_faces * w / h))
    rows = math.ceil(n_faces / cols)
    cw, ch = w / cols, h / rows
    boxes = []
    for k in range(n_faces):
        mirrored = rng.random() < 0.5
        src = np.ascontiguousarray(photo[:, ::-1]) if mirrored else photo
        fx0, fy0, fx1, fy1 = FACE_BOX
        if mirrored:
            fx0, fx1 = pw - 1 - fx1, pw - 1 - fx0
        fw_, fh_ = fx1 - fx0, fy1 - fy0
        # a head-and-shoulders cut-out around the face: hair above, shoulders below
        hx0, hy0, hx1, hy1 = fx0 - 0.7 * fw_, fy0 - 0.8 * fh_, fx1 + 0.7 * fw_, fy1 + 0.9 * fh_
        face = rng.uniform(*face_px)
        s = face / fw_
        hw, hh = (hx1 - hx0) * s, (hy1 - hy0) * s
        r, c = divmod(k, cols)
        x = c * cw + rng.uniform(0, max(1.0, cw - hw))
        y = r * ch + rng.uniform(0, max(1.0, ch - hh))
        m = np.array([[s, 0, x - hx0 * s], [0, s, y - hy0 * s]], np.float32)
        warped = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (round(x + hw / 2), round(y + hh / 2)), (round(hw / 2), round(hh / 2)), 0, 0, 360, 1.0, -1,
                    cv2.LINE_AA)
        mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, face / 12))[..., None]
        image = image * (1 - mask) + np.clip(warped * rng.uniform(0.75, 1.2), 0, 255) * mask
        boxes.append([x + (fx0 - hx0) * s, y + (fy0 - hy0) * s, x + (fx1 - hx0) * s, y + (fy1 - hy0) * s])
    return image.astype(np.uint8), np.array(boxes, np.float64)
