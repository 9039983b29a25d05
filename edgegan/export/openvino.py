"""OpenVINO IR (``.xml`` + ``.bin``): NNCF's native runtime, where INT8 pays on x86 CPUs.

All three precisions start from this package's ONNX graphs, so the IR is the same network the ONNX
row validated: fp32 from the slimmed fp32 ONNX, fp16 = the same with weights compressed to fp16
(``save_model(compress_to_fp16=True)``: OpenVINO decompresses them at load and computes in the
device's own precision), int8 from NNCF's QDQ ONNX, which OpenVINO turns into its FakeQuantize
ops and runs with int8 kernels (VNNI/AMX on this CPU). The IR keeps the ONNX graph's dynamic
batch/height/width.

The ``.bin`` sits next to the ``.xml`` under the same stem; ``edgegan.export`` moves and deletes
them together.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import embed_openvino


def _onnx_file(job, cache: dict, tmp: Path) -> Path:
    """The ONNX graph this precision converts from, written to ``tmp``."""
    from edgegan.export.onnx import fp32_onnx_file
    from edgegan.quantize.nncf_int8 import export_onnx

    path = tmp / "model.onnx"
    if job.precision == "int8":
        return export_onnx(job.qmodel, path, job.size, qdq=True)
    return fp32_onnx_file(job, cache, path)[0]


def write(job, cache: dict) -> ModelInfo:
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="edgegan-ov-") as tmp:
        # read_model, not convert_model: the same ONNX frontend without ovc's telemetry, which forks a sender
        # process per call (next to JAX's threads: a deadlock warning, and a network call that cannot succeed)
        model = ov.Core().read_model(str(_onnx_file(job, cache, Path(tmp))))
    dynamic = any(model.input(0).get_partial_shape()[i].is_dynamic for i in (2, 3))
    extra = {**job.info.extra, "openvino": ov.get_version().split("-")[0]}
    if job.precision == "fp16":
        extra["weights"] = "fp16 (compute precision: the device's, see --precision-hint)"
    if job.precision == "int8":
        extra["int8"] = "NNCF QDQ -> OpenVINO FakeQuantize (int8 kernels)"
    info = replace(job.info, layout="NCHW", input_name="image", output_name="cartoon", dynamic_size=dynamic,
                   extra=extra)
    embed_openvino(model, info)
    # save_model writes <stem>.xml and <stem>.bin; job.path is already a temporary name
    ov.save_model(model, str(job.path), compress_to_fp16=job.precision == "fp16")
    return info


def structure(path: Path, job, info: ModelInfo) -> list[str]:
    """Problems found without running: reload, I/O names/shapes, the precision's ops and weight types."""
    import openvino as ov

    problems = []
    if not path.with_suffix(".bin").is_file():
        return [f"{path.with_suffix('.bin').name} missing next to the .xml"]
    model = ov.Core().read_model(str(path))
    names = ([n for i in model.inputs for n in i.get_names()], [n for o in model.outputs for n in o.get_names()])
    if "image" not in names[0] or "cartoon" not in names[1]:
        problems.append(f"I/O names {names}, expected image -> cartoon")
    shape = model.input(0).get_partial_shape()
    if shape.rank.get_length() != 4 or shape[1].get_length() != 3:
        problems.append(f"input shape {shape}, expected Nx3xHxW")
    ops = {op.get_type_name() for op in model.get_ops()}
    weight_types = {op.get_output_element_type(0).get_type_name() for op in model.get_ops()
                    if op.get_type_name() == "Constant"}
    if job.precision == "int8" and "FakeQuantize" not in ops and "i8" not in weight_types:
        problems.append("int8 model without FakeQuantize ops or int8 weights")
    if job.precision == "fp16" and "f16" not in weight_types:
        problems.append("fp16 model without fp16 weights")
    return problems
