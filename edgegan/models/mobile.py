"""Mobile student generators for distillation, INT8 and NPUs (``mobile-s``, ``mobile-m``, ``mobile-l``).

Only ops that quantize and delegate well: conv + BatchNorm (folded into the conv for inference,
``fold_batchnorm``) + ReLU6, depthwise-separable / inverted-residual blocks, nearest up-sampling,
zero padding, a conv + tanh head. No instance/layer/group norm and no other per-image statistics:
QDQ around those made the INT8 teacher slower than fp32 (shared/README.md).

    stem   3x3 s2 conv           -> 1/2    stem_ch
    down   3x3 s2 conv           -> 1/4    ch           features[0]
    blocks n x inverted residual    1/4    ch (hidden = ch * expand)
                                                        features[1] (middle), features[2] (end)
    up1    nearest x2, dw3x3 + pw   1/2    up_ch[0]     features[3]
    up2    nearest x2, dw3x3 + pw   1/1    up_ch[1]
    head   3x3 conv + tanh          1/1    3
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from edgegan.models.registry import register_model


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` (SIMD/NPU friendly), losing at most 10%."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


class ConvBNAct(nn.Module):
    """Conv2d (zero padding, no bias) + BatchNorm2d + activation; ``fold_batchnorm`` merges bn into conv."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, *,
        groups: int = 1, act: bool = True,
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        # ReLU6: a bounded range that per-tensor INT8 scales cover well; fuses into conv everywhere
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class InvertedResidual(nn.Module):
    """MobileNetV2 block at constant width: 1x1 expand, 3x3 depthwise, linear 1x1 project, + skip."""

    def __init__(self, channels: int, expand: float):
        super().__init__()
        hidden = make_divisible(channels * expand)
        self.body = nn.Sequential(
            ConvBNAct(channels, hidden, 1),
            ConvBNAct(hidden, hidden, 3, groups=hidden),
            ConvBNAct(hidden, channels, 1, act=False),  # linear bottleneck: ReLU here loses information
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpBlock(nn.Module):
    """Nearest x2, then depthwise 3x3 + pointwise: a separable conv where the pixels are most numerous.

    Nearest + conv instead of a transposed conv: no checkerboard, and Resize(nearest) is supported
    by every target (ONNX, TFLite, CoreML, NPU delegates).
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dw = ConvBNAct(in_ch, in_ch, 3, groups=in_ch)
        self.pw = ConvBNAct(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(self.up(x)))


class MobileGenerator(nn.Module):
    """Conv/BN/ReLU6 student generator; ``forward`` gives the image, ``forward_features`` also the taps.

    ``feature_info`` lists the tapped features (timm style: ``channels``, ``reduction``, ``module``)
    so a distiller can build 1x1 projections to the teacher's (ugatit-light: ngf*4 channels at 1/4).
    Input sides must be multiples of 4 (two stride-2 convs, then two x2 up-samplings).

    ``skip=True``: the head (zero-initialised) predicts a change added to the input, clipped to [-1, 1]
    (``clip(x + head)`` instead of ``tanh(head)``): the student starts as the identity, like an
    identity-start teacher, and full-resolution detail need not pass through the 1/4-resolution
    blocks. Add and Clip run on every target and NPU.
    """

    reduction = 4

    def __init__(
        self, *, width: float = 1.0, n_blocks: int = 6, expand: float = 4.0,
        in_channels: int = 3, out_channels: int = 3, skip: bool = False,
    ):
        super().__init__()
        if n_blocks < 2:
            raise ValueError(f"n_blocks must be >= 2 (a block each side of the middle tap), got {n_blocks}")
        stem_ch, ch = make_divisible(16 * width), make_divisible(64 * width)
        up_ch = (make_divisible(32 * width), make_divisible(16 * width))
        self.stem = ConvBNAct(in_channels, stem_ch, 3, stride=2)  # (B, stem_ch, H/2, W/2)
        self.down = ConvBNAct(stem_ch, ch, 3, stride=2)  # (B, ch, H/4, W/4)
        self.blocks = nn.Sequential(*[InvertedResidual(ch, expand) for _ in range(n_blocks)])
        self.up1 = UpBlock(ch, up_ch[0])  # (B, up_ch[0], H/2, W/2)
        self.up2 = UpBlock(up_ch[0], up_ch[1])  # (B, up_ch[1], H, W)
        self.head = nn.Conv2d(up_ch[1], out_channels, 3, padding=1)
        if skip:
            if in_channels != out_channels:
                raise ValueError("skip=True needs as many output channels as input channels")
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.skip = skip
        self.mid = n_blocks // 2
        self.feature_info = [
            {"channels": ch, "reduction": 4, "module": "down"},
            {"channels": ch, "reduction": 4, "module": f"blocks.{self.mid - 1}"},
            {"channels": ch, "reduction": 4, "module": f"blocks.{n_blocks - 1}"},
            {"channels": up_ch[0], "reduction": 2, "module": "up1"},
        ]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (B, 3, H, W) in [-1, 1] -> (image (B, 3, H, W) in [-1, 1], features as in ``feature_info``)."""
        if x.shape[-2] % self.reduction or x.shape[-1] % self.reduction:
            raise ValueError(f"input height and width must be multiples of {self.reduction}, "
                             f"got {tuple(x.shape)}")
        feats = [self.down(self.stem(x))]  # (B, ch, H/4, W/4)
        y = self.blocks[: self.mid](feats[0])
        feats.append(y)
        y = self.blocks[self.mid :](y)
        feats.append(y)
        y = self.up1(y)  # (B, up_ch[0], H/2, W/2)
        feats.append(y)
        out = self.head(self.up2(y))
        return ((x + out).clamp(-1.0, 1.0) if self.skip else torch.tanh(out)), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [-1, 1] -> image (B, 3, H, W) in [-1, 1]."""
        return self.forward_features(x)[0]


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm2d folded into the Conv2d before it.

    Handles ``ConvBNAct``-style modules (``conv`` then ``bn`` attributes) and Conv2d, BatchNorm2d
    pairs adjacent in an ``nn.Sequential``; the folded BN becomes ``nn.Identity``. The original is untouched.
    """
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            module.conv, module.bn = fuse_conv_bn_eval(conv, bn), nn.Identity()
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                    module[i], module[i + 1] = fuse_conv_bn_eval(module[i], module[i + 1]), nn.Identity()
    return model


@register_model("mobile-s")
def mobile_s(width: float = 0.5, n_blocks: int = 8, img_size: int | None = None, **kw) -> MobileGenerator:
    """~0.36 GMACs at 256 px; deeper than it is wide, for receptive field at little cost."""
    return MobileGenerator(width=width, n_blocks=n_blocks, **kw)  # img_size: any multiple of 4 runs


@register_model("mobile-m")
def mobile_m(width: float = 1.0, n_blocks: int = 6, img_size: int | None = None, **kw) -> MobileGenerator:
    """~1 GMACs at 256 px."""
    return MobileGenerator(width=width, n_blocks=n_blocks, **kw)


@register_model("mobile-l")
def mobile_l(width: float = 1.5, n_blocks: int = 8, img_size: int | None = None, **kw) -> MobileGenerator:
    """~2.9 GMACs at 256 px, still 18x below the teacher."""
    return MobileGenerator(width=width, n_blocks=n_blocks, **kw)
