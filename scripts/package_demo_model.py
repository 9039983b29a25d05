"""Copy a finished ``edgegan quickstart --profile demo-model`` run into the package, with its manifest.

    python scripts/package_demo_model.py --run runs/demo-model

Takes the validated ONNX, TFLite and OpenVINO exports (fp32 and INT8) from RUN/export, scores each
packaged file with ``edgegan eval``'s code on RUN/data (what ``edgegan eval --model demo:...`` prints),
and replaces ``edgegan/runtime/demo_model/`` as a whole (written beside it, then renamed). The manifest
records every file's sha256 and size, the training command and data, the wall time and iterations of
each stage, and the scores next to the identity baseline and the teacher.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgegan.runtime.packaged import DEMO_DIR, companion_files, files_sha256  # noqa: E402  (after the path)

FORMATS = ("onnx", "tflite", "openvino")
PRECISIONS = ("fp32", "int8")
MAX_BYTES = 2_000_000  # the wheel stays small: every packaged file together
TRAIN_COMMAND = "scripts/train_demo_model.sh"  # = edgegan quickstart --profile demo-model, then this script


def stage_time(run: Path) -> dict:
    """Iterations and training seconds of one run folder, from its metrics.jsonl (resumes included)."""
    steps, seconds, prev = 0, 0.0, 0
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "sec_per_iter" in rec and rec["step"] > prev:
            seconds += rec["sec_per_iter"] * (rec["step"] - prev)
            prev = steps = rec["step"]
    return {"iterations": steps, "train_seconds": round(seconds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "demo-model")
    ap.add_argument("--dest", type=Path, default=DEMO_DIR)
    ap.add_argument("--ceiling", type=Path, default=None,
                    help="benchmarks/convergence.py --profile demo-model --recipes '' --json FILE: the paired ceiling "
                         "at the teacher's budget, recorded next to the scores")
    args = ap.parse_args()

    from edgegan.eval.evaluate import evaluate
    from edgegan.io_utils import write_json_atomic

    run, dest = args.run, args.dest
    results = json.loads((run / "export" / "export.json").read_text())["results"]
    chosen = {}
    for r in results:
        if r["target"] in FORMATS and r["precision"] in PRECISIONS and r["status"] == "ok":
            chosen[(r["target"], r["precision"])] = r
    missing = [f"{t} {p}" for t in FORMATS for p in PRECISIONS if (t, p) not in chosen]
    if missing:
        sys.exit(f"error: {run / 'export'} lacks validated exports: {', '.join(missing)}")

    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = []
    for (target, precision), r in sorted(chosen.items(), key=lambda kv: (FORMATS.index(kv[0][0]), kv[0][1])):
        src = Path(r["path"])
        name = f"demo_{precision}{src.suffix}"
        for f in companion_files(src):
            shutil.copyfile(f, tmp / (Path(name).stem + f.suffix))
        packaged = tmp / name
        t0 = time.perf_counter()
        report = evaluate(packaged, run / "data", fid=False)
        files.append({
            "file": name, "format": target, "precision": precision,
            "bytes": sum(f.stat().st_size for f in companion_files(packaged)),
            "sha256": files_sha256(packaged),
            "parity_vs_pytorch_db": r["parity"].get("psnr_db"),
            "parity_int8_vs_nncf_db": r["parity"].get("vs_nncf_torch", {}).get("psnr_db"),
            "eval": {"psnr": report["paired"]["model"]["psnr_mean"], "ssim": report["paired"]["model"]["ssim_mean"],
                     "n": report["n"], "size": report["size"], "seconds": round(time.perf_counter() - t0, 2)},
        })
    total = sum(f["bytes"] for f in files)
    if total > MAX_BYTES:
        shutil.rmtree(tmp)
        sys.exit(f"error: packaged files are {total} bytes, over the {MAX_BYTES} budget")

    data_params = json.loads((run / "data" / "SOURCES.json").read_text())["parameters"]
    data = {k: data_params[k] for k in ("size", "n_train", "n_test", "seed")}
    teacher_cfg = json.loads((run / "teacher" / "config.json").read_text())
    student_cfg = json.loads((run / "student" / "config.json").read_text())
    teacher_eval = json.loads((run / "eval" / "teacher.json").read_text())
    student_eval = json.loads((run / "eval" / "student.json").read_text())
    int8 = json.loads((run / "int8" / "report.json").read_text())
    ident = teacher_eval["paired"]["identity_baseline"]
    manifest = {
        "format": "edgegan-demo-model-v1",
        "name": "demo",
        "about": ("A cartoon filter (flat colours, ink lines) distilled into a mobile-s student, trained only on "
                  "the built-in demo photos (CC0 / public domain, see SOURCES.json of the data): it shows what the "
                  "runtime does, it is not a trained selfie style. Train your own with edgegan train + distill."),
        "licence": "Apache-2.0 (weights trained by EdgeGAN on public-domain/CC0 photos)",
        "student": {k: int8["student"][k] for k in ("name", "kwargs")}, "input_size": chosen[("onnx", "fp32")]["size"],
        "training": {
            "command": TRAIN_COMMAND,
            "data": {"command": "edgegan data demo "
                     + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in data.items()),
                     **data},
            "teacher": {**{k: teacher_cfg[k] for k in ("preset", "size", "ngf", "ndf", "n_res", "iters", "batch")},
                        **stage_time(run / "teacher")},
            "student": {**{k: student_cfg[k] for k in ("student", "iters", "batch", "feature_weight")},
                        **stage_time(run / "student")},
            "int8": {"method": int8["method"], "calibration_photos": int8["calibration"]["n"]},
        },
        "scores": {
            "data": f"testA vs testA_gt of the demo data above ({teacher_eval['n']} held-out photos, "
                    f"{teacher_eval['size']} px), PSNR dB / SSIM",
            "identity": {"psnr": ident["psnr_mean"], "ssim": ident["ssim_mean"]},
            "teacher": {"psnr": teacher_eval["paired"]["model"]["psnr_mean"],
                        "ssim": teacher_eval["paired"]["model"]["ssim_mean"]},
            "student_fp32": {"psnr": student_eval["paired"]["model"]["psnr_mean"],
                             "ssim": student_eval["paired"]["model"]["ssim_mean"],
                             "psnr_vs_teacher": student_eval["reference"]["psnr_mean"]},
            "int8_drop_db": (int8["quality"]["fp32_vs_gt"]["psnr_mean"] - int8["quality"]["int8_vs_gt"]["psnr_mean"]),
        },
        "files": files,
        "total_bytes": total,
    }
    if args.ceiling:
        saved = json.loads(args.ceiling.read_text())
        if saved["data"] != data:
            sys.exit(f"error: {args.ceiling} was measured on {saved['data']}, not this run's data {data}")
        (ceiling_scores,) = [r["scores"] for r in saved["results"].values() if r.get("paired")]
        last = ceiling_scores[max(ceiling_scores, key=int)]
        manifest["scores"]["paired_ceiling"] = {**last, "iterations": int(max(ceiling_scores, key=int)),
                                                "command": saved["command"], "measured": saved["measured"]}
        gap = last["psnr"] - ident["psnr_mean"]
        manifest["scores"]["teacher"]["gap_closed"] = (manifest["scores"]["teacher"]["psnr"] - ident["psnr_mean"]) / gap
    if "distribution" in teacher_eval:
        manifest["scores"]["teacher"]["kid_x100"] = teacher_eval["distribution"]["model"]["kid_x100_mean"]
        manifest["scores"]["identity"]["kid_x100"] = teacher_eval["distribution"]["identity_baseline"]["kid_x100_mean"]
    write_json_atomic(tmp / "manifest.json", manifest)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    print(f"packaged {len(files)} files, {total / 1e6:.2f} MB -> {dest}")
    for f in files:
        print(f"  {f['file']:<18} {f['format']:<9} {f['precision']}  {f['bytes'] / 1e3:7.1f} kB  "
              f"PSNR {f['eval']['psnr']:.2f} dB  SSIM {f['eval']['ssim']:.3f}")
    print(f"  identity {ident['psnr_mean']:.2f} dB, teacher {manifest['scores']['teacher']['psnr']:.2f} dB")


if __name__ == "__main__":
    main()
