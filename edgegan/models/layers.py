"""Normalisation layers of U-GAT-IT: ILN and AdaLIN, written to export cleanly to fp16.

Variance is computed as ``mean((x - mu)**2) * n/(n-1)`` with the correction as a Python float:
``torch.var`` exports N and N-1 as graph constants (e.g. 262144) that overflow fp16.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _unbiased_var(x: torch.Tensor, dims: tuple[int, ...], mu: torch.Tensor) -> torch.Tensor:
    n = 1
    for d in dims:
        n *= int(x.shape[d])
    correction = n / max(n - 1, 1)  # Python float: folds into the graph as a small constant
    return ((x - mu) ** 2).mean(dim=dims, keepdim=True) * correction


def instance_layer_mix(x: torch.Tensor, rho: torch.Tensor, eps: float) -> torch.Tensor:
    """rho * instance-normalised x + (1 - rho) * layer-normalised x, rho in [0, 1] per channel."""
    in_mu = x.mean(dim=(2, 3), keepdim=True)
    x_in = (x - in_mu) / torch.sqrt(_unbiased_var(x, (2, 3), in_mu) + eps)
    ln_mu = x.mean(dim=(1, 2, 3), keepdim=True)
    x_ln = (x - ln_mu) / torch.sqrt(_unbiased_var(x, (1, 2, 3), ln_mu) + eps)
    rho = rho.clamp(0.0, 1.0)
    return rho * x_in + (1.0 - rho) * x_ln


class AdaLIN(nn.Module):
    """Adaptive Layer-Instance Norm: gamma/beta come from the style MLP, rho is learned."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.full((1, channels, 1, 1), 0.9))

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        out = instance_layer_mix(x, self.rho, self.eps)
        return out * gamma[:, :, None, None] + beta[:, :, None, None]  # gamma, beta: (B, C)


class ILN(nn.Module):
    """Layer-Instance Norm with learned affine parameters (the up-sampling blocks)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_layer_mix(x, self.rho, self.eps) * self.gamma + self.beta


@torch.no_grad()
def clip_rho_(model: nn.Module) -> None:
    """Keep every rho in [0, 1] after an optimizer step, so the forward clamp never kills gradients."""
    for module in model.modules():
        if isinstance(module, (AdaLIN, ILN)):
            module.rho.clamp_(0.0, 1.0)
