"""Labelled image grids (numpy + OpenCV only, so the torch-free runtime and eval can use them)."""

from __future__ import annotations

import cv2
import numpy as np


def _label(text: str, height: int, width: int) -> np.ndarray:
    tile = np.full((height, width, 3), 255, np.uint8)
    scale = max(0.3, height / 160)
    for i, line in enumerate(text.split("\n")):
        y = int(height * 0.4) + i * int(34 * scale)
        cv2.putText(tile, line, (3, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def grid(rows: list[tuple[str, np.ndarray]], pad: int = 2) -> np.ndarray:
    """Rows of (label, (N, H, W, 3) uint8) -> one image, a label column on the left."""
    n, h, w = rows[0][1].shape[:3]
    label_w = max(112, w)
    lines = []
    for label, imgs in rows:
        cells = [_label(label, h, label_w)] + [np.pad(im, ((0, 0), (pad, 0), (0, 0)), constant_values=255)
                                               for im in imgs]
        lines.append(np.pad(np.concatenate(cells, axis=1), ((pad, 0), (0, 0), (0, 0)), constant_values=255))
    return np.concatenate(lines, axis=0)


def side_by_side(*blocks: np.ndarray, gap: int = 8) -> np.ndarray:
    h = max(b.shape[0] for b in blocks)
    padded = [np.pad(b, ((0, h - b.shape[0]), (0, gap), (0, 0)), constant_values=255) for b in blocks]
    return np.concatenate(padded, axis=1)
