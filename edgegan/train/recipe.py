"""The pieces EdgeGAN's recipe adds to the paper's U-GAT-IT step: an EMA copy of the generators and
differentiable augmentation of what the discriminators see.

- EMA (Karras et al., progressive GANs; Yazıcı et al. 2019): GAN weights oscillate around a good
  solution; an exponential moving average of them is smoother and better than any one iterate.
  Samples, eval and export use the average; the raw weights keep training.
- DiffAugment (Zhao et al., NeurIPS 2020): with a few hundred images the discriminators memorise
  the training set and their gradients stop meaning anything. Augmenting real and fake images alike,
  with ops that gradients pass through, keeps D honest without leaking the augmentation into G's
  outputs (G is never asked to produce translated or cut-out images, only to fool D on them).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from edgegan.errors import EdgeGANError


# ---------------------------------------------------------------- EMA
def ema_decay_at(step: int, decay: float) -> float:
    """The decay used after ``step`` updates: ``min(decay, (1 + step) / (10 + step))``.

    A fixed 0.999 would average over ~1000 steps, longer than a quick run; the warm-up lets the
    average follow the fast early changes and reach ``decay`` only once the run is long enough.
    """
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def ema_update_(average: nn.Module, model: nn.Module, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * model`` for parameters; buffers are copied."""
    for a, m in zip(average.parameters(), model.parameters(), strict=True):
        a.lerp_(m.detach(), 1.0 - decay)
    for a, m in zip(average.buffers(), model.buffers(), strict=True):
        a.copy_(m)


# ---------------------------------------------------------------- DiffAugment
AUGMENTATIONS = ("color", "translation", "cutout")


@functools.lru_cache(maxsize=16)  # called every training step with the run's one policy string
def parse_policy(policy: str) -> tuple[str, ...]:
    """``"translation,cutout"`` -> ("translation", "cutout"); "" -> (); unknown names are a one-line error."""
    ops = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [p for p in ops if p not in AUGMENTATIONS]
    if bad:
        raise EdgeGANError(f"--diffaug: unknown augmentation {bad[0]!r}; choose from {', '.join(AUGMENTATIONS)}")
    return ops


def diff_augment(x: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
    """Randomly augment a batch (B, C, H, W) in [-1, 1]; each image draws its own parameters from the
    global torch RNG (so a resumed run draws the same ones). The output stays in [-1, 1]."""
    for op in ops:
        x = _OPS[op](x)
    return x


def _color(x: torch.Tensor) -> torch.Tensor:
    # Brightness, saturation, contrast as in DiffAugment, clamped to the image range (the originals
    # are not, and a discriminator could then tell augmented images by their out-of-range pixels).
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5) * 0.5
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 0.5 + 0.75) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 0.5 + 0.75) + mean
    return x.clamp(-1.0, 1.0)


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with reflected content (zeros, as in the
    original, would be a grey border D can learn to look for)."""
    n, _, h, w = x.shape
    sh, sw = max(1, int(h * ratio)), max(1, int(w * ratio))
    dy = torch.randint(-sh, sh + 1, (n,), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n,), device=x.device)
    padded = F.pad(x, (sw, sw, sh, sh), mode="reflect")
    rows = (torch.arange(h, device=x.device)[None, :] + sh - dy[:, None])  # (B, H)
    cols = (torch.arange(w, device=x.device)[None, :] + sw - dx[:, None])  # (B, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.25) -> torch.Tensor:
    """Zero (mid-grey) one square of ``ratio`` of the image side per image, at a random place."""
    n, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio)), max(1, int(w * ratio))
    cy = torch.randint(0, h - ch + 1, (n, 1, 1), device=x.device)
    cx = torch.randint(0, w - cw + 1, (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    keep = ~((ys >= cy) & (ys < cy + ch) & (xs >= cx) & (xs < cx + cw))  # (B, H, W)
    return x * keep[:, None].to(x.dtype)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}
