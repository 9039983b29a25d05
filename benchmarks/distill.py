"""Distillation: how much smaller and faster the student is, and how close it stays to its teacher.

Prints, in one run:
1. MACs at 256 px of the paper-size teacher (ugatit-light ngf64) and of the student (mobile-s),
   and their ratio (goal >= 100x);
2. CPU latency at 256 px, batch 1, of both in ONNX Runtime fp32 (the student with BatchNorm
   folded), interleaved call by call in this process, and their ratio; torch eager beside it;
3. quality of a student distilled on the demo data from the quickstart teacher (U-GAT-IT light
   ngf16 at 64 px — NOT the ngf64 teacher of 1 and 2, which would need hours of GPU training):
   student vs teacher PSNR/SSIM on the held-out testA photos (goal >= 28 dB), and student and
   teacher vs the demo ground truth next to the identity baseline.

The quickstart's data and teacher (runs/quickstart) are reused when complete; otherwise both are
made in a temporary folder (~4 minutes for the teacher on 2 cores). The student is always
distilled afresh (~2 minutes).

    python benchmarks/distill.py
    python benchmarks/distill.py --iters 3000 --threads 2 --runs 30
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from edgegan.data.demo import build_demo_dataset
from edgegan.eval.evaluate import evaluate
from edgegan.profile import load_model, onnx_available, onnx_file, params_and_gmacs
from edgegan.quickstart import DEMO_DATA, STUDENT, TEACHER
from edgegan.runtime.timing import time_interleaved
from edgegan.train.checkpoint import list_checkpoints, read_checkpoint
from edgegan.train.config import preset_config
from edgegan.train.distill import distill, resolve_config
from edgegan.train.ugatit import train

SIZE = 256
QUICKSTART = Path("runs/quickstart")


def sizes_and_speed(threads: int, runs: int) -> None:
    models = {"teacher ugatit-light ngf64": "ugatit-light", "student mobile-s": "mobile-s"}
    nets, stats = {}, {}
    x = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    for label, name in models.items():
        nets[label], _, _ = load_model(name, SIZE)  # untrained weights: latency does not depend on them
        stats[label] = params_and_gmacs(nets[label], x)
    (t_params, t_gmacs), (s_params, s_gmacs) = stats.values()
    print(f"1. size at {SIZE}x{SIZE}, batch 1 (torch.utils.flop_counter)")
    print(f"   {'model':<28}{'params (M)':>11}{'GMACs':>9}")
    for label, (params, gmacs) in stats.items():
        print(f"   {label:<28}{params:>11.3f}{gmacs:>9.3f}")
    print(f"   MACs ratio teacher / student: {t_gmacs / s_gmacs:.0f}x (goal >= 100x)")

    runners = {}
    x_np = x.numpy()
    missing = onnx_available()
    with tempfile.TemporaryDirectory() as tmp:
        for label, net in nets.items():
            runners[label, "torch eager"] = lambda m=net: m(x)
            if not missing:
                ort = onnx_file(net, SIZE, Path(tmp) / f"{models[label]}.onnx", threads)
                runners[label, "ORT fp32"] = lambda m=ort, xn=x_np: m(xn)
        with torch.inference_mode():
            ms = time_interleaved(runners, runs)
    print(f"\n2. CPU latency at {SIZE}x{SIZE}, batch 1, {threads} thread(s), median of {runs} interleaved runs (ms)")
    print(f"   {'model':<28}{'torch eager':>12}{'ORT fp32':>10}")
    for label in nets:
        ort = f"{ms[label, 'ORT fp32']:>10.1f}" if (label, "ORT fp32") in ms else f"{'-':>10}"
        print(f"   {label:<28}{ms[label, 'torch eager']:>12.1f}{ort}")
    t_label, s_label = nets
    if missing:
        print(f"   (ORT skipped: {missing})")
    else:
        print(f"   ORT fp32 latency ratio teacher / student: {ms[t_label, 'ORT fp32'] / ms[s_label, 'ORT fp32']:.1f}x")
    print(f"   torch eager latency ratio teacher / student: "
          f"{ms[t_label, 'torch eager'] / ms[s_label, 'torch eager']:.1f}x")


def demo_teacher(work: Path) -> tuple[Path, Path]:
    """(data folder, teacher checkpoint): the quickstart's when complete, else made in ``work``."""
    data = QUICKSTART / "data"
    if not (data / "SOURCES.json").is_file():
        data = work / "data"
        print(f"   building the demo data in {data}")
        build_demo_dataset(data, progress=False, **DEMO_DATA)
    done = list_checkpoints(QUICKSTART / "teacher" / "checkpoints")
    if done and read_checkpoint(done[-1]).step >= TEACHER["iters"]:
        return data, done[-1]
    print(f"   no complete quickstart teacher in {QUICKSTART}: training one in {work} (~4 minutes on 2 cores)")
    kw = {**TEACHER, "sample_every": 0}
    cfg = preset_config(kw.pop("preset"), data=str(data), out=str(work / "teacher"), device="cpu", **kw)
    return data, train(cfg, progress=False)


def quality(work: Path, iters: int) -> None:
    print("\n3. quality on the demo data (held-out testA photos, 64 px)")
    data, teacher = demo_teacher(work)
    spec = read_checkpoint(teacher).config
    print(f"   teacher: {teacher} (ugatit-light ngf{spec['ngf']} at {spec['size']} px, "
          f"{spec['iters']} iterations: the quickstart teacher, not the ngf64 one above)")
    cfg = resolve_config(out=str(work / "student"), resume=False,
                         overrides={**STUDENT, "iters": iters, "teacher": str(teacher), "data": str(data),
                                    "device": "cpu", "sample_every": 0})
    t0 = time.perf_counter()
    student = distill(cfg, progress=False)
    minutes = (time.perf_counter() - t0) / 60
    print(f"   student: {cfg.student} distilled for {cfg.iters} iterations of batch {cfg.batch} "
          f"({minutes:.1f} min, {torch.get_num_threads()} thread(s))")
    s_rep = evaluate(student, data, reference=teacher, fid=False)
    t_rep = evaluate(teacher, data, fid=False)
    ref = s_rep["reference"]
    print(f"   student vs teacher on {s_rep['n']} testA photos: PSNR {ref['psnr_mean']:.2f} dB (goal >= 28), "
          f"SSIM {ref['ssim_mean']:.3f}")
    print(f"\n   vs the demo ground truth (testA_gt)   {'PSNR dB':>8}{'SSIM':>8}")
    rows = {"teacher (ngf16, 64 px)": t_rep["paired"]["model"], "student (mobile-s)": s_rep["paired"]["model"],
            "identity baseline": s_rep["paired"]["identity_baseline"]}
    for label, p in rows.items():
        print(f"   {label:<35}{p['psnr_mean']:>8.2f}{p['ssim_mean']:>8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=STUDENT["iters"], help="student iterations [the quickstart's]")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads [all]")
    ap.add_argument("--runs", type=int, default=20, help="timed calls per model and runtime")
    ap.add_argument("--keep", type=Path, default=None, help="keep the student (and any teacher) in this folder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes_and_speed(args.threads, args.runs)
    if args.keep is not None:
        quality(args.keep, args.iters)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            quality(Path(tmp), args.iters)


if __name__ == "__main__":
    main()
