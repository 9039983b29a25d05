"""OpenVINO vs the other runtimes for the quickstart student at 256x256, in one interleaved run.

    python benchmarks/openvino_speed.py                              # runs/quickstart/int8 (make demo first)
    python benchmarks/openvino_speed.py --model runs/int8 --size 256 --threads 2 --runs 100

1. ``edgegan export`` writes the student as ONNX and OpenVINO IR in fp32/fp16/int8 at ``--size``
   (INT8 = the quantizer's NNCF model), each validated against PyTorch on real photos;
2. ``edgegan bench``'s model table: every runtime x precision that runs here (onnxruntime CPU,
   OpenVINO at f32 and bf16 hints, on .onnx and .xml), timed in ONE interleaved loop, with PSNR vs
   the fp32 model;
3. the targets: OpenVINO INT8 latency <= 0.67 x the fastest fp32 path; its PSNR vs the fp32
   student within +-0.2 dB of the quantizer's own (NNCF torch model) result, both from step 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgegan.export import export, format_table
from edgegan.runtime.bench import bench_models, fastest, format_latency


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="runs/quickstart/int8", help="the quantizer's output folder")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--out", type=Path, default=None, help="keep the exports here [a temporary folder]")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if not Path(args.model).exists():
        sys.exit(f"error: {args.model}: not found (run `make demo` first, or pass --model)")
    with tempfile.TemporaryDirectory(prefix="edgegan-ov-bench-") as tmp:
        out = args.out or Path(tmp)
        results = export(args.model, ["onnx", "openvino"], "all", size=args.size, out=out, threads=args.threads)
        print(f"1. exports at {args.size}x{args.size}, validated against PyTorch\n{format_table(results)}\n")
        rows = bench_models(out, threads=args.threads, runs=args.runs)
        print(f"2. runtimes x precisions, batch 1, {args.threads} thread(s), median of {args.runs} interleaved calls")
        print(format_latency(rows))

        # "fp32 path": an fp32 model computing in fp32; OpenVINO's bf16 hint (~57 dB vs fp32) is a lower
        # precision of its own and is shown as a separate comparison
        fp32 = [r for r in rows if r.precision == "fp32" and r.hint != "bf16" and r.median_ms is not None]
        bf16 = [r for r in rows if r.precision in ("fp32", "fp16") and r.hint == "bf16" and r.median_ms is not None]
        ov_int8 = [r for r in rows if r.precision == "int8" and r.backend == "openvino" and r.median_ms is not None]
        best_fp32, best_ov = fastest(fp32), fastest(ov_int8)
        index = json.loads((out / "export.json").read_text())["results"]
        ov_row = next(r for r in index if r["target"] == "openvino" and r["precision"] == "int8")
        print("\n3. targets")
        if best_fp32 and best_ov:
            ratio = best_ov.median_ms / best_fp32.median_ms
            print(f"  [{'met' if ratio <= 0.67 else 'MISSED'}] OpenVINO INT8 {best_ov.median_ms:.2f} ms "
                  f"({best_ov.device}, {best_ov.model}) / fastest fp32 {best_fp32.median_ms:.2f} ms "
                  f"({best_fp32.backend} {best_fp32.device}, "
                  f"{best_fp32.model}) = {ratio:.2f} (goal <= 0.67)")
        if best_ov and bf16:
            b = fastest(bf16)
            print(f"  [info] OpenVINO INT8 / fastest bf16-compute path {b.median_ms:.2f} ms ({b.model}) = "
                  f"{best_ov.median_ms / b.median_ms:.2f}")
        got, own = ov_row["parity"].get("psnr_db"), ov_row["parity"].get("nncf_torch_psnr_db")
        if got is not None and own is not None:
            print(f"  [{'met' if abs(got - own) <= 0.2 else 'MISSED'}] OpenVINO INT8 vs fp32 student {got:.2f} dB, the "
                  f"quantizer's own {own:.2f} dB: difference {got - own:+.2f} dB (goal within +-0.2)")


if __name__ == "__main__":
    main()
