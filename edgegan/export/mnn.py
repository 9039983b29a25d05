"""MNN (``.mnn``): Alibaba's mobile runtime, written by the MNN wheel's own converter from this package's ONNX graph.

- fp32: the slimmed fp32 ONNX the ONNX row validated (dynamic height/width).
- fp16: the same with weights stored as fp16 (``--fp16``): MNN computes in fp32 on x86, in fp16 where the
  CPU has it (ARMv8.2) at its default precision.
- int8: MNN's own post-training quantizer (the wheel's ``quantized.out``: KL-divergence activation
  thresholds, max-abs per-channel weights, symmetric int8 kernels) on the same calibration photos NNCF
  uses, from a fixed-size fp32 model (the tool needs static shapes), so the file is fixed-size. Only the ops
  of the modules NNCF quantizes are quantized, less ``down`` (``MNN_FP32``); the model's input and output
  stay fp32 as in NNCF's model. It is held to NNCF's own result like every INT8 export. NNCF's grids cannot
  be carried over: MNN's converter reads the QDQ ONNX but folds it into float ops (measured: no int8 op
  left, 42.9 dB vs fp32 where NNCF's QDQ model gives 35.7 dB, i.e. activations unquantized).

The EdgeGAN metadata is the model's ``bizCode`` (``Net`` field 0), a free-text tag the converter writes from
``--bizCode`` and the quantizer keeps; ``edgegan.runtime.metadata_io`` reads it without MNN.

The tools run in a child interpreter through the converter's C extension (``_tools``): the quantizer
aborts the process on some inputs (ADMM segfaults, a str argument aborts in C++), and the wheel's
``mnnconvert``/``mnnquant`` scripts import a telemetry logger that runs ``pip install`` when its SDK is
missing, which edgegan must never do.
"""

from __future__ import annotations

import collections
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from edgegan.errors import EdgeGANError
from edgegan.runtime.metadata import ModelInfo

# KL is the tool's default and measured best here: EMA ignores skip_quant_op_names (all 31 convs int8: 38.1-39.1 dB
# at 256 px on the benchmark's stand-in, batch 1-36, winogradOpt no help, vs 41.3 dB for KL); ADMM segfaults in 3.6.1
FEATURE_METHOD = "KL"
# Top-level modules MNN keeps fp32 beyond NNCF's recipe: down reads the fp32 stem's few channels (8 on the stand-in,
# maxima 2.0-4.8) through one per-tensor KL threshold; int8 it costs 2 dB there (39.4 vs 41.3 dB at 256 px; keeping
# any one block fp32 instead: 39.4-39.8 dB, under the 39.9 dB floor)
MNN_FP32 = ("down",)
_TOOL = "import sys, _tools; sys.exit(0 if _tools.{}(sys.argv[1:]) else 1)"


def _run_tool(name: str, *args: str) -> None:
    """``_tools.mnnconvert`` / ``_tools.mnnquant`` with an argv list, in a child process; one-line error on failure."""
    proc = subprocess.run([sys.executable, "-c", _TOOL.format(name), name, *args], capture_output=True, text=True,
                          timeout=1800, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip() and "%" not in ln]
        why = " | ".join(lines[-3:])[:300] or f"exit code {proc.returncode}"
        raise EdgeGANError(f"MNN {name} failed: {why}")


def _calibration_config(job, folder: Path) -> tuple[dict, str]:
    """(the quantizer's image config, less the ops to skip; what it calibrates on): the calibration photos as PNG
    files, preprocessed as ModelInfo says."""
    from edgegan.export import save_calibration_photos

    photos, where = save_calibration_photos(job, folder)
    info = job.info
    config = {"format": info.color, "mean": [-info.offset / info.scale] * 3, "normal": [info.scale] * 3,
              "width": job.size, "height": job.size, "path": f"{folder}/", "used_image_num": len(photos),
              "feature_quantize_method": FEATURE_METHOD, "weight_quantize_method": "MAX_ABS"}
    keep = _fp32_modules(job.model)
    fp32_note = f", {', '.join(keep)} in fp32 (NNCF's recipe plus {', '.join(MNN_FP32)})" if keep else ""
    return config, f"{len(photos)} photos ({where}){fp32_note}"


def _fp32_modules(model) -> tuple[str, ...]:
    """Top-level modules left in fp32: NNCF's recipe's, and MNN_FP32 where the recipe applies."""
    from edgegan.export.ncnn_int8 import fp32_modules

    keep = fp32_modules(model)
    children = dict(model.named_children())
    return keep + tuple(m for m in MNN_FP32 if m in children) if keep else keep


def _skip_ops(model, fp32_mnn: Path, size: int) -> list[str]:
    """The quantizer's skip_quant_op_names: every op outside the modules quantized, named as its session runs them."""
    quantized = set(dict(model.named_children())) - set(_fp32_modules(model))
    # ops are named after their ONNX output (/blocks.0/Add_output_0: module blocks), layout conversions after the op
    # they feed (/stem/conv/Conv_output_0_raster_0); those outside any module (image's conversion, the output tanh)
    # stay fp32 as NNCF leaves them, else MNN makes the output int8 and tanh a 255-entry table of an int8 input (1.8 dB)
    names = dict.fromkeys(name for _, name in _ops(fp32_mnn, size))
    return [n for n in names if n.strip("/").split("/")[0].split(".")[0] not in quantized]


def write(job, cache: dict) -> ModelInfo:
    from edgegan.export.onnx import fp32_onnx_file

    int8 = job.precision == "int8"
    extra = {**job.info.extra, "mnn": importlib.metadata.version("MNN")}
    if job.precision == "fp16":
        extra["weights"] = "fp16 (computed in fp16 where the CPU has it, else fp32)"
    with tempfile.TemporaryDirectory(prefix="edgegan-mnn-") as tmp:
        tmp = Path(tmp)
        onnx_path, dynamic = fp32_onnx_file(job, cache, tmp / "model.onnx", static=int8)
        if int8:
            config, photos = _calibration_config(job, tmp / "calib")
            extra["int8_from"] = (f"MNN's own quantizer ({FEATURE_METHOD} activation thresholds, max-abs per-channel "
                                  f"weights) on {photos}; held to NNCF's result")
            extra["int8"] = "MNN int8 kernels: symmetric int8 weights and activations"
        info = replace(job.info, layout="NCHW", input_name="image", output_name="cartoon", dynamic_size=dynamic,
                       extra=extra)
        convert = ["-f", "ONNX", "--modelFile", str(onnx_path), "--bizCode", info.to_json()]
        if job.precision == "fp16":
            convert.append("--fp16")
        if not int8:
            _run_tool("mnnconvert", *convert, "--MNNModel", str(job.path))
            return info
        fp32, int8_path = tmp / "fp32.mnn", tmp / "int8.mnn"  # the quantizer also writes int8.mnn.json (its scales)
        _run_tool("mnnconvert", *convert, "--MNNModel", str(fp32))
        config["skip_quant_op_names"] = _skip_ops(job.model, fp32, job.size)
        (tmp / "quant.json").write_text(json.dumps(config))
        _run_tool("mnnquant", str(fp32), str(int8_path), str(tmp / "quant.json"))
        shutil.move(int8_path, job.path)
    return info


def op_counts(path: Path, size: int) -> dict[str, int]:
    """How many of each op (``"Convolution [ DT_INT8 ]"`` for int8 kernels) one run at ``size`` executes."""
    return dict(collections.Counter(kind for kind, _ in _ops(path, size)))


def _ops(path: Path, size: int) -> list[tuple[str, str]]:
    from edgegan.quiet import quiet_logs

    with quiet_logs(native_stdout=True, native_stderr=True):
        import MNN

        interpreter = MNN.Interpreter(str(path))
        session = interpreter.createSession({"numThread": 1})
        interpreter.resizeTensor(interpreter.getSessionInput(session), (1, 3, size, size))
        interpreter.resizeSession(session)
        ops: list[tuple[str, str]] = []

        def before(tensors, op) -> bool:
            ops.append((" ".join(op.getType().split()), op.getName()))
            return True

        interpreter.runSessionWithCallBackInfo(session, before, lambda tensors, op: True)
    return ops


def structure(path: Path, job, info: ModelInfo) -> list[str]:
    """Problems found without comparing numbers: reload, I/O names, int8 kernels."""
    from edgegan.runtime.backends import mnn_modules

    mnn_nn, _ = mnn_modules()
    problems = []
    try:
        names = mnn_nn.load_module_from_file(str(path), ["image"], ["cartoon"]).get_info()
    except Exception as err:  # MNN raises bare Exceptions for files it cannot read
        return [f"MNN cannot reload the file ({' '.join(str(err).split())[:200]})"]
    if (names.get("inputNames"), names.get("outputNames")) != (["image"], ["cartoon"]):
        problems.append(f"I/O {names.get('inputNames')} -> {names.get('outputNames')}, expected image -> cartoon")
    ops = op_counts(path, job.size)
    int8_convs = sum(n for op, n in ops.items() if op.startswith("Convolution") and "DT_INT8" in op)
    if job.precision == "int8" and not int8_convs:
        problems.append(f"int8 model without int8 convolutions (ops: {ops})")
    if job.precision != "int8" and int8_convs:
        problems.append(f"{job.precision} model with int8 convolutions")
    return problems  # fp16 storage leaves no trace MNN's Python API shows; the parity (< fp32's) is its check
