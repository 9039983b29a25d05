"""photo2cartoon's generator (minivision, 2020): U-GAT-IT with hourglass blocks and Soft-AdaLIN.

Changes to the U-GAT-IT light generator, as the method describes them:
- two hourglass modules after the stem and two at the end of the decoder (the last one maps to
  RGB), which give the shallow layers a large receptive field at full resolution;
- Soft-AdaLIN decoder blocks: the gamma/beta of each AdaLIN blend the style code (from the
  CAM-weighted bottleneck) with a content code (global-average-pooled output of one encoder
  residual block, the deepest feeding the first decoder block) by learned weights clipped to
  [0, 1], so the decoder can keep more of the input face where that helps identity.
The discriminators are U-GAT-IT's. Returns (image, cam_logit, heatmap) like ``UGATITGenerator``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from edgegan.models.layers import ILN, AdaLIN
from edgegan.models.registry import register_model
from edgegan.models.ugatit import CAMAttention, ResnetBlock, _conv3x3

HOURGLASS_DEPTH = 4  # levels of 2x average pooling: the image side must be a multiple of 16


class _PreActBlock(nn.Module):
    """Pre-activation multi-scale block: three 3x3 convs (C/2, C/4, C/4 channels) concatenated + skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()

        def unit(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.InstanceNorm2d(i), nn.ReLU(inplace=True), *_conv3x3(i, o))

        # C/2 + C/4 + the rest, so any C >= 4 concatenates back to C channels
        self.b1, self.b2 = unit(cin, cout // 2), unit(cout // 2, cout // 4)
        self.b3 = unit(cout // 4, cout - cout // 2 - cout // 4)
        self.skip = None if cin == cout else nn.Sequential(
            nn.InstanceNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.b1(x)
        y2 = self.b2(y1)
        y3 = self.b3(y2)
        return (x if self.skip is None else self.skip(x)) + torch.cat([y1, y2, y3], dim=1)


class _HourglassCore(nn.Module):
    """Recursive encoder-decoder: a skip block at every scale, average pooling down, nearest up."""

    def __init__(self, channels: int, depth: int):
        super().__init__()
        self.skip = _PreActBlock(channels, channels)
        self.down = _PreActBlock(channels, channels)
        self.inner = _HourglassCore(channels, depth - 1) if depth > 1 else _PreActBlock(channels, channels)
        self.up = _PreActBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.avg_pool2d(x, 2))))  # (B, C, H/2, W/2)
        return self.skip(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class Hourglass(nn.Module):
    """Hourglass with an intermediate RGB head; ``to_rgb=True`` returns that head (the generator's
    last hourglass), otherwise the input plus the refined features and the re-embedded RGB head."""

    def __init__(self, channels: int, *, depth: int = HOURGLASS_DEPTH, to_rgb: bool = False):
        super().__init__()
        self.body = nn.Sequential(
            _HourglassCore(channels, depth), _PreActBlock(channels, channels),
            nn.Conv2d(channels, channels, 1, bias=False), nn.InstanceNorm2d(channels), nn.ReLU(inplace=True))
        self.rgb = nn.Conv2d(channels, 3, 1)
        self.to_rgb = to_rgb
        if not to_rgb:
            self.feat_out = nn.Conv2d(channels, channels, 1)
            self.rgb_in = nn.Conv2d(3, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.body(x)
        rgb = self.rgb(feat)  # (B, 3, H, W)
        if self.to_rgb:
            return rgb
        return x + self.feat_out(feat) + self.rgb_in(rgb)


class SoftAdaLIN(nn.Module):
    """AdaLIN whose gamma/beta are ``(1 - w) * style + w * content``, w learned per channel in [0, 1]."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = AdaLIN(channels)
        self.w_gamma = nn.Parameter(torch.zeros(1, channels))
        self.w_beta = nn.Parameter(torch.zeros(1, channels))

        def mlp() -> nn.Sequential:
            return nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True),
                                 nn.Linear(channels, channels))

        self.content_gamma, self.content_beta = mlp(), mlp()
        self.style_gamma = nn.Linear(channels, channels)
        self.style_beta = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W); content, style: (B, C)."""
        wg, wb = self.w_gamma.clamp(0.0, 1.0), self.w_beta.clamp(0.0, 1.0)
        gamma = (1.0 - wg) * self.style_gamma(style) + wg * self.content_gamma(content)  # (B, C)
        beta = (1.0 - wb) * self.style_beta(style) + wb * self.content_beta(content)
        return self.norm(x, gamma, beta)


class SoftAdaLINResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Sequential(*_conv3x3(channels, channels))
        self.norm1 = SoftAdaLIN(channels)
        self.conv2 = nn.Sequential(*_conv3x3(channels, channels))
        self.norm2 = SoftAdaLIN(channels)

    def forward(self, x: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x), content, style))
        return x + self.norm2(self.conv2(out), content, style)


class Photo2CartoonGenerator(nn.Module):
    """stem -> 2 hourglasses -> down x2 -> residual encoder (content codes) -> CAM -> style MLP ->
    Soft-AdaLIN decoder (content codes in reverse order) -> ILN up x2 -> 2 hourglasses -> RGB -> tanh."""

    def __init__(self, *, ngf: int = 32, n_res: int = 4, img_size: int = 256, in_channels: int = 3):
        super().__init__()
        if ngf < 4:
            raise ValueError(f"ngf must be >= 4 (the hourglass blocks split channels in quarters), got {ngf}")
        if img_size % 2 ** HOURGLASS_DEPTH:
            raise ValueError(f"img_size must be a multiple of {2 ** HOURGLASS_DEPTH} (hourglass depth), "
                             f"got {img_size}")
        self.img_size = img_size
        ch = ngf * 4
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=False),
                                  nn.InstanceNorm2d(ngf), nn.ReLU(inplace=True),
                                  Hourglass(ngf), Hourglass(ngf))
        down: list[nn.Module] = []
        for mult in (1, 2):
            down += [*_conv3x3(ngf * mult, ngf * mult * 2, stride=2), nn.InstanceNorm2d(ngf * mult * 2),
                     nn.ReLU(inplace=True)]
        self.down = nn.Sequential(*down)
        self.encoder = nn.ModuleList([ResnetBlock(ch) for _ in range(n_res)])
        self.cam = CAMAttention(ch)
        self.style_mlp = nn.Sequential(nn.Linear(ch, ch), nn.ReLU(inplace=True), nn.Linear(ch, ch),
                                       nn.ReLU(inplace=True))
        self.decoder = nn.ModuleList([SoftAdaLINResBlock(ch) for _ in range(n_res)])
        up: list[nn.Module] = []
        for mult in (4, 2):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), *_conv3x3(ngf * mult, ngf * mult // 2),
                   ILN(ngf * mult // 2), nn.ReLU(inplace=True)]
        self.up = nn.Sequential(*up, Hourglass(ngf), Hourglass(ngf, to_rgb=True))
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, 3, 7, bias=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, 3, H, W) in [-1, 1] -> (image (B, 3, H, W), cam_logit (B, 2), heatmap (B, 1, H/4, W/4))."""
        feat = self.down(self.stem(x))  # (B, 4ngf, H/4, W/4)
        content = []
        for block in self.encoder:
            feat = block(feat)
            content.append(F.adaptive_avg_pool2d(feat, 1).flatten(1))  # (B, 4ngf)
        feat, cam_logit, heatmap = self.cam(feat)
        style = self.style_mlp(F.adaptive_avg_pool2d(feat, 1).flatten(1))  # (B, 4ngf)
        for block, code in zip(self.decoder, reversed(content)):
            feat = block(feat, code, style)
        return self.head(self.up(feat)), cam_logit, heatmap


@torch.no_grad()
def clip_blend_weights_(model: nn.Module) -> None:
    """Keep every Soft-AdaLIN blend weight in [0, 1] after an optimizer step (a no-op for other models)."""
    for module in model.modules():
        if isinstance(module, SoftAdaLIN):
            module.w_gamma.clamp_(0.0, 1.0)
            module.w_beta.clamp_(0.0, 1.0)


@register_model("photo2cartoon")
def photo2cartoon(ngf: int = 32, n_res: int = 4, img_size: int = 256, **kw) -> Photo2CartoonGenerator:
    return Photo2CartoonGenerator(ngf=ngf, n_res=n_res, img_size=img_size, **kw)
