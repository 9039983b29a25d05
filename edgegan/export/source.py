"""What ``edgegan export --model`` accepts: a teacher or student checkpoint, or the quantizer's output."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgegan.errors import CheckpointError, EdgeGANError

EXPORTED = (".onnx", ".tflite", ".mlpackage", ".mlmodel")


@dataclass
class Source:
    """An fp32 generator ready to export (eval, BatchNorm folded, image output only) and where it came from."""

    path: Path
    name: str  # registry name
    kwargs: dict
    trained_size: int
    model: nn.Module
    sha256: str  # of the weights file
    stride: int
    quantized: nn.Module | None = None  # NNCF's model, when the source is the quantizer's output
    quantized_file: Path | None = None


class ImageOnly(nn.Module):
    """A generator with only its image output (U-GAT-IT also returns CAM logits and a heatmap)."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x)[0]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _image_only(net: nn.Module, size: int) -> nn.Module:
    from edgegan.models.mobile import fold_batchnorm

    net = fold_batchnorm(net) if any(isinstance(m, nn.BatchNorm2d) for m in net.modules()) else net.eval()
    with torch.no_grad():
        y = net(torch.zeros(1, 3, size, size))
    return ImageOnly(net).eval() if isinstance(y, tuple) else net


def _int8_file(path: Path) -> Path | None:
    """The quantizer's ``student_int8.safetensors`` if ``path`` is it or its output folder."""
    from edgegan.quantize.nncf_int8 import FORMAT

    candidate = path / "student_int8.safetensors" if path.is_dir() else path
    if not (candidate.is_file() and candidate.suffix == ".safetensors"):
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(candidate, "pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"--model {path}: corrupt or unreadable safetensors file ({err})") from err
    return candidate if meta.get("format") == FORMAT else None


def load_source(path: str | Path) -> Source:
    """Load ``path``; one-line :class:`EdgeGANError` for anything that is not a usable model."""
    from edgegan.train.checkpoint import load_generator

    path = Path(path)
    if not path.exists():
        raise EdgeGANError(f"--model {path}: no such file or folder (expected a checkpoint or the quantizer's output)")
    if path.suffix.lower() in EXPORTED:
        raise EdgeGANError(f"--model {path}: already an exported model; export starts from a training checkpoint "
                           "or the quantizer's output")
    int8 = _int8_file(path)
    if int8 is not None:
        return _quantized_source(path, int8)
    try:
        net, ckpt = load_generator(path, "A2B")
    except CheckpointError as err:
        raise CheckpointError(f"--model {err}" if str(err).startswith(str(path)) else f"--model {path}: {err}") from err
    _, spec = ckpt.generator_spec("A2B")
    size = ckpt.trained_size("A2B")
    return Source(path, spec["name"], dict(spec["kwargs"]), size, _image_only(net, size),
                  sha256(ckpt.path / "weights.safetensors"), int(getattr(net, "reduction", 4)))


def _quantized_source(path: Path, int8: Path) -> Source:
    """The quantizer's INT8 model, and its fp32 student (from report.json) as the fp32 reference."""
    from edgegan.quantize.nncf_int8 import load_quantized, quantizers
    from edgegan.train.checkpoint import load_generator

    qmodel, spec = load_quantized(int8)
    report = int8.parent / "report.json"
    student = None
    if report.is_file():
        try:
            student = json.loads(report.read_text())["student"]["checkpoint"]
        except (OSError, ValueError, KeyError, TypeError):
            student = None
    if student and Path(student).exists():
        net, _ = load_generator(student, "A2B")
        fp32 = _image_only(net, spec.size)
    else:
        # No fp32 checkpoint next to it: the quantized model with its quantizers bypassed (NNCF's bias
        # correction included) is the closest fp32 reference there is.
        import copy

        fp32 = copy.deepcopy(qmodel)
        ids = {id(q) for q in quantizers(fp32)}
        for name, module in list(fp32.named_modules()):
            if id(module) in ids:
                parent, _, attr = name.rpartition(".")
                setattr(fp32.get_submodule(parent) if parent else fp32, attr, nn.Identity())
    return Source(path, spec.student["name"], dict(spec.student.get("kwargs", {})), spec.size, fp32.eval(),
                  sha256(int8), int(getattr(fp32, "reduction", 4)), qmodel, int8)


def check_size(src: Source, size: int) -> None:
    """``size`` must be a positive multiple of the stride and the network must run at it."""
    if size < src.stride or size % src.stride:
        raise EdgeGANError(f"--size {size}: must be a positive multiple of {src.stride} "
                           f"(the stride of {src.name}: its down- and up-sampling need whole pixels)")
    try:
        with torch.no_grad():
            src.model(torch.zeros(1, 3, size, size))
    except (RuntimeError, ValueError) as err:
        raise EdgeGANError(f"--size {size}: {src.name} does not run at this size "
                           f"({str(err).splitlines()[0][:160]})") from err
