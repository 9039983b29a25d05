"""ONNX: one exporter for every precision (NNCF's), fp32/fp16 cleaned by onnxslim; runs in onnxruntime.

- fp32: the exporter the INT8 path must use (``torch.onnx.export(dynamo=False)``, opset 17, batch,
  height and width dynamic; ``edgegan.quantize.nncf_int8.export_onnx``), so fp32 and INT8 files are the
  same graph but for the Q/DQ nodes, then onnxslim (constant folding, dead nodes, shape inference).
  It exports a student in 0.2 s where the dynamo exporter took 14 s (same graph after onnxslim); the
  dynamo exporter (opset 18) is the fallback for a torch without the legacy one.
- fp16: the fp32 graph with every float tensor in fp16 and fp32 input/output
  (``onnxruntime.transformers.float16``, ``keep_io_types``), so callers feed the same arrays.
- int8: NNCF's QDQ export (int8 weights, uint8 activations). onnxslim is not run on it: constant
  folding would turn ``DequantizeLinear(int8 weight)`` back into fp32 weights and undo the QLinearConv
  fusion.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

from edgegan.errors import EdgeGANError
from edgegan.io_utils import write_bytes_atomic
from edgegan.quiet import quiet_logs
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import embed_onnx

OPSET = 18  # the dynamo fallback (asking it for 17 yields 18 anyway)


def _fp32_proto(model, path: Path, size: int, stride: int):
    """(slimmed fp32 ModelProto, whether height/width are dynamic); ``path`` is scratch space."""
    import onnx
    import onnxslim

    from edgegan.quantize.nncf_int8 import export_onnx

    try:
        proto = onnx.load(str(export_onnx(model, path, size, qdq=False)))
        dynamic = True
    except EdgeGANError:
        proto, dynamic = _dynamo_proto(model, size, stride)
    return onnxslim.slim(proto), dynamic


def _cached_fp32(job, cache: dict, scratch: Path):
    """(slimmed fp32 ModelProto, dynamic): converted once per export call, shared by every format built on it."""
    if "onnx_fp32" not in cache:
        cache["onnx_fp32"] = _fp32_proto(job.model, scratch, job.size, job.info.stride)
    return cache["onnx_fp32"]


def _dynamo_proto(model, size: int, stride: int):
    import torch

    x = torch.zeros(1, 3, size, size)
    kw = {"dynamo": True, "opset_version": OPSET, "verbose": False, "input_names": ["image"],
          "output_names": ["cartoon"]}
    try:
        # the exporter's passes log every rewrite at INFO ("torchvision is not installed", ...)
        with quiet_logs("torch.onnx", "onnxscript", "onnx_ir"), torch.no_grad():
            dims = {0: torch.export.Dim("batch", max=1024), 2: stride * torch.export.Dim("h", max=4096 // stride),
                    3: stride * torch.export.Dim("w", max=4096 // stride)}
            try:
                return torch.onnx.export(model, (x,), None, dynamic_shapes=(dims,), **kw).model_proto, True
            except Exception:
                return torch.onnx.export(model, (x,), None, **kw).model_proto, False
    except Exception as err:  # (the exporter raises many kinds; keep one line)
        raise EdgeGANError(f"ONNX export failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from err


def write(job, cache: dict) -> ModelInfo:
    """Convert ``job.model`` (or ``job.qmodel`` for int8) to ``job.path``; returns the embedded metadata."""
    import onnx

    info = job.info
    if job.precision == "int8":
        from edgegan.quantize.nncf_int8 import export_onnx

        export_onnx(job.qmodel, job.path, job.size, qdq=True)
        proto = onnx.load(str(job.path))
        info = replace(info, dynamic_size=True, extra={**info.extra, "opset": _opset(proto),
                                                       "int8": "NNCF QDQ: int8 weights, uint8 activations"})
    else:
        fp32, dynamic = _cached_fp32(job, cache, job.path)
        proto = onnx.ModelProto()
        proto.CopyFrom(fp32)
        if job.precision == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "values truncated to fp16" for weights under 1e-7
                proto = convert_float_to_float16(proto, keep_io_types=True)
            import onnxslim

            proto = onnxslim.slim(proto)  # the converter appends its input casts last: sort the graph again
        info = replace(info, dynamic_size=dynamic, extra={**info.extra, "opset": _opset(proto)})
    info = replace(info, layout="NCHW", input_name="image", output_name="cartoon")
    proto.producer_name, proto.producer_version = "edgegan", info.edgegan_version
    embed_onnx(proto, info)
    write_bytes_atomic(job.path, proto.SerializeToString())
    return info


def _opset(proto) -> int:
    return max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def structure(path: Path, job, info: ModelInfo) -> list[str]:
    """Problems found without running the model: checker, opset, I/O names, types and shapes."""
    import onnx

    problems = []
    proto = onnx.load(str(path))
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as err:
        problems.append(f"onnx checker: {str(err).splitlines()[0][:200]}")
    if _opset(proto) < 17:
        problems.append(f"opset {_opset(proto)} < 17")
    for (kind, values, name) in (("input", proto.graph.input, "image"), ("output", proto.graph.output, "cartoon")):
        if [v.name for v in values] != [name]:
            problems.append(f"{kind}s {[v.name for v in values]}, expected [{name!r}]")
            continue
        t = values[0].type.tensor_type
        if t.elem_type != onnx.TensorProto.FLOAT:
            problems.append(f"{kind} {name} is {onnx.TensorProto.DataType.Name(t.elem_type)}, expected FLOAT")
        if len(t.shape.dim) != 4 or t.shape.dim[1].dim_value != 3:
            dims = [d.dim_value or d.dim_param for d in t.shape.dim]
            problems.append(f"{kind} {name} shape {dims}, expected Nx3xHxW")
    ops = {n.op_type for n in proto.graph.node}
    if job.precision == "int8" and not {"QuantizeLinear", "DequantizeLinear"} <= ops:
        problems.append("int8 model without QuantizeLinear/DequantizeLinear nodes")
    if job.precision == "fp16" and not any(i.data_type == onnx.TensorProto.FLOAT16 for i in proto.graph.initializer):
        problems.append("fp16 model without fp16 weights")
    return problems


def fp32_onnx_file(job, cache: dict, path: Path, *, static: bool = False) -> tuple[Path, bool]:
    """The slimmed fp32 graph the ONNX row validated, saved to ``path`` for a converter that starts from ONNX
    (OpenVINO, ncnn, MNN); ``static``: batch 1 at ``job.size`` (for tools that need fixed shapes). Returns
    (path, whether height/width are dynamic in what was saved)."""
    import onnx
    import onnxslim

    fp32, dynamic = _cached_fp32(job, cache, path)
    proto = onnx.ModelProto()
    proto.CopyFrom(fp32)
    if static and dynamic:
        proto, dynamic = onnxslim.slim(proto, input_shapes=[f"image:1,3,{job.size},{job.size}"]), False
    onnx.save(proto, str(path))
    return path, dynamic
