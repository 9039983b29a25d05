"""``edgegan quickstart``: every stage on the built-in demo data, minutes on a laptop CPU.

Each stage is skipped when its output is already complete and resumed when it was interrupted,
so re-running the command continues where it stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import click

from edgegan.errors import EdgeGANError
from edgegan.train.checkpoint import list_checkpoints, read_checkpoint

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Profile:
    """What a quickstart trains: demo data, teacher and student settings, and the INT8 exports."""

    name: str
    about: str
    data: dict
    teacher: dict
    student: dict
    int8_targets: tuple[str, ...] = ("onnx", "openvino")


PROFILES = {
    # EdgeGAN's recipe (benchmarks/convergence.py chose it), sized for ~4 minutes on 2 CPU cores; the student at
    # the teacher's 64 px, ~1-2 minutes. Pixel L1 only: from an identity-start teacher (the convergence
    # benchmark's edgegan run) `edgegan distill --feature-weight 0` reached 28.4 dB vs the teacher in 800
    # iterations, L1 + feature distillation 27.3.
    "quick": Profile(
        "quick", "every stage in ~10 minutes at 64 px",
        data=dict(size=64, n_train=200, n_test=24, seed=0),
        teacher=dict(preset="edgegan", size=64, ngf=16, ndf=16, n_res=4, iters=1500, save_every=300,
                     sample_every=300, log_every=25),
        student=dict(student="mobile-s", iters=1000, batch=8, feature_weight=0.0, save_every=250,
                     sample_every=250, log_every=25)),
    # The model that ships in the package (edgegan/runtime/demo_model, scripts/train_demo_model.sh): 128 px face
    # crops, the same recipe trained ~3x longer on twice the crops, ~2 hours on 2 CPU cores.
    "demo-model": Profile(
        "demo-model", "the packaged demo model: 128 px, ~2 hours",
        data=dict(size=128, n_train=400, n_test=24, seed=0),
        teacher=dict(preset="edgegan", size=128, ngf=16, ndf=16, n_res=4, iters=5000, save_every=250,
                     sample_every=500, log_every=25),
        student=dict(student="mobile-s", iters=1500, batch=8, feature_weight=0.0, save_every=250,
                     sample_every=250, log_every=25),
        int8_targets=("onnx", "tflite", "openvino")),
}
DEFAULT_PROFILE = "quick"
# The quick profile's settings, as the benchmarks reproduce them (and the data the recorded reference scores are for).
DEMO_DATA, TEACHER, STUDENT = (PROFILES[DEFAULT_PROFILE].data, PROFILES[DEFAULT_PROFILE].teacher,
                               PROFILES[DEFAULT_PROFILE].student)
STEPS = 7


def run_quickstart(out: Path, *, profile: str = DEFAULT_PROFILE, iters: int | None = None,
                   distill_iters: int | None = None, device: str = "auto", progress: bool = True) -> dict:
    from edgegan.data.demo import build_demo_dataset
    from edgegan.train.config import preset_config
    from edgegan.train.ugatit import train

    if profile not in PROFILES:
        raise EdgeGANError(f"--profile {profile}: unknown (choose from {', '.join(PROFILES)})")
    prof = PROFILES[profile]
    data_dir = out / "data"
    if (data_dir / "SOURCES.json").is_file():
        _check_data(data_dir, prof)
        click.echo(f"[1/{STEPS}] demo data: {data_dir} (exists)")
    else:
        click.echo(f"[1/{STEPS}] demo data -> {data_dir}")
        build_demo_dataset(data_dir, progress=progress, **prof.data)

    teacher_dir = out / "teacher"
    teacher_kw = {**prof.teacher, **({"iters": iters} if iters else {})}
    cfg = preset_config(teacher_kw.pop("preset"), data=str(data_dir), out=str(teacher_dir), device=device,
                        **teacher_kw)
    done = list_checkpoints(teacher_dir / "checkpoints")
    if done and read_checkpoint(done[-1]).step >= cfg.iters:
        click.echo(f"[2/{STEPS}] teacher: {done[-1]} (trained)")
        teacher = done[-1]
    else:
        click.echo(f"[2/{STEPS}] teacher: U-GAT-IT light ({cfg.preset} recipe), {cfg.size}px ngf{cfg.ngf}, "
                   f"{cfg.iters} iterations -> {teacher_dir}" + (" (resuming)" if done else ""))
        teacher = train(cfg, resume=bool(done), progress=progress)
    samples = sorted((teacher_dir / "samples").glob("*.png"))
    click.echo(f"teacher checkpoint: {teacher}")
    if samples:
        click.echo(f"latest sample grid: {samples[-1]}")

    click.echo(f"[3/{STEPS}] eval: teacher on the held-out demo photos, next to the identity baseline")
    report = _eval(teacher, data_dir, out / "eval" / "teacher.json")

    student = _distill(teacher, data_dir, out / "student", prof.student, iters=distill_iters, device=device,
                       progress=progress)
    click.echo(f"[5/{STEPS}] eval: student on the held-out demo photos, and against the teacher's outputs")
    student_report = _eval(student, data_dir, out / "eval" / "student.json", reference=teacher)
    int8 = _quantize(student, teacher, data_dir, out / "int8", progress=progress)
    exports = _export(student, out / "int8", out / "export", int8_targets=prof.int8_targets)
    _recommend(out / "export")
    card = scorecard(report, student_report, int8, iters=cfg.iters, data=prof.data)
    click.echo(format_scorecard(card))
    return {"data": data_dir, "teacher": teacher, "eval": report, "student": student,
            "student_eval": student_report, "int8": int8, "export": exports, "scorecard": card}


def _check_data(data_dir: Path, prof: Profile) -> None:
    """An existing demo dataset must be the one this profile builds (another profile's run in the same --out)."""
    import json

    try:
        params = json.loads((data_dir / "SOURCES.json").read_text())["parameters"]
    except (OSError, ValueError, KeyError) as err:
        raise EdgeGANError(f"{data_dir / 'SOURCES.json'}: unreadable ({err}); delete {data_dir} to rebuild it") \
            from None
    differs = {k: params.get(k) for k, v in prof.data.items() if params.get(k) != v}
    if differs:
        raise EdgeGANError(f"{data_dir}: demo data built with {differs}, the {prof.name} profile needs "
                           f"{ {k: prof.data[k] for k in differs} }; use another --out")


def _recommend(export_dir: Path) -> None:
    """Time every exported file on every runtime here (one interleaved loop) and name the fastest."""
    from edgegan.runtime.bench import bench_models, format_latency

    click.echo("which runtime to ship on this machine (the exported student, batch 1, every runtime here):")
    click.echo(format_latency(bench_models(export_dir, runs=20)))
    click.echo(f"run it: edgegan demo --model <fastest file> --source 0   (or: edgegan bench --model {export_dir})")


def _export(student: Path, int8_dir: Path, export_dir: Path, *, int8_targets: tuple[str, ...]) -> list:
    """The student as ONNX, TFLite and CoreML fp32, and the quantizer's INT8 as ONNX, each checked (seconds)."""
    import json

    from edgegan.export import TARGETS, USABLE, export, format_table, missing_packages
    from edgegan.export.source import sha256

    targets = [t for t in TARGETS if "fp32" in TARGETS[t].precisions and not missing_packages(TARGETS[t])]
    int8 = (int8_dir / "student_int8.safetensors").is_file() and "onnx" in targets
    source = int8_dir if int8 else student  # the quantizer's output: its INT8 model, fp32 from its student
    weights = int8_dir / "student_int8.safetensors" if int8 else student / "weights.safetensors"
    index = export_dir / "export.json"
    try:
        digest = sha256(weights)
        done = {(r["target"], r["precision"]) for r in json.loads(index.read_text())["results"]
                if r["status"] in USABLE and Path(r["path"]).exists()
                and r.get("source_sha256") == digest}
    except (OSError, ValueError, KeyError, TypeError):
        done = set()
    int8_targets = [t for t in int8_targets if t in targets] if int8 else []
    wanted = {(t, "fp32") for t in targets} | {(t, "int8") for t in int8_targets}
    if wanted <= done:
        click.echo(f"[7/{STEPS}] export: {export_dir} (exported)")
        return json.loads(index.read_text())["results"]
    click.echo(f"[7/{STEPS}] export: the student to {', '.join(targets)} fp32"
               + (f" and INT8 {', '.join(int8_targets)}" if int8_targets else "")
               + f", each checked against PyTorch -> {export_dir}")
    results = export(source, targets, "fp32", out=export_dir)
    if int8_targets:
        results += export(source, int8_targets, "int8", out=export_dir)
    click.echo(format_table(results))
    return [r.to_dict() for r in results]


def _quantize(student: Path, teacher: Path, data_dir: Path, int8_dir: Path, *, progress: bool) -> dict:
    """PTQ INT8 of the student (seconds); QAT is one flag away, see the README."""
    import json

    from edgegan.quantize import format_report, quantize_student

    report_path = int8_dir / "report.json"
    done = report_path.is_file() and json.loads(report_path.read_text()).get("student", {}).get("checkpoint")
    if done == str(student):
        click.echo(f"[6/{STEPS}] INT8: {int8_dir} (quantized)")
        report = json.loads(report_path.read_text())
    else:
        click.echo(f"[6/{STEPS}] INT8: NNCF post-training quantization of the student -> {int8_dir}")
        report = quantize_student(student, data_dir / "trainA", int8_dir, method="ptq", data=data_dir,
                                  teacher=teacher, progress=progress)
    click.echo(format_report(report))
    return report


def _distill(teacher: Path, data_dir: Path, student_dir: Path, settings: dict, *, iters: int | None, device: str,
             progress: bool) -> Path:
    from edgegan.train.distill import distill, resolve_config

    done = list_checkpoints(student_dir / "checkpoints")
    overrides = {**settings, "teacher": str(teacher), "data": str(data_dir), "device": device,
                 **({"iters": iters} if iters else {})}
    cfg = resolve_config(out=str(student_dir), overrides=overrides, resume=bool(done))
    if done and read_checkpoint(done[-1]).step >= cfg.iters:
        click.echo(f"[4/{STEPS}] student: {done[-1]} (distilled)")
        return done[-1]
    click.echo(f"[4/{STEPS}] student: distil {cfg.student} from the teacher, {cfg.iters} iterations of batch "
               f"{cfg.batch} -> {student_dir}" + (" (resuming)" if done else ""))
    student = distill(cfg, resume=bool(done), progress=progress)
    click.echo(f"student checkpoint: {student}")
    return student


def _eval(model: Path, data_dir: Path, report_path: Path, reference: Path | None = None) -> dict:
    from edgegan.errors import EdgeGANError
    from edgegan.eval.evaluate import evaluate, format_report
    from edgegan.eval.inception import inception_weights_path
    from edgegan.io_utils import write_json_atomic

    try:
        inception_weights_path()
        fid = True
    except EdgeGANError as err:
        click.echo(f"(FID/KID skipped: {err})")
        fid = False
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report = evaluate(model, data_dir, reference=reference, fid=fid, grid_path=report_path.with_suffix(".png"))
    write_json_atomic(report_path, report)
    click.echo(format_report(report))
    click.echo(f"report: {report_path}, grid: {report_path.with_suffix('.png')}")
    return report


# ---------------------------------------------------------------- the scorecard
# What the quickstart must reach on the demo data (issue 13's targets).
TARGETS = {"teacher_gain_db": 3.0, "teacher_gap_closed": 0.5, "student_vs_teacher_db": 28.0,
           "student_drop_db": 1.0, "int8_drop_db": 0.5}
REFERENCE_SCORES = Path(__file__).parent / "data" / "demo_reference_scores.json"


def reference_scores(iters: int, data: dict = DEMO_DATA) -> dict:
    """The paired ceiling and the paper's recipe at ``iters`` on the same demo data, as recorded by
    ``benchmarks/convergence.py`` (a quickstart does not re-train them); {} if not recorded for ``iters``."""
    import json

    try:
        recorded = json.loads(REFERENCE_SCORES.read_text())
    except (OSError, ValueError):
        return {}
    if recorded.get("data") != data or str(iters) not in recorded.get("scores", {}):
        return {}
    return {"measured": recorded.get("measured"), "command": recorded.get("command"),
            **recorded["scores"][str(iters)]}


def scorecard(teacher: dict, student: dict, int8: dict, *, iters: int, data: dict = DEMO_DATA) -> dict:
    """Every quickstart figure next to its target, from the eval and INT8 reports of this run."""
    t, ident = teacher["paired"]["model"], teacher["paired"]["identity_baseline"]
    s = student["paired"]["model"]
    ref = reference_scores(iters, data)
    ceiling = ref.get("paired ceiling", {}).get("psnr")
    card = {
        "identity_psnr": ident["psnr_mean"],
        "teacher_psnr": t["psnr_mean"], "teacher_ssim": t["ssim_mean"],
        "teacher_gain_db": t["psnr_mean"] - ident["psnr_mean"],
        "ceiling_psnr": ceiling,
        "teacher_gap_closed": ((t["psnr_mean"] - ident["psnr_mean"]) / (ceiling - ident["psnr_mean"])
                               if ceiling and ceiling > ident["psnr_mean"] else None),
        "paper_psnr": ref.get("paper", {}).get("psnr"),
        "student_psnr": s["psnr_mean"],
        "student_vs_teacher_db": student["reference"]["psnr_mean"],
        "student_drop_db": t["psnr_mean"] - s["psnr_mean"],
        "reference": {k: ref[k] for k in ("measured", "command") if k in ref},
    }
    dist = teacher.get("distribution", {})
    if dist:
        card["teacher_kid_x100"] = dist["model"]["kid_x100_mean"]
        card["identity_kid_x100"] = dist["identity_baseline"]["kid_x100_mean"]
    q = int8.get("quality", {})
    if "int8_vs_gt" in q and "fp32_vs_gt" in q:
        card["int8_psnr"] = q["int8_vs_gt"]["psnr_mean"]
        card["int8_drop_db"] = q["fp32_vs_gt"]["psnr_mean"] - q["int8_vs_gt"]["psnr_mean"]
    return card


def format_scorecard(card: dict) -> str:
    def num(x, digits=2):
        return "-" if x is None else f"{x:.{digits}f}"

    def verdict(ok: bool | None) -> str:
        return "" if ok is None else ("  ok" if ok else "  MISSED")

    gain, closed = card["teacher_gain_db"], card["teacher_gap_closed"]
    lines = ["scorecard (held-out demo photos vs their exact cartoon ground truth, PSNR dB):",
             f"  identity baseline (output = input)      {num(card['identity_psnr'])}"]
    if card["ceiling_psnr"] is not None:
        lines.append(f"  paired ceiling (same budget, L1 on pairs) {num(card['ceiling_psnr'])}   (recorded)")
    if card["paper_psnr"] is not None:
        lines.append(f"  paper recipe (same budget)              {num(card['paper_psnr'])}   (recorded)")
    lines.append(f"  teacher                                 {num(card['teacher_psnr'])}   "
                 f"{gain:+.2f} dB over identity (target +{TARGETS['teacher_gain_db']:.0f})"
                 + verdict(gain >= TARGETS["teacher_gain_db"])
                 + ("" if closed is None else f"; {closed:.0%} of the gap to the ceiling (target 50%)"
                    + verdict(closed >= TARGETS["teacher_gap_closed"])))
    if "teacher_kid_x100" in card:
        kid, kid_identity = card["teacher_kid_x100"], card["identity_kid_x100"]
        lines.append(f"  teacher KIDx100 {num(kid)} vs identity's {num(kid_identity)}" + verdict(kid < kid_identity))
    lines.append(f"  student                                 {num(card['student_psnr'])}   "
                 f"{card['student_vs_teacher_db']:.2f} dB vs its teacher (target 28)"
                 + verdict(card["student_vs_teacher_db"] >= TARGETS["student_vs_teacher_db"])
                 + f"; {card['student_drop_db']:+.2f} dB below the teacher (target <= 1)"
                 + verdict(card["student_drop_db"] <= TARGETS["student_drop_db"]))
    if "int8_psnr" in card:
        lines.append(f"  student INT8                            {num(card['int8_psnr'])}   "
                     f"{card['int8_drop_db']:+.2f} dB below fp32 (target <= 0.5)"
                     + verdict(card["int8_drop_db"] <= TARGETS["int8_drop_db"]))
    if card["reference"]:
        lines.append(f"  (recorded: {card['reference'].get('command')}, {card['reference'].get('measured')})")
    return "\n".join(lines)
