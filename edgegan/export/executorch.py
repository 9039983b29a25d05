"""ExecuTorch (``.pte``): PyTorch's own on-device runtime, XNNPACK-delegated; runs here through ``executorch.runtime``.

``torch.export`` -> ``to_edge_transform_and_lower`` with the XNNPACK partitioner -> ``.pte``, NCHW like the PyTorch
model, fixed size (the exported side).

- fp32: XNNPACK's fp32 kernels.
- fp16: the model in half precision with a half input and output (the backend casts): XNNPACK's fp16 kernels,
  which ARM phones with fp16 arithmetic run natively; x86 CPUs emulate them (slower than fp32 here). The file is
  not smaller: ExecuTorch 1.5's XNNPACK serialiser stores conv filters and biases as fp32 in every graph
  (``op_conv2d.py``: ``force_fp32=True``) and converts them at load.
- int8: NNCF's grids (the same quantizer as every other format) as PT2E quantize/dequantize ops with int8
  weights (``edgegan.export.qdq``), lowered to XNNPACK's int8 kernels. A dequantize shared by two consumers (a
  block's input feeds its conv and its residual add) is duplicated per consumer first, as PT2E's own
  ``convert_pt2e`` does: XNNPACK's partitioner otherwise builds partitions with dependency cycles.
  ExecuTorch's own quantizer (``XNNPACKQuantizer``, PT2E observers on the calibration photos) is one flag away
  (``--executorch-quantizer xnnpack``, held to NNCF's result like ncnn's, MNN's and RKNN's own quantizers);
  ``benchmarks/executorch_speed.py`` reports the two side by side (on the trained demo student at 256 px:
  41.5 dB vs NNCF's 37.7 dB). NNCF's grids stay the default so a QAT model exports as trained.

Metadata: the ModelInfo JSON is a constant method of the program named ``edgegan`` (read back without torch by
``edgegan.runtime.metadata_io.executorch_metadata``). ``extra["delegation"]`` is ExecuTorch's delegation summary
of the lowered graph: which ops XNNPACK took, how many partitions, which ops run on ExecuTorch's own CPU kernels
(for EdgeGAN's students: the nearest-neighbour up-sampling, which XNNPACK does not implement; bilinear it does).
:func:`delegate_coverage` runs the other partitioners that lower here (Vulkan for Android GPUs, Core ML for Apple's
GPU/Neural Engine, OpenVINO for Intel NPUs/GPUs) on the same graph without running it: where a phone's accelerator
would take the graph and where it would split. Qualcomm's QNN partitioner is never imported: importing
``executorch.backends.qualcomm`` without a QNN SDK on the machine downloads the SDK from the network.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.io_utils import write_bytes_atomic
from edgegan.quiet import IMPORT_NOISE, quiet_logs
from edgegan.runtime.metadata import METADATA_KEY, ModelInfo

XNNPACK_INT8 = ("ExecuTorch XNNPACKQuantizer (PT2E, symmetric per-channel int8 weights, per-tensor int8 activations), "
                "XNNPACK int8 kernels; float32 input/output")
# Partitioners :func:`delegate_coverage` can run on this machine: name -> the devices whose delegate it is
COVERAGE_BACKENDS = {
    "xnnpack": "CPU (XNNPACK; Android/iOS/Linux arm64 and x86)",
    "vulkan": "Android GPUs (Vulkan)",
    "coreml": "Apple GPU / Neural Engine (Core ML)",
    "openvino": "Intel CPU/GPU/NPU (OpenVINO)",
}


def _quiet():
    # exir warns per pytree node type (FutureWarning), torchao at import that its CUDA kernels are missing, the
    # partitioners log each partition at INFO on the root logger; the C++ side probes the CPU on fd 2
    return quiet_logs("", *IMPORT_NOISE, level=logging.WARNING, native_stderr=True)


def _exir():
    try:
        with _quiet():
            from executorch import exir
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    except ImportError as err:
        raise EdgeGANError("ExecuTorch export needs the executorch extra: pip install 'edgegan[executorch]'") from err
    return exir, XnnpackPartitioner


def _duplicate_shared_dequantize(ep):
    """Give every consumer of a shared ``dequantize_*`` node its own copy (in place; returns ``ep``)."""
    import torch

    qd = torch.ops.quantized_decomposed
    dequantize = {qd.dequantize_per_tensor.default, qd.dequantize_per_tensor.tensor, qd.dequantize_per_channel.default}
    graph = ep.graph_module.graph
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target in dequantize and len(node.users) > 1:
            for user in list(node.users)[1:]:
                with graph.inserting_after(node):
                    twin = graph.node_copy(node)
                user.replace_input_with(node, twin)
    ep.graph_module.recompile()
    return ep


def lower(model, example, *, partitioner: str = "xnnpack", quantized: bool = False):
    """``model`` (an ``nn.Module`` or PT2E ``GraphModule``) exported at ``example`` and lowered with ``partitioner``:
    the ``EdgeProgramManager`` (``.to_executorch()`` serialises it) and its delegation summary."""
    import torch

    exir, XnnpackPartitioner = _exir()
    with _quiet(), torch.no_grad():
        if not isinstance(model, torch.fx.GraphModule):  # convert_pt2e's GraphModule refuses .eval()
            model = model.eval()
        ep = torch.export.export(model, (example,))
        if quantized:
            ep = _duplicate_shared_dequantize(ep)
        part = _partitioner(partitioner, XnnpackPartitioner)
        kwargs = {}
        if partitioner == "vulkan":  # Vulkan's partitioner keeps ops outside the core ATen IR (et_vk.*)
            kwargs["compile_config"] = exir.EdgeCompileConfig(_check_ir_validity=False)
        edge = exir.to_edge_transform_and_lower(ep, partitioner=[part], **kwargs)
    return edge, delegation_summary(edge)


def _partitioner(name: str, XnnpackPartitioner):
    if name == "xnnpack":
        return XnnpackPartitioner()
    if name == "vulkan":
        from executorch.backends.vulkan.partitioner.vulkan_partitioner import VulkanPartitioner

        return VulkanPartitioner()
    if name == "coreml":
        from executorch.backends.apple.coreml.partition import CoreMLPartitioner

        return CoreMLPartitioner()
    if name == "openvino":
        from executorch.backends.openvino.partitioner import OpenvinoPartitioner
        from executorch.exir.backend.compile_spec_schema import CompileSpec

        return OpenvinoPartitioner([CompileSpec("device", b"CPU")])
    raise EdgeGANError(f"partitioner {name!r}: choose from {', '.join(COVERAGE_BACKENDS)}")


def delegation_summary(edge) -> dict:
    """ExecuTorch's delegation breakdown of a lowered program, JSON-able: the delegate backends, partitions, and per
    op type how many nodes were delegated and how many stay on ExecuTorch's own CPU kernels. ``getitem`` nodes (the
    unpacking of a delegate's outputs) are bookkeeping, not ops, and are left out."""
    from executorch.devtools.backend_debug import get_delegation_info

    gm = edge.exported_program().graph_module
    info = get_delegation_info(gm)
    delegated, other = {}, {}
    for row in info.get_operator_delegation_dataframe().itertuples(index=False):
        op, d, n = row[0], int(row[1]), int(row[2])
        if op in ("Total", "getitem"):
            continue
        if d:
            delegated[op] = d
        if n:
            other[op] = n
    calls = [n for n in gm.graph.nodes
             if n.op == "call_function" and getattr(n.target, "__name__", "") == "executorch_call_delegate"]
    backends = sorted({getattr(gm, n.args[0].target).backend_id for n in calls})  # args[0]: the lowered module
    return {"backends": backends, "partitions": int(info.num_delegated_subgraphs),
            "delegated_nodes": sum(delegated.values()), "other_nodes": sum(other.values()),
            "delegated": delegated, "not_delegated": other}


def format_delegation(summary: dict) -> str:
    """One line: ``XnnpackBackend: 63/65 ops in 3 partitions; not delegated: aten_upsample_nearest2d_vec x2``."""
    total = summary["delegated_nodes"] + summary["other_nodes"]
    line = (f"{', '.join(summary['backends']) or 'no delegate'}: {summary['delegated_nodes']}/{total} ops in "
            f"{summary['partitions']} partition{'s' if summary['partitions'] != 1 else ''}")
    if summary["not_delegated"]:
        line += "; not delegated: " + ", ".join(f"{op} x{n}" for op, n in sorted(summary["not_delegated"].items()))
    return line


def _serialise(edge, info: ModelInfo) -> bytes:
    # The metadata is a constant method. It is set on the lowered program (not passed to to_edge) because it holds
    # the delegation summary, known only after lowering; exir emits _config_methods at to_executorch().
    edge._config_methods = {**(edge._config_methods or {}), METADATA_KEY: info.to_json()}
    with _quiet():
        return bytes(edge.to_executorch().buffer)


def _version() -> str:
    from executorch.version import __version__

    return __version__.split("+")[0]


def _example(size: int, dtype=None):
    import torch

    return torch.zeros(1, 3, size, size, dtype=dtype or torch.float32)


def write(job, cache: dict) -> ModelInfo:
    import torch

    quantized = False
    if job.precision == "int8" and job.executorch_quantizer == "xnnpack":
        from edgegan.data.unpaired import to_model_range
        from edgegan.export import calibration_photos

        photos, where = calibration_photos(job.size, job.calib)
        model, example = xnnpack_quantize(job.model, to_model_range(photos)), _example(job.size)
        extra = {"int8": XNNPACK_INT8, "int8_from": f"ExecuTorch's own quantizer (XNNPACKQuantizer, PT2E observers) "
                                                    f"on {len(photos)} photos ({where}); held to NNCF's result"}
    elif job.precision == "int8":
        from edgegan.export.qdq import to_pt2e_qdq

        model, example = to_pt2e_qdq(job.qmodel, job.size, int8_weights=True), _example(job.size)
        extra = {"int8": "NNCF grids as PT2E q/dq, lowered to XNNPACK int8 kernels; float32 input/output"}
        quantized = True
    elif job.precision == "fp16":
        model, example = copy.deepcopy(job.model).eval().half(), _example(job.size, torch.float16)
        extra = {"fp16": "fp16 activations, arithmetic and input/output (XNNPACK fp16 kernels; conv weights are "
                         "stored fp32 and converted at load); the runtime casts the input"}
    else:
        model, example, extra = job.model, _example(job.size), {}
    try:
        edge, summary = lower(model, example, quantized=quantized)
    except EdgeGANError:
        raise
    except Exception as err:  # torch.export / exir raise many kinds; keep one line
        raise EdgeGANError(f"ExecuTorch lowering failed: {type(err).__name__}: "
                           f"{str(err).splitlines()[0][:200] if str(err) else ''}") from err
    info = replace(job.info, layout="NCHW", input_name="image", output_name="cartoon", dynamic_size=False,
                   extra={**job.info.extra, **extra, "executorch": _version(), "delegation": summary})
    write_bytes_atomic(job.path, _serialise(edge, info))
    return info


def structure(path: Path, job, info: ModelInfo) -> list[str]:
    """The program as the runtime sees it: its methods, the forward's one input and output (shape, type), and an
    XNNPACK delegate (an int8 file: its quantize ops inside it)."""
    from edgegan.runtime.executorch_backend import DTYPES, executorch_runtime

    runtime, _ = executorch_runtime()
    problems = []
    with quiet_logs(native_stderr=True):
        program = runtime.load_program(path)
    if set(program.method_names) != {"forward", METADATA_KEY}:
        problems.append(f"methods {sorted(program.method_names)}, expected forward and {METADATA_KEY}")
        return problems
    meta = program.metadata("forward")
    want_dtype = np.float16 if job.precision == "fp16" else np.float32
    want = [1, 3, job.size, job.size]
    for kind, n, tensor in (("input", meta.num_inputs(), meta.input_tensor_meta),
                            ("output", meta.num_outputs(), meta.output_tensor_meta)):
        if n != 1:
            problems.append(f"{n} {kind}s, expected 1")
            continue
        t = tensor(0)
        if list(t.sizes()) != want:
            problems.append(f"{kind} shape {list(t.sizes())}, expected {want} (NCHW)")
        if DTYPES.get(int(t.dtype())) is not want_dtype:
            problems.append(f"{kind} is ScalarType {t.dtype()}, expected {np.dtype(want_dtype).name}")
    summary = info.extra.get("delegation", {})
    if "XnnpackBackend" not in summary.get("backends", []):
        problems.append(f"no XNNPACK partition ({summary})")
    if job.precision == "int8" and not any("quantize_per_tensor" in op for op in summary.get("delegated", {})):
        problems.append("int8 program without quantize ops in its XNNPACK partitions")
    return problems


# ------------------------------------------------------------------------ ExecuTorch's own INT8 quantizer
def xnnpack_quantize(model, calib: np.ndarray, *, per_channel: bool = True):
    """``model`` quantized by ExecuTorch's ``XNNPACKQuantizer`` (PT2E: observers calibrated on ``calib``, float
    NCHW photos in the model's range, batch 1 each): the ``convert_pt2e`` GraphModule, runnable in PyTorch."""
    import torch

    _exir()
    with _quiet():
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))
        with torch.no_grad():
            gm = torch.export.export(copy.deepcopy(model).eval(), (torch.from_numpy(calib[:1]),)).module()
            gm = prepare_pt2e(gm, quantizer)
            for i in range(len(calib)):
                gm(torch.from_numpy(calib[i:i + 1]))
            return convert_pt2e(gm)


def delegate_coverage(model, size: int, backends: tuple[str, ...] = tuple(COVERAGE_BACKENDS)) -> dict[str, dict]:
    """Per partitioner of ``backends``: its delegation summary of ``model`` at ``size`` (lowered, not run), or
    ``{"error": ...}`` where it cannot lower here."""
    out = {}
    for name in backends:
        try:
            _, summary = lower(model, _example(size), partitioner=name)
            out[name] = summary
        except EdgeGANError:
            raise
        except Exception as err:  # a partitioner's own exception types
            out[name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"}
    return out
