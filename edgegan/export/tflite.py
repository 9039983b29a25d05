"""TFLite: litert-torch conversion (no TensorFlow), NHWC input/output, run by the ai-edge-litert interpreter.

- fp32: ``litert_torch.convert`` of the model wrapped by ``to_channel_last_io``: the file takes and
  returns NHWC, what cameras and image libraries produce, and the layout transposes litert-torch
  inserts around NCHW graphs cancel out instead of running at the input and output.
- fp16: fp16 weights (ai-edge-quantizer ``float_casting``), fp32 compute on CPUs (XNNPACK), fp16 on
  GPU delegates; half the file.
- int8: NNCF's quantization carried over as PT2E quantize/dequantize ops (``edgegan.export.qdq``),
  lowered by litert-torch to int8 kernels with float input/output. litert-torch's layout pass needs
  ``LAYOUT_OPTIMIZE_PARTITIONER=GREEDY`` for quantized graphs (set for the conversion only).

``tflite-runtime`` is not used: its last release (2.14) needs numpy<2 and has no INT8 kernel for some
ops (Sqrt); ``ai-edge-litert`` is its maintained successor with the same ``Interpreter`` API.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.io_utils import write_bytes_atomic
from edgegan.quiet import IMPORT_NOISE, quiet_logs
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import embed_tflite

# ai-edge-quantizer: weights to fp16, ops still computed from the (dequantized) weights.
FP16_WEIGHTS = [{"regex": ".*", "operation": "*", "algorithm_key": "float_casting",
                 "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                               "compute_precision": "FLOAT", "explicit_dequantize": True}}]


def _quiet(**env: str):
    # litert-torch and ai-edge-quantizer log every lowering at INFO on the root logger and draw tqdm bars.
    return quiet_logs("", level=logging.WARNING, stderr=True, env=env)


def _litert_torch():
    # Its import starts TensorFlow's C++ logging (absl, oneDNN lines on fd 2) and torchao, which warns that its
    # CUDA kernels and triton are missing on a CPU machine: known noise, printed once per process.
    with quiet_logs(*IMPORT_NOISE, native_stderr=True, env={"TF_CPP_MIN_LOG_LEVEL": "2"}):
        import litert_torch

    litert_torch.config.show_progress = False
    return litert_torch


def _convert(model, size: int, *, quantized: bool) -> bytes:
    import torch

    litert_torch = _litert_torch()
    wrapped = litert_torch.to_channel_last_io(model.eval(), args=[0], outputs=[0]).eval()
    x = torch.zeros(1, size, size, 3)
    quant_config = None
    if quantized:
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig

        # Only the mode matters here (STATIC: lower the graph's q/dq ops to int8 kernels); the grids are NNCF's.
        quant_config = QuantConfig(pt2e_quantizer=PT2EQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)))
    try:
        with _quiet(**({"LAYOUT_OPTIMIZE_PARTITIONER": "GREEDY"} if quantized else {})), torch.no_grad():
            return bytes(litert_torch.convert(wrapped, (x,), quant_config=quant_config).model_content())
    except Exception as err:  # (the converter raises many kinds; keep one line)
        raise EdgeGANError(f"TFLite conversion failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from err


def _fp16_weights(data: bytes) -> bytes:
    from ai_edge_quantizer import quantizer

    q = quantizer.Quantizer(bytearray(data), FP16_WEIGHTS)
    return bytes(q.quantize(enable_progress_bar=False, enable_progress_report=False).quantized_model)


def _signature(data: bytes) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    sig = Interpreter(model_content=data).get_signature_list()["serving_default"]
    return sig["inputs"][0], sig["outputs"][0]


def write(job, cache: dict) -> ModelInfo:
    if job.precision == "int8":
        from edgegan.export.qdq import to_pt2e_qdq

        data = _convert(to_pt2e_qdq(job.qmodel, job.size), job.size, quantized=True)
        extra = {"int8": "NNCF grids as int8 kernels (PT2E q/dq via litert-torch); float32 input/output"}
    else:
        if "tflite_fp32" not in cache:
            cache["tflite_fp32"] = _convert(job.model, job.size, quantized=False)
        data = cache["tflite_fp32"]
        extra = {}
        if job.precision == "fp16":
            with _quiet():
                data = _fp16_weights(data)
            extra = {"fp16": "fp16 weights, dequantized at load on CPU (XNNPACK), fp16 on GPU delegates"}
    input_name, output_name = _signature(data)
    extra["delegation"] = delegate_report(data)
    info = replace(job.info, layout="NHWC", input_name=input_name, output_name=output_name, dynamic_size=False,
                   extra={**job.info.extra, **extra, "signature": "serving_default"})
    write_bytes_atomic(job.path, embed_tflite(data, info))
    return info


def delegate_report(data: bytes) -> dict:
    """What a phone's GPU delegate would make of the graph, checked here without the phone: LiteRT's model
    analyzer (the one behind TensorFlow's ``tf.lite.experimental.Analyzer``, in ai-edge-litert as its pybind
    module) lists the ops and flags each one its GPU delegate cannot take. NNAPI and QNN have no offline
    checker in the registry packages, so they are not claimed."""
    import re
    from collections import Counter

    from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer

    with quiet_logs(warnings_off=False, native_stderr=True):
        text = analyzer.ModelAnalyzer(data, False, True)  # (model bytes, not a path, check GPU compatibility)
    ops = Counter(re.findall(r"^\s*Op#\d+ (\w+)\(", text, re.M))
    flagged = sorted({line.strip() for line in text.splitlines() if "GPU COMPATIBILITY WARNING" in line})
    return {"ops": dict(sorted(ops.items())), "gpu_delegate": "compatible" if not flagged and
            "compatible with GPU delegate" in text else "not fully", "gpu_warnings": flagged[:20],
            "checker": "LiteRT model analyzer (GPU); NNAPI/QNN: no offline checker"}


def _interpreter(path: Path, threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter

    with quiet_logs(warnings_off=False, native_stderr=True):  # "Created TensorFlow Lite XNNPACK delegate"
        it = Interpreter(model_path=str(path), num_threads=threads)
        it.allocate_tensors()
    return it


def structure(path: Path, job, info: ModelInfo) -> list[str]:
    problems = []
    it = _interpreter(path)
    inputs, outputs = it.get_input_details(), it.get_output_details()
    want = [1, job.size, job.size, 3]
    for kind, details in (("input", inputs), ("output", outputs)):
        if len(details) != 1:
            problems.append(f"{len(details)} {kind}s, expected 1")
            continue
        d = details[0]
        if d["dtype"] != np.float32:
            problems.append(f"{kind} is {np.dtype(d['dtype']).name}, expected float32")
        if list(d["shape"]) != want:
            problems.append(f"{kind} shape {list(d['shape'])}, expected {want} (NHWC)")
    sig = it.get_signature_list().get("serving_default", {})
    if sig.get("inputs") != [info.input_name] or sig.get("outputs") != [info.output_name]:
        problems.append(f"signature {sig}, metadata names {info.input_name!r}/{info.output_name!r}")
    dtypes = {np.dtype(t["dtype"]).name for t in it.get_tensor_details()}
    if job.precision == "int8" and "int8" not in dtypes:
        problems.append("int8 model without int8 tensors")
    if job.precision == "fp16" and "float16" not in dtypes:
        problems.append("fp16 model without fp16 weights")
    return problems
