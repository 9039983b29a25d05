"""NNCF's INT8 decisions as PyTorch quantize/dequantize ops, for the TFLite and CoreML converters.

One quantizer for every format: ONNX gets NNCF's QDQ graph directly; litert-torch and coremltools
cannot read NNCF's quantizer modules, but both lower the PT2E representation (``quantized_decomposed``
quantize/dequantize ops around float ops) to integer kernels. :func:`to_pt2e_qdq` swaps every NNCF
quantizer for those ops on NNCF's own grid (scale, zero point, range, per-channel axis), so the
TFLite and CoreML INT8 models compute what the quantizer measured, fp32 modules included.

Measured on a mobile-s student (256 px, real photos): this route's TFLite model matched NNCF's torch
model to 1e-4, while re-quantizing with ai-edge-quantizer's static recipe lost 1.4-5 dB to NNCF, PT2E's
own observers 3 dB, and dynamic-range INT8 ran 2.4x slower than fp32 (benchmarks/export.py).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def _ops():
    import torch.ao.quantization.fx._decomposed  # registers torch.ops.quantized_decomposed

    return torch.ops.quantized_decomposed


class QDQ(nn.Module):
    """Quantize then dequantize on one NNCF quantizer's grid, as ``quantized_decomposed`` ops.

    Activations are per tensor (the recipe's choice); uint8 grids move to int8 with the zero point
    shifted by 128 (the same values; TFLite's integer kernels take int8). Per-channel quantizers are
    NNCF's weight quantizers. litert-torch folds ``quantize(weight) -> dequantize`` into int8 weights;
    coremltools only takes the folded form, an int8 constant followed by a dequantize
    (``int8_weights``): the weight reaches the quantizer only through NNCF's hook, so that copy is made
    on the first call (:func:`to_pt2e_qdq` makes it).
    """

    def __init__(self, quantizer: nn.Module, *, int8_weights: bool = False):
        super().__init__()
        from nncf.torch.quantization.quantize_functions import get_scale_zp_from_input_low_input_high

        with torch.no_grad():
            _, high, low, input_low, input_high = quantizer._prepare_export_quantization(torch.zeros(1))
            scale, zero_point = get_scale_zp_from_input_low_input_high(low, high, input_low, input_high)
        low, high = int(low), int(high)
        zero_point = zero_point.to(torch.int32)
        if low >= 0:
            zero_point, low, high = zero_point - 128, low - 128, high - 128
        self.low, self.high = low, high
        axes = [i for i, n in enumerate(quantizer.scale_shape) if n > 1]
        self.axis = axes[0] if axes else None
        if self.axis is None:
            self.scale, self.zero_point = float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0])
        else:
            self.register_buffer("scale", scale.float().reshape(-1))
            self.register_buffer("zero_point", zero_point.reshape(-1))
        self.int8_weights = int8_weights
        self.register_buffer("qweight", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qd = _ops()
        if self.axis is None:
            q = qd.quantize_per_tensor(x, self.scale, self.zero_point, self.low, self.high, torch.int8)
            return qd.dequantize_per_tensor(q, self.scale, self.zero_point, self.low, self.high, torch.int8)
        if not self.int8_weights:
            q = qd.quantize_per_channel(x, self.scale, self.zero_point, self.axis, self.low, self.high, torch.int8)
        elif self.qweight is None:
            q = self.qweight = qd.quantize_per_channel(x.detach(), self.scale, self.zero_point, self.axis, self.low,
                                                       self.high, torch.int8)
        else:
            q = self.qweight
        return qd.dequantize_per_channel(q, self.scale, self.zero_point, self.axis, self.low, self.high,
                                         torch.int8)


def to_pt2e_qdq(qmodel: nn.Module, size: int, *, int8_weights: bool = False) -> nn.Module:
    """A copy of an NNCF-quantized model with every quantizer replaced by :class:`QDQ` (eval mode)."""
    from edgegan.quantize.nncf_int8 import quantizers

    model = copy.deepcopy(qmodel).eval()
    found = {id(q) for q in quantizers(model)}
    for name, module in list(model.named_modules()):
        if id(module) in found:
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, QDQ(module, int8_weights=int8_weights))
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))  # materialises the int8 weights
    return model
