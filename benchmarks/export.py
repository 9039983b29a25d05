"""Export targets of the quickstart student, in one run: every format and precision that runs here,
with its parity against PyTorch and its latency; then the TFLite INT8 routes side by side.

    python benchmarks/export.py                                   # the quickstart student (~2 minutes)
    python benchmarks/export.py --model runs/quickstart/int8      # the same, INT8 from `edgegan quantize`
    python benchmarks/export.py --size 256 --runs 100             # the deployment size

Default ``--model``: ``runs/quickstart/int8`` (the quantizer's output: its INT8 model, and the fp32
student it came from) if it exists, else ``runs/quickstart/student``, else a stand-in student fitted
here (``benchmarks/quantize.py``'s ``fit_student``).

Targets (checked and printed at the end):
- fp32 >= 60 dB PSNR vs PyTorch, fp16 >= 45 dB;
- INT8 within 1 dB of the quantizer's own result (NNCF's fake-quant model vs fp32 PyTorch, same photos);
- CoreML: structure only off macOS (its parity is reported as not run, never as passed).

The TFLite INT8 routes, on the same fp32 student and calibration photos, timed in one interleaved loop
(ai-edge-litert, XNNPACK, batch 1): NNCF's grids as int8 kernels (what ``edgegan export`` ships),
ai-edge-quantizer static int8 (min/max calibration), PT2E with litert-torch's own observers,
ai-edge-quantizer dynamic-range int8 and weight-only int8, with fp32 as the baseline.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from edgegan.data.unpaired import to_model_range
from edgegan.runtime.timing import median_ms


def default_model(work: Path) -> Path:
    quickstart = Path("runs/quickstart")
    if (quickstart / "int8" / "student_int8.safetensors").is_file():
        return quickstart / "int8"
    if (quickstart / "student" / "checkpoints").is_dir():
        return quickstart / "student"
    from quantize import fit_student  # benchmarks/quantize.py

    from edgegan.data.demo import build_demo_dataset

    data = work / "data"
    if not (data / "SOURCES.json").is_file():
        build_demo_dataset(data, size=64, n_train=200, n_test=24, seed=0, progress=False)
    return fit_student(data, work / "student", size=64, steps=600)


def check_targets(results) -> list[str]:
    lines = []
    for r in results:
        if r.status == "structure-ok":
            why = r.message.split(": ", 1)[-1]
            lines.append(f"  {r.target:6} {r.precision}: structure checked; parity not run ({why})")
            continue
        if r.status != "ok" or not r.parity:
            lines.append(f"  {r.target:6} {r.precision}: FAIL ({r.status}: {r.message})")
            continue
        psnr = r.parity["psnr_db"] if r.parity["psnr_db"] is not None else float("inf")
        extra = ""
        if r.precision == "int8":
            extra = f" (quantizer's own: {r.parity['nncf_torch_psnr_db']:.2f} dB; vs it: " \
                    f"{r.parity['vs_nncf_torch']['psnr_db']:.1f} dB)"
        verdict = "PASS" if psnr >= r.threshold_db else "FAIL"
        lines.append(f"  {r.target:6} {r.precision}: {verdict} {psnr:.2f} dB >= {r.threshold_db:.2f} dB{extra}")
    return lines


def tflite_int8_routes(source: Path, size: int, calib: np.ndarray, photos: np.ndarray, threads: int,
                       runs: int) -> list[tuple[str, int, float, float]]:
    """(route, bytes, PSNR vs fp32 PyTorch, median ms) of each TFLite INT8 route on the same student."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    from edgegan.export import tflite
    from edgegan.export.qdq import to_pt2e_qdq
    from edgegan.export.source import load_source
    from edgegan.quantize.nncf_int8 import Recipe, ptq
    from edgegan.runtime.quality import compare
    from edgegan.runtime.timing import time_interleaved

    src = load_source(source)
    fp32 = src.model
    x_cal, x_val = to_model_range(calib), to_model_range(photos)
    with torch.no_grad():
        ref = fp32(torch.from_numpy(x_val)).numpy()
    qmodel = src.quantized if src.quantized is not None else ptq(fp32, x_cal, Recipe())
    models = {"fp32 (baseline)": tflite._convert(fp32, size, quantized=False)}
    models["NNCF grids, int8 kernels (shipped)"] = tflite._convert(to_pt2e_qdq(qmodel, size), size, quantized=True)

    def aeq(rec, calibrate: bool) -> bytes:
        q = quantizer.Quantizer(bytearray(models["fp32 (baseline)"]), rec)
        result = None
        if calibrate:
            samples = [{"args_0": c[None].transpose(0, 2, 3, 1)} for c in x_cal]
            with tflite._quiet():
                result = q.calibrate({"serving_default": samples}, num_threads=threads)
        with tflite._quiet():
            return bytes(q.quantize(result, enable_progress_bar=False, enable_progress_report=False).quantized_model)

    models["ai-edge-quantizer static a8w8"] = aeq(recipe.static_wi8_ai8(), True)
    models["PT2E observers (litert-torch)"] = _pt2e(fp32, size, x_cal)
    models["ai-edge-quantizer dynamic int8"] = aeq(recipe.dynamic_wi8_afp32(), False)
    models["ai-edge-quantizer weight-only int8"] = aeq(recipe.weight_only_wi8_afp32(), False)

    runners, rows = {}, []
    for name, data in models.items():
        it = Interpreter(model_content=data, num_threads=threads)
        it.allocate_tensors()
        i, o = it.get_input_details()[0], it.get_output_details()[0]

        def run(x, it=it, i=i, o=o):
            if i["dtype"] != np.float32:  # aeq's static recipe quantizes the model's input/output too
                s, z = i["quantization"]
                x = np.clip(np.rint(x / s + z), -128, 127).astype(i["dtype"])
            it.set_tensor(i["index"], x)
            it.invoke()
            y = it.get_tensor(o["index"])
            if o["dtype"] != np.float32:
                s, z = o["quantization"]
                y = (y.astype(np.float32) - z) * s
            return y

        y = np.concatenate([run(v[None].transpose(0, 2, 3, 1)) for v in x_val]).transpose(0, 3, 1, 2)
        rows.append([name, len(data), compare(y, ref).psnr_db])
        x1 = np.ascontiguousarray(x_val[:1].transpose(0, 2, 3, 1))
        runners[name] = lambda run=run, x1=x1: run(x1)
    ms = time_interleaved(runners, runs)
    return [(name, size_b, psnr, ms[name]) for name, size_b, psnr in rows]


def _pt2e(fp32, size: int, x_cal: np.ndarray) -> bytes:
    """litert-torch's PT2E flow with its own min/max observers (per-channel weights)."""
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgegan.export import tflite

    wrapped = litert_torch.to_channel_last_io(fp32, args=[0], outputs=[0]).eval()
    sample = (torch.zeros(1, size, size, 3),)
    qz = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    with tflite._quiet(LAYOUT_OPTIMIZE_PARTITIONER="GREEDY"):
        prepared = prepare_pt2e(torch.export.export(wrapped, sample).module(), qz)
        for c in x_cal:
            prepared(torch.from_numpy(np.ascontiguousarray(c[None].transpose(0, 2, 3, 1))))
        converted = convert_pt2e(prepared, fold_quantize=False)
        return bytes(litert_torch.convert(converted, sample, quant_config=QuantConfig(pt2e_quantizer=qz))
                     .model_content())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="checkpoint or quantizer output [the quickstart's]")
    ap.add_argument("--size", type=int, default=None, help="export size [the model's]")
    ap.add_argument("--out", type=Path, default=Path("runs/bench_export"))
    # 1 by default: on a 2-core machine shared with other jobs a second thread mostly waits its turn
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--no-routes", action="store_true", help="skip the TFLite INT8 route comparison")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from edgegan.export import export, format_table, validate
    from edgegan.export.source import load_source

    model = args.model or default_model(args.out / "work")
    src = load_source(model)
    size = args.size or src.trained_size
    print(f"model: {model} ({src.name}, trained at {src.trained_size} px), export size {size}, "
          f"{args.threads} thread(s), median of {args.runs} runs\n")
    t = time.perf_counter()
    results = export(model, "all", "all", size=size, out=args.out / "models", threads=args.threads, runs=args.runs)
    print(format_table(results))
    x1 = torch.from_numpy(to_model_range(validate.demo_photos(size)[:1]))
    with torch.no_grad():
        torch_ms = median_ms(lambda: src.model(x1), args.runs)
    print(f"\nPyTorch fp32 eager (reference): {torch_ms:.2f} ms; export of all 9: {time.perf_counter() - t:.0f} s")
    print("\ntargets:")
    print("\n".join(check_targets(results)))

    if args.no_routes:
        return
    calib_dir = Path("runs/quickstart/data/trainA")
    if calib_dir.is_dir():
        calib, where = validate.folder_photos(calib_dir, size, limit=300, min_images=8, role="calib"), str(calib_dir)
    else:
        calib, where = validate.demo_calibration(size), "demo-photo tiles"
    print(f"\nTFLite INT8 routes ({size} px, calibration: {len(calib)} photos from {where}; "
          f"PSNR vs fp32 PyTorch on the 8 demo photos; one interleaved timing loop):")
    rows = tflite_int8_routes(model, size, calib, validate.demo_photos(size), args.threads, args.runs)
    base = next(ms for name, _, _, ms in rows if name.startswith("fp32"))
    print(f"  {'route':38} {'size':>9} {'PSNR dB':>8} {'ms':>7} {'vs fp32':>8}")
    for name, size_b, psnr, ms in rows:
        print(f"  {name:38} {size_b / 1e3:7.0f}kB {psnr:8.2f} {ms:7.2f} {base / ms:7.2f}x")


if __name__ == "__main__":
    main()
