"""Anime-style faces drawn with OpenCV: test fixtures and a self-check for the anime-face detector.

No registry package we found ships anime images, so the cartoon-side tests draw their own: a head with big
eyes (iris, pupil, highlight, lash line), a pointed chin, bangs and a neck on a flat background.
``draw_anime_face`` varies shapes and colours with ``seed``; the figure never depends on the
background colour, which is how ``anime_face_mask`` gets an exact foreground mask (two renders).
"""

from __future__ import annotations

import cv2
import numpy as np

_AA = cv2.LINE_AA


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


def draw_anime_face(size: int = 256, seed: int = 0,
                    background: tuple[int, int, int] | np.ndarray = (250, 230, 200)) -> np.ndarray:
    """(size, size, 3) uint8 RGB: one frontal anime face, head centred, shoulders at the bottom edge.

    ``background``: an RGB colour, or a (size, size, 3) uint8 image to draw the figure on.
    """
    rng = np.random.default_rng(seed)
    s = size / 256
    hair, iris, shirt = _colour(rng), _colour(rng, 0, 200), _colour(rng)
    skin = (int(rng.integers(235, 256)), int(rng.integers(200, 240)), int(rng.integers(180, 240)))
    fw, fh = rng.uniform(45, 70), rng.uniform(60, 90)  # face half-width, chin depth below the eye line
    ew = rng.uniform(8, 20)
    eh, esep, eye_y = ew * rng.uniform(1.0, 1.8), rng.uniform(18, 34), rng.uniform(0, 20)
    line, lash = int(rng.integers(1, 4)), int(rng.integers(2, 7))
    cx, cy = size / 2, rng.uniform(100, 140) * s
    long_hair = rng.random() < 0.6
    bang_len = rng.uniform(-40, -5)
    bang_step = int(rng.integers(12, 30))
    bang_jitter = rng.uniform(0, 12, 16)

    def p(x: float, y: float) -> tuple[int, int]:
        return round(cx + x * s), round(cy + y * s)

    def axes(a: float, b: float) -> tuple[int, int]:
        return max(1, round(a * s)), max(1, round(b * s))

    img = np.empty((size, size, 3), np.uint8)
    img[:] = background  # broadcasts a colour, copies an image
    cv2.ellipse(img, p(0, -10), axes(fw + 25, fh + 20), 0, 0, 360, hair, -1, _AA)  # hair behind the head
    if long_hair:
        cv2.rectangle(img, p(-fw - 25, -10), p(fw + 25, fh + 10), hair, -1)
    cv2.rectangle(img, p(-18, 50), p(18, 120), skin, -1)  # neck
    cv2.ellipse(img, p(0, fh + 80), axes(90, 50), 0, 180, 360, shirt, -1, _AA)
    chin = np.array([p(-fw, -30), p(-fw + 2, 10), p(-fw * 0.75, fh * 0.55), p(-15, fh * 0.9), p(0, fh),
                     p(15, fh * 0.9), p(fw * 0.75, fh * 0.55), p(fw - 2, 10), p(fw, -30)], np.int32)
    cv2.ellipse(img, p(0, -30), axes(fw, 55), 0, 180, 360, skin, -1, _AA)
    cv2.fillPoly(img, [chin], skin, _AA)
    cv2.polylines(img, [chin], False, (60, 40, 40), line, _AA)
    for side in (-1, 1):
        ex, ey = side * esep, eye_y
        cv2.ellipse(img, p(ex, ey), axes(ew * 1.2, eh * 1.1), 0, 0, 360, (255, 255, 255), -1, _AA)
        cv2.ellipse(img, p(ex, ey + 2), axes(ew, eh), 0, 0, 360, iris, -1, _AA)
        cv2.ellipse(img, p(ex, ey + 4), axes(ew * 0.5, eh * 0.5), 0, 0, 360, (15, 15, 20), -1, _AA)
        cv2.circle(img, p(ex - 4 * side, ey - eh * 0.3), max(1, round(ew * 0.3 * s)), (255, 255, 255), -1, _AA)
        cv2.ellipse(img, p(ex, ey - 2), axes(ew * 1.3, eh * 1.15), 0, 200, 340, (15, 15, 20), lash, _AA)
        cv2.ellipse(img, p(ex, ey - eh - 12), axes(ew, 4), 0, 200, 340, (30, 35, 50), line, _AA)  # brow
    cv2.ellipse(img, p(0, fh * 0.7), axes(8, 3), 0, 0, 180, (160, 60, 60), line, _AA)  # mouth
    for i, x0 in enumerate(range(-70, 70, bang_step)):
        tip = bang_len - bang_jitter[i % len(bang_jitter)]
        cv2.fillPoly(img, [np.array([p(x0 - 6, -80), p(x0 + 28, -80), p(x0 + 12, tip)], np.int32)], hair, _AA)
    cv2.ellipse(img, p(0, -55), axes(fw + 12, 45), 0, 180, 360, hair, -1, _AA)
    return img


def anime_face_mask(size: int = 256, seed: int = 0) -> np.ndarray:
    """(size, size) bool: the pixels that belong wholly to the figure of ``draw_anime_face(size, seed)``
    (anti-aliased rims, which mix figure and background, are False)."""
    return np.all(draw_anime_face(size, seed, (0, 0, 0)) == draw_anime_face(size, seed, (255, 255, 255)), axis=2)
