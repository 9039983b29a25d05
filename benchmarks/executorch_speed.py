"""ExecuTorch next to ONNX Runtime (and OpenVINO on the same .onnx files), on one student, in one run: the export
table (status, size, parity vs PyTorch on real photos), ExecuTorch's own INT8 quantizer next to NNCF's grids,
``edgegan bench``'s interleaved table, and the delegate report (which ops XNNPACK, Vulkan, Core ML and OpenVINO
would take, and where the graph splits).

    python benchmarks/executorch_speed.py                       # stand-in mobile-s at 256 px, 2 threads (~5 minutes)
    python benchmarks/executorch_speed.py --model demo          # the packaged demo student (trained), same table
    python benchmarks/executorch_speed.py --model RUN --size 256 --threads 2 --runs 100

``--model``: a student checkpoint; ``demo``: the packaged demo model's mobile-s (trained, ``skip=True``) rebuilt in
PyTorch from the weights of ``edgegan/runtime/demo_model/demo_fp32.onnx`` (BatchNorm already folded there); default:
the stand-in of ``benchmarks/ncnn_mnn.py`` (mobile-s width 0.5 fitted for a few hundred steps at 64 px to a
posterised copy of the demo photos), so the two benchmarks time the same network. Being fully convolutional, the
student is exported at ``--size``. INT8: NNCF PTQ on the demo-photo tiles (what ``edgegan export`` ships, for ONNX and
ExecuTorch alike); ExecuTorch's XNNPACKQuantizer (PT2E observers) on the same tiles, written beside them as
``*_int8-pt2e.pte``. The machine's load average and busiest processes are printed before and after:
the interleaved timing keeps ratios honest on a shared machine, not absolute times.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def demo_student(out: Path, size: int) -> Path:
    """The packaged demo student as a checkpoint: mobile-s (skip) with the folded conv weights of its ONNX file
    (each BatchNorm set to the identity, so folding it again at export changes nothing)."""
    import onnx
    import torch
    from onnx import numpy_helper

    from edgegan.models import create_model
    from edgegan.runtime.packaged import DEMO_DIR
    from edgegan.train.checkpoint import save_checkpoint

    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in onnx.load(str(DEMO_DIR / "demo_fp32.onnx")).graph.initializer}
    kwargs = {"skip": True, "img_size": size}
    net = create_model("mobile-s", **kwargs).eval()
    state = {}
    for key, value in net.state_dict().items():
        owner, _, leaf = key.rpartition(".bn.")
        if not owner:
            state[key] = weights.get(key, value)
        elif leaf == "bias":
            state[key] = weights[f"{owner}.conv.bias"]
        elif leaf in ("weight", "running_var"):
            state[key] = torch.ones_like(value) - (net.stem.bn.eps if leaf == "running_var" else 0.0)
        elif leaf == "running_mean":
            state[key] = torch.zeros_like(value)
        else:
            state[key] = value
    net.load_state_dict(state)
    save_checkpoint(out / "checkpoints", 1, modules={"g": net}, optimizers={}, config={"size": size},
                    state={"models": {"g": {"name": "mobile-s", "kwargs": kwargs}}, "translators": {"A2B": "g"}})
    return out


def machine_load() -> str:
    """The load average and the three busiest other processes: what else was running during the timings."""
    top = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True).stdout
    procs = [" ".join(line.split()) for line in top.splitlines()[1:] if str(os.getpid()) not in line][:3]
    return f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; busiest: {'; '.join(procs)}"


def xnnpack_quantizer_row(model_dir: Path, out: Path, size: int) -> list[str]:
    """ExecuTorch's own INT8 (``edgegan export --executorch-quantizer xnnpack``) on the same calibration photos as
    NNCF, moved beside the exports as ``*_int8-pt2e.pte`` for the bench; its quality on the export's validation
    photos next to NNCF's (vs fp32 PyTorch; and the file vs its own PyTorch model)."""
    import torch

    from edgegan.data.unpaired import to_model_range
    from edgegan.export import calibration_photos, export, validate
    from edgegan.export import executorch as et
    from edgegan.export.source import load_source
    from edgegan.runtime.formats import read_model_info
    from edgegan.runtime.quality import compare

    t = time.perf_counter()
    (r,) = export(model_dir, "executorch", "int8", size=size, out=out / "xnnpack", runs=1,
                  executorch_quantizer="xnnpack")
    seconds = time.perf_counter() - t
    if r.status != "ok":
        return [f"ExecuTorch XNNPACKQuantizer: {r.status}: {r.message}"]
    path = out / Path(r.path).name.replace("_int8.pte", "_int8-pt2e.pte")
    Path(r.path).replace(path)
    src = load_source(model_dir)
    calib, where = calibration_photos(size, None)
    qmodel = et.xnnpack_quantize(src.model, to_model_range(calib))  # the same calibration: the file's torch twin
    x = to_model_range(validate.demo_photos(size))
    with torch.no_grad():
        ref = validate.run_batched(lambda b: src.model(torch.from_numpy(b)).numpy(), x)
        own = validate.run_batched(lambda b: qmodel(torch.from_numpy(b)).numpy(), x)
    nncf = {row.get("precision"): row for row in _export_rows(out) if row.get("target") == "executorch"}.get("int8", {})
    return [f"ExecuTorch INT8, same {len(calib)} calibration photos ({where}), PSNR vs fp32 PyTorch on the "
            f"{len(x)} validation photos:",
            f"  NNCF grids (shipped):         file {nncf.get('parity', {}).get('psnr_db')} dB, NNCF's torch model "
            f"{nncf.get('parity', {}).get('nncf_torch_psnr_db')} dB, {nncf.get('bytes', 0) / 1e3:.0f} kB",
            f"  XNNPACKQuantizer (PT2E):      file {r.parity['psnr_db']:.2f} dB, its torch model "
            f"{compare(own, ref).psnr_db:.2f} dB, {path.stat().st_size / 1e3:.0f} kB, {seconds:.0f} s "
            f"(edgegan export --executorch-quantizer xnnpack)",
            f"  delegation: {et.format_delegation(read_model_info(path).extra['delegation'])}"]


def _export_rows(out: Path) -> list[dict]:
    import json

    return json.loads((out / "export.json").read_text())["results"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a student checkpoint, or demo [a stand-in fitted here]")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200, help="fitting steps of the stand-in")
    parser.add_argument("--out", type=Path, default=None, help="keep the exports here [a temporary folder]")
    args = parser.parse_args()

    import torch

    from edgegan.export import executorch as et
    from edgegan.export import export, format_table
    from edgegan.export.source import load_source
    from edgegan.runtime.bench import bench_models, format_latency
    from edgegan.runtime.formats import read_model_info

    torch.set_num_threads(args.threads)
    print(f"before: {machine_load()}")
    with tempfile.TemporaryDirectory(prefix="edgegan-executorch-") as tmp:
        out = args.out or Path(tmp) / "exports"
        work = out.parent if args.out else Path(tmp)
        t = time.perf_counter()
        if args.model == "demo":
            model = demo_student(work / "demo_student", args.size)
        elif args.model:
            model = Path(args.model)
        else:
            from ncnn_mnn import fit_stand_in  # benchmarks/ncnn_mnn.py: the same stand-in network

            stand_in = work / "stand_in"
            model = stand_in if (stand_in / "checkpoints").is_dir() else fit_stand_in(stand_in, steps=args.steps)
        print(f"model: {model} ({time.perf_counter() - t:.0f} s)")
        results = export(model, ["onnx", "executorch"], "all", size=args.size, out=out, threads=args.threads,
                         runs=20)
        print(format_table(results))
        print()
        for r in results:
            if r.target == "executorch" and r.status == "ok":
                print(f"delegation {r.precision}: {et.format_delegation(read_model_info(r.path).extra['delegation'])}")
        print()
        print("\n".join(xnnpack_quantizer_row(Path(model), out, args.size)))
        print(f"\nmodel only, {args.size} px, {args.threads} threads, {args.runs} interleaved runs:")
        print(f"during: {machine_load()}")
        print(format_latency(bench_models(out, threads=args.threads, runs=args.runs, size=args.size)))
        print(f"after: {machine_load()}")
        print(f"\ndelegate coverage of the fp32 graph at {args.size} px (lowered, not run):")
        coverage = et.delegate_coverage(load_source(model).model, args.size)
        for name, summary in coverage.items():
            what = et.format_delegation(summary) if "error" not in summary else f"cannot lower here: {summary['error']}"
            print(f"  {name:9s} {et.COVERAGE_BACKENDS[name]}: {what}")
        print("  qnn       Qualcomm NPUs (QNN): not run; executorch.backends.qualcomm downloads the QNN SDK at import")


if __name__ == "__main__":
    main()
