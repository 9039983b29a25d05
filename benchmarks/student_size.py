"""Size and CPU latency of the mobile students against the U-GAT-IT light teacher.

Prints, in one run:
- parameters and GMACs at 256 px (``torch.utils.flop_counter`` on the meta device, so the teacher
  costs nothing to count) of every ``mobile-*`` student and of ugatit-light ngf64 / ngf32, and the
  MACs ratio teacher / student;
- CPU latency at batch 1, 256x256 of each student: torch eager with BatchNorm, torch eager with
  BatchNorm folded (``fold_batchnorm``), and onnxruntime fp32 of the folded model's export (if installed);
  median of ``--runs`` calls, all variants interleaved call by call so they share the machine load.

    python benchmarks/student_size.py                 # ~1 minute on 2 cores
    python benchmarks/student_size.py --threads 2 --runs 50
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from edgegan.models import create_model, list_models
from edgegan.models.mobile import fold_batchnorm
from edgegan.profile import onnx_available, onnx_file
from edgegan.runtime.timing import interleaved_times

SIZE = 256
TEACHERS = {
    "ugatit-light ngf64": ("ugatit-light", {"ngf": 64}),
    "ugatit-light ngf32": ("ugatit-light", {"ngf": 32}),
}


def params_and_gmacs(name: str, **kw) -> tuple[float, float]:
    with torch.device("meta"):
        model = create_model(name, img_size=SIZE, **kw).eval()
        x = torch.zeros(1, 3, SIZE, SIZE)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return sum(p.numel() for p in model.parameters()) / 1e6, counter.get_total_flops() / 2e9


def onnx_runner(model: nn.Module, x: torch.Tensor, tmp: Path, threads: int):
    """The fp32 ONNX file ``edgegan export`` writes, run by the runtime's loader; None without the export extra."""
    if onnx_available() is not None:
        return None
    backend = onnx_file(model, SIZE, tmp / "model.onnx", threads)
    x_np = x.numpy()
    return lambda: backend(x_np)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30, help="timed calls per variant (after 3 warm-up calls)")
    # 1 by default: on a 2-core machine shared with other jobs a second thread mostly waits its turn
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    print(f"parameters and MACs at {SIZE}x{SIZE}, batch 1")
    teacher_gmacs = {}
    print(f"{'model':<20}{'params (M)':>11}{'GMACs':>9}{'ngf64 / it':>12}{'ngf32 / it':>12}")
    for label, (name, kw) in TEACHERS.items():
        params, teacher_gmacs[label] = params_and_gmacs(name, **kw)
        print(f"{label:<20}{params:>11.3f}{teacher_gmacs[label]:>9.2f}")
    t64, t32 = teacher_gmacs.values()
    sizes = {n: params_and_gmacs(n) for n in list_models() if n.startswith("mobile-")}
    students = sorted(sizes, key=lambda n: sizes[n][1])  # cheapest first
    for name in students:
        params, gmacs = sizes[name]
        print(f"{name:<20}{params:>11.3f}{gmacs:>9.3f}{t64 / gmacs:>11.0f}x{t32 / gmacs:>11.0f}x")

    x = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    runners: dict[tuple[str, str], Callable[[], object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in students:
            torch.manual_seed(0)
            model = create_model(name).eval()
            folded = fold_batchnorm(model)
            runners[name, "torch"] = lambda m=model: m(x)
            runners[name, "torch folded"] = lambda m=folded: m(x)
            (Path(tmp) / name).mkdir()
            ort_run = onnx_runner(folded, x, Path(tmp) / name, args.threads)
            if ort_run is not None:
                runners[name, "ORT fp32 folded"] = ort_run

    with torch.inference_mode():  # interleaved: every variant sees the same load
        times = interleaved_times(runners, args.runs, warmup=3)

    variants = list(dict.fromkeys(v for _, v in runners))
    print(f"\nCPU latency, batch 1, {SIZE}x{SIZE}, {args.threads} thread(s), "
          f"median of {args.runs} interleaved runs (ms)")
    print(f"{'model':<12}" + "".join(f"{v:>17}" for v in variants) + f"{'fold speed-up':>15}")
    for name in students:
        med = {v: statistics.median(times[name, v]) for v in variants if (name, v) in times}
        cells = "".join(f"{med[v]:>17.1f}" if v in med else f"{'-':>17}" for v in variants)
        print(f"{name:<12}{cells}{med['torch'] / med['torch folded']:>14.2f}x")
    if not any(v.startswith("ORT") for v in variants):
        print("(onnxruntime not installed: pip install onnxruntime onnxscript for the ORT column)")


if __name__ == "__main__":
    main()
