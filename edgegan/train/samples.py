"""Sample grids: labelled rows of images, written as PNG under ``torch.no_grad()``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from edgegan.data.grid import grid, side_by_side  # noqa: F401  (re-exported for trainers)
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


def write_grid(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png_atomic(path, image)
