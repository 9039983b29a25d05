"""U-GAT-IT networks (Kim et al., ICLR 2020): CAM-attention generator with AdaLIN, and
global/local discriminators with their own CAM logits. Networks only; losses live in train/."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from edgegan.models.layers import ILN, AdaLIN
from edgegan.models.registry import register_model


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3, stride, bias=False)]


class ResnetBlock(nn.Module):
    """Encoder residual block: (reflect-conv, IN, ReLU, reflect-conv, IN) + skip."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            *_conv3x3(channels, channels), nn.InstanceNorm2d(channels), nn.ReLU(inplace=True),
            *_conv3x3(channels, channels), nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AdaLINResBlock(nn.Module):
    """Decoder residual block whose norms take gamma/beta from the style MLP."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Sequential(*_conv3x3(channels, channels))
        self.norm1 = AdaLIN(channels)
        self.conv2 = nn.Sequential(*_conv3x3(channels, channels))
        self.norm2 = AdaLIN(channels)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x), gamma, beta))
        return x + self.norm2(self.conv2(out), gamma, beta)


class CAMAttention(nn.Module):
    """Class-activation-map attention: GAP and GMP logits re-weight the channels.

    The auxiliary classifiers' weights say which channels separate the domains; multiplying the
    feature map by them and fusing with a 1x1 conv is the attention. Returns the fused features,
    the two logits (B, 2) and a heatmap (B, 1, H, W).
    """

    def __init__(self, channels: int, *, spectral: bool = False, act: nn.Module | None = None):
        super().__init__()
        wrap = spectral_norm if spectral else (lambda m: m)
        self.gap_fc = wrap(nn.Linear(channels, 1, bias=False))
        self.gmp_fc = wrap(nn.Linear(channels, 1, bias=False))
        self.fuse = nn.Conv2d(channels * 2, channels, 1, bias=True)
        self.act = act if act is not None else nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gap_logit = self.gap_fc(F.adaptive_avg_pool2d(x, 1).flatten(1))  # (B, 1)
        gmp_logit = self.gmp_fc(F.adaptive_max_pool2d(x, 1).flatten(1))  # (B, 1)
        gap_w = self.gap_fc.weight[:, :, None, None]  # (1, C, 1, 1)
        gmp_w = self.gmp_fc.weight[:, :, None, None]
        x = self.act(self.fuse(torch.cat([x * gap_w, x * gmp_w], dim=1)))  # (B, C, H, W)
        heatmap = x.sum(dim=1, keepdim=True)  # (B, 1, H, W)
        return x, torch.cat([gap_logit, gmp_logit], dim=1), heatmap


class UGATITGenerator(nn.Module):
    """Encoder -> CAM attention -> AdaLIN residual decoder -> ILN up-sampling -> tanh.

    ``light=True`` feeds the style MLP with globally pooled features (U-GAT-IT "light"); the full
    model flattens the whole bottleneck, which ties the MLP (and the weights) to ``img_size``.

    ``skip=True`` (EdgeGAN's recipe, not the paper's) adds the input to the last conv's output in
    tanh's pre-activation space, ``tanh(conv + atanh(x))``, with that conv zero-initialised: the
    generator starts as the identity and learns only the change. Without it every colour must pass
    through the encoder's instance norms, which discard each image's mean and contrast.

    ``color_mlp=N`` (with ``skip``) adds a per-pixel colour path to that change: two 1x1 convs (3 -> N
    -> 3, ReLU) on the input pixel itself. Instance norm leaves the decoder no absolute colour to
    work from, so on its own the network cannot learn even a global tone curve; this path can (a
    learned colour look-up), and the convolutional decoder adds what depends on the neighbourhood.
    """

    def __init__(
        self, *, ngf: int = 64, n_res: int = 4, img_size: int = 256, light: bool = True,
        in_channels: int = 3, out_channels: int = 3, skip: bool = False, color_mlp: int = 0,
    ):
        super().__init__()
        if img_size % 4:
            raise ValueError(f"img_size must be a multiple of 4, got {img_size}")
        self.light, self.img_size = light, img_size
        ch = ngf * 4
        down: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=False),
            nn.InstanceNorm2d(ngf), nn.ReLU(inplace=True),
        ]
        for mult in (1, 2):
            down += [*_conv3x3(ngf * mult, ngf * mult * 2, stride=2),
                     nn.InstanceNorm2d(ngf * mult * 2), nn.ReLU(inplace=True)]
        down += [ResnetBlock(ch) for _ in range(n_res)]
        self.encoder = nn.Sequential(*down)
        self.cam = CAMAttention(ch)
        mlp_in = ch if light else ch * (img_size // 4) ** 2
        self.style_mlp = nn.Sequential(
            nn.Linear(mlp_in, ch, bias=False), nn.ReLU(inplace=True),
            nn.Linear(ch, ch, bias=False), nn.ReLU(inplace=True),
        )
        self.gamma = nn.Linear(ch, ch, bias=False)
        self.beta = nn.Linear(ch, ch, bias=False)
        self.res_blocks = nn.ModuleList([AdaLINResBlock(ch) for _ in range(n_res)])
        up: list[nn.Module] = []
        for mult in (4, 2):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), *_conv3x3(ngf * mult, ngf * mult // 2),
                   ILN(ngf * mult // 2), nn.ReLU(inplace=True)]
        head = nn.Conv2d(ngf, out_channels, 7, bias=False)
        if skip:
            if in_channels != out_channels:
                raise ValueError("skip=True needs as many output channels as input channels")
            nn.init.zeros_(head.weight)
        up += [nn.ReflectionPad2d(3), head]
        self.decoder = nn.Sequential(*up)
        self.skip = skip
        self.color = None
        if color_mlp:
            if not skip:
                raise ValueError("color_mlp needs skip=True (it predicts part of the change to the input)")
            self.color = nn.Sequential(nn.Conv2d(in_channels, color_mlp, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(color_mlp, out_channels, 1))
            nn.init.zeros_(self.color[-1].weight)
            nn.init.zeros_(self.color[-1].bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, 3, H, W) in [-1, 1] -> (image (B, 3, H, W), cam_logit (B, 2), heatmap (B, 1, H/4, W/4))."""
        feat, cam_logit, heatmap = self.cam(self.encoder(x))
        style_in = F.adaptive_avg_pool2d(feat, 1).flatten(1) if self.light else feat.flatten(1)
        style = self.style_mlp(style_in)
        gamma, beta = self.gamma(style), self.beta(style)  # (B, C) each
        for block in self.res_blocks:
            feat = block(feat, gamma, beta)
        out = self.decoder(feat)
        if self.color is not None:
            out = out + self.color(x)
        if self.skip:
            out = out + _atanh(x)
        return torch.tanh(out), cam_logit, heatmap


# Inputs at exactly +-1 (white, black) would make atanh infinite; 0.999 keeps them within 1/2000 of it.
_ATANH_CLAMP = 0.999


def _atanh(x: torch.Tensor) -> torch.Tensor:
    """atanh as log/div (ops every export target has), on inputs clamped away from +-1."""
    x = x.clamp(-_ATANH_CLAMP, _ATANH_CLAMP)
    return 0.5 * torch.log((1 + x) / (1 - x))


class UGATITDiscriminator(nn.Module):
    """PatchGAN discriminator with spectral norm, LeakyReLU(0.2) and its own CAM logit.

    ``n_layers`` counts as in the paper: 7 = global (70->286 px receptive field), 5 = local.
    """

    def __init__(self, *, ndf: int = 64, n_layers: int = 7, in_channels: int = 3):
        super().__init__()
        if n_layers < 3:
            raise ValueError(f"n_layers must be >= 3, got {n_layers}")
        def lrelu() -> nn.Module:
            return nn.LeakyReLU(0.2, inplace=True)

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(in_channels, ndf, 4, 2, bias=True)), lrelu()]
        ch = ndf
        for _ in range(1, n_layers - 2):
            layers += [nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(ch, ch * 2, 4, 2, bias=True)), lrelu()]
            ch *= 2
        layers += [nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(ch, ch * 2, 4, 1, bias=True)), lrelu()]
        ch *= 2
        self.features = nn.Sequential(*layers)
        self.cam = CAMAttention(ch, spectral=True, act=lrelu())
        self.head = nn.Sequential(nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(ch, 1, 4, 1, bias=False)))
        self.n_layers = n_layers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, 3, H, W) -> (patch logits (B, 1, h, w), cam_logit (B, 2), heatmap (B, 1, h', w'))."""
        feat, cam_logit, heatmap = self.cam(self.features(x))
        return self.head(feat), cam_logit, heatmap


def discriminator_depths(img_size: int) -> tuple[int, int]:
    """Global/local depths scaled with resolution: (7, 5) at 256 px, one layer less per halving.

    A 7-layer global D reduces 64 px to a 2x2 map, too small for its 4x4 head; keeping the final
    map >= 8 px before the head preserves what the paper's depths see at 256 px.
    """
    global_depth = 7 - max(0, round(math.log2(256 / img_size)))
    global_depth = min(7, max(4, global_depth))
    while global_depth > 4 and img_size / 2 ** (global_depth - 2) < 8:
        global_depth -= 1
    return global_depth, max(3, global_depth - 2)


@register_model("ugatit-light")
def ugatit_light(ngf: int = 64, n_res: int = 4, img_size: int = 256, **kw) -> UGATITGenerator:
    """U-GAT-IT light; ``skip=True`` gives EdgeGAN's identity-start variant."""
    return UGATITGenerator(ngf=ngf, n_res=n_res, img_size=img_size, light=True, **kw)


@register_model("ugatit")
def ugatit_full(ngf: int = 64, n_res: int = 4, img_size: int = 256, **kw) -> UGATITGenerator:
    return UGATITGenerator(ngf=ngf, n_res=n_res, img_size=img_size, light=False, **kw)


@register_model("ugatit-disc-global")
def ugatit_disc_global(ndf: int = 64, img_size: int = 256, **kw) -> UGATITDiscriminator:
    return UGATITDiscriminator(ndf=ndf, n_layers=discriminator_depths(img_size)[0], **kw)


@register_model("ugatit-disc-local")
def ugatit_disc_local(ndf: int = 64, img_size: int = 256, **kw) -> UGATITDiscriminator:
    return UGATITDiscriminator(ndf=ndf, n_layers=discriminator_depths(img_size)[1], **kw)
