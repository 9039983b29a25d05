"""Sample grids: labelled rows of images, written as PNG under ``torch.no_grad()``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from edgegan.data.images import save_png_atomic


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8 RGB."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def heatmap_overlay(images: np.ndarray, heatmaps: torch.Tensor) -> np.ndarray:
    """Blend each CAM heatmap (B, 1, h, w), min-max normalised per image, over its image."""
    out = []
    for img, heat in zip(images, heatmaps.detach().float().cpu().numpy()):
        h = heat[0] - heat[0].min()
        h = (255 * h / max(float(h.max()), 1e-8)).astype(np.uint8)
        h = cv2.resize(h, img.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        colour = cv2.cvtColor(cv2.applyColorMap(h, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        out.append(cv2.addWeighted(img, 0.5, colour, 0.5, 0))
    return np.stack(out)


def _label(text: str, height: int, width: int) -> np.ndarray:
    tile = np.full((height, width, 3), 255, np.uint8)
    scale = max(0.3, height / 160)
    for i, line in enumerate(text.split("\n")):
        y = int(height * 0.45) + i * int(22 * scale)
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


def write_grid(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png_atomic(path, image)
