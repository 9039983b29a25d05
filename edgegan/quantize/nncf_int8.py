"""NNCF INT8 for the mobile students, on the torch route: PTQ, QAT, safetensors, QDQ ONNX.

The torch route serves both methods: ``nncf.quantize`` inserts fake-quantizers into the (BatchNorm-
folded) student, QAT fine-tunes that same model, and one export writes the QDQ ONNX file either way.

Two NNCF details handled here:
- NNCF compiles a C++ extension (g++, ninja) on first use of a fake-quantizer and gives up after 60 s
  (a 2-core machine under load does not make it; a killed build leaves a lock file that stalls the
  next run). :func:`setup_nncf` points NNCF at its own pure-torch reference functions instead
  (eager, not ``torch.compile``): same arithmetic, no compiler, fast enough for students this size.
- Export: every quantizer is switched to ``QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS`` and
  the legacy exporter (``dynamo=False``) is used; otherwise onnxruntime meets
  ``org.openvinotoolkit:FakeQuantize`` nodes it cannot run.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgegan.errors import CheckpointError, EdgeGANError
from edgegan.quiet import quiet_logs

log = logging.getLogger(__name__)

FORMAT = "edgegan-int8-v1"
PRESETS = ("performance", "mixed")


@dataclass
class Recipe:
    """How the student is quantized (the measurements behind the defaults are in benchmarks/quantize.py).

    - ``preset``: NNCF's ``performance`` (symmetric weights and activations) or ``mixed`` (asymmetric
      activations). Either way activations are stored as uint8 in the ONNX file (onnx_qdq.finalize_qdq).
    - Activations are always quantized per tensor: NNCF's default puts per-channel quantizers in front of
      depthwise convs and after Resize, which onnxruntime's QLinearConv cannot take (those convs
      stayed fp32 and the model ran 2x slower than fp32).
    - ``per_channel_weights``: one scale per output channel (the quality default; same speed).
    - ``fp32_modules``: top-level modules left in fp32. The full-resolution ends of the student (stem,
      up-sampling blocks, the 3-channel head) have 3-16 channels, where int8 kernels gain nothing and
      nearest Resize on uint8 NHWC tensors is slow in onnxruntime; they also hold most of the
      quantization error (first/last conv).
    """

    preset: str = "performance"
    per_channel_weights: bool = True
    fp32_modules: tuple[str, ...] = ("stem", "up1", "up2", "head")
    fast_bias_correction: bool = True
    subset_size: int = 300

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise EdgeGANError(f"--preset: must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        self.fp32_modules = tuple(self.fp32_modules)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class QuantizedSpec:
    """What rebuilds a quantized student from its safetensors file alone."""

    student: dict  # {"name": registry name, "kwargs": {...}}
    size: int
    recipe: dict
    nncf: dict = field(default_factory=dict)  # nncf.torch.get_config()


def setup_nncf():
    """Import nncf with its pure-torch fake-quantize functions (no C++ build) and quiet logs."""
    # NNCF's telemetry forks a sender process at import (the only thing NNCF_CI switches off): EdgeGAN runs
    # offline, and the fork after JAX (imported by litert-torch) was already running threads risks a deadlock
    os.environ.setdefault("NNCF_CI", "1")
    try:
        import nncf
        from nncf.torch.quantization import extensions
        from nncf.torch.quantization.reference import torch_executor
    except ImportError as err:
        raise EdgeGANError("INT8 quantization needs NNCF: pip install 'edgegan[quantize]'") from err

    class _EagerReference:
        Quantize_forward = torch_executor.forward
        Quantize_backward = torch_executor.backward

    namespace = extensions.QuantizedFunctionsCPU
    if getattr(namespace, "_loaded_namespace", None) is None:
        namespace._loaded_namespace = _EagerReference
    nncf.set_log_level(logging.ERROR)
    return nncf


def _quiet(progress: bool):
    """NNCF draws rich progress bars on stdout; keep them only when the caller shows progress."""
    return quiet_logs(stdout=not progress)


def quantizers(model: nn.Module) -> list[nn.Module]:
    from nncf.torch.quantization.layers import BaseQuantizer

    return [m for m in model.modules() if isinstance(m, BaseQuantizer)]


def _ignored_scope(nncf, model: nn.Module, modules: tuple[str, ...]):
    children = dict(model.named_children())
    unknown = [m for m in modules if m not in children]
    if unknown:
        raise EdgeGANError(f"fp32 modules {unknown} are not in the student (has: {', '.join(children)})")
    # NNCF names graph nodes after the module path with "/" (e.g. "up2/dw/conv/conv2d/0")
    return nncf.IgnoredScope(patterns=[f"{re.escape(m)}/.*" for m in modules], validate=False)


def ptq(model: nn.Module, photos: np.ndarray, recipe: Recipe, *, progress: bool = False) -> nn.Module:
    """Post-training quantization of an fp32 (BatchNorm-folded, eval) model on calibration photos.

    Args:
        photos: float32 (N, 3, S, S) in [-1, 1]; each is one calibration sample (batch 1).
    """
    nncf = setup_nncf()
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, QuantizationParameters

    samples = [torch.from_numpy(photos[i:i + 1]) for i in range(len(photos))]
    advanced = AdvancedQuantizationParameters(
        activations_quantization_params=QuantizationParameters(per_channel=False),
        weights_quantization_params=QuantizationParameters(per_channel=recipe.per_channel_weights),
    )
    preset = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    with _quiet(progress), torch.no_grad():
        return nncf.quantize(
            model.eval(), nncf.Dataset(samples), preset=preset[recipe.preset],
            subset_size=min(recipe.subset_size, len(samples)), fast_bias_correction=recipe.fast_bias_correction,
            ignored_scope=_ignored_scope(nncf, model, recipe.fp32_modules) if recipe.fp32_modules else None,
            advanced_parameters=advanced,
        ).eval()


def nncf_config(model: nn.Module) -> dict:
    """The JSON-able description of where NNCF put which quantizer (``nncf.torch.get_config``)."""
    setup_nncf()
    from nncf.torch import get_config

    return get_config(model)


def rebuild(student: dict, config: dict) -> nn.Module:
    """An (untrained-valued) quantized student with the structure ``config`` describes; load weights next."""
    setup_nncf()
    from nncf.torch import load_from_config

    from edgegan.models import create_model
    from edgegan.models.mobile import fold_batchnorm

    model = fold_batchnorm(create_model(student["name"], **student.get("kwargs", {})))
    return load_from_config(model, config).eval()


def save_quantized(model: nn.Module, path: Path, spec: QuantizedSpec) -> Path:
    """Weights and quantizer parameters as safetensors; the student spec, recipe and NNCF layout in its
    metadata, so :func:`load_quantized` needs nothing else."""
    from safetensors.torch import save

    from edgegan.io_utils import write_bytes_atomic

    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "student": json.dumps(spec.student), "size": str(spec.size),
            "recipe": json.dumps(spec.recipe), "nncf": json.dumps(spec.nncf or nncf_config(model))}
    write_bytes_atomic(path, save(tensors, metadata=meta))
    return path


def load_quantized(path: str | Path) -> tuple[nn.Module, QuantizedSpec]:
    """The quantized student (fake-quant torch model, eval mode) saved by :func:`save_quantized`."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: corrupt or unreadable safetensors file ({err})") from err
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an EdgeGAN INT8 model (format {meta.get('format')!r})")
    spec = QuantizedSpec(json.loads(meta["student"]), int(meta["size"]), json.loads(meta["recipe"]),
                         json.loads(meta["nncf"]))
    model = rebuild(spec.student, spec.nncf)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: tensors do not fit the recorded student ({str(err).splitlines()[0]})") from err
    return model.eval(), spec


def export_onnx(model: nn.Module, path: Path, size: int, *, qdq: bool, finalize: bool = True,
                info=None) -> Path:
    """ONNX via the legacy exporter (input ``image``, output ``cartoon``; batch, height, width dynamic).

    ``qdq``: the model holds NNCF quantizers; they are exported as QuantizeLinear/DequantizeLinear pairs,
    then :func:`edgegan.quantize.onnx_qdq.finalize_qdq` stores int8 weights and uint8 activations
    (``finalize=False``: the exporter's graph as it is, for comparison). ``info``: the
    :class:`~edgegan.runtime.metadata.ModelInfo` to embed (default: name, size and precision only), so the
    runtime's loader opens every file written here.
    """
    import onnx

    from edgegan.io_utils import write_bytes_atomic
    from edgegan.quantize.onnx_qdq import finalize_qdq

    if qdq:
        setup_nncf()
        from nncf.torch.quantization.layers import QuantizerExportMode

        for q in quantizers(model):
            q.set_export_mode(QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS)
    x = torch.zeros(1, 3, size, size)
    axes = {0: "batch", 2: "height", 3: "width"}
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(model.eval(), (x,), buf, dynamo=False, opset_version=17, input_names=["image"],
                              output_names=["cartoon"], dynamic_axes={"image": axes, "cartoon": axes})
    except Exception as err:
        raise EdgeGANError(f"ONNX export failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from err
    proto = onnx.load_from_string(buf.getvalue())
    if qdq and finalize:
        proto, _ = finalize_qdq(proto)
    from edgegan.runtime.metadata import ModelInfo
    from edgegan.runtime.metadata_io import embed_onnx

    embed_onnx(proto, info or ModelInfo(model=type(model).__name__, input_size=size,
                                        precision="int8" if qdq else "fp32", dynamic_size=True))
    write_bytes_atomic(path, proto.SerializeToString())
    return path
