"""ncnn INT8 without ncnn's C++ tools: ``ncnn2table`` (calibration) and ``ncnn2int8`` (int8 weights) in numpy.

The ``ncnn`` and ``pnnx`` wheels ship the runtime and the converter but not ``ncnn2table``/``ncnn2int8``
(nor does any Debian or PyPI package), so this module does what they do, on ncnn's own file format:

1. Calibration: every Convolution / ConvolutionDepthWise input blob is read out of ncnn itself
   (``Extractor.extract``) on the calibration photos, and given a clipping threshold by one of
   ``ncnn2table``'s methods; the blob scale is ``127 / threshold``.

   - ``aciq`` (``ncnn2table method=aciq``, what edgegan uses): the Gaussian-optimal 8-bit clip for the blob's
     largest magnitude and its size (``compute_aciq_gaussian_clip``), about 0.83 x max|x| for a 128 x 64 x 64
     blob; weight scales are the same clip per output channel (per group for depthwise) of ``max|w|``.
   - ``kl`` (``ncnn2table``'s default): the threshold whose 8-bit histogram (128 bins) has the smallest KL
     divergence from the 2048-bin float histogram (zeros skipped, as the 2019 ncnn2table merged bins);
     weight scales ``127 / max|w|`` per channel. KL clips the rare large values of a ReLU6 output (a depthwise
     conv's, at 2.3 of 6) that the next linear 1x1 conv needs: on the trained skip demo student at 256 px,
     35.3 dB vs NNCF's 37.7 (today's ncnn2table KL, fractional bins plus an epsilon, clips harder: 34.7);
     ACIQ gives 44.3 dB there, and 42.2 vs KL's 40.2 on a briefly fitted student.
2. Conversion (``ncnn2int8``): those layers get ``int8_scale_term`` (``8=2`` Convolution, ``8=1`` depthwise),
   int8 weights (tag ``0x000D4B38``), then the weight scales and the input scale after the bias, which is
   where ncnn's ``load_model`` reads them. Every other layer's bytes are copied unchanged.

ncnn's INT8 is symmetric and per tensor for activations, so NNCF's grids (uint8 activations with a zero
point) cannot be carried over: this is ncnn's own quantizer, held to NNCF's result like every INT8 export.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError

MAGIC = "7767517"
TAG_FP16, TAG_INT8, TAG_FP32_RAW = 0x01306B47, 0x000D4B38, 0x0002C056
QUANTIZABLE = {"Convolution": 2, "ConvolutionDepthWise": 1}  # layer type -> the int8_scale_term ncnn2int8 sets
# layers with (weight, bias): their param keys (weight_data_size, bias_term); any layer type neither here nor in
# WEIGHTLESS stops the conversion (its bytes could not be located in the .bin)
WEIGHTED = {"Convolution": (6, 5), "ConvolutionDepthWise": (6, 5), "Deconvolution": (6, 5),
            "DeconvolutionDepthWise": (6, 5), "InnerProduct": (2, 1)}
WEIGHTLESS = {"Input", "Split", "BinaryOp", "Interp", "TanH", "ReLU", "Clip", "Sigmoid", "Concat", "Padding",
              "Pooling", "Eltwise", "Crop", "Reshape", "Permute", "Flatten", "Slice", "HardSwish", "HardSigmoid",
              "Swish", "Noop", "UnaryOp", "PixelShuffle", "Dropout", "Mish", "ELU", "Softmax", "ShuffleChannel"}
BINS, TARGET_BINS = 2048, 128
METHODS = ("aciq", "kl")  # ncnn2table's method=aciq / method=kl (its eq searches from kl's scales)


@dataclass
class Layer:
    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: list[str]  # "k=v" tokens as written
    span: tuple[int, int] = (0, 0)  # its bytes in the .bin
    weight: np.ndarray | None = None  # float32, as stored (fp16/int8 widened)
    weight_storage: str = ""  # "fp32" | "fp16" | "int8"
    bias: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def param(self, key: int, default: int = 0) -> int:
        for token in self.params:
            k, _, v = token.partition("=")
            if k == str(key):
                return int(float(v))
        return default

    def line(self) -> str:
        return " ".join([f"{self.type:<24s}", f"{self.name:<24s}", str(len(self.bottoms)), str(len(self.tops)),
                         *self.bottoms, *self.tops, *self.params])


def fp32_modules(model) -> tuple[str, ...]:
    """Top-level modules NNCF's recipe keeps in fp32 (a mobile student's full-resolution ends: stem, up-sampling,
    head, which hold most of the INT8 error); the targets with their own quantizer keep the same ones fp32."""
    from edgegan.quantize.nncf_int8 import Recipe

    keep = Recipe().fp32_modules
    children = dict(model.named_children())
    return keep if all(m in children for m in keep) else ()


def onnx_conv_modules(onnx_path: Path, layers: list[Layer]) -> dict[str, str]:
    """ncnn conv layer name -> the top-level module of the ONNX Conv it came from (pnnx keeps the graph's order
    but not its names): paired in order and checked by output channels; {} when they do not pair up."""
    import onnx

    model = onnx.load(str(onnx_path))
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    convs = [(n.name, shapes.get(n.input[1], (0,))[0]) for n in model.graph.node if n.op_type == "Conv"]
    ours = [layer for layer in layers if layer.type in QUANTIZABLE]
    if len(convs) != len(ours) or any(out != layer.param(0) for (_, out), layer in zip(convs, ours)):
        return {}
    # "/blocks.0/body/body.0/conv/Conv" -> "blocks": the part of the first path component before its first "."
    return {layer.name: name.strip("/").split("/")[0].split(".")[0] for (name, _), layer in zip(convs, ours)}


def read_param(path: Path) -> list[Layer]:
    lines = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip()]
    if not lines or lines[0] != [MAGIC]:
        raise EdgeGANError(f"{path}: not an ncnn .param file (first line {' '.join(lines[0]) if lines else ''!r})")
    layers = []
    for tokens in lines[2:]:
        nb, nt = int(tokens[2]), int(tokens[3])
        layers.append(Layer(tokens[0], tokens[1], tokens[4:4 + nb], tokens[4 + nb:4 + nb + nt], tokens[4 + nb + nt:]))
    return layers


def write_param(path: Path, layers: list[Layer]) -> None:
    blobs = len({b for layer in layers for b in layer.tops})
    Path(path).write_text("\n".join([MAGIC, f"{len(layers)} {blobs}", *(layer.line() for layer in layers)]) + "\n")


def _align4(n: int) -> int:
    return (n + 3) // 4 * 4


def _read_tagged(buf: bytes, pos: int, n: int) -> tuple[np.ndarray, str, int]:
    """One ``ModelBin::load(n, 0)`` array: (values as float32, storage, next position)."""
    (tag,) = struct.unpack_from("<I", buf, pos)
    pos += 4
    if tag == TAG_FP16:
        return np.frombuffer(buf, np.float16, n, pos).astype(np.float32), "fp16", pos + _align4(2 * n)
    if tag == TAG_INT8:
        return np.frombuffer(buf, np.int8, n, pos).astype(np.float32), "int8", pos + _align4(n)
    if tag in (0, TAG_FP32_RAW):
        return np.frombuffer(buf, np.float32, n, pos).copy(), "fp32", pos + 4 * n
    raise EdgeGANError(f"ncnn weights with storage tag {tag:#x} (a 256-entry lookup table) are not handled")


def read_weights(layers: list[Layer], bin_path: Path) -> None:
    """Fill in each layer's weights from the .bin, in the .param's order (how ncnn reads it)."""
    buf = Path(bin_path).read_bytes()
    pos = 0
    for layer in layers:
        start = pos
        if layer.type in WEIGHTED and not layer.param(19):  # 19=1: weights come from a second input blob
            size_key, bias_key = WEIGHTED[layer.type]
            layer.weight, layer.weight_storage, pos = _read_tagged(buf, pos, layer.param(size_key))
            if layer.param(bias_key):
                n = layer.param(0)
                layer.bias = np.frombuffer(buf, np.float32, n, pos).copy()
                pos += 4 * n
            term = layer.param(8)  # int8_scale_term: the scales follow the bias
            if term:
                per = layer.param(7, 1) if layer.type == "ConvolutionDepthWise" and term % 100 == 1 else \
                    1 if layer.type == "ConvolutionDepthWise" else layer.param(0)
                n = per + 1 + (term > 100)
                layer.extra["int8_scales"] = np.frombuffer(buf, np.float32, n, pos).copy()
                pos += 4 * n
        elif layer.type not in WEIGHTLESS:
            raise EdgeGANError(f"ncnn INT8: layer {layer.name} of type {layer.type} is not handled (its weights cannot "
                               "be located in the .bin); export fp32/fp16 for this model")
        layer.span = (start, pos)
    if pos != len(buf):
        raise EdgeGANError(f"{bin_path}: {len(buf) - pos} bytes left after the last layer's weights: .param and .bin "
                           "do not match")


def kl_threshold(hist: np.ndarray) -> int:
    """The bin (of ``BINS``) at which to clip, as ``ncnn2table`` picks it: the smallest KL divergence between P,
    the histogram clipped there (outliers added to its last bin), and Q, its first bins merged into 128 levels
    and spread back over their non-empty bins (Q is not renormalised: clipped mass counts against it)."""
    dist = hist.astype(np.float64) / max(hist.sum(), 1)
    best, best_kl = TARGET_BINS, np.inf
    for threshold in range(TARGET_BINS, BINS):
        p = dist[:threshold].copy()
        p[-1] += dist[threshold:].sum()
        head = dist[:threshold]
        idx = (np.arange(threshold) * TARGET_BINS) // threshold  # which of the 128 levels each bin falls in
        merged = np.bincount(idx, weights=head, minlength=TARGET_BINS)
        nonzero = np.bincount(idx, weights=(head != 0), minlength=TARGET_BINS)
        q = np.where(head != 0, merged[idx] / np.maximum(nonzero[idx], 1), 0.0)
        mask = p != 0
        both = mask & (q != 0)
        kl = float(np.sum(p[both] * np.log(p[both] / q[both])) + np.count_nonzero(mask & (q == 0)))
        if kl < best_kl:
            best, best_kl = threshold, kl
    return best


def aciq_threshold(absmax: float, n: int, bits: int = 8) -> float:
    """``ncnn2table``'s ``compute_aciq_gaussian_clip``: the clip that minimises the expected ``bits``-bit
    quantization error of a Gaussian whose standard deviation is estimated from the largest magnitude
    ``absmax`` of ``n`` values (ACIQ, Banner et al. 2019)."""
    alpha = (0.0, 1.71063519, 2.15159277, 2.55913646, 2.93620062, 3.28691474, 3.6151146, 3.92403714)[bits - 1]
    gaussian_const = (0.5 * 0.35) * (1 + np.sqrt(np.pi * np.log(4)))
    std = absmax * 2 * gaussian_const / np.sqrt(2 * np.log(max(n, 2)))
    return float(alpha * std)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise EdgeGANError(f"ncnn INT8 calibration method {method!r}: one of {', '.join(METHODS)}")


def calibrate(param: Path, bin_path: Path, layers: list[Layer], inputs: list[np.ndarray], input_blob: str,
              threads: int = 1, method: str = "aciq") -> dict[str, float]:
    """Input scale (``127 / threshold``) of every quantizable layer, from ncnn's own activations on ``inputs``
    ((3, H, W) float32 each): ``ncnn2table``'s ``method`` (``aciq`` or ``kl``)."""
    import ncnn

    _check_method(method)
    blobs = {layer.name: layer.bottoms[0] for layer in layers if layer.type in QUANTIZABLE}
    net = ncnn.Net()
    net.opt.num_threads = threads
    net.opt.lightmode = False  # keep intermediate blobs: every one is read out
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    if net.load_param(str(param)) or net.load_model(str(bin_path)):
        raise EdgeGANError(f"{param}: ncnn cannot load the fp32 model to calibrate")

    def activations(x: np.ndarray) -> dict[str, np.ndarray]:
        with net.create_extractor() as ex:
            ex.input(input_blob, ncnn.Mat(np.ascontiguousarray(x)).clone())
            # the input blob is x itself (ncnn hands back an unusable Mat for it once the graph has run)
            return {blob: np.abs(x if blob == input_blob else np.array(ex.extract(blob)[1]))
                    for blob in set(blobs.values())}

    absmax: dict[str, float] = {}
    size: dict[str, int] = {}  # values per photo (ncnn2table's ``total``: c * h * w)
    for x in inputs:
        for blob, a in activations(x).items():
            absmax[blob] = max(absmax.get(blob, 0.0), float(a.max()))
            size[blob] = a.size
    if method == "aciq":
        net.clear()
        scales = {blob: 127.0 / aciq_threshold(top, size[blob]) if top > 0 else 1.0 for blob, top in absmax.items()}
        return {name: scales[blob] for name, blob in blobs.items()}
    hists = {blob: np.zeros(BINS) for blob in absmax}
    for x in inputs:
        for blob, a in activations(x).items():
            if absmax[blob] > 0:
                a = a[a != 0]
                hists[blob] += np.bincount(np.minimum((a * (BINS / absmax[blob])).astype(np.int64), BINS - 1),
                                           minlength=BINS)
    net.clear()
    scales = {}
    for blob, top in absmax.items():
        threshold = (kl_threshold(hists[blob]) + 0.5) * top / BINS if top > 0 else 1.0
        scales[blob] = 127.0 / threshold
    return {name: scales[blob] for name, blob in blobs.items()}


def _weight_scales(layer: Layer, method: str = "aciq") -> np.ndarray:
    """One scale per output channel (per group for depthwise): ``127 / max|w|`` (kl), or ``127 /`` the ACIQ
    clip of ``max|w|`` over the channel's weights (aciq, which leaves a small fan-in's largest weight unclipped)."""
    groups = layer.param(7, 1) if layer.type == "ConvolutionDepthWise" else layer.param(0)
    w = layer.weight.reshape(groups, -1)
    absmax = np.abs(w).max(axis=1)
    if method == "aciq":
        absmax = np.array([aciq_threshold(float(a), w.shape[1]) for a in absmax])
    return np.where(absmax > 0, 127.0 / np.maximum(absmax, 1e-30), 1.0).astype(np.float32)


def quantize(param: Path, bin_path: Path, out_param: Path, out_bin: Path, input_scales: dict[str, float],
             method: str = "aciq") -> int:
    """Write the int8 model (``ncnn2int8``), weight scales by ``ncnn2table``'s ``method``; returns how many
    layers were quantized."""
    _check_method(method)
    layers = read_param(param)
    read_weights(layers, bin_path)
    buf = Path(bin_path).read_bytes()
    out = bytearray()
    done = 0
    for layer in layers:
        if layer.name not in input_scales or layer.weight_storage != "fp32":
            out += buf[layer.span[0]:layer.span[1]]
            continue
        scales = _weight_scales(layer, method)
        w = layer.weight.reshape(len(scales), -1) * scales[:, None]
        q = np.clip(np.round(w), -127, 127).astype(np.int8).reshape(-1).tobytes()
        out += struct.pack("<I", TAG_INT8) + q + b"\0" * (_align4(len(q)) - len(q))
        if layer.bias is not None:
            out += layer.bias.astype("<f4").tobytes()
        out += scales.astype("<f4").tobytes() + struct.pack("<f", input_scales[layer.name])
        layer.params = [t for t in layer.params if not re.match(r"^8=", t)] + [f"8={QUANTIZABLE[layer.type]}"]
        done += 1
    write_param(out_param, layers)
    Path(out_bin).write_bytes(bytes(out))
    return done
