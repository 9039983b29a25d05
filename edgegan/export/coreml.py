"""CoreML: an mlprogram ``.mlpackage`` from ``torch.export`` via coremltools; structure checked anywhere,
numbers only on macOS (Core ML's runtime exists only there).

- fp32 / fp16: ``compute_precision`` FLOAT32 / FLOAT16 (fp16 is what the Neural Engine runs), input and
  output stay float32 multi-arrays (``image`` 1x3xSxS in [-1, 1], ``cartoon`` the same), so every
  precision is called the same way.
- int8: W8A8 on NNCF's grids (``edgegan.export.qdq``): int8 weights (``constexpr_affine_dequantize``) and
  ``quantize``/``dequantize`` around the activations, fp16 elsewhere. Built on Linux like the others.

Deployment targets, chosen deliberately: fp32/fp16 need iOS 16 / macOS 13 (mlprogram with fp16 I/O
casts and compressed weights; every iPhone since the XS runs iOS 16); W8A8 needs iOS 17 / macOS 14,
the first release with activation ``quantize``/``dequantize`` ops (A17 Pro / M4 Neural Engines run
int8-int8 natively; older chips run the same file with fp16 compute).
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.quiet import IMPORT_NOISE, quiet_logs
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import embed_coreml

TARGETS = {"fp32": "iOS16", "fp16": "iOS16", "int8": "iOS17"}
SPEC_VERSION = {"iOS16": 7, "iOS17": 8}
MACOS = {"iOS16": "macOS13", "iOS17": "macOS14"}


def _quiet():
    # coremltools logs at import (untested torch/sklearn versions, no native runtime on Linux) and draws
    # a tqdm bar per pass pipeline on stderr.
    return quiet_logs("coremltools", *IMPORT_NOISE, stderr=True)


def _ct():
    with _quiet():
        import coremltools as ct
    return ct


def write(job, cache: dict) -> ModelInfo:
    import torch

    ct = _ct()
    target = TARGETS[job.precision]
    model = job.model
    if job.precision == "int8":
        from edgegan.export.qdq import to_pt2e_qdq

        model = to_pt2e_qdq(job.qmodel, job.size, int8_weights=True)
    x = torch.zeros(1, 3, job.size, job.size)
    try:
        with _quiet(), torch.no_grad():
            program = torch.export.export(model.eval(), (x,)).run_decompositions()
            mlmodel = ct.convert(
                program, convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, target),
                compute_precision=ct.precision.FLOAT32 if job.precision == "fp32" else ct.precision.FLOAT16,
                inputs=[ct.TensorType(name="image", shape=tuple(x.shape), dtype=np.float32)],
                outputs=[ct.TensorType(name="cartoon", dtype=np.float32)])
    except Exception as err:  # (the converter raises many kinds; keep one line)
        raise EdgeGANError(f"CoreML conversion failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from err
    extra = {"deployment_target": f"{target} / {MACOS[target]}", "compute_precision": job.precision}
    if job.precision == "int8":
        extra = {**extra, "compute_precision": "fp16", "int8": "W8A8 on NNCF grids (weights and activations)"}
    info = replace(job.info, layout="NCHW", input_name="image", output_name="cartoon", dynamic_size=False,
                   extra={**job.info.extra, **extra})
    embed_coreml(mlmodel, info)
    shutil.rmtree(job.path, ignore_errors=True)  # a temp name: the caller renames it once validated
    with _quiet():
        mlmodel.save(str(job.path))
    # coremltools adds a torch.export debug map (often larger than a small model's weights); Core ML never
    # reads it and the package Manifest does not list it.
    (job.path / "executorch_debug_handle_mapping.json").unlink(missing_ok=True)
    return info


def op_counts(path: Path) -> Counter:
    spec = _load(path).get_spec()
    return Counter(op.type for f in spec.mlProgram.functions.values()
                   for block in f.block_specializations.values() for op in block.operations)


def _load(path: Path, *, compile_model: bool = False):
    ct = _ct()
    with _quiet():
        return ct.models.MLModel(str(path), skip_model_load=not compile_model)


def _conv_count(job) -> int:
    from torch import nn

    return sum(isinstance(m, nn.Conv2d) for m in job.model.modules())


def structure(path: Path, job, info: ModelInfo) -> list[str]:
    """Reload, spec version, program type, I/O names/shapes/types, and the op list."""
    from coremltools.proto import FeatureTypes_pb2

    problems = []
    spec = _load(path).get_spec()
    target = TARGETS[job.precision]
    if spec.WhichOneof("Type") != "mlProgram":
        problems.append(f"model type {spec.WhichOneof('Type')}, expected mlProgram")
    if spec.specificationVersion != SPEC_VERSION[target]:
        problems.append(f"spec version {spec.specificationVersion}, expected {SPEC_VERSION[target]} ({target})")
    want = [1, 3, job.size, job.size]
    f32 = FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    for kind, features, name in (("input", spec.description.input, "image"),
                                 ("output", spec.description.output, "cartoon")):
        if [f.name for f in features] != [name]:
            problems.append(f"{kind}s {[f.name for f in features]}, expected [{name!r}]")
            continue
        array = features[0].type.multiArrayType
        if array.dataType != f32:
            problems.append(f"{kind} {name} data type {array.dataType}, expected FLOAT32")
        if kind == "input" and list(array.shape) != want:
            problems.append(f"input shape {list(array.shape)}, expected {want}")
    ops = op_counts(path)
    convs = _conv_count(job)
    if ops.get("conv", 0) != convs:
        problems.append(f"{ops.get('conv', 0)} conv ops, the model has {convs} Conv2d")
    if job.precision != "fp32" and not ops.get("cast"):
        problems.append("no fp32<->fp16 casts: the program does not compute in fp16")
    if job.precision == "int8":
        if not (ops.get("quantize") and ops.get("dequantize")):
            problems.append("int8 model without quantize/dequantize ops")
        if not ops.get("constexpr_affine_dequantize"):
            problems.append("int8 model without int8 weights (constexpr_affine_dequantize)")
    return problems
