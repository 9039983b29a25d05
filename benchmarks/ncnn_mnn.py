"""ncnn and MNN next to ONNX Runtime (and OpenVINO on the same .onnx files), on one student, in one run:
the export table (status, size, parity vs PyTorch on real photos) and ``edgegan bench``'s interleaved table.

    python benchmarks/ncnn_mnn.py                       # mobile-s at 256 px, 2 threads (~3 minutes)
    python benchmarks/ncnn_mnn.py --model RUN --size 256 --threads 2 --runs 100
    python benchmarks/ncnn_mnn.py --targets all        # every engine installed, one interleaved table

Default ``--model``: a stand-in mobile-s (the quickstart student's architecture, width 0.5, BatchNorm folded
at export) fitted here for a few hundred steps at 64 px to a posterised copy of the demo photos, so its output
depends on the photo and INT8 error is measurable; being fully convolutional it is exported at ``--size``.
INT8: NNCF PTQ on the demo-photo tiles for ONNX; ncnn's and MNN's own quantizers on the same tiles.
Timings are of this stand-in's weights (the network's cost does not depend on them); quality must be judged
on a trained student.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fit_stand_in(out: Path, *, steps: int, size: int = 64) -> Path:
    import torch

    from edgegan.data.unpaired import to_model_range
    from edgegan.export import validate
    from edgegan.models import create_model
    from edgegan.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = create_model("mobile-s", img_size=size).train()
    x = torch.from_numpy(to_model_range(validate.demo_calibration(size)))
    target = torch.round(x * 3) / 3
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = (model(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_checkpoint(out / "checkpoints", steps, modules={"g": model.eval()}, optimizers={}, config={"size": size},
                    state={"models": {"g": {"name": "mobile-s", "kwargs": {"img_size": size}}},
                           "translators": {"A2B": "g"}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="a student checkpoint [a stand-in fitted here]")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200, help="fitting steps of the stand-in")
    parser.add_argument("--out", type=Path, default=None, help="keep the exports here [a temporary folder]")
    parser.add_argument("--targets", default="onnx,ncnn,mnn",
                        help="export targets (comma-separated, or all: every engine in one interleaved table)")
    args = parser.parse_args()

    from edgegan.export import export, format_table
    from edgegan.runtime.bench import bench_models, format_latency

    with tempfile.TemporaryDirectory(prefix="edgegan-ncnn-mnn-") as tmp:
        out = args.out or Path(tmp) / "exports"
        t = time.perf_counter()
        stand_in = (out.parent / "stand_in") if args.out else Path(tmp) / "stand_in"  # kept with --out
        model = args.model or (stand_in if (stand_in / "checkpoints").is_dir() else fit_stand_in(stand_in,
                                                                                                 steps=args.steps))
        print(f"model: {model} ({time.perf_counter() - t:.0f} s)")
        results = export(model, args.targets, "all", size=args.size, out=out, threads=args.threads, runs=20)
        print(format_table(results))
        print(f"\nmodel only, {args.size} px, {args.threads} threads, {args.runs} interleaved runs:")
        print(format_latency(bench_models(out, threads=args.threads, runs=args.runs, size=args.size)))


if __name__ == "__main__":
    main()
