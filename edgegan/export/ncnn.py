"""ncnn (``x.ncnn.param`` + ``x.ncnn.bin``): Tencent's mobile runtime, written by ``pnnx`` from this package's ONNX.

- fp32: pnnx on the slimmed fp32 ONNX the ONNX row validated (pnnx fuses Conv + Clip into one layer);
  shape-free like every ncnn graph, so any input side that is a multiple of the stride runs. Where pnnx
  cannot lower the dynamic graph (a teacher's per-image norms compute N / (N - 1) from the input size),
  the fixed-size graph is converted instead and the file is fixed-size.
- fp16: the same with fp16 weight storage (pnnx ``fp16=1``); ncnn widens them at load on CPUs without fp16
  arithmetic and keeps fp16 where it computes in it (ARM, Vulkan).
- int8: ncnn's own post-training quantization (``ncnn2table method=aciq``: ACIQ-clipped per-tensor input scales
  and per-channel weight scales, symmetric int8) on the same calibration photos NNCF uses; the wheels ship
  neither ``ncnn2table`` nor ``ncnn2int8``, so :mod:`edgegan.export.ncnn_int8` does what they do. (Its default
  KL method clipped a trained skip student's bottleneck inputs too hard: 35.3 dB vs a 36.7 dB floor.)

Blob names are set to ``image`` / ``cartoon`` (pnnx writes ``in0`` / ``out0``). Neither file has a slot for
free text, so the metadata is the sidecar ``x.ncnn.json`` (``edgegan.runtime.metadata_io``), which also
records the two files' sizes; ``edgegan.export`` moves and deletes the three together.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from edgegan.errors import EdgeGANError
from edgegan.export import ncnn_int8
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import embed_sidecar, file_sizes

SIDECAR = ".json"
METHOD = "aciq"  # ncnn2table's method=aciq (its default kl failed a trained student: ncnn_int8's docstring)


def _pnnx(onnx_path: Path, stem: Path, size: int, *, fp16: bool, dynamic: bool = True) -> tuple[Path, Path]:
    """pnnx on an ONNX file; returns its (.ncnn.param, .ncnn.bin). Its other outputs stay under ``stem``'s folder."""
    import pnnx

    outputs = {"pnnxparam": ".pnnx.param", "pnnxbin": ".pnnx.bin", "pnnxpy": "_pnnx.py", "pnnxonnx": ".pnnx.onnx",
               "ncnnparam": ".ncnn.param", "ncnnbin": ".ncnn.bin", "ncnnpy": "_ncnn.py"}
    shapes = [f"inputshape=[1,3,{size},{size}]f32"]
    if dynamic:
        shapes.append(f"inputshape2=[1,3,{2 * size},{2 * size}]f32")
    cmd = [pnnx.EXEC_PATH, str(onnx_path), *shapes, f"fp16={int(fp16)}",
           *(f"{key}={stem}{suffix}" for key, suffix in outputs.items())]
    proc = subprocess.run(cmd, cwd=stem.parent, capture_output=True, text=True, timeout=1800, check=False)
    param, weights = Path(f"{stem}.ncnn.param"), Path(f"{stem}.ncnn.bin")
    if proc.returncode != 0 or not param.is_file() or not weights.is_file():
        tail = " | ".join(ln for ln in (proc.stderr + proc.stdout).splitlines()[-3:] if ln.strip())[:300]
        raise EdgeGANError(f"pnnx failed (exit code {proc.returncode}): {tail}")
    return param, weights


def _leftovers(param: Path) -> list[str]:
    """Layer types pnnx could not lower to ncnn (``pnnx.Expression``, ``aten::...``): ncnn cannot load them."""
    return sorted({layer.type for layer in ncnn_int8.read_param(param) if "." in layer.type or "::" in layer.type})


def _convert(job, cache: dict, tmp: Path) -> tuple[Path, Path, bool]:
    """(.ncnn.param, .ncnn.bin, dynamic size): from the dynamic ONNX graph, else from a fixed-size one. Shape
    arithmetic (per-image norms' N / (N - 1), computed from the input's size) is left by pnnx as expression
    layers ncnn cannot run; at a fixed size it folds into constants."""
    from edgegan.export.onnx import fp32_onnx_file

    fp16 = job.precision == "fp16"
    onnx_path, dynamic = fp32_onnx_file(job, cache, tmp / "model.onnx")
    param, weights = _pnnx(onnx_path, tmp / "model", job.size, fp16=fp16)
    if dynamic and _leftovers(param):
        onnx_path, dynamic = fp32_onnx_file(job, cache, tmp / "static.onnx", static=True)
        param, weights = _pnnx(onnx_path, tmp / "static", job.size, fp16=fp16, dynamic=False)
    left = _leftovers(param)
    if left:
        raise EdgeGANError(f"pnnx left layers ncnn cannot run ({', '.join(left)}): this network does not convert "
                           "to ncnn; export onnx/openvino/tflite instead")
    return param, weights, dynamic


def _rename_blobs(param: Path, names: dict[str, str]) -> None:
    """Rename blobs (and the Input layer) of a .param file, e.g. in0 -> image."""
    layers = ncnn_int8.read_param(param)
    for layer in layers:
        layer.bottoms = [names.get(b, b) for b in layer.bottoms]
        layer.tops = [names.get(t, t) for t in layer.tops]
        if layer.type == "Input":
            layer.name = names.get(layer.name, layer.name)
    ncnn_int8.write_param(param, layers)


def _int8(param: Path, weights: Path, job, tmp: Path) -> tuple[Path, Path, str]:
    from edgegan.export import calibration_photos

    photos, where = calibration_photos(job.size, job.calib)
    layers = ncnn_int8.read_param(param)
    ncnn_int8.read_weights(layers, weights)
    inputs = [x[0] for x in (job.info.preprocess(p) for p in photos)]
    scales = ncnn_int8.calibrate(param, weights, layers, inputs, "image", method=METHOD)
    keep = ncnn_int8.fp32_modules(job.model)
    modules = ncnn_int8.onnx_conv_modules(tmp / "model.onnx", layers) if keep else {}
    if keep and not modules:
        raise EdgeGANError("ncnn INT8: cannot tell which ncnn convolutions are the fp32 modules "
                           f"({', '.join(keep)}) of NNCF's recipe (pnnx reordered the graph)")
    scales = {name: s for name, s in scales.items() if modules.get(name) not in keep}
    out_param, out_bin = tmp / "int8.ncnn.param", tmp / "int8.ncnn.bin"
    n = ncnn_int8.quantize(param, weights, out_param, out_bin, scales, method=METHOD)
    fp32 = f", {', '.join(keep)} in fp32 as in NNCF's recipe" if keep else ""
    total = sum(layer.type in ncnn_int8.QUANTIZABLE for layer in layers)
    return out_param, out_bin, (f"{n} of {total} convolutions{fp32}, {METHOD.upper()}-calibrated on {len(photos)} "
                                f"photos ({where})")


def write(job, cache: dict) -> ModelInfo:
    versions = {"pnnx": importlib.metadata.version("pnnx"), "ncnn": importlib.metadata.version("ncnn")}
    with tempfile.TemporaryDirectory(prefix="edgegan-ncnn-") as tmp:
        tmp = Path(tmp)
        param, weights, dynamic = _convert(job, cache, tmp)
        _rename_blobs(param, {"in0": "image", "out0": "cartoon"})
        extra = {**job.info.extra, **versions}
        if job.precision == "fp16":
            extra["weights"] = "fp16 storage (widened to fp32 at load where the CPU has no fp16 arithmetic)"
        if job.precision == "int8":
            param, weights, what = _int8(param, weights, job, tmp)
            extra["int8_from"] = f"ncnn's own quantization (ncnn2table {METHOD} + ncnn2int8, in edgegan): {what}; " \
                                 "held to NNCF's result"
            extra["int8"] = "ncnn int8 convolutions: symmetric int8 weights (per channel) and inputs (per tensor)"
        shutil.move(param, job.path)
        shutil.move(weights, job.path.with_suffix(".bin"))
    extra["bytes"] = file_sizes(job.path, (".bin",))
    info = replace(job.info, layout="NCHW", input_name="image", output_name="cartoon", dynamic_size=dynamic,
                   extra=extra)
    embed_sidecar(job.path, info, SIDECAR)
    return info


def structure(path: Path, job, info: ModelInfo) -> list[str]:
    """Problems found without comparing numbers: files, blob names, layer types, weight storage."""
    weights = path.with_suffix(".bin")
    if not weights.is_file():
        return [f"{weights.name} missing next to the .param"]
    layers = ncnn_int8.read_param(path)
    try:
        ncnn_int8.read_weights(layers, weights)
    except EdgeGANError:
        pass  # a layer whose weights edgegan does not parse (InstanceNorm, MemoryData): storage unchecked here
    problems = []
    inputs = [t for layer in layers if layer.type == "Input" for t in layer.tops]
    produced = {t for layer in layers for t in layer.tops}
    consumed = {b for layer in layers for b in layer.bottoms}
    if inputs != ["image"] or sorted(produced - consumed) != ["cartoon"]:
        problems.append(f"I/O blobs {inputs} -> {sorted(produced - consumed)}, expected ['image'] -> ['cartoon']")
    int8 = [layer.name for layer in layers if layer.type in ncnn_int8.QUANTIZABLE and layer.param(8)]
    if job.precision == "int8" and not int8:
        problems.append("int8 model without int8 convolutions")
    if job.precision != "int8" and int8:
        problems.append(f"{job.precision} model with int8 convolutions")
    storage = {layer.weight_storage for layer in layers if layer.weight_storage}
    if storage and job.precision == "fp16" and storage != {"fp16"}:
        problems.append(f"fp16 model with weights stored as {sorted(storage)}")
    if storage and job.precision == "fp32" and storage != {"fp32"}:
        problems.append(f"fp32 model with weights stored as {sorted(storage)}")
    return problems
